//! Messaging in the sans-IO `Connection`, in virtual time against a hand-played server:
//! receiving the recorded Baileys pkmsg (shared/vectors/signal), receipts and acks after
//! processing, retry receipts, prekey upload, and the send pipeline (usync -> bundle ->
//! encrypted fan-out -> server ack) checked by decrypting what left the connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message as _;
use wa_engine::binary::{self, Node};
use wa_engine::conn::{
    Config, Connection, Event, MessageStatus, Reply, Request, RequestId, SendError,
    UndecryptableReason,
};
use wa_engine::signal::{self, KeyPair, PreKeyRecord, PrivateKey, SignedPreKeyRecord, TrustPolicy};
use wa_engine::store::{Credentials, Persistence, ProtocolAddress, StoreBatch};
use wa_engine::{Jid, MemoryStore, Store};
use wa_proto::wa;
use wa_sandbox::sim::Sim;

mod conn_support;
mod signal_support;
use conn_support::{Sandbox, Server, UNIX_START, server_jid};
use signal_support::{load_json, pair, unhex};

const BOB: &str = "15550002222:5@s.whatsapp.net";

/// Client connection + scripted server on the test kit's simulated clock (`wa_sandbox::sim`).
struct Pair {
    sim: Sim<Connection, Server>,
}

impl Pair {
    fn now(&self) -> Instant {
        self.sim.now()
    }

    /// `Connection::send` at the current instant.
    fn send(&mut self, request: Request) -> Result<RequestId, SendError> {
        let now = self.now();
        self.sim.client_mut().send(now, request)
    }

    fn drive(&mut self) {
        self.sim.drive();
    }

    fn server_send(&mut self, node: &Node) {
        self.sim.server_mut().send(node);
        self.drive();
    }

    /// Nodes the server received, in order.
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
}

/// Bob of the recorded session, paired as device 5: the store holds the vector's keys.
fn bob_store() -> Arc<MemoryStore> {
    let v = load_json("signal/sessions.json");
    let bob = &v["scenarios"][0]["bob"];
    let identity = pair(
        bob["identity_key"]["private"].as_str().unwrap(),
        bob["identity_key"]["public"].as_str().unwrap(),
    );
    let spk = SignedPreKeyRecord {
        id: bob["signed_prekey"]["id"].as_u64().unwrap() as u32,
        key_pair: pair(
            bob["signed_prekey"]["private"].as_str().unwrap(),
            bob["signed_prekey"]["public"].as_str().unwrap(),
        ),
        signature: unhex(bob["signed_prekey"]["signature"].as_str().unwrap())
            .try_into()
            .unwrap(),
    };
    let mut creds = Credentials::new(
        wa_engine::store::KeyPair::new([0x11; 32], [0x22; 32]),
        (&identity).into(),
        bob["registration_id"].as_u64().unwrap() as u32,
        (&spk).into(),
        [0x33; 32],
    );
    creds.id = Some(BOB.to_owned());
    creds.account = Some(b"device-identity-bytes".to_vec());
    let store = Arc::new(MemoryStore::new());
    let mut batch = StoreBatch::new();
    batch.put_credentials(&creds);
    let mut next_id = 1;
    for pk in bob["one_time_prekeys"].as_array().unwrap() {
        let rec = PreKeyRecord {
            id: pk["id"].as_u64().unwrap() as u32,
            key_pair: pair(
                pk["private"].as_str().unwrap(),
                pk["public"].as_str().unwrap(),
            ),
        };
        next_id = next_id.max(rec.id + 1);
        batch.put_prekey(rec.id, rec.to_bytes());
    }
    // As if these were generated and uploaded by this device.
    batch.put_prekey_counters(wa_engine::store::PreKeyCounters {
        next_id,
        first_unuploaded_id: next_id,
    });
    store.apply(batch).unwrap();
    store
}

/// A logged-in connection over `store`; the count IQ is answered with `count`.
fn logged_in(store: Arc<dyn Store>, count: u32, prekey_batch: u32) -> Pair {
    logged_in_with(store, count, prekey_batch, Persistence::Inline)
}

