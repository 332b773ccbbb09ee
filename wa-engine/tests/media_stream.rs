//! Streaming media encryption: any chunking gives the one-shot bytes, buffers stay bounded,
//! and the `std::io` adapters match the sans-IO types.

use std::io::{Read, Write};

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use wa_engine::media::{
    DecryptingWriter, Decryptor, EncryptingReader, EncryptingWriter, Encryptor, Expected, MediaKey,
    MediaType, decrypt, encrypt,
};

/// Splits `data` at the given chunk lengths (cycled; 0 means an empty update).
fn chunks<'a>(data: &'a [u8], lens: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let len = lens[i % lens.len()].min(rest.len());
        let (head, tail) = rest.split_at(len);
        out.push(head);
        rest = tail;
        i += 1;
        if i > data.len() * 2 + 8 {
            // All-zero lengths would never end; take the rest in one piece.
            out.push(rest);
            break;
        }
    }
    out
}

fn media_type_strategy() -> impl Strategy<Value = MediaType> {
    proptest::sample::select(MediaType::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn streaming_encryption_in_any_chunks_equals_one_shot(
        key in any::<[u8; 32]>(),
        media_type in media_type_strategy(),
        plaintext in proptest::collection::vec(any::<u8>(), 0..3000),
        lens in proptest::collection::vec(0_usize..200, 1..20),
    ) {
        let key = MediaKey::from_bytes(key);
        let (one_shot, one_shot_media) = encrypt(key.clone(), media_type, &plaintext);

        let mut encryptor = Encryptor::new(key, media_type);
        let mut streamed = Vec::new();
        for chunk in chunks(&plaintext, &lens) {
            let before = streamed.len();
            encryptor.update(chunk, &mut streamed);
            let produced = streamed.len() - before;
            prop_assert_eq!(produced % 16, 0);
            prop_assert!(produced <= chunk.len() + Encryptor::MAX_BUFFERED);
            prop_assert!(encryptor.buffered_len() <= Encryptor::MAX_BUFFERED);
        }
        let media = encryptor.finish(&mut streamed);
        prop_assert_eq!(&streamed, &one_shot);
        prop_assert_eq!(media.file_sha256, one_shot_media.file_sha256);
        prop_assert_eq!(media.file_enc_sha256, one_shot_media.file_enc_sha256);
        prop_assert_eq!(media.file_length, plaintext.len() as u64);
        prop_assert_eq!(media.file_sha256, <[u8; 32]>::from(Sha256::digest(&plaintext)));
        prop_assert_eq!(media.file_enc_sha256, <[u8; 32]>::from(Sha256::digest(&one_shot)));
        prop_assert_eq!(streamed.len() as u64, media.enc_file_length());
    }

    #[test]
    fn streaming_decryption_in_any_chunks_equals_one_shot(
        key in any::<[u8; 32]>(),
        media_type in media_type_strategy(),
        plaintext in proptest::collection::vec(any::<u8>(), 0..3000),
        lens in proptest::collection::vec(0_usize..200, 1..20),
    ) {
        let key = MediaKey::from_bytes(key);
        let (enc_file, media) = encrypt(key.clone(), media_type, &plaintext);
        let one_shot = decrypt(&key, media_type, &enc_file, Expected::from(&media)).unwrap();
        prop_assert_eq!(&one_shot, &plaintext);

        let mut decryptor = Decryptor::new(&key, media_type, Expected::from(&media));
        let mut streamed = Vec::new();
        for chunk in chunks(&enc_file, &lens) {
            let before = streamed.len();
            decryptor.update(chunk, &mut streamed).unwrap();
            let produced = streamed.len() - before;
            prop_assert_eq!(produced % 16, 0);
            prop_assert!(produced <= chunk.len() + Decryptor::MAX_BUFFERED);
            prop_assert!(decryptor.buffered_len() <= Decryptor::MAX_BUFFERED);
        }
        let measured = decryptor.finish(&mut streamed).unwrap();
        prop_assert_eq!(&streamed, &plaintext);
        prop_assert_eq!(measured.file_sha256, media.file_sha256);
        prop_assert_eq!(measured.file_enc_sha256, media.file_enc_sha256);
        prop_assert_eq!(measured.file_length, media.file_length);
    }
}

/// A cheap deterministic byte stream (xorshift64*), so 64 MiB never exists at once.
struct Stream(u64);

impl Stream {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let word = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    /// A chunk length between 1 and 256 KiB.
    fn next_len(&mut self) -> usize {
        let mut b = [0; 8];
        self.fill(&mut b);
        (u64::from_le_bytes(b) % (256 * 1024)) as usize + 1
    }
}

#[test]
fn a_64_mib_stream_round_trips_with_bounded_buffers() {
    const TOTAL: u64 = 64 * 1024 * 1024;
    let key = MediaKey::from_bytes([0x5a; 32]);
    let media_type = MediaType::Video;
    let mut encryptor = Encryptor::new(key.clone(), media_type);
    let mut decryptor = Decryptor::new(
        &key,
        media_type,
        Expected {
            file_length: Some(TOTAL),
            ..Expected::default()
        },
    );
    let mut data = Stream(0x1234_5678_9abc_def1);
    let mut sizes = Stream(0x0fed_cba9_8765_4321);
    let mut plain_hash = Sha256::new();
    let mut decrypted_hash = Sha256::new();
    let (mut plain, mut enc, mut out) = (Vec::new(), Vec::new(), Vec::new());
    let (mut produced_total, mut max_chunk, mut max_out) = (0_u64, 0_usize, 0_usize);

    while produced_total < TOTAL {
        let len = sizes.next_len().min((TOTAL - produced_total) as usize);
        plain.resize(len, 0);
        data.fill(&mut plain);
        plain_hash.update(&plain);
        produced_total += len as u64;
        max_chunk = max_chunk.max(len);

        enc.clear();
        encryptor.update(&plain, &mut enc);
        assert!(encryptor.buffered_len() <= Encryptor::MAX_BUFFERED);
        assert!(enc.len() <= len + Encryptor::MAX_BUFFERED);

        // Feed the decryptor in differently sized pieces than the encryptor produced.
        for piece in enc.chunks(sizes.next_len()) {
            out.clear();
            decryptor.update(piece, &mut out).expect("in-limit update");
            assert!(decryptor.buffered_len() <= Decryptor::MAX_BUFFERED);
            assert!(out.len() <= piece.len() + Decryptor::MAX_BUFFERED);
            max_out = max_out.max(out.len());
            decrypted_hash.update(&out);
        }
    }
    enc.clear();
    let media = encryptor.finish(&mut enc);
    assert!(enc.len() <= 32 + 10);
    out.clear();
    decryptor.update(&enc, &mut out).expect("in-limit update");
    let measured = decryptor.finish(&mut out).expect("verifies");
    decrypted_hash.update(&out);

    let file_sha256: [u8; 32] = plain_hash.finalize().into();
    assert_eq!(media.file_length, TOTAL);
    assert_eq!(media.file_sha256, file_sha256);
    assert_eq!(measured.file_sha256, file_sha256);
    assert_eq!(<[u8; 32]>::from(decrypted_hash.finalize()), file_sha256);
    assert_eq!(measured.file_enc_sha256, media.file_enc_sha256);
    assert_eq!(measured.file_length, TOTAL);
    // Output per call is bounded by the chunk in, never by the file size.
    assert!(max_out <= max_chunk + Decryptor::MAX_BUFFERED);
}

#[test]
fn io_adapters_produce_the_same_bytes_as_the_sans_io_types() {
    let key = MediaKey::from_bytes([9; 32]);
    let plaintext: Vec<u8> = (0..200_003_u32).map(|i| (i * 31 % 251) as u8).collect();
    let (enc_file, media) = encrypt(key.clone(), MediaType::Document, &plaintext);

    let mut writer = EncryptingWriter::new(Vec::new(), key.clone(), MediaType::Document);
    for chunk in plaintext.chunks(70_001) {
        writer.write_all(chunk).unwrap();
    }
    let (written, written_media) = writer.finish().unwrap();
    assert_eq!(written, enc_file);
    assert_eq!(written_media.file_enc_sha256, media.file_enc_sha256);

    let mut reader = EncryptingReader::new(&plaintext[..], key.clone(), MediaType::Document);
    assert!(reader.encrypted_media().is_none());
    let mut read = Vec::new();
    reader.read_to_end(&mut read).unwrap();
    assert_eq!(read, enc_file);
    let (_, read_media) = reader.into_inner();
    assert_eq!(
        read_media.expect("metadata after EOF").file_sha256,
        media.file_sha256
    );

    let mut writer = DecryptingWriter::new(
        Vec::new(),
        &key,
        MediaType::Document,
        Expected::from(&media),
    );
    for chunk in enc_file.chunks(33_333) {
        writer.write_all(chunk).unwrap();
    }
    let (decrypted, measured) = writer.finish().unwrap();
    assert_eq!(decrypted, plaintext);
    assert_eq!(measured.file_length, plaintext.len() as u64);
}

#[test]
fn encrypting_reader_handles_empty_input() {
    let key = MediaKey::from_bytes([1; 32]);
    let mut reader = EncryptingReader::new(&[][..], key.clone(), MediaType::Image);
    let mut read = Vec::new();
    reader.read_to_end(&mut read).unwrap();
    let (expected, _) = encrypt(key, MediaType::Image, &[]);
    assert_eq!(read, expected);
    assert_eq!(read.len(), 16 + 10);
}
