//! One conformance suite for every `Store` backend: each `check_*` function takes a
//! fresh `&dyn Store` and asserts the trait's contract; the modules at the end run
//! the suite against `MemoryStore`, (feature `sled`) `SledStore` in its own database
//! and as a tree of a shared `SledDatabase`, and through the async contract
//! (`Persist`): every write of the suite then goes through `BlockingPersist` or a
//! `GroupCommitter` and is read back once its future resolved (read-your-writes).
//! Group-commit specifics (concurrent sessions, failing flushes) are in
//! `tests/store_commit.rs`.

use std::sync::atomic::{AtomicBool, Ordering};

use wa_engine::store::{
    Credentials, KeyPair, PreKeyCounters, ProtocolAddress, SenderKeyName, SignedPreKey, Store,
    StoreBatch,
};

fn addr(name: &str, device_id: u32) -> ProtocolAddress {
    ProtocolAddress::new(name, device_id)
}

fn credentials() -> Credentials {
    Credentials::new(
        KeyPair::new([0x11; 32], [0xa1; 32]),
        KeyPair::new([0x21; 32], [0xa2; 32]),
        16_380,
        SignedPreKey {
            id: 1,
            key_pair: KeyPair::new([0x31; 32], [0xa3; 32]),
            signature: [0x33; 64],
        },
        [0xa4; 32],
    )
}

fn apply(store: &dyn Store, fill: impl FnOnce(&mut StoreBatch)) {
    let mut batch = StoreBatch::new();
    fill(&mut batch);
    store.apply(batch).expect("apply");
}

fn bytes(b: Option<wa_engine::store::Blob>) -> Option<Vec<u8>> {
    b.map(|b| b.to_vec())
}

fn check_credentials_round_trip(store: &dyn Store) {
    assert!(
        store.credentials().expect("read").is_none(),
        "new store has no credentials"
    );

    let unpaired = credentials();
    apply(store, |b| {
        b.put_credentials(&unpaired);
    });
    let read = store.credentials().expect("read").expect("present");
    assert_eq!(read, unpaired);
    assert!(!read.is_paired());

    let mut paired = unpaired.clone();
    paired.id = Some("559984726662:77@s.whatsapp.net".into());
    paired.lid = Some("236395184570386:77@lid".into());
    paired.account = Some(vec![0x0a, 0x12, 0x08, 0x01]);
    paired.platform = "android".into();
    paired.business_name = "Business Name".into();
    paired.push_name = "wa-rs".into();
    apply(store, |b| {
        b.put_credentials(&paired);
    });
    let read = store.credentials().expect("read").expect("present");
    assert_eq!(read, paired);
    assert!(read.is_paired());

    apply(store, |b| {
        b.delete_credentials();
    });
    assert!(store.credentials().expect("read").is_none());
}

fn check_identities(store: &dyn Store) {
    let a = addr("559984726662", 0);
    assert_eq!(bytes(store.identity(&a).expect("read")), None);
    apply(store, |b| {
        b.put_identity(&a, [5u8; 32])
            .put_identity(&addr("559984726662", 77), [6u8; 32])
            .put_identity(&addr("5599847266620", 1), [7u8; 32]);
    });
    assert_eq!(bytes(store.identity(&a).expect("read")), Some(vec![5; 32]));
    assert_eq!(
        store.identity_devices("559984726662").expect("list"),
        vec![0, 77],
        "a longer name with the same prefix is another user"
    );
    apply(store, |b| {
        b.put_identity(&a, [8u8; 32]);
    });
    assert_eq!(
        bytes(store.identity(&a).expect("read")),
        Some(vec![8; 32]),
        "put replaces"
    );
    apply(store, |b| {
        b.delete_identity(&a);
    });
    assert_eq!(bytes(store.identity(&a).expect("read")), None);
    assert_eq!(
        store.identity_devices("559984726662").expect("list"),
        vec![77]
    );
}

