//! `settings/set|find`, `webhook/set|find`, and the rendering of native events as
//! Evolution webhook deliveries (`integrations/event/webhook/webhook.controller.ts`,
//! `api/services/channel.service.ts sendDataWebhook`): envelope `{event, instance, data,
//! destination, date_time, sender, server_url, apikey}`, wire names (`messages.upsert`),
//! per-event URL suffixes (`webhookByEvents`: `<url>/messages-upsert`).
//!
//! Native event → Evolution event: `qr`/`pairing_code` → `QRCODE_UPDATED`; `connection` →
//! `CONNECTION_UPDATE`; `message` → `MESSAGES_UPSERT`; `message_status` → `MESSAGES_UPDATE`
//! and, when an outgoing message reaches `sent`, `SEND_MESSAGE` (the row from the message
//! log); `message_reaction` → `MESSAGES_UPSERT` (a `reactionMessage`); `call` → `CALL`;
//! `logged_out` → `LOGOUT_INSTANCE`; a group `notification` with a `create` change →
//! `GROUPS_UPSERT`; `group_participants` → `GROUP_PARTICIPANTS_UPDATE`; `group_update` →
//! `GROUP_UPDATE` (wire `groups.update`). Delivery is the native outbox's: durable, retried with its
//! backoff (not Evolution's in-memory retries).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::instance::{WebhookBody, apply_settings, iso_time, settings_json, webhook_of};
use super::store::{self, EvoSettings, EvoWebhook};
use super::{EvoError, EvoInstance, EvoJson, EvoResult, rows};
use crate::db::{DeliveryTarget, MessageRecord, ServerDb, key2};
use crate::dialect::Prepared;
use crate::events::Envelope;
use crate::session::Session;
use crate::state::AppState;

/// Every event name Evolution accepts in `webhook.events` (`EventController.events`).
pub(crate) const CONFIG_EVENTS: [&str; 33] = [
    "APPLICATION_STARTUP",
    "QRCODE_UPDATED",
    "MESSAGES_SET",
    "MESSAGES_UPSERT",
    "MESSAGES_EDITED",
    "MESSAGES_UPDATE",
    "MESSAGES_DELETE",
    "SEND_MESSAGE",
    "SEND_MESSAGE_UPDATE",
    "CONTACTS_SET",
    "CONTACTS_UPSERT",
    "CONTACTS_UPDATE",
    "PRESENCE_UPDATE",
    "CHATS_SET",
    "CHATS_UPSERT",
    "CHATS_UPDATE",
    "CHATS_DELETE",
    "GROUPS_UPSERT",
    "GROUP_UPDATE",
    "GROUP_PARTICIPANTS_UPDATE",
    "CONNECTION_UPDATE",
    "LABELS_EDIT",
    "LABELS_ASSOCIATION",
    "CALL",
    "TYPEBOT_START",
    "TYPEBOT_CHANGE_STATUS",
    "MESSAGING_HISTORY_SET",
    "REMOVE_INSTANCE",
    "LOGOUT_INSTANCE",
    "INSTANCE_CREATE",
    "INSTANCE_DELETE",
    "STATUS_INSTANCE",
    "GROUPS_UPDATE",
];

/// Whether `name` is one of [`CONFIG_EVENTS`].
pub(crate) fn is_config_event(name: &str) -> bool {
    CONFIG_EVENTS.contains(&name)
}

/// The wire name (`event` field) of a config name.
pub(crate) fn wire_name(config: &str) -> String {
    match config {
        "GROUP_PARTICIPANTS_UPDATE" => "group-participants.update".to_owned(),
        "MESSAGING_HISTORY_SET" => "messaging-history.set".to_owned(),
        "TYPEBOT_CHANGE_STATUS" => "typebot.change-status".to_owned(),
        "GROUP_UPDATE" | "GROUPS_UPDATE" => "groups.update".to_owned(),
        "CALL" => "call".to_owned(),
        other => other.to_ascii_lowercase().replace('_', "."),
    }
}

/// `settings/set` body: the six flags are required, as in `settings.schema.ts`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SettingsBody {
    reject_call: bool,
    groups_ignore: bool,
    always_online: bool,
    read_messages: bool,
    read_status: bool,
    sync_full_history: bool,
    #[serde(default)]
    msg_call: Option<String>,
    #[serde(default)]
    wavoip_token: Option<String>,
}

