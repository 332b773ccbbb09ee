//! One request to the sandbox's control API (`wa_sandbox::control_app`) over `router`,
//! driven with `tower::ServiceExt::oneshot` (no socket). Included by path from the control
//! tests (`#[path = "support/control.rs"] mod control_api;`), which need nothing else of
//! `support`.

#![allow(dead_code, unreachable_pub)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt as _;
use wa_sandbox::{ControlState, Router, control_app};

/// The control app over `router`, with placeholder URLs.
pub fn app(router: &Router) -> axum::Router {
    control_app(ControlState {
        router: router.clone(),
        ws_url: "ws://127.0.0.1:1/ws/chat".into(),
        control_url: "http://127.0.0.1:2".into(),
    })
}

/// Sends `method uri` with an optional JSON `body`; returns the status and the JSON answer
/// (`Value::Null` for an empty body). Panics on a body that is not JSON.
pub async fn call(
    router: &Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request");
    let resp = app(router).oneshot(req).await.expect("infallible");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    (status, value)
}
