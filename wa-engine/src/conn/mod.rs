//! The sans-IO connection: one WebSocket connection attempt, from the Noise handshake to
//! close, as a state machine fed with bytes and time.
//!
//! A low-level layer, public on purpose: the tokio driver in `client` runs it, and so can any
//! other runtime. See [`Connection`] for the contract.

mod event;
mod keys;
mod messaging;
mod payload;
mod pending;
mod state;
mod timers;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use x25519_dalek::{PublicKey, StaticSecret};

use event::EventQueue;
pub use event::{Event, MessageStatus, Reply, RequestId, SendError, UndecryptableReason};
pub use keys::generate_credentials;
pub use messaging::Caches;

use self::pending::{Pending, Waiter};
use self::state::{CodePairing, Connected, State};
use self::timers::{Timers, expired};
use crate::Jid;
use crate::binary::{self, Node};
use crate::jid::Server;
use crate::noise::{
    ClientHandshake, FrameDecoder, FrameEncoder, KeyPair, NoiseError, Transport, TrustRoot,
};
use crate::pair::code::{self, PairingCode};
use crate::pair::{self, AdvSecret, ClientType, PairError, PairSuccess, QrCode};
use crate::stanza::{CloseReason, ack, iq};
use crate::store::{Credentials, ProtocolAddress, Store, StoreBatch};

/// Timing of the connection's timers. Defaults are the real clients' values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// How long the first QR is shown: 60 s (03 §4.4; whatsmeow qrchan.go, Baileys).
    pub qr_first: Duration,
    /// How long each later QR is shown: 20 s.
    pub qr_next: Duration,
    /// Keepalive interval, drawn uniformly from `keepalive_min..=keepalive_max`: 20-30 s
    /// (whatsmeow keepalive.go).
    pub keepalive_min: Duration,
    /// See `keepalive_min`.
    pub keepalive_max: Duration,
    /// If nothing at all is received this long after a ping, the connection is dead: 20 s
    /// (whatsapp-rust keepalive.rs).
    pub keepalive_timeout: Duration,
    /// How long an IQ waits for its response: 60 s (Baileys; whatsmeow uses 75 s).
    pub iq_timeout: Duration,
    /// How long the handshake and the server's first stanza may take: 20 s.
    pub connect_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            qr_first: Duration::from_secs(60),
            qr_next: Duration::from_secs(20),
            keepalive_min: Duration::from_secs(20),
            keepalive_max: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(20),
            iq_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(20),
        }
    }
}

/// How this device presents itself (ClientPayload, DeviceProps, QR, pairing code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    /// `DeviceProps.os`: the name the phone shows in its list of linked devices.
    pub name: String,
    /// `DeviceProps.platformType` (03 §2.4). Default CHROME.
    pub platform_type: wa_proto::wa::device_props::PlatformType,
    /// The client type character of the QR and of companion_hello (03 §4.3). Default Chrome.
    pub client_type: ClientType,
    /// `companion_platform_display` of a pairing-code request: `Browser (OS)`, default
    /// `Chrome (Linux)` (03 §5.4: the real server rejects unknown browsers).
    pub platform_display: String,
    /// `UserAgent.appVersion` primary, secondary, tertiary (03 §2.2; default whatsmeow's
    /// 2.3000.1045649367). An outdated version gets `<failure reason="405"/>`.
    pub app_version: [u32; 3],
    /// `ClientPayload.pushName` at registration, if any.
    pub push_name: Option<String>,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        Self {
            name: "wa-rs".to_owned(),
            platform_type: wa_proto::wa::device_props::PlatformType::Chrome,
            client_type: ClientType::Chrome,
            platform_display: "Chrome (Linux)".to_owned(),
            app_version: [2, 3000, 1_045_649_367],
            push_name: None,
        }
    }
}

/// Everything a [`Connection`] needs besides the store.
#[derive(Debug, Clone)]
pub struct Config {
    /// Root that must sign the server's certificate chain ([`TrustRoot::default`] is
    /// WhatsApp's; a sandbox has its own).
    pub trust_root: TrustRoot,
    /// Unix time at the `now` passed to [`Connection::new`]; later unix times are derived from
    /// it and the `Instant`s passed in, so the core never reads the clock. Used for the
    /// certificate validity check and for `unified_session`.
    pub unix_time: Duration,
    /// Seed of the connection's RNG (ephemeral keys, IQ ids, signatures, keepalive jitter).
    /// Drivers draw it from the OS; tests fix it.
    pub rng_seed: [u8; 32],
    /// How the device presents itself.
    pub device: DeviceConfig,
    /// Timer values.
    pub timing: Timing,
    /// Edge routing info from a previous connection's `<ib><edge_routing>`, sent in the
    /// `ED` pre-intro (01 §2.1). See [`Connection::routing_info`].
    pub routing_info: Option<Vec<u8>>,
    /// One-time prekeys per upload (`prekeys::UPLOAD_BATCH`,
    /// 812, by default; 04 §4.3). Tests and many-client deployments may lower it.
    pub prekey_batch: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            trust_root: TrustRoot::default(),
            unix_time: Duration::ZERO,
            rng_seed: [0; 32],
            device: DeviceConfig::default(),
            timing: Timing::default(),
            routing_info: None,
            prekey_batch: crate::prekeys::UPLOAD_BATCH,
        }
    }
}

