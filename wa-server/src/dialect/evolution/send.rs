//! `/message/*` (`api/routes/sendMessage.router.ts`, `validate/message.schema.ts`): every
//! send answers 201 with the message row (`key`, `message`, `messageType`, `status`
//! `PENDING`, ...). Text, location, contact and media go through the native sending (the
//! message log, send limits, `SEND_MESSAGE`); reactions and polls through the engine's rich
//! sends, as the native routes do.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use wa_engine::Jid;

use super::{EvoError, EvoInstance, EvoJson, EvoResult, rows, store};
use crate::db::MessageRecord;
use crate::media::Kind;
use crate::media::intake::Fields;
use crate::messaging::{self, Outgoing};
use crate::session::Session;
use crate::state::AppState;

type Created = (StatusCode, Json<Value>);

/// The recipient: a phone number (checked with `whatsappNumbers` first, as Evolution
/// does: unknown → 400 `[{jid, exists:false, number}]`), a JID, a group or a LID.
async fn recipient(state: &AppState, session: &Session, number: &str) -> EvoResult<Jid> {
    let cc = state.config().default_country_code.as_deref();
    if number.contains('@') {
        return Ok(crate::phone::parse_chat(number, cc)?);
    }
    let jid = crate::phone::parse_recipient(number, cc)?;
    let client = session.connected_client()?;
    let found = messaging::on_whatsapp(&client, &[jid.user().to_owned()]).await?;
    match found.into_iter().next().flatten() {
        Some(j) => Ok(j),
        None => Err(EvoError::new(
            StatusCode::BAD_REQUEST,
            json!([{ "jid": jid.to_string(), "exists": false, "number": number }]),
        )),
    }
}

async fn row_of(state: &AppState, session: &Session, record: &MessageRecord) -> EvoResult<Value> {
    let data = store::load_or_init(state.db(), &session.id).await?;
    let mut row = rows::record_row(
        record,
        &data.instance_id,
        session.live().push_name.as_deref(),
    );
    if let Value::Object(m) = &mut row {
        m.insert("status".to_owned(), json!("PENDING"));
    }
    Ok(with_key_in_message(row))
}

/// A send answer whose `message` object also carries a copy of `key`: an addition to the
/// server's shape (clients reading `message.conversation` are unaffected) that lets typed
/// clients modelling `message` as `{key, message, ...}` parse it (pyevolutionapi 0.1.1's
/// `MessageResponse`, which the real server's answer fails).
fn with_key_in_message(mut row: Value) -> Value {
    let key = row.get("key").cloned();
    if let (Some(key), Some(Value::Object(message))) = (key, row.get_mut("message")) {
        message.insert("key".to_owned(), key);
    }
    row
}

async fn send_outgoing(
    state: &AppState,
    session: &Session,
    number: &str,
    content: Outgoing,
) -> EvoResult<Created> {
    let to = recipient(state, session, number).await?;
    let client = session.connected_client()?;
    let record = messaging::send(state, session, &client, &to, &content, content.kind()).await?;
    Ok((
        StatusCode::CREATED,
        Json(row_of(state, session, &record).await?),
    ))
}

/// `quoted` of a send.
#[derive(Debug, Deserialize)]
pub(crate) struct Quoted {
    key: QuotedKey,
}

/// `quoted.key`.
#[derive(Debug, Deserialize)]
pub(crate) struct QuotedKey {
    id: String,
}

/// `sendText` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TextBody {
    number: String,
    text: String,
    quoted: Option<Quoted>,
    #[serde(default)]
    mentioned: Vec<String>,
}

/// `POST /message/sendText/{i}`.
pub(crate) async fn send_text(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoJson(body): EvoJson<TextBody>,
) -> EvoResult<Created> {
    if body.text.is_empty() {
        return Err(EvoError::bad_request(
            "text does not meet minimum length of 1",
        ));
    }
    let content = Outgoing::Text {
        body: body.text,
        reply_to: body.quoted.map(|q| messaging::Quote {
            id: q.key.id,
            participant: None,
            message: None,
        }),
        mentions: body
            .mentioned
            .iter()
            .map(|m| Jid::pn(m.split('@').next().unwrap_or(m)))
            .collect(),
    };
    send_outgoing(&state, &session, &body.number, content).await
}

/// `sendLocation` body (numbers as JSON numbers).
#[derive(Debug, Deserialize)]
pub(crate) struct LocationBody {
    number: String,
    latitude: f64,
    longitude: f64,
    name: String,
    address: String,
}

