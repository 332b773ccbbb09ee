//! Tampered, truncated, padded-wrong or mis-announced enc files give typed errors, and
//! `decrypt` never hands out their plaintext.

use std::io::Write;

use aes::cipher::{BlockModeEncrypt, KeyIvInit};
use hmac::{KeyInit, Mac};
use proptest::prelude::*;
use wa_engine::media::{
    DecryptingWriter, Decryptor, Expected, HashKind, MediaError, MediaKey, MediaType, decrypt,
    encrypt,
};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn key() -> MediaKey {
    MediaKey::from_bytes([0x42; 32])
}

fn sample() -> (Vec<u8>, Expected) {
    let plaintext: Vec<u8> = (0..1000_u32).map(|i| (i % 256) as u8).collect();
    let (enc_file, media) = encrypt(key(), MediaType::Image, &plaintext);
    (enc_file, Expected::from(&media))
}

/// An enc file whose MAC is valid over an arbitrary ciphertext, to reach the checks
/// after the MAC. `blocks` is encrypted raw (no padding added); `extra` is appended
/// unencrypted, to make the ciphertext misaligned.
fn forge(blocks: &[u8], extra: &[u8]) -> Vec<u8> {
    let keys = key().expand(MediaType::Image);
    let mut ciphertext = blocks.to_vec();
    let (chunks, tail) = aes::Block::slice_as_chunks_mut(&mut ciphertext);
    assert!(tail.is_empty());
    cbc::Encryptor::<aes::Aes256>::new(keys.cipher_key().into(), keys.iv().into())
        .encrypt_blocks(chunks);
    ciphertext.extend_from_slice(extra);
    let mut hmac = <HmacSha256 as KeyInit>::new_from_slice(keys.mac_key()).unwrap();
    hmac.update(keys.iv());
    hmac.update(&ciphertext);
    let tag = hmac.finalize().into_bytes();
    ciphertext.extend_from_slice(&tag[..10]);
    ciphertext
}

#[test]
fn untouched_sample_verifies() {
    let (enc_file, expected) = sample();
    assert_eq!(
        decrypt(&key(), MediaType::Image, &enc_file, expected)
            .unwrap()
            .len(),
        1000
    );
}

proptest! {
    #[test]
    fn any_flipped_ciphertext_bit_is_a_mac_mismatch(pos in 0_usize..1008, bit in 0_u8..8) {
        let (mut enc_file, expected) = sample();
        enc_file[pos] ^= 1 << bit;
        let err = decrypt(&key(), MediaType::Image, &enc_file, Expected::default()).unwrap_err();
        prop_assert!(matches!(err, MediaError::MacMismatch), "{err:?}");
        // With the announced hash, the enc hash is checked first.
        let err = decrypt(&key(), MediaType::Image, &enc_file, expected).unwrap_err();
        prop_assert!(
            matches!(err, MediaError::HashMismatch { which: HashKind::FileEncSha256 }),
            "{err:?}"
        );
    }

    #[test]
    fn any_flipped_mac_bit_is_a_mac_mismatch(pos in 0_usize..10, bit in 0_u8..8) {
        let (mut enc_file, _) = sample();
        let at = enc_file.len() - 10 + pos;
        enc_file[at] ^= 1 << bit;
        let err = decrypt(&key(), MediaType::Image, &enc_file, Expected::default()).unwrap_err();
        prop_assert!(matches!(err, MediaError::MacMismatch), "{err:?}");
    }

    #[test]
    fn any_cut_is_rejected(keep in 0_usize..1018) {
        let (enc_file, expected) = sample();
        let cut = &enc_file[..keep];
        let err = decrypt(&key(), MediaType::Image, cut, Expected::default()).unwrap_err();
        if keep < 26 {
            prop_assert!(matches!(err, MediaError::Truncated { len } if len == keep as u64), "{err:?}");
        } else {
            prop_assert!(matches!(err, MediaError::MacMismatch), "{err:?}");
        }
        let err = decrypt(&key(), MediaType::Image, cut, expected).unwrap_err();
        prop_assert!(
            matches!(err, MediaError::Truncated { .. } | MediaError::HashMismatch { which: HashKind::FileEncSha256 }),
            "{err:?}"
        );
    }
}

#[test]
fn empty_and_mac_only_inputs_are_truncated() {
    for len in [0, 1, 10, 25] {
        let err =
            decrypt(&key(), MediaType::Image, &vec![0; len], Expected::default()).unwrap_err();
        assert!(
            matches!(err, MediaError::Truncated { len: l } if l == len as u64),
            "{err:?}"
        );
    }
}

#[test]
fn wrong_media_type_or_key_is_a_mac_mismatch() {
    let (enc_file, _) = sample();
    let err = decrypt(&key(), MediaType::Video, &enc_file, Expected::default()).unwrap_err();
    assert!(matches!(err, MediaError::MacMismatch));
    let other = MediaKey::from_bytes([0x43; 32]);
    let err = decrypt(&other, MediaType::Image, &enc_file, Expected::default()).unwrap_err();
    assert!(matches!(err, MediaError::MacMismatch));
}

#[test]
fn trailing_garbage_is_a_mac_mismatch_or_too_long() {
    let (mut enc_file, expected) = sample();
    enc_file.push(0);
    let err = decrypt(&key(), MediaType::Image, &enc_file, Expected::default()).unwrap_err();
    assert!(matches!(err, MediaError::MacMismatch), "{err:?}");
    let err = decrypt(&key(), MediaType::Image, &enc_file, expected).unwrap_err();
    // 1000 bytes pad to 1008, + 10 MAC = 1018 allowed.
    assert!(
        matches!(err, MediaError::TooLong { limit: 1018 }),
        "{err:?}"
    );
}

