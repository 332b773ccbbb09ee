//! The Baileys 6.7.24 harness (`wa-sandbox/interop/client.mjs`, JSON lines) driven from Rust
//! tests: spawn, read events (with a backlog, since events race), send commands, pair by QR.

use std::path::Path;

use anyhow::Context as _;
use tokio::process::Command;
use wa_sandbox::{Phone, SandboxHandle};

use super::interop::{ensure_interop_installed, interop_dir};
pub use super::peer::JsonLinesPeer;

/// A running Baileys harness: a [`JsonLinesPeer`] (events, commands) plus Baileys' pairing.
pub struct Harness {
    peer: JsonLinesPeer,
}

impl std::ops::Deref for Harness {
    type Target = JsonLinesPeer;
    fn deref(&self) -> &JsonLinesPeer {
        &self.peer
    }
}

impl std::ops::DerefMut for Harness {
    fn deref_mut(&mut self) -> &mut JsonLinesPeer {
        &mut self.peer
    }
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
        let mut command = Command::new("node");
        command
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
            .envs(env.iter().copied());
        Ok(Self {
            peer: JsonLinesPeer::spawn(name, command, "node (is Node >= 20 installed?)")?,
        })
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
