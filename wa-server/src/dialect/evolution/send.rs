//! `/message/*` (`api/routes/sendMessage.router.ts`, `validate/message.schema.ts`): every
//! send answers 201 with the message row (`key`, `message`, `messageType`, `status`
//! `PENDING`, ...). Text, location, contact and media go through the native sending (the
//! message log, send limits, `SEND_MESSAGE`); reactions and polls through the engine's rich
//! sends, as the native routes do.

use axum::Json;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::{Value, json};
use wa_engine::Jid;

use super::{EvoError, EvoInstance, EvoJson, EvoResult, rows, store};
use crate::db::MessageRecord;
use crate::media::Kind;
use crate::media::intake::Fields;
use crate::media::temp::{Received, Sink};
use crate::messaging::{self, Outgoing};
use crate::session::Session;
use crate::state::AppState;

type Created = (StatusCode, Json<Value>);

/// The recipient: a phone number (checked with `whatsappNumbers` first, as Evolution
/// does: unknown → 400 `[{jid, exists:false, number}]`), a JID, a group or a LID.
async fn recipient(state: &AppState, session: &Session, number: &str) -> EvoResult<Jid> {
    let cc = state.config().default_country_code.as_deref();
    if number.contains('@') {
        return super::chat_jid(state, number);
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

/// `sendMedia` body (`media` is a URL or base64; a multipart form carries the file in its
/// `file` part instead).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MediaBody {
    number: String,
    mediatype: String,
    mimetype: Option<String>,
    media: Option<String>,
    caption: Option<String>,
    file_name: Option<String>,
}

/// Where the file of a send comes from.
enum Source {
    /// A URL or base64 (a `data:` URL too), as in the JSON bodies.
    Given(String),
    /// The `file` part of a multipart form, already received.
    File(Received),
}

async fn send_file(
    state: &AppState,
    session: &Session,
    kind: Kind,
    number: &str,
    source: Source,
    fields: Fields,
) -> EvoResult<Created> {
    let to = recipient(state, session, number).await?;
    let mut fields = fields;
    fields.to = Some(to.to_string());
    let (fields, received) = match source {
        Source::Given(media) => {
            let (url, b64) = if media.starts_with("http://") || media.starts_with("https://") {
                (Some(media), None)
            } else {
                (None, Some(media))
            };
            crate::media::intake::from_json(state, kind, fields, url, b64).await?
        }
        Source::File(received) => {
            crate::media::intake::check_fields(kind, &fields)?;
            (fields, received)
        }
    };
    let sent = crate::media::send::send(state, session, kind, fields, received).await?;
    Ok((
        StatusCode::CREATED,
        Json(row_of(state, session, &sent.record).await?),
    ))
}

/// Largest text field of a multipart `sendMedia`, bytes (as the native forms).
const MAX_FORM_FIELD: usize = 256 * 1024;

/// A text part of a multipart form, bounded by [`MAX_FORM_FIELD`].
async fn form_text(mut field: Field<'_>, name: &str) -> EvoResult<String> {
    let mut out = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(form_error)? {
        if out.len() + chunk.len() > MAX_FORM_FIELD {
            return Err(EvoError::bad_request(format!("{name} is too long")));
        }
        out.extend_from_slice(&chunk);
    }
    String::from_utf8(out).map_err(|_| EvoError::bad_request(format!("{name} is not UTF-8")))
}

/// A multipart read error: 413 past the body limit, else 400.
fn form_error(e: MultipartError) -> EvoError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        crate::error::ApiError::PayloadTooLarge.into()
    } else {
        EvoError::bad_request(e.body_text())
    }
}

/// A multipart `sendMedia` (multer's `upload.single('file')` in Evolution's router): the
/// text fields of the JSON body (`number`, `mediatype`, `mimetype`, `caption`, `fileName`,
/// `media`) and the file in the `file` part, streamed to a temporary file. Other fields
/// (`delay`, `quoted`, ...) are read and ignored, as Evolution ignores unknown keys.
async fn media_form(
    state: &AppState,
    mut form: Multipart,
) -> EvoResult<(MediaBody, Option<Received>)> {
    let mut body = MediaBody::default();
    let (mut number, mut mediatype) = (None, None);
    let mut file = None;
    while let Some(mut field) = form.next_field().await.map_err(form_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                if file.is_some() {
                    return Err(EvoError::bad_request("more than one file part"));
                }
                if body.file_name.is_none() {
                    body.file_name = field
                        .file_name()
                        .and_then(crate::media::intake::clean_file_name);
                }
                let mut sink = Sink::create(state).await?;
                while let Some(chunk) = field.chunk().await.map_err(form_error)? {
                    sink.write(&chunk).await?;
                }
                file = Some(sink.finish().await?);
            }
            "number" => number = Some(form_text(field, "number").await?),
            "mediatype" => mediatype = Some(form_text(field, "mediatype").await?),
            "mimetype" => body.mimetype = Some(form_text(field, "mimetype").await?),
            "media" => body.media = Some(form_text(field, "media").await?),
            "caption" => body.caption = Some(form_text(field, "caption").await?),
            "fileName" => body.file_name = Some(form_text(field, "fileName").await?),
            _ => {
                form_text(field, "field").await?;
            }
        }
    }
    body.number =
        number.ok_or_else(|| EvoError::bad_request("instance requires property \"number\""))?;
    body.mediatype = mediatype
        .ok_or_else(|| EvoError::bad_request("instance requires property \"mediatype\""))?;
    Ok((body, file))
}

/// `POST /message/sendMedia/{i}`: JSON (`media` a URL or base64) or multipart/form-data
/// (the same fields as text parts and the file in a `file` part); `mediatype` image, video,
/// audio or document. Another content type: 400, as Evolution's validator answers an
/// empty body.
pub(crate) async fn send_media(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    request: Request,
) -> EvoResult<Created> {
    let multipart = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    let (body, file) = if multipart {
        let form = Multipart::from_request(request, &state)
            .await
            .map_err(|e| EvoError::bad_request(e.body_text()))?;
        media_form(&state, form).await?
    } else {
        let EvoJson(body) = EvoJson::<MediaBody>::from_request(request, &state).await?;
        (body, None)
    };
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
    let source = match (file, body.media.filter(|m| !m.trim().is_empty())) {
        (Some(file), _) => Source::File(file),
        (None, Some(media)) => Source::Given(media),
        (None, None) => {
            return Err(EvoError::bad_request("Owned media must be a url or base64"));
        }
    };
    let fields = Fields {
        caption: body.caption.filter(|_| kind != Kind::Audio),
        // The native intake takes a file name for documents only (Evolution ignores it for
        // the other types too).
        file_name: body.file_name.filter(|_| kind == Kind::Document),
        mimetype: body.mimetype.filter(|_| kind == Kind::Document),
        ..Fields::default()
    };
    send_file(&state, &session, kind, &body.number, source, fields).await
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
        Source::Given(body.audio),
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
        Source::Given(body.sticker),
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
    let chat = super::chat_jid(&state, &body.key.remote_jid)?;
    let sender = match &body.key.participant {
        Some(p) if !p.is_empty() => Some(super::chat_jid(&state, p)?),
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
