//! Media interop with a real Baileys 6.7.24 client (issue 6 acceptance): an image sent by our
//! engine downloads and decrypts in Baileys' own `downloadMediaMessage` with identical bytes,
//! and an image Baileys uploads and sends downloads in our engine with identical bytes. The
//! hashes are checked on both sides: `fileSha256` against the plaintext, `fileEncSha256`
//! against the blob the sandbox's media host stored.
//!
//! Baileys talks to media hosts only over `https://` (uploads to the `media_conn` host,
//! downloads from `https://mmg.whatsapp.net` + directPath), so the sandbox runs its media
//! port with TLS as well ([`SandboxConfig::with_media_tls`]); the harness trusts the
//! sandbox's self-signed certificate through `NODE_EXTRA_CA_CERTS` and routes Baileys'
//! media connections to the sandbox with `--media-host` (interop/BAILEYS_NOTES.md §12).
//! Our engine keeps speaking plain `http` to the same port.
//!
//! Needs Node >= 20 and npm on PATH; `npm ci` in `wa-sandbox/interop` runs on first use
//! (tests/support/interop.rs). Fails, never skips, without them.

mod support;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use support::baileys::Harness;
use wa_engine::media::message::ImageOptions;
use wa_engine::media::{MediaType, Scheme};
use wa_engine::{Client, Event, Events, IncomingMessage, Jid, MemoryStore};
use wa_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

const ENGINE: &str = "15551260001";
const BAILEYS: &str = "15551260002";
const STEP: Duration = Duration::from_secs(45);

