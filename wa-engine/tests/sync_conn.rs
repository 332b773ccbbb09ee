//! App-state sync and history sync on a logged-in `Connection` against a hand-played server
//! and a hand-played primary phone (its own Signal store), in virtual time, with the inputs of
//! `shared/vectors/app_state` and `shared/vectors/history_sync` (shared/protocol/08).
//!
//! The primary's peer messages are real Signal `pkmsg`/`msg` built against the companion's
//! stored keys; the server's `w:sync:app:state` answers carry the vectors' snapshot blob and
//! patches; downloads are answered as the tokio driver would (verified plaintext).

use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message as _;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use serde_json::Value;
use wa_engine::appstate::{
    ChatAction, Collection, CollectionState, KeyRing, StoredSyncKey, SyncAction,
};
use wa_engine::binary::Node;
use wa_engine::conn::{self, Config, Connection, Event, Reply, Request, RequestId};
use wa_engine::signal::{self, PreKeyBundle, PublicKey, TrustPolicy};
use wa_engine::store::{Credentials, ProtocolAddress};
use wa_engine::{Jid, MemoryStore, Store, StoreBatch};
use wa_proto::wa;
use wa_sandbox::sim::Sim;

mod conn_support;
use conn_support::*;

const OWN: &str = "15551234567:6@s.whatsapp.net";
const OWN_LID: &str = "100000000000001:6@lid";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn vectors(name: &str) -> Value {
    let path = format!("{}/../../shared/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("vector file")).expect("json")
}

fn app_state() -> Value {
    vectors("app_state/app_state.json")
}

/// The vectors' key `i` as `(id, StoredSyncKey)`.
fn vector_key(v: &Value, i: usize) -> (Vec<u8>, StoredSyncKey) {
    let k = &v["keys"][i];
    (
        unhex(k["key_id"].as_str().expect("id")),
        StoredSyncKey {
            key_data: unhex(k["key_data"].as_str().expect("data")),
            timestamp_ms: k["timestamp_ms"].as_i64().expect("ts"),
            fingerprint: Vec::new(),
        },
    )
}

/// The companion (logged in over the scripted server) and its primary phone.
struct World {
    sim: Sim<Connection, Server>,
    store: Arc<MemoryStore>,
    primary: MemoryStore,
    rng: StdRng,
    next_msg: u32,
}

impl World {
    /// A paired device (credentials stored), `prepare` run on its store, then logged in.
    fn new(prepare: impl FnOnce(&MemoryStore)) -> Self {
        Self::with_history(prepare, wa_engine::history::HistoryConfig::default())
    }

    /// [`Self::new`] with a history configuration.
    fn with_history(
        prepare: impl FnOnce(&MemoryStore),
        history: wa_engine::history::HistoryConfig,
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(42);
        let store = Arc::new(MemoryStore::new());
        let mut creds: Credentials = conn::generate_credentials(&mut rng);
        creds.id = Some(OWN.to_owned());
        creds.lid = Some(OWN_LID.to_owned());
        let mut batch = StoreBatch::new();
        batch.put_credentials(&creds);
        store.apply(batch).expect("store creds");
        prepare(&store);
        Self::on_store(store, history, rng)
    }

    /// Logs in a new connection over `store` (already paired).
    fn on_store(
        store: Arc<MemoryStore>,
        history: wa_engine::history::HistoryConfig,
        mut rng: StdRng,
    ) -> Self {
        let creds = store.credentials().expect("read").expect("paired");

        // The primary: its own identity, with a session to the companion from its bundle.
        let primary = MemoryStore::new();
        let primary_creds = conn::generate_credentials(&mut rng);
        let mut batch = StoreBatch::new();
        batch.put_credentials(&primary_creds);
        primary.apply(batch).expect("primary creds");
        let bundle = PreKeyBundle {
            registration_id: creds.registration_id,
            identity_key: PublicKey::from_bytes(creds.identity_key.public),
            signed_prekey_id: creds.signed_prekey.id,
            signed_prekey: PublicKey::from_bytes(creds.signed_prekey.key_pair.public),
            signed_prekey_signature: creds.signed_prekey.signature,
            prekey: None,
        };
        signal::process_prekey_bundle(
            &primary,
            &companion_address(),
            &bundle,
            TrustPolicy::AutoTrust,
            &mut rng,
        )
        .expect("primary session");

        let mut sandbox = Sandbox::new(3);
        let now = Instant::now();
        let config = Config {
            trust_root: sandbox.trust_root(),
            unix_time: Duration::from_secs(UNIX_START),
            rng_seed: [9; 32],
            history,
            ..Config::default()
        };
        let conn = Connection::new(config, store.clone(), now);
        let mut w = Self {
            sim: Sim::pair(now, 3, conn, sandbox.accept()),
            store,
            primary,
            rng,
            next_msg: 0,
        };
        w.sim.drive();
        w.server_send(
            &Node::new("success")
                .attr("t", UNIX_START.to_string())
                .attr("lid", OWN_LID.parse::<Jid>().expect("lid")),
        );
        // Answer the login IQs (pre-key count, active); keep everything else for the test.
        let mut kept = Vec::new();
        for sent in w.received() {
            let xmlns = sent.get_attr_str("xmlns").map(str::to_owned);
            if sent.tag == "iq" && matches!(xmlns.as_deref(), Some("encrypt" | "passive")) {
                let mut result = result_for(&sent);
                if xmlns.as_deref() == Some("encrypt") {
                    result = result.with_children([Node::new("count").attr("value", "50")]);
                }
                w.server_send(&result);
            } else {
                kept.push(sent);
            }
        }
        w.sim.server_mut().inbox.extend(kept);
        w.sim.drive();
        w
    }

    fn now(&self) -> Instant {
        self.sim.now()
    }

    fn server_send(&mut self, node: &Node) {
        self.sim.server_mut().send(node);
        self.sim.drive();
    }

    fn received(&mut self) -> Vec<Node> {
        self.sim.link_mut(0).take_server_events()
    }

    fn events(&mut self) -> Vec<Event> {
        self.sim.link_mut(0).take_client_events()
    }

    fn send(&mut self, request: Request) -> RequestId {
        let now = self.now();
        let id = self.sim.client_mut().send(now, request).expect("accepted");
        self.sim.drive();
        id
    }

    /// Delivers `message` as a peer message from our primary (05 §13).
    fn peer_message(&mut self, message: &wa::Message) -> String {
        let mut padded = message.encode_to_vec();
        padded.push(1);
        let (kind, ciphertext) =
            signal::encrypt(&self.primary, &companion_address(), &padded).expect("encrypt");
        self.next_msg += 1;
        let id = format!("3EB0PEER{:08}", self.next_msg);
        self.server_send(
            &Node::new("message")
                .attr(
                    "from",
                    "15551234567@s.whatsapp.net".parse::<Jid>().expect("jid"),
                )
                .attr("id", id.clone())
                .attr("type", "text")
                .attr("category", "peer")
                .attr("t", UNIX_START.to_string())
                .with_children([Node::new("enc")
                    .attr("v", "2")
                    .attr("type", kind.as_str())
                    .with_bytes(ciphertext)]),
        );
        id
    }

    /// The primary decrypts a peer message the companion sent it.
    fn primary_reads(&mut self, node: &Node) -> wa::Message {
        assert_eq!(node.get_attr_str("category"), Some("peer"));
        let enc = node.child_by_tag("enc").expect("enc");
        let bytes = enc.content_bytes().expect("bytes");
        let address = companion_address();
        let padded = match enc.get_attr_str("type") {
            Some("pkmsg") => {
                signal::decrypt_pkmsg(
                    &self.primary,
                    &address,
                    bytes,
                    TrustPolicy::AutoTrust,
                    &mut self.rng,
                )
                .expect("pkmsg")
                .plaintext
            }
            _ => signal::decrypt_msg(&self.primary, &address, bytes, &mut self.rng).expect("msg"),
        };
        let n = usize::from(*padded.last().expect("padding"));
        wa::Message::decode(&padded[..padded.len() - n]).expect("message")
    }

    /// The next `w:sync:app:state` IQ the companion sent (others are dropped).
    fn next_sync_iq(&mut self) -> Node {
        self.received()
            .into_iter()
            .find(|n| n.tag == "iq" && n.get_attr_str("xmlns") == Some("w:sync:app:state"))
            .expect("a w:sync:app:state IQ")
    }

    fn stored_state(&self, c: Collection) -> CollectionState {
        self.store
            .app_state_collection(c.as_str())
            .expect("read")
            .map(|b| CollectionState::from_bytes(&b).expect("state"))
            .unwrap_or_default()
    }
}

fn companion_address() -> ProtocolAddress {
    ProtocolAddress::new("15551234567".to_owned(), 6)
}

fn result_for(iq: &Node) -> Node {
    Node::new("iq")
        .attr("from", server_jid())
        .attr("type", "result")
        .attr("id", iq.get_attr_str("id").expect("id").to_owned())
}

/// `(name, version attr, return_snapshot attr)` of each `<collection>` of a sync IQ.
fn asked(iq: &Node) -> Vec<(String, Option<String>, Option<String>)> {
    iq.child_by_tag("sync")
        .expect("sync")
        .children_by_tag("collection")
        .map(|c| {
            (
                c.get_attr_str("name").expect("name").to_owned(),
                c.get_attr_str("version").map(str::to_owned),
                c.get_attr_str("return_snapshot").map(str::to_owned),
            )
        })
        .collect()
}

/// A `<collection>` answer with these patches (and snapshot).
fn collection(name: &str, version: u64, snapshot: Option<Vec<u8>>, patches: &[Vec<u8>]) -> Node {
    let mut children = Vec::new();
    if let Some(s) = snapshot {
        children.push(Node::new("snapshot").with_bytes(s));
    }
    children.push(
        Node::new("patches").with_children(
            patches
                .iter()
                .map(|p| Node::new("patch").with_bytes(p.clone())),
        ),
    );
    Node::new("collection")
        .attr("name", name.to_owned())
        .attr("version", version.to_string())
        .with_children(children)
}

fn sync_result(iq: &Node, collections: Vec<Node>) -> Node {
    result_for(iq).with_children([Node::new("sync").with_children(collections)])
}

/// Empty answers for every collection of `iq` except `skip`.
fn empty_answers(iq: &Node, skip: &[&str]) -> Vec<Node> {
    asked(iq)
        .into_iter()
        .filter(|(n, _, _)| !skip.contains(&n.as_str()))
        .map(|(n, _, _)| collection(&n, 0, None, &[]))
        .collect()
}

fn app_state_events(events: &[Event]) -> Vec<wa_engine::AppStateEvent> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Public(wa_engine::Event::AppState(a)) => Some((**a).clone()),
            _ => None,
        })
        .collect()
}

