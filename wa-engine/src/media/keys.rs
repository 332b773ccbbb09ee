//! Media types and media keys: the HKDF expansion of a 32-byte media key into IV, cipher key,
//! MAC key and ref key (shared/protocol/06 §2.1).

use std::fmt;

use hkdf::Hkdf;
use rand_core::CryptoRng;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::MediaError;

/// Length of a media key, bytes (the `mediaKey` message field).
pub const MEDIA_KEY_LEN: usize = 32;
/// Length of the HKDF output a media key expands to, bytes: IV 16 + cipher key 32 +
/// MAC key 32 + ref key 32 (whatsmeow `download.go` getMediaKeys).
pub const EXPANDED_MEDIA_KEY_LEN: usize = 112;

/// The kind of a media file; selects the HKDF info string and the upload path.
///
/// The table (shared/protocol/06 §2.1; whatsmeow `download.go` MediaType / mediaTypeToMMSType,
/// Baileys `src/Defaults/index.ts` MEDIA_HKDF_KEY_MAPPING / MEDIA_PATH_MAP):
///
/// | Variant | HKDF info | mms type |
/// |---|---|---|
/// | `Image`, `Sticker` | `WhatsApp Image Keys` | `image` |
/// | `Video` (also GIF and PTV) | `WhatsApp Video Keys` | `video` |
/// | `Audio` (also PTT voice notes) | `WhatsApp Audio Keys` | `audio` |
/// | `Document` | `WhatsApp Document Keys` | `document` |
/// | `History` | `WhatsApp History Keys` | `md-msg-hist` |
/// | `AppState` | `WhatsApp App State Keys` | `md-app-state` |
/// | `LinkThumbnail` | `WhatsApp Link Thumbnail Keys` | `thumbnail-link` |
/// | `ImageThumbnail` | `WhatsApp Image Thumbnail Keys` | none |
/// | `VideoThumbnail` | `WhatsApp Video Thumbnail Keys` | none |
/// | `DocumentThumbnail` | `WhatsApp Document Thumbnail Keys` | none |
/// | `StickerPack` | `WhatsApp Sticker Pack Keys` | `sticker-pack` |
/// | `StickerPackThumbnail` | `WhatsApp Sticker Pack Thumbnail Keys` | `thumbnail-sticker-pack` |
///
/// Where the references disagree we follow whatsmeow (shared/protocol/06 §5.3): Baileys
/// uploads history blobs to `/mms/md-app-state` and link thumbnails to `/mms/image`; we use
/// `md-msg-hist` and `thumbnail-link`. The image/video/document thumbnail infos come from
/// Baileys only, which names no upload path for them. GIF, PTV and PTT are flags on video
/// and audio messages, not kinds of their own: they use `Video` and `Audio` keys. The media
/// retry notification key (`WhatsApp Media Retry Notification`, 32 bytes) is not a media
/// file and is not listed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MediaType {
    /// An image message.
    Image,
    /// A sticker message: image keys and image upload path.
    Sticker,
    /// A video message, including GIFs and round video notes (PTV).
    Video,
    /// An audio message, including voice notes (PTT).
    Audio,
    /// A document message.
    Document,
    /// A history sync blob (`HistorySyncNotification`).
    History,
    /// An app state blob (`ExternalBlobReference`).
    AppState,
    /// A link preview thumbnail (`ExtendedTextMessage.thumbnailDirectPath`).
    LinkThumbnail,
    /// An image thumbnail (Baileys only).
    ImageThumbnail,
    /// A video thumbnail (Baileys only).
    VideoThumbnail,
    /// A document thumbnail (Baileys only).
    DocumentThumbnail,
    /// A sticker pack archive.
    StickerPack,
    /// A sticker pack's thumbnail, encrypted with the pack's media key.
    StickerPackThumbnail,
    /// A payment background image (Baileys `payment-bg-image`: HKDF info `WhatsApp Payment
    /// Background Keys`); download only.
    PaymentBgImage,
    /// A catalog product image (Baileys `product`: image keys); download only.
    Product,
}

impl MediaType {
    /// Every media type, in declaration order.
    pub const ALL: [Self; 15] = [
        Self::Image,
        Self::Sticker,
        Self::Video,
        Self::Audio,
        Self::Document,
        Self::History,
        Self::AppState,
        Self::LinkThumbnail,
        Self::ImageThumbnail,
        Self::VideoThumbnail,
        Self::DocumentThumbnail,
        Self::StickerPack,
        Self::StickerPackThumbnail,
        Self::PaymentBgImage,
        Self::Product,
    ];

