//! One record, decoded or encoded: value MAC, decryption, index MAC and the JSON index
//! (shared/protocol/08 §6.2; whatsmeow `appstate/decode.go` decodeMutations,
//! `appstate/encode.go` EncodePatch; Baileys `chat-utils` decodeSyncdMutations).

use prost::Message as _;
use subtle::ConstantTimeEq;
use wa_proto::wa::{
    KeyId, SyncActionData, SyncActionValue, SyncdIndex, SyncdMutation, SyncdRecord, SyncdValue,
    syncd_mutation::SyncdOperation,
};

use super::crypto::{self, IV_LEN, MAC_LEN};
use super::keys::{KeySource, MutationKeys};
use super::{AppStateError, Collection};

/// SET (add or overwrite a record) or REMOVE (delete it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `SyncdOperation.SET` (0); snapshot records are implicit SETs.
    Set,
    /// `SyncdOperation.REMOVE` (1).
    Remove,
}

impl Operation {
    /// The byte that starts the value-MAC input: the protobuf value + 1 (1 = SET, 2 = REMOVE).
    #[must_use]
    pub fn mac_byte(self) -> u8 {
        match self {
            Self::Set => 1,
            Self::Remove => 2,
        }
    }

    /// From the `SyncdMutation.operation` field (absent = SET, as proto2's default;
    /// unknown values are treated as SET by prost's `operation()` too).
    #[must_use]
    pub fn from_proto(mutation: &SyncdMutation) -> Self {
        match mutation.operation() {
            SyncdOperation::Set => Self::Set,
            SyncdOperation::Remove => Self::Remove,
        }
    }

    fn to_proto(self) -> SyncdOperation {
        match self {
            Self::Set => SyncdOperation::Set,
            Self::Remove => SyncdOperation::Remove,
        }
    }
}

/// One decoded and verified app-state mutation.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    /// The collection it belongs to.
    pub collection: Collection,
    /// SET or REMOVE.
    pub operation: Operation,
    /// The index, e.g. `["mute", "15551234567@s.whatsapp.net"]`: `index[0]` names the action
    /// (shared/protocol/08 §7), the rest are its arguments (JIDs as strings).
    pub index: Vec<String>,
    /// The value: `timestamp` (ms) plus one action field. Unknown actions come through with
    /// no known field set; they are applied to the LTHash like any other.
    pub action: SyncActionValue,
    /// `SyncActionData.version`: the action's schema version.
    pub action_version: i32,
    /// The collection version of the snapshot or patch that carried the mutation.
    pub version: u64,
    /// The record's index MAC (the key of the live record).
    pub index_mac: [u8; MAC_LEN],
    /// The record's value MAC.
    pub value_mac: [u8; MAC_LEN],
    /// Id of the sync key the record was encrypted with.
    pub key_id: Vec<u8>,
}

/// A record's MACs and key id, read without any key (enough for the LTHash and patch MAC).
#[derive(Debug, Clone)]
pub(super) struct RecordMacs {
    pub(super) index_mac: [u8; MAC_LEN],
    pub(super) value_mac: [u8; MAC_LEN],
    pub(super) key_id: Vec<u8>,
}

pub(super) fn record_macs(record: &SyncdRecord) -> Result<RecordMacs, AppStateError> {
    let index = record
        .index
        .as_ref()
        .and_then(|i| i.blob.as_deref())
        .ok_or(AppStateError::MissingField("SyncdRecord.index"))?;
    let index_mac: [u8; MAC_LEN] = index
        .try_into()
        .map_err(|_| AppStateError::BadIndexMacLength { len: index.len() })?;
    let blob = record
        .value
        .as_ref()
        .and_then(|v| v.blob.as_deref())
        .ok_or(AppStateError::MissingField("SyncdRecord.value"))?;
    if blob.len() < IV_LEN + 16 + MAC_LEN {
        return Err(AppStateError::ValueBlobTooShort { len: blob.len() });
    }
    let mut value_mac = [0_u8; MAC_LEN];
    value_mac.copy_from_slice(&blob[blob.len() - MAC_LEN..]);
    let key_id = record
        .key_id
        .as_ref()
        .and_then(|k| k.id.clone())
        .ok_or(AppStateError::MissingField("SyncdRecord.keyId"))?;
    Ok(RecordMacs {
        index_mac,
        value_mac,
        key_id,
    })
}

