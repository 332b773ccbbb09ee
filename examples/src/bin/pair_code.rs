//! Link a new device with an 8-character pairing code instead of a QR code, and stay linked.
//!
//! Shows `Client::request_pairing_code`: as soon as the unpaired client is registering (its
//! first `Qr` event), it asks for a code for a phone number; the user types the code on that
//! phone (Linked devices > Link with phone number instead); then come `PairSuccess`, the 515
//! restart and `Connected`, as with a QR. Credentials are kept in a sled store, so running it
//! again with the same `--data-dir` connects without any code.
//!
//! By default it runs offline against an in-process wa-sandbox whose simulated phone types
//! the code:
//!
//! ```text
//! cargo run -p wa-examples --bin pair_code               # prints the code, "connected as ..."
//! cargo run -p wa-examples --bin pair_code               # again: connected, no code
//! ```
//!
//! With `--url` it talks to a real server; `--phone` is then your own number and you type
//! the printed code on your phone:
//!
//! ```text
//! cargo run -p wa-examples --bin pair_code -- --url --phone +15551234567
//! ```

use std::path::PathBuf;

use clap::Parser;
use wa_engine::{DEFAULT_URL, Event};
use wa_examples::{DataDir, OfflineServer, connect_client, init_logging};

/// Link a device with a pairing code (offline against wa-sandbox unless --url is given).
#[derive(Debug, Parser)]
struct Args {
    /// Connect to this server instead of the in-process sandbox; without a value, WhatsApp's
    /// production endpoint. Needs --phone.
    #[arg(long, num_args = 0..=1, default_missing_value = DEFAULT_URL, requires = "phone")]
    url: Option<String>,
    /// The phone number of the account to link to, in international form (`+` and
    /// separators are ignored). In sandbox mode, the sandbox account.
    #[arg(long)]
    phone: Option<String>,
    /// Where the device's credentials (sled) and the sandbox's state are kept.
    #[arg(long, default_value = "wa-data")]
    data_dir: PathBuf,
}

/// The sandbox account's number when `--phone` is not given.
const SANDBOX_PHONE: &str = "15550004321";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let args = Args::parse();
    let data = DataDir::new(&args.data_dir)?;
    let phone_number = args
        .phone
        .clone()
        .unwrap_or_else(|| SANDBOX_PHONE.to_owned());

    // Sandbox mode: a simulated server and phone in this process. Each mode has its own store.
    let server = match args.url {
        Some(_) => None,
        None => {
            let digits: String = phone_number.chars().filter(char::is_ascii_digit).collect();
            Some(OfflineServer::start(&data, &digits).await?)
        }
    };
    let (client, mut events) = connect_client(
        &data,
        server.as_ref(),
        args.url.as_deref(),
        "wa-rs pair_code",
    )
    .await?;

    let mut code_requested = false;
    let outcome = loop {
        let Some(event) = events.recv().await else {
            break Err(anyhow::anyhow!("the client stopped"));
        };
        match event {
            // The device is unpaired and registering: ask for a code once (the QR codes the
            // server keeps issuing are not shown).
            Event::Qr { .. } if !code_requested => {
                code_requested = true;
                println!("unpaired: requesting a pairing code for +{phone_number}");
                let code = client.request_pairing_code(&phone_number).await?;
                println!("pairing code: {code}");
                match &server {
                    Some(server) => {
                        server.phone().enter_code(&code)?;
                        println!("sandbox phone: entered the pairing code");
                    }
                    None => println!(
                        "on your phone: Settings > Linked devices > Link a device > \
                         Link with phone number instead, then type the code"
                    ),
                }
            }
            Event::PairSuccess { jid, platform, .. } => println!(
                "paired as {jid} (phone platform: {platform}); the server restarts the connection"
            ),
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
    println!("run again with the same --data-dir: it connects without a code");
    Ok(())
}
