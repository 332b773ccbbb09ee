//! WAHA sending: `POST /api/send*` (`session` in the body), `PUT /api/reaction` and
//! `GET /api/contacts/check-exists`, through the native send path
//! ([`crate::messaging::send`]: send limits, message log, message status resource).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wa_engine::message::rich::TargetKey;

use super::message::{Facts, me_id};
use super::{Key, WahaError, chat_id, parse, parse_chat_id};
use crate::db::MessageRecord;
use crate::error::ApiError;
use crate::messaging::{self, Outgoing, Quote};
use crate::phone::PhoneNumber;
use crate::session::Session;
use crate::state::AppState;

/// Longest text, in characters (as the native API).
const MAX_TEXT: usize = 65536;

/// WAHA's `WAMessage` for a message this session sent ([`Facts::render`]: all twelve
/// required fields, `participant` and `mediaUrl` `""` where there is nothing).
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub(crate) struct WaMessage(Value);

impl WaMessage {
    /// A message the engine sent without a native message record (polls), acked by the
    /// server: `text` is its body.
    fn unrecorded(
        state: &AppState,
        session: &Session,
        to: &wa_engine::Jid,
        id: &str,
        text: String,
    ) -> Self {
        let record = MessageRecord {
            text: Some(text),
            status: "sent".to_owned(),
            ..MessageRecord::outgoing(id.to_owned(), to.to_string(), "poll".to_owned())
        };
        Self::sent(state, session, &record)
    }

    fn sent(state: &AppState, session: &Session, record: &MessageRecord) -> Self {
        Self(Facts::of_record(state, &session.id, record).render(&me_id(session)))
    }
}

/// A WAHA message id (`true_<chat>_<id>`, `false_<chat>_<id>[_<participant>]`, or a bare
/// id) as its parts: (from me, chat, id, participant).
pub(crate) fn split_message_id(raw: &str) -> Option<(bool, Option<&str>, &str, Option<&str>)> {
    let mut parts = raw.split('_');
    let first = parts.next()?;
    let from_me = match first {
        "true" => true,
        "false" => false,
        _ => return (!raw.is_empty()).then_some((true, None, raw, None)),
    };
    let chat = parts.next()?;
    let id = parts.next()?;
    Some((from_me, Some(chat), id, parts.next()))
}

async fn send(
    state: &AppState,
    key: &Key,
    session: &str,
    chat: &str,
    content: Outgoing,
) -> Result<(StatusCode, Json<WaMessage>), WahaError> {
    let session = key.session(state, session)?;
    let to = parse_chat_id(state, chat)?;
    let client = session.connected_client()?;
    let kind = content.kind();
    let record = messaging::send(state, &session, &client, &to, &content, kind).await?;
    Ok((
        StatusCode::CREATED,
        Json(WaMessage::sent(state, &session, &record)),
    ))
}

/// `POST /api/sendText` body (`MessageTextRequest`).
#[derive(Debug, Deserialize)]
pub(crate) struct SendText {
    session: String,
    #[serde(rename = "chatId")]
    chat_id: String,
    text: String,
    /// A WAHA message id to quote.
    #[serde(default)]
    reply_to: Option<String>,
    /// Chat ids to mention.
    #[serde(default)]
    mentions: Option<Vec<String>>,
}

/// `POST /api/sendText`: 201 `WAMessage`.
pub(crate) async fn send_text(
    State(state): State<AppState>,
    key: Key,
    body: Bytes,
) -> Result<(StatusCode, Json<WaMessage>), WahaError> {
    let body: SendText = parse(&body)?;
    let chars = body.text.chars().count();
    if chars == 0 || chars > MAX_TEXT {
        return Err(WahaError::bad_request(format!(
            "text must be 1-{MAX_TEXT} characters"
        )));
    }
    let mentions = body
        .mentions
        .unwrap_or_default()
        .iter()
        .map(|m| parse_chat_id(&state, m))
        .collect::<Result<Vec<_>, _>>()?;
    let reply_to = match body.reply_to.as_deref().filter(|r| !r.is_empty()) {
        Some(raw) => {
            let (_, _, id, participant) = split_message_id(raw)
                .ok_or_else(|| WahaError::bad_request("reply_to is not a message id"))?;
            Some(Quote {
                id: id.to_owned(),
                participant: participant.map(|p| parse_chat_id(&state, p)).transpose()?,
                message: None,
            })
        }
        None => None,
    };
    let content = Outgoing::Text {
        body: body.text,
        reply_to,
        mentions,
    };
    send(&state, &key, &body.session, &body.chat_id, content).await
}

