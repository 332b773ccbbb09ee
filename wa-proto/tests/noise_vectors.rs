//! Noise handshake and certificate-chain messages decoded from captured vectors.
//!
//! Vectors: `shared/vectors/noise/whatsmeow_live_capture.json` (real WhatsApp server bytes)
//! and `shared/vectors/noise/baileys_handshake.json` (Baileys client transcript).

mod support;

use anyhow::{Context, Result, ensure};
use prost::Message as _;
use serde_json::Value;
use support::{hex_at, load, u64_at};
use wa_proto::wa::{CertChain, HandshakeMessage, cert_chain};

/// Decodes the serialized `Details` of one certificate of a chain.
fn details(
    cert: Option<&cert_chain::NoiseCertificate>,
) -> Result<cert_chain::noise_certificate::Details> {
    let cert = cert.context("certificate missing from chain")?;
    ensure!(cert.signature().len() == 64, "signature is not 64 bytes");
    Ok(cert_chain::noise_certificate::Details::decode(
        cert.details(),
    )?)
}

fn assert_cert_matches(
    decoded: &cert_chain::noise_certificate::Details,
    vector: &Value,
    who: &str,
) -> Result<()> {
    let base = format!("/cert_chain_decoded/{who}");
    assert_eq!(
        u64::from(decoded.serial()),
        u64_at(vector, &format!("{base}/serial"))?,
        "{who} serial"
    );
    assert_eq!(
        u64::from(decoded.issuer_serial()),
        u64_at(vector, &format!("{base}/issuer_serial"))?,
        "{who} issuer serial"
    );
    assert_eq!(
        decoded.key(),
        hex_at(vector, &format!("{base}/key"))?,
        "{who} key"
    );
    assert_eq!(
        decoded.not_before(),
        u64_at(vector, &format!("{base}/not_before"))?,
        "{who} not_before"
    );
    assert_eq!(
        decoded.not_after(),
        u64_at(vector, &format!("{base}/not_after"))?,
        "{who} not_after"
    );
    Ok(())
}

#[test]
fn decodes_real_whatsapp_certificate_chain() -> Result<()> {
    let v = load("noise/whatsmeow_live_capture.json");
    let bytes = hex_at(&v, "/cert_chain")?;
    let chain = CertChain::decode(bytes.as_slice())?;

    let leaf = details(chain.leaf.as_ref())?;
    let intermediate = details(chain.intermediate.as_ref())?;
    assert_cert_matches(&leaf, &v, "leaf")?;
    assert_cert_matches(&intermediate, &v, "intermediate")?;

    // Facts from shared/protocol/01 §5.3, independent of the JSON's decoded section.
    assert_eq!((leaf.serial(), leaf.issuer_serial()), (329, 3));
    assert_eq!(
        (intermediate.serial(), intermediate.issuer_serial()),
        (3, 0)
    );
    assert_eq!(
        leaf.key(),
        hex_at(&v, "/server_static_public")?,
        "leaf key is the server static key"
    );
    assert_eq!(bytes.len(), 241);
    assert_eq!(chain.leaf.as_ref().map(|c| c.details().len()), Some(51));
    assert_eq!(
        chain.intermediate.as_ref().map(|c| c.details().len()),
        Some(50)
    );

    // Re-encoding reproduces the server's bytes exactly (fields in tag order, no unknowns).
    assert_eq!(chain.encode_to_vec(), bytes);
    Ok(())
}

/// Strips the 3-byte big-endian length prefix of a frame and checks it.
fn unframe(frame: &[u8]) -> Result<&[u8]> {
    ensure!(frame.len() >= 3, "frame shorter than its length prefix");
    let (len, body) = frame.split_at(3);
    let len = (usize::from(len[0]) << 16) | (usize::from(len[1]) << 8) | usize::from(len[2]);
    ensure!(
        len == body.len(),
        "frame length prefix {len} != body {}",
        body.len()
    );
    Ok(body)
}

#[test]
fn decodes_baileys_handshake_messages() -> Result<()> {
    let v = load("noise/baileys_handshake.json");
    let prologue = hex_at(&v, "/protocol/prologue")?;

    // Client hello: prologue, then a framed HandshakeMessage{clientHello{ephemeral}}.
    let frame = hex_at(&v, "/reference/frames/c2s_1_client_hello")?;
    let body = unframe(
        frame
            .strip_prefix(prologue.as_slice())
            .context("no prologue")?,
    )?;
    assert_eq!(body, hex_at(&v, "/reference/parts/client_hello_proto")?);
    let hello = HandshakeMessage::decode(body)?;
    let client_hello = hello.client_hello.as_ref().context("clientHello missing")?;
    assert_eq!(
        client_hello.ephemeral(),
        hex_at(&v, "/keys/clientEphemeral/public")?
    );
    assert!(hello.server_hello.is_none() && hello.client_finish.is_none());
    assert_eq!(hello.encode_to_vec(), body);

    // Server hello: ephemeral in clear, encrypted static (48 bytes) and encrypted cert chain.
    let frame = hex_at(&v, "/reference/frames/s2c_1_server_hello")?;
    let body = unframe(&frame)?;
    assert_eq!(body, hex_at(&v, "/reference/parts/server_hello_proto")?);
    let msg = HandshakeMessage::decode(body)?;
    let server_hello = msg.server_hello.as_ref().context("serverHello missing")?;
    assert_eq!(
        server_hello.ephemeral(),
        hex_at(&v, "/keys/serverEphemeral/public")?
    );
    assert_eq!(
        server_hello.r#static(),
        hex_at(&v, "/reference/parts/server_static_ciphertext")?
    );
    assert_eq!(server_hello.r#static().len(), 48);
    assert_eq!(
        server_hello.payload(),
        hex_at(&v, "/reference/parts/cert_chain_ciphertext")?
    );
    assert_eq!(msg.encode_to_vec(), body);

    // Client finish: encrypted static (48 bytes) and encrypted ClientPayload.
    let frame = hex_at(&v, "/reference/frames/c2s_2_client_finish")?;
    let body = unframe(&frame)?;
    assert_eq!(body, hex_at(&v, "/reference/parts/client_finish_proto")?);
    let msg = HandshakeMessage::decode(body)?;
    let finish = msg.client_finish.as_ref().context("clientFinish missing")?;
    assert_eq!(
        finish.r#static(),
        hex_at(&v, "/reference/parts/client_static_ciphertext")?
    );
    assert_eq!(
        finish.payload(),
        hex_at(&v, "/reference/parts/client_payload_ciphertext")?
    );
    assert_eq!(msg.encode_to_vec(), body);
    Ok(())
}

#[test]
fn decodes_baileys_lab_certificate_chain() -> Result<()> {
    let v = load("noise/baileys_handshake.json");
    let bytes = hex_at(&v, "/reference/parts/cert_chain_plain")?;
    let chain = CertChain::decode(bytes.as_slice())?;
    let leaf = details(chain.leaf.as_ref())?;
    let intermediate = details(chain.intermediate.as_ref())?;
    assert_eq!(leaf.key(), hex_at(&v, "/keys/serverStatic/public")?);
    assert_eq!(
        intermediate.key(),
        hex_at(&v, "/keys/labIntermediate/public")?
    );
    assert_eq!(intermediate.issuer_serial(), 0);
    assert_eq!(leaf.issuer_serial(), intermediate.serial());
    assert!(leaf.not_before() < leaf.not_after());
    assert_eq!(chain.encode_to_vec(), bytes);
    Ok(())
}
