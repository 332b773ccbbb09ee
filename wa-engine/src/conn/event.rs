//! What a [`Connection`](super::Connection) reports to its driver.

use std::collections::VecDeque;

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
#[derive(Debug, Default)]
pub(crate) struct EventQueue(VecDeque<Event>);

impl EventQueue {
    /// Appends `event` (a [`crate::Event`] is wrapped in [`Event::Public`]).
    pub(crate) fn push_back(&mut self, event: impl Into<Event>) {
        self.0.push_back(event.into());
    }

    /// The oldest queued event.
    pub(crate) fn pop_front(&mut self) -> Option<Event> {
        self.0.pop_front()
    }
}