/// `POST /settings/set/{i}`: stores the flags; `rejectCall`, `groupsIgnore`,
/// `readMessages` change the native settings. 201.
pub(crate) async fn settings_set(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoJson(body): EvoJson<SettingsBody>,
) -> EvoResult<(StatusCode, Json<Value>)> {
    let settings = EvoSettings {
        reject_call: body.reject_call,
        msg_call: body.msg_call.unwrap_or_default(),
        groups_ignore: body.groups_ignore,
        always_online: body.always_online,
        read_messages: body.read_messages,
        read_status: body.read_status,
        sync_full_history: body.sync_full_history,
        wavoip_token: body.wavoip_token.unwrap_or_default(),
    };
    let mut data = store::load_or_init(state.db(), &session.id).await?;
    data.settings = settings.clone();
    data.updated_at = crate::db::now_ms();
    store::save(state.db(), &session.id, &data).await?;
    let mut record = session.record();
    apply_settings(&mut record.settings, &settings);
    state.save_record(&session, record).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "settings": { "instanceName": session.id, "settings": settings_json(&settings) } }),
        ),
    ))
}

/// `GET /settings/find/{i}`.
pub(crate) async fn settings_find(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
) -> EvoResult<Json<Value>> {
    let data = store::load_or_init(state.db(), &session.id).await?;
    Ok(Json(settings_json(&data.settings)))
}

/// `webhook/set` body: `{"webhook": {...}}` as the server wants it, or the docs' flat form.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum WebhookSetBody {
    /// `{"webhook": {...}}`.
    Nested {
        /// The configuration.
        webhook: WebhookBody,
    },
    /// The docs spec's flat body (the real server refuses it; accepted here).
    Flat(WebhookBody),
}

fn webhook_row(w: &EvoWebhook, instance_id: &str) -> Value {
    json!({
        "id": w.id,
        "url": w.url,
        "headers": w.headers,
        "enabled": w.enabled,
        "events": w.events,
        "webhookByEvents": w.by_events,
        "webhookBase64": w.base64,
        "createdAt": iso_time(w.created_at),
        "updatedAt": iso_time(w.updated_at),
        "instanceId": instance_id,
    })
}

/// `POST /webhook/set/{i}`: the stored row. 201.
pub(crate) async fn webhook_set(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoJson(body): EvoJson<WebhookSetBody>,
) -> EvoResult<(StatusCode, Json<Value>)> {
    let body = match body {
        WebhookSetBody::Nested { webhook } | WebhookSetBody::Flat(webhook) => webhook,
    };
    if body.enabled.is_none() && body.url.is_none() {
        return Err(EvoError::bad_request(
            "instance requires property \"webhook\"",
        ));
    }
    let mut data = store::load_or_init(state.db(), &session.id).await?;
    let hook = webhook_of(body, data.webhook.as_ref())?;
    data.webhook = Some(hook.clone());
    store::save(state.db(), &session.id, &data).await?;
    Ok((
        StatusCode::CREATED,
        Json(webhook_row(&hook, &data.instance_id)),
    ))
}

/// `GET /webhook/find/{i}`: the row, or `null`.
pub(crate) async fn webhook_find(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
) -> EvoResult<Json<Value>> {
    let data = store::load_or_init(state.db(), &session.id).await?;
    Ok(Json(data.webhook.as_ref().map_or(Value::Null, |w| {
        webhook_row(w, &data.instance_id)
    })))
}

/// `GET /proxy/find/{i}`: `null`, Evolution's answer for an instance without a proxy: the
/// server connects without one (`proxy/set` answers 501).
pub(crate) async fn proxy_find(_: EvoInstance) -> Json<Value> {
    Json(Value::Null)
}

