//! Persistent state: the [`Store`] trait, its typed keys and records, and two backends.
//!
//! The store keeps opaque bytes under typed keys and knows nothing about Signal: the
//! engine encodes sessions, prekeys and sender keys itself. It is grouped by concern,
//! following whatsmeow `store/store.go` (per-concern interfaces holding opaque session
//! bytes) and quinn `quinn-proto/src/token.rs` (a synchronous `Send + Sync` store used by
//! a sans-IO core):
//!
//! | Concern | Key | Value |
//! |---|---|---|
//! | device credentials | — (one record) | [`Credentials`] |
//! | identities | [`ProtocolAddress`] | remote identity key bytes |
//! | sessions | [`ProtocolAddress`] | serialized session record |
//! | prekeys | `u32` id | serialized prekey record; plus [`PreKeyCounters`] |
//! | signed prekeys | `u32` id | serialized signed prekey record |
//! | sender keys | [`SenderKeyName`] | serialized sender key record |
//! | app values | namespace + key bytes | anything (e.g. wa-server's own state) |
//! | LID map | PN user ⇄ LID user | the other user part (both directions kept) |
//! | app-state sync keys | key id bytes | serialized key (shared/protocol/08 §2) |
//! | app-state collections | collection name | serialized version, LTHash and value MACs (08 §6) |
//! | tctokens | peer user JID | serialized token record (shared/protocol/07 §2.2) |
//! | NCT salt | — (one record) | salt bytes (07 §3.3) |
//!
//! # Writes and durability
//!
//! Every write goes through [`Store::apply`] with a [`StoreBatch`]. When `apply`
//! returns `Ok`, the whole batch is visible to readers and on stable storage; readers
//! never see part of a batch. The engine relies on this to persist before it acts:
//! credentials before replying to pair-success, the advanced ratchet before a
//! ciphertext leaves, new prekeys before they are uploaded (shared/protocol/04-signal.md
//! §4.2, §8.4).
//!
//! The async side of the same contract is [`Persist`] (module `commit`): a driver
//! hands a batch over and awaits its durability without blocking a tokio worker, and
//! a [`GroupCommitter`] makes many sessions' batches durable with one flush, through
//! [`Store::apply_unflushed`], [`DurableFlush`] and [`Store::mark_flushed`].
//!
//! # Backends
//!
//! - [`MemoryStore`]: always compiled; for tests and examples. Nothing survives the process.
//! - `SledStore` (feature `sled`, on by default): one sled database in a directory, or
//!   one tree of a `SledDatabase` shared by many stores (a server with many sessions).

use std::fmt;
use std::ops::Deref;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub mod commit;
mod credentials;
mod error;
mod key;
mod memory;
#[cfg(feature = "sled")]
mod seal;
#[cfg(feature = "sled")]
mod sled;
mod staged;

#[cfg(feature = "sled")]
pub use self::sled::{MAX_STORE_NAME_LEN, SHARED_CACHE_BYTES, SledDatabase, SledStore};
#[cfg(feature = "runtime")]
pub use commit::BlockingPersist;
pub use commit::{
    CommitStats, DurableFlush, GroupCommitConfig, GroupCommitter, InlinePersist, Persist,
    PersistFuture,
};
pub use credentials::{
    CREDENTIALS_RECORD_VERSION, Credentials, KeyPair, PreKeyCounters, SignedPreKey,
};
pub use error::StoreError;
pub use memory::MemoryStore;
pub(crate) use staged::Staged;
pub use staged::{Persistence, WriteBatch};

/// On-disk schema version of persistent backends (the key layout and record formats).
///
/// A persistent store records it on creation; opening a store with another version
/// fails with [`StoreError::UnsupportedVersion`]. Bump it on any change that an older
/// build could misread; additive record fields do not need a bump (see [`Credentials`]).
pub const SCHEMA_VERSION: u32 = 1;

/// The engine's persistent state: a small, synchronous, object-safe store of opaque
/// bytes under typed keys, grouped by concern (see the [module docs](self)).
///
/// Reads return `Ok(None)` for a missing key. Listing methods return ids or keys in
/// ascending order. All writes go through [`apply`](Self::apply), which is atomic and
/// durable. Implementations must be safe to call from several threads; callers
/// serialise the read-modify-write of one Signal address themselves
/// (shared/protocol/04-signal.md §8.1).
pub trait Store: Send + Sync {
    /// The device credentials, or `None` before the first
    /// [`StoreBatch::put_credentials`] (or after [`wipe`](Self::wipe)).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the record does not decode; [`StoreError::Backend`] on I/O failure.
    fn credentials(&self) -> Result<Option<Credentials>, StoreError>;

