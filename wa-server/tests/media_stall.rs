//! A stalled media host must not stall a session. With inline media on
//! (`MediaSettings::inline_max_bytes`), every received small file is downloaded for the
//! `base64` of its `message` event. The embedded sandbox's media host is made to hang
//! (`MediaHost::stall_downloads`), a peer sends a burst of 200 images and then a text: the
//! session stays connected, the text's webhook arrives while the host still hangs, and once
//! the host answers again every image's event arrives too (nothing is lost).
//!
//! Before the inline downloads moved to their own workers, the session's event loop waited
//! up to 30 s per image, so the text's event waited behind 200 × 30 s and this test failed.

mod support;

use std::collections::HashSet;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use support::{Api, Receiver, eventually, serve_router};
use wa_engine::media::message::{self, ImageOptions};
use wa_engine::media::{MediaSource, MediaType, Scheme};
use wa_engine::{Client, Event, Jid, MemoryStore, Store};
use wa_server::{AppState, Secret, ServerConfig, Upstream, app};

const KEY: &str = "media-stall-admin-key-abcdefgh";
/// The peer account.
const PEER: &str = "15550003333";
/// Images in the burst.
const BURST: usize = 200;
/// A generous bound for "promptly": far below the old path's 200 × 30 s.
const PROMPT: Duration = Duration::from_secs(60);
const STEP: Duration = Duration::from_secs(30);

/// Links an engine client to a new sandbox account `number`; its events are drained in the
/// background so its own driver never waits on them.
async fn link_peer(sandbox: &wa_sandbox::SandboxHandle, number: &str) -> Client {
    let phone = sandbox.create_account(number).expect("account");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (client, mut events) = Client::builder(store.clone())
        .url(sandbox.ws_url())
        .trust_root(sandbox.trust_root())
        .device_name("stall-peer")
        .prekey_batch(30)
        .media_scheme(Scheme::Http)
        .connect()
        .await
        .expect("connect");
    loop {
        match tokio::time::timeout(STEP, events.recv())
            .await
            .expect("event in time")
            .expect("events open")
        {
            Event::Qr { code, .. } => {
                phone.scan(&code).expect("scan");
            }
            Event::Connected { .. } => break,
            _ => {}
        }
    }
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    client
}

/// The `data` of every `message` webhook the receiver got.
fn messages(receiver: &Receiver) -> Vec<Value> {
    receiver
        .received()
        .into_iter()
        .filter(|r| r.envelope["type"] == "message")
        .map(|r| r.envelope["data"].clone())
        .collect()
}

/// A server (sandbox mode, inline media on) with session `s` connected and webhooks to a
/// receiver, a peer linked to the same sandbox, and a small image message from the peer.
struct Setup {
    state: AppState,
    api: Api,
    receiver: Receiver,
    peer: Client,
    session_jid: Jid,
    image: wa_proto::wa::Message,
    _dir: tempfile::TempDir,
}

