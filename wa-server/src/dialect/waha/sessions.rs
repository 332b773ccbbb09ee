//! WAHA `/api/sessions`: list, create, get, update, delete, `start|stop|logout|restart`,
//! `me`, over the native sessions (`AppState::create_session`, `save_record`,
//! `delete_session`, `Session::restart`, `Client::logout`).

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Key, WahaError, chat_id, hooks, parse, waha_status_of};
use crate::auth;
use crate::db::{SessionRecord, now_ms};
use crate::routes::valid_session_id;
use crate::session::{Session, SessionStatus};
use crate::session_meta::{SessionSettings, validate_metadata};
use crate::state::AppState;

/// WAHA's `SessionConfig`: `metadata` is kept (as the native session metadata); `webhooks`
/// are kept by the dialect ([`super::hooks`]) and delivered; the engine options (`proxy`, `debug`, `noweb`, ...)
/// are ignored.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SessionConfig {
    /// String-to-string operator data.
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    /// `WebhookConfig[]`.
    #[serde(default)]
    webhooks: Option<Vec<Value>>,
}

/// `POST /api/sessions` body (`SessionCreateRequest`).
#[derive(Debug, Deserialize)]
pub(crate) struct CreateRequest {
    /// Session name (default `default`).
    name: Option<String>,
    /// WAHA: start at once (default true). wa-server sessions always start.
    #[serde(default)]
    start: Option<bool>,
    /// Session configuration.
    #[serde(default)]
    config: Option<SessionConfig>,
}

/// `PUT /api/sessions/{session}` body (`SessionUpdateRequest`).
#[derive(Debug, Deserialize)]
pub(crate) struct UpdateRequest {
    /// Session configuration (replaces the metadata when present).
    #[serde(default)]
    config: Option<SessionConfig>,
}

/// WAHA `MeInfo`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MeInfo {
    /// `<digits>@c.us`.
    id: String,
    /// Own push name (`""` until known).
    push_name: String,
    /// Own LID, once assigned.
    #[serde(skip_serializing_if = "Option::is_none")]
    lid: Option<String>,
    /// Own device JID.
    jid: String,
}

impl MeInfo {
    /// The own account of `session`, once paired.
    pub(crate) fn of(session: &Session) -> Option<Self> {
        let live = session.live();
        let jid = live.jid?;
        Some(Self {
            id: chat_id(&jid),
            push_name: live.push_name.unwrap_or_default(),
            lid: live.lid,
            jid,
        })
    }
}

/// WAHA `SessionConfig` as shown.
#[derive(Debug, Serialize)]
struct ConfigView {
    metadata: Map<String, Value>,
    webhooks: Vec<Value>,
}

/// WAHA `SessionDTO`.
#[derive(Debug, Serialize)]
pub(crate) struct SessionDto {
    name: String,
    status: &'static str,
    config: ConfigView,
}

/// WAHA `SessionInfo`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionInfo {
    name: String,
    status: &'static str,
    /// WAHA's presence object, required by its schema (`SessionInfo.presence`, type
    /// `object`; waha-py's `SessionInfo` rejects `null`). wa-server keeps no own presence:
    /// `None` is written as `{}`.
    #[serde(serialize_with = "object_or_empty")]
    presence: Option<Value>,
    /// `{activity}`: unix ms of the session's creation (wa-server keeps no activity time).
    timestamps: Timestamps,
    me: Option<MeInfo>,
    config: ConfigView,
}

/// Writes `None` as `{}` (an object where WAHA's schema requires one).
fn object_or_empty<S: serde::Serializer>(value: &Option<Value>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => v.serialize(s),
        None => Map::new().serialize(s),
    }
}

#[derive(Debug, Serialize)]
struct Timestamps {
    activity: u64,
}

/// The config shown: the native metadata and the stored webhooks (HMAC keys hidden).
fn config_of(state: &AppState, record: &SessionRecord) -> ConfigView {
    let webhooks = match hooks::load(state.db(), &record.id) {
        Ok(data) => data
            .map(|d| d.webhooks.iter().map(hooks::WebhookConfig::view).collect())
            .unwrap_or_default(),
        Err(e) => {
            tracing::error!(session = %record.id, error = %e, "cannot read the WAHA webhooks");
            Vec::new()
        }
    };
    ConfigView {
        metadata: record.metadata.clone(),
        webhooks,
    }
}

