//! Noise handshake against captured transcripts (shared/vectors/noise/):
//!
//! - `whatsmeow_live_capture.json`: real WhatsApp server bytes; every intermediate hash and
//!   chaining key, the decrypted server static key and the real certificate chain, which
//!   must verify under the production root inside its window and be reported expired today.
//! - `baileys_handshake.json`: a full deterministic transcript (Baileys client, independent
//!   server); both our roles must reproduce it byte for byte, transport frames included.

use std::path::{Path, PathBuf};

use prost::Message;
use serde_json::Value;
use wa_engine::noise::{
    CertError, CertRole, ClientHandshake, FrameDecoder, FrameEncoder, KeyPair, NoiseError,
    PROTOCOL_NAME, ServerHandshake, SymmetricState, TrustRoot, WHATSAPP_ROOT_KEY,
    verify_cert_chain,
};
use wa_proto::wa::{CertChain, HandshakeMessage, handshake_message::ServerHello};
use x25519_dalek::{PublicKey, StaticSecret};

/// 2026-11-21T00:00:00Z: "today" for the expiry check, fixed so the test never changes.
const TODAY: u64 = 1_795_219_200;
/// Inside the real leaf's window [1742850000, 1753736400] (verification_note in the vector).
const INSIDE_REAL_WINDOW: u64 = 1_750_000_000;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/noise")
}

fn load(name: &str) -> Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "noise vector {} is missing or unreadable: {e}",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn hex_at(v: &Value, pointer: &str) -> Vec<u8> {
    let s = v
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("vector field {pointer} missing"));
    hex::decode(s).unwrap_or_else(|e| panic!("vector field {pointer} is not hex: {e}"))
}

fn key_at(v: &Value, pointer: &str) -> [u8; 32] {
    hex_at(v, pointer)
        .try_into()
        .unwrap_or_else(|_| panic!("vector field {pointer} is not 32 bytes"))
}

fn u64_at(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("vector field {pointer} missing"))
}

fn dh(private: [u8; 32], public: [u8; 32]) -> [u8; 32] {
    StaticSecret::from(private)
        .diffie_hellman(&PublicKey::from(public))
        .to_bytes()
}

// ---------------------------------------------------------------------------------------
// whatsmeow live capture (real WhatsApp server)
// ---------------------------------------------------------------------------------------

fn live_server_hello(v: &Value) -> Vec<u8> {
    HandshakeMessage {
        server_hello: Some(ServerHello {
            ephemeral: Some(hex_at(v, "/server_hello_ephemeral")),
            r#static: Some(hex_at(v, "/server_hello_static")),
            payload: Some(hex_at(v, "/server_hello_payload")),
        }),
        ..HandshakeMessage::default()
    }
    .encode_to_vec()
}

fn live_client(v: &Value) -> ClientHandshake {
    // The client static key was not captured; it is not used before the ClientFinish.
    ClientHandshake::new(
        KeyPair::from_private_bytes([0x42; 32]),
        KeyPair::from_private_bytes(key_at(v, "/client_ephemeral_private")),
        TrustRoot::default(),
    )
}

