//! WAHA chats, messages and contacts (shared/compat/waha.md §5) read from the native
//! message log (`crate::msglog`: every message sent through the session, sent from its
//! phone, or received), as the Evolution dialect's `findChats`/`findMessages` are. There is
//! no address-book or chat-list sync: a chat or contact exists here once a message went
//! to or came from it. Messages are WAHA's `WAMessage` ([`super::message::Facts`]), the
//! same as the `message` webhook payloads.
//!
//! - `GET /api/{session}/chats` (`sortBy=conversationTimestamp|id|name`, `sortOrder`,
//!   `limit`, `offset`): `[{id, name, conversationTimestamp, lastMessage}]`, newest first
//!   by default (`name` is `null`: the log keeps no chat names).
//! - `GET|POST /api/{session}/chats/overview`: `[ChatSummary{id, name, picture,
//!   lastMessage, _chat}]`.
//! - `GET /api/{session}/chats/{chatId}/messages` and the legacy `GET /api/messages
//!   ?session=&chatId=` (`limit` (default 10), `offset`, `filter.timestamp.lte|gte` (unix
//!   s), `filter.fromMe`, `filter.ack`, `sortOrder` (default `desc`, newest first));
//!   `downloadMedia` and `merge` are accepted and ignored (`mediaUrl` is always the native
//!   download path).
//! - `GET /api/{session}/chats/{chatId}/messages/{messageId}`: one `WAMessage` (404
//!   `message_not_found` when the log does not have it).
//! - `GET /api/contacts/all?session=`, `GET /api/contacts?contactId=&session=`, `GET
//!   /api/{session}/contacts/{id}`: WAHA's contact `{id, number, name, pushname,
//!   shortName, isMe, isUser, isGroup, isWAContact, isMyContact, isBlocked}` (names
//!   `null`, `isMyContact`/`isBlocked` `false`: not known to the log).
//!
//! The log is read newest first, 10 000 rows at most per request (as Evolution's
//! `findChats`).

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::message::{Facts, me_id};
use super::{Key, WahaError, chat_id, page, parse, parse_chat_id, query_pairs};
use crate::db::MessageRecord;
use crate::error::ApiError;
use crate::session::Session;
use crate::state::AppState;

/// Most rows of the log one request reads.
const MAX_ROWS: usize = 10_000;

/// The log of `session`, newest first.
fn records(state: &AppState, session: &str) -> Result<Vec<MessageRecord>, WahaError> {
    let filter = crate::msglog::Filter::default();
    Ok(
        crate::msglog::list(state.db(), session, &filter, None, MAX_ROWS)
            .map_err(ApiError::from)?
            .0,
    )
}

/// One chat of the log: its id and its newest message.
struct Chat {
    id: String,
    last: Facts,
}

/// The chats of the log, newest message first.
fn chats_of(state: &AppState, session: &str) -> Result<Vec<Chat>, WahaError> {
    let mut seen = BTreeMap::new();
    let mut out = Vec::new();
    for r in records(state, session)? {
        let facts = Facts::of_record(state, session, &r);
        if seen.insert(facts.chat.clone(), ()).is_none() {
            out.push(Chat {
                id: facts.chat.clone(),
                last: facts,
            });
        }
    }
    Ok(out)
}

/// A chat id of a path or query as WAHA writes it (`<digits>@c.us`, `<id>@g.us`, ...).
fn normalise_chat(state: &AppState, raw: &str) -> Result<String, WahaError> {
    let jid = parse_chat_id(state, raw)?;
    Ok(chat_id(&jid.to_string()))
}

