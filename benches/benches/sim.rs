//! The deterministic test kit (`wa_sandbox::sim`, issue 10): engine `Connection`s against the
//! sandbox's `ServerSession`s in memory, on simulated time, no tokio.
//!
//! - `pair_and_message`: two fresh devices pair by QR (pair-success, 515, reconnect, login,
//!   prekey upload), then one text goes from the first to the second and is decrypted.
//!   Simulated time includes the real 100 ms first-stanza pause per connection; the wall
//!   time is the protocol's own cost (crypto, codec, stores).
//!
//! Run: `cargo bench -p wa-benches --bench sim`.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use wa_engine::conn::{Event, Request};
use wa_sandbox::sim::Devices;

fn pair_and_message(seed: u64) {
    let mut w = Devices::new(seed);
    let alice = w.add_device("15550000001");
    let bob = w.add_device("15550000002");
    w.pair(alice);
    let bob_jid = w.pair(bob);
    w.send(
        alice,
        Request::SendMessage {
            to: bob_jid.to_non_ad(),
            message: Box::new(wa_engine::message::content::text("bench")),
            id: None,
        },
    )
    .expect("send");
    let got = w.wait_for(bob, Duration::from_secs(60), |e| match e {
        Event::Message(m) => m.text().map(str::to_owned),
        _ => None,
    });
    assert_eq!(got.as_deref(), Some("bench"));
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim");
    group.sample_size(20);
    group.bench_function("pair_and_message", |b| b.iter(|| pair_and_message(1)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
