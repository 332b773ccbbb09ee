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

/// Capacity of the outgoing batch buffer kept between bursts, bytes. A burst that needed
/// more (the 812-key prekey upload is a single frame of about 40 KiB) gives its buffer back
/// once written, instead of keeping it for the life of the connection.
const KEEP_OUT_BUFFER: usize = 4 * 1024;

pub(crate) struct WsTransport {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Frames queued by [`feed`](Self::feed), already in WebSocket framing (RFC 6455 §5.2,
    /// client-masked), written by [`flush`](Self::flush). Outgoing frames bypass
    /// tungstenite's own write buffer, which keeps the capacity of the largest burst
    /// forever (about 40 KiB per idle connection after the prekey upload).
    out: Vec<u8>,
}

/// Appends `payload` to `out` as one final, masked binary WebSocket frame (RFC 6455 §5.2;
/// a client masks every frame, §5.3).
fn put_binary_frame(out: &mut Vec<u8>, payload: &[u8], mask: [u8; 4]) {
    out.reserve(payload.len() + 14);
    // FIN + opcode 2 (binary).
    out.push(0x82);
    let len = payload.len();
    if len < 126 {
        // Below 126, so the cast keeps the value.
        out.push(0x80 | len as u8);
    } else if let Ok(len16) = u16::try_from(len) {
        out.push(0x80 | 126);
        out.extend_from_slice(&len16.to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(
        payload
            .iter()
            .zip(mask.iter().cycle())
            .map(|(byte, key)| byte ^ key),
    );
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
        Ok(Self {
            ws,
            out: Vec::new(),
        })
    }

    /// Queues one binary message without writing it (see [`flush`](Self::flush)).
    pub(crate) async fn feed(&mut self, bytes: bytes::Bytes) -> Result<(), TransportError> {
        put_binary_frame(&mut self.out, &bytes, rand::random());
        Ok(())
    }

    /// Writes everything queued by [`feed`](Self::feed) to the socket: first what
    /// tungstenite itself has pending (pongs), then the queued frames, then flushes.
    pub(crate) async fn flush(&mut self) -> Result<(), TransportError> {
        use tokio::io::AsyncWriteExt as _;
        self.ws.flush().await.map_err(TransportError)?;
        if self.out.is_empty() {
            return Ok(());
        }
        let io = |e: std::io::Error| TransportError(tokio_tungstenite::tungstenite::Error::Io(e));
        let stream = self.ws.get_mut();
        let written = stream.write_all(&self.out).await;
        if self.out.capacity() > KEEP_OUT_BUFFER {
            self.out = Vec::new();
        } else {
            self.out.clear();
        }
        written.map_err(io)?;
        stream.flush().await.map_err(io)
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

#[cfg(test)]
mod tests {
    use super::put_binary_frame;
    use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    /// Our framing parses as tungstenite's own: one final, masked binary frame whose
    /// unmasked payload is the input, at each length encoding (7-bit, 16-bit, 64-bit).
    #[test]
    fn binary_frames_parse_back() {
        for len in [0usize, 1, 125, 126, 4_000, 65_535, 65_536, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut out = vec![0xAA];
            put_binary_frame(&mut out, &payload, [1, 2, 3, 4]);
            let mut cursor = std::io::Cursor::new(&out[1..]);
            let (header, body_len) = FrameHeader::parse(&mut cursor)
                .expect("header")
                .expect("complete header");
            assert!(header.is_final);
            assert_eq!(header.opcode, OpCode::Data(Data::Binary));
            assert_eq!(header.mask, Some([1, 2, 3, 4]));
            assert_eq!(body_len, len as u64);
            let start = 1 + cursor.position() as usize;
            assert_eq!(out.len(), start + len);
            let unmasked: Vec<u8> = out[start..]
                .iter()
                .zip([1u8, 2, 3, 4].iter().cycle())
                .map(|(b, k)| b ^ k)
                .collect();
            assert_eq!(unmasked, payload, "length {len}");
        }
    }
}
