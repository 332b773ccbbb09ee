//! The message log and the send limits (issue 14, features 1 and 2) end to end over HTTP
//! against the embedded sandbox: sent and received messages are listed with filters and a
//! cursor, with their status timelines from real receipts; a reply carries the quoted
//! message's content from the log; day statistics count them; a failed send is retried by
//! id; delete-for-everyone answers 501; everything survives a server restart. The send
//! limits answer 429 with `Retry-After` and their own codes, show in the session resource,
//! and the daily quota survives a restart. Old messages go after the retention period.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Api, Peer};
use tokio::task::JoinHandle;
use wa_engine::Jid;
use wa_server::{AppState, Secret, SendLimitSettings, ServerConfig, StartError, Upstream};

const KEY: &str = "msglog-admin-key-abcdefghijkl";

/// A server on the data directory `dir`, served on 127.0.0.1:0.
struct Server {
    state: AppState,
    api: Api,
    serving: JoinHandle<()>,
}

impl Server {
    async fn start(dir: &Path, adjust: impl Fn(&mut ServerConfig)) -> Self {
        let mut config = ServerConfig::new(dir);
        config.api_key = Some(Secret::new(KEY));
        config.upstream = Upstream::Sandbox;
        adjust(&mut config);
        // A stopped server's last handles may take a moment to go (its lock goes with them).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let state = loop {
            match AppState::start(config.clone()).await {
                Ok(state) => break state,
                Err(StartError::DataDirInUse { .. }) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("start: {e}"),
            }
        };
        let (base, serving) = support::serve_task(&state).await;
        Self {
            api: Api::new(base, Some(KEY)),
            state,
            serving,
        }
    }

    async fn stop(self) {
        drop(self.api);
        tokio::time::timeout(Duration::from_secs(30), self.state.shutdown())
            .await
            .expect("shutdown");
        let _ = tokio::time::timeout(Duration::from_secs(10), self.serving).await;
    }
}

/// Creates session `id`, pairs it with the sandbox phone, waits until connected; returns
/// its own user JID.
async fn connected_session(api: &Api, id: &str) -> Jid {
    let (status, created) = api.post("/api/sessions", &json!({ "id": id })).await;
    assert_eq!(status, 201, "{created}");
    api.wait_status(id, "qr").await;
    let (status, scan) = api
        .post(&format!("/api/sessions/{id}/sandbox/scan"), &json!({}))
        .await;
    assert_eq!(status, 200, "{scan}");
    let info = api.wait_status(id, "connected").await;
    let jid: Jid = info["jid"].as_str().expect("jid").parse().expect("a JID");
    jid.to_non_ad()
}

