//! The simulated primary phone's sync side: its own Signal store (so it sends and receives
//! peer messages, shared/protocol/05 §13), its app-state sync keys, its view of the
//! account's app state, and what it does for a companion after pairing
//! (shared/protocol/08 §11 "Simulated primary phone, after pairing", 07 §5.3).
//!
//! After a companion paired and uploaded its prekeys (the phone needs its bundle), the phone
//! onboards it once ([`PhoneCtx::onboard`]):
//! 1. creates the account's app-state sync key if it has none (32 random bytes of
//!    `keyData`; `keyId` = `00 00` ‖ u32 BE counter, 6 bytes: no source fixes the format,
//!    08 §13 item 6; fingerprint `{rawId random, currentIndex 0, deviceIndexes [0]}`,
//!    timestamp unix ms);
//! 2. uploads the initial patches once per account, each from device 0 through the app-state
//!    server, encoded with wa-engine's `appstate` crypto under that key: `critical_block`
//!    `["setting_pushName"]` (action version 1), `critical_unblock_low` one `["contact", pn]`
//!    per contact (version 2), `regular_high` `["nct_salt_sync"]` (version 1; 07 §5.3) unless
//!    the salt is withheld from app state;
//! 3. sends `APP_STATE_SYNC_KEY_SHARE` (unless withheld): whatsmeow fetches all five
//!    collections when it arrives (`message.go` handleAppStateSyncKeyShare), so the initial
//!    upload sends the new companion no `server_sync` (other companions do get one);
//! 4. builds the INITIAL_BOOTSTRAP `HistorySync` (conversations and push names of its
//!    contacts, `phoneNumberToLidMappings` of the own account and of contacts with accounts,
//!    `nctSalt` (field 19) unless withheld from history), zlib + media-encrypts it
//!    ("WhatsApp History Keys", wa-engine `history::compress_and_encrypt`), stores it on the
//!    sandbox media host (`md-msg-hist`) and sends `HISTORY_SYNC_NOTIFICATION`.
//!
//! Peer messages go out as `<message from="<own pn>@s.whatsapp.net" type="text" id
//! category="peer" t><enc v="2" type="pkmsg|msg">` (05 §13, the delivered shape of the RB
//! fixture). The phone's session with a companion is keyed `(<own pn user>, device)`, built
//! from the companion's published bundle (one one-time prekey popped, as any sender). A
//! companion's `APP_STATE_SYNC_KEY_REQUEST` to device 0 is decrypted and answered with a
//! share of the requested keys it knows (whatsmeow `requestMissingAppStateKeys`). Random
//! choices (keys, IVs, media keys, ids, Signal ratchet keys) come from an RNG seeded by the
//! account's identity key, never from the sandbox's seeded main RNG, so existing seeded
//! transcripts stay the same.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr as _;

use base64::Engine as _;
use prost::Message as _;
use rand::rngs::StdRng;
use rand::{Rng as _, RngExt as _, SeedableRng as _};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use wa_engine::Jid;
use wa_engine::appstate::{
    Collection, CollectionState, KeyRing, NewMutation, Operation, SyncAction, actions,
};
use wa_engine::binary::Node;
use wa_engine::signal::{self, TrustPolicy};
use wa_engine::store::{Credentials, MemoryStore, ProtocolAddress, Store as _, StoreBatch};
use wa_proto::wa;

use crate::accounts::{Account, DevKey};
use crate::appsync::{self, AppStateServer};
use crate::keys::{KeyStore, PhoneKeys};
use crate::media::MediaHost;
use crate::routing::Courier;

/// Test switches of one account's phone (defaults: everything delivered, nothing broken).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SyncSwitches {
    /// Whether the phone onboards companions at all (key share, initial patches, history).
    /// `None` follows [`RouterConfig::phone_sync`](crate::RouterConfig::phone_sync).
    pub enabled: Option<bool>,
    /// The phone never sends `APP_STATE_SYNC_KEY_SHARE` (after pairing nor on request):
    /// companions must park the collections (08 §11 "error cases").
    pub withhold_key_share: bool,
    /// Deliver the NCT salt through app state (`["nct_salt_sync"]`; whatsapp-rust's e2e flag
    /// `nct_syncd_delivery`, 07 §5.3). Default true.
    pub nct_syncd_delivery: bool,
    /// Deliver the NCT salt in the history sync (`HistorySync.nctSalt`; whatsapp-rust's
    /// `nct_history_delivery`). Default true.
    pub nct_history_delivery: bool,
    /// The next patch the phone uploads carries a wrong `patchMac` (one flipped bit); the
    /// switch then turns itself off. Clients must reject that patch (08 §6.5).
    pub break_next_patch_mac: bool,
    /// The phone's own uploads send no `server_sync` (a lost notification): companions keep
    /// a stale version until they sync for another reason, and their next patch meets a 409
    /// with the phone's patches (08 §3.2, §11). Default false.
    pub suppress_server_sync: bool,
    /// Send the history sync inline (`initialHistBootstrapInlinePayload`, field 11: the zlib
    /// blob itself, no media download; whatsmeow `DownloadHistorySync` and whatsapp-rust
    /// accept it, 08 §9.2) instead of on the media host. For clients without a media HTTP
    /// path (the sans-IO test kit). Default false.
    pub inline_history: bool,
}

impl Default for SyncSwitches {
    fn default() -> Self {
        Self {
            enabled: None,
            withhold_key_share: false,
            nct_syncd_delivery: true,
            nct_history_delivery: true,
            break_next_patch_mac: false,
            suppress_server_sync: false,
            inline_history: false,
        }
    }
}

