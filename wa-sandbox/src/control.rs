//! The HTTP control API (axum, JSON): lets tests in any language (the Node/Baileys harness)
//! create accounts, scan QR codes, enter pairing codes, unlink devices and inject faults.
//!
//! Routes: see [`app`].

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::accounts::AccountInfo;
use crate::error::PhoneError;
use crate::privacy::{GateConfig, PrivacySettings, Refusal};
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
/// | `PUT /accounts/{pn}/sync-switches` | [`SyncSwitches`](crate::SyncSwitches) (missing fields: defaults) `{enabled, withhold_key_share, nct_syncd_delivery, nct_history_delivery, break_next_patch_mac, suppress_server_sync, inline_history}` | 200 the switches |
/// | `POST /accounts/{pn}/contacts` | `{"phone": "1555…", "full_name": "Ann Lee"}` | 201 `{}` (address-book entry: contact record, history conversation) |
/// | `GET /accounts/{pn}/history-receipts` | — | 200 `[{device, id}]` (`hist_sync` receipts) |
/// | `GET /accounts/{pn}/privacy` | — | 200 settings |
/// | `PUT /accounts/{pn}/privacy` | settings (missing fields = defaults) | 200 settings (timelock / capping `mex` pushes as [`Router::set_privacy`]) |
/// | `POST /accounts/{pn}/nct_salt` | `{}` (restore the account's own salt) or `{"salt_b64": "<32 bytes>"}` | 200 `{"salt_b64"}` |
/// | `DELETE /accounts/{pn}/nct_salt` | — | 204 (its cstokens are refused from now on) |
/// | `GET /gate` | — | 200 gate config |
/// | `PUT /gate` | gate config (missing fields = defaults) | 200 gate config |
/// | `GET /tokens` | — | 200 `[{issuer, holder, token_b64, t}]` |
/// | `POST /tokens` | `{"issuer": pn, "holder": "<jid>", "t": unix_s?}` (t defaults to now) | 201 `{issuer, holder, token_b64, t}` (pushed to the holder as a privacy IQ from the issuer would) |
/// | `PUT /contacts` | `{"from": pn, "to": pn, "value": bool}` | 200 `{from, to, value}` (`has_contact(from, to)`) |
/// | `POST /clock/advance` | `{"seconds": N}` | 200 `{"now": unix_s}` |
/// | `GET /refusals` | — | 200 `[{id, sender, to, code}]` (1:1 messages refused with 400/463/475/479) |
/// | `POST /calls` | `{"from": pn, "to": pn, "video": bool?}` | 201 `{"call_id"}` (`from`'s phone rings every device of `to` with an `<offer>`) |
/// | `POST /accounts/{pn}/notifications` | a [`Notice`](crate::Notice), e.g. `{"kind": "group_subject", "group": "120363…@g.us", "subject": "New"}` | 200 `{"devices": N}` (pushed to the account's devices) |
/// | `GET /accounts/{pn}/edge-routing` | — | 200 [`EdgeRoutingView`](crate::EdgeRoutingView) `{issued_b64, received: [{device, routing_info_b64, connections}]}` |
/// | `GET /calls` | — | 200 `[{from, to, kind, call_id, call_creator, t}]` (every call stanza routed: offers, rejects, ...) |
///
/// Privacy settings (shared/protocol/07 §5) are `{policy: "off"|"p1"|"p2"|"p3", restricted,
/// ends: unix_s|null, lid_migrated, capping: {total_quota, used_quota, cycle_start,
/// cycle_end}|null}` (see [`PrivacySettings`], [`TokenPolicy`](crate::TokenPolicy)); the gate
/// config is `{n_server, reject_mixed_namespaces, reject_unmigrated_lid, min_app_version:
/// [primary, secondary, tertiary]|null, timelock_after_refusals: K|null, timelock_seconds,
/// tctoken_sending_prop, cstoken_sending_prop}` ([`GateConfig`]; the last two are the values of
/// A/B props 10518 and 24941 in the `abt` answer).
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
        .route("/accounts/{pn}/privacy", get(get_privacy).put(set_privacy))
        .route(
            "/accounts/{pn}/nct_salt",
            post(set_salt).delete(remove_salt),
        )
        .route("/gate", get(get_gate).put(set_gate))
        .route("/tokens", get(list_tokens).post(issue_token))
        .route("/contacts", put(set_contact))
        .route("/clock/advance", post(advance_clock))
        .route("/refusals", get(refusals))
        .route("/calls", get(call_log).post(place_call))
        .route("/accounts/{pn}/notifications", post(push_notification))
        .route("/accounts/{pn}/edge-routing", get(edge_routing))
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

async fn get_privacy(
    State(s): State<ControlState>,
    Path(pn): Path<String>,
) -> Result<Json<PrivacySettings>, ApiError> {
    Ok(Json(s.router.privacy(&pn)?))
}

async fn set_privacy(
    State(s): State<ControlState>,
    Path(pn): Path<String>,
    body: Result<Json<PrivacySettings>, JsonRejection>,
) -> Result<Json<PrivacySettings>, ApiError> {
    let Json(settings) = body?;
    s.router.set_privacy(&pn, settings)?;
    Ok(Json(s.router.privacy(&pn)?))
}

