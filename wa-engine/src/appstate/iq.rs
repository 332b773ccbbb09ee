//! The `w:sync:app:state` IQ: fetch and send requests, and the response parser
//! (shared/protocol/08 §3; whatsmeow `appstate.go` fetchAppStatePatches/sendAppState,
//! `appstate/decode.go` ParsePatchList; whatsapp-rust `parse_collection_error`).

use prost::Message as _;
use wa_proto::wa::{ExternalBlobReference, SyncdPatch};

use super::{AppStateError, Collection};
use crate::binary::{Content, Node};
use crate::stanza::iq::{self, IqType};

/// The IQ namespace.
pub const XMLNS: &str = "w:sync:app:state";

/// Builds a fetch for several collections, each at its local version: version 0 asks for a
/// snapshot (`return_snapshot="true"`, no `version`, as whatsmeow and whatsapp-rust send it),
/// any other version for the patches after it. Repeat while a response says
/// `has_more_patches`.
#[must_use]
pub fn fetch_request(id: &str, collections: &[(Collection, u64)]) -> Node {
    let children = collections
        .iter()
        .map(|(collection, version)| {
            let node = Node::new("collection").attr("name", collection.as_str());
            if *version == 0 {
                node.attr("return_snapshot", true)
            } else {
                node.attr("version", *version)
                    .attr("return_snapshot", false)
            }
        })
        .collect::<Vec<_>>();
    iq::request(
        id,
        XMLNS,
        IqType::Set,
        vec![Node::new("sync").with_children(children)],
    )
}

/// Builds the upload of our own patch built on `base_version` (shared/protocol/08 §3.3). The
/// patch carries no `version`; the server assigns `base_version + 1`.
#[must_use]
pub fn send_request(
    id: &str,
    collection: Collection,
    base_version: u64,
    patch: &SyncdPatch,
) -> Node {
    let collection_node = Node::new("collection")
        .attr("name", collection.as_str())
        .attr("version", base_version)
        .attr("return_snapshot", false)
        .with_children([Node::new("patch").with_bytes(patch.encode_to_vec())]);
    iq::request(
        id,
        XMLNS,
        IqType::Set,
        vec![Node::new("sync").with_children([collection_node])],
    )
}

/// What the server says about one collection it could not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionError {
    /// The `<error code>` (0 if absent).
    pub code: u16,
    /// The `<error text>`, if any.
    pub text: Option<String>,
}

impl CollectionError {
    /// 409: our patch was built on a stale version; the response carries the winning patches.
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        self.code == 409
    }

    /// 400 and 404 are fatal for the collection; other codes may be retried
    /// (whatsapp-rust `parse_collection_error`).
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        matches!(self.code, 400 | 404)
    }
}

/// One `<collection>` of a response.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionResponse {
    /// Which collection.
    pub collection: Collection,
    /// The server's `version` attribute, if present.
    pub version: Option<u64>,
    /// `has_more_patches="true"`: fetch again from the version reached.
    pub has_more_patches: bool,
    /// The `<snapshot>` reference: download and decrypt it with
    /// [`decode_snapshot_blob`](super::decode_snapshot_blob).
    pub snapshot: Option<ExternalBlobReference>,
    /// The patches, in the server's (ascending) order.
    pub patches: Vec<SyncdPatch>,
    /// `type="error"` with its `<error>`.
    pub error: Option<CollectionError>,
}

fn bytes_of(node: &Node) -> &[u8] {
    match &node.content {
        Content::Bytes(b) => b,
        Content::String(s) => s.as_bytes(),
        _ => &[],
    }
}

/// Parses a `w:sync:app:state` response `<iq type="result"><sync><collection …>…`.
///
/// Accepts `<patch>` inside `<patches>` (whatsmeow) and directly under `<collection>`
/// (Baileys). A collection-level error (`type="error"`) is returned in
/// [`CollectionResponse::error`], with any patches it carries.
///
/// # Errors
/// [`AppStateError::IqFailed`] for an IQ-level error, [`AppStateError::MissingField`] without
/// `<sync>` or a collection `name`, [`AppStateError::UnknownCollection`],
/// [`AppStateError::BadAttribute`], [`AppStateError::Protobuf`] for a patch or snapshot that
/// does not decode.
pub fn parse_response(response: &Node) -> Result<Vec<CollectionResponse>, AppStateError> {
    let result =
        iq::parse_response(response).map_err(|e| AppStateError::IqFailed { code: e.code })?;
    let sync = result
        .child_by_tag("sync")
        .ok_or(AppStateError::MissingField("<sync>"))?;
    let mut out = Vec::new();
    for node in sync.children_by_tag("collection") {
        let name = node
            .get_attr_str("name")
            .ok_or(AppStateError::MissingField("collection name"))?;
        let collection: Collection = name.parse()?;
        let version = match node.get_attr_str("version") {
            Some(v) => Some(
                v.parse::<u64>()
                    .map_err(|_| AppStateError::BadAttribute("version"))?,
            ),
            None => None,
        };
        let has_more_patches = node.get_attr_str("has_more_patches") == Some("true");
        let error = (node.get_attr_str("type") == Some("error")).then(|| {
            let e = node.child_by_tag("error");
            CollectionError {
                code: e
                    .and_then(|e| e.get_attr_str("code"))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0),
                text: e.and_then(|e| e.get_attr_str("text")).map(str::to_owned),
            }
        });
        let snapshot = match node.child_by_tag("snapshot") {
            Some(s) => Some(
                ExternalBlobReference::decode(bytes_of(s)).map_err(|source| {
                    AppStateError::Protobuf {
                        what: "ExternalBlobReference",
                        source,
                    }
                })?,
            ),
            None => None,
        };
        let patch_nodes = node
            .child_by_tag("patches")
            .map(|p| p.children_by_tag("patch").collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain(node.children_by_tag("patch"));
        let mut patches = Vec::new();
        for p in patch_nodes {
            patches.push(SyncdPatch::decode(bytes_of(p)).map_err(|source| {
                AppStateError::Protobuf {
                    what: "SyncdPatch",
                    source,
                }
            })?);
        }
        out.push(CollectionResponse {
            collection,
            version,
            has_more_patches,
            snapshot,
            patches,
            error,
        });
    }
    Ok(out)
}

/// Parses a `<notification type="server_sync">`: each `<collection name version>` another
/// device changed (shared/protocol/08 §8). Sync every one of them (Baileys 7 syncs only the
/// first, a known gap); whatsapp-rust skips those whose local version is already at least
/// `version`. Collections with an unknown name are skipped. Ack the notification as usual.
#[must_use]
pub fn parse_server_sync(notification: &Node) -> Vec<(Collection, Option<u64>)> {
    if notification.get_attr_str("type") != Some("server_sync") {
        return Vec::new();
    }
    notification
        .children_by_tag("collection")
        .filter_map(|c| {
            let collection = c.get_attr_str("name")?.parse().ok()?;
            let version = c.get_attr_str("version").and_then(|v| v.parse().ok());
            Some((collection, version))
        })
        .collect()
}
