//! Sending a media message once its file is read and checked: recipient, number check,
//! upload, message, status record, stored download reference.

use crate::db::{MessageRecord, ServerDb, key2};
use crate::error::ApiError;
use crate::messaging::{self, Outgoing};
use crate::phone::parse_recipient;
use crate::session::Session;
use crate::state::AppState;

use super::intake::{Fields, checked_mimetype, clean_file_name};
use super::record::StoredMedia;
use super::temp::Received;
use super::upload::upload_and_build;
use super::{Kind, download_path};

/// A media message handed to the engine.
#[derive(Debug)]
pub(crate) struct Sent {
    /// Its status record.
    pub(crate) record: MessageRecord,
    /// The sniffed MIME type sent.
    pub(crate) mimetype: String,
    /// Size of the file, bytes.
    pub(crate) size: u64,
    /// The path of its download route.
    pub(crate) download_url: String,
}

/// Sends `received` as a `kind` message with `fields` (already checked by [`super::intake`])
/// from `session`: the MIME type is sniffed and checked, the number checked when asked, the
/// file uploaded and the message recorded `pending` before the engine sees it, then `sent`
/// or `failed`, as text. The temporary file is removed once uploaded.
pub(crate) async fn send(
    state: &AppState,
    session: &Session,
    kind: Kind,
    mut fields: Fields,
    received: Received,
) -> Result<Sent, ApiError> {
    let id = &session.id;
    let to_raw = fields
        .to
        .as_deref()
        .ok_or_else(|| ApiError::InvalidBody("missing field `to`".to_owned()))?;
    let to = parse_recipient(to_raw, default_cc(state))?;
    let mimetype = checked_mimetype(kind, &fields, &received.head)?;
    if let Some(name) = fields.file_name.take() {
        fields.file_name = Some(
            clean_file_name(&name)
                .ok_or_else(|| ApiError::InvalidBody("file_name is empty".to_owned()))?,
        );
    }
    let client = session.connected_client()?;
    let mut to = to;
    if fields.check_number && to.is_pn() {
        let found = messaging::on_whatsapp(&client, &[to.user().to_owned()]).await?;
        match found.into_iter().next().flatten() {
            // Send to the account's own JID (it may differ from the number as typed).
            Some(jid) => to = jid,
            None => return Err(ApiError::NotOnWhatsApp),
        }
    }
    let file_name = fields.file_name.clone();
    let message = match upload_and_build(&client, kind, &received, mimetype.clone(), fields).await {
        Ok(message) => message,
        Err(e) => {
            state.metrics().message_failed(id);
            return Err(e);
        }
    };
    drop(received.temp);
    let stored = StoredMedia::of_message(kind, &message, file_name);
    let content = Outgoing::Media {
        kind: kind.as_str(),
        message: Box::new(message),
    };
    // Recorded `pending` before the engine sees it, then `sent` or `failed`, as text.
    let record = messaging::send(state, session, &client, &to, &content, kind.as_str()).await?;
    if let Some(stored) = stored {
        ServerDb::put(&state.db().media, key2(id, &record.id), &stored)?;
    }
    Ok(Sent {
        download_url: download_path(id, &record.id),
        record,
        mimetype,
        size: received.len,
    })
}

fn default_cc(state: &AppState) -> Option<&str> {
    state.config().default_country_code.as_deref()
}
