//! The worked examples of shared/protocol/02 §10, plus targeted encoder and
//! decoder behaviours named in 02 (empty strings, JID choices, errors).

use std::io::Write as _;

use wa_engine::binary::{self, Content, DecodeError, Node, Value};
use wa_engine::{Jid, Server};

fn hex(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).expect("test hex")
}

fn roundtrip(node: &Node, frame: &[u8]) {
    assert_eq!(binary::encode(node), frame, "encode {node}");
    assert_eq!(&binary::decode(frame).expect("decode"), node, "decode");
}

#[test]
fn example_1_iq_to_server_jid_with_nibble_id() {
    let node = Node::new("iq")
        .attr("to", Jid::server_jid(Server::Pn))
        .attr("type", "result")
        .attr("id", "257131597");
    roundtrip(
        &node,
        &hex("00 F8 07 19 11 FA 00 03 04 14 08 FF 85 25 71 31 59 7F"),
    );
}

#[test]
fn example_2_raw_tag_and_hex_packed_id() {
    let node = Node::new("test").attr("id", "A14AFA49C4D9AEDA69F01ADDF2289D71");
    roundtrip(
        &node,
        &hex("00 F8 03 FC 04 74657374 08 FB 10 A14AFA49C4D9AEDA69F01ADDF2289D71"),
    );
}

#[test]
fn example_3_nested_children_with_binary_content() {
    let node = Node::new("ib")
        .attr("from", Jid::server_jid(Server::Pn))
        .with_children([Node::new("edge_routing")
            .with_children([Node::new("routing_info").with_bytes(hex("08020812080d"))])]);
    roundtrip(
        &node,
        &hex("00 F8 04 FC 02 6962 06 FA 00 03 F8 01 F8 02 28 F8 01 F8 02 27 FC 06 08020812080D"),
    );
}

#[test]
fn example_4_stream_error_515() {
    roundtrip(
        &Node::new("stream:error").attr("code", "515"),
        &hex("00 F8 03 9D 70 FF 82 51 5F"),
    );
}

#[test]
fn example_5_xmlstreamend() {
    roundtrip(&Node::new("xmlstreamend"), &hex("00 F8 01 02"));
}

#[test]
fn example_6_captured_success_body() {
    let body = hex(
        "f80f4c1aff0517520218905cee043dfc0366726376f7012aff88100000000000001f4becb43cff051752020041ece6fc2c643559623557784c2b6b35554b5148564936627546524751456a30475a413565767a3862365632786b64773d",
    );
    let node = binary::decode_node(&body).expect("decode success");
    let expected = Node::new("success")
        .attr("t", "1752021890")
        .attr("props", "27")
        .attr("location", "frc")
        .attr("lid", Jid::lid("100000000000001").with_device(42))
        .attr("abprops", "10")
        .attr("creation", "1752020041")
        .attr(
            "companion_enc_static",
            "d5Yb5WxL+k5UKQHVI6buFRGQEj0GZA5evz8b6V2xkdw=",
        );
    assert_eq!(node, expected);
    assert_eq!(
        node.get_attr_jid("lid").map(ToString::to_string).as_deref(),
        Some("100000000000001:42@lid")
    );
    assert_eq!(binary::encode_node(&node), body);
}

#[test]
fn example_7_device_jids_are_ad_jids() {
    let node = Node::new("device")
        .attr("jid", Jid::pn("559984726662").with_device(77))
        .attr("lid", Jid::lid("236395184570386").with_device(77));
    roundtrip(
        &node,
        &hex("00 F8 05 3B 0C F7 00 4D FF 06 559984726662 76 F7 01 4D FF 88 236395184570386F"),
    );
}

#[test]
fn empty_string_is_binary8_zero_and_packed_empties_decode_as_empty() {
    roundtrip(
        &Node::new("x").attr("k", ""),
        &hex("00 F8 03 FC 01 78 FC 01 6B FC 00"),
    );
    for empty in ["FF 00", "FB 00", "00"] {
        let frame = hex(&format!("00 F8 03 FC 01 78 FC 01 6B {empty}"));
        let node = binary::decode(&frame).expect("decode");
        assert_eq!(node.get_attr_str("k"), Some(""), "{empty}");
    }
}

