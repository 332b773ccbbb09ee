//! Per-collection state and the verified application of snapshots and patches
//! (shared/protocol/08 §6.3–§6.6; whatsmeow `appstate/decode.go` DecodePatches/validatePatch,
//! `appstate/hash.go` updateHash).

use std::collections::{BTreeMap, HashMap};

use subtle::ConstantTimeEq;
use wa_proto::wa::{KeyId, SyncdMutation, SyncdPatch, SyncdSnapshot};

use super::crypto::{self, IV_LEN, MAC_LEN};
use super::keys::{KeySource, MutationKeys};
use super::lthash::LtHash;
use super::mutation::{self, Mutation, NewMutation, Operation, record_macs};
use super::{AppStateError, Collection};

/// What a client keeps per collection: its version, LTHash and the value MAC of every live
/// record by index MAC (whatsmeow `HashState` + stored MACs; Baileys
/// `app-state-sync-version`). Persist all three; the records themselves are not needed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectionState {
    /// The collection version (0 = never synced).
    pub version: u64,
    /// The LTHash of the live value MACs.
    pub lthash: LtHash,
    /// Live records: index MAC → value MAC.
    pub index_value_macs: BTreeMap<[u8; MAC_LEN], [u8; MAC_LEN]>,
}

/// Our own patch, ready to upload, and the state the collection will have once the server
/// accepts it.
#[derive(Debug, Clone)]
pub struct OutgoingPatch {
    /// The collection.
    pub collection: Collection,
    /// The local version the patch builds on (the `version` attribute of the send IQ).
    pub base_version: u64,
    /// The patch, without `version` (the server assigns `base_version + 1`).
    pub patch: SyncdPatch,
    /// The local state after the patch (version `base_version + 1`); adopt it when the server
    /// accepts the patch, drop it on a 409 conflict.
    pub state_after: CollectionState,
}

/// Changes to the live map while a patch is checked, committed only when every check passed.
struct Overlay<'a> {
    base: &'a BTreeMap<[u8; MAC_LEN], [u8; MAC_LEN]>,
    changes: HashMap<[u8; MAC_LEN], Option<[u8; MAC_LEN]>>,
    lthash: LtHash,
}

impl<'a> Overlay<'a> {
    fn new(state: &'a CollectionState) -> Self {
        Self {
            base: &state.index_value_macs,
            changes: HashMap::new(),
            lthash: state.lthash.clone(),
        }
    }

    fn current(&self, index_mac: &[u8; MAC_LEN]) -> Option<[u8; MAC_LEN]> {
        match self.changes.get(index_mac) {
            Some(v) => *v,
            None => self.base.get(index_mac).copied(),
        }
    }

    /// shared/protocol/08 §6.3: subtract the previous value MAC of the index if any; SET adds
    /// the new one, REMOVE forgets the index. A REMOVE of an unknown index is ignored, as
    /// whatsmeow does (it warns; Baileys 7 skips; Baileys 6 throws).
    fn apply(&mut self, operation: Operation, index_mac: [u8; MAC_LEN], value_mac: [u8; MAC_LEN]) {
        if let Some(previous) = self.current(&index_mac) {
            self.lthash.subtract(&previous);
        }
        match operation {
            Operation::Set => {
                self.lthash.add(&value_mac);
                self.changes.insert(index_mac, Some(value_mac));
            }
            Operation::Remove => {
                self.changes.insert(index_mac, None);
            }
        }
    }

    /// Ends the overlay: its LTHash and the changes to the live map.
    fn into_parts(self) -> (LtHash, HashMap<[u8; MAC_LEN], Option<[u8; MAC_LEN]>>) {
        (self.lthash, self.changes)
    }
}

impl CollectionState {
    /// Adopts a verified overlay's result in place (no copy of the live map).
    fn commit(
        &mut self,
        version: u64,
        (lthash, changes): (LtHash, HashMap<[u8; MAC_LEN], Option<[u8; MAC_LEN]>>),
    ) {
        for (index, value) in changes {
            match value {
                Some(v) => self.index_value_macs.insert(index, v),
                None => self.index_value_macs.remove(&index),
            };
        }
        self.lthash = lthash;
        self.version = version;
    }
}

fn key_id_of(key_id: Option<&KeyId>, what: &'static str) -> Result<Vec<u8>, AppStateError> {
    key_id
        .and_then(|k| k.id.clone())
        .ok_or(AppStateError::MissingField(what))
}

