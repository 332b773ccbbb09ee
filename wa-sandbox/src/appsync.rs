//! The app-state ("syncd") server: per account and collection a version, the accepted
//! patches in order and the live record set, and the `w:sync:app:state` IQ over them
//! (shared/protocol/08 §3, §11).
//!
//! The server holds no keys: patches and records are opaque bytes to it. What it does:
//! - **fetch** (`<collection name [version] return_snapshot>`): never a `<snapshot>` (it
//!   cannot compute `SyncdSnapshot.mac` without keys); a client asking for a snapshot, or at
//!   version 0 or without `version`, gets every patch from version 1 instead. That is design
//!   (b) of 08 §11: a client at version 0 applying patches 1..n reaches the same LTHash as
//!   from a snapshot, and whatsmeow (`appstate.go` fetchAppState) accepts a patch list when it
//!   asked for a snapshot (it only refuses a snapshot it did *not* ask for). Otherwise the
//!   patches newer than `version`, ascending, at most [`PAGE`] per answer with
//!   `has_more_patches="true"` when more are left.
//! - **send** (`<collection name version><patch>…</patch></collection>`): `version` must be the
//!   current server version, else `<error code="409"/>` with the patches the sender is missing
//!   (whatsmeow `sendAppState` applies them and resends once). An accepted patch is stored as
//!   version current+1 with `SyncdPatch.version` filled in (08 §3.2: "always set it"), the live
//!   record set is updated (SET replaces by index MAC, REMOVE deletes), and the caller tells
//!   every other device of the account with a `server_sync` notification.
//! - An unknown collection name gets `<collection name type="error"><error code="400"
//!   text="bad-request"/></collection>` (08 §11 item 1: a "fatal" code in whatsapp-rust's
//!   classification; the exact code is our choice).
//!
//! Every answer is one `<sync>` with one `<collection>` per requested one, in request order
//! (Baileys 7 and whatsapp-rust batch several collections per IQ; whatsmeow sends one). The
//! `version` attribute of an answered collection is the server's current version (08 §11 item
//! 4; no client reads it for anything else).

use std::collections::BTreeMap;
use std::str::FromStr as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use prost::Message as _;
use serde::{Deserialize, Serialize};
use wa_engine::appstate::Collection;
use wa_engine::binary::Node;
use wa_proto::wa::{SyncdPatch, SyncdRecord, SyncdVersion, syncd_mutation::SyncdOperation};

use crate::accounts::DevKey;
use crate::stanzas;

/// Most patches in one fetch answer; more are announced with `has_more_patches="true"`.
/// whatsapp-rust caps a sync at 500 *rounds* ("WA Web uses 500"); the real page size is not
/// known (08 §11 item 3), 500 patches is our choice.
pub(crate) const PAGE: usize = 500;

/// One accepted patch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredPatch {
    /// The device (of the collection's account) that uploaded it; 0 = the simulated phone.
    pub(crate) device: u16,
    /// The `SyncdPatch`, with `version` set to the version it was stored as.
    pub(crate) patch: SyncdPatch,
}

impl StoredPatch {
    /// The version the patch was stored as (1-based).
    pub(crate) fn version(&self) -> u64 {
        self.patch
            .version
            .as_ref()
            .and_then(|v| v.version)
            .unwrap_or(0)
    }
}

/// One collection of one account.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct CollectionLog {
    /// Accepted patches, version 1 first (`patches[i]` has version `i + 1`).
    pub(crate) patches: Vec<StoredPatch>,
    /// Live records by index MAC (32 bytes): what a snapshot would hold.
    pub(crate) records: BTreeMap<Vec<u8>, SyncdRecord>,
}

impl CollectionLog {
    /// The current version: the number of accepted patches (0 = empty).
    pub(crate) fn version(&self) -> u64 {
        self.patches.len() as u64
    }

    /// Patches with a version above `after`, ascending, at most [`PAGE`]; and whether more
    /// are left.
    pub(crate) fn after(&self, after: u64) -> (&[StoredPatch], bool) {
        let start = usize::try_from(after)
            .unwrap_or(usize::MAX)
            .min(self.patches.len());
        let end = start.saturating_add(PAGE).min(self.patches.len());
        (&self.patches[start..end], end < self.patches.len())
    }

    /// Appends a patch as version current+1 (setting `SyncdPatch.version`) and updates the
    /// live records. External mutations (`externalMutations`) are stored as they are; their
    /// records are not tracked (the server would have to download them).
    pub(crate) fn push(&mut self, device: u16, mut patch: SyncdPatch) -> u64 {
        let version = self.version() + 1;
        patch.version = Some(SyncdVersion {
            version: Some(version),
        });
        for m in &patch.mutations {
            let Some(record) = &m.record else { continue };
            let Some(index) = record.index.as_ref().and_then(|i| i.blob.clone()) else {
                continue;
            };
            if m.operation == Some(SyncdOperation::Remove as i32) {
                self.records.remove(&index);
            } else {
                self.records.insert(index, record.clone());
            }
        }
        self.patches.push(StoredPatch { device, patch });
        version
    }
}

