//! `/api/sessions/{id}/messages/{react,edit,revoke,poll,poll/vote,delete-for-me,disappearing}`:
//! reactions, edits, deletes for everyone and for me, polls and votes, disappearing-message
//! timers (issue 13 item 5; the engine's `wa_engine::message::{rich, ephemeral, view_once}`).
//! Incoming ones arrive as the `message_reaction`, `message_edited`, `message_revoked`,
//! `message` (type `poll`), `poll_vote` and `chat_ephemeral` events ([`message_event`]);
//! a delete for me made on another device of the account arrives as `app_state` with
//! `action.type` `delete_message_for_me`. These go straight to the engine (no send queue
//! or message log).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use wa_engine::Jid;
use wa_engine::message::rich::TargetKey;
use wa_engine::message::{ContentKind, IncomingMessage, content, ephemeral};

use super::{ApiJson, AuthorizedSession};
use crate::error::{ApiError, ErrorBody};
use crate::phone::parse_chat;
use crate::state::AppState;

/// The message a reaction or revoke refers to, as the `message` event named it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct React {
    /// The chat: phone number, user JID or group JID (`chat` of the message event).
    #[schema(value_type = crate::api_types::Recipient)]
    to: String,
    /// Id of the message reacted to.
    #[schema(min_length = 1, max_length = 128)]
    message_id: String,
    /// Whether the message is our own (`from_me` of the message event).
    #[serde(default)]
    from_me: bool,
    /// In groups, the message's sender (`sender_user` of the message event).
    #[serde(default)]
    #[schema(value_type = Option<crate::api_types::Recipient>)]
    sender: Option<String>,
    /// The emoji; empty removes our reaction.
    #[schema(max_length = 64)]
    emoji: String,
}

/// `POST .../messages/edit` body: replaces the text of our own message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Edit {
    /// The chat the message was sent to.
    #[schema(value_type = crate::api_types::Recipient)]
    to: String,
    /// Id of our message (from its send response).
    #[schema(min_length = 1, max_length = 128)]
    message_id: String,
    /// The new text. Official clients show edits made within 20 minutes of sending.
    #[schema(min_length = 1, max_length = 65536)]
    text: String,
}

/// `POST .../messages/revoke` body: delete for everyone.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Revoke {
    /// The chat.
    #[schema(value_type = crate::api_types::Recipient)]
    to: String,
    /// Id of the message.
    #[schema(min_length = 1, max_length = 128)]
    message_id: String,
    /// Someone else's message in a group we administer: its sender. Absent = our own.
    #[serde(default)]
    #[schema(value_type = Option<crate::api_types::Recipient>)]
    sender: Option<String>,
}

/// `POST .../messages/poll` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Poll {
    /// Recipient: phone number, user JID or group JID.
    #[schema(value_type = crate::api_types::Recipient)]
    to: String,
    /// The question.
    #[schema(min_length = 1, max_length = 256)]
    name: String,
    /// 2 to 12 distinct options of 1-100 characters.
    #[schema(schema_with = crate::api_types::poll_options)]
    options: Vec<String>,
    /// How many options a voter may choose; 0 (default) = any number, as is a number
    /// above the count of options.
    #[serde(default, deserialize_with = "crate::api_types::opt_int")]
    #[schema(value_type = Option<u32>)]
    selectable: Option<u32>,
}

/// `POST .../messages/poll/vote` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Vote {
    /// The chat of the poll.
    #[schema(value_type = crate::api_types::Recipient)]
    to: String,
    /// Id of the poll message (a poll this session sent or received).
    #[schema(min_length = 1, max_length = 128)]
    poll_id: String,
    /// Chosen option names (each one of the poll's options); empty withdraws the vote.
    #[schema(schema_with = crate::api_types::vote_options)]
    options: Vec<String>,
}

/// `POST .../messages/delete-for-me` body: the message disappears from this account's
/// devices only (app-state `deleteMessageForMe`); the chat partner keeps it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteForMe {
    /// The chat: phone number, user JID or group JID (`chat` of the message event).
    #[schema(value_type = crate::api_types::Recipient)]
    to: String,
    /// Id of the message.
    #[schema(min_length = 1, max_length = 128)]
    message_id: String,
    /// Whether the message is our own (`from_me` of the message event).
    #[serde(default)]
    from_me: bool,
    /// In groups, the sender of someone else's message (`sender_user` of the message event).
    #[serde(default)]
    #[schema(value_type = Option<crate::api_types::Recipient>)]
    sender: Option<String>,
    /// The message's time, unix seconds (`timestamp` of the message event); default now.
    #[serde(default, deserialize_with = "crate::api_types::opt_int")]
    #[schema(minimum = 0)]
    message_timestamp: Option<u64>,
}

