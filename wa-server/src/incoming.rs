//! Incoming messages as JSON: the `data` of the `message` event (webhooks and SSE).
//!
//! ```json
//! {
//!   "id": "3EB0...", "chat": "628123456789@s.whatsapp.net",
//!   "sender": "628123456789:2@s.whatsapp.net", "sender_user": "628123456789@s.whatsapp.net",
//!   "from_pn": "628123456789@s.whatsapp.net", "from_lid": "81234567890123@lid",
//!   "chat_pn": "628123456789@s.whatsapp.net", "chat_lid": "81234567890123@lid",
//!   "from_me": false, "is_group": false, "timestamp": 1700000000, "push_name": "Budi",
//!   "offline": false,
//!   "type": "text", "text": "hello @15551234567",
//!   "reply_to": { "id": "3EB0...", "participant": "...", "text": "the quoted text" },
//!   "mentions": ["15551234567@s.whatsapp.net"],
//!   "location": null, "contact": null, "contacts": null, "reaction": null,
//!   "media": null
//! }
//! ```
//!
//! A media message has `type` `image` (`video`, `gif`, `audio`, `ptt`, `document`,
//! `sticker`) and a `media` object:
//!
//! ```json
//! "media": {
//!   "kind": "image", "mimetype": "image/jpeg", "size": 48213, "caption": "invoice",
//!   "width": 640, "height": 480,
//!   "download_url": "/api/sessions/shop/media/3EB0...",
//!   "base64": "/9j/4AAQ..."
//! }
//! ```
//!
//! `file_name`, `title` and `page_count` for documents, `seconds` and `voice_note` for audio,
//! `seconds` and `gif` for video, `animated` for stickers; `download_url` is absolute with
//! `--public-url`, needs the same credentials as the API, and works as long as the media
//! host keeps the file; `base64` only for files up to `--media-inline-max-bytes`.
//!
//! LID-first addressing (shared/protocol/07 §1.7): `chat` and `sender` are as the server
//! addressed the message, which is more and more often a LID (`...@lid`). `from_pn` /
//! `from_lid` are the sender's phone-number and LID user JIDs, `chat_pn` / `chat_lid` the
//! 1:1 chat's (`null` for groups), each when known (from the stanza or the session's PN ⇄
//! LID map); key customers by `from_pn`.
//!
//! `type` is `text`, `location`, `live_location`, `contact`, `contacts`, `reaction`, a media
//! type from the engine's classification (`image`, `video`, `gif`, `audio`, `ptt`,
//! `document`, `sticker`), or `other`. Content is read after unwrapping view-once,
//! ephemeral, edited and device-sent wrappers (shared/protocol/05 §2.1).
//!
//! `media` is [`media_json`]: `null` for messages without media, else an object with
//! `kind`, `mimetype`, `size`, `caption`, `file_name`, ... (`media::incoming::media_fields`);
//! the session adds `download_url` (and `base64` for small files when configured) after
//! storing the download reference (`media::incoming::incoming`).

use serde_json::{Value, json};
use wa_engine::message::{ContactCard, Content, ContentKind};
use wa_engine::{IncomingMessage, MessageInfo};
use wa_proto::wa;

/// Protocol-level messages with nothing for a user to see (sender key distribution alone,
/// `protocolMessage` such as history-sync notices and revokes' bookkeeping): not emitted.
pub(crate) fn is_user_visible(message: &wa::Message) -> bool {
    Content::of(message).kind().is_user_visible()
}

