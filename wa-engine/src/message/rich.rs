//! Rich messages: reactions, edits, revokes and polls, both ways.
//!
//! Builders return plain `wa::Message`s that [`Client::send_message`](crate::Client) sends;
//! the stanza gets its `edit` attribute and poll `<meta>` from `decorate_stanza`. Incoming
//! ones are classified by [`Content`](super::Content) ([`ContentKind::Edit`](super::ContentKind::Edit),
//! [`ContentKind::Revoke`](super::ContentKind::Revoke), [`ContentKind::Poll`](super::ContentKind::Poll), [`ContentKind::PollVote`](super::ContentKind::PollVote)).
//!
//! Sources (facts only, our own code):
//! - whatsmeow `send.go` (`BuildReaction`, `BuildEdit`, `BuildRevoke`, `BuildPollCreation`,
//!   `getEditAttribute`: `edit="1"` edit, `"7"` sender revoke, `"8"` admin revoke;
//!   `getTypeFromMessage`: stanza `type="poll"` and `<meta polltype="creation"|"vote"/>`;
//!   `EditWindow` = 20 minutes).
//! - whatsmeow `msgsecret.go` and Baileys `Utils/process-message.ts` `decryptPollVote`: the vote
//!   key is HKDF-SHA256 (no salt) of the poll's 32-byte message secret with info
//!   `poll id || poll creator || voter || "Poll Vote"` (JIDs as non-AD user JIDs); the vote is
//!   AES-256-GCM with a 12-byte IV and additional data `poll id || 0x00 || voter`; the
//!   plaintext is a `PollVoteMessage` of SHA-256 option-name hashes.

use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use prost::Message as _;
use sha2::{Digest, Sha256};
use wa_proto::wa;
use wa_proto::wa::message::{
    PollCreationMessage, PollEncValue, PollUpdateMessage, PollVoteMessage, ReactionMessage,
    poll_creation_message, protocol_message,
};

use super::{IncomingMessage, MessageError};
use crate::Jid;
use crate::binary::{Node, Value};
use crate::store::{Store, StoreBatch, StoreError};

/// How long after sending a message it may still be edited (whatsmeow `EditWindow`: 20
/// minutes). Official clients refuse later edits; [`within_edit_window`] checks it.
pub const EDIT_WINDOW: Duration = Duration::from_secs(20 * 60);

/// Use-case string of poll vote keys (whatsmeow `EncSecretPollVote`).
const POLL_VOTE_USE_CASE: &[u8] = b"Poll Vote";

/// Store namespace of poll records (value: a `PollCreationMessage` whose `encKey` is the
/// message secret and whose `contextInfo.participant` is the creator), key `chat \0 id`.
const POLL_NS: &str = "wa.poll";
/// Store namespace of the latest vote per voter, key `chat \0 poll id \0 voter`, value the
/// concatenated 32-byte option hashes.
const VOTE_NS: &str = "wa.pollvote";

/// Whether an edit at `edit_ts` (unix seconds) of a message sent at `sent_ts` is inside
/// [`EDIT_WINDOW`].
#[must_use]
pub fn within_edit_window(sent_ts: u64, edit_ts: u64) -> bool {
    edit_ts.saturating_sub(sent_ts) <= EDIT_WINDOW.as_secs()
}

/// The message a reaction, edit, revoke or vote refers to (`MessageKey`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetKey {
    /// The chat (user or group JID).
    pub chat: Jid,
    /// The message id.
    pub id: String,
    /// Whether our own account sent it.
    pub from_me: bool,
    /// Its sender in a group when not ours (`participant`); ignored in 1:1 chats.
    pub sender: Option<Jid>,
}

impl TargetKey {
    /// The `MessageKey` protobuf (`remoteJid`, `fromMe`, `id`, `participant`; whatsmeow
    /// `BuildMessageKey`).
    #[must_use]
    pub fn to_proto(&self) -> wa::MessageKey {
        let participant = if self.chat.is_group() && !self.from_me {
            self.sender.as_ref().map(|s| s.to_non_ad().to_string())
        } else {
            None
        };
        wa::MessageKey {
            remote_jid: Some(self.chat.to_non_ad().to_string()),
            from_me: Some(self.from_me),
            id: Some(self.id.clone()),
            participant,
        }
    }
}

