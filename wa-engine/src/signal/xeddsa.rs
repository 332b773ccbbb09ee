//! XEdDSA signatures over Curve25519 (Montgomery) keys, as libsignal implements them.
//!
//! Signal's "curve25519 signatures" sign with an X25519 private key and are checked against
//! an X25519 public key (the 32-byte Montgomery u-coordinate). The signer converts its key
//! to Edwards form and signs Ed25519-style; the sign bit of its Edwards public key travels in
//! the top bit of the signature's last byte, so the verifier can recover the exact Edwards
//! point from the u-coordinate. This differs from the XEdDSA paper (which negates the
//! private scalar to force sign bit 0); only verification has to interoperate, and it does.
//!
//! Sources: shared/protocol/04 §3; libsignal-protocol-go `ecc/SignCurve25519.go`;
//! whatsapp-rust `wacore/libsignal/src/core/curve/curve25519.rs`; libsignal's
//! `curve_sigs.c` (`curve25519_sign`, `crypto_sign_modified`).
//!
//! Signatures are randomised: [`sign`] takes the 64 random bytes `Z` as an argument so that
//! callers (and tests) control randomness; [`sign_with_rng`] draws them from an RNG.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::{Scalar, clamp_integer};
use rand_core::CryptoRng;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// Length of a signature in bytes: `R` (32) followed by `S` (32), sign bit in byte 63's top bit.
pub const SIGNATURE_LEN: usize = 64;

/// Signs `message` with the X25519 private key `private_key` (32 bytes, clamped on use).
///
/// `random` is the 64-byte nonce input `Z`; it must be fresh and secret for each signature
/// (reusing it with a different message leaks the key). Returns the 64-byte signature
/// `R || S` with the Edwards sign bit of the signer's public key in bit 7 of byte 63.
///
/// Construction (libsignal `crypto_sign_modified`): `a = clamp(k)`, `A = a·B`,
/// `r = SHA-512(0xFE || 0xFF×31 || k || M || Z) mod ℓ`, `R = r·B`,
/// `h = SHA-512(R || A || M) mod ℓ`, `S = h·a + r mod ℓ`.
#[must_use]
pub fn sign(private_key: &[u8; 32], message: &[u8], random: &[u8; 64]) -> [u8; SIGNATURE_LEN] {
    let mut clamped = clamp_integer(*private_key);
    let mut a = Scalar::from_bytes_mod_order(clamped);
    clamped.zeroize();
    let public_edwards = EdwardsPoint::mul_base(&a).compress();
    let sign_bit = public_edwards.as_bytes()[31] & 0x80;

    // The nonce hash covers the raw private key bytes, as libsignal does (not the clamped ones).
    let mut prefix = [0xFF_u8; 32];
    prefix[0] = 0xFE;
    let mut hasher = Sha512::new();
    hasher.update(prefix);
    hasher.update(private_key);
    hasher.update(message);
    hasher.update(random);
    let mut nonce_wide: [u8; 64] = hasher.finalize().into();
    let mut r = Scalar::from_bytes_mod_order_wide(&nonce_wide);
    nonce_wide.zeroize();
    let big_r = EdwardsPoint::mul_base(&r).compress();

    let h = challenge(&big_r, &public_edwards, message);
    let s = h * a + r;
    a.zeroize();
    r.zeroize();

    let mut signature = [0_u8; SIGNATURE_LEN];
    signature[..32].copy_from_slice(big_r.as_bytes());
    signature[32..].copy_from_slice(s.as_bytes());
    signature[63] = (signature[63] & 0x7F) | sign_bit;
    signature
}

/// Signs `message` like [`sign`], drawing the 64 random bytes from `rng`.
#[must_use]
pub fn sign_with_rng<R: CryptoRng + ?Sized>(
    private_key: &[u8; 32],
    message: &[u8],
    rng: &mut R,
) -> [u8; SIGNATURE_LEN] {
    let mut random = [0_u8; 64];
    rng.fill_bytes(&mut random);
    let signature = sign(private_key, message, &random);
    random.zeroize();
    signature
}

/// Checks an XEdDSA `signature` (64 bytes) over `message` against the X25519 public key
/// `public_key` (32-byte Montgomery u-coordinate). Returns `true` only if it is valid.
///
/// Steps (shared/protocol/04 §3): map `u` to the Edwards `y = (u-1)/(u+1)` with the sign bit
/// taken from bit 7 of `signature[63]`; clear that bit; reject an `S` that is not a canonical
/// scalar (libsignal rejects only `S` with any of its top three bits set; every honest signer
/// produces a reduced `S`, so being stricter rejects nothing real and closes malleability);
/// then check `R == S·B - h·A` with `h = SHA-512(R || A || M) mod ℓ`.
#[must_use]
pub fn verify(public_key: &[u8; 32], message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
    let sign_bit = (signature[63] & 0x80) >> 7;
    let Some(public_point) = MontgomeryPoint(*public_key).to_edwards(sign_bit) else {
        return false;
    };
    let public_edwards = public_point.compress();

    let mut r_bytes = [0_u8; 32];
    r_bytes.copy_from_slice(&signature[..32]);
    let big_r = CompressedEdwardsY(r_bytes);
    let mut s_bytes = [0_u8; 32];
    s_bytes.copy_from_slice(&signature[32..]);
    s_bytes[31] &= 0x7F;
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
        return false;
    };

    let h = challenge(&big_r, &public_edwards, message);
    let check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&h, &-public_point, &s);
    bool::from(check.compress().as_bytes().ct_eq(big_r.as_bytes()))
}

/// Returns the X25519 public key (Montgomery u, 32 bytes) of an X25519 private key.
#[must_use]
pub fn public_key(private_key: &[u8; 32]) -> [u8; 32] {
    MontgomeryPoint::mul_base_clamped(*private_key).to_bytes()
}

/// `SHA-512(R || A || M) mod ℓ`, the Ed25519 challenge.
fn challenge(
    big_r: &CompressedEdwardsY,
    public_edwards: &CompressedEdwardsY,
    message: &[u8],
) -> Scalar {
    let mut hasher = Sha512::new();
    hasher.update(big_r.as_bytes());
    hasher.update(public_edwards.as_bytes());
    hasher.update(message);
    let wide: [u8; 64] = hasher.finalize().into();
    Scalar::from_bytes_mod_order_wide(&wide)
}
