//! Errors of the Signal layer.
//!
//! Variants name what the caller can act on: a missing session or prekey (send a
//! retry receipt, shared/protocol/04-signal.md §8.2–8.3), a duplicate (drop it), a
//! changed identity (ask the user / refetch), a malformed message (peer misbehaviour).
//! Like snow's `Error`, the detail is deliberately coarse where more would help an
//! attacker: a bad MAC and a bad padding after a good MAC are told apart only because
//! the MAC is checked first.

use crate::store::StoreError;

/// Any failure of a Signal operation (pairwise session or sender key).
///
/// Nothing here carries key material or plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignalError {
    /// The message authentication code of a `msg` (or of the `msg` inside a `pkmsg`)
    /// did not verify with any session state of the address.
    #[error("message authentication failed")]
    InvalidMac,

    /// The message key for this counter (or sender-key iteration) was already used or
    /// was never kept: a replay or a message older than every stored key
    /// (libsignal `DuplicatedMessage`; LSN "Key used already or never filled").
    #[error("duplicate or too old message (counter {counter})")]
    DuplicateMessage {
        /// The counter (pairwise) or iteration (sender key) carried by the message.
        counter: u32,
    },

    /// The message is further ahead of its chain than the limit allows
    /// (shared/protocol/04-signal.md §6.5, §9.5).
    #[error("message is {jump} keys ahead of its chain (limit {limit})")]
    TooManySkipped {
        /// How many message keys would have to be derived and skipped.
        jump: u32,
        /// The limit in force.
        limit: u32,
    },

    /// A chain reached counter 2^32 − 1: it cannot give another message key without
    /// reusing one. Start a new session (pairwise) or a new sender key (group).
    #[error("chain counter exhausted")]
    CounterExhausted,

    /// No session exists for the address (encrypt before a bundle was processed, or a
    /// `msg` from a device we have no session with).
    #[error("no session for this address")]
    NoSession,

    /// The remote identity key differs from the one we trust for this address and the
    /// trust policy refused it (shared/protocol/04-signal.md §8.5).
    #[error("untrusted identity key for this address")]
    UntrustedIdentity,

    /// A `pkmsg` names a one-time prekey id we do not have (already consumed, or never
    /// ours).
    #[error("unknown one-time prekey id {id}")]
    InvalidPreKeyId {
        /// The prekey id from the message.
        id: u32,
    },

    /// A `pkmsg` names a signed prekey id we do not have.
    #[error("unknown signed prekey id {id}")]
    InvalidSignedPreKeyId {
        /// The signed prekey id from the message.
        id: u32,
    },

    /// An XEdDSA signature did not verify: a signed prekey in a bundle, or a sender-key
    /// message (shared/protocol/04-signal.md §3).
    #[error("signature verification failed")]
    BadSignature,

    /// No sender key state with the message's key id exists for this (group, sender)
    /// (whatsmeow then marks the message unavailable and asks for a retry, 04 §9.5).
    #[error("no sender key state for key id {key_id}")]
    NoSenderKey {
        /// The key id carried by the message (0 when there is no record at all).
        key_id: u32,
    },

    /// The device credentials (our identity key and signed prekey) are missing from
    /// the store: the device was never set up.
    #[error("no local identity in the store")]
    NoCredentials,

    /// The bytes are not a well-formed message of the expected kind.
    #[error("invalid message: {defect}")]
    InvalidMessage {
        /// What is wrong with it.
        defect: MessageDefect,
    },

    /// A stored session, prekey or sender key record does not decode.
    #[error("stored {what} is corrupt")]
    CorruptRecord {
        /// Which record.
        what: &'static str,
    },

    /// The store failed to read or write.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What is wrong with a malformed Signal message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageDefect {
    /// Shorter than the version byte plus its trailer (MAC or signature).
    #[error("too short")]
    TooShort,
    /// The version byte's high nibble is not 3 (shared/protocol/04-signal.md §7.1).
    #[error("unsupported version byte {0:#04x}")]
    Version(u8),
    /// The protobuf does not decode.
    #[error("protobuf does not decode")]
    Protobuf,
    /// A required protobuf field is absent.
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// A public key field is not 33 bytes starting with 0x05.
    #[error("malformed public key in {0}")]
    BadKey(&'static str),
    /// A chain key field is not 32 bytes.
    #[error("malformed chain key")]
    BadChainKey,
    /// The AES-CBC ciphertext is not a whole number of blocks or its PKCS#7 padding is
    /// wrong (only reachable after the MAC or signature verified).
    #[error("bad ciphertext padding")]
    BadPadding,
}

impl From<MessageDefect> for SignalError {
    fn from(defect: MessageDefect) -> Self {
        Self::InvalidMessage { defect }
    }
}
