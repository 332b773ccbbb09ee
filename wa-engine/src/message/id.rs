//! Message ids (shared/protocol/05-messages-receipts.md §4).

use std::fmt;

use rand_core::CryptoRng;
use sha2::{Digest as _, Sha256};

/// The id of a message stanza: opaque, non-empty, unique per sender. Ours are WA Web's
/// `3EB0` + 18 upper-case hex digits; received ids may have any shape (05 §4).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub String);

impl MessageId {
    /// Draws a new id: `"3EB0"` + upper-case hex of the first 9 bytes of
    /// `SHA-256(u64_be(unix_secs) ‖ own_user ‖ "@c.us" ‖ 16 random bytes)` (whatsmeow
    /// `send.go` GenerateMessageID; Baileys generateMessageIDV2 hashes a zero-padded buffer,
    /// same format).
    pub fn generate<R: CryptoRng + ?Sized>(unix_secs: u64, own_user: &str, rng: &mut R) -> Self {
        let mut random = [0_u8; 16];
        rng.fill_bytes(&mut random);
        let mut hasher = Sha256::new();
        hasher.update(unix_secs.to_be_bytes());
        hasher.update(own_user.as_bytes());
        hasher.update(b"@c.us");
        hasher.update(random);
        let digest = hasher.finalize();
        let mut id = String::with_capacity(22);
        id.push_str("3EB0");
        for b in &digest[..9] {
            id.push_str(&format!("{b:02X}"));
        }
        Self(id)
    }

    /// The id string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for MessageId {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for MessageId {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl AsRef<str> for MessageId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;
    use rand::rngs::StdRng;

    #[test]
    fn generated_ids_have_wa_web_shape_and_differ() {
        let mut rng = StdRng::seed_from_u64(3);
        let a = MessageId::generate(1_700_000_000, "15551234567", &mut rng);
        let b = MessageId::generate(1_700_000_000, "15551234567", &mut rng);
        assert_eq!(a.as_str().len(), 22);
        assert!(a.as_str().starts_with("3EB0"));
        assert!(
            a.as_str()[4..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
        assert_ne!(a, b);
    }
}
