//! The hash behind the token perfect-hash table.
//!
//! This file is compiled twice: by `build.rs` (which searches for displacements
//! that make the table collision-free) and by the crate (which looks strings up
//! at run time). Both must agree bit for bit, so it lives in one file that
//! `build.rs` includes with `#[path]`.

/// Multiplier from the 64-bit finaliser of MurmurHash3 (public domain).
const K1: u64 = 0xff51_afd7_ed55_8ccd;
/// Second MurmurHash3 finaliser multiplier.
const K2: u64 = 0xc4ce_b9fe_1a85_ec53;

/// Hashes `bytes` with `seed` into 64 bits.
///
/// Reads eight bytes at a time (tokens are at most 48 bytes), so a lookup costs
/// a handful of multiplications. Quality only has to be good enough for the
/// build-time displacement search to succeed, which `build.rs` checks.
#[inline]
pub(crate) fn hash(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(K1);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(K1);
        h ^= h >> 32;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(K2);
    }
    // fmix64 from MurmurHash3.
    h ^= h >> 33;
    h = h.wrapping_mul(K1);
    h ^= h >> 33;
    h = h.wrapping_mul(K2);
    h ^= h >> 33;
    h
}

/// Splits a hash into the bucket selector and the two displacement inputs.
///
/// Returns `(bucket_hash, f1, f2)`; the slot of a key in bucket `b` with
/// displacement `(d1, d2)` is `(f1 + d1 * f2 + d2) % slots` (the "hash and
/// displace" scheme of Belazzougui, Botelho and Dietzfelbinger, CHD).
#[inline]
pub(crate) fn split(h: u64) -> (u32, u32, u32) {
    let g = (h >> 40) as u32;
    let f1 = h as u32;
    let f2 = ((h >> 20) as u32) | 1;
    (g, f1, f2)
}

/// The slot a key lands in, given its split hash and its bucket's displacement.
#[inline]
pub(crate) fn slot(f1: u32, f2: u32, d1: u32, d2: u32, slots: u32) -> u32 {
    f1.wrapping_add(d1.wrapping_mul(f2)).wrapping_add(d2) % slots
}
