//! The whatsmeow harness (`wa-sandbox/interop/whatsmeow`, a Go program, JSON lines) driven
//! from Rust tests: build it once (under a file lock, so parallel test binaries never build
//! at the same time), spawn it against a sandbox, read events, send commands, pair by QR.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::Context as _;
use base64::Engine as _;
use tokio::process::Command;
use wa_sandbox::{Phone, SandboxHandle};

pub use super::peer::JsonLinesPeer;

/// `wa-sandbox/interop/whatsmeow` (the Go module).
pub fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/whatsmeow")
}

/// `<cargo target dir>/interop`: where the binary and the build lock live.
fn out_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp`.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map_or_else(
            || PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
            Path::to_path_buf,
        )
        .join("interop")
}

/// Builds `target/interop/whatsmeow-harness` with `go build` (modules from the Go module
/// proxy, checked against the committed `go.sum`; `-mod=readonly`, so the pins cannot drift),
/// once per process and under an exclusive file lock across processes: a second test binary
/// waits for the first build, then finds Go's build cache warm. Panics with a clear message
/// when Go is missing or the build fails: these tests never skip.
pub fn ensure_built() -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        let version = std::process::Command::new("go")
            .arg("version")
            .output()
            .map_err(|e| {
                format!(
                    "`go` is not runnable ({e}): the whatsmeow interop tests need Go >= 1.24 on \
                     PATH (CI runs these tests)"
                )
            })?;
        if !version.status.success() {
            return Err("`go version` failed".into());
        }
        let out = out_dir();
        std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
        let lock_path = out.join(".whatsmeow-build.lock");
        let lock = std::fs::File::create(&lock_path)
            .map_err(|e| format!("creating {}: {e}", lock_path.display()))?;
        lock.lock()
            .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
        let bin = out.join("whatsmeow-harness");
        let started = Instant::now();
        let build = std::process::Command::new("go")
            .args([
                "build",
                "-mod=readonly",
                "-trimpath",
                "-buildvcs=false",
                "-o",
            ])
            .arg(&bin)
            .arg(".")
            .current_dir(source_dir())
            // Never fetch a newer toolchain; the installed Go builds this module.
            .env("GOTOOLCHAIN", "local")
            .env("CGO_ENABLED", "0")
            .output()
            .map_err(|e| format!("spawning go build: {e}"))?;
        if !build.status.success() {
            return Err(format!(
                "`go build` in {} failed ({}):\n{}",
                source_dir().display(),
                build.status,
                String::from_utf8_lossy(&build.stderr)
            ));
        }
        eprintln!(
            "whatsmeow harness built in {:.1} s: {}",
            started.elapsed().as_secs_f64(),
            bin.display()
        );
        Ok(bin)
    });
    match result {
        Ok(bin) => bin.clone(),
        Err(e) => panic!("whatsmeow interop harness unavailable: {e}"),
    }
}

/// A running whatsmeow harness.
pub struct Whatsmeow {
    peer: JsonLinesPeer,
}

impl std::ops::Deref for Whatsmeow {
    type Target = JsonLinesPeer;
    fn deref(&self) -> &JsonLinesPeer {
        &self.peer
    }
}

impl std::ops::DerefMut for Whatsmeow {
    fn deref_mut(&mut self) -> &mut JsonLinesPeer {
        &mut self.peer
    }
}

impl Whatsmeow {
    /// Spawns the harness against `sandbox`, its SQLite store in `data_dir`.
    pub fn spawn(
        sandbox: &SandboxHandle,
        data_dir: &Path,
        name: &'static str,
    ) -> anyhow::Result<Self> {
        Self::spawn_raw(sandbox.ws_url(), &sandbox.trust_root_key(), data_dir, name)
    }

    /// Spawns the harness with an explicit URL and certificate root.
    pub fn spawn_raw(
        ws_url: &str,
        root: &[u8; 32],
        data_dir: &Path,
        name: &'static str,
    ) -> anyhow::Result<Self> {
        let bin = ensure_built();
        let root = base64::engine::general_purpose::STANDARD.encode(root);
        let log_level = std::env::var("WM_LOG_LEVEL").unwrap_or_else(|_| "warn".into());
        let mut command = Command::new(bin);
        command
            .arg("--ws-url")
            .arg(ws_url)
            .arg("--cert-root")
            .arg(root)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--push-name")
            .arg(name)
            .arg("--log-level")
            .arg(log_level);
        Ok(Self {
            peer: JsonLinesPeer::spawn(name, command, "the whatsmeow harness")?,
        })
    }

    /// Pairs through the phone by QR, sees whatsmeow survive the 515 and log in; returns
    /// the device JID from the `connected` event.
    pub async fn pair(&mut self, phone: &Phone) -> anyhow::Result<String> {
        let qr = self.until(|e| e["event"] == "qr").await?;
        phone.scan(qr["qr"].as_str().context("qr")?)?;
        self.until(|e| e["event"] == "pair_success").await?;
        let connected = self.until(|e| e["event"] == "connected").await?;
        connected["me"]["id"]
            .as_str()
            .map(str::to_owned)
            .context("me.id")
    }
}
