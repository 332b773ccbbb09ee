//! WAHA's `WAMessage` (shared/compat/waha.md §4), rendered in one place for every answer
//! and event that carries one: the `message` / `message.any` webhook payloads
//! ([`super::hooks`]), the send answers ([`super::send`]) and the chat message listings
//! ([`super::chats`]). Each source (a native `message` event, a message-log row) is read
//! into [`Facts`], and [`Facts::render`] writes the twelve required fields the same way,
//! so a message looks the same whether it arrived by webhook or was listed later.
//!
//! Ids: `<fromMe>_<chatId>_<message id>`, with `_<participant>` appended for a group
//! message someone else sent (WAHA's serialized key). `from`/`to`: the chat and the own
//! account, in the message's direction. Acks: outgoing messages by their native status
//! ([`super::hooks::ack_of`]), received ones `2 DEVICE` (delivered to this device).

use serde_json::{Value, json};

use super::chat_id;
use super::hooks::ack_of;
use crate::db::MessageRecord;
use crate::session::Session;
use crate::state::AppState;

/// Native message kinds that carry a file (`crate::incoming::kind`, `crate::media::Kind`).
const MEDIA_KINDS: [&str; 7] = [
    "image", "video", "gif", "audio", "ptt", "document", "sticker",
];

/// What a `WAMessage` says about one message, whatever its source.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    /// The native message id.
    pub(crate) id: String,
    /// Sent by this account (through the API or from its phone).
    pub(crate) from_me: bool,
    /// The chat, as WAHA writes it (`<digits>@c.us`, `<id>@g.us`, `<id>@lid`).
    pub(crate) chat: String,
    /// In a group, who sent it (`""` otherwise, and for our own messages).
    pub(crate) participant: String,
    /// Unix seconds.
    pub(crate) timestamp: u64,
    /// Text or caption (`""` when none).
    pub(crate) body: String,
    /// Carries a file.
    pub(crate) has_media: bool,
    /// The native download path of the file (`""` when none).
    pub(crate) media_url: String,
    /// WAHA's ack number and name.
    pub(crate) ack: (i8, &'static str),
    /// `api` (sent through wa-server) or `app` (received, or sent from the phone).
    pub(crate) source: &'static str,
}

impl Facts {
    /// The facts of a native `message` event's data (`crate::incoming`); `None` without an
    /// id.
    pub(crate) fn of_event(d: &Value) -> Option<Self> {
        let text = |k: &str| d.get(k).and_then(Value::as_str);
        let id = text("id")?;
        let from_me = d.get("from_me").and_then(Value::as_bool).unwrap_or(false);
        let is_group = d.get("is_group").and_then(Value::as_bool).unwrap_or(false);
        // A 1:1 chat by its phone number when known (WAHA's `@c.us`), else as addressed.
        let chat = chat_id(text("chat_pn").or_else(|| text("chat")).unwrap_or_default());
        let sender = chat_id(
            text("from_pn")
                .or_else(|| text("sender_user"))
                .unwrap_or_default(),
        );
        let media = d.get("media").filter(|m| !m.is_null());
        Some(Self {
            id: id.to_owned(),
            from_me,
            chat,
            participant: if is_group && !from_me {
                sender
            } else {
                String::new()
            },
            timestamp: d
                .get("timestamp")
                .and_then(Value::as_u64)
                .unwrap_or_default(),
            body: text("text")
                .or_else(|| media.and_then(|m| m.get("caption")).and_then(Value::as_str))
                .unwrap_or_default()
                .to_owned(),
            has_media: media.is_some(),
            media_url: media
                .and_then(|m| m.get("download_url"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            ack: if from_me {
                (1, "SERVER")
            } else {
                (2, "DEVICE")
            },
            source: "app",
        })
    }

    /// The facts of a message-log row of `session` (sent through the API, sent from the
    /// phone, or received). `timestamp` is when wa-server logged it (a received message's
    /// own time is not kept in the log).
    pub(crate) fn of_record(state: &AppState, session: &str, r: &MessageRecord) -> Self {
        let from_me = r.direction == "out";
        let is_group = r.to.ends_with("@g.us");
        let chat = chat_id(r.chat_pn.as_deref().unwrap_or(&r.to));
        let participant = if is_group && !from_me {
            chat_id(
                r.sender_pn
                    .as_deref()
                    .or(r.sender.as_deref())
                    .unwrap_or_default(),
            )
        } else {
            String::new()
        };
        let has_media = MEDIA_KINDS.contains(&r.kind.as_str());
        let media_url = if has_media {
            let path = crate::media::download_path(session, &r.id);
            match &state.config().public_url {
                Some(base) => format!("{}{path}", base.trim_end_matches('/')),
                None => path,
            }
        } else {
            String::new()
        };
        Self {
            id: r.id.clone(),
            from_me,
            chat,
            participant,
            timestamp: r.created_at / 1000,
            body: r.text.clone().unwrap_or_default(),
            has_media,
            media_url,
            ack: if from_me {
                ack_of(&r.status)
            } else {
                (2, "DEVICE")
            },
            // Our own sends have no sender; a message from the phone has one.
            source: if from_me && r.sender.is_none() {
                "api"
            } else {
                "app"
            },
        }
    }

    /// WAHA's serialized message id.
    pub(crate) fn waha_id(&self) -> String {
        let mut out = format!("{}_{}_{}", self.from_me, self.chat, self.id);
        if !self.participant.is_empty() {
            out.push('_');
            out.push_str(&self.participant);
        }
        out
    }

    /// The `WAMessage` JSON; `me` is the own `<digits>@c.us` (`""` before pairing).
    pub(crate) fn render(&self, me: &str) -> Value {
        let (from, to) = if self.from_me {
            (me.to_owned(), self.chat.clone())
        } else {
            (self.chat.clone(), me.to_owned())
        };
        json!({
            "id": self.waha_id(),
            "timestamp": self.timestamp,
            "from": from,
            "fromMe": self.from_me,
            "source": self.source,
            "to": to,
            "participant": self.participant,
            "body": self.body,
            "hasMedia": self.has_media,
            "mediaUrl": self.media_url,
            "ack": self.ack.0,
            "ackName": self.ack.1,
            "vCards": [],
            "_data": {},
        })
    }
}

/// The own `<digits>@c.us` of `session` (`""` before pairing).
pub(crate) fn me_id(session: &Session) -> String {
    session.live().jid.map(|j| chat_id(&j)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_and_ids_follow_waha() {
        let d = json!({"id": "AB", "chat": "1203@g.us", "from_pn": "15550001111@s.whatsapp.net",
            "is_group": true, "from_me": false, "timestamp": 1_700_000_000, "text": "hi", "media": null});
        let f = Facts::of_event(&d).expect("facts");
        assert_eq!(f.waha_id(), "false_1203@g.us_AB_15550001111@c.us");
        let v = f.render("15550002222@c.us");
        assert_eq!(v["from"], "1203@g.us");
        assert_eq!(v["to"], "15550002222@c.us");
        assert_eq!(v["participant"], "15550001111@c.us");
        assert_eq!(
            (v["ack"].as_i64(), v["ackName"].as_str()),
            (Some(2), Some("DEVICE"))
        );
    }
}
