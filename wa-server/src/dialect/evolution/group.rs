//! `/group/*` (`api/routes/group.router.ts`) over the engine's group methods (create,
//! metadata, add and remove members), which is what this branch has; the native group
//! routes (`routes/groups.rs`) are landing separately, and the routes needing more
//! (promote/demote, settings, invite codes, leave, subject/description/picture) answer 501
//! until they do. `fetchAllGroups` lists the groups this instance created through the
//! dialect or has messages from (there is no "participating groups" query yet).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use wa_engine::{GroupInfo, Jid};

use super::{EvoError, EvoInstance, EvoJson, EvoResult, store};
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
    full.parse::<Jid>()
        .ok()
        .filter(Jid::is_group)
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
    let cc = state.config().default_country_code.as_deref();
    raw.iter()
        .map(|p| crate::phone::parse_chat(p, cc).map_err(EvoError::from))
        .collect()
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
    Query(q): Query<GroupQuery>,
) -> EvoResult<Json<Value>> {
    let jid = group_jid(q.group_jid.as_deref())?;
    let info = session
        .connected_client()?
        .group_metadata(&jid)
        .await
        .map_err(crate::error::ApiError::from)?;
    Ok(Json(group_json(&info, true)))
}

/// `GET /group/participants/{i}?groupJid=`.
pub(crate) async fn participants(
    EvoInstance(session): EvoInstance,
    Query(q): Query<GroupQuery>,
) -> EvoResult<Json<Value>> {
    let jid = group_jid(q.group_jid.as_deref())?;
    let info = session
        .connected_client()?
        .group_metadata(&jid)
        .await
        .map_err(crate::error::ApiError::from)?;
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
    Query(q): Query<GroupQuery>,
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

/// `POST /group/updateParticipant/{i}?groupJid=`: `add` and `remove` (`promote`/`demote`:
/// 501 until the engine has them). 201.
pub(crate) async fn update_participant(
    State(state): State<AppState>,
    EvoInstance(session): EvoInstance,
    Query(q): Query<GroupQuery>,
    EvoJson(body): EvoJson<UpdateBody>,
) -> EvoResult<(StatusCode, Json<Value>)> {
    let jid = group_jid(q.group_jid.as_deref())?;
    let users = members(&state, &body.participants)?;
    let client = session.connected_client()?;
    let result = match body.action.as_str() {
        "add" => client.add_participants(&jid, &users).await,
        "remove" => client.remove_participants(&jid, &users).await,
        "promote" | "demote" => {
            return Err(EvoError::not_implemented(
                "updateParticipant promote/demote",
            ));
        }
        _ => {
            return Err(EvoError::bad_request(
                "action is not one of enum values: add,remove,promote,demote",
            ));
        }
    }
    .map_err(crate::error::ApiError::from)?;
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
