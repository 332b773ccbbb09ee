//! Helpers shared by the fuzz targets (included with `#[path]`; each target uses a part).

#![allow(dead_code)]

use std::convert::Infallible;

use rand_core::{TryCryptoRng, TryRng};

/// A deterministic RNG (splitmix64). NOT secure: it only makes runs reproducible, which is
/// what a fuzz target needs from the randomness the engine's Signal / pairing calls draw.
pub struct FuzzRng(u64);

impl FuzzRng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl TryRng for FuzzRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.next() as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.next())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

impl TryCryptoRng for FuzzRng {}

/// Reads control values off the front of a fuzz input; runs dry gracefully (zeros).
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Wraps `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// The next byte, 0 once the input is exhausted.
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    /// The next two bytes as a little-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// Up to `n` next bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// Everything left.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// Applies input-driven edits to a copy of `original`: `count` edits of (kind, position,
/// value) that flip, overwrite, insert or delete bytes, or truncate. Lets the fuzzer reach
/// the code behind a MAC by starting from a real authenticated message.
pub fn mutate(original: &[u8], input: &mut Input<'_>) -> Vec<u8> {
    let mut out = original.to_vec();
    let count = input.byte() % 4;
    for _ in 0..count {
        let kind = input.byte() % 5;
        let pos = usize::from(input.u16());
        let value = input.byte();
        let len = out.len();
        match kind {
            0 if len > 0 => out[pos % len] ^= value.max(1),
            1 if len > 0 => out[pos % len] = value,
            2 => out.insert(pos % (len + 1), value),
            3 if len > 0 => {
                out.remove(pos % len);
            }
            4 => out.truncate(pos % (len + 1)),
            _ => {}
        }
    }
    out
}

pub mod parsers;
