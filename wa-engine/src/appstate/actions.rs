//! Builders of the mutations we send ourselves: mark chat read, archive, mute, pin
//! (shared/protocol/08 §7: index, collection and action version per action; whatsmeow
//! `appstate/encode.go` BuildMute/BuildPin/BuildArchive/BuildMarkChatAsRead; Baileys
//! `chatModificationToAppPatch`). Encode them with
//! [`CollectionState::encode_patch`](super::CollectionState::encode_patch).

use wa_proto::wa::{
    ArchiveChatAction, DeleteMessageForMeAction, MarkChatAsReadAction, MessageKey, MuteAction,
    PinAction, SyncActionMessage, SyncActionMessageRange, SyncActionValue,
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

/// `["deleteMessageForMe", chat, message id, fromMe "1"/"0", sender or "0"]` in
/// `regular_high`, action version 3 (shared/protocol/08 §7; whatsmeow parses it in
/// `appstate.go` dispatchAppState but has no builder, so the sender rule is its `BuildStar`'s:
/// the sender's user JID for someone else's message in a group, else `"0"`).
/// `message_timestamp` = the message's time, unix seconds; `delete_media` = also delete the
/// downloaded file on the other devices.
#[must_use]
pub fn delete_message_for_me(
    chat: &Jid,
    message_id: &str,
    from_me: bool,
    sender: Option<&Jid>,
    message_timestamp: i64,
    delete_media: bool,
    timestamp_ms: i64,
) -> NewMutation {
    let sender = match sender {
        Some(s) if chat.is_group() && !from_me => s.to_non_ad().to_string(),
        _ => "0".to_owned(),
    };
    NewMutation {
        collection: Collection::RegularHigh,
        operation: Operation::Set,
        index: vec![
            "deleteMessageForMe".to_owned(),
            chat.to_non_ad().to_string(),
            message_id.to_owned(),
            if from_me { "1" } else { "0" }.to_owned(),
            sender,
        ],
        value: SyncActionValue {
            timestamp: Some(timestamp_ms),
            delete_message_for_me_action: Some(DeleteMessageForMeAction {
                delete_media: Some(delete_media),
                message_timestamp: Some(message_timestamp),
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
    /// `["deleteMessageForMe", chat, id, fromMe, sender]` ([`delete_message_for_me`]):
    /// the message disappears from this account's devices only.
    DeleteForMe {
        /// The chat.
        chat: Jid,
        /// The message id.
        message_id: String,
        /// Whether we sent it.
        from_me: bool,
        /// Its sender in a group when not ours.
        sender: Option<Jid>,
        /// The message's time, unix seconds; `None` = now (the engine keeps no message
        /// database to look it up).
        message_timestamp: Option<i64>,
        /// Also delete the downloaded media file on the other devices.
        delete_media: bool,
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
            Self::Mute { .. } | Self::DeleteForMe { .. } => Collection::RegularHigh,
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
            Self::DeleteForMe {
                chat,
                message_id,
                from_me,
                sender,
                message_timestamp,
                delete_media,
            } => vec![delete_message_for_me(
                chat,
                message_id,
                *from_me,
                sender.as_ref(),
                message_timestamp.unwrap_or(timestamp_ms / 1000),
                *delete_media,
                timestamp_ms,
            )],
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::appstate::{CollectionState, KeyRing, SyncAction};

    #[test]
    fn delete_for_me_round_trips_through_a_patch() {
        let mut keys = KeyRing::new();
        keys.insert(b"k".to_vec(), &[0x22; 32]);
        let group: Jid = "120363000000000001@g.us".parse().unwrap();
        let sender = Jid::pn("15550002222");
        let action = ChatAction::DeleteForMe {
            chat: group.clone(),
            message_id: "3EB0DEL".into(),
            from_me: false,
            sender: Some(sender.clone()),
            message_timestamp: Some(1_700_000_000),
            delete_media: true,
        };
        assert_eq!(action.collection(), Collection::RegularHigh);
        let muts = action.mutations(1_700_000_100_000);
        assert_eq!(
            muts[0].index,
            vec![
                "deleteMessageForMe",
                "120363000000000001@g.us",
                "3EB0DEL",
                "0",
                "15550002222@s.whatsapp.net"
            ]
        );
        assert_eq!(muts[0].action_version, 3);
        let out = CollectionState::new()
            .encode_patch(Collection::RegularHigh, b"k", &keys, &muts, &mut || [3; 16])
            .unwrap();
        let mut patch = out.patch.clone();
        patch.version = Some(wa_proto::wa::SyncdVersion {
            version: Some(out.base_version + 1),
        });
        let applied = CollectionState::new()
            .apply_patch(Collection::RegularHigh, &patch, None, &keys)
            .unwrap();
        assert_eq!(
            applied[0].sync_action(),
            SyncAction::DeleteMessageForMe {
                chat: group,
                message_id: "3EB0DEL".into(),
                from_me: false,
                sender: Some(sender),
                delete_media: true,
                message_timestamp: Some(1_700_000_000),
            }
        );
        // Our own message in a 1:1 chat: sender "0".
        let own = delete_message_for_me(&Jid::pn("15550003333"), "X", true, None, 1, false, 2);
        assert_eq!(own.index[3..], ["1".to_owned(), "0".to_owned()]);
    }
}
