//! `wa-server`: configuration (flags with environment equivalents), tracing, bind, serve
//! `app(state)` with graceful shutdown (SIGINT/SIGTERM: stop accepting, end event streams,
//! close every session keeping its credentials, flush the database).
//!
//! Offline demo: `cargo run -p wa-server -- --sandbox`, then open
//! `http://127.0.0.1:8080/docs`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use clap::Parser;
use wa_engine::noise::TrustRoot;
use wa_server::{AppState, Secret, ServerConfig, Upstream, app};

/// Self-hosted WhatsApp Web multi-device gateway (HTTP + JSON).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on. Without an API key only loopback addresses are allowed.
    #[arg(long, env = "WA_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Directory for the server database and the session stores.
    #[arg(long, env = "WA_DATA_DIR", default_value = "./wa-data")]
    data_dir: PathBuf,
    /// Admin API key (send as `x-api-key` or `Authorization: Bearer`). Prefer the variable.
    #[arg(long, env = "WA_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Run an embedded simulated WhatsApp server and connect every session to it (offline);
    /// its accounts are kept in <data-dir>/sandbox/state.json across restarts.
    #[cfg(feature = "sandbox")]
    #[arg(long, env = "WA_SANDBOX", conflicts_with = "wa_url")]
    sandbox: bool,
    /// With --sandbox: the simulated phones onboard each session as the 2026 service does
    /// (app-state keys, initial app-state with the NCT salt, history sync), so sessions can
    /// attach privacy tokens to first messages.
    #[cfg(feature = "sandbox")]
    #[arg(long, env = "WA_SANDBOX_PHONE_SYNC", requires = "sandbox")]
    sandbox_phone_sync: bool,
    /// Connect sessions to this WebSocket URL instead (e.g. a separate wa-sandbox).
    #[arg(long, env = "WA_URL", requires = "wa_trust_root")]
    wa_url: Option<String>,
    /// Base64 of the 32-byte root public key the server at --wa-url must present.
    #[arg(long, env = "WA_TRUST_ROOT", requires = "wa_url")]
    wa_trust_root: Option<String>,
    /// Country calling code for local numbers (e.g. 62: 0812... -> 62812...).
    #[arg(long, env = "WA_DEFAULT_COUNTRY_CODE")]
    default_country_code: Option<String>,
    /// Largest request body, bytes.
    #[arg(long, env = "WA_BODY_LIMIT", default_value_t = 1024 * 1024)]
    body_limit: usize,
    /// Most sessions.
    #[arg(long, env = "WA_MAX_SESSIONS", default_value_t = 1000)]
    max_sessions: usize,
    /// Group commit of the engine stores: longest wait, microseconds, for more sessions'
    /// writes to share one flush (0: only what queued during the previous flush).
    #[arg(long, env = "WA_COMMIT_MAX_DELAY_US", default_value_t = 0)]
    commit_max_delay_us: u64,
    /// Group commit of the engine stores: most write batches per flush.
    #[arg(long, env = "WA_COMMIT_MAX_BATCHES", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=65536))]
    commit_max_batches: u64,
    /// Device name shown on the phone.
    #[arg(long, env = "WA_DEVICE_NAME", default_value = "wa-server")]
    device_name: String,
    /// WhatsApp Web version sent at login, `2.3000.x` (default: the engine's built-in one).
    /// Set a newer one when sessions stop with "client outdated (405)".
    #[arg(long, env = "WA_VERSION", value_parser = parse_wa_version)]
    wa_version: Option<[u32; 3]>,
    /// Reject incoming voice and video calls automatically (the `call` event still fires).
    #[arg(long, env = "WA_AUTO_REJECT_CALLS")]
    auto_reject_calls: bool,
    /// Public base URL for absolute pairing links (e.g. https://wa.example.com).
    #[arg(long, env = "WA_PUBLIC_URL")]
    public_url: Option<String>,
    /// Default OTP length (4-10).
    #[arg(long, env = "WA_OTP_DIGITS", default_value_t = 6)]
    otp_digits: u8,
    /// Default OTP validity, seconds.
    #[arg(long, env = "WA_OTP_TTL", default_value_t = 300)]
    otp_ttl: u64,
    /// Wrong OTP guesses allowed.
    #[arg(long, env = "WA_OTP_MAX_ATTEMPTS", default_value_t = 5)]
    otp_max_attempts: u32,
    /// Seconds between two OTPs to one number.
    #[arg(long, env = "WA_OTP_RECIPIENT_INTERVAL", default_value_t = 60)]
    otp_recipient_interval: u64,
    /// OTPs one session may send per minute.
    #[arg(long, env = "WA_OTP_SESSION_LIMIT", default_value_t = 30)]
    otp_session_limit: u32,
    /// Default OTP message; must contain {code} ({minutes} is the TTL).
    #[arg(long, env = "WA_OTP_TEMPLATE")]
    otp_template: Option<String>,
    /// Webhook tries before dead-lettering.
    #[arg(long, env = "WA_WEBHOOK_MAX_ATTEMPTS", default_value_t = 8)]
    webhook_max_attempts: u32,
    /// First webhook retry delay, milliseconds (doubles each try).
    #[arg(long, env = "WA_WEBHOOK_BACKOFF_MS", default_value_t = 2000)]
    webhook_backoff_ms: u64,
    /// Comma-separated hosts webhook URLs may use (default: any).
    #[arg(long, env = "WA_WEBHOOK_ALLOWED_HOSTS", value_delimiter = ',')]
    webhook_allowed_hosts: Option<Vec<String>>,
    /// Let webhooks and media URLs reach non-public addresses (loopback, private, link-local
    /// incl. cloud metadata, CGNAT, unique-local, ...): for receivers on this host or network.
    #[arg(long, env = "WA_ALLOW_PRIVATE_TARGETS")]
    allow_private_targets: bool,
    /// Comma-separated CIDRs webhooks and media URLs may reach although non-public
    /// (e.g. 10.1.0.0/16,fd00::/8); narrower than --allow-private-targets.
    #[arg(long, env = "WA_ALLOWED_TARGET_CIDRS", value_delimiter = ',')]
    allowed_target_cidrs: Vec<wa_server::IpNet>,
    /// No per-session series in /metrics (`session` label: state, messages, reconnects).
    #[arg(long, env = "WA_NO_SESSION_METRICS")]
    no_session_metrics: bool,
    /// Sessions that get their own `session` label in /metrics; later ones share
    /// session="_other".
    #[arg(long, env = "WA_SESSION_METRICS_LIMIT", default_value_t = 100)]
    session_metrics_limit: usize,
    /// Events waiting to be written to the webhook outbox and sent to SSE, all sessions
    /// together; when full, emitters wait (nothing is dropped).
    #[arg(long, env = "WA_EVENT_QUEUE", default_value_t = 1024)]
    event_queue: usize,
    /// Run the start-up checks (versions, data directory, WhatsApp endpoint), print them
    /// as JSON and exit: 0 when all passed, 1 otherwise. The server is not started.
    #[arg(long)]
    doctor: bool,
    #[command(flatten)]
    media: MediaFlags,
    #[command(flatten)]
    page: PageFlags,
    #[command(flatten)]
    log: LogFlags,
    #[command(flatten)]
    dialects: DialectFlags,
}

