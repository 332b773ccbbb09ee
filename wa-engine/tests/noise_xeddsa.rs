//! XEdDSA (libsignal "curve25519 signatures"): verify vectors from shared/protocol/04 §10
//! (signatures produced by libsignal-node), sign -> verify round trips, and rejection of any
//! flipped bit.

use wa_engine::signal::xeddsa;

fn h32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn h64(s: &str) -> [u8; 64] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// shared/protocol/04 §10.1 (IK_B) and §10.4 (signed-prekey signature, sign bit 0).
const IK_B_PRIV: &str = "30c9c5ecca8878f5cb975e2fb1da306e94b74174cc3b2127b62b6809e3256362";
const IK_B_PUB: &str = "0ee5c8ece14cbd4dca131f847b01caee73ebfc1facf2c45fef758844dc48bf4b";
const SPK_B_PUB: &str = "b3baa292a2795c2176a84304a1101f60df357e93be0a86d2655ad7aad3456227";
const SPK_SIGNATURE: &str = "c63bcaecdfeefad92f6d2a7f5e6d1edce3cc9c1586e954b7475fd815324be3c73928d6b267051ec330fc403d7c077cf931fcb085230c8c449ed84d905edbd405";

/// shared/protocol/04 §10.3 (sender-key message signature, sign bit 1).
const SK_SIGNING_PRIV: &str = "f88ef544117557c4d326f121a4dc1ea5d3ec553a0076b9ecb03f69d650d9576c";
const SK_SIGNING_PUB: &str = "1c3d1d31cb72e3759ee784ff96bcbbed148250589771e2d22b78c12e9cf11411";
const SK_SIGNED_PART: &str = "3308e78a8d0910001a10d4edc5217dafe7e828ddb8fce7580567";
const SK_SIGNATURE: &str = "a5ee575003ac887f6b33ef50a447db5157e1efbeabcc8c4826cc78686b2db02dda06dcaf0250551e9d6aeeaa3a5cf55696c152f4b26bcd9bb851835f4b48688f";

fn spk_message() -> Vec<u8> {
    let mut m = vec![0x05];
    m.extend_from_slice(&h32(SPK_B_PUB));
    m
}

#[test]
fn verifies_libsignal_signed_prekey_signature() {
    let sig = h64(SPK_SIGNATURE);
    assert_eq!(sig[63] & 0x80, 0, "vector has sign bit 0");
    assert!(xeddsa::verify(&h32(IK_B_PUB), &spk_message(), &sig));
}

#[test]
fn verifies_libsignal_signature_with_sign_bit_set() {
    let sig = h64(SK_SIGNATURE);
    assert_eq!(sig[63] & 0x80, 0x80, "vector has sign bit 1");
    let msg = hex::decode(SK_SIGNED_PART).unwrap();
    assert!(xeddsa::verify(&h32(SK_SIGNING_PUB), &msg, &sig));
}

#[test]
fn public_key_matches_vector_keys() {
    assert_eq!(xeddsa::public_key(&h32(IK_B_PRIV)), h32(IK_B_PUB));
    assert_eq!(
        xeddsa::public_key(&h32(SK_SIGNING_PRIV)),
        h32(SK_SIGNING_PUB)
    );
}

#[test]
fn any_flipped_bit_in_signature_message_or_key_fails() {
    let key = h32(IK_B_PUB);
    let msg = spk_message();
    let sig = h64(SPK_SIGNATURE);
    // Every bit of the edge bytes of R and S (incl. the sign bit), one bit of every other byte
    // (debug-mode curve arithmetic is slow; this still touches all 64 bytes).
    let sig_bits =
        (0..512).filter(|bit| matches!(bit / 8, 0 | 31 | 32 | 63) || bit % 8 == (bit / 8) % 8);
    for bit in sig_bits {
        let mut bad = sig;
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(!xeddsa::verify(&key, &msg, &bad), "signature bit {bit}");
    }
    for bit in (0..msg.len() * 8).step_by(11) {
        let mut bad = msg.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(!xeddsa::verify(&key, &bad, &sig), "message bit {bit}");
    }
    for bit in (0..255).step_by(11) {
        let mut bad = key;
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(!xeddsa::verify(&bad, &msg, &sig), "key bit {bit}");
    }
}

#[test]
fn sign_then_verify_round_trips_for_both_sign_bits() {
    let mut seen_sign_bits = [false; 2];
    for i in 0_u8..32 {
        let private = [i.wrapping_mul(37).wrapping_add(1); 32];
        let public = xeddsa::public_key(&private);
        let msg = [i; 40];
        let sig = xeddsa::sign(&private, &msg, &[i ^ 0x5a; 64]);
        seen_sign_bits[usize::from(sig[63] >> 7)] = true;
        assert!(xeddsa::verify(&public, &msg, &sig), "key {i}");
        assert!(!xeddsa::verify(&public, &msg[1..], &sig), "key {i}");
    }
    assert_eq!(
        seen_sign_bits,
        [true, true],
        "both Edwards sign bits exercised"
    );
}

#[test]
fn signatures_are_randomised_but_all_verify() {
    let private = h32(IK_B_PRIV);
    let msg = spk_message();
    let a = xeddsa::sign(&private, &msg, &[1; 64]);
    let b = xeddsa::sign(&private, &msg, &[2; 64]);
    assert_ne!(a, b);
    assert!(xeddsa::verify(&h32(IK_B_PUB), &msg, &a));
    assert!(xeddsa::verify(&h32(IK_B_PUB), &msg, &b));
}

#[test]
fn rejects_non_canonical_s() {
    let private = h32(IK_B_PRIV);
    let msg = b"m";
    let mut sig = xeddsa::sign(&private, msg, &[9; 64]);
    // Set a high bit of S (below the sign bit): S becomes >= 2^252 > l.
    sig[63] |= 0x40;
    assert!(!xeddsa::verify(&h32(IK_B_PUB), msg, &sig));
}
