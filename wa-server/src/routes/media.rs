//! Media: `POST /api/sessions/{id}/messages/{image,video,audio,document,sticker}` and
//! `GET /api/sessions/{id}/media/{message_id}`.
//!
//! A send takes the file one of three ways, by the request's `Content-Type`:
//! - `application/json` with `url`: the server fetches it (http/https only, redirects only
//!   to http/https, at most [`MAX_REDIRECTS`], the configured timeout), streaming it to a
//!   temporary file;
//! - `application/json` with `base64` (plain or a `data:` URL);
//! - `multipart/form-data` with a `file` part, streamed to a temporary file as it arrives.
//!
//! Every file is limited to [`MediaSettings::max_bytes`](crate::MediaSettings), its type is
//! sniffed from its first bytes (the `infer` crate, then the engine's
//! `media::probe::sniff_mimetype`) and checked against the kind's allow-list
//! ([`Kind::allowed`]); the declared type or file extension is never trusted. Then the
//! engine encrypts and uploads it (streamed from the temporary file, bounded memory), the
//! message is built with the engine's `media::message` builders and sent like a text
//! (`messaging::send`: the status record is `pending` before the engine sees it, then `sent`
//! or `failed`); the temporary file is removed in every case.
//!
//! A base64 body is parsed whole (about four times the file in memory at its peak): use
//! multipart or a URL for large files.
//!
//! Received media (and media we sent) is downloadable at `GET .../media/{message_id}`: the
//! download reference (direct path, media key, hashes, length, type) is kept in the server
//! database (tree `media`), so the URL keeps working across restarts while the media host
//! keeps the file. The download is verified by the engine into a temporary file first, then
//! streamed out: a client never receives unverified bytes.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tower_http::limit::RequestBodyLimitLayer;
use utoipa::ToSchema;
use wa_engine::media::message::{
    self, AudioOptions, DocumentOptions, ImageOptions, StickerOptions, VideoOptions,
};
use wa_engine::media::{MediaKey, MediaRef, MediaSource, MediaType, UploadedMedia, probe};
use wa_engine::{Client, TransferError};
use wa_proto::wa;

use super::{ApiJson, ApiPath};
use crate::auth::{Caller, random_b64};
use crate::db::{ServerDb, key2, now_ms};
use crate::error::{ApiError, ErrorBody};
use crate::messaging::{self, Outgoing};
use crate::metrics::Metrics;
use crate::phone::parse_recipient;
use crate::state::AppState;

/// Redirects followed when fetching a media URL.
pub(crate) const MAX_REDIRECTS: usize = 5;
/// Longest media URL, characters.
const MAX_URL: usize = 4096;
/// Longest caption, characters (as a text message).
const MAX_CAPTION: usize = 65_536;
/// Longest file name, characters.
const MAX_FILE_NAME: usize = 255;
/// Largest text field of a multipart body, bytes.
const MAX_FORM_FIELD: usize = 256 * 1024;
/// Bytes kept from the start of a file for sniffing and header probes (as the engine's
/// `send_image`: JPEG dimensions may follow a large EXIF block).
const HEAD_LEN: usize = 256 * 1024;
/// Largest file read whole for a thumbnail or a PDF page count, bytes (the engine's limit);
/// larger files are sent without them.
const PROBE_MAX: u64 = 16 * 1024 * 1024;
/// Slack on top of the base64 length of the largest file for the other JSON fields and the
/// multipart framing, bytes.
const BODY_SLACK: usize = 256 * 1024;
/// Connect timeout of URL fetches.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Read buffer when streaming a download out, bytes.
const STREAM_CHUNK: usize = 64 * 1024;

/// Why a media request failed; wrapped in [`ApiError::Media`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaApiError {
    /// 413 `media_too_large`: the file exceeds the configured limit.
    #[error("the media file exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit, bytes.
        limit: u64,
    },
    /// 415 `media_type_not_allowed`: the sniffed type is not allowed for this kind.
    #[error("{kind} messages do not accept {mimetype} files (allowed: {allowed})")]
    TypeNotAllowed {
        /// `image`, `video`, `audio`, `voice_note`, `document` or `sticker`.
        kind: &'static str,
        /// The type sniffed from the bytes (`unknown` when nothing matched).
        mimetype: String,
        /// The allow-list, for the message.
        allowed: &'static str,
    },
    /// 415 `unsupported_media_type`: the body is neither JSON nor multipart.
    #[error("expected a body with Content-Type: application/json or multipart/form-data")]
    ContentType,
    /// 400 `invalid_base64`: `base64` does not decode.
    #[error("base64 does not decode: {0}")]
    InvalidBase64(&'static str),
    /// 400 `missing_media`: no file, or an empty one.
    #[error("no media: {0}")]
    Missing(&'static str),
    /// 400 `invalid_media_url`: not an absolute http(s) URL.
    #[error("invalid media URL: {0}")]
    InvalidUrl(&'static str),
    /// 400 `media_fetch_failed`: the URL could not be fetched (unreachable, error status,
    /// timeout, bad redirect).
    #[error("fetching the media URL failed: {0}")]
    Fetch(String),
    /// 400 `malformed_multipart`: the multipart body does not parse.
    #[error("malformed multipart body: {0}")]
    Multipart(String),
    /// 404 `media_not_found`: no media message with this id in this session.
    #[error("no media message with this id in this session")]
    NotFound,
    /// 410 `media_expired`: the media host no longer has the file.
    #[error("the media host no longer has this file")]
    Expired,
    /// 502 `media_verification_failed`: the downloaded file failed its hash or MAC check.
    #[error("the downloaded media failed verification")]
    Verification,
    /// 502 `media_download_failed`: the media host could not be reached or failed.
    #[error("downloading the media failed")]
    Download,
    /// 502 `media_upload_failed`: uploading to the media host failed; nothing was sent.
    #[error("uploading the media failed; nothing was sent")]
    Upload,
}

impl MediaApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TypeNotAllowed { .. } | Self::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::InvalidBase64(_)
            | Self::Missing(_)
            | Self::InvalidUrl(_)
            | Self::Fetch(_)
            | Self::Multipart(_) => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Expired => StatusCode::GONE,
            Self::Verification | Self::Download | Self::Upload => StatusCode::BAD_GATEWAY,
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "media_too_large",
            Self::TypeNotAllowed { .. } => "media_type_not_allowed",
            Self::ContentType => "unsupported_media_type",
            Self::InvalidBase64(_) => "invalid_base64",
            Self::Missing(_) => "missing_media",
            Self::InvalidUrl(_) => "invalid_media_url",
            Self::Fetch(_) => "media_fetch_failed",
            Self::Multipart(_) => "malformed_multipart",
            Self::NotFound => "media_not_found",
            Self::Expired => "media_expired",
            Self::Verification => "media_verification_failed",
            Self::Download => "media_download_failed",
            Self::Upload => "media_upload_failed",
        }
    }
}

