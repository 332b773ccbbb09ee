//! Our engine as an app-state companion in the peer tests (issue 11): paired by QR to an
//! account of a sandbox running with phone sync, its events drained continuously into a log
//! (the engine's event channel is bounded and the driver waits when it is full, so a test that
//! talks to a peer for a while must keep reading it), and waits on that log.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::Notify;
use wa_engine::appstate::SyncAction;
use wa_engine::media::Scheme;
use wa_engine::{AppStateEvent, Client, Event, Jid, MemoryStore};
use wa_sandbox::SandboxHandle;

/// Every event the engine emitted so far, in order, plus a wake-up for waiters.
#[derive(Clone, Default)]
pub struct EventLog {
    events: Arc<Mutex<Vec<Event>>>,
    changed: Arc<Notify>,
}

impl EventLog {
    /// Spawns the task that moves events from `events` into a new log.
    pub fn drain(mut events: wa_engine::Events) -> Self {
        let log = Self::default();
        let sink = log.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                sink.events.lock().expect("log").push(event);
                sink.changed.notify_waiters();
            }
        });
        log
    }

    /// The first event at index `>= from` for which `pred` returns `Some`, with its index;
    /// waits at most `within`.
    pub async fn find_from<T>(
        &self,
        from: usize,
        within: Duration,
        mut pred: impl FnMut(&Event) -> Option<T>,
    ) -> anyhow::Result<(usize, T)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.changed.notified();
            {
                let events = self.events.lock().expect("log");
                if let Some(found) = events
                    .iter()
                    .enumerate()
                    .skip(from)
                    .find_map(|(i, e)| pred(e).map(|t| (i, t)))
                {
                    return Ok(found);
                }
            }
            // Wake up now and then anyway: `notify_waiters` does not store a permit.
            let _ = tokio::time::timeout_at(
                deadline.min(tokio::time::Instant::now() + Duration::from_millis(200)),
                notified,
            )
            .await;
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "expected engine event not seen within {within:?}"
            );
        }
    }

    /// How many events were logged so far (a mark for [`Self::find_from`]).
    pub fn len(&self) -> usize {
        self.events.lock().expect("log").len()
    }

    /// The app-state events at index `>= from` so far.
    pub fn app_state_from(&self, from: usize) -> Vec<AppStateEvent> {
        self.events.lock().expect("log")[from..]
            .iter()
            .filter_map(|e| match e {
                Event::AppState(a) => Some((**a).clone()),
                _ => None,
            })
            .collect()
    }

    /// The first [`Event::AppState`] at index `>= from` whose action `pred` accepts. (Its
    /// `from_full_sync` may be set: a collection fetched from version 0, such as an empty
    /// `regular_low` that gets its first patch, counts as a full sync in the engine.)
    pub async fn app_state_change(
        &self,
        from: usize,
        within: Duration,
        mut pred: impl FnMut(&SyncAction) -> bool,
    ) -> anyhow::Result<AppStateEvent> {
        let (_, event) = self
            .find_from(from, within, |e| match e {
                Event::AppState(a) if pred(&a.action) => Some((**a).clone()),
                _ => None,
            })
            .await?;
        Ok(event)
    }
}

/// An engine client paired by QR to `number` (a sandbox account; the sandbox runs with phone
/// sync), media over plain HTTP (the sandbox media host, for the history blob), its events
/// drained into an [`EventLog`]. Returns once the phone's key share arrived and the engine
/// applied the push name from `critical_block`, so that it can send its own patches.
pub async fn synced_engine(
    sandbox: &SandboxHandle,
    number: &str,
    within: Duration,
) -> anyhow::Result<(Client, EventLog, Jid, Arc<MemoryStore>)> {
    let phone = sandbox.phone(number)?;
    let store = Arc::new(MemoryStore::new());
    let (client, events) = Client::builder(store.clone())
        .url(sandbox.ws_url())
        .trust_root(sandbox.trust_root())
        .media_scheme(Scheme::Http)
        .device_name("wa-rs")
        .connect()
        .await?;
    let log = EventLog::drain(events);
    let mut scanned = 0;
    let (_, jid) = log
        .find_from(0, within, |e| match e {
            Event::Qr { code, .. } => {
                if scanned == 0 {
                    scanned += 1;
                    let _ = phone.scan(code);
                }
                None
            }
            Event::Connected { jid } => Some(jid.clone()),
            _ => None,
        })
        .await?;
    super::engine::prekeys_uploaded(sandbox, number, within).await?;
    log.find_from(0, within, |e| match e {
        Event::AppState(a) => matches!(a.action, SyncAction::PushName(_)).then_some(()),
        _ => None,
    })
    .await
    .context("the engine never applied the phone's push name (no key share?)")?;
    Ok((client, log, jid, store))
}
