//! End to end over HTTP with the embedded sandbox (issue 13 items 3-4): typing and presence
//! between a session and a second account's wa-engine client both ways (routes and the
//! `chat_state` / `presence` webhooks), and an incoming call rejected automatically
//! (`--auto-reject-calls`), reported as a `call` webhook, with the rejection reaching the
//! caller's account.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Api, Receiver, eventually};
use wa_engine::{ChatState, Client, Event, Jid, MemoryStore, Store};
use wa_server::{AppState, Secret, ServerConfig, Upstream, app};

const KEY: &str = "presence-admin-key-abcdefgh";
const PEER: &str = "15550300001";

async fn wait(events: &mut wa_engine::Events) -> Event {
    tokio::time::timeout(Duration::from_secs(30), events.recv())
        .await
        .expect("peer event in time")
        .expect("peer stream open")
}

async fn start() -> (AppState, Api, tempfile::TempDir) {
    start_with(|_| {}).await
}

async fn start_with(tune: impl FnOnce(&mut ServerConfig)) -> (AppState, Api, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ServerConfig::new(dir.path());
    config.api_key = Some(Secret::new(KEY));
    config.upstream = Upstream::Sandbox;
    config.webhooks.initial_backoff = Duration::from_millis(100);
    config.egress.allow_private_targets = true;
    config.auto_reject_calls = true;
    tune(&mut config);
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
    (state, Api::new(format!("http://{addr}"), Some(KEY)), dir)
}

/// The first webhook of `kind` whose data satisfies `pred`.
async fn webhook(hook: &Receiver, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
    eventually(&format!("a {kind} webhook"), || {
        hook.received()
            .into_iter()
            .map(|r| r.envelope)
            .find(|e| e["type"] == kind && pred(&e["data"]))
    })
    .await
}

#[tokio::test]
async fn typing_presence_and_an_auto_rejected_call_cross_the_http_api() {
    let (state, api, _dir) = start().await;
    let hook = Receiver::start(false).await;
    let (status, created) = api
        .post(
            "/api/sessions",
            &json!({ "id": "s1", "webhooks": [{ "url": hook.url() }] }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    api.wait_status("s1", "qr").await;
    let (status, scan) = api.post("/api/sessions/s1/sandbox/scan", &json!({})).await;
    assert_eq!(status, 200, "{scan}");
    let info = api.wait_status("s1", "connected").await;
    let me: Jid = info["jid"].as_str().expect("jid").parse().expect("JID");
    let me = me.to_non_ad();

    // The peer: another account with its own engine client.
    let sb = state.sandbox().expect("sandbox");
    let phone = sb.create_account(PEER).expect("account");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (peer, mut events) = Client::builder(store)
        .url(sb.ws_url())
        .trust_root(sb.trust_root())
        .prekey_batch(30)
        .connect()
        .await
        .expect("peer connects");
    loop {
        match wait(&mut events).await {
            Event::Qr { code, .. } => {
                phone.scan(&code).expect("scan");
            }
            Event::Connected { .. } => break,
            _ => {}
        }
    }

    // Session -> peer: typing.
    let (status, body) = api
        .post(
            "/api/sessions/s1/chat-state",
            &json!({ "to": PEER, "state": "composing" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    loop {
        if let Event::ChatState(c) = wait(&mut events).await {
            assert_eq!(c.sender, me);
            assert_eq!(c.state, ChatState::Composing);
            break;
        }
    }
    let (status, _) = api
        .post(
            "/api/sessions/s1/chat-state",
            &json!({ "to": PEER, "state": "dancing" }),
        )
        .await;
    assert_eq!(status, 422, "an unknown state is an invalid body");

    // Peer -> session: typing, and presence after a subscription.
    peer.send_chat_state(&me, ChatState::Recording)
        .await
        .expect("chat state");
    let typing = webhook(&hook, "chat_state", |d| d["state"] == "recording").await;
    assert_eq!(typing["data"]["sender"], format!("{PEER}@s.whatsapp.net"));
    let (status, body) = api
        .post(
            "/api/sessions/s1/presence/subscribe",
            &json!({ "to": PEER }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The subscription is routed before the presence that follows it on another socket.
    tokio::time::sleep(Duration::from_millis(300)).await;
    peer.set_presence(false).await.expect("presence");
    let presence = webhook(&hook, "presence", |d| d["presence"] == "unavailable").await;
    assert_eq!(presence["data"]["from"], format!("{PEER}@s.whatsapp.net"));
    assert!(
        presence["data"]["last_seen"]
            .as_u64()
            .is_some_and(|t| t > 0)
    );
    let (status, body) = api
        .post(
            "/api/sessions/s1/presence",
            &json!({ "presence": "available" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // The peer's phone calls the session, which rejects it by itself.
    let call_id = sb
        .router()
        .place_call(PEER, me.user(), false)
        .expect("call placed");
    let call = webhook(&hook, "call", |d| d["call_id"] == call_id.as_str()).await;
    assert_eq!(call["data"]["kind"], "offer");
    assert_eq!(call["data"]["auto_rejected"], true);
    loop {
        if let Event::Call(c) = wait(&mut events).await {
            assert_eq!(c.call_id, call_id);
            assert_eq!(c.kind, wa_engine::CallKind::Reject);
            break;
        }
    }
    // A manual reject through the route.
    let (status, body) = api
        .post(
            "/api/sessions/s1/calls/reject",
            &json!({ "call_id": "MANUAL1", "caller": PEER }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    eventually("the manual reject routed", || {
        sb.router()
            .call_log()
            .into_iter()
            .find(|r| r.kind == "reject" && r.call_id == "MANUAL1" && r.to == PEER)
    })
    .await;
    peer.shutdown().await;
}

#[tokio::test]
async fn a_refused_wa_version_stops_the_session_with_the_reason_and_keeps_it_paired() {
    let (state, api, _dir) = start_with(|c| c.wa_version = Some([2, 2300, 1])).await;
    let (status, created) = api.post("/api/sessions", &json!({ "id": "old" })).await;
    assert_eq!(status, 201, "{created}");
    api.wait_status("old", "qr").await;
    let (status, scan) = api.post("/api/sessions/old/sandbox/scan", &json!({})).await;
    assert_eq!(status, 200, "{scan}");
    let connected = api.wait_status("old", "connected").await;

    // WhatsApp (the sandbox) now requires a newer version than the one configured.
    let sb = state.sandbox().expect("sandbox");
    let mut gate = sb.router().gate_config();
    gate.min_app_version = Some((2, 3000, 0));
    sb.router().set_gate_config(gate);
    let (status, body) = api.post("/api/sessions/old/restart", &json!({})).await;
    assert!(status < 300, "{status} {body}");
    let stopped = api.wait_status("old", "stopped").await;
    let error = stopped["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("client outdated (405)"), "{stopped}");
    assert!(
        error.contains("2.2300.1") && error.contains("--wa-version"),
        "{stopped}"
    );
    // Still paired: same account, and once the requirement is met again the same
    // credentials log in without a QR.
    assert_eq!(stopped["jid"], connected["jid"], "{stopped}");
    gate.min_app_version = None;
    sb.router().set_gate_config(gate);
    let (status, body) = api.post("/api/sessions/old/restart", &json!({})).await;
    assert!(status < 300, "{status} {body}");
    let again = api.wait_status("old", "connected").await;
    assert_eq!(again["jid"], connected["jid"]);
}
