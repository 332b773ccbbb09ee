//! Baileys 6.7.24 (from npm, driven through `wa-sandbox/interop/client.mjs`) as an independent
//! peer for rich messages (issue 13 item 5): reactions (and removing one), edits, revokes and
//! polls between our engine and Baileys, both directions, content exact on both sides.
//!
//! Baileys builds reactions, edits, revokes and polls itself (`sendMessage` with `react`,
//! `edit`, `delete`, `poll`). It has no vote builder and leaves vote decryption to the app;
//! the harness decrypts votes with Baileys' own `decryptPollVote` (poll message secret), keeps
//! one per voter with `updateMessageWithPollUpdate` and counts with
//! `getAggregateVotesInPollMessage`; its votes are the inverse of `decryptPollVote`, checked
//! against it before sending (interop/lib/rich.mjs). Baileys 6.7.24 rather than 7: it is the
//! harness with the full command set, and both versions share the same poll code.
//!
//! A second test is the three-way poll: whatsmeow creates a poll in a group with our engine
//! and Baileys, both vote, and whatsmeow's tally (its own `DecryptPollVote`, counted by the
//! harness), our engine's `PollVote` tally and Baileys' aggregate agree exactly.
//!
//! Needs Node >= 20 and npm on PATH (`npm ci` runs on first use), and Go >= 1.24 for the
//! second test (the whatsmeow harness is built on first use). Fails, never skips.

mod support;

use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};
use support::baileys::Harness;
use support::engine::paired_engine;
use support::rich::{next_kind, next_vote};
use support::whatsmeow::Whatsmeow;
use wa_engine::Jid;
use wa_engine::message::rich::{TargetKey, option_hash};
use wa_engine::message::{ContentKind, content};
use wa_sandbox::{Sandbox, SandboxConfig};

const ENGINE: &str = "15551290001";
const BAILEYS: &str = "15551290002";
const STEP: Duration = Duration::from_secs(30);

async fn sent(b: &mut Harness) -> anyhow::Result<String> {
    let r = b
        .until(|e| e["event"] == "sent" || e["event"] == "error")
        .await?;
    anyhow::ensure!(r["event"] == "sent", "Baileys send failed: {r}");
    r["id"].as_str().map(str::to_owned).context("sent id")
}

fn hash_hex(option: &str) -> Value {
    json!(hex::encode(option_hash(option)))
}

fn tally(pairs: &[(&str, u32)]) -> Vec<(String, u32)> {
    pairs.iter().map(|(o, n)| ((*o).to_owned(), *n)).collect()
}

