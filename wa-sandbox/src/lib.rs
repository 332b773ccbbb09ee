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
//!   after the real server's 0.3-0.6 s pause, leaving the client a moment to close first
//!   ([`RouterConfig::restart_delay`], [`RouterConfig::restart_close_grace`])
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
//! - A media host ([`MediaHost`]): `media_conn` IQs answered with its loopback address and
//!   an auth token, uploads checked and stored on disk (bounded), downloads by direct path
//!   over plain HTTP (shared/protocol/06 §2.7), and optionally HTTPS on the same port for
//!   clients such as Baileys ([`SandboxConfig::with_media_tls`]).
//!
//! - A deterministic test kit (`sim`, behind the feature `sim`, for tests and benches): engine
//!   `Connection`s against [`ServerSession`]s in memory, on simulated time, with seeded
//!   latency, loss and reordering and a transcript of every frame.
//!
//! - App-state sync and history sync (shared/protocol/08 §11): the `w:sync:app:state` server
//!   (patches stored per account and collection, 409 on a stale base, `server_sync` to the
//!   other devices), and phones that, when [`RouterConfig::phone_sync`] is on, send their
//!   companions Signal peer messages: the app-state sync key share, initial patches (push
//!   name, contacts, NCT salt) and an INITIAL_BOOTSTRAP history sync on the media host.
//!
//! - LID addressing and privacy tokens (shared/protocol/07 §5): every account has a LID
//!   (pair-success, `<success>`, usync `<lid/>` and `addressing_mode="lid"` contacts), a
//!   device is reached under its PN or its LID, deliveries carry the other namespace
//!   (`sender_pn`/`sender_lid`, `peer_recipient_*`, `participant_*`), the privacy IQ issues
//!   tokens and pushes them, and a switchable admission rule (P1/P2/P3, off by default)
//!   answers 1:1 messages without a valid `<tctoken>`/`<cstoken>` with `error="463"`, with
//!   timelock and capping `mex` pushes (see [`Router::set_privacy`]), and an optional
//!   minimum app version answered with `<failure reason="405"/>` ([`GateConfig`]).
//!
//! - Presence, chat states and calls (shared/protocol/06 §5): presence subscriptions and
//!   updates, chat states between accounts and in groups, `<call>` stanzas routed between
//!   accounts, calls placed by a phone and a call log (control API `/calls`).
//!
//! # Layout
//!
//! Each room owns its state and the logic over it. A module imports only modules listed
//! before it here (left to right, top to bottom), so there are no import cycles
//! (`tests/layout.rs` checks this):
//!
//! ```text
//! leaves    media_tls, error, identity, script (fault data), config (Clock, QrTiming,
//!           RouterConfig), stanzas (builders, readers, stanza ids)
//! accounts  Directory: accounts and their linked devices; DevKey, Registration, PairPlan
//! rooms     connections (live connections, Push), keys (KeyStore), groups (Groups,
//!           GroupOps), profile (status texts and pictures of accounts and groups),
//!           usync (device lists, phash), media (MediaHost, its own lock),
//!           payload (ClientPayload parsing), pairing (QR refs, code pairings),
//!           queue (a device's offline queue), peer_iq (abt props),
//!           appsync (syncd patches per account and collection: versions, records),
//!           privacy (per-account LID and token admission settings, issued tokens, contacts,
//!           the 1:1 admission rule and the token / mex notification shapes),
//!           presence (subscriptions, last presence, presence and chatstate pushes),
//!           notices (typed notifications on demand and their stanzas, the edge book)
//! routing   Routing (queues, phones' inboxes, delivery log, contacts) and Courier, one
//!           routing step over the connections, the directory and the groups;
//!           calls (call stanzas between accounts over the courier, the call log)
//! primary   the phones' sync side: Signal peer messages, syncd keys and patches,
//!           history sync (PhoneCtx over the courier, keys, appsync, media)
//! state     State (every room under one lock), the Router handle that composes them and
//!           its Durability hook
//! handles   phone (Phone; Router's account and group API), persist, gate (token
//!           issuance, timelock pushes, MEX pulls, Router's privacy API), notify (Router's
//!           notification push and edge routing), profile_iq (status and picture IQs and
//!           their notifications), session
//! drivers   server (tokio WebSocket loop), control (HTTP control API), sim (the
//!           deterministic test kit, feature `sim`), this file
//! ```
//!
//! The rooms share one mutex (in [`Router`]) rather than one each: a message touches the
//! directory, the groups, the queues and the connections in one atomic step. Operations
//! that span rooms get a narrow context (`Courier`, `GroupOps`, `Usync`) holding only the
//! rooms they read or write.
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

