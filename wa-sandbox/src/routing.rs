//! Message routing (shared/protocol/05 §14): client `<message>` stanzas fanned out per
//! device, server acks, receipts routed back to the sender's devices, client acks, the
//! per-device offline queue, and the `devices` notifications of device-list changes.
//!
//! The sandbox never decrypts: it moves each `<to jid=device>`'s `<enc>` to that device as
//! `<message from=sender_device …><enc/></message>` (05 §9.1) and remembers who got what
//! from whom (the delivery log), so that receipts find the original sender whatever
//! shape of `to` a client uses (05 §10.2, §15).
//!
//! Every stanza for a companion goes through its [`Queue`]: it is sent at once when the
//! device has a ready connection and stays queued until the device acknowledges it (a
//! `<receipt>` or `<ack>` with the same id), so a device that was offline, or whose
//! connection dropped before acking, gets it (again) on its next login, in order, marked
//! `offline="1"` and followed by `<ib><offline count=N/></ib>` (05 §12, §14).
//!
//! [`Routing`] owns the queues, the phones' inboxes, the delivery log and who chatted with
//! whom. A routing step runs in a [`Courier`]: the routing state, the live connections,
//! read access to the directory and the groups, the stanza ids, the RNG (key-index lists
//! are signed) and the clock.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use rand::rngs::StdRng;
use tracing::{debug, trace};
use wa_engine::Jid;
use wa_engine::binary::{Content, Node, Value};

use crate::accounts::{DevKey, Directory};
use crate::config::Clock;
use crate::connections::{ConnId, Connections, Push};
use crate::groups::Groups;
use crate::privacy::{
    self, ERR_ADDRESSING, ERR_SMAX_INVALID, Parties, Presented, Privacy, Refusal,
};
use crate::queue::Queue;
use crate::stanzas::{self, Ids, attr_jid, device_jid};
use crate::usync::{Usync, phash};

/// At most this many stanzas are kept per simulated phone (its inbox is for inspection only).
const PHONE_INBOX_LIMIT: usize = 1000;

/// At most this many (message id, recipient device) entries are remembered for routing
/// receipts; the oldest are forgotten first.
const DELIVERY_LOG_LIMIT: usize = 200_000;

/// NACK / error code for a stanza that fails validation (Baileys `SERVER_ERROR_CODES`:
/// 479 "stanza validation failed", shared/protocol/05 §8).
const ERR_INVALID: &str = "479";

/// Who sent a delivered message, for routing its receipts.
#[derive(Debug, Clone)]
struct Delivery {
    sender: DevKey,
    /// The chat as the sender sees it: the group, or the recipient user (in the namespace
    /// the message was addressed in).
    chat: Jid,
    /// The message was LID-addressed: receipts name their devices by LID too (07 §1.6).
    lid: bool,
}

/// Routing memory shared by all connections.
#[derive(Debug, Default)]
pub(crate) struct Routing {
    /// Each companion's offline queue (created at its first stanza).
    queues: BTreeMap<DevKey, Queue>,
    /// Stanzas routed to each simulated phone (it decrypts nothing; kept for inspection,
    /// the newest [`PHONE_INBOX_LIMIT`]).
    phone_inboxes: HashMap<String, VecDeque<Node>>,
    log: HashMap<(String, DevKey), Delivery>,
    order: VecDeque<(String, DevKey)>,
    /// Phone -> phones it exchanged 1:1 messages with (who hears of its device changes).
    contacts: HashMap<String, BTreeSet<String>>,
    /// See [`Router::set_silent_device_changes`](crate::Router::set_silent_device_changes).
    pub(crate) silent_device_changes: bool,
}

impl Routing {
    /// Number of stanzas queued for a companion.
    pub(crate) fn queue_len(&self, dev: &DevKey) -> usize {
        self.queues.get(dev).map_or(0, Queue::len)
    }

    /// A companion was linked: it starts with an empty queue.
    pub(crate) fn reset_queue(&mut self, dev: &DevKey) {
        self.queues.remove(dev);
    }

    /// A companion was unlinked: its queue goes with it.
    pub(crate) fn forget_device(&mut self, dev: &DevKey) {
        self.queues.remove(dev);
    }

    /// An account is replaced (state import): its queues and its phone's inbox go.
    pub(crate) fn forget_account(&mut self, phone: &str) {
        self.queues.retain(|(p, _), _| p != phone);
        self.phone_inboxes.remove(phone);
    }