/// Verifies and decrypts one record: value MAC, decryption, `SyncActionData`, index MAC, JSON
/// index, in whatsmeow's order. `version` is the collection version it arrived with.
///
/// # Errors
/// [`AppStateError::MissingKey`] if the record's key is unknown; otherwise the variant of the
/// check that failed.
pub fn decode_record(
    collection: Collection,
    operation: Operation,
    record: &SyncdRecord,
    version: u64,
    keys: &dyn KeySource,
) -> Result<Mutation, AppStateError> {
    let macs = record_macs(record)?;
    let mutation_keys =
        keys.mutation_keys(&macs.key_id)
            .ok_or_else(|| AppStateError::MissingKey {
                key_id: macs.key_id.clone(),
            })?;
    let blob = record
        .value
        .as_ref()
        .and_then(|v| v.blob.as_deref())
        .ok_or(AppStateError::MissingField("SyncdRecord.value"))?;
    let enc = &blob[..blob.len() - MAC_LEN];
    let expected = crypto::value_mac(&mutation_keys.value_mac, operation, &macs.key_id, enc);
    if !bool::from(expected.ct_eq(&macs.value_mac)) {
        return Err(AppStateError::ValueMacMismatch);
    }
    let plaintext =
        zeroize::Zeroizing::new(crypto::decrypt_value(&mutation_keys.value_encryption, enc)?);
    let data =
        SyncActionData::decode(plaintext.as_slice()).map_err(|source| AppStateError::Protobuf {
            what: "SyncActionData",
            source,
        })?;
    let index_json = data
        .index
        .as_deref()
        .ok_or(AppStateError::MissingField("SyncActionData.index"))?;
    let expected_index = crypto::index_mac(&mutation_keys.index, index_json);
    if !bool::from(expected_index.ct_eq(&macs.index_mac)) {
        return Err(AppStateError::IndexMacMismatch);
    }
    let index: Vec<String> = serde_json::from_slice(index_json).map_err(AppStateError::BadIndex)?;
    Ok(Mutation {
        collection,
        operation,
        index,
        action: data.value.unwrap_or_default(),
        action_version: data.version.unwrap_or(0),
        version,
        index_mac: macs.index_mac,
        value_mac: macs.value_mac,
        key_id: macs.key_id,
    })
}

/// A mutation we want to send (our own patch): what [`encode_record`] encrypts.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMutation {
    /// The collection the index belongs to (shared/protocol/08 §7).
    pub collection: Collection,
    /// SET or REMOVE.
    pub operation: Operation,
    /// The index, serialised as compact JSON (`["mute","…"]`).
    pub index: Vec<String>,
    /// The value (timestamp in ms plus the action).
    pub value: SyncActionValue,
    /// The action's schema version (`SyncActionData.version`).
    pub action_version: i32,
}

impl NewMutation {
    /// The exact index bytes that are MACed: a JSON array of strings without whitespace.
    #[must_use]
    pub fn index_json(&self) -> Vec<u8> {
        // Serialising a Vec<String> cannot fail.
        serde_json::to_vec(&self.index).unwrap_or_else(|_| unreachable!("strings serialise"))
    }

    /// The `SyncActionData` plaintext: index, value, empty padding (as whatsmeow and
    /// Baileys write it, `1a 00`) and the action version.
    #[must_use]
    pub fn action_data(&self) -> SyncActionData {
        SyncActionData {
            index: Some(self.index_json()),
            value: Some(self.value.clone()),
            padding: Some(Vec::new()),
            version: Some(self.action_version),
        }
    }
}

/// One encrypted record with its MACs.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedRecord {
    /// The `SyncdMutation` (operation + record) as it goes into a patch.
    pub mutation: SyncdMutation,
    /// The record's index MAC.
    pub index_mac: [u8; MAC_LEN],
    /// The record's value MAC.
    pub value_mac: [u8; MAC_LEN],
}

/// Encrypts one mutation under `keys` (named `key_id`) with the caller's random `iv`.
#[must_use]
pub fn encode_record(
    mutation: &NewMutation,
    key_id: &[u8],
    keys: &MutationKeys,
    iv: &[u8; IV_LEN],
) -> EncodedRecord {
    let index_json = mutation.index_json();
    let plaintext = zeroize::Zeroizing::new(mutation.action_data().encode_to_vec());
    let mut blob = crypto::encrypt_value(&keys.value_encryption, iv, &plaintext);
    let value_mac = crypto::value_mac(&keys.value_mac, mutation.operation, key_id, &blob);
    blob.extend_from_slice(&value_mac);
    let index_mac = crypto::index_mac(&keys.index, &index_json);
    EncodedRecord {
        mutation: SyncdMutation {
            operation: Some(mutation.operation.to_proto() as i32),
            record: Some(SyncdRecord {
                index: Some(SyncdIndex {
                    blob: Some(index_mac.to_vec()),
                }),
                value: Some(SyncdValue { blob: Some(blob) }),
                key_id: Some(KeyId {
                    id: Some(key_id.to_vec()),
                }),
            }),
        },
        index_mac,
        value_mac,
    }
}