    /// The identity key stored for `address` (raw bytes as the engine put them).
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failure.
    fn identity(&self, address: &ProtocolAddress) -> Result<Option<Blob>, StoreError>;

    /// Device ids of `name` that have a stored identity, ascending.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failure; [`StoreError::Corrupt`] on a malformed key.
    fn identity_devices(&self, name: &str) -> Result<Vec<u32>, StoreError>;

    /// The session record stored for `address`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failure.
    fn session(&self, address: &ProtocolAddress) -> Result<Option<Blob>, StoreError>;

    /// Device ids of `name` that have a stored session, ascending (e.g. to delete every
    /// session of a user whose identity changed, as whatsmeow `DeleteAllSessions`).
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failure; [`StoreError::Corrupt`] on a malformed key.
    fn session_devices(&self, name: &str) -> Result<Vec<u32>, StoreError>;

    /// The one-time prekey record with this id.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failure.
    fn prekey(&self, id: u32) -> Result<Option<Blob>, StoreError>;

    /// Ids of all stored one-time prekeys, ascending.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failure; [`StoreError::Corrupt`] on a malformed key.
    fn prekey_ids(&self) -> Result<Vec<u32>, StoreError>;

    /// The prekey id / upload counters; `None` if never written (use
    /// `unwrap_or_default()`).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the record does not decode; [`StoreError::Backend`] on I/O failure.
    fn prekey_counters(&self) -> Result<Option<PreKeyCounters>, StoreError>;

    /// The signed prekey record with this id (kept after rotation for late pkmsgs,
    /// shared/protocol/04-signal.md §2). The current one is also in [`Credentials`].
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failure.
    fn signed_prekey(&self, id: u32) -> Result<Option<Blob>, StoreError>;

    /// Ids of all stored signed prekeys, ascending.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failure; [`StoreError::Corrupt`] on a malformed key.
    fn signed_prekey_ids(&self) -> Result<Vec<u32>, StoreError>;

    /// The sender key record for (group, sender device).
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failure.
    fn sender_key(&self, name: &SenderKeyName) -> Result<Option<Blob>, StoreError>;

    /// An application value (`namespace` + `key`). Namespaces starting with `wa.` are
    /// reserved for the engine.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failure.
    fn app_value(&self, namespace: &str, key: &[u8]) -> Result<Option<Blob>, StoreError>;

    /// All keys in an application namespace, ascending bytewise.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failure.
    fn app_keys(&self, namespace: &str) -> Result<Vec<Vec<u8>>, StoreError>;

    /// The LID user mapped to a phone-number user (`"15551234567"` → `"123456789012345"`),
    /// user parts without server or device (shared/protocol/07 §1.2).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the stored value is not UTF-8; [`StoreError::Backend`] on I/O failure.
    fn lid_for_pn(&self, pn_user: &str) -> Result<Option<String>, StoreError>;

    /// The phone-number user mapped to a LID user (the reverse of [`lid_for_pn`](Self::lid_for_pn)).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the stored value is not UTF-8; [`StoreError::Backend`] on I/O failure.
    fn pn_for_lid(&self, lid_user: &str) -> Result<Option<String>, StoreError>;

    /// An app-state sync key by its opaque key id (bytes as the engine put them).
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failure.
    fn app_state_sync_key(&self, key_id: &[u8]) -> Result<Option<Blob>, StoreError>;

    /// The ids of every stored app-state sync key, ascending bytewise.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failure.
    fn app_state_sync_key_ids(&self) -> Result<Vec<Vec<u8>>, StoreError>;

    /// The stored state of one app-state collection (`"regular_high"`, ...), bytes as the
    /// engine put them.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failure.
    fn app_state_collection(&self, name: &str) -> Result<Option<Blob>, StoreError>;

    /// The tctoken record stored for a peer (a device-less user JID string, LID preferred).
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failure.
    fn tc_token(&self, jid: &str) -> Result<Option<Blob>, StoreError>;

