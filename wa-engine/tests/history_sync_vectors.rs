//! History-sync vectors: `shared/vectors/history_sync/history_sync.json` (Baileys
//! 7.0.0-rc14 `downloadHistory`, cross-checked by Baileys 6.7.24 and node:crypto; see its
//! README). Each case: the notification inside the recorded protocol message, decryption
//! and verification of the blob (whole and in small chunks), inflation, decoding including
//! field 19 (nctSalt), the typed extraction compared with `plaintext_fields` and Baileys'
//! processed counts, encryption to the exact enc file, the `hist_sync` receipt, and the
//! failure cases (tampering, inflate cap).

use std::path::Path;

use base64::Engine as _;
use prost::Message as _;
use serde_json::Value;
use wa_engine::Jid;
use wa_engine::binary::Value as AttrValue;
use wa_engine::history::{
    self, BlobInflater, BlobVerifier, HistoryConfig, HistoryError, HistoryItem, HistoryItems,
    HistoryStream, HistorySyncData,
};
use wa_engine::media::{self, MediaKey, MediaType};
use wa_proto::wa::{HistorySync, Message, history_sync::HistorySyncType};

fn vectors() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors/history_sync/history_sync.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "history-sync vector file {} is missing or unreadable ({e}); these tests need shared/vectors beside the repository",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is malformed: {e}", path.display()))
}

fn cases() -> Vec<Value> {
    let cases = vectors()["cases"].as_array().expect("cases").clone();
    assert!(!cases.is_empty(), "no history-sync cases");
    cases
}

fn hex_of(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(
        v[field]
            .as_str()
            .unwrap_or_else(|| panic!("vector field {field} missing")),
    )
    .unwrap_or_else(|e| panic!("vector field {field} is not hex: {e}"))
}

fn b64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("base64 string"))
        .expect("base64")
}

fn num(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a number: {v}"))
}

fn notification(case: &Value) -> wa_proto::wa::message::HistorySyncNotification {
    let msg =
        Message::decode(hex_of(case, "protocol_message").as_slice()).expect("protocol_message");
    msg.protocol_message
        .as_ref()
        .and_then(|p| p.history_sync_notification.clone())
        .expect("historySyncNotification")
}

