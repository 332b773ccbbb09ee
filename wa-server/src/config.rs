//! Server configuration: everything `main.rs` reads from flags and environment, with the
//! defaults documented per field. Tests build it with [`ServerConfig::new`] and adjust fields.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use wa_engine::ReconnectPolicy;
use wa_engine::noise::TrustRoot;
use zeroize::Zeroizing;

/// A secret string (the admin API key): `Debug` and `Display` never show it, and it is
/// zeroized on drop.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The secret bytes, for constant-time comparison only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

/// Default of [`ServerConfig::qr_max_refreshes`].
pub const DEFAULT_QR_MAX_REFRESHES: u32 = 5;

/// Fewest characters of an admin API key on a non-loopback bind.
pub const MIN_API_KEY_LEN: usize = 24;
/// Fewest distinct characters of such a key (refuses `aaaa...` and `abab...`).
pub const MIN_API_KEY_DISTINCT: usize = 8;

impl Secret {
    /// Why this value is too weak to be an admin API key reachable from the network, or
    /// `None`: it must have at least [`MIN_API_KEY_LEN`] characters and
    /// [`MIN_API_KEY_DISTINCT`] distinct ones (`openssl rand -hex 16` gives 32 characters
    /// from 16 symbols: about 128 bits).
    pub fn api_key_weakness(&self) -> Option<String> {
        let len = self.0.chars().count();
        if len < MIN_API_KEY_LEN {
            return Some(format!(
                "the API key has {len} characters; at least {MIN_API_KEY_LEN} are required"
            ));
        }
        let mut distinct: Vec<char> = self.0.chars().collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < MIN_API_KEY_DISTINCT {
            return Some(format!(
                "the API key uses {} distinct characters; at least {MIN_API_KEY_DISTINCT} are required",
                distinct.len()
            ));
        }
        None
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Which WhatsApp server the sessions connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Upstream {
    /// The real WhatsApp servers (`wa_engine::DEFAULT_URL`, production trust root).
    WhatsApp,
    /// An embedded `wa_sandbox::Sandbox` started with the server on loopback (`--sandbox`):
    /// sessions use its WebSocket URL and trust root, and its simulated phones can scan.
    /// Its accounts and linked devices are saved in `<data-dir>/sandbox/state.json` whenever
    /// they change, so paired sessions log in again after a restart (groups and offline
    /// queues are not kept). Needs the `sandbox` feature (on by default).
    #[cfg(feature = "sandbox")]
    Sandbox,
    /// Any server speaking the protocol, e.g. a sandbox run as its own process
    /// (`--wa-url` + `--wa-trust-root`).
    Custom {
        /// WebSocket URL, e.g. `ws://127.0.0.1:5222/ws/chat`.
        url: String,
        /// Root key the server's certificate chain must verify against.
        trust_root: TrustRoot,
    },
}

/// OTP settings (`POST /api/sessions/{id}/otp`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OtpConfig {
    /// Default number of digits (4..=10). Default 6.
    pub digits: u8,
    /// Default validity. Default 300 s.
    pub ttl: Duration,
    /// Wrong guesses allowed before the code is burnt. Default 5.
    pub max_attempts: u32,
    /// Minimum time between two codes to one recipient of one session. Default 60 s.
    pub recipient_interval: Duration,
    /// Codes one session may send per [`session_window`](Self::session_window). Default 30.
    pub session_limit: u32,
    /// Window of the per-session limit. Default 60 s.
    pub session_window: Duration,
    /// Default message template; `{code}` is replaced by the code, `{minutes}` by the TTL in
    /// whole minutes.
    pub template: String,
}

impl Default for OtpConfig {
    fn default() -> Self {
        Self {
            digits: 6,
            ttl: Duration::from_secs(300),
            max_attempts: 5,
            recipient_interval: Duration::from_secs(60),
            session_limit: 30,
            session_window: Duration::from_secs(60),
            template: "Your verification code is {code}. It expires in {minutes} minutes. \
                       Do not share it with anyone."
                .to_owned(),
        }
    }
}

/// Webhook delivery settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WebhookSettings {
    /// Tries before a delivery moves to the dead-letter list. Default 8.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles each try. Default 2 s.
    pub initial_backoff: Duration,
    /// Upper bound of the retry delay. Default 10 min.
    pub max_backoff: Duration,
    /// Timeout of one HTTP delivery. Default 10 s.
    pub timeout: Duration,
    /// Deliveries in flight at once. Default 16.
    pub concurrency: usize,
    /// Hosts webhook URLs may point at (exact host names or IP literals); `None` allows
    /// any. Default `None`.
    pub allowed_hosts: Option<Vec<String>>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(600),
            timeout: Duration::from_secs(10),
            concurrency: 16,
            allowed_hosts: None,
        }
    }
}

