//! End to end over HTTP with the embedded sandbox (issue 13 items 3-4): typing and presence
//! between a session and a second account's wa-engine client both ways (routes and the
//! `chat_state` / `presence` webhooks), and an incoming call rejected automatically
//! (`--auto-reject-calls`), reported as a `call` webhook, with the rejection reaching the
//! caller's account.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Receiver, connect_peer, eventually, next_event as wait, pair_session, webhook};
use wa_engine::{ChatState, Event};
use wa_server::{AppState, ServerConfig};

const KEY: &str = "presence-admin-key-abcdefgh";
const PEER: &str = "15550300001";

async fn start() -> (AppState, support::Api, tempfile::TempDir) {
    start_with(|_| {}).await
}

async fn start_with(
    tune: impl FnOnce(&mut ServerConfig),
) -> (AppState, support::Api, tempfile::TempDir) {
    support::start_sandbox(KEY, |config| {
        config.auto_reject_calls = true;
        tune(config);
    })
    .await
}

#[tokio::test]
async fn typing_presence_and_an_auto_rejected_call_cross_the_http_api() {
    let (state, api, _dir) = start().await;
    let hook = Receiver::start(false).await;
    let me = pair_session(&api, "s1", &hook.url()).await;

    // The peer: another account with its own engine client.
    let sb = state.sandbox().expect("sandbox");
    let (peer, mut events) = connect_peer(&state, PEER).await;

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
