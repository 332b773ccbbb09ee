//! Malformed input: truncations, bit flips and random bytes give
//! `Err(DecodeError)` or `Ok`, never a panic; whatever decodes re-encodes to
//! bytes that decode the same.

mod binary_support;

use binary_support::{hex_field, load_jsonl};
use proptest::prelude::*;
use wa_engine::binary;

/// Frames of at most `max` bytes from both vector files (uncompressed and zlib).
fn corpus(max: usize) -> Vec<Vec<u8>> {
    let mut frames: Vec<Vec<u8>> = load_jsonl("binary_nodes.jsonl")
        .iter()
        .map(hex_field)
        .collect();
    frames.extend(load_jsonl("decode_only.jsonl").iter().map(hex_field));
    frames.retain(|f| f.len() <= max);
    assert!(
        frames.len() > 250,
        "corpus unexpectedly small: {}",
        frames.len()
    );
    frames
}

/// The corpus of frames up to 4 KiB, loaded once per test binary.
fn small_corpus() -> &'static [Vec<u8>] {
    static CORPUS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(|| corpus(4096))
}

/// If `bytes` decodes, its re-encoding decodes to the same node; the
/// borrowed decoder agrees with the owned one.
fn check_fixed_point(bytes: &[u8]) -> Result<(), String> {
    if let Ok(body) = binary::unpack(bytes) {
        let owned = binary::decode_node(&body);
        let borrowed = binary::decode_node_ref(&body);
        match (&owned, &borrowed) {
            (Ok(o), Ok(b)) if *o == b.to_owned() => {}
            (Err(e1), Err(e2)) if e1.to_string() == e2.to_string() => {}
            _ => {
                return Err(format!(
                    "owned {owned:?} vs borrowed {borrowed:?} for {bytes:02x?}"
                ));
            }
        }
    }
    if let Ok(node) = binary::decode(bytes) {
        let again =
            binary::decode(&binary::encode(&node)).map_err(|e| format!("re-decode failed: {e}"))?;
        if again != node {
            return Err(format!("re-decode differs for {bytes:02x?}"));
        }
    }
    Ok(())
}

#[test]
fn every_truncation_of_a_valid_frame_is_an_error() {
    for frame in small_corpus() {
        let full = binary::decode(frame).expect("corpus frame decodes");
        for cut in 0..frame.len() {
            match binary::decode(&frame[..cut]) {
                Err(_) => {}
                // The one legal exception: an INTEROP_JID's trailing server
                // string is optional (shared/protocol/02 §6.4), so cutting
                // exactly it leaves the same node.
                Ok(node) => assert!(
                    node == full && frame[..cut].contains(&0xF5),
                    "prefix of {cut}/{} bytes decoded: {node}",
                    frame.len()
                ),
            }
        }
    }
}

#[test]
fn every_single_bit_flip_decodes_or_fails_cleanly() {
    for frame in small_corpus().iter().filter(|f| f.len() <= 600) {
        for i in 0..frame.len() {
            for bit in 0..8 {
                let mut f = frame.clone();
                f[i] ^= 1 << bit;
                if let Err(e) = check_fixed_point(&f) {
                    panic!("{e}");
                }
            }
        }
    }
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let mut bytes = vec![0u8];
    for _ in 0..200_000 {
        bytes.extend_from_slice(&[0xF8, 0x02, 0x19, 0xF8, 0x01]);
    }
    assert!(matches!(
        binary::decode(&bytes),
        Err(binary::DecodeError::TooDeep { .. })
    ));
}

#[test]
fn huge_declared_sizes_fail_without_allocating_them() {
    // LIST_16 of 65535 children / 65535-item node / BINARY_32 of 4 GiB, with no data behind.
    for hex in [
        "00f8021af9ffff",
        "00f9ffff19",
        "00f80219feffffffff",
        "00f80219fdffffff",
    ] {
        let bytes = hex::decode(hex).expect("hex");
        assert!(binary::decode(&bytes).is_err(), "{hex}");
    }
}

fn corrupt(frame: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut f = frame.to_vec();
    for &(pos, kind, byte) in edits {
        if f.is_empty() {
            f.push(byte);
            continue;
        }
        let i = pos % f.len();
        match kind % 4 {
            0 => f[i] = byte,
            1 => f[i] ^= byte,
            2 => f.insert(i, byte),
            _ => {
                f.remove(i);
            }
        }
    }
    f
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn random_corruptions_of_vector_frames_never_panic(
        pick in any::<proptest::sample::Index>(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8),
    ) {
        let frame = pick.get(small_corpus());
        let f = corrupt(frame, &edits);
        check_fixed_point(&f).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn random_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..256), start in any::<u8>()) {
        // Bias towards plausible starts: flags 0, then a list header.
        if !bytes.is_empty() && start % 2 == 0 {
            bytes[0] = 0;
            if bytes.len() > 1 { bytes[1] = 0xF8; }
        }
        check_fixed_point(&bytes).map_err(TestCaseError::fail)?;
    }
}