/// The `type` of a message (see the module docs).
pub(crate) fn kind(content: &Content<'_>) -> &'static str {
    match content.kind() {
        ContentKind::Text => "text",
        ContentKind::Media(media) => media.as_str(),
        ContentKind::Location => "location",
        ContentKind::LiveLocation => "live_location",
        ContentKind::Contact => "contact",
        ContentKind::Contacts => "contacts",
        ContentKind::Reaction => "reaction",
        ContentKind::Poll => "poll",
        _ => "other",
    }
}

/// Sender, chat, id and time of a message (also the body of `message_undecryptable`).
pub(crate) fn info_json(info: &MessageInfo) -> Value {
    json!({
        "id": info.id,
        "chat": info.chat.to_string(),
        "sender": info.sender.to_string(),
        "sender_user": info.sender.to_non_ad().to_string(),
        "from_pn": info.sender_pn.as_ref().map(ToString::to_string),
        "from_lid": info.sender_lid.as_ref().map(ToString::to_string),
        "chat_pn": info.chat_pn().map(ToString::to_string),
        "chat_lid": info.chat_lid().map(ToString::to_string),
        "from_me": info.from_me,
        "is_group": info.is_group,
        "timestamp": info.timestamp,
        "push_name": info.push_name,
        "offline": info.offline,
    })
}

/// The whole `message` event body of `m`: [`info_json`] plus [`content_json`].
pub(crate) fn message_json(m: &IncomingMessage) -> Value {
    let mut out = info_json(&m.info);
    if let (Value::Object(map), Value::Object(content)) = (&mut out, content_json(&m.message)) {
        map.extend(content);
    }
    out
}

/// The content part of a `message` event: `type`, `text`, `reply_to`, `mentions`,
/// `location`, `contact`, `contacts`, `reaction`, `media`, `view_once`,
/// `ephemeral_expiration`, `link_preview` (`{url, title, description}` or null), read from
/// the engine's
/// classified view ([`Content`]).
pub(crate) fn content_json(message: &wa::Message) -> Value {
    let content = Content::of(message);
    let fields = [
        ("type", json!(kind(&content))),
        ("text", json!(content.text())),
        (
            "reply_to",
            content.quoted().map_or(Value::Null, |q| {
                json!({
                    "id": q.id,
                    "participant": q.participant,
                    "chat": q.chat,
                    "text": q.text(),
                })
            }),
        ),
        ("mentions", json!(content.mentions())),
        (
            "location",
            content.location().map_or(Value::Null, |l| {
                if l.live {
                    json!({
                        "latitude": l.latitude,
                        "longitude": l.longitude,
                        "caption": l.caption,
                        "live": true,
                    })
                } else {
                    json!({
                        "latitude": l.latitude,
                        "longitude": l.longitude,
                        "name": l.name,
                        "address": l.address,
                        "url": l.url,
                        "live": false,
                    })
                }
            }),
        ),
        (
            "contact",
            content.contact().map_or(Value::Null, contact_json),
        ),
        (
            "contacts",
            content.contacts().map_or(Value::Null, |a| {
                json!({
                    "display_name": a.display_name,
                    "contacts": a.contacts.into_iter().map(contact_json).collect::<Vec<_>>(),
                })
            }),
        ),
        (
            "reaction",
            content.reaction().map_or(
                Value::Null,
                |r| json!({ "emoji": r.emoji, "message_id": r.message_id }),
            ),
        ),
        ("media", media_json(content.message())),
        // View-once media and the disappearing timer it was sent with
        // (wa_engine::message::{view_once, ephemeral}).
        ("view_once", json!(content.view_once().is_some())),
        ("ephemeral_expiration", json!(content.expiration())),
        (
            "link_preview",
            content.link_preview().map_or(
                Value::Null,
                |p| json!({ "url": p.url, "title": p.title, "description": p.description }),
            ),
        ),
    ];
    let mut map: serde_json::Map<String, Value> =
        fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    // Polls (type `poll`): `{name, options, selectable}` (routes::rich); only when present.
    if let Some(p) = content.poll() {
        map.insert(
            "poll".to_owned(),
            json!({ "name": p.name, "options": p.options, "selectable": p.selectable }),
        );
    }
    Value::Object(map)
}

/// Media fields of an `image`, `video`, `audio`, `document` or `sticker` message (`m` is
/// already unwrapped): `null` for other messages.
fn media_json(m: &wa::Message) -> Value {
    crate::media::incoming::media_fields(m).unwrap_or(Value::Null)
}

/// A contact card: display name, the vCard as sent, and the phone numbers found in its
/// `TEL` lines (`waid=` digits when present, else the digits of the value).
fn contact_json(c: ContactCard<'_>) -> Value {
    json!({ "name": c.display_name, "vcard": c.vcard, "phones": c.phones() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa_engine::Jid;
    use wa_engine::message::content;

    #[test]
    fn a_reply_with_mentions_carries_the_quote_and_the_mentioned_jids() {
        let quote = content::Quote {
            id: "3EB0QQ".into(),
            sender: Some(Jid::pn("15550002222")),
            message: Some(content::text("original")),
        };
        let m = content::extended_text("@15550003333 yes", Some(quote), &[Jid::pn("15550003333")]);
        let v = content_json(&m);
        assert_eq!(v["type"], "text");
        assert_eq!(v["text"], "@15550003333 yes");
        assert_eq!(v["reply_to"]["id"], "3EB0QQ");
        assert_eq!(v["reply_to"]["text"], "original");
        assert_eq!(v["mentions"], json!(["15550003333@s.whatsapp.net"]));
        assert_eq!(v["media"], Value::Null);
    }

    #[test]
    fn location_and_contact_are_summarised() {
        let loc = content_json(&content::location(-6.2, 106.8, Some("Monas".into()), None));
        assert_eq!(loc["type"], "location");
        assert_eq!(loc["location"]["latitude"], -6.2);
        assert_eq!(loc["location"]["name"], "Monas");
        let card = "BEGIN:VCARD\nVERSION:3.0\nFN:Budi\nTEL;type=CELL;waid=628123456789:+62 812-3456-789\nEND:VCARD";
        let c = content_json(&content::contact("Budi", card));
        assert_eq!(c["type"], "contact");
        assert_eq!(c["contact"]["name"], "Budi");
        assert_eq!(c["contact"]["phones"], json!(["628123456789"]));
        assert_eq!(c["text"], Value::Null);
    }

    #[test]
    fn protocol_messages_are_not_user_visible() {
        let m = wa::Message {
            protocol_message: Some(Box::default()),
            ..Default::default()
        };
        assert!(!is_user_visible(&m));
        assert!(is_user_visible(&content::text("hi")));
    }
}
