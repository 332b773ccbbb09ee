//! Media encryption against shared/vectors/media (Baileys 7.0.0-rc14 `encryptedStream`,
//! cross-checked by Baileys 6.7.24 and node:crypto), plus the inline vector of
//! shared/protocol/06 §2.2. Every case is encrypted and decrypted to the exact bytes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use wa_engine::media::{
    Decryptor, Encryptor, Expected, MediaKey, MediaType, decrypt, encrypt, upload_token,
};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/media")
}

fn read_json<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "media vector file {} is missing or unreadable ({e}); the media tests need shared/vectors/media",
            path.display()
        )
    });
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("media vector file {} is malformed: {e}", path.display()))
}

#[derive(Deserialize)]
struct PlaintextsFile {
    plaintexts: HashMap<String, Plaintext>,
}

#[derive(Deserialize)]
struct Plaintext {
    length: usize,
    sha256: String,
    bytes: String,
}

#[derive(Deserialize)]
struct CaseFile {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    media_type: String,
    hkdf_info: String,
    mms_path: String,
    plaintext: String,
    plaintext_length: usize,
    media_key: String,
    expanded_media_key: String,
    iv: String,
    cipher_key: String,
    mac_key: String,
    ref_key: String,
    ciphertext_length: usize,
    mac: String,
    enc_file: String,
    file_sha256: String,
    file_enc_sha256: String,
    file_length: u64,
    upload_token: String,
}

const CASE_FILES: [&str; 5] = [
    "image.json",
    "video.json",
    "audio.json",
    "document.json",
    "sticker.json",
];

fn plaintexts() -> HashMap<String, Vec<u8>> {
    let file: PlaintextsFile = read_json("plaintexts.json");
    file.plaintexts
        .into_iter()
        .map(|(name, p)| {
            let bytes = hex::decode(&p.bytes).expect("plaintext hex");
            assert_eq!(bytes.len(), p.length, "{name}: length");
            assert_eq!(
                hex::encode(Sha256::digest(&bytes)),
                p.sha256,
                "{name}: sha256"
            );
            (name, bytes)
        })
        .collect()
}

fn all_cases() -> Vec<(String, Case)> {
    let mut cases = Vec::new();
    for file in CASE_FILES {
        let parsed: CaseFile = read_json(file);
        assert_eq!(
            parsed.cases.len(),
            2,
            "{file}: expected the 1 KiB and 100 KiB cases"
        );
        cases.extend(parsed.cases.into_iter().map(|c| (file.to_owned(), c)));
    }
    cases
}

fn arr32(hex_str: &str) -> [u8; 32] {
    hex::decode(hex_str)
        .expect("hex")
        .try_into()
        .expect("32 bytes")
}

fn case_key(case: &Case) -> Result<(MediaKey, MediaType)> {
    let media_type = MediaType::from_name(&case.media_type)
        .with_context(|| format!("unknown media type {}", case.media_type))?;
    let key = MediaKey::from_slice(&hex::decode(&case.media_key)?)?;
    Ok((key, media_type))
}

/// The rule in plaintexts.json: concat(SHA-256("wa-lab-media-v1:plaintext:<tag>#" + i)).
fn regenerate_plaintext(tag: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut i = 0_u64;
    while out.len() < len {
        out.extend_from_slice(&Sha256::digest(format!(
            "wa-lab-media-v1:plaintext:{tag}#{i}"
        )));
        i += 1;
    }
    out.truncate(len);
    out
}

#[test]
fn plaintexts_follow_their_generation_rule() {
    let plaintexts = plaintexts();
    assert_eq!(plaintexts["pt_1k"], regenerate_plaintext("1k", 1024));
    assert_eq!(plaintexts["pt_100k"], regenerate_plaintext("100k", 102_400));
}

#[test]
fn media_types_match_vector_info_and_upload_path() -> Result<()> {
    for (file, case) in all_cases() {
        let (_, media_type) = case_key(&case)?;
        assert_eq!(media_type.hkdf_info(), case.hkdf_info, "{file}");
        assert_eq!(
            media_type.upload_path(),
            Some(case.mms_path.as_str()),
            "{file}"
        );
        assert_eq!(media_type.name(), case.media_type, "{file}");
    }
    Ok(())
}

#[test]
fn media_key_expands_to_vector_iv_cipher_mac_and_ref_keys() -> Result<()> {
    for (file, case) in all_cases() {
        let (key, media_type) = case_key(&case)?;
        let expanded = key.expand(media_type);
        assert_eq!(hex::encode(expanded.iv()), case.iv, "{file}: iv");
        assert_eq!(
            hex::encode(expanded.cipher_key()),
            case.cipher_key,
            "{file}: cipher key"
        );
        assert_eq!(
            hex::encode(expanded.mac_key()),
            case.mac_key,
            "{file}: mac key"
        );
        assert_eq!(
            hex::encode(expanded.ref_key()),
            case.ref_key,
            "{file}: ref key"
        );
        let concatenated = [
            &expanded.iv()[..],
            expanded.cipher_key(),
            expanded.mac_key(),
            expanded.ref_key(),
        ]
        .concat();
        assert_eq!(hex::encode(concatenated), case.expanded_media_key, "{file}");
    }
    Ok(())
}

