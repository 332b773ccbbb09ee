//! Reading the file of a send and the fields that come with it, whichever way they came
//! (JSON with a URL or base64, or a multipart form), and checking them: field rules per
//! kind, the declared MIME type's shape, the sniffed type against the kind's allow-list.

use axum::extract::Multipart;
use axum::extract::multipart::{Field, MultipartError};
use axum::http::{HeaderValue, StatusCode};
use base64::Engine as _;

use super::Kind;
use super::fetch::{fetch, parse_url};
use super::sniff;
use super::temp::{Received, Sink};
use crate::error::{ApiError, MediaApiError};
use crate::phone::parse_recipient;
use crate::state::AppState;

/// Longest caption, characters (as a text message).
const MAX_CAPTION: usize = 65_536;
/// Longest file name, characters.
pub(crate) const MAX_FILE_NAME: usize = 255;
/// Largest text field of a multipart body, bytes.
const MAX_FORM_FIELD: usize = 256 * 1024;

/// The fields of a send, whichever way they came.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    /// Recipient as given (phone number or JID).
    pub(crate) to: Option<String>,
    /// Caption (image, video, document).
    pub(crate) caption: Option<String>,
    /// File name (documents).
    pub(crate) file_name: Option<String>,
    /// MIME type to announce when sniffing fails (documents).
    pub(crate) mimetype: Option<String>,
    /// Send audio as a voice note.
    pub(crate) voice_note: bool,
    /// Check the number is on WhatsApp first.
    pub(crate) check_number: bool,
    /// Send an image or video as view-once (the engine wraps it in `viewOnceMessageV2`).
    pub(crate) view_once: bool,
}
/// Decodes base64 (or a `data:` URL) into a temporary file.
async fn decode_base64(state: &AppState, text: String) -> Result<Received, ApiError> {
    let limit = state.config().media.max_bytes;
    let data = match text.trim_start().strip_prefix("data:") {
        Some(rest) => rest
            .split_once(";base64,")
            .map(|(_, data)| data)
            .ok_or(MediaApiError::InvalidBase64("a data: URL must be ;base64,"))?,
        None => text.as_str(),
    };
    // Line breaks (MIME-style base64) are dropped; the usual single line is not copied.
    let data: std::borrow::Cow<'_, str> = if data.bytes().any(|b| b.is_ascii_whitespace()) {
        data.chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect::<String>()
            .into()
    } else {
        data.into()
    };
    if data.is_empty() {
        return Err(MediaApiError::Missing("base64 is empty").into());
    }
    // Each 4 characters are 3 bytes: refuse early what must decode past the limit.
    if (data.len() as u64 / 4).saturating_mul(3) > limit.saturating_add(3) {
        return Err(MediaApiError::TooLarge { limit }.into());
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine
        .decode(data.as_bytes())
        .or_else(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(data.trim_end_matches('='))
        })
        .map_err(|_| MediaApiError::InvalidBase64("not valid base64"))?;
    drop(data);
    drop(text);
    let mut sink = Sink::create(state).await?;
    sink.write(&bytes).await?;
    sink.finish().await
}

/// Reads a text part of a multipart form (bounded).
async fn text_field(mut field: Field<'_>, name: &str) -> Result<String, ApiError> {
    let mut out = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if out.len() + chunk.len() > MAX_FORM_FIELD {
            return Err(ApiError::InvalidBody(format!("field {name} is too long")));
        }
        out.extend_from_slice(&chunk);
    }
    String::from_utf8(out).map_err(|_| ApiError::InvalidBody(format!("field {name} is not UTF-8")))
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        MediaApiError::Multipart(e.body_text()).into()
    }
}

fn parse_bool(value: &str, name: &str) -> Result<bool, ApiError> {
    match value.trim() {
        "true" | "1" | "on" | "yes" => Ok(true),
        "false" | "0" | "off" | "no" | "" => Ok(false),
        _ => Err(ApiError::InvalidBody(format!(
            "{name} must be true or false"
        ))),
    }
}

/// Reads a multipart form: text fields, and the `file` part streamed to a temporary file.
async fn read_multipart(
    state: &AppState,
    mut form: Multipart,
) -> Result<(Fields, Option<Received>, Option<String>), ApiError> {
    let mut fields = Fields::default();
    let mut file = None;
    let mut part_name = None;
    while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                if file.is_some() {
                    return Err(ApiError::InvalidBody("more than one file part".to_owned()));
                }
                part_name = field.file_name().map(str::to_owned);
                let mut sink = Sink::create(state).await?;
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    sink.write(&chunk).await?;
                }
                file = Some(sink.finish().await?);
            }
            "to" => fields.to = Some(text_field(field, "to").await?),
            "caption" => fields.caption = Some(text_field(field, "caption").await?),
            "file_name" => fields.file_name = Some(text_field(field, "file_name").await?),
            "mimetype" => fields.mimetype = Some(text_field(field, "mimetype").await?),
            "voice_note" => {
                fields.voice_note =
                    parse_bool(&text_field(field, "voice_note").await?, "voice_note")?;
            }
            "check_number" => {
                fields.check_number =
                    parse_bool(&text_field(field, "check_number").await?, "check_number")?;
            }
            "view_once" => {
                fields.view_once = parse_bool(&text_field(field, "view_once").await?, "view_once")?;
            }
            _ => {
                return Err(ApiError::InvalidBody(format!(
                    "unknown field `{}`",
                    name.chars().take(64).collect::<String>()
                )));
            }
        }
    }
    Ok((fields, file, part_name))
}

/// A file name safe to announce: the last path component, no control characters.
pub(crate) fn clean_file_name(raw: &str) -> Option<String> {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty() && cleaned != "." && cleaned != "..").then(|| cleaned.to_owned())
}

