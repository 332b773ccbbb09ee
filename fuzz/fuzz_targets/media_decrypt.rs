//! Fuzz target: media decryption and verification (`media::decrypt`, the streaming
//! `media::Decryptor`), and the upload reply parser.
//!
//! Input: `mode (1) || rest`:
//!
//! | mode | layout after the mode byte | what runs |
//! | --- | --- | --- |
//! | 0 | `type (1) || flags (1) || media key (32) || [fileSha256 (32)] [fileEncSha256 (32)] [fileLength (8, LE)] || n (1) || n chunk sizes || enc file` | `decrypt`, and the `Decryptor` fed in chunks |
//! | 1 | `type (1) || flags (1) || len (1) || plaintext (len) || edits` | a real enc file of the plaintext (fixed key), edited (see `common::mutate`), then decrypted |
//! | 2 | `body` | `UploadResponse::parse` |
//!
//! `flags` bits 0, 1, 2 say which of `fileSha256`, `fileEncSha256`, `fileLength` are
//! expected. Invariants:
//! - no panic;
//! - the streaming decryptor agrees with `decrypt` whatever the chunking (same plaintext, or
//!   an error of the same kind), never buffers more than `MAX_BUFFERED` bytes and releases
//!   whole blocks only;
//! - a real enc file decrypts to its plaintext; any change to it fails with a MAC, hash,
//!   length-limit or truncation error, never with a padding / alignment error (which would
//!   mean the MAC passed on modified bytes).
//!
//! Run: see fuzz/README.md.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use common::{Input, mutate};
use libfuzzer_sys::fuzz_target;
use wa_engine::media::{
    BLOCK_LEN, Decryptor, Expected, MediaError, MediaKey, MediaType, UploadResponse, decrypt,
    encrypt,
};

/// Type byte to media type: the vectors' five first, then every type.
fn media_type(b: u8) -> MediaType {
    const FIRST: [MediaType; 5] = [
        MediaType::Image,
        MediaType::Video,
        MediaType::Audio,
        MediaType::Document,
        MediaType::Sticker,
    ];
    FIRST
        .get(usize::from(b))
        .copied()
        .unwrap_or(MediaType::ALL[usize::from(b) % MediaType::ALL.len()])
}

fn array32(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out[..bytes.len()].copy_from_slice(bytes);
    out
}

/// Feeds `enc` in `sizes`-sized chunks (cycled); the plaintext on success.
fn streamed(
    key: &MediaKey,
    kind: MediaType,
    expected: Expected,
    enc: &[u8],
    sizes: &[usize],
) -> Result<Vec<u8>, MediaError> {
    let mut dec = Decryptor::new(key, kind, expected);
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < enc.len() {
        let size = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(enc.len());
        let end = (at + size).min(enc.len());
        let before = out.len();
        dec.update(&enc[at..end], &mut out)?;
        let released = out.len() - before;
        assert_eq!(released % BLOCK_LEN, 0, "released a partial block");
        assert!(released < end - at + BLOCK_LEN, "released too much");
        assert!(
            dec.buffered_len() <= Decryptor::MAX_BUFFERED,
            "buffered too much"
        );
        assert_eq!(dec.enc_len(), end as u64);
        at = end;
        i += 1;
    }
    let measured = dec.finish(&mut out)?;
    assert_eq!(measured.file_length, out.len() as u64);
    Ok(out)
}

fn same_outcome(a: &Result<Vec<u8>, MediaError>, b: &Result<Vec<u8>, MediaError>) {
    match (a, b) {
        (Ok(x), Ok(y)) => assert_eq!(x, y, "streamed plaintext differs"),
        (Err(x), Err(y)) => assert_eq!(
            std::mem::discriminant(x),
            std::mem::discriminant(y),
            "whole: {x}, streamed: {y}"
        ),
        (x, y) => panic!("whole: {x:?}, streamed: {y:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    match input.byte() % 3 {
        0 => {
            let kind = media_type(input.byte());
            let flags = input.byte();
            let key = MediaKey::from_bytes(array32(input.take(32)));
            let expected = Expected {
                file_sha256: (flags & 1 != 0).then(|| array32(input.take(32))),
                file_enc_sha256: (flags & 2 != 0).then(|| array32(input.take(32))),
                file_length: (flags & 4 != 0)
                    .then(|| u64::from_le_bytes(array32(input.take(8))[..8].try_into().unwrap())),
            };
            let n = usize::from(input.byte() % 16);
            let sizes: Vec<usize> = input.take(n).iter().map(|&s| usize::from(s) + 1).collect();
            let enc = input.rest();
            let whole = decrypt(&key, kind, enc, expected);
            if let Ok(plain) = &whole {
                assert!(
                    plain.len() + 10 < enc.len(),
                    "plaintext longer than the enc file"
                );
            }
            same_outcome(&whole, &streamed(&key, kind, expected, enc, &sizes));
            same_outcome(&whole, &streamed(&key, kind, expected, enc, &[1]));
        }
        1 => {
            let kind = media_type(input.byte());
            let flags = input.byte();
            let len = usize::from(input.byte());
            let plaintext = input.take(len).to_vec();
            let key = MediaKey::from_bytes([0x4D; 32]);
            let (real, media) = encrypt(key.clone(), kind, &plaintext);
            let full = Expected::from(&media);
            let expected = Expected {
                file_sha256: full.file_sha256.filter(|_| flags & 1 != 0),
                file_enc_sha256: full.file_enc_sha256.filter(|_| flags & 2 != 0),
                file_length: full.file_length.filter(|_| flags & 4 != 0),
            };
            let enc = mutate(&real, &mut input);
            let whole = decrypt(&key, kind, &enc, expected);
            same_outcome(
                &whole,
                &streamed(&key, kind, expected, &enc, &[7, 16, 1, 33]),
            );
            if enc == real {
                assert_eq!(whole.ok(), Some(plaintext), "a real enc file failed");
            } else {
                match whole {
                    Err(
                        MediaError::MacMismatch
                        | MediaError::HashMismatch { .. }
                        | MediaError::Truncated { .. }
                        | MediaError::TooLong { .. },
                    ) => {}
                    other => panic!("modified enc file gave {other:?}"),
                }
            }
        }
        _ => {
            if let Ok(reply) = UploadResponse::parse(input.rest()) {
                assert!(reply.direct_path.starts_with('/'));
            }
        }
    }
});
