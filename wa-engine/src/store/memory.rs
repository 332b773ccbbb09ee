//! In-memory [`Store`]: always compiled, for tests, examples and many short-lived clients.

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use zeroize::Zeroize;

use super::{
    BatchOp, Blob, DurableFlush, RawRead, Store, StoreBatch, StoreError, forward_reads, key,
};

/// A [`Store`] held in memory, using the same key layout as the persistent backends.
/// Nothing survives the process.
///
/// One-time prekeys, the bulk of an idle device's state (a batch of 812 after the first
/// login, 04 §4.3), are kept compactly: their records (at most 75 bytes,
/// which the engine's always are) sit in fixed-size slots of one contiguous buffer, sorted
/// by id, with no allocation per key. That is 80 bytes a key where an ordered map of
/// heap-allocated keys and values took about 200 (and left the allocator fragmented),
/// the largest part of an idle client's memory (benches/messaging). Any other value, and a
/// prekey record that does not fit a slot, goes to an ordered map. The split is invisible
/// through [`Store`]: reads, listings and batches behave as one keyspace.
///
/// [`apply`](Store::apply) holds the write lock for the whole batch, so readers see all
/// of a batch or none of it; it never fails. Removed and overwritten prekey slots are
/// zeroized, and so is the slot buffer when it moves, shrinks or is dropped.
#[derive(Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
}

/// Largest prekey record kept in a slot, bytes: the engine's records are a protobuf of a
/// version, an id below 2^24 and two 32-byte keys, at most 75 bytes
/// (`signal::record::encode_prekey`).
const PREKEY_INLINE: usize = 75;

/// A slot: one length byte, then the record, zero-padded.
const SLOT: usize = 1 + PREKEY_INLINE;

#[derive(Default)]
struct Inner {
    /// Every value that is not in `prekeys`.
    map: BTreeMap<Vec<u8>, Blob>,
    prekeys: PreKeySlots,
}

/// One-time prekey records in fixed-size slots: `ids` ascending, slot `i` of `data`
/// (`data[i * SLOT..(i + 1) * SLOT]`) holds the record of `ids[i]`.
#[derive(Default)]
struct PreKeySlots {
    ids: Vec<u32>,
    data: Vec<u8>,
}

impl PreKeySlots {
    fn position(&self, id: u32) -> Result<usize, usize> {
        self.ids.binary_search(&id)
    }

    fn get(&self, id: u32) -> Option<Blob> {
        let i = self.position(id).ok()?;
        let slot = self.data.get(i * SLOT..(i + 1) * SLOT)?;
        let (len, record) = slot.split_first()?;
        record.get(..usize::from(*len)).map(Blob::from)
    }

    /// Makes room for `more` slots. Grows to exactly what is needed through a fresh
    /// buffer and zeroizes the old one (a `Vec` reallocation would leave copies of the
    /// keys in freed memory).
    fn reserve(&mut self, more: usize) {
        let needed = self.data.len() + more * SLOT;
        if needed <= self.data.capacity() {
            return;
        }
        let mut bigger = Vec::with_capacity(needed);
        bigger.extend_from_slice(&self.data);
        self.data.zeroize();
        self.data = bigger;
        self.ids.reserve_exact(more);
    }

    /// Stores `record` (at most [`PREKEY_INLINE`] bytes) under `id`, replacing any.
    fn put(&mut self, id: u32, record: &[u8]) {
        let Some(len) = u8::try_from(record.len())
            .ok()
            .filter(|_| record.len() <= PREKEY_INLINE)
        else {
            return;
        };
        let i = match self.position(id) {
            Ok(i) => i,
            Err(i) => {
                self.reserve(1);
                let old_len = self.data.len();
                self.data.resize(old_len + SLOT, 0);
                self.data.copy_within(i * SLOT..old_len, (i + 1) * SLOT);
                self.ids.insert(i, id);
                i
            }
        };
        if let Some(slot) = self.data.get_mut(i * SLOT..(i + 1) * SLOT) {
            slot.zeroize();
            if let Some((first, rest)) = slot.split_first_mut()
                && let Some(dst) = rest.get_mut(..record.len())
            {
                *first = len;
                dst.copy_from_slice(record);
            }
        }
    }

