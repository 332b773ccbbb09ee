//! `/group/*` (`api/routes/group.router.ts`) over the engine's group methods: create,
//! metadata, membership changes (add, remove, promote, demote), settings, invite links,
//! leave, subject, description and picture. Engine errors map as the native group routes'
//! do (`routes::groups::group_error`: 404 unknown group, 403 not an admin, 409 conflict).
//! `fetchAllGroups` lists the groups this instance created through the dialect or has
//! messages from (there is no "participating groups" query yet).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use wa_engine::{GroupInfo, GroupSetting, IqError, Jid, ParticipantAction};

use super::{EvoError, EvoInstance, EvoJson, EvoQuery, EvoResult, store};
use crate::state::AppState;

/// `?groupJid=` (`@g.us` appended when missing, as Evolution does).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GroupQuery {
    group_jid: Option<String>,
    get_participants: Option<String>,
}

fn group_jid(raw: Option<&str>) -> EvoResult<Jid> {
    let raw = raw
        .filter(|s| !s.is_empty())
        .ok_or_else(|| EvoError::bad_request("The group id needs to be informed in the query"))?;
    let full = if raw.contains('@') {
        raw.to_owned()
    } else {
        format!("{raw}@g.us")
    };
    // A group id is digits, or digits-digits (older groups: creator-timestamp).
    let digits = |s: &str| !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_digit());
    full.parse::<Jid>()
        .ok()
        .filter(|j| {
            let mut parts = j.user().splitn(2, '-');
            j.is_group() && parts.next().is_some_and(digits) && parts.next().is_none_or(digits)
        })
        .ok_or_else(|| EvoError::bad_request(format!("{full} is not a group id")))
}

fn role(p: &wa_engine::GroupParticipant) -> Value {
    let name = format!("{:?}", p.role);
    match name.as_str() {
        "Admin" => json!("admin"),
        "SuperAdmin" => json!("superadmin"),
        _ => Value::Null,
    }
}

/// Evolution's group item (Baileys `GroupMetadata`).
fn group_json(g: &GroupInfo, participants: bool) -> Value {
    let mut out = json!({
        "id": g.jid.to_string(),
        "subject": g.subject,
        "subjectOwner": g.creator.as_ref().map(ToString::to_string),
        "subjectTime": g.creation,
        "pictureUrl": null,
        "size": g.participants.len(),
        "creation": g.creation,
        "owner": g.creator.as_ref().map(ToString::to_string),
        "desc": null,
        "descId": null,
        "restrict": false,
        "announce": false,
        "isCommunity": false,
        "isCommunityAnnounce": false,
        "linkedParent": null,
    });
    if participants && let Value::Object(m) = &mut out {
        m.insert(
            "participants".to_owned(),
            g.participants
                .iter()
                .map(|p| json!({ "id": p.jid.to_string(), "admin": role(p) }))
                .collect(),
        );
    }
    out
}

/// `group/create` body.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateBody {
    subject: String,
    participants: Vec<String>,
}

fn members(state: &AppState, raw: &[String]) -> EvoResult<Vec<Jid>> {
    raw.iter().map(|p| super::chat_jid(state, p)).collect()
}

/// `POST /group/create/{i}`: the new group's metadata. 201.
pub(crate) async fn create(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoJson(body): EvoJson<CreateBody>,
) -> EvoResult<(StatusCode, Json<Value>)> {
    if body.subject.trim().is_empty() || body.participants.is_empty() {
        return Err(EvoError::bad_request(
            "subject and participants are required",
        ));
    }
    let users = members(&state, &body.participants)?;
    let client = session.connected_client()?;
    let info = client
        .create_group(&body.subject, &users)
        .await
        .map_err(crate::error::ApiError::from)?;
    let mut data = store::load_or_init(state.db(), &session.id).await?;
    let jid = info.jid.to_string();
    if !data.groups.contains(&jid) {
        data.groups.push(jid);
        store::save(state.db(), &session.id, &data).await?;
    }
    Ok((StatusCode::CREATED, Json(group_json(&info, true))))
}

