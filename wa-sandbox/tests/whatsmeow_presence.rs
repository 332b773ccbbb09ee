//! whatsmeow (pinned in `interop/whatsmeow/go.mod`) as an independent peer for presence,
//! chat states and calls (issue 13 items 3-4): our engine and whatsmeow, each on its own
//! account, see each other's presence (after subscribing) and typing / recording / paused;
//! a call placed by whatsmeow's account (the sandbox control route: whatsmeow cannot start
//! calls) is rejected automatically by our engine and whatsmeow sees the rejection
//! (`events.CallReject`); whatsmeow's own `RejectCall` reaches our engine as a reject.
//!
//! Needs Go >= 1.24 on PATH; the harness is built on first use. Fails, never skips.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::engine::{next_within, prekeys_uploaded};
use support::whatsmeow::Whatsmeow;
use wa_engine::{CallKind, ChatState, Client, Event, Jid, MemoryStore};
use wa_sandbox::{Sandbox, SandboxConfig};

const ENGINE: &str = "15551270001";
const WHATSMEOW: &str = "15551270002";
const STEP: Duration = Duration::from_secs(30);

#[tokio::test]
async fn presence_typing_and_calls_cross_between_engine_and_whatsmeow() -> anyhow::Result<()> {
    support::whatsmeow::ensure_built();
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(27)).await?;
    let engine_phone = sandbox.create_account(ENGINE)?;
    let wm_phone = sandbox.create_account(WHATSMEOW)?;

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

    let data = tempfile::tempdir()?;
    let mut wm = Whatsmeow::spawn(&sandbox, data.path(), "whatsmeow")?;
    wm.pair(&wm_phone).await?;
    let engine_user = format!("{ENGINE}@s.whatsapp.net");
    let wm_user = Jid::pn(WHATSMEOW);

    // whatsmeow subscribes to us; our presence reaches it, online then offline.
    wm.command(json!({"cmd": "subscribe_presence", "to": engine_user, "ref": 1}))
        .await?;
    let r = wm
        .until(|e| e["event"] == "subscribed" || e["event"] == "error")
        .await?;
    assert_eq!(r["event"], "subscribed", "{r}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.set_presence(true).await?;
    let p = wm
        .until(|e| e["event"] == "presence" && e["unavailable"] == false)
        .await?;
    assert_eq!(p["from"], engine_user.as_str());
    client.set_presence(false).await?;
    let p = wm
        .until(|e| e["event"] == "presence" && e["unavailable"] == true)
        .await?;
    assert!(p["lastSeen"].as_i64().is_some_and(|t| t > 0), "{p}");

    // We subscribe to whatsmeow; its presence reaches us.
    client.subscribe_presence(&wm_user).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    wm.command(json!({"cmd": "send_presence", "text": "available", "ref": 2}))
        .await?;
    let got = next_within(&mut events, STEP, |e| match e {
        Event::Presence(p) if p.from == wm_user && p.available => Some(p.clone()),
        _ => None,
    })
    .await?;
    assert!(got.last_seen.is_none());

    // Our typing reaches whatsmeow: composing, recording (audio), paused.
    for (state, want, media) in [
        (ChatState::Composing, "composing", ""),
        (ChatState::Recording, "composing", "audio"),
        (ChatState::Paused, "paused", ""),
    ] {
        client.send_chat_state(&wm_user, state).await?;
        let c = wm.until(|e| e["event"] == "chat_presence").await?;
        assert_eq!(
            (c["state"].as_str(), c["media"].as_str()),
            (Some(want), Some(media)),
            "{c}"
        );
        assert_eq!(c["chat"], engine_user.as_str());
    }
    // whatsmeow's reaches us.
    for (text, want) in [
        ("composing", ChatState::Composing),
        ("recording", ChatState::Recording),
        ("paused", ChatState::Paused),
    ] {
        wm.command(json!({"cmd": "send_chat_presence", "to": engine_user, "text": text}))
            .await?;
        let got = next_within(&mut events, STEP, |e| match e {
            Event::ChatState(c) => Some(c.clone()),
            _ => None,
        })
        .await?;
        assert_eq!((got.sender.clone(), got.state), (wm_user.clone(), want));
    }

    // whatsmeow's account calls us: our engine rejects it by itself, whatsmeow sees it.
    let call_id = sandbox.router().place_call(WHATSMEOW, ENGINE, false)?;
    let offer = next_within(&mut events, STEP, |e| match e {
        Event::Call(c) => Some(c.clone()),
        _ => None,
    })
    .await?;
    assert_eq!(offer.call_id, call_id);
    assert!(offer.auto_rejected);
    let rejected = wm.until(|e| e["event"] == "call_reject").await?;
    assert_eq!(rejected["callId"], call_id.as_str(), "{rejected}");
    assert_eq!(rejected["from"], engine_user.as_str());

    // And the other way: our account calls whatsmeow, whatsmeow rejects with RejectCall.
    let call_id = sandbox.router().place_call(ENGINE, WHATSMEOW, true)?;
    let offer = wm.until(|e| e["event"] == "call_offer").await?;
    assert_eq!(offer["callId"], call_id.as_str());
    wm.command(json!({"cmd": "reject_call", "to": engine_user, "id": call_id, "ref": 3}))
        .await?;
    let seen = next_within(&mut events, STEP, |e| match e {
        Event::Call(c) if c.kind == CallKind::Reject => Some(c.clone()),
        _ => None,
    })
    .await?;
    assert_eq!(seen.call_id, call_id);
    assert_eq!(seen.from, wm_user);

    wm.command(json!({"cmd": "quit"})).await?;
    let status = tokio::time::timeout(STEP, wm.child.wait()).await??;
    assert!(status.success(), "{status}");
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}
