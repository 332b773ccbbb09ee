//! whatsmeow (pinned in `interop/whatsmeow/go.mod`) as an independent peer for rich messages
//! (issue 13 item 5): reactions, edits, revokes and polls between our engine and whatsmeow,
//! both directions, content exact; a poll created by whatsmeow gets a vote from our engine
//! and one from whatsmeow, and both sides decrypt the votes to the same options (whatsmeow
//! with its own `DecryptPollVote`, we report the tally).
//!
//! Needs Go >= 1.24 on PATH; the harness is built on first use. Fails, never skips.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use support::engine::{next_within, prekeys_uploaded};
use support::rich::{next_kind, next_vote};
use support::whatsmeow::Whatsmeow;
use wa_engine::message::rich::{TargetKey, option_hash};
use wa_engine::message::{ContentKind, content};
use wa_engine::{Client, Event, Jid, MemoryStore};
use wa_sandbox::{Sandbox, SandboxConfig};

const ENGINE: &str = "15551280001";
const WHATSMEOW: &str = "15551280002";
const STEP: Duration = Duration::from_secs(30);

async fn sent(wm: &mut Whatsmeow) -> anyhow::Result<String> {
    let r = wm
        .until(|e| e["event"] == "sent" || e["event"] == "error")
        .await?;
    anyhow::ensure!(r["event"] == "sent", "whatsmeow send failed: {r}");
    Ok(r["id"].as_str().unwrap_or_default().to_owned())
}

fn hash_hex(option: &str) -> Value {
    json!(hex::encode(option_hash(option)))
}

