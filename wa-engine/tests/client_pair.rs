//! The real `Client` against the real `wa-sandbox` on 127.0.0.1:0: a device pairs once and
//! stays paired across the 515 restart, dropped sockets, 503s and process restarts (including
//! a SIGKILL right after the scan), never showing a second QR; device removal logs out and
//! wipes; a wrong trust root is a typed error; QR refs running out stop cleanly.
#![cfg(all(feature = "runtime", feature = "sled"))]

use std::sync::Arc;
use std::time::Duration;

use wa_engine::conn::Timing;
use wa_engine::noise::TrustRoot;
use wa_engine::{
    Client, ClientBuilder, CloseReason, ConnectError, Event, Events, MemoryStore, ReconnectPolicy,
    SledStore, Store,
};
use wa_sandbox::{Sandbox, SandboxConfig, SandboxHandle, StreamErrorKind};

const PN: &str = "15551234567";

async fn sandbox(seed: u64) -> SandboxHandle {
    Sandbox::start(
        SandboxConfig::default()
            .with_seed(seed)
            .with_first_stanza_delay(Duration::from_millis(5)),
    )
    .await
    .expect("sandbox starts")
}

fn client(sb: &SandboxHandle, store: Arc<dyn Store>) -> ClientBuilder {
    Client::builder(store)
        .url(sb.ws_url())
        .trust_root(sb.trust_root())
        .device_name("wa-rs test")
        .reconnect_policy(ReconnectPolicy {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
            rate_limited: Duration::from_millis(200),
        })
}

async fn next(events: &mut Events) -> Event {
    tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .expect("an event within 20 s")
        .expect("event stream open")
}

/// The first event matching `f`, and the events skipped before it.
async fn until(events: &mut Events, f: impl Fn(&Event) -> bool) -> (Event, Vec<Event>) {
    let mut skipped = Vec::new();
    loop {
        let e = next(events).await;
        if f(&e) {
            return (e, skipped);
        }
        skipped.push(e);
    }
}

fn is_connected(e: &Event) -> bool {
    matches!(e, Event::Connected { .. })
}

#[tokio::test]
async fn qr_scan_restart_reconnects_and_device_removal_wipes() {
    let sb = sandbox(1).await;
    let phone = sb.create_account(PN).expect("account");
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).expect("sled"));
    let (client, mut events) = client(&sb, store.clone()).connect().await.expect("connect");

    let Event::Qr { code, expires_in } = next(&mut events).await else {
        panic!("an unpaired device shows a QR first");
    };
    assert_eq!(expires_in, Duration::from_secs(60));
    let link = phone.scan(&code).expect("the phone scans");
    let (ev, _) = until(&mut events, |e| matches!(e, Event::PairSuccess { .. })).await;
    let Event::PairSuccess { jid, lid, .. } = ev else {
        unreachable!()
    };
    assert_eq!(jid.to_string(), link.jid);
    assert_eq!(lid.map(|l| l.to_string()), Some(link.lid.clone()));
    assert_eq!(
        next(&mut events).await,
        Event::Disconnected {
            reason: CloseReason::RestartRequired,
            reconnecting: true
        }
    );
    let (ev, skipped) = until(&mut events, is_connected).await;
    assert_eq!(ev, Event::Connected { jid: jid.clone() });
    assert!(
        skipped.iter().all(|e| !matches!(e, Event::Qr { .. })),
        "{skipped:?}"
    );
    assert!(client.is_connected());
    assert_eq!(phone.devices().len(), 1);
    let device = link.device;

    // A dropped socket: back off, log in again, no QR.
    sb.faults().drop_connection(PN, device);
    let (_, skipped) = until(&mut events, is_connected).await;
    assert_eq!(
        skipped,
        vec![Event::Disconnected {
            reason: CloseReason::ConnectionLost,
            reconnecting: true
        }]
    );

    // 503, and refused connections while coming back.
    sb.faults().refuse_connections(2);
    sb.faults()
        .stream_error(PN, device, StreamErrorKind::Code(503));
    let (_, skipped) = until(&mut events, is_connected).await;
    assert_eq!(
        skipped.first(),
        Some(&Event::Disconnected {
            reason: CloseReason::ServiceUnavailable,
            reconnecting: true
        })
    );
    assert!(skipped.iter().all(|e| matches!(
        e,
        Event::Disconnected {
            reconnecting: true,
            ..
        }
    )));

    // A 515 on a login connection restarts at once.
    sb.faults()
        .stream_error(PN, device, StreamErrorKind::Code(515));
    let (_, skipped) = until(&mut events, is_connected).await;
    assert_eq!(
        skipped,
        vec![Event::Disconnected {
            reason: CloseReason::RestartRequired,
            reconnecting: true
        }]
    );
    assert_eq!(phone.devices().len(), 1, "still one linked device");

    // The phone unlinks the device.
    phone.remove_device(device).expect("remove");
    let (ev, _) = until(&mut events, |e| matches!(e, Event::LoggedOut { .. })).await;
    assert_eq!(
        ev,
        Event::LoggedOut {
            reason: CloseReason::LoggedOut { code: 401 }
        }
    );
    assert_eq!(next(&mut events).await, Event::Stopped);
    assert!(
        store.credentials().expect("readable").is_none(),
        "credentials wiped"
    );
    assert!(!client.is_connected());
}