/// A collection log as saved in the sandbox state file (`persist`): the patches as base64
/// `SyncdPatch` bytes with their uploading device; the live records are rebuilt from them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CollectionLogState {
    name: String,
    /// (device, base64 `SyncdPatch` with `version` set), version 1 first.
    patches: Vec<(u16, String)>,
}

impl CollectionLogState {
    /// The saved form of `log`.
    pub(crate) fn save(c: Collection, log: &CollectionLog) -> Self {
        Self {
            name: c.as_str().to_owned(),
            patches: log
                .patches
                .iter()
                .map(|p| (p.device, B64.encode(p.patch.encode_to_vec())))
                .collect(),
        }
    }

    /// The collection and its log back; `None` for an unknown collection name or a patch
    /// that is not base64 of a `SyncdPatch`.
    pub(crate) fn restore(&self) -> Option<(Collection, CollectionLog)> {
        let c = Collection::from_str(&self.name).ok()?;
        let mut log = CollectionLog::default();
        for (device, b64) in &self.patches {
            let bytes = B64.decode(b64).ok()?;
            log.push(*device, SyncdPatch::decode(bytes.as_slice()).ok()?);
        }
        Some((c, log))
    }
}

/// A send at a stale (or otherwise wrong) base version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Conflict {
    /// The server's version.
    pub(crate) current: u64,
}

/// Every account's collections.
#[derive(Debug, Default)]
pub(crate) struct AppStateServer {
    logs: BTreeMap<(String, Collection), CollectionLog>,
}

/// What one `w:sync:app:state` IQ did: the reply, and the collections that got a new patch
/// (account phone, collection, new version) for the `server_sync` notifications.
#[derive(Debug)]
pub(crate) struct IqOutcome {
    pub(crate) reply: Node,
    pub(crate) accepted: Vec<(Collection, u64)>,
}

impl AppStateServer {
    /// A collection's log (empty if nothing was ever stored).
    pub(crate) fn log(&self, phone: &str, c: Collection) -> Option<&CollectionLog> {
        self.logs.get(&(phone.to_owned(), c))
    }

    /// Stores `patch` from `device` on top of `base` (the sender's version).
    ///
    /// # Errors
    /// [`Conflict`] when `base` is not the current version.
    pub(crate) fn submit(
        &mut self,
        phone: &str,
        device: u16,
        c: Collection,
        base: u64,
        patch: SyncdPatch,
    ) -> Result<u64, Conflict> {
        let log = self.logs.entry((phone.to_owned(), c)).or_default();
        if base != log.version() {
            return Err(Conflict {
                current: log.version(),
            });
        }
        Ok(log.push(device, patch))
    }

    /// Forgets an account's app state (state import replaces the account).
    pub(crate) fn forget_account(&mut self, phone: &str) {
        self.logs.retain(|(p, _), _| p != phone);
    }

    /// Replaces a collection's log (state import).
    pub(crate) fn insert_log(&mut self, phone: &str, c: Collection, log: CollectionLog) {
        self.logs.insert((phone.to_owned(), c), log);
    }

    /// Every non-empty log of an account, by collection (state export).
    pub(crate) fn logs_of(&self, phone: &str) -> Vec<(Collection, &CollectionLog)> {
        self.logs
            .iter()
            .filter(|((p, _), _)| p == phone)
            .map(|((_, c), log)| (*c, log))
            .collect()
    }

    /// Answers a `w:sync:app:state` IQ from device `dev` (08 §3, §11): one `<collection>` per
    /// requested one, in order.
    pub(crate) fn answer(&mut self, dev: &DevKey, id: &str, iq: &Node) -> IqOutcome {
        let Some(sync) = iq.child_by_tag("sync") else {
            return IqOutcome {
                reply: stanzas::iq_error(id, 400, "bad-request"),
                accepted: Vec::new(),
            };
        };
        let mut accepted = Vec::new();
        let mut out = Vec::new();
        for node in sync.children_by_tag("collection") {
            let name = node.get_attr_str("name").unwrap_or_default().to_owned();
            let Ok(c) = Collection::from_str(&name) else {
                out.push(collection_error(
                    &name,
                    400,
                    "bad-request",
                    None,
                    &[],
                    false,
                ));
                continue;
            };
            let version = node
                .get_attr_str("version")
                .and_then(|v| v.parse::<u64>().ok());
            let patches: Vec<&Node> = node.children_by_tag("patch").collect();
            if patches.is_empty() {
                out.push(self.fetch(&dev.0, c, node, version));
            } else {
                out.push(self.send(dev, c, version.unwrap_or(0), &patches, &mut accepted));
            }
        }
        IqOutcome {
            reply: stanzas::iq_result(id, vec![Node::new("sync").with_children(out)]),
            accepted,
        }
    }

