//! The one place wa-server turns an API request into an engine send.
//!
//! Building the `wa::Message` is done here (shared/protocol/05 §2.2: `conversation` for plain
//! text, `extendedTextMessage` with `contextInfo` for replies and mentions,
//! `locationMessage`, `contactMessage` with a vCard). Handing it to the engine waits for the
//! engine's messaging API (issue 4: `Client::send_message(&Jid, wa::Message) ->
//! Result<MessageId, SendError>`, `Client::is_on_whatsapp`); until it lands every send is
//! [`ApiError::MessagingUnavailable`] and nothing else in the server needs to change.

use wa_engine::{Client, Jid};
use wa_proto::wa;

use crate::error::ApiError;

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

/// Sends `content` to `to`; returns the message id.
///
/// # Errors
/// [`ApiError::MessagingUnavailable`] until the engine's messaging API lands; then the
/// engine's `SendError` mapped by `From<SendError> for ApiError`.
pub(crate) async fn send(
    client: &Client,
    to: &Jid,
    content: &Outgoing,
) -> Result<String, ApiError> {
    let message = build_message(content);
    tracing::debug!(%to, kind = content.kind(), connected = client.is_connected(), "send requested");
    drop(message);
    Err(ApiError::MessagingUnavailable)
}

/// Whether each number (E.164 digits) has a WhatsApp account (usync contact query).
///
/// # Errors
/// [`ApiError::MessagingUnavailable`] until the engine's number check lands.
pub(crate) async fn on_whatsapp(
    client: &Client,
    numbers: &[String],
) -> Result<Vec<bool>, ApiError> {
    let _ = (client, numbers);
    Err(ApiError::MessagingUnavailable)
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
