//! `Client` builders for rich messages: reactions, edits, revokes, polls and votes
//! (content in [`message::rich`](crate::message::rich); sources listed there), delete for
//! me (app state), disappearing-message timers
//! ([`message::ephemeral`](crate::message::ephemeral)) and view-once media
//! ([`message::view_once`](crate::message::view_once)).

use rand::RngExt as _;

use super::Client;
use crate::Jid;
use crate::conn::SendError;
use crate::error::InvalidInput;
use crate::message::rich::{self, TargetKey};
use crate::message::{MessageId, content, ephemeral, link_preview, view_once};

/// The client's store, read for poll secrets. Weak: the driver owns the store, so once it
/// stopped (shutdown, logout) the store is released even while `Client` handles live (a
/// restarted process can reopen a sled store at once).
#[derive(Clone)]
pub(super) struct StoreHandle(pub(super) std::sync::Weak<dyn crate::store::Store>);

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

impl Client {
    /// Reacts to `target` with `emoji` (empty removes our reaction) in `target.chat`
    /// (whatsmeow `BuildReaction`). Returns the reaction message's id.
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub async fn send_reaction(
        &self,
        target: &TargetKey,
        emoji: &str,
    ) -> Result<MessageId, SendError> {
        self.send_message(&target.chat, rich::reaction(target, emoji, now_ms()))
            .await
    }

    /// Replaces the text of our own message `id` in `chat` with `text` (protocol message
    /// MESSAGE_EDIT, stanza `edit="1"`; whatsmeow `BuildEdit`). Official clients only show
    /// edits made within [`rich::EDIT_WINDOW`] of the original; this does not check it.
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub async fn edit_message(
        &self,
        chat: &Jid,
        id: &str,
        text: impl Into<String>,
    ) -> Result<MessageId, SendError> {
        self.send_message(chat, rich::edit(chat, id, content::text(text), now_ms()))
            .await
    }

    /// Deletes a message for everyone (protocol message REVOKE; whatsmeow `BuildRevoke`):
    /// our own (`target.from_me`, stanza `edit="7"`) or, as a group admin, someone else's
    /// (`target.sender`, `edit="8"`). Delete-for-me is an app-state change instead.
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub async fn revoke_message(&self, target: &TargetKey) -> Result<MessageId, SendError> {
        self.send_message(&target.chat, rich::revoke(target)).await
    }

    /// Sends a poll with `options` of which `selectable` may be chosen (0 = any; whatsmeow
    /// `BuildPollCreation`). A fresh 32-byte message secret keys the votes; the connection
    /// stores it so votes on the poll arrive as [`Event::PollVote`](crate::Event::PollVote).
    ///
    /// # Errors
    /// [`SendError::InvalidInput`] ([`InvalidInput::InvalidPoll`]) for fewer than two or
    /// duplicate options or `selectable` above their number; else as
    /// [`send_text`](Self::send_text).
    pub async fn send_poll(
        &self,
        to: &Jid,
        name: &str,
        options: &[String],
        selectable: u32,
    ) -> Result<MessageId, SendError> {
        let secret: [u8; 32] = rand::rng().random();
        let message = rich::poll_creation(name, options, selectable, secret)
            .map_err(|_| SendError::InvalidInput(InvalidInput::InvalidPoll))?;
        self.send_message(to, message).await
    }

    /// Votes on poll `poll_id` in `chat` for `selected` (option names; empty withdraws our
    /// vote). The poll must be known to this store (sent by us, or received since).
    ///
    /// # Errors
    /// [`SendError::InvalidInput`] ([`InvalidInput::UnknownPoll`]) for an unknown poll or a
    /// name that is not one of its options, [`SendError::NotLoggedIn`],
    /// [`SendError::NotConnected`] after the client stopped; else as
    /// [`send_text`](Self::send_text).
    pub async fn vote_poll(
        &self,
        chat: &Jid,
        poll_id: &str,
        selected: &[&str],
    ) -> Result<MessageId, SendError> {
        let own = self.jid().ok_or(SendError::NotLoggedIn)?;
        let unknown = || SendError::InvalidInput(InvalidInput::UnknownPoll);
        let store = self.store.0.upgrade().ok_or(SendError::NotConnected)?;
        let (mut poll, options) = rich::load_poll(store.as_ref(), chat, poll_id)
            .ok()
            .flatten()
            .ok_or_else(unknown)?;
        if !selected.iter().all(|s| options.iter().any(|o| o == s)) {
            return Err(unknown());
        }
        poll.key.from_me = poll.creator.user() == own.user();
        let iv: [u8; 12] = rand::rng().random();
        let message =
            rich::poll_vote(&poll, &own, selected, iv, now_ms()).map_err(|_| unknown())?;
        self.send_message(chat, message).await
    }

