//! The one place wa-server turns an API request into an engine send.
//!
//! The `wa::Message` is built with the engine's builders (shared/protocol/05 §2.2:
//! `conversation` for plain text, `extendedTextMessage` with `contextInfo` for replies and
//! mentions, `locationMessage`, `contactMessage` with a vCard); the engine encrypts and sends it
//! (`Client::send_message_with`, 1:1 or group with sender keys) and answers number
//! checks (`Client::is_on_whatsapp`).

use wa_engine::message::content as builders;
use wa_engine::{Client, Jid, MessageId};
use wa_proto::wa;

use crate::db::{MessageRecord, ServerDb, key2, now_ms};
use crate::error::ApiError;
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
    /// A message kept in the message log, sent again by a retry (`crate::msglog`); `kind`
    /// is its record's `type`.
    Stored {
        kind: &'static str,
        message: Box<wa::Message>,
    },
}

/// The message a reply quotes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Quote {
    pub(crate) id: String,
    pub(crate) participant: Option<Jid>,
    /// The quoted content, when the message log has it (shown above the reply).
    pub(crate) message: Option<Box<wa::Message>>,
}

impl Outgoing {
    /// The `type` shown in the message status resource.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Location { .. } => "location",
            Self::Contact { .. } => "contact",
            Self::Media { kind, .. } | Self::Stored { kind, .. } => kind,
        }
    }
}

/// Builds the protobuf message for `content` with the engine's builders
/// (`wa_engine::message::content`): `conversation` for plain text, `extendedTextMessage`
/// with a reply context and mentions (user JIDs, device parts dropped), `locationMessage`,
/// `contactMessage` with a one-number vCard.
pub(crate) fn build_message(content: &Outgoing) -> wa::Message {
    match content {
        Outgoing::Text {
            body,
            reply_to: None,
            mentions,
        } if mentions.is_empty() => builders::text(body.clone()),
        Outgoing::Text {
            body,
            reply_to,
            mentions,
        } => {
            // The quoted content comes from the message log when it has the message
            // (`routes::messages::send_text`); without it the reply still threads.
            let quote = reply_to.as_ref().map(|q| builders::Quote {
                id: q.id.clone(),
                sender: q.participant.clone(),
                message: q.message.as_deref().cloned(),
            });
            builders::extended_text(body.clone(), quote, mentions)
        }
        Outgoing::Location {
            latitude,
            longitude,
            name,
            address,
        } => builders::location(*latitude, *longitude, name.clone(), address.clone()),
        Outgoing::Media { message, .. } | Outgoing::Stored { message, .. } => (**message).clone(),
        Outgoing::Contact { name, phone } => {
            builders::contact(name.clone(), builders::vcard(name, phone))
        }
    }
}