#[test]
fn device_zero_written_is_ad_jid_and_absent_device_is_jid_pair() {
    let with_zero = binary::encode(&Node::new("x").attr("to", Jid::pn("123456").with_device(0)));
    assert_eq!(with_zero, hex("00 F8 03 FC 01 78 11 F7 00 00 FF 03 123456"));
    let without = binary::encode(&Node::new("x").attr("to", Jid::pn("123456")));
    assert_eq!(without, hex("00 F8 03 FC 01 78 11 FA FF 03 123456 03"));
}

#[test]
fn messenger_and_interop_jids_use_their_own_encodings() {
    let msgr = Jid::new("1000123", Server::Messenger).with_device(7);
    let interop = Jid::new("5551234", Server::Interop)
        .with_device(2)
        .with_integrator(9);
    let node = Node::new("x")
        .attr("a", msgr.clone())
        .attr("b", interop.clone());
    let frame = binary::encode(&node);
    // FB_JID: F6 user u16-device "msgr"(token CC); INTEROP_JID: F5 user device integrator "interop".
    assert_eq!((frame[9], frame[22]), (0xF6, 0xF5), "{frame:02x?}");
    assert_eq!(binary::decode(&frame).expect("decode"), node);
    assert_eq!(interop.to_string(), "9-5551234:2@interop");
}

#[test]
fn interop_jid_without_trailing_server_is_accepted() {
    // WhatsApp Web's encoder omits the server (shared/protocol/02 §6.4).
    let frame = hex("00 F8 03 FC 01 78 FC 01 6A F5 FF 82 55 5F 00 02 00 09");
    let node = binary::decode(&frame).expect("decode");
    assert_eq!(
        node.get_attr_jid("j").map(ToString::to_string).as_deref(),
        Some("9-555:2@interop")
    );
    assert_eq!(node.content, Content::None);
}

#[test]
fn unrepresentable_jids_fall_back_to_their_string_form() {
    let odd = Jid::group("123").with_device(3);
    let node = Node::new("x").attr("to", odd.clone());
    let decoded = binary::decode(&binary::encode(&node)).expect("decode");
    assert_eq!(decoded.get_attr("to"), Some(&Value::from(odd.to_string())));
}

#[test]
fn raw_string_content_decodes_as_bytes_but_tokens_and_packed_stay_text() {
    let raw = binary::decode(&binary::encode(&Node::new("body").with_text("hello world")))
        .expect("decode");
    assert_eq!(raw.content, Content::Bytes(b"hello world".to_vec()));
    assert_eq!(raw.content_str(), Some("hello world"));
    let token =
        binary::decode(&binary::encode(&Node::new("x").with_text("result"))).expect("decode");
    assert_eq!(token.content, Content::String("result".into()));
    let packed =
        binary::decode(&binary::encode(&Node::new("x").with_text("12-34"))).expect("decode");
    assert_eq!(packed.content, Content::String("12-34".into()));
}

#[test]
fn rejects_node_with_trailing_bytes() {
    let err = binary::decode(&hex("00 F8 01 02 00")).expect_err("trailing");
    assert!(
        matches!(
            err,
            DecodeError::TrailingBytes {
                offset: 4,
                count: 1
            }
        ),
        "{err:?}"
    );
}

#[test]
fn rejects_empty_frames_nodes_and_tags() {
    assert!(matches!(binary::decode(&[]), Err(DecodeError::EmptyFrame)));
    assert!(matches!(
        binary::decode(&hex("00 F8 00")),
        Err(DecodeError::EmptyNode { offset: 1 })
    ));
    assert!(matches!(
        binary::decode(&hex("00 00")),
        Err(DecodeError::EmptyNode { .. })
    ));
    assert!(matches!(
        binary::decode(&hex("00 F8 01 FC 00")),
        Err(DecodeError::EmptyTag { offset: 3 })
    ));
    assert!(matches!(
        binary::decode(&hex("00 19")),
        Err(DecodeError::ExpectedNode {
            offset: 1,
            byte: 0x19
        })
    ));
}

