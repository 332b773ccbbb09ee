//! LID-first addressing and privacy tokens in the sans-IO `Connection`, against a
//! hand-played server on the test kit's simulated clock: the client scenarios 1-5 and 7-9
//! of shared/protocol/07 §6, with the vectors of `shared/vectors/privacy_tokens/`.
//!
//! 1. cstoken bytes equal the vectors, for a PN recipient mapped to the LID and for a LID
//!    recipient; none without salt, without LID, or with a valid tctoken.
//! 2. Choice order: valid tctoken > cstoken > nothing, expiry at the cutoff.
//! 3. `privacy_token` notifications are stored under the issuer's LID (newer wins).
//! 4. Issuance: once per sender bucket; the result's missing tokens still record `t`.
//! 5. Identity change: re-issue with the stored sender timestamp, only if still valid.
//! 7. 463 → typed error, no re-send, one recovery per peer; timelock → typed error + event.
//! 8. LID wire for a migrated account (`to`, every `<to jid>`, own devices), PN wire
//!    otherwise, sessions under `user_1` either way, PN session moved, not duplicated.
//! 9. Inbound LID message: both identities exposed, mapping stored, receipt to the LID.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng as _;
use serde_json::Value;
use wa_engine::binary::Node;
use wa_engine::conn::{
    Config, Connection, Event, LidWire, Reply, Request, RequestId, SendError, generate_credentials,
};
use wa_engine::privacy::{BucketConfig, TcToken, TokenKind, expiration_cutoff};
use wa_engine::signal::{KeyPair, PreKeyRecord, PrivateKey, SignedPreKeyRecord};
use wa_engine::store::{ProtocolAddress, StoreBatch};
use wa_engine::{Jid, MemoryStore, Store};
use wa_sandbox::sim::Sim;

mod conn_support;
mod signal_support;
use conn_support::{Sandbox, Server, server_jid};

/// Our account: PN device 5, LID device 5.
const OWN_PN: &str = "15550002222:5@s.whatsapp.net";
const OWN_LID: &str = "900000000002222:5@lid";
/// The peer of most scenarios; its LID is the vectors' `salt_0to31_lid` input.
const PEER_PN: &str = "15557654321";
const PEER_LID: &str = "123456789012345";
/// A server time 5 s before a bucket boundary (a Thursday 00:00 UTC): 2811 · 604800.
const BOUNDARY: u64 = 2811 * 604_800;

fn vectors() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors/privacy_tokens/privacy_tokens.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("vector file {} unreadable: {e}", path.display()));
    serde_json::from_str(&text).expect("vector JSON")
}

/// (salt, LID user, cstoken) of a named cstoken vector.
fn cstoken_vector(name: &str) -> (Vec<u8>, String, Vec<u8>) {
    let file = vectors();
    let case = file["cstoken"]
        .as_array()
        .expect("cstoken cases")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("vector {name}"))
        .clone();
    let hex = |f: &str| hex::decode(case[f].as_str().expect(f)).expect("hex");
    let input = case["hmac_input_ascii"].as_str().expect("input");
    let user = input.strip_suffix("@lid").expect("a LID input").to_owned();
    (hex("salt_hex"), user, hex("cstoken_hex"))
}

/// A peer device's keys: answers bundle fetches (the same keys for every device we need).
struct Keys {
    identity: KeyPair,
    spk: SignedPreKeyRecord,
    opk: PreKeyRecord,
}

impl Keys {
    fn new(seed: u8) -> Self {
        let mut rng = rand::rngs::StdRng::from_seed([seed; 32]);
        let identity = KeyPair::from_private(PrivateKey::generate(&mut rng));
        let spk = SignedPreKeyRecord::generate(1, &identity.private, &mut rng);
        let opk = PreKeyRecord::generate(77, &mut rng);
        Self { identity, spk, opk }
    }

    fn bundle_user(&self, jid: &Jid) -> Node {
        let upload =
            wa_engine::prekeys::upload_iq("x", 4321, &self.identity.public, &[], &self.spk);
        let mut children: Vec<Node> = upload
            .children()
            .iter()
            .filter(|c| c.tag != "list")
            .cloned()
            .collect();
        children.push(Node::new("key").with_children([
            Node::new("id").with_bytes(vec![0, 0, 77]),
            Node::new("value").with_bytes(self.opk.key_pair.public.as_bytes().to_vec()),
        ]));
        Node::new("user")
            .attr("jid", jid.clone())
            .with_children(children)
    }
}

/// The client connection and the scripted server, plus what the scripted server answers.
struct Pair {
    sim: Sim<Connection, Server>,
    store: Arc<MemoryStore>,
    keys: Keys,
    /// Device ids per user the usync answer lists (users not listed: device 0 only).
    devices: HashMap<String, Vec<u16>>,
    /// The `<lid val>` the usync answer names per PN user.
    lids: HashMap<String, String>,
    /// Privacy IQs the client sent (answered with an empty result unless held).
    privacy_iqs: Vec<Node>,
    /// Answer privacy IQs at once.
    answer_privacy: bool,
    /// usync queries seen.
    usyncs: usize,
    /// Bundle fetches seen.
    fetches: usize,
}

