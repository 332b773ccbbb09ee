//! [`Endpoint`]: what the simulator needs from one side of a connection, and its impls for
//! wa-engine's client [`Connection`] and the sandbox's [`ServerSession`] (wrapped in
//! [`Session`] so that work the [`Router`] queues for it wakes it up).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use wa_engine::conn::{self, Connection};

use crate::{Router, ServerSession};

/// One side of a simulated connection: a sans-IO state machine fed bytes and time.
///
/// The shape is the `Connection` contract of STYLE §2: after every `handle_*` the simulator
/// drains [`poll_transmit`](Self::poll_transmit), then reads
/// [`poll_timeout`](Self::poll_timeout), then drains [`poll_event`](Self::poll_event).
/// Test-local peers (a scripted server, a minimal client) implement it too.
pub trait Endpoint {
    /// What the endpoint reports to the test (the engine's `conn::Event`; `()` for a
    /// server session).
    type Event;

    /// Bytes that arrived from the peer (one simulated WebSocket message).
    fn handle_input(&mut self, now: Instant, data: &[u8]);

    /// Called at (or after) the instant [`poll_timeout`](Self::poll_timeout) returned.
    fn handle_timeout(&mut self, now: Instant);

    /// The peer closed the socket. Default: nothing (the engine's `Connection` learns of a
    /// lost socket from its driver, not through the core).
    fn handle_peer_closed(&mut self, now: Instant) {
        let _ = now;
    }

    /// The next frame to put on the wire, one WebSocket message.
    fn poll_transmit(&mut self) -> Option<Bytes>;

    /// When [`handle_timeout`](Self::handle_timeout) must be called next; an instant in the
    /// past means "now".
    fn poll_timeout(&self) -> Option<Instant>;

    /// The next event for the test. Default: none.
    fn poll_event(&mut self) -> Option<Self::Event> {
        None
    }

    /// Whether the endpoint is done: once its transmits are drained, the simulator closes the
    /// socket, as the tokio drivers do.
    fn is_closed(&self) -> bool;
}

impl Endpoint for Connection {
    type Event = conn::Event;

    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        Self::handle_input(self, now, data);
    }

    fn handle_timeout(&mut self, now: Instant) {
        Self::handle_timeout(self, now);
    }

    fn poll_transmit(&mut self) -> Option<Bytes> {
        Self::poll_transmit(self)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Self::poll_timeout(self)
    }

    fn poll_event(&mut self) -> Option<conn::Event> {
        Self::poll_event(self)
    }

    fn is_closed(&self) -> bool {
        Self::is_closed(self)
    }
}

/// A [`ServerSession`] whose [`Router`] wake-ups (a phone scan, a message routed from another
/// connection, an injected fault) show up as an overdue timeout, so the simulator calls
/// `handle_timeout` at the current instant, as `server::run` does on its `Notify`.
///
/// Derefs to the [`ServerSession`].
pub struct Session {
    inner: ServerSession,
    woken: Arc<AtomicBool>,
    /// The last instant the session was given: what an overdue wake-up reports.
    last: Instant,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("inner", &self.inner)
            .field("woken", &self.woken.load(Ordering::Relaxed))
            .finish()
    }
}

impl Session {
    /// A new server session on `router` at `now` ([`ServerSession::new`]).
    pub fn new(router: Router, now: Instant) -> Self {
        Self::wrap(ServerSession::new(router, now), now)
    }

    /// A new server session with a fixed Noise ephemeral private key (32 bytes;
    /// [`ServerSession::with_ephemeral`]).
    pub fn with_ephemeral(router: Router, now: Instant, ephemeral: [u8; 32]) -> Self {
        Self::wrap(ServerSession::with_ephemeral(router, now, ephemeral), now)
    }

    fn wrap(mut inner: ServerSession, now: Instant) -> Self {
        let woken = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&woken);
        inner.set_waker(Arc::new(move || flag.store(true, Ordering::Relaxed)));
        Self {
            inner,
            woken,
            last: now,
        }
    }

    /// The wrapped session.
    pub fn into_inner(self) -> ServerSession {
        self.inner
    }
}

impl Deref for Session {
    type Target = ServerSession;

    fn deref(&self) -> &ServerSession {
        &self.inner
    }
}

impl DerefMut for Session {
    fn deref_mut(&mut self) -> &mut ServerSession {
        &mut self.inner
    }
}

impl Endpoint for Session {
    type Event = ();

    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        // `handle_input` drains the router's queue for this connection too.
        self.woken.store(false, Ordering::Relaxed);
        self.last = now;
        self.inner.handle_input(now, data);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.woken.store(false, Ordering::Relaxed);
        self.last = now;
        self.inner.handle_timeout(now);
    }

    fn handle_peer_closed(&mut self, now: Instant) {
        self.last = now;
        self.inner.handle_peer_closed();
    }

    fn poll_transmit(&mut self) -> Option<Bytes> {
        self.inner.poll_transmit()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.inner.is_closed() {
            return None;
        }
        let timer = self.inner.poll_timeout();
        if self.woken.load(Ordering::Relaxed) {
            return Some(timer.map_or(self.last, |t| t.min(self.last)));
        }
        timer
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}
