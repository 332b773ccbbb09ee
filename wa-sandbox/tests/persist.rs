//! A sandbox restarted from saved state (`Router::export_state` -> JSON -> `import_state`)
//! still knows the device that paired with it: the same store logs in without a QR.

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
