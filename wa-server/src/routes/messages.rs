//! `/api/sessions/{id}/messages`: send text (reply, mentions), location and contact messages
//! to users or groups; message status; number check; phone-number formatting.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use wa_engine::Jid;

use super::{ApiJson, ApiPath, ApiQuery, AuthorizedSession};
use crate::auth::Caller;
use crate::db::{MessageRecord, ServerDb, key2};
use crate::error::{ApiError, ErrorBody};
use crate::messaging::{self, Outgoing, Quote};
use crate::phone::{PhoneNumber, parse_recipient, valid_country_code};
use crate::session::Session;
use crate::state::AppState;

/// Longest text accepted, in characters (WhatsApp's limit is 65,536).
const MAX_TEXT: usize = 65_536;
/// Most mentions per message.
const MAX_MENTIONS: usize = 256;

/// The message a reply quotes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplyTo {
    /// Id of the quoted message.
    #[schema(min_length = 1, max_length = 128)]
    id: String,
    /// In groups: the quoted message's sender (number or JID).
    #[schema(value_type = Option<crate::api_types::Recipient>)]
    participant: Option<String>,
}

/// `POST /api/sessions/{id}/messages/text` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendText {
    /// Recipient: phone number (local numbers use the default country code) or JID
    /// (`...@s.whatsapp.net`, `...@g.us` for groups).
    #[schema(value_type = crate::api_types::Recipient)]
    to: String,
    /// The text (1-65536 characters).
    #[schema(min_length = 1, max_length = 65536)]
    text: String,
    /// Quote a message.
    reply_to: Option<ReplyTo>,
    /// Users to mention (numbers or JIDs); write them as `@<number>` in the text.
    #[serde(default)]
    #[schema(value_type = Vec<crate::api_types::Recipient>, max_items = 256)]
    mentions: Vec<String>,
    /// Check the number is on WhatsApp first (422 `not_on_whatsapp` if not).
    #[serde(default)]
    check_number: bool,
}

/// `POST /api/sessions/{id}/messages/location` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendLocation {
    /// Recipient (number or JID).
    #[schema(value_type = crate::api_types::Recipient)]
    to: String,
    /// Degrees, -90..=90.
    #[schema(minimum = -90, maximum = 90)]
    latitude: f64,
    /// Degrees, -180..=180.
    #[schema(minimum = -180, maximum = 180)]
    longitude: f64,
    /// Place name.
    #[schema(max_length = 1024)]
    name: Option<String>,
    /// Address.
    #[schema(max_length = 1024)]
    address: Option<String>,
    /// Check the number is on WhatsApp first.
    #[serde(default)]
    check_number: bool,
}

/// `POST /api/sessions/{id}/messages/contact` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendContact {
    /// Recipient (number or JID).
    #[schema(value_type = crate::api_types::Recipient)]
    to: String,
    /// The contact's display name (1-256 characters).
    #[schema(min_length = 1, max_length = 256)]
    name: String,
    /// The contact's phone number.
    #[schema(value_type = crate::api_types::E164)]
    phone: String,
    /// Check the number is on WhatsApp first.
    #[serde(default)]
    check_number: bool,
}

/// A message accepted by the server.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SentMessage {
    /// Message id; follow it at `GET /api/sessions/{id}/messages/{message_id}`.
    id: String,
    /// `sent`: the server acknowledged it (or already `delivered`/`read` if a receipt came
    /// first); `queued` when a send limit held it back and the server queues such sends
    /// (`--queue-limited-sends`): it goes out when the limits allow. Later changes: `GET .../messages/{message_id}` or `message_status` events.
    status: String,
    /// The normalised recipient JID.
    to: String,
}

/// A message of the log: one sent through the API (with its status) or one received.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MessageStatus {
    /// Message id.
    id: String,
    /// The chat: recipient JID of a sent message, chat JID of a received one.
    to: String,
    /// `text`, `location`, `contact`, `otp`, a media type (`image`, `video`, `audio`,
    /// `document`, `sticker`, ...), or for received messages the `type` of the `message`
    /// event.
    #[serde(rename = "type")]
    kind: String,
    /// Sent: (`queued`: waiting for the send limits, with `--queue-limited-sends`) ->
    /// `pending` (recorded, being sent) -> `sent` (server ack) -> `delivered` ->
    /// `read` (-> `played` for voice notes), or `failed` (before `delivered`). Received:
    /// `received`.
    status: String,
    /// Why it failed: `<error code>: <message>`, e.g. `recipient_unreachable: ...`.
    error: Option<String>,
    /// Unix ms (a received message: when the server received it).
    created_at: u64,
    /// Unix ms.
    updated_at: u64,
    /// `out` (sent by this session, or by the account's phone) or `in` (received).
    direction: String,
    /// The chat JID (same as `to`).
    chat: String,
    /// Sender's user JID of a received message; `null` for this session's sends.
    sender: Option<String>,
    /// The text or caption, when there is one (never for OTPs).
    text: Option<String>,
    /// Every status reached, in order, with its time (unix ms), from the receipts.
    timeline: Vec<crate::db::StatusChange>,
    /// The failed message this one retries.
    retry_of: Option<String>,
    /// The message that retried this one.
    retried_as: Option<String>,
    /// Received: the sender's phone-number user JID, when known (LID-first addressing,
    /// 07 §1.7: `sender` and `chat` may be LIDs; key customers by this one).
    #[serde(skip_serializing_if = "Option::is_none")]
    sender_pn: Option<String>,
    /// Received: the sender's LID user JID, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    sender_lid: Option<String>,
    /// Received 1:1: the chat's phone-number JID, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    chat_pn: Option<String>,
    /// Received 1:1: the chat's LID, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    chat_lid: Option<String>,
}

