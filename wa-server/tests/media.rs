//! Media end to end over HTTP on loopback with the embedded sandbox: a connected session
//! sends images, video, voice notes, documents and stickers by multipart upload, by URL
//! (served from a local listener) and by base64; a second account's engine client receives
//! each and downloads bytes identical to what was sent. Bad uploads are each a clear 4xx.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{StatusCode, header};
use base64::Engine as _;
use serde_json::{Value, json};
use support::{Api, Receiver, eventually, serve_router};
use tokio::process::{Child, Command};
use wa_engine::media::Scheme;
use wa_engine::media::message::{DocumentOptions, ImageOptions};
use wa_engine::{Client, Event, Events, IncomingMessage, Jid, MemoryStore, Store};
use wa_proto::wa;
use wa_sandbox::{Sandbox, SandboxConfig, SandboxHandle};
use wa_server::{AppState, Secret, ServerConfig, Upstream, app};

const KEY: &str = "media-admin-key-abcdefghijkl";
/// The server's media limit in these tests, bytes.
const MAX: u64 = 256 * 1024;
/// The peer account.
const PEER: &str = "15550002222";
const STEP: Duration = Duration::from_secs(30);

struct Server {
    state: AppState,
    api: Api,
    _dir: tempfile::TempDir,
}

/// A server in sandbox mode with session `m` connected.
async fn connected_server() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ServerConfig::new(dir.path());
    config.api_key = Some(Secret::new(KEY));
    config.upstream = Upstream::Sandbox;
    config.media.max_bytes = MAX;
    config.media.fetch_timeout = Duration::from_secs(2);
    config.media.fetch_allowed_hosts = Some(vec!["127.0.0.1".to_owned()]);
    config.webhooks.initial_backoff = Duration::from_millis(100);
    // The test receivers and file servers listen on 127.0.0.1 (a non-public target).
    config.egress.allow_private_targets = true;
    let state = AppState::start(config).await.expect("start");
    let base = serve_router(app(state.clone())).await;
    let api = Api::new(base, Some(KEY));
    let (status, v) = api.post("/api/sessions", &json!({ "id": "m" })).await;
    assert_eq!(status, 201, "{v}");
    api.wait_status("m", "qr").await;
    let (status, scan) = api.post("/api/sessions/m/sandbox/scan", &json!({})).await;
    assert_eq!(status, 200, "{scan}");
    api.wait_status("m", "connected").await;
    Server {
        state,
        api,
        _dir: dir,
    }
}

struct Peer {
    client: Client,
    events: Events,
}

impl Peer {
    /// Links an engine client to a new sandbox account `number`.
    async fn link(sandbox: &SandboxHandle, number: &str) -> Self {
        let phone = sandbox.create_account(number).expect("account");
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (client, mut events) = Client::builder(store.clone())
            .url(sandbox.ws_url())
            .trust_root(sandbox.trust_root())
            .device_name("media-peer")
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
        let deadline = tokio::time::Instant::now() + STEP;
        while store
            .prekey_counters()
            .expect("store")
            .unwrap_or_default()
            .first_unuploaded_id
            <= 1
        {
            assert!(tokio::time::Instant::now() < deadline, "prekeys uploaded");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self { client, events }
    }

    async fn next_message(&mut self) -> IncomingMessage {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .expect("a message in time")
                .expect("events open");
            if let Event::Message(m) = event {
                return *m;
            }
        }
    }

    /// Waits for the next message, checks it carries media, downloads it (verified).
    async fn receive_media(&mut self) -> (wa::Message, Vec<u8>) {
        let msg = self.next_message().await;
        let media = msg
            .media()
            .expect("valid media reference")
            .expect("a media message");
        let bytes = self.client.download(&media).await.expect("download");
        (msg.message, bytes)
    }
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().expect("png header");
        let data: Vec<u8> = (0..width * height * 3)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        writer.write_image_data(&data).expect("png data");
    }
    out
}

