//! [`Client`] methods for the account's profile: push name, status text ("about") and
//! profile pictures (whatsmeow `user.go`, `group.go` SetGroupPhoto, `appstate/encode.go`
//! BuildSettingPushName; Baileys `chats.ts` updateProfilePicture / updateProfileStatus).

use crate::Jid;
use crate::binary::Node;
use crate::conn::SendError;
use crate::group::{
    IqError, ProfilePicture, StatusText, get_picture_iq, parse_picture, parse_set_picture,
    parse_status, set_picture_iq, set_status_iq, status_query,
};

use super::Client;

/// Longest push name accepted, in characters (the official apps allow 25).
pub(crate) const MAX_PUSH_NAME_CHARS: usize = 25;

/// Longest status text accepted, in characters (the official apps allow 139).
pub(crate) const MAX_STATUS_CHARS: usize = 139;

/// How [`Client::set_push_name`] reached the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushNameSync {
    /// As the real client does: an app-state `setting_pushName` mutation (the account's
    /// other devices learn it), applied to our credentials, then `<presence name>`.
    AppState,
    /// No app-state sync key yet: only `<presence type="available" name>` was sent, so
    /// the server and contacts see the name, but our stored credentials keep the old one
    /// until app-state sync delivers it.
    PresenceOnly,
}

impl Client {
    /// Set the account's push name (the name contacts see on messages). The real client
    /// writes an app-state `setting_pushName` mutation in `critical_block` (whatsmeow
    /// `BuildSettingPushName`); applying our own patch updates the credentials and sends
    /// `<presence type="available" name>`. Before our primary shared a sync key, only the
    /// presence is sent ([`PushNameSync::PresenceOnly`]).
    ///
    /// # Errors
    /// [`IqError::NotAcceptable`] for an empty name or one over 25
    /// characters (checked here; nothing is sent); [`IqError::Send`].
    pub async fn set_push_name(&self, name: &str) -> Result<PushNameSync, IqError> {
        if name.is_empty() || name.chars().count() > MAX_PUSH_NAME_CHARS {
            return Err(IqError::NotAcceptable);
        }
        match self
            .chat_action(crate::appstate::ChatAction::PushName {
                name: name.to_owned(),
            })
            .await
        {
            Ok(()) => Ok(PushNameSync::AppState),
            Err(SendError::InvalidInput(crate::InvalidInput::NoAppStateKey)) => {
                self.send_node(
                    Node::new("presence")
                        .attr("type", "available")
                        .attr("name", name.replace('@', "")),
                )
                .await?;
                Ok(PushNameSync::PresenceOnly)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Set the account's status text ("about"; `<status>` IQ, whatsmeow `SetStatusMessage`).
    ///
    /// # Errors
    /// [`IqError::NotAcceptable`] for text over 139 characters (checked
    /// here), [`IqError::Send`].
    pub async fn set_status_text(&self, text: &str) -> Result<(), IqError> {
        if text.chars().count() > MAX_STATUS_CHARS {
            return Err(IqError::NotAcceptable);
        }
        self.send_iq(set_status_iq(text)).await?;
        Ok(())
    }

    /// Status texts of users (usync `<status/>`, whatsmeow `GetUserInfo`), in the answer's
    /// order; a hidden or unset status has `text: None`.
    ///
    /// # Errors
    /// [`IqError::Send`].
    pub async fn status_texts(&self, users: &[Jid]) -> Result<Vec<StatusText>, IqError> {
        let result = self.send_iq(status_query(users)).await?;
        Ok(parse_status(&result))
    }

    /// A user's or group's profile picture (`w:profile:picture` get, whatsmeow
    /// `GetProfilePictureInfo`): the full image, or the small preview. `Ok(None)` when none
    /// is set.
    ///
    /// # Errors
    /// [`IqError::NotAuthorized`] when the owner's privacy settings hide it from us,
    /// [`IqError::Send`].
    pub async fn profile_picture(
        &self,
        target: &Jid,
        preview: bool,
    ) -> Result<Option<ProfilePicture>, IqError> {
        match self.send_iq(get_picture_iq(target, preview)).await {
            Ok(result) => Ok(parse_picture(&result)?),
            Err(e) => match IqError::from(e) {
                IqError::NotFound => Ok(None),
                other => Err(other),
            },
        }
    }

    /// Set our own profile picture (JPEG bytes; the official clients send 640×640) and
    /// return its new id (`<picture type="image">` set without `target`, Baileys
    /// `updateProfilePicture`). Our contacts get a `picture` notification.
    ///
    /// # Errors
    /// [`IqError::NotAcceptable`] when the server refuses the image, [`IqError::Send`].
    pub async fn set_profile_picture(&self, jpeg: &[u8]) -> Result<String, IqError> {
        self.set_picture(None, Some(jpeg)).await
    }

    /// Set a group's picture (whatsmeow `SetGroupPhoto`; admins only in a locked group).
    ///
    /// # Errors
    /// As [`set_profile_picture`](Self::set_profile_picture), and [`IqError::Forbidden`].
    pub async fn set_group_picture(&self, group: &Jid, jpeg: &[u8]) -> Result<String, IqError> {
        self.set_picture(Some(group), Some(jpeg)).await
    }

    /// Remove our own profile picture.
    ///
    /// # Errors
    /// [`IqError::Send`].
    pub async fn remove_profile_picture(&self) -> Result<(), IqError> {
        self.set_picture(None, None).await.map(drop)
    }

    async fn set_picture(
        &self,
        target: Option<&Jid>,
        jpeg: Option<&[u8]>,
    ) -> Result<String, IqError> {
        let result = self.send_iq(set_picture_iq(target, jpeg)).await?;
        Ok(parse_set_picture(&result).unwrap_or_else(|| "remove".to_owned()))
    }
}
