//! End to end over HTTP on loopback with the embedded sandbox: create a session, fetch the
//! QR, the sandbox phone scans it, the status becomes `connected` (the 515 in between is
//! invisible), webhooks arrive signed, a restart logs in again without a QR, pairing by
//! phone-number code works, logout unlinks. Messaging: an OTP sent over HTTP is received and
//! decrypted by a second account's wa-engine client paired to the same sandbox, verified once,
//! and its status reaches `delivered`; text with reply and mentions, location, contact and
//! group messages arrive with their exact content; incoming messages become events.

mod support;

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use support::{Api, Peer, Receiver, eventually};
use wa_engine::Jid;
use wa_server::{AppState, ServerConfig};

const KEY: &str = "e2e-admin-key-abcdefghijkl";

async fn start() -> (AppState, Api, tempfile::TempDir) {
    start_with(|_| {}).await
}

/// [`start`] with a change to the configuration.
async fn start_with(adjust: impl FnOnce(&mut ServerConfig)) -> (AppState, Api, tempfile::TempDir) {
    support::start_sandbox(KEY, adjust).await
}

/// Reads an SSE response until `until` appears in the accumulated text (30 s at most).
async fn read_sse_until(resp: &mut reqwest::Response, until: &str) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !text.contains(until) {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {until:?} in the event stream; got:\n{text}"))
            .expect("stream")
            .expect("stream open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

#[tokio::test]
async fn qr_scan_connects_webhooks_are_signed_and_restart_needs_no_qr() {
    let (state, api, _dir) = start().await;
    let receiver = Receiver::start(false).await;

    let (status, created) = api
        .post(
            "/api/sessions",
            &json!({ "id": "e2e", "webhooks": [{ "url": receiver.url() }] }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["webhooks"][0]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    assert!(
        created["token"]
            .as_str()
            .is_some_and(|t| t.starts_with("wst.e2e."))
    );

    api.wait_status("e2e", "qr").await;
    let (status, qr) = api.get("/api/sessions/e2e/qr").await;
    assert_eq!(status, 200, "{qr}");
    let png = base64::engine::general_purpose::STANDARD
        .decode(qr["png_base64"].as_str().expect("png"))
        .expect("base64");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(qr["qr"].as_str().is_some_and(|q| q.contains(',')));
    assert!(qr["expires_at"].as_u64().is_some());
    let (status, png) = api.get_bytes("/api/sessions/e2e/qr.png").await;
    assert_eq!((status, &png[..4]), (200, &b"\x89PNG"[..]));
    let (status, svg) = api.get_bytes("/api/sessions/e2e/qr.svg").await;
    assert!(status == 200 && String::from_utf8_lossy(&svg).contains("<svg"));

    let (status, scan) = api.post("/api/sessions/e2e/sandbox/scan", &json!({})).await;
    assert_eq!(status, 200, "{scan}");
    let info = api.wait_status("e2e", "connected").await;
    assert_eq!(info["jid"], scan["jid"]);
    assert_eq!(
        info["last_error"],
        serde_json::Value::Null,
        "the 515 is not an error"
    );

    // Webhooks: the qr and connection events arrive, each signed with this webhook's secret.
    let connected = eventually("the connected webhook", || {
        receiver.received().into_iter().find(|r| {
            r.envelope["type"] == "connection" && r.envelope["data"]["status"] == "connected"
        })
    })
    .await;
    assert_eq!(connected.envelope["session"], "e2e");
    assert!(connected.event_id.starts_with("evt_"));
    assert_eq!(connected.envelope["id"], connected.event_id.as_str());
    let all = receiver.received();
    assert!(all.iter().any(|r| r.envelope["type"] == "qr"));
    for r in &all {
        assert!(
            r.signature_valid(&secret),
            "bad signature on {}",
            r.event_id
        );
        assert!(!r.signature_valid("another-secret-value"));
        assert!(
            !String::from_utf8_lossy(&r.body).contains(&secret),
            "secret echoed"
        );
        assert!(
            !String::from_utf8_lossy(&r.body).contains(KEY),
            "API key echoed"
        );
    }
    // Live events over SSE: a restart reconnects with the stored credentials, no QR.
    let mut sse = reqwest::Client::new()
        .get(format!("{}/api/sessions/e2e/events", api.base))
        .header("x-api-key", KEY)
        .send()
        .await
        .expect("sse");
    assert_eq!(sse.status(), 200);
    let (status, _) = api.post("/api/sessions/e2e/restart", &json!({})).await;
    assert_eq!(status, 202);
    let text = read_sse_until(&mut sse, "\"status\":\"connected\"").await;
    assert!(text.contains("event: connection"), "{text}");
    assert!(
        !text.contains("event: qr"),
        "a restart must not ask for a QR:\n{text}"
    );
    let phone = state
        .sandbox()
        .expect("sandbox")
        .phone(scan["phone"].as_str().expect("phone"))
        .expect("phone");
    assert_eq!(phone.devices().len(), 1, "still one linked device");

    let (_, metrics) = api.get_bytes("/metrics").await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("wa_sessions{state=\"connected\"} 1"),
        "{metrics}"
    );
    let (status, stats) = api.get("/api/sessions/e2e/webhooks/stats").await;
    assert_eq!(status, 200);
    assert!(
        stats[0]["delivered"].as_u64().is_some_and(|n| n >= 2),
        "{stats}"
    );

    // Logout unlinks the device and says so.
    let (status, out) = api.post("/api/sessions/e2e/logout", &json!({})).await;
    assert_eq!(status, 200, "{out}");
    api.wait_status("e2e", "logged_out").await;
    eventually("the logged_out webhook", || {
        receiver
            .received()
            .into_iter()
            .find(|r| r.envelope["type"] == "logged_out")
    })
    .await;
    eventually("the device to be unlinked", || {
        phone.devices().is_empty().then_some(())
    })
    .await;

    // Delete removes it.
    let (status, _) = api.get("/api/sessions/e2e").await;
    assert_eq!(status, 200);
    let resp = reqwest::Client::new()
        .delete(format!("{}/api/sessions/e2e", api.base))
        .header("x-api-key", KEY)
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status(), 204);
    let (status, _) = api.get("/api/sessions/e2e").await;
    assert_eq!(status, 404);
    tokio::time::timeout(Duration::from_secs(30), state.shutdown())
        .await
        .expect("shutdown");
}

#[tokio::test]
async fn phone_number_pairing_code_links_the_device() {
    let (state, api, _dir) = start().await;
    let phone = state
        .sandbox()
        .expect("sandbox")
        .create_account("15550001234")
        .expect("account");
    let (status, _) = api.post("/api/sessions", &json!({ "id": "bycode" })).await;
    assert_eq!(status, 201);
    api.wait_status("bycode", "qr").await;
    let (status, code) = api
        .post(
            "/api/sessions/bycode/pairing-code",
            &json!({ "phone": "+1 555 000 1234" }),
        )
        .await;
    assert_eq!(status, 200, "{code}");
    let code = code["code"].as_str().expect("code").to_owned();
    assert_eq!(code.len(), 9, "XXXX-XXXX");
    phone.enter_code(&code).expect("the phone accepts the code");
    let info = api.wait_status("bycode", "connected").await;
    assert!(
        info["jid"]
            .as_str()
            .is_some_and(|j| j.starts_with("15550001234:"))
    );
    // A paired session offers no QR.
    let (status, err) = api.get("/api/sessions/bycode/qr").await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("session_not_pairing"))
    );
    tokio::time::timeout(Duration::from_secs(30), state.shutdown())
        .await
        .expect("shutdown");
}

