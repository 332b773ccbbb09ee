//! A minimal scripted WhatsApp client for sandbox tests, built only from wa-engine's public
//! pieces (noise initiator, frames, transport, binary codec, pair functions): a sans-IO core
//! ([`ClientCore`]) usable without tokio, and a WebSocket wrapper ([`WsClient`]).
//!
//! Shape after h2's `tests/h2-support/src/mock.rs`: a peer that sends and expects frames.

#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod appsync;
pub mod baileys;
pub mod device;
pub mod engine;
pub mod interop;
pub mod peer;
pub mod rich;
pub mod whatsmeow;

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use prost::Message as _;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use tokio_tungstenite::tungstenite::Message;
use wa_engine::binary::{self, Node};
use wa_engine::noise::{
    ClientHandshake, FrameDecoder, FrameEncoder, KeyPair, Transport, TrustRoot,
};
use wa_engine::pair::AdvSecret;
use wa_engine::signal::xeddsa;
use wa_proto::wa::client_payload::{DevicePairingRegistrationData, UserAgent, WebInfo, user_agent};
use wa_proto::wa::{ClientPayload, DeviceProps};

/// How long a test waits for one expected stanza.
pub const STEP: Duration = Duration::from_secs(10);

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A companion's long-lived keys (03 §1).
pub struct Creds {
    pub noise: KeyPair,
    pub identity: KeyPair,
    pub signed_prekey: KeyPair,
    pub signed_prekey_signature: [u8; 64],
    pub registration_id: u32,
    pub adv_secret: AdvSecret,
}

impl Creds {
    pub fn generate(rng: &mut StdRng) -> Self {
        use rand::Rng as _;
        let noise = KeyPair::generate(rng);
        let identity = KeyPair::generate(rng);
        let signed_prekey = KeyPair::generate(rng);
        let mut msg = vec![5u8];
        msg.extend_from_slice(signed_prekey.public());
        let signed_prekey_signature = xeddsa::sign_with_rng(&identity.private_bytes(), &msg, rng);
        let registration_id = rng.next_u32() & 0x3fff;
        let adv_secret = AdvSecret::generate(rng);
        Self {
            noise,
            identity,
            signed_prekey,
            signed_prekey_signature,
            registration_id,
            adv_secret,
        }
    }

    pub fn seeded(seed: u64) -> Self {
        Self::generate(&mut StdRng::seed_from_u64(seed))
    }
}

fn user_agent() -> UserAgent {
    UserAgent {
        platform: Some(user_agent::Platform::Web as i32),
        app_version: Some(user_agent::AppVersion {
            primary: Some(2),
            secondary: Some(3000),
            tertiary: Some(1_035_194_821),
            ..Default::default()
        }),
        mcc: Some("000".into()),
        mnc: Some("000".into()),
        os_version: Some("0.1".into()),
        device: Some("Desktop".into()),
        os_build_number: Some("0.1".into()),
        locale_language_iso6391: Some("en".into()),
        locale_country_iso31661_alpha2: Some("US".into()),
        ..Default::default()
    }
}

/// A registration ClientPayload (03 §2.1, §2.3).
pub fn registration_payload(creds: &Creds) -> Vec<u8> {
    let props = DeviceProps {
        os: Some("sandbox-test".into()),
        ..Default::default()
    };
    ClientPayload {
        passive: Some(false),
        user_agent: Some(user_agent()),
        web_info: Some(WebInfo {
            web_sub_platform: Some(0),
            ..Default::default()
        }),
        connect_type: Some(1),
        connect_reason: Some(1),
        device_pairing_data: Some(DevicePairingRegistrationData {
            e_regid: Some(creds.registration_id.to_be_bytes().to_vec()),
            e_keytype: Some(vec![5]),
            e_ident: Some(creds.identity.public().to_vec()),
            e_skey_id: Some(vec![0, 0, 1]),
            e_skey_val: Some(creds.signed_prekey.public().to_vec()),
            e_skey_sig: Some(creds.signed_prekey_signature.to_vec()),
            build_hash: Some(vec![0; 16]),
            device_props: Some(props.encode_to_vec()),
        }),
        pull: Some(false),
        ..Default::default()
    }
    .encode_to_vec()
}

