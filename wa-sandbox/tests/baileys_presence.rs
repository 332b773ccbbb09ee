//! Baileys 6.7.24 (`wa-sandbox/interop`, pinned in `package-lock.json`) as an independent
//! peer for presence, chat states and calls (issue 13 items 3-4): our engine and Baileys,
//! each on its own account, see each other's presence (after subscribing) and typing /
//! recording; a call placed by Baileys' account (the sandbox control route: Baileys cannot
//! start calls) is rejected automatically by our engine and Baileys sees the rejection; and
//! Baileys' `rejectCall` reaches our engine as a reject.
//!
//! Needs Node >= 20 and npm (the harness is installed on first use). Fails, never skips.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::baileys::Harness;
use support::engine::{next_within, prekeys_uploaded};
use wa_engine::{CallKind, ChatState, Client, Event, Jid, MemoryStore};
use wa_sandbox::{Sandbox, SandboxConfig};

const ENGINE: &str = "15551280001";
const BAILEYS: &str = "15551280002";
const STEP: Duration = Duration::from_secs(30);

#[tokio::test]
async fn presence_typing_and_calls_cross_between_engine_and_baileys() -> anyhow::Result<()> {
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(28)).await?;
    let engine_phone = sandbox.create_account(ENGINE)?;
    let baileys_phone = sandbox.create_account(BAILEYS)?;
    let (client, mut events) = Client::builder(Arc::new(MemoryStore::new()))
        .url(sandbox.ws_url())
        .trust_root(sandbox.trust_root())
        .auto_reject_calls(true)
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

    let auth = tempfile::tempdir()?;
    // The harness gives Baileys a push name (its name): Baileys sends available /
    // unavailable only with one.
    let mut baileys = Harness::spawn(&sandbox, auth.path(), "baileys")?;
    baileys.pair(&baileys_phone).await?;
    let engine_user = format!("{ENGINE}@s.whatsapp.net");
    let baileys_user = Jid::pn(BAILEYS);

    // Baileys subscribes to us; our presence reaches it.
    baileys
        .command(json!({"cmd": "presence_subscribe", "to": engine_user, "ref": 1}))
        .await?;
    let r = baileys
        .until(|e| e["event"] == "subscribed" || e["event"] == "error")
        .await?;
    assert_eq!(r["event"], "subscribed", "{r}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.set_presence(false).await?;
    let p = baileys
        .until(|e| e["event"] == "presence" && e["lastKnownPresence"] == "unavailable")
        .await?;
    assert_eq!(p["id"], engine_user.as_str(), "{p}");
    assert!(p["lastSeen"].as_u64().is_some_and(|t| t > 0), "{p}");
    client.set_presence(true).await?;
    baileys
        .until(|e| e["event"] == "presence" && e["lastKnownPresence"] == "available")
        .await?;

    // Our typing reaches Baileys.
    for (state, want) in [
        (ChatState::Composing, "composing"),
        (ChatState::Recording, "recording"),
    ] {
        client.send_chat_state(&baileys_user, state).await?;
        let c = baileys
            .until(|e| e["event"] == "presence" && e["lastKnownPresence"] == want)
            .await?;
        assert_eq!(c["id"], engine_user.as_str(), "{c}");
    }

    // We subscribe to Baileys; its presence and typing reach us.
    client.subscribe_presence(&baileys_user).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    baileys
        .command(json!({"cmd": "send_presence", "type": "unavailable", "ref": 2}))
        .await?;
    let got = next_within(&mut events, STEP, |e| match e {
        Event::Presence(p) if p.from == baileys_user && !p.available => Some(p.clone()),
        _ => None,
    })
    .await?;
    assert!(got.last_seen.is_some());
    for (ty, want) in [
        ("composing", ChatState::Composing),
        ("recording", ChatState::Recording),
        ("paused", ChatState::Paused),
    ] {
        baileys
            .command(json!({"cmd": "send_presence", "type": ty, "to": engine_user}))
            .await?;
        let got = next_within(&mut events, STEP, |e| match e {
            Event::ChatState(c) => Some(c.clone()),
            _ => None,
        })
        .await?;
        assert_eq!(
            (got.sender.clone(), got.state),
            (baileys_user.clone(), want)
        );
    }

    // Baileys' account calls us: we reject by ourselves, Baileys sees the reject.
    let call_id = sandbox.router().place_call(BAILEYS, ENGINE, true)?;
    let offer = next_within(&mut events, STEP, |e| match e {
        Event::Call(c) => Some(c.clone()),
        _ => None,
    })
    .await?;
    assert!(offer.auto_rejected);
    let seen = baileys
        .until(|e| e["event"] == "call" && e["status"] == "reject")
        .await?;
    assert_eq!(seen["id"], call_id.as_str(), "{seen}");

    // Our account calls Baileys; Baileys rejects with rejectCall.
    let call_id = sandbox.router().place_call(ENGINE, BAILEYS, false)?;
    let offer = baileys
        .until(|e| e["event"] == "call" && e["status"] == "offer")
        .await?;
    assert_eq!(offer["id"], call_id.as_str(), "{offer}");
    baileys
        .command(json!({"cmd": "reject_call", "id": call_id, "to": engine_user, "ref": 3}))
        .await?;
    let seen = next_within(&mut events, STEP, |e| match e {
        Event::Call(c) if c.kind == CallKind::Reject => Some(c.clone()),
        _ => None,
    })
    .await?;
    assert_eq!(seen.call_id, call_id);
    assert_eq!(seen.from, baileys_user);

    baileys.command(json!({"cmd": "quit"})).await?;
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}
