//! `/metrics` reflects reality (issue 14, defect 6): `wa_reconnects_total` and the
//! per-session series count the retries of a session whose upstream is unreachable, both
//! before it ever connected (a closed port) and after a connected upstream went away (a
//! stopped sandbox); the session's state shows per session.

mod support;

use std::time::Duration;

use serde_json::json;
use support::Api;
use wa_engine::ReconnectPolicy;
use wa_engine::noise::TrustRoot;
use wa_sandbox::{Sandbox, SandboxConfig};
use wa_server::{AppState, Secret, ServerConfig, Upstream, app};

const KEY: &str = "metrics-admin-key-0123456789abcdef";

/// A server whose sessions connect to `url` (root `trust_root`), retrying quickly.
async fn server(url: String, trust_root: TrustRoot) -> (AppState, Api, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ServerConfig::new(dir.path());
    config.api_key = Some(Secret::new(KEY));
    config.upstream = Upstream::Custom { url, trust_root };
    config.reconnect = ReconnectPolicy {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(100),
        rate_limited: Duration::from_millis(100),
    };
    let state = AppState::start(config).await.expect("start");
    let base = support::serve_router(app(state.clone())).await;
    (state, Api::new(base.clone(), Some(KEY)), dir)
}

/// The value of the series `series` (name plus labels, exactly as exposed), if present.
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        line.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

async fn scrape(api: &Api) -> String {
    let (status, body) = api.get_bytes("/metrics").await;
    assert_eq!(status, 200);
    String::from_utf8(body).expect("UTF-8 exposition")
}

/// Scrapes until `series` is at least `at_least` (30 s at most); the last exposition.
async fn wait_for(api: &Api, series: &str, at_least: f64) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = scrape(api).await;
        if value(&metrics, series).is_some_and(|v| v >= at_least) {
            return metrics;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series} never reached {at_least}:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn retries_against_a_closed_port_are_counted() {
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let (state, api, _dir) = server(
        format!("ws://127.0.0.1:{closed}/ws/chat"),
        TrustRoot::new([7; 32], 0),
    )
    .await;
    let metrics = scrape(&api).await;
    assert_eq!(
        value(&metrics, "wa_reconnects_total"),
        Some(0.0),
        "{metrics}"
    );
    let (status, v) = api.post("/api/sessions", &json!({ "id": "down" })).await;
    assert_eq!(status, 201, "{v}");

    let metrics = wait_for(&api, "wa_reconnects_total", 3.0).await;
    assert!(
        value(&metrics, "wa_session_reconnects_total{session=\"down\"}").is_some_and(|v| v >= 3.0),
        "{metrics}"
    );
    assert_eq!(
        value(
            &metrics,
            "wa_session_state{session=\"down\",state=\"connecting\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        value(&metrics, "wa_sessions{state=\"connecting\"}"),
        Some(1.0),
        "{metrics}"
    );
    // And it keeps rising while the port stays closed.
    let before = value(&metrics, "wa_reconnects_total").unwrap_or_default();
    wait_for(&api, "wa_reconnects_total", before + 2.0).await;
    tokio::time::timeout(Duration::from_secs(30), state.shutdown())
        .await
        .expect("shutdown");
}

#[tokio::test]
async fn retries_after_the_upstream_stopped_are_counted() {
    let sb = Sandbox::start(SandboxConfig::default().with_seed(31))
        .await
        .expect("sandbox");
    let phone = sb.create_account("15550004444").expect("account");
    let (state, api, _dir) = server(sb.ws_url().to_owned(), sb.trust_root()).await;
    let (status, v) = api.post("/api/sessions", &json!({ "id": "lost" })).await;
    assert_eq!(status, 201, "{v}");
    api.wait_status("lost", "qr").await;
    let (_, qr) = api.get("/api/sessions/lost/qr").await;
    phone.scan(qr["qr"].as_str().expect("qr")).expect("scan");
    api.wait_status("lost", "connected").await;
    let metrics = scrape(&api).await;
    assert_eq!(
        value(
            &metrics,
            "wa_session_state{session=\"lost\",state=\"connected\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    let before = value(&metrics, "wa_reconnects_total").unwrap_or_default();

    sb.shutdown().await;
    let metrics = wait_for(&api, "wa_reconnects_total", before + 3.0).await;
    assert!(
        value(&metrics, "wa_session_reconnects_total{session=\"lost\"}")
            .is_some_and(|v| v >= before + 3.0),
        "{metrics}"
    );
    assert_eq!(
        value(
            &metrics,
            "wa_session_state{session=\"lost\",state=\"connected\"}"
        ),
        None,
        "{metrics}"
    );
    tokio::time::timeout(Duration::from_secs(30), state.shutdown())
        .await
        .expect("shutdown");
}
