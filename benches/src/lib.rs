//! Shared setup for the benchmarks in `benches/benches/`.

use std::path::Path;

use wa_engine::binary;

/// Frames up to this size count as typical stanzas.
pub const TYPICAL_MAX: usize = 4096;

/// One corpus entry: the frame and the same node for both codecs.
pub struct Case {
    /// The frame (flags byte `00` + node), as in the vector file.
    pub frame: Vec<u8>,
    /// The node for wa-engine.
    pub ours: binary::Node,
    /// The same node for wacore-binary.
    pub theirs: wacore_binary::Node,
}

/// Loads shared/vectors/binary/binary_nodes.jsonl, checks that both codecs
/// re-encode every node to the vector's bytes, and splits it into typical
/// (frame <= [`TYPICAL_MAX`]) and large cases.
///
/// # Errors
/// A missing or malformed vector file, or a codec that disagrees with it.
pub fn load_binary_corpus() -> anyhow::Result<(Vec<Case>, Vec<Case>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors/binary/binary_nodes.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        anyhow::anyhow!(
            "vector file {} missing ({e}); it must exist",
            path.display()
        )
    })?;
    let (mut typical, mut large) = (Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let frame = hex::decode(v["hex"].as_str().unwrap_or_default())?;
        let ours = binary::decode(&frame)?;
        anyhow::ensure!(
            binary::encode(&ours) == frame,
            "{}: our re-encoding differs",
            v["id"]
        );
        let theirs = to_wacore(&ours)?;
        let their_frame =
            wacore_binary::marshal(&theirs).map_err(|e| anyhow::anyhow!("wacore encode: {e}"))?;
        anyhow::ensure!(
            their_frame == frame,
            "{}: wacore re-encoding differs",
            v["id"]
        );
        let case = Case {
            frame,
            ours,
            theirs,
        };
        if case.frame.len() <= TYPICAL_MAX {
            typical.push(case)
        } else {
            large.push(case)
        }
    }
    anyhow::ensure!(typical.len() + large.len() == 299, "expected 299 vectors");
    Ok((typical, large))
}

/// The same logical node as a `wacore_binary::Node` (JIDs as typed JIDs,
/// parsed from their string form).
fn to_wacore(n: &binary::Node) -> anyhow::Result<wacore_binary::Node> {
    use wacore_binary::{CompactString, NodeContent, NodeValue};
    let mut attrs = wacore_binary::Attrs::with_capacity(n.attrs.len());
    for (k, v) in n.attrs.iter() {
        let value = match v {
            binary::Value::String(s) => NodeValue::String(CompactString::from(s.as_ref())),
            binary::Value::Jid(j) => NodeValue::Jid(
                j.to_string()
                    .parse()
                    .map_err(|e| anyhow::anyhow!("wacore JID {j}: {e:?}"))?,
            ),
        };
        attrs.push_value(k.to_owned(), value);
    }
    let content = match &n.content {
        binary::Content::None => None,
        binary::Content::Nodes(children) => Some(NodeContent::Nodes(
            children
                .iter()
                .map(to_wacore)
                .collect::<anyhow::Result<_>>()?,
        )),
        binary::Content::Bytes(b) => Some(NodeContent::Bytes(b.clone())),
        binary::Content::String(s) => Some(NodeContent::String(CompactString::from(s.as_ref()))),
        binary::Content::Jid(j) => Some(NodeContent::String(CompactString::from(j.to_string()))),
    };
    Ok(wacore_binary::Node::new(n.tag.to_string(), attrs, content))
}
