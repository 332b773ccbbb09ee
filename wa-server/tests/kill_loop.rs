//! The kill loop (issue 12, "Reliability"): one `wa-server --sandbox` process holds two
//! sessions, `a` and `b`, paired through the embedded sandbox's phones; sender tasks POST
//! texts alternately a→b and b→a while the test SIGKILLs the server at random instants and
//! starts it again on the same data directory. A webhook receiver in the test process (it
//! outlives every server) records each delivery.
//!
//! After each restart both sessions must come back `connected` without a scan. At the end:
//! - every message answered `201` reached the other session's webhook (none lost);
//! - no message id is delivered in two distinct events (webhook redeliveries of one event,
//!   same event id, are at-least-once and allowed);
//! - no `message_undecryptable` event;
//! - every event id is bound to one body: a redelivery repeats it byte for byte;
//! - no `qr`, `pairing_code` or `logged_out` after the pairing (a rescan).
//!
//! A lost message is told apart by where it was lost (printed per message with the
//! sender's status timeline and the recipient's message log): one the recipient's engine had
//! committed as received (its dedup store has the id) or one the sandbox had durably queued
//! at a kill and replayed is an engine defect ([`ENGINE_COMMITS_BEFORE_THE_EMBEDDER`],
//! [`ENGINE_SPLITS_RATCHET_AND_DEDUP`]: counted and reported, not failed while the engine has
//! them); any other lost message (sandbox, send path, outbox) fails the test.
//!
//! One kill lands right after both sessions first report `connected` (the pairing moment of
//! `kill_after_pair.rs`), and about a quarter of the others within a few milliseconds after
//! a restart reports both `connected` again.
//!
//! Short form in the suite (10 kills, 300 messages). The full form is the same test with
//! `KILL_LOOP_KILLS=100 KILL_LOOP_MESSAGES=10000` (`wa-server/tests/kill_loop.sh` runs it in
//! release mode); `KILL_LOOP_SEED` replays a run (the seed is printed), `KILL_LOOP_SENDERS`
//! sets the concurrent senders (default 4) and `KILL_LOOP_GAP_MS` the mean time between two
//! kills (default 700). The figures (kills, messages, sends/s, reconnect time after a kill:
//! median/p99/max, redeliveries) are printed at the end.

mod support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use serde_json::{Value, json};
use support::Receiver;
use tokio::process::{Child, Command};
use tokio::sync::watch;

const KEY: &str = "kill-loop-admin-key-0123456789";

/// The engine's known defect (wa-engine `conn/messaging/recv.rs` + `client/driver.rs`, not
/// this test's to fix): a received message is committed as processed in the engine's store
/// (ratchet advanced, dedup key in `wa.dedup`) and its delivery receipt and ack are written
/// to the socket *before* the embedder sees `Event::Message`, so a SIGKILL between that and
/// the server's outbox flush loses the message for good (the server dropped it on the ack;
/// a redelivery would be dropped as a duplicate). While this is `true`, a lost message
/// whose id is in the recipient engine's dedup store is counted as
/// `lost_after_engine_commit` and reported, not failed; every other lost message (lost in
/// the sandbox, the send path or the outbox) still fails. Set it to `false` once the engine
/// holds the receipt and ack until the embedder has made the event durable (or keeps the
/// plaintext to re-emit, as whatsmeow's event buffer does).
const ENGINE_COMMITS_BEFORE_THE_EMBEDDER: bool = true;

/// The second engine defect the loop shows (wa-engine `signal/cipher.rs` `decrypt_msg` +
/// `conn/messaging/recv.rs` `before_report`): the advanced ratchet is committed in one
/// store batch and the dedup key in a later one, the event after both. A SIGKILL between
/// them leaves the message unacknowledged, so the sandbox replays it after the restart (it
/// is in its `queues.json`), but the ratchet is past it: `DuplicateMessage`, which the
/// engine treats as "already reported" and acks without an event. While this is `true`, a
/// lost message the engine never committed but the sandbox had durably queued at a kill is
/// counted as `lost_replayed_as_duplicate` and reported, not failed. Now `false`: the
/// client stages every write of one stanza (ratchet and dedup key) in its connection and
/// commits them as one batch (`store::Persistence::Deferred`), so this split cannot happen
/// and any such loss fails the test.
const ENGINE_SPLITS_RATCHET_AND_DEDUP: bool = false;

