//! `Connection` against a hand-played server, in virtual time: no sockets, no tokio.
//!
//! The server side is the noise module's responder plus the phone-side pairing functions, so
//! every byte the connection sees went through a real Noise XX handshake, real transport
//! encryption and the binary codec.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use wa_engine::binary::Node;
use wa_engine::conn::{Config, Connection, Event, Reply, Request, RequestId, SendError};
use wa_engine::pair::{self, AdvSecret, QrCode, code};
use wa_engine::store::{Credentials, ProtocolAddress};
use wa_engine::{CloseReason, MemoryStore, Store, StoreBatch, StoreError};
use wa_sandbox::sim::Sim;

mod conn_support;
use conn_support::*;

/// Client connection + scripted server on the test kit's simulated clock (`wa_sandbox::sim`).
struct Pair {
    sim: Sim<Connection, Server>,
}

impl Pair {
    fn new(sandbox: &mut Sandbox, store: Arc<dyn Store>, now: Instant, seed: u8) -> Self {
        let config = Config {
            trust_root: sandbox.trust_root(),
            unix_time: Duration::from_secs(UNIX_START),
            rng_seed: [seed; 32],
            ..Config::default()
        };
        let conn = Connection::new(config, store, now);
        Self {
            sim: Sim::pair(now, u64::from(seed), conn, sandbox.accept()),
        }
    }

    fn now(&self) -> Instant {
        self.sim.now()
    }

    fn conn(&self) -> &Connection {
        self.sim.client()
    }

    fn server(&self) -> &Server {
        self.sim.server()
    }

    /// Move bytes both ways until neither side has anything to say.
    fn drive(&mut self) {
        self.sim.drive();
    }

    /// `Connection::send` at the current instant.
    fn send(&mut self, request: Request) -> Result<RequestId, SendError> {
        let now = self.now();
        self.sim.client_mut().send(now, request)
    }

    fn server_send(&mut self, node: &Node) {
        self.sim.server_mut().send(node);
        self.drive();
    }

    /// Advance to the next deadline and fire it.
    fn fire_timer(&mut self) -> Duration {
        self.sim.fire_timer()
    }

    fn take_events(&mut self) -> Vec<Event> {
        self.sim.link_mut(0).take_client_events()
    }

    /// Nodes the server received, in order.
    fn take_received(&mut self) -> Vec<Node> {
        self.sim.link_mut(0).take_server_events()
    }
}

/// Register, show a QR, get scanned, persist, reply, get 515.
fn pair_by_qr(sandbox: &mut Sandbox, store: Arc<dyn Store>, now: Instant) -> (Pair, Phone) {
    let mut rng = StdRng::seed_from_u64(7);
    let phone = Phone::new(&mut rng);
    let mut p = Pair::new(sandbox, store, now, 1);
    let payload = p.server().payload.clone().expect("client payload");
    assert!(
        payload.device_pairing_data.is_some(),
        "unpaired device registers"
    );
    assert!(payload.username.is_none());
    assert!(matches!(
        p.take_events().as_slice(),
        [Event::HandshakeComplete { registering: true }]
    ));

    p.server_send(&pair_device(&REFS));
    let acks = p.take_received();
    assert_eq!(acks.len(), 1, "pair-device is acked at once");
    assert_eq!(acks[0].get_attr_str("type"), Some("result"));
    assert_eq!(acks[0].get_attr_str("id"), Some("257131597"));
    let qrs = qr_codes(&p.take_events());
    assert_eq!(qrs.len(), 1);
    assert_eq!(qrs[0].1, Duration::from_secs(60));

    let (node, details, companion_identity) = phone.pair_success(&mut rng, &qrs[0].0);
    // The noise key in the QR is the one the server saw in the handshake.
    let qr = QrCode::parse(&qrs[0].0).expect("qr");
    assert_eq!(Some(qr.noise_pub), p.server().client_static);
    p.server_send(&node);
    let replies = p.take_received();
    let reply = replies
        .iter()
        .find(|n| n.child_by_tag("pair-device-sign").is_some())
        .expect("pair-device-sign reply sent");
    let signed = pair::verify_pair_device_sign(
        reply,
        &details,
        &companion_identity,
        phone.identity.public(),
    )
    .expect("device signature verifies on the phone side");
    assert_eq!(signed.key_index, Some(3));
    assert!(
        replies
            .iter()
            .any(|n| n.child_by_tag("unified_session").is_some()),
        "unified_session follows pairing"
    );
    let events = p.take_events();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Public(wa_engine::Event::PairSuccess { jid, platform, .. }) if *jid == phone.jid && platform == "android"
    )));
    (p, phone)
}

