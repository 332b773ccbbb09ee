//! The HTTP control API, driven with `oneshot` (no socket), plus one test over a real port.

use axum::http::StatusCode;
use serde_json::json;
use wa_sandbox::{Fault, Router, RouterConfig, Target};

#[path = "support/control.rs"]
mod control_api;
use control_api::call;

fn router() -> Router {
    let mut config = RouterConfig::default();
    config.seed = Some(1);
    Router::new(config)
}

#[tokio::test]
async fn creates_and_reads_an_account() {
    let r = router();
    let (status, body) = call(
        &r,
        "POST",
        "/accounts",
        Some(json!({"phone": "15551234567"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["phone"], "15551234567");
    assert_eq!(body["platform"], "android");
    assert_eq!(body["devices"], json!([]));
    assert_eq!(body["lid"].as_str().map(str::len), Some(15));

    let (status, got) = call(&r, "GET", "/accounts/15551234567", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, body);

    let (status, list) = call(&r, "GET", "/accounts", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!([body]));
}

#[tokio::test]
async fn errors_are_typed_json() {
    let r = router();
    let (status, body) = call(&r, "GET", "/accounts/15550000000", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "no_such_account");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("15550000000"))
    );

    let (status, body) = call(&r, "POST", "/accounts", Some(json!({"phone": "0123"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_phone_number");

    call(
        &r,
        "POST",
        "/accounts",
        Some(json!({"phone": "15551234567"})),
    )
    .await;
    let (status, body) = call(
        &r,
        "POST",
        "/accounts",
        Some(json!({"phone": "15551234567"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "account_exists");

    let (status, body) = call(&r, "POST", "/accounts", Some(json!({"number": 5}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "bad_request");

    let (status, body) = call(&r, "DELETE", "/accounts/15551234567/devices/x", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "bad_request");

    let (status, body) = call(&r, "DELETE", "/accounts/15551234567/devices/3", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "no_such_device");

    let (status, body) = call(
        &r,
        "POST",
        "/accounts/15551234567/scan",
        Some(json!({"qr": "nonsense"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "malformed_qr");
}

#[tokio::test]
async fn faults_are_accepted_and_report_reach() {
    let r = router();
    let (status, body) = call(
        &r,
        "POST",
        "/faults",
        Some(json!({"kind": "refuse_connections", "count": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"connections": 0}));
    let (status, body) = call(
        &r,
        "POST",
        "/faults",
        Some(json!({"kind": "stream_error", "phone": "15551234567", "device": 1, "error": {"code": 515}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"connections": 0}));
    let (status, body) = call(&r, "POST", "/faults", Some(json!({"kind": "explode"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "bad_request");
    // The Rust form of the same fault.
    assert_eq!(
        r.inject(Fault::Drop {
            target: Target::device("15551234567", 1)
        }),
        0
    );
}
