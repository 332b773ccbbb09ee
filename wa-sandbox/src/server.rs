//! The tokio driver: accepts WebSocket connections at `/ws/chat` and runs one
//! [`ServerSession`] per connection.
//!
//! Shape after mini-redis `src/server.rs`: `run(listener, router, shutdown)`, so tests bind
//! port 0 and stop the server with a future. One task per connection owns the socket, the
//! session and its timer; the router wakes it (a `Notify`) when a phone scan, a device
//! removal or a fault has work for it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{Instrument as _, debug, info_span, trace, warn};

use crate::session::{CloseKind, ServerSession};
use crate::state::Router;

/// The WebSocket path clients connect to (shared/protocol/01 §1: `wss://web.whatsapp.com/ws/chat`).
pub const WS_PATH: &str = "/ws/chat";

/// Largest WebSocket message accepted: frames are below 16 MiB (shared/protocol/01 §3), and
/// a message may carry a few of them.
const MAX_MESSAGE: usize = 1 << 26;

/// Serves WebSocket connections from `listener` until `shutdown` completes, then closes
/// every live connection and returns once their tasks ended.
///
/// Each accepted TCP connection is upgraded if the request path is [`WS_PATH`] (any query
/// string and any `Origin` are tolerated; the real server is reached with
/// `Origin: https://web.whatsapp.com`). Other paths get HTTP 404; while a
/// `RefuseConnections` fault is armed, upgrades get HTTP 503.
///
/// # Errors
/// Never returns an error for a single bad connection (it is logged and dropped); accept
/// errors are logged and the loop goes on.
pub async fn run(listener: TcpListener, router: Router, shutdown: impl Future<Output = ()>) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let router = router.clone();
                    let stop = stop_rx.clone();
                    let span = info_span!("ws", %peer);
                    tasks.spawn(serve_connection(stream, peer, router, stop).instrument(span));
                }
                Err(e) => warn!(error = %e, "accept failed"),
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let refuse = router.take_refusal();
    // The callback's error type is fixed by tungstenite's `Callback` trait.
    #[allow(clippy::result_large_err)]
    let check = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path() != WS_PATH {
            return Err(error_response(StatusCode::NOT_FOUND, "not found"));
        }
        if refuse {
            return Err(error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "refused by fault injection",
            ));
        }
        trace!(origin = ?req.headers().get("origin"), "websocket upgrade");
        Ok(resp)
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let mut ws =
        match tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(config)).await {
            Ok(ws) => ws,
            Err(e) => {
                debug!(error = %e, "websocket upgrade failed");
                return;
            }
        };

    let mut session = ServerSession::new(router.clone(), Instant::now());
    let notify = Arc::new(Notify::new());
    {
        let notify = Arc::clone(&notify);
        session.set_waker(Arc::new(move || notify.notify_one()));
    }
    debug!(conn = session.conn_id(), %peer, "connection open");

    loop {
        // Drain in the fixed order: transmit, then timers (STYLE §2).
        while let Some(frame) = session.poll_transmit() {
            let delay = router.frame_delay();
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if let Err(e) = ws.send(Message::Binary(frame)).await {
                debug!(error = %e, "send failed");
                return;
            }
        }
        if session.is_closed() {
            break;
        }
        let deadline = session.poll_timeout();
        tokio::select! {
            _ = stop.changed() => break,
            msg = ws.next() => match msg {
                Some(Ok(Message::Binary(data))) => session.handle_input(Instant::now(), &data),
                // Only binary messages carry frames (whatsmeow ignores the rest).
                Some(Ok(Message::Close(_))) | None => {
                    session.handle_peer_closed();
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    debug!(error = %e, "websocket read failed");
                    session.handle_peer_closed();
                    break;
                }
            },
            () = notify.notified() => session.handle_timeout(Instant::now()),
            () = sleep_until(deadline), if deadline.is_some() => {
                session.handle_timeout(Instant::now());
            }
        }
    }
    if session.close_kind() == Some(CloseKind::Abrupt) {
        // A simulated network drop: no close handshake.
        drop(ws);
    } else {
        let _ = ws.close(None).await;
    }
    debug!(conn = session.conn_id(), "connection closed");
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

fn error_response(status: StatusCode, body: &str) -> ErrorResponse {
    let mut resp = ErrorResponse::new(Some(body.to_owned()));
    *resp.status_mut() = status;
    resp
}
