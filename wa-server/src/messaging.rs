//! The one place wa-server turns an API request into an engine send.
//!
//! Building the `wa::Message` is done here (shared/protocol/05 §2.2: `conversation` for plain
//! text, `extendedTextMessage` with `contextInfo` for replies and mentions,
//! `locationMessage`, `contactMessage` with a vCard); the engine encrypts and sends it
//! (`Client::send_message_with`, 1:1 or group with sender keys) and answers number
//! checks (`Client::is_on_whatsapp`).

use wa_engine::{Client, Jid, MessageId};
use wa_proto::wa;

use crate::db::{MessageRecord, ServerDb, key2, now_ms};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::session::Session;
use crate::state::AppState;

/// Content of an outgoing message, already validated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outgoing {
    /// Text, optionally quoting a message and mentioning users.
    Text {
        body: String,
        /// Id of the quoted message and its sender (for groups), if replying.
        reply_to: Option<Quote>,
        mentions: Vec<Jid>,
    },
    /// A map pin.
    Location {
        latitude: f64,
        longitude: f64,
        name: Option<String>,
        address: Option<String>,
    },
    /// A contact card.
    Contact { name: String, phone: String },
    /// A media message already built from its upload (`routes/media.rs`); `kind` is its
    /// status `type` (`image`, `video`, `audio`, `document`, `sticker`).
    Media {
        kind: &'static str,
        message: Box<wa::Message>,
    },
}

/// The message a reply quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Quote {
    pub(crate) id: String,
    pub(crate) participant: Option<Jid>,
}

impl Outgoing {
    /// The `type` shown in the message status resource.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Location { .. } => "location",
            Self::Contact { .. } => "contact",
            Self::Media { kind, .. } => kind,
        }
    }
}

/// A vCard 3.0 with one phone number (the form WhatsApp clients send; 05 §2.2).
fn vcard(name: &str, phone_digits: &str) -> String {
    let escaped: String = name
        .chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            ',' | ';' | '\\' => vec!['\\', c],
            _ => vec![c],
        })
        .collect();
    format!(
        "BEGIN:VCARD\nVERSION:3.0\nFN:{escaped}\nTEL;type=CELL;waid={phone_digits}:+{phone_digits}\nEND:VCARD"
    )
}

/// Builds the protobuf message for `content`.
pub(crate) fn build_message(content: &Outgoing) -> wa::Message {
    match content {
        Outgoing::Text {
            body,
            reply_to: None,
            mentions,
        } if mentions.is_empty() => wa::Message {
            conversation: Some(body.clone()),
            ..Default::default()
        },
        Outgoing::Text {
            body,
            reply_to,
            mentions,
        } => {
            let context = wa::ContextInfo {
                stanza_id: reply_to.as_ref().map(|q| q.id.clone()),
                participant: reply_to
                    .as_ref()
                    .and_then(|q| q.participant.as_ref())
                    .map(ToString::to_string),
                mentioned_jid: mentions.iter().map(ToString::to_string).collect(),
                ..Default::default()
            };
            wa::Message {
                extended_text_message: Some(Box::new(wa::message::ExtendedTextMessage {
                    text: Some(body.clone()),
                    context_info: Some(Box::new(context)),
                    ..Default::default()
                })),
                ..Default::default()
            }
        }
        Outgoing::Location {
            latitude,
            longitude,
            name,
            address,
        } => wa::Message {
            location_message: Some(Box::new(wa::message::LocationMessage {
                degrees_latitude: Some(*latitude),
                degrees_longitude: Some(*longitude),
                name: name.clone(),
                address: address.clone(),
                ..Default::default()
            })),
            ..Default::default()
        },
        Outgoing::Media { message, .. } => (**message).clone(),
        Outgoing::Contact { name, phone } => wa::Message {
            contact_message: Some(Box::new(wa::message::ContactMessage {
                display_name: Some(name.clone()),
                vcard: Some(vcard(name, phone)),
                ..Default::default()
            })),
            ..Default::default()
        },
    }
}

