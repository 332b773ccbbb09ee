//! The HTTP control API (axum, JSON): lets tests in any language (the Node/Baileys harness)
//! create accounts, scan QR codes, enter pairing codes, unlink devices and inject faults.
//!
//! Routes: see [`app`].

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::accounts::AccountInfo;
use crate::error::PhoneError;
use crate::script::Fault;
use crate::state::Router;

/// State of the control API: the router and the URLs to report at `/info`.
#[derive(Debug, Clone)]
pub struct ControlState {
    /// The sandbox's shared state.
    pub router: Router,
    /// The WebSocket URL clients connect to.
    pub ws_url: String,
    /// This API's base URL.
    pub control_url: String,
}

/// Builds the control API's axum router (serve it with `axum::serve`; test it with
/// `tower::ServiceExt::oneshot`).
///
/// Routes:
///
/// | Method and path | Body | Success |
/// |---|---|---|
/// | `GET /info` | — | 200 `{ws_url, control_url, trust_root_pub_b64, server_static_pub_b64}` |
/// | `POST /accounts` | `{"phone": "15551234567"}` | 201 account |
/// | `GET /accounts` | — | 200 `[account]` |
/// | `GET /accounts/{pn}` | — | 200 account |
/// | `POST /accounts/{pn}/scan` | `{"qr": "<QR string>"}` | 200 `{device, jid, lid}` (pair-success sent; the device is listed once the companion's signature verified) |
/// | `POST /accounts/{pn}/code` | `{"code": "ABCD-1234"}` | 200 `{}` (primary_hello sent) |
/// | `DELETE /accounts/{pn}/devices/{id}` | — | 204 |
/// | `POST /faults` | a [`Fault`] | 200 `{"connections": N}` |
/// | `GET /accounts/{pn}/app-state` | — | 200 [`AppStateView`](crate::AppStateView): the account's app state decoded with the phone's keys `{versions, records: [{collection, version, device, index, action_version, timestamp_ms, action}], errors}` |
/// | `POST /accounts/{pn}/app-state` | an [`AppStateAction`](crate::AppStateAction), e.g. `{"action": "mute", "chat": "1555…@s.whatsapp.net"}`, `archive`, `pin`, `mark_read`, `contact` `{phone, full_name}`, `push_name` `{name}` | 200 `{"version": N}` (the phone's patch; companions get `server_sync`) |
/// | `GET /accounts/{pn}/sync-switches` | — | 200 [`SyncSwitches`](crate::SyncSwitches) |
/// | `PUT /accounts/{pn}/sync-switches` | [`SyncSwitches`](crate::SyncSwitches) (missing fields: defaults) `{enabled, withhold_key_share, nct_syncd_delivery, nct_history_delivery, break_next_patch_mac}` | 200 the switches |
/// | `POST /accounts/{pn}/contacts` | `{"phone": "1555…", "full_name": "Ann Lee"}` | 201 `{}` (address-book entry: contact record, history conversation) |
/// | `GET /accounts/{pn}/history-receipts` | — | 200 `[{device, id}]` (`hist_sync` receipts) |
///
/// An account is `{phone, lid, identity_pub_b64, platform, business_name, devices: [{id, jid,
/// lid, key_index, os, paired_at, connected, prekeys}]}`. Errors are 4xx with
/// `{"error": {"code": "<snake_case>", "message": "<text>"}}`; codes are
/// [`PhoneError::code`] plus `bad_request` for unparsable bodies.
pub fn app(state: ControlState) -> axum::Router {
    axum::Router::new()
        .route("/info", get(info))
        .route("/accounts", post(create_account).get(list_accounts))
        .route("/accounts/{pn}", get(get_account))
        .route("/accounts/{pn}/scan", post(scan))
        .route("/accounts/{pn}/code", post(enter_code))
        .route("/accounts/{pn}/devices/{id}", delete(remove_device))
        .route("/faults", post(inject_fault))
        .route(
            "/accounts/{pn}/app-state",
            get(get_app_state).post(post_app_state),
        )
        .route(
            "/accounts/{pn}/sync-switches",
            get(get_switches).put(put_switches),
        )
        .route("/accounts/{pn}/contacts", post(add_contact))
        .route("/accounts/{pn}/history-receipts", get(history_receipts))
        .with_state(state)
}

/// The one error type of the control API; renders `{"error": {"code", "message"}}`.
#[derive(Debug)]
enum ApiError {
    Phone(PhoneError),
    BadRequest(String),
}