fn check_sessions(store: &dyn Store) {
    let user = "236395184570386_1";
    assert!(store.session_devices(user).expect("list").is_empty());
    apply(store, |b| {
        for device in [300, 2, 0, 70_000] {
            b.put_session(
                &addr(user, device),
                format!("session {device}").into_bytes(),
            );
        }
        b.put_session(&addr("other", 2), b"other".to_vec());
    });
    assert_eq!(
        bytes(store.session(&addr(user, 2)).expect("read")),
        Some(b"session 2".to_vec())
    );
    assert_eq!(
        store.session_devices(user).expect("list"),
        vec![0, 2, 300, 70_000]
    );
    assert!(
        store.identity(&addr(user, 2)).expect("read").is_none(),
        "sessions and identities are separate concerns"
    );
    apply(store, |b| {
        b.delete_session(&addr(user, 300))
            .delete_session(&addr(user, 9));
    });
    assert_eq!(
        store.session_devices(user).expect("list"),
        vec![0, 2, 70_000]
    );
    assert_eq!(bytes(store.session(&addr(user, 300)).expect("read")), None);
}

fn check_prekeys(store: &dyn Store) {
    assert!(store.prekey_ids().expect("list").is_empty());
    assert_eq!(store.prekey_counters().expect("read"), None);
    assert_eq!(
        PreKeyCounters::default(),
        PreKeyCounters {
            next_id: 1,
            first_unuploaded_id: 1
        }
    );

    // Generate 5 prekeys and advance the counter in one batch, as before an upload.
    apply(store, |b| {
        for id in 1..=5u32 {
            b.put_prekey(id, id.to_be_bytes());
        }
        b.put_prekey_counters(PreKeyCounters {
            next_id: 6,
            first_unuploaded_id: 1,
        });
    });
    assert_eq!(store.prekey_ids().expect("list"), vec![1, 2, 3, 4, 5]);
    assert_eq!(
        bytes(store.prekey(3).expect("read")),
        Some(3u32.to_be_bytes().to_vec())
    );
    // Upload done; a pkmsg consumed prekey 3.
    apply(store, |b| {
        b.put_prekey_counters(PreKeyCounters {
            next_id: 6,
            first_unuploaded_id: 6,
        })
        .delete_prekey(3);
    });
    assert_eq!(store.prekey_ids().expect("list"), vec![1, 2, 4, 5]);
    assert_eq!(bytes(store.prekey(3).expect("read")), None);
    assert_eq!(
        store.prekey_counters().expect("read"),
        Some(PreKeyCounters {
            next_id: 6,
            first_unuploaded_id: 6
        })
    );
    // 24-bit ids and beyond sort numerically.
    apply(store, |b| {
        b.put_prekey(0x00ff_ffff, b"max".to_vec());
    });
    assert_eq!(store.prekey_ids().expect("list").last(), Some(&0x00ff_ffff));
}

fn check_signed_prekeys(store: &dyn Store) {
    apply(store, |b| {
        b.put_signed_prekey(2, b"spk2".to_vec())
            .put_signed_prekey(1, b"spk1".to_vec());
    });
    assert_eq!(store.signed_prekey_ids().expect("list"), vec![1, 2]);
    assert_eq!(
        bytes(store.signed_prekey(1).expect("read")),
        Some(b"spk1".to_vec())
    );
    assert!(
        store.prekey(1).expect("read").is_none(),
        "signed prekeys and one-time prekeys are separate concerns"
    );
    apply(store, |b| {
        b.delete_signed_prekey(1);
    });
    assert_eq!(store.signed_prekey_ids().expect("list"), vec![2]);
}

fn check_sender_keys(store: &dyn Store) {
    let group = "120363025246125888@g.us";
    let alice0 = SenderKeyName::new(group, addr("alice", 0));
    let alice1 = SenderKeyName::new(group, addr("alice", 1));
    let other_group = SenderKeyName::new("120363000000000000@g.us", addr("alice", 0));
    apply(store, |b| {
        b.put_sender_key(&alice0, b"a0".to_vec())
            .put_sender_key(&alice1, b"a1".to_vec());
    });
    assert_eq!(
        bytes(store.sender_key(&alice0).expect("read")),
        Some(b"a0".to_vec())
    );
    assert_eq!(
        bytes(store.sender_key(&alice1).expect("read")),
        Some(b"a1".to_vec())
    );
    assert_eq!(bytes(store.sender_key(&other_group).expect("read")), None);
    apply(store, |b| {
        b.delete_sender_key(&alice0);
    });
    assert_eq!(bytes(store.sender_key(&alice0).expect("read")), None);
    assert!(store.sender_key(&alice1).expect("read").is_some());
}

