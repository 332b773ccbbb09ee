//! Saving and restoring the sandbox's accounts and linked devices, so a sandbox started again
//! (a new process, e.g. the `pair_qr` example run twice with the same data dir) still knows
//! the devices that paired with it and lets them log in without a new QR.
//!
//! Only the durable part is kept: accounts (with the simulated phone's identity key, from
//! which its Signal keys are derived again) and their companions (registration, published
//! Signal keys and remaining one-time prekeys), the account's app-state collections (every
//! accepted patch with its device) and the phone's sync side (app-state sync keys, contacts,
//! switches, its Signal sessions with companions). Live connections, QR refs, pending
//! pairings, faults and the phone's inbox are not; nor are the server's own keys: they come
//! from the seed (same seed, same trust root), and clients do not pin the server's Noise
//! key. The companions' offline queues are kept apart ([`QueuesState`],
//! [`Router::export_queues`]) because they change with every message.
//!
//! # Durable before it answers
//! A host that keeps this state on disk installs a [`Durability`](crate::Durability) (defined with the [`Router`] in `state.rs`) with
//! [`Router::set_durability`]. The sandbox then calls it, synchronously and outside its
//! lock, whenever a device is linked, before the server answers the pair-device-sign (with
//! the 515 that sends the companion to log in), and after a device is unlinked or an account
//! is created. As WhatsApp's servers do, a device the companion has been told is paired
//! survives a crash of the server at any later instant (issue 12: a SIGKILL right after a
//! wa-server session reported `connected` lost the pairing, because the state was only
//! written by a background saver). Prekey uploads and app-state patches are not made
//! durable this way: a client that finds fewer prekeys than it uploaded refills them, and
//! app-state is re-synced; a host keeps saving those in the background.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::accounts::{Account, Companion, Registration, SignedPreKey, validate_phone};
use crate::appsync::CollectionLogState;
use crate::keys::PublishedKeys;
use crate::primary::PhoneSyncState;
use crate::state::Router;

/// Format version written by [`Router::export_state`]; anything else is refused.
const STATE_VERSION: u32 = 1;

/// Why a [`SandboxState`] could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The state was written by another format version.
    #[error("unsupported sandbox state version {0} (expected {STATE_VERSION})")]
    Version(u32),
    /// A key field is not base64 of the expected length.
    #[error("sandbox state field {0} is not base64 of the right length")]
    BadKey(&'static str),
    /// An account's phone number breaks the phone number rule.
    #[error("invalid phone number {0:?} in sandbox state")]
    BadPhone(String),
}

/// The durable part of a sandbox (accounts, phones, linked devices), as plain serde data.
/// Write it with `serde_json`; it holds the simulated phones' identity private keys, which
/// only sign for this sandbox. `Debug` does not show them.
#[derive(Clone, Serialize, Deserialize)]
pub struct SandboxState {
    version: u32,
    accounts: Vec<AccountState>,
}

impl std::fmt::Debug for SandboxState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxState")
            .field("version", &self.version)
            .field(
                "accounts",
                &self
                    .accounts
                    .iter()
                    .map(|a| (a.phone.as_str(), a.devices.len()))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct AccountState {
    phone: String,
    lid_user: String,
    /// X25519 scalar, base64.
    identity_secret: String,
    platform: String,
    business_name: Option<String>,
    created: u64,
    next_key_index: u32,
    adv_raw_id: u32,
    devices_changed_at: u64,
    push_name: Option<String>,
    /// NCT salt, base64; absent in older state files, which then get the derived salt.
    #[serde(default)]
    nct_salt: Option<String>,
    /// The account has no NCT salt (a test switch); wins over `nct_salt`.
    #[serde(default)]
    no_nct_salt: bool,
    /// A hosted account (absent in older files and for ordinary accounts: not hosted).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    hosted: bool,
    devices: Vec<DeviceState>,
    /// The account's app-state collections on the server (absent in older files: empty).
    #[serde(default)]
    app_state: Vec<CollectionLogState>,
    /// The phone's sync side: sync keys, contacts, switches, Signal sessions (absent in
    /// older files: none yet).
    #[serde(default)]
    phone_sync: Option<PhoneSyncState>,
}

#[derive(Clone, Serialize, Deserialize)]
struct DeviceState {
    id: u16,
    key_index: u32,
    paired_at: u64,
    /// The companion's Noise static public key, base64 (32 bytes).
    noise_pub: String,
    /// What the registration ClientPayload said.
    registration: KeysState,
    /// `DeviceProps.os`, or empty.
    os: String,
    /// The Signal keys the device published (registration, then prekey uploads).
    published: KeysState,
}

/// Registration id, identity and signed prekey, plus one-time prekeys (empty for the
/// registration).
#[derive(Clone, Serialize, Deserialize)]
struct KeysState {
    registration_id: u32,
    /// Identity public key, base64 (32 bytes).
    identity_pub: String,
    signed_prekey_id: u32,
    /// base64, 32 bytes.
    signed_prekey_pub: String,
    /// base64, 64 bytes.
    signed_prekey_signature: String,
    /// One-time prekeys: id and base64 public key (32 bytes).
    #[serde(default)]
    prekeys: Vec<(u32, String)>,
}

impl KeysState {
    fn new(
        registration_id: u32,
        identity: &[u8; 32],
        signed: &SignedPreKey,
        prekeys: &BTreeMap<u32, [u8; 32]>,
    ) -> Self {
        Self {
            registration_id,
            identity_pub: B64.encode(identity),
            signed_prekey_id: signed.id,
            signed_prekey_pub: B64.encode(signed.public),
            signed_prekey_signature: B64.encode(signed.signature),
            prekeys: prekeys.iter().map(|(id, k)| (*id, B64.encode(k))).collect(),
        }
    }

    fn signed_prekey(&self) -> Result<SignedPreKey, StateError> {
        Ok(SignedPreKey {
            id: self.signed_prekey_id,
            public: key("signed_prekey_pub", &self.signed_prekey_pub)?,
            signature: key("signed_prekey_signature", &self.signed_prekey_signature)?,
        })
    }

    fn prekeys(&self) -> Result<BTreeMap<u32, [u8; 32]>, StateError> {
        self.prekeys
            .iter()
            .map(|(id, k)| Ok((*id, key("prekeys", k)?)))
            .collect()
    }
}

fn key<const N: usize>(field: &'static str, b64: &str) -> Result<[u8; N], StateError> {
    let bytes = Zeroizing::new(B64.decode(b64).map_err(|_| StateError::BadKey(field))?);
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| StateError::BadKey(field))
}

