//! Server notifications on demand (issue 13): the typed [`Notice`] a test asks for
//! (`POST /accounts/{pn}/notifications`, [`Router::push_notification`](crate::Router::push_notification)),
//! the stanza each one becomes, and the edge-routing book (what the sandbox issued to an
//! account, what each device sent back in its `ED` pre-intro).
//!
//! Shapes as whatsmeow parses them: `notification.go` (`handleNotification`,
//! `handleAccountSyncNotification`, `handlePictureNotification`, `handleStatusNotification`
//! reading `<set>` text, `handleEncryptNotification` reading `<count value>` /
//! `<identity>`, `handleMediaRetryNotification` reading `<rmr>` + `<error>`), `group.go`
//! (`parseGroupChange`: `<subject subject s_t s_o>`, `<description id><body>`/`<delete>`,
//! `<add|remove|promote|demote><participant jid>`, `<announcement>`/`<not_announcement>`,
//! `<locked>`/`<unlocked>`, `<invite code>`, `<ephemeral expiration>`/`<not_ephemeral>`),
//! `connectionevents.go` (`<ib>`: `offline_preview`, `offline`, `dirty`); `edge_routing` as
//! whatsapp-rust reads it (`<ib><edge_routing><routing_info>bytes`). `server_sync` as the
//! app-state server sends it (`appsync`), privacy tokens, timelock and capping through the
//! gate's own paths (`gate`, `privacy`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wa_engine::Jid;
use wa_engine::binary::Node;

use crate::accounts::DevKey;
use crate::privacy::Capping;
use crate::stanzas;

/// One notification to push to an account's devices. JSON: `{"kind": "<snake_case
/// variant>", ...fields}`. JIDs are strings (`"15551234567@s.whatsapp.net"`; a group may be
/// given by its id alone, `"120363000000000001"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Notice {
    /// `w:gp2` `<subject subject s_t s_o>`.
    GroupSubject {
        /// The group.
        group: String,
        /// Who changed it (`participant`); default: the account's own phone.
        #[serde(default)]
        actor: Option<String>,
        /// The new subject.
        subject: String,
    },
    /// `w:gp2` `<description id><body>text</body>` or `<description id><delete/>`.
    GroupDescription {
        /// The group.
        group: String,
        /// Who changed it.
        #[serde(default)]
        actor: Option<String>,
        /// The new description; `null` = removed.
        #[serde(default)]
        description: Option<String>,
    },
    /// `w:gp2` `<add|remove|promote|demote><participant jid/>…`.
    GroupParticipants {
        /// The group.
        group: String,
        /// Who changed it.
        #[serde(default)]
        actor: Option<String>,
        /// `add`, `remove`, `promote` or `demote`.
        action: ParticipantAction,
        /// The participants (user JIDs).
        participants: Vec<String>,
    },
    /// `w:gp2` `<announcement/>` / `<not_announcement/>`.
    GroupAnnounce {
        /// The group.
        group: String,
        /// Who changed it.
        #[serde(default)]
        actor: Option<String>,
        /// Only admins send.
        announce: bool,
    },
    /// `w:gp2` `<locked/>` / `<unlocked/>`.
    GroupLocked {
        /// The group.
        group: String,
        /// Who changed it.
        #[serde(default)]
        actor: Option<String>,
        /// Only admins edit the group info.
        locked: bool,
    },
    /// `w:gp2` `<invite code/>`: the invite link was reset.
    GroupInvite {
        /// The group.
        group: String,
        /// Who changed it.
        #[serde(default)]
        actor: Option<String>,
        /// The new invite code.
        code: String,
    },
    /// `w:gp2` `<ephemeral expiration/>`, or `<not_ephemeral/>` for 0.
    GroupEphemeral {
        /// The group.
        group: String,
        /// Who changed it.
        #[serde(default)]
        actor: Option<String>,
        /// Disappearing-message timer, seconds (0 = off).
        expiration: u32,
    },
    /// `account_sync` with one child: `devices`, `privacy`, `picture` or `blocklist`.
    AccountSync {
        /// The child tag.
        what: String,
    },
    /// `picture` from `jid`: `<set jid id/>`, or `<delete jid/>` when `picture_id` is null.
    Picture {
        /// Whose picture.
        jid: String,
        /// The new picture id; `null` = removed.
        #[serde(default)]
        picture_id: Option<String>,
    },
    /// `status` from `jid`: `<set>text</set>` (the about text).
    Status {
        /// Whose status.
        jid: String,
        /// The new text.
        text: String,
    },
    /// `devices` from `jid`: `<add|remove device_hash><device jid key-index/></…>`.
    Devices {
        /// Whose device list changed (a user JID).
        jid: String,
        /// `add` or `remove`.
        action: DeviceAction,
        /// The device id.
        device: u16,
    },
    /// `encrypt` from the server: `<count value/>` (one-time prekeys left).
    PrekeyCount {
        /// Prekeys left on the server.
        count: u32,
    },
    /// `encrypt` from `jid`: `<identity/>` (the contact re-registered).
    IdentityChange {
        /// Who re-registered (a user JID).
        jid: String,
    },
    /// `mediaretry` (`id` = the message id): `<rmr jid from_me/><error code="2"/>`.
    MediaRetry {
        /// The message id.
        message_id: String,
        /// The chat of the message (`rmr jid`); default: the account itself.
        #[serde(default)]
        chat: Option<String>,
    },
    /// `server_sync`: `<collection name/>…` (the app-state server's shape).
    ServerSync {
        /// Collection names (`regular_high`, ...).
        collections: Vec<String>,
    },
    /// A `privacy_token` from `issuer` (an account), through the gate's token issuance.
    PrivacyToken {
        /// The issuing account's phone number.
        issuer: String,
        /// Token timestamp, unix seconds; default: now.
        #[serde(default)]
        t: Option<u64>,
    },
    /// The `NotificationUserReachoutTimelockUpdate` `mex` push (the gate's shape).
    Timelock {
        /// Whether the lock is on.
        active: bool,
        /// When it ends, unix seconds.
        #[serde(default)]
        ends: Option<u64>,
    },
    /// The `MessageCappingInfoNotification` `mex` push (the gate's shape).
    Capping {
        /// The quota state.
        #[serde(flatten)]
        capping: Capping,
    },
    /// `<ib><dirty type timestamp/></ib>`.
    Dirty {
        /// The dirty type (`account_sync`, `groups`, `syncd_app_state`, ...).
        dirty_type: String,
        /// `timestamp`, unix seconds; default: now.
        #[serde(default)]
        timestamp: Option<u64>,
    },
    /// `<ib><edge_routing><routing_info>bytes</routing_info></edge_routing></ib>`; the bytes
    /// are also sent after every later login of the account.
    EdgeRouting {
        /// The routing info, standard base64.
        routing_info_b64: String,
    },
    /// `<ib><offline_preview count message notification receipt appdata/></ib>`.
    OfflinePreview {
        /// `count`.
        count: u32,
        /// `message`.
        #[serde(default)]
        message: u32,
        /// `notification`.
        #[serde(default)]
        notification: u32,
        /// `receipt`.
        #[serde(default)]
        receipt: u32,
        /// `appdata`.
        #[serde(default)]
        appdata: u32,
    },
    /// `<ib><offline count/></ib>`.
    Offline {
        /// `count`.
        count: u32,
    },
}

