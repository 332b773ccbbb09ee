//! View-once media: images, videos and voice notes the recipient can open once.
//!
//! Sources (facts only, our own code): whatsmeow `types/events/events.go` `UnwrapRaw`
//! (unwraps `viewOnceMessage`, `viewOnceMessageV2`, `viewOnceMessageV2Extension`, setting
//! `IsViewOnce`/`IsViewOnceV2`/`IsViewOnceV2Extension`) and `send.go`
//! `getMediaTypeFromMessage` (recurses into the wrappers); Baileys `generateWAMessageContent`
//! (`viewOnce: true` → the content wrapped in `viewOnceMessage`, the media flagged
//! `viewOnce`). Current official clients send `viewOnceMessageV2` around a media message
//! with `viewOnce: true` (voice notes: `viewOnceMessageV2Extension`); we send that and read
//! all three wrappers.

use wa_proto::wa;

/// Which view-once wrapper a received message came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViewOnceKind {
    /// `viewOnceMessage` (older clients, Baileys 6).
    V1,
    /// `viewOnceMessageV2` (images and videos from current clients).
    V2,
    /// `viewOnceMessageV2Extension` (voice notes from current clients).
    V2Extension,
    /// No wrapper, only the media's own `viewOnce` flag.
    FlagOnly,
}

fn wrap(inner: wa::Message) -> Option<Box<wa::message::FutureProofMessage>> {
    Some(Box::new(wa::message::FutureProofMessage {
        message: Some(Box::new(inner)),
    }))
}

/// Sets the `viewOnce` flag on the image, video or audio `media` carries; `false` for any
/// other content.
fn flag(media: &mut wa::Message) -> bool {
    if let Some(m) = media.image_message.as_deref_mut() {
        m.view_once = Some(true);
    } else if let Some(m) = media.video_message.as_deref_mut() {
        m.view_once = Some(true);
    } else if let Some(m) = media.audio_message.as_deref_mut() {
        m.view_once = Some(true);
    } else {
        return false;
    }
    true
}

/// `media` (an image, video or audio message, e.g. from
/// [`media::message::image`](crate::media::message::image)) as view-once: the media
/// flagged `viewOnce: true` and wrapped in `viewOnceMessageV2` (audio:
/// `viewOnceMessageV2Extension`). Other content is returned unchanged (official clients
/// offer view-once for images, videos and voice notes only).
#[must_use]
pub fn view_once(mut media: wa::Message) -> wa::Message {
    if !flag(&mut media) {
        return media;
    }
    let audio = media.audio_message.is_some();
    if audio {
        wa::Message {
            view_once_message_v2_extension: wrap(media),
            ..Default::default()
        }
    } else {
        wa::Message {
            view_once_message_v2: wrap(media),
            ..Default::default()
        }
    }
}

/// For a message about to be sent: an unwrapped image, video or audio whose `viewOnce` is
/// set (e.g. `ImageOptions { view_once: true, .. }`) gets its wrapper ([`view_once`]);
/// anything else is unchanged.
pub(crate) fn normalize(message: wa::Message) -> wa::Message {
    let flagged = message
        .image_message
        .as_ref()
        .and_then(|m| m.view_once)
        .or_else(|| message.video_message.as_ref().and_then(|m| m.view_once))
        .or_else(|| message.audio_message.as_ref().and_then(|m| m.view_once))
        == Some(true);
    if flagged { view_once(message) } else { message }
}

/// How a message is view-once, if it is: its wrapper (looked for through the
/// device-sent and ephemeral wrappers), else the media's own flag.
#[must_use]
pub fn view_once_kind(message: &wa::Message) -> Option<ViewOnceKind> {
    let mut current = message;
    for _ in 0..super::content::MAX_UNWRAP_DEPTH {
        if current.view_once_message.is_some() {
            return Some(ViewOnceKind::V1);
        }
        if current.view_once_message_v2.is_some() {
            return Some(ViewOnceKind::V2);
        }
        if current.view_once_message_v2_extension.is_some() {
            return Some(ViewOnceKind::V2Extension);
        }
        let next = current
            .device_sent_message
            .as_ref()
            .and_then(|d| d.message.as_deref())
            .or_else(|| {
                current
                    .ephemeral_message
                    .as_ref()
                    .and_then(|e| e.message.as_deref())
            });
        match next {
            Some(n) => current = n,
            None => break,
        }
    }
    let inner = super::content::unwrap(message);
    let flagged = inner
        .image_message
        .as_ref()
        .and_then(|m| m.view_once)
        .or_else(|| inner.video_message.as_ref().and_then(|m| m.view_once))
        .or_else(|| inner.audio_message.as_ref().and_then(|m| m.view_once))
        == Some(true);
    flagged.then_some(ViewOnceKind::FlagOnly)
}

impl super::Content<'_> {
    /// How the message is view-once, if it is (any of the three wrappers, or the media's
    /// `viewOnce` flag). The content itself is classified as usual (an image stays
    /// [`ContentKind::Media`](super::ContentKind::Media)).
    #[must_use]
    pub fn view_once(&self) -> Option<ViewOnceKind> {
        view_once_kind(self.outer())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Content, ContentKind, MediaKind, content};

    fn image() -> wa::Message {
        wa::Message {
            image_message: Some(Box::new(wa::message::ImageMessage {
                mimetype: Some("image/jpeg".into()),
                caption: Some("once".into()),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn wraps_flags_and_classifies() {
        let m = view_once(image());
        assert!(m.view_once_message_v2.is_some());
        let c = Content::of(&m);
        assert_eq!(c.kind(), ContentKind::Media(MediaKind::Image));
        assert_eq!(c.view_once(), Some(ViewOnceKind::V2));
        assert_eq!(c.text(), Some("once"));
        assert_eq!(
            c.message().image_message.as_ref().unwrap().view_once,
            Some(true)
        );
        assert_eq!(content::stanza_type(&m), "media");
        assert_eq!(content::media_type(&m), Some("image"));
        // Text is not view-once.
        assert_eq!(view_once(content::text("x")), content::text("x"));
        assert_eq!(Content::of(&content::text("x")).view_once(), None);
        // A flagged but unwrapped image is wrapped on send; v1 is read.
        let mut flagged = image();
        flagged.image_message.as_mut().unwrap().view_once = Some(true);
        assert!(normalize(flagged.clone()).view_once_message_v2.is_some());
        let v1 = wa::Message {
            view_once_message: wrap(flagged),
            ..Default::default()
        };
        assert_eq!(Content::of(&v1).view_once(), Some(ViewOnceKind::V1));
        let audio = view_once(wa::Message {
            audio_message: Some(Box::default()),
            ..Default::default()
        });
        assert_eq!(
            Content::of(&audio).view_once(),
            Some(ViewOnceKind::V2Extension)
        );
    }
}
