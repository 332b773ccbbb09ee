//! Fuzz target: Signal wire messages and decryption against a real session.
//!
//! Set up once (`OnceLock`): Bob's store holds a session with Alice (a `pkmsg` exchange and a
//! reply), Alice's sender key for a group, and unused one-time prekeys; Alice, Carol and Dave
//! have messages for Bob that he has not seen yet. Every run starts from a fresh copy of
//! Bob's store. Input: `mode (1) || rest`:
//!
//! | mode | what runs |
//! | --- | --- |
//! | 0 | `decrypt_msg(rest)` from Alice |
//! | 1 | `decrypt_pkmsg(rest)` from Alice, Carol or Eve (a byte picks) |
//! | 2 | `decrypt_group(rest)` from Alice in the group |
//! | 3 | `process_sender_key_distribution(rest)` |
//! | 4 | a real `msg` from Alice (a byte picks which), mutated, then `decrypt_msg` |
//! | 5 | a real `pkmsg` (Carol with a one-time prekey, Dave without, Alice's already-used one), mutated |
//! | 6 | a real `skmsg` from Alice, mutated, then `decrypt_group` |
//! | 7 | the record parsers (`SessionRecord`, `SenderKeyRecord`, `PreKeyRecord`, `SignedPreKeyRecord`) on `rest` |
//!
//! Invariants:
//! - no panic;
//! - whenever `SignalMessage` / `PreKeySignalMessage` / `SenderKeyMessage` /
//!   `SenderKeyDistributionMessage::decode(x)` succeeds, `serialized() == x` (their documented
//!   "complete message bytes"), and a pkmsg's embedded message is the `message` field's bytes;
//! - a failed decrypt (or SKDM processing) leaves the store exactly as it was: the session,
//!   identity, prekeys and sender key are the "nothing lost" state;
//! - a decrypt that succeeds on a (possibly mutated) real message yields that message's plaintext;
//! - a record that parses re-serializes to bytes that parse to the same bytes again.
//!
//! Run: see fuzz/README.md.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::sync::OnceLock;

use common::{FuzzRng, Input, mutate};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use wa_engine::signal::{
    self, KeyPair, PreKeyBundle, PreKeyRecord, PreKeySignalMessage, SenderKeyDistributionMessage,
    SenderKeyMessage, SenderKeyRecord, SessionRecord, SignalMessage, SignedPreKeyRecord,
    TrustPolicy,
};
use wa_engine::store::{
    Blob, Credentials, MemoryStore, ProtocolAddress, SenderKeyName, Store, StoreBatch,
};
use wa_proto::wa;

const GROUP: &str = "120363012345678901@g.us";

fn alice() -> ProtocolAddress {
    ProtocolAddress::new("15550001111", 2)
}
fn carol() -> ProtocolAddress {
    ProtocolAddress::new("15550003333", 0)
}
fn dave() -> ProtocolAddress {
    ProtocolAddress::new("15550004444", 1)
}
fn eve() -> ProtocolAddress {
    ProtocolAddress::new("15550005555", 0)
}
fn bob() -> ProtocolAddress {
    ProtocolAddress::new("15550002222", 5)
}
fn group_name() -> SenderKeyName {
    SenderKeyName::new(GROUP, alice())
}

/// A party: its store and what it publishes.
struct Party {
    store: MemoryStore,
    identity: KeyPair,
    registration_id: u32,
    spk: SignedPreKeyRecord,
    prekeys: Vec<PreKeyRecord>,
}

impl Party {
    fn new(rng: &mut FuzzRng, registration_id: u32, prekeys: u32) -> Self {
        let identity = KeyPair::generate(rng);
        let spk = SignedPreKeyRecord::generate(1, &identity.private, rng);
        let prekeys: Vec<PreKeyRecord> = (1..=prekeys)
            .map(|id| PreKeyRecord::generate(id, rng))
            .collect();
        let store = MemoryStore::new();
        let mut batch = StoreBatch::new();
        batch.put_credentials(&Credentials::new(
            wa_engine::store::KeyPair::new([0x11; 32], [0x22; 32]),
            (&identity).into(),
            registration_id,
            (&spk).into(),
            [0x33; 32],
        ));
        for pk in &prekeys {
            batch.put_prekey(pk.id, pk.to_bytes());
        }
        store.apply(batch).expect("memory store");
        Self {
            store,
            identity,
            registration_id,
            spk,
            prekeys,
        }
    }

