//! A sandbox restarted from saved state (`Router::export_state` -> JSON -> `import_state`)
//! still knows the device that paired with it: the same store logs in without a QR.

use std::sync::Arc;
use std::time::Duration;

use wa_engine::{Client, Event, Events, SledStore, Store};
use wa_sandbox::{Sandbox, SandboxConfig, SandboxHandle, SandboxState, StateError};

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