/// Ids of the `<message>` stanzas in the sandbox's saved offline queues
/// (`<data>/sandbox/queues.json`, written by the server; read while it is dead).
fn queued_message_ids(dir: &Path) -> HashSet<String> {
    let Ok(bytes) = std::fs::read(dir.join("sandbox").join("queues.json")) else {
        return HashSet::new();
    };
    let v: Value = serde_json::from_slice(&bytes).expect("queues.json is JSON");
    let mut ids = HashSet::new();
    for q in v["queues"].as_array().into_iter().flatten() {
        for b64 in q["stanzas"].as_array().into_iter().flatten() {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.as_str().expect("base64 text"))
                .expect("base64");
            let node = wa_engine::binary::decode_node(&bytes).expect("a stanza");
            if node.tag == "message"
                && let Some(id) = node.get_attr_str("id")
            {
                ids.insert(id.to_owned());
            }
        }
    }
    ids
}

/// The engine's dedup namespace (wa-engine `conn/dedup.rs` `NAMESPACE`); its keys end with
/// `\0<message id>`.
const DEDUP_NAMESPACE: &str = "wa.dedup";

/// The run's parameters (environment, with the short form's defaults).
#[derive(Debug, Clone, Copy)]
struct Params {
    kills: usize,
    messages: usize,
    senders: usize,
    gap_ms: u64,
    seed: u64,
}

impl Params {
    fn from_env() -> Self {
        fn var<T: std::str::FromStr>(name: &str) -> Option<T> {
            std::env::var(name).ok().and_then(|v| v.parse().ok())
        }
        Self {
            kills: var("KILL_LOOP_KILLS").unwrap_or(10).max(1),
            messages: var("KILL_LOOP_MESSAGES").unwrap_or(300),
            senders: var("KILL_LOOP_SENDERS").unwrap_or(4).max(1),
            gap_ms: var("KILL_LOOP_GAP_MS").unwrap_or(700).max(1),
            seed: var("KILL_LOOP_SEED").unwrap_or_else(rand::random),
        }
    }
}

/// A message the server answered `201`.
#[derive(Debug, Clone)]
struct Accepted {
    id: String,
    /// The session that received it (`a` or `b`).
    to_session: &'static str,
    text: String,
}

/// A small fallible HTTP client (the server may be dead at any instant).
#[derive(Clone)]
struct Http {
    base: String,
    client: reqwest::Client,
}

impl Http {
    fn new(base: String) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        Self { base, client }
    }

    async fn get(&self, path: &str) -> Result<(u16, Value), reqwest::Error> {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .header("x-api-key", KEY)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await?;
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }

    async fn post(&self, path: &str, body: &Value) -> Result<(u16, Value), reqwest::Error> {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("x-api-key", KEY)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await?;
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }
}

/// Starts `wa-server --sandbox` on 127.0.0.1:0 with data in `dir`: the child and a client of
/// its (new) address.
async fn spawn_server(dir: &Path) -> (Child, Http) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wa-server"));
    command
        .args(["--bind", "127.0.0.1:0", "--sandbox"])
        .args(["--webhook-backoff-ms", "100", "--send-rate-per-minute", "0"])
        // The receiver listens on 127.0.0.1 (a non-public target).
        .arg("--allow-private-targets")
        .arg("--data-dir")
        .arg(dir)
        .env("WA_API_KEY", KEY)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit());
    let (child, base) = support::spawn_listening(command).await;
    (child, Http::new(base))
}

/// SIGKILL and reap.
async fn kill(child: &mut Child) {
    child.start_kill().expect("SIGKILL");
    let _ = child.wait().await;
}

