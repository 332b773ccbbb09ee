//! The WAHA dialect (`--waha`, base path `/waha` by default): WAHA's HTTP API
//! (`devlikeapro/waha-docs` `static/swagger/openapi.json` 2026.7.1, see
//! `shared/compat/waha.md`) mapped onto the native services.
//!
//! - Auth: `X-Api-Key` (or `Authorization: Bearer`) with the server's API key; a session
//!   token opens its own session's routes only ([`crate::Caller`]).
//! - Sessions ([`sessions`]): WAHA's session name is the native session id; WAHA statuses
//!   are mapped from ours ([`waha_status`]).
//! - Pairing ([`pairing`]): the QR in WAHA's three forms and pairing codes.
//! - Sending ([`send`]): `POST /api/send*` with `session` in the body, through
//!   [`crate::messaging::send`] (so the send limits, the message log and the message status
//!   resource are the native ones); the answer is WAHA's `WAMessage`.
//! - Webhooks ([`hooks`]): `config.webhooks[]` of a session, delivered by the native outbox
//!   in WAHA's envelope with its HMAC-SHA512 headers.
//!
//! Errors are WAHA's (NestJS) shape `{statusCode, message, error}` plus the native stable
//! code in `code` ([`WahaError`]).

pub(crate) mod hooks;
pub(crate) mod pairing;
pub(crate) mod send;
pub(crate) mod sessions;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::session::SessionStatus;
use crate::state::AppState;

/// The WAHA routes, relative to the dialect's base path.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/sessions", get(sessions::list).post(sessions::create))
        .route(
            "/api/sessions/{session}",
            get(sessions::get)
                .put(sessions::update)
                .delete(sessions::delete),
        )
        .route("/api/sessions/{session}/start", post(sessions::start))
        .route("/api/sessions/{session}/stop", post(sessions::stop))
        .route("/api/sessions/{session}/logout", post(sessions::logout))
        .route("/api/sessions/{session}/restart", post(sessions::restart))
        .route("/api/sessions/{session}/me", get(sessions::me))
        .route("/api/{session}/auth/qr", get(pairing::qr))
        .route(
            "/api/{session}/auth/request-code",
            post(pairing::request_code),
        )
        .route("/api/contacts/check-exists", get(send::check_exists))
        .route("/api/sendText", post(send::send_text))
        .route("/api/sendLocation", post(send::send_location))
        .route("/api/sendContactVcard", post(send::send_contact_vcard))
        .route("/api/sendImage", post(send::send_image))
        .route("/api/sendFile", post(send::send_file))
        .route("/api/sendVoice", post(send::send_voice))
        .route("/api/sendVideo", post(send::send_video))
        .route("/api/sendPoll", post(send::send_poll))
        .route("/api/sendSeen", post(send::send_seen))
        .route("/api/startTyping", post(send::start_typing))
        .route("/api/stopTyping", post(send::stop_typing))
        .route("/api/reaction", put(send::reaction))
}

/// WAHA's session status, mapped from ours: `connecting` → `STARTING`, `qr` and
/// `pairing_code` → `SCAN_QR_CODE`, `connected` → `WORKING`, `logged_out` → `STOPPED`
/// (unlinked; `start` pairs again), `stopped` → `FAILED` (QR codes ran out, replaced by
/// another connection, a fatal error; `restart` resumes).
pub(crate) fn waha_status(status: SessionStatus) -> &'static str {
    match status {
        SessionStatus::Connecting => "STARTING",
        SessionStatus::Qr | SessionStatus::PairingCode => "SCAN_QR_CODE",
        SessionStatus::Connected => "WORKING",
        SessionStatus::LoggedOut => "STOPPED",
        SessionStatus::Stopped => "FAILED",
    }
}

/// A WAHA error answer: `{statusCode, message, error, code}` (NestJS's shape, which WAHA
/// uses, with the native stable `code` added).
#[derive(Debug)]
pub(crate) struct WahaError {
    status: StatusCode,
    message: String,
    code: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    status_code: u16,
    message: &'a str,
    error: &'a str,
    code: &'a str,
}

