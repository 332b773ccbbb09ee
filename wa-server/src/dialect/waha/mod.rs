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
//! - Groups ([`groups`]): `/api/{session}/groups...` over the engine's group calls, as the
//!   native group routes make them.
//! - Chats, messages, contacts ([`chats`]): read from the native message log.
//! - `WAMessage` ([`message`]): one rendering for webhooks, send answers and listings.
//! - Webhooks ([`hooks`]): `config.webhooks[]` of a session, delivered by the native outbox
//!   in WAHA's envelope with its HMAC-SHA512 headers.
//! - The dialect's OpenAPI document ([`openapi`]): `GET <base>/openapi.json`.
//!
//! Errors are WAHA's (NestJS) shape `{statusCode, message, error}` plus the native stable
//! code in `code` ([`WahaError`]).

pub(crate) mod chats;
pub(crate) mod groups;
pub(crate) mod hooks;
pub(crate) mod message;
pub(crate) mod openapi;
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
        .route("/openapi.json", get(openapi::serve))
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
        .route(
            "/api/{session}/groups",
            post(groups::create).get(groups::list),
        )
        .route("/api/{session}/groups/count", get(groups::count))
        .route("/api/{session}/groups/refresh", post(groups::refresh))
        .route("/api/{session}/groups/join-info", get(groups::join_info))
        .route("/api/{session}/groups/join", post(groups::join))
        .route(
            "/api/{session}/groups/{id}",
            get(groups::get).delete(groups::delete),
        )
        .route("/api/{session}/groups/{id}/leave", post(groups::leave))
        .route(
            "/api/{session}/groups/{id}/participants",
            get(groups::participants),
        )
        .route(
            "/api/{session}/groups/{id}/participants/v2",
            get(groups::participants),
        )
        .route(
            "/api/{session}/groups/{id}/participants/add",
            post(groups::add),
        )
        .route(
            "/api/{session}/groups/{id}/participants/remove",
            post(groups::remove),
        )
        .route(
            "/api/{session}/groups/{id}/admin/promote",
            post(groups::promote),
        )
        .route(
            "/api/{session}/groups/{id}/admin/demote",
            post(groups::demote),
        )
        .route("/api/{session}/groups/{id}/subject", put(groups::subject))
        .route(
            "/api/{session}/groups/{id}/description",
            put(groups::description),
        )
        .route(
            "/api/{session}/groups/{id}/settings/security/info-admin-only",
            get(groups::get_info_admin_only).put(groups::set_info_admin_only),
        )
        .route(
            "/api/{session}/groups/{id}/settings/security/messages-admin-only",
            get(groups::get_messages_admin_only).put(groups::set_messages_admin_only),
        )
        .route(
            "/api/{session}/groups/{id}/invite-code",
            get(groups::get_invite_code),
        )
        .route(
            "/api/{session}/groups/{id}/invite-code/revoke",
            post(groups::revoke_invite_code),
        )
        .route(
            "/api/{session}/groups/{id}/picture",
            get(groups::get_picture)
                .put(groups::set_picture)
                .delete(groups::delete_picture),
        )
        .route("/api/{session}/chats", get(chats::list))
        .route(
            "/api/{session}/chats/overview",
            get(chats::overview_get).post(chats::overview_post),
        )
        .route(
            "/api/{session}/chats/{chatId}/messages",
            get(chats::chat_messages),
        )
        .route(
            "/api/{session}/chats/{chatId}/messages/{messageId}",
            get(chats::chat_message),
        )
        .route("/api/messages", get(chats::legacy_messages))
        .route("/api/contacts/all", get(chats::contacts_all))
        .route("/api/contacts", get(chats::contact_get))
        .route(
            "/api/{session}/contacts/{id}",
            get(chats::contact_in_session),
        )
}

/// The pairs of a raw query string, percent-decoded, in order (repeated keys kept, as
/// WAHA's array parameters `exclude=` and `ids=` come).
pub(crate) fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Vec::new();
    };
    reqwest::Url::parse(&format!("http://q/?{raw}"))
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// `offset` and `limit` of a WAHA listing (numbers; `limit` absent = no limit).
///
/// # Errors
/// 400 for a value that is not a non-negative number.
pub(crate) fn page(offset: Option<&str>, limit: Option<&str>) -> Result<(usize, usize), WahaError> {
    let num = |name: &str, v: Option<&str>| -> Result<Option<usize>, WahaError> {
        v.filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n >= 0.0)
                    .map(|n| n.min(usize::MAX as f64) as usize)
                    .ok_or_else(|| {
                        WahaError::bad_request(format!("{name} must be a non-negative number"))
                    })
            })
            .transpose()
    };
    Ok((
        num("offset", offset)?.unwrap_or(0),
        num("limit", limit)?.unwrap_or(usize::MAX),
    ))
}

/// WAHA's session status, mapped from ours: `connecting` → `STARTING`, `qr` and
/// `pairing_code` → `SCAN_QR_CODE`, `connected` → `WORKING`, `logged_out` → `STOPPED`
/// (unlinked; `start` pairs again), `stopped` → `FAILED` (QR codes ran out, replaced by
/// another connection, a fatal error; `restart` resumes). A session stopped on request
/// (`POST /api/sessions/{session}/stop`) is `STOPPED`: see [`waha_status_of`].
pub(crate) fn waha_status(status: SessionStatus) -> &'static str {
    match status {
        SessionStatus::Connecting => "STARTING",
        SessionStatus::Qr | SessionStatus::PairingCode => "SCAN_QR_CODE",
        SessionStatus::Connected => "WORKING",
        SessionStatus::LoggedOut => "STOPPED",
        SessionStatus::Stopped => "FAILED",
    }
}

/// WAHA's status of a session's live state: as [`waha_status`], except that a session
/// stopped on request ([`crate::session::STOP_REQUESTED`]) is `STOPPED`, not `FAILED`.
pub(crate) fn waha_status_of(live: &crate::session::Live) -> &'static str {
    if live.status == SessionStatus::Stopped
        && live.last_error.as_deref() == Some(crate::session::STOP_REQUESTED)
    {
        return "STOPPED";
    }
    waha_status(live.status)
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

/// A query string parsed into `T`; a query `T` rejects answers WAHA's 400 (not the native
/// error shape).
#[derive(Debug)]
pub(crate) struct WahaQuery<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for WahaQuery<T> {
    type Rejection = WahaError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, WahaError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e| WahaError::bad_request(format!("invalid query: {}", e.body_text())))
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
