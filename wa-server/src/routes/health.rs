//! Operations: liveness, readiness, Prometheus metrics, the OpenAPI spec and its docs page.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiQuery;

use crate::error::ApiError;
use crate::state::AppState;

/// Liveness and readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok` (liveness), `ready`, or `degraded` (ready, but some sessions cannot reach the
    /// WhatsApp server and are retrying; see `degraded`).
    status: &'static str,
    /// Sessions held.
    #[serde(skip_serializing_if = "Option::is_none")]
    sessions: Option<usize>,
    /// Readiness: the sessions that cannot reach the WhatsApp server.
    #[serde(skip_serializing_if = "Option::is_none")]
    degraded: Option<Vec<DegradedSession>>,
}

/// A session whose connection attempts fail.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DegradedSession {
    /// Session id.
    id: String,
    /// Failed attempts in a row.
    attempts: u32,
    /// The last failure.
    reason: String,
    /// Unix ms of the first failure.
    since: u64,
    /// Unix ms of the next attempt (an upper bound for the engine's own reconnects).
    retry_at: u64,
}

/// Options of `/ready`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReadyQuery {
    /// Answer 503 `degraded` (instead of 200 with `status: degraded`) while any session
    /// cannot reach the WhatsApp server: for probes that should take the instance out of
    /// rotation then.
    strict: Option<bool>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
pub(crate) async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        sessions: None,
        degraded: None,
    })
}

/// Liveness at the path several existing clients call: the same answer as `/health`.
#[utoipa::path(get, path = "/api/health", tag = "operations",
    responses((status = 200, description = "Alive (as `/health`)", body = Health)))]
pub(crate) async fn api_health() -> Json<Health> {
    health().await
}

/// Readiness: started (database open, sessions restored) and not shutting down. Sessions
/// that cannot reach the WhatsApp server are listed in `degraded` (status `degraded`);
/// with `strict=true` they make it 503 `degraded`.
#[utoipa::path(get, path = "/ready", tag = "operations",
    params(ReadyQuery),
    responses(
        (status = 200, description = "Ready (`status` is `ready` or `degraded`)", body = Health),
        (status = 400, body = crate::error::ErrorBody),
        (status = 503, description = "Starting or shutting down (`shutting_down`), or with `strict=true` degraded (`degraded`)", body = crate::error::ErrorBody)))]
pub(crate) async fn ready(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ReadyQuery>,
) -> Result<Json<Health>, ApiError> {
    if !state.is_ready() {
        return Err(ApiError::ShuttingDown);
    }
    let sessions = state.sessions();
    let degraded: Vec<DegradedSession> = sessions
        .iter()
        .filter_map(|s| {
            s.live().retry.map(|r| DegradedSession {
                id: s.id.clone(),
                attempts: r.attempts,
                reason: r.reason,
                since: r.since,
                retry_at: r.retry_at,
            })
        })
        .collect();
    if query.strict == Some(true) && !degraded.is_empty() {
        return Err(ApiError::Degraded(degraded.len()));
    }
    Ok(Json(Health {
        status: if degraded.is_empty() {
            "ready"
        } else {
            "degraded"
        },
        sessions: Some(sessions.len()),
        degraded: Some(degraded),
    }))
}

/// Prometheus metrics (text format 0.0.4, encoded by `prometheus-client`): sessions by
/// state, messages sent/received/failed, webhook backlog, outcomes and latency, connection
/// retries (`wa_reconnects_total`, also against an unreachable upstream); per session
/// (`session` label, at most `--session-metrics-limit` sessions, the rest as `_other`; off
/// with `--no-session-metrics`): `wa_session_state`, `wa_session_messages_*_total`,
/// `wa_session_reconnects_total`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics", content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics().render(&state.gauges());
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        text,
    )
        .into_response()
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI document", content_type = "application/json", body = Object)))]
pub(crate) async fn openapi(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::served_spec_json(state.config()),
    )
        .into_response()
}

/// A self-contained docs page rendering `/openapi.json` (no CDN: works offline), with links
/// to the OpenAPI documents of the enabled dialects; `?spec=<path>` renders one of those
/// instead (a same-origin path).
#[utoipa::path(get, path = "/docs", tag = "operations",
    responses((status = 200, description = "HTML docs page", content_type = "text/html", body = String)))]
pub(crate) async fn docs(State(state): State<AppState>) -> Html<String> {
    let dialects = &state.config().dialects;
    let mut links = String::new();
    for (name, base) in [
        ("Evolution API v2", dialects.evolution.as_deref()),
        ("WAHA", dialects.waha.as_deref()),
    ] {
        // A dialect merged at the root has no document path of its own.
        if let Some(base) = base.and_then(crate::dialect::base_path) {
            let doc = format!("{base}/openapi.json");
            links.push_str(&format!(
                " · {name}: <a href=\"{doc}\">{doc}</a> (<a href=\"/docs?spec={doc}\">view</a>)"
            ));
        }
    }
    Html(include_str!("../../assets/docs.html").replace("<!--DIALECTS-->", &links))
}
