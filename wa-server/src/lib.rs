//! wa-server: a self-hosted HTTP gateway over wa-engine — sessions (one linked device
//! each), QR pairing (JSON, PNG, SVG and a live pairing page), messages, OTP, durable signed
//! webhooks, SSE events, Prometheus metrics and an OpenAPI document.
//!
//! ```no_run
//! # #[cfg(feature = "sandbox")]
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use wa_server::{AppState, HttpListener, ServerConfig, Upstream, app};
//! let mut config = ServerConfig::new("./wa-data");
//! config.upstream = Upstream::Sandbox; // offline: an embedded simulated WhatsApp server
//! let state = AppState::start(config).await?;
//! let listener = HttpListener::new(tokio::net::TcpListener::bind("127.0.0.1:8080").await?);
//! axum::serve(listener, app(state.clone()))
//!     .with_graceful_shutdown(state.shutting_down())
//!     .await?;
//! state.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The embedded sandbox (`Upstream::Sandbox`, `--sandbox`) is the `sandbox` feature, on by
//! default; without it the sandbox routes answer `sandbox_disabled`.
//!
//! Routes are listed in the OpenAPI document (`GET /openapi.json`, rendered at `/docs`).
//! Every error is `{"error": {"code", "message"}}` with a stable code ([`ApiError::code`]).

mod api_types;
mod auth;
mod config;
mod db;
mod dialect;
pub mod doctor;
mod egress;
mod error;
mod error_page;
mod events;
mod fanout;
mod fsmode;
mod i18n;
mod incoming;
mod limits;
mod listener;
mod media;
mod messaging;
mod metrics;
mod msglog;
mod notices;
mod openapi;
mod otp;
mod phone;
mod render;
mod routes;
#[cfg(feature = "sandbox")]
mod sandbox_state;
mod sendqueue;
mod session;
mod session_meta;
mod state;
mod sync_events;
mod webhook;

use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

pub use auth::Caller;
pub use config::{
    DEFAULT_QR_MAX_REFRESHES, DEFAULT_START_JITTER, DEFAULT_START_RATE, DEFAULT_STORE_CACHE_BYTES,
    DialectSettings, EgressSettings, MIN_API_KEY_DISTINCT, MIN_API_KEY_LEN, MediaSettings,
    MessageLogSettings, MetricsSettings, OtpConfig, Secret, SendLimitSettings, ServerConfig,
    StartPacing, Upstream, WebhookSettings,
};
pub use db::DbError;
pub use egress::{ALLOW_ENV, ALLOW_FLAG, BlockedTarget, CIDR_FLAG, classify};
pub use error::MediaApiError;
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use events::{EVENT_TYPES, Envelope};
pub use ipnet::IpNet;
pub use limits::SendLimit;
pub use listener::{GuardedIo, HttpListener};
pub use phone::{PhoneNumber, parse_recipient, valid_country_code};
pub use render::{RenderError, qr_png, qr_svg};
#[cfg(feature = "sandbox")]
pub use sandbox_state::SandboxStateError;
pub use session::SessionStatus;
pub use session_meta::Branding;
pub use state::{AppState, StartError};
pub use webhook::signature as webhook_signature;

/// The HTTP application: every route, the body size limit, JSON errors for everything
/// (including unknown routes and the body limit; HTML pages instead for a browser opening
/// a page under `/sessions/`), request logging without query strings. Serve it on an
/// [`HttpListener`] so that an over-long URI gets the JSON error too.
pub fn app(state: AppState) -> Router {
    let (router, _) = routes::router(state.config()).split_for_parts();
    dialect::mount(router, state.config())
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::map_response(json_errors))
        .layer(middleware::from_fn(error_page::html_errors))
        .layer(middleware::from_fn(log_requests))
        .with_state(state)
}

/// Turns any error response that is not already our JSON (e.g. the body-limit layer's 413)
/// into `{"error": {...}}`.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        StatusCode::NOT_FOUND => ApiError::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
        StatusCode::UNPROCESSABLE_ENTITY => ApiError::InvalidBody("unprocessable".to_owned()),
        s if s.is_client_error() => {
            ApiError::InvalidParameter(s.canonical_reason().unwrap_or("bad request").to_owned())
        }
        s => ApiError::Internal(format!("unexpected {s} response")),
    };
    let mut out = error.into_response();
    *out.status_mut() = status;
    out
}

/// Logs method, path (never the query: it may carry a link token), status and latency.
async fn log_requests(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::debug!(
        %method,
        %path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}
