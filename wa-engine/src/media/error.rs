//! Errors of the media layer: key parsing, decryption and verification of an enc file.
//!
//! Each variant names the check that failed, in the order the [`Decryptor`](super::Decryptor)
//! runs them (whatsmeow `download.go` downloadAndDecrypt/validateMedia). None carries key
//! material or plaintext, so they are safe to log. A detailed error can still tell an attacker
//! which check failed; do not echo it to a peer.

use std::fmt;

/// Which SHA-256 of a media file failed to match the value the message announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashKind {
    /// `fileSha256`: SHA-256 of the plaintext.
    FileSha256,
    /// `fileEncSha256`: SHA-256 of the enc file (ciphertext ‖ 10-byte MAC).
    FileEncSha256,
}

impl fmt::Display for HashKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::FileSha256 => "fileSha256",
            Self::FileEncSha256 => "fileEncSha256",
        })
    }
}

/// Any failure of media key handling, decryption or verification.
///
/// A caller that streamed plaintext out of a [`Decryptor`](super::Decryptor) before
/// `finish` must discard all of it when any of these is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// A media key was not 32 bytes long (the `mediaKey` message field).
    #[error("media key must be 32 bytes, got {0}")]
    BadKeyLength(usize),
    /// The enc file is shorter than one AES block (16 bytes) plus the 10-byte MAC, the least
    /// any encryption produces (whatsmeow rejects files of 10 bytes or less as too short).
    #[error("encrypted media is truncated: {len} bytes, need at least 26")]
    Truncated {
        /// Length of the enc file received, bytes.
        len: u64,
    },
    /// The MAC (`HMAC-SHA256(macKey, iv ‖ ciphertext)[..10]`) does not match the last 10 bytes
    /// of the enc file: wrong key, wrong media type, or tampered or corrupted bytes.
    #[error("media MAC mismatch")]
    MacMismatch,
    /// A SHA-256 differs from the one the message announced.
    #[error("{which} mismatch")]
    HashMismatch {
        /// Which of the two hashes failed.
        which: HashKind,
    },
    /// The ciphertext (enc file minus the MAC) is not a whole number of 16-byte blocks,
    /// although its MAC verified.
    #[error("media ciphertext is not a multiple of the 16-byte AES block")]
    NotBlockAligned,
    /// The last block does not end in valid PKCS#7 padding, although its MAC verified.
    #[error("bad PKCS#7 padding in media ciphertext")]
    BadPadding,
    /// The plaintext length differs from the announced `fileLength`.
    #[error("media file length mismatch: expected {expected} bytes, got {actual}")]
    LengthMismatch {
        /// The announced `fileLength`, bytes.
        expected: u64,
        /// The decrypted length, bytes.
        actual: u64,
    },
    /// More enc bytes arrived than the announced `fileLength` allows (padded length + MAC);
    /// raised while streaming so a hostile server cannot feed an endless body.
    #[error("encrypted media exceeds {limit} bytes allowed by the announced file length")]
    TooLong {
        /// The most enc bytes the announced file length allows.
        limit: u64,
    },
    /// The decryptor already returned an error; it must be dropped with its output.
    #[error("media decryptor used after an error")]
    Poisoned,
    /// The reader or writer wrapped by an I/O adapter failed.
    #[error("media stream I/O failed")]
    Io(#[source] std::io::Error),
}