#[test]
fn qr_pairing_persists_credentials_then_restarts_into_login() {
    let mut sandbox = Sandbox::new(1);
    let store: Arc<MemoryStore> = Arc::new(MemoryStore::new());
    let t0 = Instant::now();
    let (mut p, phone) = pair_by_qr(&mut sandbox, store.clone(), t0);

    let creds = stored(store.as_ref());
    assert_eq!(creds.id.as_deref(), Some("15551234567:7@s.whatsapp.net"));
    assert_eq!(creds.lid.as_deref(), Some("100000000000001:7@lid"));
    assert_eq!(creds.platform, "android");
    assert!(creds.account.is_some());
    let primary = store
        .identity(&ProtocolAddress::new("100000000000001_1", 0))
        .expect("identity readable")
        .expect("primary identity stored");
    assert_eq!(primary.as_bytes(), phone.identity.public());

    p.server_send(&Node::new("stream:error").attr("code", "515"));
    assert_eq!(p.conn().close_reason(), Some(&CloseReason::RestartRequired));

    // Restart: same keys, login payload, no QR.
    let mut login = Pair::new(&mut sandbox, store.clone(), p.now(), 2);
    assert_eq!(
        login.server().client_static,
        Some(creds.noise_key.public),
        "same noise key"
    );
    let payload = login.server().payload.clone().expect("payload");
    assert_eq!(payload.username, Some(15_551_234_567));
    assert_eq!(payload.device, Some(7));
    assert!(payload.device_pairing_data.is_none());
    assert_eq!(payload.passive, Some(true));
    assert!(matches!(
        login.take_events().as_slice(),
        [Event::HandshakeComplete { registering: false }]
    ));

    login.server_send(
        &Node::new("success")
            .attr("t", (UNIX_START + 20).to_string())
            .attr("props", "27")
            .attr("lid", phone.lid.clone())
            .attr("location", "sim"),
    );
    let events = login.take_events();
    assert!(
        matches!(events.as_slice(), [Event::Public(wa_engine::Event::Connected { jid })] if *jid == phone.jid),
        "{events:?}"
    );
    assert!(login.conn().is_logged_in());
    let sent = login.take_received();
    let count = sent
        .iter()
        .find(|n| n.get_attr_str("xmlns") == Some("encrypt"))
        .expect("pre-key count asked");
    assert!(count.child_by_tag("count").is_some());
    assert!(
        sent.iter()
            .any(|n| n.get_attr_str("xmlns") == Some("passive"))
    );
    assert!(
        sent.iter()
            .any(|n| n.child_by_tag("unified_session").is_some())
    );

    let count_id = count.get_attr_str("id").expect("id").to_owned();
    login.server_send(
        &Node::new("iq")
            .attr("from", server_jid())
            .attr("type", "result")
            .attr("id", count_id)
            .with_children([Node::new("count").attr("value", "812")]),
    );
    assert_eq!(login.take_events(), vec![Event::PreKeyCount { count: 812 }]);
    assert!(qr_codes(&events).is_empty());
}

/// A store whose writes fail: the reply to pair-success must not leave.
struct FailingStore(MemoryStore, Mutex<bool>);

impl FailingStore {
    fn new() -> Self {
        Self(MemoryStore::new(), Mutex::new(false))
    }
    fn fail_from_now(&self) {
        *self.1.lock().expect("lock") = true;
    }
}