/// The Evolution events of a native event: `(config name, data)`.
fn translate(
    state: &AppState,
    session: &Session,
    instance_id: &str,
    envelope: &Envelope,
) -> Vec<(&'static str, Value)> {
    let d = &envelope.data;
    let text = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_owned);
    match envelope.kind {
        "qr" => {
            let code = text("qr");
            let base64 = code
                .as_deref()
                .and_then(|c| crate::render::qr_png(c).ok())
                .map(|png| {
                    use base64::Engine as _;
                    format!(
                        "data:image/png;base64,{}",
                        base64::engine::general_purpose::STANDARD.encode(png)
                    )
                });
            vec![(
                "QRCODE_UPDATED",
                json!({ "qrcode": { "instance": session.id, "pairingCode": null, "code": code, "base64": base64 } }),
            )]
        }
        "pairing_code" => vec![(
            "QRCODE_UPDATED",
            json!({ "qrcode": { "instance": session.id, "pairingCode": text("code"), "code": null, "base64": null } }),
        )],
        "connection" => {
            let status = d.get("status").and_then(Value::as_str).unwrap_or_default();
            let state_name = match status {
                "connected" => "open",
                "logged_out" | "stopped" => "close",
                _ => "connecting",
            };
            let live = session.live();
            let wuid = text("jid")
                .and_then(|j| j.parse::<wa_engine::Jid>().ok())
                .map(|j| j.to_non_ad().to_string());
            let reason = match state_name {
                "open" => 200,
                "close" if status == "logged_out" => 401,
                "close" => 428,
                _ => 200,
            };
            let mut data =
                json!({ "instance": session.id, "state": state_name, "statusReason": reason });
            if state_name == "open"
                && let Value::Object(m) = &mut data
            {
                m.insert("wuid".to_owned(), json!(wuid));
                m.insert("profileName".to_owned(), json!(live.push_name));
                m.insert("profilePictureUrl".to_owned(), Value::Null);
            }
            vec![("CONNECTION_UPDATE", data)]
        }
        "logged_out" => vec![(
            "LOGOUT_INSTANCE",
            json!({ "instance": session.id, "reason": text("reason") }),
        )],
        "message" | "message_reaction" => {
            let Some(id) = text("id") else {
                return Vec::new();
            };
            let record = logged(state, &session.id, &id);
            let push = text("push_name");
            let row = match record {
                Some(r) => {
                    let mut row = rows::record_row(&r, instance_id, push.as_deref());
                    if r.direction == "in"
                        && let Value::Object(m) = &mut row
                    {
                        m.insert("status".to_owned(), json!("DELIVERY_ACK"));
                    }
                    if let (Some(chat), Value::Object(m)) = (text("chat"), &mut row)
                        && let Some(Value::Object(key)) = m.get_mut("key")
                    {
                        key.insert("remoteJid".to_owned(), json!(chat));
                        key.insert(
                            "fromMe".to_owned(),
                            json!(d.get("from_me").and_then(Value::as_bool).unwrap_or(false)),
                        );
                    }
                    row
                }
                None => json!({
                    "key": { "remoteJid": text("chat"), "fromMe": d.get("from_me"), "id": id },
                    "pushName": push.unwrap_or_default(),
                    "status": "DELIVERY_ACK",
                    "message": { "conversation": text("text").unwrap_or_default() },
                    "messageType": "conversation",
                    "messageTimestamp": d.get("timestamp"),
                    "instanceId": instance_id,
                    "source": "android",
                }),
            };
            vec![("MESSAGES_UPSERT", row)]
        }
        "message_status" => {
            let Some(id) = text("id") else {
                return Vec::new();
            };
            let status = text("status").unwrap_or_default();
            let mut out = vec![(
                "MESSAGES_UPDATE",
                json!({
                    "keyId": id,
                    "remoteJid": text("to"),
                    "fromMe": true,
                    "participant": null,
                    "status": rows::status_of(&status),
                    "instanceId": instance_id,
                }),
            )];
            if status == "sent"
                && let Some(record) = logged(state, &session.id, &id)
            {
                let mut row =
                    rows::record_row(&record, instance_id, session.live().push_name.as_deref());
                if let Value::Object(m) = &mut row {
                    m.insert("status".to_owned(), json!("PENDING"));
                }
                out.push(("SEND_MESSAGE", row));
            }
            out
        }
        "call" => vec![(
            "CALL",
            json!({
                "id": d.get("call_id").or_else(|| d.get("id")),
                "from": d.get("from"),
                "chatId": d.get("from"),
                "date": iso_time(d.get("timestamp").and_then(Value::as_u64).map_or(envelope.timestamp, |t| if t < 10_000_000_000 { t * 1000 } else { t })),
                "isVideo": d.get("video").or_else(|| d.get("is_video")).and_then(Value::as_bool).unwrap_or(false),
                "isGroup": d.get("group").or_else(|| d.get("is_group")).and_then(Value::as_bool).unwrap_or(false),
                "status": d.get("kind").or_else(|| d.get("status")).and_then(Value::as_str).unwrap_or("offer"),
                "offline": d.get("offline").and_then(Value::as_bool).unwrap_or(false),
            }),
        )],
        "notification" if d.get("kind").and_then(Value::as_str) == Some("group") => {
            groups_upsert(d)
        }
        "group_participants" => participants_event(d),
        "group_update" => groups_update(d),
        _ => Vec::new(),
    }
}

