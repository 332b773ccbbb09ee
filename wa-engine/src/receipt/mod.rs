//! Receipts: delivery, read and retry receipts we send, and the receipts we receive
//! (shared/protocol/05-messages-receipts.md §9.3, §10).
//!
//! Internal (public only with the `server-side` feature, for the sandbox, fuzz targets
//! and vector tests): pure builders and parsers over
//! `binary::Node`.

use crate::Jid;
use crate::binary::{Node, Value};
use crate::prekeys::{self, BundleError};
use crate::signal::PreKeyBundle;

/// What a receipt says (05 §10.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReceiptKind {
    /// No `type`: delivered to the device.
    Delivered,
    /// `inactive`: delivered while the app was in the background.
    Inactive,
    /// `sender`: one of our own devices got a message we sent.
    Sender,
    /// `peer_msg`: a peer (own-device) message was received.
    PeerMsg,
    /// `read`.
    Read,
    /// `read-self`: read, but read receipts are off (only own devices learn it).
    ReadSelf,
    /// `played` (voice / view-once).
    Played,
    /// `played-self`.
    PlayedSelf,
    /// `retry`: the device could not decrypt the message (05 §9.3).
    Retry,
    /// `server-error` and anything else, verbatim.
    Other(String),
}

impl ReceiptKind {
    /// Parses the `type` attribute (`None` = delivered).
    pub fn from_attr(kind: Option<&str>) -> Self {
        match kind {
            None | Some("") => Self::Delivered,
            Some("inactive") => Self::Inactive,
            Some("sender") => Self::Sender,
            Some("peer_msg") => Self::PeerMsg,
            Some("read") => Self::Read,
            Some("read-self") => Self::ReadSelf,
            Some("played") => Self::Played,
            Some("played-self") => Self::PlayedSelf,
            Some("retry") => Self::Retry,
            Some(other) => Self::Other(other.to_owned()),
        }
    }

    /// The `type` attribute value; `None` for [`Delivered`](Self::Delivered).
    pub fn as_attr(&self) -> Option<&str> {
        Some(match self {
            Self::Delivered => return None,
            Self::Inactive => "inactive",
            Self::Sender => "sender",
            Self::PeerMsg => "peer_msg",
            Self::Read => "read",
            Self::ReadSelf => "read-self",
            Self::Played => "played",
            Self::PlayedSelf => "played-self",
            Self::Retry => "retry",
            Self::Other(s) => s,
        })
    }
}

/// A receipt we received (05 §10.4).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Receipt {
    /// The chat: the peer user (1:1), the group, or — for receipts from our own devices —
    /// the `recipient` chat when present.
    pub chat: Jid,
    /// The device that sent the receipt (AD JID).
    pub sender: Jid,
    /// The message ids it covers (`id` plus `<list><item id>`).
    pub ids: Vec<String>,
    /// What it says.
    pub kind: ReceiptKind,
    /// `t`, unix seconds (0 if absent).
    pub timestamp: u64,
    /// Sent by another device of our own account.
    pub from_me: bool,
    /// The sender's phone-number user JID (no device), when known (`sender` itself, the
    /// stanza's `sender_pn` / `participant_pn`, or the engine's PN ⇄ LID map; 07 §1.7).
    pub sender_pn: Option<Jid>,
    /// The sender's LID user JID (no device), when known.
    pub sender_lid: Option<Jid>,
}

fn jid_attr(node: &Node, key: &str) -> Option<Jid> {
    match node.get_attr(key)? {
        Value::Jid(j) => Some(j.clone()),
        Value::String(s) => s.parse().ok(),
    }
}

/// Reads a `<receipt>` (05 §10.4); `None` without `from` or `id`.
pub fn parse_receipt(node: &Node, own: &Jid) -> Option<Receipt> {
    parse_receipt_for(node, own, None)
}

