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
    start_with(base_path, |_| {}).await
}

/// [`start_at`] with `tweak` applied to the configuration last.
async fn start_with(
    base_path: &str,
    tweak: impl FnOnce(&mut ServerConfig),
) -> (AppState, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ServerConfig::new(dir.path());
    config.api_key = Some(Secret::new(KEY));
    config.upstream = Upstream::Sandbox;
    config.webhooks.initial_backoff = Duration::from_millis(100);
    config.egress.allow_private_targets = true;
    config.send_limits = wa_server::SendLimitSettings::unlimited();
    config.dialects.evolution = Some(base_path.to_owned());
    tweak(&mut config);
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

/// The examples of `../shared/compat/evolution-v2.md`, by name: each event of §7's `data`
/// table (`QRCODE_UPDATED`, `CONNECTION_UPDATE`, ...: the table's example column),
/// `SEND_MESSAGE` (§3's send response, which §7 points to) and `ENVELOPE` (§7's envelope,
/// its `data` placeholder `{…}` read as `{}`).
fn compat_examples() -> std::collections::HashMap<String, Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/compat/evolution-v2.md");
    let doc = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut out = std::collections::HashMap::new();
    // The first ```json block after `marker`.
    let block_after = |marker: &str| -> Value {
        let from = doc.find(marker).unwrap_or_else(|| panic!("no {marker:?}"));
        let rest = &doc[from..];
        let start = rest.find("```json\n").expect("a json block") + "```json\n".len();
        let end = rest[start..].find("```").expect("block end");
        let text = rest[start..start + end].replace("{…}", "{}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{marker}: {e}\n{text}"))
    };
    out.insert("ENVELOPE".to_owned(), block_after("**Envelope**"));
    out.insert("SEND_MESSAGE".to_owned(), block_after("Send response"));
    let table = &doc[doc.find("**`data` shapes**").expect("the data table")..];
    for line in table.lines().filter(|l| l.starts_with("| ")) {
        let name = line[2..].split(' ').next().unwrap_or_default();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
            continue;
        }
        let cell = line.trim_end().trim_end_matches('|').trim_end();
        let Some(cell) = cell.strip_suffix('`') else {
            continue; // "see §3"
        };
        let start = cell.rfind('`').expect("example start") + 1;
        let example: Value = serde_json::from_str(&cell[start..])
            .unwrap_or_else(|e| panic!("{name} example: {e}\n{}", &cell[start..]));
        out.insert(name.to_owned(), example);
    }
    out
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Compares `ours` with `example` field by field: every field of the example is present
/// with the same JSON type (an example `null` allows any type; paths in `nullable` may be
/// `null` in ours, the value being unknown here), recursively, an example array's first
/// item against each of ours. Problems go to `missing`; fields the example lacks to `extra`.
fn compare_fields(
    example: &Value,
    ours: &Value,
    path: &str,
    nullable: &[&str],
    missing: &mut Vec<String>,
    extra: &mut Vec<String>,
) {
    match (example, ours) {
        (Value::Null, _) => {}
        (_, Value::Null) if nullable.contains(&path) => {}
        (Value::Object(e), Value::Object(o)) => {
            for (k, ev) in e {
                let p = format!("{path}.{k}");
                match o.get(k) {
                    Some(ov) => compare_fields(ev, ov, &p, nullable, missing, extra),
                    None => missing.push(format!("{p} absent")),
                }
            }
            for k in o.keys().filter(|k| !e.contains_key(*k)) {
                extra.push(format!("{path}.{k}"));
            }
        }
        (Value::Array(e), Value::Array(o)) => {
            if let Some(first) = e.first() {
                if o.is_empty() {
                    missing.push(format!("{path}[] empty"));
                }
                for item in o {
                    compare_fields(first, item, &format!("{path}[]"), nullable, missing, extra);
                }
            }
        }
        (e, o) if json_type(e) != json_type(o) => missing.push(format!(
            "{path}: {} in the example, {} here ({o})",
            json_type(e),
            json_type(o)
        )),
        _ => {}
    }
}

/// `ours` (the `data` of event `name`, or the whole envelope for `ENVELOPE`) against the
/// compat example: no field missing or of another type, and exactly `extra` fields added.
fn assert_like_example(
    examples: &std::collections::HashMap<String, Value>,
    name: &str,
    ours: &Value,
    nullable: &[&str],
    extra: &[&str],
) {
    let example = examples
        .get(name)
        .unwrap_or_else(|| panic!("evolution-v2.md has no {name} example"));
    let (mut missing, mut added) = (Vec::new(), Vec::new());
    // The envelope's example leaves `data` out (each event's is compared on its own).
    let mut ours = ours.clone();
    if name == "ENVELOPE" {
        ours["data"] = json!({});
    }
    let ours = &ours;
    compare_fields(example, ours, "", nullable, &mut missing, &mut added);
    assert!(
        missing.is_empty(),
        "{name} differs from the compat example: {missing:?}\nexample: {example}\nours: {ours}"
    );
    added.sort();
    added.dedup();
    let mut want: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    assert_eq!(
        added, want,
        "{name}: fields beyond the example\nours: {ours}"
    );
}

