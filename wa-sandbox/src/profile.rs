//! Profiles: status text ("about") and profile pictures of accounts and groups.
//!
//! IQs (shapes from whatsmeow `user.go` / `group.go`, Baileys `chats.ts`):
//! - `<iq xmlns="status" type="set"><status>text</status></iq>` (SetStatusMessage): stored,
//!   then `<notification type="status" from=<user>><set>text</set></notification>` to the
//!   account's watchers (its other devices, chat partners, group co-members).
//! - `<iq xmlns="w:profile:picture" type="get" target=<jid>><picture type query="url"/></iq>`
//!   (GetProfilePictureInfo): `<picture id url direct_path type/>`, or 404 `item-not-found`
//!   when none is set (whatsmeow `ErrProfilePictureNotSet`); a group's picture is only shown
//!   to its members (401 otherwise, whatsmeow `ErrProfilePictureUnauthorized`).
//! - `<iq xmlns="w:profile:picture" type="set" [target]><picture type="image">JPEG</picture>
//!   </iq>` (SetGroupPhoto; Baileys updateProfilePicture without `target` for the own
//!   picture): the bytes are stored on the media host, which serves them at the answered
//!   `url`; answer `<picture id/>`; without a `<picture>` child the picture is removed.
//!   Watchers get `<notification type="picture" from><set jid id author/></notification>`
//!   (`<delete jid/>` on removal; whatsmeow handlePictureNotification). Images must start
//!   with the JPEG magic (406 `not-acceptable` otherwise, whatsmeow `ErrInvalidImageFormat`).
//! - usync `<status/>` (GetUserInfo) answers `<status t>text</status>` (`state.rs` → here).
//!
//! This module is the `Profiles` room; the IQ handlers over [`crate::state::State`] are in
//! `profile_iq.rs` (a handle: it needs the whole state for notifications).

use std::collections::HashMap;

use wa_engine::binary::Node;

/// Largest picture accepted, bytes.
pub(crate) const MAX_PICTURE_BYTES: usize = 2 * 1024 * 1024;

/// Longest status text accepted, characters (the official apps allow 139).
pub(crate) const MAX_STATUS_CHARS: usize = 139;

/// A stored picture.
#[derive(Debug, Clone)]
pub(crate) struct Picture {
    pub(crate) id: String,
    pub(crate) direct_path: String,
    pub(crate) url: String,
}

/// Status texts and pictures, by owner (`phone` for accounts, `<gid>@g.us` for groups).
#[derive(Debug, Default)]
pub(crate) struct Profiles {
    pub(crate) status: HashMap<String, (String, u64)>,
    pub(crate) pictures: HashMap<String, Picture>,
}

impl Profiles {
    /// An account's status text and when it was set, if any.
    pub(crate) fn status(&self, phone: &str) -> Option<&(String, u64)> {
        self.status.get(phone)
    }
}

/// The usync `<status/>` answer for `phone` (whatsmeow `GetUserInfo` reads the content):
/// `<status t>text</status>`, or an empty `<status/>` when none is set.
pub(crate) fn usync_status(profiles: Option<&Profiles>, phone: Option<&str>) -> Node {
    match phone.and_then(|p| profiles?.status(p)) {
        Some((text, t)) => Node::new("status")
            .attr("t", t.to_string())
            .with_bytes(text.clone().into_bytes()),
        None => Node::new("status"),
    }
}
