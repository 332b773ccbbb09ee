//! Server events for the engine's app-state and history sync (issue 11): an applied
//! app-state mutation becomes an `app_state` event, a processed history-sync chunk a
//! `history_sync` event (a summary: counts, push names and PN↔LID mappings; message
//! history itself is not forwarded). Keys, the NCT salt and tokens never appear. The
//! privacy-gate announcements of 07 §3.6 become `reachout_timelock` (`{active, ends,
//! enforcement_type}`: while active, sends to new contacts answer 429
//! `reachout_timelocked`) and `new_chat_capping` (`{capped, total_quota, used_quota,
//! cycle_end, status}`: while capped, new chats answer 429 `message_capping`).

use serde_json::{Value, json};
use wa_engine::appstate::{Operation, SyncAction};
use wa_engine::{AppStateEvent, Event, HistorySyncEvent};

/// The event type and payload for `event`, if it is an app-state or history-sync event.
pub(crate) fn event_json(event: &Event) -> Option<(&'static str, Value)> {
    match event {
        Event::AppState(a) => Some(("app_state", app_state_json(a))),
        Event::HistorySync(h) => Some(("history_sync", history_sync_json(h))),
        Event::ReachoutTimelock(t) => Some((
            "reachout_timelock",
            json!({"active": t.is_active, "ends": t.ends, "enforcement_type": t.enforcement_type}),
        )),
        Event::NewChatCapping(c) => Some((
            "new_chat_capping",
            json!({"capped": c.is_capped(), "total_quota": c.total_quota,
                   "used_quota": c.used_quota, "cycle_end": c.cycle_end,
                   "status": c.capping_status}),
        )),
        _ => None,
    }
}

/// `{collection, version, operation: "set"|"remove", action: {type, ...}, timestamp_ms,
/// from_full_sync}`; `action.type` is the mutation's kind (`mute`, `pin`, `archive`,
/// `mark_chat_read`, `star`, `delete_message_for_me`, `delete_chat`, `clear_chat`,
/// `contact`, `lid_contact`, `push_name`, `nct_salt` (the salt itself is never included), `label_edit`,
/// `label_chat`, `pn_for_lid_chat`, or `other` with the index `name`).
fn app_state_json(a: &AppStateEvent) -> Value {
    let operation = match a.operation {
        Operation::Set => "set",
        Operation::Remove => "remove",
    };
    json!({
        "collection": a.collection.as_str(),
        "version": a.version,
        "operation": operation,
        "action": action_json(&a.action),
        "timestamp_ms": a.timestamp_ms,
        "from_full_sync": a.from_full_sync,
    })
}

fn s<T: ToString>(j: &T) -> String {
    j.to_string()
}

fn action_json(action: &SyncAction) -> Value {
    match action {
        SyncAction::Mute {
            chat,
            muted,
            until_ms,
        } => json!({"type": "mute", "chat": s(chat), "muted": muted, "until_ms": until_ms}),
        SyncAction::Pin { chat, pinned } => {
            json!({"type": "pin", "chat": s(chat), "pinned": pinned})
        }
        SyncAction::Archive { chat, archived } => {
            json!({"type": "archive", "chat": s(chat), "archived": archived})
        }
        SyncAction::MarkChatAsRead { chat, read } => {
            json!({"type": "mark_chat_read", "chat": s(chat), "read": read})
        }
        SyncAction::Star {
            chat,
            message_id,
            from_me,
            starred,
        } => json!({"type": "star", "chat": s(chat), "message_id": message_id,
                    "from_me": from_me, "starred": starred}),
        SyncAction::DeleteMessageForMe {
            chat,
            message_id,
            from_me,
            sender,
            delete_media,
            message_timestamp,
        } => json!({"type": "delete_message_for_me", "chat": s(chat),
                    "message_id": message_id, "from_me": from_me,
                    "sender": sender.as_ref().map(s), "delete_media": delete_media,
                    "message_timestamp": message_timestamp}),
        SyncAction::DeleteChat { chat } => json!({"type": "delete_chat", "chat": s(chat)}),
        SyncAction::ClearChat { chat } => json!({"type": "clear_chat", "chat": s(chat)}),
        SyncAction::Contact {
            jid,
            full_name,
            first_name,
            lid,
            pn,
        } => json!({"type": "contact", "jid": s(jid), "full_name": full_name,
                    "first_name": first_name, "lid": lid.as_ref().map(s),
                    "pn": pn.as_ref().map(s)}),
        SyncAction::LidContact {
            lid,
            full_name,
            first_name,
        } => json!({"type": "lid_contact", "lid": s(lid), "full_name": full_name,
                    "first_name": first_name}),
        SyncAction::PushName(name) => json!({"type": "push_name", "name": name}),
        // The salt is a key: the engine leaves it out of the event and it is never forwarded;
        // `operation` says whether it was set or removed.
        SyncAction::NctSalt(_) => json!({"type": "nct_salt"}),
        SyncAction::LabelEdit {
            label_id,
            name,
            color,
            deleted,
        } => json!({"type": "label_edit", "label_id": label_id, "name": name,
                    "color": color, "deleted": deleted}),
        SyncAction::LabelChat {
            label_id,
            chat,
            labeled,
        } => json!({"type": "label_chat", "label_id": label_id, "chat": s(chat),
                    "labeled": labeled}),
        SyncAction::PnForLidChat { lid, pn } => {
            json!({"type": "pn_for_lid_chat", "lid": s(lid), "pn": pn.as_ref().map(s)})
        }
        SyncAction::Other(name) => json!({"type": "other", "name": name}),
        other => json!({"type": "other", "name": format!("{other:?}")
            .split([' ', '(', '{']).next().unwrap_or_default()}),
    }
}

/// `{sync_type, chunk_order, progress, conversations, messages, push_names: [{jid, name}],
/// lid_mappings: [{pn, lid}]}`: a summary of one chunk (counts of conversations and kept
/// messages; tokens and the salt were stored by the engine and are not forwarded).
fn history_sync_json(h: &HistorySyncEvent) -> Value {
    let d = &h.data;
    json!({
        "sync_type": d.sync_type.map(|t| format!("{t:?}")),
        "chunk_order": d.chunk_order,
        "progress": d.progress,
        "conversations": d.conversations.len(),
        "messages": d.message_count(),
        "push_names": d.push_names.iter()
            .map(|p| json!({"jid": s(&p.jid), "name": p.name}))
            .collect::<Vec<_>>(),
        "lid_mappings": d.lid_mappings.iter()
            .map(|m| json!({"pn": s(&m.pn), "lid": s(&m.lid)}))
            .collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_render_with_a_stable_type_and_no_salt() {
        let chat: wa_engine::Jid = "15551230001@s.whatsapp.net".parse().expect("jid");
        let v = action_json(&SyncAction::Mute {
            chat: chat.clone(),
            muted: true,
            until_ms: Some(-1),
        });
        assert_eq!(
            v,
            json!({"type": "mute", "chat": "15551230001@s.whatsapp.net", "muted": true, "until_ms": -1})
        );
        let v = action_json(&SyncAction::MarkChatAsRead { chat, read: false });
        assert_eq!(v["type"], "mark_chat_read");
        assert_eq!(v["read"], false);
        let v = action_json(&SyncAction::NctSalt(vec![7; 32]));
        assert_eq!(v, json!({"type": "nct_salt"}));
        assert!(!v.to_string().contains("7,7"));
    }
}