#[test]
fn rejects_unused_tag_bytes_and_misplaced_jids() {
    let err = binary::decode(&hex("00 F8 02 19 F0")).expect_err("F0");
    assert!(
        matches!(
            err,
            DecodeError::InvalidTag {
                offset: 4,
                byte: 0xF0,
                ..
            }
        ),
        "{err:?}"
    );
    let err = binary::decode(&hex("00 F8 01 FA 00 03")).expect_err("JID tag");
    assert!(
        matches!(err, DecodeError::UnexpectedJid { offset: 3 }),
        "{err:?}"
    );
    let err = binary::decode(&hex("00 F8 03 19 11 FA 00 00")).expect_err("JID without server");
    assert!(
        matches!(err, DecodeError::MissingJidServer { offset: 5 }),
        "{err:?}"
    );
}

#[test]
fn rejects_invalid_nibbles_and_utf8() {
    let err = binary::decode(&hex("00 F8 03 19 08 FF 01 1C")).expect_err("nibble 12");
    assert!(
        matches!(
            err,
            DecodeError::InvalidNibble {
                offset: 7,
                value: 12
            }
        ),
        "{err:?}"
    );
    let err = binary::decode(&hex("00 F8 03 19 08 FF 01 F1")).expect_err("pad mid-string");
    assert!(
        matches!(err, DecodeError::InvalidNibble { value: 15, .. }),
        "{err:?}"
    );
    let err = binary::decode(&hex("00 F8 03 19 08 FC 01 FF")).expect_err("utf8");
    assert!(
        matches!(err, DecodeError::InvalidUtf8 { offset: 7 }),
        "{err:?}"
    );
}

#[test]
fn truncated_lengths_are_reported_with_offsets() {
    let err = binary::decode(&hex("00 F8 02 19 FE 7F FF FF FF 00")).expect_err("huge binary");
    assert!(
        matches!(
            err,
            DecodeError::UnexpectedEof {
                offset: 9,
                needed: 0x7FFF_FFFF,
                available: 1
            }
        ),
        "{err:?}"
    );
}

#[test]
fn inflates_compressed_frames_and_bounds_their_size() {
    let node = Node::new("iq")
        .attr("type", "result")
        .with_bytes(vec![b'A'; 5000]);
    let mut z = flate2::write::ZlibEncoder::new(vec![2u8], flate2::Compression::default());
    z.write_all(&binary::encode_node(&node)).expect("deflate");
    let frame = z.finish().expect("deflate");
    assert_eq!(binary::decode(&frame).expect("inflate"), node);
    // Truncated stream and trailing garbage are errors.
    assert!(matches!(
        binary::decode(&frame[..frame.len() - 3]),
        Err(DecodeError::Inflate(_))
    ));
    let mut trailing = frame.clone();
    trailing.push(0);
    assert!(matches!(
        binary::decode(&trailing),
        Err(DecodeError::TrailingCompressedBytes { count: 1 })
    ));
    // A bomb: 17 MiB of zeros.
    let mut z = flate2::write::ZlibEncoder::new(vec![2u8], flate2::Compression::best());
    z.write_all(&vec![0u8; binary::MAX_INFLATED_LEN + (1 << 20)])
        .expect("deflate");
    let bomb = z.finish().expect("deflate");
    assert!(matches!(
        binary::decode(&bomb),
        Err(DecodeError::InflatedTooLarge { .. })
    ));
}

#[test]
fn nesting_beyond_the_limit_is_rejected() {
    let mut node = Node::new("n");
    for _ in 0..binary::MAX_DEPTH {
        node = Node::new("n").with_children([node]);
    }
    let err = binary::decode(&binary::encode(&node)).expect_err("too deep");
    assert!(matches!(err, DecodeError::TooDeep { .. }), "{err:?}");
    let mut ok = Node::new("n");
    for _ in 0..binary::MAX_DEPTH - 1 {
        ok = Node::new("n").with_children([ok]);
    }
    assert_eq!(binary::decode(&binary::encode(&ok)).ok(), Some(ok));
}

#[test]
fn encode_errors_leave_the_buffer_untouched() {
    let node = Node::new("x").with_children((0..70_000).map(|_| Node::new("y")));
    let mut out = vec![1, 2, 3];
    let err = binary::try_encode_into(&node, &mut out).expect_err("too many children");
    assert!(matches!(
        err,
        binary::EncodeError::TooManyChildren { count: 70_000, .. }
    ));
    assert_eq!(out, [1, 2, 3]);
}
