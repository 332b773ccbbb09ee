//! Media host URLs and the upload reply, sans-IO (shared/protocol/06 §2.4–2.6).
//!
//! - upload: `POST {scheme}://{host}/mms/{mms type}/{token}?auth={auth}&token={token}` with
//!   the enc file as body; the reply is JSON `{"url", "direct_path", …}` ([`UploadResponse`]);
//! - download: `GET {scheme}://{host}{direct_path}` plus whatsmeow's query
//!   (`hash`, `mms-type`, `__wa-mms`), which the host ignores for routing.
//!
//! The scheme is `https` for WhatsApp's hosts; the sandbox serves `http` on loopback, so it is
//! a parameter ([`Scheme`]).

use std::fmt::Write as _;

use serde::Deserialize;

use super::{MediaType, upload_token};

/// The scheme media URLs are built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Scheme {
    /// `https`: WhatsApp's media hosts (the default).
    #[default]
    Https,
    /// `http`: a local media host such as wa-sandbox's, on loopback.
    Http,
}

impl Scheme {
    /// `https` or `http`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Https => "https",
            Self::Http => "http",
        }
    }
}

/// Why an upload reply or URL could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The media type has no upload path (the Baileys-only thumbnail kinds).
    #[error("media type {0} has no upload path")]
    NoUploadPath(MediaType),
    /// The upload reply is not the expected JSON object.
    #[error("upload reply is not valid JSON with url and direct_path")]
    BadUploadReply(#[source] serde_json::Error),
    /// The upload reply's `direct_path` does not start with `/`.
    #[error("upload reply has a direct path that is not absolute")]
    BadDirectPath,
}

/// The upload URL for a file whose `fileEncSha256` is `file_enc_sha256`:
/// `{scheme}://{hostname}/mms/{mms type}/{token}?auth={auth}&token={token}`, where the token
/// is [`upload_token`] (base64url, unpadded: URL-safe as is) and `auth` is percent-encoded
/// like JavaScript's `encodeURIComponent` (Baileys `getWAUploadToServer`; whatsmeow
/// `upload.go` rawUpload).
///
/// # Errors
/// [`UrlError::NoUploadPath`] for types that are never uploaded on their own.
#[cfg_attr(not(feature = "runtime"), allow(dead_code))] // used by the runtime transfer
pub(crate) fn upload_url(
    scheme: Scheme,
    hostname: &str,
    media_type: MediaType,
    file_enc_sha256: &[u8; 32],
    auth: &str,
) -> Result<String, UrlError> {
    let path = media_type
        .upload_path()
        .ok_or(UrlError::NoUploadPath(media_type))?;
    let token = upload_token(file_enc_sha256);
    let mut url = format!("{}://{hostname}{path}/{token}?auth=", scheme.as_str());
    encode_component(auth, &mut url);
    url.push_str("&token=");
    url.push_str(&token);
    Ok(url)
}

/// The download URL for a direct path on `hostname`, whatsmeow's form
/// (`download.go` DownloadMediaWithPath):
/// `{scheme}://{hostname}{direct_path}{? or &}hash={token}&mms-type={mms type}&__wa-mms=`.
/// Real direct paths already carry a query (`…enc?ccb=11-4`), so the parameters are joined
/// with `&`; otherwise with `?`. The token is unpadded base64url (whatsmeow pads; hosts
/// route on the path only). Types without an mms type omit `mms-type`.
#[must_use]
#[cfg_attr(not(feature = "runtime"), allow(dead_code))] // used by the runtime transfer
pub(crate) fn download_url(
    scheme: Scheme,
    hostname: &str,
    direct_path: &str,
    file_enc_sha256: Option<&[u8; 32]>,
    media_type: MediaType,
) -> String {
    let mut url = format!("{}://{hostname}{direct_path}", scheme.as_str());
    let mut sep = if direct_path.contains('?') { '&' } else { '?' };
    if let Some(hash) = file_enc_sha256 {
        let _ = write!(url, "{sep}hash={}", upload_token(hash));
        sep = '&';
    }
    if let Some(mms) = media_type.mms_type() {
        let _ = write!(url, "{sep}mms-type={mms}&__wa-mms=");
    }
    url
}

