//! Groups: the `w:g2` IQs (create, metadata, add / remove / promote / demote) and `w:gp2`
//! notifications (shared/protocol/06-groups-media-presence.md §1).
//!
//! Internal (public only with the `server-side` feature, for the sandbox, fuzz targets
//! and vector tests): builders take the IQ id; parsers take the
//! `type="result"` IQ or the notification.

use crate::Jid;
use crate::binary::{Node, Value};
use crate::jid::Server;

mod manage;
pub use manage::*;
#[cfg(feature = "runtime")]
mod client;

/// A group IQ result or notification that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// No `<group>` in the result.
    #[error("group result without <group>")]
    MissingGroup,
    /// The `<group>` has no `id` (required by whatsmeow, 06 §1.2).
    #[error("<group> without id")]
    MissingId,
}

/// A participant's role (06 §1.2: `type` attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParticipantRole {
    /// No `type`.
    Member,
    /// `admin`.
    Admin,
    /// `superadmin` (the creator).
    SuperAdmin,
}

/// One participant of a group, or one entry of a membership change result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupParticipant {
    /// The user JID.
    pub jid: Jid,
    /// The role.
    pub role: ParticipantRole,
    /// A per-participant failure code from create/add/remove (06 §1.3, §1.4); `None` = ok.
    pub error: Option<u16>,
}

/// Group metadata (06 §1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupInfo {
    /// The group JID, `<id>@g.us`.
    pub jid: Jid,
    /// The subject (name).
    pub subject: String,
    /// Who created it.
    pub creator: Option<Jid>,
    /// Creation time, unix seconds (0 if absent).
    pub creation: u64,
    /// The participants.
    pub participants: Vec<GroupParticipant>,
    /// Who set the subject last (`s_o`), if given.
    pub subject_owner: Option<Jid>,
    /// When the subject was set, unix seconds (`s_t`; 0 if absent).
    pub subject_time: u64,
    /// The description (`<description id participant t><body>`), if set.
    pub description: Option<GroupDescription>,
    /// Only admins may send (`<announcement/>`).
    pub announce: bool,
    /// Only admins may edit the group info (`<locked/>`).
    pub locked: bool,
    /// Disappearing-messages timer in seconds (`<ephemeral expiration>`), if on.
    pub ephemeral: Option<u32>,
}

/// A group's description (topic), as in the metadata (whatsmeow `group.go` parseGroupNode:
/// `<description id participant t><body>text</body></description>`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupDescription {
    /// The description id; pass it as `prev` when changing the description.
    pub id: String,
    /// The text.
    pub body: String,
    /// Who set it, if given.
    pub set_by: Option<Jid>,
    /// When, unix seconds (0 if absent).
    pub set_at: u64,
}

/// A membership change (06 §1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParticipantAction {
    /// `add`.
    Add,
    /// `remove`.
    Remove,
    /// `promote` to admin.
    Promote,
    /// `demote` to member.
    Demote,
}

impl ParticipantAction {
    /// The child tag.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Promote => "promote",
            Self::Demote => "demote",
        }
    }
}

/// The group server JID `@g.us` (the `to` of global group IQs; Baileys' form, 06 §1).
pub fn group_server() -> Jid {
    Jid::server_jid(Server::Group)
}

fn g2(id: &str, to: Jid, kind: &'static str, child: Node) -> Node {
    Node::new("iq")
        .attr("id", id.to_owned())
        .attr("xmlns", "w:g2")
        .attr("type", kind)
        .attr("to", to)
        .with_children([child])
}

fn participant_nodes(participants: &[Jid]) -> impl Iterator<Item = Node> + '_ {
    participants
        .iter()
        .map(|p| Node::new("participant").attr("jid", p.to_non_ad()))
}

/// Create a group (06 §1.3): `<create subject key>` with the other participants (the
/// creator is added by the server). `key` is echoed in the `<create>` notification.
pub(crate) fn create_iq(id: &str, subject: &str, participants: &[Jid], key: &str) -> Node {
    g2(
        id,
        group_server(),
        "set",
        Node::new("create")
            .attr("subject", subject.to_owned())
            .attr("key", key.to_owned())
            .with_children(participant_nodes(participants)),
    )
}