/// Media settings: sends by URL, base64 or upload, downloads of received media.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MediaSettings {
    /// Largest media file accepted for sending (upload, base64 or URL), bytes. Default
    /// 64 MiB. Files are streamed to a temporary file under `<data-dir>/tmp/`, never held
    /// whole in memory (except a base64 JSON body, which is parsed whole).
    pub max_bytes: u64,
    /// Timeout of fetching a media URL, start to last byte. Default 60 s.
    pub fetch_timeout: Duration,
    /// Received media up to this size, bytes, is also put inline (base64) into the
    /// `message` event; 0 turns this off. Default 0. The file is downloaded by a bounded
    /// pool of workers (at most 30 s each), never by the session's event loop: the event is
    /// emitted when its download ended, and later events of that session do not wait for it.
    pub inline_max_bytes: u64,
    /// Inline downloads running at once, all sessions together. Default 8.
    pub inline_concurrency: usize,
    /// Inline downloads waiting for a worker, all sessions together. Default 1024. When the
    /// queue is full, a message event is emitted at once without `base64`, with
    /// `inline_error` (its `download_url` still works).
    pub inline_queue: usize,
    /// Hosts media URLs (and their redirects) may use: exact host names or IP literals;
    /// `None` allows any. Default `None`.
    pub fetch_allowed_hosts: Option<Vec<String>>,
}

impl Default for MediaSettings {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024 * 1024,
            fetch_timeout: Duration::from_secs(60),
            inline_max_bytes: 0,
            inline_concurrency: crate::media::inline::DEFAULT_CONCURRENCY,
            inline_queue: crate::media::inline::DEFAULT_QUEUE,
            fetch_allowed_hosts: None,
        }
    }
}

/// Which addresses the server's own requests to caller-given URLs (webhook deliveries, media
/// URLs and their redirects) may reach; see `crate::egress` for the checks. Non-public
/// ranges (loopback, private, unique-local, link-local, CGNAT, unspecified, multicast,
/// documentation, ...) are refused unless allowed here.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct EgressSettings {
    /// `--allow-private-targets`: allow every range (a self-hosted receiver on the same
    /// host or network). Default `false`.
    pub allow_private_targets: bool,
    /// `--allowed-target-cidrs`: ranges allowed although non-public, e.g. `10.1.0.0/16`
    /// for a receiver in the operator's own network. Default empty.
    pub allowed_cidrs: Vec<ipnet::IpNet>,
    /// Host names answered from this list instead of DNS (like `curl --resolve`), for tests
    /// and split-horizon setups; the addresses are still checked. Default empty.
    pub resolve: Vec<(String, Vec<std::net::IpAddr>)>,
}

/// `/metrics` settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MetricsSettings {
    /// Per-session series (`session` label: state, messages, reconnects). Default `true`;
    /// `--no-session-metrics` turns them off.
    pub per_session: bool,
    /// Sessions that get a `session` label of their own (the first ones counted); later
    /// sessions share `session="_other"`, so a scrape stays bounded. Default 100
    /// (`--session-metrics-limit`).
    pub session_limit: usize,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            per_session: true,
            session_limit: 100,
        }
    }
}

/// The message log (`crate::msglog`): every message sent and received, with its status
/// timeline, listed at `GET /api/sessions/{id}/messages`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MessageLogSettings {
    /// How long messages (and their day counters) are kept, counted from their creation;
    /// zero keeps them for ever. Default 90 days (`--message-retention-days`).
    pub retention: Duration,
    /// How often messages past the retention are removed (also once at start). Default 1 h.
    pub cleanup_interval: Duration,
}

