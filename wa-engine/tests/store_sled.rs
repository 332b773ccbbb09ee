//! `SledStore`-specific behaviour: persistence across reopen and across a SIGKILL right
//! after `apply` returned, atomic batches across a crash, schema versions, and damaged
//! files reported as typed errors (never a panic, never a silently empty store).
//!
//! The crash tests run this test binary again as a child process: the child test
//! `child_writer` does nothing unless `WA_STORE_CHILD` is set.
#![cfg(feature = "sled")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use wa_engine::store::{
    Credentials, KeyPair, ProtocolAddress, SCHEMA_VERSION, SignedPreKey, SledStore, Store,
    StoreBatch, StoreError,
};

const CHILD_MODE: &str = "WA_STORE_CHILD";
const CHILD_DIR: &str = "WA_STORE_DIR";
/// Number of sessions each crash-test batch writes.
const CRASH_KEYS: u32 = 64;

fn credentials() -> Credentials {
    let mut c = Credentials::new(
        KeyPair::new([0x11; 32], [0x12; 32]),
        KeyPair::new([0x21; 32], [0x22; 32]),
        16_380,
        SignedPreKey {
            id: 1,
            key_pair: KeyPair::new([0x31; 32], [0x32; 32]),
            signature: [0x33; 64],
        },
        [0x44; 32],
    );
    c.id = Some("559984726662:77@s.whatsapp.net".into());
    c.lid = Some("236395184570386:77@lid".into());
    c
}

fn addr(device_id: u32) -> ProtocolAddress {
    ProtocolAddress::new("559984726662", device_id)
}

/// Fills a store with one entry per concern and returns the directory.
fn fill(dir: &Path) {
    let store = SledStore::open(dir).expect("open");
    let mut b = StoreBatch::new();
    b.put_credentials(&credentials())
        .put_session(&addr(1), b"ratchet state".to_vec())
        .put_identity(&addr(0), [9u8; 32])
        .put_prekey(1, b"prekey".to_vec());
    for i in 0..200u32 {
        b.put_prekey(100 + i, vec![7u8; 100]);
    }
    store.apply(b).expect("apply");
}

fn assert_filled(store: &SledStore) {
    assert_eq!(store.credentials().expect("read"), Some(credentials()));
    assert_eq!(
        store.session(&addr(1)).expect("read").map(|b| b.to_vec()),
        Some(b"ratchet state".to_vec())
    );
    assert_eq!(store.prekey_ids().expect("list").len(), 201);
}

#[test]
fn data_survives_close_and_reopen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("state");
    fill(&dir);
    let store = SledStore::open(&dir).expect("reopen");
    assert_filled(&store);
    assert_eq!(store.path(), dir);
}

#[test]
fn wipe_survives_reopen_and_keeps_store_usable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("state");
    fill(&dir);
    SledStore::open(&dir).expect("open").wipe().expect("wipe");
    let store = SledStore::open(&dir).expect("reopen after wipe");
    assert!(store.credentials().expect("read").is_none());
    assert!(store.prekey_ids().expect("list").is_empty());
}

#[test]
fn creates_store_in_an_existing_empty_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    fill(tmp.path());
    assert_filled(&SledStore::open(tmp.path()).expect("reopen"));
}

#[test]
fn leftover_staging_directory_from_a_crashed_creation_is_replaced() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let staging = tmp.path().join(".state.creating");
    std::fs::create_dir_all(&staging).expect("mkdir");
    std::fs::write(staging.join("db"), b"half-created").expect("write");
    fill(&tmp.path().join("state"));
    assert!(!staging.exists());
    assert_filled(&SledStore::open(tmp.path().join("state")).expect("reopen"));
}

#[test]
fn refuses_a_non_empty_directory_that_is_not_a_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("notes.txt"), b"mine").expect("write");
    let err = SledStore::open(tmp.path()).expect_err("must not take over the directory");
    assert!(matches!(err, StoreError::Open(_)), "{err:?}");
    assert!(tmp.path().join("notes.txt").exists());
}

