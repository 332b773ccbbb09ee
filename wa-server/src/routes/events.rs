//! `GET /api/sessions/{id}/events`: the session's events as Server-Sent Events.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::{Stream, StreamExt as _};
use tokio::sync::broadcast::error::RecvError;

use super::AuthorizedSession;
use crate::error::{ApiError, ErrorBody};
use crate::events::Envelope;
use crate::session::Session;
use crate::state::AppState;

/// What a subscriber gets: an event, or the number it missed by reading too slowly.
pub(crate) enum Item {
    Event(Arc<Envelope>),
    Lagged(u64),
}

/// The session's live events until the server shuts down.
pub(crate) fn session_stream(
    state: &AppState,
    session: &Session,
) -> impl Stream<Item = Item> + use<> {
    let rx = session.subscribe();
    let shutdown = state.shutdown_watch();
    futures_util::stream::unfold((rx, shutdown), |(mut rx, mut shutdown)| async move {
        if *shutdown.borrow() {
            return None;
        }
        let item = tokio::select! {
            r = rx.recv() => match r {
                Ok(envelope) => Item::Event(envelope),
                Err(RecvError::Lagged(n)) => Item::Lagged(n),
                Err(RecvError::Closed) => return None,
            },
            _ = shutdown.changed() => return None,
        };
        Some((item, (rx, shutdown)))
    })
}

/// Live events of a session as SSE: `event:` is the type, `id:` the event id, `data:` the
/// envelope (the same JSON webhooks get). A `lagged` event says how many were skipped by
/// a slow reader.
#[utoipa::path(get, path = "/api/sessions/{id}/events", tag = "events",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, content_type = "text/event-stream", body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn stream(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let events = session_stream(&state, &session).map(|item| {
        Ok(match item {
            Item::Event(envelope) => SseEvent::default()
                .event(envelope.kind)
                .id(envelope.id.clone())
                .json_data(&*envelope)
                .unwrap_or_else(|_| SseEvent::default().comment("unserializable event")),
            Item::Lagged(n) => SseEvent::default()
                .event("lagged")
                .data(format!("{{\"skipped\":{n}}}")),
        })
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