impl Default for MessageLogSettings {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(90 * 86_400),
            cleanup_interval: Duration::from_secs(3600),
        }
    }
}

/// Send limits that protect a session's account (`crate::limits`); each refusal is a 429
/// with `Retry-After` and its own code. They apply to every send: text, location, contact,
/// media, OTP and retries.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SendLimitSettings {
    /// Sends per minute per session (GCRA: bursts up to this many, then one every
    /// 60 s / n); 0 turns the limit off. Default 30 (`--send-rate-per-minute`).
    /// Refused with `send_rate_limited`.
    pub per_minute: u32,
    /// Least time between two sends of one session to one recipient; zero turns pacing off.
    /// Default zero (`--recipient-interval-ms`). Refused with `recipient_rate_limited`.
    pub recipient_interval: Duration,
    /// Sends per session per UTC day, counted in the server database (a restart does not
    /// reset it); `None` for no quota. Default `None` (`--daily-send-quota`). Refused with
    /// `daily_quota_exceeded` until the next UTC midnight.
    pub daily_quota: Option<u64>,
    /// Queue instead of refusing: a send over the rate limit or the recipient pacing is
    /// accepted with status `queued` and sent when the limits allow, in order (kept in the
    /// server database: a restart resumes it). OTPs and the daily quota still refuse.
    /// Default `false` (`--queue-limited-sends`).
    pub queue: bool,
}

impl Default for SendLimitSettings {
    fn default() -> Self {
        Self {
            per_minute: 30,
            recipient_interval: Duration::ZERO,
            daily_quota: None,
            queue: false,
        }
    }
}

impl SendLimitSettings {
    /// No limit at all (tests and benchmarks that send in bursts).
    pub fn unlimited() -> Self {
        Self {
            per_minute: 0,
            recipient_interval: Duration::ZERO,
            daily_quota: None,
            queue: false,
        }
    }
}

/// Everything the server needs to run. Build with [`ServerConfig::new`] and set fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Directory for the server database (`server/`) and the sessions' engine stores:
    /// one shared sled database (`engine/`, a tree per session; `wa_engine::SledDatabase`),
    /// plus `sessions/<id>/` for stores written by earlier versions. Default `./wa-data`.
    pub data_dir: PathBuf,
    /// Admin API key (`WA_API_KEY`). `None` leaves the API open, which `main.rs` allows
    /// only on a loopback address.
    pub api_key: Option<Secret>,
    /// Which server the sessions connect to.
    pub upstream: Upstream,
    /// With [`Upstream::Sandbox`]: whether the embedded sandbox's simulated phones do the
    /// 2026 companion onboarding (`wa_sandbox::SandboxConfig::with_phone_sync`): share the
    /// app-state keys after pairing, push the initial app-state snapshot (push name,
    /// contacts, NCT salt) and upload a history-sync blob, so sessions learn the salt that
    /// privacy tokens (cstokens) need. Default `false` (the sandbox before issue 11).
    pub sandbox_phone_sync: bool,
    /// Country calling code for numbers given in local form (`0812...` with `62` ->
    /// `62812...`), digits only. Default `None`: local numbers are rejected.
    pub default_country_code: Option<String>,
    /// Largest request body in bytes. Default 1 MiB.
    pub body_limit: usize,
    /// Most sessions the server will hold. Default 1000.
    pub max_sessions: usize,
    /// Group commit of the sessions' engine stores (`--commit-max-delay-us`,
    /// `--commit-max-batches`): how long the committer gathers batches of many sessions
    /// before one flush, and how many at most. Default
    /// [`GroupCommitConfig::default`](wa_engine::store::GroupCommitConfig::default): no
    /// added delay (the batches that queue during a flush form the next group), 1024
    /// batches. A positive delay trades that much latency per write for fewer flushes.
    pub group_commit: wa_engine::store::GroupCommitConfig,
    /// Device name shown in the phone's list of linked devices. Default `wa-server`.
    pub device_name: String,
    /// The WhatsApp Web version sent at login (`--wa-version`); `None`: the engine's
    /// default. A session whose version the server refuses stops with `client outdated
    /// (405)` in its `last_error` (credentials kept); restart with a newer one.
    pub wa_version: Option<[u32; 3]>,
    /// Reject incoming calls automatically (`--auto-reject-calls`); the `call` event still
    /// fires, with `auto_rejected: true`. Default off.
    pub auto_reject_calls: bool,
    /// Public base URL (e.g. `https://wa.example.com`) used to build absolute signed
    /// pairing links; without it links are paths.
    pub public_url: Option<String>,
    /// Default lifetime of a signed pairing link. Default 15 min.
    pub link_ttl: Duration,
    /// OTP settings.
    pub otp: OtpConfig,
    /// Webhook delivery settings.
    pub webhooks: WebhookSettings,
    /// Media settings.
    pub media: MediaSettings,
    /// Which addresses webhook deliveries and media fetches may reach.
    pub egress: EgressSettings,
    /// `/metrics` settings.
    pub metrics: MetricsSettings,
    /// Backoff of the engine's reconnects and of the server's own retries of a first
    /// connection. Default the engine's (1 s doubling to 60 s).
    pub reconnect: ReconnectPolicy,
    /// Events waiting for the fan-out (written to the webhook outbox, then shown to SSE
    /// subscribers), all sessions together. Default 1024. When full, the emitter waits for
    /// room: no event is dropped.
    pub event_queue: usize,
    /// `--qr-max-refreshes`: QR codes a session shows after its first one before it stops
    /// its QR loop (status `stopped`, `last_error` `qr_refresh_limit: ...`) until it is
    /// restarted (the pairing page's "new code" button, `POST .../restart` or
    /// `POST .../qr/force`). `None`: until WhatsApp's own refs run out. Default `Some(5)`.
    pub qr_max_refreshes: Option<u32>,
    /// `--brand-name`, `--brand-logo-url`, `--brand-color`: the pairing page's branding
    /// for every session (a session's `settings.branding` overrides it field by field).
    pub branding: crate::session_meta::Branding,
    /// The message log's retention.
    pub message_log: MessageLogSettings,
    /// Send limits per session.
    pub send_limits: SendLimitSettings,
    /// Drop-in dialects of other servers' APIs (`--evolution`, `--waha`); all off by default.
    pub dialects: DialectSettings,
}