#[test]
fn live_capture_every_intermediate_value_matches() {
    let v = load("whatsmeow_live_capture.json");
    assert_eq!(PROTOCOL_NAME.as_slice(), hex_at(&v, "/noise_name_hex"));
    assert_eq!(hex_at(&v, "/prologue"), wa_engine::noise::CONN_HEADER);
    let e_priv = key_at(&v, "/client_ephemeral_private");
    let e_pub = key_at(&v, "/client_ephemeral_public");
    let re = key_at(&v, "/server_hello_ephemeral");
    assert_eq!(KeyPair::from_private_bytes(e_priv).public(), &e_pub);

    let mut st = SymmetricState::new();
    assert_eq!(
        st.handshake_hash().as_slice(),
        hex_at(&v, "/h_after_prologue")
    );
    st.mix_hash(&e_pub);
    assert_eq!(
        st.handshake_hash().as_slice(),
        hex_at(&v, "/h_after_client_ephemeral")
    );
    st.mix_hash(&re);
    assert_eq!(
        st.handshake_hash().as_slice(),
        hex_at(&v, "/h_after_server_ephemeral")
    );
    st.mix_key(&dh(e_priv, re));
    assert_eq!(st.chaining_key().as_slice(), hex_at(&v, "/ck_after_mix_ee"));

    let mut server_static = Vec::new();
    st.decrypt_and_hash(
        &hex_at(&v, "/server_hello_static"),
        &mut server_static,
        "static",
    )
    .unwrap();
    assert_eq!(server_static, hex_at(&v, "/server_static_public"));
    assert_eq!(
        st.handshake_hash().as_slice(),
        hex_at(&v, "/h_after_server_static")
    );
    st.mix_key(&dh(e_priv, key_at(&v, "/server_static_public")));
    assert_eq!(st.chaining_key().as_slice(), hex_at(&v, "/ck_after_mix_es"));

    let mut cert = Vec::new();
    st.decrypt_and_hash(&hex_at(&v, "/server_hello_payload"), &mut cert, "cert")
        .unwrap();
    assert_eq!(cert, hex_at(&v, "/cert_chain"));
    assert_eq!(
        st.handshake_hash().as_slice(),
        hex_at(&v, "/h_after_server_payload")
    );
}

#[test]
fn live_capture_client_handshake_accepts_real_server_hello() {
    let v = load("whatsmeow_live_capture.json");
    let hs = live_client(&v);
    assert_eq!(
        hs.handshake_hash().as_slice(),
        hex_at(&v, "/h_after_client_ephemeral")
    );
    let mut hello = Vec::new();
    hs.write_client_hello(&mut hello);
    let decoded = HandshakeMessage::decode(hello.as_slice()).unwrap();
    assert_eq!(
        decoded.client_hello.unwrap().ephemeral.unwrap(),
        hex_at(&v, "/client_ephemeral_public")
    );

    let verified = hs
        .handle_server_hello(INSIDE_REAL_WINDOW, &live_server_hello(&v))
        .unwrap();
    assert_eq!(
        verified.server_static().as_slice(),
        hex_at(&v, "/server_static_public")
    );
    assert_eq!(
        verified.handshake_hash().as_slice(),
        hex_at(&v, "/h_after_server_payload")
    );
    assert_eq!(
        verified.chaining_key().as_slice(),
        hex_at(&v, "/ck_after_mix_es")
    );

    let chain = verified.certificates();
    for (cert, name) in [(&chain.leaf, "leaf"), (&chain.intermediate, "intermediate")] {
        let p = |f: &str| format!("/cert_chain_decoded/{name}/{f}");
        assert_eq!(u64::from(cert.serial), u64_at(&v, &p("serial")));
        assert_eq!(
            u64::from(cert.issuer_serial),
            u64_at(&v, &p("issuer_serial"))
        );
        assert_eq!(cert.key.as_slice(), hex_at(&v, &p("key")));
        assert_eq!(cert.not_before, u64_at(&v, &p("not_before")));
        assert_eq!(cert.not_after, u64_at(&v, &p("not_after")));
    }
}

#[test]
fn live_capture_real_chain_is_reported_expired_today() {
    let v = load("whatsmeow_live_capture.json");
    let err = live_client(&v)
        .handle_server_hello(TODAY, &live_server_hello(&v))
        .unwrap_err();
    match err {
        NoiseError::Certificate(CertError::Expired {
            role: CertRole::Leaf,
            not_after,
            now,
        }) => {
            assert_eq!(not_after, u64_at(&v, "/cert_chain_decoded/leaf/not_after"));
            assert_eq!(now, TODAY);
        }
        other => panic!("expected an expired leaf, got {other:?}"),
    }
    let message = NoiseError::Certificate(CertError::Expired {
        role: CertRole::Leaf,
        not_after: 1_753_736_400,
        now: TODAY,
    });
    let source = std::error::Error::source(&message).unwrap().to_string();
    assert_eq!(
        source,
        "leaf certificate expired at 2025-07-28T21:00:00Z (now 2026-11-21T00:00:00Z)"
    );
}

