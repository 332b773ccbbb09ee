//! The async store contract ([`Persist`]) and group commit ([`GroupCommitter`]).
//!
//! A [`Connection`](crate::conn) stages each [`StoreBatch`] and holds back the frames
//! that depend on it; its driver hands the batch to a [`Persist`] and releases those
//! frames once the returned future resolves. Three implementations:
//!
//! | | How | For |
//! |---|---|---|
//! | [`InlinePersist`] | `store.apply(batch)` inside `persist`, a ready future | stores whose `apply` never blocks ([`MemoryStore`](super::MemoryStore)) |
//! | [`BlockingPersist`] | `store.apply(batch)` on tokio's blocking pool, one flush per batch | the simple fallback for any blocking [`Store`] (feature `runtime`) |
//! | [`GroupCommitter`] | one OS thread per database; many sessions' batches made durable by one flush | sled with many sessions (wa-server) |
//!
//! A network database would implement [`Persist`] itself (one transaction per group,
//! awaited without blocking a worker) and keep [`Store`] for its cached reads.
//!
//! # Group commit
//!
//! The committer thread takes the first queued request, then gathers more until
//! [`GroupCommitConfig::max_delay`] has passed since it took the first one or the
//! group holds [`max_batches`](GroupCommitConfig::max_batches) batches or
//! [`max_bytes`](GroupCommitConfig::max_bytes) bytes. It applies every batch of the
//! group with [`Store::apply_unflushed`] (each atomic and visible to readers at once),
//! calls [`DurableFlush::flush`] once, calls [`Store::mark_flushed`] once per store in
//! the group (sled advances its seal there), and only then answers the waiters.
//!
//! - A waiter is released only after a flush that covers its batch returned `Ok`.
//! - A batch whose `apply_unflushed` fails fails alone (none of it is visible); the
//!   rest of the group goes on.
//! - A failed flush fails every waiter of its group with the same cause (their
//!   batches are visible but their durability is unknown, as with [`Store::apply`]).
//! - If the committer thread dies (a panic in a backend), every pending waiter
//!   resolves to an error and later calls fail at once: nothing hangs.
//! - Batches of one session are applied in the order of their `persist` calls (one
//!   queue, one thread); a session must commit through one committer only, and only
//!   through its own database's committer.
//!
//! ## The trade
//!
//! One sled flush (a log write plus fsync) costs the same for one batch or a
//! thousand, so under load a group shares it and throughput grows with the number of
//! concurrent sessions instead of being capped at one flush per batch. The price is
//! latency: a batch waits for the flush of the group before it (at most one flush,
//! since requests queue while it runs) plus up to `max_delay` of gathering. The
//! defaults ([`GroupCommitConfig::default`]) add no deliberate delay: the queue that
//! builds up while a flush runs is the group (natural batching), so a lone session pays
//! nothing over a direct `apply` and a busy database gets large groups anyway. A
//! positive `max_delay` trades that much latency for bigger groups when arrivals are
//! spread out (e.g. a slow network database whose transaction cost dwarfs the delay).

#[cfg(feature = "runtime")]
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::{Store, StoreBatch, StoreError};

/// The future [`Persist::persist`] returns: resolves to `Ok(())` once the batch is
/// visible to the session's [`Store`] reads and on stable storage.
pub type PersistFuture = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'static>>;

/// The async store contract: makes one session's write batch durable without blocking a
/// tokio worker.
///
/// The batch is taken when `persist` is called, not when the future is first polled,
/// so a session's batches commit in call order even when their futures are awaited
/// together. Dropping the future does not cancel the write.
pub trait Persist: Send + Sync + 'static {
    /// Resolves once `batch` is visible to the session's [`Store`] reads and on stable
    /// storage. An empty batch resolves `Ok` at once.
    ///
    /// # Errors
    /// What [`Store::apply`] would return for the batch, or [`StoreError::Backend`] if
    /// the committer stopped or the flush covering the batch failed (then the batch may
    /// be visible, but its durability is unknown: treat it as fatal for the connection).
    fn persist(&self, batch: StoreBatch) -> PersistFuture;
}

/// Flushes one database: makes every write applied to any of its stores before the
/// call durable (sled: `Db::flush`, i.e. write the log and fsync).
pub trait DurableFlush: Send + Sync + 'static {
    /// Flushes the database. Blocking.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the backend cannot write or sync.
    fn flush(&self) -> Result<(), StoreError>;
}

