//! `POST /api/sessions/{id}/otp` and `/otp/verify`: one-time codes over WhatsApp with
//! server-side generation, hashed storage, attempt limits and rate limits.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiJson, AuthorizedSession};
use crate::auth::random_b64;
use crate::db::{DbError, OtpRecord, ServerDb, decode, encode, key2, now_ms};
use crate::error::{ApiError, ErrorBody};
use crate::messaging::{self, Outgoing};
use crate::otp;
use crate::phone::PhoneNumber;
use crate::state::AppState;

/// `POST /api/sessions/{id}/otp` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OtpRequest {
    /// Recipient phone number (local numbers use the default country code).
    #[schema(value_type = crate::api_types::E164)]
    to: String,
    /// Digits of the code, 4-10; default the server's (6).
    #[serde(default, deserialize_with = "crate::api_types::opt_int")]
    #[schema(minimum = 4, maximum = 10)]
    digits: Option<u8>,
    /// Validity in seconds, 30-3600; default the server's (300).
    #[serde(default, deserialize_with = "crate::api_types::opt_int")]
    #[schema(minimum = 30, maximum = 3600)]
    ttl_seconds: Option<u64>,
    /// Message text with `{code}` (and optionally `{minutes}`); default the server's.
    #[schema(max_length = 1024, pattern = "\\{code\\}")]
    template: Option<String>,
}

/// A code was sent.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OtpSent {
    /// Id of this code.
    otp_id: String,
    /// The recipient, E.164 digits.
    to: String,
    /// Unix ms.
    expires_at: u64,
    /// Id of the WhatsApp message carrying it; its delivery shows at
    /// `GET /api/sessions/{id}/messages/{message_id}` (type `otp`).
    message_id: String,
}

/// `POST /api/sessions/{id}/otp/verify` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OtpVerify {
    /// The recipient the code was sent to.
    #[schema(value_type = crate::api_types::E164)]
    to: String,
    /// The code the user typed.
    #[schema(min_length = 1, max_length = 32)]
    code: String,
}

/// The code was right (and is now used up).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OtpVerified {
    /// Always true.
    verified: bool,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Generate a code, send it, keep only its hash. Rate limits: one per recipient per