/// The kind of media message a route sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Image,
    Video,
    Audio,
    Document,
    Sticker,
}

impl Kind {
    /// The name used in routes, statuses and events.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Document => "document",
            Self::Sticker => "sticker",
        }
    }

    /// The media type whose keys encrypt this kind (shared/protocol/06 §2.1).
    fn media_type(self) -> MediaType {
        match self {
            Self::Image => MediaType::Image,
            Self::Video => MediaType::Video,
            Self::Audio => MediaType::Audio,
            Self::Document => MediaType::Document,
            Self::Sticker => MediaType::Sticker,
        }
    }

    /// The allow-list, as shown in errors and the API docs. WhatsApp clients display
    /// JPEG/PNG/WebP images, MP4/3GPP video, AAC/AMR/MP3/MP4/Ogg audio and WebP stickers
    /// (whatsmeow and Baileys send these types); documents may be any file.
    fn allowed_list(self, voice_note: bool) -> &'static str {
        match self {
            Self::Image => "image/jpeg, image/png, image/webp",
            Self::Video => "video/mp4, video/3gpp",
            Self::Audio if voice_note => "audio/ogg (Opus)",
            Self::Audio => "audio/ogg, audio/mpeg, audio/mp4, audio/aac, audio/amr",
            Self::Document => "any",
            Self::Sticker => "image/webp",
        }
    }

    /// Whether a file of the sniffed type `mimetype` may be sent as this kind.
    pub(crate) fn allowed(self, mimetype: &str, voice_note: bool) -> bool {
        match self {
            Self::Image => matches!(mimetype, "image/jpeg" | "image/png" | "image/webp"),
            Self::Video => matches!(mimetype, "video/mp4" | "video/3gpp"),
            Self::Audio if voice_note => mimetype == "audio/ogg; codecs=opus",
            Self::Audio => {
                mimetype.starts_with("audio/ogg")
                    || matches!(
                        mimetype,
                        "audio/mpeg" | "audio/mp4" | "audio/aac" | "audio/amr"
                    )
            }
            Self::Document => true,
            Self::Sticker => mimetype == "image/webp",
        }
    }
}

/// The MIME type of a file from its first bytes: `infer`'s answer normalised to the names
/// WhatsApp messages use (Ogg Opus is `audio/ogg; codecs=opus`, M4A is `audio/mp4`), else
/// the engine's probe; `None` when neither knows the format.
pub(crate) fn sniff(head: &[u8]) -> Option<&'static str> {
    if let Some(t) = infer::get(head) {
        return Some(match t.mime_type() {
            "audio/opus" => "audio/ogg; codecs=opus",
            "audio/m4a" | "audio/x-m4a" => "audio/mp4",
            "video/x-m4v" => "video/mp4",
            "audio/x-wav" => "audio/wav",
            other => other,
        });
    }
    probe::sniff_mimetype(head)
}

/// `POST .../messages/{kind}` JSON body: the file by `url` or by `base64` (exactly one).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendMediaJson {
    /// Recipient: phone number (local numbers use the default country code) or JID.
    to: String,
    /// An `http`/`https` URL the server fetches the file from.
    #[schema(max_length = 4096)]
    url: Option<String>,
    /// The file as base64 (standard alphabet, padding optional), or a `data:` URL.
    base64: Option<String>,
    /// Caption (image, video, document).
    #[schema(max_length = 65536)]
    caption: Option<String>,
    /// File name shown for a document (default: from the URL's path).
    #[schema(max_length = 255)]
    file_name: Option<String>,
    /// Documents only: the MIME type to announce when the file's type cannot be sniffed
    /// from its bytes (e.g. `text/csv`). Other kinds are always sniffed.
    #[schema(max_length = 255)]
    mimetype: Option<String>,
    /// Audio only: send as a voice note (push-to-talk; the file must be Ogg Opus).
    #[serde(default)]
    voice_note: bool,
    /// Check the number is on WhatsApp first (422 `not_on_whatsapp` if not).
    #[serde(default)]
    check_number: bool,
}

/// `POST .../messages/{kind}` multipart form: the file in part `file`, the other fields
/// as text parts.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Documents the form for the OpenAPI document only.
pub(crate) struct SendMediaUpload {
    /// Recipient: phone number or JID.
    to: String,
    /// The file.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Caption (image, video, document).
    caption: Option<String>,
    /// File name shown for a document (default: the part's file name).
    file_name: Option<String>,
    /// Documents only: MIME type to announce when the type cannot be sniffed.
    mimetype: Option<String>,
    /// Audio only: `true` sends a voice note.
    voice_note: Option<bool>,
    /// `true` checks the number is on WhatsApp first.
    check_number: Option<bool>,
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

/// The fields of a send, whichever way they came.
#[derive(Debug, Default)]
struct Fields {
    to: Option<String>,
    caption: Option<String>,
    file_name: Option<String>,
    mimetype: Option<String>,
    voice_note: bool,
    check_number: bool,
}

/// A temporary file under `<data-dir>/tmp/`, removed when dropped.
#[derive(Debug)]
pub(crate) struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// A fresh path (the file is created by the caller).
    fn new(state: &AppState) -> Result<Self, ApiError> {
        let dir = tmp_dir(state);
        std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
        Ok(Self {
            path: dir.join(format!("media-{}", random_b64(16))),
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove temporary file");
        }
    }
}

/// Temporary files of media sends and downloads; emptied at start.
pub(crate) fn tmp_dir(state: &AppState) -> PathBuf {
    state.config().data_dir.join("tmp")
}

/// A file being received: counts bytes against the limit and keeps the head for sniffing.
struct Sink {
    file: tokio::fs::File,
    temp: TempFile,
    len: u64,
    limit: u64,
    head: Vec<u8>,
}

/// A received file.
struct Received {
    temp: TempFile,
    len: u64,
    head: Vec<u8>,
}

impl Sink {
    async fn create(state: &AppState) -> Result<Self, ApiError> {
        let temp = TempFile::new(state)?;
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(temp.path())
            .await
            .map_err(ApiError::internal)?;
        Ok(Self {
            file,
            temp,
            len: 0,
            limit: state.config().media.max_bytes,
            head: Vec::new(),
        })
    }

