//! The event fan-out: one worker that takes every session's events off a bounded queue, writes
//! their webhook deliveries to the durable outbox (one batch and one flush for all events
//! waiting, a group commit), then shows them to SSE subscribers and wakes the webhook
//! delivery worker (`crate::webhook::run`).
//!
//! A session's event loop only *enqueues* ([`enqueue`]): it never waits for a disk flush or
//! an HTTP receiver. Route handlers use [`emit`], which also waits until the event is durable
//! (as before the fan-out existed: a `201` answer means its `message_status` event is in the
//! outbox).
//!
//! Guarantees:
//! - **Order.** One queue and one worker: events are written and broadcast in the order they
//!   were enqueued, per session and overall.
//! - **Durability.** An event reaches SSE subscribers only after its webhook deliveries are
//!   flushed, so every event a client could have seen survives a crash (SIGKILL) and is
//!   delivered after the restart.
//! - **When the queue is full** ([`ServerConfig::event_queue`](crate::ServerConfig), default
//!   [`DEFAULT_QUEUE`]) the emitter waits for room: nothing is dropped. The queue only fills
//!   when the disk cannot keep up; one flush empties up to [`BATCH`] events.
//! - **After shutdown closed the queue** ([`Fanout::close`]), a late event is written and
//!   flushed by its emitter directly, as before the fan-out existed.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::db::WebhookRecord;
use crate::events::Envelope;
use crate::session::Session;
use crate::state::AppState;

/// Default capacity of the queue, events (all sessions together).
pub(crate) const DEFAULT_QUEUE: usize = 1024;

/// Most events written with one flush.
const BATCH: usize = 256;

/// One event on its way out.
struct Job {
    session: String,
    /// The session's SSE channel.
    subscribers: crate::session::Subscribers,
    envelope: Arc<Envelope>,
    /// The webhooks subscribed to this event type (may be empty).
    hooks: Vec<WebhookRecord>,
    /// Deliveries rendered by the enabled dialects (`crate::dialect`), may be empty.
    prepared: Vec<crate::dialect::Prepared>,
    /// Told once the event is durable and broadcast ([`emit`] waits on it).
    done: Option<oneshot::Sender<()>>,
}

/// The fan-out queue and its worker.
pub(crate) struct Fanout {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    rx: Mutex<Option<mpsc::Receiver<Job>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout").finish_non_exhaustive()
    }
}

impl Fanout {
    /// A queue of `capacity` events (at least 1); events wait in it until [`Self::start`].
    pub(crate) fn new(capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        Self {
            tx: Mutex::new(Some(tx)),
            rx: Mutex::new(Some(rx)),
            task: Mutex::new(None),
        }
    }

    /// Starts the worker (once).
    pub(crate) fn start(&self, state: &AppState) {
        let rx = self
            .rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(rx) = rx {
            let task = tokio::spawn(run(state.clone(), rx));
            *self.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(task);
        }
    }

    /// Closes the queue and waits until the worker has written and broadcast everything
    /// queued. Later events take the direct path (see the module docs).
    pub(crate) async fn close(&self) {
        drop(
            self.tx
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    fn sender(&self) -> Option<mpsc::Sender<Job>> {
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Emits event `kind` of `session` and waits until it is durable and broadcast (route
/// handlers). Database failures are logged.
pub(crate) async fn emit(
    state: &AppState,
    session: &Session,
    kind: &'static str,
    data: serde_json::Value,
) {
    let (done, wait) = oneshot::channel();
    if submit(state, session, kind, data, Some(done)).await {
        let _ = wait.await;
    }
}

/// Emits event `kind` of `session` without waiting for the disk: it waits only for room in
/// the queue (a session's event loop). Database failures are logged.
pub(crate) async fn enqueue(
    state: &AppState,
    session: &Session,
    kind: &'static str,
    data: serde_json::Value,
) {
    submit(state, session, kind, data, None).await;
}

/// Queues the event; `false` when it was handled directly (queue closed).
async fn submit(
    state: &AppState,
    session: &Session,
    kind: &'static str,
    data: serde_json::Value,
    done: Option<oneshot::Sender<()>>,
) -> bool {
    let envelope = Arc::new(Envelope::new(kind, &session.id, data));
    let record = session.record();
    // The session's own filter (settings.webhook_events) first, then each webhook's.
    let emits = record.settings.emits_to_webhooks(kind);
    let hooks: Vec<WebhookRecord> = record
        .webhooks
        .into_iter()
        .filter(|_| emits)
        .filter(|h| h.events.is_empty() || h.events.iter().any(|e| e == kind || e == "*"))
        .collect();
    let prepared = crate::dialect::render(state, session, &envelope);
    let job = Job {
        session: session.id.clone(),
        subscribers: session.subscribers(),
        envelope,
        hooks,
        prepared,
        done,
    };
    let job = match state.fanout().sender() {
        Some(tx) => match tx.send(job).await {
            Ok(()) => return true,
            Err(mpsc::error::SendError(job)) => job,
        },
        None => job,
    };
    // Closed for shutdown: write and broadcast here, in the same order (durable first).
    finish(state, vec![job]).await;
    false
}

/// The worker: takes what is queued (up to [`BATCH`]), writes and flushes it, broadcasts it.
async fn run(state: AppState, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        finish(&state, jobs).await;
    }
}

/// Writes the deliveries of `jobs` (one batch, one flush), then broadcasts them in order.
async fn finish(state: &AppState, jobs: Vec<Job>) {
    let events: Vec<(&str, &[WebhookRecord], &Envelope)> = jobs
        .iter()
        .filter(|j| !j.hooks.is_empty())
        .map(|j| (j.session.as_str(), j.hooks.as_slice(), &*j.envelope))
        .collect();
    if !events.is_empty() {
        match crate::webhook::enqueue_many(state.db(), &events).await {
            Ok(()) => state.outbox_notify().notify_one(),
            Err(e) => tracing::error!(events = events.len(), error = %e, "cannot queue webhooks"),
        }
    }
    drop(events);
    let prepared: Vec<crate::dialect::Prepared> = jobs
        .iter()
        .flat_map(|j| j.prepared.iter().cloned())
        .collect();
    if !prepared.is_empty() {
        match crate::webhook::enqueue_prepared(state.db(), &prepared).await {
            Ok(()) => state.outbox_notify().notify_one(),
            Err(e) => {
                tracing::error!(events = prepared.len(), error = %e, "cannot queue dialect webhooks")
            }
        }
    }
    for job in jobs {
        // No subscribers is fine.
        job.subscribers.send(job.envelope);
        if let Some(done) = job.done {
            let _ = done.send(());
        }
    }
}