/// `POST /message/sendLocation/{i}`.
pub(crate) async fn send_location(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoJson(body): EvoJson<LocationBody>,
) -> EvoResult<Created> {
    if !(-90.0..=90.0).contains(&body.latitude) || !(-180.0..=180.0).contains(&body.longitude) {
        return Err(EvoError::bad_request("latitude/longitude out of range"));
    }
    let content = Outgoing::Location {
        latitude: body.latitude,
        longitude: body.longitude,
        name: Some(body.name).filter(|s| !s.is_empty()),
        address: Some(body.address).filter(|s| !s.is_empty()),
    };
    send_outgoing(&state, &session, &body.number, content).await
}

/// One card of `sendContact`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContactCard {
    full_name: String,
    phone_number: String,
}

/// `sendContact` body.
#[derive(Debug, Deserialize)]
pub(crate) struct ContactBody {
    number: String,
    contact: Vec<ContactCard>,
}

/// `POST /message/sendContact/{i}`: one contact message per card (the native sending has
/// no multi-contact message); the row of the last one is returned.
pub(crate) async fn send_contact(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoJson(body): EvoJson<ContactBody>,
) -> EvoResult<Created> {
    if body.contact.is_empty() {
        return Err(EvoError::bad_request(
            "contact does not meet minimum length of 1",
        ));
    }
    let mut last = None;
    for card in body.contact {
        let phone: String = card
            .phone_number
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        if phone.len() < 10 {
            return Err(EvoError::bad_request(
                "phoneNumber does not meet minimum length of 10",
            ));
        }
        let content = Outgoing::Contact {
            name: card.full_name,
            phone,
        };
        last = Some(send_outgoing(&state, &session, &body.number, content).await?);
    }
    last.ok_or_else(|| EvoError::bad_request("contact is empty"))
}

/// `sendMedia` body (`media` is a URL or base64).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MediaBody {
    number: String,
    mediatype: String,
    mimetype: Option<String>,
    media: String,
    caption: Option<String>,
    file_name: Option<String>,
}

async fn send_file(
    state: &AppState,
    session: &Session,
    kind: Kind,
    number: &str,
    media: String,
    fields: Fields,
) -> EvoResult<Created> {
    let to = recipient(state, session, number).await?;
    let mut fields = fields;
    fields.to = Some(to.to_string());
    let (url, b64) = if media.starts_with("http://") || media.starts_with("https://") {
        (Some(media), None)
    } else {
        (None, Some(media))
    };
    let (fields, received) = crate::media::intake::from_json(state, kind, fields, url, b64).await?;
    let sent = crate::media::send::send(state, session, kind, fields, received).await?;
    Ok((
        StatusCode::CREATED,
        Json(row_of(state, session, &sent.record).await?),
    ))
}

/// `POST /message/sendMedia/{i}` (JSON; `mediatype` image, video, audio or document).
pub(crate) async fn send_media(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoJson(body): EvoJson<MediaBody>,
) -> EvoResult<Created> {
    let kind = match body.mediatype.as_str() {
        "image" => Kind::Image,
        "video" => Kind::Video,
        "audio" => Kind::Audio,
        "document" => Kind::Document,
        _ => {
            return Err(EvoError::bad_request(
                "mediatype is not one of enum values: image,document,video,audio",
            ));
        }
    };
    let fields = Fields {
        to: None,
        caption: body.caption.filter(|_| kind != Kind::Audio),
        // The native intake takes a file name for documents only (Evolution ignores it for
        // the other types too).
        file_name: body.file_name.filter(|_| kind == Kind::Document),
        mimetype: body.mimetype.filter(|_| kind == Kind::Document),
        voice_note: false,
        check_number: false,
        view_once: false,
    };
    send_file(&state, &session, kind, &body.number, body.media, fields).await
}

/// `sendWhatsAppAudio` body.
#[derive(Debug, Deserialize)]
pub(crate) struct AudioBody {
    number: String,
    audio: String,
}

/// `POST /message/sendWhatsAppAudio/{i}`: a voice note (the file is sent as given: no
/// conversion to Opus, unlike Evolution's ffmpeg step).
pub(crate) async fn send_audio(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoJson(body): EvoJson<AudioBody>,
) -> EvoResult<Created> {
    let fields = Fields {
        voice_note: true,
        ..Fields::default()
    };
    send_file(
        &state,
        &session,
        Kind::Audio,
        &body.number,
        body.audio,
        fields,
    )
    .await
}