    fn remove(&mut self, id: u32) {
        let Ok(i) = self.position(id) else {
            return;
        };
        let len = self.data.len();
        self.data.copy_within((i + 1) * SLOT..len, i * SLOT);
        if let Some(last) = self.data.get_mut(len - SLOT..) {
            last.zeroize();
        }
        self.data.truncate(len - SLOT);
        self.ids.remove(i);
        // Give memory back once most keys are used up (zeroizing the old buffer).
        if self.data.capacity() > 2 * self.data.len() + 64 * SLOT {
            let mut smaller = Vec::with_capacity(self.data.len());
            smaller.extend_from_slice(&self.data);
            self.data.zeroize();
            self.data = smaller;
            self.ids.shrink_to_fit();
        }
    }

    fn clear(&mut self) {
        self.data.zeroize();
        self.data = Vec::new();
        self.ids = Vec::new();
    }
}

impl Drop for PreKeySlots {
    fn drop(&mut self) {
        self.data.zeroize();
    }
}

/// Whether `key` is a prekey key whose record fits a slot.
fn slot_id(key: &[u8], value: &Blob) -> Option<u32> {
    key::prekey_id_of(key).filter(|_| value.len() <= PREKEY_INLINE)
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    // A panic while holding the lock cannot leave the store half-written: `apply` only
    // calls infallible operations, so a poisoned lock still guards a consistent state.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.read();
        f.debug_struct("MemoryStore")
            .field("entries", &(inner.map.len() + inner.prekeys.ids.len()))
            .finish()
    }
}

impl RawRead for MemoryStore {
    fn raw_get(&self, key: &[u8]) -> Result<Option<Blob>, StoreError> {
        let inner = self.read();
        if let Some(id) = key::prekey_id_of(key)
            && let Some(record) = inner.prekeys.get(id)
        {
            return Ok(Some(record));
        }
        Ok(inner.map.get(key).cloned())
    }

    fn raw_keys(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let inner = self.read();
        let mut keys: Vec<Vec<u8>> = inner
            .map
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect();
        let before = keys.len();
        keys.extend(
            inner
                .prekeys
                .ids
                .iter()
                .map(|&id| key::prekey(id))
                .filter(|k| k.starts_with(prefix)),
        );
        // A key lives in one place only; merge the two ascending runs.
        if before > 0 && keys.len() > before {
            keys.sort_unstable();
        }
        Ok(keys)
    }
}

impl Store for MemoryStore {
    forward_reads!();

    fn apply(&self, batch: StoreBatch) -> Result<(), StoreError> {
        let ops = batch.into_ops();
        let mut inner = self.write();
        let inner = &mut *inner;
        let new_slots = ops
            .iter()
            .filter(|op| matches!(op, BatchOp::Put(k, v) if slot_id(k, v).is_some()))
            .count();
        inner.prekeys.reserve(new_slots);
        for op in ops {
            match op {
                BatchOp::Put(k, v) => match slot_id(&k, &v) {
                    Some(id) => {
                        inner.map.remove(&k);
                        inner.prekeys.put(id, &v);
                    }
                    None => {
                        if let Some(id) = key::prekey_id_of(&k) {
                            inner.prekeys.remove(id);
                        }
                        inner.map.insert(k, v);
                    }
                },
                BatchOp::Delete(k) => {
                    if let Some(id) = key::prekey_id_of(&k) {
                        inner.prekeys.remove(id);
                    }
                    inner.map.remove(&k);
                }
            }
        }
        Ok(())
    }

    fn wipe(&self) -> Result<(), StoreError> {
        let mut inner = self.write();
        inner.map.clear();
        inner.prekeys.clear();
        Ok(())
    }
}