#[derive(Deserialize)]
struct SaltBody {
    #[serde(default)]
    salt_b64: Option<String>,
}

#[derive(Serialize)]
struct SaltOut {
    salt_b64: Option<String>,
}

async fn set_salt(
    State(s): State<ControlState>,
    Path(pn): Path<String>,
    body: Result<Json<SaltBody>, JsonRejection>,
) -> Result<Json<SaltOut>, ApiError> {
    let Json(body) = body?;
    let b64 = base64::engine::general_purpose::STANDARD;
    match body.salt_b64 {
        Some(text) => {
            let salt: [u8; 32] = b64
                .decode(text.as_bytes())
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| {
                    ApiError::BadRequest("salt_b64 must be base64 of 32 bytes".into())
                })?;
            s.router.set_nct_salt(&pn, Some(salt))?;
        }
        None => s.router.restore_nct_salt(&pn)?,
    }
    Ok(Json(SaltOut {
        salt_b64: s.router.nct_salt(&pn)?.map(|salt| b64.encode(salt)),
    }))
}

async fn remove_salt(
    State(s): State<ControlState>,
    Path(pn): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.router.set_nct_salt(&pn, None)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_gate(State(s): State<ControlState>) -> Json<GateConfig> {
    Json(s.router.gate_config())
}

async fn set_gate(
    State(s): State<ControlState>,
    body: Result<Json<GateConfig>, JsonRejection>,
) -> Result<Json<GateConfig>, ApiError> {
    let Json(config) = body?;
    if config.n_server == 0 {
        return Err(ApiError::BadRequest("n_server must be at least 1".into()));
    }
    s.router.set_gate_config(config);
    Ok(Json(config))
}

#[derive(Serialize)]
struct TokenOut {
    issuer: String,
    holder: String,
    token_b64: String,
    t: u64,
}

async fn list_tokens(State(s): State<ControlState>) -> Json<Vec<TokenOut>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    Json(
        s.router
            .issued_tokens()
            .into_iter()
            .map(|i| TokenOut {
                issuer: i.issuer,
                holder: i.holder,
                token_b64: b64.encode(&i.token),
                t: i.t,
            })
            .collect(),
    )
}

#[derive(Deserialize)]
struct IssueBody {
    issuer: String,
    holder: String,
    t: Option<u64>,
}

async fn issue_token(
    State(s): State<ControlState>,
    body: Result<Json<IssueBody>, JsonRejection>,
) -> Result<(StatusCode, Json<TokenOut>), ApiError> {
    let Json(body) = body?;
    let holder: wa_engine::Jid = body
        .holder
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("holder: {e}")))?;
    if !(holder.is_pn() || holder.is_lid()) {
        return Err(ApiError::BadRequest(
            "holder must be a PN or LID user JID".into(),
        ));
    }
    let t = body.t.unwrap_or_else(|| s.router.unix_now());
    let token = s.router.issue_token(&body.issuer, &holder, t)?;
    let holder_phone = s
        .router
        .issued_tokens()
        .into_iter()
        .find(|i| i.issuer == body.issuer && i.token == token)
        .map_or_else(|| holder.user().to_owned(), |i| i.holder);
    Ok((
        StatusCode::CREATED,
        Json(TokenOut {
            issuer: body.issuer,
            holder: holder_phone,
            token_b64: base64::engine::general_purpose::STANDARD.encode(&token),
            t,
        }),
    ))
}

#[derive(Deserialize, Serialize)]
struct ContactBody {
    from: String,
    to: String,
    value: bool,
}

async fn set_contact(
    State(s): State<ControlState>,
    body: Result<Json<ContactBody>, JsonRejection>,
) -> Result<Json<ContactBody>, ApiError> {
    let Json(body) = body?;
    s.router.set_has_contact(&body.from, &body.to, body.value)?;
    Ok(Json(body))
}

#[derive(Deserialize)]
struct Advance {
    seconds: u64,
}

async fn advance_clock(
    State(s): State<ControlState>,
    body: Result<Json<Advance>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body?;
    let now = s.router.advance_clock(body.seconds);
    Ok(Json(serde_json::json!({ "now": now })))
}

async fn refusals(State(s): State<ControlState>) -> Json<Vec<Refusal>> {
    Json(s.router.refusals())
}

#[derive(Deserialize)]
struct PlaceCall {
    from: String,
    to: String,
    #[serde(default)]
    video: bool,
}

async fn place_call(
    State(s): State<ControlState>,
    body: Result<Json<PlaceCall>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let Json(body) = body?;
    let call_id = s.router.place_call(&body.from, &body.to, body.video)?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "call_id": call_id })),
    ))
}

async fn call_log(State(s): State<ControlState>) -> Json<Vec<crate::calls::CallRecord>> {
    Json(s.router.call_log())
}

async fn push_notification(
    State(s): State<ControlState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<crate::Notice>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Path(pn) = path?;
    let Json(notice) = body?;
    let devices = s.router.push_notification(&pn, &notice)?;
    Ok(Json(serde_json::json!({ "devices": devices })))
}

async fn edge_routing(
    State(s): State<ControlState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<crate::EdgeRoutingView>, ApiError> {
    let Path(pn) = path?;
    Ok(Json(s.router.edge_routing(&pn)?))
}
