//! The primitives the Signal layer combines: HKDF-SHA256, HMAC-SHA256 and
//! AES-256-CBC with PKCS#7 (shared/protocol/04-signal.md §1), all from RustCrypto.

use aes::Aes256;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::error::MessageDefect;

/// "salt = none" in libsignal's HKDF calls: 32 zero bytes (04 §1; identical to an
/// absent salt for HMAC-SHA256).
const ZERO_SALT: [u8; 32] = [0; 32];

/// `HKDF-SHA256(ikm, salt, info)` expanded to `N` bytes, zeroized on drop.
/// `salt = None` means 32 zero bytes.
pub(crate) fn hkdf<const N: usize>(
    ikm: &[u8],
    salt: Option<&[u8]>,
    info: &[u8],
) -> Zeroizing<[u8; N]> {
    let hk = Hkdf::<Sha256>::new(Some(salt.unwrap_or(&ZERO_SALT)), ikm);
    let mut okm = Zeroizing::new([0_u8; N]);
    // N is at most 96 in this module, far below HKDF's 255 × 32 limit.
    if hk.expand(info, okm.as_mut()).is_err() {
        unreachable!("HKDF output length {N} is within 255 * 32");
    }
    okm
}

/// `HMAC-SHA256(key, parts[0] ‖ parts[1] ‖ …)`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// AES-256-CBC encryption with PKCS#7 padding.
pub(crate) fn aes_cbc_encrypt(key: &[u8; 32], iv: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
    cbc::Encryptor::<Aes256>::new(key.into(), iv.into()).encrypt_padded_vec::<Pkcs7>(plaintext)
}

/// AES-256-CBC decryption, removing PKCS#7 padding.
///
/// # Errors
/// [`MessageDefect::BadPadding`] if the length is not a positive multiple of 16 or the
/// padding is malformed.
pub(crate) fn aes_cbc_decrypt(
    key: &[u8; 32],
    iv: &[u8; 16],
    ciphertext: &[u8],
) -> Result<Vec<u8>, MessageDefect> {
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(16) {
        return Err(MessageDefect::BadPadding);
    }
    cbc::Decryptor::<Aes256>::new(key.into(), iv.into())
        .decrypt_padded_vec::<Pkcs7>(ciphertext)
        .map_err(|_| MessageDefect::BadPadding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbc_round_trips_and_rejects_bad_padding() {
        let (key, iv) = ([3_u8; 32], [4_u8; 16]);
        for len in [0, 1, 15, 16, 17, 300] {
            let pt = vec![0x61_u8; len];
            let ct = aes_cbc_encrypt(&key, &iv, &pt);
            assert_eq!(ct.len(), (len / 16 + 1) * 16);
            assert_eq!(aes_cbc_decrypt(&key, &iv, &ct), Ok(pt));
        }
        assert_eq!(
            aes_cbc_decrypt(&key, &iv, &[0; 15]),
            Err(MessageDefect::BadPadding)
        );
        assert_eq!(
            aes_cbc_decrypt(&key, &iv, &[]),
            Err(MessageDefect::BadPadding)
        );
    }
}
