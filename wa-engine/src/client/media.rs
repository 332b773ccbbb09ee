//! Media on the [`Client`]: `media_conn`, upload and download (shared/protocol/06 §2).
//!
//! ```no_run
//! use wa_engine::Client;
//! use wa_engine::media::{MediaRef, MediaSource, MediaType, message};
//!
//! # async fn demo(client: Client) -> Result<(), Box<dyn std::error::Error>> {
//! // Upload a file (streamed: never whole in memory) and build its message.
//! let uploaded = client
//!     .upload(MediaType::Document, MediaSource::Path("invoice.pdf".into()))
//!     .await?;
//! let msg = message::document(&uploaded, message::DocumentOptions {
//!     mimetype: "application/pdf".into(),
//!     file_name: Some("invoice.pdf".into()),
//!     ..Default::default()
//! });
//! // ... send `msg`; on the receiving side:
//! if let Some(media) = MediaRef::from_message(&msg)? {
//!     let plaintext = client.download(&media).await?; // verified
//!     # let _ = plaintext;
//! }
//! # Ok(()) }
//! ```

use std::io::Read as _;

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wa_proto::wa;

use super::{Client, SendOptions};
use crate::Jid;
use crate::binary::Node;
use crate::error::SendError;
use crate::media::message::{
    self, AudioOptions, DocumentOptions, ImageOptions, StickerOptions, VideoOptions,
};
use crate::media::{
    DecryptedMedia, MediaConn, MediaRef, MediaSource, MediaType, TransferError, UploadedMedia,
    probe,
};
use crate::message::MessageId;

/// Bytes read from the start of a source to sniff its type and read its header (256 KiB:
/// JPEG dimensions may follow a large EXIF block).
const HEAD_LEN: usize = 256 * 1024;
/// Largest file read whole for a thumbnail or a PDF page count, bytes (16 MiB); larger
/// files are sent without them.
const PROBE_MAX: usize = 16 * 1024 * 1024;

/// Why sending a media message failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendMediaError {
    /// Reading, encrypting or uploading the file failed; nothing was sent.
    #[error("media upload failed")]
    Upload(#[source] TransferError),
    /// The file was uploaded but the message could not be sent.
    #[error("sending the media message failed")]
    Send(#[source] SendError),
}

/// A media message that was uploaded and sent.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SentMedia {
    /// The message id.
    pub id: MessageId,
    /// The server's timestamp of the ack (`t`), unix seconds; 0 if absent.
    pub timestamp: u64,
    /// The message as sent (every media field filled in).
    pub message: wa::Message,
}

/// The start of a source, and the whole of it when small and wanted.
struct Peek {
    head: Bytes,
    whole: Option<Bytes>,
}

/// Reads the head (and up to [`PROBE_MAX`] bytes when `whole` is wanted) of a source on a
/// blocking thread.
async fn peek(source: &MediaSource, whole: bool) -> Result<Peek, TransferError> {
    if let MediaSource::Bytes(b) = source {
        return Ok(Peek {
            head: b.slice(..b.len().min(HEAD_LEN)),
            whole: (whole && b.len() <= PROBE_MAX).then(|| b.clone()),
        });
    }
    let reader = source.open().map_err(TransferError::Source)?;
    tokio::task::spawn_blocking(move || {
        let limit = if whole { PROBE_MAX + 1 } else { HEAD_LEN };
        let mut buf = Vec::new();
        reader
            .take(limit as u64)
            .read_to_end(&mut buf)
            .map_err(TransferError::Source)?;
        let complete = whole && buf.len() <= PROBE_MAX;
        let buf = Bytes::from(buf);
        Ok(Peek {
            head: buf.slice(..buf.len().min(HEAD_LEN)),
            whole: complete.then_some(buf),
        })
    })
    .await
    .map_err(|_| TransferError::Task)?
}

fn mimetype_or(given: String, head: &[u8], fallback: &str) -> String {
    if given.is_empty() {
        probe::sniff_mimetype(head).unwrap_or(fallback).to_owned()
    } else {
        given
    }
}

impl Client {
    /// The current `media_conn` (hosts, auth token, lifetimes): the cached reply while it is
    /// valid, else a fresh one from a `w:m` IQ (shared/protocol/06 §2.3).
    ///
    /// # Errors
    /// [`TransferError::MediaConnRequest`] when the IQ cannot be sent (not logged in,
    /// timeout), [`TransferError::MediaConn`] for an error reply or an unusable one.
    pub async fn media_conn(&self) -> Result<MediaConn, TransferError> {
        self.media
            .media_conn(|iq| self.iq_for_media(iq), None)
            .await
    }

    /// Fetches a fresh `media_conn` even if the cached one is still valid.
    ///
    /// # Errors
    /// As [`Self::media_conn`].
    pub async fn refresh_media_conn(&self) -> Result<MediaConn, TransferError> {
        let stale = Some(std::time::Instant::now());
        self.media
            .media_conn(|iq| self.iq_for_media(iq), stale)
            .await
    }

