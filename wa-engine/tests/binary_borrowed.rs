//! Property tests of the borrowed decoder (`decode_node_ref`, an arena of
//! slots read lazily): on random nodes it agrees with the owned decoder both
//! as a whole (`to_owned`) and through every accessor of the views, including
//! the lazy paths (token codes, raw UTF-8 checked at decode, packed
//! digits/hex of both parities, every JID encoding); on corrupted encodings it
//! fails exactly when, and as, the owned decoder does.

use std::borrow::Cow;

use proptest::prelude::*;
use wa_engine::binary::{self, Attrs, Content, ContentRef, Node, NodeView, Str, Value, token};
use wa_engine::{Jid, Server};

fn any_token() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        (1u8..=235).prop_map(|b| token::single_byte(b).unwrap_or("x")),
        (0u8..4, any::<u8>()).prop_map(|(d, i)| token::double_byte(d, i).unwrap_or("x")),
    ]
}

/// Text of every wire form: tokens, packable digits and hex (odd and even
/// lengths, empty, and over the 127-character packing limit), ASCII and
/// multi-byte raw text.
fn any_text() -> impl Strategy<Value = Cow<'static, str>> {
    prop_oneof![
        3 => any_token().prop_map(Cow::Borrowed),
        2 => "[0-9.-]{0,20}".prop_map(Cow::Owned),
        1 => "[0-9.-]{120,135}".prop_map(Cow::Owned),
        2 => "[0-9A-F]{0,20}".prop_map(Cow::Owned),
        1 => "[0-9A-F]{125,130}".prop_map(Cow::Owned),
        2 => "[a-zA-Z0-9]{1,24}".prop_map(Cow::Owned),
        1 => "\\PC{0,24}".prop_map(Cow::Owned),
    ]
}

fn any_tag() -> impl Strategy<Value = Cow<'static, str>> {
    prop_oneof![
        any_token().prop_map(Cow::Borrowed),
        "[a-z][a-z0-9:_-]{0,15}".prop_map(Cow::Owned),
        "[0-9]{1,9}".prop_map(Cow::Owned),
        "\\PC{1,8}".prop_map(Cow::Owned),
    ]
}

/// JIDs of every wire encoding: JID_PAIR (token, raw and packed users and
/// servers), AD_JID (all four domains and raw agents), FB_JID, INTEROP_JID.
fn any_jid() -> impl Strategy<Value = Jid> {
    let user = prop_oneof![
        "[0-9]{0,15}",
        "[0-9A-F]{1,16}",
        "[a-z0-9-]{1,12}",
        any_token().prop_map(str::to_owned),
    ];
    let server = prop_oneof![
        Just(Server::Pn),
        Just(Server::Lid),
        Just(Server::Group),
        Just(Server::Broadcast),
        Just(Server::Newsletter),
        Just(Server::Hosted),
        Just(Server::HostedLid),
        Just(Server::Messenger),
        Just(Server::Interop),
        Just(Server::Call),
        "[a-z]{1,8}".prop_map(|s| Server::from_name(&s)),
    ];
    (
        user,
        server,
        proptest::option::of(any::<u16>()),
        prop_oneof![3 => Just(0u8), 1 => any::<u8>()],
        any::<u16>(),
    )
        .prop_map(|(user, server, device, agent, integrator)| {
            let interop = server == Server::Interop;
            let mut j = Jid::new(user, server).with_agent(agent);
            if let Some(d) = device {
                j = j.with_device(d);
            }
            if interop {
                j = j.with_integrator(integrator);
            }
            j
        })
}

fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![3 => any_text().prop_map(Value::String), 1 => any_jid().prop_map(Value::Jid)]
}

fn any_attrs() -> impl Strategy<Value = Attrs> {
    // Keys may repeat: `get_attr` must return the first.
    proptest::collection::vec((any_tag(), any_value()), 0..5)
        .prop_map(|pairs| pairs.into_iter().collect())
}

