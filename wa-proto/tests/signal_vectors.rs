//! Signal wire messages (pkmsg, msg, skmsg, SKDM) parsed from libsignal-node output
//! recorded through Baileys (`shared/vectors/signal/sessions.json`,
//! `shared/vectors/sender_keys/sender_keys.json`).

mod support;

use anyhow::{Context, Result, ensure};
use prost::Message as _;
use serde_json::Value;
use support::{hex_at, load, str_at, u64_at, unpad};
use wa_proto::wa::{
    Message, PreKeySignalMessage, SenderKeyDistributionMessage, SenderKeyMessage, SignalMessage,
};

/// libsignal message version byte `(3 << 4) | 3` (shared/protocol/04 §7.1).
const VERSION: u8 = 0x33;
/// Truncated HMAC after a SignalMessage (shared/protocol/04 §7.2).
const MAC_LEN: usize = 8;
/// XEdDSA signature after a SenderKeyMessage (shared/protocol/04 §9.4).
const SIGNATURE_LEN: usize = 64;

fn strip_version(bytes: &[u8]) -> Result<&[u8]> {
    bytes
        .strip_prefix(&[VERSION])
        .context("missing 0x33 version byte")
}

/// Checks a `0x33 || SignalMessage || mac` against the vector's parsed fields.
fn check_signal_message(bytes: &[u8], parsed: &Value, at: &str) -> Result<()> {
    let body = strip_version(bytes)?;
    ensure!(body.len() > MAC_LEN, "{at}: too short");
    let (proto, mac) = body.split_at(body.len() - MAC_LEN);
    let msg = SignalMessage::decode(proto)?;
    assert_eq!(msg.ratchet_key(), hex_at(parsed, "/ratchet_key")?, "{at}");
    assert_eq!(
        u64::from(msg.counter()),
        u64_at(parsed, "/counter")?,
        "{at}"
    );
    assert_eq!(
        u64::from(msg.previous_counter()),
        u64_at(parsed, "/previous_counter")?,
        "{at}"
    );
    assert_eq!(msg.ciphertext(), hex_at(parsed, "/aes_ciphertext")?, "{at}");
    assert_eq!(mac, hex_at(parsed, "/mac")?, "{at}");
    // libsignal writes counters even when 0; the MAC covers these exact bytes.
    assert_eq!(msg.encode_to_vec(), proto, "{at}: re-encoding differs");
    Ok(())
}

/// The decoded content must equal the vector's JSON rendering (text messages only).
fn check_content(message_protobuf: &[u8], expected: &Value, at: &str) -> Result<()> {
    let msg = Message::decode(message_protobuf)?;
    if let Some(text) = expected.pointer("/conversation").and_then(Value::as_str) {
        assert_eq!(msg.conversation(), text, "{at}");
    } else {
        let text = str_at(expected, "/extendedTextMessage/text")?;
        let ext = msg
            .extended_text_message
            .as_ref()
            .context("extendedTextMessage missing")?;
        assert_eq!(ext.text(), text, "{at}");
    }
    assert_eq!(
        msg.encode_to_vec(),
        message_protobuf,
        "{at}: re-encoding differs"
    );
    Ok(())
}

