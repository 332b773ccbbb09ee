//! Send a text message and follow it from the server's ack to the recipient's delivery
//! receipt.
//!
//! Shows `Client::send_text` (usync device list, prekey bundles, Signal sessions and
//! fan-out to every device of the recipient and our own other devices all happen inside),
//! the message id it returns, and the `MessageStatus` events that follow: `sent` when the
//! server acked it, `delivered` when a recipient device sent its receipt.
//!
//! By default it runs offline against an in-process wa-sandbox. The device is paired by the
//! sandbox's phone on the first run (or reused from `pair_qr` with the same `--data-dir`),
//! and the recipient is a simulated account of its own with a wa-engine device that really
//! receives and decrypts the message:
//!
//! ```text
//! cargo run -p wa-examples --bin send_text -- +15550009876 "hello from wa-rs"
//! ```
//!
//! With `--url` it talks to a real server (pair first, e.g. with `pair_qr -- --url`, using
//! the same `--data-dir`):
//!
//! ```text
//! cargo run -p wa-examples --bin send_text -- --url +15551234567 "hello"
//! cargo run -p wa-examples --bin send_text -- --url 15551234567@s.whatsapp.net "hello"
//! ```

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use wa_engine::MessageStatus;
use wa_examples::{
    ConnectArgs, SimulatedPeer, connect_linked, init_logging, parse_recipient, wait_status,
};

/// Send a text message (offline against wa-sandbox unless --url is given).
#[derive(Debug, Parser)]
struct Args {
    /// The recipient: a phone number in international form (`+15551234567`) or a JID
    /// (`15551234567@s.whatsapp.net`, a group `...@g.us`).
    to: String,
    /// The text to send.
    text: String,
    /// How long to wait for the delivery receipt, in seconds.
    #[arg(long, default_value_t = 20)]
    wait: u64,
    #[command(flatten)]
    connect: ConnectArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let args = Args::parse();
    let to = parse_recipient(&args.to)?;
    let mut linked = connect_linked(&args.connect, "wa-rs send_text").await?;

    // Sandbox mode: the recipient is a simulated account with a device of its own.
    let mut peer = None;
    if let Some(server) = &linked.server {
        if !to.is_user() || to.same_user(&linked.jid) {
            linked.shutdown().await?;
            anyhow::bail!("in sandbox mode the recipient must be another phone number or user JID");
        }
        match SimulatedPeer::start(server, &linked.data, to.user()).await {
            Ok(p) => {
                println!("sandbox recipient online as {}", p.jid);
                peer = Some(p);
            }
            Err(e) => {
                linked.shutdown().await?;
                return Err(e);
            }
        }
    }

    let outcome = async {
        let id = linked
            .client
            .send_text(&to, &args.text)
            .await
            .with_context(|| format!("sending to {to}"))?;
        println!("sent message {id} to {to}");
        if let Some(peer) = &mut peer {
            let got = peer
                .next_message(Some(&id), Duration::from_secs(args.wait))
                .await
                .context("the sandbox recipient did not receive the message")?;
            println!(
                "sandbox recipient received {} from {}: {}",
                got.info.id,
                got.info.sender,
                got.text().unwrap_or_default()
            );
        }
        let status = wait_status(
            &mut linked.events,
            &id,
            MessageStatus::Delivered,
            Duration::from_secs(args.wait),
        )
        .await;
        if status.is_none_or(|s| s < MessageStatus::Delivered) {
            println!(
                "not delivered within {} s: the recipient's devices may be offline; the server \
                 keeps the message for them",
                args.wait
            );
        }
        anyhow::Ok(())
    }
    .await;

    if let Some(peer) = peer {
        peer.shutdown().await;
    }
    linked.shutdown().await?;
    outcome
}