/// `GROUP_PARTICIPANTS_UPDATE` of a native `group_participants` event (`{group, actor,
/// action, participants}`, one per change).
fn participants_event(d: &Value) -> Vec<(&'static str, Value)> {
    let action = d.get("action").and_then(Value::as_str).unwrap_or_default();
    if !matches!(action, "add" | "remove" | "promote" | "demote") {
        return Vec::new();
    }
    let participants: Vec<Value> = d
        .get("participants")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let data: Vec<Value> = participants
        .iter()
        .map(|p| {
            let jid = p.as_str().unwrap_or_default();
            json!({ "jid": jid, "phoneNumber": jid.split('@').next(), "name": null, "imgUrl": null })
        })
        .collect();
    vec![(
        "GROUP_PARTICIPANTS_UPDATE",
        json!({ "id": d.get("group"), "author": d.get("actor"), "participants": participants,
                "action": action, "participantsData": data }),
    )]
}

/// `GROUPS_UPSERT` (Baileys `GroupMetadata` in an array, as `group::group_json` renders it)
/// of a native group `notification` with a `create` change: this account created or
/// joined the group.
fn groups_upsert(d: &Value) -> Vec<(&'static str, Value)> {
    let Some(created) = d
        .get("changes")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["change"] == "create"))
    else {
        return Vec::new();
    };
    let participants: Vec<Value> = created
        .get("participants")
        .and_then(Value::as_array)
        .map(|p| {
            p.iter()
                .map(|p| {
                    let admin = match p["role"].as_str() {
                        Some(r @ ("admin" | "superadmin")) => json!(r),
                        _ => Value::Null,
                    };
                    json!({ "id": p["jid"], "admin": admin })
                })
                .collect()
        })
        .unwrap_or_default();
    let creation = created.get("creation").cloned().unwrap_or(Value::Null);
    vec![(
        "GROUPS_UPSERT",
        json!([{
            "id": d.get("group"),
            "subject": created.get("subject"),
            "subjectOwner": created.get("creator"),
            "subjectTime": creation,
            "pictureUrl": null,
            "size": participants.len(),
            "creation": creation,
            "owner": created.get("creator"),
            "desc": d.get("description").filter(|x| x.is_string()),
            "descId": null,
            "restrict": d.get("locked").and_then(Value::as_bool).unwrap_or(false),
            "announce": d.get("announce").and_then(Value::as_bool).unwrap_or(false),
            "isCommunity": false,
            "isCommunityAnnounce": false,
            "linkedParent": null,
            "participants": participants,
            "author": d.get("actor"),
        }]),
    )]
}

/// `GROUP_UPDATE` (wire `groups.update`) of a native `group_update` event other than a
/// creation: Baileys' partial `GroupMetadata` in an array (`id`, `author`, and the fields
/// that changed). Upstream never delivers it to per-instance webhooks (its config name does
/// not match, `../shared/compat/evolution-v2.md` §7); delivering it is a deliberate
/// improvement.
fn groups_update(d: &Value) -> Vec<(&'static str, Value)> {
    let changes: Vec<&str> = d
        .get("changes")
        .and_then(Value::as_array)
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if changes.is_empty() || changes.contains(&"create") {
        return Vec::new();
    }
    let mut item = json!({ "id": d.get("group"), "author": d.get("actor") });
    if let Value::Object(m) = &mut item {
        if let Some(subject) = d.get("subject").filter(|v| !v.is_null()) {
            m.insert("subject".to_owned(), subject.clone());
        }
        if let Some(desc) = d.get("description").filter(|v| !v.is_null()) {
            m.insert("desc".to_owned(), desc.clone());
        }
        if let Some(announce) = d.get("announce").filter(|v| !v.is_null()) {
            m.insert("announce".to_owned(), announce.clone());
        }
        if let Some(locked) = d.get("locked").filter(|v| !v.is_null()) {
            m.insert("restrict".to_owned(), locked.clone());
        }
    }
    vec![("GROUP_UPDATE", json!([item]))]
}