/// [`parse_receipt`] for an account also addressed by its LID `own_lid` (07 §1.2), reading
/// the sender's other identity from `sender_pn` / `sender_lid` / `participant_pn` /
/// `participant_lid` when present.
pub fn parse_receipt_for(node: &Node, own: &Jid, own_lid: Option<&Jid>) -> Option<Receipt> {
    let is_own = |j: &Jid| j.same_user(own) || own_lid.is_some_and(|l| l.same_user(j));
    let from = jid_attr(node, "from")?;
    let id = node.get_attr_str("id")?.to_owned();
    let participant = jid_attr(node, "participant");
    let recipient = jid_attr(node, "recipient");
    let (chat, sender) = if from.is_group() || from.is_broadcast() {
        (from.clone(), participant.unwrap_or_else(|| from.clone()))
    } else {
        let chat = match &recipient {
            Some(r) if is_own(&from) => r.to_non_ad(),
            _ => from.to_non_ad(),
        };
        (chat, from)
    };
    let mut ids = vec![id];
    if let Some(list) = node.child_by_tag("list") {
        ids.extend(
            list.children_by_tag("item")
                .filter_map(|i| i.get_attr_str("id"))
                .map(str::to_owned),
        );
    }
    let alt = ["sender_pn", "sender_lid", "participant_pn", "participant_lid"]
        .into_iter()
        .find_map(|k| jid_attr(node, k))
        .map(|j| j.to_non_ad());
    let pick = |want_lid: bool| {
        [Some(sender.to_non_ad()), alt.clone()]
            .into_iter()
            .flatten()
            .find(|j| if want_lid { j.is_lid() } else { j.is_pn() })
    };
    let (sender_pn, sender_lid) = (pick(false), pick(true));
    Some(Receipt {
        from_me: is_own(&sender),
        sender_pn,
        sender_lid,
        chat,
        sender,
        ids,
        kind: ReceiptKind::from_attr(node.get_attr_str("type")),
        timestamp: node
            .get_attr_str("t")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0),
    })
}

/// The delivery receipt for a processed `<message>` (05 §10.2, whatsmeow shape): `to` = its
/// `from`, `participant` and `recipient` copied, `type` = `kind` (none for plain delivery,
/// `sender` for own-device messages, `peer_msg` for peer messages).
pub fn delivery_receipt(message: &Node, kind: &ReceiptKind) -> Node {
    let mut r = Node::new("receipt");
    if let Some(id) = message.get_attr("id") {
        r = r.attr("id", id.clone());
    }
    if let Some(from) = message.get_attr("from") {
        r = r.attr("to", from.clone());
    }
    for key in ["participant", "recipient"] {
        if let Some(v) = message.get_attr(key) {
            r = r.attr(key, v.clone());
        }
    }
    if let Some(t) = kind.as_attr() {
        r = r.attr("type", t.to_owned());
    }
    r
}

/// A read receipt (05 §10.3): `to` = chat, `participant` = the sender's user JID in groups,
/// the first id in `id` and the others in `<list><item id>`. `kind` is normally
/// [`ReceiptKind::Read`] (or `ReadSelf`, `Played`).
pub(crate) fn read_receipt(
    chat: &Jid,
    sender: Option<&Jid>,
    ids: &[String],
    kind: &ReceiptKind,
    unix_secs: u64,
) -> Option<Node> {
    let (first, rest) = ids.split_first()?;
    let mut r = Node::new("receipt")
        .attr("id", first.clone())
        .attr("to", chat.clone())
        .attr("t", unix_secs.to_string());
    if let Some(t) = kind.as_attr() {
        r = r.attr("type", t.to_owned());
    }
    if chat.is_group()
        && let Some(s) = sender
    {
        r = r.attr("participant", s.to_non_ad());
    }
    if !rest.is_empty() {
        r = r.with_children([Node::new("list").with_children(
            rest.iter()
                .map(|id| Node::new("item").attr("id", id.clone())),
        )]);
    }
    Some(r)
}

