//! `/api/sessions`: create, list (paged, filtered), get, update (PUT/PATCH: name, metadata,
//! settings), restart, logout, forced QR, delete, token rotation.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::{ApiJson, ApiPath, ApiQuery, AuthorizedSession, valid_session_id};
use crate::auth::{self, Caller};
use crate::db::{SessionRecord, WebhookRecord, now_ms};
use crate::error::{ApiError, ErrorBody};
use crate::routes::webhooks::{NewWebhook, WebhookInfo, validate_webhook};
use crate::session::{Counters, Retry, Session, SessionStatus};
use crate::session_meta::{
    SessionSettings, SettingsPatch, present, validate_metadata, validate_name,
};
use crate::state::AppState;

/// Most webhooks per session.
pub(crate) const MAX_WEBHOOKS: usize = 10;

/// `POST /api/sessions` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateSession {
    /// Session id, 1-64 of `A-Z a-z 0-9 _ -`; generated when absent.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    id: Option<String>,
    /// Webhooks to register with the session.
    #[serde(default)]
    #[schema(max_items = 10)]
    webhooks: Vec<NewWebhook>,
    /// Display name, 1-100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    name: Option<String>,
    /// Free-form operator data: a JSON object of at most 8 KiB (compact JSON).
    #[serde(default)]
    #[schema(value_type = Object)]
    metadata: Map<String, Value>,
    /// Behaviour and branding; absent fields take their defaults.
    #[serde(default)]
    settings: SessionSettings,
}

/// `PUT /api/sessions/{id}` body: replaces name, metadata and settings as a whole (absent =
/// none / empty / defaults).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplaceSession {
    /// Display name, 1-100 characters, no control characters; absent or `null` removes it.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    name: Option<String>,
    /// Free-form operator data (JSON object, at most 8 KiB).
    #[serde(default)]
    #[schema(value_type = Object)]
    metadata: Map<String, Value>,
    /// All settings (absent fields take their defaults).
    #[serde(default)]
    settings: SessionSettings,
}

/// `PATCH /api/sessions/{id}` body: each field present replaces the stored one; `settings`
/// is merged field by field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateSession {
    /// Display name, 1-100 characters; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$")]
    name: Option<Option<String>>,
    /// Replaces the metadata object as a whole (at most 8 KiB).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    metadata: Option<Map<String, Value>>,
    /// The settings to change.
    #[serde(default)]
    settings: Option<SettingsPatch>,
}

/// The own account of a paired session.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Me {
    /// Phone number, E.164 digits (`628123456789`).
    phone: String,
    /// Own device JID, e.g. `628123456789:12@s.whatsapp.net`.
    jid: String,
    /// Own LID (`...@lid`) once the server has assigned one (credentials).
    lid: Option<String>,
    /// Own push name: from pairing, then from app-state sync (`setting_pushName`).
    push_name: Option<String>,
}

/// Counters of a session since the server started.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionCounters {
    /// Messages sent successfully.
    messages_sent: u64,
    /// Sends that failed.
    messages_failed: u64,
    /// User-visible messages received (after `ignore_groups`).
    messages_received: u64,
    /// Failed connection attempts and lost connections.
    reconnects: u64,
    /// QR codes shown.
    qr_codes: u64,
}

impl SessionCounters {
    fn of(c: &Counters) -> Self {
        Self {
            messages_sent: Counters::read(&c.messages_sent),
            messages_failed: Counters::read(&c.messages_failed),
            messages_received: Counters::read(&c.messages_received),
            reconnects: Counters::read(&c.reconnects),
            qr_codes: Counters::read(&c.qr_codes),
        }
    }
}

/// A session as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionInfo {
    /// Session id.
    id: String,
    /// Current state.
    status: SessionStatus,
    /// Own JID once paired, e.g. `628123456789:12@s.whatsapp.net`.
    jid: Option<String>,
    /// Own push name, once known.
    push_name: Option<String>,
    /// Last connection error, if any.
    last_error: Option<String>,
    /// Unix ms.
    created_at: u64,
    /// Expiry of the current QR (unix ms) while `status` is `qr`.
    qr_expires_at: Option<u64>,
    /// The pairing code while `status` is `pairing_code`.
    pairing_code: Option<String>,
    /// Registered webhooks (secrets are never shown again).
    webhooks: Vec<WebhookInfo>,
    /// Present while the session cannot reach the WhatsApp server and retries (status
    /// `connecting`): attempts so far, the last failure, when it tries again.
    retry: Option<Retry>,
    /// Display name.
    name: Option<String>,
    /// Free-form operator data.
    #[schema(value_type = Object)]
    metadata: Map<String, Value>,
    /// Behaviour and branding.
    settings: SessionSettings,
    /// `status` is `connected`.
    is_connected: bool,
    /// The own account, once paired.
    me: Option<Me>,
    /// Counters since the server started.
    counters: SessionCounters,
    /// The send limits and their use today (`GET /api/sessions/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    limits: Option<crate::limits::LimitsView>,
}

