//! Our initiator against our responder over the frame layer, with a chain minted by
//! `build_cert_chain` (as wa-sandbox does), and the typed errors for each way it can go wrong.

use prost::Message;
use rand_core::{TryCryptoRng, TryRng};
use sha2::{Digest, Sha256};
use wa_engine::noise::{
    AwaitingClientFinish, CertError, CertRole, ClientHandshake, FrameDecoder, FrameEncoder,
    Handshake, KeyPair, NoiseError, ServerHandshake, Transport, TrustRoot, build_cert_chain,
};
use wa_proto::wa::HandshakeMessage;

const NOW: u64 = 1_795_219_200; // 2026-11-21T00:00:00Z
const DAY: u64 = 86_400;

/// A deterministic RNG (SHA-256 of a counter).
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

struct Setup {
    rng: TestRng,
    client_static: KeyPair,
    server_static: KeyPair,
    root: KeyPair,
    intermediate: KeyPair,
}

impl Setup {
    fn new() -> Self {
        let mut rng = TestRng(0);
        Self {
            client_static: KeyPair::generate(&mut rng),
            server_static: KeyPair::generate(&mut rng),
            root: KeyPair::generate(&mut rng),
            intermediate: KeyPair::generate(&mut rng),
            rng,
        }
    }
    fn trust_root(&self) -> TrustRoot {
        TrustRoot::new(*self.root.public(), 0)
    }
    fn chain_for(&mut self, leaf_key: [u8; 32], not_before: u64, not_after: u64) -> Vec<u8> {
        build_cert_chain(
            &self.root,
            0,
            &self.intermediate,
            &leaf_key,
            not_before,
            not_after,
            &mut self.rng,
        )
    }
    fn client(&mut self, root: TrustRoot) -> ClientHandshake {
        ClientHandshake::new(
            self.client_static.clone(),
            KeyPair::generate(&mut self.rng),
            root,
        )
    }
    fn server(&mut self, chain: Vec<u8>) -> ServerHandshake {
        ServerHandshake::new(
            self.server_static.clone(),
            KeyPair::generate(&mut self.rng),
            chain,
        )
    }
    fn valid_chain(&mut self) -> Vec<u8> {
        let key = *self.server_static.public();
        self.chain_for(key, NOW - DAY, NOW + DAY)
    }
}

/// Runs ClientHello -> ServerHello; returns the client's verdict and the server state.
fn hello_round(
    client: ClientHandshake,
    server: ServerHandshake,
) -> (
    Result<wa_engine::noise::ServerHelloVerified, NoiseError>,
    AwaitingClientFinish,
) {
    let mut hello = Vec::new();
    client.write_client_hello(&mut hello);
    let mut reply = Vec::new();
    let awaiting = server.handle_client_hello(&hello, &mut reply).unwrap();
    (client.handle_server_hello(NOW, &reply), awaiting)
}