#[test]
fn real_chain_validity_window_is_checked_for_both_certificates() {
    let v = load("whatsmeow_live_capture.json");
    let chain = hex_at(&v, "/cert_chain");
    let static_key = key_at(&v, "/server_static_public");
    let root = TrustRoot::default();
    assert_eq!(root.public_key(), &WHATSAPP_ROOT_KEY);
    assert_eq!(
        WHATSAPP_ROOT_KEY.as_slice(),
        hex_at(&v, "/whatsapp_root_public_key")
    );

    // Bounds are inclusive (whatsmeow: "before notBefore" / "after notAfter" fail).
    for now in [1_742_850_000, 1_753_736_400] {
        verify_cert_chain(&chain, &root, &static_key, now).unwrap();
    }
    let check = |now| verify_cert_chain(&chain, &root, &static_key, now).unwrap_err();
    assert_eq!(
        check(1_742_849_999),
        CertError::NotYetValid {
            role: CertRole::Leaf,
            not_before: 1_742_850_000,
            now: 1_742_849_999
        }
    );
    assert_eq!(
        check(1_753_736_401),
        CertError::Expired {
            role: CertRole::Leaf,
            not_after: 1_753_736_400,
            now: 1_753_736_401
        }
    );
    assert_eq!(
        check(1_741_391_999),
        CertError::NotYetValid {
            role: CertRole::Intermediate,
            not_before: 1_741_392_000,
            now: 1_741_391_999
        }
    );
    assert_eq!(
        check(1_804_464_000),
        CertError::Expired {
            role: CertRole::Intermediate,
            not_after: 1_804_463_999,
            now: 1_804_464_000
        }
    );
}

#[test]
fn real_chain_rejected_under_other_root_or_serial() {
    let v = load("whatsmeow_live_capture.json");
    let chain = hex_at(&v, "/cert_chain");
    let static_key = key_at(&v, "/server_static_public");
    let mut other = WHATSAPP_ROOT_KEY;
    other[0] ^= 1;
    assert_eq!(
        verify_cert_chain(
            &chain,
            &TrustRoot::new(other, 0),
            &static_key,
            INSIDE_REAL_WINDOW
        ),
        Err(CertError::UntrustedRoot)
    );
    assert_eq!(
        verify_cert_chain(
            &chain,
            &TrustRoot::new(WHATSAPP_ROOT_KEY, 7),
            &static_key,
            INSIDE_REAL_WINDOW
        ),
        Err(CertError::IssuerSerialMismatch {
            role: CertRole::Intermediate,
            found: 0,
            expected: 7
        })
    );
}

#[test]
fn real_chain_rejected_when_leaf_key_is_not_the_server_static() {
    let v = load("whatsmeow_live_capture.json");
    let chain = hex_at(&v, "/cert_chain");
    let mut static_key = key_at(&v, "/server_static_public");
    static_key[31] ^= 0x01;
    assert_eq!(
        verify_cert_chain(
            &chain,
            &TrustRoot::default(),
            &static_key,
            INSIDE_REAL_WINDOW
        ),
        Err(CertError::LeafKeyMismatch)
    );
}