/// `POST .../messages/disappearing` body: the disappearing-messages timer of a 1:1 chat.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Disappearing {
    /// The chat: phone number or user JID (groups are not supported yet: 400).
    #[schema(value_type = crate::api_types::Recipient)]
    to: String,
    /// Seconds after which messages disappear: 0 turns the timer off. Official clients
    /// accept 86400 (24 h), 604800 (7 days) and 7776000 (90 days) and ignore other values
    /// (whatsmeow `SetDisappearingTimer`), which are still sent as given.
    seconds: u32,
}

/// The message went out.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RichSent {
    /// Id of the new message (the reaction, edit, revoke, poll or vote).
    id: String,
}

fn jid_or_phone(state: &AppState, input: &str) -> Result<Jid, ApiError> {
    parse_chat(input, state.config().default_country_code.as_deref())
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > 128 {
        return Err(ApiError::InvalidBody(
            "message ids are 1-128 bytes".to_owned(),
        ));
    }
    Ok(())
}

/// The engine's error, with invalid input (an unknown poll, a bad option) as the caller's
/// problem (400 `invalid_body`).
fn send_error(e: wa_engine::SendError) -> ApiError {
    match e {
        wa_engine::SendError::InvalidInput(i) => ApiError::InvalidBody(i.to_string()),
        other => other.into(),
    }
}

fn created(id: wa_engine::message::MessageId) -> (StatusCode, Json<RichSent>) {
    (StatusCode::CREATED, Json(RichSent { id: id.0 }))
}

