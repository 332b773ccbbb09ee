//! `/api/sessions/{id}/presence`, `/chat-state`, `/calls/reject`: own presence, presence
//! subscriptions, typing indicators and call rejection (issue 13 items 3-4). Incoming
//! presence, chat states and calls arrive as the `presence`, `chat_state` and `call` events.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use wa_engine::{ChatState, Jid};

use super::{ApiJson, AuthorizedSession};
use crate::error::{ApiError, ErrorBody};
use crate::phone::parse_chat;
use crate::state::AppState;

/// `POST /api/sessions/{id}/presence` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetPresence {
    /// `available` (online) or `unavailable` (offline; contacts see "last seen").
    #[schema(pattern = "^(available|unavailable)$")]
    presence: String,
}

/// `POST /api/sessions/{id}/presence/subscribe` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Subscribe {
    /// The contact: phone number (local numbers use the default country code) or JID.
    #[schema(value_type = crate::api_types::Recipient)]
    to: String,
}

/// `POST /api/sessions/{id}/chat-state` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendChatState {
    /// The chat: phone number, user JID or group JID.
    #[schema(value_type = crate::api_types::Recipient)]
    to: String,
    /// `composing` (typing), `recording` (voice note) or `paused`.
    #[schema(pattern = "^(composing|recording|paused)$")]
    state: String,
}

/// `POST /api/sessions/{id}/calls/reject` body: from the `call` event of the offer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RejectCall {
    /// `call_id` of the offer.
    #[schema(min_length = 1, max_length = 128)]
    call_id: String,
    /// `call_creator` of the offer (a JID or phone number).
    #[schema(value_type = crate::api_types::Recipient)]
    caller: String,
}

/// The request went out.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Sent {
    /// Always `true`.
    ok: bool,
}

fn default_cc(state: &AppState) -> Option<&str> {
    state.config().default_country_code.as_deref()
}

/// A recipient, accepting group JIDs and LIDs as they come in events.
fn target(state: &AppState, input: &str) -> Result<Jid, ApiError> {
    parse_chat(input, default_cc(state))
}

#[utoipa::path(post, path = "/api/sessions/{id}/presence", tag = "presence",
    params(("id" = String, Path, description = "Session id")),
    request_body = SetPresence,
    responses((status = 200, body = Sent), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn set_presence(
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<SetPresence>,
) -> Result<Json<Sent>, ApiError> {
    let available = match body.presence.as_str() {
        "available" => true,
        "unavailable" => false,
        _ => {
            return Err(ApiError::InvalidBody(
                "presence must be available or unavailable".to_owned(),
            ));
        }
    };
    session.connected_client()?.set_presence(available).await?;
    Ok(Json(Sent { ok: true }))
}

#[utoipa::path(post, path = "/api/sessions/{id}/presence/subscribe", tag = "presence",
    params(("id" = String, Path, description = "Session id")),
    request_body = Subscribe,
    responses((status = 200, body = Sent), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn subscribe(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<Subscribe>,
) -> Result<Json<Sent>, ApiError> {
    let to = target(&state, &body.to)?;
    session.connected_client()?.subscribe_presence(&to).await?;
    Ok(Json(Sent { ok: true }))
}

#[utoipa::path(post, path = "/api/sessions/{id}/chat-state", tag = "presence",
    params(("id" = String, Path, description = "Session id")),
    request_body = SendChatState,
    responses((status = 200, body = Sent), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn chat_state(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<SendChatState>,
) -> Result<Json<Sent>, ApiError> {
    let to = target(&state, &body.to)?;
    let chat_state = ChatState::parse(&body.state).ok_or_else(|| {
        ApiError::InvalidBody("state must be composing, recording or paused".to_owned())
    })?;
    session
        .connected_client()?
        .send_chat_state(&to, chat_state)
        .await?;
    Ok(Json(Sent { ok: true }))
}

#[utoipa::path(post, path = "/api/sessions/{id}/calls/reject", tag = "presence",
    params(("id" = String, Path, description = "Session id")),
    request_body = RejectCall,
    responses((status = 200, body = Sent), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn reject_call(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<RejectCall>,
) -> Result<Json<Sent>, ApiError> {
    let caller = target(&state, &body.caller)?;
    if body.call_id.is_empty() || body.call_id.len() > 128 {
        return Err(ApiError::InvalidBody(
            "call_id must be 1-128 bytes".to_owned(),
        ));
    }
    session
        .connected_client()?
        .reject_call(&caller, &body.call_id)
        .await?;
    Ok(Json(Sent { ok: true }))
}

/// The webhook event (type and data) of a presence, chat-state or call engine event; `None`
/// for any other event.
pub(crate) fn event_json(event: &wa_engine::Event) -> Option<(&'static str, serde_json::Value)> {
    use serde_json::json;
    use wa_engine::{CallKind, Event, LastSeen};
    match event {
        Event::Presence(p) => {
            let (last_seen, hidden) = match p.last_seen {
                Some(LastSeen::At(t)) => (Some(t), false),
                Some(LastSeen::Hidden) => (None, true),
                _ => (None, false),
            };
            Some((
                "presence",
                json!({
                    "from": p.from.to_string(),
                    "presence": if p.available { "available" } else { "unavailable" },
                    "last_seen": last_seen,
                    "last_seen_hidden": hidden,
                }),
            ))
        }
        Event::ChatState(c) => Some((
            "chat_state",
            json!({
                "chat": c.chat.to_string(),
                "sender": c.sender.to_string(),
                "state": c.state.as_str(),
            }),
        )),
        Event::Call(c) => {
            let (video, group) = match &c.kind {
                CallKind::Offer { video, group } => (*video, *group),
                _ => (false, false),
            };
            let reason = match &c.kind {
                CallKind::Terminate { reason } => reason.clone(),
                _ => None,
            };
            Some((
                "call",
                json!({
                    "from": c.from.to_string(),
                    "call_id": c.call_id,
                    "call_creator": c.call_creator.to_string(),
                    "kind": c.kind.as_str(),
                    "video": video,
                    "group": group,
                    "reason": reason,
                    "auto_rejected": c.auto_rejected,
                    "timestamp": c.timestamp,
                }),
            ))
        }
        _ => None,
    }
}
