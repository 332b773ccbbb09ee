//! The connection's view of the store: reads see every write the connection made, writes are
//! either applied at once (inline) or staged in memory until the driver reports them durable.
//!
//! This is what makes persistence an *effect* of the sans-IO core (issue "A durable
//! pipeline"): in [`Persistence::Deferred`] mode, [`Store::apply`] on a [`Staged`] store
//! never touches the disk. It records the batch in an in-memory overlay (so the next read
//! of the same connection sees it) and appends it to the open write batch, which the
//! driver takes with `Connection::poll_write`, makes durable (one flush shared with other
//! sessions through a group committer) and reports back with `Connection::handle_durable`.
//! Every frame and event the connection queues after a write carries that write's sequence
//! number and is released only once it is durable, so the durability rule of
//! shared/protocol/04-signal.md §8.4 (state before the ciphertext, the receipt and the ack)
//! holds without a blocking flush on the connection's thread.
//!
//! Overlay entries are dropped once the backend holds them durably, so the overlay holds
//! only writes that are in flight (typically a few records).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{
    BatchOp, Blob, Credentials, PreKeyCounters, ProtocolAddress, SenderKeyName, Store, StoreBatch,
    StoreError, key,
};

/// How a connection persists its writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Persistence {
    /// Every write is applied to the store (atomically and durably) before the call that
    /// made it returns, on the caller's thread. For drivers that call `Connection` directly
    /// and never call `poll_write` (tests, the simulated phones).
    #[default]
    Inline,
    /// Writes are staged in memory and handed to the driver through `poll_write`; frames
    /// and events queued after a write wait until the driver calls `handle_durable` with its
    /// sequence number. The async driver ([`crate::Client`]) uses this mode.
    Deferred,
}

/// One write batch a connection asks its driver to make durable.
#[derive(Debug)]
pub struct WriteBatch {
    /// Sequence number to pass to `Connection::handle_durable` once durable; increasing.
    pub seq: u64,
    /// The writes, in order (later ops on the same key win).
    pub batch: StoreBatch,
}

/// A store wrapper that stages writes (see the [module docs](self)).
pub(crate) struct Staged {
    backend: Arc<dyn Store>,
    mode: Persistence,
    /// Sequence number of the last staged write (0: none yet). Shared with the queues that
    /// tag frames and events with it.
    staged_seq: Arc<AtomicU64>,
    inner: Mutex<Overlay>,
}

#[derive(Default)]
struct Overlay {
    /// Raw key -> (sequence number of the last write, value; `None` = deleted).
    entries: BTreeMap<Vec<u8>, (u64, Option<Blob>)>,
    /// Ops staged since the last `take_write`.
    open: Vec<BatchOp>,
    /// Highest sequence number reported durable.
    durable: u64,
}

impl Staged {
    /// Wraps `backend`.
    pub(crate) fn new(backend: Arc<dyn Store>, mode: Persistence) -> Self {
        Self {
            backend,
            mode,
            staged_seq: Arc::new(AtomicU64::new(0)),
            inner: Mutex::new(Overlay::default()),
        }
    }

    /// The counter of staged writes, for tagging queued frames and events.
    pub(crate) fn seq_handle(&self) -> Arc<AtomicU64> {
        self.staged_seq.clone()
    }

    /// Sequence number of the last staged write.
    pub(crate) fn staged_seq(&self) -> u64 {
        self.staged_seq.load(Ordering::Acquire)
    }

    /// Highest sequence number reported durable (everything up to it is on disk).
    pub(crate) fn durable_seq(&self) -> u64 {
        self.lock().durable
    }

    fn lock(&self) -> MutexGuard<'_, Overlay> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The writes staged since the last call, as one batch, or `None` if there are none.
    pub(crate) fn take_write(&self) -> Option<WriteBatch> {
        let mut inner = self.lock();
        if inner.open.is_empty() {
            return None;
        }
        let ops = std::mem::take(&mut inner.open);
        Some(WriteBatch {
            seq: self.staged_seq(),
            batch: StoreBatch { ops },
        })
    }

