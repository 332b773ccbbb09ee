//! LID addressing inside the connection (shared/protocol/07 §1): the PN ⇄ LID map fed from
//! every source, Signal addresses keyed by LID, and the move of a PN session to its LID
//! address.
//!
//! The map lives in the store only (`Store::lid_for_pn` / `pn_for_lid`,
//! `StoreBatch::put_lid_mapping`); there is no second in-memory copy to keep consistent.
//! Writers add the mapping to the batch of the work that learned it ([`learn`]).
//!
//! Sessions (07 §1.3): whenever the engine is about to use the Signal address of a
//! phone-number device whose account LID is known, it uses the LID address
//! (`<lid>_1:<device>`) instead, after moving any session and identity stored under the PN
//! address there ([`migrate`]). This is whatsmeow's rule (`send.go` encryptMessageForDevices
//! → migrateSessionStore, `message.go` decryptMessages; `store/sqlstore` MigratePNToLID):
//! copy, then delete the PN rows, never overwriting a LID session that already exists (its
//! ratchet is the newer one), so a ratchet never goes back. Baileys does the same in its key
//! store (`libsignal.ts` resolveLIDSignalAddress), whatsapp-rust in resolve_encryption_jid.
//! Group sender keys keep the name they were distributed under (the group's addressing).

use crate::Jid;
use crate::store::{Credentials, ProtocolAddress, Store, StoreBatch, StoreError};

/// Which namespace a 1:1 stanza (`to` and every `<participants><to jid>`, own devices
/// included) uses on the wire (07 §1.4). Sessions are keyed by LID in every mode (07 §1.3).
///
/// The sources disagree (07 §1.4): whatsmeow since 2026-07-13 (commit 4f8f64e0) always sends
/// DMs to the LID; whatsapp-rust follows the account's 1:1 LID-migration state (pair-success
/// `client-props.isChatDbLidMigrated`, or the AB prop 9435) and reports that the server
/// 400-nacks a LID stanza from an unmigrated account. We follow whatsapp-rust by default
/// ([`LidWire::Auto`]), of which whatsmeow's rule is the always-migrated case
/// ([`LidWire::Always`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LidWire {
    /// LID on the wire when the account is 1:1-LID-migrated (pair-success client-props,
    /// stored at pairing) and the recipient's LID is known; otherwise the PN.
    #[default]
    Auto,
    /// LID whenever the recipient's LID is known (whatsmeow ≥ 2026-07-13).
    Always,
    /// Always the namespace the caller addressed (no redirection; LID sessions still).
    Never,
}

/// App-value namespace and key of the account's 1:1 LID-migration flag (one byte, 1 = set),
/// written at pairing from `ClientPairingProps.isChatDbLidMigrated` (07 §1.2).
pub(crate) const NS: &str = "wa.lid";
/// See [`NS`].
pub(crate) const MIGRATED_KEY: &[u8] = b"chat_db_migrated";

/// Whether the stored account is 1:1-LID-migrated.
pub(crate) fn account_migrated(store: &dyn Store) -> bool {
    matches!(store.app_value(NS, MIGRATED_KEY), Ok(Some(v)) if v.as_bytes() == [1])
}

/// `isChatDbLidMigrated` (field 1) of a pair-success `<client-props>` payload
/// (`ClientPairingProps`, 07 §1.2); `false` when absent or unreadable.
pub(crate) fn client_props_migrated(bytes: &[u8]) -> bool {
    use prost::Message as _;
    wa_proto::wa::ClientPairingProps::decode(bytes)
        .ok()
        .and_then(|p| p.is_chat_db_lid_migrated)
        .unwrap_or(false)
}

/// The (PN user, LID user) pair named by two JIDs of one account, in either order; `None`
/// unless one is a phone number and the other a LID, both with a user part.
pub(crate) fn pair_of(a: &Jid, b: &Jid) -> Option<(String, String)> {
    let (pn, lid) = if a.is_pn() && b.is_lid() {
        (a, b)
    } else if a.is_lid() && b.is_pn() {
        (b, a)
    } else {
        return None;
    };
    if pn.user().is_empty() || lid.user().is_empty() {
        return None;
    }
    Some((pn.user().to_owned(), lid.user().to_owned()))
}

