//! `SledDatabase`: many stores as trees of one sled database. Isolation, persistence,
//! one open handle per name, removal, recovery from interrupted creation, damage
//! reported as typed errors, and atomic batches across a SIGKILL with several stores
//! writing at once.
#![cfg(feature = "sled")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use wa_engine::store::{ProtocolAddress, SledDatabase, SledStore, Store, StoreBatch, StoreError};

const CHILD_MODE: &str = "WA_SHARED_CHILD";
const CHILD_DIR: &str = "WA_SHARED_DIR";
const CRASH_STORES: u32 = 4;
const CRASH_KEYS: u32 = 32;

fn addr(device_id: u32) -> ProtocolAddress {
    ProtocolAddress::new("559984726662", device_id)
}

fn put(store: &SledStore, key: &[u8], value: &[u8]) {
    let mut b = StoreBatch::new();
    b.put_app_value("t", key, value.to_vec());
    store.apply(b).expect("apply");
}

fn get(store: &SledStore, key: &[u8]) -> Option<Vec<u8>> {
    store.app_value("t", key).expect("read").map(|b| b.to_vec())
}

/// Opens the database directory directly with sled, waiting for the previous handle's
/// lock to be released (sled releases it in the background; spacejam/sled #1234).
fn raw_open(dir: &Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match sled::open(dir) {
            Ok(db) => return db,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("raw open: {e:?}"),
        }
    }
}

#[test]
fn stores_are_isolated_and_survive_reopening_the_database() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    {
        let db = SledDatabase::open(&dir).expect("open");
        let a = db.store("alice").expect("alice");
        let b = db.store("bob").expect("bob");
        put(&a, b"k", b"alice's");
        put(&b, b"k", b"bob's");
        let mut batch = StoreBatch::new();
        batch.put_session(&addr(3), b"ratchet".to_vec());
        a.apply(batch).expect("apply");
        assert_eq!(get(&a, b"k").as_deref(), Some(&b"alice's"[..]));
        assert_eq!(get(&b, b"k").as_deref(), Some(&b"bob's"[..]));
        assert_eq!(
            b.session(&addr(3)).expect("read"),
            None,
            "bob sees alice's session"
        );
        assert_eq!(a.name(), Some("alice"));
    }
    let db = SledDatabase::open(&dir).expect("reopen");
    assert_eq!(db.names().expect("names"), ["alice", "bob"]);
    let a = db.store("alice").expect("alice");
    assert_eq!(get(&a, b"k").as_deref(), Some(&b"alice's"[..]));
    assert_eq!(
        a.session(&addr(3)).expect("read").map(|b| b.to_vec()),
        Some(b"ratchet".to_vec())
    );
}

#[test]
fn a_name_is_open_once_at_a_time() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = SledDatabase::open(tmp.path().join("db")).expect("open");
    let first = db.store("s1").expect("first");
    let err = db.store("s1").expect_err("second open of the same name");
    assert!(matches!(err, StoreError::Locked), "{err:?}");
    let err = db.remove("s1").expect_err("remove while open");
    assert!(matches!(err, StoreError::Locked), "{err:?}");
    drop(first);
    db.store("s1").expect("open again after drop");
    let err = SledDatabase::open(tmp.path().join("db")).expect_err("second database handle");
    assert!(matches!(err, StoreError::Locked), "{err:?}");
}

#[test]
fn remove_deletes_everything_and_the_name_starts_afresh() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = SledDatabase::open(tmp.path().join("db")).expect("open");
    let keep = db.store("keep").expect("keep");
    put(&keep, b"k", b"kept");
    {
        let gone = db.store("gone").expect("gone");
        put(&gone, b"k", b"secret");
    }
    db.remove("gone").expect("remove");
    db.remove("never-existed")
        .expect("removing a missing store is a no-op");
    assert_eq!(db.names().expect("names"), ["keep"]);
    assert!(!db.contains("gone").expect("contains"));
    assert!(
        !tmp.path().join("db/stores/gone").exists(),
        "seal left behind"
    );
    let again = db.store("gone").expect("recreate");
    assert_eq!(get(&again, b"k"), None, "old data came back");
    assert_eq!(get(&keep, b"k").as_deref(), Some(&b"kept"[..]));
}