/// The JSON a media host answers an upload with (shared/protocol/06 §2.4).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct UploadResponse {
    /// `url`: a full download URL (the message's `url` field).
    pub url: String,
    /// `direct_path`: the path on any media host (the message's `directPath`), starting
    /// with `/`.
    pub direct_path: String,
    /// `handle`, returned for newsletter uploads.
    #[serde(default)]
    pub handle: Option<String>,
    /// `object_id`, when the host returns one.
    #[serde(default)]
    pub object_id: Option<String>,
}

impl UploadResponse {
    /// Parses a reply body.
    ///
    /// # Errors
    /// [`UrlError::BadUploadReply`] unless the body is a JSON object with string `url` and
    /// `direct_path`; [`UrlError::BadDirectPath`] unless the direct path starts with `/`.
    pub fn parse(body: &[u8]) -> Result<Self, UrlError> {
        let reply: Self = serde_json::from_slice(body).map_err(UrlError::BadUploadReply)?;
        if !reply.direct_path.starts_with('/') {
            return Err(UrlError::BadDirectPath);
        }
        Ok(reply)
    }
}

/// Percent-encodes like JavaScript's `encodeURIComponent`: everything but
/// `A–Z a–z 0–9 - _ . ! ~ * ' ( )` as `%XX` of its UTF-8 bytes.
#[cfg_attr(not(feature = "runtime"), allow(dead_code))] // used by the runtime transfer
fn encode_component(input: &str, out: &mut String) {
    for byte in input.bytes() {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'~'
            | b'*'
            | b'\''
            | b'('
            | b')' => out.push(char::from(byte)),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// fileEncSha256 of the spec vector (shared/protocol/06 §2.2).
    const ENC_SHA: [u8; 32] = [
        0x8f, 0x3d, 0x2b, 0xf5, 0x3d, 0x10, 0x5a, 0x52, 0x70, 0x9a, 0xf6, 0x0e, 0x7d, 0x21, 0xe5,
        0x64, 0xff, 0xed, 0x7d, 0x5a, 0x96, 0xd7, 0xcc, 0xf7, 0x89, 0xfd, 0x4d, 0x36, 0x85, 0x71,
        0x0c, 0x6e,
    ];

    #[test]
    fn upload_url_follows_the_reference_layout_with_encoded_auth() {
        let url = upload_url(
            Scheme::Https,
            "mmg.whatsapp.net",
            MediaType::Image,
            &ENC_SHA,
            "a/b+c=",
        )
        .unwrap();
        assert_eq!(
            url,
            "https://mmg.whatsapp.net/mms/image/jz0r9T0QWlJwmvYOfSHlZP_tfVqW18z3if1NNoVxDG4\
             ?auth=a%2Fb%2Bc%3D&token=jz0r9T0QWlJwmvYOfSHlZP_tfVqW18z3if1NNoVxDG4"
        );
        assert!(matches!(
            upload_url(Scheme::Http, "h", MediaType::ImageThumbnail, &ENC_SHA, "a"),
            Err(UrlError::NoUploadPath(_))
        ));
    }

    #[test]
    fn download_url_joins_parameters_after_an_existing_query() {
        let url = download_url(
            Scheme::Http,
            "127.0.0.1:9",
            "/v/t62.7118-24/1.enc?ccb=11-4",
            Some(&ENC_SHA),
            MediaType::Document,
        );
        assert_eq!(
            url,
            "http://127.0.0.1:9/v/t62.7118-24/1.enc?ccb=11-4\
             &hash=jz0r9T0QWlJwmvYOfSHlZP_tfVqW18z3if1NNoVxDG4&mms-type=document&__wa-mms="
        );
        let bare = download_url(Scheme::Https, "h", "/p", None, MediaType::Audio);
        assert_eq!(bare, "https://h/p?mms-type=audio&__wa-mms=");
    }

    #[test]
    fn upload_reply_needs_url_and_an_absolute_direct_path() {
        let ok = UploadResponse::parse(
            br#"{"url":"https://h/v/x.enc?ccb=11-4","direct_path":"/v/x.enc?ccb=11-4","ts":1}"#,
        )
        .unwrap();
        assert_eq!(ok.direct_path, "/v/x.enc?ccb=11-4");
        assert!(matches!(
            UploadResponse::parse(br#"{"url":"u"}"#),
            Err(UrlError::BadUploadReply(_))
        ));
        assert!(matches!(
            UploadResponse::parse(br#"{"url":"u","direct_path":"v/x"}"#),
            Err(UrlError::BadDirectPath)
        ));
    }
}