/// Metadata query (06 §1.2).
pub(crate) fn metadata_iq(id: &str, group: &Jid) -> Node {
    g2(
        id,
        group.clone(),
        "get",
        Node::new("query").attr("request", "interactive"),
    )
}

/// Add / remove / promote / demote (06 §1.4).
pub(crate) fn participants_iq(
    id: &str,
    group: &Jid,
    action: ParticipantAction,
    participants: &[Jid],
) -> Node {
    g2(
        id,
        group.clone(),
        "set",
        Node::new(action.as_str()).with_children(participant_nodes(participants)),
    )
}

fn jid_attr(node: &Node, key: &str) -> Option<Jid> {
    match node.get_attr(key)? {
        Value::Jid(j) => Some(j.clone()),
        Value::String(s) => s.parse().ok(),
    }
}

fn parse_participant(node: &Node) -> Option<GroupParticipant> {
    Some(GroupParticipant {
        jid: jid_attr(node, "jid")?,
        role: match node.get_attr_str("type") {
            Some("superadmin") => ParticipantRole::SuperAdmin,
            Some("admin") => ParticipantRole::Admin,
            _ => ParticipantRole::Member,
        },
        error: node
            .get_attr_str("error")
            .and_then(|e| e.parse().ok())
            .filter(|&c: &u16| c != 200 && c != 0),
    })
}

/// Reads a `<group>` node (06 §1.2): `id` may be the bare id or a full JID.
///
/// # Errors
/// [`GroupError::MissingId`].
pub fn parse_group(group: &Node) -> Result<GroupInfo, GroupError> {
    let jid = match group.get_attr("id").ok_or(GroupError::MissingId)? {
        Value::Jid(j) => j.clone(),
        Value::String(s) if s.contains('@') => s.parse().map_err(|_| GroupError::MissingId)?,
        Value::String(s) => Jid::group(s.to_string()),
    };
    Ok(GroupInfo {
        jid,
        subject: group.get_attr_str("subject").unwrap_or_default().to_owned(),
        creator: jid_attr(group, "creator"),
        creation: group
            .get_attr_str("creation")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        participants: group
            .children_by_tag("participant")
            .filter_map(parse_participant)
            .collect(),
        subject_owner: jid_attr(group, "s_o"),
        subject_time: group
            .get_attr_str("s_t")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        description: group.child_by_tag("description").and_then(|d| {
            let body = d.child_by_tag("body")?;
            Some(GroupDescription {
                id: d.get_attr_str("id").unwrap_or_default().to_owned(),
                body: body
                    .content_str()
                    .map(str::to_owned)
                    .or_else(|| {
                        body.content_bytes()
                            .map(|b| String::from_utf8_lossy(b).into_owned())
                    })
                    .unwrap_or_default(),
                set_by: jid_attr(d, "participant"),
                set_at: d
                    .get_attr_str("t")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0),
            })
        }),
        announce: group.child_by_tag("announcement").is_some(),
        locked: group.child_by_tag("locked").is_some(),
        ephemeral: group
            .child_by_tag("ephemeral")
            .and_then(|e| e.get_attr_str("expiration"))
            .and_then(|e| e.parse().ok()),
    })
}

/// The `<group>` of a create or metadata result.
///
/// # Errors
/// [`GroupError::MissingGroup`], [`GroupError::MissingId`].
pub fn parse_group_result(result: &Node) -> Result<GroupInfo, GroupError> {
    parse_group(
        result
            .child_by_tag("group")
            .ok_or(GroupError::MissingGroup)?,
    )
}

/// The per-participant outcome of an add / remove / promote / demote result.
pub fn parse_participants_result(
    result: &Node,
    action: ParticipantAction,
) -> Vec<GroupParticipant> {
    result
        .child_by_tag(action.as_str())
        .map(|c| {
            c.children_by_tag("participant")
                .filter_map(parse_participant)
                .collect()
        })
        .unwrap_or_default()
}