/// Sends `content` to `to` (a user or a group: the engine distributes sender keys) and
/// records it as the message status resource `GET /api/sessions/{id}/messages/{msg_id}`
/// and in the message log (`crate::msglog`: with its text and content, except for OTPs).
///
/// The send limits (`crate::limits`) are checked first: every send of the server comes
/// through here, so none escapes them. With `SendLimitSettings::queue`, a send over the
/// rate or the recipient pacing is recorded `queued` instead and returned at once; the send
/// queue (`crate::sendqueue`) sends it later.
///
/// The id is drawn here and the record written (and flushed) as `pending` *before* the
/// engine sees the message, so a crash or a failure never leaves a sent message without
/// a record; then `sent` on the server's ack, or `failed` with the error. Later receipts
/// move it on (`delivered`, `read`) through the session's `MessageStatus` events. `kind`
/// is the record's `type` (`text`, `location`, `contact`, `otp`). Returns the record as it
/// stands after the ack.
///
/// # Errors
/// [`ApiError::SendLimited`] (nothing recorded, nothing sent);
/// the engine's `SendError` mapped by [`ApiError::from_send`] (409 `session_not_connected`,
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
    let queue = match state.admit_send(&session.id, to) {
        Ok(()) => false,
        Err(ApiError::SendLimited { limit, .. })
            if state.config().send_limits.queue
                && kind != "otp"
                && limit != crate::limits::SendLimit::DailyQuota =>
        {
            true
        }
        Err(e) => return Err(e),
    };
    let id = MessageId::generate(now_ms() / 1000, own.user(), &mut rand::rng());
    let message = build_message(content);
    let mut record = MessageRecord::outgoing(id.0.clone(), to.to_string(), kind.to_owned());
    // An OTP's text is its code: never kept (only its hash is, in the `otp` tree).
    if kind != "otp" {
        record.text = wa_engine::message::Content::of(&message)
            .text()
            .map(str::to_owned);
        record.content = Some(crate::msglog::encode_content(&message));
    }
    if queue {
        record.status = "queued".to_owned();
        for change in &mut record.timeline {
            change.status = "queued".to_owned();
        }
    }
    let key = key2(&session.id, &record.id);
    ServerDb::put(&state.db().messages, &key, &record)?;
    crate::msglog::index(state.db(), &session.id, &record)?;
    if queue {
        crate::sendqueue::push(state.db(), &session.id, &record)?;
    }
    state.db().flush().await?;
    if queue {
        tracing::debug!(session = %session.id, %to, kind, id = %record.id, "queued");
        state.limits().queued.notify_one();
        return Ok(record);
    }
    dispatch(state, session, client, to, message, record).await
}

/// Hands an already recorded (and flushed) `pending` message to the engine under its
/// record's id, then records `sent` or `failed` (see [`send`]).
///
/// # Errors
/// As [`send`], after the record was written.
pub(crate) async fn dispatch(
    state: &AppState,
    session: &Session,
    client: &Client,
    to: &Jid,
    message: wa::Message,
    record: MessageRecord,
) -> Result<MessageRecord, ApiError> {
    let key = key2(&session.id, &record.id);
    let kind = record.kind.as_str();
    tracing::debug!(session = %session.id, %to, kind, id = %record.id, "sending");
    let id = MessageId(record.id.clone());
    match client
        .send_message_with(to, message, wa_engine::SendOptions::default().id(id))
        .await
    {
        Ok(_) => {
            state.metrics().message_sent(&session.id);
            crate::session::Counters::bump(&session.counters.messages_sent);
            state
                .advance_message(session, &record.id, "sent", None, None)
                .await;
            Ok(ServerDb::get(&state.db().messages, &key, "message")?.unwrap_or(record))
        }
        Err(e) => {
            state.metrics().message_failed(&session.id);
            crate::session::Counters::bump(&session.counters.messages_failed);
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
                message: None,
            }),
            mentions: vec![Jid::pn("628123456789")],
        });
        let ext = reply.extended_text_message.expect("extended text");
        let ctx = ext.context_info.expect("context");
        assert_eq!(ctx.stanza_id.as_deref(), Some("3EB0ABC"));
        assert_eq!(ctx.mentioned_jid, vec!["628123456789@s.whatsapp.net"]);
    }

    #[test]
    fn replies_and_mentions_name_users_without_their_device_part() {
        // The engine's builder drops device parts (05 §2.2: `participant` and `mentionedJid`
        // are user JIDs), which the server's own copy of it did not.
        let reply = build_message(&Outgoing::Text {
            body: "ok @628123456789".into(),
            reply_to: Some(Quote {
                id: "3EB0DEF".into(),
                participant: Some(Jid::pn("628111111111").with_device(2)),
                message: None,
            }),
            mentions: vec![Jid::pn("628123456789").with_device(7)],
        });
        let ctx = reply
            .extended_text_message
            .and_then(|e| e.context_info)
            .expect("context");
        assert_eq!(
            ctx.participant.as_deref(),
            Some("628111111111@s.whatsapp.net")
        );
        assert_eq!(ctx.mentioned_jid, vec!["628123456789@s.whatsapp.net"]);
        assert_eq!(ctx.quoted_message, None);
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