/// Polls both sessions as fast as the server answers until both are `connected`; `Err`
/// names a session that wants a scan (`qr`, `pairing_code`, `logged_out`; unless `pairing`,
/// when a session still shows the QR its phone is scanning) or never came back.
async fn both_connected(http: &Http, pairing: bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut done = [false; 2];
    loop {
        for (n, id) in ["a", "b"].into_iter().enumerate() {
            if done[n] {
                continue;
            }
            let (code, v) = http
                .get(&format!("/api/sessions/{id}"))
                .await
                .map_err(|e| format!("GET session {id}: {e}"))?;
            let status = v["status"].as_str().unwrap_or_default();
            if code == 200 && status == "connected" {
                done[n] = true;
            } else if (!pairing && ["qr", "pairing_code"].contains(&status))
                || ["logged_out", "stopped"].contains(&status)
            {
                return Err(format!("session {id} needs a rescan: {v}"));
            }
        }
        if done == [true, true] {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("sessions not connected after 90 s ({done:?})"));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// What the sender tasks share.
struct Sending {
    params: Params,
    /// The running server's client; `None` while it is down.
    server: watch::Receiver<Option<Http>>,
    /// The next message number to send.
    next: AtomicUsize,
    accepted: Mutex<Vec<Accepted>>,
    /// Tries not answered 201 (server down, 409 while reconnecting, 5xx), sent again.
    refused: AtomicU64,
    /// Users (numbers) of `a` and `b`.
    users: [String; 2],
}

/// One sender: takes message numbers until all are accepted; even numbers go a→b, odd b→a.
async fn sender(shared: Arc<Sending>) {
    let mut server = shared.server.clone();
    loop {
        let n = shared.next.fetch_add(1, Ordering::SeqCst);
        if n >= shared.params.messages {
            return;
        }
        let (from, to_session, to_user) = if n.is_multiple_of(2) {
            ("a", "b", &shared.users[1])
        } else {
            ("b", "a", &shared.users[0])
        };
        let text = format!("kill-loop #{n} {from}->{to_session}");
        let body = json!({ "to": to_user, "text": text });
        loop {
            let http = server
                .wait_for(Option::is_some)
                .await
                .expect("killer alive")
                .clone()
                .expect("some");
            match http
                .post(&format!("/api/sessions/{from}/messages/text"), &body)
                .await
            {
                Ok((201, v)) => {
                    let id = v["id"].as_str().expect("message id").to_owned();
                    shared.accepted.lock().expect("accepted").push(Accepted {
                        id,
                        to_session,
                        text: text.clone(),
                    });
                    break;
                }
                Ok((code, v)) => {
                    // Not accepted: sent again as a new message.
                    shared.refused.fetch_add(1, Ordering::Relaxed);
                    assert!(code == 409 || code >= 500, "send #{n} answered {code}: {v}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(_) => {
                    shared.refused.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
}

/// Percentile `p` (0..=100) of sorted `v`.
fn percentile(v: &[Duration], p: usize) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    let i = (v.len() * p)
        .div_ceil(100)
        .saturating_sub(1)
        .min(v.len() - 1);
    v[i]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkills_at_random_instants_lose_duplicate_and_rescan_nothing() {
    let params = Params::from_env();
    eprintln!(
        "kill_loop: {params:?} (replay with KILL_LOOP_SEED={})",
        params.seed
    );
    let seed = params.seed;
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start(false).await;
    let started = Instant::now();

    // Pairing: both sessions in one server, scanned by the sandbox phones.
    let (mut child, http) = spawn_server(dir.path()).await;
    for id in ["a", "b"] {
        let (status, created) = http
            .post(
                "/api/sessions",
                &json!({ "id": id, "webhooks": [{ "url": receiver.url(), "events": ["*"] }] }),
            )
            .await
            .expect("create");
        assert_eq!(status, 201, "{created}");
    }
    for id in ["a", "b"] {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, v) = http.get(&format!("/api/sessions/{id}")).await.expect("get");
            if v["status"] == "qr" {
                break;
            }
            assert!(Instant::now() < deadline, "no QR for {id}: {v}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (status, scan) = http
            .post(&format!("/api/sessions/{id}/sandbox/scan"), &json!({}))
            .await
            .expect("scan");
        assert_eq!(status, 200, "{scan}");
    }
    both_connected(&http, true)
        .await
        .unwrap_or_else(|e| panic!("pairing (seed {seed}): {e}"));
    // Kill 1: right after both report `connected` after pairing.
    kill(&mut child).await;
    // Messages the sandbox held durably at some kill (replayed after the restart).
    let mut queued_at_kills = queued_message_ids(dir.path());
    let paired_at_ms = now_ms();
    let mut kills = 1;
    let mut reconnects = Vec::new();

    let (mut child, http) = spawn_server(dir.path()).await;
    let t0 = Instant::now();
    both_connected(&http, false)
        .await
        .unwrap_or_else(|e| panic!("after the pairing kill (seed {seed}): {e}"));
    reconnects.push(t0.elapsed());
    let mut users = Vec::new();
    for id in ["a", "b"] {
        let (_, v) = http.get(&format!("/api/sessions/{id}")).await.expect("get");
        let jid = v["jid"].as_str().expect("jid");
        users.push(jid.split([':', '@']).next().expect("user").to_owned());
    }

    let (server_tx, server_rx) = watch::channel(Some(http.clone()));
    let shared = Arc::new(Sending {
        params,
        server: server_rx,
        next: AtomicUsize::new(0),
        accepted: Mutex::new(Vec::new()),
        refused: AtomicU64::new(0),
        users: [users[0].clone(), users[1].clone()],
    });
    let send_started = Instant::now();
    let senders: Vec<_> = (0..params.senders)
        .map(|_| tokio::spawn(sender(shared.clone())))
        .collect();

    let mut soon_after_connected = 0;
    while kills < params.kills {
        // A quarter of the kills: within a few ms of the restart's `connected`.
        let delay = if rng.random_bool(0.25) {
            soon_after_connected += 1;
            Duration::from_micros(rng.random_range(0..5_000))
        } else {
            Duration::from_millis(rng.random_range(0..2 * params.gap_ms))
        };
        tokio::time::sleep(delay).await;
        kill(&mut child).await;
        server_tx.send_replace(None);
        queued_at_kills.extend(queued_message_ids(dir.path()));
        kills += 1;
        let t0 = Instant::now();
        let (next_child, http) = spawn_server(dir.path()).await;
        child = next_child;
        both_connected(&http, false)
            .await
            .unwrap_or_else(|e| panic!("after kill {kills} (seed {seed}): {e}"));
        reconnects.push(t0.elapsed());
        server_tx.send_replace(Some(http));
    }
    let http = server_tx.borrow().clone().expect("the last server runs");

    let send_deadline = Duration::from_secs(60 + params.messages as u64 / 10);
    for s in senders {
        tokio::time::timeout(send_deadline, s)
            .await
            .unwrap_or_else(|_| panic!("senders did not finish (seed {seed})"))
            .expect("sender");
    }
    let send_time = send_started.elapsed();
    let accepted = shared.accepted.lock().expect("accepted").clone();
    assert_eq!(accepted.len(), params.messages);

    // Every accepted message reaches the other session's webhook (bounded wait).
    let want: HashMap<(&str, &str), &Accepted> = accepted
        .iter()
        .map(|m| ((m.to_session, m.id.as_str()), m))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let lost = loop {
        let got: HashSet<(String, String)> = receiver
            .received()
            .into_iter()
            .filter(|r| r.accepted && r.envelope["type"] == "message")
            .filter_map(|r| {
                Some((
                    r.envelope["session"].as_str()?.to_owned(),
                    r.envelope["data"]["id"].as_str()?.to_owned(),
                ))
            })
            .collect();
        let lost: Vec<&Accepted> = want
            .iter()
            .filter(|((s, id), _)| !got.contains(&((*s).to_owned(), (*id).to_owned())))
            .map(|(_, m)| *m)
            .collect();
        if lost.is_empty() || Instant::now() > deadline {
            break lost;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Let redeliveries in flight settle before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // What the server knows of a lost message: the sender's status resource and whether
    // the recipient's message log has it.
    let mut lost_ids = Vec::new();
    for m in &lost {
        let from = if m.to_session == "a" { "b" } else { "a" };
        let sent = http
            .get(&format!("/api/sessions/{from}/messages/{}", m.id))
            .await
            .map(|(_, v)| v["timeline"].clone());
        let received = http
            .get(&format!("/api/sessions/{}/messages/{}", m.to_session, m.id))
            .await
            .map(|(code, v)| format!("{code} {}", v["status"]));
        lost_ids.push(format!(
            "{} {from}->{} {:?}: sender timeline {sent:?}; recipient log {received:?}",
            m.id, m.to_session, m.text
        ));
    }
    kill(&mut child).await;
    // Which lost messages the recipient's engine had committed as received (see
    // [`ENGINE_COMMITS_BEFORE_THE_EMBEDDER`]): its dedup keys, read from the store the
    // server left (the process is gone, so the database opens).
    let committed: HashSet<String> = {
        let stores = wa_engine::SledDatabase::open(dir.path().join("engine")).expect("stores");
        let mut ids = HashSet::new();
        for session in ["a", "b"] {
            let store = stores.store(session).expect("store");
            for key in wa_engine::Store::app_keys(&store, DEDUP_NAMESPACE).expect("dedup keys") {
                if let Some(id) = key.rsplit(|b| *b == 0).next() {
                    ids.insert(format!("{session}/{}", String::from_utf8_lossy(id)));
                }
            }
        }
        ids
    };
    let mut lost_after_engine_commit = Vec::new();
    let mut lost_replayed_as_duplicate = Vec::new();
    let mut lost_elsewhere = Vec::new();
    for (m, described) in lost.iter().zip(lost_ids) {
        if committed.contains(&format!("{}/{}", m.to_session, m.id)) {
            lost_after_engine_commit.push(described);
        } else if queued_at_kills.contains(&m.id) {
            lost_replayed_as_duplicate.push(described);
        } else {
            lost_elsewhere.push(described);
        }
    }
    let lost_ids = lost_elsewhere;
    if !lost_replayed_as_duplicate.is_empty() {
        eprintln!(
            "kill_loop: {} message(s) durably queued by the sandbox at a kill, replayed, and \
             never reported by the recipient's engine (engine defect, \
             ENGINE_SPLITS_RATCHET_AND_DEDUP):\n{}",
            lost_replayed_as_duplicate.len(),
            lost_replayed_as_duplicate.join("\n")
        );
    }
    if !lost_after_engine_commit.is_empty() {
        eprintln!(
            "kill_loop: {} message(s) lost after the recipient's engine committed them \
             (engine defect, ENGINE_COMMITS_BEFORE_THE_EMBEDDER):\n{}",
            lost_after_engine_commit.len(),
            lost_after_engine_commit.join("\n")
        );
    }

    let deliveries = receiver.received();
    // Event ids: one body each.
    let mut bodies: HashMap<&str, &[u8]> = HashMap::new();
    let mut unstable = Vec::new();
    for r in &deliveries {
        match bodies.get(r.event_id.as_str()) {
            Some(first) if *first != r.body.as_slice() => unstable.push(r.event_id.clone()),
            Some(_) => {}
            None => {
                bodies.insert(&r.event_id, &r.body);
            }
        }
    }
    let no_id = deliveries.iter().filter(|r| r.event_id.is_empty()).count();
    // Distinct events (redeliveries folded by event id).
    let mut events: HashMap<&str, &Value> = HashMap::new();
    for r in &deliveries {
        events.entry(r.event_id.as_str()).or_insert(&r.envelope);
    }
    let mut by_message: HashMap<(String, String), usize> = HashMap::new();
    let mut undecryptable = Vec::new();
    let mut rescans = Vec::new();
    let mut wrong_payload = Vec::new();
    for e in events.values() {
        let session = e["session"].as_str().unwrap_or_default();
        match e["type"].as_str().unwrap_or_default() {
            "message" => {
                let id = e["data"]["id"].as_str().unwrap_or_default();
                *by_message
                    .entry((session.to_owned(), id.to_owned()))
                    .or_default() += 1;
                if let Some(m) = want.get(&(session, id))
                    && e["data"]["text"] != m.text.as_str()
                {
                    wrong_payload.push(format!("{id}: {}", e["data"]));
                }
            }
            "message_undecryptable" => undecryptable.push(e.to_string()),
            "qr" | "pairing_code" | "logged_out"
                if e["timestamp"].as_u64().unwrap_or(0) >= paired_at_ms =>
            {
                rescans.push(e.to_string());
            }
            _ => {}
        }
    }
    let duplicates: Vec<_> = by_message.iter().filter(|(_, n)| **n > 1).collect();
    let redeliveries = deliveries.len() - events.len();

    let mut sorted = reconnects.clone();
    sorted.sort();
    let sends_per_s = accepted.len() as f64 / send_time.as_secs_f64();
    eprintln!(
        "kill_loop figures: seed={seed} kills={kills} (right after connected: {} + the pairing) \
         messages={} refused_tries={} send_time={:.1}s sends/s={sends_per_s:.1} \
         reconnect median={:?} p99={:?} max={:?} webhook_deliveries={} events={} \
         redeliveries={redeliveries} lost={} lost_after_engine_commit={} lost_replayed_as_duplicate={} total={:.1}s",
        soon_after_connected,
        accepted.len(),
        shared.refused.load(Ordering::Relaxed),
        send_time.as_secs_f64(),
        percentile(&sorted, 50),
        percentile(&sorted, 99),
        sorted.last().copied().unwrap_or_default(),
        deliveries.len(),
        events.len(),
        lost_ids.len(),
        lost_after_engine_commit.len(),
        lost_replayed_as_duplicate.len(),
        started.elapsed().as_secs_f64(),
    );

    let sample = |v: &[String]| v.iter().take(5).cloned().collect::<Vec<_>>().join("\n");
    assert!(
        lost_ids.is_empty(),
        "seed {seed}: {} of {} messages answered 201 never reached the webhook (and the \
         recipient's engine never committed them):\n{}",
        lost_ids.len(),
        accepted.len(),
        sample(&lost_ids)
    );
    assert!(
        ENGINE_COMMITS_BEFORE_THE_EMBEDDER || lost_after_engine_commit.is_empty(),
        "seed {seed}: {} messages answered 201 lost after the recipient's engine committed \
         them:\n{}",
        lost_after_engine_commit.len(),
        sample(&lost_after_engine_commit)
    );
    assert!(
        ENGINE_SPLITS_RATCHET_AND_DEDUP || lost_replayed_as_duplicate.is_empty(),
        "seed {seed}: {} messages answered 201 replayed after a kill and never reported:\n{}",
        lost_replayed_as_duplicate.len(),
        sample(&lost_replayed_as_duplicate)
    );
    assert!(
        duplicates.is_empty(),
        "seed {seed}: message ids delivered in several events: {duplicates:?}"
    );
    assert!(
        undecryptable.is_empty(),
        "seed {seed}: {} undecryptable:\n{}",
        undecryptable.len(),
        sample(&undecryptable)
    );
    assert!(
        rescans.is_empty(),
        "seed {seed}: rescans:\n{}",
        sample(&rescans)
    );
    assert!(
        unstable.is_empty(),
        "seed {seed}: event ids redelivered with another body: {unstable:?}"
    );
    assert_eq!(no_id, 0, "seed {seed}: deliveries without an event id");
    assert!(
        wrong_payload.is_empty(),
        "seed {seed}: messages with another text:\n{}",
        sample(&wrong_payload)
    );
}

fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms")
}