fn check_app_values(store: &dyn Store) {
    apply(store, |b| {
        b.put_app_value(
            "wa-server",
            b"webhook",
            b"https://example.invalid/hook".to_vec(),
        )
        .put_app_value("wa-server", b"a", b"1".to_vec())
        .put_app_value("wa-server2", b"webhook", b"other".to_vec())
        .put_app_value("wa-server", b"", b"empty key".to_vec());
    });
    assert_eq!(
        bytes(store.app_value("wa-server", b"webhook").expect("read")),
        Some(b"https://example.invalid/hook".to_vec())
    );
    assert_eq!(
        store.app_keys("wa-server").expect("list"),
        vec![b"".to_vec(), b"a".to_vec(), b"webhook".to_vec()],
        "namespaces are isolated, keys ascend"
    );
    assert_eq!(
        bytes(store.app_value("wa-server2", b"webhook").expect("read")),
        Some(b"other".to_vec())
    );
    apply(store, |b| {
        b.delete_app_value("wa-server", b"a");
    });
    assert_eq!(
        bytes(store.app_value("wa-server", b"a").expect("read")),
        None
    );
    assert_eq!(store.app_keys("wa-server").expect("list").len(), 2);
}

fn check_batch_order_and_empty_batch(store: &dyn Store) {
    let a = addr("order", 1);
    store
        .apply(StoreBatch::new())
        .expect("empty batch is a no-op");
    apply(store, |b| {
        b.put_session(&a, b"first".to_vec())
            .put_session(&a, b"second".to_vec());
    });
    assert_eq!(
        bytes(store.session(&a).expect("read")),
        Some(b"second".to_vec()),
        "the later put wins"
    );
    apply(store, |b| {
        b.put_session(&a, b"third".to_vec()).delete_session(&a);
    });
    assert_eq!(
        bytes(store.session(&a).expect("read")),
        None,
        "a delete after a put wins"
    );
    apply(store, |b| {
        b.delete_session(&a).put_session(&a, b"fourth".to_vec());
    });
    assert_eq!(
        bytes(store.session(&a).expect("read")),
        Some(b"fourth".to_vec()),
        "a put after a delete wins"
    );
}

/// Keys touched by every atomicity batch, across concerns, in ascending key order
/// (identities < sessions < prekeys < sender keys < app values).
const KEYS_PER_CONCERN: u32 = 8;

fn write_generation(b: &mut StoreBatch, generation: u64) {
    let value = generation.to_be_bytes();
    for i in 0..KEYS_PER_CONCERN {
        b.put_identity(&addr("atomic", i), value);
    }
    for i in 0..KEYS_PER_CONCERN {
        b.put_session(&addr("atomic", i), value);
    }
    for i in 0..KEYS_PER_CONCERN {
        b.put_prekey(1000 + i, value);
    }
    for i in 0..KEYS_PER_CONCERN {
        b.put_sender_key(&SenderKeyName::new("g@g.us", addr("atomic", i)), value);
    }
    for i in 0..KEYS_PER_CONCERN {
        b.put_app_value("atomic", &i.to_be_bytes(), value);
    }
}

/// Reads every key of [`write_generation`] in ascending key order.
fn read_generations(store: &dyn Store) -> Vec<Option<u64>> {
    let decode = |b: Option<wa_engine::store::Blob>| {
        b.map(|b| u64::from_be_bytes(b.as_bytes().try_into().expect("8 bytes")))
    };
    let mut out = Vec::new();
    for i in 0..KEYS_PER_CONCERN {
        out.push(decode(store.identity(&addr("atomic", i)).expect("read")));
    }
    for i in 0..KEYS_PER_CONCERN {
        out.push(decode(store.session(&addr("atomic", i)).expect("read")));
    }
    for i in 0..KEYS_PER_CONCERN {
        out.push(decode(store.prekey(1000 + i).expect("read")));
    }
    for i in 0..KEYS_PER_CONCERN {
        let name = SenderKeyName::new("g@g.us", addr("atomic", i));
        out.push(decode(store.sender_key(&name).expect("read")));
    }
    for i in 0..KEYS_PER_CONCERN {
        out.push(decode(
            store.app_value("atomic", &i.to_be_bytes()).expect("read"),
        ));
    }
    out
}

