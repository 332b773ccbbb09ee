//! wa-sandbox: a simulated WhatsApp server (the server side of the multi-device protocol)
//! with simulated primary phones, listening on loopback, so the engine and real clients
//! (Baileys) can be tested offline.
//!
//! What it does:
//! - WebSocket at `/ws/chat`: connection header, Noise XX responder with the sandbox's own
//!   root -> intermediate -> leaf certificate chain (shared/protocol/01 §4.5, §5.4), then
//!   binary-node stanzas.
//! - Registration: `pair-device` with 6 QR refs that expire at the real timings (shortenable),
//!   QR scans and phone-number code pairing by a simulated primary phone, pair-success built
//!   as the phone would, pair-device-sign verification, then `<stream:error code="515"/>`
//!   (shared/protocol/03 §4, §5, §6, §12).
//! - Login: `<success>` or `<failure reason="401"/>`, and the upkeep IQs clients send after it
//!   (prekey count / upload, passive active, `w:p` ping, dirty clean) (03 §7, §10).
//! - Device removal and fault injection (stream errors, dropped sockets, slow frames,
//!   refused connections).
//! - An HTTP JSON control API (see [`control`](crate::control_app) routes) and a binary
//!   `wa-sandbox` printing its URLs as one JSON line.
//!
//! - Messaging (shared/protocol/04 §4, 05 §14, 06 §1, §4): a prekey store per device (the
//!   simulated phones have real Signal keys too), bundle fetches that consume one-time
//!   prekeys, digest, usync device / contact / LID queries, routing of `<message>` stanzas
//!   to every addressed device (own other devices included) with server acks, receipts
//!   routed back to the sender's devices, a per-device offline queue replayed in order on
//!   the next login, groups (`w:g2` IQs, `w:gp2` notifications, sender-key fan-out), and
//!   `devices` notifications when companions are linked or unlinked.
//!
//! What it does not do (yet): media, app state, presence subscriptions, chat states.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use wa_sandbox::{Sandbox, SandboxConfig};
//! let sandbox = Sandbox::start(SandboxConfig::default().with_seed(7)).await?;
//! let phone = sandbox.create_account("15551234567")?;
//! // ... connect a client to sandbox.ws_url() trusting sandbox.trust_root(),
//! // then phone.scan(&qr_string_from_the_client)?;
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```

mod control;
mod error;
mod groups;
mod identity;
mod keys;
mod payload;
mod persist;
mod phone;
mod router;
mod routing;
mod script;
mod server;
mod session;
mod stanzas;
mod usync;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use control::{ControlState, app as control_app};
pub use error::{PhoneError, SandboxError};
pub use identity::ServerKeys;
pub use persist::{SandboxState, StateError};
pub use phone::{PendingLink, Phone};
pub use router::{AccountInfo, Clock, ConnId, DeviceInfo, QrTiming, Router, RouterConfig};
pub use routing::phash;
pub use script::{Fault, Faults, StreamErrorKind, Target};
pub use server::{WS_PATH, run};
pub use session::{CloseKind, ServerSession};

/// Settings for [`Sandbox::start`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SandboxConfig {
    /// Address to bind both listeners on (default 127.0.0.1).
    pub bind: IpAddr,
    /// WebSocket port (0 = any free port).
    pub ws_port: u16,
    /// Control API port (0 = any free port).
    pub control_port: u16,
    /// The shared state's settings (seed, QR timing, clock).
    pub router: RouterConfig,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ws_port: 0,
            control_port: 0,
            router: RouterConfig::default(),
        }
    }
}

impl SandboxConfig {
    /// Fixes the seed of every random choice (server keys, refs, ids, phone keys).
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.router.seed = Some(seed);
        self
    }

    /// Sets the QR ref timing (real: 6 refs, 60 s then 20 s each).
    #[must_use]
    pub fn with_qr_timing(mut self, qr: QrTiming) -> Self {
        self.router.qr = qr;
        self
    }

    /// Shortens the QR ref windows: the first ref lives `first`, each later one `each`.
    #[must_use]
    pub fn with_qr_windows(mut self, first: Duration, each: Duration) -> Self {
        self.router.qr.first = first;
        self.router.qr.each = each;
        self
    }

    /// Sets the pause between the handshake and the first stanza (default 100 ms; see
    /// [`RouterConfig::first_stanza_delay`]).
    #[must_use]
    pub fn with_first_stanza_delay(mut self, delay: Duration) -> Self {
        self.router.first_stanza_delay = delay;
        self
    }

    /// Sets the unix clock used in stanzas.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.router.clock = clock;
        self
    }

    /// Sets the bind address and ports (0 = any free port).
    #[must_use]
    pub fn with_bind(mut self, bind: IpAddr, ws_port: u16, control_port: u16) -> Self {
        self.bind = bind;
        self.ws_port = ws_port;
        self.control_port = control_port;
        self
    }
}

/// Entry point: starts a sandbox on loopback.
#[derive(Debug)]
pub struct Sandbox;

impl Sandbox {
    /// Binds the WebSocket and control listeners and serves them on the current tokio
    /// runtime until [`SandboxHandle::shutdown`] (or the handle is dropped).
    ///
    /// # Errors
    /// [`SandboxError::Bind`] if a port is taken, [`SandboxError::LocalAddr`].
    pub async fn start(config: SandboxConfig) -> Result<SandboxHandle, SandboxError> {
        let router = Router::new(config.router.clone());
        let ws_addr = SocketAddr::new(config.bind, config.ws_port);
        let ws_listener =
            TcpListener::bind(ws_addr)
                .await
                .map_err(|source| SandboxError::Bind {
                    what: "websocket",
                    addr: ws_addr,
                    source,
                })?;
        let control_addr = SocketAddr::new(config.bind, config.control_port);
        let control_listener =
            TcpListener::bind(control_addr)
                .await
                .map_err(|source| SandboxError::Bind {
                    what: "control",
                    addr: control_addr,
                    source,
                })?;
        let ws_addr = ws_listener.local_addr().map_err(SandboxError::LocalAddr)?;
        let control_addr = control_listener
            .local_addr()
            .map_err(SandboxError::LocalAddr)?;
        let ws_url = format!("ws://{ws_addr}{WS_PATH}");
        let control_url = format!("http://{control_addr}");

        let (ws_stop_tx, ws_stop_rx) = oneshot::channel::<()>();
        let (ctl_stop_tx, ctl_stop_rx) = oneshot::channel::<()>();
        let ws_task = tokio::spawn(run(ws_listener, router.clone(), async move {
            let _ = ws_stop_rx.await;
        }));
        let app = control_app(ControlState {
            router: router.clone(),
            ws_url: ws_url.clone(),
            control_url: control_url.clone(),
        });
        let control_task = tokio::spawn(async move {
            let served = axum::serve(control_listener, app)
                .with_graceful_shutdown(async move {
                    let _ = ctl_stop_rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "control API stopped");
            }
        });
        tracing::info!(%ws_url, %control_url, "sandbox started");
        Ok(SandboxHandle {
            router,
            ws_url,
            control_url,
            stop: Some((ws_stop_tx, ctl_stop_tx)),
            tasks: vec![ws_task, control_task],
        })
    }
}

/// A running sandbox. Dropping it stops the servers (without waiting); call
/// [`shutdown`](Self::shutdown) to wait until every connection closed.
#[derive(Debug)]
pub struct SandboxHandle {
    router: Router,
    ws_url: String,
    control_url: String,
    stop: Option<(oneshot::Sender<()>, oneshot::Sender<()>)>,
    tasks: Vec<JoinHandle<()>>,
}

impl SandboxHandle {
    /// The WebSocket URL, `ws://127.0.0.1:<port>/ws/chat`.
    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }

    /// The control API base URL, `http://127.0.0.1:<port>`.
    pub fn control_url(&self) -> &str {
        &self.control_url
    }

    /// The trust root clients must use instead of WhatsApp's production root: the
    /// sandbox's root key with serial 0.
    pub fn trust_root(&self) -> wa_engine::noise::TrustRoot {
        self.router.trust_root()
    }

    /// The sandbox's root public key, 32 bytes.
    pub fn trust_root_key(&self) -> [u8; 32] {
        self.router.trust_root_key()
    }

    /// The shared state (accounts, connections), for direct inspection.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The simulated phone of an existing account.
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`].
    pub fn phone(&self, number: &str) -> Result<Phone, PhoneError> {
        self.router.phone(number)
    }

    /// Creates an account (with its phone) for a phone number.
    ///
    /// # Errors
    /// [`PhoneError::InvalidPhoneNumber`], [`PhoneError::AccountExists`].
    pub fn create_account(&self, number: &str) -> Result<Phone, PhoneError> {
        self.router.create_account(number)
    }

    /// Fault injection.
    pub fn faults(&self) -> Faults {
        Faults::new(self.router.clone())
    }

    /// Stops accepting, closes every live connection and waits for the servers to end.
    pub async fn shutdown(mut self) {
        self.signal_stop();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }

    fn signal_stop(&mut self) {
        if let Some((ws, ctl)) = self.stop.take() {
            let _ = ws.send(());
            let _ = ctl.send(());
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        self.signal_stop();
    }
}
