//! The Evolution API v2 dialect (`--evolution`), after the server's own code
//! (`evolution-foundation/evolution-api` 2.4.0-rc2, see `../shared/compat/evolution-v2.md`):
//! paths `/{group}/{action}/{instanceName}`, the `apikey` header (the global key is the
//! server's API key; each instance has its own token, of which only a SHA-256 digest is
//! stored), guards in Evolution's order (404 for an unknown instance before 401), and
//! Evolution's error body `{status, error, response: {message}}`.
//!
//! An instance is a native session of the same name. Deliberate deviations (README, "From
//! Evolution API"): no licence gate; an instance connects as soon as it is created (state
//! `connecting`, never `close` before `connect`); `fetchInstances` shows an instance's
//! `token` only to a caller presenting that token (`null` for the global key: only its
//! digest is kept).

pub(crate) mod chat;
pub(crate) mod group;
pub(crate) mod hooks;
pub(crate) mod instance;
pub(crate) mod openapi;
pub(crate) mod rows;
pub(crate) mod send;
pub(crate) mod store;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::auth::{self, Caller};
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::session::Session;
use crate::state::AppState;

/// The version `GET /` reports (clients check that the major is 2).
pub(crate) const VERSION: &str = "2.4.0";

/// An Evolution error: `{status, error, response: {message}}` with the status's reason
/// phrase as `error` (`exceptions/*.ts`).
#[derive(Debug)]
pub(crate) struct EvoError {
    pub(crate) status: StatusCode,
    pub(crate) message: Value,
}

impl EvoError {
    /// `status` with `message` (a string or an array).
    pub(crate) fn new(status: StatusCode, message: impl Into<Value>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400 with `[message]`, as the validator answers.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, json!([message.into()]))
    }

    /// 401 `Unauthorized`.
    pub(crate) fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized")
    }

    /// 404 for an instance name that does not exist (`instance.guard.ts`).
    pub(crate) fn no_instance(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            json!([format!("The \"{name}\" instance does not exist")]),
        )
    }

    /// 501 for a route Evolution has and this dialect does not implement.
    pub(crate) fn not_implemented(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            json!([format!(
                "{what} is not supported by wa-server's Evolution dialect"
            )]),
        )
    }
}

impl From<ApiError> for EvoError {
    fn from(e: ApiError) -> Self {
        let status = e.status();
        let message = if let ApiError::Internal(detail) = &e {
            tracing::error!(%detail, "internal error (Evolution dialect)");
            "Internal Server Error".to_owned()
        } else {
            format!("{}: {e}", e.code())
        };
        Self::new(status, json!([message]))
    }
}

impl From<crate::db::DbError> for EvoError {
    fn from(e: crate::db::DbError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for EvoError {
    fn into_response(self) -> Response {
        let reason = self.status.canonical_reason().unwrap_or("Error");
        let body = json!({
            "status": self.status.as_u16(),
            "error": reason,
            "response": { "message": self.message },
        });
        (self.status, Json(body)).into_response()
    }
}

/// A handler's result.
pub(crate) type EvoResult<T> = Result<T, EvoError>;

/// `Json<T>` whose rejections are Evolution's 400s; serde's `missing field `x`` reads as the
/// validator's `instance requires property "x"`.
#[derive(Debug)]
pub(crate) struct EvoJson<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for EvoJson<T> {
    type Rejection = EvoError;

    async fn from_request(req: Request, state: &S) -> Result<Self, EvoError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge.into())
            }
            Err(e) => Err(EvoError::bad_request(validator_text(&e.body_text()))),
        }
    }
}

/// `Query<T>` whose rejections (a query string that does not parse into `T`, such as a
/// repeated key) are Evolution's 400s, in its error body.
#[derive(Debug)]
pub(crate) struct EvoQuery<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for EvoQuery<T> {
    type Rejection = EvoError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, EvoError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Self(v))
            .map_err(|e| EvoError::bad_request(e.body_text()))
    }
}

/// A JSON body that may be absent or empty (then `T::default()`), with [`EvoJson`]'s
/// rejections.
#[derive(Debug)]
pub(crate) struct EvoBody<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for EvoBody<T> {
    type Rejection = EvoError;

    async fn from_request(req: Request, state: &S) -> Result<Self, EvoError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge.into()
                } else {
                    EvoError::bad_request(e.body_text())
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|e| EvoError::bad_request(validator_text(&e.to_string())))
    }
}

/// serde's message in the JSON Schema validator's words where they differ.
fn validator_text(text: &str) -> String {
    if let Some(start) = text.find("missing field `")
        && let Some(rest) = text.get(start + "missing field `".len()..)
        && let Some(end) = rest.find('`')
    {
        return format!("instance requires property \"{}\"", &rest[..end]);
    }
    text.to_owned()
}