    /// Encrypts `source` with a fresh media key and uploads it as `media_type`, streaming:
    /// a [`MediaSource::Path`] is read twice (hash, then send) in 64 KiB chunks and never
    /// sits whole in memory. Returns what a media message needs; build one with
    /// [`media::message`](crate::media::message).
    ///
    /// # Errors
    /// [`TransferError`]: `media_conn` failures, [`TransferError::Status`] /
    /// [`TransferError::Http`] when every host failed (after one `media_conn` refresh on
    /// 401/403), [`TransferError::TooLarge`], [`TransferError::Source`],
    /// [`TransferError::SourceChanged`], [`TransferError::Url`] for a type without upload
    /// path or a bad reply.
    pub async fn upload(
        &self,
        media_type: MediaType,
        source: impl Into<MediaSource>,
    ) -> Result<UploadedMedia, TransferError> {
        self.media
            .upload(|iq| self.iq_for_media(iq), media_type, source.into())
            .await
    }

    /// Downloads a media file, verifies `fileEncSha256`, the MAC, the padding, `fileLength`
    /// and `fileSha256`, and returns the plaintext only if all passed. An expired URL or
    /// token (401/403/404/410) refreshes `media_conn` once and retries on every host.
    ///
    /// # Errors
    /// [`TransferError::Verify`] for a tampered or corrupted file (e.g.
    /// [`MediaError::MacMismatch`](crate::MediaError::MacMismatch)); otherwise as
    /// [`Self::upload`] for the transfer.
    pub async fn download(&self, media: &MediaRef) -> Result<Vec<u8>, TransferError> {
        self.media.download(|iq| self.iq_for_media(iq), media).await
    }