fn store_with_credentials() -> Arc<MemoryStore> {
    let mut rng = rand::rngs::StdRng::from_seed([3; 32]);
    let mut creds = generate_credentials(&mut rng);
    creds.id = Some(OWN_PN.to_owned());
    creds.lid = Some(OWN_LID.to_owned());
    creds.account = Some(b"device-identity-bytes".to_vec());
    let store = Arc::new(MemoryStore::new());
    let mut batch = StoreBatch::new();
    batch.put_credentials(&creds);
    store.apply(batch).expect("store");
    store
}

impl Pair {
    /// Logged in at server time `t` with `lid_wire`; the `<success>` names our LID.
    fn new(t: u64, lid_wire: LidWire) -> Self {
        Self::with_store(store_with_credentials(), t, lid_wire)
    }

    fn with_store(store: Arc<MemoryStore>, t: u64, lid_wire: LidWire) -> Self {
        let mut sandbox = Sandbox::new(9);
        let now = Instant::now();
        let config = Config {
            trust_root: sandbox.trust_root(),
            unix_time: Duration::from_secs(t),
            rng_seed: [4; 32],
            prekey_batch: 5,
            lid_wire,
            ..Config::default()
        };
        let conn = Connection::new(config, store.clone(), now);
        let mut p = Self {
            sim: Sim::pair(now, 9, conn, sandbox.accept()),
            store,
            keys: Keys::new(7),
            devices: HashMap::new(),
            lids: HashMap::new(),
            privacy_iqs: Vec::new(),
            answer_privacy: true,
            usyncs: 0,
            fetches: 0,
        };
        p.server_send(
            &Node::new("success")
                .attr("t", t.to_string())
                .attr("lid", OWN_LID.parse::<Jid>().expect("lid")),
        );
        for sent in p.take_received() {
            if sent.tag == "iq" {
                let children = if sent.get_attr_str("xmlns") == Some("encrypt") {
                    vec![Node::new("count").attr("value", "50")]
                } else {
                    Vec::new()
                };
                p.result_for(&sent, children);
            }
        }
        p.take_events();
        p
    }

    fn now(&self) -> Instant {
        self.sim.now()
    }

    fn send(&mut self, request: Request) -> Result<RequestId, SendError> {
        let now = self.now();
        self.sim.client_mut().send(now, request)
    }

    fn server_send(&mut self, node: &Node) {
        self.sim.server_mut().send(node);
        self.sim.drive();
    }

    fn take_received(&mut self) -> Vec<Node> {
        self.sim.link_mut(0).take_server_events()
    }

    fn take_events(&mut self) -> Vec<Event> {
        self.sim.link_mut(0).take_client_events()
    }

    fn result_for(&mut self, iq: &Node, children: Vec<Node>) {
        let id = iq.get_attr_str("id").expect("iq id").to_owned();
        let mut r = Node::new("iq")
            .attr("from", server_jid())
            .attr("type", "result")
            .attr("id", id);
        if !children.is_empty() {
            r = r.with_children(children);
        }
        self.server_send(&r);
    }

    /// Answers usync and bundle IQs (and privacy IQs) until a `<message>` leaves; returns it.
    fn pump_until_message(&mut self) -> Node {
        for _ in 0..10 {
            let mut message = None;
            for node in self.take_received() {
                match (node.tag.as_ref(), node.get_attr_str("xmlns")) {
                    ("message", _) => message = Some(node),
                    ("iq", Some("usync")) => {
                        self.usyncs += 1;
                        let answer = self.usync_answer(&node);
                        self.result_for(&node, answer);
                    }
                    ("iq", Some("encrypt")) => {
                        self.fetches += 1;
                        let users: Vec<Jid> = node
                            .child_by_tag("key")
                            .map(|k| {
                                k.children_by_tag("user")
                                    .filter_map(|u| u.get_attr_jid("jid").cloned())
                                    .collect()
                            })
                            .unwrap_or_default();
                        let list = Node::new("list")
                            .with_children(users.iter().map(|u| self.keys.bundle_user(u)));
                        self.result_for(&node, vec![list]);
                    }
                    ("iq", Some("privacy")) => self.on_privacy(node),
                    _ => {}
                }
            }
            if let Some(m) = message {
                return m;
            }
        }
        panic!("no message stanza left the connection");
    }

    fn on_privacy(&mut self, node: Node) {
        if self.answer_privacy {
            self.result_for(&node, Vec::new());
        }
        self.privacy_iqs.push(node);
    }

    /// Forwards any privacy IQs now queued (answering them) and returns how many.
    fn drain_privacy(&mut self) -> usize {
        let before = self.privacy_iqs.len();
        for node in self.take_received() {
            if node.tag == "iq" && node.get_attr_str("xmlns") == Some("privacy") {
                self.on_privacy(node);
            }
        }
        self.privacy_iqs.len() - before
    }

