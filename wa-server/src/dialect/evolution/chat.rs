//! `/chat/*` (`api/routes/chat.router.ts`): number checks, the message log as
//! `findMessages`, chats and contacts derived from it, read receipts, chat presence and a
//! minimal profile.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use wa_engine::{Jid, MessageId};

use super::{EvoBody, EvoError, EvoInstance, EvoJson, EvoResult, rows, store};
use crate::db::MessageRecord;
use crate::messaging;
use crate::state::AppState;

/// `whatsappNumbers` body.
#[derive(Debug, Deserialize)]
pub(crate) struct NumbersBody {
    numbers: Vec<String>,
}

/// `POST /chat/whatsappNumbers/{i}`: `[{exists, jid, number}]` in the order asked.
pub(crate) async fn whatsapp_numbers(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoJson(body): EvoJson<NumbersBody>,
) -> EvoResult<Json<Vec<Value>>> {
    if body.numbers.is_empty() {
        return Err(EvoError::bad_request(
            "numbers does not meet minimum length of 1",
        ));
    }
    let client = session.connected_client()?;
    let cc = state.config().default_country_code.as_deref();
    let mut digits = Vec::new();
    for n in &body.numbers {
        let jid = crate::phone::parse_recipient(n.split('@').next().unwrap_or(n), cc)?;
        digits.push(jid.user().to_owned());
    }
    let found = messaging::on_whatsapp(&client, &digits).await?;
    Ok(Json(
        body.numbers
            .iter()
            .zip(digits.iter())
            .zip(found)
            .map(|((asked, d), jid)| {
                json!({
                    "exists": jid.is_some(),
                    "jid": jid.map_or_else(|| format!("{d}@s.whatsapp.net"), |j| j.to_string()),
                    "number": asked,
                })
            })
            .collect(),
    ))
}

/// `findMessages` body: `where.key.{id, remoteJid, fromMe}`, `page`, `offset` (page size).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct FindMessagesBody {
    #[serde(default, rename = "where")]
    filter: Option<Where>,
    page: Option<usize>,
    offset: Option<usize>,
}

/// `where`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Where {
    key: Option<WhereKey>,
    #[serde(rename = "remoteJid")]
    remote_jid: Option<String>,
}

/// `where.key`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WhereKey {
    id: Option<String>,
    remote_jid: Option<String>,
    from_me: Option<bool>,
}

/// Every record of the log of `session` (newest first, at most 10 000).
fn all_records(
    state: &AppState,
    session: &str,
    chat: Option<String>,
) -> EvoResult<Vec<MessageRecord>> {
    let filter = crate::msglog::Filter {
        chat,
        ..Default::default()
    };
    Ok(crate::msglog::list(state.db(), session, &filter, None, 10_000)?.0)
}

/// `POST /chat/findMessages/{i}`: `{messages: {total, pages, currentPage, records}}`.
pub(crate) async fn find_messages(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoBody(body): EvoBody<FindMessagesBody>,
) -> EvoResult<Json<Value>> {
    let filter = body.filter.unwrap_or_default();
    let key = filter.key.unwrap_or_default();
    let chat = key.remote_jid.or(filter.remote_jid);
    let records: Vec<MessageRecord> = all_records(&state, &session.id, chat)?
        .into_iter()
        .filter(|r| key.id.as_ref().is_none_or(|id| *id == r.id))
        .filter(|r| key.from_me.is_none_or(|f| f == (r.direction == "out")))
        .collect();
    let size = body.offset.filter(|n| *n > 0).unwrap_or(50);
    let page = body.page.filter(|n| *n > 0).unwrap_or(1);
    let total = records.len();
    let data = store::load_or_init(state.db(), &session.id).await?;
    let rows_out: Vec<Value> = records
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|r| {
            let mut row = rows::record_row(r, &data.instance_id, None);
            if let Value::Object(m) = &mut row {
                m.insert("id".to_owned(), json!(r.id));
            }
            row
        })
        .collect();
    Ok(Json(json!({ "messages": {
        "total": total,
        "pages": total.div_ceil(size),
        "currentPage": page,
        "records": rows_out,
    }})))
}

/// `findChats` / `findContacts` body.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct FindBody {
    #[serde(default, rename = "where")]
    filter: Option<Where>,
}

/// `POST /chat/findChats/{i}`: the chats of the message log, newest first.
pub(crate) async fn find_chats(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoBody(body): EvoBody<FindBody>,
) -> EvoResult<Json<Vec<Value>>> {
    let want = body.filter.and_then(|w| w.remote_jid);
    let data = store::load_or_init(state.db(), &session.id).await?;
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    let mut out = Vec::new();
    for r in all_records(&state, &session.id, want)? {
        if seen.insert(r.to.clone(), ()).is_some() {
            continue;
        }
        out.push(json!({
            "id": r.to,
            "remoteJid": r.to,
            "pushName": null,
            "profilePicUrl": null,
            "updatedAt": super::instance::iso_time(r.updated_at),
            "unreadCount": 0,
            "lastMessage": rows::record_row(&r, &data.instance_id, None),
            "instanceId": data.instance_id,
        }));
    }
    Ok(Json(out))
}

