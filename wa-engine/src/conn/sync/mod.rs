//! App-state sync and history sync inside the [`Connection`](super::Connection)
//! (shared/protocol/08 §2–§10, 07 §3.3): the sans-IO cores [`crate::appstate`] and
//! [`crate::history`] wired to the wire, the store and the public events.
//!
//! [`Syncd`] owns what is in flight on one connection (fetches, collections being applied,
//! downloads, our own patches) and caches the sync keys and collection states it loaded from
//! the store; everything durable is in the store, so a new connection resumes from the stored
//! versions. It borrows the messaging room's [`Context`] for each call.
//!
//! - Keys (§2): an `APP_STATE_SYNC_KEY_SHARE` peer message from our own primary (device 0,
//!   from-me, as whatsmeow and Baileys require) is stored key by key
//!   ([`StoredSyncKey`](crate::appstate::StoredSyncKey)) and triggers a sync of all five
//!   collections (whatsmeow `handleAppStateSyncKeyShare`). A snapshot or patch needing a key
//!   we lack parks its collection and sends an `APP_STATE_SYNC_KEY_REQUEST` peer message to
//!   our primary (once per key per connection; whatsmeow: once per 24 h); the next share
//!   resumes every parked collection.
//! - Sync (§3, §4, §6): one batched `w:sync:app:state` fetch for the collections asked
//!   (Baileys 7 / whatsapp-rust batch; whatsmeow sends one per IQ), snapshots and external
//!   mutations downloaded through [`Event::Download`](super::Event::Download), every MAC
//!   verified, `has_more_patches` followed. A collection whose MACs or LTHash do not verify
//!   is rebuilt from scratch once (version 0: snapshot or all patches), as whatsapp-rust and
//!   Baileys 7 do; a bad patch is never applied and the version never advances past it.
//!   Each applied snapshot or patch is stored in one batch with what it implies (push name,
//!   NCT salt, PN↔LID mappings), then one [`crate::Event::AppState`] per mutation.
//! - Triggers (§8): the key share; `<notification type="server_sync">` (every
//!   `<collection>`; those already at or past the announced version are skipped, as
//!   whatsapp-rust does); `<ib><dirty type="syncd_app_state">` (all five, whatsapp-rust);
//!   and login when sync keys are stored (resumes an interrupted sync; the server answers
//!   an up-to-date collection with no patches). Before the first key share nothing is
//!   fetched on these triggers (nothing could be decoded; the share syncs all), except
//!   after a history sync, which starts a full sync as in Baileys 7 so that a lost share is
//!   asked for.
//! - Push name (§10): once known (stored credentials at login, or `setting_pushName`), we
//!   send `<presence type="available" name=…>` so peers get plain delivery receipts and a
//!   `notify` name; `@` is stripped from the name as Baileys 7 does.
//! - Own patches (§3.3): [`Request::ChatAction`](super::Request::ChatAction).
//! - History (§9): see `history.rs`.

mod appstate;
mod history;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use prost::Message as _;
use wa_proto::wa::message::{HistorySyncNotification, ProtocolMessage, protocol_message};
use wa_proto::wa::{ExternalBlobReference, SyncdMutation, SyncdPatch, SyncdSnapshot};

use super::event::DownloadId;
use super::messaging::Context;
use super::request::RequestId;
use crate::Jid;
use crate::appstate::{ChatAction, Collection, CollectionState, KeyRing, OutgoingPatch};
use crate::binary::Node;
use crate::history::HistoryConfig;
use crate::message::{MessageId, MessageInfo, pad};
use crate::signal::{self, SignalError};

/// Conflict rounds of one own patch before it fails (whatsmeow resends once; whatsapp-rust
/// retries a few times).
const MAX_PATCH_ATTEMPTS: u32 = 3;

/// A protocol message the sync room consumes, taken out of the receive path by
/// [`take_sync_protocol`].
#[derive(Debug, Clone)]
pub(crate) struct SyncProtocol {
    pub(crate) info: MessageInfo,
    pub(crate) message: Box<ProtocolMessage>,
}