    /// Deletes a message for this account only ("delete for me"): an app-state
    /// `deleteMessageForMe` mutation in `regular_high`
    /// ([`appstate::actions::delete_message_for_me`](crate::appstate::actions::delete_message_for_me)), which
    /// our other devices apply; the peer keeps the message. `message_timestamp` is the
    /// message's time (unix seconds; `None` = now), as official clients record it.
    ///
    /// # Errors
    /// As [`chat_action`](Self::chat_action) (e.g. [`SendError::InvalidInput`] before our
    /// primary shared an app-state key).
    pub async fn delete_message_for_me(
        &self,
        target: &TargetKey,
        message_timestamp: Option<i64>,
    ) -> Result<(), SendError> {
        self.chat_action(crate::appstate::ChatAction::DeleteForMe {
            chat: target.chat.clone(),
            message_id: target.id.clone(),
            from_me: target.from_me,
            sender: target.sender.clone(),
            message_timestamp,
            delete_media: false,
        })
        .await
    }

    /// Sets the disappearing-messages timer of a 1:1 chat (whatsmeow `SetDisappearingTimer`):
    /// sends the `EPHEMERAL_SETTING` protocol message and remembers the timer for the chat,
    /// so later messages to it carry `contextInfo.expiration`. `timer` is whole seconds;
    /// [`ephemeral::TIMER_OFF`](crate::message::ephemeral::TIMER_OFF) turns it off. Official
    /// clients accept only off, 24 h, 7 days and 90 days
    /// ([`ephemeral::is_standard_timer`](crate::message::ephemeral::is_standard_timer)).
    /// Returns the setting message's id.
    ///
    /// # Errors
    /// [`SendError::InvalidRecipient`] for a group (group timers are a `w:g2` IQ the
    /// sandbox does not model yet; not implemented), [`SendError::InvalidInput`]
    /// ([`InvalidInput::InvalidTimer`]) for a timer over `u32::MAX` seconds; else as
    /// [`send_text`](Self::send_text).
    pub async fn set_disappearing_timer(
        &self,
        chat: &Jid,
        timer: std::time::Duration,
    ) -> Result<MessageId, SendError> {
        if chat.is_group() {
            return Err(SendError::InvalidRecipient);
        }
        let secs = u32::try_from(timer.as_secs())
            .map_err(|_| SendError::InvalidInput(InvalidInput::InvalidTimer))?;
        self.send_message(chat, ephemeral::setting(secs, now_ms() / 1000))
            .await
    }

    /// The disappearing-messages timer this store remembers for `chat` (set by us or by a
    /// setting received since); `None` when none was seen.
    ///
    /// # Errors
    /// [`SendError::NotConnected`] after the client stopped; [`SendError::Store`] reading
    /// the store.
    pub fn disappearing_timer(
        &self,
        chat: &Jid,
    ) -> Result<Option<ephemeral::ChatTimer>, SendError> {
        let store = self.store.0.upgrade().ok_or(SendError::NotConnected)?;
        ephemeral::chat_timer(store.as_ref(), chat)
            .map_err(|e| SendError::Store(std::sync::Arc::new(e)))
    }

    /// Sends `text` with a link preview card (`extendedTextMessage` with `matchedText`,
    /// `title`, `description`, `jpegThumbnail`; [`link_preview::with_preview`]). Nothing is
    /// fetched: the caller supplies the card. `text` should contain `preview.url`.
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub async fn send_link_preview(
        &self,
        to: &Jid,
        text: impl Into<String>,
        preview: link_preview::LinkPreview,
    ) -> Result<MessageId, SendError> {
        self.send_message(to, link_preview::with_preview(text, preview))
            .await
    }

    /// Sends an image, video or voice note as view-once: `media` (e.g. from
    /// [`media::message::image`](crate::media::message::image) after an
    /// [`upload`](Self::upload)) flagged `viewOnce` and wrapped in `viewOnceMessageV2`
    /// ([`view_once::view_once`]). [`send_image`](Self::send_image) with
    /// `ImageOptions { view_once: true, .. }` does the same.
    ///
    /// # Errors
    /// [`SendError::InvalidInput`] ([`InvalidInput::NotViewOnceMedia`]) when `media` is not
    /// an image, video or audio message; else as [`send_text`](Self::send_text).
    pub async fn send_view_once(
        &self,
        to: &Jid,
        media: wa_proto::wa::Message,
    ) -> Result<MessageId, SendError> {
        let message = view_once::view_once(media);
        if view_once::view_once_kind(&message).is_none() {
            return Err(SendError::InvalidInput(InvalidInput::NotViewOnceMedia));
        }
        self.send_message(to, message).await
    }
}