/// A retry receipt for a `<message>` we could not decrypt (05 §9.3): `<retry v="1" count id
/// t>`, our registration id, and `keys` (see [`prekeys::retry_keys_node`]) when the peer
/// must build a new session.
pub(crate) fn retry_receipt(message: &Node, count: u32, registration_id: u32, keys: Option<Node>) -> Node {
    let mut r = delivery_receipt(message, &ReceiptKind::Retry);
    if message.get_attr_str("category") == Some("peer") {
        r = r.attr("category", "peer");
    }
    let id = message.get_attr_str("id").unwrap_or_default().to_owned();
    let t = message.get_attr_str("t").unwrap_or_default().to_owned();
    let mut children = vec![
        Node::new("retry")
            .attr("v", "1")
            .attr("count", count.to_string())
            .attr("id", id)
            .attr("t", t),
        Node::new("registration").with_bytes(registration_id.to_be_bytes().to_vec()),
    ];
    children.extend(keys);
    r.with_children(children)
}

/// A retry request as the original sender receives it (05 §9.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryRequest {
    /// The receipt as a [`Receipt`] (chat, requesting device, id).
    pub receipt: Receipt,
    /// `<retry count>` (1 on the first retry).
    pub count: u32,
    /// The requester's registration id.
    pub registration_id: Option<u32>,
    /// The bundle in `<keys>`, if the requester sent one (or why it is unusable).
    pub bundle: Option<Result<PreKeyBundle, BundleError>>,
}

/// Reads a `<receipt type="retry">`; `None` if it is not one.
pub fn parse_retry(node: &Node, own: &Jid) -> Option<RetryRequest> {
    let receipt = parse_receipt(node, own)?;
    if receipt.kind != ReceiptKind::Retry {
        return None;
    }
    let count = node
        .child_by_tag("retry")
        .and_then(|r| r.get_attr_str("count"))
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    let registration_id = node
        .child_by_tag("registration")
        .and_then(Node::content_bytes)
        .filter(|b| b.len() == 4)
        .map(|b| b.iter().fold(0_u32, |a, &x| (a << 8) | u32::from(x)));
    let bundle = node
        .child_by_tag("keys")
        .map(|keys| prekeys::parse_bundle(keys, Some(registration_id.unwrap_or(0))));
    Some(RetryRequest {
        receipt,
        count,
        registration_id,
        bundle,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> Jid {
        "15551234567:7@s.whatsapp.net".parse().unwrap()
    }

    #[test]
    fn delivery_receipt_copies_from_participant_and_recipient() {
        let msg = Node::new("message")
            .attr("id", "X")
            .attr("from", "120363000000000001@g.us".parse::<Jid>().unwrap())
            .attr(
                "participant",
                "15557654321:2@s.whatsapp.net".parse::<Jid>().unwrap(),
            );
        let r = delivery_receipt(&msg, &ReceiptKind::Delivered);
        assert_eq!(r.get_attr_str("id"), Some("X"));
        assert_eq!(
            r.get_attr_jid("to").map(ToString::to_string).as_deref(),
            Some("120363000000000001@g.us")
        );
        assert!(r.get_attr("participant").is_some());
        assert!(r.get_attr("type").is_none());
    }

    #[test]
    fn receipt_with_list_covers_every_id() {
        let n = Node::new("receipt")
            .attr(
                "from",
                "15557654321:2@s.whatsapp.net".parse::<Jid>().unwrap(),
            )
            .attr("id", "A")
            .attr("type", "read")
            .attr("t", "5")
            .with_children([Node::new("list").with_children([Node::new("item").attr("id", "B")])]);
        let r = parse_receipt(&n, &own()).unwrap();
        assert_eq!(r.ids, ["A", "B"]);
        assert_eq!(r.kind, ReceiptKind::Read);
        assert_eq!(r.chat.to_string(), "15557654321@s.whatsapp.net");
        assert!(!r.from_me);
    }

    #[test]
    fn read_receipt_lists_extra_ids() {
        let chat: Jid = "15557654321@s.whatsapp.net".parse().unwrap();
        let r = read_receipt(
            &chat,
            None,
            &["A".into(), "B".into()],
            &ReceiptKind::Read,
            9,
        )
        .unwrap();
        assert_eq!(r.get_attr_str("type"), Some("read"));
        assert_eq!(
            r.child_path(&["list", "item"])
                .and_then(|i| i.get_attr_str("id")),
            Some("B")
        );
        assert!(read_receipt(&chat, None, &[], &ReceiptKind::Read, 9).is_none());
    }
}
