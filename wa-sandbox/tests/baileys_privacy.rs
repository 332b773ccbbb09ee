//! Baileys against the sandbox's privacy-token gate (shared/protocol/07 §5.4): Baileys has no
//! cstoken (07 §3.1: "BL has no cstoken"; issue 11: its protobuf lacks the salt field), so a
//! Baileys sender writing first to an account that needs a token for every first contact
//! (policy P3) is refused with `error="463"` and the recipient gets nothing, while the same
//! text to an ungated account is delivered.
//!
//! Needs Node >= 20 and npm on PATH; `npm ci` in `wa-sandbox/interop` runs on first use
//! (tests/support/interop.rs). Fails, never skips, without them.

mod support;

use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;
use support::baileys::Harness;
use support::engine::{next_within, paired_engine};
use wa_engine::Event;
use wa_sandbox::{PrivacySettings, Sandbox, SandboxConfig, TokenPolicy};

const ENGINE: &str = "15551260001";
const BAILEYS: &str = "15551260002";
const STEP: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_baileys_first_contact_without_cstoken_is_refused_with_463_under_p3() -> anyhow::Result<()>
{
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(126)).await?;
    sandbox.create_account(ENGINE)?;
    let baileys_phone = sandbox.create_account(BAILEYS)?;
    let router = sandbox.router();
    router.set_privacy(
        ENGINE,
        PrivacySettings {
            policy: TokenPolicy::Always,
            ..PrivacySettings::default()
        },
    )?;
    let (client, mut events, _, _) = paired_engine(&sandbox, ENGINE, STEP).await?;
    let auth = tempfile::tempdir()?;
    let mut baileys = Harness::spawn(&sandbox, auth.path(), "baileys")?;
    baileys.pair(&baileys_phone).await?;

    baileys
        .command(json!({"cmd": "send_text", "to": format!("{ENGINE}@s.whatsapp.net"), "text": "cold from baileys", "ref": 1}))
        .await?;
    let sent = baileys
        .until(|e| e["event"] == "sent" || e["event"] == "error")
        .await?;
    assert_eq!(sent["event"], "sent", "{sent}");
    let id = sent["id"].as_str().context("id")?.to_owned();
    let deadline = tokio::time::Instant::now() + STEP;
    let refusal = loop {
        if let Some(r) = router.refusals().into_iter().find(|r| r.id == id) {
            break r;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{id} was not refused"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(refusal.code, "463", "no cstoken from Baileys: {refusal:?}");
    assert_eq!(refusal.sender, BAILEYS);
    assert!(!router.has_contact(BAILEYS, ENGINE));

    // The engine gets nothing; once the gate is off, the same first contact is delivered
    // (so the refusal was the gate's, not a broken send).
    router.set_privacy(ENGINE, PrivacySettings::default())?;
    baileys
        .command(json!({"cmd": "send_text", "to": format!("{ENGINE}@s.whatsapp.net"), "text": "after the gate", "ref": 2}))
        .await?;
    let got = next_within(&mut events, STEP, |e| match e {
        Event::Message(m) => m.text().map(|t| (m.info.id.clone(), t.to_owned())),
        _ => None,
    })
    .await?;
    assert_ne!(got.0, id, "the refused message was never delivered");
    assert_eq!(got.1, "after the gate");

    baileys.command(json!({"cmd": "quit"})).await?;
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}