    fn bundle(&self, opk: Option<usize>) -> PreKeyBundle {
        PreKeyBundle {
            registration_id: self.registration_id,
            identity_key: self.identity.public,
            signed_prekey_id: self.spk.id,
            signed_prekey: self.spk.key_pair.public,
            signed_prekey_signature: self.spk.signature,
            prekey: opk.map(|i| (self.prekeys[i].id, self.prekeys[i].key_pair.public)),
        }
    }
}

/// Everything a store read can show about the addresses and names the target uses.
#[derive(Debug, PartialEq)]
struct Snapshot {
    credentials: bool,
    sessions: Vec<Option<Blob>>,
    identities: Vec<Option<Blob>>,
    session_devices: Vec<Vec<u32>>,
    prekeys: Vec<(u32, Option<Blob>)>,
    signed_prekeys: Vec<u32>,
    sender_key: Option<Blob>,
}

fn snapshot(store: &dyn Store) -> Snapshot {
    let addresses = [alice(), carol(), dave(), eve()];
    let ids = store.prekey_ids().expect("read");
    Snapshot {
        credentials: store.credentials().expect("read").is_some(),
        sessions: addresses
            .iter()
            .map(|a| store.session(a).expect("read"))
            .collect(),
        identities: addresses
            .iter()
            .map(|a| store.identity(a).expect("read"))
            .collect(),
        session_devices: addresses
            .iter()
            .map(|a| store.session_devices(&a.name).expect("read"))
            .collect(),
        prekeys: ids
            .iter()
            .map(|&id| (id, store.prekey(id).expect("read")))
            .collect(),
        signed_prekeys: store.signed_prekey_ids().expect("read"),
        sender_key: store.sender_key(&group_name()).expect("read"),
    }
}