fn keys_for(keys: &dyn KeySource, key_id: &[u8]) -> Result<MutationKeys, AppStateError> {
    keys.mutation_keys(key_id)
        .ok_or_else(|| AppStateError::MissingKey {
            key_id: key_id.to_vec(),
        })
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

/// Key ids a snapshot or patch needs that `keys` lacks, without duplicates, in order of first
/// use: one key request can ask for all of them (shared/protocol/08 §2.2).
#[must_use]
pub fn missing_keys<'a>(
    key_ids: impl IntoIterator<Item = &'a [u8]>,
    keys: &dyn KeySource,
) -> Vec<Vec<u8>> {
    let mut missing: Vec<Vec<u8>> = Vec::new();
    for id in key_ids {
        if !missing.iter().any(|m| m == id) && keys.mutation_keys(id).is_none() {
            missing.push(id.to_vec());
        }
    }
    missing
}

/// Every key id a patch names: the patch's own and each record's.
#[must_use]
pub fn patch_key_ids(patch: &SyncdPatch) -> Vec<&[u8]> {
    let mut ids: Vec<&[u8]> = Vec::new();
    if let Some(id) = patch.key_id.as_ref().and_then(|k| k.id.as_deref()) {
        ids.push(id);
    }
    for m in &patch.mutations {
        if let Some(id) = m
            .record
            .as_ref()
            .and_then(|r| r.key_id.as_ref())
            .and_then(|k| k.id.as_deref())
        {
            ids.push(id);
        }
    }
    ids
}

impl CollectionState {
    /// A never-synced collection: version 0, zero LTHash, no records.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the state with a snapshot after verifying it: every record's value MAC,
    /// decryption and index MAC, then the snapshot MAC over the LTHash of all records
    /// (keys of the snapshot's `keyId`). Returns the records as SET mutations.
    ///
    /// The state is replaced only if everything verified; on error it is unchanged.
    ///
    /// # Errors
    /// [`AppStateError::MissingKey`] for an unknown key; [`AppStateError::SnapshotMacMismatch`];
    /// the record errors of [`mutation::decode_record`].
    pub fn apply_snapshot(
        &mut self,
        collection: Collection,
        snapshot: &SyncdSnapshot,
        keys: &dyn KeySource,
    ) -> Result<Vec<Mutation>, AppStateError> {
        let version = snapshot
            .version
            .as_ref()
            .and_then(|v| v.version)
            .ok_or(AppStateError::MissingField("SyncdSnapshot.version"))?;
        let key_id = key_id_of(snapshot.key_id.as_ref(), "SyncdSnapshot.keyId")?;
        let snapshot_keys = keys_for(keys, &key_id)?;

        let mut lthash = LtHash::default();
        let mut map = BTreeMap::new();
        let mut mutations = Vec::with_capacity(snapshot.records.len());
        for record in &snapshot.records {
            let m = mutation::decode_record(collection, Operation::Set, record, version, keys)?;
            lthash.add(&m.value_mac);
            map.insert(m.index_mac, m.value_mac);
            mutations.push(m);
        }
        let expected = crypto::snapshot_mac(
            &snapshot_keys.snapshot_mac,
            &lthash,
            version,
            collection.as_str(),
        );
        let mac = snapshot
            .mac
            .as_deref()
            .ok_or(AppStateError::MissingField("SyncdSnapshot.mac"))?;
        if !ct_eq(&expected, mac) {
            return Err(AppStateError::SnapshotMacMismatch);
        }
        *self = Self {
            version,
            lthash,
            index_value_macs: map,
        };
        Ok(mutations)
    }