fn leaf_content() -> impl Strategy<Value = Content> {
    prop_oneof![
        Just(Content::None),
        Just(Content::Nodes(Vec::new())),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Content::Bytes),
        any_text().prop_map(Content::String),
        any_jid().prop_map(Content::Jid),
    ]
}

fn any_node() -> impl Strategy<Value = Node> {
    let leaf = (any_tag(), any_attrs(), leaf_content()).prop_map(|(tag, attrs, content)| Node {
        tag,
        attrs,
        content,
    });
    leaf.prop_recursive(5, 64, 6, |inner| {
        (
            any_tag(),
            any_attrs(),
            proptest::collection::vec(inner, 0..6),
        )
            .prop_map(|(tag, attrs, children)| Node {
                tag,
                attrs,
                content: Content::Nodes(children),
            })
    })
}

/// Every accessor of a `Str` agrees with the owned string `want`.
fn check_str(s: Str<'_>, want: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(&*s.as_str(), want);
    prop_assert_eq!(&*s.to_cow(), want);
    prop_assert_eq!(s.to_string(), want);
    prop_assert_eq!(s.len(), want.len());
    prop_assert_eq!(s.is_empty(), want.is_empty());
    prop_assert_eq!(s.bytes().collect::<Vec<u8>>(), want.as_bytes());
    prop_assert!(s == *want);
    prop_assert!(s == Str::from(want));
    Ok(())
}

/// The view `v` shows exactly the owned node `n` (what `decode_node` gave).
fn check_view(v: NodeView<'_, '_>, n: &Node) -> Result<(), TestCaseError> {
    check_str(v.tag(), &n.tag)?;
    prop_assert_eq!(v.attrs().len(), n.attrs.len());
    for ((k, value), (want_k, want_v)) in v.attrs().zip(n.attrs.iter()) {
        check_str(k, want_k)?;
        prop_assert_eq!(&value.to_value(), want_v);
        match (value.as_str(), want_v) {
            (Some(s), Value::String(want)) => prop_assert_eq!(&*s, &**want),
            (None, Value::Jid(want)) => {
                let j = value.as_jid().map(|j| j.to_jid());
                prop_assert_eq!(j.as_ref(), Some(want));
            }
            (got, want) => prop_assert!(false, "value kind {:?} vs {:?}", got, want),
        }
        // The first attribute with this key, as the owned `Attrs::get`.
        let first = v.get_attr(want_k).map(|x| x.to_value());
        prop_assert_eq!(first.as_ref(), n.attrs.get(want_k));
    }
    let missing = v.get_attr("no-such-attribute\u{1}");
    prop_assert!(missing.is_none());
    prop_assert_eq!(v.children().len(), n.children().len());
    for (c, want) in v.children().zip(n.children()) {
        check_view(c, want)?;
    }
    for want in n.children() {
        let found = v.child_by_tag(&want.tag).map(|c| c.to_owned());
        prop_assert_eq!(found.as_ref(), n.child_by_tag(&want.tag));
        prop_assert_eq!(
            v.children_by_tag(&want.tag).count(),
            n.children_by_tag(&want.tag).count()
        );
    }
    match (v.content(), &n.content) {
        (ContentRef::None, Content::None) => {}
        (ContentRef::Nodes(c), Content::Nodes(want)) => prop_assert_eq!(c.len(), want.len()),
        (ContentRef::Bytes(b), Content::Bytes(want)) => {
            prop_assert_eq!(b, &want[..]);
            prop_assert_eq!(v.content_bytes(), Some(&want[..]));
        }
        // Packed content the owned decoder normalises to bytes.
        (ContentRef::String(s), Content::Bytes(want)) => {
            prop_assert!(s.is_packed());
            prop_assert_eq!(s.bytes().collect::<Vec<u8>>(), want.clone());
        }
        (ContentRef::String(s), Content::String(want)) => check_str(s, want)?,
        (ContentRef::Jid(j), Content::Jid(want)) => prop_assert_eq!(&j.to_jid(), want),
        (got, want) => prop_assert!(false, "content {:?} vs {:?}", got, want),
    }
    prop_assert_eq!(&v.to_owned(), n);
    Ok(())
}