fn downloads(events: &[Event]) -> Vec<(conn::DownloadId, conn::BlobDownload)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Download { id, media } => Some((*id, (**media).clone())),
            _ => None,
        })
        .collect()
}

fn key_share(v: &Value) -> wa::Message {
    let bytes = unhex(
        v["protocol_messages"]["app_state_sync_key_share"]["message"]
            .as_str()
            .expect("share"),
    );
    wa::Message::decode(bytes.as_slice()).expect("share message")
}

/// A key share with only the vectors' keys `which`.
fn key_share_of(v: &Value, which: &[usize]) -> wa::Message {
    let mut m = key_share(v);
    let share = m
        .protocol_message
        .as_mut()
        .and_then(|p| p.app_state_sync_key_share.as_mut())
        .expect("share");
    let all = std::mem::take(&mut share.keys);
    share.keys = which.iter().map(|&i| all[i].clone()).collect();
    m
}

fn chain(v: &Value) -> &Value {
    &v["collections"][0]
}

fn patch_bytes(v: &Value, i: usize) -> Vec<u8> {
    unhex(
        chain(v)["patches"][i]["patch_server"]
            .as_str()
            .expect("patch"),
    )
}

fn snapshot_ref(v: &Value) -> Vec<u8> {
    unhex(
        chain(v)["snapshot"]["external_blob"]["external_blob_reference"]
            .as_str()
            .expect("ref"),
    )
}

