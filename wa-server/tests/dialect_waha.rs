//! The WAHA dialect (`--waha`, issue 15) over HTTP with the embedded sandbox: `X-Api-Key`
//! auth and WAHA's error shape, the `/api/sessions` resource and its WAHA statuses, the QR
//! in its three forms, pairing by `auth/request-code`, `contacts/check-exists`, `sendText`
//! with WAHA's `WAMessage` answer (received by a second account), `sendLocation`,
//! `sendContactVcard`, `PUT /api/reaction`, logout/start/delete; `config.webhooks`
//! delivered to a receiver in WAHA's envelope with a valid HMAC-SHA512.

mod support;

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use support::{Receiver, eventually};
use wa_engine::message::{ContentKind, MediaKind};
use wa_engine::{Event, Jid};
use wa_server::{AppState, DialectSettings, Secret, ServerConfig, Upstream, app};

const KEY: &str = "waha-admin-key-abcdefghijk";
const OWN: &str = "15550400021";
const PEER: &str = "15550400022";

struct Waha {
    base: String,
    http: reqwest::Client,
}

impl Waha {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
        accept: Option<&str>,
    ) -> (u16, Value, Vec<u8>, String) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.header("X-Api-Key", k);
        }
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = resp.bytes().await.expect("body").to_vec();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, json, bytes, ctype)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let (s, v, _, _) = self
            .call(reqwest::Method::GET, path, Some(KEY), None, None)
            .await;
        (s, v)
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
        let (s, v, _, _) = self.call(method, path, Some(KEY), Some(body), None).await;
        (s, v)
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    /// Polls `GET /api/sessions/{name}` until its WAHA `status` is `want`.
    async fn wait_status(&self, name: &str, want: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (code, v) = self.get(&format!("/api/sessions/{name}")).await;
            if code == 200 && v["status"] == want {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "session {name} never reached {want}; last: {code} {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn start(base_path: &str) -> (AppState, Waha, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ServerConfig::new(dir.path());
    config.api_key = Some(Secret::new(KEY));
    config.upstream = Upstream::Sandbox;
    // The webhook receiver listens on 127.0.0.1.
    config.egress.allow_private_targets = true;
    let mut dialects = DialectSettings::default();
    dialects.waha = Some(base_path.to_owned());
    config.dialects = dialects;
    let state = AppState::start(config).await.expect("start");
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
    let root = format!("http://{addr}");
    let prefix = base_path.trim_end_matches('/');
    let waha = Waha {
        base: format!("{root}{prefix}"),
        http: reqwest::Client::new(),
    };
    (state, waha, root, dir)
}

/// Asserts WAHA's error shape and status.
fn assert_error(status: u16, body: &Value, want: u16, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["statusCode"], want, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].is_string() && body["error"].is_string(),
        "{body}"
    );
}

