//! [`Client`] methods for group management (whatsmeow `group.go`): each sends one IQ built
//! in the group module and reads its result. IQ error codes the caller can act on
//! come back typed ([`IqError`]).

use crate::Jid;
use crate::client::Client;

use super::{
    GroupInfo, GroupParticipant, GroupSetting, IqError, ParticipantAction, description_iq,
    ephemeral_iq, invite_iq, join_invite_iq, leave_iq, parse_group_result, parse_invite_code,
    parse_joined, parse_participants_result, parse_participating, participants_iq,
    participating_iq, setting_iq, subject_iq,
};

/// A fresh id in the style of message ids (`3EB0` + 16 hex digits), for description ids
/// (whatsmeow `SetGroupTopic` uses `GenerateMessageID`).
pub(crate) fn fresh_id() -> String {
    format!("3EB0{:016X}", rand::random::<u64>())
}

impl Client {
    /// Sends an IQ built without id and returns its result, errors typed.
    async fn iq(&self, iq: crate::binary::Node) -> Result<crate::binary::Node, IqError> {
        self.send_iq(iq).await.map_err(IqError::from)
    }

    /// The groups this account participates in, with participants and descriptions
    /// (`<participating>`, whatsmeow `GetJoinedGroups`).
    ///
    /// # Errors
    /// [`IqError::Send`] ([`SendError::Timeout`](crate::SendError::Timeout), [`SendError::NotLoggedIn`](crate::SendError::NotLoggedIn),
    /// [`SendError::BadResponse`](crate::SendError::BadResponse) without `<groups>`).
    pub async fn joined_groups(&self) -> Result<Vec<GroupInfo>, IqError> {
        let result = self.iq(participating_iq()).await?;
        Ok(parse_participating(&result)?)
    }

    /// A group's metadata with typed errors ([`group_metadata`](Self::group_metadata) with
    /// [`IqError`]): [`IqError::NotFound`] for no such group, [`IqError::Forbidden`] when we
    /// are not a participant.
    ///
    /// # Errors
    /// As above, or [`IqError::Send`].
    pub async fn group_info(&self, group: &Jid) -> Result<GroupInfo, IqError> {
        let result = self.iq(strip_id(super::metadata_iq("", group))).await?;
        Ok(parse_group_result(&result)?)
    }

    /// Promote members to admins (`<promote>`, whatsmeow `UpdateGroupParticipants`).
    /// Per-member failures (`error="404"` not a member) are in the result.
    ///
    /// # Errors
    /// [`IqError::Forbidden`] when we are not an admin, [`IqError::NotFound`], [`IqError::Send`].
    pub async fn promote_participants(
        &self,
        group: &Jid,
        users: &[Jid],
    ) -> Result<Vec<GroupParticipant>, IqError> {
        self.change_participants(group, ParticipantAction::Promote, users)
            .await
    }

    /// Demote admins to members (`<demote>`).
    ///
    /// # Errors
    /// As [`promote_participants`](Self::promote_participants).
    pub async fn demote_participants(
        &self,
        group: &Jid,
        users: &[Jid],
    ) -> Result<Vec<GroupParticipant>, IqError> {
        self.change_participants(group, ParticipantAction::Demote, users)
            .await
    }

    /// Any membership change with typed errors (add / remove / promote / demote).
    ///
    /// # Errors
    /// As [`promote_participants`](Self::promote_participants).
    pub async fn change_participants(
        &self,
        group: &Jid,
        action: ParticipantAction,
        users: &[Jid],
    ) -> Result<Vec<GroupParticipant>, IqError> {
        if users.is_empty() {
            return Err(IqError::NoParticipants);
        }
        let result = self
            .iq(strip_id(participants_iq("", group, action, users)))
            .await?;
        Ok(parse_participants_result(&result, action))
    }

    /// Rename a group (`<subject>`, whatsmeow `SetGroupName`). Members get a `w:gp2`
    /// `<subject>` notification.
    ///
    /// # Errors
    /// [`IqError::NotAcceptable`] for an empty or too long subject (the real server allows 25
    /// characters), [`IqError::Forbidden`] (not a member, or not an admin of a locked group),
    /// [`IqError::NotFound`], [`IqError::Send`].
    pub async fn set_group_subject(&self, group: &Jid, subject: &str) -> Result<(), IqError> {
        self.iq(subject_iq(group, subject)).await.map(drop)
    }