    /// Every non-empty companion queue: the device and its stanzas, oldest first
    /// ([`Router::export_queues`](crate::Router::export_queues)).
    pub(crate) fn queued(&self) -> Vec<(DevKey, Vec<Node>)> {
        self.queues
            .iter()
            .filter(|(_, q)| q.len() > 0)
            .map(|(dev, q)| (dev.clone(), q.nodes().cloned().collect()))
            .collect()
    }

    /// Replaces a companion's queue with `nodes` (a restored queue, oldest first).
    pub(crate) fn restore_queue(&mut self, dev: DevKey, nodes: Vec<Node>) {
        let mut queue = Queue::default();
        for node in nodes {
            queue.push(node);
        }
        self.queues.insert(dev, queue);
    }

    /// The stanzas routed to an account's phone, oldest first.
    pub(crate) fn phone_inbox(&self, phone: &str) -> Vec<Node> {
        self.phone_inboxes
            .get(phone)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn record(&mut self, id: &str, recipient: DevKey, delivery: Delivery) {
        let key = (id.to_owned(), recipient);
        if self.log.insert(key.clone(), delivery).is_none() {
            self.order.push_back(key);
            while self.order.len() > DELIVERY_LOG_LIMIT {
                if let Some(old) = self.order.pop_front() {
                    self.log.remove(&old);
                }
            }
        }
    }

    fn add_contact(&mut self, a: &str, b: &str) {
        if a == b {
            return;
        }
        self.contacts
            .entry(a.to_owned())
            .or_default()
            .insert(b.to_owned());
        self.contacts
            .entry(b.to_owned())
            .or_default()
            .insert(a.to_owned());
    }
}

/// `<ack class="message" id from=<to> t [phash] [error]/>` (shared/protocol/05 §8).
fn message_ack(id: &str, to: Option<Value>, t: u64) -> Node {
    let ack = Node::new("ack")
        .attr("class", "message")
        .attr("id", id.to_owned());
    let ack = match to {
        Some(to) => ack.attr("from", to),
        None => ack.attr("from", stanzas::server_jid()),
    };
    ack.attr("t", t.to_string())
}

/// Whether any `<enc>` in the list is a `pkmsg` (then `<device-identity>` goes along).
fn has_pkmsg(encs: &[Node]) -> bool {
    encs.iter().any(|e| e.get_attr_str("type") == Some("pkmsg"))
}

/// Stanza-level attributes of a client `<message>` that travel to the recipients unchanged
/// (05 §14 step 5; `category` and `push_priority` of peer messages: 05 §13).
const PASSED_ATTRS: [&str; 3] = ["edit", "category", "push_priority"];

/// One routing step's view of the sandbox.
pub(crate) struct Courier<'a> {
    /// Queues, inboxes, delivery log, contacts.
    pub(crate) routing: &'a mut Routing,
    /// Live connections (stanzas for a ready one are pushed at once).
    pub(crate) conns: &'a mut Connections,
    /// Who exists.
    pub(crate) dir: &'a Directory,
    /// Group membership.
    pub(crate) groups: &'a Groups,
    /// Notification ids.
    pub(crate) ids: &'a mut Ids,
    /// Signs key-index lists in `devices` notifications.
    pub(crate) rng: &'a mut StdRng,
    /// Stanza timestamps.
    pub(crate) clock: Clock,
    /// Addressing settings, issued tokens, contacts: the 1:1 admission rule (07 §5.4).
    pub(crate) privacy: &'a mut Privacy,
}

/// The AD JID of a device in the LID namespace: `lid@lid` for device 0, `lid:d@lid` else.
pub(crate) fn lid_device_jid(lid_user: &str, device: u16) -> Jid {
    if device == 0 {
        Jid::lid(lid_user.to_owned())
    } else {
        Jid::lid(lid_user.to_owned()).with_device(device)
    }
}

