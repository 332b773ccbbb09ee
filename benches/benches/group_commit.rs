//! Commit throughput of N concurrent sessions on one `SledDatabase` (issue 12 item 2):
//! - `flush_per_batch`: every batch is `Store::apply` (sled apply + flush + seal) on
//!   tokio's blocking pool (`BlockingPersist`), what a session paid before group commit;
//! - `group_commit`: every batch goes through one `GroupCommitter` for the database
//!   (default config: no added delay).
//!
//! Each session is a tokio task committing batches one after another (awaiting each,
//! as a driver does before releasing the frames that depend on it). A batch is shaped
//! like a received message's: a ~1 KB session record and a ~200-byte app value. Criterion
//! reports batches/s (throughput in elements); after the run the bench prints the
//! flushes per batch of each configuration.
//!
//! Run: `cargo bench -p wa-benches --bench group_commit`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wa_engine::store::{
    BlockingPersist, GroupCommitConfig, GroupCommitter, Persist, ProtocolAddress, SledDatabase,
    Store, StoreBatch,
};

/// Batches each session commits per iteration.
const BATCHES_PER_SESSION: u64 = 20;

fn message_batch(n: u64) -> StoreBatch {
    let mut b = StoreBatch::new();
    b.put_session(
        &ProtocolAddress::new("559984726662", (n % 4) as u32),
        vec![n as u8; 1024],
    )
    .put_app_value("msglog", &n.to_be_bytes(), vec![7u8; 200]);
    b
}

struct Setup {
    _dir: tempfile::TempDir,
    _db: SledDatabase,
    persists: Vec<Arc<dyn Persist>>,
    committer: Option<GroupCommitter>,
}

fn setup(sessions: usize, group: bool) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = SledDatabase::open(dir.path().join("db")).expect("open");
    let committer =
        group.then(|| GroupCommitter::spawn(Arc::new(db.clone()), GroupCommitConfig::default()));
    let persists = (0..sessions)
        .map(|i| {
            let store: Arc<dyn Store> = Arc::new(db.store(&format!("s{i}")).expect("store"));
            match &committer {
                Some(c) => c.persist_for(store),
                None => Arc::new(BlockingPersist::new(store)) as Arc<dyn Persist>,
            }
        })
        .collect();
    Setup {
        _dir: dir,
        _db: db,
        persists,
        committer,
    }
}

/// Runs every session's batches concurrently; returns the wall time.
async fn round(persists: &[Arc<dyn Persist>], start: u64) -> Duration {
    let t = Instant::now();
    let mut tasks = Vec::with_capacity(persists.len());
    for persist in persists {
        let persist = persist.clone();
        tasks.push(tokio::spawn(async move {
            for n in start..start + BATCHES_PER_SESSION {
                persist.persist(message_batch(n)).await.expect("persist");
            }
        }));
    }
    for task in tasks {
        task.await.expect("session");
    }
    t.elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("group_commit");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    let mut report = Vec::new();
    for sessions in [1usize, 16, 64] {
        g.throughput(Throughput::Elements(sessions as u64 * BATCHES_PER_SESSION));
        for (name, group) in [("flush_per_batch", false), ("group_commit", true)] {
            let s = setup(sessions, group);
            let mut next = 0u64;
            let mut batches = 0u64;
            let mut total = Duration::ZERO;
            g.bench_with_input(BenchmarkId::new(name, sessions), &sessions, |b, _| {
                b.iter_custom(|iters| {
                    let mut elapsed = Duration::ZERO;
                    for _ in 0..iters {
                        elapsed += rt.block_on(round(&s.persists, next));
                        next += BATCHES_PER_SESSION;
                        batches += sessions as u64 * BATCHES_PER_SESSION;
                    }
                    total += elapsed;
                    elapsed
                });
            });
            let flushes_per_batch = match &s.committer {
                Some(c) => {
                    let stats = c.stats();
                    stats.flushes as f64 / stats.batches.max(1) as f64
                }
                None => 1.0,
            };
            report.push(format!(
                "{name}/{sessions}: {:.0} batches/s overall, {flushes_per_batch:.3} flushes per batch",
                batches as f64 / total.as_secs_f64().max(1e-9)
            ));
        }
    }
    g.finish();
    for line in report {
        println!("{line}");
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
