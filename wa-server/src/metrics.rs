//! Prometheus metrics (text format 0.0.4), kept and encoded by `prometheus-client` (the
//! Prometheus project's Rust client): server-wide counters, gauges and the webhook latency
//! histogram, plus per-session series labelled `session` (bounded: at most
//! [`MetricsSettings::session_limit`](crate::MetricsSettings) sessions get their own
//! label, the rest share `session="_other"`; off with `--no-session-metrics`).
//!
//! Names (stable, used by dashboards and the tests):
//! `wa_sessions{state}`, `wa_messages_{sent,received,failed}_total`, `wa_reconnects_total`,
//! `wa_otp_{sent,verified}_total`, `wa_webhook_deliveries_total{outcome}`,
//! `wa_webhook_backlog`, `wa_webhook_dead_letters`, `wa_webhook_latency_seconds`; per
//! session `wa_session_state{session,state}` (1 for the current state),
//! `wa_session_messages_{sent,received,failed}_total{session}`,
//! `wa_session_reconnects_total{session}`.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::config::MetricsSettings;

/// Upper bounds (seconds) of the webhook latency histogram buckets.
const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The `session` label of sessions past the limit.
pub(crate) const OTHER_SESSIONS: &str = "_other";

/// The `Content-Type` of [`Metrics::render`].
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SessionLabel {
    session: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SessionStateLabel {
    session: String,
    state: &'static str,
}

/// How a webhook attempt ended (`wa_webhook_deliveries_total{outcome}`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum WebhookOutcome {
    /// Acknowledged with a 2xx.
    Delivered,
    /// Failed; retried later.
    Failed,
    /// Failed for the last time; dead-lettered.
    Dead,
}

impl WebhookOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }
}

/// Point-in-time values computed at scrape time.
#[derive(Debug, Default)]
pub(crate) struct Gauges {
    /// (state, count) for every session state.
    pub(crate) sessions: Vec<(&'static str, u64)>,
    /// (session id, state) of every session.
    pub(crate) session_states: Vec<(String, &'static str)>,
    pub(crate) webhook_backlog: u64,
    pub(crate) webhook_dead_letters: u64,
}

/// The per-session series and which sessions have a label of their own.
#[derive(Debug)]
struct PerSession {
    limit: usize,
    labelled: Mutex<BTreeSet<String>>,
    state: Family<SessionStateLabel, Gauge>,
    sent: Family<SessionLabel, Counter>,
    received: Family<SessionLabel, Counter>,
    failed: Family<SessionLabel, Counter>,
    reconnects: Family<SessionLabel, Counter>,
}

impl PerSession {
    /// The label of session `id`: its own while fewer than `limit` sessions have one,
    /// else [`OTHER_SESSIONS`].
    fn label(&self, id: &str) -> SessionLabel {
        let mut labelled = self.labelled.lock().unwrap_or_else(PoisonError::into_inner);
        let own = labelled.contains(id) || {
            let room = labelled.len() < self.limit;
            if room {
                labelled.insert(id.to_owned());
            }
            room
        };
        SessionLabel {
            session: if own { id } else { OTHER_SESSIONS }.to_owned(),
        }
    }

    /// The label of `id` if it has its own.
    fn own_label(&self, id: &str) -> Option<SessionLabel> {
        self.labelled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(id)
            .then(|| SessionLabel {
                session: id.to_owned(),
            })
    }
}

/// The server's metrics: a `prometheus-client` registry and handles to its metrics (each
/// a cheap atomic; families take a short lock).
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    messages_sent: Counter,
    messages_received: Counter,
    messages_failed: Counter,
    reconnects: Counter,
    otp_sent: Counter,
    otp_verified: Counter,
    webhook_deliveries: Family<OutcomeLabel, Counter>,
    webhook_latency: Histogram,
    sessions: Family<StateLabel, Gauge>,
    webhook_backlog: Gauge,
    webhook_dead_letters: Gauge,
    per_session: Option<PerSession>,
    /// Serialises scrapes (they set the gauges, then encode).
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(&MetricsSettings::default())
    }
}

