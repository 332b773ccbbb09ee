//! End-to-end messaging figures (issue 4), printed rather than sampled by criterion
//! (each run needs a sandbox, pairing and hundreds of sockets):
//!
//! 1. **1:1 throughput**: one engine client sends `N` texts to another through wa-sandbox
//!    on loopback (both clients and the sandbox in this process, one multi-threaded tokio
//!    runtime), with up to `WINDOW` sends awaiting their server ack at once. Every message
//!    is decrypted by the receiver, which sends its delivery receipt and ack; the figure is
//!    `N / (time from the first send until the receiver decrypted the last one)`. Run
//!    twice: with `MemoryStore` on both ends (writes applied in place, `InlinePersist`), and
//!    with sled on both ends (two trees of one `SledDatabase` in a temporary directory, every
//!    write made durable by one `GroupCommitter` before what depends on it leaves, as in
//!    wa-server); the sled run also prints flushes per message.
//! 2. **Memory per idle client**: 1,000 engine clients (`MemoryStore`, default 812-key
//!    prekey batch) paired to a sandbox running in a *child process*, all connected and
//!    idle in this process; the figure is the growth of this process's resident set
//!    (`VmRSS`) divided by the number of clients.
//!
//! The throughput figure also reports **heap allocations per message**: a counting global
//! allocator (over the system allocator) counts every `alloc`/`realloc` in the whole process
//! (both clients, the sandbox, the runtime) from the first send until the last message was
//! decrypted, divided by `N`. It is what one message costs the process end to end: the
//! sender's encrypt and send, the server's routing, the receiver's decrypt, receipt and ack.
//!
//! Run: `cargo bench -p wa-benches --bench messaging` (env `WA_BENCH_MSGS`,
//! `WA_BENCH_WINDOW`, `WA_BENCH_CLIENTS`, `WA_BENCH_PREKEYS` override the sizes).

use std::alloc::System;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use wa_engine::noise::TrustRoot;
use wa_engine::store::{GroupCommitConfig, GroupCommitter, InlinePersist, Persist, SledDatabase};
use wa_engine::{Client, Event, Events, Jid, MemoryStore, Store};
use wa_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

const CHILD_ENV: &str = "WA_BENCH_SANDBOX_CHILD";

/// The system allocator, counting allocations and allocated bytes (stats_alloc).
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// (allocations, bytes) so far in this process.
fn alloc_counts() -> (u64, u64) {
    let stats = GLOBAL.stats();
    (
        (stats.allocations + stats.reallocations) as u64,
        (stats.bytes_allocated + stats.bytes_reallocated.max(0) as usize) as u64,
    )
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    if std::env::var_os(CHILD_ENV).is_some() {
        return sandbox_child();
    }
    // `cargo test --benches` runs bench binaries with `--bench`-less args: keep it short.
    let quick = !std::env::args().any(|a| a == "--bench");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // Memory first, in a fresh process: memory freed by an earlier run would be reused
    // and hide part of the growth.
    let clients = env_or("WA_BENCH_CLIENTS", if quick { 20 } else { 1000 });
    let prekeys = env_or(
        "WA_BENCH_PREKEYS",
        wa_engine::prekeys::UPLOAD_BATCH as usize,
    );
    rt.block_on(memory(clients, prekeys as u32))?;
    let n = env_or("WA_BENCH_MSGS", if quick { 200 } else { 20_000 });
    let window = env_or("WA_BENCH_WINDOW", 256);
    rt.block_on(throughput(n, window, Backend::Memory))?;
    rt.block_on(throughput(n, window, Backend::Sled))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Shared

async fn next_until<T>(
    events: &mut Events,
    mut pred: impl FnMut(&Event) -> Option<T>,
) -> anyhow::Result<T> {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(60), events.recv())
            .await
            .context("event timeout")?
            .ok_or_else(|| anyhow!("events ended"))?;
        if let Some(t) = pred(&e) {
            return Ok(t);
        }
    }
}