struct Setup {
    credentials: Credentials,
    prekeys: Vec<(u32, Blob)>,
    session: Blob,
    identity: Blob,
    sender_key: Blob,
    /// (msg from Alice, plaintext)
    msgs: Vec<(Vec<u8>, Vec<u8>)>,
    /// (sender, pkmsg, plaintext)
    pkmsgs: Vec<(ProtocolAddress, Vec<u8>, Vec<u8>)>,
    /// (skmsg from Alice, plaintext)
    skmsgs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Setup {
    /// A fresh copy of Bob's store.
    fn bob_store(&self) -> MemoryStore {
        let store = MemoryStore::new();
        let mut batch = StoreBatch::new();
        batch.put_credentials(&self.credentials);
        for (id, blob) in &self.prekeys {
            batch.put_prekey(*id, blob.clone());
        }
        batch.put_session(&alice(), self.session.clone());
        batch.put_identity(&alice(), self.identity.clone());
        batch.put_sender_key(&group_name(), self.sender_key.clone());
        store.apply(batch).expect("memory store");
        store
    }
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let rng = &mut FuzzRng::new(2);
        let a = Party::new(rng, 4321, 2);
        let b = Party::new(rng, 1234, 3);
        let c = Party::new(rng, 77, 0);
        let d = Party::new(rng, 88, 0);
        let auto = TrustPolicy::AutoTrust;

        // Alice <-> Bob: pkmsg, reply, then msgs Bob has not read.
        signal::process_prekey_bundle(&a.store, &bob(), &b.bundle(Some(0)), auto, rng)
            .expect("bundle");
        let (_, first) = signal::encrypt(&a.store, &bob(), b"first").expect("encrypt");
        signal::decrypt_pkmsg(&b.store, &alice(), &first, auto, rng).expect("pkmsg");
        let (_, reply) = signal::encrypt(&b.store, &alice(), b"reply").expect("encrypt");
        signal::decrypt_msg(&a.store, &bob(), &reply, rng).expect("reply");
        let msgs = (0..3)
            .map(|i| {
                let plain = format!("message {i} from alice").into_bytes();
                let (kind, ct) = signal::encrypt(&a.store, &bob(), &plain).expect("encrypt");
                assert_eq!(kind, signal::EncType::Msg);
                (ct, plain)
            })
            .collect();

        // Carol (one-time prekey 2) and Dave (none): pkmsgs Bob has not seen.
        signal::process_prekey_bundle(&c.store, &bob(), &b.bundle(Some(1)), auto, rng)
            .expect("bundle");
        let (_, from_carol) = signal::encrypt(&c.store, &bob(), b"hi from carol").expect("enc");
        signal::process_prekey_bundle(&d.store, &bob(), &b.bundle(None), auto, rng)
            .expect("bundle");
        let (_, from_dave) = signal::encrypt(&d.store, &bob(), b"hi from dave").expect("enc");
        let pkmsgs = vec![
            (carol(), from_carol, b"hi from carol".to_vec()),
            (dave(), from_dave, b"hi from dave".to_vec()),
            // Already decrypted: a duplicate, taking the known-base-key path.
            (alice(), first, b"first".to_vec()),
        ];

        // Alice's sender key, handed to Bob; skmsgs Bob has not read.
        let skdm = signal::sender_key_distribution(&a.store, &group_name(), rng).expect("skdm");
        signal::process_sender_key_distribution(&b.store, &group_name(), skdm.serialized())
            .expect("process skdm");
        let skmsgs = (0..3)
            .map(|i| {
                let plain = format!("group message {i}").into_bytes();
                let ct = signal::encrypt_group(&a.store, &group_name(), &plain, rng).expect("enc");
                (ct, plain)
            })
            .collect();

        let store = &b.store;
        let prekeys = store
            .prekey_ids()
            .expect("read")
            .into_iter()
            .map(|id| (id, store.prekey(id).expect("read").expect("listed")))
            .collect();
        Setup {
            credentials: store.credentials().expect("read").expect("credentials"),
            prekeys,
            session: store.session(&alice()).expect("read").expect("session"),
            identity: store.identity(&alice()).expect("read").expect("identity"),
            sender_key: store
                .sender_key(&group_name())
                .expect("read")
                .expect("sender key"),
            msgs,
            pkmsgs,
            skmsgs,
        }
    })
}

/// The wire decoders' contract: `serialized()` is the input.
fn check_decoders(bytes: &[u8]) {
    if let Ok(m) = SignalMessage::decode(bytes) {
        assert_eq!(m.serialized(), bytes, "SignalMessage::serialized");
    }
    if let Ok(m) = PreKeySignalMessage::decode(bytes) {
        assert_eq!(m.serialized(), bytes, "PreKeySignalMessage::serialized");
        let inner = bytes
            .get(1..)
            .and_then(|b| wa::PreKeySignalMessage::decode(b).ok())
            .and_then(|p| p.message)
            .expect("a decoded pkmsg has a message field");
        assert_eq!(
            m.message.serialized(),
            &inner[..],
            "embedded SignalMessage bytes"
        );
    }
    if let Ok(m) = SenderKeyMessage::decode(bytes) {
        assert_eq!(m.serialized(), bytes, "SenderKeyMessage::serialized");
        assert_eq!(m.signed_part().len() + signal::SIGNATURE_LEN, bytes.len());
    }
    if let Ok(m) = SenderKeyDistributionMessage::decode(bytes) {
        assert_eq!(
            m.serialized(),
            bytes,
            "SenderKeyDistributionMessage::serialized"
        );
    }
}

/// Runs `op` on a fresh copy of Bob's store; on error the store must not have changed.
/// Returns the plaintext on success.
fn on_bob<T>(op: impl FnOnce(&MemoryStore) -> Result<T, signal::SignalError>) -> Option<T> {
    let store = setup().bob_store();
    let before = snapshot(&store);
    match op(&store) {
        Ok(v) => Some(v),
        Err(e) => {
            assert_eq!(
                snapshot(&store),
                before,
                "a failed operation ({e}) changed the store"
            );
            None
        }
    }
}