/// interval (default 60 s) and a per-session budget; both answer 429 with `Retry-After`.
#[utoipa::path(post, path = "/api/sessions/{id}/otp", tag = "otp",
    params(("id" = String, Path, description = "Session id")),
    request_body = OtpRequest,
    responses((status = 201, body = OtpSent),
        (status = 400, description = "Bad request: `invalid_phone_number`, `ambiguous_phone_number` (digits valid both in the default country and as an international number: send `+CC...`), ...", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn send(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<OtpRequest>,
) -> Result<(StatusCode, Json<OtpSent>), ApiError> {
    let cfg = &state.config().otp;
    let phone = PhoneNumber::parse(&body.to, state.config().default_country_code.as_deref())?;
    let digits = body.digits.unwrap_or(cfg.digits);
    let ttl = body.ttl_seconds.unwrap_or(cfg.ttl.as_secs());
    if !(4..=10).contains(&digits) || !(30..=3600).contains(&ttl) {
        return Err(ApiError::InvalidOtpSettings);
    }
    let template = body.template.unwrap_or_else(|| cfg.template.clone());
    if !template.contains("{code}") || template.chars().count() > 1024 {
        return Err(ApiError::InvalidTemplate);
    }
    let client = session.connected_client()?;

    let code = otp::generate(digits);
    let otp_id = format!("otp_{}", random_b64(12));
    let now = now_ms();
    let key = key2(&session.id, phone.digits());
    let record = OtpRecord {
        hash: otp::hash(
            state.otp_pepper(),
            &session.id,
            phone.digits(),
            &otp_id,
            &code,
        ),
        id: otp_id.clone(),
        created_at: now,
        expires_at: now + ttl * 1000,
        attempts: 0,
        max_attempts: cfg.max_attempts,
    };
    // Check both limits and reserve the slot in one critical section (no await inside).
    let sent_at = Instant::now();
    {
        let mut windows = state.otp_window();
        let previous: Option<OtpRecord> = ServerDb::get(&state.db().otp, &key, "otp")?;
        if let Some(prev) = previous {
            let next = prev
                .created_at
                .saturating_add(millis(cfg.recipient_interval));
            if next > now {
                return Err(ApiError::RateLimited {
                    retry_after: Duration::from_millis(next - now),
                });
            }
        }
        let window = windows.entry(session.id.clone()).or_default();
        while window
            .front()
            .is_some_and(|t| sent_at.duration_since(*t) >= cfg.session_window)
        {
            window.pop_front();
        }
        if window.len() >= cfg.session_limit as usize {
            let oldest = window.front().copied().unwrap_or(sent_at);
            return Err(ApiError::RateLimited {
                retry_after: cfg
                    .session_window
                    .saturating_sub(sent_at.duration_since(oldest)),
            });
        }
        window.push_back(sent_at);
        ServerDb::put(&state.db().otp, &key, &record)?;
    }
    state.db().flush().await?;
    let text = otp::render(&template, &code, ttl);
    let sent = messaging::send(
        &state,
        &session,
        &client,
        &phone.jid(),
        &Outgoing::Text {
            body: text,
            reply_to: None,
            mentions: Vec::new(),
        },
        "otp",
    )
    .await;
    match sent {
        Ok(message) => {
            state.metrics().otp_sent();
            Ok((
                StatusCode::CREATED,
                Json(OtpSent {
                    otp_id,
                    to: phone.digits().to_owned(),
                    expires_at: record.expires_at,
                    message_id: message.id,
                }),
            ))
        }
        Err(e) => {
            // Not sent: release the reservation so the caller may retry at once.
            let _ = state.db().otp.compare_and_swap(
                &key,
                Some(encode(&record)),
                None as Option<Vec<u8>>,
            );
            if let Some(w) = state.otp_window().get_mut(&session.id)
                && let Some(pos) = w.iter().position(|t| *t == sent_at)
            {
                w.remove(pos);
            }
            Err(e)
        }
    }
}

/// Check a code (constant time). Wrong codes count against `max_attempts`; a right code is
/// used up.
#[utoipa::path(post, path = "/api/sessions/{id}/otp/verify", tag = "otp",
    params(("id" = String, Path, description = "Session id")),
    request_body = OtpVerify,
    responses((status = 200, body = OtpVerified),
        (status = 400, description = "Bad request: `invalid_phone_number`, `ambiguous_phone_number` (digits valid both in the default country and as an international number: send `+CC...`), ...", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 410, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn verify(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<OtpVerify>,
) -> Result<Json<OtpVerified>, ApiError> {
    let phone = PhoneNumber::parse(&body.to, state.config().default_country_code.as_deref())?;
    if body.code.is_empty() || body.code.len() > 32 {
        return Err(ApiError::InvalidBody(
            "code must be 1-32 characters".to_owned(),
        ));
    }
    let key = key2(&session.id, phone.digits());
    let tree = &state.db().otp;
    // Compare-and-swap loop: concurrent guesses each count.
    let outcome = loop {
        let Some(old) = tree.get(&key).map_err(DbError::from)? else {
            return Err(ApiError::OtpNotFound);
        };
        let mut record: OtpRecord = decode(&old, "otp")?;
        if record.hash.is_empty() {
            return Err(ApiError::OtpNotFound);
        }
        let now = now_ms();
        let given = otp::hash(
            state.otp_pepper(),
            &session.id,
            phone.digits(),
            &record.id,
            &body.code,
        );
        let (outcome, burn) = if now > record.expires_at {
            (Err(ApiError::OtpExpired), true)
        } else if record.attempts >= record.max_attempts {
            (Err(ApiError::OtpAttemptsExceeded), true)
        } else if otp::hashes_equal(&given, &record.hash) {
            (Ok(()), true)
        } else {
            record.attempts += 1;
            if record.attempts >= record.max_attempts {
                (Err(ApiError::OtpAttemptsExceeded), true)
            } else {
                (
                    Err(ApiError::OtpInvalid {
                        attempts_left: record.max_attempts - record.attempts,
                    }),
                    false,
                )
            }
        };
        if burn {
            // Keep the record without a usable hash: single use, and the per-recipient
            // interval still counts from `created_at`.
            record.hash.clear();
        }
        let swapped = tree
            .compare_and_swap(&key, Some(old), Some(encode(&record)))
            .map_err(DbError::from)?;
        if swapped.is_ok() {
            break outcome;
        }
    };
    state.db().flush().await?;
    outcome?;
    state.metrics().otp_verified();
    Ok(Json(OtpVerified { verified: true }))
}