    fn usync_answer(&self, iq: &Node) -> Vec<Node> {
        let asked: Vec<Jid> = iq
            .child_path(&["usync", "list"])
            .map(|l| {
                l.children_by_tag("user")
                    .filter_map(|u| u.get_attr_jid("jid").cloned())
                    .collect()
            })
            .unwrap_or_default();
        let users = asked.iter().map(|u| {
            let devices = self
                .devices
                .get(u.user())
                .cloned()
                .unwrap_or_else(|| vec![0]);
            let mut children = vec![
                Node::new("devices").with_children([Node::new("device-list").with_children(
                    devices
                        .iter()
                        .map(|d| Node::new("device").attr("id", d.to_string())),
                )]),
            ];
            if let Some(lid) = self.lids.get(u.user()) {
                children.push(Node::new("lid").attr("val", Jid::lid(lid.clone())));
            }
            Node::new("user")
                .attr("jid", u.clone())
                .with_children(children)
        });
        vec![Node::new("usync").with_children([Node::new("list").with_children(users)])]
    }

    /// Sends a text to `to`, returns the stanza and the request id (not acked).
    fn send_text(&mut self, to: &Jid, body: &str) -> (Node, RequestId) {
        let req = self
            .send(Request::SendMessage {
                to: to.clone(),
                message: Box::new(wa_engine::message::content::text(body)),
                id: None,
            })
            .expect("send accepted");
        self.sim.drive();
        (self.pump_until_message(), req)
    }

    /// Acks `message` (with `error` if given) and returns the request's outcome.
    fn ack(
        &mut self,
        message: &Node,
        req: RequestId,
        error: Option<&str>,
    ) -> Result<Reply, SendError> {
        let mut ack = Node::new("ack")
            .attr("class", "message")
            .attr("id", message.get_attr_str("id").expect("id").to_owned())
            .attr("from", message.get_attr_jid("to").expect("to").clone())
            .attr("t", "1");
        if let Some(code) = error {
            ack = ack.attr("error", code.to_owned());
        }
        self.server_send(&ack);
        self.take_events()
            .into_iter()
            .find_map(|e| match e {
                Event::RequestDone { id, result } if id == req => Some(result),
                _ => None,
            })
            .expect("request completed")
    }

    fn put(&self, f: impl FnOnce(&mut StoreBatch)) {
        let mut batch = StoreBatch::new();
        f(&mut batch);
        self.store.apply(batch).expect("store");
    }

    fn record(&self, key: &str) -> Option<TcToken> {
        self.store
            .tc_token(key)
            .expect("store")
            .map(|b| TcToken::from_bytes(&b).expect("record"))
    }
}

fn pn(user: &str) -> Jid {
    Jid::pn(user)
}

fn lid(user: &str) -> Jid {
    Jid::lid(user)
}

/// The `<cstoken>` / `<tctoken>` child of a message, as (tag, bytes).
fn token_child(message: &Node) -> Option<(String, Vec<u8>)> {
    let found: Vec<&Node> = message
        .children()
        .iter()
        .filter(|c| c.tag == "tctoken" || c.tag == "cstoken")
        .collect();
    assert!(found.len() <= 1, "never both tokens");
    let last = message.children().last()?;
    found.first().map(|n| {
        assert_eq!(n.tag, last.tag, "the token is the last child");
        (
            n.tag.to_string(),
            n.content_bytes().expect("bytes").to_vec(),
        )
    })
}

fn to_jids(message: &Node) -> Vec<Jid> {
    message
        .child_by_tag("participants")
        .map(|p| {
            p.children_by_tag("to")
                .filter_map(|t| t.get_attr_jid("jid").cloned())
                .collect()
        })
        .unwrap_or_default()
}

// -----------------------------------------------------------------------------------------
// Scenario 1: cstoken bytes

#[test]
fn cstoken_on_the_wire_equals_the_vector_for_pn_and_lid_recipients() {
    let (salt, vector_lid, expected) = cstoken_vector("salt_0to31_lid");
    assert_eq!(vector_lid, PEER_LID);
    let mut p = Pair::new(1_700_000_000, LidWire::Auto);
    p.put(|b| {
        b.put_nct_salt(salt.clone());
    });
    // A PN recipient whose LID the usync answer names.
    p.lids.insert(PEER_PN.into(), PEER_LID.into());
    let (m, req) = p.send_text(&pn(PEER_PN), "first contact");
    assert_eq!(token_child(&m), Some(("cstoken".into(), expected.clone())));
    assert!(matches!(
        p.ack(&m, req, None),
        Ok(Reply::MessageSent { .. })
    ));
    // The same recipient given as a LID.
    let (m, _) = p.send_text(&lid(PEER_LID), "by lid");
    assert_eq!(token_child(&m), Some(("cstoken".into(), expected)));

    // Another vector LID, addressed directly.
    let (_, other_lid, other_expected) = cstoken_vector("salt_0to31_other_lid");
    let (m, _) = p.send_text(&lid(&other_lid), "other");
    assert_eq!(token_child(&m), Some(("cstoken".into(), other_expected)));
}

