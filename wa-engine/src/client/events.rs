//! The embedder-facing event stream.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::Jid;
use crate::binary::Node;
use crate::conn::{MessageStatus, UndecryptableReason};
use crate::message::{IncomingMessage, MessageId, MessageInfo};
use crate::pair::PairError;
use crate::receipt::Receipt;
use crate::stanza::CloseReason;

/// What happened to the client, in order. Every variant says when it is emitted and what the
/// embedder should do next.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The device is not paired: show this QR string to the user (render it as a QR code) until
    /// `expires_in` has passed; the next one replaces it (60 s, then 20 s each; 03 §4.4).
    /// After the last one the client stops with [`CloseReason::QrRefsExhausted`].
    Qr {
        /// The QR string (`https://wa.me/settings/linked_devices#...`).
        code: String,
        /// How long this QR is valid.
        expires_in: Duration,
    },
    /// A pairing code was issued (also returned by `Client::request_pairing_code`): the user
    /// types it on the phone (Linked devices > Link with phone number).
    PairingCode {
        /// The code, `XXXX-XXXX`.
        code: String,
    },
    /// The phone linked this device and the credentials are stored. The client restarts the
    /// connection by itself (515) and logs in; wait for [`Event::Connected`].
    PairSuccess {
        /// Own phone-number device JID.
        jid: Jid,
        /// Own LID device JID, if sent.
        lid: Option<Jid>,
        /// The primary's platform, e.g. `android`.
        platform: String,
        /// Business name, business accounts only.
        business_name: Option<String>,
    },
    /// Pairing failed locally (pair-success did not verify, or the code exchange failed).
    /// Informational; a following [`Event::Disconnected`] says whether the client goes on.
    PairError {
        /// What failed.
        error: PairError,
    },
    /// Logged in and online. Emitted after every successful (re)connection.
    Connected {
        /// Own phone-number device JID.
        jid: Jid,
    },
    /// The connection ended. With `reconnecting` the client is already on its way back
    /// (515 restart at once, transient failures after a backoff); otherwise it has stopped
    /// and [`Event::Stopped`] follows.
    Disconnected {
        /// Why.
        reason: CloseReason,
        /// Whether the client reconnects by itself.
        reconnecting: bool,
    },
    /// The device was unlinked (or logged out locally): the store has been wiped. The client
    /// stops; pairing again needs a new `Client`.
    LoggedOut {
        /// Why.
        reason: CloseReason,
    },
    /// A message arrived and was decrypted (1:1, group, or sent by another of our own
    /// devices: `info.from_me`). The delivery receipt and the ack have been sent. Read it
    /// with [`IncomingMessage::text`] or the full `message`; call `Client::mark_read` when
    /// the user has seen it.
    Message(Box<IncomingMessage>),
    /// A message arrived that could not be decrypted. The client already asked the sender
    /// to re-send it (retry receipt, up to 5 times); when that works the message arrives as
    /// [`Event::Message`] with the same id. Informational: nothing to do.
    UndecryptableMessage {
        /// Who sent it, where, id and time.
        info: MessageInfo,
        /// Why it failed.
        reason: UndecryptableReason,
        /// The retry count requested (0 = no retry requested).
        retry_count: u32,
    },
    /// A receipt from a peer or own device (delivered, read, played, ...). See also
    /// [`Event::MessageStatus`], which summarises receipts per sent message.
    Receipt(Receipt),
    /// A message we sent moved on: `Sent` (server ack), then `Delivered`, `Read`, `Played`;
    /// each step once.
    MessageStatus {
        /// The message id.
        id: MessageId,
        /// The chat it was sent to.
        chat: Jid,
        /// The new status.
        status: MessageStatus,
        /// The device whose receipt moved it (`None` for `Sent`).
        by: Option<Jid>,
        /// Unix seconds.
        timestamp: u64,
    },
    /// A stanza for higher layers (notifications, presence, calls, ...). Already acked
    /// where the protocol requires it.
    Stanza(Node),
    /// The client stopped for good (shutdown, logout, or a reason that forbids reconnecting).
    /// The stream ends after this.
    Stopped,
}

/// The ordered, bounded stream of [`Event`]s of one client. The driver waits when it is full:
/// events are never dropped or reordered, so keep reading it.
///
/// Read with [`Events::recv`], or as a `futures::Stream`.
#[derive(Debug)]
pub struct Events {
    /// Boxed: tokio allocates channel slots in blocks of 32, and 32 `Event`s would take
    /// about 6.5 KiB per client even when idle.
    pub(crate) rx: mpsc::Receiver<Box<Event>>,
}

impl Events {
    /// The next event; `None` once the client has stopped and every event was read.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await.map(|e| *e)
    }
}

impl futures_util::Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx).map(|e| e.map(|e| *e))
    }
}
