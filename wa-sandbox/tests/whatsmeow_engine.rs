//! whatsmeow (Go, `go.mau.fi/whatsmeow`, pinned in `interop/whatsmeow/go.mod`) as an
//! independent peer (issue 11): it pairs through the sandbox phone by QR, survives the
//! post-pairing 515 and logs in; then it and our engine (`wa_engine::Client`), each on its own
//! account, exchange 1:1 texts both ways with exact content, and the delivery receipts reach
//! the sender on both sides.
//!
//! Needs Go >= 1.24 on PATH; the harness is built on first use (tests/support/whatsmeow.rs).
//! Fails, never skips, without it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;
use support::whatsmeow::Whatsmeow;
use wa_engine::{Client, Event, Events, Jid, MemoryStore, MessageStatus};
use wa_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

const ENGINE: &str = "15551260001";
const WHATSMEOW: &str = "15551260002";
const STEP: Duration = Duration::from_secs(30);

async fn next<T>(
    events: &mut Events,
    mut pred: impl FnMut(&Event) -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .context("expected engine event not seen in time")?
            .context("engine event stream ended")?;
        if let Some(t) = pred(&event) {
            return Ok(t);
        }
    }
}

/// Waits until the first device of `number` has prekeys on the server.
async fn prekeys_uploaded(sandbox: &SandboxHandle, number: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + STEP;
    while sandbox
        .router()
        .account(number)?
        .devices
        .first()
        .map_or(0, |d| d.prekeys)
        == 0
    {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{number} never uploaded prekeys"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Pairs an engine client to `number` by QR; returns it once connected.
async fn engine(sandbox: &SandboxHandle, number: &str) -> anyhow::Result<(Client, Events, Jid)> {
    let phone = sandbox.phone(number)?;
    let (client, mut events) = Client::builder(Arc::new(MemoryStore::new()))
        .url(sandbox.ws_url())
        .trust_root(sandbox.trust_root())
        .device_name("wa-rs")
        .connect()
        .await?;
    let jid = next(&mut events, |e| match e {
        Event::Qr { code, .. } => {
            let _ = phone.scan(code);
            None
        }
        Event::Connected { jid } => Some(jid.clone()),
        _ => None,
    })
    .await?;
    prekeys_uploaded(sandbox, number).await?;
    Ok((client, events, jid))
}

#[tokio::test]
async fn engine_and_whatsmeow_exchange_texts_with_delivery_receipts_both_ways() -> anyhow::Result<()>
{
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
    // Build before the sandbox starts, so the build time does not eat QR windows.
    support::whatsmeow::ensure_built();
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(26)).await?;
    sandbox.create_account(ENGINE)?;
    let wm_phone = sandbox.create_account(WHATSMEOW)?;
    let (client, mut events, engine_jid) = engine(&sandbox, ENGINE).await?;
    assert_eq!(engine_jid.user(), ENGINE);

    let data = tempfile::tempdir()?;
    let mut wm = Whatsmeow::spawn(&sandbox, data.path(), "whatsmeow")?;
    let wm_jid = wm.pair(&wm_phone).await?;
    assert!(wm_jid.starts_with(&format!("{WHATSMEOW}:")), "{wm_jid}");
    prekeys_uploaded(&sandbox, WHATSMEOW).await?;

    // Engine -> whatsmeow: the exact text arrives, from the engine's account.
    let id = client
        .send_text(&Jid::pn(WHATSMEOW), "hello from wa-rs")
        .await?;
    let got = wm
        .until(|e| e["event"] == "message" && e["id"] == id.to_string().as_str())
        .await?;
    assert_eq!(got["text"], "hello from wa-rs", "{got}");
    assert_eq!(got["fromMe"], false);
    assert_eq!(got["chat"], format!("{ENGINE}@s.whatsapp.net"));
    // whatsmeow's delivery receipt reaches the engine.
    next(&mut events, |e| match e {
        Event::MessageStatus {
            id: mid,
            status: MessageStatus::Delivered,
            ..
        } if *mid == id => Some(()),
        _ => None,
    })
    .await?;

    // whatsmeow -> engine.
    wm.command(json!({"cmd": "send_text", "to": format!("{ENGINE}@s.whatsapp.net"), "text": "hello from whatsmeow", "ref": 1}))
        .await?;
    let sent = wm
        .until(|e| e["event"] == "sent" || e["event"] == "error")
        .await?;
    assert_eq!(sent["event"], "sent", "{sent}");
    let sent_id = sent["id"].as_str().context("id")?.to_owned();
    let msg = next(&mut events, |e| match e {
        Event::Message(m) if m.info.id == sent_id => Some((**m).clone()),
        _ => None,
    })
    .await?;
    assert_eq!(msg.text(), Some("hello from whatsmeow"));
    assert_eq!(msg.info.chat, Jid::pn(WHATSMEOW));
    assert!(msg.info.sender.user() == WHATSMEOW && msg.info.sender.device() != 0);
    assert!(!msg.info.from_me);
    // The engine's delivery receipt reaches whatsmeow.
    wm.until(|e| {
        e["event"] == "receipt"
            && e["type"] == "delivered"
            && e["ids"]
                .as_array()
                .is_some_and(|ids| ids.iter().any(|i| i == sent_id.as_str()))
    })
    .await?;

    wm.command(json!({"cmd": "quit"})).await?;
    let status = tokio::time::timeout(STEP, wm.child.wait()).await??;
    assert!(status.success(), "{status}");
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}
