//! End to end over HTTP on loopback with the embedded sandbox: create a session, fetch the
//! QR, the sandbox phone scans it, the status becomes `connected` (the 515 in between is
//! invisible), webhooks arrive signed, a restart logs in again without a QR, pairing by
//! phone-number code works, logout unlinks.

mod support;

use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use support::{Api, Receiver, eventually};
use wa_server::{AppState, Secret, ServerConfig, Upstream, app};

const KEY: &str = "e2e-admin-key-abcdefghijkl";

async fn serve(state: &AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = app(state.clone());
    let stop = state.shutting_down();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(stop)
            .await;
    });
    format!("http://{addr}")
}

async fn start() -> (AppState, Api, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ServerConfig::new(dir.path());
    config.api_key = Some(Secret::new(KEY));
    config.upstream = Upstream::Sandbox;
    config.webhooks.initial_backoff = Duration::from_millis(100);
    let state = AppState::start(config).await.expect("start");
    let base = serve(&state).await;
    (state, Api::new(base, Some(KEY)), dir)
}

/// Reads an SSE response until `until` appears in the accumulated text (30 s at most).
async fn read_sse_until(resp: &mut reqwest::Response, until: &str) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !text.contains(until) {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {until:?} in the event stream; got:\n{text}"))
            .expect("stream")
            .expect("stream open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

#[tokio::test]
async fn qr_scan_connects_webhooks_are_signed_and_restart_needs_no_qr() {
    let (state, api, _dir) = start().await;
    let receiver = Receiver::start(false).await;

    let (status, created) = api
        .post(
            "/api/sessions",
            &json!({ "id": "e2e", "webhooks": [{ "url": receiver.url() }] }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["webhooks"][0]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    assert!(
        created["token"]
            .as_str()
            .is_some_and(|t| t.starts_with("wst.e2e."))
    );

    api.wait_status("e2e", "qr").await;
    let (status, qr) = api.get("/api/sessions/e2e/qr").await;
    assert_eq!(status, 200, "{qr}");
    let png = base64::engine::general_purpose::STANDARD
        .decode(qr["png_base64"].as_str().expect("png"))
        .expect("base64");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(qr["qr"].as_str().is_some_and(|q| q.contains(',')));
    assert!(qr["expires_at"].as_u64().is_some());
    let (status, png) = api.get_bytes("/api/sessions/e2e/qr.png").await;
    assert_eq!((status, &png[..4]), (200, &b"\x89PNG"[..]));
    let (status, svg) = api.get_bytes("/api/sessions/e2e/qr.svg").await;
    assert!(status == 200 && String::from_utf8_lossy(&svg).contains("<svg"));

    let (status, scan) = api.post("/api/sessions/e2e/sandbox/scan", &json!({})).await;
    assert_eq!(status, 200, "{scan}");
    let info = api.wait_status("e2e", "connected").await;
    assert_eq!(info["jid"], scan["jid"]);
    assert_eq!(
        info["last_error"],
        serde_json::Value::Null,
        "the 515 is not an error"
    );

    // Webhooks: the qr and connection events arrive, each signed with this webhook's secret.
    let connected = eventually("the connected webhook", || {
        receiver.received().into_iter().find(|r| {
            r.envelope["type"] == "connection" && r.envelope["data"]["status"] == "connected"
        })
    })
    .await;
    assert_eq!(connected.envelope["session"], "e2e");
    assert!(connected.event_id.starts_with("evt_"));
    assert_eq!(connected.envelope["id"], connected.event_id.as_str());
    let all = receiver.received();
    assert!(all.iter().any(|r| r.envelope["type"] == "qr"));
    for r in &all {
        assert!(
            r.signature_valid(&secret),
            "bad signature on {}",
            r.event_id
        );
        assert!(!r.signature_valid("another-secret-value"));
        assert!(
            !String::from_utf8_lossy(&r.body).contains(&secret),
            "secret echoed"
        );
        assert!(
            !String::from_utf8_lossy(&r.body).contains(KEY),
            "API key echoed"
        );
    }
    // Live events over SSE: a restart reconnects with the stored credentials, no QR.
    let mut sse = reqwest::Client::new()
        .get(format!("{}/api/sessions/e2e/events", api.base))
        .header("x-api-key", KEY)
        .send()
        .await
        .expect("sse");
    assert_eq!(sse.status(), 200);
    let (status, _) = api.post("/api/sessions/e2e/restart", &json!({})).await;
    assert_eq!(status, 202);
    let text = read_sse_until(&mut sse, "\"status\":\"connected\"").await;
    assert!(text.contains("event: connection"), "{text}");
    assert!(
        !text.contains("event: qr"),
        "a restart must not ask for a QR:\n{text}"
    );
    let phone = state
        .sandbox()
        .expect("sandbox")
        .phone(scan["phone"].as_str().expect("phone"))
        .expect("phone");
    assert_eq!(phone.devices().len(), 1, "still one linked device");

    let (_, metrics) = api.get_bytes("/metrics").await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("wa_sessions{state=\"connected\"} 1"),
        "{metrics}"
    );
    let (status, stats) = api.get("/api/sessions/e2e/webhooks/stats").await;
    assert_eq!(status, 200);
    assert!(
        stats[0]["delivered"].as_u64().is_some_and(|n| n >= 2),
        "{stats}"
    );

    // Logout unlinks the device and says so.
    let (status, out) = api.post("/api/sessions/e2e/logout", &json!({})).await;
    assert_eq!(status, 200, "{out}");
    api.wait_status("e2e", "logged_out").await;
    eventually("the logged_out webhook", || {
        receiver
            .received()
            .into_iter()
            .find(|r| r.envelope["type"] == "logged_out")
    })
    .await;
    eventually("the device to be unlinked", || {
        phone.devices().is_empty().then_some(())
    })
    .await;

    // Delete removes it.
    let (status, _) = api.get("/api/sessions/e2e").await;
    assert_eq!(status, 200);
    let resp = reqwest::Client::new()
        .delete(format!("{}/api/sessions/e2e", api.base))
        .header("x-api-key", KEY)
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status(), 204);
    let (status, _) = api.get("/api/sessions/e2e").await;
    assert_eq!(status, 404);
    tokio::time::timeout(Duration::from_secs(30), state.shutdown())
        .await
        .expect("shutdown");
}

#[tokio::test]
async fn phone_number_pairing_code_links_the_device() {
    let (state, api, _dir) = start().await;
    let phone = state
        .sandbox()
        .expect("sandbox")
        .create_account("15550001234")
        .expect("account");
    let (status, _) = api.post("/api/sessions", &json!({ "id": "bycode" })).await;
    assert_eq!(status, 201);
    api.wait_status("bycode", "qr").await;
    let (status, code) = api
        .post(
            "/api/sessions/bycode/pairing-code",
            &json!({ "phone": "+1 555 000 1234" }),
        )
        .await;
    assert_eq!(status, 200, "{code}");
    let code = code["code"].as_str().expect("code").to_owned();
    assert_eq!(code.len(), 9, "XXXX-XXXX");
    phone.enter_code(&code).expect("the phone accepts the code");
    let info = api.wait_status("bycode", "connected").await;
    assert!(
        info["jid"]
            .as_str()
            .is_some_and(|j| j.starts_with("15550001234:"))
    );
    // A paired session offers no QR.
    let (status, err) = api.get("/api/sessions/bycode/qr").await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("session_not_pairing"))
    );
    tokio::time::timeout(Duration::from_secs(30), state.shutdown())
        .await
        .expect("shutdown");
}
