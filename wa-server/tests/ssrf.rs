//! The SSRF guard (issue 14, defect 3): webhook URLs and media URLs that point at, resolve
//! to, or redirect to a non-public address are refused by default with 400
//! `target_not_allowed` naming the flag that allows them, and allowed with
//! `--allow-private-targets` (`EgressSettings::allow_private_targets`).
//!
//! The machine running this has no public DNS: host names are mapped with
//! `EgressSettings::resolve`, which feeds the same guarded resolver as DNS answers do; the
//! "public" first hop of the redirect case is 127.0.0.1 allowed by `allowed_cidrs`
//! (127.0.0.1/32), standing in for an address on the internet.

mod support;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{StatusCode, header};
use serde_json::{Value, json};
use support::{Api, Receiver, eventually};
use wa_server::{ALLOW_FLAG, AppState, Secret, ServerConfig, Upstream, app};

const KEY: &str = "ssrf-admin-key-0123456789abcdef";
/// A recipient with a sandbox account.
const PEER: &str = "15550003333";

/// A file server: `/doc.txt` (counted), `/to-private` redirecting to `private_target`.
#[derive(Clone)]
struct Files {
    base: String,
    port: u16,
    hits: Arc<AtomicUsize>,
}

async fn files_on(addr: &str, private_target: Option<String>) -> Files {
    use axum::routing::get;
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let target = private_target.unwrap_or_default();
    let router = axum::Router::new()
        .route(
            "/doc.txt",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async { "a plain text document\n" }
            }),
        )
        .route(
            "/to-private",
            get(move || {
                let target = target.clone();
                async move { (StatusCode::FOUND, [(header::LOCATION, target)]) }
            }),
        );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("bind file server");
    let local = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Files {
        base: format!("http://{local}"),
        port: local.port(),
        hits,
    }
}

impl Files {
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

struct Server {
    state: AppState,
    api: Api,
    _dir: tempfile::TempDir,
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// A sandbox-mode server with session `m` connected; `tune` sets the egress policy.
async fn server(tune: impl FnOnce(&mut ServerConfig)) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ServerConfig::new(dir.path());
    config.api_key = Some(Secret::new(KEY));
    config.upstream = Upstream::Sandbox;
    config.media.fetch_timeout = Duration::from_secs(3);
    config.webhooks.initial_backoff = Duration::from_millis(100);
    config.egress.resolve = vec![
        ("private.example.test".to_owned(), vec![ip("127.0.0.1")]),
        ("internal.example.test".to_owned(), vec![ip("127.0.0.2")]),
        ("public.example.test".to_owned(), vec![ip("127.0.0.1")]),
    ];
    tune(&mut config);
    let state = AppState::start(config).await.expect("start");
    let base = support::serve_router(app(state.clone())).await;
    let api = Api::new(base.clone(), Some(KEY));
    state
        .sandbox()
        .expect("sandbox")
        .create_account(PEER)
        .expect("peer account");
    let (status, v) = api.post("/api/sessions", &json!({ "id": "m" })).await;
    assert_eq!(status, 201, "{v}");
    api.wait_status("m", "qr").await;
    let (status, scan) = api.post("/api/sessions/m/sandbox/scan", &json!({})).await;
    assert_eq!(status, 200, "{scan}");
    api.wait_status("m", "connected").await;
    Server {
        state,
        api,
        _dir: dir,
    }
}

impl Server {
    async fn send_document(&self, url: &str) -> (u16, Value) {
        self.api
            .post(
                "/api/sessions/m/messages/document",
                &json!({ "to": PEER, "url": url, "file_name": "doc.txt" }),
            )
            .await
    }

    async fn add_webhook(&self, url: &str) -> (u16, Value) {
        self.api
            .post("/api/sessions/m/webhooks", &json!({ "url": url }))
            .await
    }