#[test]
fn no_cstoken_without_salt_or_lid_and_none_when_a_tctoken_is_valid() {
    let mut p = Pair::new(1_700_000_000, LidWire::Auto);
    // No salt: nothing, even with the LID known.
    p.lids.insert(PEER_PN.into(), PEER_LID.into());
    let (m, _) = p.send_text(&pn(PEER_PN), "no salt");
    assert_eq!(token_child(&m), None);
    // Salt, but a PN recipient whose LID the server does not name.
    let (salt, _, _) = cstoken_vector("salt_0to31_lid");
    p.put(|b| {
        b.put_nct_salt(salt);
    });
    let (m, _) = p.send_text(&pn("15550009999"), "no lid");
    assert_eq!(token_child(&m), None);
    // Salt and LID, but a valid tctoken: only the tctoken.
    let record = TcToken {
        token: b"peer-token".to_vec(),
        timestamp: Some(1_700_000_000),
        sender_timestamp: None,
    };
    p.put(|b| {
        b.put_tc_token(&format!("{PEER_LID}@lid"), record.to_bytes());
    });
    let (m, _) = p.send_text(&pn(PEER_PN), "with token");
    assert_eq!(
        token_child(&m),
        Some(("tctoken".into(), b"peer-token".to_vec()))
    );
}

// -----------------------------------------------------------------------------------------
// Scenario 2: choice order and the cutoff

#[test]
fn tctoken_then_cstoken_then_nothing_with_expiry_at_the_cutoff() {
    let now = 1_700_000_000;
    let cutoff = expiration_cutoff(now, BucketConfig::DEFAULT);
    let (salt, _, cst) = cstoken_vector("salt_0to31_lid");
    let key = format!("{PEER_LID}@lid");
    let mut p = Pair::new(now, LidWire::Auto);
    p.lids.insert(PEER_PN.into(), PEER_LID.into());
    let at = |ts: u64| TcToken {
        token: b"tok".to_vec(),
        timestamp: Some(ts),
        sender_timestamp: None,
    };
    // Neither: nothing.
    let (m, _) = p.send_text(&pn(PEER_PN), "none");
    assert_eq!(token_child(&m), None);
    // Timestamp = cutoff: still valid.
    p.put(|b| {
        b.put_tc_token(&key, at(cutoff).to_bytes());
    });
    let (m, _) = p.send_text(&pn(PEER_PN), "at cutoff");
    assert_eq!(token_child(&m), Some(("tctoken".into(), b"tok".to_vec())));
    // Cutoff − 1: expired; without salt nothing, with salt the cstoken.
    p.put(|b| {
        b.put_tc_token(&key, at(cutoff - 1).to_bytes());
    });
    let (m, _) = p.send_text(&pn(PEER_PN), "expired");
    assert_eq!(token_child(&m), None);
    p.put(|b| {
        b.put_nct_salt(salt);
    });
    let (m, _) = p.send_text(&pn(PEER_PN), "expired with salt");
    assert_eq!(token_child(&m), Some(("cstoken".into(), cst)));
}

// -----------------------------------------------------------------------------------------
// Scenario 3: privacy_token notifications

fn privacy_notification(from: Jid, sender_lid: Option<Jid>, tokens: Vec<Node>) -> Node {
    let mut n = Node::new("notification")
        .attr("from", from)
        .attr("type", "privacy_token")
        .attr("id", "N1")
        .attr("t", "1700000000");
    if let Some(l) = sender_lid {
        n = n.attr("sender_lid", l);
    }
    n.with_children([Node::new("tokens").with_children(tokens)])
}

fn token_node(kind: &'static str, t: Option<&str>, bytes: &[u8]) -> Node {
    let mut n = Node::new("token")
        .attr("jid", OWN_PN.parse::<Jid>().expect("own").to_non_ad())
        .attr("type", kind);
    if let Some(t) = t {
        n = n.attr("t", t.to_owned());
    }
    n.with_bytes(bytes.to_vec())
}

