//! The Evolution API v2 dialect (issue 15) over HTTP with the embedded sandbox: auth and
//! error shapes (404 before 401, Evolution's error body, global key vs instance token),
//! then an instance created, paired, sending text, location, contact, reaction and poll to
//! a second account, reading messages back, and its webhook receiving Evolution envelopes
//! (compared field by field with `../shared/compat/evolution-v2.md` §7), then deleted.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Receiver, eventually};
use wa_server::{AppState, Secret, ServerConfig, Upstream, app};

const KEY: &str = "evo-global-key-abcdefghijk";
const PEER: &str = "15550300077";

async fn start() -> (AppState, String, tempfile::TempDir) {
    start_at("/evolution").await
}

/// The server with the dialect under `base_path` (`/`: at the root); returns the dialect's
/// base URL (no trailing slash).
async fn start_at(base_path: &str) -> (AppState, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ServerConfig::new(dir.path());
    config.api_key = Some(Secret::new(KEY));
    config.upstream = Upstream::Sandbox;
    config.webhooks.initial_backoff = Duration::from_millis(100);
    config.egress.allow_private_targets = true;
    config.send_limits = wa_server::SendLimitSettings::unlimited();
    config.dialects.evolution = Some(base_path.to_owned());
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
    let base = format!("http://{addr}{}", base_path.trim_end_matches('/'));
    (state, base, dir)
}