/// Format version written by [`Router::export_queues`]; anything else is refused.
const QUEUES_VERSION: u32 = 1;

/// The companions' offline queues (05 §14): every stanza a linked device has not
/// acknowledged yet, as plain serde data ([`Router::export_queues`]). Kept apart from
/// [`SandboxState`] because it changes with every message: a host writes it (through
/// [`Durability::persist_queues`](crate::Durability::persist_queues)) before the server acks
/// a routed message, as WhatsApp's servers store a message before they acknowledge it, so a
/// message whose sender was told "received by the server" survives a crash of the server.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct QueuesState {
    version: u32,
    queues: Vec<QueueState>,
}

impl std::fmt::Debug for QueuesState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuesState")
            .field("version", &self.version)
            .field("stanzas", &self.len())
            .finish()
    }
}

impl QueuesState {
    /// How many stanzas wait in all queues together.
    pub fn len(&self) -> usize {
        self.queues.iter().map(|q| q.stanzas.len()).sum()
    }

    /// Whether no stanza waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct QueueState {
    phone: String,
    device: u16,
    /// The stanzas, oldest first: base64 of their binary encoding (shared/protocol/02).
    stanzas: Vec<String>,
}

impl Router {
    /// The companions' offline queues: what [`import_queues`](Self::import_queues) restores.
    pub fn export_queues(&self) -> QueuesState {
        let queued = self.lock().routing.queued();
        QueuesState {
            version: QUEUES_VERSION,
            queues: queued
                .into_iter()
                .map(|((phone, device), nodes)| QueueState {
                    phone,
                    device,
                    stanzas: nodes
                        .iter()
                        .map(|n| B64.encode(wa_engine::binary::encode_node(n)))
                        .collect(),
                })
                .collect(),
        }
    }

    /// Restores the offline queues saved by [`export_queues`](Self::export_queues), after
    /// [`import_state`](Self::import_state) (which empties the imported accounts' queues).
    /// A queue of a device this sandbox does not know is skipped. Returns how many stanzas
    /// were restored; nothing changes on error.
    ///
    /// # Errors
    /// [`StateError::Version`] for another format version, [`StateError::BadKey`] for a
    /// stanza that is not base64 of a binary node.
    pub fn import_queues(&self, state: &QueuesState) -> Result<usize, StateError> {
        if state.version != QUEUES_VERSION {
            return Err(StateError::Version(state.version));
        }
        let mut decoded = Vec::with_capacity(state.queues.len());
        for q in &state.queues {
            let mut nodes = Vec::with_capacity(q.stanzas.len());
            for b64 in &q.stanzas {
                let bytes = B64.decode(b64).map_err(|_| StateError::BadKey("queues"))?;
                let node = wa_engine::binary::decode_node(&bytes)
                    .map_err(|_| StateError::BadKey("queues"))?;
                nodes.push(node);
            }
            decoded.push(((q.phone.clone(), q.device), nodes));
        }
        let mut st = self.lock();
        let mut restored = 0;
        for (dev, nodes) in decoded {
            if st.directory.companion(&dev).is_none() {
                continue;
            }
            restored += nodes.len();
            st.routing.restore_queue(dev, nodes);
        }
        Ok(restored)
    }