#[test]
fn privacy_token_notifications_are_stored_under_the_issuers_lid_newer_wins() {
    let mut p = Pair::new(1_700_000_000, LidWire::Auto);
    let key = format!("{PEER_LID}@lid");
    // With sender_lid: stored under it; the PN ⇄ LID pair is learned; the notification acked.
    p.server_send(&privacy_notification(
        pn(PEER_PN),
        Some(lid(PEER_LID)),
        vec![token_node("trusted_contact", Some("1700000000"), b"one")],
    ));
    let acks: Vec<Node> = p
        .take_received()
        .into_iter()
        .filter(|n| n.tag == "ack")
        .collect();
    assert_eq!(acks.len(), 1, "the notification is acked");
    assert_eq!(acks[0].get_attr_str("class"), Some("notification"));
    let stored = p.record(&key).expect("stored under the LID");
    assert_eq!(stored.token, b"one");
    assert_eq!(stored.timestamp, Some(1_700_000_000));
    assert_eq!(p.record(&format!("{PEER_PN}@s.whatsapp.net")), None);
    assert_eq!(
        p.store.lid_for_pn(PEER_PN).expect("store").as_deref(),
        Some(PEER_LID)
    );
    // Without sender_lid, from the PN whose LID is now known: the same key. Older t ignored.
    p.server_send(&privacy_notification(
        pn(PEER_PN),
        None,
        vec![token_node("trusted_contact", Some("1699999999"), b"older")],
    ));
    assert_eq!(p.record(&key).expect("kept").token, b"one");
    // type="other" and a token without t are ignored.
    p.server_send(&privacy_notification(
        pn(PEER_PN),
        None,
        vec![
            token_node("other", Some("1700000500"), b"other"),
            token_node("trusted_contact", None, b"no-t"),
        ],
    ));
    assert_eq!(p.record(&key).expect("kept").token, b"one");
    // Newer from the LID itself: replaces; token@jid (our own JID) does not change the key.
    p.server_send(&privacy_notification(
        lid(PEER_LID),
        None,
        vec![token_node("trusted_contact", Some("1700000100"), b"two")],
    ));
    let stored = p.record(&key).expect("replaced");
    assert_eq!(stored.token, b"two");
    assert_eq!(p.store.tc_token_jids().expect("store"), vec![key]);
    // The received token goes on the next send to that peer.
    p.lids.insert(PEER_PN.into(), PEER_LID.into());
    let (m, _) = p.send_text(&pn(PEER_PN), "reply");
    assert_eq!(token_child(&m), Some(("tctoken".into(), b"two".to_vec())));
}

// -----------------------------------------------------------------------------------------
// Scenario 4: issuance rate limit

#[test]
fn one_issuance_per_bucket_and_the_sender_timestamp_is_recorded() {
    let t0 = BOUNDARY - 5;
    let mut p = Pair::new(t0, LidWire::Auto);
    p.lids.insert(PEER_PN.into(), PEER_LID.into());
    let (m, req) = p.send_text(&pn(PEER_PN), "one");
    assert!(p.privacy_iqs.is_empty(), "nothing issued before the ack");
    assert!(p.ack(&m, req, None).is_ok());
    assert_eq!(p.drain_privacy(), 1);
    let iq = &p.privacy_iqs[0];
    assert_eq!(iq.get_attr_str("type"), Some("set"));
    let token = iq.child_path(&["tokens", "token"]).expect("token");
    assert_eq!(
        token.get_attr_jid("jid"),
        Some(&lid(PEER_LID)),
        "issued to the LID"
    );
    assert_eq!(token.get_attr_str("type"), Some("trusted_contact"));
    let t: u64 = token.get_attr_str("t").expect("t").parse().expect("t");
    assert!((t0..BOUNDARY).contains(&t));
    // The result carried no token, yet the sender timestamp is recorded (placeholder row).
    let record = p.record(&format!("{PEER_LID}@lid")).expect("placeholder");
    assert_eq!(record.sender_timestamp, Some(t));
    assert!(record.token.is_empty());
    // Same bucket: no second IQ.
    let (m, req) = p.send_text(&pn(PEER_PN), "two");
    assert!(p.ack(&m, req, None).is_ok());
    assert_eq!(p.drain_privacy(), 0);
    // Past the Thursday 00:00 UTC boundary: a new bucket, a second IQ.
    p.sim.advance(Duration::from_secs(8));
    let (m, req) = p.send_text(&pn(PEER_PN), "three");
    assert!(p.ack(&m, req, None).is_ok());
    assert_eq!(p.drain_privacy(), 1);
    let t2: u64 = p.privacy_iqs[1]
        .child_path(&["tokens", "token"])
        .and_then(|t| t.get_attr_str("t"))
        .expect("t")
        .parse()
        .expect("t");
    assert!(t2 >= BOUNDARY);
    assert_eq!(
        p.record(&format!("{PEER_LID}@lid"))
            .expect("row")
            .sender_timestamp,
        Some(t2)
    );
}

// -----------------------------------------------------------------------------------------
// Scenario 5: identity change

fn identity_notification(from: Jid) -> Node {
    Node::new("notification")
        .attr("from", from)
        .attr("type", "encrypt")
        .attr("id", "E1")
        .attr("t", "1700000000")
        .with_children([Node::new("identity")])
}

