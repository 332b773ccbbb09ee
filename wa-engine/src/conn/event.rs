//! What a [`Connection`](super::Connection) reports to its driver.

use std::collections::VecDeque;

use crate::binary::Node;
use crate::group::{GroupInfo, GroupParticipant};
use crate::message::MessageId;
use crate::pair::PairError;
use crate::stanza::CloseReason;
use crate::usync::ContactStatus;

pub use crate::event::{MessageStatus, UndecryptableReason};

/// Identifies one [`Request`](super::Request) passed to
/// [`Connection::send`](super::Connection::send); its outcome arrives as
/// [`Event::RequestDone`] with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// The successful outcome of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// The `type="result"` response to [`Request::Iq`](super::Request::Iq).
    Iq(Node),
    /// The pairing code to show the user, `XXXX-XXXX`, for
    /// [`Request::PairingCode`](super::Request::PairingCode): the server accepted
    /// companion_hello (03 §5.4).
    PairingCode(String),
    /// The request completed without a payload (logout done, stanza sent).
    Done,
    /// [`Request::SendMessage`](super::Request::SendMessage): the server acked the message
    /// (05 §8).
    MessageSent {
        /// The message id.
        id: MessageId,
        /// The server's timestamp (`t` of the ack), unix seconds; 0 if absent.
        timestamp: u64,
    },
    /// [`Request::IsOnWhatsApp`](super::Request::IsOnWhatsApp): one entry per number asked.
    OnWhatsApp(Vec<ContactStatus>),
    /// Group metadata (create, metadata query).
    Group(GroupInfo),
    /// Per-participant outcome of a membership change.
    Participants(Vec<GroupParticipant>),
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The connection is not (or no longer) able to send: closed, or the Noise handshake has
    /// not finished.
    #[error("not connected")]
    NotConnected,
    /// The request needs a logged-in connection (after `<success>`).
    #[error("not logged in")]
    NotLoggedIn,
    /// The request needs a registration connection (an unpaired device waiting for pairing).
    #[error("not waiting for pairing")]
    NotPairing,
    /// No response within the IQ timeout.
    #[error("request timed out")]
    Timeout,
    /// The server answered with `type="error"`.
    #[error("server rejected the request with code {code}")]
    Rejected {
        /// The `<error code>` (0 if absent).
        code: u16,
        /// The `<error text>`, if any.
        text: Option<String>,
    },
    /// The connection closed before the request completed.
    #[error("connection closed: {0}")]
    Closed(CloseReason),
    /// The request's input is invalid (e.g. a phone number for code pairing).
    #[error(transparent)]
    Pair(#[from] PairError),
    /// The node could not be encoded or the store failed while preparing the request.
    #[error("request could not be prepared")]
    Internal,
    /// The recipient has no device we could encrypt for (not on WhatsApp, or no device
    /// published usable keys).
    #[error("recipient has no reachable device")]
    NoDevices,
    /// The JID cannot be sent to (not a user or group JID).
    #[error("invalid recipient")]
    InvalidRecipient,
    /// A server response could not be read.
    #[error("unexpected server response")]
    BadResponse,
}

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
