//! The account directory: simulated WhatsApp accounts (with their primary phone's identity)
//! and the companion devices linked to them.
//!
//! [`Directory`] holds who exists and nothing else: the keys a device published live in
//! [`keys`](crate::keys), its offline queue in [`routing`](crate::routing), its live
//! connections in [`connections`](crate::connections). Those rooms key their data by
//! [`DevKey`] and ask the directory which devices exist.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng as _, RngExt as _};
use serde::Serialize;
use wa_engine::Jid;
use zeroize::Zeroizing;

use crate::error::PhoneError;

/// A device: (phone number, device id); device 0 is the primary phone.
pub(crate) type DevKey = (String, u16);

/// A linked device's public record, as shown by [`Phone::devices`](crate::Phone::devices)
/// and the control API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    /// Device id (1..=255) within the account.
    pub id: u16,
    /// The device's PN AD JID, e.g. `15551234567:1@s.whatsapp.net`.
    pub jid: String,
    /// The device's LID AD JID, e.g. `123456789012345:1@lid`.
    pub lid: String,
    /// ADV key index given at pairing.
    pub key_index: u32,
    /// The companion's `DeviceProps.os` from its registration payload (e.g. `"Mac OS"`).
    pub os: String,
    /// Unix seconds when the pairing completed.
    pub paired_at: u64,
    /// Whether a logged-in connection of this device is live.
    pub connected: bool,
    /// Number of one-time prekeys the device uploaded and nobody fetched yet.
    pub prekeys: usize,
    /// Number of stanzas queued for the device and not yet acknowledged by it.
    pub queued: usize,
}

/// An account's public record, as shown by the control API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountInfo {
    /// Phone number (digits only).
    pub phone: String,
    /// The account's LID user part.
    pub lid: String,
    /// The primary phone's identity public key (32 bytes), standard base64.
    pub identity_pub_b64: String,
    /// Platform name the phone reports in pair-success (`android`).
    pub platform: String,
    /// Business name, for business accounts.
    pub business_name: Option<String>,
    /// Linked companion devices, by id.
    pub devices: Vec<DeviceInfo>,
}

/// A signed prekey as a companion registered it (shared/protocol/03 §2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignedPreKey {
    pub(crate) id: u32,
    pub(crate) public: [u8; 32],
    pub(crate) signature: [u8; 64],
}

/// What a registration ClientPayload told us about the companion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Registration {
    /// The Noise static key from ClientFinish.
    pub(crate) noise_pub: [u8; 32],
    /// `eIdent`.
    pub(crate) identity_pub: [u8; 32],
    /// `eRegid`.
    pub(crate) registration_id: u32,
    /// `eSkeyID`, `eSkeyVal`, `eSkeySig`.
    pub(crate) signed_prekey: SignedPreKey,
    /// `DeviceProps.os`, or empty.
    pub(crate) os: String,
}

/// A linked companion device.
#[derive(Debug, Clone)]
pub(crate) struct Companion {
    pub(crate) key_index: u32,
    pub(crate) registration: Registration,
    pub(crate) paired_at: u64,
}

/// A simulated WhatsApp account with its primary phone.
pub(crate) struct Account {
    pub(crate) phone: String,
    pub(crate) lid_user: String,
    /// The primary's identity private key (X25519 scalar bytes).
    pub(crate) identity_secret: Zeroizing<[u8; 32]>,
    pub(crate) identity_pub: [u8; 32],
    pub(crate) platform: String,
    pub(crate) business_name: Option<String>,
    pub(crate) created: u64,
    pub(crate) devices: BTreeMap<u16, Companion>,
    pub(crate) next_key_index: u32,
    /// Device ids handed out in a pair-success whose reply has not arrived yet.
    pub(crate) pending: BTreeSet<u16>,
    /// Push name from the latest `<presence name>` of any of its devices (sent as
    /// `notify` on its messages: shared/protocol/06 §3.3).
    pub(crate) push_name: Option<String>,
    /// ADV raw id of the account (`ADVKeyIndexList.rawId`).
    pub(crate) adv_raw_id: u32,
    /// Unix seconds of the last device-list change (the `key-index-list` timestamp).
    pub(crate) devices_changed_at: u64,
    /// The account's NCT salt (shared/protocol/07 §3.3, §5.3): provisioned to its companions
    /// through app-state sync and history sync, and the key the server verifies a `<cstoken>`
    /// from this account with. `None` for an account without a salt (a test switch).
    pub(crate) nct_salt: Option<[u8; 32]>,
    /// A hosted (business-hosted) account: the phone builds companions' device identities
    /// with `ADVEncryptionType::HOSTED` and the `06 05` prefixes, and accepts `06 06` device
    /// signatures (wa_engine::pair::success module docs). Off unless a test sets it.
    pub(crate) hosted: bool,
}