#[test]
fn tampered_real_chain_fails_the_specific_check() {
    let v = load("whatsmeow_live_capture.json");
    let original = CertChain::decode(hex_at(&v, "/cert_chain").as_slice()).unwrap();
    let static_key = key_at(&v, "/server_static_public");
    let verify = |chain: &CertChain| {
        verify_cert_chain(
            &chain.encode_to_vec(),
            &TrustRoot::default(),
            &static_key,
            INSIDE_REAL_WINDOW,
        )
    };
    assert!(verify(&original).is_ok());

    // One bit of the intermediate details: the root signature no longer verifies.
    let mut c = original.clone();
    let details = c.intermediate.as_mut().unwrap().details.as_mut().unwrap();
    *details.last_mut().unwrap() ^= 1;
    assert_eq!(verify(&c), Err(CertError::UntrustedRoot));

    // One bit of the leaf details (its notAfter): the intermediate signature fails.
    let mut c = original.clone();
    let details = c.leaf.as_mut().unwrap().details.as_mut().unwrap();
    *details.last_mut().unwrap() ^= 1;
    assert_eq!(verify(&c), Err(CertError::BadLeafSignature));

    // One bit of a signature.
    let mut c = original.clone();
    c.leaf.as_mut().unwrap().signature.as_mut().unwrap()[5] ^= 0x20;
    assert_eq!(verify(&c), Err(CertError::BadLeafSignature));

    // A 63-byte signature.
    let mut c = original.clone();
    c.intermediate
        .as_mut()
        .unwrap()
        .signature
        .as_mut()
        .unwrap()
        .pop();
    assert_eq!(
        verify(&c),
        Err(CertError::BadSignatureLength {
            role: CertRole::Intermediate,
            len: 63
        })
    );

    // Leaf and intermediate swapped.
    let mut c = original.clone();
    std::mem::swap(&mut c.leaf, &mut c.intermediate);
    assert_eq!(verify(&c), Err(CertError::UntrustedRoot));

    // Missing leaf signature; missing intermediate.
    let mut c = original.clone();
    c.leaf.as_mut().unwrap().signature = None;
    assert_eq!(verify(&c), Err(CertError::MissingPart("leaf.signature")));
    let mut c = original;
    c.intermediate = None;
    assert_eq!(verify(&c), Err(CertError::MissingPart("intermediate")));

    // Not a protobuf at all.
    assert!(matches!(
        verify_cert_chain(
            &[0xff, 0xff],
            &TrustRoot::default(),
            &static_key,
            INSIDE_REAL_WINDOW
        ),
        Err(CertError::Malformed(_))
    ));
}

#[test]
fn tampered_live_server_hello_fails_decryption() {
    let v = load("whatsmeow_live_capture.json");
    let mut msg = HandshakeMessage::decode(live_server_hello(&v).as_slice()).unwrap();
    msg.server_hello.as_mut().unwrap().payload.as_mut().unwrap()[100] ^= 1;
    let err = live_client(&v)
        .handle_server_hello(INSIDE_REAL_WINDOW, &msg.encode_to_vec())
        .unwrap_err();
    assert!(
        matches!(err, NoiseError::DecryptFailed("certificate chain")),
        "{err:?}"
    );

    let mut msg = HandshakeMessage::decode(live_server_hello(&v).as_slice()).unwrap();
    msg.server_hello
        .as_mut()
        .unwrap()
        .ephemeral
        .as_mut()
        .unwrap()[0] ^= 1;
    let err = live_client(&v)
        .handle_server_hello(INSIDE_REAL_WINDOW, &msg.encode_to_vec())
        .unwrap_err();
    assert!(
        matches!(err, NoiseError::DecryptFailed("server static key")),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Baileys transcript
// ---------------------------------------------------------------------------------------

/// Inside the lab chain's window [1700000000, 1900000000].
const BAILEYS_NOW: u64 = TODAY;

struct Baileys {
    v: Value,
}

impl Baileys {
    fn load() -> Self {
        Self {
            v: load("baileys_handshake.json"),
        }
    }
    fn hex(&self, p: &str) -> Vec<u8> {
        hex_at(&self.v, p)
    }
    fn key(&self, name: &str) -> KeyPair {
        let kp = KeyPair::from_private_bytes(key_at(&self.v, &format!("/keys/{name}/private")));
        assert_eq!(
            kp.public(),
            &key_at(&self.v, &format!("/keys/{name}/public")),
            "{name}"
        );
        kp
    }
    fn trust_root(&self) -> TrustRoot {
        TrustRoot::new(*self.key("labRoot").public(), 0)
    }
    fn client(&self) -> ClientHandshake {
        ClientHandshake::new(
            self.key("clientNoiseStatic"),
            self.key("clientEphemeral"),
            self.trust_root(),
        )
    }
    fn server(&self) -> ServerHandshake {
        ServerHandshake::new(
            self.key("serverStatic"),
            self.key("serverEphemeral"),
            self.hex("/reference/parts/cert_chain_plain"),
        )
    }
    fn transport(&self, dir: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.v
            .pointer(&format!("/reference/transport/{dir}"))
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("transport/{dir} missing"))
            .iter()
            .enumerate()
            .map(|(i, f)| {
                assert_eq!(f["counter"].as_u64(), Some(i as u64));
                (hex_at(f, "/node_plain_hex"), hex_at(f, "/frame_hex"))
            })
            .collect()
    }
}

/// Splits a server-to-client byte string into frame payloads.
fn client_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut dec = FrameDecoder::client();
    dec.push(bytes);
    let mut out = Vec::new();
    while let Some(f) = dec.next_frame().unwrap() {
        out.push(f.to_vec());
    }
    dec.finish().unwrap();
    out
}

