//! Downloading a stored media message again: verified by the engine into a temporary file,
//! then streamed out.

use std::io;

use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use wa_engine::media::MediaRef;
use wa_engine::{Client, TransferError};

use super::intake::{MAX_FILE_NAME, valid_mimetype};
use super::record::StoredMedia;
use super::temp::TempFile;
use crate::db::{ServerDb, key2};
use crate::error::{ApiError, MediaApiError};
use crate::session::Session;
use crate::state::AppState;

/// Read buffer when streaming a download out, bytes.
const STREAM_CHUNK: usize = 64 * 1024;

/// A verified download, ready to stream.
#[derive(Debug)]
pub(crate) struct Download {
    /// The verified file, opened for reading.
    pub(crate) file: tokio::fs::File,
    /// The temporary file (removed when dropped: keep it until the stream ends).
    pub(crate) temp: TempFile,
    /// Its length, bytes.
    pub(crate) len: u64,
    /// The MIME type to announce (checked; `application/octet-stream` by default).
    pub(crate) mimetype: String,
    /// A file name for `Content-Disposition` (printable ASCII), if any.
    pub(crate) file_name: Option<String>,
}

/// Downloads and verifies the media of message `message_id` of `session`.
///
/// # Errors
/// [`MediaApiError::NotFound`] without a stored reference, [`ApiError::NotConnected`],
/// and the mapped download failures ([`MediaApiError::Expired`], `Verification`, `Download`).
pub(crate) async fn fetch_verified(
    state: &AppState,
    session: &Session,
    message_id: &str,
) -> Result<Download, ApiError> {
    let id = &session.id;
    let stored: StoredMedia = ServerDb::get(&state.db().media, key2(id, message_id), "media")?
        .ok_or(MediaApiError::NotFound)?;
    let media = stored
        .to_ref()
        .ok_or_else(|| ApiError::internal("stored media record is damaged"))?;
    let client = session.connected_client()?;
    let temp = TempFile::new(state)?;
    let mut file = tokio::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(temp.path())
        .await
        .map_err(ApiError::internal)?;
    download_verified(&client, &media, &mut file).await?;
    file.flush().await.map_err(ApiError::internal)?;
    let len = file.metadata().await.map_err(ApiError::internal)?.len();
    let file = tokio::fs::File::open(temp.path())
        .await
        .map_err(ApiError::internal)?;
    let mimetype = stored
        .mimetype
        .as_deref()
        .filter(|m| valid_mimetype(m))
        .unwrap_or("application/octet-stream")
        .to_owned();
    Ok(Download {
        file,
        temp,
        len,
        mimetype,
        file_name: stored.file_name.as_deref().and_then(ascii_file_name),
    })
}

/// A file name for `Content-Disposition`: printable ASCII without quotes or backslashes
/// (others become `_`); `None` when nothing is left.
fn ascii_file_name(name: &str) -> Option<String> {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_FILE_NAME)
        .collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty()).then(|| cleaned.to_owned())
}

/// Streams `file` in chunks; `temp` is dropped (the file removed) when the stream ends.
pub(crate) fn read_stream(
    file: tokio::fs::File,
    temp: TempFile,
) -> impl futures_util::Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
    futures_util::stream::unfold(Some((file, temp)), |state| async move {
        let (mut file, temp) = state?;
        let mut buf = vec![0_u8; STREAM_CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some((file, temp))))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// Downloads into `sink` and maps the engine's errors.
async fn download_verified(
    client: &Client,
    media: &MediaRef,
    sink: &mut tokio::fs::File,
) -> Result<(), ApiError> {
    match client.download_to(media, sink).await {
        Ok(_) => Ok(()),
        Err(TransferError::Status { status: 404 | 410 }) => Err(MediaApiError::Expired.into()),
        Err(TransferError::Verify(e)) => {
            tracing::warn!(error = %e, "downloaded media failed verification");
            Err(MediaApiError::Verification.into())
        }
        Err(TransferError::MediaConnRequest(e)) => Err(e.into()),
        Err(e) => {
            tracing::warn!(error = %e, "media download failed");
            Err(MediaApiError::Download.into())
        }
    }
}