#[test]
fn encrypts_every_vector_to_the_exact_enc_file_and_hashes() -> Result<()> {
    let plaintexts = plaintexts();
    for (file, case) in all_cases() {
        let (key, media_type) = case_key(&case)?;
        let plaintext = &plaintexts[&case.plaintext];
        assert_eq!(plaintext.len(), case.plaintext_length, "{file}");

        let (enc_file, media) = encrypt(key, media_type, plaintext);
        ensure!(
            hex::encode(&enc_file) == case.enc_file,
            "{file} {}: enc file differs",
            case.plaintext
        );
        assert_eq!(enc_file.len(), case.ciphertext_length + 10, "{file}");
        assert_eq!(hex::encode(media.mac), case.mac, "{file}: mac");
        assert_eq!(hex::encode(media.file_sha256), case.file_sha256, "{file}");
        assert_eq!(
            hex::encode(media.file_enc_sha256),
            case.file_enc_sha256,
            "{file}"
        );
        assert_eq!(media.file_length, case.file_length, "{file}");
        assert_eq!(media.enc_file_length(), enc_file.len() as u64, "{file}");
        assert_eq!(media.upload_token(), case.upload_token, "{file}");
        assert_eq!(
            upload_token(&media.file_enc_sha256),
            case.upload_token,
            "{file}"
        );
        assert_eq!(
            hex::encode(media.media_key.as_bytes()),
            case.media_key,
            "{file}"
        );
    }
    Ok(())
}

#[test]
fn decrypts_and_verifies_every_vector() -> Result<()> {
    let plaintexts = plaintexts();
    for (file, case) in all_cases() {
        let (key, media_type) = case_key(&case)?;
        let enc_file = hex::decode(&case.enc_file)?;
        let expected = Expected {
            file_sha256: Some(arr32(&case.file_sha256)),
            file_enc_sha256: Some(arr32(&case.file_enc_sha256)),
            file_length: Some(case.file_length),
        };
        let plaintext = decrypt(&key, media_type, &enc_file, expected)?;
        ensure!(
            plaintext == plaintexts[&case.plaintext],
            "{file} {}: plaintext differs",
            case.plaintext
        );
    }
    Ok(())
}

#[test]
fn streams_every_vector_in_odd_chunks_both_ways() -> Result<()> {
    let plaintexts = plaintexts();
    for (file, case) in all_cases() {
        let (key, media_type) = case_key(&case)?;
        let plaintext = &plaintexts[&case.plaintext];
        for chunk_len in [1, 7, 16, 27, 4096] {
            let mut encryptor = Encryptor::new(key.clone(), media_type);
            let mut enc_file = Vec::new();
            for chunk in plaintext.chunks(chunk_len) {
                encryptor.update(chunk, &mut enc_file);
            }
            let media = encryptor.finish(&mut enc_file);
            assert_eq!(
                hex::encode(&enc_file),
                case.enc_file,
                "{file} chunk {chunk_len}"
            );

            let mut decryptor = Decryptor::new(&key, media_type, Expected::from(&media));
            let mut decrypted = Vec::new();
            for chunk in enc_file.chunks(chunk_len) {
                decryptor.update(chunk, &mut decrypted)?;
            }
            let measured = decryptor.finish(&mut decrypted)?;
            assert_eq!(&decrypted, plaintext, "{file} chunk {chunk_len}");
            assert_eq!(hex::encode(measured.file_enc_sha256), case.file_enc_sha256);
            assert_eq!(hex::encode(measured.file_sha256), case.file_sha256);
            assert_eq!(measured.file_length, case.file_length);
        }
    }
    Ok(())
}

/// shared/protocol/06 §2.2: media key 00..1f, image keys, "hello whatsapp media".
#[test]
fn matches_the_protocol_reference_inline_vector() -> Result<()> {
    let key = MediaKey::from_bytes(std::array::from_fn(|i| i as u8));
    let expanded = key.expand(MediaType::Image);
    assert_eq!(
        hex::encode(expanded.iv()),
        "aa6a127218397cbd2383e4ccf7176a79"
    );
    assert_eq!(
        hex::encode(expanded.cipher_key()),
        "008c9aea9b7c5d81eb56b3f530f87d42dcc92d27b11ad6b5bd66f0560d0d8c46"
    );
    assert_eq!(
        hex::encode(expanded.mac_key()),
        "91d09ffec108833c1699574c52657923fb6e3e161d9698bc6b3a05fbc508a515"
    );
    assert_eq!(
        hex::encode(expanded.ref_key()),
        "4d4981725e9eb39838fcff2130508f1360cbb319f99cef163d57ab7c050a667e"
    );

    let (enc_file, media) = encrypt(key.clone(), MediaType::Image, b"hello whatsapp media");
    assert_eq!(
        hex::encode(&enc_file),
        "4b9261d1409452408301b63ee4771d9d64e206b4ad6cc9017d1a314c8b311588\
         8fa2e259f199c99a236c"
    );
    assert_eq!(hex::encode(media.mac), "8fa2e259f199c99a236c");
    assert_eq!(
        hex::encode(media.file_sha256),
        "5f478949945acb950dc5264ab9f5e8d4d8cf02599b1fe0c30d4f8780543beb00"
    );
    assert_eq!(
        hex::encode(media.file_enc_sha256),
        "8f3d2bf53d105a52709af60e7d21e564ffed7d5a96d7ccf789fd4d3685710c6e"
    );
    assert_eq!(
        media.upload_token(),
        "jz0r9T0QWlJwmvYOfSHlZP_tfVqW18z3if1NNoVxDG4"
    );

    let plaintext = decrypt(&key, MediaType::Image, &enc_file, Expected::from(&media))?;
    assert_eq!(plaintext, b"hello whatsapp media");
    Ok(())
}
