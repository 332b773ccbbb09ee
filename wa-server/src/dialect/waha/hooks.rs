//! WAHA webhooks: the `config.webhooks[]` of a session (`WebhookConfig{url, events, hmac?{key},
//! retries?{policy, delaySeconds, attempts}, customHeaders?[{name, value}]}`, shared/compat/
//! waha.md §6), kept in the server database's `dialects` tree (key `session id \0 "waha"`),
//! and the rendering of native events as WAHA deliveries for the durable outbox.
//!
//! Envelope `{id, timestamp (ms), event, session, metadata?, engine, me, payload,
//! environment}`; headers `X-Webhook-Request-Id`, `X-Webhook-Timestamp` (ms), the
//! `customHeaders`, and with `hmac.key` `X-Webhook-Hmac` (hex HMAC-SHA512 of the raw body)
//! and `X-Webhook-Hmac-Algorithm: sha512`.
//!
//! Native event → WAHA event (payloads as WAHA's `WAHAWebhook*` schemas and events doc):
//! - `message` → `message` (incoming only) and `message.any` (`WAMessage`,
//!   [`super::message::Facts`]); `message_status` → `message.ack` and, when an outgoing
//!   message reaches `sent`, `message.any` (the row of the message log, as `sendText`
//!   answered it);
//! - `connection` → `session.status` (WAHA's state names, [`super::waha_status`], with the
//!   three most recent statuses);
//! - `message_reaction` → `message.reaction` (`WAMessageReaction`), `message_edited` →
//!   `message.edited` (`WAMessageEditedBody`), `message_revoked` → `message.revoked`
//!   (`WAMessageRevokedBody`, `before` when the log has the message), `poll_vote` →
//!   `poll.vote` (`PollVotePayload`);
//! - `group_participants` → `group.v2.participants` (`type` join/leave/promote/demote),
//!   and for the own account `group.v2.join`/`group.v2.leave` plus the deprecated
//!   `group.join`/`group.leave` (same payload); `group_update` → `group.v2.update` (the
//!   changed fields), a group created → `group.v2.join`;
//! - `presence` and `chat_state` → `presence.update` (`WAHAChatPresences`: online/offline,
//!   typing/recording/paused); `call` offer/accept/reject → `call.received`/
//!   `call.accepted`/`call.rejected` (`CallData`).
//!
//! The other WAHA events (`message.ack.group`, `message.waiting`, `state.change`,
//! `poll.vote.failed`, `chat.archive`, `label.*`, `event.response*`, `engine.event`,
//! `group.v2.participants.join-request`) are accepted in `events` and never delivered.
//!
//! Delivery is the native outbox's: durable and retried with its own backoff; `retries` is
//! kept and shown but WAHA's per-hook policy is not applied. `engine` is `GOWS`: WAHA's
//! engine names are fixed (`WEBJS|WPP|NOWEB|GOWS`), and wa-server, like GOWS, speaks the
//! multi-device protocol directly with whatsmeow as its first source.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256, Sha512};

use super::message::{Facts, me_id};
use super::sessions::MeInfo;
use super::{WahaError, chat_id};
use crate::db::{DbError, DeliveryTarget, MessageRecord, ServerDb, key2, now_ms};
use crate::dialect::Prepared;
use crate::events::Envelope;
use crate::session::Session;
use crate::state::AppState;

/// WAHA's event names (the 2026.7.1 `WAHAEvents` enum plus
/// `group.v2.participants.join-request`); `*` subscribes to all.
const EVENTS: [&str; 31] = [
    "session.status",
    "message",
    "message.reaction",
    "message.any",
    "message.ack",
    "message.ack.group",
    "message.waiting",
    "message.revoked",
    "message.edited",
    "state.change",
    "group.join",
    "group.leave",
    "group.v2.join",
    "group.v2.leave",
    "group.v2.update",
    "group.v2.participants",
    "group.v2.participants.join-request",
    "presence.update",
    "poll.vote",
    "poll.vote.failed",
    "chat.archive",
    "call.received",
    "call.accepted",
    "call.rejected",
    "label.upsert",
    "label.deleted",
    "label.chat.added",
    "label.chat.deleted",
    "event.response",
    "event.response.failed",
    "engine.event",
];

/// The engine name wa-server reports (see the module docs).
const ENGINE: &str = "GOWS";