/// [`logged_in`] with a choice of persistence; with `Persistence::Deferred` every staged
/// write is made durable in `store` after each step (as a driver would).
fn logged_in_with(
    store: Arc<dyn Store>,
    count: u32,
    prekey_batch: u32,
    persistence: Persistence,
) -> Pair {
    let mut sandbox = Sandbox::new(9);
    let now = Instant::now();
    let config = Config {
        trust_root: sandbox.trust_root(),
        unix_time: Duration::from_secs(UNIX_START),
        rng_seed: [4; 32],
        prekey_batch,
        persistence,
        ..Config::default()
    };
    let conn = Connection::new(config, store.clone(), now);
    let mut p = Pair {
        sim: Sim::pair(now, 9, conn, sandbox.accept()),
    };
    settle(&mut p, store.as_ref());
    p.server_send(&Node::new("success").attr("t", UNIX_START.to_string()));
    settle(&mut p, store.as_ref());
    for sent in p.take_received() {
        if sent.tag == "iq" {
            let children = if sent.get_attr_str("xmlns") == Some("encrypt") {
                vec![Node::new("count").attr("value", count.to_string())]
            } else {
                Vec::new()
            };
            p.result_for(&sent, children);
            settle(&mut p, store.as_ref());
        }
    }
    p
}

fn delivered_stanza() -> Node {
    let v = load_json("signal/sessions.json");
    let hex = v["scenarios"][0]["delivered_stanzas"][0]["hex"]
        .as_str()
        .unwrap();
    binary::decode(&unhex(hex)).expect("delivered stanza decodes")
}

#[test]
fn recorded_baileys_pkmsg_is_decrypted_then_receipted_then_acked() {
    let mut p = logged_in(bob_store(), 50, 30);
    p.take_received();
    p.take_events();
    let stanza = delivered_stanza();
    p.server_send(&stanza);

    let events = p.take_events();
    let msg = events
        .iter()
        .find_map(|e| match e {
            Event::Public(wa_engine::Event::Message(m)) => Some(m.clone()),
            _ => None,
        })
        .expect("message event");
    assert_eq!(msg.text(), Some("Hello Bob, this is Alice."));
    assert_eq!(msg.info.sender.to_string(), "15550001111:2@s.whatsapp.net");
    assert_eq!(msg.info.chat.to_string(), "15550001111@s.whatsapp.net");
    assert_eq!(msg.info.push_name.as_deref(), Some("Alice"));
    assert_eq!(msg.info.id, "3EB0A0B1C2DEADBEEF0123");
    assert_eq!(msg.info.timestamp, 1_700_000_000);

    // The receipt, then the ack; nothing was sent for the message before it was processed.
    let out = p.take_received();
    let tags: Vec<&str> = out.iter().map(|n| n.tag.as_ref()).collect();
    assert_eq!(tags, ["receipt", "ack"], "{out:?}");
    assert_eq!(out[0].get_attr_str("id"), Some("3EB0A0B1C2DEADBEEF0123"));
    assert_eq!(
        out[0]
            .get_attr_jid("to")
            .map(ToString::to_string)
            .as_deref(),
        Some("15550001111:2@s.whatsapp.net")
    );
    assert!(out[0].get_attr("type").is_none());
    assert_eq!(out[1].get_attr_str("class"), Some("message"));
    assert!(out[1].get_attr("error").is_none());

    // Delivered again (e.g. the ack was lost): no second event, receipt and ack again.
    p.server_send(&stanza);
    assert!(
        !p.take_events()
            .iter()
            .any(|e| matches!(e, Event::Public(wa_engine::Event::Message(_))))
    );
    let tags: Vec<String> = p
        .take_received()
        .iter()
        .map(|n| n.tag.to_string())
        .collect();
    assert_eq!(tags, ["receipt", "ack"]);
}

