//! whatsmeow (Go, `go.mau.fi/whatsmeow`, pinned in `interop/whatsmeow/go.mod`) as an
//! independent peer (issue 11): it pairs through the sandbox phone by QR, survives the
//! post-pairing 515 and logs in; then it and our engine (`wa_engine::Client`), each on its own
//! account, exchange 1:1 texts both ways with exact content, and the delivery receipts reach
//! the sender on both sides.
//!
//! A second test does the same in a group the engine creates: whatsmeow processes the
//! engine's sender key (SKDM + skmsg) and the engine processes whatsmeow's.
//!
//! A third breaks the engine's session with whatsmeow's device: whatsmeow's next `msg`
//! fails to decrypt, the engine's retry receipt reaches whatsmeow, and whatsmeow re-sends
//! on a new session that the engine decrypts (05 §9.3, §9.4).
//!
//! The last checks the harness's guards: it refuses a non-loopback URL, and with a wrong
//! certificate root whatsmeow's own chain check rejects the sandbox.
//!
//! Needs Go >= 1.24 on PATH; the harness is built on first use (tests/support/whatsmeow.rs).
//! Fails, never skips, without it.

mod support;

use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;
use support::engine::{next_within, paired_engine, prekeys_uploaded};
use support::whatsmeow::Whatsmeow;
use wa_engine::store::{ProtocolAddress, StoreBatch};
use wa_engine::{Client, Event, Events, Jid, MessageStatus, Store as _, UndecryptableReason};
use wa_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

const ENGINE: &str = "15551260001";
const WHATSMEOW: &str = "15551260002";
const STEP: Duration = Duration::from_secs(30);

async fn next<T>(events: &mut Events, pred: impl FnMut(&Event) -> Option<T>) -> anyhow::Result<T> {
    next_within(events, STEP, pred).await
}

