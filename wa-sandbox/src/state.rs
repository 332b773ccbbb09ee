//! The sandbox's state: the rooms under one lock, and the [`Router`] handle on them.
//!
//! Each room owns its data and the logic over it:
//! [`accounts`](crate::accounts) (the account [`Directory`]),
//! [`connections`](crate::connections) (live connections and their work),
//! [`pairing`](crate::pairing) (QR refs, code pairings),
//! [`keys`](crate::keys) (published Signal keys),
//! [`groups`](crate::groups), [`routing`](crate::routing) (offline queues, delivery log),
//! [`script`](crate::script) (global faults), and [`media`](crate::media) (its own lock).
//! [`State`] holds one of each plus what they share: the settings, the seeded RNG, the
//! stanza id sequence and the server's identity. One mutex guards them all, so a step that
//! touches several rooms (routing a message reads the directory and the groups, writes the
//! queues and the connections) is atomic and there is no lock order to get wrong. The
//! methods here only compose rooms.
//!
//! One [`Router`] is shared (cheap `Clone`) by every [`ServerSession`](crate::ServerSession),
//! the [`Phone`](crate::Phone) handles, the fault injector and the HTTP control API. It opens
//! no sockets and never reads the monotonic clock: time-dependent work (QR ref expiry) is
//! done by the sessions, which are given `now: Instant`. Unix timestamps (stanza `t`, ADV
//! timestamps) come from the configured [`Clock`](crate::Clock).

use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, RngExt as _, SeedableRng as _};
use wa_engine::binary::Node;

use crate::accounts::{
    Account, AccountInfo, DevKey, DeviceInfo, Directory, PairPlan, Registration, validate_phone,
};
use crate::appsync::AppStateServer;
use crate::calls::{CallRecord, Calls};
use crate::config::{QrTiming, RouterConfig};
use crate::connections::{ConnId, Connections, Push, Waker};
use crate::error::PhoneError;
use crate::groups::{GroupOps, Groups};
use crate::identity::{ROOT_SERIAL, ServerIdentity};
use crate::keys::{self, KeyStore, Upload};
use crate::media::MediaHost;
use crate::pairing::Pairing;
use crate::presence::{PresenceCtx, Presences};
use crate::primary::{PhoneCtx, Primaries};
use crate::privacy::Privacy;
use crate::profile::Profiles;
use crate::routing::{Courier, Routing};
use crate::script::{Fault, FaultState, StreamErrorKind, Target};
use crate::stanzas::{self, Ids, attr_jid};
use crate::usync::Usync;

/// Every room of the simulated server, behind the [`Router`]'s one lock.
pub(crate) struct State {
    pub(crate) config: RouterConfig,
    pub(crate) rng: StdRng,
    ids: Ids,
    server: ServerIdentity,
    /// Accounts and their linked devices.
    pub(crate) directory: Directory,
    /// Live connections.
    conns: Connections,
    /// QR refs and code pairings in progress.
    pub(crate) pairing: Pairing,
    /// Global faults (refusals, frame delay).
    faults: FaultState,
    /// Published Signal keys.
    pub(crate) keys: KeyStore,
    /// Groups by id.
    pub(crate) groups: Groups,
    /// Offline queues, phone inboxes, delivery log, contacts.
    pub(crate) routing: Routing,
    /// The app-state server (versions, patches, live records per account and collection).
    pub(crate) appsync: AppStateServer,
    /// The simulated phones' sync side (Signal store, sync keys, switches).
    pub(crate) primaries: Primaries,
    /// The media host (a clone of the [`Router`]'s; it has its own lock): the phones store
    /// their history-sync blobs there.
    pub(crate) media: MediaHost,
    /// Addressing and privacy-token settings, issued tokens, the admission rule (07 §5).
    pub(crate) privacy: Privacy,
    /// Presence subscriptions and each account's last presence (06 §5).
    pub(crate) presences: Presences,
    /// The log of routed call stanzas.
    pub(crate) calls: Calls,
    /// Status texts and profile pictures (`profile`).
    pub(crate) profiles: Profiles,
    /// Edge routing issued per account and received per device (`notices`).
    pub(crate) edge: crate::notices::EdgeBook,
}