/// A reaction (`reactionMessage`) with `emoji`; an empty `emoji` removes our earlier
/// reaction. `now_ms` is the sender timestamp (unix ms).
#[must_use]
pub fn reaction(target: &TargetKey, emoji: &str, now_ms: i64) -> wa::Message {
    wa::Message {
        reaction_message: Some(ReactionMessage {
            key: Some(target.to_proto()),
            text: Some(emoji.to_owned()),
            grouping_key: None,
            sender_timestamp_ms: Some(now_ms),
        }),
        ..Default::default()
    }
}

/// An edit of our own message `id` in `chat` to `new_content` (whatsmeow `BuildEdit`):
/// `editedMessage { protocolMessage { MESSAGE_EDIT, key, editedMessage, timestampMs } }`.
#[must_use]
pub fn edit(chat: &Jid, id: &str, new_content: wa::Message, now_ms: i64) -> wa::Message {
    let protocol = wa::message::ProtocolMessage {
        key: Some(
            TargetKey {
                chat: chat.clone(),
                id: id.to_owned(),
                from_me: true,
                sender: None,
            }
            .to_proto(),
        ),
        r#type: Some(protocol_message::Type::MessageEdit as i32),
        edited_message: Some(Box::new(new_content)),
        timestamp_ms: Some(now_ms),
        ..Default::default()
    };
    wa::Message {
        edited_message: Some(Box::new(wa::message::FutureProofMessage {
            message: Some(Box::new(wa::Message {
                protocol_message: Some(Box::new(protocol)),
                ..Default::default()
            })),
        })),
        ..Default::default()
    }
}

