//! Media messages, sans-IO: building the image / video / audio / document / sticker
//! `wa::Message` from an upload (shared/protocol/06 §2.5), and reading back what a download
//! needs from a received one ([`MediaRef`]).
//!
//! ```
//! use wa_engine::media::message::{self, ImageOptions};
//! # fn demo(uploaded: &wa_engine::media::UploadedMedia) {
//! let msg = message::image(uploaded, ImageOptions {
//!     mimetype: "image/jpeg".into(),
//!     caption: Some("invoice".into()),
//!     width: Some(640),
//!     height: Some(480),
//!     ..ImageOptions::default()
//! });
//! # let _ = msg; }
//! ```

use wa_proto::wa;
use wa_proto::wa::message as m;

use super::url::UploadResponse;
use super::{EncryptedMedia, Expected, MediaKey, MediaType};

/// A finished upload: every field a media message shares (shared/protocol/06 §2.5).
///
/// Holds the media key: `Debug` redacts it (see [`MediaKey`]).
#[derive(Debug, Clone)]
pub struct UploadedMedia {
    /// The type the file was encrypted and uploaded as.
    pub media_type: MediaType,
    /// `mediaKey`.
    pub media_key: MediaKey,
    /// `url`: the host's full download URL.
    pub url: String,
    /// `directPath`: the path on any media host.
    pub direct_path: String,
    /// `fileSha256`: SHA-256 of the plaintext.
    pub file_sha256: [u8; 32],
    /// `fileEncSha256`: SHA-256 of the enc file.
    pub file_enc_sha256: [u8; 32],
    /// `fileLength`: plaintext length, bytes.
    pub file_length: u64,
    /// `mediaKeyTimestamp`: unix seconds of the upload.
    pub media_key_timestamp: i64,
    /// The host's `handle` (newsletter uploads), if any.
    pub handle: Option<String>,
}

impl UploadedMedia {
    /// Joins the encryption result and the host's reply; `unix_secs` is the upload time.
    #[must_use]
    pub fn new(
        media_type: MediaType,
        encrypted: EncryptedMedia,
        reply: UploadResponse,
        unix_secs: i64,
    ) -> Self {
        Self {
            media_type,
            file_sha256: encrypted.file_sha256,
            file_enc_sha256: encrypted.file_enc_sha256,
            file_length: encrypted.file_length,
            media_key: encrypted.media_key,
            url: reply.url,
            direct_path: reply.direct_path,
            media_key_timestamp: unix_secs,
            handle: reply.handle,
        }
    }

    /// What a download of this upload needs (e.g. to fetch it back).
    #[must_use]
    pub fn to_ref(&self) -> MediaRef {
        MediaRef {
            media_type: self.media_type,
            direct_path: Some(self.direct_path.clone()),
            url: Some(self.url.clone()),
            media_key: self.media_key.clone(),
            file_sha256: Some(self.file_sha256),
            file_enc_sha256: Some(self.file_enc_sha256),
            file_length: Some(self.file_length),
            mimetype: None,
        }
    }
}

/// Type-specific fields of an image message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageOptions {
    /// `mimetype`, e.g. `image/jpeg`.
    pub mimetype: String,
    /// `caption`.
    pub caption: Option<String>,
    /// `width`, pixels.
    pub width: Option<u32>,
    /// `height`, pixels.
    pub height: Option<u32>,
    /// `jpegThumbnail`: a small JPEG sent inline (not uploaded), e.g. from
    /// [`probe::thumbnail`](super::probe).
    pub jpeg_thumbnail: Option<Vec<u8>>,
    /// `viewOnce`.
    pub view_once: bool,
}

/// Type-specific fields of a video message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VideoOptions {
    /// `mimetype`, e.g. `video/mp4`.
    pub mimetype: String,
    /// `caption`.
    pub caption: Option<String>,
    /// `width`, pixels.
    pub width: Option<u32>,
    /// `height`, pixels.
    pub height: Option<u32>,
    /// `seconds`: duration, whole seconds.
    pub seconds: Option<u32>,
    /// `jpegThumbnail`, inline.
    pub jpeg_thumbnail: Option<Vec<u8>>,
    /// `gifPlayback`: play muted in a loop, as a GIF.
    pub gif_playback: bool,
    /// `viewOnce`.
    pub view_once: bool,
}

