//! `app(state).oneshot(..)` tests: every kind of bad input is a 4xx with a stable JSON error
//! code, never a 500 or a panic; plus the operations endpoints and the OpenAPI document.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt as _;
use wa_server::{AppState, Secret, ServerConfig, Upstream, app};

const KEY: &str = "test-admin-key-0123456789";
const LIMIT: usize = 4096;

async fn state(dir: &std::path::Path) -> AppState {
    let mut config = ServerConfig::new(dir);
    config.api_key = Some(Secret::new(KEY));
    config.upstream = Upstream::Sandbox;
    config.default_country_code = Some("62".to_owned());
    config.body_limit = LIMIT;
    // The test receivers and file servers listen on 127.0.0.1 (a non-public target).
    config.egress.allow_private_targets = true;
    AppState::start(config).await.expect("server starts")
}

async fn call(state: &AppState, req: Request<Body>) -> (StatusCode, Option<String>, Value, String) {
    let resp = app(state.clone()).oneshot(req).await.expect("infallible");
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (
        status,
        ctype,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        text,
    )
}

fn req(
    method: &str,
    uri: &str,
    auth: Option<(&str, &str)>,
    body: Option<(&str, Vec<u8>)>,
) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some((name, value)) = auth {
        b = b.header(name, value);
    }
    match body {
        Some((ctype, bytes)) => b
            .header(header::CONTENT_TYPE, ctype)
            .body(Body::from(bytes)),
        None => b.body(Body::empty()),
    }
    .expect("request")
}

fn json_body(v: Value) -> Option<(&'static str, Vec<u8>)> {
    Some(("application/json", v.to_string().into_bytes()))
}