/// A login ClientPayload (03 §2.1).
pub fn login_payload(phone: u64, device: u16, passive: bool) -> Vec<u8> {
    ClientPayload {
        username: Some(phone),
        device: Some(u32::from(device)),
        passive: Some(passive),
        user_agent: Some(user_agent()),
        web_info: Some(WebInfo {
            web_sub_platform: Some(0),
            ..Default::default()
        }),
        connect_type: Some(1),
        connect_reason: Some(1),
        pull: Some(true),
        ..Default::default()
    }
    .encode_to_vec()
}

/// The sans-IO client: handshake as initiator, then nodes over the transport cipher.
pub struct ClientCore {
    decoder: FrameDecoder,
    encoder: FrameEncoder,
    state: CoreState,
    payload: Vec<u8>,
    static_key: KeyPair,
    /// Bytes to write to the socket (one WS message each).
    pub outbox: VecDeque<Vec<u8>>,
    /// Decoded stanzas received.
    pub inbox: VecDeque<Node>,
    /// The decrypted plaintext of every transport frame received (flags byte + node).
    pub raw: VecDeque<Vec<u8>>,
    /// The server's static key once the handshake verified it.
    pub server_static: Option<[u8; 32]>,
}

enum CoreState {
    Hello(Option<Box<ClientHandshake>>),
    Open(Box<Transport>),
    Failed,
}

impl ClientCore {
    /// Starts a handshake: the ClientHello (with the `WA 06 03` header) is queued in `outbox`.
    pub fn new(static_key: &KeyPair, ephemeral: KeyPair, root: [u8; 32], payload: Vec<u8>) -> Self {
        Self::with_encoder(static_key, ephemeral, root, payload, FrameEncoder::client())
    }

    pub fn with_encoder(
        static_key: &KeyPair,
        ephemeral: KeyPair,
        root: [u8; 32],
        payload: Vec<u8>,
        mut encoder: FrameEncoder,
    ) -> Self {
        let hs = ClientHandshake::new(static_key.clone(), ephemeral, TrustRoot::new(root, 0));
        let mut hello = Vec::new();
        hs.write_client_hello(&mut hello);
        let mut framed = Vec::new();
        encoder.encode(&hello, &mut framed).expect("small frame");
        Self {
            decoder: FrameDecoder::client(),
            encoder,
            state: CoreState::Hello(Some(Box::new(hs))),
            payload,
            static_key: static_key.clone(),
            outbox: VecDeque::from([framed]),
            inbox: VecDeque::new(),
            raw: VecDeque::new(),
            server_static: None,
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self.state, CoreState::Open(_))
    }

    /// Feeds bytes from the server.
    pub fn feed(&mut self, data: &[u8]) -> anyhow::Result<()> {
        self.decoder.push(data);
        while let Some(frame) = self.decoder.next_frame()? {
            match std::mem::replace(&mut self.state, CoreState::Failed) {
                CoreState::Hello(Some(hs)) => {
                    let verified = hs
                        .handle_server_hello(unix_now(), &frame)
                        .context("server hello")?;
                    self.server_static = Some(*verified.server_static());
                    let mut finish = Vec::new();
                    let done = verified
                        .write_client_finish(&self.payload, &mut finish)
                        .context("client finish")?;
                    let mut framed = Vec::new();
                    self.encoder.encode(&finish, &mut framed)?;
                    self.outbox.push_back(framed);
                    self.state = CoreState::Open(Box::new(done.finish()));
                }
                CoreState::Open(mut transport) => {
                    let mut plain = Vec::new();
                    transport.decrypt(&frame, &mut plain).context("decrypt")?;
                    self.state = CoreState::Open(transport);
                    self.inbox
                        .push_back(binary::decode(&plain).context("decode")?);
                    self.raw.push_back(plain);
                }
                CoreState::Hello(None) | CoreState::Failed => bail!("client core failed"),
            }
        }
        Ok(())
    }

