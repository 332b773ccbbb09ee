//! Shared helpers for the binary-node vector tests: loading the JSONL files
//! from shared/vectors/binary and converting between their JSON node form and
//! `binary::Node` (format: shared/vectors/README.md, "binary/").

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value as Json, json};
use wa_engine::Jid;
use wa_engine::binary::{Attrs, Content, Node, Value};

/// Path of a file in shared/vectors/binary.
pub(crate) fn vector_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors/binary")
        .join(name)
}

/// Every line of a JSONL vector file, parsed. Panics if the file is missing.
pub(crate) fn load_jsonl(name: &str) -> Vec<Json> {
    let path = vector_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "vector file {} is missing or unreadable ({e}); it must exist",
            path.display()
        )
    });
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{name} line {}: {e}", i + 1))
        })
        .collect()
}

/// Decodes the `hex` field of a vector.
pub(crate) fn hex_field(v: &Json) -> Vec<u8> {
    let h = v["hex"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no hex", v["id"]));
    hex::decode(h).unwrap_or_else(|e| panic!("{}: bad hex: {e}", v["id"]))
}

/// Converts a vector's JSON node into a typed `Node`, the way the vector's
/// encoder (Baileys) read it: a string containing `@` is a JID (Baileys
/// `writeString` -> `jidDecode`; no token, nibble or hex string contains `@`),
/// anything else text.
pub(crate) fn json_to_node(j: &Json) -> Node {
    let tag = j["tag"]
        .as_str()
        .unwrap_or_else(|| panic!("node without tag: {j}"));
    let mut attrs = Attrs::new();
    for pair in j["attrs"]
        .as_array()
        .unwrap_or_else(|| panic!("node without attrs: {j}"))
    {
        let (k, v) = (
            pair[0].as_str().expect("attr key"),
            pair[1].as_str().expect("attr value"),
        );
        let value = if v.contains('@') {
            Value::Jid(parse_jid(v))
        } else {
            Value::from(v.to_owned())
        };
        attrs.push(k.to_owned(), value);
    }
    let content = match j.get("content") {
        None => Content::None,
        Some(Json::Array(children)) => Content::Nodes(children.iter().map(json_to_node).collect()),
        Some(Json::String(s)) if s.contains('@') => Content::Jid(parse_jid(s)),
        Some(Json::String(s)) => Content::String(s.clone().into()),
        Some(Json::Object(o)) => {
            let b64 = o
                .get("b64")
                .and_then(Json::as_str)
                .unwrap_or_else(|| panic!("bad content object {j}"));
            Content::Bytes(B64.decode(b64).expect("bad base64"))
        }
        Some(other) => panic!("unexpected content {other}"),
    };
    Node::new(tag.to_owned())
        .with_attrs(attrs)
        .with_content(content)
}

fn parse_jid(s: &str) -> Jid {
    s.parse()
        .unwrap_or_else(|e| panic!("vector JID {s:?} does not parse: {e}"))
}

/// Converts a decoded `Node` into the vectors' JSON form (JIDs as their string
/// form, bytes as `{"b64": ...}`).
pub(crate) fn node_to_json(n: &Node) -> Json {
    let attrs: Vec<Json> = n
        .attrs
        .iter()
        .map(|(k, v)| json!([k, v.to_text()]))
        .collect();
    let mut obj = json!({ "tag": n.tag, "attrs": attrs });
    let content = match &n.content {
        Content::None => None,
        Content::Nodes(children) => Some(Json::Array(children.iter().map(node_to_json).collect())),
        Content::Bytes(b) => Some(json!({ "b64": B64.encode(b) })),
        Content::String(s) => Some(json!(s)),
        Content::Jid(j) => Some(json!(j.to_string())),
    };
    if let (Some(c), Some(o)) = (content, obj.as_object_mut()) {
        o.insert("content".into(), c);
    }
    obj
}
