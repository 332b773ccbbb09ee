//! `/api/sessions/{id}/groups...`: the group lifecycle (issue 13, wa-server): create, list,
//! info, participants (add, remove, promote, demote), subject, description, settings
//! (announce, locked, disappearing timer), invite link (get, revoke), join by invite, leave.
//! Each route is one engine call (`wa_engine::Client::create_group`, `joined_groups`,
//! `group_info`, `change_participants`, `set_group_subject`, `set_group_description`,
//! `set_group_setting`, `set_group_ephemeral`, `group_invite_link`, `revoke_group_invite`,
//! `join_group_with_invite`, `leave_group`); group change events arrive as notifications.
//!
//! The shapes are chosen so the Evolution (`/group/*`) and WAHA (`/api/{session}/groups`)
//! dialects map onto them: the group view carries Evolution's `fetchAllGroups` fields under
//! snake_case names (`subject_owner`, `subject_time`, `description_id`, `announce`,
//! `locked`), participant results carry Baileys' per-participant `status`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use wa_engine::{
    GroupInfo, GroupParticipant, GroupSetting, IqError, Jid, ParticipantAction, ParticipantRole,
};

use super::{ApiJson, ApiPath, AuthorizedSession};
use crate::error::{ApiError, ErrorBody};
use crate::phone::parse_recipient;
use crate::state::AppState;

/// Longest subject the server accepts here, in characters (the sandbox's limit; the real
/// server refuses more than 25 with 406, reported as `upstream_rejected`).
const MAX_SUBJECT: usize = 100;
/// Longest description, in characters (the official apps' limit).
const MAX_DESCRIPTION: usize = 2048;
/// Most participants in one request.
const MAX_PARTICIPANTS: usize = 256;

/// A group JID (`120363012345678901@g.us`) or its id alone; old-style ids
/// (`<creator phone>-<unix time>`) too.
#[derive(Debug, ToSchema)]
#[schema(
    value_type = String,
    pattern = "^[0-9]{1,20}(-[0-9]{1,12})?(@g\\.us)?$",
    example = "120363012345678901@g.us"
)]
#[allow(dead_code)] // only its schema is used
pub(crate) struct GroupId(String);

/// Path of a route on one group.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct GroupPath {
    /// Session id.
    #[allow(dead_code)] // read by `AuthorizedSession`
    id: String,
    /// The group: `120363012345678901@g.us` or `120363012345678901`.
    #[param(value_type = GroupId)]
    group: String,
}

fn valid_group_user(user: &str) -> bool {
    let (main, old) = match user.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (user, None),
    };
    let digits =
        |s: &str, max: usize| (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    digits(main, 20) && old.is_none_or(|o| digits(o, 12))
}

/// The group of a path segment.
///
/// # Errors
/// [`ApiError::InvalidParameter`].
pub(crate) fn parse_group(input: &str) -> Result<Jid, ApiError> {
    let user = input.strip_suffix("@g.us").unwrap_or(input);
    if !valid_group_user(user) {
        return Err(ApiError::InvalidParameter(
            "group: a group JID (`<digits>@g.us`) or its digits".to_owned(),
        ));
    }
    Ok(Jid::group(user.to_owned()))
}

/// A participant's role.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    /// A member.
    Member,
    /// An admin.
    Admin,
    /// The super admin (the creator).
    Superadmin,
}

/// One participant.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ParticipantView {
    /// The user JID.
    jid: String,
    /// The role.
    role: Role,
}

/// A group (whatsmeow `GroupInfo`, Evolution `fetchAllGroups` item).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GroupView {
    /// The group JID.
    id: String,
    /// The subject (name).
    subject: String,
    /// Who set the subject, if known.
    subject_owner: Option<String>,
    /// When the subject was set, unix seconds (0 if unknown).
    subject_time: u64,
    /// Who created the group, if known.
    creator: Option<String>,
    /// Creation time, unix seconds (0 if unknown).
    creation: u64,
    /// The description, if set.
    description: Option<String>,
    /// The description's id (changes with every edit), if set.
    description_id: Option<String>,
    /// Only admins may send.
    announce: bool,
    /// Only admins may edit the group info.
    locked: bool,
    /// Disappearing-messages timer in seconds; 0 = off.
    ephemeral_seconds: u32,
    /// Number of participants.
    size: usize,
    /// The participants.
    participants: Vec<ParticipantView>,
}

