//! [`Devices`]: wa-engine devices (client `Connection`s over their own stores) against one
//! sandbox [`Router`], on one simulated clock. It plays the parts of the engine's tokio
//! driver that a test needs: it builds each connection's `Config` (seeded), reconnects on
//! request with the same store and caches, and collects events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wa_engine::conn::{self, Config, Connection, Request, RequestId, SendError};
use wa_engine::{Jid, MemoryStore, Store};

use super::{LinkId, Session, Sim};
use crate::{Clock, Router, RouterConfig};

/// The unix time at the start of a simulation (seconds): 2023-11-14T22:13:20Z. Both sides'
/// stanzas carry timestamps derived from it, never from the system clock.
pub const UNIX_START: u64 = 1_700_000_000;

/// How long [`Devices::pair`] lets simulated time run for one step before it gives up.
const STEP_LIMIT: Duration = Duration::from_secs(300);

/// One engine device in a [`Devices`] simulation.
pub struct Device {
    /// The account (phone number) it pairs with.
    pub number: String,
    /// Its store: credentials, sessions, prekeys survive reconnects.
    pub store: Arc<dyn Store>,
    /// Connections opened so far (the first is 1).
    pub attempts: u32,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("number", &self.number)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// Engine devices against one sandbox router. Device `i` is link `i` of [`Self::sim`].
///
/// The router's unix clock is fixed at [`UNIX_START`] (server stanzas all carry that `t`);
/// the engine's unix time starts there and follows simulated time.
#[derive(Debug)]
pub struct Devices {
    /// The links (one per device) and the clock.
    pub sim: Sim<Connection, Session>,
    router: Router,
    seed: u64,
    /// One-time prekeys per upload for new connections (default 30, as the engine's
    /// messaging tests; the engine's own default is 812).
    pub prekey_batch: u32,
    devices: Vec<Device>,
}

impl Devices {
    /// A router seeded with `seed`, a fixed unix clock at [`UNIX_START`], the real QR timing
    /// (6 refs, 60 s then 20 s) and the real first-stanza pause (100 ms).
    pub fn new(seed: u64) -> Self {
        let config = RouterConfig {
            seed: Some(seed),
            clock: Clock::Fixed(UNIX_START),
            ..RouterConfig::default()
        };
        Self::with_router(seed, config)
    }

    /// As [`new`](Self::new), with the router's settings given (its seed is used as is).
    pub fn with_router(seed: u64, config: RouterConfig) -> Self {
        Self {
            sim: Sim::new(Instant::now(), seed),
            router: Router::new(config),
            seed,
            prekey_batch: 30,
            devices: Vec::new(),
        }
    }

    /// The sandbox's shared state: accounts, phones, faults.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// A new device (empty store) for account `number`, connected; nothing moves until the
    /// next drive.
    pub fn add_device(&mut self, number: &str) -> LinkId {
        self.add_device_with_store(number, Arc::new(MemoryStore::new()))
    }

    /// A device over `store` (paired or not) for account `number`, connected.
    pub fn add_device_with_store(&mut self, number: &str, store: Arc<dyn Store>) -> LinkId {
        let id = self.devices.len();
        self.devices.push(Device {
            number: number.to_owned(),
            store,
            attempts: 0,
        });
        let (conn, session) = self.open(id);
        let link = self.sim.connect(conn, session);
        debug_assert_eq!(link, id);
        link
    }

    /// A device.
    pub fn device(&self, id: LinkId) -> &Device {
        &self.devices[id]
    }

    /// The device's current connection.
    pub fn conn(&self, id: LinkId) -> &Connection {
        &self.sim.link(id).client
    }

    /// The device's current server session.
    pub fn session(&self, id: LinkId) -> &Session {
        &self.sim.link(id).server
    }

    /// Takes the events of the device's current connection.
    pub fn take_events(&mut self, id: LinkId) -> Vec<conn::Event> {
        self.sim.link_mut(id).take_client_events()
    }