    async fn write(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        self.len = self.len.saturating_add(chunk.len() as u64);
        if self.len > self.limit {
            return Err(MediaApiError::TooLarge { limit: self.limit }.into());
        }
        if self.head.len() < HEAD_LEN {
            let take = (HEAD_LEN - self.head.len()).min(chunk.len());
            self.head
                .extend_from_slice(chunk.get(..take).unwrap_or_default());
        }
        self.file.write_all(chunk).await.map_err(ApiError::internal)
    }

    async fn finish(mut self) -> Result<Received, ApiError> {
        self.file.flush().await.map_err(ApiError::internal)?;
        drop(self.file);
        if self.len == 0 {
            return Err(MediaApiError::Missing("the file is empty").into());
        }
        Ok(Received {
            temp: self.temp,
            len: self.len,
            head: self.head,
        })
    }
}

/// The HTTP client of URL fetches. It follows no redirect itself: [`fetch`] does, checking
/// each hop like the first URL.
fn fetch_client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("wa-server/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "media fetch client settings rejected; defaults");
                reqwest::Client::new()
            })
    })
}

/// Checks the host of a media URL (the first one and every redirect) against
/// [`MediaSettings::fetch_allowed_hosts`](crate::MediaSettings).
fn check_host(state: &AppState, url: &reqwest::Url) -> Result<(), MediaApiError> {
    let Some(allowed) = &state.config().media.fetch_allowed_hosts else {
        return Ok(());
    };
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(host)) {
        Ok(())
    } else {
        Err(MediaApiError::InvalidUrl(
            "host not allowed by the server configuration",
        ))
    }
}

/// Checks a media URL: absolute, `http` or `https`, with a host.
fn parse_url(raw: &str) -> Result<reqwest::Url, MediaApiError> {
    if raw.len() > MAX_URL {
        return Err(MediaApiError::InvalidUrl("longer than 4096 characters"));
    }
    let url = reqwest::Url::parse(raw.trim())
        .map_err(|_| MediaApiError::InvalidUrl("not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(MediaApiError::InvalidUrl("only http and https URLs"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(MediaApiError::InvalidUrl("no host"));
    }
    Ok(url)
}

/// Why a fetch failed, in words that carry no secrets (the URL is not repeated: its query
/// may hold a token).
fn fetch_error(e: &reqwest::Error) -> MediaApiError {
    let why = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else if let Some(status) = e.status() {
        format!("the server answered HTTP {}", status.as_u16())
    } else {
        "the transfer failed".to_owned()
    };
    MediaApiError::Fetch(why)
}

/// Fetches `url` into a temporary file; also returns the last path segment of the final URL
/// (after redirects), a default file name for documents.
async fn fetch(
    state: &AppState,
    url: reqwest::Url,
) -> Result<(Received, Option<String>), ApiError> {
    let limit = state.config().media.max_bytes;
    let deadline = state.config().media.fetch_timeout;
    let mut sink = Sink::create(state).await?;
    let run = async {
        let mut url = url;
        let mut hops = 0;
        let mut response = loop {
            check_host(state, &url)?;
            let response = fetch_client()
                .get(url.clone())
                .send()
                .await
                .map_err(|e| fetch_error(&e))?;
            if !response.status().is_redirection() {
                break response;
            }
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| MediaApiError::Fetch("a redirect without a location".to_owned()))?;
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Err(MediaApiError::Fetch("too many redirects".to_owned()).into());
            }
            url = url
                .join(location)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .ok_or_else(|| {
                    MediaApiError::Fetch(
                        "a redirect to something other than an http(s) URL".to_owned(),
                    )
                })?;
        };
        let status = response.status();
        if !status.is_success() {
            return Err(MediaApiError::Fetch(format!(
                "the server answered HTTP {}",
                status.as_u16()
            ))
            .into());
        }
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(MediaApiError::TooLarge { limit }.into());
        }
        let name = response
            .url()
            .path_segments()
            .and_then(|mut s| s.next_back())
            .and_then(clean_file_name);
        while let Some(chunk) = response.chunk().await.map_err(|e| fetch_error(&e))? {
            sink.write(&chunk).await?;
        }
        Ok::<_, ApiError>(name)
    };
    let name = tokio::time::timeout(deadline, run)
        .await
        .map_err(|_| MediaApiError::Fetch("timed out".to_owned()))??;
    Ok((sink.finish().await?, name))
}

/// Decodes base64 (or a `data:` URL) into a temporary file.
async fn decode_base64(state: &AppState, text: String) -> Result<Received, ApiError> {
    let limit = state.config().media.max_bytes;
    let data = match text.trim_start().strip_prefix("data:") {
        Some(rest) => rest
            .split_once(";base64,")
            .map(|(_, data)| data)
            .ok_or(MediaApiError::InvalidBase64("a data: URL must be ;base64,"))?,
        None => text.as_str(),
    };
    // Line breaks (MIME-style base64) are dropped; the usual single line is not copied.
    let data: std::borrow::Cow<'_, str> = if data.bytes().any(|b| b.is_ascii_whitespace()) {
        data.chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect::<String>()
            .into()
    } else {
        data.into()
    };
    if data.is_empty() {
        return Err(MediaApiError::Missing("base64 is empty").into());
    }
    // Each 4 characters are 3 bytes: refuse early what must decode past the limit.
    if (data.len() as u64 / 4).saturating_mul(3) > limit.saturating_add(3) {
        return Err(MediaApiError::TooLarge { limit }.into());
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine
        .decode(data.as_bytes())
        .or_else(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(data.trim_end_matches('='))
        })
        .map_err(|_| MediaApiError::InvalidBase64("not valid base64"))?;
    drop(data);
    drop(text);
    let mut sink = Sink::create(state).await?;
    sink.write(&bytes).await?;
    sink.finish().await
}