macro_rules! delegate_reads {
    () => {
        fn credentials(&self) -> Result<Option<Credentials>, StoreError> {
            self.0.credentials()
        }
        fn identity(
            &self,
            a: &ProtocolAddress,
        ) -> Result<Option<wa_engine::store::Blob>, StoreError> {
            self.0.identity(a)
        }
        fn identity_devices(&self, n: &str) -> Result<Vec<u32>, StoreError> {
            self.0.identity_devices(n)
        }
        fn session(
            &self,
            a: &ProtocolAddress,
        ) -> Result<Option<wa_engine::store::Blob>, StoreError> {
            self.0.session(a)
        }
        fn session_devices(&self, n: &str) -> Result<Vec<u32>, StoreError> {
            self.0.session_devices(n)
        }
        fn prekey(&self, id: u32) -> Result<Option<wa_engine::store::Blob>, StoreError> {
            self.0.prekey(id)
        }
        fn prekey_ids(&self) -> Result<Vec<u32>, StoreError> {
            self.0.prekey_ids()
        }
        fn prekey_counters(&self) -> Result<Option<wa_engine::store::PreKeyCounters>, StoreError> {
            self.0.prekey_counters()
        }
        fn signed_prekey(&self, id: u32) -> Result<Option<wa_engine::store::Blob>, StoreError> {
            self.0.signed_prekey(id)
        }
        fn signed_prekey_ids(&self) -> Result<Vec<u32>, StoreError> {
            self.0.signed_prekey_ids()
        }
        fn sender_key(
            &self,
            n: &wa_engine::store::SenderKeyName,
        ) -> Result<Option<wa_engine::store::Blob>, StoreError> {
            self.0.sender_key(n)
        }
        fn app_value(
            &self,
            ns: &str,
            k: &[u8],
        ) -> Result<Option<wa_engine::store::Blob>, StoreError> {
            self.0.app_value(ns, k)
        }
        fn app_keys(&self, ns: &str) -> Result<Vec<Vec<u8>>, StoreError> {
            self.0.app_keys(ns)
        }
        fn lid_for_pn(&self, pn: &str) -> Result<Option<String>, StoreError> {
            self.0.lid_for_pn(pn)
        }
        fn pn_for_lid(&self, lid: &str) -> Result<Option<String>, StoreError> {
            self.0.pn_for_lid(lid)
        }
        fn app_state_sync_key(
            &self,
            id: &[u8],
        ) -> Result<Option<wa_engine::store::Blob>, StoreError> {
            self.0.app_state_sync_key(id)
        }
        fn app_state_sync_key_ids(&self) -> Result<Vec<Vec<u8>>, StoreError> {
            self.0.app_state_sync_key_ids()
        }
        fn app_state_collection(
            &self,
            name: &str,
        ) -> Result<Option<wa_engine::store::Blob>, StoreError> {
            self.0.app_state_collection(name)
        }
        fn tc_token(&self, jid: &str) -> Result<Option<wa_engine::store::Blob>, StoreError> {
            self.0.tc_token(jid)
        }
        fn tc_token_jids(&self) -> Result<Vec<String>, StoreError> {
            self.0.tc_token_jids()
        }
        fn nct_salt(&self) -> Result<Option<wa_engine::store::Blob>, StoreError> {
            self.0.nct_salt()
        }
        fn wipe(&self) -> Result<(), StoreError> {
            self.0.wipe()
        }
    };
}

impl Store for FailingStore {
    delegate_reads!();
    fn apply(&self, batch: StoreBatch) -> Result<(), StoreError> {
        if *self.1.lock().expect("lock") {
            Err(StoreError::Backend {
                op: "apply",
                source: Box::new(std::io::Error::other("disk full")),
            })
        } else {
            self.0.apply(batch)
        }
    }
}