/// A writer applies batches that set 40 keys across five concerns to generation `g`;
/// a reader concurrently reads them in the writer's order. With all-or-nothing
/// batches the generations a reader sees can only rise along its reads; a batch
/// applied key by key would let it see a new value followed by an old one.
fn check_batches_are_all_or_nothing_to_readers(store: &dyn Store, batches: u64) {
    apply(store, |b| write_generation(b, 0));
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut rounds = 0u64;
            while !done.load(Ordering::Acquire) || rounds == 0 {
                let seen = read_generations(store);
                assert!(
                    seen.iter().all(Option::is_some),
                    "a key went missing: {seen:?}"
                );
                assert!(
                    seen.windows(2).all(|w| w[0] <= w[1]),
                    "saw part of a batch: {seen:?}"
                );
                rounds += 1;
            }
            rounds
        });
        for generation in 1..=batches {
            apply(store, |b| write_generation(b, generation));
        }
        done.store(true, Ordering::Release);
        let rounds = reader.join().expect("reader panicked");
        assert!(rounds > 0);
    });
    assert!(read_generations(store).iter().all(|g| *g == Some(batches)));
}

/// The 2026 concerns (LID map, app-state sync keys and collections, tctokens, NCT salt).
fn check_lid_app_state_tokens_and_salt(store: &dyn Store) {
    apply(store, |b| {
        b.put_lid_mapping("15551234567", "123456789012345")
            .put_lid_mapping("15550000000", "100000000000000")
            .put_app_state_sync_key(b"\x00\x01", b"key".to_vec())
            .put_app_state_sync_key(b"\x00", b"k0".to_vec())
            .put_app_state_collection("regular_high", b"state".to_vec())
            .put_tc_token("2@lid", b"t2".to_vec())
            .put_tc_token("1@lid", b"t1".to_vec())
            .put_nct_salt([7u8; 32]);
    });
    assert_eq!(
        store.lid_for_pn("15551234567").expect("read").as_deref(),
        Some("123456789012345")
    );
    assert_eq!(
        store
            .pn_for_lid("100000000000000")
            .expect("read")
            .as_deref(),
        Some("15550000000")
    );
    assert_eq!(store.lid_for_pn("1555123456").expect("read"), None);
    assert_eq!(
        store.app_state_sync_key_ids().expect("list"),
        [vec![0], vec![0, 1]]
    );
    assert_eq!(
        bytes(store.app_state_sync_key(b"\x00\x01").expect("read")),
        Some(b"key".to_vec())
    );
    assert_eq!(
        bytes(store.app_state_collection("regular_high").expect("read")),
        Some(b"state".to_vec())
    );
    assert_eq!(store.tc_token_jids().expect("list"), ["1@lid", "2@lid"]);
    assert_eq!(bytes(store.nct_salt().expect("read")), Some(vec![7u8; 32]));
    apply(store, |b| {
        b.delete_lid_mapping("15551234567", "123456789012345")
            .delete_app_state_collection("regular_high")
            .delete_tc_token("1@lid")
            .delete_nct_salt();
    });
    assert_eq!(store.lid_for_pn("15551234567").expect("read"), None);
    assert_eq!(store.pn_for_lid("123456789012345").expect("read"), None);
    assert_eq!(
        store.lid_for_pn("15550000000").expect("read").as_deref(),
        Some("100000000000000")
    );
    assert_eq!(
        store.app_state_collection("regular_high").expect("read"),
        None
    );
    assert_eq!(store.tc_token_jids().expect("list"), ["2@lid"]);
    assert_eq!(store.nct_salt().expect("read"), None);
}