/// Reads a text part of a multipart form (bounded).
async fn text_field(mut field: Field<'_>, name: &str) -> Result<String, ApiError> {
    let mut out = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if out.len() + chunk.len() > MAX_FORM_FIELD {
            return Err(ApiError::InvalidBody(format!("field {name} is too long")));
        }
        out.extend_from_slice(&chunk);
    }
    String::from_utf8(out).map_err(|_| ApiError::InvalidBody(format!("field {name} is not UTF-8")))
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        MediaApiError::Multipart(e.body_text()).into()
    }
}

fn parse_bool(value: &str, name: &str) -> Result<bool, ApiError> {
    match value.trim() {
        "true" | "1" | "on" | "yes" => Ok(true),
        "false" | "0" | "off" | "no" | "" => Ok(false),
        _ => Err(ApiError::InvalidBody(format!(
            "{name} must be true or false"
        ))),
    }
}

/// Reads a multipart form: text fields, and the `file` part streamed to a temporary file.
async fn read_multipart(
    state: &AppState,
    mut form: Multipart,
) -> Result<(Fields, Option<Received>, Option<String>), ApiError> {
    let mut fields = Fields::default();
    let mut file = None;
    let mut part_name = None;
    while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                if file.is_some() {
                    return Err(ApiError::InvalidBody("more than one file part".to_owned()));
                }
                part_name = field.file_name().map(str::to_owned);
                let mut sink = Sink::create(state).await?;
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    sink.write(&chunk).await?;
                }
                file = Some(sink.finish().await?);
            }
            "to" => fields.to = Some(text_field(field, "to").await?),
            "caption" => fields.caption = Some(text_field(field, "caption").await?),
            "file_name" => fields.file_name = Some(text_field(field, "file_name").await?),
            "mimetype" => fields.mimetype = Some(text_field(field, "mimetype").await?),
            "voice_note" => {
                fields.voice_note =
                    parse_bool(&text_field(field, "voice_note").await?, "voice_note")?;
            }
            "check_number" => {
                fields.check_number =
                    parse_bool(&text_field(field, "check_number").await?, "check_number")?;
            }
            _ => {
                return Err(ApiError::InvalidBody(format!(
                    "unknown field `{}`",
                    name.chars().take(64).collect::<String>()
                )));
            }
        }
    }
    Ok((fields, file, part_name))
}

/// A file name safe to announce: the last path component, no control characters.
fn clean_file_name(raw: &str) -> Option<String> {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty() && cleaned != "." && cleaned != "..").then(|| cleaned.to_owned())
}

/// A declared MIME type must look like `type/subtype` (parameters allowed).
fn valid_mimetype(m: &str) -> bool {
    let essence = m.split(';').next().unwrap_or_default().trim();
    let mut parts = essence.splitn(2, '/');
    let ok = |s: Option<&str>| {
        s.is_some_and(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        })
    };
    m.len() <= 255 && ok(parts.next()) && ok(parts.next()) && HeaderValue::from_str(m).is_ok()
}

/// Checks the fields that do not depend on the file.
fn check_fields(kind: Kind, fields: &Fields) -> Result<(), ApiError> {
    if fields.voice_note && kind != Kind::Audio {
        return Err(ApiError::InvalidBody(
            "voice_note is for audio only".to_owned(),
        ));
    }
    if fields.caption.is_some() && matches!(kind, Kind::Audio | Kind::Sticker) {
        return Err(ApiError::InvalidBody(format!(
            "{} messages have no caption",
            kind.as_str()
        )));
    }
    if fields
        .caption
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_CAPTION)
    {
        return Err(ApiError::InvalidBody(format!(
            "caption is at most {MAX_CAPTION} characters"
        )));
    }
    if fields.file_name.is_some() && kind != Kind::Document {
        return Err(ApiError::InvalidBody(
            "file_name is for documents only".to_owned(),
        ));
    }
    if fields
        .file_name
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_FILE_NAME)
    {
        return Err(ApiError::InvalidBody(format!(
            "file_name is at most {MAX_FILE_NAME} characters"
        )));
    }
    match &fields.mimetype {
        Some(_) if kind != Kind::Document => Err(ApiError::InvalidBody(
            "mimetype is for documents only (other kinds are sniffed)".to_owned(),
        )),
        Some(m) if !valid_mimetype(m) => Err(ApiError::InvalidBody(
            "mimetype must look like type/subtype".to_owned(),
        )),
        _ => Ok(()),
    }
}

/// The MIME type to send: sniffed and checked against the kind's allow-list.
fn checked_mimetype(kind: Kind, fields: &Fields, head: &[u8]) -> Result<String, ApiError> {
    let sniffed = sniff(head);
    if kind == Kind::Document {
        return Ok(sniffed
            .map(str::to_owned)
            .or_else(|| fields.mimetype.clone())
            .unwrap_or_else(|| "application/octet-stream".to_owned()));
    }
    match sniffed {
        Some(m) if kind.allowed(m, fields.voice_note) => Ok(m.to_owned()),
        other => Err(MediaApiError::TypeNotAllowed {
            kind: if fields.voice_note {
                "voice_note"
            } else {
                kind.as_str()
            },
            mimetype: other.unwrap_or("unknown").to_owned(),
            allowed: kind.allowed_list(fields.voice_note),
        }
        .into()),
    }
}

/// Reads a whole file of at most [`PROBE_MAX`] bytes (for a thumbnail or a page count).
async fn read_small(path: &Path, len: u64) -> Option<Vec<u8>> {
    if len > PROBE_MAX {
        return None;
    }
    tokio::fs::read(path).await.ok()
}

/// Upload failures: 413 for the host's limit, the `SendError` mapping for a failed
/// `media_conn` query, else 502 `media_upload_failed` (nothing was sent).
fn upload_error(e: TransferError) -> ApiError {
    match e {
        TransferError::TooLarge { limit, .. } => MediaApiError::TooLarge { limit }.into(),
        TransferError::MediaConnRequest(e) => e.into(),
        other => {
            tracing::warn!(error = %other, "media upload failed");
            MediaApiError::Upload.into()
        }
    }
}

