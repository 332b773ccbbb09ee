//! Media: `POST /api/sessions/{id}/messages/{image,video,audio,document,sticker}` and
//! `GET /api/sessions/{id}/media/{message_id}`.
//!
//! A send takes the file one of three ways, by the request's `Content-Type`:
//! - `application/json` with `url`: the server fetches it (see [`crate::media::fetch`]);
//! - `application/json` with `base64` (plain or a `data:` URL);
//! - `multipart/form-data` with a `file` part, streamed to a temporary file as it arrives.
//!
//! The handlers are thin: they read the request and build the response. Limits, sniffing,
//! allow-lists, the upload and the stored download references are the media domain's
//! ([`crate::media`]).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tower_http::limit::RequestBodyLimitLayer;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiJson, ApiPath, AuthorizedSession};
use crate::config::ServerConfig;
use crate::error::{ApiError, ErrorBody, MediaApiError};
use crate::media::download::{fetch_verified, read_stream};
use crate::media::intake::{self, Fields};
use crate::media::{Kind, send as media_send};
use crate::session::Session;
use crate::state::AppState;

/// Slack on top of the base64 length of the largest file for the other JSON fields and the
/// multipart framing, bytes.
const BODY_SLACK: usize = 256 * 1024;

/// `POST .../messages/{kind}` JSON body: the file by `url` or by `base64` (exactly one).
/// Its OpenAPI schema is per kind ([`crate::api_types::media_send::json_body`]): each kind
/// lists only its own fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendMediaJson {
    /// Recipient: phone number (local numbers use the default country code) or JID.
    to: String,
    /// An `http`/`https` URL the server fetches the file from. Non-public targets
    /// (loopback, private, link-local, CGNAT, unique-local, ...; also after a redirect or
    /// when a name resolves to one) are refused with 400 `target_not_allowed` unless the
    /// server runs with `--allow-private-targets` or `--allowed-target-cidrs`.
    url: Option<String>,
    /// The file as base64 (standard alphabet, padding optional), or a `data:` URL.
    base64: Option<String>,
    /// Caption (image, video, document).
    caption: Option<String>,
    /// File name shown for a document (default: from the URL's path).
    file_name: Option<String>,
    /// Documents only: the MIME type to announce when the file's type cannot be sniffed
    /// from its bytes (e.g. `text/csv`). Other kinds are always sniffed.
    mimetype: Option<String>,
    /// Audio only: send as a voice note (push-to-talk; the file must be Ogg Opus).
    #[serde(default)]
    voice_note: bool,
    /// Check the number is on WhatsApp first (422 `not_on_whatsapp` if not).
    #[serde(default)]
    check_number: bool,
    /// Images and videos only: view once (the recipient can open it once; sent as
    /// `viewOnceMessageV2` with `viewOnce: true`).
    #[serde(default)]
    view_once: bool,
}

/// A media message accepted by the server.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SentMediaMessage {
    /// Message id; follow it at `GET /api/sessions/{id}/messages/{message_id}`.
    id: String,
    /// `sent` once the server acknowledged it (or already `delivered`).
    status: String,
    /// The normalised recipient JID.
    to: String,
    /// `image`, `video`, `audio`, `document` or `sticker`.
    #[serde(rename = "type")]
    kind: String,
    /// The sniffed MIME type sent.
    mimetype: String,
    /// Size of the file, bytes.
    size: u64,
    /// Where the file can be downloaded again while the media host keeps it.
    download_url: String,
}

fn is_multipart(request: &Request) -> Option<bool> {
    let ct = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())?
        .to_ascii_lowercase();
    if ct.starts_with("multipart/form-data") {
        Some(true)
    } else if ct.starts_with("application/json") {
        Some(false)
    } else {
        None
    }
}

/// The whole send: read the file whichever way it came, check it, send it, record it.
async fn send(
    state: AppState,
    session: Arc<Session>,
    kind: Kind,
    request: Request,
) -> Result<(StatusCode, Json<SentMediaMessage>), ApiError> {
    let multipart = is_multipart(&request).ok_or(MediaApiError::ContentType)?;
    // Refuse before reading a large body when it cannot be sent anyway.
    session.connected_client()?;
    let (fields, received) = match multipart {
        true => {
            let form = Multipart::from_request(request, &state)
                .await
                .map_err(|e: MultipartRejection| MediaApiError::Multipart(e.body_text()))?;
            intake::from_multipart(&state, kind, form).await?
        }
        false => {
            let ApiJson(body) = ApiJson::<SendMediaJson>::from_request(request, &state).await?;
            let fields = Fields {
                to: Some(body.to),
                caption: body.caption,
                file_name: body.file_name,
                mimetype: body.mimetype,
                voice_note: body.voice_note,
                check_number: body.check_number,
                view_once: body.view_once,
            };
            intake::from_json(&state, kind, fields, body.url, body.base64).await?
        }
    };
    let sent = media_send::send(&state, &session, kind, fields, received).await?;
    Ok((
        StatusCode::CREATED,
        Json(SentMediaMessage {
            download_url: sent.download_url,
            id: sent.record.id,
            status: sent.record.status,
            to: sent.record.to,
            kind: sent.record.kind,
            mimetype: sent.mimetype,
            size: sent.size,
        }),
    ))
}

