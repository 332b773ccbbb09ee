//! `GET /`, `POST /verify-creds` and `/instance/*` (`api/routes/instance.router.ts`,
//! `api/controllers/instance.controller.ts`).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::request::Parts;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::store::{self, EvoData, EvoSettings, EvoWebhook};
use super::{EvoError, EvoInstance, EvoJson, EvoQuery, EvoResult, VERSION, is_global, rows};
use crate::db::{SessionRecord, now_ms};
use crate::session::{Session, SessionStatus};
use crate::state::AppState;

/// The request's parts, for handlers that check the key themselves.
pub(crate) struct Head(Parts);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Head {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.clone()))
    }
}

/// `GET /`: health and version (no key needed).
pub(crate) async fn welcome(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "status": 200,
        "message": "Welcome to the Evolution API, it is working!",
        "version": VERSION,
        "clientName": "wa-server",
        "manager": state.config().public_url.clone().map(|u| format!("{u}/docs")),
        "documentation": "https://doc.evolution-api.com",
        "whatsappWebVersion": state.config().wa_version.map(|v| format!("{}.{}.{}", v[0], v[1], v[2])),
    }))
}

/// `POST /verify-creds`: 200 for the global key, 401 for anything else.
pub(crate) async fn verify_creds(
    State(state): State<AppState>,
    Head(parts): Head,
) -> EvoResult<Json<Value>> {
    if !is_global(&state, &parts) {
        return Err(EvoError::unauthorized());
    }
    Ok(Json(json!({
        "status": 200,
        "message": "Credentials are valid",
        "facebookAppId": null,
        "facebookConfigId": null,
        "facebookUserToken": null,
    })))
}

/// `webhook` of `instance/create` (also accepts the `webhookByEvents`/`webhookBase64`
/// spellings).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WebhookBody {
    pub(crate) url: Option<String>,
    #[serde(alias = "webhookByEvents")]
    pub(crate) by_events: Option<bool>,
    #[serde(alias = "webhookBase64")]
    pub(crate) base64: Option<bool>,
    pub(crate) headers: Option<Map<String, Value>>,
    pub(crate) events: Option<Vec<String>>,
    pub(crate) enabled: Option<bool>,
}

/// `POST /instance/create` body (`validate/instance.schema.ts`); unknown keys are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateBody {
    instance_name: String,
    token: Option<String>,
    number: Option<String>,
    #[serde(default)]
    qrcode: bool,
    integration: Option<String>,
    reject_call: Option<bool>,
    msg_call: Option<String>,
    groups_ignore: Option<bool>,
    always_online: Option<bool>,
    read_messages: Option<bool>,
    read_status: Option<bool>,
    sync_full_history: Option<bool>,
    webhook: Option<WebhookBody>,
}

/// Evolution's `qrcode` object of the session's current QR or pairing code, if any.
fn qrcode_of(session: &Session) -> Option<Value> {
    let live = session.live();
    let code = live.qr.map(|q| q.code);
    if code.is_none() && live.pairing_code.is_none() {
        return None;
    }
    let base64 = code
        .as_deref()
        .and_then(|c| crate::render::qr_png(c).ok())
        .map(|png| {
            format!(
                "data:image/png;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(png)
            )
        });
    Some(json!({
        "pairingCode": live.pairing_code,
        "code": code,
        "base64": base64,
        "count": crate::session::Counters::read(&session.counters.qr_codes),
    }))
}

