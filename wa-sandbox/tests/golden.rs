//! Byte-level checks of what the sandbox emits, against vectors produced by implementations
//! nobody on this project wrote (shared/vectors/): the Noise responder against a Baileys
//! handshake transcript with fixed keys, and the server stanzas (pair-device, pair-success,
//! success, stream error 515) against captured / reference encodings.
//!
//! Sessions are driven sans-IO (no tokio, no sockets), with wa-engine's noise initiator and
//! codec on the client side; full pairings and logins run on the test kit
//! (`wa_sandbox::sim`).

mod support;

use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::Bytes;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use serde_json::Value as Json;
use support::{ClientCore, Creds, iq_ack, login_payload, registration_payload};
use wa_engine::binary::{self, Content, Node, Value};
use wa_engine::noise::{KeyPair, Transport};
use wa_engine::pair::{PairSuccess, QrCode, verify_pair_success};
use wa_sandbox::sim::{Endpoint, Session, Sim};
use wa_sandbox::{Clock, Router, RouterConfig, ServerKeys, ServerSession};

const PHONE: &str = "15551234567";

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors")
}

fn load(rel: &str) -> Json {
    let path = vectors().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "vector file {} is missing ({e}); shared/vectors must sit beside the repository",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn hex_of(v: &Json, ptr: &str) -> Vec<u8> {
    let s = v
        .pointer(ptr)
        .and_then(Json::as_str)
        .unwrap_or_else(|| panic!("vector field {ptr} missing"));
    hex::decode(s).unwrap_or_else(|e| panic!("vector field {ptr} is not hex: {e}"))
}

fn key_of(v: &Json, ptr: &str) -> [u8; 32] {
    hex_of(v, ptr)
        .try_into()
        .unwrap_or_else(|_| panic!("{ptr} is not 32 bytes"))
}

fn stanza(id: &str) -> Json {
    let all = load("stanzas/stanzas.json");
    all["stanzas"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["id"] == id))
        .cloned()
        .unwrap_or_else(|| panic!("stanza {id} missing from stanzas.json"))
}

// ---------------------------------------------------------------------------------------------
// Noise responder against the Baileys transcript (fixed keys on both sides).

fn baileys_router(t: &Json) -> Router {
    let mut config = RouterConfig::default();
    config.seed = Some(1);
    config.server_keys = Some(ServerKeys::new(
        key_of(t, "/keys/serverStatic/private"),
        key_of(t, "/keys/labRoot/public"),
        hex_of(t, "/reference/parts/cert_chain_plain"),
    ));
    Router::new(config)
}

fn drain(session: &mut ServerSession) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| session.poll_transmit().map(|b| b.to_vec())).collect()
}

#[test]
fn server_hello_matches_the_baileys_transcript_byte_for_byte() {
    let t = load("noise/baileys_handshake.json");
    let now = Instant::now();
    let mut session = ServerSession::with_ephemeral(
        baileys_router(&t),
        now,
        key_of(&t, "/keys/serverEphemeral/private"),
    );
    session.handle_input(now, &hex_of(&t, "/reference/frames/c2s_1_client_hello"));
    let out = drain(&mut session);
    assert_eq!(out.len(), 1, "one ServerHello frame");
    assert_eq!(
        hex::encode(&out[0]),
        hex::encode(hex_of(&t, "/reference/frames/s2c_1_server_hello"))
    );

    // ClientFinish carries Baileys' registration payload: the next frame is the pair-device
    // IQ, encrypted with the transcript's server->client key at counter 0. It waits for the
    // first-stanza pause (Baileys 6.7.24 drops a stanza that comes too soon).
    session.handle_input(now, &hex_of(&t, "/reference/frames/c2s_2_client_finish"));
    assert!(drain(&mut session).is_empty(), "nothing before the pause");
    let due = session
        .poll_timeout()
        .expect("a timer for the first stanza");
    assert_eq!(due, now + RouterConfig::default().first_stanza_delay);
    session.handle_timeout(due);
    let out = drain(&mut session);
    assert_eq!(out.len(), 1, "the pair-device IQ");
    let frame = &out[0];
    assert_eq!(
        usize::from(frame[0]) << 16 | usize::from(frame[1]) << 8 | usize::from(frame[2]),
        frame.len() - 3
    );
    let mut client = Transport::new(
        &key_of(&t, "/reference/transport_keys/client_write_server_read"),
        &key_of(&t, "/reference/transport_keys/server_write_client_read"),
    );
    let mut plain = Vec::new();
    client
        .decrypt(&frame[3..], &mut plain)
        .expect("decrypts with the transcript's key");
    let node = binary::decode(&plain).expect("decodes");
    assert!(node.child_by_tag("pair-device").is_some(), "{node}");
    assert!(!session.is_closed());
}