#[test]
fn a_decryptor_stops_taking_bytes_past_the_announced_length_and_stays_failed() {
    let (enc_file, expected) = sample();
    let mut decryptor = Decryptor::new(&key(), MediaType::Image, expected);
    let mut out = Vec::new();
    decryptor.update(&enc_file, &mut out).unwrap();
    let err = decryptor.update(&[0], &mut out).unwrap_err();
    assert!(matches!(err, MediaError::TooLong { limit: 1018 }));
    let err = decryptor.update(&[], &mut out).unwrap_err();
    assert!(matches!(err, MediaError::Poisoned));
    let err = decryptor.finish(&mut out).unwrap_err();
    assert!(matches!(err, MediaError::Poisoned));
}

#[test]
fn wrong_announced_plaintext_hash_or_length_is_reported() {
    let (enc_file, expected) = sample();
    let mut wrong_hash = expected;
    wrong_hash.file_sha256 = Some([0; 32]);
    let err = decrypt(&key(), MediaType::Image, &enc_file, wrong_hash).unwrap_err();
    assert!(matches!(
        err,
        MediaError::HashMismatch {
            which: HashKind::FileSha256
        }
    ));
    assert_eq!(err.to_string(), "fileSha256 mismatch");

    let mut wrong_len = expected;
    wrong_len.file_length = Some(1001);
    let err = decrypt(&key(), MediaType::Image, &enc_file, wrong_len).unwrap_err();
    assert!(matches!(
        err,
        MediaError::LengthMismatch {
            expected: 1001,
            actual: 1000
        }
    ));

    let mut wrong_enc = expected;
    wrong_enc.file_enc_sha256 = Some([0; 32]);
    let err = decrypt(&key(), MediaType::Image, &enc_file, wrong_enc).unwrap_err();
    assert!(matches!(
        err,
        MediaError::HashMismatch {
            which: HashKind::FileEncSha256
        }
    ));
}

#[test]
fn bad_padding_behind_a_valid_mac_is_bad_padding() {
    let mut block = [b'x'; 16];
    for last in [0_u8, 17, 255] {
        block[15] = last;
        let enc_file = forge(&block, &[]);
        let err = decrypt(&key(), MediaType::Image, &enc_file, Expected::default()).unwrap_err();
        assert!(
            matches!(err, MediaError::BadPadding),
            "pad byte {last}: {err:?}"
        );
    }
    // Pad length 3 but the bytes before the last are not all 3.
    let mut block = [3_u8; 16];
    block[13] = 4;
    let err = decrypt(
        &key(),
        MediaType::Image,
        &forge(&block, &[]),
        Expected::default(),
    )
    .unwrap_err();
    assert!(matches!(err, MediaError::BadPadding), "{err:?}");
    // A full block of padding (value 16) is valid: empty plaintext.
    let plaintext = decrypt(
        &key(),
        MediaType::Image,
        &forge(&[16; 16], &[]),
        Expected::default(),
    )
    .unwrap();
    assert!(plaintext.is_empty());
}

#[test]
fn misaligned_ciphertext_behind_a_valid_mac_is_not_block_aligned() {
    for extra in [1_usize, 4, 15] {
        let enc_file = forge(&[1; 16], &vec![7; extra]);
        let err = decrypt(&key(), MediaType::Image, &enc_file, Expected::default()).unwrap_err();
        assert!(
            matches!(err, MediaError::NotBlockAligned),
            "extra {extra}: {err:?}"
        );
    }
}

#[test]
fn key_of_wrong_length_is_rejected() {
    assert!(matches!(
        MediaKey::from_slice(&[0; 31]),
        Err(MediaError::BadKeyLength(31))
    ));
    assert!(matches!(
        MediaKey::from_slice(&[0; 33]),
        Err(MediaError::BadKeyLength(33))
    ));
    assert!(MediaKey::from_slice(&[0; 32]).is_ok());
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let key = MediaKey::from_bytes([0xab; 32]);
    assert_eq!(format!("{key:?}"), "MediaKey(..)");
    assert_eq!(
        format!("{:?}", key.expand(MediaType::Image)),
        "ExpandedMediaKey(..)"
    );
    let (_, media) = encrypt(key, MediaType::Image, b"secret");
    let debug = format!("{media:?}");
    assert!(
        debug.contains("MediaKey(..)") && !debug.contains("171, 171"),
        "{debug}"
    );
}

#[test]
fn decrypting_writer_reports_typed_errors() {
    let (mut enc_file, expected) = sample();
    enc_file[0] ^= 1;
    let mut writer = DecryptingWriter::new(Vec::new(), &key(), MediaType::Image, expected);
    writer.write_all(&enc_file).unwrap();
    let err = writer.finish().unwrap_err();
    assert!(matches!(
        err,
        MediaError::HashMismatch {
            which: HashKind::FileEncSha256
        }
    ));

    let mut writer = DecryptingWriter::new(Vec::new(), &key(), MediaType::Image, expected);
    enc_file.push(0);
    let err = writer.write_all(&enc_file).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<MediaError>());
    assert!(matches!(inner, Some(MediaError::TooLong { .. })), "{err:?}");
}
