//! What an operator attaches to a session besides its webhooks: a display `name`, free-form
//! `metadata` (a JSON object, size-limited), and [`SessionSettings`] (behaviour switches and
//! the pairing page's branding). Stored in the session's [`SessionRecord`](crate::db::SessionRecord)
//! (the `sessions` tree), so they survive a restart.
//!
//! Every setting takes effect (see each field); `reject_calls` at the session's next
//! connection (a restart), the others at once.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::events::EVENT_TYPES;

/// Longest display name, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 100;
/// Largest `metadata` object, bytes of its compact JSON.
pub(crate) const MAX_METADATA_BYTES: usize = 8 * 1024;

/// Operator branding of the pairing page (per server with `--brand-*`, per session in its
/// settings; a session's fields override the server's one by one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Branding {
    /// Name shown in the page title and heading, 1-60 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 60,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Logo shown above the heading: an `https://` (or `http://`) URL, at most 2048
    /// characters. The customer's browser loads it.
    #[schema(
        max_length = 2048,
        pattern = "^https?://[^\\s\"'<>\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    /// Accent colour of the page, `#rrggbb`.
    #[schema(pattern = "^#[0-9A-Fa-f]{6}$")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

impl Branding {
    /// Checks every field.
    ///
    /// # Errors
    /// A message naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(name) = &self.name {
            let n = name.chars().count();
            if n == 0 || n > 60 || name.chars().any(char::is_control) {
                return Err(
                    "branding.name must be 1-60 characters without control characters".into(),
                );
            }
        }
        if let Some(url) = &self.logo_url
            && !valid_logo_url(url)
        {
            return Err(
                "branding.logo_url must be an http(s) URL of at most 2048 characters".into(),
            );
        }
        if let Some(color) = &self.color
            && !valid_color(color)
        {
            return Err("branding.color must be #rrggbb".into());
        }
        Ok(())
    }

    /// `self`'s fields over `base`'s.
    pub(crate) fn over(&self, base: &Self) -> Self {
        Self {
            name: self.name.clone().or_else(|| base.name.clone()),
            logo_url: self.logo_url.clone().or_else(|| base.logo_url.clone()),
            color: self.color.clone().or_else(|| base.color.clone()),
        }
    }
}

/// `http(s)://` followed by at least one character, no whitespace, quotes or angle brackets.
pub(crate) fn valid_logo_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    url.chars().count() <= 2048
        && rest.is_some_and(|r| {
            !r.is_empty()
                && r.chars()
                    .all(|c| !c.is_whitespace() && !c.is_control() && !"\"'<>".contains(c))
        })
}

/// `#rrggbb`.
pub(crate) fn valid_color(color: &str) -> bool {
    color.len() == 7 && color.starts_with('#') && color[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// An event type, for the document only (the server checks names against
/// [`EVENT_TYPES`]; a unit test keeps the two lists equal).
#[derive(Debug, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // only its schema is used
pub(crate) enum EventName {
    /// `qr`.
    Qr,
    /// `pairing_code`.
    PairingCode,
    /// `connection`.
    Connection,
    /// `message`.
    Message,
    /// `message_status`.
    MessageStatus,
    /// `message_undecryptable`.
    MessageUndecryptable,
    /// `logged_out`.
    LoggedOut,
    /// `presence`.
    Presence,
    /// `chat_state`.
    ChatState,
    /// `call`.
    Call,
    /// `app_state`.
    AppState,
    /// `history_sync`.
    HistorySync,
    /// `reachout_timelock`.
    ReachoutTimelock,
    /// `new_chat_capping`.
    NewChatCapping,
    /// `message_reaction`.
    MessageReaction,
    /// `message_edited`.
    MessageEdited,
    /// `message_revoked`.
    MessageRevoked,
    /// `poll_vote`.
    PollVote,
    /// `notification`.
    Notification,
    /// `group_update`.
    GroupUpdate,
    /// `group_participants`.
    GroupParticipants,
    /// `account_sync`.
    AccountSync,
    /// `contact_picture`.
    ContactPicture,
    /// `contact_status`.
    ContactStatus,
    /// `contact_devices`.
    ContactDevices,
    /// `identity_changed`.
    IdentityChanged,
    /// `prekey_count`.
    PrekeyCount,
    /// `media_retry`.
    MediaRetry,
    /// `server_sync`.
    ServerSync,
    /// `privacy_token`.
    PrivacyToken,
    /// `dirty`.
    Dirty,
    /// `offline_preview`.
    OfflinePreview,
    /// `offline_sync`.
    OfflineSync,
    /// `edge_routing`.
    EdgeRouting,
    /// `chat_ephemeral`.
    ChatEphemeral,
}

/// Per-session behaviour. Every field has a default, so a record written before settings
/// existed reads as the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct SessionSettings {
    /// Send a read receipt for every incoming message as soon as it arrives (blue ticks).
    /// Applied. Default false.
    pub(crate) auto_mark_read: bool,
    /// Reject incoming calls automatically (the `call` event still fires, with
    /// `auto_rejected: true`), as `--auto-reject-calls` does for every session. Applied from
    /// the session's next connection (`POST .../restart`). Default false.
    pub(crate) reject_calls: bool,
    /// Drop messages from groups: no `message` event (SSE or webhook), no auto read receipt.
    /// Applied. Default false.
    pub(crate) ignore_groups: bool,
    /// Put received media inline (base64) into `message` events, up to the server's
    /// `--media-inline-max-bytes` (off when that is 0). False: this session's media events
    /// carry only `download_url`. Applied. Default true.
    pub(crate) auto_download_media: bool,
    /// Event types this session emits to its webhooks (each webhook's own filter applies
    /// too); `null` = all. Applied.
    #[schema(value_type = Option<Vec<EventName>>, max_items = 32)]
    pub(crate) webhook_events: Option<Vec<String>>,
    /// Branding of this session's pairing page (over the server's `--brand-*`). Applied.
    pub(crate) branding: Branding,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            auto_mark_read: false,
            reject_calls: false,
            ignore_groups: false,
            auto_download_media: true,
            webhook_events: None,
            branding: Branding::default(),
        }
    }
}

