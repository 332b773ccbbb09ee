//! The sandbox over real loopback sockets: WebSocket acceptance, fault injection at the
//! connection level, shutdown, and scripted protocol clients.

use std::time::Duration;

use tokio_tungstenite::tungstenite::{self, Message};
use wa_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

async fn start() -> SandboxHandle {
    Sandbox::start(SandboxConfig::default().with_seed(42))
        .await
        .expect("sandbox starts")
}

fn http_status(err: &tungstenite::Error) -> Option<u16> {
    match err {
        tungstenite::Error::Http(resp) => Some(resp.status().as_u16()),
        _ => None,
    }
}

#[tokio::test]
async fn accepts_websocket_at_ws_chat_with_origin() {
    let sandbox = start().await;
    let mut req = tungstenite::client::IntoClientRequest::into_client_request(sandbox.ws_url())
        .expect("request");
    req.headers_mut().insert(
        "origin",
        "https://web.whatsapp.com".parse().expect("header"),
    );
    let (ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    assert_eq!(resp.status().as_u16(), 101);
    drop(ws);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn rejects_other_paths_with_404() {
    let sandbox = start().await;
    let url = sandbox.ws_url().replace("/ws/chat", "/ws/other");
    let err = tokio_tungstenite::connect_async(url)
        .await
        .expect_err("refused");
    assert_eq!(http_status(&err), Some(404));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn refuses_the_next_n_connections_then_accepts() {
    let sandbox = start().await;
    sandbox.faults().refuse_connections(2);
    for _ in 0..2 {
        let err = tokio_tungstenite::connect_async(sandbox.ws_url())
            .await
            .expect_err("refused");
        assert_eq!(http_status(&err), Some(503));
    }
    let (ws, _) = tokio_tungstenite::connect_async(sandbox.ws_url())
        .await
        .expect("third is accepted");
    drop(ws);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_live_connections() {
    use futures_util::StreamExt as _;
    let sandbox = start().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(sandbox.ws_url())
        .await
        .expect("upgrade");
    tokio::time::timeout(Duration::from_secs(10), sandbox.shutdown())
        .await
        .expect("shutdown completes");
    // The server sent a close frame (or the socket ended).
    let next = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("socket ends");
    assert!(
        matches!(next, None | Some(Ok(Message::Close(_))) | Some(Err(_))),
        "{next:?}"
    );
}
