//! Runnable examples that embed wa-engine; see `examples/README.md`.
//!
//! This library holds the little the examples share: the in-process sandbox they use by
//! default ([`OfflineServer`]), where they keep their files ([`DataDir`]), and terminal QR
//! rendering ([`render_qr`]).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use wa_engine::noise::TrustRoot;
use wa_sandbox::{Phone, Sandbox, SandboxConfig, SandboxHandle, SandboxState};

/// Where an example keeps its files under `--data-dir`.
///
/// The sandbox and a real server get separate stores, so a sandbox run never touches (or
/// gets wiped by a 401 against) a store that is paired with a real phone.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Files under `root` (created when missing).
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn new(root: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)
            .with_context(|| format!("creating data dir {}", root.display()))?;
        Ok(Self { root })
    }

    /// The sled store of the device paired with a real server (`<data-dir>/store`).
    pub fn real_store(&self) -> PathBuf {
        self.root.join("store")
    }

    /// The sled store of the device paired with the sandbox (`<data-dir>/sandbox/store`).
    pub fn sandbox_store(&self) -> PathBuf {
        self.root.join("sandbox").join("store")
    }

    /// The saved sandbox server state (`<data-dir>/sandbox/server.json`).
    pub fn sandbox_state(&self) -> PathBuf {
        self.root.join("sandbox").join("server.json")
    }
}

/// A wa-sandbox running inside the example's process, standing in for WhatsApp's servers,
/// with one account whose simulated phone scans QR codes and types pairing codes.
///
/// Its accounts and linked devices are saved to `<data-dir>/sandbox/server.json`
/// ([`save`](Self::save)) and restored at the next start, so a device paired in one run
/// logs in again in the next without a new QR, as it would against the real servers.
#[derive(Debug)]
pub struct OfflineServer {
    sandbox: SandboxHandle,
    phone: Phone,
    state_file: PathBuf,
}

impl OfflineServer {
    /// Starts the sandbox on 127.0.0.1 (any free port), restores its saved state if there is
    /// one, and makes sure the account `phone_number` (digits only) exists.
    ///
    /// # Errors
    /// When the sandbox cannot bind, the state file is unreadable, or the number is invalid.
    pub async fn start(data: &DataDir, phone_number: &str) -> anyhow::Result<Self> {
        let sandbox = Sandbox::start(SandboxConfig::default())
            .await
            .context("starting the sandbox")?;
        let state_file = data.sandbox_state();
        if state_file.exists() {
            let json = std::fs::read(&state_file)
                .with_context(|| format!("reading {}", state_file.display()))?;
            let state: SandboxState = serde_json::from_slice(&json)
                .with_context(|| format!("parsing {}", state_file.display()))?;
            sandbox
                .router()
                .import_state(&state)
                .with_context(|| format!("restoring {}", state_file.display()))?;
        }
        let phone = match sandbox.phone(phone_number) {
            Ok(phone) => phone,
            Err(_) => sandbox
                .create_account(phone_number)
                .context("creating the sandbox account")?,
        };
        Ok(Self {
            sandbox,
            phone,
            state_file,
        })
    }

    /// The WebSocket URL to give `ClientBuilder::url`.
    pub fn ws_url(&self) -> &str {
        self.sandbox.ws_url()
    }

    /// The root the client must trust instead of WhatsApp's production root.
    pub fn trust_root(&self) -> TrustRoot {
        self.sandbox.trust_root()
    }

    /// The account's simulated primary phone.
    pub fn phone(&self) -> &Phone {
        &self.phone
    }

    /// Writes the accounts and linked devices to `<data-dir>/sandbox/server.json`.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save(&self) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(&self.sandbox.router().export_state())?;
        write_file(&self.state_file, &json)
    }

    /// Stops the sandbox.
    pub async fn shutdown(self) {
        self.sandbox.shutdown().await;
    }
}

/// Writes through a temporary file and a rename, so a crash leaves the old or the new file.
fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// The QR string as a QR code drawn with Unicode half blocks (two modules per character
/// row), with a quiet zone, ready to print in a terminal.
///
/// # Errors
/// When the string is too long for a QR code.
pub fn render_qr(code: &str) -> anyhow::Result<String> {
    let qr = qrcode::QrCode::new(code.as_bytes()).context("encoding the QR code")?;
    Ok(qr
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// Logs go to stderr, `warn` and up unless `RUST_LOG` says otherwise.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
}
