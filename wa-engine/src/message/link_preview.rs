//! Link previews: text with a URL and the preview card official clients show under it.
//!
//! The engine fetches nothing (no HTTP on behalf of the caller, whose server decides what it
//! may reach); the caller gives the title, description and an optional inline JPEG
//! thumbnail. Sources (facts only): whatsmeow `send.go` `getMediaTypeFromMessage` (an
//! `extendedTextMessage` with `title` or `matchedText` is `mediatype="url"`, stanza type
//! stays `text`); Baileys `generateLinkPreviewIfRequired` / `generateWAMessageContent`
//! (`matchedText` = the URL, `title`, `description`, `jpegThumbnail`, `previewType` NONE).

use wa_proto::wa;
use wa_proto::wa::message::extended_text_message::PreviewType;

/// What a preview card shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkPreview {
    /// The URL as it appears in the text (`matchedText`).
    pub url: String,
    /// The page title.
    pub title: Option<String>,
    /// The page description.
    pub description: Option<String>,
    /// A small inline JPEG (`jpegThumbnail`), not uploaded.
    pub jpeg_thumbnail: Option<Vec<u8>>,
}

/// `body` (which should contain `preview.url`) as an `extendedTextMessage` with the preview
/// card.
#[must_use]
pub fn with_preview(body: impl Into<String>, preview: LinkPreview) -> wa::Message {
    wa::Message {
        extended_text_message: Some(Box::new(wa::message::ExtendedTextMessage {
            text: Some(body.into()),
            matched_text: Some(preview.url),
            title: preview.title,
            description: preview.description,
            jpeg_thumbnail: preview.jpeg_thumbnail,
            preview_type: Some(PreviewType::None as i32),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// A preview card, read from a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkPreviewRef<'a> {
    /// The URL the card is for (`matchedText`).
    pub url: Option<&'a str>,
    /// The title.
    pub title: Option<&'a str>,
    /// The description.
    pub description: Option<&'a str>,
    /// The inline JPEG thumbnail, if sent.
    pub jpeg_thumbnail: Option<&'a [u8]>,
}

impl<'a> super::Content<'a> {
    /// The link preview card, if the text carries one (`matchedText` or `title` set).
    #[must_use]
    pub fn link_preview(&self) -> Option<LinkPreviewRef<'a>> {
        let e = self.message().extended_text_message.as_deref()?;
        if e.matched_text.is_none() && e.title.is_none() {
            return None;
        }
        Some(LinkPreviewRef {
            url: e.matched_text.as_deref(),
            title: e.title.as_deref(),
            description: e.description.as_deref(),
            jpeg_thumbnail: e.jpeg_thumbnail.as_deref(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Content, ContentKind, content};

    #[test]
    fn preview_round_trips_and_stays_text() {
        let m = with_preview(
            "see https://example.org/x",
            LinkPreview {
                url: "https://example.org/x".into(),
                title: Some("Example".into()),
                description: Some("An example page".into()),
                jpeg_thumbnail: None,
            },
        );
        let c = Content::of(&m);
        assert_eq!(c.kind(), ContentKind::Text);
        assert_eq!(c.text(), Some("see https://example.org/x"));
        let p = c.link_preview().unwrap();
        assert_eq!(p.url, Some("https://example.org/x"));
        assert_eq!(p.title, Some("Example"));
        assert_eq!(p.description, Some("An example page"));
        assert_eq!(content::media_type(&m), Some("url"));
        assert_eq!(content::stanza_type(&m), "text");
        assert_eq!(Content::of(&content::text("plain")).link_preview(), None);
    }
}