/// A `w:gp2` membership change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParticipantAction {
    /// `<add>`.
    Add,
    /// `<remove>`.
    Remove,
    /// `<promote>`.
    Promote,
    /// `<demote>`.
    Demote,
}

/// A `devices` change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceAction {
    /// `<add>`.
    Add,
    /// `<remove>`.
    Remove,
}

/// What a [`Notice`] becomes.
pub(crate) enum Built {
    /// A `<notification>` for every device of the account (queued for offline ones, acked).
    Notification(Node),
    /// An `<ib>` for the account's connected devices only (not acked, not queued).
    Ib(Node),
}

/// Parses a JID field; a bare group id becomes `<id>@g.us` when `group`.
fn jid(value: &str, group: bool) -> Result<Jid, String> {
    if group && !value.contains('@') {
        return Ok(Jid::group(value.to_owned()));
    }
    value.parse().map_err(|e| format!("bad JID {value:?}: {e}"))
}

/// The `w:gp2` envelope (the shape `groups` sends: `from` group, `participant` actor,
/// `addressing_mode="pn"`).
fn group_notification(
    id: &str,
    t: u64,
    group: &str,
    actor: Option<&str>,
    own: &str,
    child: Node,
) -> Result<Node, String> {
    let actor = match actor {
        Some(a) => jid(a, false)?,
        None => Jid::pn(own.to_owned()),
    };
    Ok(Node::new("notification")
        .attr("from", jid(group, true)?)
        .attr("type", "w:gp2")
        .attr("id", id.to_owned())
        .attr("t", t.to_string())
        .attr("participant", actor)
        .attr("addressing_mode", "pn")
        .with_children([child]))
}

/// A plain `<notification from type id t>children</notification>`.
fn notification(id: &str, t: u64, from: Jid, kind: &'static str, children: Vec<Node>) -> Node {
    Node::new("notification")
        .attr("from", from)
        .attr("type", kind)
        .attr("id", id.to_owned())
        .attr("t", t.to_string())
        .with_children(children)
}

