//! What a [`Connection`](super::Connection) reports to its driver.

use std::time::Duration;

use crate::Jid;
use crate::binary::Node;
use crate::group::{GroupInfo, GroupParticipant};
use crate::message::{IncomingMessage, MessageId, MessageInfo};
use crate::pair::PairError;
use crate::receipt::Receipt;
use crate::stanza::CloseReason;
use crate::usync::ContactStatus;

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
#[derive(Debug, Clone, PartialEq)]
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
    /// A message was decrypted (05 §9.2). Its delivery receipt and ack are already queued.
    Message(Box<IncomingMessage>),
    /// A message could not be decrypted or decoded (05 §9.3). A retry receipt asking the
    /// sender to re-send was queued unless `retry_count` reached the limit (5); a
    /// successful re-send arrives later as [`Event::Message`] with the same id.
    UndecryptableMessage {
        /// Who sent it, where, id and time.
        info: MessageInfo,
        /// Why it failed.
        reason: UndecryptableReason,
        /// The retry count of the receipt sent (0 = none sent).
        retry_count: u32,
    },
    /// A receipt for messages (05 §10.4), any kind except `retry` (handled internally).
    Receipt(Receipt),
    /// An outgoing message advanced: sent (server ack), delivered, read, played. Emitted
    /// once per step and device-independent: the first device reaching a step moves it.
    MessageStatus {
        /// The message id.
        id: MessageId,
        /// The chat it was sent to.
        chat: Jid,
        /// The new status.
        status: MessageStatus,
        /// The device whose receipt moved it (`None` for `Sent`).
        by: Option<Jid>,
        /// Unix seconds of the ack / receipt.
        timestamp: u64,
    },
    /// A stanza the connection layer does not consume (messages, receipts, notifications,
    /// presence, calls, `<ib>` children it does not act on, server IQs it does not answer).
    /// `message`, `receipt`, `notification` and `call` have already been acked (03 §11).
    Stanza(Node),
}

/// Why an incoming message could not be read (for [`Event::UndecryptableMessage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UndecryptableReason {
    /// No session with the sending device, or none that authenticates the message.
    NoSession,
    /// A `pkmsg` named a prekey (one-time or signed) we no longer have.
    UnknownPreKey,
    /// No sender key for the group message (the SKDM never arrived).
    NoSenderKey,
    /// The sender's identity key is not trusted.
    UntrustedIdentity,
    /// The ciphertext is malformed or fails authentication.
    InvalidMessage,
    /// The plaintext padding or protobuf is malformed.
    InvalidPlaintext,
    /// The stanza carried no `<enc>` we can decrypt (e.g. `<unavailable>`).
    Unavailable,
    /// Reading or writing the store failed.
    Store,
}

/// Where an outgoing message is (05 §10.1); ordered, later steps compare greater.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageStatus {
    /// The server acked it (05 §8).
    Sent,
    /// A recipient device received it (delivery receipt, `inactive` included).
    Delivered,
    /// The recipient read it (`read`).
    Read,
    /// The recipient played it (`played`, voice / view-once).
    Played,
}