    /// Records that every write up to `seq` is durable in the backend: their overlay
    /// entries are dropped (reads go to the backend again).
    pub(crate) fn mark_durable(&self, seq: u64) {
        let mut inner = self.lock();
        if seq <= inner.durable {
            return;
        }
        inner.durable = seq;
        inner.entries.retain(|_, (s, _)| *s > seq);
    }

    /// Whether staged writes wait for the driver (nothing staged and not yet durable).
    pub(crate) fn all_durable(&self) -> bool {
        let inner = self.lock();
        inner.open.is_empty() && inner.durable >= self.staged_seq()
    }

    /// The overlay's answer for `key`: `Some(value)` when the connection wrote it and the
    /// write is not yet durable (`Some(None)`: deleted), `None` to ask the backend.
    fn staged(&self, key: &[u8]) -> Option<Option<Blob>> {
        if self.mode == Persistence::Inline {
            return None;
        }
        let inner = self.lock();
        inner.entries.get(key).map(|(_, v)| v.clone())
    }

    /// A point read: overlay first, then `backend`.
    fn read(
        &self,
        key: Vec<u8>,
        backend: impl FnOnce() -> Result<Option<Blob>, StoreError>,
    ) -> Result<Option<Blob>, StoreError> {
        match self.staged(&key) {
            Some(v) => Ok(v),
            None => backend(),
        }
    }

    /// The staged keys under `prefix` with whether each is present (put) or deleted.
    fn staged_under(&self, prefix: &[u8]) -> Vec<(Vec<u8>, bool)> {
        if self.mode == Persistence::Inline {
            return Vec::new();
        }
        let inner = self.lock();
        inner
            .entries
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (_, v))| (k.clone(), v.is_some()))
            .collect()
    }

    /// A listing: the backend's items merged with staged puts and deletes under `prefix`,
    /// each staged key turned into an item by `item`.
    fn merged<T: Ord>(
        &self,
        prefix: &[u8],
        from_backend: Vec<T>,
        item: impl Fn(&[u8]) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let staged = self.staged_under(prefix);
        if staged.is_empty() {
            return Ok(from_backend);
        }
        let mut set: BTreeSet<T> = from_backend.into_iter().collect();
        for (k, present) in staged {
            let it = item(&k)?;
            if present {
                set.insert(it);
            } else {
                set.remove(&it);
            }
        }
        Ok(set.into_iter().collect())
    }

    fn merged_ids(
        &self,
        prefix: Vec<u8>,
        from_backend: Vec<u32>,
        what: &'static str,
    ) -> Result<Vec<u32>, StoreError> {
        self.merged(&prefix, from_backend, |k| {
            key::trailing_ids(&prefix, [k], what).map(|ids| ids.first().copied().unwrap_or(0))
        })
    }

    fn merged_suffixes(
        &self,
        prefix: Vec<u8>,
        from_backend: Vec<Vec<u8>>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.merged(&prefix, from_backend, |k| {
            key::strip_prefix(&prefix, [k]).map(|mut v| v.pop().unwrap_or_default())
        })
    }

    fn read_string(
        &self,
        key: Vec<u8>,
        what: &'static str,
        backend: impl FnOnce() -> Result<Option<String>, StoreError>,
    ) -> Result<Option<String>, StoreError> {
        match self.staged(&key) {
            Some(v) => v
                .map(|b| String::from_utf8(b.to_vec()).map_err(|_| StoreError::Corrupt { what }))
                .transpose(),
            None => backend(),
        }
    }
}

impl Store for Staged {
    fn credentials(&self) -> Result<Option<Credentials>, StoreError> {
        match self.staged(&key::credentials()) {
            Some(v) => v.map(|b| Credentials::from_bytes(&b)).transpose(),
            None => self.backend.credentials(),
        }
    }

    fn identity(&self, address: &ProtocolAddress) -> Result<Option<Blob>, StoreError> {
        self.read(key::identity(address), || self.backend.identity(address))
    }

    fn identity_devices(&self, name: &str) -> Result<Vec<u32>, StoreError> {
        self.merged_ids(
            key::identity_prefix(name),
            self.backend.identity_devices(name)?,
            "identity key",
        )
    }

    fn session(&self, address: &ProtocolAddress) -> Result<Option<Blob>, StoreError> {
        self.read(key::session(address), || self.backend.session(address))
    }