fn record_round_trip(bytes: &[u8]) {
    if let Ok(r) = SessionRecord::from_bytes(bytes) {
        let once = r.to_bytes();
        let again = SessionRecord::from_bytes(&once).expect("re-serialized session parses");
        assert_eq!(*again.to_bytes(), *once, "SessionRecord round trip");
    }
    if let Ok(r) = SenderKeyRecord::from_bytes(bytes) {
        let once = r.to_bytes();
        let again = SenderKeyRecord::from_bytes(&once).expect("re-serialized sender key parses");
        assert_eq!(*again.to_bytes(), *once, "SenderKeyRecord round trip");
    }
    if let Ok(r) = PreKeyRecord::from_bytes(bytes) {
        let again = PreKeyRecord::from_bytes(&r.to_bytes()).expect("re-serialized prekey parses");
        assert_eq!(again, r, "PreKeyRecord round trip");
    }
    if let Ok(r) = SignedPreKeyRecord::from_bytes(bytes) {
        let again =
            SignedPreKeyRecord::from_bytes(&r.to_bytes()).expect("re-serialized signed prekey");
        assert!(again == r, "SignedPreKeyRecord round trip");
    }
}

fuzz_target!(|data: &[u8]| {
    let setup = setup();
    let mut input = Input::new(data);
    let mode = input.byte() % 8;
    let rng = &mut FuzzRng::new(3);
    let auto = TrustPolicy::AutoTrust;
    match mode {
        0 => {
            let ct = input.rest();
            check_decoders(ct);
            on_bob(|s| signal::decrypt_msg(s, &alice(), ct, rng));
        }
        1 => {
            let from = [alice(), carol(), eve()][usize::from(input.byte() % 3)].clone();
            let ct = input.rest();
            check_decoders(ct);
            on_bob(|s| signal::decrypt_pkmsg(s, &from, ct, auto, rng));
        }
        2 => {
            let ct = input.rest();
            check_decoders(ct);
            on_bob(|s| signal::decrypt_group(s, &group_name(), ct));
        }
        3 => {
            let skdm = input.rest();
            check_decoders(skdm);
            on_bob(|s| signal::process_sender_key_distribution(s, &group_name(), skdm));
        }
        4 => {
            let (real, plain) = &setup.msgs[usize::from(input.byte()) % setup.msgs.len()];
            let ct = mutate(real, &mut input);
            check_decoders(&ct);
            let got = on_bob(|s| signal::decrypt_msg(s, &alice(), &ct, rng));
            if let Some(got) = &got {
                assert_eq!(got, plain, "a mutated msg decrypted to something else");
            }
            assert!(got.is_some() || ct != *real, "a real msg failed to decrypt");
        }
        5 => {
            let (from, real, plain) = &setup.pkmsgs[usize::from(input.byte()) % setup.pkmsgs.len()];
            let ct = mutate(real, &mut input);
            check_decoders(&ct);
            let got = on_bob(|s| signal::decrypt_pkmsg(s, from, &ct, auto, rng));
            if let Some(got) = &got {
                assert_eq!(
                    &got.plaintext, plain,
                    "a mutated pkmsg decrypted to something else"
                );
            }
            // The third one was decrypted during setup: a duplicate, which must fail.
            if ct == *real {
                assert_eq!(got.is_some(), *from != alice(), "real pkmsg from {from}");
            }
        }
        6 => {
            let (real, plain) = &setup.skmsgs[usize::from(input.byte()) % setup.skmsgs.len()];
            let ct = mutate(real, &mut input);
            check_decoders(&ct);
            let got = on_bob(|s| signal::decrypt_group(s, &group_name(), &ct));
            if let Some(got) = &got {
                assert_eq!(got, plain, "a mutated skmsg decrypted to something else");
            }
            assert!(
                got.is_some() || ct != *real,
                "a real skmsg failed to decrypt"
            );
        }
        _ => record_round_trip(input.rest()),
    }
});
