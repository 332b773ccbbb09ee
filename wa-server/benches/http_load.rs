//! Load figures for the wa-server binary in `--sandbox` mode (issue 5's benchmarks).
//!
//! 1. **Send-text throughput and latency.** Two sessions are paired with the embedded
//!    sandbox; `wrk` (Debian package, installed with apt-get if missing) posts
//!    `POST /api/sessions/sender/messages/text` to the second account for
//!    `WA_BENCH_SECONDS` (default 20) with `WA_BENCH_CONNECTIONS` (default 32) keep-alive
//!    connections on 2 threads. Every request is a real end-to-end send: Signal
//!    encryption, the sandbox routes the stanza, the receiving session decrypts it,
//!    acknowledges it and sends a delivery receipt. Reported: requests/s, p50/p90/p99
//!    latency, non-2xx responses, and how many messages the receiver decrypted
//!    (`wa_messages_received_total`).
//! 2. **Memory with many sessions.** `WA_BENCH_SESSIONS` (default 1,000; 10,000 for the
//!    issue 12 figure) sessions are created and paired with phones of a sandbox running in
//!    the bench process, so the server process holds no simulated-server state and its
//!    resident set is the server's alone. Once all are `connected` and idle (10 s), the
//!    server's resident set (`VmRSS` in `/proc/<pid>/status`) minus the resident set
//!    before the first session, divided by the session count, is the figure. The sandbox's
//!    own resident set (the bench process) is printed beside it for scale.
//! 3. **Restart storm** (`WA_BENCH_PART=restart`: part 2, then this). The server is
//!    stopped with SIGTERM, as a service manager restarts it, and started again on the
//!    same data directory with `--start-rate WA_BENCH_START_RATE` (default the server's,
//!    50/s) and `--start-jitter-ms WA_BENCH_START_JITTER_MS` (default 1000). Reported:
//!    time from spawn to `/ready`, to every session `connected` (`wa_sessions` gauge),
//!    the peak resident set of the restarted server (`VmHWM`), and its idle resident set
//!    per session 10 s later (restored sessions carry no pairing-time garbage).
//!
//! `WA_BENCH_SERVER_WRAPPER` runs the server under a wrapper command, e.g. `heaptrack`
//! (then `WA_BENCH_KILL_AT_IDLE=1` SIGKILLs it once idle, so heaptrack's "leaked" list is
//! the live heap of the idle sessions by call stack).
//!
//! Run: `cargo bench -p wa-server --bench http_load` (Linux; prints figures, asserts
//! nothing about speed). `WA_BENCH_PART=throughput`, `memory` or `restart` runs one part.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const KEY: &str = "bench-admin-key-0123456789";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The wa-server child process, killed on drop.
struct Server {
    child: Child,
    base: String,
    http: reqwest::Client,
    /// The data directory (kept across a restart).
    dir: std::sync::Arc<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl Server {
    /// Starts the server with its embedded sandbox, or (`upstream = Some((ws_url,
    /// trust_root_b64))`) against a sandbox running elsewhere.
    async fn start(max_sessions: usize, upstream: Option<(&str, &str)>) -> Result<Self> {
        let dir = std::sync::Arc::new(tempfile::tempdir()?);
        Self::start_in(dir, max_sessions, upstream, &[]).await
    }

    /// [`Self::start`] on the data directory `dir` with `extra` arguments.
    async fn start_in(
        dir: std::sync::Arc<tempfile::TempDir>,
        max_sessions: usize,
        upstream: Option<(&str, &str)>,
        extra: &[String],
    ) -> Result<Self> {
        let port = free_port()?;
        let wrapper = std::env::var("WA_BENCH_SERVER_WRAPPER").unwrap_or_default();
        let mut words = wrapper.split_whitespace();
        let mut cmd = match words.next() {
            Some(program) => {
                let mut cmd = Command::new(program);
                cmd.args(words).arg(env!("CARGO_BIN_EXE_wa-server"));
                cmd
            }
            None => Command::new(env!("CARGO_BIN_EXE_wa-server")),
        };
        match upstream {
            None => cmd.arg("--sandbox"),
            Some((url, root)) => cmd.args(["--wa-url", url, "--wa-trust-root", root]),
        };
        let child = cmd
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--max-sessions", &max_sessions.to_string()])
            // Load figures, not the account-protecting send limit (default 30/min).
            .args(["--send-rate-per-minute", "0"])
            .args(extra)
            .env("WA_API_KEY", KEY)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("spawn wa-server")?;
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if let Ok(r) = server.http.get(server.url("/ready")).send().await
                && r.status().is_success()
            {
                return Ok(server);
            }
            ensure!(Instant::now() < deadline, "wa-server did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The server's process id: the child's, or under a wrapper the `wa-server` process
    /// whose command line names this data directory.
    fn pid(&self) -> Result<u32> {
        let child = self.child.id().context("server exited")?;
        if std::env::var("WA_BENCH_SERVER_WRAPPER")
            .unwrap_or_default()
            .is_empty()
        {
            return Ok(child);
        }
        let dir = self.dir.path().to_string_lossy().into_owned();
        for entry in std::fs::read_dir("/proc")? {
            let entry = entry?;
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if comm.trim() == "wa-server" && String::from_utf8_lossy(&cmdline).contains(&dir) {
                return Ok(pid);
            }
        }
        bail!("no wa-server process under the wrapper")
    }

    /// Sends `signal` (e.g. `TERM`, `KILL`) to the server and waits for it to exit.
    async fn signal_and_wait(&mut self, signal: &str) -> Result<()> {
        let pid = self.pid()?;
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()?;
        ensure!(status.success(), "kill -{signal} {pid}");
        tokio::time::timeout(Duration::from_secs(300), self.child.wait())
            .await
            .context("server did not exit")??;
        Ok(())
    }

    /// Sessions in `state`, from the `wa_sessions` gauge.
    async fn count_in(&self, state: &str) -> Result<u64> {
        Ok(self
            .metric(&format!("wa_sessions{{state=\"{state}\"}}"), None)
            .await? as u64)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut req = self
            .http
            .request(method, self.url(path))
            .header("x-api-key", KEY);
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body)?);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let value: Value = serde_json::from_slice(&resp.bytes().await?).unwrap_or(Value::Null);
        ensure!(status.is_success(), "{path}: {status} {value}");
        Ok(value)
    }

    /// Creates session `id` and pairs it with a new simulated phone of the embedded
    /// sandbox; returns its JID.
    async fn paired_session(&self, id: &str) -> Result<String> {
        self.create_waiting_for_qr(id).await?;
        let scan = self
            .call(
                reqwest::Method::POST,
                &format!("/api/sessions/{id}/sandbox/scan"),
                Some(json!({})),
            )
            .await?;
        scan["jid"]
            .as_str()
            .map(str::to_owned)
            .context("scan answer without jid")
    }

    /// Creates session `id` and pairs it by scanning its QR with `phone` of an external
    /// sandbox.
    async fn paired_with(&self, id: &str, phone: &wa_sandbox::Phone) -> Result<()> {
        self.create_waiting_for_qr(id).await?;
        let qr = self
            .call(
                reqwest::Method::GET,
                &format!("/api/sessions/{id}/qr"),
                None,
            )
            .await?;
        let code = qr["qr"].as_str().context("qr")?;
        phone.scan(code).map_err(|e| anyhow::anyhow!("scan: {e}"))?;
        Ok(())
    }

    /// Creates session `id` and waits for its first QR.
    async fn create_waiting_for_qr(&self, id: &str) -> Result<()> {
        let body = json!({ "id": id });
        self.call(reqwest::Method::POST, "/api/sessions", Some(body))
            .await?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let info = self
                .call(reqwest::Method::GET, &format!("/api/sessions/{id}"), None)
                .await?;
            match info["status"].as_str() {
                Some("qr") => break,
                Some("connected") => bail!("{id} connected without a scan"),
                _ => {}
            }
            ensure!(Instant::now() < deadline, "{id}: no QR");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    async fn wait_connected(&self, ids: &[String]) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let list = self
                .call(reqwest::Method::GET, "/api/sessions", None)
                .await?;
            let sessions = list
                .get("sessions")
                .and_then(Value::as_array)
                .or_else(|| list.as_array())
                .context("session list")?;
            let connected = sessions
                .iter()
                .filter(|s| s["status"] == "connected" && ids.iter().any(|id| s["id"] == **id))
                .count();
            if connected == ids.len() {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "only {connected} of {} sessions connected",
                ids.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn metric(&self, name: &str, session: Option<&str>) -> Result<f64> {
        let text = self
            .http
            .get(self.url("/metrics"))
            .header("x-api-key", KEY)
            .send()
            .await?
            .text()
            .await?;
        Ok(text
            .lines()
            .filter(|l| l.starts_with(name))
            .filter(|l| session.is_none_or(|s| l.contains(&format!("session=\"{s}\""))))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }
}

/// `field` (`VmRSS`, `VmHWM`) of process `pid`, KiB.
fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("{field} of {pid}"))
}

fn rss_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmRSS")
}

/// `wrk` on PATH, installing Debian's package if it is missing.
fn ensure_wrk() -> Result<()> {
    let have = || {
        std::process::Command::new("wrk")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if have() {
        return Ok(());
    }
    eprintln!("wrk not found; installing Debian's package");
    let sudo: &[&str] = if std::env::var("USER").as_deref() == Ok("root")
        || std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"))
    {
        &[]
    } else {
        &["sudo"]
    };
    for args in [
        &["apt-get", "update", "-qq"][..],
        &["apt-get", "install", "-y", "-qq", "wrk"],
    ] {
        let mut cmd: Vec<&str> = sudo.to_vec();
        cmd.extend_from_slice(args);
        let status = std::process::Command::new(cmd[0])
            .args(&cmd[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .with_context(|| format!("run {cmd:?}"))?;
        ensure!(status.success(), "{cmd:?} failed");
    }
    ensure!(have(), "wrk still missing after apt-get install");
    Ok(())
}

/// wrk prints `50%    1.23ms`; returns milliseconds.
fn wrk_percentile(out: &str, pct: &str) -> Option<f64> {
    let line = out.lines().find(|l| l.trim_start().starts_with(pct))?;
    let v = line.split_whitespace().nth(1)?;
    let (num, mult) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    Some(num.parse::<f64>().ok()? * mult)
}

async fn throughput() -> Result<()> {
    ensure_wrk()?;
    let seconds: u64 = env_or("WA_BENCH_SECONDS", 20);
    let connections: u64 = env_or("WA_BENCH_CONNECTIONS", 32);
    let server = Server::start(10, None).await?;
    eprintln!("server up at {}", server.base);
    server.paired_session("sender").await?;
    let receiver = server.paired_session("receiver").await?;
    server
        .wait_connected(&["sender".into(), "receiver".into()])
        .await?;
    let to = receiver
        .split(['@', ':'])
        .next()
        .context("receiver number")?;
    eprintln!("paired; warming up");
    // Warm the Signal sessions and device cache, as an established gateway has them.
    for i in 0..20 {
        server
            .call(
                reqwest::Method::POST,
                "/api/sessions/sender/messages/text",
                Some(json!({ "to": to, "text": format!("warm-up {i}") })),
            )
            .await?;
    }
    let received_before = server.metric("wa_messages_received_total", None).await?;
    eprintln!("running wrk");
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("post.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.headers[\"content-type\"] = \"application/json\"\n\
             wrk.headers[\"x-api-key\"] = \"{KEY}\"\n\
             wrk.body = '{{\"to\":\"{to}\",\"text\":\"load test message\"}}'\n"
        ),
    )?;
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
        ])
        .arg("-s")
        .arg(&script)
        .arg(server.url("/api/sessions/sender/messages/text"))
        .output()
        .await
        .context("run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(out.status.success(), "wrk failed:\n{text}");
    let requests: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .context("wrk Requests/sec")?;
    let total: u64 = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .context("wrk request count")?;
    let non_2xx: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    // Let the tail of in-flight messages land.
    let mut received = 0.0;
    for _ in 0..100 {
        received = server.metric("wa_messages_received_total", None).await? - received_before;
        if received >= (total - non_2xx) as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("== send text over HTTP: wa-server --sandbox, wrk -t2 -c{connections} -d{seconds}s");
    println!("requests/s          {requests:.0}");
    for pct in ["50%", "90%", "99%"] {
        println!(
            "latency p{:<3}        {:.2} ms",
            pct.trim_end_matches('%'),
            wrk_percentile(&text, pct).unwrap_or(f64::NAN)
        );
    }
    println!("requests            {total} ({non_2xx} non-2xx)");
    println!("decrypted by peer   {received:.0}");
    eprintln!("{text}");
    Ok(())
}

async fn memory(restart: bool) -> Result<()> {
    use base64::Engine as _;
    let n: usize = env_or("WA_BENCH_SESSIONS", 1000);
    let own_before = rss_kib(std::process::id())?;
    // The simulated WhatsApp server runs in this (the bench) process, so the server's
    // resident set holds only what a production deployment holds.
    let sandbox = wa_sandbox::Sandbox::start(wa_sandbox::SandboxConfig::default()).await?;
    let root = base64::engine::general_purpose::STANDARD.encode(sandbox.trust_root_key());
    let dir = std::sync::Arc::new(tempfile::tempdir()?);
    let mut server = Server::start_in(dir.clone(), n, Some((sandbox.ws_url(), &root)), &[]).await?;
    let pid = server.pid()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base = rss_kib(pid)?;
    let started = Instant::now();
    let ids: Vec<String> = (0..n).map(|i| format!("s{i:05}")).collect();
    let phones = (0..n)
        .map(|i| {
            sandbox
                .create_account(&format!("1555{:07}", 2_000_000 + i))
                .map_err(|e| anyhow::anyhow!("account: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    for (done, (chunk, chunk_phones)) in ids.chunks(16).zip(phones.chunks(16)).enumerate() {
        let mut tasks = Vec::new();
        for (id, phone) in chunk.iter().zip(chunk_phones) {
            tasks.push(server.paired_with(id, phone));
        }
        for r in futures_util::future::join_all(tasks).await {
            r?;
        }
        if (done + 1) % 64 == 0 {
            eprintln!(
                "paired {} of {n} in {:.0} s",
                (done + 1) * 16,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while (server.count_in("connected").await? as usize) < n {
        ensure!(Instant::now() < deadline, "not every session connected");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let paired_in = started.elapsed();
    // Idle: let prekey uploads, receipts and flushes settle.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rss = rss_kib(pid)?;
    let per = (rss.saturating_sub(base)) as f64 / n as f64;
    let own = rss_kib(std::process::id())?;
    println!(
        "== memory: wa-server with {n} connected idle sessions (sandbox in the bench process)"
    );
    println!(
        "paired and connected in {:.1} s ({:.1} sessions/s)",
        paired_in.as_secs_f64(),
        n as f64 / paired_in.as_secs_f64()
    );
    println!("server RSS before     {:.1} MiB", base as f64 / 1024.0);
    println!("server RSS after      {:.1} MiB", rss as f64 / 1024.0);
    println!("per session           {per:.1} KiB");
    println!(
        "(sandbox + bench process: {:.1} MiB more, not counted above)",
        own.saturating_sub(own_before) as f64 / 1024.0
    );
    if std::env::var("WA_BENCH_KILL_AT_IDLE").is_ok_and(|v| v == "1") {
        server.signal_and_wait("KILL").await?;
        return Ok(());
    }
    if !restart {
        return Ok(());
    }

    // 3. Restart storm.
    let stopping = Instant::now();
    server.signal_and_wait("TERM").await?;
    let stopped_in = stopping.elapsed();
    drop(server);
    let mut extra = Vec::new();
    if let Ok(rate) = std::env::var("WA_BENCH_START_RATE") {
        extra.extend(["--start-rate".to_owned(), rate]);
    }
    if let Ok(jitter) = std::env::var("WA_BENCH_START_JITTER_MS") {
        extra.extend(["--start-jitter-ms".to_owned(), jitter]);
    }
    let spawned = Instant::now();
    let server = Server::start_in(dir, n, Some((sandbox.ws_url(), &root)), &extra).await?;
    let ready_in = spawned.elapsed();
    let pid = server.pid()?;
    let deadline = Instant::now() + Duration::from_secs(3600);
    let mut last_report = Instant::now();
    let connected_in = loop {
        let connected = server.count_in("connected").await?;
        if connected as usize >= n {
            break spawned.elapsed();
        }
        ensure!(
            Instant::now() < deadline,
            "only {connected} of {n} sessions connected after the restart"
        );
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "restart: {connected} of {n} connected after {:.0} s (RSS {:.1} MiB)",
                spawned.elapsed().as_secs_f64(),
                rss_kib(pid)? as f64 / 1024.0
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let peak = status_kib(pid, "VmHWM")?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle = rss_kib(pid)?;
    println!(
        "== restart storm: {n} paired sessions, SIGTERM and start again ({})",
        if extra.is_empty() {
            "default pacing".to_owned()
        } else {
            extra.join(" ")
        }
    );
    println!("graceful stop         {:.1} s", stopped_in.as_secs_f64());
    println!("spawn to /ready       {:.1} s", ready_in.as_secs_f64());
    println!("spawn to all connected {:.1} s", connected_in.as_secs_f64());
    println!("peak RSS (VmHWM)      {:.1} MiB", peak as f64 / 1024.0);
    println!(
        "idle RSS after        {:.1} MiB ({:.1} KiB per session over the pre-session base)",
        idle as f64 / 1024.0,
        idle.saturating_sub(base) as f64 / n as f64
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful either way.
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let part = std::env::var("WA_BENCH_PART").unwrap_or_default();
    if part.is_empty() || part == "throughput" {
        throughput().await?;
    }
    if part.is_empty() || part == "memory" || part == "restart" {
        memory(part == "restart").await?;
    }
    Ok(())
}
