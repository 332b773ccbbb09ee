//! The one error type of the HTTP API: [`ApiError`] renders every failure as
//! `{"error": {"code": "<stable snake_case code>", "message": "<short text>"}}` with the
//! right status (STYLE §4; axum `examples/error-handling`). Details of internal failures are
//! logged, never returned.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use wa_engine::SendError;

/// Every way a request can fail. Each variant has a stable [`code`](Self::code) and status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 400 `malformed_json`: the body is not valid JSON.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// 422 `invalid_body`: valid JSON of the wrong shape (missing or unknown field, wrong type).
    #[error("invalid request body: {0}")]
    InvalidBody(String),
    /// 415 `unsupported_media_type`: the body is not declared as `application/json`.
    #[error("expected a body with Content-Type: application/json")]
    UnsupportedMediaType,
    /// 413 `payload_too_large`: the body exceeds the configured limit.
    #[error("request body too large")]
    PayloadTooLarge,
    /// 400 `invalid_parameter`: a path or query parameter does not parse.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// 401 `auth_required`: no API key or token was given.
    #[error("authentication required: send `Authorization: Bearer <key>` or `x-api-key`")]
    AuthRequired,
    /// 401 `invalid_credentials`: the key or token is wrong.
    #[error("invalid API key or token")]
    InvalidCredentials,
    /// 403 `forbidden`: a session token used outside its session or for an admin route.
    #[error("this token does not grant access to this resource")]
    Forbidden,
    /// 401 `invalid_link`: a signed pairing link is malformed, forged or expired.
    #[error("pairing link invalid or expired")]
    InvalidLink,
    /// 404 `session_not_found`.
    #[error("no session with this id")]
    SessionNotFound,
    /// 409 `session_exists`.
    #[error("a session with this id already exists")]
    SessionExists,
    /// 400 `invalid_session_id`: ids are 1-64 of `A-Z a-z 0-9 _ -`.
    #[error("session ids are 1-64 characters of A-Z, a-z, 0-9, '_' and '-'")]
    InvalidSessionId,
    /// 409 `session_limit_reached`.
    #[error("the server holds its maximum number of sessions")]
    SessionLimit,
    /// 409 `session_not_connected`: the session is not logged in.
    #[error("the session is not connected")]
    NotConnected,
    /// 409 `session_not_pairing`: the session is already paired (or not offering a QR now).
    #[error("the session is not waiting for pairing")]
    NotPairing,
    /// 409 `qr_not_available`: no QR is current (not shown yet, or paired).
    #[error("no QR code is available for this session now")]
    QrNotAvailable,
    /// 400 `invalid_phone_number`.
    #[error("invalid phone number: {0}")]
    InvalidPhone(&'static str),
    /// 400 `ambiguous_phone_number`: digits without `+` that are a valid number both in the
    /// default country (national form without the trunk prefix) and as an international
    /// number elsewhere; the caller must say which (`+CC...`).
    #[error(
        "ambiguous phone number: valid as {national} (default country) and as {international}; \
         send it with '+' and the country code"
    )]
    AmbiguousPhone {
        /// The reading in the default country, `+628123456789`.
        national: String,
        /// The reading as an international number.
        international: String,
    },
    /// 400 `invalid_recipient`: a JID that does not parse or cannot receive messages.
    #[error("invalid recipient: {0}")]
    InvalidRecipient(String),
    /// 422 `not_on_whatsapp`: the number check says the recipient has no account.
    #[error("the recipient is not on WhatsApp")]
    NotOnWhatsApp,
    /// 404 `message_not_found`.
    #[error("no message with this id in this session")]
    MessageNotFound,
    /// 404 `webhook_not_found`.
    #[error("no webhook with this id in this session")]
    WebhookNotFound,
    /// 400 `invalid_webhook_url`: only absolute `http`/`https` URLs.
    #[error("invalid webhook URL: {0}")]
    InvalidWebhookUrl(&'static str),
    /// 400 `webhook_host_not_allowed`: the host is not in the configured allow-list.
    #[error("webhook host not allowed by the server configuration")]
    WebhookHostNotAllowed,
    /// 400 `target_not_allowed`: a webhook or media URL points at (or resolves only to) a
    /// non-public address (loopback, private, link-local, ...); the body's `allowed_by` names
    /// the server flag that allows it (`--allow-private-targets`).
    #[error("target not allowed: {0}")]
    TargetNotAllowed(#[from] crate::egress::BlockedTarget),
    /// 400 `invalid_template`: an OTP template must contain `{code}`.
    #[error("the template must contain {{code}} and be at most 1024 characters")]
    InvalidTemplate,
    /// 400 `invalid_otp_settings`: digits out of 4..=10 or TTL out of 30..=3600 s.
    #[error("digits must be 4-10 and ttl_seconds 30-3600")]
    InvalidOtpSettings,
    /// 429 `rate_limited` with `Retry-After`.
    #[error("rate limited; retry after {} s", retry_after.as_secs())]
    RateLimited {
        /// How long until a request may succeed.
        retry_after: Duration,
    },
    /// 429 `send_rate_limited` (the session's sends per minute), `recipient_rate_limited`
    /// (pacing per recipient) or `daily_quota_exceeded` (the session's sends per UTC day),
    /// with `Retry-After` (`crate::limits`).
    #[error("{limit} (see retry_after)")]
    SendLimited {
        /// Which limit refused the send.
        limit: crate::limits::SendLimit,
        /// How long until a send may pass it.
        retry_after: Duration,
    },
    /// 409 `message_not_retryable`: only a `failed` message sent through the API that kept
    /// its content (not an OTP, not a received message) can be retried, once.
    #[error("this message cannot be retried: {0}")]
    NotRetryable(&'static str),
    /// 409 `message_not_revocable`: only a message this session sent can be deleted for
    /// everyone.
    #[error("only a message this session sent can be deleted for everyone")]
    MessageNotRevocable,
    /// 501 `not_implemented`: the route is reserved for a feature not available yet.
    #[error("not implemented: {0}")]
    NotImplemented(&'static str),
    /// 404 `otp_not_found`: no code is pending for this recipient.
    #[error("no code is pending for this recipient")]
    OtpNotFound,
    /// 410 `otp_expired`.
    #[error("the code has expired")]
    OtpExpired,
    /// 422 `otp_invalid`: wrong code; `attempts_left` more tries.
    #[error("wrong code")]
    OtpInvalid {
        /// Guesses left before the code is burnt.
        attempts_left: u32,
    },
    /// 429 `otp_attempts_exceeded`: too many wrong guesses; the code is burnt.
    #[error("too many wrong guesses; request a new code")]
    OtpAttemptsExceeded,
    /// 404 `sandbox_disabled`: the route needs `--sandbox`.
    #[error("this server does not run in sandbox mode")]
    SandboxDisabled,
    /// 409 `sandbox_<code>`: the simulated phone refused.
    #[error("sandbox phone: {message}")]
    Sandbox {
        /// The sandbox's error code (`PhoneError::code`).
        code: &'static str,
        /// Its message.
        message: String,
    },
    /// 502 `upstream_rejected`: the WhatsApp server answered with an error.
    #[error("the WhatsApp server rejected the request (code {0})")]
    UpstreamRejected(u16),
    /// 504 `upstream_timeout`: no answer from the WhatsApp server in time.
    #[error("the WhatsApp server did not answer in time")]
    UpstreamTimeout,
    /// 422 `recipient_unreachable`: the recipient has no device a message can be encrypted
    /// for (no account, or no device published keys).
    #[error("the recipient has no reachable device (not on WhatsApp?)")]
    RecipientUnreachable,
    /// 422 `recipient_requires_token`: the WhatsApp server refused a 1:1 message with 463
    /// (shared/protocol/07 §3.4): the recipient accepts a first message from this account only
    /// with a privacy token, and the message carried none the server accepted. Nothing was
    /// delivered and the engine did not re-send. 422 (not 429): retrying the same request
    /// fails the same way until the session's state changes.
    #[error(
        "{to} accepts a first message from this account only with a privacy token, and none \
         could be attached (WhatsApp error 463). Have the recipient message this account \
         first (its reply gives the session a trusted-contact token), or let the session \
         finish app-state / history sync with its phone (which delivers the account's NCT \
         salt for a cstoken), then send again. Do not retry in a loop: every attempt counts \
         as another reach-out"
    )]
    RecipientRequiresToken {
        /// The recipient as addressed on the wire.
        to: String,
    },
    /// 429 `reachout_timelocked`: the account is under a reach-out timelock (07 §3.6) and may
    /// not start new chats until `until` (unix seconds; 0 = the server named no end; also in
    /// the body's `locked_until` and, when known, `Retry-After`). Existing chats still work.
    #[error(
        "this account may not start new chats until {until} (unix seconds; 0 = unknown): \
         WhatsApp put it under a reach-out timelock (error 463). Existing chats still work; \
         send to new contacts after the lock ends, and do not retry in a loop"
    )]
    ReachoutTimelocked {
        /// When the lock ends, unix seconds (0 when unknown).
        until: u64,
    },
    /// 429 `message_capping`: the WhatsApp server refused a 1:1 message with 475 (new-chat
    /// message capping, 07 §3.4): the account used up its quota of new chats for the current
    /// cycle. 429 because it is a quota that frees up with time (the session's
    /// `new_chat_capping` event carries the cycle end); no `Retry-After`, since the error
    /// itself does not say when.
    #[error(
        "this account used up its quota of new chats for the current cycle (WhatsApp error \
         475); write to contacts with an existing chat, or wait for the next cycle (see the \
         `new_chat_capping` event)"
    )]
    MessageCapping,
    /// 404 `group_not_found`: the WhatsApp server knows no such group.
    #[error("no such group")]
    GroupNotFound,
    /// 403 `not_group_member`: the session's account is not a member of the group.
    #[error("the session's account is not a member of this group")]
    NotGroupMember,
    /// 403 `group_forbidden`: the WhatsApp server refused a group change: the session's
    /// account is not a member, or not an admin where one must be (membership, settings,
    /// invite links; subject and description once the group is locked).
    #[error("not a member of this group, or not an admin where one must be")]
    GroupForbidden,
    /// 404 `invite_not_found`: no group has this invite code (unknown, or revoked).
    #[error("no group has this invite code (unknown or revoked)")]
    InviteNotFound,
    /// 409 `group_conflict`: the group changed at the same time (e.g. its description was
    /// replaced in between); read it again and retry.
    #[error("the group changed at the same time; read it again and retry")]
    GroupConflict,
    /// 502 `upstream_bad_response`: the WhatsApp server's answer could not be read.
    #[error("unexpected response from the WhatsApp server")]
    UpstreamBadResponse,
    /// 404 `not_found`: no such route.
    #[error("no such route")]
    NotFound,
    /// 414 `uri_too_long`: the request target is longer than the HTTP server accepts
    /// (65534 bytes; answered by `HttpListener`'s connections).
    #[error("the request URI is too long")]
    UriTooLong,
    /// 405 `method_not_allowed`.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// 503 `degraded`: `/ready?strict=true` while sessions cannot reach the WhatsApp server.
    #[error("{0} session(s) cannot reach the WhatsApp server (see /ready)")]
    Degraded(usize),
    /// 503 `shutting_down`.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// A media send or download failed (413, 415, 400, 404, 410, 502; see
    /// [`MediaApiError`]).
    #[error(transparent)]
    Media(#[from] MediaApiError),
    /// 500 `internal`: logged with its detail; the response says only "internal error".
    #[error("internal error")]
    Internal(String),
    /// A send that failed after its status resource was written: status and code are the
    /// inner error's, and the body also carries `message_id`, whose status resource reads
    /// `failed` with this error.
    #[error("{inner}")]
    SendFailed {
        /// The id of the failed message.
        message_id: String,
        /// Why it failed.
        inner: Box<Self>,
    },
}