/// Fills in what the message can say about the file, as the engine's `Client::send_image`
/// and its siblings do (dimensions, a JPEG thumbnail for images up to [`PROBE_MAX`], Ogg
/// duration, PDF page count, WebP animation: `media::probe`), uploads the file (encrypted
/// while streamed from the temporary file) and builds the message with the engine's
/// `media::message` builders. The engine's `send_*` helpers are not used because they draw
/// the message id themselves, and the status record must exist (`pending`) before the
/// message is handed to the engine.
async fn upload_and_build(
    client: &Client,
    kind: Kind,
    file: &Received,
    mimetype: String,
    fields: Fields,
) -> Result<wa::Message, ApiError> {
    let path = file.temp.path().to_owned();
    let head = &file.head;
    let dims = probe::image_dimensions(head);
    let message = match kind {
        Kind::Image => {
            let thumbnail = match read_small(&path, file.len).await {
                Some(whole) => tokio::task::spawn_blocking(move || {
                    probe::thumbnail(&whole, probe::THUMBNAIL_SIDE)
                        .ok()
                        .map(|t| t.jpeg)
                })
                .await
                .ok()
                .flatten(),
                None => None,
            };
            let options = ImageOptions {
                mimetype,
                caption: fields.caption,
                width: dims.map(|d| d.0),
                height: dims.map(|d| d.1),
                jpeg_thumbnail: thumbnail,
                ..Default::default()
            };
            let up = upload(client, kind, path).await?;
            message::image(&up, options)
        }
        Kind::Video => {
            let options = VideoOptions {
                mimetype,
                caption: fields.caption,
                ..Default::default()
            };
            message::video(&upload(client, kind, path).await?, options)
        }
        Kind::Audio => {
            let seconds = if head.starts_with(b"OggS") {
                let probe_path = path.clone();
                tokio::task::spawn_blocking(move || {
                    std::fs::File::open(probe_path)
                        .and_then(|f| probe::ogg_duration(io::BufReader::new(f)))
                        .ok()
                        .flatten()
                })
                .await
                .ok()
                .flatten()
                // WhatsApp shows whole seconds; round up so a 0.4 s note is not "0:00".
                .map(|d| {
                    u32::try_from(d.as_secs() + u64::from(d.subsec_nanos() > 0)).unwrap_or(u32::MAX)
                })
            } else {
                None
            };
            let options = AudioOptions {
                mimetype,
                ptt: fields.voice_note,
                seconds,
                ..Default::default()
            };
            message::audio(&upload(client, kind, path).await?, options)
        }
        Kind::Document => {
            let page_count = if mimetype == "application/pdf" {
                read_small(&path, file.len)
                    .await
                    .as_deref()
                    .and_then(probe::pdf_page_count)
            } else {
                None
            };
            let options = DocumentOptions {
                mimetype,
                file_name: fields.file_name,
                caption: fields.caption,
                page_count,
                ..Default::default()
            };
            message::document(&upload(client, kind, path).await?, options)
        }
        Kind::Sticker => {
            let options = StickerOptions {
                mimetype,
                width: dims.map(|d| d.0),
                height: dims.map(|d| d.1),
                is_animated: probe::webp_is_animated(head),
            };
            message::sticker(&upload(client, kind, path).await?, options)
        }
    };
    Ok(message)
}

async fn upload(client: &Client, kind: Kind, path: PathBuf) -> Result<UploadedMedia, ApiError> {
    client
        .upload(kind.media_type(), MediaSource::Path(path))
        .await
        .map_err(upload_error)
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

/// The path of the download route of message `message_id`.
fn download_path(session: &str, message_id: &str) -> String {
    format!("/api/sessions/{session}/media/{message_id}")
}

/// The whole send: read the file whichever way it came, check it, send it, record it.
async fn send(
    state: AppState,
    caller: Caller,
    id: String,
    kind: Kind,
    request: Request,
) -> Result<(StatusCode, Json<SentMediaMessage>), ApiError> {
    caller.require_session(&id)?;
    let session = state.session(&id)?;
    let multipart = is_multipart(&request).ok_or(MediaApiError::ContentType)?;
    // Refuse before reading a large body when it cannot be sent anyway.
    session.connected_client()?;
    let (mut fields, received) = match multipart {
        true => {
            let form = Multipart::from_request(request, &state)
                .await
                .map_err(|e: MultipartRejection| MediaApiError::Multipart(e.body_text()))?;
            let (mut fields, file, part_name) = read_multipart(&state, form).await?;
            check_fields(kind, &fields)?;
            let file = file.ok_or(MediaApiError::Missing("no `file` part in the form"))?;
            if kind == Kind::Document && fields.file_name.is_none() {
                fields.file_name = part_name.as_deref().and_then(clean_file_name);
            }
            (fields, file)
        }
        false => {
            let ApiJson(body) = ApiJson::<SendMediaJson>::from_request(request, &state).await?;
            let mut fields = Fields {
                to: Some(body.to),
                caption: body.caption,
                file_name: body.file_name,
                mimetype: body.mimetype,
                voice_note: body.voice_note,
                check_number: body.check_number,
            };
            check_fields(kind, &fields)?;
            parse_recipient(fields.to.as_deref().unwrap_or_default(), default_cc(&state))?;
            let file = match (body.url, body.base64) {
                (Some(url), None) => {
                    let (file, name) = fetch(&state, parse_url(&url)?).await?;
                    if kind == Kind::Document && fields.file_name.is_none() {
                        fields.file_name = name;
                    }
                    file
                }
                (None, Some(data)) => decode_base64(&state, data).await?,
                (Some(_), Some(_)) => {
                    return Err(MediaApiError::Missing("give url or base64, not both").into());
                }
                (None, None) => return Err(MediaApiError::Missing("give url or base64").into()),
            };
            (fields, file)
        }
    };
    let to_raw = fields
        .to
        .as_deref()
        .ok_or_else(|| ApiError::InvalidBody("missing field `to`".to_owned()))?;
    let to = parse_recipient(to_raw, default_cc(&state))?;
    let mimetype = checked_mimetype(kind, &fields, &received.head)?;
    if let Some(name) = fields.file_name.take() {
        fields.file_name = Some(
            clean_file_name(&name)
                .ok_or_else(|| ApiError::InvalidBody("file_name is empty".to_owned()))?,
        );
    }
    let client = session.connected_client()?;
    let mut to = to;
    if fields.check_number && to.is_pn() {
        let found = messaging::on_whatsapp(&client, &[to.user().to_owned()]).await?;
        match found.into_iter().next().flatten() {
            // Send to the account's own JID (it may differ from the number as typed).
            Some(jid) => to = jid,
            None => return Err(ApiError::NotOnWhatsApp),
        }
    }
    let file_name = fields.file_name.clone();
    let message = match upload_and_build(&client, kind, &received, mimetype.clone(), fields).await {
        Ok(message) => message,
        Err(e) => {
            Metrics::inc(&state.metrics().messages_failed);
            return Err(e);
        }
    };
    drop(received.temp);
    let stored = StoredMedia::of_message(kind, &message, file_name);
    let content = Outgoing::Media {
        kind: kind.as_str(),
        message: Box::new(message),
    };
    // Recorded `pending` before the engine sees it, then `sent` or `failed`, as text.
    let record = messaging::send(&state, &session, &client, &to, &content, kind.as_str()).await?;
    if let Some(stored) = stored {
        ServerDb::put(&state.db().media, key2(&id, &record.id), &stored)?;
    }
    Ok((
        StatusCode::CREATED,
        Json(SentMediaMessage {
            download_url: download_path(&id, &record.id),
            id: record.id,
            status: record.status,
            to: record.to,
            kind: record.kind,
            mimetype,
            size: received.len,
        }),
    ))
}

fn default_cc(state: &AppState) -> Option<&str> {
    state.config().default_country_code.as_deref()
}

/// What the server keeps of a media message so `GET .../media/{message_id}` can download it
/// later (tree `media`, key `session \0 message id`). Holds the media key: `Debug` redacts
/// it; it is never logged or sent in events.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct StoredMedia {
    /// `image`, `video`, `audio`, `document` or `sticker`.
    pub(crate) kind: String,
    /// The key expansion: `image`, `sticker`, `video`, `audio` or `document`.
    pub(crate) media_type: String,
    pub(crate) direct_path: Option<String>,
    pub(crate) url: Option<String>,
    /// base64.
    pub(crate) media_key: String,
    /// base64.
    pub(crate) file_sha256: Option<String>,
    /// base64.
    pub(crate) file_enc_sha256: Option<String>,
    pub(crate) file_length: Option<u64>,
    pub(crate) mimetype: Option<String>,
    pub(crate) file_name: Option<String>,
    /// Unix ms.
    pub(crate) created_at: u64,
}