impl WahaError {
    /// A 400 for a body or query WAHA's schema rejects.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            code: "invalid_body",
        }
    }

    /// A 501 for a WAHA feature wa-server does not offer (`not_supported`).
    pub(crate) fn not_supported(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_IMPLEMENTED,
            message: message.into(),
            code: "not_supported",
        }
    }
}

impl From<ApiError> for WahaError {
    fn from(e: ApiError) -> Self {
        let e = match e {
            ApiError::SendFailed { inner, .. } => *inner,
            other => other,
        };
        if let ApiError::Internal(detail) = &e {
            tracing::error!(%detail, "waha: internal error");
        }
        Self {
            status: e.status(),
            message: e.to_string(),
            code: e.code(),
        }
    }
}

impl IntoResponse for WahaError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            status_code: self.status.as_u16(),
            message: &self.message,
            error: self.status.canonical_reason().unwrap_or("Error"),
            code: self.code,
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// The caller, authenticated by `X-Api-Key` (or a bearer token); rejections are
/// [`WahaError`]s (401 without or with a wrong key).
#[derive(Debug)]
pub(crate) struct Key(pub(crate) Caller);

impl FromRequestParts<AppState> for Key {
    type Rejection = WahaError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WahaError> {
        Caller::from_request_parts(parts, state)
            .await
            .map(Self)
            .map_err(WahaError::from)
    }
}

impl Key {
    /// The session `name`, if this caller may use it.
    ///
    /// # Errors
    /// 403 for another session's token, 404 for an unknown session.
    pub(crate) fn session(
        &self,
        state: &AppState,
        name: &str,
    ) -> Result<std::sync::Arc<crate::session::Session>, WahaError> {
        self.0.require_session(name)?;
        Ok(state.session(name)?)
    }
}

/// Parses a JSON body (unknown fields are ignored, as WAHA does).
///
/// # Errors
/// 400 naming the serde error.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, WahaError> {
    if body.is_empty() {
        return serde_json::from_slice(b"{}")
            .map_err(|e| WahaError::bad_request(format!("invalid body: {e}")));
    }
    serde_json::from_slice(body).map_err(|e| WahaError::bad_request(format!("invalid body: {e}")))
}

/// A WAHA chat id (`<digits>@c.us`, `<id>@g.us`, `<id>@lid`, or bare digits) as an engine
/// JID: `@c.us` is WhatsApp's `@s.whatsapp.net`.
///
/// # Errors
/// 400 for anything that is not a user or group.
pub(crate) fn parse_chat_id(state: &AppState, chat_id: &str) -> Result<wa_engine::Jid, WahaError> {
    let native = match chat_id.strip_suffix("@c.us") {
        Some(user) => format!("{user}@s.whatsapp.net"),
        None => chat_id.to_owned(),
    };
    Ok(crate::phone::parse_recipient(
        &native,
        state.config().default_country_code.as_deref(),
    )?)
}

/// An engine JID as WAHA writes it: users as `<user>@c.us` (device part dropped), others
/// unchanged.
pub(crate) fn chat_id(jid: &str) -> String {
    match jid.split_once('@') {
        Some((user, "s.whatsapp.net")) => {
            format!("{}@c.us", user.split(':').next().unwrap_or(user))
        }
        _ => jid.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_onto_waha_names() {
        assert_eq!(waha_status(SessionStatus::Connecting), "STARTING");
        assert_eq!(waha_status(SessionStatus::Qr), "SCAN_QR_CODE");
        assert_eq!(waha_status(SessionStatus::PairingCode), "SCAN_QR_CODE");
        assert_eq!(waha_status(SessionStatus::Connected), "WORKING");
        assert_eq!(waha_status(SessionStatus::LoggedOut), "STOPPED");
        assert_eq!(waha_status(SessionStatus::Stopped), "FAILED");
    }

    #[test]
    fn chat_ids_use_c_us() {
        assert_eq!(chat_id("15550001111:3@s.whatsapp.net"), "15550001111@c.us");
        assert_eq!(chat_id("15550001111@s.whatsapp.net"), "15550001111@c.us");
        assert_eq!(chat_id("1203630@g.us"), "1203630@g.us");
    }
}