#[test]
fn pair_success_is_not_answered_when_credentials_cannot_be_stored() {
    let mut sandbox = Sandbox::new(2);
    let store = Arc::new(FailingStore::new());
    let mut rng = StdRng::seed_from_u64(9);
    let phone = Phone::new(&mut rng);
    let mut p = Pair::new(&mut sandbox, store.clone(), Instant::now(), 3);
    p.server_send(&pair_device(&REFS));
    let qrs = qr_codes(&p.take_events());
    p.take_received();
    store.fail_from_now();
    let (node, _, _) = phone.pair_success(&mut rng, &qrs[0].0);
    p.server_send(&node);
    let sent = p.take_received();
    assert!(
        sent.iter()
            .all(|n| n.child_by_tag("pair-device-sign").is_none()),
        "no pair-device-sign without stored credentials: {sent:?}"
    );
    let error = sent
        .iter()
        .find(|n| n.get_attr_str("type") == Some("error"))
        .expect("error reply");
    assert_eq!(
        error
            .child_by_tag("error")
            .and_then(|e| e.get_attr_str("code")),
        Some("500")
    );
    assert_eq!(p.conn().close_reason(), Some(&CloseReason::StoreFailed));
    assert!(!stored(store.as_ref()).is_paired());
}

#[test]
fn tampered_pair_success_gets_hmac_mismatch_and_no_credentials() {
    let mut sandbox = Sandbox::new(3);
    let store: Arc<MemoryStore> = Arc::new(MemoryStore::new());
    let mut rng = StdRng::seed_from_u64(11);
    let phone = Phone::new(&mut rng);
    let mut p = Pair::new(&mut sandbox, store.clone(), Instant::now(), 4);
    p.server_send(&pair_device(&REFS));
    let qrs = qr_codes(&p.take_events());
    p.take_received();
    let qr = QrCode::parse(&qrs[0].0).expect("qr");
    // The phone uses another ADV secret: the HMAC cannot match.
    let (node, _, _) =
        phone.pair_success_for(&mut rng, &qr.identity_pub, &AdvSecret::from_bytes([9; 32]));
    p.server_send(&node);
    let sent = p.take_received();
    let error = sent
        .iter()
        .find(|n| n.get_attr_str("type") == Some("error"))
        .expect("error reply");
    let e = error.child_by_tag("error").expect("error child");
    assert_eq!(e.get_attr_str("code"), Some("401"));
    assert_eq!(e.get_attr_str("text"), Some("hmac-mismatch"));
    assert!(
        p.take_events()
            .iter()
            .any(|e| matches!(e, Event::Public(wa_engine::Event::PairError { .. })))
    );
    assert_eq!(p.conn().close_reason(), Some(&CloseReason::PairingFailed));
    assert!(!stored(store.as_ref()).is_paired());
}

#[test]
fn qr_refs_rotate_at_60_then_20_seconds_and_run_out() {
    let mut sandbox = Sandbox::new(4);
    let store: Arc<MemoryStore> = Arc::new(MemoryStore::new());
    let mut p = Pair::new(&mut sandbox, store, Instant::now(), 5);
    p.server_send(&pair_device(&REFS));
    let mut shown = qr_codes(&p.take_events());
    let mut waits = Vec::new();
    for _ in 0..6 {
        waits.push(p.fire_timer());
        shown.extend(qr_codes(&p.take_events()));
    }
    let expiries: Vec<u64> = shown.iter().map(|(_, d)| d.as_secs()).collect();
    assert_eq!(expiries, vec![60, 20, 20, 20, 20, 20]);
    let waited: Vec<u64> = waits.iter().map(Duration::as_secs).collect();
    assert_eq!(waited, vec![60, 20, 20, 20, 20, 20]);
    let refs: Vec<String> = shown
        .iter()
        .map(|(q, _)| QrCode::parse(q).expect("qr").pairing_ref)
        .collect();
    assert_eq!(
        refs,
        REFS.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>()
    );
    assert_eq!(p.conn().close_reason(), Some(&CloseReason::QrRefsExhausted));
    assert!(!p.conn().close_reason().expect("closed").should_reconnect());
    assert_eq!(p.conn().poll_timeout(), None);
}