#[test]
fn handshake_over_frames_yields_matching_transports() {
    let mut s = Setup::new();
    let chain = s.valid_chain();
    let client = s.client(s.trust_root());
    let server = s.server(chain);

    let (mut c_enc, mut c_dec) = (FrameEncoder::client(), FrameDecoder::client());
    let (mut s_enc, mut s_dec) = (FrameEncoder::server(), FrameDecoder::server());
    let (mut c2s, mut s2c) = (Vec::new(), Vec::new());

    let mut msg = Vec::new();
    client.write_client_hello(&mut msg);
    c_enc.encode(&msg, &mut c2s).unwrap();
    assert_eq!(&c2s[..4], b"WA\x06\x03");

    s_dec.push(&c2s);
    let hello = s_dec.next_frame().unwrap().unwrap();
    msg.clear();
    let awaiting = server.handle_client_hello(&hello, &mut msg).unwrap();
    s_enc.encode(&msg, &mut s2c).unwrap();

    c_dec.push(&s2c);
    let reply = c_dec.next_frame().unwrap().unwrap();
    let verified = client.handle_server_hello(NOW, &reply).unwrap();
    assert_eq!(verified.certificates().leaf.key, *s.server_static.public());
    assert_eq!(
        verified.certificates().intermediate.key,
        *s.intermediate.public()
    );
    msg.clear();
    let client_done = verified
        .write_client_finish(b"client payload", &mut msg)
        .unwrap();
    c2s.clear();
    c_enc.encode(&msg, &mut c2s).unwrap();
    assert_ne!(&c2s[..2], b"WA", "header is sent once");

    s_dec.push(&c2s);
    let finish = s_dec.next_frame().unwrap().unwrap();
    let (server_done, client_info) = awaiting.handle_client_finish(&finish).unwrap();
    assert_eq!(&client_info.client_static, s.client_static.public());
    assert_eq!(client_info.payload, b"client payload");
    assert_eq!(client_done.handshake_hash(), server_done.handshake_hash());
    assert_eq!(server_done.remote_static(), s.client_static.public());

    let mut client_t = client_done.finish();
    let mut server_t = server_done.finish();
    for i in 0..10_usize {
        let plain = vec![i as u8; i * 37];
        let mut frame = Vec::new();
        client_t.encrypt(&plain, &mut frame).unwrap();
        assert_eq!(frame.len(), plain.len() + 16);
        let mut out = Vec::new();
        server_t.decrypt(&frame, &mut out).unwrap();
        assert_eq!(out, plain);

        frame.clear();
        server_t.encrypt(&plain, &mut frame).unwrap();
        let len = client_t.decrypt_in_place(&mut frame).unwrap();
        assert_eq!(&frame[..len], plain.as_slice());
    }
}

#[test]
fn client_rejects_chain_from_untrusted_root() {
    let mut s = Setup::new();
    let chain = s.valid_chain();
    let other_root = TrustRoot::new(*KeyPair::generate(&mut s.rng).public(), 0);
    let client = s.client(other_root);
    let server = s.server(chain);
    let (result, _) = hello_round(client, server);
    assert!(matches!(
        result,
        Err(NoiseError::Certificate(CertError::UntrustedRoot))
    ));
    // The production root rejects the sandbox chain just the same.
    let chain = s.valid_chain();
    let client = s.client(TrustRoot::default());
    let server = s.server(chain);
    assert!(matches!(
        hello_round(client, server).0,
        Err(NoiseError::Certificate(CertError::UntrustedRoot))
    ));
}

#[test]
fn client_rejects_server_whose_static_key_is_not_the_leaf_key() {
    let mut s = Setup::new();
    let stranger = *KeyPair::generate(&mut s.rng).public();
    let chain = s.chain_for(stranger, NOW - DAY, NOW + DAY);
    let client = s.client(s.trust_root());
    let server = s.server(chain);
    assert!(matches!(
        hello_round(client, server).0,
        Err(NoiseError::Certificate(CertError::LeafKeyMismatch))
    ));
}

#[test]
fn client_rejects_expired_and_not_yet_valid_chains() {
    let mut s = Setup::new();
    let key = *s.server_static.public();
    let chain = s.chain_for(key, NOW - 2 * DAY, NOW - DAY);
    let client = s.client(s.trust_root());
    let server = s.server(chain);
    // build_cert_chain gives both certificates one window: the intermediate fails first.
    assert!(matches!(
        hello_round(client, server).0,
        Err(NoiseError::Certificate(CertError::Expired {
            role: CertRole::Intermediate,
            not_after,
            now: NOW,
        })) if not_after == NOW - DAY
    ));
    let chain = s.chain_for(key, NOW + 1, NOW + DAY);
    let client = s.client(s.trust_root());
    let server = s.server(chain);
    assert!(matches!(
        hello_round(client, server).0,
        Err(NoiseError::Certificate(CertError::NotYetValid {
            role: CertRole::Intermediate,
            not_before,
            now: NOW,
        })) if not_before == NOW + 1
    ));
}