/// One change in a `w:gp2` notification (06 §1.5).
// `Created` carries the whole metadata; notifications travel boxed
// (`Event::Notification(Box<_>)`), so the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupChange {
    /// `create`: we joined (created, or were added to) the group.
    Created(GroupInfo),
    /// `add`: members added.
    Added(Vec<Jid>),
    /// `remove`: members removed or left.
    Removed(Vec<Jid>),
    /// `promote`.
    Promoted(Vec<Jid>),
    /// `demote`.
    Demoted(Vec<Jid>),
    /// `subject`: renamed.
    Subject(String),
    /// Any other child, by tag.
    Other(String),
}

/// A `w:gp2` notification (06 §1.5).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupNotification {
    /// The group.
    pub group: Jid,
    /// Who made the change (`participant`), if given.
    pub actor: Option<Jid>,
    /// The changes, in document order.
    pub changes: Vec<GroupChange>,
}

/// Reads a `<notification type="w:gp2">`; `None` for other notifications or without `from`.
pub fn parse_notification(node: &Node) -> Option<GroupNotification> {
    if node.get_attr_str("type") != Some("w:gp2") {
        return None;
    }
    let group = jid_attr(node, "from")?;
    let members = |c: &Node| -> Vec<Jid> {
        c.children_by_tag("participant")
            .filter_map(|p| jid_attr(p, "jid"))
            .collect()
    };
    let changes = node
        .children()
        .iter()
        .map(|c| match c.tag.as_ref() {
            "create" => c
                .child_by_tag("group")
                .and_then(|g| parse_group(g).ok())
                .map_or_else(|| GroupChange::Other("create".into()), GroupChange::Created),
            "add" => GroupChange::Added(members(c)),
            "remove" => GroupChange::Removed(members(c)),
            "promote" => GroupChange::Promoted(members(c)),
            "demote" => GroupChange::Demoted(members(c)),
            "subject" => {
                GroupChange::Subject(c.get_attr_str("subject").unwrap_or_default().to_owned())
            }
            other => GroupChange::Other(other.to_owned()),
        })
        .collect();
    Some(GroupNotification {
        group,
        actor: jid_attr(node, "participant"),
        changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_metadata_with_roles() {
        let result = Node::new("iq").with_children([Node::new("group")
            .attr("id", "120363012345678901")
            .attr("subject", "Team")
            .attr("creation", "1700000000")
            .attr(
                "creator",
                "15551234567@s.whatsapp.net".parse::<Jid>().unwrap(),
            )
            .with_children([
                Node::new("participant")
                    .attr("jid", "15551234567@s.whatsapp.net".parse::<Jid>().unwrap())
                    .attr("type", "superadmin"),
                Node::new("participant")
                    .attr("jid", "15557654321@s.whatsapp.net".parse::<Jid>().unwrap()),
            ])]);
        let g = parse_group_result(&result).unwrap();
        assert_eq!(g.jid.to_string(), "120363012345678901@g.us");
        assert_eq!(g.subject, "Team");
        assert_eq!(g.participants[0].role, ParticipantRole::SuperAdmin);
        assert_eq!(g.participants[1].role, ParticipantRole::Member);
    }

    #[test]
    fn parses_remove_notification() {
        let n = Node::new("notification")
            .attr("type", "w:gp2")
            .attr("from", "120363012345678901@g.us".parse::<Jid>().unwrap())
            .with_children([Node::new("remove")
                .with_children([Node::new("participant")
                    .attr("jid", "1@s.whatsapp.net".parse::<Jid>().unwrap())])]);
        let parsed = parse_notification(&n).unwrap();
        assert_eq!(
            parsed.changes,
            vec![GroupChange::Removed(vec![
                "1@s.whatsapp.net".parse().unwrap()
            ])]
        );
    }
}