/// Type-specific fields of an audio message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudioOptions {
    /// `mimetype`; voice notes are `audio/ogg; codecs=opus` (Baileys, whatsmeow).
    pub mimetype: String,
    /// `seconds`: duration, whole seconds, e.g. from [`probe::ogg_duration`](super::probe).
    pub seconds: Option<u32>,
    /// `ptt`: a voice note (push to talk) rather than an audio file.
    pub ptt: bool,
    /// `waveform`: 64 samples 0..=100, when known.
    pub waveform: Option<Vec<u8>>,
}

/// Type-specific fields of a document message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentOptions {
    /// `mimetype`, e.g. `application/pdf`.
    pub mimetype: String,
    /// `fileName`, shown to the recipient.
    pub file_name: Option<String>,
    /// `title`; defaults to the file name when `None`.
    pub title: Option<String>,
    /// `pageCount`, e.g. from [`probe::pdf_page_count`](super::probe).
    pub page_count: Option<u32>,
    /// `caption`.
    pub caption: Option<String>,
    /// `jpegThumbnail`, inline.
    pub jpeg_thumbnail: Option<Vec<u8>>,
}

/// Type-specific fields of a sticker message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StickerOptions {
    /// `mimetype`; stickers are `image/webp`.
    pub mimetype: String,
    /// `width`, pixels.
    pub width: Option<u32>,
    /// `height`, pixels.
    pub height: Option<u32>,
    /// `isAnimated`.
    pub is_animated: bool,
}

/// Builds a media message struct with the seven fields every media message takes from its
/// upload (06 §2.5: url, direct path, media key, both hashes, length, key timestamp), the
/// given fields, and defaults for the rest.
macro_rules! media_message {
    ($($ty:ident)::+, $up:expr, { $($field:ident: $value:expr),* $(,)? }) => {
        $($ty)::+ {
            url: Some($up.url.clone()),
            direct_path: Some($up.direct_path.clone()),
            media_key: Some($up.media_key.as_bytes().to_vec()),
            file_sha256: Some($up.file_sha256.to_vec()),
            file_enc_sha256: Some($up.file_enc_sha256.to_vec()),
            file_length: Some($up.file_length),
            media_key_timestamp: Some($up.media_key_timestamp),
            $($field: $value,)*
            ..Default::default()
        }
    };
}

fn some_if(flag: bool) -> Option<bool> {
    flag.then_some(true)
}

/// An `imageMessage`.
#[must_use]
pub fn image(up: &UploadedMedia, o: ImageOptions) -> wa::Message {
    wa::Message {
        image_message: Some(Box::new(media_message!(m::ImageMessage, up, {
            mimetype: Some(o.mimetype),
            caption: o.caption,
            width: o.width,
            height: o.height,
            jpeg_thumbnail: o.jpeg_thumbnail,
            view_once: some_if(o.view_once),
        }))),
        ..Default::default()
    }
}

/// A `videoMessage` (a GIF with `gif_playback`).
#[must_use]
pub fn video(up: &UploadedMedia, o: VideoOptions) -> wa::Message {
    wa::Message {
        video_message: Some(Box::new(video_body(up, o))),
        ..Default::default()
    }
}

/// A `ptvMessage`: a round video note (a `VideoMessage` in field 66; Baileys `ptv`).
#[must_use]
pub fn ptv(up: &UploadedMedia, o: VideoOptions) -> wa::Message {
    wa::Message {
        ptv_message: Some(Box::new(video_body(up, o))),
        ..Default::default()
    }
}