fn dto(state: &AppState, session: &Session) -> SessionDto {
    SessionDto {
        name: session.id.clone(),
        status: waha_status_of(&session.live()),
        config: config_of(state, &session.record()),
    }
}

fn info(state: &AppState, session: &Session) -> SessionInfo {
    let record = session.record();
    SessionInfo {
        name: session.id.clone(),
        status: waha_status_of(&session.live()),
        presence: None,
        timestamps: Timestamps {
            activity: record.created_at,
        },
        me: MeInfo::of(session),
        config: config_of(state, &record),
    }
}

/// The metadata of a WAHA config, validated natively; `None` when absent.
fn metadata_of(config: Option<&SessionConfig>) -> Result<Option<Map<String, Value>>, WahaError> {
    let Some(config) = config else {
        return Ok(None);
    };
    if let Some(metadata) = &config.metadata {
        validate_metadata(metadata)?;
    }
    Ok(config.metadata.clone())
}

/// The webhooks of a WAHA config, checked ([`hooks::parse_webhooks`]); `None` when absent.
fn webhooks_of(
    config: Option<&SessionConfig>,
    previous: &[hooks::WebhookConfig],
) -> Result<Option<Vec<hooks::WebhookConfig>>, WahaError> {
    config
        .and_then(|c| c.webhooks.as_deref())
        .map(|raw| hooks::parse_webhooks(raw, previous))
        .transpose()
}

/// `GET /api/sessions` options.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    /// Include `STOPPED` sessions.
    #[serde(default)]
    all: Option<bool>,
}

/// `GET /api/sessions`: `[SessionInfo]`, without `STOPPED` ones unless `all=true`.
pub(crate) async fn list(
    State(state): State<AppState>,
    key: Key,
    super::WahaQuery(query): super::WahaQuery<ListQuery>,
) -> Result<Json<Vec<SessionInfo>>, WahaError> {
    key.0.require_admin()?;
    let all = query.all.unwrap_or(false);
    Ok(Json(
        state
            .sessions()
            .iter()
            .map(|s| info(&state, s))
            .filter(|i| all || i.status != "STOPPED")
            .collect(),
    ))
}

/// `POST /api/sessions`: 201 `SessionDTO`. The session starts connecting at once.
pub(crate) async fn create(
    State(state): State<AppState>,
    key: Key,
    body: Bytes,
) -> Result<(StatusCode, Json<SessionDto>), WahaError> {
    key.0.require_admin()?;
    let body: CreateRequest = parse(&body)?;
    let name = body.name.unwrap_or_else(|| "default".to_owned());
    if !valid_session_id(&name) {
        return Err(WahaError::bad_request(
            "name must be 1-64 of A-Z a-z 0-9 _ -",
        ));
    }
    if body.start == Some(false) {
        tracing::debug!(session = %name, "waha: start=false ignored; sessions always start");
    }
    let metadata = metadata_of(body.config.as_ref())?.unwrap_or_default();
    let webhooks = webhooks_of(body.config.as_ref(), &[])?;
    let (_token, token_hash) = auth::new_session_token(&name);
    let record = SessionRecord {
        id: name.clone(),
        created_at: now_ms(),
        token_hash,
        webhooks: Vec::new(),
        name: None,
        metadata,
        settings: SessionSettings::default(),
    };
    if let Some(webhooks) = webhooks {
        // Stored before the session starts, so its first statuses are delivered.
        if state.session(&name).is_ok() {
            return Err(crate::error::ApiError::SessionExists.into());
        }
        hooks::save_webhooks(state.db(), &name, webhooks)
            .await
            .map_err(crate::error::ApiError::from)?;
    }
    let session = match state.create_session(record).await {
        Ok(session) => session,
        Err(e) => {
            if let Err(e) = hooks::remove(state.db(), &name) {
                tracing::error!(session = %name, error = %e, "cannot remove the WAHA webhooks");
            }
            return Err(e.into());
        }
    };
    Ok((StatusCode::CREATED, Json(dto(&state, &session))))
}

/// `GET /api/sessions/{session}`: `SessionInfo`.
pub(crate) async fn get(
    State(state): State<AppState>,
    key: Key,
    Path(name): Path<String>,
) -> Result<Json<SessionInfo>, WahaError> {
    let session = key.session(&state, &name)?;
    Ok(Json(info(&state, &session)))
}

