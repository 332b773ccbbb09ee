//! LTHash "WhatsApp Patch Integrity": a 128-byte homomorphic summary of a collection's
//! value MACs (shared/protocol/08 §6.3; whatsmeow `appstate/lthash/lthash.go`).

use std::fmt;

use hkdf::Hkdf;
use sha2::Sha256;

/// Length of an LTHash state, bytes: 64 little-endian `u16` words.
pub const LTHASH_LEN: usize = 128;

/// HKDF info each input is expanded with before it is added or subtracted.
const INFO: &[u8] = b"WhatsApp Patch Integrity";

/// An LTHash state. `add(m)` adds `HKDF-SHA256(m, salt none, "WhatsApp Patch Integrity",
/// 128)` word by word (16-bit little-endian, wrapping); `subtract` subtracts it. Order
/// does not matter, so the state of a collection depends only on its live value MACs.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LtHash([u8; LTHASH_LEN]);

impl Default for LtHash {
    fn default() -> Self {
        Self([0; LTHASH_LEN])
    }
}

impl LtHash {
    /// Wraps 128 state bytes (e.g. loaded from a store).
    #[must_use]
    pub fn from_bytes(bytes: [u8; LTHASH_LEN]) -> Self {
        Self(bytes)
    }

    /// The 128 state bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; LTHASH_LEN] {
        &self.0
    }

    /// The 128-byte HKDF expansion of one input (exposed for the vectors).
    #[must_use]
    pub fn expand(input: &[u8]) -> [u8; LTHASH_LEN] {
        let mut okm = [0_u8; LTHASH_LEN];
        if Hkdf::<Sha256>::new(None, input)
            .expand(INFO, &mut okm)
            .is_err()
        {
            unreachable!("HKDF-SHA256 expands 128 bytes");
        }
        okm
    }

    /// Adds one input (a value MAC).
    pub fn add(&mut self, input: &[u8]) {
        self.combine(&Self::expand(input), u16::wrapping_add);
    }

    /// Subtracts one input (a value MAC that was added before).
    pub fn subtract(&mut self, input: &[u8]) {
        self.combine(&Self::expand(input), u16::wrapping_sub);
    }

    fn combine(&mut self, expanded: &[u8; LTHASH_LEN], op: fn(u16, u16) -> u16) {
        for (word, other) in self.0.chunks_exact_mut(2).zip(expanded.chunks_exact(2)) {
            let a = u16::from_le_bytes([word[0], word[1]]);
            let b = u16::from_le_bytes([other[0], other[1]]);
            word.copy_from_slice(&op(a, b).to_le_bytes());
        }
    }
}

impl fmt::Debug for LtHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not secret (derived from MACs the server stores), but long: show the first bytes.
        write!(f, "LtHash({:02x?}..)", &self.0[..4])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_then_subtract_returns_to_zero() {
        let mut h = LtHash::default();
        h.add(b"one");
        h.add(b"two");
        h.subtract(b"one");
        h.subtract(b"two");
        assert_eq!(h, LtHash::default());
    }

    #[test]
    fn order_does_not_matter() {
        let (mut a, mut b) = (LtHash::default(), LtHash::default());
        a.add(b"x");
        a.add(b"y");
        b.add(b"y");
        b.add(b"x");
        assert_eq!(a, b);
        assert_ne!(a, LtHash::default());
    }
}