/// One Ogg page holding an `OpusHead` (RFC 7845 §5.1), plus filler: enough for sniffing.
fn ogg_opus() -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.extend_from_slice(&[1, 1, 0x38, 0x01, 0x80, 0xBB, 0, 0, 0, 0, 0]);
    let mut page = b"OggS\0\x02".to_vec();
    page.extend_from_slice(&[0; 8]); // granule
    page.extend_from_slice(&[1, 0, 0, 0]); // serial
    page.extend_from_slice(&[0; 4]); // sequence
    page.extend_from_slice(&[0; 4]); // CRC (not checked by sniffers)
    page.push(1);
    page.push(u8::try_from(head.len()).expect("short"));
    page.extend_from_slice(&head);
    page.extend((0..2000u32).map(|i| (i % 256) as u8));
    page
}

fn mp4() -> Vec<u8> {
    let mut v = vec![0, 0, 0, 0x18];
    v.extend_from_slice(b"ftypisom\0\0\x02\0isomiso2");
    v.extend((0..5000u32).map(|i| (i * 13 % 256) as u8));
    v
}

fn webp() -> Vec<u8> {
    let mut v = b"RIFF\x24\x10\0\0WEBPVP8L".to_vec();
    v.extend_from_slice(&[0x10, 0, 0, 0, 0x2f, 0x0f, 0xc0, 0x03]);
    v.extend((0..4000u32).map(|i| (i % 200) as u8));
    v
}

fn pdf() -> Vec<u8> {
    let mut v = b"%PDF-1.4\n1 0 obj << /Type /Pages /Count 3 >> endobj\n".to_vec();
    v.extend((0..3000u32).map(|i| b'a' + (i % 26) as u8));
    v.extend_from_slice(b"\n%%EOF\n");
    v
}