fn check_wipe(store: &dyn Store) {
    let a = addr("wipe", 3);
    let skn = SenderKeyName::new("g@g.us", a.clone());
    apply(store, |b| {
        b.put_credentials(&credentials())
            .put_identity(&a, [1u8; 32])
            .put_session(&a, b"s".to_vec())
            .put_prekey(7, b"p".to_vec())
            .put_prekey_counters(PreKeyCounters::default())
            .put_signed_prekey(1, b"spk".to_vec())
            .put_sender_key(&skn, b"sk".to_vec())
            .put_app_value("ns", b"k", b"v".to_vec())
            .put_lid_mapping("1", "2")
            .put_app_state_sync_key(b"id", b"key".to_vec())
            .put_app_state_collection("regular", b"state".to_vec())
            .put_tc_token("1@lid", b"t".to_vec())
            .put_nct_salt(b"salt".to_vec());
    });
    store.wipe().expect("wipe");
    assert!(store.credentials().expect("read").is_none());
    assert!(store.identity(&a).expect("read").is_none());
    assert!(store.session(&a).expect("read").is_none());
    assert!(store.session_devices("wipe").expect("list").is_empty());
    assert!(store.prekey_ids().expect("list").is_empty());
    assert!(store.prekey_counters().expect("read").is_none());
    assert!(store.signed_prekey_ids().expect("list").is_empty());
    assert!(store.sender_key(&skn).expect("read").is_none());
    assert!(store.app_keys("ns").expect("list").is_empty());
    assert!(store.lid_for_pn("1").expect("read").is_none());
    assert!(store.pn_for_lid("2").expect("read").is_none());
    assert!(store.app_state_sync_key_ids().expect("list").is_empty());
    assert!(
        store
            .app_state_collection("regular")
            .expect("read")
            .is_none()
    );
    assert!(store.tc_token_jids().expect("list").is_empty());
    assert!(store.nct_salt().expect("read").is_none());
    // Still usable afterwards.
    apply(store, |b| {
        b.put_session(&a, b"again".to_vec());
    });
    assert_eq!(
        bytes(store.session(&a).expect("read")),
        Some(b"again".to_vec())
    );
}

#[test]
fn credentials_record_from_a_newer_build_still_decodes() {
    let c = credentials();
    let mut bytes = c.to_bytes().to_vec();
    // A newer build: record version 2 (field 1 again; protobuf keeps the last) and an
    // unknown field 99 (length-delimited, "new").
    bytes.extend_from_slice(&[0x08, 0x02]);
    bytes.extend_from_slice(&[0x9a, 0x06, 0x03, b'n', b'e', b'w']);
    assert_eq!(Credentials::from_bytes(&bytes).expect("decodes"), c);
}

#[test]
fn credentials_record_without_version_or_with_short_keys_is_corrupt() {
    use wa_engine::store::StoreError;
    let corrupt = |bytes: &[u8]| {
        matches!(
            Credentials::from_bytes(bytes),
            Err(StoreError::Corrupt {
                what: "credentials record"
            })
        )
    };
    assert!(corrupt(&[]), "no version");
    assert!(corrupt(b"\xff\xff\xff"), "not protobuf");
    let mut bytes = credentials().to_bytes().to_vec();
    // Field 2 (noise public key) again with 3 bytes: wrong length.
    bytes.extend_from_slice(&[0x12, 0x03, 1, 2, 3]);
    assert!(corrupt(&bytes), "short key");
}