/// The cause of an error handed to several waiters: one failed flush, shared.
#[derive(Debug, Clone)]
struct SharedCause(Arc<StoreError>);

impl fmt::Display for SharedCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for SharedCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// The cause when a committer stopped before answering.
#[derive(Debug, thiserror::Error)]
#[error("the store committer stopped before making the batch durable")]
struct CommitterStopped;

fn stopped() -> StoreError {
    StoreError::backend("group commit", CommitterStopped)
}

// ---------------------------------------------------------------------------------------
// A one-shot reply channel (no runtime needed, so the committer builds without tokio).

struct ReplySlot {
    result: Option<Result<(), StoreError>>,
    waker: Option<Waker>,
    /// The sender is gone (answered or dropped).
    closed: bool,
}

/// The committer's end: answers once; dropping it unanswered fails the waiter.
struct ReplySender(Arc<Mutex<ReplySlot>>);

/// The waiter's end: a future of the answer.
struct ReplyReceiver(Arc<Mutex<ReplySlot>>);

fn reply_channel() -> (ReplySender, ReplyReceiver) {
    let slot = Arc::new(Mutex::new(ReplySlot {
        result: None,
        waker: None,
        closed: false,
    }));
    (ReplySender(slot.clone()), ReplyReceiver(slot))
}

impl ReplySender {
    fn send(self, result: Result<(), StoreError>) {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        slot.result = Some(result);
        // `Drop` closes and wakes.
    }
}

impl Drop for ReplySender {
    fn drop(&mut self) {
        let waker = {
            let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            slot.closed = true;
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Future for ReplyReceiver {
    type Output = Result<(), StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(result) = slot.result.take() {
            return Poll::Ready(result);
        }
        if slot.closed {
            return Poll::Ready(Err(stopped()));
        }
        slot.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

// ---------------------------------------------------------------------------------------

/// Applies each batch synchronously inside [`persist`](Persist::persist) and returns a
/// ready future: for stores whose [`Store::apply`] never blocks, such as
/// [`MemoryStore`](super::MemoryStore) (no thread hop, no allocation beyond the box).
/// Do not use it with a store that does I/O: it would block the calling worker.
pub struct InlinePersist {
    store: Arc<dyn Store>,
}

impl InlinePersist {
    /// A handle applying to `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

impl Persist for InlinePersist {
    fn persist(&self, batch: StoreBatch) -> PersistFuture {
        let result = if batch.is_empty() {
            Ok(())
        } else {
            self.store.apply(batch)
        };
        Box::pin(std::future::ready(result))
    }
}

impl fmt::Debug for InlinePersist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InlinePersist").finish_non_exhaustive()
    }
}

/// Runs `store.apply(batch)` on tokio's blocking pool (no grouping): the simple
/// fallback, one flush per batch. Batches of one handle are applied one at a time in
/// call order (a single blocking task drains the handle's queue), so at most one
/// blocking thread works for a session at a time.
///
/// [`persist`](Persist::persist) must be called from within a tokio runtime; outside
/// one it fails with [`StoreError::Backend`].
#[cfg(feature = "runtime")]
pub struct BlockingPersist {
    inner: Arc<BlockingInner>,
}

#[cfg(feature = "runtime")]
struct BlockingInner {
    store: Arc<dyn Store>,
    /// Batches waiting for the drain task, and whether one is scheduled.
    queue: Mutex<BlockingQueue>,
}

#[cfg(feature = "runtime")]
#[derive(Default)]
struct BlockingQueue {
    pending: VecDeque<(StoreBatch, ReplySender)>,
    draining: bool,
}

/// The cause when [`BlockingPersist`] is used outside a tokio runtime.
#[cfg(feature = "runtime")]
#[derive(Debug, thiserror::Error)]
#[error("BlockingPersist needs a tokio runtime")]
struct NoRuntime;

#[cfg(feature = "runtime")]
impl BlockingPersist {
    /// A handle applying to `store` on the blocking pool.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            inner: Arc::new(BlockingInner {
                store,
                queue: Mutex::new(BlockingQueue::default()),
            }),
        }
    }
}

#[cfg(feature = "runtime")]
impl BlockingInner {
    /// Applies queued batches in order until the queue is empty.
    fn drain(&self) {
        loop {
            let next = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                let next = queue.pending.pop_front();
                if next.is_none() {
                    queue.draining = false;
                }
                next
            };
            let Some((batch, reply)) = next else {
                return;
            };
            reply.send(self.store.apply(batch));
        }
    }
}