/// What the driver does with a download of the snapshot: fetch the enc file, decrypt,
/// verify, hand over the plaintext.
fn answer_snapshot_download(
    w: &mut World,
    v: &Value,
    id: conn::DownloadId,
    media: &conn::BlobDownload,
) {
    let blob = &chain(v)["snapshot"]["external_blob"];
    assert_eq!(media.0.direct_path.as_deref(), blob["direct_path"].as_str());
    assert_eq!(media.0.media_type, wa_engine::media::MediaType::AppState);
    let reference =
        wa::ExternalBlobReference::decode(snapshot_ref(v).as_slice()).expect("reference");
    let plain = wa_engine::appstate::decrypt_blob(
        &reference,
        &unhex(blob["enc_file"].as_str().expect("enc")),
    )
    .expect("blob verifies");
    let now = w.now();
    w.sim.client_mut().handle_download(now, id, Ok(plain));
    w.sim.drive();
}

#[test]
fn key_share_stores_keys_then_full_sync_applies_snapshot_blob_and_patches() {
    let v = app_state();
    let mut w = World::new(|_| {});
    assert!(
        w.received()
            .iter()
            .all(|n| n.get_attr_str("xmlns") != Some("w:sync:app:state")),
        "no sync before any key is known"
    );

    let msg_id = w.peer_message(&key_share(&v));
    // The peer message is receipted; the key share itself never reaches the embedder.
    let sent = w.received();
    assert!(sent.iter().any(|n| n.tag == "receipt"
        && n.get_attr_str("id") == Some(msg_id.as_str())
        && n.get_attr_str("type") == Some("peer_msg")));
    let events = w.events();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Public(wa_engine::Event::Message(_))))
    );
    assert_eq!(w.store.app_state_sync_key_ids().expect("ids").len(), 3);
    let stored = StoredSyncKey::from_bytes(
        &w.store
            .app_state_sync_key(&vector_key(&v, 0).0)
            .expect("read")
            .expect("key-1 stored"),
    )
    .expect("decodes");
    assert_eq!(stored.key_data, vector_key(&v, 0).1.key_data);

    // One batched fetch of all five collections, each from scratch.
    let iq = sent
        .iter()
        .find(|n| n.get_attr_str("xmlns") == Some("w:sync:app:state"))
        .expect("fetch")
        .clone();
    let names: Vec<_> = asked(&iq)
        .into_iter()
        .map(|(n, ver, snap)| {
            assert_eq!(ver, None);
            assert_eq!(snap.as_deref(), Some("true"));
            n
        })
        .collect();
    assert_eq!(names.len(), 5);

    let mut answers = empty_answers(&iq, &["regular_low"]);
    answers.push(collection(
        "regular_low",
        7,
        Some(snapshot_ref(&v)),
        &[patch_bytes(&v, 0), patch_bytes(&v, 1)],
    ));
    w.server_send(&sync_result(&iq, answers));
    let events = w.events();
    let dl = downloads(&events);
    assert_eq!(dl.len(), 1, "the snapshot blob is downloaded");
    assert!(
        app_state_events(&events).is_empty(),
        "nothing applied before the snapshot"
    );
    answer_snapshot_download(&mut w, &v, dl[0].0, &dl[0].1);

    let applied = app_state_events(&w.events());
    assert_eq!(
        applied.len(),
        3 + 1 + 2,
        "3 snapshot records, then patch v6 and v7"
    );
    assert!(
        applied
            .iter()
            .all(|e| e.collection == Collection::RegularLow && e.from_full_sync)
    );
    assert_eq!(applied.last().map(|e| e.version), Some(7));
    let state = w.stored_state(Collection::RegularLow);
    assert_eq!(state.version, 7);
    assert_eq!(
        state.lthash.as_bytes().to_vec(),
        unhex(chain(&v)["final"]["lthash"].as_str().expect("lthash"))
    );
    assert!(
        w.next_sync_iq_opt().is_none(),
        "no further fetch once up to date"
    );
}