mod accounts;
mod appsync;
mod calls;
mod config;
mod connections;
mod control;
mod error;
mod gate;
mod groups;
mod identity;
mod keys;
mod media;
mod media_tls;
mod notices;
mod notify;
mod pairing;
mod payload;
mod peer_iq;
mod persist;
mod phone;
mod presence;
mod primary;
mod privacy;
mod profile;
mod profile_iq;
mod queue;
mod routing;
mod script;
mod server;
mod session;
#[cfg(feature = "sim")]
pub mod sim;
mod stanzas;
mod state;
mod usync;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use accounts::{AccountInfo, DeviceInfo};
pub use calls::CallRecord;
pub use config::{Clock, QrTiming, RouterConfig};
pub use connections::ConnId;
pub use control::{ControlState, app as control_app};
pub use error::{PhoneError, SandboxError};
pub use identity::ServerKeys;
pub use media::{MediaConfig, MediaHost};
pub use media_tls::MediaTlsError;
pub use notices::{DeviceAction, Notice, ParticipantAction};
pub use notify::{EdgeRoutingSeen, EdgeRoutingView};
pub use persist::{QueuesState, SandboxState, StateError};
pub use phone::{PendingLink, Phone};
pub use primary::{
    AppStateAction, AppStatePatchError, AppStateRecord, AppStateView, HistoryReceipt, SyncSwitches,
};
pub use privacy::{Capping, GateConfig, IssuedToken, PrivacySettings, Refusal, TokenPolicy};
pub use script::{Fault, StreamErrorKind, Target};
pub use server::{WS_PATH, run};
pub use session::{CloseKind, ServerSession};
pub use state::{Durability, Faults, Router};
pub use usync::phash;

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
    /// Media host port (0 = any free port); plain HTTP on `bind`.
    pub media_port: u16,
    /// Media host settings (blob directory, size bounds, token lifetimes).
    pub media: MediaConfig,
    /// Whether the media port also speaks TLS (default false): see
    /// [`Self::with_media_tls`].
    pub media_tls: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ws_port: 0,
            control_port: 0,
            router: RouterConfig::default(),
            media_port: 0,
            media: MediaConfig::default(),
            media_tls: false,
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

    /// Sets the pause before the post-pairing 515: a uniform draw from `min..=max` per
    /// pairing (default 300..=600 ms as the real server; see
    /// [`RouterConfig::restart_delay`]). `(ZERO, ZERO)` sends it at once.
    #[must_use]
    pub fn with_restart_delay(mut self, min: Duration, max: Duration) -> Self {
        self.router.restart_delay = (min, max);
        self
    }

    /// Sets how long the socket stays open after the post-pairing 515 for the client to
    /// close it first (default 500 ms; see [`RouterConfig::restart_close_grace`]).
    #[must_use]
    pub fn with_restart_close_grace(mut self, grace: Duration) -> Self {
        self.router.restart_close_grace = grace;
        self
    }

    /// Sets the pause between the handshake and the first stanza (default 100 ms; see
    /// [`RouterConfig::first_stanza_delay`]).
    #[must_use]
    pub fn with_first_stanza_delay(mut self, delay: Duration) -> Self {
        self.router.first_stanza_delay = delay;
        self
    }

    /// Turns the phones' companion onboarding on or off (see [`RouterConfig::phone_sync`];
    /// default off).
    #[must_use]
    pub fn with_phone_sync(mut self, on: bool) -> Self {
        self.router.phone_sync = on;
        self
    }

    /// Sets the unix clock used in stanzas.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.router.clock = clock;
        self
    }

    /// Sets the media host's settings.
    #[must_use]
    pub fn with_media(mut self, media: MediaConfig) -> Self {
        self.media = media;
        self
    }

    /// Makes the media port serve HTTPS as well as plain HTTP (told apart by the first byte a
    /// client sends), with a self-signed certificate for `127.0.0.1` and `localhost` made at
    /// start ([`SandboxHandle::media_tls_cert_pem`]). Upload replies then carry `https://`
    /// URLs. For clients that only speak HTTPS to media hosts, such as Baileys; our engine
    /// keeps using `http` on the same `host:port`.
    #[must_use]
    pub fn with_media_tls(mut self, on: bool) -> Self {
        self.media_tls = on;
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
        let media_tls = if config.media_tls {
            let extra = (!config.bind.is_loopback()).then(|| config.bind.to_string());
            Some(media_tls::MediaTls::generate(extra)?)
        } else {
            None
        };
        let (media_url, media_stop, media_task) =
            start_media(&config, router.media(), media_tls.clone()).await?;
        tracing::info!(%ws_url, %control_url, %media_url, "sandbox started");
        Ok(SandboxHandle {
            router,
            ws_url,
            control_url,
            media_url,
            media_tls,
            stop: Some((ws_stop_tx, ctl_stop_tx)),
            media_stop: Some(media_stop),
            tasks: vec![ws_task, control_task, media_task],
        })
    }
}

