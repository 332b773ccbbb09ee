//! pair-success vectors (shared/vectors/pairing/pair_success.json): the companion's checks and
//! reply against Baileys 7.0.0-rc14 / 6.7.24, the phone's construction against the reference
//! phone, and the real captured pair-success whose signatures verify.

use std::path::Path;

use prost::Message as _;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use serde_json::Value;
use wa_engine::Jid;
use wa_engine::binary::{self, Node};
use wa_engine::pair::{
    self, AdvSecret, DeviceIdentityParams, PairError, PairSuccess, account_signature_message,
    adv_hmac, build_device_identity, build_pair_success, device_signature_message,
    verify_pair_device_sign, verify_pair_success,
};
use wa_engine::signal::xeddsa;
use wa_proto::wa::{AdvDeviceIdentity, AdvSignedDeviceIdentity, AdvSignedDeviceIdentityHmac};

fn load() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors/pairing/pair_success.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "pairing vector file {} is missing ({e}); these vectors are required",
            path.display()
        )
    });
    serde_json::from_str(&text).expect("pair_success.json is JSON")
}

fn hx(v: &Value, key: &str) -> Vec<u8> {
    let s = v[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector field `{key}` missing in {v}"));
    hex::decode(s).unwrap_or_else(|e| panic!("`{key}` is not hex: {e}"))
}

fn arr<const N: usize>(v: &Value, key: &str) -> [u8; N] {
    hx(v, key)
        .try_into()
        .unwrap_or_else(|b: Vec<u8>| panic!("`{key}` has {} bytes, expected {N}", b.len()))
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(42)
}

struct Companion {
    identity_private: [u8; 32],
    identity_pub: [u8; 32],
    adv_secret: AdvSecret,
}

fn companion(v: &Value) -> Companion {
    let creds = &v["creds"];
    Companion {
        identity_private: arr(&creds["signed_identity_key"], "private"),
        identity_pub: arr(&creds["signed_identity_key"], "public"),
        adv_secret: AdvSecret::from_bytes(arr(creds, "adv_secret_key")),
    }
}

fn received_pair_success(v: &Value) -> Node {
    binary::decode(&hx(&v["pair_success"], "hex")).expect("pair-success frame decodes")
}

#[test]
fn companion_accepts_the_pair_success_and_replies_like_baileys() {
    let v = load();
    let c = companion(&v);
    let node = received_pair_success(&v);
    let ps = PairSuccess::parse(&node).expect("parse");
    assert_eq!(ps.id, "2204545668");
    assert_eq!(ps.server_time, Some(1_700_000_010));
    assert_eq!(ps.jid.to_string(), "15551234567:7@s.whatsapp.net");
    assert_eq!(
        ps.lid.as_ref().map(ToString::to_string).as_deref(),
        Some("100000000000001:7@lid")
    );
    assert_eq!(ps.platform, "android");
    assert_eq!(ps.business_name, None);

    let verified = verify_pair_success(
        &mut rng(),
        &ps,
        &c.identity_private,
        &c.identity_pub,
        &c.adv_secret,
    )
    .expect("the vector pair-success verifies");
    assert_eq!(verified.key_index, 3);
    assert_eq!(
        verified.primary_identity_pub.to_vec(),
        hx(&v["phone"]["identity_key"], "public")
    );

    for version in ["7.0.0-rc14", "6.7.24"] {
        let baileys = &v["configure_successful_pairing"][version];
        let expected_reply = binary::decode(&hx(&baileys["reply"], "hex")).expect("reply decodes");
        let ours = verified.reply();
        // Same envelope: to, type, id; same key-index.
        assert_eq!(ours.tag, expected_reply.tag);
        assert_eq!(ours.attrs, expected_reply.attrs, "{version}");
        let our_di = ours
            .child_path(&["pair-device-sign", "device-identity"])
            .expect("ours");
        let their_di = expected_reply
            .child_path(&["pair-device-sign", "device-identity"])
            .expect("theirs");
        assert_eq!(our_di.attrs, their_di.attrs, "{version}: key-index");
        // Fields 1 and 3 equal Baileys'; no account key; the device signature verifies.
        let ours_signed = AdvSignedDeviceIdentity::decode(our_di.content_bytes().expect("bytes"))
            .expect("ours decodes");
        let theirs_signed =
            AdvSignedDeviceIdentity::decode(their_di.content_bytes().expect("bytes"))
                .expect("theirs decodes");
        assert_eq!(ours_signed.details, theirs_signed.details);
        assert_eq!(
            ours_signed.account_signature,
            theirs_signed.account_signature
        );
        assert_eq!(ours_signed.account_signature_key, None);
        assert_eq!(theirs_signed.account_signature_key, None);
        let msg = device_signature_message(
            ours_signed.details.as_deref().expect("details"),
            &c.identity_pub,
            &verified.primary_identity_pub,
        );
        assert_eq!(msg, hx(baileys, "device_signature_message"), "{version}");
        let sig: [u8; 64] = ours_signed
            .device_signature
            .clone()
            .expect("sig")
            .try_into()
            .expect("64");
        assert!(xeddsa::verify(&c.identity_pub, &msg, &sig));
        // Baileys' own signature verifies over the same message.
        assert!(xeddsa::verify(
            &c.identity_pub,
            &msg,
            &arr(baileys, "device_signature")
        ));

        // The stored account keeps the key (03 §4.7 step 8), as Baileys' creds do.
        let account =
            AdvSignedDeviceIdentity::decode(verified.account.as_slice()).expect("account");
        let stored = &baileys["creds_update"]["account"];
        assert_eq!(account.details, Some(hx(stored, "details")));
        assert_eq!(
            account.account_signature_key,
            Some(hx(stored, "account_signature_key"))
        );
        assert_eq!(
            account.account_signature,
            Some(hx(stored, "account_signature"))
        );
        assert_eq!(
            baileys["creds_update"]["platform"].as_str(),
            Some(verified.platform.as_str())
        );
        assert_eq!(
            baileys["creds_update"]["me"]["id"].as_str(),
            Some(verified.jid.to_string().as_str())
        );
    }
}

#[test]
fn phone_accepts_baileys_replies_from_both_versions() {
    let v = load();
    let c = companion(&v);
    let details = hx(&v["adv"], "device_identity_details");
    let primary: [u8; 32] = arr(&v["phone"]["identity_key"], "public");
    for version in ["7.0.0-rc14", "6.7.24"] {
        let reply = binary::decode(&hx(
            &v["configure_successful_pairing"][version]["reply"],
            "hex",
        ))
        .expect("reply");
        let ok =
            verify_pair_device_sign(&reply, &details, &c.identity_pub, &primary).expect(version);
        assert_eq!(ok.key_index, Some(3));
        // A reply over other details is refused.
        assert_eq!(
            verify_pair_device_sign(&reply, b"other", &c.identity_pub, &primary),
            Err(PairError::DetailsChanged)
        );
        // A reply checked against another companion key is refused.
        assert_eq!(
            verify_pair_device_sign(&reply, &details, &primary, &primary),
            Err(PairError::DeviceSignatureMismatch)
        );
    }
}

#[test]
fn real_socket_transcripts_pair_with_our_companion_and_phone() {
    let v = load();
    let c = companion(&v);
    let details = hx(&v["adv"], "device_identity_details");
    let primary: [u8; 32] = arr(&v["phone"]["identity_key"], "public");
    for version in ["7.0.0-rc14", "6.7.24"] {
        let transcript = v["real_socket"][version]["transcript"]
            .as_array()
            .expect("transcript");
        let frame = |needle: &str| {
            transcript
                .iter()
                .find(|t| t["note"].as_str().is_some_and(|n| n.starts_with(needle)))
                .map(|t| binary::decode(&hx(t, "hex")).expect("frame decodes"))
                .unwrap_or_else(|| panic!("{version}: no `{needle}` frame"))
        };
        let ps = PairSuccess::parse(&frame("pair-success")).expect("parse");
        let verified = verify_pair_success(
            &mut rng(),
            &ps,
            &c.identity_private,
            &c.identity_pub,
            &c.adv_secret,
        )
        .expect("transcript pair-success verifies");
        // Our reply passes the phone's check; so does Baileys' recorded one.
        verify_pair_device_sign(&verified.reply(), &details, &c.identity_pub, &primary)
            .expect("our reply");
        verify_pair_device_sign(
            &frame("pair-device-sign"),
            &details,
            &c.identity_pub,
            &primary,
        )
        .expect("Baileys' reply");
        let restart = frame("restart required");
        assert_eq!(restart.tag, "stream:error");
        assert_eq!(
            wa_engine::CloseReason::from_stream_error(restart.get_attr_str("code"), None),
            wa_engine::CloseReason::RestartRequired
        );
    }
}

#[test]
fn phone_builds_the_reference_pair_success() {
    let v = load();
    let c = companion(&v);
    let phone = &v["phone"];
    let adv = &v["adv"];
    let primary_private: [u8; 32] = arr(&phone["identity_key"], "private");
    let params = DeviceIdentityParams {
        raw_id: phone["raw_id"].as_u64().expect("raw_id") as u32,
        timestamp: phone["timestamp"].as_u64().expect("timestamp"),
        key_index: phone["key_index"].as_u64().expect("key_index") as u32,
        hosted: false,
    };
    let built = build_device_identity(
        &mut rng(),
        &primary_private,
        &c.identity_pub,
        &c.adv_secret,
        &params,
    );
    assert_eq!(built.details, hx(adv, "device_identity_details"));
    let message = account_signature_message(&built.details, &c.identity_pub, false);
    assert_eq!(message, hx(adv, "account_signature_message"));
    let primary_pub: [u8; 32] = arr(&phone["identity_key"], "public");
    assert!(xeddsa::verify(
        &primary_pub,
        &message,
        &built.account_signature
    ));
    assert!(xeddsa::verify(
        &primary_pub,
        &message,
        &arr(adv, "account_signature")
    ));
    // Our signer is randomized; with the reference signature in place everything else is
    // byte for byte the reference: signed identity, HMAC, HMAC container, the whole IQ.
    let mut signed =
        AdvSignedDeviceIdentity::decode(built.signed_identity.as_slice()).expect("signed");
    signed.account_signature = Some(hx(adv, "account_signature"));
    let signed_bytes = signed.encode_to_vec();
    assert_eq!(signed_bytes, hx(adv, "signed_device_identity"));
    let hmac = adv_hmac(&c.adv_secret, &signed_bytes, false);
    assert_eq!(hmac.to_vec(), hx(adv, "hmac"));
    assert!(hx(adv, "hmac_message_prefix").is_empty());
    let container = AdvSignedDeviceIdentityHmac {
        details: Some(signed_bytes),
        hmac: Some(hmac.to_vec()),
        account_type: Some(0),
    }
    .encode_to_vec();
    assert_eq!(container, hx(adv, "device_identity_hmac"));
    let jid: Jid = "15551234567:7@s.whatsapp.net".parse().expect("jid");
    let lid: Jid = "100000000000001:7@lid".parse().expect("lid");
    let node = build_pair_success(
        "2204545668",
        1_700_000_010,
        &container,
        "android",
        &jid,
        Some(&lid),
        None,
    );
    assert_eq!(
        binary::encode(&node),
        hx(&v["pair_success"], "hex"),
        "pair-success IQ byte for byte"
    );
    // And the built (randomly signed) one is accepted by the companion.
    let ours = build_pair_success(
        "1",
        1,
        &built.device_identity_hmac,
        "android",
        &jid,
        Some(&lid),
        None,
    );
    let ps = PairSuccess::parse(&ours).expect("parse");
    verify_pair_success(
        &mut rng(),
        &ps,
        &c.identity_private,
        &c.identity_pub,
        &c.adv_secret,
    )
    .expect("accepted");
}

#[test]
fn real_captured_pair_success_signatures_verify() {
    let v = load();
    let rc = &v["real_capture"];
    assert_eq!(rc["account_signature_valid"].as_bool(), Some(true));
    assert_eq!(rc["device_signature_valid"].as_bool(), Some(true));
    let container = AdvSignedDeviceIdentityHmac::decode(hx(rc, "device_identity_hmac").as_slice())
        .expect("container");
    assert_eq!(container.details, Some(hx(rc, "signed_device_identity")));
    assert_eq!(container.hmac, Some(hx(rc, "hmac")));
    let signed = AdvSignedDeviceIdentity::decode(hx(rc, "signed_device_identity").as_slice())
        .expect("signed");
    let details = signed.details.clone().expect("details");
    assert_eq!(details, hx(rc, "device_identity_details"));
    let identity = AdvDeviceIdentity::decode(details.as_slice()).expect("identity");
    assert_eq!(identity.raw_id, Some(1_797_771_315));
    assert_eq!(identity.key_index, Some(19));
    let companion: [u8; 32] = arr(rc, "companion_identity_public");
    let primary: [u8; 32] = arr(rc, "account_signature_key");
    let message = account_signature_message(&details, &companion, false);
    assert_eq!(message, hx(rc, "account_signature_message"));
    assert!(xeddsa::verify(
        &primary,
        &message,
        &arr(rc, "account_signature")
    ));
    let device_message = device_signature_message(&details, &companion, &primary);
    assert_eq!(device_message, hx(rc, "device_signature_message"));
    assert!(xeddsa::verify(
        &companion,
        &device_message,
        &arr(rc, "device_signature")
    ));
    // The real companion reply passes the phone-side check.
    let reply = pair::pair_device_sign_reply("1", 19, &hx(rc, "reply_device_identity"));
    let ok = verify_pair_device_sign(&reply, &details, &companion, &primary)
        .expect("real reply verifies");
    assert_eq!(ok.device_signature, arr::<64>(rc, "device_signature"));
    // The adv secret is not public: with any other secret the companion must refuse (401).
    let node = build_pair_success(
        "1",
        1,
        &hx(rc, "device_identity_hmac"),
        "android",
        &"559984726662:77@s.whatsapp.net".parse().expect("jid"),
        None,
        None,
    );
    let ps = PairSuccess::parse(&node).expect("parse");
    let err = verify_pair_success(
        &mut rng(),
        &ps,
        &[1; 32],
        &companion,
        &AdvSecret::from_bytes([0; 32]),
    )
    .expect_err("unknown adv secret");
    assert_eq!(err, PairError::HmacMismatch);
    assert_eq!(err.reply(), (401, "hmac-mismatch"));
}

#[test]
fn hosted_accounts_use_the_06_05_prefixes_both_ways() {
    let v = load();
    let c = companion(&v);
    let primary_private: [u8; 32] = arr(&v["phone"]["identity_key"], "private");
    let params = DeviceIdentityParams {
        raw_id: 1,
        timestamp: 2,
        key_index: 4,
        hosted: true,
    };
    let built = build_device_identity(
        &mut rng(),
        &primary_private,
        &c.identity_pub,
        &c.adv_secret,
        &params,
    );
    let container = AdvSignedDeviceIdentityHmac::decode(built.device_identity_hmac.as_slice())
        .expect("container");
    assert_eq!(container.account_type, Some(1));
    assert_eq!(
        container.hmac.as_deref(),
        Some(&adv_hmac(&c.adv_secret, &built.signed_identity, true)[..])
    );
    assert_ne!(
        adv_hmac(&c.adv_secret, &built.signed_identity, true),
        adv_hmac(&c.adv_secret, &built.signed_identity, false)
    );
    let jid: Jid = "15551234567:9@s.whatsapp.net".parse().expect("jid");
    let node = build_pair_success(
        "7",
        3,
        &built.device_identity_hmac,
        "smba",
        &jid,
        None,
        Some("Biz"),
    );
    let ps = PairSuccess::parse(&node).expect("parse");
    assert_eq!(ps.business_name.as_deref(), Some("Biz"));
    let verified = verify_pair_success(
        &mut rng(),
        &ps,
        &c.identity_private,
        &c.identity_pub,
        &c.adv_secret,
    )
    .expect("hosted pair-success verifies");
    let primary_pub: [u8; 32] = arr(&v["phone"]["identity_key"], "public");
    verify_pair_device_sign(
        &verified.reply(),
        &built.details,
        &c.identity_pub,
        &primary_pub,
    )
    .expect("reply");

    // Signed as hosted but wrapped as E2EE: the HMAC no longer matches.
    let mut flipped = container.clone();
    flipped.account_type = Some(0);
    let node = build_pair_success("7", 3, &flipped.encode_to_vec(), "smba", &jid, None, None);
    let ps = PairSuccess::parse(&node).expect("parse");
    assert_eq!(
        verify_pair_success(
            &mut rng(),
            &ps,
            &c.identity_private,
            &c.identity_pub,
            &c.adv_secret
        ),
        Err(PairError::HmacMismatch)
    );
}

#[test]
fn bad_account_signature_and_garbage_get_the_right_error_replies() {
    let v = load();
    let c = companion(&v);
    let adv = &v["adv"];
    let mut signed = AdvSignedDeviceIdentity::decode(hx(adv, "signed_device_identity").as_slice())
        .expect("signed");
    let mut sig = signed.account_signature.clone().expect("sig");
    sig[0] ^= 1;
    signed.account_signature = Some(sig);
    let signed_bytes = signed.encode_to_vec();
    let container = AdvSignedDeviceIdentityHmac {
        details: Some(signed_bytes.clone()),
        hmac: Some(adv_hmac(&c.adv_secret, &signed_bytes, false).to_vec()),
        account_type: Some(0),
    };
    let jid: Jid = "15551234567:7@s.whatsapp.net".parse().expect("jid");
    let node = build_pair_success(
        "5",
        1,
        &container.encode_to_vec(),
        "android",
        &jid,
        None,
        None,
    );
    let ps = PairSuccess::parse(&node).expect("parse");
    let err = verify_pair_success(
        &mut rng(),
        &ps,
        &c.identity_private,
        &c.identity_pub,
        &c.adv_secret,
    )
    .expect_err("bad signature");
    assert_eq!(err, PairError::AccountSignatureMismatch);
    let reply = pair::pair_error_reply("5", &err);
    let e = reply.child_by_tag("error").expect("error");
    assert_eq!(
        (e.get_attr_str("code"), e.get_attr_str("text")),
        (Some("401"), Some("signature-mismatch"))
    );
    assert_eq!(reply.get_attr_str("type"), Some("error"));
    assert_eq!(reply.get_attr_str("id"), Some("5"));

    let node = build_pair_success("6", 1, b"\xff\xff\xff", "android", &jid, None, None);
    let ps = PairSuccess::parse(&node).expect("parse");
    let err = verify_pair_success(
        &mut rng(),
        &ps,
        &c.identity_private,
        &c.identity_pub,
        &c.adv_secret,
    )
    .expect_err("garbage");
    assert!(matches!(err, PairError::Protobuf { .. }), "{err:?}");
    assert_eq!(err.reply(), (500, "internal-error"));

    let missing = Node::new("iq")
        .attr("id", "1")
        .with_children([Node::new("pair-success")]);
    assert_eq!(
        PairSuccess::parse(&missing),
        Err(PairError::Missing("device-identity"))
    );
}
