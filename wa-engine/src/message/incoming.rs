//! The classified view of a received message: what it carries, read once here after
//! unwrapping (shared/protocol/05 §2.1), so embedders do not walk the protobuf themselves.

use wa_proto::wa;

use super::IncomingMessage;
use super::content;

/// What a message carries, after unwrapping device-sent, ephemeral, view-once, edited and
/// document-with-caption wrappers (05 §2.1). Classified in this order: a `protocolMessage`
/// makes it [`ContentKind::Protocol`], then a reaction, then the `<enc mediatype>` kind
/// ([`content::media_type`], 05 §6.3), then text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContentKind {
    /// `conversation` or `extendedTextMessage` (link previews included).
    Text,
    /// An image, video, audio, document or sticker; details in [`Content::message`], the
    /// download handle in [`IncomingMessage::media`].
    Media(MediaKind),
    /// A static location pin ([`Content::location`]).
    Location,
    /// A live location update ([`Content::location`] with `live`).
    LiveLocation,
    /// One contact card ([`Content::contact`]).
    Contact,
    /// Several contact cards ([`Content::contacts`]).
    Contacts,
    /// A reaction to another message ([`Content::reaction`]).
    Reaction,
    /// An edit of an earlier message ([`Content::edit`]; `protocolMessage` MESSAGE_EDIT).
    Edit,
    /// A delete-for-everyone of an earlier message ([`Content::revoke`]).
    Revoke,
    /// A poll ([`Content::poll`]).
    Poll,
    /// A vote on a poll ([`Content::poll_update`]; decrypted votes arrive as
    /// [`Event::PollVote`](crate::Event::PollVote)).
    PollVote,
    /// A disappearing-messages timer change in a 1:1 chat
    /// ([`Content::ephemeral_setting`]; `protocolMessage` EPHEMERAL_SETTING). Official
    /// clients show it as a line in the chat.
    EphemeralSetting,
    /// Any other `protocolMessage` (history-sync notice, app-state key share, ...):
    /// bookkeeping with nothing for a user to see.
    Protocol,
    /// Anything else, e.g. a sender key distribution alone: nothing for a user to see.
    Other,
}

impl ContentKind {
    /// Whether a user would see this message in a chat: everything but
    /// [`ContentKind::Protocol`] and [`ContentKind::Other`].
    #[must_use]
    pub fn is_user_visible(self) -> bool {
        !matches!(self, Self::Protocol | Self::Other)
    }
}

/// The kind of a media message, as the `<enc mediatype>` names it (05 §6.3; whatsmeow
/// `send.go` getMediaTypeFromMessage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MediaKind {
    /// `imageMessage`.
    Image,
    /// `videoMessage`.
    Video,
    /// `videoMessage` with `gifPlayback`.
    Gif,
    /// `audioMessage`.
    Audio,
    /// `audioMessage` with `ptt` (a voice note).
    Ptt,
    /// `documentMessage`.
    Document,
    /// `stickerMessage`.
    Sticker,
}

impl MediaKind {
    /// The `mediatype` string: `image`, `video`, `gif`, `audio`, `ptt`, `document`,
    /// `sticker`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Gif => "gif",
            Self::Audio => "audio",
            Self::Ptt => "ptt",
            Self::Document => "document",
            Self::Sticker => "sticker",
        }
    }
}

/// A borrowed, classified view of a message's content; from [`IncomingMessage::content`] or
/// [`Content::of`].
#[derive(Debug, Clone, Copy)]
pub struct Content<'a> {
    /// The message as received (wrappers included).
    outer: &'a wa::Message,
    /// The message inside its wrappers.
    inner: &'a wa::Message,
}

/// A location pin or live location update.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Location<'a> {
    /// Degrees north.
    pub latitude: Option<f64>,
    /// Degrees east.
    pub longitude: Option<f64>,
    /// Place name (static pins only).
    pub name: Option<&'a str>,
    /// Address (static pins only).
    pub address: Option<&'a str>,
    /// A link for the place (static pins only).
    pub url: Option<&'a str>,
    /// Caption (live locations only).
    pub caption: Option<&'a str>,
    /// A live location update (`liveLocationMessage`).
    pub live: bool,
}

/// One contact card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContactCard<'a> {
    /// The name shown.
    pub display_name: Option<&'a str>,
    /// The vCard as sent.
    pub vcard: Option<&'a str>,
}

impl ContactCard<'_> {
    /// The phone numbers of the card's `TEL` lines: the `waid=` digits when present, else
    /// the digits of the value (as official clients write them: 05 §2.2).
    #[must_use]
    pub fn phones(&self) -> Vec<String> {
        self.vcard.map(content::vcard_phones).unwrap_or_default()
    }
}

/// Several contact cards sent together.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContactList<'a> {
    /// The list's name.
    pub display_name: Option<&'a str>,
    /// The cards.
    pub contacts: Vec<ContactCard<'a>>,
}