#[test]
fn accepts_the_edge_routing_pre_intro() {
    let t = load("noise/baileys_handshake.json");
    let now = Instant::now();
    let mut session = ServerSession::with_ephemeral(
        baileys_router(&t),
        now,
        key_of(&t, "/keys/serverEphemeral/private"),
    );
    let hello = hex_of(&t, "/with_routing_info/c2s_1_client_hello");
    // Any split: one byte at a time.
    for b in &hello {
        session.handle_input(now, std::slice::from_ref(b));
    }
    let out = drain(&mut session);
    assert_eq!(
        out,
        vec![hex_of(&t, "/reference/frames/s2c_1_server_hello")]
    );
}

#[test]
fn closes_on_a_bad_connection_header() {
    let t = load("noise/baileys_handshake.json");
    let now = Instant::now();
    let mut session = ServerSession::new(baileys_router(&t), now);
    let mut hello = hex_of(&t, "/reference/frames/c2s_1_client_hello");
    hello[2] = 5; // WA 05 03: wrong magic
    session.handle_input(now, &hello);
    assert!(drain(&mut session).is_empty());
    assert!(session.is_closed());
}

// ---------------------------------------------------------------------------------------------
// Stanzas, through a full sans-IO pairing and login.

/// The scripted client on the test kit's wire: no timers, never closes on its own.
struct Client(ClientCore);

impl Endpoint for Client {
    type Event = ();