#[test]
fn baileys_initiator_emits_identical_frames() {
    let b = Baileys::load();
    let mut enc = FrameEncoder::client();
    let hs = b.client();
    assert_eq!(
        hs.handshake_hash().as_slice(),
        b.hex("/reference/trace/0/h")
    );

    let mut msg = Vec::new();
    hs.write_client_hello(&mut msg);
    assert_eq!(msg, b.hex("/reference/parts/client_hello_proto"));
    let mut wire = Vec::new();
    enc.encode(&msg, &mut wire).unwrap();
    assert_eq!(wire, b.hex("/reference/frames/c2s_1_client_hello"));

    let server_hello = client_frames(&b.hex("/reference/frames/s2c_1_server_hello"));
    assert_eq!(
        server_hello,
        vec![b.hex("/reference/parts/server_hello_proto")]
    );
    let verified = hs
        .handle_server_hello(BAILEYS_NOW, &server_hello[0])
        .unwrap();
    assert_eq!(
        verified.handshake_hash().as_slice(),
        b.hex("/reference/trace/3/h")
    );
    assert_eq!(
        verified.chaining_key().as_slice(),
        b.hex("/reference/trace/2/ck")
    );
    assert_eq!(verified.server_static(), b.key("serverStatic").public());

    msg.clear();
    let done = verified
        .write_client_finish(&b.hex("/reference/parts/client_payload_plain"), &mut msg)
        .unwrap();
    assert_eq!(msg, b.hex("/reference/parts/client_finish_proto"));
    wire.clear();
    enc.encode(&msg, &mut wire).unwrap();
    assert_eq!(wire, b.hex("/reference/frames/c2s_2_client_finish"));
    assert_eq!(
        done.handshake_hash().as_slice(),
        b.hex("/reference/trace/5/h")
    );
    assert_eq!(done.remote_static(), b.key("serverStatic").public());

    let mut transport = done.finish();
    for (plain, frame) in b.transport("c2s") {
        let mut payload = Vec::new();
        transport.encrypt(&plain, &mut payload).unwrap();
        wire.clear();
        enc.encode(&payload, &mut wire).unwrap();
        assert_eq!(wire, frame);
    }
    for (plain, frame) in b.transport("s2c") {
        let payloads = client_frames(&frame);
        let mut out = Vec::new();
        transport.decrypt(&payloads[0], &mut out).unwrap();
        assert_eq!(out, plain);
    }
}

#[test]
fn baileys_initiator_with_routing_info_emits_pre_intro() {
    let b = Baileys::load();
    let mut enc = FrameEncoder::client_with_routing_info(&b.hex("/with_routing_info/routing_info"));
    let mut msg = Vec::new();
    b.client().write_client_hello(&mut msg);
    let mut wire = Vec::new();
    enc.encode(&msg, &mut wire).unwrap();
    assert_eq!(wire, b.hex("/with_routing_info/c2s_1_client_hello"));
}