/// `hmac` of a `WebhookConfig`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct HmacConfig {
    /// The HMAC key; shown as `null` (never echoed back).
    #[serde(default)]
    pub(crate) key: Option<String>,
}

/// `retries` of a `WebhookConfig` (kept and shown; see the module docs).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RetriesConfig {
    /// `linear`, `exponential` or `constant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) policy: Option<String>,
    /// Seconds between attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) delay_seconds: Option<u64>,
    /// Attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) attempts: Option<u32>,
}

/// One of `customHeaders`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CustomHeader {
    /// Header name.
    pub(crate) name: String,
    /// Header value.
    pub(crate) value: String,
}

/// WAHA's `WebhookConfig`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WebhookConfig {
    /// Where deliveries are POSTed.
    pub(crate) url: String,
    /// WAHA event names or `*`.
    pub(crate) events: Vec<String>,
    /// HMAC-SHA512 signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) hmac: Option<HmacConfig>,
    /// Retry policy (kept, not applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) retries: Option<RetriesConfig>,
    /// Headers added to every delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) custom_headers: Option<Vec<CustomHeader>>,
}

impl WebhookConfig {
    /// The configuration as `GET` shows it: the HMAC key replaced by `null`.
    pub(crate) fn view(&self) -> Value {
        let mut shown = self.clone();
        if let Some(h) = &mut shown.hmac {
            h.key = None;
        }
        serde_json::to_value(shown).unwrap_or(Value::Null)
    }

    fn key(&self) -> Option<&str> {
        self.hmac
            .as_ref()
            .and_then(|h| h.key.as_deref())
            .filter(|k| !k.is_empty())
    }

    fn wants(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == "*" || e == event)
    }
}

/// One entry of `session.status`'s `statuses`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StatusStamp {
    /// WAHA status name.
    pub(crate) status: String,
    /// Unix ms.
    pub(crate) timestamp: u64,
}

/// What the WAHA dialect keeps per session.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct WahaData {
    /// `config.webhooks`.
    #[serde(default)]
    pub(crate) webhooks: Vec<WebhookConfig>,
    /// The most recent statuses (3 at most), oldest first.
    #[serde(default)]
    pub(crate) statuses: Vec<StatusStamp>,
}

fn key(session: &str) -> Vec<u8> {
    key2(session, "waha")
}

/// The stored state of `session`, if any.
///
/// # Errors
/// [`DbError`].
pub(crate) fn load(db: &ServerDb, session: &str) -> Result<Option<WahaData>, DbError> {
    ServerDb::get(&db.dialects, key(session), "waha session")
}

/// Replaces the webhooks of `session` (durably).
///
/// # Errors
/// [`DbError`].
pub(crate) async fn save_webhooks(
    db: &ServerDb,
    session: &str,
    webhooks: Vec<WebhookConfig>,
) -> Result<(), DbError> {
    let mut data = load(db, session)?.unwrap_or_default();
    data.webhooks = webhooks;
    ServerDb::put(&db.dialects, key(session), &data)?;
    db.flush().await
}

/// Removes the state of `session` (a create that failed after storing its webhooks).
///
/// # Errors
/// [`DbError`].
pub(crate) fn remove(db: &ServerDb, session: &str) -> Result<(), DbError> {
    db.dialects.remove(key(session))?;
    Ok(())
}

