//! What a [`Connection`](super::Connection) reports to its driver.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::request::{Reply, RequestId, SendError};

pub use crate::event::{MessageStatus, UndecryptableReason};

/// Something the driver must act on or forward, in order. Drain with
/// [`Connection::poll_event`](super::Connection::poll_event).
///
/// Everything meant for the embedder is [`Event::Public`], wrapping the one public
/// [`crate::Event`]; the other variants are for the driver itself.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The server's certificate chain verified and our ClientFinish is queued: the Noise
    /// handshake succeeded. A driver resolves its `connect()` here.
    HandshakeComplete {
        /// Whether this connection registers a new device (no stored pairing) or logs in.
        registering: bool,
    },
    /// The server's count of our one-time pre-keys (03 §7.2). Uploading is the Signal layer's
    /// job; this is informational.
    PreKeyCount {
        /// Pre-keys left on the server.
        count: u32,
    },
    /// A request passed to `send` finished.
    RequestDone {
        /// Which request.
        id: RequestId,
        /// Its outcome.
        result: Result<Reply, SendError>,
    },
    /// The connection needs a media blob: an app-state snapshot or external mutations
    /// (`md-app-state`, 08 §4) or a history-sync chunk (`md-msg-hist`, 08 §9.2). Download
    /// and verify it (the tokio `Client` does, through its media download path) and pass the
    /// verified plaintext, or the failure, to
    /// [`Connection::handle_download`](super::Connection::handle_download) with this `id`.
    /// A result for a closed connection is simply dropped.
    Download {
        /// Which download.
        id: DownloadId,
        /// Where it is and how to decrypt and verify it.
        media: Box<BlobDownload>,
    },
    /// An event for the embedder; a driver forwards it as is. Never one of the
    /// *driver only* variants ([`crate::Event::Disconnected`], [`crate::Event::LoggedOut`],
    /// [`crate::Event::Stopped`]).
    Public(crate::Event),
}

impl From<crate::Event> for Event {
    fn from(event: crate::Event) -> Self {
        Self::Public(event)
    }
}

/// The connection's queue of [`Event`]s: takes public events and connection events alike, so
/// emission sites write `self.events.push_back(crate::Event::Qr { .. })`.
///
/// Each event is tagged with the sequence number of the last store write staged before it
/// (`store::Staged`) and is released only once that write is durable: an embedder never
/// sees a message whose new Signal state could still be lost.
#[derive(Debug, Default)]
pub(crate) struct EventQueue {
    queue: VecDeque<(u64, Event)>,
    staged_seq: Arc<AtomicU64>,
}

impl EventQueue {
    /// An empty queue tagging events with `staged_seq` (`store::Staged::seq_handle`).
    pub(crate) fn new(staged_seq: Arc<AtomicU64>) -> Self {
        Self {
            queue: VecDeque::new(),
            staged_seq,
        }
    }

    /// Appends `event` (a [`crate::Event`] is wrapped in [`Event::Public`]).
    pub(crate) fn push_back(&mut self, event: impl Into<Event>) {
        let barrier = self.staged_seq.load(Ordering::Acquire);
        self.queue.push_back((barrier, event.into()));
    }

    /// The oldest queued event if the store writes staged before it are durable (`durable`
    /// = highest durable sequence number).
    pub(crate) fn pop_front(&mut self, durable: u64) -> Option<Event> {
        match self.queue.front() {
            Some((barrier, _)) if *barrier <= durable => self.queue.pop_front().map(|(_, e)| e),
            _ => None,
        }
    }
}

/// Identifies one [`Event::Download`] of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DownloadId(pub u64);

/// The blob of an [`Event::Download`]: a [`MediaRef`](crate::media::MediaRef) (media type
/// `AppState` or `History`, direct path, key, hashes, length). Two are equal when they name
/// the same file with the same key.
#[derive(Debug, Clone)]
pub struct BlobDownload(pub crate::media::MediaRef);

impl PartialEq for BlobDownload {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq as _;
        let (a, b) = (&self.0, &other.0);
        a.media_type == b.media_type
            && a.direct_path == b.direct_path
            && a.url == b.url
            && a.file_sha256 == b.file_sha256
            && a.file_enc_sha256 == b.file_enc_sha256
            && a.file_length == b.file_length
            && bool::from(a.media_key.as_bytes().ct_eq(b.media_key.as_bytes()))
    }
}