impl World {
    fn next_sync_iq_opt(&mut self) -> Option<Node> {
        self.received()
            .into_iter()
            .find(|n| n.tag == "iq" && n.get_attr_str("xmlns") == Some("w:sync:app:state"))
    }
}

/// Keys 1 and 2 (and 3 when `all`) stored, `regular_low` at version 6 (snapshot + patch v6).
fn prepared(v: &Value, keys: &[usize]) -> impl FnOnce(&MemoryStore) {
    let mut ring = KeyRing::new();
    for i in 0..3 {
        let (id, k) = vector_key(v, i);
        ring.insert_at(id, &k.key_data, k.timestamp_ms);
    }
    let snapshot = wa::SyncdSnapshot::decode(
        unhex(
            chain(v)["snapshot"]["snapshot_proto"]
                .as_str()
                .expect("snap"),
        )
        .as_slice(),
    )
    .expect("snapshot");
    let mut state = CollectionState::new();
    state
        .apply_snapshot(Collection::RegularLow, &snapshot, &ring)
        .expect("snapshot applies");
    let p6 = wa::SyncdPatch::decode(patch_bytes(v, 0).as_slice()).expect("p6");
    state
        .apply_patch(Collection::RegularLow, &p6, None, &ring)
        .expect("v6 applies");
    let keys: Vec<_> = keys.iter().map(|&i| vector_key(v, i)).collect();
    move |store: &MemoryStore| {
        let mut batch = StoreBatch::new();
        for (id, k) in &keys {
            batch.put_app_state_sync_key(id, k.to_bytes());
        }
        batch.put_app_state_collection("regular_low", state.to_bytes());
        store.apply(batch).expect("prepare");
    }
}

#[test]
fn a_patch_with_a_bad_mac_is_not_applied_and_the_collection_is_rebuilt() {
    let v = app_state();
    let mut w = World::new(prepared(&v, &[0, 1, 2]));
    // Login resumes from the stored versions.
    let iq = w.next_sync_iq();
    let regular_low = asked(&iq)
        .into_iter()
        .find(|(n, _, _)| n == "regular_low")
        .expect("regular_low asked");
    assert_eq!(regular_low.1.as_deref(), Some("6"));
    assert_eq!(regular_low.2.as_deref(), Some("false"));
    let before = w.stored_state(Collection::RegularLow);

    let bad = unhex(
        chain(&v)["bad_patches"][0]["patch_server"]
            .as_str()
            .expect("bad"),
    );
    let mut answers = empty_answers(&iq, &["regular_low"]);
    answers.push(collection("regular_low", 7, None, &[bad]));
    w.server_send(&sync_result(&iq, answers));

    assert!(app_state_events(&w.events()).is_empty(), "nothing applied");
    assert_eq!(
        w.stored_state(Collection::RegularLow),
        before,
        "state and version kept"
    );
    // Rebuilt from scratch (08 §6.5): a fresh fetch asking for a snapshot.
    let retry = w.next_sync_iq();
    assert_eq!(
        asked(&retry),
        vec![("regular_low".to_owned(), None, Some("true".to_owned()))]
    );
    // The rebuild gets the good chain and ends at version 7.
    w.server_send(&sync_result(
        &retry,
        vec![collection(
            "regular_low",
            7,
            Some(snapshot_ref(&v)),
            &[patch_bytes(&v, 0), patch_bytes(&v, 1)],
        )],
    ));
    let dl = downloads(&w.events());
    answer_snapshot_download(&mut w, &v, dl[0].0, &dl[0].1);
    assert_eq!(w.stored_state(Collection::RegularLow).version, 7);
}

