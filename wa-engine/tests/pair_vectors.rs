//! Pairing vectors: QR strings and phone-number pairing code, both roles, against
//! shared/vectors/pairing/{qr.json,pairing_code.json} (Baileys 7.0.0-rc14 and 6.7.24 on the
//! companion side; see that folder's README).

use std::path::{Path, PathBuf};

use serde_json::Value;
use wa_engine::pair::code::{
    self, PairingCode, companion_finish_with, primary_finish, primary_hello_with,
    unwrap_ephemeral_pub, wrap_ephemeral_pub_with,
};
use wa_engine::pair::{AdvSecret, ClientType, QrCode};
use x25519_dalek::{PublicKey, StaticSecret};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/pairing")
}

fn load(name: &str) -> Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "pairing vector file {} is missing or unreadable ({e}); these vectors are required",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector field `{key}` missing or not a string in {v}"))
}

fn hex_field(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(s(v, key)).unwrap_or_else(|e| panic!("field `{key}` is not hex: {e}"))
}

fn arr<const N: usize>(v: &Value, key: &str) -> [u8; N] {
    let bytes = hex_field(v, key);
    bytes
        .as_slice()
        .try_into()
        .unwrap_or_else(|_| panic!("field `{key}` has {} bytes, expected {N}", bytes.len()))
}

fn secret(v: &Value) -> StaticSecret {
    StaticSecret::from(arr::<32>(v, "private"))
}

fn creds_qr(creds: &Value, pairing_ref: &str, client_type: Option<ClientType>) -> QrCode {
    QrCode {
        pairing_ref: pairing_ref.to_owned(),
        noise_pub: arr(&creds["noise_key"], "public"),
        identity_pub: arr(&creds["signed_identity_key"], "public"),
        adv_secret: AdvSecret::from_bytes(arr(creds, "adv_secret_key")),
        client_type,
    }
}

#[test]
fn qr_strings_match_baileys_for_every_browser() {
    let v = load("qr.json");
    let creds = &v["creds"];
    let pairing_ref = v["refs"][0].as_str().expect("refs[0]");
    let helpers = v["helper_7_0_0_rc14"]
        .as_array()
        .expect("helper_7_0_0_rc14");
    assert_eq!(helpers.len(), 9, "expected 9 browser vectors");
    for h in helpers {
        let browser = h["browser"].as_array().expect("browser triple");
        let os = browser[0].as_str().expect("os");
        let name = browser[1].as_str().expect("browser");
        let client_type = ClientType::from_browser(os, name);
        let expected_id = s(h, "platform_id");
        assert_eq!(
            client_type.as_char().to_string(),
            expected_id,
            "{os}/{name}"
        );
        let qr = creds_qr(creds, pairing_ref, Some(client_type));
        assert_eq!(qr.encode(), s(h, "qr"), "{os}/{name}");
        assert_eq!(QrCode::parse(s(h, "qr")).expect("parse"), qr);
    }
}

#[test]
fn legacy_four_field_qr_round_trips() {
    let v = load("qr.json");
    let pairing_ref = v["refs"][0].as_str().expect("refs[0]");
    let qr = creds_qr(&v["creds"], pairing_ref, None);
    assert_eq!(qr.encode_legacy(), s(&v, "legacy_form_6_7_24"));
    assert_eq!(
        QrCode::parse(s(&v, "legacy_form_6_7_24")).expect("parse"),
        qr
    );
}

#[test]
fn qr_strings_from_real_sockets_parse_to_the_creds() {
    let v = load("qr.json");
    let creds = &v["creds"];
    let refs: Vec<&str> = v["refs"]
        .as_array()
        .expect("refs")
        .iter()
        .map(|r| r.as_str().expect("ref"))
        .collect();
    assert_eq!(refs.len(), 6);
    for version in ["7.0.0-rc14", "6.7.24"] {
        let real = &v["from_real_socket"][version];
        let qr = QrCode::parse(s(real, "qr")).expect("parse real QR");
        assert_eq!(qr.pairing_ref, refs[0], "{version}");
        let expected = creds_qr(creds, refs[0], qr.client_type);
        assert_eq!(qr, expected, "{version}");
    }
    assert_eq!(
        QrCode::parse(s(&v["from_real_socket"]["7.0.0-rc14"], "qr"))
            .expect("parse")
            .client_type,
        Some(ClientType::Chrome)
    );
}