    /// The HKDF info string the media key is expanded with, e.g. `WhatsApp Image Keys`.
    #[must_use]
    pub fn hkdf_info(self) -> &'static str {
        match self {
            Self::Image | Self::Sticker | Self::Product => "WhatsApp Image Keys",
            Self::PaymentBgImage => "WhatsApp Payment Background Keys",
            Self::Video => "WhatsApp Video Keys",
            Self::Audio => "WhatsApp Audio Keys",
            Self::Document => "WhatsApp Document Keys",
            Self::History => "WhatsApp History Keys",
            Self::AppState => "WhatsApp App State Keys",
            Self::LinkThumbnail => "WhatsApp Link Thumbnail Keys",
            Self::ImageThumbnail => "WhatsApp Image Thumbnail Keys",
            Self::VideoThumbnail => "WhatsApp Video Thumbnail Keys",
            Self::DocumentThumbnail => "WhatsApp Document Thumbnail Keys",
            Self::StickerPack => "WhatsApp Sticker Pack Keys",
            Self::StickerPackThumbnail => "WhatsApp Sticker Pack Thumbnail Keys",
        }
    }

    /// The mms type: the upload path segment (`/mms/<mms type>/<token>`) and the download
    /// URL's `mms-type` parameter (whatsmeow `upload.go`, `download.go`). `None` for the
    /// thumbnail kinds no reference uploads on their own.
    #[must_use]
    pub fn mms_type(self) -> Option<&'static str> {
        match self {
            Self::Image | Self::Sticker => Some("image"),
            Self::Video => Some("video"),
            Self::Audio => Some("audio"),
            Self::Document => Some("document"),
            Self::History => Some("md-msg-hist"),
            Self::AppState => Some("md-app-state"),
            Self::LinkThumbnail => Some("thumbnail-link"),
            Self::ImageThumbnail
            | Self::VideoThumbnail
            | Self::DocumentThumbnail
            | Self::PaymentBgImage
            | Self::Product => None,
            Self::StickerPack => Some("sticker-pack"),
            Self::StickerPackThumbnail => Some("thumbnail-sticker-pack"),
        }
    }

    /// The upload path before the token, e.g. `/mms/image` (`/mms/` + [`Self::mms_type`]);
    /// the same strings as the vectors' `mms_path` for the five message kinds.
    #[must_use]
    pub fn upload_path(self) -> Option<&'static str> {
        match self {
            Self::Image | Self::Sticker => Some("/mms/image"),
            Self::Video => Some("/mms/video"),
            Self::Audio => Some("/mms/audio"),
            Self::Document => Some("/mms/document"),
            Self::History => Some("/mms/md-msg-hist"),
            Self::AppState => Some("/mms/md-app-state"),
            Self::LinkThumbnail => Some("/mms/thumbnail-link"),
            Self::ImageThumbnail
            | Self::VideoThumbnail
            | Self::DocumentThumbnail
            | Self::PaymentBgImage
            | Self::Product => None,
            Self::StickerPack => Some("/mms/sticker-pack"),
            Self::StickerPackThumbnail => Some("/mms/thumbnail-sticker-pack"),
        }
    }

    /// Baileys' name for the type (`MEDIA_HKDF_KEY_MAPPING` keys), e.g. `image`, `md-msg-hist`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Sticker => "sticker",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Document => "document",
            Self::History => "md-msg-hist",
            Self::AppState => "md-app-state",
            Self::LinkThumbnail => "thumbnail-link",
            Self::ImageThumbnail => "thumbnail-image",
            Self::VideoThumbnail => "thumbnail-video",
            Self::DocumentThumbnail => "thumbnail-document",
            Self::StickerPack => "sticker-pack",
            Self::StickerPackThumbnail => "thumbnail-sticker-pack",
            Self::PaymentBgImage => "payment-bg-image",
            Self::Product => "product",
        }
    }

    /// Parses Baileys' name for a type ([`Self::name`]), also accepting its aliases `gif`
    /// and `ptv` (video keys) and `ptt` (audio keys). `None` for any other string.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "gif" | "ptv" => Some(Self::Video),
            "ptt" => Some(Self::Audio),
            _ => Self::ALL.into_iter().find(|t| t.name() == name),
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A media key: 32 random bytes drawn per upload (the `mediaKey` message field).
///
/// Secret: `Debug` is redacted and the bytes are zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MediaKey([u8; MEDIA_KEY_LEN]);

