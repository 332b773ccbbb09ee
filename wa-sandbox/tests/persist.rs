//! A sandbox restarted from saved state (`Router::export_state` -> JSON -> `import_state`)
//! still knows the device that paired with it: the same store logs in without a QR.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use wa_engine::{Client, Event, Events, SledStore, Store};
use wa_sandbox::{
    Durability, Router, Sandbox, SandboxConfig, SandboxHandle, SandboxState, StateError,
};

const PHONE: &str = "15553332222";

async fn next(events: &mut Events) -> Event {
    tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .expect("an event within 20 s")
        .expect("event stream open")
}

async fn start() -> SandboxHandle {
    // The same seed gives the same server keys, so the same trust root.
    Sandbox::start(
        SandboxConfig::default()
            .with_seed(31)
            .with_first_stanza_delay(Duration::from_millis(5)),
    )
    .await
    .expect("sandbox starts")
}

async fn connect(sb: &SandboxHandle, store: Arc<dyn Store>) -> Events {
    let (_client, events) = Client::builder(store)
        .url(sb.ws_url())
        .trust_root(sb.trust_root())
        .connect()
        .await
        .expect("connect");
    events
}

#[tokio::test]
async fn restarted_sandbox_with_saved_state_lets_the_paired_device_log_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).expect("sled"));
    let saved = {
        let sb = start().await;
        let phone = sb.create_account(PHONE).expect("account");
        let mut events = connect(&sb, store.clone()).await;
        let Event::Qr { code, .. } = next(&mut events).await else {
            panic!("QR first");
        };
        phone.scan(&code).expect("scan");
        while !matches!(next(&mut events).await, Event::Connected { .. }) {}
        let json = serde_json::to_string(&sb.router().export_state()).expect("serialize");
        drop(events);
        sb.shutdown().await;
        json
    };

    let sb = start().await;
    let state: SandboxState = serde_json::from_str(&saved).expect("deserialize");
    sb.router().import_state(&state).expect("import");
    let phone = sb.phone(PHONE).expect("restored account");
    assert_eq!(phone.devices().len(), 1);
    let mut events = connect(&sb, store).await;
    match next(&mut events).await {
        Event::Connected { jid } => assert_eq!(jid.to_string(), phone.devices()[0].jid),
        other => panic!("expected Connected without a QR, got {other:?}"),
    }
    assert!(!format!("{state:?}").contains("identity_secret"));
}

#[tokio::test]
async fn state_of_another_version_is_refused() {
    let sb = start().await;
    let state: SandboxState =
        serde_json::from_str(r#"{"version": 99, "accounts": []}"#).expect("deserialize");
    assert_eq!(
        sb.router().import_state(&state),
        Err(StateError::Version(99))
    );
}

/// A slow disk: every persist exports the state, waits, then "writes" it (keeps the JSON).
struct SlowDisk {
    written: Mutex<Vec<String>>,
}

impl Durability for SlowDisk {
    fn persist(&self, router: &Router) -> std::io::Result<()> {
        let mut written = self.written.lock().expect("lock");
        let json = serde_json::to_string(&router.export_state()).map_err(std::io::Error::other)?;
        std::thread::sleep(Duration::from_millis(300));
        written.push(json);
        Ok(())
    }
}

/// issue 12: the sandbox makes a linked device durable before it answers the
/// pair-device-sign (515), so by the time the companion has logged in the device is written,
/// however slow the write; and what was written lets it log in to a restarted sandbox.
#[tokio::test]
async fn a_linked_device_is_durable_before_the_companion_is_sent_to_log_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).expect("sled"));
    let disk = Arc::new(SlowDisk {
        written: Mutex::new(Vec::new()),
    });
    let sb = start().await;
    sb.router().set_durability(Some(disk.clone()));
    let phone = sb.create_account(PHONE).expect("account");
    assert_eq!(
        disk.written.lock().expect("lock").len(),
        1,
        "account written"
    );
    let mut events = connect(&sb, store.clone()).await;
    let Event::Qr { code, .. } = next(&mut events).await else {
        panic!("QR first");
    };
    phone.scan(&code).expect("scan");
    while !matches!(next(&mut events).await, Event::Connected { .. }) {}
    // Taken as the companion reports connected: the last write already has the device.
    let last = disk
        .written
        .lock()
        .expect("lock")
        .last()
        .cloned()
        .expect("written");
    drop(events);
    sb.shutdown().await;

    let state: SandboxState = serde_json::from_str(&last).expect("deserialize");
    let sb = start().await;
    sb.router().import_state(&state).expect("import");
    assert_eq!(
        sb.phone(PHONE).expect("restored account").devices().len(),
        1,
        "the device was written before the companion logged in"
    );
    let mut events = connect(&sb, store).await;
    assert!(
        matches!(next(&mut events).await, Event::Connected { .. }),
        "logs in to the restarted sandbox without a QR"
    );
}

