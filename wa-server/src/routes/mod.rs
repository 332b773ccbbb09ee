//! HTTP handlers, one file per concern, and the extractors that turn every rejection into an
//! [`ApiError`].

pub(crate) mod events;
pub(crate) mod groups;
pub(crate) mod health;
pub(crate) mod media;
pub(crate) mod messages;
pub(crate) mod otp;
pub(crate) mod pair;
pub(crate) mod presence;
pub(crate) mod profile;
pub(crate) mod rich;
pub(crate) mod sessions;
pub(crate) mod webhooks;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tower_http::limit::RequestBodyLimitLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::openapi::ApiDoc;
use crate::session::Session;
use crate::state::AppState;

/// Every route, written once: each `routes!` entry is one path with its handlers, whose
/// `#[utoipa::path]` gives both the axum route and the OpenAPI operation. [`crate::app`]
/// serves the router half; `/openapi.json` serves the document half
/// ([`crate::openapi::spec_json`]), which does not depend on `config`.
///
/// Bodies are limited to `config.body_limit`, except the media sends (their own, larger
/// limit, [`media::router`]).
pub(crate) fn router(config: &ServerConfig) -> OpenApiRouter<AppState> {
    let limit = config.body_limit;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(health::api_health))
        .routes(routes!(health::ready))
        .routes(routes!(health::metrics))
        .routes(routes!(health::openapi))
        .routes(routes!(health::docs))
        .routes(routes!(sessions::list, sessions::create))
        .routes(routes!(
            sessions::get,
            sessions::delete,
            sessions::replace,
            sessions::update
        ))
        .routes(routes!(sessions::force_qr))
        .routes(routes!(sessions::restart))
        .routes(routes!(sessions::logout))
        .routes(routes!(sessions::rotate_token))
        .routes(routes!(pair::qr_json))
        .routes(routes!(pair::qr_png))
        .routes(routes!(pair::qr_svg))
        .routes(routes!(pair::pairing_code))
        .routes(routes!(pair::pair_link))
        .routes(routes!(pair::api_simulate_scan))
        .routes(routes!(pair::sandbox_info))
        .routes(routes!(pair::page))
        .routes(routes!(pair::page_events))
        .routes(routes!(pair::page_simulate_scan))
        .routes(routes!(pair::page_restart))
        .routes(routes!(pair::page_pairing_code))
        .routes(routes!(messages::send_text))
        .routes(routes!(messages::send_location))
        .routes(routes!(messages::send_contact))
        .routes(routes!(crate::msglog::routes::list))
        .routes(routes!(crate::msglog::routes::stats))
        .routes(routes!(
            messages::status,
            crate::msglog::routes::delete_for_everyone
        ))
        .routes(routes!(crate::msglog::routes::retry))
        .routes(routes!(messages::check_numbers))
        .routes(routes!(messages::format_phone))
        .routes(routes!(rich::react))
        .routes(routes!(rich::edit))
        .routes(routes!(rich::revoke))
        .routes(routes!(rich::poll))
        .routes(routes!(rich::vote))
        .routes(routes!(rich::delete_for_me))
        .routes(routes!(rich::disappearing))
        .routes(routes!(presence::set_presence))
        .routes(routes!(presence::subscribe))
        .routes(routes!(presence::chat_state))
        .routes(routes!(presence::reject_call))
        .routes(routes!(groups::list, groups::create))
        .routes(routes!(groups::join))
        .routes(routes!(groups::info))
        .routes(routes!(
            groups::add_participants,
            groups::remove_participants
        ))
        .routes(routes!(groups::promote))
        .routes(routes!(groups::demote))
        .routes(routes!(groups::subject))
        .routes(routes!(groups::description))
        .routes(routes!(groups::settings))
        .routes(routes!(groups::invite, groups::revoke_invite))
        .routes(routes!(groups::leave))
        .routes(routes!(profile::get, profile::update))
        .routes(routes!(
            profile::get_picture,
            profile::set_picture,
            profile::remove_picture
        ))
        .routes(routes!(profile::contact_picture))
        .routes(routes!(otp::send))
        .routes(routes!(otp::verify))
        .routes(routes!(webhooks::list, webhooks::add))
        .routes(routes!(webhooks::remove))
        .routes(routes!(webhooks::stats))
        .routes(routes!(webhooks::dead))
        .routes(routes!(webhooks::retry_dead))
        .routes(routes!(events::stream))
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestBodyLimitLayer::new(limit))
        .merge(media::router(config))
}

/// The session named by the path's `{id}`, for a caller allowed to use it (the admin key,
/// or that session's own token). Every `/api/sessions/{id}/...` route that acts on one
/// session takes this instead of checking by hand.
///
/// Rejections, in this order: [`ApiError::AuthRequired`] / [`ApiError::InvalidCredentials`]
/// (as [`Caller`]), [`ApiError::InvalidParameter`] (path), [`ApiError::Forbidden`] (another
/// session's token), [`ApiError::SessionNotFound`]. As a parts extractor it runs before the
/// body is read, so a request that fails here is answered without parsing its body.
#[derive(Debug)]
pub(crate) struct AuthorizedSession(pub(crate) Arc<Session>);

/// The `{id}` segment of a session route (other segments are ignored).
#[derive(Deserialize)]
struct SessionPath {
    id: String,
}

impl FromRequestParts<AppState> for AuthorizedSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let ApiPath(SessionPath { id }) = ApiPath::from_request_parts(parts, state).await?;
        caller.require_session(&id)?;
        state.session(&id).map(Self)
    }
}

/// `Json<T>` whose rejections are [`ApiError`]s (`malformed_json`, `invalid_body`,
/// `unsupported_media_type`, `payload_too_large`).
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// `Path<T>` with [`ApiError::InvalidParameter`] rejections.
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// `Query<T>` with [`ApiError::InvalidParameter`] rejections.
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// Checks a session id: 1-64 of `A-Z a-z 0-9 _ -`.
pub(crate) fn valid_session_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