#[test]
fn identity_change_reissues_with_the_stored_sender_timestamp_only_if_valid() {
    let now = 1_700_000_000;
    let mut p = Pair::new(now, LidWire::Auto);
    p.answer_privacy = false;
    let key = format!("{PEER_LID}@lid");
    p.put(|b| {
        b.put_lid_mapping(PEER_PN, PEER_LID);
    });
    // No record: nothing.
    p.server_send(&identity_notification(pn(PEER_PN)));
    assert_eq!(p.drain_privacy(), 0);
    // An expired sender timestamp: nothing.
    let cutoff = expiration_cutoff(now, BucketConfig::DEFAULT);
    let rec = |ts| TcToken {
        token: Vec::new(),
        timestamp: None,
        sender_timestamp: Some(ts),
    };
    p.put(|b| {
        b.put_tc_token(&key, rec(cutoff - 1).to_bytes());
    });
    p.server_send(&identity_notification(pn(PEER_PN)));
    assert_eq!(p.drain_privacy(), 0);
    // A valid one: exactly one IQ with t = the stored value (not now).
    let stored = now - 86_400;
    p.put(|b| {
        b.put_tc_token(&key, rec(stored).to_bytes());
    });
    p.server_send(&identity_notification(lid(PEER_LID)));
    assert_eq!(p.drain_privacy(), 1);
    let token = p.privacy_iqs[0]
        .child_path(&["tokens", "token"])
        .expect("token");
    assert_eq!(token.get_attr_str("t"), Some(stored.to_string().as_str()));
    assert_eq!(token.get_attr_jid("jid"), Some(&lid(PEER_LID)));
}

// -----------------------------------------------------------------------------------------
// Scenario 7: 463

fn mex_timelock(active: bool, ends: u64) -> Node {
    let json = format!(
        r#"{{"data":{{"xwa2_notify_account_reachout_timelock":{{"is_active":{active},"enforcement_type":"DEFAULT","time_enforcement_ends":"{ends}"}}}}}}"#
    );
    Node::new("notification")
        .attr("from", server_jid())
        .attr("type", "mex")
        .attr("id", "M1")
        .attr("t", "1700000000")
        .with_children([Node::new("update")
            .attr("op_name", "NotificationUserReachoutTimelockUpdate")
            .with_bytes(json.into_bytes())])
}

#[test]
fn error_463_is_typed_not_resent_and_recovers_once_per_peer() {
    let mut p = Pair::new(1_700_000_000, LidWire::Auto);
    p.answer_privacy = false;
    p.lids.insert(PEER_PN.into(), PEER_LID.into());
    let (m, req) = p.send_text(&pn(PEER_PN), "cold");
    let result = p.ack(&m, req, Some("463"));
    assert_eq!(
        result,
        Err(SendError::RecipientRequiresToken {
            to: pn(PEER_PN),
            attached: None,
        })
    );
    let text = result.unwrap_err().to_string();
    assert!(text.contains("463") && text.contains("message this account first"));
    // No re-send; one recovery issuance, still in flight.
    let out = p.take_received();
    assert!(
        out.iter().all(|n| n.tag != "message"),
        "the message is not re-sent"
    );
    let privacy: Vec<&Node> = out
        .iter()
        .filter(|n| n.get_attr_str("xmlns") == Some("privacy"))
        .collect();
    assert_eq!(privacy.len(), 1);
    // A second 463 for the same peer while the recovery is in flight: no new IQ.
    let (salt, _, _) = cstoken_vector("salt_0to31_lid");
    p.put(|b| {
        b.put_nct_salt(salt);
    });
    let (m, req) = p.send_text(&pn(PEER_PN), "again");
    assert_eq!(
        p.ack(&m, req, Some("463")),
        Err(SendError::RecipientRequiresToken {
            to: pn(PEER_PN),
            attached: Some(TokenKind::CsToken),
        })
    );
    assert!(
        p.take_received()
            .iter()
            .all(|n| n.tag != "message" && n.get_attr_str("xmlns") != Some("privacy"))
    );

    // A timelock: the event carries the end, the 463 becomes ReachoutTimelocked.
    let ends = 1_700_086_400;
    p.server_send(&mex_timelock(true, ends));
    let events = p.take_events();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Public(wa_engine::Event::ReachoutTimelock(lock))
            if lock.is_active && lock.ends == Some(ends)
    )));
    let (m, req) = p.send_text(&pn("15550001234"), "new chat under lock");
    assert_eq!(
        p.ack(&m, req, Some("463")),
        Err(SendError::ReachoutTimelocked {
            to: pn("15550001234"),
            until: ends,
        })
    );
    // 475: capped.
    let (m, req) = p.send_text(&pn("15550001235"), "capped");
    assert_eq!(
        p.ack(&m, req, Some("475")),
        Err(SendError::NewChatsCapped {
            to: pn("15550001235")
        })
    );
    // Lifted: a 463 is a token problem again.
    p.server_send(&mex_timelock(false, 0));
    let (m, req) = p.send_text(&pn("15550001236"), "after");
    assert!(matches!(
        p.ack(&m, req, Some("463")),
        Err(SendError::RecipientRequiresToken { .. })
    ));
}

// -----------------------------------------------------------------------------------------
// Scenario 8: LID addressing

