//! One session: a `wa_engine::Client` over its own `SledStore`, driven by a supervisor task
//! that turns engine events into status, SSE events and webhooks.
//!
//! The supervisor owns the client and runs its event loop, which never waits on anything
//! slow: events go to the fan-out queue (`crate::fanout`: outbox writes and SSE on a worker)
//! and inline media downloads to their workers (`crate::media::inline`). A stalled media
//! host or a slow disk therefore never fills the engine's event channel, whose driver would
//! then stop answering the server (keepalive).
//!
//! The supervisor connects (retrying a first connection that fails
//! with the configured backoff; after that the engine reconnects by itself), forwards
//! events, and on `restart` shuts the client down and builds a new one over the *same*
//! store: credentials are never touched, so a restarted paired session logs in again
//! without a QR (the 515 after pairing is handled inside the engine and never shown). Only
//! the engine wipes a store, and only when the device was unlinked.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use utoipa::ToSchema;
use wa_engine::{
    Client, CloseReason, Event, Events, MessageStatus as EngineStatus, Reconnect, Store,
    UndecryptableReason,
};

use crate::db::{SessionRecord, now_ms};
use crate::events::Envelope;
use crate::fanout;
use crate::state::AppState;

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Opening a connection (first start, after a loss, or logging in after pairing).
    Connecting,
    /// Unpaired: a QR is waiting to be scanned.
    Qr,
    /// Unpaired: a pairing code is waiting to be typed on the phone.
    PairingCode,
    /// Logged in and online.
    Connected,
    /// Unlinked (by the phone or by `logout`); `restart` pairs again from scratch.
    LoggedOut,
    /// Stopped without being unlinked (QR codes ran out, replaced by another connection,
    /// a fatal error); `restart` resumes with the stored credentials.
    Stopped,
}

impl SessionStatus {
    /// Every state, for metrics.
    pub(crate) const ALL: [Self; 6] = [
        Self::Connecting,
        Self::Qr,
        Self::PairingCode,
        Self::Connected,
        Self::LoggedOut,
        Self::Stopped,
    ];

    /// The snake_case name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Qr => "qr",
            Self::PairingCode => "pairing_code",
            Self::Connected => "connected",
            Self::LoggedOut => "logged_out",
            Self::Stopped => "stopped",
        }
    }
}

/// The QR currently offered.
#[derive(Debug, Clone)]
pub(crate) struct CurrentQr {
    pub(crate) code: String,
    /// Unix ms.
    pub(crate) expires_at: u64,
}

/// A session that cannot reach the WhatsApp server and is retrying ("degraded").
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Retry {
    /// Failed connection attempts in a row.
    pub(crate) attempts: u32,
    /// Why the last attempt failed, e.g. `could not open the WebSocket: Connection refused`.
    pub(crate) reason: String,
    /// When the next attempt starts, unix ms. For the engine's own reconnects (after a
    /// connection was lost) this is the upper bound of its jittered backoff.
    pub(crate) retry_at: u64,
    /// Unix ms of the first failure of this run.
    pub(crate) since: u64,
}

/// Live state of a session (behind a mutex; never held across an await).
#[derive(Debug, Clone)]
pub(crate) struct Live {
    pub(crate) status: SessionStatus,
    pub(crate) client: Option<Client>,
    pub(crate) qr: Option<CurrentQr>,
    pub(crate) pairing_code: Option<String>,
    pub(crate) jid: Option<String>,
    pub(crate) push_name: Option<String>,
    pub(crate) last_error: Option<String>,
    /// Set while connection attempts fail (the upstream is unreachable); cleared by the
    /// next state change (connected, QR, stopped, ...).
    pub(crate) retry: Option<Retry>,
    /// Own LID (`...@lid`), from the stored credentials once logged in.
    pub(crate) lid: Option<String>,
    /// QR codes shown since the client last started (the `--qr-max-refreshes` cap).
    pub(crate) qr_shown: u32,
    /// Set when the session stopped its QR loop at the cap; cleared by a restart.
    pub(crate) qr_limit_reached: bool,
}

/// Counters of a session since the server started (`counters` in the session resource).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Messages sent successfully.
    pub(crate) messages_sent: AtomicU64,
    /// Sends that failed.
    pub(crate) messages_failed: AtomicU64,
    /// User-visible messages received.
    pub(crate) messages_received: AtomicU64,
    /// Failed connection attempts and lost connections.
    pub(crate) reconnects: AtomicU64,
    /// QR codes shown.
    pub(crate) qr_codes: AtomicU64,
}