/// `POST /api/sendLocation` body.
#[derive(Debug, Deserialize)]
pub(crate) struct SendLocation {
    session: String,
    #[serde(rename = "chatId")]
    chat_id: String,
    latitude: f64,
    longitude: f64,
    #[serde(default)]
    title: Option<String>,
}

/// `POST /api/sendLocation`: 201 `WAMessage`.
pub(crate) async fn send_location(
    State(state): State<AppState>,
    key: Key,
    body: Bytes,
) -> Result<(StatusCode, Json<WaMessage>), WahaError> {
    let body: SendLocation = parse(&body)?;
    if !(-90.0..=90.0).contains(&body.latitude) || !(-180.0..=180.0).contains(&body.longitude) {
        return Err(WahaError::bad_request(
            "latitude must be -90..90 and longitude -180..180",
        ));
    }
    let content = Outgoing::Location {
        latitude: body.latitude,
        longitude: body.longitude,
        name: body.title.filter(|t| !t.is_empty()),
        address: None,
    };
    send(&state, &key, &body.session, &body.chat_id, content).await
}

/// One contact of `sendContactVcard`: WAHA's `Contact{fullName, phoneNumber, ...}` (the
/// `VCardContact{vcard}` form is not offered).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VcardContact {
    full_name: Option<String>,
    phone_number: Option<String>,
}

/// `POST /api/sendContactVcard` body.
#[derive(Debug, Deserialize)]
pub(crate) struct SendContactVcard {
    session: String,
    #[serde(rename = "chatId")]
    chat_id: String,
    contacts: Vec<VcardContact>,
}

/// `POST /api/sendContactVcard` with exactly one `{fullName, phoneNumber}` contact: 201
/// `WAMessage`.
pub(crate) async fn send_contact_vcard(
    State(state): State<AppState>,
    key: Key,
    body: Bytes,
) -> Result<(StatusCode, Json<WaMessage>), WahaError> {
    let body: SendContactVcard = parse(&body)?;
    let [contact] = body.contacts.as_slice() else {
        return Err(WahaError::not_supported(
            "sendContactVcard takes exactly one contact here",
        ));
    };
    let (Some(name), Some(phone)) = (&contact.full_name, &contact.phone_number) else {
        return Err(WahaError::not_supported(
            "only {fullName, phoneNumber} contacts are supported (not a raw vcard)",
        ));
    };
    let phone = PhoneNumber::parse(phone, state.config().default_country_code.as_deref())?;
    let content = Outgoing::Contact {
        name: name.clone(),
        phone: phone.digits().to_owned(),
    };
    send(&state, &key, &body.session, &body.chat_id, content).await
}

/// `PUT /api/reaction` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Reaction {
    session: String,
    /// WAHA message id `true|false_<chat>_<id>[_<participant>]`.
    message_id: String,
    /// An emoji; `""` removes the reaction.
    reaction: String,
}

/// `PUT /api/reaction`: 200 `{}`.
pub(crate) async fn reaction(
    State(state): State<AppState>,
    key: Key,
    body: Bytes,
) -> Result<Json<Value>, WahaError> {
    let body: Reaction = parse(&body)?;
    if body.reaction.chars().count() > 64 {
        return Err(WahaError::bad_request("reaction is too long"));
    }
    let session = key.session(&state, &body.session)?;
    let Some((from_me, Some(chat), id, participant)) = split_message_id(&body.message_id) else {
        return Err(WahaError::bad_request(
            "messageId must be true|false_<chatId>_<id>",
        ));
    };
    let target = TargetKey {
        chat: parse_chat_id(&state, chat)?,
        id: id.to_owned(),
        from_me,
        sender: participant.map(|p| parse_chat_id(&state, p)).transpose()?,
    };
    session
        .connected_client()?
        .send_reaction(&target, &body.reaction)
        .await
        .map_err(ApiError::from)?;
    Ok(Json(json!({})))
}

/// WAHA's `RemoteFile{mimetype, url, filename?}` or `BinaryFile{mimetype, data, filename?}`.
#[derive(Debug, Deserialize)]
pub(crate) struct WahaFile {
    #[serde(default)]
    mimetype: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    filename: Option<String>,
}

/// `POST /api/sendImage|sendFile|sendVoice|sendVideo` body.
#[derive(Debug, Deserialize)]
pub(crate) struct SendMedia {
    session: String,
    #[serde(rename = "chatId")]
    chat_id: String,
    file: WahaFile,
    #[serde(default)]
    caption: Option<String>,
}

