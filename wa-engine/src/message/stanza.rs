//! `<message>` stanzas: building what we send (1:1 fan-out, group, retry re-send) and
//! reading what we receive (shared/protocol/05-messages-receipts.md §6.2, §7.2, §9.1, §9.4).

use crate::Jid;
use crate::binary::{Node, Value};
use crate::signal::EncType;

use super::MessageInfo;
use super::error::MessageError;

/// One `<enc>` child as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enc {
    /// `type`: `pkmsg`, `msg`, `skmsg`; `None` for a type we do not know.
    pub kind: Option<EncType>,
    /// `v`: 2 for Signal payloads, 3 for unpadded (Armadillo) ones (05 §3).
    pub version: u8,
    /// `count`: retry count of a re-sent message (05 §9.4).
    pub count: Option<u32>,
    /// The ciphertext (content of the `<enc>`).
    pub ciphertext: Vec<u8>,
}

/// `<enc v="2" type [mediatype] [count]>ciphertext</enc>` (05 §6.2).
pub(crate) fn enc_node(
    kind: EncType,
    ciphertext: Vec<u8>,
    media_type: Option<&'static str>,
    count: Option<u32>,
) -> Node {
    Node::new("enc")
        .attr("v", "2")
        .attr("type", kind.as_str())
        .attr_opt("mediatype", media_type)
        .attr_opt("count", count.map(|c| c.to_string()))
        .with_bytes(ciphertext)
}

/// The `<participants>` child: `<to jid><enc/></to>` per device (05 §6.2).
pub(crate) fn participants_node(encs: Vec<(Jid, Node)>) -> Node {
    Node::new("participants").with_children(
        encs.into_iter()
            .map(|(jid, enc)| Node::new("to").attr("jid", jid).with_children([enc])),
    )
}

/// A message stanza addressed to a user or group (05 §6.2, §7.2): `participants` (omitted
/// when empty), `device-identity` (the ADVSignedDeviceIdentity bytes; pass it when any enc
/// is a `pkmsg`), then the extra children (the group `skmsg` enc).
pub(crate) fn message_node(
    id: &str,
    to: &Jid,
    stanza_type: &'static str,
    extra_attrs: Vec<(&'static str, Value)>,
    participants: Vec<(Jid, Node)>,
    device_identity: Option<&[u8]>,
    extra_children: Vec<Node>,
) -> Node {
    let mut node = Node::new("message")
        .attr("id", id.to_owned())
        .attr("to", to.clone())
        .attr("type", stanza_type);
    for (k, v) in extra_attrs {
        node = node.attr(k, v);
    }
    let mut children = Vec::with_capacity(2 + extra_children.len());
    if !participants.is_empty() {
        children.push(participants_node(participants));
    }
    if let Some(identity) = device_identity {
        children.push(Node::new("device-identity").with_bytes(identity.to_vec()));
    }
    children.extend(extra_children);
    node.with_children(children)
}

fn jid_attr(node: &Node, key: &'static str) -> Result<Option<Jid>, MessageError> {
    match node.get_attr(key) {
        None => Ok(None),
        Some(Value::Jid(j)) => Ok(Some(j.clone())),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| MessageError::MissingAttribute(key)),
    }
}

/// Reads an incoming `<message>` (05 §9.1): who sent it, in which chat, and its `<enc>`
/// children in document order. `own` is our own device JID (for from-me classification).
///
/// # Errors
/// [`MessageError::MissingAttribute`] for a missing `from`, `id` or `t`, or a group message
/// without `participant` (whatsmeow NACKs these with 487).
pub fn parse_message(node: &Node, own: &Jid) -> Result<(MessageInfo, Vec<Enc>), MessageError> {
    parse_message_for(node, own, None)
}

