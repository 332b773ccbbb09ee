//! The sandbox's shared state: accounts and their simulated phones, linked devices,
//! live connections by device, registration connections by QR ref, pending pairing-code
//! exchanges and injected faults.
//!
//! One [`Router`] is shared (cheap `Clone`, one mutex inside) by every
//! [`ServerSession`](crate::ServerSession), the [`Phone`](crate::Phone) handles, the fault
//! injector and the HTTP control API. It opens no sockets and never reads the monotonic
//! clock: time-dependent work (QR ref expiry) is done by the sessions, which are given
//! `now: Instant`. Unix timestamps (stanza `t`, ADV timestamps) come from the configured
//! [`Clock`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng as _, RngExt as _, SeedableRng as _};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::PhoneError;
use crate::script::{Fault, StreamErrorKind};

/// The id of one WebSocket connection inside the sandbox (unique per [`Router`]).
pub type ConnId = u64;

/// Where unix timestamps come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Clock {
    /// The system clock (`SystemTime::now()`), in whole seconds.
    #[default]
    System,
    /// A fixed unix time in seconds, for byte-exact tests.
    Fixed(u64),
}

impl Clock {
    /// The current unix time in seconds.
    pub fn unix_now(&self) -> u64 {
        match self {
            Self::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            Self::Fixed(t) => *t,
        }
    }
}

/// QR ref timing: how long each `<ref>` of a `pair-device` IQ stays valid.
///
/// Real clients show the first ref for 60 s and each later one for 20 s, with 6 refs:
/// 160 s in all (shared/protocol/03 §4.4; whatsmeow qrchan.go, Baileys socket.ts). The
/// sandbox expires ref `i` at `first + i * each` after the IQ was sent and closes the
/// registration connection when the last one expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QrTiming {
    /// Number of refs in the `pair-device` IQ (whatsmeow assumes 6).
    pub refs: usize,
    /// Lifetime of the first ref (real: 60 s).
    pub first: Duration,
    /// Lifetime of each later ref (real: 20 s).
    pub each: Duration,
}

impl Default for QrTiming {
    fn default() -> Self {
        Self {
            refs: 6,
            first: Duration::from_secs(60),
            each: Duration::from_secs(20),
        }
    }
}

impl QrTiming {
    /// How long ref number `index` (0-based) stays valid after the IQ is sent.
    pub fn expiry_of(&self, index: usize) -> Duration {
        let later = u32::try_from(index).unwrap_or(u32::MAX);
        self.first.saturating_add(self.each.saturating_mul(later))
    }
}

/// Settings of a [`Router`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RouterConfig {
    /// Seed for every random choice (keys, refs, ids). `None` draws one from the OS.
    pub seed: Option<u64>,
    /// QR ref timing.
    pub qr: QrTiming,
    /// Source of unix timestamps.
    pub clock: Clock,
    /// The `location` attribute of `<success>` (real servers send edge codes such as `frc`).
    pub location: String,
    /// Pause between the end of the handshake and the server's first stanza
    /// (`pair-device`, `<success>` or `<failure>`). Baileys 6.7.24 does not await its
    /// transport split and drops a stanza that arrives too soon; 50 ms was enough in 40
    /// runs (interop BAILEYS_NOTES §2). Default 100 ms; zero sends at once.
    pub first_stanza_delay: Duration,
    /// Explicit server keys and chain; `None` draws them from the seed.
    pub server_keys: Option<crate::identity::ServerKeys>,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            seed: None,
            qr: QrTiming::default(),
            clock: Clock::System,
            location: "sim".to_owned(),
            first_stanza_delay: Duration::from_millis(100),
            server_keys: None,
        }
    }
}

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
    /// The Signal keys the device published (at registration, then by prekey uploads).
    pub(crate) keys: crate::keys::PublishedKeys,
    /// Stanzas for this device not yet acknowledged by it (the offline queue, 05 §14).
    pub(crate) queue: crate::routing::Queue,
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
    pub(crate) pending: std::collections::BTreeSet<u16>,
    /// The primary phone's (device 0) Signal keys.
    pub(crate) phone_keys: crate::keys::PhoneKeys,
    /// Stanzas routed to the primary phone (it decrypts nothing; kept for inspection,
    /// the newest [`PHONE_INBOX_LIMIT`](crate::routing::PHONE_INBOX_LIMIT)).
    pub(crate) phone_inbox: VecDeque<wa_engine::binary::Node>,
    /// Push name from the latest `<presence name>` of any of its devices (sent as
    /// `notify` on its messages: shared/protocol/06 §3.3).
    pub(crate) push_name: Option<String>,
    /// ADV raw id of the account (`ADVKeyIndexList.rawId`).
    pub(crate) adv_raw_id: u32,
    /// Unix seconds of the last device-list change (the `key-index-list` timestamp).
    pub(crate) devices_changed_at: u64,
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