/// What a caller asks a [`Connection`] to do; see [`Connection::send`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Request {
    /// Send a message to a user or group (05 §6, §7): device lists, sessions and sender
    /// keys as needed, one encryption per device, then [`Reply::MessageSent`] when the
    /// server acks it ([`SendError::Rejected`] for an ack with `error`).
    SendMessage {
        /// The chat: a user JID (device part ignored) or a group JID.
        to: Jid,
        /// The content.
        message: Box<wa_proto::wa::Message>,
        /// The id to use; `None` draws one (05 §4).
        id: Option<crate::message::MessageId>,
    },
    /// Send a read receipt (05 §10.3) for messages of one sender in one chat; [`Reply::Done`].
    MarkRead {
        /// The chat.
        chat: Jid,
        /// The sender (groups: the participant who sent them).
        sender: Option<Jid>,
        /// The message ids (at least one).
        ids: Vec<String>,
    },
    /// Ask which phone numbers are on WhatsApp (06 §4): [`Reply::OnWhatsApp`].
    IsOnWhatsApp(Vec<String>),
    /// Create a group (06 §1.3): [`Reply::Group`].
    CreateGroup {
        /// The subject (at most 25 characters on the real server).
        subject: String,
        /// The other members (user JIDs).
        participants: Vec<Jid>,
    },
    /// Fetch group metadata (06 §1.2): [`Reply::Group`].
    GroupMetadata(Jid),
    /// Add / remove / promote / demote members (06 §1.4): [`Reply::Participants`].
    UpdateParticipants {
        /// The group.
        group: Jid,
        /// What to do.
        action: crate::group::ParticipantAction,
        /// The users.
        participants: Vec<Jid>,
    },
    /// Send an IQ and wait for its response ([`Reply::Iq`], or [`SendError::Rejected`] /
    /// [`SendError::Timeout`]). An `id` attribute is added if missing. Needs a logged-in
    /// connection.
    Iq(Node),
    /// Send a stanza without waiting for anything ([`Reply::Done`] at once). Needs a logged-in
    /// connection.
    Stanza(Node),
    /// Start phone-number pairing on a registration connection (03 §5): the result is
    /// [`Reply::PairingCode`] once the server accepted companion_hello.
    PairingCode {
        /// The phone number of the account, any formatting (digits are kept).
        phone: String,
    },
    /// Unlink this device (03 §10.4): send remove-companion-device, then close with
    /// [`CloseReason::LocalLogout`] when it is answered (or times out).
    Logout,
    /// Close with [`CloseReason::LocalClose`].
    Close,
}

/// One connection attempt: WebSocket bytes in, WebSocket bytes out, no I/O of its own.
///
/// A `Connection` runs the connection header and Noise XX handshake (shared/protocol/01),
/// sends a registration ClientPayload when the store holds no paired device and a login
/// ClientPayload otherwise (03 §2), and then either pairs (QR refs rotated at 60 s then 20 s,
/// pairing code on request, pair-success verified and **persisted before the reply is
/// queued**, then 515) or logs in (`<success>` -> [`crate::Event::Connected`], `<failure>` ->
/// [`CloseReason`]). Once logged in it acks stanzas (03 §11), sends keepalive pings, tracks
/// IQs with timeouts and answers the server's pings.
///
/// It also does the messaging (shared/protocol/04, 05, 06): keeps our prekeys on the server
/// (upload when low, signed-prekey rotation), sends messages ([`Request::SendMessage`]:
/// usync, bundles, per-device encryption, server ack), decrypts incoming ones
/// ([`crate::Event::Message`]; the receipt and the ack leave only after the new state is stored),
/// answers and sends retry receipts, tracks receipts ([`crate::Event::MessageStatus`]) and runs
/// the group and number-check IQs. Device lists, group metadata and sender-key distribution
/// are cached in [`Caches`], which a driver carries from one connection to the next. It ends with a [`CloseReason`]; the
/// driver decides what to do next ([`CloseReason::reconnect`]).
///
/// # Methods
///
/// - getters: [`close_reason`](Self::close_reason), [`is_closed`](Self::is_closed),
///   [`is_logged_in`](Self::is_logged_in), [`jid`](Self::jid),
///   [`routing_info`](Self::routing_info);
/// - input: [`handle_input`](Self::handle_input) (bytes read from the socket, any split),
///   [`handle_timeout`](Self::handle_timeout) (the deadline from `poll_timeout` passed);
/// - commands: [`send`](Self::send);
/// - output: [`poll_transmit`](Self::poll_transmit) (bytes to write, one WebSocket binary
///   message each), [`poll_timeout`](Self::poll_timeout) (when to call `handle_timeout`),
///   [`poll_event`](Self::poll_event).
///
/// # Call order
///
/// After [`new`](Self::new) and after every `handle_*` or `send` call, the driver drains, in
/// this order:
///
/// 1. `poll_transmit` until `None`, writing each buffer to the socket;
/// 2. `poll_timeout`, re-arming its single timer (`None` = no timer);
/// 3. `poll_event` until `None`, forwarding each event.
///
/// Then, if [`close_reason`](Self::close_reason) is `Some`, it closes the socket (after the
/// transmits above were written) and drops the connection. Time comes in as `now`; it must
/// never go backwards. If the socket closes first, the driver uses
/// [`CloseReason::ConnectionLost`] unless `close_reason` says otherwise.
pub struct Connection {
    config: Config,
    store: Arc<dyn Store>,
    rng: StdRng,
    /// The `now` passed to `new`; `config.unix_time` is the unix time at that instant.
    base: Instant,
    creds: Option<Credentials>,
    frames_in: FrameDecoder,
    frames_out: FrameEncoder,
    transport: Option<Transport>,
    state: State,
    transmits: VecDeque<Bytes>,
    events: EventQueue,
    timers: Timers,
    pending: Pending,
    id_prefix: String,
    id_counter: u64,
    next_request: u64,
    close_reason: Option<CloseReason>,
    /// Server time minus local unix time, milliseconds (from pair-success / success `t`).
    server_offset_ms: i64,
    routing_info: Option<Vec<u8>>,
    last_received: Option<Instant>,
    caches: Caches,
    ops: messaging::Ops,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("state", &self.state.name())
            .field("close_reason", &self.close_reason)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Start a connection attempt at `now`: load (or create and store) the credentials and
    /// queue the connection header with the ClientHello.
    ///
    /// Never fails: if the store cannot be read or written, the connection is born closed with
    /// [`CloseReason::StoreFailed`].
    pub fn new(config: Config, store: Arc<dyn Store>, now: Instant) -> Self {
        let mut rng = StdRng::from_seed(config.rng_seed);
        let id_prefix = format!("{}.{}-", rng.random::<u8>(), rng.random::<u8>());
        let frames_out = match &config.routing_info {
            Some(info) => FrameEncoder::client_with_routing_info(info),
            None => FrameEncoder::client(),
        };
        let mut conn = Self {
            store,
            rng,
            base: now,
            creds: None,
            frames_in: FrameDecoder::client(),
            frames_out,
            transport: None,
            state: State::Closed,
            transmits: VecDeque::new(),
            events: EventQueue::default(),
            timers: Timers::default(),
            pending: Pending::default(),
            id_prefix,
            id_counter: 0,
            next_request: 0,
            close_reason: None,
            server_offset_ms: 0,
            routing_info: config.routing_info.clone(),
            last_received: None,
            caches: Caches::default(),
            ops: messaging::Ops::default(),
            config,
        };
        let Ok(creds) = conn.load_or_create_credentials() else {
            conn.close(CloseReason::StoreFailed);
            return conn;
        };
        let noise_key = KeyPair::from_private_bytes(creds.noise_key.private);
        let ephemeral = KeyPair::generate(&mut conn.rng);
        let handshake = ClientHandshake::new(noise_key, ephemeral, conn.config.trust_root);
        let mut hello = Vec::new();
        handshake.write_client_hello(&mut hello);
        conn.creds = Some(creds);
        conn.state = State::Handshake(Box::new(handshake));
        conn.queue_frame(&hello);
        conn.timers.connect = Some(now + conn.config.timing.connect_timeout);
        tracing::debug!("connection: ClientHello queued");
        conn
    }

