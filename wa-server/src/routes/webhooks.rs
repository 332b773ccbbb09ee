//! `/api/sessions/{id}/webhooks`: register, list, remove, stats, dead letters.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::sessions::{CreatedWebhook, MAX_WEBHOOKS};
use super::{ApiJson, ApiPath, AuthorizedSession};
use crate::auth::random_b64;
use crate::db::{WebhookRecord, now_ms};
use crate::error::{ApiError, ErrorBody};
use crate::events::is_event_type;
use crate::state::AppState;
use crate::webhook;

/// A webhook to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewWebhook {
    /// Absolute `http` or `https` URL receiving `POST`s. Non-public targets (loopback,
    /// private, link-local, CGNAT, unique-local, ... IPv4 and IPv6) are refused with 400
    /// `target_not_allowed` (IP literals and `localhost` here; names that resolve only to
    /// such addresses at delivery) unless the server runs with `--allow-private-targets`
    /// or `--allowed-target-cidrs`. Redirects are not followed.
    #[schema(
        format = "uri",
        max_length = 2048,
        pattern = "^https?://[A-Za-z0-9]([A-Za-z0-9.-]{0,252})(:[1-9][0-9]{0,3})?([/?#][!-~]*)?$"
    )]
    url: String,
    /// Event types to deliver (`qr`, `pairing_code`, `connection`, `message`,
    /// `message_status`, `message_undecryptable`, `logged_out`, or `*`); empty or absent = all.
    #[serde(default)]
    #[schema(value_type = Vec<crate::api_types::HookEventName>, max_items = 8)]
    events: Vec<String>,
    /// Signing secret (16-256 characters); generated when absent.
    #[schema(min_length = 16, max_length = 256)]
    secret: Option<String>,
}

/// A registered webhook (without its secret).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebhookInfo {
    /// Webhook id.
    id: String,
    /// Target URL.
    url: String,
    /// Event filter (empty = all).
    events: Vec<String>,
    /// Unix ms.
    created_at: u64,
}

impl WebhookInfo {
    pub(crate) fn of(hook: &WebhookRecord) -> Self {
        Self {
            id: hook.id.clone(),
            url: hook.url.clone(),
            events: hook.events.clone(),
            created_at: hook.created_at,
        }
    }
}

/// Delivery statistics of one webhook.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebhookStats {
    /// Webhook id (or the id of a removed webhook with queued deliveries).
    id: String,
    /// Target URL, if the webhook still exists.
    url: Option<String>,
    /// Deliveries acknowledged with a 2xx.
    delivered: u64,
    /// Deliveries waiting (first try or retry).
    pending: u64,
    /// Failed attempts so far (each retry counts).
    failed_attempts: u64,
    /// Deliveries given up on (in the dead-letter list).
    dead: u64,
    /// The last failure, e.g. `HTTP 500`.
    last_error: Option<String>,
    /// Unix ms of the last successful delivery.
    last_delivered_at: Option<u64>,
}

/// A delivery given up on.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeadLetter {
    /// Delivery id.
    delivery_id: u64,
    /// Webhook id.
    webhook_id: String,
    /// Event id.
    event_id: String,
    /// Tries made.
    attempts: u32,
    /// The last failure.
    last_error: Option<String>,
    /// Unix ms.
    created_at: u64,
    /// The event envelope.
    #[schema(value_type = Object)]
    event: serde_json::Value,
}

/// Answer of a dead-letter retry.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Requeued {
    /// Deliveries moved back into the outbox.
    requeued: usize,
}

