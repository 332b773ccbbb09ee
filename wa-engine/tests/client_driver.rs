//! The tokio `Client` against a scripted WebSocket server on 127.0.0.1:0: QR pairing, the 515
//! restart, reconnects after drops and 503, logout / device removal wiping the store, wrong
//! trust root, QR refs running out, phone-code pairing, and a reopened `SledStore` logging in
//! without a QR.
//!
//! The server is the same scripted responder as tests/conn_flow.rs (noise responder +
//! phone-side pairing functions) behind tokio-tungstenite; wa-sandbox covers the same ground
//! with a full simulated server.
#![cfg(all(feature = "runtime", feature = "sled"))]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use wa_engine::binary::Node;
use wa_engine::conn::Timing;
use wa_engine::pair::{self, code};
use wa_engine::{
    Client, CloseReason, ConnectError, Event, Events, MemoryStore, ReconnectPolicy, SledStore,
    Store,
};

mod conn_support;
use conn_support::{Phone, REFS, Sandbox, server_jid};

/// What the test tells the server's live connection to do.
enum Cmd {
    Scan(String),
    EnterCode(String),
    Send(Node),
    Drop,
}

#[derive(Default)]
struct Companion {
    username: u64,
    device: u32,
    noise_pub: [u8; 32],
}

struct Shared {
    sandbox: Sandbox,
    phone: Phone,
    rng: StdRng,
    companions: Vec<Companion>,
    /// Registration / login attempts seen, in order: "register", "login", "refused".
    log: Vec<&'static str>,
    current: Option<mpsc::UnboundedSender<Cmd>>,
    /// Pending pair-success check: (details, companion identity).
    expect_reply: Option<(Vec<u8>, [u8; 32])>,
    /// Code pairing state on the phone side.
    hello: Option<code::CompanionHelloFields>,
    primary: Option<code::PrimaryHello>,
}

struct MockServer {
    url: String,
    trust_root: wa_engine::noise::TrustRoot,
    shared: Arc<Mutex<Shared>>,
}

