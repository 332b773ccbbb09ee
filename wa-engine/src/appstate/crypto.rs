//! The MACs and the value cipher of app state, byte for byte (shared/protocol/08 §6.2, §6.4;
//! whatsmeow `appstate/hash.go` generateContentMAC/generateSnapshotMAC/generatePatchMAC,
//! `appstate/encode.go`).

use aes::Aes256;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Sha256, Sha512};

use super::lthash::LtHash;
use super::{AppStateError, Operation};

/// Length of a value MAC and of an index MAC, bytes.
pub const MAC_LEN: usize = 32;
/// Length of the random IV that starts every encrypted value, bytes.
pub const IV_LEN: usize = 16;

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// `valueMac = HMAC-SHA512(valueMacKey, op_byte ‖ keyId ‖ enc ‖ u64be(len(keyId) + 1))[0..32]`
/// where `enc` = IV ‖ ciphertext and `op_byte` = 1 for SET, 2 for REMOVE.
#[must_use]
pub fn value_mac(
    value_mac_key: &[u8; 32],
    operation: Operation,
    key_id: &[u8],
    enc: &[u8],
) -> [u8; 32] {
    let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(value_mac_key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(&[operation.mac_byte()]);
    mac.update(key_id);
    mac.update(enc);
    mac.update(&(key_id.len() as u64 + 1).to_be_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0_u8; 32];
    out.copy_from_slice(&full[..32]);
    out
}

/// `indexMac = HMAC-SHA256(indexKey, index_json)`.
#[must_use]
pub fn index_mac(index_key: &[u8; 32], index_json: &[u8]) -> [u8; 32] {
    hmac_sha256(index_key, &[index_json])
}

/// `snapshotMac = HMAC-SHA256(snapshotMacKey, lthash ‖ u64be(version) ‖ collection name)`.
#[must_use]
pub fn snapshot_mac(
    snapshot_mac_key: &[u8; 32],
    lthash: &LtHash,
    version: u64,
    collection: &str,
) -> [u8; 32] {
    hmac_sha256(
        snapshot_mac_key,
        &[
            lthash.as_bytes(),
            &version.to_be_bytes(),
            collection.as_bytes(),
        ],
    )
}

/// `patchMac = HMAC-SHA256(patchMacKey, snapshotMac ‖ valueMac_1 ‖ … ‖ valueMac_n ‖
/// u64be(version) ‖ collection name)`, value MACs in mutation order, REMOVEs included.
#[must_use]
pub fn patch_mac<'a>(
    patch_mac_key: &[u8; 32],
    snapshot_mac: &[u8],
    value_macs: impl IntoIterator<Item = &'a [u8]>,
    version: u64,
    collection: &str,
) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(patch_mac_key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(snapshot_mac);
    for value_mac in value_macs {
        mac.update(value_mac);
    }
    mac.update(&version.to_be_bytes());
    mac.update(collection.as_bytes());
    mac.finalize().into_bytes().into()
}

/// `enc = IV ‖ AES-256-CBC-PKCS7(valueEncryptionKey, IV, plaintext)`.
#[must_use]
pub fn encrypt_value(
    value_encryption_key: &[u8; 32],
    iv: &[u8; IV_LEN],
    plaintext: &[u8],
) -> Vec<u8> {
    let ciphertext = cbc::Encryptor::<Aes256>::new(value_encryption_key.into(), iv.into())
        .encrypt_padded_vec::<Pkcs7>(plaintext);
    let mut enc = Vec::with_capacity(IV_LEN + ciphertext.len());
    enc.extend_from_slice(iv);
    enc.extend_from_slice(&ciphertext);
    enc
}

/// Decrypts `enc` = IV ‖ ciphertext. Call only after the value MAC verified.
///
/// # Errors
/// [`AppStateError::ValueBlobTooShort`] without IV and one block, [`AppStateError::BadPadding`]
/// for a ciphertext that is not whole blocks or has malformed padding.
pub fn decrypt_value(
    value_encryption_key: &[u8; 32],
    enc: &[u8],
) -> Result<Vec<u8>, AppStateError> {
    if enc.len() < IV_LEN + 16 {
        return Err(AppStateError::ValueBlobTooShort {
            len: enc.len() + MAC_LEN,
        });
    }
    let (iv, ciphertext) = enc.split_at(IV_LEN);
    if !ciphertext.len().is_multiple_of(16) {
        return Err(AppStateError::BadPadding);
    }
    let iv: &[u8; IV_LEN] = iv.try_into().map_err(|_| AppStateError::BadPadding)?;
    cbc::Decryptor::<Aes256>::new(value_encryption_key.into(), iv.into())
        .decrypt_padded_vec::<Pkcs7>(ciphertext)
        .map_err(|_| AppStateError::BadPadding)
}