fn video_body(up: &UploadedMedia, o: VideoOptions) -> m::VideoMessage {
    media_message!(m::VideoMessage, up, {
        mimetype: Some(o.mimetype),
        caption: o.caption,
        width: o.width,
        height: o.height,
        seconds: o.seconds,
        jpeg_thumbnail: o.jpeg_thumbnail,
        gif_playback: some_if(o.gif_playback),
        view_once: some_if(o.view_once),
    })
}

/// An `audioMessage` (a voice note with `ptt`).
#[must_use]
pub fn audio(up: &UploadedMedia, o: AudioOptions) -> wa::Message {
    wa::Message {
        audio_message: Some(Box::new(media_message!(m::AudioMessage, up, {
            mimetype: Some(o.mimetype),
            seconds: o.seconds,
            ptt: Some(o.ptt),
            waveform: o.waveform,
        }))),
        ..Default::default()
    }
}

/// A `documentMessage`; the title defaults to the file name.
#[must_use]
pub fn document(up: &UploadedMedia, o: DocumentOptions) -> wa::Message {
    let title = o.title.or_else(|| o.file_name.clone());
    wa::Message {
        document_message: Some(Box::new(media_message!(m::DocumentMessage, up, {
            mimetype: Some(o.mimetype),
            file_name: o.file_name,
            title: title,
            page_count: o.page_count,
            caption: o.caption,
            jpeg_thumbnail: o.jpeg_thumbnail,
        }))),
        ..Default::default()
    }
}

/// A `stickerMessage`.
#[must_use]
pub fn sticker(up: &UploadedMedia, o: StickerOptions) -> wa::Message {
    wa::Message {
        sticker_message: Some(Box::new(media_message!(m::StickerMessage, up, {
            mimetype: Some(o.mimetype),
            width: o.width,
            height: o.height,
            is_animated: some_if(o.is_animated),
        }))),
        ..Default::default()
    }
}

/// Why a received media message cannot be downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaRefError {
    /// The message has no `mediaKey`, or it is not 32 bytes.
    #[error("media message has no valid media key")]
    BadMediaKey,
    /// `fileSha256` or `fileEncSha256` is present but not 32 bytes.
    #[error("media message has a hash that is not 32 bytes")]
    BadHash,
    /// Neither `directPath` nor `url` is set.
    #[error("media message has neither a direct path nor a URL")]
    NoLocation,
}

/// Everything a download needs, read from a received media message (or an upload).
///
/// Holds the media key: `Debug` redacts it.
#[derive(Debug, Clone)]
pub struct MediaRef {
    /// Which keys to expand (`Image` for stickers, `Video` for PTV and GIFs, `Audio` for
    /// voice notes).
    pub media_type: MediaType,
    /// `directPath`, the preferred way to fetch (any host of the current `media_conn`).
    pub direct_path: Option<String>,
    /// `url`, used only when there is no direct path.
    pub url: Option<String>,
    /// `mediaKey`.
    pub media_key: MediaKey,
    /// `fileSha256`.
    pub file_sha256: Option<[u8; 32]>,
    /// `fileEncSha256`.
    pub file_enc_sha256: Option<[u8; 32]>,
    /// `fileLength`, bytes.
    pub file_length: Option<u64>,
    /// `mimetype`, as announced by the sender.
    pub mimetype: Option<String>,
}