#[test]
fn undecryptable_message_is_reported_and_answered_with_a_retry_receipt_with_keys() {
    let store = bob_store();
    let mut p = logged_in(store.clone(), 50, 30);
    p.take_received();
    p.take_events();
    let mut stanza = delivered_stanza();
    // A `msg` from a device we have no session with.
    stanza.attrs.insert("id", "BROKEN1");
    if let wa_engine::binary::Content::Nodes(children) = &mut stanza.content {
        children[0].attrs.insert("type", "msg");
    }
    p.server_send(&stanza);
    let events = p.take_events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Public(wa_engine::Event::UndecryptableMessage { info, reason: UndecryptableReason::NoSession | UndecryptableReason::InvalidMessage, retry_count: 1 }) if info.id == "BROKEN1"
        )),
        "{events:?}"
    );
    let out = p.take_received();
    assert_eq!(out.len(), 2, "{out:?}");
    let retry = &out[0];
    assert_eq!(retry.tag, "receipt");
    assert_eq!(retry.get_attr_str("type"), Some("retry"));
    let r = retry.child_by_tag("retry").expect("<retry>");
    assert_eq!(r.get_attr_str("count"), Some("1"));
    assert_eq!(r.get_attr_str("id"), Some("BROKEN1"));
    assert_eq!(
        retry
            .child_by_tag("registration")
            .and_then(Node::content_bytes),
        Some(&1234_u32.to_be_bytes()[..])
    );
    if let Some(keys) = retry.child_by_tag("keys") {
        // The fresh prekey in the receipt is stored.
        let bundle = wa_engine::prekeys::parse_bundle(keys, Some(1234)).expect("keys parse");
        let (id, key) = bundle.prekey.expect("one-time prekey");
        let stored = PreKeyRecord::from_bytes(&store.prekey(id).unwrap().expect("stored")).unwrap();
        assert_eq!(stored.key_pair.public, key);
        assert!(bundle.verify_signature());
    }
    assert_eq!(out[1].tag, "ack");
}

#[test]
fn low_prekey_count_uploads_a_batch_stored_before_it_leaves() {
    let store = bob_store();
    let mut p = logged_in(store.clone(), 50, 30);
    let _ = p.take_received();
    // A prekey-low notification from the server.
    p.server_send(
        &Node::new("notification")
            .attr("from", server_jid())
            .attr("type", "encrypt")
            .attr("id", "n1")
            .attr("t", UNIX_START.to_string())
            .with_children([Node::new("count").attr("value", "2")]),
    );
    let out = p.take_received();
    let upload = out
        .iter()
        .find(|n| n.tag == "iq" && n.get_attr_str("xmlns") == Some("encrypt"))
        .expect("upload IQ");
    let list = upload.child_by_tag("list").expect("<list>");
    let keys: Vec<&Node> = list.children_by_tag("key").collect();
    assert_eq!(keys.len(), 30);
    for key in keys {
        let id_bytes = key
            .child_by_tag("id")
            .and_then(Node::content_bytes)
            .unwrap();
        let id = u32::from_be_bytes([0, id_bytes[0], id_bytes[1], id_bytes[2]]);
        let stored =
            PreKeyRecord::from_bytes(&store.prekey(id).unwrap().expect("stored before upload"))
                .unwrap();
        assert_eq!(
            key.child_by_tag("value").and_then(Node::content_bytes),
            Some(&stored.key_pair.public.as_bytes()[..])
        );
    }
    assert!(upload.child_by_tag("skey").is_some());
    let before = store.prekey_counters().unwrap().unwrap_or_default();
    assert_ne!(before.first_unuploaded_id, before.next_id);
    p.result_for(upload, Vec::new());
    let after = store.prekey_counters().unwrap().unwrap();
    assert_eq!(after.first_unuploaded_id, after.next_id);
}

/// A peer device with a real store, to decrypt what our connection sends.
struct Peer {
    store: MemoryStore,
    identity: KeyPair,
    spk: SignedPreKeyRecord,
    opk: PreKeyRecord,
}