    /// Set the description, or remove it with an empty `text` (whatsmeow `SetGroupTopic`):
    /// the current description id is read first (a metadata query) and sent as `prev`, the
    /// new id is fresh. Returns the new description id.
    ///
    /// # Errors
    /// [`IqError::Conflict`] when someone changed it in between, [`IqError::Forbidden`],
    /// [`IqError::NotFound`], [`IqError::Send`].
    pub async fn set_group_description(&self, group: &Jid, text: &str) -> Result<String, IqError> {
        let prev = self.group_info(group).await?.description.map(|d| d.id);
        let id = fresh_id();
        self.iq(description_iq(group, &id, prev.as_deref(), text))
            .await?;
        Ok(id)
    }

    /// Change a setting: announce (only admins send) or locked (only admins edit the info)
    /// (whatsmeow `SetGroupAnnounce`, `SetGroupLocked`).
    ///
    /// # Errors
    /// [`IqError::Forbidden`] when we are not an admin, [`IqError::NotFound`], [`IqError::Send`].
    pub async fn set_group_setting(&self, group: &Jid, setting: GroupSetting) -> Result<(), IqError> {
        self.iq(setting_iq(group, setting)).await.map(drop)
    }

    /// Turn disappearing messages on (`seconds`, e.g. 86400, 604800, 7776000) or off (0) for a
    /// group (`<ephemeral expiration>` / `<not_ephemeral/>`).
    ///
    /// # Errors
    /// As [`set_group_setting`](Self::set_group_setting).
    pub async fn set_group_ephemeral(&self, group: &Jid, seconds: u32) -> Result<(), IqError> {
        self.iq(ephemeral_iq(group, seconds)).await.map(drop)
    }

    /// The group's invite link, `https://chat.whatsapp.com/<code>` (`<invite/>` get,
    /// whatsmeow `GetGroupInviteLink(reset=false)`).
    ///
    /// # Errors
    /// [`IqError::NotAuthorized`] when we are not an admin, [`IqError::Forbidden`] when not a
    /// member, [`IqError::NotFound`], [`IqError::Send`].
    pub async fn group_invite_link(&self, group: &Jid) -> Result<String, IqError> {
        let result = self.iq(invite_iq(group, false)).await?;
        Ok(format!(
            "{}{}",
            super::INVITE_LINK_PREFIX,
            parse_invite_code(&result)?
        ))
    }

    /// Revoke the invite link and return the new one (`<invite/>` set, whatsmeow
    /// `GetGroupInviteLink(reset=true)`). Members get a `w:gp2` `<invite code>` notification.
    ///
    /// # Errors
    /// As [`group_invite_link`](Self::group_invite_link).
    pub async fn revoke_group_invite(&self, group: &Jid) -> Result<String, IqError> {
        let result = self.iq(invite_iq(group, true)).await?;
        Ok(format!(
            "{}{}",
            super::INVITE_LINK_PREFIX,
            parse_invite_code(&result)?
        ))
    }

    /// Join a group with an invite link or bare code (whatsmeow `JoinGroupWithLink`);
    /// returns the group JID.
    ///
    /// # Errors
    /// [`IqError::Gone`] for a revoked code, [`IqError::NotAcceptable`] for an unknown one,
    /// [`IqError::Send`].
    pub async fn join_group_with_invite(&self, link_or_code: &str) -> Result<Jid, IqError> {
        let result = self.iq(join_invite_iq(link_or_code, true)).await?;
        Ok(parse_joined(&result)?)
    }

    /// Look a group up by invite link or code without joining (whatsmeow
    /// `GetGroupInfoFromLink`).
    ///
    /// # Errors
    /// As [`join_group_with_invite`](Self::join_group_with_invite).
    pub async fn group_info_from_invite(&self, link_or_code: &str) -> Result<GroupInfo, IqError> {
        let result = self.iq(join_invite_iq(link_or_code, false)).await?;
        Ok(parse_group_result(&result)?)
    }

    /// Leave a group (`<leave><group id/></leave>` to `g.us`, whatsmeow `LeaveGroup`). The
    /// remaining members get a `w:gp2` `<remove>` notification.
    ///
    /// # Errors
    /// [`IqError::Send`] (the real server answers success even when we were not a member).
    pub async fn leave_group(&self, group: &Jid) -> Result<(), IqError> {
        self.iq(leave_iq(group)).await.map(drop)
    }
}

/// Removes the empty `id` the older builders require, so the connection adds a fresh one.
fn strip_id(mut iq: crate::binary::Node) -> crate::binary::Node {
    iq.attrs.remove("id");
    iq
}
