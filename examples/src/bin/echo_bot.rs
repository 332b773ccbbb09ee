//! An echo bot: answers every incoming text with the same text, as a reply quoting it, and
//! marks the message read.
//!
//! Shows the receive side: `Event::Message` (already decrypted, delivery receipt already
//! sent), replying with `message::content::extended_text` and a `Quote`, and
//! `Client::mark_read` (the sender sees the blue ticks). It runs until Ctrl-C, or until it
//! has answered `--max-messages` messages.
//!
//! By default it runs offline against an in-process wa-sandbox (the device is paired by the
//! sandbox's phone on the first run, or reused from `pair_qr` with the same `--data-dir`).
//! It prints the sandbox's control API URL: another program can create an account there,
//! pair a client (`POST /accounts`, `POST /accounts/{number}/scan`) and message the bot;
//! `examples/tests/run.rs` does exactly that.
//!
//! ```text
//! cargo run -p wa-examples --bin echo_bot
//! cargo run -p wa-examples --bin echo_bot -- --url      # a real account: message it from a phone
//! ```

use std::time::Duration;

use clap::Parser;
use wa_engine::message::content::{self, Quote};
use wa_engine::{Event, IncomingMessage, MessageId};
use wa_examples::{ConnectArgs, Linked, connect_linked, init_logging};

/// Echo every incoming text as a quoted reply (offline against wa-sandbox unless --url).
#[derive(Debug, Parser)]
struct Args {
    /// Stop after answering this many messages (default: run until Ctrl-C).
    #[arg(long)]
    max_messages: Option<u64>,
    #[command(flatten)]
    connect: ConnectArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let args = Args::parse();
    let mut linked = connect_linked(&args.connect, "wa-rs echo_bot").await?;
    if let Some(server) = &linked.server {
        println!("sandbox WebSocket: {}", server.ws_url());
        println!("sandbox control API: {}", server.control_url());
    }
    println!(
        "echo bot ready: message {} (Ctrl-C to stop)",
        linked.jid.to_non_ad()
    );

    let outcome = serve(&mut linked, args.max_messages).await;
    linked.shutdown().await?;
    outcome
}

/// Answers messages until Ctrl-C, `max` answers, or the client stops.
async fn serve(linked: &mut Linked, max: Option<u64>) -> anyhow::Result<()> {
    let mut answered = 0_u64;
    while max.is_none_or(|max| answered < max) {
        let event = tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                println!("Ctrl-C: stopping");
                break;
            }
            event = linked.events.recv() => event,
        };
        match event {
            Some(Event::Message(message)) => {
                if echo(linked, &message).await? {
                    answered += 1;
                }
            }
            Some(Event::Disconnected {
                reason,
                reconnecting,
            }) => println!("disconnected: {reason} (reconnecting: {reconnecting})"),
            Some(Event::Connected { jid }) => println!("connected as {jid}"),
            Some(Event::LoggedOut { reason }) => anyhow::bail!("logged out: {reason}"),
            Some(Event::Stopped) | None => anyhow::bail!("the client stopped"),
            Some(_) => {}
        }
    }
    println!("answered {answered} message(s)");
    // Shutdown flushes our last read receipt; in sandbox mode the sandbox stops with this
    // process right after, so give it a moment to route the receipt to the sender.
    if linked.server.is_some() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Replies to one message if it is someone else's text; returns whether it did.
async fn echo(linked: &Linked, message: &IncomingMessage) -> anyhow::Result<bool> {
    let info = &message.info;
    // Our own messages (sent from another of our devices, or this bot's earlier replies)
    // are not answered, or two bots on one account would echo forever.
    if info.from_me {
        return Ok(false);
    }
    let Some(text) = message.text() else {
        println!("{} from {}: not a text, ignored", info.id, info.sender);
        return Ok(false);
    };
    let reply = content::extended_text(
        text,
        Some(Quote {
            id: info.id.clone(),
            sender: Some(info.sender.clone()),
            message: Some(message.message.clone()),
        }),
        &[],
    );
    let reply_id = linked.client.send_message(&info.chat, reply).await?;
    // In groups the receipt names the participant who sent it (05 §10.3).
    let sender = info.is_group.then_some(&info.sender);
    linked
        .client
        .mark_read(&info.chat, sender, &[MessageId(info.id.clone())])
        .await?;
    println!(
        "echoed {} from {} as {reply_id} (marked read): {text}",
        info.id, info.sender
    );
    Ok(true)
}
