//! One-time codes: generated here, sent as a message, stored only as a keyed hash.
//!
//! The record per (session, recipient) holds HMAC-SHA256(pepper, session 0 recipient 0
//! otp-id 0 code) with the pepper kept in the server database, the expiry and the attempt
//! counter. Verification compares hashes in constant time, burns the code after
//! `max_attempts` wrong guesses, and consumes it on success (single use). A consumed record is
//! kept (without a usable hash) until the next code, so the per-recipient interval still holds.

use hmac::{Hmac, KeyInit, Mac};
use rand::RngExt as _;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// A code of `digits` decimal digits, uniform (each digit drawn from the thread RNG).
pub(crate) fn generate(digits: u8) -> String {
    let mut rng = rand::rng();
    (0..digits)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// The stored hash of `code`, hex.
pub(crate) fn hash(
    pepper: &[u8; 32],
    session: &str,
    recipient: &str,
    id: &str,
    code: &str,
) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(pepper) else {
        return String::new();
    };
    for part in [session, recipient, id, code] {
        mac.update(part.as_bytes());
        mac.update(b"\0");
    }
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time comparison of two hex hashes.
pub(crate) fn hashes_equal(a: &str, b: &str) -> bool {
    !a.is_empty() && a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The message text: `{code}` and `{minutes}` substituted.
pub(crate) fn render(template: &str, code: &str, ttl_secs: u64) -> String {
    let minutes = ttl_secs.div_ceil(60).max(1);
    template
        .replace("{code}", code)
        .replace("{minutes}", &minutes.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_requested_number_of_digits() {
        for digits in [4u8, 6, 10] {
            let code = generate(digits);
            assert_eq!(code.len(), usize::from(digits));
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn hash_binds_code_recipient_and_id() {
        let p = [1u8; 32];
        let h = hash(&p, "s", "628123", "otp1", "123456");
        assert!(hashes_equal(&h, &hash(&p, "s", "628123", "otp1", "123456")));
        assert!(!hashes_equal(
            &h,
            &hash(&p, "s", "628123", "otp1", "123457")
        ));
        assert!(!hashes_equal(
            &h,
            &hash(&p, "s", "628124", "otp1", "123456")
        ));
        assert!(!hashes_equal(
            &h,
            &hash(&p, "s", "628123", "otp2", "123456")
        ));
        assert!(!hashes_equal("", ""));
    }

    #[test]
    fn template_substitutes_code_and_minutes() {
        assert_eq!(
            render("Code {code}, valid {minutes} min", "042917", 90),
            "Code 042917, valid 2 min"
        );
    }
}