/// Waits until the client's first prekey upload was accepted.
async fn prekeys_uploaded(store: &dyn Store) -> anyhow::Result<()> {
    for _ in 0..3000 {
        if store
            .prekey_counters()?
            .unwrap_or_default()
            .first_unuploaded_id
            > 1
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(anyhow!("prekeys never uploaded"))
}

// ---------------------------------------------------------------------------------------
// 1. Throughput

struct Peer {
    client: Client,
    events: Events,
    jid: Jid,
}

/// Where the two clients of a throughput run keep their state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    /// `MemoryStore`, writes applied in place (`InlinePersist`).
    Memory,
    /// Two trees of one `SledDatabase`, writes committed by one `GroupCommitter`.
    Sled,
}

/// The stores of one throughput run.
struct Stores {
    /// Keeps the sled directory alive for the run.
    _dir: Option<tempfile::TempDir>,
    db: Option<SledDatabase>,
    committer: Option<GroupCommitter>,
}

impl Stores {
    fn new(backend: Backend) -> anyhow::Result<Self> {
        Ok(match backend {
            Backend::Memory => Self {
                _dir: None,
                db: None,
                committer: None,
            },
            Backend::Sled => {
                let dir = tempfile::tempdir()?;
                let db = SledDatabase::open(dir.path().join("engine"))?;
                let committer =
                    GroupCommitter::spawn(Arc::new(db.clone()), GroupCommitConfig::default());
                Self {
                    _dir: Some(dir),
                    db: Some(db),
                    committer: Some(committer),
                }
            }
        })
    }

    /// A store and its persist handle for the client named `name`.
    fn open(&self, name: &str) -> anyhow::Result<(Arc<dyn Store>, Arc<dyn Persist>)> {
        match (&self.db, &self.committer) {
            (Some(db), Some(committer)) => {
                let store: Arc<dyn Store> = Arc::new(db.store(name)?);
                let persist = committer.persist_for(store.clone());
                Ok((store, persist))
            }
            _ => {
                let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
                let persist: Arc<dyn Persist> = Arc::new(InlinePersist::new(store.clone()));
                Ok((store, persist))
            }
        }
    }
}

async fn pair_local(sb: &SandboxHandle, stores: &Stores, number: &str) -> anyhow::Result<Peer> {
    let phone = sb.create_account(number)?;
    let (store, persist) = stores.open(number)?;
    let (client, mut events) = Client::builder(store.clone())
        .persist(persist)
        .url(sb.ws_url())
        .trust_root(sb.trust_root())
        .prekey_batch(50)
        .event_capacity(4096)
        .connect()
        .await?;
    let jid = next_until(&mut events, |e| match e {
        Event::Qr { code, .. } => {
            phone.scan(code).expect("scan");
            None
        }
        Event::Connected { jid } => Some(jid.clone()),
        _ => None,
    })
    .await?;
    prekeys_uploaded(store.as_ref()).await?;
    Ok(Peer {
        client,
        events,
        jid,
    })
}