#[test]
fn migrated_account_sends_everything_in_the_lid_namespace_with_lid_sessions() {
    let mut p = Pair::new(1_700_000_000, LidWire::Always);
    p.lids.insert(PEER_PN.into(), PEER_LID.into());
    // Our account has another device (3).
    p.devices.insert("15550002222".into(), vec![3, 5]);
    p.devices.insert(PEER_LID.into(), vec![0, 2]);
    p.devices.insert(PEER_PN.into(), vec![0, 2]);
    let (m, _) = p.send_text(&pn(PEER_PN), "hello");
    assert_eq!(m.get_attr_jid("to"), Some(&lid(PEER_LID)));
    assert_eq!(
        m.get_attr_jid("peer_recipient_pn"),
        Some(&pn(PEER_PN)),
        "whatsmeow names the PN"
    );
    let tos = to_jids(&m);
    assert_eq!(
        tos,
        vec![
            lid(PEER_LID),
            lid(PEER_LID).with_device(2),
            lid("900000000002222").with_device(3),
        ]
    );
    assert!(
        tos.iter().all(Jid::is_lid),
        "one namespace for the whole stanza"
    );
    // Sessions under `user_1`, none under the PN.
    assert_eq!(
        p.store
            .session_devices(&format!("{PEER_LID}_1"))
            .expect("store"),
        vec![0, 2]
    );
    assert!(p.store.session_devices(PEER_PN).expect("store").is_empty());
    assert_eq!(
        p.store.session_devices("900000000002222_1").expect("store"),
        vec![3]
    );
}

#[test]
fn unmigrated_account_sends_on_the_pn_but_keys_sessions_by_lid() {
    let mut p = Pair::new(1_700_000_000, LidWire::Auto);
    p.lids.insert(PEER_PN.into(), PEER_LID.into());
    let (m, _) = p.send_text(&pn(PEER_PN), "hello");
    assert_eq!(m.get_attr_jid("to"), Some(&pn(PEER_PN)));
    assert!(m.get_attr("peer_recipient_pn").is_none());
    assert!(to_jids(&m).iter().all(Jid::is_pn));
    assert_eq!(
        p.store
            .session_devices(&format!("{PEER_LID}_1"))
            .expect("store"),
        vec![0]
    );
    assert!(p.store.session_devices(PEER_PN).expect("store").is_empty());
}

#[test]
fn an_existing_pn_session_is_moved_to_the_lid_not_duplicated() {
    let mut p = Pair::new(1_700_000_000, LidWire::Auto);
    p.devices.insert("15550002222".into(), vec![5]);
    // First send: the server names no LID, so the session is a PN session.
    let (m, _) = p.send_text(&pn(PEER_PN), "before");
    assert_eq!(to_jids(&m), vec![pn(PEER_PN)]);
    let pn_address = ProtocolAddress::new(PEER_PN, 0);
    let before = p
        .store
        .session(&pn_address)
        .expect("store")
        .expect("PN session");
    assert_eq!(p.fetches, 1);
    // The LID becomes known (here from a privacy_token notification's sender_lid).
    p.server_send(&privacy_notification(
        pn(PEER_PN),
        Some(lid(PEER_LID)),
        vec![token_node("trusted_contact", Some("1700000000"), b"t")],
    ));
    let (m, _) = p.send_text(&pn(PEER_PN), "after");
    assert_eq!(p.fetches, 1, "no new bundle: the session moved");
    assert_eq!(
        m.child_path(&["participants", "to", "enc"])
            .and_then(|e| e.get_attr_str("type")),
        Some("pkmsg"),
        "the same (unanswered) session continues"
    );
    assert!(p.store.session(&pn_address).expect("store").is_none());
    let moved = p
        .store
        .session(&ProtocolAddress::new(format!("{PEER_LID}_1"), 0))
        .expect("store")
        .expect("LID session");
    assert_ne!(moved, before, "the ratchet advanced on the moved session");
    assert!(p.store.session_devices(PEER_PN).expect("store").is_empty());
}

// -----------------------------------------------------------------------------------------
// Scenario 9: inbound LID message

