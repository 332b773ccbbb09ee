//! whatsapp-rust 0.7 against the sandbox's privacy-token gate (shared/protocol/07 §5.4), as
//! independent proof that the gate accepts a real client's own tokens and refuses it
//! without them (issue 11).
//!
//! - tctoken (P1): whatsapp-rust on a 1:1-LID-migrated account (pair-success
//!   `<client-props>`) writes to the engine's restricted account by LID: refused with 463,
//!   nothing delivered. The engine issues its token with the privacy IQ; the sandbox pushes
//!   it; whatsapp-rust stores it under the engine's LID and attaches it to its next message
//!   (the sandbox advertises AB prop 10518), which the gate accepts and the engine decrypts.
//!   whatsapp-rust's own fire-and-forget issuance IQ shows up as an issued token.
//! - cstoken (P3): whatsapp-rust computes `HMAC(nct_salt, "<lid>@lid")` only once it holds
//!   its account's salt, which the sandbox's phone provisions through app-state sync (07
//!   §5.3, `RouterConfig::phone_sync`). Its first contact then carries its own cstoken and is
//!   delivered; with the salt removed at the server the same kind of message is refused.

use std::time::Duration;

use anyhow::Context as _;

use wa_engine::{Client, Event, Events, Jid};
use wa_interop_whatsapp_rust::{PeerEvent, WaRust};

#[allow(dead_code, unreachable_pub)]
#[path = "../../../tests/support/engine.rs"]
mod engine_support;
use engine_support::{next_within, paired_engine, prekeys_uploaded};
use wa_sandbox::{PrivacySettings, Sandbox, SandboxConfig, SandboxHandle, TokenPolicy};

const STEP: Duration = Duration::from_secs(60);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// Pairs whatsapp-rust to `number` (the sandbox phone scans its QR) and waits until it is
/// connected with prekeys on the server.
async fn paired_peer(
    sandbox: &SandboxHandle,
    number: &str,
    dir: &std::path::Path,
) -> anyhow::Result<WaRust> {
    let mut peer = WaRust::start(sandbox.ws_url(), dir).await?;
    let qr = peer
        .until(STEP, |e| match e {
            PeerEvent::Qr(code) => Some(code.clone()),
            _ => None,
        })
        .await?;
    sandbox.phone(number)?.scan(&qr)?;
    peer.until(STEP, |e| (*e == PeerEvent::Connected).then_some(()))
        .await?;
    prekeys_uploaded(sandbox, number, STEP).await?;
    Ok(peer)
}