/// A declared MIME type must look like `type/subtype` (parameters allowed).
pub(crate) fn valid_mimetype(m: &str) -> bool {
    let essence = m.split(';').next().unwrap_or_default().trim();
    let mut parts = essence.splitn(2, '/');
    let ok = |s: Option<&str>| {
        s.is_some_and(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        })
    };
    m.len() <= 255 && ok(parts.next()) && ok(parts.next()) && HeaderValue::from_str(m).is_ok()
}

/// Checks the fields that do not depend on the file (also the Evolution dialect's multipart
/// `sendMedia`).
pub(crate) fn check_fields(kind: Kind, fields: &Fields) -> Result<(), ApiError> {
    if fields.view_once && !matches!(kind, Kind::Image | Kind::Video) {
        return Err(ApiError::InvalidBody(
            "view_once is for images and videos only".to_owned(),
        ));
    }
    if fields.voice_note && kind != Kind::Audio {
        return Err(ApiError::InvalidBody(
            "voice_note is for audio only".to_owned(),
        ));
    }
    if fields.caption.is_some() && matches!(kind, Kind::Audio | Kind::Sticker) {
        return Err(ApiError::InvalidBody(format!(
            "{} messages have no caption",
            kind.as_str()
        )));
    }
    if fields
        .caption
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_CAPTION)
    {
        return Err(ApiError::InvalidBody(format!(
            "caption is at most {MAX_CAPTION} characters"
        )));
    }
    if fields.file_name.is_some() && kind != Kind::Document {
        return Err(ApiError::InvalidBody(
            "file_name is for documents only".to_owned(),
        ));
    }
    if fields
        .file_name
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_FILE_NAME)
    {
        return Err(ApiError::InvalidBody(format!(
            "file_name is at most {MAX_FILE_NAME} characters"
        )));
    }
    match &fields.mimetype {
        Some(_) if kind != Kind::Document => Err(ApiError::InvalidBody(
            "mimetype is for documents only (other kinds are sniffed)".to_owned(),
        )),
        Some(m) if !valid_mimetype(m) => Err(ApiError::InvalidBody(
            "mimetype must look like type/subtype".to_owned(),
        )),
        _ => Ok(()),
    }
}

/// The MIME type to send: sniffed and checked against the kind's allow-list.
pub(crate) fn checked_mimetype(
    kind: Kind,
    fields: &Fields,
    head: &[u8],
) -> Result<String, ApiError> {
    let sniffed = sniff(head);
    if kind == Kind::Document {
        return Ok(sniffed
            .map(str::to_owned)
            .or_else(|| fields.mimetype.clone())
            .unwrap_or_else(|| "application/octet-stream".to_owned()));
    }
    match sniffed {
        Some(m) if kind.allowed(m, fields.voice_note) => Ok(m.to_owned()),
        other => Err(MediaApiError::TypeNotAllowed {
            kind: if fields.voice_note {
                "voice_note"
            } else {
                kind.as_str()
            },
            mimetype: other.unwrap_or("unknown").to_owned(),
            allowed: kind.allowed_list(fields.voice_note),
        }
        .into()),
    }
}

/// The fields and file of a multipart send (`form` parsed from the request): read, checked
/// for `kind`; a document without `file_name` takes the part's file name.
pub(crate) async fn from_multipart(
    state: &AppState,
    kind: Kind,
    form: Multipart,
) -> Result<(Fields, Received), ApiError> {
    let (mut fields, file, part_name) = read_multipart(state, form).await?;
    check_fields(kind, &fields)?;
    let file = file.ok_or(MediaApiError::Missing("no `file` part in the form"))?;
    if kind == Kind::Document && fields.file_name.is_none() {
        fields.file_name = part_name.as_deref().and_then(clean_file_name);
    }
    Ok((fields, file))
}

/// The file of a JSON send: `fields` are checked for `kind` (and the recipient parsed)
/// first, then the file fetched from `url` or decoded from `base64` (exactly one); a
/// document without `file_name` takes the last segment of the fetched URL.
pub(crate) async fn from_json(
    state: &AppState,
    kind: Kind,
    mut fields: Fields,
    url: Option<String>,
    base64: Option<String>,
) -> Result<(Fields, Received), ApiError> {
    check_fields(kind, &fields)?;
    parse_recipient(
        fields.to.as_deref().unwrap_or_default(),
        state.config().default_country_code.as_deref(),
    )?;
    let file = match (url, base64) {
        (Some(url), None) => {
            let (file, name) = fetch(state, parse_url(&url)?).await?;
            if kind == Kind::Document && fields.file_name.is_none() {
                fields.file_name = name;
            }
            file
        }
        (None, Some(data)) => decode_base64(state, data).await?,
        (Some(_), Some(_)) => {
            return Err(MediaApiError::Missing("give url or base64, not both").into());
        }
        (None, None) => return Err(MediaApiError::Missing("give url or base64").into()),
    };
    Ok((fields, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_paths_and_control_characters() {
        assert_eq!(
            clean_file_name("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(
            clean_file_name("C:\\x\\in\nvoice.pdf").as_deref(),
            Some("invoice.pdf")
        );
        assert_eq!(clean_file_name("dir/"), None);
        assert_eq!(clean_file_name(".."), None);
    }

    #[test]
    fn declared_mimetypes_are_checked() {
        assert!(valid_mimetype("text/csv"));
        assert!(valid_mimetype("text/plain; charset=utf-8"));
        assert!(!valid_mimetype("text"));
        assert!(!valid_mimetype("a/b\r\nx: y"));
    }
}