    async fn stop(self) {
        tokio::time::timeout(Duration::from_secs(30), self.state.shutdown())
            .await
            .expect("shutdown");
    }
}

fn assert_refused(what: &str, (status, body): (u16, Value)) {
    assert_eq!(status, 400, "{what}: {body}");
    assert_eq!(
        body["error"]["code"], "target_not_allowed",
        "{what}: {body}"
    );
    assert_eq!(body["error"]["allowed_by"], ALLOW_FLAG, "{what}: {body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(ALLOW_FLAG), "{what}: {message}");
}

fn assert_not_refused(what: &str, (status, body): &(u16, Value)) {
    assert_ne!(
        body["error"]["code"], "target_not_allowed",
        "{what}: {status} {body}"
    );
}

/// The acceptance table, media URLs: each refused by default (before any byte is fetched)
/// and fetched with the flag.
#[tokio::test]
async fn media_urls_to_non_public_targets_are_refused_by_default_and_allowed_with_the_flag() {
    let v4 = files_on("127.0.0.1:0", None).await;
    let v4b = files_on("127.0.0.2:0", None).await;
    let v6 = files_on("[::1]:0", None).await;
    // (what, URL, the file server that answers it when allowed, if any)
    let table: Vec<(&str, String, Option<&Files>)> = vec![
        (
            "cloud metadata",
            "http://169.254.169.254/latest/meta-data/iam".to_owned(),
            None,
        ),
        (
            "localhost",
            format!("http://localhost:{}/doc.txt", v4.port),
            Some(&v4),
        ),
        (
            "127.0.0.2",
            format!("http://127.0.0.2:{}/doc.txt", v4b.port),
            Some(&v4b),
        ),
        (
            "[::1]",
            format!("http://[::1]:{}/doc.txt", v6.port),
            Some(&v6),
        ),
        (
            "IPv4-mapped loopback",
            format!("http://[::ffff:127.0.0.1]:{}/doc.txt", v4.port),
            Some(&v4),
        ),
        ("10.0.0.1", "http://10.0.0.1/doc.txt".to_owned(), None),
        (
            "a name resolving to loopback",
            format!("http://private.example.test:{}/doc.txt", v4.port),
            Some(&v4),
        ),
    ];

    let guarded = server(|_| {}).await;
    for (what, url, files) in &table {
        let before = files.map(Files::hits);
        assert_refused(what, guarded.send_document(url).await);
        assert_eq!(files.map(Files::hits), before, "{what}: nothing fetched");
    }
    guarded.stop().await;

    let open = server(|c| c.egress.allow_private_targets = true).await;
    for (what, url, files) in &table {
        let before = files.map(Files::hits);
        let answer = open.send_document(url).await;
        assert_not_refused(what, &answer);
        if let (Some(files), Some(before)) = (files, before) {
            assert_eq!(files.hits(), before + 1, "{what}: fetched once; {answer:?}");
            assert_eq!(answer.0, 201, "{what}: {answer:?}");
        }
    }
    open.stop().await;
}

/// The redirect row: a first hop that is allowed (127.0.0.1/32 is on the allow-list,
/// standing in for a public address) redirects to a private one, by name and by literal.
#[tokio::test]
async fn a_redirect_to_a_private_target_is_refused_by_default_and_allowed_with_the_flag() {
    let private = files_on("127.0.0.2:0", None).await;
    let by_name = files_on(
        "127.0.0.1:0",
        Some(format!(
            "http://internal.example.test:{}/doc.txt",
            private.port
        )),
    )
    .await;
    let by_literal = files_on(
        "127.0.0.1:0",
        Some(format!("http://127.0.0.2:{}/doc.txt", private.port)),
    )
    .await;
    let first_hops = [
        format!("http://public.example.test:{}/to-private", by_name.port),
        format!("{}/to-private", by_literal.base),
    ];

    let public = server(|c| {
        c.egress.allowed_cidrs = vec!["127.0.0.1/32".parse().expect("cidr")];
    })
    .await;
    // The allow-listed first hop itself is fetched.
    let direct = public
        .send_document(&format!(
            "http://public.example.test:{}/doc.txt",
            by_name.port
        ))
        .await;
    assert_eq!(direct.0, 201, "{direct:?}");
    for url in &first_hops {
        assert_refused(url, public.send_document(url).await);
    }
    assert_eq!(private.hits(), 0, "the private target was never asked");
    public.stop().await;

    let open = server(|c| c.egress.allow_private_targets = true).await;
    for (n, url) in first_hops.iter().enumerate() {
        let answer = open.send_document(url).await;
        assert_eq!(answer.0, 201, "{url}: {answer:?}");
        assert_eq!(private.hits(), n + 1, "{url}");
    }
    open.stop().await;
}

/// The acceptance table, webhooks: IP literals and `localhost` are refused when registered;
/// a name that resolves to a private address is refused at each delivery (its stats say
/// which flag allows it). With the flag every one registers and the reachable ones get
/// signed deliveries.
#[tokio::test]
async fn webhooks_to_non_public_targets_are_refused_by_default_and_allowed_with_the_flag() {
    let rx = Receiver::start(false).await;
    let rx2 = Receiver::start_on("127.0.0.2:0", false).await;
    let rx6 = Receiver::start_on("[::1]:0", false).await;
    let rx_named = Receiver::start(false).await;
    let literal_table = [
        (
            "cloud metadata",
            "http://169.254.169.254/hook".to_owned(),
            None,
        ),
        (
            "localhost",
            format!("http://localhost:{}/hook", rx.addr.port()),
            Some(&rx),
        ),
        ("127.0.0.2", rx2.url(), Some(&rx2)),
        ("[::1]", rx6.url(), Some(&rx6)),
        ("10.0.0.1", "http://10.0.0.1/hook".to_owned(), None),
    ];
    let named = format!("http://private.example.test:{}/hook", rx_named.addr.port());

    let guarded = server(|_| {}).await;
    for (what, url, _) in &literal_table {
        assert_refused(what, guarded.add_webhook(url).await);
    }
    // Names are judged where they resolve: registration succeeds, every delivery is refused.
    let (status, v) = guarded.add_webhook(&named).await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = guarded
        .api
        .post("/api/sessions/m/restart", &json!({}))
        .await;
    assert!(status < 300, "{status} {v}");
    let stats = poll("a refused delivery in the webhook stats", || async {
        let (_, stats) = guarded.api.get("/api/sessions/m/webhooks/stats").await;
        let error = stats[0]["last_error"].as_str()?.to_owned();
        Some((stats, error))
    })
    .await;
    let (stats, error) = stats;
    assert!(
        error.contains("target not allowed")
            && error.contains("private.example.test resolves only to a loopback address")
            && error.contains(ALLOW_FLAG),
        "{stats}"
    );
    assert_eq!(stats[0]["delivered"], 0, "{stats}");
    assert!(
        rx_named.received().is_empty(),
        "nothing reached the receiver"
    );
    guarded.stop().await;

    let open = server(|c| c.egress.allow_private_targets = true).await;
    let mut ids = Vec::new();
    for (what, url, _) in &literal_table {
        let (status, v) = open.add_webhook(url).await;
        assert_eq!(status, 201, "{what}: {v}");
        ids.push(v["id"].as_str().expect("id").to_owned());
    }
    let (status, v) = open.add_webhook(&named).await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = open.api.post("/api/sessions/m/restart", &json!({})).await;
    assert!(status < 300, "{status} {v}");
    let receivers = literal_table
        .iter()
        .filter_map(|(what, _, rx)| rx.map(|rx| (*what, rx)))
        .chain([("a name resolving to loopback", &rx_named)]);
    for (what, rx) in receivers {
        let got = eventually(&format!("a delivery to {what}"), || {
            rx.received().into_iter().find(|r| r.accepted)
        })
        .await;
        assert_eq!(got.envelope["session"], "m", "{what}");
    }
    open.stop().await;
}

/// Polls the async `f` every 50 ms until it returns `Some` (60 s at most).
async fn poll<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
