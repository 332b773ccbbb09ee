//! Messages: content builders, stanza building and parsing, padding, ids and the
//! participant-list hash (shared/protocol/05-messages-receipts.md).
//!
//! Public: the content builders ([`content`]; [`Client::send_message`](crate::Client) takes
//! the `wa::Message`s built there), [`MessageId`], and the received message with its
//! classified view ([`IncomingMessage`], [`Content`]). The stanza, padding and
//! participant-hash functions the connection uses (`stanza`, `pad`, `phash`) are public
//! only with the `server-side` feature (fuzz targets and vector tests).

pub mod content;
pub mod ephemeral;
mod error;
mod id;
mod incoming;
pub mod link_preview;
pub mod rich;
pub mod view_once;
internal_mod! {
    pad;
    phash;
    stanza;
}

use wa_proto::wa;

use crate::Jid;

pub use error::MessageError;
pub use id::MessageId;
pub use incoming::{
    ContactCard, ContactList, Content, ContentKind, Location, MediaKind, QuotedRef, Reaction,
};

/// Who sent a message, where, and when (05 §9.1 classification).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageInfo {
    /// The message id (unique per sender).
    pub id: String,
    /// The chat: the peer's user JID in 1:1 chats (for our own messages sent from another
    /// device: the recipient's), or the group JID.
    pub chat: Jid,
    /// The device that sent it (AD JID; its device part names the Signal session).
    pub sender: Jid,
    /// Sent by another device of our own account.
    pub from_me: bool,
    /// Sent in a group (or broadcast list).
    pub is_group: bool,
    /// Server timestamp, unix seconds (`t`).
    pub timestamp: u64,
    /// The sender's push name (`notify`), if the server sent one.
    pub push_name: Option<String>,
    /// Delivered from the server's offline queue (`offline` attribute, 05 §12).
    pub offline: bool,
    /// `category` (`peer` for messages between own devices, 05 §13).
    pub category: Option<String>,
    /// The sender's phone-number user JID (no device), when known: `sender` itself when it
    /// is a PN, else from the stanza (`sender_pn`, `participant_pn`) or the PN ⇄ LID map
    /// (07 §1.7; whatsmeow `MessageSource.SenderAlt`).
    pub sender_pn: Option<Jid>,
    /// The sender's LID user JID (no device), when known: `sender` itself when it is a LID,
    /// else from the stanza (`sender_lid`, `participant_lid`) or the PN ⇄ LID map.
    pub sender_lid: Option<Jid>,
    /// The 1:1 chat in the other namespace (the peer's LID when `chat` is a PN and the
    /// reverse), when known (`peer_recipient_pn` / `peer_recipient_lid` on own-device
    /// copies, or the map); `None` for groups (whatsmeow `RecipientAlt`, Baileys
    /// `remoteJidAlt`).
    pub chat_alt: Option<Jid>,
    /// `addressing_mode` of group messages (`pn` or `lid`), if the server sent it.
    pub addressing_mode: Option<String>,
}

impl MessageInfo {
    /// The chat's phone-number JID, when known (`chat` or [`chat_alt`](Self::chat_alt)).
    #[must_use]
    pub fn chat_pn(&self) -> Option<&Jid> {
        [Some(&self.chat), self.chat_alt.as_ref()]
            .into_iter()
            .flatten()
            .find(|j| j.is_pn())
    }

    /// The chat's LID, when known (`chat` or [`chat_alt`](Self::chat_alt)).
    #[must_use]
    pub fn chat_lid(&self) -> Option<&Jid> {
        [Some(&self.chat), self.chat_alt.as_ref()]
            .into_iter()
            .flatten()
            .find(|j| j.is_lid())
    }
}

/// A decrypted incoming message. Read it through its classified view,
/// [`IncomingMessage::content`] (kind, text, quote, mentions, location, contact, reaction),
/// and for media [`IncomingMessage::media`] (the download handle).
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingMessage {
    /// Sender, chat, id, time.
    pub info: MessageInfo,
    /// The decoded content, with `deviceSentMessage` already unwrapped (05 §9.2 step 3).
    pub message: wa::Message,
}
