//! whatsapp-rust 0.7 as an independent peer (issue 11): it pairs through the sandbox phone by
//! QR, survives the post-pairing 515 and reports itself connected; then it and our engine
//! (`wa_engine::Client`), each on its own account of the same sandbox, exchange 1:1 texts
//! both ways with exact content.
//!
//! Sandbox behaviour this needs (each a fix with its source): Noise IK resume / XXfallback
//! (shared/protocol/01 §6), the 0.3-0.6 s pause before the post-pairing 515 (03 §6), answers
//! for `abt` props (wa-sandbox `peer_iq.rs`) and `w:sync:app:state` (wa-sandbox `appsync.rs`).

use std::time::Duration;

use wa_engine::{Client, Event, Events, Jid};
use wa_interop_whatsapp_rust::{PeerEvent, WaRust};

// The engine side of the peer tests, shared with wa-sandbox's own interop tests.
#[allow(dead_code, unreachable_pub)]
#[path = "../../../tests/support/engine.rs"]
mod engine_support;
use engine_support::{next_within, paired_engine, prekeys_uploaded};
use wa_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

const ENGINE: &str = "15551270001";
const WARUST: &str = "15551270002";
const STEP: Duration = Duration::from_secs(60);

async fn next<T>(events: &mut Events, pred: impl FnMut(&Event) -> Option<T>) -> anyhow::Result<T> {
    next_within(events, STEP, pred).await
}

/// Pairs an engine client to `number` by QR; returns it once connected.
async fn engine(sandbox: &SandboxHandle, number: &str) -> anyhow::Result<(Client, Events, Jid)> {
    let (client, events, jid, _) = paired_engine(sandbox, number, STEP).await?;
    Ok((client, events, jid))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_rust_pairs_and_exchanges_texts_with_the_engine_both_ways() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(27)).await?;
    sandbox.create_account(ENGINE)?;
    let phone = sandbox.create_account(WARUST)?;
    let (client, mut events, engine_jid) = engine(&sandbox, ENGINE).await?;
    assert_eq!(engine_jid.user(), ENGINE);

    // Pairing: the sandbox phone scans whatsapp-rust's QR; after the 515 it logs in again
    // (Noise IK resume, since it cached our static key) and reports itself connected.
    let dir = tempfile::tempdir()?;
    let mut peer = WaRust::start(sandbox.ws_url(), dir.path()).await?;
    let qr = peer
        .until(STEP, |e| match e {
            PeerEvent::Qr(code) => Some(code.clone()),
            _ => None,
        })
        .await?;
    phone.scan(&qr)?;
    let paired = peer
        .until(STEP, |e| match e {
            PeerEvent::PairSuccess(jid) => Some(jid.clone()),
            _ => None,
        })
        .await?;
    assert!(paired.starts_with(&format!("{WARUST}:")), "{paired}");
    peer.until(STEP, |e| (*e == PeerEvent::Connected).then_some(()))
        .await?;
    prekeys_uploaded(&sandbox, WARUST, STEP).await?;

    // Engine -> whatsapp-rust: the exact text, from the engine's account.
    let id = client
        .send_text(&Jid::pn(WARUST), "hello from wa-rs")
        .await?;
    let (chat, sender, text) = peer
        .until(STEP, |e| match e {
            PeerEvent::Text {
                id: got,
                chat,
                sender,
                text,
            } if *got == id.to_string() => Some((chat.clone(), sender.clone(), text.clone())),
            _ => None,
        })
        .await?;
    assert_eq!(text, "hello from wa-rs");
    assert!(chat.starts_with(ENGINE), "{chat}");
    assert!(sender.starts_with(ENGINE), "{sender}");

    // Restart from the same store: a registered whatsapp-rust client with a cached server
    // certificate resumes with Noise IK (01 §6); the sandbox must accept it (or fall back).
    peer.shutdown().await;
    let mut peer = WaRust::start(sandbox.ws_url(), dir.path()).await?;
    peer.until(STEP, |e| (*e == PeerEvent::Connected).then_some(()))
        .await?;

    // whatsapp-rust -> engine.
    let sent_id = peer
        .send_text(
            &format!("{ENGINE}@s.whatsapp.net"),
            "hello from whatsapp-rust",
        )
        .await?;
    let msg = next(&mut events, |e| match e {
        Event::Message(m) if m.info.id == sent_id => Some((**m).clone()),
        _ => None,
    })
    .await?;
    assert_eq!(msg.text(), Some("hello from whatsapp-rust"));
    assert_eq!(msg.info.chat, Jid::pn(WARUST));
    assert!(msg.info.sender.user() == WARUST && msg.info.sender.device() != 0);
    assert!(!msg.info.from_me);

    peer.shutdown().await;
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}
