//! Drop-in dialects: other servers' HTTP APIs served over the same domain, so their users
//! switch to wa-server by changing a base URL.
//!
//! A dialect is a thin mapping layer: its own request and response types, translated onto
//! the native services (sessions, sending, the message log, the durable webhook outbox). It
//! never keeps a second copy of a session, a message or a delivery queue.
//!
//! Each enabled dialect ([`crate::DialectSettings`]) is mounted under its base path
//! ([`mount`]).
//!
//! Dialects: [`waha`] (WAHA, `--waha`).

pub(crate) mod waha;

use axum::Router;

use crate::config::ServerConfig;
use crate::state::AppState;

/// A base path as given (`waha`, `/waha/`, `/`) in the form axum nests under: `None` for
/// the root, else `/name` without a trailing slash.
pub(crate) fn base_path(raw: &str) -> Option<String> {
    let trimmed = raw.trim().trim_matches('/');
    (!trimmed.is_empty()).then(|| format!("/{trimmed}"))
}

/// `router` with every enabled dialect mounted under its base path. The WAHA dialect is
/// never mounted at the root (its paths are the native API's).
pub(crate) fn mount(router: Router<AppState>, config: &ServerConfig) -> Router<AppState> {
    let mut router = router;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths_are_normalised() {
        assert_eq!(base_path("/waha").as_deref(), Some("/waha"));
        assert_eq!(base_path("waha/").as_deref(), Some("/waha"));
        assert_eq!(base_path("/a/b/").as_deref(), Some("/a/b"));
        assert_eq!(base_path("/"), None);
        assert_eq!(base_path(""), None);
    }
}
