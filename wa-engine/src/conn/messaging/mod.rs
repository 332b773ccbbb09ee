//! Messaging inside the [`Connection`](super::Connection): prekey upkeep, sending (usync,
//! bundles, fan-out, server ack), receiving (decrypt, receipts, acks), retries and groups.
//!
//! [`Messaging`] owns its state (the [`Caches`] and the operations in flight); the
//! connection dispatches to it and lends a small [`Context`] for one call: `now`, the
//! store, the RNG, the credentials, the wire, the pending-IQ table and the event queue
//! (as quinn's `Connection` lends its `Streams` and `PacketSpace`s what they need).
//! Sans-IO like the rest of `conn`: multi-step operations wait on IQ responses through the
//! connection's pending table.

mod groups;
mod keys;
mod recv;
mod send;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use wa_proto::wa;

use super::event::{EventQueue, MessageStatus};
use super::lid;
use super::pending::Pending;
use super::request::RequestId;
use super::wire::Wire;
use crate::Jid;
use crate::group::{GroupInfo, ParticipantAction};
use crate::message::MessageId;
use crate::store::{Credentials, ProtocolAddress, Store};

pub(super) use send::SendOp;

/// Messages kept for answering retry receipts (whatsmeow keeps 256 recent sends).
const RECENT_SENT: usize = 256;

/// Retry receipts per message id before giving up (05 §9.3: 5 in whatsmeow, Baileys,
/// whatsapp-rust).
pub(super) const MAX_RETRIES: u32 = 5;

/// The messaging room of a connection: what it owns. Its methods take a [`Context`].
#[derive(Debug, Default)]
pub(crate) struct Messaging {
    /// State that outlives the connection (handed to the next one).
    pub(super) caches: Caches,
    /// Operations in flight on this connection.
    pub(super) ops: Ops,
}

/// What the connection lends [`Messaging`] for one call.
pub(crate) struct Context<'a> {
    /// The time of the call.
    pub(crate) now: Instant,
    /// Server unix time at `now`, milliseconds.
    pub(crate) server_ms: u64,
    /// Own AD JID while logged in.
    pub(crate) own: Option<Jid>,
    /// How long an IQ waits for its response.
    pub(crate) iq_timeout: Duration,
    /// One-time prekeys per upload.
    pub(crate) prekey_batch: u32,
    /// Wire namespace policy for 1:1 sends (07 §1.4).
    pub(crate) lid_wire: crate::conn::LidWire,
    /// Privacy-token gates and buckets (07 §2, §3).
    pub(crate) tokens: crate::conn::TokenPolicy,
    pub(crate) store: &'a dyn Store,
    pub(crate) rng: &'a mut StdRng,
    /// The device credentials; a signed-prekey rotation replaces them.
    pub(crate) creds: &'a mut Option<Credentials>,
    pub(crate) wire: &'a mut Wire,
    pub(crate) pending: &'a mut Pending,
    pub(crate) events: &'a mut EventQueue,
}

/// A message we sent, kept for retry receipts and status tracking.
#[derive(Debug, Clone)]
pub(super) struct SentMessage {
    pub(super) chat: Jid,
    pub(super) message: wa::Message,
    pub(super) status: Option<MessageStatus>,
}

/// In-memory state that outlives one connection attempt: device lists, group metadata,
/// sender-key distribution, recent sends, retry counters. A cache: losing it costs extra
/// queries (and a redistribution of sender keys), never correctness.
///
/// Take it from a closing [`Connection`](super::Connection) with
/// [`take_caches`](super::Connection::take_caches) and hand it to the next with
/// [`set_caches`](super::Connection::set_caches).
#[derive(Debug, Default)]
pub struct Caches {
    /// Device ids per user (non-AD JID), from usync; dropped on device notifications
    /// and on a phash mismatch (05 §5.2, §8).
    pub(super) devices: HashMap<Jid, Vec<u16>>,
    /// Devices whose bundle fetch failed (no keys published); skipped until the user's
    /// device list is refreshed.
    pub(super) no_bundle: HashSet<Jid>,
    /// Addresses known to have a session (saves a store read per device per send).
    pub(super) sessions: HashSet<ProtocolAddress>,
    /// Group metadata by group JID.
    pub(super) groups: HashMap<Jid, GroupInfo>,
    /// Per group: devices that already hold our current sender key (04 §9.6, Baileys /
    /// whatsapp-rust policy: distribute only to devices that lack it).
    pub(super) skdm_sent: HashMap<Jid, HashSet<Jid>>,
    /// Recent sends by id, oldest first in `sent_order`.
    pub(super) sent: HashMap<String, SentMessage>,
    sent_order: VecDeque<String>,
    /// Retry receipts we sent, per message id (requester side, 05 §9.3).
    pub(super) retries_sent: HashMap<String, u32>,
    /// Phone-number users whose sessions were already moved to their LID address
    /// (07 §1.3; whatsmeow caches its MigratePNToLID calls the same way).
    pub(super) migrated: HashSet<String>,
    /// Phone-number users we asked the server for a LID (usync `<lid/>`) without getting
    /// one: not asked again on this connection chain.
    pub(super) lid_asked: HashSet<Jid>,
    /// Privacy-token state (07 §2, §3): issuances in flight, 463 recoveries, pruning, the
    /// reach-out timelock.
    pub(super) tokens: super::tokens::TokenState,
}