/// The `apikey` header, if any.
fn presented(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get("apikey")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Whether the request carries the global key (the server's API key; any key on a server
/// without one, as the native API is then open).
pub(crate) fn is_global(state: &AppState, parts: &Parts) -> bool {
    match (state.config().api_key.as_ref(), presented(parts)) {
        (None, _) => true,
        (Some(key), Some(given)) => auth::secrets_equal(given.as_bytes(), key.expose().as_bytes()),
        (Some(_), None) => false,
    }
}

/// The instance named by the path's last segment, for a caller allowed to use it: the
/// global key, the instance's Evolution token, or the native session token. Guards in
/// Evolution's order: 404 for an unknown instance, then 401.
#[derive(Debug)]
pub(crate) struct EvoInstance(pub(crate) Arc<Session>);

impl FromRequestParts<AppState> for EvoInstance {
    type Rejection = EvoError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, EvoError> {
        let name = parts
            .uri
            .path()
            .rsplit('/')
            .next()
            .map(percent_decode)
            .unwrap_or_default();
        if name.is_empty() {
            return Err(EvoError::bad_request("\"instanceName\" not provided."));
        }
        let session = state
            .session(&name)
            .map_err(|_| EvoError::no_instance(&name))?;
        if is_global(state, parts) {
            return Ok(Self(session));
        }
        let Some(given) = presented(parts) else {
            return Err(EvoError::unauthorized());
        };
        if store::token_matches(state, &name, given) {
            return Ok(Self(session));
        }
        // The native session token works too (`Authorization`/`x-api-key` or `apikey`).
        let mut headers = parts.headers.clone();
        if let Ok(v) = given.parse() {
            headers.insert("x-api-key", v);
        }
        match auth::authenticate(state, &headers) {
            Ok(Caller::Session(id)) if id == name => Ok(Self(session)),
            _ => Err(EvoError::unauthorized()),
        }
    }
}

/// A chat as Evolution's `number`/`remoteJid` fields give it: a phone number (the default
/// country code applies), or a JID of a user (`@s.whatsapp.net`, `@lid`, digits) or a group
/// (`@g.us`, digits with at most one `-`), device suffixes dropped. Anything else is 400
/// (the engine would refuse to address it).
pub(crate) fn chat_jid(state: &AppState, raw: &str) -> EvoResult<wa_engine::Jid> {
    let cc = state.config().default_country_code.as_deref();
    let raw = raw.trim();
    if !raw.contains('@') {
        return Ok(crate::phone::parse_recipient(raw, cc)?);
    }
    let digits = |s: &str| !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_digit());
    let jid = raw
        .parse::<wa_engine::Jid>()
        .ok()
        .map(|j| j.to_non_ad())
        .filter(|j| {
            let user = j.user();
            if j.is_group() {
                let mut parts = user.splitn(2, '-');
                parts.next().is_some_and(digits) && parts.next().is_none_or(digits)
            } else {
                (j.is_pn() || j.is_lid()) && digits(user)
            }
        });
    jid.ok_or_else(|| EvoError::bad_request(format!("{raw} is not a valid jid")))
}

/// `%XX` sequences of a path segment decoded (instance names are plain, but clients quote).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Evolution's 404 for a route it does not have: `Cannot <METHOD> <path>`.
async fn not_found(method: axum::http::Method, uri: Uri) -> EvoError {
    EvoError::new(
        StatusCode::NOT_FOUND,
        json!([format!("Cannot {method} {}", uri.path())]),
    )
}

/// A route Evolution has that this dialect answers with 501 (README, "From Evolution API").
macro_rules! unsupported {
    ($what:literal) => {
        |_: EvoInstance| async { EvoError::not_implemented($what) }
    };
}

/// Extra room of a media send's body over the base64 of the largest file (the other
/// fields, JSON or multipart framing), bytes.
const MEDIA_BODY_SLACK: usize = 256 * 1024;

/// Every route of the dialect, relative to its base path. `with_fallback` (nested under a
/// base path): answer unknown routes with Evolution's 404 and serve the document at
/// `openapi.json`; at the root the native API's fallback answers and the document is
/// `/openapi.evolution.json`. Bodies are limited as the native API's: the media sends to the
/// base64 of the largest media file (`--max-media-bytes`) plus [`MEDIA_BODY_SLACK`], the
/// other routes to `--body-limit`; past it, 413 in Evolution's error body.
pub(crate) fn router(config: &ServerConfig, with_fallback: bool) -> Router<AppState> {
    let max = usize::try_from(config.media.max_bytes).unwrap_or(usize::MAX);
    let media_limit = max
        .saturating_add(2)
        .saturating_div(3)
        .saturating_mul(4)
        .saturating_add(MEDIA_BODY_SLACK);
    let media = Router::new()
        .route("/message/sendMedia/{instance}", post(send::send_media))
        .route(
            "/message/sendWhatsAppAudio/{instance}",
            post(send::send_audio),
        )
        .route("/message/sendSticker/{instance}", post(send::send_sticker))
        .layer(DefaultBodyLimit::max(media_limit));
    let r = Router::new()
        .route("/", get(instance::welcome))
        .route("/verify-creds", post(instance::verify_creds))
        // At the root `/openapi.json` is the native document's.
        .route(
            if with_fallback {
                "/openapi.json"
            } else {
                "/openapi.evolution.json"
            },
            get(openapi::serve),
        )
        .route("/instance/create", post(instance::create))
        .route("/instance/fetchInstances", get(instance::fetch_instances))
        .route("/instance/connect/{instance}", get(instance::connect))
        .route(
            "/instance/connectionState/{instance}",
            get(instance::connection_state),
        )
        .route(
            "/instance/restart/{instance}",
            post(instance::restart).put(instance::restart),
        )
        .route("/instance/logout/{instance}", delete(instance::logout))
        .route("/instance/delete/{instance}", delete(instance::delete))
        .route(
            "/instance/setPresence/{instance}",
            post(instance::set_presence),
        )
        .route("/settings/set/{instance}", post(hooks::settings_set))
        .route("/settings/find/{instance}", get(hooks::settings_find))
        .route("/webhook/set/{instance}", post(hooks::webhook_set))
        .route("/webhook/find/{instance}", get(hooks::webhook_find))
        .route(
            "/chat/whatsappNumbers/{instance}",
            post(chat::whatsapp_numbers),
        )
        .route("/chat/findMessages/{instance}", post(chat::find_messages))
        .route("/chat/findChats/{instance}", post(chat::find_chats))
        .route("/chat/findContacts/{instance}", post(chat::find_contacts))
        .route(
            "/chat/markMessageAsRead/{instance}",
            post(chat::mark_message_as_read),
        )
        .route("/chat/sendPresence/{instance}", post(chat::send_presence))
        .route("/chat/fetchProfile/{instance}", post(chat::fetch_profile))
        .route("/message/sendText/{instance}", post(send::send_text))
        .route(
            "/message/sendLocation/{instance}",
            post(send::send_location),
        )
        .route("/message/sendContact/{instance}", post(send::send_contact))
        .route(
            "/message/sendReaction/{instance}",
            post(send::send_reaction),
        )
        .route("/message/sendPoll/{instance}", post(send::send_poll))
        .route(
            "/message/sendList/{instance}",
            post(unsupported!("sendList")),
        )
        .route(
            "/message/sendButtons/{instance}",
            post(unsupported!("sendButtons")),
        )
        .route(
            "/message/sendStatus/{instance}",
            post(unsupported!("sendStatus")),
        )
        .route("/group/create/{instance}", post(group::create))
        .route(
            "/group/fetchAllGroups/{instance}",
            get(group::fetch_all_groups),
        )
        .route(
            "/group/findGroupInfos/{instance}",
            get(group::find_group_infos),
        )
        .route("/group/participants/{instance}", get(group::participants))
        .route(
            "/group/updateParticipant/{instance}",
            post(group::update_participant),
        )
        .route(
            "/group/updateSetting/{instance}",
            post(group::update_setting),
        )
        .route("/group/inviteCode/{instance}", get(group::invite_code))
        .route(
            "/group/revokeInviteCode/{instance}",
            post(group::revoke_invite_code),
        )
        .route("/group/leaveGroup/{instance}", delete(group::leave_group))
        .route(
            "/group/updateGroupSubject/{instance}",
            post(group::update_subject),
        )
        .route(
            "/group/updateGroupDescription/{instance}",
            post(group::update_description),
        )
        .route(
            "/group/updateGroupPicture/{instance}",
            post(group::update_picture),
        )
        .route("/proxy/set/{instance}", post(unsupported!("proxy/set")))
        .route("/proxy/find/{instance}", get(hooks::proxy_find))
        .layer(DefaultBodyLimit::max(config.body_limit))
        .merge(media);
    if with_fallback {
        // Express answers a known path with another method as an unknown route.
        r.fallback(not_found).method_not_allowed_fallback(not_found)
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_errors_read_like_the_validator() {
        assert_eq!(
            validator_text(
                "Failed to deserialize the JSON body into the target type: missing field `text` at line 1 column 20"
            ),
            "instance requires property \"text\""
        );
        assert_eq!(validator_text("other"), "other");
        assert_eq!(percent_decode("my%20inst"), "my inst");
    }
}
