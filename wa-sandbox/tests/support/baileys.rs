//! The Baileys 6.7.24 harness (`wa-sandbox/interop/client.mjs`, JSON lines) driven from Rust
//! tests: spawn, read events (with a backlog, since events race), send commands, pair by QR.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use wa_sandbox::{Phone, SandboxHandle};

use super::interop::{ensure_interop_installed, interop_dir};

/// How long one expected harness event may take.
pub const STEP: Duration = Duration::from_secs(45);

pub struct Harness {
    pub name: &'static str,
    pub child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// Events read while waiting for another one (events race: a receipt may come before
    /// the `sent` line of the same message).
    pub backlog: Vec<Value>,
}

impl Harness {
    pub fn spawn(
        sandbox: &SandboxHandle,
        auth_dir: &Path,
        name: &'static str,
    ) -> anyhow::Result<Self> {
        Self::spawn_with(sandbox, auth_dir, name, &[])
    }

    pub fn spawn_with(
        sandbox: &SandboxHandle,
        auth_dir: &Path,
        name: &'static str,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        Self::spawn_with_env(sandbox, auth_dir, name, extra, &[])
    }

    /// As [`Self::spawn_with`], with extra environment variables for node (e.g.
    /// `NODE_EXTRA_CA_CERTS`).
    pub fn spawn_with_env(
        sandbox: &SandboxHandle,
        auth_dir: &Path,
        name: &'static str,
        extra: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> anyhow::Result<Self> {
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
            .arg("150000")
            .arg("--push-name")
            .arg(name)
            .arg("--no-init-queries")
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("spawning node (is Node >= 20 installed?)")?;
        let stdout = child.stdout.take().context("stdout")?;
        Ok(Self {
            name,
            child,
            lines: BufReader::new(stdout).lines(),
            backlog: Vec::new(),
        })
    }

    pub async fn event(&mut self) -> anyhow::Result<Value> {
        let line = tokio::time::timeout(STEP, self.lines.next_line())
            .await
            .with_context(|| format!("no event from {} in time", self.name))??
            .with_context(|| format!("{} stdout ended", self.name))?;
        eprintln!("{}: {line}", self.name);
        serde_json::from_str(&line).with_context(|| format!("not JSON: {line}"))
    }

    /// The first event (backlog first) that matches; others are kept for later calls.
    pub async fn until(&mut self, mut pred: impl FnMut(&Value) -> bool) -> anyhow::Result<Value> {
        if let Some(i) = self.backlog.iter().position(&mut pred) {
            return Ok(self.backlog.remove(i));
        }
        loop {
            let event = self.event().await?;
            if pred(&event) {
                return Ok(event);
            }
            self.backlog.push(event.clone());
            if event["event"] == "exit" || event["event"] == "timeout" {
                bail!("{} ended early: {event}", self.name);
            }
        }
    }

    pub async fn command(&mut self, cmd: Value) -> anyhow::Result<()> {
        let stdin = self.child.stdin.as_mut().context("stdin")?;
        stdin.write_all(format!("{cmd}\n").as_bytes()).await?;
        stdin.flush().await?;
        Ok(())
    }

    /// Pairs through the phone by QR and waits for `open`; returns the device JID.
    pub async fn pair(&mut self, phone: &Phone) -> anyhow::Result<String> {
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
