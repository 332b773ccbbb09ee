//! `/api/sessions`: create, list, get, restart, logout, delete, token rotation.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiJson, ApiPath, ApiQuery, AuthorizedSession, valid_session_id};
use crate::auth::{self, Caller};
use crate::db::{SessionRecord, WebhookRecord, now_ms};
use crate::error::{ApiError, ErrorBody};
use crate::routes::webhooks::{NewWebhook, WebhookInfo, validate_webhook};
use crate::session::{Retry, Session, SessionStatus};
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
        Self {
            id: session.id.clone(),
            status: live.status,
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

/// `DELETE /api/sessions/{id}` options.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeleteQuery {
    /// Unlink the device from the phone first (default true).
    logout: Option<bool>,
}

/// List sessions (admin).
#[utoipa::path(get, path = "/api/sessions", tag = "sessions",
    responses(
        (status = 200, body = Vec<SessionInfo>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<SessionInfo>>, ApiError> {
    caller.require_admin()?;
    Ok(Json(
        state
            .sessions()
            .iter()
            .map(|s| SessionInfo::of(s))
            .collect(),
    ))
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
    let (token, token_hash) = auth::new_session_token(&id);
    let record = SessionRecord {
        id,
        created_at: now_ms(),
        token_hash,
        webhooks,
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