#[test]
fn parses_every_pairwise_ciphertext_of_the_session_vectors() -> Result<()> {
    let v = load("signal/sessions.json");
    let scenarios = v["scenarios"].as_array().context("scenarios")?;
    let mut seen = (0, 0);
    for (si, scenario) in scenarios.iter().enumerate() {
        for (mi, m) in scenario["messages"]
            .as_array()
            .context("messages")?
            .iter()
            .enumerate()
        {
            let at = format!("scenario {si} message {mi}");
            let ciphertext = hex_at(m, "/ciphertext")?;
            let parsed = &m["parsed"];
            match str_at(m, "/type")? {
                "pkmsg" => {
                    seen.0 += 1;
                    let pk = PreKeySignalMessage::decode(strip_version(&ciphertext)?)?;
                    assert_eq!(
                        u64::from(pk.registration_id()),
                        u64_at(parsed, "/registration_id")?,
                        "{at}"
                    );
                    assert_eq!(
                        pk.pre_key_id.map(u64::from),
                        parsed["pre_key_id"].as_u64(),
                        "{at}: preKeyId absent exactly when no one-time prekey was used"
                    );
                    assert_eq!(
                        u64::from(pk.signed_pre_key_id()),
                        u64_at(parsed, "/signed_pre_key_id")?,
                        "{at}"
                    );
                    assert_eq!(pk.base_key(), hex_at(parsed, "/base_key")?, "{at}");
                    assert_eq!(pk.identity_key(), hex_at(parsed, "/identity_key")?, "{at}");
                    assert_eq!(pk.message(), hex_at(parsed, "/signal_message")?, "{at}");
                    check_signal_message(pk.message(), parsed, &at)?;
                    // libsignal-node writes fields in number order, as prost does.
                    assert_eq!(pk.encode_to_vec(), strip_version(&ciphertext)?, "{at}");
                }
                "msg" => {
                    seen.1 += 1;
                    check_signal_message(&ciphertext, parsed, &at)?;
                }
                other => panic!("{at}: unexpected type {other}"),
            }
            let plaintext = hex_at(m, "/plaintext")?;
            let protobuf = hex_at(m, "/message_protobuf")?;
            assert_eq!(unpad(&plaintext)?, protobuf, "{at}");
            check_content(&protobuf, &m["message"], &at)?;
        }
    }
    assert!(
        seen.0 >= 3 && seen.1 >= 3,
        "expected pkmsg and msg cases, saw {seen:?}"
    );
    Ok(())
}

#[test]
fn parses_sender_key_messages_and_distribution_messages() -> Result<()> {
    let v = load("sender_keys/sender_keys.json");
    let scenario = &v["scenarios"][0];
    let group = str_at(scenario, "/group_jid")?;
    let messages = scenario["messages"].as_array().context("messages")?;
    assert!(!messages.is_empty());
    for (i, m) in messages.iter().enumerate() {
        let at = format!("message {i}");
        let skmsg = hex_at(m, "/skmsg")?;
        let parsed = &m["parsed"];
        ensure!(skmsg.len() > 1 + SIGNATURE_LEN, "{at}: too short");
        let (signed, signature) = skmsg.split_at(skmsg.len() - SIGNATURE_LEN);
        assert_eq!(signed, hex_at(parsed, "/signed_part")?, "{at}");
        assert_eq!(signature, hex_at(parsed, "/signature")?, "{at}");
        let msg = SenderKeyMessage::decode(strip_version(signed)?)?;
        assert_eq!(u64::from(msg.id()), u64_at(parsed, "/key_id")?, "{at}");
        assert_eq!(
            u64::from(msg.iteration()),
            u64_at(parsed, "/iteration")?,
            "{at}"
        );
        assert_eq!(msg.ciphertext(), hex_at(parsed, "/aes_ciphertext")?, "{at}");
        assert_eq!(msg.encode_to_vec(), strip_version(signed)?, "{at}");

        let Some(skdm_hex) = m.get("skdm_returned") else {
            continue;
        };
        let skdm_bytes = hex::decode(skdm_hex.as_str().context("skdm_returned")?)?;
        let skdm = SenderKeyDistributionMessage::decode(strip_version(&skdm_bytes)?)?;
        let sp = &m["skdm_parsed"];
        assert_eq!(u64::from(skdm.id()), u64_at(sp, "/key_id")?, "{at}");
        assert_eq!(
            u64::from(skdm.iteration()),
            u64_at(sp, "/iteration")?,
            "{at}"
        );
        assert_eq!(skdm.chain_key(), hex_at(sp, "/chain_key")?, "{at}");
        assert_eq!(skdm.signing_key(), hex_at(sp, "/signing_key")?, "{at}");
        assert_eq!(skdm.encode_to_vec(), strip_version(&skdm_bytes)?, "{at}");

        // The pairwise plaintext wraps the SKDM in Message.senderKeyDistributionMessage.
        let pairwise = hex_at(m, "/skdm_pairwise_plaintext")?;
        let wrapper = Message::decode(unpad(&pairwise)?)?;
        let inner = wrapper
            .sender_key_distribution_message
            .as_ref()
            .context("senderKeyDistributionMessage missing")?;
        assert_eq!(inner.group_id(), group, "{at}");
        assert_eq!(
            inner.axolotl_sender_key_distribution_message(),
            skdm_bytes,
            "{at}"
        );
    }
    Ok(())
}
