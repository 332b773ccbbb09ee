//! Builders for the stanzas the sandbox (server side) sends, and small readers for the ones
//! it receives. Shapes and sources are given per function (shared/protocol/03).

use wa_engine::Jid;
use wa_engine::Server;
use wa_engine::binary::{Node, Value};

use crate::script::StreamErrorKind;

/// The sequence of server stanza ids (IQs, notifications): decimal numbers counting up from
/// a random nine-digit start (shared/protocol/03 §3, §10.1).
#[derive(Debug, Clone)]
pub(crate) struct Ids {
    next: u64,
}

impl Ids {
    /// A sequence whose first id is `start + 1`.
    pub(crate) fn starting_at(start: u64) -> Self {
        Self { next: start }
    }

    /// A fresh server stanza id (decimal string).
    pub(crate) fn fresh(&mut self) -> String {
        self.next += 1;
        self.next.to_string()
    }
}

/// The AD JID of a device: `user@s.whatsapp.net` for the primary (device 0 is written
/// without `:0`: shared/protocol/05 §1), `user:d@s.whatsapp.net` otherwise.
pub(crate) fn device_jid(phone: &str, device: u16) -> Jid {
    if device == 0 {
        Jid::pn(phone.to_owned())
    } else {
        Jid::pn(phone.to_owned()).with_device(device)
    }
}

/// A JID attribute, whether it was encoded as a JID or as text.
pub(crate) fn attr_jid(node: &Node, key: &str) -> Option<Jid> {
    match node.get_attr(key)? {
        Value::Jid(j) => Some(j.clone()),
        Value::String(s) => s.parse().ok(),
    }
}

/// The server JID `s.whatsapp.net` (a JID pair with an empty user, shared/protocol/02 §8
/// rule 1; whatsmeow ignores a pair-device IQ whose `from` is a plain string).
pub(crate) fn server_jid() -> Jid {
    Jid::server_jid(Server::Pn)
}

/// `<iq from="s.whatsapp.net" type="set" id xmlns="md"><pair-device><ref>…</ref>×n</pair-device></iq>`
/// with each ref as BINARY content (shared/protocol/03 §4.1).
pub(crate) fn pair_device(id: &str, refs: &[String]) -> Node {
    Node::new("iq")
        .attr("from", server_jid())
        .attr("type", "set")
        .attr("id", id.to_owned())
        .attr("xmlns", "md")
        .with_children([Node::new("pair-device").with_children(
            refs.iter()
                .map(|r| Node::new("ref").with_bytes(r.as_bytes().to_vec())),
        )])
}

/// `<iq from="s.whatsapp.net" type="result" id/>` with optional children (03 §10.1).
pub(crate) fn iq_result(id: &str, children: Vec<Node>) -> Node {
    let iq = Node::new("iq")
        .attr("from", server_jid())
        .attr("type", "result")
        .attr("id", id.to_owned());
    if children.is_empty() {
        iq
    } else {
        iq.with_children(children)
    }
}

/// `<iq from="s.whatsapp.net" type="error" id><error code text/></iq>` (03 §10.1).
pub(crate) fn iq_error(id: &str, code: u16, text: &'static str) -> Node {
    Node::new("iq")
        .attr("from", server_jid())
        .attr("type", "error")
        .attr("id", id.to_owned())
        .with_children([Node::new("error")
            .attr("code", code.to_string())
            .attr("text", text)])
}

/// The stream error for `kind` (03 §8.1, §8.4):
/// `<stream:error code="N"/>`,
/// `<stream:error code="401"><conflict type="device_removed"/></stream:error>`,
/// `<stream:error><conflict type="replaced"/></stream:error>` or `<xmlstreamend/>`.
pub(crate) fn stream_error(kind: &StreamErrorKind) -> Node {
    match kind {
        StreamErrorKind::Code(code) => Node::new("stream:error").attr("code", code.to_string()),
        StreamErrorKind::DeviceRemoved => Node::new("stream:error")
            .attr("code", "401")
            .with_children([Node::new("conflict").attr("type", "device_removed")]),
        StreamErrorKind::Replaced => Node::new("stream:error")
            .with_children([Node::new("conflict").attr("type", "replaced")]),
        StreamErrorKind::StreamEnd => Node::new("xmlstreamend"),
    }
}