#[tokio::test]
async fn waha_sessions_pairing_and_sending() {
    let (state, waha, root, _dir) = start("/waha").await;
    let sb = state.sandbox().expect("sandbox");
    let own_phone = sb.create_account(OWN).expect("own account");

    // Auth: no key, a wrong key → 401 in WAHA's shape; the native API is unchanged.
    let (s, body, _, _) = waha
        .call(reqwest::Method::GET, "/api/sessions", None, None, None)
        .await;
    assert_error(s, &body, 401, "auth_required");
    let (s, body, _, _) = waha
        .call(
            reqwest::Method::GET,
            "/api/sessions",
            Some("wrong-key-0123456789abcdef"),
            None,
            None,
        )
        .await;
    assert_eq!((s, body["statusCode"].as_u64()), (401, Some(401)), "{body}");

    // A webhook WAHA's schema rejects (unknown event): 400, nothing created.
    let (s, body) = waha
        .post(
            "/api/sessions",
            &json!({ "name": "default", "config": { "webhooks": [{ "url": "http://example.com", "events": ["nope"] }] } }),
        )
        .await;
    assert_error(s, &body, 400, "invalid_body");
    let (s, body) = waha.get("/api/sessions/default").await;
    assert_error(s, &body, 404, "session_not_found");

    // Create: 201 SessionDTO; unknown keys (apps, engine options) are accepted.
    let (s, created) = waha
        .post(
            "/api/sessions",
            &json!({ "name": "default", "start": true, "apps": null,
                     "config": { "metadata": { "user.id": "42" }, "debug": false, "noweb": { "store": { "enabled": true } } } }),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["name"], "default");
    assert!(
        ["STARTING", "SCAN_QR_CODE"].contains(&created["status"].as_str().unwrap_or_default()),
        "{created}"
    );
    assert_eq!(created["config"]["metadata"]["user.id"], "42");
    let (s, dup) = waha
        .post("/api/sessions", &json!({ "name": "default" }))
        .await;
    assert_eq!((s, dup["statusCode"].as_u64()), (409, Some(409)), "{dup}");

    let info = waha.wait_status("default", "SCAN_QR_CODE").await;
    assert_eq!(info["name"], "default");
    assert!(
        info["timestamps"]["activity"]
            .as_u64()
            .is_some_and(|t| t > 0),
        "{info}"
    );
    assert!(info["me"].is_null(), "{info}");
    let (s, me) = waha.get("/api/sessions/default/me").await;
    assert_eq!((s, me), (200, Value::Null));

    // The QR in its three forms, all the same code as the native API's.
    let (s, raw) = waha.get("/api/default/auth/qr?format=raw").await;
    assert_eq!(s, 200, "{raw}");
    let value = raw["value"].as_str().expect("value").to_owned();
    let native_qr: Value = reqwest::Client::new()
        .get(format!("{root}/api/sessions/default/qr"))
        .header("x-api-key", KEY)
        .send()
        .await
        .expect("native qr")
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).unwrap_or(Value::Null))
        .expect("body");
    assert_eq!(
        native_qr["qr"].as_str(),
        Some(value.as_str()),
        "{native_qr}"
    );
    let (s, _, png, ctype) = waha
        .call(
            reqwest::Method::GET,
            "/api/default/auth/qr",
            Some(KEY),
            None,
            Some("image/png"),
        )
        .await;
    assert_eq!((s, ctype.as_str()), (200, "image/png"));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let (s, b64, _, _) = waha
        .call(
            reqwest::Method::GET,
            "/api/default/auth/qr?format=image",
            Some(KEY),
            None,
            Some("application/json"),
        )
        .await;
    assert_eq!(s, 200, "{b64}");
    assert_eq!(b64["mimetype"], "image/png");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64["data"].as_str().expect("data"))
        .expect("base64");
    assert!(decoded.starts_with(b"\x89PNG"));
    let (s, body) = waha.get("/api/default/auth/qr?format=svg").await;
    assert_error(s, &body, 400, "invalid_body");

    // Pairing by code: sms/voice registration is not offered; a web pairing code links.
    let (s, body) = waha
        .post(
            "/api/default/auth/request-code",
            &json!({ "phoneNumber": OWN, "method": "sms" }),
        )
        .await;
    assert_error(s, &body, 501, "not_supported");
    let (s, code) = waha
        .post(
            "/api/default/auth/request-code",
            &json!({ "phoneNumber": format!("+{OWN}") }),
        )
        .await;
    assert_eq!(s, 201, "{code}");
    let code = code["code"].as_str().expect("code").to_owned();
    assert_eq!(code.len(), 9, "XXXX-XXXX");
    own_phone
        .enter_code(&code)
        .expect("the phone accepts the code");
    let info = waha.wait_status("default", "WORKING").await;
    assert_eq!(info["me"]["id"], format!("{OWN}@c.us"), "{info}");
    let (s, me) = waha.get("/api/sessions/default/me").await;
    assert_eq!(s, 200);
    assert_eq!(me["id"], format!("{OWN}@c.us"));
    assert!(
        me["jid"]
            .as_str()
            .is_some_and(|j| j.starts_with(&format!("{OWN}:"))),
        "{me}"
    );
    let (s, body) = waha.get("/api/default/auth/qr?format=raw").await;
    assert_error(s, &body, 409, "session_not_pairing");

    // A second account with its own engine client.
    let (peer, mut events) = support::connect_peer(&state, PEER).await;
    let me_jid: Jid = format!("{OWN}@s.whatsapp.net").parse().expect("jid");

    // check-exists.
    let (s, found) = waha
        .get(&format!(
            "/api/contacts/check-exists?phone={PEER}&session=default"
        ))
        .await;
    assert_eq!(s, 200, "{found}");
    assert_eq!(
        found,
        json!({ "numberExists": true, "chatId": format!("{PEER}@c.us") })
    );
    let (s, missing) = waha
        .get("/api/contacts/check-exists?phone=15550409999&session=default")
        .await;
    assert_eq!((s, missing), (200, json!({ "numberExists": false })));

    // sendText: 201 WAMessage with every required field; the peer gets the text.
    let (s, sent) = waha
        .post(
            "/api/sendText",
            &json!({ "session": "default", "chatId": format!("{PEER}@c.us"), "text": "hello from waha",
                     "linkPreview": true }),
        )
        .await;
    assert_eq!(s, 201, "{sent}");
    for field in [
        "id",
        "timestamp",
        "from",
        "fromMe",
        "source",
        "to",
        "participant",
        "body",
        "hasMedia",
        "mediaUrl",
        "ack",
        "ackName",
    ] {
        assert!(sent.get(field).is_some(), "WAMessage lacks {field}: {sent}");
    }
    assert_eq!(sent["from"], format!("{OWN}@c.us"));
    assert_eq!(sent["to"], format!("{PEER}@c.us"));
    assert_eq!(
        (sent["fromMe"].as_bool(), sent["source"].as_str()),
        (Some(true), Some("api"))
    );
    assert_eq!(sent["body"], "hello from waha");
    assert_eq!(
        (sent["ack"].as_i64(), sent["ackName"].as_str()),
        (Some(1), Some("SERVER"))
    );
    let waha_id = sent["id"].as_str().expect("id").to_owned();
    let prefix = format!("true_{PEER}@c.us_");
    assert!(waha_id.starts_with(&prefix), "{waha_id}");
    let msg_id = waha_id[prefix.len()..].to_owned();
    let got = next_of(&mut events, ContentKind::Text).await;
    assert_eq!(got.info.id, msg_id);
    assert_eq!(got.content().text(), Some("hello from waha"));

    // The native message status resource knows the same message.
    let status = reqwest::Client::new()
        .get(format!("{root}/api/sessions/default/messages/{msg_id}"))
        .header("x-api-key", KEY)
        .send()
        .await
        .expect("status");
    assert_eq!(status.status().as_u16(), 200);

    // Reaction on that message.
    let (s, body) = waha
        .send(
            reqwest::Method::PUT,
            "/api/reaction",
            &json!({ "session": "default", "messageId": waha_id, "reaction": "👍" }),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let r = next_of(&mut events, ContentKind::Reaction).await;
    let reaction = r.content().reaction().expect("reaction");
    assert_eq!(
        (reaction.emoji, reaction.message_id),
        (Some("👍"), Some(msg_id.as_str()))
    );

    // Location and contact card.
    let (s, loc) = waha
        .post(
            "/api/sendLocation",
            &json!({ "session": "default", "chatId": format!("{PEER}@c.us"),
                     "latitude": 38.8937255, "longitude": -77.0969763, "title": "Our office" }),
        )
        .await;
    assert_eq!(s, 201, "{loc}");
    next_of(&mut events, ContentKind::Location).await;
    let (s, card) = waha
        .post(
            "/api/sendContactVcard",
            &json!({ "session": "default", "chatId": format!("{PEER}@c.us"),
                     "contacts": [{ "fullName": "John Doe", "phoneNumber": "+15550400099", "organization": "x" }] }),
        )
        .await;
    assert_eq!(s, 201, "{card}");
    next_of(&mut events, ContentKind::Contact).await;
    let (s, body) = waha
        .post(
            "/api/sendContactVcard",
            &json!({ "session": "default", "chatId": format!("{PEER}@c.us"),
                     "contacts": [{ "vcard": "BEGIN:VCARD\nEND:VCARD" }] }),
        )
        .await;
    assert_error(s, &body, 501, "not_supported");

    // Media (base64 BinaryFile), a poll, typing, read receipts.
    let (s, img) = waha
        .post(
            "/api/sendImage",
            &json!({ "session": "default", "chatId": format!("{PEER}@c.us"), "caption": "the qr",
                     "file": { "mimetype": "image/png", "filename": "qr.png",
                               "data": base64::engine::general_purpose::STANDARD.encode(&png) } }),
        )
        .await;
    assert_eq!(s, 201, "{img}");
    assert_eq!(
        (img["hasMedia"].as_bool(), img["body"].as_str()),
        (Some(true), Some("the qr")),
        "{img}"
    );
    assert!(
        img["mediaUrl"]
            .as_str()
            .is_some_and(|u| u.contains("/media")),
        "{img}"
    );
    let got = next_of(&mut events, ContentKind::Media(MediaKind::Image)).await;
    assert!(
        img["id"]
            .as_str()
            .is_some_and(|id| id.ends_with(&got.info.id)),
        "{img}"
    );
    let (s, poll) = waha
        .post(
            "/api/sendPoll",
            &json!({ "session": "default", "chatId": format!("{PEER}@c.us"),
                     "poll": { "name": "Lunch?", "options": ["yes", "no"], "multipleAnswers": false } }),
        )
        .await;
    assert_eq!((s, poll["body"].as_str()), (201, Some("Lunch?")), "{poll}");
    let got = next_of(&mut events, ContentKind::Poll).await;
    assert!(
        poll["id"]
            .as_str()
            .is_some_and(|id| id.ends_with(&got.info.id)),
        "{poll}"
    );
    for route in ["/api/startTyping", "/api/stopTyping"] {
        let (s, body) = waha
            .post(
                route,
                &json!({ "session": "default", "chatId": format!("{PEER}@c.us") }),
            )
            .await;
        assert_eq!(s, 201, "{route}: {body}");
    }
    let incoming = peer
        .send_text(&me_jid, "read me")
        .await
        .expect("peer sends");
    let (s, body) = waha
        .post(
            "/api/sendSeen",
            &json!({ "session": "default", "chatId": format!("{PEER}@c.us"),
                     "messageIds": [format!("false_{PEER}@c.us_{}", incoming.0)] }),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = waha
        .post(
            "/api/sendSeen",
            &json!({ "session": "default", "chatId": format!("{PEER}@c.us") }),
        )
        .await;
    assert_error(s, &body, 400, "invalid_body");

    // A send to an unknown session: 404; a bad body: 400.
    let (s, body) = waha
        .post(
            "/api/sendText",
            &json!({ "session": "nope", "chatId": "1@c.us", "text": "x" }),
        )
        .await;
    assert_error(s, &body, 404, "session_not_found");
    let (s, body) = waha
        .post(
            "/api/sendText",
            &json!({ "session": "default", "text": "x" }),
        )
        .await;
    assert_error(s, &body, 400, "invalid_body");

    // Update metadata; list.
    let (s, upd) = waha
        .send(
            reqwest::Method::PUT,
            "/api/sessions/default",
            &json!({ "config": { "metadata": { "user.id": "43" } } }),
        )
        .await;
    assert_eq!(s, 200, "{upd}");
    assert_eq!(
        (
            upd["status"].as_str(),
            upd["config"]["metadata"]["user.id"].as_str()
        ),
        (Some("WORKING"), Some("43"))
    );
    let (s, list) = waha.get("/api/sessions").await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["status"], "WORKING");
    // Stop keeps the pairing (STOPPED, hidden from the list); start connects again.
    let (s, stopped) = waha.post("/api/sessions/default/stop", &json!({})).await;
    assert_eq!(
        (s, stopped["status"].as_str()),
        (201, Some("STOPPED")),
        "{stopped}"
    );
    let (_, list) = waha.get("/api/sessions").await;
    assert_eq!(list, json!([]));
    let (s, started) = waha.post("/api/sessions/default/start", &json!({})).await;
    assert_eq!(s, 201, "{started}");
    waha.wait_status("default", "WORKING").await;

    // Logout → STOPPED (hidden from the list unless all=true); start → a new QR.
    let (s, out) = waha.post("/api/sessions/default/logout", &json!({})).await;
    assert_eq!((s, out["status"].as_str()), (201, Some("STOPPED")), "{out}");
    let (_, list) = waha.get("/api/sessions").await;
    assert_eq!(list, json!([]));
    let (_, list) = waha.get("/api/sessions?all=true").await;
    assert_eq!(list[0]["status"], "STOPPED", "{list}");
    let (s, started) = waha.post("/api/sessions/default/start", &json!({})).await;
    assert_eq!(s, 201, "{started}");
    waha.wait_status("default", "SCAN_QR_CODE").await;
    let (s, restarted) = waha.post("/api/sessions/default/restart", &json!({})).await;
    assert_eq!(s, 201, "{restarted}");

    // Delete.
    let (s, _, _, _) = waha
        .call(
            reqwest::Method::DELETE,
            "/api/sessions/default",
            Some(KEY),
            None,
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, body) = waha.get("/api/sessions/default").await;
    assert_error(s, &body, 404, "session_not_found");

    tokio::time::timeout(Duration::from_secs(30), state.shutdown())
        .await
        .expect("shutdown");
}