impl MockServer {
    async fn start(seed: u64) -> Self {
        let sandbox = Sandbox::new(seed);
        let trust_root = sandbox.trust_root();
        let mut rng = StdRng::seed_from_u64(seed + 1000);
        let phone = Phone::new(&mut rng);
        let shared = Arc::new(Mutex::new(Shared {
            sandbox,
            phone,
            rng,
            companions: Vec::new(),
            log: Vec::new(),
            current: None,
            expect_reply: None,
            hello: None,
            primary: None,
        }));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ws://{}/ws/chat", listener.local_addr().expect("addr"));
        let s = shared.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    if let Ok(ws) = tokio_tungstenite::accept_async(stream).await {
                        serve(ws, s).await;
                    }
                });
            }
        });
        Self {
            url,
            trust_root,
            shared,
        }
    }

    fn cmd(&self, cmd: Cmd) {
        let tx = self
            .shared
            .lock()
            .expect("lock")
            .current
            .clone()
            .expect("a live connection");
        tx.send(cmd).expect("connection task alive");
    }

    fn log(&self) -> Vec<&'static str> {
        self.shared.lock().expect("lock").log.clone()
    }

    fn client(&self, store: Arc<dyn Store>) -> wa_engine::ClientBuilder {
        Client::builder(store)
            .url(self.url.clone())
            .trust_root(self.trust_root)
            .reconnect_policy(ReconnectPolicy {
                initial: Duration::from_millis(20),
                max: Duration::from_millis(200),
                rate_limited: Duration::from_millis(200),
            })
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

fn result_iq(id: &str) -> Node {
    Node::new("iq")
        .attr("from", server_jid())
        .attr("type", "result")
        .attr("id", id.to_owned())
}

/// One server connection: handshake, then registration or login, then answer IQs and obey
/// the test's commands.
async fn serve(mut ws: Ws, shared: Arc<Mutex<Shared>>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut server = {
        let mut s = shared.lock().expect("lock");
        s.current = Some(tx);
        s.sandbox.accept()
    };
    let mut started = false;
    loop {
        let mut outgoing: Vec<Node> = Vec::new();
        let mut close_after = false;
        tokio::select! {
            msg = ws.next() => {
                let Some(Ok(Message::Binary(bytes))) = msg else { return };
                let nodes = server.receive(&bytes);
                let hello = server.take_out();
                if !hello.is_empty() && ws.send(Message::Binary(hello.into())).await.is_err() {
                    return;
                }
                if !started && let Some(payload) = server.payload.clone() {
                    started = true;
                    let mut s = shared.lock().expect("lock");
                    if payload.device_pairing_data.is_some() {
                        s.log.push("register");
                        outgoing.push(conn_support::pair_device(&REFS));
                    } else {
                        let known = s.companions.iter().any(|c| {
                            Some(c.username) == payload.username
                                && Some(c.device) == payload.device
                                && Some(c.noise_pub) == server.client_static
                        });
                        if known {
                            s.log.push("login");
                            let lid = s.phone.lid.clone();
                            outgoing.push(Node::new("success").attr("t", "1700000000").attr("lid", lid));
                        } else {
                            s.log.push("refused");
                            outgoing.push(Node::new("failure").attr("reason", "401"));
                        }
                    }
                }
                for node in nodes {
                    let (replies, close) = answer(&shared, &server, &node);
                    outgoing.extend(replies);
                    close_after |= close;
                }
            }
            cmd = rx.recv() => match cmd {
                None | Some(Cmd::Drop) => return,
                Some(Cmd::Send(node)) => outgoing.push(node),
                Some(Cmd::Scan(qr)) => {
                    let mut s = shared.lock().expect("lock");
                    let s = &mut *s;
                    let (node, details, companion) = s.phone.pair_success(&mut s.rng, &qr);
                    s.expect_reply = Some((details, companion));
                    outgoing.push(node);
                }
                Some(Cmd::EnterCode(typed)) => {
                    let mut s = shared.lock().expect("lock");
                    let s = &mut *s;
                    let hello = s.hello.clone().expect("companion_hello first");
                    let typed = code::PairingCode::parse(&typed).expect("code");
                    let primary = code::primary_hello(&mut s.rng, &typed, &hello.wrapped_companion_ephemeral_pub)
                        .expect("primary hello");
                    outgoing.push(code::primary_hello_notification(
                        "4242",
                        1_700_000_000,
                        &primary.wrapped_primary_ephemeral_pub,
                        s.phone.identity.public(),
                        b"2@code-ref",
                    ));
                    s.primary = Some(primary);
                }
            },
        }
        for node in outgoing {
            server.send(&node);
        }
        let out = server.take_out();
        if !out.is_empty() && ws.send(Message::Binary(out.into())).await.is_err() {
            return;
        }
        if close_after {
            let _ = ws.close(None).await;
            return;
        }
    }
}

/// The server's answer to one client node; `true` = close after sending.
fn answer(
    shared: &Arc<Mutex<Shared>>,
    server: &conn_support::Server,
    node: &Node,
) -> (Vec<Node>, bool) {
    if node.tag != "iq" {
        return (Vec::new(), false);
    }
    let id = node.get_attr_str("id").unwrap_or_default().to_owned();
    let mut s = shared.lock().expect("lock");
    let s = &mut *s;
    if node.child_by_tag("pair-device-sign").is_some() {
        let (details, companion) = s.expect_reply.take().expect("a pair-success was sent");
        pair::verify_pair_device_sign(node, &details, &companion, s.phone.identity.public())
            .expect("device signature verifies");
        s.companions.push(Companion {
            username: s.phone.jid.user().parse().expect("pn"),
            device: u32::from(s.phone.jid.device()),
            noise_pub: server.client_static.expect("static"),
        });
        return (vec![Node::new("stream:error").attr("code", "515")], true);
    }
    if let Ok(hello) = code::parse_companion_hello(node) {
        s.hello = Some(hello);
        return (
            vec![code::companion_hello_result(&id, b"2@code-ref")],
            false,
        );
    }
    if let Ok(finish) = code::parse_companion_finish(node) {
        let primary = s.primary.take().expect("primary_hello first");
        let phone_identity = x25519_dalek::StaticSecret::from(*s.phone.identity.private_bytes());
        let done = code::primary_finish(
            &primary.ephemeral,
            &primary.companion_ephemeral_pub,
            &phone_identity,
            &finish.wrapped_key_bundle,
        )
        .expect("bundle decrypts");
        let (ps, details, companion) =
            s.phone
                .pair_success_for(&mut s.rng, &done.companion_identity_pub, &done.adv_secret);
        s.expect_reply = Some((details, companion));
        return (vec![result_iq(&id), ps], false);
    }
    if node.child_by_tag("remove-companion-device").is_some() {
        s.companions.clear();
        return (vec![result_iq(&id)], false);
    }
    match node.get_attr_str("type") {
        Some("get") | Some("set") => {
            let mut r = result_iq(&id);
            if node.get_attr_str("xmlns") == Some("encrypt") {
                r = r.with_children([Node::new("count").attr("value", "812")]);
            }
            (vec![r], false)
        }
        _ => (Vec::new(), false),
    }
}

async fn next(events: &mut Events) -> Event {
    tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .expect("an event within 20 s")
        .expect("event stream open")
}

/// Wait for the first event matching `f`, returning it and everything skipped before.
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

#[tokio::test]
async fn qr_scan_restarts_logs_in_reconnects_and_survives_a_reopened_store() {
    let server = MockServer::start(1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).expect("sled"));
    let (client, mut events) = server
        .client(store.clone())
        .connect()
        .await
        .expect("connect");

    let Event::Qr { code, expires_in } = next(&mut events).await else {
        panic!("first event is a QR");
    };
    assert_eq!(expires_in, Duration::from_secs(60));
    server.cmd(Cmd::Scan(code));
    let (ev, _) = until(&mut events, |e| matches!(e, Event::PairSuccess { .. })).await;
    let Event::PairSuccess { jid, .. } = ev else {
        unreachable!()
    };
    assert_eq!(jid.to_string(), "15551234567:7@s.whatsapp.net");
    assert_eq!(
        next(&mut events).await,
        Event::Disconnected {
            reason: CloseReason::RestartRequired,
            reconnecting: true
        }
    );
    assert!(matches!(next(&mut events).await, Event::Connected { .. }));
    assert!(client.is_connected());
    assert_eq!(
        client.jid().map(|j| j.to_string()).as_deref(),
        Some("15551234567:7@s.whatsapp.net")
    );

    // A dropped socket reconnects with backoff and logs in again, without a QR.
    server.cmd(Cmd::Drop);
    let (ev, skipped) = until(&mut events, |e| matches!(e, Event::Connected { .. })).await;
    assert!(matches!(ev, Event::Connected { .. }));
    assert_eq!(
        skipped,
        vec![Event::Disconnected {
            reason: CloseReason::ConnectionLost,
            reconnecting: true
        }]
    );

    // 503 reconnects too.
    server.cmd(Cmd::Send(Node::new("stream:error").attr("code", "503")));
    let (_, skipped) = until(&mut events, |e| matches!(e, Event::Connected { .. })).await;
    assert_eq!(
        skipped,
        vec![Event::Disconnected {
            reason: CloseReason::ServiceUnavailable,
            reconnecting: true
        }]
    );

    // A restarted process: shut down, reopen the sled store, log in without a QR.
    client.shutdown().await;
    assert_eq!(
        until(&mut events, |e| *e == Event::Stopped).await.0,
        Event::Stopped
    );
    drop(store);
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).expect("reopen"));
    let (client, mut events) = server
        .client(store.clone())
        .connect()
        .await
        .expect("reconnect");
    let first = next(&mut events).await;
    assert!(
        matches!(first, Event::Connected { .. }),
        "no QR after a restart: {first:?}"
    );
    assert_eq!(
        server.log(),
        vec!["register", "login", "login", "login", "login"]
    );

    // The phone removes the device: logged out, store wiped, stopped.
    server.cmd(Cmd::Send(
        Node::new("stream:error")
            .attr("code", "401")
            .with_children([Node::new("conflict").attr("type", "device_removed")]),
    ));
    assert_eq!(
        next(&mut events).await,
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
async fn wrong_trust_root_fails_connect_with_a_typed_error() {
    let server = MockServer::start(2).await;
    let other = Sandbox::new(99);
    let err = Client::builder(Arc::new(MemoryStore::new()))
        .url(server.url.clone())
        .trust_root(other.trust_root())
        .connect()
        .await
        .expect_err("the certificate chain must not verify");
    assert!(
        matches!(err, ConnectError::Closed(CloseReason::BadServerCertificate)),
        "{err:?}"
    );
}

#[tokio::test]
async fn qr_refs_running_out_stops_without_a_reconnect_loop() {
    let server = MockServer::start(3).await;
    let timing = Timing {
        qr_first: Duration::from_millis(60),
        qr_next: Duration::from_millis(20),
        ..Timing::default()
    };
    let (_client, mut events) = server
        .client(Arc::new(MemoryStore::new()))
        .timing(timing)
        .connect()
        .await
        .expect("connect");
    let (ev, skipped) = until(&mut events, |e| !matches!(e, Event::Qr { .. })).await;
    assert_eq!(skipped.len(), 6, "one QR per ref");
    assert_eq!(
        ev,
        Event::Disconnected {
            reason: CloseReason::QrRefsExhausted,
            reconnecting: false
        }
    );
    assert_eq!(next(&mut events).await, Event::Stopped);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.log(), vec!["register"], "no second registration");
}

