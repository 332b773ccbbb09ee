//! Many sessions in one process on one database, their writes group-committed.
//!
//! Shows `ClientBuilder::persist` with a `GroupCommitter`: every client keeps its state in
//! its own tree of one `SledDatabase` under `--data-dir`, and one committer thread makes
//! the writes of all of them durable, sharing each sled flush among the writes that queued
//! while the previous one ran. No client ever waits on a flush on a tokio worker, and
//! nothing a client sends or reports depends on a write that is not yet on disk.
//!
//! Offline only: `--sessions` accounts of an in-process wa-sandbox pair by QR (first run),
//! then each sends `--messages` texts to the next one in a ring, every text decrypted by its
//! recipient. The second run with the same `--data-dir` logs every session in without a QR.
//!
//! ```text
//! cargo run -p wa-examples --bin many_sessions -- --sessions 8 --messages 20
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use clap::Parser;
use wa_engine::store::{GroupCommitConfig, GroupCommitter, SledDatabase, Store};
use wa_engine::{Client, Event, Events, Jid};
use wa_examples::{DataDir, OfflineServer, init_logging};

/// Run several sessions on one sled database with group commit (offline).
#[derive(Debug, Parser)]
struct Args {
    /// Where the database and the sandbox state live.
    #[arg(long, default_value = "wa-example-data")]
    data_dir: std::path::PathBuf,
    /// How many sessions (accounts).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(2..=200))]
    sessions: u16,
    /// Texts each session sends to the next.
    #[arg(long, default_value_t = 10)]
    messages: usize,
}

/// Waits (at most 30 s) for the first event `pred` maps to `Some`.
async fn next_until<T>(
    events: &mut Events,
    mut pred: impl FnMut(&Event) -> Option<T>,
) -> anyhow::Result<T> {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .context("no event within 30 s")?
            .ok_or_else(|| anyhow!("the client stopped"))?;
        if let Some(t) = pred(&event) {
            return Ok(t);
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let args = Args::parse();
    let data = DataDir::new(&args.data_dir)?;
    let numbers: Vec<String> = (0..args.sessions)
        .map(|i| format!("1555003{i:04}"))
        .collect();
    let server = OfflineServer::start(&data, &numbers[0]).await?;
    let db =
        SledDatabase::open(args.data_dir.join("many-sessions")).context("opening the database")?;
    let committer = GroupCommitter::spawn(Arc::new(db.clone()), GroupCommitConfig::default());

    let mut clients = Vec::new();
    let mut qrs = 0;
    for number in &numbers {
        let phone = server.account(number)?;
        let store: Arc<dyn Store> = Arc::new(db.store(number)?);
        let (client, mut events) = Client::builder(store.clone())
            .persist(committer.persist_for(store))
            .url(server.ws_url())
            .trust_root(server.trust_root())
            .prekey_batch(30)
            .connect()
            .await?;
        let jid: Jid = next_until(&mut events, |e| match e {
            Event::Qr { code, .. } => {
                qrs += 1;
                phone.scan(code).map(drop).err().map(|e| Err(anyhow!(e)))
            }
            Event::Connected { jid } => Some(Ok(jid.clone())),
            _ => None,
        })
        .await??;
        clients.push((client, events, jid));
    }
    server.save()?;
    println!(
        "{} sessions connected ({qrs} QR codes scanned)",
        clients.len()
    );

    let before = committer.stats();
    let start = Instant::now();
    let n = clients.len();
    for i in 0..n {
        let to = clients[(i + 1) % n].2.to_non_ad();
        for m in 0..args.messages {
            clients[i]
                .0
                .send_text(&to, format!("ring {i} #{m}"))
                .await?;
        }
    }
    for (client, events, _) in &mut clients {
        let mut got = 0;
        while got < args.messages {
            next_until(events, |e| matches!(e, Event::Message(_)).then_some(())).await?;
            got += 1;
        }
        let _ = client;
    }
    let after = committer.stats();
    let total = n * args.messages;
    println!(
        "{total} messages delivered and decrypted in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    println!(
        "group commit: {} write batches made durable with {} flushes",
        after.batches - before.batches,
        after.flushes - before.flushes
    );
    for (client, _, _) in clients {
        client.shutdown().await;
    }
    server.shutdown().await;
    Ok(())
}