impl Counters {
    /// Adds one to `counter`.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads `counter`.
    pub(crate) fn read(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Commands to the supervisor.
#[derive(Debug)]
pub(crate) enum Control {
    /// Shut the client down and connect again over the same store.
    Restart,
    /// Shut the client down and end the supervisor.
    Stop(oneshot::Sender<()>),
    /// Shut the client down and wait for [`Control::Restart`], keeping the session and its
    /// pairing (status `stopped`, `last_error` [`STOP_REQUESTED`]).
    Pause,
}

/// A session in the registry.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) record: Mutex<SessionRecord>,
    live: Mutex<Live>,
    control: mpsc::UnboundedSender<Control>,
    events: broadcast::Sender<Arc<Envelope>>,
    /// Bumped when the live state changes without an event (a retry): the pairing page
    /// listens to it besides the events.
    changed: watch::Sender<u64>,
    /// Since the server started.
    pub(crate) counters: Counters,
}

impl Session {
    /// A new session handle and the receiver its supervisor reads commands from.
    pub(crate) fn new(record: SessionRecord) -> (Arc<Self>, mpsc::UnboundedReceiver<Control>) {
        let (control, rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(256);
        let session = Arc::new(Self {
            id: record.id.clone(),
            record: Mutex::new(record),
            live: Mutex::new(Live {
                status: SessionStatus::Connecting,
                client: None,
                qr: None,
                pairing_code: None,
                jid: None,
                push_name: None,
                last_error: None,
                retry: None,
                lid: None,
                qr_shown: 0,
                qr_limit_reached: false,
            }),
            control,
            events,
            changed: watch::channel(0).0,
            counters: Counters::default(),
        });
        (session, rx)
    }

    /// A snapshot of the live state.
    pub(crate) fn live(&self) -> Live {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn update<R>(&self, f: impl FnOnce(&mut Live) -> R) -> R {
        f(&mut self.live.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The session record (webhooks, token digest).
    pub(crate) fn record(&self) -> SessionRecord {
        self.record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records the account's push name after the profile route changed it.
    pub(crate) fn set_push_name(&self, name: &str) {
        self.update(|l| l.push_name = Some(name.to_owned()));
    }

    /// The connected client.
    ///
    /// # Errors
    /// [`ApiError::NotConnected`](crate::error::ApiError::NotConnected).
    pub(crate) fn connected_client(&self) -> Result<Client, crate::error::ApiError> {
        self.update(|l| match (&l.client, l.status) {
            (Some(c), SessionStatus::Connected) => Ok(c.clone()),
            _ => Err(crate::error::ApiError::NotConnected),
        })
    }

    /// Changes of the live state that come without an event (retries).
    pub(crate) fn watch_changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Records a failed connection attempt, the next one at `retry_at` (unix ms), and
    /// tells the pairing page. Returns the attempt count.
    fn note_retry(&self, reason: String, retry_at: impl FnOnce(u32) -> u64) -> u32 {
        let attempts = self.update(|l| {
            let now = now_ms();
            let (attempts, since) = l
                .retry
                .as_ref()
                .map_or((1, now), |r| (r.attempts.saturating_add(1), r.since));
            l.last_error = Some(reason.clone());
            l.retry = Some(Retry {
                attempts,
                reason,
                retry_at: retry_at(attempts),
                since,
            });
            attempts
        });
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
        attempts
    }

    /// Live events of this session.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Envelope>> {
        self.events.subscribe()
    }

    /// The sending side of [`Self::subscribe`] (the event fan-out broadcasts on it).
    pub(crate) fn subscribers(&self) -> broadcast::Sender<Arc<Envelope>> {
        self.events.clone()
    }

    /// Asks the supervisor to reconnect over the same store.
    pub(crate) fn restart(&self) {
        let _ = self.control.send(Control::Restart);
    }

    /// Asks the supervisor to shut the client down and wait for [`Self::restart`] (the
    /// session and its credentials stay): status `stopped` with `last_error`
    /// [`STOP_REQUESTED`]. A session that is not running (logged out, stopped) stays as it is.
    pub(crate) fn pause(&self) {
        let _ = self.control.send(Control::Pause);
    }

    /// Stops the supervisor and waits until its client is shut down.
    pub(crate) async fn stop(&self) {
        let (done, rx) = oneshot::channel();
        if self.control.send(Control::Stop(done)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// Runs a session until [`Control::Stop`].
pub(crate) async fn supervise(
    state: AppState,
    session: Arc<Session>,
    store: Arc<dyn Store>,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    let mut failures: u32 = 0;
    loop {
        // A new client run: the QR cap counts again.
        session.update(|l| {
            l.qr_shown = 0;
            l.qr_limit_reached = false;
            if l.last_error.as_deref() == Some(STOP_REQUESTED) {
                l.last_error = None;
            }
        });
        set_status(&state, &session, SessionStatus::Connecting, None).await;
        // settings.reject_calls turns the engine's call rejection on for this session (the
        // server-wide --auto-reject-calls turns it on for all); read at each connection.
        let builder = state.client_builder(store.clone());
        let builder = if session.record().settings.reject_calls {
            builder.auto_reject_calls(true)
        } else {
            builder
        };
        let connect = builder.connect();
        let connected = tokio::select! {
            result = connect => result,
            cmd = control.recv() => match cmd {
                Some(Control::Restart) => continue,
                Some(Control::Pause) => {
                    if paused(&state, &session, &mut control).await { continue; }
                    return;
                }
                Some(Control::Stop(done)) => { let _ = done.send(()); return; }
                None => return,
            },
        };
        let (client, events) = match connected {
            Ok(pair) => pair,
            Err(e) => {
                let policy = &state.config().reconnect;
                let delay = policy
                    .initial
                    .saturating_mul(1u32 << failures.min(16))
                    .min(policy.max);
                failures = failures.saturating_add(1);
                let attempts = session
                    .note_retry(format!("cannot connect: {}", causes(&e)), |_| {
                        now_ms().saturating_add(duration_ms(delay))
                    });
                tracing::warn!(session = %session.id, error = %e, attempts, ?delay, "session: cannot connect; retrying");
                state.metrics().reconnect(&session.id);
                Counters::bump(&session.counters.reconnects);
                tokio::select! {
                    () = tokio::time::sleep(delay) => continue,
                    cmd = control.recv() => match cmd {
                        Some(Control::Restart) => {
                            failures = 0;
                            session.update(|l| l.retry = None);
                            continue;
                        }
                        Some(Control::Pause) => {
                            failures = 0;
                            if paused(&state, &session, &mut control).await { continue; }
                            return;
                        }
                        Some(Control::Stop(done)) => { let _ = done.send(()); return; }
                        None => return,
                    },
                }
            }
        };
        failures = 0;
        session.update(|l| l.client = Some(client.clone()));
        match run_client(&state, &session, &store, &client, events, &mut control).await {
            Ended::Restart => {}
            Ended::Stop(done) => {
                if let Some(done) = done {
                    let _ = done.send(());
                }
                return;
            }
            Ended::Paused => {
                if !paused(&state, &session, &mut control).await {
                    return;
                }
            }
            Ended::ClientStopped => {
                // Wait for a restart (or the end); the status says why it stopped.
                if !wait_for_restart(&mut control).await {
                    return;
                }
            }
        }
    }
}

/// Records a stop on request ([`Control::Pause`]) and waits for a restart: `true` to
/// connect again, `false` when the supervisor must end.
async fn paused(
    state: &AppState,
    session: &Session,
    control: &mut mpsc::UnboundedReceiver<Control>,
) -> bool {
    session.update(|l| l.retry = None);
    set_status(
        state,
        session,
        SessionStatus::Stopped,
        Some(STOP_REQUESTED.to_owned()),
    )
    .await;
    wait_for_restart(control).await
}

/// Waits while the session is stopped: `true` on [`Control::Restart`], `false` on
/// [`Control::Stop`] or when the registry is gone. A pause is already in effect.
async fn wait_for_restart(control: &mut mpsc::UnboundedReceiver<Control>) -> bool {
    loop {
        match control.recv().await {
            Some(Control::Restart) => return true,
            Some(Control::Pause) => {}
            Some(Control::Stop(done)) => {
                let _ = done.send(());
                return false;
            }
            None => return false,
        }
    }
}

enum Ended {
    Restart,
    Stop(Option<oneshot::Sender<()>>),
    ClientStopped,
    Paused,
}

async fn run_client(
    state: &AppState,
    session: &Arc<Session>,
    store: &Arc<dyn Store>,
    client: &Client,
    mut events: Events,
    control: &mut mpsc::UnboundedReceiver<Control>,
) -> Ended {
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(Event::Stopped) | None => {
                    session.update(|l| l.client = None);
                    let status = session.live().status;
                    if status != SessionStatus::LoggedOut {
                        set_status(state, session, SessionStatus::Stopped, None).await;
                    }
                    return Ended::ClientStopped;
                }
                Some(event) => {
                    handle_event(state, session, store, event).await;
                    if session.live().qr_limit_reached {
                        // `--qr-max-refreshes`: end the QR loop server-side.
                        drop(events);
                        client.shutdown().await;
                        session.update(|l| {
                            l.client = None;
                            l.pairing_code = None;
                        });
                        set_status(
                            state,
                            session,
                            SessionStatus::Stopped,
                            Some(QR_LIMIT_ERROR.to_owned()),
                        )
                        .await;
                        return Ended::ClientStopped;
                    }
                }
            },
            cmd = control.recv() => {
                // Dropping the event stream first lets the driver finish without waiting on
                // a full channel.
                drop(events);
                client.shutdown().await;
                session.update(|l| {
                    l.client = None;
                    l.qr = None;
                    l.pairing_code = None;
                });
                return match cmd {
                    Some(Control::Restart) => Ended::Restart,
                    Some(Control::Pause) => Ended::Paused,
                    Some(Control::Stop(done)) => Ended::Stop(Some(done)),
                    None => Ended::Stop(None),
                };
            }
        }
    }
}

/// Sets the status; emits a `connection` event when it changed.
async fn set_status(
    state: &AppState,
    session: &Session,
    status: SessionStatus,
    error: Option<String>,
) {
    let (changed, jid, last_error) = session.update(|l| {
        let changed = l.status != status;
        l.status = status;
        if status != SessionStatus::Connecting {
            l.retry = None;
        }
        if error.is_some() {
            l.last_error.clone_from(&error);
        }
        if status != SessionStatus::Qr {
            l.qr = None;
        }
        if status != SessionStatus::PairingCode {
            l.pairing_code = None;
        }
        (changed, l.jid.clone(), l.last_error.clone())
    });
    if changed {
        tracing::info!(session = %session.id, status = status.as_str(), "session status");
        fanout::enqueue(
            state,
            session,
            "connection",
            json!({ "status": status.as_str(), "jid": jid, "last_error": last_error }),
        )
        .await;
    }
}

async fn handle_event(
    state: &AppState,
    session: &Arc<Session>,
    store: &Arc<dyn Store>,
    event: Event,
) {
    match event {
        Event::Qr { code, expires_in } => {
            let cap = state.config().qr_max_refreshes;
            let shown = session.update(|l| {
                l.qr_shown = l.qr_shown.saturating_add(1);
                l.qr_shown
            });
            // The first QR plus `cap` refreshes; the next one is not shown: the supervisor
            // shuts the client down (`qr_limit_reached`) and waits for a restart.
            if cap.is_some_and(|cap| shown > cap.saturating_add(1)) {
                tracing::info!(session = %session.id, shown, "QR refresh cap reached; stopping the QR loop");
                session.update(|l| {
                    l.qr_limit_reached = true;
                    l.qr = None;
                });
                return;
            }
            Counters::bump(&session.counters.qr_codes);
            let expires_at = now_ms().saturating_add(duration_ms(expires_in));
            // The QR first, so a reader that sees `qr` status finds it.
            session.update(|l| {
                l.qr = Some(CurrentQr {
                    code: code.clone(),
                    expires_at,
                });
            });
            set_status(state, session, SessionStatus::Qr, None).await;
            fanout::enqueue(
                state,
                session,
                "qr",
                json!({ "qr": code, "expires_at": expires_at }),
            )
            .await;
        }
        Event::PairingCode { code } => {
            session.update(|l| l.pairing_code = Some(code.clone()));
            set_status(state, session, SessionStatus::PairingCode, None).await;
            fanout::enqueue(state, session, "pairing_code", json!({ "code": code })).await;
        }
        Event::PairSuccess { jid, .. } => {
            session.update(|l| l.jid = Some(jid.to_string()));
            // The engine restarts the connection (515) and logs in by itself.
            set_status(state, session, SessionStatus::Connecting, None).await;
        }
        Event::PairError { error } => {
            session.update(|l| l.last_error = Some(error.to_string()));
        }
        Event::Connected { jid } => {
            let creds = store.credentials().ok().flatten();
            let push_name = creds
                .as_ref()
                .map(|c| c.push_name.clone())
                .filter(|n| !n.is_empty());
            let lid = creds.and_then(|c| c.lid.clone());
            session.update(|l| {
                l.jid = Some(jid.to_string());
                l.push_name = push_name;
                l.lid = lid;
            });
            // In `--sandbox` mode the device is already on disk: the embedded sandbox wrote
            // it before it answered the pairing (`crate::sandbox_state`), so nothing is
            // exported here (a restart of many sessions would export the state once each).
            set_status(state, session, SessionStatus::Connected, None).await;
        }
        Event::Disconnected {
            reason,
            reconnecting,
        } => {
            // The restart after pairing (515) is routine: not an error, not shown.
            let error = (reason != CloseReason::RestartRequired).then(|| reason.to_string());
            if let (true, Some(error)) = (reconnecting, &error) {
                // The engine retries by itself after a jittered backoff of at most this.
                let policy = state.config().reconnect.clone();
                let long = reason.reconnect() == Reconnect::LongBackoff;
                session.note_retry(error.clone(), |attempts| {
                    let bound = policy
                        .initial
                        .saturating_mul(1u32 << attempts.saturating_sub(1).min(16))
                        .min(policy.max);
                    let bound = if long {
                        bound.max(policy.rate_limited)
                    } else {
                        bound
                    };
                    now_ms().saturating_add(duration_ms(bound))
                });
                state.metrics().reconnect(&session.id);
                Counters::bump(&session.counters.reconnects);
            }
            if reconnecting {
                set_status(state, session, SessionStatus::Connecting, error).await;
            } else if let Some(error) = error {
                session.update(|l| l.last_error = Some(error));
            }
        }
        Event::LoggedOut { reason } => {
            session.update(|l| {
                l.jid = None;
                l.push_name = None;
                l.lid = None;
            });
            set_status(
                state,
                session,
                SessionStatus::LoggedOut,
                Some(reason.to_string()),
            )
            .await;
            fanout::enqueue(
                state,
                session,
                "logged_out",
                json!({ "reason": reason.to_string() }),
            )
            .await;
        }
        Event::Message(message) => {
            // Reactions, edits, revokes: their own events (routes::rich).
            if let Some((kind, data)) = crate::routes::rich::message_event(&message) {
                fanout::enqueue(state, session, kind, data).await;
                return;
            }
            if !crate::incoming::is_user_visible(&message.message) {
                tracing::trace!(session = %session.id, id = %message.info.id, "protocol message");
                return;
            }
            let group = message.info.is_group;
            let settings = session.record().settings;
            if group && settings.ignore_groups {
                tracing::trace!(session = %session.id, id = %message.info.id, "group message ignored (settings.ignore_groups)");
                return;
            }
            state.metrics().message_received(&session.id);
            Counters::bump(&session.counters.messages_received);
            if settings.auto_mark_read && !message.info.from_me {
                mark_read(session, &message.info);
            }
            crate::msglog::record_incoming(state.db(), &session.id, &message);
            let data = crate::incoming::message_json(&message);
            // Media: store the download reference, add `download_url`; a file to put inline
            // goes to the download workers, which emit the event when it is done.
            let client = session.live().client;
            crate::media::incoming::emit_message(state, session, client, &message, data).await;
        }
        Event::UndecryptableMessage {
            info,
            reason,
            retry_count,
        } => {
            tracing::debug!(session = %session.id, id = %info.id, ?reason, "undecryptable message");
            let mut data = crate::incoming::info_json(&info);
            if let serde_json::Value::Object(map) = &mut data {
                map.insert("reason".to_owned(), json!(undecryptable_reason(reason)));
                map.insert("retry_count".to_owned(), json!(retry_count));
            }
            fanout::enqueue(state, session, "message_undecryptable", data).await;
        }
        Event::MessageStatus { id, status, by, .. } => {
            let status = match status {
                EngineStatus::Sent => "sent",
                EngineStatus::Delivered => "delivered",
                EngineStatus::Read => "read",
                EngineStatus::Played => "played",
            };
            state
                .advance_message_queued(session, id.as_str(), status, by.map(|j| j.to_string()))
                .await;
        }
        Event::AppState(ref change) => {
            // Our own push name arrives with app-state sync (`setting_pushName`).
            if let wa_engine::appstate::SyncAction::PushName(name) = &change.action {
                let name = (!name.is_empty()).then(|| name.clone());
                session.update(|l| l.push_name = name);
            }
            if let Some((kind, data)) = crate::sync_events::event_json(&event) {
                fanout::enqueue(state, session, kind, data).await;
            }
        }
        Event::Receipt(receipt) => {
            tracing::trace!(session = %session.id, ?receipt, "receipt");
        }
        Event::Stanza(node) => {
            tracing::trace!(session = %session.id, tag = %node.tag, "stanza for higher layers");
            if let Some((kind, data)) = crate::notices::stanza_json(&node) {
                fanout::enqueue(state, session, kind, data).await;
            }
        }
        Event::Notification(n) => {
            let data = crate::routes::rich::notification_event(&n);
            fanout::enqueue(state, session, "notification", data).await;
            // One specific event per kind besides (notices.rs).
            for (kind, data) in crate::notices::notification_events(&n) {
                fanout::enqueue(state, session, kind, data).await;
            }
        }
        Event::PollVote(vote) => {
            let data = crate::routes::rich::vote_event(&vote);
            fanout::enqueue(state, session, "poll_vote", data).await;
        }
        Event::Presence(_) | Event::ChatState(_) | Event::Call(_) => {
            if let Some((kind, data)) = crate::routes::presence::event_json(&event) {
                fanout::enqueue(state, session, kind, data).await;
            }
        }
        Event::HistorySync(_) | Event::ReachoutTimelock(_) | Event::NewChatCapping(_) => {
            if let Some((kind, data)) = crate::sync_events::event_json(&event) {
                fanout::enqueue(state, session, kind, data).await;
            }
        }
        Event::PrivacyToken(_)
        | Event::Dirty { .. }
        | Event::OfflineSyncPreview(_)
        | Event::OfflineSyncCompleted { .. }
        | Event::EdgeRoutingUpdated { .. } => {
            if let Some((kind, data)) = crate::notices::event_json(&event) {
                fanout::enqueue(state, session, kind, data).await;
            }
        }
        other => {
            tracing::debug!(session = %session.id, ?other, "unhandled engine event");
        }
    }
}

/// `last_error` of a session stopped on request ([`Session::pause`], WAHA's
/// `POST /api/sessions/{session}/stop`); cleared when it starts again.
pub(crate) const STOP_REQUESTED: &str =
    "stopped: the session was stopped on request; restart it to connect again";

/// `last_error` of a session that stopped at the QR refresh cap (`--qr-max-refreshes`).
pub(crate) const QR_LIMIT_ERROR: &str =
    "qr_refresh_limit: the QR code was not scanned; restart the session for a new one";

/// `settings.auto_mark_read`: sends the read receipt of `info` without holding up the
/// event loop (a failure is logged).
fn mark_read(session: &Session, info: &wa_engine::MessageInfo) {
    let Some(client) = session.live().client else {
        return;
    };
    let chat = info.chat.clone();
    let sender = info.is_group.then(|| info.sender.clone());
    let ids = vec![wa_engine::MessageId(info.id.clone())];
    let id = session.id.clone();
    tokio::spawn(async move {
        if let Err(e) = client.mark_read(&chat, sender.as_ref(), &ids).await {
            tracing::debug!(session = %id, error = %e, "auto mark-read failed");
        }
    });
}

/// The stable snake_case name of an [`UndecryptableReason`] (the engine's variants).
fn undecryptable_reason(reason: UndecryptableReason) -> &'static str {
    match reason {
        UndecryptableReason::NoSession => "no_session",
        UndecryptableReason::UnknownPreKey => "unknown_prekey",
        UndecryptableReason::NoSenderKey => "no_sender_key",
        UndecryptableReason::UntrustedIdentity => "untrusted_identity",
        UndecryptableReason::InvalidMessage => "invalid_message",
        UndecryptableReason::InvalidPlaintext => "invalid_plaintext",
        UndecryptableReason::Unavailable => "unavailable",
        UndecryptableReason::Store => "store",
        _ => "other",
    }
}

/// `error` and its causes, `: `-separated (a cause already in the text is not repeated):
/// "WebSocket transport failed: IO error: Connection refused (os error 111)".
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        next = cause.source();
    }
    text
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
