//! Evolution's shapes of native things: a message row (`prepareMessage` in
//! `whatsapp.baileys.service.ts`: `key`, `pushName`, `status`, `message` in Baileys' proto
//! JSON, `messageType`, `messageTimestamp`, `instanceId`, `source`), instance states and
//! message statuses.

use base64::Engine as _;
use serde_json::{Map, Value, json};
use wa_proto::wa;

use crate::db::MessageRecord;
use crate::session::SessionStatus;

/// Evolution's connection state of a native status: `open`, `connecting` or `close`.
pub(crate) fn state_of(status: SessionStatus) -> &'static str {
    match status {
        SessionStatus::Connected => "open",
        SessionStatus::Connecting | SessionStatus::Qr | SessionStatus::PairingCode => "connecting",
        SessionStatus::LoggedOut | SessionStatus::Stopped => "close",
    }
}

/// Evolution's message status (`utils/renderStatus.ts`) of a native one.
pub(crate) fn status_of(status: &str) -> &'static str {
    match status {
        "sent" => "SERVER_ACK",
        "delivered" | "received" => "DELIVERY_ACK",
        "read" => "READ",
        "played" => "PLAYED",
        "failed" => "ERROR",
        _ => "PENDING",
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn put(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        map.insert(key.to_owned(), v);
    }
}

/// `messageType` and `message` (Baileys' proto JSON, camelCase, bytes as base64) of a
/// message; `extendedTextMessage` is rewritten to `conversation` as Evolution does.
pub(crate) fn message_json(m: &wa::Message) -> (&'static str, Value) {
    if let Some(text) = &m.conversation {
        return ("conversation", json!({ "conversation": text }));
    }
    if let Some(ext) = &m.extended_text_message {
        return (
            "conversation",
            json!({ "conversation": ext.text.clone().unwrap_or_default() }),
        );
    }
    if let Some(img) = &m.image_message {
        let mut o = Map::new();
        put(&mut o, "url", img.url.clone().map(Value::from));
        put(&mut o, "mimetype", img.mimetype.clone().map(Value::from));
        put(&mut o, "caption", img.caption.clone().map(Value::from));
        put(
            &mut o,
            "fileLength",
            img.file_length.map(|n| json!(n.to_string())),
        );
        put(&mut o, "height", img.height.map(Value::from));
        put(&mut o, "width", img.width.map(Value::from));
        put(
            &mut o,
            "mediaKey",
            img.media_key.as_deref().map(|k| json!(b64(k))),
        );
        put(
            &mut o,
            "directPath",
            img.direct_path.clone().map(Value::from),
        );
        return ("imageMessage", json!({ "imageMessage": o }));
    }
    if let Some(v) = &m.video_message {
        let mut o = Map::new();
        put(&mut o, "url", v.url.clone().map(Value::from));
        put(&mut o, "mimetype", v.mimetype.clone().map(Value::from));
        put(&mut o, "caption", v.caption.clone().map(Value::from));
        put(&mut o, "seconds", v.seconds.map(Value::from));
        put(
            &mut o,
            "fileLength",
            v.file_length.map(|n| json!(n.to_string())),
        );
        put(&mut o, "directPath", v.direct_path.clone().map(Value::from));
        return ("videoMessage", json!({ "videoMessage": o }));
    }
    if let Some(a) = &m.audio_message {
        let mut o = Map::new();
        put(&mut o, "url", a.url.clone().map(Value::from));
        put(&mut o, "mimetype", a.mimetype.clone().map(Value::from));
        put(&mut o, "seconds", a.seconds.map(Value::from));
        put(&mut o, "ptt", a.ptt.map(Value::from));
        put(
            &mut o,
            "fileLength",
            a.file_length.map(|n| json!(n.to_string())),
        );
        put(&mut o, "directPath", a.direct_path.clone().map(Value::from));
        return ("audioMessage", json!({ "audioMessage": o }));
    }
    if let Some(d) = &m.document_message {
        let mut o = Map::new();
        put(&mut o, "url", d.url.clone().map(Value::from));
        put(&mut o, "mimetype", d.mimetype.clone().map(Value::from));
        put(&mut o, "title", d.title.clone().map(Value::from));
        put(&mut o, "fileName", d.file_name.clone().map(Value::from));
        put(
            &mut o,
            "fileLength",
            d.file_length.map(|n| json!(n.to_string())),
        );
        put(&mut o, "directPath", d.direct_path.clone().map(Value::from));
        return ("documentMessage", json!({ "documentMessage": o }));
    }
    if let Some(s) = &m.sticker_message {
        let mut o = Map::new();
        put(&mut o, "url", s.url.clone().map(Value::from));
        put(&mut o, "mimetype", s.mimetype.clone().map(Value::from));
        put(&mut o, "isAnimated", s.is_animated.map(Value::from));
        put(&mut o, "directPath", s.direct_path.clone().map(Value::from));
        return ("stickerMessage", json!({ "stickerMessage": o }));
    }
    if let Some(l) = &m.location_message {
        let mut o = Map::new();
        put(
            &mut o,
            "degreesLatitude",
            l.degrees_latitude.map(Value::from),
        );
        put(
            &mut o,
            "degreesLongitude",
            l.degrees_longitude.map(Value::from),
        );
        put(&mut o, "name", l.name.clone().map(Value::from));
        put(&mut o, "address", l.address.clone().map(Value::from));
        return ("locationMessage", json!({ "locationMessage": o }));
    }
    if let Some(c) = &m.contact_message {
        return (
            "contactMessage",
            json!({ "contactMessage": { "displayName": c.display_name, "vcard": c.vcard } }),
        );
    }
    if let Some(r) = &m.reaction_message {
        let key = r
            .key
            .as_ref()
            .map(|k| json!({ "remoteJid": k.remote_jid, "fromMe": k.from_me, "id": k.id }));
        return (
            "reactionMessage",
            json!({ "reactionMessage": { "key": key, "text": r.text,
                "senderTimestampMs": r.sender_timestamp_ms.map(|t| t.to_string()) } }),
        );
    }
    for (name, poll) in [
        ("pollCreationMessage", &m.poll_creation_message),
        ("pollCreationMessageV3", &m.poll_creation_message_v3),
    ] {
        if let Some(p) = poll {
            let options: Vec<Value> = p
                .options
                .iter()
                .map(|o| json!({ "optionName": o.option_name }))
                .collect();
            let body = json!({ "name": p.name, "options": options,
                "selectableOptionsCount": p.selectable_options_count.unwrap_or(0) });
            let mut out = Map::new();
            out.insert(name.to_owned(), body);
            return (
                if name == "pollCreationMessage" {
                    "pollCreationMessage"
                } else {
                    "pollCreationMessageV3"
                },
                Value::Object(out),
            );
        }
    }
    ("unknown", json!({}))
}