impl Metrics {
    /// Registers every metric.
    pub(crate) fn new(settings: &MetricsSettings) -> Self {
        let mut registry = Registry::default();
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let sessions = Family::<StateLabel, Gauge>::default();
        registry.register("wa_sessions", "Sessions by state", sessions.clone());
        let messages_sent = counter(&mut registry, "wa_messages_sent", "Messages sent");
        let messages_received = counter(&mut registry, "wa_messages_received", "Messages received");
        let messages_failed = counter(
            &mut registry,
            "wa_messages_failed",
            "Messages that failed to send",
        );
        let reconnects = counter(
            &mut registry,
            "wa_reconnects",
            "Connection retries after a lost or failed connection (each attempt counts, \
             also against an unreachable upstream)",
        );
        let otp_sent = counter(&mut registry, "wa_otp_sent", "One-time codes sent");
        let otp_verified = counter(&mut registry, "wa_otp_verified", "One-time codes verified");
        let webhook_deliveries = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "wa_webhook_deliveries",
            "Webhook delivery attempts by outcome",
            webhook_deliveries.clone(),
        );
        let webhook_backlog = Gauge::default();
        registry.register(
            "wa_webhook_backlog",
            "Webhook deliveries waiting in the outbox",
            webhook_backlog.clone(),
        );
        let webhook_dead_letters = Gauge::default();
        registry.register(
            "wa_webhook_dead_letters",
            "Webhook deliveries given up on",
            webhook_dead_letters.clone(),
        );
        let webhook_latency = Histogram::new(LATENCY_BUCKETS);
        registry.register(
            "wa_webhook_latency_seconds",
            "Webhook HTTP attempt latency",
            webhook_latency.clone(),
        );
        // Every outcome shows from the start (a dashboard's rate() needs the zero).
        for outcome in [
            WebhookOutcome::Delivered,
            WebhookOutcome::Failed,
            WebhookOutcome::Dead,
        ] {
            drop(webhook_deliveries.get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            }));
        }
        let per_session = settings.per_session.then(|| {
            let per = PerSession {
                limit: settings.session_limit,
                labelled: Mutex::new(BTreeSet::new()),
                state: Family::default(),
                sent: Family::default(),
                received: Family::default(),
                failed: Family::default(),
                reconnects: Family::default(),
            };
            registry.register(
                "wa_session_state",
                "Current state of each session (1 for its state)",
                per.state.clone(),
            );
            registry.register(
                "wa_session_messages_sent",
                "Messages sent, per session",
                per.sent.clone(),
            );
            registry.register(
                "wa_session_messages_received",
                "Messages received, per session",
                per.received.clone(),
            );
            registry.register(
                "wa_session_messages_failed",
                "Messages that failed to send, per session",
                per.failed.clone(),
            );
            registry.register(
                "wa_session_reconnects",
                "Connection retries, per session",
                per.reconnects.clone(),
            );
            per
        });
        Self {
            registry,
            messages_sent,
            messages_received,
            messages_failed,
            reconnects,
            otp_sent,
            otp_verified,
            webhook_deliveries,
            webhook_latency,
            sessions,
            webhook_backlog,
            webhook_dead_letters,
            per_session,
            scrape: Mutex::new(()),
        }
    }

    fn per_session(
        &self,
        id: &str,
        family: impl Fn(&PerSession) -> &Family<SessionLabel, Counter>,
    ) {
        if let Some(per) = &self.per_session {
            family(per).get_or_create(&per.label(id)).inc();
        }
    }

    /// A message of session `id` was sent.
    pub(crate) fn message_sent(&self, id: &str) {
        self.messages_sent.inc();
        self.per_session(id, |p| &p.sent);
    }

    /// A message of session `id` was received.
    pub(crate) fn message_received(&self, id: &str) {
        self.messages_received.inc();
        self.per_session(id, |p| &p.received);
    }

    /// A send of session `id` failed.
    pub(crate) fn message_failed(&self, id: &str) {
        self.messages_failed.inc();
        self.per_session(id, |p| &p.failed);
    }

    /// Session `id` retries a connection (after a failed first connection or a loss).
    pub(crate) fn reconnect(&self, id: &str) {
        self.reconnects.inc();
        self.per_session(id, |p| &p.reconnects);
    }

    /// A one-time code was sent.
    pub(crate) fn otp_sent(&self) {
        self.otp_sent.inc();
    }

    /// A one-time code was verified.
    pub(crate) fn otp_verified(&self) {
        self.otp_verified.inc();
    }

    /// A webhook attempt ended.
    pub(crate) fn webhook(&self, outcome: WebhookOutcome) {
        self.webhook_deliveries
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// Records one webhook HTTP attempt's latency.
    pub(crate) fn observe_webhook_latency(&self, seconds: f64) {
        self.webhook_latency.observe(seconds);
    }

    /// Drops the series of a deleted session (its label slot is free again).
    pub(crate) fn forget_session(&self, id: &str) {
        let Some(per) = &self.per_session else {
            return;
        };
        if let Some(label) = per.own_label(id) {
            for family in [&per.sent, &per.received, &per.failed, &per.reconnects] {
                family.remove(&label);
            }
            per.labelled
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(id);
        }
    }

    /// The exposition text (Prometheus text format 0.0.4, [`CONTENT_TYPE`]).
    pub(crate) fn render(&self, gauges: &Gauges) -> String {
        let _scrape = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        for (state, n) in &gauges.sessions {
            self.sessions
                .get_or_create(&StateLabel { state })
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        self.webhook_backlog
            .set(i64::try_from(gauges.webhook_backlog).unwrap_or(i64::MAX));
        self.webhook_dead_letters
            .set(i64::try_from(gauges.webhook_dead_letters).unwrap_or(i64::MAX));
        if let Some(per) = &self.per_session {
            per.state.clear();
            for (id, state) in &gauges.session_states {
                let label = per.label(id);
                per.state
                    .get_or_create(&SessionStateLabel {
                        session: label.session,
                        state,
                    })
                    .inc();
            }
        }
        let mut out = String::new();
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_session: bool, session_limit: usize) -> MetricsSettings {
        MetricsSettings {
            per_session,
            session_limit,
        }
    }

    #[test]
    fn exposition_keeps_the_metric_names() {
        let m = Metrics::new(&settings(true, 10));
        m.message_sent("a");
        m.reconnect("a");
        m.webhook(WebhookOutcome::Delivered);
        m.observe_webhook_latency(0.02);
        let text = m.render(&Gauges {
            sessions: vec![("connected", 1), ("qr", 0)],
            session_states: vec![("a".to_owned(), "connected")],
            webhook_backlog: 3,
            webhook_dead_letters: 0,
        });
        for line in [
            "wa_sessions{state=\"connected\"} 1",
            "wa_sessions{state=\"qr\"} 0",
            "wa_messages_sent_total 1",
            "wa_reconnects_total 1",
            "wa_webhook_deliveries_total{outcome=\"delivered\"} 1",
            "wa_webhook_deliveries_total{outcome=\"dead\"} 0",
            "wa_webhook_backlog 3",
            "wa_webhook_latency_seconds_bucket{le=\"0.025\"} 1",
            "wa_webhook_latency_seconds_count 1",
            "wa_session_state{session=\"a\",state=\"connected\"} 1",
            "wa_session_messages_sent_total{session=\"a\"} 1",
            "wa_session_reconnects_total{session=\"a\"} 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }

    #[test]
    fn session_labels_are_bounded_and_can_be_turned_off() {
        let m = Metrics::new(&settings(true, 2));
        for id in ["a", "b", "c", "d"] {
            m.message_received(id);
        }
        let text = m.render(&Gauges::default());
        assert!(text.contains("wa_session_messages_received_total{session=\"a\"} 1"));
        assert!(text.contains("wa_session_messages_received_total{session=\"b\"} 1"));
        assert!(text.contains("wa_session_messages_received_total{session=\"_other\"} 2"));
        assert!(!text.contains("session=\"c\""), "{text}");
        // A deleted session frees its slot.
        m.forget_session("a");
        m.message_received("e");
        let text = m.render(&Gauges::default());
        assert!(!text.contains("session=\"a\""), "{text}");
        assert!(text.contains("wa_session_messages_received_total{session=\"e\"} 1"));

        let off = Metrics::new(&settings(false, 2));
        off.message_received("a");
        let text = off.render(&Gauges::default());
        assert!(text.contains("wa_messages_received_total 1"));
        assert!(!text.contains("wa_session_"), "{text}");
    }
}
