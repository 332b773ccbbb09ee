//! Errors of the pairing layer (`pair`).

/// What went wrong while building or checking pairing data (QR string, pair-success,
/// phone-number pairing code).
///
/// Errors never carry key material. [`PairError::reply`] maps the pair-success checks to the
/// `<error code text>` the companion sends back (shared/protocol/03 §4.9).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PairError {
    /// The QR string does not have 4 or 5 comma-separated fields after the optional
    /// `https://wa.me/settings/linked_devices#` prefix (03 §4.3).
    #[error("QR string has {found} fields, expected 4 or 5")]
    QrFieldCount {
        /// Number of fields found.
        found: usize,
    },
    /// A QR field is not standard padded base64 or does not decode to 32 bytes.
    #[error("QR field `{field}` is not base64 of 32 bytes")]
    QrKey {
        /// Which field: `noise_pub`, `identity_pub` or `adv_secret`.
        field: &'static str,
    },
    /// The QR ref field is empty.
    #[error("QR ref is empty")]
    QrEmptyRef,
    /// The QR's fifth field is not a known client-type character (03 §4.3 table).
    #[error("QR client type is not a known platform character")]
    QrClientType,
    /// The phone number is not digits only, has 6 digits or fewer, or starts with `0`
    /// (03 §5.1; whatsmeow pair-code.go `PairPhone`).
    #[error("phone number must have more than 6 digits and must not start with 0")]
    InvalidPhoneNumber,
    /// The pairing code is not 8 ASCII letters or digits (03 §5.2).
    #[error("pairing code must be 8 ASCII letters or digits")]
    InvalidCode,
    /// A wrapped ephemeral key is not `salt (32) || iv (16) || ciphertext (32)` = 80 bytes.
    #[error("wrapped pairing key has {found} bytes, expected 80")]
    WrappedKeyLength {
        /// Length received.
        found: usize,
    },
    /// The wrapped key bundle is not `salt (32) || nonce (12) || ciphertext (112)` = 156 bytes.
    #[error("wrapped key bundle has {found} bytes, expected 156")]
    KeyBundleLength {
        /// Length received.
        found: usize,
    },
    /// AES-GCM authentication of the key bundle failed (wrong code, wrong ephemeral keys or a
    /// tampered bundle).
    #[error("key bundle failed authentication")]
    KeyBundleDecrypt,
    /// The key bundle names a different primary identity than the one doing the pairing
    /// (03 §5.8).
    #[error("key bundle names another primary identity")]
    KeyBundleIdentityMismatch,
    /// `link_code_pairing_ref` in primary_hello is not the ref received for companion_hello.
    #[error("pairing ref does not match the pending pairing-code request")]
    PairingRefMismatch,
    /// A protobuf inside pair-success or the pair-device-sign reply could not be decoded.
    #[error("cannot decode {what}")]
    Protobuf {
        /// Which message: `ADVSignedDeviceIdentityHMAC`, `ADVSignedDeviceIdentity`, ...
        what: &'static str,
    },
    /// A required node, attribute or protobuf field is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A JID attribute of pair-success could not be parsed.
    #[error("invalid JID in `{0}`")]
    InvalidJid(&'static str),
    /// The ADV HMAC over the signed device identity does not match (03 §4.7 step 3).
    #[error("ADV HMAC mismatch")]
    HmacMismatch,
    /// The account signature key is not 32 bytes or the signature not 64 bytes.
    #[error("invalid account signature key")]
    InvalidAccountKey,
    /// The account signature (primary over the device identity) does not verify (03 §4.7 step 5).
    #[error("account signature does not verify")]
    AccountSignatureMismatch,
    /// The device signature (companion over the device identity) does not verify; phone side
    /// check of the pair-device-sign reply (03 §4.10 step 6).
    #[error("device signature does not verify")]
    DeviceSignatureMismatch,
    /// The device identity details in the reply differ from the ones the phone sent.
    #[error("device identity details changed in the reply")]
    DetailsChanged,
    /// The server answered the pair-device-sign with an `<error>` or the reply is not a result.
    #[error("pair-device-sign reply is not a result IQ")]
    NotAResult,
}

impl PairError {
    /// The error reply a companion sends for this pair-success failure, as `(code, text)`
    /// (shared/protocol/03 §4.9; whatsmeow pair.go): 401 `hmac-mismatch`, 401
    /// `signature-mismatch`, 401 `invalid-key`, anything else 500 `internal-error`.
    pub fn reply(&self) -> (u16, &'static str) {
        match self {
            Self::HmacMismatch => (401, "hmac-mismatch"),
            Self::AccountSignatureMismatch => (401, "signature-mismatch"),
            Self::InvalidAccountKey => (401, "invalid-key"),
            _ => (500, "internal-error"),
        }
    }
}
