//! Received media: its kind and `media` fields for the `message` event, and the stored
//! download reference plus `download_url` (and inline base64 for small files).

use std::time::Duration;

use wa_engine::Client;
use wa_proto::wa;

use super::record::{StoredMedia, b64};
use super::{Kind, download_path};
use crate::db::{ServerDb, key2};
use crate::state::AppState;

/// The kind of a (received) message's media, after unwrapping: `None` for other messages.
pub(crate) fn kind_of(message: &wa::Message) -> Option<Kind> {
    let m = wa_engine::message::content::unwrap(message);
    if m.image_message.is_some() {
        Some(Kind::Image)
    } else if m.video_message.is_some() || m.ptv_message.is_some() {
        Some(Kind::Video)
    } else if m.audio_message.is_some() {
        Some(Kind::Audio)
    } else if m.document_message.is_some() {
        Some(Kind::Document)
    } else if m.sticker_message.is_some() {
        Some(Kind::Sticker)
    } else {
        None
    }
}

/// The `media` object of a received media message (after unwrapping), without the parts
/// that need the session (see [`incoming`]): `kind`, `mimetype`, `size` (bytes), `caption`,
/// `file_name`, `seconds`, `voice_note`, `width`, `height`, `animated`, `page_count`.
/// `None` for messages without media.
pub(crate) fn media_fields(message: &wa::Message) -> Option<serde_json::Value> {
    use serde_json::json;
    let m = wa_engine::message::content::unwrap(message);
    let kind = kind_of(m)?.as_str();
    let v = if let Some(x) = &m.image_message {
        json!({ "mimetype": x.mimetype, "size": x.file_length, "caption": x.caption,
                "width": x.width, "height": x.height })
    } else if let Some(x) = m.video_message.as_ref().or(m.ptv_message.as_ref()) {
        json!({ "mimetype": x.mimetype, "size": x.file_length, "caption": x.caption,
                "width": x.width, "height": x.height, "seconds": x.seconds,
                "gif": x.gif_playback.unwrap_or(false) })
    } else if let Some(x) = &m.audio_message {
        json!({ "mimetype": x.mimetype, "size": x.file_length, "seconds": x.seconds,
                "voice_note": x.ptt.unwrap_or(false) })
    } else if let Some(x) = &m.document_message {
        json!({ "mimetype": x.mimetype, "size": x.file_length, "caption": x.caption,
                "file_name": x.file_name, "title": x.title, "page_count": x.page_count })
    } else if let Some(x) = &m.sticker_message {
        json!({ "mimetype": x.mimetype, "size": x.file_length, "width": x.width,
                "height": x.height, "animated": x.is_animated.unwrap_or(false) })
    } else {
        return None;
    };
    let mut v = v;
    if let serde_json::Value::Object(map) = &mut v {
        map.insert("kind".to_owned(), json!(kind));
    }
    Some(v)
}

/// How long an inline download of a small received file may take.
const INLINE_TIMEOUT: Duration = Duration::from_secs(30);

/// For a received media message of session `session`: stores its download reference (so
/// `GET .../media/{message_id}` works, also after a restart) and returns the fields to add
/// to its `media` object: `download_url` (absolute with `--public-url`), and `base64` of
/// the file when it is at most [`MediaSettings::inline_max_bytes`](crate::MediaSettings)
/// (`inline_error` when that download failed). `None` for messages without media or with
/// an unusable reference.
pub(crate) async fn incoming(
    state: &AppState,
    session: &str,
    client: Option<&Client>,
    message: &wa_engine::IncomingMessage,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    use serde_json::json;
    let inner = wa_engine::message::content::unwrap(&message.message);
    let kind = kind_of(inner)?;
    let file_name = inner
        .document_message
        .as_ref()
        .and_then(|d| d.file_name.clone());
    let stored = StoredMedia::of_message(kind, inner, file_name)?;
    let key = key2(session, &message.info.id);
    if let Err(e) = ServerDb::put(&state.db().media, key, &stored) {
        tracing::error!(%session, error = %e, "cannot store a media reference");
        return None;
    }
    let path = download_path(session, &message.info.id);
    let url = match &state.config().public_url {
        Some(base) => format!("{}{path}", base.trim_end_matches('/')),
        None => path,
    };
    let mut out = serde_json::Map::new();
    out.insert("download_url".to_owned(), json!(url));
    let limit = state.config().media.inline_max_bytes;
    let small = stored.file_length.is_some_and(|n| n <= limit);
    if limit > 0 && small {
        let fetched = match (client, stored.to_ref()) {
            (Some(client), Some(media)) => {
                tokio::time::timeout(INLINE_TIMEOUT, client.download(&media))
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
            _ => None,
        };
        match fetched {
            Some(bytes) => {
                out.insert("base64".to_owned(), json!(b64(&bytes)));
            }
            None => {
                out.insert("inline_error".to_owned(), json!("download failed"));
            }
        }
    }
    Some(out)
}
