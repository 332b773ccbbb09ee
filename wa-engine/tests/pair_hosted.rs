//! Hosted accounts in pairing (issue 13 item 7; shared/protocol/03 §4.7): the prefix families
//! `06 00`/`06 01` (E2EE) and `06 05`/`06 06` (hosted). The companion accepts a hosted account
//! signature and signs its device signature in the same family (`06 06`); the phone accepts
//! `06 01` only for E2EE accounts and `06 06` or `06 01` for hosted ones. Companion keys come
//! from the pairing vectors (shared/vectors/pairing/pair_success.json, which has no hosted
//! scenario: the E2EE case is checked against it, the hosted ones are built here).

use std::path::Path;

use prost::Message as _;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use serde_json::Value;
use wa_engine::Jid;
use wa_engine::binary::{self, Node};
use wa_engine::pair::{
    AdvFamily, AdvSecret, DeviceIdentityParams, PairError, PairSuccess, account_signature_message,
    adv_hmac, build_device_identity, build_pair_success, device_signature_message_for,
    pair_device_sign_reply, verify_pair_device_sign, verify_pair_success,
};
use wa_engine::signal::xeddsa;
use wa_proto::wa::{AdvDeviceIdentity, AdvSignedDeviceIdentity, AdvSignedDeviceIdentityHmac};

fn load() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors/pairing/pair_success.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("pairing vectors {} are required ({e})", path.display()));
    serde_json::from_str(&text).expect("pair_success.json is JSON")
}

fn hx(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(v[key].as_str().unwrap_or_else(|| panic!("`{key}` missing"))).expect("hex")
}

fn arr(v: &Value, key: &str) -> [u8; 32] {
    hx(v, key).try_into().expect("32 bytes")
}

struct Keys {
    companion_private: [u8; 32],
    companion_pub: [u8; 32],
    adv_secret: AdvSecret,
    primary_private: [u8; 32],
    primary_pub: [u8; 32],
}

