//! Server events for typed notifications and `<ib>` stanzas (issue 13 item 1): one webhook
//! event per kind, next to the generic `notification` event (kept as it was).
//!
//! | engine event | event type | `data` |
//! |---|---|---|
//! | `w:gp2` add / remove / promote / demote | `group_participants` | `{group, actor, timestamp, action, participants: [jid]}` (one event per change) |
//! | `w:gp2` anything else (subject, description, announce, locked, invite, ephemeral, create, ...) | `group_update` | `{group, actor, timestamp, changes: [tag], subject, description, description_removed, announce, locked, invite_code, ephemeral_secs}` (fields not changed are `null`) |
//! | `account_sync` | `account_sync` | `{from, timestamp, what: "devices"\|"privacy"\|"picture"\|"blocklist"\|<tag>}` |
//! | `picture` | `contact_picture` | `{jid, from, timestamp, picture_id, removed}` |
//! | `status` | `contact_status` | `{jid, timestamp, text}` |
//! | `devices` | `contact_devices` | `{jid, timestamp}` |
//! | `encrypt` `<identity>` | `identity_changed` | `{jid, timestamp}` |
//! | `encrypt` `<count>` | `prekey_count` | `{count}` |
//! | `mediaretry` | `media_retry` | `{message_id, timestamp}` |
//! | `server_sync` | `server_sync` | `{collections: [name]}` |
//! | `privacy_token` | `privacy_token` | `{from, sender_lid, tokens, newest_timestamp}` (never the token bytes) |
//! | `<ib><dirty>` | `dirty` | `{type, timestamp}` |
//! | `<ib><offline_preview>` | `offline_preview` | `{total, messages, notifications, receipts, app_data}` |
//! | `<ib><offline>` | `offline_sync` | `{count}` |
//! | `<ib><edge_routing>` | `edge_routing` | `{length, stored}` (never the routing bytes) |
//!
//! Reach-out timelock and capping are `reachout_timelock` / `new_chat_capping`
//! (`sync_events`).

use serde_json::{Value, json};
use wa_engine::notification::{AccountSync, NotificationEvent, NotificationKind};
use wa_engine::{Event, GroupChange, Jid};

fn jid(j: &Jid) -> String {
    j.to_string()
}

fn jids(list: &[Jid]) -> Vec<String> {
    list.iter().map(jid).collect()
}

