//! Pairing page states and errors (issue 14, defect 5): a browser gets an HTML page for a
//! bad pairing link (API clients keep the JSON), a session that cannot reach WhatsApp says
//! so with the reason and when it retries (API, pairing page stream, `/ready`), and a
//! 100k-character path or query gets the JSON error body.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::Api;
use wa_engine::ReconnectPolicy;
use wa_engine::noise::TrustRoot;
use wa_server::{AppState, HttpListener, Secret, ServerConfig, Upstream, app};

const KEY: &str = "pairing-states-admin-key-0123456789";
const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

async fn serve(config: ServerConfig) -> (AppState, Api) {
    let state = AppState::start(config).await.expect("start");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = app(state.clone());
    tokio::spawn(async move {
        let _ = axum::serve(HttpListener::new(listener), router).await;
    });
    (state, Api::new(format!("http://{addr}"), Some(KEY)))
}

fn config(dir: &std::path::Path) -> ServerConfig {
    let mut config = ServerConfig::new(dir);
    config.api_key = Some(Secret::new(KEY));
    config
}

/// GET `url` with `headers`: status, content type, body.
async fn get(url: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let mut req = reqwest::Client::new().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, ctype, resp.text().await.expect("body"))
}

/// A row of the error page table: what, path, a header besides Accept, status, code, words
/// on the page.
type Case<'a> = (
    &'a str,
    String,
    Option<(&'a str, &'a str)>,
    u16,
    &'a str,
    &'a str,
);

#[tokio::test]
async fn browsers_get_html_error_pages_and_api_clients_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config(dir.path());
    config.upstream = Upstream::Sandbox;
    let (state, api) = serve(config).await;
    let (status, v) = api.post("/api/sessions", &json!({ "id": "shop" })).await;
    assert_eq!(status, 201, "{v}");
    let base = &api.base;
    let html = [("accept", BROWSER_ACCEPT)];

    // (what, path, headers besides Accept, status, code, words on the page)
    let cases: [Case; 4] = [
        (
            "forged link",
            "/sessions/shop/pair?token=1900000000.forged".to_owned(),
            None,
            401,
            "invalid_link",
            "This link has expired",
        ),
        (
            "no token",
            "/sessions/shop/pair".to_owned(),
            None,
            401,
            "auth_required",
            "This page needs a pairing link",
        ),
        (
            "deleted session",
            "/sessions/gone/pair".to_owned(),
            Some(("x-api-key", KEY)),
            404,
            "session_not_found",
            "This link is no longer valid",
        ),
        (
            "unknown page",
            "/sessions/shop/pairing".to_owned(),
            None,
            404,
            "not_found",
            "Page not found",
        ),
    ];
    for (what, path, extra, want_status, code, words) in &cases {
        let mut headers = html.to_vec();
        headers.extend(extra.iter().copied());
        let (status, ctype, body) = get(&format!("{base}{path}"), &headers).await;
        assert_eq!(status, *want_status, "{what}: {body}");
        assert!(ctype.starts_with("text/html"), "{what}: {ctype}");
        assert!(body.contains(words), "{what}: {body}");
        assert!(
            body.contains(&format!("data-code=\"{code}\"")),
            "{what}: {body}"
        );
        assert!(body.starts_with("<!doctype html>"), "{what}");

        // The same request from an API client: the JSON error, unchanged.
        let (status, ctype, body) = get(&format!("{base}{path}"), extra.as_slice()).await;
        assert_eq!(status, *want_status, "{what} (JSON): {body}");
        assert!(ctype.starts_with("application/json"), "{what}: {ctype}");
        let v: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(v["error"]["code"], *code, "{what}: {v}");
    }
    // API routes stay JSON even for a browser.
    let (status, ctype, _) = get(&format!("{base}/api/sessions/gone"), &html).await;
    assert_eq!((status, ctype.as_str()), (401, "application/json"));
    tokio::time::timeout(Duration::from_secs(30), state.shutdown())
        .await
        .expect("shutdown");
}

