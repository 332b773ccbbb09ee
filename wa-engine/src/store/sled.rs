//! [`Store`] on sled 0.34: the embedded default (feature `sled`).
//!
//! # Layout
//!
//! One sled database per directory, default tree only. Keys are the shared layout of
//! `store/key.rs` (a one-byte concern tag, length-prefixed names, big-endian ids); the
//! key `00 "schema"` holds [`SCHEMA_VERSION`] as u32 big-endian, and `00 "seq"` the
//! commit sequence number (u64 big-endian) that every batch advances. Next to sled's
//! files, `wa-seal` records the last sequence number known durable (`store/seal.rs`).
//!
//! # Guarantees
//!
//! - [`apply`](Store::apply) is one `sled::Batch` (atomic for readers, which take sled's
//!   concurrency-control read lock, and atomic on crash recovery: sled seals the batch in
//!   its log), followed by `Db::flush` (write + fsync) before returning.
//! - Creation is atomic: the database is built in a sibling staging directory
//!   (`.<name>.creating`), the schema version is written and flushed, then the
//!   directory is renamed into place. So a directory that holds sled files but no
//!   schema key was damaged, never half-created.
//! - Damage is reported, never repaired: sled 0.34 opens a database whose log is
//!   garbage as an *empty* database without any error (checked in
//!   `tests/store_sled.rs`), so a missing schema key in an existing store is
//!   [`StoreError::Corrupt`], as is sled's own `Error::Corruption` (e.g. a snapshot
//!   pointing into a damaged log); sled's other refusals (a garbage `conf` file reads
//!   as "created by sled < 0.29") are [`StoreError::Open`]. sled has
//!   `unwrap`/`expect` calls in its recovery code, so as a last resort `open` runs inside
//!   `catch_unwind` and turns a panic into [`StoreError::Corrupt`] (the panic message
//!   still reaches the panic hook).
//! - sled also recovers a log with a damaged record (one flipped bit suffices) by
//!   silently dropping that batch and everything after it. The seal catches this: if
//!   sled's sequence number is below the sealed one, flushed writes were lost and
//!   `open` returns [`StoreError::Corrupt`].
//! - Not covered: damage to data sled has already moved from its log into page
//!   snapshots and that sled itself does not detect.
//!
//! Files hold key material in plaintext (as whatsmeow's SQL store does); on Unix the
//! directory is created with mode 0700. sled's caches are not zeroized.

use std::fs;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::seal::Seal;
use super::{
    BatchOp, Blob, RawRead, SCHEMA_VERSION, Store, StoreBatch, StoreError, forward_reads, key,
};

/// A [`Store`] persisted in a sled database directory (see the module docs for the
/// layout and the guarantees).
///
/// Only one process (and one `SledStore` in it) may open a directory at a time; sled
/// holds a file lock, and a second open fails with [`StoreError::Locked`].
pub struct SledStore {
    db: sled::Db,
    /// Serialises commits: the sequence number and the seal advance together.
    commit: Mutex<Commit>,
    path: PathBuf,
}

/// Commit state, guarded by `SledStore::commit`.
struct Commit {
    /// Sequence number of the last batch applied to sled.
    seq: u64,
    seal: Seal,
}

impl SledStore {
    /// Opens the store in directory `path`, creating it if `path` does not exist or is
    /// an empty directory.
    ///
    /// Blocking: does file I/O and, if the directory is locked, waits up to 2 s for a
    /// just-dropped handle to release it (call it from `spawn_blocking` in async code).
    ///
    /// # Errors
    /// - [`StoreError::UnsupportedVersion`] if the store was written by another schema
    ///   version (nothing is changed on disk);
    /// - [`StoreError::Corrupt`] if the files are damaged: schema or sequence key
    ///   missing or malformed, seal file missing or unreadable, flushed writes lost
    ///   (sled's sequence number below the sealed one), sled reports corruption, or
    ///   sled panicked while recovering them;
    /// - [`StoreError::Locked`] if another process or live handle holds the directory;
    /// - [`StoreError::Open`] on I/O errors, a non-empty directory that is not a store,
    ///   or files sled refuses.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        if !is_store_dir(path).map_err(open_err)? {
            create(path)?;
        }
        let db = open_db(path)?;
        check_schema(&db)?;
        let seq = read_seq(&db)?;
        let (seal, sealed) = Seal::open(path)?;
        if seq < sealed {
            tracing::error!(path = %path.display(), seq, sealed, "store lost flushed writes");
            return Err(StoreError::Corrupt {
                what: "store lost flushed writes (sled log damaged)",
            });
        }
        tracing::debug!(path = %path.display(), seq, "store opened");
        Ok(Self {
            db,
            commit: Mutex::new(Commit { seq, seal }),
            path: path.to_path_buf(),
        })
    }

    /// The directory this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn open_err(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    StoreError::Open(e.into())
}