impl Peer {
    fn new(seed: u8) -> Self {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_seed([seed; 32]);
        let identity = KeyPair::from_private(PrivateKey::generate(&mut rng));
        let spk = SignedPreKeyRecord::generate(1, &identity.private, &mut rng);
        let opk = PreKeyRecord::generate(77, &mut rng);
        let store = MemoryStore::new();
        signal_support::install(&store, &identity, 4321, &spk, std::slice::from_ref(&opk));
        Self {
            store,
            identity,
            spk,
            opk,
        }
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

    fn decrypt(&self, from: &Jid, kind: &str, ct: &[u8]) -> wa::Message {
        let address = ProtocolAddress::new(from.user(), u32::from(from.device()));
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_seed([1; 32]);
        let padded = match kind {
            "pkmsg" => {
                signal::decrypt_pkmsg(&self.store, &address, ct, TrustPolicy::AutoTrust, &mut rng)
                    .unwrap()
                    .plaintext
            }
            _ => signal::decrypt_msg(&self.store, &address, ct, &mut rng).unwrap(),
        };
        wa::Message::decode(wa_engine::message::pad::unpad(&padded).unwrap()).unwrap()
    }
}

fn usync_result(users: &[(&str, &[u16])]) -> Vec<Node> {
    vec![
        Node::new("usync").with_children([Node::new("list").with_children(users.iter().map(
            |(u, devices)| {
                Node::new("user")
                    .attr("jid", u.parse::<Jid>().unwrap())
                    .with_children(
                        [Node::new("devices").with_children([Node::new("device-list")
                            .with_children(
                                devices
                                    .iter()
                                    .map(|d| Node::new("device").attr("id", d.to_string())),
                            )])],
                    )
            },
        ))]),
    ]
}

#[test]
fn send_fetches_devices_and_bundles_encrypts_for_each_device_and_waits_for_the_ack() {
    let store = bob_store();
    let mut p = logged_in(store.clone(), 50, 30);
    p.take_received();
    p.take_events();
    let carol = Peer::new(7);
    let bob_other = Peer::new(8);
    let carol_user: Jid = "15550003333@s.whatsapp.net".parse().unwrap();
    let carol_dev: Jid = "15550003333:2@s.whatsapp.net".parse().unwrap();
    let bob_dev3: Jid = "15550002222:3@s.whatsapp.net".parse().unwrap();

    let req = p
        .send(Request::SendMessage {
            to: carol_user.clone(),
            message: Box::new(wa_engine::message::content::text("hi carol")),
            id: Some("3EB0TEST".into()),
        })
        .unwrap();
    p.drive();
    // 1. usync for carol and ourselves.
    let usync = p.take_received().pop().expect("usync IQ");
    assert_eq!(usync.get_attr_str("xmlns"), Some("usync"));
    p.result_for(
        &usync,
        usync_result(&[
            ("15550003333@s.whatsapp.net", &[2]),
            ("15550002222@s.whatsapp.net", &[3, 5]),
        ]),
    );
    // 2. bundles for carol:2 and our own device 3 (not for ourselves, device 5).
    let fetch = p.take_received().pop().expect("bundle fetch");
    let asked: Vec<String> = fetch
        .child_by_tag("key")
        .unwrap()
        .children_by_tag("user")
        .map(|u| u.get_attr_jid("jid").unwrap().to_string())
        .collect();
    assert_eq!(asked, [carol_dev.to_string(), bob_dev3.to_string()]);
    p.result_for(
        &fetch,
        vec![Node::new("list").with_children([
            carol.bundle_user(&carol_dev),
            bob_other.bundle_user(&bob_dev3),
        ])],
    );
    // 3. the message: one pkmsg per device, device-identity attached.
    let sent = p.take_received().pop().expect("message stanza");
    assert_eq!(sent.tag, "message");
    assert_eq!(sent.get_attr_str("id"), Some("3EB0TEST"));
    assert_eq!(sent.get_attr_jid("to"), Some(&carol_user));
    assert_eq!(sent.get_attr_str("type"), Some("text"));
    assert_eq!(
        sent.child_by_tag("device-identity")
            .and_then(Node::content_bytes),
        Some(&b"device-identity-bytes"[..])
    );
    let bob_jid: Jid = BOB.parse().unwrap();
    for to in sent
        .child_by_tag("participants")
        .unwrap()
        .children_by_tag("to")
    {
        let jid = to.get_attr_jid("jid").unwrap().clone();
        let enc = to.child_by_tag("enc").unwrap();
        assert_eq!(enc.get_attr_str("v"), Some("2"));
        assert_eq!(enc.get_attr_str("type"), Some("pkmsg"));
        let ct = enc.content_bytes().unwrap();
        if jid == carol_dev {
            assert_eq!(
                carol.decrypt(&bob_jid, "pkmsg", ct).conversation.as_deref(),
                Some("hi carol")
            );
        } else {
            assert_eq!(jid, bob_dev3);
            let dsm = bob_other
                .decrypt(&bob_jid, "pkmsg", ct)
                .device_sent_message
                .expect("own device gets a dsm");
            assert_eq!(
                dsm.destination_jid.as_deref(),
                Some("15550003333@s.whatsapp.net")
            );
            assert_eq!(
                dsm.message.unwrap().conversation.as_deref(),
                Some("hi carol")
            );
        }
    }
    // 4. the ack completes the request.
    p.server_send(
        &Node::new("ack")
            .attr("class", "message")
            .attr("id", "3EB0TEST")
            .attr("from", carol_user.clone())
            .attr("t", "1700000123"),
    );
    let events = p.take_events();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Public(wa_engine::Event::MessageStatus {
            status: MessageStatus::Sent,
            ..
        })
    )));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::RequestDone { id, result: Ok(Reply::MessageSent { timestamp: 1_700_000_123, .. }) } if *id == req
    )));

    // A second message needs no IQ: cached devices, existing sessions (still pkmsg until
    // the peer answers); an ack with an error code is a typed rejection.
    let req = p
        .send(Request::SendMessage {
            to: carol_user.clone(),
            message: Box::new(wa_engine::message::content::text("again")),
            id: Some("3EB0TWO".into()),
        })
        .unwrap();
    p.drive();
    let out = p.take_received();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].tag, "message");
    p.server_send(
        &Node::new("ack")
            .attr("class", "message")
            .attr("id", "3EB0TWO")
            .attr("from", carol_user.clone())
            .attr("error", "479"),
    );
    assert!(p.take_events().iter().any(|e| matches!(
        e,
        Event::RequestDone { id, result: Err(SendError::Rejected { code: 479, .. }) } if *id == req
    )));

    // No ack at all: the request times out.
    let req = p
        .send(Request::SendMessage {
            to: carol_user,
            message: Box::new(wa_engine::message::content::text("lost")),
            id: None,
        })
        .unwrap();
    p.drive();
    let start = p.now();
    let mut outcome = None;
    while outcome.is_none() {
        p.sim.fire_timer();
        // Keep the connection alive: answer keepalive pings.
        for iq in p.take_received().into_iter().filter(|n| n.tag == "iq") {
            p.result_for(&iq, Vec::new());
        }
        outcome = p.take_events().into_iter().find_map(|e| match e {
            Event::RequestDone { id, result } if id == req => Some(result),
            _ => None,
        });
    }
    assert_eq!(outcome, Some(Err(SendError::Timeout)));
    assert_eq!(p.now() - start, Duration::from_secs(60));
}