#[tokio::test]
async fn reactions_edits_revokes_and_polls_cross_between_engine_and_baileys() -> anyhow::Result<()>
{
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(29)).await?;
    sandbox.create_account(ENGINE)?;
    let baileys_phone = sandbox.create_account(BAILEYS)?;
    let (client, mut events, _, _) = paired_engine(&sandbox, ENGINE, STEP).await?;
    let auth = tempfile::tempdir()?;
    let mut baileys = Harness::spawn(&sandbox, auth.path(), "baileys")?;
    baileys.pair(&baileys_phone).await?;
    let engine_user = format!("{ENGINE}@s.whatsapp.net");
    let baileys_user = Jid::pn(BAILEYS);

    // Texts both ways.
    let ours = client.send_text(&baileys_user, "from engine").await?;
    baileys
        .until(|e| e["event"] == "message" && e["id"] == ours.0.as_str())
        .await?;
    baileys
        .command(json!({"cmd": "send_text", "to": engine_user, "text": "from baileys"}))
        .await?;
    let theirs = sent(&mut baileys).await?;
    let m = next_kind(STEP, &mut events, ContentKind::Text).await?;
    assert_eq!(m.info.id, theirs);

    // Reactions: Baileys reacts to ours, then takes it back.
    baileys
        .command(json!({"cmd": "send_reaction", "to": engine_user, "target": ours.0, "fromMe": false, "emoji": "❤️"}))
        .await?;
    sent(&mut baileys).await?;
    let r = next_kind(STEP, &mut events, ContentKind::Reaction).await?;
    let reaction = r.content().reaction().context("reaction")?;
    assert_eq!(
        (reaction.emoji, reaction.message_id),
        (Some("❤️"), Some(ours.0.as_str()))
    );
    baileys
        .command(json!({"cmd": "send_reaction", "to": engine_user, "target": ours.0, "fromMe": false, "emoji": ""}))
        .await?;
    sent(&mut baileys).await?;
    let r = next_kind(STEP, &mut events, ContentKind::Reaction).await?;
    let reaction = r.content().reaction().context("reaction removal")?;
    assert_eq!(reaction.message_id, Some(ours.0.as_str()));
    assert!(reaction.emoji.is_none_or(str::is_empty), "{reaction:?}");

    // We react to theirs, then take it back (empty emoji, stanza edit="7").
    let their_key = TargetKey {
        chat: baileys_user.clone(),
        id: theirs.clone(),
        from_me: false,
        sender: Some(baileys_user.clone()),
    };
    client.send_reaction(&their_key, "😂").await?;
    let m = baileys
        .until(|e| e["event"] == "message" && e["fromMe"] == false && e["reaction"].is_object())
        .await?;
    assert_eq!(
        m["reaction"],
        json!({"text": "😂", "target": theirs}),
        "{m}"
    );
    assert_eq!(m["from"], engine_user.as_str());
    client.send_reaction(&their_key, "").await?;
    let m = baileys
        .until(|e| e["event"] == "message" && e["fromMe"] == false && e["reaction"].is_object())
        .await?;
    assert_eq!(m["reaction"], json!({"text": "", "target": theirs}), "{m}");

    // Edits: each edits its own text.
    baileys
        .command(json!({"cmd": "send_edit", "to": engine_user, "target": theirs, "text": "edited by baileys"}))
        .await?;
    sent(&mut baileys).await?;
    let e = next_kind(STEP, &mut events, ContentKind::Edit).await?;
    let edit = e.content().edit().context("edit")?;
    assert_eq!(edit.message_id, theirs);
    assert_eq!(
        edit.new_content.and_then(content::text_of),
        Some("edited by baileys")
    );
    client
        .edit_message(&baileys_user, &ours.0, "edited by engine")
        .await?;
    let m = baileys
        .until(|e| {
            e["event"] == "message"
                && e["fromMe"] == false
                && e["protocol"]["type"] == "MESSAGE_EDIT"
        })
        .await?;
    assert_eq!(
        m["protocol"],
        json!({"type": "MESSAGE_EDIT", "target": ours.0, "editedText": "edited by engine"}),
        "{m}"
    );

    // Revokes: each deletes its own for everyone.
    baileys
        .command(json!({"cmd": "send_revoke", "to": engine_user, "target": theirs, "fromMe": true}))
        .await?;
    sent(&mut baileys).await?;
    let v = next_kind(STEP, &mut events, ContentKind::Revoke).await?;
    let revoke = v.content().revoke().context("revoke")?;
    assert_eq!((revoke.message_id, revoke.from_me), (theirs.as_str(), true));
    client
        .revoke_message(&TargetKey {
            chat: baileys_user.clone(),
            id: ours.0.clone(),
            from_me: true,
            sender: None,
        })
        .await?;
    let m = baileys
        .until(|e| {
            e["event"] == "message" && e["fromMe"] == false && e["protocol"]["type"] == "REVOKE"
        })
        .await?;
    assert_eq!(m["protocol"]["target"], ours.0.as_str(), "{m}");

    // Baileys' poll (single choice): we vote "b", Baileys votes "c".
    baileys
        .command(
            json!({"cmd": "send_poll", "to": engine_user, "name": "which?",
            "options": ["a", "b", "c"], "selectable": 1}),
        )
        .await?;
    let their_poll = sent(&mut baileys).await?;
    let p = next_kind(STEP, &mut events, ContentKind::Poll).await?;
    assert_eq!(p.info.id, their_poll);
    let poll = p.content().poll().context("poll")?;
    assert_eq!(
        (poll.name, poll.options.clone(), poll.selectable),
        (Some("which?"), vec!["a", "b", "c"], 1)
    );
    client.vote_poll(&baileys_user, &their_poll, &["b"]).await?;
    let own = next_vote(STEP, &mut events).await?;
    assert_eq!(own.selected, vec!["b".to_owned()]);
    let v = baileys
        .until(|e| e["event"] == "poll_vote" && e["own"].is_null())
        .await?;
    assert_eq!(v["pollId"], their_poll.as_str(), "{v}");
    assert_eq!(v["voter"], engine_user.as_str(), "{v}");
    assert_eq!(v["selected"], json!([hash_hex("b")]), "{v}");
    assert_eq!(
        v["tally"],
        json!([{"name": "a", "voters": []}, {"name": "b", "voters": [engine_user]},
            {"name": "c", "voters": []}]),
        "{v}"
    );
    baileys
        .command(json!({"cmd": "vote_poll", "target": their_poll, "options": ["c"]}))
        .await?;
    sent(&mut baileys).await?;
    let vote = next_vote(STEP, &mut events).await?;
    assert_eq!(
        (vote.poll_id.as_str(), &vote.voter),
        (their_poll.as_str(), &baileys_user)
    );
    assert_eq!(vote.selected, vec!["c".to_owned()]);
    assert_eq!(vote.tally, tally(&[("a", 0), ("b", 1), ("c", 1)]));
    let baileys_me = format!("{BAILEYS}@s.whatsapp.net");
    baileys
        .command(json!({"cmd": "poll_tally", "target": their_poll}))
        .await?;
    let t = baileys.until(|e| e["event"] == "poll_tally").await?;
    assert_eq!(
        t["tally"],
        json!([{"name": "a", "voters": []}, {"name": "b", "voters": [engine_user]},
            {"name": "c", "voters": [baileys_me]}]),
        "{t}"
    );

    // Our poll (any number): Baileys votes x and y, then changes to y only; we vote x.
    let options = vec!["x".to_owned(), "y".to_owned()];
    let our_poll = client
        .send_poll(&baileys_user, "x or y?", &options, 0)
        .await?;
    let m = baileys
        .until(|e| e["event"] == "message" && e["id"] == our_poll.0.as_str())
        .await?;
    assert_eq!(
        m["poll"],
        json!({"name": "x or y?", "options": ["x", "y"], "selectable": 0}),
        "{m}"
    );
    baileys
        .command(json!({"cmd": "vote_poll", "target": our_poll.0, "options": ["x", "y"]}))
        .await?;
    sent(&mut baileys).await?;
    let vote = next_vote(STEP, &mut events).await?;
    assert_eq!(
        (vote.poll_id.as_str(), &vote.voter),
        (our_poll.0.as_str(), &baileys_user)
    );
    assert_eq!(vote.selected, vec!["x".to_owned(), "y".to_owned()]);
    assert_eq!(vote.tally, tally(&[("x", 1), ("y", 1)]));
    baileys
        .command(json!({"cmd": "vote_poll", "target": our_poll.0, "options": ["y"]}))
        .await?;
    sent(&mut baileys).await?;
    let vote = next_vote(STEP, &mut events).await?;
    assert_eq!(vote.selected, vec!["y".to_owned()]);
    assert_eq!(vote.tally, tally(&[("x", 0), ("y", 1)]));
    client.vote_poll(&baileys_user, &our_poll.0, &["x"]).await?;
    let own = next_vote(STEP, &mut events).await?;
    assert_eq!(own.tally, tally(&[("x", 1), ("y", 1)]));
    let v = baileys
        .until(|e| {
            e["event"] == "poll_vote" && e["own"].is_null() && e["pollId"] == our_poll.0.as_str()
        })
        .await?;
    assert_eq!(v["voter"], engine_user.as_str(), "{v}");
    assert_eq!(v["selected"], json!([hash_hex("x")]), "{v}");
    assert_eq!(
        v["tally"],
        json!([{"name": "x", "voters": [engine_user]}, {"name": "y", "voters": [baileys_me]}]),
        "{v}"
    );

    baileys.command(json!({"cmd": "quit"})).await?;
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}

