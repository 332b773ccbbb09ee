//! The connection's timers: plain deadlines, polled by the driver through
//! [`Connection::poll_timeout`](super::Connection::poll_timeout).

use std::time::{Duration, Instant};

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

/// Unix time without reading the clock: the unix time at one `Instant` plus the `Instant`s
/// passed in since, and the server's offset once it told us its time.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    /// The `now` passed to `Connection::new`.
    base: Instant,
    /// Unix time at `base` (`Config::unix_time`).
    unix_at_base: Duration,
    /// Server time minus local unix time, milliseconds (from pair-success / success `t`).
    server_offset_ms: i64,
}

impl Clock {
    pub(crate) fn new(base: Instant, unix_at_base: Duration) -> Self {
        Self {
            base,
            unix_at_base,
            server_offset_ms: 0,
        }
    }

    /// Local unix time at `now`, milliseconds.
    pub(crate) fn unix_ms(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.base);
        (self.unix_at_base + elapsed).as_millis() as u64
    }

    /// The server's unix time at `now`, milliseconds (local time until the server said).
    pub(crate) fn server_unix_ms(&self, now: Instant) -> u64 {
        let local = self.unix_ms(now) as i64;
        local.saturating_add(self.server_offset_ms).max(0) as u64
    }

    /// The server said it is `server_unix_secs` at `now`.
    pub(crate) fn set_server_time(&mut self, now: Instant, server_unix_secs: u64) {
        let local = self.unix_ms(now) as i64;
        self.server_offset_ms = (server_unix_secs as i64).saturating_mul(1000) - local;
    }
}