impl From<GroupInfo> for GroupView {
    fn from(g: GroupInfo) -> Self {
        let participants: Vec<ParticipantView> = g
            .participants
            .iter()
            .filter(|p| p.error.is_none())
            .map(|p| ParticipantView {
                jid: p.jid.to_string(),
                role: match p.role {
                    ParticipantRole::SuperAdmin => Role::Superadmin,
                    ParticipantRole::Admin => Role::Admin,
                    ParticipantRole::Member => Role::Member,
                },
            })
            .collect();
        Self {
            id: g.jid.to_string(),
            subject: g.subject,
            subject_owner: g.subject_owner.map(|j| j.to_string()),
            subject_time: g.subject_time,
            creator: g.creator.map(|j| j.to_string()),
            creation: g.creation,
            description_id: g.description.as_ref().map(|d| d.id.clone()),
            description: g.description.map(|d| d.body),
            announce: g.announce,
            locked: g.locked,
            ephemeral_seconds: g.ephemeral.unwrap_or(0),
            size: participants.len(),
            participants,
        }
    }
}

/// `POST .../groups` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateGroup {
    /// The subject (name). The real server allows 25 characters.
    #[schema(min_length = 1, max_length = 100)]
    subject: String,
    /// The other members (the session's account is added as super admin). Users without
    /// an account are reported in `failed`.
    #[serde(default)]
    #[schema(value_type = Vec<crate::api_types::Recipient>, max_items = 256)]
    participants: Vec<String>,
}

/// The created group, and who could not be added.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedGroup {
    /// The group.
    #[serde(flatten)]
    group: GroupView,
    /// Users that were not added, with the server's code (e.g. 404 no account, 403 their
    /// privacy settings require an invite).
    failed: Vec<ParticipantResult>,
}

/// Body naming participants.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Participants {
    /// Users: phone numbers or user JIDs.
    #[schema(value_type = Vec<crate::api_types::Recipient>, min_items = 1, max_items = 256)]
    participants: Vec<String>,
}

/// One participant's outcome (Baileys `updateParticipants` shape).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ParticipantResult {
    /// The user JID.
    jid: String,
    /// 200 done; otherwise the server's code: 404 no account or not a member, 409 already
    /// a member, 403 the user's privacy settings require an invite.
    status: u16,
}

/// The outcome per participant.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ParticipantsOutcome {
    /// `add`, `remove`, `promote` or `demote`.
    action: String,
    /// One entry per participant asked for.
    participants: Vec<ParticipantResult>,
}

/// `PUT .../subject` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Subject {
    /// The new subject.
    #[schema(min_length = 1, max_length = 100)]
    subject: String,
}

/// `PUT .../description` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Description {
    /// The new description; empty removes it.
    #[schema(max_length = 2048)]
    description: String,
}

/// The description after the change.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DescriptionSet {
    /// The new description id; `null` when removed.
    description_id: Option<String>,
}

/// A disappearing-messages timer: off, 24 hours, 7 days or 90 days (the official apps'
/// choices).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[schema(value_type = u32)]
#[serde(try_from = "u32")]
pub(crate) struct EphemeralSeconds(u32);

impl TryFrom<u32> for EphemeralSeconds {
    type Error = String;

    fn try_from(v: u32) -> Result<Self, String> {
        match v {
            0 | 86_400 | 604_800 | 7_776_000 => Ok(Self(v)),
            _ => Err("ephemeral_seconds is one of 0, 86400, 604800, 7776000".to_owned()),
        }
    }
}

/// `PUT .../settings` body: the settings to change (absent ones stay).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    /// Only admins may send.
    #[serde(default)]
    announce: Option<bool>,
    /// Only admins may edit the group info.
    #[serde(default)]
    locked: Option<bool>,
    /// Disappearing messages: 0 (off), 86400, 604800 or 7776000 seconds.
    #[serde(default)]
    #[schema(schema_with = ephemeral_schema)]
    ephemeral_seconds: Option<EphemeralSeconds>,
}

