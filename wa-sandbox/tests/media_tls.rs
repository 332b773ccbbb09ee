//! The media port with TLS on (`SandboxConfig::with_media_tls`): the same `host:port` answers
//! plain HTTP and HTTPS, the HTTPS side presents the certificate the handle hands out (valid
//! for 127.0.0.1), a client that does not trust it fails the handshake, and a client that
//! connects and says nothing does not block the others.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use wa_sandbox::{Sandbox, SandboxConfig};

const GET_MISSING: &[u8] =
    b"GET /v/t62.7118-24/1_2_3_n.enc HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";

fn client_config(roots: &[&[u8]]) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut store = rustls::RootCertStore::empty();
    for der in roots {
        store.add(CertificateDer::from(der.to_vec()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(store)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

async fn read_all(mut io: impl tokio::io::AsyncRead + Unpin) -> anyhow::Result<String> {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), io.read_to_end(&mut out))
        .await
        .context("response in time")??;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn media_port_speaks_http_and_https_with_the_handed_out_certificate() -> anyhow::Result<()> {
    let sandbox = Sandbox::start(SandboxConfig::default().with_media_tls(true)).await?;
    let addr = sandbox
        .media_url()
        .strip_prefix("http://")
        .context("http base")?
        .to_owned();
    let cert = sandbox
        .media_tls_cert_der()
        .context("certificate")?
        .to_vec();
    assert!(
        sandbox
            .media_tls_cert_pem()
            .is_some_and(|p| p.starts_with("-----BEGIN CERTIFICATE-----\n")),
        "PEM form"
    );

    // A silent client holds no one up.
    let _silent = TcpStream::connect(&addr).await?;

    // Plain HTTP.
    let mut plain = TcpStream::connect(&addr).await?;
    plain.write_all(GET_MISSING).await?;
    let reply = read_all(plain).await?;
    assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");

    // HTTPS, trusting the handed-out certificate, checked against 127.0.0.1.
    let connector = TlsConnector::from(client_config(&[&cert])?);
    let tcp = TcpStream::connect(&addr).await?;
    let mut tls = connector
        .connect(ServerName::try_from("127.0.0.1")?.to_owned(), tcp)
        .await?;
    tls.write_all(GET_MISSING).await?;
    let reply = read_all(tls).await?;
    assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
    assert!(reply.contains("not_found"), "{reply}");

    // A client that does not trust it fails the handshake.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])?;
    let untrusting = TlsConnector::from(client_config(&[other.cert.der()])?);
    let tcp = TcpStream::connect(&addr).await?;
    let refused = untrusting
        .connect(ServerName::try_from("127.0.0.1")?.to_owned(), tcp)
        .await;
    assert!(refused.is_err(), "handshake with an untrusted certificate");

    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn without_media_tls_there_is_no_certificate() -> anyhow::Result<()> {
    let sandbox = Sandbox::start(SandboxConfig::default()).await?;
    assert!(sandbox.media_tls_cert_pem().is_none());
    assert!(sandbox.media_tls_cert_der().is_none());
    sandbox.shutdown().await;
    Ok(())
}
