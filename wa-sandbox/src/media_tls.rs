//! Optional TLS for the media host: one port that serves both plain HTTP and HTTPS.
//!
//! Real clients reach media only over `https://` (Baileys 6.7.24 builds
//! `https://${hostname}${path}?auth=…` for uploads and `https://mmg.whatsapp.net${directPath}`
//! for downloads: `Utils/messages-media.js`), while our engine is told to use `http` for the
//! sandbox. With [`SandboxConfig::with_media_tls`](crate::SandboxConfig::with_media_tls) the
//! media port looks at the first byte each client sends: `0x16` (a TLS handshake record,
//! RFC 8446 §5.1) gets a TLS server (rustls, a self-signed certificate made by rcgen at start
//! for `127.0.0.1` and `localhost`), anything else is served as plain HTTP. So the
//! `host:port` announced in `media_conn` works for both kinds of client; TLS clients trust
//! the certificate from [`SandboxHandle::media_tls_cert_pem`](crate::SandboxHandle::media_tls_cert_pem)
//! (for Node: `NODE_EXTRA_CA_CERTS`).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// How long a new connection may stay silent (first byte) or take for its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Making the media host's certificate or TLS configuration failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaTlsError {
    /// rcgen could not make the self-signed certificate.
    #[error("cannot make the media host's self-signed certificate")]
    Certificate(#[source] rcgen::Error),
    /// rustls rejected the certificate or the protocol versions.
    #[error("cannot build the media host's TLS configuration")]
    Config(#[source] rustls::Error),
}

/// The media host's TLS identity: a self-signed certificate (DER) and the acceptor using it.
#[derive(Clone)]
pub(crate) struct MediaTls {
    cert_der: Vec<u8>,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for MediaTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaTls")
            .field("cert_der_len", &self.cert_der.len())
            .finish_non_exhaustive()
    }
}

impl MediaTls {
    /// A fresh self-signed certificate for `127.0.0.1`, `localhost` and `extra_name` (the
    /// bind address when it is not loopback), with the rustls `ring` provider.
    pub(crate) fn generate(extra_name: Option<String>) -> Result<Self, MediaTlsError> {
        let mut names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        names.extend(extra_name.filter(|n| !names.contains(n)));
        let certified =
            rcgen::generate_simple_self_signed(names).map_err(MediaTlsError::Certificate)?;
        let cert_der = certified.cert.der().to_vec();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        ));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(MediaTlsError::Config)?
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(cert_der.clone())], key)
        .map_err(MediaTlsError::Config)?;
        Ok(Self {
            cert_der,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// The certificate, DER.
    pub(crate) fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The certificate, PEM (`-----BEGIN CERTIFICATE-----`, base64 in 64-column lines).
    pub(crate) fn cert_pem(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.cert_der);
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }
}

/// A connection to the media port: plain TCP, or TLS over it.
pub(crate) enum MediaIo {
    /// Plain HTTP.
    Plain(TcpStream),
    /// HTTPS (handshake done).
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl AsyncRead for MediaIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MediaIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An [`axum::serve::Listener`] over a TCP listener that hands out [`MediaIo`]s: each
/// accepted connection is sorted (and TLS-accepted) in its own task, so a silent or slow
/// client never holds up the others.
pub(crate) struct DualListener {
    ready: mpsc::Receiver<(MediaIo, SocketAddr)>,
    local: SocketAddr,
}

impl DualListener {
    /// Starts sorting the connections of `listener`; `tls` answers those that start with a
    /// TLS record. The accept task ends when this listener is dropped.
    pub(crate) fn new(listener: TcpListener, tls: MediaTls) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = tx.closed() => break,
                    accepted = listener.accept() => accepted,
                };
                let (tcp, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::debug!(error = %e, "media: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let tx = tx.clone();
                let acceptor = tls.acceptor.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, sort(tcp, acceptor)).await {
                        Ok(Ok(io)) => {
                            let _ = tx.send((io, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, %peer, "media: TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "media: connection silent too long"),
                    }
                });
            }
        });
        Ok(Self { ready, local })
    }
}

/// Peeks at the first byte: `0x16` starts a TLS handshake, anything else is plain HTTP.
async fn sort(tcp: TcpStream, acceptor: TlsAcceptor) -> io::Result<MediaIo> {
    let mut first = [0u8; 1];
    let n = tcp.peek(&mut first).await?;
    if n == 1 && first[0] == 0x16 {
        Ok(MediaIo::Tls(Box::new(acceptor.accept(tcp).await?)))
    } else {
        Ok(MediaIo::Plain(tcp))
    }
}

impl axum::serve::Listener for DualListener {
    type Io = MediaIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept task only stops once this listener is gone; never reached while
            // serving. Wait forever rather than spin.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
