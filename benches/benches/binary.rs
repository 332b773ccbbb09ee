//! Binary node codec: wa-engine vs whatsapp-rust's `wacore-binary` 0.7 on the
//! shared/vectors/binary corpus, side by side in one run.
//!
//! Run: `cargo bench -p wa-benches --bench binary`
//!
//! The corpus is every frame of shared/vectors/binary/binary_nodes.jsonl,
//! split into "typical" stanzas (frame <= 4 KiB) and "large" ones (blobs,
//! long strings, wide lists). Throughput is reported in nodes (top-level
//! stanzas) per second; each iteration processes the whole group once.
//!
//! - encode: node -> frame (flags byte + node) into a reused `Vec<u8>`
//!   (`binary::encode_into` vs `wacore_binary::marshal_to_vec`), and into a
//!   fresh `Vec` (`binary::encode` vs `wacore_binary::marshal`).
//! - decode: frame -> node, owned (`binary::decode` vs `unmarshal_ref` +
//!   `.to_owned()`) and borrowed/zero-copy (`binary::unpack` +
//!   `binary::decode_node_ref` vs `util::unpack` + `unmarshal_ref`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use wa_benches::{Case, load_binary_corpus};
use wa_engine::binary;

fn configure<'a>(c: &'a mut Criterion, name: &str, cases: &[Case]) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(cases.len() as u64));
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(4));
    g.sample_size(30);
    g
}

fn encode_group(c: &mut Criterion, label: &str, cases: &[Case]) {
    let mut g = configure(c, &format!("encode/{label}"), cases);
    let mut buf = Vec::with_capacity(1 << 16);
    g.bench_function("wa-engine/reused-buffer", |b| {
        b.iter(|| {
            for case in cases {
                buf.clear();
                binary::encode_into(black_box(&case.ours), &mut buf);
                black_box(&buf);
            }
        })
    });
    g.bench_function("wacore-binary/reused-buffer", |b| {
        b.iter(|| {
            for case in cases {
                buf.clear();
                let r = wacore_binary::marshal_to_vec(black_box(&case.theirs), &mut buf);
                black_box((&buf, r.is_ok()));
            }
        })
    });
    g.bench_function("wa-engine/fresh-vec", |b| {
        b.iter(|| {
            for case in cases {
                black_box(binary::encode(black_box(&case.ours)));
            }
        })
    });
    g.bench_function("wacore-binary/fresh-vec", |b| {
        b.iter(|| {
            for case in cases {
                black_box(wacore_binary::marshal(black_box(&case.theirs)).ok());
            }
        })
    });
    g.finish();
}

fn decode_group(c: &mut Criterion, label: &str, cases: &[Case]) {
    let mut g = configure(c, &format!("decode/{label}"), cases);
    g.bench_function("wa-engine/owned", |b| {
        b.iter(|| {
            for case in cases {
                black_box(binary::decode(black_box(&case.frame)).ok());
            }
        })
    });
    g.bench_function("wa-engine/borrowed", |b| {
        b.iter(|| {
            for case in cases {
                if let Ok(body) = binary::unpack(black_box(&case.frame)) {
                    black_box(binary::decode_node_ref(&body).ok());
                }
            }
        })
    });
    g.bench_function("wacore-binary/zero-copy", |b| {
        b.iter(|| {
            for case in cases {
                if let Ok(body) = wacore_binary::util::unpack(black_box(&case.frame)) {
                    black_box(wacore_binary::marshal::unmarshal_ref(&body).ok());
                }
            }
        })
    });
    g.bench_function("wacore-binary/owned", |b| {
        b.iter(|| {
            for case in cases {
                if let Ok(body) = wacore_binary::util::unpack(black_box(&case.frame)) {
                    black_box(
                        wacore_binary::marshal::unmarshal_ref(&body)
                            .map(|n| n.to_owned())
                            .ok(),
                    );
                }
            }
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let (typical, large) = match load_binary_corpus() {
        Ok(corpus) => corpus,
        Err(e) => panic!("cannot load the benchmark corpus: {e}"),
    };
    eprintln!(
        "corpus: {} typical frames ({} bytes), {} large frames ({} bytes)",
        typical.len(),
        typical.iter().map(|c| c.frame.len()).sum::<usize>(),
        large.len(),
        large.iter().map(|c| c.frame.len()).sum::<usize>()
    );
    encode_group(c, "typical", &typical);
    decode_group(c, "typical", &typical);
    encode_group(c, "large", &large);
    decode_group(c, "large", &large);
}

criterion_group!(binary_benches, benches);
criterion_main!(binary_benches);
