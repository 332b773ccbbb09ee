//! Send a one-time password: draw a random numeric code, check that the number is on
//! WhatsApp, send the code in a templated message, and follow its delivery.
//!
//! Shows `Client::is_on_whatsapp` (a usync contact query: never send to a number that is
//! not registered) and `Client::send_text`. The code comes from the operating system's
//! random generator (`rand::rngs::SysRng`), uniform over all `--digits`-digit strings; it
//! is not printed (a real service would keep a hash of it to check what the user types).
//!
//! By default it runs offline against an in-process wa-sandbox: the recipient is a simulated
//! account with a wa-engine device that receives the message, and the example checks that
//! the code it reads there is the one it generated (`code round-tripped`):
//!
//! ```text
//! cargo run -p wa-examples --bin otp -- +15550007777
//! cargo run -p wa-examples --bin otp -- +15550007777 --template "Login code: {code}"
//! cargo run -p wa-examples --bin otp -- --url +15551234567        # a real account
//! ```

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use rand::TryRng as _;
use rand::rngs::SysRng;
use wa_engine::MessageStatus;
use wa_examples::{
    ConnectArgs, Linked, SimulatedPeer, connect_linked, init_logging, parse_recipient, wait_status,
};

/// Send a one-time password (offline against wa-sandbox unless --url is given).
#[derive(Debug, Parser)]
struct Args {
    /// The recipient's phone number in international form (`+15551234567`).
    phone: String,
    /// The message; `{code}` is replaced by the code.
    #[arg(
        long,
        default_value = "Your wa-rs verification code is {code}. It expires in 10 minutes; \
                         do not share it."
    )]
    template: String,
    /// Number of digits of the code (4 to 9).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(4..=9))]
    digits: u32,
    /// Sandbox mode: do not create the recipient's account, to see the "not on WhatsApp"
    /// path.
    #[arg(long)]
    sandbox_unregistered: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// A uniformly random code of `digits` decimal digits (leading zeros kept), from the
/// operating system's generator. Rejection sampling: `u32` values at or above the largest
/// multiple of 10^digits are drawn again, so no code is likelier than another.
fn generate_code(digits: u32) -> anyhow::Result<String> {
    let modulus = 10_u32.pow(digits);
    let limit = u32::MAX - u32::MAX % modulus;
    loop {
        let draw = SysRng
            .try_next_u32()
            .context("the operating system's random generator failed")?;
        if draw < limit {
            return Ok(format!(
                "{:0width$}",
                draw % modulus,
                width = digits as usize
            ));
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let args = Args::parse();
    anyhow::ensure!(
        args.template.contains("{code}"),
        "the template must contain {{code}}"
    );
    let to = parse_recipient(&args.phone)?;
    anyhow::ensure!(
        to.is_pn() && to.device_part().is_none(),
        "the recipient must be a phone number"
    );
    let mut linked = connect_linked(&args.connect, "wa-rs otp").await?;

    let mut peer = None;
    if let Some(server) = &linked.server
        && !args.sandbox_unregistered
    {
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

    let outcome = send_otp(&mut linked, peer.as_mut(), &args).await;
    if let Some(peer) = peer {
        peer.shutdown().await;
    }
    linked.shutdown().await?;
    outcome
}

async fn send_otp(
    linked: &mut Linked,
    peer: Option<&mut SimulatedPeer>,
    args: &Args,
) -> anyhow::Result<()> {
    let wait = Duration::from_secs(20);
    let found = linked
        .client
        .is_on_whatsapp(&[&args.phone])
        .await
        .context("checking the number")?;
    let Some(jid) = found.into_iter().next().and_then(|(_, jid)| jid) else {
        anyhow::bail!("{} is not on WhatsApp: no code sent", args.phone);
    };
    println!("{} is on WhatsApp as {jid}", args.phone);

    let code = generate_code(args.digits)?;
    println!("generated a {}-digit code", args.digits);
    let text = args.template.replace("{code}", &code);
    let id = linked.client.send_text(&jid, text).await?;
    println!("sent the code in message {id} to {jid}");

    if let Some(peer) = peer {
        let got = peer
            .next_message(Some(&id), wait)
            .await
            .context("the sandbox recipient did not receive the code")?;
        // What a user would do: read the digits out of the message.
        let received = got
            .text()
            .unwrap_or_default()
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == args.digits as usize)
            .unwrap_or_default()
            .to_owned();
        anyhow::ensure!(
            received == code,
            "the sandbox recipient read another code than the one sent"
        );
        println!("sandbox recipient received the message: code round-tripped");
    }
    let status = wait_status(&mut linked.events, &id, MessageStatus::Delivered, wait).await;
    if status.is_none_or(|s| s < MessageStatus::Delivered) {
        println!("not delivered within {} s", wait.as_secs());
    }
    Ok(())
}
