//! A/B timing of the binary node codecs that is robust on a busy machine.
//!
//! Run: `cargo bench -p wa-benches --bench binary_ab`
//!
//! Criterion (`--bench binary`) times each function in its own window, so on
//! a shared 2-core machine the load of other processes skews ratios. This
//! harness alternates wa-engine and wacore-binary in short rounds over the
//! same corpus and keeps each side's fastest round: the ratio of minima is
//! what the codecs cost without interference. Prints nodes/s per side and
//! the ratio ours/theirs (> 1 means wa-engine is faster).

use std::hint::black_box;
use std::time::{Duration, Instant};

use wa_benches::{Case, load_binary_corpus};
use wa_engine::binary;

/// Alternating rounds per comparison.
const ROUNDS: usize = 60;
/// Target duration of one side's round.
const ROUND: Duration = Duration::from_millis(25);

fn time_round(f: &mut dyn FnMut(), reps: usize) -> Duration {
    let start = Instant::now();
    for _ in 0..reps {
        f();
    }
    start.elapsed() / reps as u32
}

/// Returns (ours, theirs) fastest time per pass over the cases.
fn ab(
    name: &str,
    ours: &mut dyn FnMut(),
    theirs: &mut dyn FnMut(),
) -> Option<(Duration, Duration)> {
    if !selected(name) {
        return None;
    }
    // Calibrate repetitions so one round lasts about ROUND.
    let once = time_round(ours, 3).max(Duration::from_nanos(1));
    let reps = (ROUND.as_nanos() / once.as_nanos()).clamp(1, 100_000) as usize;
    let (mut best_a, mut best_b) = (Duration::MAX, Duration::MAX);
    for _ in 0..ROUNDS {
        best_a = best_a.min(time_round(ours, reps));
        best_b = best_b.min(time_round(theirs, reps));
    }
    Some((best_a, best_b))
}

/// Whether comparison `name` was selected (first non-flag argument, substring match).
fn selected(name: &str) -> bool {
    std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .is_none_or(|f| name.contains(&f))
}

fn report(name: &str, nodes: usize, result: Option<(Duration, Duration)>) {
    let Some((a, b)) = result else { return };
    let rate = |d: Duration| nodes as f64 / d.as_secs_f64();
    println!(
        "{name:<36} wa-engine {:>10.0} nodes/s   wacore-binary {:>10.0} nodes/s   ours/theirs {:.2}",
        rate(a),
        rate(b),
        b.as_secs_f64() / a.as_secs_f64()
    );
}

fn compare(label: &str, cases: &[Case]) {
    let n = cases.len();
    let mut buf_a = Vec::with_capacity(1 << 16);
    let mut buf_b = Vec::with_capacity(1 << 16);
    let name = format!("encode/{label}/reused-buffer");
    report(
        &name,
        n,
        ab(
            &name,
            &mut || {
                for c in cases {
                    buf_a.clear();
                    binary::encode_into(black_box(&c.ours), &mut buf_a);
                    black_box(&buf_a);
                }
            },
            &mut || {
                for c in cases {
                    buf_b.clear();
                    let r = wacore_binary::marshal_to_vec(black_box(&c.theirs), &mut buf_b);
                    black_box((&buf_b, r.is_ok()));
                }
            },
        ),
    );
    let name = format!("encode/{label}/fresh-vec");
    report(
        &name,
        n,
        ab(
            &name,
            &mut || {
                for c in cases {
                    black_box(binary::encode(black_box(&c.ours)));
                }
            },
            &mut || {
                for c in cases {
                    black_box(wacore_binary::marshal(black_box(&c.theirs)).ok());
                }
            },
        ),
    );
    let name = format!("decode/{label}/borrowed-vs-zero-copy");
    report(
        &name,
        n,
        ab(
            &name,
            &mut || {
                for c in cases {
                    if let Ok(body) = binary::unpack(black_box(&c.frame)) {
                        black_box(binary::decode_node_ref(&body).ok());
                    }
                }
            },
            &mut || {
                for c in cases {
                    if let Ok(body) = wacore_binary::util::unpack(black_box(&c.frame)) {
                        black_box(wacore_binary::marshal::unmarshal_ref(&body).ok());
                    }
                }
            },
        ),
    );
    let name = format!("decode/{label}/owned-vs-zero-copy");
    report(
        &name,
        n,
        ab(
            &name,
            &mut || {
                for c in cases {
                    black_box(binary::decode(black_box(&c.frame)).ok());
                }
            },
            &mut || {
                for c in cases {
                    if let Ok(body) = wacore_binary::util::unpack(black_box(&c.frame)) {
                        black_box(wacore_binary::marshal::unmarshal_ref(&body).ok());
                    }
                }
            },
        ),
    );
    let name = format!("decode/{label}/owned-vs-owned");
    report(
        &name,
        n,
        ab(
            &name,
            &mut || {
                for c in cases {
                    black_box(binary::decode(black_box(&c.frame)).ok());
                }
            },
            &mut || {
                for c in cases {
                    if let Ok(body) = wacore_binary::util::unpack(black_box(&c.frame)) {
                        black_box(
                            wacore_binary::marshal::unmarshal_ref(&body)
                                .map(|n| n.to_owned())
                                .ok(),
                        );
                    }
                }
            },
        ),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing we need.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let (typical, large) = match load_binary_corpus() {
        Ok(corpus) => corpus,
        Err(e) => panic!("cannot load the benchmark corpus: {e}"),
    };
    println!(
        "corpus: {} typical frames (<= 4 KiB), {} large frames",
        typical.len(),
        large.len()
    );
    compare("typical", &typical);
    compare("large", &large);
}
