//! The control API's notification routes: `POST /accounts/{pn}/notifications` takes a typed
//! body (`{"kind": ...}`) and refuses unknown kinds, bad JIDs and bad base64;
//! `GET /accounts/{pn}/edge-routing` shows the routing info issued to the account.

use axum::http::StatusCode;
use serde_json::json;
use wa_sandbox::{Router, RouterConfig};

#[path = "support/control.rs"]
mod control_api;
use control_api::call;

const PN: &str = "15550401401";

#[tokio::test]
async fn notifications_are_typed_and_checked_and_edge_routing_is_visible() {
    let mut config = RouterConfig::default();
    config.seed = Some(14);
    let router = Router::new(config);
    let (s, v) = call(&router, "POST", "/accounts", Some(json!({ "phone": PN }))).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let uri = format!("/accounts/{PN}/notifications");

    let (s, v) = call(
        &router,
        "POST",
        &uri,
        Some(json!({"kind": "group_subject", "group": "120363000000001401", "subject": "Trip"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["devices"], 1, "the phone only: {v}");

    let (s, v) = call(&router, "POST", &uri, Some(json!({"kind": "no_such_kind"}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "bad_request");
    let (s, v) = call(
        &router,
        "POST",
        &uri,
        Some(json!({"kind": "status", "jid": "not a jid", "text": "x"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "bad_notice");
    let (s, v) = call(
        &router,
        "POST",
        &uri,
        Some(json!({"kind": "edge_routing", "routing_info_b64": "%%%"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "bad_notice");
    let (s, v) = call(
        &router,
        "POST",
        "/accounts/15550409999/notifications",
        Some(json!({"kind": "offline", "count": 1})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");

    let edge = format!("/accounts/{PN}/edge-routing");
    let (s, v) = call(&router, "GET", &edge, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"issued_b64": null, "received": []}));
    let (s, v) = call(
        &router,
        "POST",
        &uri,
        Some(json!({"kind": "edge_routing", "routing_info_b64": "cm91dGU="})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = call(&router, "GET", &edge, None).await;
    assert_eq!(v, json!({"issued_b64": "cm91dGU=", "received": []}));
}
