//! Group commit and the async store contract beyond the conformance suite
//! (`tests/store_conformance.rs` runs the whole suite through every `Persist`):
//! concurrent sessions sharing flushes, the group limits, order within a session, a
//! failing flush reaching every waiter, a dead committer failing instead of hanging, and
//! batches acknowledged by a `GroupCommitter` surviving SIGKILL.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use wa_engine::store::{
    BlockingPersist, DurableFlush, GroupCommitConfig, GroupCommitter, MemoryStore, Persist, Store,
    StoreBatch, StoreError,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn batch(key: &[u8], value: u64) -> StoreBatch {
    let mut b = StoreBatch::new();
    b.put_app_value("t", key, value.to_be_bytes());
    b
}

fn read(store: &dyn Store, key: &[u8]) -> Option<u64> {
    store
        .app_value("t", key)
        .expect("read")
        .map(|b| u64::from_be_bytes(b.as_bytes().try_into().expect("8 bytes")))
}

/// A flush that blocks while the gate is closed and reports when one starts.
#[derive(Default)]
struct GatedFlush {
    state: Mutex<Gate>,
    changed: Condvar,
    flushes: AtomicU64,
}

#[derive(Default)]
struct Gate {
    open: bool,
    in_flush: bool,
}

impl GatedFlush {
    fn wait_in_flush(&self) {
        let mut s = self.state.lock().expect("lock");
        while !s.in_flush {
            s = self.changed.wait(s).expect("wait");
        }
    }

    fn open(&self) {
        self.state.lock().expect("lock").open = true;
        self.changed.notify_all();
    }
}

impl DurableFlush for GatedFlush {
    fn flush(&self) -> Result<(), StoreError> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        let mut s = self.state.lock().expect("lock");
        s.in_flush = true;
        self.changed.notify_all();
        while !s.open {
            s = self.changed.wait(s).expect("wait");
        }
        Ok(())
    }
}

/// Submits one batch, holds its flush, queues `queued` more from several sessions,
/// releases the flush and returns the number of flushes the queued batches took.
fn flushes_for_queued(queued: u64, config: GroupCommitConfig) -> (u64, Vec<Arc<MemoryStore>>) {
    let rt = runtime();
    let gate = Arc::new(GatedFlush::default());
    let committer = GroupCommitter::spawn(gate.clone(), config);
    let stores: Vec<Arc<MemoryStore>> = (0..4).map(|_| Arc::new(MemoryStore::new())).collect();
    let handles: Vec<Arc<dyn Persist>> = stores
        .iter()
        .map(|s| committer.persist_for(s.clone()))
        .collect();
    let first = handles[0].persist(batch(b"first", 0));
    gate.wait_in_flush();
    let rest: Vec<_> = (0..queued)
        .map(|i| handles[(i % 4) as usize].persist(batch(&i.to_be_bytes(), i)))
        .collect();
    gate.open();
    rt.block_on(first).expect("first");
    for done in rest {
        rt.block_on(done).expect("queued");
    }
    let stats = committer.stats();
    assert_eq!(stats.batches, queued + 1);
    assert_eq!(stats.flushes, gate.flushes.load(Ordering::SeqCst));
    (stats.flushes - 1, stores)
}

#[test]
fn batches_queued_during_a_flush_share_the_next_flush() {
    let (flushes, stores) = flushes_for_queued(40, GroupCommitConfig::default());
    assert_eq!(flushes, 1, "40 queued batches of 4 sessions, one flush");
    for i in 0..40u64 {
        assert_eq!(read(&*stores[(i % 4) as usize], &i.to_be_bytes()), Some(i));
    }
}

#[test]
fn a_group_closes_at_max_batches_and_at_max_bytes() {
    let by_count = GroupCommitConfig {
        max_batches: 4,
        ..GroupCommitConfig::default()
    };
    assert_eq!(flushes_for_queued(10, by_count).0, 3, "4 + 4 + 2");
    // Each batch is well over 10 bytes: every batch closes its group.
    let by_bytes = GroupCommitConfig {
        max_bytes: 10,
        ..GroupCommitConfig::default()
    };
    assert_eq!(flushes_for_queued(5, by_bytes).0, 5);
}

#[test]
fn max_delay_gathers_batches_that_arrive_later() {
    let rt = runtime();
    let flush = Arc::new(GatedFlush::default());
    flush.open();
    let committer = GroupCommitter::spawn(
        flush.clone(),
        GroupCommitConfig {
            max_delay: Duration::from_secs(30),
            max_batches: 2,
            ..GroupCommitConfig::default()
        },
    );
    let store = Arc::new(MemoryStore::new());
    let persist = committer.persist_for(store.clone());
    let first = persist.persist(batch(b"a", 1));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        flush.flushes.load(Ordering::SeqCst),
        0,
        "flushed before max_delay"
    );
    let second = persist.persist(batch(b"b", 2));
    rt.block_on(first).expect("first");
    rt.block_on(second).expect("second");
    assert_eq!(
        committer.stats().flushes,
        1,
        "the group closed at max_batches"
    );
}