#[tokio::test]
async fn a_100k_path_or_query_gets_the_json_error_body() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (state, api) = serve(config(dir.path())).await;
    let long = "a".repeat(100_000);
    let addr = api.base.trim_start_matches("http://").to_owned();
    for target in [
        format!("/{long}"),
        format!("/health?q={long}"),
        format!("/sessions/x/pair?token={long}"),
    ] {
        // HTTP clients refuse to build such a URI: write the request by hand.
        let (head, body) = raw_get(&addr, &target).await;
        assert!(head.starts_with("HTTP/1.1 414 "), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
        let v: Value = serde_json::from_str(&body).expect("a JSON body");
        assert_eq!(v["error"]["code"], "uri_too_long", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // Long but within the limit: the router answers as usual; the server still serves.
    let (status, _, body) = get(&format!("{}/{}", api.base, "b".repeat(60_000)), &[]).await;
    assert_eq!(status, 404, "{body}");
    let (status, v) = api.get("/health").await;
    assert_eq!((status, v["status"].as_str()), (200, Some("ok")));
    tokio::time::timeout(Duration::from_secs(30), state.shutdown())
        .await
        .expect("shutdown");
}

/// `GET target` over a fresh connection, written by hand: the response head and body.
async fn raw_get(addr: &str, target: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request =
        format!("GET {target} HTTP/1.1\r\nhost: {addr}\r\naccept: {BROWSER_ACCEPT}\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut response))
        .await
        .expect("the server answers and closes")
        .expect("read");
    let text = String::from_utf8(response).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    (head.to_owned(), body.to_owned())
}

/// The next `state` event of a pairing page stream.
async fn next_state(stream: &mut reqwest::Response, buf: &mut String) -> Value {
    loop {
        if let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            if let Some(data) = frame
                .lines()
                .find_map(|l| l.strip_prefix("data:"))
                .filter(|_| frame.contains("event: state") || frame.contains("event:state"))
            {
                return serde_json::from_str(data.trim()).expect("state JSON");
            }
            continue;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(30), stream.chunk())
            .await
            .expect("a state event in time")
            .expect("chunk")
            .expect("stream open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn an_unreachable_upstream_is_shown_with_its_reason_and_retry_time() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config(dir.path());
    config.upstream = Upstream::Custom {
        url: format!("ws://127.0.0.1:{closed}/ws/chat"),
        trust_root: TrustRoot::new([9; 32], 0),
    };
    config.reconnect = ReconnectPolicy {
        initial: Duration::from_millis(400),
        max: Duration::from_secs(2),
        rate_limited: Duration::from_secs(2),
    };
    let (state, api) = serve(config).await;
    let (status, v) = api.post("/api/sessions", &json!({ "id": "down" })).await;
    assert_eq!(status, 201, "{v}");

    // The session resource says why and when.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let info = loop {
        let (_, info) = api.get("/api/sessions/down").await;
        if info["retry"]["attempts"].as_u64().is_some_and(|n| n >= 1) {
            break info;
        }
        assert!(tokio::time::Instant::now() < deadline, "no retry: {info}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(info["status"], "connecting", "{info}");
    let reason = info["retry"]["reason"].as_str().expect("reason");
    assert!(reason.starts_with("cannot connect"), "{info}");
    assert!(info["retry"]["retry_at"].as_u64().is_some(), "{info}");

    // /ready: still 200, but degraded, naming the session; strict probes get 503.
    let (status, ready) = api.get("/ready").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["degraded"][0]["id"], "down", "{ready}");
    let (status, strict) = api.get("/ready?strict=true").await;
    assert_eq!(status, 503, "{strict}");
    assert_eq!(strict["error"]["code"], "degraded", "{strict}");

    // The pairing page stream: the retry with its reason and countdown, updated on each
    // attempt (no event is emitted for them).
    let resp = reqwest::Client::new()
        .get(format!("{}/sessions/down/pair/events", api.base))
        .header("x-api-key", KEY)
        .send()
        .await
        .expect("events");
    assert_eq!(resp.status(), 200);
    let mut stream = resp;
    let mut buf = String::new();
    let first = next_state(&mut stream, &mut buf).await;
    assert_eq!(first["status"], "connecting", "{first}");
    let attempts = first["retry"]["attempts"].as_u64().expect("attempts");
    assert!(first["retry"]["retry_in_ms"].as_u64().is_some(), "{first}");
    assert!(
        first["retry"]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("cannot connect")),
        "{first}"
    );
    let later = next_state(&mut stream, &mut buf).await;
    assert!(
        later["retry"]["attempts"].as_u64() > Some(attempts),
        "{first} then {later}"
    );
    drop(stream);
    tokio::time::timeout(Duration::from_secs(30), state.shutdown())
        .await
        .expect("shutdown");
}