#[test]
fn each_side_rejects_the_wrong_handshake_step() {
    let mut s = Setup::new();
    let chain = s.valid_chain();
    let client = s.client(s.trust_root());
    let mut hello = Vec::new();
    client.write_client_hello(&mut hello);
    // A ClientHello where the ServerHello belongs.
    assert!(matches!(
        client.handle_server_hello(NOW, &hello),
        Err(NoiseError::UnexpectedMessage {
            expected: "serverHello"
        })
    ));

    let server = s.server(chain.clone());
    let mut reply = Vec::new();
    let awaiting = server.handle_client_hello(&hello, &mut reply).unwrap();
    // The ClientHello again where the ClientFinish belongs.
    assert!(matches!(
        awaiting.handle_client_finish(&hello),
        Err(NoiseError::UnexpectedMessage {
            expected: "clientFinish"
        })
    ));

    // A ServerHello without its payload.
    let mut msg = HandshakeMessage::decode(reply.as_slice()).unwrap();
    msg.server_hello.as_mut().unwrap().payload = None;
    let client = s.client(s.trust_root());
    assert!(matches!(
        client.handle_server_hello(NOW, &msg.encode_to_vec()),
        Err(NoiseError::MissingField("serverHello.payload"))
    ));
}

fn completed_pair(s: &mut Setup) -> (Handshake, Handshake) {
    let chain = s.valid_chain();
    let client = s.client(s.trust_root());
    let server = s.server(chain);
    let (verified, awaiting) = hello_round(client, server);
    let mut finish = Vec::new();
    let client_done = verified
        .unwrap()
        .write_client_finish(b"p", &mut finish)
        .unwrap();
    let (server_done, _) = awaiting.handle_client_finish(&finish).unwrap();
    (client_done, server_done)
}

#[test]
fn transport_rejects_truncated_reordered_and_foreign_frames() {
    let mut s = Setup::new();
    let (c, sv) = completed_pair(&mut s);
    let (mut client, mut server): (Transport, Transport) = (c.finish(), sv.finish());
    let mut f0 = Vec::new();
    let mut f1 = Vec::new();
    client.encrypt(b"zero", &mut f0).unwrap();
    client.encrypt(b"one", &mut f1).unwrap();
    let mut out = Vec::new();

    // Truncated: shorter than a tag, and cut inside the tag.
    assert!(matches!(
        server.decrypt(&f0[..10], &mut out),
        Err(NoiseError::DecryptFailed(_))
    ));
    let (c, sv) = completed_pair(&mut s);
    let (mut client, mut server) = (c.finish(), sv.finish());
    f0.clear();
    f1.clear();
    client.encrypt(b"zero", &mut f0).unwrap();
    client.encrypt(b"one", &mut f1).unwrap();
    assert!(matches!(
        server.decrypt(&f0[..f0.len() - 1], &mut out),
        Err(NoiseError::DecryptFailed("transport frame"))
    ));

    // Reordered: frame 0 under counter 1 fails.
    assert!(matches!(
        server.decrypt(&f0, &mut out),
        Err(NoiseError::DecryptFailed(_))
    ));
    assert!(out.is_empty());

    // A server frame fed back to the server (wrong direction key).
    let (c, sv) = completed_pair(&mut s);
    let (_client, mut server) = (c.finish(), sv.finish());
    let mut own = Vec::new();
    server.encrypt(b"echo", &mut own).unwrap();
    assert!(matches!(
        server.decrypt(&own, &mut out),
        Err(NoiseError::DecryptFailed(_))
    ));
}

#[test]
fn debug_output_never_shows_private_keys_or_payloads() {
    let mut s = Setup::new();
    let private_hex = hex::encode(s.client_static.private_bytes().as_slice());
    let shown = format!("{:?}", s.client_static);
    assert!(!shown.contains(&private_hex), "{shown}");
    assert!(shown.contains("redacted"));
    assert!(shown.contains(&hex::encode(s.client_static.public())));

    let chain = s.valid_chain();
    let client = s.client(s.trust_root());
    assert!(!format!("{client:?}").contains(&private_hex));
    let server = s.server(chain);
    let (verified, awaiting) = hello_round(client, server);
    let mut finish = Vec::new();
    verified
        .unwrap()
        .write_client_finish(b"very secret payload", &mut finish)
        .unwrap();
    let (done, info) = awaiting.handle_client_finish(&finish).unwrap();
    let mut shown = format!("{info:?} {done:?}");
    shown.push_str(&format!("{:?}", done.finish()));
    assert!(!shown.contains("very secret payload"), "{shown}");
    assert!(
        !shown.contains(&hex::encode(b"very secret payload")),
        "{shown}"
    );
}