/// The receive-path hook: takes a decrypted message's `APP_STATE_SYNC_KEY_SHARE` or
/// `HISTORY_SYNC_NOTIFICATION` protocol message (shared/protocol/08 §2.2, §9.1) for the
/// sync room. `None` (the message goes on as usual) for anything else. The key share never
/// reaches the embedder: it carries secret key material.
pub(crate) fn take_sync_protocol(
    info: &MessageInfo,
    message: &mut wa_proto::wa::Message,
) -> Option<SyncProtocol> {
    let kind = message.protocol_message.as_ref()?.r#type?;
    let wanted = kind == protocol_message::Type::AppStateSyncKeyShare as i32
        || kind == protocol_message::Type::HistorySyncNotification as i32;
    if !wanted {
        return None;
    }
    Some(SyncProtocol {
        info: info.clone(),
        message: message.protocol_message.take()?,
    })
}

/// What a download is for.
#[derive(Debug)]
enum Download {
    Snapshot(Collection),
    External(Collection),
    History {
        message_id: String,
        notification: Box<HistorySyncNotification>,
        progress: Box<history::HistoryProgress>,
    },
}

/// A download in flight and the plaintext received so far.
#[derive(Debug)]
struct Downloading {
    what: Download,
    /// App-state blobs are small: buffered whole. History streams into its progress.
    buffer: Vec<u8>,
}

/// One collection's fetch response being applied.
#[derive(Debug, Default)]
struct Job {
    /// The fetch started from version 0 (a full sync).
    full: bool,
    /// The version before this response.
    start_version: u64,
    snapshot: Option<ExternalBlobReference>,
    snapshot_data: Option<SyncdSnapshot>,
    patches: VecDeque<SyncdPatch>,
    /// The downloaded external mutations of the first patch.
    external: Option<Vec<SyncdMutation>>,
    /// A download is in flight.
    waiting: bool,
    has_more: bool,
}

/// One of our own patches in flight.
#[derive(Debug)]
struct PatchOp {
    request: RequestId,
    action: ChatAction,
    attempts: u32,
    outgoing: Option<OutgoingPatch>,
}

/// The sync room of a connection.
#[derive(Debug, Default)]
pub(crate) struct Syncd {
    history: HistoryConfig,
    /// Sync keys, loaded from the store on first use.
    keys: Option<KeyRing>,
    /// Collection states, loaded from the store on first use.
    states: HashMap<Collection, CollectionState>,
    /// Collections with a fetch or a response in progress.
    fetching: BTreeSet<Collection>,
    /// Collections asked for again while fetching: fetched once more after.
    queued: BTreeSet<Collection>,
    /// Collections waiting for a key share.
    parked: BTreeSet<Collection>,
    /// Key ids asked for on this connection.
    key_requested: HashSet<Vec<u8>>,
    /// Collections being rebuilt from scratch after a verification failure.
    resynced: HashSet<Collection>,
    /// Fetch IQs in flight: op → (collection, from version 0).
    fetches: HashMap<u64, Vec<(Collection, bool)>>,
    jobs: HashMap<Collection, Job>,
    downloads: HashMap<u64, Downloading>,
    patches: HashMap<u64, PatchOp>,
    next: u64,
    /// The push name of the last `<presence type="available">` sent.
    presence_sent: Option<String>,
}

impl Syncd {
    /// A room that processes history with `history`.
    pub(crate) fn new(history: HistoryConfig) -> Self {
        Self {
            history,
            ..Self::default()
        }
    }

    fn next_id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// After `<success>`: announce ourselves available if the push name is known, and resume
    /// app-state sync when keys are stored.
    pub(crate) fn on_login(&mut self, cx: &mut Context<'_>) {
        self.presence_sent = None;
        self.send_presence(cx);
        if !self.keys(cx).is_empty() {
            self.sync(cx, &Collection::ALL);
        }
    }

    /// A protocol message taken by [`take_sync_protocol`] (already receipted by the receive
    /// path). Only our own primary (from-me, device 0) may send these.
    pub(crate) fn on_protocol(&mut self, cx: &mut Context<'_>, p: SyncProtocol) {
        if !p.info.from_me || p.info.sender.device() != 0 {
            tracing::warn!(sender = %p.info.sender, "sync protocol message not from our primary, ignored");
            return;
        }
        let message = *p.message;
        if let Some(share) = message.app_state_sync_key_share.as_ref() {
            self.on_key_share(cx, share);
        } else if let Some(notification) = message.history_sync_notification {
            self.on_history_notification(cx, &p.info, notification);
        }
    }