/// A disk that keeps the last offline queues written through `persist_queues`.
#[derive(Default)]
struct QueueDisk {
    queues: Mutex<Option<String>>,
}

impl Durability for QueueDisk {
    fn persist(&self, _router: &Router) -> std::io::Result<()> {
        Ok(())
    }

    fn persist_queues(&self, router: &Router) -> std::io::Result<()> {
        let json = serde_json::to_string(&router.export_queues()).map_err(std::io::Error::other)?;
        *self.queues.lock().expect("lock") = Some(json);
        Ok(())
    }
}

/// issue 12 (kill loop): the sandbox makes a routed message durable (its recipients' offline
/// queues, `Durability::persist_queues`) before it acks it to the sender, and a sandbox
/// restarted from the saved state and queues delivers it to the recipient, which was
/// offline when it was sent.
#[tokio::test]
async fn an_acked_message_is_in_the_durable_queues_and_a_restarted_sandbox_delivers_it() {
    const BOB: &str = "15553334444";
    let disk = Arc::new(QueueDisk::default());
    let sb = start().await;
    sb.router().set_durability(Some(disk.clone()));
    sb.create_account(PHONE).expect("alice");
    sb.create_account(BOB).expect("bob");
    let within = Duration::from_secs(20);
    let (alice, _alice_events, _, _) = support::engine::paired_engine(&sb, PHONE, within)
        .await
        .expect("alice paired");
    let (bob, bob_events, bob_jid, bob_store) = support::engine::paired_engine(&sb, BOB, within)
        .await
        .expect("bob paired");
    // Bob goes offline: the message waits in his queue.
    bob.shutdown().await;
    drop(bob_events);
    let id = alice
        .send_text(&bob_jid.to_non_ad(), "kept across a crash")
        .await
        .expect("sent and acked");
    let queues = disk
        .queues
        .lock()
        .expect("lock")
        .clone()
        .expect("queues written before the ack");
    let saved: wa_sandbox::QueuesState = serde_json::from_str(&queues).expect("deserialize");
    assert!(!saved.is_empty(), "the message is in the written queues");
    let state = sb.router().export_state();
    sb.shutdown().await;

    // "Crash": a new sandbox from what was on disk.
    let sb = start().await;
    sb.router().import_state(&state).expect("import state");
    assert!(
        sb.router().import_queues(&saved).expect("import queues") >= 1,
        "the message is restored"
    );
    let store: Arc<dyn Store> = bob_store;
    let mut events = connect(&sb, store).await;
    let message = support::engine::next_within(&mut events, within, |e| match e {
        Event::Message(m) if m.info.id == id.0 => Some(m.clone()),
        _ => None,
    })
    .await
    .expect("bob gets the message from the restarted sandbox");
    assert_eq!(
        message.message.conversation.as_deref(),
        Some("kept across a crash")
    );
}