/// The NCT salt of an account, derived from its identity secret so that drawing it takes
/// nothing from the sandbox's seeded RNG (existing transcripts stay the same).
pub(crate) fn derive_nct_salt(identity_secret: &[u8; 32]) -> [u8; 32] {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(b"wa-sandbox nct salt");
    h.update(identity_secret);
    h.finalize().into()
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("phone", &self.phone)
            .field("lid_user", &self.lid_user)
            .field("identity_secret", &"<redacted>")
            .field("devices", &self.devices.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// What the phone decided when it accepted a companion (QR scan or code pairing): the
/// pair-success to send and what to check in the companion's reply (shared/protocol/03 §4.10).
#[derive(Debug, Clone)]
pub(crate) struct PairPlan {
    pub(crate) phone: String,
    pub(crate) lid_user: String,
    pub(crate) device: u16,
    pub(crate) key_index: u32,
    /// Serialized ADVDeviceIdentity (`Dd`).
    pub(crate) details: Vec<u8>,
    /// Serialized ADVSignedDeviceIdentityHMAC: the `<device-identity>` content.
    pub(crate) device_identity_hmac: Vec<u8>,
    /// The primary's identity public key (`accountSignatureKey`).
    pub(crate) account_pub: [u8; 32],
    /// The companion identity the phone signed for.
    pub(crate) companion_identity: [u8; 32],
    pub(crate) platform: String,
    pub(crate) business_name: Option<String>,
}

/// Every account by phone number.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    accounts: BTreeMap<String, Account>,
}

impl Directory {
    /// Creates an account: the LID user and the phone's identity key are drawn from `rng`
    /// (in that order). Returns the new account.
    ///
    /// # Errors
    /// [`PhoneError::AccountExists`].
    pub(crate) fn create(
        &mut self,
        phone: &str,
        rng: &mut StdRng,
        created: u64,
    ) -> Result<&Account, PhoneError> {
        if self.accounts.contains_key(phone) {
            return Err(PhoneError::AccountExists(phone.to_owned()));
        }
        // LID users are 15-digit numbers (shared/protocol/03 §7.1 examples).
        let lid_user = rng
            .random_range(100_000_000_000_000u64..1_000_000_000_000_000)
            .to_string();
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(secret.as_mut());
        let identity_pub =
            x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*secret)).to_bytes();
        let adv_raw_id = u32::from_le_bytes([secret[0], secret[1], secret[2], secret[3]]);
        let nct_salt = Some(derive_nct_salt(&secret));
        let account = Account {
            phone: phone.to_owned(),
            lid_user,
            identity_secret: secret,
            identity_pub,
            platform: "android".to_owned(),
            business_name: None,
            created,
            devices: BTreeMap::new(),
            next_key_index: 1,
            pending: BTreeSet::new(),
            push_name: None,
            adv_raw_id,
            devices_changed_at: created,
            nct_salt,
            hosted: false,
        };
        Ok(self.accounts.entry(phone.to_owned()).or_insert(account))
    }

    /// Adds or replaces an account (state import).
    pub(crate) fn insert(&mut self, account: Account) {
        self.accounts.insert(account.phone.clone(), account);
    }

    /// The account of a phone number.
    pub(crate) fn get(&self, phone: &str) -> Option<&Account> {
        self.accounts.get(phone)
    }

    /// The account of a phone number, to change it.
    pub(crate) fn get_mut(&mut self, phone: &str) -> Option<&mut Account> {
        self.accounts.get_mut(phone)
    }

    /// Whether an account has this phone number.
    pub(crate) fn contains(&self, phone: &str) -> bool {
        self.accounts.contains_key(phone)
    }

    /// Every account, by phone number.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    /// A linked companion (device 0, the phone, is not one).
    pub(crate) fn companion(&self, dev: &DevKey) -> Option<&Companion> {
        self.accounts.get(&dev.0)?.devices.get(&dev.1)
    }

    /// The devices of an account: 0 (the phone) and its companions, ascending.
    pub(crate) fn devices_of(&self, phone: &str) -> Vec<u16> {
        self.accounts.get(phone).map_or_else(Vec::new, |a| {
            std::iter::once(0)
                .chain(a.devices.keys().copied())
                .collect()
        })
    }

    /// Whether a device exists (device 0 of any account does).
    pub(crate) fn device_exists(&self, phone: &str, device: u16) -> bool {
        self.accounts
            .get(phone)
            .is_some_and(|a| device == 0 || a.devices.contains_key(&device))
    }

    /// The account (phone number) of a PN or LID user JID.
    pub(crate) fn resolve_user(&self, jid: &Jid) -> Option<String> {
        if jid.is_pn() {
            self.accounts
                .contains_key(jid.user())
                .then(|| jid.user().to_owned())
        } else if jid.is_lid() {
            self.accounts
                .values()
                .find(|a| a.lid_user == jid.user())
                .map(|a| a.phone.clone())
        } else {
            None
        }
    }

    /// The account's push name, if one of its devices sent one.
    pub(crate) fn push_name(&self, phone: &str) -> Option<String> {
        self.accounts.get(phone).and_then(|a| a.push_name.clone())
    }

    /// Remembers a push name from `<presence name>` (06 §3.3); an empty one is ignored.
    pub(crate) fn set_push_name(&mut self, phone: &str, name: &str) {
        if let Some(a) = self.accounts.get_mut(phone)
            && !name.is_empty()
        {
            a.push_name = Some(name.to_owned());
        }
    }

    /// Allocates the lowest free device id (1..=255) and the next key index of an account.
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`], [`PhoneError::DevicesExhausted`].
    pub(crate) fn allocate_device(&mut self, phone: &str) -> Result<(u16, u32), PhoneError> {
        let account = self
            .accounts
            .get_mut(phone)
            .ok_or_else(|| PhoneError::NoSuchAccount(phone.to_owned()))?;
        let device = (1..=255u16)
            .find(|d| !account.devices.contains_key(d) && !account.pending.contains(d))
            .ok_or(PhoneError::DevicesExhausted)?;
        account.pending.insert(device);
        let key_index = account.next_key_index;
        account.next_key_index += 1;
        Ok((device, key_index))
    }

    /// Releases a device id reserved by a pairing that did not complete.
    pub(crate) fn release_device(&mut self, phone: &str, device: u16) {
        if let Some(account) = self.accounts.get_mut(phone) {
            account.pending.remove(&device);
        }
    }

    /// Records a companion whose pair-device-sign verified, at `paired_at` (unix seconds).
    /// Returns false if the account vanished meanwhile.
    pub(crate) fn link(
        &mut self,
        plan: &PairPlan,
        registration: Registration,
        paired_at: u64,
    ) -> bool {
        let Some(account) = self.accounts.get_mut(&plan.phone) else {
            return false;
        };
        account.pending.remove(&plan.device);
        account.devices.insert(
            plan.device,
            Companion {
                key_index: plan.key_index,
                registration,
                paired_at,
            },
        );
        account.devices_changed_at = paired_at;
        true
    }

    /// Forgets a companion at `now` (unix seconds) and returns it.
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`], [`PhoneError::NoSuchDevice`].
    pub(crate) fn unlink(
        &mut self,
        phone: &str,
        device: u16,
        now: u64,
    ) -> Result<Companion, PhoneError> {
        let account = self
            .accounts
            .get_mut(phone)
            .ok_or_else(|| PhoneError::NoSuchAccount(phone.to_owned()))?;
        let Some(removed) = account.devices.remove(&device) else {
            return Err(PhoneError::NoSuchDevice {
                phone: phone.to_owned(),
                device,
            });
        };
        account.devices_changed_at = now.max(account.devices_changed_at);
        Ok(removed)
    }
}

/// Checks the phone number rule of shared/protocol/03 §5.1.
pub(crate) fn validate_phone(phone: &str) -> Result<(), PhoneError> {
    let ok = phone.len() > 6
        && phone.len() <= 20
        && phone.bytes().all(|b| b.is_ascii_digit())
        && !phone.starts_with('0');
    if ok {
        Ok(())
    } else {
        Err(PhoneError::InvalidPhoneNumber(phone.to_owned()))
    }
}