/// A message of the log.
fn logged(state: &AppState, session: &str, id: &str) -> Option<MessageRecord> {
    ServerDb::get(&state.db().messages, key2(session, id), "message")
        .ok()
        .flatten()
}

/// The deliveries of `envelope` to the instance's Evolution webhook (none when it has no
/// enabled webhook or the event is filtered out).
pub(crate) fn render(state: &AppState, session: &Session, envelope: &Envelope) -> Vec<Prepared> {
    let data = match store::load(state.db(), &session.id) {
        Ok(Some(d)) => d,
        Ok(None) => return Vec::new(),
        Err(e) => {
            tracing::error!(session = %session.id, error = %e, "cannot read the Evolution webhook");
            return Vec::new();
        }
    };
    let Some(hook) = data
        .webhook
        .as_ref()
        .filter(|h| h.enabled && !h.url.is_empty())
    else {
        return Vec::new();
    };
    let sender = session
        .live()
        .jid
        .and_then(|j| j.parse::<wa_engine::Jid>().ok())
        .map(|j| j.to_non_ad().to_string());
    let server_url = state.config().public_url.clone().unwrap_or_default();
    translate(state, session, &data.instance_id, envelope)
        .into_iter()
        .filter(|(config, _)| {
            hook.events.is_empty()
                || hook.events.iter().any(|e| {
                    e == config
                        // Either spelling of the group update event (see `groups_update`).
                        || (*config == "GROUP_UPDATE" && e == "GROUPS_UPDATE")
                })
        })
        .map(|(config, payload)| {
            let url = if hook.by_events {
                format!(
                    "{}/{}",
                    hook.url.trim_end_matches('/'),
                    config.to_ascii_lowercase().replace('_', "-")
                )
            } else {
                hook.url.clone()
            };
            let wire = wire_name(config);
            let body = json!({
                "event": wire,
                "instance": session.id,
                "data": payload,
                "destination": url,
                "date_time": iso_time(envelope.timestamp),
                "sender": sender,
                "server_url": server_url,
                "apikey": null,
            });
            let mut headers: Vec<(String, String)> = hook
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                    )
                })
                .collect();
            headers.push(("X-Instance-ID".to_owned(), data.instance_id.clone()));
            headers.push(("X-Instance-Name".to_owned(), session.id.clone()));
            headers.push(("X-Event-Type".to_owned(), wire.clone()));
            headers.push(("X-Timestamp".to_owned(), envelope.timestamp.to_string()));
            headers.push((
                "User-Agent".to_owned(),
                "EvolutionAPI-Webhook/2.3.7 (wa-server)".to_owned(),
            ));
            Prepared {
                session: session.id.clone(),
                hook_id: format!("evolution:{config}"),
                event_id: envelope.id.clone(),
                body: body.to_string(),
                target: DeliveryTarget {
                    url,
                    headers,
                    event: wire,
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_follow_the_events_enum() {
        assert_eq!(wire_name("MESSAGES_UPSERT"), "messages.upsert");
        assert_eq!(wire_name("QRCODE_UPDATED"), "qrcode.updated");
        assert_eq!(wire_name("SEND_MESSAGE"), "send.message");
        assert_eq!(
            wire_name("GROUP_PARTICIPANTS_UPDATE"),
            "group-participants.update"
        );
        assert_eq!(wire_name("CALL"), "call");
        // The check Evolution does: wire with [.-] → _, upper case, is the config name.
        for c in CONFIG_EVENTS {
            if c == "GROUP_UPDATE" {
                continue;
            }
            assert_eq!(
                wire_name(c).replace(['.', '-'], "_").to_ascii_uppercase(),
                c
            );
        }
    }
}
