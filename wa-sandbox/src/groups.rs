//! Groups (`xmlns="w:g2"`, shared/protocol/06 §1): create, metadata, participating list,
//! add / remove / promote / demote, leave, subject, announcement and locked settings, and
//! the `w:gp2` notifications to every member device (06 §1.5, §1.7). Messages to groups
//! are routed in [`routing`](crate::routing).
//!
//! [`Groups`] owns the groups. An operation runs in a [`GroupOps`]: the groups, read access
//! to the account directory, the RNG, the stanza ids and the clock; the notifications it
//! makes are collected in order for the caller to deliver.

use std::collections::BTreeMap;

use rand::RngExt as _;
use rand::rngs::StdRng;
use tracing::debug;
use wa_engine::binary::{Node, Value};
use wa_engine::{Jid, Server};

use crate::accounts::{DevKey, Directory};
use crate::config::Clock;
use crate::stanzas::{self, Ids, attr_jid};

/// Longest subject accepted, in characters. whatsmeow's comment says 25 for the real
/// server (06 §1.3); Baileys users often send longer ones, so the sandbox allows 100.
const MAX_SUBJECT_CHARS: usize = 100;

/// Longest description accepted, in characters (the official apps allow 2048).
const MAX_DESCRIPTION_CHARS: usize = 2048;

/// Invite codes are 22 characters of base62 (as in `chat.whatsapp.com/<code>` links).
const INVITE_CODE_LEN: usize = 22;

/// A participant's rank (`type` attribute of `<participant>`: 06 §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rank {
    Member,
    Admin,
    SuperAdmin,
}

impl Rank {
    fn attr(self) -> Option<&'static str> {
        match self {
            Self::Member => None,
            Self::Admin => Some("admin"),
            Self::SuperAdmin => Some("superadmin"),
        }
    }
}

/// One simulated group (06 §1.7 item 1). Addressing mode is always `pn`.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// The user part of the group JID (`120363…`).
    pub(crate) id: String,
    subject: String,
    subject_time: u64,
    subject_owner: String,
    creator: String,
    creation: u64,
    /// Participants by phone, in join order.
    participants: Vec<(String, Rank)>,
    /// Only admins may send (`<announcement/>`).
    pub(crate) announcement: bool,
    /// Only admins may edit the group info (`<locked/>`).
    locked: bool,
    /// The description, if set.
    description: Option<Description>,
    /// Disappearing-messages timer, seconds (0 = off).
    ephemeral: u32,
    /// The current invite code (made on first request, replaced on revoke).
    invite_code: Option<String>,
    /// Version of the announcement setting (`v_id`/`a_v_id`; whatsmeow requires `v_id` on
    /// `<announcement>` notifications): bumped on each change.
    announce_version: u64,
}

/// A group description (06 §1.2: `<description id participant t><body>`).
#[derive(Debug, Clone)]
struct Description {
    id: String,
    body: String,
    setter: String,
    t: u64,
}

impl Group {
    /// Whether the account is a participant.
    pub(crate) fn is_member(&self, phone: &str) -> bool {
        self.participants.iter().any(|(p, _)| p == phone)
    }

    /// Whether the account is an admin or the super admin.
    pub(crate) fn is_admin(&self, phone: &str) -> bool {
        self.participants
            .iter()
            .any(|(p, r)| p == phone && *r != Rank::Member)
    }

    /// Whether the account may change the group's info (subject, description, picture):
    /// any member, or only admins once the group is locked.
    pub(crate) fn may_edit_info(&self, phone: &str) -> bool {
        self.is_member(phone) && (!self.locked || self.is_admin(phone))
    }

    /// The participants' phone numbers, in join order.
    pub(crate) fn member_phones(&self) -> Vec<String> {
        self.participants.iter().map(|(p, _)| p.clone()).collect()
    }

