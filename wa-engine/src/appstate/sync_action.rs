//! A typed view of a decoded mutation: what it changes, with JIDs parsed
//! (index layouts of shared/protocol/08 §7; whatsmeow `appstate.go` dispatchAppState,
//! Baileys `processSyncAction`).

use super::Mutation;
use crate::Jid;

/// What one app-state mutation says, from its index and value. The mutation's
/// [`operation`](Mutation::operation) still applies: a REMOVE of `["nct_salt_sync"]` clears
/// the salt, a REMOVE of a contact deletes it, and so on. Indexes this engine does not know,
/// or whose arguments do not parse, are [`SyncAction::Other`]; they were verified and count
/// in the LTHash like any other (08 §7: "unknown indexes and actions must be ignored").
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncAction {
    /// `["mute", chat]`: muted until `until_ms` (unix ms; -1 = forever), or unmuted.
    Mute {
        /// The chat.
        chat: Jid,
        /// Whether muted.
        muted: bool,
        /// End of the mute, unix milliseconds (-1 = forever).
        until_ms: Option<i64>,
    },
    /// `["pin_v1", chat]`.
    Pin {
        /// The chat.
        chat: Jid,
        /// Whether pinned.
        pinned: bool,
    },
    /// `["archive", chat]`.
    Archive {
        /// The chat.
        chat: Jid,
        /// Whether archived.
        archived: bool,
    },
    /// `["markChatAsRead", chat]`.
    MarkChatAsRead {
        /// The chat.
        chat: Jid,
        /// `true` = read, `false` = marked unread.
        read: bool,
    },
    /// `["star", chat, message id, fromMe, sender]`.
    Star {
        /// The chat.
        chat: Jid,
        /// The message id.
        message_id: String,
        /// Whether we sent the message.
        from_me: bool,
        /// Whether starred.
        starred: bool,
    },
    /// `["deleteMessageForMe", chat, message id, fromMe, sender]`.
    DeleteMessageForMe {
        /// The chat.
        chat: Jid,
        /// The message id.
        message_id: String,
        /// Whether we sent the message.
        from_me: bool,
        /// Its sender (someone else's message in a group; `"0"` in the index = none).
        sender: Option<Jid>,
        /// Whether the downloaded media goes too (`deleteMedia`).
        delete_media: bool,
        /// The message's time, unix seconds, when given.
        message_timestamp: Option<i64>,
    },
    /// `["deleteChat", chat, …]`.
    DeleteChat {
        /// The chat.
        chat: Jid,
    },
    /// `["clearChat", chat, …]`.
    ClearChat {
        /// The chat.
        chat: Jid,
    },
    /// `["contact", pn jid]`: an address-book entry.
    Contact {
        /// The contact (index argument, usually a PN).
        jid: Jid,
        /// Full name as saved on the phone.
        full_name: Option<String>,
        /// First name.
        first_name: Option<String>,
        /// The contact's LID, when given (a PN↔LID mapping source, 07 §1.2).
        lid: Option<Jid>,
        /// The contact's PN, when given.
        pn: Option<Jid>,
    },
    /// `["lid_contact", lid]`.
    LidContact {
        /// The contact's LID.
        lid: Jid,
        /// Full name.
        full_name: Option<String>,
        /// First name.
        first_name: Option<String>,
    },
    /// `["setting_pushName"]`: our own push name (08 §10).
    PushName(String),
    /// `["nct_salt_sync"]`: the account's NCT salt, key of every cstoken (07 §3.3). Empty on
    /// a REMOVE or an empty SET (whatsapp-rust ignores an empty salt).
    NctSalt(Vec<u8>),
    /// `["label_edit", label id]`.
    LabelEdit {
        /// The label id.
        label_id: String,
        /// Its name.
        name: Option<String>,
        /// Its colour index.
        color: Option<i32>,
        /// Whether it was deleted.
        deleted: bool,
    },
    /// `["label_jid", label id, chat]`.
    LabelChat {
        /// The label id.
        label_id: String,
        /// The chat.
        chat: Jid,
        /// Whether the label is on.
        labeled: bool,
    },
    /// `["pnForLidChat", lid]`: the phone number behind a LID chat.
    PnForLidChat {
        /// The chat's LID.
        lid: Jid,
        /// Its PN.
        pn: Option<Jid>,
    },
    /// Any other index (its first element, e.g. `quick_reply`), or one whose arguments do not
    /// parse.
    Other(String),
}

fn jid(s: Option<&String>) -> Option<Jid> {
    s?.parse().ok()
}

fn opt_jid(s: Option<&str>) -> Option<Jid> {
    s.filter(|s| !s.is_empty())?.parse().ok()
}

