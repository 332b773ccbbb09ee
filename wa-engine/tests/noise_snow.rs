//! Interop with snow (an independent Noise implementation) on
//! `Noise_XX_25519_AESGCM_SHA256` with prologue `WA 06 03`, in both roles.
//!
//! How WhatsApp's construction maps onto standard Noise XX:
//!
//! - protocol name: snow's `"Noise_XX_25519_AESGCM_SHA256"` is 28 bytes, so snow pads it with
//!   zeros to `HASHLEN` = 32 for the initial `h` and `ck`; WhatsApp hard-codes the same 32
//!   bytes (`...SHA256\0\0\0\0`). Identical.
//! - prologue, DH, HKDF, AES-GCM nonces (snow: 4 zero bytes then u64 BE; WhatsApp: 8 zero
//!   bytes then u32 BE: identical below 2^32), associated data `h`, the nonce carried from the
//!   `es` payload into the `-> s` token (n = 1), `Split`, and transport (empty AD,
//!   per-direction counters): all identical.
//! - the messages: snow emits raw Noise messages; WhatsApp puts the same bytes in protobuf
//!   fields. `-> e` = `clientHello.ephemeral`; `<- e, ee, s, es, payload` =
//!   `serverHello{ephemeral (32), static (48), payload}`; `-> s, se, payload` =
//!   `clientFinish{static (48), payload}`. The test wraps and unwraps them.
//! - the single difference: WhatsApp's first message has no payload and WhatsApp skips
//!   `MixHash` of that empty payload, while the Noise spec (and snow) always does
//!   `EncryptAndHash(payload)`, i.e. `h = SHA-256(h || "")`. So stock snow cannot complete a
//!   handshake with any WhatsApp peer (the test
//!   `stock_snow_differs_only_by_hashing_the_empty_first_payload` shows it). To interoperate,
//!   snow gets a SHA-256 whose `MixHash(h, "")` is the identity: `WaSha256` below returns `h`
//!   unchanged for exactly the input sequence `[32-byte h, empty]`. In XX that sequence occurs
//!   only for the first message's empty payload (HMAC inputs start with a 64-byte pad, and
//!   every other `MixHash` has non-empty data), so everything else is plain SHA-256.
//!
//! The WhatsApp-only parts (HandshakeMessage protobuf, certificate chain, ClientPayload)
//! ride as snow payloads and are checked by our code on both sides.

use prost::Message;
use rand_core::{TryCryptoRng, TryRng};
use sha2::{Digest, Sha256};
use snow::params::{CipherChoice, DHChoice, HashChoice, NoiseParams};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use wa_engine::noise::{
    CONN_HEADER, ClientHandshake, IK_PROTOCOL_NAME, KeyPair, NoiseError, ServerHandshake,
    ServerHelloOutcome, SymmetricState, Transport, TrustRoot, XX_FALLBACK_PROTOCOL_NAME,
    build_cert_chain, verify_cert_chain,
};
use wa_proto::wa::HandshakeMessage;
use wa_proto::wa::handshake_message::{ClientFinish, ClientHello, ServerHello};

const NOW: u64 = 1_795_219_200; // 2026-11-21T00:00:00Z
const NOISE_PARAMS: &str = "Noise_XX_25519_AESGCM_SHA256";
const MAX_MSG: usize = 65_535;

/// SHA-256 for snow, except that `MixHash(h, "")` leaves `h` unchanged (see module docs).
#[derive(Default)]
struct WaSha256 {
    inner: Sha256,
    input_lens: Vec<usize>,
    first: [u8; 32],
}