/// Sends `content` to `to` (a user or a group: the engine distributes sender keys) and
/// records it as the message status resource `GET /api/sessions/{id}/messages/{msg_id}`.
///
/// The id is drawn here and the record written (and flushed) as `pending` *before* the
/// engine sees the message, so a crash or a failure never leaves a sent message without
/// a record; then `sent` on the server's ack, or `failed` with the error. Later receipts
/// move it on (`delivered`, `read`) through the session's `MessageStatus` events. `kind`
/// is the record's `type` (`text`, `location`, `contact`, `otp`). Returns the record as it
/// stands after the ack.
///
/// # Errors
/// The engine's `SendError` mapped by [`ApiError::from_send`] (409 `session_not_connected`,
/// 422 `recipient_unreachable`, 404 `group_not_found`, 403 `not_group_member`, 502/504
/// upstream errors); [`ApiError::Internal`] when the record cannot be written (nothing was
/// sent then).
pub(crate) async fn send(
    state: &AppState,
    session: &Session,
    client: &Client,
    to: &Jid,
    content: &Outgoing,
    kind: &str,
) -> Result<MessageRecord, ApiError> {
    let own = client.jid().ok_or(ApiError::NotConnected)?;
    let id = MessageId::generate(now_ms() / 1000, own.user(), &mut rand::rng());
    let now = now_ms();
    let record = MessageRecord {
        id: id.0.clone(),
        to: to.to_string(),
        kind: kind.to_owned(),
        status: "pending".to_owned(),
        error: None,
        created_at: now,
        updated_at: now,
    };
    let key = key2(&session.id, &record.id);
    ServerDb::put(&state.db().messages, &key, &record)?;
    state.db().flush().await?;
    tracing::debug!(session = %session.id, %to, kind, id = %record.id, "sending");
    match client
        .send_message_with(
            to,
            build_message(content),
            wa_engine::SendOptions::default().id(id),
        )
        .await
    {
        Ok(_) => {
            Metrics::inc(&state.metrics().messages_sent);
            state
                .advance_message(session, &record.id, "sent", None, None)
                .await;
            Ok(ServerDb::get(&state.db().messages, &key, "message")?.unwrap_or(record))
        }
        Err(e) => {
            Metrics::inc(&state.metrics().messages_failed);
            tracing::info!(session = %session.id, id = %record.id, error = %e, "send failed");
            let error = ApiError::from_send(e, to);
            let why = format!("{}: {error}", error.code());
            state
                .advance_message(session, &record.id, "failed", Some(&why), None)
                .await;
            Err(ApiError::SendFailed {
                message_id: record.id,
                inner: Box::new(error),
            })
        }
    }
}

/// For each number (E.164 digits), the user JID of its WhatsApp account, if it has one
/// (usync contact query, shared/protocol/06 §4), in the order given.
///
/// # Errors
/// The engine's `SendError` mapped by `From<SendError> for ApiError`.
pub(crate) async fn on_whatsapp(
    client: &Client,
    numbers: &[String],
) -> Result<Vec<Option<Jid>>, ApiError> {
    let asked: Vec<&str> = numbers.iter().map(String::as_str).collect();
    let found = client.is_on_whatsapp(&asked).await?;
    Ok(found
        .into_iter()
        .map(|(_, jid)| jid.map(|j| j.to_non_ad()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_a_conversation_and_replies_use_extended_text() {
        let plain = build_message(&Outgoing::Text {
            body: "hi".into(),
            reply_to: None,
            mentions: vec![],
        });
        assert_eq!(plain.conversation.as_deref(), Some("hi"));
        let reply = build_message(&Outgoing::Text {
            body: "yes @628123456789".into(),
            reply_to: Some(Quote {
                id: "3EB0ABC".into(),
                participant: None,
            }),
            mentions: vec![Jid::pn("628123456789")],
        });
        let ext = reply.extended_text_message.expect("extended text");
        let ctx = ext.context_info.expect("context");
        assert_eq!(ctx.stanza_id.as_deref(), Some("3EB0ABC"));
        assert_eq!(ctx.mentioned_jid, vec!["628123456789@s.whatsapp.net"]);
    }

    #[test]
    fn contact_cards_escape_the_name() {
        let m = build_message(&Outgoing::Contact {
            name: "Doe; John\n".into(),
            phone: "15551234567".into(),
        });
        let card = m.contact_message.expect("contact").vcard.expect("vcard");
        assert!(card.contains("FN:Doe\\; John\n"), "{card}");
        assert!(card.contains("waid=15551234567:+15551234567"));
    }
}