/// Creates session `id` (with webhooks to `hook`, if any), scans its QR with the sandbox
/// phone and waits until it is connected; returns the creation response and the session's
/// own user JID.
async fn connected_session(api: &Api, id: &str, hook: Option<&Receiver>) -> (Value, Jid) {
    let body = match hook {
        Some(r) => json!({ "id": id, "webhooks": [{ "url": r.url() }] }),
        None => json!({ "id": id }),
    };
    let (status, created) = api.post("/api/sessions", &body).await;
    assert_eq!(status, 201, "{created}");
    api.wait_status(id, "qr").await;
    let (status, qr) = api.get(&format!("/api/sessions/{id}/qr")).await;
    assert_eq!(status, 200, "{qr}");
    let (status, scan) = api
        .post(&format!("/api/sessions/{id}/sandbox/scan"), &json!({}))
        .await;
    assert_eq!(status, 200, "{scan}");
    let info = api.wait_status(id, "connected").await;
    let jid: Jid = info["jid"].as_str().expect("jid").parse().expect("a JID");
    (created, jid.to_non_ad())
}

/// Polls the message status resource until it reads `want`.
async fn wait_message_status(api: &Api, session: &str, id: &str, want: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (code, v) = api
            .get(&format!("/api/sessions/{session}/messages/{id}"))
            .await;
        if code == 200 && v["status"] == want {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "message {id} never reached {want}; last: {code} {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The first run of exactly `digits` ASCII digits in `text`.
fn code_in(text: &str, digits: usize) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == digits)
        .map(str::to_owned)
}

