//! Errors of history-sync processing.

/// A history-sync blob that cannot be used. None of the variants carries key material or
/// history content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The notification lacks a field the download needs (`mediaKey`).
    #[error("history sync notification lacks {0}")]
    MissingField(&'static str),
    /// Media decryption or verification failed (MAC, hashes, length, padding).
    #[error("history sync blob does not verify")]
    Media(#[source] crate::media::MediaError),
    /// The decrypted blob is not a valid zlib stream.
    #[error("history sync blob does not inflate")]
    Inflate(#[source] flate2::DecompressError),
    /// The zlib stream ended early (no end-of-stream marker).
    #[error("history sync blob's zlib stream is truncated")]
    TruncatedStream,
    /// Inflating would exceed the configured cap ([`HistoryConfig::max_inflated`](super::HistoryConfig::max_inflated)):
    /// an inflate bomb or a chunk too large for this client.
    #[error("history sync blob inflates to more than {limit} bytes")]
    TooLarge {
        /// The cap, bytes.
        limit: usize,
    },
    /// The inflated bytes are not a valid protobuf wire format.
    #[error("history sync protobuf is malformed at byte {offset}")]
    Malformed {
        /// Offset in the inflated bytes.
        offset: usize,
    },
    /// A top-level field of `HistorySync` does not decode.
    #[error("history sync field {what} does not decode")]
    Protobuf {
        /// Which message.
        what: &'static str,
        /// The decoder's error.
        #[source]
        source: prost::DecodeError,
    },
}
