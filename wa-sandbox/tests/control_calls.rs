//! The control API's call routes: `POST /calls` places a call from one account's phone to
//! another (logged in `GET /calls`).

use axum::http::StatusCode;
use serde_json::json;
use wa_sandbox::{Router, RouterConfig};

#[path = "support/control.rs"]
mod control_api;
use control_api::call;

#[tokio::test]
async fn calls_are_placed_and_logged() {
    let mut config = RouterConfig::default();
    config.seed = Some(5);
    let router = Router::new(config);
    for phone in ["15550400001", "15550400002"] {
        let (s, v) = call(
            &router,
            "POST",
            "/accounts",
            Some(json!({ "phone": phone })),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }

    let (s, v) = call(
        &router,
        "POST",
        "/calls",
        Some(json!({ "from": "15550400001", "to": "15550400002", "video": true })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let call_id = v["call_id"].as_str().expect("call_id").to_owned();
    assert_eq!(call_id.len(), 32);
    let (s, log) = call(&router, "GET", "/calls", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(log[0]["kind"], "offer");
    assert_eq!(log[0]["call_id"], call_id.as_str());
    assert_eq!(log[0]["from"], "15550400001");
    assert_eq!(log[0]["to"], "15550400002");
    assert_eq!(log[0]["call_creator"], "15550400001@s.whatsapp.net");
    // The callee's phone got the offer.
    let offers: Vec<_> = router
        .phone("15550400002")
        .expect("phone")
        .received()
        .into_iter()
        .filter(|n| n.tag == "call")
        .collect();
    assert_eq!(offers.len(), 1);
    let offer = offers[0].child_by_tag("offer").expect("offer");
    assert_eq!(offer.get_attr_str("call-id"), Some(call_id.as_str()));
    assert!(offer.child_by_tag("video").is_some());
    let (s, v) = call(
        &router,
        "POST",
        "/calls",
        Some(json!({ "from": "15550400001", "to": "15559999999" })),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
}
