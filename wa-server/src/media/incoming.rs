//! Received media: its kind and `media` fields for the `message` event, and the stored
//! download reference plus `download_url` (and inline base64 for small files).

use std::sync::Arc;

use serde_json::{Value, json};
use wa_engine::Client;
use wa_engine::media::MediaRef;
use wa_proto::wa;

use super::inline::InlineJob;
use super::record::{StoredMedia, b64};
use super::{Kind, download_path};
use crate::db::{ServerDb, key2};
use crate::fanout;
use crate::session::Session;
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
/// that need the session (see [`emit_message`]): `kind`, `mimetype`, `size` (bytes), `caption`,
/// `file_name`, `seconds`, `voice_note`, `width`, `height`, `animated`, `page_count`.
/// `None` for messages without media.
pub(crate) fn media_fields(message: &wa::Message) -> Option<serde_json::Value> {
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

/// For a received media message of session `session`: stores its download reference (so
/// `GET .../media/{message_id}` works, also after a restart) and returns the fields to add
/// to its `media` object, `download_url` (absolute with `--public-url`), and whether the file
/// is to be put inline. `None` for messages without media or with an unusable reference.
fn reference(
    state: &AppState,
    session: &str,
    message: &wa_engine::IncomingMessage,
) -> Option<(serde_json::Map<String, Value>, Inline)> {
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
    // A session with `settings.auto_download_media` off never puts files inline.
    let limit = match state.session(session) {
        Ok(s) if !s.record().settings.auto_download_media => 0,
        _ => state.config().media.inline_max_bytes,
    };
    let small = stored.file_length.is_some_and(|n| n <= limit);
    let inline = match (limit > 0 && small, stored.to_ref()) {
        (false, _) => Inline::No,
        (true, Some(media)) => Inline::Download(media),
        (true, None) => Inline::Unusable,
    };
    Some((out, inline))
}

/// Whether a received file is put inline into its event.
enum Inline {
    /// No: inline files are off, or the file is larger than the limit.
    No,
    /// Yes: download it.
    Download(MediaRef),
    /// It should be, but its reference cannot be downloaded.
    Unusable,
}

/// Emits the `message` event of a received message (`data` is its
/// [`message_json`](crate::incoming::message_json)) from the session's event loop, without
/// waiting on the media host.
///
/// For a media message the download reference is stored first and `download_url` added to
/// `media`. When the file is small enough to be put inline
/// ([`MediaSettings::inline_max_bytes`](crate::MediaSettings)), the event goes to the inline
/// download workers ([`super::inline`]) and is emitted when the download ended, with
/// `base64` or `inline_error`; later events of the session do not wait for it. When their
/// queue is full (or closed for shutdown), or the session has no client, the event is
/// emitted at once with `inline_error` (the file stays downloadable at `download_url`).
pub(crate) async fn emit_message(
    state: &AppState,
    session: &Arc<Session>,
    client: Option<Client>,
    message: &wa_engine::IncomingMessage,
    mut data: Value,
) {
    let Some((extra, inline)) = reference(state, &session.id, message) else {
        fanout::enqueue(state, session, "message", data).await;
        return;
    };
    let Some(Value::Object(media)) = data.get_mut("media") else {
        fanout::enqueue(state, session, "message", data).await;
        return;
    };
    media.extend(extra);
    match (inline, client) {
        (Inline::No, _) => {}
        (Inline::Download(media), Some(client)) => {
            let job = InlineJob {
                session: session.clone(),
                client,
                media,
                data,
            };
            match state.inline_downloads().submit(job) {
                Ok(()) => return,
                Err(job) => {
                    tracing::warn!(session = %session.id, "inline download queue full or closed");
                    data = job.data;
                    set_inline(&mut data, None);
                }
            }
        }
        (Inline::Download(_) | Inline::Unusable, _) => set_inline(&mut data, None),
    }
    fanout::enqueue(state, session, "message", data).await;
}

/// Puts the inline file (`base64`) or `inline_error` into the event's `media` object.
pub(crate) fn set_inline(data: &mut Value, fetched: Option<Vec<u8>>) {
    if let Some(Value::Object(media)) = data.get_mut("media") {
        match fetched {
            Some(bytes) => {
                media.insert("base64".to_owned(), json!(b64(&bytes)));
            }
            None => {
                media.insert("inline_error".to_owned(), json!("download failed"));
            }
        }
    }
}