#[utoipa::path(post, path = "/api/sessions/{id}/messages/react", tag = "messages",
    params(("id" = String, Path, description = "Session id")),
    request_body = React,
    responses((status = 201, body = RichSent), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn react(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<React>,
) -> Result<(StatusCode, Json<RichSent>), ApiError> {
    check_id(&body.message_id)?;
    if body.emoji.chars().count() > 64 {
        return Err(ApiError::InvalidBody("emoji is too long".to_owned()));
    }
    let target = TargetKey {
        chat: jid_or_phone(&state, &body.to)?,
        id: body.message_id,
        from_me: body.from_me,
        sender: body
            .sender
            .as_deref()
            .map(|s| jid_or_phone(&state, s))
            .transpose()?,
    };
    let id = session
        .connected_client()?
        .send_reaction(&target, &body.emoji)
        .await?;
    Ok(created(id))
}

#[utoipa::path(post, path = "/api/sessions/{id}/messages/edit", tag = "messages",
    params(("id" = String, Path, description = "Session id")),
    request_body = Edit,
    responses((status = 201, body = RichSent), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn edit(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<Edit>,
) -> Result<(StatusCode, Json<RichSent>), ApiError> {
    check_id(&body.message_id)?;
    if body.text.is_empty() || body.text.len() > 65536 {
        return Err(ApiError::InvalidBody(
            "text must be 1-65536 bytes".to_owned(),
        ));
    }
    let chat = jid_or_phone(&state, &body.to)?;
    let id = session
        .connected_client()?
        .edit_message(&chat, &body.message_id, body.text)
        .await?;
    Ok(created(id))
}

#[utoipa::path(post, path = "/api/sessions/{id}/messages/revoke", tag = "messages",
    params(("id" = String, Path, description = "Session id")),
    request_body = Revoke,
    responses((status = 201, body = RichSent), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<Revoke>,
) -> Result<(StatusCode, Json<RichSent>), ApiError> {
    check_id(&body.message_id)?;
    let sender = body
        .sender
        .as_deref()
        .map(|s| jid_or_phone(&state, s))
        .transpose()?;
    let target = TargetKey {
        chat: jid_or_phone(&state, &body.to)?,
        id: body.message_id,
        from_me: sender.is_none(),
        sender,
    };
    let id = session.connected_client()?.revoke_message(&target).await?;
    Ok(created(id))
}

#[utoipa::path(post, path = "/api/sessions/{id}/messages/poll", tag = "messages",
    params(("id" = String, Path, description = "Session id")),
    request_body = Poll,
    responses((status = 201, body = RichSent), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn poll(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<Poll>,
) -> Result<(StatusCode, Json<RichSent>), ApiError> {
    if body.name.is_empty()
        || body.name.chars().count() > 256
        || !(2..=12).contains(&body.options.len())
        || body
            .options
            .iter()
            .any(|o| o.is_empty() || o.chars().count() > 100)
    {
        return Err(ApiError::InvalidBody(
            "a poll has a 1-256 character name and 2-12 options of 1-100 characters".to_owned(),
        ));
    }
    let to = jid_or_phone(&state, &body.to)?;
    // A limit above the number of options is no limit (0); the engine refuses it as given.
    let selectable = body
        .selectable
        .filter(|&n| usize::try_from(n).is_ok_and(|n| n <= body.options.len()))
        .unwrap_or(0);
    let id = session
        .connected_client()?
        .send_poll(&to, &body.name, &body.options, selectable)
        .await
        .map_err(send_error)?;
    Ok(created(id))
}

#[utoipa::path(post, path = "/api/sessions/{id}/messages/poll/vote", tag = "messages",
    params(("id" = String, Path, description = "Session id")),
    request_body = Vote,
    responses((status = 201, body = RichSent), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn vote(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<Vote>,
) -> Result<(StatusCode, Json<RichSent>), ApiError> {
    check_id(&body.poll_id)?;
    let chat = jid_or_phone(&state, &body.to)?;
    let selected: Vec<&str> = body.options.iter().map(String::as_str).collect();
    let id = session
        .connected_client()?
        .vote_poll(&chat, &body.poll_id, &selected)
        .await
        .map_err(send_error)?;
    Ok(created(id))
}

#[utoipa::path(post, path = "/api/sessions/{id}/messages/delete-for-me", tag = "messages",
    params(("id" = String, Path, description = "Session id")),
    request_body = DeleteForMe,
    responses((status = 204, description = "The app-state change was accepted by the server"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn delete_for_me(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<DeleteForMe>,
) -> Result<StatusCode, ApiError> {
    check_id(&body.message_id)?;
    let target = TargetKey {
        chat: jid_or_phone(&state, &body.to)?,
        id: body.message_id,
        from_me: body.from_me,
        sender: body
            .sender
            .as_deref()
            .map(|s| jid_or_phone(&state, s))
            .transpose()?,
    };
    let ts = body
        .message_timestamp
        .map(|t| i64::try_from(t).unwrap_or(i64::MAX));
    session
        .connected_client()?
        .delete_message_for_me(&target, ts)
        .await
        .map_err(send_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/sessions/{id}/messages/disappearing", tag = "messages",
    params(("id" = String, Path, description = "Session id")),
    request_body = Disappearing,
    responses((status = 201, body = RichSent), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn disappearing(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<Disappearing>,
) -> Result<(StatusCode, Json<RichSent>), ApiError> {
    let timer = std::time::Duration::from_secs(u64::from(body.seconds));
    if !ephemeral::is_standard_timer(timer) {
        tracing::debug!(seconds = body.seconds, "non-standard disappearing timer");
    }
    let chat = jid_or_phone(&state, &body.to)?;
    if chat.is_group() {
        return Err(ApiError::InvalidBody(
            "disappearing timers of groups are not supported yet".to_owned(),
        ));
    }
    let id = session
        .connected_client()?
        .set_disappearing_timer(&chat, timer)
        .await
        .map_err(send_error)?;
    Ok(created(id))
}

/// The webhook event of a received reaction, edit or revoke (`message_reaction`,
/// `message_edited`, `message_revoked`: the message's `info` fields plus what it refers
/// to), or of a disappearing-timer change in a 1:1 chat (`chat_ephemeral`: `info` fields
/// plus `expiration_secs` (0 = off) and `setting_timestamp`, unix seconds or null); `None`
/// for anything else (a poll itself is a `message` of type `poll`).
pub(crate) fn message_event(message: &IncomingMessage) -> Option<(&'static str, Value)> {
    let c = message.content();
    let (kind, extra) = match c.kind() {
        ContentKind::Reaction => {
            let r = c.reaction()?;
            (
                "message_reaction",
                json!({ "message_id": r.message_id, "emoji": r.emoji.unwrap_or_default() }),
            )
        }
        ContentKind::Edit => {
            let e = c.edit()?;
            (
                "message_edited",
                json!({
                    "message_id": e.message_id,
                    "text": e.new_content.and_then(content::text_of),
                    "edited_at_ms": e.timestamp_ms,
                }),
            )
        }
        ContentKind::Revoke => {
            let r = c.revoke()?;
            (
                "message_revoked",
                json!({ "message_id": r.message_id, "participant": r.participant }),
            )
        }
        ContentKind::EphemeralSetting => {
            let s = c.ephemeral_setting()?;
            (
                "chat_ephemeral",
                json!({
                    "expiration_secs": s.expiration,
                    "setting_timestamp": s.setting_timestamp,
                }),
            )
        }
        _ => return None,
    };
    let mut data = crate::incoming::info_json(&message.info);
    if let (Value::Object(map), Value::Object(extra)) = (&mut data, extra) {
        map.extend(extra);
    }
    Some((kind, data))
}

/// The `poll_vote` event of a decrypted vote: `{chat, poll_id, voter, vote_id, selected,
/// tally: [{option, votes}]}`.
pub(crate) fn vote_event(vote: &wa_engine::message::rich::PollVoteEvent) -> Value {
    json!({
        "chat": vote.chat.to_string(),
        "poll_id": vote.poll_id,
        "voter": vote.voter.to_string(),
        "vote_id": vote.vote_id,
        "selected": vote.selected,
        "tally": vote
            .tally
            .iter()
            .map(|(option, votes)| json!({ "option": option, "votes": votes }))
            .collect::<Vec<_>>(),
    })
}

/// The `notification` event of a typed engine notification (`wa_engine::notification`):
/// `{from, timestamp, kind, ...}` with `kind` one of `group` (`{group, actor, changes:
/// [{change, ...}], description, announce, locked, invite_code, ephemeral_secs}`; a
/// `create` change also carries the group: `subject, creator, creation, participants:
/// [{jid, role}]`), `account_sync`
/// (`{what}`), `picture` (`{jid, picture_id, removed}`), `status` (`{text}`), `devices`,
/// `identity_change`, `prekey_count` (`{count}`), `media_retry` (`{message_id}`).
pub(crate) fn notification_event(n: &wa_engine::notification::NotificationEvent) -> Value {
    use wa_engine::GroupChange;
    use wa_engine::notification::{AccountSync, NotificationKind};
    let (kind, extra) = match &n.kind {
        NotificationKind::Group(g, x) => {
            let changes: Vec<Value> = g
                .changes
                .iter()
                .map(|c| match c {
                    // The group as joined (dialects render it: Evolution's GROUPS_UPSERT).
                    GroupChange::Created(info) => json!({
                        "change": "create",
                        "subject": info.subject,
                        "creator": info.creator.as_ref().map(ToString::to_string),
                        "creation": info.creation,
                        "participants": info.participants.iter().map(|p| json!({
                            "jid": p.jid.to_string(),
                            "role": match p.role {
                                wa_engine::ParticipantRole::SuperAdmin => "superadmin",
                                wa_engine::ParticipantRole::Admin => "admin",
                                _ => "member",
                            },
                        })).collect::<Vec<_>>(),
                    }),
                    GroupChange::Added(j) => json!({"change": "add", "participants": jids(j)}),
                    GroupChange::Removed(j) => {
                        json!({"change": "remove", "participants": jids(j)})
                    }
                    GroupChange::Promoted(j) => {
                        json!({"change": "promote", "participants": jids(j)})
                    }
                    GroupChange::Demoted(j) => {
                        json!({"change": "demote", "participants": jids(j)})
                    }
                    GroupChange::Subject(s) => json!({"change": "subject", "subject": s}),
                    GroupChange::Other(t) => json!({"change": t}),
                    _ => json!({"change": "other"}),
                })
                .collect();
            (
                "group",
                json!({
                    "group": g.group.to_string(),
                    "actor": g.actor.as_ref().map(ToString::to_string),
                    "changes": changes,
                    "description": x.description,
                    "announce": x.announce,
                    "locked": x.locked,
                    "invite_code": x.invite_code,
                    "ephemeral_secs": x.ephemeral_secs,
                }),
            )
        }
        NotificationKind::AccountSync(what) => (
            "account_sync",
            json!({ "what": match what {
                AccountSync::Devices => "devices".to_owned(),
                AccountSync::Privacy => "privacy".to_owned(),
                AccountSync::Picture => "picture".to_owned(),
                AccountSync::Blocklist => "blocklist".to_owned(),
                AccountSync::Other(t) => t.clone(),
                _ => "other".to_owned(),
            }}),
        ),
        NotificationKind::Picture {
            jid,
            picture_id,
            removed,
        } => (
            "picture",
            json!({"jid": jid.as_ref().map(ToString::to_string), "picture_id": picture_id, "removed": removed}),
        ),
        NotificationKind::Status { text } => ("status", json!({ "text": text })),
        NotificationKind::Devices => ("devices", json!({})),
        NotificationKind::IdentityChange => ("identity_change", json!({})),
        NotificationKind::PreKeyCount(c) => ("prekey_count", json!({ "count": c })),
        NotificationKind::MediaRetry { message_id } => {
            ("media_retry", json!({ "message_id": message_id }))
        }
        _ => ("other", json!({})),
    };
    let mut data = json!({
        "from": n.from.as_ref().map(ToString::to_string),
        "timestamp": n.timestamp,
        "kind": kind,
    });
    if let (Value::Object(map), Value::Object(extra)) = (&mut data, extra) {
        map.extend(extra);
    }
    data
}

fn jids(list: &[Jid]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}