    fn fetch(&self, phone: &str, c: Collection, node: &Node, version: Option<u64>) -> Node {
        let snapshot = node.get_attr_str("return_snapshot") == Some("true");
        let from = if snapshot { 0 } else { version.unwrap_or(0) };
        let empty = CollectionLog::default();
        let log = self.log(phone, c).unwrap_or(&empty);
        let (page, more) = log.after(from);
        Node::new("collection")
            .attr("name", c.as_str())
            .attr("version", log.version().to_string())
            .attr_opt("has_more_patches", more.then(|| "true".to_owned()))
            .with_children([patches_node(page)])
    }

    fn send(
        &mut self,
        dev: &DevKey,
        c: Collection,
        base: u64,
        patches: &[&Node],
        accepted: &mut Vec<(Collection, u64)>,
    ) -> Node {
        let mut base = base;
        for p in patches {
            let Some(patch) = p.content_bytes().and_then(|b| SyncdPatch::decode(b).ok()) else {
                return collection_error(c.as_str(), 400, "bad-request", None, &[], false);
            };
            match self.submit(&dev.0, dev.1, c, base, patch) {
                Ok(v) => {
                    accepted.push((c, v));
                    base = v;
                }
                Err(Conflict { current }) => {
                    let log = self.log(&dev.0, c);
                    let (page, more) = log.map_or((&[][..], false), |l| l.after(base.min(current)));
                    return collection_error(
                        c.as_str(),
                        409,
                        "conflict",
                        Some(current),
                        page,
                        more,
                    );
                }
            }
        }
        Node::new("collection")
            .attr("name", c.as_str())
            .attr("version", base.to_string())
    }
}

/// `<patches><patch>SyncdPatch</patch>…</patches>` (empty `<patches/>` when up to date).
fn patches_node(page: &[StoredPatch]) -> Node {
    Node::new("patches").with_children(
        page.iter()
            .map(|p| Node::new("patch").with_bytes(p.patch.encode_to_vec())),
    )
}

/// `<collection name type="error" [version]><error code text/>[<patches>]</collection>`
/// (08 §3.2, whatsapp-rust `parse_collection_error`).
fn collection_error(
    name: &str,
    code: u16,
    text: &str,
    version: Option<u64>,
    page: &[StoredPatch],
    more: bool,
) -> Node {
    let mut children = vec![
        Node::new("error")
            .attr("code", code.to_string())
            .attr("text", text.to_owned()),
    ];
    if !page.is_empty() {
        children.push(patches_node(page));
    }
    Node::new("collection")
        .attr("name", name.to_owned())
        .attr("type", "error")
        .attr_opt("version", version.map(|v| v.to_string()))
        .attr_opt("has_more_patches", more.then(|| "true".to_owned()))
        .with_children(children)
}

