//! Shared helpers of the wa-server tests: a JSON HTTP client over loopback, a webhook
//! receiver (on 127.0.0.1 unless told) that checks signatures independently, and polling.
#![allow(dead_code)]

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
