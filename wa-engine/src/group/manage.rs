//! Group management and profile IQs beyond create / metadata / membership: the participating
//! list, subject, description, settings, invite links, leave, the disappearing timer, and the
//! profile IQs (status text, profile pictures).
//!
//! Shapes follow whatsmeow first (`group.go`, `user.go`; Baileys `groups.ts` / `chats.ts`
//! where whatsmeow has no builder), each named on its builder. The builders leave the IQ `id`
//! out: [`Client::send_iq`](crate::Client::send_iq) adds one.

use crate::conn::SendError;
use crate::jid::Server;
use crate::{Jid, binary::Node};

use super::{GroupError, GroupInfo, group_server, jid_attr, parse_group};

/// The prefix of invite links (whatsmeow `InviteLinkPrefix`).
pub const INVITE_LINK_PREFIX: &str = "https://chat.whatsapp.com/";

/// Why a group or profile request failed: the IQ error codes the caller can act on as their
/// own variants (whatsmeow `errors.go` ErrIQNotAuthorized / ErrIQForbidden / ErrIQNotFound /
/// ErrIQNotAcceptable / ErrIQGone / ErrIQConflict), anything else as the [`SendError`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum IqError {
    /// 401 `not-authorized`: e.g. an invite link asked for by a non-admin, or a profile
    /// picture hidden by the owner's privacy settings (whatsmeow
    /// `ErrGroupInviteLinkUnauthorized`, `ErrProfilePictureUnauthorized`).
    #[error("not authorized (401)")]
    NotAuthorized,
    /// 403 `forbidden`: not a participant of the group, or not an admin where one must be
    /// (whatsmeow `ErrNotInGroup`).
    #[error("forbidden (403): not a participant, or not an admin")]
    Forbidden,
    /// 404 `item-not-found`: no such group, or no profile picture (whatsmeow
    /// `ErrGroupNotFound`, `ErrProfilePictureNotSet`).
    #[error("not found (404)")]
    NotFound,
    /// 406 `not-acceptable`: the request's content is refused (a subject too long, an
    /// invalid invite code or image: whatsmeow `ErrInviteLinkInvalid`, `ErrInvalidImageFormat`).
    #[error("not acceptable (406)")]
    NotAcceptable,
    /// 409 `conflict`: e.g. a description change whose `prev` id is not the current one.
    #[error("conflict (409)")]
    Conflict,
    /// 410 `gone`: the invite link was revoked (whatsmeow `ErrInviteLinkRevoked`).
    #[error("gone (410): the invite link was revoked")]
    Gone,
    /// A membership change listing no one (nothing was sent).
    #[error("no participants given")]
    NoParticipants,
    /// Anything else: not connected, a timeout, another error code, an unreadable answer.
    #[error(transparent)]
    Send(SendError),
}

impl From<SendError> for IqError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Rejected { code: 401, .. } => Self::NotAuthorized,
            SendError::Rejected { code: 403, .. } => Self::Forbidden,
            SendError::Rejected { code: 404, .. } => Self::NotFound,
            SendError::Rejected { code: 406, .. } => Self::NotAcceptable,
            SendError::Rejected { code: 409, .. } => Self::Conflict,
            SendError::Rejected { code: 410, .. } => Self::Gone,
            other => Self::Send(other),
        }
    }
}

impl From<GroupError> for IqError {
    fn from(e: GroupError) -> Self {
        Self::Send(SendError::BadResponse(crate::ResponseError::Group(e)))
    }
}

/// `<iq xmlns="w:g2" type to>child</iq>` without an id (whatsmeow `sendGroupIQ`).
fn g2(kind: &'static str, to: Jid, child: Node) -> Node {
    Node::new("iq")
        .attr("xmlns", "w:g2")
        .attr("type", kind)
        .attr("to", to)
        .with_children([child])
}

/// The groups we are in: `<participating><participants/><description/></participating>` to
/// `g.us` (whatsmeow `GetJoinedGroups`), answered with `<groups><group …/>…</groups>`.
pub fn participating_iq() -> Node {
    g2(
        "get",
        group_server(),
        Node::new("participating")
            .with_children([Node::new("participants"), Node::new("description")]),
    )
}

