//! Drop-in dialects: other servers' HTTP APIs served over the same domain, so their users
//! switch to wa-server by changing a base URL.
//!
//! A dialect is a thin mapping layer: its own request and response types, translated onto
//! the native services (sessions, sending, the message log, settings, the durable webhook
//! outbox). It never keeps a second copy of a session, a message or a delivery queue; what
//! it must remember on its own (an Evolution instance token's digest, Evolution-only
//! settings, its webhook configuration) lives in the server database's `dialects` tree,
//! keyed `session id \0 dialect name`, and goes with the session when it is deleted.
//!
//! Each enabled dialect ([`crate::DialectSettings`]) is mounted under its base path
//! ([`mount`]), and renders its own webhook deliveries for every native event ([`render`],
//! called by the event fan-out): the outbox then delivers them with its retries and its
//! crash safety, to the dialect's URL and in the dialect's envelope.
//!
//! Dialects: [`evolution`] (Evolution API v2, `--evolution`) and [`waha`] (WAHA, `--waha`;
//! webhooks from a session's `config.webhooks`, [`waha::hooks`]).

pub(crate) mod evolution;
pub(crate) mod waha;

use axum::Router;

use crate::config::ServerConfig;
use crate::db::DeliveryTarget;
use crate::events::Envelope;
use crate::session::Session;
use crate::state::AppState;

/// One webhook delivery a dialect rendered: queued as it is by
/// [`crate::webhook::enqueue_prepared`].
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// The session it belongs to (the delivery is dropped once the session is gone).
    pub(crate) session: String,
    /// The name its delivery counters are kept under (`<dialect>` or `<dialect>:<event>`).
    pub(crate) hook_id: String,
    /// The native event's id (stable across retries).
    pub(crate) event_id: String,
    /// The body, exactly as sent.
    pub(crate) body: String,
    /// URL, headers and event name.
    pub(crate) target: DeliveryTarget,
}

/// A base path as given (`evolution`, `/evolution/`, `/`) in the form axum nests under:
/// `None` for the root, else `/name` without a trailing slash.
pub(crate) fn base_path(raw: &str) -> Option<String> {
    let trimmed = raw.trim().trim_matches('/');
    (!trimmed.is_empty()).then(|| format!("/{trimmed}"))
}

/// `router` with every enabled dialect mounted under its base path (Evolution is merged at
/// the root for a base path of `/`; WAHA is never mounted at the root, its paths are the
/// native API's).
pub(crate) fn mount(router: Router<AppState>, config: &ServerConfig) -> Router<AppState> {
    let mut router = router;
    if let Some(base) = &config.dialects.evolution {
        router = match base_path(base) {
            // `/evolution` and `/evolution/` both reach `GET /`.
            Some(base) => router
                .route(
                    &format!("{base}/"),
                    axum::routing::get(evolution::instance::welcome),
                )
                .nest(&base, evolution::router(config, true)),
            None => router.merge(evolution::router(config, false)),
        };
    }
    if let Some(base) = &config.dialects.waha {
        // WAHA's paths (`/api/sessions`, ...) are the native ones: at the root they would
        // clash, so the WAHA dialect needs a base path (`main` refuses `/`).
        match base_path(base) {
            Some(base) => router = router.nest(&base, waha::router()),
            None => tracing::error!("the WAHA dialect needs a base path other than /; not mounted"),
        }
    }
    router
}

/// The deliveries every enabled dialect makes of `envelope` (may be none). Failures to read
/// a dialect's configuration are logged and skip that dialect.
pub(crate) fn render(state: &AppState, session: &Session, envelope: &Envelope) -> Vec<Prepared> {
    let mut out = Vec::new();
    if state.config().dialects.evolution.is_some() {
        out.extend(evolution::hooks::render(state, session, envelope));
    }
    if state.config().dialects.waha.is_some() {
        out.extend(waha::hooks::render(state, session, envelope));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths_are_normalised() {
        assert_eq!(base_path("/evolution").as_deref(), Some("/evolution"));
        assert_eq!(base_path("evolution/").as_deref(), Some("/evolution"));
        assert_eq!(base_path("waha/").as_deref(), Some("/waha"));
        assert_eq!(base_path("/a/b/").as_deref(), Some("/a/b"));
        assert_eq!(base_path("/"), None);
        assert_eq!(base_path(""), None);
    }
}
