//! Incoming messages as JSON: the `data` of the `message` event (webhooks and SSE).
//!
//! ```json
//! {
//!   "id": "3EB0...", "chat": "628123456789@s.whatsapp.net",
//!   "sender": "628123456789:2@s.whatsapp.net", "sender_user": "628123456789@s.whatsapp.net",
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
use wa_engine::message::content;
use wa_engine::{IncomingMessage, MessageInfo};
use wa_proto::wa;

/// Protocol-level messages with nothing for a user to see (sender key distribution alone,
/// `protocolMessage` such as history-sync notices and revokes' bookkeeping): not emitted.
pub(crate) fn is_user_visible(message: &wa::Message) -> bool {
    let m = content::unwrap(message);
    m.protocol_message.is_none()
        && (m.conversation.is_some()
            || m.extended_text_message.is_some()
            || m.location_message.is_some()
            || m.live_location_message.is_some()
            || m.contact_message.is_some()
            || m.contacts_array_message.is_some()
            || m.reaction_message.is_some()
            || content::media_type(m).is_some())
}

/// The `type` of a message (see the module docs).
pub(crate) fn kind(message: &wa::Message) -> &'static str {
    let m = content::unwrap(message);
    if m.reaction_message.is_some() {
        return "reaction";
    }
    match content::media_type(m) {
        Some("location") => "location",
        Some("livelocation") => "live_location",
        Some("vcard") => "contact",
        Some("contact_array") => "contacts",
        Some("url") => "text",
        Some(other) => other,
        None if m.conversation.is_some() || m.extended_text_message.is_some() => "text",
        None => "other",
    }
}

/// Sender, chat, id and time of a message (also the body of `message_undecryptable`).
pub(crate) fn info_json(info: &MessageInfo) -> Value {
    json!({
        "id": info.id,
        "chat": info.chat.to_string(),
        "sender": info.sender.to_string(),
        "sender_user": info.sender.to_non_ad().to_string(),
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
/// `location`, `contact`, `contacts`, `reaction`, `media`.
pub(crate) fn content_json(message: &wa::Message) -> Value {
    let inner = content::unwrap(message);
    let context = context_info(inner);
    let fields = [
        ("type", json!(kind(message))),
        ("text", json!(content::text_of(message))),
        ("reply_to", reply_json(context)),
        (
            "mentions",
            json!(context.map(|c| c.mentioned_jid.clone()).unwrap_or_default()),
        ),
        ("location", location_json(inner)),
        (
            "contact",
            inner
                .contact_message
                .as_deref()
                .map_or(Value::Null, contact_json),
        ),
        (
            "contacts",
            inner
                .contacts_array_message
                .as_deref()
                .map_or(Value::Null, |a| {
                    json!({
                        "display_name": a.display_name,
                        "contacts": a.contacts.iter().map(contact_json).collect::<Vec<_>>(),
                    })
                }),
        ),
        ("reaction", reaction_json(inner)),
        ("media", media_json(inner)),
    ];
    Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// Media fields of an `image`, `video`, `audio`, `document` or `sticker` message (`m` is
/// already unwrapped): `null` for other messages.
fn media_json(m: &wa::Message) -> Value {
    crate::media::incoming::media_fields(m).unwrap_or(Value::Null)
}

/// The `contextInfo` of whichever content the message carries (text, location, contact,
/// media): replies and mentions live there (05 §2.2).
fn context_info(m: &wa::Message) -> Option<&wa::ContextInfo> {
    m.extended_text_message
        .as_ref()
        .and_then(|x| x.context_info.as_deref())
        .or_else(|| {
            m.location_message
                .as_ref()
                .and_then(|x| x.context_info.as_deref())
        })
        .or_else(|| {
            m.live_location_message
                .as_ref()
                .and_then(|x| x.context_info.as_deref())
        })
        .or_else(|| {
            m.contact_message
                .as_ref()
                .and_then(|x| x.context_info.as_deref())
        })
        .or_else(|| {
            m.contacts_array_message
                .as_ref()
                .and_then(|x| x.context_info.as_deref())
        })
        .or_else(|| {
            m.image_message
                .as_ref()
                .and_then(|x| x.context_info.as_deref())
        })
        .or_else(|| {
            m.video_message
                .as_ref()
                .and_then(|x| x.context_info.as_deref())
        })
        .or_else(|| {
            m.audio_message
                .as_ref()
                .and_then(|x| x.context_info.as_deref())
        })
        .or_else(|| {
            m.document_message
                .as_ref()
                .and_then(|x| x.context_info.as_deref())
        })
        .or_else(|| {
            m.sticker_message
                .as_ref()
                .and_then(|x| x.context_info.as_deref())
        })
}

fn reply_json(context: Option<&wa::ContextInfo>) -> Value {
    match context {
        Some(c) if c.stanza_id.is_some() => json!({
            "id": c.stanza_id,
            "participant": c.participant,
            "chat": c.remote_jid,
            "text": c.quoted_message.as_deref().and_then(content::text_of),
        }),
        _ => Value::Null,
    }
}

fn location_json(m: &wa::Message) -> Value {
    if let Some(l) = &m.location_message {
        return json!({
            "latitude": l.degrees_latitude,
            "longitude": l.degrees_longitude,
            "name": l.name,
            "address": l.address,
            "url": l.url,
            "live": false,
        });
    }
    if let Some(l) = &m.live_location_message {
        return json!({
            "latitude": l.degrees_latitude,
            "longitude": l.degrees_longitude,
            "caption": l.caption,
            "live": true,
        });
    }
    Value::Null
}

/// A contact card: display name, the vCard as sent, and the phone numbers found in its
/// `TEL` lines (`waid=` digits when present, else the digits of the value).
fn contact_json(c: &wa::message::ContactMessage) -> Value {
    let phones: Vec<String> = c.vcard.as_deref().map(vcard_phones).unwrap_or_default();
    json!({ "name": c.display_name, "vcard": c.vcard, "phones": phones })
}

fn vcard_phones(vcard: &str) -> Vec<String> {
    vcard
        .lines()
        .filter(|l| l.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("TEL")))
        .filter_map(|line| {
            let (params, value) = line.split_once(':')?;
            let waid = params
                .split(';')
                .find_map(|p| p.strip_prefix("waid="))
                .map(str::to_owned);
            let digits =
                waid.unwrap_or_else(|| value.chars().filter(char::is_ascii_digit).collect());
            (!digits.is_empty()).then_some(digits)
        })
        .collect()
}

fn reaction_json(m: &wa::Message) -> Value {
    match &m.reaction_message {
        Some(r) => json!({
            "emoji": r.text,
            "message_id": r.key.as_ref().and_then(|k| k.id.clone()),
        }),
        None => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa_engine::Jid;

    #[test]
    fn a_reply_with_mentions_carries_the_quote_and_the_mentioned_jids() {
        let quote = content::Quote {
            id: "3EB0QQ".into(),
            sender: Jid::pn("15550002222"),
            message: content::text("original"),
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