/// A directory holding sled's files (`conf` or `db`) is an existing store.
fn is_store_dir(path: &Path) -> io::Result<bool> {
    Ok(path.join("conf").try_exists()? || path.join("db").try_exists()?)
}

/// How long `open` waits for a lock held by a dropped handle (see [`open_db`]).
const LOCK_WAIT: Duration = Duration::from_secs(2);
/// Longest single sleep while waiting for the lock.
const LOCK_POLL_MAX: Duration = Duration::from_millis(100);

/// Opens sled, turning errors and panics into `StoreError`.
///
/// sled 0.34 releases its file lock asynchronously after the last `Db` handle is
/// dropped (a background thread holds it; spacejam/sled #1234, #1289), so reopening a
/// directory in the same process, including right after `create`, can briefly see it
/// locked. Lock contention is therefore retried with backoff for up to [`LOCK_WAIT`]
/// before giving up with [`StoreError::Locked`].
fn open_db(path: &Path) -> Result<sled::Db, StoreError> {
    let mut delay = Duration::from_millis(5);
    let mut waited = Duration::ZERO;
    loop {
        match open_db_once(path) {
            Err(OpenFailure::Locked) if waited < LOCK_WAIT => {
                std::thread::sleep(delay);
                waited += delay;
                delay = (delay * 2).min(LOCK_POLL_MAX);
            }
            Err(OpenFailure::Locked) => return Err(StoreError::Locked),
            Err(OpenFailure::Other(e)) => return Err(e),
            Ok(db) => return Ok(db),
        }
    }
}

enum OpenFailure {
    Locked,
    Other(StoreError),
}

fn open_db_once(path: &Path) -> Result<sled::Db, OpenFailure> {
    let config = sled::Config::new().path(path);
    match catch_unwind(AssertUnwindSafe(|| config.open())) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) if is_lock_contention(&e) => Err(OpenFailure::Locked),
        Ok(Err(sled::Error::Corruption { at, .. })) => {
            tracing::error!(path = %path.display(), ?at, "sled found its files corrupt");
            Err(OpenFailure::Other(StoreError::Corrupt {
                what: "sled log or snapshot",
            }))
        }
        Ok(Err(e)) => Err(OpenFailure::Other(open_err(e))),
        Err(_panic) => {
            tracing::error!(path = %path.display(), "sled panicked while opening the store");
            Err(OpenFailure::Other(StoreError::Corrupt {
                what: "sled panicked while recovering its files",
            }))
        }
    }
}

/// sled 0.34.7 reports a held lock as `Io(Other, "could not acquire lock on …")`
/// (`src/config.rs`); there is no structured variant to match.
fn is_lock_contention(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().starts_with("could not acquire lock"))
}

fn check_schema(db: &sled::Db) -> Result<(), StoreError> {
    let Some(value) = db.get(key::SCHEMA).map_err(open_err)? else {
        // Creation writes the key before the directory appears (see `create`), so an
        // existing store without it lost its data (sled reads a garbage log as empty).
        return Err(StoreError::Corrupt {
            what: "schema version key missing",
        });
    };
    let bytes: [u8; 4] = value.as_ref().try_into().map_err(|_| StoreError::Corrupt {
        what: "schema version value",
    })?;
    let found = u32::from_be_bytes(bytes);
    if found != SCHEMA_VERSION {
        return Err(StoreError::UnsupportedVersion {
            found,
            expected: SCHEMA_VERSION,
        });
    }
    Ok(())
}

fn read_seq(db: &sled::Db) -> Result<u64, StoreError> {
    const CORRUPT: StoreError = StoreError::Corrupt {
        what: "commit sequence key",
    };
    let value = db.get(key::SEQ).map_err(open_err)?.ok_or(CORRUPT)?;
    let bytes: [u8; 8] = value.as_ref().try_into().map_err(|_| CORRUPT)?;
    Ok(u64::from_be_bytes(bytes))
}

