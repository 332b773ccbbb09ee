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

/// A change to one chat that this device makes through app-state sync (shared/protocol/08
/// §3.3, §7): what `Request::ChatAction` and the `Client` methods (`mark_chat_read`,
/// `archive_chat`, `mute_chat`, `pin_chat`) send. [`Self::mutations`] turns it into the
/// mutations of one patch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChatAction {
    /// `["markChatAsRead", chat]`: read (`true`) or marked unread (`false`).
    MarkRead {
        /// The chat.
        chat: Jid,
        /// Read or unread.
        read: bool,
    },
    /// `["archive", chat]`; archiving also unpins (whatsmeow `BuildArchive`).
    Archive {
        /// The chat.
        chat: Jid,
        /// Archived or not.
        archived: bool,
    },
    /// `["mute", chat]`: muted until `until_ms` (unix ms, -1 = forever) or unmuted (`None`).
    Mute {
        /// The chat.
        chat: Jid,
        /// End of the mute, unix ms; -1 = forever; `None` unmutes.
        until_ms: Option<i64>,
    },
    /// `["pin_v1", chat]`.
    Pin {
        /// The chat.
        chat: Jid,
        /// Pinned or not.
        pinned: bool,
    },
    /// `["setting_pushName"]` in `critical_block`: the account's own push name (whatsmeow
    /// `BuildSettingPushName`, action version 1). Applying it updates the stored credentials
    /// and re-announces presence with the new name.
    PushName {
        /// The new name.
        name: String,
    },
}

impl ChatAction {
    /// The collection its patch goes to.
    #[must_use]
    pub fn collection(&self) -> Collection {
        match self {
            Self::Mute { .. } => Collection::RegularHigh,
            Self::PushName { .. } => Collection::CriticalBlock,
            Self::MarkRead { .. } | Self::Archive { .. } | Self::Pin { .. } => {
                Collection::RegularLow
            }
        }
    }

    /// The mutations of its patch at `timestamp_ms` (unix ms, also used as the message
    /// range's last-message time in seconds: the engine keeps no message database, and
    /// whatsmeow falls back to "now" the same way when it has no last message).
    #[must_use]
    pub fn mutations(&self, timestamp_ms: i64) -> Vec<NewMutation> {
        let range = || message_range(timestamp_ms / 1000, []);
        match self {
            Self::MarkRead { chat, read } => {
                vec![mark_chat_read(chat, *read, range(), timestamp_ms)]
            }
            Self::Archive { chat, archived } => {
                let mut out = vec![archive(chat, *archived, range(), timestamp_ms)];
                if *archived {
                    out.push(pin(chat, false, timestamp_ms));
                }
                out
            }
            Self::Mute { chat, until_ms } => vec![mute(chat, *until_ms, timestamp_ms)],
            Self::Pin { chat, pinned } => vec![pin(chat, *pinned, timestamp_ms)],
            Self::PushName { name } => vec![NewMutation {
                collection: Collection::CriticalBlock,
                operation: Operation::Set,
                index: vec!["setting_pushName".to_owned()],
                value: SyncActionValue {
                    timestamp: Some(timestamp_ms),
                    push_name_setting: Some(wa_proto::wa::PushNameSetting {
                        name: Some(name.clone()),
                    }),
                    ..SyncActionValue::default()
                },
                action_version: 1,
            }],
        }
    }
}
