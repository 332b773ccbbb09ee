//! Connection costs on loopback (issue 3): the real `Client` against an in-process wa-sandbox
//! over `ws://127.0.0.1`, on a multi-threaded tokio runtime.
//!
//! - `login_per_connection`: a paired device reconnecting: `connect()` (TCP, WebSocket
//!   upgrade, Noise XX with certificate chain check, login ClientPayload) until the
//!   `Connected` event (`<success>`).
//! - `pairing_to_connected`: a fresh device: from the phone's QR scan to `Connected`
//!   (pair-success, verification and storage, pair-device-sign, 515, reconnect, login).
//!   A new account per iteration (an account has at most 255 device ids).
//!
//! The sandbox's first-stanza delay (default 100 ms, for Baileys) is set to **0** here, so the
//! figures are the protocol's own cost. Stores are `MemoryStore`s. Shutting a client down is
//! outside the timed section.
//!
//! Run: `cargo bench -p wa-benches --bench sandbox`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use wa_engine::{Client, ClientBuilder, Event, Events, MemoryStore, Store};
use wa_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn sandbox() -> SandboxHandle {
    Sandbox::start(
        SandboxConfig::default()
            .with_seed(1)
            .with_first_stanza_delay(Duration::ZERO),
    )
    .await
    .expect("sandbox")
}

fn builder(sb: &SandboxHandle, store: Arc<dyn Store>) -> ClientBuilder {
    Client::builder(store)
        .url(sb.ws_url())
        .trust_root(sb.trust_root())
}

async fn next(events: &mut Events) -> Event {
    tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .expect("an event within 20 s")
        .expect("event stream open")
}

async fn until_connected(events: &mut Events) {
    loop {
        if let Event::Connected { .. } = next(events).await {
            return;
        }
    }
}

/// Phone numbers for fresh accounts.
fn phone_number(i: u64) -> String {
    format!("1555{:07}", i % 10_000_000)
}

fn bench_sandbox(c: &mut Criterion) {
    let rt = runtime();
    let sb = rt.block_on(sandbox());
    let mut group = c.benchmark_group("sandbox_loopback");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(10));

    // One paired device, reconnecting.
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    rt.block_on(async {
        let phone = sb.create_account(&phone_number(0)).expect("account");
        let (client, mut events) = builder(&sb, store.clone())
            .connect()
            .await
            .expect("connect");
        let Event::Qr { code, .. } = next(&mut events).await else {
            panic!("QR first");
        };
        phone.scan(&code).expect("scan");
        until_connected(&mut events).await;
        client.shutdown().await;
    });
    group.bench_function("login_per_connection", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let (client, mut events) = builder(&sb, store.clone())
                        .connect()
                        .await
                        .expect("connect");
                    until_connected(&mut events).await;
                    total += start.elapsed();
                    client.shutdown().await;
                }
                total
            })
        });
    });

    let mut accounts = 0u64;
    group.bench_function("pairing_to_connected", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    accounts += 1;
                    let phone = sb.create_account(&phone_number(accounts)).expect("account");
                    let (client, mut events) = builder(&sb, Arc::new(MemoryStore::new()))
                        .connect()
                        .await
                        .expect("connect");
                    let Event::Qr { code, .. } = next(&mut events).await else {
                        panic!("QR first");
                    };
                    let start = Instant::now();
                    phone.scan(&code).expect("scan");
                    until_connected(&mut events).await;
                    total += start.elapsed();
                    client.shutdown().await;
                }
                total
            })
        });
    });
    group.finish();
    rt.block_on(sb.shutdown());
}

criterion_group!(benches, bench_sandbox);
criterion_main!(benches);
