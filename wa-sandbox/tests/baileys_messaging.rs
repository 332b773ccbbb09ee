//! Messaging between two real Baileys 6.7.24 clients (from npm, driven through the harness
//! in `wa-sandbox/interop/`) through the sandbox: each is paired to its own account by QR,
//! then they exchange texts both ways and see each other's delivery receipts. Baileys does
//! all the Signal work (usync, prekey bundles of every device including the primary
//! phones', X3DH, ratchet); the sandbox only routes, so this is the server side's proof
//! against a client nobody here wrote (interop/BAILEYS_NOTES.md §11).
//!
//! Needs Node >= 20 and npm on PATH; `npm ci` in `wa-sandbox/interop` runs on first use
//! (tests/support/interop.rs). Fails, never skips, without them.

mod support;

use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};
use support::baileys::Harness;
use support::peer::STEP;
use wa_sandbox::{Sandbox, SandboxConfig};

const ALICE: &str = "15551110001";
const BOB: &str = "15551110002";

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

fn is_message_with(text: &str) -> impl FnMut(&Value) -> bool + '_ {
    move |e| e["event"] == "message" && e["text"] == text
}

fn is_delivery_of(id: &str) -> impl FnMut(&Value) -> bool + '_ {
    move |e| e["event"] == "receipt" && e["id"] == id && e["statusName"] == "DELIVERY_ACK"
}