fn ephemeral_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            utoipa::openapi::schema::Type::Integer,
            utoipa::openapi::schema::Type::Null,
        ]))
        .enum_values(Some([
            serde_json::Value::from(0),
            serde_json::Value::from(86_400),
            serde_json::Value::from(604_800),
            serde_json::Value::from(7_776_000),
            serde_json::Value::Null,
        ]))
        .description(Some(
            "Disappearing messages: 0 (off), 86400, 604800 or 7776000 seconds.",
        ))
        .build()
}

/// An invite link.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Invite {
    /// The code.
    code: String,
    /// `https://chat.whatsapp.com/<code>`.
    url: String,
}

impl Invite {
    fn of(link: &str) -> Self {
        Self {
            code: wa_engine::group_invite_code(link).to_owned(),
            url: link.to_owned(),
        }
    }
}

/// `POST .../groups/join` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Join {
    /// The invite code, or the whole `https://chat.whatsapp.com/<code>` link.
    #[schema(pattern = "^(https://chat\\.whatsapp\\.com/)?[A-Za-z0-9]{1,64}$")]
    code: String,
}

/// The joined group.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Joined {
    /// The group JID.
    id: String,
}

/// The engine's error for a group route: the group is missing (404), we may not do this
/// (403; the server's 401 for invite links by non-admins too), or a concurrent change (409).
fn group_error(e: IqError) -> ApiError {
    match e {
        IqError::NotFound => ApiError::GroupNotFound,
        IqError::Forbidden | IqError::NotAuthorized => ApiError::GroupForbidden,
        IqError::Conflict => ApiError::GroupConflict,
        IqError::NotAcceptable => ApiError::UpstreamRejected(406),
        IqError::Gone => ApiError::UpstreamRejected(410),
        IqError::NoParticipants => ApiError::InvalidBody("no participants given".to_owned()),
        IqError::Send(e) => e.into(),
        other => ApiError::internal(other),
    }
}

fn users(state: &AppState, inputs: &[String]) -> Result<Vec<Jid>, ApiError> {
    if inputs.len() > MAX_PARTICIPANTS {
        return Err(ApiError::InvalidBody(format!(
            "at most {MAX_PARTICIPANTS} participants"
        )));
    }
    let cc = state.config().default_country_code.clone();
    inputs
        .iter()
        .map(|p| parse_recipient(p, cc.as_deref()))
        .collect()
}

fn result_of(p: &GroupParticipant) -> ParticipantResult {
    ParticipantResult {
        jid: p.jid.to_string(),
        status: p.error.unwrap_or(200),
    }
}

#[utoipa::path(post, path = "/api/sessions/{id}/groups", tag = "groups",
    params(("id" = String, Path, description = "Session id")),
    request_body = CreateGroup,
    responses((status = 201, body = CreatedGroup), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<CreateGroup>,
) -> Result<(StatusCode, Json<CreatedGroup>), ApiError> {
    let n = body.subject.chars().count();
    if n == 0 || n > MAX_SUBJECT {
        return Err(ApiError::InvalidBody(format!(
            "subject must be 1-{MAX_SUBJECT} characters"
        )));
    }
    let members = users(&state, &body.participants)?;
    let info = session
        .connected_client()?
        .create_group(&body.subject, &members)
        .await
        .map_err(|e| group_error(e.into()))?;
    let failed = info
        .participants
        .iter()
        .filter(|p| p.error.is_some())
        .map(result_of)
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(CreatedGroup {
            group: info.into(),
            failed,
        }),
    ))
}

#[utoipa::path(get, path = "/api/sessions/{id}/groups", tag = "groups",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = Vec<GroupView>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn list(
    AuthorizedSession(session): AuthorizedSession,
) -> Result<Json<Vec<GroupView>>, ApiError> {
    let groups = session
        .connected_client()?
        .joined_groups()
        .await
        .map_err(group_error)?;
    Ok(Json(groups.into_iter().map(GroupView::from).collect()))
}