#[tokio::test]
async fn phone_code_pairing_then_logout_wipes_the_store() {
    let server = MockServer::start(4).await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (client, mut events) = server
        .client(store.clone())
        .connect()
        .await
        .expect("connect");
    assert!(matches!(next(&mut events).await, Event::Qr { .. }));
    let shown = client
        .request_pairing_code("+1 (555) 123-4567")
        .await
        .expect("pairing code");
    assert_eq!(shown.len(), 9);
    assert_eq!(&shown[4..5], "-");
    let (ev, _) = until(&mut events, |e| matches!(e, Event::PairingCode { .. })).await;
    assert_eq!(
        ev,
        Event::PairingCode {
            code: shown.clone()
        }
    );
    server.cmd(Cmd::EnterCode(shown));
    until(&mut events, |e| matches!(e, Event::PairSuccess { .. })).await;
    until(&mut events, |e| matches!(e, Event::Connected { .. })).await;
    let adv = store
        .credentials()
        .expect("read")
        .expect("stored")
        .adv_secret_key;
    assert_ne!(adv, [0; 32]);

    // A pairing code once paired is refused.
    assert_eq!(
        client.request_pairing_code("15551234567").await,
        Err(wa_engine::SendError::NotPairing)
    );

    client.logout().await.expect("logout");
    let (ev, _) = until(&mut events, |e| matches!(e, Event::LoggedOut { .. })).await;
    assert_eq!(
        ev,
        Event::LoggedOut {
            reason: CloseReason::LocalLogout
        }
    );
    assert_eq!(next(&mut events).await, Event::Stopped);
    assert!(store.credentials().expect("read").is_none());
}