macro_rules! send_route {
    ($name:ident, $kind:expr, $json:ty, $form:ty, $path:literal, $summary:literal) => {
        #[doc = $summary]
        #[utoipa::path(post, path = $path, tag = "media",
            params(("id" = String, Path, description = "Session id")),
            request_body(
                description = "The file by `url` or `base64` (JSON, exactly one), or as the `file` \
                               part of a multipart form; only the kind's own fields. Its type is \
                               sniffed from the bytes (the part's `Content-Type` is not trusted).",
                content(($json = "application/json"), ($form = "multipart/form-data",
                    encoding(("file" = (content_type = crate::api_types::media_send::part_types($kind)
                        .unwrap_or("application/octet-stream"))))))
            ),
            responses((status = 201, body = SentMediaMessage),
                (status = 400, description = "`invalid_base64`, `missing_media`, `invalid_media_url`, \
                    `media_fetch_failed`, `target_not_allowed` (a non-public URL target; `allowed_by` names the flag), \
                    `malformed_multipart`, `invalid_phone_number`, ...", body = ErrorBody),
                (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
                (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
                (status = 413, description = "`media_too_large` or `payload_too_large`", body = ErrorBody),
                (status = 415, description = "`media_type_not_allowed` or `unsupported_media_type`", body = ErrorBody),
                (status = 422, body = ErrorBody),
                (status = 429, description = "A send limit refused it: `send_rate_limited`, `recipient_rate_limited` or `daily_quota_exceeded`, with `Retry-After`", body = ErrorBody),
                (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)),
            security(("api_key" = []), ("bearer" = [])))]
        pub(crate) async fn $name(
            State(state): State<AppState>,
            AuthorizedSession(session): AuthorizedSession,
            request: Request,
        ) -> Result<(StatusCode, Json<SentMediaMessage>), ApiError> {
            send(state, session, $kind, request).await
        }
    };
}

send_route!(
    send_image,
    Kind::Image,
    crate::api_types::SendImageJson,
    crate::api_types::SendImageForm,
    "/api/sessions/{id}/messages/image",
    "Send an image (JPEG, PNG, WebP) with an optional caption."
);
send_route!(
    send_video,
    Kind::Video,
    crate::api_types::SendVideoJson,
    crate::api_types::SendVideoForm,
    "/api/sessions/{id}/messages/video",
    "Send a video (MP4, 3GPP) with an optional caption."
);
send_route!(
    send_audio,
    Kind::Audio,
    crate::api_types::SendAudioJson,
    crate::api_types::SendAudioForm,
    "/api/sessions/{id}/messages/audio",
    "Send an audio file, or a voice note (`voice_note`, Ogg Opus)."
);
send_route!(
    send_document,
    Kind::Document,
    crate::api_types::SendDocumentJson,
    crate::api_types::SendDocumentForm,
    "/api/sessions/{id}/messages/document",
    "Send a document (any file) with a file name and optional caption."
);
send_route!(
    send_sticker,
    Kind::Sticker,
    crate::api_types::SendStickerJson,
    crate::api_types::SendStickerForm,
    "/api/sessions/{id}/messages/sticker",
    "Send a sticker (WebP)."
);

/// Download the media of a received (or sent) message: verified, then streamed with its
/// MIME type.
#[utoipa::path(get, path = "/api/sessions/{id}/media/{message_id}", tag = "media",
    params(("id" = String, Path, description = "Session id"),
        ("message_id" = String, Path, description = "Message id")),
    responses((status = 200, description = "The decrypted file, with its MIME type as `Content-Type`",
            content_type = "*/*"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "`session_not_found` or `media_not_found`", body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 410, description = "`media_expired`", body = ErrorBody),
        (status = 502, description = "`media_download_failed`, `media_verification_failed`", body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn download(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiPath((_, message_id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let download = fetch_verified(&state, &session, &message_id).await?;
    let mut response = Response::new(Body::from_stream(read_stream(download.file, download.temp)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&download.mimetype)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(download.len));
    if let Some(name) = download.file_name
        && let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{name}\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

/// The media routes (part of [`super::router`]'s list), with a body limit fitting the
/// largest file as base64 plus [`BODY_SLACK`] (the other routes keep the small JSON limit).
pub(crate) fn router(config: &ServerConfig) -> OpenApiRouter<AppState> {
    let max = usize::try_from(config.media.max_bytes).unwrap_or(usize::MAX);
    let limit = max
        .saturating_add(2)
        .saturating_div(3)
        .saturating_mul(4)
        .saturating_add(BODY_SLACK);
    OpenApiRouter::default()
        .routes(routes!(send_image))
        .routes(routes!(send_video))
        .routes(routes!(send_audio))
        .routes(routes!(send_document))
        .routes(routes!(send_sticker))
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestBodyLimitLayer::new(limit))
        .routes(routes!(download))
}