/// Parses and checks `config.webhooks`: `url` http(s), `events` WAHA names or `*`,
/// `retries.policy` one of WAHA's three, header names and values valid. A hook given with
/// `hmac` but no key keeps the key stored for the same URL (so a client can send back what
/// `GET` showed).
///
/// # Errors
/// 400 naming the first problem.
pub(crate) fn parse_webhooks(
    raw: &[Value],
    previous: &[WebhookConfig],
) -> Result<Vec<WebhookConfig>, WahaError> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, v) in raw.iter().enumerate() {
        let mut hook: WebhookConfig = serde_json::from_value(v.clone())
            .map_err(|e| WahaError::bad_request(format!("config.webhooks[{i}]: {e}")))?;
        let url = reqwest::Url::parse(&hook.url).ok();
        if !url.is_some_and(|u| matches!(u.scheme(), "http" | "https")) {
            return Err(WahaError::bad_request(format!(
                "config.webhooks[{i}].url must be an http(s) URL"
            )));
        }
        if hook.events.is_empty() {
            return Err(WahaError::bad_request(format!(
                "config.webhooks[{i}].events must not be empty"
            )));
        }
        if let Some(bad) = hook
            .events
            .iter()
            .find(|e| *e != "*" && !EVENTS.contains(&e.as_str()))
        {
            return Err(WahaError::bad_request(format!(
                "config.webhooks[{i}].events: unknown event {bad:?}"
            )));
        }
        if let Some(policy) = hook.retries.as_ref().and_then(|r| r.policy.as_deref())
            && !matches!(policy, "linear" | "exponential" | "constant")
        {
            return Err(WahaError::bad_request(format!(
                "config.webhooks[{i}].retries.policy must be linear, exponential or constant"
            )));
        }
        for h in hook.custom_headers.iter().flatten() {
            let valid = axum::http::HeaderName::from_bytes(h.name.as_bytes()).is_ok()
                && axum::http::HeaderValue::from_str(&h.value).is_ok();
            if !valid {
                return Err(WahaError::bad_request(format!(
                    "config.webhooks[{i}].customHeaders: invalid header {:?}",
                    h.name
                )));
            }
        }
        if let Some(h) = &mut hook.hmac
            && h.key.as_deref().is_none_or(str::is_empty)
        {
            h.key = previous
                .iter()
                .find(|p| p.url == hook.url)
                .and_then(|p| p.key().map(str::to_owned));
        }
        out.push(hook);
    }
    Ok(out)
}

/// Hex HMAC-SHA512 of `body` with `key` (WAHA's `X-Webhook-Hmac`).
pub(crate) fn sign(key: &str, body: &[u8]) -> String {
    let Ok(mut mac) = <Hmac<Sha512> as KeyInit>::new_from_slice(key.as_bytes()) else {
        // HMAC takes keys of any length; this branch is never taken.
        return String::new();
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// `evt_<lower-case ULID>`: the native event's time (ms) and 80 bits of a digest of the
/// native event id and the WAHA event name, so the id is stable across retries and unique
/// per WAHA event.
fn event_id(native_id: &str, event: &str, ms: u64) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let digest = Sha256::digest(format!("{native_id}\0{event}").as_bytes());
    let mut out = String::with_capacity(30);
    out.push_str("evt_");
    for i in (0..10).rev() {
        out.push(ALPHABET[((ms >> (i * 5)) & 31) as usize] as char);
    }
    let mut bits: u128 = 0;
    for b in &digest[..10] {
        bits = (bits << 8) | u128::from(*b);
    }
    for i in (0..16).rev() {
        out.push(ALPHABET[((bits >> (i * 5)) & 31) as usize] as char);
    }
    out
}

/// WAHA's ack number and name for a native message status.
pub(crate) fn ack_of(status: &str) -> (i8, &'static str) {
    match status {
        "sent" => (1, "SERVER"),
        "delivered" => (2, "DEVICE"),
        "read" => (3, "READ"),
        "played" => (4, "PLAYED"),
        "failed" => (-1, "ERROR"),
        _ => (0, "PENDING"),
    }
}

/// WAHA's status name of a native `connection` status (`last_error` tells a stop on
/// request, `STOPPED`, from a failure).
fn status_name(native: &str, last_error: Option<&str>) -> &'static str {
    match native {
        "stopped" if last_error == Some(crate::session::STOP_REQUESTED) => "STOPPED",
        "qr" | "pairing_code" => "SCAN_QR_CODE",
        "connected" => "WORKING",
        "logged_out" => "STOPPED",
        "stopped" => "FAILED",
        _ => "STARTING",
    }
}