/// An app-state change the phone makes on demand (control API `POST
/// /accounts/{pn}/app-state`), encoded with wa-engine's builders (08 §7). Chats are JID
/// strings (`15551234567@s.whatsapp.net`, `…@g.us`); times unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AppStateAction {
    /// `["mute", chat]` (regular_high): muted until `until_ms` (-1 = forever), or unmuted
    /// when `until_ms` is absent and `muted` is false.
    Mute {
        /// The chat.
        chat: String,
        /// Whether to mute.
        #[serde(default = "yes")]
        muted: bool,
        /// End of the mute, unix ms (-1 = forever, the default).
        until_ms: Option<i64>,
    },
    /// `["archive", chat]` (regular_low).
    Archive {
        /// The chat.
        chat: String,
        /// Whether to archive.
        #[serde(default = "yes")]
        archived: bool,
    },
    /// `["pin_v1", chat]` (regular_low).
    Pin {
        /// The chat.
        chat: String,
        /// Whether to pin.
        #[serde(default = "yes")]
        pinned: bool,
    },
    /// `["markChatAsRead", chat]` (regular_low).
    MarkRead {
        /// The chat.
        chat: String,
        /// `true` = read, `false` = marked unread.
        #[serde(default = "yes")]
        read: bool,
    },
    /// `["contact", pn jid]` (critical_unblock_low): also adds the contact to the phone's
    /// address book (history sync, next onboardings).
    Contact {
        /// Phone number (digits).
        phone: String,
        /// Full name.
        full_name: String,
    },
    /// `["setting_pushName"]` (critical_block): also becomes the account's push name.
    PushName {
        /// The name.
        name: String,
    },
}

fn yes() -> bool {
    true
}

/// One live record of an account's app state as the phone decodes it with its keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppStateRecord {
    /// Collection name (`regular_high`, …).
    pub collection: String,
    /// Version of the patch that set the record.
    pub version: u64,
    /// Device of the account that uploaded that patch (0 = the phone).
    pub device: u16,
    /// The index, e.g. `["mute","15551234567@s.whatsapp.net"]`.
    pub index: Vec<String>,
    /// `SyncActionData.version` (the action's schema version).
    pub action_version: i32,
    /// The value's `timestamp`, unix ms.
    pub timestamp_ms: Option<i64>,
    /// The decoded action: `{"type": "mute", "muted": true, …}` (see wa-engine
    /// `appstate::SyncAction`; bytes are standard base64).
    pub action: serde_json::Value,
}

/// A patch the phone could not verify or decrypt (a companion's broken patch, or the phone's
/// own after [`SyncSwitches::break_next_patch_mac`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppStatePatchError {
    /// Collection name.
    pub collection: String,
    /// The patch's version.
    pub version: u64,
    /// Uploading device.
    pub device: u16,
    /// What failed (wa-engine `AppStateError` text).
    pub error: String,
}

/// An account's app state as its phone decodes it: every collection replayed from version 1
/// with the phone's keys, verifying every MAC (a failing patch is reported and skipped).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppStateView {
    /// Server version per collection (collections with no patch are absent).
    pub versions: BTreeMap<String, u64>,
    /// Live records, by collection then index MAC order.
    pub records: Vec<AppStateRecord>,
    /// Patches that did not verify.
    pub errors: Vec<AppStatePatchError>,
}

/// A `<receipt type="hist_sync">` the phone got for one of its history notifications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryReceipt {
    /// The companion device that sent it.
    pub device: u16,
    /// The notification's message id.
    pub id: String,
}

/// Why a phone sync step failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PrimaryError {
    /// A Signal step (session, encrypt, decrypt).
    #[error("signal: {0}")]
    Signal(#[from] signal::SignalError),
    /// The phone's Signal store.
    #[error("phone store: {0}")]
    Store(#[from] wa_engine::store::StoreError),
    /// App-state encoding (missing key).
    #[error("app state: {0}")]
    AppState(#[from] wa_engine::appstate::AppStateError),
    /// The server refused the patch: another device changed the collection and the phone
    /// could not catch up (a patch it cannot verify).
    #[error("app-state conflict in {collection} at server version {current}")]
    Conflict {
        /// Collection name.
        collection: &'static str,
        /// Server version.
        current: u64,
    },
    /// The media host refused the history blob.
    #[error("media host: {0}")]
    Media(#[from] std::io::Error),
    /// The companion has no published keys (not linked).
    #[error("device {0} has no published keys")]
    NoBundle(u16),
    /// A JID in an action does not parse.
    #[error("bad jid {0:?}")]
    BadJid(String),
}

/// A phone's sync side as saved in the sandbox state file (`persist`): sync keys, address
/// book, switches, onboarding bookkeeping and its Signal sessions with companions. Its
/// per-collection client state is rebuilt by replaying the server's patches.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct PhoneSyncState {
    /// (key id, key data, timestamp ms, fingerprint raw id); ids and data base64.
    keys: Vec<(String, String, i64, u32)>,
    contacts: BTreeMap<String, String>,
    switches: SyncSwitches,
    onboarded: Vec<u16>,
    initial_uploaded: bool,
    /// (companion device, base64 Signal `SessionRecord`).
    sessions: Vec<(u16, String)>,
}

/// One app-state sync key.
#[derive(Clone)]
struct SyncKey {
    id: Vec<u8>,
    data: [u8; 32],
    timestamp_ms: i64,
    fingerprint: wa::message::AppStateSyncKeyFingerprint,
}

impl SyncKey {
    fn to_proto(&self) -> wa::message::AppStateSyncKey {
        wa::message::AppStateSyncKey {
            key_id: Some(wa::message::AppStateSyncKeyId {
                key_id: Some(self.id.clone()),
            }),
            key_data: Some(wa::message::AppStateSyncKeyData {
                key_data: Some(self.data.to_vec()),
                fingerprint: Some(self.fingerprint.clone()),
                timestamp: Some(self.timestamp_ms),
            }),
        }
    }
}

/// One account's phone: Signal store, sync keys, app-state view, onboarding bookkeeping.
pub(crate) struct PhoneSync {
    signal: MemoryStore,
    rng: StdRng,
    keys: Vec<SyncKey>,
    ring: KeyRing,
    /// The phone's own client state per collection (version, LTHash, MACs), kept in step with
    /// the server by replaying other devices' patches before each upload.
    local: BTreeMap<Collection, CollectionState>,
    initial_uploaded: bool,
    onboarded: BTreeSet<u16>,
    pub(crate) switches: SyncSwitches,
    /// Address book: phone number -> full name.
    pub(crate) contacts: BTreeMap<String, String>,
    pub(crate) hist_receipts: Vec<HistoryReceipt>,
    /// Key requests received (companion device, requested key ids).
    pub(crate) key_requests: Vec<(u16, Vec<Vec<u8>>)>,
    /// Ids of history notifications sent, with their companion.
    history_sent: BTreeMap<String, u16>,
}

impl std::fmt::Debug for PhoneSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneSync")
            .field("keys", &self.keys.len())
            .field("onboarded", &self.onboarded)
            .field("switches", &self.switches)
            .finish_non_exhaustive()
    }
}

