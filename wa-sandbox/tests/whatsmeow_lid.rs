//! whatsmeow (pinned in `interop/whatsmeow/go.mod`) and our engine over LID addressing
//! (shared/protocol/07 §5.1): whatsmeow's DM to the engine's LID (`<lid>@lid`, as whatsmeow
//! sends every DM since 2026-07, 07 §1.4) is routed to the engine's device and decrypted,
//! and the engine's PN-addressed DM reaches whatsmeow with the sender's LID as `sender_lid`
//! (whatsmeow exposes it as `SenderAlt`).
//!
//! Needs Go >= 1.24 on PATH; the harness is built on first use (tests/support/whatsmeow.rs).
//! Fails, never skips, without it.

mod support;

use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;
use support::engine::{next_within, paired_engine, prekeys_uploaded};
use support::whatsmeow::Whatsmeow;
use wa_engine::{Event, Jid};
use wa_sandbox::{Sandbox, SandboxConfig};

const ENGINE: &str = "15551290001";
const WHATSMEOW: &str = "15551290002";
const STEP: Duration = Duration::from_secs(30);

#[tokio::test]
async fn whatsmeow_dm_addressed_by_lid_reaches_the_engine_and_sender_lid_reaches_whatsmeow()
-> anyhow::Result<()> {
    support::whatsmeow::ensure_built();
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(129)).await?;
    sandbox.create_account(ENGINE)?;
    let wm_phone = sandbox.create_account(WHATSMEOW)?;
    let router = sandbox.router();
    let (engine_lid, wm_lid) = (router.account(ENGINE)?.lid, router.account(WHATSMEOW)?.lid);
    let (client, mut events, _, _) = paired_engine(&sandbox, ENGINE, STEP).await?;
    let data = tempfile::tempdir()?;
    let mut wm = Whatsmeow::spawn(&sandbox, data.path(), "whatsmeow-lid")?;
    wm.pair(&wm_phone).await?;
    prekeys_uploaded(&sandbox, WHATSMEOW, STEP).await?;

    // Engine -> whatsmeow by PN: whatsmeow sees the engine's LID as the sender's alternate.
    let id = client
        .send_text(&Jid::pn(WHATSMEOW), "pn from wa-rs")
        .await?;
    let got = wm
        .until(|e| e["event"] == "message" && e["id"] == id.to_string().as_str())
        .await?;
    assert_eq!(got["text"], "pn from wa-rs", "{got}");
    // The sandbox sends the device-less `sender_lid`; whatsmeow copies the sender's device
    // onto it (`message.go` parseMessageSource), so SenderAlt is the engine's LID device.
    let sender: Jid = got["sender"].as_str().context("sender")?.parse()?;
    assert_eq!(
        got["senderAlt"],
        format!("{engine_lid}:{}@lid", sender.device()),
        "{got}"
    );

    // whatsmeow -> engine by LID: routed to the engine's device, acked without error (the
    // `sent` event comes after whatsmeow's SendMessage saw the server ack).
    wm.command(json!({"cmd": "send_text", "to": format!("{engine_lid}@lid"), "text": "lid from whatsmeow", "ref": 1}))
        .await?;
    let sent = wm
        .until(|e| e["event"] == "sent" || e["event"] == "error")
        .await?;
    assert_eq!(sent["event"], "sent", "{sent}");
    let sent_id = sent["id"].as_str().context("id")?.to_owned();
    let msg = next_within(&mut events, STEP, |e| match e {
        Event::Message(m) if m.info.id == sent_id => Some((**m).clone()),
        _ => None,
    })
    .await?;
    assert_eq!(msg.text(), Some("lid from whatsmeow"));
    assert!(
        msg.info.sender.user() == wm_lid || msg.info.sender.user() == WHATSMEOW,
        "sender {} is whatsmeow's LID or PN",
        msg.info.sender
    );
    assert!(router.refusals().is_empty(), "{:?}", router.refusals());

    wm.command(json!({"cmd": "quit"})).await?;
    let status = tokio::time::timeout(STEP, wm.child.wait()).await??;
    assert!(status.success(), "{status}");
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}

/// A LID-migrated account (pair-success `<client-props>` says so, 07 §5.1): the engine's DM
/// to whatsmeow's phone number goes on the wire as LID (07 §1.4, `LidWire::Auto`), so
/// whatsmeow sees the engine's LID device as the sender and its phone number as the
/// alternate; whatsmeow's reply to that LID comes back with both identities on the event.
#[tokio::test]
async fn lid_migrated_engine_and_whatsmeow_exchange_lid_addressed_dms_both_ways()
-> anyhow::Result<()> {
    support::whatsmeow::ensure_built();
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(131)).await?;
    sandbox.create_account(ENGINE)?;
    let wm_phone = sandbox.create_account(WHATSMEOW)?;
    let router = sandbox.router();
    router.set_privacy(
        ENGINE,
        wa_sandbox::PrivacySettings {
            lid_migrated: true,
            ..wa_sandbox::PrivacySettings::default()
        },
    )?;
    let (engine_lid, wm_lid) = (router.account(ENGINE)?.lid, router.account(WHATSMEOW)?.lid);
    let (client, mut events, _, _) = paired_engine(&sandbox, ENGINE, STEP).await?;
    let data = tempfile::tempdir()?;
    let mut wm = Whatsmeow::spawn(&sandbox, data.path(), "whatsmeow-lid2")?;
    wm.pair(&wm_phone).await?;
    prekeys_uploaded(&sandbox, WHATSMEOW, STEP).await?;

    // Engine -> whatsmeow, addressed by phone number by the application, LID on the wire.
    let id = client
        .send_text(&Jid::pn(WHATSMEOW), "lid wire from wa-rs")
        .await?;
    let got = wm
        .until(|e| e["event"] == "message" && e["id"] == id.to_string().as_str())
        .await?;
    assert_eq!(got["text"], "lid wire from wa-rs", "{got}");
    let sender: Jid = got["sender"].as_str().context("sender")?.parse()?;
    assert!(sender.is_lid(), "LID-addressed delivery: {got}");
    assert_eq!(sender.user(), engine_lid, "{got}");
    let alt: Jid = got["senderAlt"].as_str().context("senderAlt")?.parse()?;
    assert_eq!(
        alt.user(),
        ENGINE,
        "the sender's phone number rides along: {got}"
    );

    // whatsmeow -> engine by LID: the event carries both of whatsmeow's identities.
    wm.command(json!({"cmd": "send_text", "to": format!("{engine_lid}@lid"), "text": "lid reply", "ref": 2}))
        .await?;
    let sent = wm
        .until(|e| e["event"] == "sent" || e["event"] == "error")
        .await?;
    assert_eq!(sent["event"], "sent", "{sent}");
    let sent_id = sent["id"].as_str().context("id")?.to_owned();
    let msg = next_within(&mut events, STEP, |e| match e {
        Event::Message(m) if m.info.id == sent_id => Some((**m).clone()),
        _ => None,
    })
    .await?;
    assert_eq!(msg.text(), Some("lid reply"));
    assert_eq!(
        msg.info.sender_lid.as_ref().map(Jid::user),
        Some(wm_lid.as_str())
    );
    assert_eq!(msg.info.sender_pn.as_ref().map(Jid::user), Some(WHATSMEOW));
    assert!(router.refusals().is_empty(), "{:?}", router.refusals());

    wm.command(json!({"cmd": "quit"})).await?;
    let status = tokio::time::timeout(STEP, wm.child.wait()).await??;
    assert!(status.success(), "{status}");
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}
