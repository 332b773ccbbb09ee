//! Media: sending files as image, video, audio, document and sticker messages, keeping the
//! download references of media messages, and downloading them again. The HTTP side is
//! `routes/media.rs`; this module knows nothing of requests and responses.
//!
//! A send takes the file one of three ways ([`intake`]):
//! - by URL: the server fetches it ([`fetch`]: http/https only, redirects only to
//!   http/https, at most [`fetch::MAX_REDIRECTS`], the configured timeout, the configured
//!   host allow-list), streaming it to a temporary file ([`temp`]);
//! - as base64 (plain or a `data:` URL);
//! - as a multipart `file` part, streamed to a temporary file as it arrives.
//!
//! Every file is limited to [`MediaSettings::max_bytes`](crate::MediaSettings), its type is
//! sniffed from its first bytes ([`sniff`]: the `infer` crate, then the engine's
//! `media::probe::sniff_mimetype`) and checked against the kind's allow-list
//! ([`Kind::allowed`]); the declared type or file extension is never trusted. Then the
//! engine encrypts and uploads it ([`upload`]: streamed from the temporary file, bounded
//! memory), the message is built with the engine's `media::message` builders and sent like a
//! text ([`send`] via `messaging::send`: the status record is `pending` before the engine
//! sees it, then `sent` or `failed`); the temporary file is removed in every case.
//!
//! A base64 body is parsed whole (about four times the file in memory at its peak): use
//! multipart or a URL for large files.
//!
//! Received media (and media we sent) is downloadable again ([`download`]): the download
//! reference ([`record::StoredMedia`]: direct path, media key, hashes, length, type) is kept
//! in the server database (tree `media`), so the URL keeps working across restarts while the
//! media host keeps the file. The download is verified by the engine into a temporary file
//! first, then streamed out: a client never receives unverified bytes. [`incoming`] stores
//! the reference of each received media message and builds the extra fields of its event;
//! small files to put inline into it are downloaded by the bounded pool in [`inline`], never
//! by the session's event loop.

pub(crate) mod download;
pub(crate) mod fetch;
pub(crate) mod incoming;
pub(crate) mod inline;
pub(crate) mod intake;
pub(crate) mod record;
pub(crate) mod send;
pub(crate) mod temp;
pub(crate) mod upload;

use wa_engine::media::{MediaType, probe};

/// The kind of media message a route sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Image,
    Video,
    Audio,
    Document,
    Sticker,
}

impl Kind {
    /// The name used in routes, statuses and events.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Document => "document",
            Self::Sticker => "sticker",
        }
    }

    /// The media type whose keys encrypt this kind (shared/protocol/06 §2.1).
    pub(crate) fn media_type(self) -> MediaType {
        match self {
            Self::Image => MediaType::Image,
            Self::Video => MediaType::Video,
            Self::Audio => MediaType::Audio,
            Self::Document => MediaType::Document,
            Self::Sticker => MediaType::Sticker,
        }
    }

    /// The allow-list, as shown in errors and the API docs. WhatsApp clients display
    /// JPEG/PNG/WebP images, MP4/3GPP video, AAC/AMR/MP3/MP4/Ogg audio and WebP stickers
    /// (whatsmeow and Baileys send these types); documents may be any file.
    pub(crate) fn allowed_list(self, voice_note: bool) -> &'static str {
        match self {
            Self::Image => "image/jpeg, image/png, image/webp",
            Self::Video => "video/mp4, video/3gpp",
            Self::Audio if voice_note => "audio/ogg (Opus)",
            Self::Audio => "audio/ogg, audio/mpeg, audio/mp4, audio/aac, audio/amr",
            Self::Document => "any",
            Self::Sticker => "image/webp",
        }
    }

    /// Whether a file of the sniffed type `mimetype` may be sent as this kind.
    pub(crate) fn allowed(self, mimetype: &str, voice_note: bool) -> bool {
        match self {
            Self::Image => matches!(mimetype, "image/jpeg" | "image/png" | "image/webp"),
            Self::Video => matches!(mimetype, "video/mp4" | "video/3gpp"),
            Self::Audio if voice_note => mimetype == "audio/ogg; codecs=opus",
            Self::Audio => {
                mimetype.starts_with("audio/ogg")
                    || matches!(
                        mimetype,
                        "audio/mpeg" | "audio/mp4" | "audio/aac" | "audio/amr"
                    )
            }
            Self::Document => true,
            Self::Sticker => mimetype == "image/webp",
        }
    }
}

/// The MIME type of a file from its first bytes: `infer`'s answer normalised to the names
/// WhatsApp messages use (Ogg Opus is `audio/ogg; codecs=opus`, M4A is `audio/mp4`), else
/// the engine's probe; `None` when neither knows the format.
pub(crate) fn sniff(head: &[u8]) -> Option<&'static str> {
    if let Some(t) = infer::get(head) {
        return Some(match t.mime_type() {
            "audio/opus" => "audio/ogg; codecs=opus",
            "audio/m4a" | "audio/x-m4a" => "audio/mp4",
            "video/x-m4v" => "video/mp4",
            "audio/x-wav" => "audio/wav",
            other => other,
        });
    }
    probe::sniff_mimetype(head)
}

/// The path of the download route of message `message_id`.
pub(crate) fn download_path(session: &str, message_id: &str) -> String {
    format!("/api/sessions/{session}/media/{message_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_normalises_to_whatsapp_names() {
        let mut opus = b"OggS\0\x02".to_vec();
        opus.resize(28, 0);
        opus.extend_from_slice(b"OpusHead\x01\x01");
        opus.resize(64, 0);
        assert_eq!(sniff(&opus), Some("audio/ogg; codecs=opus"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR"), Some("image/png"));
        assert_eq!(sniff(b"%PDF-1.7\n"), Some("application/pdf"));
        assert_eq!(sniff(b"hello, world"), None);
    }

    #[test]
    fn allow_lists_follow_the_kind() {
        assert!(Kind::Image.allowed("image/png", false));
        assert!(!Kind::Image.allowed("application/pdf", false));
        assert!(!Kind::Sticker.allowed("image/png", false));
        assert!(Kind::Audio.allowed("audio/mpeg", false));
        assert!(
            !Kind::Audio.allowed("audio/mpeg", true),
            "voice notes are Opus"
        );
        assert!(Kind::Audio.allowed("audio/ogg; codecs=opus", true));
        assert!(Kind::Document.allowed("application/x-msdownload", false));
    }
}
