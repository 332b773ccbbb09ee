//! Prekeys on the server: upload, count policy, signed-prekey rotation policy, and
//! fetching peers' bundles (shared/protocol/04-signal.md §4).
//!
//! Internal (public only with the `server-side` feature, for the sandbox, fuzz targets
//! and vector tests): IQ builders take the IQ id; parsers take the
//! `type="result"` IQ. The connection runs the policy (see [`MIN_PREKEY_COUNT`],
//! [`UPLOAD_BATCH`], `SIGNED_PREKEY_ROTATION`).

use std::time::Duration;

use crate::Jid;
use crate::binary::Node;
use crate::signal::{DJB_TYPE, PreKeyBundle, PreKeyRecord, PublicKey, SignedPreKeyRecord};
use crate::stanza::iq::{self, IqType};

/// Upload more prekeys when the server holds fewer than this: 5 in whatsmeow, Baileys and
/// whatsapp-rust (04 §4.3).
pub const MIN_PREKEY_COUNT: u32 = 5;

/// How many one-time prekeys one upload carries: 812, WA Web's `UPLOAD_KEYS_COUNT` per
/// whatsapp-rust, also Baileys' and whatsmeow's first upload (04 §4.3 recommendation).
///
/// Chosen over the smaller batches some libraries use (04 §11 point 5): whatsmeow
/// `prekeys.go` uploads `WantedPreKeyCount = 50` (in the version we read, at first login
/// too) and Baileys refills with 5, but whatsapp-rust says WA Web always sends 812, and
/// a whatsmeow fork that aligns itself with official clients raises 50 to 812 because the
/// odd batch size identified whatsmeow (its README cites "Prekey Pogo", USENIX WOOT 2025,
/// arXiv 2504.07323, Table 4). The first upload of a new device is therefore 812, as every
/// reference agrees; refills use the same value. The cost is memory: about 80 bytes a key
/// in a `MemoryStore` (compact prekey slots), so embedders running many short-lived
/// devices may lower it with `ClientBuilder::prekey_batch`.
pub const UPLOAD_BATCH: u32 = 812;

/// Signed-prekey rotation policy: a new signed prekey (id + 1) after this age, checked at
/// login. The sources do not say what WA Web does (whatsmeow never rotates, Baileys only on
/// request, 04 §2); we follow Signal's clients and rotate weekly.
pub(crate) const SIGNED_PREKEY_ROTATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// How many previous signed prekeys are kept after a rotation so that late `pkmsg`s built
/// on them still decrypt (04 §2: "keep the old signed-prekey private key for a while").
/// With weekly rotation this is about a month.
pub(crate) const KEPT_SIGNED_PREKEYS: usize = 4;

/// A peer's bundle that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The server reported an error for this device (`<error code text>` in its `<user>`).
    #[error("server error {code} for this device")]
    Server {
        /// The error code (0 if absent).
        code: u16,
    },
    /// A field is missing or has the wrong length (04 §4: exactly 4 / 32 / 3 / 32 / 64 bytes).
    #[error("bundle field `{0}` missing or malformed")]
    Malformed(&'static str),
    /// The result has no `<list>`.
    #[error("prekey result without <list>")]
    MissingList,
}

fn id3(id: u32) -> Vec<u8> {
    id.to_be_bytes()[1..].to_vec()
}

fn key_node(record: &PreKeyRecord) -> Node {
    Node::new("key").with_children([
        Node::new("id").with_bytes(id3(record.id)),
        Node::new("value").with_bytes(record.key_pair.public.as_bytes().to_vec()),
    ])
}

/// `<skey><id>3</id><value>32</value><signature>64</signature></skey>`.
pub fn skey_node(signed: &SignedPreKeyRecord) -> Node {
    Node::new("skey").with_children([
        Node::new("id").with_bytes(id3(signed.id)),
        Node::new("value").with_bytes(signed.key_pair.public.as_bytes().to_vec()),
        Node::new("signature").with_bytes(signed.signature.to_vec()),
    ])
}

/// The upload IQ (04 §4.2): registration id (4 bytes BE), type 0x05, raw identity, the
/// one-time prekeys, the signed prekey, in the order all three reference clients send.
pub fn upload_iq(
    id: &str,
    registration_id: u32,
    identity: &PublicKey,
    prekeys: &[PreKeyRecord],
    signed: &SignedPreKeyRecord,
) -> Node {
    iq::request(
        id,
        "encrypt",
        IqType::Set,
        vec![
            Node::new("registration").with_bytes(registration_id.to_be_bytes().to_vec()),
            Node::new("type").with_bytes(vec![DJB_TYPE]),
            Node::new("identity").with_bytes(identity.as_bytes().to_vec()),
            Node::new("list").with_children(prekeys.iter().map(key_node)),
            skey_node(signed),
        ],
    )
}

/// The `<keys>` of a retry receipt (05 §9.3): type, identity, one fresh prekey, the signed
/// prekey and our device identity.
pub(crate) fn retry_keys_node(
    identity: &PublicKey,
    prekey: &PreKeyRecord,
    signed: &SignedPreKeyRecord,
    device_identity: Option<&[u8]>,
) -> Node {
    let mut children = vec![
        Node::new("type").with_bytes(vec![DJB_TYPE]),
        Node::new("identity").with_bytes(identity.as_bytes().to_vec()),
        key_node(prekey),
        skey_node(signed),
    ];
    if let Some(di) = device_identity {
        children.push(Node::new("device-identity").with_bytes(di.to_vec()));
    }
    Node::new("keys").with_children(children)
}