#[test]
fn protocol_message_carries_the_recorded_notification() {
    for case in cases() {
        let bytes = hex_of(&case, "protocol_message");
        let msg = Message::decode(bytes.as_slice()).expect("Message");
        assert_eq!(msg.encode_to_vec(), bytes, "re-encodes to the same bytes");
        let p = msg.protocol_message.as_ref().expect("protocolMessage");
        assert_eq!(p.r#type, Some(5), "HISTORY_SYNC_NOTIFICATION");
        let n = notification(&case);
        let j = &case["history_sync_notification"];
        assert_eq!(n.file_sha256, Some(b64(&j["fileSha256"])));
        assert_eq!(n.file_length, Some(num(&j["fileLength"])));
        assert_eq!(n.media_key, Some(b64(&j["mediaKey"])));
        assert_eq!(n.file_enc_sha256, Some(b64(&j["fileEncSha256"])));
        assert_eq!(n.direct_path.as_deref(), j["directPath"].as_str());
        assert_eq!(
            n.sync_type,
            Some(i32::try_from(num(&j["syncType"])).expect("i32"))
        );
        assert_eq!(n.chunk_order.map(u64::from), Some(num(&j["chunkOrder"])));
        assert_eq!(
            n.original_message_id.as_deref(),
            j["originalMessageId"].as_str()
        );
        assert_eq!(n.progress.map(u64::from), Some(num(&j["progress"])));
        assert_eq!(
            n.oldest_msg_in_chunk_timestamp_sec.map(|t| t as u64),
            Some(num(&j["oldestMsgInChunkTimestampSec"]))
        );
        // The notification's hashes are those of the media fields.
        let m = &case["media"];
        assert_eq!(n.file_sha256, Some(hex_of(m, "file_sha256")));
        assert_eq!(n.file_enc_sha256, Some(hex_of(m, "file_enc_sha256")));
        assert_eq!(n.media_key, Some(hex_of(m, "media_key")));
        assert_eq!(n.file_length, Some(num(&m["file_length"])));
        assert_eq!(n.direct_path.as_deref(), m["direct_path"].as_str());
    }
}

#[test]
fn blob_decrypts_verifies_and_inflates() {
    let config = HistoryConfig::default();
    for case in cases() {
        let label = case["label"].as_str().expect("label");
        let m = &case["media"];
        let n = notification(&case);
        let enc_file = hex_of(m, "enc_file");
        assert_eq!(enc_file, b64(&m["enc_file_b64"]));
        assert_eq!(
            enc_file[enc_file.len() - 10..],
            hex_of(m, "mac10")[..],
            "{label}"
        );

        // Keys: "WhatsApp History Keys".
        assert_eq!(
            m["hkdf_info"].as_str(),
            Some(MediaType::History.hkdf_info())
        );
        assert_eq!(m["media_type"].as_str(), Some(MediaType::History.name()));
        let keys = MediaKey::from_slice(&hex_of(m, "media_key"))
            .expect("key")
            .expand(MediaType::History);
        assert_eq!(keys.iv().to_vec(), hex_of(m, "iv"));
        assert_eq!(keys.cipher_key().to_vec(), hex_of(m, "cipher_key"));
        assert_eq!(keys.mac_key().to_vec(), hex_of(m, "mac_key"));

        // The compressed stream is the media plaintext.
        let compressed = hex_of(&case, "compressed");
        assert_eq!(compressed.len() as u64, num(&case["compressed_length"]));
        let plain = media::decrypt(
            &MediaKey::from_slice(&hex_of(m, "media_key")).expect("key"),
            MediaType::History,
            &enc_file,
            media::Expected::default(),
        )
        .expect("media decrypt");
        assert_eq!(plain, compressed, "{label}");

        // Whole, and in chunks of every small size: same inflated bytes.
        let proto = hex_of(&case, "history_sync_proto");
        assert_eq!(proto.len() as u64, num(&case["history_sync_proto_length"]));
        assert_eq!(
            history::decrypt_and_inflate(&n, &enc_file, &config).expect("blob"),
            proto,
            "{label}"
        );
        for chunk in [1, 7, 16, 17, 100] {
            let mut inflater = BlobInflater::new(&n, &config).expect("inflater");
            for piece in enc_file.chunks(chunk) {
                inflater.update(piece).expect("update");
            }
            assert_eq!(
                inflater.finish().expect("finish"),
                proto,
                "{label}: chunks of {chunk}"
            );
        }
        assert_eq!(
            history::inflate(&compressed, &config).expect("inflate"),
            proto
        );
        use sha2::Digest as _;
        assert_eq!(
            sha2::Sha256::digest(&proto).to_vec(),
            hex_of(&case, "history_sync_proto_sha256")
        );
    }
}

/// The two-pass streaming path (verify, then decode field by field) gives the same items and
/// the same results as the buffered one, whatever the chunking.
#[test]
fn two_pass_streaming_matches_the_buffered_decode() {
    let config = HistoryConfig::default();
    for case in cases() {
        let n = notification(&case);
        let enc_file = hex_of(&case["media"], "enc_file");
        let proto = hex_of(&case, "history_sync_proto");
        let expected_items: Vec<HistoryItem> = HistoryItems::new(&proto)
            .collect::<Result<_, _>>()
            .expect("items");
        let expected = history::decode(&proto, &config).expect("decode");
        for chunk in [1, 5, 16, 64, enc_file.len()] {
            let mut verifier = BlobVerifier::new(&n).expect("verifier");
            for piece in enc_file.chunks(chunk) {
                verifier.update(piece).expect("verify update");
            }
            let media = verifier.finish().expect("verifies");
            assert_eq!(media.file_length, num(&case["compressed_length"]));

            let mut stream = HistoryStream::new(&n, &config).expect("stream");
            let mut items = Vec::new();
            for piece in enc_file.chunks(chunk) {
                stream.update(piece, &mut items).expect("stream update");
            }
            stream.finish(&mut items).expect("stream finish");
            assert_eq!(items, expected_items, "chunks of {chunk}");
            let mut data = HistorySyncData::default();
            for item in items {
                data.add(item, &config);
            }
            assert_eq!(data, expected);
        }
        // A tampered blob fails the verifying pass.
        let mut bad = enc_file.clone();
        bad[0] ^= 1;
        let mut verifier = BlobVerifier::new(&n).expect("verifier");
        verifier.update(&bad).expect("update");
        assert!(matches!(verifier.finish(), Err(HistoryError::Media(_))));
    }
}

#[test]
fn blob_encrypts_to_the_recorded_enc_file() {
    for case in cases() {
        let m = &case["media"];
        let key = MediaKey::from_slice(&hex_of(m, "media_key")).expect("key");
        let (enc_file, meta) = media::encrypt(
            key.clone(),
            MediaType::History,
            &hex_of(&case, "compressed"),
        );
        assert_eq!(enc_file, hex_of(m, "enc_file"), "byte for byte");
        assert_eq!(meta.file_sha256.to_vec(), hex_of(m, "file_sha256"));
        assert_eq!(meta.file_enc_sha256.to_vec(), hex_of(m, "file_enc_sha256"));
        assert_eq!(meta.file_length, num(&m["file_length"]));

        // Our own compression (for the simulated phone) round-trips through the decoder.
        let proto = hex_of(&case, "history_sync_proto");
        let (enc, meta) = history::compress_and_encrypt(&proto, key.clone());
        let n = wa_proto::wa::message::HistorySyncNotification {
            media_key: Some(key.as_bytes().to_vec()),
            file_sha256: Some(meta.file_sha256.to_vec()),
            file_enc_sha256: Some(meta.file_enc_sha256.to_vec()),
            file_length: Some(meta.file_length),
            ..Default::default()
        };
        assert_eq!(
            history::decrypt_and_inflate(&n, &enc, &HistoryConfig::default()).expect("ours"),
            proto
        );
    }
}

#[test]
fn history_sync_decodes_with_field_19() {
    let config = HistoryConfig::default();
    for case in cases() {
        let proto = hex_of(&case, "history_sync_proto");
        let pf = &case["plaintext_fields"];
        let hs = &pf["history_sync"];
        let salt = hex_of(pf, "nct_salt_field_19");

        // prost sees the same message, including field 19, and re-encodes it exactly.
        let whole = HistorySync::decode(proto.as_slice()).expect("HistorySync");
        assert_eq!(whole.nct_salt.as_deref(), Some(salt.as_slice()));
        assert_eq!(
            whole.encode_to_vec(),
            proto,
            "every field of the vector is declared"
        );
        // Field 19 comes after Baileys' own bytes.
        let prefix = usize::try_from(num(&case["baileys_encoded_prefix_length"])).expect("usize");
        assert_eq!(proto[prefix..prefix + 2], [0x9a, 0x01]);

        // Field by field.
        let items: Vec<HistoryItem> = HistoryItems::new(&proto)
            .collect::<Result<_, _>>()
            .expect("items");
        assert!(items.contains(&HistoryItem::NctSalt(salt.clone())));
        assert!(items.contains(&HistoryItem::SyncType(
            HistorySyncType::InitialBootstrap as i32
        )));

        let data = history::decode(&proto, &config).expect("decode");
        assert_eq!(data.nct_salt.as_deref(), Some(salt.as_slice()));
        assert_eq!(
            data.sync_type.map(|t| t.as_str_name()),
            hs["syncType"].as_str(),
            "sync type"
        );
        assert_eq!(data.chunk_order.map(u64::from), hs["chunkOrder"].as_u64());
        assert_eq!(data.progress.map(u64::from), hs["progress"].as_u64());

        // Conversations and messages against plaintext_fields.
        let convs = hs["conversations"].as_array().expect("conversations");
        assert_eq!(data.conversations.len(), convs.len());
        assert_eq!(data.conversations, whole.conversations);
        for (c, j) in data.conversations.iter().zip(convs) {
            assert_eq!(c.id.as_deref(), j["id"].as_str());
            assert_eq!(c.name.as_deref(), j["name"].as_str());
            assert_eq!(
                c.conversation_timestamp,
                j.get("conversationTimestamp").map(num)
            );
            assert_eq!(c.unread_count.map(u64::from), j.get("unreadCount").map(num));
            assert_eq!(c.lid_jid.as_deref(), j["lidJid"].as_str());
            let msgs = j["messages"].as_array().expect("messages");
            assert_eq!(c.messages.len(), msgs.len());
            for (m, mj) in c.messages.iter().zip(msgs) {
                assert_eq!(m.msg_order_id, Some(num(&mj["msgOrderId"])));
                let info = m.message.as_ref().expect("WebMessageInfo");
                let key = info.key.as_ref().expect("key");
                let kj = &mj["message"]["key"];
                assert_eq!(key.remote_jid.as_deref(), kj["remoteJid"].as_str());
                assert_eq!(key.from_me, kj["fromMe"].as_bool());
                assert_eq!(key.id.as_deref(), kj["id"].as_str());
                assert_eq!(key.participant.as_deref(), kj["participant"].as_str());
                assert_eq!(
                    info.message
                        .as_ref()
                        .and_then(|x| x.conversation.as_deref()),
                    mj["message"]["message"]["conversation"].as_str()
                );
                assert_eq!(
                    info.message_timestamp,
                    Some(num(&mj["message"]["messageTimestamp"]))
                );
                assert_eq!(
                    info.push_name.as_deref(),
                    mj["message"]["pushName"].as_str()
                );
            }
        }

        // Push names.
        let names = hs["pushnames"].as_array().expect("pushnames");
        assert_eq!(data.push_names.len(), names.len());
        for (p, j) in data.push_names.iter().zip(names) {
            assert_eq!(p.jid.to_string(), j["id"].as_str().expect("id"));
            assert_eq!(p.name, j["pushname"].as_str().expect("pushname"));
        }

        // Mappings: field 15 and the conversations' lidJid, as Baileys reports them.
        let mut expected_mappings: Vec<(String, String)> = Vec::new();
        for m in case["baileys_processed"]["lidPnMappings"]
            .as_array()
            .expect("lidPnMappings")
        {
            let pair = (
                m["pn"].as_str().expect("pn").to_owned(),
                m["lid"].as_str().expect("lid").to_owned(),
            );
            if !expected_mappings.contains(&pair) {
                expected_mappings.push(pair);
            }
        }
        let ours: Vec<(String, String)> = data
            .lid_mappings
            .iter()
            .map(|m| (m.pn.to_string(), m.lid.to_string()))
            .collect();
        assert_eq!(ours, expected_mappings);
        for m in hs["phoneNumberToLidMappings"].as_array().expect("mappings") {
            assert!(ours.contains(&(
                m["pnJid"].as_str().expect("pn").to_owned(),
                m["lidJid"].as_str().expect("lid").to_owned()
            )));
        }

        // Trusted-contact tokens: stored under the conversation's LID.
        let with_token: Vec<&Value> = convs
            .iter()
            .filter(|c| c.get("tcToken").is_some())
            .collect();
        assert_eq!(data.tc_tokens.len(), with_token.len());
        for (t, j) in data.tc_tokens.iter().zip(with_token) {
            assert_eq!(t.token, b64(&j["tcToken"]));
            assert_eq!(t.timestamp, num(&j["tcTokenTimestamp"]));
            assert_eq!(t.sender_timestamp, j.get("tcTokenSenderTimestamp").map(num));
            assert_eq!(
                t.jid.to_string(),
                j["lidJid"]
                    .as_str()
                    .unwrap_or_else(|| j["id"].as_str().expect("id"))
            );
            assert!(t.jid.is_lid());
        }

        // Baileys' processed counts.
        let bp = &case["baileys_processed"];
        assert_eq!(data.conversations.len() as u64, num(&bp["chats"]));
        assert_eq!(data.push_names.len() as u64, num(&bp["contacts"]));
        assert_eq!(data.message_count() as u64, num(&bp["messages"]));

        // Without messages: tokens, mappings, names and salt stay.
        let lean = history::decode(
            &proto,
            &HistoryConfig {
                keep_messages: false,
                ..HistoryConfig::default()
            },
        )
        .expect("decode");
        assert_eq!(lean.message_count(), 0);
        assert_eq!(lean.conversations.len(), data.conversations.len());
        assert_eq!(lean.tc_tokens, data.tc_tokens);
        assert_eq!(lean.lid_mappings, data.lid_mappings);
        assert_eq!(lean.push_names, data.push_names);
        assert_eq!(lean.nct_salt, data.nct_salt);
    }
}

#[test]
fn hist_sync_receipt_has_the_recorded_shape() {
    for case in cases() {
        let r = &case["hist_sync_receipt"];
        let attrs = r["attrs"].as_array().expect("attrs");
        let get = |k: &str| {
            attrs
                .iter()
                .find(|a| a[0] == k)
                .and_then(|a| a[1].as_str())
                .unwrap_or_else(|| panic!("receipt attr {k}"))
        };
        // Our own JID with a device: the receipt goes to the user.
        let own: Jid = get("to").parse::<Jid>().expect("jid").with_device(7);
        let node = history::receipt(get("id"), &own);
        assert_eq!(node.tag, r["tag"].as_str().expect("tag"));
        let ours: Vec<(String, String)> = node
            .attrs
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_text().into_owned()))
            .collect();
        let expected: Vec<(String, String)> = attrs
            .iter()
            .map(|a| {
                (
                    a[0].as_str().expect("k").to_owned(),
                    a[1].as_str().expect("v").to_owned(),
                )
            })
            .collect();
        assert_eq!(ours, expected);
        assert!(
            matches!(node.get_attr("to"), Some(AttrValue::Jid(_))),
            "to is a JID"
        );
        assert_eq!(
            get("id"),
            notification(&case)
                .original_message_id
                .as_deref()
                .expect("id")
        );
    }
}