/// Polls message `id` of `session` until `pred` holds for it.
async fn wait_message(api: &Api, session: &str, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (code, v) = api
            .get(&format!("/api/sessions/{session}/messages/{id}"))
            .await;
        if code == 200 && pred(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "message {id} never got there; last: {code} {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect()
}

fn statuses(message: &Value) -> Vec<String> {
    message["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|c| c["status"].as_str().expect("status").to_owned())
        .collect()
}

#[tokio::test]
async fn the_log_lists_sent_and_received_messages_retries_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), |_| {}).await;
    let api = server.api.clone();
    let own = connected_session(&api, "shop").await;
    let mut peer = Peer::pair(&server.state, "15550008001", "msglog-peer").await;

    // A sent text reaches delivered, then read (the peer's receipts): its timeline says so.
    let (status, sent) = api
        .post(
            "/api/sessions/shop/messages/text",
            &json!({ "to": "15550008001", "text": "your order shipped" }),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    let first = sent["id"].as_str().expect("id").to_owned();
    let got = peer.next_message().await;
    assert_eq!(got.info.id, first);
    wait_message(&api, "shop", &first, |m| m["status"] == "delivered").await;
    peer.client
        .mark_read(&got.info.chat, None, &[first.clone().into()])
        .await
        .expect("read receipt");
    let read = wait_message(&api, "shop", &first, |m| m["status"] == "read").await;
    assert_eq!(statuses(&read), ["pending", "sent", "delivered", "read"]);
    let times: Vec<u64> = read["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|c| c["at"].as_u64().expect("at"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(
        (&read["direction"], &read["text"], &read["sender"]),
        (&json!("out"), &json!("your order shipped"), &Value::Null)
    );

    // A received message is logged, and a reply to it carries its content and sender.
    let incoming = peer
        .client
        .send_text(&own, "where is my parcel?")
        .await
        .expect("peer sends");
    let incoming = incoming.0;
    let logged = wait_message(&api, "shop", &incoming, |m| m["status"] == "received").await;
    assert_eq!(logged["direction"], "in");
    assert_eq!(logged["text"], "where is my parcel?");
    assert_eq!(logged["sender"], peer.jid.to_non_ad().to_string());
    assert_eq!(logged["chat"], peer.jid.to_non_ad().to_string());
    let (status, reply) = api
        .post(
            "/api/sessions/shop/messages/text",
            &json!({ "to": "15550008001", "text": "on its way", "reply_to": { "id": incoming } }),
        )
        .await;
    assert_eq!(status, 201, "{reply}");
    let reply_id = reply["id"].as_str().expect("id").to_owned();
    let got = peer.next_message().await;
    assert_eq!(got.info.id, reply_id);
    let context = got
        .message
        .extended_text_message
        .as_ref()
        .and_then(|e| e.context_info.as_ref())
        .expect("a reply context");
    assert_eq!(context.stanza_id.as_deref(), Some(incoming.as_str()));
    assert_eq!(
        context.participant.as_deref(),
        Some(peer.jid.to_non_ad().to_string().as_str())
    );
    assert_eq!(
        context
            .quoted_message
            .as_ref()
            .and_then(|q| q.conversation.as_deref()),
        Some("where is my parcel?"),
        "the quoted content comes from the log"
    );
    wait_message(&api, "shop", &reply_id, |m| m["status"] == "delivered").await;

    // A send to a number without WhatsApp fails and is logged as failed.
    let (status, failed) = api
        .post(
            "/api/sessions/shop/messages/text",
            &json!({ "to": "15550008999", "text": "hello stranger" }),
        )
        .await;
    assert_eq!(status, 422, "{failed}");
    let failed_id = failed["error"]["message_id"]
        .as_str()
        .expect("message id")
        .to_owned();
    let failed = wait_message(&api, "shop", &failed_id, |m| m["status"] == "failed").await;
    assert_eq!(statuses(&failed), ["pending", "failed"]);
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("recipient_unreachable")),
        "{failed}"
    );

    // Listing: newest first, filters, cursor pages.
    let (status, all) = api.get("/api/sessions/shop/messages").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(
        ids(&all),
        [
            failed_id.as_str(),
            reply_id.as_str(),
            incoming.as_str(),
            first.as_str()
        ]
    );
    assert_eq!(all["next_cursor"], Value::Null);
    let (_, inbound) = api.get("/api/sessions/shop/messages?direction=in").await;
    assert_eq!(ids(&inbound), [incoming.as_str()]);
    let (_, failures) = api.get("/api/sessions/shop/messages?status=failed").await;
    assert_eq!(ids(&failures), [failed_id.as_str()]);
    let (_, chat) = api
        .get("/api/sessions/shop/messages?chat=%2B1%20555%20000%208001")
        .await;
    assert_eq!(
        ids(&chat),
        [reply_id.as_str(), incoming.as_str(), first.as_str()]
    );
    let (_, page1) = api.get("/api/sessions/shop/messages?limit=3").await;
    assert_eq!(
        ids(&page1),
        [failed_id.as_str(), reply_id.as_str(), incoming.as_str()]
    );
    let cursor = page1["next_cursor"].as_str().expect("a cursor").to_owned();
    let (_, page2) = api
        .get(&format!(
            "/api/sessions/shop/messages?limit=3&cursor={cursor}"
        ))
        .await;
    assert_eq!(ids(&page2), [first.as_str()]);
    let created = read["created_at"].as_u64().expect("created_at");
    let (_, window) = api
        .get(&format!(
            "/api/sessions/shop/messages?direction=out&until={}",
            created + 1
        ))
        .await;
    assert_eq!(ids(&window), [first.as_str()]);
    for bad in [
        "direction=sideways",
        "status=lost",
        "limit=0",
        "limit=501",
        "cursor=nope",
    ] {
        let (status, err) = api.get(&format!("/api/sessions/shop/messages?{bad}")).await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (400, Some("invalid_parameter")),
            "{bad}: {err}"
        );
    }

    // Statistics of today.
    let (status, stats) = api.get("/api/sessions/shop/messages/stats").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["days"].as_array().map(Vec::len), Some(30));
    let today = stats["days"][29].clone();
    assert_eq!(
        (
            &today["accepted"],
            &today["sent"],
            &today["delivered"],
            &today["read"],
            &today["failed"],
            &today["received"]
        ),
        (
            &json!(3),
            &json!(2),
            &json!(2),
            &json!(1),
            &json!(1),
            &json!(1)
        ),
        "{stats}"
    );
    assert_eq!(stats["total"], {
        let mut t = today.clone();
        t.as_object_mut().expect("object").remove("date");
        t
    });
    let (status, _) = api
        .get("/api/sessions/shop/messages/stats?from=2026-02-30")
        .await;
    assert_eq!(status, 400);

    // Retry: the failed message goes again as a new one once its recipient exists.
    let (status, err) = api
        .post(
            &format!("/api/sessions/shop/messages/{first}/retry"),
            &json!({}),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("message_not_retryable")),
        "{err}"
    );
    let mut stranger = Peer::pair(&server.state, "15550008999", "msglog-peer").await;
    // The session's client remembers that the number had no devices: a restart of the
    // session forgets that (the log is the server's and stays).
    let (status, _) = api.post("/api/sessions/shop/restart", &json!({})).await;
    assert_eq!(status, 202);
    api.wait_status("shop", "connected").await;
    // Until the restarted session is connected again, a retry answers 409
    // `session_not_connected` and stays possible.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let retried = loop {
        let (status, retried) = api
            .post(
                &format!("/api/sessions/shop/messages/{failed_id}/retry"),
                &json!({}),
            )
            .await;
        if status == 409
            && retried["error"]["code"] == "session_not_connected"
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        assert_eq!(status, 201, "{retried}");
        break retried;
    };
    assert_eq!(retried["retry_of"], failed_id.as_str());
    let retry_id = retried["id"].as_str().expect("id").to_owned();
    assert_ne!(retry_id, failed_id);
    let got = stranger.next_message().await;
    assert_eq!(
        (got.info.id.as_str(), got.text()),
        (retry_id.as_str(), Some("hello stranger"))
    );
    let (_, old) = api
        .get(&format!("/api/sessions/shop/messages/{failed_id}"))
        .await;
    assert_eq!(old["retried_as"], retry_id.as_str());
    let (status, again) = api
        .post(
            &format!("/api/sessions/shop/messages/{failed_id}/retry"),
            &json!({}),
        )
        .await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (409, Some("message_not_retryable"))
    );
    let (status, _) = api
        .post("/api/sessions/shop/messages/NOPE/retry", &json!({}))
        .await;
    assert_eq!(status, 404);

    // Delete for everyone: the peer gets a revoke of exactly that message; a received
    // message cannot be revoked.
    let http = reqwest::Client::new();
    let resp = http
        .delete(format!("{}/api/sessions/shop/messages/{first}", api.base))
        .header("x-api-key", KEY)
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status().as_u16(), 204);
    let got = peer.next_message().await;
    let revoke = got.content().revoke().expect("a revoke");
    assert_eq!(revoke.message_id, first);
    assert!(revoke.from_me);
    let resp = http
        .delete(format!(
            "{}/api/sessions/shop/messages/{incoming}",
            api.base
        ))
        .header("x-api-key", KEY)
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status().as_u16(), 409);
    let body: Value = serde_json::from_slice(&resp.bytes().await.expect("body")).expect("json");
    assert_eq!(body["error"]["code"], "message_not_revocable");

    // A restart keeps the log, the timelines and the counters.
    wait_message(&api, "shop", &retry_id, |m| m["status"] == "delivered").await;
    let (_, before) = api.get("/api/sessions/shop/messages").await;
    let (_, stats_before) = api.get("/api/sessions/shop/messages/stats").await;
    peer.client.shutdown().await;
    stranger.client.shutdown().await;
    server.stop().await;
    let server = Server::start(dir.path(), |_| {}).await;
    let api = server.api.clone();
    api.wait_status("shop", "connected").await;
    let (_, after) = api.get("/api/sessions/shop/messages").await;
    assert_eq!(after, before);
    assert_eq!(ids(&after).len(), 5);
    let (_, stats_after) = api.get("/api/sessions/shop/messages/stats").await;
    assert_eq!(stats_after, stats_before);
    let (_, read_after) = api
        .get(&format!("/api/sessions/shop/messages/{first}"))
        .await;
    assert_eq!(
        statuses(&read_after),
        ["pending", "sent", "delivered", "read"]
    );
    server.stop().await;
}