#[test]
fn baileys_responder_accepts_client_and_emits_identical_frames() {
    let b = Baileys::load();
    // The whole client stream, delivered in awkward 7-byte chunks.
    let mut stream = b.hex("/reference/frames/c2s_1_client_hello");
    stream.extend(b.hex("/reference/frames/c2s_2_client_finish"));
    let c2s = b.transport("c2s");
    for (_, frame) in &c2s {
        stream.extend(frame);
    }
    let mut dec = FrameDecoder::server();
    let mut frames = Vec::new();
    for chunk in stream.chunks(7) {
        dec.push(chunk);
        while let Some(f) = dec.next_frame().unwrap() {
            frames.push(f);
        }
    }
    dec.finish().unwrap();
    assert_eq!(frames.len(), 2 + c2s.len());
    assert_eq!(dec.routing_info(), None);

    let mut enc = FrameEncoder::server();
    let mut msg = Vec::new();
    let awaiting = b
        .server()
        .handle_client_hello(&frames[0], &mut msg)
        .unwrap();
    assert_eq!(msg, b.hex("/reference/parts/server_hello_proto"));
    assert_eq!(
        awaiting.handshake_hash().as_slice(),
        b.hex("/reference/trace/3/h")
    );
    let mut wire = Vec::new();
    enc.encode(&msg, &mut wire).unwrap();
    assert_eq!(wire, b.hex("/reference/frames/s2c_1_server_hello"));

    let (done, client) = awaiting.handle_client_finish(&frames[1]).unwrap();
    assert_eq!(&client.client_static, b.key("clientNoiseStatic").public());
    assert_eq!(
        client.payload,
        b.hex("/reference/parts/client_payload_plain")
    );
    assert_eq!(
        done.handshake_hash().as_slice(),
        b.hex("/reference/trace/5/h")
    );
    assert_eq!(done.remote_static(), b.key("clientNoiseStatic").public());

    let mut transport = done.finish();
    for ((plain, _), frame) in c2s.iter().zip(&frames[2..]) {
        let mut out = Vec::new();
        transport.decrypt(frame, &mut out).unwrap();
        assert_eq!(&out, plain);
    }
    for (plain, frame) in b.transport("s2c") {
        let mut payload = Vec::new();
        transport.encrypt(&plain, &mut payload).unwrap();
        wire.clear();
        enc.encode(&payload, &mut wire).unwrap();
        assert_eq!(wire, frame);
    }
}

#[test]
fn baileys_responder_reads_routing_info_pre_intro() {
    let b = Baileys::load();
    let mut dec = FrameDecoder::server();
    dec.push(&b.hex("/with_routing_info/c2s_1_client_hello"));
    dec.push(&b.hex("/with_routing_info/c2s_2_client_finish"));
    let hello = dec.next_frame().unwrap().unwrap();
    let finish = dec.next_frame().unwrap().unwrap();
    dec.finish().unwrap();
    assert_eq!(
        dec.routing_info(),
        Some(b.hex("/with_routing_info/routing_info").as_slice())
    );
    let mut msg = Vec::new();
    let awaiting = b.server().handle_client_hello(&hello, &mut msg).unwrap();
    let (_, client) = awaiting.handle_client_finish(&finish).unwrap();
    assert_eq!(
        client.payload,
        b.hex("/reference/parts/client_payload_plain")
    );
}

#[test]
fn baileys_split_keys_and_chaining_keys_match_trace() {
    let b = Baileys::load();
    let e = b.key("clientEphemeral");
    let s = b.key("clientNoiseStatic");
    let re = *b.key("serverEphemeral").public();
    let rs = *b.key("serverStatic").public();
    let mut st = SymmetricState::new();
    st.mix_hash(e.public());
    assert_eq!(
        st.handshake_hash().as_slice(),
        b.hex("/reference/trace/0/h")
    );
    st.mix_hash(&re);
    st.mix_key(&dh(*e.private_bytes(), re));
    assert_eq!(st.chaining_key().as_slice(), b.hex("/reference/trace/1/ck"));
    let mut out = Vec::new();
    st.decrypt_and_hash(
        &b.hex("/reference/parts/server_static_ciphertext"),
        &mut out,
        "s",
    )
    .unwrap();
    assert_eq!(out, rs);
    st.mix_key(&dh(*e.private_bytes(), rs));
    assert_eq!(st.chaining_key().as_slice(), b.hex("/reference/trace/2/ck"));
    out.clear();
    st.decrypt_and_hash(
        &b.hex("/reference/parts/cert_chain_ciphertext"),
        &mut out,
        "c",
    )
    .unwrap();
    assert_eq!(out, b.hex("/reference/parts/cert_chain_plain"));
    assert_eq!(
        st.handshake_hash().as_slice(),
        b.hex("/reference/trace/3/h")
    );
    out.clear();
    st.encrypt_and_hash(s.public(), &mut out).unwrap();
    assert_eq!(out, b.hex("/reference/parts/client_static_ciphertext"));
    st.mix_key(&dh(*s.private_bytes(), re));
    assert_eq!(st.chaining_key().as_slice(), b.hex("/reference/trace/4/ck"));
    out.clear();
    st.encrypt_and_hash(&b.hex("/reference/parts/client_payload_plain"), &mut out)
        .unwrap();
    assert_eq!(out, b.hex("/reference/parts/client_payload_ciphertext"));
    assert_eq!(
        st.handshake_hash().as_slice(),
        b.hex("/reference/trace/5/h")
    );
    let (c2s, s2c) = st.split();
    assert_eq!(
        c2s.as_slice(),
        b.hex("/reference/transport_keys/client_write_server_read")
    );
    assert_eq!(
        s2c.as_slice(),
        b.hex("/reference/transport_keys/server_write_client_read")
    );
}