    /// Every peer JID with a stored tctoken record, ascending (for pruning, 07 §2.9).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] on a malformed key; [`StoreError::Backend`] on I/O failure.
    fn tc_token_jids(&self) -> Result<Vec<String>, StoreError>;

    /// The account's NCT salt (07 §3.3), if one was synced.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failure.
    fn nct_salt(&self) -> Result<Option<Blob>, StoreError>;

    /// Applies every put and delete of `batch`, in order, atomically and durably:
    /// on `Ok` all of it is visible and flushed to stable storage (a crash right after
    /// keeps it). Readers never see part of a batch. An empty batch is a no-op.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the backend cannot write or flush. Then either none
    /// of the batch is visible (write failed) or all of it is but its durability is
    /// unknown (flush failed); treat the error as fatal for the connection.
    fn apply(&self, batch: StoreBatch) -> Result<(), StoreError>;

    /// Applies `batch` like [`apply`](Self::apply), atomically and visibly to readers,
    /// but without waiting for stable storage: it becomes durable with the next
    /// [`DurableFlush::flush`] of the store's database. Used by a [`GroupCommitter`],
    /// which flushes once for many batches and then calls
    /// [`mark_flushed`](Self::mark_flushed). Default: [`apply`](Self::apply) (durable
    /// at once, which is never wrong).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the backend cannot write; then none of the batch is
    /// visible.
    fn apply_unflushed(&self, batch: StoreBatch) -> Result<(), StoreError> {
        self.apply(batch)
    }

    /// Told by a committer, after a [`DurableFlush::flush`] of this store's database
    /// returned `Ok`, that every batch this store took through
    /// [`apply_unflushed`](Self::apply_unflushed) so far is durable. Backends that keep
    /// a durability marker advance it here (`SledStore` writes its seal). Default:
    /// nothing.
    ///
    /// A committer calls it from the thread that applies the store's unflushed
    /// batches, with no such batch in between the flush and this call.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the marker cannot be written.
    fn mark_flushed(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Deletes everything in every concern (credentials, keys, sessions, app values),
    /// atomically and durably; the store stays usable and empty. Used only when the
    /// device is logged out or removed (shared/protocol/03-pairing-login.md §10.4).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the backend cannot write or flush.
    fn wipe(&self) -> Result<(), StoreError>;
}

/// A Signal protocol address: the address name of a user plus a device id. Key of
/// identities and sessions.
///
/// The name is opaque here; the engine builds it as whatsmeow `types/jid.go`
/// `SignalAddress` does (`user`, or `user_<agent>` for non-PN domains, e.g.
/// `236395184570386_1`), shared/protocol/04-signal.md §8.1.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProtocolAddress {
    /// Address name (user part, possibly with a domain suffix).
    pub name: String,
    /// Device id (0 = primary phone).
    pub device_id: u32,
}

impl ProtocolAddress {
    /// Builds an address from a name and a device id.
    pub fn new(name: impl Into<String>, device_id: u32) -> Self {
        Self {
            name: name.into(),
            device_id,
        }
    }
}

impl fmt::Display for ProtocolAddress {
    /// libsignal's form: `name.device_id`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.name, self.device_id)
    }
}

/// Key of a sender key record: (group JID string, sender device address)
/// (shared/protocol/04-signal.md §9.1; never on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SenderKeyName {
    /// The group JID in display form, e.g. `120363025246125888@g.us`.
    pub group: String,
    /// The sending device.
    pub sender: ProtocolAddress,
}

impl SenderKeyName {
    /// Builds a sender key name.
    pub fn new(group: impl Into<String>, sender: ProtocolAddress) -> Self {
        Self {
            group: group.into(),
            sender,
        }
    }
}

/// Opaque bytes held by the store (session, prekey and sender key records carry key
/// material, so every value is treated as secret).
///
/// `Debug` prints only the length; the buffer is zeroized on drop; `==` is
/// constant-time in the contents.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct Blob(Vec<u8>);

