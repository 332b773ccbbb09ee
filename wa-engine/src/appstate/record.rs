//! How app-state sync keys and collection states are stored (values of
//! `StoreBatch::put_app_state_sync_key` and `put_app_state_collection`). Our own formats,
//! each starting with a version byte so a later layout can be told apart.

use std::collections::BTreeMap;
use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::crypto::MAC_LEN;
use super::lthash::{LTHASH_LEN, LtHash};
use super::state::CollectionState;

/// Version byte of [`StoredSyncKey::to_bytes`].
const KEY_VERSION: u8 = 1;
/// Version byte of [`CollectionState::to_bytes`].
const STATE_VERSION: u8 = 1;

/// Why a stored app-state record cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The first byte names a layout this build does not know.
    #[error("stored app-state record has unknown version {0}")]
    UnknownVersion(u8),
    /// The bytes end early or have trailing garbage.
    #[error("stored app-state record is malformed")]
    Malformed,
}

/// One app-state sync key as the primary shared it (`AppStateSyncKeyData`, 08 §2.1).
///
/// Stored as `01 ‖ timestamp_ms (i64 BE) ‖ len (u16 BE) ‖ keyData ‖ fingerprint` where
/// `fingerprint` is the `AppStateSyncKeyFingerprint` protobuf bytes (possibly empty), kept
/// because whatsmeow stores it too, though nothing reads it yet. Secret: `Debug` is redacted
/// and the key bytes are zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct StoredSyncKey {
    /// `keyData`: the secret the mutation keys expand from.
    pub key_data: Vec<u8>,
    /// `timestamp`, unix ms (0 if the share had none).
    pub timestamp_ms: i64,
    /// The `AppStateSyncKeyFingerprint` protobuf bytes, empty if absent.
    pub fingerprint: Vec<u8>,
}

impl fmt::Debug for StoredSyncKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSyncKey")
            .field("timestamp_ms", &self.timestamp_ms)
            .finish_non_exhaustive()
    }
}

impl StoredSyncKey {
    /// The stored bytes (see the type's documentation). Key data longer than 65 535 bytes is
    /// cut there (no source has keys over 32 bytes).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let data = &self.key_data[..self.key_data.len().min(usize::from(u16::MAX))];
        let mut out = Vec::with_capacity(11 + data.len() + self.fingerprint.len());
        out.push(KEY_VERSION);
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(&self.fingerprint);
        out
    }

    /// Reads bytes written by [`Self::to_bytes`].
    ///
    /// # Errors
    /// [`RecordError`] for another version or truncated bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let (&version, rest) = bytes.split_first().ok_or(RecordError::Malformed)?;
        if version != KEY_VERSION {
            return Err(RecordError::UnknownVersion(version));
        }
        let ts: [u8; 8] = rest
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or(RecordError::Malformed)?;
        let len: [u8; 2] = rest
            .get(8..10)
            .and_then(|b| b.try_into().ok())
            .ok_or(RecordError::Malformed)?;
        let len = usize::from(u16::from_be_bytes(len));
        let key_data = rest.get(10..10 + len).ok_or(RecordError::Malformed)?;
        Ok(Self {
            key_data: key_data.to_vec(),
            timestamp_ms: i64::from_be_bytes(ts),
            fingerprint: rest[10 + len..].to_vec(),
        })
    }
}

impl CollectionState {
    /// The stored bytes: `01 ‖ version (u64 BE) ‖ LTHash (128) ‖ count (u32 BE) ‖
    /// (indexMac ‖ valueMac) × count` (32-byte MACs, ascending by index MAC).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 8 + LTHASH_LEN + 4 + self.index_value_macs.len() * 64);
        out.push(STATE_VERSION);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(self.lthash.as_bytes());
        out.extend_from_slice(&(self.index_value_macs.len() as u32).to_be_bytes());
        for (index, value) in &self.index_value_macs {
            out.extend_from_slice(index);
            out.extend_from_slice(value);
        }
        out
    }

    /// Reads bytes written by [`Self::to_bytes`].
    ///
    /// # Errors
    /// [`RecordError`] for another version, truncated bytes or trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let (&v, rest) = bytes.split_first().ok_or(RecordError::Malformed)?;
        if v != STATE_VERSION {
            return Err(RecordError::UnknownVersion(v));
        }
        let version: [u8; 8] = rest
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or(RecordError::Malformed)?;
        let lthash: [u8; LTHASH_LEN] = rest
            .get(8..8 + LTHASH_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(RecordError::Malformed)?;
        let at = 8 + LTHASH_LEN;
        let count: [u8; 4] = rest
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .ok_or(RecordError::Malformed)?;
        let count = u32::from_be_bytes(count) as usize;
        let body = &rest[at + 4..];
        if body.len()
            != count
                .checked_mul(2 * MAC_LEN)
                .ok_or(RecordError::Malformed)?
        {
            return Err(RecordError::Malformed);
        }
        let mut map = BTreeMap::new();
        for pair in body.chunks_exact(2 * MAC_LEN) {
            let mut index = [0; MAC_LEN];
            let mut value = [0; MAC_LEN];
            index.copy_from_slice(&pair[..MAC_LEN]);
            value.copy_from_slice(&pair[MAC_LEN..]);
            map.insert(index, value);
        }
        Ok(Self {
            version: u64::from_be_bytes(version),
            lthash: LtHash::from_bytes(lthash),
            index_value_macs: map,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_key_round_trips_and_rejects_garbage() {
        let key = StoredSyncKey {
            key_data: vec![9; 32],
            timestamp_ms: 1_700_000_000_123,
            fingerprint: vec![8, 1, 16, 2],
        };
        let bytes = key.to_bytes();
        assert_eq!(StoredSyncKey::from_bytes(&bytes), Ok(key));
        assert_eq!(
            StoredSyncKey::from_bytes(&bytes[..12]),
            Err(RecordError::Malformed)
        );
        assert_eq!(
            StoredSyncKey::from_bytes(&[2, 0]),
            Err(RecordError::UnknownVersion(2))
        );
    }

    #[test]
    fn collection_state_round_trips_and_rejects_trailing_bytes() {
        let mut state = CollectionState::new();
        state.version = 7;
        state.lthash.add(&[1; 32]);
        state.index_value_macs.insert([2; 32], [1; 32]);
        state.index_value_macs.insert([3; 32], [4; 32]);
        let mut bytes = state.to_bytes();
        assert_eq!(CollectionState::from_bytes(&bytes), Ok(state));
        bytes.push(0);
        assert_eq!(
            CollectionState::from_bytes(&bytes),
            Err(RecordError::Malformed)
        );
    }
}