/// Creates session `id`, returns its token.
async fn create(state: &AppState, id: &str) -> String {
    let (status, _, v, _) = call(
        state,
        req(
            "POST",
            "/api/sessions",
            Some(("x-api-key", KEY)),
            json_body(json!({ "id": id })),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["token"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn bad_input_is_a_4xx_json_error_with_a_stable_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path()).await;
    let token_a = create(&state, "shop-a").await;
    create(&state, "shop-b").await;
    let admin = Some(("x-api-key", KEY));
    let bearer = format!("Bearer {KEY}");
    let token_a_bearer = format!("Bearer {token_a}");
    let text = |to: &str| json_body(json!({ "to": to, "text": "hello" }));
    let huge = json_body(json!({ "id": "x".repeat(LIMIT * 2) }));

    let cases: Vec<(&str, Request<Body>, u16, &str)> = vec![
        (
            "no credentials",
            req("GET", "/api/sessions", None, None),
            401,
            "auth_required",
        ),
        (
            "wrong key",
            req("GET", "/api/sessions", Some(("x-api-key", "nope")), None),
            401,
            "invalid_credentials",
        ),
        (
            "wrong bearer",
            req(
                "GET",
                "/api/sessions",
                Some(("authorization", "Bearer nope")),
                None,
            ),
            401,
            "invalid_credentials",
        ),
        (
            "forged session token",
            req(
                "GET",
                "/api/sessions/shop-a",
                Some(("authorization", "Bearer wst.shop-a.AAAA")),
                None,
            ),
            401,
            "invalid_credentials",
        ),
        (
            "session token on another session",
            req(
                "GET",
                "/api/sessions/shop-b",
                Some(("authorization", &token_a_bearer)),
                None,
            ),
            403,
            "forbidden",
        ),
        (
            "session token on an admin route",
            req(
                "GET",
                "/api/sessions",
                Some(("authorization", &token_a_bearer)),
                None,
            ),
            403,
            "forbidden",
        ),
        (
            "malformed JSON",
            req(
                "POST",
                "/api/sessions",
                admin,
                Some(("application/json", b"{\"id\": ".to_vec())),
            ),
            400,
            "malformed_json",
        ),
        (
            "unknown field",
            req(
                "POST",
                "/api/sessions",
                admin,
                json_body(json!({ "id": "x", "colour": "red" })),
            ),
            422,
            "invalid_body",
        ),
        (
            "wrong field type",
            req(
                "POST",
                "/api/sessions",
                admin,
                json_body(json!({ "id": 7 })),
            ),
            422,
            "invalid_body",
        ),
        (
            "missing field",
            req(
                "POST",
                "/api/sessions/shop-a/messages/text",
                admin,
                json_body(json!({ "to": "08123456789" })),
            ),
            422,
            "invalid_body",
        ),
        (
            "not JSON content type",
            req(
                "POST",
                "/api/sessions",
                admin,
                Some(("text/plain", b"{}".to_vec())),
            ),
            415,
            "unsupported_media_type",
        ),
        (
            "oversized body",
            req("POST", "/api/sessions", admin, huge),
            413,
            "payload_too_large",
        ),
        (
            "invalid session id",
            req(
                "POST",
                "/api/sessions",
                admin,
                json_body(json!({ "id": "../etc" })),
            ),
            400,
            "invalid_session_id",
        ),
        (
            "duplicate session",
            req(
                "POST",
                "/api/sessions",
                admin,
                json_body(json!({ "id": "shop-a" })),
            ),
            409,
            "session_exists",
        ),
        (
            "unknown session",
            req("GET", "/api/sessions/nope", admin, None),
            404,
            "session_not_found",
        ),
        (
            "unknown session send",
            req(
                "POST",
                "/api/sessions/nope/messages/text",
                admin,
                text("08123456789"),
            ),
            404,
            "session_not_found",
        ),
        (
            "invalid phone",
            req(
                "POST",
                "/api/sessions/shop-a/messages/text",
                admin,
                text("08-12ab"),
            ),
            400,
            "invalid_phone_number",
        ),
        (
            "too short phone",
            req(
                "POST",
                "/api/sessions/shop-a/messages/text",
                admin,
                text("0812"),
            ),
            400,
            "invalid_phone_number",
        ),
        (
            "invalid JID",
            req(
                "POST",
                "/api/sessions/shop-a/messages/text",
                admin,
                text("status@broadcast"),
            ),
            400,
            "invalid_recipient",
        ),
        (
            "empty text",
            req(
                "POST",
                "/api/sessions/shop-a/messages/text",
                admin,
                json_body(json!({ "to": "08123456789", "text": "" })),
            ),
            422,
            "invalid_body",
        ),
        (
            "bad latitude",
            req(
                "POST",
                "/api/sessions/shop-a/messages/location",
                admin,
                json_body(json!({ "to": "08123456789", "latitude": 91.0, "longitude": 0.0 })),
            ),
            422,
            "invalid_body",
        ),
        (
            "not connected",
            req(
                "POST",
                "/api/sessions/shop-a/messages/text",
                Some(("authorization", &bearer)),
                text("08123456789"),
            ),
            409,
            "session_not_connected",
        ),
        (
            "media send on an unknown session",
            req(
                "POST",
                "/api/sessions/nope/messages/image",
                admin,
                json_body(json!({ "to": "08123456789", "base64": "AAAA" })),
            ),
            404,
            "session_not_found",
        ),
        (
            "media send with a raw body",
            req(
                "POST",
                "/api/sessions/shop-a/messages/image",
                admin,
                Some(("image/png", b"\x89PNG\r\n\x1a\n".to_vec())),
            ),
            415,
            "unsupported_media_type",
        ),
        (
            "media send when not connected",
            req(
                "POST",
                "/api/sessions/shop-a/messages/document",
                admin,
                json_body(json!({ "to": "08123456789", "base64": "AAAA" })),
            ),
            409,
            "session_not_connected",
        ),
        (
            "media download without credentials",
            req("GET", "/api/sessions/shop-a/media/ABC", None, None),
            401,
            "auth_required",
        ),
        (
            "media download of an unknown message",
            req("GET", "/api/sessions/shop-a/media/ABC", admin, None),
            404,
            "media_not_found",
        ),
        (
            "OTP when not connected",
            req(
                "POST",
                "/api/sessions/shop-a/otp",
                admin,
                json_body(json!({ "to": "08123456789" })),
            ),
            409,
            "session_not_connected",
        ),
        (
            "OTP digits out of range",
            req(
                "POST",
                "/api/sessions/shop-a/otp",
                admin,
                json_body(json!({ "to": "08123456789", "digits": 3 })),
            ),
            400,
            "invalid_otp_settings",
        ),
        (
            "OTP template without code",
            req(
                "POST",
                "/api/sessions/shop-a/otp",
                admin,
                json_body(json!({ "to": "08123456789", "template": "hi" })),
            ),
            400,
            "invalid_template",
        ),
        (
            "OTP verify with nothing pending",
            req(
                "POST",
                "/api/sessions/shop-a/otp/verify",
                admin,
                json_body(json!({ "to": "08123456789", "code": "123456" })),
            ),
            404,
            "otp_not_found",
        ),
        (
            "logout when not connected",
            req("POST", "/api/sessions/shop-a/logout", admin, None),
            409,
            "session_not_connected",
        ),
        (
            "unknown message",
            req("GET", "/api/sessions/shop-a/messages/3EB0FFFF", admin, None),
            404,
            "message_not_found",
        ),
        (
            "webhook URL not http",
            req(
                "POST",
                "/api/sessions/shop-a/webhooks",
                admin,
                json_body(json!({ "url": "ftp://127.0.0.1/x" })),
            ),
            400,
            "invalid_webhook_url",
        ),
        (
            "webhook URL relative",
            req(
                "POST",
                "/api/sessions/shop-a/webhooks",
                admin,
                json_body(json!({ "url": "/hook" })),
            ),
            400,
            "invalid_webhook_url",
        ),
        (
            "webhook unknown event",
            req(
                "POST",
                "/api/sessions/shop-a/webhooks",
                admin,
                json_body(json!({ "url": "http://127.0.0.1:9/h", "events": ["nope"] })),
            ),
            422,
            "invalid_body",
        ),
        (
            "webhook short secret",
            req(
                "POST",
                "/api/sessions/shop-a/webhooks",
                admin,
                json_body(json!({ "url": "http://127.0.0.1:9/h", "secret": "short" })),
            ),
            422,
            "invalid_body",
        ),
        (
            "unknown webhook",
            req(
                "DELETE",
                "/api/sessions/shop-a/webhooks/wh_nope",
                admin,
                None,
            ),
            404,
            "webhook_not_found",
        ),
        (
            "bad query parameter",
            req("DELETE", "/api/sessions/shop-a?logout=maybe", admin, None),
            400,
            "invalid_parameter",
        ),
        (
            "phone format bad country code",
            req(
                "GET",
                "/api/phone/format?number=0812345678&country_code=0x",
                admin,
                None,
            ),
            400,
            "invalid_parameter",
        ),
        (
            "phone format missing number",
            req("GET", "/api/phone/format", admin, None),
            400,
            "invalid_parameter",
        ),
        (
            "pairing code for invalid phone",
            req(
                "POST",
                "/api/sessions/shop-a/pairing-code",
                admin,
                json_body(json!({ "phone": "12" })),
            ),
            400,
            "invalid_phone_number",
        ),
        (
            "pair link ttl out of range",
            req(
                "POST",
                "/api/sessions/shop-a/pair-link?ttl_seconds=5",
                admin,
                None,
            ),
            400,
            "invalid_parameter",
        ),
        (
            "pairing page without credentials",
            req("GET", "/sessions/shop-a/pair", None, None),
            401,
            "auth_required",
        ),
        (
            "pairing page with a forged link",
            req(
                "GET",
                "/sessions/shop-a/pair?token=9999999999.AAAA",
                None,
                None,
            ),
            401,
            "invalid_link",
        ),
        (
            "pairing page with an expired link",
            req("GET", "/sessions/shop-a/pair?token=1.AAAA", None, None),
            401,
            "invalid_link",
        ),
        (
            "unknown route",
            req("GET", "/api/nope", admin, None),
            404,
            "not_found",
        ),
        (
            "wrong method",
            req("PUT", "/api/sessions", admin, None),
            405,
            "method_not_allowed",
        ),
    ];
    for (name, request, status, code) in cases {
        let (got, ctype, body, text) = call(&state, request).await;
        assert_eq!(got.as_u16(), status, "{name}: {text}");
        assert!(
            ctype
                .as_deref()
                .is_some_and(|c| c.starts_with("application/json")),
            "{name}: content type {ctype:?}"
        );
        assert_eq!(body["error"]["code"], code, "{name}: {text}");
        assert!(body["error"]["message"].is_string(), "{name}: {text}");
        assert!(!text.contains(KEY), "{name}: the key is echoed");
        assert!(!text.contains(&token_a), "{name}: the token is echoed");
    }
    // Nothing half-written: the rejected creates left no session behind.
    let (_, _, list, _) = call(&state, req("GET", "/api/sessions", admin, None)).await;
    let ids: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["shop-a", "shop-b"]);
    state.shutdown().await;
}

#[tokio::test]
async fn session_token_and_signed_link_grant_only_their_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path()).await;
    let token = create(&state, "alpha").await;
    create(&state, "beta").await;
    let bearer = format!("Bearer {token}");
    let (status, _, v, _) = call(
        &state,
        req(
            "GET",
            "/api/sessions/alpha",
            Some(("authorization", &bearer)),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["id"], "alpha");
    assert!(v.get("token").is_none());

    let (status, _, link, _) = call(
        &state,
        req(
            "POST",
            "/api/sessions/alpha/pair-link?ttl_seconds=120",
            Some(("x-api-key", KEY)),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{link}");
    let path = link["path"].as_str().expect("path").to_owned();
    let (status, ctype, _, html) = call(&state, req("GET", &path, None, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.unwrap_or_default().starts_with("text/html"));
    assert!(html.contains("EventSource"));
    // The same token does not open another session's page.
    let other = path.replace("/alpha/", "/beta/");
    let (status, _, v, _) = call(&state, req("GET", &other, None, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    // Rotating the token retires the old one.
    let (status, _, v, _) = call(
        &state,
        req(
            "POST",
            "/api/sessions/alpha/token",
            Some(("x-api-key", KEY)),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, _, _, _) = call(
        &state,
        req(
            "GET",
            "/api/sessions/alpha",
            Some(("authorization", &bearer)),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    state.shutdown().await;
}

#[tokio::test]
async fn phone_format_normalises_local_numbers_with_the_default_country_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path()).await;
    let (status, _, v, _) = call(
        &state,
        req(
            "GET",
            "/api/phone/format?number=0812-3456-789",
            Some(("x-api-key", KEY)),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({ "digits": "628123456789", "e164": "+628123456789", "jid": "628123456789@s.whatsapp.net" })
    );
    let (_, _, v, _) = call(
        &state,
        req(
            "GET",
            "/api/phone/format?number=020%207946%200958&country_code=44",
            Some(("x-api-key", KEY)),
            None,
        ),
    )
    .await;
    assert_eq!(v["digits"], "442079460958");
    state.shutdown().await;
}

#[tokio::test]
async fn operations_endpoints_and_the_openapi_document() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path()).await;
    create(&state, "ops").await;
    let (status, _, v, _) = call(&state, req("GET", "/health", None, None)).await;
    assert_eq!((status, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (status, _, v, _) = call(&state, req("GET", "/ready", None, None)).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
    let (status, _, _, metrics) = call(&state, req("GET", "/metrics", None, None)).await;
    assert_eq!(status, StatusCode::OK);
    for name in [
        "wa_sessions{state=\"",
        "wa_messages_sent_total",
        "wa_webhook_backlog",
        "wa_reconnects_total",
        "wa_webhook_latency_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "missing {name}");
    }
    let (status, _, spec, _) = call(&state, req("GET", "/openapi.json", None, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1"))
    );
    let paths = spec["paths"].as_object().expect("paths");
    for p in [
        "/api/sessions",
        "/api/sessions/{id}/qr",
        "/api/sessions/{id}/messages/text",
        "/api/sessions/{id}/otp",
        "/api/sessions/{id}/webhooks/stats",
        "/sessions/{id}/pair",
    ] {
        assert!(paths.contains_key(p), "spec lacks {p}");
    }
    let (status, ctype, _, _) = call(&state, req("GET", "/docs", None, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.unwrap_or_default().starts_with("text/html"));
    // Shutting down: /ready turns 503.
    state.begin_shutdown();
    let (status, _, v, _) = call(&state, req("GET", "/ready", None, None)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    tokio::time::timeout(Duration::from_secs(30), state.shutdown())
        .await
        .expect("shutdown completes");
}

#[tokio::test]
async fn national_numbers_without_the_trunk_prefix_stay_in_the_default_country() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path()).await;
    // (query, status, digits or error code); the default country code is 62.
    let rows = [
        ("number=8123456789", 200, "628123456789"),
        ("number=%2B8123456789", 200, "8123456789"),
        ("number=2412345678", 400, "ambiguous_phone_number"),
        ("number=%2B241%20234%205678", 200, "2412345678"),
        ("number=7400123456&country_code=44", 200, "447400123456"),
        (
            "number=044%2055%201234%205678&country_code=52",
            400,
            "invalid_phone_number",
        ),
    ];
    for (query, want_status, want) in rows {
        let (status, _, v, _) = call(
            &state,
            req(
                "GET",
                &format!("/api/phone/format?{query}"),
                Some(("x-api-key", KEY)),
                None,
            ),
        )
        .await;
        assert_eq!(status.as_u16(), want_status, "{query}: {v}");
        if want_status == 200 {
            assert_eq!(v["digits"], want, "{query}");
            assert_eq!(v["e164"], format!("+{want}"), "{query}");
        } else {
            assert_eq!(v["error"]["code"], want, "{query}: {v}");
        }
    }
    state.shutdown().await;
}