impl Blob {
    /// Wraps bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Deref for Blob {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Blob {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Blob {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<&[u8]> for Blob {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

impl<const N: usize> From<[u8; N]> for Blob {
    fn from(bytes: [u8; N]) -> Self {
        Self(bytes.to_vec())
    }
}

impl<const N: usize> From<&[u8; N]> for Blob {
    fn from(bytes: &[u8; N]) -> Self {
        Self(bytes.to_vec())
    }
}

impl From<Zeroizing<Vec<u8>>> for Blob {
    fn from(mut bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(std::mem::take(&mut *bytes))
    }
}

impl PartialEq for Blob {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Blob {}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

/// One write in a [`StoreBatch`], already in the backend key layout.
pub(crate) enum BatchOp {
    /// Insert or replace.
    Put(Vec<u8>, Blob),
    /// Remove (no-op if absent).
    Delete(Vec<u8>),
}

/// A set of puts and deletes across concerns, applied in order, all-or-nothing, by
/// [`Store::apply`]. A later op on the same key wins.
///
/// ```
/// use wa_engine::store::{MemoryStore, ProtocolAddress, Store, StoreBatch};
/// # fn main() -> Result<(), wa_engine::store::StoreError> {
/// let store = MemoryStore::new();
/// let mut batch = StoreBatch::new();
/// batch
///     .put_session(&ProtocolAddress::new("559984726662", 0), b"session record".to_vec())
///     .delete_prekey(42);
/// store.apply(batch)?;
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct StoreBatch {
    ops: Vec<BatchOp>,
}

impl StoreBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of ops queued.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True if no op is queued.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Bytes of keys and values queued (what a [`GroupCommitConfig::max_bytes`] limit
    /// counts; backend overhead not included).
    pub fn byte_len(&self) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                BatchOp::Put(k, v) => k.len() + v.len(),
                BatchOp::Delete(k) => k.len(),
            })
            .sum()
    }

    fn put(&mut self, key: Vec<u8>, value: Blob) -> &mut Self {
        self.ops.push(BatchOp::Put(key, value));
        self
    }

    fn delete(&mut self, key: Vec<u8>) -> &mut Self {
        self.ops.push(BatchOp::Delete(key));
        self
    }

    /// Stores the device credentials (replacing any).
    pub fn put_credentials(&mut self, credentials: &Credentials) -> &mut Self {
        self.put(key::credentials(), credentials.to_bytes().into())
    }

    /// Deletes the device credentials.
    pub fn delete_credentials(&mut self) -> &mut Self {
        self.delete(key::credentials())
    }

    /// Stores the identity key of `address`.
    pub fn put_identity(&mut self, address: &ProtocolAddress, key: impl Into<Blob>) -> &mut Self {
        self.put(key::identity(address), key.into())
    }

    /// Deletes the identity of `address`.
    pub fn delete_identity(&mut self, address: &ProtocolAddress) -> &mut Self {
        self.delete(key::identity(address))
    }

    /// Stores the session record of `address`.
    pub fn put_session(&mut self, address: &ProtocolAddress, record: impl Into<Blob>) -> &mut Self {
        self.put(key::session(address), record.into())
    }

    /// Deletes the session of `address`.
    pub fn delete_session(&mut self, address: &ProtocolAddress) -> &mut Self {
        self.delete(key::session(address))
    }

    /// Stores a one-time prekey record.
    pub fn put_prekey(&mut self, id: u32, record: impl Into<Blob>) -> &mut Self {
        self.put(key::prekey(id), record.into())
    }

    /// Deletes a one-time prekey (after a pkmsg consumed it, 04-signal.md §8.2).
    pub fn delete_prekey(&mut self, id: u32) -> &mut Self {
        self.delete(key::prekey(id))
    }

    /// Stores the prekey counters.
    pub fn put_prekey_counters(&mut self, counters: PreKeyCounters) -> &mut Self {
        self.put(key::prekey_counters(), counters.to_bytes().into())
    }

    /// Stores a signed prekey record.
    pub fn put_signed_prekey(&mut self, id: u32, record: impl Into<Blob>) -> &mut Self {
        self.put(key::signed_prekey(id), record.into())
    }

    /// Deletes a signed prekey record.
    pub fn delete_signed_prekey(&mut self, id: u32) -> &mut Self {
        self.delete(key::signed_prekey(id))
    }

    /// Stores a sender key record.
    pub fn put_sender_key(&mut self, name: &SenderKeyName, record: impl Into<Blob>) -> &mut Self {
        self.put(key::sender_key(name), record.into())
    }

    /// Deletes a sender key record (e.g. to rotate our own key, 04-signal.md §9.6).
    pub fn delete_sender_key(&mut self, name: &SenderKeyName) -> &mut Self {
        self.delete(key::sender_key(name))
    }

    /// Stores an application value.
    pub fn put_app_value(
        &mut self,
        namespace: &str,
        key: &[u8],
        value: impl Into<Blob>,
    ) -> &mut Self {
        self.put(key::app(namespace, key), value.into())
    }

    /// Deletes an application value.
    pub fn delete_app_value(&mut self, namespace: &str, key: &[u8]) -> &mut Self {
        self.delete(key::app(namespace, key))
    }

    /// Records a PN ⇄ LID mapping (user parts, no server or device), both directions.
    /// A PN that moves to another LID keeps no stale forward entry; the old reverse entry
    /// is left to be overwritten (callers that know it may delete it with
    /// [`delete_lid_mapping`](Self::delete_lid_mapping)).
    pub fn put_lid_mapping(&mut self, pn_user: &str, lid_user: &str) -> &mut Self {
        self.put(key::lid_by_pn(pn_user), Blob::from(lid_user.as_bytes()));
        self.put(key::pn_by_lid(lid_user), Blob::from(pn_user.as_bytes()))
    }

    /// Deletes a PN ⇄ LID mapping, both directions.
    pub fn delete_lid_mapping(&mut self, pn_user: &str, lid_user: &str) -> &mut Self {
        self.delete(key::lid_by_pn(pn_user));
        self.delete(key::pn_by_lid(lid_user))
    }

    /// Stores an app-state sync key under its key id.
    pub fn put_app_state_sync_key(&mut self, key_id: &[u8], key: impl Into<Blob>) -> &mut Self {
        self.put(key::app_state_sync_key(key_id), key.into())
    }

    /// Stores the state of one app-state collection.
    pub fn put_app_state_collection(&mut self, name: &str, state: impl Into<Blob>) -> &mut Self {
        self.put(key::app_state_collection(name), state.into())
    }

    /// Deletes the state of one app-state collection (a full resync starts from version 0).
    pub fn delete_app_state_collection(&mut self, name: &str) -> &mut Self {
        self.delete(key::app_state_collection(name))
    }

    /// Stores the tctoken record of a peer.
    pub fn put_tc_token(&mut self, jid: &str, record: impl Into<Blob>) -> &mut Self {
        self.put(key::tc_token(jid), record.into())
    }

    /// Deletes the tctoken record of a peer.
    pub fn delete_tc_token(&mut self, jid: &str) -> &mut Self {
        self.delete(key::tc_token(jid))
    }

    /// Stores the account's NCT salt.
    pub fn put_nct_salt(&mut self, salt: impl Into<Blob>) -> &mut Self {
        self.put(key::nct_salt(), salt.into())
    }

    /// Deletes the account's NCT salt (app-state REMOVE of `nct_salt_sync`, 07 §3.3).
    pub fn delete_nct_salt(&mut self) -> &mut Self {
        self.delete(key::nct_salt())
    }

    /// The queued ops, for backends.
    pub(crate) fn into_ops(self) -> Vec<BatchOp> {
        self.ops
    }

    /// The queued ops in order, in the engine's raw key layout, for a [`Store`] or
    /// [`Persist`] implemented outside this crate (e.g. a network database that keeps
    /// `(key, value)` rows). Keys are opaque bytes: compare and order them bytewise,
    /// never interpret them. Later ops on the same key win.
    pub fn raw_ops(&self) -> impl Iterator<Item = RawOp<'_>> + '_ {
        self.ops.iter().map(|op| match op {
            BatchOp::Put(k, v) => RawOp::Put(k, v.as_bytes()),
            BatchOp::Delete(k) => RawOp::Delete(k),
        })
    }

    /// Queues a put of `value` under a raw `key` taken from [`raw_ops`](Self::raw_ops) or
    /// read back from a backend that stored them (loading a cache from a network
    /// database). A key not made by this crate is never read by the engine.
    pub fn put_raw(&mut self, key: Vec<u8>, value: impl Into<Blob>) -> &mut Self {
        self.put(key, value.into())
    }
}