#[cfg(feature = "runtime")]
impl Persist for BlockingPersist {
    fn persist(&self, batch: StoreBatch) -> PersistFuture {
        if batch.is_empty() {
            return Box::pin(std::future::ready(Ok(())));
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Box::pin(std::future::ready(Err(StoreError::backend(
                "persist", NoRuntime,
            ))));
        };
        let (tx, rx) = reply_channel();
        let start = {
            let mut queue = self
                .inner
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            queue.pending.push_back((batch, tx));
            !std::mem::replace(&mut queue.draining, true)
        };
        if start {
            let inner = self.inner.clone();
            // If the task never runs (runtime shutting down), its queue is dropped
            // with it and every waiter fails instead of hanging.
            drop(runtime.spawn_blocking(move || inner.drain()));
        }
        Box::pin(rx)
    }
}

#[cfg(feature = "runtime")]
impl fmt::Debug for BlockingPersist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingPersist").finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------

/// Limits of one group of a [`GroupCommitter`] (see the [module docs](self) for the
/// trade). A group closes at whichever limit it reaches first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitConfig {
    /// Longest time the committer keeps gathering after taking a group's first batch.
    /// Zero: take only what is already queued.
    pub max_delay: Duration,
    /// Most batches in one group (at least 1).
    pub max_batches: usize,
    /// A group closes once its batches hold at least this many bytes of keys and
    /// values ([`StoreBatch::byte_len`]); a single larger batch still commits alone.
    pub max_bytes: usize,
}

impl Default for GroupCommitConfig {
    /// `max_delay` 0, `max_batches` 1024, `max_bytes` 8 MiB.
    ///
    /// No deliberate delay: batches that queue while the previous flush runs form the
    /// next group, so grouping follows the load and an idle database adds no latency
    /// (measured in `benches/benches/group_commit.rs`: with 64 concurrent sessions this
    /// already shares each flush among tens of batches). The count and byte limits only
    /// bound the time a group spends applying and the memory it holds (1024 batches of
    /// a typical 1-2 KB message batch is about 2 MB, a few ms of sled inserts), so the
    /// last waiter of a big group is not held back much longer than the first.
    fn default() -> Self {
        Self {
            max_delay: Duration::ZERO,
            max_batches: 1024,
            max_bytes: 8 << 20,
        }
    }
}

/// Counters of a [`GroupCommitter`] since it was spawned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Batches made durable (answered `Ok`).
    pub batches: u64,
    /// Flushes of the database (one per group with at least one applied batch).
    pub flushes: u64,
    /// Batches answered with an error.
    pub failed: u64,
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    flushes: AtomicU64,
    failed: AtomicU64,
}

/// One queued batch.
struct Request {
    store: Arc<dyn Store>,
    batch: StoreBatch,
    bytes: usize,
    reply: ReplySender,
}

/// Group commit: one committer per database, on its own OS thread; many sessions'
/// batches made durable by one flush (see the [module docs](self)).
///
/// Cheap to clone (a handle). The thread runs until every handle and every
/// [`persist_for`](Self::persist_for) handle is dropped, then exits after answering
/// what was queued.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use wa_engine::store::{GroupCommitConfig, GroupCommitter, MemoryStore, Store, StoreBatch};
///
/// let store = Arc::new(MemoryStore::new());
/// let committer = GroupCommitter::spawn(store.clone(), GroupCommitConfig::default());
/// let persist = committer.persist_for(store.clone());
/// let mut batch = StoreBatch::new();
/// batch.put_app_value("ns", b"k", b"v".to_vec());
/// let done = persist.persist(batch);
/// # let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// rt.block_on(done)?; // in async code: `.await?`
/// assert!(store.app_value("ns", b"k")?.is_some());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct GroupCommitter {
    tx: mpsc::Sender<Request>,
    counters: Arc<Counters>,
}

impl GroupCommitter {
    /// Starts the committer thread (`wa-group-commit`) for the database `flush` flushes.
    /// Every store later passed to [`persist_for`](Self::persist_for) must live in that
    /// database.
    ///
    /// # Panics
    /// If the OS cannot start a thread (as `std::thread::spawn`).
    pub fn spawn(flush: Arc<dyn DurableFlush>, config: GroupCommitConfig) -> Self {
        let (tx, rx) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let thread_counters = counters.clone();
        let config = GroupCommitConfig {
            max_batches: config.max_batches.max(1),
            ..config
        };
        std::thread::Builder::new()
            .name("wa-group-commit".into())
            .spawn(move || run(&rx, &*flush, config, &thread_counters))
            .expect("spawn the group commit thread");
        Self { tx, counters }
    }