#[test]
fn debug_output_holds_no_key_material() {
    let mut batch = StoreBatch::new();
    batch
        .put_credentials(&credentials())
        .put_session(&addr("peer", 1), vec![0xab; 40]);
    let text = format!(
        "{:?} {:?} {:?}",
        credentials(),
        batch,
        wa_engine::store::Blob::from(vec![0xab; 40])
    );
    for secret in ["a1a1", "a2a2", "a3a3", "a4a4", "abab"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert!(text.contains("puts: 2"), "{text}");
}

/// Views a test fixture as the trait object under test.
trait AsDyn {
    fn as_dyn(&self) -> &dyn Store;
}

impl AsDyn for wa_engine::store::MemoryStore {
    fn as_dyn(&self) -> &dyn Store {
        self
    }
}

/// Runs every check, each on a fresh store from `new_store`.
macro_rules! conformance {
    ($new_store:expr) => {
        #[test]
        fn credentials_round_trip() {
            let store = $new_store;
            crate::check_credentials_round_trip(crate::AsDyn::as_dyn(&store));
        }
        #[test]
        fn identities_put_get_delete_list() {
            let store = $new_store;
            crate::check_identities(crate::AsDyn::as_dyn(&store));
        }
        #[test]
        fn sessions_put_get_delete_list() {
            let store = $new_store;
            crate::check_sessions(crate::AsDyn::as_dyn(&store));
        }
        #[test]
        fn prekeys_and_counters_put_get_delete_list() {
            let store = $new_store;
            crate::check_prekeys(crate::AsDyn::as_dyn(&store));
        }
        #[test]
        fn signed_prekeys_put_get_delete_list() {
            let store = $new_store;
            crate::check_signed_prekeys(crate::AsDyn::as_dyn(&store));
        }
        #[test]
        fn sender_keys_put_get_delete() {
            let store = $new_store;
            crate::check_sender_keys(crate::AsDyn::as_dyn(&store));
        }
        #[test]
        fn app_values_are_namespaced() {
            let store = $new_store;
            crate::check_app_values(crate::AsDyn::as_dyn(&store));
        }
        #[test]
        fn batch_ops_apply_in_order() {
            let store = $new_store;
            crate::check_batch_order_and_empty_batch(crate::AsDyn::as_dyn(&store));
        }
        #[test]
        fn batches_are_all_or_nothing_to_readers() {
            let store = $new_store;
            crate::check_batches_are_all_or_nothing_to_readers(crate::AsDyn::as_dyn(&store), 200);
        }
        #[test]
        fn lid_app_state_tokens_and_salt_put_get_delete_list() {
            let store = $new_store;
            crate::check_lid_app_state_tokens_and_salt(crate::AsDyn::as_dyn(&store));
        }
        #[test]
        fn wipe_removes_every_concern() {
            let store = $new_store;
            crate::check_wipe(crate::AsDyn::as_dyn(&store));
        }
    };
}

mod memory {
    use wa_engine::store::MemoryStore;
    conformance!(MemoryStore::new());
}

#[cfg(feature = "sled")]
mod sled {
    use wa_engine::store::SledStore;

    /// A store in a fresh temporary directory; the directory lives as long as the store.
    struct TempStore {
        store: SledStore,
        _dir: tempfile::TempDir,
    }

    impl crate::AsDyn for TempStore {
        fn as_dyn(&self) -> &dyn wa_engine::store::Store {
            &self.store
        }
    }

    fn new_store() -> TempStore {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path().join("state")).expect("open");
        TempStore { store, _dir: dir }
    }

    conformance!(new_store());
}

/// Stores as trees of one shared `SledDatabase`: a neighbouring store is open and
/// written alongside, so the suite also checks that stores do not see each other.
#[cfg(feature = "sled")]
mod sled_shared {
    use wa_engine::store::{SledDatabase, SledStore, Store, StoreBatch};

    struct TempStore {
        store: SledStore,
        _neighbour: SledStore,
        _db: SledDatabase,
        _dir: tempfile::TempDir,
    }

    impl crate::AsDyn for TempStore {
        fn as_dyn(&self) -> &dyn wa_engine::store::Store {
            &self.store
        }
    }

    fn new_store() -> TempStore {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SledDatabase::open(dir.path().join("db")).expect("open");
        let neighbour = db.store("neighbour").expect("neighbour");
        let mut batch = StoreBatch::new();
        batch.put_app_value("ns", b"k", b"neighbour's value".to_vec());
        neighbour.apply(batch).expect("apply");
        let store = db.store("session-1").expect("store");
        TempStore {
            store,
            _neighbour: neighbour,
            _db: db,
            _dir: dir,
        }
    }

    conformance!(new_store());
}