#[test]
fn a_missing_key_parks_the_collection_asks_the_primary_and_resumes_on_the_share() {
    let v = app_state();
    let mut w = World::new(prepared(&v, &[0]));
    let iq = w.next_sync_iq();
    // The primary's earlier share of key-1 (which also gave us our Signal session with it).
    w.peer_message(&key_share_of(&v, &[0]));
    w.received();
    w.events();
    // Patch v7 is signed with key-2, which we lack.
    let mut answers = empty_answers(&iq, &["regular_low"]);
    answers.push(collection("regular_low", 7, None, &[patch_bytes(&v, 1)]));
    w.server_send(&sync_result(&iq, answers));
    assert!(app_state_events(&w.events()).is_empty());
    assert_eq!(w.stored_state(Collection::RegularLow).version, 6);

    // The key request goes to our primary as a peer message.
    let sent = w.received();
    let request = sent
        .iter()
        .find(|n| n.tag == "message")
        .expect("key request peer message");
    assert_eq!(
        request
            .get_attr_jid("to")
            .map(ToString::to_string)
            .as_deref(),
        Some("15551234567@s.whatsapp.net")
    );
    let message = w.primary_reads(request);
    let asked_ids: Vec<Vec<u8>> = message
        .protocol_message
        .and_then(|p| p.app_state_sync_key_request)
        .expect("key request")
        .key_ids
        .into_iter()
        .filter_map(|k| k.key_id)
        .collect();
    assert_eq!(asked_ids, vec![vector_key(&v, 1).0]);

    // The primary answers with key-2: everything is synced again, regular_low from v6.
    w.peer_message(&key_share_of(&v, &[1]));
    let iq = w.next_sync_iq();
    assert!(asked(&iq).contains(&(
        "regular_low".to_owned(),
        Some("6".to_owned()),
        Some("false".to_owned())
    )));
    let mut answers = empty_answers(&iq, &["regular_low"]);
    answers.push(collection("regular_low", 7, None, &[patch_bytes(&v, 1)]));
    w.server_send(&sync_result(&iq, answers));
    assert_eq!(app_state_events(&w.events()).len(), 2);
    assert_eq!(w.stored_state(Collection::RegularLow).version, 7);
}

#[test]
fn server_sync_brings_push_name_contact_and_salt_then_presence_available() {
    let v = app_state();
    let mut w = World::new(prepared(&v, &[0, 1, 2]));
    let iq = w.next_sync_iq();
    w.server_send(&sync_result(&iq, empty_answers(&iq, &[])));
    w.events();

    // Another device changed critical_block and critical_unblock_low.
    w.server_send(
        &Node::new("notification")
            .attr("from", server_jid())
            .attr("type", "server_sync")
            .attr("id", "n1")
            .attr("t", UNIX_START.to_string())
            .with_children([
                Node::new("collection")
                    .attr("name", "critical_block")
                    .attr("version", "1"),
                Node::new("collection")
                    .attr("name", "critical_unblock_low")
                    .attr("version", "1"),
                // Already at this version: skipped.
                Node::new("collection")
                    .attr("name", "regular_low")
                    .attr("version", "6"),
            ]),
    );
    let iq = w.next_sync_iq();
    let names: Vec<_> = asked(&iq).into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(names, vec!["critical_block", "critical_unblock_low"]);
    let single = |label: &str| {
        let m = v["mutations"]
            .as_array()
            .expect("mutations")
            .iter()
            .find(|m| m["label"] == label)
            .expect("mutation");
        unhex(m["single_patch"]["patch_server"].as_str().expect("patch"))
    };
    w.server_send(&sync_result(
        &iq,
        vec![
            collection("critical_block", 1, None, &[single("push_name")]),
            collection("critical_unblock_low", 1, None, &[single("contact")]),
        ],
    ));
    let applied = app_state_events(&w.events());
    assert!(
        applied
            .iter()
            .any(|e| e.action == SyncAction::PushName("Lab Bot".to_owned()))
    );
    assert!(applied.iter().any(|e| matches!(&e.action, SyncAction::Contact { full_name: Some(n), .. } if n == "Alice Example")));
    let creds = w.store.credentials().expect("read").expect("creds");
    assert_eq!(creds.push_name, "Lab Bot");
    assert_eq!(
        w.store.lid_for_pn("15551234567").expect("read").as_deref(),
        Some("123456789012345")
    );
    let presence = w
        .received()
        .into_iter()
        .find(|n| n.tag == "presence")
        .expect("presence sent");
    assert_eq!(presence.get_attr_str("type"), Some("available"));
    assert_eq!(presence.get_attr_str("name"), Some("Lab Bot"));
}