fn ib(child: Node) -> Node {
    Node::new("ib")
        .attr("from", stanzas::server_jid())
        .with_children([child])
}

impl Notice {
    /// The stanza for account `own` (phone number) at unix time `t`, with stanza id `id`.
    /// `None` for the kinds pushed through their own paths (privacy token, timelock,
    /// capping, edge routing).
    ///
    /// # Errors
    /// A message naming the unparsable field (a bad JID, bad base64).
    pub(crate) fn build(&self, id: &str, t: u64, own: &str) -> Result<Option<Built>, String> {
        let participants = |list: &[String]| -> Result<Vec<Node>, String> {
            list.iter()
                .map(|p| Ok(Node::new("participant").attr("jid", jid(p, false)?)))
                .collect()
        };
        let built = match self {
            Self::GroupSubject {
                group,
                actor,
                subject,
            } => {
                let owner = match actor {
                    Some(a) => jid(a, false)?,
                    None => Jid::pn(own.to_owned()),
                };
                let child = Node::new("subject")
                    .attr("subject", subject.clone())
                    .attr("s_t", t.to_string())
                    .attr("s_o", owner);
                Built::Notification(group_notification(
                    id,
                    t,
                    group,
                    actor.as_deref(),
                    own,
                    child,
                )?)
            }
            Self::GroupDescription {
                group,
                actor,
                description,
            } => {
                let child = Node::new("description").attr("id", format!("{t:X}"));
                let child = match description {
                    Some(text) => child.with_children([Node::new("body").with_text(text.clone())]),
                    None => child.with_children([Node::new("delete")]),
                };
                Built::Notification(group_notification(
                    id,
                    t,
                    group,
                    actor.as_deref(),
                    own,
                    child,
                )?)
            }
            Self::GroupParticipants {
                group,
                actor,
                action,
                participants: list,
            } => {
                let tag = match action {
                    ParticipantAction::Add => "add",
                    ParticipantAction::Remove => "remove",
                    ParticipantAction::Promote => "promote",
                    ParticipantAction::Demote => "demote",
                };
                let child = Node::new(tag).with_children(participants(list)?);
                Built::Notification(group_notification(
                    id,
                    t,
                    group,
                    actor.as_deref(),
                    own,
                    child,
                )?)
            }
            Self::GroupAnnounce {
                group,
                actor,
                announce,
            } => {
                let tag = if *announce {
                    "announcement"
                } else {
                    "not_announcement"
                };
                Built::Notification(group_notification(
                    id,
                    t,
                    group,
                    actor.as_deref(),
                    own,
                    Node::new(tag),
                )?)
            }
            Self::GroupLocked {
                group,
                actor,
                locked,
            } => {
                let tag = if *locked { "locked" } else { "unlocked" };
                Built::Notification(group_notification(
                    id,
                    t,
                    group,
                    actor.as_deref(),
                    own,
                    Node::new(tag),
                )?)
            }
            Self::GroupInvite { group, actor, code } => Built::Notification(group_notification(
                id,
                t,
                group,
                actor.as_deref(),
                own,
                Node::new("invite").attr("code", code.clone()),
            )?),
            Self::GroupEphemeral {
                group,
                actor,
                expiration,
            } => {
                let child = if *expiration == 0 {
                    Node::new("not_ephemeral")
                } else {
                    Node::new("ephemeral").attr("expiration", expiration.to_string())
                };
                Built::Notification(group_notification(
                    id,
                    t,
                    group,
                    actor.as_deref(),
                    own,
                    child,
                )?)
            }
            Self::AccountSync { what } => {
                if !matches!(
                    what.as_str(),
                    "devices" | "privacy" | "picture" | "blocklist"
                ) {
                    return Err(format!(
                        "account_sync what {what:?}: devices, privacy, picture or blocklist"
                    ));
                }
                let child = Node::new(what.clone());
                Built::Notification(notification(
                    id,
                    t,
                    Jid::pn(own.to_owned()),
                    "account_sync",
                    vec![child],
                ))
            }
            Self::Picture {
                jid: who,
                picture_id,
            } => {
                let who = jid(who, false)?;
                let child = match picture_id {
                    Some(pid) => Node::new("set")
                        .attr("jid", who.clone())
                        .attr("id", pid.clone()),
                    None => Node::new("delete").attr("jid", who.clone()),
                };
                Built::Notification(notification(id, t, who, "picture", vec![child]))
            }
            Self::Status { jid: who, text } => Built::Notification(notification(
                id,
                t,
                jid(who, false)?,
                "status",
                vec![Node::new("set").with_text(text.clone())],
            )),
            Self::Devices {
                jid: who,
                action,
                device,
            } => {
                let who = jid(who, false)?;
                let tag = match action {
                    DeviceAction::Add => "add",
                    DeviceAction::Remove => "remove",
                };
                let child = Node::new(tag)
                    .attr("device_hash", "2:sandbox")
                    .with_children([Node::new("device")
                        .attr("jid", who.to_non_ad().with_device(*device))
                        .attr("key-index", "1")]);
                Built::Notification(notification(id, t, who.to_non_ad(), "devices", vec![child]))
            }
            Self::PrekeyCount { count } => Built::Notification(notification(
                id,
                t,
                stanzas::server_jid(),
                "encrypt",
                vec![Node::new("count").attr("value", count.to_string())],
            )),
            Self::IdentityChange { jid: who } => Built::Notification(notification(
                id,
                t,
                jid(who, false)?.to_non_ad(),
                "encrypt",
                vec![Node::new("identity")],
            )),
            Self::MediaRetry { message_id, chat } => {
                let chat = match chat {
                    Some(c) => jid(c, false)?,
                    None => Jid::pn(own.to_owned()),
                };
                Built::Notification(
                    notification(
                        message_id,
                        t,
                        Jid::pn(own.to_owned()),
                        "mediaretry",
                        vec![
                            Node::new("rmr").attr("jid", chat).attr("from_me", "true"),
                            Node::new("error").attr("code", "2"),
                        ],
                    )
                    .attr("id", message_id.clone()),
                )
            }
            Self::ServerSync { collections } => Built::Notification(notification(
                id,
                t,
                Jid::pn(own.to_owned()),
                "server_sync",
                collections
                    .iter()
                    .map(|c| {
                        Node::new("collection")
                            .attr("name", c.clone())
                            .attr("version", "0")
                    })
                    .collect(),
            )),
            Self::Dirty {
                dirty_type,
                timestamp,
            } => Built::Ib(ib(Node::new("dirty")
                .attr("type", dirty_type.clone())
                .attr("timestamp", timestamp.unwrap_or(t).to_string()))),
            Self::OfflinePreview {
                count,
                message,
                notification,
                receipt,
                appdata,
            } => Built::Ib(ib(Node::new("offline_preview")
                .attr("count", count.to_string())
                .attr("message", message.to_string())
                .attr("notification", notification.to_string())
                .attr("receipt", receipt.to_string())
                .attr("appdata", appdata.to_string()))),
            Self::Offline { count } => {
                Built::Ib(ib(Node::new("offline").attr("count", count.to_string())))
            }
            Self::PrivacyToken { .. }
            | Self::Timelock { .. }
            | Self::Capping { .. }
            | Self::EdgeRouting { .. } => return Ok(None),
        };
        Ok(Some(built))
    }
}

