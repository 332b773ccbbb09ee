//! WAHA pairing: `GET /api/{session}/auth/qr` (PNG, `Base64File` JSON, or `format=raw`
//! `QRCodeValue`) and `POST /api/{session}/auth/request-code`, from the session's current
//! QR and the engine's pairing code request.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use super::{Key, WahaError, parse};
use crate::error::ApiError;
use crate::phone::PhoneNumber;
use crate::session::SessionStatus;
use crate::state::AppState;

/// `GET /api/{session}/auth/qr` options.
#[derive(Debug, Deserialize)]
pub(crate) struct QrQuery {
    /// `image` (default) or `raw`.
    #[serde(default)]
    format: Option<String>,
}

/// The current QR: `format=raw` → `{value}`; else `Accept: application/json` →
/// `{mimetype: "image/png", data: <base64>}`; else the PNG itself.
///
/// # Errors
/// 409 `session_not_pairing` when no QR is shown (paired, or between QRs), 400 for an
/// unknown `format`.
pub(crate) async fn qr(
    State(state): State<AppState>,
    key: Key,
    Path(name): Path<String>,
    super::WahaQuery(query): super::WahaQuery<QrQuery>,
    headers: HeaderMap,
) -> Result<Response, WahaError> {
    let session = key.session(&state, &name)?;
    let live = session.live();
    let (SessionStatus::Qr, Some(qr)) = (live.status, live.qr) else {
        return Err(ApiError::NotPairing.into());
    };
    match query.format.as_deref().unwrap_or("image") {
        "raw" => Ok(Json(json!({ "value": qr.code })).into_response()),
        "image" => {
            let png = crate::render::qr_png(&qr.code).map_err(ApiError::internal)?;
            let wants_json = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("application/json"));
            if wants_json {
                Ok(Json(json!({
                    "mimetype": "image/png",
                    "data": base64::engine::general_purpose::STANDARD.encode(&png),
                }))
                .into_response())
            } else {
                Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
            }
        }
        other => Err(WahaError::bad_request(format!(
            "format must be image or raw, not {other:?}"
        ))),
    }
}

/// `POST /api/{session}/auth/request-code` body (`RequestCodeRequest`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RequestCode {
    /// The account's phone number.
    phone_number: String,
    /// Empty for a web pairing code; `sms`/`voice` (registration) are not offered.
    #[serde(default)]
    method: Option<String>,
}

/// A pairing code for `phoneNumber`: 201 `{code: "ABCD-EFGH"}`.
///
/// # Errors
/// 501 `not_supported` for `method` `sms`/`voice`; 409 `session_not_pairing` when the
/// session shows no QR; 422 `not_on_whatsapp`; the native phone-number errors.
pub(crate) async fn request_code(
    State(state): State<AppState>,
    key: Key,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), WahaError> {
    let session = key.session(&state, &name)?;
    let body: RequestCode = parse(&body)?;
    if body.method.as_deref().is_some_and(|m| !m.is_empty()) {
        return Err(WahaError::not_supported(
            "method sms/voice (account registration) is not supported; omit method for a pairing code",
        ));
    }
    let phone = PhoneNumber::parse(
        &body.phone_number,
        state.config().default_country_code.as_deref(),
    )?;
    let live = session.live();
    let (Some(client), SessionStatus::Qr | SessionStatus::PairingCode) = (live.client, live.status)
    else {
        return Err(ApiError::NotPairing.into());
    };
    let code = match client.request_pairing_code(phone.digits()).await {
        Err(wa_engine::SendError::Rejected { code: 404, .. }) => {
            return Err(ApiError::NotOnWhatsApp.into());
        }
        other => other.map_err(ApiError::from)?,
    };
    Ok((StatusCode::CREATED, Json(json!({ "code": code }))))
}