/// `GET /group/findGroupInfos/{i}?groupJid=`.
pub(crate) async fn find_group_infos(
    EvoInstance(session): EvoInstance,
    EvoQuery(q): EvoQuery<GroupQuery>,
) -> EvoResult<Json<Value>> {
    let jid = group_jid(q.group_jid.as_deref())?;
    let info = session
        .connected_client()?
        .group_metadata(&jid)
        .await
        .map_err(|e| crate::error::ApiError::from_send(e, &jid))?;
    Ok(Json(group_json(&info, true)))
}

/// `GET /group/participants/{i}?groupJid=`.
pub(crate) async fn participants(
    EvoInstance(session): EvoInstance,
    EvoQuery(q): EvoQuery<GroupQuery>,
) -> EvoResult<Json<Value>> {
    let jid = group_jid(q.group_jid.as_deref())?;
    let info = session
        .connected_client()?
        .group_metadata(&jid)
        .await
        .map_err(|e| crate::error::ApiError::from_send(e, &jid))?;
    let list: Vec<Value> = info
        .participants
        .iter()
        .map(|p| json!({ "id": p.jid.to_string(), "admin": role(p) }))
        .collect();
    Ok(Json(json!({ "participants": list })))
}

/// `GET /group/fetchAllGroups/{i}?getParticipants=true|false` (required).
pub(crate) async fn fetch_all_groups(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoQuery(q): EvoQuery<GroupQuery>,
) -> EvoResult<Json<Vec<Value>>> {
    let with = match q.get_participants.as_deref() {
        Some("true") => true,
        Some("false") => false,
        _ => {
            return Err(EvoError::bad_request(
                "The getParticipants needs to be informed in the query",
            ));
        }
    };
    let client = session.connected_client()?;
    let data = store::load_or_init(state.db(), &session.id).await?;
    let mut jids = data.groups.clone();
    let filter = crate::msglog::Filter::default();
    for r in crate::msglog::list(state.db(), &session.id, &filter, None, 10_000)?.0 {
        if r.to.ends_with("@g.us") && !jids.contains(&r.to) {
            jids.push(r.to);
        }
    }
    let mut out = Vec::new();
    for jid in jids {
        let Ok(jid) = jid.parse::<Jid>() else {
            continue;
        };
        // A group we left or were removed from answers 403/404: not listed.
        if let Ok(info) = client.group_metadata(&jid).await {
            out.push(group_json(&info, with));
        }
    }
    Ok(Json(out))
}

/// `updateParticipant` body.
#[derive(Debug, Deserialize)]
pub(crate) struct UpdateBody {
    action: String,
    participants: Vec<String>,
}

/// `POST /group/updateParticipant/{i}?groupJid=`: `add`, `remove`, `promote` or `demote`;
/// each member's result code as `status` (`"200"` when done). 201.
pub(crate) async fn update_participant(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoQuery(q): EvoQuery<GroupQuery>,
    EvoJson(body): EvoJson<UpdateBody>,
) -> EvoResult<(StatusCode, Json<Value>)> {
    let jid = group_jid(q.group_jid.as_deref())?;
    let users = members(&state, &body.participants)?;
    let client = session.connected_client()?;
    let action = match body.action.as_str() {
        "add" => ParticipantAction::Add,
        "remove" => ParticipantAction::Remove,
        "promote" => ParticipantAction::Promote,
        "demote" => ParticipantAction::Demote,
        _ => {
            return Err(EvoError::bad_request(
                "action is not one of enum values: add,remove,promote,demote",
            ));
        }
    };
    let result = client
        .change_participants(&jid, action, &users)
        .await
        .map_err(gerr)?;
    let list: Vec<Value> = result
        .iter()
        .map(|p| {
            json!({
                "status": p.error.map_or_else(|| "200".to_owned(), |c| c.to_string()),
                "jid": p.jid.to_string(),
            })
        })
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(json!({ "updateParticipants": list })),
    ))
}