/// `<ib from="s.whatsapp.net"><edge_routing><routing_info>bytes</routing_info></edge_routing></ib>`
/// (whatsapp-rust `handlers/ib.rs`).
pub(crate) fn edge_routing_ib(routing_info: &[u8]) -> Node {
    ib(Node::new("edge_routing")
        .with_children([Node::new("routing_info").with_bytes(routing_info.to_vec())]))
}

/// Edge routing as the sandbox sees it: what it issues per account and what each device
/// sent back in its `ED` pre-intro.
#[derive(Debug, Default)]
pub(crate) struct EdgeBook {
    /// Account phone -> the routing info sent after each login.
    issued: BTreeMap<String, Vec<u8>>,
    /// Device -> the routing info of its latest connection's pre-intro.
    received: BTreeMap<DevKey, Vec<u8>>,
    /// Device -> connections that came with a pre-intro.
    pre_intros: BTreeMap<DevKey, u32>,
}

impl EdgeBook {
    /// What to send `phone`'s devices after login.
    pub(crate) fn issued(&self, phone: &str) -> Option<&[u8]> {
        self.issued.get(phone).map(Vec::as_slice)
    }

    /// Sets what to send `phone`'s devices after login.
    pub(crate) fn issue(&mut self, phone: &str, info: Vec<u8>) {
        self.issued.insert(phone.to_owned(), info);
    }

    /// A device logged in with this pre-intro routing info.
    pub(crate) fn record(&mut self, dev: DevKey, info: &[u8]) {
        *self.pre_intros.entry(dev.clone()).or_default() += 1;
        self.received.insert(dev, info.to_vec());
    }

    /// `(device, routing info, pre-intro count)` of `phone`'s devices, by device id.
    pub(crate) fn received(&self, phone: &str) -> Vec<(u16, Vec<u8>, u32)> {
        self.received
            .iter()
            .filter(|(k, _)| k.0 == phone)
            .map(|(k, v)| (k.1, v.clone(), self.pre_intros.get(k).copied().unwrap_or(0)))
            .collect()
    }
}