impl Mutation {
    /// The typed view of this mutation ([`SyncAction`]).
    #[must_use]
    pub fn sync_action(&self) -> SyncAction {
        let name = self.index.first().map(String::as_str).unwrap_or_default();
        let arg = |i: usize| self.index.get(i);
        let v = &self.action;
        let other = || SyncAction::Other(name.to_owned());
        let parsed = match name {
            "mute" => jid(arg(1)).map(|chat| {
                let a = v.mute_action.unwrap_or_default();
                SyncAction::Mute {
                    chat,
                    muted: a.muted(),
                    until_ms: a.mute_end_timestamp,
                }
            }),
            "pin_v1" => jid(arg(1)).map(|chat| SyncAction::Pin {
                chat,
                pinned: v.pin_action.as_ref().is_some_and(|a| a.pinned()),
            }),
            "archive" => jid(arg(1)).map(|chat| SyncAction::Archive {
                chat,
                archived: v.archive_chat_action.as_ref().is_some_and(|a| a.archived()),
            }),
            "markChatAsRead" => jid(arg(1)).map(|chat| SyncAction::MarkChatAsRead {
                chat,
                read: v
                    .mark_chat_as_read_action
                    .as_ref()
                    .is_some_and(|a| a.read()),
            }),
            "star" => match (jid(arg(1)), arg(2)) {
                (Some(chat), Some(id)) => Some(SyncAction::Star {
                    chat,
                    message_id: id.clone(),
                    from_me: arg(3).is_some_and(|f| f == "1"),
                    starred: v.star_action.as_ref().is_some_and(|a| a.starred()),
                }),
                _ => None,
            },
            "deleteMessageForMe" => match (jid(arg(1)), arg(2)) {
                (Some(chat), Some(id)) => Some(SyncAction::DeleteMessageForMe {
                    chat,
                    message_id: id.clone(),
                    from_me: arg(3).is_some_and(|f| f == "1"),
                    sender: arg(4).filter(|s| *s != "0").and_then(|s| jid(Some(s))),
                    delete_media: v
                        .delete_message_for_me_action
                        .as_ref()
                        .is_some_and(|a| a.delete_media()),
                    message_timestamp: v
                        .delete_message_for_me_action
                        .as_ref()
                        .and_then(|a| a.message_timestamp),
                }),
                _ => None,
            },
            "deleteChat" => jid(arg(1)).map(|chat| SyncAction::DeleteChat { chat }),
            "clearChat" => jid(arg(1)).map(|chat| SyncAction::ClearChat { chat }),
            "contact" => jid(arg(1)).map(|jid| {
                let a = v.contact_action.clone().unwrap_or_default();
                SyncAction::Contact {
                    jid,
                    lid: opt_jid(a.lid_jid.as_deref()).filter(Jid::is_lid),
                    pn: opt_jid(a.pn_jid.as_deref()).filter(Jid::is_pn),
                    full_name: a.full_name,
                    first_name: a.first_name,
                }
            }),
            "lid_contact" => jid(arg(1)).map(|lid| {
                let a = v.lid_contact_action.clone().unwrap_or_default();
                SyncAction::LidContact {
                    lid,
                    full_name: a.full_name,
                    first_name: a.first_name,
                }
            }),
            "setting_pushName" => Some(SyncAction::PushName(
                v.push_name_setting
                    .as_ref()
                    .and_then(|a| a.name.clone())
                    .unwrap_or_default(),
            )),
            "nct_salt_sync" => Some(SyncAction::NctSalt(
                v.nct_salt_sync_action
                    .as_ref()
                    .and_then(|a| a.salt.clone())
                    .unwrap_or_default(),
            )),
            "label_edit" => arg(1).map(|id| {
                let a = v.label_edit_action.clone().unwrap_or_default();
                SyncAction::LabelEdit {
                    label_id: id.clone(),
                    deleted: a.deleted(),
                    name: a.name,
                    color: a.color,
                }
            }),
            "label_jid" => match (arg(1), jid(arg(2))) {
                (Some(id), Some(chat)) => Some(SyncAction::LabelChat {
                    label_id: id.clone(),
                    chat,
                    labeled: v
                        .label_association_action
                        .as_ref()
                        .is_some_and(|a| a.labeled()),
                }),
                _ => None,
            },
            "pnForLidChat" => jid(arg(1)).map(|lid| SyncAction::PnForLidChat {
                lid,
                pn: opt_jid(
                    v.pn_for_lid_chat_action
                        .as_ref()
                        .and_then(|a| a.pn_jid.as_deref()),
                ),
            }),
            _ => None,
        };
        parsed.unwrap_or_else(other)
    }
}