#[test]
fn second_open_of_the_same_directory_fails_while_the_first_is_open() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let _first = SledStore::open(tmp.path()).expect("open");
    let err = SledStore::open(tmp.path()).expect_err("locked");
    assert!(matches!(err, StoreError::Locked), "{err:?}");
}

/// Opens the store's directory directly with sled. sled releases its file lock in the
/// background after the previous handle is dropped (spacejam/sled #1234), so this retries for
/// a while, as `SledStore::open` does.
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

/// Writes the schema-version key directly with sled (layout: `00 "schema"` ->
/// u32 big-endian, documented in `store/sled.rs`).
fn write_raw(dir: &Path, key: &[u8], value: &[u8]) {
    let db = raw_open(dir);
    db.insert(key, value).expect("raw insert");
    db.flush().expect("raw flush");
}

#[test]
fn open_rejects_a_store_written_by_another_schema_version() {
    let tmp = tempfile::tempdir().expect("tempdir");
    fill(tmp.path());
    write_raw(
        tmp.path(),
        b"\x00schema",
        &(SCHEMA_VERSION + 1).to_be_bytes(),
    );
    match SledStore::open(tmp.path()) {
        Err(StoreError::UnsupportedVersion { found, expected }) => {
            assert_eq!((found, expected), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    // Nothing was changed on disk: the version is still the foreign one.
    let db = raw_open(tmp.path());
    assert_eq!(
        db.get(b"\x00schema").expect("get").map(|v| v.to_vec()),
        Some((SCHEMA_VERSION + 1).to_be_bytes().to_vec())
    );
}

#[test]
fn malformed_schema_version_is_corrupt() {
    let tmp = tempfile::tempdir().expect("tempdir");
    fill(tmp.path());
    write_raw(tmp.path(), b"\x00schema", b"\x01");
    let err = SledStore::open(tmp.path()).expect_err("malformed");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

#[test]
fn undecodable_credentials_record_is_corrupt_and_other_reads_still_work() {
    let tmp = tempfile::tempdir().expect("tempdir");
    fill(tmp.path());
    // Credentials live under key `01`.
    write_raw(tmp.path(), b"\x01", b"\xff\xff\xff not protobuf");
    let store = SledStore::open(tmp.path()).expect("open");
    let err = store.credentials().expect_err("garbage record");
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                what: "credentials record"
            }
        ),
        "{err:?}"
    );
    assert!(store.session(&addr(1)).expect("read").is_some());
}

/// How a file of a filled store is damaged.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// Every byte replaced by a pattern.
    Garbage,
    /// 64 bytes flipped a third of the way in.
    FlipMiddle,
    /// First 64 bytes set to 0xff.
    Header,
    /// File truncated to zero bytes.
    Truncate,
}

fn damage(file: &Path, how: Damage) {
    let mut data = std::fs::read(file).expect("read file");
    match how {
        Damage::Garbage => {
            for (i, b) in data.iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(31).wrapping_add(7);
            }
        }
        Damage::FlipMiddle => {
            let start = data.len() / 3;
            let end = (start + 64).min(data.len());
            data[start..end].iter_mut().for_each(|b| *b ^= 0xa5);
        }
        Damage::Header => {
            let end = 64.min(data.len());
            data[..end].iter_mut().for_each(|b| *b = 0xff);
        }
        Damage::Truncate => data.clear(),
    }
    std::fs::write(file, data).expect("write file");
}

/// Opening a damaged store must return (no panic escapes `open`), and must never hand
/// out an empty store in place of the old one. Either sled recovers the data intact,
/// or `open` fails with a typed error.
fn check_damaged(file_name: &str, how: Damage) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("state");
    fill(&dir);
    damage(&dir.join(file_name), how);
    let result = std::panic::catch_unwind(|| SledStore::open(&dir));
    let result = result.unwrap_or_else(|_| panic!("open panicked on {file_name} {how:?}"));
    match result {
        Ok(store) => assert_filled(&store),
        Err(StoreError::Corrupt { .. } | StoreError::Open(_)) => {}
        Err(other) => panic!("unexpected error for {file_name} {how:?}: {other:?}"),
    }
}