/// Creates a new store at `path` atomically: build it in a staging directory, write
/// and flush the schema version and sequence number 0, seal 0, then rename it into
/// place.
fn create(path: &Path) -> Result<(), StoreError> {
    let name = path.file_name().ok_or_else(|| {
        open_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "store path has no final component",
        ))
    })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut staging_name = std::ffi::OsString::from(".");
    staging_name.push(name);
    staging_name.push(".creating");
    let staging = parent.join(staging_name);

    if staging.try_exists().map_err(open_err)? {
        // Left by a creation that crashed before its rename: never handed out, no data.
        fs::remove_dir_all(&staging).map_err(open_err)?;
    }
    fs::create_dir_all(&staging).map_err(open_err)?;
    restrict_permissions(&staging)?;
    {
        let db = open_db(&staging)?;
        let mut batch = sled::Batch::default();
        batch.insert(key::SCHEMA, &SCHEMA_VERSION.to_be_bytes());
        batch.insert(key::SEQ, &0u64.to_be_bytes());
        db.apply_batch(batch).map_err(open_err)?;
        db.flush().map_err(open_err)?;
        Seal::create(&staging, 0)?;
        sync_dir(&staging)?;
    }
    if path.try_exists().map_err(open_err)? {
        // Only an empty directory may be replaced (`remove_dir` refuses anything else).
        fs::remove_dir(path).map_err(open_err)?;
    }
    fs::rename(&staging, path).map_err(open_err)?;
    sync_dir(&parent)?;
    tracing::info!(path = %path.display(), version = SCHEMA_VERSION, "store created");
    Ok(())
}

#[cfg(unix)]
fn restrict_permissions(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(open_err)
}

#[cfg(not(unix))]
fn restrict_permissions(_dir: &Path) -> Result<(), StoreError> {
    Ok(())
}

/// Makes the rename durable (Unix: fsync the parent directory).
#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(open_err)
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), StoreError> {
    Ok(())
}

impl RawRead for SledStore {
    fn raw_get(&self, key: &[u8]) -> Result<Option<Blob>, StoreError> {
        let value = self
            .db
            .get(key)
            .map_err(|e| StoreError::backend("read", e))?;
        Ok(value.map(|v| Blob::from(v.as_ref())))
    }

    fn raw_keys(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        self.db
            .scan_prefix(prefix)
            .keys()
            .map(|k| {
                k.map(|k| k.to_vec())
                    .map_err(|e| StoreError::backend("scan", e))
            })
            .collect()
    }
}

impl SledStore {
    /// Applies `batch` plus the next sequence number atomically, flushes, then seals
    /// the new sequence number.
    fn commit(&self, mut batch: sled::Batch) -> Result<(), StoreError> {
        // A panic elsewhere while holding the lock leaves `seq` equal to what sled
        // holds (it is only advanced after a successful apply), so poison is harmless.
        let mut commit = self.commit.lock().unwrap_or_else(PoisonError::into_inner);
        let next = commit.seq + 1;
        batch.insert(key::SEQ, &next.to_be_bytes());
        self.db
            .apply_batch(batch)
            .map_err(|e| StoreError::backend("apply", e))?;
        commit.seq = next;
        self.db
            .flush()
            .map_err(|e| StoreError::backend("flush", e))?;
        commit
            .seal
            .commit(next)
            .map_err(|e| StoreError::backend("seal", e))?;
        Ok(())
    }
}

impl Store for SledStore {
    forward_reads!();

    fn apply(&self, batch: StoreBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut sled_batch = sled::Batch::default();
        for op in batch.into_ops() {
            match op {
                BatchOp::Put(k, v) => sled_batch.insert(k, v.as_bytes()),
                BatchOp::Delete(k) => sled_batch.remove(k),
            }
        }
        self.commit(sled_batch)
    }

    /// Removes every key but the schema version and sequence number in one sled batch,
    /// then flushes.
    /// Writes racing with `wipe` may survive it; the engine wipes only once stopped.
    fn wipe(&self) -> Result<(), StoreError> {
        let mut sled_batch = sled::Batch::default();
        for k in self.db.iter().keys() {
            let k = k.map_err(|e| StoreError::backend("scan", e))?;
            if k != key::SCHEMA && k != key::SEQ {
                sled_batch.remove(k);
            }
        }
        self.commit(sled_batch)?;
        tracing::info!(path = %self.path.display(), "store wiped");
        Ok(())
    }
}