/// A tally as the harnesses report it, `[{name, voters}]`, with each voter list sorted.
fn sorted_tally(t: &Value) -> Vec<(String, Vec<String>)> {
    t.as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            let mut voters: Vec<String> = o["voters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            voters.sort();
            (o["name"].as_str().unwrap_or_default().to_owned(), voters)
        })
        .collect()
}

#[tokio::test]
async fn whatsmeow_group_poll_gets_votes_from_engine_and_baileys_and_all_tallies_agree()
-> anyhow::Result<()> {
    const ENGINE: &str = "15551290011";
    const BAILEYS: &str = "15551290012";
    const WHATSMEOW: &str = "15551290013";
    support::whatsmeow::ensure_built();
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(30)).await?;
    sandbox.create_account(ENGINE)?;
    let baileys_phone = sandbox.create_account(BAILEYS)?;
    let wm_phone = sandbox.create_account(WHATSMEOW)?;
    let (client, mut events, _, _) = paired_engine(&sandbox, ENGINE, STEP).await?;
    let (auth, wm_data) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let mut baileys = Harness::spawn(&sandbox, auth.path(), "baileys")?;
    baileys.pair(&baileys_phone).await?;
    let mut wm = Whatsmeow::spawn(&sandbox, wm_data.path(), "whatsmeow")?;
    wm.pair(&wm_phone).await?;
    let (engine_user, baileys_user, wm_user) = (
        format!("{ENGINE}@s.whatsapp.net"),
        format!("{BAILEYS}@s.whatsapp.net"),
        format!("{WHATSMEOW}@s.whatsapp.net"),
    );
    let group = sandbox
        .router()
        .create_group(WHATSMEOW, "Lunch", &[ENGINE, BAILEYS])?;
    let group_jid = group.to_string();

    // whatsmeow's poll (any number of choices) reaches both.
    let options = ["pizza", "sushi", "tacos"];
    wm.command(
        json!({"cmd": "send_poll", "to": group_jid, "name": "lunch?",
        "options": options, "selectable": 0}),
    )
    .await?;
    let r = wm
        .until(|e| e["event"] == "sent" || e["event"] == "error")
        .await?;
    anyhow::ensure!(r["event"] == "sent", "whatsmeow poll failed: {r}");
    let poll_id = r["id"].as_str().context("poll id")?.to_owned();
    let p = next_kind(STEP, &mut events, ContentKind::Poll).await?;
    assert_eq!(
        (p.info.id.as_str(), &p.info.chat),
        (poll_id.as_str(), &group)
    );
    assert!(p.info.sender.user() == WHATSMEOW, "{:?}", p.info.sender);
    let poll = p.content().poll().context("poll")?;
    assert_eq!(
        (poll.name, poll.options.clone(), poll.selectable),
        (Some("lunch?"), options.to_vec(), 0)
    );
    let m = baileys
        .until(|e| e["event"] == "message" && e["id"] == poll_id.as_str())
        .await?;
    assert_eq!(
        m["poll"],
        json!({"name": "lunch?", "options": options, "selectable": 0}),
        "{m}"
    );
    assert_eq!(m["from"], group_jid.as_str());

    // Our engine votes sushi; whatsmeow and Baileys decrypt it.
    client.vote_poll(&group, &poll_id, &["sushi"]).await?;
    let own = next_vote(STEP, &mut events).await?;
    assert_eq!(
        own.tally,
        tally(&[("pizza", 0), ("sushi", 1), ("tacos", 0)])
    );
    let m = wm
        .until(|e| {
            e["event"] == "message" && (e["pollVote"].is_object() || e["pollVoteError"].is_string())
        })
        .await?;
    assert_eq!(
        m["pollVote"],
        json!({"target": poll_id, "selected": [hash_hex("sushi")]}),
        "{m}"
    );
    assert!(
        m["sender"].as_str().is_some_and(|s| s.starts_with(ENGINE)),
        "{m}"
    );
    let v = baileys
        .until(|e| e["event"] == "poll_vote" && e["own"].is_null())
        .await?;
    assert_eq!(
        (&v["pollId"], &v["voter"], &v["selected"]),
        (
            &json!(poll_id),
            &json!(engine_user),
            &json!([hash_hex("sushi")])
        ),
        "{v}"
    );

    // Baileys votes pizza and sushi; whatsmeow and our engine decrypt it.
    baileys
        .command(json!({"cmd": "vote_poll", "target": poll_id, "options": ["pizza", "sushi"]}))
        .await?;
    sent(&mut baileys).await?;
    let vote = next_vote(STEP, &mut events).await?;
    assert_eq!(vote.voter, Jid::pn(BAILEYS));
    assert_eq!(
        (vote.chat.clone(), vote.poll_id.clone()),
        (group.clone(), poll_id.clone())
    );
    assert_eq!(vote.selected, vec!["pizza".to_owned(), "sushi".to_owned()]);
    let expected = tally(&[("pizza", 1), ("sushi", 2), ("tacos", 0)]);
    assert_eq!(vote.tally, expected, "our engine's tally");
    let m = wm
        .until(|e| {
            e["event"] == "message" && (e["pollVote"].is_object() || e["pollVoteError"].is_string())
        })
        .await?;
    assert_eq!(
        m["pollVote"],
        json!({"target": poll_id, "selected": [hash_hex("pizza"), hash_hex("sushi")]}),
        "{m}"
    );
    assert!(
        m["sender"].as_str().is_some_and(|s| s.starts_with(BAILEYS)),
        "{m}"
    );

    // The three tallies, exactly.
    let want = vec![
        ("pizza".to_owned(), vec![baileys_user.clone()]),
        ("sushi".to_owned(), {
            let mut v = vec![engine_user.clone(), baileys_user.clone()];
            v.sort();
            v
        }),
        ("tacos".to_owned(), vec![]),
    ];
    wm.command(json!({"cmd": "poll_tally", "target": poll_id, "options": options}))
        .await?;
    let t = wm.until(|e| e["event"] == "poll_tally").await?;
    assert_eq!(sorted_tally(&t["tally"]), want, "whatsmeow's tally: {t}");
    baileys
        .command(json!({"cmd": "poll_tally", "target": poll_id}))
        .await?;
    let t = baileys.until(|e| e["event"] == "poll_tally").await?;
    assert_eq!(sorted_tally(&t["tally"]), want, "Baileys' tally: {t}");
    let engine_counts: Vec<(String, u32)> = want
        .iter()
        .map(|(o, v)| (o.clone(), u32::try_from(v.len()).unwrap_or(u32::MAX)))
        .collect();
    assert_eq!(vote.tally, engine_counts);
    assert!(!want.iter().any(|(_, v)| v.contains(&wm_user)));

    baileys.command(json!({"cmd": "quit"})).await?;
    wm.command(json!({"cmd": "quit"})).await?;
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}
