//! The message log over HTTP: `GET /api/sessions/{id}/messages` (filters, cursor),
//! `GET .../messages/stats` (per UTC day), `POST .../messages/{message_id}/retry` and
//! `DELETE .../messages/{message_id}` (delete for everyone: 501 until the engine can revoke).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use wa_engine::Jid;

use super::{DayStats, Filter, day_of, parse_cursor, parse_day};
use crate::db::{MessageRecord, ServerDb, encode, key2, now_ms};
use crate::error::{ApiError, ErrorBody};
use crate::messaging::{self, Outgoing};
use crate::phone::parse_recipient;
use crate::routes::messages::MessageStatus;
use crate::routes::{ApiPath, ApiQuery, AuthorizedSession};
use crate::state::AppState;

/// Default page size of the list.
const DEFAULT_LIMIT: usize = 50;
/// Largest page size of the list.
const MAX_LIMIT: usize = 500;
/// Most days one stats request covers.
const MAX_DAYS: u64 = 366;

/// Statuses a message of the log can have.
const STATUSES: [&str; 8] = [
    "queued",
    "pending",
    "sent",
    "delivered",
    "read",
    "played",
    "failed",
    "received",
];

/// `GET /api/sessions/{id}/messages` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only this chat: a JID (`...@s.whatsapp.net`, `...@g.us`) or a phone number (the
    /// pattern shows the forms that always parse).
    #[param(pattern = "^(\\+[1-9][0-9]{7,14}|[1-9][0-9]{7,14}@s\\.whatsapp\\.net)$")]
    chat: Option<String>,
    /// Only `in` (received) or `out` (sent) messages.
    #[param(pattern = "^(in|out)$")]
    direction: Option<String>,
    /// Only messages in this status: `queued`, `pending`, `sent`, `delivered`, `read`, `played`,
    /// `failed`, `received`.
    #[param(pattern = "^(queued|pending|sent|delivered|read|played|failed|received)$")]
    status: Option<String>,
    /// Only messages created at or after this time, unix ms.
    since: Option<u64>,
    /// Only messages created before this time, unix ms.
    until: Option<u64>,
    /// Page size, 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
    /// `next_cursor` of the previous page (`<unix ms>-<message id>`).
    #[param(pattern = "^[0-9]{1,19}-.+$")]
    cursor: Option<String>,
}

/// A page of the message log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MessagePage {
    /// The messages.
    messages: Vec<MessageStatus>,
    /// Pass as `cursor` for the next (older) page; `null` at the end.
    next_cursor: Option<String>,
}

/// `GET /api/sessions/{id}/messages/stats` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StatsQuery {
    /// First UTC day, `YYYY-MM-DD` from 1970 on (default 29 days before `to`). The
    /// pattern shows the days that always parse (the 29th-31st do where they exist). A
    /// `from` more than 365 days before `to` is moved up to `to` minus 365 days (the answer
    /// covers at most 366 days); a `from` after `to` gives no days and zero totals.
    #[param(pattern = "^(19[7-9][0-9]|20[0-9]{2})-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$")]
    from: Option<String>,
    /// Last UTC day, `YYYY-MM-DD` from 1970 on (default today). At most 366 days are
    /// answered (the last 366 up to `to`).
    #[param(pattern = "^(19[7-9][0-9]|20[0-9]{2})-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$")]
    to: Option<String>,
}

/// The counters of one UTC day (the day the messages were created).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DayCounters {
    /// `YYYY-MM-DD`.
    date: String,
    /// Sends that passed the send limits (the daily quota counts these).
    accepted: u64,
    /// Sent messages that reached `sent` or later.
    sent: u64,
    /// Sent messages that reached `delivered` or later.
    delivered: u64,
    /// Sent messages that reached `read` (or `played`).
    read: u64,
    /// Sent messages that are `failed`.
    failed: u64,
    /// Messages received.
    received: u64,
}

impl DayCounters {
    fn of(date: String, s: DayStats) -> Self {
        Self {
            date,
            accepted: s.accepted,
            sent: s.sent,
            delivered: s.delivered,
            read: s.read,
            failed: s.failed,
            received: s.received,
        }
    }
}

/// Message statistics of a session.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MessageStats {
    /// Every day from `from` (moved up to at most 365 days before `to`) to `to`, oldest
    /// first (days without messages are zeros); empty when `from` is after `to`.
    days: Vec<DayCounters>,
    /// The sum over those days.
    total: DayStats,
}

