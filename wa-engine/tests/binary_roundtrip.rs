//! Property tests: `decode(encode(n)) == n` modulo the documented
//! normalisation (shared/protocol/02; `wa_engine::binary` module docs), and
//! `parse(display(j)) == j` for JIDs.

use std::borrow::Cow;

use proptest::prelude::*;
use wa_engine::binary::{self, Attrs, Content, Node, Value, token};
use wa_engine::{Jid, Server};

const KNOWN_SERVERS: [Server; 12] = [
    Server::Pn,
    Server::Lid,
    Server::Group,
    Server::Broadcast,
    Server::Newsletter,
    Server::Hosted,
    Server::HostedLid,
    Server::LegacyUser,
    Server::Messenger,
    Server::Interop,
    Server::Bot,
    Server::Call,
];

fn any_server() -> impl Strategy<Value = Server> {
    prop_oneof![
        4 => proptest::sample::select(KNOWN_SERVERS.to_vec()),
        1 => "[a-z]{1,8}(\\.[a-z]{2,3})?".prop_filter_map("known server", |s| {
            Server::known(&s).is_none().then(|| Server::from_name(&s))
        }),
    ]
}

/// Users that print and parse back unambiguously: no `@ : . _`, and digits
/// only on interop (where `N-` is the integrator prefix).
fn user_for(server: &Server) -> BoxedStrategy<String> {
    if *server == Server::Interop {
        "[0-9]{1,15}".boxed()
    } else {
        prop_oneof![
            "[0-9]{0,18}",
            "[0-9]{6,12}-[0-9]{10}",
            "[0-9A-F]{16}",
            "[a-zA-Z0-9-]{1,12}"
        ]
        .boxed()
    }
}

/// Any JID whose string form parses back to it.
fn any_jid() -> impl Strategy<Value = Jid> {
    any_server().prop_flat_map(|server| {
        (
            user_for(&server),
            any::<Option<u16>>(),
            prop_oneof![3 => Just(0u8), 1 => any::<u8>()],
            any::<u16>(),
        )
            .prop_map(move |(user, device, agent, integrator)| {
                let mut j = Jid::new(user, server.clone()).with_agent(agent);
                if let Some(d) = device {
                    j = j.with_device(d);
                }
                if server == Server::Interop {
                    j = j.with_integrator(integrator);
                }
                j
            })
    })
}

/// JIDs the wire encodings carry exactly (JID_PAIR, AD_JID, FB_JID, INTEROP_JID).
fn wire_jid() -> impl Strategy<Value = Jid> {
    any_server().prop_flat_map(|server| {
        let device: BoxedStrategy<Option<u16>> = match server {
            Server::Pn | Server::Lid | Server::Hosted | Server::HostedLid => {
                proptest::option::of(0u16..=255).boxed()
            }
            Server::Messenger | Server::Interop => any::<Option<u16>>().boxed(),
            _ => Just(None).boxed(),
        };
        (
            user_for(&server),
            device,
            any::<u16>(),
            prop_oneof![3 => Just(0u8), 1 => 2u8..=127],
        )
            .prop_map(move |(user, device, integrator, agent)| {
                let mut j = Jid::new(user, server.clone());
                if let Some(d) = device {
                    j = j.with_device(d);
                    if server == Server::Interop {
                        j = j.with_integrator(integrator);
                    }
                    if server == Server::Pn {
                        j = j.with_agent(agent);
                    }
                }
                j
            })
    })
}

fn any_token() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        (1u8..=235).prop_map(|b| token::single_byte(b).unwrap_or("x")),
        (0u8..4, any::<u8>()).prop_map(|(d, i)| token::double_byte(d, i).unwrap_or("x")),
    ]
}

fn any_text() -> impl Strategy<Value = Cow<'static, str>> {
    prop_oneof![
        any_token().prop_map(Cow::Borrowed),
        "[0-9.-]{0,130}".prop_map(Cow::Owned),
        "[0-9A-F]{0,130}".prop_map(Cow::Owned),
        "[0-9a-f]{1,40}".prop_map(Cow::Owned),
        "\\PC{0,40}".prop_map(Cow::Owned),
        ".{0,300}".prop_map(Cow::Owned),
    ]
}

fn any_tag() -> impl Strategy<Value = Cow<'static, str>> {
    prop_oneof![
        any_token().prop_map(Cow::Borrowed),
        "[a-z][a-z0-9:_-]{0,15}".prop_map(Cow::Owned)
    ]
}

fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![3 => any_text().prop_map(Value::String), 1 => wire_jid().prop_map(Value::Jid)]
}

fn any_attrs() -> impl Strategy<Value = Attrs> {
    proptest::collection::vec((any_tag(), any_value()), 0..6)
        .prop_map(|pairs| pairs.into_iter().collect())
}

fn leaf_content() -> impl Strategy<Value = Content> {
    prop_oneof![
        Just(Content::None),
        Just(Content::Nodes(Vec::new())),
        proptest::collection::vec(any::<u8>(), 0..600).prop_map(Content::Bytes),
        any_text().prop_map(Content::String),
        wire_jid().prop_map(Content::Jid),
    ]
}

fn any_node() -> impl Strategy<Value = Node> {
    let leaf = (any_tag(), any_attrs(), leaf_content()).prop_map(|(tag, attrs, content)| Node {
        tag,
        attrs,
        content,
    });
    leaf.prop_recursive(4, 48, 6, |inner| {
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

/// Whether the encoder writes `s` as a token or packed string (shared/protocol/02
/// §4.1, restated here independently of the encoder).
fn stays_text(s: &str) -> bool {
    if token::lookup(s).is_some() {
        return true;
    }
    let packable =
        |alphabet: &dyn Fn(u8) -> bool| (1..=127).contains(&s.len()) && s.bytes().all(alphabet);
    packable(&|b| b.is_ascii_digit() || b == b'-' || b == b'.')
        || packable(&|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

/// What `n` decodes back as: raw-written string content comes back as bytes.
fn normalised(n: &Node) -> Node {
    let content = match &n.content {
        Content::String(s) if !stays_text(s) => Content::Bytes(s.as_bytes().to_vec()),
        Content::Nodes(children) => Content::Nodes(children.iter().map(normalised).collect()),
        other => other.clone(),
    };
    Node {
        tag: n.tag.clone(),
        attrs: n.attrs.clone(),
        content,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decode_of_encode_is_identity_modulo_raw_string_content(node in any_node()) {
        let frame = binary::encode(&node);
        let decoded = binary::decode(&frame).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&decoded, &normalised(&node));
        prop_assert_eq!(binary::encode(&decoded), frame);
    }

    #[test]
    fn jid_display_parses_back(jid in any_jid()) {
        let text = jid.to_string();
        prop_assert_eq!(text.parse::<Jid>().ok(), Some(jid), "{}", text);
    }

    #[test]
    fn wire_jids_round_trip_as_attribute_and_content(jid in wire_jid()) {
        let node = Node::new("x").attr("jid", jid.clone()).with_content(jid.clone());
        let decoded = binary::decode(&binary::encode(&node)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(decoded.get_attr_jid("jid"), Some(&jid));
        prop_assert_eq!(decoded.content_jid(), Some(&jid));
    }

    #[test]
    fn any_jid_round_trips_through_the_codec_as_jid_or_its_string(jid in any_jid()) {
        let node = Node::new("x").attr("jid", jid.clone());
        let decoded = binary::decode(&binary::encode(&node)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let value = decoded.get_attr("jid").cloned();
        prop_assert!(value == Some(Value::Jid(jid.clone())) || value == Some(Value::from(jid.to_string())));
    }
}