#[test]
fn inbound_lid_message_exposes_both_identities_stores_the_map_and_receipts_the_lid() {
    // A peer encrypts a pkmsg for our device with our published keys.
    let store = store_with_credentials();
    let creds = store.credentials().expect("store").expect("creds");
    let mut rng = rand::rngs::StdRng::from_seed([5; 32]);
    let our_opk = PreKeyRecord::generate(31, &mut rng);
    let mut batch = StoreBatch::new();
    batch.put_prekey(31, our_opk.to_bytes());
    store.apply(batch).expect("store");
    let mut p = Pair::with_store(store, 1_700_000_000, LidWire::Auto);

    let peer_store = MemoryStore::new();
    let peer = Keys::new(11);
    signal_support::install(&peer_store, &peer.identity, 999, &peer.spk, &[]);
    let identity = KeyPair::from(&creds.identity_key);
    let spk = SignedPreKeyRecord::from(&creds.signed_prekey);
    let bundle = wa_engine::signal::PreKeyBundle {
        registration_id: creds.registration_id,
        prekey: Some((31, our_opk.key_pair.public)),
        signed_prekey_id: spk.id,
        signed_prekey: spk.key_pair.public,
        signed_prekey_signature: spk.signature,
        identity_key: identity.public,
    };
    let ours = ProtocolAddress::new("900000000002222_1", 5);
    wa_engine::signal::process_prekey_bundle(
        &peer_store,
        &ours,
        &bundle,
        wa_engine::signal::TrustPolicy::AutoTrust,
        &mut rng,
    )
    .expect("bundle");
    let body = wa_engine::message::content::text("from a lid");
    let padded = wa_engine::message::pad::pad(prost::Message::encode_to_vec(&body), &mut rng);
    let (kind, ct) = wa_engine::signal::encrypt(&peer_store, &ours, &padded).expect("encrypt");
    assert_eq!(kind.as_str(), "pkmsg");
    let from = lid(PEER_LID).with_device(2);
    p.server_send(
        &Node::new("message")
            .attr("from", from.clone())
            .attr("sender_pn", pn(PEER_PN))
            .attr("id", "LIDMSG1")
            .attr("type", "text")
            .attr("t", "1700000001")
            .with_children([Node::new("enc")
                .attr("v", "2")
                .attr("type", "pkmsg")
                .with_bytes(ct)]),
    );
    let message = p
        .take_events()
        .into_iter()
        .find_map(|e| match e {
            Event::Public(wa_engine::Event::Message(m)) => Some(m),
            _ => None,
        })
        .expect("decrypted");
    assert_eq!(message.text(), Some("from a lid"));
    assert_eq!(message.info.sender, from);
    assert_eq!(message.info.sender_lid, Some(lid(PEER_LID)));
    assert_eq!(message.info.sender_pn, Some(pn(PEER_PN)));
    assert_eq!(message.info.chat, lid(PEER_LID));
    assert_eq!(message.info.chat_pn(), Some(&pn(PEER_PN)));
    assert_eq!(
        p.store.lid_for_pn(PEER_PN).expect("store").as_deref(),
        Some(PEER_LID)
    );
    assert_eq!(
        p.store
            .session_devices(&format!("{PEER_LID}_1"))
            .expect("store"),
        vec![2]
    );
    let receipt = p
        .take_received()
        .into_iter()
        .find(|n| n.tag == "receipt")
        .expect("delivery receipt");
    assert_eq!(
        receipt.get_attr_jid("to"),
        Some(&from),
        "receipt to the LID device"
    );
}

#[test]
fn refresh_lid_on_an_ack_requeries_the_peer_and_takes_the_new_lid() {
    let mut p = Pair::new(1_700_000_000, LidWire::Always);
    p.devices.insert("15550002222".into(), vec![5]);
    p.lids.insert(PEER_PN.into(), PEER_LID.into());
    let (m, req) = p.send_text(&pn(PEER_PN), "one");
    assert_eq!(m.get_attr_jid("to"), Some(&lid(PEER_LID)));
    assert_eq!(p.usyncs, 1);
    // The server says our LID for the peer is outdated.
    let ack = Node::new("ack")
        .attr("class", "message")
        .attr("id", m.get_attr_str("id").expect("id").to_owned())
        .attr("from", lid(PEER_LID))
        .attr("refresh_lid", "true");
    p.server_send(&ack);
    assert!(p.take_events().iter().any(|e| matches!(
        e,
        Event::RequestDone { id, result: Ok(_) } if *id == req
    )));
    p.lids.insert(PEER_PN.into(), "123456789099999".into());
    let (m, _) = p.send_text(&pn(PEER_PN), "two");
    assert_eq!(p.usyncs, 2, "asked again");
    assert_eq!(m.get_attr_jid("to"), Some(&lid("123456789099999")));
    assert_eq!(
        p.store.lid_for_pn(PEER_PN).expect("store").as_deref(),
        Some("123456789099999")
    );
}

#[test]
fn login_prunes_dead_records_and_keeps_a_live_sender_timestamp() {
    let now = 1_700_000_000;
    let cutoff = expiration_cutoff(now, BucketConfig::DEFAULT);
    let store = store_with_credentials();
    let rec = |token: &[u8], ts: Option<u64>, sender: Option<u64>| TcToken {
        token: token.to_vec(),
        timestamp: ts,
        sender_timestamp: sender,
    };
    let mut batch = StoreBatch::new();
    batch
        .put_tc_token(
            "1@lid",
            rec(b"dead", Some(cutoff - 1), Some(cutoff - 1)).to_bytes(),
        )
        .put_tc_token(
            "2@lid",
            rec(b"expired", Some(cutoff - 1), Some(now)).to_bytes(),
        )
        .put_tc_token("3@lid", rec(b"live", Some(now), None).to_bytes());
    store.apply(batch).expect("store");
    let p = Pair::with_store(store, now, LidWire::Auto);
    assert_eq!(p.record("1@lid"), None, "token and sender state expired");
    assert_eq!(
        p.record("2@lid"),
        Some(rec(b"", Some(cutoff - 1), Some(now))),
        "kept as a placeholder for the issuance rate limit"
    );
    assert_eq!(p.record("3@lid"), Some(rec(b"live", Some(now), None)));
}
