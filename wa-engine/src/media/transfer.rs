//! Media transfer over HTTP (feature `runtime`): the cached `media_conn`, upload sources,
//! errors, and the streaming request body. Upload and download themselves are in
//! `upload.rs` and `download.rs`; [`Client`](crate::Client) exposes them.

use std::fmt;
use std::future::Future;
use std::io::{self, Read};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Mutex, mpsc};

use super::conn::{MediaConn, MediaConnError};
use super::url::{Scheme, UrlError};
use super::{MediaError, message::MediaRefError};
use crate::binary::Node;
use crate::error::SendError;

/// `Origin` header of every media request (whatsmeow, Baileys: `https://web.whatsapp.com`).
pub(crate) const ORIGIN: &str = "https://web.whatsapp.com";
/// `Referer` header of uploads (whatsmeow `upload.go`).
pub(crate) const REFERER: &str = "https://web.whatsapp.com/";
/// Chunks of enc bytes in flight between the encrypting thread and the HTTP body: with
/// [`CHUNK_LEN`](super::CHUNK_LEN) = 64 KiB each, at most 256 KiB of an upload is buffered.
pub(crate) const BODY_CHANNEL_CHUNKS: usize = 4;

/// Why an upload or download failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// The `media_conn` IQ could not be sent or was not answered.
    #[error("media_conn request failed")]
    MediaConnRequest(#[source] SendError),
    /// The `media_conn` reply was unusable or an error.
    #[error(transparent)]
    MediaConn(#[from] MediaConnError),
    /// A URL could not be built or the upload reply not parsed.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The message does not say where or how to download (see [`MediaRefError`]).
    #[error(transparent)]
    MediaRef(#[from] MediaRefError),
    /// The HTTP exchange failed (connect, TLS, timeout, reset) on every host tried.
    #[error("media host request failed")]
    Http(#[source] reqwest::Error),
    /// A media host answered with this non-success status on every host tried (after one
    /// `media_conn` refresh for 401, 403, 404 and 410).
    #[error("media host answered HTTP {status}")]
    Status {
        /// The HTTP status code.
        status: u16,
    },
    /// The file is larger than the host accepts (`maxContentLengthBytes`), bytes.
    #[error("file of {len} bytes exceeds the media host's limit of {limit} bytes")]
    TooLarge {
        /// Enc file length, bytes.
        len: u64,
        /// The host's limit, bytes.
        limit: u64,
    },
    /// Reading the upload source failed.
    #[error("reading the media source failed")]
    Source(#[source] io::Error),
    /// The source yielded different bytes on the upload pass than on the hashing pass (the
    /// file changed meanwhile); the upload was aborted.
    #[error("the media source changed between hashing and upload")]
    SourceChanged,
    /// Writing the downloaded plaintext failed.
    #[error("writing the downloaded media failed")]
    Sink(#[source] io::Error),
    /// The downloaded file failed verification: a wrong `fileEncSha256` or MAC (tampered or
    /// corrupted bytes), bad padding, wrong length or `fileSha256`. Anything already written
    /// by `download_to` must be discarded.
    #[error("downloaded media failed verification")]
    Verify(#[source] MediaError),
    /// An internal task failed (panicked or was cancelled).
    #[error("media transfer task failed")]
    Task,
}

impl TransferError {
    /// The verification error, when the download failed verification.
    #[must_use]
    pub fn verification(&self) -> Option<&MediaError> {
        match self {
            Self::Verify(e) => Some(e),
            _ => None,
        }
    }
}

/// Where an upload reads its plaintext from.
///
/// The upload token (SHA-256 of the enc file) must be known before the body is sent, so a
/// streamed source is read twice with the same media key: once to hash, once to send
/// (see [`Encryptor`](super::Encryptor)). Only [`Self::Bytes`] is read once (its enc file
/// is kept in memory).
#[non_exhaustive]
pub enum MediaSource {
    /// Plaintext already in memory; encrypted in one pass, the enc file kept in memory.
    Bytes(Bytes),
    /// A file, read twice in 64 KiB chunks; never held whole in memory.
    Path(PathBuf),
    /// Any source that can be opened again from the start, read twice like a file.
    Reopen(Arc<dyn Fn() -> io::Result<Box<dyn Read + Send>> + Send + Sync>),
}

impl MediaSource {
    /// A source that calls `open` for each pass; each call must yield the same bytes.
    pub fn reopen<F, R>(open: F) -> Self
    where
        F: Fn() -> io::Result<R> + Send + Sync + 'static,
        R: Read + Send + 'static,
    {
        Self::Reopen(Arc::new(move || {
            open().map(|r| Box::new(r) as Box<dyn Read + Send>)
        }))
    }

    /// Opens a fresh reader over the source.
    pub(crate) fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        match self {
            Self::Bytes(b) => Ok(Box::new(io::Cursor::new(b.clone()))),
            Self::Path(p) => Ok(Box::new(std::fs::File::open(p)?)),
            Self::Reopen(open) => open(),
        }
    }
}

impl From<Vec<u8>> for MediaSource {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Bytes(bytes.into())
    }
}

impl From<Bytes> for MediaSource {
    fn from(bytes: Bytes) -> Self {
        Self::Bytes(bytes)
    }
}

impl From<PathBuf> for MediaSource {
    fn from(path: PathBuf) -> Self {
        Self::Path(path)
    }
}

impl From<&std::path::Path> for MediaSource {
    fn from(path: &std::path::Path) -> Self {
        Self::Path(path.to_owned())
    }
}

impl fmt::Debug for MediaSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bytes(b) => write!(f, "MediaSource::Bytes({} bytes)", b.len()),
            Self::Path(p) => f.debug_tuple("MediaSource::Path").field(p).finish(),
            Self::Reopen(_) => f.write_str("MediaSource::Reopen(..)"),
        }
    }
}

/// Settings of media transfers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransferConfig {
    /// Scheme of media URLs: `https` for WhatsApp (default), `http` for wa-sandbox.
    pub scheme: Scheme,
    /// Timeout for opening a connection to a media host.
    pub connect_timeout: Duration,
    /// Longest pause between two reads of a response (or of the upload's reply).
    pub read_timeout: Duration,
}