/// [`parse_message`] for an account that may also be addressed by its LID `own_lid`
/// (messages from our own devices can come from the own LID, 07 §1.2), reading the
/// alternate identities the stanza names (07 §1.2, §1.7; whatsmeow `message.go`
/// parseMessageSource, Baileys `decode-wa-message.ts` extractAddressingContext):
/// `sender_pn` / `sender_lid` (1:1), `participant_pn` / `participant_lid` (groups),
/// `peer_recipient_pn` / `peer_recipient_lid` / `recipient_pn` / `recipient_lid` (own-device
/// copies), `addressing_mode`.
///
/// # Errors
/// As [`parse_message`].
pub fn parse_message_for(
    node: &Node,
    own: &Jid,
    own_lid: Option<&Jid>,
) -> Result<(MessageInfo, Vec<Enc>), MessageError> {
    let is_own = |j: &Jid| j.same_user(own) || own_lid.is_some_and(|l| l.same_user(j));
    let alt = |key: &'static str| jid_attr(node, key).ok().flatten().map(|j| j.to_non_ad());
    let from = jid_attr(node, "from")?.ok_or(MessageError::MissingAttribute("from"))?;
    let id = node
        .get_attr_str("id")
        .filter(|s| !s.is_empty())
        .ok_or(MessageError::MissingAttribute("id"))?
        .to_owned();
    let timestamp = node
        .get_attr_str("t")
        .and_then(|t| t.parse().ok())
        .ok_or(MessageError::MissingAttribute("t"))?;
    let participant = jid_attr(node, "participant")?;
    let recipient = jid_attr(node, "recipient")?;
    let is_group = from.is_group() || from.is_broadcast();
    let (chat, sender) = if is_group {
        let p = participant.ok_or(MessageError::MissingAttribute("participant"))?;
        (from.clone(), p)
    } else if is_own(&from) {
        (
            recipient
                .as_ref()
                .map_or_else(|| from.to_non_ad(), Jid::to_non_ad),
            from.clone(),
        )
    } else {
        (from.to_non_ad(), from.clone())
    };
    let from_me = is_own(&sender);
    let sender_alt = if is_group {
        alt("participant_pn").or_else(|| alt("participant_lid"))
    } else {
        alt("sender_pn").or_else(|| alt("sender_lid"))
    };
    let pick = |want_lid: bool| {
        [Some(sender.to_non_ad()), sender_alt.clone()]
            .into_iter()
            .flatten()
            .find(|j| if want_lid { j.is_lid() } else { j.is_pn() })
    };
    let chat_alt = if is_group {
        None
    } else if from_me && recipient.is_some() {
        ["peer_recipient_pn", "peer_recipient_lid", "recipient_pn", "recipient_lid"]
            .into_iter()
            .filter_map(alt)
            .find(|j| j.server() != chat.server())
    } else {
        sender_alt.clone().filter(|j| j.server() != chat.server())
    };
    let (sender_pn, sender_lid) = (pick(false), pick(true));
    let info = MessageInfo {
        id,
        chat,
        sender,
        from_me,
        is_group,
        timestamp,
        push_name: node
            .get_attr_str("notify")
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        offline: node.get_attr("offline").is_some(),
        category: node.get_attr_str("category").map(str::to_owned),
        sender_pn,
        sender_lid,
        chat_alt,
        addressing_mode: node.get_attr_str("addressing_mode").map(str::to_owned),
    };
    let encs = node
        .children_by_tag("enc")
        .map(|e| Enc {
            kind: e.get_attr_str("type").and_then(|t| t.parse().ok()),
            version: e
                .get_attr_str("v")
                .and_then(|v| v.parse().ok())
                .unwrap_or(2),
            count: e.get_attr_str("count").and_then(|c| c.parse().ok()),
            ciphertext: e.content_bytes().map(<[u8]>::to_vec).unwrap_or_default(),
        })
        .collect();
    Ok((info, encs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> Jid {
        "15551234567:7@s.whatsapp.net".parse().unwrap()
    }

    #[test]
    fn classifies_direct_own_device_and_group_messages() {
        let direct = Node::new("message")
            .attr(
                "from",
                "15557654321:2@s.whatsapp.net".parse::<Jid>().unwrap(),
            )
            .attr("id", "ABC")
            .attr("t", "1700000000")
            .attr("notify", "Bob")
            .with_children([enc_node(EncType::Msg, vec![1, 2], None, None)]);
        let (info, encs) = parse_message(&direct, &own()).unwrap();
        assert_eq!(info.chat.to_string(), "15557654321@s.whatsapp.net");
        assert_eq!(info.sender.device(), 2);
        assert!(!info.from_me && !info.is_group);
        assert_eq!(info.push_name.as_deref(), Some("Bob"));
        assert_eq!(encs[0].kind, Some(EncType::Msg));
        assert_eq!(encs[0].ciphertext, vec![1, 2]);

        let mine = Node::new("message")
            .attr(
                "from",
                "15551234567:3@s.whatsapp.net".parse::<Jid>().unwrap(),
            )
            .attr(
                "recipient",
                "15557654321@s.whatsapp.net".parse::<Jid>().unwrap(),
            )
            .attr("id", "DEF")
            .attr("t", "1700000001");
        let (info, _) = parse_message(&mine, &own()).unwrap();
        assert!(info.from_me);
        assert_eq!(info.chat.to_string(), "15557654321@s.whatsapp.net");

        let group = Node::new("message")
            .attr("from", "120363000000000001@g.us".parse::<Jid>().unwrap())
            .attr("id", "G1")
            .attr("t", "1700000002");
        assert_eq!(
            parse_message(&group, &own()).unwrap_err(),
            MessageError::MissingAttribute("participant")
        );
    }
}