    /// Sends a request on the device's connection at the current instant, then drives.
    ///
    /// # Errors
    /// What [`Connection::send`] refuses at once.
    pub fn send(&mut self, id: LinkId, request: Request) -> Result<RequestId, SendError> {
        let now = self.sim.now();
        let r = self.sim.link_mut(id).client.send(now, request);
        self.sim.drive();
        r
    }

    /// Replaces the device's connection by a new one over the same store (what the engine's
    /// driver does after a close that allows a reconnect, such as 515), then drives.
    pub fn reconnect(&mut self, id: LinkId) {
        let (conn, session) = self.open(id);
        let (mut old, _) = self.sim.replace(id, conn, session);
        // Device lists and the like carry over, as in the engine's driver.
        self.sim.link_mut(id).client.set_caches(old.take_caches());
        self.sim.drive();
    }

    /// Lets simulated time run until `pred` picks something out of one of the device's
    /// events (events before it are dropped); `None` if nothing came within `limit`.
    pub fn wait_for<T>(
        &mut self,
        id: LinkId,
        limit: Duration,
        mut pred: impl FnMut(&conn::Event) -> Option<T>,
    ) -> Option<T> {
        let mut found = None;
        self.sim.run_until(limit, |sim| {
            let events = &mut sim.link_mut(id).client_events;
            while let Some(e) = events.pop_front() {
                if let Some(t) = pred(&e) {
                    found = Some(t);
                    return true;
                }
            }
            false
        });
        found
    }

    /// Pairs the device by QR with its account's phone (creating the account if needed):
    /// waits for the QR, has the phone scan it, waits for the 515 restart, reconnects,
    /// waits for `<success>` and for the first prekey upload to be accepted. Returns the
    /// device's JID. Panics if a step does not happen within 300 s of simulated time.
    pub fn pair(&mut self, id: LinkId) -> Jid {
        let number = self.devices[id].number.clone();
        let phone = match self.router.phone(&number) {
            Ok(p) => p,
            Err(_) => self
                .router
                .create_account(&number)
                .expect("pair: account cannot be created"),
        };
        let code = self
            .wait_for(id, STEP_LIMIT, |e| match e {
                conn::Event::Qr { code, .. } => Some(code.clone()),
                _ => None,
            })
            .expect("pair: no QR shown");
        phone
            .scan(&code)
            .expect("pair: the phone cannot scan the QR");
        let restarted = self.sim.run_until(STEP_LIMIT, |sim| {
            sim.link(id).client.close_reason() == Some(&wa_engine::CloseReason::RestartRequired)
        });
        assert!(restarted, "pair: no 515 after pair-success");
        self.reconnect(id);
        let jid = self
            .wait_for(id, STEP_LIMIT, |e| match e {
                conn::Event::Connected { jid } => Some(jid.clone()),
                _ => None,
            })
            .expect("pair: no <success> after the restart");
        let store = Arc::clone(&self.devices[id].store);
        let uploaded = self.sim.run_until(STEP_LIMIT, |_| {
            store
                .prekey_counters()
                .ok()
                .flatten()
                .is_some_and(|c| c.first_unuploaded_id > 1)
        });
        assert!(uploaded, "pair: prekeys never uploaded");
        jid
    }

    /// A new connection and server session for device `id` at the current instant.
    fn open(&mut self, id: LinkId) -> (Connection, Session) {
        let now = self.sim.now();
        let device = &mut self.devices[id];
        device.attempts += 1;
        // Every connection gets its own seed, derived from the simulation's.
        let mut rng_seed = [0u8; 32];
        rng_seed[..8].copy_from_slice(&self.seed.to_be_bytes());
        rng_seed[8..16].copy_from_slice(&(id as u64).to_be_bytes());
        rng_seed[16..20].copy_from_slice(&device.attempts.to_be_bytes());
        let config = Config {
            trust_root: self.router.trust_root(),
            unix_time: Duration::from_secs(UNIX_START) + self.sim.elapsed(),
            rng_seed,
            prekey_batch: self.prekey_batch,
            ..Config::default()
        };
        let conn = Connection::new(config, Arc::clone(&device.store), now);
        let session = Session::new(self.router.clone(), now);
        (conn, session)
    }
}