/// Adds the mapping between `a` and `b` (a PN and a LID of one account, either order,
/// devices ignored) to `batch` unless the store already holds exactly it. A PN or LID that
/// was mapped to something else loses that mapping in the same batch (whatsmeow `PutLIDMapping`
/// replaces; the newest source wins). Returns whether the batch changed.
///
/// # Errors
/// A store read failure.
pub(crate) fn learn(
    store: &dyn Store,
    batch: &mut StoreBatch,
    a: &Jid,
    b: &Jid,
) -> Result<bool, StoreError> {
    let Some((pn, lid)) = pair_of(a, b) else {
        return Ok(false);
    };
    let old_lid = store.lid_for_pn(&pn)?;
    let old_pn = store.pn_for_lid(&lid)?;
    if old_lid.as_deref() == Some(lid.as_str()) && old_pn.as_deref() == Some(pn.as_str()) {
        return Ok(false);
    }
    if let Some(old) = old_lid.filter(|l| *l != lid) {
        batch.delete_lid_mapping(&pn, &old);
    }
    if let Some(old) = old_pn.filter(|p| *p != pn) {
        batch.delete_lid_mapping(&old, &lid);
    }
    batch.put_lid_mapping(&pn, &lid);
    tracing::debug!("lid: learned a PN/LID mapping");
    Ok(true)
}

/// The account LID (no device) of a phone-number JID, from the store; `None` for other
/// JIDs or when unknown (a read failure is logged and counts as unknown).
pub(crate) fn lid_of(store: &dyn Store, jid: &Jid) -> Option<Jid> {
    if !jid.is_pn() || jid.user().is_empty() {
        return None;
    }
    match store.lid_for_pn(jid.user()) {
        Ok(lid) => lid.map(Jid::lid),
        Err(e) => {
            tracing::warn!(error = %e, "lid: cannot read the LID map");
            None
        }
    }
}

/// The phone-number user JID (no device) of a LID, from the store; `None` for other JIDs or
/// when unknown.
pub(crate) fn pn_of(store: &dyn Store, jid: &Jid) -> Option<Jid> {
    if !jid.is_lid() || jid.user().is_empty() {
        return None;
    }
    match store.pn_for_lid(jid.user()) {
        Ok(pn) => pn.map(Jid::pn),
        Err(e) => {
            tracing::warn!(error = %e, "lid: cannot read the LID map");
            None
        }
    }
}

/// The same account in the other namespace (PN → LID, LID → PN), no device; `None` when
/// unknown or not a user JID.
pub(crate) fn twin(store: &dyn Store, jid: &Jid) -> Option<Jid> {
    lid_of(store, jid).or_else(|| pn_of(store, jid))
}

/// `jid` (a device or user) moved to the LID namespace when its LID is known, keeping the
/// device; otherwise `jid` unchanged.
pub(crate) fn to_lid_device(store: &dyn Store, jid: &Jid) -> Jid {
    match lid_of(store, jid) {
        Some(lid) => with_device_of(&lid, jid),
        None => jid.clone(),
    }
}

/// `jid` moved to the PN namespace when its PN is known, keeping the device.
pub(crate) fn to_pn_device(store: &dyn Store, jid: &Jid) -> Jid {
    match pn_of(store, jid) {
        Some(pn) => with_device_of(&pn, jid),
        None => jid.clone(),
    }
}

/// `user` with the device part of `device` (none for device 0, 05 §1).
pub(crate) fn with_device_of(user: &Jid, device: &Jid) -> Jid {
    crate::usync::device_jid(user, device.device())
}

/// Moves every session and identity key stored under the PN user `pn_user` to the LID user
/// `lid_user` (all devices), into `batch`: a LID record that already exists is kept and the
/// PN one dropped (never regress a ratchet), otherwise the PN record is copied; the PN rows
/// are deleted either way. Returns the PN addresses that held a session (to drop from
/// caches) and the LID addresses that now hold one.
///
/// # Errors
/// A store read failure.
pub(crate) fn migrate(
    store: &dyn Store,
    batch: &mut StoreBatch,
    pn_user: &str,
    lid_user: &str,
) -> Result<(Vec<ProtocolAddress>, Vec<ProtocolAddress>), StoreError> {
    let lid_name = format!("{lid_user}_1");
    let mut moved_from = Vec::new();
    let mut moved_to = Vec::new();
    for device in store.session_devices(pn_user)? {
        let from = ProtocolAddress::new(pn_user, device);
        let to = ProtocolAddress::new(lid_name.clone(), device);
        if let Some(record) = store.session(&from)? {
            if store.session(&to)?.is_none() {
                batch.put_session(&to, record);
            }
            moved_to.push(to);
        }
        batch.delete_session(&from);
        moved_from.push(from);
    }
    for device in store.identity_devices(pn_user)? {
        let from = ProtocolAddress::new(pn_user, device);
        let to = ProtocolAddress::new(lid_name.clone(), device);
        if let Some(key) = store.identity(&from)?
            && store.identity(&to)?.is_none()
        {
            batch.put_identity(&to, key);
        }
        batch.delete_identity(&from);
    }
    if !moved_from.is_empty() {
        tracing::debug!(
            sessions = moved_from.len(),
            "lid: moved PN sessions to the LID address"
        );
    }
    Ok((moved_from, moved_to))
}