    fn session_devices(&self, name: &str) -> Result<Vec<u32>, StoreError> {
        self.merged_ids(
            key::session_prefix(name),
            self.backend.session_devices(name)?,
            "session key",
        )
    }

    fn prekey(&self, id: u32) -> Result<Option<Blob>, StoreError> {
        self.read(key::prekey(id), || self.backend.prekey(id))
    }

    fn prekey_ids(&self) -> Result<Vec<u32>, StoreError> {
        self.merged_ids(
            key::prekey_prefix(),
            self.backend.prekey_ids()?,
            "prekey key",
        )
    }

    fn prekey_counters(&self) -> Result<Option<PreKeyCounters>, StoreError> {
        match self.staged(&key::prekey_counters()) {
            Some(v) => v.map(|b| PreKeyCounters::from_bytes(&b)).transpose(),
            None => self.backend.prekey_counters(),
        }
    }

    fn signed_prekey(&self, id: u32) -> Result<Option<Blob>, StoreError> {
        self.read(key::signed_prekey(id), || self.backend.signed_prekey(id))
    }

    fn signed_prekey_ids(&self) -> Result<Vec<u32>, StoreError> {
        self.merged_ids(
            key::signed_prekey_prefix(),
            self.backend.signed_prekey_ids()?,
            "signed prekey key",
        )
    }

    fn sender_key(&self, name: &SenderKeyName) -> Result<Option<Blob>, StoreError> {
        self.read(key::sender_key(name), || self.backend.sender_key(name))
    }

    fn app_value(&self, namespace: &str, k: &[u8]) -> Result<Option<Blob>, StoreError> {
        self.read(key::app(namespace, k), || {
            self.backend.app_value(namespace, k)
        })
    }

    fn app_keys(&self, namespace: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        self.merged_suffixes(
            key::app_prefix(namespace),
            self.backend.app_keys(namespace)?,
        )
    }

    fn lid_for_pn(&self, pn_user: &str) -> Result<Option<String>, StoreError> {
        self.read_string(key::lid_by_pn(pn_user), "LID mapping", || {
            self.backend.lid_for_pn(pn_user)
        })
    }

    fn pn_for_lid(&self, lid_user: &str) -> Result<Option<String>, StoreError> {
        self.read_string(key::pn_by_lid(lid_user), "LID mapping", || {
            self.backend.pn_for_lid(lid_user)
        })
    }

    fn app_state_sync_key(&self, key_id: &[u8]) -> Result<Option<Blob>, StoreError> {
        self.read(key::app_state_sync_key(key_id), || {
            self.backend.app_state_sync_key(key_id)
        })
    }

    fn app_state_sync_key_ids(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.merged_suffixes(
            key::app_state_sync_key_prefix(),
            self.backend.app_state_sync_key_ids()?,
        )
    }

    fn app_state_collection(&self, name: &str) -> Result<Option<Blob>, StoreError> {
        self.read(key::app_state_collection(name), || {
            self.backend.app_state_collection(name)
        })
    }

    fn tc_token(&self, jid: &str) -> Result<Option<Blob>, StoreError> {
        self.read(key::tc_token(jid), || self.backend.tc_token(jid))
    }

    fn tc_token_jids(&self) -> Result<Vec<String>, StoreError> {
        self.merged(
            &key::tc_token_prefix(),
            self.backend.tc_token_jids()?,
            |k| key::name_of(k, "tctoken key"),
        )
    }

    fn nct_salt(&self) -> Result<Option<Blob>, StoreError> {
        self.read(key::nct_salt(), || self.backend.nct_salt())
    }

    /// Inline: the backend's `apply`. Deferred: stages the batch (never fails) and bumps the
    /// staged sequence number; frames and events queued from now on wait for it.
    fn apply(&self, batch: StoreBatch) -> Result<(), StoreError> {
        if self.mode == Persistence::Inline {
            return self.backend.apply(batch);
        }
        if batch.is_empty() {
            return Ok(());
        }
        let mut inner = self.lock();
        let seq = self.staged_seq.load(Ordering::Acquire) + 1;
        for op in batch.into_ops() {
            match &op {
                BatchOp::Put(k, v) => {
                    inner.entries.insert(k.clone(), (seq, Some(v.clone())));
                }
                BatchOp::Delete(k) => {
                    inner.entries.insert(k.clone(), (seq, None));
                }
            }
            inner.open.push(op);
        }
        self.staged_seq.store(seq, Ordering::Release);
        Ok(())
    }