#[tokio::test]
async fn reactions_edits_revokes_and_polls_cross_between_engine_and_whatsmeow() -> anyhow::Result<()>
{
    support::whatsmeow::ensure_built();
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(28)).await?;
    let engine_phone = sandbox.create_account(ENGINE)?;
    let wm_phone = sandbox.create_account(WHATSMEOW)?;
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
    let engine_user = format!("{ENGINE}@s.whatsapp.net");
    let wm_user = Jid::pn(WHATSMEOW);

    // Texts both ways.
    let ours = client.send_text(&wm_user, "from engine").await?;
    wm.until(|e| e["event"] == "message" && e["id"] == ours.0.as_str())
        .await?;
    wm.command(json!({"cmd": "send_text", "to": engine_user, "text": "from whatsmeow"}))
        .await?;
    let theirs = sent(&mut wm).await?;
    next_kind(STEP, &mut events, ContentKind::Text).await?;

    // Reactions: whatsmeow reacts to ours, we react to theirs.
    wm.command(
        json!({"cmd": "send_reaction", "to": engine_user, "target": ours.0,
        "sender": engine_user, "emoji": "❤️"}),
    )
    .await?;
    sent(&mut wm).await?;
    let r = next_kind(STEP, &mut events, ContentKind::Reaction).await?;
    let reaction = r.content().reaction().expect("reaction");
    assert_eq!(
        (reaction.emoji, reaction.message_id),
        (Some("❤️"), Some(ours.0.as_str()))
    );
    client
        .send_reaction(
            &TargetKey {
                chat: wm_user.clone(),
                id: theirs.clone(),
                from_me: false,
                sender: Some(wm_user.clone()),
            },
            "😂",
        )
        .await?;
    let m = wm
        .until(|e| e["event"] == "message" && e["reaction"].is_object())
        .await?;
    assert_eq!(
        m["reaction"],
        json!({"emoji": "😂", "target": theirs}),
        "{m}"
    );

    // Edits: both edit their own text.
    wm.command(json!({"cmd": "send_edit", "to": engine_user, "target": theirs, "text": "edited by whatsmeow"}))
        .await?;
    sent(&mut wm).await?;
    let e = next_kind(STEP, &mut events, ContentKind::Edit).await?;
    let edit = e.content().edit().expect("edit");
    assert_eq!(edit.message_id, theirs);
    assert_eq!(
        edit.new_content.and_then(content::text_of),
        Some("edited by whatsmeow")
    );
    client
        .edit_message(&wm_user, &ours.0, "edited by engine")
        .await?;
    let m = wm
        .until(|e| e["event"] == "message" && e["protocol"]["type"] == "MESSAGE_EDIT")
        .await?;
    assert_eq!(m["protocol"]["target"], ours.0.as_str(), "{m}");
    assert_eq!(m["protocol"]["editedText"], "edited by engine", "{m}");

    // Revokes: both delete their own for everyone.
    wm.command(json!({"cmd": "send_revoke", "to": engine_user, "target": theirs}))
        .await?;
    sent(&mut wm).await?;
    let v = next_kind(STEP, &mut events, ContentKind::Revoke).await?;
    assert_eq!(v.content().revoke().expect("revoke").message_id, theirs);
    client
        .revoke_message(&TargetKey {
            chat: wm_user.clone(),
            id: ours.0.clone(),
            from_me: true,
            sender: None,
        })
        .await?;
    let m = wm
        .until(|e| e["event"] == "message" && e["protocol"]["type"] == "REVOKE")
        .await?;
    assert_eq!(m["protocol"]["target"], ours.0.as_str(), "{m}");

    // whatsmeow's poll: we vote "b", whatsmeow votes "b" too.
    wm.command(
        json!({"cmd": "send_poll", "to": engine_user, "name": "which?",
        "options": ["a", "b", "c"], "selectable": 1}),
    )
    .await?;
    let wm_poll = sent(&mut wm).await?;
    let p = next_kind(STEP, &mut events, ContentKind::Poll).await?;
    assert_eq!(p.info.id, wm_poll);
    let poll = p.content().poll().expect("poll");
    assert_eq!(
        (poll.name, poll.options.clone(), poll.selectable),
        (Some("which?"), vec!["a", "b", "c"], 1)
    );
    client.vote_poll(&wm_user, &wm_poll, &["b"]).await?;
    let own = next_vote(STEP, &mut events).await?;
    assert_eq!(own.selected, vec!["b".to_owned()]);
    let m = wm
        .until(|e| {
            e["event"] == "message" && (e["pollVote"].is_object() || e["pollVoteError"].is_string())
        })
        .await?;
    assert_eq!(
        m["pollVote"],
        json!({"target": wm_poll, "selected": [hash_hex("b")]}),
        "{m}"
    );
    // whatsmeow votes on its own poll (its vote goes to us too).
    wm.command(json!({"cmd": "vote_poll", "to": engine_user, "target": wm_poll, "options": ["b"]}))
        .await?;
    sent(&mut wm).await?;
    let tally = next_vote(STEP, &mut events).await?;
    assert_eq!(tally.voter, wm_user);
    assert_eq!(tally.selected, vec!["b".to_owned()]);
    assert_eq!(
        tally.tally,
        vec![
            ("a".to_owned(), 0),
            ("b".to_owned(), 2),
            ("c".to_owned(), 0)
        ]
    );

    // Our poll: whatsmeow sees the options and votes; we decrypt its vote.
    let options = vec!["x".to_owned(), "y".to_owned()];
    let our_poll = client.send_poll(&wm_user, "x or y?", &options, 0).await?;
    let m = wm
        .until(|e| e["event"] == "message" && e["id"] == our_poll.0.as_str())
        .await?;
    assert_eq!(
        m["poll"],
        json!({"name": "x or y?", "options": ["x", "y"], "selectable": 0}),
        "{m}"
    );
    wm.command(
        json!({"cmd": "vote_poll", "to": engine_user, "target": our_poll.0, "options": ["x", "y"]}),
    )
    .await?;
    sent(&mut wm).await?;
    let vote = next_vote(STEP, &mut events).await?;
    assert_eq!(vote.poll_id, our_poll.0);
    assert_eq!(vote.voter, wm_user);
    assert_eq!(vote.selected, vec!["x".to_owned(), "y".to_owned()]);
    assert_eq!(vote.tally, vec![("x".to_owned(), 1), ("y".to_owned(), 1)]);

    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}
