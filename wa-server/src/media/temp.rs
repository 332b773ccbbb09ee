//! Temporary files of media sends and downloads (under `<data-dir>/tmp/`, emptied at
//! start), and [`Sink`], which receives a file into one while counting it against the limit.

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt as _;

use crate::auth::random_b64;
use crate::error::{ApiError, MediaApiError};
use crate::state::AppState;

/// Bytes kept from the start of a file for sniffing and header probes (as the engine's
/// `send_image`: JPEG dimensions may follow a large EXIF block).
pub(crate) const HEAD_LEN: usize = 256 * 1024;

/// A temporary file under `<data-dir>/tmp/`, removed when dropped.
#[derive(Debug)]
pub(crate) struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// A fresh path (the file is created by the caller).
    pub(crate) fn new(state: &AppState) -> Result<Self, ApiError> {
        let dir = tmp_dir(state);
        std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
        Ok(Self {
            path: dir.join(format!("media-{}", random_b64(16))),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove temporary file");
        }
    }
}

/// Temporary files of media sends and downloads; emptied at start.
pub(crate) fn tmp_dir(state: &AppState) -> PathBuf {
    state.config().data_dir.join("tmp")
}

/// A file being received: counts bytes against the limit and keeps the head for sniffing.
pub(crate) struct Sink {
    file: tokio::fs::File,
    temp: TempFile,
    len: u64,
    limit: u64,
    head: Vec<u8>,
}

/// A received file.
pub(crate) struct Received {
    /// The file (removed when dropped).
    pub(crate) temp: TempFile,
    /// Its length, bytes.
    pub(crate) len: u64,
    /// Its first bytes (at most [`HEAD_LEN`]), for sniffing and probes.
    pub(crate) head: Vec<u8>,
}

impl Sink {
    /// A new empty temporary file, limited to the configured largest media file.
    pub(crate) async fn create(state: &AppState) -> Result<Self, ApiError> {
        let temp = TempFile::new(state)?;
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(temp.path())
            .await
            .map_err(ApiError::internal)?;
        Ok(Self {
            file,
            temp,
            len: 0,
            limit: state.config().media.max_bytes,
            head: Vec::new(),
        })
    }

    /// Appends `chunk`; [`MediaApiError::TooLarge`] past the limit.
    pub(crate) async fn write(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        self.len = self.len.saturating_add(chunk.len() as u64);
        if self.len > self.limit {
            return Err(MediaApiError::TooLarge { limit: self.limit }.into());
        }
        if self.head.len() < HEAD_LEN {
            let take = (HEAD_LEN - self.head.len()).min(chunk.len());
            self.head
                .extend_from_slice(chunk.get(..take).unwrap_or_default());
        }
        self.file.write_all(chunk).await.map_err(ApiError::internal)
    }

    /// The file written; [`MediaApiError::Missing`] when it is empty.
    pub(crate) async fn finish(mut self) -> Result<Received, ApiError> {
        self.file.flush().await.map_err(ApiError::internal)?;
        drop(self.file);
        if self.len == 0 {
            return Err(MediaApiError::Missing("the file is empty").into());
        }
        Ok(Received {
            temp: self.temp,
            len: self.len,
            head: self.head,
        })
    }
}