/// Delete for everyone (whatsmeow `BuildRevoke`): `protocolMessage { REVOKE, key }`. For
/// our own message `target.from_me` is set; a group admin revoking someone else's names
/// its sender.
#[must_use]
pub fn revoke(target: &TargetKey) -> wa::Message {
    wa::Message {
        protocol_message: Some(Box::new(wa::message::ProtocolMessage {
            key: Some(target.to_proto()),
            r#type: Some(protocol_message::Type::Revoke as i32),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// A poll (whatsmeow `BuildPollCreation`): `pollCreationMessageV3` when one option may be
/// chosen, else `pollCreationMessage`; `selectable` 0 = any number. `secret` (32 random
/// bytes) goes to `messageContextInfo.messageSecret` and keys the votes.
///
/// # Errors
/// [`MessageError::InvalidPoll`] for fewer than two options, duplicate options, or
/// `selectable` above the number of options.
pub fn poll_creation(
    name: &str,
    options: &[String],
    selectable: u32,
    secret: [u8; 32],
) -> Result<wa::Message, MessageError> {
    let mut seen = std::collections::HashSet::new();
    if options.len() < 2
        || !options.iter().all(|o| seen.insert(o.as_str()))
        || usize::try_from(selectable).map_or(true, |s| s > options.len())
    {
        return Err(MessageError::InvalidPoll);
    }
    let poll = PollCreationMessage {
        enc_key: None,
        name: Some(name.to_owned()),
        options: options
            .iter()
            .map(|o| poll_creation_message::Option {
                option_name: Some(o.clone()),
            })
            .collect(),
        selectable_options_count: Some(selectable),
        context_info: None,
    };
    let mut m = wa::Message {
        message_context_info: Some(wa::MessageContextInfo {
            message_secret: Some(secret.to_vec()),
            ..Default::default()
        }),
        ..Default::default()
    };
    if selectable == 1 {
        m.poll_creation_message_v3 = Some(Box::new(poll));
    } else {
        m.poll_creation_message = Some(Box::new(poll));
    }
    Ok(m)
}

/// SHA-256 of a poll option name: what a vote carries (whatsmeow `HashPollOptions`).
#[must_use]
pub fn option_hash(name: &str) -> [u8; 32] {
    Sha256::digest(name.as_bytes()).into()
}

fn vote_key(secret: &[u8], poll_id: &str, creator: &Jid, voter: &Jid) -> [u8; 32] {
    let mut info = Vec::new();
    info.extend_from_slice(poll_id.as_bytes());
    info.extend_from_slice(creator.to_non_ad().to_string().as_bytes());
    info.extend_from_slice(voter.to_non_ad().to_string().as_bytes());
    info.extend_from_slice(POLL_VOTE_USE_CASE);
    let mut key = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit.
    if Hkdf::<Sha256>::new(None, secret)
        .expand(&info, &mut key)
        .is_err()
    {
        key = [0u8; 32];
    }
    key
}

fn vote_aad(poll_id: &str, voter: &Jid) -> Vec<u8> {
    format!("{poll_id}\0{}", voter.to_non_ad()).into_bytes()
}

/// The poll a vote is for: its key, its creator and its message secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollRef {
    /// The poll message's key.
    pub key: TargetKey,
    /// Who created the poll.
    pub creator: Jid,
    /// The poll's `messageContextInfo.messageSecret` (32 bytes).
    pub secret: Vec<u8>,
}

/// A vote (`pollUpdateMessage`) by `voter` choosing `selected` (option names; empty
/// withdraws the vote), encrypted with `iv` (12 random bytes).
///
/// # Errors
/// [`MessageError::InvalidPoll`] when the encryption fails (never for a 32-byte secret).
pub fn poll_vote(
    poll: &PollRef,
    voter: &Jid,
    selected: &[&str],
    iv: [u8; 12],
    now_ms: i64,
) -> Result<wa::Message, MessageError> {
    let plain = PollVoteMessage {
        selected_options: selected.iter().map(|s| option_hash(s).to_vec()).collect(),
    }
    .encode_to_vec();
    let key = vote_key(&poll.secret, &poll.key.id, &poll.creator, voter);
    let aad = vote_aad(&poll.key.id, voter);
    let ct = Aes256Gcm::new(&key.into())
        .encrypt(
            &Nonce::<aes_gcm::aead::consts::U12>::from(iv),
            Payload {
                msg: &plain,
                aad: &aad,
            },
        )
        .map_err(|_| MessageError::InvalidPoll)?;
    Ok(wa::Message {
        poll_update_message: Some(PollUpdateMessage {
            poll_creation_message_key: Some(poll.key.to_proto()),
            vote: Some(PollEncValue {
                enc_payload: Some(ct),
                enc_iv: Some(iv.to_vec()),
            }),
            sender_timestamp_ms: Some(now_ms),
        }),
        ..Default::default()
    })
}

/// Decrypts a vote: the chosen options' SHA-256 hashes.
///
/// # Errors
/// [`MessageError::PollVoteDecrypt`] for a missing payload/IV, a wrong key (other secret,
/// creator or voter) or a plaintext that is not a `PollVoteMessage`.
pub fn decrypt_poll_vote(
    secret: &[u8],
    poll_id: &str,
    creator: &Jid,
    voter: &Jid,
    vote: &PollEncValue,
) -> Result<Vec<[u8; 32]>, MessageError> {
    let (Some(ct), Some(iv)) = (vote.enc_payload.as_deref(), vote.enc_iv.as_deref()) else {
        return Err(MessageError::PollVoteDecrypt);
    };
    let Ok(iv) = <[u8; 12]>::try_from(iv) else {
        return Err(MessageError::PollVoteDecrypt);
    };
    let key = vote_key(secret, poll_id, creator, voter);
    let aad = vote_aad(poll_id, voter);
    let plain = Aes256Gcm::new(&key.into())
        .decrypt(
            &Nonce::<aes_gcm::aead::consts::U12>::from(iv),
            Payload { msg: ct, aad: &aad },
        )
        .map_err(|_| MessageError::PollVoteDecrypt)?;
    let vote =
        PollVoteMessage::decode(plain.as_slice()).map_err(|_| MessageError::PollVoteDecrypt)?;
    Ok(vote
        .selected_options
        .iter()
        .filter_map(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
        .collect())
}

/// The poll creation inside a message (any of the three versions).
#[must_use]
pub fn poll_of(message: &wa::Message) -> Option<&PollCreationMessage> {
    message
        .poll_creation_message
        .as_deref()
        .or(message.poll_creation_message_v2.as_deref())
        .or(message.poll_creation_message_v3.as_deref())
}

/// The stanza `edit` attribute (whatsmeow `getEditAttribute`): `1` edit, `7` revoke of
/// our own message (or reaction removal), `8` admin revoke.
#[must_use]
pub fn edit_attribute(message: &wa::Message) -> Option<&'static str> {
    if let Some(inner) = message
        .edited_message
        .as_ref()
        .and_then(|e| e.message.as_deref())
    {
        return edit_attribute(inner);
    }
    if let Some(p) = message.protocol_message.as_deref()
        && let Some(key) = p.key.as_ref()
    {
        return match p
            .r#type
            .and_then(|t| protocol_message::Type::try_from(t).ok())
        {
            Some(protocol_message::Type::Revoke) if key.from_me == Some(true) => Some("7"),
            Some(protocol_message::Type::Revoke) => Some("8"),
            Some(protocol_message::Type::MessageEdit) if p.edited_message.is_some() => Some("1"),
            _ => None,
        };
    }
    match message.reaction_message.as_ref() {
        Some(r) if r.text.as_deref().unwrap_or_default().is_empty() => Some("7"),
        _ => None,
    }
}

/// Adds what a rich message needs on its `<message>` stanza: the `edit` attribute and, for
/// polls, `<meta polltype="creation"|"vote"/>` (whatsmeow `send.go`).
pub(crate) fn decorate_stanza(message: &wa::Message, mut node: Node) -> Node {
    if let Some(edit) = edit_attribute(message) {
        node = node.attr("edit", Value::from(edit.to_owned()));
    }
    let polltype = if message.poll_update_message.is_some() {
        Some("vote")
    } else if poll_of(message).is_some() {
        Some("creation")
    } else {
        None
    };
    if let Some(t) = polltype {
        let mut children = node.children().to_vec();
        children.push(Node::new("meta").attr("polltype", Value::from(t.to_owned())));
        node = node.with_children(children);
    }
    node
}

/// An edit, read from a received message.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Edit<'a> {
    /// Id of the message edited.
    pub message_id: &'a str,
    /// The new content.
    pub new_content: Option<&'a wa::Message>,
    /// When the sender edited it (unix ms).
    pub timestamp_ms: Option<i64>,
}

/// A revoke (delete for everyone), read from a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Revoke<'a> {
    /// Id of the message deleted.
    pub message_id: &'a str,
    /// Its sender, when named (admin revokes in groups).
    pub participant: Option<&'a str>,
    /// Whether the revoked message was the revoker's own.
    pub from_me: bool,
}

/// A poll, read from a received message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Poll<'a> {
    /// The question.
    pub name: Option<&'a str>,
    /// The option names.
    pub options: Vec<&'a str>,
    /// How many options may be chosen (0 = any).
    pub selectable: u32,
}

/// The classified rich kind of an unwrapped message, checked before the generic
/// classification (hook of [`Content::kind`](super::Content::kind)).
pub(crate) fn kind_of(m: &wa::Message) -> Option<super::ContentKind> {
    use super::ContentKind;
    if let Some(p) = m.protocol_message.as_deref() {
        return match p
            .r#type
            .and_then(|t| protocol_message::Type::try_from(t).ok())
        {
            Some(protocol_message::Type::Revoke) if p.key.is_some() => Some(ContentKind::Revoke),
            Some(protocol_message::Type::MessageEdit) if p.edited_message.is_some() => {
                Some(ContentKind::Edit)
            }
            _ => None,
        };
    }
    if poll_of(m).is_some() {
        return Some(ContentKind::Poll);
    }
    m.poll_update_message
        .as_ref()
        .map(|_| ContentKind::PollVote)
}

impl<'a> super::Content<'a> {
    /// The edit, if the message is one (`protocolMessage` MESSAGE_EDIT).
    #[must_use]
    pub fn edit(&self) -> Option<Edit<'a>> {
        let p = self.message().protocol_message.as_deref()?;
        if p.r#type != Some(protocol_message::Type::MessageEdit as i32) {
            return None;
        }
        Some(Edit {
            message_id: p.key.as_ref()?.id.as_deref()?,
            new_content: p.edited_message.as_deref(),
            timestamp_ms: p.timestamp_ms,
        })
    }

    /// The revoke, if the message is one (`protocolMessage` REVOKE).
    #[must_use]
    pub fn revoke(&self) -> Option<Revoke<'a>> {
        let p = self.message().protocol_message.as_deref()?;
        if p.r#type != Some(protocol_message::Type::Revoke as i32) {
            return None;
        }
        let key = p.key.as_ref()?;
        Some(Revoke {
            message_id: key.id.as_deref()?,
            participant: key.participant.as_deref(),
            from_me: key.from_me == Some(true),
        })
    }

    /// The poll, if the message creates one.
    #[must_use]
    pub fn poll(&self) -> Option<Poll<'a>> {
        let p = poll_of(self.message())?;
        Some(Poll {
            name: p.name.as_deref(),
            options: p
                .options
                .iter()
                .filter_map(|o| o.option_name.as_deref())
                .collect(),
            selectable: p.selectable_options_count.unwrap_or(0),
        })
    }

    /// The (still encrypted) vote, if the message is one; the connection decrypts votes on
    /// polls it knows and reports them as [`Event::PollVote`](crate::Event::PollVote).
    #[must_use]
    pub fn poll_update(&self) -> Option<&'a PollUpdateMessage> {
        self.message().poll_update_message.as_ref()
    }
}