impl From<MessageRecord> for MessageStatus {
    fn from(r: MessageRecord) -> Self {
        let timeline = if r.timeline.is_empty() {
            // Written before the message log: only the current status is known.
            vec![crate::db::StatusChange {
                status: r.status.clone(),
                at: r.updated_at,
            }]
        } else {
            r.timeline
        };
        Self {
            chat: r.to.clone(),
            id: r.id,
            to: r.to,
            kind: r.kind,
            status: r.status,
            error: r.error,
            created_at: r.created_at,
            updated_at: r.updated_at,
            direction: r.direction,
            sender: r.sender,
            text: r.text,
            timeline,
            retry_of: r.retry_of,
            retried_as: r.retried_as,
            sender_pn: r.sender_pn,
            sender_lid: r.sender_lid,
            chat_pn: r.chat_pn,
            chat_lid: r.chat_lid,
        }
    }
}

/// `GET /api/phone/format` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct FormatQuery {
    /// A phone number in local or international form (the international form always
    /// parses; a local one can be refused as invalid or ambiguous).
    #[param(pattern = "^\\+[1-9][0-9]{7,14}$")]
    number: String,
    /// Country calling code for local numbers (1-3 digits, `+` optional); default the
    /// server's.
    #[param(pattern = "^\\+?[1-9][0-9]{0,2}$")]
    country_code: Option<String>,
}

/// A normalised phone number.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FormattedPhone {
    /// E.164 digits, e.g. `628123456789`.
    digits: String,
    /// `+628123456789`.
    e164: String,
    /// `628123456789@s.whatsapp.net`.
    jid: String,
}

/// `POST /api/sessions/{id}/contacts/check` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckNumbers {
    /// 1-50 phone numbers.
    #[schema(value_type = Vec<crate::api_types::E164>, min_items = 1, max_items = 50)]
    numbers: Vec<String>,
}

/// Whether a number has a WhatsApp account.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NumberCheck {
    /// E.164 digits.
    number: String,
    /// On WhatsApp?
    exists: bool,
    /// The account's user JID, when it exists.
    jid: Option<String>,
}

fn default_cc(state: &AppState) -> Option<&str> {
    state.config().default_country_code.as_deref()
}

async fn send(
    state: &AppState,
    session: &Session,
    mut to: Jid,
    check_number: bool,
    content: Outgoing,
) -> Result<(StatusCode, Json<SentMessage>), ApiError> {
    let client = session.connected_client()?;
    if check_number && to.is_pn() {
        let found = messaging::on_whatsapp(&client, &[to.user().to_owned()]).await?;
        match found.into_iter().next().flatten() {
            // Send to the account's own JID (it may differ from the number as typed).
            Some(jid) => to = jid,
            None => return Err(ApiError::NotOnWhatsApp),
        }
    }
    let record = messaging::send(state, session, &client, &to, &content, content.kind()).await?;
    Ok((
        StatusCode::CREATED,
        Json(SentMessage {
            id: record.id,
            status: record.status,
            to: record.to,
        }),
    ))
}