/// List the session's message log (sent and received), newest first.
///
/// Every message sent through the API and every message received is kept for the
/// retention period (`--message-retention-days`, default 90) with its status timeline.
#[utoipa::path(get, path = "/api/sessions/{id}/messages", tag = "messages",
    params(("id" = String, Path, description = "Session id"), ListQuery),
    responses((status = 200, body = MessagePage),
        (status = 400, description = "`invalid_parameter` (filter, limit or cursor), `invalid_phone_number`, `invalid_recipient`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<MessagePage>, ApiError> {
    let bad = |what: &str| ApiError::InvalidParameter(what.to_owned());
    if let Some(d) = &query.direction
        && d != "in"
        && d != "out"
    {
        return Err(bad("direction must be `in` or `out`"));
    }
    if let Some(s) = &query.status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(bad(
            "status must be one of queued, pending, sent, delivered, read, played, failed, received",
        ));
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad("limit must be 1-500"));
    }
    let cursor = query
        .cursor
        .as_deref()
        .map(|c| parse_cursor(c).ok_or_else(|| bad("cursor is not a next_cursor of this list")))
        .transpose()?;
    let chat = query
        .chat
        .as_deref()
        .map(|c| {
            parse_recipient(c, state.config().default_country_code.as_deref())
                .map(|j| j.to_string())
        })
        .transpose()?;
    let filter = Filter {
        chat,
        direction: query.direction,
        status: query.status,
        since: query.since,
        until: query.until,
    };
    let db = state.db().clone();
    let id = session.id.clone();
    let (records, next_cursor) =
        tokio::task::spawn_blocking(move || super::list(&db, &id, &filter, cursor, limit))
            .await
            .map_err(ApiError::internal)??;
    Ok(Json(MessagePage {
        messages: records.into_iter().map(MessageStatus::from).collect(),
        next_cursor,
    }))
}