/// A decrypted vote and the poll's tally after it ([`Event::PollVote`](crate::Event::PollVote)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PollVoteEvent {
    /// The chat of the poll.
    pub chat: Jid,
    /// The poll's message id.
    pub poll_id: String,
    /// Who voted (user JID).
    pub voter: Jid,
    /// The id of the vote message.
    pub vote_id: String,
    /// The options the voter now chooses (names; empty = vote withdrawn). Hashes that match
    /// no option are left out.
    pub selected: Vec<String>,
    /// Every option with its number of voters, in the poll's order (each voter's latest
    /// vote counts once).
    pub tally: Vec<(String, u32)>,
}

fn poll_store_key(chat: &Jid, id: &str) -> Vec<u8> {
    format!("{}\0{id}", chat.to_non_ad()).into_bytes()
}

/// Loads a poll we know (sent by us, or received) by chat and id: the record and options.
///
/// # Errors
/// [`StoreError`] from the store; `Ok(None)` for an unknown poll or an unreadable record.
pub fn load_poll(
    store: &dyn Store,
    chat: &Jid,
    id: &str,
) -> Result<Option<(PollRef, Vec<String>)>, StoreError> {
    let Some(blob) = store.app_value(POLL_NS, &poll_store_key(chat, id))? else {
        return Ok(None);
    };
    let Ok(p) = PollCreationMessage::decode(blob.as_bytes()) else {
        return Ok(None);
    };
    let Some(creator) = p
        .context_info
        .as_ref()
        .and_then(|c| c.participant.as_deref())
        .and_then(|c| c.parse::<Jid>().ok())
    else {
        return Ok(None);
    };
    let Some(secret) = p.enc_key.clone() else {
        return Ok(None);
    };
    let options = p
        .options
        .iter()
        .filter_map(|o| o.option_name.clone())
        .collect();
    Ok(Some((
        PollRef {
            key: TargetKey {
                chat: chat.to_non_ad(),
                id: id.to_owned(),
                from_me: false,
                sender: Some(creator.clone()),
            },
            creator,
            secret,
        },
        options,
    )))
}