/// The base path is configurable; the dialect is off unless configured.
#[tokio::test]
async fn waha_base_path_is_configurable() {
    let (state, waha, root, _dir) = start("/w/").await;
    assert_eq!(waha.base, format!("{root}/w"));
    let (s, list) = waha.get("/api/sessions").await;
    assert_eq!((s, list), (200, json!([])));
    let (s, body) = waha
        .get("/api/contacts/check-exists?phone=15550400022&session=x")
        .await;
    assert_error(s, &body, 404, "session_not_found");
    tokio::time::timeout(Duration::from_secs(30), state.shutdown())
        .await
        .expect("shutdown");

    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ServerConfig::new(dir.path());
    config.api_key = Some(Secret::new(KEY));
    config.upstream = Upstream::Sandbox;
    let state = AppState::start(config).await.expect("start");
    let resp = tower::ServiceExt::oneshot(
        app(state.clone()),
        axum::http::Request::get("/waha/api/sessions")
            .header("x-api-key", KEY)
            .body(axum::body::Body::empty())
            .expect("request"),
    )
    .await
    .expect("response");
    assert_eq!(resp.status().as_u16(), 404, "off by default");
    state.shutdown().await;
}

async fn next_of(events: &mut wa_engine::Events, kind: ContentKind) -> wa_engine::IncomingMessage {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("peer event in time")
            .expect("peer stream open");
        if let Event::Message(m) = e
            && m.content().kind() == kind
        {
            return *m;
        }
    }
}

