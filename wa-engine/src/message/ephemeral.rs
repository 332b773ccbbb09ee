//! Disappearing (ephemeral) messages: the per-chat timer, the setting message that changes
//! it in 1:1 chats, and what outgoing messages in a chat with a timer carry.
//!
//! Sources (facts only, our own code):
//! - whatsmeow `send.go` `SetDisappearingTimer`: in 1:1 chats a `protocolMessage` of type
//!   `EPHEMERAL_SETTING` (3) with `ephemeralExpiration` (seconds) and
//!   `ephemeralSettingTimestamp` (unix seconds); in groups the `w:g2` IQ
//!   `<ephemeral expiration="…"/>` / `<not_ephemeral/>` (not built here: the sandbox's groups
//!   do not model the timer yet, so only 1:1 timers are set by this engine). Allowed values
//!   (`DisappearingTimer*`): 0 (off), 24 h, 7 days, 90 days; official clients ignore others.
//! - Messages in a chat with a timer carry `contextInfo.expiration` (seconds) on their content
//!   (Baileys `generateWAMessageContent` with `ephemeralExpiration`; whatsmeow leaves it to
//!   the caller and unwraps both forms on receipt, `events.Message.UnwrapRaw`). Older clients
//!   wrap the content in `ephemeralMessage` instead; we **send** the `contextInfo.expiration`
//!   form (what current official clients and Baileys send; whatsmeow accepts it as it is,
//!   the wrapper is unwrapped by everyone) and **accept** both.
//! - The timer is remembered per chat in the store (namespace `wa.ephemeral`), so it
//!   survives a restart: set by [`Client::set_disappearing_timer`](crate::Client) and by a
//!   received `EPHEMERAL_SETTING` (ours from another device, or the peer's), the newer
//!   setting timestamp winning.

use std::time::Duration;

use wa_proto::wa;
use wa_proto::wa::message::protocol_message;

use super::IncomingMessage;
use crate::Jid;
use crate::store::{Store, StoreBatch, StoreError};

/// Timer off.
pub const TIMER_OFF: Duration = Duration::ZERO;
/// 24 hours (whatsmeow `DisappearingTimer24Hours`).
pub const TIMER_24_HOURS: Duration = Duration::from_secs(24 * 3600);
/// 7 days (whatsmeow `DisappearingTimer7Days`).
pub const TIMER_7_DAYS: Duration = Duration::from_secs(7 * 24 * 3600);
/// 90 days (whatsmeow `DisappearingTimer90Days`).
pub const TIMER_90_DAYS: Duration = Duration::from_secs(90 * 24 * 3600);

/// Store namespace of chat timers: key the chat's non-AD JID, value 4 bytes expiration
/// (seconds, big endian) then 8 bytes setting timestamp (unix seconds, big endian).
const EPHEMERAL_NS: &str = "wa.ephemeral";

/// Whether `timer` is one of the values official clients accept (off, 24 h, 7 d, 90 d).
#[must_use]
pub fn is_standard_timer(timer: Duration) -> bool {
    [TIMER_OFF, TIMER_24_HOURS, TIMER_7_DAYS, TIMER_90_DAYS].contains(&timer)
}

/// A chat's disappearing-messages timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChatTimer {
    /// Seconds after which messages disappear; 0 = off.
    pub expiration: u32,
    /// When the timer was set (unix seconds; `ephemeralSettingTimestamp`).
    pub setting_timestamp: i64,
}

/// A timer change read from a received message (`protocolMessage` EPHEMERAL_SETTING).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EphemeralSetting {
    /// The new timer, seconds; 0 = turned off.
    pub expiration: u32,
    /// When it was set (unix seconds), if the sender said.
    pub setting_timestamp: Option<i64>,
}