/// Every Evolution event the dialect emits for which `../shared/compat/evolution-v2.md` has
/// an example, compared with it field by field (`compare_fields`): the envelope,
/// QRCODE_UPDATED, CONNECTION_UPDATE, SEND_MESSAGE, MESSAGES_UPDATE, MESSAGES_UPSERT,
/// GROUPS_UPSERT (a group the peer creates with this account), GROUP_PARTICIPANTS_UPDATE
/// (the peer adds a third account) and CALL (the peer's phone calls). The fields we add
/// are listed per event.
#[tokio::test]
async fn webhook_payloads_match_the_compat_examples_field_by_field() {
    let examples = compat_examples();
    let (state, base, _dir) = start().await;
    let hook = Receiver::start(false).await;
    let (status, body) = call(
        "POST",
        &format!("{base}/instance/create"),
        Some(KEY),
        Some(json!({ "instanceName": "cmp", "qrcode": true,
                     "webhook": { "url": hook.url(), "enabled": true, "events": [] } })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let qr = hook_event(&hook, "qrcode.updated", |_| true).await;
    // `apikey` is null (the example allows it: the token is only kept as a digest);
    // `sender` is the instance's own JID, which it has once paired (checked below).
    assert_like_example(&examples, "ENVELOPE", &qr, &[".apikey", ".sender"], &[]);
    // No pairing code in a QR round: `pairingCode` is null, as the example has it.
    assert_like_example(&examples, "QRCODE_UPDATED", &qr["data"], &[], &[]);

    let http = reqwest::Client::new();
    let root = base.trim_end_matches("/evolution");
    let resp = http
        .post(format!("{root}/api/sessions/cmp/sandbox/scan"))
        .header("x-api-key", KEY)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("scan");
    assert_eq!(resp.status().as_u16(), 200);
    let open = hook_event(&hook, "connection.update", |d| d["state"] == "open").await;
    assert_like_example(&examples, "ENVELOPE", &open, &[".apikey"], &[]);
    // The sandbox account has no push name until one is set: `profileName` may be null.
    assert_like_example(
        &examples,
        "CONNECTION_UPDATE",
        &open["data"],
        &[".profileName"],
        &[],
    );
    let me: wa_engine::Jid = open["data"]["wuid"]
        .as_str()
        .expect("wuid")
        .parse()
        .expect("jid");

    let (peer, _events) = support::connect_peer(&state, PEER).await;
    let (status, sent) = call(
        "POST",
        &format!("{base}/message/sendText/cmp"),
        Some(KEY),
        Some(json!({"number": PEER, "text": "compare me"})),
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    let id = sent["key"]["id"].as_str().expect("id").to_owned();
    // The send answer itself is §3's row (plus `message.key`, see `with_key_in_message`).
    assert_like_example(&examples, "SEND_MESSAGE", &sent, &[], &[".message.key"]);
    let send = hook_event(&hook, "send.message", |d| d["key"]["id"] == id.as_str()).await;
    assert_like_example(&examples, "SEND_MESSAGE", &send["data"], &[], &[]);
    let update = hook_event(&hook, "messages.update", |d| d["keyId"] == id.as_str()).await;
    assert_like_example(&examples, "MESSAGES_UPDATE", &update["data"], &[], &[]);

    peer.send_text(&me, "incoming to compare")
        .await
        .expect("peer sends");
    let up = hook_event(&hook, "messages.upsert", |d| {
        d["message"]["conversation"] == "incoming to compare"
    })
    .await;
    // Our rows carry `contextInfo` (null) as the send rows of §3 do.
    assert_like_example(
        &examples,
        "MESSAGES_UPSERT",
        &up["data"],
        &[],
        &[".contextInfo"],
    );

    // The peer creates a group with this account: GROUPS_UPSERT.
    let group = peer
        .create_group("Compare", std::slice::from_ref(&me))
        .await
        .expect("group created");
    let gid = group.jid.to_string();
    let upsert = hook_event(&hook, "groups.upsert", |d| d[0]["id"] == gid.as_str()).await;
    // Baileys' GroupMetadata carries more than the example shows; we send its fields
    // (as fetchAllGroups does) and `author`. A member's `admin` is null (evolution-v2.md §5:
    // `admin: null|"admin"|"superadmin"`).
    assert_like_example(
        &examples,
        "GROUPS_UPSERT",
        &upsert["data"],
        &["[].participants[].admin"],
        &[
            "[].announce",
            "[].author",
            "[].desc",
            "[].descId",
            "[].isCommunity",
            "[].isCommunityAnnounce",
            "[].linkedParent",
            "[].pictureUrl",
            "[].restrict",
            "[].size",
            "[].subjectOwner",
            "[].subjectTime",
        ],
    );
    assert_eq!(upsert["data"][0]["subject"], "Compare", "{upsert}");

    // The peer adds a third account: GROUP_PARTICIPANTS_UPDATE.
    let third = "15550300078";
    state
        .sandbox()
        .expect("sandbox")
        .create_account(third)
        .expect("third account");
    let third_jid = wa_engine::Jid::pn(third);
    peer.add_participants(&group.jid, std::slice::from_ref(&third_jid))
        .await
        .expect("added");
    let added = hook_event(&hook, "group-participants.update", |d| {
        d["action"] == "add" && d["id"] == gid.as_str()
    })
    .await;
    assert_like_example(
        &examples,
        "GROUP_PARTICIPANTS_UPDATE",
        &added["data"],
        &[],
        &[],
    );
    assert_eq!(
        added["data"]["participants"],
        json!([third_jid.to_string()]),
        "{added}"
    );

    // The peer's phone calls: CALL.
    let call_id = state
        .sandbox()
        .expect("sandbox")
        .router()
        .place_call(PEER, me.user(), false)
        .expect("call placed");
    let ring = hook_event(&hook, "call", |d| d["id"] == call_id.as_str()).await;
    assert_like_example(&examples, "CALL", &ring["data"], &[], &[]);
    assert_eq!(ring["data"]["status"], "offer", "{ring}");
    assert_eq!(ring["data"]["from"], format!("{PEER}@s.whatsapp.net"));
    state.shutdown().await;
}

/// Creates instance `name` and pairs it through the sandbox phone; returns its own JID.
async fn paired_instance(base: &str, name: &str) -> wa_engine::Jid {
    let (status, body) = call(
        "POST",
        &format!("{base}/instance/create"),
        Some(KEY),
        Some(json!({ "instanceName": name })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let root = base.trim_end_matches("/evolution");
    // 409 until the session shows its first QR.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let resp = reqwest::Client::new()
            .post(format!("{root}/api/sessions/{name}/sandbox/scan"))
            .header("x-api-key", KEY)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("scan");
        if resp.status().as_u16() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "scan: {}",
            resp.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let jid = loop {
        let bytes = reqwest::Client::new()
            .get(format!("{root}/api/sessions/{name}"))
            .header("x-api-key", KEY)
            .send()
            .await
            .expect("session")
            .bytes()
            .await
            .expect("session body");
        let v: Value = serde_json::from_slice(&bytes).expect("session JSON");
        if v["status"] == "connected"
            && let Some(jid) = v["jid"].as_str()
        {
            break jid.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} connects: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    jid.parse::<wa_engine::Jid>().expect("jid").to_non_ad()
}

/// A multipart POST with `apikey: KEY`: `fields` as text parts, `file` as the `file` part.
async fn multipart(
    url: &str,
    fields: &[(&str, &str)],
    file: Option<(&str, Vec<u8>)>,
) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in fields {
        form = form.text((*k).to_owned(), (*v).to_owned());
    }
    if let Some((name, bytes)) = file {
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        );
    }
    let resp = reqwest::Client::new()
        .post(url)
        .header("apikey", KEY)
        .multipart(form)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let body = serde_json::from_slice(&resp.bytes().await.expect("body")).unwrap_or(Value::Null);
    (status, body)
}

/// A small PDF (sniffed as `application/pdf`).
fn pdf() -> Vec<u8> {
    let mut v = b"%PDF-1.4\n1 0 obj << /Type /Pages /Count 1 >> endobj\n".to_vec();
    v.extend((0..2000u32).map(|i| b'a' + (i % 26) as u8));
    v.extend_from_slice(b"\n%%EOF\n");
    v
}

/// The smallest JPEG the sandbox takes as a picture (SOI, APP0, EOI).
fn jpeg() -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode("/9j/4AAQSkZJRgABAQAAAQABAAD/2Q==")
        .expect("jpeg")
}

/// A local server for picture URLs: `/pic.jpg` (a JPEG), `/note.txt` (not one).
async fn picture_server() -> String {
    use axum::routing::get;
    let router = axum::Router::new()
        .route(
            "/pic.jpg",
            get(|| async { ([("content-type", "image/jpeg")], jpeg()) }),
        )
        .route("/note.txt", get(|| async { "not a picture" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

/// `sendMedia` as multipart/form-data (Evolution's `file` part with the JSON body's fields
/// as text parts): a document keeps the part's file name, an image its caption, and both
/// reach the peer; the missing-file and bad-type answers are Evolution's 400 and the
/// native 415. `updateGroupPicture` from an http(s) URL: fetched (here from 127.0.0.1,
/// allowed by `allow_private_targets`) and set; a URL serving something other than a JPEG
/// is 400.
#[tokio::test]
async fn multipart_media_and_group_pictures_from_urls() {
    let (state, base, _dir) = start().await;
    let _me = paired_instance(&base, "evo3").await;
    let (peer, mut events) = support::connect_peer(&state, PEER).await;
    let url = format!("{base}/message/sendMedia/evo3");
    let (status, body) = multipart(
        &url,
        &[("number", PEER), ("mediatype", "document"), ("delay", "0")],
        Some(("report.pdf", pdf())),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["messageType"], "documentMessage", "{body}");
    assert_eq!(body["key"]["fromMe"], true, "{body}");
    let doc_id = body["key"]["id"].as_str().expect("id").to_owned();
    let (status, body) = multipart(
        &url,
        &[
            ("number", PEER),
            ("mediatype", "image"),
            ("caption", "a picture"),
        ],
        Some(("pic.jpg", jpeg())),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["messageType"], "imageMessage", "{body}");
    let image_id = body["key"]["id"].as_str().expect("id").to_owned();
    // Both arrive at the peer, the document with the part's file name, the image with
    // its caption.
    let (mut doc_seen, mut image_seen) = (false, false);
    while !(doc_seen && image_seen) {
        let event = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("the peer receives both media messages")
            .expect("events open");
        if let wa_engine::Event::Message(m) = event {
            if m.info.id == doc_id {
                let doc = m.message.document_message.as_ref().expect("a document");
                assert_eq!(doc.file_name.as_deref(), Some("report.pdf"));
                doc_seen = true;
            } else if m.info.id == image_id {
                let image = m.message.image_message.as_ref().expect("an image");
                assert_eq!(image.caption.as_deref(), Some("a picture"));
                image_seen = true;
            }
        }
    }
    drop(peer);
    // No file and no `media`: Evolution's 400; a file of a type the kind does not take: 415.
    let (status, body) = multipart(&url, &[("number", PEER), ("mediatype", "image")], None).await;
    assert_eq!(status, 400, "{body}");
    assert_error(&body, 400, "Bad Request");
    let (status, body) = multipart(
        &url,
        &[("number", PEER), ("mediatype", "image")],
        Some(("doc.pdf", pdf())),
    )
    .await;
    assert_eq!(status, 415, "{body}");
    assert_eq!(body["status"], 415, "{body}");

    // updateGroupPicture from a URL.
    let (status, group) = call(
        "POST",
        &format!("{base}/group/create/evo3"),
        Some(KEY),
        Some(json!({"subject": "Pictures", "participants": [PEER]})),
    )
    .await;
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_str().expect("group id").to_owned();
    let files = picture_server().await;
    let (status, body) = call(
        "POST",
        &format!("{base}/group/updateGroupPicture/evo3?groupJid={gid}"),
        Some(KEY),
        Some(json!({"image": format!("{files}/pic.jpg")})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["update"], "success", "{body}");
    let (status, body) = call(
        "POST",
        &format!("{base}/group/updateGroupPicture/evo3?groupJid={gid}"),
        Some(KEY),
        Some(json!({"image": format!("{files}/note.txt")})),
    )
    .await;
    assert_eq!(status, 400, "not a JPEG: {body}");
    state.shutdown().await;
}

/// The picture URL goes through the SSRF guard: without `allow_private_targets` a loopback
/// URL is refused with 400 `target_not_allowed` before anything is fetched.
#[tokio::test]
async fn group_picture_urls_pass_the_ssrf_guard() {
    let (state, base, _dir) = start_with("/evolution", |c| {
        c.egress.allow_private_targets = false;
    })
    .await;
    let (status, body) = call(
        "POST",
        &format!("{base}/instance/create"),
        Some(KEY),
        Some(json!({ "instanceName": "evo4" })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let files = picture_server().await;
    let (status, body) = call(
        "POST",
        &format!("{base}/group/updateGroupPicture/evo4?groupJid=120363000000000001"),
        Some(KEY),
        Some(json!({"image": format!("{files}/pic.jpg")})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["response"]["message"][0]
            .as_str()
            .is_some_and(|m| m.starts_with("target_not_allowed")),
        "{body}"
    );
    state.shutdown().await;
}