impl PhoneSync {
    /// The phone of `account`, with a Signal store holding its identity, registration id and
    /// signed prekey (from its published [`PhoneKeys`]).
    fn new(account: &Account, keys: &PhoneKeys) -> Result<Self, PrimaryError> {
        let digest = sha2::Sha256::new()
            .chain_update(b"wa-sandbox phone sync")
            .chain_update(*account.identity_secret)
            .finalize();
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&digest);
        let identity = signal::PrivateKey::from_bytes(*account.identity_secret);
        let identity_pair =
            wa_engine::store::KeyPair::new(*identity.public_key().as_bytes(), *identity.as_bytes());
        let creds = Credentials::new(
            identity_pair.clone(),
            identity_pair,
            keys.published.registration_id,
            (&keys.signed).into(),
            [0; 32],
        );
        let store = MemoryStore::new();
        let mut batch = StoreBatch::new();
        batch.put_credentials(&creds);
        store.apply(batch)?;
        Ok(Self {
            signal: store,
            rng: StdRng::from_seed(seed),
            keys: Vec::new(),
            ring: KeyRing::new(),
            local: BTreeMap::new(),
            initial_uploaded: false,
            onboarded: BTreeSet::new(),
            switches: SyncSwitches::default(),
            contacts: BTreeMap::new(),
            hist_receipts: Vec::new(),
            key_requests: Vec::new(),
            history_sent: BTreeMap::new(),
        })
    }

    fn ensure_key(&mut self, now_ms: i64) {
        if !self.keys.is_empty() {
            return;
        }
        let counter = u32::try_from(self.keys.len() + 1).unwrap_or(u32::MAX);
        let mut id = vec![0, 0];
        id.extend_from_slice(&counter.to_be_bytes());
        let mut data = [0u8; 32];
        self.rng.fill_bytes(&mut data);
        let key = SyncKey {
            id: id.clone(),
            data,
            timestamp_ms: now_ms,
            fingerprint: wa::message::AppStateSyncKeyFingerprint {
                raw_id: Some(self.rng.random()),
                current_index: Some(0),
                device_indexes: vec![0],
            },
        };
        self.ring.insert_at(id, &data, now_ms);
        self.keys.push(key);
    }

    fn message_id(&mut self) -> String {
        // Phone message ids: "3A" + 18 upper-case hex digits (the iOS/Android shape seen in
        // fixtures; clients treat ids as opaque).
        let n: u128 = self.rng.random();
        format!("3A{:018X}", n & ((1u128 << 72) - 1))
    }
}

impl From<PrimaryError> for crate::error::PhoneError {
    fn from(e: PrimaryError) -> Self {
        match e {
            PrimaryError::Conflict {
                collection,
                current,
            } => Self::AppStateConflict {
                collection: collection.to_owned(),
                current,
            },
            PrimaryError::BadJid(j) => Self::BadJid(j),
            other => Self::PhoneSync(other.to_string()),
        }
    }
}

/// Every account's phone sync state, created on first use.
#[derive(Debug, Default)]
pub(crate) struct Primaries {
    phones: BTreeMap<String, PhoneSync>,
}

impl Primaries {
    /// The phone of `account` (created from its keys on first use).
    fn get_or_create(
        &mut self,
        account: &Account,
        keys: &KeyStore,
    ) -> Result<&mut PhoneSync, PrimaryError> {
        if !self.phones.contains_key(&account.phone) {
            let phone_keys = keys
                .phone(&account.phone)
                .ok_or(PrimaryError::NoBundle(0))?;
            let sync = PhoneSync::new(account, phone_keys)?;
            self.phones.insert(account.phone.clone(), sync);
        }
        self.phones
            .get_mut(&account.phone)
            .ok_or(PrimaryError::NoBundle(0))
    }

    /// An existing phone's state.
    pub(crate) fn get(&self, phone: &str) -> Option<&PhoneSync> {
        self.phones.get(phone)
    }

