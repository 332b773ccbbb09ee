//! Typed `<notification>`s (issue 13 item 1): one table from the `type` attribute to its
//! handling ([`classify`]), each typed kind reported as
//! [`Event::Notification`](crate::Event::Notification).
//!
//! | `type` | handling | event |
//! |---|---|---|
//! | `w:gp2` | group cache, sender-key rotation (conn::messaging) | [`NotificationKind::Group`] |
//! | `account_sync` | none | [`NotificationKind::AccountSync`] |
//! | `picture` | none | [`NotificationKind::Picture`] |
//! | `status` | none | [`NotificationKind::Status`] |
//! | `devices` | device cache dropped (conn::messaging) | [`NotificationKind::Devices`] |
//! | `encrypt` | prekey top-up, identity change: sessions dropped, token re-issued | [`NotificationKind::PreKeyCount`], [`NotificationKind::IdentityChange`] |
//! | `mediaretry` | none | [`NotificationKind::MediaRetry`] |
//! | `server_sync`, `privacy_token`, `mex` (timelock, capping) | app-state sync, privacy tokens (conn::sync, conn::messaging) | their own events; the stanza stays [`Event::Stanza`](crate::Event::Stanza) |
//! | anything else | logged once per type | [`Event::Stanza`](crate::Event::Stanza) |
//!
//! The sync and privacy types keep their raw [`Event::Stanza`](crate::Event::Stanza) and get
//! their own typed events besides: `server_sync` starts an app-state fetch whose mutations
//! follow as [`Event::AppState`](crate::Event::AppState) (its stanza is only
//! [`Event::Stanza`](crate::Event::Stanza); read the collections with
//! [`appstate::iq::parse_server_sync`](crate::appstate::iq::parse_server_sync)), `privacy_token` →
//! [`Event::PrivacyToken`](crate::Event::PrivacyToken) (who issued how many tokens; never the
//! token bytes), `mex` → [`Event::ReachoutTimelock`](crate::Event::ReachoutTimelock) /
//! [`Event::NewChatCapping`](crate::Event::NewChatCapping).
//!
//! `<ib>` children (`conn::ib`): `dirty` → [`Event::Dirty`](crate::Event::Dirty), `offline_preview`
//! → [`Event::OfflineSyncPreview`](crate::Event::OfflineSyncPreview) ([`OfflinePreview`]),
//! `offline` → [`Event::OfflineSyncCompleted`](crate::Event::OfflineSyncCompleted),
//! `edge_routing` → stored, then [`Event::EdgeRoutingUpdated`](crate::Event::EdgeRoutingUpdated)
//! (whatsmeow `connectionevents.go` `handleIB`; edge routing from whatsapp-rust, which
//! whatsmeow ignores).
//!
//! Sources: whatsmeow `notification.go` (`handleNotification` switch, `parseGroupNotification`
//! in `group.go`, `handleAccountSyncNotification`, `handlePictureNotification`,
//! `handleStatusNotification`, `handleEncryptNotification`, `handleMediaRetryNotification`).

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use crate::Jid;
use crate::binary::Node;
use crate::group::GroupNotification;

/// A classified notification ([`Event::Notification`](crate::Event::Notification)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NotificationEvent {
    /// Who sent it (`from`).
    pub from: Option<Jid>,
    /// Server time, unix seconds (`t`).
    pub timestamp: Option<u64>,
    /// What it says.
    pub kind: NotificationKind,
    /// The stanza as received, for fields this view does not read.
    pub node: Node,
}

/// What a notification says.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum NotificationKind {
    /// `w:gp2`: group changes (create, add, remove, promote, demote, subject; the rest as
    /// `Other(tag)`), plus the details [`GroupExtras`] reads.
    Group(GroupNotification, GroupExtras),
    /// `account_sync`: a change to the account on another device.
    AccountSync(AccountSync),
    /// `picture`: a profile or group picture was set (`picture_id`) or removed.
    Picture {
        /// Whose picture (`jid` of the `set`/`delete` child, else `from`).
        jid: Option<Jid>,
        /// New picture id; `None` when removed.
        picture_id: Option<String>,
        /// Removed (`<delete>`).
        removed: bool,
    },
    /// `status`: a contact's about text changed (`<set>text</set>`).
    Status {
        /// The new text.
        text: Option<String>,
    },
    /// `devices`: a contact's device list changed (the cached list was dropped).
    Devices,
    /// `encrypt` with `<identity>`: a contact re-registered (sessions were dropped).
    IdentityChange,
    /// `encrypt` with `<count value>`: our one-time prekeys left on the server (a top-up
    /// was started below the minimum).
    PreKeyCount(u32),
    /// `mediaretry`: the answer to a media re-upload request for message `id`.
    MediaRetry {
        /// The message id (the stanza `id`).
        message_id: Option<String>,
    },
}