/// A store whose writes go through a [`Persist`](wa_engine::store::Persist): `apply`
/// hands the batch over and blocks on its future; reads go straight to the store, so
/// every check of the suite reads its own writes only after `persist` resolved.
mod via_persist {
    use std::sync::Arc;

    use wa_engine::store::{
        Blob, Credentials, Persist, PreKeyCounters, ProtocolAddress, SenderKeyName, Store,
        StoreBatch, StoreError,
    };

    pub(crate) struct ViaPersist {
        pub(crate) store: Arc<dyn Store>,
        pub(crate) persist: Arc<dyn Persist>,
        pub(crate) runtime: tokio::runtime::Runtime,
        /// Whatever else must live as long as the store (temporary directories, the
        /// database handle).
        pub(crate) _keep: Box<dyn std::any::Any + Send + Sync>,
    }

    impl ViaPersist {
        pub(crate) fn new(
            store: Arc<dyn Store>,
            persist: Arc<dyn Persist>,
            keep: Box<dyn std::any::Any + Send + Sync>,
        ) -> Self {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            Self {
                store,
                persist,
                runtime,
                _keep: keep,
            }
        }
    }

    impl crate::AsDyn for ViaPersist {
        fn as_dyn(&self) -> &dyn Store {
            self
        }
    }

    impl Store for ViaPersist {
        fn credentials(&self) -> Result<Option<Credentials>, StoreError> {
            self.store.credentials()
        }
        fn identity(&self, a: &ProtocolAddress) -> Result<Option<Blob>, StoreError> {
            self.store.identity(a)
        }
        fn identity_devices(&self, name: &str) -> Result<Vec<u32>, StoreError> {
            self.store.identity_devices(name)
        }
        fn session(&self, a: &ProtocolAddress) -> Result<Option<Blob>, StoreError> {
            self.store.session(a)
        }
        fn session_devices(&self, name: &str) -> Result<Vec<u32>, StoreError> {
            self.store.session_devices(name)
        }
        fn prekey(&self, id: u32) -> Result<Option<Blob>, StoreError> {
            self.store.prekey(id)
        }
        fn prekey_ids(&self) -> Result<Vec<u32>, StoreError> {
            self.store.prekey_ids()
        }
        fn prekey_counters(&self) -> Result<Option<PreKeyCounters>, StoreError> {
            self.store.prekey_counters()
        }
        fn signed_prekey(&self, id: u32) -> Result<Option<Blob>, StoreError> {
            self.store.signed_prekey(id)
        }
        fn signed_prekey_ids(&self) -> Result<Vec<u32>, StoreError> {
            self.store.signed_prekey_ids()
        }
        fn sender_key(&self, n: &SenderKeyName) -> Result<Option<Blob>, StoreError> {
            self.store.sender_key(n)
        }
        fn app_value(&self, ns: &str, k: &[u8]) -> Result<Option<Blob>, StoreError> {
            self.store.app_value(ns, k)
        }
        fn app_keys(&self, ns: &str) -> Result<Vec<Vec<u8>>, StoreError> {
            self.store.app_keys(ns)
        }
        fn lid_for_pn(&self, pn: &str) -> Result<Option<String>, StoreError> {
            self.store.lid_for_pn(pn)
        }
        fn pn_for_lid(&self, lid: &str) -> Result<Option<String>, StoreError> {
            self.store.pn_for_lid(lid)
        }
        fn app_state_sync_key(&self, id: &[u8]) -> Result<Option<Blob>, StoreError> {
            self.store.app_state_sync_key(id)
        }
        fn app_state_sync_key_ids(&self) -> Result<Vec<Vec<u8>>, StoreError> {
            self.store.app_state_sync_key_ids()
        }
        fn app_state_collection(&self, name: &str) -> Result<Option<Blob>, StoreError> {
            self.store.app_state_collection(name)
        }
        fn tc_token(&self, jid: &str) -> Result<Option<Blob>, StoreError> {
            self.store.tc_token(jid)
        }
        fn tc_token_jids(&self) -> Result<Vec<String>, StoreError> {
            self.store.tc_token_jids()
        }
        fn nct_salt(&self) -> Result<Option<Blob>, StoreError> {
            self.store.nct_salt()
        }
        fn apply(&self, batch: StoreBatch) -> Result<(), StoreError> {
            // `persist` is called inside the runtime, as a driver task would.
            let done = {
                let _entered = self.runtime.enter();
                self.persist.persist(batch)
            };
            self.runtime.block_on(done)
        }
        fn wipe(&self) -> Result<(), StoreError> {
            self.store.wipe()
        }
    }
}