/// The WAHA events of a native event: `(event, payload)`.
fn translate(
    state: &AppState,
    session: &Session,
    envelope: &Envelope,
) -> Vec<(&'static str, Value)> {
    let d = &envelope.data;
    let text = |k: &str| d.get(k).and_then(Value::as_str);
    match envelope.kind {
        "message" => {
            let Some(payload) = Facts::of_event(d).map(|f| f.render(&me_id(session))) else {
                return Vec::new();
            };
            let from_me = d.get("from_me").and_then(Value::as_bool).unwrap_or(false);
            let mut out = Vec::new();
            if !from_me {
                out.push(("message", payload.clone()));
            }
            out.push(("message.any", payload));
            out
        }
        "message_status" => {
            let (Some(id), Some(to)) = (text("id"), text("to")) else {
                return Vec::new();
            };
            let status = text("status").unwrap_or_default();
            let (ack, ack_name) = ack_of(status);
            let to = chat_id(to);
            // As WAHA's example: `from` is the chat, `to` the own account.
            let mut out = vec![(
                "message.ack",
                json!({
                    "id": format!("true_{to}_{id}"),
                    "from": to,
                    "to": me_id(session),
                    "participant": null,
                    "fromMe": true,
                    "ack": ack,
                    "ackName": ack_name,
                }),
            )];
            if status == "sent"
                && let Ok(Some(record)) = ServerDb::get::<MessageRecord>(
                    &state.db().messages,
                    key2(&session.id, id),
                    "message",
                )
            {
                let facts = Facts::of_record(state, &session.id, &record);
                out.push(("message.any", facts.render(&me_id(session))));
            }
            out
        }
        "connection" => {
            let status = status_name(text("status").unwrap_or_default(), text("last_error"));
            let statuses = remember_status(state, &session.id, status, envelope.timestamp);
            vec![(
                "session.status",
                json!({ "name": session.id, "status": status, "statuses": statuses, "data": null }),
            )]
        }
        "message_reaction" | "message_edited" | "message_revoked" => {
            rich_events(state, session, envelope.kind, d)
        }
        "poll_vote" => poll_vote(state, session, d, envelope.timestamp / 1000)
            .map(|p| vec![("poll.vote", p)])
            .unwrap_or_default(),
        "group_participants" => group_participants(session, d),
        "group_update" => group_update(d),
        "presence" => {
            let from = chat_id(text("from").unwrap_or_default());
            let online = text("presence") == Some("available");
            vec![(
                "presence.update",
                json!({ "id": from, "presences": [{
                    "participant": from,
                    "lastSeen": d.get("last_seen").cloned().unwrap_or(Value::Null),
                    "lastKnownPresence": if online { "online" } else { "offline" },
                }]}),
            )]
        }
        "chat_state" => {
            let presence = match text("state") {
                Some("composing") => "typing",
                Some("recording") => "recording",
                _ => "paused",
            };
            vec![(
                "presence.update",
                json!({ "id": chat_id(text("chat").unwrap_or_default()), "presences": [{
                    "participant": chat_id(text("sender").unwrap_or_default()),
                    "lastSeen": null,
                    "lastKnownPresence": presence,
                }]}),
            )]
        }
        "call" => {
            let event = match text("kind") {
                Some("offer") => "call.received",
                Some("accept") => "call.accepted",
                Some("reject") => "call.rejected",
                _ => return Vec::new(),
            };
            vec![(
                event,
                json!({
                    "id": text("call_id").unwrap_or_default(),
                    "from": chat_id(text("from").unwrap_or_default()),
                    "timestamp": d.get("timestamp").and_then(Value::as_u64).unwrap_or_default(),
                    "isVideo": d.get("video").and_then(Value::as_bool).unwrap_or(false),
                    "isGroup": d.get("group").and_then(Value::as_bool).unwrap_or(false),
                    "_data": {},
                }),
            )]
        }
        _ => Vec::new(),
    }
}

/// The log's row of message `id` of `session`, if kept.
fn logged(state: &AppState, session: &str, id: &str) -> Option<MessageRecord> {
    ServerDb::get::<MessageRecord>(&state.db().messages, key2(session, id), "message")
        .ok()
        .flatten()
}

/// WAHA's id of a message a reaction, edit or revoke refers to: from the log when it has
/// the message, else as one sent by the other side of `base` (the usual case: reacting
/// to the message just received, or to ours from the peer).
fn target_id(state: &AppState, session: &Session, base: &Facts, id: &str) -> String {
    match logged(state, &session.id, id) {
        Some(r) => Facts::of_record(state, &session.id, &r).waha_id(),
        None => Facts {
            id: id.to_owned(),
            from_me: !base.from_me,
            participant: String::new(),
            ..base.clone()
        }
        .waha_id(),
    }
}