/// Drop-in dialects of other servers' APIs.
#[derive(Debug, clap::Args)]
struct DialectFlags {
    /// Serve the Evolution API v2 dialect (global `apikey` = --api-key, per-instance tokens)
    /// under --evolution-base-path.
    #[arg(long, env = "WA_EVOLUTION")]
    evolution: bool,
    /// Base path of the Evolution dialect; `/` serves it at the root.
    #[arg(long, env = "WA_EVOLUTION_BASE_PATH", default_value = "/evolution")]
    evolution_base_path: String,
    /// Serve the WAHA dialect (`X-Api-Key` = --api-key) under --waha-base-path.
    #[arg(long, env = "WA_WAHA")]
    waha: bool,
    /// Base path of the WAHA dialect (not `/`: WAHA's paths are the native API's).
    #[arg(long, env = "WA_WAHA_BASE_PATH", default_value = "/waha")]
    waha_base_path: String,
}

/// Pairing page flags: QR refresh cap and operator branding.
#[derive(Debug, clap::Args)]
struct PageFlags {
    /// QR codes a session shows after its first one; then it stops its QR loop (status
    /// `stopped`) until restarted (the page's "new code" button). 0 = the first QR only.
    #[arg(long, env = "WA_QR_MAX_REFRESHES", default_value_t = wa_server::DEFAULT_QR_MAX_REFRESHES)]
    qr_max_refreshes: u32,
    /// Operator name on the pairing page (1-60 characters).
    #[arg(long, env = "WA_BRAND_NAME")]
    brand_name: Option<String>,
    /// Logo URL (http or https) on the pairing page.
    #[arg(long, env = "WA_BRAND_LOGO_URL")]
    brand_logo_url: Option<String>,
    /// Accent colour of the pairing page, #rrggbb.
    #[arg(long, env = "WA_BRAND_COLOR")]
    brand_color: Option<String>,
}

