//! Noise (issue 3): transport encrypt / decrypt throughput for 1 KiB frames, ours side by side
//! with `snow` in the same run, and the in-memory XX handshake.
//!
//! Fair comparison: a snow XX handshake (`Noise_XX_25519_AESGCM_SHA256`, prologue `WA 06 03`)
//! runs once; its split keys (`dangerously_get_raw_split`, feature `risky-raw-split`) build
//! our `Transport`, and the same handshake goes on into snow's transport mode. Both then use
//! the same AES-256-GCM keys and nonces from 0: setup asserts that the first frame's
//! ciphertext is byte-identical. snow uses its default (RustCrypto `aes-gcm` 0.10) resolver;
//! we use `aes-gcm` 0.11. `snow_ring` is snow with its ring resolver, for scale.
//!
//! Decrypt benches need ciphertexts at consecutive counters: they are made in batches of
//! 1024 outside the timed section (`iter_custom`).
//!
//! Run: `cargo bench -p wa-benches --bench noise`. Throughput is in MiB/s (binary).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use snow::params::NoiseParams;
use snow::resolvers::{CryptoResolver, DefaultResolver, FallbackResolver, RingResolver};
use wa_engine::noise::{
    CONN_HEADER, ClientHandshake, KeyPair, ServerHandshake, Transport, TrustRoot, build_cert_chain,
};

const FRAME: usize = 1024;
const BATCH: u64 = 1024;
const PARAMS: &str = "Noise_XX_25519_AESGCM_SHA256";
/// Handshake `now`, unix seconds, inside the benchmark chain's validity window.
const NOW: u64 = 1_795_219_200;

fn frame() -> Vec<u8> {
    (0..FRAME).map(|i| (i * 31 % 251) as u8).collect()
}

fn params() -> NoiseParams {
    PARAMS.parse().expect("noise params")
}

/// Runs a snow XX handshake; returns the split keys and both snow transports.
fn snow_pair(
    resolver: fn() -> Box<dyn CryptoResolver + Send>,
) -> (
    [u8; 32],
    [u8; 32],
    snow::TransportState,
    snow::TransportState,
) {
    let builder = |r| snow::Builder::with_resolver(params(), r);
    let ikey = builder(resolver()).generate_keypair().expect("keypair");
    let rkey = builder(resolver()).generate_keypair().expect("keypair");
    let mut i = builder(resolver())
        .prologue(&CONN_HEADER)
        .and_then(|b| b.local_private_key(&ikey.private))
        .and_then(snow::Builder::build_initiator)
        .expect("initiator");
    let mut r = builder(resolver())
        .prologue(&CONN_HEADER)
        .and_then(|b| b.local_private_key(&rkey.private))
        .and_then(snow::Builder::build_responder)
        .expect("responder");
    let (mut a, mut b) = ([0u8; 512], [0u8; 512]);
    let n = i.write_message(&[], &mut a).expect("-> e");
    r.read_message(&a[..n], &mut b).expect("read e");
    let n = r.write_message(&[], &mut a).expect("<- e, ee, s, es");
    i.read_message(&a[..n], &mut b).expect("read");
    let n = i.write_message(&[], &mut a).expect("-> s, se");
    r.read_message(&a[..n], &mut b).expect("read");
    let (k1, k2) = i.dangerously_get_raw_split();
    (
        k1,
        k2,
        i.into_transport_mode().expect("transport"),
        r.into_transport_mode().expect("transport"),
    )
}

fn default_resolver() -> Box<dyn CryptoResolver + Send> {
    Box::new(DefaultResolver)
}

/// ring for AES-GCM and SHA-256; ring has no static X25519, so DH falls back to the default.
fn ring_resolver() -> Box<dyn CryptoResolver + Send> {
    Box::new(FallbackResolver::new(
        Box::new(RingResolver),
        Box::new(DefaultResolver),
    ))
}

/// Times `decrypt` over ciphertexts made by `encrypt` in untimed batches.
fn decrypt_custom(
    iters: u64,
    mut encrypt: impl FnMut(&mut Vec<u8>),
    mut decrypt: impl FnMut(&[u8], &mut Vec<u8>),
) -> Duration {
    let mut cts: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(FRAME + 16)).collect();
    let mut out = Vec::with_capacity(FRAME + 16);
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(BATCH) as usize;
        for ct in &mut cts[..n] {
            ct.clear();
            encrypt(ct);
        }
        let start = Instant::now();
        for ct in &cts[..n] {
            out.clear();
            decrypt(black_box(ct), &mut out);
        }
        total += start.elapsed();
        left -= n as u64;
    }
    total
}