/// `<notification from="s.whatsapp.net" type="server_sync" id t><collection name version/>…`
/// (08 §8, §11): another device changed these collections.
pub(crate) fn server_sync(id: &str, t: u64, changed: &[(Collection, u64)]) -> Node {
    Node::new("notification")
        .attr("from", stanzas::server_jid())
        .attr("type", "server_sync")
        .attr("id", id.to_owned())
        .attr("t", t.to_string())
        .with_children(changed.iter().map(|(c, v)| {
            Node::new("collection")
                .attr("name", c.as_str())
                .attr("version", v.to_string())
        }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa_proto::wa::{SyncdIndex, SyncdMutation};

    fn patch(index: u8, op: SyncdOperation) -> SyncdPatch {
        SyncdPatch {
            mutations: vec![SyncdMutation {
                operation: Some(op as i32),
                record: Some(SyncdRecord {
                    index: Some(SyncdIndex {
                        blob: Some(vec![index; 32]),
                    }),
                    ..SyncdRecord::default()
                }),
            }],
            ..SyncdPatch::default()
        }
    }

    fn send_iq(name: &str, version: u64, p: &SyncdPatch) -> Node {
        Node::new("iq")
            .attr("type", "set")
            .with_children([Node::new("sync").with_children([Node::new("collection")
                .attr("name", name.to_owned())
                .attr("version", version.to_string())
                .attr("return_snapshot", "false")
                .with_children([Node::new("patch").with_bytes(p.encode_to_vec())])])])
    }

    fn versions(collection: &Node) -> Vec<u64> {
        collection
            .child_by_tag("patches")
            .map(|ps| {
                ps.children_by_tag("patch")
                    .map(|p| {
                        SyncdPatch::decode(p.content_bytes().unwrap())
                            .unwrap()
                            .version
                            .unwrap()
                            .version
                            .unwrap()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn send_stores_at_next_version_and_conflicts_return_the_winners() {
        let mut s = AppStateServer::default();
        let dev: DevKey = ("1555".into(), 1);
        let out = s.answer(
            &dev,
            "1",
            &send_iq("regular_high", 0, &patch(1, SyncdOperation::Set)),
        );
        assert_eq!(out.accepted, [(Collection::RegularHigh, 1)]);
        let c = out
            .reply
            .child_by_tag("sync")
            .unwrap()
            .child_by_tag("collection")
            .unwrap();
        assert_eq!(c.get_attr_str("version"), Some("1"));
        assert!(c.get_attr_str("type").is_none());
        // A second device at the stale base 0: 409 and patch 1 inside.
        let other: DevKey = ("1555".into(), 2);
        let out = s.answer(
            &other,
            "2",
            &send_iq("regular_high", 0, &patch(2, SyncdOperation::Set)),
        );
        assert!(out.accepted.is_empty());
        let c = out
            .reply
            .child_by_tag("sync")
            .unwrap()
            .child_by_tag("collection")
            .unwrap();
        assert_eq!(c.get_attr_str("type"), Some("error"));
        assert_eq!(
            c.child_by_tag("error").unwrap().get_attr_str("code"),
            Some("409")
        );
        assert_eq!(versions(c), [1]);
        // Rebuilt on version 1 it is accepted as 2; REMOVE drops the live record.
        let out = s.answer(
            &other,
            "3",
            &send_iq("regular_high", 1, &patch(1, SyncdOperation::Remove)),
        );
        assert_eq!(out.accepted, [(Collection::RegularHigh, 2)]);
        let log = s.log("1555", Collection::RegularHigh).unwrap();
        assert!(log.records.is_empty());
        assert_eq!(log.patches[1].device, 2);
    }

    #[test]
    fn fetch_returns_all_patches_for_a_snapshot_and_newer_ones_otherwise() {
        let mut s = AppStateServer::default();
        for i in 0..3u8 {
            s.submit(
                "1555",
                0,
                Collection::CriticalBlock,
                u64::from(i),
                patch(i, SyncdOperation::Set),
            )
            .unwrap();
        }
        let iq = Node::new("iq")
            .attr("type", "set")
            .with_children([Node::new("sync").with_children([
                Node::new("collection")
                    .attr("name", "critical_block")
                    .attr("return_snapshot", "true"),
                Node::new("collection")
                    .attr("name", "critical_block")
                    .attr("version", "2")
                    .attr("return_snapshot", "false"),
                Node::new("collection")
                    .attr("name", "regular")
                    .attr("version", "0")
                    .attr("return_snapshot", "true"),
                Node::new("collection").attr("name", "bogus"),
            ])]);
        let out = s.answer(&("1555".into(), 1), "9", &iq);
        let sync = out.reply.child_by_tag("sync").unwrap();
        let cs: Vec<&Node> = sync.children_by_tag("collection").collect();
        assert_eq!(cs.len(), 4);
        assert!(cs[0].child_by_tag("snapshot").is_none());
        assert_eq!(versions(cs[0]), [1, 2, 3]);
        assert_eq!(cs[0].get_attr_str("version"), Some("3"));
        assert_eq!(versions(cs[1]), [3]);
        assert_eq!(versions(cs[2]), Vec::<u64>::new());
        assert!(cs[2].child_by_tag("patches").is_some());
        assert_eq!(cs[2].get_attr_str("version"), Some("0"));
        assert_eq!(cs[3].get_attr_str("type"), Some("error"));
        assert_eq!(
            cs[3].child_by_tag("error").unwrap().get_attr_str("code"),
            Some("400")
        );
    }

    #[test]
    fn fetch_pages_with_has_more_patches() {
        let mut s = AppStateServer::default();
        for i in 0..(PAGE as u64 + 2) {
            s.submit("1555", 0, Collection::Regular, i, SyncdPatch::default())
                .unwrap();
        }
        let log = s.log("1555", Collection::Regular).unwrap();
        let (page, more) = log.after(0);
        assert_eq!((page.len(), more), (PAGE, true));
        let (page, more) = log.after(PAGE as u64);
        assert_eq!((page.len(), more), (2, false));
        assert_eq!(page[1].version(), PAGE as u64 + 2);
    }
}
