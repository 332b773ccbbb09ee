//! The acceptance test of issue 4 (Baileys interop): our engine (`wa_engine::Client`) and a
//! real Baileys 6.7.24 client, each paired by QR to its own account on the sandbox,
//! exchange texts both ways: Baileys' `messages.upsert` shows the exact text our engine
//! sent, our engine decrypts the text Baileys sent, and the delivery receipts reach the
//! sender in both directions.
//!
//! Needs Node >= 20 and npm on PATH; `npm ci` in `wa-sandbox/interop` runs on first use
//! (tests/support/interop.rs). Fails, never skips, without them.

mod support;

use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;
use support::baileys::Harness;
use support::engine::{next_within, paired_engine};
use wa_engine::{Client, Event, Events, Jid, MessageStatus};
use wa_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

const ENGINE: &str = "15551250001";
const BAILEYS: &str = "15551250002";
const STEP: Duration = Duration::from_secs(30);

async fn next<T>(events: &mut Events, pred: impl FnMut(&Event) -> Option<T>) -> anyhow::Result<T> {
    next_within(events, STEP, pred).await
}

/// Pairs an engine client to `number` by QR; returns it once connected.
async fn engine(sandbox: &SandboxHandle, number: &str) -> anyhow::Result<(Client, Events, Jid)> {
    let (client, events, jid, _) = paired_engine(sandbox, number, STEP).await?;
    Ok((client, events, jid))
}

#[tokio::test]
async fn engine_and_baileys_exchange_texts_with_delivery_receipts_both_ways() -> anyhow::Result<()>
{
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(14)).await?;
    sandbox.create_account(ENGINE)?;
    let baileys_phone = sandbox.create_account(BAILEYS)?;
    let (client, mut events, engine_jid) = engine(&sandbox, ENGINE).await?;
    let auth = tempfile::tempdir()?;
    let mut baileys = Harness::spawn(&sandbox, auth.path(), "baileys")?;
    baileys.pair(&baileys_phone).await?;

    // Engine -> Baileys: the exact text shows up in Baileys' messages.upsert.
    let id = client
        .send_text(&Jid::pn(BAILEYS), "hello from wa-rs")
        .await?;
    let got = baileys
        .until(|e| e["event"] == "message" && e["id"] == id.to_string().as_str())
        .await?;
    assert_eq!(got["text"], "hello from wa-rs", "{got}");
    assert_eq!(got["fromMe"], false);
    assert_eq!(got["from"], format!("{ENGINE}@s.whatsapp.net"));
    // Baileys' delivery receipt reaches the engine.
    next(&mut events, |e| match e {
        Event::MessageStatus {
            id: mid,
            status: MessageStatus::Delivered,
            ..
        } if *mid == id => Some(()),
        _ => None,
    })
    .await?;

    // Baileys -> engine.
    baileys
        .command(json!({"cmd": "send_text", "to": format!("{ENGINE}@s.whatsapp.net"), "text": "hello from baileys", "ref": 1}))
        .await?;
    let sent = baileys
        .until(|e| e["event"] == "sent" || e["event"] == "error")
        .await?;
    assert_eq!(sent["event"], "sent", "{sent}");
    let sent_id = sent["id"].as_str().context("id")?.to_owned();
    let msg = next(&mut events, |e| match e {
        Event::Message(m) if m.info.id == sent_id => Some((**m).clone()),
        _ => None,
    })
    .await?;
    assert_eq!(msg.text(), Some("hello from baileys"));
    assert_eq!(msg.info.chat, Jid::pn(BAILEYS));
    assert!(msg.info.sender.user() == BAILEYS && msg.info.sender.device() != 0);
    assert_eq!(msg.info.push_name.as_deref(), Some("baileys"));
    assert!(!msg.info.from_me);
    // The engine's delivery receipt reaches Baileys.
    baileys
        .until(|e| {
            e["event"] == "receipt"
                && e["id"] == sent_id.as_str()
                && e["statusName"] == "DELIVERY_ACK"
        })
        .await?;
    assert!(engine_jid.user() == ENGINE);

    baileys.command(json!({"cmd": "quit"})).await?;
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}