#[test]
fn tampered_or_oversized_blobs_are_refused() {
    for case in cases() {
        let n = notification(&case);
        let enc_file = hex_of(&case["media"], "enc_file");
        let config = HistoryConfig::default();

        // A flipped ciphertext byte: MAC (or the enc hash) fails.
        let mut bad = enc_file.clone();
        bad[3] ^= 0x40;
        assert!(matches!(
            history::decrypt_and_inflate(&n, &bad, &config),
            Err(HistoryError::Media(_))
        ));
        // Truncated.
        assert!(matches!(
            history::decrypt_and_inflate(&n, &enc_file[..enc_file.len() - 1], &config),
            Err(HistoryError::Media(_))
        ));
        // Inflated size above the cap.
        let proto_len = hex_of(&case, "history_sync_proto").len();
        let small = HistoryConfig {
            max_inflated: proto_len - 1,
            ..HistoryConfig::default()
        };
        assert!(matches!(
            history::decrypt_and_inflate(&n, &enc_file, &small),
            Err(HistoryError::TooLarge { limit }) if limit == proto_len - 1
        ));
        let exact = HistoryConfig {
            max_inflated: proto_len,
            ..HistoryConfig::default()
        };
        assert!(history::decrypt_and_inflate(&n, &enc_file, &exact).is_ok());
        // A truncated zlib stream.
        let compressed = hex_of(&case, "compressed");
        assert!(matches!(
            history::inflate(&compressed[..compressed.len() - 6], &config),
            Err(HistoryError::TruncatedStream)
        ));
        // No media key.
        let no_key = wa_proto::wa::message::HistorySyncNotification {
            media_key: None,
            ..n.clone()
        };
        assert!(matches!(
            BlobInflater::new(&no_key, &config),
            Err(HistoryError::MissingField(_))
        ));
    }
}

/// An inflate bomb (a few KiB inflating past the cap) fails as soon as it passes the cap,
/// without inflating the rest.
#[test]
fn inflate_bomb_stops_at_the_cap() {
    use std::io::Write as _;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0_u8; 1 << 20];
    for _ in 0..80 {
        encoder.write_all(&zeros).expect("write");
    }
    let bomb = encoder.finish().expect("finish");
    assert!(bomb.len() < 200 * 1024, "80 MiB of zeros compress small");
    let err = history::inflate(&bomb, &HistoryConfig::default()).expect_err("must refuse");
    assert!(
        matches!(err, HistoryError::TooLarge { limit } if limit == history::DEFAULT_MAX_INFLATED)
    );
}