/// `<ib><offline_preview count appdata message notification receipt/>`: what the server
/// holds for us before it replays the offline queue ([`Event::OfflineSyncPreview`]; whatsmeow
/// `events.OfflineSyncPreview`). Missing attributes read as 0.
///
/// [`Event::OfflineSyncPreview`]: crate::Event::OfflineSyncPreview
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OfflinePreview {
    /// Stanzas in all (`count`).
    pub total: u32,
    /// App-state changes (`appdata`).
    pub app_data: u32,
    /// Messages (`message`).
    pub messages: u32,
    /// Notifications (`notification`).
    pub notifications: u32,
    /// Receipts (`receipt`).
    pub receipts: u32,
}

impl OfflinePreview {
    /// Reads the `<offline_preview>` element (unparsable counts read as 0).
    #[must_use]
    pub fn parse(node: &Node) -> Self {
        let n = |k: &str| {
            node.get_attr_str(k)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Self {
            total: n("count"),
            app_data: n("appdata"),
            messages: n("message"),
            notifications: n("notification"),
            receipts: n("receipt"),
        }
    }
}

/// A `privacy_token` notification, summarised ([`Event::PrivacyToken`]): who issued how
/// many trusted-contact tokens. The token bytes are stored (conn::tokens) and never appear
/// here.
///
/// [`Event::PrivacyToken`]: crate::Event::PrivacyToken
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PrivacyTokenNotice {
    /// The issuer (`from`).
    pub from: Jid,
    /// The issuer's LID (`sender_lid`), when sent.
    pub sender_lid: Option<Jid>,
    /// Usable `trusted_contact` tokens in the stanza.
    pub tokens: usize,
    /// The newest token's timestamp, unix seconds.
    pub newest_timestamp: Option<u64>,
}

/// The typed event a `<notification>` produces besides [`classify`]'s: [`Event::PrivacyToken`]
/// for a parsable `privacy_token`.
///
/// [`Event::PrivacyToken`]: crate::Event::PrivacyToken
#[must_use]
pub fn side_event(node: &Node) -> Option<crate::Event> {
    match node.get_attr_str("type")? {
        "privacy_token" => {
            let p = crate::privacy::parse_notification(node).ok()?;
            Some(crate::Event::PrivacyToken(Box::new(PrivacyTokenNotice {
                newest_timestamp: p.tokens.iter().map(|t| t.timestamp).max(),
                tokens: p.tokens.len(),
                from: p.from,
                sender_lid: p.sender_lid,
            })))
        }
        _ => None,
    }
}

/// Group details beyond [`crate::group::GroupChange`] (whatsmeow `group.go`
/// `parseGroupChange`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupExtras {
    /// `<description>`: new description (`None` inside = removed).
    pub description: Option<Option<String>>,
    /// `<announcement>` (only admins send) / `<not_announcement>`.
    pub announce: Option<bool>,
    /// `<locked>` (only admins edit info) / `<unlocked>`.
    pub locked: Option<bool>,
    /// `<invite code>`: the new invite code.
    pub invite_code: Option<String>,
    /// `<ephemeral expiration>` (seconds) / `<not_ephemeral>` (0).
    pub ephemeral_secs: Option<u32>,
}

/// An `account_sync` notification's subject (its first child).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccountSync {
    /// `<devices>`: our own device list changed.
    Devices,
    /// `<privacy>`: a privacy setting changed.
    Privacy,
    /// `<picture>`: our picture changed.
    Picture,
    /// `<blocklist>`: the block list changed.
    Blocklist,
    /// Another child tag.
    Other(String),
}

/// The details of a `w:gp2` notification beyond the membership changes (also read by the
/// connection, which stores a group's disappearing timer from them).
pub(crate) fn group_extras(node: &Node) -> GroupExtras {
    let mut x = GroupExtras::default();
    for c in node.children() {
        match c.tag.as_ref() {
            "description" => {
                x.description = Some(
                    c.child_by_tag("body")
                        .and_then(Node::content_str)
                        .map(str::to_owned),
                );
            }
            "announcement" => x.announce = Some(true),
            "not_announcement" => x.announce = Some(false),
            "locked" => x.locked = Some(true),
            "unlocked" => x.locked = Some(false),
            "invite" => x.invite_code = c.get_attr_str("code").map(str::to_owned),
            "ephemeral" => {
                x.ephemeral_secs = c.get_attr_str("expiration").and_then(|e| e.parse().ok());
            }
            "not_ephemeral" => x.ephemeral_secs = Some(0),
            _ => {}
        }
    }
    x
}

/// Logs an unhandled notification type once per process.
fn log_unknown_once(kind: &str) {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let seen = SEEN.get_or_init(|| Mutex::new(HashSet::new()));
    if let Ok(mut s) = seen.lock()
        && s.len() < 256
        && s.insert(kind.to_owned())
    {
        tracing::info!(kind, "unhandled notification type (passed up raw)");
    }
}