/// Message log and send limit flags.
#[derive(Debug, clap::Args)]
struct LogFlags {
    /// Days the message log keeps messages (sent and received) and their day counters;
    /// 0 keeps them for ever. Older ones are removed hourly.
    #[arg(long, env = "WA_MESSAGE_RETENTION_DAYS", default_value_t = 90)]
    message_retention_days: u64,
    /// Sends per minute per session (bursts up to this many); 0: no limit. Over it: 429
    /// `send_rate_limited` with Retry-After.
    #[arg(long, env = "WA_SEND_RATE_PER_MINUTE", default_value_t = 30)]
    send_rate_per_minute: u32,
    /// Least milliseconds between two sends of a session to one recipient; 0: no pacing.
    /// Sooner: 429 `recipient_rate_limited` with Retry-After.
    #[arg(long, env = "WA_RECIPIENT_INTERVAL_MS", default_value_t = 0)]
    recipient_interval_ms: u64,
    /// Sends per session per UTC day (kept across restarts); unset: no quota. Over it: 429
    /// `daily_quota_exceeded` with Retry-After until midnight UTC.
    #[arg(long, env = "WA_DAILY_SEND_QUOTA")]
    daily_send_quota: Option<u64>,
    /// Queue sends over the rate limit or the recipient pacing (status `queued`, sent when
    /// allowed, kept across restarts) instead of answering 429. OTPs and the daily quota
    /// still refuse.
    #[arg(long, env = "WA_QUEUE_LIMITED_SENDS")]
    queue_limited_sends: bool,
}

/// Media flags (kept together so the list above stays readable).
#[derive(Debug, clap::Args)]
struct MediaFlags {
    /// Largest media file accepted for sending (upload, base64 or URL), bytes.
    #[arg(long, env = "WA_MEDIA_MAX_BYTES", default_value_t = 64 * 1024 * 1024)]
    media_max_bytes: u64,
    /// Timeout of fetching a media URL, seconds.
    #[arg(long, env = "WA_MEDIA_FETCH_TIMEOUT", default_value_t = 60)]
    media_fetch_timeout: u64,
    /// Received media up to this size (bytes) is also inlined as base64 in events; 0: off.
    #[arg(long, env = "WA_MEDIA_INLINE_MAX_BYTES", default_value_t = 0)]
    media_inline_max_bytes: u64,
    /// Inline downloads of received media running at once (all sessions).
    #[arg(long, env = "WA_MEDIA_INLINE_CONCURRENCY", default_value_t = 8)]
    media_inline_concurrency: usize,
    /// Inline downloads waiting for a worker (all sessions); when full, the event is sent at
    /// once with `inline_error`.
    #[arg(long, env = "WA_MEDIA_INLINE_QUEUE", default_value_t = 1024)]
    media_inline_queue: usize,
    /// Comma-separated hosts media URLs may be fetched from (default: any).
    #[arg(long, env = "WA_MEDIA_FETCH_ALLOWED_HOSTS", value_delimiter = ',')]
    media_fetch_allowed_hosts: Option<Vec<String>>,
}