/// Waits until the sandbox refused message `id`; returns the code and the stanza's `to`.
async fn refused(sandbox: &SandboxHandle, id: &str) -> anyhow::Result<(String, String)> {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        if let Some(r) = sandbox.router().refusals().into_iter().find(|r| r.id == id) {
            return Ok((r.code, r.to));
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "message {id} was not refused"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The engine's next text event within `within`, or `None`.
async fn engine_text(events: &mut Events, within: Duration) -> Option<(String, String)> {
    next_within(events, within, |e| match e {
        Event::Message(m) => m.text().map(|t| (m.info.id.clone(), t.to_owned())),
        _ => None,
    })
    .await
    .ok()
}

async fn lid_migrated_peer_and_engine(
    seed: u64,
    phone_sync: bool,
    engine_number: &str,
    peer_number: &str,
    dir: &std::path::Path,
) -> anyhow::Result<(SandboxHandle, Client, Events, WaRust)> {
    init_tracing();
    let sandbox = Sandbox::start(
        SandboxConfig::default()
            .with_seed(seed)
            .with_phone_sync(phone_sync),
    )
    .await?;
    sandbox.create_account(engine_number)?;
    sandbox.create_account(peer_number)?;
    sandbox.router().set_privacy(
        peer_number,
        PrivacySettings {
            lid_migrated: true,
            ..PrivacySettings::default()
        },
    )?;
    let (client, events, _, _) = paired_engine(&sandbox, engine_number, STEP).await?;
    let peer = paired_peer(&sandbox, peer_number, dir).await?;
    Ok((sandbox, client, events, peer))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_rust_is_refused_cold_and_passes_the_p1_gate_with_the_issued_tctoken()
-> anyhow::Result<()> {
    const ENGINE: &str = "15551280001";
    const WARUST: &str = "15551280002";
    let dir = tempfile::tempdir()?;
    let (sandbox, client, mut events, peer) =
        lid_migrated_peer_and_engine(281, false, ENGINE, WARUST, dir.path()).await?;
    let router = sandbox.router();
    router.set_privacy(
        ENGINE,
        PrivacySettings {
            policy: TokenPolicy::RestrictedRecipient,
            restricted: true,
            ..PrivacySettings::default()
        },
    )?;
    let engine_lid = format!("{}@lid", router.account(ENGINE)?.lid);

    // Cold: whatsapp-rust writes to the engine's LID without a token: 463, nothing arrives.
    let cold = peer
        .send_text(&engine_lid, "cold from whatsapp-rust")
        .await?;
    // LID on the wire: the account is 1:1-LID-migrated (whatsapp-rust resolve_dm_wire_jid).
    assert_eq!(
        refused(&sandbox, &cold).await?,
        ("463".to_owned(), engine_lid.clone())
    );
    assert!(!router.has_contact(WARUST, ENGINE));

    // The engine issues its token to whatsapp-rust (the privacy IQ, 07 §2.5); the sandbox
    // pushes it to whatsapp-rust's devices.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let issue = wa_engine::privacy::issue_request("tc-issue-1", &[(Jid::pn(WARUST), now)]);
    client.send_iq(issue).await?;
    let issued = router
        .issued_tokens()
        .into_iter()
        .find(|i| i.issuer == ENGINE && i.holder == WARUST)
        .expect("the engine's token to whatsapp-rust is recorded");
    assert_eq!(issued.t, now);

    // whatsapp-rust stores it under the engine's LID and attaches it: delivered.
    let deadline = tokio::time::Instant::now() + STEP;
    let warm = loop {
        // The notification may still be on its way: retry until accepted (each attempt is a
        // new message; refused ones deliver nothing).
        let id = peer
            .send_text(&engine_lid, "warm from whatsapp-rust")
            .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        if !router.refusals().iter().any(|r| r.id == id) {
            break id;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "whatsapp-rust never got through with the issued token"
        );
    };
    let (id, text) = engine_text(&mut events, STEP)
        .await
        .expect("the engine gets the accepted message");
    assert_eq!(
        (id.as_str(), text.as_str()),
        (warm.as_str(), "warm from whatsapp-rust")
    );
    assert!(router.has_contact(WARUST, ENGINE));
    // The cold message never arrived (the first text the engine saw was the warm one).
    assert_ne!(id, cold);

    // whatsapp-rust issued its own token to the engine after sending (fire-and-forget IQ).
    let deadline = tokio::time::Instant::now() + STEP;
    while !router
        .issued_tokens()
        .iter()
        .any(|i| i.issuer == WARUST && i.holder == ENGINE)
    {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "whatsapp-rust never issued its token: {:?}",
            router.issued_tokens()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    peer.shutdown().await;
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_rust_passes_the_p3_gate_with_its_own_cstoken() -> anyhow::Result<()> {
    const ENGINE: &str = "15551280011";
    const WARUST: &str = "15551280012";
    let dir = tempfile::tempdir()?;
    let (sandbox, client, mut events, peer) =
        lid_migrated_peer_and_engine(282, true, ENGINE, WARUST, dir.path()).await?;
    let router = sandbox.router();
    router.set_privacy(
        ENGINE,
        PrivacySettings {
            policy: TokenPolicy::Always,
            ..PrivacySettings::default()
        },
    )?;
    let engine_lid = format!("{}@lid", router.account(ENGINE)?.lid);
    let salt = router.nct_salt(WARUST)?.expect("accounts have a salt");

    // The salt reaches whatsapp-rust through app-state sync (07 §5.3: the phone shares its
    // app-state key and uploads `regular_high` `["nct_salt_sync"]`; RouterConfig::phone_sync).
    // The history-sync channel is closed to this harness, whose HTTP client refuses every
    // request (the blob is on the media host).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while peer.nct_salt().is_none() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let held = peer
        .nct_salt()
        .context("whatsapp-rust never got its NCT salt through app-state sync")?;
    assert_eq!(held, salt.to_vec(), "the salt the sandbox provisioned");

    // With its salt, whatsapp-rust's first contact carries a cstoken and is delivered.
    let id = peer
        .send_text(&engine_lid, "first contact with cstoken")
        .await?;
    let (got, text) = engine_text(&mut events, STEP)
        .await
        .expect("the engine gets the cstoken message");
    assert_eq!(
        (got.as_str(), text.as_str()),
        (id.as_str(), "first contact with cstoken")
    );
    assert!(router.refusals().iter().all(|r| r.id != id));

    // Its salt removed at the server: the same first contact to another cold account is
    // refused (the server checks with the salt it provisioned).
    router.set_nct_salt(WARUST, None)?;
    router.set_has_contact(WARUST, ENGINE, false)?;
    let refused_id = peer
        .send_text(&engine_lid, "cstoken without server salt")
        .await?;
    assert_eq!(refused(&sandbox, &refused_id).await?.0, "463");

    peer.shutdown().await;
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}
