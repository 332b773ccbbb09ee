//! WAHA `/api/{session}/groups...` (shared/compat/waha.md §5), each route one call of the
//! engine's group methods, as the native group routes make them (`routes::groups`: the
//! same path parsing and the same error mapping, [`crate::routes::groups::group_error`]:
//! 404 unknown group, 403 not an admin or not a member, 409 conflict).
//!
//! WAHA leaves the group object to the engine ("depends on the engine you use"); wa-server
//! answers with the one engine-independent shape WAHA documents, the `group` of its
//! `group.v2.join` event: `{id, subject, description, invite, membersCanAddNewMember,
//! membersCanSendMessages, newMembersApprovalRequired, participants: [GroupParticipant]}`
//! (`invite`, `membersCanAddNewMember` and `newMembersApprovalRequired` are `null`: the
//! metadata does not carry them), plus `owner`, `creation` (unix s) and `size`. Participants
//! are `GroupParticipant{id, role}` with `role` `participant|admin|superadmin`, as
//! `participants/v2` answers everywhere.
//!
//! Not offered (501 `not_supported`): `DELETE /api/{session}/groups/{id}` (WhatsApp deletes
//! no plain group; leave it instead), `DELETE .../picture` and `PUT .../picture` from a URL
//! (a base64 JPEG `file.data` works).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use wa_engine::{GroupInfo, GroupSetting, IqError, Jid, ParticipantAction, ParticipantRole};

use super::{Key, WahaError, chat_id, parse, parse_chat_id, query_pairs};
use crate::error::ApiError;
use crate::routes::groups::{group_error, parse_group};
use crate::session::Session;
use crate::state::AppState;

/// Longest subject, in characters (as the native routes).
const MAX_SUBJECT: usize = 100;
/// Longest description, in characters (as the native routes).
const MAX_DESCRIPTION: usize = 2048;
/// Most participants in one request (as the native routes).
const MAX_PARTICIPANTS: usize = 256;

/// WAHA `Participant{id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Participant {
    id: String,
}

/// `CreateGroupRequest{name, participants}`.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateGroup {
    name: String,
    participants: Vec<Participant>,
}

/// `ParticipantsRequest{participants}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Participants {
    participants: Vec<Participant>,
}

/// `SubjectRequest{subject}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Subject {
    subject: String,
}

/// `DescriptionRequest{description}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Description {
    description: String,
}

/// `SettingsSecurityChangeInfo{adminsOnly}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AdminsOnly {
    admins_only: bool,
}

/// `JoinGroupRequest{code}`.
#[derive(Debug, Deserialize)]
pub(crate) struct JoinGroup {
    code: String,
}

/// `ProfilePictureRequest{file: RemoteFile | BinaryFile}`.
#[derive(Debug, Deserialize)]
pub(crate) struct PictureRequest {
    file: PictureFile,
}

/// The `file` of [`PictureRequest`].
#[derive(Debug, Deserialize)]
pub(crate) struct PictureFile {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    data: Option<String>,
}

/// `{session}` and `{id}` of a route on one group.
#[derive(Debug, Deserialize)]
pub(crate) struct GroupPath {
    session: String,
    id: String,
}

/// WAHA's role name.
fn role(r: ParticipantRole) -> &'static str {
    match r {
        ParticipantRole::SuperAdmin => "superadmin",
        ParticipantRole::Admin => "admin",
        _ => "participant",
    }
}

/// `[GroupParticipant{id, role}]` of the members (failed adds left out).
fn participants_json(g: &GroupInfo) -> Vec<Value> {
    g.participants
        .iter()
        .filter(|p| p.error.is_none())
        .map(|p| json!({ "id": chat_id(&p.jid.to_string()), "role": role(p.role) }))
        .collect()
}

/// The group object (see the module docs).
pub(crate) fn group_json(g: &GroupInfo, with_participants: bool) -> Value {
    let participants = participants_json(g);
    let mut out = json!({
        "id": g.jid.to_string(),
        "subject": g.subject,
        "description": g.description.as_ref().map(|d| d.body.clone()),
        "invite": null,
        "membersCanAddNewMember": null,
        "membersCanSendMessages": !g.announce,
        "newMembersApprovalRequired": null,
        "owner": g.creator.as_ref().map(|j| chat_id(&j.to_string())),
        "creation": g.creation,
        "size": participants.len(),
    });
    if with_participants && let Value::Object(m) = &mut out {
        m.insert("participants".to_owned(), Value::Array(participants));
    }
    out
}

