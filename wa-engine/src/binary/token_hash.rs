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

/// Number of slots in the table: a power of two so that reducing a hash is a
/// mask (load factor 1255/2048, which also keeps the build-time search short).
pub(crate) const SLOTS: u32 = 2048;
/// Number of displacement buckets (power of two, about 2.5 keys each).
pub(crate) const BUCKETS: u32 = 512;

#[inline]
fn word(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

#[inline]
fn half(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u64::from(u32::from_le_bytes(w))
}

/// Hashes `bytes` with `seed` into 64 bits.
///
/// One multiply per 8 bytes plus a short finaliser; tails are read as
/// overlapping words, so a token lookup costs a few nanoseconds. Quality only
/// has to be good enough for the build-time displacement search to succeed,
/// which `build.rs` checks.
#[inline]
pub(crate) fn hash(seed: u64, bytes: &[u8]) -> u64 {
    let n = bytes.len();
    let mut h = seed ^ (n as u64).wrapping_mul(K2);
    if n >= 8 {
        let mut at = 0;
        while at + 8 <= n {
            h = (h ^ word(bytes, at)).wrapping_mul(K1).rotate_left(31);
            at += 8;
        }
        if at < n {
            h = (h ^ word(bytes, n - 8)).wrapping_mul(K1).rotate_left(31);
        }
    } else if n >= 4 {
        h = (h ^ (half(bytes, n - 4) << 32 | half(bytes, 0))).wrapping_mul(K1);
    } else if n > 0 {
        let t = u64::from(bytes[0]) | u64::from(bytes[n / 2]) << 8 | u64::from(bytes[n - 1]) << 16;
        h = (h ^ t).wrapping_mul(K1);
    }
    h ^= h >> 32;
    h = h.wrapping_mul(K2);
    h ^ (h >> 29)
}

/// Splits a hash into the bucket and the two displacement inputs.
///
/// Returns `(bucket, f1, f2)`; the slot of a key in a bucket with
/// displacement `(d1, d2)` is `(f1 + d1 * f2 + d2) mod SLOTS` (the "hash and
/// displace" scheme of Belazzougui, Botelho and Dietzfelbinger, CHD).
#[inline]
pub(crate) fn split(h: u64) -> (u32, u32, u32) {
    let bucket = (h >> 55) as u32 & (BUCKETS - 1);
    let f1 = h as u32;
    let f2 = ((h >> 32) as u32) | 1;
    (bucket, f1, f2)
}

/// The slot a key lands in, given its split hash and its bucket's displacement.
#[inline]
pub(crate) fn slot(f1: u32, f2: u32, d1: u32, d2: u32) -> u32 {
    f1.wrapping_add(d1.wrapping_mul(f2)).wrapping_add(d2) & (SLOTS - 1)
}

/// A 15-bit fingerprint of a hash with the top bit set (so it is never 0, the mark of an
/// empty slot): most strings that are not tokens are rejected by comparing it with the
/// slot's, from a table small enough to stay in L1, before any string is compared.
#[inline]
pub(crate) fn fingerprint(h: u64) -> u16 {
    ((h >> 40) as u16 & 0x7FFF) | 0x8000
}
