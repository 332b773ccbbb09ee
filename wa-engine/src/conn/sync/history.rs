//! History sync on the connection (shared/protocol/08 §9; whatsmeow `message.go`
//! handleHistorySyncNotification / DownloadHistorySync; whatsapp-rust `src/history_sync.rs`).
//!
//! Choices:
//! - The `hist_sync` receipt goes out when the notification arrives, before the download
//!   (whatsapp-rust: "so the phone considers this chunk delivered and stops retrying";
//!   whatsmeow sends it after downloading). Sent whatever the application's opt-out says.
//! - An `initialHistBootstrapInlinePayload` is inflated directly; otherwise the blob
//!   (`md-msg-hist`) is downloaded through [`Event::Download`](crate::conn::Event::Download),
//!   whose plaintext arrives verified (MAC, both hashes, length).
//! - The compressed chunk is inflated and decoded field by field as its bytes stream in
//!   ([`PlainHistoryStream`], fed by `Connection::handle_download_data`): neither the
//!   compressed nor the inflated chunk is ever whole in memory, inflating past
//!   `HistoryConfig::max_inflated` (64 MiB) fails (inflate bomb), and what was decoded is
//!   kept only once the download verified.
//! - With no app-state key yet (the key share was lost or withheld), a history sync also
//!   starts a full app-state sync, as Baileys 7 syncs after the first history sync: the
//!   collections park on the keys they need and our primary is asked for them.
//! - PN↔LID mappings, trusted-contact tokens (key: the peer's LID user JID when the
//!   conversation names it, 07 §2.2; value `privacy::TcToken::to_bytes`) and the NCT salt
//!   are stored in one batch, always; then one [`crate::Event::HistorySync`] carries
//!   conversations (messages only if `keep_messages`), push names and mappings.

use wa_proto::wa::message::HistorySyncNotification;

use super::{Download, Syncd};
use crate::conn::messaging::Context;
use crate::event::HistorySyncEvent;
use crate::history::{
    self, HistoryConfig, HistoryError, HistoryItem, HistorySyncData, PlainHistoryStream,
};
use crate::media::{MediaKey, MediaRef, MediaType};
use crate::message::MessageInfo;
use crate::privacy::TcToken;
use crate::store::StoreBatch;

fn hash32(bytes: Option<&[u8]>) -> Option<[u8; 32]> {
    bytes.and_then(|b| <[u8; 32]>::try_from(b).ok())
}

impl Syncd {
    /// A `HISTORY_SYNC_NOTIFICATION` from our primary.
    pub(super) fn on_history_notification(
        &mut self,
        cx: &mut Context<'_>,
        info: &MessageInfo,
        notification: HistorySyncNotification,
    ) {
        if let Some(own) = cx.own.clone() {
            cx.wire.send_internal(&history::receipt(&info.id, &own));
        }
        self.sync_even_without_keys(cx);
        if let Some(inline) = notification
            .initial_hist_bootstrap_inline_payload
            .as_deref()
            .filter(|p| !p.is_empty())
        {
            self.process_history(cx, &info.id, &notification, inline);
            return;
        }
        let key = notification
            .media_key
            .as_deref()
            .and_then(|k| MediaKey::from_slice(k).ok());
        let (Some(key), Some(path)) = (key, notification.direct_path.clone()) else {
            tracing::warn!("sync: history notification without media key or path");
            return;
        };
        let media = MediaRef {
            media_type: MediaType::History,
            direct_path: Some(path),
            url: None,
            media_key: key,
            file_sha256: hash32(notification.file_sha256.as_deref()),
            file_enc_sha256: hash32(notification.file_enc_sha256.as_deref()),
            file_length: notification.file_length,
            mimetype: None,
        };
        let progress = Box::new(HistoryProgress::new(self.history.clone()));
        self.download(
            cx,
            media,
            Download::History {
                message_id: info.id.clone(),
                notification: Box::new(notification),
                progress,
            },
        );
    }

    /// Inflates, decodes and applies one compressed history chunk given whole (an inline
    /// payload).
    pub(super) fn process_history(
        &mut self,
        cx: &mut Context<'_>,
        message_id: &str,
        notification: &HistorySyncNotification,
        compressed: &[u8],
    ) {
        let mut progress = HistoryProgress::new(self.history.clone());
        progress.feed(compressed);
        self.finish_history(cx, message_id, notification, progress);
    }

    /// Ends a chunk whose bytes all arrived (and, for a download, verified): store what it
    /// implies in one batch, then emit its event.
    pub(super) fn finish_history(
        &mut self,
        cx: &mut Context<'_>,
        message_id: &str,
        notification: &HistorySyncNotification,
        progress: HistoryProgress,
    ) {
        let mut data = match progress.finish() {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "sync: history chunk rejected");
                return;
            }
        };
        let mut batch = StoreBatch::new();
        for m in &data.lid_mappings {
            batch.put_lid_mapping(m.pn.user(), m.lid.user());
        }
        for t in &data.tc_tokens {
            let record = TcToken {
                token: t.token.clone(),
                timestamp: Some(t.timestamp),
                sender_timestamp: t.sender_timestamp,
            };
            batch.put_tc_token(&t.jid.to_non_ad().to_string(), record.to_bytes());
        }
        if let Some(salt) = &data.nct_salt {
            batch.put_nct_salt(salt.clone());
        }
        if let Err(e) = cx.store.apply(batch) {
            tracing::warn!(error = %e, "sync: cannot store history-sync data");
            return;
        }
        tracing::info!(
            sync_type = ?data.sync_type,
            chunk = ?notification.chunk_order,
            conversations = data.conversations.len(),
            mappings = data.lid_mappings.len(),
            tokens = data.tc_tokens.len(),
            salt = data.nct_salt.is_some(),
            "sync: history chunk processed"
        );
        data.tc_tokens.clear();
        data.nct_salt = None;
        cx.events
            .push_back(crate::Event::HistorySync(Box::new(HistorySyncEvent {
                message_id: message_id.to_owned(),
                data,
            })));
    }
}

/// A history chunk being inflated and decoded as its compressed bytes arrive. What it
/// decodes is provisional until [`Self::finish`] and the download's verification.
#[derive(Debug)]
pub(super) struct HistoryProgress {
    config: HistoryConfig,
    stream: PlainHistoryStream,
    items: Vec<HistoryItem>,
    data: HistorySyncData,
    error: Option<HistoryError>,
}

impl HistoryProgress {
    pub(super) fn new(config: HistoryConfig) -> Self {
        Self {
            stream: PlainHistoryStream::new(&config),
            config,
            items: Vec::new(),
            data: HistorySyncData::default(),
            error: None,
        }
    }

    /// Takes the next compressed bytes; the first error is kept for [`Self::finish`].
    pub(super) fn feed(&mut self, compressed: &[u8]) {
        if self.error.is_some() {
            return;
        }
        match self.stream.update(compressed, &mut self.items) {
            Ok(()) => {
                for item in self.items.drain(..) {
                    self.data.add(item, &self.config);
                }
            }
            Err(e) => {
                self.items.clear();
                // Drop what was decoded: nothing of a bad chunk is kept.
                self.data = HistorySyncData::default();
                self.error = Some(e);
            }
        }
    }

    fn finish(self) -> Result<HistorySyncData, HistoryError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.stream.finish()?;
        Ok(self.data)
    }
}