/// Work the router hands to one connection's session.
#[derive(Debug)]
pub(crate) enum Push {
    /// The phone accepted this registration connection: send pair-success.
    PairSuccess(Box<PairPlan>),
    /// The user typed the code on the phone: send the primary_hello notification
    /// (shared/protocol/03 §5.5).
    PrimaryHello {
        wrapped_primary_ephemeral: Vec<u8>,
        primary_identity: [u8; 32],
        pairing_ref: Vec<u8>,
    },
    /// Send this stanza (a routed message, receipt or notification).
    Stanza(wa_engine::binary::Node),
    /// Send this stream error, then close.
    StreamError(StreamErrorKind),
    /// Close the socket without a word.
    Drop,
}

/// Called when a connection has new [`Push`]es; the tokio driver wakes the task.
pub(crate) type Waker = Arc<dyn Fn() + Send + Sync>;

pub(crate) struct ConnEntry {
    pub(crate) device: Option<(String, u16)>,
    inbox: VecDeque<Push>,
    waker: Option<Waker>,
    registration: Option<Registration>,
    /// The device's stanzas flow to this connection (after `<success>` for active logins,
    /// after `<active/>` for passive ones: shared/protocol/03 §7.2).
    pub(crate) ready: bool,
}

/// A pending phone-number (code) pairing, keyed by its pairing ref.
pub(crate) struct CodePairing {
    pub(crate) conn: ConnId,
    pub(crate) phone: String,
    pub(crate) wrapped_companion_ephemeral: Vec<u8>,
    /// The primary's pairing ephemeral secret once the code was entered.
    pub(crate) primary_ephemeral: Option<x25519_dalek::StaticSecret>,
    /// The companion ephemeral public key as unwrapped with the entered code.
    pub(crate) companion_ephemeral: Option<[u8; 32]>,
    pub(crate) seq: u64,
}

#[derive(Default)]
struct FaultState {
    refuse_next: u32,
    frame_delay: Duration,
}

pub(crate) struct State {
    pub(crate) config: RouterConfig,
    pub(crate) rng: StdRng,
    pub(crate) accounts: BTreeMap<String, Account>,
    pub(crate) conns: HashMap<ConnId, ConnEntry>,
    next_conn: ConnId,
    /// Live QR refs -> the registration connection that offered them.
    refs: HashMap<String, ConnId>,
    /// Refs whose window passed (kept to tell "expired" from "unknown").
    expired_refs: HashMap<String, ConnId>,
    pub(crate) code_pairings: HashMap<Vec<u8>, CodePairing>,
    code_seq: u64,
    next_iq_id: u64,
    faults: FaultState,
    pub(crate) server: crate::identity::ServerIdentity,
    /// Message routing state: delivery log and chat partners.
    pub(crate) routing: crate::routing::RoutingState,
    /// Groups by id (the user part of `<id>@g.us`).
    pub(crate) groups: BTreeMap<String, crate::groups::Group>,
    /// See [`Router::set_silent_device_changes`].
    pub(crate) silent_device_changes: bool,
}

/// The sandbox's shared state. Cheap to clone (an `Arc`).
///
/// Build one with [`Router::new`], make accounts with [`Router::create_account`], and give a
/// clone to each [`ServerSession`](crate::ServerSession). [`Sandbox::start`](crate::Sandbox::start)
/// does all of this for you; use a `Router` directly to drive sessions without tokio
/// (virtual-time tests).
#[derive(Clone)]
pub struct Router {
    inner: Arc<Mutex<State>>,
    /// The media host (its own lock): answers `media_conn`, stores uploads.
    media: crate::media::MediaHost,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").finish_non_exhaustive()
    }
}