/// Pairs an engine client to `number` by QR; returns it once connected.
async fn engine(sandbox: &SandboxHandle, number: &str) -> anyhow::Result<(Client, Events, Jid)> {
    let (client, events, jid, _) = paired_engine(sandbox, number, STEP).await?;
    Ok((client, events, jid))
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

#[tokio::test]
async fn engine_and_whatsmeow_exchange_texts_with_delivery_receipts_both_ways() -> anyhow::Result<()>
{
    init_tracing();
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
    prekeys_uploaded(&sandbox, WHATSMEOW, STEP).await?;

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

#[tokio::test]
async fn engine_and_whatsmeow_read_each_others_group_messages() -> anyhow::Result<()> {
    const ENGINE: &str = "15551260011";
    const WHATSMEOW: &str = "15551260012";
    init_tracing();
    support::whatsmeow::ensure_built();
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(27)).await?;
    sandbox.create_account(ENGINE)?;
    let wm_phone = sandbox.create_account(WHATSMEOW)?;
    let (client, mut events, _) = engine(&sandbox, ENGINE).await?;
    let data = tempfile::tempdir()?;
    let mut wm = Whatsmeow::spawn(&sandbox, data.path(), "whatsmeow-group")?;
    wm.pair(&wm_phone).await?;
    prekeys_uploaded(&sandbox, WHATSMEOW, STEP).await?;

    // Our group, our sender key: whatsmeow processes our SKDM and skmsg.
    let group = client
        .create_group("Interop", &[Jid::pn(WHATSMEOW)])
        .await?;
    let id = client
        .send_text(&group.jid, "hello group from wa-rs")
        .await?;
    // whatsmeow reports the pairwise pkmsg (only the SKDM) as a message of its own with
    // the same id; the text is in the skmsg.
    let got = wm
        .until(|e| {
            e["event"] == "message"
                && e["id"] == id.to_string().as_str()
                && !(e["hasSKDM"] == true && e["text"].is_null())
        })
        .await?;
    assert_eq!(got["text"], "hello group from wa-rs", "{got}");
    assert_eq!(got["chat"], group.jid.to_string());
    assert_eq!(got["isGroup"], true);
    assert!(
        got["sender"]
            .as_str()
            .is_some_and(|s| s.starts_with(&format!("{ENGINE}:"))),
        "{got}"
    );

    // whatsmeow's sender key, processed by us (whatsmeow fetches the group metadata,
    // usyncs the participants, sends its SKDM pairwise and one skmsg).
    wm.command(json!({"cmd": "send_text", "to": group.jid.to_string(), "text": "hello group from whatsmeow", "ref": 1}))
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
    assert_eq!(msg.text(), Some("hello group from whatsmeow"));
    assert_eq!(msg.info.chat, group.jid);
    assert_eq!(msg.info.sender.user(), WHATSMEOW);

    wm.command(json!({"cmd": "quit"})).await?;
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn session_broken_on_the_engine_heals_through_whatsmeows_resend() -> anyhow::Result<()> {
    const ENGINE: &str = "15551260021";
    const WHATSMEOW: &str = "15551260022";
    init_tracing();
    support::whatsmeow::ensure_built();
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(28)).await?;
    sandbox.create_account(ENGINE)?;
    let wm_phone = sandbox.create_account(WHATSMEOW)?;
    let (client, mut events, _, store) = paired_engine(&sandbox, ENGINE, STEP).await?;
    let data = tempfile::tempdir()?;
    let mut wm = Whatsmeow::spawn(&sandbox, data.path(), "whatsmeow-retry")?;
    let wm_jid: Jid = wm.pair(&wm_phone).await?.parse()?;
    prekeys_uploaded(&sandbox, WHATSMEOW, STEP).await?;
    let to_engine = format!("{ENGINE}@s.whatsapp.net");

    // Sessions both ways.
    let id = client.send_text(&Jid::pn(WHATSMEOW), "one").await?;
    wm.until(|e| e["event"] == "message" && e["id"] == id.to_string().as_str())
        .await?;
    let send = async |wm: &mut Whatsmeow, text: &str, r: u32| -> anyhow::Result<String> {
        wm.command(json!({"cmd": "send_text", "to": to_engine, "text": text, "ref": r}))
            .await?;
        let sent = wm
            .until(|e| (e["event"] == "sent" || e["event"] == "error") && e["ref"] == r)
            .await?;
        anyhow::ensure!(sent["event"] == "sent", "{sent}");
        Ok(sent["id"].as_str().context("id")?.to_owned())
    };
    let two = send(&mut wm, "two", 1).await?;
    let got = next(&mut events, |e| match e {
        Event::Message(m) if m.info.id == two => Some((**m).clone()),
        _ => None,
    })
    .await?;
    assert_eq!(got.text(), Some("two"));

    // The engine loses its session with whatsmeow's device; whatsmeow still has its own
    // and sends a `msg`.
    // The engine keys the session by whatsmeow's LID once it knows it (07 §1.3).
    let name = match store.lid_for_pn(wm_jid.user())? {
        Some(lid) => format!("{lid}_1"),
        None => wm_jid.user().to_owned(),
    };
    let address = ProtocolAddress::new(name, u32::from(wm_jid.device()));
    let mut batch = StoreBatch::new();
    batch.delete_session(&address);
    store.apply(batch)?;
    let broken = send(&mut wm, "after the break", 2).await?;
    let retry_count = next(&mut events, |e| match e {
        Event::UndecryptableMessage {
            info,
            reason,
            retry_count,
        } if info.id == broken => Some((*reason, *retry_count)),
        _ => None,
    })
    .await?;
    assert_eq!(retry_count, (UndecryptableReason::NoSession, 1));
    // whatsmeow re-sends (a pkmsg on a session built from the retry receipt's keys).
    let healed = next(&mut events, |e| match e {
        Event::Message(m) if m.info.id == broken => Some((**m).clone()),
        _ => None,
    })
    .await?;
    assert_eq!(healed.text(), Some("after the break"));
    let three = send(&mut wm, "and the next one", 3).await?;
    let got = next(&mut events, |e| match e {
        Event::Message(m) if m.info.id == three => Some((**m).clone()),
        _ => None,
    })
    .await?;
    assert_eq!(got.text(), Some("and the next one"));

    wm.command(json!({"cmd": "quit"})).await?;
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn harness_refuses_non_loopback_urls_and_a_wrong_cert_root() -> anyhow::Result<()> {
    init_tracing();
    support::whatsmeow::ensure_built();
    let data = tempfile::tempdir()?;
    // Never WhatsApp: a non-loopback host exits with code 2 before any dial.
    let mut far = Whatsmeow::spawn_raw(
        "ws://web.whatsapp.com/ws/chat",
        &[7; 32],
        data.path(),
        "whatsmeow-far",
    )?;
    let status = tokio::time::timeout(STEP, far.child.wait()).await??;
    assert_eq!(status.code(), Some(2), "{status}");

    // A root other than the sandbox's: whatsmeow's verifyServerCert fails the handshake,
    // so the harness really checks the chain against the root it was given.
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(29)).await?;
    let mut wrong_root = sandbox.trust_root_key();
    wrong_root[0] ^= 1;
    let mut wm =
        Whatsmeow::spawn_raw(sandbox.ws_url(), &wrong_root, data.path(), "whatsmeow-root")?;
    let err = wm.until(|e| e["event"] == "error").await?;
    assert_eq!(err["source"], "connect", "{err}");
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("failed to verify server cert")),
        "{err}"
    );
    let status = tokio::time::timeout(STEP, wm.child.wait()).await??;
    assert_eq!(status.code(), Some(4), "{status}");
    sandbox.shutdown().await;
    Ok(())
}
