//! Operations: liveness, readiness, Prometheus metrics, the OpenAPI spec and its docs page.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;

/// Liveness and readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok` or `ready`.
    status: &'static str,
    /// Sessions held.
    #[serde(skip_serializing_if = "Option::is_none")]
    sessions: Option<usize>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
pub(crate) async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        sessions: None,
    })
}

/// Readiness: started (database open, sessions restored) and not shutting down.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Starting or shutting down", body = crate::error::ErrorBody)))]
pub(crate) async fn ready(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    if !state.is_ready() {
        return Err(ApiError::ShuttingDown);
    }
    Ok(Json(Health {
        status: "ready",
        sessions: Some(state.sessions().len()),
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
pub(crate) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::spec_json(),
    )
        .into_response()
}

/// A self-contained docs page rendering `/openapi.json` (no CDN: works offline).
#[utoipa::path(get, path = "/docs", tag = "operations",
    responses((status = 200, description = "HTML docs page", content_type = "text/html", body = String)))]
pub(crate) async fn docs() -> Html<&'static str> {
    Html(include_str!("../../assets/docs.html"))
}