impl Default for TransferConfig {
    fn default() -> Self {
        Self {
            scheme: Scheme::Https,
            connect_timeout: Duration::from_secs(20),
            read_timeout: Duration::from_secs(120),
        }
    }
}

/// The HTTP side of media: one `reqwest` client and the cached `media_conn`.
pub(crate) struct Transfer {
    /// Built on first use ([`Self::http`]): most clients never transfer media, and a
    /// `reqwest::Client` (connection pool, resolver, TLS roots) costs tens of KiB.
    http: OnceLock<reqwest::Client>,
    timeouts: (Duration, Duration),
    pub(crate) scheme: Scheme,
    /// The cached reply; the lock also makes concurrent refreshes single-flight.
    cache: Mutex<Option<MediaConn>>,
}

impl fmt::Debug for Transfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transfer")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

impl Transfer {
    pub(crate) fn new(config: &TransferConfig) -> Self {
        Self {
            http: OnceLock::new(),
            timeouts: (config.connect_timeout, config.read_timeout),
            scheme: config.scheme,
            cache: Mutex::new(None),
        }
    }

    /// The HTTP client, built on first use and shared by every `Client` of the process
    /// with the same timeouts (`reqwest::Client` is a handle on a shared pool; media hosts
    /// are the same for everyone).
    pub(crate) fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            static SHARED: std::sync::Mutex<Vec<((Duration, Duration), reqwest::Client)>> =
                std::sync::Mutex::new(Vec::new());
            let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((_, client)) = shared.iter().find(|(t, _)| *t == self.timeouts) {
                return client.clone();
            }
            let (connect, read) = self.timeouts;
            // Building fails only when the TLS backend cannot initialise; fall back to the
            // defaults rather than fail a transfer over a timeout setting.
            let client = reqwest::Client::builder()
                .connect_timeout(connect)
                .read_timeout(read)
                .build()
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "media: HTTP client settings rejected; defaults");
                    reqwest::Client::new()
                });
            shared.push((self.timeouts, client.clone()));
            client
        })
    }

    /// The current `media_conn`: the cached one unless it expired, or is `stale` (fetched
    /// no later than a reply that just failed with an auth error); else a fresh one from
    /// `fetch` (which sends [`MediaConn::request`] and returns the reply).
    pub(crate) async fn media_conn<F, Fut>(
        &self,
        fetch: F,
        stale: Option<Instant>,
    ) -> Result<MediaConn, TransferError>
    where
        F: FnOnce(Node) -> Fut,
        Fut: Future<Output = Result<Node, SendError>>,
    {
        let mut cache = self.cache.lock().await;
        let now = Instant::now();
        if let Some(conn) = cache.as_ref()
            && !conn.is_expired(now)
            && stale.is_none_or(|s| conn.fetched_at > s)
        {
            return Ok(conn.clone());
        }
        let reply = fetch(MediaConn::request()).await.map_err(|e| match e {
            SendError::Rejected { code, .. } => {
                TransferError::MediaConn(MediaConnError::Rejected { code })
            }
            other => TransferError::MediaConnRequest(other),
        })?;
        let conn = MediaConn::parse(&reply, Instant::now())?;
        tracing::debug!(hosts = conn.hosts.len(), ttl = ?conn.ttl, "media: media_conn refreshed");
        *cache = Some(conn.clone());
        Ok(conn)
    }
}

/// Whether a status means the URL or the auth token went stale: refresh `media_conn` and
/// try again (whatsmeow stops on 403/404/410; whatsapp-rust refreshes on auth errors).
pub(crate) fn is_stale_status(status: u16) -> bool {
    matches!(status, 401 | 403 | 404 | 410)
}

/// A request body fed by the encrypting thread over a bounded channel: an exact size hint
/// (the enc file length) and at most [`BODY_CHANNEL_CHUNKS`] chunks in flight.
pub(crate) struct ChannelBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    remaining: u64,
}

impl ChannelBody {
    pub(crate) fn new(rx: mpsc::Receiver<io::Result<Bytes>>, len: u64) -> Self {
        Self { rx, remaining: len }
    }
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, io::Error>>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
                Poll::Ready(Some(Ok(http_body::Frame::data(chunk))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}