impl From<PhoneError> for ApiError {
    fn from(e: PhoneError) -> Self {
        Self::Phone(e)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        Self::BadRequest(e.body_text())
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        Self::BadRequest(e.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m.clone()),
            Self::Phone(e) => {
                let status = match e {
                    PhoneError::NoSuchAccount(_)
                    | PhoneError::NoSuchGroup(_)
                    | PhoneError::NoSuchDevice { .. }
                    | PhoneError::UnknownRef
                    | PhoneError::NoPendingCode => StatusCode::NOT_FOUND,
                    PhoneError::AccountExists(_) | PhoneError::DevicesExhausted => {
                        StatusCode::CONFLICT
                    }
                    PhoneError::RefExpired => StatusCode::GONE,
                    PhoneError::AppStateConflict { .. } => StatusCode::CONFLICT,
                    PhoneError::PhoneSync(_) => StatusCode::UNPROCESSABLE_ENTITY,
                    _ => StatusCode::BAD_REQUEST,
                };
                (status, e.code(), e.to_string())
            }
        };
        tracing::debug!(%status, code, %message, "control API error");
        (
            status,
            Json(ErrorBody {
                error: ErrorDetail { code, message },
            }),
        )
            .into_response()
    }
}

#[derive(Serialize)]
struct Info {
    ws_url: String,
    control_url: String,
    trust_root_pub_b64: String,
    server_static_pub_b64: String,
}

async fn info(State(s): State<ControlState>) -> Json<Info> {
    let b64 = base64::engine::general_purpose::STANDARD;
    Json(Info {
        ws_url: s.ws_url.clone(),
        control_url: s.control_url.clone(),
        trust_root_pub_b64: b64.encode(s.router.trust_root_key()),
        server_static_pub_b64: b64.encode(s.router.server_static_pub()),
    })
}

#[derive(Deserialize)]
struct CreateAccount {
    phone: String,
}

async fn create_account(
    State(s): State<ControlState>,
    body: Result<Json<CreateAccount>, JsonRejection>,
) -> Result<(StatusCode, Json<AccountInfo>), ApiError> {
    let Json(body) = body?;
    s.router.create_account(&body.phone)?;
    Ok((StatusCode::CREATED, Json(s.router.account(&body.phone)?)))
}

async fn list_accounts(State(s): State<ControlState>) -> Json<Vec<AccountInfo>> {
    Json(s.router.accounts())
}

async fn get_account(
    State(s): State<ControlState>,
    Path(pn): Path<String>,
) -> Result<Json<AccountInfo>, ApiError> {
    Ok(Json(s.router.account(&pn)?))
}

#[derive(Deserialize)]
struct Scan {
    qr: String,
}

async fn scan(
    State(s): State<ControlState>,
    Path(pn): Path<String>,
    body: Result<Json<Scan>, JsonRejection>,
) -> Result<Json<crate::phone::PendingLink>, ApiError> {
    let Json(body) = body?;
    Ok(Json(s.router.phone(&pn)?.scan(&body.qr)?))
}

#[derive(Deserialize)]
struct Code {
    code: String,
}

async fn enter_code(
    State(s): State<ControlState>,
    Path(pn): Path<String>,
    body: Result<Json<Code>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body?;
    s.router.phone(&pn)?.enter_code(&body.code)?;
    Ok(Json(serde_json::json!({})))
}

async fn remove_device(
    State(s): State<ControlState>,
    path: Result<Path<(String, u16)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path((pn, id)) = path?;
    s.router.phone(&pn)?.remove_device(id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct Injected {
    connections: usize,
}

async fn inject_fault(
    State(s): State<ControlState>,
    body: Result<Json<Fault>, JsonRejection>,
) -> Result<Json<Injected>, ApiError> {
    let Json(fault) = body?;
    Ok(Json(Injected {
        connections: s.router.inject(fault),
    }))
}

async fn get_app_state(
    State(s): State<ControlState>,
    Path(pn): Path<String>,
) -> Result<Json<crate::AppStateView>, ApiError> {
    Ok(Json(s.router.phone(&pn)?.app_state()))
}

async fn post_app_state(
    State(s): State<ControlState>,
    Path(pn): Path<String>,
    body: Result<Json<crate::AppStateAction>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(action) = body?;
    let version = s.router.phone(&pn)?.app_state_mutation(&action)?;
    Ok(Json(serde_json::json!({ "version": version })))
}

async fn get_switches(
    State(s): State<ControlState>,
    Path(pn): Path<String>,
) -> Result<Json<crate::SyncSwitches>, ApiError> {
    Ok(Json(s.router.phone(&pn)?.sync_switches()))
}

async fn put_switches(
    State(s): State<ControlState>,
    Path(pn): Path<String>,
    body: Result<Json<crate::SyncSwitches>, JsonRejection>,
) -> Result<Json<crate::SyncSwitches>, ApiError> {
    let Json(switches) = body?;
    let phone = s.router.phone(&pn)?;
    phone.set_sync_switches(switches)?;
    Ok(Json(phone.sync_switches()))
}

#[derive(Deserialize)]
struct Contact {
    phone: String,
    full_name: String,
}

async fn add_contact(
    State(s): State<ControlState>,
    Path(pn): Path<String>,
    body: Result<Json<Contact>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let Json(c) = body?;
    s.router.phone(&pn)?.add_contact(&c.phone, &c.full_name)?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({}))))
}

async fn history_receipts(
    State(s): State<ControlState>,
    Path(pn): Path<String>,
) -> Result<Json<Vec<crate::HistoryReceipt>>, ApiError> {
    Ok(Json(s.router.phone(&pn)?.history_receipts()))
}