/// Waits up to `wait` for a QR (or a pairing code, or the connection).
async fn wait_for_qr(session: &Session, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(q) = qrcode_of(session) {
            return Some(q);
        }
        if session.live().status == SessionStatus::Connected
            || tokio::time::Instant::now() >= deadline
        {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The stored webhook of a `webhook` body (`enabled:false` stores no events; `enabled` with
/// no events delivers every event).
pub(crate) fn webhook_of(body: WebhookBody, old: Option<&EvoWebhook>) -> EvoResult<EvoWebhook> {
    let url = body.url.unwrap_or_default();
    let enabled = body.enabled.unwrap_or(!url.is_empty());
    if enabled && !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(EvoError::bad_request("Invalid \"url\" property"));
    }
    let mut events = if enabled {
        body.events.unwrap_or_default()
    } else {
        Vec::new()
    };
    for e in &mut events {
        *e = e.trim().to_ascii_uppercase();
    }
    if let Some(bad) = events.iter().find(|e| !super::hooks::is_config_event(e)) {
        return Err(EvoError::bad_request(format!(
            "webhook.events is not one of enum values: {bad}"
        )));
    }
    let now = now_ms();
    Ok(EvoWebhook {
        id: old.map_or_else(store::uuid, |o| o.id.clone()),
        url,
        headers: body.headers.unwrap_or_default(),
        enabled,
        events,
        by_events: body.by_events.unwrap_or(false),
        base64: body.base64.unwrap_or(false),
        created_at: old.map_or(now, |o| o.created_at),
        updated_at: now,
    })
}

/// `POST /instance/create` (global key): a native session of that name, with the token
/// (given, or a new upper-case UUID) stored as a digest. 201.
pub(crate) async fn create(
    State(state): State<AppState>,
    Head(parts): Head,
    EvoJson(body): EvoJson<CreateBody>,
) -> EvoResult<(StatusCode, Json<Value>)> {
    if !is_global(&state, &parts) {
        return Err(EvoError::unauthorized());
    }
    let name = body.instance_name.trim().to_owned();
    if !crate::routes::valid_session_id(&name) {
        return Err(EvoError::bad_request(
            "instanceName must be 1-64 characters of A-Z a-z 0-9 _ -",
        ));
    }
    if state.session(&name).is_ok() {
        return Err(EvoError::new(
            StatusCode::FORBIDDEN,
            json!([format!("This name \"{name}\" is already in use.")]),
        ));
    }
    let integration = body
        .integration
        .clone()
        .unwrap_or_else(|| "WHATSAPP-BAILEYS".to_owned());
    if integration != "WHATSAPP-BAILEYS" {
        return Err(EvoError::bad_request(format!(
            "integration {integration} is not supported (only WHATSAPP-BAILEYS)"
        )));
    }
    let settings = EvoSettings {
        reject_call: body.reject_call.unwrap_or(false),
        msg_call: body.msg_call.clone().unwrap_or_default(),
        groups_ignore: body.groups_ignore.unwrap_or(false),
        always_online: body.always_online.unwrap_or(false),
        read_messages: body.read_messages.unwrap_or(false),
        read_status: body.read_status.unwrap_or(false),
        sync_full_history: body.sync_full_history.unwrap_or(false),
        wavoip_token: String::new(),
    };
    let webhook = match body.webhook {
        Some(w) if w.url.as_deref().is_some_and(|u| !u.is_empty()) => Some(webhook_of(w, None)?),
        _ => None,
    };
    let token = body
        .token
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| store::uuid().to_ascii_uppercase());
    let mut data = EvoData::new();
    data.token_hash = Some(store::token_hash(&token));
    data.integration = integration.clone();
    data.number = body.number.clone();
    data.settings = settings.clone();
    data.webhook = webhook.clone();
    // The dialect's row first: the session's first events already find its webhook.
    store::save(state.db(), &name, &data).await?;
    let (_, token_hash) = crate::auth::new_session_token(&name);
    let mut native = crate::session_meta::SessionSettings::default();
    apply_settings(&mut native, &settings);
    let record = SessionRecord {
        id: name.clone(),
        created_at: now_ms(),
        token_hash,
        webhooks: Vec::new(),
        name: None,
        metadata: Map::new(),
        settings: native,
    };
    let session = match state.create_session(record).await {
        Ok(s) => s,
        Err(e) => {
            let _ = store::remove(state.db(), &name);
            return Err(e.into());
        }
    };
    let qrcode = if body.qrcode {
        wait_for_qr(&session, Duration::from_secs(5)).await
    } else {
        None
    };
    let status = rows::state_of(session.live().status);
    let mut out = json!({
        "instance": {
            "instanceName": name,
            "instanceId": data.instance_id,
            "integration": integration,
            "webhookWaBusiness": null,
            "accessTokenWaBusiness": "",
            "status": status,
        },
        "hash": token,
        "webhook": {
            "webhookUrl": webhook.as_ref().map(|w| w.url.clone()),
            "webhookHeaders": webhook.as_ref().map(|w| w.headers.clone()),
            "webhookByEvents": webhook.as_ref().is_some_and(|w| w.by_events),
            "webhookBase64": webhook.as_ref().is_some_and(|w| w.base64),
        },
        "websocket": { "enabled": false },
        "rabbitmq": { "enabled": false },
        "nats": { "enabled": false },
        "sqs": { "enabled": false },
        "settings": settings_json(&settings),
    });
    if let (Some(q), Value::Object(map)) = (qrcode, &mut out) {
        map.insert("qrcode".to_owned(), q);
    }
    Ok((StatusCode::CREATED, Json(out)))
}

/// The native settings Evolution's map onto.
pub(crate) fn apply_settings(
    native: &mut crate::session_meta::SessionSettings,
    settings: &EvoSettings,
) {
    native.reject_calls = settings.reject_call;
    native.ignore_groups = settings.groups_ignore;
    native.auto_mark_read = settings.read_messages;
}

/// The 8 settings flags as Evolution shows them.
pub(crate) fn settings_json(s: &EvoSettings) -> Value {
    json!({
        "rejectCall": s.reject_call,
        "msgCall": s.msg_call,
        "groupsIgnore": s.groups_ignore,
        "alwaysOnline": s.always_online,
        "readMessages": s.read_messages,
        "readStatus": s.read_status,
        "syncFullHistory": s.sync_full_history,
        "wavoipToken": s.wavoip_token,
    })
}

fn iso(ms: u64) -> String {
    let millis = ms % 1000;
    let rem = (ms / 1000) % 86_400;
    let day = crate::msglog::day_of(ms);
    format!(
        "{day}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// ISO 8601 of a unix ms time, UTC with milliseconds.
pub(crate) fn iso_time(ms: u64) -> String {
    iso(ms)
}

/// One `fetchInstances` row (`prisma` `Instance` with its relations); `token` only when
/// the caller presented it.
fn instance_row(state: &AppState, session: &Session, data: &EvoData, token: Option<&str>) -> Value {
    let live = session.live();
    let own = live
        .jid
        .as_deref()
        .and_then(|j| j.parse::<wa_engine::Jid>().ok())
        .map(|j| j.to_non_ad());
    let counts = crate::msglog::list(
        state.db(),
        &session.id,
        &crate::msglog::Filter::default(),
        None,
        10_000,
    )
    .map(|(r, _)| r.len())
    .unwrap_or(0);
    let created = iso(data.created_at);
    json!({
        "id": data.instance_id,
        "name": session.id,
        "instanceName": session.id,
        "connectionStatus": rows::state_of(live.status),
        "ownerJid": own.as_ref().map(ToString::to_string),
        "profileName": live.push_name,
        "profilePicUrl": null,
        "integration": data.integration,
        "number": own.as_ref().map(|j| j.user().to_owned()).or_else(|| data.number.clone()),
        "businessId": null,
        "token": token,
        "clientName": "wa-server",
        "disconnectionReasonCode": null,
        "disconnectionObject": null,
        "disconnectionAt": null,
        "createdAt": created,
        "updatedAt": iso(data.updated_at),
        "Chatwoot": null, "Proxy": null, "Rabbitmq": null, "Nats": null, "Sqs": null, "Websocket": null,
        "Setting": {
            "id": data.instance_id,
            "rejectCall": data.settings.reject_call,
            "msgCall": data.settings.msg_call,
            "groupsIgnore": data.settings.groups_ignore,
            "alwaysOnline": data.settings.always_online,
            "readMessages": data.settings.read_messages,
            "readStatus": data.settings.read_status,
            "syncFullHistory": data.settings.sync_full_history,
            "wavoipToken": data.settings.wavoip_token,
            "createdAt": created,
            "updatedAt": iso(data.updated_at),
            "instanceId": data.instance_id,
        },
        "_count": { "Message": counts, "Contact": 0, "Chat": 0 },
    })
}

/// `fetchInstances` filters.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FetchQuery {
    instance_name: Option<String>,
    instance_id: Option<String>,
}

/// `GET /instance/fetchInstances`: every instance for the global key, the instances whose
/// token it is for an instance token (none: 401).
pub(crate) async fn fetch_instances(
    State(state): State<AppState>,
    Head(parts): Head,
    EvoQuery(query): EvoQuery<FetchQuery>,
) -> EvoResult<Json<Vec<Value>>> {
    let global = is_global(&state, &parts);
    let given = parts
        .headers
        .get("apikey")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    if !global && given.is_none() {
        return Err(EvoError::unauthorized());
    }
    if let Some(name) = &query.instance_name
        && state.session(name).is_err()
    {
        return Err(EvoError::new(
            StatusCode::NOT_FOUND,
            json!([format!("Instance \"{name}\" not found")]),
        ));
    }
    let mut out = Vec::new();
    for session in state.sessions() {
        if query
            .instance_name
            .as_ref()
            .is_some_and(|n| *n != session.id)
        {
            continue;
        }
        let owned = given
            .as_deref()
            .is_some_and(|g| store::token_matches(&state, &session.id, g));
        if !global && !owned {
            continue;
        }
        let data = store::load_or_init(state.db(), &session.id).await?;
        if query
            .instance_id
            .as_ref()
            .is_some_and(|id| *id != data.instance_id)
        {
            continue;
        }
        let token = if owned { given.as_deref() } else { None };
        out.push(instance_row(&state, &session, &data, token));
    }
    if !global && out.is_empty() {
        return Err(EvoError::unauthorized());
    }
    Ok(Json(out))
}

/// `connect` options.
#[derive(Debug, Deserialize)]
pub(crate) struct ConnectQuery {
    number: Option<String>,
}

fn connection_state_json(session: &Session) -> Value {
    json!({ "instance": { "instanceName": session.id, "state": rows::state_of(session.live().status) } })
}

/// `GET /instance/connect/{i}` (`?number=` asks for a pairing code): the QR object, or the
/// connection state once open.
pub(crate) async fn connect(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoQuery(query): EvoQuery<ConnectQuery>,
) -> EvoResult<Json<Value>> {
    let live = session.live();
    if live.status == SessionStatus::Connected {
        return Ok(Json(connection_state_json(&session)));
    }
    if matches!(
        live.status,
        SessionStatus::Stopped | SessionStatus::LoggedOut
    ) {
        session.restart();
    }
    let mut qr = wait_for_qr(&session, Duration::from_secs(5)).await;
    if let Some(number) = query.number.filter(|n| !n.is_empty()) {
        let phone = crate::phone::PhoneNumber::parse(
            &number,
            state.config().default_country_code.as_deref(),
        )?;
        let client = session
            .live()
            .client
            .ok_or_else(|| EvoError::bad_request("the instance is not waiting for a login"))?;
        let code = client
            .request_pairing_code(phone.digits())
            .await
            .map_err(crate::error::ApiError::from)?;
        let mut q = qr
            .take()
            .unwrap_or_else(|| json!({"code": null, "base64": null, "count": 0}));
        if let Value::Object(map) = &mut q {
            map.insert("pairingCode".to_owned(), json!(code));
        }
        qr = Some(q);
    }
    match qr {
        Some(q) => Ok(Json(q)),
        None if session.live().status == SessionStatus::Connected => {
            Ok(Json(connection_state_json(&session)))
        }
        None => Ok(Json(json!({ "count": 0 }))),
    }
}

/// `GET /instance/connectionState/{i}`.
pub(crate) async fn connection_state(EvoInstance(session): EvoInstance) -> Json<Value> {
    Json(connection_state_json(&session))
}

/// `POST /instance/restart/{i}` (also `PUT`, as 1.x): reconnects. On a closed instance
/// Evolution answers 200 `{error: true, message}`; so do we.
pub(crate) async fn restart(EvoInstance(session): EvoInstance) -> Json<Value> {
    let status = session.live().status;
    if status == SessionStatus::LoggedOut {
        return Json(json!({
            "error": true,
            "message": "BadRequestException: the instance is logged out; connect it to pair again",
        }));
    }
    session.restart();
    Json(json!({ "instance": { "instanceName": session.id, "status": "connecting" } }))
}

/// `DELETE /instance/logout/{i}`: unlinks the device; idempotent.
pub(crate) async fn logout(EvoInstance(session): EvoInstance) -> EvoResult<Json<Value>> {
    let message = match session.connected_client() {
        Ok(client) => {
            client
                .logout()
                .await
                .map_err(crate::error::ApiError::from)?;
            for _ in 0..50 {
                if session.live().status == SessionStatus::LoggedOut {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            "Instance logged out"
        }
        Err(_) => "Instance was already disconnected",
    };
    Ok(Json(
        json!({ "status": "SUCCESS", "error": false, "response": { "message": message } }),
    ))
}

/// `DELETE /instance/delete/{i}`: logs out and removes the session and everything of it.
pub(crate) async fn delete(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
) -> EvoResult<Json<Value>> {
    state.delete_session(&session.id, true).await?;
    Ok(Json(
        json!({ "status": "SUCCESS", "error": false, "response": { "message": "Instance deleted" } }),
    ))
}

/// `setPresence` body.
#[derive(Debug, Deserialize)]
pub(crate) struct PresenceBody {
    presence: String,
}

/// `POST /instance/setPresence/{i}`: `available` or `unavailable`. 201.
pub(crate) async fn set_presence(
    EvoInstance(session): EvoInstance,
    EvoJson(body): EvoJson<PresenceBody>,
) -> EvoResult<(StatusCode, Json<Value>)> {
    let available = match body.presence.as_str() {
        "available" => true,
        "unavailable" => false,
        _ => {
            return Err(EvoError::bad_request(
                "presence is not one of enum values: available,unavailable",
            ));
        }
    };
    session
        .connected_client()?
        .set_presence(available)
        .await
        .map_err(crate::error::ApiError::from)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "presence": body.presence })),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times_have_milliseconds_and_z() {
        assert_eq!(iso(1_747_480_204_123), "2025-05-17T11:10:04.123Z");
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
    }
}
