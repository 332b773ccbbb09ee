//! What a caller asks a [`Connection`](super::Connection) to do and what comes back: the
//! [`Request`], its [`RequestId`], its [`Reply`] or [`SendError`].

use crate::Jid;

use crate::binary::Node;
pub use crate::error::SendError;
use crate::group::{GroupInfo, GroupParticipant};
use crate::message::MessageId;
#[cfg(doc)]
use crate::stanza::CloseReason;
use crate::usync::ContactStatus;

/// What a caller asks a [`Connection`](super::Connection) to do; see [`Connection::send`](super::Connection::send).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Request {
    /// Send a message to a user or group (05 §6, §7): device lists, sessions and sender
    /// keys as needed, one encryption per device, then [`Reply::MessageSent`] when the
    /// server acks it ([`SendError::Rejected`] for an ack with `error`).
    SendMessage {
        /// The chat: a user JID (device part ignored) or a group JID.
        to: Jid,
        /// The content.
        message: Box<wa_proto::wa::Message>,
        /// The id to use; `None` draws one (05 §4).
        id: Option<crate::message::MessageId>,
    },
    /// Send a read receipt (05 §10.3) for messages of one sender in one chat; [`Reply::Done`].
    MarkRead {
        /// The chat.
        chat: Jid,
        /// The sender (groups: the participant who sent them).
        sender: Option<Jid>,
        /// The message ids (at least one).
        ids: Vec<String>,
    },
    /// Ask which phone numbers are on WhatsApp (06 §4): [`Reply::OnWhatsApp`].
    IsOnWhatsApp(Vec<String>),
    /// Create a group (06 §1.3): [`Reply::Group`].
    CreateGroup {
        /// The subject (at most 25 characters on the real server).
        subject: String,
        /// The other members (user JIDs).
        participants: Vec<Jid>,
    },
    /// Fetch group metadata (06 §1.2): [`Reply::Group`].
    GroupMetadata(Jid),
    /// Add / remove / promote / demote members (06 §1.4): [`Reply::Participants`].
    UpdateParticipants {
        /// The group.
        group: Jid,
        /// What to do.
        action: crate::group::ParticipantAction,
        /// The users.
        participants: Vec<Jid>,
    },
    /// Send an IQ and wait for its response ([`Reply::Iq`], or [`SendError::Rejected`] /
    /// [`SendError::Timeout`]). An `id` attribute is added if missing. Needs a logged-in
    /// connection.
    Iq(Node),
    /// Send a stanza without waiting for anything ([`Reply::Done`] at once). Needs a logged-in
    /// connection.
    Stanza(Node),
    /// Start phone-number pairing on a registration connection (03 §5): the result is
    /// [`Reply::PairingCode`] once the server accepted companion_hello.
    PairingCode {
        /// The phone number of the account, any formatting (digits are kept).
        phone: String,
    },
    /// Unlink this device (03 §10.4): send remove-companion-device, then close with
    /// [`CloseReason::LocalLogout`] when it is answered (or times out).
    Logout,
    /// Close with [`CloseReason::LocalClose`].
    Close,
    /// Change a chat through app-state sync from this device (mark read, archive, mute, pin;
    /// shared/protocol/08 §3.3): the patch is built on the local collection state with the
    /// newest shared sync key, uploaded, rebuilt and resent on a 409 conflict (up to 3
    /// times), and the new state stored once the server accepts it: [`Reply::Done`].
    /// [`SendError::InvalidInput`] when no sync key has been shared yet,
    /// [`SendError::Rejected`] when the server refuses it.
    ChatAction(crate::appstate::ChatAction),
    /// Announce ourselves available or unavailable with the stored push name
    /// (`<presence type name>`, whatsmeow `SendPresence`): [`Reply::Done`]. Without a
    /// push name yet the `name` is left out (as Baileys does).
    SetPresence {
        /// Available (online) or unavailable.
        available: bool,
    },
    /// Subscribe to a contact's presence (`<presence type="subscribe">` with the stored
    /// tctoken, 07 §2.8): [`Reply::Done`]; updates arrive as `Event::Presence`.
    SubscribePresence(Jid),
    /// Send a chat state (typing, recording, paused) to a chat: [`Reply::Done`].
    ChatState {
        /// The user or group.
        to: Jid,
        /// What to show.
        state: crate::presence::ChatState,
    },
    /// Reject an incoming call (`<call><reject>`, whatsmeow `RejectCall`): [`Reply::Done`].
    RejectCall {
        /// The caller (`call-creator` of the offer).
        caller: Jid,
        /// The `call-id` of the offer.
        call_id: String,
    },
}

/// Identifies one [`Request`] passed to
/// [`Connection::send`](super::Connection::send); its outcome arrives as
/// [`Event::RequestDone`](super::Event::RequestDone) with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// The successful outcome of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
// `Group` carries a group's whole metadata; a reply is moved once, from the connection to
// the caller, so the size difference costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Reply {
    /// The `type="result"` response to [`Request::Iq`](Request::Iq).
    Iq(Node),
    /// The pairing code to show the user, `XXXX-XXXX`, for
    /// [`Request::PairingCode`](Request::PairingCode): the server accepted
    /// companion_hello (03 §5.4).
    PairingCode(String),
    /// The request completed without a payload (logout done, stanza sent).
    Done,
    /// [`Request::SendMessage`](Request::SendMessage): the server acked the message
    /// (05 §8).
    MessageSent {
        /// The message id.
        id: MessageId,
        /// The server's timestamp (`t` of the ack), unix seconds; 0 if absent.
        timestamp: u64,
    },
    /// [`Request::IsOnWhatsApp`](Request::IsOnWhatsApp): one entry per number asked.
    OnWhatsApp(Vec<ContactStatus>),
    /// Group metadata (create, metadata query).
    Group(GroupInfo),
    /// Per-participant outcome of a membership change.
    Participants(Vec<GroupParticipant>),
}