impl SessionInfo {
    /// Adds the send limits and their current use.
    pub(crate) fn with_limits(mut self, state: &AppState) -> Result<Self, ApiError> {
        self.limits = Some(state.limits().view(
            &state.config().send_limits,
            state.db(),
            &self.id,
        )?);
        Ok(self)
    }

    pub(crate) fn of(session: &Session) -> Self {
        let live = session.live();
        let record = session.record();
        let me = live.jid.as_ref().map(|jid| Me {
            phone: jid.split(['@', ':']).next().unwrap_or_default().to_owned(),
            jid: jid.clone(),
            lid: live.lid.clone(),
            push_name: live.push_name.clone(),
        });
        Self {
            id: session.id.clone(),
            status: live.status,
            is_connected: live.status == SessionStatus::Connected,
            me,
            counters: SessionCounters::of(&session.counters),
            name: record.name.clone(),
            metadata: record.metadata.clone(),
            settings: record.settings.clone(),
            jid: live.jid,
            push_name: live.push_name,
            last_error: live.last_error,
            created_at: record.created_at,
            qr_expires_at: live.qr.map(|q| q.expires_at),
            pairing_code: live.pairing_code,
            webhooks: record.webhooks.iter().map(WebhookInfo::of).collect(),
            retry: live.retry,
            limits: None,
        }
    }
}

/// A webhook as created: the only time its secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedWebhook {
    /// Webhook id.
    pub(crate) id: String,
    /// Target URL.
    pub(crate) url: String,
    /// Event filter (empty = all).
    pub(crate) events: Vec<String>,
    /// HMAC-SHA256 key of the `x-wa-signature` header. Store it now.
    pub(crate) secret: String,
}

impl CreatedWebhook {
    pub(crate) fn of(hook: &WebhookRecord) -> Self {
        Self {
            id: hook.id.clone(),
            url: hook.url.clone(),
            events: hook.events.clone(),
            secret: hook.secret.clone(),
        }
    }
}

/// `POST /api/sessions` answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedSession {
    /// The session.
    session: SessionInfo,
    /// Bearer token for this session's routes only. Shown once; rotate with
    /// `POST /api/sessions/{id}/token`.
    token: String,
    /// The webhooks with their secrets (shown once).
    webhooks: Vec<CreatedWebhook>,
}

/// A new session token.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenResponse {
    /// Bearer token for this session's routes only. Shown once.
    token: String,
}

/// `GET /api/sessions` options.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Most sessions in the answer (1-1000, default 1000). When more follow, the answer
    /// has an `x-next-cursor` header: pass it as `cursor` for the next page.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `x-next-cursor` of the previous page (sessions come in id order, after this id).
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    cursor: Option<String>,
    /// Only sessions in this state.
    status: Option<SessionStatus>,
}

/// `POST /api/sessions/{id}/qr/force` options.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ForceQuery {
    /// How long to wait for the new QR, seconds (1-60, default 20).
    #[param(minimum = 1, maximum = 60)]
    wait_seconds: Option<u64>,
}

/// `DELETE /api/sessions/{id}` options.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeleteQuery {
    /// Unlink the device from the phone first (default true).
    logout: Option<bool>,
}

/// Most sessions in one page of the list.
const MAX_PAGE: usize = 1000;

