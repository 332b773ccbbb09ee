//! Privacy-token vectors: `shared/vectors/privacy_tokens/privacy_tokens.json` (cstoken HMAC
//! including the wrong-input NEGATIVE cases, tctoken expiry cutoffs for N = 4 and 26, and
//! issuance decisions; formulas of shared/protocol/07 §2.6, §3.2). Every case is exercised,
//! and the token choice of 07 §3.1 is checked on the same inputs.

use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use wa_engine::Jid;
use wa_engine::privacy::{
    self, BucketConfig, CsTokenError, PrivacyToken, TcToken, TokenGates, expiration_cutoff,
    is_expired, should_issue,
};

fn vectors() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors/privacy_tokens/privacy_tokens.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "privacy-token vector file {} is missing or unreadable ({e}); these tests need shared/vectors beside the repository",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is malformed: {e}", path.display()))
}

fn hex_of(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(
        v[field]
            .as_str()
            .unwrap_or_else(|| panic!("vector field {field} missing")),
    )
    .unwrap_or_else(|e| panic!("vector field {field} is not hex: {e}"))
}

fn u64_of(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("vector field {field} missing"))
}

fn raw_hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("hmac key");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

#[test]
fn cstoken_cases_including_negative_inputs() {
    let file = vectors();
    let cases = file["cstoken"].as_array().expect("cstoken");
    let (mut positive, mut negative) = (0, 0);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let salt = hex_of(case, "salt_hex");
        let input = case["hmac_input_ascii"].as_str().expect("input");
        assert_eq!(
            input.as_bytes(),
            hex_of(case, "hmac_input_hex").as_slice(),
            "{name}"
        );
        let expected = hex_of(case, "cstoken_hex");
        // The recorded value is the HMAC of the recorded input (so the negatives are real
        // wrong-input values, not noise).
        assert_eq!(raw_hmac(&salt, input.as_bytes()), expected, "{name}");

        if case["valid_wire_input"]
            .as_bool()
            .expect("valid_wire_input")
        {
            positive += 1;
            let token =
                privacy::cstoken_for(&salt, input).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(token.0.to_vec(), expected, "{name}");
            let lid: Jid = input.parse().expect("lid");
            assert_eq!(
                privacy::cstoken(&salt, &lid).expect("cstoken").0.to_vec(),
                expected,
                "{name}"
            );
            // Chosen when there is no tctoken; a device on the LID is dropped first.
            let chosen = privacy::choose(
                None,
                Some(&salt),
                Some(&lid.clone().with_device(3)),
                0,
                BucketConfig::DEFAULT,
                TokenGates::default(),
            );
            assert_eq!(
                chosen.map(|t| t.to_node().content_bytes().map(<[u8]>::to_vec)),
                Some(Some(expected.clone())),
                "{name}"
            );
            assert_eq!(
                privacy::choose(
                    None,
                    Some(&salt),
                    Some(&lid),
                    0,
                    BucketConfig::DEFAULT,
                    TokenGates::default()
                )
                .expect("token")
                .to_node()
                .tag,
                "cstoken"
            );
        } else {
            negative += 1;
            assert!(name.starts_with("NEGATIVE_"), "{name}");
            let err =
                privacy::cstoken_for(&salt, input).expect_err("a wrong input must be rejected");
            match name {
                "NEGATIVE_device_suffix" => assert_eq!(err, CsTokenError::HasDevice),
                "NEGATIVE_pn_instead_of_lid" => {
                    assert!(matches!(err, CsTokenError::NotLid { .. }), "{err}")
                }
                "NEGATIVE_bare_user_without_server" => {
                    assert!(matches!(err, CsTokenError::NotAJid(_)), "{err}")
                }
                other => panic!("unknown negative case {other}: {err}"),
            }
            // Through the choice, a PN gives no cstoken, and a device LID gives the bare
            // LID's token, never the wrong value.
            if let Ok(jid) = input.parse::<Jid>() {
                let chosen = privacy::choose(
                    None,
                    Some(&salt),
                    Some(&jid),
                    0,
                    BucketConfig::DEFAULT,
                    TokenGates::default(),
                );
                if let Some(PrivacyToken::CsToken(t)) = &chosen {
                    assert_ne!(
                        t.0.to_vec(),
                        expected,
                        "{name}: the wrong value is never produced"
                    );
                    assert_eq!(
                        t.0.to_vec(),
                        raw_hmac(&salt, jid.to_non_ad().to_string().as_bytes())
                    );
                } else {
                    assert!(chosen.is_none(), "{name}");
                    assert!(!jid.is_lid());
                }
            }
        }
    }
    assert!(
        positive >= 5 && negative >= 3,
        "{positive} positive, {negative} negative cases"
    );
    // No salt: no cstoken.
    assert_eq!(
        privacy::cstoken_for(b"", "1@lid").expect_err("empty salt"),
        CsTokenError::EmptySalt
    );
}