/// Multipart POST of `fields` plus a `file` part.
async fn upload(
    api: &Api,
    path: &str,
    fields: &[(&str, &str)],
    file: Option<(&str, Vec<u8>)>,
    auth: bool,
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
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", api.base))
        .multipart(form);
    if auth {
        req = req.header("x-api-key", KEY);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let body = serde_json::from_slice(&resp.bytes().await.expect("body")).unwrap_or(Value::Null);
    (status, body)
}

/// A local file server: `/doc.pdf`, `/big.bin` (over the limit), `/missing` (404),
/// `/bounce` (redirects to a `file:` URL), `/slow.jpg` (never finishes).
async fn file_server(pdf: Vec<u8>) -> String {
    use axum::routing::get;
    let big = vec![7_u8; usize::try_from(MAX).expect("small") + 1];
    let router = axum::Router::new()
        .route(
            "/files/doc.pdf",
            get(move || {
                let pdf = pdf.clone();
                async move { ([(header::CONTENT_TYPE, "application/pdf")], pdf) }
            }),
        )
        .route("/big.bin", get(move || async move { big.clone() }))
        .route(
            "/bounce",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "file:///etc/passwd")],
                )
            }),
        )
        .route(
            "/loop",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop")]) }),
        )
        .route(
            "/elsewhere",
            get(|| async {
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(header::LOCATION, "http://localhost:9/a.png")],
                )
            }),
        )
        .route(
            "/slow.jpg",
            get(|| async {
                // Headers, then a body that never ends.
                axum::body::Body::from_stream(futures_util::stream::pending::<
                    Result<Vec<u8>, std::io::Error>,
                >())
            }),
        )
        .route(
            "/redirect.pdf",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/files/doc.pdf")]) }),
        );
    serve_router(router).await
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// MIME-style base64: lines of 76 characters.
fn wrapped(text: &str) -> String {
    text.as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn tmp_files(state: &AppState) -> usize {
    std::fs::read_dir(state.config().data_dir.join("tmp"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn media_sends_by_upload_url_and_base64_arrive_byte_identical() {
    let server = connected_server().await;
    let api = &server.api;
    let mut peer = Peer::link(server.state.sandbox().expect("sandbox"), PEER).await;
    let to = format!("+{PEER}");
    let files = file_server(pdf()).await;

    // Image by multipart upload, with a caption.
    let image = png(40, 30);
    let (status, sent) = upload(
        api,
        "/api/sessions/m/messages/image",
        &[("to", &to), ("caption", "the invoice")],
        Some(("photo.png", image.clone())),
        true,
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["type"], "image");
    assert_eq!(sent["mimetype"], "image/png");
    assert_eq!(sent["size"], image.len());
    let (msg, bytes) = peer.receive_media().await;
    assert_eq!(bytes, image, "image bytes identical");
    let im = msg.image_message.expect("image message");
    assert_eq!(im.caption.as_deref(), Some("the invoice"));
    assert_eq!(im.mimetype.as_deref(), Some("image/png"));
    assert_eq!((im.width, im.height), (Some(40), Some(30)));
    assert!(
        im.jpeg_thumbnail
            .as_ref()
            .is_some_and(|t| t.starts_with(&[0xFF, 0xD8])),
        "a JPEG thumbnail"
    );
    let id = sent["id"].as_str().expect("id");
    let (status, st) = api.get(&format!("/api/sessions/m/messages/{id}")).await;
    assert_eq!(status, 200, "{st}");
    assert_eq!(st["type"], "image");
    assert!(
        ["sent", "delivered", "read"].contains(&st["status"].as_str().unwrap_or_default()),
        "{st}"
    );
    // Our own upload can be downloaded again through the server.
    let (status, again) = api
        .get_bytes(sent["download_url"].as_str().expect("download url"))
        .await;
    assert_eq!((status, again == image), (200, true));

    // Document by URL (fetched from the local server; file name from the path).
    let (status, sent) = api
        .post(
            "/api/sessions/m/messages/document",
            &json!({ "to": to, "url": format!("{files}/redirect.pdf"), "caption": "Q3" }),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["mimetype"], "application/pdf");
    let (msg, bytes) = peer.receive_media().await;
    assert_eq!(bytes, pdf(), "document bytes identical");
    let doc = msg
        .document_message
        .or_else(|| {
            msg.document_with_caption_message
                .and_then(|w| w.message)
                .and_then(|m| m.document_message)
        })
        .expect("document message");
    assert_eq!(doc.file_name.as_deref(), Some("doc.pdf"));
    assert_eq!(doc.mimetype.as_deref(), Some("application/pdf"));
    let (status, sent) = api
        .post(
            "/api/sessions/m/messages/document",
            &json!({ "to": to, "url": format!("{files}/files/doc.pdf"), "file_name": "../Invoice 7.pdf" }),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    let (msg, _) = peer.receive_media().await;
    let doc = wa_engine::message::content::unwrap(&msg)
        .document_message
        .clone()
        .expect("document");
    assert_eq!(doc.file_name.as_deref(), Some("Invoice 7.pdf"));

    // Voice note by base64.
    let voice = ogg_opus();
    let (status, sent) = api
        .post(
            "/api/sessions/m/messages/audio",
            &json!({ "to": format!("{PEER}@s.whatsapp.net"), "base64": wrapped(&b64(&voice)), "voice_note": true }),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["mimetype"], "audio/ogg; codecs=opus");
    let (msg, bytes) = peer.receive_media().await;
    assert_eq!(bytes, voice, "voice note bytes identical");
    assert_eq!(msg.audio_message.expect("audio").ptt, Some(true));

    // Video by base64 in a data: URL.
    let video = mp4();
    let (status, sent) = api
        .post(
            "/api/sessions/m/messages/video",
            &json!({ "to": to, "base64": format!("data:video/mp4;base64,{}", b64(&video)), "caption": "clip" }),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    let (msg, bytes) = peer.receive_media().await;
    assert_eq!(bytes, video, "video bytes identical");
    assert_eq!(
        msg.video_message.expect("video").caption.as_deref(),
        Some("clip")
    );

    // Sticker by multipart.
    let sticker = webp();
    let (status, sent) = upload(
        api,
        "/api/sessions/m/messages/sticker",
        &[("to", &to)],
        Some(("s.webp", sticker.clone())),
        true,
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    let (msg, bytes) = peer.receive_media().await;
    assert_eq!(bytes, sticker, "sticker bytes identical");
    assert!(msg.sticker_message.is_some());

    assert_eq!(tmp_files(&server.state), 0, "temporary files removed");
    peer.client.shutdown().await;
    tokio::time::timeout(Duration::from_secs(30), server.state.shutdown())
        .await
        .expect("shutdown");
}

#[tokio::test]
async fn bad_media_uploads_are_clear_4xx_errors() {
    let server = connected_server().await;
    let api = &server.api;
    let to = format!("+{PEER}");
    let files = file_server(pdf()).await;
    let image_path = "/api/sessions/m/messages/image";

    let check = |what: &str, (status, body): (u16, Value), want: u16, code: &str| {
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (want, Some(code)),
            "{what}: {body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: a message"
        );
    };

    // Wrong type: a PDF as an image, an MP3-ish file as a voice note, PNG as a sticker.
    check(
        "pdf as image",
        upload(
            api,
            image_path,
            &[("to", &to)],
            Some(("x.jpg", pdf())),
            true,
        )
        .await,
        415,
        "media_type_not_allowed",
    );
    check(
        "mp3 as voice note",
        api.post(
            "/api/sessions/m/messages/audio",
            &json!({ "to": to, "voice_note": true, "base64": b64(b"ID3\x04\0\0\0\0\0\x00garbage-mp3-frames") }),
        )
        .await,
        415,
        "media_type_not_allowed",
    );
    check(
        "png as sticker",
        api.post(
            "/api/sessions/m/messages/sticker",
            &json!({ "to": to, "base64": b64(&png(4, 4)) }),
        )
        .await,
        415,
        "media_type_not_allowed",
    );
    check(
        "unknown bytes as image",
        api.post(
            image_path,
            &json!({ "to": to, "base64": b64(b"just some text") }),
        )
        .await,
        415,
        "media_type_not_allowed",
    );
    // Too large, each way.
    let big = vec![0x42_u8; usize::try_from(MAX).expect("small") + 10];
    check(
        "large upload",
        upload(
            api,
            "/api/sessions/m/messages/document",
            &[("to", &to)],
            Some(("big.bin", big.clone())),
            true,
        )
        .await,
        413,
        "media_too_large",
    );
    check(
        "large base64",
        api.post(
            "/api/sessions/m/messages/document",
            &json!({ "to": to, "base64": b64(&big) }),
        )
        .await,
        413,
        "media_too_large",
    );
    check(
        "large URL",
        api.post(
            "/api/sessions/m/messages/document",
            &json!({ "to": to, "url": format!("{files}/big.bin") }),
        )
        .await,
        413,
        "media_too_large",
    );
    // Corrupt or missing input.
    check(
        "corrupt base64",
        api.post(
            image_path,
            &json!({ "to": to, "base64": "iVBORw0K!!!*not base64*" }),
        )
        .await,
        400,
        "invalid_base64",
    );
    check(
        "neither url nor base64",
        api.post(image_path, &json!({ "to": to })).await,
        400,
        "missing_media",
    );
    check(
        "both url and base64",
        api.post(
            image_path,
            &json!({ "to": to, "url": "http://127.0.0.1:1/a.png", "base64": "AAAA" }),
        )
        .await,
        400,
        "missing_media",
    );
    check(
        "form without a file",
        upload(api, image_path, &[("to", &to)], None, true).await,
        400,
        "missing_media",
    );
    check(
        "empty file",
        upload(
            api,
            image_path,
            &[("to", &to)],
            Some(("e.png", Vec::new())),
            true,
        )
        .await,
        400,
        "missing_media",
    );
    check(
        "unknown form field",
        upload(
            api,
            image_path,
            &[("to", &to), ("colour", "red")],
            Some(("a.png", png(2, 2))),
            true,
        )
        .await,
        422,
        "invalid_body",
    );
    check(
        "form without a recipient",
        upload(api, image_path, &[], Some(("a.png", png(2, 2))), true).await,
        422,
        "invalid_body",
    );
    check(
        "caption on a sticker",
        api.post(
            "/api/sessions/m/messages/sticker",
            &json!({ "to": to, "base64": b64(&webp()), "caption": "no" }),
        )
        .await,
        422,
        "invalid_body",
    );
    // URLs: bad scheme, unreachable, 404, redirect to file:.
    check(
        "file URL",
        api.post(
            image_path,
            &json!({ "to": to, "url": "file:///etc/passwd" }),
        )
        .await,
        400,
        "invalid_media_url",
    );
    check(
        "relative URL",
        api.post(image_path, &json!({ "to": to, "url": "/a.png" }))
            .await,
        400,
        "invalid_media_url",
    );
    check(
        "unreachable URL",
        api.post(
            image_path,
            &json!({ "to": to, "url": "http://127.0.0.1:1/a.png" }),
        )
        .await,
        400,
        "media_fetch_failed",
    );
    check(
        "404 URL",
        api.post(
            image_path,
            &json!({ "to": to, "url": format!("{files}/missing") }),
        )
        .await,
        400,
        "media_fetch_failed",
    );
    check(
        "URL that never finishes",
        api.post(
            image_path,
            &json!({ "to": to, "url": format!("{files}/slow.jpg") }),
        )
        .await,
        400,
        "media_fetch_failed",
    );
    check(
        "redirect loop",
        api.post(
            image_path,
            &json!({ "to": to, "url": format!("{files}/loop") }),
        )
        .await,
        400,
        "media_fetch_failed",
    );
    check(
        "host not allowed",
        api.post(
            image_path,
            &json!({ "to": to, "url": "http://localhost:9/a.png" }),
        )
        .await,
        400,
        "invalid_media_url",
    );
    check(
        "redirect to a host not allowed",
        api.post(
            image_path,
            &json!({ "to": to, "url": format!("{files}/elsewhere") }),
        )
        .await,
        400,
        "invalid_media_url",
    );
    check(
        "redirect to file:",
        api.post(
            image_path,
            &json!({ "to": to, "url": format!("{files}/bounce") }),
        )
        .await,
        400,
        "media_fetch_failed",
    );
    // Wrong body type; bad recipient.
    let resp = reqwest::Client::new()
        .post(format!("{}{image_path}", api.base))
        .header("x-api-key", KEY)
        .header(header::CONTENT_TYPE, "image/png")
        .body(png(2, 2))
        .send()
        .await
        .expect("request");
    check(
        "raw image body",
        (
            resp.status().as_u16(),
            serde_json::from_slice(&resp.bytes().await.expect("body")).unwrap_or(Value::Null),
        ),
        415,
        "unsupported_media_type",
    );
    check(
        "bad recipient",
        upload(
            api,
            image_path,
            &[("to", "12ab")],
            Some(("a.png", png(2, 2))),
            true,
        )
        .await,
        400,
        "invalid_phone_number",
    );
    // Auth.
    check(
        "no credentials",
        upload(
            api,
            image_path,
            &[("to", &to)],
            Some(("a.png", png(2, 2))),
            false,
        )
        .await,
        401,
        "auth_required",
    );
    check(
        "unknown media",
        api.get("/api/sessions/m/media/NOPE").await,
        404,
        "media_not_found",
    );

    assert_eq!(tmp_files(&server.state), 0, "temporary files removed");
    tokio::time::timeout(Duration::from_secs(30), server.state.shutdown())
        .await
        .expect("shutdown");
}

/// Starts the `wa-server` binary on 127.0.0.1:0 against `sb`, with `args`; returns the child
/// and its base URL.
async fn spawn_server(sb: &SandboxHandle, dir: &std::path::Path, args: &[&str]) -> (Child, String) {
    let root = base64::engine::general_purpose::STANDARD.encode(sb.trust_root_key());
    let mut command = Command::new(env!("CARGO_BIN_EXE_wa-server"));
    command
        .args(["--bind", "127.0.0.1:0", "--webhook-backoff-ms", "100"])
        // The test receivers listen on 127.0.0.1 (a non-public target).
        .arg("--allow-private-targets")
        .args(["--wa-url", sb.ws_url(), "--wa-trust-root", &root])
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("WA_API_KEY", KEY)
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::inherit());
    support::spawn_listening(command).await
}

/// The `media` object of the first `message` webhook of `kind`.
async fn media_event(receiver: &Receiver, kind: &str) -> Value {
    eventually(&format!("a {kind} message webhook"), || {
        receiver.received().into_iter().find_map(|r| {
            (r.envelope["type"] == "message" && r.envelope["data"]["type"] == kind)
                .then(|| r.envelope["data"].clone())
        })
    })
    .await
}

#[tokio::test]
async fn incoming_media_has_an_authenticated_download_url_that_survives_a_restart() {
    let sb = Sandbox::start(
        SandboxConfig::default()
            .with_seed(23)
            .with_first_stanza_delay(Duration::ZERO),
    )
    .await
    .expect("sandbox");
    let phone = sb.create_account("15557000001").expect("account");
    let receiver = Receiver::start(false).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let flags = ["--media-inline-max-bytes", "8192"];
    let (mut child, base) = spawn_server(&sb, dir.path(), &flags).await;
    let api = Api::new(base, Some(KEY));
    let (status, created) = api
        .post(
            "/api/sessions",
            &json!({ "id": "in", "webhooks": [{ "url": receiver.url(), "events": ["message"] }] }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    api.wait_status("in", "qr").await;
    let (_, qr) = api.get("/api/sessions/in/qr").await;
    phone.scan(qr["qr"].as_str().expect("qr")).expect("scan");
    api.wait_status("in", "connected").await;

    let peer = Peer::link(&sb, "15557000002").await;
    let session_jid = Jid::pn("15557000001");
    let image = png(24, 24);
    assert!(image.len() < 8192, "small enough to be inlined");
    peer.client
        .send_image(
            &session_jid,
            image.clone(),
            ImageOptions {
                caption: Some("receipt".into()),
                ..Default::default()
            },
        )
        .await
        .expect("peer sends an image");
    let mut document = pdf();
    document.extend(std::iter::repeat_n(b'x', 20_000));
    peer.client
        .send_document(
            &session_jid,
            document.clone(),
            DocumentOptions {
                file_name: Some("statement.pdf".into()),
                ..Default::default()
            },
        )
        .await
        .expect("peer sends a document");

    // The image: kind, type, size, caption, inline base64 and a download URL.
    let data = media_event(&receiver, "image").await;
    let media = &data["media"];
    assert_eq!(media["kind"], "image", "{data}");
    assert_eq!(media["mimetype"], "image/png");
    assert_eq!(media["size"], image.len());
    assert_eq!(media["caption"], "receipt");
    assert_eq!(data["text"], "receipt");
    let inline = base64::engine::general_purpose::STANDARD
        .decode(media["base64"].as_str().expect("inline base64"))
        .expect("base64");
    assert_eq!(inline, image);
    let id = data["id"].as_str().expect("id");
    let url = media["download_url"].as_str().expect("download url");
    assert_eq!(url, format!("/api/sessions/in/media/{id}"));
    let http = reqwest::Client::new();
    let resp = http
        .get(format!("{}{url}", api.base))
        .header("x-api-key", KEY)
        .send()
        .await
        .expect("download");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii"),
        "image/png"
    );
    assert_eq!(resp.bytes().await.expect("body"), image);
    let resp = http
        .get(format!("{}{url}", api.base))
        .send()
        .await
        .expect("download");
    assert_eq!(resp.status(), 401, "the download needs credentials");
    let body: Value = serde_json::from_slice(&resp.bytes().await.expect("body")).expect("json");
    assert_eq!(body["error"]["code"], "auth_required");

    // The document: too large to inline; file name and type.
    let data = media_event(&receiver, "document").await;
    let media = &data["media"];
    assert_eq!(media["file_name"], "statement.pdf", "{data}");
    assert_eq!(media["mimetype"], "application/pdf");
    assert_eq!(media["size"], document.len());
    assert!(media.get("base64").is_none(), "not inlined: {media}");
    let doc_url = media["download_url"].as_str().expect("url").to_owned();

    // SIGKILL and start again: the stored reference still downloads.
    child.start_kill().expect("SIGKILL");
    let _ = child.wait().await;
    let (_child, base) = spawn_server(&sb, dir.path(), &flags).await;
    let api = Api::new(base, Some(KEY));
    api.wait_status("in", "connected").await;
    let resp = reqwest::Client::new()
        .get(format!("{}{doc_url}", api.base))
        .header("x-api-key", KEY)
        .send()
        .await
        .expect("download");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()[header::CONTENT_DISPOSITION]
            .to_str()
            .expect("ascii"),
        "inline; filename=\"statement.pdf\""
    );
    let bytes = resp.bytes().await.expect("body");
    assert!(
        bytes == document,
        "document bytes identical after a restart"
    );
    peer.client.shutdown().await;
    sb.shutdown().await;
}
