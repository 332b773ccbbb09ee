//! Uploading a received file and building its message: what the message says about the
//! file (dimensions, thumbnail, duration, page count, animation) is probed as the engine's
//! own `send_*` helpers do.

use std::io;
use std::path::{Path, PathBuf};

use wa_engine::media::message::{
    self, AudioOptions, DocumentOptions, ImageOptions, StickerOptions, VideoOptions,
};
use wa_engine::media::{MediaSource, UploadedMedia, probe};
use wa_engine::{Client, TransferError};
use wa_proto::wa;

use super::Kind;
use super::intake::Fields;
use super::temp::Received;
use crate::error::{ApiError, MediaApiError};

/// Largest file read whole for a thumbnail or a PDF page count, bytes (the engine's limit);
/// larger files are sent without them.
const PROBE_MAX: u64 = 16 * 1024 * 1024;

/// Reads a whole file of at most [`PROBE_MAX`] bytes (for a thumbnail or a page count).
async fn read_small(path: &Path, len: u64) -> Option<Vec<u8>> {
    if len > PROBE_MAX {
        return None;
    }
    tokio::fs::read(path).await.ok()
}

/// Upload failures: 413 for the host's limit, the `SendError` mapping for a failed
/// `media_conn` query, else 502 `media_upload_failed` (nothing was sent).
fn upload_error(e: TransferError) -> ApiError {
    match e {
        TransferError::TooLarge { limit, .. } => MediaApiError::TooLarge { limit }.into(),
        TransferError::MediaConnRequest(e) => e.into(),
        other => {
            tracing::warn!(error = %other, "media upload failed");
            MediaApiError::Upload.into()
        }
    }
}

/// Fills in what the message can say about the file, as the engine's `Client::send_image`
/// and its siblings do (dimensions, a JPEG thumbnail for images up to [`PROBE_MAX`], Ogg
/// duration, PDF page count, WebP animation: `media::probe`), uploads the file (encrypted
/// while streamed from the temporary file) and builds the message with the engine's
/// `media::message` builders. The engine's `send_*` helpers are not used because they draw
/// the message id themselves, and the status record must exist (`pending`) before the
/// message is handed to the engine.
pub(crate) async fn upload_and_build(
    client: &Client,
    kind: Kind,
    file: &Received,
    mimetype: String,
    fields: Fields,
) -> Result<wa::Message, ApiError> {
    let path = file.temp.path().to_owned();
    let head = &file.head;
    let dims = probe::image_dimensions(head);
    let message = match kind {
        Kind::Image => {
            let thumbnail = match read_small(&path, file.len).await {
                Some(whole) => tokio::task::spawn_blocking(move || {
                    probe::thumbnail(&whole, probe::THUMBNAIL_SIDE)
                        .ok()
                        .map(|t| t.jpeg)
                })
                .await
                .ok()
                .flatten(),
                None => None,
            };
            let options = ImageOptions {
                mimetype,
                caption: fields.caption,
                width: dims.map(|d| d.0),
                height: dims.map(|d| d.1),
                jpeg_thumbnail: thumbnail,
                view_once: fields.view_once,
            };
            let up = upload(client, kind, path).await?;
            message::image(&up, options)
        }
        Kind::Video => {
            let options = VideoOptions {
                mimetype,
                caption: fields.caption,
                view_once: fields.view_once,
                ..Default::default()
            };
            message::video(&upload(client, kind, path).await?, options)
        }
        Kind::Audio => {
            let seconds = if head.starts_with(b"OggS") {
                let probe_path = path.clone();
                tokio::task::spawn_blocking(move || {
                    std::fs::File::open(probe_path)
                        .and_then(|f| probe::ogg_duration(io::BufReader::new(f)))
                        .ok()
                        .flatten()
                })
                .await
                .ok()
                .flatten()
                // WhatsApp shows whole seconds; round up so a 0.4 s note is not "0:00".
                .map(|d| {
                    u32::try_from(d.as_secs() + u64::from(d.subsec_nanos() > 0)).unwrap_or(u32::MAX)
                })
            } else {
                None
            };
            let options = AudioOptions {
                mimetype,
                ptt: fields.voice_note,
                seconds,
                ..Default::default()
            };
            message::audio(&upload(client, kind, path).await?, options)
        }
        Kind::Document => {
            let page_count = if mimetype == "application/pdf" {
                read_small(&path, file.len)
                    .await
                    .as_deref()
                    .and_then(probe::pdf_page_count)
            } else {
                None
            };
            let options = DocumentOptions {
                mimetype,
                file_name: fields.file_name,
                caption: fields.caption,
                page_count,
                ..Default::default()
            };
            message::document(&upload(client, kind, path).await?, options)
        }
        Kind::Sticker => {
            let options = StickerOptions {
                mimetype,
                width: dims.map(|d| d.0),
                height: dims.map(|d| d.1),
                is_animated: probe::webp_is_animated(head),
            };
            message::sticker(&upload(client, kind, path).await?, options)
        }
    };
    Ok(message)
}

/// Uploads the file at `path` (encrypted while streamed) with `kind`'s media keys.
async fn upload(client: &Client, kind: Kind, path: PathBuf) -> Result<UploadedMedia, ApiError> {
    client
        .upload(kind.media_type(), MediaSource::Path(path))
        .await
        .map_err(upload_error)
}