impl std::fmt::Debug for StoredMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredMedia")
            .field("kind", &self.kind)
            .field("direct_path", &self.direct_path)
            .field("file_length", &self.file_length)
            .field("mimetype", &self.mimetype)
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn media_type_name(t: MediaType) -> &'static str {
    match t {
        MediaType::Sticker => "sticker",
        MediaType::Video => "video",
        MediaType::Audio => "audio",
        MediaType::Document => "document",
        _ => "image",
    }
}

impl StoredMedia {
    /// The download reference of a media message (after unwrapping), or `None` when it has
    /// no downloadable media. `kind` names the message kind for the record.
    pub(crate) fn of_message(
        kind: Kind,
        message: &wa::Message,
        file_name: Option<String>,
    ) -> Option<Self> {
        let media = match MediaRef::from_message(message) {
            Ok(Some(m)) => m,
            Ok(None) => return None,
            Err(e) => {
                tracing::debug!(error = %e, "media message without a usable reference");
                return None;
            }
        };
        Some(Self::from_ref(kind, &media, file_name))
    }

    fn from_ref(kind: Kind, media: &MediaRef, file_name: Option<String>) -> Self {
        Self {
            kind: kind.as_str().to_owned(),
            media_type: media_type_name(media.media_type).to_owned(),
            direct_path: media.direct_path.clone(),
            url: media.url.clone(),
            media_key: b64(media.media_key.as_bytes()),
            file_sha256: media.file_sha256.map(|h| b64(&h)),
            file_enc_sha256: media.file_enc_sha256.map(|h| b64(&h)),
            file_length: media.file_length,
            mimetype: media.mimetype.clone(),
            file_name,
            created_at: now_ms(),
        }
    }

    /// Back to the engine's reference; `None` when the record is damaged.
    fn to_ref(&self) -> Option<MediaRef> {
        let decode = |s: &str| base64::engine::general_purpose::STANDARD.decode(s).ok();
        let hash = |s: &Option<String>| -> Option<Option<[u8; 32]>> {
            match s {
                None => Some(None),
                Some(s) => decode(s)
                    .and_then(|v| <[u8; 32]>::try_from(v).ok())
                    .map(Some),
            }
        };
        let media_type = match self.media_type.as_str() {
            "image" => MediaType::Image,
            "sticker" => MediaType::Sticker,
            "video" => MediaType::Video,
            "audio" => MediaType::Audio,
            "document" => MediaType::Document,
            _ => return None,
        };
        Some(MediaRef {
            media_type,
            direct_path: self.direct_path.clone(),
            url: self.url.clone(),
            media_key: MediaKey::from_slice(&decode(&self.media_key)?).ok()?,
            file_sha256: hash(&self.file_sha256)?,
            file_enc_sha256: hash(&self.file_enc_sha256)?,
            file_length: self.file_length,
            mimetype: self.mimetype.clone(),
        })
    }
}

/// The kind of a (received) message's media, after unwrapping: `None` for other messages.
pub(crate) fn kind_of(message: &wa::Message) -> Option<Kind> {
    let m = wa_engine::message::content::unwrap(message);
    if m.image_message.is_some() {
        Some(Kind::Image)
    } else if m.video_message.is_some() || m.ptv_message.is_some() {
        Some(Kind::Video)
    } else if m.audio_message.is_some() {
        Some(Kind::Audio)
    } else if m.document_message.is_some() {
        Some(Kind::Document)
    } else if m.sticker_message.is_some() {
        Some(Kind::Sticker)
    } else {
        None
    }
}

