//! Live connections: which device each WebSocket connection is bound to, what a registration
//! connection registered, and the work ([`Push`]) waiting for each connection's session.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use wa_engine::binary::Node;

use crate::accounts::{DevKey, PairPlan, Registration};
use crate::script::{StreamErrorKind, Target};

/// The id of one WebSocket connection inside the sandbox (unique per [`Router`](crate::Router)).
pub type ConnId = u64;

/// Work the sandbox hands to one connection's session.
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
    Stanza(Node),
    /// Send this stream error, then close.
    StreamError(StreamErrorKind),
    /// Close the socket without a word.
    Drop,
}

/// Called when a connection has new [`Push`]es; the tokio driver wakes the task.
pub(crate) type Waker = Arc<dyn Fn() + Send + Sync>;

struct ConnEntry {
    device: Option<DevKey>,
    inbox: VecDeque<Push>,
    waker: Option<Waker>,
    registration: Option<Registration>,
    /// The device's stanzas flow to this connection (after `<success>` for active logins,
    /// after `<active/>` for passive ones: shared/protocol/03 §7.2).
    ready: bool,
}

/// Every live connection, by id.
pub(crate) struct Connections {
    conns: HashMap<ConnId, ConnEntry>,
    next: ConnId,
}

impl Default for Connections {
    fn default() -> Self {
        Self {
            conns: HashMap::new(),
            next: 1,
        }
    }
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("live", &self.conns.len())
            .finish_non_exhaustive()
    }
}

impl Connections {
    /// Registers a new connection and returns its id.
    pub(crate) fn open(&mut self) -> ConnId {
        let id = self.next;
        self.next += 1;
        self.conns.insert(
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
    pub(crate) fn set_waker(&mut self, conn: ConnId, waker: Waker) {
        if let Some(entry) = self.conns.get_mut(&conn) {
            entry.waker = Some(waker);
        }
    }

    /// Forgets a closed connection.
    pub(crate) fn close(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
    }

    /// Queues work for a connection and wakes it.
    pub(crate) fn push(&mut self, conn: ConnId, push: Push) {
        if let Some(entry) = self.conns.get_mut(&conn) {
            entry.inbox.push_back(push);
            if let Some(w) = &entry.waker {
                w();
            }
        }
    }

    /// Takes the next piece of work for `conn`.
    pub(crate) fn take_push(&mut self, conn: ConnId) -> Option<Push> {
        self.conns.get_mut(&conn).and_then(|e| e.inbox.pop_front())
    }

    /// Remembers what a registration connection registered.
    pub(crate) fn set_registration(&mut self, conn: ConnId, registration: Registration) {
        if let Some(entry) = self.conns.get_mut(&conn) {
            entry.registration = Some(registration);
        }
    }

    /// What a registration connection registered.
    pub(crate) fn registration_of(&self, conn: ConnId) -> Option<Registration> {
        self.conns.get(&conn).and_then(|e| e.registration.clone())
    }

    /// The device a connection is logged in as.
    pub(crate) fn device_of(&self, conn: ConnId) -> Option<DevKey> {
        self.conns.get(&conn).and_then(|e| e.device.clone())
    }

    /// Binds (`Some`) or detaches (`None`) a connection's device.
    pub(crate) fn bind(&mut self, conn: ConnId, device: Option<DevKey>) {
        if let Some(e) = self.conns.get_mut(&conn) {
            e.device = device;
        }
    }

    /// The connections bound to a device.
    pub(crate) fn of_device(&self, dev: &DevKey) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, e)| e.device.as_ref() == Some(dev))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether a device has a live logged-in connection.
    pub(crate) fn is_connected(&self, dev: &DevKey) -> bool {
        self.conns.values().any(|e| e.device.as_ref() == Some(dev))
    }

    /// The live, ready connection of a device, if any.
    pub(crate) fn ready_conn(&self, dev: &DevKey) -> Option<ConnId> {
        self.conns
            .iter()
            .find(|(_, e)| e.ready && e.device.as_ref() == Some(dev))
            .map(|(id, _)| *id)
    }

    /// Marks a connection ready for its device's stanzas. Returns its device when it was
    /// not ready before and is bound to one (then the device's queue is to be replayed).
    pub(crate) fn make_ready(&mut self, conn: ConnId) -> Option<DevKey> {
        let entry = self.conns.get_mut(&conn)?;
        if entry.ready {
            return None;
        }
        entry.ready = true;
        entry.device.clone()
    }

    /// The connections a fault target reaches.
    pub(crate) fn targeted(&self, target: &Target) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, e)| target.matches(e.device.as_ref()))
            .map(|(id, _)| *id)
            .collect()
    }
}