#[test]
fn crockford_codes_match_baileys() {
    let v = load("pairing_code.json");
    let cases = v["crockford"].as_array().expect("crockford");
    assert!(!cases.is_empty());
    for c in cases {
        let bytes: [u8; 5] = arr(c, "bytes");
        assert_eq!(code::encode_code(bytes), s(c, "code"));
    }
}

#[test]
fn pbkdf2_and_ctr_wrapping_match_baileys_helpers() {
    let v = load("pairing_code.json");
    let cases = v["helper_vectors"].as_array().expect("helper_vectors");
    assert!(!cases.is_empty());
    for c in cases {
        assert_eq!(
            c["pbkdf2"]["iterations"].as_u64(),
            Some(u64::from(code::PBKDF2_ITERATIONS))
        );
        let pc = PairingCode::parse(s(c, "code")).expect("code");
        let salt: [u8; 32] = arr(c, "salt");
        let iv: [u8; 16] = arr(c, "iv");
        let public: [u8; 32] = arr(c, "companion_ephemeral_public");
        assert_eq!(
            code::derive_code_key(&pc, &salt).to_vec(),
            hex_field(c, "derived_key")
        );
        let wrapped = wrap_ephemeral_pub_with(&pc, &public, &salt, &iv);
        assert_eq!(wrapped[48..].to_vec(), hex_field(c, "ciphertext"));
        assert_eq!(wrapped.to_vec(), hex_field(c, "wrapped"));
        assert_eq!(unwrap_ephemeral_pub(&pc, &wrapped).expect("unwrap"), public);
    }
}

#[test]
fn code_pairing_flows_derive_baileys_adv_secret_on_both_sides() {
    let v = load("pairing_code.json");
    for version in ["7.0.0-rc14", "6.7.24"] {
        let flow = &v["real_socket_flow"][version];
        let pc = PairingCode::parse(s(flow, "code")).expect("code");
        let creds = &flow["creds"];
        let hello = &flow["companion_hello"];
        let primary = &flow["primary_hello"];
        let finish = &flow["companion_finish"];

        // companion_hello: Baileys wrapped creds.pairing_ephemeral_key.public.
        let wrapped_companion = hex_field(hello, "wrapped_companion_ephemeral_pub");
        assert_eq!(
            unwrap_ephemeral_pub(&pc, &wrapped_companion).expect("unwrap"),
            arr::<32>(hello, "companion_ephemeral_public"),
            "{version}"
        );
        assert_eq!(
            hex_field(hello, "companion_ephemeral_public"),
            hex_field(&creds["pairing_ephemeral_key"], "public")
        );

        // Phone: unwrap the companion's key, wrap its own with the recorded salt/iv.
        let primary_eph = secret(&primary["primary_ephemeral_key"]);
        let ph = primary_hello_with(
            &pc,
            &wrapped_companion,
            primary_eph.clone(),
            &arr(primary, "salt"),
            &arr(primary, "iv"),
        )
        .expect("primary hello");
        assert_eq!(
            ph.wrapped_primary_ephemeral_pub.to_vec(),
            hex_field(primary, "wrapped_primary_ephemeral_pub"),
            "{version}"
        );

        // Companion: with the recorded randomness, reproduce Baileys' bundle byte for byte.
        let plaintext = hex_field(finish, "bundle_plaintext");
        let randomness: [u8; 32] = arr(finish, "adv_randomness");
        assert_eq!(&plaintext[64..], &randomness[..]);
        let primary_identity_pub: [u8; 32] = arr(primary, "primary_identity_pub");
        let cf = companion_finish_with(
            &pc,
            &secret(&creds["pairing_ephemeral_key"]),
            &secret(&creds["signed_identity_key"]),
            &hex_field(primary, "wrapped_primary_ephemeral_pub"),
            &primary_identity_pub,
            &randomness,
            &arr(finish, "bundle_salt"),
            &arr(finish, "bundle_nonce"),
        )
        .expect("companion finish");
        assert_eq!(
            cf.wrapped_key_bundle.to_vec(),
            hex_field(finish, "wrapped_key_bundle"),
            "{version}"
        );
        assert_eq!(
            cf.adv_secret.as_bytes().to_vec(),
            hex_field(finish, "adv_secret")
        );
        assert_eq!(
            code::bundle_key(
                &arr(finish, "ephemeral_shared_secret"),
                &arr(finish, "bundle_salt")
            )
            .to_vec(),
            hex_field(finish, "bundle_key")
        );

        // Phone: decrypt Baileys' bundle. The phone's identity key pair is in pair_success.json.
        let phone = load("pair_success.json");
        let primary_identity = secret(&phone["phone"]["identity_key"]);
        assert_eq!(
            PublicKey::from(&primary_identity).to_bytes(),
            primary_identity_pub,
            "phone identity of pair_success.json is the primary of the code flow"
        );
        let pf = primary_finish(
            &primary_eph,
            &ph.companion_ephemeral_pub,
            &primary_identity,
            &hex_field(finish, "wrapped_key_bundle"),
        )
        .expect("primary finish");
        assert_eq!(
            pf.adv_secret.as_bytes().to_vec(),
            hex_field(finish, "adv_secret")
        );
        assert_eq!(
            pf.companion_identity_pub,
            arr::<32>(&creds["signed_identity_key"], "public")
        );

        // A flipped byte in the bundle fails authentication.
        let mut tampered = hex_field(finish, "wrapped_key_bundle");
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            primary_finish(
                &primary_eph,
                &ph.companion_ephemeral_pub,
                &primary_identity,
                &tampered
            )
            .unwrap_err(),
            wa_engine::pair::PairError::KeyBundleDecrypt
        );
    }
}