impl Router {
    /// Creates the shared state: draws the server's Noise static key and certificate chain
    /// (root -> intermediate -> leaf, shared/protocol/01 §5.4) from the seed.
    pub fn new(config: RouterConfig) -> Self {
        let seed = config.seed.unwrap_or_else(rand::random);
        let mut rng = StdRng::seed_from_u64(seed);
        let now = config.clock.unix_now();
        let server = match &config.server_keys {
            Some(keys) => crate::identity::ServerIdentity::from_keys(keys),
            None => crate::identity::ServerIdentity::generate(&mut rng, now),
        };
        // Server IQ ids are decimal numbers (shared/protocol/03 §3, §10.1).
        let next_iq_id = rng.random_range(100_000_000..1_000_000_000u64);
        Self {
            inner: Arc::new(Mutex::new(State {
                config,
                rng,
                accounts: BTreeMap::new(),
                conns: HashMap::new(),
                next_conn: 1,
                refs: HashMap::new(),
                expired_refs: HashMap::new(),
                code_pairings: HashMap::new(),
                code_seq: 0,
                next_iq_id,
                faults: FaultState::default(),
                server,
                routing: crate::routing::RoutingState::default(),
                groups: BTreeMap::new(),
                silent_device_changes: false,
            })),
            media: crate::media::MediaHost::default(),
        }
    }

    /// The media host: `media_conn` replies, stored blobs, fault injection.
    pub fn media(&self) -> &crate::media::MediaHost {
        &self.media
    }

    /// Locks the state. A poisoned lock (a panic while holding it) is taken over: the
    /// state is plain data and stays usable.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The root public key (32 bytes, X25519/XEdDSA) that signs this sandbox's intermediate
    /// certificate. Clients must trust it instead of WhatsApp's production root.
    pub fn trust_root_key(&self) -> [u8; 32] {
        self.lock().server.root_pub
    }

    /// The sandbox's trust root (root key, serial 0) for a client's certificate check
    /// (shared/protocol/01 §5.2, §5.4).
    pub fn trust_root(&self) -> wa_engine::noise::TrustRoot {
        wa_engine::noise::TrustRoot::new(self.trust_root_key(), crate::identity::ROOT_SERIAL)
    }

    /// The server's Noise static public key (32 bytes); the leaf certificate's key.
    pub fn server_static_pub(&self) -> [u8; 32] {
        self.lock().server.static_pub()
    }

