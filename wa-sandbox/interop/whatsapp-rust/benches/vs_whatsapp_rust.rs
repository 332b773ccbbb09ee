//! Our engine against whatsapp-rust 0.7 (crates.io `whatsapp-rust`, oxidezap) in one run
//! (issue 12), both through wa-sandbox on loopback, printed rather than sampled by criterion:
//!
//! 1. **Memory per idle connected client.** For each side a fresh child process of this
//!    binary pairs `WR_BENCH_CLIENTS` clients (default 200) by QR, waits until each is
//!    connected and its prekeys are on the server, lets them settle (`WR_BENCH_SETTLE_MS`,
//!    default 3000) and reports the growth of its resident set (`VmRSS`) divided by the
//!    number of clients. The sandbox runs in a grandchild process, so only clients are
//!    counted; each side starts from a process that never held the other side's memory.
//!    Pairing runs 25 clients at a time on both sides; every client's event stream is
//!    drained by a task, as an application would.
//!    - ours: `wa_engine::Client` with `MemoryStore` committed through `InlinePersist`,
//!      default prekey batch, as in `wa-benches`'s `messaging` bench;
//!    - theirs: whatsapp-rust's `Bot` with its `SqliteStore` (default, low-memory
//!      configuration) on an in-memory SQLite database per client
//!      (`file:memdb_…?mode=memory&cache=shared`), the closest thing it offers to
//!      `MemoryStore`; `WR_BENCH_STORE=file` puts each client's database in a temp
//!      directory instead (then SQLite's page cache, not the whole database, is in RSS).
//! 2. **1:1 throughput.** In this process, one sandbox per side and round: two clients of
//!    the same side paired to two accounts; after a warm-up message each way (so every
//!    measured message is a `msg`, not a `pkmsg`), the sender sends `WR_BENCH_MSGS` texts
//!    (default 5000) with at most `WR_BENCH_WINDOW` (default 64) send calls outstanding at
//!    once; the receiver counts the texts it decrypted. The figure is messages divided by
//!    the time from the first send until the receiver reported the last one. A send call
//!    ends when the library's send future resolves: ours after the server's ack, theirs
//!    when whatsapp-rust's `Client::send_message` returns. Sides alternate over
//!    `WR_BENCH_ROUNDS` rounds (default 3) and the median is compared.
//!
//! Both sides are built with the same profile in one binary. With
//! `--profile interop-bench` (workspace `Cargo.toml`) every crate is at opt-level 1, the
//! shared crypto crates at 3, which keeps whatsapp-rust's cold build down.
//!
//! Run: `cargo bench -p wa-interop-whatsapp-rust --bench vs_whatsapp_rust --profile interop-bench`

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use wa_engine::noise::TrustRoot;
use wa_engine::store::InlinePersist;
use wa_engine::{Client, Event, Events, Jid, MemoryStore, Store};
use wa_interop_whatsapp_rust::{PeerEvent, WaRust};
use wa_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

const ROLE_ENV: &str = "WR_BENCH_ROLE";
const STEP: Duration = Duration::from_secs(120);
const TEXT_PREFIX: &str = "message number ";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Ours,
    Theirs,
}

impl Side {
    fn role(self) -> &'static str {
        match self {
            Self::Ours => "mem-ours",
            Self::Theirs => "mem-theirs",
        }
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    match std::env::var(ROLE_ENV).ok().as_deref() {
        Some("sandbox") => return sandbox_child(),
        Some("mem-ours") => return memory_child(Side::Ours),
        Some("mem-theirs") => return memory_child(Side::Theirs),
        Some(other) => bail!("unknown {ROLE_ENV} {other}"),
        None => {}
    }
    // Without `--bench` (e.g. `cargo test --benches`) keep it short.
    let quick = !std::env::args().any(|a| a == "--bench");
    let clients = env_or("WR_BENCH_CLIENTS", if quick { 5 } else { 200 });
    let msgs = env_or("WR_BENCH_MSGS", if quick { 100 } else { 5000 });
    let window = env_or("WR_BENCH_WINDOW", 64);
    let rounds = env_or("WR_BENCH_ROUNDS", if quick { 1 } else { 3 }).max(1);