/// One request with `apikey: key` (none when `None`).
async fn call(method: &str, url: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut req = match method {
        "GET" => client.get(url),
        "DELETE" => client.delete(url),
        _ => client.post(url),
    };
    if let Some(k) = key {
        req = req.header("apikey", k);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn assert_error(body: &Value, status: u16, error: &str) {
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert!(
        body["response"]["message"].is_array() || body["response"]["message"].is_string(),
        "{body}"
    );
}

#[tokio::test]
async fn auth_and_error_shapes_follow_evolution() {
    let (_state, base, _dir) = start().await;
    // GET / needs no key and reports a 2.x version.
    let (status, root) = call("GET", &format!("{base}/"), None, None).await;
    assert_eq!(status, 200, "{root}");
    assert!(
        root["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("2."))
    );
    // verify-creds: global key only.
    let (status, _) = call("POST", &format!("{base}/verify-creds"), Some(KEY), None).await;
    assert_eq!(status, 200);
    let (status, body) = call("POST", &format!("{base}/verify-creds"), Some("nope"), None).await;
    assert_eq!(status, 401);
    assert_error(&body, 401, "Unauthorized");
    // Create needs the global key.
    let create = json!({ "instanceName": "evo1", "token": "INSTANCE-TOKEN-1" });
    let (status, body) = call(
        "POST",
        &format!("{base}/instance/create"),
        None,
        Some(create.clone()),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = call(
        "POST",
        &format!("{base}/instance/create"),
        Some(KEY),
        Some(create.clone()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["hash"], "INSTANCE-TOKEN-1");
    assert_eq!(body["instance"]["instanceName"], "evo1");
    assert_eq!(body["instance"]["integration"], "WHATSAPP-BAILEYS");
    let (status, body) = call(
        "POST",
        &format!("{base}/instance/create"),
        Some(KEY),
        Some(create),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["response"]["message"][0],
        "This name \"evo1\" is already in use."
    );
    // 404 for an unknown instance comes before 401.
    let (status, body) = call(
        "GET",
        &format!("{base}/instance/connectionState/ghost"),
        Some("wrong"),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_error(&body, 404, "Not Found");
    assert_eq!(
        body["response"]["message"][0],
        "The \"ghost\" instance does not exist"
    );
    // A wrong key on a real instance: 401; its own token and the global key work.
    let (status, body) = call(
        "GET",
        &format!("{base}/instance/connectionState/evo1"),
        Some("wrong"),
        None,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_error(&body, 401, "Unauthorized");
    let (status, body) = call(
        "GET",
        &format!("{base}/instance/connectionState/evo1"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    for key in [KEY, "INSTANCE-TOKEN-1"] {
        let (status, body) = call(
            "GET",
            &format!("{base}/instance/connectionState/evo1"),
            Some(key),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["instance"]["instanceName"], "evo1");
        assert!(
            ["open", "connecting", "close"]
                .contains(&body["instance"]["state"].as_str().unwrap_or_default())
        );
    }
    // fetchInstances: the global key sees all (no token), an instance token only its own.
    let (status, all) = call(
        "GET",
        &format!("{base}/instance/fetchInstances"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all.as_array().map(Vec::len), Some(1));
    assert_eq!(all[0]["name"], "evo1");
    assert!(all[0]["id"].as_str().is_some_and(|s| s.len() == 36));
    assert!(all[0]["Setting"].is_object());
    let (status, own) = call(
        "GET",
        &format!("{base}/instance/fetchInstances"),
        Some("INSTANCE-TOKEN-1"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own[0]["token"], "INSTANCE-TOKEN-1");
    let (status, _) = call(
        "GET",
        &format!("{base}/instance/fetchInstances"),
        Some("other"),
        None,
    )
    .await;
    assert_eq!(status, 401);
    // Validation: a missing required property, in the validator's words.
    let (status, body) = call(
        "POST",
        &format!("{base}/message/sendText/evo1"),
        Some(KEY),
        Some(json!({"number": "1"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["response"]["message"][0],
        "instance requires property \"text\""
    );
    // Not implemented: 501 with Evolution's error body.
    let (status, body) = call(
        "POST",
        &format!("{base}/message/sendList/evo1"),
        Some(KEY),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 501, "{body}");
    assert_error(&body, 501, "Not Implemented");
    // Unknown route: Evolution's 404.
    let (status, body) = call("GET", &format!("{base}/nope/x"), Some(KEY), None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["response"]["message"][0], "Cannot GET /nope/x");
    // settings and webhook (nested body, n8n's spellings).
    let (status, body) = call(
        "POST",
        &format!("{base}/settings/set/evo1"),
        Some(KEY),
        Some(json!({
        "rejectCall": true, "groupsIgnore": false, "alwaysOnline": false, "readMessages": false,
        "readStatus": false, "syncFullHistory": false, "msgCall": "busy"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["settings"]["settings"]["rejectCall"], true);
    let (_, body) = call(
        "GET",
        &format!("{base}/settings/find/evo1"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(body["msgCall"], "busy");
    let (_, body) = call("GET", &format!("{base}/webhook/find/evo1"), Some(KEY), None).await;
    assert_eq!(body, Value::Null);
    let (status, body) = call("POST", &format!("{base}/webhook/set/evo1"), Some(KEY), Some(json!({"webhook": {
        "enabled": true, "url": "http://127.0.0.1:9/hook", "webhookByEvents": true, "webhookBase64": false,
        "events": ["MESSAGES_UPSERT"]}}))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["webhookByEvents"], true);
    assert_eq!(body["events"], json!(["MESSAGES_UPSERT"]));
    let (status, body) = call(
        "POST",
        &format!("{base}/webhook/set/evo1"),
        Some(KEY),
        Some(json!({"webhook": {
        "enabled": true, "url": "http://x", "events": ["NOT_AN_EVENT"]}})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // delete
    let (status, body) = call(
        "DELETE",
        &format!("{base}/instance/delete/evo1"),
        Some("INSTANCE-TOKEN-1"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["response"]["message"], "Instance deleted");
    let (status, _) = call(
        "GET",
        &format!("{base}/instance/connectionState/evo1"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

async fn hook_event(hook: &Receiver, event: &str, pred: impl Fn(&Value) -> bool) -> Value {
    hook_delivery(hook, event, pred).await.envelope
}

/// The first delivery of Evolution event `event` (wire name) whose `data` matches.
async fn hook_delivery(
    hook: &Receiver,
    event: &str,
    pred: impl Fn(&Value) -> bool,
) -> support::Received {
    eventually(&format!("a {event} webhook"), || {
        hook.received()
            .into_iter()
            .find(|r| r.envelope["event"] == event && pred(&r.envelope["data"]))
    })
    .await
}

#[tokio::test]
async fn an_instance_pairs_sends_reads_back_and_delivers_evolution_webhooks() {
    let (state, base, _dir) = start().await;
    let hook = Receiver::start(false).await;
    let (status, body) = call(
        "POST",
        &format!("{base}/instance/create"),
        Some(KEY),
        Some(json!({
        "instanceName": "evo2", "qrcode": true, "integration": "WHATSAPP-BAILEYS",
        "webhook": { "url": hook.url(), "byEvents": false, "events": [] }})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let token = body["hash"].as_str().expect("hash").to_owned();
    assert!(
        body["qrcode"]["base64"]
            .as_str()
            .is_some_and(|b| b.starts_with("data:image/png;base64,")),
        "{body}"
    );
    // QRCODE_UPDATED in Evolution's envelope.
    let qr = hook_event(&hook, "qrcode.updated", |_| true).await;
    for field in [
        "event",
        "instance",
        "data",
        "destination",
        "date_time",
        "sender",
        "server_url",
        "apikey",
    ] {
        assert!(qr.get(field).is_some(), "envelope lacks {field}: {qr}");
    }
    assert_eq!(qr["instance"], "evo2");
    assert!(qr["data"]["qrcode"]["code"].is_string(), "{qr}");
    assert!(qr["date_time"].as_str().is_some_and(|t| t.ends_with('Z')));

    // Pair through the sandbox phone (native route, admin key).
    let http = reqwest::Client::new();
    let root = base.trim_end_matches("/evolution");
    let resp = http
        .post(format!("{root}/api/sessions/evo2/sandbox/scan"))
        .header("x-api-key", KEY)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("scan");
    assert_eq!(resp.status().as_u16(), 200);
    let open = hook_event(&hook, "connection.update", |d| d["state"] == "open").await;
    assert_eq!(open["data"]["instance"], "evo2");
    assert_eq!(open["data"]["statusReason"], 200);
    assert!(
        open["data"]["wuid"]
            .as_str()
            .is_some_and(|w| w.ends_with("@s.whatsapp.net"))
    );
    assert!(
        open["sender"]
            .as_str()
            .is_some_and(|w| w.ends_with("@s.whatsapp.net"))
    );
    let (_, st) = call(
        "GET",
        &format!("{base}/instance/connectionState/evo2"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(st["instance"]["state"], "open");

    // A second account with a connected client.
    let (_peer, _events) = support::connect_peer(&state, PEER).await;

    // whatsappNumbers
    let (status, nums) = call(
        "POST",
        &format!("{base}/chat/whatsappNumbers/evo2"),
        Some(&token),
        Some(json!({"numbers": [PEER, "15550309999"]})),
    )
    .await;
    assert_eq!(status, 200, "{nums}");
    assert_eq!(nums[0]["exists"], true);
    assert_eq!(nums[0]["jid"], format!("{PEER}@s.whatsapp.net"));
    assert_eq!(nums[1]["exists"], false);
    // A send to a number without an account: 400 with the check's result.
    let (status, body) = call(
        "POST",
        &format!("{base}/message/sendText/evo2"),
        Some(&token),
        Some(json!({"number": "15550309999", "text": "x"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["response"]["message"][0]["exists"], false);

    // sendText: the message row.
    let (status, sent) = call(
        "POST",
        &format!("{base}/message/sendText/evo2"),
        Some(&token),
        Some(json!({"number": PEER, "text": "hello evo"})),
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["key"]["remoteJid"], format!("{PEER}@s.whatsapp.net"));
    assert_eq!(sent["key"]["fromMe"], true);
    assert_eq!(sent["message"]["conversation"], "hello evo");
    assert_eq!(sent["messageType"], "conversation");
    assert_eq!(sent["status"], "PENDING");
    let text_id = sent["key"]["id"].as_str().expect("id").to_owned();
    let send_msg = hook_event(&hook, "send.message", |d| {
        d["key"]["id"] == text_id.as_str()
    })
    .await;
    assert_eq!(send_msg["data"]["message"]["conversation"], "hello evo");
    hook_event(&hook, "messages.update", |d| d["keyId"] == text_id.as_str()).await;

    // location, contact, reaction, poll
    let (status, loc) = call("POST", &format!("{base}/message/sendLocation/evo2"), Some(&token),
        Some(json!({"number": PEER, "latitude": -6.2, "longitude": 106.8, "name": "Monas", "address": "Jakarta"}))).await;
    assert_eq!(status, 201, "{loc}");
    assert_eq!(loc["messageType"], "locationMessage");
    assert_eq!(loc["message"]["locationMessage"]["name"], "Monas");
    let (status, card) = call("POST", &format!("{base}/message/sendContact/evo2"), Some(&token),
        Some(json!({"number": PEER, "contact": [{"fullName": "Ana", "phoneNumber": "5511999999999"}]}))).await;
    assert_eq!(status, 201, "{card}");
    assert_eq!(card["messageType"], "contactMessage");
    let (status, react) = call("POST", &format!("{base}/message/sendReaction/evo2"), Some(&token),
        Some(json!({"key": {"id": text_id, "remoteJid": format!("{PEER}@s.whatsapp.net"), "fromMe": true}, "reaction": "👍"}))).await;
    assert_eq!(status, 201, "{react}");
    assert_eq!(react["messageType"], "reactionMessage");
    let (status, poll) = call("POST", &format!("{base}/message/sendPoll/evo2"), Some(&token),
        Some(json!({"number": PEER, "name": "Lunch?", "selectableCount": 1, "values": ["yes", "no"]}))).await;
    assert_eq!(status, 201, "{poll}");
    assert_eq!(poll["message"]["pollCreationMessage"]["name"], "Lunch?");

    // An incoming message: MESSAGES_UPSERT.
    let me = open["data"]["wuid"]
        .as_str()
        .expect("wuid")
        .parse::<wa_engine::Jid>()
        .expect("jid");
    _peer
        .send_text(&me, "hi from peer")
        .await
        .expect("peer sends");
    let up = hook_event(&hook, "messages.upsert", |d| {
        d["message"]["conversation"] == "hi from peer"
    })
    .await;
    assert_eq!(up["data"]["key"]["fromMe"], false);
    assert_eq!(up["data"]["status"], "DELIVERY_ACK");
    assert_eq!(up["data"]["messageType"], "conversation");
    assert!(up["data"]["instanceId"].is_string());
    assert!(up["data"]["messageTimestamp"].is_u64());

    // group/*: create with the peer, list, read.
    let (status, group) = call(
        "POST",
        &format!("{base}/group/create/evo2"),
        Some(&token),
        Some(json!({"subject": "Evo team", "participants": [PEER]})),
    )
    .await;
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_str().expect("group id").to_owned();
    assert!(gid.ends_with("@g.us"));
    assert_eq!(group["subject"], "Evo team");
    let (status, all) = call(
        "GET",
        &format!("{base}/group/fetchAllGroups/evo2?getParticipants=false"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{all}");
    assert!(
        all.as_array().is_some_and(|g| g
            .iter()
            .any(|g| g["id"] == gid.as_str() && g.get("participants").is_none())),
        "{all}"
    );
    let (status, _) = call(
        "GET",
        &format!("{base}/group/fetchAllGroups/evo2"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 400);
    let (status, info) = call(
        "GET",
        &format!(
            "{base}/group/findGroupInfos/evo2?groupJid={}",
            gid.trim_end_matches("@g.us")
        ),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{info}");
    assert!(
        info["participants"].as_array().is_some_and(|p| p
            .iter()
            .any(|p| p["id"] == format!("{PEER}@s.whatsapp.net"))),
        "{info}"
    );
    let (status, parts) = call(
        "GET",
        &format!("{base}/group/participants/evo2?groupJid={gid}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{parts}");
    assert!(
        parts["participants"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["admin"] == "superadmin")),
        "{parts}"
    );
    // Admin changes: promote and demote the peer, each answering its per-member status.
    for action in ["promote", "demote"] {
        let (status, body) = call(
            "POST",
            &format!("{base}/group/updateParticipant/evo2?groupJid={gid}"),
            Some(&token),
            Some(json!({"action": action, "participants": [PEER]})),
        )
        .await;
        assert_eq!(status, 201, "{action}: {body}");
        assert_eq!(body["updateParticipants"][0]["status"], "200", "{body}");
        let (_, parts) = call(
            "GET",
            &format!("{base}/group/participants/evo2?groupJid={gid}"),
            Some(&token),
            None,
        )
        .await;
        let peer_role = parts["participants"]
            .as_array()
            .and_then(|p| {
                p.iter()
                    .find(|p| p["id"] == format!("{PEER}@s.whatsapp.net"))
            })
            .map(|p| p["admin"].clone());
        let want = if action == "promote" {
            json!("admin")
        } else {
            Value::Null
        };
        assert_eq!(peer_role, Some(want), "{action}: {parts}");
    }
    let (status, body) = call(
        "POST",
        &format!("{base}/group/updateParticipant/evo2?groupJid={gid}"),
        Some(&token),
        Some(json!({"action": "crown", "participants": [PEER]})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // Settings.
    let (status, body) = call(
        "POST",
        &format!("{base}/group/updateSetting/evo2?groupJid={gid}"),
        Some(&token),
        Some(json!({"action": "announcement"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(body.get("updateSetting").is_some(), "{body}");
    let (status, body) = call(
        "POST",
        &format!("{base}/group/updateSetting/evo2?groupJid={gid}"),
        Some(&token),
        Some(json!({"action": "loud"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // Invite code, then a revoke that changes it.
    let (status, body) = call(
        "GET",
        &format!("{base}/group/inviteCode/evo2?groupJid={gid}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let code = body["inviteCode"].as_str().expect("inviteCode").to_owned();
    assert!(!code.is_empty(), "{body}");
    assert_eq!(
        body["inviteUrl"],
        format!("https://chat.whatsapp.com/{code}"),
        "{body}"
    );
    let (status, body) = call(
        "POST",
        &format!("{base}/group/revokeInviteCode/evo2?groupJid={gid}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["revoked"], true, "{body}");
    let fresh = body["inviteCode"].as_str().expect("new inviteCode");
    assert!(!fresh.is_empty() && fresh != code, "{body}");
    // Subject, description, picture.
    let (status, body) = call(
        "POST",
        &format!("{base}/group/updateGroupSubject/evo2?groupJid={gid}"),
        Some(&token),
        Some(json!({"subject": "Evo renamed"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["update"], "success");
    let (_, info) = call(
        "GET",
        &format!("{base}/group/findGroupInfos/evo2?groupJid={gid}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(info["subject"], "Evo renamed", "{info}");
    let (status, body) = call(
        "POST",
        &format!("{base}/group/updateGroupDescription/evo2?groupJid={gid}"),
        Some(&token),
        Some(json!({"description": "What the team is for"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["update"], "success");
    let (status, body) = call(
        "POST",
        &format!("{base}/group/updateGroupPicture/evo2?groupJid={gid}"),
        Some(&token),
        Some(json!({"image": "/9j/4AAQSkZJRgABAQAAAQABAAD/2Q=="})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["update"], "success");
    let (status, body) = call(
        "POST",
        &format!("{base}/group/updateGroupPicture/evo2?groupJid={gid}"),
        Some(&token),
        Some(json!({"image": "aGVsbG8="})),
    )
    .await;
    assert_eq!(status, 400, "not a JPEG: {body}");

    // findMessages from the message log.
    let (status, found) = call("POST", &format!("{base}/chat/findMessages/evo2"), Some(&token),
        Some(json!({"where": {"key": {"remoteJid": format!("{PEER}@s.whatsapp.net")}}, "page": 1, "offset": 10}))).await;
    assert_eq!(status, 200, "{found}");
    let total = found["messages"]["total"].as_u64().expect("total");
    assert!(total >= 4, "{found}");
    let records = found["messages"]["records"].as_array().expect("records");
    assert!(
        records.iter().any(|r| r["key"]["id"] == text_id.as_str()),
        "{found}"
    );
    let (status, chats) = call(
        "POST",
        &format!("{base}/chat/findChats/evo2"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{chats}");
    assert!(chats.as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["remoteJid"] == format!("{PEER}@s.whatsapp.net"))
    }));

    // Leave the group: it is gone from fetchAllGroups and its info is refused.
    let (status, body) = call(
        "DELETE",
        &format!("{base}/group/leaveGroup/evo2?groupJid={gid}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"groupJid": gid, "leave": true}));
    let (status, all) = call(
        "GET",
        &format!("{base}/group/fetchAllGroups/evo2?getParticipants=false"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{all}");
    assert!(
        all.as_array()
            .is_some_and(|g| g.iter().all(|g| g["id"] != gid.as_str())),
        "{all}"
    );

    // delete
    let (status, body) = call(
        "DELETE",
        &format!("{base}/instance/delete/evo2"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    state.shutdown().await;
}

/// The venv of the pinned Evolution clients (`target/ci-tools/evo-venv`), built once per
/// content of `requirements-evolution.txt` (a stamp file holds the content it was built
/// from). Returns its python.
fn evolution_venv() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let reqs = root.join("wa-server/tests/requirements-evolution.txt");
    let want = std::fs::read_to_string(&reqs).expect("requirements-evolution.txt");
    let venv = root.join("target/ci-tools/evo-venv");
    let python = venv.join("bin/python");
    let stamp = venv.join("requirements.stamp");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) && python.exists() {
        return python;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let ok = std::process::Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .expect("python3 -m venv")
        .success();
    assert!(ok, "cannot create {}", venv.display());
    let ok = std::process::Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&reqs)
        .status()
        .expect("pip install")
        .success();
    assert!(ok, "pip install -r {} failed", reqs.display());
    std::fs::write(&stamp, want).expect("stamp");
    python
}

/// The published Python clients drive the dialect end to end (`tests/evolution_clients.py`:
/// responses parse into pyevolutionapi's pydantic models); the webhooks it configured arrive
/// in Evolution's envelope on per-event URLs (`webhookByEvents`), field by field as in
/// `evolution-v2.md` §7.
#[tokio::test]
async fn python_clients_drive_the_dialect() {
    let python = tokio::task::spawn_blocking(evolution_venv)
        .await
        .expect("venv task");
    // pyevolutionapi 0.1.1 joins paths with `urljoin(base_url.rstrip("/"), ...)`, which
    // drops any path of the base URL: it only works with the dialect at the root.
    let (state, base, _dir) = start_at("/").await;
    let hook = Receiver::start(false).await;
    let (peer, _events) = support::connect_peer(&state, PEER).await;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/evolution_clients.py");
    let root = base.clone();
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .env("EVO_BASE", format!("{base}/"))
        .env("EVO_ROOT", &root)
        .env("EVO_KEY", KEY)
        .env("EVO_PEER", PEER)
        .env("EVO_HOOK", hook.url())
        .output()
        .await
        .expect("run the driver");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "driver failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("driver output {stdout:?}: {e}"));
    let text_id = result["text_id"].as_str().expect("text_id").to_owned();

    // Per-event URLs and Evolution's envelope, field by field (evolution-v2.md §7).
    let hook_url = hook.url();
    let hook_base = hook_url.trim_end_matches('/');
    let delivery = hook_delivery(&hook, "send.message", |d| {
        d["key"]["id"] == text_id.as_str()
    })
    .await;
    assert_eq!(delivery.path, "/hook/send-message");
    let sent = delivery.envelope;
    assert_eq!(
        sent["destination"],
        format!("{hook_base}/send-message"),
        "{sent}"
    );
    let keys: Vec<&str> = sent
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "apikey",
            "data",
            "date_time",
            "destination",
            "event",
            "instance",
            "sender",
            "server_url"
        ]
    );
    let data = &sent["data"];
    for field in [
        "key",
        "pushName",
        "status",
        "message",
        "messageType",
        "messageTimestamp",
        "instanceId",
        "source",
    ] {
        assert!(
            data.get(field).is_some(),
            "SEND_MESSAGE data lacks {field}: {data}"
        );
    }
    assert_eq!(data["key"]["fromMe"], true);
    assert_eq!(data["message"]["conversation"], "hello from pyevolutionapi");
    let update = hook_event(&hook, "messages.update", |d| d["keyId"] == text_id.as_str()).await;
    assert_eq!(
        update["destination"],
        format!("{hook_base}/messages-update")
    );
    let d = &update["data"];
    for field in [
        "keyId",
        "remoteJid",
        "fromMe",
        "participant",
        "status",
        "instanceId",
    ] {
        assert!(
            d.get(field).is_some(),
            "MESSAGES_UPDATE data lacks {field}: {d}"
        );
    }
    assert!(
        ["SERVER_ACK", "DELIVERY_ACK", "READ"].contains(&d["status"].as_str().unwrap_or_default())
    );
    let conn = hook_event(&hook, "connection.update", |d| d["state"] == "open").await;
    assert_eq!(
        conn["destination"],
        format!("{hook_base}/connection-update")
    );
    for field in [
        "instance",
        "wuid",
        "profileName",
        "profilePictureUrl",
        "state",
        "statusReason",
    ] {
        assert!(
            conn["data"].get(field).is_some(),
            "CONNECTION_UPDATE data lacks {field}: {conn}"
        );
    }
    let qr = hook_event(&hook, "qrcode.updated", |_| true).await;
    assert_eq!(qr["destination"], format!("{hook_base}/qrcode-updated"));
    for field in ["instance", "pairingCode", "code", "base64"] {
        assert!(
            qr["data"]["qrcode"].get(field).is_some(),
            "QRCODE_UPDATED lacks {field}: {qr}"
        );
    }
    // An incoming message: MESSAGES_UPSERT on its own URL.
    let me: wa_engine::Jid = conn["data"]["wuid"]
        .as_str()
        .expect("wuid")
        .parse()
        .expect("jid");
    peer.send_text(&me, "reply from peer")
        .await
        .expect("peer sends");
    let up = hook_event(&hook, "messages.upsert", |d| {
        d["message"]["conversation"] == "reply from peer"
    })
    .await;
    assert_eq!(up["destination"], format!("{hook_base}/messages-upsert"));
    assert_eq!(
        up["data"]["key"]["remoteJid"],
        format!("{PEER}@s.whatsapp.net")
    );
    assert_eq!(up["data"]["key"]["fromMe"], false);
    assert_eq!(up["data"]["status"], "DELIVERY_ACK");
    state.shutdown().await;
}