/// `message.reaction` (`WAMessageReaction`), `message.edited` (`WAMessageEditedBody`) and
/// `message.revoked` (`WAMessageRevokedBody`) of the native rich-message events.
fn rich_events(
    state: &AppState,
    session: &Session,
    kind: &str,
    d: &Value,
) -> Vec<(&'static str, Value)> {
    let Some(facts) = Facts::of_event(d) else {
        return Vec::new();
    };
    let me = me_id(session);
    let target = d
        .get("message_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match kind {
        "message_reaction" => {
            let mut payload = facts.render(&me);
            if let Value::Object(m) = &mut payload {
                for k in [
                    "body", "hasMedia", "mediaUrl", "ack", "ackName", "vCards", "_data",
                ] {
                    m.remove(k);
                }
                m.insert(
                    "reaction".to_owned(),
                    json!({
                        "text": d.get("emoji").and_then(Value::as_str).unwrap_or_default(),
                        "messageId": target_id(state, session, &facts, target),
                    }),
                );
            }
            vec![("message.reaction", payload)]
        }
        "message_edited" => {
            let mut payload = facts.render(&me);
            if let Value::Object(m) = &mut payload {
                m.insert("editedMessageId".to_owned(), json!(target));
            }
            vec![("message.edited", payload)]
        }
        _ => {
            let mut payload = json!({
                "revokedMessageId": target,
                "after": facts.render(&me),
                "_data": {},
            });
            if let (Some(r), Value::Object(m)) = (logged(state, &session.id, target), &mut payload)
            {
                m.insert(
                    "before".to_owned(),
                    Facts::of_record(state, &session.id, &r).render(&me),
                );
            }
            vec![("message.revoked", payload)]
        }
    }
}

/// `poll.vote` (`PollVotePayload{vote, poll, _data}`) of a native `poll_vote` event;
/// `timestamp` is unix seconds (the native vote carries none: the event's time).
fn poll_vote(state: &AppState, session: &Session, d: &Value, timestamp: u64) -> Option<Value> {
    let text = |k: &str| d.get(k).and_then(Value::as_str);
    let chat = chat_id(text("chat")?);
    let voter = chat_id(text("voter")?);
    let me = me_id(session);
    let is_group = chat.ends_with("@g.us");
    let vote_from_me = !me.is_empty() && voter == me;
    let poll_id = text("poll_id")?;
    // A poll sent through `sendPoll` has no log row; a received one has.
    let poll_from_me = logged(state, &session.id, poll_id).is_none_or(|r| r.direction == "out");
    let key = |from_me: bool, id: &str, participant: &str| {
        let mut out = format!("{from_me}_{chat}_{id}");
        if is_group && !from_me && !participant.is_empty() {
            out.push('_');
            out.push_str(participant);
        }
        out
    };
    let ends = |from_me: bool| {
        if from_me {
            (me.clone(), chat.clone())
        } else {
            (chat.clone(), me.clone())
        }
    };
    let (vote_from, vote_to) = ends(vote_from_me);
    let (poll_from, poll_to) = ends(poll_from_me);
    let participant = if is_group {
        voter.clone()
    } else {
        String::new()
    };
    Some(json!({
        "vote": {
            "id": key(vote_from_me, text("vote_id").unwrap_or_default(), &voter),
            "selectedOptions": d.get("selected").cloned().unwrap_or_else(|| json!([])),
            "timestamp": timestamp,
            "to": vote_to,
            "from": vote_from,
            "fromMe": vote_from_me,
            "participant": participant,
        },
        "poll": {
            "id": key(poll_from_me, poll_id, ""),
            "to": poll_to,
            "from": poll_from,
            "fromMe": poll_from_me,
            "participant": "",
        },
        "_data": {},
    }))
}