#[tokio::test]
async fn otp_reaches_a_second_account_verifies_once_and_its_status_reaches_delivered() {
    let (state, api, _dir) = start().await;
    let receiver = Receiver::start(false).await;
    let (created, server_user) = connected_session(&api, "otp", Some(&receiver)).await;
    let secret = created["webhooks"][0]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let mut peer = Peer::pair(&state, "15550007001", "e2e-peer").await;

    let (status, sent) = api
        .post(
            "/api/sessions/otp/otp",
            &json!({ "to": "+1 555 000 7001", "digits": 6, "template": "Kode {code} berlaku {minutes} menit" }),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["to"], "15550007001");
    let message_id = sent["message_id"].as_str().expect("message id").to_owned();

    // The second account's engine decrypts it.
    let received = peer.next_message().await;
    assert_eq!(received.info.id, message_id);
    assert_eq!(received.info.sender.to_non_ad(), server_user);
    let text = received.text().expect("a text message").to_owned();
    assert!(
        text.starts_with("Kode ") && text.ends_with(" berlaku 5 menit"),
        "{text}"
    );
    let code = code_in(&text, 6).expect("a 6-digit code in the text");

    // A wrong guess counts; the right code verifies once.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, err) = api
        .post(
            "/api/sessions/otp/otp/verify",
            &json!({ "to": "15550007001", "code": wrong }),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some("otp_invalid")),
        "{err}"
    );
    assert_eq!(err["error"]["attempts_left"], 4);
    let (status, ok) = api
        .post(
            "/api/sessions/otp/otp/verify",
            &json!({ "to": "+15550007001", "code": code }),
        )
        .await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["verified"], true);
    let (status, again) = api
        .post(
            "/api/sessions/otp/otp/verify",
            &json!({ "to": "15550007001", "code": code }),
        )
        .await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (404, Some("otp_not_found")),
        "single use: {again}"
    );

    // The status resource reaches delivered (the peer's delivery receipt), then read.
    let delivered = wait_message_status(&api, "otp", &message_id, "delivered").await;
    assert_eq!(delivered["type"], "otp");
    assert_eq!(delivered["to"], "15550007001@s.whatsapp.net");
    peer.client
        .mark_read(&received.info.chat, None, &[message_id.clone().into()])
        .await
        .expect("read receipt");
    wait_message_status(&api, "otp", &message_id, "read").await;

    // Webhooks: each status change arrives once, signed with this webhook's secret.
    let statuses = eventually(
        "message_status webhooks for sent, delivered and read",
        || {
            let seen: Vec<String> = receiver
                .received()
                .into_iter()
                .filter(|r| {
                    r.envelope["type"] == "message_status"
                        && r.envelope["data"]["id"] == message_id.as_str()
                })
                .map(|r| {
                    assert!(
                        r.signature_valid(&secret),
                        "bad signature on {}",
                        r.event_id
                    );
                    r.envelope["data"]["status"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                })
                .collect();
            ["sent", "delivered", "read"]
                .iter()
                .all(|want| seen.iter().any(|s| s == want))
                .then_some(seen)
        },
    )
    .await;
    // Delivered concurrently, so in any order; each step exactly once.
    let mut statuses = statuses;
    statuses.sort();
    assert_eq!(statuses, ["delivered", "read", "sent"]);

    // The peer answers: a `message` webhook with sender, chat, text and the quoted OTP.
    let quote = wa_engine::message::content::Quote {
        id: message_id.clone(),
        sender: Some(server_user.clone()),
        message: Some(wa_engine::message::content::text(text.clone())),
    };
    let reply = wa_engine::message::content::extended_text(
        format!("thanks @{}", server_user.user()),
        Some(quote),
        std::slice::from_ref(&server_user),
    );
    let reply_id = peer
        .client
        .send_message(&server_user, reply)
        .await
        .expect("the peer replies");
    let incoming = eventually("the message webhook", || {
        receiver.received().into_iter().find(|r| {
            r.envelope["type"] == "message" && r.envelope["data"]["id"] == reply_id.as_str()
        })
    })
    .await;
    assert!(incoming.signature_valid(&secret));
    let data = &incoming.envelope["data"];
    assert_eq!(data["type"], "text");
    assert_eq!(data["text"], format!("thanks @{}", server_user.user()));
    assert_eq!(data["chat"], peer.user().to_string());
    assert_eq!(data["sender_user"], peer.user().to_string());
    assert_eq!(data["sender"], peer.jid.to_string());
    assert_eq!(data["from_me"], false);
    assert_eq!(data["reply_to"]["id"], message_id.as_str());
    assert_eq!(data["reply_to"]["text"], text.as_str());
    assert_eq!(data["mentions"], json!([server_user.to_string()]));
    assert!(
        data["timestamp"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000)
    );
    assert!(
        data.as_object()
            .is_some_and(|o| o.contains_key("push_name"))
    );
    assert_eq!(data["media"], Value::Null);

    let (_, metrics) = api.get_bytes("/metrics").await;
    let metrics = String::from_utf8_lossy(&metrics);
    for line in [
        "wa_messages_sent_total 1",
        "wa_messages_received_total 1",
        "wa_otp_sent_total 1",
        "wa_otp_verified_total 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    peer.client.shutdown().await;
    tokio::time::timeout(Duration::from_secs(30), state.shutdown())
        .await
        .expect("shutdown");
}

#[tokio::test]
async fn text_reply_mentions_location_contact_and_group_arrive_with_their_exact_content() {
    let (state, api, _dir) = start().await;
    let (_, server_user) = connected_session(&api, "shop", None).await;
    let mut peer = Peer::pair(&state, "15550007002", "e2e-peer").await;
    let peer_user = peer.user().to_string();
    let mut sse = reqwest::Client::new()
        .get(format!("{}/api/sessions/shop/events", api.base))
        .header("x-api-key", KEY)
        .send()
        .await
        .expect("sse");
    assert_eq!(sse.status(), 200);

    // Text with a reply and mentions; the recipient as a local-looking international number.
    let (status, sent) = api
        .post(
            "/api/sessions/shop/messages/text",
            &json!({
                "to": "+1 (555) 000-7002",
                "text": "@15550007002 your order 42 shipped",
                "reply_to": { "id": "3EB0ORDER42", "participant": "15550007002" },
                "mentions": ["+15550007002"],
                "check_number": true,
            }),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["to"], peer_user.as_str());
    assert!(
        matches!(sent["status"].as_str(), Some("sent" | "delivered" | "read")),
        "{sent}"
    );
    let m = peer.next_message().await;
    assert_eq!(m.info.id, sent["id"].as_str().expect("id"));
    assert_eq!(m.info.sender.to_non_ad(), server_user);
    let ext = m
        .message
        .extended_text_message
        .as_ref()
        .expect("extended text");
    assert_eq!(
        ext.text.as_deref(),
        Some("@15550007002 your order 42 shipped")
    );
    let ctx = ext.context_info.as_ref().expect("context info");
    assert_eq!(ctx.stanza_id.as_deref(), Some("3EB0ORDER42"));
    assert_eq!(ctx.participant.as_deref(), Some(peer_user.as_str()));
    assert_eq!(ctx.mentioned_jid, vec![peer_user.clone()]);

    // Location, exact to the bit.
    let (status, sent) = api
        .post(
            "/api/sessions/shop/messages/location",
            &json!({ "to": peer_user, "latitude": -6.175392, "longitude": 106.827153,
                     "name": "Monas", "address": "Gambir, Jakarta Pusat" }),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    let m = peer.next_message().await;
    assert_eq!(m.info.id, sent["id"].as_str().expect("id"));
    let loc = m.message.location_message.as_ref().expect("location");
    assert_eq!(loc.degrees_latitude, Some(-6.175392));
    assert_eq!(loc.degrees_longitude, Some(106.827153));
    assert_eq!(loc.name.as_deref(), Some("Monas"));
    assert_eq!(loc.address.as_deref(), Some("Gambir, Jakarta Pusat"));

    // Contact card.
    let (status, sent) = api
        .post(
            "/api/sessions/shop/messages/contact",
            &json!({ "to": "15550007002", "name": "Budi Santoso", "phone": "+62 812-3456-789" }),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    let m = peer.next_message().await;
    assert_eq!(m.info.id, sent["id"].as_str().expect("id"));
    let card = m.message.contact_message.as_ref().expect("contact");
    assert_eq!(card.display_name.as_deref(), Some("Budi Santoso"));
    assert_eq!(
        card.vcard.as_deref(),
        Some(
            "BEGIN:VCARD\nVERSION:3.0\nFN:Budi Santoso\nTEL;type=CELL;waid=628123456789:+628123456789\nEND:VCARD"
        )
    );
    let contact_id = sent["id"].as_str().expect("id").to_owned();
    let status_now = wait_message_status(&api, "shop", &contact_id, "delivered").await;
    assert_eq!(status_now["type"], "contact");

    // A group the peer creates with the session's account in it.
    let group = peer
        .client
        .create_group("Orders", std::slice::from_ref(&server_user))
        .await
        .expect("group");
    let (status, sent) = api
        .post(
            "/api/sessions/shop/messages/text",
            &json!({ "to": group.jid.to_string(), "text": "hello group" }),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    let m = peer.next_message().await;
    assert_eq!(m.info.id, sent["id"].as_str().expect("id"));
    assert_eq!(m.text(), Some("hello group"));
    assert_eq!(m.info.chat, group.jid);
    assert!(m.info.is_group);
    assert_eq!(m.info.sender.to_non_ad(), server_user);
    // The peer answers in the group: a `message` event on the session's SSE stream.
    let answer = peer
        .client
        .send_text(&group.jid, "thanks, group")
        .await
        .expect("group answer");
    let text = read_sse_until(&mut sse, answer.as_str()).await;
    let event = text
        .split("\n\n")
        .find(|e| e.contains("event: message\n") && e.contains(answer.as_str()))
        .unwrap_or_else(|| panic!("no message event for {answer} in:\n{text}"));
    let envelope: Value = serde_json::from_str(
        event
            .lines()
            .find_map(|l| l.strip_prefix("data:"))
            .expect("data line")
            .trim(),
    )
    .expect("JSON data");
    assert_eq!(envelope["type"], "message");
    let data = &envelope["data"];
    assert_eq!(data["text"], "thanks, group", "{data}");
    assert_eq!(data["chat"], group.jid.to_string());
    assert_eq!(data["is_group"], true);
    assert_eq!(data["sender_user"], peer_user.as_str());

    // Recipients that cannot receive: stable 4xx codes, never a 5xx.
    let cases = [
        (
            json!({ "to": "+1 555 999 0000", "text": "x", "check_number": true }),
            422,
            "not_on_whatsapp",
        ),
        (
            json!({ "to": "+1 555 999 0000", "text": "x" }),
            422,
            "recipient_unreachable",
        ),
        (
            json!({ "to": "120363000000000001@g.us", "text": "x" }),
            404,
            "group_not_found",
        ),
    ];
    for (body, want_status, want_code) in cases {
        let (status, err) = api.post("/api/sessions/shop/messages/text", &body).await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (want_status, Some(want_code)),
            "{body}: {err}"
        );
        // A send that was recorded before it failed names its status resource.
        if want_code != "not_on_whatsapp" {
            let id = err["error"]["message_id"].as_str().expect("message_id");
            let (code, record) = api.get(&format!("/api/sessions/shop/messages/{id}")).await;
            assert_eq!(
                (code, record["status"].as_str()),
                (200, Some("failed")),
                "{record}"
            );
            assert!(
                record["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with(want_code)),
                "{record}"
            );
        }
    }
    let outsider = state
        .sandbox()
        .expect("sandbox")
        .create_account("15550007003")
        .expect("account");
    drop(outsider);
    let private = peer
        .client
        .create_group("Private", &[Jid::pn("15550007003")])
        .await
        .expect("group without the session");
    let (status, err) = api
        .post(
            "/api/sessions/shop/messages/text",
            &json!({ "to": private.jid.to_string(), "text": "x" }),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (403, Some("not_group_member")),
        "{err}"
    );

    let (status, checked) = api
        .post(
            "/api/sessions/shop/contacts/check",
            &json!({ "numbers": ["+1 555 000 7002", "+1 555 999 0000"] }),
        )
        .await;
    assert_eq!(status, 200, "{checked}");
    assert_eq!(checked[0]["exists"], true);
    assert_eq!(checked[0]["jid"], peer_user.as_str());
    assert_eq!(checked[1]["exists"], false);

    let (_, metrics) = api.get_bytes("/metrics").await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(metrics.contains("wa_messages_sent_total 4"), "{metrics}");
    assert!(metrics.contains("wa_messages_failed_total 3"), "{metrics}");
    peer.client.shutdown().await;
    tokio::time::timeout(Duration::from_secs(30), state.shutdown())
        .await
        .expect("shutdown");
}

/// Many sends at once on one session: every request answers 201 with its own id and the
/// peer decrypts every message exactly once. (sled 0.34's `flush_async` never woke
/// concurrent callers, spacejam/sled #1308, which froze every send of the session here.)
#[tokio::test]
async fn concurrent_sends_all_complete_and_each_arrives_once() {
    const N: usize = 48;
    // More sends than the default send limit (30 per minute) allows: lift it here.
    let (state, api, _dir) =
        start_with(|c| c.send_limits = wa_server::SendLimitSettings::unlimited()).await;
    connected_session(&api, "burst", None).await;
    let mut peer = Peer::pair(&state, "15550007003", "e2e-peer").await;
    let to = peer.user().to_string();
    let sends = (0..N).map(|i| {
        let api = &api;
        let to = to.clone();
        async move {
            api.post(
                "/api/sessions/burst/messages/text",
                &json!({ "to": to, "text": format!("burst {i}") }),
            )
            .await
        }
    });
    let answers = tokio::time::timeout(
        Duration::from_secs(60),
        futures_util::future::join_all(sends),
    )
    .await
    .expect("concurrent sends hung");
    let mut ids = std::collections::HashSet::new();
    for (status, sent) in &answers {
        assert_eq!(*status, 201, "{sent}");
        assert!(ids.insert(sent["id"].as_str().expect("id").to_owned()));
    }
    let mut texts = std::collections::HashSet::new();
    while texts.len() < N {
        let m = peer.next_message().await;
        assert!(ids.contains(&m.info.id), "unknown id {}", m.info.id);
        let text = m.text().expect("a text message").to_owned();
        assert!(texts.insert(text.clone()), "{text} arrived twice");
    }
}