fn logged_in(sandbox: &mut Sandbox) -> (Pair, Arc<MemoryStore>) {
    let store: Arc<MemoryStore> = Arc::new(MemoryStore::new());
    let (mut p, phone) = pair_by_qr(sandbox, store.clone(), Instant::now());
    p.server_send(&Node::new("stream:error").attr("code", "515"));
    let mut login = Pair::new(sandbox, store.clone(), p.now(), 6);
    login.server_send(
        &Node::new("success")
            .attr("t", UNIX_START.to_string())
            .attr("lid", phone.lid),
    );
    login.take_events();
    // Answer the pre-key count and passive/active IQs so no IQ timer is left armed.
    for sent in login.take_received() {
        if sent.tag == "iq" {
            let id = sent.get_attr_str("id").expect("id").to_owned();
            let mut result = Node::new("iq")
                .attr("from", server_jid())
                .attr("type", "result")
                .attr("id", id);
            if sent.get_attr_str("xmlns") == Some("encrypt") {
                result = result.with_children([Node::new("count").attr("value", "50")]);
            }
            login.server_send(&result);
        }
    }
    login.take_events();
    login.take_received();
    (login, store)
}

#[test]
fn keepalive_pings_every_20_to_30_seconds_and_detects_a_dead_server() {
    let mut sandbox = Sandbox::new(5);
    let (mut p, _) = logged_in(&mut sandbox);
    // Answer three pings.
    for _ in 0..3 {
        let waited = p.fire_timer();
        assert!((20..=30).contains(&waited.as_secs()), "interval {waited:?}");
        let sent = p.take_received();
        let ping = sent
            .iter()
            .find(|n| n.get_attr_str("xmlns") == Some("w:p"))
            .expect("ping sent");
        assert_eq!(ping.get_attr_str("type"), Some("get"));
        let id = ping.get_attr_str("id").expect("id").to_owned();
        p.server_send(
            &Node::new("iq")
                .attr("from", server_jid())
                .attr("type", "result")
                .attr("id", id),
        );
    }
    // Now the server goes silent.
    p.fire_timer();
    assert!(
        p.take_received()
            .iter()
            .any(|n| n.get_attr_str("xmlns") == Some("w:p"))
    );
    let waited = p.fire_timer();
    assert_eq!(waited, Duration::from_secs(20));
    assert_eq!(p.conn().close_reason(), Some(&CloseReason::PingTimeout));
    assert!(p.conn().close_reason().expect("closed").should_reconnect());
}

#[test]
fn iq_requests_complete_time_out_and_fail_on_close() {
    let mut sandbox = Sandbox::new(6);
    let (mut p, _) = logged_in(&mut sandbox);
    let query = Node::new("iq")
        .attr("xmlns", "usync")
        .attr("type", "get")
        .attr("to", server_jid());
    let first = p.send(Request::Iq(query.clone())).expect("send");
    p.drive();
    let sent = p.take_received();
    let id = sent[0].get_attr_str("id").expect("id assigned").to_owned();
    p.server_send(
        &Node::new("iq")
            .attr("from", server_jid())
            .attr("type", "error")
            .attr("id", id)
            .with_children([Node::new("error")
                .attr("code", "404")
                .attr("text", "item-not-found")]),
    );
    assert!(p.take_events().contains(&Event::RequestDone {
        id: first,
        result: Err(SendError::Rejected {
            code: 404,
            text: Some("item-not-found".into())
        }),
    }));

    let second = p.send(Request::Iq(query.clone())).expect("send");
    p.drive();
    // Keep the connection alive with pings while the IQ goes unanswered for 60 s.
    let start = p.now();
    let mut done = None;
    while done.is_none() {
        p.fire_timer();
        for n in p.take_received() {
            if n.get_attr_str("xmlns") == Some("w:p") {
                let id = n.get_attr_str("id").expect("id").to_owned();
                p.server_send(
                    &Node::new("iq")
                        .attr("from", server_jid())
                        .attr("type", "result")
                        .attr("id", id),
                );
            }
        }
        done = p.take_events().into_iter().find_map(|e| match e {
            Event::RequestDone { id, result } if id == second => Some(result),
            _ => None,
        });
    }
    assert_eq!(done, Some(Err(SendError::Timeout)));
    assert_eq!(p.now() - start, Duration::from_secs(60));

    let third = p.send(Request::Iq(query)).expect("send");
    p.drive();
    p.server_send(&Node::new("stream:error").attr("code", "503"));
    assert!(p.take_events().contains(&Event::RequestDone {
        id: third,
        result: Err(SendError::Closed(CloseReason::ServiceUnavailable)),
    }));
    assert_eq!(
        p.conn().close_reason().map(CloseReason::should_reconnect),
        Some(true)
    );
}