/// Remembers a poll (with its secret) so votes on it can be decrypted: called for polls we
/// send and polls we receive. Adds to `batch`; nothing for other messages.
pub(crate) fn remember_poll(
    batch: &mut StoreBatch,
    chat: &Jid,
    id: &str,
    creator: &Jid,
    message: &wa::Message,
) {
    let (Some(poll), Some(secret)) = (
        poll_of(message),
        message
            .message_context_info
            .as_ref()
            .and_then(|c| c.message_secret.clone()),
    ) else {
        return;
    };
    let mut record = poll.clone();
    record.enc_key = Some(secret);
    record.context_info = Some(Box::new(wa::ContextInfo {
        participant: Some(creator.to_non_ad().to_string()),
        ..Default::default()
    }));
    batch.put_app_value(POLL_NS, &poll_store_key(chat, id), record.encode_to_vec());
}

/// For a received message: remembers a poll it creates, or decrypts a vote on a known poll
/// and stores it, returning the vote with the new tally. The writes go into `batch`, which
/// the caller applies with the rest of the receive.
///
/// # Errors
/// [`StoreError`] reading the store. An undecryptable vote or a vote on an unknown poll is
/// logged and yields `Ok(None)` (the message is still reported).
pub(crate) fn on_incoming(
    store: &dyn Store,
    batch: &mut StoreBatch,
    msg: &IncomingMessage,
) -> Result<Option<PollVoteEvent>, StoreError> {
    let info = &msg.info;
    let m = super::content::unwrap(&msg.message);
    remember_poll(batch, &info.chat, &info.id, &info.sender, m);
    apply_vote(store, batch, &info.chat, &info.sender, &info.id, m)
}

