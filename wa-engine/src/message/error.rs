//! Errors of the message layer: parsing incoming message stanzas and their plaintexts.

/// A message stanza or a decrypted payload that cannot be used.
///
/// Carries no plaintext or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// A required attribute is missing or malformed (`from`, `id`, `t`, `participant`).
    #[error("message stanza without a valid `{0}` attribute")]
    MissingAttribute(&'static str),
    /// The random padding after decryption is malformed (05 §3).
    #[error("bad message padding")]
    BadPadding,
    /// The plaintext is not a `Message` protobuf (NACK 491 territory, 05 §11).
    #[error("invalid message protobuf")]
    InvalidProtobuf,
    /// The JID cannot be addressed (not a user, group or own device).
    #[error("cannot address this JID")]
    InvalidJid,
}