#[test]
fn old_signed_prekey_is_rotated_at_login_and_still_decrypts_late_pkmsgs() {
    let store = bob_store();
    // The signed prekey was created eight days before this login.
    let mut batch = StoreBatch::new();
    batch.put_app_value(
        "wa.prekeys",
        b"signed_prekey_created",
        (UNIX_START - 8 * 24 * 3600).to_be_bytes(),
    );
    store.apply(batch).unwrap();
    let mut p = logged_in(store.clone(), 50, 30);
    let upload = p
        .take_received()
        .into_iter()
        .find(|n| n.tag == "iq" && n.child_by_tag("skey").is_some())
        .expect("upload with the new signed prekey");
    let creds = store.credentials().unwrap().unwrap();
    assert_eq!(creds.signed_prekey.id, 2);
    assert_eq!(
        upload
            .child_path(&["skey", "id"])
            .and_then(Node::content_bytes),
        Some(&[0_u8, 0, 2][..])
    );
    let new_spk = SignedPreKeyRecord::from(&creds.signed_prekey);
    assert!(new_spk.verify(&KeyPair::from(&creds.identity_key).public));
    // The old one is kept for pkmsgs built on it: the recorded pkmsg used signed prekey 1.
    assert!(store.signed_prekey(1).unwrap().is_some());
    p.result_for(&upload, Vec::new());
    p.take_events();
    p.server_send(&delivered_stanza());
    assert!(p.take_events().iter().any(|e| matches!(
        e,
        Event::Public(wa_engine::Event::Message(m)) if m.text() == Some("Hello Bob, this is Alice.")
    )));
    // A second login does not rotate again.
    let again = logged_in(store.clone(), 50, 30);
    drop(again);
    assert_eq!(store.credentials().unwrap().unwrap().signed_prekey.id, 2);
}