/// The `media` object of a received media message (after unwrapping), without the parts
/// that need the session (see [`incoming`]): `kind`, `mimetype`, `size` (bytes), `caption`,
/// `file_name`, `seconds`, `voice_note`, `width`, `height`, `animated`, `page_count`.
/// `None` for messages without media.
pub(crate) fn media_fields(message: &wa::Message) -> Option<serde_json::Value> {
    use serde_json::json;
    let m = wa_engine::message::content::unwrap(message);
    let kind = kind_of(m)?.as_str();
    let v = if let Some(x) = &m.image_message {
        json!({ "mimetype": x.mimetype, "size": x.file_length, "caption": x.caption,
                "width": x.width, "height": x.height })
    } else if let Some(x) = m.video_message.as_ref().or(m.ptv_message.as_ref()) {
        json!({ "mimetype": x.mimetype, "size": x.file_length, "caption": x.caption,
                "width": x.width, "height": x.height, "seconds": x.seconds,
                "gif": x.gif_playback.unwrap_or(false) })
    } else if let Some(x) = &m.audio_message {
        json!({ "mimetype": x.mimetype, "size": x.file_length, "seconds": x.seconds,
                "voice_note": x.ptt.unwrap_or(false) })
    } else if let Some(x) = &m.document_message {
        json!({ "mimetype": x.mimetype, "size": x.file_length, "caption": x.caption,
                "file_name": x.file_name, "title": x.title, "page_count": x.page_count })
    } else if let Some(x) = &m.sticker_message {
        json!({ "mimetype": x.mimetype, "size": x.file_length, "width": x.width,
                "height": x.height, "animated": x.is_animated.unwrap_or(false) })
    } else {
        return None;
    };
    let mut v = v;
    if let serde_json::Value::Object(map) = &mut v {
        map.insert("kind".to_owned(), json!(kind));
    }
    Some(v)
}

/// How long an inline download of a small received file may take.
const INLINE_TIMEOUT: Duration = Duration::from_secs(30);