/// The message row of a message of the log: `instance_id` is the instance's id, `push_name`
/// the sender's name when known.
pub(crate) fn record_row(
    record: &MessageRecord,
    instance_id: &str,
    push_name: Option<&str>,
) -> Value {
    let content = crate::msglog::decode_content(record);
    let (kind, message) = match &content {
        Some(m) => message_json(m),
        None => (
            "conversation",
            json!({ "conversation": record.text.clone().unwrap_or_default() }),
        ),
    };
    let from_me = record.direction == "out";
    let mut key = json!({ "remoteJid": record.to, "fromMe": from_me, "id": record.id });
    if record.to.ends_with("@g.us")
        && let (Some(sender), Value::Object(k)) = (&record.sender, &mut key)
    {
        k.insert("participant".to_owned(), json!(sender));
    }
    json!({
        "key": key,
        "pushName": push_name.unwrap_or(""),
        "status": status_of(&record.status),
        "message": message,
        "contextInfo": null,
        "messageType": kind,
        "messageTimestamp": record.created_at / 1000,
        "instanceId": instance_id,
        "source": if from_me { "unknown" } else { "android" },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_statuses_map_to_evolution_names() {
        assert_eq!(state_of(SessionStatus::Connected), "open");
        assert_eq!(state_of(SessionStatus::Qr), "connecting");
        assert_eq!(state_of(SessionStatus::LoggedOut), "close");
        assert_eq!(status_of("sent"), "SERVER_ACK");
        assert_eq!(status_of("received"), "DELIVERY_ACK");
        assert_eq!(status_of("pending"), "PENDING");
        assert_eq!(status_of("failed"), "ERROR");
    }

    #[test]
    fn extended_text_reads_as_conversation() {
        let m = wa_engine::message::content::text("hi".to_owned());
        assert_eq!(
            message_json(&m),
            ("conversation", json!({"conversation": "hi"}))
        );
    }
}