/// Decrypts a vote (`message`, unwrapped) by `voter` in `chat` on a poll we know, stores it
/// in `batch` and returns it with the tally; `Ok(None)` for anything else. Used for
/// received votes and for our own (so both sides count the same).
///
/// # Errors
/// [`StoreError`] reading the store.
pub(crate) fn apply_vote(
    store: &dyn Store,
    batch: &mut StoreBatch,
    chat: &Jid,
    voter: &Jid,
    vote_id: &str,
    m: &wa::Message,
) -> Result<Option<PollVoteEvent>, StoreError> {
    let Some(update) = m.poll_update_message.as_ref() else {
        return Ok(None);
    };
    let Some(poll_id) = update
        .poll_creation_message_key
        .as_ref()
        .and_then(|k| k.id.as_deref())
    else {
        return Ok(None);
    };
    let Some((poll, options)) = load_poll(store, chat, poll_id)? else {
        tracing::debug!(poll_id, "vote on an unknown poll");
        return Ok(None);
    };
    let voter = voter.to_non_ad();
    let Some(vote) = update.vote.as_ref() else {
        return Ok(None);
    };
    let hashes = match decrypt_poll_vote(&poll.secret, poll_id, &poll.creator, &voter, vote) {
        Ok(h) => h,
        Err(e) => {
            tracing::debug!(poll_id, error = %e, "cannot decrypt poll vote");
            return Ok(None);
        }
    };
    let vote_prefix = format!("{}\0{poll_id}\0", chat.to_non_ad());
    let voter_key = format!("{vote_prefix}{voter}").into_bytes();
    batch.put_app_value(VOTE_NS, &voter_key, hashes.concat());
    // Tally: stored votes of the other voters plus this one.
    let mut counts = vec![0u32; options.len()];
    let option_hashes: Vec<[u8; 32]> = options.iter().map(|o| option_hash(o)).collect();
    let mut count = |chosen: &[u8]| {
        for h in chosen.chunks_exact(32) {
            if let Some(i) = option_hashes.iter().position(|o| o.as_slice() == h) {
                counts[i] = counts[i].saturating_add(1);
            }
        }
    };
    count(&hashes.concat());
    for key in store.app_keys(VOTE_NS)? {
        if key.starts_with(vote_prefix.as_bytes())
            && key != voter_key
            && let Some(v) = store.app_value(VOTE_NS, &key)?
        {
            count(v.as_bytes());
        }
    }
    let selected = hashes
        .iter()
        .filter_map(|h| {
            option_hashes
                .iter()
                .position(|o| o == h)
                .map(|i| options[i].clone())
        })
        .collect();
    Ok(Some(PollVoteEvent {
        chat: chat.to_non_ad(),
        poll_id: poll_id.to_owned(),
        voter,
        vote_id: vote_id.to_owned(),
        selected,
        tally: options.into_iter().zip(counts).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Content, ContentKind};

    fn jid(s: &str) -> Jid {
        s.parse().unwrap()
    }

    #[test]
    fn builders_classify_and_carry_the_edit_attribute() {
        let chat = jid("15550001111@s.whatsapp.net");
        let target = TargetKey {
            chat: chat.clone(),
            id: "3EB0AA".into(),
            from_me: false,
            sender: None,
        };
        let r = reaction(&target, "👍", 1);
        assert_eq!(Content::of(&r).kind(), ContentKind::Reaction);
        assert_eq!(edit_attribute(&r), None);
        assert_eq!(edit_attribute(&reaction(&target, "", 1)), Some("7"));

        let e = edit(&chat, "3EB0BB", super::super::content::text("new"), 5);
        let c = Content::of(&e);
        assert_eq!(c.kind(), ContentKind::Edit);
        let ed = c.edit().unwrap();
        assert_eq!(ed.message_id, "3EB0BB");
        assert_eq!(
            ed.new_content.and_then(super::super::content::text_of),
            Some("new")
        );
        assert_eq!(edit_attribute(&e), Some("1"));

        let own = TargetKey {
            from_me: true,
            ..target.clone()
        };
        let v = revoke(&own);
        assert_eq!(Content::of(&v).kind(), ContentKind::Revoke);
        assert_eq!(Content::of(&v).revoke().unwrap().message_id, "3EB0AA");
        assert_eq!(edit_attribute(&v), Some("7"));
        assert_eq!(edit_attribute(&revoke(&target)), Some("8"));

        assert!(within_edit_window(100, 100 + 20 * 60));
        assert!(!within_edit_window(100, 101 + 20 * 60));
    }

    #[test]
    fn poll_vote_round_trip_and_wrong_voter_fails() {
        let opts = vec!["red".to_owned(), "blue".to_owned()];
        let p = poll_creation("colour?", &opts, 1, [7u8; 32]).unwrap();
        assert!(p.poll_creation_message_v3.is_some());
        assert_eq!(Content::of(&p).kind(), ContentKind::Poll);
        assert_eq!(Content::of(&p).poll().unwrap().options, vec!["red", "blue"]);
        assert!(poll_creation("x", &opts[..1], 0, [0; 32]).is_err());
        assert!(poll_creation("x", &opts, 3, [0; 32]).is_err());

        let creator = jid("15550001111@s.whatsapp.net");
        let voter = jid("15550002222:3@s.whatsapp.net");
        let poll = PollRef {
            key: TargetKey {
                chat: creator.clone(),
                id: "POLL1".into(),
                from_me: false,
                sender: None,
            },
            creator: creator.clone(),
            secret: vec![7u8; 32],
        };
        let v = poll_vote(&poll, &voter, &["blue"], [1; 12], 9).unwrap();
        assert_eq!(Content::of(&v).kind(), ContentKind::PollVote);
        let enc = v
            .poll_update_message
            .as_ref()
            .unwrap()
            .vote
            .as_ref()
            .unwrap();
        let got = decrypt_poll_vote(&poll.secret, "POLL1", &creator, &voter, enc).unwrap();
        assert_eq!(got, vec![option_hash("blue")]);
        let other = jid("15550003333@s.whatsapp.net");
        assert_eq!(
            decrypt_poll_vote(&poll.secret, "POLL1", &creator, &other, enc),
            Err(MessageError::PollVoteDecrypt)
        );
    }

    #[test]
    fn stanza_gets_poll_meta_and_edit_attr() {
        let opts = vec!["a".to_owned(), "b".to_owned()];
        let p = poll_creation("q", &opts, 0, [1; 32]).unwrap();
        let n = decorate_stanza(&p, Node::new("message"));
        let meta = n.children().iter().find(|c| c.tag == "meta").unwrap();
        assert_eq!(meta.get_attr_str("polltype"), Some("creation"));
        assert_eq!(super::super::content::stanza_type(&p), "poll");
    }
}