    fn load_or_create_credentials(&mut self) -> Result<Credentials, ()> {
        match self.store.credentials() {
            Ok(Some(c)) => Ok(c),
            Ok(None) => {
                let creds = generate_credentials(&mut self.rng);
                let mut batch = StoreBatch::new();
                batch.put_credentials(&creds);
                self.store.apply(batch).map_err(|e| {
                    tracing::error!(error = %e, "connection: cannot store new credentials");
                })?;
                tracing::info!("connection: created new device credentials");
                Ok(creds)
            }
            Err(e) => {
                tracing::error!(error = %e, "connection: cannot read credentials");
                Err(())
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Getters

    /// Why the connection ended, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.close_reason.as_ref()
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.close_reason.is_some()
    }

    /// Whether `<success>` arrived and the connection is open.
    pub fn is_logged_in(&self) -> bool {
        matches!(self.state, State::Connected(_))
    }

    /// Own phone-number device JID once known (stored credentials or pair-success).
    pub fn jid(&self) -> Option<Jid> {
        self.creds
            .as_ref()
            .and_then(|c| c.id.as_deref())
            .and_then(|id| id.parse().ok())
    }

    /// The edge routing info last received (`<ib><edge_routing>`), to pass in the next
    /// connection's [`Config::routing_info`].
    pub fn routing_info(&self) -> Option<&[u8]> {
        self.routing_info.as_deref()
    }

    /// Takes the messaging caches (device lists, group metadata, sender-key distribution,
    /// recent sends) out of this connection, to hand them to the next one with
    /// [`set_caches`](Self::set_caches). Leaves empty caches behind.
    pub fn take_caches(&mut self) -> Caches {
        std::mem::take(&mut self.caches)
    }

    /// Installs caches taken from a previous connection (call right after `new`).
    pub fn set_caches(&mut self, caches: Caches) {
        self.caches = caches;
    }

    // -----------------------------------------------------------------------------------------
    // Output

    /// The next buffer to write to the socket as one binary WebSocket message.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmits.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next; `None` when no timer
    /// is armed (or the connection is closed).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.close_reason.is_some() {
            return None;
        }
        [self.timers.next(), self.pending.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next event, in order.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // -----------------------------------------------------------------------------------------
    // Commands

    /// Ask the connection to do something. Returns the id its [`Event::RequestDone`] will
    /// carry.
    ///
    /// # Errors
    /// [`SendError::NotConnected`] when closed or still in the handshake,
    /// [`SendError::NotLoggedIn`] for IQs and stanzas before `<success>`,
    /// [`SendError::NotPairing`] for a pairing code outside registration,
    /// [`SendError::Pair`] for an invalid phone number, [`SendError::Internal`] for a node that
    /// cannot be encoded.
    pub fn send(&mut self, now: Instant, request: Request) -> Result<RequestId, SendError> {
        if let Some(reason) = &self.close_reason {
            return Err(SendError::Closed(reason.clone()));
        }
        let id = RequestId(self.next_request);
        self.next_request += 1;
        match request {
            Request::Close => {
                self.events.push_back(Event::RequestDone {
                    id,
                    result: Ok(Reply::Done),
                });
                self.close(CloseReason::LocalClose);
            }
            Request::Iq(mut node) => {
                self.require_logged_in()?;
                let iq_id = match node.get_attr_str("id") {
                    Some(existing) => existing.to_owned(),
                    None => {
                        let fresh = self.next_iq_id();
                        node.attrs.insert("id", fresh.clone());
                        fresh
                    }
                };
                self.send_node(&node)?;
                self.pending
                    .insert(iq_id, Waiter::User(id), now + self.config.timing.iq_timeout);
            }
            Request::Stanza(node) => {
                self.require_logged_in()?;
                self.send_node(&node)?;
                self.events.push_back(Event::RequestDone {
                    id,
                    result: Ok(Reply::Done),
                });
            }
            Request::PairingCode { phone } => self.start_code_pairing(now, id, &phone)?,
            Request::SendMessage {
                to,
                message,
                id: message_id,
            } => {
                self.require_logged_in()?;
                self.start_send(now, Some(id), to, *message, message_id)?;
            }
            Request::MarkRead { chat, sender, ids } => {
                self.require_logged_in()?;
                let unix = self.server_unix_ms(now) / 1000;
                let node = crate::receipt::read_receipt(
                    &chat,
                    sender.as_ref(),
                    &ids,
                    &crate::receipt::ReceiptKind::Read,
                    unix,
                )
                .ok_or(SendError::Internal)?;
                self.send_node(&node)?;
                self.events.push_back(Event::RequestDone {
                    id,
                    result: Ok(Reply::Done),
                });
            }
            Request::IsOnWhatsApp(phones) => {
                self.require_logged_in()?;
                let iq_id = self.next_iq_id();
                self.send_node(&crate::usync::contacts_query(&iq_id, &phones))?;
                self.pending.insert(
                    iq_id,
                    Waiter::Contacts(id),
                    now + self.config.timing.iq_timeout,
                );
            }
            Request::CreateGroup {
                subject,
                participants,
            } => {
                self.require_logged_in()?;
                let iq_id = self.next_iq_id();
                let key = crate::message::MessageId::generate(
                    self.server_unix_ms(now) / 1000,
                    "",
                    &mut self.rng,
                );
                let iq = crate::group::create_iq(&iq_id, &subject, &participants, key.as_str());
                self.send_group_iq(now, id, iq, messaging::GroupOp::Create)?;
            }
            Request::GroupMetadata(group) => {
                self.require_logged_in()?;
                let iq_id = self.next_iq_id();
                let iq = crate::group::metadata_iq(&iq_id, &group);
                self.send_group_iq(now, id, iq, messaging::GroupOp::Metadata)?;
            }
            Request::UpdateParticipants {
                group,
                action,
                participants,
            } => {
                self.require_logged_in()?;
                let iq_id = self.next_iq_id();
                let iq = crate::group::participants_iq(&iq_id, &group, action, &participants);
                self.send_group_iq(
                    now,
                    id,
                    iq,
                    messaging::GroupOp::Participants { group, action },
                )?;
            }
            Request::Logout => {
                let jid = match &self.state {
                    State::Connected(c) => c.jid.clone(),
                    _ => return Err(SendError::NotLoggedIn),
                };
                let iq_id = self.next_iq_id();
                self.send_node(&iq::remove_companion_device(&iq_id, &jid))?;
                self.pending
                    .insert(iq_id, Waiter::Logout(id), now + Duration::from_secs(10));
            }
        }
        Ok(id)
    }

    fn require_logged_in(&self) -> Result<(), SendError> {
        match self.state {
            State::Connected(_) => Ok(()),
            State::Handshake(_) | State::Closed => Err(SendError::NotConnected),
            State::Registering(_) | State::LoggingIn { .. } => Err(SendError::NotLoggedIn),
        }
    }

    fn start_code_pairing(
        &mut self,
        now: Instant,
        id: RequestId,
        phone: &str,
    ) -> Result<(), SendError> {
        match &self.state {
            State::Registering(r) if !r.paired => {}
            State::Handshake(_) | State::Closed => return Err(SendError::NotConnected),
            _ => return Err(SendError::NotPairing),
        }
        let phone = code::normalize_phone(phone)?;
        let Some(creds) = self.creds.as_ref() else {
            return Err(SendError::Internal);
        };
        let noise_pub = creds.noise_key.public;
        let pairing_code = PairingCode::generate(&mut self.rng);
        let ephemeral = StaticSecret::random_from_rng(&mut self.rng);
        let wrapped = code::wrap_ephemeral_pub(
            &mut self.rng,
            &pairing_code,
            &PublicKey::from(&ephemeral).to_bytes(),
        );
        let iq_id = self.next_iq_id();
        let node = code::companion_hello_iq(
            &iq_id,
            &phone,
            &wrapped,
            &noise_pub,
            self.config.device.client_type,
            &self.config.device.platform_display,
        );
        self.send_node(&node)?;
        self.pending.insert(
            iq_id,
            Waiter::CompanionHello(id),
            now + self.config.timing.iq_timeout,
        );
        if let State::Registering(r) = &mut self.state {
            r.code = Some(CodePairing {
                code: pairing_code,
                phone,
                ephemeral,
                pairing_ref: None,
                request: Some(id),
            });
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Input

    /// Feed bytes read from the socket (any split: partial frames are buffered).
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.close_reason.is_some() {
            return;
        }
        self.last_received = Some(now);
        self.frames_in.push(data);
        loop {
            if self.close_reason.is_some() {
                return;
            }
            match self.frames_in.next_frame() {
                Ok(Some(frame)) => self.handle_frame(now, &frame),
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "connection: bad frame");
                    self.close(CloseReason::ProtocolViolation);
                    return;
                }
            }
        }
    }

    /// Run the timers whose deadline passed at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.close_reason.is_some() {
            return;
        }
        if expired(self.timers.connect, now) {
            tracing::warn!(state = self.state.name(), "connection: connect timeout");
            let reason = if matches!(self.state, State::Handshake(_)) {
                CloseReason::HandshakeFailed
            } else {
                CloseReason::ConnectionLost
            };
            self.close(reason);
            return;
        }
        if expired(self.timers.qr, now) {
            self.timers.qr = None;
            self.show_next_qr(now);
            if self.close_reason.is_some() {
                return;
            }
        }
        if expired(self.timers.ping_deadline, now) {
            self.timers.ping_deadline = None;
            let sent = match &self.state {
                State::Connected(c) => c.ping_sent_at,
                _ => None,
            };
            let alive = matches!((sent, self.last_received), (Some(s), Some(r)) if r >= s);
            if alive {
                self.schedule_keepalive(now);
            } else {
                tracing::warn!("connection: nothing received after keepalive ping");
                self.close(CloseReason::PingTimeout);
                return;
            }
        }
        if expired(self.timers.keepalive, now) {
            self.timers.keepalive = None;
            let iq_id = self.next_iq_id();
            if self.send_internal(&iq::ping(&iq_id)) {
                self.pending.insert(
                    iq_id,
                    Waiter::Ping,
                    now + self.config.timing.keepalive_timeout,
                );
                self.timers.ping_deadline = Some(now + self.config.timing.keepalive_timeout);
                if let State::Connected(c) = &mut self.state {
                    c.ping_sent_at = Some(now);
                }
            }
        }
        for waiter in self.pending.expire(now) {
            self.on_iq_timeout(waiter);
            if self.close_reason.is_some() {
                return;
            }
        }
    }

    fn on_iq_timeout(&mut self, waiter: Waiter) {
        match waiter {
            Waiter::User(id) | Waiter::CompanionHello(id) => {
                self.events.push_back(Event::RequestDone {
                    id,
                    result: Err(SendError::Timeout),
                });
            }
            Waiter::Logout(id) => {
                self.events.push_back(Event::RequestDone {
                    id,
                    result: Ok(Reply::Done),
                });
                self.close(CloseReason::LocalLogout);
            }
            Waiter::Send(op) | Waiter::MessageAck(op) => self.on_message_ack_timeout(op),
            Waiter::Contacts(id) => self.events.push_back(Event::RequestDone {
                id,
                result: Err(SendError::Timeout),
            }),
            Waiter::Group(op) => self.on_group_result(op, Err(SendError::Timeout)),
            Waiter::RetryBundle(op) => {
                self.ops.retries.remove(&op);
            }
            Waiter::PreKeyUpload => self.on_prekey_upload(false),
            other => tracing::debug!(?other, "connection: internal IQ timed out"),
        }
    }

    fn handle_frame(&mut self, now: Instant, frame: &[u8]) {
        if matches!(self.state, State::Handshake(_)) {
            self.handle_server_hello(now, frame);
            return;
        }
        let Some(transport) = self.transport.as_mut() else {
            self.close(CloseReason::ProtocolViolation);
            return;
        };
        let mut plain = Vec::with_capacity(frame.len());
        if let Err(e) = transport.decrypt(frame, &mut plain) {
            tracing::warn!(error = %e, "connection: cannot decrypt frame");
            self.close(CloseReason::ProtocolViolation);
            return;
        }
        match binary::decode(&plain) {
            Ok(node) => self.handle_node(now, node),
            Err(e) => {
                tracing::warn!(error = %e, "connection: cannot decode node");
                self.close(CloseReason::ProtocolViolation);
            }
        }
    }

    fn handle_server_hello(&mut self, now: Instant, frame: &[u8]) {
        let State::Handshake(handshake) = std::mem::replace(&mut self.state, State::Closed) else {
            return;
        };
        let unix_secs = self.unix_ms(now) / 1000;
        let verified = match handshake.handle_server_hello(unix_secs, frame) {
            Ok(v) => v,
            Err(e) => {
                let reason = match e {
                    NoiseError::Certificate(_) => CloseReason::BadServerCertificate,
                    _ => CloseReason::HandshakeFailed,
                };
                tracing::warn!(error = %e, "connection: server hello rejected");
                self.close(reason);
                return;
            }
        };
        let Some(creds) = self.creds.as_ref() else {
            self.close(CloseReason::StoreFailed);
            return;
        };
        let login = creds
            .id
            .as_deref()
            .and_then(|id| id.parse::<Jid>().ok())
            .and_then(|jid| jid.user().parse::<u64>().ok().map(|user| (jid, user)));
        let (payload, next) = match login {
            Some((jid, username)) => (
                payload::login(&self.config.device, username, u32::from(jid.device())),
                State::LoggingIn { jid },
            ),
            None => (
                payload::registration(&self.config.device, creds),
                State::Registering(Box::default()),
            ),
        };
        let registering = matches!(next, State::Registering(_));
        let mut finish = Vec::new();
        let handshake = match verified.write_client_finish(&payload, &mut finish) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "connection: cannot write ClientFinish");
                self.close(CloseReason::HandshakeFailed);
                return;
            }
        };
        self.queue_frame(&finish);
        self.transport = Some(handshake.finish());
        self.state = next;
        tracing::debug!(registering, "connection: handshake complete");
        self.events
            .push_back(Event::HandshakeComplete { registering });
    }

    fn handle_node(&mut self, now: Instant, node: Node) {
        tracing::trace!(%node, "connection: received");
        match node.tag.as_ref() {
            "iq" => self.handle_iq(now, node),
            "success" => self.handle_success(now, &node),
            "failure" => {
                let reason = CloseReason::from_failure(
                    node.get_attr_str("reason"),
                    node.get_attr_str("code"),
                    node.get_attr_str("expire"),
                );
                tracing::info!(%reason, "connection: login failure");
                self.close(reason);
            }
            "stream:error" => {
                let conflict = node
                    .child_by_tag("conflict")
                    .and_then(|c| c.get_attr_str("type"));
                let reason = CloseReason::from_stream_error(node.get_attr_str("code"), conflict);
                tracing::info!(%reason, "connection: stream error");
                self.close(reason);
            }
            "xmlstreamend" => self.close(CloseReason::StreamEnd),
            "ib" => self.handle_ib(now, node),
            "ack" => {
                let id = node.get_attr_str("id").map(str::to_owned);
                match id.and_then(|id| self.pending.take(&id)) {
                    Some(Waiter::MessageAck(op)) => self.on_message_ack(now, op, &node),
                    Some(waiter) => self.on_response(now, waiter, &node),
                    // Acks of retry re-sends and receipts: nothing waits for them.
                    None if node.get_attr_str("class") == Some("message") => {}
                    None => self.events.push_back(crate::Event::Stanza(node)),
                }
            }
            "notification" => {
                self.send_ack(&node);
                if node.get_attr_str("type") == Some(code::LINK_CODE_TAG) {
                    self.handle_primary_hello(now, &node);
                } else {
                    if matches!(self.state, State::Connected(_)) {
                        self.handle_messaging_notification(now, &node);
                    }
                    self.events.push_back(crate::Event::Stanza(node));
                }
            }
            // 05 §9: acked after processing (the ack goes out after the decrypted state
            // is stored), not on arrival.
            "message" => self.handle_message(&node),
            "receipt" => {
                self.send_ack(&node);
                self.handle_receipt(now, &node);
            }
            tag => {
                if ack::needs_ack(tag) {
                    self.send_ack(&node);
                }
                self.events.push_back(crate::Event::Stanza(node));
            }
        }
    }

    fn send_ack(&mut self, node: &Node) {
        if let Some(a) = ack::ack_for(node) {
            self.send_internal(&a);
        }
    }

    fn handle_iq(&mut self, now: Instant, node: Node) {
        let kind = node.get_attr_str("type").unwrap_or_default().to_owned();
        if kind == "result" || kind == "error" {
            if let Some(id) = node.get_attr_str("id").map(str::to_owned)
                && let Some(waiter) = self.pending.take(&id)
            {
                self.on_response(now, waiter, &node);
            } else {
                tracing::debug!("connection: response to an unknown IQ");
            }
            return;
        }
        if node.child_by_tag("pair-device").is_some() {
            self.handle_pair_device(now, &node);
        } else if node.child_by_tag("pair-success").is_some() {
            self.handle_pair_success(now, &node);
        } else if node.get_attr_str("xmlns") == Some("urn:xmpp:ping") {
            self.send_internal(&iq::empty_result(&node));
        } else {
            self.events.push_back(crate::Event::Stanza(node));
        }
    }

    fn on_response(&mut self, now: Instant, waiter: Waiter, node: &Node) {
        let parsed = iq::parse_response(node).map_err(|e| SendError::Rejected {
            code: e.code,
            text: e.text,
        });
        match waiter {
            Waiter::User(id) => self.events.push_back(Event::RequestDone {
                id,
                result: parsed.map(|n| Reply::Iq(n.clone())),
            }),
            Waiter::CompanionHello(id) => self.on_companion_hello_result(id, parsed),
            Waiter::CompanionFinish => {
                if let Err(e) = parsed {
                    tracing::warn!(error = %e, "connection: companion_finish rejected");
                }
            }
            Waiter::Logout(id) => {
                self.events.push_back(Event::RequestDone {
                    id,
                    result: Ok(Reply::Done),
                });
                self.close(CloseReason::LocalLogout);
            }
            Waiter::Ping => {
                self.timers.ping_deadline = None;
                self.schedule_keepalive(now);
            }
            Waiter::PreKeyCount => {
                if let Ok(n) = parsed
                    && let Some(count) = iq::parse_prekey_count(n)
                {
                    self.events.push_back(Event::PreKeyCount { count });
                    self.on_prekey_count(now, count);
                } else if parsed.is_ok() {
                    // whatsapp-rust: a missing value counts as 0 (04 §4.1).
                    self.on_prekey_count(now, 0);
                }
            }
            Waiter::PreKeyUpload => self.on_prekey_upload(parsed.is_ok()),
            Waiter::Send(op) => self.on_send_iq(now, op, parsed),
            Waiter::MessageAck(op) => self.on_message_ack(now, op, node),
            Waiter::RetryBundle(op) => self.on_retry_bundle(op, parsed),
            Waiter::Contacts(id) => {
                let result = parsed.and_then(|n| {
                    crate::usync::parse_contacts(n).map_err(|_| SendError::BadResponse)
                });
                self.events.push_back(Event::RequestDone {
                    id,
                    result: result.map(Reply::OnWhatsApp),
                });
            }
            Waiter::Group(op) => self.on_group_result(op, parsed),
            Waiter::Active | Waiter::CleanDirty => {
                if let Err(e) = parsed {
                    tracing::debug!(error = %e, ?waiter, "connection: IQ rejected");
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Registration (03 §4, §5)

    fn handle_pair_device(&mut self, now: Instant, node: &Node) {
        let State::Registering(reg) = &mut self.state else {
            tracing::debug!("connection: pair-device outside registration, ignored");
            return;
        };
        // Ack at once, before showing any QR (03 §4.2).
        let first = !reg.got_pair_device;
        if first {
            reg.got_pair_device = true;
            reg.refs = node
                .child_path(&["pair-device"])
                .map(|pd| {
                    pd.children_by_tag("ref")
                        .filter_map(Node::content_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
        }
        self.timers.connect = None;
        self.send_internal(&iq::empty_result(node));
        if first {
            self.show_next_qr(now);
        }
    }

    fn show_next_qr(&mut self, now: Instant) {
        let State::Registering(reg) = &mut self.state else {
            return;
        };
        if reg.paired {
            return;
        }
        let first = reg.qr_shown == 0;
        let Some(pairing_ref) = reg.refs.pop_front() else {
            tracing::info!("connection: QR refs ran out");
            self.close(CloseReason::QrRefsExhausted);
            return;
        };
        let Some(creds) = self.creds.as_ref() else {
            return;
        };
        let qr = QrCode {
            pairing_ref,
            noise_pub: creds.noise_key.public,
            identity_pub: creds.identity_key.public,
            adv_secret: AdvSecret::from_bytes(creds.adv_secret_key),
            client_type: Some(self.config.device.client_type),
        };
        let expires_in = if first {
            self.config.timing.qr_first
        } else {
            self.config.timing.qr_next
        };
        reg.qr_shown += 1;
        self.timers.qr = Some(now + expires_in);
        self.events.push_back(crate::Event::Qr {
            code: qr.encode(),
            expires_in,
        });
    }

    fn handle_pair_success(&mut self, now: Instant, node: &Node) {
        let State::Registering(reg) = &self.state else {
            tracing::debug!("connection: pair-success outside registration, ignored");
            return;
        };
        if reg.paired {
            return;
        }
        let iq_id = node.get_attr_str("id").unwrap_or_default().to_owned();
        let verified = match self.verify_pair_success(node) {
            Ok(v) => v,
            Err(error) => {
                tracing::warn!(%error, "connection: pair-success rejected");
                self.send_internal(&pair::pair_error_reply(&iq_id, &error));
                self.events.push_back(crate::Event::PairError { error });
                self.close(CloseReason::PairingFailed);
                return;
            }
        };
        if let Some(t) = verified.server_time {
            self.set_server_time(now, t);
        }
        // Persist before replying (03 §4.7 step 8-9): once the reply leaves, the phone lists
        // the device, and a crash must not lose the keys it knows us by.
        let Some(mut creds) = self.creds.clone() else {
            return;
        };
        creds.id = Some(verified.jid.to_string());
        creds.lid = verified.lid.as_ref().map(ToString::to_string);
        creds.account = Some(verified.account.clone());
        creds.platform = verified.platform.clone();
        creds.business_name = verified.business_name.clone().unwrap_or_default();
        let mut batch = StoreBatch::new();
        batch.put_credentials(&creds);
        let primary = verified.lid.as_ref().unwrap_or(&verified.jid);
        batch.put_identity(
            &ProtocolAddress::new(signal_address_name(primary), 0),
            verified.primary_identity_pub.to_vec(),
        );
        if let Err(e) = self.store.apply(batch) {
            tracing::error!(error = %e, "connection: cannot store pairing");
            let error = PairError::Missing("stored credentials");
            self.send_internal(&pair::pair_error_reply(&iq_id, &error));
            self.events.push_back(crate::Event::PairError { error });
            self.close(CloseReason::StoreFailed);
            return;
        }
        self.creds = Some(creds);
        self.send_internal(&verified.reply());
        let server_ms = self.server_unix_ms(now);
        self.send_internal(&iq::unified_session(server_ms));
        if let State::Registering(reg) = &mut self.state {
            reg.paired = true;
            reg.code = None;
        }
        self.timers.qr = None;
        tracing::info!(jid = %verified.jid, "connection: paired");
        self.events.push_back(crate::Event::PairSuccess {
            jid: verified.jid,
            lid: verified.lid,
            platform: verified.platform,
            business_name: verified.business_name,
        });
    }

    fn verify_pair_success(&mut self, node: &Node) -> Result<pair::VerifiedPairing, PairError> {
        let ps = PairSuccess::parse(node)?;
        let creds = self
            .creds
            .as_ref()
            .ok_or(PairError::Missing("credentials"))?;
        pair::verify_pair_success(
            &mut self.rng,
            &ps,
            &creds.identity_key.private,
            &creds.identity_key.public,
            &AdvSecret::from_bytes(creds.adv_secret_key),
        )
    }

    fn on_companion_hello_result(&mut self, id: RequestId, parsed: Result<&Node, SendError>) {
        let State::Registering(reg) = &mut self.state else {
            return;
        };
        let Some(pairing) = reg.code.as_mut() else {
            return;
        };
        let result =
            parsed.and_then(|n| code::parse_companion_hello_result(n).map_err(SendError::from));
        match result {
            Ok(pairing_ref) => {
                pairing.pairing_ref = Some(pairing_ref);
                pairing.request = None;
                let shown = pairing.code.display();
                self.events.push_back(crate::Event::PairingCode {
                    code: shown.clone(),
                });
                self.events.push_back(Event::RequestDone {
                    id,
                    result: Ok(Reply::PairingCode(shown)),
                });
            }
            Err(e) => {
                reg.code = None;
                self.events
                    .push_back(Event::RequestDone { id, result: Err(e) });
            }
        }
    }

    fn handle_primary_hello(&mut self, now: Instant, node: &Node) {
        let outcome = self.companion_finish(node);
        match outcome {
            Ok(Some((iq, adv_secret))) => {
                // Persist the new ADV secret before answering: pair-success will be HMAC'd with it.
                if let Some(mut creds) = self.creds.clone() {
                    creds.adv_secret_key = *adv_secret.as_bytes();
                    let mut batch = StoreBatch::new();
                    batch.put_credentials(&creds);
                    if let Err(e) = self.store.apply(batch) {
                        tracing::error!(error = %e, "connection: cannot store the new ADV secret");
                        self.close(CloseReason::StoreFailed);
                        return;
                    }
                    self.creds = Some(creds);
                }
                let iq_id = iq.get_attr_str("id").unwrap_or_default().to_owned();
                if self.send_internal(&iq) {
                    self.pending.insert(
                        iq_id,
                        Waiter::CompanionFinish,
                        now + self.config.timing.iq_timeout,
                    );
                }
            }
            Ok(None) => tracing::debug!("connection: link-code notification ignored"),
            Err(error) => {
                tracing::warn!(%error, "connection: primary_hello rejected");
                self.events.push_back(crate::Event::PairError { error });
            }
        }
    }

    /// Build companion_finish for a primary_hello; `Ok(None)` if no code pairing is pending.
    fn companion_finish(&mut self, node: &Node) -> Result<Option<(Node, AdvSecret)>, PairError> {
        let hello = code::parse_primary_hello(node)?;
        let State::Registering(reg) = &self.state else {
            return Ok(None);
        };
        let Some(pairing) = reg.code.as_ref() else {
            return Ok(None);
        };
        if pairing.pairing_ref.as_deref() != Some(hello.pairing_ref.as_slice()) {
            return Err(PairError::PairingRefMismatch);
        }
        let creds = self
            .creds
            .as_ref()
            .ok_or(PairError::Missing("credentials"))?;
        let identity = StaticSecret::from(creds.identity_key.private);
        let finish = code::companion_finish(
            &mut self.rng,
            &pairing.code,
            &pairing.ephemeral,
            &identity,
            &hello.wrapped_primary_ephemeral_pub,
            &hello.primary_identity_pub,
        )?;
        let iq_id = format!("{}{}", self.id_prefix, self.id_counter + 1);
        self.id_counter += 1;
        let iq = code::companion_finish_iq(
            &iq_id,
            &pairing.phone,
            &finish.wrapped_key_bundle,
            &creds.identity_key.public,
            &hello.pairing_ref,
        );
        Ok(Some((iq, finish.adv_secret)))
    }

    // -----------------------------------------------------------------------------------------
    // Login (03 §7)

    fn handle_success(&mut self, now: Instant, node: &Node) {
        let jid = match &self.state {
            State::LoggingIn { jid } => jid.clone(),
            State::Registering(_) => {
                // 03 §6.3: a success on the registration connection is ignored.
                tracing::debug!("connection: <success> during registration ignored");
                return;
            }
            _ => return,
        };
        self.timers.connect = None;
        if let Some(t) = node.get_attr_str("t").and_then(|t| t.parse().ok()) {
            self.set_server_time(now, t);
        }
        let lid = match node.get_attr("lid") {
            Some(crate::binary::Value::Jid(j)) => Some(j.to_string()),
            Some(crate::binary::Value::String(s)) => Some(s.to_string()),
            None => None,
        };
        if let (Some(lid), Some(creds)) = (lid, self.creds.as_mut())
            && creds.lid.as_deref() != Some(lid.as_str())
        {
            creds.lid = Some(lid);
            let mut batch = StoreBatch::new();
            batch.put_credentials(creds);
            if let Err(e) = self.store.apply(batch) {
                tracing::warn!(error = %e, "connection: cannot store the LID from <success>");
            }
        }
        self.state = State::Connected(Connected {
            jid: jid.clone(),
            ping_sent_at: None,
        });
        tracing::info!(%jid, "connection: logged in");
        self.events.push_back(crate::Event::Connected { jid });
        // 03 §7.2: pre-key count, then passive -> active, then unified_session.
        let count_id = self.next_iq_id();
        if self.send_internal(&iq::prekey_count(&count_id)) {
            self.pending.insert(
                count_id,
                Waiter::PreKeyCount,
                now + self.config.timing.iq_timeout,
            );
        }
        let active_id = self.next_iq_id();
        if self.send_internal(&iq::set_active(&active_id)) {
            self.pending.insert(
                active_id,
                Waiter::Active,
                now + self.config.timing.iq_timeout,
            );
        }
        let server_ms = self.server_unix_ms(now);
        self.send_internal(&iq::unified_session(server_ms));
        self.schedule_keepalive(now);
    }

    fn handle_ib(&mut self, now: Instant, node: Node) {
        let mut unhandled = false;
        for child in node.children() {
            match child.tag.as_ref() {
                "dirty" => {
                    if let (Some(kind), Some(ts)) =
                        (child.get_attr_str("type"), child.get_attr_str("timestamp"))
                        && matches!(self.state, State::Connected(_))
                    {
                        let id = self.next_iq_id();
                        let clean = iq::clean_dirty(&id, kind, ts);
                        if self.send_internal(&clean) {
                            self.pending.insert(
                                id,
                                Waiter::CleanDirty,
                                now + self.config.timing.iq_timeout,
                            );
                        }
                    }
                }
                "edge_routing" => {
                    if let Some(info) = child
                        .child_by_tag("routing_info")
                        .and_then(Node::content_bytes)
                    {
                        self.routing_info = Some(info.to_vec());
                    }
                }
                _ => unhandled = true,
            }
        }
        if unhandled {
            self.events.push_back(crate::Event::Stanza(node));
        }
    }

    // -----------------------------------------------------------------------------------------
    // Helpers

    fn schedule_keepalive(&mut self, now: Instant) {
        if !matches!(self.state, State::Connected(_)) {
            return;
        }
        let min = self.config.timing.keepalive_min;
        let max = self.config.timing.keepalive_max.max(min);
        let span = (max - min).as_millis() as u64;
        let jitter = if span == 0 {
            0
        } else {
            self.rng.random_range(0..=span)
        };
        self.timers.keepalive = Some(now + min + Duration::from_millis(jitter));
        if let State::Connected(c) = &mut self.state {
            c.ping_sent_at = None;
        }
    }

    fn unix_ms(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.base);
        (self.config.unix_time + elapsed).as_millis() as u64
    }

    fn server_unix_ms(&self, now: Instant) -> u64 {
        let local = self.unix_ms(now) as i64;
        local.saturating_add(self.server_offset_ms).max(0) as u64
    }

    fn set_server_time(&mut self, now: Instant, server_unix_secs: u64) {
        let local = self.unix_ms(now) as i64;
        self.server_offset_ms = (server_unix_secs as i64).saturating_mul(1000) - local;
    }

    fn next_iq_id(&mut self) -> String {
        self.id_counter += 1;
        format!("{}{}", self.id_prefix, self.id_counter)
    }

    fn queue_frame(&mut self, payload: &[u8]) -> bool {
        let mut wire = Vec::with_capacity(payload.len() + 8);
        match self.frames_out.encode(payload, &mut wire) {
            Ok(()) => {
                self.transmits.push_back(Bytes::from(wire));
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "connection: cannot frame payload");
                false
            }
        }
    }

    /// Encrypt and queue a node. Fails for a node the codec cannot express.
    fn send_node(&mut self, node: &Node) -> Result<(), SendError> {
        let Some(transport) = self.transport.as_mut() else {
            return Err(SendError::NotConnected);
        };
        tracing::trace!(%node, "connection: send");
        let mut plain = Vec::new();
        binary::try_encode_into(node, &mut plain).map_err(|e| {
            tracing::warn!(error = %e, "connection: cannot encode node");
            SendError::Internal
        })?;
        let mut ciphertext = Vec::with_capacity(plain.len() + 16);
        transport.encrypt(&plain, &mut ciphertext).map_err(|e| {
            tracing::warn!(error = %e, "connection: cannot encrypt");
            SendError::Internal
        })?;
        if self.queue_frame(&ciphertext) {
            Ok(())
        } else {
            Err(SendError::Internal)
        }
    }

    /// [`send_node`](Self::send_node) for the connection's own stanzas; logs failures.
    fn send_internal(&mut self, node: &Node) -> bool {
        self.send_node(node).is_ok()
    }

    /// End the connection with `reason` (the first reason wins). Queued transmits stay queued
    /// so that a final reply still goes out; pending requests fail.
    fn close(&mut self, reason: CloseReason) {
        if self.close_reason.is_some() {
            return;
        }
        tracing::debug!(%reason, state = self.state.name(), "connection: closed");
        self.state = State::Closed;
        self.timers.clear();
        for waiter in self.pending.drain() {
            match waiter {
                Waiter::User(id)
                | Waiter::CompanionHello(id)
                | Waiter::Logout(id)
                | Waiter::Contacts(id) => {
                    self.events.push_back(Event::RequestDone {
                        id,
                        result: Err(SendError::Closed(reason.clone())),
                    });
                }
                Waiter::Group(op) => {
                    self.on_group_result(op, Err(SendError::Closed(reason.clone())));
                }
                _ => {}
            }
        }
        let ops: Vec<u64> = self.ops.sends.keys().copied().collect();
        for op in ops {
            self.fail_send_closed(op, reason.clone());
        }
        self.close_reason = Some(reason);
    }
}

/// The Signal address of a device JID: [`signal_address_name`] of its user and its device id.
pub(crate) fn signal_address(jid: &Jid) -> ProtocolAddress {
    ProtocolAddress::new(signal_address_name(jid), u32::from(jid.device()))
}

/// The Signal address name of a JID's user (whatsmeow types/jid.go `SignalAddressUser`):
/// `user` for phone numbers, `user_1` for LIDs (AD domain 1).
pub(crate) fn signal_address_name(jid: &Jid) -> String {
    match jid.server() {
        Server::Lid => format!("{}_1", jid.user()),
        _ => jid.user().to_owned(),
    }
}

#[cfg(test)]
mod tests;
