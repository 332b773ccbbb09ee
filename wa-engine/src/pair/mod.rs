//! Companion registration ("pairing"): QR string, pair-success checks, phone-number code.
//!
//! Pure functions over bytes and [`crate::binary::Node`]s; no I/O, no clock, randomness from a
//! caller-supplied RNG. Both roles are here:
//!
//! - the **companion** (our device): [`QrCode`], [`verify_pair_success`], the pairing-code
//!   companion steps ([`code::wrap_ephemeral_pub`], [`code::companion_finish`]);
//! - the **primary** (the phone), used by wa-sandbox's simulated phone and by tests (feature
//!   `server-side`): `build_pair_success`, `verify_pair_device_sign`, `code::primary_hello`,
//!   `code::primary_finish`.
//!
//! Internal: public only with the `server-side` feature; [`PairError`] is re-exported at
//! the crate root.
//!
//! Protocol reference: shared/protocol/03-pairing-login.md §4 (QR) and §5 (code).

pub mod code;
mod error;
mod qr;
mod success;

pub use error::PairError;
pub use qr::QrCode;
pub use success::*;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// The 32-byte ADV secret shared by companion and phone: random for QR pairing (it travels in
/// the QR string), derived for code pairing (03 §5.6 step 9). The phone HMACs the signed device
/// identity with it (03 §4.7 step 3).
///
/// `Debug` is redacted; zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct AdvSecret([u8; 32]);

impl AdvSecret {
    /// Wrap 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Draw a fresh random secret (QR pairing, 03 §1).
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for AdvSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdvSecret(<redacted>)")
    }
}

/// The companion's client type: one character in the QR string's fifth field and in
/// `companion_platform_id` of a pairing-code request (shared/protocol/03 §4.3 table; whatsmeow
/// `PairClient*`, Baileys `CompanionWebClientType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientType {
    /// `0`: unknown.
    Unknown,
    /// `1`: Chrome.
    Chrome,
    /// `2`: Edge.
    Edge,
    /// `3`: Firefox.
    Firefox,
    /// `4`: Internet Explorer.
    Ie,
    /// `5`: Opera.
    Opera,
    /// `6`: Safari.
    Safari,
    /// `7`: Electron desktop app.
    Electron,
    /// `8`: UWP (Windows desktop app).
    Uwp,
    /// `9`: other web client (the default of whatsmeow and Baileys).
    OtherWeb,
    /// `c`: macOS.
    MacOs,
    /// `d`: Android tablet.
    AndroidTablet,
    /// `e`: Android phone.
    AndroidPhone,
    /// `f`: Android, ambiguous.
    AndroidAmbiguous,
}

impl ClientType {
    /// The character written on the wire.
    pub fn as_char(self) -> char {
        match self {
            Self::Unknown => '0',
            Self::Chrome => '1',
            Self::Edge => '2',
            Self::Firefox => '3',
            Self::Ie => '4',
            Self::Opera => '5',
            Self::Safari => '6',
            Self::Electron => '7',
            Self::Uwp => '8',
            Self::OtherWeb => '9',
            Self::MacOs => 'c',
            Self::AndroidTablet => 'd',
            Self::AndroidPhone => 'e',
            Self::AndroidAmbiguous => 'f',
        }
    }

    /// Parse the wire character; `None` for an unknown one.
    pub(crate) fn from_char(c: char) -> Option<Self> {
        Some(match c {
            '0' => Self::Unknown,
            '1' => Self::Chrome,
            '2' => Self::Edge,
            '3' => Self::Firefox,
            '4' => Self::Ie,
            '5' => Self::Opera,
            '6' => Self::Safari,
            '7' => Self::Electron,
            '8' => Self::Uwp,
            '9' => Self::OtherWeb,
            'c' => Self::MacOs,
            'd' => Self::AndroidTablet,
            'e' => Self::AndroidPhone,
            'f' => Self::AndroidAmbiguous,
            _ => return None,
        })
    }

    /// The client type Baileys derives from its `browser` triple `(os, browser, version)`
    /// (companion-reg-client-utils.ts; shared/vectors/pairing/qr.json): a known browser name,
    /// `Desktop` -> Electron (UWP on Windows), anything else "other web client".
    pub fn from_browser(os: &str, browser: &str) -> Self {
        match browser {
            "Chrome" => Self::Chrome,
            "Edge" => Self::Edge,
            "Firefox" => Self::Firefox,
            "IE" => Self::Ie,
            "Opera" => Self::Opera,
            "Safari" => Self::Safari,
            "Desktop" if os.starts_with("Windows") => Self::Uwp,
            "Desktop" => Self::Electron,
            _ => Self::OtherWeb,
        }
    }
}