/// The 1:1 setting message (whatsmeow `SetDisappearingTimer`): `protocolMessage {
/// EPHEMERAL_SETTING, ephemeralExpiration, ephemeralSettingTimestamp }`. `expiration` in
/// seconds (0 = off), `setting_ts` unix seconds.
#[must_use]
pub fn setting(expiration: u32, setting_ts: i64) -> wa::Message {
    wa::Message {
        protocol_message: Some(Box::new(wa::message::ProtocolMessage {
            r#type: Some(protocol_message::Type::EphemeralSetting as i32),
            ephemeral_expiration: Some(expiration),
            ephemeral_setting_timestamp: Some(setting_ts),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// The setting a message carries, if it is an `EPHEMERAL_SETTING` protocol message (after
/// unwrapping).
#[must_use]
pub fn setting_of(message: &wa::Message) -> Option<EphemeralSetting> {
    let p = super::content::unwrap(message)
        .protocol_message
        .as_deref()?;
    if p.r#type != Some(protocol_message::Type::EphemeralSetting as i32) {
        return None;
    }
    Some(EphemeralSetting {
        expiration: p.ephemeral_expiration.unwrap_or(0),
        setting_timestamp: p.ephemeral_setting_timestamp,
    })
}

/// The `contextInfo` of the content a message carries, mutable (text, media, location,
/// contacts, polls); `None` for protocol messages, reactions and votes, which carry none.
fn context_mut(m: &mut wa::Message) -> Option<&mut Option<Box<wa::ContextInfo>>> {
    if let Some(x) = m.extended_text_message.as_deref_mut() {
        return Some(&mut x.context_info);
    }
    if let Some(x) = m.image_message.as_deref_mut() {
        return Some(&mut x.context_info);
    }
    if let Some(x) = m.video_message.as_deref_mut() {
        return Some(&mut x.context_info);
    }
    if let Some(x) = m.audio_message.as_deref_mut() {
        return Some(&mut x.context_info);
    }
    if let Some(x) = m.document_message.as_deref_mut() {
        return Some(&mut x.context_info);
    }
    if let Some(x) = m.sticker_message.as_deref_mut() {
        return Some(&mut x.context_info);
    }
    if let Some(x) = m.location_message.as_deref_mut() {
        return Some(&mut x.context_info);
    }
    if let Some(x) = m.live_location_message.as_deref_mut() {
        return Some(&mut x.context_info);
    }
    if let Some(x) = m.contact_message.as_deref_mut() {
        return Some(&mut x.context_info);
    }
    if let Some(x) = m.contacts_array_message.as_deref_mut() {
        return Some(&mut x.context_info);
    }
    None
}

/// Applies `f` to the innermost content of a message we send: through `ephemeralMessage`,
/// `viewOnceMessage*` and `documentWithCaptionMessage` wrappers, at most
/// [`MAX_UNWRAP_DEPTH`](super::content::MAX_UNWRAP_DEPTH) deep.
pub(crate) fn map_content(
    mut m: wa::Message,
    depth: usize,
    f: impl FnOnce(wa::Message) -> wa::Message,
) -> wa::Message {
    if depth > 0 {
        let slot = [
            &mut m.ephemeral_message,
            &mut m.view_once_message,
            &mut m.view_once_message_v2,
            &mut m.view_once_message_v2_extension,
            &mut m.document_with_caption_message,
        ]
        .into_iter()
        .find_map(|w| w.as_deref_mut().filter(|f| f.message.is_some()));
        if let Some(wrapper) = slot {
            if let Some(inner) = wrapper.message.take() {
                wrapper.message = Some(Box::new(map_content(*inner, depth - 1, f)));
            }
            return m;
        }
    }
    f(m)
}

/// `message` as sent in a chat whose timer is `expiration` seconds: `contextInfo.expiration`
/// set on its content, a plain `conversation` turned into an `extendedTextMessage` to carry
/// it (as official clients send text in such chats). Protocol messages (edits, revokes,
/// settings), reactions and votes are left as they are; so is everything when `expiration`
/// is 0 or the content already names an expiration.
#[must_use]
pub fn with_expiration(message: wa::Message, expiration: u32) -> wa::Message {
    if expiration == 0 {
        return message;
    }
    map_content(message, super::content::MAX_UNWRAP_DEPTH, |mut inner| {
        if inner.protocol_message.is_some()
            || inner.reaction_message.is_some()
            || inner.poll_update_message.is_some()
            || inner.edited_message.is_some()
        {
            return inner;
        }
        if let Some(text) = inner.conversation.take() {
            inner.extended_text_message = Some(Box::new(wa::message::ExtendedTextMessage {
                text: Some(text),
                ..Default::default()
            }));
        }
        if let Some(slot) = context_mut(&mut inner) {
            let ctx = slot.get_or_insert_with(Box::default);
            if ctx.expiration.is_none() {
                ctx.expiration = Some(expiration);
            }
        }
        inner
    })
}

fn store_key(chat: &Jid) -> Vec<u8> {
    chat.to_non_ad().to_string().into_bytes()
}

/// The stored timer of `chat`; `None` when never set (or unreadable).
///
/// # Errors
/// [`StoreError`] from the store.
pub fn chat_timer(store: &dyn Store, chat: &Jid) -> Result<Option<ChatTimer>, StoreError> {
    let Some(blob) = store.app_value(EPHEMERAL_NS, &store_key(chat))? else {
        return Ok(None);
    };
    let b = blob.as_bytes();
    let (Some(e), Some(t)) = (b.get(..4), b.get(4..12)) else {
        return Ok(None);
    };
    let (Ok(e), Ok(t)) = (<[u8; 4]>::try_from(e), <[u8; 8]>::try_from(t)) else {
        return Ok(None);
    };
    Ok(Some(ChatTimer {
        expiration: u32::from_be_bytes(e),
        setting_timestamp: i64::from_be_bytes(t),
    }))
}

/// Records `timer` for `chat` in `batch` unless the store holds a newer setting.
///
/// # Errors
/// [`StoreError`] reading the current value.
pub(crate) fn remember(
    store: &dyn Store,
    batch: &mut StoreBatch,
    chat: &Jid,
    timer: ChatTimer,
) -> Result<bool, StoreError> {
    if chat_timer(store, chat)?.is_some_and(|t| t.setting_timestamp > timer.setting_timestamp) {
        return Ok(false);
    }
    let mut value = timer.expiration.to_be_bytes().to_vec();
    value.extend_from_slice(&timer.setting_timestamp.to_be_bytes());
    batch.put_app_value(EPHEMERAL_NS, &store_key(chat), value);
    Ok(true)
}

/// For a received message: a 1:1 `EPHEMERAL_SETTING` (the peer's, or ours from another
/// device) updates the chat's stored timer, under the chat and its other name (PN ⇄ LID)
/// when known. Group timers come with group notifications and
/// metadata instead (not handled here). Returns the setting when it was recorded.
///
/// # Errors
/// [`StoreError`] reading the store.
pub(crate) fn on_incoming(
    store: &dyn Store,
    batch: &mut StoreBatch,
    msg: &IncomingMessage,
) -> Result<Option<EphemeralSetting>, StoreError> {
    if msg.info.is_group {
        return Ok(None);
    }
    let Some(s) = setting_of(&msg.message) else {
        return Ok(None);
    };
    let timer = ChatTimer {
        expiration: s.expiration,
        setting_timestamp: s
            .setting_timestamp
            .unwrap_or_else(|| i64::try_from(msg.info.timestamp).unwrap_or(i64::MAX)),
    };
    let recorded = remember(store, batch, &msg.info.chat, timer)?;
    // LID-first addressing: the chat may arrive as the peer's LID while we send to its PN
    // (or the reverse); the timer holds for both names.
    if recorded && let Some(alt) = &msg.info.chat_alt {
        remember(store, batch, alt, timer)?;
    }
    Ok(recorded.then_some(s))
}

/// What goes out for `message` to `chat`: a media message flagged `viewOnce` wrapped in
/// `viewOnceMessageV2` ([`super::view_once::normalize`]), and `contextInfo.expiration` added
/// when the chat has a timer (our setting messages themselves record the timer). Called
/// once per send, before encryption.
pub(crate) fn prepare_outgoing(
    store: &dyn Store,
    chat: &Jid,
    message: wa::Message,
    now_s: i64,
) -> (wa::Message, Option<StoreBatch>) {
    let message = super::view_once::normalize(message);
    if let Some(s) = setting_of(&message) {
        if chat.is_group() {
            return (message, None);
        }
        let mut batch = StoreBatch::new();
        let timer = ChatTimer {
            expiration: s.expiration,
            setting_timestamp: s.setting_timestamp.unwrap_or(now_s),
        };
        return match remember(store, &mut batch, chat, timer) {
            Ok(_) => (message, Some(batch)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read chat timer");
                (message, None)
            }
        };
    }
    match chat_timer(store, chat) {
        Ok(Some(t)) if t.expiration > 0 => (with_expiration(message, t.expiration), None),
        Ok(_) => (message, None),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read chat timer");
            (message, None)
        }
    }
}

impl super::Content<'_> {
    /// The timer change, if the message is a disappearing-messages setting
    /// ([`ContentKind::EphemeralSetting`](super::ContentKind::EphemeralSetting)).
    #[must_use]
    pub fn ephemeral_setting(&self) -> Option<EphemeralSetting> {
        setting_of(self.message())
    }

    /// The disappearing timer the message was sent with (`contextInfo.expiration`,
    /// seconds), if any.
    #[must_use]
    pub fn expiration(&self) -> Option<u32> {
        self.context_info()
            .and_then(|c| c.expiration)
            .filter(|e| *e > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Content, ContentKind, content};
    use crate::store::MemoryStore;

    fn jid(s: &str) -> Jid {
        s.parse().unwrap()
    }

    #[test]
    fn setting_round_trips_and_classifies() {
        let m = setting(604_800, 1_700_000_000);
        let c = Content::of(&m);
        assert_eq!(c.kind(), ContentKind::EphemeralSetting);
        assert!(c.kind().is_user_visible());
        let s = c.ephemeral_setting().unwrap();
        assert_eq!(
            (s.expiration, s.setting_timestamp),
            (604_800, Some(1_700_000_000))
        );
        assert!(is_standard_timer(TIMER_7_DAYS));
        assert!(!is_standard_timer(Duration::from_secs(5)));
    }

    #[test]
    fn expiration_goes_on_the_content() {
        let t = with_expiration(content::text("hi"), 86_400);
        assert!(t.conversation.is_none());
        assert_eq!(Content::of(&t).text(), Some("hi"));
        assert_eq!(Content::of(&t).expiration(), Some(86_400));
        let loc = with_expiration(content::location(1.0, 2.0, None, None), 7);
        assert_eq!(Content::of(&loc).expiration(), Some(7));
        // Protocol messages and reactions stay as they are; 0 changes nothing.
        let s = setting(0, 1);
        assert_eq!(with_expiration(s.clone(), 86_400), s);
        assert_eq!(with_expiration(content::text("x"), 0), content::text("x"));
        // The older wrapper form is read too.
        let wrapped = wa::Message {
            ephemeral_message: Some(Box::new(wa::message::FutureProofMessage {
                message: Some(Box::new(t)),
            })),
            ..Default::default()
        };
        assert_eq!(Content::of(&wrapped).expiration(), Some(86_400));
        assert_eq!(Content::of(&wrapped).text(), Some("hi"));
    }

    #[test]
    fn timers_are_stored_newest_wins_and_applied_to_sends() {
        let store = MemoryStore::default();
        let chat = jid("15550001111@s.whatsapp.net");
        let (m, batch) = prepare_outgoing(&store, &chat, setting(86_400, 100), 100);
        assert!(m.protocol_message.is_some());
        store.apply(batch.unwrap()).unwrap();
        assert_eq!(
            chat_timer(&store, &chat).unwrap(),
            Some(ChatTimer {
                expiration: 86_400,
                setting_timestamp: 100
            })
        );
        let (m, batch) = prepare_outgoing(&store, &chat, content::text("x"), 101);
        assert!(batch.is_none());
        assert_eq!(Content::of(&m).expiration(), Some(86_400));
        // An older setting does not override a newer one.
        let mut b = StoreBatch::new();
        let old = ChatTimer {
            expiration: 0,
            setting_timestamp: 50,
        };
        assert!(!remember(&store, &mut b, &chat, old).unwrap());
        // Turned off: sends carry nothing.
        let (_, batch) = prepare_outgoing(&store, &chat, setting(0, 200), 200);
        store.apply(batch.unwrap()).unwrap();
        let (m, _) = prepare_outgoing(&store, &chat, content::text("x"), 201);
        assert_eq!(m, content::text("x"));
    }
}