impl MediaRef {
    /// Reads the media of a message: image, video, PTV, audio, document or sticker, after
    /// unwrapping device-sent, ephemeral, view-once, edited and document-with-caption
    /// wrappers. `Ok(None)` when the message carries no downloadable media.
    ///
    /// # Errors
    /// [`MediaRefError`] for a media message missing its key or location, or with a hash
    /// of the wrong length.
    pub fn from_message(message: &wa::Message) -> Result<Option<Self>, MediaRefError> {
        let msg = unwrap(message);
        let fields = if let Some(x) = &msg.image_message {
            Fields::of(MediaType::Image, x.direct_path.as_ref(), x.url.as_ref())
                .with(&x.media_key, &x.file_sha256, &x.file_enc_sha256)
                .meta(x.file_length, x.mimetype.as_ref())
        } else if let Some(x) = msg.video_message.as_ref().or(msg.ptv_message.as_ref()) {
            Fields::of(MediaType::Video, x.direct_path.as_ref(), x.url.as_ref())
                .with(&x.media_key, &x.file_sha256, &x.file_enc_sha256)
                .meta(x.file_length, x.mimetype.as_ref())
        } else if let Some(x) = &msg.audio_message {
            Fields::of(MediaType::Audio, x.direct_path.as_ref(), x.url.as_ref())
                .with(&x.media_key, &x.file_sha256, &x.file_enc_sha256)
                .meta(x.file_length, x.mimetype.as_ref())
        } else if let Some(x) = &msg.document_message {
            Fields::of(MediaType::Document, x.direct_path.as_ref(), x.url.as_ref())
                .with(&x.media_key, &x.file_sha256, &x.file_enc_sha256)
                .meta(x.file_length, x.mimetype.as_ref())
        } else if let Some(x) = &msg.sticker_message {
            Fields::of(MediaType::Sticker, x.direct_path.as_ref(), x.url.as_ref())
                .with(&x.media_key, &x.file_sha256, &x.file_enc_sha256)
                .meta(x.file_length, x.mimetype.as_ref())
        } else {
            return Ok(None);
        };
        fields.into_ref().map(Some)
    }

    /// The checks a download runs at the end: the announced hashes and length.
    #[must_use]
    pub fn expected(&self) -> Expected {
        Expected {
            file_sha256: self.file_sha256,
            file_enc_sha256: self.file_enc_sha256,
            file_length: self.file_length,
        }
    }
}

impl crate::message::IncomingMessage {
    /// The download handle of a received media message (image, video, PTV, audio,
    /// document, sticker): pass it to [`Client::download`](crate::Client::download) or
    /// [`Client::download_to`](crate::Client::download_to). `Ok(None)` for other messages.
    ///
    /// # Errors
    /// [`MediaRefError`] for a media message missing its key or location.
    pub fn media(&self) -> Result<Option<MediaRef>, MediaRefError> {
        MediaRef::from_message(&self.message)
    }
}

/// Borrowed fields of one media sub-message, gathered before validation.
struct Fields<'a> {
    media_type: MediaType,
    direct_path: Option<&'a String>,
    url: Option<&'a String>,
    media_key: Option<&'a Vec<u8>>,
    file_sha256: Option<&'a Vec<u8>>,
    file_enc_sha256: Option<&'a Vec<u8>>,
    file_length: Option<u64>,
    mimetype: Option<&'a String>,
}

impl<'a> Fields<'a> {
    fn of(media_type: MediaType, direct_path: Option<&'a String>, url: Option<&'a String>) -> Self {
        Self {
            media_type,
            direct_path,
            url,
            media_key: None,
            file_sha256: None,
            file_enc_sha256: None,
            file_length: None,
            mimetype: None,
        }
    }

    fn with(
        mut self,
        key: &'a Option<Vec<u8>>,
        sha: &'a Option<Vec<u8>>,
        enc_sha: &'a Option<Vec<u8>>,
    ) -> Self {
        self.media_key = key.as_ref();
        self.file_sha256 = sha.as_ref();
        self.file_enc_sha256 = enc_sha.as_ref();
        self
    }

    fn meta(mut self, file_length: Option<u64>, mimetype: Option<&'a String>) -> Self {
        self.file_length = file_length;
        self.mimetype = mimetype;
        self
    }

    fn into_ref(self) -> Result<MediaRef, MediaRefError> {
        let media_key = self
            .media_key
            .and_then(|k| MediaKey::from_slice(k).ok())
            .ok_or(MediaRefError::BadMediaKey)?;
        let hash = |h: Option<&Vec<u8>>| -> Result<Option<[u8; 32]>, MediaRefError> {
            h.map(|h| <[u8; 32]>::try_from(h.as_slice()).map_err(|_| MediaRefError::BadHash))
                .transpose()
        };
        let direct_path = self.direct_path.filter(|p| !p.is_empty()).cloned();
        let url = self.url.filter(|u| !u.is_empty()).cloned();
        if direct_path.is_none() && url.is_none() {
            return Err(MediaRefError::NoLocation);
        }
        Ok(MediaRef {
            media_type: self.media_type,
            direct_path,
            url,
            media_key,
            file_sha256: hash(self.file_sha256)?,
            file_enc_sha256: hash(self.file_enc_sha256)?,
            file_length: self.file_length,
            mimetype: self.mimetype.cloned(),
        })
    }
}

