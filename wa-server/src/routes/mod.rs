//! HTTP handlers, one file per concern, and the extractors that turn every rejection into an
//! [`ApiError`].

pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod media;
pub(crate) mod messages;
pub(crate) mod otp;
pub(crate) mod pair;
pub(crate) mod sessions;
pub(crate) mod webhooks;

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::session::Session;
use crate::state::AppState;

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
