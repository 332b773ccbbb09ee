//! The stored download reference of a media message ([`StoredMedia`], tree `media`).

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use wa_engine::media::{MediaKey, MediaRef, MediaType};
use wa_proto::wa;

use super::Kind;
use crate::db::now_ms;

/// What the server keeps of a media message so `GET .../media/{message_id}` can download it
/// later (tree `media`, key `session \0 message id`). Holds the media key: `Debug` redacts
/// it; it is never logged or sent in events.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct StoredMedia {
    /// `image`, `video`, `audio`, `document` or `sticker`.
    pub(crate) kind: String,
    /// The key expansion: `image`, `sticker`, `video`, `audio` or `document`.
    pub(crate) media_type: String,
    pub(crate) direct_path: Option<String>,
    pub(crate) url: Option<String>,
    /// base64.
    pub(crate) media_key: String,
    /// base64.
    pub(crate) file_sha256: Option<String>,
    /// base64.
    pub(crate) file_enc_sha256: Option<String>,
    pub(crate) file_length: Option<u64>,
    pub(crate) mimetype: Option<String>,
    pub(crate) file_name: Option<String>,
    /// Unix ms.
    pub(crate) created_at: u64,
}

impl std::fmt::Debug for StoredMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredMedia")
            .field("kind", &self.kind)
            .field("direct_path", &self.direct_path)
            .field("file_length", &self.file_length)
            .field("mimetype", &self.mimetype)
            .finish_non_exhaustive()
    }
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn media_type_name(t: MediaType) -> &'static str {
    match t {
        MediaType::Sticker => "sticker",
        MediaType::Video => "video",
        MediaType::Audio => "audio",
        MediaType::Document => "document",
        _ => "image",
    }
}

impl StoredMedia {
    /// The download reference of a media message (after unwrapping), or `None` when it has
    /// no downloadable media. `kind` names the message kind for the record.
    pub(crate) fn of_message(
        kind: Kind,
        message: &wa::Message,
        file_name: Option<String>,
    ) -> Option<Self> {
        let media = match MediaRef::from_message(message) {
            Ok(Some(m)) => m,
            Ok(None) => return None,
            Err(e) => {
                tracing::debug!(error = %e, "media message without a usable reference");
                return None;
            }
        };
        Some(Self::from_ref(kind, &media, file_name))
    }

    fn from_ref(kind: Kind, media: &MediaRef, file_name: Option<String>) -> Self {
        Self {
            kind: kind.as_str().to_owned(),
            media_type: media_type_name(media.media_type).to_owned(),
            direct_path: media.direct_path.clone(),
            url: media.url.clone(),
            media_key: b64(media.media_key.as_bytes()),
            file_sha256: media.file_sha256.map(|h| b64(&h)),
            file_enc_sha256: media.file_enc_sha256.map(|h| b64(&h)),
            file_length: media.file_length,
            mimetype: media.mimetype.clone(),
            file_name,
            created_at: now_ms(),
        }
    }

    /// Back to the engine's reference; `None` when the record is damaged.
    pub(crate) fn to_ref(&self) -> Option<MediaRef> {
        let decode = |s: &str| base64::engine::general_purpose::STANDARD.decode(s).ok();
        let hash = |s: &Option<String>| -> Option<Option<[u8; 32]>> {
            match s {
                None => Some(None),
                Some(s) => decode(s)
                    .and_then(|v| <[u8; 32]>::try_from(v).ok())
                    .map(Some),
            }
        };
        let media_type = match self.media_type.as_str() {
            "image" => MediaType::Image,
            "sticker" => MediaType::Sticker,
            "video" => MediaType::Video,
            "audio" => MediaType::Audio,
            "document" => MediaType::Document,
            _ => return None,
        };
        Some(MediaRef {
            media_type,
            direct_path: self.direct_path.clone(),
            url: self.url.clone(),
            media_key: MediaKey::from_slice(&decode(&self.media_key)?).ok()?,
            file_sha256: hash(&self.file_sha256)?,
            file_enc_sha256: hash(&self.file_enc_sha256)?,
            file_length: self.file_length,
            mimetype: self.mimetype.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_media_references_round_trip_and_hide_the_key() {
        let media = MediaRef {
            media_type: MediaType::Sticker,
            direct_path: Some("/v/t62.15575-24/1_2_n.enc?ccb=11-4".into()),
            url: None,
            media_key: MediaKey::from_bytes([7; 32]),
            file_sha256: Some([1; 32]),
            file_enc_sha256: None,
            file_length: Some(1234),
            mimetype: Some("image/webp".into()),
        };
        let stored = StoredMedia::from_ref(Kind::Sticker, &media, None);
        let json = serde_json::to_vec(&stored).expect("json");
        let back: StoredMedia = serde_json::from_slice(&json).expect("parse");
        let again = back.to_ref().expect("usable");
        assert_eq!(again.media_type, MediaType::Sticker);
        assert_eq!(again.direct_path, media.direct_path);
        assert_eq!(again.media_key.as_bytes(), &[7; 32]);
        assert_eq!(again.file_sha256, Some([1; 32]));
        assert_eq!(again.file_enc_sha256, None);
        assert_eq!(again.file_length, Some(1234));
        assert!(
            !format!("{back:?}").contains(&stored.media_key),
            "Debug redacts the key"
        );
        let mut damaged = back;
        damaged.media_key = "AAAA".into();
        assert!(damaged.to_ref().is_none(), "a short key is refused");
    }
}