impl Cli {
    fn into_config(self) -> anyhow::Result<ServerConfig> {
        let mut config = ServerConfig::new(self.data_dir);
        config.api_key = self.api_key.filter(|k| !k.is_empty()).map(Secret::new);
        config.upstream = match (self.wa_url, self.wa_trust_root) {
            #[cfg(feature = "sandbox")]
            _ if self.sandbox => Upstream::Sandbox,
            (Some(url), Some(root)) => {
                let key: [u8; 32] = base64::engine::general_purpose::STANDARD
                    .decode(root.trim())
                    .ok()
                    .and_then(|k| k.try_into().ok())
                    .context("--wa-trust-root must be base64 of 32 bytes")?;
                Upstream::Custom {
                    url,
                    trust_root: TrustRoot::new(key, 0),
                }
            }
            _ => Upstream::WhatsApp,
        };
        #[cfg(feature = "sandbox")]
        {
            config.sandbox_phone_sync = self.sandbox_phone_sync;
        }
        config.default_country_code = self
            .default_country_code
            .map(|c| c.trim_start_matches('+').to_owned());
        config.body_limit = self.body_limit;
        config.max_sessions = self.max_sessions;
        config.group_commit.max_delay = Duration::from_micros(self.commit_max_delay_us);
        config.group_commit.max_batches =
            usize::try_from(self.commit_max_batches).unwrap_or(usize::MAX);
        config.device_name = self.device_name;
        config.wa_version = self.wa_version;
        config.auto_reject_calls = self.auto_reject_calls;
        config.public_url = self.public_url;
        config.otp.digits = self.otp_digits;
        config.otp.ttl = Duration::from_secs(self.otp_ttl);
        config.otp.max_attempts = self.otp_max_attempts;
        config.otp.recipient_interval = Duration::from_secs(self.otp_recipient_interval);
        config.otp.session_limit = self.otp_session_limit;
        if let Some(t) = self.otp_template {
            if !t.contains("{code}") {
                bail!("--otp-template must contain {{code}}");
            }
            config.otp.template = t;
        }
        if !(4..=10).contains(&config.otp.digits) {
            bail!("--otp-digits must be 4-10");
        }
        config.webhooks.max_attempts = self.webhook_max_attempts.max(1);
        config.webhooks.initial_backoff = Duration::from_millis(self.webhook_backoff_ms.max(1));
        config.webhooks.allowed_hosts = self.webhook_allowed_hosts;
        config.egress.allow_private_targets = self.allow_private_targets;
        config.egress.allowed_cidrs = self.allowed_target_cidrs;
        config.metrics.per_session = !self.no_session_metrics;
        config.metrics.session_limit = self.session_metrics_limit;
        if self.media.media_max_bytes == 0 {
            bail!("--media-max-bytes must be positive");
        }
        config.media.max_bytes = self.media.media_max_bytes;
        config.media.fetch_timeout = Duration::from_secs(self.media.media_fetch_timeout.max(1));
        config.media.inline_max_bytes = self.media.media_inline_max_bytes;
        config.media.inline_concurrency = self.media.media_inline_concurrency.max(1);
        config.media.inline_queue = self.media.media_inline_queue.max(1);
        config.event_queue = self.event_queue.max(1);
        config.media.fetch_allowed_hosts = self.media.media_fetch_allowed_hosts;
        config.qr_max_refreshes = Some(self.page.qr_max_refreshes);
        let branding = wa_server::Branding {
            name: self.page.brand_name,
            logo_url: self.page.brand_logo_url,
            color: self.page.brand_color,
        };
        branding
            .validate()
            .map_err(|e| anyhow::anyhow!("--brand-*: {e}"))?;
        config.branding = branding;
        config.message_log.retention =
            Duration::from_secs(self.log.message_retention_days.saturating_mul(86_400));
        config.send_limits.per_minute = self.log.send_rate_per_minute;
        config.send_limits.recipient_interval =
            Duration::from_millis(self.log.recipient_interval_ms);
        config.send_limits.daily_quota = self.log.daily_send_quota;
        config.send_limits.queue = self.log.queue_limited_sends;
        if self.dialects.evolution {
            config.dialects.evolution = Some(self.dialects.evolution_base_path);
        }
        if self.dialects.waha {
            anyhow::ensure!(
                !self
                    .dialects
                    .waha_base_path
                    .trim()
                    .trim_matches('/')
                    .is_empty(),
                "--waha-base-path / would clash with the native /api routes: give a base path such as /waha"
            );
            config.dialects.waha = Some(self.dialects.waha_base_path);
        }
        Ok(config)
    }
}