#[test]
fn login_failure_401_closes_as_logged_out() {
    let mut sandbox = Sandbox::new(7);
    let (p, store) = logged_in(&mut sandbox);
    drop(p);
    let mut again = Pair::new(&mut sandbox, store, Instant::now(), 8);
    again.server_send(
        &Node::new("failure")
            .attr("reason", "401")
            .attr("location", "sim"),
    );
    let reason = again.conn().close_reason().expect("closed").clone();
    assert_eq!(reason, CloseReason::LoggedOut { code: 401 });
    assert!(reason.wipes_credentials());
}

#[test]
fn device_removed_stream_error_logs_out_and_replaced_stops() {
    let mut sandbox = Sandbox::new(8);
    let (mut p, _) = logged_in(&mut sandbox);
    p.server_send(
        &Node::new("stream:error")
            .attr("code", "401")
            .with_children([Node::new("conflict").attr("type", "device_removed")]),
    );
    assert_eq!(
        p.conn().close_reason(),
        Some(&CloseReason::LoggedOut { code: 401 })
    );

    let (mut q, _) = logged_in(&mut sandbox);
    q.server_send(
        &Node::new("stream:error").with_children([Node::new("conflict").attr("type", "replaced")]),
    );
    assert_eq!(q.conn().close_reason(), Some(&CloseReason::Replaced));
    assert!(!CloseReason::Replaced.should_reconnect());
}

#[test]
fn notifications_are_acked_and_passed_up() {
    let mut sandbox = Sandbox::new(9);
    let (mut p, _) = logged_in(&mut sandbox);
    let n = Node::new("notification")
        .attr("from", server_jid())
        .attr("type", "server_sync")
        .attr("id", "777")
        .with_children([Node::new("collection")
            .attr("name", "regular_low")
            .attr("version", "66")]);
    p.server_send(&n);
    let sent = p.take_received();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].tag, "ack");
    assert_eq!(sent[0].get_attr_str("class"), Some("notification"));
    assert_eq!(sent[0].get_attr_str("id"), Some("777"));
    assert_eq!(sent[0].get_attr_str("type"), Some("server_sync"));
    assert_eq!(
        p.take_events(),
        vec![Event::Public(wa_engine::Event::Stanza(n))]
    );

    // The server's urn:xmpp:ping is answered.
    p.server_send(
        &Node::new("iq")
            .attr("from", server_jid())
            .attr("type", "get")
            .attr("xmlns", "urn:xmpp:ping")
            .attr("id", "55"),
    );
    let sent = p.take_received();
    assert_eq!(sent[0].get_attr_str("type"), Some("result"));
    assert_eq!(sent[0].get_attr_str("id"), Some("55"));
}

#[test]
fn wrong_trust_root_is_a_bad_certificate_without_reconnect() {
    let mut sandbox = Sandbox::new(10);
    let other = Sandbox::new(11);
    let store: Arc<MemoryStore> = Arc::new(MemoryStore::new());
    let config = Config {
        trust_root: other.trust_root(),
        unix_time: Duration::from_secs(UNIX_START),
        ..Config::default()
    };
    let now = Instant::now();
    let mut conn = Connection::new(config, store, now);
    let mut server = sandbox.accept();
    while let Some(b) = conn.poll_transmit() {
        server.receive(&b);
    }
    conn.handle_input(now, &server.take_out());
    assert_eq!(
        conn.close_reason(),
        Some(&CloseReason::BadServerCertificate)
    );
    assert!(!CloseReason::BadServerCertificate.should_reconnect());
    assert!(
        conn.poll_transmit().is_none(),
        "no ClientFinish to an unverified server"
    );
}

