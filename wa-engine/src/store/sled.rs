//! [`Store`] on sled 0.34: the embedded default (feature `sled`).
//!
//! # Layout
//!
//! One sled database per directory, default tree only ([`SledStore::open`]), or one tree
//! per store in a shared database ([`SledDatabase`]). Keys are the shared layout of
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
//! - [`apply_unflushed`](Store::apply_unflushed) is the same `sled::Batch` without the
//!   flush and the seal; a [`GroupCommitter`](super::GroupCommitter) flushes the
//!   database once for a group ([`DurableFlush`] on [`SledDatabase`] or `SledStore`) and
//!   then seals each store of the group ([`mark_flushed`](Store::mark_flushed)), so the
//!   seal never runs ahead of what sled has flushed. The on-disk layout is unchanged.
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
    BatchOp, Blob, DurableFlush, RawRead, SCHEMA_VERSION, Store, StoreBatch, StoreError,
    forward_reads, key,
};

/// A [`Store`] persisted in a sled database directory (see the module docs for the
/// layout and the guarantees).
///
/// Only one process (and one `SledStore` in it) may open a directory at a time; sled
/// holds a file lock, and a second open fails with [`StoreError::Locked`].
pub struct SledStore {
    /// The default tree of a dedicated database, or this store's tree in a shared
    /// [`SledDatabase`]. A `Tree` keeps its database open.
    tree: sled::Tree,
    /// Serialises commits: the sequence number and the seal advance together.
    commit: Mutex<Commit>,
    /// The directory holding the seal (for a dedicated database, also sled's files).
    path: PathBuf,
    /// For a store in a shared database: its name, released when the store is dropped.
    claim: Option<Claim>,
}