/// Rename: `<subject>UTF-8 bytes</subject>` (whatsmeow `SetGroupName`).
pub fn subject_iq(group: &Jid, subject: &str) -> Node {
    g2(
        "set",
        group.clone(),
        Node::new("subject").with_bytes(subject.as_bytes().to_vec()),
    )
}

/// Set the description: `<description id=new [prev=old]><body>text</body></description>`, or
/// remove it with an empty `text`: `<description id=new [prev] delete="true"/>` (whatsmeow
/// `SetGroupTopic`; `new_id` is a fresh message-style id, `prev` the current description id).
pub fn description_iq(group: &Jid, new_id: &str, prev: Option<&str>, text: &str) -> Node {
    let mut node = Node::new("description")
        .attr("id", new_id.to_owned())
        .attr_opt("prev", prev.filter(|p| !p.is_empty()).map(str::to_owned));
    if text.is_empty() {
        node = node.attr("delete", "true");
    } else {
        node = node.with_children([Node::new("body").with_bytes(text.as_bytes().to_vec())]);
    }
    g2("set", group.clone(), node)
}

/// A group setting (whatsmeow `SetGroupAnnounce` / `SetGroupLocked`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupSetting {
    /// Only admins may send (`announcement` / `not_announcement`).
    Announce(bool),
    /// Only admins may edit the group info (`locked` / `unlocked`).
    Locked(bool),
}

impl GroupSetting {
    /// The request child's tag.
    pub fn tag(self) -> &'static str {
        match self {
            Self::Announce(true) => "announcement",
            Self::Announce(false) => "not_announcement",
            Self::Locked(true) => "locked",
            Self::Locked(false) => "unlocked",
        }
    }
}

/// `<announcement/>`, `<not_announcement/>`, `<locked/>` or `<unlocked/>`.
pub fn setting_iq(group: &Jid, setting: GroupSetting) -> Node {
    g2("set", group.clone(), Node::new(setting.tag()))
}

/// Disappearing messages: `<ephemeral expiration="seconds"/>`, or `<not_ephemeral/>` for 0
/// (whatsmeow `SetDisappearingTimer` for groups).
pub fn ephemeral_iq(group: &Jid, seconds: u32) -> Node {
    let child = if seconds == 0 {
        Node::new("not_ephemeral")
    } else {
        Node::new("ephemeral").attr("expiration", seconds.to_string())
    };
    g2("set", group.clone(), child)
}

/// The invite code: `<invite/>` with `type="get"`, or `type="set"` to revoke the current code
/// and make a new one (whatsmeow `GetGroupInviteLink(reset)`); answered with
/// `<invite code/>`.
pub fn invite_iq(group: &Jid, reset: bool) -> Node {
    g2(
        if reset { "set" } else { "get" },
        group.clone(),
        Node::new("invite"),
    )
}

/// Strips [`INVITE_LINK_PREFIX`] (and surrounding blanks) from a link, leaving the code.
pub fn invite_code(link_or_code: &str) -> &str {
    let s = link_or_code.trim();
    s.strip_prefix(INVITE_LINK_PREFIX).unwrap_or(s)
}

/// Join with an invite code (`type="set"`) or look the group up without joining
/// (`type="get"`): `<invite code/>` to `g.us` (whatsmeow `JoinGroupWithLink`,
/// `GetGroupInfoFromLink`). A join is answered with `<group jid/>`, a lookup with the full
/// `<group>`; 410 for a revoked code, 406 for an unknown one.
pub fn join_invite_iq(code: &str, join: bool) -> Node {
    g2(
        if join { "set" } else { "get" },
        group_server(),
        Node::new("invite").attr("code", invite_code(code).to_owned()),
    )
}

/// Leave: `<leave><group id=<group JID>/></leave>` to `g.us` (whatsmeow `LeaveGroup`).
pub fn leave_iq(group: &Jid) -> Node {
    g2(
        "set",
        group_server(),
        Node::new("leave").with_children([Node::new("group").attr("id", group.clone())]),
    )
}

/// The groups of a [`participating_iq`] result.
///
/// # Errors
/// [`GroupError::MissingGroup`] without `<groups>`; [`GroupError::MissingId`] for a group
/// without id.
pub fn parse_participating(result: &Node) -> Result<Vec<GroupInfo>, GroupError> {
    result
        .child_by_tag("groups")
        .ok_or(GroupError::MissingGroup)?
        .children_by_tag("group")
        .map(parse_group)
        .collect()
}