#[test]
fn a_sessions_batches_apply_in_call_order_through_every_persist() {
    let rt = runtime();
    let store = Arc::new(MemoryStore::new());
    let committer = GroupCommitter::spawn(store.clone(), GroupCommitConfig::default());
    let group = committer.persist_for(store.clone());
    let blocking: Arc<dyn Persist> = Arc::new(BlockingPersist::new(store.clone()));
    for (name, persist) in [("group", group), ("blocking", blocking)] {
        let _entered = rt.enter();
        let pending: Vec<_> = (1..=200u64)
            .map(|i| persist.persist(batch(name.as_bytes(), i)))
            .collect();
        rt.block_on(async {
            for done in pending {
                done.await.expect("persist");
            }
        });
        assert_eq!(read(&*store, name.as_bytes()), Some(200), "{name}");
    }
}

#[test]
fn blocking_persist_outside_a_runtime_fails_instead_of_panicking() {
    let store = Arc::new(MemoryStore::new());
    let persist = BlockingPersist::new(store);
    let rt = runtime();
    let err = rt
        .block_on(persist.persist(batch(b"k", 1)))
        .expect_err("no runtime at call time");
    assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
}

/// A flush that always fails.
struct FailingFlush;

#[derive(Debug, thiserror::Error)]
#[error("disk on fire")]
struct DiskOnFire;

impl DurableFlush for FailingFlush {
    fn flush(&self) -> Result<(), StoreError> {
        Err(StoreError::Backend {
            op: "flush",
            source: Box::new(DiskOnFire),
        })
    }
}

fn chain_mentions(err: &StoreError, needle: &str) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.to_string().contains(needle) {
            return true;
        }
        cur = e.source();
    }
    false
}

#[test]
fn a_failed_flush_reaches_every_waiter_of_its_group() {
    let rt = runtime();
    let committer = GroupCommitter::spawn(Arc::new(FailingFlush), GroupCommitConfig::default());
    let sessions: Vec<Arc<dyn Persist>> = (0..8)
        .map(|_| committer.persist_for(Arc::new(MemoryStore::new())))
        .collect();
    let pending: Vec<_> = sessions
        .iter()
        .enumerate()
        .flat_map(|(i, p)| (0..5u64).map(move |j| p.persist(batch(&[i as u8], j))))
        .collect();
    let results: Vec<_> = rt.block_on(async {
        let mut out = Vec::new();
        for done in pending {
            out.push(done.await);
        }
        out
    });
    assert_eq!(results.len(), 40);
    for result in results {
        let err = result.expect_err("a waiter was released without a durable flush");
        assert!(
            matches!(err, StoreError::Backend { op: "flush", .. }),
            "{err:?}"
        );
        assert!(chain_mentions(&err, "disk on fire"), "cause lost: {err:?}");
    }
    let stats = committer.stats();
    assert_eq!((stats.batches, stats.failed), (0, 40));
}

/// A flush that panics: the committer thread dies.
struct PanickingFlush(AtomicBool);

impl DurableFlush for PanickingFlush {
    fn flush(&self) -> Result<(), StoreError> {
        self.0.store(true, Ordering::SeqCst);
        panic!("flush panicked (expected by the test)");
    }
}

#[test]
fn a_dead_committer_fails_its_waiters_and_later_calls_instead_of_hanging() {
    let rt = runtime();
    let flush = Arc::new(PanickingFlush(AtomicBool::new(false)));
    let committer = GroupCommitter::spawn(flush.clone(), GroupCommitConfig::default());
    let persist = committer.persist_for(Arc::new(MemoryStore::new()));
    let pending: Vec<_> = (0..10u64)
        .map(|i| persist.persist(batch(b"k", i)))
        .collect();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            for done in pending {
                let err = done.await.expect_err("answered by a dead committer");
                assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
            }
        })
        .await
        .expect("a waiter hung");
    });
    assert!(flush.0.load(Ordering::SeqCst));
    // The thread is gone: a new batch fails at once.
    let later = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), persist.persist(batch(b"k", 99))).await
    });
    assert!(later.expect("hung").is_err());
}

