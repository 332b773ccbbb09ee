//! Media messages engine to engine through wa-sandbox: Alice sends an image, a video, a
//! voice note, a PDF document and a sticker with the `send_*` methods (upload to the
//! sandbox's media host, then an end-to-end encrypted message); Bob receives each as
//! `Event::Message`, takes its download handle (`IncomingMessage::media`) and downloads:
//! bytes identical, hashes verified, and the fields read from the files arrive intact.
#![cfg(feature = "runtime")]

use std::io::Write as _;

use wa_engine::media::MediaType;
use wa_engine::media::message::{
    AudioOptions, DocumentOptions, ImageOptions, StickerOptions, VideoOptions,
};

mod media_support;
use media_support::{pair, pattern, sandbox};

/// A valid RGB PNG of `w` x `h` pixels (zlib and CRC from flate2).
fn png(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(0);
        for x in 0..w {
            raw.extend_from_slice(&[(x % 256) as u8, (y % 256) as u8, 128]);
        }
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw).unwrap();
    chunk(&mut out, b"IDAT", &z.finish().unwrap());
    chunk(&mut out, b"IEND", &[]);
    out
}

fn ogg_page(granule: u64, body: &[u8]) -> Vec<u8> {
    let mut page = b"OggS\0\0".to_vec();
    page.extend_from_slice(&granule.to_le_bytes());
    page.extend_from_slice(&[0; 12]);
    page.push(1);
    page.push(u8::try_from(body.len()).unwrap());
    page.extend_from_slice(body);
    page
}

/// An Ogg Opus stream of 2.5 s (pre-skip 312) with filler audio pages.
fn voice_note() -> Vec<u8> {
    let mut head = b"OpusHead\x01\x01".to_vec();
    head.extend_from_slice(&312_u16.to_le_bytes());
    head.extend_from_slice(&[0x80, 0xBB, 0, 0, 0, 0, 0]);
    let mut ogg = ogg_page(0, &head);
    ogg.extend(ogg_page(0, b"OpusTags\0\0\0\0\0\0\0\0"));
    ogg.extend(ogg_page(48_000 + 312, &pattern(3, 200)));
    ogg.extend(ogg_page(120_000 + 312, &pattern(4, 200)));
    ogg
}

#[tokio::test]
async fn each_media_type_sent_engine_to_engine_downloads_identically() -> anyhow::Result<()> {
    let sb = sandbox(23).await?;
    let alice = pair(&sb, "15550003001").await?;
    let mut bob = pair(&sb, "15550003002").await?;
    let to = bob.user();

    // Image: mimetype, dimensions and (feature `thumbnail`) a thumbnail filled in.
    let image = png(120, 80);
    let sent = alice
        .client
        .send_image(
            &to,
            image.clone(),
            ImageOptions {
                caption: Some("the view".into()),
                ..ImageOptions::default()
            },
        )
        .await?;
    let got = bob.next_message().await?;
    assert_eq!(got.info.id, sent.id.0);
    assert_eq!(got.text(), Some("the view"));
    let m = got.message.image_message.as_deref().expect("imageMessage");
    assert_eq!(m.mimetype.as_deref(), Some("image/png"));
    assert_eq!((m.width, m.height), (Some(120), Some(80)));
    assert_eq!(
        m.jpeg_thumbnail.is_some(),
        cfg!(feature = "thumbnail"),
        "thumbnail"
    );
    let media = got.media()?.expect("download handle");
    assert_eq!(media.media_type, MediaType::Image);
    assert_eq!(bob.client.download(&media).await?, image);

    // Video, from bytes with an MP4 header.
    let mut video = b"\0\0\0\x20ftypisom".to_vec();
    video.extend(pattern(8, 500_000));
    alice
        .client
        .send_video(
            &to,
            video.clone(),
            VideoOptions {
                seconds: Some(12),
                ..VideoOptions::default()
            },
        )
        .await?;
    let got = bob.next_message().await?;
    let m = got.message.video_message.as_deref().expect("videoMessage");
    assert_eq!(m.mimetype.as_deref(), Some("video/mp4"));
    assert_eq!(m.seconds, Some(12));
    assert_eq!(
        bob.client.download(&got.media()?.expect("handle")).await?,
        video
    );

    // Voice note: Opus mimetype, duration read from the Ogg pages (2.5 s -> 3), ptt.
    let ogg = voice_note();
    alice
        .client
        .send_audio(
            &to,
            ogg.clone(),
            AudioOptions {
                ptt: true,
                ..AudioOptions::default()
            },
        )
        .await?;
    let got = bob.next_message().await?;
    let m = got.message.audio_message.as_deref().expect("audioMessage");
    assert_eq!(m.mimetype.as_deref(), Some("audio/ogg; codecs=opus"));
    assert_eq!((m.seconds, m.ptt), (Some(3), Some(true)));
    let media = got.media()?.expect("handle");
    assert_eq!(media.media_type, MediaType::Audio);
    assert_eq!(bob.client.download(&media).await?, ogg);

    // Document from a file: name from the path, PDF page count.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("report.pdf");
    let mut pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
                    2 0 obj << /Type /Pages /Kids [] /Count 3 >> endobj\n"
        .to_vec();
    pdf.extend(pattern(5, 100_000));
    std::fs::write(&path, &pdf)?;
    alice
        .client
        .send_document(&to, path.as_path(), DocumentOptions::default())
        .await?;
    let got = bob.next_message().await?;
    let m = got
        .message
        .document_message
        .as_deref()
        .expect("documentMessage");
    assert_eq!(m.mimetype.as_deref(), Some("application/pdf"));
    assert_eq!(m.file_name.as_deref(), Some("report.pdf"));
    assert_eq!(m.page_count, Some(3));
    let mut file = tokio::fs::File::create(dir.path().join("received.pdf")).await?;
    bob.client
        .download_to(&got.media()?.expect("handle"), &mut file)
        .await?;
    drop(file);
    assert_eq!(std::fs::read(dir.path().join("received.pdf"))?, pdf);

    // Sticker: an animated WebP header; dimensions and the flag read from it.
    let mut webp = b"RIFF\0\0\0\0WEBPVP8X".to_vec();
    webp.extend_from_slice(&[10, 0, 0, 0, 0x02, 0, 0, 0]);
    webp.extend_from_slice(&[0xFF, 0x01, 0x00, 0xFF, 0x01, 0x00]);
    webp.extend(pattern(6, 3000));
    alice
        .client
        .send_sticker(&to, webp.clone(), StickerOptions::default())
        .await?;
    let got = bob.next_message().await?;
    let m = got
        .message
        .sticker_message
        .as_deref()
        .expect("stickerMessage");
    assert_eq!(m.mimetype.as_deref(), Some("image/webp"));
    assert_eq!((m.width, m.height), (Some(512), Some(512)));
    assert_eq!(m.is_animated, Some(true));
    let media = got.media()?.expect("handle");
    assert_eq!(media.media_type, MediaType::Sticker);
    assert_eq!(bob.client.download(&media).await?, webp);

    // A text message has no download handle.
    alice.client.send_text(&to, "that's all").await?;
    assert!(bob.next_message().await?.media()?.is_none());

    alice.client.shutdown().await;
    bob.client.shutdown().await;
    sb.shutdown().await;
    Ok(())
}
