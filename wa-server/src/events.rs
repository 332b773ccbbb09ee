//! Server events: what a session reports to SSE subscribers and webhooks, in one envelope.

use serde::Serialize;
use utoipa::ToSchema;

/// Event types, as sent in `type` and accepted in webhook filters.
pub const EVENT_TYPES: &[&str] = &[
    "qr",
    "pairing_code",
    "connection",
    "message",
    "message_status",
    "message_undecryptable",
    "logged_out",
    "presence",
    "chat_state",
    "call",
    "app_state",
    "history_sync",
    "reachout_timelock",
    "new_chat_capping",
    "message_reaction",
    "message_edited",
    "message_revoked",
    "poll_vote",
    "notification",
    "group_update",
    "group_participants",
    "account_sync",
    "contact_picture",
    "contact_status",
    "contact_devices",
    "identity_changed",
    "prekey_count",
    "media_retry",
    "server_sync",
    "privacy_token",
    "dirty",
    "offline_preview",
    "offline_sync",
    "edge_routing",
    "chat_ephemeral",
];

/// Whether `name` is one of [`EVENT_TYPES`] (or `*` for all).
pub(crate) fn is_event_type(name: &str) -> bool {
    name == "*" || EVENT_TYPES.contains(&name)
}

/// One event of one session.
///
/// Webhook bodies are exactly this JSON; the SSE stream sends it as `data` with the type as
/// the SSE `event` and the id as the SSE `id`. Secrets (keys, tokens, webhook secrets) never
/// appear in it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Envelope {
    /// Unique, stable event id (`evt_...`): the same across retries and restarts, so
    /// receivers can drop duplicates (delivery is at least once).
    pub id: String,
    /// Event type, one of `qr`, `pairing_code`, `connection`, `message` (received; body as
    /// described in `incoming.rs`), `message_status` (a sent message moved on),
    /// `message_undecryptable` (a message that could not be decrypted; the engine asked the
    /// sender to re-send it), `logged_out`, `presence` (a subscribed contact went online or
    /// offline: `{from, presence: "available"|"unavailable", last_seen: unix_s|null,
    /// last_seen_hidden}`), `chat_state` (`{chat, sender, state:
    /// "composing"|"recording"|"paused"}`), `call` (`{from, call_id, call_creator, kind:
    /// "offer"|"accept"|"reject"|"terminate"|..., video, group, reason, auto_rejected,
    /// timestamp}`), `app_state` (an app-state mutation applied, from another device of the
    /// account or our own once accepted: `{collection, version, operation: "set"|"remove",
    /// action: {type: "mute"|"pin"|"archive"|"mark_chat_read"|"contact"|"push_name"|...,
    /// chat, ...}, timestamp_ms, from_full_sync}`), `history_sync` (a history-sync chunk
    /// processed: `{sync_type, chunk_order, progress, conversations, messages, push_names,
    /// lid_mappings: [{pn, lid}]}`), `reachout_timelock` (WhatsApp locked or unlocked the
    /// account's new chats: `{active, ends: unix_s|null, enforcement_type}`),
    /// `new_chat_capping` (the account's new-chat quota: `{capped, total_quota, used_quota,
    /// cycle_end: unix_s|null, status}`),
    /// `message_reaction` (message fields plus `{message_id, emoji}`; empty
    /// `emoji` = reaction removed), `message_edited` (plus `{message_id, text,
    /// edited_at_ms}`), `message_revoked` (plus `{message_id, participant}`), `poll_vote`
    /// (`{chat, poll_id, voter, vote_id, selected: [option], tally: [{option, votes}]}`,
    /// also for our own votes). A received poll is a `message` of type `poll`.
    /// `notification` (`{from, timestamp, kind: "group"|"account_sync"|"picture"|"status"|
    /// "devices"|"identity_change"|"prekey_count"|"media_retry", ...}`: a typed server
    /// notification; fields per kind in `routes/rich.rs` `notification_event`). Each typed
    /// notification also has its own event (`notices.rs`): `group_update` (`{group, actor,
    /// timestamp, changes: [tag], subject, description, description_removed, announce, locked,
    /// invite_code, ephemeral_secs, created}`; `created` is the group as `GET .../groups/{group}`
    /// shows it when the change is its creation, else null), `group_participants` (`{group, actor, timestamp,
    /// action: "add"|"remove"|"promote"|"demote", participants: [jid]}`), `account_sync`
    /// (`{from, timestamp, what: "devices"|"privacy"|"picture"|"blocklist"}`),
    /// `contact_picture` (`{jid, from, timestamp, picture_id, removed}`), `contact_status`
    /// (`{jid, timestamp, text}`), `contact_devices` (`{jid, timestamp}`), `identity_changed`
    /// (`{jid, timestamp}`), `prekey_count` (`{count}`), `media_retry` (`{message_id,
    /// timestamp}`), `server_sync` (`{collections: [name]}`), `privacy_token` (`{from,
    /// sender_lid, tokens, newest_timestamp}`, never the token), and for the server's `<ib>`
    /// stanzas `dirty` (`{type, timestamp}`), `offline_preview` (`{total, messages,
    /// notifications, receipts, app_data}`), `offline_sync` (the offline backlog is
    /// delivered: `{count}`), `edge_routing` (`{length, stored}`, never the routing bytes).
    /// `chat_ephemeral` (a disappearing-messages timer change in a 1:1 chat, the peer's or
    /// ours from another device: message fields plus `{expiration_secs (0 = off),
    /// setting_timestamp: unix_s|null}`). A received `message` also says `view_once`
    /// (`true` for view-once media), `ephemeral_expiration` (the timer it was sent
    /// with, seconds, or null) and `link_preview` (`{url, title, description}` or null).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Session id.
    pub session: String,
    /// When it happened, unix milliseconds.
    pub timestamp: u64,
    /// Type-specific payload.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl Envelope {
    /// A new event with a fresh id.
    pub(crate) fn new(kind: &'static str, session: &str, data: serde_json::Value) -> Self {
        let timestamp = crate::db::now_ms();
        let mut random = [0u8; 8];
        rand::fill(&mut random[..]);
        Self {
            id: format!("evt_{timestamp:012x}{}", hex::encode(random)),
            kind,
            session: session.to_owned(),
            timestamp,
            data,
        }
    }
}