/// A reaction to another message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reaction<'a> {
    /// The emoji; empty (or absent) removes an earlier reaction.
    pub emoji: Option<&'a str>,
    /// Id of the message reacted to.
    pub message_id: Option<&'a str>,
}

/// The message a reply quotes, as its `ContextInfo` names it (05 §2.2).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct QuotedRef<'a> {
    /// Id of the quoted message (`stanzaId`).
    pub id: &'a str,
    /// Its sender (`participant`), as sent.
    pub participant: Option<&'a str>,
    /// Its chat (`remoteJid`), when it is not this chat.
    pub chat: Option<&'a str>,
    /// The copy of the quoted content the sender included, if any.
    pub message: Option<&'a wa::Message>,
}

impl QuotedRef<'_> {
    /// The text of the quoted copy ([`content::text_of`]).
    #[must_use]
    pub fn text(&self) -> Option<&str> {
        self.message.and_then(content::text_of)
    }
}

impl<'a> Content<'a> {
    /// The view of `message` (any message, sent or received).
    #[must_use]
    pub fn of(message: &'a wa::Message) -> Self {
        Self {
            outer: message,
            inner: content::unwrap(message),
        }
    }

    /// What the message carries (see [`ContentKind`] for the order of the checks).
    #[must_use]
    pub fn kind(&self) -> ContentKind {
        let m = self.inner;
        // Rich kinds (edit, revoke, poll, vote): message::rich.
        if let Some(kind) = super::rich::kind_of(m) {
            return kind;
        }
        if super::ephemeral::setting_of(m).is_some() {
            return ContentKind::EphemeralSetting;
        }
        if m.protocol_message.is_some() {
            return ContentKind::Protocol;
        }
        if m.reaction_message.is_some() {
            return ContentKind::Reaction;
        }
        match content::media_type(m) {
            Some("image") => ContentKind::Media(MediaKind::Image),
            Some("video") => ContentKind::Media(MediaKind::Video),
            Some("gif") => ContentKind::Media(MediaKind::Gif),
            Some("audio") => ContentKind::Media(MediaKind::Audio),
            Some("ptt") => ContentKind::Media(MediaKind::Ptt),
            Some("document") => ContentKind::Media(MediaKind::Document),
            Some("sticker") => ContentKind::Media(MediaKind::Sticker),
            Some("vcard") => ContentKind::Contact,
            Some("contact_array") => ContentKind::Contacts,
            Some("livelocation") => ContentKind::LiveLocation,
            Some("location") => ContentKind::Location,
            Some(_) => ContentKind::Text,
            None if m.conversation.is_some() || m.extended_text_message.is_some() => {
                ContentKind::Text
            }
            None => ContentKind::Other,
        }
    }

    /// The message inside its wrappers, for fields this view does not classify (media
    /// dimensions, file names, ...).
    #[must_use]
    pub fn message(&self) -> &'a wa::Message {
        self.inner
    }

    /// The text: `conversation`, `extendedTextMessage.text`, or an image/video caption.
    #[must_use]
    pub fn text(&self) -> Option<&'a str> {
        content::text_of(self.outer)
    }

    /// The quoted message, when this is a reply (a `ContextInfo` with a `stanzaId`).
    #[must_use]
    pub fn quoted(&self) -> Option<QuotedRef<'a>> {
        let c = self.context()?;
        Some(QuotedRef {
            id: c.stanza_id.as_deref()?,
            participant: c.participant.as_deref(),
            chat: c.remote_jid.as_deref(),
            message: c.quoted_message.as_deref(),
        })
    }

    /// The mentioned users' JIDs, as sent (`ContextInfo.mentionedJid`).
    #[must_use]
    pub fn mentions(&self) -> &'a [String] {
        self.context().map_or(&[], |c| c.mentioned_jid.as_slice())
    }

    /// The location pin or live location, if the message has one.
    #[must_use]
    pub fn location(&self) -> Option<Location<'a>> {
        if let Some(l) = self.inner.location_message.as_deref() {
            return Some(Location {
                latitude: l.degrees_latitude,
                longitude: l.degrees_longitude,
                name: l.name.as_deref(),
                address: l.address.as_deref(),
                url: l.url.as_deref(),
                caption: None,
                live: false,
            });
        }
        let l = self.inner.live_location_message.as_deref()?;
        Some(Location {
            latitude: l.degrees_latitude,
            longitude: l.degrees_longitude,
            name: None,
            address: None,
            url: None,
            caption: l.caption.as_deref(),
            live: true,
        })
    }

    /// The contact card, if the message has one.
    #[must_use]
    pub fn contact(&self) -> Option<ContactCard<'a>> {
        self.inner.contact_message.as_deref().map(card)
    }

    /// The contact cards, if the message has several.
    #[must_use]
    pub fn contacts(&self) -> Option<ContactList<'a>> {
        let a = self.inner.contacts_array_message.as_deref()?;
        Some(ContactList {
            display_name: a.display_name.as_deref(),
            contacts: a.contacts.iter().map(card).collect(),
        })
    }

    /// The reaction, if the message is one.
    #[must_use]
    pub fn reaction(&self) -> Option<Reaction<'a>> {
        let r = self.inner.reaction_message.as_ref()?;
        Some(Reaction {
            emoji: r.text.as_deref(),
            message_id: r.key.as_ref().and_then(|k| k.id.as_deref()),
        })
    }

    /// The message as given (wrappers included).
    pub(crate) fn outer(&self) -> &'a wa::Message {
        self.outer
    }

    /// The `contextInfo` of whichever content the message carries (text, location,
    /// contact, media): replies, mentions and the disappearing timer live there (05 §2.2).
    #[must_use]
    pub fn context_info(&self) -> Option<&'a wa::ContextInfo> {
        self.context()
    }

    fn context(&self) -> Option<&'a wa::ContextInfo> {
        let m = self.inner;
        [
            m.extended_text_message
                .as_deref()
                .and_then(|x| x.context_info.as_deref()),
            m.location_message
                .as_deref()
                .and_then(|x| x.context_info.as_deref()),
            m.live_location_message
                .as_deref()
                .and_then(|x| x.context_info.as_deref()),
            m.contact_message
                .as_deref()
                .and_then(|x| x.context_info.as_deref()),
            m.contacts_array_message
                .as_deref()
                .and_then(|x| x.context_info.as_deref()),
            m.image_message
                .as_deref()
                .and_then(|x| x.context_info.as_deref()),
            m.video_message
                .as_deref()
                .and_then(|x| x.context_info.as_deref()),
            m.audio_message
                .as_deref()
                .and_then(|x| x.context_info.as_deref()),
            m.document_message
                .as_deref()
                .and_then(|x| x.context_info.as_deref()),
            m.sticker_message
                .as_deref()
                .and_then(|x| x.context_info.as_deref()),
        ]
        .into_iter()
        .flatten()
        .next()
    }
}