    /// Not used by a connection (the driver wipes the backend after the connection ended).
    fn wipe(&self) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.open.clear();
        self.backend.wipe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn staged() -> (Arc<MemoryStore>, Staged) {
        let backend = Arc::new(MemoryStore::new());
        let staged = Staged::new(backend.clone(), Persistence::Deferred);
        (backend, staged)
    }

    #[test]
    fn deferred_writes_are_read_back_before_they_reach_the_backend() {
        let (backend, staged) = staged();
        let a = ProtocolAddress::new("1", 0);
        let mut b = StoreBatch::new();
        b.put_session(&a, b"s1".to_vec())
            .put_prekey(7, b"p".to_vec());
        staged.apply(b).expect("stage");
        assert_eq!(staged.staged_seq(), 1);
        assert_eq!(
            staged.session(&a).expect("read").as_deref(),
            Some(&b"s1"[..])
        );
        assert_eq!(staged.prekey_ids().expect("ids"), vec![7]);
        assert_eq!(backend.session(&a).expect("backend"), None);

        let w = staged.take_write().expect("a write");
        assert_eq!((w.seq, w.batch.len()), (1, 2));
        assert!(staged.take_write().is_none());
        backend.apply(w.batch).expect("commit");
        staged.mark_durable(w.seq);
        assert!(staged.all_durable());
        assert_eq!(
            staged.session(&a).expect("read").as_deref(),
            Some(&b"s1"[..])
        );
    }

    #[test]
    fn staged_deletes_hide_backend_values_and_listings() {
        let (backend, staged) = staged();
        let mut b = StoreBatch::new();
        b.put_prekey(1, b"a".to_vec())
            .put_prekey(2, b"b".to_vec())
            .put_app_value("ns", b"k", b"v".to_vec())
            .put_tc_token("1@lid", b"t".to_vec());
        backend.apply(b).expect("backend");
        let mut d = StoreBatch::new();
        d.delete_prekey(1)
            .put_prekey(3, b"c".to_vec())
            .delete_app_value("ns", b"k")
            .put_app_value("ns", b"j", b"w".to_vec())
            .delete_tc_token("1@lid")
            .put_tc_token("2@lid", b"u".to_vec());
        staged.apply(d).expect("stage");
        assert_eq!(staged.prekey(1).expect("read"), None);
        assert_eq!(staged.prekey_ids().expect("ids"), vec![2, 3]);
        assert_eq!(staged.app_keys("ns").expect("keys"), vec![b"j".to_vec()]);
        assert_eq!(
            staged.tc_token_jids().expect("jids"),
            vec!["2@lid".to_owned()]
        );
    }

    #[test]
    fn a_newer_write_survives_the_durability_of_an_older_one() {
        let (backend, staged) = staged();
        let a = ProtocolAddress::new("1", 0);
        let mut b = StoreBatch::new();
        b.put_session(&a, b"old".to_vec());
        staged.apply(b).expect("stage");
        let first = staged.take_write().expect("write");
        let mut b = StoreBatch::new();
        b.put_session(&a, b"new".to_vec());
        staged.apply(b).expect("stage");
        backend.apply(first.batch).expect("commit");
        staged.mark_durable(first.seq);
        // The second write is not durable yet: the overlay still answers with it.
        assert_eq!(
            staged.session(&a).expect("read").as_deref(),
            Some(&b"new"[..])
        );
        assert!(!staged.all_durable());
    }

    #[test]
    fn inline_mode_writes_through() {
        let backend = Arc::new(MemoryStore::new());
        let staged = Staged::new(backend.clone(), Persistence::Inline);
        let mut b = StoreBatch::new();
        b.put_prekey(5, b"x".to_vec());
        staged.apply(b).expect("apply");
        assert_eq!(staged.staged_seq(), 0);
        assert!(staged.take_write().is_none());
        assert_eq!(backend.prekey(5).expect("read").as_deref(), Some(&b"x"[..]));
    }
}
