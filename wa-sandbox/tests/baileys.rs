//! Interop with a real client nobody here wrote: Baileys 6.7.24 from npm, driven through the
//! harness in `wa-sandbox/interop/` (`client.mjs`, JSON lines), against an in-process
//! sandbox. Checks QR pairing -> 515 -> login -> open, prekey upload, and device removal
//! -> 401 loggedOut (interop/BAILEYS_NOTES.md §4-§7).
//!
//! These tests run by default (CI included): they need Node >= 20 and npm on `PATH` and fail
//! loudly without them, never skip. The first test to start runs `npm ci` in
//! `wa-sandbox/interop` when `node_modules` is missing or older than `package-lock.json` /
//! `package.json` (a file lock plus a `OnceLock` make sure it runs once, even across
//! processes). The harness's own Node tests (`npm test`) run from here too.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use wa_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

#[path = "support/interop.rs"]
mod interop;
use interop::{ensure_interop_installed, interop_dir};

const PHONE: &str = "15551230000";
const STEP: Duration = Duration::from_secs(30);

struct Harness {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Harness {
    fn spawn(sandbox: &SandboxHandle, auth_dir: &Path) -> anyhow::Result<Self> {
        ensure_interop_installed();
        let dir = interop_dir();
        let mut child = Command::new("node")
            .current_dir(&dir)
            .arg("client.mjs")
            .arg("--ws-url")
            .arg(sandbox.ws_url())
            .arg("--auth-dir")
            .arg(auth_dir)
            .arg("--timeout-ms")
            .arg("90000")
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
        })
    }

    /// The next event line.
    async fn event(&mut self) -> anyhow::Result<Value> {
        let line = tokio::time::timeout(STEP, self.lines.next_line())
            .await
            .context("no event from the harness in time")??
            .context("harness stdout ended")?;
        eprintln!("harness: {line}");
        serde_json::from_str(&line).with_context(|| format!("not JSON: {line}"))
    }

    /// Reads events until `pred` matches; returns all events read.
    async fn until(&mut self, mut pred: impl FnMut(&Value) -> bool) -> anyhow::Result<Vec<Value>> {
        let mut seen = Vec::new();
        loop {
            let event = self.event().await?;
            let done = pred(&event);
            seen.push(event);
            if done {
                return Ok(seen);
            }
            if seen
                .last()
                .is_some_and(|e| e["event"] == "exit" || e["event"] == "timeout")
            {
                bail!("harness ended early: {seen:#?}");
            }
        }
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

fn is_open(e: &Value) -> bool {
    e["event"] == "connection" && e["connection"] == "open"
}

#[tokio::test]
async fn baileys_pairs_by_qr_restarts_on_515_opens_and_is_logged_out_on_removal()
-> anyhow::Result<()> {
    init_tracing();
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(5)).await?;
    let phone = sandbox.create_account(PHONE)?;
    let auth = tempfile::tempdir()?;
    let mut harness = Harness::spawn(&sandbox, auth.path())?;

    let qr = harness.until(|e| e["event"] == "qr").await?;
    let qr = qr
        .last()
        .and_then(|e| e["qr"].as_str())
        .context("qr string")?
        .to_owned();
    assert_eq!(
        qr.split(',').count(),
        4,
        "Baileys 6.7.24 shows the 4-field QR"
    );
    let link = phone.scan(&qr)?;

    let seen = harness.until(is_open).await?;
    assert!(seen.iter().any(|e| e["event"] == "new_login"), "{seen:#?}");
    assert!(
        seen.iter().any(|e| e["event"] == "connection"
            && e["connection"] == "close"
            && e["statusCode"] == 515
            && e["willReconnect"] == true),
        "{seen:#?}"
    );
    let open = seen.last().context("open")?;
    assert_eq!(open["attempt"], 2);
    let account = sandbox.router().account(PHONE)?;
    assert_eq!(
        open["me"]["id"],
        format!("{PHONE}:{}@s.whatsapp.net", link.device)
    );
    assert_eq!(
        open["me"]["lid"],
        format!("{}:{}@lid", account.lid, link.device)
    );
    let device = &account.devices[0];
    assert_eq!(device.id, link.device);
    assert!(device.connected);
    assert_eq!(device.os, "Ubuntu");
    assert_eq!(
        device.prekeys, 30,
        "Baileys 6.7.24 uploads 30 prekeys when the server has none"
    );

    phone.remove_device(link.device)?;
    let seen = harness.until(|e| e["event"] == "exit").await?;
    assert!(
        seen.iter().any(|e| e["event"] == "connection"
            && e["connection"] == "close"
            && e["statusCode"] == 401
            && e["reason"] == "loggedOut"),
        "{seen:#?}"
    );
    let status = tokio::time::timeout(STEP, harness.child.wait()).await??;
    assert_eq!(status.code(), Some(4), "closed for good");
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn baileys_logs_in_again_with_its_saved_auth_state() -> anyhow::Result<()> {
    init_tracing();
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(6)).await?;
    let phone = sandbox.create_account(PHONE)?;
    let auth = tempfile::tempdir()?;
    {
        let mut harness = Harness::spawn(&sandbox, auth.path())?;
        let qr = harness.until(|e| e["event"] == "qr").await?;
        phone.scan(qr.last().and_then(|e| e["qr"].as_str()).context("qr")?)?;
        let seen = harness.until(is_open).await?;
        // Quit only once the creds carrying the LID from <success> are saved (the harness
        // emits `creds` after saveCreds): exiting mid-write would lose the auth state.
        if !seen
            .iter()
            .any(|e| e["event"] == "creds" && e["me"]["lid"].is_string())
        {
            harness
                .until(|e| e["event"] == "creds" && e["me"]["lid"].is_string())
                .await?;
        }
        if let Some(stdin) = harness.child.stdin.as_mut() {
            use tokio::io::AsyncWriteExt as _;
            stdin.write_all(b"{\"cmd\":\"quit\"}\n").await?;
        }
        let status = tokio::time::timeout(STEP, harness.child.wait()).await??;
        assert_eq!(status.code(), Some(0));
    }
    // Same auth dir: straight to open, no QR.
    let mut harness = Harness::spawn(&sandbox, auth.path())?;
    let seen = harness.until(|e| is_open(e) || e["event"] == "qr").await?;
    assert!(!seen.iter().any(|e| e["event"] == "qr"), "{seen:#?}");
    assert_eq!(seen.last().context("open")?["attempt"], 1);
    assert_eq!(phone.devices().len(), 1);
    sandbox.shutdown().await;
    Ok(())
}

/// The harness's own Node tests (argument parsing, exit codes, media decryption, a full
/// pairing against its fake Noise server, lockfile pins): `npm test` in `wa-sandbox/interop`.
#[tokio::test]
async fn harness_node_tests_pass_under_npm_test() -> anyhow::Result<()> {
    ensure_interop_installed();
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        Command::new("npm")
            .arg("test")
            .current_dir(interop_dir())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("`npm test` did not finish within 120 s")?
    .context("spawning npm test")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "`npm test` failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("# fail 0"), "{stdout}");
    Ok(())
}