/// One write of a [`StoreBatch`] in the raw key layout ([`StoreBatch::raw_ops`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RawOp<'a> {
    /// Insert or replace `value` under `key`.
    Put(&'a [u8], &'a [u8]),
    /// Remove `key` (no-op if absent).
    Delete(&'a [u8]),
}

impl fmt::Debug for RawOp<'_> {
    /// Lengths only: keys name peers and values hold key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Put(k, v) => write!(f, "Put({} byte key, {} byte value)", k.len(), v.len()),
            Self::Delete(k) => write!(f, "Delete({} byte key)", k.len()),
        }
    }
}

impl fmt::Debug for StoreBatch {
    /// Counts only: keys name peers and values hold key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let puts = self
            .ops
            .iter()
            .filter(|op| matches!(op, BatchOp::Put(..)))
            .count();
        f.debug_struct("StoreBatch")
            .field("puts", &puts)
            .field("deletes", &(self.ops.len() - puts))
            .finish()
    }
}

/// The typed reads of [`Store`] expressed over a raw ordered byte map; each backend
/// implements the two raw reads and forwards its `Store` reads here.
pub(crate) trait RawRead {
    /// The value under `key`.
    fn raw_get(&self, key: &[u8]) -> Result<Option<Blob>, StoreError>;
    /// All keys starting with `prefix`, ascending.
    fn raw_keys(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError>;

    fn read_credentials(&self) -> Result<Option<Credentials>, StoreError> {
        self.raw_get(&key::credentials())?
            .map(|b| Credentials::from_bytes(&b))
            .transpose()
    }

    fn read_prekey_counters(&self) -> Result<Option<PreKeyCounters>, StoreError> {
        self.raw_get(&key::prekey_counters())?
            .map(|b| PreKeyCounters::from_bytes(&b))
            .transpose()
    }

    fn read_ids(&self, prefix: &[u8], what: &'static str) -> Result<Vec<u32>, StoreError> {
        key::trailing_ids(prefix, self.raw_keys(prefix)?, what)
    }

    fn read_string(&self, key: &[u8], what: &'static str) -> Result<Option<String>, StoreError> {
        self.raw_get(key)?
            .map(|b| {
                String::from_utf8(b.as_bytes().to_vec()).map_err(|_| StoreError::Corrupt { what })
            })
            .transpose()
    }

    fn read_tc_token_jids(&self) -> Result<Vec<String>, StoreError> {
        self.raw_keys(&key::tc_token_prefix())?
            .iter()
            .map(|k| key::name_of(k, "tctoken key"))
            .collect()
    }

    fn read_app_keys(&self, namespace: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let prefix = key::app_prefix(namespace);
        key::strip_prefix(&prefix, self.raw_keys(&prefix)?)
    }
}

/// Implements the read half of [`Store`] for a type implementing [`RawRead`].
macro_rules! forward_reads {
    () => {
        fn credentials(&self) -> Result<Option<$crate::store::Credentials>, StoreError> {
            self.read_credentials()
        }
        fn identity(&self, a: &$crate::store::ProtocolAddress) -> Result<Option<Blob>, StoreError> {
            self.raw_get(&key::identity(a))
        }
        fn identity_devices(&self, name: &str) -> Result<Vec<u32>, StoreError> {
            self.read_ids(&key::identity_prefix(name), "identity key")
        }
        fn session(&self, a: &$crate::store::ProtocolAddress) -> Result<Option<Blob>, StoreError> {
            self.raw_get(&key::session(a))
        }
        fn session_devices(&self, name: &str) -> Result<Vec<u32>, StoreError> {
            self.read_ids(&key::session_prefix(name), "session key")
        }
        fn prekey(&self, id: u32) -> Result<Option<Blob>, StoreError> {
            self.raw_get(&key::prekey(id))
        }
        fn prekey_ids(&self) -> Result<Vec<u32>, StoreError> {
            self.read_ids(&key::prekey_prefix(), "prekey key")
        }
        fn prekey_counters(&self) -> Result<Option<$crate::store::PreKeyCounters>, StoreError> {
            self.read_prekey_counters()
        }
        fn signed_prekey(&self, id: u32) -> Result<Option<Blob>, StoreError> {
            self.raw_get(&key::signed_prekey(id))
        }
        fn signed_prekey_ids(&self) -> Result<Vec<u32>, StoreError> {
            self.read_ids(&key::signed_prekey_prefix(), "signed prekey key")
        }
        fn sender_key(&self, n: &$crate::store::SenderKeyName) -> Result<Option<Blob>, StoreError> {
            self.raw_get(&key::sender_key(n))
        }
        fn app_value(&self, namespace: &str, k: &[u8]) -> Result<Option<Blob>, StoreError> {
            self.raw_get(&key::app(namespace, k))
        }
        fn app_keys(&self, namespace: &str) -> Result<Vec<Vec<u8>>, StoreError> {
            self.read_app_keys(namespace)
        }
        fn lid_for_pn(&self, pn_user: &str) -> Result<Option<String>, StoreError> {
            self.read_string(&key::lid_by_pn(pn_user), "LID mapping")
        }
        fn pn_for_lid(&self, lid_user: &str) -> Result<Option<String>, StoreError> {
            self.read_string(&key::pn_by_lid(lid_user), "LID mapping")
        }
        fn app_state_sync_key(&self, key_id: &[u8]) -> Result<Option<Blob>, StoreError> {
            self.raw_get(&key::app_state_sync_key(key_id))
        }
        fn app_state_sync_key_ids(&self) -> Result<Vec<Vec<u8>>, StoreError> {
            let prefix = key::app_state_sync_key_prefix();
            key::strip_prefix(&prefix, self.raw_keys(&prefix)?)
        }
        fn app_state_collection(&self, name: &str) -> Result<Option<Blob>, StoreError> {
            self.raw_get(&key::app_state_collection(name))
        }
        fn tc_token(&self, jid: &str) -> Result<Option<Blob>, StoreError> {
            self.raw_get(&key::tc_token(jid))
        }
        fn tc_token_jids(&self) -> Result<Vec<String>, StoreError> {
            self.read_tc_token_jids()
        }
        fn nct_salt(&self) -> Result<Option<Blob>, StoreError> {
            self.raw_get(&key::nct_salt())
        }
    };
}
use forward_reads;

#[cfg(test)]
mod tests {
    use super::*;