#[test]
fn own_mute_conflicts_then_is_rebuilt_on_the_winner_and_accepted() {
    let v = app_state();
    let mut w = World::new(prepared(&v, &[0]));
    let iq = w.next_sync_iq();
    w.server_send(&sync_result(&iq, empty_answers(&iq, &[])));
    w.events();

    let chat: Jid = "15559990000@s.whatsapp.net".parse().expect("chat");
    let req = w.send(Request::ChatAction(ChatAction::Mute {
        chat: chat.clone(),
        until_ms: Some(-1),
    }));
    let first = w.next_sync_iq();
    assert_eq!(
        asked(&first),
        vec![(
            "regular_high".to_owned(),
            Some("0".to_owned()),
            Some("false".to_owned())
        )]
    );
    // Another device won version 1 (the vectors' mute of another chat).
    let winner = unhex(
        v["mutations"][0]["single_patch"]["patch_server"]
            .as_str()
            .expect("winner"),
    );
    w.server_send(
        &result_for(&first).with_children([Node::new("sync").with_children([Node::new(
            "collection",
        )
        .attr("name", "regular_high")
        .attr("type", "error")
        .with_children([
            Node::new("error")
                .attr("code", "409")
                .attr("text", "conflict"),
            Node::new("patches").with_children([Node::new("patch").with_bytes(winner.clone())]),
        ])])]),
    );
    // The winner is applied (one event), and our patch rebuilt on version 1.
    assert_eq!(app_state_events(&w.events()).len(), 1);
    let second = w.next_sync_iq();
    let col = second
        .child_by_tag("sync")
        .and_then(|s| s.child_by_tag("collection"))
        .expect("collection");
    assert_eq!(col.get_attr_str("version"), Some("1"));
    let mut ours = wa::SyncdPatch::decode(
        col.child_by_tag("patch")
            .and_then(Node::content_bytes)
            .expect("patch"),
    )
    .expect("patch decodes");
    assert!(ours.version.is_none(), "uploads carry no version");
    // It verifies on top of the winner, as another companion would apply it.
    ours.version = Some(wa::SyncdVersion { version: Some(2) });
    let mut ring = KeyRing::new();
    let (id, k) = vector_key(&v, 0);
    ring.insert_at(id, &k.key_data, k.timestamp_ms);
    let mut other = CollectionState::new();
    other
        .apply_patch(
            Collection::RegularHigh,
            &wa::SyncdPatch::decode(winner.as_slice()).expect("winner"),
            None,
            &ring,
        )
        .expect("winner applies");
    let mutations = other
        .apply_patch(Collection::RegularHigh, &ours, None, &ring)
        .expect("our rebuilt patch verifies");
    assert!(
        matches!(&mutations[0].sync_action(), SyncAction::Mute { chat: c, muted: true, until_ms: Some(-1) } if *c == chat)
    );

    w.server_send(&sync_result(
        &second,
        vec![
            Node::new("collection")
                .attr("name", "regular_high")
                .attr("version", "2"),
        ],
    ));
    let events = w.events();
    let done = events.iter().find_map(|e| match e {
        Event::RequestDone { id, result } if *id == req => Some(result.clone()),
        _ => None,
    });
    assert_eq!(done, Some(Ok(Reply::Done)));
    assert_eq!(w.stored_state(Collection::RegularHigh), other);
    let own = app_state_events(&events);
    assert_eq!(own.len(), 1, "our own mutation is reported once accepted");
    assert_eq!(own[0].version, 2);
}

fn history() -> Value {
    vectors("history_sync/history_sync.json")["cases"][0].clone()
}

#[test]
fn history_sync_notification_is_receipted_downloaded_and_stored() {
    let h = history();
    let mut w = World::new(|_| {});
    let message =
        wa::Message::decode(unhex(h["protocol_message"].as_str().expect("message")).as_slice())
            .expect("message");
    let msg_id = w.peer_message(&message);
    let sent = w.received();
    let receipt = sent
        .iter()
        .find(|n| n.tag == "receipt" && n.get_attr_str("type") == Some("hist_sync"))
        .expect("hist_sync receipt");
    assert_eq!(receipt.get_attr_str("id"), Some(msg_id.as_str()));
    assert_eq!(
        receipt
            .get_attr_jid("to")
            .map(ToString::to_string)
            .as_deref(),
        Some("15551234567@s.whatsapp.net")
    );
    let dl = downloads(&w.events());
    assert_eq!(dl.len(), 1);
    assert_eq!(dl[0].1.0.media_type, wa_engine::media::MediaType::History);
    assert_eq!(
        dl[0].1.0.direct_path.as_deref(),
        h["media"]["direct_path"].as_str()
    );
    // The driver streams the compressed plaintext in pieces, then says it verified.
    let compressed = unhex(h["compressed"].as_str().expect("compressed"));
    for piece in compressed.chunks(100) {
        w.sim.client_mut().handle_download_data(dl[0].0, piece);
    }
    let now = w.now();
    w.sim
        .client_mut()
        .handle_download(now, dl[0].0, Ok(Vec::new()));
    w.sim.drive();

    let events = w.events();
    let chunk = events
        .iter()
        .find_map(|e| match e {
            Event::Public(wa_engine::Event::HistorySync(h)) => Some(h.clone()),
            _ => None,
        })
        .expect("history event");
    assert_eq!(chunk.message_id, msg_id);
    assert_eq!(chunk.data.conversations.len(), 2);
    assert_eq!(chunk.data.message_count(), 5);
    assert_eq!(chunk.data.push_names.len(), 2);
    assert!(chunk.data.tc_tokens.is_empty() && chunk.data.nct_salt.is_none());
    assert_eq!(
        w.store.lid_for_pn("15551234567").expect("read").as_deref(),
        Some("123456789012345")
    );
    let token = w
        .store
        .tc_token("123456789012345@lid")
        .expect("read")
        .expect("token stored under the peer's LID");
    let token = wa_engine::privacy::TcToken::from_bytes(&token).expect("record");
    assert_eq!(token.timestamp, Some(1_700_000_000));
    assert_eq!(token.sender_timestamp, Some(1_700_000_100));
    assert_eq!(
        w.store.nct_salt().expect("read").map(|s| s.to_vec()),
        Some(unhex(
            h["plaintext_fields"]["nct_salt_field_19"]
                .as_str()
                .expect("salt")
        ))
    );
}

