//! whatsmeow (pinned in `interop/whatsmeow/go.mod`) as an independent peer for group
//! management: changes our engine makes (subject, promote, description, announce) are what
//! whatsmeow reads back (`GetGroupInfo`) and what its `w:gp2` parser reports
//! (`events.GroupInfo`), and changes whatsmeow makes (`SetGroupName`,
//! `UpdateGroupParticipants`) are what our engine reads back and is notified of.
//!
//! Needs Go >= 1.24 on PATH; the harness is built on first use. Fails, never skips.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use support::engine::{next_within, prekeys_uploaded};
use support::whatsmeow::Whatsmeow;
use wa_engine::notification::NotificationKind;
use wa_engine::{Client, Event, GroupChange, GroupSetting, Jid, MemoryStore, ParticipantRole};
use wa_sandbox::{Sandbox, SandboxConfig};

const ENGINE: &str = "15551290001";
const WHATSMEOW: &str = "15551290002";
const THIRD: &str = "15551290003";
const STEP: Duration = Duration::from_secs(30);

async fn group_info(wm: &mut Whatsmeow, group: &Jid) -> anyhow::Result<Value> {
    wm.command(json!({"cmd": "group_info", "to": group.to_string()}))
        .await?;
    let r = wm
        .until(|e| e["event"] == "group_info" || e["event"] == "error")
        .await?;
    anyhow::ensure!(
        r["event"] == "group_info",
        "whatsmeow GetGroupInfo failed: {r}"
    );
    Ok(r)
}

fn wm_participant<'a>(info: &'a Value, user: &str) -> Option<&'a Value> {
    info["participants"]
        .as_array()?
        .iter()
        .find(|p| p["jid"].as_str().is_some_and(|j| j.starts_with(user)))
}

#[tokio::test]
async fn group_changes_cross_between_engine_and_whatsmeow() -> anyhow::Result<()> {
    support::whatsmeow::ensure_built();
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(29)).await?;
    let engine_phone = sandbox.create_account(ENGINE)?;
    let wm_phone = sandbox.create_account(WHATSMEOW)?;
    sandbox.create_account(THIRD)?;
    let (client, mut events) = Client::builder(Arc::new(MemoryStore::new()))
        .url(sandbox.ws_url())
        .trust_root(sandbox.trust_root())
        .connect()
        .await?;
    next_within(&mut events, STEP, |e| match e {
        Event::Qr { code, .. } => {
            let _ = engine_phone.scan(code);
            None
        }
        Event::Connected { .. } => Some(()),
        _ => None,
    })
    .await?;
    prekeys_uploaded(&sandbox, ENGINE, STEP).await?;
    let data = tempfile::tempdir()?;
    let mut wm = Whatsmeow::spawn(&sandbox, data.path(), "whatsmeow")?;
    wm.pair(&wm_phone).await?;
    let wm_user = Jid::pn(WHATSMEOW);

    // Our engine creates the group; whatsmeow learns it joined (`<create>` → JoinedGroup).
    let group = client
        .create_group("Interop", std::slice::from_ref(&wm_user))
        .await?;
    let joined = wm.until(|e| e["event"] == "joined_group").await?;
    assert_eq!(joined["jid"], json!(group.jid.to_string()));
    assert_eq!(joined["name"], "Interop");

    // Rename and promote from our engine: whatsmeow's parser reports both, and its
    // GetGroupInfo reads them back.
    client.set_group_subject(&group.jid, "Interop 2").await?;
    let upd = wm
        .until(|e| e["event"] == "group_update" && e["name"].is_string())
        .await?;
    assert_eq!(upd["name"], "Interop 2");
    assert_eq!(upd["unknown"], 0);
    client
        .promote_participants(&group.jid, std::slice::from_ref(&wm_user))
        .await?;
    let upd = wm
        .until(|e| {
            e["event"] == "group_update" && e["promote"].as_array().is_some_and(|a| !a.is_empty())
        })
        .await?;
    assert!(
        upd["promote"][0]
            .as_str()
            .is_some_and(|j| j.starts_with(WHATSMEOW))
    );
    client
        .set_group_description(&group.jid, "Shared notes")
        .await?;
    client
        .set_group_setting(&group.jid, GroupSetting::Announce(true))
        .await?;
    // whatsmeow's parser reads the description body, and requires `v_id` on
    // <announcement> (a parse failure would surface as no event).
    let upd = wm
        .until(|e| e["event"] == "group_update" && e["topic"].is_string())
        .await?;
    assert_eq!(upd["topic"], "Shared notes");
    wm.until(|e| e["event"] == "group_update" && e["announce"] == true)
        .await?;
    let info = group_info(&mut wm, &group.jid).await?;
    assert_eq!(info["name"], "Interop 2");
    assert_eq!(info["topic"], "Shared notes");
    assert_eq!(info["announce"], true);
    assert!(
        info["nameSetBy"]
            .as_str()
            .is_some_and(|j| j.starts_with(ENGINE))
    );
    assert_eq!(
        wm_participant(&info, WHATSMEOW).map(|p| &p["isAdmin"]),
        Some(&json!(true))
    );
    assert_eq!(
        wm_participant(&info, ENGINE).map(|p| &p["isSuperAdmin"]),
        Some(&json!(true))
    );

    // whatsmeow (now an admin) renames and adds a member: our engine is notified and reads
    // the same state back.
    wm.command(json!({"cmd": "set_group_name", "to": group.jid.to_string(), "text": "Renamed by whatsmeow"}))
        .await?;
    let r = wm
        .until(|e| e["event"] == "group_name_set" || e["event"] == "error")
        .await?;
    assert_eq!(r["event"], "group_name_set", "{r}");
    let subject = next_within(&mut events, STEP, |e| match e {
        Event::Notification(n) => match &n.kind {
            NotificationKind::Group(g, _) => g.changes.iter().find_map(|c| match c {
                GroupChange::Subject(s) => Some(s.clone()),
                _ => None,
            }),
            _ => None,
        },
        _ => None,
    })
    .await?;
    assert_eq!(subject, "Renamed by whatsmeow");
    wm.command(
        json!({"cmd": "update_group_participants", "to": group.jid.to_string(),
        "patch": "add", "options": [format!("{THIRD}@s.whatsapp.net")]}),
    )
    .await?;
    let r = wm
        .until(|e| e["event"] == "group_participants_updated" || e["event"] == "error")
        .await?;
    assert_eq!(r["event"], "group_participants_updated", "{r}");
    let added = next_within(&mut events, STEP, |e| match e {
        Event::Notification(n) => match &n.kind {
            NotificationKind::Group(g, _) => g.changes.iter().find_map(|c| match c {
                GroupChange::Added(j) => Some(j.clone()),
                _ => None,
            }),
            _ => None,
        },
        _ => None,
    })
    .await?;
    assert_eq!(added.first().map(Jid::user), Some(THIRD));
    let ours = client.group_info(&group.jid).await?;
    assert_eq!(ours.subject, "Renamed by whatsmeow");
    assert_eq!(ours.subject_owner.as_ref().map(Jid::user), Some(WHATSMEOW));
    assert_eq!(ours.participants.len(), 3);
    let role = |u: &str| {
        ours.participants
            .iter()
            .find(|p| p.jid.user() == u)
            .map(|p| p.role)
    };
    assert_eq!(role(WHATSMEOW), Some(ParticipantRole::Admin));
    assert_eq!(role(THIRD), Some(ParticipantRole::Member));
    Ok(())
}