impl Hash for WaSha256 {
    fn name(&self) -> &'static str {
        "SHA256"
    }
    fn block_len(&self) -> usize {
        64
    }
    fn hash_len(&self) -> usize {
        32
    }
    fn reset(&mut self) {
        *self = Self::default();
    }
    fn input(&mut self, data: &[u8]) {
        if self.input_lens.is_empty() && data.len() == 32 {
            self.first.copy_from_slice(data);
        }
        self.input_lens.push(data.len());
        self.inner.update(data);
    }
    fn result(&mut self, out: &mut [u8]) {
        let digest: [u8; 32] = if self.input_lens == [32, 0] {
            self.first
        } else {
            std::mem::take(&mut self.inner).finalize().into()
        };
        out[..32].copy_from_slice(&digest);
    }
}

/// snow's default primitives, with [`WaSha256`] for SHA-256.
struct WaResolver;

impl CryptoResolver for WaResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        DefaultResolver.resolve_rng()
    }
    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }
    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        match choice {
            HashChoice::SHA256 => Some(Box::new(WaSha256::default())),
            _ => None,
        }
    }
    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

/// A deterministic RNG for certificate signatures (SHA-256 of a counter).
struct TestRng(u64);

impl TryRng for TestRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(32) {
            self.0 += 1;
            let block: [u8; 32] = Sha256::digest(self.0.to_le_bytes()).into();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        Ok(())
    }
}
impl TryCryptoRng for TestRng {}

struct Keys {
    client_static: KeyPair,
    client_ephemeral: KeyPair,
    server_static: KeyPair,
    server_ephemeral: KeyPair,
    root: KeyPair,
    intermediate: KeyPair,
}

fn keys(seed: u8) -> Keys {
    let k = |i: u8| KeyPair::from_private_bytes(Sha256::digest([seed, i]).into());
    Keys {
        client_static: k(1),
        client_ephemeral: k(2),
        server_static: k(3),
        server_ephemeral: k(4),
        root: k(5),
        intermediate: k(6),
    }
}

impl Keys {
    fn trust_root(&self) -> TrustRoot {
        TrustRoot::new(*self.root.public(), 0)
    }
    fn cert_chain(&self) -> Vec<u8> {
        build_cert_chain(
            &self.root,
            0,
            &self.intermediate,
            self.server_static.public(),
            NOW - 86_400,
            NOW + 86_400,
            &mut TestRng(7),
        )
    }
}

fn snow_initiator(
    resolver: Box<dyn CryptoResolver + Send>,
    local: &KeyPair,
    ephemeral: &KeyPair,
) -> snow::HandshakeState {
    let params: NoiseParams = NOISE_PARAMS.parse().unwrap();
    let builder = snow::Builder::with_resolver(params, resolver);
    let static_private = local.private_bytes();
    let ephemeral_private = ephemeral.private_bytes();
    builder
        .prologue(&CONN_HEADER)
        .unwrap()
        .local_private_key(static_private.as_slice())
        .unwrap()
        .fixed_ephemeral_key_for_testing_only(ephemeral_private.as_slice())
        .build_initiator()
        .unwrap()
}

fn snow_responder(local: &KeyPair, ephemeral: &KeyPair) -> snow::HandshakeState {
    let params: NoiseParams = NOISE_PARAMS.parse().unwrap();
    let static_private = local.private_bytes();
    let ephemeral_private = ephemeral.private_bytes();
    snow::Builder::with_resolver(params, Box::new(WaResolver))
        .prologue(&CONN_HEADER)
        .unwrap()
        .local_private_key(static_private.as_slice())
        .unwrap()
        .fixed_ephemeral_key_for_testing_only(ephemeral_private.as_slice())
        .build_responder()
        .unwrap()
}

/// `snow -> ours` then `ours -> snow` transport messages, several each way.
fn exchange_transport(
    snow_side: &mut snow::TransportState,
    ours: &mut wa_engine::noise::Transport,
) {
    let mut buf = vec![0_u8; MAX_MSG];
    for i in 0..5_usize {
        let plain = vec![i as u8; 1 + i * 100];
        let n = snow_side.write_message(&plain, &mut buf).unwrap();
        let mut out = Vec::new();
        ours.decrypt(&buf[..n], &mut out).unwrap();
        assert_eq!(out, plain, "snow -> ours, frame {i}");

        let mut frame = Vec::new();
        ours.encrypt(&plain, &mut frame).unwrap();
        let n = snow_side.read_message(&frame, &mut buf).unwrap();
        assert_eq!(&buf[..n], plain.as_slice(), "ours -> snow, frame {i}");
    }
    assert_eq!(ours.send_counter(), 5);
    assert_eq!(ours.recv_counter(), 5);
}

