//! Errors returned by the sandbox's public API.

use std::io;

use wa_engine::pair::PairError;

/// Starting or running the sandbox failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// Binding the WebSocket or control listener failed.
    #[error("cannot bind {what} listener on {addr}")]
    Bind {
        /// Which listener: `"websocket"` or `"control"`.
        what: &'static str,
        /// The address we tried to bind.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Reading the local address of a bound listener failed.
    #[error("cannot read the local address of a listener")]
    LocalAddr(#[source] io::Error),
    /// Making the media host's TLS certificate or configuration failed
    /// ([`SandboxConfig::with_media_tls`](crate::SandboxConfig::with_media_tls)).
    #[error(transparent)]
    MediaTls(#[from] crate::MediaTlsError),
}

/// An operation on an account or its simulated primary phone failed.
///
/// Every variant has a stable machine-readable [`code`](Self::code), used by the
/// HTTP control API in `{"error": {"code", "message"}}` bodies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PhoneError {
    /// No account with this phone number exists.
    #[error("no account for phone number {0}")]
    NoSuchAccount(String),
    /// An account with this phone number already exists.
    #[error("an account for phone number {0} already exists")]
    AccountExists(String),
    /// The phone number is not digits only, is too short (7 digits or fewer) or starts with `0`
    /// (the rule clients apply too: shared/protocol/03 §5.1).
    #[error("invalid phone number {0:?}")]
    InvalidPhoneNumber(String),
    /// The QR string does not have the 4- or 5-field shape of shared/protocol/03 §4.3.
    #[error("malformed QR string")]
    MalformedQr(#[source] PairError),
    /// No live registration connection offers this QR ref (never issued, already used,
    /// or the connection closed).
    #[error("unknown QR ref")]
    UnknownRef,
    /// The QR ref was issued but its display window has passed.
    #[error("QR ref expired")]
    RefExpired,
    /// The noise or identity key in the QR does not match what the registration
    /// connection presented in its handshake.
    #[error("QR keys do not match the registration connection")]
    QrKeyMismatch,
    /// No companion asked for a pairing code for this phone number, or the connection that
    /// asked is gone.
    #[error("no pending pairing-code request for this phone number")]
    NoPendingCode,
    /// The pairing code is not 8 characters of the alphabet `123456789ABCDEFGHJKLMNPQRSTVWXYZ`
    /// (a dash in the middle is accepted) (shared/protocol/03 §5.2).
    #[error("malformed pairing code")]
    MalformedCode(#[source] PairError),
    /// The account has no linked device with this id.
    #[error("no linked device {device} on account {phone}")]
    NoSuchDevice {
        /// The account's phone number.
        phone: String,
        /// The device id asked for.
        device: u16,
    },
    /// All device ids (1..=255) are in use.
    #[error("no free device id on this account")]
    DevicesExhausted,
    /// A step of the phone's side of code pairing failed: a wrapped key or key bundle of
    /// the wrong length, or a key bundle that does not decrypt (wrong code) or names another
    /// primary (shared/protocol/03 §5.8).
    #[error("code pairing failed on the phone")]
    Pairing(#[source] PairError),
    /// The companion's key bundle names a different identity than the one it registered.
    #[error("code pairing names a different companion identity")]
    IdentityMismatch,
    /// No group with this JID exists.
    #[error("no group {0}")]
    NoSuchGroup(String),
    /// A group subject is empty or longer than the sandbox accepts (100 characters).
    #[error("group subject empty or too long")]
    BadSubject,
    /// The phone's app-state patch was refused: the collection moved on and the phone could
    /// not catch up (a stored patch it cannot verify), shared/protocol/08 §3.3.
    #[error("app-state conflict in {collection} (server version {current})")]
    AppStateConflict {
        /// The collection name.
        collection: String,
        /// The server's version.
        current: u64,
    },
    /// A JID in an app-state action does not parse.
    #[error("invalid JID {0:?}")]
    BadJid(String),
    /// A step of the phone's sync side failed (Signal session, media host, store); the
    /// message says which.
    #[error("phone sync failed: {0}")]
    PhoneSync(String),
    /// A pushed notification ([`Notice`](crate::Notice)) has a field that does not parse
    /// (a JID, base64); the message says which.
    #[error("bad notification: {0}")]
    BadNotice(String),
}

impl PhoneError {
    /// A stable snake_case code naming the variant (for JSON error bodies).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoSuchAccount(_) => "no_such_account",
            Self::AccountExists(_) => "account_exists",
            Self::InvalidPhoneNumber(_) => "invalid_phone_number",
            Self::MalformedQr(_) => "malformed_qr",
            Self::UnknownRef => "unknown_ref",
            Self::RefExpired => "ref_expired",
            Self::QrKeyMismatch => "qr_key_mismatch",
            Self::NoPendingCode => "no_pending_code",
            Self::MalformedCode(_) => "malformed_code",
            Self::NoSuchDevice { .. } => "no_such_device",
            Self::DevicesExhausted => "devices_exhausted",
            Self::Pairing(_) => "pairing_failed",
            Self::IdentityMismatch => "identity_mismatch",
            Self::NoSuchGroup(_) => "no_such_group",
            Self::BadSubject => "bad_subject",
            Self::AppStateConflict { .. } => "app_state_conflict",
            Self::BadJid(_) => "bad_jid",
            Self::PhoneSync(_) => "phone_sync_failed",
            Self::BadNotice(_) => "bad_notice",
        }
    }
}
