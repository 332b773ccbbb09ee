//! Errors of app-state sync: every check of shared/protocol/08 §6.5 has its own variant.

/// A failure decoding, verifying, applying or encoding app state.
///
/// None of the variants carries key material or plaintext; a key id is not secret (the
/// server sees it in every record). Any MAC or LTHash failure means the collection's local
/// state can no longer be trusted: the state is left unchanged and the caller should
/// resync the collection from a snapshot (shared/protocol/08 §6.5, "rebuild from a snapshot
/// on any mismatch").
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppStateError {
    /// No app-state sync key with this id is known. The caller asks the primary phone for it
    /// (`APP_STATE_SYNC_KEY_REQUEST` peer message, shared/protocol/08 §2.2) and retries after
    /// the key share arrives.
    #[error("app-state sync key {} is missing", hex_id(key_id))]
    MissingKey {
        /// The `keyId` bytes of the missing key.
        key_id: Vec<u8>,
    },
    /// A required protobuf field or node is absent.
    #[error("app-state message lacks {0}")]
    MissingField(&'static str),
    /// A protobuf did not decode.
    #[error("app-state protobuf {what} does not decode")]
    Protobuf {
        /// Which message.
        what: &'static str,
        /// The decoder's error.
        #[source]
        source: prost::DecodeError,
    },
    /// A `SyncdValue.blob` is shorter than IV (16) + one AES block (16) + value MAC (32).
    #[error("app-state value blob of {len} bytes is too short")]
    ValueBlobTooShort {
        /// The blob's length, bytes.
        len: usize,
    },
    /// A `SyncdIndex.blob` is not a 32-byte MAC.
    #[error("app-state index MAC must be 32 bytes, got {len}")]
    BadIndexMacLength {
        /// The blob's length, bytes.
        len: usize,
    },
    /// The value MAC (HMAC-SHA512, first 32 bytes) of a record does not verify.
    #[error("app-state value MAC mismatch")]
    ValueMacMismatch,
    /// The value decrypted to bad PKCS#7 padding (after its MAC verified).
    #[error("app-state value does not decrypt")]
    BadPadding,
    /// The index MAC of a record does not match HMAC-SHA256(indexKey, decrypted index).
    #[error("app-state index MAC mismatch")]
    IndexMacMismatch,
    /// The decrypted index is not a JSON array of strings.
    #[error("app-state index is not a JSON array of strings")]
    BadIndex(#[source] serde_json::Error),
    /// A snapshot's MAC does not match the LTHash of its records.
    #[error("app-state snapshot MAC mismatch")]
    SnapshotMacMismatch,
    /// A patch's `snapshotMac` does not match the local LTHash after applying it: the local
    /// state and the server's disagree (whatsmeow `ErrMismatchingLTHash`).
    #[error("app-state LTHash mismatch after patch {version}")]
    LtHashMismatch {
        /// The patch's version.
        version: u64,
    },
    /// A patch's `patchMac` does not verify (whatsmeow `ErrMismatchingPatchMAC`).
    #[error("app-state patch MAC mismatch in patch {version}")]
    PatchMacMismatch {
        /// The patch's version.
        version: u64,
    },
    /// A patch is not newer than the local state (the server returned one we already have,
    /// e.g. our own). Nothing was applied; the caller may skip it.
    #[error("app-state patch {patch_version} is not newer than local version {local_version}")]
    StalePatch {
        /// The patch's version.
        patch_version: u64,
        /// The local collection version.
        local_version: u64,
    },
    /// A patch names external mutations but the caller did not supply the downloaded blob.
    #[error("app-state patch {version} has external mutations that were not supplied")]
    ExternalMutationsMissing {
        /// The patch's version.
        version: u64,
    },
    /// An external blob (snapshot or mutations) failed media decryption or verification.
    #[error("app-state external blob does not verify")]
    Blob(#[source] crate::media::MediaError),
    /// A collection name outside the five of shared/protocol/08 §1.
    #[error("unknown app-state collection {0:?}")]
    UnknownCollection(String),
    /// A numeric attribute of the `w:sync:app:state` response does not parse.
    #[error("app-state response attribute {0} is malformed")]
    BadAttribute(&'static str),
    /// The IQ answered `type="error"` as a whole.
    #[error("app-state IQ failed with code {code}")]
    IqFailed {
        /// The `<error code>`.
        code: u16,
    },
}

/// Key ids as lower-case hex in messages (ids are opaque bytes, not secrets).
fn hex_id(id: &[u8]) -> String {
    use std::fmt::Write as _;
    id.iter()
        .fold(String::with_capacity(id.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