#[utoipa::path(get, path = "/api/sessions/{id}/groups/{group}", tag = "groups",
    params(GroupPath),
    responses((status = 200, body = GroupView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn info(
    AuthorizedSession(session): AuthorizedSession,
    ApiPath(path): ApiPath<GroupPath>,
) -> Result<Json<GroupView>, ApiError> {
    let group = parse_group(&path.group)?;
    let info = session
        .connected_client()?
        .group_info(&group)
        .await
        .map_err(|e| match e {
            IqError::Forbidden => ApiError::NotGroupMember,
            other => group_error(other),
        })?;
    Ok(Json(info.into()))
}

async fn participants(
    state: &AppState,
    session: &crate::session::Session,
    group: &str,
    action: ParticipantAction,
    body: Participants,
) -> Result<Json<ParticipantsOutcome>, ApiError> {
    let group = parse_group(group)?;
    if body.participants.is_empty() {
        return Err(ApiError::InvalidBody(
            "participants must not be empty".to_owned(),
        ));
    }
    let members = users(state, &body.participants)?;
    let out = session
        .connected_client()?
        .change_participants(&group, action, &members)
        .await
        .map_err(group_error)?;
    Ok(Json(ParticipantsOutcome {
        action: action.as_str().to_owned(),
        participants: out.iter().map(result_of).collect(),
    }))
}

/// The responses of the participant routes.
macro_rules! participant_route {
    ($name:ident, $method:ident, $path:literal, $action:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path($method, path = $path, tag = "groups",
            params(GroupPath),
            request_body = Participants,
            responses((status = 200, body = ParticipantsOutcome), (status = 400, body = ErrorBody),
                (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
                (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
                (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
                (status = 422, body = ErrorBody), (status = 502, body = ErrorBody),
                (status = 504, body = ErrorBody)),
            security(("api_key" = []), ("bearer" = [])))]
        pub(crate) async fn $name(
            State(state): State<AppState>,
            AuthorizedSession(session): AuthorizedSession,
            ApiPath(path): ApiPath<GroupPath>,
            ApiJson(body): ApiJson<Participants>,
        ) -> Result<Json<ParticipantsOutcome>, ApiError> {
            participants(&state, &session, &path.group, $action, body).await
        }
    };
}

participant_route!(
    add_participants,
    post,
    "/api/sessions/{id}/groups/{group}/participants",
    ParticipantAction::Add,
    "Add members (admins only)."
);
participant_route!(
    remove_participants,
    delete,
    "/api/sessions/{id}/groups/{group}/participants",
    ParticipantAction::Remove,
    "Remove members (admins only)."
);
participant_route!(
    promote,
    post,
    "/api/sessions/{id}/groups/{group}/participants/promote",
    ParticipantAction::Promote,
    "Make members admins (admins only)."
);
participant_route!(
    demote,
    post,
    "/api/sessions/{id}/groups/{group}/participants/demote",
    ParticipantAction::Demote,
    "Make admins plain members (admins only)."
);

#[utoipa::path(put, path = "/api/sessions/{id}/groups/{group}/subject", tag = "groups",
    params(GroupPath),
    request_body = Subject,
    responses((status = 204, description = "Renamed; members get a notification"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn subject(
    AuthorizedSession(session): AuthorizedSession,
    ApiPath(path): ApiPath<GroupPath>,
    ApiJson(body): ApiJson<Subject>,
) -> Result<StatusCode, ApiError> {
    let group = parse_group(&path.group)?;
    let n = body.subject.chars().count();
    if n == 0 || n > MAX_SUBJECT {
        return Err(ApiError::InvalidBody(format!(
            "subject must be 1-{MAX_SUBJECT} characters"
        )));
    }
    session
        .connected_client()?
        .set_group_subject(&group, &body.subject)
        .await
        .map_err(group_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/sessions/{id}/groups/{group}/description", tag = "groups",
    params(GroupPath),
    request_body = Description,
    responses((status = 200, body = DescriptionSet), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn description(
    AuthorizedSession(session): AuthorizedSession,
    ApiPath(path): ApiPath<GroupPath>,
    ApiJson(body): ApiJson<Description>,
) -> Result<Json<DescriptionSet>, ApiError> {
    let group = parse_group(&path.group)?;
    if body.description.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::InvalidBody(format!(
            "description is at most {MAX_DESCRIPTION} characters"
        )));
    }
    let id = session
        .connected_client()?
        .set_group_description(&group, &body.description)
        .await
        .map_err(group_error)?;
    Ok(Json(DescriptionSet {
        description_id: (!body.description.is_empty()).then_some(id),
    }))
}

#[utoipa::path(put, path = "/api/sessions/{id}/groups/{group}/settings", tag = "groups",
    params(GroupPath),
    request_body = Settings,
    responses((status = 200, body = GroupView, description = "The group after the change"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn settings(
    AuthorizedSession(session): AuthorizedSession,
    ApiPath(path): ApiPath<GroupPath>,
    ApiJson(body): ApiJson<Settings>,
) -> Result<Json<GroupView>, ApiError> {
    let group = parse_group(&path.group)?;
    let client = session.connected_client()?;
    if let Some(on) = body.announce {
        client
            .set_group_setting(&group, GroupSetting::Announce(on))
            .await
            .map_err(group_error)?;
    }
    if let Some(on) = body.locked {
        client
            .set_group_setting(&group, GroupSetting::Locked(on))
            .await
            .map_err(group_error)?;
    }
    if let Some(EphemeralSeconds(secs)) = body.ephemeral_seconds {
        client
            .set_group_ephemeral(&group, secs)
            .await
            .map_err(group_error)?;
    }
    let info = client.group_info(&group).await.map_err(|e| match e {
        IqError::Forbidden => ApiError::NotGroupMember,
        other => group_error(other),
    })?;
    Ok(Json(info.into()))
}

#[utoipa::path(get, path = "/api/sessions/{id}/groups/{group}/invite", tag = "groups",
    params(GroupPath),
    responses((status = 200, body = Invite), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn invite(
    AuthorizedSession(session): AuthorizedSession,
    ApiPath(path): ApiPath<GroupPath>,
) -> Result<Json<Invite>, ApiError> {
    let group = parse_group(&path.group)?;
    let link = session
        .connected_client()?
        .group_invite_link(&group)
        .await
        .map_err(group_error)?;
    Ok(Json(Invite::of(&link)))
}

#[utoipa::path(delete, path = "/api/sessions/{id}/groups/{group}/invite", tag = "groups",
    params(GroupPath),
    responses((status = 200, body = Invite, description = "Revoked; the new link"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn revoke_invite(
    AuthorizedSession(session): AuthorizedSession,
    ApiPath(path): ApiPath<GroupPath>,
) -> Result<Json<Invite>, ApiError> {
    let group = parse_group(&path.group)?;
    let link = session
        .connected_client()?
        .revoke_group_invite(&group)
        .await
        .map_err(group_error)?;
    Ok(Json(Invite::of(&link)))
}

#[utoipa::path(post, path = "/api/sessions/{id}/groups/join", tag = "groups",
    params(("id" = String, Path, description = "Session id")),
    request_body = Join,
    responses((status = 200, body = Joined), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn join(
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<Join>,
) -> Result<Json<Joined>, ApiError> {
    let code = wa_engine::group_invite_code(&body.code);
    if code.is_empty() || code.len() > 64 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::InvalidBody(
            "code: an invite code or https://chat.whatsapp.com/<code>".to_owned(),
        ));
    }
    let jid = session
        .connected_client()?
        .join_group_with_invite(code)
        .await
        .map_err(|e| match e {
            IqError::Gone | IqError::NotAcceptable | IqError::NotFound => ApiError::InviteNotFound,
            other => group_error(other),
        })?;
    Ok(Json(Joined {
        id: jid.to_string(),
    }))
}

#[utoipa::path(post, path = "/api/sessions/{id}/groups/{group}/leave", tag = "groups",
    params(GroupPath),
    responses((status = 204, description = "Left; the other members get a notification"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 504, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn leave(
    AuthorizedSession(session): AuthorizedSession,
    ApiPath(path): ApiPath<GroupPath>,
) -> Result<StatusCode, ApiError> {
    let group = parse_group(&path.group)?;
    session
        .connected_client()?
        .leave_group(&group)
        .await
        .map_err(group_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_paths_take_jids_and_bare_ids() {
        assert_eq!(
            parse_group("120363012345678901@g.us").unwrap().to_string(),
            "120363012345678901@g.us"
        );
        assert_eq!(
            parse_group("15551234567-1700000000").unwrap().to_string(),
            "15551234567-1700000000@g.us"
        );
        assert!(parse_group("abc@g.us").is_err());
        assert!(parse_group("1@s.whatsapp.net").is_err());
    }

    #[test]
    fn ephemeral_accepts_only_the_official_timers() {
        assert!(EphemeralSeconds::try_from(86_400).is_ok());
        assert!(EphemeralSeconds::try_from(5).is_err());
    }
}