    // (a) Memory, each side in a fresh process.
    let ours = memory_in_child(Side::Ours, clients)?;
    let theirs = memory_in_child(Side::Theirs, clients)?;
    println!(
        "vs_whatsapp_rust/idle memory: {clients} connected clients per side, each side in its own process \
         (store: ours MemoryStore, theirs SQLite {}): ours {ours:.1} KiB/client, theirs {theirs:.1} KiB/client; \
         theirs/ours = {:.2}x",
        if file_store() {
            "file in a temp dir"
        } else {
            "in memory"
        },
        theirs / ours,
    );

    // (b) Throughput, in this process, sides alternating.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (mut o, mut t) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let seed = 100 + round as u64;
        let r = rt.block_on(throughput_ours(msgs, window, seed))?;
        println!("vs_whatsapp_rust/1:1 round {round}: ours   {r:.0} msg/s");
        o.push(r);
        let r = rt.block_on(throughput_theirs(msgs, window, seed))?;
        println!("vs_whatsapp_rust/1:1 round {round}: theirs {r:.0} msg/s");
        t.push(r);
    }
    let (om, tm) = (median(&mut o), median(&mut t));
    println!(
        "vs_whatsapp_rust/1:1 throughput: {msgs} messages, window {window}, median of {rounds} rounds, \
         every message decrypted by the receiver: ours {om:.0} msg/s, theirs {tm:.0} msg/s; ours/theirs = {:.2}x",
        om / tm
    );
    // Bots and clients of the last rounds may still hold runtime tasks; don't wait for them.
    rt.shutdown_timeout(Duration::from_secs(2));
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn file_store() -> bool {
    std::env::var("WR_BENCH_STORE").is_ok_and(|v| v == "file")
}

// ---------------------------------------------------------------------------------------
// (a) Memory per idle client

fn rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS"))
}

/// Runs one side's memory measurement in a child process; KiB per client.
fn memory_in_child(side: Side, clients: usize) -> anyhow::Result<f64> {
    let mut proc = Command::new(std::env::current_exe()?)
        .env(ROLE_ENV, side.role())
        .env("WR_BENCH_CLIENTS", clients.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = BufReader::new(proc.stdout.take().context("stdout")?);
    let mut result = None;
    for line in stdout.lines() {
        let line = line?;
        if let Some(rest) = line.strip_prefix("RESULT ") {
            let v: Vec<f64> = rest
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()?;
            if let [n, before, after, secs] = v[..] {
                println!(
                    "vs_whatsapp_rust/idle memory {side:?}: {n} clients paired in {secs:.1} s; \
                     RSS {before} KiB -> {after} KiB: {:.1} KiB per client",
                    (after - before) / n
                );
                result = Some((after - before) / n);
            }
        } else {
            println!("{line}");
        }
    }
    let status = proc.wait()?;
    anyhow::ensure!(status.success(), "{side:?} memory child failed: {status}");
    result.context("memory child printed no RESULT")
}

/// The sandbox process: prints `<ws_url> <trust root hex>`, then answers `ACCOUNT <pn>`,
/// `SCAN <pn> <qr>` and `PREKEYS <pn>` (prekeys on the server for its first device) lines
/// with `OK [value]` / `ERR <why>` until stdin closes.
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
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        while let Some(line) = rx.recv().await {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let reply = match parts.as_slice() {
                ["ACCOUNT", pn] => sb
                    .create_account(pn)
                    .map(|_| String::new())
                    .map_err(|e| e.to_string()),
                ["SCAN", pn, qr] => sb
                    .phone(pn)
                    .map_err(|e| e.to_string())
                    .and_then(|p| p.scan(qr).map(|_| String::new()).map_err(|e| e.to_string())),
                ["PREKEYS", pn] => Ok(server_prekeys(&sb, pn).to_string()),
                _ => Err("bad command".to_owned()),
            };
            match reply {
                Ok(v) => println!("OK {v}"),
                Err(e) => println!("ERR {e}"),
            }
            std::io::stdout().flush()?;
        }
        sb.shutdown().await;
        anyhow::Ok(())
    })
}

/// Prekeys the server holds for `number`'s first companion device (0 if none yet).
fn server_prekeys(sb: &SandboxHandle, number: &str) -> usize {
    sb.router()
        .account(number)
        .ok()
        .and_then(|a| a.devices.first().map(|d| d.prekeys))
        .unwrap_or(0)
}