/// The users of a participants list (`<digits>@c.us`, user JIDs or phone numbers).
fn users(state: &AppState, list: &[Participant]) -> Result<Vec<Jid>, WahaError> {
    if list.is_empty() || list.len() > MAX_PARTICIPANTS {
        return Err(WahaError::bad_request(format!(
            "participants must hold 1-{MAX_PARTICIPANTS} entries"
        )));
    }
    list.iter().map(|p| parse_chat_id(state, &p.id)).collect()
}

fn gerr(e: IqError) -> WahaError {
    group_error(e).into()
}

/// A group metadata error: 403 for a group we are not in.
fn info_err(e: IqError) -> WahaError {
    match e {
        IqError::Forbidden => ApiError::NotGroupMember.into(),
        other => gerr(other),
    }
}

/// The session, its connected client and the group of a path.
fn target(
    state: &AppState,
    key: &Key,
    path: &GroupPath,
) -> Result<(std::sync::Arc<Session>, wa_engine::Client, Jid), WahaError> {
    let session = key.session(state, &path.session)?;
    let group = parse_group(&path.id)?;
    let client = session.connected_client()?;
    Ok((session, client, group))
}

/// `POST /api/{session}/groups`: 201, the new group.
pub(crate) async fn create(
    State(state): State<AppState>,
    key: Key,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), WahaError> {
    let session = key.session(&state, &name)?;
    let body: CreateGroup = parse(&body)?;
    let n = body.name.chars().count();
    if n == 0 || n > MAX_SUBJECT {
        return Err(WahaError::bad_request(format!(
            "name must be 1-{MAX_SUBJECT} characters"
        )));
    }
    let members = users(&state, &body.participants)?;
    let info = session
        .connected_client()?
        .create_group(&body.name, &members)
        .await
        .map_err(|e| gerr(e.into()))?;
    Ok((StatusCode::CREATED, Json(group_json(&info, true))))
}

/// The groups of a session, as `GET /api/{session}/groups` filters them.
async fn joined(state: &AppState, key: &Key, name: &str) -> Result<Vec<GroupInfo>, WahaError> {
    let session = key.session(state, name)?;
    session
        .connected_client()?
        .joined_groups()
        .await
        .map_err(gerr)
}

/// `GET /api/{session}/groups?sortBy=id|subject&sortOrder=asc|desc&limit&offset&exclude=participants`:
/// the groups this account is in (fetched from the server), as an array.
pub(crate) async fn list(
    State(state): State<AppState>,
    key: Key,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<Value>>, WahaError> {
    let q = query_pairs(raw.as_deref());
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let mut groups = joined(&state, &key, &name).await?;
    match get("sortBy") {
        None | Some("") => {}
        Some("id") => groups.sort_by_key(|g| g.jid.to_string()),
        Some("subject") => groups.sort_by(|a, b| a.subject.cmp(&b.subject)),
        Some(other) => {
            return Err(WahaError::bad_request(format!(
                "sortBy must be id or subject, not {other:?}"
            )));
        }
    }
    if get("sortOrder") == Some("desc") {
        groups.reverse();
    }
    let (offset, limit) = super::page(get("offset"), get("limit"))?;
    let without = q
        .iter()
        .any(|(n, v)| n.trim_end_matches("[]") == "exclude" && v == "participants");
    Ok(Json(
        groups
            .iter()
            .skip(offset)
            .take(limit)
            .map(|g| group_json(g, !without))
            .collect(),
    ))
}

/// `GET /api/{session}/groups/count`: `{count}`.
pub(crate) async fn count(
    State(state): State<AppState>,
    key: Key,
    Path(name): Path<String>,
) -> Result<Json<Value>, WahaError> {
    let groups = joined(&state, &key, &name).await?;
    Ok(Json(json!({ "count": groups.len() })))
}

/// `POST /api/{session}/groups/refresh`: fetches the groups from the server (wa-server
/// keeps no group cache, so every listing is fresh). 200 `{success: true}`.
pub(crate) async fn refresh(
    State(state): State<AppState>,
    key: Key,
    Path(name): Path<String>,
) -> Result<Json<Value>, WahaError> {
    joined(&state, &key, &name).await?;
    Ok(Json(json!({ "success": true })))
}

/// `?code=` of `join-info`.
#[derive(Debug, Deserialize)]
pub(crate) struct CodeQuery {
    #[serde(default)]
    code: Option<String>,
}

fn invite_code(raw: &str) -> Result<&str, WahaError> {
    let code = wa_engine::group_invite_code(raw.trim());
    if code.is_empty() || code.len() > 64 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(WahaError::bad_request(
            "code: an invite code or https://chat.whatsapp.com/<code>",
        ));
    }
    Ok(code)
}

