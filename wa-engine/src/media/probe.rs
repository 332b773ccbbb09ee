//! Best-effort facts about a media file for its message (shared/protocol/06 §2.5): image
//! dimensions, audio duration, PDF page count and, with the `thumbnail` feature, an inline
//! JPEG thumbnail. Sans-IO and panic-free on any input: each returns `None` when it cannot
//! tell.
//!
//! Header layouts: PNG (ISO/IEC 15948 §11.2.2 IHDR), JPEG (ITU T.81 §B.2.2 SOFn), GIF89a
//! (logical screen descriptor), WebP (RIFF `VP8 `, `VP8L`, `VP8X` chunks), Ogg (RFC 3533
//! page header; RFC 7845 §4 for the Opus granule rate and pre-skip).

use std::io::{self, Read};
use std::time::Duration;

/// The MIME type a file's first bytes announce (magic numbers), for the formats WhatsApp
/// media messages carry: PNG, JPEG, GIF, WebP, PDF, Ogg (Opus voice notes are
/// `audio/ogg; codecs=opus`), MP4 / M4A, MP3, WAV, ZIP. `None` when unknown. 16 bytes are
/// enough for every format here.
#[must_use]
pub fn sniff_mimetype(head: &[u8]) -> Option<&'static str> {
    let at = |range: std::ops::Range<usize>| head.get(range);
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if head.starts_with(b"RIFF") && at(8..12) == Some(b"WEBP") {
        Some("image/webp")
    } else if head.starts_with(b"RIFF") && at(8..12) == Some(b"WAVE") {
        Some("audio/wav")
    } else if head.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if head.starts_with(b"OggS") {
        Some("audio/ogg")
    } else if at(4..8) == Some(b"ftyp") {
        match at(8..11) {
            Some(b"M4A") => Some("audio/mp4"),
            _ => Some("video/mp4"),
        }
    } else if head.starts_with(b"ID3") || head.starts_with(&[0xFF, 0xFB]) {
        Some("audio/mpeg")
    } else if head.starts_with(b"PK\x03\x04") {
        Some("application/zip")
    } else {
        None
    }
}

/// Width and height in pixels of a PNG, JPEG, GIF or WebP image, from its header only.
#[must_use]
pub fn image_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        // Signature 8, chunk length 4, "IHDR" 4, then width and height, big endian.
        if bytes.get(12..16)? != b"IHDR" {
            return None;
        }
        return Some((be32(bytes, 16)?, be32(bytes, 20)?));
    }
    if bytes.starts_with(&[0xFF, 0xD8]) {
        return jpeg_dimensions(bytes);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Some((u32::from(le16(bytes, 6)?), u32::from(le16(bytes, 8)?)));
    }
    if bytes.starts_with(b"RIFF") && bytes.get(8..12)? == b"WEBP" {
        return webp_dimensions(bytes);
    }
    None
}

fn jpeg_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let mut pos = 2;
    loop {
        // Markers may be preceded by fill bytes 0xFF.
        while *bytes.get(pos)? == 0xFF && *bytes.get(pos + 1)? == 0xFF {
            pos += 1;
        }
        if *bytes.get(pos)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(pos + 1)?;
        // Standalone markers: TEM, RSTn, SOI.
        if marker == 0x01 || (0xD0..=0xD8).contains(&marker) {
            pos += 2;
            continue;
        }
        let len = usize::from(be16(bytes, pos + 2)?);
        // SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC): precision, height, width.
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let h = be16(bytes, pos + 5)?;
            let w = be16(bytes, pos + 7)?;
            return Some((u32::from(w), u32::from(h)));
        }
        if marker == 0xD9 || marker == 0xDA {
            return None;
        }
        pos = pos.checked_add(2 + len)?;
    }
}

fn webp_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    match bytes.get(12..16)? {
        b"VP8 " => {
            // Frame tag 3, start code 3, then 14-bit width and height.
            let w = le16(bytes, 26)? & 0x3FFF;
            let h = le16(bytes, 28)? & 0x3FFF;
            Some((u32::from(w), u32::from(h)))
        }
        b"VP8L" => {
            let b = bytes.get(21..25)?;
            let bits = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        b"VP8X" => {
            let w = le24(bytes, 24)? + 1;
            let h = le24(bytes, 27)? + 1;
            Some((w, h))
        }
        _ => None,
    }
}

