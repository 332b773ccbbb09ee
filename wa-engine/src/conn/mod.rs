//! The sans-IO connection: one WebSocket connection attempt, from the Noise handshake to
//! close, as a state machine fed with bytes and time.
//!
//! A low-level layer, public on purpose: the tokio driver in `client` runs it, and so can any
//! other runtime. See [`Connection`] for the contract.

mod abprops;
mod config;
mod dedup;
mod event;
mod ib;
mod keys;
pub(crate) mod lid;
mod messaging;
mod pairing;
mod payload;
mod pending;
mod request;
mod state;
mod sync;
mod timers;
mod tokens;
mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};

pub use config::{Config, DeviceConfig, Timing, parse_app_version};
use event::EventQueue;
pub use event::{BlobDownload, DownloadId, Event, MessageStatus, UndecryptableReason};
pub use keys::generate_credentials;
pub use lid::LidWire;
pub use messaging::Caches;
use messaging::Messaging;
pub use request::{Reply, Request, RequestId, SendError};
pub use tokens::TokenPolicy;

use self::pairing::Registering;
use self::pending::{Pending, Waiter};
use self::state::{Connected, State};
use self::timers::{Clock, Timers, expired};
use self::wire::Wire;
use crate::Jid;
use crate::binary::{self, Node};
use crate::error::{InvalidInput, ProtocolViolation};
use crate::jid::Server;
use crate::noise::{ClientHandshake, FrameDecoder, FrameEncoder, KeyPair, NoiseError};
use crate::pair::code;
use crate::stanza::{CloseReason, ack, iq};
use crate::store::{Credentials, ProtocolAddress, Staged, Store, StoreBatch, WriteBatch};

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
    /// The store as this connection sees it: its own writes staged until durable
    /// (`Config::persistence`).
    store: Arc<Staged>,
    rng: StdRng,
    /// Unix time (local and server) from the `Instant`s passed in.
    clock: Clock,
    creds: Option<Credentials>,
    frames_in: FrameDecoder,
    wire: Wire,
    state: State,
    events: EventQueue,
    timers: Timers,
    pending: Pending,
    next_request: u64,
    close_reason: Option<CloseReason>,
    routing_info: Option<Vec<u8>>,
    last_received: Option<Instant>,
    messaging: Messaging,
    /// App-state and history sync (conn::sync).
    sync: sync::Syncd,
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
        // The driver's copy, else the stored one (conn::ib): sent in the `ED` pre-intro.
        let routing_info = config
            .routing_info
            .clone()
            .or_else(|| ib::load_routing_info(store.as_ref()));
        let frames_out = match &routing_info {
            Some(info) => FrameEncoder::client_with_routing_info(info),
            None => FrameEncoder::client(),
        };
        let store = Arc::new(Staged::new(store, config.persistence));
        let mut conn = Self {
            rng,
            clock: Clock::new(now, config.unix_time),
            creds: None,
            frames_in: FrameDecoder::client(),
            wire: Wire::new(frames_out, id_prefix, store.seq_handle()),
            state: State::Closed,
            events: EventQueue::new(store.seq_handle()),
            store,
            timers: Timers::default(),
            pending: Pending::default(),
            next_request: 0,
            close_reason: None,
            routing_info,
            last_received: None,
            messaging: Messaging::default(),
            sync: sync::Syncd::new(config.history.clone()),
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
        // A ClientHello is far below the frame limit; a failure is logged by queue_frame.
        let _ = conn.wire.queue_frame(&hello);
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
        std::mem::take(&mut self.messaging.caches)
    }

    /// Installs caches taken from a previous connection (call right after `new`).
    pub fn set_caches(&mut self, caches: Caches) {
        self.messaging.caches = caches;
    }

    // -----------------------------------------------------------------------------------------
    // Output

    /// The next buffer to write to the socket as one binary WebSocket message.
    ///
    /// With [`Persistence::Deferred`](crate::store::Persistence::Deferred), a buffer queued after a store write is held back
    /// (`None`) until [`handle_durable`](Self::handle_durable) reports that write durable.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.wire.pop_transmit(self.store.durable_seq())
    }

    /// The store writes staged since the last call, as one batch for the driver to make
    /// durable (in order: never start the next before the previous one finished), then to
    /// report with [`handle_durable`](Self::handle_durable). Always `None` with
    /// [`Persistence::Inline`](crate::store::Persistence::Inline) (writes were applied as
    /// they were made).
    pub fn poll_write(&mut self) -> Option<WriteBatch> {
        self.store.take_write()
    }

    /// The driver made every write up to sequence number `seq` durable: frames and events
    /// that waited for them are released (`poll_transmit`, `poll_event`).
    pub fn handle_durable(&mut self, seq: u64) {
        self.store.mark_durable(seq);
    }

    /// The driver could not make a write durable: the connection closes with
    /// [`CloseReason::StoreFailed`], and what waited for that write (the ciphertexts,
    /// receipts and acks that depend on it) never leaves.
    pub fn handle_write_failed(&mut self, error: &crate::store::StoreError) {
        tracing::error!(%error, "connection: cannot make the store writes durable");
        self.close(CloseReason::StoreFailed);
    }

    /// Whether every store write of this connection is durable (nothing staged or in
    /// flight). A driver ending the connection keeps persisting until this holds, so no
    /// accepted state is dropped with the connection.
    pub fn writes_settled(&self) -> bool {
        self.store.all_durable()
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
        self.events.pop_front(self.store.durable_seq())
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
    /// [`SendError::Pair`] for an invalid phone number, [`SendError::InvalidInput`] for a read
    /// receipt without ids, [`SendError::Encode`] / [`SendError::Noise`] for a node that cannot
    /// be encoded or encrypted, [`SendError::Store`] / [`SendError::Signal`] when preparing a
    /// message fails.
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
            Request::PairingCode { phone } => match &self.state {
                State::Registering(r) if !r.paired => {
                    let (registering, mut cx) = self.pairing(now).ok_or(SendError::NotPairing)?;
                    registering.start_code_pairing(&mut cx, id, &phone)?;
                }
                State::Handshake(_) | State::Closed => return Err(SendError::NotConnected),
                _ => return Err(SendError::NotPairing),
            },
            Request::SendMessage {
                to,
                message,
                id: message_id,
            } => {
                self.require_logged_in()?;
                self.in_messaging(now, |m, cx| {
                    m.start_send(cx, Some(id), to, *message, message_id)
                })?;
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
                .ok_or(InvalidInput::NoMessageIds)?;
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
                self.in_messaging(now, |m, cx| {
                    m.send_group_iq(cx, id, iq, messaging::GroupOp::Create)
                })?;
            }
            Request::GroupMetadata(group) => {
                self.require_logged_in()?;
                let iq_id = self.next_iq_id();
                let iq = crate::group::metadata_iq(&iq_id, &group);
                self.in_messaging(now, |m, cx| {
                    m.send_group_iq(cx, id, iq, messaging::GroupOp::Metadata)
                })?;
            }
            Request::UpdateParticipants {
                group,
                action,
                participants,
            } => {
                self.require_logged_in()?;
                let iq_id = self.next_iq_id();
                let iq = crate::group::participants_iq(&iq_id, &group, action, &participants);
                self.in_messaging(now, |m, cx| {
                    m.send_group_iq(
                        cx,
                        id,
                        iq,
                        messaging::GroupOp::Participants { group, action },
                    )
                })?;
            }
            Request::ChatAction(action) => {
                self.require_logged_in()?;
                self.in_sync(now, |s, cx| s.start_patch(cx, id, action))?;
            }
            Request::SetPresence { available } => {
                self.require_logged_in()?;
                let name = self.creds.as_ref().map(|c| c.push_name.clone());
                self.send_node(&crate::presence::own_presence(available, name.as_deref()))?;
                self.done(id);
            }
            Request::SubscribePresence(to) => {
                self.require_logged_in()?;
                let token = self.stored_tc_token(&to);
                self.send_node(&crate::presence::subscribe(&to, token.as_deref()))?;
                self.done(id);
            }
            Request::ChatState { to, state } => {
                self.require_logged_in()?;
                let own = self.own_jid().ok_or(SendError::NotLoggedIn)?;
                self.send_node(&crate::presence::chat_state(&own, &to, state))?;
                self.done(id);
            }
            Request::RejectCall { caller, call_id } => {
                self.require_logged_in()?;
                let own = self.own_jid().ok_or(SendError::NotLoggedIn)?;
                let msg_id = crate::message::MessageId::generate(
                    self.server_unix_ms(now) / 1000,
                    "",
                    &mut self.rng,
                );
                self.send_node(&crate::call::reject(
                    msg_id.as_str(),
                    &own,
                    &caller,
                    &call_id,
                ))?;
                self.done(id);
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

    /// Plaintext of an [`Event::Download`] as it streams in, **before** it is verified: the
    /// connection decodes history chunks as they arrive (bounded memory) but keeps nothing
    /// until [`handle_download`](Self::handle_download) says the whole file verified.
    /// Unknown ids are ignored.
    pub fn handle_download_data(&mut self, id: DownloadId, chunk: &[u8]) {
        if self.close_reason.is_none() {
            self.sync.on_download_data(id, chunk);
        }
    }

    /// The end of an [`Event::Download`]: `Ok` with the last plaintext bytes (all of it, or
    /// what did not go through [`handle_download_data`](Self::handle_download_data)) once
    /// the whole file verified (MAC, hashes, length), or why the download failed (for the
    /// logs; everything streamed is then dropped). Unknown ids (e.g. of an earlier
    /// connection) are ignored.
    pub fn handle_download(
        &mut self,
        now: Instant,
        id: DownloadId,
        result: Result<Vec<u8>, String>,
    ) {
        if self.close_reason.is_some() {
            return;
        }
        self.in_sync(now, |s, cx| s.on_download(cx, id, result));
    }

    fn require_logged_in(&self) -> Result<(), SendError> {
        match self.state {
            State::Connected(_) => Ok(()),
            State::Handshake(_) | State::Closed => Err(SendError::NotConnected),
            State::Registering(_) | State::LoggingIn { .. } => Err(SendError::NotLoggedIn),
        }
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
                    self.close(CloseReason::ProtocolViolation(
                        ProtocolViolation::MalformedFrame,
                    ));
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
            self.in_pairing(now, |r, cx| r.show_next_qr(cx));
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
            self.on_iq_timeout(now, waiter);
            if self.close_reason.is_some() {
                return;
            }
        }
    }

    fn on_iq_timeout(&mut self, now: Instant, waiter: Waiter) {
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
            Waiter::Send(op) | Waiter::MessageAck(op) => {
                self.in_messaging(now, |m, cx| m.on_message_ack_timeout(cx, op));
            }
            Waiter::Contacts(id) => self.events.push_back(Event::RequestDone {
                id,
                result: Err(SendError::Timeout),
            }),
            Waiter::Group(op) => {
                self.in_messaging(now, |m, cx| {
                    m.on_group_result(cx, op, Err(SendError::Timeout))
                });
            }
            Waiter::RetryBundle(op) => {
                self.messaging.ops.retries.remove(&op);
            }
            Waiter::PreKeyUpload => {
                self.in_messaging(now, |m, cx| m.on_prekey_upload(cx, false));
            }
            Waiter::PrivacyIssue(op) => {
                self.in_messaging(now, |m, cx| m.on_issue_result(cx, op, None));
            }
            Waiter::AppStateFetch(op) => {
                self.in_sync(now, |s, cx| s.on_fetch_response(cx, op, None));
            }
            Waiter::AppStatePatch(op) => {
                self.in_sync(now, |s, cx| s.on_patch_response(cx, op, None));
            }
            other => tracing::debug!(?other, "connection: internal IQ timed out"),
        }
    }

    fn handle_frame(&mut self, now: Instant, frame: &[u8]) {
        if matches!(self.state, State::Handshake(_)) {
            self.handle_server_hello(now, frame);
            return;
        }
        let Some(transport) = self.wire.transport.as_mut() else {
            self.close(CloseReason::ProtocolViolation(
                ProtocolViolation::FrameWithoutTransport,
            ));
            return;
        };
        let mut plain = Vec::with_capacity(frame.len());
        if let Err(e) = transport.decrypt(frame, &mut plain) {
            tracing::warn!(error = %e, "connection: cannot decrypt frame");
            self.close(CloseReason::ProtocolViolation(
                ProtocolViolation::UndecryptableFrame,
            ));
            return;
        }
        match binary::decode(&plain) {
            Ok(node) => self.handle_node(now, node),
            Err(e) => {
                tracing::warn!(error = %e, "connection: cannot decode node");
                self.close(CloseReason::ProtocolViolation(
                    ProtocolViolation::UndecodableNode,
                ));
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
        if self.wire.queue_frame(&finish).is_err() {
            self.close(CloseReason::HandshakeFailed);
            return;
        }
        self.wire.transport = Some(handshake.finish());
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
                let mut reason = CloseReason::from_failure(
                    node.get_attr_str("reason"),
                    node.get_attr_str("code"),
                    node.get_attr_str("expire"),
                );
                if let CloseReason::ClientOutdated { sent_version } = &mut reason {
                    *sent_version = Some(self.config.device.app_version);
                }
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
                    Some(Waiter::MessageAck(op)) => {
                        self.in_messaging(now, |m, cx| m.on_message_ack(cx, op, &node));
                    }
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
                        self.in_messaging(now, |m, cx| m.handle_messaging_notification(cx, &node));
                        if node.get_attr_str("type") == Some("server_sync") {
                            self.in_sync(now, |s, cx| s.on_server_sync(cx, &node));
                        }
                    }
                    // privacy_token: its own typed event after the raw one (notification.rs).
                    let side = crate::notification::side_event(&node);
                    // Typed event, or raw for sync/privacy and unknown types (notification.rs).
                    self.events.push_back(crate::notification::classify(node));
                    if let Some(side) = side {
                        self.events.push_back(side);
                    }
                }
            }
            // 05 §9: acked after processing (the ack goes out after the decrypted state
            // is stored), not on arrival.
            "message" => {
                let sync = self.in_messaging(now, |m, cx| m.handle_message(cx, &node));
                for p in sync {
                    self.in_sync(now, |s, cx| s.on_protocol(cx, p));
                }
            }
            "receipt" => {
                self.send_ack(&node);
                self.in_messaging(now, |m, cx| m.handle_receipt(cx, &node));
            }
            "presence" | "chatstate" | "call" => self.handle_presence_or_call(now, node),
            tag => {
                if ack::needs_ack(tag) {
                    self.send_ack(&node);
                }
                self.events.push_back(crate::Event::Stanza(node));
            }
        }
    }

    fn send_ack(&mut self, node: &Node) {
        self.wire.send_ack(node);
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
            if self
                .in_pairing(now, |r, cx| r.handle_pair_device(cx, &node))
                .is_none()
            {
                tracing::debug!("connection: pair-device outside registration, ignored");
            }
        } else if node.child_by_tag("pair-success").is_some() {
            if self
                .in_pairing(now, |r, cx| r.handle_pair_success(cx, &node))
                .is_none()
            {
                tracing::debug!("connection: pair-success outside registration, ignored");
            }
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
            Waiter::CompanionHello(id) => {
                self.in_pairing(now, |r, cx| {
                    r.on_companion_hello_result(cx, id, parsed);
                    Ok(())
                });
            }
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
                    self.in_messaging(now, |m, cx| m.on_prekey_count(cx, count));
                } else if parsed.is_ok() {
                    // whatsapp-rust: a missing value counts as 0 (04 §4.1).
                    self.in_messaging(now, |m, cx| m.on_prekey_count(cx, 0));
                }
            }
            Waiter::PreKeyUpload => {
                self.in_messaging(now, |m, cx| m.on_prekey_upload(cx, parsed.is_ok()));
            }
            Waiter::Send(op) => {
                self.in_messaging(now, |m, cx| m.on_send_iq(cx, op, parsed));
            }
            Waiter::MessageAck(op) => {
                self.in_messaging(now, |m, cx| m.on_message_ack(cx, op, node));
            }
            Waiter::RetryBundle(op) => {
                self.in_messaging(now, |m, cx| m.on_retry_bundle(cx, op, parsed));
            }
            Waiter::Contacts(id) => {
                let result = parsed.and_then(|n| {
                    crate::usync::parse_contacts(n).map_err(|e| SendError::BadResponse(e.into()))
                });
                if let Ok(list) = &result {
                    // 07 §1.2: the number check also feeds the PN ⇄ LID map.
                    self.in_messaging(now, |m, cx| {
                        for c in list {
                            if let (Some(jid), Some(lid)) = (&c.jid, &c.lid) {
                                m.learn_pair(cx, jid, lid);
                            }
                        }
                    });
                }
                self.events.push_back(Event::RequestDone {
                    id,
                    result: result.map(Reply::OnWhatsApp),
                });
            }
            Waiter::Group(op) => {
                self.in_messaging(now, |m, cx| m.on_group_result(cx, op, parsed));
            }
            Waiter::PrivacyIssue(op) => {
                self.in_messaging(now, |m, cx| m.on_issue_result(cx, op, parsed.ok()));
            }
            Waiter::AppStateFetch(op) => {
                self.in_sync(now, |s, cx| s.on_fetch_response(cx, op, Some(node)));
            }
            Waiter::AppStatePatch(op) => {
                self.in_sync(now, |s, cx| s.on_patch_response(cx, op, Some(node)));
            }
            Waiter::AbProps => {
                if parsed.is_ok() {
                    self.config.tokens = abprops::apply(self.config.tokens, node);
                    tracing::debug!(tokens = ?self.config.tokens, "connection: token policy from A/B props");
                }
            }
            Waiter::Active | Waiter::CleanDirty => {
                if let Err(e) = parsed {
                    tracing::debug!(error = %e, ?waiter, "connection: IQ rejected");
                }
            }
        }
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
        // 07 §1.2 (whatsmeow handleConnectSuccess): a different LID replaces the stored one.
        // Our own PN ⇄ LID pair lives in the credentials; the engine resolves its own account
        // from there (conn::lid::own_twin), not from the map of peers.
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
        // 07 §2.4, §3.1: the token gates and buckets follow the server's A/B props.
        if self.config.tokens_from_ab_props {
            let props_id = self.next_iq_id();
            if self.send_internal(&abprops::request(&props_id)) {
                self.pending.insert(
                    props_id,
                    Waiter::AbProps,
                    now + self.config.timing.iq_timeout,
                );
            }
        }
        // 07 §2.9: expired privacy-token records go when coming online (at most daily).
        self.in_messaging(now, |m, cx| m.prune_tokens(cx));
        self.schedule_keepalive(now);
        self.in_sync(now, |s, cx| s.on_login(cx));
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
        self.clock.unix_ms(now)
    }

    fn server_unix_ms(&self, now: Instant) -> u64 {
        self.clock.server_unix_ms(now)
    }

    fn set_server_time(&mut self, now: Instant, server_unix_secs: u64) {
        self.clock.set_server_time(now, server_unix_secs);
    }

    /// The registration room and the context it works in at `now`; `None` outside
    /// registration.
    fn pairing(&mut self, now: Instant) -> Option<(&mut Registering, pairing::Context<'_>)> {
        let State::Registering(registering) = &mut self.state else {
            return None;
        };
        let cx = pairing::Context {
            now,
            device: &self.config.device,
            timing: &self.config.timing,
            store: self.store.as_ref(),
            rng: &mut self.rng,
            creds: &mut self.creds,
            clock: &mut self.clock,
            timers: &mut self.timers,
            wire: &mut self.wire,
            pending: &mut self.pending,
            events: &mut self.events,
        };
        Some((registering, cx))
    }

    /// Runs a registration step at `now` and closes the connection if it says so; `None`
    /// outside registration.
    fn in_pairing(
        &mut self,
        now: Instant,
        step: impl FnOnce(&mut Registering, &mut pairing::Context<'_>) -> pairing::Step,
    ) -> Option<()> {
        let outcome = {
            let (registering, mut cx) = self.pairing(now)?;
            step(registering, &mut cx)
        };
        if let Err(reason) = outcome {
            self.close(reason);
        }
        Some(())
    }

    /// A link-code notification: primary_hello during code pairing (03 §5.6).
    fn handle_primary_hello(&mut self, now: Instant, node: &Node) {
        if self
            .in_pairing(now, |r, cx| r.handle_primary_hello(cx, node))
            .is_some()
        {
            return;
        }
        // Outside registration nothing waits for it; a malformed one is still reported.
        match code::parse_primary_hello(node) {
            Ok(_) => tracing::debug!("connection: link-code notification ignored"),
            Err(error) => {
                tracing::warn!(%error, "connection: primary_hello rejected");
                self.events.push_back(crate::Event::PairError { error });
            }
        }
    }

    /// The messaging room and the context it works in at `now`.
    fn messaging(&mut self, now: Instant) -> (&mut Messaging, messaging::Context<'_>) {
        let own = self.own_jid();
        let server_ms = self.server_unix_ms(now);
        let cx = messaging::Context {
            now,
            server_ms,
            own,
            iq_timeout: self.config.timing.iq_timeout,
            prekey_batch: self.config.prekey_batch,
            lid_wire: self.config.lid_wire,
            tokens: self.config.tokens,
            store: self.store.as_ref(),
            rng: &mut self.rng,
            creds: &mut self.creds,
            wire: &mut self.wire,
            pending: &mut self.pending,
            events: &mut self.events,
        };
        (&mut self.messaging, cx)
    }

    /// Runs `f` on the messaging room with its context at `now`.
    fn in_messaging<R>(
        &mut self,
        now: Instant,
        f: impl FnOnce(&mut Messaging, &mut messaging::Context<'_>) -> R,
    ) -> R {
        let (messaging, mut cx) = self.messaging(now);
        f(messaging, &mut cx)
    }

    /// Runs `f` on the sync room with the messaging context at `now`.
    fn in_sync<R>(
        &mut self,
        now: Instant,
        f: impl FnOnce(&mut sync::Syncd, &mut messaging::Context<'_>) -> R,
    ) -> R {
        let own = self.own_jid();
        let server_ms = self.server_unix_ms(now);
        let mut cx = messaging::Context {
            now,
            server_ms,
            own,
            iq_timeout: self.config.timing.iq_timeout,
            prekey_batch: self.config.prekey_batch,
            lid_wire: self.config.lid_wire,
            tokens: self.config.tokens,
            store: self.store.as_ref(),
            rng: &mut self.rng,
            creds: &mut self.creds,
            wire: &mut self.wire,
            pending: &mut self.pending,
            events: &mut self.events,
        };
        f(&mut self.sync, &mut cx)
    }

    /// Answers a request that completes once its stanza is queued.
    fn done(&mut self, id: RequestId) {
        self.events.push_back(Event::RequestDone {
            id,
            result: Ok(Reply::Done),
        });
    }

    /// The trusted-contact token we hold for `peer` (07 §2.8), if any and readable.
    fn stored_tc_token(&self, peer: &Jid) -> Option<Vec<u8>> {
        let raw = self
            .store
            .tc_token(&peer.to_non_ad().to_string())
            .map_err(|e| tracing::warn!(error = %e, "presence: tctoken read failed"))
            .ok()??;
        crate::privacy::TcToken::from_bytes(&raw)
            .ok()
            .map(|t| t.token)
            .filter(|t| !t.is_empty())
    }

    /// `<presence>`, `<chatstate>` and `<call>` from the server (06 §5; whatsmeow
    /// `presence.go`, `call.go`): typed events; calls are acked, and an offer is rejected
    /// first when `Config::auto_reject_calls` is on. What does not parse stays raw.
    fn handle_presence_or_call(&mut self, now: Instant, node: Node) {
        let event = match node.tag.as_ref() {
            "presence" => crate::presence::parse_presence(&node).map(crate::Event::Presence),
            "chatstate" => crate::presence::parse_chat_state(&node).map(crate::Event::ChatState),
            _ => {
                self.send_ack(&node);
                crate::call::parse_call(&node).map(|mut call| {
                    if self.config.auto_reject_calls
                        && matches!(call.kind, crate::call::CallKind::Offer { .. })
                        && let Some(own) = self.own_jid()
                    {
                        let msg_id = crate::message::MessageId::generate(
                            self.server_unix_ms(now) / 1000,
                            "",
                            &mut self.rng,
                        );
                        let reject =
                            crate::call::reject(msg_id.as_str(), &own, &call.call_creator, &call.call_id);
                        call.auto_rejected = self.send_internal(&reject);
                        tracing::info!(call_id = %call.call_id, "call: offer rejected automatically");
                    }
                    crate::Event::Call(Box::new(call))
                })
            }
        };
        match event {
            Some(event) => self.events.push_back(event),
            None => self.events.push_back(crate::Event::Stanza(node)),
        }
    }

    /// Own AD JID while logged in.
    fn own_jid(&self) -> Option<Jid> {
        match &self.state {
            State::Connected(c) => Some(c.jid.clone()),
            _ => None,
        }
    }

    fn next_iq_id(&mut self) -> String {
        self.wire.next_iq_id()
    }

    fn send_node(&mut self, node: &Node) -> Result<(), SendError> {
        self.wire.send_node(node)
    }

    fn send_internal(&mut self, node: &Node) -> bool {
        self.wire.send_internal(node)
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
                    self.messaging
                        .fail_group_closed(&mut self.events, op, &reason);
                }
                Waiter::AppStatePatch(op) => {
                    self.sync.fail_patch_closed(&mut self.events, op, &reason);
                }
                _ => {}
            }
        }
        self.messaging.fail_sends_closed(&mut self.events, &reason);
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
