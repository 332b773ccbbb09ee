//! What a [`Connection`](super::Connection) is configured with: timers, how the device
//! presents itself, trust root, clock and RNG seed.

use std::time::Duration;

#[cfg(doc)]
use super::Connection;
use crate::noise::TrustRoot;
use crate::pair::ClientType;

/// Timing of the connection's timers. Defaults are the real clients' values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// How long the first QR is shown: 60 s (03 §4.4; whatsmeow qrchan.go, Baileys).
    pub qr_first: Duration,
    /// How long each later QR is shown: 20 s.
    pub qr_next: Duration,
    /// Keepalive interval, drawn uniformly from `keepalive_min..=keepalive_max`: 20-30 s
    /// (whatsmeow keepalive.go).
    pub keepalive_min: Duration,
    /// See `keepalive_min`.
    pub keepalive_max: Duration,
    /// If nothing at all is received this long after a ping, the connection is dead: 20 s
    /// (whatsapp-rust keepalive.rs).
    pub keepalive_timeout: Duration,
    /// How long an IQ waits for its response: 60 s (Baileys; whatsmeow uses 75 s).
    pub iq_timeout: Duration,
    /// How long the handshake and the server's first stanza may take: 20 s.
    pub connect_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            qr_first: Duration::from_secs(60),
            qr_next: Duration::from_secs(20),
            keepalive_min: Duration::from_secs(20),
            keepalive_max: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(20),
            iq_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(20),
        }
    }
}

/// How this device presents itself (ClientPayload, DeviceProps, QR, pairing code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    /// `DeviceProps.os`: the name the phone shows in its list of linked devices.
    pub name: String,
    /// `DeviceProps.platformType` (03 §2.4). Default CHROME.
    pub platform_type: wa_proto::wa::device_props::PlatformType,
    /// The client type character of the QR and of companion_hello (03 §4.3). Default Chrome.
    pub client_type: ClientType,
    /// `companion_platform_display` of a pairing-code request: `Browser (OS)`, default
    /// `Chrome (Linux)` (03 §5.4: the real server rejects unknown browsers).
    pub platform_display: String,
    /// `UserAgent.appVersion` primary, secondary, tertiary (03 §2.2; default whatsmeow's
    /// 2.3000.1045649367). An outdated version gets `<failure reason="405"/>`.
    pub app_version: [u32; 3],
    /// `ClientPayload.pushName` at registration, if any.
    pub push_name: Option<String>,
}

/// Parses a WhatsApp Web version `primary.secondary.tertiary` (e.g. `2.3000.1045649367`,
/// the form web.whatsapp.com publishes) into [`DeviceConfig::app_version`]. `None` unless it
/// is exactly three decimal numbers.
pub fn parse_app_version(text: &str) -> Option<[u32; 3]> {
    let mut parts = text.trim().split('.').map(|p| p.parse::<u32>().ok());
    let version = [parts.next()??, parts.next()??, parts.next()??];
    parts.next().is_none().then_some(version)
}

impl Default for DeviceConfig {
    fn default() -> Self {
        Self {
            name: "wa-rs".to_owned(),
            platform_type: wa_proto::wa::device_props::PlatformType::Chrome,
            client_type: ClientType::Chrome,
            platform_display: "Chrome (Linux)".to_owned(),
            app_version: [2, 3000, 1_045_649_367],
            push_name: None,
        }
    }
}

/// Everything a [`Connection`] needs besides the store.
#[derive(Debug, Clone)]
pub struct Config {
    /// Root that must sign the server's certificate chain ([`TrustRoot::default`] is
    /// WhatsApp's; a sandbox has its own).
    pub trust_root: TrustRoot,
    /// Unix time at the `now` passed to [`Connection::new`]; later unix times are derived from
    /// it and the `Instant`s passed in, so the core never reads the clock. Used for the
    /// certificate validity check and for `unified_session`.
    pub unix_time: Duration,
    /// Seed of the connection's RNG (ephemeral keys, IQ ids, signatures, keepalive jitter).
    /// Drivers draw it from the OS; tests fix it.
    pub rng_seed: [u8; 32],
    /// How the device presents itself.
    pub device: DeviceConfig,
    /// Timer values.
    pub timing: Timing,
    /// Edge routing info from a previous connection's `<ib><edge_routing>`, sent in the
    /// `ED` pre-intro (01 §2.1). See [`Connection::routing_info`].
    pub routing_info: Option<Vec<u8>>,
    /// One-time prekeys per upload (812 by default, as Baileys and WhatsApp Web send; 04 §4.3).
    /// Tests and many-client deployments may lower it.
    pub prekey_batch: u32,
    /// How history-sync chunks are processed (shared/protocol/08 §9.5): the inflate cap and
    /// whether message bodies are kept for [`crate::Event::HistorySync`]. Tokens, PN↔LID
    /// mappings and the NCT salt are stored either way.
    pub history: crate::history::HistoryConfig,
    /// Reject every incoming call offer at once (`<call><reject>`), before reporting it as
    /// [`crate::Event::Call`] with `auto_rejected`. Default off.
    pub auto_reject_calls: bool,
    /// Which namespace 1:1 stanzas use on the wire (07 §1.4); sessions are keyed by LID
    /// either way. Default [`LidWire::Auto`](super::LidWire::Auto).
    pub lid_wire: super::LidWire,
    /// Privacy-token gates and bucket sizes (07 §2, §3); default: both tokens on, WA Web's
    /// 7-day × 4 buckets.
    pub tokens: super::TokenPolicy,
    /// Ask the server's A/B props after login and let them set [`tokens`](Self::tokens)'
    /// gates and buckets (props 10518, 24941, 865/909, 996/997; 07 §2.4, §2.6, §3.1). A prop
    /// the server does not send keeps the configured value. Default on.
    pub tokens_from_ab_props: bool,
    /// How store writes are made durable: [`Persistence::Inline`] (default; each write
    /// applied before the call returns) or [`Persistence::Deferred`] (staged, handed to the
    /// driver by [`Connection::poll_write`], frames and events held until
    /// [`Connection::handle_durable`]).
    ///
    /// [`Persistence::Inline`]: crate::store::Persistence::Inline
    /// [`Persistence::Deferred`]: crate::store::Persistence::Deferred
    pub persistence: crate::store::Persistence,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            trust_root: TrustRoot::default(),
            unix_time: Duration::ZERO,
            rng_seed: [0; 32],
            device: DeviceConfig::default(),
            timing: Timing::default(),
            routing_info: None,
            prekey_batch: crate::prekeys::UPLOAD_BATCH,
            history: crate::history::HistoryConfig::default(),
            auto_reject_calls: false,
            lid_wire: super::LidWire::default(),
            tokens: super::TokenPolicy::default(),
            tokens_from_ab_props: true,
            persistence: crate::store::Persistence::Inline,
        }
    }
}