/// `POST /chat/findContacts/{i}`: the senders and recipients of the message log (no
/// address book sync: contacts come from messages).
pub(crate) async fn find_contacts(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoBody(body): EvoBody<FindBody>,
) -> EvoResult<Json<Vec<Value>>> {
    let want = body.filter.and_then(|w| w.remote_jid);
    let data = store::load_or_init(state.db(), &session.id).await?;
    let mut seen = BTreeMap::new();
    for r in all_records(&state, &session.id, None)? {
        let jid = if r.to.ends_with("@g.us") {
            match &r.sender {
                Some(s) => s.clone(),
                None => continue,
            }
        } else {
            r.to.clone()
        };
        if want.as_ref().is_some_and(|w| *w != jid) {
            continue;
        }
        seen.entry(jid.clone()).or_insert_with(|| {
            json!({
                "id": jid,
                "remoteJid": jid,
                "pushName": null,
                "profilePicUrl": null,
                "createdAt": super::instance::iso_time(r.created_at),
                "updatedAt": super::instance::iso_time(r.updated_at),
                "instanceId": data.instance_id,
            })
        });
    }
    Ok(Json(seen.into_values().collect()))
}

/// One message to mark read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReadKey {
    id: String,
    remote_jid: String,
    #[serde(default)]
    from_me: bool,
    participant: Option<String>,
}

/// `markMessageAsRead` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReadBody {
    read_messages: Vec<ReadKey>,
}

/// `POST /chat/markMessageAsRead/{i}`: read receipts, per chat and sender. 201.
pub(crate) async fn mark_message_as_read(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoJson(body): EvoJson<ReadBody>,
) -> EvoResult<(StatusCode, Json<Value>)> {
    let client = session.connected_client()?;
    let mut groups: BTreeMap<(String, Option<String>), Vec<MessageId>> = BTreeMap::new();
    for k in body.read_messages.into_iter().filter(|k| !k.from_me) {
        groups
            .entry((k.remote_jid, k.participant.filter(|p| !p.is_empty())))
            .or_default()
            .push(MessageId(k.id));
    }
    for ((chat, sender), ids) in groups {
        let chat = super::chat_jid(&state, &chat)?;
        let sender = sender.map(|s| super::chat_jid(&state, &s)).transpose()?;
        client
            .mark_read(&chat, sender.as_ref(), &ids)
            .await
            .map_err(crate::error::ApiError::from)?;
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({ "message": "Read messages", "read": "success" })),
    ))
}

/// `sendPresence` body.
#[derive(Debug, Deserialize)]
pub(crate) struct PresenceBody {
    number: String,
    presence: String,
    #[serde(default)]
    delay: u64,
}

/// `POST /chat/sendPresence/{i}`: `composing`, `recording`, `paused` for a chat (for
/// `delay` ms, then `paused`), or `available`/`unavailable` for the account. 201.
pub(crate) async fn send_presence(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoJson(body): EvoJson<PresenceBody>,
) -> EvoResult<(StatusCode, Json<Value>)> {
    use wa_engine::presence::ChatState;
    let client = session.connected_client()?;
    let chat: Jid = super::chat_jid(&state, &body.number)?;
    let chat_state = match body.presence.as_str() {
        "composing" => Some(ChatState::Composing),
        "recording" => Some(ChatState::Recording),
        "paused" => Some(ChatState::Paused),
        "available" | "unavailable" => None,
        _ => {
            return Err(EvoError::bad_request(
                "presence is not one of enum values: unavailable,available,composing,recording,paused",
            ));
        }
    };
    match chat_state {
        Some(s) => {
            client
                .send_chat_state(&chat, s)
                .await
                .map_err(crate::error::ApiError::from)?;
            if body.delay > 0 && s != ChatState::Paused {
                tokio::time::sleep(std::time::Duration::from_millis(body.delay.min(20_000))).await;
                client
                    .send_chat_state(&chat, ChatState::Paused)
                    .await
                    .map_err(crate::error::ApiError::from)?;
            }
        }
        None => client
            .set_presence(body.presence == "available")
            .await
            .map_err(crate::error::ApiError::from)?,
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({ "presence": body.presence })),
    ))
}

/// `fetchProfile` body.
#[derive(Debug, Deserialize)]
pub(crate) struct ProfileBody {
    number: String,
}

/// `POST /chat/fetchProfile/{i}`: whether the number exists (no picture, status or
/// business fields: `null`).
pub(crate) async fn fetch_profile(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoJson(body): EvoJson<ProfileBody>,
) -> EvoResult<Json<Value>> {
    let client = session.connected_client()?;
    let cc = state.config().default_country_code.as_deref();
    let jid =
        crate::phone::parse_recipient(body.number.split('@').next().unwrap_or(&body.number), cc)?;
    let found = messaging::on_whatsapp(&client, &[jid.user().to_owned()]).await?;
    let wuid = found.into_iter().next().flatten();
    Ok(Json(json!({
        "wuid": wuid.as_ref().map_or_else(|| jid.to_string(), ToString::to_string),
        "name": null,
        "numberExists": wuid.is_some(),
        "picture": null,
        "status": null,
        "isBusiness": false,
        "email": null,
        "description": null,
        "website": null,
    })))
}
