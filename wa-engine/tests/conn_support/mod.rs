//! Shared test support for the connection tests: a scripted server (the noise module's
//! responder + transport), a simulated phone built from the phone-side pairing functions.
//! The server is a `wa_sandbox::sim::Endpoint`, so the test kit wires it to a `Connection`
//! on simulated time; the nodes it receives are its events.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use prost::Message as _;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use wa_engine::binary::{self, Node};
use wa_engine::conn::Event;
use wa_engine::noise::{
    AwaitingClientFinish, FrameDecoder, FrameEncoder, KeyPair, ServerHandshake, Transport,
    TrustRoot, build_cert_chain,
};
use wa_engine::pair::{self, AdvSecret, DeviceIdentityParams, QrCode};
use wa_engine::store::Credentials;
use wa_engine::{Jid, Store};
use wa_proto::wa::ClientPayload;
use wa_sandbox::sim::Endpoint;

pub const UNIX_START: u64 = 1_700_000_000;

pub fn server_jid() -> Jid {
    "@s.whatsapp.net".parse().expect("server jid")
}

/// The scripted server of one connection: responder handshake, then transport frames.
pub struct Server {
    pub decoder: FrameDecoder,
    pub encoder: FrameEncoder,
    pub handshake: Option<ServerHandshake>,
    pub awaiting: Option<AwaitingClientFinish>,
    pub transport: Option<Transport>,
    pub payload: Option<ClientPayload>,
    pub client_static: Option<[u8; 32]>,
    /// Bytes to deliver to the client.
    pub out: Vec<u8>,
    /// Nodes received from the client and not yet taken (the [`Endpoint`] events).
    pub inbox: VecDeque<Node>,
}

pub struct Sandbox {
    pub rng: StdRng,
    pub root: KeyPair,
    pub intermediate: KeyPair,
    pub static_key: KeyPair,
}

impl Sandbox {
    pub fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let root = KeyPair::generate(&mut rng);
        let intermediate = KeyPair::generate(&mut rng);
        let static_key = KeyPair::generate(&mut rng);
        Self {
            rng,
            root,
            intermediate,
            static_key,
        }
    }

    pub fn trust_root(&self) -> TrustRoot {
        TrustRoot::new(*self.root.public(), 0)
    }

    pub fn accept(&mut self) -> Server {
        let chain = build_cert_chain(
            &self.root,
            0,
            &self.intermediate,
            self.static_key.public(),
            UNIX_START - 3600,
            4_000_000_000,
            &mut self.rng,
        );
        let ephemeral = KeyPair::generate(&mut self.rng);
        Server {
            decoder: FrameDecoder::server(),
            encoder: FrameEncoder::server(),
            handshake: Some(ServerHandshake::new(
                self.static_key.clone(),
                ephemeral,
                chain,
            )),
            awaiting: None,
            transport: None,
            payload: None,
            client_static: None,
            out: Vec::new(),
            inbox: VecDeque::new(),
        }
    }
}

impl Server {
    /// Take bytes from the client; returns the nodes it sent after the handshake.
    pub fn receive(&mut self, bytes: &[u8]) -> Vec<Node> {
        self.decoder.push(bytes);
        let mut nodes = Vec::new();
        while let Some(frame) = self.decoder.next_frame().expect("client frame") {
            if let Some(hs) = self.handshake.take() {
                let mut hello = Vec::new();
                self.awaiting = Some(
                    hs.handle_client_hello(&frame, &mut hello)
                        .expect("client hello"),
                );
                self.encoder.encode(&hello, &mut self.out).expect("frame");
            } else if let Some(aw) = self.awaiting.take() {
                let (handshake, finished) = aw.handle_client_finish(&frame).expect("client finish");
                self.payload =
                    Some(ClientPayload::decode(finished.payload.as_slice()).expect("payload"));
                self.client_static = Some(finished.client_static);
                self.transport = Some(handshake.finish());
            } else {
                let transport = self.transport.as_mut().expect("transport");
                let mut plain = Vec::new();
                transport
                    .decrypt(&frame, &mut plain)
                    .expect("decrypt client frame");
                nodes.push(binary::decode(&plain).expect("decode client node"));
            }
        }
        nodes
    }

    pub fn send(&mut self, node: &Node) {
        let plain = binary::encode(node);
        let mut ct = Vec::new();
        self.transport
            .as_mut()
            .expect("transport")
            .encrypt(&plain, &mut ct)
            .expect("encrypt");
        self.encoder.encode(&ct, &mut self.out).expect("frame");
    }

    pub fn take_out(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
}

/// The scripted server on the test kit's wire: no timers, never closes; every node it
/// receives is an event.
impl Endpoint for Server {
    type Event = Node;

    fn handle_input(&mut self, _now: Instant, data: &[u8]) {
        let nodes = self.receive(data);
        self.inbox.extend(nodes);
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| Bytes::from(self.take_out()))
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn poll_event(&mut self) -> Option<Node> {
        self.inbox.pop_front()
    }

    fn is_closed(&self) -> bool {
        false
    }
}

pub fn pair_device(refs: &[&str]) -> Node {
    Node::new("iq")
        .attr("from", server_jid())
        .attr("type", "set")
        .attr("id", "257131597")
        .attr("xmlns", "md")
        .with_children([Node::new("pair-device").with_children(
            refs.iter()
                .map(|r| Node::new("ref").with_bytes(r.as_bytes().to_vec())),
        )])
}

pub const REFS: [&str; 6] = [
    "2@ref-one",
    "2@ref-two",
    "2@ref-three",
    "2@ref-four",
    "2@ref-five",
    "2@ref-six",
];

pub struct Phone {
    pub identity: KeyPair,
    pub jid: Jid,
    pub lid: Jid,
}

impl Phone {
    pub fn new(rng: &mut StdRng) -> Self {
        Self {
            identity: KeyPair::generate(rng),
            jid: "15551234567:7@s.whatsapp.net".parse().expect("jid"),
            lid: "100000000000001:7@lid".parse().expect("lid"),
        }
    }

    /// Scan `qr` and build the pair-success the server sends.
    pub fn pair_success(&self, rng: &mut StdRng, qr: &str) -> (Node, Vec<u8>, [u8; 32]) {
        let qr = QrCode::parse(qr).expect("client QR parses");
        self.pair_success_for(rng, &qr.identity_pub, &qr.adv_secret)
    }

    pub fn pair_success_for(
        &self,
        rng: &mut StdRng,
        companion_identity: &[u8; 32],
        adv_secret: &AdvSecret,
    ) -> (Node, Vec<u8>, [u8; 32]) {
        let built = pair::build_device_identity(
            rng,
            &self.identity.private_bytes(),
            companion_identity,
            adv_secret,
            &DeviceIdentityParams {
                raw_id: 42,
                timestamp: UNIX_START,
                key_index: 3,
                hosted: false,
            },
        );
        let node = pair::build_pair_success(
            "2204545668",
            UNIX_START + 10,
            &built.device_identity_hmac,
            "android",
            &self.jid,
            Some(&self.lid),
            None,
        );
        (node, built.details, *companion_identity)
    }
}

pub fn qr_codes(events: &[Event]) -> Vec<(String, Duration)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Qr { code, expires_in } => Some((code.clone(), *expires_in)),
            _ => None,
        })
        .collect()
}

pub fn stored(store: &dyn Store) -> Credentials {
    store
        .credentials()
        .expect("store readable")
        .expect("credentials stored")
}