#[cfg(feature = "sled")]
mod sled {
    use std::io::{BufRead, BufReader};
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};

    use wa_engine::store::SledDatabase;

    use super::*;

    const SESSIONS: u64 = 16;

    /// Many sessions of one database commit concurrently through one committer, each
    /// reading its own write right after each `persist`; the flushes are shared.
    #[test]
    fn concurrent_sessions_commit_through_one_committer() {
        let rt = runtime();
        let tmp = tempfile::tempdir().expect("tempdir");
        let db = SledDatabase::open(tmp.path().join("db")).expect("open");
        let committer = GroupCommitter::spawn(Arc::new(db.clone()), GroupCommitConfig::default());
        let per_session = 40u64;
        let stores: Vec<Arc<dyn Store>> = (0..SESSIONS)
            .map(|i| Arc::new(db.store(&format!("s{i}")).expect("store")) as Arc<dyn Store>)
            .collect();
        rt.block_on(async {
            let mut tasks = Vec::new();
            for store in &stores {
                let store = store.clone();
                let persist = committer.persist_for(store.clone());
                tasks.push(tokio::spawn(async move {
                    for n in 1..=per_session {
                        let mut b = batch(b"last", n);
                        b.put_app_value("t", &n.to_be_bytes(), n.to_be_bytes());
                        persist.persist(b).await.expect("persist");
                        assert_eq!(read(&*store, b"last"), Some(n), "read-your-writes");
                    }
                }));
            }
            for task in tasks {
                task.await.expect("session task");
            }
        });
        let stats = committer.stats();
        assert_eq!(stats.batches, SESSIONS * per_session);
        assert!(
            stats.flushes < stats.batches,
            "no flush was shared: {stats:?}"
        );
        drop(stores);
        drop(committer);
        drop(db);
        // Everything is there after reopening (every store's seal matches sled).
        let db = SledDatabase::open(tmp.path().join("db")).expect("reopen");
        for i in 0..SESSIONS {
            let store = db.store(&format!("s{i}")).expect("store after reopen");
            for n in 1..=per_session {
                assert_eq!(read(&store, &n.to_be_bytes()), Some(n));
            }
        }
    }

    const CHILD_DIR: &str = "WA_COMMIT_CHILD_DIR";
    const KILL_SESSIONS: u64 = 4;

    struct ChildGuard(Child);

    impl Drop for ChildGuard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// The child of the SIGKILL test; a no-op in a normal run. `KILL_SESSIONS` sessions
    /// commit numbered batches through one committer without end, printing `ack <s> <n>`
    /// once batch `n` of session `s` is acknowledged.
    #[test]
    fn group_commit_child() {
        let Some(dir) = std::env::var_os(CHILD_DIR) else {
            return;
        };
        let db = SledDatabase::open(PathBuf::from(dir)).expect("child open");
        let committer = GroupCommitter::spawn(Arc::new(db.clone()), GroupCommitConfig::default());
        let rt = runtime();
        rt.block_on(async {
            let mut tasks = Vec::new();
            for s in 0..KILL_SESSIONS {
                let store: Arc<dyn Store> =
                    Arc::new(db.store(&format!("s{s}")).expect("child store"));
                let persist = committer.persist_for(store);
                tasks.push(tokio::spawn(async move {
                    for n in 1u64.. {
                        let mut b = batch(&n.to_be_bytes(), n);
                        b.put_app_value("t", b"last", n.to_be_bytes());
                        persist.persist(b).await.expect("child persist");
                        println!("ack {s} {n}");
                    }
                }));
            }
            for task in tasks {
                task.await.expect("child task");
            }
        });
    }

    #[cfg(unix)]
    #[test]
    fn batches_acknowledged_by_the_group_committer_survive_sigkill() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("db");
        let exe = std::env::current_exe().expect("current_exe");
        let mut child = ChildGuard(
            Command::new(exe)
                .args([
                    "--exact",
                    "sled::group_commit_child",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_DIR, &dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn child"),
        );
        let stdout = child.0.stdout.take().expect("stdout");
        let mut acked = vec![0u64; KILL_SESSIONS as usize];
        let mut lines = BufReader::new(stdout).lines();
        // Kill once every session has some acknowledged batches, at a point that varies
        // with the run (the child keeps committing while we read).
        let target = 30 + u64::from(std::process::id() % 50);
        while acked.iter().any(|n| *n < target) {
            let line = lines.next().expect("child exited").expect("read");
            // libtest's `test … ` prefix may share the first line.
            let Some(at) = line.find("ack ") else {
                continue;
            };
            let mut parts = line[at..].split_whitespace().skip(1);
            let s: usize = parts.next().expect("session").parse().expect("number");
            let n: u64 = parts.next().expect("seq").parse().expect("number");
            assert_eq!(n, acked[s] + 1, "acks of session {s} out of order");
            acked[s] = n;
        }
        child.0.kill().expect("SIGKILL");
        child.0.wait().expect("reap");
        // Acks the child printed before it died count too.
        for line in lines.map_while(Result::ok) {
            let mut parts = line.split_whitespace();
            if parts.next() == Some("ack")
                && let (Some(s), Some(n)) = (parts.next(), parts.next())
                && let (Ok(s), Ok(n)) = (s.parse::<usize>(), n.parse::<u64>())
            {
                acked[s] = acked[s].max(n);
            }
        }

        let db = SledDatabase::open(&dir).expect("reopen after SIGKILL");
        for (s, &last) in acked.iter().enumerate() {
            let store = db.store(&format!("s{s}")).expect("store after SIGKILL");
            let found = read(&store, b"last").expect("session lost everything");
            assert!(
                found >= last,
                "session {s}: batch {last} was acknowledged, store holds {found}"
            );
            for n in 1..=last {
                assert_eq!(
                    read(&store, &n.to_be_bytes()),
                    Some(n),
                    "session {s}: acknowledged batch {n} lost"
                );
            }
        }
    }
}