#[test]
fn garbage_in_the_sled_log_is_a_typed_error_not_an_empty_store() {
    // sled 0.34 opens these as an empty database without complaint; the missing
    // schema key must turn that into `Corrupt`.
    for how in [Damage::Garbage, Damage::Header, Damage::Truncate] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("state");
        fill(&dir);
        damage(&dir.join("db"), how);
        match SledStore::open(&dir) {
            Err(StoreError::Corrupt { .. }) => {}
            other => panic!("db {how:?}: expected Corrupt, got {other:?}"),
        }
        check_damaged("db", how);
    }
    check_damaged("db", Damage::FlipMiddle);
}

/// sled 0.34 recovers a log with one flipped bit inside a flushed batch by dropping
/// that batch and everything after it, silently. The seal must turn that into an error.
#[test]
fn one_flipped_bit_in_a_flushed_record_is_corrupt_not_silent_data_loss() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("state");
    fill(&dir);
    let log = dir.join("db");
    let mut data = std::fs::read(&log).expect("read log");
    // The prekey values written by `fill` are runs of 100 bytes of 0x07.
    let at = data
        .windows(100)
        .position(|w| w.iter().all(|b| *b == 7))
        .expect("fill's prekey bytes are in the log");
    data[at + 50] ^= 0x01;
    std::fs::write(&log, data).expect("write log");
    match SledStore::open(&dir) {
        Err(StoreError::Corrupt { .. }) => {}
        Ok(store) => panic!(
            "opened with credentials={:?} prekeys={:?}",
            store.credentials().map(|c| c.is_some()),
            store.prekey_ids().map(|v| v.len())
        ),
        Err(other) => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn missing_or_garbage_seal_file_is_corrupt() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("state");
    fill(&dir);
    std::fs::write(dir.join("wa-seal"), vec![0x5a; 4112]).expect("write seal");
    let err = SledStore::open(&dir).expect_err("garbage seal");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    std::fs::remove_file(dir.join("wa-seal")).expect("rm seal");
    let err = SledStore::open(&dir).expect_err("missing seal");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

#[test]
fn one_torn_seal_slot_is_tolerated() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("state");
    fill(&dir);
    // Slots at 0 and 4096; damage each in turn: the other still holds a valid,
    // not-newer sequence number.
    for offset in [0usize, 4096] {
        let seal = dir.join("wa-seal");
        let mut data = std::fs::read(&seal).expect("read seal");
        data[offset + 2] ^= 0xff;
        std::fs::write(&seal, &data).expect("write seal");
        assert_filled(&SledStore::open(&dir).expect("open with one torn slot"));
        // Reopening wrote nothing; restore the slot for the next round.
        data[offset + 2] ^= 0xff;
        std::fs::write(&seal, &data).expect("restore seal");
    }
}

#[test]
fn damaged_config_file_is_a_typed_error_or_harmless() {
    for how in [Damage::Garbage, Damage::Header, Damage::Truncate] {
        check_damaged("conf", how);
    }
}

#[test]
fn damaged_snapshot_is_a_typed_error_or_harmless() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("state");
    fill(&dir);
    drop(SledStore::open(&dir).expect("reopen to write a snapshot"));
    let snaps: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("ls")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("snap."))
        })
        .collect();
    assert!(!snaps.is_empty(), "sled wrote no snapshot in {dir:?}");
    for snap in &snaps {
        std::fs::write(snap, b"garbage garbage garbage").expect("write");
    }
    let result = std::panic::catch_unwind(|| SledStore::open(&dir)).expect("open panicked");
    match result {
        Ok(store) => assert_filled(&store),
        Err(StoreError::Corrupt { .. } | StoreError::Open(_)) => {}
        Err(other) => panic!("unexpected error: {other:?}"),
    }
}

#[test]
fn missing_log_file_is_corrupt() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("state");
    fill(&dir);
    std::fs::remove_file(dir.join("db")).expect("rm db");
    let err = SledStore::open(&dir).expect_err("log gone");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

// ---- crash tests (SIGKILL) ----