fn bench_transport(c: &mut Criterion) {
    let plain = frame();
    let mut group = c.benchmark_group("noise_transport_1KiB");
    group.throughput(Throughput::Bytes(FRAME as u64));

    for (name, resolver) in [
        ("snow", default_resolver as fn() -> _),
        ("snow_ring", ring_resolver as fn() -> _),
    ] {
        // Same keys for us and snow; same ciphertext for the same counter.
        let (k1, k2, mut snow_i, mut snow_r) = snow_pair(resolver);
        let mut ours_i = Transport::new(&k1, &k2);
        let mut ours_r = Transport::new(&k2, &k1);
        let mut ours_ct = Vec::new();
        ours_i.encrypt(&plain, &mut ours_ct).expect("encrypt");
        let mut snow_ct = vec![0u8; FRAME + 16];
        let n = snow_i.write_message(&plain, &mut snow_ct).expect("encrypt");
        assert_eq!(
            ours_ct,
            snow_ct[..n],
            "same key, same nonce, same ciphertext"
        );
        let mut out = Vec::new();
        ours_r.decrypt(&ours_ct, &mut out).expect("decrypt");
        let mut snow_out = vec![0u8; FRAME];
        snow_r
            .read_message(&snow_ct[..n], &mut snow_out)
            .expect("decrypt");
        // The encrypt benches advance only the senders; the decrypt benches get their own
        // pairs, with matching counters (same keys again for us and snow).
        let (d1, d2, mut snow_dec_i, mut snow_dec_r) = snow_pair(resolver);
        let mut ours_dec_i = Transport::new(&d1, &d2);
        let mut ours_dec_r = Transport::new(&d2, &d1);

        if name == "snow" {
            group.bench_function("wa_encrypt", |b| {
                let mut out = Vec::with_capacity(FRAME + 16);
                b.iter(|| {
                    out.clear();
                    ours_i
                        .encrypt(black_box(&plain), &mut out)
                        .expect("encrypt");
                });
            });
            group.bench_function("wa_decrypt", |b| {
                b.iter_custom(|iters| {
                    decrypt_custom(
                        iters,
                        |ct| ours_dec_i.encrypt(&plain, ct).expect("encrypt"),
                        |ct, out| ours_dec_r.decrypt(ct, out).expect("decrypt"),
                    )
                });
            });
        }
        group.bench_function(format!("{name}_encrypt"), |b| {
            let mut out = vec![0u8; FRAME + 16];
            b.iter(|| {
                snow_i
                    .write_message(black_box(&plain), &mut out)
                    .expect("encrypt")
            });
        });
        group.bench_function(format!("{name}_decrypt"), |b| {
            let mut scratch = vec![0u8; FRAME + 16];
            b.iter_custom(|iters| {
                decrypt_custom(
                    iters,
                    |ct| {
                        let n = snow_dec_i
                            .write_message(&plain, &mut scratch)
                            .expect("encrypt");
                        ct.extend_from_slice(&scratch[..n]);
                    },
                    |ct, out| {
                        out.resize(FRAME, 0);
                        snow_dec_r.read_message(ct, out).expect("decrypt");
                    },
                )
            });
        });
    }
    group.finish();
}

/// The complete XX handshake in memory, both sides, as one connection costs: ours with a
/// real certificate chain in the server payload, verified by the client (two XEdDSA
/// signatures); snow carrying the same bytes unverified.
fn bench_handshake(c: &mut Criterion) {
    let mut rng = rand::rng();
    let root = KeyPair::generate(&mut rng);
    let intermediate = KeyPair::generate(&mut rng);
    let server_static = KeyPair::generate(&mut rng);
    let client_static = KeyPair::generate(&mut rng);
    let chain = build_cert_chain(
        &root,
        0,
        &intermediate,
        server_static.public(),
        NOW - 86_400,
        NOW + 86_400,
        &mut rng,
    );
    let trust_root = TrustRoot::new(*root.public(), 0);
    // A login ClientPayload is about this size.
    let client_payload = vec![0x5a; 96];

    let mut group = c.benchmark_group("noise_handshake");
    group.bench_function(BenchmarkId::new("wa_xx", "cert_chain_verified"), |b| {
        let mut counter = 0u64;
        let mut key = || {
            counter += 1;
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&counter.to_le_bytes());
            bytes[31] = 0x42;
            KeyPair::from_private_bytes(bytes)
        };
        b.iter(|| {
            let client = ClientHandshake::new(
                KeyPair::from_private_bytes(*client_static.private_bytes()),
                key(),
                trust_root,
            );
            let server = ServerHandshake::new(
                KeyPair::from_private_bytes(*server_static.private_bytes()),
                key(),
                chain.clone(),
            );
            let mut m1 = Vec::new();
            client.write_client_hello(&mut m1);
            let mut m2 = Vec::new();
            let server = server.handle_client_hello(&m1, &mut m2).expect("hello");
            let verified = client.handle_server_hello(NOW, &m2).expect("server hello");
            let mut m3 = Vec::new();
            let client = verified
                .write_client_finish(&client_payload, &mut m3)
                .expect("finish");
            let (server, _) = server.handle_client_finish(&m3).expect("client finish");
            (client.finish(), server.finish())
        });
    });
    let ikey = client_static.private_bytes();
    let rkey = server_static.private_bytes();
    for (name, resolver) in [
        ("snow_xx", default_resolver as fn() -> _),
        ("snow_ring_xx", ring_resolver as fn() -> _),
    ] {
        group.bench_function(BenchmarkId::new(name, "same_payloads"), |b| {
            let (mut a, mut buf) = (vec![0u8; 2048], vec![0u8; 2048]);
            b.iter(|| {
                let mut i = snow::Builder::with_resolver(params(), resolver())
                    .prologue(&CONN_HEADER)
                    .and_then(|b| b.local_private_key(ikey.as_slice()))
                    .and_then(snow::Builder::build_initiator)
                    .expect("initiator");
                let mut r = snow::Builder::with_resolver(params(), resolver())
                    .prologue(&CONN_HEADER)
                    .and_then(|b| b.local_private_key(rkey.as_slice()))
                    .and_then(snow::Builder::build_responder)
                    .expect("responder");
                let n = i.write_message(&[], &mut a).expect("-> e");
                r.read_message(&a[..n], &mut buf).expect("read");
                let n = r.write_message(&chain, &mut a).expect("<- e, ee, s, es");
                i.read_message(&a[..n], &mut buf).expect("read");
                let n = i.write_message(&client_payload, &mut a).expect("-> s, se");
                r.read_message(&a[..n], &mut buf).expect("read");
                (
                    i.into_transport_mode().expect("transport"),
                    r.into_transport_mode().expect("transport"),
                )
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_transport, bench_handshake);
criterion_main!(benches);