/// Commit state, guarded by `SledStore::commit`.
struct Commit {
    /// Sequence number of the last batch applied to sled.
    seq: u64,
    /// Sequence number last written to the seal (at most `seq`; below it while batches
    /// applied by [`Store::apply_unflushed`] wait for their flush).
    sealed: u64,
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
        let db = open_db(path, None)?;
        let tree: sled::Tree = (*db).clone();
        Self::load(tree, path, None)
    }

    /// Checks the schema, reads the sequence number and the seal, and builds the store.
    fn load(tree: sled::Tree, seal_dir: &Path, claim: Option<Claim>) -> Result<Self, StoreError> {
        check_schema(&tree)?;
        let seq = read_seq(&tree)?;
        let (seal, sealed) = Seal::open(seal_dir)?;
        if seq < sealed {
            tracing::error!(path = %seal_dir.display(), seq, sealed, "store lost flushed writes");
            return Err(StoreError::Corrupt {
                what: "store lost flushed writes (sled log damaged)",
            });
        }
        tracing::debug!(path = %seal_dir.display(), seq, "store opened");
        Ok(Self {
            tree,
            commit: Mutex::new(Commit { seq, sealed, seal }),
            path: seal_dir.to_path_buf(),
            claim,
        })
    }

    /// The directory this store lives in: sled's files for [`open`](Self::open), the
    /// store's seal directory (`<database>/stores/<name>`) for a store in a
    /// [`SledDatabase`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store's name inside its [`SledDatabase`]; `None` for a dedicated database.
    pub fn name(&self) -> Option<&str> {
        self.claim.as_ref().map(|c| c.name.as_str())
    }
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .field("name", &self.name())
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
fn open_db(path: &Path, cache_bytes: Option<u64>) -> Result<sled::Db, StoreError> {
    let mut delay = Duration::from_millis(5);
    let mut waited = Duration::ZERO;
    loop {
        match open_db_once(path, cache_bytes) {
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

fn open_db_once(path: &Path, cache_bytes: Option<u64>) -> Result<sled::Db, OpenFailure> {
    let mut config = sled::Config::new().path(path);
    if let Some(bytes) = cache_bytes {
        config = config.cache_capacity(bytes);
    }
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

fn check_schema(db: &sled::Tree) -> Result<(), StoreError> {
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

fn read_seq(db: &sled::Tree) -> Result<u64, StoreError> {
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
        let db = open_db(&staging, None)?;
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
            .tree
            .get(key)
            .map_err(|e| StoreError::backend("read", e))?;
        Ok(value.map(|v| Blob::from(v.as_ref())))
    }

    fn raw_keys(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        self.tree
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
        self.tree
            .apply_batch(batch)
            .map_err(|e| StoreError::backend("apply", e))?;
        commit.seq = next;
        self.tree
            .flush()
            .map_err(|e| StoreError::backend("flush", e))?;
        commit
            .seal
            .commit(next)
            .map_err(|e| StoreError::backend("seal", e))?;
        commit.sealed = next;
        Ok(())
    }

    /// Applies `batch` plus the next sequence number atomically, without flushing or
    /// sealing (see [`Store::apply_unflushed`]).
    fn commit_unflushed(&self, mut batch: sled::Batch) -> Result<(), StoreError> {
        let mut commit = self.commit.lock().unwrap_or_else(PoisonError::into_inner);
        let next = commit.seq + 1;
        batch.insert(key::SEQ, &next.to_be_bytes());
        self.tree
            .apply_batch(batch)
            .map_err(|e| StoreError::backend("apply", e))?;
        commit.seq = next;
        Ok(())
    }
}

/// The ops of `batch` as one sled batch.
fn to_sled(batch: StoreBatch) -> sled::Batch {
    let mut sled_batch = sled::Batch::default();
    for op in batch.into_ops() {
        match op {
            BatchOp::Put(k, v) => sled_batch.insert(k, v.as_bytes()),
            BatchOp::Delete(k) => sled_batch.remove(k),
        }
    }
    sled_batch
}

impl Store for SledStore {
    forward_reads!();

    fn apply(&self, batch: StoreBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.commit(to_sled(batch))
    }

    /// One `sled::Batch` on the store's tree with the next sequence number, no flush:
    /// visible at once, durable after the next flush of the database. The seal is left
    /// behind until [`mark_flushed`](Store::mark_flushed).
    fn apply_unflushed(&self, batch: StoreBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.commit_unflushed(to_sled(batch))
    }

    /// Seals the last applied sequence number (one small write + fsync of `wa-seal`), if
    /// it is not sealed yet. The caller guarantees it was flushed (see the trait).
    fn mark_flushed(&self) -> Result<(), StoreError> {
        let mut commit = self.commit.lock().unwrap_or_else(PoisonError::into_inner);
        if commit.sealed >= commit.seq {
            return Ok(());
        }
        let seq = commit.seq;
        commit
            .seal
            .commit(seq)
            .map_err(|e| StoreError::backend("seal", e))?;
        commit.sealed = seq;
        Ok(())
    }

    /// Removes every key but the schema version and sequence number in one sled batch,
    /// then flushes.
    /// Writes racing with `wipe` may survive it; the engine wipes only once stopped.
    fn wipe(&self) -> Result<(), StoreError> {
        let mut sled_batch = sled::Batch::default();
        for k in self.tree.iter().keys() {
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

impl DurableFlush for SledStore {
    /// Flushes the store's database (for a store of a [`SledDatabase`], the whole
    /// database, as [`SledDatabase`]'s own `flush`).
    fn flush(&self) -> Result<(), StoreError> {
        self.tree
            .flush()
            .map(drop)
            .map_err(|e| StoreError::backend("flush", e))
    }
}

/// Many stores in one sled database: one tree per store, e.g. one per wa-server session.
///
/// Why: every sled database keeps its own page cache, I/O buffers, flusher thread and
/// file handles. Measured with sled 0.34 and 850 keys of 120 bytes per store (about
/// the size of a paired device's state), 100 dedicated databases took about 919 KiB of
/// resident memory each; 1,000 stores as trees of one database took about 109 KiB each.
///
/// # Layout
///
/// - `<path>/` holds sled's files (`conf`, `db`, `blobs/`).
/// - Store `name` lives in tree `store/<name>`, with the same keys as a dedicated
///   [`SledStore`] (schema version, commit sequence number, records).
/// - Its seal is `<path>/stores/<name>/wa-seal` (see the module docs).
/// - The default tree lists the stores that exist: key `store/<name>`, written after
///   the store's tree and seal, removed before them. A tree or seal without that key
///   is a leftover of an interrupted creation or removal and is reset when the name is
///   next opened.
///
/// Each store keeps the guarantees of a dedicated one: [`Store::apply`] is one atomic
/// sled batch on its tree followed by a flush (of the whole database) and a seal write.
///
/// The handle is cheap to clone; the database closes when the last handle and the last
/// store opened from it are dropped.
#[derive(Clone)]
pub struct SledDatabase {
    inner: std::sync::Arc<SharedDb>,
}

struct SharedDb {
    db: sled::Db,
    path: PathBuf,
    /// Names of the stores currently open (a name may be open once at a time).
    open: Mutex<std::collections::HashSet<String>>,
}

/// Releases a store's name in its [`SledDatabase`] when the store is dropped.
struct Claim {
    shared: std::sync::Arc<SharedDb>,
    name: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.shared
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.name);
    }
}

/// Page cache of a [`SledDatabase`] opened with [`SledDatabase::open`]: 64 MiB (sled's
/// own default is 1 GiB per database).
pub const SHARED_CACHE_BYTES: u64 = 64 << 20;

/// Longest store name accepted by [`SledDatabase::store`], bytes.
pub const MAX_STORE_NAME_LEN: usize = 128;

const REGISTRY_PREFIX: &[u8] = b"store/";

impl SledDatabase {
    /// Opens (or creates) the database in directory `path` with a
    /// [`SHARED_CACHE_BYTES`] page cache.
    ///
    /// Blocking (file I/O; see [`SledStore::open`] for the lock wait).
    ///
    /// # Errors
    /// [`StoreError::Locked`] if another process or handle has the directory open;
    /// [`StoreError::Corrupt`] if sled finds its files damaged or panics recovering
    /// them; [`StoreError::Open`] on I/O errors.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with_cache(path, SHARED_CACHE_BYTES)
    }

    /// Like [`open`](Self::open) with a page cache of `cache_bytes` bytes.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with_cache(path: impl AsRef<Path>, cache_bytes: u64) -> Result<Self, StoreError> {
        let path = path.as_ref();
        fs::create_dir_all(path.join("stores")).map_err(open_err)?;
        restrict_permissions(path)?;
        let db = open_db(path, Some(cache_bytes))?;
        tracing::debug!(path = %path.display(), "shared store database opened");
        Ok(Self {
            inner: std::sync::Arc::new(SharedDb {
                db,
                path: path.to_path_buf(),
                open: Mutex::new(std::collections::HashSet::new()),
            }),
        })
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Opens store `name`, creating it if it does not exist.
    ///
    /// `name` is 1 to [`MAX_STORE_NAME_LEN`] bytes of ASCII letters, digits, `-`, `_`
    /// and `.`, not starting with `.` (it names a directory). Blocking.
    ///
    /// # Errors
    /// - [`StoreError::Open`] for an invalid name or on I/O errors;
    /// - [`StoreError::Locked`] if the store is already open through this database;
    /// - [`StoreError::Corrupt`] if the store exists but its schema key, sequence key or
    ///   seal is missing or damaged, or it lost flushed writes;
    /// - [`StoreError::UnsupportedVersion`] if another schema version wrote it.
    pub fn store(&self, name: &str) -> Result<SledStore, StoreError> {
        check_name(name)?;
        let claim = self.claim(name)?;
        let shared = &self.inner;
        let tree = shared.db.open_tree(tree_name(name)).map_err(open_err)?;
        let seal_dir = shared.path.join("stores").join(name);
        if !self.contains(name)? {
            self.create(name, &tree, &seal_dir)?;
        }
        SledStore::load(tree, &seal_dir, Some(claim))
    }

    /// Whether store `name` exists (was created and not removed).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if sled fails to read.
    pub fn contains(&self, name: &str) -> Result<bool, StoreError> {
        self.inner
            .db
            .contains_key(registry_key(name))
            .map_err(|e| StoreError::backend("read", e))
    }

    /// The names of the stores that exist, sorted.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if sled fails to read; [`StoreError::Corrupt`] if a
    /// registered name is not UTF-8.
    pub fn names(&self) -> Result<Vec<String>, StoreError> {
        self.inner
            .db
            .scan_prefix(REGISTRY_PREFIX)
            .keys()
            .map(|k| {
                let k = k.map_err(|e| StoreError::backend("scan", e))?;
                let name = k.get(REGISTRY_PREFIX.len()..).unwrap_or_default();
                String::from_utf8(name.to_vec()).map_err(|_| StoreError::Corrupt {
                    what: "store name in the registry",
                })
            })
            .collect()
    }

    /// Deletes store `name` and everything in it (a no-op if it does not exist).
    /// Blocking.
    ///
    /// # Errors
    /// [`StoreError::Locked`] if the store is open; [`StoreError::Open`] for an invalid
    /// name; [`StoreError::Backend`] if sled or the file system fails (the store is then
    /// either still complete or already unregistered, never half-deleted in use).
    pub fn remove(&self, name: &str) -> Result<(), StoreError> {
        check_name(name)?;
        let _claim = self.claim(name)?;
        let shared = &self.inner;
        shared
            .db
            .remove(registry_key(name))
            .map_err(|e| StoreError::backend("apply", e))?;
        shared
            .db
            .flush()
            .map_err(|e| StoreError::backend("flush", e))?;
        let seal_dir = shared.path.join("stores").join(name);
        match fs::remove_dir_all(&seal_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::backend("remove seal", e)),
        }
        shared
            .db
            .drop_tree(tree_name(name))
            .map_err(|e| StoreError::backend("drop tree", e))?;
        tracing::info!(store = name, "store removed");
        Ok(())
    }

    /// Reserves `name` for one open store.
    fn claim(&self, name: &str) -> Result<Claim, StoreError> {
        let mut open = self
            .inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !open.insert(name.to_owned()) {
            return Err(StoreError::Locked);
        }
        Ok(Claim {
            shared: self.inner.clone(),
            name: name.to_owned(),
        })
    }

    /// Creates store `name`: reset its tree, write the schema version and sequence
    /// number 0, flush; write its seal in a staging directory and rename it into place;
    /// then register the name and flush. A crash at any point leaves the name
    /// unregistered (so it is created afresh next time) or the store complete.
    fn create(&self, name: &str, tree: &sled::Tree, seal_dir: &Path) -> Result<(), StoreError> {
        let shared = &self.inner;
        tree.clear().map_err(open_err)?;
        let mut batch = sled::Batch::default();
        batch.insert(key::SCHEMA, &SCHEMA_VERSION.to_be_bytes());
        batch.insert(key::SEQ, &0u64.to_be_bytes());
        tree.apply_batch(batch).map_err(open_err)?;
        tree.flush().map_err(open_err)?;

        let stores = shared.path.join("stores");
        let staging = stores.join(format!(".{name}.creating"));
        for leftover in [&staging, &seal_dir.to_path_buf()] {
            match fs::remove_dir_all(leftover) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(open_err(e)),
            }
        }
        fs::create_dir_all(&staging).map_err(open_err)?;
        restrict_permissions(&staging)?;
        drop(Seal::create(&staging, 0)?);
        sync_dir(&staging)?;
        fs::rename(&staging, seal_dir).map_err(open_err)?;
        sync_dir(&stores)?;

        shared
            .db
            .insert(registry_key(name), &[])
            .map_err(open_err)?;
        shared.db.flush().map_err(open_err)?;
        tracing::info!(store = name, version = SCHEMA_VERSION, "store created");
        Ok(())
    }
}

impl DurableFlush for SledDatabase {
    /// `Db::flush`: writes sled's log and fsyncs it, covering every store of the
    /// database (the flush a [`GroupCommitter`](super::GroupCommitter) shares).
    fn flush(&self) -> Result<(), StoreError> {
        self.inner
            .db
            .flush()
            .map(drop)
            .map_err(|e| StoreError::backend("flush", e))
    }
}

impl std::fmt::Debug for SledDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledDatabase")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

fn tree_name(name: &str) -> Vec<u8> {
    registry_key(name)
}

fn registry_key(name: &str) -> Vec<u8> {
    let mut k = REGISTRY_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

fn check_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_STORE_NAME_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(open_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "store name must be 1-128 ASCII letters, digits, '-', '_' or '.', not starting with '.'",
        )))
    }
}