/// The code of an [`invite_iq`] result (`<invite code/>`).
///
/// # Errors
/// [`GroupError::MissingGroup`] when there is no `<invite code>`.
pub fn parse_invite_code(result: &Node) -> Result<String, GroupError> {
    result
        .child_by_tag("invite")
        .and_then(|i| i.get_attr_str("code"))
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .ok_or(GroupError::MissingGroup)
}

/// The group JID of a join result (`<group jid/>`; whatsmeow also accepts `id`).
///
/// # Errors
/// [`GroupError::MissingGroup`], [`GroupError::MissingId`].
pub fn parse_joined(result: &Node) -> Result<Jid, GroupError> {
    let group = result
        .child_by_tag("group")
        .ok_or(GroupError::MissingGroup)?;
    if let Some(jid) = jid_attr(group, "jid") {
        return Ok(jid);
    }
    parse_group(group).map(|g| g.jid)
}

// ---------------------------------------------------------------------------------------------
// Profile

/// Own status text ("about"): `<iq xmlns="status" type="set" to="s.whatsapp.net"><status>text
/// </status></iq>` (whatsmeow `SetStatusMessage`).
pub fn set_status_iq(text: &str) -> Node {
    Node::new("iq")
        .attr("xmlns", "status")
        .attr("type", "set")
        .attr("to", Jid::server_jid(Server::Pn))
        .with_children([Node::new("status").with_bytes(text.as_bytes().to_vec())])
}

/// Profile picture lookup: `<iq xmlns="w:profile:picture" type="get" to="s.whatsapp.net"
/// target=jid><picture type="image|preview" query="url"/></iq>` (whatsmeow
/// `GetProfilePictureInfo`; for groups too).
pub fn get_picture_iq(target: &Jid, preview: bool) -> Node {
    Node::new("iq")
        .attr("xmlns", "w:profile:picture")
        .attr("type", "get")
        .attr("to", Jid::server_jid(Server::Pn))
        .attr("target", target.to_non_ad())
        .with_children([Node::new("picture")
            .attr("type", if preview { "preview" } else { "image" })
            .attr("query", "url")])
}

/// Set a picture: `<iq xmlns="w:profile:picture" type="set" to="s.whatsapp.net"
/// [target=group]><picture type="image">JPEG</picture></iq>`; `None` removes it (no child).
/// whatsmeow `SetGroupPhoto` always sends `target`; for our own picture the target is left
/// out as Baileys `updateProfilePicture` does for the own JID.
pub fn set_picture_iq(target: Option<&Jid>, jpeg: Option<&[u8]>) -> Node {
    let iq = Node::new("iq")
        .attr("xmlns", "w:profile:picture")
        .attr("type", "set")
        .attr("to", Jid::server_jid(Server::Pn))
        .attr_opt("target", target.map(Jid::to_non_ad));
    match jpeg {
        Some(bytes) => iq.with_children([Node::new("picture")
            .attr("type", "image")
            .with_bytes(bytes.to_vec())]),
        None => iq,
    }
}

/// A profile picture (whatsmeow `types.ProfilePictureInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProfilePicture {
    /// The picture id (changes with every new picture).
    pub id: String,
    /// Where to download it (plain JPEG, no media encryption).
    pub url: String,
    /// `image` or `preview`.
    pub kind: String,
    /// The CDN direct path, if given.
    pub direct_path: Option<String>,
}

/// Reads a [`get_picture_iq`] result: `Ok(None)` when the answer says there is no picture
/// (`<picture status="204">` or no `<picture>`; a 404 error is [`IqError::NotFound`]).
///
/// # Errors
/// [`GroupError::MissingId`] for a `<picture>` without `id` or `url`.
pub fn parse_picture(result: &Node) -> Result<Option<ProfilePicture>, GroupError> {
    let Some(p) = result.child_by_tag("picture") else {
        return Ok(None);
    };
    if matches!(p.get_attr_str("status"), Some("204" | "304")) {
        return Ok(None);
    }
    let (Some(id), Some(url)) = (p.get_attr_str("id"), p.get_attr_str("url")) else {
        return Err(GroupError::MissingId);
    };
    Ok(Some(ProfilePicture {
        id: id.to_owned(),
        url: url.to_owned(),
        kind: p.get_attr_str("type").unwrap_or("image").to_owned(),
        direct_path: p.get_attr_str("direct_path").map(str::to_owned),
    }))
}