    /// Creates an account with a simulated primary phone.
    ///
    /// `phone` must be digits only, longer than 6 digits, not starting with `0`. The LID
    /// user and the phone's identity key are drawn from the router's RNG.
    ///
    /// # Errors
    /// [`PhoneError::InvalidPhoneNumber`], [`PhoneError::AccountExists`].
    pub fn create_account(&self, phone: &str) -> Result<crate::Phone, PhoneError> {
        validate_phone(phone)?;
        let mut st = self.lock();
        if st.accounts.contains_key(phone) {
            return Err(PhoneError::AccountExists(phone.to_owned()));
        }
        // LID users are 15-digit numbers (shared/protocol/03 §7.1 examples).
        let lid_user = st
            .rng
            .random_range(100_000_000_000_000u64..1_000_000_000_000_000)
            .to_string();
        let mut secret = Zeroizing::new([0u8; 32]);
        st.rng.fill_bytes(secret.as_mut());
        let identity_pub =
            x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*secret)).to_bytes();
        let created = st.config.clock.unix_now();
        let phone_keys = crate::keys::PhoneKeys::generate(&secret);
        let adv_raw_id = u32::from_le_bytes([secret[0], secret[1], secret[2], secret[3]]);
        st.accounts.insert(
            phone.to_owned(),
            Account {
                phone: phone.to_owned(),
                lid_user,
                identity_secret: secret,
                identity_pub,
                platform: "android".to_owned(),
                business_name: None,
                created,
                devices: BTreeMap::new(),
                next_key_index: 1,
                pending: std::collections::BTreeSet::new(),
                phone_keys,
                phone_inbox: VecDeque::new(),
                push_name: None,
                adv_raw_id,
                devices_changed_at: created,
            },
        );
        drop(st);
        Ok(crate::Phone::new(self.clone(), phone.to_owned()))
    }

    /// The phone of an existing account.
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`].
    pub fn phone(&self, phone: &str) -> Result<crate::Phone, PhoneError> {
        if self.lock().accounts.contains_key(phone) {
            Ok(crate::Phone::new(self.clone(), phone.to_owned()))
        } else {
            Err(PhoneError::NoSuchAccount(phone.to_owned()))
        }
    }

    /// Public records of all accounts, by phone number.
    pub fn accounts(&self) -> Vec<AccountInfo> {
        let st = self.lock();
        st.accounts.values().map(|a| st.account_info(a)).collect()
    }

    /// The public record of one account.
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`].
    pub fn account(&self, phone: &str) -> Result<AccountInfo, PhoneError> {
        let st = self.lock();
        let account = st
            .accounts
            .get(phone)
            .ok_or_else(|| PhoneError::NoSuchAccount(phone.to_owned()))?;
        Ok(st.account_info(account))
    }

    /// Simulates lost `devices` notifications (shared/protocol/05 §5.2): while `silent` is
    /// true, linking or unlinking a companion tells no other device, so contacts keep a
    /// stale device list until a send's ack reports the drift with its `phash` (05 §7.4,
    /// §14 step 6). Default false.
    pub fn set_silent_device_changes(&self, silent: bool) {
        self.lock().silent_device_changes = silent;
    }

    /// Applies a fault (see [`Fault`]). Returns how many live connections it reached
    /// (0 for the global faults `DelayFrames` / `RefuseConnections`).
    pub fn inject(&self, fault: Fault) -> usize {
        let mut st = self.lock();
        match fault {
            Fault::DelayFrames { ms } => {
                st.faults.frame_delay = Duration::from_millis(ms);
                0
            }
            Fault::RefuseConnections { count } => {
                st.faults.refuse_next = count;
                0
            }
            Fault::Drop { target } => st.push_to_targets(&target, || Push::Drop),
            Fault::StreamError { target, error } => {
                st.push_to_targets(&target, || Push::StreamError(error.clone()))
            }
        }
    }

    /// Whether the next incoming connection must be refused (consumes one refusal).
    pub(crate) fn take_refusal(&self) -> bool {
        let mut st = self.lock();
        if st.faults.refuse_next > 0 {
            st.faults.refuse_next -= 1;
            true
        } else {
            false
        }
    }

    /// The delay to apply before each server frame (the `DelayFrames` fault).
    pub(crate) fn frame_delay(&self) -> Duration {
        self.lock().faults.frame_delay
    }

    /// A Noise responder for a new connection: the server static key, the chain, and a
    /// fresh ephemeral key (drawn from the RNG unless given, 32 private bytes).
    pub(crate) fn server_handshake(
        &self,
        ephemeral: Option<[u8; 32]>,
    ) -> wa_engine::noise::ServerHandshake {
        let mut st = self.lock();
        let ephemeral = match ephemeral {
            Some(private) => wa_engine::noise::KeyPair::from_private_bytes(private),
            None => wa_engine::noise::KeyPair::generate(&mut st.rng),
        };
        wa_engine::noise::ServerHandshake::new(
            st.server.static_key.clone(),
            ephemeral,
            st.server.cert_chain.clone(),
        )
    }

    /// Registers a new connection and returns its id.
    pub(crate) fn open_connection(&self) -> ConnId {
        let mut st = self.lock();
        let id = st.next_conn;
        st.next_conn += 1;
        st.conns.insert(
            id,
            ConnEntry {
                device: None,
                inbox: VecDeque::new(),
                waker: None,
                registration: None,
                ready: false,
            },
        );
        id
    }

    /// Sets the function called when `conn` gets new work.
    pub(crate) fn set_waker(&self, conn: ConnId, waker: Waker) {
        if let Some(entry) = self.lock().conns.get_mut(&conn) {
            entry.waker = Some(waker);
        }
    }

    /// Forgets a closed connection: its refs, pending code pairings and device binding.
    pub(crate) fn close_connection(&self, conn: ConnId) {
        let mut st = self.lock();
        st.conns.remove(&conn);
        st.refs.retain(|_, c| *c != conn);
        st.expired_refs.retain(|_, c| *c != conn);
        st.code_pairings.retain(|_, p| p.conn != conn);
    }

    /// Takes the next piece of work for `conn`.
    pub(crate) fn take_push(&self, conn: ConnId) -> Option<Push> {
        self.lock()
            .conns
            .get_mut(&conn)
            .and_then(|e| e.inbox.pop_front())
    }

    /// A fresh server IQ / notification id (decimal string).
    pub(crate) fn next_id(&self) -> String {
        self.lock().fresh_id()
    }

    /// The configured unix clock.
    pub(crate) fn unix_now(&self) -> u64 {
        self.lock().config.clock.unix_now()
    }

    /// The QR ref timing.
    pub(crate) fn qr_timing(&self) -> QrTiming {
        self.lock().config.qr
    }

    /// The pause before the first stanza.
    pub(crate) fn first_stanza_delay(&self) -> Duration {
        self.lock().config.first_stanza_delay
    }

    /// The `location` attribute for `<success>`.
    pub(crate) fn location(&self) -> String {
        self.lock().config.location.clone()
    }

    /// Fills `buf` from the router's seeded RNG.
    pub(crate) fn fill_random(&self, buf: &mut [u8]) {
        self.lock().rng.fill_bytes(buf);
    }

    /// A registration connection finished its handshake: remember what it registered and
    /// issue `count` fresh refs (`"2@"` + 100 base64 characters, shared/protocol/03 §4.1).
    pub(crate) fn start_registration(
        &self,
        conn: ConnId,
        registration: Registration,
        count: usize,
    ) -> Vec<String> {
        use base64::Engine as _;
        let mut st = self.lock();
        let mut refs = Vec::with_capacity(count);
        for _ in 0..count {
            // 75 random bytes -> exactly 100 base64 characters, no padding.
            let mut raw = [0u8; 75];
            st.rng.fill_bytes(&mut raw);
            let r = format!(
                "2@{}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            );
            st.refs.insert(r.clone(), conn);
            refs.push(r);
        }
        if let Some(entry) = st.conns.get_mut(&conn) {
            entry.registration = Some(registration);
        }
        refs
    }

    /// Marks a ref as expired (its display window passed).
    pub(crate) fn expire_ref(&self, r: &str) {
        let mut st = self.lock();
        if let Some(conn) = st.refs.remove(r) {
            st.expired_refs.insert(r.to_owned(), conn);
        }
    }

    /// Records a companion whose pair-device-sign verified. Returns false if the account
    /// vanished meanwhile.
    pub(crate) fn record_companion(&self, plan: &PairPlan, registration: Registration) -> bool {
        let mut st = self.lock();
        let paired_at = st.config.clock.unix_now();
        let Some(account) = st.accounts.get_mut(&plan.phone) else {
            return false;
        };
        account.pending.remove(&plan.device);
        let keys = crate::keys::PublishedKeys {
            registration_id: registration.registration_id,
            identity: registration.identity_pub,
            signed_prekey: registration.signed_prekey.clone(),
            prekeys: BTreeMap::new(),
        };
        account.devices.insert(
            plan.device,
            Companion {
                key_index: plan.key_index,
                registration,
                paired_at,
                keys,
                queue: crate::routing::Queue::default(),
            },
        );
        account.devices_changed_at = paired_at;
        st.notify_device_change(&plan.phone, plan.device, true);
        true
    }

    /// Releases a device id reserved by a pairing that did not complete.
    pub(crate) fn release_device(&self, phone: &str, device: u16) {
        if let Some(account) = self.lock().accounts.get_mut(phone) {
            account.pending.remove(&device);
        }
    }

    /// The registration info of a connection.
    pub(crate) fn registration_of(&self, conn: ConnId) -> Option<Registration> {
        self.lock()
            .conns
            .get(&conn)
            .and_then(|e| e.registration.clone())
    }

    /// Checks a login and binds `conn` to the device. A live connection of the same device
    /// is told `<conflict type="replaced"/>` (whatsmeow connectionevents.go: StreamReplaced).
    pub(crate) fn login(
        &self,
        conn: ConnId,
        username: u64,
        device: u16,
        noise_pub: &[u8; 32],
    ) -> Result<LoginGrant, LoginRefusal> {
        let mut st = self.lock();
        let phone = username.to_string();
        let account = st.accounts.get(&phone).ok_or(LoginRefusal::UnknownDevice)?;
        let companion = account
            .devices
            .get(&device)
            .ok_or(LoginRefusal::UnknownDevice)?;
        if companion.registration.noise_pub != *noise_pub {
            return Err(LoginRefusal::NoiseKeyMismatch);
        }
        let grant = LoginGrant {
            phone: phone.clone(),
            lid_user: account.lid_user.clone(),
            device,
            creation: account.created,
        };
        let others: Vec<ConnId> = st
            .conns
            .iter()
            .filter(|(id, e)| **id != conn && e.device.as_ref() == Some(&(phone.clone(), device)))
            .map(|(id, _)| *id)
            .collect();
        for other in others {
            st.push(other, Push::StreamError(StreamErrorKind::Replaced));
            if let Some(e) = st.conns.get_mut(&other) {
                e.device = None;
            }
        }
        if let Some(entry) = st.conns.get_mut(&conn) {
            entry.device = Some((phone, device));
        }
        Ok(grant)
    }

    /// Detaches a connection from its device (it is leaving on its own).
    pub(crate) fn unbind_device(&self, conn: ConnId) {
        if let Some(e) = self.lock().conns.get_mut(&conn) {
            e.device = None;
        }
    }

    /// How many one-time prekeys a device has on the server (device 0: the phone's pool).
    pub(crate) fn prekey_count(&self, phone: &str, device: u16) -> usize {
        self.lock()
            .published_keys(phone, device)
            .map_or(0, |k| k.prekeys.len())
    }

    /// Unlinks a device: forgets it and tells its live connections
    /// `<stream:error code="401"><conflict type="device_removed"/></stream:error>`
    /// (shared/protocol/03 §8.1, §10.4).
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`], [`PhoneError::NoSuchDevice`].
    pub(crate) fn remove_device(&self, phone: &str, device: u16) -> Result<(), PhoneError> {
        let mut st = self.lock();
        let now = st.config.clock.unix_now();
        let account = st
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
        st.notify_device_removed(phone, device, removed.key_index);
        let key = (phone.to_owned(), device);
        let live: Vec<ConnId> = st
            .conns
            .iter()
            .filter(|(_, e)| e.device.as_ref() == Some(&key))
            .map(|(id, _)| *id)
            .collect();
        for conn in live {
            st.push(conn, Push::StreamError(StreamErrorKind::DeviceRemoved));
            if let Some(e) = st.conns.get_mut(&conn) {
                e.device = None;
            }
        }
        Ok(())
    }

    /// Looks up the live registration connection of a QR ref.
    pub(crate) fn conn_of_ref(&self, r: &str) -> Result<ConnId, PhoneError> {
        let st = self.lock();
        if let Some(conn) = st.refs.get(r) {
            return Ok(*conn);
        }
        if st.expired_refs.contains_key(r) {
            return Err(PhoneError::RefExpired);
        }
        Err(PhoneError::UnknownRef)
    }

    /// Hands a pair plan to a registration connection and retires all of its refs.
    pub(crate) fn deliver_pair_plan(&self, conn: ConnId, plan: PairPlan) {
        let mut st = self.lock();
        st.refs.retain(|_, c| *c != conn);
        st.expired_refs.retain(|_, c| *c != conn);
        st.push(conn, Push::PairSuccess(Box::new(plan)));
    }

    /// Records a companion_hello (shared/protocol/03 §5.4) and returns the fresh pairing ref.
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`] when no account has this number.
    pub(crate) fn code_hello(
        &self,
        conn: ConnId,
        phone: &str,
        wrapped_companion_ephemeral: Vec<u8>,
    ) -> Result<Vec<u8>, PhoneError> {
        use base64::Engine as _;
        let mut st = self.lock();
        if !st.accounts.contains_key(phone) {
            return Err(PhoneError::NoSuchAccount(phone.to_owned()));
        }
        let mut raw = [0u8; 24];
        st.rng.fill_bytes(&mut raw);
        let pairing_ref = format!(
            "2@{}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
        .into_bytes();
        // A companion that asks again replaces its earlier request.
        st.code_pairings.retain(|_, p| p.conn != conn);
        st.code_seq += 1;
        let seq = st.code_seq;
        st.code_pairings.insert(
            pairing_ref.clone(),
            CodePairing {
                conn,
                phone: phone.to_owned(),
                wrapped_companion_ephemeral,
                primary_ephemeral: None,
                companion_ephemeral: None,
                seq,
            },
        );
        Ok(pairing_ref)
    }

    /// Pushes work to a connection (used by the phone module).
    pub(crate) fn push(&self, conn: ConnId, push: Push) {
        self.lock().push(conn, push);
    }
}