    /// The saved form of an account's phone (None if it has no sync state).
    pub(crate) fn save(&self, phone: &str) -> Option<PhoneSyncState> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let p = self.phones.get(phone)?;
        let sessions = p
            .signal
            .session_devices(phone)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|d| {
                let blob = p.signal.session(&ProtocolAddress::new(phone, d)).ok()??;
                Some((u16::try_from(d).ok()?, b64.encode(blob.as_bytes())))
            })
            .collect();
        Some(PhoneSyncState {
            keys: p
                .keys
                .iter()
                .map(|k| {
                    (
                        b64.encode(&k.id),
                        b64.encode(k.data),
                        k.timestamp_ms,
                        k.fingerprint.raw_id.unwrap_or(0),
                    )
                })
                .collect(),
            contacts: p.contacts.clone(),
            switches: p.switches,
            onboarded: p.onboarded.iter().copied().collect(),
            initial_uploaded: p.initial_uploaded,
            sessions,
        })
    }

    /// Restores a saved phone for `account` (entries that do not decode are skipped).
    pub(crate) fn restore(&mut self, account: &Account, keys: &KeyStore, saved: &PhoneSyncState) {
        let b64 = base64::engine::general_purpose::STANDARD;
        self.phones.remove(&account.phone);
        let Ok(p) = self.get_or_create(account, keys) else {
            return;
        };
        for (id, data, timestamp_ms, raw_id) in &saved.keys {
            let (Ok(id), Ok(data)) = (b64.decode(id), b64.decode(data)) else {
                continue;
            };
            let Ok(data) = <[u8; 32]>::try_from(data.as_slice()) else {
                continue;
            };
            p.ring.insert_at(id.clone(), &data, *timestamp_ms);
            p.keys.push(SyncKey {
                id,
                data,
                timestamp_ms: *timestamp_ms,
                fingerprint: wa::message::AppStateSyncKeyFingerprint {
                    raw_id: Some(*raw_id),
                    current_index: Some(0),
                    device_indexes: vec![0],
                },
            });
        }
        p.contacts = saved.contacts.clone();
        p.switches = saved.switches;
        p.onboarded = saved.onboarded.iter().copied().collect();
        p.initial_uploaded = saved.initial_uploaded;
        let mut batch = StoreBatch::new();
        for (device, record) in &saved.sessions {
            if let Ok(record) = b64.decode(record) {
                batch.put_session(
                    &ProtocolAddress::new(account.phone.clone(), u32::from(*device)),
                    record,
                );
            }
        }
        if let Err(e) = p.signal.apply(batch) {
            tracing::warn!(phone = %account.phone, error = %e, "phone sessions not restored");
        }
    }

    /// Forgets an account's phone state (state import, account replaced).
    pub(crate) fn forget(&mut self, phone: &str) {
        self.phones.remove(phone);
    }

    /// The switches of an account (defaults when the phone has no state yet).
    pub(crate) fn switches(&self, phone: &str) -> SyncSwitches {
        self.phones
            .get(phone)
            .map(|p| p.switches)
            .unwrap_or_default()
    }
}

/// The rooms a phone sync step works in.
pub(crate) struct PhoneCtx<'a> {
    pub(crate) phones: &'a mut Primaries,
    pub(crate) courier: Courier<'a>,
    pub(crate) keys: &'a mut KeyStore,
    pub(crate) server: &'a mut AppStateServer,
    pub(crate) media: &'a MediaHost,
    /// [`RouterConfig::phone_sync`](crate::RouterConfig::phone_sync).
    pub(crate) default_on: bool,
}