const HOOK_OWN: &str = "15550400031";
const HOOK_PEER: &str = "15550400032";
const HMAC_KEY: &str = "waha-hmac-key-0123";

/// The first delivery of WAHA event `event` whose `payload` matches.
async fn waha_hook(
    hook: &Receiver,
    event: &str,
    pred: impl Fn(&Value) -> bool,
) -> support::Received {
    eventually(&format!("a WAHA {event} webhook"), || {
        hook.received()
            .into_iter()
            .find(|r| r.envelope["event"] == event && pred(&r.envelope["payload"]))
    })
    .await
}

/// The envelope fields WAHA's examples (shared/compat/waha.md §6) show, the custom header
/// and a valid `X-Webhook-Hmac` (HMAC-SHA512 of the raw body).
fn check_delivery(r: &support::Received, event: &str) {
    use hmac::{Hmac, KeyInit, Mac};
    let e = &r.envelope;
    assert_eq!(r.path, "/hook/waha", "{e}");
    let id = e["id"].as_str().expect("id");
    assert!(
        id.len() == 30
            && id.starts_with("evt_")
            && id[4..]
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()),
        "evt_<lower-case ULID>: {id}"
    );
    assert!(
        e["timestamp"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000_000),
        "ms: {e}"
    );
    assert_eq!(e["event"], event);
    assert_eq!(e["session"], "hooked");
    assert_eq!(e["engine"], "GOWS");
    assert_eq!(e["metadata"]["tenant"], "t1", "{e}");
    assert_eq!(e["environment"]["engine"], "GOWS", "{e}");
    assert_eq!(e["environment"]["tier"], "CORE", "{e}");
    assert!(e["environment"]["version"].is_string(), "{e}");
    assert!(
        e["environment"]["platform"]
            .as_str()
            .is_some_and(|p| p.contains('/')),
        "{e}"
    );
    assert!(e["environment"]["worker"].is_object(), "{e}");
    assert!(e.get("payload").is_some(), "{e}");
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} header on {e}"))
    };
    assert_eq!(header("x-tenant"), "t1");
    assert_eq!(header("x-webhook-request-id"), id);
    assert!(header("x-webhook-timestamp").parse::<u64>().is_ok());
    assert_eq!(header("x-webhook-hmac-algorithm"), "sha512");
    let mut mac =
        <Hmac<sha2::Sha512> as KeyInit>::new_from_slice(HMAC_KEY.as_bytes()).expect("key");
    mac.update(&r.body);
    assert_eq!(
        header("x-webhook-hmac"),
        hex::encode(mac.finalize().into_bytes()),
        "{e}"
    );
}

