//! `<ack>` for incoming stanzas (shared/protocol/03 §11; whatsmeow receipt.go `sendAck`).

use crate::binary::{Node, Value};

/// Tags of incoming stanzas that must be acked: `message`, `receipt`, `notification`, `call`.
/// `iq` is answered with an IQ instead; `presence`, `chatstate`, `ib`, `success`, `failure`,
/// `stream:error` and `ack` are never acked (03 §11).
pub(crate) const ACKED_TAGS: [&str; 4] = ["message", "receipt", "notification", "call"];

/// Whether a stanza with this tag must be acked.
pub(crate) fn needs_ack(tag: &str) -> bool {
    ACKED_TAGS.contains(&tag)
}

/// The ack for `stanza`, or `None` if its tag is not acked or it has no `id`.
///
/// Shape (whatsmeow): `<ack class="<tag>" id="<id>" to="<from>" [participant] [recipient]
/// [type]/>`; `type` is copied except for `class="message"`; `from` is never set.
pub fn ack_for(stanza: &Node) -> Option<Node> {
    build(stanza, None)
}

/// A negative ack: [`ack_for`] plus `error="<code>"` (03 §11 NACK codes, e.g. 487 parsing
/// error, 491 invalid protobuf, 500 unhandled error).
pub fn nack_for(stanza: &Node, code: u16) -> Option<Node> {
    build(stanza, Some(code))
}

fn build(stanza: &Node, error: Option<u16>) -> Option<Node> {
    let tag = stanza.tag.as_ref();
    if !needs_ack(tag) {
        return None;
    }
    let id = stanza.get_attr("id")?.clone();
    let mut ack = Node::new("ack")
        .attr("class", tag.to_owned())
        .attr("id", id);
    if let Some(from) = stanza.get_attr("from") {
        ack = ack.attr("to", from.clone());
    }
    for key in ["participant", "recipient"] {
        if let Some(v) = stanza.get_attr(key) {
            ack = ack.attr(key, v.clone());
        }
    }
    if tag != "message"
        && let Some(v) = stanza.get_attr("type")
    {
        ack = ack.attr("type", v.clone());
    }
    if let Some(code) = error {
        ack = ack.attr("error", Value::from(code.to_string()));
    }
    Some(ack)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Jid;

    fn jid(s: &str) -> Jid {
        s.parse().unwrap()
    }

    #[test]
    fn notification_ack_echoes_id_from_and_type() {
        let n = Node::new("notification")
            .attr("from", jid("@s.whatsapp.net"))
            .attr("type", "server_sync")
            .attr("id", "123");
        let ack = ack_for(&n).unwrap();
        assert_eq!(ack.tag, "ack");
        assert_eq!(ack.get_attr_str("class"), Some("notification"));
        assert_eq!(ack.get_attr_str("id"), Some("123"));
        assert_eq!(ack.get_attr_jid("to"), Some(&jid("@s.whatsapp.net")));
        assert_eq!(ack.get_attr_str("type"), Some("server_sync"));
        assert!(ack.get_attr("from").is_none());
    }

    #[test]
    fn message_ack_drops_type_and_keeps_participant() {
        let n = Node::new("message")
            .attr("from", jid("123@g.us"))
            .attr("participant", jid("5551234:3@s.whatsapp.net"))
            .attr("type", "text")
            .attr("id", "ABC");
        let ack = ack_for(&n).unwrap();
        assert_eq!(ack.get_attr_str("class"), Some("message"));
        assert!(ack.get_attr("type").is_none());
        assert_eq!(
            ack.get_attr_jid("participant"),
            Some(&jid("5551234:3@s.whatsapp.net"))
        );
    }

    #[test]
    fn iq_presence_and_stanzas_without_id_are_not_acked() {
        assert!(ack_for(&Node::new("iq").attr("id", "1")).is_none());
        assert!(ack_for(&Node::new("presence").attr("id", "1")).is_none());
        assert!(ack_for(&Node::new("ib")).is_none());
        assert!(ack_for(&Node::new("receipt")).is_none());
    }

    #[test]
    fn nack_carries_the_error_code() {
        let n = Node::new("receipt")
            .attr("id", "9")
            .attr("from", jid("1@s.whatsapp.net"));
        let nack = nack_for(&n, 487).unwrap();
        assert_eq!(nack.get_attr_str("error"), Some("487"));
    }
}