#[test]
fn phone_code_pairing_derives_the_adv_secret_and_pairs() {
    let mut sandbox = Sandbox::new(12);
    let store: Arc<MemoryStore> = Arc::new(MemoryStore::new());
    let mut rng = StdRng::seed_from_u64(13);
    let phone = Phone::new(&mut rng);
    let mut p = Pair::new(&mut sandbox, store.clone(), Instant::now(), 9);
    p.server_send(&pair_device(&REFS));
    p.take_events();
    p.take_received();

    let req = p
        .send(Request::PairingCode {
            phone: "+1 555 123 4567".into(),
        })
        .expect("pairing code request");
    p.drive();
    let sent = p.take_received();
    let hello = code::parse_companion_hello(&sent[0]).expect("companion_hello");
    assert_eq!(hello.phone, "15551234567");
    assert_eq!(Some(hello.noise_pub), p.server().client_static);
    let hello_id = sent[0].get_attr_str("id").expect("id").to_owned();
    p.server_send(&code::companion_hello_result(&hello_id, b"2@code-ref"));
    let events = p.take_events();
    let shown = events
        .iter()
        .find_map(|e| match e {
            Event::RequestDone {
                id,
                result: Ok(Reply::PairingCode(c)),
            } if *id == req => Some(c.clone()),
            _ => None,
        })
        .expect("pairing code returned");
    assert!(
        events.contains(&Event::Public(wa_engine::Event::PairingCode {
            code: shown.clone()
        }))
    );

    // The user types the code on the phone.
    let typed = code::PairingCode::parse(&shown).expect("code");
    let primary = code::primary_hello(&mut rng, &typed, &hello.wrapped_companion_ephemeral_pub)
        .expect("phone unwraps the companion key");
    p.server_send(&code::primary_hello_notification(
        "9001",
        UNIX_START,
        &primary.wrapped_primary_ephemeral_pub,
        phone.identity.public(),
        b"2@code-ref",
    ));
    let sent = p.take_received();
    assert!(
        sent.iter()
            .any(|n| n.tag == "ack" && n.get_attr_str("id") == Some("9001"))
    );
    let finish_iq = sent
        .iter()
        .find(|n| n.get_attr_str("type") == Some("set"))
        .expect("companion_finish sent");
    let finish = code::parse_companion_finish(finish_iq).expect("companion_finish");
    let phone_identity = x25519_dalek::StaticSecret::from(*phone.identity.private_bytes());
    let done = code::primary_finish(
        &primary.ephemeral,
        &primary.companion_ephemeral_pub,
        &phone_identity,
        &finish.wrapped_key_bundle,
    )
    .expect("phone decrypts the key bundle");
    assert_eq!(
        stored(store.as_ref()).adv_secret_key,
        *done.adv_secret.as_bytes(),
        "new ADV secret stored"
    );

    let (node, details, companion_identity) =
        phone.pair_success_for(&mut rng, &done.companion_identity_pub, &done.adv_secret);
    p.server_send(&node);
    let replies = p.take_received();
    let reply = replies
        .iter()
        .find(|n| n.child_by_tag("pair-device-sign").is_some())
        .expect("reply");
    pair::verify_pair_device_sign(
        reply,
        &details,
        &companion_identity,
        phone.identity.public(),
    )
    .expect("device signature verifies");
    assert!(stored(store.as_ref()).is_paired());
}