#[tokio::test]
async fn waha_webhooks_deliver_signed_envelopes() {
    let (state, waha, _root, _dir) = start("/waha").await;
    let sb = state.sandbox().expect("sandbox");
    let own_phone = sb.create_account(HOOK_OWN).expect("own account");
    let hook = Receiver::start(false).await;
    let url = format!("{}/waha", hook.url());

    let (s, created) = waha
        .post(
            "/api/sessions",
            &json!({ "name": "hooked", "config": {
                "metadata": { "tenant": "t1" },
                "webhooks": [{
                    "url": url,
                    "events": ["message", "message.any", "message.ack", "session.status"],
                    "hmac": { "key": HMAC_KEY },
                    "retries": { "policy": "constant", "delaySeconds": 2, "attempts": 3 },
                    "customHeaders": [{ "name": "X-Tenant", "value": "t1" }],
                }],
            } }),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    // The stored config is shown, the HMAC key is not.
    let (s, info) = waha.get("/api/sessions/hooked").await;
    assert_eq!(s, 200, "{info}");
    let shown = &info["config"]["webhooks"][0];
    assert_eq!(shown["url"], url.as_str(), "{info}");
    assert_eq!(shown["events"].as_array().map(Vec::len), Some(4), "{info}");
    assert_eq!(shown["retries"]["policy"], "constant", "{info}");
    assert_eq!(shown["customHeaders"][0]["name"], "X-Tenant", "{info}");
    assert!(
        shown["hmac"].is_object() && shown["hmac"]["key"].is_null(),
        "{info}"
    );
    assert!(!info.to_string().contains(HMAC_KEY));

    // session.status: SCAN_QR_CODE, then WORKING once linked, with the recent statuses.
    let qr = waha_hook(&hook, "session.status", |p| p["status"] == "SCAN_QR_CODE").await;
    check_delivery(&qr, "session.status");
    assert_eq!(qr.envelope["payload"]["name"], "hooked");
    assert!(qr.envelope["payload"]["data"].is_null());
    let (s, code) = waha
        .post(
            "/api/hooked/auth/request-code",
            &json!({ "phoneNumber": HOOK_OWN }),
        )
        .await;
    assert_eq!(s, 201, "{code}");
    own_phone
        .enter_code(code["code"].as_str().expect("code"))
        .expect("the phone accepts the code");
    waha.wait_status("hooked", "WORKING").await;
    let working = waha_hook(&hook, "session.status", |p| p["status"] == "WORKING").await;
    check_delivery(&working, "session.status");
    let statuses = working.envelope["payload"]["statuses"]
        .as_array()
        .expect("statuses")
        .clone();
    assert!((1..=3).contains(&statuses.len()), "{statuses:?}");
    assert_eq!(
        statuses.last().map(|s| s["status"].clone()),
        Some(json!("WORKING"))
    );
    assert!(
        statuses.iter().all(|s| s["timestamp"].as_u64().is_some()),
        "{statuses:?}"
    );
    assert_eq!(working.envelope["me"]["id"], format!("{HOOK_OWN}@c.us"));

    // Incoming: `message` and `message.any`, as WAHA's WAMessage.
    let (peer, _events) = support::connect_peer(&state, HOOK_PEER).await;
    let me: Jid = format!("{HOOK_OWN}@s.whatsapp.net").parse().expect("jid");
    peer.send_text(&me, "hi waha hook")
        .await
        .expect("peer sends");
    let incoming = waha_hook(&hook, "message", |p| p["body"] == "hi waha hook").await;
    check_delivery(&incoming, "message");
    let p = &incoming.envelope["payload"];
    assert_eq!(p["from"], format!("{HOOK_PEER}@c.us"), "{p}");
    assert_eq!(p["to"], format!("{HOOK_OWN}@c.us"), "{p}");
    assert_eq!(
        (p["fromMe"].as_bool(), p["hasMedia"].as_bool()),
        (Some(false), Some(false)),
        "{p}"
    );
    assert!(
        p["id"]
            .as_str()
            .is_some_and(|i| i.starts_with(&format!("false_{HOOK_PEER}@c.us_"))),
        "{p}"
    );
    assert!(
        p["timestamp"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000 && t < 10_000_000_000),
        "{p}"
    );
    assert_eq!(
        (p["ack"].as_i64(), p["ackName"].as_str()),
        (Some(2), Some("DEVICE")),
        "{p}"
    );
    assert_eq!(p["source"], "app");
    let any_in = waha_hook(&hook, "message.any", |p| p["body"] == "hi waha hook").await;
    check_delivery(&any_in, "message.any");
    assert_ne!(any_in.envelope["id"], incoming.envelope["id"]);

    // Outgoing: `message.any` (fromMe, source api) and `message.ack`, not `message`.
    let (s, sent) = waha
        .post(
            "/api/sendText",
            &json!({ "session": "hooked", "chatId": format!("{HOOK_PEER}@c.us"), "text": "out via hook" }),
        )
        .await;
    assert_eq!(s, 201, "{sent}");
    let any_out = waha_hook(&hook, "message.any", |p| p["body"] == "out via hook").await;
    check_delivery(&any_out, "message.any");
    let p = &any_out.envelope["payload"];
    assert_eq!(
        (p["fromMe"].as_bool(), p["source"].as_str()),
        (Some(true), Some("api")),
        "{p}"
    );
    assert_eq!(p["id"], sent["id"], "{p}");
    let ack = waha_hook(&hook, "message.ack", |p| p["id"] == sent["id"]).await;
    check_delivery(&ack, "message.ack");
    let p = &ack.envelope["payload"];
    assert_eq!(p["from"], format!("{HOOK_PEER}@c.us"), "{p}");
    assert_eq!(p["to"], format!("{HOOK_OWN}@c.us"), "{p}");
    assert!(p["participant"].is_null() && p["fromMe"] == true, "{p}");
    assert!(
        ["SERVER", "DEVICE", "READ"].contains(&p["ackName"].as_str().unwrap_or_default()),
        "{p}"
    );
    assert!(
        !hook
            .received()
            .iter()
            .any(|r| r.envelope["event"] == "message"
                && r.envelope["payload"]["body"] == "out via hook"),
        "an outgoing message is not a `message` event"
    );

    // PUT replaces the webhooks; an `hmac` without key keeps the stored key.
    let mut again = shown.clone();
    again["events"] = json!(["session.status"]);
    let (s, dto) = waha
        .send(
            reqwest::Method::PUT,
            "/api/sessions/hooked",
            &json!({ "config": { "webhooks": [again] } }),
        )
        .await;
    assert_eq!(s, 200, "{dto}");
    assert_eq!(
        dto["config"]["webhooks"][0]["events"],
        json!(["session.status"])
    );
    assert_eq!(dto["config"]["metadata"]["tenant"], "t1", "{dto}");
    let before = hook.received().len();
    let (s, restarted) = waha.post("/api/sessions/hooked/restart", &json!({})).await;
    assert_eq!(s, 201, "{restarted}");
    let later = eventually("a session.status after the PUT", || {
        hook.received()
            .into_iter()
            .skip(before)
            .find(|r| r.envelope["event"] == "session.status")
    })
    .await;
    check_delivery(&later, "session.status");
}

const GROUP_OWN: &str = "15550400041";
const GROUP_A: &str = "15550400042";
const GROUP_B: &str = "15550400043";

/// The fields of a `WAMessage` that a listing and a webhook of the same message share:
/// all but `timestamp` (the log keeps when wa-server saw a received message, the event the
/// sender's time; within seconds) and, for our own messages, the ack (the listing shows
/// the status reached since, never less).
fn same_message(listed: &Value, hooked: &Value) {
    for field in [
        "id",
        "from",
        "fromMe",
        "source",
        "to",
        "participant",
        "body",
        "hasMedia",
        "mediaUrl",
        "vCards",
        "_data",
    ] {
        assert_eq!(
            listed[field], hooked[field],
            "{field}: {listed} vs {hooked}"
        );
    }
    if hooked["fromMe"] == true {
        assert!(
            listed["ack"].as_i64() >= hooked["ack"].as_i64(),
            "{listed} vs {hooked}"
        );
    } else {
        assert_eq!(
            (&listed["ack"], &listed["ackName"]),
            (&hooked["ack"], &hooked["ackName"])
        );
    }
    let (a, b) = (
        listed["timestamp"].as_i64().expect("timestamp"),
        hooked["timestamp"].as_i64().expect("timestamp"),
    );
    assert!((a - b).abs() <= 5, "{listed} vs {hooked}");
}

#[tokio::test]
async fn waha_groups_chats_events_and_stop() {
    let (state, waha, _root, _dir) = start("/waha").await;
    let sb = state.sandbox().expect("sandbox");
    let own_phone = sb.create_account(GROUP_OWN).expect("own account");
    let hook = Receiver::start(false).await;
    let url = format!("{}/waha", hook.url());
    let (s, created) = waha
        .post(
            "/api/sessions",
            &json!({ "name": "hooked", "config": {
                "metadata": { "tenant": "t1" },
                "webhooks": [{
                    "url": url, "events": ["*"], "hmac": { "key": HMAC_KEY },
                    "customHeaders": [{ "name": "X-Tenant", "value": "t1" }],
                }],
            } }),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    waha.wait_status("hooked", "SCAN_QR_CODE").await;
    let (s, code) = waha
        .post(
            "/api/hooked/auth/request-code",
            &json!({ "phoneNumber": GROUP_OWN }),
        )
        .await;
    assert_eq!(s, 201, "{code}");
    own_phone
        .enter_code(code["code"].as_str().expect("code"))
        .expect("the phone accepts the code");
    waha.wait_status("hooked", "WORKING").await;
    let (peer_a, mut events_a) = support::connect_peer(&state, GROUP_A).await;
    let (_peer_b, _events_b) = support::connect_peer(&state, GROUP_B).await;
    let me: Jid = format!("{GROUP_OWN}@s.whatsapp.net").parse().expect("jid");
    let (a_id, b_id, own_id) = (
        format!("{GROUP_A}@c.us"),
        format!("{GROUP_B}@c.us"),
        format!("{GROUP_OWN}@c.us"),
    );

    // Groups: create, list, get, participants.
    let (s, group) = waha
        .post(
            "/api/hooked/groups",
            &json!({ "name": "Team", "participants": [{ "id": a_id }, { "id": b_id }] }),
        )
        .await;
    assert_eq!(s, 201, "{group}");
    let gid = group["id"].as_str().expect("id").to_owned();
    assert!(gid.ends_with("@g.us"), "{group}");
    assert_eq!(group["subject"], "Team");
    let roles: Vec<(String, String)> = group["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap_or_default().to_owned(),
                p["role"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(
        roles.contains(&(a_id.clone(), "participant".to_owned())),
        "{group}"
    );
    assert!(
        roles.contains(&(own_id.clone(), "superadmin".to_owned())),
        "{group}"
    );
    let (s, list) = waha.get("/api/hooked/groups").await;
    assert_eq!(s, 200, "{list}");
    let listed = list
        .as_array()
        .and_then(|l| l.iter().find(|g| g["id"] == gid.as_str()))
        .expect("the new group is listed");
    assert_eq!(listed["subject"], "Team");
    assert!(listed["participants"].is_array(), "{listed}");
    let (s, list) = waha
        .get("/api/hooked/groups?exclude=participants&sortBy=subject&limit=10&offset=0")
        .await;
    assert_eq!(s, 200, "{list}");
    assert!(list[0].get("participants").is_none(), "{list}");
    let (s, count) = waha.get("/api/hooked/groups/count").await;
    assert_eq!((s, count["count"].as_u64()), (200, Some(1)), "{count}");
    let (s, one) = waha.get(&format!("/api/hooked/groups/{gid}")).await;
    assert_eq!((s, one["id"].as_str()), (200, Some(gid.as_str())), "{one}");
    for path in ["participants", "participants/v2"] {
        let (s, members) = waha.get(&format!("/api/hooked/groups/{gid}/{path}")).await;
        assert_eq!(s, 200, "{members}");
        assert_eq!(members.as_array().map(Vec::len), Some(3), "{members}");
    }
    let (s, body, _, _) = waha
        .call(
            reqwest::Method::DELETE,
            &format!("/api/hooked/groups/{gid}"),
            Some(KEY),
            None,
            None,
        )
        .await;
    assert_error(s, &body, 501, "not_supported");

    // Membership changes through the API: per participant results.
    let (s, removed) = waha
        .post(
            &format!("/api/hooked/groups/{gid}/participants/remove"),
            &json!({ "participants": [{ "id": b_id }] }),
        )
        .await;
    assert_eq!(s, 200, "{removed}");
    assert_eq!(removed, json!([{ "id": b_id, "status": 200 }]));
    let (s, added) = waha
        .post(
            &format!("/api/hooked/groups/{gid}/participants/add"),
            &json!({ "participants": [{ "id": b_id }] }),
        )
        .await;
    assert_eq!(
        (s, added[0]["status"].as_u64()),
        (200, Some(200)),
        "{added}"
    );
    for action in ["promote", "demote", "promote"] {
        let (s, done) = waha
            .post(
                &format!("/api/hooked/groups/{gid}/admin/{action}"),
                &json!({ "participants": [{ "id": a_id }] }),
            )
            .await;
        assert_eq!((s, done[0]["status"].as_u64()), (200, Some(200)), "{done}");
    }
    let (_, members) = waha
        .get(&format!("/api/hooked/groups/{gid}/participants/v2"))
        .await;
    assert!(
        members
            .as_array()
            .is_some_and(|m| m.contains(&json!({ "id": a_id, "role": "admin" }))),
        "{members}"
    );

    // Changes by another admin (a, now promoted) reach this session as
    // `group.v2.participants` and `group.v2.update` (WhatsApp does not notify the device
    // that made a change).
    let group_jid: Jid = gid.parse().expect("group jid");
    let b_jid: Jid = format!("{GROUP_B}@s.whatsapp.net").parse().expect("jid");
    for action in [
        wa_engine::ParticipantAction::Remove,
        wa_engine::ParticipantAction::Add,
        wa_engine::ParticipantAction::Promote,
        wa_engine::ParticipantAction::Demote,
    ] {
        peer_a
            .change_participants(&group_jid, action, std::slice::from_ref(&b_jid))
            .await
            .expect("a changes b");
    }
    for (kind, role) in [
        ("leave", "left"),
        ("join", "participant"),
        ("promote", "admin"),
        ("demote", "participant"),
    ] {
        let r = waha_hook(&hook, "group.v2.participants", |p| p["type"] == kind).await;
        check_delivery(&r, "group.v2.participants");
        let p = &r.envelope["payload"];
        assert_eq!(p["group"], json!({ "id": gid }), "{p}");
        assert_eq!(
            p["participants"],
            json!([{ "id": b_id, "role": role }]),
            "{p}"
        );
        assert!(
            p["timestamp"].as_u64().is_some() && p["_data"].is_object(),
            "{p}"
        );
    }
    peer_a
        .set_group_subject(&group_jid, "Team by a")
        .await
        .expect("a renames");
    let r = waha_hook(&hook, "group.v2.update", |p| {
        p["group"]["subject"] == "Team by a"
    })
    .await;
    check_delivery(&r, "group.v2.update");
    assert_eq!(r.envelope["payload"]["group"]["id"], gid.as_str());

    // Subject, description, settings, invite code.
    let subject = |path: &str, body: Value| (format!("/api/hooked/groups/{gid}/{path}"), body);
    for (path, body) in [
        subject("subject", json!({ "subject": "Team 2" })),
        subject("description", json!({ "description": "about" })),
        subject(
            "settings/security/messages-admin-only",
            json!({ "adminsOnly": true }),
        ),
        subject(
            "settings/security/info-admin-only",
            json!({ "adminsOnly": false }),
        ),
    ] {
        let (s, ok) = waha.send(reqwest::Method::PUT, &path, &body).await;
        assert_eq!((s, ok), (200, json!(true)), "{path}");
    }
    let (s, only) = waha
        .get(&format!(
            "/api/hooked/groups/{gid}/settings/security/messages-admin-only"
        ))
        .await;
    assert_eq!((s, only), (200, json!({ "adminsOnly": true })));
    let (_, one) = waha.get(&format!("/api/hooked/groups/{gid}")).await;
    assert_eq!(
        (
            one["subject"].as_str(),
            one["description"].as_str(),
            one["membersCanSendMessages"].as_bool()
        ),
        (Some("Team 2"), Some("about"), Some(false)),
        "{one}"
    );
    let (s, code) = waha
        .get(&format!("/api/hooked/groups/{gid}/invite-code"))
        .await;
    assert!(
        s == 200
            && code
                .as_str()
                .is_some_and(|c| !c.is_empty() && !c.contains('/')),
        "{code}"
    );
    let (s, fresh) = waha
        .post(
            &format!("/api/hooked/groups/{gid}/invite-code/revoke"),
            &json!({}),
        )
        .await;
    assert!(
        s == 200 && fresh.is_string() && fresh != code,
        "{fresh} {code}"
    );

    // Chats and messages: one sent, one received, both listed as the webhooks had them.
    let (s, sent) = waha
        .post(
            "/api/sendText",
            &json!({ "session": "hooked", "chatId": a_id, "text": "to a" }),
        )
        .await;
    assert_eq!(s, 201, "{sent}");
    let sent_id = sent["id"].as_str().expect("id").to_owned();
    let bare_sent = sent_id.rsplit('_').next().expect("id").to_owned();
    next_of(&mut events_a, ContentKind::Text).await;
    let from_a = peer_a.send_text(&me, "from a").await.expect("a sends");
    let hooked_in = waha_hook(&hook, "message", |p| p["body"] == "from a").await;
    let any_out = waha_hook(&hook, "message.any", |p| p["body"] == "to a").await;
    let (s, chats) = waha.get("/api/hooked/chats?limit=10").await;
    assert_eq!(s, 200, "{chats}");
    let chat = chats
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == a_id.as_str()))
        .expect("the chat with a");
    assert_eq!(chat["lastMessage"]["body"], "from a", "{chat}");
    assert!(chat["conversationTimestamp"].as_u64().is_some(), "{chat}");
    let (s, overview) = waha.get("/api/hooked/chats/overview").await;
    assert_eq!(s, 200, "{overview}");
    assert!(
        overview[0].get("picture").is_some() && overview[0]["_chat"].is_object(),
        "{overview}"
    );
    let (s, msgs) = waha
        .get(&format!(
            "/api/hooked/chats/{a_id}/messages?limit=10&downloadMedia=false"
        ))
        .await;
    assert_eq!(s, 200, "{msgs}");
    let msgs = msgs.as_array().expect("array").clone();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert_eq!(msgs[0]["body"], "from a", "newest first: {msgs:?}");
    same_message(&msgs[0], &hooked_in.envelope["payload"]);
    same_message(&msgs[1], &any_out.envelope["payload"]);
    assert_eq!(msgs[1]["id"], sent_id.as_str());
    let (_, mine) = waha
        .get(&format!(
            "/api/hooked/chats/{a_id}/messages?limit=10&filter.fromMe=true&sortOrder=asc"
        ))
        .await;
    assert_eq!(mine.as_array().map(Vec::len), Some(1), "{mine}");
    let (s, legacy) = waha
        .get(&format!(
            "/api/messages?session=hooked&chatId={a_id}&limit=1"
        ))
        .await;
    assert_eq!(s, 200, "{legacy}");
    assert_eq!(legacy, json!([msgs[0]]));
    let (s, one) = waha
        .get(&format!("/api/hooked/chats/{a_id}/messages/{sent_id}"))
        .await;
    assert_eq!((s, &one), (200, &msgs[1]));
    let (s, body) = waha
        .get(&format!("/api/hooked/chats/{a_id}/messages/NOSUCHID"))
        .await;
    assert_error(s, &body, 404, "message_not_found");
    let (s, contacts) = waha.get("/api/contacts/all?session=hooked").await;
    assert_eq!(s, 200, "{contacts}");
    assert!(
        contacts.as_array().is_some_and(|c| c
            .iter()
            .any(|c| c["id"] == a_id.as_str() && c["number"] == GROUP_A)),
        "{contacts}"
    );
    let (s, contact) = waha
        .get(&format!("/api/contacts?contactId={GROUP_A}&session=hooked"))
        .await;
    assert_eq!(
        (s, contact["id"].as_str()),
        (200, Some(a_id.as_str())),
        "{contact}"
    );

    // message.reaction, message.edited, message.revoked from the peer.
    let target = wa_engine::message::rich::TargetKey {
        chat: me.clone(),
        id: bare_sent.clone(),
        from_me: false,
        sender: None,
    };
    let reaction = peer_a.send_reaction(&target, "🎉").await.expect("react");
    let r = waha_hook(&hook, "message.reaction", |p| p["reaction"]["text"] == "🎉").await;
    check_delivery(&r, "message.reaction");
    let p = &r.envelope["payload"];
    assert_eq!(p["reaction"]["messageId"], sent_id.as_str(), "{p}");
    assert_eq!(p["id"], format!("false_{a_id}_{}", reaction.0), "{p}");
    assert_eq!(
        (p["from"].as_str(), p["to"].as_str()),
        (Some(a_id.as_str()), Some(own_id.as_str()))
    );
    for field in ["timestamp", "fromMe", "source", "participant"] {
        assert!(p.get(field).is_some(), "{field}: {p}");
    }
    peer_a
        .edit_message(&me, &from_a.0, "from a, edited")
        .await
        .expect("edit");
    let r = waha_hook(&hook, "message.edited", |p| p["body"] == "from a, edited").await;
    check_delivery(&r, "message.edited");
    assert_eq!(r.envelope["payload"]["editedMessageId"], from_a.0.as_str());
    assert_eq!(r.envelope["payload"]["fromMe"], false);
    peer_a
        .revoke_message(&wa_engine::message::rich::TargetKey {
            chat: me.clone(),
            id: from_a.0.clone(),
            from_me: true,
            sender: None,
        })
        .await
        .expect("revoke");
    let r = waha_hook(&hook, "message.revoked", |p| {
        p["revokedMessageId"] == from_a.0.as_str()
    })
    .await;
    check_delivery(&r, "message.revoked");
    let p = &r.envelope["payload"];
    assert_eq!(p["before"]["id"], msgs[0]["id"], "{p}");
    assert_eq!(p["after"]["from"], a_id.as_str(), "{p}");

    // poll.vote: the peer votes on our poll.
    let (s, poll) = waha
        .post(
            "/api/sendPoll",
            &json!({ "session": "hooked", "chatId": a_id,
                     "poll": { "name": "Lunch?", "options": ["yes", "no"], "multipleAnswers": false } }),
        )
        .await;
    assert_eq!(s, 201, "{poll}");
    let got = next_of(&mut events_a, ContentKind::Poll).await;
    peer_a
        .vote_poll(&me, &got.info.id, &["yes"])
        .await
        .expect("vote");
    let r = waha_hook(&hook, "poll.vote", |p| p["poll"]["id"] == poll["id"]).await;
    check_delivery(&r, "poll.vote");
    let p = &r.envelope["payload"];
    assert_eq!(p["vote"]["selectedOptions"], json!(["yes"]), "{p}");
    assert_eq!(
        (p["vote"]["from"].as_str(), p["vote"]["fromMe"].as_bool()),
        (Some(a_id.as_str()), Some(false)),
        "{p}"
    );
    assert_eq!(
        (p["poll"]["fromMe"].as_bool(), p["poll"]["to"].as_str()),
        (Some(true), Some(a_id.as_str()))
    );

    // presence.update (typing), call.received.
    peer_a
        .send_chat_state(&me, wa_engine::presence::ChatState::Composing)
        .await
        .expect("typing");
    let r = waha_hook(&hook, "presence.update", |p| {
        p["presences"][0]["lastKnownPresence"] == "typing"
    })
    .await;
    check_delivery(&r, "presence.update");
    assert_eq!(r.envelope["payload"]["id"], a_id.as_str());
    assert_eq!(
        r.envelope["payload"]["presences"][0]["participant"],
        a_id.as_str()
    );
    let call_id = sb
        .router()
        .place_call(GROUP_A, GROUP_OWN, true)
        .expect("call placed");
    let r = waha_hook(&hook, "call.received", |p| p["id"] == call_id.as_str()).await;
    check_delivery(&r, "call.received");
    let p = &r.envelope["payload"];
    assert_eq!(
        (
            p["from"].as_str(),
            p["isVideo"].as_bool(),
            p["isGroup"].as_bool()
        ),
        (Some(a_id.as_str()), Some(true), Some(false)),
        "{p}"
    );
    assert!(
        p["timestamp"].as_u64().is_some() && p["_data"].is_object(),
        "{p}"
    );

    // Removed by a: `group.v2.leave` (and the deprecated `group.leave`); added back:
    // `group.v2.join`; then leaving through the API answers 200.
    peer_a
        .change_participants(
            &group_jid,
            wa_engine::ParticipantAction::Remove,
            std::slice::from_ref(&me),
        )
        .await
        .expect("a removes us");
    for event in ["group.v2.leave", "group.leave"] {
        let r = waha_hook(&hook, event, |p| p["group"]["id"] == gid.as_str()).await;
        check_delivery(&r, event);
    }
    peer_a
        .change_participants(
            &group_jid,
            wa_engine::ParticipantAction::Add,
            std::slice::from_ref(&me),
        )
        .await
        .expect("a adds us back");
    let r = waha_hook(&hook, "group.v2.join", |p| p["group"]["id"] == gid.as_str()).await;
    check_delivery(&r, "group.v2.join");
    let (s, left) = waha
        .post(&format!("/api/hooked/groups/{gid}/leave"), &json!({}))
        .await;
    assert_eq!((s, left), (200, json!({ "success": true })));

    // Stop keeps the pairing: STOPPED, then start connects again without a QR.
    let (s, stopped) = waha.post("/api/sessions/hooked/stop", &json!({})).await;
    assert_eq!(
        (s, stopped["status"].as_str()),
        (201, Some("STOPPED")),
        "{stopped}"
    );
    let r = waha_hook(&hook, "session.status", |p| p["status"] == "STOPPED").await;
    check_delivery(&r, "session.status");
    let (_, list) = waha.get("/api/sessions").await;
    assert_eq!(list, json!([]));
    let (s, body) = waha.get("/api/hooked/groups").await;
    assert_error(s, &body, 409, "session_not_connected");
    let (s, started) = waha.post("/api/sessions/hooked/start", &json!({})).await;
    assert_eq!(s, 201, "{started}");
    let info = waha.wait_status("hooked", "WORKING").await;
    assert_eq!(info["me"]["id"], own_id.as_str());
    assert!(
        !hook
            .received()
            .iter()
            .rev()
            .take_while(|r| r.envelope["payload"]["status"] != "STOPPED")
            .any(|r| r.envelope["payload"]["status"] == "SCAN_QR_CODE"),
        "no new QR after a stop"
    );

    tokio::time::timeout(Duration::from_secs(30), state.shutdown())
        .await
        .expect("shutdown");
}

/// Every path of `GET /waha/openapi.json` is routed: with an unknown session each answers
/// the dialect (never the router's 404 or 405).
#[tokio::test]
async fn waha_openapi_document_lists_routed_paths() {
    let (state, waha, root, _dir) = start("/waha").await;
    let bytes = reqwest::get(format!("{root}/waha/openapi.json"))
        .await
        .expect("doc")
        .bytes()
        .await
        .expect("body");
    let doc: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["name"],
        "X-Api-Key"
    );
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() > 40, "{}", paths.len());
    let mut not_supported = 0;
    for (path, item) in paths {
        let rel = path.strip_prefix("/waha").expect("under /waha");
        let concrete = rel
            .replace("{session}", "nosuch")
            .replace("{id}", "1203630@g.us")
            .replace("{chatId}", "15550000000@c.us")
            .replace("{messageId}", "ABC");
        for (method, op) in item.as_object().expect("item") {
            if op["responses"]["501"].is_object() {
                not_supported += 1;
            }
            let method = method
                .to_uppercase()
                .parse::<reqwest::Method>()
                .expect("method");
            let body = json!({ "session": "nosuch" });
            let (s, v, _, _) = waha
                .call(method.clone(), &concrete, Some(KEY), Some(&body), None)
                .await;
            assert_ne!(s, 405, "{method} {path}");
            assert!(
                s != 404 || v["code"] == "session_not_found",
                "{method} {path}: {s} {v}"
            );
            assert!(
                v["statusCode"].is_u64() || s < 300,
                "{method} {path}: {s} {v}"
            );
        }
    }
    assert!(not_supported >= 2, "the 501 routes are marked");
    state.shutdown().await;
}