    /// Downloads a media file and streams its plaintext into `sink` (bounded memory).
    ///
    /// **The plaintext is written before it is verified**: unless this returns `Ok`, the
    /// caller must discard everything written (e.g. write to a temporary file and delete it
    /// on error). No retry happens once bytes were written.
    ///
    /// # Errors
    /// As [`Self::download`], plus [`TransferError::Sink`] when writing fails.
    pub async fn download_to<W>(
        &self,
        media: &MediaRef,
        sink: &mut W,
    ) -> Result<DecryptedMedia, TransferError>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        self.media
            .download_to(|iq| self.iq_for_media(iq), media, sink)
            .await
    }

    /// Uploads `source` as `media_type`, builds the message with `build` and sends it to a
    /// user or group; the general form of [`Self::send_image`] and its siblings, which
    /// also fill in what they can read from the file.
    ///
    /// # Errors
    /// [`SendMediaError::Upload`] (nothing was sent) or [`SendMediaError::Send`] (as
    /// [`Self::send_message`]).
    pub async fn send_media(
        &self,
        to: &Jid,
        media_type: MediaType,
        source: impl Into<MediaSource>,
        build: impl FnOnce(&UploadedMedia) -> wa::Message,
    ) -> Result<SentMedia, SendMediaError> {
        let uploaded = self
            .upload(media_type, source)
            .await
            .map_err(SendMediaError::Upload)?;
        let message = build(&uploaded);
        let sent = self
            .send_message_with(to, message.clone(), SendOptions::default())
            .await
            .map_err(SendMediaError::Send)?;
        Ok(SentMedia {
            id: sent.id,
            timestamp: sent.timestamp,
            message,
        })
    }

    /// Sends an image. Blank fields are filled from the file when possible: `mimetype`
    /// (sniffed; default `image/jpeg`), `width` / `height` (PNG, JPEG, GIF, WebP headers)
    /// and, with the `thumbnail` feature, a 32-pixel `jpegThumbnail` for files up to 16 MiB.
    ///
    /// # Errors
    /// As [`Self::send_media`].
    pub async fn send_image(
        &self,
        to: &Jid,
        source: impl Into<MediaSource>,
        mut options: ImageOptions,
    ) -> Result<SentMedia, SendMediaError> {
        let source = source.into();
        let wants_thumb = cfg!(feature = "thumbnail") && options.jpeg_thumbnail.is_none();
        let peeked = peek(&source, wants_thumb)
            .await
            .map_err(SendMediaError::Upload)?;
        options.mimetype = mimetype_or(options.mimetype, &peeked.head, "image/jpeg");
        if let (None, None, Some((w, h))) = (
            options.width,
            options.height,
            probe::image_dimensions(&peeked.head),
        ) {
            options.width = Some(w);
            options.height = Some(h);
        }
        #[cfg(feature = "thumbnail")]
        if let Some(whole) = peeked.whole {
            options.jpeg_thumbnail = tokio::task::spawn_blocking(move || {
                probe::thumbnail(&whole, probe::THUMBNAIL_SIDE).ok()
            })
            .await
            .ok()
            .flatten()
            .map(|t| t.jpeg);
        }
        self.send_media(to, MediaType::Image, source, |up| {
            message::image(up, options)
        })
        .await
    }

    /// Sends a video (a GIF with `gif_playback`). A blank `mimetype` becomes the sniffed one
    /// (default `video/mp4`); dimensions, duration and thumbnail are the caller's to give.
    ///
    /// # Errors
    /// As [`Self::send_media`].
    pub async fn send_video(
        &self,
        to: &Jid,
        source: impl Into<MediaSource>,
        mut options: VideoOptions,
    ) -> Result<SentMedia, SendMediaError> {
        let source = source.into();
        let peeked = peek(&source, false).await.map_err(SendMediaError::Upload)?;
        options.mimetype = mimetype_or(options.mimetype, &peeked.head, "video/mp4");
        self.send_media(to, MediaType::Video, source, |up| {
            message::video(up, options)
        })
        .await
    }

    /// Sends an audio file, or a voice note with `ptt`. A blank `mimetype` is sniffed
    /// (Ogg voice notes become `audio/ogg; codecs=opus`, WhatsApp's; default `audio/mpeg`),
    /// and a blank `seconds` is read from Ogg streams (streamed, bounded memory).
    ///
    /// # Errors
    /// As [`Self::send_media`].
    pub async fn send_audio(
        &self,
        to: &Jid,
        source: impl Into<MediaSource>,
        mut options: AudioOptions,
    ) -> Result<SentMedia, SendMediaError> {
        let source = source.into();
        let peeked = peek(&source, false).await.map_err(SendMediaError::Upload)?;
        let is_ogg = peeked.head.starts_with(b"OggS");
        if options.mimetype.is_empty() && is_ogg {
            options.mimetype = "audio/ogg; codecs=opus".to_owned();
        }
        options.mimetype = mimetype_or(options.mimetype, &peeked.head, "audio/mpeg");
        if options.seconds.is_none() && is_ogg {
            let reader = source
                .open()
                .map_err(|e| SendMediaError::Upload(TransferError::Source(e)))?;
            let duration = tokio::task::spawn_blocking(move || probe::ogg_duration(reader))
                .await
                .map_err(|_| SendMediaError::Upload(TransferError::Task))?
                .map_err(|e| SendMediaError::Upload(TransferError::Source(e)))?;
            // WhatsApp shows whole seconds; round up so a 0.4 s note is not "0:00".
            options.seconds = duration.map(|d| {
                u32::try_from(d.as_secs() + u64::from(d.subsec_nanos() > 0)).unwrap_or(u32::MAX)
            });
        }
        self.send_media(to, MediaType::Audio, source, |up| {
            message::audio(up, options)
        })
        .await
    }

    /// Sends a document. A blank `mimetype` is sniffed (default
    /// `application/octet-stream`), a blank `file_name` is taken from a
    /// [`MediaSource::Path`], and a blank `page_count` is read from PDFs up to 16 MiB.
    ///
    /// # Errors
    /// As [`Self::send_media`].
    pub async fn send_document(
        &self,
        to: &Jid,
        source: impl Into<MediaSource>,
        mut options: DocumentOptions,
    ) -> Result<SentMedia, SendMediaError> {
        let source = source.into();
        let wants_pages = options.page_count.is_none();
        let peeked = peek(&source, wants_pages)
            .await
            .map_err(SendMediaError::Upload)?;
        options.mimetype = mimetype_or(options.mimetype, &peeked.head, "application/octet-stream");
        if options.file_name.is_none()
            && let MediaSource::Path(path) = &source
        {
            options.file_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        }
        if wants_pages && options.mimetype == "application/pdf" {
            options.page_count = peeked.whole.as_deref().and_then(probe::pdf_page_count);
        }
        self.send_media(to, MediaType::Document, source, |up| {
            message::document(up, options)
        })
        .await
    }

    /// Sends a sticker (WebP). A blank `mimetype` becomes `image/webp`; blank dimensions and
    /// the animation flag are read from the WebP header.
    ///
    /// # Errors
    /// As [`Self::send_media`].
    pub async fn send_sticker(
        &self,
        to: &Jid,
        source: impl Into<MediaSource>,
        mut options: StickerOptions,
    ) -> Result<SentMedia, SendMediaError> {
        let source = source.into();
        let peeked = peek(&source, false).await.map_err(SendMediaError::Upload)?;
        options.mimetype = mimetype_or(options.mimetype, &peeked.head, "image/webp");
        if let (None, None, Some((w, h))) = (
            options.width,
            options.height,
            probe::image_dimensions(&peeked.head),
        ) {
            options.width = Some(w);
            options.height = Some(h);
        }
        options.is_animated |= probe::webp_is_animated(&peeked.head);
        self.send_media(to, MediaType::Sticker, source, |up| {
            message::sticker(up, options)
        })
        .await
    }

    async fn iq_for_media(&self, iq: Node) -> Result<Node, SendError> {
        self.send_iq(iq).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::UrlError;

    #[test]
    fn media_errors_are_send_and_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<TransferError>();
        check::<SendMediaError>();
        check::<UrlError>();
        let _ = MediaType::Image;
    }
}