/// Send a text (optionally a reply, with mentions) to a user or group.
///
/// A reply to a message in the message log carries the quoted message's content (shown
/// above the reply) and its sender. Every send passes the session's send limits first
/// (429 `send_rate_limited`, `recipient_rate_limited`, `daily_quota_exceeded`).
///
/// The message is recorded as `pending` before it is sent, then `sent` on the server's ack
/// (or `failed`). Errors: 409 `session_not_connected`, 422 `not_on_whatsapp` (with
/// `check_number`), 422 `recipient_unreachable` (no device to encrypt for), 422
/// `recipient_requires_token` (WhatsApp refused a first message to this contact without a
/// privacy token, error 463: have the recipient message the account first, or let the
/// session finish app-state/history sync for the account's NCT salt), 429
/// `reachout_timelocked` (the account may not start new chats until `locked_until`), 429
/// `message_capping` (new-chat quota of this cycle used up, error 475), 404
/// `group_not_found`, 403 `not_group_member`, 502 `upstream_rejected` /
/// `upstream_bad_response`, 504 `upstream_timeout`.
#[utoipa::path(post, path = "/api/sessions/{id}/messages/text", tag = "messages",
    params(("id" = String, Path, description = "Session id")),
    request_body = SendText,
    responses((status = 201, body = SentMessage),
        (status = 400, description = "Bad request: `invalid_phone_number`, `ambiguous_phone_number` (digits valid both in the default country and as an international number: send `+CC...`), ...", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, description = "`not_on_whatsapp`, `recipient_unreachable`, or `recipient_requires_token` (WhatsApp error 463: the recipient accepts a first message only with a privacy token; have the recipient message this account first, or let the session finish app-state/history sync so the account's NCT salt gives a token), ...", body = ErrorBody),
        (status = 429, description = "A send limit refused it: `send_rate_limited`, `recipient_rate_limited` or `daily_quota_exceeded`, with `Retry-After`; or WhatsApp did: `reachout_timelocked` (no new chats until `locked_until`, unix s), `message_capping` (error 475, new-chat quota of the cycle used up)", body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn send_text(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<SendText>,
) -> Result<(StatusCode, Json<SentMessage>), ApiError> {
    let to = parse_recipient(&body.to, default_cc(&state))?;
    let chars = body.text.chars().count();
    if chars == 0 || chars > MAX_TEXT {
        return Err(ApiError::InvalidBody(format!(
            "text must be 1-{MAX_TEXT} characters"
        )));
    }
    if body.mentions.len() > MAX_MENTIONS {
        return Err(ApiError::InvalidBody(format!(
            "at most {MAX_MENTIONS} mentions"
        )));
    }
    let mentions = body
        .mentions
        .iter()
        .map(|m| parse_recipient(m, default_cc(&state)))
        .collect::<Result<Vec<_>, _>>()?;
    let reply_to = match body.reply_to {
        Some(r) => {
            if r.id.is_empty() || r.id.len() > 128 {
                return Err(ApiError::InvalidBody(
                    "reply_to.id must be 1-128 characters".to_owned(),
                ));
            }
            let participant = r
                .participant
                .as_deref()
                .map(|p| parse_recipient(p, default_cc(&state)))
                .transpose()?;
            let logged = ServerDb::get::<MessageRecord>(
                &state.db().messages,
                key2(&session.id, &r.id),
                "message",
            )?;
            // The quoted message as the log has it: its content (shown above the reply) and,
            // unless given, its sender (official clients always name it).
            let participant = match (participant, &logged) {
                (Some(p), _) => Some(p),
                (None, Some(l)) if l.direction == "in" => {
                    l.sender.as_deref().and_then(|s| s.parse::<Jid>().ok())
                }
                (None, Some(_)) => session
                    .live()
                    .jid
                    .and_then(|j| j.parse::<Jid>().ok())
                    .map(|j| j.to_non_ad()),
                (None, None) => None,
            };
            Some(Quote {
                id: r.id,
                participant,
                message: logged
                    .as_ref()
                    .and_then(crate::msglog::decode_content)
                    .map(Box::new),
            })
        }
        None => None,
    };
    let content = Outgoing::Text {
        body: body.text,
        reply_to,
        mentions,
    };
    send(&state, &session, to, body.check_number, content).await
}

/// Send a location pin to a user or group (errors as for text).
#[utoipa::path(post, path = "/api/sessions/{id}/messages/location", tag = "messages",
    params(("id" = String, Path, description = "Session id")),
    request_body = SendLocation,
    responses((status = 201, body = SentMessage),
        (status = 400, description = "Bad request: `invalid_phone_number`, `ambiguous_phone_number` (digits valid both in the default country and as an international number: send `+CC...`), ...", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, description = "A send limit refused it: `send_rate_limited`, `recipient_rate_limited` or `daily_quota_exceeded`, with `Retry-After`", body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn send_location(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<SendLocation>,
) -> Result<(StatusCode, Json<SentMessage>), ApiError> {
    let to = parse_recipient(&body.to, default_cc(&state))?;
    if !(-90.0..=90.0).contains(&body.latitude) || !(-180.0..=180.0).contains(&body.longitude) {
        return Err(ApiError::InvalidBody(
            "latitude must be -90..90 and longitude -180..180".to_owned(),
        ));
    }
    let too_long = |s: &Option<String>| s.as_ref().is_some_and(|s| s.chars().count() > 1024);
    if too_long(&body.name) || too_long(&body.address) {
        return Err(ApiError::InvalidBody(
            "name and address are at most 1024 characters".to_owned(),
        ));
    }
    let content = Outgoing::Location {
        latitude: body.latitude,
        longitude: body.longitude,
        name: body.name,
        address: body.address,
    };
    send(&state, &session, to, body.check_number, content).await
}

/// Send a contact card to a user or group (errors as for text).
#[utoipa::path(post, path = "/api/sessions/{id}/messages/contact", tag = "messages",
    params(("id" = String, Path, description = "Session id")),
    request_body = SendContact,
    responses((status = 201, body = SentMessage),
        (status = 400, description = "Bad request: `invalid_phone_number`, `ambiguous_phone_number` (digits valid both in the default country and as an international number: send `+CC...`), ...", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, description = "A send limit refused it: `send_rate_limited`, `recipient_rate_limited` or `daily_quota_exceeded`, with `Retry-After`", body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn send_contact(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<SendContact>,
) -> Result<(StatusCode, Json<SentMessage>), ApiError> {
    let to = parse_recipient(&body.to, default_cc(&state))?;
    let name_len = body.name.chars().count();
    if name_len == 0 || name_len > 256 {
        return Err(ApiError::InvalidBody(
            "name must be 1-256 characters".to_owned(),
        ));
    }
    let phone = PhoneNumber::parse(&body.phone, default_cc(&state))?;
    let content = Outgoing::Contact {
        name: body.name,
        phone: phone.digits().to_owned(),
    };
    send(&state, &session, to, body.check_number, content).await
}

/// A message of the log: status and timeline of a sent message, or a received one.
#[utoipa::path(get, path = "/api/sessions/{id}/messages/{message_id}", tag = "messages",
    params(("id" = String, Path, description = "Session id"), ("message_id" = String, Path, description = "Message id")),
    responses((status = 200, body = MessageStatus),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn status(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiPath((_, message_id)): ApiPath<(String, String)>,
) -> Result<Json<MessageStatus>, ApiError> {
    let record: MessageRecord = ServerDb::get(
        &state.db().messages,
        key2(&session.id, &message_id),
        "message",
    )?
    .ok_or(ApiError::MessageNotFound)?;
    Ok(Json(MessageStatus::from(record)))
}

/// Check which numbers are on WhatsApp.
#[utoipa::path(post, path = "/api/sessions/{id}/contacts/check", tag = "messages",
    params(("id" = String, Path, description = "Session id")),
    request_body = CheckNumbers,
    responses((status = 200, body = Vec<NumberCheck>),
        (status = 400, description = "Bad request: `invalid_phone_number`, `ambiguous_phone_number` (digits valid both in the default country and as an international number: send `+CC...`), ...", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn check_numbers(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<CheckNumbers>,
) -> Result<Json<Vec<NumberCheck>>, ApiError> {
    if body.numbers.is_empty() || body.numbers.len() > 50 {
        return Err(ApiError::InvalidBody(
            "numbers must hold 1-50 entries".to_owned(),
        ));
    }
    let numbers = body
        .numbers
        .iter()
        .map(|n| PhoneNumber::parse(n, default_cc(&state)).map(|p| p.digits().to_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    let client = session.connected_client()?;
    let found = messaging::on_whatsapp(&client, &numbers).await?;
    Ok(Json(
        numbers
            .into_iter()
            .zip(found.into_iter().chain(std::iter::repeat(None)))
            .map(|(number, jid)| NumberCheck {
                number,
                exists: jid.is_some(),
                jid: jid.map(|j| j.to_string()),
            })
            .collect(),
    ))
}

/// Normalise a phone number (local form with a country code, or international).
#[utoipa::path(get, path = "/api/phone/format", tag = "messages",
    params(FormatQuery),
    responses((status = 200, body = FormattedPhone),
        (status = 400, description = "Bad request: `invalid_phone_number`, `ambiguous_phone_number` (digits valid both in the default country and as an international number: send `+CC...`), ...", body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn format_phone(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<FormatQuery>,
) -> Result<Json<FormattedPhone>, ApiError> {
    let cc = match query.country_code.as_deref() {
        Some(cc) if valid_country_code(cc.trim_start_matches('+')) => {
            Some(cc.trim_start_matches('+'))
        }
        Some(_) => {
            return Err(ApiError::InvalidParameter(
                "country_code must be 1-3 digits not starting with 0".to_owned(),
            ));
        }
        None => default_cc(&state),
    };
    let phone = PhoneNumber::parse(&query.number, cc)?;
    Ok(Json(FormattedPhone {
        digits: phone.digits().to_owned(),
        e164: phone.e164(),
        jid: phone.jid().to_string(),
    }))
}