    /// Encrypts a stanza into `outbox`.
    pub fn send(&mut self, node: &Node) -> anyhow::Result<()> {
        let CoreState::Open(transport) = &mut self.state else {
            bail!("not open");
        };
        let plain = binary::encode(node);
        let mut ct = Vec::new();
        transport.encrypt(&plain, &mut ct)?;
        let mut framed = Vec::new();
        self.encoder.encode(&ct, &mut framed)?;
        self.outbox.push_back(framed);
        Ok(())
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A scripted client over a real WebSocket.
pub struct WsClient {
    ws: Ws,
    pub core: ClientCore,
}

impl WsClient {
    /// Connects and completes the Noise handshake (does not wait for the first stanza).
    pub async fn connect(
        url: &str,
        root: [u8; 32],
        noise: &KeyPair,
        payload: Vec<u8>,
    ) -> anyhow::Result<Self> {
        let mut rng = StdRng::seed_from_u64(rand::random());
        let core = ClientCore::new(noise, KeyPair::generate(&mut rng), root, payload);
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .context("ws connect")?;
        let mut client = Self { ws, core };
        client.flush().await?;
        while !client.core.is_open() {
            client.read_once().await?;
        }
        client.flush().await?;
        Ok(client)
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        while let Some(bytes) = self.core.outbox.pop_front() {
            self.ws.send(Message::Binary(bytes.into())).await?;
        }
        Ok(())
    }

    async fn read_once(&mut self) -> anyhow::Result<()> {
        let msg = tokio::time::timeout(STEP, self.ws.next())
            .await
            .map_err(|_| anyhow!("timed out waiting for the server"))?;
        match msg {
            Some(Ok(Message::Binary(data))) => self.core.feed(&data),
            Some(Ok(Message::Close(_))) | None => bail!("socket closed"),
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(e.into()),
        }
    }

    pub async fn send(&mut self, node: &Node) -> anyhow::Result<()> {
        self.core.send(node)?;
        self.flush().await
    }

    /// The next stanza from the server.
    pub async fn recv(&mut self) -> anyhow::Result<Node> {
        loop {
            if let Some(node) = self.core.inbox.pop_front() {
                return Ok(node);
            }
            self.read_once().await?;
        }
    }

    /// Skips stanzas until one matches.
    pub async fn recv_until(
        &mut self,
        mut pred: impl FnMut(&Node) -> bool,
    ) -> anyhow::Result<Node> {
        loop {
            let node = self.recv().await?;
            if pred(&node) {
                return Ok(node);
            }
        }
    }

    /// Sends an IQ and returns the reply with the same id (skipping other stanzas).
    pub async fn iq(&mut self, node: Node) -> anyhow::Result<Node> {
        let id = node.get_attr_str("id").context("iq id")?.to_owned();
        self.send(&node).await?;
        self.recv_until(|n| n.tag == "iq" && n.get_attr_str("id") == Some(id.as_str()))
            .await
    }

    /// Waits until the server closes the socket; returns stanzas received before that and
    /// whether a WebSocket close frame arrived (vs. the TCP stream just ending).
    pub async fn closed(&mut self) -> anyhow::Result<(Vec<Node>, bool)> {
        let mut got: Vec<Node> = self.core.inbox.drain(..).collect();
        loop {
            let msg = tokio::time::timeout(STEP, self.ws.next())
                .await
                .map_err(|_| anyhow!("socket stayed open"))?;
            match msg {
                Some(Ok(Message::Binary(data))) => {
                    self.core.feed(&data)?;
                    got.extend(self.core.inbox.drain(..));
                }
                Some(Ok(Message::Close(_))) => return Ok((got, true)),
                None | Some(Err(_)) => return Ok((got, false)),
                Some(Ok(_)) => {}
            }
        }
    }
}

/// `<iq id to="s.whatsapp.net" type xmlns>children</iq>` as a client sends it.
pub fn client_iq(id: &str, kind: &'static str, xmlns: &'static str, children: Vec<Node>) -> Node {
    let iq = Node::new("iq")
        .attr("id", id.to_owned())
        .attr("to", wa_engine::Jid::server_jid(wa_engine::Server::Pn))
        .attr("type", kind)
        .attr("xmlns", xmlns);
    if children.is_empty() {
        iq
    } else {
        iq.with_children(children)
    }
}

/// The ack of a server IQ: `<iq to="s.whatsapp.net" type="result" id/>` (03 §4.2).
pub fn iq_ack(id: &str) -> Node {
    Node::new("iq")
        .attr("to", wa_engine::Jid::server_jid(wa_engine::Server::Pn))
        .attr("type", "result")
        .attr("id", id.to_owned())
}