impl Caches {
    pub(super) fn remember_sent(&mut self, id: &str, chat: Jid, message: wa::Message) {
        if self
            .sent
            .insert(
                id.to_owned(),
                SentMessage {
                    chat,
                    message,
                    status: None,
                },
            )
            .is_none()
        {
            self.sent_order.push_back(id.to_owned());
        }
        while self.sent_order.len() > RECENT_SENT {
            if let Some(old) = self.sent_order.pop_front() {
                self.sent.remove(&old);
            }
        }
    }

    /// Forget a user's device list (and the bundle failures tied to it).
    pub(super) fn forget_devices(&mut self, user: &Jid) {
        let user = user.to_non_ad();
        self.devices.remove(&user);
        self.no_bundle.retain(|d| !d.same_user(&user));
    }

    /// Rotate our sender key for `group` on the next send: forget who has it.
    pub(super) fn forget_distribution(&mut self, group: &Jid) {
        self.skdm_sent.remove(group);
    }

    /// Note a finished retry of `id` so the counter map does not grow without bound.
    pub(super) fn retry_done(&mut self, id: &str) {
        self.retries_sent.remove(id);
    }
}

/// Who waits for a group IQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GroupOp {
    Create,
    Metadata,
    Participants {
        group: Jid,
        action: ParticipantAction,
    },
}

/// A retry re-send waiting for a bundle.
#[derive(Debug, Clone)]
pub(crate) struct RetryOp {
    pub(super) id: String,
    pub(super) requester: Jid,
    pub(super) count: u32,
}

/// Operations in flight.
#[derive(Debug, Default)]
pub(crate) struct Ops {
    pub(super) next: u64,
    pub(super) sends: HashMap<u64, SendOp>,
    pub(super) retries: HashMap<u64, RetryOp>,
    pub(super) groups: HashMap<u64, (RequestId, GroupOp)>,
    pub(super) prekey_upload_in_flight: bool,
}

impl Ops {
    pub(super) fn next_id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

impl Messaging {
    /// The Signal address to use for `device` (07 §1.3): the LID address when the device is
    /// a phone-number device whose LID is known, after moving the PN sessions of that
    /// account there (once per account and connection chain, [`crate::conn::lid::migrate`]);
    /// otherwise the device's own address.
    ///
    /// # Errors
    /// A store failure while reading or moving sessions.
    pub(crate) fn session_address(
        &mut self,
        cx: &mut Context<'_>,
        device: &Jid,
    ) -> Result<ProtocolAddress, crate::store::StoreError> {
        // Our own devices: the LID from the credentials (07 §1.2), never the map.
        if let Some(own_lid) = lid::own_twin(cx.creds.as_ref(), device) {
            if device.is_pn() {
                return Ok(crate::conn::signal_address(&lid::with_device_of(
                    &own_lid, device,
                )));
            }
            return Ok(crate::conn::signal_address(device));
        }
        let Some(lid) = lid::lid_of(cx.store, device) else {
            return Ok(crate::conn::signal_address(device));
        };
        let pn_user = device.user().to_owned();
        if !self.caches.migrated.contains(&pn_user) {
            let mut batch = crate::store::StoreBatch::new();
            let (from, _) = lid::migrate(cx.store, &mut batch, &pn_user, lid.user())?;
            if !batch.is_empty() {
                cx.store.apply(batch)?;
            }
            for address in from {
                self.caches.sessions.remove(&address);
            }
            self.caches.migrated.insert(pn_user);
        }
        Ok(crate::conn::signal_address(&lid::with_device_of(
            &lid, device,
        )))
    }
}

/// `MessageId` of a string id.
pub(super) fn message_id(id: &str) -> MessageId {
    MessageId(id.to_owned())
}
