//! In-memory [`Store`]: always compiled, for tests and examples.

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{BatchOp, Blob, RawRead, Store, StoreBatch, StoreError, forward_reads, key};

/// A [`Store`] held in memory (one ordered map behind a lock, using the same key layout
/// as the persistent backends). Nothing survives the process.
///
/// [`apply`](Store::apply) holds the write lock for the whole batch, so readers see all
/// of a batch or none of it; it never fails.
#[derive(Default)]
pub struct MemoryStore {
    map: RwLock<BTreeMap<Vec<u8>, Blob>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    // A panic while holding the lock cannot leave the map half-written: `apply` only
    // calls infallible map operations, so a poisoned lock still guards a consistent map.
    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<Vec<u8>, Blob>> {
        self.map.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<Vec<u8>, Blob>> {
        self.map.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.read().len())
            .finish()
    }
}

impl RawRead for MemoryStore {
    fn raw_get(&self, key: &[u8]) -> Result<Option<Blob>, StoreError> {
        Ok(self.read().get(key).cloned())
    }

    fn raw_keys(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self
            .read()
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect())
    }
}

impl Store for MemoryStore {
    forward_reads!();

    fn apply(&self, batch: StoreBatch) -> Result<(), StoreError> {
        let mut map = self.write();
        for op in batch.into_ops() {
            match op {
                BatchOp::Put(k, v) => {
                    map.insert(k, v);
                }
                BatchOp::Delete(k) => {
                    map.remove(&k);
                }
            }
        }
        Ok(())
    }

    fn wipe(&self) -> Result<(), StoreError> {
        self.write().clear();
        Ok(())
    }
}