    /// Applies one patch after verifying it: the patch MAC, then the LTHash after its
    /// mutations against `snapshotMac` (both with the keys of the patch's `keyId`), then every
    /// record (keys of the record's own `keyId`). Returns the decoded mutations in order.
    ///
    /// `external` holds the downloaded `SyncdMutations` when the patch has
    /// `externalMutations` (they replace the inline ones, as in whatsmeow); see
    /// [`decode_external_mutations`](super::decode_external_mutations).
    ///
    /// The state changes only if everything verified; on error it is unchanged and the caller
    /// should resync the collection from a snapshot.
    ///
    /// # Errors
    /// [`AppStateError::StalePatch`] if the patch is not newer than the state;
    /// [`AppStateError::MissingKey`]; [`AppStateError::ExternalMutationsMissing`];
    /// [`AppStateError::PatchMacMismatch`]; [`AppStateError::LtHashMismatch`]; the record
    /// errors of [`mutation::decode_record`].
    pub fn apply_patch(
        &mut self,
        collection: Collection,
        patch: &SyncdPatch,
        external: Option<&[SyncdMutation]>,
        keys: &dyn KeySource,
    ) -> Result<Vec<Mutation>, AppStateError> {
        let version = patch
            .version
            .as_ref()
            .and_then(|v| v.version)
            .ok_or(AppStateError::MissingField("SyncdPatch.version"))?;
        if version <= self.version {
            return Err(AppStateError::StalePatch {
                patch_version: version,
                local_version: self.version,
            });
        }
        let mutations: &[SyncdMutation] = match (&patch.external_mutations, external) {
            (Some(_), Some(ext)) => ext,
            (Some(_), None) => return Err(AppStateError::ExternalMutationsMissing { version }),
            (None, _) => &patch.mutations,
        };
        let key_id = key_id_of(patch.key_id.as_ref(), "SyncdPatch.keyId")?;
        let patch_keys = keys_for(keys, &key_id)?;
        let mut macs = Vec::with_capacity(mutations.len());
        for m in mutations {
            let record = m
                .record
                .as_ref()
                .ok_or(AppStateError::MissingField("SyncdMutation.record"))?;
            macs.push((Operation::from_proto(m), record_macs(record)?));
        }
        // Every key is looked up before any MAC, so a missing key is reported as such.
        if let Some(missing) = missing_keys(macs.iter().map(|(_, r)| r.key_id.as_slice()), keys)
            .into_iter()
            .next()
        {
            return Err(AppStateError::MissingKey { key_id: missing });
        }

        let snapshot_mac = patch
            .snapshot_mac
            .as_deref()
            .ok_or(AppStateError::MissingField("SyncdPatch.snapshotMac"))?;
        let expected_patch_mac = crypto::patch_mac(
            &patch_keys.patch_mac,
            snapshot_mac,
            macs.iter().map(|(_, r)| r.value_mac.as_slice()),
            version,
            collection.as_str(),
        );
        let patch_mac = patch
            .patch_mac
            .as_deref()
            .ok_or(AppStateError::MissingField("SyncdPatch.patchMac"))?;
        if !ct_eq(&expected_patch_mac, patch_mac) {
            return Err(AppStateError::PatchMacMismatch { version });
        }

        let mut overlay = Overlay::new(self);
        for (operation, r) in &macs {
            overlay.apply(*operation, r.index_mac, r.value_mac);
        }
        let expected_snapshot_mac = crypto::snapshot_mac(
            &patch_keys.snapshot_mac,
            &overlay.lthash,
            version,
            collection.as_str(),
        );
        if !ct_eq(&expected_snapshot_mac, snapshot_mac) {
            return Err(AppStateError::LtHashMismatch { version });
        }

        let mut decoded = Vec::with_capacity(mutations.len());
        for (m, (operation, _)) in mutations.iter().zip(&macs) {
            let record = m
                .record
                .as_ref()
                .ok_or(AppStateError::MissingField("SyncdMutation.record"))?;
            decoded.push(mutation::decode_record(
                collection, *operation, record, version, keys,
            )?);
        }
        let parts = overlay.into_parts();
        self.commit(version, parts);
        Ok(decoded)
    }

    /// Builds our own patch on top of this state: encrypts each mutation under the key
    /// `key_id` (whatsmeow and Baileys use the latest shared key), updates a copy of the
    /// LTHash, and computes snapshot and patch MAC for version `self.version + 1`. `iv`
    /// supplies one random 16-byte IV per mutation (fill it from a CSPRNG; tests fix it).
    ///
    /// The result decodes with [`Self::apply_patch`] (and in whatsmeow and Baileys) once the
    /// server has set its version. `self` is not changed: adopt
    /// [`OutgoingPatch::state_after`] after the server accepted the patch.
    ///
    /// # Errors
    /// [`AppStateError::MissingKey`] if `key_id` is unknown.
    pub fn encode_patch(
        &self,
        collection: Collection,
        key_id: &[u8],
        keys: &dyn KeySource,
        mutations: &[NewMutation],
        iv: &mut dyn FnMut() -> [u8; IV_LEN],
    ) -> Result<OutgoingPatch, AppStateError> {
        let patch_keys = keys_for(keys, key_id)?;
        let version = self.version + 1;
        let mut overlay = Overlay::new(self);
        let mut records = Vec::with_capacity(mutations.len());
        for m in mutations {
            let encoded = mutation::encode_record(m, key_id, &patch_keys, &iv());
            overlay.apply(m.operation, encoded.index_mac, encoded.value_mac);
            records.push(encoded);
        }
        let snapshot_mac = crypto::snapshot_mac(
            &patch_keys.snapshot_mac,
            &overlay.lthash,
            version,
            collection.as_str(),
        );
        let parts = overlay.into_parts();
        let mut state_after = self.clone();
        state_after.commit(version, parts);
        let patch_mac = crypto::patch_mac(
            &patch_keys.patch_mac,
            &snapshot_mac,
            records.iter().map(|r| r.value_mac.as_slice()),
            version,
            collection.as_str(),
        );
        let patch = SyncdPatch {
            mutations: records.into_iter().map(|r| r.mutation).collect(),
            snapshot_mac: Some(snapshot_mac.to_vec()),
            patch_mac: Some(patch_mac.to_vec()),
            key_id: Some(KeyId {
                id: Some(key_id.to_vec()),
            }),
            ..SyncdPatch::default()
        };
        Ok(OutgoingPatch {
            collection,
            base_version: self.version,
            patch,
            state_after,
        })
    }
}
