//! Media encryption throughput (issue 6): encrypt + MAC + both hashes, and decrypt + verify,
//! over a 10 MB buffer, one-shot and streamed in 64 KiB chunks.
//!
//! Run: `cargo bench -p wa-benches --bench media`. Throughput is in decimal MB/s.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wa_engine::media::{Decryptor, Encryptor, Expected, MediaKey, MediaType, decrypt, encrypt};

/// 10 MB of plaintext, decimal, as in the issue.
const LEN: usize = 10_000_000;
/// Chunk size for the streamed variants, bytes (a typical HTTP body read).
const CHUNK: usize = 64 * 1024;

fn plaintext() -> Vec<u8> {
    (0..LEN)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn bench_media(c: &mut Criterion) {
    let key = MediaKey::from_bytes([0x11; 32]);
    let plaintext = plaintext();
    let (enc_file, media) = encrypt(key.clone(), MediaType::Video, &plaintext);
    let expected = Expected::from(&media);

    let mut group = c.benchmark_group("media_10MB");
    group.sample_size(10);
    group.throughput(Throughput::BytesDecimal(LEN as u64));

    group.bench_function("encrypt_mac_one_shot", |b| {
        b.iter(|| encrypt(key.clone(), MediaType::Video, black_box(&plaintext)));
    });
    group.bench_function("encrypt_mac_streamed_64KiB", |b| {
        let mut out = Vec::with_capacity(CHUNK + 32);
        b.iter(|| {
            let mut encryptor = Encryptor::new(key.clone(), MediaType::Video);
            for chunk in black_box(&plaintext).chunks(CHUNK) {
                out.clear();
                encryptor.update(chunk, &mut out);
            }
            out.clear();
            encryptor.finish(&mut out)
        });
    });
    group.bench_function("decrypt_verify_one_shot", |b| {
        b.iter(|| decrypt(&key, MediaType::Video, black_box(&enc_file), expected));
    });
    group.bench_function("decrypt_verify_streamed_64KiB", |b| {
        let mut out = Vec::with_capacity(CHUNK + 64);
        b.iter(|| {
            let mut decryptor = Decryptor::new(&key, MediaType::Video, expected);
            for chunk in black_box(&enc_file).chunks(CHUNK) {
                out.clear();
                decryptor.update(chunk, &mut out)?;
            }
            out.clear();
            decryptor.finish(&mut out)
        });
    });
    group.finish();
}

criterion_group!(benches, bench_media);
criterion_main!(benches);