/// Kills the child on drop so a failing assertion leaves no process behind.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts this test binary as a child running only `child_writer` in `mode`.
fn spawn_child(mode: &str, dir: &Path) -> ChildGuard {
    let exe = std::env::current_exe().expect("current_exe");
    let child = Command::new(exe)
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_MODE, mode)
        .env(CHILD_DIR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    ChildGuard(child)
}

/// Reads the child's stdout until it reports generation >= `until`; returns that
/// generation. Markers look like `applied:<n>` (libtest may print other
/// text on the same line).
/// The returned reader keeps the pipe open until the caller drops it (after the kill),
/// so the child cannot die of SIGPIPE first.
fn wait_for_applied(child: &mut ChildGuard, until: u64) -> (u64, impl Sized + use<>) {
    let stdout = child.0.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .expect("child exited before reporting")
            .expect("read child stdout");
        let generation = line
            .split_whitespace()
            .find_map(|t| t.strip_prefix("applied:"))
            .map(|n| n.parse::<u64>().expect("generation number"));
        if let Some(g) = generation.filter(|g| *g >= until) {
            return (g, lines);
        }
    }
}

fn sigkill(child: &mut ChildGuard) {
    child.0.kill().expect("SIGKILL child");
    child.0.wait().expect("reap child");
}

fn crash_batch(generation: u64) -> StoreBatch {
    let mut b = StoreBatch::new();
    for i in 0..CRASH_KEYS {
        b.put_session(&addr(i), generation.to_be_bytes());
    }
    b.put_app_value("crash", b"generation", generation.to_be_bytes());
    b
}

/// The child side of the crash tests; a no-op in a normal test run.
#[test]
fn child_writer() {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        return;
    };
    let dir = PathBuf::from(std::env::var_os(CHILD_DIR).expect("WA_STORE_DIR"));
    let store = SledStore::open(&dir).expect("child open");
    match mode.as_str() {
        "once" => {
            let mut b = StoreBatch::new();
            b.put_credentials(&credentials())
                .put_session(&addr(1), b"ratchet state".to_vec());
            store.apply(b).expect("child apply");
            println!("applied:1");
        }
        "loop" => {
            for generation in 1..=100_000u64 {
                store.apply(crash_batch(generation)).expect("child apply");
                println!("applied:{generation}");
            }
        }
        other => panic!("unknown child mode {other}"),
    }
    // Wait to be killed (bounded, in case the parent died).
    std::thread::sleep(std::time::Duration::from_secs(60));
}

#[cfg(unix)]
#[test]
fn applied_batch_survives_sigkill_right_after_apply_returns() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("state");
    let mut child = spawn_child("once", &dir);
    let (_, _stdout) = wait_for_applied(&mut child, 1);
    sigkill(&mut child);

    let store = SledStore::open(&dir).expect("reopen after SIGKILL");
    assert_eq!(store.credentials().expect("read"), Some(credentials()));
    assert_eq!(
        store.session(&addr(1)).expect("read").map(|b| b.to_vec()),
        Some(b"ratchet state".to_vec())
    );
}

#[cfg(unix)]
#[test]
fn batches_stay_all_or_nothing_across_sigkill_mid_stream() {
    // Kill the writer while it is applying batch after batch; after recovery every key
    // must hold the same generation, at least the last one it reported as applied.
    for kill_after in [3u64, 17, 40] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("state");
        let mut child = spawn_child("loop", &dir);
        let (reported, stdout) = wait_for_applied(&mut child, kill_after);
        sigkill(&mut child);
        drop(stdout);

        let store = SledStore::open(&dir).expect("reopen after SIGKILL");
        let read = |b: Option<wa_engine::store::Blob>| {
            u64::from_be_bytes(
                b.expect("key present")
                    .as_bytes()
                    .try_into()
                    .expect("8 bytes"),
            )
        };
        let generation = read(store.app_value("crash", b"generation").expect("read"));
        assert!(
            generation >= reported,
            "lost applied batch {reported}: found {generation}"
        );
        for i in 0..CRASH_KEYS {
            assert_eq!(
                read(store.session(&addr(i)).expect("read")),
                generation,
                "session {i} is from another batch (kill after {kill_after})"
            );
        }
    }
}