impl State {
    /// A fresh server stanza id (decimal string; shared/protocol/03 §10.1).
    pub(crate) fn fresh_id(&mut self) -> String {
        self.next_iq_id += 1;
        self.next_iq_id.to_string()
    }

    /// The current unix time in seconds.
    pub(crate) fn unix_now(&self) -> u64 {
        self.config.clock.unix_now()
    }

    /// The published keys of a device (device 0: the phone's).
    pub(crate) fn published_keys(
        &self,
        phone: &str,
        device: u16,
    ) -> Option<&crate::keys::PublishedKeys> {
        let account = self.accounts.get(phone)?;
        if device == 0 {
            Some(&account.phone_keys.published)
        } else {
            account.devices.get(&device).map(|c| &c.keys)
        }
    }

    pub(crate) fn push(&mut self, conn: ConnId, push: Push) {
        if let Some(entry) = self.conns.get_mut(&conn) {
            entry.inbox.push_back(push);
            if let Some(w) = &entry.waker {
                w();
            }
        }
    }

    fn push_to_targets(
        &mut self,
        target: &crate::script::Target,
        make: impl Fn() -> Push,
    ) -> usize {
        let ids: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, e)| target.matches(e.device.as_ref()))
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            self.push(*id, make());
        }
        ids.len()
    }

    fn account_info(&self, a: &Account) -> AccountInfo {
        use base64::Engine as _;
        let devices = a
            .devices
            .iter()
            .map(|(id, c)| {
                let key = (a.phone.clone(), *id);
                DeviceInfo {
                    id: *id,
                    jid: format!("{}:{}@s.whatsapp.net", a.phone, id),
                    lid: format!("{}:{}@lid", a.lid_user, id),
                    key_index: c.key_index,
                    os: c.registration.os.clone(),
                    paired_at: c.paired_at,
                    connected: self.conns.values().any(|e| e.device.as_ref() == Some(&key)),
                    prekeys: c.keys.prekeys.len(),
                    queued: c.queue.len(),
                }
            })
            .collect();
        AccountInfo {
            phone: a.phone.clone(),
            lid: a.lid_user.clone(),
            identity_pub_b64: base64::engine::general_purpose::STANDARD.encode(a.identity_pub),
            platform: a.platform.clone(),
            business_name: a.business_name.clone(),
            devices,
        }
    }

    /// Allocates the lowest free device id (1..=255) and the next key index of an account.
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
}

/// A successful login check.
#[derive(Debug, Clone)]
pub(crate) struct LoginGrant {
    pub(crate) phone: String,
    pub(crate) lid_user: String,
    pub(crate) device: u16,
    pub(crate) creation: u64,
}

/// Why a login was refused (both answered `<failure reason="401"/>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginRefusal {
    /// No such account or no such linked device.
    UnknownDevice,
    /// The device exists but the Noise static key differs from the one it paired with.
    NoiseKeyMismatch,
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