/// Sends a WAHA media body as a native `kind` message (the native media intake: URL fetch
/// behind the SSRF guard, or base64; MIME sniffing; upload) and answers 201 `WAMessage`
/// with `hasMedia` and the native download path as `mediaUrl`.
async fn send_media(
    state: &AppState,
    key: &Key,
    kind: crate::media::Kind,
    body: &[u8],
    voice_note: bool,
) -> Result<(StatusCode, Json<WaMessage>), WahaError> {
    let body: SendMedia = parse(body)?;
    let session = key.session(state, &body.session)?;
    // The native intake takes a phone number or an `@s.whatsapp.net` JID.
    let to = parse_chat_id(state, &body.chat_id)?;
    let fields = crate::media::intake::Fields {
        to: Some(to.to_string()),
        caption: body
            .caption
            .filter(|c| !c.is_empty() && kind != crate::media::Kind::Audio),
        // WAHA sends a file name with every kind; the native intake takes it for documents.
        file_name: body
            .file
            .filename
            .filter(|_| kind == crate::media::Kind::Document),
        // Likewise the MIME type (other kinds are sniffed natively).
        mimetype: body
            .file
            .mimetype
            .filter(|_| kind == crate::media::Kind::Document),
        voice_note,
        check_number: false,
        ..Default::default()
    };
    let (fields, received) =
        crate::media::intake::from_json(state, kind, fields, body.file.url, body.file.data).await?;
    let sent = crate::media::send::send(state, &session, kind, fields, received).await?;
    let mut message = WaMessage::sent(state, &session, &sent.record);
    if let Value::Object(m) = &mut message.0 {
        m.insert("hasMedia".to_owned(), Value::Bool(true));
        if m.get("mediaUrl").is_none_or(|u| u == "") {
            m.insert("mediaUrl".to_owned(), Value::String(sent.download_url));
        }
    }
    Ok((StatusCode::CREATED, Json(message)))
}

/// `POST /api/sendImage`.
pub(crate) async fn send_image(
    State(state): State<AppState>,
    key: Key,
    body: Bytes,
) -> Result<(StatusCode, Json<WaMessage>), WahaError> {
    send_media(&state, &key, crate::media::Kind::Image, &body, false).await
}

/// `POST /api/sendFile` (a document).
pub(crate) async fn send_file(
    State(state): State<AppState>,
    key: Key,
    body: Bytes,
) -> Result<(StatusCode, Json<WaMessage>), WahaError> {
    send_media(&state, &key, crate::media::Kind::Document, &body, false).await
}

/// `POST /api/sendVoice` (a voice note; `convert` is ignored: send OGG/Opus).
pub(crate) async fn send_voice(
    State(state): State<AppState>,
    key: Key,
    body: Bytes,
) -> Result<(StatusCode, Json<WaMessage>), WahaError> {
    send_media(&state, &key, crate::media::Kind::Audio, &body, true).await
}

/// `POST /api/sendVideo` (`convert` and `asNote` are ignored: send MP4).
pub(crate) async fn send_video(
    State(state): State<AppState>,
    key: Key,
    body: Bytes,
) -> Result<(StatusCode, Json<WaMessage>), WahaError> {
    send_media(&state, &key, crate::media::Kind::Video, &body, false).await
}

/// WAHA's `poll`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Poll {
    name: String,
    options: Vec<String>,
    #[serde(default)]
    multiple_answers: bool,
}

/// `POST /api/sendPoll` body.
#[derive(Debug, Deserialize)]
pub(crate) struct SendPoll {
    session: String,
    #[serde(rename = "chatId")]
    chat_id: String,
    poll: Poll,
}

/// `POST /api/sendPoll` (`Client::send_poll`; `multipleAnswers` false = one choice): 201
/// `WAMessage` whose `body` is the question.
pub(crate) async fn send_poll(
    State(state): State<AppState>,
    key: Key,
    body: Bytes,
) -> Result<(StatusCode, Json<WaMessage>), WahaError> {
    let body: SendPoll = parse(&body)?;
    let session = key.session(&state, &body.session)?;
    let options = body.poll.options.len();
    if body.poll.name.is_empty() || !(2..=12).contains(&options) {
        return Err(WahaError::bad_request(
            "poll.name must not be empty and poll.options must hold 2-12 entries",
        ));
    }
    let to = parse_chat_id(&state, &body.chat_id)?;
    let selectable = if body.poll.multiple_answers {
        u32::try_from(options).unwrap_or(12)
    } else {
        1
    };
    let id = session
        .connected_client()?
        .send_poll(&to, &body.poll.name, &body.poll.options, selectable)
        .await
        .map_err(|e| ApiError::from_send(e, &to))?;
    Ok((
        StatusCode::CREATED,
        Json(WaMessage::unrecorded(
            &state,
            &session,
            &to,
            &id.0,
            body.poll.name,
        )),
    ))
}