/// `MemoryStore` through a `GroupCommitter` (no-op flush) and through `InlinePersist`.
mod memory_group_commit {
    use std::sync::Arc;

    use wa_engine::store::{GroupCommitConfig, GroupCommitter, MemoryStore, Store};

    use crate::via_persist::ViaPersist;

    fn new_store() -> ViaPersist {
        let store = Arc::new(MemoryStore::new());
        let committer = GroupCommitter::spawn(store.clone(), GroupCommitConfig::default());
        let persist = committer.persist_for(store.clone());
        ViaPersist::new(store as Arc<dyn Store>, persist, Box::new(()))
    }

    conformance!(new_store());
}

mod memory_inline {
    use std::sync::Arc;

    use wa_engine::store::{InlinePersist, MemoryStore, Store};

    use crate::via_persist::ViaPersist;

    fn new_store() -> ViaPersist {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let persist = Arc::new(InlinePersist::new(store.clone()));
        ViaPersist::new(store, persist, Box::new(()))
    }

    conformance!(new_store());
}

/// A dedicated `SledStore` through `BlockingPersist`.
#[cfg(feature = "sled")]
mod sled_blocking {
    use std::sync::Arc;

    use wa_engine::store::{BlockingPersist, SledStore, Store};

    use crate::via_persist::ViaPersist;

    fn new_store() -> ViaPersist {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> =
            Arc::new(SledStore::open(dir.path().join("state")).expect("open"));
        let persist = Arc::new(BlockingPersist::new(store.clone()));
        ViaPersist::new(store, persist, Box::new(dir))
    }

    conformance!(new_store());
}

/// A dedicated `SledStore` through a `GroupCommitter` flushing its own database.
#[cfg(feature = "sled")]
mod sled_group_commit {
    use std::sync::Arc;

    use wa_engine::store::{GroupCommitConfig, GroupCommitter, SledStore, Store};

    use crate::via_persist::ViaPersist;

    fn new_store() -> ViaPersist {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SledStore::open(dir.path().join("state")).expect("open"));
        let committer = GroupCommitter::spawn(store.clone(), GroupCommitConfig::default());
        let persist = committer.persist_for(store.clone());
        ViaPersist::new(store as Arc<dyn Store>, persist, Box::new(dir))
    }

    conformance!(new_store());
}

/// A tree of a shared `SledDatabase` through the database's `GroupCommitter`, with a
/// neighbouring store committing through the same committer alongside.
#[cfg(feature = "sled")]
mod sled_shared_group_commit {
    use std::sync::Arc;

    use wa_engine::store::{GroupCommitConfig, GroupCommitter, SledDatabase, Store, StoreBatch};

    use crate::via_persist::ViaPersist;

    fn new_store() -> ViaPersist {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SledDatabase::open(dir.path().join("db")).expect("open");
        let committer = GroupCommitter::spawn(
            Arc::new(db.clone()),
            GroupCommitConfig {
                max_delay: std::time::Duration::from_micros(200),
                ..GroupCommitConfig::default()
            },
        );
        let neighbour: Arc<dyn Store> = Arc::new(db.store("neighbour").expect("neighbour"));
        let neighbour_persist = committer.persist_for(neighbour.clone());
        let mut batch = StoreBatch::new();
        batch.put_app_value("ns", b"k", b"neighbour's value".to_vec());
        let store: Arc<dyn Store> = Arc::new(db.store("session-1").expect("store"));
        let persist = committer.persist_for(store.clone());
        let via = ViaPersist::new(
            store,
            persist,
            Box::new((dir, db, neighbour.clone(), neighbour_persist.clone())),
        );
        via.runtime
            .block_on(neighbour_persist.persist(batch))
            .expect("neighbour batch");
        via
    }

    conformance!(new_store());
}