fn card(c: &wa::message::ContactMessage) -> ContactCard<'_> {
    ContactCard {
        display_name: c.display_name.as_deref(),
        vcard: c.vcard.as_deref(),
    }
}

impl IncomingMessage {
    /// The classified view of the content (kind, text, quote, mentions, location, contact,
    /// reaction).
    #[must_use]
    pub fn content(&self) -> Content<'_> {
        Content::of(&self.message)
    }

    /// The text of the message (`conversation`, extended text, or a media caption), if any.
    #[must_use]
    pub fn text(&self) -> Option<&str> {
        content::text_of(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Jid;

    #[test]
    fn a_reply_exposes_its_quote_and_mentions() {
        let quote = content::Quote {
            id: "3EB0QQ".into(),
            sender: Some(Jid::pn("15550002222")),
            message: Some(content::text("original")),
        };
        let m = content::extended_text("@15550003333 yes", Some(quote), &[Jid::pn("15550003333")]);
        let c = Content::of(&m);
        assert_eq!(c.kind(), ContentKind::Text);
        assert_eq!(c.text(), Some("@15550003333 yes"));
        let q = c.quoted().expect("quote");
        assert_eq!(q.id, "3EB0QQ");
        assert_eq!(q.participant, Some("15550002222@s.whatsapp.net"));
        assert_eq!(q.text(), Some("original"));
        assert_eq!(c.mentions(), ["15550003333@s.whatsapp.net".to_owned()]);
    }

    #[test]
    fn classifies_location_contact_reaction_and_protocol() {
        let loc = content::location(1.0, 2.0, Some("here".into()), None);
        assert_eq!(Content::of(&loc).kind(), ContentKind::Location);
        assert_eq!(
            Content::of(&loc).location().and_then(|l| l.name),
            Some("here")
        );
        let card = content::contact("Budi", content::vcard("Budi", "628123456789"));
        let c = Content::of(&card);
        assert_eq!(c.kind(), ContentKind::Contact);
        assert_eq!(
            c.contact().map(|c| c.phones()),
            Some(vec!["628123456789".to_owned()])
        );
        let reaction = wa::Message {
            reaction_message: Some(wa::message::ReactionMessage {
                text: Some("👍".into()),
                key: Some(wa::MessageKey {
                    id: Some("3EB0RR".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = Content::of(&reaction);
        assert_eq!(r.kind(), ContentKind::Reaction);
        assert_eq!(r.reaction().and_then(|r| r.message_id), Some("3EB0RR"));
        let protocol = wa::Message {
            protocol_message: Some(Box::default()),
            conversation: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(Content::of(&protocol).kind(), ContentKind::Protocol);
        assert!(!ContentKind::Protocol.is_user_visible());
        assert!(
            !Content::of(&wa::Message::default())
                .kind()
                .is_user_visible()
        );
        assert!(ContentKind::Media(MediaKind::Ptt).is_user_visible());
    }
}