    /// `<group id subject s_t s_o creation creator size addressing_mode>` with the
    /// `<participant jid [type]/>` children and the setting flags (06 §1.2).
    fn metadata(&self) -> Node {
        let mut children: Vec<Node> = self
            .participants
            .iter()
            .map(|(p, r)| {
                Node::new("participant")
                    .attr("jid", Jid::pn(p.clone()))
                    .attr_opt("type", r.attr())
            })
            .collect();
        if self.announcement {
            children.push(Node::new("announcement"));
        }
        if self.locked {
            children.push(Node::new("locked"));
        }
        if let Some(d) = &self.description {
            children.push(
                Node::new("description")
                    .attr("id", d.id.clone())
                    .attr("participant", Jid::pn(d.setter.clone()))
                    .attr("t", d.t.to_string())
                    .with_children([Node::new("body").with_bytes(d.body.as_bytes().to_vec())]),
            );
        }
        if self.ephemeral > 0 {
            children.push(Node::new("ephemeral").attr("expiration", self.ephemeral.to_string()));
        }
        Node::new("group")
            .attr("id", self.id.clone())
            .attr("subject", self.subject.clone())
            .attr("s_t", self.subject_time.to_string())
            .attr("s_o", Jid::pn(self.subject_owner.clone()))
            .attr("creation", self.creation.to_string())
            .attr("creator", Jid::pn(self.creator.clone()))
            .attr("size", self.participants.len().to_string())
            .attr("addressing_mode", "pn")
            .attr("a_v_id", self.announce_version.to_string())
            .with_children(children)
    }
}

impl Group {
    /// The super admin, else the first participant: who acts for the group's primary
    /// phone in control-API changes.
    pub(crate) fn acting_admin(&self) -> Option<&str> {
        self.participants
            .iter()
            .find(|(_, r)| *r == Rank::SuperAdmin)
            .or_else(|| self.participants.first())
            .map(|(p, _)| p.as_str())
    }
}

/// Every group, by id (the user part of `<id>@g.us`).
#[derive(Debug, Default)]
pub(crate) struct Groups {
    pub(crate) by_id: BTreeMap<String, Group>,
}

impl Groups {
    /// A group by id.
    pub(crate) fn get(&self, gid: &str) -> Option<&Group> {
        self.by_id.get(gid)
    }

    /// Every group.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Group> {
        self.by_id.values()
    }
}

/// One group operation's view of the sandbox.
pub(crate) struct GroupOps<'a> {
    /// The groups, by id.
    pub(crate) groups: &'a mut BTreeMap<String, Group>,
    /// Who exists (members are resolved and notified per device).
    pub(crate) dir: &'a Directory,
    /// Draws group ids.
    pub(crate) rng: &'a mut StdRng,
    /// Notification ids.
    pub(crate) ids: &'a mut Ids,
    /// Creation and subject times.
    pub(crate) clock: Clock,
    /// `w:gp2` notifications to deliver, in order.
    pub(crate) out: Vec<(DevKey, Node)>,
}

/// `<iq type="result" from=<the request's to> id>children</iq>` (06: replies come from the
/// group or the group server).
fn result_from(id: &str, from: Option<Value>, children: Vec<Node>) -> Node {
    let mut iq = stanzas::iq_result(id, children);
    if let Some(from) = from {
        iq.attrs.insert("from", from);
    }
    iq
}

fn error_from(id: &str, from: Option<Value>, code: u16, text: &'static str) -> Node {
    let mut iq = stanzas::iq_error(id, code, text);
    if let Some(from) = from {
        iq.attrs.insert("from", from);
    }
    iq
}

/// The participant JIDs listed under a node.
fn listed_participants(node: &Node) -> Vec<Jid> {
    node.children_by_tag("participant")
        .filter_map(|p| attr_jid(p, "jid"))
        .collect()
}