fn invite_err(e: IqError) -> WahaError {
    match e {
        IqError::Gone | IqError::NotAcceptable | IqError::NotFound => {
            ApiError::InviteNotFound.into()
        }
        other => gerr(other),
    }
}

/// `GET /api/{session}/groups/join-info?code=`: the group behind an invite.
pub(crate) async fn join_info(
    State(state): State<AppState>,
    key: Key,
    Path(name): Path<String>,
    super::WahaQuery(q): super::WahaQuery<CodeQuery>,
) -> Result<Json<Value>, WahaError> {
    let session = key.session(&state, &name)?;
    let code = invite_code(q.code.as_deref().unwrap_or_default())?;
    let info = session
        .connected_client()?
        .group_info_from_invite(code)
        .await
        .map_err(invite_err)?;
    Ok(Json(group_json(&info, true)))
}

/// `POST /api/{session}/groups/join`: `JoinGroupResponse{id}`. 200.
pub(crate) async fn join(
    State(state): State<AppState>,
    key: Key,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, WahaError> {
    let session = key.session(&state, &name)?;
    let body: JoinGroup = parse(&body)?;
    let code = invite_code(&body.code)?;
    let jid = session
        .connected_client()?
        .join_group_with_invite(code)
        .await
        .map_err(invite_err)?;
    Ok(Json(json!({ "id": jid.to_string() })))
}

/// `GET /api/{session}/groups/{id}`: the group.
pub(crate) async fn get(
    State(state): State<AppState>,
    key: Key,
    Path(path): Path<GroupPath>,
) -> Result<Json<Value>, WahaError> {
    let (_, client, group) = target(&state, &key, &path)?;
    let info = client.group_info(&group).await.map_err(info_err)?;
    Ok(Json(group_json(&info, true)))
}

/// `DELETE /api/{session}/groups/{id}`: 501 (see the module docs).
pub(crate) async fn delete(
    State(state): State<AppState>,
    key: Key,
    Path(path): Path<GroupPath>,
) -> Result<Json<Value>, WahaError> {
    key.session(&state, &path.session)?;
    Err(WahaError::not_supported(
        "deleting a group is not supported: leave it (POST /api/{session}/groups/{id}/leave)",
    ))
}

/// `POST /api/{session}/groups/{id}/leave`: 200 `{success: true}`.
pub(crate) async fn leave(
    State(state): State<AppState>,
    key: Key,
    Path(path): Path<GroupPath>,
) -> Result<Json<Value>, WahaError> {
    let (_, client, group) = target(&state, &key, &path)?;
    client.leave_group(&group).await.map_err(gerr)?;
    Ok(Json(json!({ "success": true })))
}

/// `GET /api/{session}/groups/{id}/participants` and `.../participants/v2`:
/// `[GroupParticipant{id, role}]`.
pub(crate) async fn participants(
    State(state): State<AppState>,
    key: Key,
    Path(path): Path<GroupPath>,
) -> Result<Json<Vec<Value>>, WahaError> {
    let (_, client, group) = target(&state, &key, &path)?;
    let info = client.group_info(&group).await.map_err(info_err)?;
    Ok(Json(participants_json(&info)))
}

/// A membership change: 200, `[{id, role?, status}]` per participant asked for (`status`
/// 200 when done, else the server's code: 404 no account or not a member, 409 already a
/// member, 403 the user's privacy settings require an invite).
async fn change(
    state: &AppState,
    key: &Key,
    path: &GroupPath,
    body: &[u8],
    action: ParticipantAction,
) -> Result<Json<Vec<Value>>, WahaError> {
    let (_, client, group) = target(state, key, path)?;
    let body: Participants = parse(body)?;
    let members = users(state, &body.participants)?;
    let out = client
        .change_participants(&group, action, &members)
        .await
        .map_err(gerr)?;
    Ok(Json(
        out.iter()
            .map(|p| json!({ "id": chat_id(&p.jid.to_string()), "status": p.error.unwrap_or(200) }))
            .collect(),
    ))
}

/// `POST .../participants/add`.
pub(crate) async fn add(
    State(state): State<AppState>,
    key: Key,
    Path(path): Path<GroupPath>,
    body: Bytes,
) -> Result<Json<Vec<Value>>, WahaError> {
    change(&state, &key, &path, &body, ParticipantAction::Add).await
}

/// `POST .../participants/remove`.
pub(crate) async fn remove(
    State(state): State<AppState>,
    key: Key,
    Path(path): Path<GroupPath>,
    body: Bytes,
) -> Result<Json<Vec<Value>>, WahaError> {
    change(&state, &key, &path, &body, ParticipantAction::Remove).await
}

/// `POST .../admin/promote`.
pub(crate) async fn promote(
    State(state): State<AppState>,
    key: Key,
    Path(path): Path<GroupPath>,
    body: Bytes,
) -> Result<Json<Vec<Value>>, WahaError> {
    change(&state, &key, &path, &body, ParticipantAction::Promote).await
}

/// `POST .../admin/demote`.
pub(crate) async fn demote(
    State(state): State<AppState>,
    key: Key,
    Path(path): Path<GroupPath>,
    body: Bytes,
) -> Result<Json<Vec<Value>>, WahaError> {
    change(&state, &key, &path, &body, ParticipantAction::Demote).await
}

/// `PUT .../subject`: 200 `true`.
pub(crate) async fn subject(
    State(state): State<AppState>,
    key: Key,
    Path(path): Path<GroupPath>,
    body: Bytes,
) -> Result<Json<bool>, WahaError> {
    let (_, client, group) = target(&state, &key, &path)?;
    let body: Subject = parse(&body)?;
    let n = body.subject.chars().count();
    if n == 0 || n > MAX_SUBJECT {
        return Err(WahaError::bad_request(format!(
            "subject must be 1-{MAX_SUBJECT} characters"
        )));
    }
    client
        .set_group_subject(&group, &body.subject)
        .await
        .map_err(gerr)?;
    Ok(Json(true))
}

/// `PUT .../description` (`""` removes it): 200 `true`.
pub(crate) async fn description(
    State(state): State<AppState>,
    key: Key,
    Path(path): Path<GroupPath>,
    body: Bytes,
) -> Result<Json<bool>, WahaError> {
    let (_, client, group) = target(&state, &key, &path)?;
    let body: Description = parse(&body)?;
    if body.description.chars().count() > MAX_DESCRIPTION {
        return Err(WahaError::bad_request(format!(
            "description is at most {MAX_DESCRIPTION} characters"
        )));
    }
    client
        .set_group_description(&group, &body.description)
        .await
        .map_err(gerr)?;
    Ok(Json(true))
}

/// Which admins-only setting a route reads or changes.
#[derive(Debug, Clone, Copy)]
enum Security {
    /// `info-admin-only`: only admins edit the group info (`locked`).
    Info,
    /// `messages-admin-only`: only admins send (`announce`).
    Messages,
}

async fn set_security(
    state: &AppState,
    key: &Key,
    path: &GroupPath,
    body: &[u8],
    which: Security,
) -> Result<Json<bool>, WahaError> {
    let (_, client, group) = target(state, key, path)?;
    let body: AdminsOnly = parse(body)?;
    let setting = match which {
        Security::Info => GroupSetting::Locked(body.admins_only),
        Security::Messages => GroupSetting::Announce(body.admins_only),
    };
    client
        .set_group_setting(&group, setting)
        .await
        .map_err(gerr)?;
    Ok(Json(true))
}

async fn get_security(
    state: &AppState,
    key: &Key,
    path: &GroupPath,
    which: Security,
) -> Result<Json<Value>, WahaError> {
    let (_, client, group) = target(state, key, path)?;
    let info = client.group_info(&group).await.map_err(info_err)?;
    let on = match which {
        Security::Info => info.locked,
        Security::Messages => info.announce,
    };
    Ok(Json(json!({ "adminsOnly": on })))
}

/// `PUT .../settings/security/info-admin-only` `{adminsOnly}`: 200 `true`.
pub(crate) async fn set_info_admin_only(
    State(state): State<AppState>,
    key: Key,
    Path(path): Path<GroupPath>,
    body: Bytes,
) -> Result<Json<bool>, WahaError> {
    set_security(&state, &key, &path, &body, Security::Info).await
}

/// `GET .../settings/security/info-admin-only`: `{adminsOnly}`.
pub(crate) async fn get_info_admin_only(
    State(state): State<AppState>,
    key: Key,
    Path(path): Path<GroupPath>,
) -> Result<Json<Value>, WahaError> {
    get_security(&state, &key, &path, Security::Info).await
}

/// `PUT .../settings/security/messages-admin-only` `{adminsOnly}`: 200 `true`.
pub(crate) async fn set_messages_admin_only(
    State(state): State<AppState>,
    key: Key,
    Path(path): Path<GroupPath>,
    body: Bytes,
) -> Result<Json<bool>, WahaError> {
    set_security(&state, &key, &path, &body, Security::Messages).await
}

/// `GET .../settings/security/messages-admin-only`: `{adminsOnly}`.
pub(crate) async fn get_messages_admin_only(
    State(state): State<AppState>,
    key: Key,
    Path(path): Path<GroupPath>,
) -> Result<Json<Value>, WahaError> {
    get_security(&state, &key, &path, Security::Messages).await
}

/// `GET .../invite-code`: the invite code, as a JSON string.
pub(crate) async fn get_invite_code(
    State(state): State<AppState>,
    key: Key,
    Path(path): Path<GroupPath>,
) -> Result<Json<String>, WahaError> {
    let (_, client, group) = target(&state, &key, &path)?;
    let link = client.group_invite_link(&group).await.map_err(gerr)?;
    Ok(Json(wa_engine::group_invite_code(&link).to_owned()))
}

/// `POST .../invite-code/revoke`: 200, the new invite code as a JSON string.
pub(crate) async fn revoke_invite_code(
    State(state): State<AppState>,
    key: Key,
    Path(path): Path<GroupPath>,
) -> Result<Json<String>, WahaError> {
    let (_, client, group) = target(&state, &key, &path)?;
    let link = client.revoke_group_invite(&group).await.map_err(gerr)?;
    Ok(Json(wa_engine::group_invite_code(&link).to_owned()))
}

/// `GET .../picture`: `ChatPictureResponse{url}` (`null` without a picture; `refresh` is
/// ignored, nothing is cached).
pub(crate) async fn get_picture(
    State(state): State<AppState>,
    key: Key,
    Path(path): Path<GroupPath>,
) -> Result<Json<Value>, WahaError> {
    let (_, client, group) = target(&state, &key, &path)?;
    let picture = client
        .profile_picture(&group, false)
        .await
        .map_err(info_err)?;
    Ok(Json(json!({ "url": picture.map(|p| p.url) })))
}

/// `PUT .../picture` with `file.data` (base64 JPEG): `Result{success: true}`. A
/// `file.url` answers 501.
pub(crate) async fn set_picture(
    State(state): State<AppState>,
    key: Key,
    Path(path): Path<GroupPath>,
    body: Bytes,
) -> Result<Json<Value>, WahaError> {
    use base64::Engine as _;
    let (_, client, group) = target(&state, &key, &path)?;
    let body: PictureRequest = parse(&body)?;
    let Some(data) = body.file.data.filter(|d| !d.is_empty()) else {
        return Err(if body.file.url.is_some() {
            WahaError::not_supported(
                "a group picture from file.url is not supported: send file.data (base64 JPEG)",
            )
        } else {
            WahaError::bad_request("file.data (base64 JPEG) is required")
        });
    };
    let raw = data
        .split_once(";base64,")
        .map_or(data.as_str(), |(_, b)| b);
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(raw.trim().as_bytes())
        .map_err(|e| WahaError::bad_request(format!("file.data: {e}")))?;
    if !jpeg.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Err(WahaError::bad_request("file.data: not a JPEG"));
    }
    client
        .set_group_picture(&group, &jpeg)
        .await
        .map_err(gerr)?;
    Ok(Json(json!({ "success": true })))
}

/// `DELETE .../picture`: 501 (the engine offers no group picture removal).
pub(crate) async fn delete_picture(
    State(state): State<AppState>,
    key: Key,
    Path(path): Path<GroupPath>,
) -> Result<Json<Value>, WahaError> {
    key.session(&state, &path.session)?;
    Err(WahaError::not_supported(
        "removing a group picture is not supported",
    ))
}