/// The own account's PN ⇄ LID pair from the credentials (`id` and `lid`, AD JID strings).
pub(crate) fn own_pair(creds: Option<&Credentials>) -> Option<(Jid, Jid)> {
    let creds = creds?;
    let pn: Jid = creds.id.as_deref()?.parse().ok()?;
    let lid: Jid = creds.lid.as_deref()?.parse().ok()?;
    (pn.is_pn() && lid.is_lid()).then(|| (pn.to_non_ad(), lid.to_non_ad()))
}

/// Our own account in the other namespace (no device) when `jid` is our own PN or LID user,
/// from the credentials (pair-success `<device jid lid>`, `<success lid>`; 07 §1.2). The own
/// pair is not written to the map of peers: the credentials are its one source, and a
/// peer's digits may equal ours in the other namespace (07 §1.1).
pub(crate) fn own_twin(creds: Option<&Credentials>, jid: &Jid) -> Option<Jid> {
    let (pn, lid) = own_pair(creds)?;
    if jid.same_user(&pn) {
        Some(lid)
    } else if jid.same_user(&lid) {
        Some(pn)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    #[test]
    fn learn_writes_both_directions_once_and_replaces_a_stale_twin() {
        let store = MemoryStore::new();
        let pn = Jid::pn("15550001111").with_device(3);
        let lid = Jid::lid("900000000000001");
        let mut batch = StoreBatch::new();
        assert!(learn(&store, &mut batch, &lid, &pn).unwrap());
        store.apply(batch).unwrap();
        assert_eq!(lid_of(&store, &pn), Some(lid.clone()));
        assert_eq!(pn_of(&store, &lid), Some(pn.to_non_ad()));
        let mut batch = StoreBatch::new();
        assert!(!learn(&store, &mut batch, &pn, &lid).unwrap());
        assert!(batch.is_empty());
        // Same digits in both namespaces, or two PNs: no mapping.
        assert!(!learn(&store, &mut batch, &pn, &Jid::pn("1")).unwrap());
        // A new LID for the same PN replaces the old one in both directions.
        let newer = Jid::lid("900000000000002");
        let mut batch = StoreBatch::new();
        assert!(learn(&store, &mut batch, &pn, &newer).unwrap());
        store.apply(batch).unwrap();
        assert_eq!(lid_of(&store, &pn), Some(newer));
        assert_eq!(pn_of(&store, &lid), None);
    }

    #[test]
    fn migration_flag_comes_from_client_props_and_the_store() {
        use prost::Message as _;
        let props = wa_proto::wa::ClientPairingProps {
            is_chat_db_lid_migrated: Some(true),
            ..Default::default()
        };
        assert!(client_props_migrated(&props.encode_to_vec()));
        assert!(!client_props_migrated(
            &wa_proto::wa::ClientPairingProps::default().encode_to_vec()
        ));
        assert!(!client_props_migrated(&[0xff, 0xff]));
        let store = MemoryStore::new();
        assert!(!account_migrated(&store));
        let mut batch = StoreBatch::new();
        batch.put_app_value(NS, MIGRATED_KEY, vec![1]);
        store.apply(batch).unwrap();
        assert!(account_migrated(&store));
    }

    #[test]
    fn migrate_moves_without_overwriting_an_existing_lid_session() {
        let store = MemoryStore::new();
        let mut batch = StoreBatch::new();
        batch
            .put_session(&ProtocolAddress::new("1555", 0), b"pn0".to_vec())
            .put_session(&ProtocolAddress::new("1555", 2), b"pn2".to_vec())
            .put_session(&ProtocolAddress::new("777_1", 2), b"lid2".to_vec())
            .put_identity(&ProtocolAddress::new("1555", 0), b"id0".to_vec());
        store.apply(batch).unwrap();
        let mut batch = StoreBatch::new();
        let (from, to) = migrate(&store, &mut batch, "1555", "777").unwrap();
        store.apply(batch).unwrap();
        assert_eq!(from.len(), 2);
        assert_eq!(to.len(), 2);
        assert!(store.session_devices("1555").unwrap().is_empty());
        assert!(store.identity_devices("1555").unwrap().is_empty());
        let get = |d| {
            store
                .session(&ProtocolAddress::new("777_1", d))
                .unwrap()
                .map(|b| b.as_bytes().to_vec())
        };
        assert_eq!(get(0), Some(b"pn0".to_vec()));
        assert_eq!(get(2), Some(b"lid2".to_vec()), "the LID ratchet is kept");
        assert!(
            store
                .identity(&ProtocolAddress::new("777_1", 0))
                .unwrap()
                .is_some()
        );
    }
}
