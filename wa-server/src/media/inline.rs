//! The inline download workers: a bounded pool that downloads small received files for the
//! `base64` field of their `message` event
//! ([`MediaSettings::inline_max_bytes`](crate::MediaSettings)), so a session's event loop
//! never waits on the media host.
//!
//! - [`MediaSettings::inline_concurrency`](crate::MediaSettings) downloads run at once
//!   (default [`DEFAULT_CONCURRENCY`]), each for at most [`INLINE_TIMEOUT`];
//! - up to [`MediaSettings::inline_queue`](crate::MediaSettings) more wait (default
//!   [`DEFAULT_QUEUE`]), all sessions together;
//! - when the queue is full, [`Downloads::submit`] refuses at once and the caller emits the
//!   event without `base64`, with `inline_error` (see
//!   [`emit_message`](super::incoming::emit_message)). Nothing durable is lost: the download
//!   reference is already stored, so `download_url` works, and the event itself is emitted
//!   and written to the webhook outbox like any other;
//! - the event of a file put inline is emitted when its download ended, so it may come after
//!   events the session received later;
//! - at shutdown, downloads in progress stop and queued ones are skipped: their events are
//!   emitted with `inline_error` before the event fan-out closes.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use wa_engine::Client;
use wa_engine::media::MediaRef;

use super::incoming::set_inline;
use crate::fanout;
use crate::session::Session;
use crate::state::AppState;

/// Default number of inline downloads running at once, all sessions together.
pub(crate) const DEFAULT_CONCURRENCY: usize = 8;
/// Default number of inline downloads waiting for a worker, all sessions together.
pub(crate) const DEFAULT_QUEUE: usize = 1024;
/// How long an inline download of a small received file may take.
pub(crate) const INLINE_TIMEOUT: Duration = Duration::from_secs(30);

/// A received message whose file is to be put inline.
pub(crate) struct InlineJob {
    /// Its session.
    pub(crate) session: Arc<Session>,
    /// The session's client, to download with.
    pub(crate) client: Client,
    /// The file.
    pub(crate) media: MediaRef,
    /// The `message` event's data, `media.download_url` already set.
    pub(crate) data: serde_json::Value,
}

/// The queue and its workers.
pub(crate) struct Downloads {
    concurrency: usize,
    tx: Mutex<Option<mpsc::Sender<InlineJob>>>,
    rx: Mutex<Option<mpsc::Receiver<InlineJob>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Downloads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downloads")
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl Downloads {
    /// A pool of `concurrency` workers over a queue of `queue` jobs (each at least 1); jobs
    /// wait until [`Self::start`].
    pub(crate) fn new(concurrency: usize, queue: usize) -> Self {
        let (tx, rx) = mpsc::channel(queue.max(1));
        Self {
            concurrency: concurrency.max(1),
            tx: Mutex::new(Some(tx)),
            rx: Mutex::new(Some(rx)),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// Starts the workers (once).
    pub(crate) fn start(&self, state: &AppState) {
        let Some(rx) = self
            .rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        for _ in 0..self.concurrency {
            tasks.push(tokio::spawn(worker(state.clone(), rx.clone())));
        }
    }

    /// Queues `job`; gives it back when the queue is full or closed.
    pub(crate) fn submit(&self, job: InlineJob) -> Result<(), Box<InlineJob>> {
        let tx = self
            .tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match tx {
            Some(tx) => tx.try_send(job).map_err(|e| match e {
                mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job) => {
                    Box::new(job)
                }
            }),
            None => Err(Box::new(job)),
        }
    }

    /// Closes the queue and waits until every queued job has emitted its event (after
    /// shutdown began, without downloading).
    pub(crate) async fn close(&self) {
        drop(
            self.tx
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let tasks: Vec<_> = self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    }
}

async fn worker(state: AppState, rx: Arc<tokio::sync::Mutex<mpsc::Receiver<InlineJob>>>) {
    loop {
        let job = rx.lock().await.recv().await;
        let Some(job) = job else { return };
        run(&state, job).await;
    }
}

/// Downloads the file (unless shutdown began) and emits the event.
async fn run(state: &AppState, job: InlineJob) {
    let InlineJob {
        session,
        client,
        media,
        mut data,
    } = job;
    let mut shutdown = state.shutdown_watch();
    let fetched = if *shutdown.borrow() {
        None
    } else {
        tokio::select! {
            result = tokio::time::timeout(INLINE_TIMEOUT, client.download(&media)) => {
                result.ok().and_then(Result::ok)
            }
            _ = shutdown.wait_for(|stopping| *stopping) => None,
        }
    };
    set_inline(&mut data, fetched);
    fanout::enqueue(state, &session, "message", data).await;
}