    /// A per-session handle that commits `store`'s batches through this committer.
    /// One store should have one handle (its batches then keep their order).
    pub fn persist_for(&self, store: Arc<dyn Store>) -> Arc<dyn Persist> {
        Arc::new(GroupPersist {
            store,
            tx: self.tx.clone(),
        })
    }

    /// Counters since the committer was spawned (e.g. flushes per batch).
    pub fn stats(&self) -> CommitStats {
        CommitStats {
            batches: self.counters.batches.load(Ordering::Relaxed),
            flushes: self.counters.flushes.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
        }
    }
}

impl fmt::Debug for GroupCommitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupCommitter")
            .field("stats", &self.stats())
            .finish()
    }
}

/// A session's handle on a [`GroupCommitter`].
struct GroupPersist {
    store: Arc<dyn Store>,
    tx: mpsc::Sender<Request>,
}

impl Persist for GroupPersist {
    fn persist(&self, batch: StoreBatch) -> PersistFuture {
        if batch.is_empty() {
            return Box::pin(std::future::ready(Ok(())));
        }
        let (reply, rx) = reply_channel();
        let request = Request {
            store: self.store.clone(),
            bytes: batch.byte_len(),
            batch,
            reply,
        };
        // On a stopped committer the request (and its reply sender) comes back and is
        // dropped here, so `rx` resolves to the "stopped" error at once.
        if let Err(mpsc::SendError(request)) = self.tx.send(request) {
            drop(request);
        }
        Box::pin(rx)
    }
}

/// The committer thread: groups until every sender is gone.
fn run(
    rx: &mpsc::Receiver<Request>,
    flush: &dyn DurableFlush,
    config: GroupCommitConfig,
    counters: &Counters,
) {
    while let Ok(first) = rx.recv() {
        let deadline = Instant::now() + config.max_delay;
        let mut bytes = first.bytes;
        let mut group = vec![first];
        while group.len() < config.max_batches && bytes < config.max_bytes {
            let next = match rx.try_recv() {
                Ok(request) => request,
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    match rx.recv_timeout(deadline - now) {
                        Ok(request) => request,
                        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                    }
                }
            };
            bytes += next.bytes;
            group.push(next);
        }
        commit_group(group, flush, counters);
    }
    tracing::debug!("group committer stopped: no handles left");
}

/// Applies, flushes once, marks each store flushed, answers.
fn commit_group(group: Vec<Request>, flush: &dyn DurableFlush, counters: &Counters) {
    let size = group.len();
    let mut applied: Vec<(Arc<dyn Store>, ReplySender)> = Vec::with_capacity(size);
    for request in group {
        match request.store.apply_unflushed(request.batch) {
            Ok(()) => applied.push((request.store, request.reply)),
            Err(e) => {
                tracing::warn!(error = %e, "group commit: a batch failed to apply");
                counters.failed.fetch_add(1, Ordering::Relaxed);
                request.reply.send(Err(e));
            }
        }
    }
    if applied.is_empty() {
        return;
    }
    counters.flushes.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = flush.flush() {
        tracing::warn!(error = %e, batches = applied.len(), "group commit: flush failed");
        let cause = SharedCause(Arc::new(e));
        counters
            .failed
            .fetch_add(applied.len() as u64, Ordering::Relaxed);
        for (_, reply) in applied {
            reply.send(Err(StoreError::backend("flush", cause.clone())));
        }
        return;
    }
    // Each distinct store once, in first-seen order (groups are small; a linear scan).
    let mut marked: Vec<(*const (), Result<(), SharedCause>)> = Vec::new();
    for (store, reply) in applied {
        let id = Arc::as_ptr(&store).cast::<()>();
        let outcome = match marked.iter().find(|(seen, _)| *seen == id) {
            Some((_, outcome)) => outcome.clone(),
            None => {
                let outcome = store.mark_flushed().map_err(|e| {
                    tracing::warn!(error = %e, "group commit: marking a store flushed failed");
                    SharedCause(Arc::new(e))
                });
                marked.push((id, outcome.clone()));
                outcome
            }
        };
        match outcome {
            Ok(()) => {
                counters.batches.fetch_add(1, Ordering::Relaxed);
                reply.send(Ok(()));
            }
            Err(cause) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                reply.send(Err(StoreError::backend("seal", cause)));
            }
        }
    }
    tracing::trace!(batches = size, "group committed");
}
