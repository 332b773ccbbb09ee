//! What to do after a connection closed: reconnect now, back off, or stop (and wipe).
//!
//! The decision per [`CloseReason`] comes from the one table in `stanza/stream_error.rs`
//! ([`CloseReason::reconnect`], [`CloseReason::wipes_credentials`]); this file only turns it
//! into delays.

use std::time::Duration;

use crate::stanza::{CloseReason, Reconnect};

/// Backoff between reconnect attempts: capped exponential with full jitter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Delay before the first reconnect after a transient failure (before jitter). Default 1 s.
    pub initial: Duration,
    /// Upper bound of the delay. Default 60 s.
    pub max: Duration,
    /// Lower bound of the delay after a rate limit (429). Default 60 s.
    pub rate_limited: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            rate_limited: Duration::from_secs(60),
        }
    }
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// Reconnect after this delay (zero for 515).
    Reconnect(Duration),
    /// Stop; wipe the store first when `wipe` is set.
    Stop {
        /// The device is no longer linked: delete the credentials.
        wipe: bool,
    },
}

/// Consecutive-failure counter turning close reasons into delays.
#[derive(Debug, Clone, Default)]
pub(crate) struct Backoff {
    failures: u32,
}

impl Backoff {
    /// A connection logged in: the next failure starts from `initial` again.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// Decide after a close. `jitter` is a uniform draw from `[0, 1)`.
    pub(crate) fn next(
        &mut self,
        policy: &ReconnectPolicy,
        reason: &CloseReason,
        jitter: f64,
    ) -> Next {
        match reason.reconnect() {
            Reconnect::Never => Next::Stop {
                wipe: reason.wipes_credentials(),
            },
            Reconnect::Immediately => Next::Reconnect(Duration::ZERO),
            Reconnect::Backoff | Reconnect::LongBackoff => {
                let exp = policy
                    .initial
                    .saturating_mul(1u32 << self.failures.min(16))
                    .min(policy.max);
                self.failures = self.failures.saturating_add(1);
                // Full jitter over [exp/2, exp]: never zero, never above the cap.
                let jittered = exp.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
                if reason.reconnect() == Reconnect::LongBackoff {
                    Next::Reconnect(jittered.max(policy.rate_limited))
                } else {
                    Next::Reconnect(jittered)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_required_reconnects_at_once_without_growing_the_backoff() {
        let mut b = Backoff::default();
        let p = ReconnectPolicy::default();
        for _ in 0..5 {
            assert_eq!(
                b.next(&p, &CloseReason::RestartRequired, 0.9),
                Next::Reconnect(Duration::ZERO)
            );
        }
        assert_eq!(
            b.next(&p, &CloseReason::ConnectionLost, 1.0),
            Next::Reconnect(Duration::from_secs(1))
        );
    }

    #[test]
    fn transient_failures_back_off_exponentially_up_to_the_cap() {
        let mut b = Backoff::default();
        let p = ReconnectPolicy::default();
        let delays: Vec<u64> = (0..9)
            .map(
                |_| match b.next(&p, &CloseReason::ServiceUnavailable, 1.0) {
                    Next::Reconnect(d) => d.as_secs(),
                    Next::Stop { .. } => u64::MAX,
                },
            )
            .collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
        b.reset();
        assert_eq!(
            b.next(&p, &CloseReason::PingTimeout, 0.0),
            Next::Reconnect(Duration::from_millis(500))
        );
    }

    #[test]
    fn logged_out_stops_and_wipes_replaced_stops_and_keeps() {
        let mut b = Backoff::default();
        let p = ReconnectPolicy::default();
        assert_eq!(
            b.next(&p, &CloseReason::LoggedOut { code: 401 }, 0.5),
            Next::Stop { wipe: true }
        );
        assert_eq!(
            b.next(&p, &CloseReason::Replaced, 0.5),
            Next::Stop { wipe: false }
        );
        assert_eq!(
            b.next(&p, &CloseReason::QrRefsExhausted, 0.5),
            Next::Stop { wipe: false }
        );
        assert_eq!(
            b.next(&p, &CloseReason::BadServerCertificate, 0.5),
            Next::Stop { wipe: false }
        );
    }

    #[test]
    fn rate_limit_waits_at_least_the_rate_limit_delay() {
        let mut b = Backoff::default();
        let p = ReconnectPolicy::default();
        assert_eq!(
            b.next(&p, &CloseReason::RateLimited, 0.0),
            Next::Reconnect(Duration::from_secs(60))
        );
    }
}
