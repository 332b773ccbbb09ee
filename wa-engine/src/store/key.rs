//! The byte layout of store keys, shared by every backend.
//!
//! Every key starts with a one-byte concern tag, so one ordered keyspace holds all
//! concerns and a prefix scan lists one concern (or one user within it). Strings are
//! length-prefixed (u32 big-endian), so the encoding is injective whatever bytes a
//! name holds, and `prefix(name)` never matches a longer or shorter name.
//! Integers are big-endian, so a scan returns ids in ascending order.
//!
//! This layout is part of the on-disk format: changing it needs a new
//! [`SCHEMA_VERSION`](super::SCHEMA_VERSION).

use super::{ProtocolAddress, SenderKeyName, StoreError};

/// The schema-version key (sled only): `00 "schema"`, value = u32 big-endian.
/// It must never move: it is how a future build recognises an old store.
#[cfg_attr(not(feature = "sled"), allow(dead_code))]
pub(crate) const SCHEMA: &[u8] = b"\x00schema";

/// The commit sequence key (sled only): `00 "seq"`, value = u64 big-endian, advanced
/// by every batch and mirrored in the seal file (`store/seal.rs`).
#[cfg_attr(not(feature = "sled"), allow(dead_code))]
pub(crate) const SEQ: &[u8] = b"\x00seq";

const CREDENTIALS: u8 = 0x01;
const IDENTITY: u8 = 0x02;
const SESSION: u8 = 0x03;
const PREKEY: u8 = 0x04;
const PREKEY_COUNTERS: u8 = 0x05;
const SIGNED_PREKEY: u8 = 0x06;
const SENDER_KEY: u8 = 0x07;
const APP: u8 = 0x08;
const LID_BY_PN: u8 = 0x09;
const PN_BY_LID: u8 = 0x0a;
const APP_STATE_SYNC_KEY: u8 = 0x0b;
const APP_STATE_COLLECTION: u8 = 0x0c;
const TC_TOKEN: u8 = 0x0d;
const NCT_SALT: u8 = 0x0e;

fn push_str(out: &mut Vec<u8>, s: &[u8]) {
    // A name longer than 4 GiB cannot be built in practice; saturating keeps the
    // function total (such a key would still be unique through its bytes).
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s);
}

fn address(tag: u8, a: &ProtocolAddress) -> Vec<u8> {
    let mut k = name_prefix(tag, &a.name);
    k.extend_from_slice(&a.device_id.to_be_bytes());
    k
}

fn name_prefix(tag: u8, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + 4 + name.len() + 4);
    k.push(tag);
    push_str(&mut k, name.as_bytes());
    k
}