#[tokio::test]
async fn wrong_trust_root_is_a_typed_connect_error() {
    let sb = sandbox(2).await;
    let err = Client::builder(Arc::new(MemoryStore::new()))
        .url(sb.ws_url())
        .trust_root(TrustRoot::new([9; 32], 0))
        .connect()
        .await
        .expect_err("an unverifiable server");
    assert!(
        matches!(err, ConnectError::Closed(CloseReason::BadServerCertificate)),
        "{err:?}"
    );
}

#[tokio::test]
async fn qr_refs_running_out_is_one_clear_event_without_reconnect_loop() {
    let sb = Sandbox::start(
        SandboxConfig::default()
            .with_seed(3)
            .with_first_stanza_delay(Duration::from_millis(5))
            .with_qr_windows(Duration::from_secs(5), Duration::from_secs(5)),
    )
    .await
    .expect("sandbox");
    let timing = Timing {
        qr_first: Duration::from_millis(60),
        qr_next: Duration::from_millis(20),
        ..Timing::default()
    };
    let (_client, mut events) = client(&sb, Arc::new(MemoryStore::new()))
        .timing(timing)
        .connect()
        .await
        .expect("connect");
    let (ev, qrs) = until(&mut events, |e| !matches!(e, Event::Qr { .. })).await;
    assert_eq!(qrs.len(), 6);
    assert_eq!(
        ev,
        Event::Disconnected {
            reason: CloseReason::QrRefsExhausted,
            reconnecting: false
        }
    );
    assert_eq!(next(&mut events).await, Event::Stopped);
    assert_eq!(
        tokio::time::timeout(Duration::from_millis(300), events.recv())
            .await
            .expect("closed stream"),
        None
    );
}

#[tokio::test]
async fn phone_number_code_pairing_reaches_connected() {
    let sb = sandbox(4).await;
    let phone = sb.create_account(PN).expect("account");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (client, mut events) = client(&sb, store.clone()).connect().await.expect("connect");
    assert!(matches!(next(&mut events).await, Event::Qr { .. }));
    let code = client
        .request_pairing_code(&format!("+{PN}"))
        .await
        .expect("pairing code");
    phone.enter_code(&code).expect("the user types the code");
    until(&mut events, |e| matches!(e, Event::PairSuccess { .. })).await;
    let (_, skipped) = until(&mut events, is_connected).await;
    assert!(skipped.contains(&Event::Disconnected {
        reason: CloseReason::RestartRequired,
        reconnecting: true
    }));
    assert_eq!(phone.devices().len(), 1);
    client.shutdown().await;
}

/// Env var that turns [`child_process_entry`] into a child of
/// [`sigkill_after_scan_then_another_process_logs_in_without_qr`].
const CHILD_ENV: &str = "WA_ENGINE_SANDBOX_CHILD";

/// Not a test of its own: the body of the child processes started by
/// [`sigkill_after_scan_then_another_process_logs_in_without_qr`] (returns at once otherwise).
/// Connects with a SledStore and prints its events on stdout.
#[tokio::test]
async fn child_process_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split(' ').collect();
    let [url, root, serial, dir] = parts.as_slice() else {
        panic!("bad child spec {spec}");
    };
    let root: [u8; 32] = hex::decode(root)
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir).expect("sled"));
    let (_client, mut events) = Client::builder(store)
        .url(*url)
        .trust_root(TrustRoot::new(root, serial.parse().expect("serial")))
        .connect()
        .await
        .expect("child connects");
    while let Some(e) = events.recv().await {
        match e {
            Event::Qr { code, .. } => println!("QR {code}"),
            Event::PairSuccess { .. } => println!("PAIRED"),
            Event::Connected { .. } => println!("CONNECTED"),
            _ => {}
        }
    }
}

struct Child {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Child {
    fn spawn(sb: &SandboxHandle, dir: &std::path::Path) -> Self {
        use tokio::io::AsyncBufReadExt as _;
        let root = sb.trust_root();
        let spec = format!(
            "{} {} {} {}",
            sb.ws_url(),
            hex::encode(root.public_key()),
            root.serial(),
            dir.display()
        );
        let mut child = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "child_process_entry",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, spec)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn child");
        let lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        Self { child, lines }
    }

    /// The next event line (libtest may prefix the first one with "test ... ").
    async fn line(&mut self) -> String {
        let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
            .await
            .expect("child output in time")
            .expect("read")
            .expect("child still running");
        match line.rsplit_once("... ") {
            Some((_, rest)) if !rest.is_empty() => rest.to_owned(),
            _ => line,
        }
    }

    async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL");
        self.child.wait().await.expect("reaped");
    }
}

#[tokio::test]
async fn sigkill_after_scan_then_another_process_logs_in_without_qr() {
    let sb = sandbox(5).await;
    let phone = sb.create_account(PN).expect("account");
    let dir = tempfile::tempdir().expect("tempdir");

    let mut first = Child::spawn(&sb, dir.path());
    loop {
        let line = first.line().await;
        if let Some(qr) = line.strip_prefix("QR ") {
            phone.scan(qr).expect("scan");
        } else if line == "PAIRED" {
            first.kill().await;
            break;
        }
    }

    let mut second = Child::spawn(&sb, dir.path());
    loop {
        let line = second.line().await;
        assert!(
            !line.starts_with("QR "),
            "a second QR after a SIGKILL: {line}"
        );
        if line == "CONNECTED" {
            break;
        }
    }
    second.kill().await;
    assert_eq!(phone.devices().len(), 1, "one linked device");
}
