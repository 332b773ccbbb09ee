//! Link a new device by QR code, the way WhatsApp Web does, and stay linked.
//!
//! Shows the whole pairing lifecycle of `wa_engine::Client`: the `Qr` events (printed and
//! drawn in the terminal), the phone's scan, `PairSuccess`, the 515 restart the server asks
//! for, and `Connected`. Everything is kept in a sled store, so running it again with the
//! same `--data-dir` connects straight away, without a QR.
//!
//! By default it runs offline against an in-process wa-sandbox whose simulated phone scans
//! the QR:
//!
//! ```text
//! cargo run -p wa-examples --bin pair_qr                 # pairs, prints "connected as ..."
//! cargo run -p wa-examples --bin pair_qr                 # again: connected, no QR
//! ```
//!
//! With `--url` it talks to a real server and waits for you to scan the QR with WhatsApp
//! (Settings > Linked devices > Link a device):
//!
//! ```text
//! cargo run -p wa-examples --bin pair_qr -- --url        # wss://web.whatsapp.com/ws/chat
//! cargo run -p wa-examples --bin pair_qr -- --url wss://example.test/ws/chat --data-dir ./me
//! ```

use std::path::PathBuf;

use clap::Parser;
use wa_engine::{DEFAULT_URL, Event};
use wa_examples::{DataDir, OfflineServer, connect_client, init_logging, render_qr};

/// Link a device by QR code (offline against wa-sandbox unless --url is given).
#[derive(Debug, Parser)]
struct Args {
    /// Connect to this server instead of the in-process sandbox; without a value, WhatsApp's
    /// production endpoint. You scan the QR with your phone.
    #[arg(long, num_args = 0..=1, default_missing_value = DEFAULT_URL)]
    url: Option<String>,
    /// Where the device's credentials (sled) and the sandbox's state are kept.
    #[arg(long, default_value = "wa-data")]
    data_dir: PathBuf,
    /// The sandbox account's phone number (sandbox mode only).
    #[arg(long, default_value = "15550001234")]
    sandbox_phone: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let args = Args::parse();
    let data = DataDir::new(&args.data_dir)?;

    // Sandbox mode: a simulated server and phone in this process. Each mode has its own store.
    let server = match args.url {
        Some(_) => None,
        None => Some(OfflineServer::start(&data, &args.sandbox_phone).await?),
    };
    let (client, mut events) =
        connect_client(&data, server.as_ref(), args.url.as_deref(), "wa-rs pair_qr").await?;

    let outcome = loop {
        let Some(event) = events.recv().await else {
            break Err(anyhow::anyhow!("the client stopped"));
        };
        match event {
            Event::Qr { code, expires_in } => {
                println!("QR code (valid {} s): {code}", expires_in.as_secs());
                println!("{}", render_qr(&code)?);
                match &server {
                    Some(server) => {
                        let link = server.phone().scan(&code)?;
                        println!(
                            "sandbox phone: scanned the QR code (device {})",
                            link.device
                        );
                    }
                    None => println!(
                        "scan it with WhatsApp on your phone: Settings > Linked devices > Link a device"
                    ),
                }
            }
            Event::PairSuccess { jid, platform, .. } => {
                println!(
                    "paired as {jid} (phone platform: {platform}); the server restarts the connection"
                );
            }
            Event::Disconnected {
                reason,
                reconnecting,
            } => println!("disconnected: {reason} (reconnecting: {reconnecting})"),
            Event::Connected { jid } => {
                println!("connected as {jid}");
                break Ok(());
            }
            Event::LoggedOut { reason } => break Err(anyhow::anyhow!("logged out: {reason}")),
            Event::Stopped => break Err(anyhow::anyhow!("the client stopped")),
            _ => {}
        }
    };
    client.shutdown().await;
    if let Some(server) = server {
        // The sandbox remembers the linked device for the next run.
        server.save()?;
        server.shutdown().await;
    }
    outcome?;
    println!("run again with the same --data-dir: it connects without a QR");
    Ok(())
}