impl State {
    /// A client's `<presence>` (own presence or a subscription; 06 §5.1).
    pub(crate) fn route_presence(&mut self, from: &DevKey, node: &Node) {
        self.presence_ctx().on_presence(from, node);
    }

    /// A client's `<chatstate>` (06 §5.2).
    pub(crate) fn route_chat_state(&mut self, from: &DevKey, node: &Node) {
        self.presence_ctx().on_chat_state(from, node);
    }

    /// A client's `<call>` (offer, reject, ...), to the other account's devices.
    pub(crate) fn route_call(&mut self, from: &DevKey, node: &Node) {
        let mut calls = std::mem::take(&mut self.calls);
        crate::calls::route(&mut self.courier(), &mut calls, from, node);
        self.calls = calls;
    }

    fn presence_ctx(&mut self) -> PresenceCtx<'_> {
        PresenceCtx {
            presences: &mut self.presences,
            dir: &self.directory,
            conns: &mut self.conns,
            groups: &self.groups,
            now: self.config.clock.unix_now(),
        }
    }

    /// The rooms a routing step works in.
    pub(crate) fn courier(&mut self) -> Courier<'_> {
        Courier {
            routing: &mut self.routing,
            conns: &mut self.conns,
            dir: &self.directory,
            groups: &self.groups,
            ids: &mut self.ids,
            rng: &mut self.rng,
            clock: self.config.clock,
            privacy: &mut self.privacy,
        }
    }

    /// The rooms a phone sync step works in (`primary`).
    pub(crate) fn phone_ctx(&mut self) -> PhoneCtx<'_> {
        PhoneCtx {
            phones: &mut self.primaries,
            courier: Courier {
                routing: &mut self.routing,
                conns: &mut self.conns,
                dir: &self.directory,
                groups: &self.groups,
                ids: &mut self.ids,
                rng: &mut self.rng,
                clock: self.config.clock,
                privacy: &mut self.privacy,
            },
            keys: &mut self.keys,
            server: &mut self.appsync,
            media: &self.media,
            default_on: self.config.phone_sync,
        }
    }

    /// Answers a `w:sync:app:state` IQ of device `dev` (shared/protocol/08 §3, §11) and sends
    /// `server_sync` to the account's other devices for every accepted patch.
    pub(crate) fn app_state_iq(&mut self, dev: &DevKey, id: &str, iq: &Node) -> Node {
        let out = self.appsync.answer(dev, id, iq);
        self.phone_ctx()
            .notify_server_sync(&dev.0, dev.1, &out.accepted, None);
        out.reply
    }

    /// Runs a group operation, then delivers the notifications it made, in order.
    pub(crate) fn with_groups<T>(&mut self, op: impl FnOnce(&mut GroupOps<'_>) -> T) -> T {
        let mut ops = GroupOps {
            groups: &mut self.groups.by_id,
            dir: &self.directory,
            rng: &mut self.rng,
            ids: &mut self.ids,
            clock: self.config.clock,
            out: Vec::new(),
        };
        let result = op(&mut ops);
        let out = ops.out;
        self.courier().deliver_all(out);
        result
    }

    /// A fresh server stanza id (decimal string; shared/protocol/03 §10.1).
    pub(crate) fn fresh_id(&mut self) -> String {
        self.ids.fresh()
    }

    /// Queues work for a connection and wakes it.
    pub(crate) fn push(&mut self, conn: ConnId, push: Push) {
        self.conns.push(conn, push);
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
                    connected: self.conns.is_connected(&key),
                    prekeys: self.keys.companion(&key).map_or(0, |k| k.prekeys.len()),
                    queued: self.routing.queue_len(&key),
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

    /// Replaces (or adds) an account with its companions' published keys (state import):
    /// the account's queues, phone inbox and keys start afresh.
    pub(crate) fn replace_account(
        &mut self,
        account: Account,
        companions: Vec<(u16, keys::PublishedKeys)>,
    ) {
        let phone = account.phone.clone();
        self.keys.forget_account(&phone);
        self.routing.forget_account(&phone);
        self.primaries.forget(&phone);
        self.appsync.forget_account(&phone);
        self.keys.add_phone(&phone, &account.identity_secret);
        for (device, published) in companions {
            self.keys.insert((phone.clone(), device), published);
        }
        self.directory.insert(account);
    }

    /// Applies a prekey upload of device `dev` (04 §4.2) and returns its new one-time
    /// prekey count.
    pub(crate) fn prekey_upload(&mut self, dev: &DevKey, upload: Upload) -> usize {
        let count = self.keys.upload(dev, upload);
        // The phone onboards a companion once it can build a session with it (its bundle has
        // one-time prekeys): app-state key share, initial patches, history (`primary`).
        if count > 0
            && let Err(e) = self.phone_ctx().onboard(dev)
        {
            tracing::warn!(phone = %dev.0, device = dev.1, error = %e, "phone could not onboard a companion");
        }
        count
    }

    /// Answers a bundle fetch `<key><user jid/>…</key>` (04 §4.4, 05 §14 "Prekeys"): one
    /// `<user>` per requested device with its keys and one popped one-time prekey, or
    /// `<error code="404" text="item-not-found"/>` for a device that does not exist. A
    /// companion left with fewer than [`keys::LOW_PREKEY_THRESHOLD`] keys is sent
    /// `<notification type="encrypt"><count value=N/></notification>` (unless one is still
    /// unacknowledged); the phone refills its own pool.
    pub(crate) fn prekey_fetch(&mut self, id: &str, key: &Node) -> Node {
        let mut users = Vec::new();
        let mut low = Vec::new();
        for user in key.children_by_tag("user") {
            let Some(jid_value) = user.get_attr("jid").cloned() else {
                continue;
            };
            let dev = attr_jid(user, "jid")
                .and_then(|j| self.directory.resolve_user(&j).map(|p| (p, j.device())));
            let bundle = dev.and_then(|dev| {
                let (node, left) = self.keys.take_bundle(&dev, jid_value.clone())?;
                if let Some(count) = left {
                    low.push((dev, count));
                }
                Some(node)
            });
            users.push(bundle.unwrap_or_else(|| {
                Node::new("user")
                    .attr("jid", jid_value)
                    .with_children([Node::new("error")
                        .attr("code", "404")
                        .attr("text", "item-not-found")])
            }));
        }
        let mut courier = self.courier();
        for (dev, count) in low {
            if courier.has_queued_notification(&dev, "encrypt") {
                continue;
            }
            let id = courier.ids.fresh();
            let t = courier.clock.unix_now();
            courier.deliver(&dev, keys::count_notification(&id, t, count));
        }
        stanzas::iq_result(id, vec![Node::new("list").with_children(users)])
    }

    /// Answers a digest IQ for device `dev` (04 §4.5).
    pub(crate) fn prekey_digest(&self, id: &str, dev: &DevKey) -> Node {
        self.keys.digest_reply(id, dev)
    }

    /// Answers a usync IQ (05 §5, 06 §4).
    pub(crate) fn usync(&mut self, id: &str, iq: &Node) -> Node {
        Usync {
            dir: &self.directory,
            rng: &mut self.rng,
            profiles: Some(&self.profiles),
        }
        .reply(id, iq)
    }

    /// Answers a `w:g2` IQ from device `actor` (06 §1) and delivers its notifications.
    pub(crate) fn group_iq(&mut self, actor: &DevKey, id: &str, iq: &Node) -> Node {
        self.with_groups(|ops| ops.group_iq(actor, id, iq))
    }

    /// A connection starts taking its device's stanzas: returns the queued ones.
    pub(crate) fn activate(&mut self, conn: ConnId) -> Vec<Node> {
        self.courier().activate(conn)
    }

    /// How many stanzas of `conn`'s offline replay are still unacknowledged.
    pub(crate) fn outstanding_replay(&mut self, conn: ConnId) -> usize {
        self.courier().outstanding_replay(conn)
    }

    /// Routes a client `<message>` and returns the server ack (05 §14, §8).
    pub(crate) fn route_message(&mut self, sender: &DevKey, node: &Node) -> Option<Node> {
        let ack = self.courier().route_message(sender, node);
        // A companion's message to its own phone (device 0; a peer message such as an
        // app-state key request, 05 §13, 08 §2.2): the phone reads it.
        let to_own_phone = attr_jid(node, "to").is_some_and(|to| {
            to.device() == 0
                && !to.is_group()
                && self.directory.resolve_user(&to).as_deref() == Some(sender.0.as_str())
        });
        if sender.1 != 0
            && to_own_phone
            && node.child_by_tag("enc").is_some()
            && ack.as_ref().is_some_and(|a| a.get_attr("error").is_none())
            && let Err(e) = self.phone_ctx().receive_peer(sender, node)
        {
            tracing::debug!(phone = %sender.0, device = sender.1, error = %e, "phone could not read a peer message");
        }
        ack
    }

    /// Routes a `<receipt>` from device `from` (05 §14 "Receipts", §10.4).
    pub(crate) fn route_receipt(&mut self, from: &DevKey, node: &Node) {
        if node.get_attr_str("type") == Some("hist_sync") {
            self.phone_ctx().hist_receipt(from, node);
        }
        self.courier().route_receipt(from, node);
    }

    /// A client `<ack>` (05 §11): the stanza it names leaves the device's queue.
    pub(crate) fn client_ack(&mut self, from: &DevKey, node: &Node) {
        self.courier().client_ack(from, node);
    }

    /// Remembers a push name from `<presence name>` (06 §3.3).
    pub(crate) fn set_push_name(&mut self, phone: &str, name: &str) {
        self.directory.set_push_name(phone, name);
    }

    fn push_to_targets(&mut self, target: &Target, make: impl Fn() -> Push) -> usize {
        let ids = self.conns.targeted(target);
        for id in &ids {
            self.conns.push(*id, make());
        }
        ids.len()
    }

    /// Tells every live connection of a device `kind`, then detaches them from it.
    fn evict(&mut self, dev: &DevKey, except: Option<ConnId>, kind: &StreamErrorKind) {
        for conn in self.conns.of_device(dev) {
            if Some(conn) == except {
                continue;
            }
            self.conns.push(conn, Push::StreamError(kind.clone()));
            self.conns.bind(conn, None);
        }
    }
}

/// Makes the sandbox's durable state ([`Router::export_state`]) durable, e.g. by writing it
/// to a file and syncing it. Installed with [`Router::set_durability`].
///
/// Called on the thread of the connection whose request changed the state (a tokio worker in
/// [`Sandbox::start`](crate::Sandbox::start)), never under the sandbox's lock, so an
/// implementation may call [`Router::export_state`]; it blocks that connection until it
/// returns, which is the point. Calls from several connections may overlap: an
/// implementation serialises its writes and exports after taking its own lock, so a newer
/// state is never overwritten by an older one.
pub trait Durability: Send + Sync {
    /// Writes `router`'s state durably (returns once it is on stable storage).
    ///
    /// # Errors
    /// Whatever the storage reports; the sandbox logs it and goes on (a simulator has no
    /// better answer: the real service would refuse the pairing).
    fn persist(&self, router: &Router) -> std::io::Result<()>;

    /// Writes `router`'s offline queues ([`Router::export_queues`]) durably. Called after a
    /// client `<message>` was routed into its recipients' queues and before the server acks
    /// it to the sender, so an acked message survives a crash of the server (as on
    /// WhatsApp's servers, which store a message before they acknowledge it). Calls come
    /// from every connection, one per message: an implementation should let one write
    /// cover the calls that arrived while the previous write ran (a group commit). The
    /// default keeps nothing (queues in memory only).
    ///
    /// # Errors
    /// As [`persist`](Self::persist).
    fn persist_queues(&self, router: &Router) -> std::io::Result<()> {
        let _ = router;
        Ok(())
    }
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
    media: MediaHost,
    /// Where linked devices are made durable before the server answers (none: in memory
    /// only). Its own lock, never taken with `inner` held.
    durability: Arc<RwLock<Option<Arc<dyn Durability>>>>,
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
            Some(keys) => ServerIdentity::from_keys(keys),
            None => ServerIdentity::generate(&mut rng, now),
        };
        // Server IQ ids are decimal numbers (shared/protocol/03 §3, §10.1).
        let ids = Ids::starting_at(rng.random_range(100_000_000..1_000_000_000u64));
        let media = MediaHost::default();
        Self {
            inner: Arc::new(Mutex::new(State {
                config,
                rng,
                ids,
                server,
                directory: Directory::default(),
                conns: Connections::default(),
                pairing: Pairing::default(),
                faults: FaultState::default(),
                keys: KeyStore::default(),
                groups: Groups::default(),
                routing: Routing::default(),
                appsync: AppStateServer::default(),
                primaries: Primaries::default(),
                media: media.clone(),
                privacy: Privacy::default(),
                presences: Presences::default(),
                calls: Calls::default(),
                profiles: Profiles::default(),
                edge: crate::notices::EdgeBook::default(),
            })),
            media,
            durability: Arc::default(),
        }
    }

    /// Installs (or, with `None`, removes) the hook that makes the durable state
    /// ([`export_state`](Self::export_state)) durable whenever a device is linked (before the
    /// server answers the pair-device-sign), unlinked, or an account is created (see
    /// [`Durability`]).
    pub fn set_durability(&self, durability: Option<Arc<dyn Durability>>) {
        *self
            .durability
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = durability;
    }

    /// Runs the [`Durability`] hook, if any; `what` names the change for the log. Must not
    /// be called with the state lock held.
    fn make_durable(&self, what: &'static str) {
        let hook = self
            .durability
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(hook) = hook
            && let Err(e) = hook.persist(self)
        {
            tracing::error!(error = %e, what, "sandbox: cannot make the state durable");
        }
    }

    /// Runs the [`Durability`] hook's [`persist_queues`](Durability::persist_queues), if a
    /// hook is installed. Must not be called with the state lock held.
    pub(crate) fn make_queues_durable(&self) {
        let hook = self
            .durability
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(hook) = hook
            && let Err(e) = hook.persist_queues(self)
        {
            tracing::error!(error = %e, "sandbox: cannot make the offline queues durable");
        }
    }

    /// The media host: `media_conn` replies, stored blobs, fault injection.
    pub fn media(&self) -> &MediaHost {
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
        wa_engine::noise::TrustRoot::new(self.trust_root_key(), ROOT_SERIAL)
    }

    /// The server's Noise static public key (32 bytes); the leaf certificate's key.
    pub fn server_static_pub(&self) -> [u8; 32] {
        self.lock().server.static_pub()
    }

    /// Creates an account (its phone handle is made by [`Router::create_account`]).
    pub(crate) fn new_account(&self, phone: &str) -> Result<(), PhoneError> {
        validate_phone(phone)?;
        {
            let mut guard = self.lock();
            let st = &mut *guard;
            let created = st.config.clock.unix_now();
            let account = st.directory.create(phone, &mut st.rng, created)?;
            st.keys.add_phone(phone, &account.identity_secret);
        }
        self.make_durable("account created");
        Ok(())
    }

    /// Whether an account has this phone number.
    pub(crate) fn has_account(&self, phone: &str) -> bool {
        self.lock().directory.contains(phone)
    }

    /// Public records of all accounts, by phone number.
    pub fn accounts(&self) -> Vec<AccountInfo> {
        let st = self.lock();
        st.directory.iter().map(|a| st.account_info(a)).collect()
    }

    /// The public record of one account.
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`].
    pub fn account(&self, phone: &str) -> Result<AccountInfo, PhoneError> {
        let st = self.lock();
        let account = st
            .directory
            .get(phone)
            .ok_or_else(|| PhoneError::NoSuchAccount(phone.to_owned()))?;
        Ok(st.account_info(account))
    }

    /// Simulates lost `devices` notifications (shared/protocol/05 §5.2): while `silent` is
    /// true, linking or unlinking a companion tells no other device, so contacts keep a
    /// stale device list until a send's ack reports the drift with its `phash` (05 §7.4,
    /// §14 step 6). Default false.
    pub fn set_silent_device_changes(&self, silent: bool) {
        self.lock().routing.silent_device_changes = silent;
    }

    /// Account `from`'s phone calls account `to` (an `<offer>` to every device of `to`,
    /// `call-id` drawn here): returns the call id.
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`] when either account is unknown.
    pub fn place_call(&self, from: &str, to: &str, video: bool) -> Result<String, PhoneError> {
        let mut st = self.lock();
        let st = &mut *st;
        for phone in [from, to] {
            if !st.directory.contains(phone) {
                return Err(PhoneError::NoSuchAccount(phone.to_owned()));
            }
        }
        let mut raw = [0u8; 16];
        st.rng.fill_bytes(&mut raw);
        let call_id: String = raw.iter().map(|b| format!("{b:02X}")).collect();
        let mut calls = std::mem::take(&mut st.calls);
        let placed = crate::calls::place(&mut st.courier(), &mut calls, from, to, video, &call_id);
        st.calls = calls;
        placed
            .map(|()| call_id)
            .ok_or_else(|| PhoneError::NoSuchAccount(to.to_owned()))
    }

    /// Every call stanza routed so far (offers placed, client offers, rejections, ...),
    /// oldest first.
    pub fn call_log(&self) -> Vec<CallRecord> {
        self.lock().calls.log()
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
        self.lock().faults.take_refusal()
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
        self.lock().conns.open()
    }

    /// Sets the function called when `conn` gets new work.
    pub(crate) fn set_waker(&self, conn: ConnId, waker: Waker) {
        self.lock().conns.set_waker(conn, waker);
    }

    /// Forgets a closed connection: its refs, pending code pairings and device binding.
    pub(crate) fn close_connection(&self, conn: ConnId) {
        let mut st = self.lock();
        if let Some(dev) = st.conns.device_of(conn) {
            st.presences.unsubscribe_all(&dev);
        }
        st.conns.close(conn);
        st.pairing.forget(conn);
    }

    /// Takes the next piece of work for `conn`.
    pub(crate) fn take_push(&self, conn: ConnId) -> Option<Push> {
        self.lock().conns.take_push(conn)
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

    /// The pause before the post-pairing 515 of device `device` of `phone`: a point in
    /// [`RouterConfig::restart_delay`](crate::RouterConfig::restart_delay) picked by hashing
    /// the device address, so it is stable per device and leaves the seeded RNG's sequence
    /// (and every seeded value after pairing) unchanged.
    pub(crate) fn restart_delay(&self, phone: &str, device: u16) -> Duration {
        let (min, max) = self.lock().config.restart_delay;
        if max <= min {
            return min;
        }
        let span = u64::try_from((max - min).as_micros()).unwrap_or(u64::MAX);
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in phone.bytes().chain(device.to_be_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        min + Duration::from_micros(h % span.saturating_add(1).max(1))
    }

    /// How long the socket stays open after the post-pairing 515.
    pub(crate) fn restart_close_grace(&self) -> Duration {
        self.lock().config.restart_close_grace
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
        let mut st = self.lock();
        let st = &mut *st;
        let refs = st.pairing.issue_refs(conn, count, &mut st.rng);
        st.conns.set_registration(conn, registration);
        refs
    }

    /// Marks a ref as expired (its display window passed).
    pub(crate) fn expire_ref(&self, r: &str) {
        self.lock().pairing.expire_ref(r);
    }

    /// Records a companion whose pair-device-sign verified and tells the device watchers,
    /// then makes it durable ([`Durability`]) before returning, so the caller answers (515)
    /// only once a crash can no longer lose the device. Returns false if the account
    /// vanished meanwhile.
    pub(crate) fn record_companion(&self, plan: &PairPlan, registration: Registration) -> bool {
        {
            let mut st = self.lock();
            let paired_at = st.config.clock.unix_now();
            let dev = (plan.phone.clone(), plan.device);
            let keys = registration.clone();
            if !st.directory.link(plan, registration, paired_at) {
                return false;
            }
            st.keys.link(dev.clone(), &keys);
            st.routing.reset_queue(&dev);
            st.courier()
                .notify_device_change(&plan.phone, plan.device, true);
        }
        self.make_durable("device linked");
        true
    }

    /// Releases a device id reserved by a pairing that did not complete.
    pub(crate) fn release_device(&self, phone: &str, device: u16) {
        self.lock().directory.release_device(phone, device);
    }

    /// The registration info of a connection.
    pub(crate) fn registration_of(&self, conn: ConnId) -> Option<Registration> {
        self.lock().conns.registration_of(conn)
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
        let account = st
            .directory
            .get(&phone)
            .ok_or(LoginRefusal::UnknownDevice)?;
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
        let dev = (phone, device);
        st.evict(&dev, Some(conn), &StreamErrorKind::Replaced);
        st.conns.bind(conn, Some(dev));
        Ok(grant)
    }

    /// Whether `noise_pub` is the Noise static key of a registered companion device: the
    /// condition for accepting a Noise IK resume (shared/protocol/01 §6); any other IK hello
    /// gets an XXfallback.
    pub(crate) fn knows_noise_key(&self, noise_pub: &[u8; 32]) -> bool {
        self.lock().directory.iter().any(|account| {
            account
                .devices
                .values()
                .any(|c| c.registration.noise_pub == *noise_pub)
        })
    }

    /// Detaches a connection from its device (it is leaving on its own).
    pub(crate) fn unbind_device(&self, conn: ConnId) {
        self.lock().conns.bind(conn, None);
    }

    /// How many one-time prekeys a device has on the server (device 0: the phone's pool).
    pub(crate) fn prekey_count(&self, phone: &str, device: u16) -> usize {
        self.lock()
            .keys
            .published(phone, device)
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
        let removed = st.directory.unlink(phone, device, now)?;
        let dev = (phone.to_owned(), device);
        st.keys.unlink(&dev);
        st.routing.forget_device(&dev);
        st.courier()
            .notify_device_removed(phone, device, removed.key_index);
        st.evict(&dev, None, &StreamErrorKind::DeviceRemoved);
        drop(st);
        self.make_durable("device unlinked");
        Ok(())
    }

    /// Looks up the live registration connection of a QR ref.
    pub(crate) fn conn_of_ref(&self, r: &str) -> Result<ConnId, PhoneError> {
        self.lock().pairing.conn_of_ref(r)
    }

    /// Hands a pair plan to a registration connection and retires all of its refs.
    pub(crate) fn deliver_pair_plan(&self, conn: ConnId, plan: PairPlan) {
        let mut st = self.lock();
        st.pairing.retire_refs(conn);
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
        let mut st = self.lock();
        let st = &mut *st;
        if !st.directory.contains(phone) {
            return Err(PhoneError::NoSuchAccount(phone.to_owned()));
        }
        Ok(st
            .pairing
            .code_hello(conn, phone, wrapped_companion_ephemeral, &mut st.rng))
    }

    /// Pushes work to a connection (used by the phone module).
    pub(crate) fn push(&self, conn: ConnId, push: Push) {
        self.lock().push(conn, push);
    }

    /// The stanzas routed to an account's primary phone, oldest first.
    pub(crate) fn phone_inbox(&self, phone: &str) -> Vec<Node> {
        self.lock().routing.phone_inbox(phone)
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

/// Injects faults into a running sandbox. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Faults {
    router: Router,
}

impl Faults {
    /// Fault injection over a router's connections.
    pub fn new(router: Router) -> Self {
        Self { router }
    }

    /// Applies a fault; returns how many live connections it reached (0 for the global
    /// faults `DelayFrames` and `RefuseConnections`).
    pub fn inject(&self, fault: Fault) -> usize {
        self.router.inject(fault)
    }

    /// Drops the live connection(s) of a device without a stream error.
    pub fn drop_connection(&self, phone: &str, device: u16) -> usize {
        self.inject(Fault::Drop {
            target: Target::device(phone, device),
        })
    }

    /// Sends a stream error to the live connection(s) of a device, then closes them.
    pub fn stream_error(&self, phone: &str, device: u16, error: StreamErrorKind) -> usize {
        self.inject(Fault::StreamError {
            target: Target::device(phone, device),
            error,
        })
    }

    /// Delays every server frame by `delay` (zero turns it off).
    pub fn delay_frames(&self, delay: std::time::Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.inject(Fault::DelayFrames { ms });
    }

    /// Refuses the next `count` WebSocket connections.
    pub fn refuse_connections(&self, count: u32) {
        self.inject(Fault::RefuseConnections { count });
    }
}
