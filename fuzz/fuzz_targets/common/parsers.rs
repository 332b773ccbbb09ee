//! The stanza and content parsers of the `stanza_parse` and `stanza_tree` targets: every
//! parser the engine runs on a received node, message or string (included with `#[path]`).

#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::Instant;

use prost::Message as _;
use wa_engine::binary::{Node, Value};
use wa_engine::group::{self, ParticipantAction};
use wa_engine::media::{MediaConn, MediaRef, MediaType};
use wa_engine::message::{content, pad, stanza as msg_stanza};
use wa_engine::pair::{self, AdvSecret, PairSuccess, QrCode, code};
use wa_engine::stanza::{CloseReason, ack, iq};
use wa_engine::{Jid, ReceiptKind, prekeys, receipt, signal, usync};
use wa_proto::wa;

use super::FuzzRng;

/// How many nodes of one tree get the full parser treatment.
const NODE_BUDGET: usize = 64;

/// The companion's keys and ADV secret of shared/vectors/pairing/pair_success.json, so
/// the vector's pair-success (a seed) verifies and mutations of it reach every check.
const IDENTITY_PRIVATE: &str = "90668bce48a2098432bdd1e47a0bdb6cac5e3113d452c50ec8f2ba0d6ef4214c";
const IDENTITY_PUBLIC: &str = "af7526135189cbc49f1b5d9cbeaccc81af852b2369ad3bc8aedd460d7f55d713";
const ADV_SECRET: &str = "db9df5e3cf5a20f99c8b6839a15f790833756fcbfbe0fa894286723f25a7cac7";

fn unhex32(s: &str) -> [u8; 32] {
    let mut out = [0; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex");
    }
    out
}

pub struct Fixed {
    own: Jid,
    own_lid: Jid,
    identity_private: [u8; 32],
    identity_public: [u8; 32],
    adv: AdvSecret,
    pub code: code::PairingCode,
    now: Instant,
}

pub fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| Fixed {
        own: Jid::pn("15550002222").with_device(5),
        own_lid: Jid::lid("100000000000001").with_device(5),
        identity_private: unhex32(IDENTITY_PRIVATE),
        identity_public: unhex32(IDENTITY_PUBLIC),
        adv: AdvSecret::from_bytes(unhex32(ADV_SECRET)),
        code: code::PairingCode::parse("ABCD1234").expect("valid code"),
        now: Instant::now(),
    })
}

/// Every stanza parser on one node.
fn parse_stanza(node: &Node) {
    let f = fixed();
    for own in [&f.own, &f.own_lid] {
        if let Ok((info, encs)) = msg_stanza::parse_message(node, own) {
            assert!(!info.id.is_empty());
            for enc in &encs {
                message_bytes(&enc.ciphertext);
            }
        }
        let _ = receipt::parse_receipt(node, own);
        let _ = receipt::parse_retry(node, own);
    }
    let _ = iq::parse_response(node);
    let _ = iq::parse_prekey_count(node);
    let _ = ack::ack_for(node);
    let _ = ack::nack_for(node, 487);
    let conflict = node
        .child_by_tag("conflict")
        .and_then(|c| c.get_attr_str("type"));
    let reason = CloseReason::from_stream_error(node.get_attr_str("code"), conflict);
    let _ = (reason.reconnect(), reason.to_string());
    let reason = CloseReason::from_failure(
        node.get_attr_str("reason"),
        node.get_attr_str("code"),
        node.get_attr_str("expire"),
    );
    let _ = (reason.reconnect(), reason.to_string());
    if let Ok(users) = usync::parse_devices(node) {
        for u in &users {
            let _ = u.jids().count();
        }
    }
    let _ = usync::parse_contacts(node);
    let _ = group::parse_group(node);
    let _ = group::parse_group_result(node);
    for action in [
        ParticipantAction::Add,
        ParticipantAction::Remove,
        ParticipantAction::Promote,
        ParticipantAction::Demote,
    ] {
        let _ = group::parse_participants_result(node, action);
    }
    let _ = group::parse_notification(node);
    let _ = group::parse_participating(node);
    let _ = group::parse_invite_code(node);
    let _ = group::parse_joined(node);
    let _ = group::parse_picture(node);
    let _ = group::parse_set_picture(node);
    let _ = group::parse_status(node);
    if let Ok(ps) = PairSuccess::parse(node) {
        let _ = pair::verify_pair_success(
            &mut FuzzRng::new(4),
            &ps,
            &f.identity_private,
            &f.identity_public,
            &f.adv,
        );
    }
    let _ = pair::verify_pair_device_sign(node, b"details", &f.identity_public, &[9; 32]);
    if let Ok(hello) = code::parse_companion_hello(node) {
        let _ = code::unwrap_ephemeral_pub(&f.code, &hello.wrapped_companion_ephemeral_pub);
    }
    let _ = code::parse_companion_hello_result(node);
    if let Ok(hello) = code::parse_primary_hello(node) {
        let _ = code::unwrap_ephemeral_pub(&f.code, &hello.wrapped_primary_ephemeral_pub);
    }
    if let Ok(finish) = code::parse_companion_finish(node) {
        let secret = x25519_dalek::StaticSecret::from([5; 32]);
        let _ = code::primary_finish(&secret, &[6; 32], &secret, &finish.wrapped_key_bundle);
    }
    let _ = prekeys::parse_bundle(node, None);
    let _ = prekeys::parse_bundle(node, Some(1234));
    if let Ok(list) = prekeys::parse_bundles(node) {
        for (jid, _) in &list {
            decoded_jid(jid);
        }
    }
    let _ = prekeys::parse_count(node);
    let _ = MediaConn::parse(node, f.now);
    let _ = node.to_string();
}