fn count_nodes(n: &Node) -> usize {
    1 + n.children().iter().map(count_nodes).sum::<usize>()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 768, ..ProptestConfig::default() })]

    #[test]
    fn borrowed_views_agree_with_the_owned_decoder(node in any_node()) {
        let bytes = binary::encode_node(&node);
        let owned = binary::decode_node(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let tree = binary::decode_node_ref(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&tree.to_owned(), &owned);
        prop_assert!(tree.tag == *owned.tag);
        prop_assert_eq!(tree.node_count(), count_nodes(&owned));
        check_view(tree.root(), &owned)?;
        // Equality and cloning of trees are structural.
        let again = binary::decode_node_ref(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&tree, &again);
        prop_assert_eq!(&tree.clone(), &tree);
    }

    #[test]
    fn corrupted_encodings_fail_alike(
        node in any_node(),
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>(), any::<bool>()), 1..4),
    ) {
        let mut bytes = binary::encode_node(&node);
        for (at, byte, xor) in edits {
            let i = at.index(bytes.len());
            if xor { bytes[i] ^= byte } else { bytes[i] = byte }
        }
        match (binary::decode_node(&bytes), binary::decode_node_ref(&bytes)) {
            (Ok(owned), Ok(tree)) => {
                prop_assert_eq!(&tree.to_owned(), &owned);
                check_view(tree.root(), &owned)?;
            }
            (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
            (a, b) => prop_assert!(false, "owned {:?} vs borrowed {:?}", a, b.map(|t| t.to_owned())),
        }
    }
}

/// Invalid UTF-8 in raw text is a decode error for both decoders, wherever it
/// sits: tag, key, value, JID user, JID server.
#[test]
fn invalid_utf8_is_a_decode_error_in_every_string_position() {
    let bad = [0xFC, 0x02, 0xC3, 0x28]; // BINARY_8 of a broken two-byte sequence
    let cases: Vec<Vec<u8>> = vec![
        [&[0xF8, 0x01][..], &bad].concat(),
        [&[0xF8, 0x03, 0x19][..], &bad, &[0x19]].concat(),
        [&[0xF8, 0x03, 0x19, 0x19][..], &bad].concat(),
        [&[0xF8, 0x03, 0x19, 0x19, 0xFA][..], &bad, &[0x03]].concat(),
        [&[0xF8, 0x03, 0x19, 0x19, 0xFA, 0x00][..], &bad].concat(),
        [&[0xF8, 0x02, 0x19, 0xF7, 0x00, 0x01][..], &bad].concat(),
    ];
    for bytes in cases {
        let owned = binary::decode_node(&bytes);
        let borrowed = binary::decode_node_ref(&bytes);
        assert!(
            matches!(owned, Err(binary::DecodeError::InvalidUtf8 { .. })),
            "{bytes:02x?}: {owned:?}"
        );
        assert_eq!(
            owned.map(|_| ()).map_err(|e| e.to_string()),
            borrowed.map(|_| ()).map_err(|e| e.to_string()),
            "{bytes:02x?}"
        );
    }
}

/// Multi-byte UTF-8 survives the arena (checked at decode, read as `&str`).
#[test]
fn multibyte_text_reads_back() {
    let node = Node::new("x")
        .attr("name", "Zoë 👋")
        .attr("jid", Jid::new("ü", Server::from_name("srv")));
    let bytes = binary::encode_node(&node);
    let tree = binary::decode_node_ref(&bytes).expect("decodes");
    assert_eq!(
        tree.get_attr("name").and_then(|v| v.as_str()).as_deref(),
        Some("Zoë 👋")
    );
    let jid = tree
        .get_attr("jid")
        .and_then(|v| v.as_jid().map(|j| j.to_jid()));
    assert_eq!(jid, Some(Jid::new("ü", Server::from_name("srv"))));
    assert_eq!(tree.to_owned(), node);
}
