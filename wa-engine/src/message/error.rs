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
    /// A poll with fewer than two options, duplicate options, or more selectable options
    /// than it has ([`rich::poll_creation`](super::rich::poll_creation)).
    #[error("invalid poll")]
    InvalidPoll,
    /// A poll vote that does not decrypt with the poll's message secret (wrong secret,
    /// creator or voter, or a corrupt payload; whatsmeow `msgsecret.go`).
    #[error("cannot decrypt poll vote")]
    PollVoteDecrypt,
}