/// An engine group error as Evolution's error body, with the native routes' statuses.
/// An engine group error as the native group routes map it; the server's 404 for a group id
/// it does not know (answered at the stanza level) is the same 404 "group not found".
fn gerr(e: IqError) -> EvoError {
    match crate::routes::groups::group_error(e) {
        crate::error::ApiError::UpstreamRejected(404) => crate::error::ApiError::GroupNotFound,
        other => other,
    }
    .into()
}

/// `updateSetting` body.
#[derive(Debug, Deserialize)]
pub(crate) struct SettingBody {
    action: String,
}

/// `POST /group/updateSetting/{i}?groupJid=`: `announcement`, `not_announcement`, `locked`
/// or `unlocked`. 201 `{updateSetting: {action}}` (Evolution returns Baileys'
/// `groupSettingUpdate` result, which is void; the action done is more useful and keeps the
/// key).
pub(crate) async fn update_setting(
    EvoInstance(session): EvoInstance,
    EvoQuery(q): EvoQuery<GroupQuery>,
    EvoJson(body): EvoJson<SettingBody>,
) -> EvoResult<(StatusCode, Json<Value>)> {
    let jid = group_jid(q.group_jid.as_deref())?;
    let setting = match body.action.as_str() {
        "announcement" => GroupSetting::Announce(true),
        "not_announcement" => GroupSetting::Announce(false),
        "locked" => GroupSetting::Locked(true),
        "unlocked" => GroupSetting::Locked(false),
        _ => {
            return Err(EvoError::bad_request(
                "action is not one of enum values: announcement,not_announcement,locked,unlocked",
            ));
        }
    };
    session
        .connected_client()?
        .set_group_setting(&jid, setting)
        .await
        .map_err(gerr)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "updateSetting": { "action": body.action } })),
    ))
}

/// The code part of an invite link.
fn code_of(link: &str) -> &str {
    link.strip_prefix(wa_engine::INVITE_LINK_PREFIX)
        .unwrap_or(link)
}

/// `GET /group/inviteCode/{i}?groupJid=`: `{inviteUrl, inviteCode}`. 200.
pub(crate) async fn invite_code(
    EvoInstance(session): EvoInstance,
    EvoQuery(q): EvoQuery<GroupQuery>,
) -> EvoResult<Json<Value>> {
    let jid = group_jid(q.group_jid.as_deref())?;
    let link = session
        .connected_client()?
        .group_invite_link(&jid)
        .await
        .map_err(gerr)?;
    Ok(Json(
        json!({ "inviteUrl": link, "inviteCode": code_of(&link) }),
    ))
}

/// `POST /group/revokeInviteCode/{i}?groupJid=`: `{revoked: true, inviteCode}` with the new
/// code. 201.
pub(crate) async fn revoke_invite_code(
    EvoInstance(session): EvoInstance,
    EvoQuery(q): EvoQuery<GroupQuery>,
) -> EvoResult<(StatusCode, Json<Value>)> {
    let jid = group_jid(q.group_jid.as_deref())?;
    let link = session
        .connected_client()?
        .revoke_group_invite(&jid)
        .await
        .map_err(gerr)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "revoked": true, "inviteCode": code_of(&link) })),
    ))
}

/// `DELETE /group/leaveGroup/{i}?groupJid=`: `{groupJid, leave: true}`. 200.
pub(crate) async fn leave_group(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoQuery(q): EvoQuery<GroupQuery>,
) -> EvoResult<Json<Value>> {
    let jid = group_jid(q.group_jid.as_deref())?;
    session
        .connected_client()?
        .leave_group(&jid)
        .await
        .map_err(gerr)?;
    let mut data = store::load_or_init(state.db(), &session.id).await?;
    let id = jid.to_string();
    if data.groups.contains(&id) {
        data.groups.retain(|g| g != &id);
        store::save(state.db(), &session.id, &data).await?;
    }
    Ok(Json(json!({ "groupJid": id, "leave": true })))
}

