//! Message-layer builders and parsers against the shared vectors: phash
//! (shared/vectors/phash), prekey bundles in recorded fetch results (shared/vectors/signal),
//! and real stanzas (shared/vectors/stanzas).

use wa_engine::Jid;
use wa_engine::binary::{self, Node};
use wa_engine::message::{phash, stanza};
use wa_engine::prekeys;
use wa_engine::signal::{
    EncType, KeyPair, PreKeyRecord, PrivateKey, PublicKey, SignedPreKeyRecord,
};

mod signal_support;
use signal_support::{load_json, unhex};

#[test]
fn participant_hash_matches_every_phash_vector() {
    let v = load_json("phash/phash.json");
    let cases = v["cases"].as_array().expect("cases");
    assert!(cases.len() >= 10, "expected the 10 recorded cases");
    for case in cases {
        let devices: Vec<Jid> = case["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap().parse().expect("device JID"))
            .collect();
        assert_eq!(
            phash::participant_hash(&devices),
            case["phash"].as_str().unwrap(),
            "case {}",
            case["name"]
        );
    }
}

#[test]
fn recorded_prekey_fetch_results_parse_into_the_recorded_bundles() {
    let v = load_json("signal/sessions.json");
    let mut seen = 0;
    for scenario in v["scenarios"].as_array().unwrap() {
        for b in scenario["bundles"].as_array().unwrap() {
            let iq = binary::decode(&unhex(b["iq_result_hex"].as_str().unwrap())).expect("decodes");
            let parsed = prekeys::parse_bundles(&iq).expect("list");
            assert_eq!(parsed.len(), 1);
            let (jid, bundle) = &parsed[0];
            assert!(jid.device() > 0 || jid.is_user());
            let bundle = bundle.as_ref().expect("bundle");
            let want = &b["bundle"];
            assert_eq!(
                u64::from(bundle.registration_id),
                want["registration_id"].as_u64().unwrap()
            );
            assert_eq!(
                bundle.identity_key.as_bytes().to_vec(),
                unhex(want["identity_key"].as_str().unwrap())
            );
            assert_eq!(
                u64::from(bundle.signed_prekey_id),
                want["signed_prekey"]["id"].as_u64().unwrap()
            );
            assert!(bundle.verify_signature());
            match want["one_time_prekey"].as_object() {
                Some(opk) => {
                    let (id, key) = bundle.prekey.expect("one-time prekey");
                    assert_eq!(u64::from(id), opk["id"].as_u64().unwrap());
                    assert_eq!(
                        key.as_bytes().to_vec(),
                        unhex(opk["public"].as_str().unwrap())
                    );
                }
                None => assert!(bundle.prekey.is_none()),
            }
            seen += 1;
        }
    }
    assert!(seen >= 2);
}

fn stanza_vector(id: &str) -> (Node, Vec<u8>) {
    let v = load_json("stanzas/stanzas.json");
    let entry = v["stanzas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("stanza vector {id} missing"));
    let hex = unhex(entry["hex"].as_str().unwrap());
    (binary::decode(&hex).expect("decodes"), hex)
}

#[test]
fn real_peer_message_from_own_primary_is_classified_as_from_me() {
    let (node, _) = stanza_vector("message-peer-pkmsg");
    let own: Jid = "559984726662:77@s.whatsapp.net".parse().unwrap();
    let (info, encs) = stanza::parse_message(&node, &own).expect("parses");
    assert!(info.from_me);
    assert!(!info.is_group);
    assert_eq!(info.chat.to_string(), "559984726662@s.whatsapp.net");
    assert_eq!(info.sender.device(), 0);
    assert_eq!(info.category.as_deref(), Some("peer"));
    assert_eq!(info.id, "A14AFA49C4D9AEDA69F01ADDF2289D71");
    assert_eq!(info.timestamp, 1_764_814_152);
    assert_eq!(encs.len(), 1);
    assert_eq!(encs[0].kind, Some(EncType::PkMsg));
    // Its receipt would be `peer_msg` to the primary.
    let receipt = wa_engine::receipt::delivery_receipt(&node, &wa_engine::ReceiptKind::PeerMsg);
    assert_eq!(receipt.get_attr_str("type"), Some("peer_msg"));
    assert_eq!(
        receipt
            .get_attr_jid("to")
            .map(ToString::to_string)
            .as_deref(),
        Some("559984726662@s.whatsapp.net")
    );
}

#[test]
fn prekey_upload_encodes_like_the_real_client() {
    // The fixture is trimmed (one prekey, no <skey>): compare everything before our skey.
    let (node, hex) = stanza_vector("prekey-upload-trimmed");
    let identity = PublicKey::from_slice(
        node.child_by_tag("identity")
            .unwrap()
            .content_bytes()
            .unwrap(),
    )
    .unwrap();
    let value = node
        .child_path(&["list", "key", "value"])
        .unwrap()
        .content_bytes()
        .unwrap();
    // Only the public half goes on the wire; the private half here is filler.
    let prekey = PreKeyRecord {
        id: 1,
        key_pair: KeyPair {
            public: PublicKey::from_slice(value).unwrap(),
            private: PrivateKey::from_bytes([1; 32]),
        },
    };
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_seed([2; 32]);
    let spk = SignedPreKeyRecord::generate(1, &PrivateKey::from_bytes([3; 32]), &mut rng);
    let mut ours = prekeys::upload_iq("test-prekey-1", 0xFE, &identity, &[prekey], &spk);
    // Same attribute order as the fixture.
    let mut attrs = wa_engine::binary::Attrs::new();
    for key in ["xmlns", "type", "to", "id"] {
        attrs.push(key, ours.get_attr(key).unwrap().clone());
    }
    ours.attrs = attrs;
    if let wa_engine::binary::Content::Nodes(children) = &mut ours.content {
        assert_eq!(
            children.pop().map(|c| c.tag.to_string()).as_deref(),
            Some("skey")
        );
    }
    assert_eq!(binary::encode(&ours), hex);
}
