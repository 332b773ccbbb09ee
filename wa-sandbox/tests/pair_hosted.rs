//! Hosted accounts (issue 13 item 7): the sandbox phone of a hosted account builds the device
//! identity as HOSTED (`06 05` account signature and HMAC) and accepts the device signature
//! real companions send for it: Baileys 6.7.24 signs `06 06` (checked here on the signature it
//! stored), our engine signs `06 06` too (wa-engine tests/pair_hosted.rs), and whatsmeow signs
//! `06 01`. All three pair and log in. Which prefixes and why: wa_engine::pair success module.
//!
//! Needs Node >= 20 and npm, and Go >= 1.24, on PATH. Fails, never skips.

mod support;

use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use prost::Message as _;
use serde_json::Value;
use support::baileys::Harness;
use support::engine::paired_engine;
use support::whatsmeow::Whatsmeow;
use wa_engine::pair::{AdvFamily, device_signature_message_for};
use wa_engine::signal::xeddsa;
use wa_proto::wa::AdvDeviceIdentity;
use wa_sandbox::{Sandbox, SandboxConfig};

const ENGINE: &str = "15551300001";
const BAILEYS: &str = "15551300002";
const WHATSMEOW: &str = "15551300003";
const STEP: Duration = Duration::from_secs(30);

/// Bytes as Baileys' creds.json holds them: `BufferJSON`'s `{"type": "Buffer", "data":
/// "<base64>"}`, or a plain base64 string (protobuf fields such as `account.details`).
fn buffer(v: &Value) -> anyhow::Result<Vec<u8>> {
    let data = v["data"]
        .as_str()
        .or_else(|| v.as_str())
        .with_context(|| format!("not bytes: {v}"))?;
    Ok(base64::engine::general_purpose::STANDARD.decode(data)?)
}

fn key32(v: &Value) -> anyhow::Result<[u8; 32]> {
    buffer(v)?
        .try_into()
        .map_err(|b: Vec<u8>| anyhow::anyhow!("{} bytes, expected 32", b.len()))
}

#[tokio::test]
async fn hosted_accounts_pair_baileys_engine_and_whatsmeow() -> anyhow::Result<()> {
    support::whatsmeow::ensure_built();
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(31)).await?;
    for number in [ENGINE, BAILEYS, WHATSMEOW] {
        sandbox.create_account(number)?.set_hosted(true)?;
    }

    // Baileys 6.7.24: pairs, and the device signature it stored is the 06 06 one.
    let auth = tempfile::tempdir()?;
    let mut baileys = Harness::spawn(&sandbox, auth.path(), "baileys")?;
    baileys.pair(&sandbox.phone(BAILEYS)?).await?;
    // Baileys rewrites creds.json on every creds.update: read until a complete file parses.
    let deadline = tokio::time::Instant::now() + STEP;
    let creds: Value = loop {
        let text = std::fs::read_to_string(auth.path().join("creds.json")).unwrap_or_default();
        match serde_json::from_str::<Value>(&text) {
            Ok(v) if v["account"].is_object() => break v,
            _ if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => anyhow::bail!("no complete creds.json with an account: {other:?}"),
        }
    };
    let account = &creds["account"];
    let details = buffer(&account["details"])?;
    let identity = AdvDeviceIdentity::decode(details.as_slice())?;
    assert_eq!(
        (identity.device_type, identity.account_type),
        (Some(1), Some(1))
    );
    let companion = key32(&creds["signedIdentityKey"]["public"])?;
    let primary = key32(&account["accountSignatureKey"])?;
    let signature: [u8; 64] = buffer(&account["deviceSignature"])?
        .try_into()
        .map_err(|_| anyhow::anyhow!("device signature is not 64 bytes"))?;
    let hosted = device_signature_message_for(AdvFamily::Hosted, &details, &companion, &primary);
    assert!(xeddsa::verify(&companion, &hosted, &signature), "06 06");
    let e2ee = device_signature_message_for(AdvFamily::E2ee, &details, &companion, &primary);
    assert!(!xeddsa::verify(&companion, &e2ee, &signature), "not 06 01");
    assert_eq!(sandbox.router().account(BAILEYS)?.devices.len(), 1);

    // Our engine (06 06) and whatsmeow (06 01) pair to hosted accounts too.
    let (client, _events, jid, _) = paired_engine(&sandbox, ENGINE, STEP).await?;
    assert_eq!(jid.user(), ENGINE);
    let data = tempfile::tempdir()?;
    let mut wm = Whatsmeow::spawn(&sandbox, data.path(), "whatsmeow")?;
    let wm_jid = wm.pair(&sandbox.phone(WHATSMEOW)?).await?;
    assert!(wm_jid.starts_with(WHATSMEOW), "{wm_jid}");
    for number in [ENGINE, WHATSMEOW] {
        assert_eq!(
            sandbox.router().account(number)?.devices.len(),
            1,
            "{number}"
        );
    }

    // Messages flow between the hosted accounts (the engine's pkmsg carries its 06 06
    // device identity).
    for (to, peer) in [(BAILEYS, &mut *baileys), (WHATSMEOW, &mut *wm)] {
        let id = client
            .send_text(&wa_engine::Jid::pn(to), "hello hosted")
            .await?;
        let got = peer
            .until(|e| e["event"] == "message" && e["id"] == id.0.as_str())
            .await?;
        assert_eq!(got["text"], "hello hosted", "{got}");
    }

    baileys.command(serde_json::json!({"cmd": "quit"})).await?;
    wm.command(serde_json::json!({"cmd": "quit"})).await?;
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}