impl MediaKey {
    /// Wraps 32 key bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; MEDIA_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Copies a key out of a message field.
    ///
    /// # Errors
    /// [`MediaError::BadKeyLength`] unless `bytes` is exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, MediaError> {
        <[u8; MEDIA_KEY_LEN]>::try_from(bytes)
            .map(Self)
            .map_err(|_| MediaError::BadKeyLength(bytes.len()))
    }

    /// A fresh key of 32 bytes drawn from `rng` (whatsmeow `upload.go`: `random.Bytes(32)`).
    #[must_use]
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut key = Self([0; MEDIA_KEY_LEN]);
        rng.fill_bytes(&mut key.0);
        key
    }

    /// The 32 key bytes, for the `mediaKey` message field.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; MEDIA_KEY_LEN] {
        &self.0
    }

    /// Expands the key for `media_type`:
    /// `HKDF-SHA256(ikm = media key, salt = none, info = media_type.hkdf_info(), L = 112)`
    /// (shared/protocol/06 §2.1; whatsmeow `download.go` getMediaKeys).
    #[must_use]
    pub fn expand(&self, media_type: MediaType) -> ExpandedMediaKey {
        let mut okm = [0_u8; EXPANDED_MEDIA_KEY_LEN];
        // 112 bytes is far below HKDF-SHA256's 255 × 32 limit, so expand cannot fail.
        if Hkdf::<Sha256>::new(None, &self.0)
            .expand(media_type.hkdf_info().as_bytes(), &mut okm)
            .is_err()
        {
            unreachable!("HKDF-SHA256 expands 112 bytes");
        }
        let expanded = ExpandedMediaKey::from_okm(&okm);
        okm.zeroize();
        expanded
    }
}

impl fmt::Debug for MediaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MediaKey(..)")
    }
}

/// The four keys a media key expands to (shared/protocol/06 §2.1).
///
/// Secret: `Debug` is redacted and the bytes are zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ExpandedMediaKey {
    iv: [u8; 16],
    cipher_key: [u8; 32],
    mac_key: [u8; 32],
    ref_key: [u8; 32],
}

impl ExpandedMediaKey {
    fn from_okm(okm: &[u8; EXPANDED_MEDIA_KEY_LEN]) -> Self {
        let mut expanded = Self {
            iv: [0; 16],
            cipher_key: [0; 32],
            mac_key: [0; 32],
            ref_key: [0; 32],
        };
        // Constant ranges of a 112-byte array: these cannot panic.
        expanded.iv.copy_from_slice(&okm[..16]);
        expanded.cipher_key.copy_from_slice(&okm[16..48]);
        expanded.mac_key.copy_from_slice(&okm[48..80]);
        expanded.ref_key.copy_from_slice(&okm[80..]);
        expanded
    }

    /// The AES-CBC IV, bytes 0..16 of the expansion.
    #[must_use]
    pub fn iv(&self) -> &[u8; 16] {
        &self.iv
    }

    /// The AES-256 key, bytes 16..48.
    #[must_use]
    pub fn cipher_key(&self) -> &[u8; 32] {
        &self.cipher_key
    }

    /// The HMAC-SHA256 key, bytes 48..80.
    #[must_use]
    pub fn mac_key(&self) -> &[u8; 32] {
        &self.mac_key
    }

    /// The ref key, bytes 80..112: unused for encryption and download (whatsmeow returns it).
    #[must_use]
    pub fn ref_key(&self) -> &[u8; 32] {
        &self.ref_key
    }
}

impl fmt::Debug for ExpandedMediaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExpandedMediaKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13 item 7: Baileys' `payment-bg-image` and `product` kinds (Baileys
    /// `MEDIA_HKDF_KEY_MAPPING`: `Payment Background`, `Image`), download only.
    #[test]
    fn payment_background_and_product_kinds() {
        let bg = MediaType::from_name("payment-bg-image").expect("payment-bg-image");
        assert_eq!(bg.hkdf_info(), "WhatsApp Payment Background Keys");
        let product = MediaType::from_name("product").expect("product");
        assert_eq!(product.hkdf_info(), "WhatsApp Image Keys");
        assert_eq!((bg.upload_path(), product.mms_type()), (None, None));
    }
}