async fn throughput(n: usize, window: usize, backend: Backend) -> anyhow::Result<()> {
    let sb = Sandbox::start(SandboxConfig::default().with_seed(1)).await?;
    let stores = Stores::new(backend)?;
    let alice = pair_local(&sb, &stores, "15550000001").await?;
    let mut bob = pair_local(&sb, &stores, "15550000002").await?;
    let (alice_user, bob_user) = (alice.jid.to_non_ad(), bob.jid.to_non_ad());
    let mut alice_events = alice.events;
    // Establish the session both ways (the measured messages are all `msg`).
    alice.client.send_text(&bob_user, "warm-up").await?;
    next_until(&mut bob.events, |e| {
        matches!(e, Event::Message(_)).then_some(())
    })
    .await?;
    bob.client.send_text(&alice_user, "warm-up").await?;
    next_until(&mut alice_events, |e| {
        matches!(e, Event::Message(_)).then_some(())
    })
    .await?;
    // Alice's statuses (sent, delivered) must be read or her driver waits.
    let drain = tokio::spawn(async move { while alice_events.recv().await.is_some() {} });

    let receiver = tokio::spawn(async move {
        let mut got = 0;
        while got < n {
            match bob.events.recv().await {
                Some(Event::Message(_)) => got += 1,
                Some(Event::UndecryptableMessage { .. }) => return Err(anyhow!("undecryptable")),
                Some(_) => {}
                None => return Err(anyhow!("events ended")),
            }
        }
        Ok((Instant::now(), bob))
    });
    let flushes_before = stores.committer.as_ref().map(|c| c.stats());
    let (allocs_before, bytes_before) = alloc_counts();
    let start = Instant::now();
    let mut inflight = tokio::task::JoinSet::new();
    for i in 0..n {
        if inflight.len() >= window
            && let Some(r) = inflight.join_next().await
        {
            r??;
        }
        let client = alice.client.clone();
        let to = bob_user.clone();
        inflight.spawn(async move { client.send_text(&to, format!("message number {i}")).await });
    }
    while let Some(r) = inflight.join_next().await {
        r??;
    }
    let acked = start.elapsed();
    let (end, bob) = receiver.await??;
    let elapsed = end - start;
    let (allocs_after, bytes_after) = alloc_counts();
    let store_name = match backend {
        Backend::Memory => "MemoryStore",
        Backend::Sled => "sled + group commit",
    };
    println!(
        "messaging/1:1 throughput ({store_name}): {n} messages, window {window}: {:.0} msg/s decrypted by the receiver \
         ({:.1} µs/msg; all server-acked after {:.3} s, last decrypted after {:.3} s)",
        n as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / n as f64,
        acked.as_secs_f64(),
        elapsed.as_secs_f64(),
    );
    // Counted until the receiver task saw the last message (a few allocations of the
    // sender's later acks may fall outside).
    println!(
        "messaging/1:1 allocations: {:.1} heap allocations/msg, {:.0} bytes allocated/msg \
         (whole process: sender, sandbox, receiver)",
        (allocs_after - allocs_before) as f64 / n as f64,
        (bytes_after - bytes_before) as f64 / n as f64,
    );
    if let (Some(before), Some(committer)) = (flushes_before, stores.committer.as_ref()) {
        let after = committer.stats();
        println!(
            "messaging/1:1 durability (sled): {:.3} flushes/msg, {:.2} write batches/msg \
             (both clients, one committer)",
            (after.flushes - before.flushes) as f64 / n as f64,
            (after.batches - before.batches) as f64 / n as f64,
        );
    }
    alice.client.shutdown().await;
    bob.client.shutdown().await;
    drain.abort();
    sb.shutdown().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 2. Memory per idle client

fn rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS"))
}

/// The sandbox child: prints `<ws_url> <trust root hex>`, then answers `ACCOUNT <pn>` and
/// `SCAN <pn> <qr>` lines with `OK` / `ERR <why>` until stdin closes.
fn sandbox_child() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let sb = Sandbox::start(SandboxConfig::default().with_seed(2)).await?;
        let root: String = sb
            .trust_root_key()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        println!("{} {root}", sb.ws_url());
        std::io::stdout().flush()?;
        // Lines are handled as they come: read them on a blocking thread, answer here.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        while let Some(line) = rx.recv().await {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let reply = match parts.as_slice() {
                ["ACCOUNT", pn] => sb.create_account(pn).map(|_| ()).map_err(|e| e.to_string()),
                ["SCAN", pn, qr] => sb
                    .phone(pn)
                    .map_err(|e| e.to_string())
                    .and_then(|p| p.scan(qr).map(|_| ()).map_err(|e| e.to_string())),
                _ => Err("bad command".to_owned()),
            };
            match reply {
                Ok(()) => println!("OK"),
                Err(e) => println!("ERR {e}"),
            }
            std::io::stdout().flush()?;
        }
        sb.shutdown().await;
        anyhow::Ok(())
    })
}