/// List sessions (admin), in id order, optionally one `status` only, `limit` at a time:
/// when more follow, the `x-next-cursor` header holds the `cursor` of the next page.
#[utoipa::path(get, path = "/api/sessions", tag = "sessions",
    params(ListQuery),
    responses(
        (status = 200, body = Vec<SessionInfo>, headers(
            ("x-next-cursor" = String, description = "Present when more sessions follow: the `cursor` of the next page"))),
        (status = 400, description = "`invalid_parameter` (limit, cursor, status)", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<(HeaderMap, Json<Vec<SessionInfo>>), ApiError> {
    caller.require_admin()?;
    let limit = match query.limit {
        None => MAX_PAGE,
        Some(n) if (1..=1000).contains(&n) => usize::try_from(n).unwrap_or(MAX_PAGE),
        Some(_) => {
            return Err(ApiError::InvalidParameter(
                "limit must be 1-1000".to_owned(),
            ));
        }
    };
    if let Some(cursor) = &query.cursor
        && !valid_session_id(cursor)
    {
        return Err(ApiError::InvalidParameter(
            "cursor is not a session id".to_owned(),
        ));
    }
    // `sessions()` is in id order (a BTreeMap).
    let mut matching = state
        .sessions()
        .into_iter()
        .filter(|s| query.cursor.as_deref().is_none_or(|c| s.id.as_str() > c))
        .filter(|s| query.status.is_none_or(|st| s.live().status == st));
    let page: Vec<SessionInfo> = matching
        .by_ref()
        .take(limit)
        .map(|s| SessionInfo::of(&s))
        .collect();
    let mut headers = HeaderMap::new();
    if matching.next().is_some()
        && let Some(last) = page.last()
        && let Ok(v) = HeaderValue::from_str(&last.id)
    {
        headers.insert("x-next-cursor", v);
    }
    Ok((headers, Json(page)))
}

/// Create a session (admin). It starts connecting at once: watch `status` go to `qr`, then
/// fetch the QR or open the pairing page.
#[utoipa::path(post, path = "/api/sessions", tag = "sessions",
    request_body = CreateSession,
    responses(
        (status = 201, body = CreatedSession),
        (status = 400, description = "`invalid_session_id`, or a webhook's `invalid_webhook_url`, \
            `webhook_host_not_allowed`, `target_not_allowed` (a non-public target; `allowed_by` names the flag)", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateSession>,
) -> Result<(StatusCode, Json<CreatedSession>), ApiError> {
    caller.require_admin()?;
    let id = match body.id {
        Some(id) if valid_session_id(&id) => id,
        Some(_) => return Err(ApiError::InvalidSessionId),
        None => format!("s_{}", hex::encode(rand::random::<[u8; 6]>())),
    };
    if body.webhooks.len() > MAX_WEBHOOKS {
        return Err(ApiError::InvalidBody(format!(
            "at most {MAX_WEBHOOKS} webhooks"
        )));
    }
    let webhooks = body
        .webhooks
        .into_iter()
        .map(|h| validate_webhook(&state, h))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(name) = &body.name {
        validate_name(name)?;
    }
    validate_metadata(&body.metadata)?;
    body.settings.validate()?;
    let (token, token_hash) = auth::new_session_token(&id);
    let record = SessionRecord {
        id,
        created_at: now_ms(),
        token_hash,
        webhooks,
        name: body.name,
        metadata: body.metadata,
        settings: body.settings,
    };
    let created: Vec<CreatedWebhook> = record.webhooks.iter().map(CreatedWebhook::of).collect();
    let session = state.create_session(record).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedSession {
            session: SessionInfo::of(&session),
            token,
            webhooks: created,
        }),
    ))
}

/// Get a session, with its send limits and their use today (`limits`).
#[utoipa::path(get, path = "/api/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 200, body = SessionInfo),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn get(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
) -> Result<Json<SessionInfo>, ApiError> {
    Ok(Json(SessionInfo::of(&session).with_limits(&state)?))
}