#[test]
fn expiration_cutoffs_and_probes() {
    let file = vectors();
    let cases = file["expiration"].as_array().expect("expiration");
    assert!(!cases.is_empty());
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let now = u64_of(case, "now");
        let config =
            BucketConfig::new(u64_of(case, "bucket_duration"), u64_of(case, "num_buckets"));
        assert_eq!(config.bucket(now), u64_of(case, "current_bucket"), "{name}");
        let cutoff = expiration_cutoff(now, config);
        assert_eq!(cutoff, u64_of(case, "cutoff"), "{name}");
        assert_eq!(
            config.num_buckets * config.duration,
            u64_of(case, "window_seconds_max"),
            "{name}"
        );
        for probe in case["probes"].as_array().expect("probes") {
            let ts = u64_of(probe, "token_timestamp");
            let expired = probe["expired"].as_bool().expect("expired");
            assert_eq!(
                is_expired(Some(ts), now, config),
                expired,
                "{name}: token at {ts}"
            );

            // The choice follows expiry: a valid token wins; an expired one falls back to the
            // cstoken when a salt and LID are known, else nothing.
            let stored = TcToken {
                token: vec![1, 2, 3],
                timestamp: Some(ts),
                sender_timestamp: None,
            };
            let lid = Jid::lid("123456789012345");
            let salt = [7_u8; 32];
            let chosen = privacy::choose(
                Some(&stored),
                Some(&salt),
                Some(&lid),
                now,
                config,
                TokenGates::default(),
            );
            if expired {
                assert!(
                    matches!(chosen, Some(PrivacyToken::CsToken(_))),
                    "{name}: {ts}"
                );
                assert_eq!(
                    privacy::choose(
                        Some(&stored),
                        None,
                        Some(&lid),
                        now,
                        config,
                        TokenGates::default()
                    ),
                    None
                );
            } else {
                assert_eq!(
                    chosen,
                    Some(PrivacyToken::TcToken(vec![1, 2, 3])),
                    "{name}: {ts}"
                );
                // With the tctoken gate off, the cstoken is still used (07 §3.1).
                let gated = privacy::choose(
                    Some(&stored),
                    Some(&salt),
                    Some(&lid),
                    now,
                    config,
                    TokenGates {
                        tctoken: false,
                        cstoken: true,
                    },
                );
                assert!(matches!(gated, Some(PrivacyToken::CsToken(_))));
            }
        }
        assert!(is_expired(None, now, config), "{name}: missing timestamp");
    }
}

#[test]
fn issuance_decisions() {
    let file = vectors();
    let cases = file["issuance"].as_array().expect("issuance");
    assert!(!cases.is_empty());
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let sender = case["sender_timestamp"].as_u64();
        assert!(
            sender.is_some() || case["sender_timestamp"].is_null(),
            "{name}"
        );
        let config = BucketConfig::new(u64_of(case, "bucket_duration"), 4);
        assert_eq!(
            should_issue(sender, u64_of(case, "now"), config),
            case["should_issue"].as_bool().expect("should_issue"),
            "{name}"
        );
    }
}

#[test]
fn choice_without_inputs_is_none_and_nodes_have_the_wire_shape() {
    assert_eq!(
        privacy::choose(
            None,
            None,
            None,
            0,
            BucketConfig::DEFAULT,
            TokenGates::default()
        ),
        None
    );
    let empty = TcToken {
        token: Vec::new(),
        timestamp: Some(10),
        sender_timestamp: Some(10),
    };
    assert_eq!(
        privacy::choose(
            Some(&empty),
            None,
            None,
            10,
            BucketConfig::DEFAULT,
            TokenGates::default()
        ),
        None
    );
    let node = PrivacyToken::TcToken(vec![9, 9]).to_node();
    assert_eq!(node.tag, "tctoken");
    assert!(node.attrs.is_empty());
    assert_eq!(node.content_bytes(), Some(&[9_u8, 9][..]));
    // Clamping as whatsapp-rust does.
    assert_eq!(
        BucketConfig::new(0, 0),
        BucketConfig {
            duration: 1,
            num_buckets: 1
        }
    );
    assert_eq!(
        BucketConfig::new(u64::MAX, 26).duration,
        BucketConfig::MAX_DURATION
    );
}