struct Child {
    proc: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Child {
    fn ask(&mut self, line: &str) -> anyhow::Result<()> {
        writeln!(self.stdin, "{line}")?;
        self.stdin.flush()?;
        let mut reply = String::new();
        self.stdout.read_line(&mut reply)?;
        if reply.trim() == "OK" {
            Ok(())
        } else {
            Err(anyhow!("sandbox child: {}", reply.trim()))
        }
    }
}

async fn memory(count: usize, prekeys: u32) -> anyhow::Result<()> {
    let mut proc = Command::new(std::env::current_exe()?)
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdin = proc.stdin.take().context("stdin")?;
    let mut stdout = BufReader::new(proc.stdout.take().context("stdout")?);
    let mut first = String::new();
    stdout.read_line(&mut first)?;
    let mut it = first.split_whitespace();
    let url = it.next().context("ws url")?.to_owned();
    let root_hex = it.next().context("root")?;
    let mut root = [0_u8; 32];
    for (i, b) in root.iter_mut().enumerate() {
        *b = u8::from_str_radix(root_hex.get(2 * i..2 * i + 2).context("root hex")?, 16)?;
    }
    let trust = TrustRoot::new(root, 0);
    let child = Arc::new(std::sync::Mutex::new(Child {
        proc,
        stdin,
        stdout,
    }));

    let before = rss_kib()?;
    let mut clients = Vec::with_capacity(count);
    let started = Instant::now();
    // Pair in small parallel batches.
    for chunk in (0..count).collect::<Vec<_>>().chunks(25) {
        let mut set = tokio::task::JoinSet::new();
        for &i in chunk {
            let (url, child) = (url.clone(), child.clone());
            set.spawn(async move {
                let number = format!("1666{i:07}");
                let c = child.clone();
                let n2 = number.clone();
                tokio::task::spawn_blocking(move || {
                    c.lock()
                        .map_err(|_| anyhow!("poisoned"))?
                        .ask(&format!("ACCOUNT {n2}"))
                })
                .await??;
                let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
                let (client, mut events) = Client::builder(store.clone())
                    .url(url)
                    .trust_root(trust)
                    .prekey_batch(prekeys)
                    .connect()
                    .await?;
                loop {
                    let e = tokio::time::timeout(Duration::from_secs(60), events.recv())
                        .await
                        .context("pairing timeout")?
                        .ok_or_else(|| anyhow!("events ended"))?;
                    match e {
                        Event::Qr { code, .. } => {
                            let c = child.clone();
                            let line = format!("SCAN {number} {code}");
                            tokio::task::spawn_blocking(move || {
                                c.lock().map_err(|_| anyhow!("poisoned"))?.ask(&line)
                            })
                            .await??;
                        }
                        Event::Connected { .. } => break,
                        _ => {}
                    }
                }
                prekeys_uploaded(store.as_ref()).await?;
                anyhow::Ok((client, events, store))
            });
        }
        while let Some(r) = set.join_next().await {
            clients.push(r??);
        }
        if clients.len() % 100 == 0 {
            eprintln!("memory bench: {} clients connected", clients.len());
        }
    }
    let paired_in = started.elapsed();
    // Let the connections settle (offline markers, unified_session, allocator caches).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib()?;
    let per = (after.saturating_sub(before)) as f64 / count as f64;
    println!(
        "messaging/idle memory: {count} connected clients (prekey batch {prekeys}) paired in {:.1} s; \
         RSS {before} KiB -> {after} KiB: {per:.1} KiB per client",
        paired_in.as_secs_f64()
    );
    for (client, _, _) in &clients {
        client.shutdown().await;
    }
    drop(clients);
    if let Ok(mut c) = child.lock() {
        let _ = c.proc.kill();
        let _ = c.proc.wait();
    }
    Ok(())
}
