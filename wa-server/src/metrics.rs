//! Prometheus metrics in the text exposition format (version 0.0.4), kept in atomics.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the webhook latency histogram buckets.
const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Counters of one server.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) messages_sent: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) messages_failed: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) otp_sent: AtomicU64,
    pub(crate) otp_verified: AtomicU64,
    pub(crate) webhook_delivered: AtomicU64,
    pub(crate) webhook_failed_attempts: AtomicU64,
    pub(crate) webhook_dead: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    /// Sum of latencies in microseconds.
    latency_sum_us: AtomicU64,
}

/// Point-in-time values computed at scrape time.
#[derive(Debug, Default)]
pub(crate) struct Gauges {
    /// (state, count) for every session state.
    pub(crate) sessions: Vec<(&'static str, u64)>,
    pub(crate) webhook_backlog: u64,
    pub(crate) webhook_dead_letters: u64,
}

impl Metrics {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one webhook HTTP attempt's latency.
    pub(crate) fn observe_webhook_latency(&self, seconds: f64) {
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        // Whole microseconds are plenty for a latency sum.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let us = (seconds * 1e6) as u64;
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The exposition text.
    pub(crate) fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        out.push_str("# HELP wa_sessions Sessions by state.\n# TYPE wa_sessions gauge\n");
        for (state, n) in &gauges.sessions {
            let _ = writeln!(out, "wa_sessions{{state=\"{state}\"}} {n}");
        }
        let counters: [(&str, &str, u64); 6] = [
            (
                "wa_messages_sent_total",
                "Messages sent.",
                get(&self.messages_sent),
            ),
            (
                "wa_messages_received_total",
                "Messages received.",
                get(&self.messages_received),
            ),
            (
                "wa_messages_failed_total",
                "Messages that failed to send.",
                get(&self.messages_failed),
            ),
            (
                "wa_reconnects_total",
                "Session reconnections after a loss of connection.",
                get(&self.reconnects),
            ),
            (
                "wa_otp_sent_total",
                "One-time codes sent.",
                get(&self.otp_sent),
            ),
            (
                "wa_otp_verified_total",
                "One-time codes verified.",
                get(&self.otp_verified),
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP wa_webhook_deliveries_total Webhook delivery attempts by outcome.\n\
             # TYPE wa_webhook_deliveries_total counter\n\
             wa_webhook_deliveries_total{{outcome=\"delivered\"}} {}\n\
             wa_webhook_deliveries_total{{outcome=\"failed\"}} {}\n\
             wa_webhook_deliveries_total{{outcome=\"dead\"}} {}",
            get(&self.webhook_delivered),
            get(&self.webhook_failed_attempts),
            get(&self.webhook_dead)
        );
        let _ = writeln!(
            out,
            "# HELP wa_webhook_backlog Webhook deliveries waiting in the outbox.\n\
             # TYPE wa_webhook_backlog gauge\nwa_webhook_backlog {}\n\
             # HELP wa_webhook_dead_letters Webhook deliveries given up on.\n\
             # TYPE wa_webhook_dead_letters gauge\nwa_webhook_dead_letters {}",
            gauges.webhook_backlog, gauges.webhook_dead_letters
        );
        out.push_str(
            "# HELP wa_webhook_latency_seconds Webhook HTTP attempt latency.\n\
             # TYPE wa_webhook_latency_seconds histogram\n",
        );
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                out,
                "wa_webhook_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                get(bucket)
            );
        }
        let count = get(&self.latency_count);
        #[allow(clippy::cast_precision_loss)]
        let sum = get(&self.latency_sum_us) as f64 / 1e6;
        let _ = writeln!(
            out,
            "wa_webhook_latency_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             wa_webhook_latency_seconds_sum {sum}\nwa_webhook_latency_seconds_count {count}"
        );
        out
    }
}
