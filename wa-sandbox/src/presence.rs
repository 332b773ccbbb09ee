//! Presence and chat states between accounts (shared/protocol/06 §5): who subscribed to whom,
//! each account's last presence, and the pushes that follow from a client's `<presence>` or
//! `<chatstate>`. Neither is queued: a device that is offline misses them, as on the real
//! service.
//!
//! - `<presence type="available|unavailable" [name]>` from any device of account A sets A's
//!   presence (an unavailable one records `last`, unix seconds) and is pushed as
//!   `<presence from="A" [type="unavailable" last="t"]/>` to every live device subscribed to A.
//! - `<presence type="subscribe" to="B">` from a device records the subscription (for the
//!   lifetime of the device's login; a new login subscribes again, as clients do) and
//!   answers at once with B's current presence (whatsmeow `SubscribePresence` expects it).
//! - `<chatstate from to="B"><composing|paused/></chatstate>` is pushed to B's live
//!   companions as `<chatstate from="A"><…/></chatstate>`; to a group, to its members'
//!   companions (`from` = the group, `participant` = A), sender's devices excluded.
//!
//! `from` is A's PN user JID, or its LID when the stanza addressed the peer by LID.
//! Sources: whatsmeow `presence.go` (`handlePresence`, `handleChatState`), Baileys
//! `handlePresenceUpdate`.

use std::collections::{BTreeMap, BTreeSet};

use wa_engine::Jid;
use wa_engine::binary::Node;

use crate::accounts::{DevKey, Directory};
use crate::connections::{Connections, Push};
use crate::groups::Groups;
use crate::stanzas::attr_jid;

/// One account's last announced presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Status {
    available: bool,
    /// Unix seconds of the last `unavailable`.
    last: Option<u64>,
}

/// Subscriptions and presences.
#[derive(Debug, Default)]
pub(crate) struct Presences {
    /// Account (phone) -> subscribed devices, with the namespace they asked in (true = LID).
    subscribers: BTreeMap<String, BTreeMap<DevKey, bool>>,
    /// Account (phone) -> its last presence.
    status: BTreeMap<String, Status>,
}

/// What a presence step reads and writes.
pub(crate) struct PresenceCtx<'a> {
    pub(crate) presences: &'a mut Presences,
    pub(crate) dir: &'a Directory,
    pub(crate) conns: &'a mut Connections,
    pub(crate) groups: &'a Groups,
    /// Unix seconds now.
    pub(crate) now: u64,
}

impl PresenceCtx<'_> {
    /// A client's `<presence>` from device `from`.
    pub(crate) fn on_presence(&mut self, from: &DevKey, node: &Node) {
        match node.get_attr_str("type") {
            Some("subscribe") => self.subscribe(from, node),
            None | Some("available") => self.set(&from.0, true),
            Some("unavailable") => self.set(&from.0, false),
            Some(_) => {}
        }
    }

    /// A client's `<chatstate>` from device `from`.
    pub(crate) fn on_chat_state(&mut self, from: &DevKey, node: &Node) {
        let Some(to) = attr_jid(node, "to") else {
            return;
        };
        let children: Vec<Node> = node.children().to_vec();
        if to.is_group() {
            let Some(group) = self.groups.get(to.user()) else {
                return;
            };
            if !group.is_member(&from.0) {
                return;
            }
            let sender = self.user_jid(&from.0, false);
            let members: BTreeSet<String> = group.member_phones().into_iter().collect();
            for member in members.iter().filter(|m| **m != from.0) {
                let push = Node::new("chatstate")
                    .attr("from", to.to_non_ad())
                    .attr_opt("participant", sender.clone())
                    .with_children(children.clone());
                self.push_companions(member, None, &push);
            }
            return;
        }
        let Some(peer) = self.dir.resolve_user(&to) else {
            return;
        };
        let Some(sender) = self.user_jid(&from.0, to.is_lid()) else {
            return;
        };
        let push = Node::new("chatstate")
            .attr("from", sender)
            .with_children(children);
        self.push_companions(&peer, Some(from), &push);
    }

    fn subscribe(&mut self, from: &DevKey, node: &Node) {
        let Some(to) = attr_jid(node, "to") else {
            return;
        };
        let Some(target) = self.dir.resolve_user(&to) else {
            return;
        };
        self.presences
            .subscribers
            .entry(target.clone())
            .or_default()
            .insert(from.clone(), to.is_lid());
        let status = self.presences.status.get(&target).copied();
        if let Some(status) = status
            && let Some(node) = self.presence_of(&target, status, to.is_lid())
            && let Some(conn) = self.conns.ready_conn(from)
        {
            self.conns.push(conn, Push::Stanza(node));
        }
    }

    fn set(&mut self, phone: &str, available: bool) {
        let status = Status {
            available,
            last: (!available).then_some(self.now),
        };
        self.presences.status.insert(phone.to_owned(), status);
        let subs: Vec<(DevKey, bool)> = self
            .presences
            .subscribers
            .get(phone)
            .map(|m| m.iter().map(|(d, l)| (d.clone(), *l)).collect())
            .unwrap_or_default();
        for (dev, lid) in subs {
            if let Some(node) = self.presence_of(phone, status, lid)
                && let Some(conn) = self.conns.ready_conn(&dev)
            {
                self.conns.push(conn, Push::Stanza(node));
            }
        }
    }

    /// `<presence from [type="unavailable" last]/>` of an account.
    fn presence_of(&self, phone: &str, status: Status, lid: bool) -> Option<Node> {
        let from = self.user_jid(phone, lid)?;
        let node = Node::new("presence").attr("from", from);
        Some(if status.available {
            node
        } else {
            node.attr("type", "unavailable")
                .attr_opt("last", status.last.map(|t| t.to_string()))
        })
    }

    /// An account's user JID: PN, or LID when `lid`.
    fn user_jid(&self, phone: &str, lid: bool) -> Option<Jid> {
        let account = self.dir.get(phone)?;
        Some(if lid {
            Jid::lid(account.lid_user.clone())
        } else {
            Jid::pn(account.phone.clone())
        })
    }

    /// Pushes `node` to the live companions of `phone`, except `except`.
    fn push_companions(&mut self, phone: &str, except: Option<&DevKey>, node: &Node) {
        for device in self.dir.devices_of(phone) {
            let dev: DevKey = (phone.to_owned(), device);
            if device == 0 || Some(&dev) == except {
                continue;
            }
            if let Some(conn) = self.conns.ready_conn(&dev) {
                self.conns.push(conn, Push::Stanza(node.clone()));
            }
        }
    }
}

impl Presences {
    /// Drops every subscription of `dev` (its login ended; clients subscribe again after
    /// the next one).
    pub(crate) fn unsubscribe_all(&mut self, dev: &DevKey) {
        for subs in self.subscribers.values_mut() {
            subs.remove(dev);
        }
    }
}
