//! `<ib>` (in-band) stanzas from the server: `dirty`, `offline_preview`, `offline`,
//! `edge_routing`. None is acked (03 §11).
//!
//! | child | handling | event |
//! |---|---|---|
//! | `dirty type timestamp` | clean IQ; `syncd_app_state` re-syncs every collection | [`crate::Event::Dirty`] |
//! | `offline_preview count appdata message notification receipt` | none | [`crate::Event::OfflineSyncPreview`] |
//! | `offline count` | none (the replay is over) | [`crate::Event::OfflineSyncCompleted`] |
//! | `edge_routing` / `routing_info` (bytes) | stored, sent in the next `ED` pre-intro | [`crate::Event::EdgeRoutingUpdated`] |
//! | anything else | none | the whole `<ib>` as [`crate::Event::Stanza`] |
//!
//! Sources: whatsmeow `connectionevents.go` `handleIB` (offline_preview, offline; it leaves
//! dirty and edge_routing alone); whatsapp-rust `handlers/ib.rs` and
//! `wacore/noise/src/edge_routing.rs` (edge routing stored in the device record and sent
//! as `ED 00 01 || len (3 bytes, BE) || routing_info || WA 06 03`, shared/protocol/01
//! §2.1). whatsmeow never sends the pre-intro; we follow whatsapp-rust.
//!
//! # Storage
//!
//! The routing info is an engine app value (`wa.edge` / `routing_info`), written in its own
//! atomic batch. A 515 restart or a reconnect never deletes it; only
//! [`Store::wipe`](crate::store::Store::wipe) (logout, device removed) does. The
//! [`Connection`] reads it at [`Connection::new`] when the driver passes no
//! [`Config::routing_info`](super::Config::routing_info).

use std::time::Instant;

use super::Connection;
use super::pending::Waiter;
use super::state::State;
use crate::binary::Node;
use crate::notification::OfflinePreview;
use crate::stanza::iq;
use crate::store::{Store, StoreBatch};

/// Engine app-value namespace of the edge-routing record.
pub(crate) const NS: &str = "wa.edge";
/// Key of the routing info in [`NS`].
const KEY: &[u8] = b"routing_info";

/// The stored routing info, if any (a read failure is logged and reads as none: the
/// connection then goes without the pre-intro, which the server accepts).
pub(crate) fn load_routing_info(store: &dyn Store) -> Option<Vec<u8>> {
    match store.app_value(NS, KEY) {
        Ok(v) => v.map(|b| b.as_bytes().to_vec()).filter(|b| !b.is_empty()),
        Err(e) => {
            tracing::warn!(error = %e, "ib: cannot read the edge routing info");
            None
        }
    }
}

impl Connection {
    /// One `<ib>` stanza (see the module table).
    pub(super) fn handle_ib(&mut self, now: Instant, node: Node) {
        let mut unhandled = false;
        for child in node.children() {
            match child.tag.as_ref() {
                "dirty" => self.on_dirty(now, child),
                "offline_preview" => {
                    self.events
                        .push_back(crate::Event::OfflineSyncPreview(OfflinePreview::parse(
                            child,
                        )));
                }
                "offline" => {
                    let count = child
                        .get_attr_str("count")
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(0);
                    tracing::debug!(count, "connection: offline queue drained");
                    self.events
                        .push_back(crate::Event::OfflineSyncCompleted { count });
                }
                "edge_routing" => {
                    if let Some(info) = child
                        .child_by_tag("routing_info")
                        .and_then(Node::content_bytes)
                        .filter(|b| !b.is_empty())
                    {
                        self.on_edge_routing(info.to_vec());
                    }
                }
                _ => unhandled = true,
            }
        }
        if unhandled {
            self.events.push_back(crate::Event::Stanza(node));
        }
    }

    /// `<dirty type timestamp>`: the clean IQ (03 §10), and for `syncd_app_state` a re-sync of
    /// all five collections (whatsapp-rust; 08 §8).
    fn on_dirty(&mut self, now: Instant, child: &Node) {
        let (Some(kind), Some(ts)) = (child.get_attr_str("type"), child.get_attr_str("timestamp"))
        else {
            return;
        };
        if !matches!(self.state, State::Connected(_)) {
            return;
        }
        let id = self.next_iq_id();
        let clean = iq::clean_dirty(&id, kind, ts);
        if self.send_internal(&clean) {
            self.pending
                .insert(id, Waiter::CleanDirty, now + self.config.timing.iq_timeout);
        }
        if kind == "syncd_app_state" {
            self.in_sync(now, |s, cx| {
                s.sync(cx, &crate::appstate::Collection::ALL);
            });
        }
        self.events.push_back(crate::Event::Dirty {
            kind: kind.to_owned(),
            timestamp: ts.parse().unwrap_or(0),
        });
    }

    /// New routing info: stored (own batch), kept for [`Connection::routing_info`].
    fn on_edge_routing(&mut self, info: Vec<u8>) {
        let mut batch = StoreBatch::new();
        batch.put_app_value(NS, KEY, info.clone());
        let stored = match self.store.apply(batch) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "ib: cannot store the edge routing info");
                false
            }
        };
        tracing::debug!(len = info.len(), stored, "connection: edge routing info");
        let len = info.len();
        self.routing_info = Some(info);
        self.events
            .push_back(crate::Event::EdgeRoutingUpdated { len, stored });
    }
}