fn keys(v: &Value) -> Keys {
    let creds = &v["creds"];
    Keys {
        companion_private: arr(&creds["signed_identity_key"], "private"),
        companion_pub: arr(&creds["signed_identity_key"], "public"),
        adv_secret: AdvSecret::from_bytes(arr(creds, "adv_secret_key")),
        primary_private: arr(&v["phone"]["identity_key"], "private"),
        primary_pub: arr(&v["phone"]["identity_key"], "public"),
    }
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

fn jid() -> Jid {
    "15551234567:9@s.whatsapp.net".parse().expect("jid")
}

fn pair_success_of(device_identity_hmac: &[u8]) -> PairSuccess {
    let node = build_pair_success("9", 3, device_identity_hmac, "smba", &jid(), None, None);
    PairSuccess::parse(&node).expect("parse")
}

/// The reply's `ADVSignedDeviceIdentity` (details, device signature).
fn reply_parts(reply: &Node) -> (Vec<u8>, [u8; 64]) {
    let bytes = reply
        .child_path(&["pair-device-sign", "device-identity"])
        .and_then(Node::content_bytes)
        .expect("device-identity");
    let signed = AdvSignedDeviceIdentity::decode(bytes).expect("decodes");
    (
        signed.details.expect("details"),
        signed
            .device_signature
            .expect("sig")
            .try_into()
            .expect("64"),
    )
}

/// A reply signed by the companion with an explicit device signature prefix family (what
/// Baileys 6.7.24 or whatsmeow would send), for the phone-side checks.
fn reply_signed_in(family: AdvFamily, k: &Keys, details: &[u8], account_sig: &[u8]) -> Node {
    let message = device_signature_message_for(family, details, &k.companion_pub, &k.primary_pub);
    let sig = xeddsa::sign(&k.companion_private, &message, &[5u8; 64]);
    let signed = AdvSignedDeviceIdentity {
        details: Some(details.to_vec()),
        account_signature_key: None,
        account_signature: Some(account_sig.to_vec()),
        device_signature: Some(sig.to_vec()),
    };
    pair_device_sign_reply("9", 4, &signed.encode_to_vec())
}

#[test]
fn e2ee_vector_pairing_stays_in_the_06_01_family() {
    let v = load();
    let k = keys(&v);
    let node = binary::decode(&hx(&v["pair_success"], "hex")).expect("frame");
    let ps = PairSuccess::parse(&node).expect("parse");
    let verified = verify_pair_success(
        &mut rng(),
        &ps,
        &k.companion_private,
        &k.companion_pub,
        &k.adv_secret,
    )
    .expect("vector verifies");
    assert_eq!(verified.family, AdvFamily::E2ee);
    let (details, sig) = reply_parts(&verified.reply());
    for version in ["6.7.24", "7.0.0-rc14"] {
        let baileys = &v["configure_successful_pairing"][version];
        assert_eq!(
            verified.family.device_prefix().to_vec(),
            hx(baileys, "device_signature_prefix")
        );
        let message = device_signature_message_for(
            AdvFamily::E2ee,
            &details,
            &k.companion_pub,
            &k.primary_pub,
        );
        assert_eq!(
            message,
            hx(baileys, "device_signature_message"),
            "{version}"
        );
        assert!(xeddsa::verify(&k.companion_pub, &message, &sig));
    }
    let signed = verify_pair_device_sign(
        &verified.reply(),
        &details,
        &k.companion_pub,
        &k.primary_pub,
    )
    .expect("phone accepts");
    assert_eq!(signed.device_signature_prefix, [6, 1]);
}

#[test]
fn hosted_account_gets_a_06_06_device_signature_the_phone_accepts() {
    let v = load();
    let k = keys(&v);
    let built = build_device_identity(
        &mut rng(),
        &k.primary_private,
        &k.companion_pub,
        &k.adv_secret,
        &DeviceIdentityParams {
            raw_id: 11,
            timestamp: 12,
            key_index: 4,
            hosted: true,
        },
    );
    let verified = verify_pair_success(
        &mut rng(),
        &pair_success_of(&built.device_identity_hmac),
        &k.companion_private,
        &k.companion_pub,
        &k.adv_secret,
    )
    .expect("hosted pair-success verifies");
    assert_eq!(verified.family, AdvFamily::Hosted);
    let (details, sig) = reply_parts(&verified.reply());
    assert_eq!(details, built.details);
    let hosted_msg = device_signature_message_for(
        AdvFamily::Hosted,
        &details,
        &k.companion_pub,
        &k.primary_pub,
    );
    assert_eq!(&hosted_msg[..2], &[6, 6]);
    assert!(xeddsa::verify(&k.companion_pub, &hosted_msg, &sig));
    let e2ee_msg =
        device_signature_message_for(AdvFamily::E2ee, &details, &k.companion_pub, &k.primary_pub);
    assert!(!xeddsa::verify(&k.companion_pub, &e2ee_msg, &sig));
    // The stored account record carries the same signature.
    let account = AdvSignedDeviceIdentity::decode(verified.account.as_slice()).expect("account");
    assert_eq!(account.device_signature.as_deref(), Some(&sig[..]));
    let signed = verify_pair_device_sign(
        &verified.reply(),
        &details,
        &k.companion_pub,
        &k.primary_pub,
    )
    .expect("phone accepts 06 06 for a hosted account");
    assert_eq!(signed.device_signature_prefix, [6, 6]);

    // whatsmeow / Baileys 7 sign 06 01 even for hosted accounts: accepted there too.
    let wm_style = reply_signed_in(AdvFamily::E2ee, &k, &details, &built.account_signature);
    let signed = verify_pair_device_sign(&wm_style, &details, &k.companion_pub, &k.primary_pub)
        .expect("06 01 on a hosted account");
    assert_eq!(signed.device_signature_prefix, [6, 1]);
}

#[test]
fn e2ee_account_refuses_a_06_06_device_signature() {
    let v = load();
    let k = keys(&v);
    let built = build_device_identity(
        &mut rng(),
        &k.primary_private,
        &k.companion_pub,
        &k.adv_secret,
        &DeviceIdentityParams {
            raw_id: 21,
            timestamp: 22,
            key_index: 5,
            hosted: false,
        },
    );
    // Baileys 6.7.24's hosted prefix on an ordinary account.
    let reply = reply_signed_in(
        AdvFamily::Hosted,
        &k,
        &built.details,
        &built.account_signature,
    );
    assert_eq!(
        verify_pair_device_sign(&reply, &built.details, &k.companion_pub, &k.primary_pub),
        Err(PairError::DeviceSignatureMismatch)
    );
    let reply = reply_signed_in(
        AdvFamily::E2ee,
        &k,
        &built.details,
        &built.account_signature,
    );
    assert_eq!(
        verify_pair_device_sign(&reply, &built.details, &k.companion_pub, &k.primary_pub)
            .expect("06 01")
            .device_signature_prefix,
        [6, 1]
    );
}

/// A pair-success whose outer `accountType` is HOSTED but whose inner `deviceType` is E2EE,
/// account-signed with `account_family` (whatsapp-rust decides by the outer type, whatsmeow by
/// the inner one).
fn outer_only_hosted(k: &Keys, account_family: AdvFamily) -> PairSuccess {
    let details = AdvDeviceIdentity {
        raw_id: Some(31),
        timestamp: Some(32),
        key_index: Some(6),
        account_type: Some(1),
        device_type: Some(0),
    }
    .encode_to_vec();
    let message = account_signature_message(&details, &k.companion_pub, account_family.is_hosted());
    let account_signature = xeddsa::sign(&k.primary_private, &message, &[9u8; 64]);
    let signed = AdvSignedDeviceIdentity {
        details: Some(details),
        account_signature_key: Some(k.primary_pub.to_vec()),
        account_signature: Some(account_signature.to_vec()),
        device_signature: None,
    }
    .encode_to_vec();
    let hmac = adv_hmac(&k.adv_secret, &signed, true).to_vec();
    let container = AdvSignedDeviceIdentityHmac {
        details: Some(signed),
        hmac: Some(hmac),
        account_type: Some(1),
    };
    pair_success_of(&container.encode_to_vec())
}

#[test]
fn outer_hosted_account_signature_is_accepted_in_either_family() {
    let v = load();
    let k = keys(&v);
    for family in [AdvFamily::Hosted, AdvFamily::E2ee] {
        let verified = verify_pair_success(
            &mut rng(),
            &outer_only_hosted(&k, family),
            &k.companion_private,
            &k.companion_pub,
            &k.adv_secret,
        )
        .unwrap_or_else(|e| panic!("{family:?}: {e}"));
        // The device signature follows the family the account signature verified in.
        assert_eq!(verified.family, family);
        let (details, sig) = reply_parts(&verified.reply());
        let msg = device_signature_message_for(family, &details, &k.companion_pub, &k.primary_pub);
        assert!(xeddsa::verify(&k.companion_pub, &msg, &sig), "{family:?}");
    }
    // An inner HOSTED identity must carry a 06 05 account signature (whatsmeow).
    let built = build_device_identity(
        &mut rng(),
        &k.primary_private,
        &k.companion_pub,
        &k.adv_secret,
        &DeviceIdentityParams {
            raw_id: 41,
            timestamp: 42,
            key_index: 7,
            hosted: true,
        },
    );
    let mut signed =
        AdvSignedDeviceIdentity::decode(built.signed_identity.as_slice()).expect("signed");
    let e2ee_message = account_signature_message(&built.details, &k.companion_pub, false);
    signed.account_signature =
        Some(xeddsa::sign(&k.primary_private, &e2ee_message, &[3; 64]).to_vec());
    let signed = signed.encode_to_vec();
    let container = AdvSignedDeviceIdentityHmac {
        hmac: Some(adv_hmac(&k.adv_secret, &signed, true).to_vec()),
        details: Some(signed),
        account_type: Some(1),
    };
    assert_eq!(
        verify_pair_success(
            &mut rng(),
            &pair_success_of(&container.encode_to_vec()),
            &k.companion_private,
            &k.companion_pub,
            &k.adv_secret,
        )
        .map(|v| v.family),
        Err(PairError::AccountSignatureMismatch)
    );
}