/// `(status, code, Retry-After header)` of a text send to `to`.
async fn send(api: &Api, to: &str) -> (u16, Option<String>, Option<u64>) {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/sessions/lim/messages/text", api.base))
        .header("x-api-key", KEY)
        .header("content-type", "application/json")
        .body(json!({ "to": to, "text": "promo" }).to_string())
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body: Value =
        serde_json::from_slice(&resp.bytes().await.expect("body")).unwrap_or(Value::Null);
    let code = body["error"]["code"].as_str().map(str::to_owned);
    (status, code, retry_after)
}

#[tokio::test]
async fn send_limits_answer_429_show_in_the_session_and_the_quota_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = |c: &mut ServerConfig| {
        let mut l = SendLimitSettings::default();
        l.per_minute = 3;
        l.recipient_interval = Duration::from_secs(60);
        l.daily_quota = Some(4);
        c.send_limits = l;
    };
    let server = Server::start(dir.path(), limits).await;
    let api = server.api.clone();
    connected_session(&api, "lim").await;
    // Numbers without WhatsApp: each send is admitted (and counted), then fails with 422.
    assert_eq!(send(&api, "15550009001").await.0, 422);
    let (status, code, retry) = send(&api, "15550009001").await;
    assert_eq!(
        (status, code.as_deref()),
        (429, Some("recipient_rate_limited"))
    );
    assert!(retry.is_some_and(|s| (1..=60).contains(&s)), "{retry:?}");
    assert_eq!(send(&api, "15550009002").await.0, 422);
    assert_eq!(send(&api, "15550009003").await.0, 422);
    let (status, code, retry) = send(&api, "15550009004").await;
    assert_eq!((status, code.as_deref()), (429, Some("send_rate_limited")));
    assert!(retry.is_some_and(|s| (1..=20).contains(&s)), "{retry:?}");
    let (_, info) = api.get("/api/sessions/lim").await;
    assert_eq!(
        info["limits"],
        json!({
            "per_minute": 3,
            "minute_remaining": 0,
            "recipient_interval_ms": 60000,
            "daily_quota": 4,
            "sent_today": 3,
            "daily_remaining": 1,
            "day_resets_at": info["limits"]["day_resets_at"],
        }),
        "{info}"
    );
    let (_, stats) = api.get("/api/sessions/lim/messages/stats").await;
    assert_eq!(stats["total"]["accepted"], 3);
    assert_eq!(stats["total"]["failed"], 3);

    // A restart resets the per-minute rate (memory) but not the day's count (database).
    server.stop().await;
    let server = Server::start(dir.path(), limits).await;
    let api = server.api.clone();
    api.wait_status("lim", "connected").await;
    assert_eq!(send(&api, "15550009005").await.0, 422);
    let (status, code, retry) = send(&api, "15550009006").await;
    assert_eq!(
        (status, code.as_deref()),
        (429, Some("daily_quota_exceeded"))
    );
    assert!(
        retry.is_some_and(|s| (1..=86_400).contains(&s)),
        "{retry:?}"
    );
    let (_, info) = api.get("/api/sessions/lim").await;
    assert_eq!(
        (
            &info["limits"]["sent_today"],
            &info["limits"]["daily_remaining"]
        ),
        (&json!(4), &json!(0))
    );
    server.stop().await;
}

