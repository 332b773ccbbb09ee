//! `Client` builders for rich messages: reactions, edits, revokes, polls and votes
//! (content in [`message::rich`](crate::message::rich); sources listed there).

use rand::RngExt as _;

use super::Client;
use crate::Jid;
use crate::conn::SendError;
use crate::error::InvalidInput;
use crate::message::rich::{self, TargetKey};
use crate::message::{MessageId, content};

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
}