/// Validates a new webhook and gives it an id and a secret.
///
/// # Errors
/// [`ApiError::InvalidWebhookUrl`], [`ApiError::WebhookHostNotAllowed`],
/// [`ApiError::TargetNotAllowed`] (a non-public IP literal or `localhost`),
/// [`ApiError::InvalidBody`] for an unknown event type or a bad secret.
pub(crate) fn validate_webhook(
    state: &AppState,
    hook: NewWebhook,
) -> Result<WebhookRecord, ApiError> {
    if hook.url.len() > 2048 {
        return Err(ApiError::InvalidWebhookUrl("longer than 2048 characters"));
    }
    let url = reqwest::Url::parse(&hook.url)
        .map_err(|_| ApiError::InvalidWebhookUrl("not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::InvalidWebhookUrl("scheme must be http or https"));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or(ApiError::InvalidWebhookUrl("no host"))?;
    if let Some(allowed) = &state.config().webhooks.allowed_hosts
        && !allowed
            .iter()
            .any(|a| a.eq_ignore_ascii_case(host.trim_matches(['[', ']'])))
    {
        return Err(ApiError::WebhookHostNotAllowed);
    }
    // IP literals and `localhost` now; names are checked each time they resolve.
    state.target_guard().check_url(&url)?;
    if let Some(bad) = hook.events.iter().find(|e| !is_event_type(e)) {
        let shown: String = bad.chars().take(40).collect();
        return Err(ApiError::InvalidBody(format!(
            "unknown event type {shown:?}"
        )));
    }
    let secret = match hook.secret {
        Some(s) if (16..=256).contains(&s.chars().count()) => s,
        Some(_) => {
            return Err(ApiError::InvalidBody(
                "secret must be 16-256 characters".to_owned(),
            ));
        }
        None => random_b64(32),
    };
    let mut events = hook.events;
    events.sort();
    events.dedup();
    Ok(WebhookRecord {
        id: format!("wh_{}", hex::encode(rand::random::<[u8; 6]>())),
        url: url.to_string(),
        events,
        secret,
        created_at: now_ms(),
    })
}

/// List a session's webhooks.
#[utoipa::path(get, path = "/api/sessions/{id}/webhooks", tag = "webhooks",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = Vec<WebhookInfo>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn list(
    AuthorizedSession(session): AuthorizedSession,
) -> Result<Json<Vec<WebhookInfo>>, ApiError> {
    Ok(Json(
        session
            .record()
            .webhooks
            .iter()
            .map(WebhookInfo::of)
            .collect(),
    ))
}

/// Register a webhook. Its secret is returned once.
#[utoipa::path(post, path = "/api/sessions/{id}/webhooks", tag = "webhooks",
    params(("id" = String, Path, description = "Session id")),
    request_body = NewWebhook,
    responses((status = 201, body = CreatedWebhook),
        (status = 400, description = "`invalid_webhook_url`, `webhook_host_not_allowed`, `target_not_allowed` \
            (a non-public IP literal or `localhost`; `allowed_by` names the flag that allows it)", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn add(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<NewWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    let hook = validate_webhook(&state, body)?;
    let mut record = session.record();
    if record.webhooks.len() >= MAX_WEBHOOKS {
        return Err(ApiError::InvalidBody(format!(
            "at most {MAX_WEBHOOKS} webhooks"
        )));
    }
    let created = CreatedWebhook::of(&hook);
    record.webhooks.push(hook);
    state.save_record(&session, record).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Remove a webhook; its queued deliveries are dropped.
#[utoipa::path(delete, path = "/api/sessions/{id}/webhooks/{webhook_id}", tag = "webhooks",
    params(("id" = String, Path, description = "Session id"), ("webhook_id" = String, Path, description = "Webhook id")),
    responses((status = 204, description = "Removed"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn remove(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiPath((_, hook_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let mut record = session.record();
    let before = record.webhooks.len();
    record.webhooks.retain(|h| h.id != hook_id);
    if record.webhooks.len() == before {
        return Err(ApiError::WebhookNotFound);
    }
    state.save_record(&session, record).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delivery statistics per webhook: delivered, pending, failed attempts, dead, last error.
#[utoipa::path(get, path = "/api/sessions/{id}/webhooks/stats", tag = "webhooks",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = Vec<WebhookStats>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn stats(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
) -> Result<Json<Vec<WebhookStats>>, ApiError> {
    let db = state.db();
    let pending = webhook::pending(db, &session.id)?;
    let mut ids: Vec<(String, Option<String>)> = session
        .record()
        .webhooks
        .iter()
        .map(|h| (h.id.clone(), Some(h.url.clone())))
        .collect();
    for d in &pending {
        if !ids.iter().any(|(i, _)| *i == d.hook_id) {
            ids.push((d.hook_id.clone(), None));
        }
    }
    let mut out = Vec::new();
    for (hook_id, url) in ids {
        let s = webhook::stats(db, &session.id, &hook_id)?;
        out.push(WebhookStats {
            pending: pending.iter().filter(|d| d.hook_id == hook_id).count() as u64,
            id: hook_id,
            url,
            delivered: s.delivered,
            failed_attempts: s.failed_attempts,
            dead: s.dead,
            last_error: s.last_error,
            last_delivered_at: s.last_delivered_at,
        });
    }
    Ok(Json(out))
}

/// Deliveries given up on after the maximum number of tries.
#[utoipa::path(get, path = "/api/sessions/{id}/webhooks/dead", tag = "webhooks",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = Vec<DeadLetter>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn dead(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
) -> Result<Json<Vec<DeadLetter>>, ApiError> {
    let letters = webhook::dead(state.db(), &session.id)?
        .into_iter()
        .map(|d| DeadLetter {
            delivery_id: d.id,
            webhook_id: d.hook_id,
            event_id: d.event_id,
            attempts: d.attempts,
            last_error: d.last_error,
            created_at: d.created_at,
            event: serde_json::from_str(&d.body).unwrap_or(serde_json::Value::Null),
        })
        .collect();
    Ok(Json(letters))
}

/// Move every dead delivery of the session back into the outbox.
#[utoipa::path(post, path = "/api/sessions/{id}/webhooks/dead/retry", tag = "webhooks",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = Requeued),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn retry_dead(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
) -> Result<Json<Requeued>, ApiError> {
    let requeued = webhook::requeue_dead(state.db(), &session.id).await?;
    state.outbox_notify().notify_one();
    Ok(Json(Requeued { requeued }))
}
