//! Shared helpers of the wa-server tests: a JSON HTTP client over loopback, a webhook
//! receiver (on 127.0.0.1 unless told) that checks signatures independently, polling,
//! serving a router or a server on 127.0.0.1:0, a server on its embedded sandbox with a
//! session paired by the sandbox phone, and a second account's engine client.
#![allow(dead_code)]

mod peer;

#[allow(unused_imports)] // not every test uses it
pub(crate) use peer::Peer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use wa_engine::{Client, Event, Jid, MemoryStore, Store};
use wa_server::{AppState, Secret, ServerConfig, Upstream, app};

/// One POST the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) event_id: String,
    pub(crate) timestamp: u64,
    pub(crate) signature: String,
    pub(crate) body: Vec<u8>,
    pub(crate) envelope: Value,
    /// Whether the receiver answered 2xx.
    pub(crate) accepted: bool,
    /// The path it was POSTed to (`/hook`, or `/hook/<suffix>` for per-event URLs).
    pub(crate) path: String,
    /// Every header, names in lower case.
    pub(crate) headers: Vec<(String, String)>,
}

impl Received {
    /// Recomputes `sha256=hex(HMAC-SHA256(secret, "<ts>.<body>"))` with the hmac crate.
    pub(crate) fn signature_valid(&self, secret: &str) -> bool {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(format!("{}.", self.timestamp).as_bytes());
        mac.update(&self.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        expected == self.signature
    }
}

/// A webhook receiver on 127.0.0.1:0.
#[derive(Clone)]
pub(crate) struct Receiver {
    pub(crate) addr: SocketAddr,
    pub(crate) log: Arc<Mutex<Vec<Received>>>,
    pub(crate) failing: Arc<AtomicBool>,
}

#[derive(Clone)]
struct RxState {
    log: Arc<Mutex<Vec<Received>>>,
    failing: Arc<AtomicBool>,
}

async fn receive(
    State(s): State<RxState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let accepted = !s.failing.load(Ordering::SeqCst);
    s.log.lock().expect("log").push(Received {
        event_id: h("x-wa-event-id"),
        timestamp: h("x-wa-timestamp").parse().unwrap_or(0),
        signature: h("x-wa-signature"),
        envelope: serde_json::from_slice(&body).unwrap_or(Value::Null),
        body: body.to_vec(),
        accepted,
        path: uri.path().to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
    });
    if accepted {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

impl Receiver {
    pub(crate) async fn start(failing: bool) -> Self {
        Self::start_on("127.0.0.1:0", failing).await
    }

    /// A receiver listening on `addr` (e.g. `127.0.0.2:0` or `[::1]:0`).
    pub(crate) async fn start_on(addr: &str, failing: bool) -> Self {
        let log = Arc::new(Mutex::new(Vec::new()));
        let failing = Arc::new(AtomicBool::new(failing));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .route("/hook/{*event}", axum::routing::post(receive))
            .with_state(RxState {
                log: log.clone(),
                failing: failing.clone(),
            });
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, log, failing }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.log.lock().expect("log").clone()
    }

    pub(crate) fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

/// A JSON client for one server.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) base: String,
    pub(crate) key: Option<String>,
    http: reqwest::Client,
}

impl Api {
    pub(crate) fn new(base: impl Into<String>, key: Option<&str>) -> Self {
        Self {
            base: base.into(),
            key: key.map(str::to_owned),
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value, Vec<u8>) {
        let req = match &self.key {
            Some(k) => req.header("x-api-key", k),
            None => req,
        };
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("body").to_vec();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, json, bytes)
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        let (s, v, _) = self
            .send(self.http.get(format!("{}{path}", self.base)))
            .await;
        (s, v)
    }

    pub(crate) async fn get_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        let (s, _, b) = self
            .send(self.http.get(format!("{}{path}", self.base)))
            .await;
        (s, b)
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let (s, v, _) = self
            .send(
                self.http
                    .post(format!("{}{path}", self.base))
                    .header("content-type", "application/json")
                    .body(body.to_string()),
            )
            .await;
        (s, v)
    }

    /// Polls `GET /api/sessions/{id}` until `status` is `want` (60 s at most).
    pub(crate) async fn wait_status(&self, id: &str, want: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (code, v) = self.get(&format!("/api/sessions/{id}")).await;
            if code == 200 && v["status"] == want {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "session {id} never reached {want}; last: {code} {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Polls `f` every 50 ms until it returns `Some` (60 s at most).
pub(crate) async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Serves `router` on 127.0.0.1:0 until `stop` resolves: the base URL and the serving task.
pub(crate) async fn serve_router_until(
    router: axum::Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let serving = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(stop)
            .await;
    });
    (format!("http://{addr}"), serving)
}

/// Serves `router` on 127.0.0.1:0 for the rest of the test: its base URL.
pub(crate) async fn serve_router(router: axum::Router) -> String {
    serve_router_until(router, std::future::pending()).await.0
}

/// Serves `state`'s API on 127.0.0.1:0 until the server shuts down: the base URL and the
/// serving task.
pub(crate) async fn serve_task(state: &AppState) -> (String, tokio::task::JoinHandle<()>) {
    serve_router_until(app(state.clone()), state.shutting_down()).await
}

/// Serves `state`'s API on 127.0.0.1:0 until the server shuts down: its base URL.
pub(crate) async fn serve(state: &AppState) -> String {
    serve_task(state).await.0
}

/// The configuration of a test server on its embedded sandbox: admin key `key`, webhooks
/// retried after 100 ms, and private targets allowed (the test receivers and file servers
/// listen on 127.0.0.1, a non-public target).
pub(crate) fn sandbox_config(dir: &std::path::Path, key: &str) -> ServerConfig {
    let mut config = ServerConfig::new(dir);
    config.api_key = Some(Secret::new(key));
    config.upstream = Upstream::Sandbox;
    config.webhooks.initial_backoff = Duration::from_millis(100);
    config.egress.allow_private_targets = true;
    config
}

/// A served server on [`sandbox_config`] (admin key `key`) changed by `tune`, with its
/// data directory (removed when dropped).
pub(crate) async fn start_sandbox(
    key: &str,
    tune: impl FnOnce(&mut ServerConfig),
) -> (AppState, Api, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = sandbox_config(dir.path(), key);
    tune(&mut config);
    let state = AppState::start(config).await.expect("start");
    let base = serve(&state).await;
    (state, Api::new(base, Some(key)), dir)
}

/// Creates session `id` with a webhook to `hook_url`, has the sandbox phone scan its QR and
/// waits until it is connected: the session's own JID (without device).
pub(crate) async fn pair_session(api: &Api, id: &str, hook_url: &str) -> Jid {
    let (status, created) = api
        .post(
            "/api/sessions",
            &serde_json::json!({ "id": id, "webhooks": [{ "url": hook_url }] }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    api.wait_status(id, "qr").await;
    let (status, scan) = api
        .post(
            &format!("/api/sessions/{id}/sandbox/scan"),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200, "{scan}");
    let info = api.wait_status(id, "connected").await;
    let me: Jid = info["jid"].as_str().expect("jid").parse().expect("JID");
    me.to_non_ad()
}

/// The first webhook `hook` received of type `kind` whose data satisfies `pred` (60 s).
pub(crate) async fn webhook(hook: &Receiver, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
    eventually(&format!("a {kind} webhook"), || {
        hook.received()
            .into_iter()
            .map(|r| r.envelope)
            .find(|e| e["type"] == kind && pred(&e["data"]))
    })
    .await
}

/// The next event of an engine client (30 s at most).
pub(crate) async fn next_event(events: &mut wa_engine::Events) -> Event {
    tokio::time::timeout(Duration::from_secs(30), events.recv())
        .await
        .expect("peer event in time")
        .expect("peer stream open")
}

/// A new account `number` on `state`'s embedded sandbox and its own wa-engine client,
/// linked by that account's phone and connected.
pub(crate) async fn connect_peer(state: &AppState, number: &str) -> (Client, wa_engine::Events) {
    let phone = state
        .sandbox()
        .expect("sandbox")
        .create_account(number)
        .expect("account");
    link_peer(state, &phone).await
}

/// A wa-engine client on `state`'s embedded sandbox linked by `phone` (an account's phone)
/// and connected.
pub(crate) async fn link_peer(
    state: &AppState,
    phone: &wa_sandbox::Phone,
) -> (Client, wa_engine::Events) {
    let sb = state.sandbox().expect("sandbox");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (peer, mut events) = Client::builder(store)
        .url(sb.ws_url())
        .trust_root(sb.trust_root())
        .prekey_batch(30)
        .connect()
        .await
        .expect("peer connects");
    loop {
        match next_event(&mut events).await {
            Event::Qr { code, .. } => {
                phone.scan(&code).expect("scan");
            }
            Event::Connected { .. } => break,
            _ => {}
        }
    }
    (peer, events)
}

/// Spawns `command` (a `wa-server` run with `--bind 127.0.0.1:0`; its stderr as the caller
/// set it) with stdout piped, killed when dropped, and waits (60 s at most) for the
/// `{"listening": URL}` line it prints once bound: the child and that base URL.
pub(crate) async fn spawn_listening(
    mut command: tokio::process::Command,
) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt as _;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn wa-server");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("wa-server prints its address")
        .expect("read")
        .expect("a line");
    let v: Value = serde_json::from_str(&line).expect("JSON line");
    let base = v["listening"].as_str().expect("listening").to_owned();
    (child, base)
}