/// The event for an (already acked and handled) notification: [`Event::Notification`] for
/// the typed kinds, [`Event::Stanza`] for the sync/privacy ones (their own events come
/// from their handlers) and for unknown types (logged once per type).
///
/// [`Event::Notification`]: crate::Event::Notification
/// [`Event::Stanza`]: crate::Event::Stanza
#[must_use]
pub fn classify(node: Node) -> crate::Event {
    let ty = node.get_attr_str("type").unwrap_or_default().to_owned();
    let first = node.children().first().map(|c| c.tag.to_string());
    let kind = match ty.as_str() {
        "w:gp2" => crate::group::parse_notification(&node)
            .map(|g| NotificationKind::Group(g, group_extras(&node))),
        "account_sync" => Some(NotificationKind::AccountSync(
            match first.as_deref().unwrap_or_default() {
                "devices" => AccountSync::Devices,
                "privacy" => AccountSync::Privacy,
                "picture" => AccountSync::Picture,
                "blocklist" => AccountSync::Blocklist,
                other => AccountSync::Other(other.to_owned()),
            },
        )),
        "picture" => {
            let set = node.child_by_tag("set");
            let del = node.child_by_tag("delete");
            let child = set.or(del);
            Some(NotificationKind::Picture {
                jid: child
                    .and_then(|c| c.get_attr_jid("jid").cloned())
                    .or_else(|| node.get_attr_jid("from").cloned()),
                picture_id: set.and_then(|s| s.get_attr_str("id").map(str::to_owned)),
                removed: del.is_some() && set.is_none(),
            })
        }
        "status" => Some(NotificationKind::Status {
            text: node
                .child_by_tag("set")
                .and_then(Node::content_str)
                .map(str::to_owned),
        }),
        "devices" => Some(NotificationKind::Devices),
        "encrypt" => {
            if let Some(c) = node.child_by_tag("count") {
                c.get_attr_str("value")
                    .and_then(|v| v.parse().ok())
                    .map(NotificationKind::PreKeyCount)
            } else if node.child_by_tag("identity").is_some() {
                Some(NotificationKind::IdentityChange)
            } else {
                None
            }
        }
        "mediaretry" => Some(NotificationKind::MediaRetry {
            message_id: node.get_attr_str("id").map(str::to_owned),
        }),
        "server_sync" | "privacy_token" | "mex" => return crate::Event::Stanza(node),
        other => {
            log_unknown_once(other);
            None
        }
    };
    match kind {
        Some(kind) => crate::Event::Notification(Box::new(NotificationEvent {
            from: node.get_attr_jid("from").cloned(),
            timestamp: node.get_attr_str("t").and_then(|t| t.parse().ok()),
            kind,
            node,
        })),
        None => crate::Event::Stanza(node),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    fn kind_of(node: Node) -> Option<NotificationKind> {
        match classify(node) {
            Event::Notification(n) => Some(n.kind),
            _ => None,
        }
    }

    #[test]
    fn each_type_is_typed_and_sync_ones_stay_raw() {
        let gp2 = Node::new("notification")
            .attr("type", "w:gp2")
            .attr("from", "120363000000000001@g.us".parse::<Jid>().unwrap())
            .with_children([
                Node::new("description").with_children([Node::new("body").with_text("rules")]),
                Node::new("announcement"),
                Node::new("ephemeral").attr("expiration", "86400"),
            ]);
        let Some(NotificationKind::Group(_, x)) = kind_of(gp2) else {
            panic!("group")
        };
        assert_eq!(x.description, Some(Some("rules".to_owned())));
        assert_eq!((x.announce, x.ephemeral_secs), (Some(true), Some(86400)));
        let acct = Node::new("notification")
            .attr("type", "account_sync")
            .with_children([Node::new("blocklist")]);
        assert_eq!(
            kind_of(acct),
            Some(NotificationKind::AccountSync(AccountSync::Blocklist))
        );
        let status = Node::new("notification")
            .attr("type", "status")
            .with_children([Node::new("set").with_text("busy")]);
        assert_eq!(
            kind_of(status),
            Some(NotificationKind::Status {
                text: Some("busy".into())
            })
        );
        let enc = Node::new("notification")
            .attr("type", "encrypt")
            .with_children([Node::new("count").attr("value", "4")]);
        assert_eq!(kind_of(enc), Some(NotificationKind::PreKeyCount(4)));
        for raw in ["server_sync", "privacy_token", "mex", "something_new"] {
            let n = Node::new("notification").attr("type", raw);
            assert!(matches!(classify(n), Event::Stanza(_)), "{raw}");
        }
    }
}