impl PhoneCtx<'_> {
    fn now_ms(&self) -> i64 {
        i64::try_from(self.courier.clock.unix_now())
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000)
    }

    fn phone(&mut self, phone: &str) -> Result<&mut PhoneSync, PrimaryError> {
        let account = self
            .courier
            .dir
            .get(phone)
            .ok_or(PrimaryError::NoBundle(0))?;
        self.phones.get_or_create(account, self.keys)
    }

    /// An account's switches.
    pub(crate) fn switches(&self, phone: &str) -> SyncSwitches {
        self.phones.switches(phone)
    }

    /// Sets an account's switches.
    pub(crate) fn set_switches(
        &mut self,
        phone: &str,
        switches: SyncSwitches,
    ) -> Result<(), PrimaryError> {
        self.phone(phone)?.switches = switches;
        Ok(())
    }

    /// Adds (or renames) a contact in the phone's address book; once the account's initial
    /// patches are out, also uploads its `["contact", pn]` mutation.
    pub(crate) fn add_contact(
        &mut self,
        phone: &str,
        contact: &str,
        full_name: &str,
    ) -> Result<Option<u64>, PrimaryError> {
        let p = self.phone(phone)?;
        p.contacts.insert(contact.to_owned(), full_name.to_owned());
        if !p.initial_uploaded {
            return Ok(None);
        }
        let m = self.contact_mutation(contact, full_name);
        self.upload(phone, Collection::CriticalUnblockLow, vec![m], None)
            .map(Some)
    }

    fn contact_mutation(&self, contact: &str, full_name: &str) -> NewMutation {
        let pn = Jid::pn(contact.to_owned());
        let lid = self
            .courier
            .dir
            .get(contact)
            .map(|a| Jid::lid(a.lid_user.clone()).to_string());
        NewMutation {
            collection: Collection::CriticalUnblockLow,
            operation: Operation::Set,
            index: vec!["contact".to_owned(), pn.to_string()],
            value: wa::SyncActionValue {
                timestamp: Some(self.now_ms()),
                contact_action: Some(wa::ContactAction {
                    full_name: Some(full_name.to_owned()),
                    first_name: full_name.split_whitespace().next().map(str::to_owned),
                    lid_jid: lid,
                    save_on_primary_addressbook: Some(true),
                    pn_jid: Some(pn.to_string()),
                    username: None,
                }),
                ..wa::SyncActionValue::default()
            },
            action_version: 2,
        }
    }

    /// Whether the phone onboards companions of this account.
    fn enabled(&self, phone: &str) -> bool {
        self.phones
            .get(phone)
            .and_then(|p| p.switches.enabled)
            .unwrap_or(self.default_on)
    }

    /// After a companion linked and uploaded prekeys: key share, initial patches, history
    /// (module docs). Runs once per companion; does nothing when the phone sync is off.
    pub(crate) fn onboard(&mut self, dev: &DevKey) -> Result<(), PrimaryError> {
        if dev.1 == 0 || !self.enabled(&dev.0) || self.courier.dir.companion(dev).is_none() {
            return Ok(());
        }
        let now_ms = self.now_ms();
        let p = self.phone(&dev.0)?;
        if !p.onboarded.insert(dev.1) {
            return Ok(());
        }
        p.ensure_key(now_ms);
        if !p.initial_uploaded {
            p.initial_uploaded = true;
            self.upload_initial(&dev.0, dev.1)?;
        }
        let p = self.phone(&dev.0)?;
        if !p.switches.withhold_key_share {
            let keys: Vec<_> = p.keys.iter().map(SyncKey::to_proto).collect();
            self.send_peer(dev, key_share(keys))?;
        }
        self.send_history(dev)?;
        tracing::debug!(phone = %dev.0, device = dev.1, "phone onboarded a companion");
        Ok(())
    }

    fn upload_initial(&mut self, phone: &str, new_device: u16) -> Result<(), PrimaryError> {
        let now_ms = self.now_ms();
        let account = self
            .courier
            .dir
            .get(phone)
            .ok_or(PrimaryError::NoBundle(0))?;
        // Every account gets a push name (08 §10: without one clients never go "available").
        let name = account
            .push_name
            .clone()
            .unwrap_or_else(|| default_push_name(phone));
        let salt = account.nct_salt;
        let push = NewMutation {
            collection: Collection::CriticalBlock,
            operation: Operation::Set,
            index: vec!["setting_pushName".to_owned()],
            value: wa::SyncActionValue {
                timestamp: Some(now_ms),
                push_name_setting: Some(wa::PushNameSetting { name: Some(name) }),
                ..wa::SyncActionValue::default()
            },
            action_version: 1,
        };
        self.upload(
            phone,
            Collection::CriticalBlock,
            vec![push],
            Some(new_device),
        )?;
        let p = self.phone(phone)?;
        let contacts: Vec<(String, String)> = p
            .contacts
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let syncd_salt = p.switches.nct_syncd_delivery;
        if !contacts.is_empty() {
            let ms = contacts
                .iter()
                .map(|(pn, name)| self.contact_mutation(pn, name))
                .collect();
            self.upload(phone, Collection::CriticalUnblockLow, ms, Some(new_device))?;
        }
        if let (Some(salt), true) = (salt, syncd_salt) {
            let m = NewMutation {
                collection: Collection::RegularHigh,
                operation: Operation::Set,
                index: vec!["nct_salt_sync".to_owned()],
                value: wa::SyncActionValue {
                    timestamp: Some(now_ms),
                    nct_salt_sync_action: Some(wa::NctSaltSyncAction {
                        salt: Some(salt.to_vec()),
                    }),
                    ..wa::SyncActionValue::default()
                },
                action_version: 1,
            };
            self.upload(phone, Collection::RegularHigh, vec![m], Some(new_device))?;
        }
        Ok(())
    }

    /// Applies the server's patches the phone has not seen yet to its local state; stops at
    /// the first one that does not verify (logged).
    fn catch_up(&mut self, phone: &str, c: Collection) -> Result<(), PrimaryError> {
        let pending: Vec<wa::SyncdPatch> = {
            let local = self
                .phones
                .get(phone)
                .and_then(|p| p.local.get(&c))
                .map_or(0, |s| s.version);
            self.server
                .log(phone, c)
                .map(|log| {
                    log.patches
                        .iter()
                        .filter(|p| p.version() > local)
                        .map(|p| p.patch.clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        let p = self.phone(phone)?;
        let state = p.local.entry(c).or_default();
        for patch in pending {
            if let Err(e) = state.apply_patch(c, &patch, None, &p.ring) {
                tracing::warn!(%phone, collection = c.as_str(), error = %e, "phone cannot apply a patch");
                break;
            }
        }
        Ok(())
    }

    /// Encodes `mutations` as the phone's next patch of `c`, stores it on the app-state
    /// server and tells the account's companions (`server_sync`), except `skip`. Returns the
    /// new version.
    pub(crate) fn upload(
        &mut self,
        phone: &str,
        c: Collection,
        mutations: Vec<NewMutation>,
        skip: Option<u16>,
    ) -> Result<u64, PrimaryError> {
        let now_ms = self.now_ms();
        self.catch_up(phone, c)?;
        self.phone(phone)?;
        let p = self
            .phones
            .phones
            .get_mut(phone)
            .ok_or(PrimaryError::NoBundle(0))?;
        p.ensure_key(now_ms);
        let key_id = p.keys.last().map(|k| k.id.clone()).unwrap_or_default();
        let state = p.local.get(&c).cloned().unwrap_or_default();
        let rng = &mut p.rng;
        let mut out = state.encode_patch(c, &key_id, &p.ring, &mutations, &mut || {
            let mut iv = [0u8; 16];
            rng.fill_bytes(&mut iv);
            iv
        })?;
        if std::mem::take(&mut p.switches.break_next_patch_mac)
            && let Some(mac) = out.patch.patch_mac.as_mut()
            && let Some(b) = mac.first_mut()
        {
            *b ^= 0x01;
        }
        let version = self
            .server
            .submit(phone, 0, c, out.base_version, out.patch)
            .map_err(|e| PrimaryError::Conflict {
                collection: c.as_str(),
                current: e.current,
            })?;
        p.local.insert(c, out.state_after);
        if !p.switches.suppress_server_sync {
            self.notify_server_sync(phone, 0, &[(c, version)], skip);
        }
        Ok(version)
    }

    /// `server_sync` to every companion of `phone` except `from` (the uploader) and `skip`
    /// (08 §11), queued for offline ones.
    pub(crate) fn notify_server_sync(
        &mut self,
        phone: &str,
        from: u16,
        changed: &[(Collection, u64)],
        skip: Option<u16>,
    ) {
        if changed.is_empty() {
            return;
        }
        for d in self.courier.dir.devices_of(phone) {
            if d == 0 || d == from || Some(d) == skip {
                continue;
            }
            let id = self.courier.ids.fresh();
            let t = self.courier.clock.unix_now();
            let node = appsync::server_sync(&id, t, changed);
            self.courier.deliver(&(phone.to_owned(), d), node);
        }
    }

    /// An on-demand mutation (control API); returns the new version of its collection.
    pub(crate) fn mutate(
        &mut self,
        phone: &str,
        action: &AppStateAction,
    ) -> Result<u64, PrimaryError> {
        let now_ms = self.now_ms();
        let chat = |s: &str| Jid::from_str(s).map_err(|_| PrimaryError::BadJid(s.to_owned()));
        let range = || actions::message_range(now_ms / 1000, []);
        let m = match action {
            AppStateAction::Mute {
                chat: c,
                muted,
                until_ms,
            } => actions::mute(&chat(c)?, muted.then(|| until_ms.unwrap_or(-1)), now_ms),
            AppStateAction::Archive { chat: c, archived } => {
                actions::archive(&chat(c)?, *archived, range(), now_ms)
            }
            AppStateAction::Pin { chat: c, pinned } => actions::pin(&chat(c)?, *pinned, now_ms),
            AppStateAction::MarkRead { chat: c, read } => {
                actions::mark_chat_read(&chat(c)?, *read, range(), now_ms)
            }
            AppStateAction::Contact {
                phone: pn,
                full_name,
            } => {
                self.phone(phone)?
                    .contacts
                    .insert(pn.clone(), full_name.clone());
                self.contact_mutation(pn, full_name)
            }
            AppStateAction::PushName { name } => NewMutation {
                collection: Collection::CriticalBlock,
                operation: Operation::Set,
                index: vec!["setting_pushName".to_owned()],
                value: wa::SyncActionValue {
                    timestamp: Some(now_ms),
                    push_name_setting: Some(wa::PushNameSetting {
                        name: Some(name.clone()),
                    }),
                    ..wa::SyncActionValue::default()
                },
                action_version: 1,
            },
        };
        let c = m.collection;
        self.upload(phone, c, vec![m], None)
    }

    /// Encrypts `message` for companion `dev` (building the session from its published bundle
    /// first) and delivers it as a peer message. Returns the message id.
    pub(crate) fn send_peer(
        &mut self,
        dev: &DevKey,
        message: wa::Message,
    ) -> Result<String, PrimaryError> {
        let address = ProtocolAddress::new(dev.0.clone(), u32::from(dev.1));
        let has_session = {
            let p = self.phone(&dev.0)?;
            signal::has_session(&p.signal, &address)?
        };
        let bundle = if has_session {
            None
        } else {
            Some(
                self.keys
                    .take_companion_bundle(dev)
                    .ok_or(PrimaryError::NoBundle(dev.1))?,
            )
        };
        let p = self.phone(&dev.0)?;
        if let Some(bundle) = bundle {
            signal::process_prekey_bundle(
                &p.signal,
                &address,
                &bundle,
                TrustPolicy::AutoTrust,
                &mut p.rng,
            )?;
        }
        let padded = wa_engine::message::pad::pad(message.encode_to_vec(), &mut p.rng);
        let (kind, ciphertext) = signal::encrypt(&p.signal, &address, &padded)?;
        let id = p.message_id();
        let t = self.courier.clock.unix_now();
        let node = Node::new("message")
            .attr("from", Jid::pn(dev.0.clone()))
            .attr("type", "text")
            .attr("id", id.clone())
            .attr("category", "peer")
            .attr("t", t.to_string())
            .with_children([Node::new("enc")
                .attr("v", "2")
                .attr("type", kind.as_str())
                .with_bytes(ciphertext)]);
        self.courier.deliver(dev, node);
        Ok(id)
    }

    fn send_history(&mut self, dev: &DevKey) -> Result<(), PrimaryError> {
        let now = self.courier.clock.unix_now();
        let account = self
            .courier
            .dir
            .get(&dev.0)
            .ok_or(PrimaryError::NoBundle(0))?;
        let own_lid = account.lid_user.clone();
        let salt = account.nct_salt;
        let own_name = account
            .push_name
            .clone()
            .unwrap_or_else(|| default_push_name(&dev.0));
        let p = self.phones.get(&dev.0).ok_or(PrimaryError::NoBundle(0))?;
        let contacts = p.contacts.clone();
        let history_salt = p.switches.nct_history_delivery;
        let mut sync = wa::HistorySync {
            sync_type: Some(wa::history_sync::HistorySyncType::InitialBootstrap as i32),
            chunk_order: Some(0),
            progress: Some(100),
            ..wa::HistorySync::default()
        };
        sync.pushnames.push(wa::Pushname {
            id: Some(Jid::pn(dev.0.clone()).to_string()),
            pushname: Some(own_name),
        });
        sync.phone_number_to_lid_mappings
            .push(wa::PhoneNumberToLidMapping {
                pn_jid: Some(Jid::pn(dev.0.clone()).to_string()),
                lid_jid: Some(Jid::lid(own_lid).to_string()),
            });
        for (pn, name) in &contacts {
            let pn_jid = Jid::pn(pn.clone()).to_string();
            let peer = self.courier.dir.get(pn);
            let lid = peer.map(|a| Jid::lid(a.lid_user.clone()).to_string());
            sync.conversations.push(wa::Conversation {
                id: Some(pn_jid.clone()),
                name: Some(name.clone()),
                display_name: Some(name.clone()),
                pn_jid: Some(pn_jid.clone()),
                lid_jid: lid.clone(),
                conversation_timestamp: Some(now),
                last_msg_timestamp: Some(now),
                ..wa::Conversation::default()
            });
            if let Some(push) = peer.and_then(|a| a.push_name.clone()) {
                sync.pushnames.push(wa::Pushname {
                    id: Some(pn_jid.clone()),
                    pushname: Some(push),
                });
            }
            if let Some(lid) = lid {
                sync.phone_number_to_lid_mappings
                    .push(wa::PhoneNumberToLidMapping {
                        pn_jid: Some(pn_jid),
                        lid_jid: Some(lid),
                    });
            }
        }
        if let (Some(salt), true) = (salt, history_salt) {
            sync.nct_salt = Some(salt.to_vec());
        }
        let p = self.phone(&dev.0)?;
        let base = wa::message::HistorySyncNotification {
            sync_type: Some(wa::message::HistorySyncType::InitialBootstrap as i32),
            chunk_order: Some(0),
            progress: Some(100),
            ..wa::message::HistorySyncNotification::default()
        };
        let notification = if p.switches.inline_history {
            wa::message::HistorySyncNotification {
                initial_hist_bootstrap_inline_payload: Some(zlib(&sync.encode_to_vec())?),
                ..base
            }
        } else {
            let media_key = wa_engine::media::MediaKey::generate(&mut p.rng);
            let (enc, info) =
                wa_engine::history::compress_and_encrypt(&sync.encode_to_vec(), media_key);
            let direct_path = self.media.put_blob("md-msg-hist", &enc)?;
            wa::message::HistorySyncNotification {
                file_sha256: Some(info.file_sha256.to_vec()),
                file_length: Some(info.file_length),
                media_key: Some(info.media_key.as_bytes().to_vec()),
                file_enc_sha256: Some(info.file_enc_sha256.to_vec()),
                direct_path: Some(direct_path),
                ..base
            }
        };
        let message = wa::Message {
            protocol_message: Some(Box::new(wa::message::ProtocolMessage {
                r#type: Some(wa::message::protocol_message::Type::HistorySyncNotification as i32),
                history_sync_notification: Some(notification),
                ..wa::message::ProtocolMessage::default()
            })),
            ..wa::Message::default()
        };
        let id = self.send_peer(dev, message)?;
        if let Some(p) = self.phones.phones.get_mut(&dev.0) {
            p.history_sent.insert(id, dev.1);
        }
        Ok(())
    }

    /// A `<message>` a companion addressed to its own phone (device 0): decrypts each `<enc>`
    /// and answers `APP_STATE_SYNC_KEY_REQUEST`s with a key share (unless withheld).
    pub(crate) fn receive_peer(
        &mut self,
        sender: &DevKey,
        node: &Node,
    ) -> Result<(), PrimaryError> {
        let address = ProtocolAddress::new(sender.0.clone(), u32::from(sender.1));
        let mut messages = Vec::new();
        for enc in node.children_by_tag("enc") {
            let Some(ct) = enc.content_bytes() else {
                continue;
            };
            let phone_keys = self
                .keys
                .phone(&sender.0)
                .map(|k| k.private_prekeys.clone());
            let p = self.phone(&sender.0)?;
            let plaintext = match enc.get_attr_str("type") {
                Some("pkmsg") => {
                    let msg = signal::PreKeySignalMessage::decode(ct)?;
                    if let Some(id) = msg.prekey_id
                        && p.signal.prekey(id)?.is_none()
                        && let Some(record) = phone_keys.as_ref().and_then(|k| k.get(&id))
                    {
                        let mut batch = StoreBatch::new();
                        batch.put_prekey(id, record.to_bytes());
                        p.signal.apply(batch)?;
                    }
                    signal::decrypt_pkmsg(
                        &p.signal,
                        &address,
                        ct,
                        TrustPolicy::AutoTrust,
                        &mut p.rng,
                    )?
                    .plaintext
                }
                Some("msg") => signal::decrypt_msg(&p.signal, &address, ct, &mut p.rng)?,
                _ => continue,
            };
            let Ok(unpadded) = wa_engine::message::pad::unpad(&plaintext) else {
                continue;
            };
            if let Ok(m) = wa::Message::decode(unpadded) {
                messages.push(m);
            }
        }
        for m in messages {
            let Some(proto) = m.protocol_message else {
                continue;
            };
            if let Some(request) = proto.app_state_sync_key_request {
                let ids: Vec<Vec<u8>> = request
                    .key_ids
                    .iter()
                    .filter_map(|k| k.key_id.clone())
                    .collect();
                let p = self.phone(&sender.0)?;
                p.key_requests.push((sender.1, ids.clone()));
                if p.switches.withhold_key_share {
                    continue;
                }
                let keys: Vec<_> = p
                    .keys
                    .iter()
                    .filter(|k| ids.contains(&k.id))
                    .map(SyncKey::to_proto)
                    .collect();
                if !keys.is_empty() {
                    self.send_peer(sender, key_share(keys))?;
                }
            }
        }
        Ok(())
    }

    /// A companion's `<receipt type="hist_sync">` (08 §9.3): recorded.
    pub(crate) fn hist_receipt(&mut self, from: &DevKey, node: &Node) {
        let Some(p) = self.phones.phones.get_mut(&from.0) else {
            return;
        };
        let ids = std::iter::once(node.get_attr_str("id").unwrap_or_default().to_owned()).chain(
            node.child_by_tag("list")
                .into_iter()
                .flat_map(|l| l.children_by_tag("item"))
                .filter_map(|i| i.get_attr_str("id").map(str::to_owned)),
        );
        for id in ids {
            if p.history_sent.contains_key(&id) {
                p.hist_receipts.push(HistoryReceipt { device: from.1, id });
            }
        }
    }
}

/// zlib (RFC 1950) of `bytes`, as history-sync blobs are compressed (08 §9.2).
fn zlib(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut encoder = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(bytes.len() / 2 + 64),
        flate2::Compression::default(),
    );
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// `Message{protocolMessage{type = APP_STATE_SYNC_KEY_SHARE, appStateSyncKeyShare}}`.
fn key_share(keys: Vec<wa::message::AppStateSyncKey>) -> wa::Message {
    wa::Message {
        protocol_message: Some(Box::new(wa::message::ProtocolMessage {
            r#type: Some(wa::message::protocol_message::Type::AppStateSyncKeyShare as i32),
            app_state_sync_key_share: Some(wa::message::AppStateSyncKeyShare { keys }),
            ..wa::message::ProtocolMessage::default()
        })),
        ..wa::Message::default()
    }
}

/// The push name an account has when nobody set one: `"User <last 4 digits>"`.
pub(crate) fn default_push_name(phone: &str) -> String {
    let tail = phone.get(phone.len().saturating_sub(4)..).unwrap_or(phone);
    format!("User {tail}")
}

/// Decodes an account's app state with the phone's keys (replaying every stored patch from
/// version 1 into a fresh state per collection).
pub(crate) fn decode_view(
    phone: Option<&PhoneSync>,
    server: &AppStateServer,
    account: &str,
) -> AppStateView {
    let b64 = base64::engine::general_purpose::STANDARD;
    let empty = KeyRing::new();
    let ring = phone.map_or(&empty, |p| &p.ring);
    let mut view = AppStateView {
        versions: BTreeMap::new(),
        records: Vec::new(),
        errors: Vec::new(),
    };
    for c in Collection::ALL {
        let Some(log) = server.log(account, c) else {
            continue;
        };
        view.versions.insert(c.as_str().to_owned(), log.version());
        let mut state = CollectionState::new();
        let mut live: BTreeMap<[u8; 32], AppStateRecord> = BTreeMap::new();
        for stored in &log.patches {
            // A patch that fails is reported and skipped (the state keeps the version before
            // it; later patches are checked against that state).
            let patch = &stored.patch;
            match state.apply_patch(c, patch, None, ring) {
                Ok(mutations) => {
                    for m in mutations {
                        if m.operation == Operation::Remove {
                            live.remove(&m.index_mac);
                            continue;
                        }
                        live.insert(
                            m.index_mac,
                            AppStateRecord {
                                collection: c.as_str().to_owned(),
                                version: m.version,
                                device: stored.device,
                                index: m.index.clone(),
                                action_version: m.action_version,
                                timestamp_ms: m.action.timestamp,
                                action: action_json(&m.sync_action(), &b64),
                            },
                        );
                    }
                }
                Err(e) => view.errors.push(AppStatePatchError {
                    collection: c.as_str().to_owned(),
                    version: stored.version(),
                    device: stored.device,
                    error: e.to_string(),
                }),
            }
        }
        view.records.extend(live.into_values());
    }
    view
}

fn action_json(a: &SyncAction, b64: &base64::engine::GeneralPurpose) -> serde_json::Value {
    use serde_json::json;
    match a {
        SyncAction::Mute {
            chat,
            muted,
            until_ms,
        } => {
            json!({"type": "mute", "chat": chat.to_string(), "muted": muted, "until_ms": until_ms})
        }
        SyncAction::Pin { chat, pinned } => {
            json!({"type": "pin", "chat": chat.to_string(), "pinned": pinned})
        }
        SyncAction::Archive { chat, archived } => {
            json!({"type": "archive", "chat": chat.to_string(), "archived": archived})
        }
        SyncAction::MarkChatAsRead { chat, read } => {
            json!({"type": "mark_read", "chat": chat.to_string(), "read": read})
        }
        SyncAction::Contact {
            jid,
            full_name,
            first_name,
            lid,
            pn,
        } => json!({
            "type": "contact",
            "jid": jid.to_string(),
            "full_name": full_name,
            "first_name": first_name,
            "lid": lid.as_ref().map(ToString::to_string),
            "pn": pn.as_ref().map(ToString::to_string),
        }),
        SyncAction::PushName(name) => json!({"type": "push_name", "name": name}),
        SyncAction::NctSalt(salt) => json!({"type": "nct_salt", "salt_b64": b64.encode(salt)}),
        other => json!({"type": "other", "debug": format!("{other:?}")}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_push_name_uses_the_last_digits() {
        assert_eq!(default_push_name("15551234567"), "User 4567");
        assert_eq!(default_push_name("123"), "User 123");
    }

    #[test]
    fn actions_parse_from_json() {
        let a: AppStateAction =
            serde_json::from_str(r#"{"action":"mute","chat":"1555@s.whatsapp.net"}"#).unwrap();
        assert_eq!(
            a,
            AppStateAction::Mute {
                chat: "1555@s.whatsapp.net".into(),
                muted: true,
                until_ms: None
            }
        );
        let s: SyncSwitches = serde_json::from_str(r#"{"withhold_key_share":true}"#).unwrap();
        assert!(s.withhold_key_share && s.nct_syncd_delivery && s.nct_history_delivery);
    }
}