/// The message inside device-sent, ephemeral, view-once, edited and document-with-caption
/// wrappers (shared/protocol/05 §2.1): [`crate::message::content::unwrap`], bounded depth.
fn unwrap(message: &wa::Message) -> &wa::Message {
    crate::message::content::unwrap(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uploaded() -> UploadedMedia {
        let (_, enc) = super::super::encrypt(
            MediaKey::from_bytes([3; 32]),
            MediaType::Document,
            b"%PDF-1.4",
        );
        UploadedMedia::new(
            MediaType::Document,
            enc,
            UploadResponse {
                url: "https://h/v/t62.7119-24/1.enc?ccb=11-4".into(),
                direct_path: "/v/t62.7119-24/1.enc?ccb=11-4".into(),
                handle: None,
                object_id: None,
            },
            1_700_000_000,
        )
    }

    #[test]
    fn document_message_carries_every_upload_field_and_reads_back() {
        let up = uploaded();
        let msg = document(
            &up,
            DocumentOptions {
                mimetype: "application/pdf".into(),
                file_name: Some("invoice.pdf".into()),
                page_count: Some(2),
                ..DocumentOptions::default()
            },
        );
        let d = msg.document_message.as_deref().unwrap();
        assert_eq!(d.title.as_deref(), Some("invoice.pdf"));
        assert_eq!(d.file_length, Some(8));
        assert_eq!(d.media_key_timestamp, Some(1_700_000_000));
        let r = MediaRef::from_message(&msg).unwrap().unwrap();
        assert_eq!(r.media_type, MediaType::Document);
        assert_eq!(r.file_enc_sha256, Some(up.file_enc_sha256));
        assert_eq!(r.media_key.as_bytes(), up.media_key.as_bytes());
        assert_eq!(r.mimetype.as_deref(), Some("application/pdf"));
    }

    #[test]
    fn wrapped_sticker_and_ptv_read_with_image_and_video_keys() {
        let up = uploaded();
        let sticker = sticker(&up, StickerOptions::default());
        let wrapped = wa::Message {
            ephemeral_message: Some(Box::new(m::FutureProofMessage {
                message: Some(Box::new(sticker)),
            })),
            ..Default::default()
        };
        let r = MediaRef::from_message(&wrapped).unwrap().unwrap();
        assert_eq!(r.media_type, MediaType::Sticker);
        let r = MediaRef::from_message(&ptv(&up, VideoOptions::default()))
            .unwrap()
            .unwrap();
        assert_eq!(r.media_type, MediaType::Video);
    }

    #[test]
    fn malformed_media_messages_are_rejected_and_text_is_not_media() {
        let mut msg = image(&uploaded(), ImageOptions::default());
        if let Some(i) = msg.image_message.as_deref_mut() {
            i.media_key = Some(vec![1; 31]);
        }
        assert_eq!(
            MediaRef::from_message(&msg).unwrap_err(),
            MediaRefError::BadMediaKey
        );
        let mut msg = audio(&uploaded(), AudioOptions::default());
        if let Some(a) = msg.audio_message.as_deref_mut() {
            a.direct_path = None;
            a.url = Some(String::new());
        }
        assert_eq!(
            MediaRef::from_message(&msg).unwrap_err(),
            MediaRefError::NoLocation
        );
        let text = wa::Message {
            conversation: Some("hi".into()),
            ..Default::default()
        };
        assert!(MediaRef::from_message(&text).unwrap().is_none());
    }
}
