//! The one public event model: what happens to a WhatsApp connection, in order.
//!
//! [`Event`] lives in the sans-IO core so any runtime can emit it. The sans-IO
//! [`Connection`](crate::conn::Connection) reports it wrapped in
//! [`conn::Event::Public`](crate::conn::Event::Public), next to the few events only a driver
//! acts on (handshake done, a request finished, the pre-key count); the tokio driver
//! (`Client`, feature `runtime`) forwards it unchanged on its `Events` stream and adds the
//! variants only a driver can know about ([`Event::Disconnected`], [`Event::LoggedOut`],
//! [`Event::Stopped`]).

use std::time::Duration;

use crate::Jid;
use crate::appstate::{Collection, Operation, SyncAction};
use crate::binary::Node;
use crate::history::HistorySyncData;
use crate::message::{IncomingMessage, MessageId, MessageInfo};
use crate::pair::PairError;
use crate::receipt::Receipt;
use crate::stanza::CloseReason;

/// What happened to the client, in order. Every variant says when it is emitted and what the
/// embedder should do next.
///
/// Variants marked *driver only* are never produced by the sans-IO
/// [`Connection`](crate::conn::Connection): the driver that runs it (the tokio `Client`)
/// emits them between connection attempts.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The device is not paired: show this QR string to the user (render it as a QR code) until
    /// `expires_in` has passed; the next one replaces it (60 s, then 20 s each; 03 §4.4).
    /// After the last one the client stops with [`CloseReason::QrRefsExhausted`]. The string
    /// carries the ADV secret: show it only to the user.
    Qr {
        /// The QR string (`https://wa.me/settings/linked_devices#...`, 03 §4.3).
        code: String,
        /// How long this QR is valid: 60 s for the first ref, 20 s for the others.
        expires_in: Duration,
    },
    /// A pairing code was issued (also returned by `Client::request_pairing_code`): the user
    /// types it on the phone (Linked devices > Link with phone number; 03 §5.2).
    PairingCode {
        /// The code, `XXXX-XXXX`.
        code: String,
    },
    /// The phone linked this device and the credentials are stored. The server now sends 515:
    /// the connection closes with [`CloseReason::RestartRequired`], and the client restarts
    /// it by itself and logs in; wait for [`Event::Connected`].
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
    /// Pairing failed locally (pair-success did not verify, or the code exchange failed).
    /// For pair-success the connection closes with [`CloseReason::PairingFailed`].
    /// Informational; a following [`Event::Disconnected`] says whether the client goes on.
    PairError {
        /// What failed.
        error: PairError,
    },
    /// `<success>`: logged in and online. Emitted after every successful (re)connection.
    Connected {
        /// Own phone-number device JID.
        jid: Jid,
    },
    /// *Driver only.* The connection ended. With `reconnecting` the client is already on its
    /// way back (515 restart at once, transient failures after a backoff); otherwise it has
    /// stopped and [`Event::Stopped`] follows.
    Disconnected {
        /// Why.
        reason: CloseReason,
        /// Whether the client reconnects by itself.
        reconnecting: bool,
    },
    /// *Driver only.* The device was unlinked (or logged out locally): the store has been
    /// wiped. The client stops; pairing again needs a new `Client`.
    LoggedOut {
        /// Why.
        reason: CloseReason,
    },
    /// A message arrived and was decrypted (1:1, group, or sent by another of our own
    /// devices: `info.from_me`; 05 §9.2). The delivery receipt and the ack have been sent
    /// (queued, for the sans-IO connection). Read it with [`IncomingMessage::content`]
    /// (classified), [`IncomingMessage::text`] or the full `message`; call
    /// `Client::mark_read` when the user has seen it.
    Message(Box<IncomingMessage>),
    /// A message arrived that could not be decrypted or decoded (05 §9.3). The client already
    /// asked the sender to re-send it (retry receipt, up to 5 times); when that works the
    /// message arrives as [`Event::Message`] with the same id. Informational: nothing to do.
    UndecryptableMessage {
        /// Who sent it, where, id and time (boxed: it carries both identities of the
        /// sender, 07 §1.7).
        info: Box<MessageInfo>,
        /// Why it failed.
        reason: UndecryptableReason,
        /// The retry count of the receipt sent (0 = none sent).
        retry_count: u32,
    },
    /// A receipt from a peer or own device (delivered, read, played, ...; 05 §10.4), any kind
    /// except `retry` (handled internally). See also [`Event::MessageStatus`], which
    /// summarises receipts per sent message.
    Receipt(Receipt),
    /// A message we sent moved on: `Sent` (server ack), then `Delivered`, `Read`, `Played`;
    /// each step once, device-independent: the first device reaching a step moves it.
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
    /// A stanza for higher layers that the connection does not consume (notifications,
    /// `<ib>` children it does not act on, server IQs it does not answer; a `<presence>`,
    /// `<chatstate>` or `<call>` that does not parse into [`Event::Presence`],
    /// [`Event::ChatState`] or [`Event::Call`]).
    /// `message`, `receipt`, `notification` and `call` have already been acked (03 §11).
    Stanza(Node),
    /// One app-state mutation was verified and applied (shared/protocol/08 §7): a setting,
    /// contact or chat flag changed on another device of the account, arrived with a full
    /// sync, or is our own (`Client::mute_chat` and siblings) once the server accepted it. Its effects are already stored (push name, NCT salt, PN↔LID mappings, in the same
    /// batch as the collection state); the rest (mute, pin, archive, read, star, labels,
    /// contact names) is the embedder's to keep. Informational.
    AppState(Box<AppStateEvent>),
    /// A history-sync chunk from our primary phone was processed (08 §9): conversations (with
    /// their messages unless the connection's `HistoryConfig::keep_messages` is off), contacts'
    /// push names and PN↔LID mappings. Trusted-contact tokens, mappings and the NCT salt were
    /// stored before this event and are not repeated in it. Informational.
    HistorySync(Box<HistorySyncEvent>),
    /// A contact's presence changed (`<presence from>`, 06 §5.1): online, or offline with
    /// its last-seen time. Arrives for contacts subscribed to with
    /// `Client::subscribe_presence` (the subscription lasts for the connection).
    /// Informational.
    Presence(crate::presence::PresenceUpdate),
    /// A contact is typing, recording or stopped, in a 1:1 chat or a group (`<chatstate>`,
    /// 06 §5.2). Informational.
    ChatState(crate::presence::ChatStateUpdate),
    /// A call stanza arrived (offer, accept, reject, terminate, ...); already acked. With the
    /// connection's `auto_reject_calls` an offer has been rejected before this event
    /// (`auto_rejected`); otherwise reject it with `Client::reject_call`.
    Call(Box<crate::call::CallEvent>),
    /// A vote on a poll we know (sent by us or received since the store was created) was
    /// decrypted with the poll's message secret; carries the voter's choice and the tally
    /// over every voter's latest vote (`message::rich`, whatsmeow `msgsecret.go`). The vote
    /// message itself is also reported as [`Event::Message`] (kind `PollVote`). Our own votes
    /// (`Client::vote_poll`) produce this event too, once sent.
    PollVote(Box<crate::message::rich::PollVoteEvent>),
    /// A typed `<notification>` (group change, account sync, picture, status, devices,
    /// identity change, prekey count, media retry; the table is in
    /// [`notification`](crate::notification)), already acked and acted on. Informational.
    Notification(Box<crate::notification::NotificationEvent>),
    /// The server announced a reach-out timelock change (`mex` notification
    /// `NotificationUserReachoutTimelockUpdate`, 07 §3.6). While `is_active`, the account may
    /// not start new chats: 1:1 sends to new contacts fail with
    /// [`SendError::ReachoutTimelocked`](crate::SendError::ReachoutTimelocked) (not re-sent);
    /// existing chats still work. What to do: hold new-contact sends until `ends` (unix
    /// seconds, when given); `is_active: false` lifts the lock.
    ReachoutTimelock(crate::privacy::ReachoutTimelock),
    /// The server updated the account's new-chat message capping (`mex`
    /// `MessageCappingInfoNotification`, 07 §3.6). When it says capped, new chats fail with
    /// [`SendError::NewChatsCapped`](crate::SendError::NewChatsCapped) until the cycle ends.
    NewChatCapping(crate::privacy::MessageCapping),
    /// `<ib><offline_preview>`: the server is about to replay what it held while we were
    /// offline; the counts say how much (whatsmeow `OfflineSyncPreview`). Informational.
    OfflineSyncPreview(crate::notification::OfflinePreview),
    /// `<ib><offline count>`: the offline queue is drained; `count` stanzas were replayed
    /// (whatsmeow `OfflineSyncCompleted`). Events after this one are live. Informational.
    OfflineSyncCompleted {
        /// Stanzas replayed (`count`; 0 when absent).
        count: u32,
    },
    /// `<ib><edge_routing><routing_info>`: the server sent edge-routing info. It is stored
    /// (surviving restarts; only a logout wipes it) and sent in the `ED` pre-intro of every
    /// later connection (`noise::FrameEncoder::client_with_routing_info`). The bytes are not
    /// in the event. Informational.
    EdgeRoutingUpdated {
        /// Length of the routing info, bytes.
        len: usize,
        /// Whether it reached the store (false: kept for this process only).
        stored: bool,
    },
    /// `<ib><dirty type timestamp>`: the server marked a kind of account data dirty; the
    /// clean IQ has been sent (and for `syncd_app_state` all collections re-synced).
    /// Informational.
    Dirty {
        /// The dirty type (`account_sync`, `groups`, `syncd_app_state`, ...).
        kind: String,
        /// The `timestamp` attribute, unix seconds.
        timestamp: u64,
    },
    /// A `privacy_token` notification: a contact issued us trusted-contact tokens, now stored
    /// (07 §2.2). Carries no token bytes. The stanza also comes as [`Event::Stanza`].
    /// Informational.
    PrivacyToken(Box<crate::notification::PrivacyTokenNotice>),
    /// *Driver only.* The client stopped for good (shutdown, logout, or a reason that forbids
    /// reconnecting). The stream ends after this.
    Stopped,
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

/// One applied app-state mutation ([`Event::AppState`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AppStateEvent {
    /// The collection it came in.
    pub collection: Collection,
    /// The collection version that carried it.
    pub version: u64,
    /// SET or REMOVE (a REMOVE of `nct_salt_sync` cleared the salt, of a contact deleted it).
    pub operation: Operation,
    /// What it says. For [`SyncAction::NctSalt`] the salt bytes are left out (empty): the
    /// salt is a key and is in the store.
    pub action: SyncAction,
    /// `SyncActionValue.timestamp`, unix ms, when set.
    pub timestamp_ms: Option<i64>,
    /// Whether it arrived while the collection was synced from scratch (a snapshot, or all
    /// patches from version 1), rather than as a change on another device.
    pub from_full_sync: bool,
}

/// One processed history-sync chunk ([`Event::HistorySync`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HistorySyncEvent {
    /// Id of the peer message that announced the chunk.
    pub message_id: String,
    /// What the chunk holds. `tc_tokens` and `nct_salt` are always empty here (stored, not
    /// handed out); `conversations` lack messages when the application opted out.
    pub data: HistorySyncData,
}