    /// The durable part of the state: accounts and their linked devices.
    pub fn export_state(&self) -> SandboxState {
        let st = self.lock();
        let accounts = st
            .directory
            .iter()
            .map(|a| AccountState {
                phone: a.phone.clone(),
                lid_user: a.lid_user.clone(),
                identity_secret: B64.encode(*a.identity_secret),
                platform: a.platform.clone(),
                business_name: a.business_name.clone(),
                created: a.created,
                next_key_index: a.next_key_index,
                adv_raw_id: a.adv_raw_id,
                devices_changed_at: a.devices_changed_at,
                push_name: a.push_name.clone(),
                nct_salt: a.nct_salt.map(|s| B64.encode(s)),
                no_nct_salt: a.nct_salt.is_none(),
                hosted: a.hosted,
                devices: a
                    .devices
                    .iter()
                    .map(|(id, c)| {
                        let published = st.keys.companion(&(a.phone.clone(), *id));
                        DeviceState {
                            id: *id,
                            key_index: c.key_index,
                            paired_at: c.paired_at,
                            noise_pub: B64.encode(c.registration.noise_pub),
                            registration: KeysState::new(
                                c.registration.registration_id,
                                &c.registration.identity_pub,
                                &c.registration.signed_prekey,
                                &BTreeMap::new(),
                            ),
                            os: c.registration.os.clone(),
                            // Every companion has keys in the store (from its registration on).
                            published: match published {
                                Some(k) => KeysState::new(
                                    k.registration_id,
                                    &k.identity,
                                    &k.signed_prekey,
                                    &k.prekeys,
                                ),
                                None => KeysState::new(
                                    c.registration.registration_id,
                                    &c.registration.identity_pub,
                                    &c.registration.signed_prekey,
                                    &BTreeMap::new(),
                                ),
                            },
                        }
                    })
                    .collect(),
                app_state: st
                    .appsync
                    .logs_of(&a.phone)
                    .into_iter()
                    .map(|(c, log)| CollectionLogState::save(c, log))
                    .collect(),
                phone_sync: st.primaries.save(&a.phone),
            })
            .collect();
        SandboxState {
            version: STATE_VERSION,
            accounts,
        }
    }

    /// Restores accounts and linked devices saved by [`export_state`](Self::export_state).
    /// An account with the same phone number is replaced. Nothing changes on error.
    ///
    /// # Errors
    /// [`StateError`] for another format version, a malformed key or phone number.
    pub fn import_state(&self, state: &SandboxState) -> Result<(), StateError> {
        if state.version != STATE_VERSION {
            return Err(StateError::Version(state.version));
        }
        let mut accounts = Vec::with_capacity(state.accounts.len());
        for a in &state.accounts {
            validate_phone(&a.phone).map_err(|_| StateError::BadPhone(a.phone.clone()))?;
            let secret = Zeroizing::new(key::<32>("identity_secret", &a.identity_secret)?);
            let identity_pub =
                x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*secret))
                    .to_bytes();
            let mut devices = BTreeMap::new();
            let mut published = Vec::with_capacity(a.devices.len());
            for d in &a.devices {
                let r = &d.registration;
                let p = &d.published;
                devices.insert(
                    d.id,
                    Companion {
                        key_index: d.key_index,
                        registration: Registration {
                            noise_pub: key("noise_pub", &d.noise_pub)?,
                            identity_pub: key("identity_pub", &r.identity_pub)?,
                            registration_id: r.registration_id,
                            signed_prekey: r.signed_prekey()?,
                            os: d.os.clone(),
                        },
                        paired_at: d.paired_at,
                    },
                );
                published.push((
                    d.id,
                    PublishedKeys {
                        registration_id: p.registration_id,
                        identity: key("identity_pub", &p.identity_pub)?,
                        signed_prekey: p.signed_prekey()?,
                        prekeys: p.prekeys()?,
                    },
                ));
            }
            let nct_salt = match (&a.nct_salt, a.no_nct_salt) {
                (_, true) => None,
                (Some(b64), false) => Some(key("nct_salt", b64)?),
                (None, false) => Some(crate::accounts::derive_nct_salt(&secret)),
            };
            let account = Account {
                phone: a.phone.clone(),
                lid_user: a.lid_user.clone(),
                identity_secret: secret,
                identity_pub,
                platform: a.platform.clone(),
                business_name: a.business_name.clone(),
                created: a.created,
                devices,
                next_key_index: a.next_key_index,
                pending: BTreeSet::new(),
                push_name: a.push_name.clone(),
                adv_raw_id: a.adv_raw_id,
                devices_changed_at: a.devices_changed_at,
                nct_salt,
                hosted: a.hosted,
            };
            let mut logs = Vec::with_capacity(a.app_state.len());
            for saved in &a.app_state {
                logs.push(saved.restore().ok_or(StateError::BadKey("app_state"))?);
            }
            accounts.push((account, published, logs, a.phone_sync.clone()));
        }
        let mut st = self.lock();
        let st = &mut *st;
        for (account, published, logs, phone_sync) in accounts {
            let phone = account.phone.clone();
            st.replace_account(account, published);
            for (c, log) in logs {
                st.appsync.insert_log(&phone, c, log);
            }
            if let (Some(saved), Some(account)) = (phone_sync, st.directory.get(&phone)) {
                st.primaries.restore(account, &st.keys, &saved);
            }
        }
        Ok(())
    }
}