#[test]
fn invalid_names_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = SledDatabase::open(tmp.path().join("db")).expect("open");
    let long = "x".repeat(wa_engine::store::MAX_STORE_NAME_LEN + 1);
    for name in [
        "",
        ".hidden",
        "../escape",
        "a/b",
        "spa ce",
        "é",
        long.as_str(),
    ] {
        let err = db.store(name).expect_err(name);
        assert!(matches!(err, StoreError::Open(_)), "{name:?}: {err:?}");
    }
    db.store("session_1-a.b").expect("valid name");
}

#[test]
fn an_interrupted_creation_is_reset_not_reported_corrupt() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    {
        let db = SledDatabase::open(&dir).expect("open");
        let s = db.store("s").expect("store");
        put(&s, b"k", b"half-created");
    }
    // Simulate a crash before the store was registered: drop the registry key.
    {
        let raw = raw_open(&dir);
        raw.remove(b"store/s").expect("raw remove");
        raw.flush().expect("raw flush");
    }
    let db = SledDatabase::open(&dir).expect("reopen");
    assert!(db.names().expect("names").is_empty());
    let s = db.store("s").expect("created afresh");
    assert_eq!(get(&s, b"k"), None);
}

#[test]
fn a_registered_store_without_its_seal_or_schema_is_corrupt() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    {
        let db = SledDatabase::open(&dir).expect("open");
        put(&db.store("noseal").expect("store"), b"k", b"v");
        put(&db.store("noschema").expect("store"), b"k", b"v");
    }
    std::fs::remove_file(dir.join("stores/noseal/wa-seal")).expect("remove seal");
    {
        let raw = raw_open(&dir);
        let tree = raw.open_tree(b"store/noschema").expect("tree");
        tree.remove(b"\x00schema").expect("raw remove");
        raw.flush().expect("raw flush");
    }
    let db = SledDatabase::open(&dir).expect("reopen");
    for name in ["noseal", "noschema"] {
        let err = db.store(name).expect_err(name);
        assert!(matches!(err, StoreError::Corrupt { .. }), "{name}: {err:?}");
    }
}

struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The child side of the crash test; a no-op in a normal test run. It writes batches to
/// `CRASH_STORES` stores in turn, each batch setting every key of that store to the
/// batch's generation.
#[test]
fn child_writer() {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        return;
    };
    assert_eq!(mode, "loop");
    let dir = PathBuf::from(std::env::var_os(CHILD_DIR).expect("dir"));
    let db = SledDatabase::open(&dir).expect("child open");
    let stores: Vec<SledStore> = (0..CRASH_STORES)
        .map(|i| db.store(&format!("s{i}")).expect("child store"))
        .collect();
    for generation in 1..=100_000u64 {
        for store in &stores {
            let mut b = StoreBatch::new();
            for i in 0..CRASH_KEYS {
                b.put_session(&addr(i), generation.to_be_bytes());
            }
            b.put_app_value("crash", b"generation", generation.to_be_bytes());
            store.apply(b).expect("child apply");
        }
        println!("applied:{generation}");
    }
    std::thread::sleep(std::time::Duration::from_secs(60));
}

#[cfg(unix)]
#[test]
fn batches_of_every_store_stay_all_or_nothing_across_sigkill() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = ChildGuard(
        Command::new(exe)
            .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
            .env(CHILD_MODE, "loop")
            .env(CHILD_DIR, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let reported = loop {
        let line = lines.next().expect("child exited").expect("read");
        let generation = line
            .split_whitespace()
            .find_map(|t| t.strip_prefix("applied:"))
            .map(|n| n.parse::<u64>().expect("number"));
        if let Some(g) = generation.filter(|g| *g >= 12) {
            break g;
        }
    };
    child.0.kill().expect("SIGKILL");
    child.0.wait().expect("reap");
    drop(lines);

    let db = SledDatabase::open(&dir).expect("reopen after SIGKILL");
    let read = |b: Option<wa_engine::store::Blob>| {
        u64::from_be_bytes(b.expect("present").as_bytes().try_into().expect("8 bytes"))
    };
    for s in 0..CRASH_STORES {
        let store = db.store(&format!("s{s}")).expect("store after SIGKILL");
        let generation = read(store.app_value("crash", b"generation").expect("read"));
        assert!(
            generation >= reported,
            "store s{s} lost applied batch {reported}: found {generation}"
        );
        for i in 0..CRASH_KEYS {
            assert_eq!(
                read(store.session(&addr(i)).expect("read")),
                generation,
                "store s{s} key {i} is from another batch"
            );
        }
    }
}
