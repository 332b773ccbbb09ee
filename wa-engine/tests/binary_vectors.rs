//! Binary node codec against shared/vectors/binary (nodes encoded by Baileys
//! 7.0.0-rc14; wacore-binary 0.7.0 produces identical bytes).

mod binary_support;

use binary_support::{hex_field, json_to_node, load_jsonl, node_to_json};
use wa_engine::binary;

/// Lines in binary_nodes.jsonl (shared/vectors/README.md: 299 nodes).
const BINARY_NODES: usize = 299;
/// Lines in decode_only.jsonl (shared/vectors/README.md: 12 frames).
const DECODE_ONLY: usize = 12;

#[test]
fn every_vector_node_encodes_to_its_exact_bytes() {
    let vectors = load_jsonl("binary_nodes.jsonl");
    assert_eq!(vectors.len(), BINARY_NODES, "binary_nodes.jsonl line count");
    let mut failures = Vec::new();
    for v in &vectors {
        let node = json_to_node(&v["node"]);
        let expected = hex_field(v);
        let got = binary::encode(&node);
        if got != expected {
            let at = got
                .iter()
                .zip(&expected)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(expected.len()));
            failures.push(format!(
                "{} ({}): first difference at byte {at}",
                v["id"], v["kind"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_vector_frame_decodes_to_its_node() {
    let vectors = load_jsonl("binary_nodes.jsonl");
    assert_eq!(vectors.len(), BINARY_NODES, "binary_nodes.jsonl line count");
    for v in &vectors {
        let expected = if v.get("decoded").is_some() {
            &v["decoded"]
        } else {
            &v["node"]
        };
        let node = binary::decode(&hex_field(v)).unwrap_or_else(|e| panic!("{}: {e}", v["id"]));
        // String form: JIDs print exactly as the vector wrote them.
        assert_eq!(
            &node_to_json(&node),
            expected,
            "{} ({})",
            v["id"],
            v["kind"]
        );
        // Typed form: JID-valued items decode as JIDs, not strings.
        assert_eq!(
            node,
            json_to_node(expected),
            "{} ({}) typed",
            v["id"],
            v["kind"]
        );
    }
}

#[test]
fn every_decoded_vector_reencodes_to_the_same_bytes() {
    for v in &load_jsonl("binary_nodes.jsonl") {
        let frame = hex_field(v);
        let node = binary::decode(&frame).unwrap_or_else(|e| panic!("{}: {e}", v["id"]));
        assert_eq!(binary::encode(&node), frame, "{} ({})", v["id"], v["kind"]);
    }
}

#[test]
fn every_decode_only_frame_decodes_to_its_node() {
    let vectors = load_jsonl("decode_only.jsonl");
    assert_eq!(vectors.len(), DECODE_ONLY, "decode_only.jsonl line count");
    for v in &vectors {
        let node = binary::decode(&hex_field(v)).unwrap_or_else(|e| {
            panic!(
                "{} ({}): {e} ({:?})",
                v["id"],
                v["kind"],
                std::error::Error::source(&e)
            )
        });
        assert_eq!(
            node_to_json(&node),
            v["decoded"],
            "{} ({})",
            v["id"],
            v["kind"]
        );
        assert_eq!(
            node,
            json_to_node(&v["decoded"]),
            "{} ({}) typed",
            v["id"],
            v["kind"]
        );
        // Whatever we decode, we re-encode to something that decodes the same.
        assert_eq!(
            binary::decode(&binary::encode(&node)).ok(),
            Some(node),
            "{} re-encode",
            v["id"]
        );
    }
}

#[test]
fn bare_node_functions_match_the_frame_functions() {
    for v in load_jsonl("binary_nodes.jsonl").iter().take(100) {
        let frame = hex_field(v);
        let node = binary::decode_node(&frame[1..]).unwrap_or_else(|e| panic!("{}: {e}", v["id"]));
        assert_eq!(binary::encode_node(&node), frame[1..]);
        let mut out = vec![0xAA];
        binary::encode_into(&node, &mut out);
        assert_eq!(out[1..], frame[..]);
    }
}

#[test]
fn borrowed_decode_matches_owned_decode_on_every_vector() {
    let mut frames: Vec<Vec<u8>> = load_jsonl("binary_nodes.jsonl")
        .iter()
        .map(hex_field)
        .collect();
    frames.extend(load_jsonl("decode_only.jsonl").iter().map(hex_field));
    for frame in frames {
        let body = binary::unpack(&frame).expect("unpack");
        let owned = binary::decode_node(&body).expect("owned decode");
        let borrowed = binary::decode_node_ref(&body).expect("borrowed decode");
        assert_eq!(borrowed.to_owned(), owned);
        assert_eq!(borrowed.tag, *owned.tag);
    }
}