/// Whether a WebP image is animated (its `VP8X` header sets the animation flag); for
/// sticker messages' `isAnimated`.
#[must_use]
pub fn webp_is_animated(bytes: &[u8]) -> bool {
    bytes.starts_with(b"RIFF")
        && bytes.get(8..12) == Some(b"WEBP")
        && bytes.get(12..16) == Some(b"VP8X")
        && bytes.get(20).is_some_and(|flags| flags & 0x02 != 0)
}

/// Duration of an Ogg Opus or Ogg Vorbis stream (voice notes are Ogg Opus), read page by
/// page with a bounded buffer: the last page's granule position, minus Opus' pre-skip,
/// over the granule rate (48 kHz for Opus, the identification header's rate for Vorbis).
///
/// # Errors
/// Only the reader's errors; a stream that is not Ogg, or is cut short, gives `Ok(None)`.
pub fn ogg_duration(mut reader: impl Read) -> io::Result<Option<Duration>> {
    let mut header = [0_u8; 27];
    let mut segments = [0_u8; 255];
    let mut body = vec![0_u8; 255 * 255];
    let mut rate: Option<(u64, u64)> = None; // (samples per second, pre-skip)
    let mut last_granule: Option<u64> = None;
    let mut first = true;
    loop {
        if !read_full(&mut reader, &mut header)? {
            break;
        }
        if &header[..4] != b"OggS" || header[4] != 0 {
            return Ok(None);
        }
        let granule = u64::from_le_bytes([
            header[6], header[7], header[8], header[9], header[10], header[11], header[12],
            header[13],
        ]);
        let count = usize::from(header[26]);
        let segments = &mut segments[..count];
        if !read_full(&mut reader, segments)? {
            break;
        }
        let len: usize = segments.iter().map(|&s| usize::from(s)).sum();
        let body = &mut body[..len];
        if !read_full(&mut reader, body)? {
            break;
        }
        if first {
            first = false;
            rate = if body.starts_with(b"OpusHead") {
                let pre_skip = u64::from(le16(body, 10).unwrap_or(0));
                Some((48_000, pre_skip))
            } else if body.starts_with(b"\x01vorbis") {
                le32(body, 12).map(|r| (u64::from(r), 0))
            } else {
                return Ok(None);
            };
        }
        // -1 (all ones) marks a page on which no packet ends.
        if granule != u64::MAX {
            last_granule = Some(granule);
        }
    }
    Ok(match (rate, last_granule) {
        (Some((per_sec, pre_skip)), Some(granule)) if per_sec > 0 => {
            let samples = granule.saturating_sub(pre_skip);
            let secs = samples / per_sec;
            let nanos = (samples % per_sec) * 1_000_000_000 / per_sec;
            Some(Duration::new(secs, u32::try_from(nanos).unwrap_or(0)))
        }
        _ => None,
    })
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` at a clean or unclean end of stream.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Page count of a PDF, best effort: the largest `/Count` of a `/Type /Pages` dictionary
/// written in the clear. PDFs that keep their page tree in compressed object streams
/// (PDF 1.5+) give `None`.
#[must_use]
pub fn pdf_page_count(bytes: &[u8]) -> Option<u32> {
    if !bytes.starts_with(b"%PDF-") {
        return None;
    }
    let mut best: Option<u32> = None;
    let mut rest = bytes;
    while let Some(at) = find(rest, b"/Type") {
        rest = &rest[at + 5..];
        let after = skip_ws(rest);
        if !after.starts_with(b"/Pages") || after.get(6).is_some_and(u8::is_ascii_alphanumeric) {
            continue;
        }
        // The dictionary around it: search for /Count up to its end (`>>`), both ways
        // within a bounded window.
        let window_end = find(rest, b">>").unwrap_or(rest.len()).min(4096);
        let start = bytes.len() - rest.len();
        let back = start.saturating_sub(4096);
        let dict_start = rfind(&bytes[back..start], b"<<").map_or(back, |p| back + p);
        let dict = &bytes[dict_start..start + window_end];
        if let Some(c) = find(dict, b"/Count") {
            let digits: Vec<u8> = skip_ws(&dict[c + 6..])
                .iter()
                .copied()
                .take_while(u8::is_ascii_digit)
                .collect();
            if let Some(n) = std::str::from_utf8(&digits)
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
            {
                best = Some(best.map_or(n, |b| b.max(n)));
            }
        }
    }
    best
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

fn skip_ws(bytes: &[u8]) -> &[u8] {
    let n = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &bytes[n..]
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

fn le24(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(3)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], 0]))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Longest side of the thumbnails [`thumbnail`] makes by default, pixels (Baileys
/// `extractImageThumb` makes 32-pixel-wide JPEGs; WhatsApp clients show them blurred).
#[cfg(feature = "thumbnail")]
pub const THUMBNAIL_SIDE: u32 = 32;

/// Most memory the image decoder may allocate for [`thumbnail`], bytes (128 MiB: a
/// 40-megapixel RGBA canvas fits).
#[cfg(feature = "thumbnail")]
pub const THUMBNAIL_MAX_ALLOC: u64 = 128 * 1024 * 1024;

/// Decodes a PNG or JPEG image and returns a JPEG thumbnail whose longer side is at most
/// `max_side` pixels (aspect kept), with the original width and height.
///
/// # Errors
/// [`ThumbnailError`] when the image cannot be decoded (format other than PNG/JPEG,
/// corrupt data) or the thumbnail cannot be encoded.
#[cfg(feature = "thumbnail")]
pub fn thumbnail(bytes: &[u8], max_side: u32) -> Result<Thumbnail, ThumbnailError> {
    // Bound the decoder's allocations (a small file can claim a huge canvas).
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(THUMBNAIL_MAX_ALLOC);
    let mut reader = image::ImageReader::new(io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ThumbnailError(image::ImageError::IoError(e)))?;
    reader.limits(limits);
    let image = reader.decode().map_err(ThumbnailError)?;
    let (width, height) = (image.width(), image.height());
    let side = max_side.max(1);
    let small = image.thumbnail(side, side).into_rgb8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 75)
        .encode_image(&small)
        .map_err(ThumbnailError)?;
    Ok(Thumbnail {
        jpeg,
        width,
        height,
    })
}

/// An inline JPEG thumbnail and the source image's size.
#[cfg(feature = "thumbnail")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    /// The JPEG bytes (`jpegThumbnail`).
    pub jpeg: Vec<u8>,
    /// Width of the source image, pixels.
    pub width: u32,
    /// Height of the source image, pixels.
    pub height: u32,
}

/// The image could not be decoded or the thumbnail encoded.
#[cfg(feature = "thumbnail")]
#[derive(Debug, thiserror::Error)]
#[error("cannot make a thumbnail")]
pub struct ThumbnailError(#[source] image::ImageError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_png_gif_jpeg_and_webp_headers() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&640_u32.to_be_bytes());
        png.extend_from_slice(&480_u32.to_be_bytes());
        assert_eq!(image_dimensions(&png), Some((640, 480)));

        let gif = b"GIF89a\x20\x03\x58\x02";
        assert_eq!(image_dimensions(gif), Some((800, 600)));

        // SOI, APP0 (length 4), SOF0: length 17, precision 8, height 0x01E0, width 0x0280.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x01,
            0xE0, 0x02, 0x80,
        ];
        assert_eq!(image_dimensions(&jpeg), Some((640, 480)));

        let mut webp = b"RIFF\0\0\0\0WEBPVP8X".to_vec();
        webp.extend_from_slice(&[10, 0, 0, 0, 0x02, 0, 0, 0]);
        webp.extend_from_slice(&[0xFF, 0x01, 0x00, 0xFF, 0x01, 0x00]); // 512 x 512
        assert_eq!(image_dimensions(&webp), Some((512, 512)));
        assert!(webp_is_animated(&webp));
    }

    #[test]
    fn sniffs_the_formats_media_messages_carry() {
        assert_eq!(sniff_mimetype(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(
            sniff_mimetype(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some("image/jpeg")
        );
        assert_eq!(sniff_mimetype(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff_mimetype(b"%PDF-1.7"), Some("application/pdf"));
        assert_eq!(sniff_mimetype(b"OggS\0\x02"), Some("audio/ogg"));
        assert_eq!(sniff_mimetype(b"\0\0\0\x20ftypisom"), Some("video/mp4"));
        assert_eq!(sniff_mimetype(b"\0\0\0\x20ftypM4A "), Some("audio/mp4"));
        assert_eq!(sniff_mimetype(b"ID3\x04"), Some("audio/mpeg"));
        assert_eq!(sniff_mimetype(b"MZ\x90\0"), None);
        assert_eq!(sniff_mimetype(b""), None);
    }

    #[test]
    fn truncated_or_foreign_input_gives_none() {
        for input in [
            &b""[..],
            b"\x89PNG\r\n\x1a\n",
            &[0xFF, 0xD8, 0xFF],
            b"RIFF\0\0\0\0WEBPVP8 ",
            b"hello",
        ] {
            assert_eq!(image_dimensions(input), None);
        }
        assert_eq!(pdf_page_count(b"not a pdf"), None);
        assert_eq!(ogg_duration(&b"OggS"[..]).unwrap(), None);
        assert_eq!(ogg_duration(&b"RIFF...."[..]).unwrap(), None);
    }

    fn ogg_page(granule: u64, body: &[u8]) -> Vec<u8> {
        let mut page = b"OggS\0\0".to_vec();
        page.extend_from_slice(&granule.to_le_bytes());
        page.extend_from_slice(&[0; 12]); // serial, sequence, CRC (not checked)
        page.push(1);
        page.push(u8::try_from(body.len()).unwrap());
        page.extend_from_slice(body);
        page
    }

    #[test]
    fn ogg_opus_duration_is_the_last_granule_minus_pre_skip_at_48_khz() {
        let mut head = b"OpusHead\x01\x01".to_vec();
        head.extend_from_slice(&312_u16.to_le_bytes());
        head.extend_from_slice(&[0x80, 0xBB, 0, 0, 0, 0, 0]);
        let mut stream = ogg_page(0, &head);
        stream.extend(ogg_page(u64::MAX, b"OpusTags"));
        stream.extend(ogg_page(48_000 * 3 + 312 + 24_000, &[0; 100]));
        let d = ogg_duration(stream.as_slice()).unwrap().unwrap();
        assert_eq!(d, Duration::from_millis(3500));
    }

    proptest::proptest! {
        #[test]
        fn probes_never_panic_on_arbitrary_bytes(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            prefix in 0_usize..5,
        ) {
            let heads: [&[u8]; 5] = [b"", b"\x89PNG\r\n\x1a\n", &[0xFF, 0xD8], b"RIFF\0\0\0\0WEBP", b"OggS\0"];
            let mut input = heads[prefix].to_vec();
            input.extend_from_slice(&bytes);
            let _ = image_dimensions(&input);
            let _ = webp_is_animated(&input);
            let _ = ogg_duration(input.as_slice());
            let mut pdf = b"%PDF-".to_vec();
            pdf.extend_from_slice(&input);
            let _ = pdf_page_count(&pdf);
        }
    }

    #[cfg(feature = "thumbnail")]
    #[test]
    fn thumbnail_is_a_small_jpeg_keeping_the_aspect_ratio() {
        use image::ImageEncoder as _;
        let img = image::RgbImage::from_fn(200, 100, |x, y| {
            image::Rgb([u8::try_from(x % 256).unwrap(), u8::try_from(y).unwrap(), 7])
        });
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(img.as_raw(), 200, 100, image::ExtendedColorType::Rgb8)
            .unwrap();
        let thumb = thumbnail(&png, THUMBNAIL_SIDE).unwrap();
        assert_eq!((thumb.width, thumb.height), (200, 100));
        assert!(thumb.jpeg.starts_with(&[0xFF, 0xD8]));
        assert_eq!(image_dimensions(&thumb.jpeg), Some((32, 16)));
        assert!(thumbnail(b"not an image", 32).is_err());
    }

    #[test]
    fn pdf_page_count_takes_the_page_tree_root() {
        let pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
                    2 0 obj << /Type /Pages /Kids [3 0 R 4 0 R 5 0 R] /Count 3 >> endobj\n\
                    3 0 obj << /Type /Page /Parent 2 0 R >> endobj\n";
        assert_eq!(pdf_page_count(pdf), Some(3));
        let compact = b"%PDF-1.7\n2 0 obj<</Count 12/Type/Pages/Kids[]>>endobj";
        assert_eq!(pdf_page_count(compact), Some(12));
    }
}