#[test]
fn snow_initiator_completes_handshake_with_our_responder() {
    let k = keys(1);
    let mut snow_hs = snow_initiator(Box::new(WaResolver), &k.client_static, &k.client_ephemeral);
    let mut buf = vec![0_u8; MAX_MSG];
    let mut payload = vec![0_u8; MAX_MSG];

    // -> e, wrapped as ClientHello.
    let n = snow_hs.write_message(&[], &mut buf).unwrap();
    assert_eq!(n, 32);
    let client_hello = HandshakeMessage {
        client_hello: Some(ClientHello {
            ephemeral: Some(buf[..n].to_vec()),
            ..ClientHello::default()
        }),
        ..HandshakeMessage::default()
    }
    .encode_to_vec();

    let server = ServerHandshake::new(
        k.server_static.clone(),
        k.server_ephemeral.clone(),
        k.cert_chain(),
    );
    let mut server_hello = Vec::new();
    let awaiting = server
        .handle_client_hello(&client_hello, &mut server_hello)
        .unwrap();

    // <- e, ee, s, es, payload: unwrap ServerHello into the raw Noise message.
    let hello = HandshakeMessage::decode(server_hello.as_slice())
        .unwrap()
        .server_hello
        .unwrap();
    let mut raw = hello.ephemeral.unwrap();
    raw.extend(hello.r#static.unwrap());
    raw.extend(hello.payload.unwrap());
    let n = snow_hs.read_message(&raw, &mut payload).unwrap();
    assert_eq!(snow_hs.get_handshake_hash(), awaiting.handshake_hash());
    let remote_static: [u8; 32] = snow_hs.get_remote_static().unwrap().try_into().unwrap();
    assert_eq!(&remote_static, k.server_static.public());
    let chain = verify_cert_chain(&payload[..n], &k.trust_root(), &remote_static, NOW).unwrap();
    assert_eq!(&chain.leaf.key, k.server_static.public());

    // -> s, se, payload, wrapped as ClientFinish.
    let client_payload = b"serialized ClientPayload".to_vec();
    let n = snow_hs.write_message(&client_payload, &mut buf).unwrap();
    let (static_ct, payload_ct) = buf[..n].split_at(48);
    let client_finish = HandshakeMessage {
        client_finish: Some(ClientFinish {
            r#static: Some(static_ct.to_vec()),
            payload: Some(payload_ct.to_vec()),
        }),
        ..HandshakeMessage::default()
    }
    .encode_to_vec();
    let (done, client) = awaiting.handle_client_finish(&client_finish).unwrap();
    assert_eq!(&client.client_static, k.client_static.public());
    assert_eq!(client.payload, client_payload);
    assert_eq!(snow_hs.get_handshake_hash(), done.handshake_hash());

    let mut ours = done.finish();
    let mut theirs = snow_hs.into_transport_mode().unwrap();
    exchange_transport(&mut theirs, &mut ours);
}

#[test]
fn our_initiator_completes_handshake_with_snow_responder() {
    let k = keys(2);
    let mut snow_hs = snow_responder(&k.server_static, &k.server_ephemeral);
    let mut buf = vec![0_u8; MAX_MSG];
    let mut payload = vec![0_u8; MAX_MSG];

    let client = ClientHandshake::new(
        k.client_static.clone(),
        k.client_ephemeral.clone(),
        k.trust_root(),
    );
    let mut msg = Vec::new();
    client.write_client_hello(&mut msg);
    let ephemeral = HandshakeMessage::decode(msg.as_slice())
        .unwrap()
        .client_hello
        .unwrap()
        .ephemeral
        .unwrap();
    let n = snow_hs.read_message(&ephemeral, &mut payload).unwrap();
    assert_eq!(n, 0);
    assert_eq!(snow_hs.get_handshake_hash(), client.handshake_hash());

    let n = snow_hs.write_message(&k.cert_chain(), &mut buf).unwrap();
    let (e, rest) = buf[..n].split_at(32);
    let (s, cert) = rest.split_at(48);
    let server_hello = HandshakeMessage {
        server_hello: Some(ServerHello {
            ephemeral: Some(e.to_vec()),
            r#static: Some(s.to_vec()),
            payload: Some(cert.to_vec()),
        }),
        ..HandshakeMessage::default()
    }
    .encode_to_vec();
    let verified = client.handle_server_hello(NOW, &server_hello).unwrap();
    assert_eq!(verified.server_static(), k.server_static.public());
    assert_eq!(snow_hs.get_handshake_hash(), verified.handshake_hash());

    let client_payload = vec![0xAB; 300];
    msg.clear();
    let done = verified
        .write_client_finish(&client_payload, &mut msg)
        .unwrap();
    let finish = HandshakeMessage::decode(msg.as_slice())
        .unwrap()
        .client_finish
        .unwrap();
    let mut raw = finish.r#static.unwrap();
    raw.extend(finish.payload.unwrap());
    let n = snow_hs.read_message(&raw, &mut payload).unwrap();
    assert_eq!(&payload[..n], client_payload.as_slice());
    assert_eq!(
        snow_hs.get_remote_static().unwrap(),
        k.client_static.public()
    );
    assert_eq!(snow_hs.get_handshake_hash(), done.handshake_hash());
    assert!(snow_hs.is_handshake_finished());

    let mut ours = done.finish();
    let mut theirs = snow_hs.into_transport_mode().unwrap();
    exchange_transport(&mut theirs, &mut ours);
}

#[test]
fn stock_snow_differs_only_by_hashing_the_empty_first_payload() {
    let k = keys(3);
    // Stock snow as initiator: its first message is the same 32 bytes, but it hashes the
    // empty payload, so our (WhatsApp) ServerHello no longer authenticates for it.
    let mut stock = snow_initiator(
        Box::new(DefaultResolver),
        &k.client_static,
        &k.client_ephemeral,
    );
    let mut buf = vec![0_u8; MAX_MSG];
    let n = stock.write_message(&[], &mut buf).unwrap();
    assert_eq!(&buf[..n], k.client_ephemeral.public());

    let client = ClientHandshake::new(
        k.client_static.clone(),
        k.client_ephemeral.clone(),
        k.trust_root(),
    );
    let expected: [u8; 32] = Sha256::digest(client.handshake_hash()).into();
    assert_eq!(
        stock.get_handshake_hash(),
        expected,
        "stock snow's h = SHA-256(WhatsApp's h || empty payload)"
    );

    let mut hello = Vec::new();
    client.write_client_hello(&mut hello);
    let server = ServerHandshake::new(
        k.server_static.clone(),
        k.server_ephemeral.clone(),
        k.cert_chain(),
    );
    let mut server_hello = Vec::new();
    server
        .handle_client_hello(&hello, &mut server_hello)
        .unwrap();
    let hello = HandshakeMessage::decode(server_hello.as_slice())
        .unwrap()
        .server_hello
        .unwrap();
    let mut raw = hello.ephemeral.unwrap();
    raw.extend(hello.r#static.unwrap());
    raw.extend(hello.payload.unwrap());
    let mut payload = vec![0_u8; MAX_MSG];
    assert!(matches!(
        stock.read_message(&raw, &mut payload),
        Err(snow::Error::Decrypt)
    ));
}

#[test]
fn our_initiator_rejects_snow_server_with_chain_for_another_key() {
    let k = keys(4);
    // The chain certifies some other static key than the one snow uses.
    let other = keys(5);
    let chain = build_cert_chain(
        &k.root,
        0,
        &k.intermediate,
        other.server_static.public(),
        NOW - 10,
        NOW + 10,
        &mut TestRng(1),
    );
    let mut snow_hs = snow_responder(&k.server_static, &k.server_ephemeral);
    let client = ClientHandshake::new(
        k.client_static.clone(),
        k.client_ephemeral.clone(),
        k.trust_root(),
    );
    let mut payload = vec![0_u8; MAX_MSG];
    snow_hs
        .read_message(k.client_ephemeral.public(), &mut payload)
        .unwrap();
    let mut buf = vec![0_u8; MAX_MSG];
    let n = snow_hs.write_message(&chain, &mut buf).unwrap();
    let server_hello = HandshakeMessage {
        server_hello: Some(ServerHello {
            ephemeral: Some(buf[..32].to_vec()),
            r#static: Some(buf[32..80].to_vec()),
            payload: Some(buf[80..n].to_vec()),
        }),
        ..HandshakeMessage::default()
    }
    .encode_to_vec();
    let err = client.handle_server_hello(NOW, &server_hello).unwrap_err();
    assert!(
        matches!(
            err,
            NoiseError::Certificate(wa_engine::noise::CertError::LeafKeyMismatch)
        ),
        "{err:?}"
    );
}

// ---- Noise IK resume and XXfallback on our responder (shared/protocol/01 §6) ----
//
// IK needs no WhatsApp-specific hash: its first message carries the login payload, so there
// is no empty payload to (not) hash and stock snow SHA-256 applies (`WaSha256` is plain
// SHA-256 on these inputs). snow 0.10 rejects the `fallback` modifier
// (`PatternProblem::UnsupportedModifier`), so the XXfallback initiator below is written from
// the Noise specification (§10.2: `Noise_XXfallback`, pre-message `-> e`) with our
// `SymmetricState` primitives, whose every operation the XX tests above check against snow.

/// A snow IK initiator that believes the server's static key is `server_static`.
fn snow_ik_initiator(k: &Keys, server_static: &[u8; 32]) -> snow::HandshakeState {
    let params: NoiseParams = "Noise_IK_25519_AESGCM_SHA256".parse().unwrap();
    let static_private = k.client_static.private_bytes();
    let ephemeral_private = k.client_ephemeral.private_bytes();
    snow::Builder::with_resolver(params, Box::new(WaResolver))
        .prologue(&CONN_HEADER)
        .unwrap()
        .local_private_key(static_private.as_slice())
        .unwrap()
        .remote_public_key(server_static)
        .unwrap()
        .fixed_ephemeral_key_for_testing_only(ephemeral_private.as_slice())
        .build_initiator()
        .unwrap()
}

/// snow's IK message 1 (`e`, encrypted `s`, encrypted payload) as an IK `ClientHello`.
fn ik_client_hello(snow_hs: &mut snow::HandshakeState, login: &[u8]) -> Vec<u8> {
    let mut buf = vec![0_u8; MAX_MSG];
    let n = snow_hs.write_message(login, &mut buf).unwrap();
    HandshakeMessage {
        client_hello: Some(ClientHello {
            ephemeral: Some(buf[..32].to_vec()),
            r#static: Some(buf[32..80].to_vec()),
            payload: Some(buf[80..n].to_vec()),
            ..ClientHello::default()
        }),
        ..HandshakeMessage::default()
    }
    .encode_to_vec()
}

fn server(k: &Keys) -> ServerHandshake {
    ServerHandshake::new(
        k.server_static.clone(),
        k.server_ephemeral.clone(),
        k.cert_chain(),
    )
}

#[test]
fn our_responder_accepts_snow_ik_resume_of_a_known_client() {
    let k = keys(11);
    let mut snow_hs = snow_ik_initiator(&k, k.server_static.public());
    let login = b"serialized ClientPayload (login)".to_vec();
    let hello = ik_client_hello(&mut snow_hs, &login);

    let mut seen = None;
    let mut out = Vec::new();
    let outcome = server(&k)
        .handle_client_hello_resumable(
            &hello,
            |key| {
                seen = Some(*key);
                true
            },
            &mut out,
        )
        .unwrap();
    assert_eq!(seen.as_ref(), Some(k.client_static.public()));
    let ServerHelloOutcome::Resumed(done, finished) = outcome else {
        panic!("IK from a known client must be accepted");
    };
    assert_eq!(&finished.client_static, k.client_static.public());
    assert_eq!(finished.payload, login);

    // <- e, ee, se, payload: no `static` in the ServerHello (that tells the client IK held).
    let reply = HandshakeMessage::decode(out.as_slice())
        .unwrap()
        .server_hello
        .unwrap();
    assert!(reply.r#static.is_none());
    let mut raw = reply.ephemeral.unwrap();
    assert_eq!(raw.len(), 32);
    raw.extend(reply.payload.unwrap());
    let mut payload = vec![0_u8; MAX_MSG];
    let n = snow_hs.read_message(&raw, &mut payload).unwrap();
    assert!(snow_hs.is_handshake_finished());
    assert_eq!(snow_hs.get_handshake_hash(), done.handshake_hash());
    let chain = verify_cert_chain(
        &payload[..n],
        &k.trust_root(),
        k.server_static.public(),
        NOW,
    )
    .unwrap();
    assert_eq!(&chain.leaf.key, k.server_static.public());

    let mut ours = done.finish();
    let mut theirs = snow_hs.into_transport_mode().unwrap();
    exchange_transport(&mut theirs, &mut ours);
}

/// The client side of XXfallback after a refused IK hello, from the Noise spec: restart from
/// the XXfallback name with the same ephemeral as pre-message, then XX's `<- e, ee, s, es`
/// and `-> s, se`. Returns the `ClientFinish` and the client's transport.
fn fallback_initiator(k: &Keys, server_hello: &[u8], login: &[u8]) -> (Vec<u8>, Transport) {
    use x25519_dalek::{PublicKey, StaticSecret};
    let dh = |private: &KeyPair, public: &[u8]| {
        let public: [u8; 32] = public.try_into().unwrap();
        StaticSecret::from(*private.private_bytes())
            .diffie_hellman(&PublicKey::from(public))
            .to_bytes()
    };
    let hello = HandshakeMessage::decode(server_hello)
        .unwrap()
        .server_hello
        .unwrap();
    let re = hello.ephemeral.unwrap();
    let mut st = SymmetricState::with_protocol_name(XX_FALLBACK_PROTOCOL_NAME);
    st.mix_hash(k.client_ephemeral.public());
    st.mix_hash(&re);
    st.mix_key(&dh(&k.client_ephemeral, &re));
    let mut rs = Vec::new();
    st.decrypt_and_hash(&hello.r#static.unwrap(), &mut rs, "server static")
        .unwrap();
    assert_eq!(rs.as_slice(), k.server_static.public());
    st.mix_key(&dh(&k.client_ephemeral, &rs));
    let mut chain = Vec::new();
    st.decrypt_and_hash(&hello.payload.unwrap(), &mut chain, "cert chain")
        .unwrap();
    let rs: [u8; 32] = rs.try_into().unwrap();
    verify_cert_chain(&chain, &k.trust_root(), &rs, NOW).unwrap();
    let mut static_ct = Vec::new();
    st.encrypt_and_hash(k.client_static.public(), &mut static_ct)
        .unwrap();
    st.mix_key(&dh(&k.client_static, &re));
    let mut payload_ct = Vec::new();
    st.encrypt_and_hash(login, &mut payload_ct).unwrap();
    let finish = HandshakeMessage {
        client_finish: Some(ClientFinish {
            r#static: Some(static_ct),
            payload: Some(payload_ct),
        }),
        ..HandshakeMessage::default()
    }
    .encode_to_vec();
    let (to_responder, to_initiator) = st.split();
    (finish, Transport::new(&to_responder, &to_initiator))
}

fn assert_fallback_completes(k: &Keys, hello: &[u8], accept: bool) {
    let mut out = Vec::new();
    let outcome = server(k)
        .handle_client_hello_resumable(hello, |_| accept, &mut out)
        .unwrap();
    let ServerHelloOutcome::AwaitFinish(awaiting) = outcome else {
        panic!("expected an XXfallback reply");
    };
    let reply = HandshakeMessage::decode(out.as_slice())
        .unwrap()
        .server_hello
        .unwrap();
    assert!(
        reply.r#static.is_some(),
        "a fallback ServerHello carries static"
    );

    let login = b"login again after fallback".to_vec();
    let (finish, mut client) = fallback_initiator(k, &out, &login);
    let (done, finished) = awaiting.handle_client_finish(&finish).unwrap();
    assert_eq!(&finished.client_static, k.client_static.public());
    assert_eq!(finished.payload, login);
    let mut server = done.finish();
    let mut frame = Vec::new();
    client.encrypt(b"<iq/>", &mut frame).unwrap();
    let mut plain = Vec::new();
    server.decrypt(&frame, &mut plain).unwrap();
    assert_eq!(plain, b"<iq/>");
    frame.clear();
    plain.clear();
    server.encrypt(b"<success/>", &mut frame).unwrap();
    client.decrypt(&frame, &mut plain).unwrap();
    assert_eq!(plain, b"<success/>");
}

#[test]
fn ik_hello_for_a_stale_server_key_gets_a_real_xx_fallback() {
    let k = keys(12);
    // The client cached another server static (e.g. the server rotated its key).
    let stale = *keys(13).server_static.public();
    let mut snow_hs = snow_ik_initiator(&k, &stale);
    let hello = ik_client_hello(&mut snow_hs, b"login");
    assert_fallback_completes(&k, &hello, true);
}

#[test]
fn ik_hello_from_an_unknown_client_gets_a_real_xx_fallback() {
    let k = keys(14);
    let mut snow_hs = snow_ik_initiator(&k, k.server_static.public());
    let hello = ik_client_hello(&mut snow_hs, b"login");
    assert_fallback_completes(&k, &hello, false);
    // The XX-only entry point never accepts IK either.
    let mut snow_hs = snow_ik_initiator(&k, k.server_static.public());
    let hello = ik_client_hello(&mut snow_hs, b"login");
    let mut out = Vec::new();
    server(&k).handle_client_hello(&hello, &mut out).unwrap();
    let reply = HandshakeMessage::decode(out.as_slice()).unwrap();
    assert!(reply.server_hello.unwrap().r#static.is_some());
}

#[test]
fn xx_fallback_name_is_hashed_and_ik_name_is_padded() {
    let ik = SymmetricState::with_protocol_name(IK_PROTOCOL_NAME);
    let mut padded = SymmetricState::with_protocol_name(b"Noise_IK_25519_AESGCM_SHA256");
    assert_eq!(ik.handshake_hash(), padded.handshake_hash());
    let fb = SymmetricState::with_protocol_name(XX_FALLBACK_PROTOCOL_NAME);
    let mut manual_h: [u8; 32] = Sha256::digest(XX_FALLBACK_PROTOCOL_NAME).into();
    manual_h = Sha256::new()
        .chain_update(manual_h)
        .chain_update(CONN_HEADER)
        .finalize()
        .into();
    assert_eq!(fb.handshake_hash(), manual_h);
    padded.mix_hash(b"x");
    assert_ne!(ik.handshake_hash(), padded.handshake_hash());
}