/// `PUT /api/sessions/{session}`: replaces the metadata when `config.metadata` is given and
/// the webhooks when `config.webhooks` is; `SessionDTO`.
pub(crate) async fn update(
    State(state): State<AppState>,
    key: Key,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<SessionDto>, WahaError> {
    let session = key.session(&state, &name)?;
    let body: UpdateRequest = parse(&body)?;
    let metadata = metadata_of(body.config.as_ref())?;
    let previous = hooks::load(state.db(), &session.id)
        .map_err(crate::error::ApiError::from)?
        .map(|d| d.webhooks)
        .unwrap_or_default();
    if let Some(webhooks) = webhooks_of(body.config.as_ref(), &previous)? {
        hooks::save_webhooks(state.db(), &session.id, webhooks)
            .await
            .map_err(crate::error::ApiError::from)?;
    }
    if let Some(metadata) = metadata {
        let mut record = session.record();
        record.metadata = metadata;
        state.save_record(&session, record).await?;
    }
    Ok(Json(dto(&state, &session)))
}

/// `DELETE /api/sessions/{session}` (admin): unlinks the device, removes the session.
pub(crate) async fn delete(
    State(state): State<AppState>,
    key: Key,
    Path(name): Path<String>,
) -> Result<StatusCode, WahaError> {
    key.0.require_admin()?;
    state.delete_session(&name, true).await?;
    Ok(StatusCode::OK)
}

/// `POST /api/sessions/{session}/start`: a logged-out or stopped session connects again
/// (a new QR when unpaired); a running one is left as it is. 201 `SessionDTO`.
pub(crate) async fn start(
    State(state): State<AppState>,
    key: Key,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<SessionDto>), WahaError> {
    let session = key.session(&state, &name)?;
    if matches!(
        session.live().status,
        SessionStatus::LoggedOut | SessionStatus::Stopped
    ) {
        session.restart();
        wait_until(&session, |s| {
            !matches!(s, SessionStatus::LoggedOut | SessionStatus::Stopped)
        })
        .await;
    }
    Ok((StatusCode::CREATED, Json(dto(&state, &session))))
}

/// `POST /api/sessions/{session}/stop`: the engine is shut down, the session and its
/// pairing stay (status `STOPPED`; `start` or `restart` connects again with the stored
/// credentials, no new QR). A session already stopped or logged out is left as it is. 201
/// `SessionDTO`. Not kept across a server restart: every session starts with the server.
pub(crate) async fn stop(
    State(state): State<AppState>,
    key: Key,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<SessionDto>), WahaError> {
    let session = key.session(&state, &name)?;
    if !matches!(
        session.live().status,
        SessionStatus::LoggedOut | SessionStatus::Stopped
    ) {
        session.pause();
        wait_until(&session, |s| s == SessionStatus::Stopped).await;
    }
    Ok((StatusCode::CREATED, Json(dto(&state, &session))))
}

/// `POST /api/sessions/{session}/logout`: unlinks the device (status `STOPPED`). 201
/// `SessionDTO`.
pub(crate) async fn logout(
    State(state): State<AppState>,
    key: Key,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<SessionDto>), WahaError> {
    let session = key.session(&state, &name)?;
    let client = session.connected_client()?;
    client
        .logout()
        .await
        .map_err(crate::error::ApiError::from)?;
    wait_until(&session, |s| s == SessionStatus::LoggedOut).await;
    Ok((StatusCode::CREATED, Json(dto(&state, &session))))
}

/// `POST /api/sessions/{session}/restart`: reconnects with the stored credentials. 201
/// `SessionDTO`.
pub(crate) async fn restart(
    State(state): State<AppState>,
    key: Key,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<SessionDto>), WahaError> {
    let session = key.session(&state, &name)?;
    session.restart();
    Ok((StatusCode::CREATED, Json(dto(&state, &session))))
}

/// `GET /api/sessions/{session}/me`: `MeInfo`, or `null` before pairing.
pub(crate) async fn me(
    State(state): State<AppState>,
    key: Key,
    Path(name): Path<String>,
) -> Result<Json<Option<MeInfo>>, WahaError> {
    let session = key.session(&state, &name)?;
    Ok(Json(MeInfo::of(&session)))
}

/// Waits (1 s at most) for the supervisor to record a state `done` accepts, so the answer
/// shows it.
async fn wait_until(session: &Session, done: impl Fn(SessionStatus) -> bool) {
    for _ in 0..50 {
        if done(session.live().status) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