/// `updateGroupSubject` body.
#[derive(Debug, Deserialize)]
pub(crate) struct SubjectBody {
    subject: String,
}

/// `POST /group/updateGroupSubject/{i}?groupJid=`: `{update: "success"}`. 201.
pub(crate) async fn update_subject(
    EvoInstance(session): EvoInstance,
    EvoQuery(q): EvoQuery<GroupQuery>,
    EvoJson(body): EvoJson<SubjectBody>,
) -> EvoResult<(StatusCode, Json<Value>)> {
    let jid = group_jid(q.group_jid.as_deref())?;
    if body.subject.trim().is_empty() {
        return Err(EvoError::bad_request("subject is required"));
    }
    session
        .connected_client()?
        .set_group_subject(&jid, &body.subject)
        .await
        .map_err(gerr)?;
    Ok((StatusCode::CREATED, Json(json!({ "update": "success" }))))
}

/// `updateGroupDescription` body (empty removes the description).
#[derive(Debug, Deserialize)]
pub(crate) struct DescriptionBody {
    description: String,
}

/// `POST /group/updateGroupDescription/{i}?groupJid=`: `{update: "success"}`. 201.
pub(crate) async fn update_description(
    EvoInstance(session): EvoInstance,
    EvoQuery(q): EvoQuery<GroupQuery>,
    EvoJson(body): EvoJson<DescriptionBody>,
) -> EvoResult<(StatusCode, Json<Value>)> {
    let jid = group_jid(q.group_jid.as_deref())?;
    session
        .connected_client()?
        .set_group_description(&jid, &body.description)
        .await
        .map_err(gerr)?;
    Ok((StatusCode::CREATED, Json(json!({ "update": "success" }))))
}

/// `updateGroupPicture` body: `image`, an `http(s)` URL or base64 (optionally a `data:`
/// URL) of a JPEG.
#[derive(Debug, Deserialize)]
pub(crate) struct PictureBody {
    image: String,
}

/// `POST /group/updateGroupPicture/{i}?groupJid=`: `{update: "success"}`. 201. A URL is
/// fetched as Evolution does (through the media fetch and its SSRF guard: a private or
/// disallowed target is refused with 400 `target_not_allowed`, a failed fetch with 400); the
/// picture must be a JPEG (400 otherwise), as WhatsApp takes.
pub(crate) async fn update_picture(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    EvoQuery(q): EvoQuery<GroupQuery>,
    EvoJson(body): EvoJson<PictureBody>,
) -> EvoResult<(StatusCode, Json<Value>)> {
    use base64::Engine as _;
    let jid = group_jid(q.group_jid.as_deref())?;
    let image = body.image.trim();
    let jpeg = if image.starts_with("http://") || image.starts_with("https://") {
        // Fetched as a media URL is: the configured host allow-list, the SSRF guard on
        // every hop (`crate::egress`), the redirect cap, the timeout and the size limit.
        let url = crate::media::fetch::parse_url(image).map_err(crate::error::ApiError::from)?;
        let (file, _) = crate::media::fetch::fetch(&state, url).await?;
        tokio::fs::read(file.temp.path())
            .await
            .map_err(crate::error::ApiError::internal)?
    } else {
        let raw = image.split_once(";base64,").map_or(image, |(_, b64)| b64);
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
        );
        engine
            .decode(raw.as_bytes())
            .map_err(|e| EvoError::bad_request(format!("image: {e}")))?
    };
    if jpeg.len() < 3 || jpeg[..3] != [0xFF, 0xD8, 0xFF] {
        return Err(EvoError::bad_request("image: not a JPEG"));
    }
    session
        .connected_client()?
        .set_group_picture(&jid, &jpeg)
        .await
        .map_err(gerr)?;
    Ok((StatusCode::CREATED, Json(json!({ "update": "success" }))))
}