/// The specific events of a typed notification (the generic `notification` event is
/// separate), in order.
pub(crate) fn notification_events(n: &NotificationEvent) -> Vec<(&'static str, Value)> {
    let from = n.from.as_ref().map(jid);
    let ts = n.timestamp;
    match &n.kind {
        NotificationKind::Group(g, x) => {
            let group = jid(&g.group);
            let actor = g.actor.as_ref().map(jid);
            let mut out = Vec::new();
            let mut tags = Vec::new();
            let mut subject = None;
            let mut created = None;
            for c in &g.changes {
                let (action, list) = match c {
                    GroupChange::Added(l) => ("add", l),
                    GroupChange::Removed(l) => ("remove", l),
                    GroupChange::Promoted(l) => ("promote", l),
                    GroupChange::Demoted(l) => ("demote", l),
                    GroupChange::Subject(s) => {
                        subject = Some(s.clone());
                        tags.push("subject".to_owned());
                        continue;
                    }
                    GroupChange::Created(info) => {
                        // The whole metadata comes with a creation: passed on (as the
                        // native group routes show a group) for those added by it.
                        created = serde_json::to_value(crate::routes::groups::GroupView::from(
                            info.clone(),
                        ))
                        .ok();
                        tags.push("create".to_owned());
                        continue;
                    }
                    GroupChange::Other(t) => {
                        tags.push(t.clone());
                        continue;
                    }
                    _ => {
                        tags.push("other".to_owned());
                        continue;
                    }
                };
                out.push((
                    "group_participants",
                    json!({"group": group, "actor": actor, "timestamp": ts,
                           "action": action, "participants": jids(list)}),
                ));
            }
            if !tags.is_empty() {
                out.push((
                    "group_update",
                    json!({
                        "group": group,
                        "actor": actor,
                        "timestamp": ts,
                        "changes": tags,
                        "subject": subject,
                        "description": x.description.clone().flatten(),
                        "description_removed": x.description.as_ref().map(Option::is_none),
                        "announce": x.announce,
                        "locked": x.locked,
                        "invite_code": x.invite_code,
                        "ephemeral_secs": x.ephemeral_secs,
                        "created": created,
                    }),
                ));
            }
            out
        }
        NotificationKind::AccountSync(what) => {
            let what = match what {
                AccountSync::Devices => "devices".to_owned(),
                AccountSync::Privacy => "privacy".to_owned(),
                AccountSync::Picture => "picture".to_owned(),
                AccountSync::Blocklist => "blocklist".to_owned(),
                AccountSync::Other(t) => t.clone(),
                _ => "other".to_owned(),
            };
            vec![(
                "account_sync",
                json!({"from": from, "timestamp": ts, "what": what}),
            )]
        }
        NotificationKind::Picture {
            jid: who,
            picture_id,
            removed,
        } => vec![(
            "contact_picture",
            json!({"jid": who.as_ref().map(jid), "from": from, "timestamp": ts,
                   "picture_id": picture_id, "removed": removed}),
        )],
        NotificationKind::Status { text } => vec![(
            "contact_status",
            json!({"jid": from, "timestamp": ts, "text": text}),
        )],
        NotificationKind::Devices => {
            vec![("contact_devices", json!({"jid": from, "timestamp": ts}))]
        }
        NotificationKind::IdentityChange => {
            vec![("identity_changed", json!({"jid": from, "timestamp": ts}))]
        }
        NotificationKind::PreKeyCount(count) => vec![("prekey_count", json!({"count": count}))],
        NotificationKind::MediaRetry { message_id } => vec![(
            "media_retry",
            json!({"message_id": message_id, "timestamp": ts}),
        )],
        _ => Vec::new(),
    }
}

/// The `server_sync` event for a raw `server_sync` notification (the engine passes it up as
/// `Event::Stanza` and fetches the collections; their mutations become `app_state` events).
pub(crate) fn stanza_json(node: &wa_engine::binary::Node) -> Option<(&'static str, Value)> {
    if node.tag != "notification" || node.get_attr_str("type") != Some("server_sync") {
        return None;
    }
    let collections: Vec<&str> = wa_engine::appstate::iq::parse_server_sync(node)
        .into_iter()
        .map(|(c, _)| c.as_str())
        .collect();
    Some(("server_sync", json!({ "collections": collections })))
}

/// The event for an `<ib>` or privacy-token engine event, if `event` is one.
pub(crate) fn event_json(event: &Event) -> Option<(&'static str, Value)> {
    match event {
        Event::PrivacyToken(t) => Some((
            "privacy_token",
            json!({"from": jid(&t.from), "sender_lid": t.sender_lid.as_ref().map(jid),
                   "tokens": t.tokens, "newest_timestamp": t.newest_timestamp}),
        )),
        Event::Dirty { kind, timestamp } => {
            Some(("dirty", json!({"type": kind, "timestamp": timestamp})))
        }
        Event::OfflineSyncPreview(p) => Some((
            "offline_preview",
            json!({"total": p.total, "messages": p.messages, "notifications": p.notifications,
                   "receipts": p.receipts, "app_data": p.app_data}),
        )),
        Event::OfflineSyncCompleted { count } => Some(("offline_sync", json!({"count": count}))),
        Event::EdgeRoutingUpdated { len, stored } => {
            Some(("edge_routing", json!({"length": len, "stored": stored})))
        }
        _ => None,
    }
}