async fn setup(tune: impl FnOnce(&mut ServerConfig)) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ServerConfig::new(dir.path());
    config.api_key = Some(Secret::new(KEY));
    config.upstream = Upstream::Sandbox;
    config.media.inline_max_bytes = 8192;
    config.webhooks.initial_backoff = Duration::from_millis(100);
    // The test receivers and file servers listen on 127.0.0.1 (a non-public target).
    config.egress.allow_private_targets = true;
    tune(&mut config);
    let state = AppState::start(config).await.expect("start");
    let api = Api::new(serve_router(app(state.clone())).await, Some(KEY));
    let receiver = Receiver::start(false).await;
    let (status, v) = api
        .post(
            "/api/sessions",
            &json!({ "id": "s", "webhooks": [{ "url": receiver.url(), "events": ["message", "connection"] }] }),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    api.wait_status("s", "qr").await;
    let (status, scan) = api.post("/api/sessions/s/sandbox/scan", &json!({})).await;
    assert_eq!(status, 200, "{scan}");
    let info = api.wait_status("s", "connected").await;
    let session_jid = Jid::from_str(info["jid"].as_str().expect("jid"))
        .expect("jid parses")
        .to_non_ad();
    let sandbox = state.sandbox().expect("sandbox");
    let peer = link_peer(sandbox, PEER).await;

    // One small image, uploaded once, sent BURST times (each a separate message).
    let mut file = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    file.extend((0..2000u32).map(|i| (i % 251) as u8));
    let up = peer
        .upload(MediaType::Image, MediaSource::Bytes(Bytes::from(file)))
        .await
        .expect("upload");
    let image = message::image(
        &up,
        ImageOptions {
            mimetype: "image/png".into(),
            ..Default::default()
        },
    );
    Setup {
        state,
        api,
        receiver,
        peer,
        session_jid,
        image,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_media_host_does_not_stall_the_session() {
    let Setup {
        state,
        api,
        receiver,
        peer,
        session_jid,
        image,
        _dir,
    } = setup(|_| {}).await;
    let sandbox = state.sandbox().expect("sandbox");
    sandbox.media().stall_downloads(true);
    let stall_began = now_ms();
    let mut ids = HashSet::new();
    for _ in 0..BURST {
        let id = peer
            .send_message(&session_jid, image.clone())
            .await
            .expect("peer sends an image");
        ids.insert(id.to_string());
    }
    let text_id = peer
        .send_text(&session_jid, "sent during the stall")
        .await
        .expect("peer sends a text")
        .to_string();

    // The text's event arrives while the media host still hangs.
    let deadline = tokio::time::Instant::now() + PROMPT;
    loop {
        if messages(&receiver).iter().any(|m| m["id"] == text_id) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the text's message event did not arrive within {PROMPT:?} of a stalled media host"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        sandbox.media().download_count(),
        0,
        "the media host still hangs: no image was downloaded yet"
    );
    let (_, now) = api.get("/api/sessions/s").await;
    assert_eq!(now["status"], "connected", "{now}");
    assert_eq!(
        connection_changes_since(&receiver, stall_began),
        Vec::<Value>::new(),
        "no connection change during the stall"
    );

    // The host answers again: every image's event arrives, with its download URL.
    sandbox.media().stall_downloads(false);
    let images = eventually("every image's message event", || {
        let got: Vec<Value> = messages(&receiver)
            .into_iter()
            .filter(|m| ids.contains(m["id"].as_str().unwrap_or_default()))
            .collect();
        (got.len() >= BURST).then_some(got)
    })
    .await;
    let distinct: HashSet<&str> = images.iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(distinct.len(), BURST, "each image once");
    for m in &images {
        let media = &m["media"];
        assert!(media["download_url"].is_string(), "{m}");
        assert!(
            media["base64"].is_string() || media["inline_error"].is_string(),
            "{m}"
        );
    }
    assert!(
        images.iter().any(|m| m["media"]["base64"].is_string()),
        "downloads resume once the host answers"
    );
    let (_, now) = api.get("/api/sessions/s").await;
    assert_eq!(now["status"], "connected", "{now}");
    assert_eq!(
        connection_changes_since(&receiver, stall_began),
        Vec::<Value>::new()
    );
    state.shutdown().await;
}

/// The `connection` events emitted at or after `since` (unix ms) whose status is not
/// `connected` (a disconnect shows as `connecting`).
fn connection_changes_since(receiver: &Receiver, since: u64) -> Vec<Value> {
    receiver
        .received()
        .into_iter()
        .filter(|r| {
            r.envelope["type"] == "connection"
                && r.envelope["timestamp"].as_u64().unwrap_or(0) >= since
                && r.envelope["data"]["status"] != "connected"
        })
        .map(|r| r.envelope["data"].clone())
        .collect()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_inline_queue_sends_the_event_at_once_with_inline_error() {
    let Setup {
        state,
        api,
        receiver,
        peer,
        session_jid,
        image,
        _dir,
    } = setup(|config| {
        config.media.inline_concurrency = 1;
        config.media.inline_queue = 1;
    })
    .await;
    let sandbox = state.sandbox().expect("sandbox");
    sandbox.media().stall_downloads(true);
    let mut ids = HashSet::new();
    for _ in 0..10 {
        let id = peer
            .send_message(&session_jid, image.clone())
            .await
            .expect("peer sends an image");
        ids.insert(id.to_string());
    }
    // One download hangs, one waits: the other events come at once, without the file.
    let refused = eventually("the events the full queue refused", || {
        let got: Vec<Value> = messages(&receiver)
            .into_iter()
            .filter(|m| ids.contains(m["id"].as_str().unwrap_or_default()))
            .collect();
        (got.len() >= 8).then_some(got)
    })
    .await;
    for m in &refused {
        assert_eq!(m["media"]["inline_error"], "download failed", "{m}");
        assert!(m["media"]["download_url"].is_string(), "{m}");
    }
    // The ones held by the workers follow once the host answers.
    sandbox.media().stall_downloads(false);
    let all = eventually("every image's message event", || {
        let got: Vec<Value> = messages(&receiver)
            .into_iter()
            .filter(|m| ids.contains(m["id"].as_str().unwrap_or_default()))
            .collect();
        (got.len() >= 10).then_some(got)
    })
    .await;
    // One running and at most one queued: the first may still sit in the queue when the
    // second comes, which is then refused too.
    let inlined = all
        .iter()
        .filter(|m| m["media"]["base64"].is_string())
        .count();
    assert!((1..=2).contains(&inlined), "{inlined} inlined");
    let (_, now) = api.get("/api/sessions/s").await;
    assert_eq!(now["status"], "connected", "{now}");
    state.shutdown().await;
}