fn id(tag: u8, id: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(5);
    k.push(tag);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// Key of the device credentials record.
pub(crate) fn credentials() -> Vec<u8> {
    vec![CREDENTIALS]
}

/// Key of the prekey counters record.
pub(crate) fn prekey_counters() -> Vec<u8> {
    vec![PREKEY_COUNTERS]
}

/// Key of a remote identity.
pub(crate) fn identity(a: &ProtocolAddress) -> Vec<u8> {
    address(IDENTITY, a)
}

/// Prefix of all identities of one address name.
pub(crate) fn identity_prefix(name: &str) -> Vec<u8> {
    name_prefix(IDENTITY, name)
}

/// Key of a Signal session.
pub(crate) fn session(a: &ProtocolAddress) -> Vec<u8> {
    address(SESSION, a)
}

/// Prefix of all sessions of one address name.
pub(crate) fn session_prefix(name: &str) -> Vec<u8> {
    name_prefix(SESSION, name)
}

/// Key of a one-time prekey.
pub(crate) fn prekey(prekey_id: u32) -> Vec<u8> {
    id(PREKEY, prekey_id)
}

/// Prefix of all one-time prekeys.
pub(crate) fn prekey_prefix() -> Vec<u8> {
    vec![PREKEY]
}

/// The id of a one-time prekey key (the inverse of [`prekey`]); `None` for any other key.
pub(crate) fn prekey_id_of(key: &[u8]) -> Option<u32> {
    match key {
        [PREKEY, a, b, c, d] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// Key of a signed prekey.
pub(crate) fn signed_prekey(prekey_id: u32) -> Vec<u8> {
    id(SIGNED_PREKEY, prekey_id)
}

/// Prefix of all signed prekeys.
pub(crate) fn signed_prekey_prefix() -> Vec<u8> {
    vec![SIGNED_PREKEY]
}

/// Key of a sender key record.
pub(crate) fn sender_key(n: &SenderKeyName) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + 4 + n.group.len() + 4 + n.sender.name.len() + 4);
    k.push(SENDER_KEY);
    push_str(&mut k, n.group.as_bytes());
    push_str(&mut k, n.sender.name.as_bytes());
    k.extend_from_slice(&n.sender.device_id.to_be_bytes());
    k
}

/// Prefix of all values in one app namespace.
pub(crate) fn app_prefix(namespace: &str) -> Vec<u8> {
    name_prefix(APP, namespace)
}

/// Key of one app value.
pub(crate) fn app(namespace: &str, key: &[u8]) -> Vec<u8> {
    let mut k = app_prefix(namespace);
    k.extend_from_slice(key);
    k
}

/// Key of the LID user mapped to a PN user.
pub(crate) fn lid_by_pn(pn_user: &str) -> Vec<u8> {
    name_prefix(LID_BY_PN, pn_user)
}

/// Key of the PN user mapped to a LID user.
pub(crate) fn pn_by_lid(lid_user: &str) -> Vec<u8> {
    name_prefix(PN_BY_LID, lid_user)
}

/// Key of one app-state sync key (by its opaque key id).
pub(crate) fn app_state_sync_key(key_id: &[u8]) -> Vec<u8> {
    let mut k = vec![APP_STATE_SYNC_KEY];
    k.extend_from_slice(key_id);
    k
}

/// Prefix of all app-state sync keys.
pub(crate) fn app_state_sync_key_prefix() -> Vec<u8> {
    vec![APP_STATE_SYNC_KEY]
}

/// Key of one app-state collection's state.
pub(crate) fn app_state_collection(name: &str) -> Vec<u8> {
    name_prefix(APP_STATE_COLLECTION, name)
}

/// Key of the tctoken record of one peer (a user JID string).
pub(crate) fn tc_token(jid: &str) -> Vec<u8> {
    name_prefix(TC_TOKEN, jid)
}

/// Prefix of all tctoken records.
pub(crate) fn tc_token_prefix() -> Vec<u8> {
    vec![TC_TOKEN]
}

/// Reads the length-prefixed name after a one-byte tag (the inverse of `name_prefix`).
pub(crate) fn name_of(key: &[u8], what: &'static str) -> Result<String, StoreError> {
    let corrupt = || StoreError::Corrupt { what };
    let rest = key.get(1..).ok_or_else(corrupt)?;
    let (len, name) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
    if usize::try_from(u32::from_be_bytes(*len)).ok() != Some(name.len()) {
        return Err(corrupt());
    }
    String::from_utf8(name.to_vec()).map_err(|_| corrupt())
}

/// Key of the account's NCT salt.
pub(crate) fn nct_salt() -> Vec<u8> {
    vec![NCT_SALT]
}

/// Reads the trailing big-endian u32 of keys found under `prefix`, where each key is
/// exactly `prefix || u32`. Anything else under the prefix means a damaged keyspace.
pub(crate) fn trailing_ids(
    prefix: &[u8],
    keys: impl IntoIterator<Item = impl AsRef<[u8]>>,
    what: &'static str,
) -> Result<Vec<u32>, StoreError> {
    keys.into_iter()
        .map(|k| {
            let rest = k
                .as_ref()
                .strip_prefix(prefix)
                .ok_or(StoreError::Corrupt { what })?;
            let bytes: [u8; 4] = rest.try_into().map_err(|_| StoreError::Corrupt { what })?;
            Ok(u32::from_be_bytes(bytes))
        })
        .collect()
}

/// Strips `prefix` from each key (app namespace listing).
pub(crate) fn strip_prefix(
    prefix: &[u8],
    keys: impl IntoIterator<Item = impl AsRef<[u8]>>,
) -> Result<Vec<Vec<u8>>, StoreError> {
    keys.into_iter()
        .map(|k| {
            k.as_ref()
                .strip_prefix(prefix)
                .map(<[u8]>::to_vec)
                .ok_or(StoreError::Corrupt { what: "app key" })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn addr(name: &str, device_id: u32) -> ProtocolAddress {
        ProtocolAddress::new(name, device_id)
    }

    proptest! {
        #[test]
        fn distinct_addresses_get_distinct_keys(
            a in ".{0,12}", da in any::<u32>(), b in ".{0,12}", db in any::<u32>()
        ) {
            let (x, y) = (addr(&a, da), addr(&b, db));
            prop_assert_eq!(x == y, session(&x) == session(&y));
            prop_assert_ne!(session(&x), identity(&x));
        }

        #[test]
        fn name_prefix_matches_only_that_name(a in ".{0,12}", b in ".{0,12}", d in any::<u32>()) {
            let k = session(&addr(&b, d));
            prop_assert_eq!(k.starts_with(&session_prefix(&a)), a == b);
        }

        #[test]
        fn sender_key_names_do_not_collide(
            g1 in ".{0,8}", n1 in ".{0,8}", g2 in ".{0,8}", n2 in ".{0,8}", d in any::<u32>()
        ) {
            let x = SenderKeyName::new(g1.clone(), addr(&n1, d));
            let y = SenderKeyName::new(g2.clone(), addr(&n2, d));
            prop_assert_eq!(x == y, sender_key(&x) == sender_key(&y));
        }
    }

    #[test]
    fn ids_scan_in_ascending_order() {
        let mut keys = [prekey(300), prekey(2), prekey(70_000)];
        keys.sort();
        let ids = trailing_ids(&prekey_prefix(), &keys, "prekey key").ok();
        assert_eq!(ids, Some(vec![2, 300, 70_000]));
    }

    #[test]
    fn malformed_key_under_prefix_is_corrupt() {
        let bad = [vec![PREKEY, 1, 2]];
        assert!(matches!(
            trailing_ids(&prekey_prefix(), &bad, "prekey key"),
            Err(StoreError::Corrupt { what: "prekey key" })
        ));
    }
}