#[tokio::test]
async fn two_baileys_clients_exchange_texts_and_delivery_receipts() -> anyhow::Result<()> {
    init_tracing();
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(11)).await?;
    let alice_phone = sandbox.create_account(ALICE)?;
    let bob_phone = sandbox.create_account(BOB)?;
    let (alice_auth, bob_auth) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let mut alice = Harness::spawn(&sandbox, alice_auth.path(), "alice")?;
    let mut bob = Harness::spawn(&sandbox, bob_auth.path(), "bob")?;
    let alice_jid = alice.pair(&alice_phone).await?;
    let bob_jid = bob.pair(&bob_phone).await?;
    assert!(alice_jid.starts_with(ALICE) && bob_jid.starts_with(BOB));

    // Alice -> Bob.
    alice
        .command(json!({"cmd": "send_text", "to": format!("{BOB}@s.whatsapp.net"), "text": "hello bob", "ref": 1}))
        .await?;
    let sent = alice
        .until(|e| e["event"] == "sent" || e["event"] == "error")
        .await?;
    assert_eq!(sent["event"], "sent", "{sent}");
    let id = sent["id"].as_str().context("id")?.to_owned();
    let got = bob.until(is_message_with("hello bob")).await?;
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["fromMe"], false);
    assert_eq!(got["from"], format!("{ALICE}@s.whatsapp.net"));
    assert_eq!(got["pushName"], "alice");
    alice.until(is_delivery_of(&id)).await?;

    // Bob -> Alice.
    bob.command(json!({"cmd": "send_text", "to": format!("{ALICE}@s.whatsapp.net"), "text": "hi alice", "ref": 2}))
        .await?;
    let sent = bob
        .until(|e| e["event"] == "sent" || e["event"] == "error")
        .await?;
    assert_eq!(sent["event"], "sent", "{sent}");
    let id2 = sent["id"].as_str().context("id")?.to_owned();
    let got = alice.until(is_message_with("hi alice")).await?;
    assert_eq!(got["id"], id2.as_str());
    bob.until(is_delivery_of(&id2)).await?;

    // Each primary phone got its copies (Baileys encrypts for both primaries: the
    // recipient's and, as a DeviceSentMessage, its own).
    assert!(
        bob_phone
            .received()
            .iter()
            .any(|n| n.get_attr_str("id") == Some(id.as_str())),
        "bob's phone got alice's message"
    );
    assert!(
        alice_phone
            .received()
            .iter()
            .any(|n| n.get_attr_str("id") == Some(id.as_str())),
        "alice's phone got its own message"
    );

    alice.command(json!({"cmd": "quit"})).await?;
    bob.command(json!({"cmd": "quit"})).await?;
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn baileys_group_text_reaches_members_and_stops_after_removal() -> anyhow::Result<()> {
    const CAROL: &str = "15551110003";
    init_tracing();
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(12)).await?;
    let alice_phone = sandbox.create_account(ALICE)?;
    let bob_phone = sandbox.create_account(BOB)?;
    sandbox.create_account(CAROL)?;
    let (alice_auth, bob_auth) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let mut alice = Harness::spawn(&sandbox, alice_auth.path(), "alice")?;
    let mut bob = Harness::spawn(&sandbox, bob_auth.path(), "bob")?;
    alice.pair(&alice_phone).await?;
    bob.pair(&bob_phone).await?;

    let group = sandbox
        .router()
        .create_group(ALICE, "Team", &[BOB, CAROL])?;
    let group_jid = group.to_string();

    // Baileys fetches the metadata, usyncs every participant, distributes its sender key
    // pairwise (pkmsg) and sends one skmsg.
    alice
        .command(json!({"cmd": "send_text", "to": group_jid, "text": "hello team", "ref": 1}))
        .await?;
    let sent = alice
        .until(|e| e["event"] == "sent" || e["event"] == "error")
        .await?;
    assert_eq!(sent["event"], "sent", "{sent}");
    let got = bob.until(is_message_with("hello team")).await?;
    assert_eq!(got["from"], group_jid.as_str());
    assert!(
        got["participant"]
            .as_str()
            .is_some_and(|p| p.starts_with(ALICE)),
        "{got}"
    );
    // Bob's receipt is routed to Alice's devices as a group receipt (Baileys folds it
    // into its buffered upsert instead of emitting it, so look at her phone's copy).
    let id = sent["id"].as_str().context("id")?.to_owned();
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let routed = alice_phone.received().into_iter().any(|n| {
            n.tag == "receipt"
                && n.get_attr_str("id") == Some(id.as_str())
                && n.get_attr("from").map(|v| v.to_text().into_owned()) == Some(group_jid.clone())
                && n.get_attr("participant")
                    .is_some_and(|p| p.to_text().starts_with(BOB))
        });
        if routed {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no group receipt routed to Alice"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    sandbox.router().remove_group_participant(&group, BOB)?;
    assert_eq!(
        sandbox.router().group_participants(&group),
        vec![ALICE, CAROL]
    );
    alice
        .command(json!({"cmd": "send_text", "to": group_jid, "text": "bob is gone", "ref": 2}))
        .await?;
    let sent = alice
        .until(|e| e["event"] == "sent" || e["event"] == "error")
        .await?;
    assert_eq!(sent["event"], "sent", "{sent}");
    // A 1:1 text sent after it: stanzas reach a device in order, so had the group text
    // been routed to Bob it would show up before this one.
    alice
        .command(json!({"cmd": "send_text", "to": format!("{BOB}@s.whatsapp.net"), "text": "marker", "ref": 3}))
        .await?;
    let mut before_marker = Vec::new();
    loop {
        let e = bob.event().await?;
        if e["event"] == "message" && e["text"] == "marker" {
            break;
        }
        before_marker.push(e);
    }
    assert!(
        !before_marker
            .iter()
            .any(|e| e["event"] == "message" && e["text"] == "bob is gone"),
        "{before_marker:#?}"
    );
    alice.command(json!({"cmd": "quit"})).await?;
    bob.command(json!({"cmd": "quit"})).await?;
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn baileys_gets_texts_sent_while_it_was_offline_in_order() -> anyhow::Result<()> {
    init_tracing();
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(13)).await?;
    let alice_phone = sandbox.create_account(ALICE)?;
    let bob_phone = sandbox.create_account(BOB)?;
    let (alice_auth, bob_auth) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let mut alice = Harness::spawn(&sandbox, alice_auth.path(), "alice")?;
    // Bob reconnects by himself (1 s apart) after a dropped connection.
    let mut bob = Harness::spawn_with(&sandbox, bob_auth.path(), "bob", &["--reconnect", "60"])?;
    alice.pair(&alice_phone).await?;
    bob.pair(&bob_phone).await?;
    // Bob goes offline: his socket drops and every reconnection is refused for now.
    sandbox.faults().refuse_connections(u32::MAX);
    assert_eq!(sandbox.faults().drop_connection(BOB, 1), 1);
    bob.until(|e| e["event"] == "connection" && e["connection"] == "close")
        .await?;
    // Make sure no other socket of Bob's is still logged in: under load, the harness can
    // have a second socket from the post-pairing restart (the sandbox leaves the paired
    // socket open for `restart_close_grace`) that logged in before the refusals started.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while sandbox.router().account(BOB)?.devices[0].connected {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "Bob still has a live connection"
        );
        sandbox.faults().drop_connection(BOB, 1);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let texts = ["one", "two", "three"];
    for (i, text) in texts.iter().enumerate() {
        alice
            .command(json!({"cmd": "send_text", "to": format!("{BOB}@s.whatsapp.net"), "text": text, "ref": i}))
            .await?;
        let sent = alice
            .until(|e| e["event"] == "sent" || e["event"] == "error")
            .await?;
        assert_eq!(sent["event"], "sent", "{sent}");
    }
    let queued = sandbox.router().account(BOB)?.devices[0].queued;
    assert_eq!(queued, texts.len(), "the three texts wait in Bob's queue");

    // Bob comes back.
    sandbox.faults().refuse_connections(0);
    let mut got = Vec::new();
    while got.len() < texts.len() {
        let e = bob.until(|e| e["event"] == "message").await?;
        assert_eq!(
            e["upsertType"], "append",
            "offline messages come as append: {e}"
        );
        got.push(e["text"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(got, texts);
    bob.until(|e| e["event"] == "pending_notifications_done")
        .await?;
    // Delivered and acknowledged: the queue is empty, and Alice sees the receipts.
    for _ in 0..texts.len() {
        alice
            .until(|e| e["event"] == "receipt" && e["statusName"] == "DELIVERY_ACK")
            .await?;
    }
    assert_eq!(sandbox.router().account(BOB)?.devices[0].queued, 0);
    alice.command(json!({"cmd": "quit"})).await?;
    bob.command(json!({"cmd": "quit"})).await?;
    sandbox.shutdown().await;
    Ok(())
}