#[test]
fn inline_history_without_messages_still_keeps_tokens_and_salt() {
    let h = history();
    let mut message =
        wa::Message::decode(unhex(h["protocol_message"].as_str().expect("message")).as_slice())
            .expect("message");
    if let Some(n) = message
        .protocol_message
        .as_mut()
        .and_then(|p| p.history_sync_notification.as_mut())
    {
        n.initial_hist_bootstrap_inline_payload =
            Some(unhex(h["compressed"].as_str().expect("compressed")));
        n.direct_path = None;
    }
    // The application opted out of message history.
    let mut w = World::with_history(
        |_| {},
        wa_engine::history::HistoryConfig {
            keep_messages: false,
            ..Default::default()
        },
    );
    w.peer_message(&message);
    let events = w.events();
    assert!(
        downloads(&events).is_empty(),
        "inline payloads need no download"
    );
    let chunk = events
        .iter()
        .find_map(|e| match e {
            Event::Public(wa_engine::Event::HistorySync(h)) => Some(h.clone()),
            _ => None,
        })
        .expect("history event");
    assert_eq!(chunk.data.message_count(), 0);
    assert_eq!(chunk.data.conversations.len(), 2);
    assert!(
        w.store
            .tc_token("123456789012345@lid")
            .expect("read")
            .is_some()
    );
    assert!(w.store.nct_salt().expect("read").is_some());
}

/// Another device's patch on `state` (which it advances): `mutations` under key-1, version
/// set as the server stores it.
fn other_device_patch(
    v: &Value,
    state: &mut CollectionState,
    c: Collection,
    mutations: &[wa_engine::appstate::NewMutation],
) -> Vec<u8> {
    let mut ring = KeyRing::new();
    let (id, k) = vector_key(v, 0);
    ring.insert_at(id.clone(), &k.key_data, k.timestamp_ms);
    let out = state
        .encode_patch(c, &id, &ring, mutations, &mut || [7; 16])
        .expect("encode");
    let mut patch = out.patch;
    patch.version = Some(wa::SyncdVersion {
        version: Some(out.base_version + 1),
    });
    *state = out.state_after;
    patch.encode_to_vec()
}

fn salt_mutation(
    op: wa_engine::appstate::Operation,
    salt: &[u8],
) -> wa_engine::appstate::NewMutation {
    wa_engine::appstate::NewMutation {
        collection: Collection::RegularHigh,
        operation: op,
        index: vec!["nct_salt_sync".to_owned()],
        value: wa::SyncActionValue {
            timestamp: Some(1_700_000_000_000),
            nct_salt_sync_action: Some(wa::NctSaltSyncAction {
                salt: Some(salt.to_vec()),
            }),
            ..Default::default()
        },
        action_version: 1,
    }
}

#[test]
fn nct_salt_set_and_remove_follow_app_state() {
    use wa_engine::appstate::Operation;
    let v = app_state();
    let mut w = World::new(prepared(&v, &[0]));
    let iq = w.next_sync_iq();
    let mut other = CollectionState::new();
    let set = other_device_patch(
        &v,
        &mut other,
        Collection::RegularHigh,
        &[salt_mutation(Operation::Set, &[0x5a; 32])],
    );
    let mut answers = empty_answers(&iq, &["regular_high"]);
    answers.push(collection("regular_high", 1, None, &[set]));
    w.server_send(&sync_result(&iq, answers));
    let applied = app_state_events(&w.events());
    assert_eq!(applied.len(), 1);
    assert_eq!(
        applied[0].action,
        SyncAction::NctSalt(Vec::new()),
        "the salt is not handed out"
    );
    assert_eq!(
        w.store.nct_salt().expect("read").map(|s| s.to_vec()),
        Some(vec![0x5a; 32])
    );
    assert_eq!(w.stored_state(Collection::RegularHigh), other);

    let remove = other_device_patch(
        &v,
        &mut other,
        Collection::RegularHigh,
        &[salt_mutation(Operation::Remove, &[0x5a; 32])],
    );
    w.server_send(
        &Node::new("notification")
            .attr("from", server_jid())
            .attr("type", "server_sync")
            .attr("id", "n2")
            .with_children([Node::new("collection")
                .attr("name", "regular_high")
                .attr("version", "2")]),
    );
    let iq = w.next_sync_iq();
    assert_eq!(
        asked(&iq),
        vec![(
            "regular_high".to_owned(),
            Some("1".to_owned()),
            Some("false".to_owned())
        )]
    );
    w.server_send(&sync_result(
        &iq,
        vec![collection("regular_high", 2, None, &[remove])],
    ));
    assert_eq!(w.store.nct_salt().expect("read"), None);
    assert_eq!(w.stored_state(Collection::RegularHigh).version, 2);
}

