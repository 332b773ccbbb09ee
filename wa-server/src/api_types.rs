//! Small schema-only types and serde helpers that make the OpenAPI document say exactly what
//! the server accepts (schemathesis' "schema-valid request rejected" check): phone numbers
//! and recipients in the forms that always parse, event-type names, and integers written
//! as `564.0` (a JSON Schema integer).

use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

/// An international phone number: `+`, a country code not starting with 0, 8-15 digits in
/// all (E.164). The server also reads local forms (`0812...`, digits in the default country,
/// `00CC...`, separators) when they are unambiguous; those can be refused (400
/// `invalid_phone_number`, `ambiguous_phone_number`), this form never is.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, pattern = "^\\+[1-9][0-9]{7,14}$", example = "+628123456789")]
#[allow(dead_code)] // only its schema is used
pub(crate) struct E164(String);

/// A recipient: an international phone number ([`E164`]) or a user JID
/// (`628123456789@s.whatsapp.net`). The server also takes local numbers, `...@lid` users and
/// `...@g.us` groups (which can be refused: invalid, ambiguous, not a member).
#[derive(Debug, ToSchema)]
#[schema(
    value_type = String,
    pattern = "^(\\+[1-9][0-9]{7,14}|[1-9][0-9]{7,14}@s\\.whatsapp\\.net)$",
    example = "+628123456789"
)]
#[allow(dead_code)] // only its schema is used
pub(crate) struct Recipient(String);

/// A webhook's event filter entry: an event type or `*` (all).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // only its schema is used
pub(crate) enum HookEventName {
    /// All events.
    #[schema(rename = "*")]
    All,
    /// `qr`.
    #[schema(rename = "qr")]
    Qr,
    /// `pairing_code`.
    #[schema(rename = "pairing_code")]
    PairingCode,
    /// `connection`.
    #[schema(rename = "connection")]
    Connection,
    /// `message`.
    #[schema(rename = "message")]
    Message,
    /// `message_status`.
    #[schema(rename = "message_status")]
    MessageStatus,
    /// `message_undecryptable`.
    #[schema(rename = "message_undecryptable")]
    MessageUndecryptable,
    /// `logged_out`.
    #[schema(rename = "logged_out")]
    LoggedOut,
    /// `presence`.
    #[schema(rename = "presence")]
    Presence,
    /// `chat_state`.
    #[schema(rename = "chat_state")]
    ChatState,
    /// `call`.
    #[schema(rename = "call")]
    Call,
    /// `app_state`.
    #[schema(rename = "app_state")]
    AppState,
    /// `history_sync`.
    #[schema(rename = "history_sync")]
    HistorySync,
    /// `reachout_timelock`.
    #[schema(rename = "reachout_timelock")]
    ReachoutTimelock,
    /// `new_chat_capping`.
    #[schema(rename = "new_chat_capping")]
    NewChatCapping,
    /// `message_reaction`.
    #[schema(rename = "message_reaction")]
    MessageReaction,
    /// `message_edited`.
    #[schema(rename = "message_edited")]
    MessageEdited,
    /// `message_revoked`.
    #[schema(rename = "message_revoked")]
    MessageRevoked,
    /// `poll_vote`.
    #[schema(rename = "poll_vote")]
    PollVote,
    /// `notification`.
    #[schema(rename = "notification")]
    Notification,
    /// `group_update`.
    #[schema(rename = "group_update")]
    GroupUpdate,
    /// `group_participants`.
    #[schema(rename = "group_participants")]
    GroupParticipants,
    /// `account_sync`.
    #[schema(rename = "account_sync")]
    AccountSync,
    /// `contact_picture`.
    #[schema(rename = "contact_picture")]
    ContactPicture,
    /// `contact_status`.
    #[schema(rename = "contact_status")]
    ContactStatus,
    /// `contact_devices`.
    #[schema(rename = "contact_devices")]
    ContactDevices,
    /// `identity_changed`.
    #[schema(rename = "identity_changed")]
    IdentityChanged,
    /// `prekey_count`.
    #[schema(rename = "prekey_count")]
    PrekeyCount,
    /// `media_retry`.
    #[schema(rename = "media_retry")]
    MediaRetry,
    /// `server_sync`.
    #[schema(rename = "server_sync")]
    ServerSync,
    /// `privacy_token`.
    #[schema(rename = "privacy_token")]
    PrivacyToken,
    /// `dirty`.
    #[schema(rename = "dirty")]
    Dirty,
    /// `offline_preview`.
    #[schema(rename = "offline_preview")]
    OfflinePreview,
    /// `offline_sync`.
    #[schema(rename = "offline_sync")]
    OfflineSync,
    /// `edge_routing`.
    #[schema(rename = "edge_routing")]
    EdgeRouting,
    /// `chat_ephemeral`.
    #[schema(rename = "chat_ephemeral")]
    ChatEphemeral,
}

/// An optional integer field that also takes a JSON number with a zero fraction (`564.0`),
/// which JSON Schema calls an integer.
pub(crate) fn opt_int<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = match (n.as_u64(), n.as_f64()) {
        (Some(u), _) => Some(u),
        (None, Some(f)) if f.fract() == 0.0 && (0.0..=9.007_199_254_740_992e15).contains(&f) => {
            // Exact: an integral f64 within 2^53.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Some(f as u64)
        }
        _ => None,
    };
    whole
        .and_then(|u| T::try_from(u).ok())
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!("expected a whole number in range, got {n}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "opt_int")]
        n: Option<u8>,
    }

    #[test]
    fn integral_floats_are_integers() {
        let t: T = serde_json::from_str(r#"{"n": 6.0}"#).expect("6.0");
        assert_eq!(t.n, Some(6));
        let t: T = serde_json::from_str(r#"{"n": 6}"#).expect("6");
        assert_eq!(t.n, Some(6));
        let t: T = serde_json::from_str(r#"{"n": null}"#).expect("null");
        assert_eq!(t.n, None);
        let t: T = serde_json::from_str("{}").expect("absent");
        assert_eq!(t.n, None);
        assert!(serde_json::from_str::<T>(r#"{"n": 6.5}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"n": 300}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"n": -1}"#).is_err());
    }

    #[test]
    fn hook_event_names_are_the_event_types_and_star() {
        let schema = serde_json::to_value(<HookEventName as utoipa::PartialSchema>::schema())
            .expect("schema");
        let names: Vec<&str> = schema["enum"]
            .as_array()
            .expect("enum")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(names[0], "*");
        assert_eq!(&names[1..], crate::events::EVENT_TYPES);
    }
}