/// Makes every write the connection staged durable in `backend` (a driver's job in
/// `Persistence::Deferred`), then moves bytes until nothing more is staged.
fn settle(p: &mut Pair, backend: &dyn Store) {
    loop {
        let Some(write) = p.sim.client_mut().poll_write() else {
            break;
        };
        backend.apply(write.batch).expect("commit");
        p.sim.client_mut().handle_durable(write.seq);
        p.drive();
    }
    assert!(p.sim.client().writes_settled());
}

#[test]
fn deferred_persistence_holds_receipt_ack_and_event_until_the_ratchet_is_durable() {
    let store = bob_store();
    let mut p = logged_in_with(store.clone(), 50, 30, Persistence::Deferred);
    p.take_received();
    p.take_events();
    let alice = ProtocolAddress::new("15550001111", 2);
    assert!(store.session(&alice).expect("read").is_none());

    p.server_send(&delivered_stanza());
    // Decrypted and staged, but not durable: nothing leaves and the embedder sees nothing.
    assert!(
        p.take_received().is_empty(),
        "no receipt or ack before the new session is durable"
    );
    assert!(p.take_events().is_empty(), "no event before it is durable");
    assert!(!p.sim.client().writes_settled());
    assert!(store.session(&alice).expect("read").is_none());

    settle(&mut p, store.as_ref());
    assert!(
        store.session(&alice).expect("read").is_some(),
        "the session the pkmsg built is in the backend"
    );
    let tags: Vec<String> = p
        .take_received()
        .iter()
        .map(|n| n.tag.to_string())
        .collect();
    assert_eq!(tags, ["receipt", "ack"]);
    assert!(
        p.take_events()
            .iter()
            .any(|e| matches!(e, Event::Public(wa_engine::Event::Message(_))))
    );
}

#[test]
fn a_failed_commit_closes_the_connection_and_keeps_the_receipt_back() {
    let store = bob_store();
    let mut p = logged_in_with(store.clone(), 50, 30, Persistence::Deferred);
    p.take_received();
    p.take_events();
    p.server_send(&delivered_stanza());
    let write = p
        .sim
        .client_mut()
        .poll_write()
        .expect("the decrypt staged a write");
    drop(write);
    p.sim
        .client_mut()
        .handle_write_failed(&wa_engine::StoreError::Corrupt { what: "test" });
    p.drive();
    assert_eq!(
        p.sim.client().close_reason(),
        Some(&wa_engine::CloseReason::StoreFailed)
    );
    assert!(
        !p.take_received()
            .iter()
            .any(|n| n.tag == "receipt" || n.tag == "ack"),
        "nothing that depended on the lost write left"
    );
}