/// `GET /api/{session}/chats`.
pub(crate) async fn list(
    State(state): State<AppState>,
    key: Key,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<Value>>, WahaError> {
    let session = key.session(&state, &name)?;
    let q = query_pairs(raw.as_deref());
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let mut chats = chats_of(&state, &session.id)?;
    let desc = match get("sortOrder") {
        None | Some("") | Some("desc") => true,
        Some("asc") => false,
        Some(other) => {
            return Err(WahaError::bad_request(format!(
                "sortOrder must be desc or asc, not {other:?}"
            )));
        }
    };
    match get("sortBy") {
        // Newest first already; stable.
        None | Some("") | Some("conversationTimestamp") | Some("name") => {
            if !desc {
                chats.reverse();
            }
        }
        Some("id") => {
            chats.sort_by(|a, b| a.id.cmp(&b.id));
            if desc {
                chats.reverse();
            }
        }
        Some(other) => {
            return Err(WahaError::bad_request(format!(
                "sortBy must be conversationTimestamp, id or name, not {other:?}"
            )));
        }
    }
    let (offset, limit) = page(get("offset"), get("limit"))?;
    let me = me_id(&session);
    Ok(Json(
        chats
            .iter()
            .skip(offset)
            .take(limit)
            .map(|c| {
                json!({
                    "id": c.id,
                    "name": null,
                    "conversationTimestamp": c.last.timestamp,
                    "lastMessage": c.last.render(&me),
                })
            })
            .collect(),
    ))
}

/// `ChatSummary` of a chat.
fn summary(c: &Chat, me: &str) -> Value {
    json!({
        "id": c.id,
        "name": null,
        "picture": null,
        "lastMessage": c.last.render(me),
        "_chat": { "id": c.id, "conversationTimestamp": c.last.timestamp },
    })
}

fn overview(
    state: &AppState,
    session: &Session,
    ids: &[String],
    offset: usize,
    limit: usize,
) -> Result<Vec<Value>, WahaError> {
    let ids = ids
        .iter()
        .map(|i| normalise_chat(state, i))
        .collect::<Result<Vec<_>, _>>()?;
    let me = me_id(session);
    Ok(chats_of(state, &session.id)?
        .iter()
        .filter(|c| ids.is_empty() || ids.contains(&c.id))
        .skip(offset)
        .take(limit)
        .map(|c| summary(c, &me))
        .collect())
}

/// `GET /api/{session}/chats/overview?limit=20&offset&ids=`: `[ChatSummary]`, newest
/// first.
pub(crate) async fn overview_get(
    State(state): State<AppState>,
    key: Key,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<Value>>, WahaError> {
    let session = key.session(&state, &name)?;
    let q = query_pairs(raw.as_deref());
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let ids: Vec<String> = q
        .iter()
        .filter(|(n, v)| n.trim_end_matches("[]") == "ids" && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect();
    let (offset, limit) = page(get("offset"), Some(get("limit").unwrap_or("20")))?;
    Ok(Json(overview(&state, &session, &ids, offset, limit)?))
}

/// `OverviewBodyRequest{pagination{limit, offset}, filter?{ids}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct OverviewBody {
    #[serde(default)]
    pagination: Option<Pagination>,
    #[serde(default)]
    filter: Option<OverviewFilter>,
}

/// `pagination` of [`OverviewBody`].
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Pagination {
    #[serde(default)]
    limit: Option<f64>,
    #[serde(default)]
    offset: Option<f64>,
}

/// `filter` of [`OverviewBody`].
#[derive(Debug, Default, Deserialize)]
pub(crate) struct OverviewFilter {
    #[serde(default)]
    ids: Option<Vec<String>>,
}

/// `POST /api/{session}/chats/overview`: 201 `[ChatSummary]`.
pub(crate) async fn overview_post(
    State(state): State<AppState>,
    key: Key,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<(axum::http::StatusCode, Json<Vec<Value>>), WahaError> {
    let session = key.session(&state, &name)?;
    let body: OverviewBody = parse(&body)?;
    let p = body.pagination.unwrap_or_default();
    let (offset, limit) = page(
        p.offset.map(|o| o.to_string()).as_deref(),
        Some(
            p.limit
                .map_or_else(|| "20".to_owned(), |l| l.to_string())
                .as_str(),
        ),
    )?;
    let ids = body.filter.and_then(|f| f.ids).unwrap_or_default();
    Ok((
        axum::http::StatusCode::CREATED,
        Json(overview(&state, &session, &ids, offset, limit)?),
    ))
}

/// The messages of `chat` as the listing query asks.
fn messages(
    state: &AppState,
    session: &Session,
    chat: &str,
    q: &[(String, String)],
) -> Result<Vec<Value>, WahaError> {
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let chat = normalise_chat(state, chat)?;
    let num = |k: &str| -> Result<Option<u64>, WahaError> {
        get(k)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n >= 0.0)
                    .map(|n| n as u64)
                    .ok_or_else(|| WahaError::bad_request(format!("{k} must be a number")))
            })
            .transpose()
    };
    let lte = num("filter.timestamp.lte")?;
    let gte = num("filter.timestamp.gte")?;
    let from_me = match get("filter.fromMe") {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(WahaError::bad_request(
                "filter.fromMe must be true or false",
            ));
        }
    };
    let ack = match get("filter.ack") {
        None | Some("") => None,
        Some(a @ ("ERROR" | "PENDING" | "SERVER" | "DEVICE" | "READ" | "PLAYED")) => Some(a),
        Some(_) => {
            return Err(WahaError::bad_request(
                "filter.ack must be ERROR, PENDING, SERVER, DEVICE, READ or PLAYED",
            ));
        }
    };
    match get("sortBy") {
        None | Some("" | "timestamp" | "messageTimestamp") => {}
        Some(_) => {
            return Err(WahaError::bad_request(
                "sortBy must be timestamp or messageTimestamp",
            ));
        }
    }
    let asc = match get("sortOrder") {
        None | Some("" | "desc") => false,
        Some("asc") => true,
        Some(_) => return Err(WahaError::bad_request("sortOrder must be desc or asc")),
    };
    let (offset, limit) = page(get("offset"), Some(get("limit").unwrap_or("10")))?;
    let mut found: Vec<Facts> = records(state, &session.id)?
        .iter()
        .map(|r| Facts::of_record(state, &session.id, r))
        .filter(|f| f.chat == chat)
        .filter(|f| lte.is_none_or(|t| f.timestamp <= t))
        .filter(|f| gte.is_none_or(|t| f.timestamp >= t))
        .filter(|f| from_me.is_none_or(|m| f.from_me == m))
        .filter(|f| ack.is_none_or(|a| f.ack.1 == a))
        .collect();
    if asc {
        found.reverse();
    }
    let me = me_id(session);
    Ok(found
        .iter()
        .skip(offset)
        .take(limit)
        .map(|f| f.render(&me))
        .collect())
}

