//! Building `Message` protobufs for the kinds we send (text, reply, mentions, location,
//! contact), classifying them for the stanza (`type`, `mediatype`) and reading text back
//! (shared/protocol/05-messages-receipts.md §2, §6.3).

use wa_proto::wa;
use wa_proto::wa::message::{ContactMessage, ExtendedTextMessage, LocationMessage};

use crate::Jid;

/// A plain text message (`conversation`, 05 §2.1).
pub fn text(body: impl Into<String>) -> wa::Message {
    wa::Message {
        conversation: Some(body.into()),
        ..Default::default()
    }
}

/// What a reply quotes: the quoted message's id, its sender and its content
/// (`ContextInfo.stanzaId`, `participant`, `quotedMessage`, 05 §2.2).
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    /// Id of the quoted message.
    pub id: String,
    /// Sender of the quoted message (written as its user JID); official clients always set
    /// it, and in groups it names whose message is quoted.
    pub sender: Option<Jid>,
    /// The quoted content (a copy; official clients show it above the reply). Without it
    /// the reply still threads, but the phone has no text to show above it.
    pub message: Option<wa::Message>,
}

/// Text as an `extendedTextMessage` with a reply context and/or mentions (05 §2.2
/// ContextInfo: 1 stanzaId, 2 participant, 3 quotedMessage, 15 mentionedJid). Mentioned
/// users should also appear as `@<number>` in `body`, as official clients render them.
pub fn extended_text(
    body: impl Into<String>,
    quote: Option<Quote>,
    mentions: &[Jid],
) -> wa::Message {
    let mut context = wa::ContextInfo {
        mentioned_jid: mentions.iter().map(|j| j.to_non_ad().to_string()).collect(),
        ..Default::default()
    };
    if let Some(q) = quote {
        context.stanza_id = Some(q.id);
        context.participant = q.sender.map(|s| s.to_non_ad().to_string());
        context.quoted_message = q.message.map(Box::new);
    }
    wa::Message {
        extended_text_message: Some(Box::new(ExtendedTextMessage {
            text: Some(body.into()),
            context_info: Some(Box::new(context)),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// A static location (degrees), with an optional name and address (05 §2.2).
pub fn location(
    latitude: f64,
    longitude: f64,
    name: Option<String>,
    address: Option<String>,
) -> wa::Message {
    wa::Message {
        location_message: Some(Box::new(LocationMessage {
            degrees_latitude: Some(latitude),
            degrees_longitude: Some(longitude),
            name,
            address,
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// A contact card: display name and a vCard 3.0 string (05 §2.2).
pub fn contact(display_name: impl Into<String>, vcard: impl Into<String>) -> wa::Message {
    wa::Message {
        contact_message: Some(Box::new(ContactMessage {
            display_name: Some(display_name.into()),
            vcard: Some(vcard.into()),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// A vCard 3.0 with one phone number, the form official clients send (05 §2.2):
/// `FN` is `name` without control characters and with `,` `;` `\` escaped, `TEL` carries
/// `waid=<digits>` so the phone links the card to the WhatsApp account. `phone_digits` is
/// the E.164 number without `+`.
pub fn vcard(name: &str, phone_digits: &str) -> String {
    let escaped: String = name
        .chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            ',' | ';' | '\\' => vec!['\\', c],
            _ => vec![c],
        })
        .collect();
    format!(
        "BEGIN:VCARD\nVERSION:3.0\nFN:{escaped}\nTEL;type=CELL;waid={phone_digits}:+{phone_digits}\nEND:VCARD"
    )
}

/// The phone numbers of a vCard's `TEL` lines: the `waid=` digits when present, else the
/// digits of the value.
pub(crate) fn vcard_phones(vcard: &str) -> Vec<String> {
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

/// How many wrappers [`unwrap`] looks through at most: official clients nest two or three
/// (device-sent, ephemeral, view-once); the bound keeps a hostile deeply nested message
/// from costing more.
pub const MAX_UNWRAP_DEPTH: usize = 8;

/// The message inside wrappers: `deviceSentMessage`, view-once, ephemeral, edited,
/// document-with-caption (05 §2.1 "unwrap before classifying"), at most
/// [`MAX_UNWRAP_DEPTH`] levels deep.
pub fn unwrap(message: &wa::Message) -> &wa::Message {
    let mut current = message;
    for _ in 0..MAX_UNWRAP_DEPTH {
        let inner = current
            .device_sent_message
            .as_ref()
            .and_then(|d| d.message.as_deref())
            .or_else(|| {
                [
                    &current.ephemeral_message,
                    &current.view_once_message,
                    &current.view_once_message_v2,
                    &current.view_once_message_v2_extension,
                    &current.document_with_caption_message,
                    &current.edited_message,
                ]
                .into_iter()
                .find_map(|w| w.as_ref().and_then(|f| f.message.as_deref()))
            });
        match inner {
            Some(m) => current = m,
            None => break,
        }
    }
    current
}

/// The text of a message: `conversation`, `extendedTextMessage.text`, or a media caption;
/// after unwrapping (see [`unwrap`]).
pub fn text_of(message: &wa::Message) -> Option<&str> {
    let m = unwrap(message);
    m.conversation
        .as_deref()
        .or_else(|| {
            m.extended_text_message
                .as_ref()
                .and_then(|e| e.text.as_deref())
        })
        .or_else(|| m.image_message.as_ref().and_then(|i| i.caption.as_deref()))
        .or_else(|| m.video_message.as_ref().and_then(|v| v.caption.as_deref()))
}

/// The `mediatype` attribute of each `<enc>` (05 §6.3; whatsmeow `send.go`
/// getMediaTypeFromMessage, whatsapp-rust for `location`): `None` for plain text.
pub fn media_type(message: &wa::Message) -> Option<&'static str> {
    let m = unwrap(message);
    if let Some(v) = &m.video_message {
        return Some(if v.gif_playback == Some(true) {
            "gif"
        } else {
            "video"
        });
    }
    if let Some(a) = &m.audio_message {
        return Some(if a.ptt == Some(true) { "ptt" } else { "audio" });
    }
    if m.image_message.is_some() {
        Some("image")
    } else if m.document_message.is_some() {
        Some("document")
    } else if m.sticker_message.is_some() {
        Some("sticker")
    } else if m.contact_message.is_some() {
        Some("vcard")
    } else if m.contacts_array_message.is_some() {
        Some("contact_array")
    } else if m.live_location_message.is_some() {
        Some("livelocation")
    } else if m.location_message.is_some() {
        Some("location")
    } else if m
        .extended_text_message
        .as_ref()
        .is_some_and(|e| e.title.is_some() || e.matched_text.is_some())
    {
        Some("url")
    } else {
        None
    }
}

/// The stanza `type` (05 §6.3): `reaction`, `poll` (whatsmeow `getTypeFromMessage`), `media` when a media type applies (`url`
/// previews stay `text`, as whatsmeow), else `text`.
pub fn stanza_type(message: &wa::Message) -> &'static str {
    let m = unwrap(message);
    if m.reaction_message.is_some() {
        return "reaction";
    }
    if m.poll_update_message.is_some() || super::rich::poll_of(m).is_some() {
        return "poll";
    }
    match media_type(m) {
        Some("url") | None => "text",
        Some(_) => "media",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_text_reply_location_and_contact() {
        assert_eq!(stanza_type(&text("hi")), "text");
        assert_eq!(media_type(&text("hi")), None);
        let q = Quote {
            id: "3EB0AA".into(),
            sender: Some("15551234567@s.whatsapp.net".parse().unwrap()),
            message: Some(text("original")),
        };
        let mention: Jid = "15557654321@s.whatsapp.net".parse().unwrap();
        let reply = extended_text("@15557654321 yes", Some(q), &[mention]);
        assert_eq!(stanza_type(&reply), "text");
        assert_eq!(text_of(&reply), Some("@15557654321 yes"));
        let ctx = reply
            .extended_text_message
            .as_ref()
            .unwrap()
            .context_info
            .as_ref()
            .unwrap();
        assert_eq!(ctx.stanza_id.as_deref(), Some("3EB0AA"));
        assert_eq!(
            ctx.participant.as_deref(),
            Some("15551234567@s.whatsapp.net")
        );
        assert_eq!(
            ctx.mentioned_jid,
            vec!["15557654321@s.whatsapp.net".to_owned()]
        );
        let loc = location(52.5, 13.4, Some("Berlin".into()), None);
        assert_eq!(
            (stanza_type(&loc), media_type(&loc)),
            ("media", Some("location"))
        );
        let card = contact("Alice", "BEGIN:VCARD\nVERSION:3.0\nFN:Alice\nEND:VCARD");
        assert_eq!(
            (stanza_type(&card), media_type(&card)),
            ("media", Some("vcard"))
        );
    }

    #[test]
    fn text_is_read_through_device_sent_wrapper() {
        let dsm = wa::Message {
            device_sent_message: Some(Box::new(wa::message::DeviceSentMessage {
                destination_jid: Some("1@s.whatsapp.net".into()),
                message: Some(Box::new(text("inner"))),
                phash: None,
            })),
            ..Default::default()
        };
        assert_eq!(text_of(&dsm), Some("inner"));
    }

    #[test]
    fn unwrap_depth_is_bounded() {
        let mut m = text("deep");
        for _ in 0..(MAX_UNWRAP_DEPTH + 2) {
            m = wa::Message {
                ephemeral_message: Some(Box::new(wa::message::FutureProofMessage {
                    message: Some(Box::new(m)),
                })),
                ..Default::default()
            };
        }
        // Too deep: the text is not reached (and nothing recursed without bound).
        assert_eq!(text_of(&m), None);
        let mut ok = text("shallow");
        for _ in 0..MAX_UNWRAP_DEPTH {
            ok = wa::Message {
                ephemeral_message: Some(Box::new(wa::message::FutureProofMessage {
                    message: Some(Box::new(ok)),
                })),
                ..Default::default()
            };
        }
        assert_eq!(text_of(&ok), Some("shallow"));
    }
}