/// For a received media message of session `session`: stores its download reference (so
/// `GET .../media/{message_id}` works, also after a restart) and returns the fields to add
/// to its `media` object: `download_url` (absolute with `--public-url`), and `base64` of
/// the file when it is at most [`MediaSettings::inline_max_bytes`](crate::MediaSettings)
/// (`inline_error` when that download failed). `None` for messages without media or with
/// an unusable reference.
pub(crate) async fn incoming(
    state: &AppState,
    session: &str,
    client: Option<&Client>,
    message: &wa_engine::IncomingMessage,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    use serde_json::json;
    let inner = wa_engine::message::content::unwrap(&message.message);
    let kind = kind_of(inner)?;
    let file_name = inner
        .document_message
        .as_ref()
        .and_then(|d| d.file_name.clone());
    let stored = StoredMedia::of_message(kind, inner, file_name)?;
    let key = key2(session, &message.info.id);
    if let Err(e) = ServerDb::put(&state.db().media, key, &stored) {
        tracing::error!(%session, error = %e, "cannot store a media reference");
        return None;
    }
    let path = download_path(session, &message.info.id);
    let url = match &state.config().public_url {
        Some(base) => format!("{}{path}", base.trim_end_matches('/')),
        None => path,
    };
    let mut out = serde_json::Map::new();
    out.insert("download_url".to_owned(), json!(url));
    let limit = state.config().media.inline_max_bytes;
    let small = stored.file_length.is_some_and(|n| n <= limit);
    if limit > 0 && small {
        let fetched = match (client, stored.to_ref()) {
            (Some(client), Some(media)) => {
                tokio::time::timeout(INLINE_TIMEOUT, client.download(&media))
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
            _ => None,
        };
        match fetched {
            Some(bytes) => {
                out.insert("base64".to_owned(), json!(b64(&bytes)));
            }
            None => {
                out.insert("inline_error".to_owned(), json!("download failed"));
            }
        }
    }
    Some(out)
}

macro_rules! send_route {
    ($name:ident, $kind:expr, $path:literal, $summary:literal) => {
        #[doc = $summary]
        #[utoipa::path(post, path = $path, tag = "media",
            params(("id" = String, Path, description = "Session id")),
            request_body(
                description = "The file by `url` or `base64` (JSON), or as the `file` part of a \
                               multipart form. Its type is sniffed from the bytes.",
                content((SendMediaJson = "application/json"), (SendMediaUpload = "multipart/form-data"))
            ),
            responses((status = 201, body = SentMediaMessage),
                (status = 400, description = "`invalid_base64`, `missing_media`, `invalid_media_url`, \
                    `media_fetch_failed`, `malformed_multipart`, `invalid_phone_number`, ...", body = ErrorBody),
                (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
                (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
                (status = 413, description = "`media_too_large` or `payload_too_large`", body = ErrorBody),
                (status = 415, description = "`media_type_not_allowed` or `unsupported_media_type`", body = ErrorBody),
                (status = 422, body = ErrorBody), (status = 502, body = ErrorBody),
                (status = 504, body = ErrorBody)),
            security(("api_key" = []), ("bearer" = [])))]
        pub(crate) async fn $name(
            State(state): State<AppState>,
            caller: Caller,
            ApiPath(id): ApiPath<String>,
            request: Request,
        ) -> Result<(StatusCode, Json<SentMediaMessage>), ApiError> {
            send(state, caller, id, $kind, request).await
        }
    };
}

send_route!(
    send_image,
    Kind::Image,
    "/api/sessions/{id}/messages/image",
    "Send an image (JPEG, PNG, WebP) with an optional caption."
);
send_route!(
    send_video,
    Kind::Video,
    "/api/sessions/{id}/messages/video",
    "Send a video (MP4, 3GPP) with an optional caption."
);
send_route!(
    send_audio,
    Kind::Audio,
    "/api/sessions/{id}/messages/audio",
    "Send an audio file, or a voice note (`voice_note`, Ogg Opus)."
);
send_route!(
    send_document,
    Kind::Document,
    "/api/sessions/{id}/messages/document",
    "Send a document (any file) with a file name and optional caption."
);
send_route!(
    send_sticker,
    Kind::Sticker,
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
    caller: Caller,
    ApiPath((id, message_id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require_session(&id)?;
    let session = state.session(&id)?;
    let stored: StoredMedia = ServerDb::get(&state.db().media, key2(&id, &message_id), "media")?
        .ok_or(MediaApiError::NotFound)?;
    let media = stored
        .to_ref()
        .ok_or_else(|| ApiError::internal("stored media record is damaged"))?;
    let client = session.connected_client()?;
    let temp = TempFile::new(&state)?;
    let mut file = tokio::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(temp.path())
        .await
        .map_err(ApiError::internal)?;
    download_verified(&client, &media, &mut file).await?;
    file.flush().await.map_err(ApiError::internal)?;
    let len = file.metadata().await.map_err(ApiError::internal)?.len();
    let file = tokio::fs::File::open(temp.path())
        .await
        .map_err(ApiError::internal)?;
    let mimetype = stored
        .mimetype
        .as_deref()
        .filter(|m| valid_mimetype(m))
        .unwrap_or("application/octet-stream");
    let mut response = Response::new(Body::from_stream(read_stream(file, temp)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(mimetype)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Some(name) = stored.file_name.as_deref().and_then(ascii_file_name)
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

/// A file name for `Content-Disposition`: printable ASCII without quotes or backslashes
/// (others become `_`); `None` when nothing is left.
fn ascii_file_name(name: &str) -> Option<String> {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_FILE_NAME)
        .collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty()).then(|| cleaned.to_owned())
}

/// Streams `file` in chunks; `temp` is dropped (the file removed) when the stream ends.
fn read_stream(
    file: tokio::fs::File,
    temp: TempFile,
) -> impl futures_util::Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
    futures_util::stream::unfold(Some((file, temp)), |state| async move {
        let (mut file, temp) = state?;
        let mut buf = vec![0_u8; STREAM_CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some((file, temp))))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// Downloads into `sink` and maps the engine's errors.
async fn download_verified(
    client: &Client,
    media: &MediaRef,
    sink: &mut tokio::fs::File,
) -> Result<(), ApiError> {
    match client.download_to(media, sink).await {
        Ok(_) => Ok(()),
        Err(TransferError::Status { status: 404 | 410 }) => Err(MediaApiError::Expired.into()),
        Err(TransferError::Verify(e)) => {
            tracing::warn!(error = %e, "downloaded media failed verification");
            Err(MediaApiError::Verification.into())
        }
        Err(TransferError::MediaConnRequest(e)) => Err(e.into()),
        Err(e) => {
            tracing::warn!(error = %e, "media download failed");
            Err(MediaApiError::Download.into())
        }
    }
}

/// The media routes, with a body limit fitting the largest file as base64 plus
/// [`BODY_SLACK`] (the other routes keep the small JSON limit).
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    let max = usize::try_from(state.config().media.max_bytes).unwrap_or(usize::MAX);
    let limit = max
        .saturating_add(2)
        .saturating_div(3)
        .saturating_mul(4)
        .saturating_add(BODY_SLACK);
    Router::new()
        .route("/api/sessions/{id}/messages/image", post(send_image))
        .route("/api/sessions/{id}/messages/video", post(send_video))
        .route("/api/sessions/{id}/messages/audio", post(send_audio))
        .route("/api/sessions/{id}/messages/document", post(send_document))
        .route("/api/sessions/{id}/messages/sticker", post(send_sticker))
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestBodyLimitLayer::new(limit))
        .route("/api/sessions/{id}/media/{message_id}", get(download))
}

impl IntoResponse for MediaApiError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_normalises_to_whatsapp_names() {
        let mut opus = b"OggS\0\x02".to_vec();
        opus.resize(28, 0);
        opus.extend_from_slice(b"OpusHead\x01\x01");
        opus.resize(64, 0);
        assert_eq!(sniff(&opus), Some("audio/ogg; codecs=opus"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR"), Some("image/png"));
        assert_eq!(sniff(b"%PDF-1.7\n"), Some("application/pdf"));
        assert_eq!(sniff(b"hello, world"), None);
    }

    #[test]
    fn allow_lists_follow_the_kind() {
        assert!(Kind::Image.allowed("image/png", false));
        assert!(!Kind::Image.allowed("application/pdf", false));
        assert!(!Kind::Sticker.allowed("image/png", false));
        assert!(Kind::Audio.allowed("audio/mpeg", false));
        assert!(
            !Kind::Audio.allowed("audio/mpeg", true),
            "voice notes are Opus"
        );
        assert!(Kind::Audio.allowed("audio/ogg; codecs=opus", true));
        assert!(Kind::Document.allowed("application/x-msdownload", false));
    }

    #[test]
    fn file_names_lose_paths_and_control_characters() {
        assert_eq!(
            clean_file_name("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(
            clean_file_name("C:\\x\\in\nvoice.pdf").as_deref(),
            Some("invoice.pdf")
        );
        assert_eq!(clean_file_name("dir/"), None);
        assert_eq!(clean_file_name(".."), None);
    }

    #[test]
    fn media_urls_must_be_absolute_http() {
        assert!(parse_url("https://example.com/a.jpg").is_ok());
        assert!(parse_url("file:///etc/passwd").is_err());
        assert!(parse_url("ftp://example.com/a").is_err());
        assert!(parse_url("/relative").is_err());
    }

    #[test]
    fn stored_media_references_round_trip_and_hide_the_key() {
        let media = MediaRef {
            media_type: MediaType::Sticker,
            direct_path: Some("/v/t62.15575-24/1_2_n.enc?ccb=11-4".into()),
            url: None,
            media_key: MediaKey::from_bytes([7; 32]),
            file_sha256: Some([1; 32]),
            file_enc_sha256: None,
            file_length: Some(1234),
            mimetype: Some("image/webp".into()),
        };
        let stored = StoredMedia::from_ref(Kind::Sticker, &media, None);
        let json = serde_json::to_vec(&stored).expect("json");
        let back: StoredMedia = serde_json::from_slice(&json).expect("parse");
        let again = back.to_ref().expect("usable");
        assert_eq!(again.media_type, MediaType::Sticker);
        assert_eq!(again.direct_path, media.direct_path);
        assert_eq!(again.media_key.as_bytes(), &[7; 32]);
        assert_eq!(again.file_sha256, Some([1; 32]));
        assert_eq!(again.file_enc_sha256, None);
        assert_eq!(again.file_length, Some(1234));
        assert!(
            !format!("{back:?}").contains(&stored.media_key),
            "Debug redacts the key"
        );
        let mut damaged = back;
        damaged.media_key = "AAAA".into();
        assert!(damaged.to_ref().is_none(), "a short key is refused");
    }

    #[test]
    fn declared_mimetypes_are_checked() {
        assert!(valid_mimetype("text/csv"));
        assert!(valid_mimetype("text/plain; charset=utf-8"));
        assert!(!valid_mimetype("text"));
        assert!(!valid_mimetype("a/b\r\nx: y"));
    }
}
