//! [`ServerSession`]: the server side of one WebSocket connection, sans-IO.
//!
//! Bytes in ([`handle_input`](ServerSession::handle_input)), frames out
//! ([`poll_transmit`](ServerSession::poll_transmit)), time passed in as `now: Instant`. The
//! session reads the connection header and runs the Noise XX responder
//! (shared/protocol/01 §2, §4.5), then speaks binary-node stanzas over the transport cipher:
//! the registration flow (pair-device, QR ref expiry, code pairing, pair-success,
//! pair-device-sign, 515) or the login flow (`<success>` / `<failure>`, upkeep IQs)
//! (shared/protocol/03 §3-§12). Shared state (accounts, phones, other connections) is in the
//! [`Router`]; the router hands work to the session (a phone scan, a device removal, a fault)
//! through an inbox drained by [`handle_timeout`](ServerSession::handle_timeout).
//!
//! Call order for a driver (as wa-engine's `Connection`, STYLE §2): after each `handle_*`,
//! drain `poll_transmit`, then read `poll_timeout`; once [`is_closed`](ServerSession::is_closed)
//! is true and the transmit queue is empty, close the socket as [`close_kind`](ServerSession::close_kind) says.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, trace, warn};
use wa_engine::Jid;
use wa_engine::binary::{self, Node};
use wa_engine::noise::{
    AwaitingClientFinish, ClientFinished, FrameDecoder, FrameEncoder, Handshake, ServerHandshake,
    ServerHelloOutcome, Transport,
};

use crate::accounts::{PairPlan, Registration};
use crate::connections::{ConnId, Push, Waker};
use crate::payload::{Hello, parse_hello};
use crate::script::StreamErrorKind;
use crate::stanzas;
use crate::state::{LoginGrant, Router};

/// How long a client has to finish the Noise handshake (the clients' own limit is 20 s:
/// shared/protocol/01 §4.1).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// How long the phone waits for the companion's pair-device-sign reply before giving up
/// (not observed; generous).
const PAIR_REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the `<ib><offline/>` marker waits for the replayed stanzas to be acknowledged
/// before it is sent anyway. Baileys 6.7.24 holds back its events for offline stanzas when
/// the marker comes before it processed them (shared/protocol/05 §15: "after the queued
/// stanzas are acked, or after a short timeout, e.g. 3 s").
const OFFLINE_MARKER_WAIT: Duration = Duration::from_secs(3);

/// How a closed session wants its socket closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseKind {
    /// Send a WebSocket close after the last frame.
    Graceful,
    /// Drop the socket without a close handshake (a simulated network drop, or garbage
    /// from the peer).
    Abrupt,
}

enum Phase {
    /// Waiting for the header and ClientHello.
    Hello(Option<ServerHandshake>),
    /// ServerHello sent; waiting for ClientFinish (boxed: the symmetric state is large).
    Finish(Option<Box<AwaitingClientFinish>>),
    /// Handshake done; the first stanza waits until `due` (see
    /// [`RouterConfig::first_stanza_delay`](crate::RouterConfig::first_stanza_delay)).
    Opening(Box<Opening>),
    /// Transport mode.
    Open(Box<Open>),
    /// Nothing more is read.
    Done,
}

struct Opening {
    due: Instant,
    transport: Transport,
    client_static: [u8; 32],
    hello: Hello,
    /// `ClientPayload.userAgent.appVersion` (primary, secondary, tertiary), if given.
    app_version: Option<(u32, u32, u32)>,
}

/// The `userAgent.appVersion` of a `ClientPayload` (03 §2.2), absent parts as 0.
fn app_version_of(payload: &[u8]) -> Option<(u32, u32, u32)> {
    use prost::Message as _;
    let payload = wa_proto::wa::ClientPayload::decode(payload).ok()?;
    let v = payload.user_agent?.app_version?;
    Some((
        v.primary.unwrap_or(0),
        v.secondary.unwrap_or(0),
        v.tertiary.unwrap_or(0),
    ))
}

struct Open {
    transport: Transport,
    role: Role,
}

enum Role {
    Registration(Box<Registering>),
    Login(LoggedIn),
}

struct Registering {
    registration: Registration,
    pair_device_id: String,
    /// Refs with their expiry, in order; expired ones are removed from the front.
    refs: VecDeque<(String, Instant)>,
    /// Pair-success sent: its IQ id, the plan and the reply deadline.
    pending: Option<(String, Box<PairPlan>, Instant)>,
    /// Refs ran out: the connection closes.
    exhausted: bool,
    /// Paired: when the 515 goes out ([`RouterConfig::restart_delay`](crate::RouterConfig::restart_delay)).
    restart_due: Option<Instant>,
    /// 515 sent: when the server closes the socket unless the client did first
    /// ([`RouterConfig::restart_close_grace`](crate::RouterConfig::restart_close_grace)).
    close_at: Option<Instant>,
}

struct LoggedIn {
    grant: LoginGrant,
    /// The device's stanzas flow to this connection (03 §7.2: at once for an active
    /// login, after `<active/>` for a passive one).
    active: bool,
    /// Offline replay sent, marker not yet: (replayed count, when to send it anyway).
    marker_due: Option<(usize, Instant)>,
    /// `<ib><offline/></ib>` was sent (once per connection).
    offline_sent: bool,
}