    fn handle_input(&mut self, _now: Instant, data: &[u8]) {
        self.0.feed(data).expect("client accepts server bytes");
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_transmit(&mut self) -> Option<Bytes> {
        self.0.outbox.pop_front().map(Bytes::from)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn is_closed(&self) -> bool {
        false
    }
}

/// A client core and a session wired back to back by the test kit, simulated time.
struct Pair {
    sim: Sim<Client, Session>,
}

impl Pair {
    fn new(router: &Router, creds: &Creds, payload: Vec<u8>, seed: u64) -> Self {
        let now = Instant::now();
        let mut rng = StdRng::seed_from_u64(seed);
        let client = ClientCore::new(
            &creds.noise,
            KeyPair::generate(&mut rng),
            router.trust_root_key(),
            payload,
        );
        let mut sim = Sim::new(now, seed);
        sim.connect(Client(client), Session::new(router.clone(), now));
        Self { sim }
    }

    fn session(&self) -> &ServerSession {
        self.sim.server()
    }

    /// Moves bytes both ways until both sides are quiet.
    fn drive(&mut self) {
        self.sim.drive();
    }

    fn send(&mut self, node: &Node) {
        self.sim.client_mut().0.send(node).expect("open");
        self.drive();
    }

    /// The next stanza and its plaintext (flags byte + node).
    fn next(&mut self) -> (Node, Vec<u8>) {
        let client = &mut self.sim.client_mut().0;
        let node = client.inbox.pop_front().expect("a stanza from the server");
        let raw = client.raw.pop_front().expect("raw plaintext");
        (node, raw)
    }
}

fn fixed_router() -> Router {
    let mut config = RouterConfig::default();
    config.seed = Some(3);
    config.clock = Clock::Fixed(1_752_021_890);
    config.first_stanza_delay = std::time::Duration::ZERO;
    // This fixture drives the session without timers: the 515 goes out at once.
    config.restart_delay = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    config.restart_close_grace = std::time::Duration::ZERO;
    Router::new(config)
}

fn set_attr(node: &mut Node, key: &'static str, value: impl Into<Value>) {
    node.attrs.insert(key, value);
}

fn encoded(node: &Node) -> String {
    hex::encode(binary::encode(node))
}

/// Pairs a companion by QR in-process; returns its creds, device id and the plaintexts of
/// pair-device, pair-success and the final stream error.
fn pair(router: &Router) -> (Creds, u16, [(Node, Vec<u8>); 3]) {
    let phone = router.create_account(PHONE).expect("account");
    let creds = Creds::seeded(31);
    let mut p = Pair::new(router, &creds, registration_payload(&creds), 1);
    p.drive();
    let pair_device = p.next();
    let id = pair_device.0.get_attr_str("id").expect("id").to_owned();
    p.send(&iq_ack(&id));
    let first_ref = pair_device
        .0
        .child_path(&["pair-device", "ref"])
        .and_then(Node::content_bytes)
        .expect("ref");
    let qr = QrCode {
        pairing_ref: String::from_utf8(first_ref.to_vec()).expect("ASCII ref"),
        noise_pub: *creds.noise.public(),
        identity_pub: *creds.identity.public(),
        adv_secret: wa_engine::pair::AdvSecret::from_bytes(*creds.adv_secret.as_bytes()),
        client_type: None,
    };
    let link = phone.scan(&qr.encode()).expect("scan");
    p.drive();
    let pair_success = p.next();
    let ps = PairSuccess::parse(&pair_success.0).expect("pair-success parses");
    let verified = verify_pair_success(
        &mut StdRng::seed_from_u64(2),
        &ps,
        &creds.identity.private_bytes(),
        creds.identity.public(),
        &creds.adv_secret,
    )
    .expect("the phone's device identity verifies on the companion side");
    p.send(&verified.reply());
    let end = p.next();
    assert!(p.session().is_closed());
    (creds, link.device, [pair_device, pair_success, end])
}

#[test]
fn pair_device_iq_has_the_captured_shape() {
    let router = fixed_router();
    let (_, _, [(mut node, _), _, _]) = pair(&router);
    let vector = stanza("pair-device");
    // Same attributes in the same order and encoding, same children: substitute the
    // vector's id and ref and compare the bytes.
    set_attr(&mut node, "id", "257131597");
    let vref = hex_of(&vector, "/node/content/0/content/0/content/hex");
    if let Content::Nodes(children) = &mut node.content {
        let pd = &mut children[0];
        if let Content::Nodes(refs) = &mut pd.content {
            assert_eq!(refs.len(), 6);
            for r in refs.iter() {
                assert!(
                    matches!(&r.content, Content::Bytes(b) if b.len() == 102 && b.starts_with(b"2@"))
                );
            }
            refs.truncate(1);
            refs[0].content = Content::Bytes(vref);
        }
    }
    assert_eq!(encoded(&node), vector["hex"].as_str().expect("hex"));
}

#[test]
fn pair_success_iq_has_the_reference_shape() {
    let router = fixed_router();
    let (_, device, [_, (mut node, _), _]) = pair(&router);
    assert_eq!(node.get_attr_str("t"), Some("1752021890"));
    let vector = load("pairing/pair_success.json");
    let v = &vector["pair_success"]["node"];
    set_attr(&mut node, "id", "2204545668");
    set_attr(&mut node, "t", "1700000010");
    let identity = hex_of(v, "/content/0/content/0/content/hex");
    if let Content::Nodes(top) = &mut node.content
        && let Content::Nodes(children) = &mut top[0].content
    {
        for child in children.iter_mut() {
            match child.tag.as_ref() {
                "device-identity" => child.content = Content::Bytes(identity.clone()),
                "device" => {
                    assert_eq!(child.get_attr_jid("jid").map(|j| j.device()), Some(device));
                    child
                        .attrs
                        .insert("jid", wa_engine::Jid::pn("15551234567").with_device(7));
                    child
                        .attrs
                        .insert("lid", wa_engine::Jid::lid("100000000000001").with_device(7));
                }
                _ => {}
            }
        }
    }
    assert_eq!(
        encoded(&node),
        vector["pair_success"]["hex"].as_str().expect("hex")
    );
}

#[test]
fn restart_required_is_the_exact_515_frame() {
    let router = fixed_router();
    let (_, _, [_, _, (node, raw)]) = pair(&router);
    assert_eq!(node.tag, "stream:error");
    // shared/protocol/02 §10 example 4.
    assert_eq!(hex::encode(raw), "00f8039d70ff82515f");
}

#[test]
fn success_has_the_captured_shape() {
    let router = fixed_router();
    let (creds, device, _) = pair(&router);
    let mut p = Pair::new(
        &router,
        &creds,
        login_payload(PHONE.parse().expect("digits"), device, true),
        4,
    );
    p.drive();
    let (mut node, _) = p.next();
    assert_eq!(node.tag, "success", "{node}");
    assert_eq!(node.get_attr_str("t"), Some("1752021890"));
    let vector = stanza("success-binary-capture");
    let attrs = vector["node"]["attrs"].as_array().expect("attrs");
    let get = |k: &str| {
        attrs
            .iter()
            .find(|a| a[0] == k)
            .and_then(|a| a[1].as_str())
            .expect("attr")
            .to_owned()
    };
    set_attr(&mut node, "t", get("t"));
    set_attr(&mut node, "location", get("location"));
    set_attr(
        &mut node,
        "lid",
        wa_engine::Jid::lid("100000000000001").with_device(42),
    );
    set_attr(&mut node, "creation", get("creation"));
    set_attr(
        &mut node,
        "companion_enc_static",
        get("companion_enc_static"),
    );
    assert_eq!(encoded(&node), vector["hex"].as_str().expect("hex"));
}

#[test]
fn failure_and_device_removed_have_the_documented_shapes() {
    let router = fixed_router();
    let (creds, device, _) = pair(&router);
    // Unknown device: <failure reason="401"/>.
    let mut p = Pair::new(
        &router,
        &creds,
        login_payload(PHONE.parse().expect("digits"), device + 1, true),
        5,
    );
    p.drive();
    let (node, raw) = p.next();
    assert_eq!(node, Node::new("failure").attr("reason", "401"));
    assert_eq!(
        raw,
        binary::encode(&Node::new("failure").attr("reason", "401"))
    );
    assert!(p.session().is_closed());

    // Device removal: <stream:error code="401"><conflict type="device_removed"/></stream:error>.
    let mut p = Pair::new(
        &router,
        &creds,
        login_payload(PHONE.parse().expect("digits"), device, true),
        6,
    );
    p.drive();
    let (success, _) = p.next();
    assert_eq!(success.tag, "success");
    router
        .phone(PHONE)
        .expect("phone")
        .remove_device(device)
        .expect("removed");
    p.drive();
    let (node, _) = p.next();
    assert_eq!(
        node,
        Node::new("stream:error")
            .attr("code", "401")
            .with_children([Node::new("conflict").attr("type", "device_removed")])
    );
    assert!(p.session().is_closed());
}
