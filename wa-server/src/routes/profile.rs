//! `/api/sessions/{id}/profile...` and `/api/sessions/{id}/contacts/{jid}/picture`: the
//! account's push name and status text ("about"), its profile picture, and anyone's picture
//! (issue 13, wa-server). Engine calls: `wa_engine::Client::set_push_name` (an app-state
//! `setting_pushName` mutation as the official clients do, else `<presence name>`),
//! `set_status_text` / `status_texts` (the `status` IQ, usync `<status/>`),
//! `profile_picture`, `set_profile_picture`, `remove_profile_picture`
//! (`w:profile:picture`). Evolution's `updateProfileName` / `updateProfileStatus` /
//! `updateProfilePicture` / `fetchProfilePictureUrl` map onto these.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use wa_engine::{IqError, ProfilePicture};

use super::{ApiJson, ApiPath, ApiQuery, AuthorizedSession};
use crate::error::{ApiError, ErrorBody};
use crate::phone::parse_chat;
use crate::state::AppState;

/// The account's profile.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Profile {
    /// Own user JID.
    jid: String,
    /// The push name (what contacts see), if known.
    push_name: Option<String>,
    /// The status text ("about"), if set.
    status: Option<String>,
    /// The profile picture, if set.
    picture: Option<Picture>,
}

/// A profile picture.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Picture {
    /// The picture id (changes with every new picture).
    id: String,
    /// Where to download the JPEG (plain, not media-encrypted).
    url: String,
    /// `image` (full size) or `preview` (small).
    #[serde(rename = "type")]
    kind: String,
}

impl From<ProfilePicture> for Picture {
    fn from(p: ProfilePicture) -> Self {
        Self {
            id: p.id,
            url: p.url,
            kind: p.kind,
        }
    }
}

/// Someone's picture: `null` when none is set or its owner's privacy settings hide it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PictureLookup {
    /// The picture, if visible.
    picture: Option<Picture>,
}

/// `PUT .../profile` body: the fields to change (absent ones stay).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileUpdate {
    /// New push name, 1-25 characters.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 25)]
    push_name: Option<String>,
    /// New status text, at most 139 characters; empty clears it.
    #[serde(default)]
    #[schema(max_length = 139)]
    status: Option<String>,
}

/// `PUT .../profile/picture` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PictureUpload {
    /// The JPEG as base64 (standard alphabet, padded); the official clients send 640x640.
    /// Up to 700000 characters (about 512 KiB).
    #[schema(
        pattern = "^/9j/([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
        max_length = 700000
    )]
    image: String,
}

/// The new picture id.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PictureSet {
    /// The picture id.
    id: String,
}

/// `?preview=true` for the small picture.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PictureQuery {
    /// The small preview instead of the full image.
    #[serde(default)]
    preview: bool,
}

/// Path of `.../contacts/{jid}/picture`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct ContactPath {
    /// Session id.
    #[allow(dead_code)] // read by `AuthorizedSession`
    id: String,
    /// A phone number, user JID or group JID.
    #[param(value_type = crate::api_types::Recipient)]
    jid: String,
}

fn profile_error(e: IqError) -> ApiError {
    match e {
        IqError::Send(e) => e.into(),
        IqError::NotAcceptable => ApiError::UpstreamRejected(406),
        IqError::NotAuthorized => ApiError::UpstreamRejected(401),
        IqError::Forbidden => ApiError::UpstreamRejected(403),
        IqError::NotFound => ApiError::UpstreamRejected(404),
        IqError::Conflict => ApiError::UpstreamRejected(409),
        IqError::Gone => ApiError::UpstreamRejected(410),
        other => ApiError::internal(other),
    }
}

/// A picture lookup where "hidden" and "none" are both `None`.
async fn lookup(
    client: &wa_engine::Client,
    target: &wa_engine::Jid,
    preview: bool,
) -> Result<Option<Picture>, ApiError> {
    match client.profile_picture(target, preview).await {
        Ok(p) => Ok(p.map(Picture::from)),
        Err(IqError::NotAuthorized | IqError::NotFound) => Ok(None),
        Err(e) => Err(profile_error(e)),
    }
}

