//! `wa-sandbox`: runs a simulated WhatsApp server on loopback and prints one JSON line
//! `{"ws_url", "control_url", "media_url", "media_tls_cert_pem" (null without
//! `--media-tls`), "trust_root_pub_b64"}` on stdout, so a harness in another
//! language (the Node/Baileys interop tests) can start it and read where to connect.
//!
//! Stops on SIGTERM, Ctrl-C, or when stdin closes (the parent went away).
//!
//! ```text
//! cargo run -p wa-sandbox -- --seed 7 --qr-timeout 60
//! ```

use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use clap::Parser;
use tokio::io::AsyncReadExt as _;
use wa_sandbox::{Sandbox, SandboxConfig};

#[derive(Debug, Parser)]
#[command(
    name = "wa-sandbox",
    about = "Simulated WhatsApp server for offline tests"
)]
struct Args {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// WebSocket port (0 = any free port).
    #[arg(long, default_value_t = 0)]
    ws_port: u16,
    /// Control API port (0 = any free port).
    #[arg(long, default_value_t = 0)]
    control_port: u16,
    /// Seed for every random choice (keys, refs, ids).
    #[arg(long)]
    seed: Option<u64>,
    /// Lifetime of the first QR ref, seconds (real: 60).
    #[arg(long, default_value_t = 60.0)]
    qr_timeout: f64,
    /// Lifetime of each later QR ref, seconds (real: 20).
    #[arg(long, default_value_t = 20.0)]
    qr_next_timeout: f64,
    /// Pause between the handshake and the first stanza, milliseconds (Baileys 6.7.24
    /// drops a stanza that arrives too soon).
    #[arg(long, default_value_t = 100)]
    first_stanza_delay_ms: u64,
    /// Pause before the post-pairing 515, milliseconds, as `MIN-MAX` or one value (real:
    /// about 300-600, `03-pairing-login.md` §6).
    #[arg(long, default_value = "300-600")]
    restart_delay_ms: String,
    /// How long the socket stays open after the post-pairing 515 for the client to close
    /// it first, milliseconds.
    #[arg(long, default_value_t = 500)]
    restart_close_grace_ms: u64,
    /// Serve HTTPS on the media port too (self-signed certificate, printed as
    /// `media_tls_cert_pem`), for clients such as Baileys.
    #[arg(long)]
    media_tls: bool,
    /// Do not stop when stdin closes.
    #[arg(long)]
    ignore_stdin: bool,
    /// The simulated phones onboard their companions after pairing: app-state sync key
    /// share, initial app-state patches, history sync (shared/protocol/08 §11). Per account:
    /// `PUT /accounts/{pn}/sync-switches`.
    #[arg(long)]
    phone_sync: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let first = Duration::try_from_secs_f64(args.qr_timeout).context("--qr-timeout")?;
    let each = Duration::try_from_secs_f64(args.qr_next_timeout).context("--qr-next-timeout")?;
    let (restart_min, restart_max) = {
        let (lo, hi) = args
            .restart_delay_ms
            .split_once('-')
            .unwrap_or((&args.restart_delay_ms, &args.restart_delay_ms));
        let lo: u64 = lo.trim().parse().context("--restart-delay-ms")?;
        let hi: u64 = hi.trim().parse().context("--restart-delay-ms")?;
        anyhow::ensure!(lo <= hi, "--restart-delay-ms: MIN must not exceed MAX");
        (Duration::from_millis(lo), Duration::from_millis(hi))
    };
    let mut config = SandboxConfig::default()
        .with_bind(args.bind, args.ws_port, args.control_port)
        .with_qr_windows(first, each)
        .with_first_stanza_delay(Duration::from_millis(args.first_stanza_delay_ms))
        .with_restart_delay(restart_min, restart_max)
        .with_restart_close_grace(Duration::from_millis(args.restart_close_grace_ms))
        .with_media_tls(args.media_tls)
        .with_phone_sync(args.phone_sync);
    if let Some(seed) = args.seed {
        config = config.with_seed(seed);
    }
    let sandbox = Sandbox::start(config)
        .await
        .context("starting the sandbox")?;
    let line = serde_json::json!({
        "ws_url": sandbox.ws_url(),
        "control_url": sandbox.control_url(),
        "media_url": sandbox.media_url(),
        "media_tls_cert_pem": sandbox.media_tls_cert_pem(),
        "trust_root_pub_b64": base64::engine::general_purpose::STANDARD.encode(sandbox.trust_root_key()),
    });
    println!("{line}");

    let stdin_closed = async {
        if args.ignore_stdin {
            std::future::pending::<()>().await;
        }
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 256];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    let sigterm = async {
        #[cfg(unix)]
        {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = stdin_closed => tracing::info!("stdin closed, stopping"),
        () = sigterm => tracing::info!("SIGTERM, stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C, stopping"),
    }
    sandbox.shutdown().await;
    Ok(())
}