/// `<failure reason="N"/>` sent instead of `<success>` (03 §8.2).
pub(crate) fn failure(reason: u16) -> Node {
    Node::new("failure").attr("reason", reason.to_string())
}

/// `<success t props location lid abprops creation companion_enc_static/>` in the attribute
/// order of the real captured frame (shared/protocol/02 §10 example 6, 03 §7.1).
/// `companion_enc_static` (base64 of 32 bytes) has no known meaning and no client reads it;
/// it is sent for fidelity.
pub(crate) fn success(
    t: u64,
    location: &str,
    lid: Jid,
    creation: u64,
    companion_enc_static: &[u8; 32],
) -> Node {
    use base64::Engine as _;
    Node::new("success")
        .attr("t", t.to_string())
        .attr("props", "27")
        .attr("location", location.to_owned())
        .attr("lid", lid)
        .attr("abprops", "10")
        .attr("creation", creation.to_string())
        .attr(
            "companion_enc_static",
            base64::engine::general_purpose::STANDARD.encode(companion_enc_static),
        )
}

/// `<ib from="s.whatsapp.net"><offline count="N"/></ib>`: the offline backlog is delivered
/// (03 §7.2, §9).
pub(crate) fn offline(count: usize) -> Node {
    Node::new("ib")
        .attr("from", server_jid())
        .with_children([Node::new("offline").attr("count", count.to_string())])
}

/// The primary_hello notification (03 §5.5).
pub(crate) fn primary_hello(
    id: &str,
    t: u64,
    wrapped_primary_ephemeral: &[u8],
    primary_identity: &[u8; 32],
    pairing_ref: &[u8],
) -> Node {
    Node::new("notification")
        .attr("from", server_jid())
        .attr("type", "link_code_companion_reg")
        .attr("id", id.to_owned())
        .attr("t", t.to_string())
        .with_children([Node::new("link_code_companion_reg")
            .attr("stage", "primary_hello")
            .with_children([
                Node::new("link_code_pairing_wrapped_primary_ephemeral_pub")
                    .with_bytes(wrapped_primary_ephemeral.to_vec()),
                Node::new("primary_identity_pub").with_bytes(primary_identity.to_vec()),
                Node::new("link_code_pairing_ref").with_bytes(pairing_ref.to_vec()),
            ])])
}

/// The result of companion_hello: `<iq type="result"><link_code_companion_reg>
/// <link_code_pairing_ref>ref</link_code_pairing_ref></link_code_companion_reg></iq>` (03 §5.4).
pub(crate) fn companion_hello_result(id: &str, pairing_ref: &[u8]) -> Node {
    iq_result(
        id,
        vec![
            Node::new("link_code_companion_reg")
                .with_children([
                    Node::new("link_code_pairing_ref").with_bytes(pairing_ref.to_vec())
                ]),
        ],
    )
}

/// A server ack for a stanza the client sent (03 §11, last paragraph):
/// `<ack class id from="s.whatsapp.net" t/>`.
pub(crate) fn server_ack(class: &str, id: &str, t: u64) -> Node {
    Node::new("ack")
        .attr("class", class.to_owned())
        .attr("id", id.to_owned())
        .attr("from", server_jid())
        .attr("t", t.to_string())
}

/// The content of a child as bytes, whether it arrived as raw bytes or as text (Baileys
/// sends some values as strings that the encoder may tokenise).
pub(crate) fn child_bytes(node: &Node, tag: &str) -> Option<Vec<u8>> {
    let child = node.child_by_tag(tag)?;
    if let Some(b) = child.content_bytes() {
        return Some(b.to_vec());
    }
    child.content_str().map(|s| s.as_bytes().to_vec())
}

/// The content of a child as exactly `N` bytes.
pub(crate) fn child_array<const N: usize>(node: &Node, tag: &str) -> Option<[u8; N]> {
    child_bytes(node, tag).and_then(|b| <[u8; N]>::try_from(b.as_slice()).ok())
}