struct SandboxProc {
    proc: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
}

impl SandboxProc {
    fn ask(&mut self, line: &str) -> anyhow::Result<String> {
        writeln!(self.stdin, "{line}")?;
        self.stdin.flush()?;
        let mut reply = String::new();
        self.stdout.read_line(&mut reply)?;
        match reply.trim().strip_prefix("OK") {
            Some(v) => Ok(v.trim().to_owned()),
            None => Err(anyhow!("sandbox child: {}", reply.trim())),
        }
    }
}

type Shared = Arc<Mutex<SandboxProc>>;

async fn ask(sb: &Shared, line: String) -> anyhow::Result<String> {
    let sb = sb.clone();
    tokio::task::spawn_blocking(move || sb.lock().map_err(|_| anyhow!("poisoned"))?.ask(&line))
        .await?
}

/// Waits until the sandbox holds prekeys for `number`.
async fn uploaded(sb: &Shared, number: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + STEP;
    while ask(sb, format!("PREKEYS {number}")).await? == "0" {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{number}: prekeys never uploaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// One client of either side, kept alive while RSS is read.
type Held = Box<dyn std::any::Any + Send>;

fn memory_child(side: Side) -> anyhow::Result<()> {
    let count = env_or("WR_BENCH_CLIENTS", 200);
    let settle = Duration::from_millis(env_or("WR_BENCH_SETTLE_MS", 3000) as u64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut proc = Command::new(std::env::current_exe()?)
        .env(ROLE_ENV, "sandbox")
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
    let sb: Shared = Arc::new(Mutex::new(SandboxProc {
        proc,
        stdin,
        stdout,
    }));
    let dirs = tempfile::tempdir()?;

    let result = rt.block_on(async {
        let before = rss_kib()?;
        let started = Instant::now();
        let mut held: Vec<Held> = Vec::with_capacity(count);
        for chunk in (0..count).collect::<Vec<_>>().chunks(25) {
            let mut set = tokio::task::JoinSet::new();
            for &i in chunk {
                let (url, sb) = (url.clone(), sb.clone());
                let db = dirs.path().join(format!("{i}.db"));
                set.spawn(async move {
                    let number = format!("1677{i:07}");
                    ask(&sb, format!("ACCOUNT {number}")).await?;
                    let h: Held = match side {
                        Side::Ours => Box::new(pair_ours_idle(&url, trust, &sb, &number).await?),
                        Side::Theirs => {
                            Box::new(pair_theirs_idle(&url, &sb, &number, &db, i).await?)
                        }
                    };
                    uploaded(&sb, &number).await?;
                    anyhow::Ok(h)
                });
            }
            while let Some(r) = set.join_next().await {
                held.push(r??);
            }
            if held.len().is_multiple_of(100) {
                eprintln!(
                    "vs_whatsapp_rust {side:?}: {} clients connected",
                    held.len()
                );
            }
        }
        let paired_in = started.elapsed();
        tokio::time::sleep(settle).await;
        let after = rss_kib()?;
        println!(
            "RESULT {count} {before} {after} {:.3}",
            paired_in.as_secs_f64()
        );
        std::io::stdout().flush()?;
        anyhow::Ok(held)
    });
    if let Ok(mut c) = sb.lock() {
        let _ = c.proc.kill();
        let _ = c.proc.wait();
    }
    // Hundreds of clients would take a while to close one by one; the process ends here.
    let held = result?;
    std::mem::forget(held);
    std::process::exit(0)
}

/// An engine client paired by QR through the sandbox process; its events drained by a task.
async fn pair_ours_idle(
    url: &str,
    trust: TrustRoot,
    sb: &Shared,
    number: &str,
) -> anyhow::Result<Client> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (client, mut events) = Client::builder(store.clone())
        .persist(Arc::new(InlinePersist::new(store)))
        .url(url)
        .trust_root(trust)
        .connect()
        .await?;
    loop {
        let e = tokio::time::timeout(STEP, events.recv())
            .await
            .context("pairing timeout")?
            .context("events ended")?;
        match e {
            Event::Qr { code, .. } => {
                ask(sb, format!("SCAN {number} {code}")).await?;
            }
            Event::Connected { .. } => break,
            _ => {}
        }
    }
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    Ok(client)
}

/// A whatsapp-rust bot paired by QR through the sandbox process; its events drained.
async fn pair_theirs_idle(
    url: &str,
    sb: &Shared,
    number: &str,
    db: &std::path::Path,
    i: usize,
) -> anyhow::Result<WaRust> {
    let mut peer = if file_store() {
        WaRust::start_with_database(url, db.to_str().context("utf-8 path")?).await?
    } else {
        WaRust::start_in_memory(url, &format!("wrbench_{}_{i}", std::process::id())).await?
    };
    loop {
        match peer.until(STEP, |e| Some(e.clone())).await? {
            PeerEvent::Qr(code) => {
                ask(sb, format!("SCAN {number} {code}")).await?;
            }
            PeerEvent::Connected => break,
            _ => {}
        }
    }
    let mut events = std::mem::replace(&mut peer.events, tokio::sync::mpsc::unbounded_channel().1);
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    Ok(peer)
}

// ---------------------------------------------------------------------------------------
// (b) 1:1 throughput

const ALICE: &str = "15550000001";
const BOB: &str = "15550000002";

fn is_measured(text: &str) -> bool {
    text.starts_with(TEXT_PREFIX)
}

async fn next_until<T>(
    events: &mut Events,
    mut pred: impl FnMut(&Event) -> Option<T>,
) -> anyhow::Result<T> {
    loop {
        let e = tokio::time::timeout(STEP, events.recv())
            .await
            .context("event timeout")?
            .context("events ended")?;
        if let Some(t) = pred(&e) {
            return Ok(t);
        }
    }
}

async fn prekeys_on_server(sb: &SandboxHandle, number: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + STEP;
    while server_prekeys(sb, number) == 0 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{number}: prekeys never uploaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn engine_peer(sb: &SandboxHandle, number: &str) -> anyhow::Result<(Client, Events, Jid)> {
    let phone = sb.create_account(number)?;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (client, mut events) = Client::builder(store.clone())
        .persist(Arc::new(InlinePersist::new(store)))
        .url(sb.ws_url())
        .trust_root(sb.trust_root())
        .prekey_batch(50)
        .event_capacity(4096)
        .connect()
        .await?;
    let mut scan_err = None;
    let jid = next_until(&mut events, |e| match e {
        Event::Qr { code, .. } => {
            scan_err = phone.scan(code).err();
            None
        }
        Event::Connected { jid } => Some(jid.clone()),
        _ => None,
    })
    .await?;
    if let Some(e) = scan_err {
        bail!("scan: {e}");
    }
    prekeys_on_server(sb, number).await?;
    Ok((client, events, jid))
}

/// Sends `n` texts with at most `window` send calls outstanding; `send(i)` sends one.
async fn send_all<F, Fut>(n: usize, window: usize, send: F) -> anyhow::Result<Duration>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let start = Instant::now();
    let mut inflight = tokio::task::JoinSet::new();
    for i in 0..n {
        if inflight.len() >= window
            && let Some(r) = inflight.join_next().await
        {
            r??;
        }
        inflight.spawn(send(i));
    }
    while let Some(r) = inflight.join_next().await {
        r??;
    }
    Ok(start.elapsed())
}

async fn throughput_ours(n: usize, window: usize, seed: u64) -> anyhow::Result<f64> {
    let sb = Sandbox::start(SandboxConfig::default().with_seed(seed)).await?;
    let (alice, mut alice_events, alice_jid) = engine_peer(&sb, ALICE).await?;
    let (bob, mut bob_events, bob_jid) = engine_peer(&sb, BOB).await?;
    let (alice_user, bob_user) = (alice_jid.to_non_ad(), bob_jid.to_non_ad());
    alice.send_text(&bob_user, "warm-up").await?;
    next_until(&mut bob_events, |e| {
        matches!(e, Event::Message(_)).then_some(())
    })
    .await?;
    bob.send_text(&alice_user, "warm-up").await?;
    next_until(&mut alice_events, |e| {
        matches!(e, Event::Message(_)).then_some(())
    })
    .await?;
    let drain = tokio::spawn(async move { while alice_events.recv().await.is_some() {} });
    let receiver = tokio::spawn(async move {
        let mut got = 0;
        while got < n {
            match tokio::time::timeout(STEP, bob_events.recv()).await {
                Ok(Some(Event::Message(m))) if m.text().is_some_and(is_measured) => got += 1,
                Ok(Some(Event::UndecryptableMessage { .. })) => bail!("undecryptable"),
                Ok(Some(_)) => {}
                Ok(None) => bail!("events ended after {got}"),
                Err(_) => bail!("receiver stalled after {got} of {n}"),
            }
        }
        Ok(Instant::now())
    });
    let start = Instant::now();
    let acked = send_all(n, window, |i| {
        let (client, to) = (alice.clone(), bob_user.clone());
        async move {
            client.send_text(&to, format!("{TEXT_PREFIX}{i}")).await?;
            Ok(())
        }
    })
    .await?;
    let end = receiver.await??;
    let elapsed = end - start;
    eprintln!(
        "  ours: all sends returned after {:.3} s, last decrypted after {:.3} s",
        acked.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    alice.shutdown().await;
    bob.shutdown().await;
    drain.abort();
    sb.shutdown().await;
    Ok(n as f64 / elapsed.as_secs_f64())
}

async fn theirs_peer(sb: &SandboxHandle, number: &str, name: &str) -> anyhow::Result<WaRust> {
    let phone = sb.create_account(number)?;
    let mut peer = WaRust::start_in_memory(sb.ws_url(), name).await?;
    loop {
        match peer.until(STEP, |e| Some(e.clone())).await? {
            PeerEvent::Qr(code) => {
                phone.scan(&code)?;
            }
            PeerEvent::Connected => break,
            _ => {}
        }
    }
    prekeys_on_server(sb, number).await?;
    Ok(peer)
}

async fn throughput_theirs(n: usize, window: usize, seed: u64) -> anyhow::Result<f64> {
    let sb = Sandbox::start(SandboxConfig::default().with_seed(seed)).await?;
    let pid = std::process::id();
    let mut alice = theirs_peer(&sb, ALICE, &format!("tp_{pid}_{seed}_a")).await?;
    let mut bob = theirs_peer(&sb, BOB, &format!("tp_{pid}_{seed}_b")).await?;
    let (alice_user, bob_user) = (
        format!("{ALICE}@s.whatsapp.net"),
        format!("{BOB}@s.whatsapp.net"),
    );
    alice.send_text(&bob_user, "warm-up").await?;
    bob.until(STEP, |e| matches!(e, PeerEvent::Text { .. }).then_some(()))
        .await?;
    bob.send_text(&alice_user, "warm-up").await?;
    alice
        .until(STEP, |e| matches!(e, PeerEvent::Text { .. }).then_some(()))
        .await?;
    let mut alice_events =
        std::mem::replace(&mut alice.events, tokio::sync::mpsc::unbounded_channel().1);
    let mut bob_events =
        std::mem::replace(&mut bob.events, tokio::sync::mpsc::unbounded_channel().1);
    let drain = tokio::spawn(async move { while alice_events.recv().await.is_some() {} });
    let receiver = tokio::spawn(async move {
        let mut got = 0;
        while got < n {
            match tokio::time::timeout(STEP, bob_events.recv()).await {
                Ok(Some(PeerEvent::Text { text, .. })) if is_measured(&text) => got += 1,
                Ok(Some(_)) => {}
                Ok(None) => bail!("events ended after {got}"),
                Err(_) => bail!("receiver stalled after {got} of {n}"),
            }
        }
        Ok(Instant::now())
    });
    let sender = alice.sender();
    let start = Instant::now();
    let acked = send_all(n, window, |i| {
        let (sender, to) = (sender.clone(), bob_user.clone());
        async move {
            sender.send_text(&to, &format!("{TEXT_PREFIX}{i}")).await?;
            Ok(())
        }
    })
    .await?;
    let end = receiver.await??;
    let elapsed = end - start;
    eprintln!(
        "  theirs: all sends returned after {:.3} s, last decrypted after {:.3} s",
        acked.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    alice.shutdown().await;
    bob.shutdown().await;
    drain.abort();
    sb.shutdown().await;
    Ok(n as f64 / elapsed.as_secs_f64())
}
