//! The WebSocket transport (tokio-tungstenite) to `/ws/chat` (shared/protocol/01 §1), over
//! plain TCP for `ws://` URLs and TLS (rustls with the `ring` provider, webpki roots) for
//! `wss://` ones.

use std::sync::Arc;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::error::TlsError;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

/// Default server URL (whatsmeow socket/constants.go; Baileys `waWebSocketUrl`).
pub const DEFAULT_URL: &str = "wss://web.whatsapp.com/ws/chat";

/// The `Origin` header sent with the upgrade request (01 §1).
pub const ORIGIN: &str = "https://web.whatsapp.com";

/// Initial read buffer per connection, bytes. tungstenite's default (128 KiB) is
/// zero-filled on the first read, i.e. resident for every idle connection; stanzas are
/// small, and the buffer still grows for a larger frame. With 4 KiB an idle client costs
/// about 120 KiB less (benches/benches/messaging.rs).
const READ_BUFFER: usize = 4 * 1024;

/// Why the WebSocket could not be opened or used (including a TLS failure on a `wss://` URL,
/// such as a server certificate no trusted root signed, or an extra root certificate that is
/// not valid DER). The cause is in `source()`.
#[derive(Debug, thiserror::Error)]
#[error("WebSocket transport failed")]
pub struct TransportError(#[source] pub(crate) tokio_tungstenite::tungstenite::Error);

/// The rustls client configuration for `wss://` URLs: the Mozilla root program (webpki-roots)
/// plus `extra_roots` (DER-encoded X.509 certificates), TLS 1.2 and 1.3, the `ring` crypto
/// provider chosen explicitly so no process-wide default provider is needed.
///
/// # Errors
/// A [`TransportError`] wrapping the rustls error when an extra root does not parse.
pub(crate) fn tls_config(
    extra_roots: &[Vec<u8>],
) -> Result<Arc<rustls::ClientConfig>, TransportError> {
    // Without extra roots every client shares one configuration: a root store and a crypto
    // provider per client would cost about 25 KiB each (benches/benches/messaging.rs).
    static DEFAULT: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    if extra_roots.is_empty() {
        if let Some(shared) = DEFAULT.get() {
            return Ok(Arc::clone(shared));
        }
        let built = build_tls_config(extra_roots)?;
        return Ok(Arc::clone(DEFAULT.get_or_init(|| built)));
    }
    build_tls_config(extra_roots)
}

fn build_tls_config(extra_roots: &[Vec<u8>]) -> Result<Arc<rustls::ClientConfig>, TransportError> {
    let tls_error = |e: rustls::Error| {
        TransportError(tokio_tungstenite::tungstenite::Error::Tls(
            TlsError::Rustls(Box::new(e)),
        ))
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for der in extra_roots {
        roots
            .add(rustls::pki_types::CertificateDer::from(der.clone()))
            .map_err(tls_error)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(tls_error)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

pub(crate) struct WsTransport {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsTransport {
    /// Opens the WebSocket; `tls` is used for `wss://` URLs only. Nagle is off: frames are
    /// small and each one waits for an answer.
    pub(crate) async fn connect(
        url: &str,
        tls: &Arc<rustls::ClientConfig>,
    ) -> Result<Self, TransportError> {
        let mut request = url.into_client_request().map_err(TransportError)?;
        request
            .headers_mut()
            .insert("Origin", HeaderValue::from_static(ORIGIN));
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let (ws, _response) = tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(config),
            true,
            Some(Connector::Rustls(Arc::clone(tls))),
        )
        .await
        .map_err(TransportError)?;
        Ok(Self { ws })
    }

    /// Queues one binary message without flushing (see [`flush`](Self::flush)).
    pub(crate) async fn feed(&mut self, bytes: bytes::Bytes) -> Result<(), TransportError> {
        self.ws
            .feed(Message::Binary(bytes))
            .await
            .map_err(TransportError)
    }

    /// Writes everything queued by [`feed`](Self::feed) to the socket.
    pub(crate) async fn flush(&mut self) -> Result<(), TransportError> {
        self.ws.flush().await.map_err(TransportError)
    }

    /// The next binary payload; `None` when the socket closed. Non-binary messages are skipped
    /// (whatsmeow ignores them too).
    pub(crate) async fn recv(&mut self) -> Option<Result<bytes::Bytes, TransportError>> {
        loop {
            match self.ws.next().await? {
                Ok(Message::Binary(b)) => return Some(Ok(b)),
                Ok(Message::Close(_)) => return None,
                Ok(_) => continue,
                Err(e) => return Some(Err(TransportError(e))),
            }
        }
    }

    pub(crate) async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
