//! What a [`Connection`](super::Connection) reports to its driver.

use std::time::Duration;

use crate::Jid;
use crate::binary::Node;
use crate::pair::PairError;
use crate::stanza::CloseReason;

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
}

/// Something the driver must act on or forward, in order. Drain with
/// [`Connection::poll_event`](super::Connection::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The server's certificate chain verified and our ClientFinish is queued: the Noise
    /// handshake succeeded. A driver resolves its `connect()` here.
    HandshakeComplete {
        /// Whether this connection registers a new device (no stored pairing) or logs in.
        registering: bool,
    },
    /// Show this QR string until `expires_in` has passed; a new one follows (03 §4.4). The
    /// string carries the ADV secret: show it only to the user.
    Qr {
        /// The QR string (03 §4.3).
        code: String,
        /// How long it stays valid: 60 s for the first ref, 20 s for the others.
        expires_in: Duration,
    },
    /// A pairing code to type on the phone (03 §5.2), `XXXX-XXXX`.
    PairingCode {
        /// The code.
        code: String,
    },
    /// The phone paired this device and the credentials are stored. The server now sends 515;
    /// the connection closes with [`CloseReason::RestartRequired`] and the driver logs in.
    PairSuccess {
        /// Own phone-number device JID.
        jid: Jid,
        /// Own LID device JID, if the server sent one.
        lid: Option<Jid>,
        /// The primary's platform, e.g. `android`.
        platform: String,
        /// Business name, business accounts only.
        business_name: Option<String>,
    },
    /// Pairing failed locally (pair-success did not verify, or the pairing-code exchange
    /// failed). For pair-success the connection closes with [`CloseReason::PairingFailed`].
    PairError {
        /// What failed.
        error: PairError,
    },
    /// `<success>`: logged in; the device is online.
    Connected {
        /// Own phone-number device JID.
        jid: Jid,
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
    /// A stanza the connection layer does not consume (messages, receipts, notifications,
    /// presence, calls, `<ib>` children it does not act on, server IQs it does not answer).
    /// `message`, `receipt`, `notification` and `call` have already been acked (03 §11).
    Stanza(Node),
}