    /// The 2026 concerns (LID map, app-state keys and collections, tctokens, NCT salt) read
    /// back what a batch wrote, list in order and delete, on `store`.
    fn new_concerns_round_trip(store: &dyn Store) {
        let mut batch = StoreBatch::new();
        batch
            .put_lid_mapping("15551234567", "123456789012345")
            .put_app_state_sync_key(b"\x00\x01", b"key".to_vec())
            .put_app_state_sync_key(b"\x00", b"k0".to_vec())
            .put_app_state_collection("regular_high", b"state".to_vec())
            .put_tc_token("2@lid", b"t2".to_vec())
            .put_tc_token("1@lid", b"t1".to_vec())
            .put_nct_salt([7u8; 32]);
        assert!(store.apply(batch).is_ok());
        assert_eq!(
            store.lid_for_pn("15551234567").ok().flatten().as_deref(),
            Some("123456789012345")
        );
        assert_eq!(
            store
                .pn_for_lid("123456789012345")
                .ok()
                .flatten()
                .as_deref(),
            Some("15551234567")
        );
        assert_eq!(store.lid_for_pn("1555123456").ok().flatten(), None);
        assert_eq!(
            store.app_state_sync_key_ids().ok(),
            Some(vec![vec![0], vec![0, 1]])
        );
        assert_eq!(
            store.tc_token_jids().ok(),
            Some(vec!["1@lid".to_owned(), "2@lid".to_owned()])
        );
        assert_eq!(
            store.nct_salt().ok().flatten().map(|b| b.to_vec()),
            Some(vec![7u8; 32])
        );

        let mut batch = StoreBatch::new();
        batch
            .delete_lid_mapping("15551234567", "123456789012345")
            .delete_app_state_collection("regular_high")
            .delete_tc_token("1@lid")
            .delete_nct_salt();
        assert!(store.apply(batch).is_ok());
        assert_eq!(store.lid_for_pn("15551234567").ok().flatten(), None);
        assert_eq!(store.pn_for_lid("123456789012345").ok().flatten(), None);
        assert_eq!(
            store.app_state_collection("regular_high").ok().flatten(),
            None
        );
        assert_eq!(store.tc_token_jids().ok(), Some(vec!["2@lid".to_owned()]));
        assert_eq!(store.nct_salt().ok().flatten(), None);
    }

    #[test]
    fn new_concerns_round_trip_in_memory() {
        new_concerns_round_trip(&MemoryStore::new());
    }

    #[cfg(feature = "sled")]
    #[test]
    fn new_concerns_round_trip_in_sled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path().join("s")).expect("open");
        new_concerns_round_trip(&store);
    }
}