/// `group.v2.participants` of a native `group_participants` event, and for the own
/// account `group.v2.join` / `group.v2.leave` (and the deprecated `group.join` /
/// `group.leave`, with the same payload). The group is given by its id only: the event
/// carries no metadata.
fn group_participants(session: &Session, d: &Value) -> Vec<(&'static str, Value)> {
    let group = d.get("group").and_then(Value::as_str).unwrap_or_default();
    let timestamp = d
        .get("timestamp")
        .and_then(Value::as_u64)
        .unwrap_or_default();
    let (kind, role) = match d.get("action").and_then(Value::as_str) {
        Some("add") => ("join", "participant"),
        Some("remove") => ("leave", "left"),
        Some("promote") => ("promote", "admin"),
        Some("demote") => ("demote", "participant"),
        _ => return Vec::new(),
    };
    let ids: Vec<String> = d
        .get("participants")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(chat_id).collect())
        .unwrap_or_default();
    let me = me_id(session);
    let mut out = vec![(
        "group.v2.participants",
        json!({
            "type": kind,
            "timestamp": timestamp,
            "group": { "id": group },
            "participants": ids.iter().map(|id| json!({ "id": id, "role": role })).collect::<Vec<_>>(),
            "_data": {},
        }),
    )];
    if !me.is_empty() && ids.contains(&me) {
        let own = json!({ "group": { "id": group }, "timestamp": timestamp, "_data": {} });
        match kind {
            "join" => {
                out.push(("group.v2.join", own.clone()));
                out.push(("group.join", own));
            }
            "leave" => {
                out.push(("group.v2.leave", own.clone()));
                out.push(("group.leave", own));
            }
            _ => {}
        }
    }
    out
}

/// `group.v2.update` of a native `group_update` event: the group's id and the fields that
/// changed (`subject`, `description` (`""` when removed), `membersCanSendMessages`,
/// `invite`); a group created with us in it (`create`) is `group.v2.join` (and the
/// deprecated `group.join`) with the same payload.
fn group_update(d: &Value) -> Vec<(&'static str, Value)> {
    let group = d.get("group").and_then(Value::as_str).unwrap_or_default();
    let timestamp = d
        .get("timestamp")
        .and_then(Value::as_u64)
        .unwrap_or_default();
    let changes: Vec<&str> = d
        .get("changes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut info = Map::new();
    info.insert("id".to_owned(), json!(group));
    if let Some(subject) = d.get("subject").filter(|v| !v.is_null()) {
        info.insert("subject".to_owned(), subject.clone());
    }
    if let Some(desc) = d.get("description").filter(|v| !v.is_null()) {
        info.insert("description".to_owned(), desc.clone());
    } else if d.get("description_removed") == Some(&json!(true)) {
        info.insert("description".to_owned(), json!(""));
    }
    if let Some(announce) = d.get("announce").and_then(Value::as_bool) {
        info.insert("membersCanSendMessages".to_owned(), json!(!announce));
    }
    if let Some(code) = d.get("invite_code").and_then(Value::as_str) {
        info.insert(
            "invite".to_owned(),
            json!(format!("{}{code}", wa_engine::INVITE_LINK_PREFIX)),
        );
    }
    let payload = json!({ "group": Value::Object(info), "timestamp": timestamp, "_data": {} });
    if changes.contains(&"create") {
        return vec![("group.v2.join", payload.clone()), ("group.join", payload)];
    }
    vec![("group.v2.update", payload)]
}

/// Appends `status` to the session's recent statuses (3 kept) and returns them. A failure
/// to store them is logged; the answer then holds only this status.
fn remember_status(state: &AppState, session: &str, status: &str, ms: u64) -> Vec<StatusStamp> {
    let stamp = StatusStamp {
        status: status.to_owned(),
        timestamp: ms,
    };
    let db = state.db();
    let mut data = match load(db, session) {
        Ok(d) => d.unwrap_or_default(),
        Err(e) => {
            tracing::error!(session, error = %e, "cannot read the WAHA statuses");
            return vec![stamp];
        }
    };
    data.statuses.push(stamp);
    let excess = data.statuses.len().saturating_sub(3);
    data.statuses.drain(..excess);
    if let Err(e) = ServerDb::put(&db.dialects, key(session), &data) {
        tracing::error!(session, error = %e, "cannot store the WAHA statuses");
    }
    data.statuses
}

/// `environment` of the envelope.
fn environment() -> Value {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => other,
    };
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "engine": ENGINE,
        "tier": "CORE",
        "browser": null,
        "platform": format!("{}/{arch}", std::env::consts::OS),
        "worker": { "id": null },
    })
}