#[tokio::test]
async fn dropping_every_client_handle_keeps_events_flowing() {
    let server = MockServer::start(5).await;
    let (client, mut events) = server
        .client(Arc::new(MemoryStore::new()))
        .connect()
        .await
        .expect("connect");
    drop(client);
    let Event::Qr { code, .. } = next(&mut events).await else {
        panic!("QR expected");
    };
    server.cmd(Cmd::Scan(code));
    until(&mut events, |e| matches!(e, Event::Connected { .. })).await;
}

/// Env var that turns [`child_process_entry`] into the child of
/// [`sigkill_right_after_pairing_loses_nothing`].
const CHILD_ENV: &str = "WA_ENGINE_CLIENT_CHILD";

/// Not a test of its own: the body of the child process that
/// [`sigkill_right_after_pairing_loses_nothing`] starts (it returns at once otherwise). It
/// pairs with the parent's server over a SledStore and prints its events on stdout.
#[tokio::test]
async fn child_process_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.split(' ');
    let (url, root, dir) = (
        parts.next().expect("url"),
        parts.next().expect("root"),
        parts.next().expect("dir"),
    );
    let root: [u8; 32] = hex::decode(root)
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir).expect("sled"));
    let (_client, mut events) = Client::builder(store)
        .url(url)
        .trust_root(wa_engine::noise::TrustRoot::new(root, 0))
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

#[tokio::test]
async fn sigkill_right_after_pairing_loses_nothing() {
    use tokio::io::AsyncBufReadExt as _;
    let server = MockServer::start(6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = format!(
        "{} {} {}",
        server.url,
        hex::encode(server.trust_root.public_key()),
        dir.path().display()
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
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut scanned = false;
    loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("child output in time")
            .expect("read")
            .expect("child still running");
        // libtest may print "test child_process_entry ... " in front of the first line.
        if let Some((_, qr)) = line.split_once("QR ")
            && !scanned
        {
            scanned = true;
            server.cmd(Cmd::Scan(qr.to_owned()));
        } else if line.ends_with("PAIRED") {
            // SIGKILL: no destructor, no flush, no graceful close.
            child.start_kill().expect("kill");
            break;
        }
    }
    child.wait().await.expect("reaped");

    // A new process (here: this one) reopens the store and logs in without a QR.
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).expect("reopen"));
    assert!(
        store
            .credentials()
            .expect("read")
            .expect("stored")
            .is_paired()
    );
    let (_client, mut events) = server.client(store).connect().await.expect("connect");
    let first = next(&mut events).await;
    assert!(
        matches!(first, Event::Connected { .. }),
        "no QR after SIGKILL: {first:?}"
    );
    // The child may or may not have logged in before it died; it never registered twice.
    let log = server.log();
    assert_eq!(
        log.iter().filter(|l| **l == "register").count(),
        1,
        "{log:?}"
    );
    assert_eq!(log.last(), Some(&"login"), "{log:?}");
}