/// `sendSticker` body.
#[derive(Debug, Deserialize)]
pub(crate) struct StickerBody {
    number: String,
    sticker: String,
}

/// `POST /message/sendSticker/{i}` (WebP as given; no conversion).
pub(crate) async fn send_sticker(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoJson(body): EvoJson<StickerBody>,
) -> EvoResult<Created> {
    let fields = Fields::default();
    send_file(
        &state,
        &session,
        Kind::Sticker,
        &body.number,
        body.sticker,
        fields,
    )
    .await
}

/// `sendReaction` key.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReactionKey {
    id: String,
    remote_jid: String,
    from_me: bool,
    participant: Option<String>,
}

/// `sendReaction` body.
#[derive(Debug, Deserialize)]
pub(crate) struct ReactionBody {
    key: ReactionKey,
    reaction: String,
}

fn rich_row(instance_id: &str, to: &Jid, id: &str, kind: &str, message: Value) -> Value {
    with_key_in_message(json!({
        "key": { "remoteJid": to.to_string(), "fromMe": true, "id": id },
        "pushName": "",
        "status": "PENDING",
        "message": message,
        "contextInfo": null,
        "messageType": kind,
        "messageTimestamp": crate::db::now_ms() / 1000,
        "instanceId": instance_id,
        "source": "unknown",
    }))
}

/// `POST /message/sendReaction/{i}` (`""` removes our reaction).
pub(crate) async fn send_reaction(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoJson(body): EvoJson<ReactionBody>,
) -> EvoResult<Created> {
    let cc = state.config().default_country_code.as_deref();
    let chat = crate::phone::parse_chat(&body.key.remote_jid, cc)?;
    let sender = match &body.key.participant {
        Some(p) if !p.is_empty() => Some(crate::phone::parse_chat(p, cc)?),
        _ => None,
    };
    let target = wa_engine::message::rich::TargetKey {
        chat: chat.clone(),
        id: body.key.id.clone(),
        from_me: body.key.from_me,
        sender,
    };
    let id = session
        .connected_client()?
        .send_reaction(&target, &body.reaction)
        .await
        .map_err(|e| crate::error::ApiError::from_send(e, &chat))?;
    let data = store::load_or_init(state.db(), &session.id).await?;
    let message = json!({ "reactionMessage": {
        "key": { "remoteJid": chat.to_string(), "fromMe": body.key.from_me, "id": body.key.id },
        "text": body.reaction,
    }});
    Ok((
        StatusCode::CREATED,
        Json(rich_row(
            &data.instance_id,
            &chat,
            &id.0,
            "reactionMessage",
            message,
        )),
    ))
}

/// `sendPoll` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PollBody {
    number: String,
    name: String,
    selectable_count: u32,
    values: Vec<String>,
}

/// `POST /message/sendPoll/{i}`: 2-12 unique values, `selectableCount` 0-10 (0 = any).
pub(crate) async fn send_poll(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoJson(body): EvoJson<PollBody>,
) -> EvoResult<Created> {
    let mut unique = body.values.clone();
    unique.sort();
    unique.dedup();
    if !(2..=12).contains(&body.values.len()) || unique.len() != body.values.len() {
        return Err(EvoError::bad_request(
            "values must hold 2-12 unique options",
        ));
    }
    if body.selectable_count > 10 || body.name.is_empty() {
        return Err(EvoError::bad_request(
            "selectableCount must be 0-10 and name non-empty",
        ));
    }
    let to = recipient(&state, &session, &body.number).await?;
    let id = session
        .connected_client()?
        .send_poll(&to, &body.name, &body.values, body.selectable_count)
        .await
        .map_err(|e| crate::error::ApiError::from_send(e, &to))?;
    let data = store::load_or_init(state.db(), &session.id).await?;
    let options: Vec<Value> = body
        .values
        .iter()
        .map(|v| json!({ "optionName": v }))
        .collect();
    let message = json!({ "pollCreationMessage": {
        "name": body.name, "options": options, "selectableOptionsCount": body.selectable_count,
    }});
    Ok((
        StatusCode::CREATED,
        Json(rich_row(
            &data.instance_id,
            &to,
            &id.0,
            "pollCreationMessage",
            message,
        )),
    ))
}