/// The JSON error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Code and message of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `session_not_found`.
    pub code: String,
    /// Short human-readable text (may change between versions).
    pub message: String,
    /// For `rate_limited`, `send_rate_limited`, `recipient_rate_limited` and
    /// `daily_quota_exceeded`: seconds until a retry may succeed (also in `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// For `otp_invalid`: guesses left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts_left: Option<u32>,
    /// For a send that failed after it was recorded: the message id, whose status resource
    /// (`GET /api/sessions/{id}/messages/{message_id}`) reads `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// For `target_not_allowed`: the server flag that allows such targets
    /// (`--allow-private-targets`; environment `WA_ALLOW_PRIVATE_TARGETS=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_by: Option<String>,
    /// For `reachout_timelocked`: when the lock ends, unix seconds (0 = the server named no
    /// end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<u64>,
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MalformedJson(_)
            | Self::InvalidParameter(_)
            | Self::InvalidSessionId
            | Self::InvalidPhone(_)
            | Self::AmbiguousPhone { .. }
            | Self::InvalidRecipient(_)
            | Self::InvalidWebhookUrl(_)
            | Self::WebhookHostNotAllowed
            | Self::TargetNotAllowed(_)
            | Self::InvalidTemplate
            | Self::InvalidOtpSettings => StatusCode::BAD_REQUEST,
            Self::InvalidBody(_)
            | Self::NotOnWhatsApp
            | Self::RecipientUnreachable
            | Self::RecipientRequiresToken { .. }
            | Self::OtpInvalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::AuthRequired | Self::InvalidCredentials | Self::InvalidLink => {
                StatusCode::UNAUTHORIZED
            }
            Self::Forbidden | Self::NotGroupMember | Self::GroupForbidden => StatusCode::FORBIDDEN,
            Self::InviteNotFound => StatusCode::NOT_FOUND,
            Self::GroupConflict => StatusCode::CONFLICT,
            Self::SessionNotFound
            | Self::MessageNotFound
            | Self::WebhookNotFound
            | Self::OtpNotFound
            | Self::SandboxDisabled
            | Self::GroupNotFound
            | Self::NotFound => StatusCode::NOT_FOUND,
            Self::SessionExists
            | Self::SessionLimit
            | Self::NotConnected
            | Self::NotPairing
            | Self::QrNotAvailable
            | Self::Sandbox { .. } => StatusCode::CONFLICT,
            Self::OtpExpired => StatusCode::GONE,
            Self::RateLimited { .. }
            | Self::SendLimited { .. }
            | Self::OtpAttemptsExceeded
            | Self::ReachoutTimelocked { .. }
            | Self::MessageCapping => StatusCode::TOO_MANY_REQUESTS,
            Self::NotRetryable(_) | Self::MessageNotRevocable => StatusCode::CONFLICT,
            Self::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::UpstreamRejected(_) | Self::UpstreamBadResponse => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::ShuttingDown | Self::Degraded(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Media(e) => e.status(),
            Self::SendFailed { inner, .. } => inner.status(),
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "malformed_json",
            Self::InvalidBody(_) => "invalid_body",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::InvalidParameter(_) => "invalid_parameter",
            Self::AuthRequired => "auth_required",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Forbidden => "forbidden",
            Self::InvalidLink => "invalid_link",
            Self::SessionNotFound => "session_not_found",
            Self::SessionExists => "session_exists",
            Self::InvalidSessionId => "invalid_session_id",
            Self::SessionLimit => "session_limit_reached",
            Self::NotConnected => "session_not_connected",
            Self::NotPairing => "session_not_pairing",
            Self::QrNotAvailable => "qr_not_available",
            Self::InvalidPhone(_) => "invalid_phone_number",
            Self::AmbiguousPhone { .. } => "ambiguous_phone_number",
            Self::InvalidRecipient(_) => "invalid_recipient",
            Self::NotOnWhatsApp => "not_on_whatsapp",
            Self::MessageNotFound => "message_not_found",
            Self::WebhookNotFound => "webhook_not_found",
            Self::InvalidWebhookUrl(_) => "invalid_webhook_url",
            Self::WebhookHostNotAllowed => "webhook_host_not_allowed",
            Self::TargetNotAllowed(_) => "target_not_allowed",
            Self::InvalidTemplate => "invalid_template",
            Self::InvalidOtpSettings => "invalid_otp_settings",
            Self::RateLimited { .. } => "rate_limited",
            Self::SendLimited { limit, .. } => limit.code(),
            Self::NotRetryable(_) => "message_not_retryable",
            Self::MessageNotRevocable => "message_not_revocable",
            Self::NotImplemented(_) => "not_implemented",
            Self::OtpNotFound => "otp_not_found",
            Self::OtpExpired => "otp_expired",
            Self::OtpInvalid { .. } => "otp_invalid",
            Self::OtpAttemptsExceeded => "otp_attempts_exceeded",
            Self::SandboxDisabled => "sandbox_disabled",
            Self::Sandbox { code, .. } => code,
            Self::UpstreamRejected(_) => "upstream_rejected",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::RecipientUnreachable => "recipient_unreachable",
            Self::RecipientRequiresToken { .. } => "recipient_requires_token",
            Self::ReachoutTimelocked { .. } => "reachout_timelocked",
            Self::MessageCapping => "message_capping",
            Self::GroupNotFound => "group_not_found",
            Self::NotGroupMember => "not_group_member",
            Self::GroupForbidden => "group_forbidden",
            Self::InviteNotFound => "invite_not_found",
            Self::GroupConflict => "group_conflict",
            Self::UpstreamBadResponse => "upstream_bad_response",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UriTooLong => "uri_too_long",
            Self::ShuttingDown => "shutting_down",
            Self::Degraded(_) => "degraded",
            Self::Internal(_) => "internal",
            Self::Media(e) => e.code(),
            Self::SendFailed { inner, .. } => inner.code(),
        }
    }

    /// An internal failure: the detail is logged, the client sees only `internal`.
    pub(crate) fn internal(what: impl std::fmt::Display) -> Self {
        Self::Internal(what.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (this, message_id) = match self {
            Self::SendFailed { message_id, inner } => (*inner, Some(message_id)),
            other => (other, None),
        };
        let status = this.status();
        if let Self::Internal(detail) = &this {
            tracing::error!(%detail, "internal error");
        } else {
            tracing::debug!(%status, code = this.code(), "request failed");
        }
        let retry_after = match &this {
            // Round up: a client waiting the advertised time must succeed.
            Self::RateLimited { retry_after } | Self::SendLimited { retry_after, .. } => Some(
                retry_after
                    .as_secs()
                    .saturating_add(u64::from(retry_after.subsec_nanos() > 0))
                    .max(1),
            ),
            Self::ReachoutTimelocked { until } if *until > 0 => {
                let now = crate::db::now_ms() / 1000;
                Some(until.saturating_sub(now).max(1))
            }
            _ => None,
        };
        let locked_until = match &this {
            Self::ReachoutTimelocked { until } => Some(*until),
            _ => None,
        };
        let attempts_left = match &this {
            Self::OtpInvalid { attempts_left } => Some(*attempts_left),
            _ => None,
        };
        let allowed_by = match &this {
            Self::TargetNotAllowed(blocked) => Some(blocked.flag().to_owned()),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: this.code().to_owned(),
                message: this.to_string(),
                retry_after,
                attempts_left,
                message_id,
                allowed_by,
                locked_until,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The JSON error body of a plain `error` (no extra fields), for answers written outside
/// axum (`crate::listener`).
pub(crate) fn json_body(error: &ApiError) -> String {
    let body = ErrorBody {
        error: ErrorDetail {
            code: error.code().to_owned(),
            message: error.to_string(),
            retry_after: None,
            attempts_left: None,
            message_id: None,
            allowed_by: None,
            locked_until: None,
        },
    };
    serde_json::to_string(&body).unwrap_or_default()
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonSyntaxError(e) => Self::MalformedJson(e.body_text()),
            JsonRejection::JsonDataError(e) => Self::InvalidBody(e.body_text()),
            JsonRejection::MissingJsonContentType(_) => Self::UnsupportedMediaType,
            JsonRejection::BytesRejection(e) => {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Self::PayloadTooLarge
                } else {
                    Self::MalformedJson(e.body_text())
                }
            }
            other => Self::MalformedJson(other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::InvalidParameter(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::InvalidParameter(rejection.body_text())
    }
}

impl From<SendError> for ApiError {
    /// The engine's request errors. Send-specific readings of server error codes (a group
    /// that does not exist, a group we are not in) are in `ApiError::from_send`.
    fn from(e: SendError) -> Self {
        match e {
            SendError::NotConnected | SendError::NotLoggedIn | SendError::Closed(_) => {
                Self::NotConnected
            }
            SendError::NotPairing => Self::NotPairing,
            SendError::Timeout => Self::UpstreamTimeout,
            SendError::Rejected { code, .. } => Self::UpstreamRejected(code),
            SendError::Pair(_) => Self::InvalidPhone("rejected by the pairing code request"),
            SendError::NoDevices => Self::RecipientUnreachable,
            SendError::InvalidRecipient => {
                Self::InvalidRecipient("not a user or group JID".to_owned())
            }
            SendError::BadResponse(_) => Self::UpstreamBadResponse,
            SendError::RecipientRequiresToken { to, .. } => {
                Self::RecipientRequiresToken { to: to.to_string() }
            }
            SendError::ReachoutTimelocked { until, .. } => Self::ReachoutTimelocked { until },
            SendError::NewChatsCapped { .. } => Self::MessageCapping,
            other => Self::internal(other),
        }
    }
}

impl ApiError {
    /// A failed message send to `to`: as `From<SendError>`, except that for a group the
    /// server's 404 (no such group) and 403 (not a member) are the caller's problem, not the
    /// upstream's (the group metadata query a group send starts with; shared/protocol/06
    /// §1.2, whatsmeow `group.go` getGroupInfo).
    pub(crate) fn from_send(e: SendError, to: &wa_engine::Jid) -> Self {
        match e {
            SendError::Rejected { code: 404, .. } if to.is_group() => Self::GroupNotFound,
            SendError::Rejected { code: 403, .. } if to.is_group() => Self::NotGroupMember,
            other => other.into(),
        }
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        Self::internal(e)
    }
}

#[cfg(feature = "sandbox")]
impl From<wa_sandbox::PhoneError> for ApiError {
    fn from(e: wa_sandbox::PhoneError) -> Self {
        let code = match e.code() {
            "unknown_ref" => "sandbox_unknown_ref",
            "ref_expired" => "sandbox_ref_expired",
            "malformed_qr" => "sandbox_malformed_qr",
            "devices_exhausted" => "sandbox_devices_exhausted",
            _ => "sandbox_error",
        };
        Self::Sandbox {
            code,
            message: e.to_string(),
        }
    }
}

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

impl IntoResponse for MediaApiError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}