/// Issue 13 item 1: typed notifications are acked and reported as `Event::Notification`;
/// unknown types stay raw (`Event::Stanza`).
#[test]
fn typed_notifications_are_acked_and_classified() {
    use wa_engine::notification::{AccountSync, NotificationKind};
    let mut sandbox = Sandbox::new(13);
    let (mut p, _) = logged_in(&mut sandbox);
    let group: wa_engine::Jid = "120363000000000009@g.us".parse().expect("group");
    let added: wa_engine::Jid = "15550001234@s.whatsapp.net".parse().expect("jid");
    let gp2 = Node::new("notification")
        .attr("from", group.clone())
        .attr("type", "w:gp2")
        .attr("id", "g1")
        .attr("t", "1700000000")
        .with_children([
            Node::new("add").with_children([Node::new("participant").attr("jid", added.clone())]),
            Node::new("invite").attr("code", "AbCd"),
        ]);
    p.server_send(&gp2);
    let sent = p.take_received();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].tag, "ack");
    let events = p.take_events();
    let Some(Event::Public(wa_engine::Event::Notification(n))) = events.first() else {
        panic!("expected a typed notification, got {events:?}");
    };
    let NotificationKind::Group(g, x) = &n.kind else {
        panic!("expected a group notification: {n:?}");
    };
    assert_eq!(g.group, group);
    assert_eq!(
        g.changes,
        vec![wa_engine::GroupChange::Added(vec![added])]
            .into_iter()
            .chain([wa_engine::GroupChange::Other("invite".into())])
            .collect::<Vec<_>>()
    );
    assert_eq!(x.invite_code.as_deref(), Some("AbCd"));
    assert_eq!(n.timestamp, Some(1_700_000_000));

    let acct = Node::new("notification")
        .attr("from", server_jid())
        .attr("type", "account_sync")
        .attr("id", "a1")
        .with_children([Node::new("privacy")]);
    p.server_send(&acct);
    p.take_received();
    match p.take_events().first() {
        Some(Event::Public(wa_engine::Event::Notification(n))) => {
            assert_eq!(n.kind, NotificationKind::AccountSync(AccountSync::Privacy));
        }
        other => panic!("expected account_sync: {other:?}"),
    }

    let unknown = Node::new("notification")
        .attr("from", server_jid())
        .attr("type", "brand_new_kind")
        .attr("id", "u1");
    p.server_send(&unknown);
    assert_eq!(p.take_received()[0].tag, "ack");
    assert_eq!(
        p.take_events(),
        vec![Event::Public(wa_engine::Event::Stanza(unknown))]
    );
}

#[test]
fn deferred_persistence_answers_pair_success_only_after_the_credentials_are_durable() {
    let mut sandbox = Sandbox::new(12);
    let store = Arc::new(MemoryStore::new());
    let now = Instant::now();
    let config = Config {
        trust_root: sandbox.trust_root(),
        unix_time: Duration::from_secs(UNIX_START),
        rng_seed: [12; 32],
        persistence: wa_engine::store::Persistence::Deferred,
        ..Config::default()
    };
    let conn = Connection::new(config, store.clone(), now);
    let mut p = Pair {
        sim: Sim::pair(now, 12, conn, sandbox.accept()),
    };
    // The fresh credentials are staged: even the ClientHello waits for them.
    assert!(store.credentials().expect("read").is_none());
    assert!(
        p.server().payload.is_none(),
        "nothing left before the commit"
    );
    let settle = |p: &mut Pair| {
        while let Some(write) = p.sim.client_mut().poll_write() {
            store.apply(write.batch).expect("commit");
            p.sim.client_mut().handle_durable(write.seq);
            p.drive();
        }
    };
    settle(&mut p);
    assert!(p.server().payload.is_some(), "handshake done once durable");
    p.take_events();
    p.server_send(&pair_device(&REFS));
    settle(&mut p);
    let qrs = qr_codes(&p.take_events());
    p.take_received();

    let mut rng = StdRng::seed_from_u64(7);
    let phone = Phone::new(&mut rng);
    let (node, _, _) = phone.pair_success(&mut rng, &qrs[0].0);
    p.server_send(&node);
    assert!(
        p.take_received()
            .iter()
            .all(|n| n.child_by_tag("pair-device-sign").is_none()),
        "no pair-device-sign before the credentials are durable"
    );
    assert!(!stored(store.as_ref()).is_paired());
    settle(&mut p);
    assert!(stored(store.as_ref()).is_paired());
    assert!(
        p.take_received()
            .iter()
            .any(|n| n.child_by_tag("pair-device-sign").is_some()),
        "answered once durable"
    );
}