impl DurableFlush for MemoryStore {
    /// Nothing to flush: a `MemoryStore` is never durable, and its writes are complete
    /// when `apply` returns.
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u32, len: usize) -> Vec<u8> {
        (0..len).map(|i| (id as usize + i) as u8).collect()
    }

    #[test]
    fn the_engines_prekey_records_fit_a_slot() {
        let mut rng = rand::rng();
        for id in [1, 127, 128, 0x3FFF, 0x4000, crate::signal::MAX_PREKEY_ID] {
            let record = crate::signal::PreKeyRecord::generate(id, &mut rng);
            assert!(record.to_bytes().len() <= PREKEY_INLINE, "id {id}");
        }
    }

    #[test]
    fn prekeys_in_slots_read_back_list_in_order_and_delete() {
        let store = MemoryStore::new();
        let mut batch = StoreBatch::new();
        for id in [5, 1, 3, 0x00FF_FFFF] {
            batch.put_prekey(id, record(id, 75));
        }
        batch.put_session(&super::super::ProtocolAddress::new("1", 0), b"s".to_vec());
        store.apply(batch).ok();
        assert_eq!(store.prekey_ids().ok(), Some(vec![1, 3, 5, 0x00FF_FFFF]));
        assert_eq!(
            store.prekey(3).ok().flatten().map(|b| b.to_vec()),
            Some(record(3, 75))
        );

        let mut batch = StoreBatch::new();
        batch.delete_prekey(3).put_prekey(4, record(4, 10));
        store.apply(batch).ok();
        assert_eq!(store.prekey(3).ok().flatten(), None);
        assert_eq!(store.prekey_ids().ok(), Some(vec![1, 4, 5, 0x00FF_FFFF]));
        assert_eq!(
            store.prekey(5).ok().flatten().map(|b| b.to_vec()),
            Some(record(5, 75))
        );
    }

    #[test]
    fn an_oversized_prekey_record_moves_between_slot_and_map() {
        let store = MemoryStore::new();
        let mut batch = StoreBatch::new();
        batch
            .put_prekey(7, record(7, 75))
            .put_prekey(8, record(8, 300));
        store.apply(batch).ok();
        assert_eq!(store.prekey_ids().ok(), Some(vec![7, 8]));
        assert_eq!(
            store.prekey(8).ok().flatten().map(|b| b.to_vec()),
            Some(record(8, 300))
        );

        // The same id now fits a slot, and the other one no longer does: one copy each.
        let mut batch = StoreBatch::new();
        batch
            .put_prekey(8, record(9, 20))
            .put_prekey(7, record(7, 76));
        store.apply(batch).ok();
        assert_eq!(store.prekey_ids().ok(), Some(vec![7, 8]));
        assert_eq!(
            store.prekey(8).ok().flatten().map(|b| b.to_vec()),
            Some(record(9, 20))
        );
        assert_eq!(
            store.prekey(7).ok().flatten().map(|b| b.to_vec()),
            Some(record(7, 76))
        );
    }

    #[test]
    fn a_batch_of_812_prekeys_takes_one_slot_buffer_of_exactly_its_size() {
        let store = MemoryStore::new();
        let mut batch = StoreBatch::new();
        for id in 1..=812 {
            batch.put_prekey(id, record(id, 72));
        }
        store.apply(batch).ok();
        let inner = store.read();
        assert_eq!(inner.prekeys.data.capacity(), 812 * SLOT);
        assert!(inner.map.is_empty());
    }

    #[test]
    fn using_up_most_prekeys_gives_the_memory_back() {
        let store = MemoryStore::new();
        let mut batch = StoreBatch::new();
        for id in 1..=812 {
            batch.put_prekey(id, record(id, 72));
        }
        store.apply(batch).ok();
        for id in 1..=800 {
            let mut batch = StoreBatch::new();
            batch.delete_prekey(id);
            store.apply(batch).ok();
        }
        assert_eq!(store.prekey_ids().ok().map(|v| v.len()), Some(12));
        assert!(store.read().prekeys.data.capacity() < 812 * SLOT / 4);
        assert_eq!(
            store.prekey(812).ok().flatten().map(|b| b.to_vec()),
            Some(record(812, 72))
        );
    }
}