/// The new picture id of a [`set_picture_iq`] result (`<picture id/>`).
pub fn parse_set_picture(result: &Node) -> Option<String> {
    result
        .child_by_tag("picture")
        .and_then(|p| p.get_attr_str("id"))
        .map(str::to_owned)
}

/// Status texts by usync (whatsmeow `GetUserInfo`: the `<status/>` protocol), answered per
/// `<user jid>` with `<status t>text</status>`.
pub fn status_query(users: &[Jid]) -> Node {
    Node::new("iq")
        .attr("xmlns", "usync")
        .attr("type", "get")
        .attr("to", Jid::server_jid(Server::Pn))
        .with_children([Node::new("usync")
            .attr("sid", "status")
            .attr("mode", "query")
            .attr("last", "true")
            .attr("index", "0")
            .attr("context", "interactive")
            .with_children([
                Node::new("query").with_children([Node::new("status")]),
                Node::new("list").with_children(
                    users
                        .iter()
                        .map(|u| Node::new("user").attr("jid", u.to_non_ad())),
                ),
            ])])
}

/// One user's status text (`None` when hidden or never set) and when it was set (unix s).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatusText {
    /// The user.
    pub jid: Jid,
    /// The text, if visible and set.
    pub text: Option<String>,
    /// When it was set, unix seconds (0 if not given).
    pub set_at: u64,
}

/// Reads a [`status_query`] result.
pub fn parse_status(result: &Node) -> Vec<StatusText> {
    let Some(list) = result.child_path(&["usync", "list"]) else {
        return Vec::new();
    };
    list.children_by_tag("user")
        .filter_map(|u| {
            let jid = jid_attr(u, "jid")?;
            let status = u.child_by_tag("status");
            Some(StatusText {
                jid,
                text: status
                    .and_then(Node::content_str)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned),
                set_at: status
                    .and_then(|s| s.get_attr_str("t"))
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_builder_deletes_with_empty_text() {
        let g: Jid = "120363000000000001@g.us".parse().unwrap();
        let set = description_iq(&g, "NEW", Some("OLD"), "hello");
        let d = set.child_by_tag("description").unwrap();
        assert_eq!(d.get_attr_str("prev"), Some("OLD"));
        assert_eq!(
            d.child_by_tag("body").unwrap().content_bytes(),
            Some(&b"hello"[..])
        );
        let del = description_iq(&g, "NEW2", None, "");
        let d = del.child_by_tag("description").unwrap();
        assert_eq!(d.get_attr_str("delete"), Some("true"));
        assert!(d.get_attr("prev").is_none());
        assert!(d.children().is_empty());
    }

    #[test]
    fn invite_codes_lose_the_link_prefix() {
        assert_eq!(invite_code("https://chat.whatsapp.com/AbC123"), "AbC123");
        assert_eq!(invite_code(" AbC123 "), "AbC123");
    }

    #[test]
    fn rejections_become_typed() {
        let e = |code| SendError::Rejected { code, text: None };
        assert_eq!(IqError::from(e(401)), IqError::NotAuthorized);
        assert_eq!(IqError::from(e(403)), IqError::Forbidden);
        assert_eq!(IqError::from(e(404)), IqError::NotFound);
        assert_eq!(IqError::from(e(410)), IqError::Gone);
        assert_eq!(IqError::from(e(500)), IqError::Send(e(500)));
    }

    #[test]
    fn picture_status_204_is_no_picture() {
        let r = Node::new("iq").with_children([Node::new("picture").attr("status", "204")]);
        assert_eq!(parse_picture(&r), Ok(None));
        let r = Node::new("iq").with_children([Node::new("picture")
            .attr("id", "123")
            .attr("url", "https://x/y")
            .attr("type", "image")]);
        assert_eq!(parse_picture(&r).unwrap().unwrap().id, "123");
    }
}