/// Parsers on a tree: the root and nodes inside it, breadth first, within the budget;
/// text parsers on attribute values and string content, Message parsers on byte content.
pub fn visit(root: &Node) {
    let mut queue = std::collections::VecDeque::from([root]);
    let mut seen = 0;
    while let Some(node) = queue.pop_front() {
        if seen == NODE_BUDGET {
            break;
        }
        seen += 1;
        parse_stanza(node);
        for (_, value) in node.attrs.iter() {
            match value {
                Value::String(s) => text(s),
                Value::Jid(j) => decoded_jid(j),
            }
        }
        if let Some(s) = node.content_str() {
            text(s);
        }
        if let Some(b) = node.content_bytes() {
            message_bytes(b);
        }
        if let Some(j) = node.content_jid() {
            decoded_jid(j);
        }
        queue.extend(node.children());
    }
}

/// A JID from the binary decoder or a message field: the decoder takes any user string (as
/// whatsmeow's does), and one holding a separator (`.` `_` `:` `@` `-`) in its user, or an
/// empty or `@`-holding server, cannot survive `Display` / `FromStr` (e.g. user `1.5` reads
/// back as user `1`, agent 5; `x@` does not parse). Those only must not panic; every other
/// JID must round-trip.
pub fn decoded_jid(jid: &Jid) {
    let plain = !jid.user().contains(['.', '_', ':', '@', '-'])
        && !jid.server().as_str().is_empty()
        && !jid.server().as_str().contains('@');
    if plain {
        jid_round_trip(jid);
    } else {
        let _ = jid.to_string().parse::<Jid>();
    }
}

/// A JID that must survive `Display` then `FromStr` unchanged.
pub fn jid_round_trip(jid: &Jid) {
    let shown = jid.to_string();
    match shown.parse::<Jid>() {
        Ok(again) => assert_eq!(&again, jid, "JID {shown:?} does not round-trip"),
        Err(e) => panic!("displayed JID {shown:?} does not parse: {e}"),
    }
}

/// The text parsers.
pub fn text(s: &str) {
    if let Ok(jid) = s.parse::<Jid>() {
        jid_round_trip(&jid);
        let _ = (jid.to_non_ad(), usync::device_jid(&jid, 3));
    }
    if let Ok(qr) = QrCode::parse(s) {
        let again = QrCode::parse(&qr.encode()).expect("encoded QR parses");
        assert_eq!(again.encode(), qr.encode(), "QR round trip");
        // The legacy form has no prefix, so a ref with edge whitespace loses it to `trim`.
        let _ = QrCode::parse(&qr.encode_legacy());
    }
    if let Ok(c) = code::PairingCode::parse(s) {
        let again = code::PairingCode::parse(c.as_str()).expect("pairing code re-parses");
        assert_eq!(again.as_str(), c.as_str());
        let _ = code::PairingCode::parse(&c.display());
    }
    let _ = code::normalize_phone(s);
    let _ = MediaType::from_name(s);
    let kind = ReceiptKind::from_attr(Some(s));
    let _ = kind.as_attr();
    let _ = CloseReason::from_stream_error(Some(s), Some(s)).reconnect();
    let _ = CloseReason::from_failure(Some(s), Some(s), Some(s)).reconnect();
}

/// Bytes as a (padded or not) Message and as a sender key distribution message.
pub fn message_bytes(bytes: &[u8]) {
    message(bytes);
    if let Ok(body) = pad::unpad(bytes) {
        assert!(body.len() < bytes.len());
        message(body);
    }
}

/// What the engine does with a decrypted message's bytes (conn/messaging/recv.rs).
fn message(plain: &[u8]) {
    let Ok(mut message) = wa::Message::decode(plain) else {
        return;
    };
    if let Some(skdm) = message.sender_key_distribution_message.as_ref()
        && let Some(bytes) = skdm.axolotl_sender_key_distribution_message.as_deref()
    {
        let _ = signal::SenderKeyDistributionMessage::decode(bytes);
    }
    if let Some(dsm) = message.device_sent_message.take() {
        if let Some(dest) = dsm
            .destination_jid
            .as_deref()
            .and_then(|d| d.parse::<Jid>().ok())
        {
            jid_round_trip(&dest);
            decoded_jid(&dest.to_non_ad());
        }
        let context = message.message_context_info.take();
        message = dsm.message.map(|m| *m).unwrap_or_default();
        if message.message_context_info.is_none() {
            message.message_context_info = context;
        }
    }
    let _ = content::unwrap(&message);
    let _ = content::text_of(&message);
    let _ = content::media_type(&message);
    let _ = content::stanza_type(&message);
    if let Ok(Some(media)) = MediaRef::from_message(&message) {
        let _ = media.expected();
    }
}
