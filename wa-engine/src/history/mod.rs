//! History sync, sans-IO: the chat history, contacts' push names, PN↔LID mappings,
//! trusted-contact tokens and the NCT salt the primary phone uploads for a companion
//! (shared/protocol/08-app-state-history-sync.md §9).
//!
//! Flow: a `HISTORY_SYNC_NOTIFICATION` peer message from our own primary names a blob
//! (`md-msg-hist`). The caller sends the [`receipt`], downloads the enc file and feeds it to
//! a [`BlobInflater`] (verified media decryption, then zlib inflation capped at
//! [`HistoryConfig::max_inflated`]); an `initialHistBootstrapInlinePayload` goes to
//! [`inflate`] instead. [`decode`] (or the lower-level [`HistoryItems`]) turns the inflated
//! `HistorySync` into a [`HistorySyncData`]. For large blobs stored locally, [`BlobVerifier`]
//! then [`HistoryStream`] process them in two passes with memory bounded by one conversation.
//!
//! No I/O, no clock. Sources: whatsmeow `message.go` (DownloadHistorySync, handleHistorySync),
//! `download.go`; Baileys 7.0.0-rc14 `Utils/history.js`; whatsapp-rust `src/history_sync.rs`,
//! `wacore/src/history_sync.rs`. Vectors: `shared/vectors/history_sync/`
//! (tests/history_sync_vectors.rs).

mod blob;
mod decode;
mod error;
mod stream;

pub use blob::{BlobInflater, compress_and_encrypt, decrypt_and_inflate, inflate};
pub use decode::{
    HistoryItem, HistoryItems, HistorySyncData, HistoryTcToken, LidMapping, PushName, decode,
};
pub use error::HistoryError;
pub use stream::{BlobVerifier, HistoryStream, PlainHistoryStream, inflate_items};

use crate::Jid;
use crate::binary::Node;

/// Default cap on the inflated size of one chunk: 64 MiB, whatsapp-rust's
/// `MAX_DECOMPRESSED` (typical initial-bootstrap chunks inflate to 5-20 MB).
pub const DEFAULT_MAX_INFLATED: usize = 64 * 1024 * 1024;

/// How history sync is processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Most bytes one chunk may inflate to; more fails with [`HistoryError::TooLarge`].
    pub max_inflated: usize,
    /// Keep message bodies. Off: conversations keep their metadata but no messages;
    /// tokens, mappings, push names and the salt are kept either way.
    pub keep_messages: bool,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            max_inflated: DEFAULT_MAX_INFLATED,
            keep_messages: true,
        }
    }
}

/// The `hist_sync` receipt for a history-sync notification:
/// `<receipt id="<message id>" type="hist_sync" to="<own user, no device>"/>`
/// (whatsmeow `SendProtocolMessageReceipt`; whatsapp-rust sends it before downloading, and
/// also when history sync is disabled, so the phone stops retrying).
#[must_use]
pub fn receipt(message_id: &str, own: &Jid) -> Node {
    Node::new("receipt")
        .attr("id", message_id.to_owned())
        .attr("type", "hist_sync")
        .attr("to", own.to_non_ad())
}