    /// `<presence type="available" name=…>` once per connection and push name (08 §10).
    pub(crate) fn send_presence(&mut self, cx: &mut Context<'_>) {
        let Some(name) = cx
            .creds
            .as_ref()
            .map(|c| c.push_name.replace('@', ""))
            .filter(|n| !n.is_empty())
        else {
            return;
        };
        if cx.own.is_none() || self.presence_sent.as_deref() == Some(name.as_str()) {
            return;
        }
        let node = crate::presence::own_presence(true, Some(&name));
        if cx.wire.send_internal(&node) {
            tracing::debug!("sync: presence available sent");
            self.presence_sent = Some(name);
        }
    }

    /// More (unverified) plaintext of a download.
    pub(crate) fn on_download_data(&mut self, id: DownloadId, chunk: &[u8]) {
        let Some(d) = self.downloads.get_mut(&id.0) else {
            return;
        };
        match &mut d.what {
            Download::History { progress, .. } => progress.feed(chunk),
            Download::Snapshot(_) | Download::External(_) => d.buffer.extend_from_slice(chunk),
        }
    }

    /// A download finished: `Ok` with its last plaintext bytes once the whole file verified,
    /// or why it failed.
    pub(crate) fn on_download(
        &mut self,
        cx: &mut Context<'_>,
        id: DownloadId,
        result: Result<Vec<u8>, String>,
    ) {
        let Some(Downloading { what, mut buffer }) = self.downloads.remove(&id.0) else {
            tracing::debug!(id = id.0, "sync: result of an unknown download");
            return;
        };
        match what {
            Download::Snapshot(c) | Download::External(c) => {
                let snapshot = matches!(what, Download::Snapshot(_));
                let result = result.map(|rest| {
                    buffer.extend_from_slice(&rest);
                    buffer
                });
                self.on_app_state_blob(cx, c, snapshot, result);
            }
            Download::History {
                message_id,
                notification,
                mut progress,
            } => match result {
                Ok(rest) => {
                    progress.feed(&rest);
                    self.finish_history(cx, &message_id, &notification, *progress);
                }
                Err(reason) => {
                    tracing::warn!(%reason, "sync: history blob download failed; its items are dropped");
                }
            },
        }
    }

    /// Queues a download of `media` for `what`.
    fn download(&mut self, cx: &mut Context<'_>, media: crate::media::MediaRef, what: Download) {
        let id = self.next_id();
        self.downloads.insert(
            id,
            Downloading {
                what,
                buffer: Vec::new(),
            },
        );
        cx.events.push_back(super::Event::Download {
            id: DownloadId(id),
            media: Box::new(super::event::BlobDownload(media)),
        });
    }

    /// Sends `message` as a peer message to our own primary phone (05 §13:
    /// `category="peer"`, one `<enc>`, `<meta appdata="default"/>`; whatsmeow
    /// `SendPeerMessage`, Baileys adds `push_priority="high_force"`). The session is the one
    /// our primary's own peer messages built; we try its PN address, then its LID.
    fn send_peer(&mut self, cx: &mut Context<'_>, message: &wa_proto::wa::Message) -> bool {
        let Some(own) = cx.own.clone() else {
            return false;
        };
        let mut candidates = vec![own.to_non_ad()];
        if let Some(lid) = cx
            .creds
            .as_ref()
            .and_then(|c| c.lid.as_deref())
            .and_then(|l| l.parse::<Jid>().ok())
        {
            candidates.push(lid.to_non_ad());
        }
        let padded = pad::pad(message.encode_to_vec(), &mut *cx.rng);
        for primary in candidates {
            let address = super::signal_address(&primary);
            match signal::encrypt(cx.store, &address, &padded) {
                Ok((kind, ciphertext)) => {
                    let id = MessageId::generate(cx.server_ms / 1000, own.user(), &mut *cx.rng);
                    let node = Node::new("message")
                        .attr("to", own.to_non_ad())
                        .attr("id", id.0)
                        .attr("type", "text")
                        .attr("category", "peer")
                        .attr("push_priority", "high_force")
                        .with_children([
                            Node::new("enc")
                                .attr("v", "2")
                                .attr("type", kind.as_str())
                                .with_bytes(ciphertext),
                            Node::new("meta").attr("appdata", "default"),
                        ]);
                    return cx.wire.send_internal(&node);
                }
                Err(SignalError::NoSession) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "sync: cannot encrypt a peer message");
                    return false;
                }
            }
        }
        tracing::warn!("sync: no session with our primary for a peer message");
        false
    }
}