/// A `w` x `h` RGB PNG whose pixels are a fixed pseudo-random sequence (incompressible, so
/// the file spans many AES blocks).
fn png(w: u32, h: u32, seed: u32) -> anyhow::Result<Vec<u8>> {
    let mut pixels = Vec::with_capacity((w * h * 3) as usize);
    let mut x = seed | 1;
    for _ in 0..w * h * 3 {
        // xorshift32
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        pixels.push(x.to_le_bytes()[0]);
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(out)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn next<T>(
    events: &mut Events,
    mut pred: impl FnMut(&Event) -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .context("expected engine event not seen in time")?
            .context("engine event stream ended")?;
        if let Some(t) = pred(&event) {
            return Ok(t);
        }
    }
}

/// Pairs an engine client (media over `http`) to `number` by QR; returns it once connected
/// and its prekeys are on the server.
async fn engine(sandbox: &SandboxHandle, number: &str) -> anyhow::Result<(Client, Events)> {
    let phone = sandbox.phone(number)?;
    let (client, mut events) = Client::builder(Arc::new(MemoryStore::new()))
        .url(sandbox.ws_url())
        .trust_root(sandbox.trust_root())
        .device_name("wa-rs")
        .media_scheme(Scheme::Http)
        .connect()
        .await?;
    next(&mut events, |e| match e {
        Event::Qr { code, .. } => {
            let _ = phone.scan(code);
            None
        }
        Event::Connected { .. } => Some(()),
        _ => None,
    })
    .await?;
    let deadline = tokio::time::Instant::now() + STEP;
    while sandbox
        .router()
        .account(number)?
        .devices
        .first()
        .map_or(0, |d| d.prekeys)
        == 0
    {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "engine never uploaded prekeys"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((client, events))
}

/// The SHA-256 (hex) of the enc file the media host stored under `direct_path`.
fn stored_blob_sha256(sandbox: &SandboxHandle, direct_path: &str) -> anyhow::Result<String> {
    let file = sandbox
        .media()
        .blob_file(direct_path)
        .with_context(|| format!("no stored blob for {direct_path}"))?;
    Ok(sha256_hex(&std::fs::read(file)?))
}

#[tokio::test]
async fn images_cross_between_engine_and_baileys_with_identical_bytes_and_hashes()
-> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
    let sandbox =
        Sandbox::start(SandboxConfig::default().with_seed(15).with_media_tls(true)).await?;
    sandbox.create_account(ENGINE)?;
    let baileys_phone = sandbox.create_account(BAILEYS)?;
    let (client, mut events) = engine(&sandbox, ENGINE).await?;

    // Baileys trusts the sandbox's certificate and sends its media connections to it.
    let dir = tempfile::tempdir()?;
    let cert = dir.path().join("media-ca.pem");
    std::fs::write(
        &cert,
        sandbox
            .media_tls_cert_pem()
            .context("media TLS is on: a certificate")?,
    )?;
    let media_host = sandbox
        .media_url()
        .strip_prefix("http://")
        .context("media url is http://host:port")?
        .to_owned();
    let auth = dir.path().join("auth");
    let mut baileys = Harness::spawn_with_env(
        &sandbox,
        &auth,
        "baileys",
        &["--media-host", &media_host],
        &[("NODE_EXTRA_CA_CERTS", cert.as_os_str())],
    )?;
    baileys.pair(&baileys_phone).await?;

    // Engine -> Baileys: Baileys' own downloadMediaMessage returns the same bytes.
    let image = png(160, 120, 7)?;
    let sent = client
        .send_image(
            &Jid::pn(BAILEYS),
            image.clone(),
            ImageOptions {
                caption: Some("from wa-rs".into()),
                ..ImageOptions::default()
            },
        )
        .await?;
    let ours = sent
        .message
        .image_message
        .as_deref()
        .context("imageMessage")?;
    let direct_path = ours.direct_path.clone().context("directPath")?;
    let got = baileys
        .until(|e| e["event"] == "message" && e["id"] == sent.id.0.as_str())
        .await?;
    assert_eq!(got["media"]["mediaType"], "image", "{got}");
    assert_eq!(got["media"]["mimetype"], "image/png", "{got}");
    assert_eq!(got["media"]["directPath"], direct_path.as_str(), "{got}");
    assert_eq!(got["text"], "from wa-rs", "{got}");
    let downloads_before = sandbox.media().download_count();
    baileys
        .command(json!({"cmd": "download_media", "id": sent.id.0, "ref": "d1"}))
        .await?;
    let media = baileys
        .until(|e| e["ref"] == "d1" && (e["event"] == "media" || e["event"] == "error"))
        .await?;
    assert_eq!(media["event"], "media", "{media}");
    assert_eq!(media["via"], "downloadMediaMessage", "{media}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(media["base64"].as_str().context("base64")?)?;
    assert!(bytes == image, "Baileys decrypted other bytes than we sent");
    assert_eq!(media["sha256"], sha256_hex(&image).as_str());
    assert_eq!(media["fileSha256Matches"], true, "{media}");
    let enc_sha = hex::encode(ours.file_enc_sha256.as_deref().context("fileEncSha256")?);
    assert_eq!(media["fileEncSha256"], enc_sha.as_str());
    assert_eq!(stored_blob_sha256(&sandbox, &direct_path)?, enc_sha);
    assert_eq!(
        sandbox.media().download_count(),
        downloads_before + 1,
        "Baileys' download reached the sandbox's media host"
    );

    // Baileys -> engine: Baileys encrypts and uploads over HTTPS; the engine downloads,
    // verifies (fileEncSha256, MAC, fileSha256) and gets the same bytes.
    let image2 = png(200, 90, 99)?;
    let path = dir.path().join("from-baileys.png");
    std::fs::write(&path, &image2)?;
    let uploads_before = sandbox.media().upload_count();
    baileys
        .command(json!({
            "cmd": "send_image",
            "to": format!("{ENGINE}@s.whatsapp.net"),
            "path": path,
            "mimetype": "image/png",
            "caption": "from baileys",
            "ref": "s1",
        }))
        .await?;
    let sent2 = baileys
        .until(|e| e["ref"] == "s1" && (e["event"] == "sent" || e["event"] == "error"))
        .await?;
    assert_eq!(sent2["event"], "sent", "{sent2}");
    assert_eq!(sandbox.media().upload_count(), uploads_before + 1);
    let upload_url = sent2["media"]["url"].as_str().context("url")?;
    assert!(
        upload_url.starts_with(&format!("https://{media_host}/")),
        "Baileys uploaded over HTTPS to the media_conn host: {sent2}"
    );
    assert_eq!(sent2["media"]["fileSha256"], sha256_hex(&image2).as_str());
    let direct_path2 = sent2["media"]["directPath"]
        .as_str()
        .context("directPath")?;
    assert_eq!(
        sent2["media"]["fileEncSha256"],
        stored_blob_sha256(&sandbox, direct_path2)?.as_str(),
        "Baileys' fileEncSha256 is the hash of the stored blob: {sent2}"
    );
    let sent2_id = sent2["id"].as_str().context("id")?.to_owned();
    let msg: IncomingMessage = next(&mut events, |e| match e {
        Event::Message(m) if m.info.id == sent2_id => Some((**m).clone()),
        _ => None,
    })
    .await?;
    assert_eq!(msg.text(), Some("from baileys"));
    let handle = msg.media()?.context("a download handle")?;
    assert_eq!(handle.media_type, MediaType::Image);
    let downloaded = client.download(&handle).await?;
    assert!(
        downloaded == image2,
        "the engine decrypted other bytes than Baileys sent"
    );
    let theirs = msg
        .message
        .image_message
        .as_deref()
        .context("imageMessage")?;
    assert_eq!(theirs.mimetype.as_deref(), Some("image/png"));
    assert_eq!(
        theirs.file_sha256.as_deref().map(hex::encode),
        Some(sha256_hex(&image2))
    );

    baileys.command(json!({"cmd": "quit"})).await?;
    let _: Value = baileys.until(|e| e["event"] == "exit").await?;
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}
