//! The engine's `Client` on `PgStore` through wa-sandbox: two accounts pair (their
//! credentials committed to PostgreSQL before the pair-success reply), exchange messages,
//! stop, and come back from stores reloaded from the database: both log in without a QR
//! and their ratchets go on (messages both ways decrypt).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use wa_engine::{Client, Event, Events, Jid, Store};
use wa_sandbox::{Sandbox, SandboxConfig, SandboxHandle};
use wa_store_pg::{PgConfig, PgDatabase};

mod support;
use support::PgCluster;

async fn next_until<T>(
    events: &mut Events,
    mut pred: impl FnMut(&Event) -> Option<T>,
) -> Result<T> {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .context("event timeout")?
            .ok_or_else(|| anyhow!("events ended"))?;
        if let Some(t) = pred(&e) {
            return Ok(t);
        }
    }
}

/// Connects the client of store `name`; scans its QR with the account's phone when one is
/// shown. Returns whether a QR was needed.
async fn connect(
    sb: &SandboxHandle,
    db: &PgDatabase,
    name: &str,
) -> Result<(Client, Events, Jid, bool)> {
    let store = db.open_store(name).await?;
    let phone = sb.phone(name)?;
    let (client, mut events) = Client::builder(store.clone() as Arc<dyn Store>)
        .persist(store.persist())
        .url(sb.ws_url())
        .trust_root(sb.trust_root())
        .prekey_batch(30)
        .connect()
        .await?;
    let mut scanned = false;
    let jid = next_until(&mut events, |e| match e {
        Event::Qr { code, .. } => {
            phone.scan(code).expect("scan");
            scanned = true;
            None
        }
        Event::Connected { jid } => Some(jid.clone()),
        _ => None,
    })
    .await?;
    Ok((client, events, jid, scanned))
}

async fn receive_text(events: &mut Events) -> Result<String> {
    next_until(events, |e| match e {
        Event::Message(m) => Some(m.text().unwrap_or_default().to_owned()),
        Event::UndecryptableMessage { .. } => Some("<undecryptable>".to_owned()),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_postgres_pair_message_and_come_back_without_a_qr() -> Result<()> {
    let pg = PgCluster::start()?;
    let db = PgDatabase::connect(&pg.url, PgConfig::default()).await?;
    let sb = Sandbox::start(SandboxConfig::default().with_seed(3)).await?;
    sb.create_account("15550000001")?;
    sb.create_account("15550000002")?;

    let (alice, _alice_events, alice_jid, scanned) = connect(&sb, &db, "15550000001").await?;
    assert!(scanned, "a fresh store pairs by QR");
    let (bob, mut bob_events, bob_jid, _) = connect(&sb, &db, "15550000002").await?;
    alice
        .send_text(&bob_jid.to_non_ad(), "hello over postgres")
        .await?;
    assert_eq!(receive_text(&mut bob_events).await?, "hello over postgres");
    alice.shutdown().await;
    bob.shutdown().await;

    // Fresh caches from the database: no QR, and the sessions continue.
    let (alice, mut alice_events, jid, scanned) = connect(&sb, &db, "15550000001").await?;
    assert!(!scanned, "credentials came back from PostgreSQL");
    assert_eq!(jid, alice_jid);
    let (bob, mut bob_events, _, scanned) = connect(&sb, &db, "15550000002").await?;
    assert!(!scanned);
    alice.send_text(&bob_jid.to_non_ad(), "second").await?;
    assert_eq!(receive_text(&mut bob_events).await?, "second");
    bob.send_text(&alice_jid.to_non_ad(), "reply").await?;
    assert_eq!(receive_text(&mut alice_events).await?, "reply");
    alice.shutdown().await;
    bob.shutdown().await;
    sb.shutdown().await;
    Ok(())
}