/// Binds and serves the media host (plain HTTP, and TLS too when `tls` is set); returns
/// its base URL, stop signal and task.
async fn start_media(
    config: &SandboxConfig,
    media: &MediaHost,
    tls: Option<media_tls::MediaTls>,
) -> Result<(String, oneshot::Sender<()>, JoinHandle<()>), SandboxError> {
    media.configure(config.media.clone());
    let addr = SocketAddr::new(config.bind, config.media_port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| SandboxError::Bind {
            what: "media",
            addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(SandboxError::LocalAddr)?;
    media.set_public_host(addr.to_string());
    media.set_tls(tls.is_some());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let app = media.app();
    let stop = async move {
        let _ = stop_rx.await;
    };
    let task = match tls {
        None => tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::warn!(error = %e, "media host stopped");
            }
        }),
        Some(tls) => {
            let listener =
                media_tls::DualListener::new(listener, tls).map_err(SandboxError::LocalAddr)?;
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await
                {
                    tracing::warn!(error = %e, "media host stopped");
                }
            })
        }
    };
    Ok((format!("http://{addr}"), stop_tx, task))
}

/// A running sandbox. Dropping it stops the servers (without waiting); call
/// [`shutdown`](Self::shutdown) to wait until every connection closed.
#[derive(Debug)]
pub struct SandboxHandle {
    router: Router,
    ws_url: String,
    control_url: String,
    media_url: String,
    media_tls: Option<media_tls::MediaTls>,
    stop: Option<(oneshot::Sender<()>, oneshot::Sender<()>)>,
    media_stop: Option<oneshot::Sender<()>>,
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

    /// The media host's base URL, `http://127.0.0.1:<port>` (clients learn its
    /// `host:port` from `media_conn`; they must use the `http` scheme).
    pub fn media_url(&self) -> &str {
        &self.media_url
    }

    /// The media host: stored blobs, token expiry and download fault injection.
    pub fn media(&self) -> &MediaHost {
        self.router.media()
    }

    /// The media host's self-signed TLS certificate (PEM), when started
    /// [`with_media_tls`](SandboxConfig::with_media_tls); valid for `127.0.0.1` and
    /// `localhost`. Node clients trust it through `NODE_EXTRA_CA_CERTS`.
    pub fn media_tls_cert_pem(&self) -> Option<String> {
        self.media_tls.as_ref().map(media_tls::MediaTls::cert_pem)
    }

    /// The same certificate, DER.
    pub fn media_tls_cert_der(&self) -> Option<&[u8]> {
        self.media_tls.as_ref().map(media_tls::MediaTls::cert_der)
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
        if let Some(media) = self.media_stop.take() {
            let _ = media.send(());
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        self.signal_stop();
    }
}