#[test]
fn baileys_lab_chain_rejected_under_production_root() {
    let b = Baileys::load();
    let hs = ClientHandshake::new(
        b.key("clientNoiseStatic"),
        b.key("clientEphemeral"),
        TrustRoot::default(),
    );
    let server_hello = client_frames(&b.hex("/reference/frames/s2c_1_server_hello"));
    let err = hs
        .handle_server_hello(BAILEYS_NOW, &server_hello[0])
        .unwrap_err();
    assert!(
        matches!(err, NoiseError::Certificate(CertError::UntrustedRoot)),
        "{err:?}"
    );
}

#[test]
fn responder_rejects_wrong_messages_with_typed_errors() {
    let b = Baileys::load();
    let server_hello = b.hex("/reference/parts/server_hello_proto");
    let mut out = Vec::new();
    assert!(matches!(
        b.server().handle_client_hello(&server_hello, &mut out),
        Err(NoiseError::UnexpectedMessage {
            expected: "clientHello"
        })
    ));
    assert!(matches!(
        b.server().handle_client_hello(&[0x12, 0x00], &mut out),
        Err(NoiseError::MissingField("clientHello.ephemeral"))
    ));
    assert!(matches!(
        b.server()
            .handle_client_hello(&[0x12, 0x03, 0x0a, 0x01, 0x07], &mut out),
        Err(NoiseError::BadLength {
            field: "clientHello.ephemeral",
            len: 1,
            expected: 32
        })
    ));
    assert!(matches!(
        b.server()
            .handle_client_hello(&[0x12, 0x05, 0x0a], &mut out),
        Err(NoiseError::MalformedHandshake(_))
    ));
    assert!(out.is_empty());

    // A ClientFinish whose static ciphertext was tampered with.
    let awaiting = b
        .server()
        .handle_client_hello(&b.hex("/reference/parts/client_hello_proto"), &mut out)
        .unwrap();
    let mut finish =
        HandshakeMessage::decode(b.hex("/reference/parts/client_finish_proto").as_slice()).unwrap();
    finish
        .client_finish
        .as_mut()
        .unwrap()
        .r#static
        .as_mut()
        .unwrap()[3] ^= 1;
    assert!(matches!(
        awaiting.handle_client_finish(&finish.encode_to_vec()),
        Err(NoiseError::DecryptFailed("client static key"))
    ));
}

#[test]
fn truncated_handshake_frames_are_reported() {
    let b = Baileys::load();
    let hello = b.hex("/reference/frames/c2s_1_client_hello");
    for cut in 1..hello.len() {
        let mut dec = FrameDecoder::server();
        dec.push(&hello[..cut]);
        assert!(dec.next_frame().unwrap().is_none(), "cut {cut}");
        // A complete 4-byte header is consumed; what remains is the partial frame.
        let partial = if cut >= 4 { cut - 4 } else { cut };
        match dec.finish() {
            Ok(()) => assert_eq!(partial, 0, "cut {cut}"),
            Err(NoiseError::TruncatedFrame { buffered }) => {
                assert_eq!(buffered, partial, "cut {cut}")
            }
            Err(e) => panic!("cut {cut}: {e:?}"),
        }
    }
    // A frame whose payload is cut short inside the protobuf, framed with a consistent length.
    let proto = b.hex("/reference/parts/server_hello_proto");
    let err = b
        .client()
        .handle_server_hello(BAILEYS_NOW, &proto[..proto.len() - 10])
        .unwrap_err();
    assert!(matches!(err, NoiseError::MalformedHandshake(_)), "{err:?}");
}
