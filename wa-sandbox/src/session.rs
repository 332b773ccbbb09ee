//! `ServerSession`: the server side of one WebSocket connection, sans-IO.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use crate::router::{ConnId, Router, Waker};

/// How a closed session wants its socket closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseKind {
    /// Send a WebSocket close after the last frame.
    Graceful,
    /// Drop the socket without a close handshake (simulated network drop).
    Abrupt,
}

/// The server side of one connection.
pub struct ServerSession {
    router: Router,
    conn: ConnId,
    transmit: VecDeque<Bytes>,
    closed: Option<CloseKind>,
}

impl std::fmt::Debug for ServerSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSession")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl ServerSession {
    /// Opens a session for a new connection.
    pub fn new(router: Router, now: Instant) -> Self {
        let _ = now;
        let conn = router.open_connection();
        Self {
            router,
            conn,
            transmit: VecDeque::new(),
            closed: None,
        }
    }

    /// This connection's id.
    pub fn conn_id(&self) -> ConnId {
        self.conn
    }

    pub(crate) fn set_waker(&mut self, waker: Waker) {
        self.router.set_waker(self.conn, waker);
    }

    /// Bytes received from the socket (any split).
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        let _ = (now, data);
    }

    /// Timers and router work.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
    }

    /// The peer closed the socket.
    pub fn handle_peer_closed(&mut self) {
        self.closed.get_or_insert(CloseKind::Graceful);
    }

    /// The next frame to write.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmit.pop_front()
    }

    /// When to call `handle_timeout` next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// Whether the session is over.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// How to close.
    pub fn close_kind(&self) -> Option<CloseKind> {
        self.closed
    }
}

impl Drop for ServerSession {
    fn drop(&mut self) {
        self.router.close_connection(self.conn);
    }
}