impl SessionSettings {
    /// Checks the event names and the branding.
    ///
    /// # Errors
    /// [`ApiError::InvalidBody`] naming the bad field.
    pub(crate) fn validate(&self) -> Result<(), ApiError> {
        if let Some(events) = &self.webhook_events {
            if events.len() > 32 {
                return Err(ApiError::InvalidBody(
                    "settings.webhook_events: at most 32".into(),
                ));
            }
            if let Some(bad) = events.iter().find(|e| !EVENT_TYPES.contains(&e.as_str())) {
                return Err(ApiError::InvalidBody(format!(
                    "settings.webhook_events: unknown event type {bad:?}"
                )));
            }
        }
        self.branding.validate().map_err(ApiError::InvalidBody)
    }

    /// Whether this session delivers events of type `event` to its webhooks.
    pub(crate) fn emits_to_webhooks(&self, event: &str) -> bool {
        self.webhook_events
            .as_ref()
            .is_none_or(|events| events.iter().any(|e| e == event))
    }

    /// `patch` applied over `self`: each field present replaces this one.
    pub(crate) fn patched(&self, patch: SettingsPatch) -> Self {
        Self {
            auto_mark_read: patch.auto_mark_read.unwrap_or(self.auto_mark_read),
            reject_calls: patch.reject_calls.unwrap_or(self.reject_calls),
            ignore_groups: patch.ignore_groups.unwrap_or(self.ignore_groups),
            auto_download_media: patch
                .auto_download_media
                .unwrap_or(self.auto_download_media),
            webhook_events: match patch.webhook_events {
                Some(v) => v,
                None => self.webhook_events.clone(),
            },
            branding: patch.branding.unwrap_or_else(|| self.branding.clone()),
        }
    }
}

/// A partial [`SessionSettings`] (`PATCH`): absent fields keep their value.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingsPatch {
    /// See [`SessionSettings`].
    #[serde(default)]
    pub(crate) auto_mark_read: Option<bool>,
    /// See [`SessionSettings`].
    #[serde(default)]
    pub(crate) reject_calls: Option<bool>,
    /// See [`SessionSettings`].
    #[serde(default)]
    pub(crate) ignore_groups: Option<bool>,
    /// See [`SessionSettings`].
    #[serde(default)]
    pub(crate) auto_download_media: Option<bool>,
    /// See [`SessionSettings`]; `null` = all events.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<EventName>>, max_items = 32)]
    pub(crate) webhook_events: Option<Option<Vec<String>>>,
    /// Replaces the session's branding as a whole.
    #[serde(default)]
    pub(crate) branding: Option<Branding>,
}

/// For `Option<Option<T>>` fields with `#[serde(default)]`: absent = `None`, `null` =
/// `Some(None)`, a value = `Some(Some(v))`.
pub(crate) fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Checks a display name: 1-100 characters, no control characters.
///
/// # Errors
/// [`ApiError::InvalidBody`].
pub(crate) fn validate_name(name: &str) -> Result<(), ApiError> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::InvalidBody(format!(
            "name must be 1-{MAX_NAME_CHARS} characters without control characters"
        )));
    }
    Ok(())
}

/// Checks a metadata object's size ([`MAX_METADATA_BYTES`] of compact JSON).
///
/// # Errors
/// [`ApiError::InvalidBody`].
pub(crate) fn validate_metadata(metadata: &Map<String, Value>) -> Result<(), ApiError> {
    let size = serde_json::to_vec(metadata).map_or(usize::MAX, |v| v.len());
    if size > MAX_METADATA_BYTES {
        return Err(ApiError::InvalidBody(format!(
            "metadata is {size} bytes of JSON; at most {MAX_METADATA_BYTES}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_event_names_are_the_event_types() {
        let schema =
            serde_json::to_value(<EventName as utoipa::PartialSchema>::schema()).expect("schema");
        let names: Vec<&str> = schema["enum"]
            .as_array()
            .expect("enum")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(names, EVENT_TYPES);
    }

    #[test]
    fn branding_checks() {
        assert!(valid_color("#00a884"));
        assert!(!valid_color("00a884"));
        assert!(!valid_color("#00a88g"));
        assert!(valid_logo_url("https://example.com/logo.png"));
        assert!(!valid_logo_url("javascript:alert(1)"));
        assert!(!valid_logo_url("https://x\"onerror=1"));
        assert!(!valid_logo_url("https://"));
    }

    #[test]
    fn old_records_read_as_defaults_and_patches_merge() {
        let s: SessionSettings = serde_json::from_str("{}").expect("defaults");
        assert_eq!(s, SessionSettings::default());
        assert!(s.auto_download_media);
        let patch: SettingsPatch =
            serde_json::from_str(r#"{"ignore_groups":true,"webhook_events":["message"]}"#)
                .expect("patch");
        let p = s.patched(patch);
        assert!(p.ignore_groups && p.auto_download_media);
        assert!(p.emits_to_webhooks("message") && !p.emits_to_webhooks("qr"));
        let clear: SettingsPatch =
            serde_json::from_str(r#"{"webhook_events":null}"#).expect("patch");
        assert!(p.patched(clear).webhook_events.is_none());
    }
}