/// Messages per UTC day: accepted, sent, delivered, read, failed, received.
#[utoipa::path(get, path = "/api/sessions/{id}/messages/stats", tag = "messages",
    params(("id" = String, Path, description = "Session id"), StatsQuery),
    responses((status = 200, body = MessageStats),
        (status = 400, description = "`invalid_parameter`: a day is not a `YYYY-MM-DD` date", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn stats(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> Result<Json<MessageStats>, ApiError> {
    const DAY: u64 = 86_400_000;
    let day = |s: &str| {
        parse_day(s).ok_or_else(|| ApiError::InvalidParameter("days are YYYY-MM-DD".to_owned()))
    };
    let to = match &query.to {
        Some(t) => day(t)?,
        None => day(&day_of(now_ms()))?,
    };
    let from = match &query.from {
        Some(f) => day(f)?,
        None => to.saturating_sub(29 * DAY),
    };
    // A range longer than MAX_DAYS keeps its last MAX_DAYS days; `from` after `to` is an
    // empty range (no days, zero totals). Neither is refused: both are well-formed queries
    // (two parameters' relation that a schema cannot state), answered as documented.
    let from = from.max(to.saturating_sub((MAX_DAYS - 1) * DAY));
    let (days, total) = super::stats(state.db(), &session.id, from, to)?;
    Ok(Json(MessageStats {
        days: days
            .into_iter()
            .map(|(d, s)| DayCounters::of(d, s))
            .collect(),
        total,
    }))
}

/// The static `type` of a stored record's kind.
fn static_kind(kind: &str) -> &'static str {
    match kind {
        "text" => "text",
        "location" => "location",
        "contact" => "contact",
        "image" => "image",
        "video" => "video",
        "audio" => "audio",
        "document" => "document",
        "sticker" => "sticker",
        _ => "other",
    }
}

/// Marker of a retry in progress in `retried_as` (claims the failed message).
const RETRYING: &str = "";

/// Sets `retried_as` of `session`'s message `id` to `to` when it is `from`; true if it was.
fn swap_retried_as(
    state: &AppState,
    session: &str,
    id: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<bool, ApiError> {
    let mut swapped = false;
    state
        .db()
        .messages
        .update_and_fetch(key2(session, id), |old| {
            let old = old?;
            let Ok(mut record) = serde_json::from_slice::<MessageRecord>(old) else {
                return Some(old.to_vec());
            };
            if record.retried_as.as_deref() != from {
                return Some(old.to_vec());
            }
            record.retried_as = to.map(str::to_owned);
            swapped = true;
            Some(encode(&record))
        })
        .map_err(crate::db::DbError::from)?;
    Ok(swapped)
}

/// Send a failed message again, as a new message.
///
/// Only a `failed` message sent through the API that kept its content (not an OTP, not a
/// received message) can be retried, and once: the retry is a new message (new id, the
/// usual status resource, `retry_of` naming the failed one, whose `retried_as` names it),
/// sent to the same chat with the same content and subject to the send limits. If the
/// failed message did reach WhatsApp after all (a lost ack), the recipient gets it twice.
#[utoipa::path(post, path = "/api/sessions/{id}/messages/{message_id}/retry", tag = "messages",
    params(("id" = String, Path, description = "Session id"), ("message_id" = String, Path, description = "Id of the failed message")),
    responses((status = 201, body = MessageStatus),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "`session_not_found`, `message_not_found`, `group_not_found`", body = ErrorBody),
        (status = 409, description = "`message_not_retryable` (not failed, already retried, no content kept, received), `session_not_connected`", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, description = "A send limit refused it: `send_rate_limited`, `recipient_rate_limited` or `daily_quota_exceeded`, with `Retry-After`", body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn retry(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiPath((_, message_id)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<MessageStatus>), ApiError> {
    let key = key2(&session.id, &message_id);
    let record: MessageRecord =
        ServerDb::get(&state.db().messages, &key, "message")?.ok_or(ApiError::MessageNotFound)?;
    if record.direction != "out" || record.status != "failed" {
        return Err(ApiError::NotRetryable(
            "only a failed sent message can be retried",
        ));
    }
    if record.retried_as.is_some() {
        return Err(ApiError::NotRetryable(
            "it was already retried (see retried_as)",
        ));
    }
    let message = super::decode_content(&record).ok_or(ApiError::NotRetryable(
        "its content was not kept (OTP codes never are)",
    ))?;
    let to: Jid = record
        .to
        .parse()
        .map_err(|_| ApiError::internal("a stored recipient does not parse"))?;
    let client = session.connected_client()?;
    if !swap_retried_as(&state, &session.id, &message_id, None, Some(RETRYING))? {
        return Err(ApiError::NotRetryable("it is being retried already"));
    }
    let kind = static_kind(&record.kind);
    let content = Outgoing::Stored {
        kind,
        message: Box::new(message),
    };
    let new_id = match messaging::send(&state, &session, &client, &to, &content, kind).await {
        Ok(sent) => sent.id,
        Err(ApiError::SendFailed { message_id, inner }) => {
            link(&state, &session.id, &record.id, &message_id)?;
            return Err(ApiError::SendFailed { message_id, inner });
        }
        Err(e) => {
            // Nothing was sent (refused by a limit, not connected): the message can be
            // retried later.
            swap_retried_as(&state, &session.id, &record.id, Some(RETRYING), None)?;
            return Err(e);
        }
    };
    let new = link(&state, &session.id, &record.id, &new_id)?;
    Ok((StatusCode::CREATED, Json(MessageStatus::from(new))))
}

/// Links the failed message `old` and its retry `new` both ways (and copies the download
/// reference of a media message); returns the retry's record.
fn link(state: &AppState, session: &str, old: &str, new: &str) -> Result<MessageRecord, ApiError> {
    let db = state.db();
    swap_retried_as(state, session, old, Some(RETRYING), Some(new))?;
    let key = key2(session, new);
    let mut record: MessageRecord =
        ServerDb::get(&db.messages, &key, "message")?.ok_or(ApiError::MessageNotFound)?;
    record.retry_of = Some(old.to_owned());
    ServerDb::put(&db.messages, &key, &record)?;
    if let Some(media) = db
        .media
        .get(key2(session, old))
        .map_err(crate::db::DbError::from)?
    {
        db.media
            .insert(key2(session, new), media)
            .map_err(crate::db::DbError::from)?;
    }
    Ok(record)
}

/// Delete a sent message for everyone: sends a revoke (protocol message REVOKE with the
/// message's key, whatsmeow `BuildRevoke`) to the message's chat. Only messages this
/// session sent can be revoked (409 `message_not_revocable` otherwise); the log keeps the
/// record.
#[utoipa::path(delete, path = "/api/sessions/{id}/messages/{message_id}", tag = "messages",
    params(("id" = String, Path, description = "Session id"), ("message_id" = String, Path, description = "Message id")),
    responses(
        (status = 204, description = "The revoke was sent"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`message_not_revocable` (a received message), or the session is not connected", body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn delete_for_everyone(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiPath((_, message_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let record = ServerDb::get::<MessageRecord>(
        &state.db().messages,
        key2(&session.id, &message_id),
        "message",
    )?
    .ok_or(ApiError::MessageNotFound)?;
    if record.direction != "out" {
        return Err(ApiError::MessageNotRevocable);
    }
    let chat: wa_engine::Jid = record
        .to
        .parse()
        .map_err(|_| ApiError::MessageNotRevocable)?;
    let target = wa_engine::message::rich::TargetKey {
        chat,
        id: message_id,
        from_me: true,
        sender: None,
    };
    session.connected_client()?.revoke_message(&target).await?;
    Ok(StatusCode::NO_CONTENT)
}