/// Bundle fetch for these device JIDs, each with `reason="identity"` as whatsmeow sends it
/// (04 §4.4).
pub(crate) fn fetch_iq(id: &str, devices: &[Jid]) -> Node {
    iq::request(
        id,
        "encrypt",
        IqType::Get,
        vec![Node::new("key").with_children(devices.iter().map(|d| {
            Node::new("user")
                .attr("jid", d.clone())
                .attr("reason", "identity")
        }))],
    )
}

fn bytes<'a>(node: &'a Node, tag: &'static str, len: usize) -> Result<&'a [u8], BundleError> {
    node.child_by_tag(tag)
        .and_then(Node::content_bytes)
        .filter(|b| b.len() == len)
        .ok_or(BundleError::Malformed(tag))
}

fn be(b: &[u8]) -> u32 {
    b.iter().fold(0_u32, |acc, &x| (acc << 8) | u32::from(x))
}

fn key_fields(node: &Node, tag: &'static str) -> Result<(u32, PublicKey), BundleError> {
    let id = be(bytes(node, "id", 3).map_err(|_| BundleError::Malformed(tag))?);
    let value = bytes(node, "value", 32).map_err(|_| BundleError::Malformed(tag))?;
    let key = PublicKey::from_slice(value).ok_or(BundleError::Malformed(tag))?;
    Ok((id, key))
}

/// Reads one bundle from a node holding `<registration>`, `<identity>`, `<skey>` and an
/// optional `<key>`, directly or wrapped in `<keys>` (04 §4.4; the `<user>` of a fetch
/// result). `registration` may be given separately (a retry receipt carries it outside
/// `<keys>`, 05 §9.3).
///
/// # Errors
/// [`BundleError::Server`] for an `<error>` child, [`BundleError::Malformed`].
pub fn parse_bundle(node: &Node, registration: Option<u32>) -> Result<PreKeyBundle, BundleError> {
    if let Some(error) = node.child_by_tag("error") {
        return Err(BundleError::Server {
            code: error
                .get_attr_str("code")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0),
        });
    }
    let keys = node.child_by_tag("keys").unwrap_or(node);
    let registration_id = match registration {
        Some(r) => r,
        None => be(bytes(node, "registration", 4).or_else(|_| bytes(keys, "registration", 4))?),
    };
    let identity = PublicKey::from_slice(bytes(keys, "identity", 32)?)
        .ok_or(BundleError::Malformed("identity"))?;
    let skey = keys
        .child_by_tag("skey")
        .ok_or(BundleError::Malformed("skey"))?;
    let (signed_prekey_id, signed_prekey) = key_fields(skey, "skey")?;
    let signature: [u8; 64] = bytes(skey, "signature", 64)?
        .try_into()
        .map_err(|_| BundleError::Malformed("signature"))?;
    let prekey = keys
        .child_by_tag("key")
        .map(|k| key_fields(k, "key"))
        .transpose()?;
    Ok(PreKeyBundle {
        registration_id,
        identity_key: identity,
        signed_prekey_id,
        signed_prekey,
        signed_prekey_signature: signature,
        prekey,
    })
}

/// One device's entry in a fetch result: its JID and its bundle (or why there is none).
pub(crate) type DeviceBundle = (Jid, Result<PreKeyBundle, BundleError>);

/// Reads a fetch result (04 §4.4): one entry per `<user jid>`, in document order.
///
/// # Errors
/// [`BundleError::MissingList`] without `<list>`; per-device problems are in the entries.
pub fn parse_bundles(result: &Node) -> Result<Vec<DeviceBundle>, BundleError> {
    let list = result
        .child_by_tag("list")
        .ok_or(BundleError::MissingList)?;
    Ok(list
        .children_by_tag("user")
        .filter_map(|u| {
            let jid = u
                .get_attr_jid("jid")
                .cloned()
                .or_else(|| u.get_attr_str("jid")?.parse().ok())?;
            Some((jid, parse_bundle(u, None)))
        })
        .collect())
}

/// The `value` of a prekey-count result or an `encrypt` count notification (04 §4.1, §4.3);
/// a missing value counts as 0 (whatsapp-rust).
pub fn parse_count(node: &Node) -> u32 {
    node.child_by_tag("count")
        .and_then(|c| c.get_attr_str("value"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::KeyPair;
    use rand::SeedableRng as _;
    use rand::rngs::StdRng;

    #[test]
    fn upload_round_trips_through_bundle_parser() {
        let mut rng = StdRng::seed_from_u64(5);
        let identity = KeyPair::generate(&mut rng);
        let signed = SignedPreKeyRecord::generate(1, &identity.private, &mut rng);
        let prekey = PreKeyRecord::generate(0x01_02_03, &mut rng);
        let iq = upload_iq(
            "x",
            1234,
            &identity.public,
            std::slice::from_ref(&prekey),
            &signed,
        );
        let tags: Vec<&str> = iq.children().iter().map(|c| c.tag.as_ref()).collect();
        assert_eq!(tags, ["registration", "type", "identity", "list", "skey"]);
        // A bundle node is the same children with <key> instead of <list>.
        let user = Node::new("user").with_children([
            iq.children()[0].clone(),
            iq.children()[1].clone(),
            iq.children()[2].clone(),
            iq.children()[4].clone(),
            iq.children()[3].children()[0].clone(),
        ]);
        let bundle = parse_bundle(&user, None).unwrap();
        assert_eq!(bundle.registration_id, 1234);
        assert_eq!(bundle.prekey, Some((0x01_02_03, prekey.key_pair.public)));
        assert!(bundle.verify_signature());
    }

    #[test]
    fn per_device_error_is_reported() {
        let user = Node::new("user").with_children([Node::new("error").attr("code", "404")]);
        assert_eq!(
            parse_bundle(&user, None),
            Err(BundleError::Server { code: 404 })
        );
    }
}
