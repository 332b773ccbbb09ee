//! The connection's timers: plain deadlines, polled by the driver through
//! [`Connection::poll_timeout`](super::Connection::poll_timeout).

use std::time::Instant;

/// One deadline per concern; `None` = not armed.
#[derive(Debug, Default, Clone)]
pub(crate) struct Timers {
    /// The handshake (and the server's first stanza after it) must arrive by then.
    pub(crate) connect: Option<Instant>,
    /// The QR shown now expires then; show the next ref (03 §4.4).
    pub(crate) qr: Option<Instant>,
    /// Send the next keepalive ping then (03 §10.2).
    pub(crate) keepalive: Option<Instant>,
    /// Something must be received by then, or the connection is dead.
    pub(crate) ping_deadline: Option<Instant>,
}

impl Timers {
    /// The earliest armed deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        [self.connect, self.qr, self.keepalive, self.ping_deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// Disarm everything (connection closed).
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }
}

/// Whether `deadline` is armed and has passed at `now`.
pub(crate) fn expired(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|d| d <= now)
}
