//! Fuzz target: the stanza parsers of `stanza_parse` on well-formed node trees built with
//! `arbitrary`, so they see the tags, attributes and JIDs they look for far more often than
//! random frames decode to.
//!
//! Tags, attribute names and JID servers are mostly drawn from the lists the parsers use
//! (with an escape to any string); content is nodes, bytes, text or a JID. Each tree is
//! parsed as built, and again after an encode / decode round through the binary codec
//! (which normalises raw strings to bytes).
//!
//! Invariants: as `stanza_parse` (no panic; JID, QR and pairing-code round trips).
//!
//! Run: see fuzz/README.md.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use common::parsers::visit;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use wa_engine::binary::{self, Content, Node, Value};
use wa_engine::{Jid, Server};

const TAGS: &[&str] = &[
    "iq",
    "message",
    "receipt",
    "notification",
    "ack",
    "enc",
    "participants",
    "to",
    "user",
    "devices",
    "device-list",
    "device",
    "list",
    "key",
    "skey",
    "registration",
    "identity",
    "id",
    "value",
    "signature",
    "type",
    "count",
    "group",
    "participant",
    "add",
    "remove",
    "promote",
    "demote",
    "pair-success",
    "device-identity",
    "platform",
    "biz",
    "link_code_companion_reg",
    "link_code_pairing_wrapped_companion_ephemeral_pub",
    "link_code_pairing_wrapped_primary_ephemeral_pub",
    "link_code_pairing_wrapped_key_bundle",
    "link_code_pairing_ref",
    "companion_server_auth_key_pub",
    "companion_platform_id",
    "companion_platform_display",
    "primary_identity_pub",
    "companion_identity_public",
    "link_code_pairing_nonce",
    "error",
    "media_conn",
    "host",
    "usync",
    "contact",
    "lid",
    "retry",
    "keys",
    "pair-device-sign",
    "stream:error",
    "conflict",
    "failure",
    "success",
    "subject",
    "description",
    "body",
    "create",
    "delete",
    "ephemeral",
    "announcement",
    "locked",
    "unlocked",
    "membership_approval_mode",
    "modify",
    "leave",
];

const KEYS: &[&str] = &[
    "from",
    "to",
    "id",
    "type",
    "t",
    "participant",
    "jid",
    "lid",
    "code",
    "xmlns",
    "count",
    "v",
    "notify",
    "recipient",
    "category",
    "offline",
    "key-index",
    "value",
    "name",
    "hostname",
    "auth",
    "ttl",
    "reason",
    "creation",
    "subject",
    "s_t",
    "s_o",
    "creator",
    "addressing_mode",
    "size",
    "error",
    "text",
    "mediatype",
    "phash",
    "device_hash",
    "expire",
    "stage",
    "stage",
    "key_index",
    "is_hosted",
    "max_buckets",
    "auth_ttl",
    "fallback",
    "class",
    "author",
    "participant_pn",
    "sender_pn",
    "peer_recipient_pn",
    "edit",
    "retry",
    "last",
    "stale",
];

const SERVERS: &[&str] = &[
    "s.whatsapp.net",
    "lid",
    "g.us",
    "broadcast",
    "newsletter",
    "hosted",
    "hosted.lid",
    "c.us",
    "msgr",
    "interop",
    "bot",
    "call",
];

/// A name from a list, or any string.
#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Other(String),
}

impl Name {
    fn get(&self, list: &[&'static str]) -> String {
        match self {
            Self::Known(i) => list[usize::from(*i) % list.len()].to_owned(),
            Self::Other(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct AJid {
    user: AUser,
    server: Name,
    device: Option<u16>,
    agent: Option<u8>,
}

#[derive(Arbitrary, Debug)]
enum AUser {
    Phone(u64),
    Text(String),
    Empty,
}

impl AJid {
    fn build(&self) -> Jid {
        let user = match &self.user {
            AUser::Phone(n) => n.to_string(),
            AUser::Text(s) => s.clone(),
            AUser::Empty => String::new(),
        };
        let mut jid = Jid::new(user, Server::from_name(&self.server.get(SERVERS)));
        if let Some(d) = self.device {
            jid = jid.with_device(d);
        }
        if let Some(a) = self.agent {
            jid = jid.with_agent(a);
        }
        jid
    }
}

#[derive(Arbitrary, Debug)]
enum AValue {
    Text(Name),
    Number(u32),
    Jid(AJid),
}

#[derive(Arbitrary, Debug)]
enum AContent {
    None,
    Nodes(Vec<ANode>),
    Bytes(Vec<u8>),
    Text(String),
    Jid(AJid),
}

#[derive(Arbitrary, Debug)]
struct ANode {
    tag: Name,
    attrs: Vec<(Name, AValue)>,
    content: AContent,
}

impl ANode {
    fn build(&self) -> Node {
        let mut node = Node::new(self.tag.get(TAGS));
        for (key, value) in &self.attrs {
            let value = match value {
                AValue::Text(t) => Value::String(t.get(TAGS).into()),
                AValue::Number(n) => Value::String(n.to_string().into()),
                AValue::Jid(j) => Value::Jid(j.build()),
            };
            node = node.attr(key.get(KEYS), value);
        }
        node.content = match &self.content {
            AContent::None => Content::None,
            AContent::Nodes(children) => Content::Nodes(children.iter().map(Self::build).collect()),
            AContent::Bytes(b) => Content::Bytes(b.clone()),
            AContent::Text(s) => Content::String(s.clone().into()),
            AContent::Jid(j) => Content::Jid(j.build()),
        };
        node
    }
}

fuzz_target!(|tree: ANode| {
    let node = tree.build();
    visit(&node);
    if let Ok(back) = binary::decode(&binary::encode(&node)) {
        visit(&back);
    }
});
