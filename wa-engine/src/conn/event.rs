//! What a [`Connection`](super::Connection) reports to its driver.

use std::time::Duration;

use crate::Jid;
use crate::binary::Node;
use crate::message::{IncomingMessage, MessageId, MessageInfo};

use super::request::{Reply, RequestId, SendError};
use crate::pair::PairError;
use crate::receipt::Receipt;
#[cfg(doc)]
use crate::stanza::CloseReason;

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