/// `--wa-version`: `primary.secondary.tertiary`.
fn parse_wa_version(text: &str) -> Result<[u32; 3], String> {
    wa_engine::conn::parse_app_version(text)
        .ok_or_else(|| format!("{text:?} is not a version like 2.3000.1045649367"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sled=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let bind = cli.bind;
    let doctor = cli.doctor;
    let config = cli.into_config()?;
    if doctor {
        let upstream = wa_server::doctor::configured_upstream(&config);
        let report = wa_server::doctor::run(&config, upstream.as_deref()).await;
        println!("{}", serde_json::to_string_pretty(&report)?);
        std::process::exit(i32::from(!report.ok()));
    }
    if config.api_key.is_none() && !bind.ip().is_loopback() {
        bail!(
            "refusing to listen on {bind} without an API key: set WA_API_KEY, or bind a loopback address"
        );
    }
    if config.api_key.is_none() {
        tracing::warn!("no API key: the API is open to anyone who can reach {bind}");
    }
    if let Some(weakness) = config.api_key.as_ref().and_then(Secret::api_key_weakness) {
        if !bind.ip().is_loopback() {
            bail!(
                "refusing to listen on {bind} with a weak API key: {weakness} \
                 (generate one with `openssl rand -hex 16`), or bind a loopback address"
            );
        }
        tracing::warn!(%bind, "weak API key, accepted on a loopback bind only: {weakness}");
    }
    let state = match AppState::start(config).await {
        Ok(state) => state,
        // Said plainly, without a cause chain: it is the operator's next step.
        Err(e @ wa_server::StartError::DataDirInUse { .. }) => {
            tracing::error!("{e}");
            eprintln!("wa-server: {e}");
            std::process::exit(1);
        }
        Err(e) => return Err(anyhow::Error::new(e).context("starting")),
    };
    // The start-up checks, logged (a failed one is a warning: sessions retry by themselves).
    let (checked, url) = (state.config().clone(), state.upstream_url().to_owned());
    tokio::spawn(async move { wa_server::doctor::run(&checked, Some(&url)).await.log() });
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding {bind}"))?;
    let local = listener.local_addr()?;
    tracing::info!(%local, "listening");
    // One machine-readable line for scripts and tests.
    println!(
        "{}",
        serde_json::json!({ "listening": format!("http://{local}"), "sandbox": state.runs_sandbox() })
    );
    let stopping = state.clone();
    axum::serve(wa_server::HttpListener::new(listener), app(state.clone()))
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            stopping.begin_shutdown();
        })
        .await
        .context("serving")?;
    state.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}