impl LoggedIn {
    fn new(grant: LoginGrant) -> Self {
        Self {
            grant,
            active: false,
            marker_due: None,
            offline_sent: false,
        }
    }
}

/// The server side of one connection. See the module docs for the call order.
pub struct ServerSession {
    router: Router,
    conn: ConnId,
    decoder: FrameDecoder,
    encoder: FrameEncoder,
    phase: Phase,
    started: Instant,
    transmit: VecDeque<Bytes>,
    closed: Option<CloseKind>,
}

impl std::fmt::Debug for ServerSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSession")
            .field("conn", &self.conn)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl ServerSession {
    /// Opens a session for a new connection, with a fresh Noise ephemeral key drawn from the
    /// router's RNG.
    pub fn new(router: Router, now: Instant) -> Self {
        Self::build(router, now, None)
    }

    /// Opens a session whose Noise ephemeral private key is `ephemeral` (32 bytes), for
    /// byte-exact tests against recorded transcripts.
    pub fn with_ephemeral(router: Router, now: Instant, ephemeral: [u8; 32]) -> Self {
        Self::build(router, now, Some(ephemeral))
    }

    fn build(router: Router, now: Instant, ephemeral: Option<[u8; 32]>) -> Self {
        let conn = router.open_connection();
        let handshake = router.server_handshake(ephemeral);
        Self {
            router,
            conn,
            decoder: FrameDecoder::server(),
            encoder: FrameEncoder::server(),
            phase: Phase::Hello(Some(handshake)),
            started: now,
            transmit: VecDeque::new(),
            closed: None,
        }
    }

    /// This connection's id in the router.
    pub fn conn_id(&self) -> ConnId {
        self.conn
    }

    /// The device this connection is logged in as: (phone number, device id).
    pub fn device(&self) -> Option<(String, u16)> {
        match &self.phase {
            Phase::Open(open) => match &open.role {
                Role::Login(l) => Some((l.grant.phone.clone(), l.grant.device)),
                Role::Registration(_) => None,
            },
            _ => None,
        }
    }

    /// Sets the function the router calls when it has work for this session; the driver
    /// then calls [`handle_timeout`](Self::handle_timeout).
    pub fn set_waker(&mut self, waker: Waker) {
        self.router.set_waker(self.conn, waker);
    }

    /// Bytes received from the socket, split anywhere (WebSocket message boundaries mean
    /// nothing: shared/protocol/01 §1).
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.closed.is_some() {
            return;
        }
        self.decoder.push(data);
        loop {
            if self.closed.is_some() {
                return;
            }
            let frame = match self.decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    debug!(conn = self.conn, error = %e, "bad framing");
                    self.close(CloseKind::Abrupt);
                    return;
                }
            };
            self.handle_frame(now, &frame);
        }
        self.drain_router(now);
    }

    /// Fires expired timers (handshake timeout, QR ref expiry, pair reply timeout) and
    /// drains the work the router queued for this session.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        if matches!(self.phase, Phase::Hello(_) | Phase::Finish(_))
            && now >= self.started + HANDSHAKE_TIMEOUT
        {
            debug!(conn = self.conn, "handshake timeout");
            self.close(CloseKind::Abrupt);
            return;
        }
        if let Phase::Opening(o) = &self.phase
            && now >= o.due
        {
            self.finish_opening(now);
        }
        self.expire_refs(now);
        self.check_offline_marker(now);
        self.drain_router(now);
    }

    /// The peer closed the socket (or it failed).
    pub fn handle_peer_closed(&mut self) {
        if let Phase::Open(open) = &self.phase
            && let Role::Registration(reg) = &open.role
            && let Some((_, plan, _)) = &reg.pending
        {
            self.router.release_device(&plan.phone, plan.device);
        }
        self.phase = Phase::Done;
        self.closed.get_or_insert(CloseKind::Graceful);
    }

    /// The next frame to write to the socket, as one binary WebSocket message.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmit.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        match &self.phase {
            Phase::Hello(_) | Phase::Finish(_) => Some(self.started + HANDSHAKE_TIMEOUT),
            Phase::Opening(o) => Some(o.due),
            Phase::Open(open) => match &open.role {
                Role::Registration(reg) => match &reg.pending {
                    _ if reg.close_at.is_some() => reg.close_at,
                    _ if reg.restart_due.is_some() => reg.restart_due,
                    Some((_, _, deadline)) => Some(*deadline),
                    None => reg.refs.front().map(|(_, at)| *at),
                },
                Role::Login(l) => l.marker_due.map(|(_, at)| at),
            },
            Phase::Done => None,
        }
    }

    /// Whether the session is over: drain [`poll_transmit`](Self::poll_transmit), then close
    /// the socket.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// How to close the socket, once closed.
    pub fn close_kind(&self) -> Option<CloseKind> {
        self.closed
    }

    // ---------------------------------------------------------------------------------------

    fn close(&mut self, kind: CloseKind) {
        if let Phase::Open(open) = &self.phase
            && let Role::Registration(reg) = &open.role
            && let Some((_, plan, _)) = &reg.pending
        {
            self.router.release_device(&plan.phone, plan.device);
        }
        self.phase = Phase::Done;
        self.closed.get_or_insert(kind);
        self.router.close_connection(self.conn);
    }

    /// Sends a stream error (or `<xmlstreamend/>`) and closes.
    fn end_with(&mut self, kind: &StreamErrorKind) {
        self.send(&stanzas::stream_error(kind));
        self.close(CloseKind::Graceful);
    }

    fn push_frame(&mut self, payload: &[u8]) {
        let mut out = Vec::with_capacity(payload.len() + 3);
        match self.encoder.encode(payload, &mut out) {
            Ok(()) => self.transmit.push_back(Bytes::from(out)),
            Err(e) => warn!(conn = self.conn, error = %e, "frame too large, dropped"),
        }
    }

    /// Encodes, encrypts and queues one stanza.
    fn send(&mut self, node: &Node) {
        let Phase::Open(open) = &mut self.phase else {
            return;
        };
        trace!(conn = self.conn, %node, "send");
        let mut plain = Vec::with_capacity(64);
        if let Err(e) = binary::try_encode_into(node, &mut plain) {
            warn!(conn = self.conn, error = %e, "stanza does not encode, dropped");
            return;
        }
        let mut ct = Vec::with_capacity(plain.len() + 16);
        if let Err(e) = open.transport.encrypt(&plain, &mut ct) {
            warn!(conn = self.conn, error = %e, "encrypt failed");
            self.close(CloseKind::Abrupt);
            return;
        }
        self.push_frame(&ct);
    }

    /// The Noise handshake is complete (XX, XXfallback or IK): parse the `ClientPayload` and
    /// open after the first-stanza delay.
    fn handshake_done(&mut self, now: Instant, hs: Handshake, finished: ClientFinished) {
        let transport = hs.finish();
        match parse_hello(&finished.payload, finished.client_static) {
            Ok(hello) => {
                let delay = self.router.first_stanza_delay();
                self.phase = Phase::Opening(Box::new(Opening {
                    due: now + delay,
                    transport,
                    client_static: finished.client_static,
                    hello,
                    app_version: app_version_of(&finished.payload),
                }));
                if delay.is_zero() {
                    self.finish_opening(now);
                }
            }
            Err(e) => {
                debug!(conn = self.conn, error = %e, "bad ClientPayload");
                self.close(CloseKind::Abrupt);
            }
        }
    }

    fn handle_frame(&mut self, now: Instant, frame: &[u8]) {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Hello(Some(hs)) => {
                let mut out = Vec::with_capacity(400);
                let router = &self.router;
                // A resuming client's IK hello is accepted for a registered device, anything
                // else gets XX or a real XXfallback (shared/protocol/01 §6).
                match hs.handle_client_hello_resumable(
                    frame,
                    |key| router.knows_noise_key(key),
                    &mut out,
                ) {
                    Ok(ServerHelloOutcome::AwaitFinish(next)) => {
                        self.phase = Phase::Finish(Some(Box::new(next)));
                        self.push_frame(&out);
                    }
                    Ok(ServerHelloOutcome::Resumed(hs, finished)) => {
                        debug!(conn = self.conn, "Noise IK resume accepted");
                        self.push_frame(&out);
                        self.handshake_done(now, hs, finished);
                    }
                    Err(e) => {
                        debug!(conn = self.conn, error = %e, "bad ClientHello");
                        self.close(CloseKind::Abrupt);
                    }
                }
            }
            Phase::Finish(Some(awaiting)) => match awaiting.handle_client_finish(frame) {
                Ok((hs, finished)) => self.handshake_done(now, hs, finished),
                Err(e) => {
                    debug!(conn = self.conn, error = %e, "bad ClientFinish");
                    self.close(CloseKind::Abrupt);
                }
            },
            Phase::Open(mut open) => {
                let mut plain = Vec::with_capacity(frame.len());
                if let Err(e) = open.transport.decrypt(frame, &mut plain) {
                    debug!(conn = self.conn, error = %e, "undecryptable frame");
                    self.close(CloseKind::Abrupt);
                    return;
                }
                self.phase = Phase::Open(open);
                match binary::decode(&plain) {
                    Ok(node) => {
                        trace!(conn = self.conn, %node, "recv");
                        self.handle_node(now, &node);
                    }
                    Err(e) => {
                        // whatsmeow drops undecodable frames; so do we.
                        debug!(conn = self.conn, error = %e, "undecodable stanza ignored");
                    }
                }
            }
            Phase::Opening(opening) => {
                // The client spoke first: open now, then read its frame.
                self.phase = Phase::Opening(opening);
                self.finish_opening(now);
                if matches!(self.phase, Phase::Open(_)) {
                    self.handle_frame(now, frame);
                }
            }
            Phase::Hello(None) | Phase::Finish(None) | Phase::Done => {}
        }
    }

    /// Leaves [`Phase::Opening`]: sends the first stanza.
    fn finish_opening(&mut self, now: Instant) {
        if let Phase::Opening(o) = std::mem::replace(&mut self.phase, Phase::Done) {
            let Opening {
                transport,
                client_static,
                hello,
                app_version,
                ..
            } = *o;
            let min = self.router.gate_config().min_app_version;
            if crate::privacy::outdated(app_version, min) {
                // Version gate (07 §4, §5.7): failure 405 instead of pair-device / success.
                debug!(
                    conn = self.conn,
                    ?app_version,
                    ?min,
                    "client outdated: failure 405"
                );
                self.phase = Phase::Open(Box::new(Open {
                    transport,
                    role: Role::Login(LoggedIn::new(LoginGrant {
                        phone: String::new(),
                        lid_user: String::new(),
                        device: 0,
                        creation: 0,
                    })),
                }));
                self.send(&stanzas::failure(405).attr("location", "sim"));
                self.close(CloseKind::Graceful);
                return;
            }
            self.open(now, transport, client_static, hello);
        }
    }

    /// The handshake finished: start the registration or login flow (03 §3).
    fn open(&mut self, now: Instant, transport: Transport, client_static: [u8; 32], hello: Hello) {
        match hello {
            Hello::Registration(registration) => {
                let timing = self.router.qr_timing();
                let refs =
                    self.router
                        .start_registration(self.conn, registration.clone(), timing.refs);
                let id = self.router.next_id();
                let sent_at = now;
                let expiring = refs
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (r.clone(), sent_at + timing.expiry_of(i)))
                    .collect();
                self.phase = Phase::Open(Box::new(Open {
                    transport,
                    role: Role::Registration(Box::new(Registering {
                        registration,
                        pair_device_id: id.clone(),
                        refs: expiring,
                        pending: None,
                        exhausted: false,
                        restart_due: None,
                        close_at: None,
                    })),
                }));
                debug!(
                    conn = self.conn,
                    refs = refs.len(),
                    "registration: pair-device"
                );
                self.send(&stanzas::pair_device(&id, &refs));
            }
            Hello::Login {
                username,
                device,
                passive,
            } => {
                // Bind the transport first so that `send` can encrypt.
                self.phase = Phase::Open(Box::new(Open {
                    transport,
                    role: Role::Login(LoggedIn::new(LoginGrant {
                        phone: username.to_string(),
                        lid_user: String::new(),
                        device,
                        creation: 0,
                    })),
                }));
                match self
                    .router
                    .login(self.conn, username, device, &client_static)
                {
                    Ok(grant) => {
                        let t = self.router.unix_now();
                        let lid = Jid::lid(grant.lid_user.clone()).with_device(grant.device);
                        let location = self.router.location();
                        debug!(conn = self.conn, phone = %grant.phone, device, "login: success");
                        let mut enc_static = [0u8; 32];
                        self.router.fill_random(&mut enc_static);
                        self.send(&stanzas::success(
                            t,
                            &location,
                            lid,
                            grant.creation,
                            &enc_static,
                        ));
                        // Edge routing (notify): record the client's `ED` pre-intro, send
                        // the account's routing info if it has one issued.
                        let edge = self.router.edge_routing_at_login(
                            &grant.phone,
                            grant.device,
                            self.decoder.routing_info(),
                        );
                        if let Phase::Open(open) = &mut self.phase {
                            open.role = Role::Login(LoggedIn::new(grant));
                        }
                        if let Some(ib) = edge {
                            self.send(&ib);
                        }
                        if !passive {
                            // Not held back: deliver the queue at once (03 §7.2).
                            self.activate(now);
                        }
                    }
                    Err(refusal) => {
                        debug!(conn = self.conn, ?refusal, "login: failure 401");
                        self.send(&stanzas::failure(401));
                        self.close(CloseKind::Graceful);
                    }
                }
            }
        }
    }

    /// Sends the post-pairing 515 (`03-pairing-login.md` §6), then closes at once or after
    /// [`RouterConfig::restart_close_grace`](crate::RouterConfig::restart_close_grace).
    fn restart(&mut self, now: Instant) {
        let grace = self.router.restart_close_grace();
        if grace.is_zero() {
            self.end_with(&StreamErrorKind::Code(515));
            return;
        }
        self.send(&stanzas::stream_error(&StreamErrorKind::Code(515)));
        if let Phase::Open(open) = &mut self.phase
            && let Role::Registration(reg) = &mut open.role
        {
            reg.restart_due = None;
            reg.close_at = Some(now + grace);
        }
    }

    fn expire_refs(&mut self, now: Instant) {
        let Phase::Open(open) = &mut self.phase else {
            return;
        };
        let Role::Registration(reg) = &mut open.role else {
            return;
        };
        if let Some(at) = reg.close_at {
            if now >= at {
                self.close(CloseKind::Graceful);
            }
            return;
        }
        if let Some(due) = reg.restart_due {
            if now >= due {
                self.restart(now);
            }
            return;
        }
        if let Some((_, plan, deadline)) = &reg.pending {
            if now >= *deadline {
                debug!(conn = self.conn, "no pair-device-sign reply; closing");
                let (phone, device) = (plan.phone.clone(), plan.device);
                self.router.release_device(&phone, device);
                reg.pending = None;
                self.close(CloseKind::Graceful);
            }
            return;
        }
        while let Some((r, at)) = reg.refs.front() {
            if now < *at {
                break;
            }
            self.router.expire_ref(r);
            reg.refs.pop_front();
        }
        if reg.refs.is_empty() && !reg.exhausted {
            reg.exhausted = true;
            debug!(
                conn = self.conn,
                "QR refs ran out; closing the registration connection"
            );
            self.close(CloseKind::Graceful);
        }
    }

    fn drain_router(&mut self, now: Instant) {
        // Work waits until the first stanza went out.
        if matches!(self.phase, Phase::Opening(_)) {
            return;
        }
        while self.closed.is_none() {
            let Some(push) = self.router.take_push(self.conn) else {
                break;
            };
            self.handle_push(now, push);
        }
    }

    fn handle_push(&mut self, now: Instant, push: Push) {
        match push {
            Push::Drop => self.close(CloseKind::Abrupt),
            Push::Stanza(node) => self.send(&node),
            Push::StreamError(kind) => self.end_with(&kind),
            Push::PairSuccess(plan) => self.send_pair_success(now, plan),
            Push::PrimaryHello {
                wrapped_primary_ephemeral,
                primary_identity,
                pairing_ref,
            } => {
                let id = self.router.next_id();
                let t = self.router.unix_now();
                self.send(&stanzas::primary_hello(
                    &id,
                    t,
                    &wrapped_primary_ephemeral,
                    &primary_identity,
                    &pairing_ref,
                ));
            }
        }
    }

    fn send_pair_success(&mut self, now: Instant, plan: Box<PairPlan>) {
        let Phase::Open(open) = &mut self.phase else {
            self.router.release_device(&plan.phone, plan.device);
            return;
        };
        let Role::Registration(reg) = &mut open.role else {
            self.router.release_device(&plan.phone, plan.device);
            return;
        };
        if reg.pending.is_some() {
            self.router.release_device(&plan.phone, plan.device);
            return;
        }
        let id = self.router.next_id();
        let t = self.router.unix_now();
        let jid = Jid::pn(plan.phone.clone()).with_device(plan.device);
        let lid = Jid::lid(plan.lid_user.clone()).with_device(plan.device);
        let mut node = wa_engine::pair::build_pair_success(
            &id,
            t,
            &plan.device_identity_hmac,
            &plan.platform,
            &jid,
            Some(&lid),
            plan.business_name.as_deref(),
        );
        crate::gate::add_client_props(&mut node, self.router.lid_migrated(&plan.phone));
        reg.refs.clear();
        reg.pending = Some((id, plan, now + PAIR_REPLY_TIMEOUT));
        self.send(&node);
    }

    fn handle_node(&mut self, now: Instant, node: &Node) {
        if let Some(device) = self.logged_in().map(|g| (g.phone.clone(), g.device)) {
            self.handle_logged_in_node(now, &device, node);
            return;
        }
        match node.tag.as_ref() {
            "iq" => self.handle_iq(now, node),
            // The server acks what the client sends (03 §11, last paragraph).
            class @ ("message" | "receipt" | "notification" | "call") => {
                self.ack_client_stanza(class, node);
            }
            // No reply to acks, in-band stanzas (unified_session, offline_batch), presence
            // or chat states (03 §9, §11).
            _ => trace!(conn = self.conn, tag = %node.tag, "no reply"),
        }
    }

    fn handle_iq(&mut self, now: Instant, iq: &Node) {
        let Some(id) = iq.get_attr_str("id").map(str::to_owned) else {
            return;
        };
        match iq.get_attr_str("type") {
            Some("result" | "error") => self.handle_iq_reply(now, &id, iq),
            Some("get" | "set") => self.handle_iq_request(now, &id, iq),
            _ => trace!(conn = self.conn, "iq without a known type ignored"),
        }
    }

    /// Replies to the server's own IQs: the pair-device ack and the pair-device-sign.
    fn handle_iq_reply(&mut self, now: Instant, id: &str, iq: &Node) {
        let Phase::Open(open) = &mut self.phase else {
            return;
        };
        let Role::Registration(reg) = &mut open.role else {
            return;
        };
        if id == reg.pair_device_id {
            trace!(conn = self.conn, "pair-device acknowledged");
            return;
        }
        let Some((pending_id, _, _)) = &reg.pending else {
            return;
        };
        if pending_id != id {
            return;
        }
        let Some((_, plan, _)) = reg.pending.take() else {
            return;
        };
        let registration = reg.registration.clone();
        match wa_engine::pair::verify_pair_device_sign(
            iq,
            &plan.details,
            &plan.companion_identity,
            &plan.account_pub,
        ) {
            Ok(_) => {
                if self.router.record_companion(&plan, registration) {
                    let delay = self.router.restart_delay(&plan.phone, plan.device);
                    debug!(conn = self.conn, phone = %plan.phone, device = plan.device, ?delay, "paired; 515");
                    if delay.is_zero() {
                        self.restart(now);
                    } else {
                        reg.restart_due = Some(now + delay);
                    }
                } else {
                    self.close(CloseKind::Graceful);
                }
            }
            Err(e) => {
                // Real behaviour on a failed pair-device-sign is not determined (03 §13):
                // forget the device and close.
                debug!(conn = self.conn, error = %e, "pair-device-sign rejected; closing");
                self.router.release_device(&plan.phone, plan.device);
                self.close(CloseKind::Graceful);
            }
        }
    }

    fn handle_iq_request(&mut self, now: Instant, id: &str, iq: &Node) {
        let xmlns = iq.get_attr_str("xmlns").unwrap_or_default().to_owned();
        let is_get = iq.get_attr_str("type") == Some("get");
        let first_child = iq.children().first().map(|c| c.tag.to_string());
        match (xmlns.as_str(), first_child.as_deref()) {
            // Keepalive (03 §10.2): WM sends no child, Baileys a <ping/>.
            ("w:p" | "urn:xmpp:ping", _) => self.send(&stanzas::iq_result(id, vec![])),
            ("md", Some("link_code_companion_reg")) => self.handle_link_code(now, id, iq),
            ("md", Some("remove-companion-device")) => self.handle_logout(id),
            ("encrypt", Some("count")) if is_get => self.handle_prekey_count(id),
            ("encrypt", _) if !is_get && iq.child_by_tag("list").is_some() => {
                self.handle_prekey_upload(id, iq);
            }
            // Media (06 §2.3): the sandbox's own media host and a fresh auth token.
            ("w:m", Some("media_conn")) => {
                let reply = self.router.media().media_conn_reply(id);
                self.send(&reply);
            }
            ("passive", Some("active")) => {
                self.send(&stanzas::iq_result(id, vec![]));
                // The queue follows the result, then the offline marker (03 §7.2).
                self.activate(now);
            }
            ("encrypt", Some("key")) if is_get => match iq.child_by_tag("key") {
                Some(key) => {
                    let reply = self.router.lock().prekey_fetch(id, key);
                    self.send(&reply);
                }
                None => self.send(&stanzas::iq_error(id, 400, "bad-request")),
            },
            ("encrypt", Some("digest")) if is_get => {
                let reply = match self.logged_in().map(|g| (g.phone.clone(), g.device)) {
                    Some(dev) => self.router.lock().prekey_digest(id, &dev),
                    None => stanzas::iq_error(id, 401, "not-authorized"),
                };
                self.send(&reply);
            }
            ("encrypt", Some("rotate")) if !is_get => self.handle_prekey_upload(id, iq),
            // Privacy-token issuance (07 §5.2).
            ("privacy", Some("tokens")) if !is_get => {
                let reply = match self.logged_in().map(|g| (g.phone.clone(), g.device)) {
                    Some(dev) => self.router.lock().privacy_iq(&dev, id, iq),
                    None => stanzas::iq_error(id, 401, "not-authorized"),
                };
                self.send(&reply);
            }
            // Reach-out timelock and capping pulls (07 §3.6); other MEX queries fall through.
            ("w:mex", Some("query"))
                if let Some(reply) = self
                    .logged_in()
                    .map(|g| (g.phone.clone(), g.device))
                    .and_then(|dev| self.router.lock().mex_query(&dev, id, iq)) =>
            {
                self.send(&reply);
            }
            // A/B props: the privacy-token props (gate.rs AB_PROPS, values from GateConfig).
            ("abt", Some("props")) if is_get => {
                let config = self.router.gate_config();
                self.send(&crate::gate::abt_props_reply(id, &config));
            }
            ("usync", Some("usync")) if is_get => {
                let reply = self.router.lock().usync(id, iq);
                self.send(&reply);
            }
            // Profile: own status text, pictures (profile.rs).
            ("status", Some("status")) if !is_get => {
                let reply = match self.logged_in().map(|g| (g.phone.clone(), g.device)) {
                    Some(dev) => self.router.lock().status_iq(&dev, id, iq),
                    None => stanzas::iq_error(id, 401, "not-authorized"),
                };
                self.send(&reply);
            }
            ("w:profile:picture", _) => {
                let reply = match self.logged_in().map(|g| (g.phone.clone(), g.device)) {
                    Some(dev) => self.router.lock().picture_iq(&dev, id, iq),
                    None => stanzas::iq_error(id, 401, "not-authorized"),
                };
                self.send(&reply);
            }
            ("w:g2", _) => {
                let reply = match self.logged_in().map(|g| (g.phone.clone(), g.device)) {
                    Some(dev) => self.router.lock().group_iq(&dev, id, iq),
                    None => stanzas::iq_error(id, 401, "not-authorized"),
                };
                self.send(&reply);
            }
            // Baileys' init queries (interop BAILEYS_NOTES §8): empty answers.
            ("w", Some("props")) => self.send(&stanzas::iq_result(
                id,
                vec![Node::new("props").attr("protocol", "2").attr("hash", "")],
            )),
            ("blocklist", _) if is_get => {
                self.send(&stanzas::iq_result(id, vec![Node::new("list")]));
            }
            ("privacy", Some("privacy")) if is_get => {
                self.send(&stanzas::iq_result(id, vec![Node::new("privacy")]));
            }
            ("passive", Some("passive")) | ("urn:xmpp:whatsapp:dirty", Some("clean")) => {
                self.send(&stanzas::iq_result(id, vec![]));
            }
            // App-state sync (08 §3, §11): appsync.rs.
            ("w:sync:app:state", Some("sync")) if !is_get => {
                let reply = match self.logged_in().map(|g| (g.phone.clone(), g.device)) {
                    Some(dev) => self.router.lock().app_state_iq(&dev, id, iq),
                    None => stanzas::iq_error(id, 401, "not-authorized"),
                };
                self.send(&reply);
            }
            // Other clients' post-login queries (abt props): peer_iq.rs.
            _ if let Some(reply) = crate::peer_iq::answer(&xmlns, id, iq) => self.send(&reply),
            _ => {
                // Real codes for unknown IQs are not determined (03 §12 step 9).
                debug!(conn = self.conn, %xmlns, child = ?first_child, "unknown IQ: 501");
                self.send(&stanzas::iq_error(id, 501, "feature-not-implemented"));
            }
        }
    }

    /// The device's stanzas start flowing here: the queued ones are replayed at once
    /// (marked `offline="1"`), and the `<ib><offline count=N/></ib>` marker follows when
    /// they are acknowledged or after [`OFFLINE_MARKER_WAIT`] (05 §12, §15).
    fn activate(&mut self, now: Instant) {
        let Phase::Open(open) = &mut self.phase else {
            return;
        };
        let Role::Login(l) = &mut open.role else {
            return;
        };
        if l.active {
            return;
        }
        l.active = true;
        let replay = self.router.lock().activate(self.conn);
        debug!(conn = self.conn, queued = replay.len(), "offline replay");
        let count = replay.len();
        for node in &replay {
            self.send(node);
        }
        if let Phase::Open(open) = &mut self.phase
            && let Role::Login(l) = &mut open.role
        {
            l.marker_due = Some((count, now + OFFLINE_MARKER_WAIT));
        }
        self.check_offline_marker(now);
    }

    /// Sends the offline marker once the replay is acknowledged or its wait is over.
    fn check_offline_marker(&mut self, now: Instant) {
        let Phase::Open(open) = &self.phase else {
            return;
        };
        let Role::Login(l) = &open.role else {
            return;
        };
        let Some((count, due)) = l.marker_due else {
            return;
        };
        if l.offline_sent {
            return;
        }
        if now < due && count > 0 && self.router.lock().outstanding_replay(self.conn) > 0 {
            return;
        }
        if let Phase::Open(open) = &mut self.phase
            && let Role::Login(l) = &mut open.role
        {
            l.offline_sent = true;
            l.marker_due = None;
        }
        self.send(&stanzas::offline(count));
    }

    /// Stanzas of a logged-in device: IQs, messages, receipts, acks, presence (05 §14).
    fn handle_logged_in_node(&mut self, now: Instant, device: &(String, u16), node: &Node) {
        match node.tag.as_ref() {
            "iq" => self.handle_iq(now, node),
            "message" => {
                let ack = self.router.lock().route_message(device, node);
                if let Some(ack) = ack {
                    // Stored before acknowledged (05 §14): the recipients' queues are made
                    // durable first (a host's `Durability`), so the sender's "sent" holds
                    // across a crash of the server.
                    if ack.get_attr("error").is_none() {
                        self.router.make_queues_durable();
                    }
                    self.send(&ack);
                }
            }
            "receipt" => {
                self.router.lock().route_receipt(device, node);
                // Acking client receipts is optional; the real server does (03 §11).
                self.ack_client_stanza("receipt", node);
            }
            "ack" => self.router.lock().client_ack(device, node),
            "presence" => {
                if let Some(name) = node.get_attr_str("name") {
                    self.router.lock().set_push_name(&device.0, name);
                }
                self.router.lock().route_presence(device, node);
            }
            "chatstate" => self.router.lock().route_chat_state(device, node),
            "call" => {
                self.router.lock().route_call(device, node);
                self.ack_client_stanza("call", node);
            }
            "notification" => self.ack_client_stanza("notification", node),
            // No reply to in-band stanzas (unified_session, offline_batch) or chat states
            // (03 §9, §11).
            _ => trace!(conn = self.conn, tag = %node.tag, "no reply"),
        }
        self.check_offline_marker(now);
    }

    /// `<ack class id from="s.whatsapp.net" t/>` for a client stanza (03 §11).
    fn ack_client_stanza(&mut self, class: &str, node: &Node) {
        if let Some(id) = node.get_attr_str("id") {
            let t = self.router.unix_now();
            self.send(&stanzas::server_ack(class, id, t));
        }
    }

    fn logged_in(&self) -> Option<&LoginGrant> {
        match &self.phase {
            Phase::Open(open) => match &open.role {
                Role::Login(l) => Some(&l.grant),
                Role::Registration(_) => None,
            },
            _ => None,
        }
    }

    /// `encrypt` / `count` (03 §7.2): `<count value="N"/>`.
    fn handle_prekey_count(&mut self, id: &str) {
        let Some(grant) = self.logged_in() else {
            self.send(&stanzas::iq_error(id, 401, "not-authorized"));
            return;
        };
        let count = self.router.prekey_count(&grant.phone, grant.device);
        self.send(&stanzas::iq_result(
            id,
            vec![Node::new("count").attr("value", count.to_string())],
        ));
    }

    /// Prekey upload (04 §4.2) or signed prekey rotation (04 §2): stored for this device.
    fn handle_prekey_upload(&mut self, id: &str, iq: &Node) {
        let Some(grant) = self.logged_in().cloned() else {
            self.send(&stanzas::iq_error(id, 401, "not-authorized"));
            return;
        };
        match crate::keys::parse_upload(iq) {
            Ok(upload) => {
                let total = self
                    .router
                    .lock()
                    .prekey_upload(&(grant.phone.clone(), grant.device), upload);
                debug!(conn = self.conn, total, "prekeys uploaded");
                self.send(&stanzas::iq_result(id, vec![]));
            }
            Err(e) => {
                debug!(conn = self.conn, error = %e, "prekey upload refused");
                self.send(&stanzas::iq_error(id, 400, "bad-request"));
            }
        }
    }

    /// `remove-companion-device` (03 §10.4): the client logs itself out.
    fn handle_logout(&mut self, id: &str) {
        let Some(grant) = self.logged_in().cloned() else {
            self.send(&stanzas::iq_error(id, 401, "not-authorized"));
            return;
        };
        // This connection is leaving on its own; only other connections of the device get
        // the device_removed stream error.
        self.router.unbind_device(self.conn);
        let _ = self.router.remove_device(&grant.phone, grant.device);
        self.send(&stanzas::iq_result(id, vec![]));
    }

    /// Phone-number pairing IQs (03 §5.4, §5.7).
    fn handle_link_code(&mut self, now: Instant, id: &str, iq: &Node) {
        let Some(reg_node) = iq.child_by_tag("link_code_companion_reg") else {
            return;
        };
        let registration = match &self.phase {
            Phase::Open(open) => match &open.role {
                Role::Registration(reg) => reg.registration.clone(),
                Role::Login(_) => {
                    self.send(&stanzas::iq_error(id, 400, "bad-request"));
                    return;
                }
            },
            _ => return,
        };
        match reg_node.get_attr_str("stage") {
            Some("companion_hello") => {
                let phone = reg_node
                    .get_attr("jid")
                    .and_then(|v| v.as_jid().map(|j| j.user().to_owned()))
                    .or_else(|| {
                        reg_node
                            .get_attr_str("jid")
                            .and_then(|s| s.split('@').next())
                            .map(str::to_owned)
                    });
                let wrapped = stanzas::child_bytes(
                    reg_node,
                    "link_code_pairing_wrapped_companion_ephemeral_pub",
                );
                let auth_key =
                    stanzas::child_array::<32>(reg_node, "companion_server_auth_key_pub");
                let (Some(phone), Some(wrapped)) = (phone, wrapped) else {
                    self.send(&stanzas::iq_error(id, 400, "bad-request"));
                    return;
                };
                // The auth key is the companion's noise key (03 §5.4).
                if auth_key.is_some_and(|k| k != registration.noise_pub) {
                    self.send(&stanzas::iq_error(id, 400, "bad-request"));
                    return;
                }
                match self.router.code_hello(self.conn, &phone, wrapped) {
                    Ok(pairing_ref) => {
                        self.send(&stanzas::companion_hello_result(id, &pairing_ref));
                    }
                    // Not observed; an unknown number is answered like a missing item.
                    Err(_) => self.send(&stanzas::iq_error(id, 404, "item-not-found")),
                }
            }
            Some("companion_finish") => {
                let bundle = stanzas::child_bytes(reg_node, "link_code_pairing_wrapped_key_bundle");
                let identity = stanzas::child_array::<32>(reg_node, "companion_identity_public");
                let pairing_ref = stanzas::child_bytes(reg_node, "link_code_pairing_ref");
                let (Some(bundle), Some(identity), Some(pairing_ref)) =
                    (bundle, identity, pairing_ref)
                else {
                    self.send(&stanzas::iq_error(id, 400, "bad-request"));
                    return;
                };
                if identity != registration.identity_pub {
                    self.send(&stanzas::iq_error(id, 400, "bad-request"));
                    return;
                }
                match crate::phone::finish_code_pairing(
                    &self.router,
                    self.conn,
                    &pairing_ref,
                    &bundle,
                    &identity,
                ) {
                    Ok(plan) => {
                        self.send(&stanzas::iq_result(id, vec![]));
                        self.send_pair_success(now, Box::new(plan));
                    }
                    Err(e) => {
                        debug!(conn = self.conn, error = %e, "companion_finish rejected");
                        self.send(&stanzas::iq_error(id, 400, "bad-request"));
                    }
                }
            }
            _ => self.send(&stanzas::iq_error(id, 400, "bad-request")),
        }
    }
}

impl Drop for ServerSession {
    fn drop(&mut self) {
        self.router.close_connection(self.conn);
    }
}