#[test]
fn code_pairing_stanzas_from_real_sockets_parse() {
    let v = load("pairing_code.json");
    for version in ["7.0.0-rc14", "6.7.24"] {
        let flow = &v["real_socket_flow"][version];
        let transcript = flow["transcript"].as_array().expect("transcript");
        let frame = |needle: &str| {
            transcript
                .iter()
                .find(|t| t["note"].as_str().is_some_and(|n| n.starts_with(needle)))
                .map(|t| wa_engine::binary::decode(&hex_field(t, "hex")).expect("frame decodes"))
                .unwrap_or_else(|| panic!("{version}: no `{needle}` frame"))
        };
        let hello =
            code::parse_companion_hello(&frame("companion_hello")).expect("companion_hello");
        assert_eq!(hello.phone, s(flow, "phone_number"), "{version}");
        assert_eq!(
            hello.wrapped_companion_ephemeral_pub,
            hex_field(&flow["companion_hello"], "wrapped_companion_ephemeral_pub")
        );
        assert_eq!(
            hello.noise_pub,
            arr::<32>(&flow["creds"]["noise_key"], "public")
        );
        assert_eq!(
            hello.platform_id,
            s(&flow["companion_hello"], "platform_id")
        );
        assert_eq!(
            hello.platform_display,
            s(&flow["companion_hello"], "platform_display")
        );

        let result = frame("result of companion_hello");
        assert_eq!(
            code::parse_companion_hello_result(&result).expect("ref"),
            s(&flow["primary_hello"], "link_code_pairing_ref").as_bytes()
        );
        let primary = code::parse_primary_hello(&frame("primary_hello")).expect("primary_hello");
        assert_eq!(
            primary.wrapped_primary_ephemeral_pub,
            hex_field(&flow["primary_hello"], "wrapped_primary_ephemeral_pub")
        );
        assert_eq!(
            primary.primary_identity_pub,
            arr::<32>(&flow["primary_hello"], "primary_identity_pub")
        );
        let finish =
            code::parse_companion_finish(&frame("companion_finish")).expect("companion_finish");
        assert_eq!(
            finish.wrapped_key_bundle,
            hex_field(&flow["companion_finish"], "wrapped_key_bundle")
        );
        assert_eq!(
            finish.identity_pub,
            arr::<32>(&flow["creds"]["signed_identity_key"], "public")
        );
        assert_eq!(finish.pairing_ref, primary.pairing_ref);
        assert_eq!(finish.phone, hello.phone);
    }
}