impl GroupOps<'_> {
    /// Answers a `w:g2` IQ from device `actor` (06 §1).
    pub(crate) fn group_iq(&mut self, actor: &DevKey, id: &str, iq: &Node) -> Node {
        let from = iq.get_attr("to").cloned();
        let to = attr_jid(iq, "to").or_else(|| {
            // `g.us` / `@g.us` as a plain string (06 §1: WM and BL spell it differently).
            iq.get_attr_str("to")
                .filter(|s| s.trim_start_matches('@') == "g.us")
                .map(|_| Jid::server_jid(Server::Group))
        });
        let is_get = iq.get_attr_str("type") == Some("get");
        let Some(child) = iq.children().first() else {
            return error_from(id, from, 400, "bad-request");
        };
        let on_group = to
            .as_ref()
            .filter(|j| j.is_group() && !j.user().is_empty())
            .map(|j| j.user().to_owned());
        match (is_get, child.tag.as_ref(), on_group) {
            (true, "query", Some(gid)) => match self.groups.get(&gid) {
                None => error_from(id, from, 404, "item-not-found"),
                Some(g) if !g.is_member(&actor.0) => error_from(id, from, 403, "forbidden"),
                Some(g) => result_from(id, from, vec![g.metadata()]),
            },
            (true, "participating", None) => {
                let groups: Vec<Node> = self
                    .groups
                    .values()
                    .filter(|g| g.is_member(&actor.0))
                    .map(Group::metadata)
                    .collect();
                result_from(id, from, vec![Node::new("groups").with_children(groups)])
            }
            (false, "create", None) => self.create_group(actor, id, from, child),
            (_, "invite", Some(gid)) => self.invite_code(actor, id, from, &gid, !is_get),
            (_, "invite", None) => self.join_by_code(actor, id, from, child, !is_get),
            (false, "leave", None) => {
                for g in child.children_by_tag("group") {
                    if let Some(gid) =
                        attr_jid(g, "id").map(|j| j.user().to_owned()).or_else(|| {
                            g.get_attr_str("id")
                                .map(|s| s.trim_end_matches("@g.us").to_owned())
                        })
                    {
                        self.leave_group(actor, &gid);
                    }
                }
                result_from(id, from, vec![child.clone()])
            }
            (false, _, Some(gid)) => self.change_group(actor, id, from, &gid, child),
            _ => {
                debug!(tag = %child.tag, "w:g2 IQ not simulated");
                error_from(id, from, 501, "feature-not-implemented")
            }
        }
    }

    fn create_group(
        &mut self,
        actor: &DevKey,
        id: &str,
        from: Option<Value>,
        create: &Node,
    ) -> Node {
        let subject = create
            .get_attr_str("subject")
            .unwrap_or_default()
            .to_owned();
        let listed = listed_participants(create);
        let key = create.get_attr_str("key").map(str::to_owned);
        let settings = (
            create.child_by_tag("announcement").is_some(),
            create.child_by_tag("locked").is_some(),
        );
        match self.new_group(actor, subject, &listed, key, settings) {
            Ok((gid, failed)) => {
                let mut metadata = self
                    .groups
                    .get(&gid)
                    .map(Group::metadata)
                    .unwrap_or_default();
                if let wa_engine::binary::Content::Nodes(children) = &mut metadata.content {
                    for jid in failed {
                        children.push(
                            Node::new("participant")
                                .attr("jid", jid)
                                .attr("error", "404"),
                        );
                    }
                }
                result_from(id, from, vec![metadata])
            }
            Err(()) => error_from(id, from, 406, "not-acceptable"),
        }
    }

    /// Creates a group (06 §1.7 item 2): a fresh `120363…` id, `actor`'s account as
    /// super admin, the listed users that have accounts as members (the others are returned
    /// as failed), and `<create type="new" key>` notifications to every member device but
    /// the actor's. `Err` for an empty or too long subject.
    pub(crate) fn new_group(
        &mut self,
        actor: &DevKey,
        subject: String,
        listed: &[Jid],
        key: Option<String>,
        (announcement, locked): (bool, bool),
    ) -> Result<(String, Vec<Jid>), ()> {
        if subject.is_empty() || subject.chars().count() > MAX_SUBJECT_CHARS {
            return Err(());
        }
        let now = self.clock.unix_now();
        let gid = loop {
            let n: u64 = self.rng.random_range(100_000_000_000..1_000_000_000_000);
            let gid = format!("120363{n}");
            if !self.groups.contains_key(&gid) {
                break gid;
            }
        };
        let mut group = Group {
            id: gid.clone(),
            subject,
            subject_time: now,
            subject_owner: actor.0.clone(),
            creator: actor.0.clone(),
            creation: now,
            participants: vec![(actor.0.clone(), Rank::SuperAdmin)],
            announcement,
            locked,
            description: None,
            ephemeral: 0,
            invite_code: None,
            announce_version: 1,
        };
        let mut failed = Vec::new();
        for jid in listed {
            match self.dir.resolve_user(jid) {
                Some(p) if !group.is_member(&p) => group.participants.push((p, Rank::Member)),
                Some(_) => {}
                None => failed.push(jid.clone()),
            }
        }
        let notice = Node::new("create")
            .attr("type", "new")
            .attr_opt("key", key)
            .with_children([group.metadata()]);
        let members = group.member_phones();
        self.groups.insert(gid.clone(), group);
        self.notify_group(&gid, actor, vec![notice], &members);
        debug!(group = %gid, "group created");
        Ok((gid, failed))
    }

    /// Removes `actor`'s account from a group and tells everyone (the leaver included).
    pub(crate) fn leave_group(&mut self, actor: &DevKey, gid: &str) {
        let Some(group) = self.groups.get_mut(gid) else {
            return;
        };
        if !group.is_member(&actor.0) {
            return;
        }
        group.participants.retain(|(p, _)| *p != actor.0);
        let mut audience = group.member_phones();
        let empty = audience.is_empty();
        audience.push(actor.0.clone());
        let notice = Node::new("remove")
            .with_children([Node::new("participant").attr("jid", Jid::pn(actor.0.clone()))]);
        self.notify_group(gid, actor, vec![notice], &audience);
        if empty {
            self.groups.remove(gid);
        }
    }

    /// add / remove / promote / demote / subject / announcement / locked on a group.
    pub(crate) fn change_group(
        &mut self,
        actor: &DevKey,
        id: &str,
        from: Option<Value>,
        gid: &str,
        change: &Node,
    ) -> Node {
        let Some(group) = self.groups.get(gid) else {
            return error_from(id, from, 404, "item-not-found");
        };
        if !group.is_member(&actor.0) {
            return error_from(id, from, 403, "forbidden");
        }
        let tag = change.tag.to_string();
        // Membership and the send/edit settings are admin-only; the rest (subject,
        // description, disappearing timer) too once the group is locked (06 §1.7 items 3-4).
        let admin_only = matches!(
            tag.as_str(),
            "add"
                | "remove"
                | "promote"
                | "demote"
                | "announcement"
                | "not_announcement"
                | "locked"
                | "unlocked"
        );
        if (admin_only || group.locked) && !group.is_admin(&actor.0) {
            return error_from(id, from, 403, "forbidden");
        }
        let before = group.member_phones();
        let mut results = Vec::new();
        let mut changed: Vec<String> = Vec::new();
        let mut description_change: Option<(String, Option<String>)> = None;
        let resolved: Vec<(Jid, Option<String>)> = listed_participants(change)
            .into_iter()
            .map(|j| {
                let p = self.dir.resolve_user(&j);
                (j, p)
            })
            .collect();
        let Some(group) = self.groups.get_mut(gid) else {
            return error_from(id, from, 404, "item-not-found");
        };
        match tag.as_str() {
            "add" | "remove" | "promote" | "demote" => {
                for (jid, phone) in resolved {
                    let outcome = match (tag.as_str(), phone) {
                        (_, None) => Some("404"),
                        ("add", Some(p)) if group.is_member(&p) => Some("409"),
                        ("add", Some(p)) => {
                            group.participants.push((p.clone(), Rank::Member));
                            changed.push(p);
                            None
                        }
                        (_, Some(p)) if !group.is_member(&p) => Some("404"),
                        ("remove", Some(p)) => {
                            group.participants.retain(|(q, _)| *q != p);
                            changed.push(p);
                            None
                        }
                        (t, Some(p)) => {
                            let rank = if t == "promote" {
                                Rank::Admin
                            } else {
                                Rank::Member
                            };
                            for (q, r) in &mut group.participants {
                                if *q == p && *r != Rank::SuperAdmin {
                                    *r = rank;
                                }
                            }
                            changed.push(p);
                            None
                        }
                    };
                    results.push(
                        Node::new("participant")
                            .attr("jid", jid)
                            .attr_opt("error", outcome),
                    );
                }
            }
            "subject" => {
                let subject = change
                    .content_str()
                    .map(str::to_owned)
                    .or_else(|| {
                        change
                            .content_bytes()
                            .map(|b| String::from_utf8_lossy(b).into_owned())
                    })
                    .unwrap_or_default();
                if subject.is_empty() || subject.chars().count() > MAX_SUBJECT_CHARS {
                    return error_from(id, from, 406, "not-acceptable");
                }
                group.subject = subject;
                group.subject_time = self.clock.unix_now();
                group.subject_owner = actor.0.clone();
            }
            "description" => {
                let current = group.description.as_ref().map(|d| d.id.clone());
                if let Some(prev) = change.get_attr_str("prev")
                    && current.as_deref() != Some(prev)
                {
                    return error_from(id, from, 409, "conflict");
                }
                let new_id = change
                    .get_attr_str("id")
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{:016X}", self.rng.random::<u64>()));
                let body = change
                    .child_by_tag("body")
                    .and_then(Node::content_str)
                    .unwrap_or_default()
                    .to_owned();
                if body.chars().count() > MAX_DESCRIPTION_CHARS {
                    return error_from(id, from, 406, "not-acceptable");
                }
                if change.get_attr_str("delete") == Some("true") || body.is_empty() {
                    group.description = None;
                    description_change = Some((new_id, None));
                } else {
                    group.description = Some(Description {
                        id: new_id.clone(),
                        body: body.clone(),
                        setter: actor.0.clone(),
                        t: self.clock.unix_now(),
                    });
                    description_change = Some((new_id, Some(body)));
                }
            }
            "ephemeral" => {
                match change
                    .get_attr_str("expiration")
                    .and_then(|e| e.parse::<u32>().ok())
                {
                    Some(e) if e > 0 => group.ephemeral = e,
                    _ => return error_from(id, from, 400, "bad-request"),
                }
            }
            "not_ephemeral" => group.ephemeral = 0,
            "announcement" => {
                group.announcement = true;
                group.announce_version += 1;
            }
            "not_announcement" => {
                group.announcement = false;
                group.announce_version += 1;
            }
            "locked" => group.locked = true,
            "unlocked" => group.locked = false,
            other => {
                debug!(tag = other, "w:g2 change not simulated");
                return error_from(id, from, 501, "feature-not-implemented");
            }
        }
        let group = group.clone();
        let participants = |phones: &[String]| -> Vec<Node> {
            phones
                .iter()
                .map(|p| Node::new("participant").attr("jid", Jid::pn(p.clone())))
                .collect()
        };
        match tag.as_str() {
            "add" if !changed.is_empty() => {
                // Existing members see <add>; the added users learn the whole group
                // through <create> (06 §1.5, inferred).
                self.notify_group(
                    gid,
                    actor,
                    vec![Node::new("add").with_children(participants(&changed))],
                    &before,
                );
                let create = Node::new("create")
                    .attr("reason", "add")
                    .with_children([group.metadata()]);
                self.notify_group(gid, actor, vec![create], &changed);
            }
            "remove" if !changed.is_empty() => {
                // The removed users hear it too, then nothing more (05 §14 group rules).
                self.notify_group(
                    gid,
                    actor,
                    vec![Node::new("remove").with_children(participants(&changed))],
                    &before,
                );
            }
            "promote" | "demote" if !changed.is_empty() => {
                self.notify_group(
                    gid,
                    actor,
                    vec![Node::new(tag.clone()).with_children(participants(&changed))],
                    &group.member_phones(),
                );
            }
            "subject" => {
                let notice = Node::new("subject")
                    .attr("subject", group.subject.clone())
                    .attr("s_t", group.subject_time.to_string())
                    .attr("s_o", Jid::pn(group.subject_owner.clone()));
                self.notify_group(gid, actor, vec![notice], &group.member_phones());
            }
            "description" => {
                if let Some((did, body)) = description_change {
                    let child = match body {
                        Some(b) => Node::new("body").with_bytes(b.into_bytes()),
                        None => Node::new("delete"),
                    };
                    let notice = Node::new("description")
                        .attr("id", did)
                        .with_children([child]);
                    self.notify_group(gid, actor, vec![notice], &group.member_phones());
                }
            }
            "ephemeral" => {
                let notice = Node::new("ephemeral").attr("expiration", group.ephemeral.to_string());
                self.notify_group(gid, actor, vec![notice], &group.member_phones());
            }
            "announcement" | "not_announcement" => {
                // whatsmeow parseGroupChange requires `v_id` on these.
                let notice =
                    Node::new(tag.clone()).attr("v_id", group.announce_version.to_string());
                self.notify_group(gid, actor, vec![notice], &group.member_phones());
            }
            "not_ephemeral" | "locked" | "unlocked" => {
                self.notify_group(
                    gid,
                    actor,
                    vec![Node::new(tag.clone())],
                    &group.member_phones(),
                );
            }
            _ => {}
        }
        if results.is_empty() {
            result_from(id, from, vec![])
        } else {
            result_from(id, from, vec![Node::new(tag).with_children(results)])
        }
    }

    /// `<invite/>` on a group (whatsmeow `GetGroupInviteLink`): `get` answers the current
    /// code (made on first use), `set` revokes it and answers a new one, and the members
    /// get `<invite code>`. Admins only: 401 for other members (whatsmeow
    /// `ErrGroupInviteLinkUnauthorized`), 403 for non-members, 404 for no such group.
    fn invite_code(
        &mut self,
        actor: &DevKey,
        id: &str,
        from: Option<Value>,
        gid: &str,
        reset: bool,
    ) -> Node {
        let fresh = self.fresh_code();
        let Some(group) = self.groups.get_mut(gid) else {
            return error_from(id, from, 404, "item-not-found");
        };
        if !group.is_member(&actor.0) {
            return error_from(id, from, 403, "forbidden");
        }
        if !group.is_admin(&actor.0) {
            return error_from(id, from, 401, "not-authorized");
        }
        if reset || group.invite_code.is_none() {
            group.invite_code = Some(fresh);
        }
        let code = group.invite_code.clone().unwrap_or_default();
        let members = group.member_phones();
        if reset {
            let notice = Node::new("invite").attr("code", code.clone());
            self.notify_group(gid, actor, vec![notice], &members);
        }
        result_from(id, from, vec![Node::new("invite").attr("code", code)])
    }

    /// `<invite code/>` to `g.us` (whatsmeow `JoinGroupWithLink` / `GetGroupInfoFromLink`):
    /// `set` joins (answer `<group jid/>`; existing members get `<add reason="invite">`, the
    /// joiner's devices `<create reason="invite">`), `get` answers the metadata. 406 for an
    /// unknown code (whatsmeow `ErrInviteLinkInvalid`); a revoked code is unknown too.
    fn join_by_code(
        &mut self,
        actor: &DevKey,
        id: &str,
        from: Option<Value>,
        invite: &Node,
        join: bool,
    ) -> Node {
        let Some(code) = invite.get_attr_str("code").filter(|c| !c.is_empty()) else {
            return error_from(id, from, 400, "bad-request");
        };
        let Some(gid) = self
            .groups
            .values()
            .find(|g| g.invite_code.as_deref() == Some(code))
            .map(|g| g.id.clone())
        else {
            return error_from(id, from, 406, "not-acceptable");
        };
        let Some(group) = self.groups.get_mut(&gid) else {
            return error_from(id, from, 406, "not-acceptable");
        };
        if !join {
            return result_from(id, from, vec![group.metadata()]);
        }
        if !group.is_member(&actor.0) {
            let before = group.member_phones();
            group.participants.push((actor.0.clone(), Rank::Member));
            let metadata = group.metadata();
            let joiner = Jid::pn(actor.0.clone());
            self.notify_group(
                &gid,
                actor,
                vec![
                    Node::new("add")
                        .attr("reason", "invite")
                        .with_children([Node::new("participant").attr("jid", joiner)]),
                ],
                &before,
            );
            let create = Node::new("create")
                .attr("reason", "invite")
                .with_children([metadata]);
            self.notify_group(&gid, actor, vec![create], std::slice::from_ref(&actor.0));
        }
        result_from(
            id,
            from,
            vec![Node::new("group").attr("jid", Jid::group(gid))],
        )
    }

    /// A fresh invite code no group uses.
    fn fresh_code(&mut self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        loop {
            let code: String = (0..INVITE_CODE_LEN)
                .map(|_| char::from(ALPHABET[self.rng.random_range(0..ALPHABET.len())]))
                .collect();
            if !self
                .groups
                .values()
                .any(|g| g.invite_code.as_deref() == Some(&code))
            {
                return code;
            }
        }
    }

    /// `<notification from=group type="w:gp2" id t participant=actor [notify]
    /// addressing_mode="pn">children</notification>` to every device of `phones` except
    /// the acting device (06 §1.5, §1.7 item 6).
    fn notify_group(&mut self, gid: &str, actor: &DevKey, children: Vec<Node>, phones: &[String]) {
        let t = self.clock.unix_now();
        let notify = self.dir.push_name(&actor.0);
        for phone in phones {
            for d in self.dir.devices_of(phone) {
                let dev = (phone.clone(), d);
                if dev == *actor {
                    continue;
                }
                let id = self.ids.fresh();
                let n = Node::new("notification")
                    .attr("from", Jid::group(gid.to_owned()))
                    .attr("type", "w:gp2")
                    .attr("id", id)
                    .attr("t", t.to_string())
                    .attr("participant", Jid::pn(actor.0.clone()))
                    .attr_opt("notify", notify.clone())
                    .attr("addressing_mode", "pn")
                    .with_children(children.clone());
                self.out.push((dev, n));
            }
        }
    }
}