/// `{session}` and `{chatId}` of a chat route.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatPath {
    session: String,
    #[serde(rename = "chatId")]
    chat_id: String,
}

/// `GET /api/{session}/chats/{chatId}/messages`: `[WAMessage]`.
pub(crate) async fn chat_messages(
    State(state): State<AppState>,
    key: Key,
    Path(path): Path<ChatPath>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<Value>>, WahaError> {
    let session = key.session(&state, &path.session)?;
    let q = query_pairs(raw.as_deref());
    Ok(Json(messages(&state, &session, &path.chat_id, &q)?))
}

/// `GET /api/messages?session=&chatId=` (WAHA's deprecated form of the above).
pub(crate) async fn legacy_messages(
    State(state): State<AppState>,
    key: Key,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<Value>>, WahaError> {
    let q = query_pairs(raw.as_deref());
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let name = get("session").unwrap_or_else(|| "default".to_owned());
    let chat = get("chatId")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| WahaError::bad_request("chatId is required"))?;
    let session = key.session(&state, &name)?;
    Ok(Json(messages(&state, &session, &chat, &q)?))
}

/// `{session}`, `{chatId}` and `{messageId}` of one message.
#[derive(Debug, Deserialize)]
pub(crate) struct MessagePath {
    session: String,
    #[serde(rename = "chatId")]
    chat_id: String,
    #[serde(rename = "messageId")]
    message_id: String,
}

/// `GET /api/{session}/chats/{chatId}/messages/{messageId}`: `WAMessage` (the id as WAHA
/// writes it, `true|false_<chat>_<id>[_<participant>]`, or the bare message id).
pub(crate) async fn chat_message(
    State(state): State<AppState>,
    key: Key,
    Path(path): Path<MessagePath>,
) -> Result<Json<Value>, WahaError> {
    let session = key.session(&state, &path.session)?;
    let chat = normalise_chat(&state, &path.chat_id)?;
    let id = super::send::split_message_id(&path.message_id)
        .map(|(_, _, id, _)| id.to_owned())
        .ok_or_else(|| WahaError::bad_request("messageId is not a message id"))?;
    let record = crate::db::ServerDb::get::<MessageRecord>(
        &state.db().messages,
        crate::db::key2(&session.id, &id),
        "message",
    )
    .map_err(ApiError::from)?
    .map(|r| Facts::of_record(&state, &session.id, &r))
    .filter(|f| f.chat == chat)
    .ok_or(ApiError::MessageNotFound)?;
    Ok(Json(record.render(&me_id(&session))))
}

/// WAHA's contact object of a chat id.
fn contact_json(id: &str, me: &str) -> Value {
    let is_group = id.ends_with("@g.us");
    let number = id
        .strip_suffix("@c.us")
        .map(str::to_owned)
        .map_or(Value::Null, Value::String);
    json!({
        "id": id,
        "number": number,
        "name": null,
        "pushname": null,
        "shortName": null,
        "isMe": id == me,
        "isUser": !is_group,
        "isGroup": is_group,
        "isWAContact": !is_group,
        "isMyContact": false,
        "isBlocked": false,
    })
}

/// The contacts of the log: 1:1 chats and the senders in groups, newest first.
fn contacts_of(state: &AppState, session: &str) -> Result<Vec<String>, WahaError> {
    let mut seen = BTreeMap::new();
    let mut out = Vec::new();
    for r in records(state, session)? {
        let f = Facts::of_record(state, session, &r);
        let id = if f.chat.ends_with("@g.us") {
            f.participant
        } else {
            f.chat
        };
        if !id.is_empty() && seen.insert(id.clone(), ()).is_none() {
            out.push(id);
        }
    }
    Ok(out)
}

/// `GET /api/contacts/all?session=&sortBy=id|name&sortOrder&limit&offset`.
pub(crate) async fn contacts_all(
    State(state): State<AppState>,
    key: Key,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<Value>>, WahaError> {
    let q = query_pairs(raw.as_deref());
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let session = key.session(&state, get("session").unwrap_or("default"))?;
    let mut ids = contacts_of(&state, &session.id)?;
    match get("sortBy") {
        None | Some("") => {}
        // Names are not known: by id for both.
        Some("id" | "name") => ids.sort(),
        Some(_) => return Err(WahaError::bad_request("sortBy must be id or name")),
    }
    match get("sortOrder") {
        None | Some("" | "asc") => {}
        Some("desc") => ids.reverse(),
        Some(_) => return Err(WahaError::bad_request("sortOrder must be desc or asc")),
    }
    let (offset, limit) = page(get("offset"), get("limit"))?;
    let me = me_id(&session);
    Ok(Json(
        ids.iter()
            .skip(offset)
            .take(limit)
            .map(|id| contact_json(id, &me))
            .collect(),
    ))
}

/// One contact of `session`.
fn contact(state: &AppState, session: &Session, raw: &str) -> Result<Value, WahaError> {
    let id = normalise_chat(state, raw)?;
    Ok(contact_json(&id, &me_id(session)))
}

/// `?contactId=&session=`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContactQuery {
    #[serde(default)]
    contact_id: Option<String>,
    #[serde(default)]
    session: Option<String>,
}

/// `GET /api/contacts?contactId=&session=`: the contact (any user or group id; no
/// address book is kept, so names are `null`).
pub(crate) async fn contact_get(
    State(state): State<AppState>,
    key: Key,
    super::WahaQuery(q): super::WahaQuery<ContactQuery>,
) -> Result<Json<Value>, WahaError> {
    let session = key.session(&state, q.session.as_deref().unwrap_or("default"))?;
    let id = q
        .contact_id
        .filter(|c| !c.is_empty())
        .ok_or_else(|| WahaError::bad_request("contactId is required"))?;
    Ok(Json(contact(&state, &session, &id)?))
}

/// `GET /api/{session}/contacts/{id}`: as `GET /api/contacts`.
pub(crate) async fn contact_in_session(
    State(state): State<AppState>,
    key: Key,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<Value>, WahaError> {
    let session = key.session(&state, &name)?;
    Ok(Json(contact(&state, &session, &id)?))
}