#[tokio::test]
async fn messages_past_the_retention_are_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), |c| {
        c.message_log.retention = Duration::from_secs(2);
        c.message_log.cleanup_interval = Duration::from_millis(200);
    })
    .await;
    let api = server.api.clone();
    connected_session(&api, "short").await;
    let (status, failed) = api
        .post(
            "/api/sessions/short/messages/text",
            &json!({ "to": "15550009101", "text": "soon gone" }),
        )
        .await;
    assert_eq!(status, 422, "{failed}");
    let id = failed["error"]["message_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (_, page) = api.get("/api/sessions/short/messages").await;
    assert_eq!(ids(&page), [id.as_str()]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = api.get(&format!("/api/sessions/short/messages/{id}")).await;
        if status == 404 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never removed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, page) = api.get("/api/sessions/short/messages").await;
    assert_eq!(ids(&page), Vec::<String>::new());
    server.stop().await;
}

#[tokio::test]
async fn queued_sends_go_out_paced_in_order_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let queue = |interval: Duration| {
        move |c: &mut ServerConfig| {
            let mut l = SendLimitSettings::unlimited();
            l.recipient_interval = interval;
            l.queue = true;
            c.send_limits = l;
        }
    };
    let server = Server::start(dir.path(), queue(Duration::from_millis(1500))).await;
    let api = server.api.clone();
    connected_session(&api, "q").await;
    let mut peer = Peer::pair(&server.state, "15550008101", "msglog-peer").await;
    let mut sent = Vec::new();
    for text in ["one", "two", "three"] {
        let (status, m) = api
            .post(
                "/api/sessions/q/messages/text",
                &json!({ "to": "15550008101", "text": text }),
            )
            .await;
        assert_eq!(status, 201, "{m}");
        sent.push((
            m["id"].as_str().expect("id").to_owned(),
            m["status"].clone(),
        ));
    }
    assert_eq!(sent[0].1, "sent");
    assert_eq!(
        (&sent[1].1, &sent[2].1),
        (&json!("queued"), &json!("queued"))
    );
    for (i, text) in ["one", "two", "three"].into_iter().enumerate() {
        let got = peer.next_message().await;
        assert_eq!(
            (got.info.id.as_str(), got.text()),
            (sent[i].0.as_str(), Some(text))
        );
    }
    let third = wait_message(&api, "q", &sent[2].0, |m| m["status"] == "delivered").await;
    assert_eq!(statuses(&third), ["queued", "pending", "sent", "delivered"]);
    let first = wait_message(&api, "q", &sent[0].0, |m| m["status"] == "delivered").await;
    let went = |m: &Value| {
        m["timeline"]
            .as_array()
            .and_then(|t| t.iter().find(|c| c["status"] == "pending"))
            .and_then(|c| c["at"].as_u64())
            .expect("pending at")
    };
    assert!(
        went(&third) - went(&first) >= 2 * 1500 - 50,
        "paced 1.5 s apart: {first} {third}"
    );
    peer.client.shutdown().await;
    server.stop().await;

    // Queued when the server stops: sent after the restart (to a number without WhatsApp,
    // so it fails there, which shows it was tried).
    let server = Server::start(dir.path(), queue(Duration::from_secs(30))).await;
    let api = server.api.clone();
    api.wait_status("q", "connected").await;
    let body = json!({ "to": "15550009201", "text": "later" });
    assert_eq!(
        api.post("/api/sessions/q/messages/text", &body).await.0,
        422
    );
    let (status, queued) = api.post("/api/sessions/q/messages/text", &body).await;
    assert_eq!(
        (status, &queued["status"]),
        (201, &json!("queued")),
        "{queued}"
    );
    let id = queued["id"].as_str().expect("id").to_owned();
    let (_, listed) = api.get("/api/sessions/q/messages?status=queued").await;
    assert_eq!(ids(&listed), [id.as_str()]);
    server.stop().await;
    let server = Server::start(dir.path(), queue(Duration::from_secs(30))).await;
    let api = server.api.clone();
    let done = wait_message(&api, "q", &id, |m| m["status"] == "failed").await;
    assert_eq!(statuses(&done), ["queued", "pending", "failed"]);
    assert!(
        done["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("recipient_unreachable")),
        "{done}"
    );
    server.stop().await;
}
