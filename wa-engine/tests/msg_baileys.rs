//! Final acceptance of issue 4: our engine and a real Baileys 6.7.24 client (npm, pinned, in
//! `wa-sandbox/interop/`) exchange texts through wa-sandbox, and delivery receipts flow back
//! both ways. Baileys does its own usync, bundle fetches, X3DH and ratchet with
//! libsignal-node; nothing on its side was written here.
//!
//! Needs Node >= 20 and npm on PATH; `npm ci` in `wa-sandbox/interop` runs on first use
//! (same guard and lock file as wa-sandbox's Baileys tests). Fails, never skips, without them.

mod msg_support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use msg_support::{pair, sandbox};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use wa_engine::{Event, MessageStatus};
use wa_sandbox::{Phone, SandboxHandle};

const ENGINE: &str = "15552220001";
const BAILEYS: &str = "15552220002";
const STEP: Duration = Duration::from_secs(45);

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wa-sandbox/interop")
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Makes sure Node >= 20 and npm are there and `npm ci` has run in `wa-sandbox/interop`
/// (once per process, under the same exclusive lock file as wa-sandbox's tests/support/
/// interop.rs, so parallel test processes never install at the same time). Panics with a
/// clear message otherwise.
fn ensure_interop_installed() {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let result = DONE.get_or_init(|| {
        let node = std::process::Command::new("node")
            .arg("--version")
            .output()
            .map_err(|e| {
                format!("`node` is not runnable ({e}): these tests need Node >= 20 and npm")
            })?;
        let version = String::from_utf8_lossy(&node.stdout).trim().to_owned();
        let major: u32 = version
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        if major < 20 {
            return Err(format!("Node >= 20 is required, found {version:?}"));
        }
        let dir = interop_dir();
        let lock_path = dir.join(".npm-ci.lock");
        let lock = std::fs::File::create(&lock_path)
            .map_err(|e| format!("creating {}: {e}", lock_path.display()))?;
        lock.lock()
            .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
        let installed = modified(&dir.join("node_modules/.package-lock.json"));
        let stale = installed.is_none_or(|at| {
            ["package-lock.json", "package.json"]
                .iter()
                .any(|f| modified(&dir.join(f)).is_none_or(|m| m > at))
        });
        if stale {
            let out = std::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .output()
                .map_err(|e| format!("spawning npm ci: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "`npm ci` in {} failed: {}",
                    dir.display(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("Baileys interop harness unavailable: {e}");
    }
}

/// One Baileys client driven through `client.mjs` (JSON lines on stdin / stdout).
struct Baileys {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    backlog: Vec<Value>,
}

impl Baileys {
    fn spawn(sandbox: &SandboxHandle, auth_dir: &Path) -> anyhow::Result<Self> {
        ensure_interop_installed();
        let dir = interop_dir();
        assert!(
            dir.join("node_modules/@whiskeysockets/baileys").is_dir(),
            "Baileys is not installed: run `npm ci` in {} (needs Node >= 20)",
            dir.display()
        );
        let mut child = Command::new("node")
            .current_dir(&dir)
            .arg("client.mjs")
            .arg("--ws-url")
            .arg(sandbox.ws_url())
            .arg("--auth-dir")
            .arg(auth_dir)
            .arg("--timeout-ms")
            .arg("150000")
            .arg("--push-name")
            .arg("baileys")
            .arg("--no-init-queries")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("spawning node (is Node >= 20 installed?)")?;
        let stdout = child.stdout.take().context("stdout")?;
        Ok(Self {
            child,
            lines: BufReader::new(stdout).lines(),
            backlog: Vec::new(),
        })
    }

    async fn until(&mut self, mut pred: impl FnMut(&Value) -> bool) -> anyhow::Result<Value> {
        if let Some(i) = self.backlog.iter().position(&mut pred) {
            return Ok(self.backlog.remove(i));
        }
        loop {
            let line = tokio::time::timeout(STEP, self.lines.next_line())
                .await
                .context("no event from Baileys in time")??
                .context("Baileys stdout ended")?;
            eprintln!("baileys: {line}");
            let event: Value =
                serde_json::from_str(&line).with_context(|| format!("not JSON: {line}"))?;
            if pred(&event) {
                return Ok(event);
            }
            if event["event"] == "exit" || event["event"] == "timeout" {
                bail!("Baileys ended early: {event}");
            }
            self.backlog.push(event);
        }
    }

    async fn command(&mut self, cmd: Value) -> anyhow::Result<()> {
        let stdin = self.child.stdin.as_mut().context("stdin")?;
        stdin.write_all(format!("{cmd}\n").as_bytes()).await?;
        stdin.flush().await?;
        Ok(())
    }

    async fn pair(&mut self, phone: &Phone) -> anyhow::Result<String> {
        let qr = self.until(|e| e["event"] == "qr").await?;
        phone.scan(qr["qr"].as_str().context("qr")?)?;
        let open = self
            .until(|e| e["event"] == "connection" && e["connection"] == "open")
            .await?;
        open["me"]["id"]
            .as_str()
            .map(str::to_owned)
            .context("me.id")
    }
}

#[tokio::test]
async fn engine_and_baileys_exchange_texts_and_delivery_receipts() -> anyhow::Result<()> {
    let sb = sandbox(41).await?;
    let mut engine = pair(&sb, ENGINE).await?;
    let baileys_phone = sb.create_account(BAILEYS)?;
    let auth = tempfile::tempdir()?;
    let mut baileys = Baileys::spawn(&sb, auth.path())?;
    let baileys_jid = baileys.pair(&baileys_phone).await?;
    assert!(baileys_jid.starts_with(BAILEYS), "{baileys_jid}");
    let baileys_user: wa_engine::Jid = format!("{BAILEYS}@s.whatsapp.net").parse()?;

    // Engine -> Baileys: its messages.upsert shows the exact text.
    let text = "hello Baileys, this is wa-rs ✓";
    let id = engine.client.send_text(&baileys_user, text).await?;
    let got = baileys
        .until(|e| e["event"] == "message" && e["id"] == id.0.as_str())
        .await?;
    assert_eq!(got["text"], text, "{got}");
    assert_eq!(got["fromMe"], false);
    assert_eq!(got["from"], format!("{ENGINE}@s.whatsapp.net"));
    // Baileys' delivery receipt reaches the engine.
    let by = engine
        .wait(|e| match e {
            Event::MessageStatus {
                id: i,
                status: MessageStatus::Delivered,
                by,
                ..
            } if *i == id => by.clone(),
            _ => None,
        })
        .await?;
    assert_eq!(by.user(), BAILEYS);

    // Baileys -> engine, and the engine's delivery receipt reaches Baileys.
    let text = "hi wa-rs, Baileys here";
    baileys
        .command(json!({"cmd": "send_text", "to": format!("{ENGINE}@s.whatsapp.net"), "text": text, "ref": 1}))
        .await?;
    let sent = baileys
        .until(|e| e["event"] == "sent" || e["event"] == "error")
        .await?;
    assert_eq!(sent["event"], "sent", "{sent}");
    let bid = sent["id"].as_str().context("id")?.to_owned();
    let got = engine.next_message().await?;
    assert_eq!(got.text(), Some(text));
    assert_eq!(got.info.id, bid);
    assert_eq!(got.info.chat, baileys_user);
    assert_eq!(got.info.push_name.as_deref(), Some("baileys"));
    baileys
        .until(|e| {
            e["event"] == "receipt" && e["id"] == bid.as_str() && e["statusName"] == "DELIVERY_ACK"
        })
        .await?;

    // A reply from the engine on the now two-way session, and one more from Baileys.
    let id2 = engine
        .client
        .send_text(&baileys_user, "second from wa-rs")
        .await?;
    let got = baileys
        .until(|e| e["event"] == "message" && e["id"] == id2.0.as_str())
        .await?;
    assert_eq!(got["text"], "second from wa-rs");
    baileys
        .command(json!({"cmd": "send_text", "to": format!("{ENGINE}@s.whatsapp.net"), "text": "second from Baileys", "ref": 2}))
        .await?;
    assert_eq!(
        engine.next_message().await?.text(),
        Some("second from Baileys")
    );

    baileys.command(json!({"cmd": "quit"})).await?;
    engine.shutdown().await;
    sb.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn engine_and_baileys_read_each_others_group_messages() -> anyhow::Result<()> {
    let sb = sandbox(42).await?;
    let mut engine = pair(&sb, ENGINE).await?;
    let baileys_phone = sb.create_account(BAILEYS)?;
    let auth = tempfile::tempdir()?;
    let mut baileys = Baileys::spawn(&sb, auth.path())?;
    baileys.pair(&baileys_phone).await?;
    let baileys_user: wa_engine::Jid = format!("{BAILEYS}@s.whatsapp.net").parse()?;

    // Our group, our sender key: Baileys (libsignal-node) processes our SKDM and skmsg.
    let group = engine
        .client
        .create_group("Interop", &[baileys_user])
        .await?;
    let id = engine
        .client
        .send_text(&group.jid, "hello group from wa-rs")
        .await?;
    let got = baileys
        .until(|e| e["event"] == "message" && e["id"] == id.0.as_str())
        .await?;
    assert_eq!(got["text"], "hello group from wa-rs", "{got}");
    assert_eq!(got["from"], group.jid.to_string());

    // Baileys' sender key, processed by us.
    baileys
        .command(json!({"cmd": "send_text", "to": group.jid.to_string(), "text": "hello group from Baileys", "ref": 1}))
        .await?;
    let got = engine.next_message().await?;
    assert_eq!(got.text(), Some("hello group from Baileys"));
    assert_eq!(got.info.chat, group.jid);
    assert_eq!(got.info.sender.user(), BAILEYS);

    baileys.command(json!({"cmd": "quit"})).await?;
    engine.shutdown().await;
    sb.shutdown().await;
    Ok(())
}
