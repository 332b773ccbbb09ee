//! App-state sync keys and their expansion into the five mutation keys
//! (shared/protocol/08 §2, §6.1; whatsmeow `appstate/keys.go` expandAppStateKeys).

use std::collections::HashMap;
use std::fmt;

use hkdf::Hkdf;
use sha2::Sha256;
use wa_proto::wa::message::AppStateSyncKeyShare;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// HKDF info of the key expansion.
const INFO: &[u8] = b"WhatsApp Mutation Keys";
/// Length of the expansion: five 32-byte keys.
pub const EXPANDED_LEN: usize = 160;

/// The five keys one app-state sync key expands to:
/// `HKDF-SHA256(ikm = keyData, salt = none, info = "WhatsApp Mutation Keys", L = 160)` split
/// into 32-byte slices in this order.
///
/// Secret: `Debug` is redacted and the bytes are zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MutationKeys {
    /// Bytes 0..32: HMAC-SHA256 key of index MACs.
    pub index: [u8; 32],
    /// Bytes 32..64: AES-256-CBC key of values.
    pub value_encryption: [u8; 32],
    /// Bytes 64..96: HMAC-SHA512 key of value MACs.
    pub value_mac: [u8; 32],
    /// Bytes 96..128: HMAC-SHA256 key of snapshot MACs.
    pub snapshot_mac: [u8; 32],
    /// Bytes 128..160: HMAC-SHA256 key of patch MACs.
    pub patch_mac: [u8; 32],
}

impl MutationKeys {
    /// Expands `key_data` (the `AppStateSyncKeyData.keyData` bytes; any length is accepted,
    /// 32 in every source's tests).
    #[must_use]
    pub fn expand(key_data: &[u8]) -> Self {
        let mut okm = [0_u8; EXPANDED_LEN];
        if Hkdf::<Sha256>::new(None, key_data)
            .expand(INFO, &mut okm)
            .is_err()
        {
            unreachable!("HKDF-SHA256 expands 160 bytes");
        }
        let mut keys = Self {
            index: [0; 32],
            value_encryption: [0; 32],
            value_mac: [0; 32],
            snapshot_mac: [0; 32],
            patch_mac: [0; 32],
        };
        keys.index.copy_from_slice(&okm[..32]);
        keys.value_encryption.copy_from_slice(&okm[32..64]);
        keys.value_mac.copy_from_slice(&okm[64..96]);
        keys.snapshot_mac.copy_from_slice(&okm[96..128]);
        keys.patch_mac.copy_from_slice(&okm[128..]);
        okm.zeroize();
        keys
    }
}

impl fmt::Debug for MutationKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MutationKeys(..)")
    }
}

/// Where the decoder finds the keys of a key id. Implemented by [`KeyRing`]; a store-backed
/// implementation can expand keys on demand.
pub trait KeySource {
    /// The expanded keys of `key_id`, or `None` if that key was never shared with us (the
    /// decoder then fails with [`AppStateError::MissingKey`](super::AppStateError::MissingKey)).
    fn mutation_keys(&self, key_id: &[u8]) -> Option<MutationKeys>;
}

/// App-state sync keys in memory, by key id, already expanded.
#[derive(Default, Clone)]
pub struct KeyRing {
    keys: HashMap<Vec<u8>, MutationKeys>,
    /// The key for our own patches: (timestamp ms, key id) of the newest shared key.
    latest: Option<(i64, Vec<u8>)>,
}

impl KeyRing {
    /// An empty ring.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the key `key_id` with secret `key_data`, shared at `timestamp_ms`
    /// (`AppStateSyncKeyData.timestamp`; use 0 if unknown). The newest key, ties going to the
    /// one added last, becomes [`Self::latest_key_id`].
    pub fn insert(&mut self, key_id: impl Into<Vec<u8>>, key_data: &[u8]) {
        self.insert_at(key_id, key_data, 0);
    }

    /// [`Self::insert`] with the key's timestamp (unix ms).
    pub fn insert_at(&mut self, key_id: impl Into<Vec<u8>>, key_data: &[u8], timestamp_ms: i64) {
        let key_id = key_id.into();
        if self.latest.as_ref().is_none_or(|(t, _)| timestamp_ms >= *t) {
            self.latest = Some((timestamp_ms, key_id.clone()));
        }
        self.keys.insert(key_id, MutationKeys::expand(key_data));
    }

    /// The key id our own patches use: the newest shared key (whatsmeow
    /// `GetLatestAppStateSyncKeyID`; Baileys keeps the last key of the last share, the same
    /// key when the phone shares in timestamp order). Companions never create keys.
    #[must_use]
    pub fn latest_key_id(&self) -> Option<&[u8]> {
        self.latest.as_ref().map(|(_, id)| id.as_slice())
    }

    /// Adds every key of an `APP_STATE_SYNC_KEY_SHARE` (keys without id or data are skipped)
    /// and returns how many were added. Accept a share only from our own primary
    /// (shared/protocol/08 §2.2); that check belongs to the caller.
    pub fn insert_share(&mut self, share: &AppStateSyncKeyShare) -> usize {
        let mut added = 0;
        for key in &share.keys {
            let id = key.key_id.as_ref().and_then(|k| k.key_id.as_deref());
            let data = key.key_data.as_ref().and_then(|d| d.key_data.as_deref());
            let timestamp = key.key_data.as_ref().and_then(|d| d.timestamp).unwrap_or(0);
            if let (Some(id), Some(data)) = (id, data) {
                self.insert_at(id.to_vec(), data, timestamp);
                added += 1;
            }
        }
        added
    }

    /// Whether `key_id` is known.
    #[must_use]
    pub fn contains(&self, key_id: &[u8]) -> bool {
        self.keys.contains_key(key_id)
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the ring holds no key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl KeySource for KeyRing {
    fn mutation_keys(&self, key_id: &[u8]) -> Option<MutationKeys> {
        self.keys.get(key_id).cloned()
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// The `APP_STATE_SYNC_KEY_REQUEST` peer message asking our primary phone for missing keys
/// (shared/protocol/08 §2.2; whatsmeow `requestMissingAppStateKeys`): send it to our own user
/// as a peer message; the phone answers with a key share. whatsmeow asks at most once per key
/// per 24 h.
#[must_use]
pub fn key_request(key_ids: &[Vec<u8>]) -> wa_proto::wa::Message {
    use wa_proto::wa::message::{
        AppStateSyncKeyId, AppStateSyncKeyRequest, ProtocolMessage, protocol_message,
    };
    wa_proto::wa::Message {
        protocol_message: Some(Box::new(ProtocolMessage {
            r#type: Some(protocol_message::Type::AppStateSyncKeyRequest as i32),
            app_state_sync_key_request: Some(AppStateSyncKeyRequest {
                key_ids: key_ids
                    .iter()
                    .map(|id| AppStateSyncKeyId {
                        key_id: Some(id.clone()),
                    })
                    .collect(),
            }),
            ..ProtocolMessage::default()
        })),
        ..wa_proto::wa::Message::default()
    }
}