impl Courier<'_> {
    /// Hands a stanza to a device: queued until acknowledged, and sent now if the device
    /// has a ready connection. Device 0 (the simulated phone) only records it.
    pub(crate) fn deliver(&mut self, dev: &DevKey, node: Node) {
        let conn = self.conns.ready_conn(dev);
        if !self.dir.contains(&dev.0) {
            return;
        }
        if dev.1 == 0 {
            let inbox = self.routing.phone_inboxes.entry(dev.0.clone()).or_default();
            if inbox.len() >= PHONE_INBOX_LIMIT {
                inbox.pop_front();
            }
            inbox.push_back(node);
            return;
        }
        if self.dir.companion(dev).is_none() {
            return;
        }
        self.routing
            .queues
            .entry(dev.clone())
            .or_default()
            .push(node.clone());
        if let Some(conn) = conn {
            self.conns.push(conn, Push::Stanza(node));
        }
    }

    /// Delivers stanzas in order (e.g. the notifications of a group change).
    pub(crate) fn deliver_all(&mut self, stanzas: Vec<(DevKey, Node)>) {
        for (dev, node) in stanzas {
            self.deliver(&dev, node);
        }
    }

    /// A companion's queue, if the companion exists.
    fn queue_mut(&mut self, dev: &DevKey) -> Option<&mut Queue> {
        self.dir.companion(dev)?;
        Some(self.routing.queues.entry(dev.clone()).or_default())
    }

    /// A connection starts taking its device's stanzas: returns the queued ones (marked
    /// `offline="1"`), in order. Later stanzas are pushed to it as they come.
    pub(crate) fn activate(&mut self, conn: ConnId) -> Vec<Node> {
        let Some(dev) = self.conns.make_ready(conn) else {
            return Vec::new();
        };
        self.queue_mut(&dev)
            .map_or_else(Vec::new, |q| q.replay(conn))
    }

    /// Whether a notification of this `type` waits unacknowledged in a device's queue.
    pub(crate) fn has_queued_notification(&self, dev: &DevKey, kind: &str) -> bool {
        self.routing
            .queues
            .get(dev)
            .is_some_and(|q| q.has_notification(kind))
    }

    /// How many stanzas of `conn`'s offline replay are still unacknowledged.
    pub(crate) fn outstanding_replay(&self, conn: ConnId) -> usize {
        let Some(dev) = self.conns.device_of(conn) else {
            return 0;
        };
        self.routing
            .queues
            .get(&dev)
            .map_or(0, |q| q.outstanding(conn))
    }

    /// Routes a `<message>` sent by device `sender` and returns the server ack (05 §14
    /// "Routing a client `<message>`", §8). `None` when the stanza has no `id` to ack.
    pub(crate) fn route_message(&mut self, sender: &DevKey, node: &Node) -> Option<Node> {
        let id = node
            .get_attr_str("id")
            .filter(|s| !s.is_empty())?
            .to_owned();
        let t = self.clock.unix_now();
        let to_value = node.get_attr("to").cloned();
        let refuse = |code: &str| {
            debug!(%id, code, "message refused");
            Some(message_ack(&id, to_value.clone(), t).attr("error", code.to_owned()))
        };
        let Some(to) = attr_jid(node, "to") else {
            return refuse(ERR_INVALID);
        };
        let Some(kind) = node.get_attr_str("type").map(str::to_owned) else {
            return refuse(ERR_INVALID);
        };
        let direct: Vec<Node> = node.children_by_tag("enc").cloned().collect();
        let mut listed: Vec<(Jid, Vec<Node>)> = Vec::new();
        if let Some(parts) = node.child_by_tag("participants") {
            for to_node in parts.children_by_tag("to") {
                let Some(jid) = attr_jid(to_node, "jid") else {
                    return refuse(ERR_INVALID);
                };
                let encs: Vec<Node> = to_node.children_by_tag("enc").cloned().collect();
                if encs.is_empty() {
                    return refuse(ERR_INVALID);
                }
                listed.push((jid, encs));
            }
        }
        if direct.is_empty() && listed.is_empty() {
            return refuse(ERR_INVALID);
        }
        let outgoing = Outgoing {
            id: &id,
            t,
            kind: &kind,
            node,
            direct,
            listed,
        };
        let result = if to.is_group() {
            self.route_group(sender, &to, outgoing)
        } else if to.is_pn() || to.is_lid() {
            self.gate_direct(sender, &to, &outgoing)
                .and_then(|admitted| {
                    let phash = self.route_direct(sender, &to, outgoing)?;
                    if let Some(recipient) = admitted {
                        self.admitted(&sender.0, &recipient);
                    }
                    Ok(phash)
                })
        } else {
            Err(ERR_INVALID)
        };
        match result {
            Ok(phash) => Some(message_ack(&id, to_value.clone(), t).attr_opt("phash", phash)),
            Err(code) => {
                if code == privacy::ERR_TOKEN
                    && let Some(locked) = self.privacy.strike(&sender.0, t)
                {
                    self.push_timelock(&sender.0, &locked);
                }
                self.privacy.log_refusal(Refusal {
                    id: id.clone(),
                    sender: sender.0.clone(),
                    to: to.to_string(),
                    code: code.to_owned(),
                });
                refuse(code)
            }
        }
    }

    /// The checks a 1:1 stanza passes before it is routed (07 §5.1 item 4, §5.4): one
    /// namespace for `to` and every `<to jid>` (else 400), LID addressing only from a
    /// `lid_migrated` account when [`GateConfig::reject_unmigrated_lid`] is set (else 400),
    /// no `<tctoken>` on a peer message (479), then the privacy-token admission rule (463)
    /// and new-chat capping (475). Peer messages, messages to the own account and retry
    /// re-sends (`to` a device, or `device_fanout="false"`: 05 §9.4) are never token-checked.
    /// Returns the recipient account when the admission rule was applied and passed (the
    /// caller then records the contact).
    ///
    /// [`GateConfig::reject_unmigrated_lid`]: crate::GateConfig::reject_unmigrated_lid
    fn gate_direct(
        &mut self,
        sender: &DevKey,
        to: &Jid,
        out: &Outgoing<'_>,
    ) -> Result<Option<String>, &'static str> {
        let config = self.privacy.config;
        if config.reject_mixed_namespaces
            && out
                .listed
                .iter()
                .any(|(jid, _)| (jid.is_lid() || jid.is_pn()) && jid.is_lid() != to.is_lid())
        {
            return Err(ERR_ADDRESSING);
        }
        let peer = out.node.get_attr_str("category") == Some("peer");
        if peer {
            if out.node.child_by_tag("tctoken").is_some() {
                return Err(ERR_SMAX_INVALID);
            }
            return Ok(None);
        }
        if config.reject_unmigrated_lid && to.is_lid() && !self.privacy.lid_migrated(&sender.0) {
            return Err(ERR_ADDRESSING);
        }
        let Some(recipient) = self.dir.resolve_user(to) else {
            return Err("404");
        };
        let retry = out.node.get_attr_str("device_fanout") == Some("false") || to.is_ad();
        if recipient == sender.0 || retry {
            return Ok(None);
        }
        let (Some(a), Some(b)) = (self.dir.get(&sender.0), self.dir.get(&recipient)) else {
            return Err("404");
        };
        let token = |tag: &str| out.node.child_by_tag(tag).and_then(Node::content_bytes);
        let now = self.clock.unix_now();
        self.privacy.admit(
            Parties {
                sender: &a.phone,
                sender_salt: a.nct_salt.as_ref(),
                recipient: &b.phone,
                recipient_lid: &b.lid_user,
            },
            Presented {
                tctoken: token("tctoken"),
                cstoken: token("cstoken"),
            },
            now,
        )?;
        Ok(Some(recipient))
    }

    /// A gated 1:1 message was routed: `has_contact(A, B) := true`, and a changed capping
    /// quota is pushed to A's devices (07 §5.4, §5.5).
    fn admitted(&mut self, a: &str, b: &str) {
        if let Some(capping) = self.privacy.accepted(a, b) {
            self.push_capping(a, capping);
        }
    }

    /// Pushes the `NotificationUserReachoutTimelockUpdate` `mex` update to every device of
    /// `phone` (07 §3.6, §5.5).
    pub(crate) fn push_timelock(&mut self, phone: &str, settings: &privacy::PrivacySettings) {
        let t = self.clock.unix_now();
        for d in self.dir.devices_of(phone) {
            let id = self.ids.fresh();
            let node = privacy::timelock_notification(&id, t, settings);
            self.deliver(&(phone.to_owned(), d), node);
        }
    }

    /// Pushes the `MessageCappingInfoNotification` `mex` update to every device of `phone`
    /// (07 §3.6).
    pub(crate) fn push_capping(&mut self, phone: &str, capping: privacy::Capping) {
        let t = self.clock.unix_now();
        for d in self.dir.devices_of(phone) {
            let id = self.ids.fresh();
            let node = privacy::capping_notification(&id, t, &capping);
            self.deliver(&(phone.to_owned(), d), node);
        }
    }

    /// 1:1 (and own-device, and peer) messages. Returns the drift `phash` for the ack.
    fn route_direct(
        &mut self,
        sender: &DevKey,
        to: &Jid,
        mut out: Outgoing<'_>,
    ) -> Result<Option<String>, &'static str> {
        let Some(recipient) = self.dir.resolve_user(to) else {
            return Err("404");
        };
        let own = &sender.0;
        let mut per_device: Vec<(DevKey, Vec<Node>)> = Vec::new();
        let mut add =
            |dev: DevKey, encs: Vec<Node>| match per_device.iter_mut().find(|(d, _)| *d == dev) {
                Some((_, list)) => list.extend(encs),
                None => per_device.push((dev, encs)),
            };
        let mut listed_devices = BTreeSet::new();
        for (jid, encs) in std::mem::take(&mut out.listed) {
            let Some(phone) = self.dir.resolve_user(&jid) else {
                trace!(%jid, "message <to> of an unknown user skipped");
                continue;
            };
            let dev = (phone, jid.device());
            listed_devices.insert(dev.clone());
            if (dev.0 != recipient && dev.0 != *own)
                || dev == *sender
                || !self.dir.device_exists(&dev.0, dev.1)
            {
                trace!(%jid, "message <to> outside the chat's devices skipped");
                continue;
            }
            add(dev, encs);
        }
        if !out.direct.is_empty() {
            // A bare <enc> (retry re-send, peer message): to exactly the device in `to`
            // (a user JID means device 0: 05 §14 step 4).
            let dev = (recipient.clone(), to.device());
            if dev != *sender && self.dir.device_exists(&dev.0, dev.1) {
                add(dev, out.direct.clone());
            }
        }
        let retry = out.node.get_attr_str("device_fanout") == Some("false") || to.is_ad();
        let mut drift = None;
        if !retry && !listed_devices.is_empty() {
            let mut expected: BTreeSet<DevKey> = BTreeSet::new();
            for phone in [&recipient, own] {
                for d in self.dir.devices_of(phone) {
                    expected.insert((phone.clone(), d));
                }
            }
            let all: Vec<(&str, u16)> = expected.iter().map(|(p, d)| (p.as_str(), *d)).collect();
            let server_hash = phash(all);
            expected.remove(sender);
            if expected != listed_devices {
                drift = Some(server_hash);
            }
        }
        let push_name = self.dir.push_name(own);
        // Delivery in the namespace of the incoming stanza, with the other namespace as the
        // alternate (07 §5.1 item 5; real-log shapes in whatsapp-rust `src/message/tests.rs`).
        let lid = to.is_lid();
        let own_lid = self.dir.get(own).map(|a| a.lid_user.clone());
        let peer_lid = self.dir.get(&recipient).map(|a| a.lid_user.clone());
        let sender_jid = match (&own_lid, lid) {
            (Some(l), true) => lid_device_jid(l, sender.1),
            _ => device_jid(&sender.0, sender.1),
        };
        let chat = match (&peer_lid, lid) {
            (Some(l), true) => Jid::lid(l.clone()),
            _ => Jid::pn(recipient.clone()),
        };
        for (dev, encs) in per_device {
            let mut msg = Node::new("message").attr("from", sender_jid.clone());
            if dev.0 != *own {
                // sender_pn on a LID-addressed message, sender_lid (device-less) on a PN one.
                msg = match (lid, &own_lid) {
                    (true, _) => msg.attr("sender_pn", Jid::pn(own.clone())),
                    (false, Some(l)) => msg.attr("sender_lid", Jid::lid(l.clone())),
                    (false, None) => msg,
                };
            }
            msg = msg
                .attr("type", out.kind.to_owned())
                .attr("id", out.id.to_owned());
            if dev.0 == *own && recipient != *own {
                msg = msg.attr("recipient", chat.clone());
                msg = match (lid, &peer_lid) {
                    (true, _) => msg.attr("peer_recipient_pn", Jid::pn(recipient.clone())),
                    (false, Some(l)) => msg.attr("peer_recipient_lid", Jid::lid(l.clone())),
                    (false, None) => msg,
                };
            } else if dev.0 != *own
                && let Some(name) = &push_name
            {
                msg = msg.attr("notify", name.clone());
            }
            msg = msg.attr("t", out.t.to_string());
            let msg = out.finish(msg, encs);
            self.routing.record(
                out.id,
                dev.clone(),
                Delivery {
                    sender: sender.clone(),
                    chat: chat.clone(),
                    lid,
                },
            );
            self.deliver(&dev, msg);
        }
        self.routing.add_contact(own, &recipient);
        Ok(drift)
    }

    /// Group messages (05 §14 step 3, 06 §1.7 item 5). Returns the drift `phash`.
    fn route_group(
        &mut self,
        sender: &DevKey,
        to: &Jid,
        mut out: Outgoing<'_>,
    ) -> Result<Option<String>, &'static str> {
        let Some(group) = self.groups.get(to.user()) else {
            return Err("404");
        };
        if !group.is_member(&sender.0) {
            return Err("403");
        }
        if group.announcement && !group.is_admin(&sender.0) {
            return Err("403");
        }
        let members: Vec<String> = group.member_phones();
        let mut member_devices: Vec<DevKey> = Vec::new();
        for phone in &members {
            for d in self.dir.devices_of(phone) {
                member_devices.push((phone.clone(), d));
            }
        }
        let server_hash = phash(member_devices.iter().map(|(p, d)| (p.as_str(), *d)));
        let drift = out
            .node
            .get_attr_str("phash")
            .filter(|h| *h != server_hash)
            .map(|_| server_hash.clone());
        // Retry re-send to one device: `participant` names it (05 §9.4).
        let only = attr_jid(out.node, "participant")
            .and_then(|p| self.dir.resolve_user(&p).map(|phone| (phone, p.device())));
        let mut listed: Vec<(DevKey, Vec<Node>)> = Vec::new();
        for (jid, encs) in std::mem::take(&mut out.listed) {
            if let Some(phone) = self.dir.resolve_user(&jid) {
                listed.push(((phone, jid.device()), encs));
            }
        }
        let push_name = self.dir.push_name(&sender.0);
        let addressing = out
            .node
            .get_attr_str("addressing_mode")
            .unwrap_or("pn")
            .to_owned();
        // `addressing_mode="lid"`: `participant` is the LID device plus `participant_pn`;
        // otherwise the PN device plus `participant_lid` (07 §1.2, §5.1 item 5).
        let lid = addressing == "lid";
        let sender_lid = self.dir.get(&sender.0).map(|a| a.lid_user.clone());
        let sender_jid = match (&sender_lid, lid) {
            (Some(l), true) => lid_device_jid(l, sender.1),
            _ => device_jid(&sender.0, sender.1),
        };
        let alternate = match (&sender_lid, lid) {
            (_, true) => Some(("participant_pn", Jid::pn(sender.0.clone()))),
            (Some(l), false) => Some(("participant_lid", Jid::lid(l.clone()))),
            (None, false) => None,
        };
        for dev in member_devices {
            if dev == *sender || only.as_ref().is_some_and(|o| *o != dev) {
                continue;
            }
            let mut encs: Vec<Node> = listed
                .iter()
                .filter(|(d, _)| *d == dev)
                .flat_map(|(_, e)| e.iter().cloned())
                .collect();
            encs.extend(out.direct.iter().cloned());
            if encs.is_empty() {
                continue;
            }
            let mut msg = Node::new("message")
                .attr("from", to.to_non_ad())
                .attr("participant", sender_jid.clone());
            if let Some((key, jid)) = &alternate {
                msg = msg.attr(*key, jid.clone());
            }
            msg = msg
                .attr("type", out.kind.to_owned())
                .attr("id", out.id.to_owned())
                .attr("t", out.t.to_string());
            if dev.0 != sender.0
                && let Some(name) = &push_name
            {
                msg = msg.attr("notify", name.clone());
            }
            msg = msg.attr("addressing_mode", addressing.clone());
            let msg = out.finish(msg, encs);
            self.routing.record(
                out.id,
                dev.clone(),
                Delivery {
                    sender: sender.clone(),
                    chat: to.to_non_ad(),
                    lid,
                },
            );
            self.deliver(&dev, msg);
        }
        Ok(drift)
    }

    /// Routes a `<receipt>` from device `from` (05 §14 "Receipts", §10.4).
    pub(crate) fn route_receipt(&mut self, from: &DevKey, node: &Node) {
        let Some(id) = node.get_attr_str("id").map(str::to_owned) else {
            return;
        };
        let kind = node.get_attr_str("type").map(str::to_owned);
        let to = attr_jid(node, "to");
        let participant = attr_jid(node, "participant");
        let mut ids = vec![id.clone()];
        // Further ids in <list><item id/></list> (05 §10.3).
        if let Some(list) = node.child_by_tag("list") {
            ids.extend(
                list.children_by_tag("item")
                    .filter_map(|i| i.get_attr_str("id"))
                    .map(str::to_owned),
            );
        }
        // The device processed these messages: they leave its queue.
        if let Some(q) = self.queue_mut(from) {
            q.remove_messages(&ids);
        }
        let logged = self.routing.log.get(&(id.clone(), from.clone())).cloned();
        let lid = logged.as_ref().is_some_and(|d| d.lid)
            || to.as_ref().is_some_and(|j| j.is_lid())
            || participant.as_ref().is_some_and(|j| j.is_lid());
        let (sender, chat) = match logged {
            Some(d) => (Some(d.sender), Some(d.chat)),
            None => match &to {
                Some(g) if g.is_group() => (
                    participant
                        .as_ref()
                        .and_then(|p| self.dir.resolve_user(p).map(|u| (u, p.device()))),
                    Some(g.to_non_ad()),
                ),
                Some(j) => (
                    self.dir.resolve_user(j).map(|u| (u, j.device())),
                    Some(j.to_non_ad()),
                ),
                None => (None, None),
            },
        };
        let (Some(sender), Some(chat)) = (sender, chat) else {
            debug!(%id, "receipt for an unknown message dropped");
            return;
        };
        let t = self.clock.unix_now();
        let group = chat.is_group();
        let own_device = from.0 == sender.0;
        let children = match &node.content {
            Content::Nodes(n) if !n.is_empty() => Some(n.clone()),
            _ => None,
        };
        let from_jid = match (lid, self.dir.get(&from.0)) {
            (true, Some(a)) => lid_device_jid(&a.lid_user, from.1),
            _ => device_jid(&from.0, from.1),
        };
        let build = |with_recipient: Option<Jid>| {
            let mut r = Node::new("receipt");
            if group {
                r = r
                    .attr("from", chat.clone())
                    .attr("participant", from_jid.clone());
            } else {
                r = r.attr("from", from_jid.clone());
                if let Some(rec) = with_recipient {
                    r = r.attr("recipient", rec);
                }
            }
            r = r
                .attr("id", id.clone())
                .attr("t", t.to_string())
                .attr_opt("type", kind.clone());
            match &children {
                Some(c) => r.with_children(c.clone()),
                None => r,
            }
        };
        // The chat as the sender's own devices name it in `recipient`.
        let own_recipient = if own_device {
            attr_jid(node, "recipient").or_else(|| Some(chat.clone()))
        } else {
            None
        };
        if kind.as_deref() == Some("retry") {
            // Only the device that sent the message re-sends it (05 §14).
            self.deliver(&sender, build(own_recipient));
            return;
        }
        for d in self.dir.devices_of(&sender.0) {
            let dev = (sender.0.clone(), d);
            if dev == *from {
                continue;
            }
            self.deliver(&dev, build(own_recipient.clone()));
        }
        // Read state syncs to the reader's other devices (05 §14, recommended).
        if !own_device && !group && matches!(kind.as_deref(), Some("read" | "read-self" | "played"))
        {
            for d in self.dir.devices_of(&from.0) {
                let dev = (from.0.clone(), d);
                if dev == *from {
                    continue;
                }
                self.deliver(&dev, build(Some(Jid::pn(sender.0.clone()))));
            }
        }
    }

    /// A client `<ack>` (05 §11): the stanza it names leaves the device's queue. With
    /// `error` on a message it is a NACK, which also ends delivery (05 §14 "NACKs").
    pub(crate) fn client_ack(&mut self, from: &DevKey, node: &Node) {
        let (Some(class), Some(id)) = (node.get_attr_str("class"), node.get_attr_str("id")) else {
            return;
        };
        if let Some(error) = node.get_attr_str("error") {
            debug!(device = ?from, class, id, error, "client NACK");
        }
        let to = node.get_attr("to").map(|v| v.to_text().into_owned());
        let participant = node
            .get_attr("participant")
            .map(|v| v.to_text().into_owned());
        let kind = node.get_attr_str("type");
        if let Some(q) = self.queue_mut(from)
            && !q.remove_acked(class, id, to.as_deref(), participant.as_deref(), kind)
        {
            trace!(class, id, "ack for nothing queued");
        }
    }

    /// Every device of the account's users who hear about its device changes: its own
    /// devices, its 1:1 chat partners' and its group co-members' (05 §14 "Notifications").
    pub(crate) fn device_watchers(&self, phone: &str) -> Vec<DevKey> {
        let mut users: BTreeSet<String> = BTreeSet::new();
        users.insert(phone.to_owned());
        if let Some(c) = self.routing.contacts.get(phone) {
            users.extend(c.iter().cloned());
        }
        for g in self.groups.iter() {
            if g.is_member(phone) {
                users.extend(g.member_phones());
            }
        }
        users
            .into_iter()
            .flat_map(|u| {
                self.dir
                    .devices_of(&u)
                    .into_iter()
                    .map(move |d| (u.clone(), d))
            })
            .collect()
    }

    /// `<notification from=user type="devices" id t><add|remove device_hash>
    /// <device jid key-index/><key-index-list ts>…</key-index-list></add|remove></notification>`
    /// (05 §5.2) to every watcher except the device itself.
    fn notify_devices(&mut self, phone: &str, device: u16, key_index: u32, action: &'static str) {
        if self.routing.silent_device_changes {
            return;
        }
        let hash = phash(
            self.dir
                .devices_of(phone)
                .into_iter()
                .map(|d| (phone, d))
                .collect::<Vec<_>>(),
        );
        let key_index_list = Usync {
            dir: self.dir,
            rng: &mut *self.rng,
            profiles: None,
        }
        .key_index_list(phone);
        let t = self.clock.unix_now();
        let mut change = Node::new(action).attr("device_hash", hash);
        let device_node = Node::new("device")
            .attr("jid", device_jid(phone, device))
            .attr("key-index", key_index.to_string());
        change = match key_index_list {
            Some(kil) => change.with_children([device_node, kil]),
            None => change.with_children([device_node]),
        };
        for dev in self.device_watchers(phone) {
            if dev.0 == phone && dev.1 == device {
                continue;
            }
            let id = self.ids.fresh();
            let n = Node::new("notification")
                .attr("from", Jid::pn(phone.to_owned()))
                .attr("type", "devices")
                .attr("id", id)
                .attr("t", t.to_string())
                .with_children([change.clone()]);
            self.deliver(&dev, n);
        }
    }

    /// A companion was linked: tell the watchers (`<add>`).
    pub(crate) fn notify_device_change(&mut self, phone: &str, device: u16, added: bool) {
        let key_index = self
            .dir
            .companion(&(phone.to_owned(), device))
            .map_or(0, |c| c.key_index);
        self.notify_devices(
            phone,
            device,
            key_index,
            if added { "add" } else { "remove" },
        );
    }

    /// A companion was unlinked: tell the watchers (`<remove>`).
    pub(crate) fn notify_device_removed(&mut self, phone: &str, device: u16, key_index: u32) {
        self.notify_devices(phone, device, key_index, "remove");
    }
}

/// A client message being routed.
struct Outgoing<'a> {
    id: &'a str,
    t: u64,
    kind: &'a str,
    node: &'a Node,
    direct: Vec<Node>,
    listed: Vec<(Jid, Vec<Node>)>,
}

impl Outgoing<'_> {
    /// Adds the passed-through attributes and the children: the encs, `<device-identity>`
    /// when one of them is a `pkmsg`, and `<meta>` (05 §13, §14 steps 2 and 5).
    fn finish(&self, mut msg: Node, encs: Vec<Node>) -> Node {
        for key in PASSED_ATTRS {
            if let Some(v) = self.node.get_attr(key) {
                msg = msg.attr(key, v.clone());
            }
        }
        let mut children = Vec::with_capacity(encs.len() + 2);
        if let Some(meta) = self.node.child_by_tag("meta") {
            children.push(meta.clone());
        }
        let pkmsg = has_pkmsg(&encs);
        children.extend(encs);
        if pkmsg && let Some(di) = self.node.child_by_tag("device-identity") {
            children.push(di.clone());
        }
        msg.with_children(children)
    }
}
