//! `wss://` end to end: a TLS front (tokio-rustls, a self-signed certificate made by rcgen for
//! 127.0.0.1) terminates TLS on loopback and forwards the bytes to wa-sandbox's plain
//! WebSocket. The real `Client` trusts the certificate through
//! `ClientBuilder::tls_root_certificate`, pairs by QR, restarts on 515 and logs in, every
//! connection through TLS. Without that root the TLS handshake fails with a typed error.
#![cfg(all(feature = "runtime", feature = "sled"))]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use wa_engine::{Client, CloseReason, ConnectError, Event, Events, MemoryStore, Store};
use wa_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

const PN: &str = "15557654321";

/// A TLS-terminating TCP proxy on 127.0.0.1 in front of the sandbox.
struct TlsFront {
    addr: SocketAddr,
    /// The proxy's self-signed certificate, DER.
    cert: CertificateDer<'static>,
    /// TLS handshakes completed so far.
    accepted: Arc<AtomicUsize>,
}

impl TlsFront {
    async fn start(upstream: SocketAddr) -> Self {
        let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
            .expect("self-signed certificate");
        let cert = key.cert.der().clone();
        let private =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], private)
        .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    // A client that rejects the certificate aborts here.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                    let Ok(mut plain) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Self {
            addr,
            cert,
            accepted,
        }
    }

    fn url(&self) -> String {
        format!("wss://{}/ws/chat", self.addr)
    }
}

async fn sandbox_and_front(seed: u64) -> (SandboxHandle, TlsFront) {
    let sb = Sandbox::start(
        SandboxConfig::default()
            .with_seed(seed)
            .with_first_stanza_delay(Duration::from_millis(5)),
    )
    .await
    .expect("sandbox starts");
    let upstream: SocketAddr = sb
        .ws_url()
        .strip_prefix("ws://")
        .and_then(|rest| rest.strip_suffix(wa_sandbox::WS_PATH))
        .expect("ws://host:port/ws/chat")
        .parse()
        .expect("socket address");
    let front = TlsFront::start(upstream).await;
    (sb, front)
}

async fn next(events: &mut Events) -> Event {
    tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .expect("an event within 20 s")
        .expect("event stream open")
}

#[tokio::test]
async fn pairs_restarts_and_logs_in_over_wss_with_a_custom_tls_root() {
    let (sb, front) = sandbox_and_front(11).await;
    let phone = sb.create_account(PN).expect("account");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (client, mut events) = Client::builder(store)
        .url(front.url())
        .tls_root_certificate(front.cert.to_vec())
        .trust_root(sb.trust_root())
        .connect()
        .await
        .expect("TLS, WebSocket and Noise handshakes succeed");
    let Event::Qr { code, .. } = next(&mut events).await else {
        panic!("an unpaired device shows a QR first");
    };
    let link = phone.scan(&code).expect("the phone scans");
    let mut seen = Vec::new();
    let jid = loop {
        match next(&mut events).await {
            Event::Connected { jid } => break jid,
            e => seen.push(e),
        }
    };
    assert_eq!(jid.to_string(), link.jid);
    assert!(
        seen.contains(&Event::Disconnected {
            reason: CloseReason::RestartRequired,
            reconnecting: true
        }),
        "{seen:?}"
    );
    assert_eq!(
        front.accepted.load(Ordering::SeqCst),
        2,
        "the registration and the login connection both went through TLS"
    );
    client.shutdown().await;
}

#[tokio::test]
async fn wss_rejects_a_certificate_no_trusted_root_signed() {
    let (sb, front) = sandbox_and_front(12).await;
    let err = Client::builder(Arc::new(MemoryStore::new()))
        .url(front.url())
        .trust_root(sb.trust_root())
        .connect()
        .await
        .expect_err("the self-signed certificate is not in the webpki roots");
    assert!(matches!(err, ConnectError::Transport(_)), "{err:?}");
    assert!(format!("{err:?}").contains("UnknownIssuer"), "{err:?}");
    assert_eq!(front.accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn extra_tls_root_that_is_not_der_is_a_transport_error() {
    let err = Client::builder(Arc::new(MemoryStore::new()))
        .tls_root_certificate(b"not a certificate".to_vec())
        .connect()
        .await
        .expect_err("a garbage root");
    assert!(matches!(err, ConnectError::Transport(_)), "{err:?}");
}