/// WAHA's `ChatRequest` (typing) and `SendSeenRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChatRequest {
    session: String,
    chat_id: String,
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    message_ids: Option<Vec<String>>,
    #[serde(default)]
    participant: Option<String>,
}

async fn chat_state(
    state: &AppState,
    key: &Key,
    body: &[u8],
    chat_state: wa_engine::ChatState,
) -> Result<(StatusCode, Json<Value>), WahaError> {
    let body: ChatRequest = parse(body)?;
    let session = key.session(state, &body.session)?;
    let to = parse_chat_id(state, &body.chat_id)?;
    session
        .connected_client()?
        .send_chat_state(&to, chat_state)
        .await
        .map_err(ApiError::from)?;
    Ok((StatusCode::CREATED, Json(json!({}))))
}

/// `POST /api/startTyping`: 201 `{}`.
pub(crate) async fn start_typing(
    State(state): State<AppState>,
    key: Key,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), WahaError> {
    chat_state(&state, &key, &body, wa_engine::ChatState::Composing).await
}

/// `POST /api/stopTyping`: 201 `{}`.
pub(crate) async fn stop_typing(
    State(state): State<AppState>,
    key: Key,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), WahaError> {
    chat_state(&state, &key, &body, wa_engine::ChatState::Paused).await
}

/// `POST /api/sendSeen`: read receipts for `messageId`/`messageIds` (WAHA ids or bare
/// ids) in `chatId` (`participant` = their sender in a group). WAHA without ids marks the
/// whole chat read; that needs the chat's unread ids, which wa-server does not track: 400.
pub(crate) async fn send_seen(
    State(state): State<AppState>,
    key: Key,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), WahaError> {
    let body: ChatRequest = parse(&body)?;
    let session = key.session(&state, &body.session)?;
    let chat = parse_chat_id(&state, &body.chat_id)?;
    let ids: Vec<wa_engine::MessageId> = body
        .message_id
        .into_iter()
        .chain(body.message_ids.unwrap_or_default())
        .filter_map(|raw| {
            split_message_id(&raw).map(|(_, _, id, _)| wa_engine::MessageId(id.to_owned()))
        })
        .collect();
    if ids.is_empty() {
        return Err(WahaError::bad_request(
            "give messageId or messageIds (marking a whole chat read is not supported)",
        ));
    }
    let sender = body
        .participant
        .as_deref()
        .map(|p| parse_chat_id(&state, p))
        .transpose()?;
    session
        .connected_client()?
        .mark_read(&chat, sender.as_ref(), &ids)
        .await
        .map_err(ApiError::from)?;
    Ok((StatusCode::CREATED, Json(json!({}))))
}

/// `GET /api/contacts/check-exists` query.
#[derive(Debug, Deserialize)]
pub(crate) struct CheckQuery {
    phone: String,
    session: String,
}

/// `WANumberExistResult{numberExists, chatId?}`.
pub(crate) async fn check_exists(
    State(state): State<AppState>,
    key: Key,
    super::WahaQuery(query): super::WahaQuery<CheckQuery>,
) -> Result<Json<Value>, WahaError> {
    let session = key.session(&state, &query.session)?;
    let phone = PhoneNumber::parse(&query.phone, state.config().default_country_code.as_deref())?;
    let client = session.connected_client()?;
    let found = messaging::on_whatsapp(&client, &[phone.digits().to_owned()]).await?;
    Ok(Json(match found.into_iter().next().flatten() {
        Some(jid) => json!({ "numberExists": true, "chatId": chat_id(&jid.to_string()) }),
        None => json!({ "numberExists": false }),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::waha::hooks::ack_of;

    #[test]
    fn message_ids_split_into_key_parts() {
        assert_eq!(
            split_message_id("true_15550001111@c.us_3EB0ABC"),
            Some((true, Some("15550001111@c.us"), "3EB0ABC", None))
        );
        assert_eq!(
            split_message_id("false_1203@g.us_AAAA_15550001111@c.us"),
            Some((false, Some("1203@g.us"), "AAAA", Some("15550001111@c.us")))
        );
        assert_eq!(
            split_message_id("3EB0ABC"),
            Some((true, None, "3EB0ABC", None))
        );
        assert_eq!(ack_of("read"), (3, "READ"));
    }
}