/// Which drop-in dialects (`crate::dialect`) are served, and where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DialectSettings {
    /// The Evolution API v2 dialect's base path (`--evolution`, `--evolution-base-path`,
    /// default `/evolution`; `/` mounts it at the root). `None`: off.
    pub evolution: Option<String>,
    /// The WAHA dialect's base path (`--waha`, `--waha-base-path`, default `/waha`; `/`
    /// mounts it at the root). `None`: off.
    pub waha: Option<String>,
}

impl ServerConfig {
    /// Defaults (see each field) with the given data directory, connecting to WhatsApp.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            api_key: None,
            upstream: Upstream::WhatsApp,
            sandbox_phone_sync: false,
            default_country_code: None,
            body_limit: 1024 * 1024,
            max_sessions: 1000,
            group_commit: wa_engine::store::GroupCommitConfig::default(),
            device_name: "wa-server".to_owned(),
            wa_version: None,
            auto_reject_calls: false,
            public_url: None,
            link_ttl: Duration::from_secs(15 * 60),
            otp: OtpConfig::default(),
            webhooks: WebhookSettings::default(),
            media: MediaSettings::default(),
            egress: EgressSettings::default(),
            metrics: MetricsSettings::default(),
            reconnect: ReconnectPolicy::default(),
            event_queue: crate::fanout::DEFAULT_QUEUE,
            qr_max_refreshes: Some(DEFAULT_QR_MAX_REFRESHES),
            branding: crate::session_meta::Branding::default(),
            message_log: MessageLogSettings::default(),
            send_limits: SendLimitSettings::default(),
            dialects: DialectSettings::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_strength_table() {
        for (key, strong) in [
            ("k", false),
            ("0123456789abcdef0123456", false),
            ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
            ("abababababababababababababababab", false),
            ("0123456789abcdef01234567", true),
            ("9f86d081884c7d659a2feaa0c55ad015", true),
        ] {
            assert_eq!(
                Secret::new(key).api_key_weakness().is_none(),
                strong,
                "{key:?}"
            );
        }
    }
}