async fn read_profile(session: &crate::session::Session) -> Result<Profile, ApiError> {
    let client = session.connected_client()?;
    let own = client.jid().ok_or(ApiError::NotConnected)?.to_non_ad();
    let status = client
        .status_texts(std::slice::from_ref(&own))
        .await
        .map_err(profile_error)?
        .into_iter()
        .find_map(|s| s.text);
    let picture = lookup(&client, &own, false).await?;
    Ok(Profile {
        jid: own.to_string(),
        push_name: session.live().push_name,
        status,
        picture,
    })
}

#[utoipa::path(get, path = "/api/sessions/{id}/profile", tag = "profile",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = Profile), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn get(
    AuthorizedSession(session): AuthorizedSession,
) -> Result<Json<Profile>, ApiError> {
    Ok(Json(read_profile(&session).await?))
}

#[utoipa::path(put, path = "/api/sessions/{id}/profile", tag = "profile",
    params(("id" = String, Path, description = "Session id")),
    request_body = ProfileUpdate,
    responses((status = 200, body = Profile, description = "The profile after the change"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn update(
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<ProfileUpdate>,
) -> Result<Json<Profile>, ApiError> {
    if let Some(name) = &body.push_name
        && (name.is_empty() || name.chars().count() > 25)
    {
        return Err(ApiError::InvalidBody(
            "push_name must be 1-25 characters".to_owned(),
        ));
    }
    if let Some(status) = &body.status
        && status.chars().count() > 139
    {
        return Err(ApiError::InvalidBody(
            "status is at most 139 characters".to_owned(),
        ));
    }
    let client = session.connected_client()?;
    if let Some(name) = &body.push_name {
        client.set_push_name(name).await.map_err(profile_error)?;
        session.set_push_name(name);
    }
    if let Some(status) = &body.status {
        client
            .set_status_text(status)
            .await
            .map_err(profile_error)?;
    }
    Ok(Json(read_profile(&session).await?))
}

#[utoipa::path(get, path = "/api/sessions/{id}/profile/picture", tag = "profile",
    params(("id" = String, Path, description = "Session id"), PictureQuery),
    responses((status = 200, body = PictureLookup), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn get_picture(
    AuthorizedSession(session): AuthorizedSession,
    ApiQuery(query): ApiQuery<PictureQuery>,
) -> Result<Json<PictureLookup>, ApiError> {
    let client = session.connected_client()?;
    let own = client.jid().ok_or(ApiError::NotConnected)?.to_non_ad();
    Ok(Json(PictureLookup {
        picture: lookup(&client, &own, query.preview).await?,
    }))
}

#[utoipa::path(put, path = "/api/sessions/{id}/profile/picture", tag = "profile",
    params(("id" = String, Path, description = "Session id")),
    request_body = PictureUpload,
    responses((status = 200, body = PictureSet), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn set_picture(
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<PictureUpload>,
) -> Result<Json<PictureSet>, ApiError> {
    // Lenient about the last symbol's unused bits: any string the schema's pattern allows
    // decodes.
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let jpeg = engine
        .decode(body.image.as_bytes())
        .map_err(|e| ApiError::InvalidBody(format!("image: {e}")))?;
    if jpeg.len() < 3 || jpeg[..3] != [0xFF, 0xD8, 0xFF] {
        return Err(ApiError::InvalidBody("image: not a JPEG".to_owned()));
    }
    let id = session
        .connected_client()?
        .set_profile_picture(&jpeg)
        .await
        .map_err(profile_error)?;
    Ok(Json(PictureSet { id }))
}

#[utoipa::path(delete, path = "/api/sessions/{id}/profile/picture", tag = "profile",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204, description = "Removed"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn remove_picture(
    AuthorizedSession(session): AuthorizedSession,
) -> Result<StatusCode, ApiError> {
    session
        .connected_client()?
        .remove_profile_picture()
        .await
        .map_err(profile_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/sessions/{id}/contacts/{jid}/picture", tag = "profile",
    params(ContactPath, PictureQuery),
    responses((status = 200, body = PictureLookup), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn contact_picture(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiPath(path): ApiPath<ContactPath>,
    ApiQuery(query): ApiQuery<PictureQuery>,
) -> Result<Json<PictureLookup>, ApiError> {
    let target = parse_chat(&path.jid, state.config().default_country_code.as_deref())?;
    let client = session.connected_client()?;
    Ok(Json(PictureLookup {
        picture: lookup(&client, &target, query.preview).await?,
    }))
}