/// The deliveries of `envelope` to the session's WAHA webhooks (none without webhooks, or
/// when no hook wants the event). Session statuses are recorded even without webhooks.
pub(crate) fn render(state: &AppState, session: &Session, envelope: &Envelope) -> Vec<Prepared> {
    let hooks = match load(state.db(), &session.id) {
        Ok(Some(d)) => d.webhooks,
        Ok(None) => Vec::new(),
        Err(e) => {
            tracing::error!(session = %session.id, error = %e, "cannot read the WAHA webhooks");
            return Vec::new();
        }
    };
    if hooks.is_empty() && envelope.kind != "connection" {
        return Vec::new();
    }
    let events = translate(state, session, envelope);
    if hooks.is_empty() {
        return Vec::new();
    }
    let metadata: Map<String, Value> = session.record().metadata;
    let me = MeInfo::of(session);
    let mut out = Vec::new();
    for (event, payload) in events {
        let id = event_id(&envelope.id, event, envelope.timestamp);
        let mut body = json!({
            "id": id,
            "timestamp": envelope.timestamp,
            "event": event,
            "session": session.id,
            "engine": ENGINE,
            "me": me,
            "payload": payload,
            "environment": environment(),
        });
        if !metadata.is_empty()
            && let Value::Object(m) = &mut body
        {
            m.insert("metadata".to_owned(), Value::Object(metadata.clone()));
        }
        let body = body.to_string();
        for hook in hooks.iter().filter(|h| h.wants(event)) {
            let mut headers: Vec<(String, String)> = hook
                .custom_headers
                .iter()
                .flatten()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect();
            headers.push(("X-Webhook-Request-Id".to_owned(), id.clone()));
            headers.push(("X-Webhook-Timestamp".to_owned(), now_ms().to_string()));
            if let Some(key) = hook.key() {
                headers.push(("X-Webhook-Hmac".to_owned(), sign(key, body.as_bytes())));
                headers.push(("X-Webhook-Hmac-Algorithm".to_owned(), "sha512".to_owned()));
            }
            out.push(Prepared {
                session: session.id.clone(),
                hook_id: format!("waha:{event}"),
                event_id: envelope.id.clone(),
                body: body.clone(),
                target: DeliveryTarget {
                    url: hook.url.clone(),
                    headers,
                    event: event.to_owned(),
                },
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_the_docs_vector() {
        assert_eq!(
            sign(
                "my-secret-key",
                br#"{"event":"message","session":"default","engine":"WEBJS"}"#
            ),
            "208f8a55dde9e05519e898b10b89bf0d0b3b0fdf11fdbf09b6b90476301b98d8097c462b2b17a6ce93b6b47a136cf2e78a33a63f6752c2c1631777076153fa89"
        );
    }

    #[test]
    fn event_ids_are_lower_case_ulids_stable_per_event() {
        let a = event_id("evt_x", "message", 1_741_249_702_485);
        assert_eq!(a.len(), 30);
        // The ULID time part of 1741249702485 ms (WAHA's example id, `evt_01jnp…`, was
        // minted a little later than its `timestamp`).
        assert!(a.starts_with("evt_01jnn93tjn"), "{a}");
        assert_eq!(a, event_id("evt_x", "message", 1_741_249_702_485));
        assert_ne!(a, event_id("evt_x", "message.any", 1_741_249_702_485));
    }

    #[test]
    fn webhooks_are_checked_and_keep_their_key() {
        let raw = [
            json!({"url": "https://h.example/x", "events": ["message", "*"],
            "hmac": {"key": "k1"}, "retries": {"policy": "linear", "delaySeconds": 2, "attempts": 3},
            "customHeaders": [{"name": "X-A", "value": "1"}]}),
        ];
        let hooks = parse_webhooks(&raw, &[]).expect("valid");
        assert_eq!(hooks[0].key(), Some("k1"));
        assert!(hooks[0].view()["hmac"]["key"].is_null());
        let again = parse_webhooks(&[hooks[0].view()], &hooks).expect("round trip");
        assert_eq!(again[0].key(), Some("k1"));
        for bad in [
            json!({"url": "ftp://h/x", "events": ["message"]}),
            json!({"url": "https://h/x", "events": []}),
            json!({"url": "https://h/x", "events": ["nope"]}),
            json!({"url": "https://h/x", "events": ["message"], "retries": {"policy": "sometimes"}}),
        ] {
            assert!(parse_webhooks(&[bad], &[]).is_err());
        }
    }
}
