//! Builders of the mutations we send ourselves: mark chat read, archive, mute, pin
//! (shared/protocol/08 §7: index, collection and action version per action; whatsmeow
//! `appstate/encode.go` BuildMute/BuildPin/BuildArchive/BuildMarkChatAsRead; Baileys
//! `chatModificationToAppPatch`). Encode them with
//! [`CollectionState::encode_patch`](super::CollectionState::encode_patch).

use wa_proto::wa::{
    ArchiveChatAction, MarkChatAsReadAction, MessageKey, MuteAction, PinAction, SyncActionMessage,
    SyncActionMessageRange, SyncActionValue,
};

use super::{Collection, NewMutation, Operation};
use crate::Jid;

fn chat_index(action: &str, chat: &Jid) -> Vec<String> {
    // JIDs in indexes are non-AD user or group JIDs as strings (08 §7).
    vec![action.to_owned(), chat.to_non_ad().to_string()]
}

/// The range of a chat an archive or mark-read covers: the last message's timestamp (unix
/// seconds) and the keys of the last messages (Baileys sends the last one).
#[must_use]
pub fn message_range(
    last_message_timestamp: i64,
    last_messages: impl IntoIterator<Item = MessageKey>,
) -> SyncActionMessageRange {
    SyncActionMessageRange {
        last_message_timestamp: Some(last_message_timestamp),
        last_system_message_timestamp: None,
        messages: last_messages
            .into_iter()
            .map(|key| SyncActionMessage {
                key: Some(key),
                timestamp: None,
            })
            .collect(),
    }
}

/// `["mute", chat]` in `regular_high`, action version 2. `until_ms` = unix milliseconds the
/// mute ends (whatsmeow: -1 = forever); `None` unmutes. `timestamp_ms` = now, unix ms.
#[must_use]
pub fn mute(chat: &Jid, until_ms: Option<i64>, timestamp_ms: i64) -> NewMutation {
    NewMutation {
        collection: Collection::RegularHigh,
        operation: Operation::Set,
        index: chat_index("mute", chat),
        value: SyncActionValue {
            timestamp: Some(timestamp_ms),
            mute_action: Some(MuteAction {
                muted: Some(until_ms.is_some()),
                mute_end_timestamp: until_ms,
                ..MuteAction::default()
            }),
            ..SyncActionValue::default()
        },
        action_version: 2,
    }
}

/// `["pin_v1", chat]` in `regular_low`, action version 5.
#[must_use]
pub fn pin(chat: &Jid, pinned: bool, timestamp_ms: i64) -> NewMutation {
    NewMutation {
        collection: Collection::RegularLow,
        operation: Operation::Set,
        index: chat_index("pin_v1", chat),
        value: SyncActionValue {
            timestamp: Some(timestamp_ms),
            pin_action: Some(PinAction {
                pinned: Some(pinned),
            }),
            ..SyncActionValue::default()
        },
        action_version: 5,
    }
}

/// `["archive", chat]` in `regular_low`, action version 3. whatsmeow also unpins an archived
/// chat in the same patch; add [`pin`]`(chat, false, ..)` to the patch to do the same.
#[must_use]
pub fn archive(
    chat: &Jid,
    archived: bool,
    range: SyncActionMessageRange,
    timestamp_ms: i64,
) -> NewMutation {
    NewMutation {
        collection: Collection::RegularLow,
        operation: Operation::Set,
        index: chat_index("archive", chat),
        value: SyncActionValue {
            timestamp: Some(timestamp_ms),
            archive_chat_action: Some(ArchiveChatAction {
                archived: Some(archived),
                message_range: Some(range),
            }),
            ..SyncActionValue::default()
        },
        action_version: 3,
    }
}

/// `["markChatAsRead", chat]` in `regular_low`, action version 3 (`read = false` marks the
/// chat unread).
#[must_use]
pub fn mark_chat_read(
    chat: &Jid,
    read: bool,
    range: SyncActionMessageRange,
    timestamp_ms: i64,
) -> NewMutation {
    NewMutation {
        collection: Collection::RegularLow,
        operation: Operation::Set,
        index: chat_index("markChatAsRead", chat),
        value: SyncActionValue {
            timestamp: Some(timestamp_ms),
            mark_chat_as_read_action: Some(MarkChatAsReadAction {
                read: Some(read),
                message_range: Some(range),
            }),
            ..SyncActionValue::default()
        },
        action_version: 3,
    }
}