#[test]
fn a_failed_history_download_keeps_nothing() {
    let h = history();
    let mut w = World::new(|_| {});
    let message =
        wa::Message::decode(unhex(h["protocol_message"].as_str().expect("message")).as_slice())
            .expect("message");
    w.peer_message(&message);
    let dl = downloads(&w.events());
    // Most of the (unverified) plaintext streams in, then the download fails verification.
    let compressed = unhex(h["compressed"].as_str().expect("compressed"));
    w.sim
        .client_mut()
        .handle_download_data(dl[0].0, &compressed);
    let now = w.now();
    w.sim
        .client_mut()
        .handle_download(now, dl[0].0, Err("MAC mismatch".to_owned()));
    w.sim.drive();
    assert!(
        !w.events()
            .iter()
            .any(|e| matches!(e, Event::Public(wa_engine::Event::HistorySync(_))))
    );
    assert_eq!(w.store.lid_for_pn("15551234567").expect("read"), None);
    assert_eq!(w.store.nct_salt().expect("read"), None);
    assert!(w.store.tc_token_jids().expect("read").is_empty());
}

#[test]
fn paging_follows_has_more_patches_and_a_restart_resumes_from_the_stored_version() {
    let v = app_state();
    let mut w = World::new(|_| {});
    w.peer_message(&key_share(&v));
    let iq = w.next_sync_iq();
    // Page 1: the snapshot (v5) and patch v6, more to come.
    let mut answers = empty_answers(&iq, &["regular_low"]);
    answers.push(
        collection(
            "regular_low",
            7,
            Some(snapshot_ref(&v)),
            &[patch_bytes(&v, 0)],
        )
        .attr("has_more_patches", "true"),
    );
    w.server_send(&sync_result(&iq, answers));
    let dl = downloads(&w.events());
    answer_snapshot_download(&mut w, &v, dl[0].0, &dl[0].1);
    assert_eq!(w.stored_state(Collection::RegularLow).version, 6);
    let next = w.next_sync_iq();
    assert_eq!(
        asked(&next),
        vec![(
            "regular_low".to_owned(),
            Some("6".to_owned()),
            Some("false".to_owned())
        )]
    );

    // The connection dies before page 2; the next one resumes from version 6.
    let store = w.store.clone();
    drop(w);
    let mut w = World::on_store(
        store,
        wa_engine::history::HistoryConfig::default(),
        StdRng::seed_from_u64(43),
    );
    let iq = w.next_sync_iq();
    assert!(asked(&iq).contains(&(
        "regular_low".to_owned(),
        Some("6".to_owned()),
        Some("false".to_owned())
    )));
    let mut answers = empty_answers(&iq, &["regular_low"]);
    answers.push(collection("regular_low", 7, None, &[patch_bytes(&v, 1)]));
    w.server_send(&sync_result(&iq, answers));
    assert_eq!(w.stored_state(Collection::RegularLow).version, 7);
    assert_eq!(
        w.stored_state(Collection::RegularLow)
            .lthash
            .as_bytes()
            .to_vec(),
        unhex(chain(&v)["final"]["lthash"].as_str().expect("lthash"))
    );
}

#[test]
fn dirty_syncd_app_state_is_cleaned_and_resyncs_every_collection() {
    let v = app_state();
    let mut w = World::new(prepared(&v, &[0]));
    let iq = w.next_sync_iq();
    w.server_send(&sync_result(&iq, empty_answers(&iq, &[])));
    w.server_send(
        &Node::new("ib").with_children([Node::new("dirty")
            .attr("type", "syncd_app_state")
            .attr("timestamp", "1700000100")]),
    );
    let sent = w.received();
    assert!(sent.iter().any(|n| {
        n.child_by_tag("clean")
            .is_some_and(|c| c.get_attr_str("type") == Some("syncd_app_state"))
    }));
    let fetch = sent
        .iter()
        .find(|n| n.get_attr_str("xmlns") == Some("w:sync:app:state"))
        .expect("resync");
    assert_eq!(asked(fetch).len(), 5);
}