/// Replace a session's name, metadata and settings (absent fields are cleared / reset to
/// their defaults). Webhooks and token are unchanged.
#[utoipa::path(put, path = "/api/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    request_body = ReplaceSession,
    responses(
        (status = 200, body = SessionInfo),
        (status = 400, description = "`invalid_parameter`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "`invalid_body`: name, metadata size, an unknown event type, branding", body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn replace(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<ReplaceSession>,
) -> Result<Json<SessionInfo>, ApiError> {
    if let Some(name) = &body.name {
        validate_name(name)?;
    }
    validate_metadata(&body.metadata)?;
    body.settings.validate()?;
    let mut record = session.record();
    record.name = body.name;
    record.metadata = body.metadata;
    record.settings = body.settings;
    state.save_record(&session, record).await?;
    Ok(Json(SessionInfo::of(&session)))
}

/// Change some of a session's name, metadata and settings (fields present replace the
/// stored ones; `settings` merges field by field).
#[utoipa::path(patch, path = "/api/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    request_body = UpdateSession,
    responses(
        (status = 200, body = SessionInfo),
        (status = 400, description = "`invalid_parameter`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "`invalid_body`: name, metadata size, an unknown event type, branding", body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn update(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<UpdateSession>,
) -> Result<Json<SessionInfo>, ApiError> {
    let mut record = session.record();
    if let Some(name) = body.name {
        if let Some(name) = &name {
            validate_name(name)?;
        }
        record.name = name;
    }
    if let Some(metadata) = body.metadata {
        validate_metadata(&metadata)?;
        record.metadata = metadata;
    }
    if let Some(patch) = body.settings {
        let settings = record.settings.patched(patch);
        settings.validate()?;
        record.settings = settings;
    }
    state.save_record(&session, record).await?;
    Ok(Json(SessionInfo::of(&session)))
}

/// Force a fresh QR (a CRM's "generate QR" button): a paired session is logged out first
/// (unlinked from the phone, credentials wiped), then the session restarts and the new QR
/// is returned as soon as it is shown. Waits at most `wait_seconds`.
#[utoipa::path(post, path = "/api/sessions/{id}/qr/force", tag = "pairing",
    params(("id" = String, Path, description = "Session id"), ForceQuery),
    responses(
        (status = 200, body = crate::routes::pair::QrResponse),
        (status = 400, description = "`invalid_parameter`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 504, description = "`upstream_timeout`: no QR within `wait_seconds` (the session keeps trying; see its `retry`)", body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn force_qr(
    AuthorizedSession(session): AuthorizedSession,
    ApiQuery(query): ApiQuery<ForceQuery>,
) -> Result<Json<crate::routes::pair::QrResponse>, ApiError> {
    let wait = match query.wait_seconds {
        None => 20,
        Some(w) if (1..=60).contains(&w) => w,
        Some(_) => {
            return Err(ApiError::InvalidParameter(
                "wait_seconds must be 1-60".to_owned(),
            ));
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let old = session.live().qr.map(|q| q.code);
    let mut restarted = false;
    let mut logged_out = false;
    loop {
        let live = session.live();
        match live.status {
            SessionStatus::Connected if !logged_out => {
                if let Some(client) = live.client {
                    client.logout().await?;
                }
                logged_out = true;
            }
            SessionStatus::Qr if restarted => {
                if let Some(qr) = live.qr.filter(|q| Some(&q.code) != old.as_ref()) {
                    return crate::routes::pair::qr_response(qr.code, qr.expires_at).map(Json);
                }
            }
            SessionStatus::Qr
            | SessionStatus::PairingCode
            | SessionStatus::LoggedOut
            | SessionStatus::Stopped
                if !restarted =>
            {
                session.restart();
                restarted = true;
            }
            _ => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::UpstreamTimeout);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Delete a session (admin): unlinks the device (unless `logout=false`), stops it and
/// removes its store, messages, OTPs and queued webhooks.
#[utoipa::path(delete, path = "/api/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "Session id"), DeleteQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    state
        .delete_session(&id, query.logout.unwrap_or(true))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Restart a session: close the connection and connect again with the stored credentials
/// (a paired session logs in without a QR; an unpaired or logged-out one shows a new QR).
#[utoipa::path(post, path = "/api/sessions/{id}/restart", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 202, body = SessionInfo),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn restart(
    AuthorizedSession(session): AuthorizedSession,
) -> Result<(StatusCode, Json<SessionInfo>), ApiError> {
    session.restart();
    Ok((StatusCode::ACCEPTED, Json(SessionInfo::of(&session))))
}

/// Log out: unlink this device from the phone and wipe its credentials. The session stays
/// (status `logged_out`); `restart` pairs it again.
#[utoipa::path(post, path = "/api/sessions/{id}/logout", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 200, body = SessionInfo),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn logout(
    AuthorizedSession(session): AuthorizedSession,
) -> Result<Json<SessionInfo>, ApiError> {
    let client = session.connected_client()?;
    client.logout().await?;
    // The supervisor records `logged_out` from the engine's event; wait briefly for it so
    // the answer shows the new state.
    for _ in 0..50 {
        if session.live().status == SessionStatus::LoggedOut {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(Json(SessionInfo::of(&session)))
}

/// Issue a new session token (admin); the old one stops working.
#[utoipa::path(post, path = "/api/sessions/{id}/token", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn rotate_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TokenResponse>, ApiError> {
    caller.require_admin()?;
    let session = state.session(&id)?;
    let (token, token_hash) = auth::new_session_token(&id);
    let mut record = session.record();
    record.token_hash = token_hash;
    state.save_record(&session, record).await?;
    Ok(Json(TokenResponse { token }))
}
