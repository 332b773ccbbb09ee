//! A peer client running as a child process that speaks JSON lines: one event object per
//! stdout line, one command object per stdin line. The Baileys (Node) and whatsmeow (Go)
//! harnesses both use it.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// How long one expected harness event may take.
pub const STEP: Duration = Duration::from_secs(45);

/// A running JSON-lines peer.
pub struct JsonLinesPeer {
    pub name: &'static str,
    pub child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// Events read while waiting for another one (events race: a receipt may come before
    /// the `sent` line of the same message).
    pub backlog: Vec<Value>,
}

impl JsonLinesPeer {
    /// Spawns `command` with piped stdin/stdout (stderr inherited, killed on drop).
    pub fn spawn(name: &'static str, mut command: Command, what: &str) -> anyhow::Result<Self> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {what}"))?;
        let stdout = child.stdout.take().context("stdout")?;
        Ok(Self {
            name,
            child,
            lines: BufReader::new(stdout).lines(),
            backlog: Vec::new(),
        })
    }

    /// The next event line, parsed; fails after [`STEP`] or when stdout ends.
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

    /// Writes one command line.
    pub async fn command(&mut self, cmd: Value) -> anyhow::Result<()> {
        let stdin = self.child.stdin.as_mut().context("stdin")?;
        stdin.write_all(format!("{cmd}\n").as_bytes()).await?;
        stdin.flush().await?;
        Ok(())
    }
}
