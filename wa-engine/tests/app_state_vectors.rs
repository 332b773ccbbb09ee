//! App-state ("syncd") vectors: `shared/vectors/app_state/app_state.json` (Baileys
//! 7.0.0-rc14, cross-checked by Baileys 6.7.24 and an independent implementation; see its
//! README). Every key, all 13 mutations in both directions (decrypt + verify, and
//! encrypt to the exact bytes with the recorded IV), every LTHash sequence, the snapshot
//! (through its external blob and the encoded IQ response) followed by patches v6 and v7
//! ending at `final`, and every bad patch (rejected, state unchanged).

use std::collections::BTreeSet;
use std::path::Path;

use base64::Engine as _;
use prost::Message as _;
use serde_json::{Value, json};
use wa_engine::Jid;
use wa_engine::appstate::{
    self, AppStateError, Collection, CollectionState, KeyRing, LtHash, MutationKeys, NewMutation,
    Operation, actions, crypto,
};
use wa_engine::binary;
use wa_engine::media::{MediaKey, MediaType};
use wa_proto::wa::{
    ExternalBlobReference, Message, MessageKey, SyncActionData, SyncActionMessageRange,
    SyncActionValue, SyncdMutation, SyncdPatch, SyncdRecord, SyncdSnapshot,
};

fn vectors() -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/app_state/app_state.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "app-state vector file {} is missing or unreadable ({e}); these tests need shared/vectors beside the repository",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is malformed: {e}", path.display()))
}

fn hex_of(v: &Value, field: &str) -> Vec<u8> {
    let s = v[field]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {field} missing"));
    hex::decode(s).unwrap_or_else(|e| panic!("vector field {field} is not hex: {e}"))
}

fn arr<const N: usize>(v: &Value, field: &str) -> [u8; N] {
    hex_of(v, field)
        .try_into()
        .unwrap_or_else(|_| panic!("vector field {field} is not {N} bytes"))
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {field} missing"))
}

fn u64_of(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("vector field {field} missing"))
}

fn key_ring(file: &Value) -> KeyRing {
    let mut ring = KeyRing::new();
    for key in file["keys"].as_array().expect("keys") {
        ring.insert(hex_of(key, "key_id"), &hex_of(key, "key_data"));
    }
    ring
}

fn keys_of(file: &Value, key_id: &[u8]) -> MutationKeys {
    let key = file["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| hex_of(k, "key_id") == key_id)
        .expect("vector names a key it lists");
    MutationKeys::expand(&hex_of(key, "key_data"))
}

fn collection_of(v: &Value) -> Collection {
    str_of(v, "collection").parse().expect("known collection")
}

fn operation_of(v: &Value) -> Operation {
    match str_of(v, "operation") {
        "SET" => Operation::Set,
        "REMOVE" => Operation::Remove,
        other => panic!("unknown operation {other}"),
    }
}

fn index_of(v: &Value) -> Vec<String> {
    v["index"]
        .as_array()
        .expect("index")
        .iter()
        .map(|s| s.as_str().expect("index element").to_owned())
        .collect()
}

// --- protobufjs `toObject` form of the values, for comparing with `sync_action_value` ---

fn put<T: Into<Value>>(o: &mut serde_json::Map<String, Value>, k: &str, v: Option<T>) {
    if let Some(v) = v {
        o.insert(k.to_owned(), v.into());
    }
}

fn int64(v: Option<i64>) -> Option<String> {
    v.map(|n| n.to_string())
}

fn key_json(k: &MessageKey) -> Value {
    let mut o = serde_json::Map::new();
    put(&mut o, "remoteJid", k.remote_jid.clone());
    put(&mut o, "fromMe", k.from_me);
    put(&mut o, "id", k.id.clone());
    put(&mut o, "participant", k.participant.clone());
    Value::Object(o)
}

fn range_json(r: &SyncActionMessageRange) -> Value {
    let mut o = serde_json::Map::new();
    put(
        &mut o,
        "lastMessageTimestamp",
        int64(r.last_message_timestamp),
    );
    put(
        &mut o,
        "lastSystemMessageTimestamp",
        int64(r.last_system_message_timestamp),
    );
    if !r.messages.is_empty() {
        let msgs: Vec<Value> = r
            .messages
            .iter()
            .map(|m| {
                let mut o = serde_json::Map::new();
                if let Some(k) = &m.key {
                    o.insert("key".into(), key_json(k));
                }
                put(&mut o, "timestamp", int64(m.timestamp));
                Value::Object(o)
            })
            .collect();
        o.insert("messages".into(), Value::Array(msgs));
    }
    Value::Object(o)
}

/// The fields the vectors use; a field set but not converted here makes the test fail
/// through the `SyncActionData` re-encoding check instead.
fn value_json(v: &SyncActionValue) -> Value {
    let mut o = serde_json::Map::new();
    put(&mut o, "timestamp", int64(v.timestamp));
    if let Some(a) = &v.mute_action {
        let mut m = serde_json::Map::new();
        put(&mut m, "muted", a.muted);
        put(&mut m, "muteEndTimestamp", int64(a.mute_end_timestamp));
        put(&mut m, "autoMuted", a.auto_muted);
        o.insert("muteAction".into(), Value::Object(m));
    }
    if let Some(a) = &v.archive_chat_action {
        let mut m = serde_json::Map::new();
        put(&mut m, "archived", a.archived);
        if let Some(r) = &a.message_range {
            m.insert("messageRange".into(), range_json(r));
        }
        o.insert("archiveChatAction".into(), Value::Object(m));
    }
    if let Some(a) = &v.mark_chat_as_read_action {
        let mut m = serde_json::Map::new();
        put(&mut m, "read", a.read);
        if let Some(r) = &a.message_range {
            m.insert("messageRange".into(), range_json(r));
        }
        o.insert("markChatAsReadAction".into(), Value::Object(m));
    }
    if let Some(a) = &v.delete_chat_action {
        let mut m = serde_json::Map::new();
        if let Some(r) = &a.message_range {
            m.insert("messageRange".into(), range_json(r));
        }
        o.insert("deleteChatAction".into(), Value::Object(m));
    }
    if let Some(a) = &v.pin_action {
        o.insert("pinAction".into(), json!({ "pinned": a.pinned }));
    }
    if let Some(a) = &v.star_action {
        o.insert("starAction".into(), json!({ "starred": a.starred }));
    }
    if let Some(a) = &v.push_name_setting {
        o.insert("pushNameSetting".into(), json!({ "name": a.name }));
    }
    if let Some(a) = &v.contact_action {
        let mut m = serde_json::Map::new();
        put(&mut m, "fullName", a.full_name.clone());
        put(&mut m, "firstName", a.first_name.clone());
        put(&mut m, "lidJid", a.lid_jid.clone());
        put(
            &mut m,
            "saveOnPrimaryAddressbook",
            a.save_on_primary_addressbook,
        );
        put(&mut m, "pnJid", a.pn_jid.clone());
        put(&mut m, "username", a.username.clone());
        o.insert("contactAction".into(), Value::Object(m));
    }
    if let Some(a) = &v.label_edit_action {
        let mut m = serde_json::Map::new();
        put(&mut m, "name", a.name.clone());
        put(&mut m, "color", a.color);
        put(&mut m, "predefinedId", a.predefined_id);
        put(&mut m, "deleted", a.deleted);
        put(&mut m, "orderIndex", a.order_index);
        o.insert("labelEditAction".into(), Value::Object(m));
    }
    if let Some(a) = &v.label_association_action {
        o.insert(
            "labelAssociationAction".into(),
            json!({ "labeled": a.labeled }),
        );
    }
    Value::Object(o)
}

fn new_mutation_of(m: &Value) -> NewMutation {
    let data =
        SyncActionData::decode(hex_of(m, "sync_action_data").as_slice()).expect("SyncActionData");
    NewMutation {
        collection: collection_of(m),
        operation: operation_of(m),
        index: index_of(m),
        value: data.value.expect("value"),
        action_version: i32::try_from(m["action_version"].as_i64().expect("action_version"))
            .expect("i32"),
    }
}

/// Checks one vector mutation (top-level or inside a snapshot/patch) both ways.
fn check_mutation(file: &Value, m: &Value, ring: &KeyRing) {
    let label = str_of(m, "label");
    let key_id = hex_of(m, "key_id");
    let keys = keys_of(file, &key_id);
    let operation = operation_of(m);
    assert_eq!(
        u64::from(operation.mac_byte()),
        u64_of(m, "operation_byte"),
        "{label}"
    );
    let iv: [u8; 16] = arr(m, "iv");
    let new = new_mutation_of(m);

    // The index bytes and the plaintext protobuf.
    assert_eq!(
        new.index_json(),
        hex_of(m, "index_json_hex"),
        "{label}: index JSON"
    );
    assert_eq!(
        new.index_json(),
        str_of(m, "index_json").as_bytes(),
        "{label}"
    );
    let sync_action_data = hex_of(m, "sync_action_data");
    assert_eq!(
        new.action_data().encode_to_vec(),
        sync_action_data,
        "{label}: SyncActionData re-encodes to the same bytes (every field known)"
    );
    assert_eq!(
        value_json(&new.value),
        m["sync_action_value"],
        "{label}: action value"
    );

    // Encrypt direction: exact bytes with the recorded IV.
    let enc = crypto::encrypt_value(&keys.value_encryption, &iv, &sync_action_data);
    assert_eq!(enc, hex_of(m, "enc_value"), "{label}: enc value");
    assert_eq!(
        enc[16..],
        hex_of(m, "ciphertext")[..],
        "{label}: ciphertext"
    );
    assert_eq!(
        crypto::value_mac(&keys.value_mac, operation, &key_id, &enc).to_vec(),
        hex_of(m, "value_mac"),
        "{label}: value MAC"
    );
    assert_eq!(
        crypto::index_mac(&keys.index, &new.index_json()).to_vec(),
        hex_of(m, "index_mac"),
        "{label}: index MAC"
    );
    let encoded = appstate::encode_record(&new, &key_id, &keys, &iv);
    assert_eq!(
        encoded
            .mutation
            .record
            .as_ref()
            .expect("record")
            .encode_to_vec(),
        hex_of(m, "record"),
        "{label}: SyncdRecord bytes"
    );
    assert_eq!(
        encoded.mutation.encode_to_vec(),
        hex_of(m, "mutation"),
        "{label}: SyncdMutation bytes"
    );
    assert_eq!(
        encoded
            .mutation
            .record
            .as_ref()
            .and_then(|r| r.value.as_ref())
            .and_then(|v| v.blob.clone()),
        Some(hex_of(m, "value_blob")),
        "{label}: value blob"
    );

    // Decrypt direction.
    assert_eq!(
        crypto::decrypt_value(&keys.value_encryption, &hex_of(m, "enc_value")).expect("decrypts"),
        sync_action_data
    );
    let record = SyncdRecord::decode(hex_of(m, "record").as_slice()).expect("SyncdRecord");
    let decoded = appstate::decode_record(new.collection, operation, &record, 1, ring)
        .unwrap_or_else(|e| panic!("{label}: record does not decode: {e}"));
    assert_eq!(decoded.index, new.index, "{label}");
    assert_eq!(decoded.action, new.value, "{label}");
    assert_eq!(decoded.action_version, new.action_version, "{label}");
    assert_eq!(decoded.operation, operation, "{label}");
    assert_eq!(
        decoded.index_mac.to_vec(),
        hex_of(m, "index_mac"),
        "{label}"
    );
    assert_eq!(
        decoded.value_mac.to_vec(),
        hex_of(m, "value_mac"),
        "{label}"
    );
    assert_eq!(decoded.key_id, key_id, "{label}");
    let mutation = SyncdMutation::decode(hex_of(m, "mutation").as_slice()).expect("SyncdMutation");
    assert_eq!(Operation::from_proto(&mutation), operation, "{label}");
}

#[test]
fn keys_expand_to_the_five_recorded_slices() {
    let file = vectors();
    let keys = file["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 3);
    for key in keys {
        let k = MutationKeys::expand(&hex_of(key, "key_data"));
        let mut all = Vec::new();
        for part in [
            &k.index,
            &k.value_encryption,
            &k.value_mac,
            &k.snapshot_mac,
            &k.patch_mac,
        ] {
            all.extend_from_slice(part);
        }
        assert_eq!(all, hex_of(key, "expanded"));
        assert_eq!(k.index.to_vec(), hex_of(key, "index_key"));
        assert_eq!(
            k.value_encryption.to_vec(),
            hex_of(key, "value_encryption_key")
        );
        assert_eq!(k.value_mac.to_vec(), hex_of(key, "value_mac_key"));
        assert_eq!(k.snapshot_mac.to_vec(), hex_of(key, "snapshot_mac_key"));
        assert_eq!(k.patch_mac.to_vec(), hex_of(key, "patch_mac_key"));
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(hex_of(key, "key_id")),
            str_of(key, "key_id_b64")
        );
    }
}

#[test]
fn key_share_and_key_request_decode() {
    let file = vectors();
    let share_bytes = hex_of(
        &file["protocol_messages"]["app_state_sync_key_share"],
        "message",
    );
    let msg = Message::decode(share_bytes.as_slice()).expect("key share Message");
    assert_eq!(
        msg.encode_to_vec(),
        share_bytes,
        "key share re-encodes to the same bytes"
    );
    let share = msg
        .protocol_message
        .as_ref()
        .and_then(|p| p.app_state_sync_key_share.as_ref())
        .expect("appStateSyncKeyShare");
    let mut ring = KeyRing::new();
    assert_eq!(ring.insert_share(share), 3);
    // Our own patches use the newest key (key-3, the highest timestamp).
    let newest = file["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .max_by_key(|k| k["timestamp_ms"].as_i64())
        .expect("a key");
    assert_eq!(
        ring.latest_key_id(),
        Some(hex_of(newest, "key_id").as_slice())
    );
    for (key, shared) in file["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .zip(&share.keys)
    {
        assert!(ring.contains(&hex_of(key, "key_id")));
        let data = shared.key_data.as_ref().expect("keyData");
        assert_eq!(
            data.key_data.as_deref(),
            Some(hex_of(key, "key_data").as_slice())
        );
        assert_eq!(data.timestamp, key["timestamp_ms"].as_i64());
        let fp = data.fingerprint.as_ref().expect("fingerprint");
        assert_eq!(
            fp.raw_id,
            key["fingerprint"]["rawId"].as_u64().map(|n| n as u32)
        );
        assert_eq!(
            fp.current_index,
            key["fingerprint"]["currentIndex"]
                .as_u64()
                .map(|n| n as u32)
        );
    }

    let request_bytes = hex_of(
        &file["protocol_messages"]["app_state_sync_key_request"],
        "message",
    );
    let msg = Message::decode(request_bytes.as_slice()).expect("key request Message");
    assert_eq!(msg.encode_to_vec(), request_bytes);
    let request = msg
        .protocol_message
        .as_ref()
        .and_then(|p| p.app_state_sync_key_request.as_ref())
        .expect("appStateSyncKeyRequest");
    let ids: Vec<Vec<u8>> = request
        .key_ids
        .iter()
        .map(|k| k.key_id.clone().expect("id"))
        .collect();
    let expected: Vec<Vec<u8>> = file["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| hex_of(k, "key_id"))
        .collect();
    assert_eq!(ids, expected);
}

#[test]
fn all_mutations_encrypt_and_decrypt_to_the_recorded_bytes() {
    let file = vectors();
    let ring = key_ring(&file);
    let mutations = file["mutations"].as_array().expect("mutations");
    assert_eq!(mutations.len(), 13, "README promises 13 mutations");
    for m in mutations {
        check_mutation(&file, m, &ring);
        if !m["prior_set"].is_null() {
            check_mutation(&file, &m["prior_set"], &ring);
        }
    }
}

#[test]
fn all_single_patches_encode_and_apply() {
    let file = vectors();
    let ring = key_ring(&file);
    let mut count = 0;
    for m in file["mutations"].as_array().expect("mutations") {
        let label = str_of(m, "label");
        let sp = &m["single_patch"];
        let collection = collection_of(m);
        let key_id = hex_of(m, "key_id");

        // The state the patch builds on: empty, or the prior SET at version 1.
        let mut base = CollectionState::new();
        if !m["prior_set"].is_null() {
            let prior = &m["prior_set"];
            let iv: [u8; 16] = arr(prior, "iv");
            let out = base
                .encode_patch(
                    collection,
                    &hex_of(prior, "key_id"),
                    &ring,
                    &[new_mutation_of(prior)],
                    &mut || iv,
                )
                .expect("prior patch encodes");
            base = out.state_after;
        }
        assert_eq!(base.version, u64_of(sp, "base_version"), "{label}");
        assert_eq!(
            base.lthash.as_bytes().to_vec(),
            hex_of(sp, "base_lthash"),
            "{label}"
        );

        // Encode: exact upload bytes.
        let iv: [u8; 16] = arr(m, "iv");
        let out = base
            .encode_patch(
                collection,
                &key_id,
                &ring,
                &[new_mutation_of(m)],
                &mut || iv,
            )
            .expect("encodes");
        assert_eq!(out.base_version, u64_of(sp, "base_version"));
        assert_eq!(
            out.patch.encode_to_vec(),
            hex_of(sp, "patch_upload"),
            "{label}: patch_upload"
        );
        assert_eq!(
            out.patch.snapshot_mac,
            Some(hex_of(sp, "snapshot_mac")),
            "{label}"
        );
        assert_eq!(
            out.patch.patch_mac,
            Some(hex_of(sp, "patch_mac")),
            "{label}"
        );
        assert_eq!(out.state_after.version, u64_of(sp, "version"), "{label}");
        assert_eq!(
            out.state_after.lthash.as_bytes().to_vec(),
            hex_of(sp, "lthash_after"),
            "{label}"
        );

        // Decode what the server returns.
        let patch =
            SyncdPatch::decode(hex_of(sp, "patch_server").as_slice()).expect("patch_server");
        let mut state = base.clone();
        let applied = state
            .apply_patch(collection, &patch, None, &ring)
            .unwrap_or_else(|e| panic!("{label}: patch_server does not apply: {e}"));
        assert_eq!(state, out.state_after, "{label}: decoder and encoder agree");
        assert_eq!(applied.len(), 1);
        assert_eq!(applied[0].index, index_of(m), "{label}");
        assert_eq!(applied[0].operation, operation_of(m), "{label}");
        assert_eq!(applied[0].version, u64_of(sp, "version"), "{label}");
        // Applying it again is refused as stale, without change.
        let before = state.clone();
        assert!(matches!(
            state.apply_patch(collection, &patch, None, &ring),
            Err(AppStateError::StalePatch { .. })
        ));
        assert_eq!(state, before);
        count += 1;
    }
    assert_eq!(count, 13);
}

/// Our action builders produce exactly the mutations Baileys' `chatModify` made, so their
/// patches are byte-identical to Baileys' uploads (checked above) and decode in Baileys.
#[test]
fn own_action_builders_match_baileys_chat_modifications() {
    let file = vectors();
    let by_label = |label: &str| {
        file["mutations"]
            .as_array()
            .expect("mutations")
            .iter()
            .find(|m| m["label"] == label)
            .unwrap_or_else(|| panic!("vector mutation {label}"))
            .clone()
    };
    let ts = |m: &Value| {
        m["sync_action_value"]["timestamp"]
            .as_str()
            .expect("ts")
            .parse::<i64>()
            .expect("int")
    };
    let jid = |m: &Value| index_of(m)[1].parse::<Jid>().expect("jid");
    let range = |r: &Value| {
        actions::message_range(
            r["lastMessageTimestamp"]
                .as_str()
                .expect("lmt")
                .parse()
                .expect("int"),
            r["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .map(|msg| {
                    let k = &msg["key"];
                    MessageKey {
                        remote_jid: k["remoteJid"].as_str().map(str::to_owned),
                        from_me: k["fromMe"].as_bool(),
                        id: k["id"].as_str().map(str::to_owned),
                        participant: k["participant"].as_str().map(str::to_owned),
                    }
                }),
        )
    };

    let m = by_label("mute_until");
    let until = m["sync_action_value"]["muteAction"]["muteEndTimestamp"]
        .as_str()
        .expect("end")
        .parse()
        .expect("int");
    assert_eq!(
        actions::mute(&jid(&m), Some(until), ts(&m)),
        new_mutation_of(&m)
    );
    let m = by_label("unmute");
    assert_eq!(actions::mute(&jid(&m), None, ts(&m)), new_mutation_of(&m));
    let m = by_label("pin");
    assert_eq!(actions::pin(&jid(&m), true, ts(&m)), new_mutation_of(&m));
    let m = by_label("archive");
    let r = range(&m["sync_action_value"]["archiveChatAction"]["messageRange"]);
    assert_eq!(
        actions::archive(&jid(&m), true, r, ts(&m)),
        new_mutation_of(&m)
    );
    for (label, read) in [("mark_chat_as_read", true), ("mark_chat_as_unread", false)] {
        let m = by_label(label);
        let r = range(&m["sync_action_value"]["markChatAsReadAction"]["messageRange"]);
        assert_eq!(
            actions::mark_chat_read(&jid(&m), read, r, ts(&m)),
            new_mutation_of(&m),
            "{label}"
        );
    }
}

#[test]
fn lthash_sequences_replay() {
    let file = vectors();
    let seqs = file["lthash"].as_array().expect("lthash");
    assert!(!seqs.is_empty());
    for seq in seqs {
        let label = str_of(seq, "label");
        let mut h = LtHash::from_bytes(arr(seq, "initial"));
        for step in seq["steps"].as_array().expect("steps") {
            for (i, input) in step["subtract"]
                .as_array()
                .expect("subtract")
                .iter()
                .enumerate()
            {
                let input = hex::decode(input.as_str().expect("hex")).expect("hex");
                assert_eq!(
                    LtHash::expand(&input).to_vec(),
                    hex::decode(step["subtract_expanded"][i].as_str().expect("expanded"))
                        .expect("hex"),
                    "{label}"
                );
                h.subtract(&input);
            }
            for (i, input) in step["add"].as_array().expect("add").iter().enumerate() {
                let input = hex::decode(input.as_str().expect("hex")).expect("hex");
                assert_eq!(
                    LtHash::expand(&input).to_vec(),
                    hex::decode(step["add_expanded"][i].as_str().expect("expanded")).expect("hex"),
                    "{label}"
                );
                h.add(&input);
            }
            assert_eq!(h.as_bytes().to_vec(), hex_of(step, "hash_after"), "{label}");
        }
        assert_eq!(h.as_bytes().to_vec(), hex_of(seq, "final"), "{label}");
    }
}

/// The collection chain: external snapshot blob → snapshot v5 → patch v6 → patch v7 → final.
#[test]
fn snapshot_and_patches_reach_the_final_state() {
    let file = vectors();
    let ring = key_ring(&file);
    for c in file["collections"].as_array().expect("collections") {
        let collection = collection_of(c);
        let snap = &c["snapshot"];

        // The snapshot records are vector mutations too.
        for r in snap["records"].as_array().expect("records") {
            check_mutation(&file, r, &ring);
        }

        // External blob: key derivation, decryption, hashes.
        let blob = &snap["external_blob"];
        assert_eq!(str_of(blob, "media_type"), MediaType::AppState.name());
        assert_eq!(str_of(blob, "hkdf_info"), MediaType::AppState.hkdf_info());
        let expanded = MediaKey::from_slice(&hex_of(blob, "media_key"))
            .expect("key")
            .expand(MediaType::AppState);
        assert_eq!(expanded.iv().to_vec(), hex_of(blob, "iv"));
        assert_eq!(expanded.cipher_key().to_vec(), hex_of(blob, "cipher_key"));
        assert_eq!(expanded.mac_key().to_vec(), hex_of(blob, "mac_key"));
        let reference =
            ExternalBlobReference::decode(hex_of(blob, "external_blob_reference").as_slice())
                .expect("reference");
        assert_eq!(
            reference.direct_path.as_deref(),
            Some(str_of(blob, "direct_path"))
        );
        assert_eq!(
            reference.file_size_bytes,
            Some(u64_of(blob, "file_size_bytes"))
        );
        assert_eq!(reference.file_sha256, Some(hex_of(blob, "file_sha256")));
        assert_eq!(
            reference.file_enc_sha256,
            Some(hex_of(blob, "file_enc_sha256"))
        );
        let enc_file = hex_of(blob, "enc_file");
        assert_eq!(
            appstate::decrypt_blob(&reference, &enc_file).expect("blob decrypts"),
            hex_of(snap, "snapshot_proto")
        );
        let snapshot =
            appstate::decode_snapshot_blob(&reference, &enc_file).expect("snapshot blob");
        assert_eq!(
            snapshot,
            SyncdSnapshot::decode(hex_of(snap, "snapshot_proto").as_slice())
                .expect("snapshot_proto")
        );
        let mut tampered = enc_file.clone();
        tampered[0] ^= 1;
        assert!(matches!(
            appstate::decode_snapshot_blob(&reference, &tampered),
            Err(AppStateError::Blob(_))
        ));

        // The `<iq>` response as Baileys encodes it.
        let frame = hex_of(c, "iq_response_hex");
        let node = binary::decode(&frame).expect("iq response decodes");
        let responses = appstate::iq::parse_response(&node).expect("response parses");
        assert_eq!(responses.len(), 1);
        let resp = &responses[0];
        assert_eq!(resp.collection, collection);
        assert_eq!(
            resp.version,
            Some(c["final"]["version"].as_u64().expect("final version"))
        );
        assert!(!resp.has_more_patches);
        assert!(resp.error.is_none());
        assert_eq!(resp.snapshot.as_ref(), Some(&reference));
        let patches = c["patches"].as_array().expect("patches");
        assert_eq!(resp.patches.len(), patches.len());
        for (parsed, p) in resp.patches.iter().zip(patches) {
            assert_eq!(parsed.encode_to_vec(), hex_of(p, "patch_server"));
        }
        // Our fetch request has the shape of the recorded one (we omit `version` when asking
        // for a snapshot, as whatsmeow does).
        let req = appstate::iq::fetch_request(
            c["iq_request"]["attrs"][3][1].as_str().expect("iq id"),
            &[(collection, 0)],
        );
        let col = req.child_path(&["sync", "collection"]).expect("collection");
        assert_eq!(col.get_attr_str("name"), Some(collection.as_str()));
        assert_eq!(col.get_attr_str("return_snapshot"), Some("true"));
        assert_eq!(req.get_attr_str("xmlns"), Some("w:sync:app:state"));

        // Snapshot v5.
        let mut state = CollectionState::new();
        let mut mac_input = hex_of(snap, "lthash");
        mac_input.extend_from_slice(&u64_of(snap, "version").to_be_bytes());
        mac_input.extend_from_slice(collection.as_str().as_bytes());
        assert_eq!(mac_input, hex_of(snap, "mac_input"));
        let snap_keys = keys_of(&file, &hex_of(snap, "key_id"));
        assert_eq!(
            crypto::snapshot_mac(
                &snap_keys.snapshot_mac,
                &LtHash::from_bytes(arr(snap, "lthash")),
                u64_of(snap, "version"),
                collection.as_str()
            )
            .to_vec(),
            hex_of(snap, "mac")
        );
        let records = state
            .apply_snapshot(collection, &snapshot, &ring)
            .expect("snapshot applies");
        assert_eq!(state.version, u64_of(snap, "version"));
        assert_eq!(state.lthash.as_bytes().to_vec(), hex_of(snap, "lthash"));
        assert_eq!(
            records.len(),
            snap["records"].as_array().expect("records").len()
        );
        for (m, r) in records
            .iter()
            .zip(snap["records"].as_array().expect("records"))
        {
            assert_eq!(m.index, index_of(r));
            assert_eq!(m.operation, Operation::Set);
        }

        // A snapshot with a bad MAC is refused and changes nothing.
        let mut bad = snapshot.clone();
        if let Some(mac) = bad.mac.as_mut() {
            mac[0] ^= 1;
        }
        let mut fresh = CollectionState::new();
        assert!(matches!(
            fresh.apply_snapshot(collection, &bad, &ring),
            Err(AppStateError::SnapshotMacMismatch)
        ));
        assert_eq!(fresh, CollectionState::new());

        // Patches v6, v7.
        let mut states = vec![state.clone()];
        for p in patches {
            assert_eq!(state.lthash.as_bytes().to_vec(), hex_of(p, "lthash_before"));
            assert_eq!(state.version, u64_of(p, "base_version"));
            let patch_keys = keys_of(&file, &hex_of(p, "key_id"));
            assert_eq!(
                patch_keys.patch_mac.to_vec(),
                hex_of(p, "patch_mac_key_used")
            );
            let version = u64_of(p, "version");
            // MAC inputs as recorded.
            let mut snap_input = hex_of(p, "lthash_after");
            snap_input.extend_from_slice(&version.to_be_bytes());
            snap_input.extend_from_slice(collection.as_str().as_bytes());
            assert_eq!(snap_input, hex_of(p, "snapshot_mac_input"));
            assert_eq!(
                crypto::snapshot_mac(
                    &patch_keys.snapshot_mac,
                    &LtHash::from_bytes(arr(p, "lthash_after")),
                    version,
                    collection.as_str()
                )
                .to_vec(),
                hex_of(p, "snapshot_mac")
            );
            let mut patch_input = hex_of(p, "snapshot_mac");
            let mutations = p["mutations"].as_array().expect("mutations");
            for m in mutations {
                check_mutation(&file, m, &ring);
                patch_input.extend_from_slice(&hex_of(m, "value_mac"));
            }
            patch_input.extend_from_slice(&version.to_be_bytes());
            patch_input.extend_from_slice(collection.as_str().as_bytes());
            assert_eq!(patch_input, hex_of(p, "patch_mac_input"));
            let value_macs: Vec<Vec<u8>> =
                mutations.iter().map(|m| hex_of(m, "value_mac")).collect();
            assert_eq!(
                crypto::patch_mac(
                    &patch_keys.patch_mac,
                    &hex_of(p, "snapshot_mac"),
                    value_macs.iter().map(Vec::as_slice),
                    version,
                    collection.as_str()
                )
                .to_vec(),
                hex_of(p, "patch_mac")
            );

            let patch =
                SyncdPatch::decode(hex_of(p, "patch_server").as_slice()).expect("patch_server");
            let applied = state
                .apply_patch(collection, &patch, None, &ring)
                .expect("patch applies");
            assert_eq!(state.version, version);
            assert_eq!(state.lthash.as_bytes().to_vec(), hex_of(p, "lthash_after"));
            assert_eq!(applied.len(), mutations.len());
            for (a, m) in applied.iter().zip(mutations) {
                assert_eq!(a.index, index_of(m));
                assert_eq!(a.operation, operation_of(m));
                assert_eq!(a.key_id, hex_of(m, "key_id"));
                assert_eq!(a.version, version);
            }
            states.push(state.clone());
        }

        // Final.
        let fin = &c["final"];
        assert_eq!(state.version, u64_of(fin, "version"));
        assert_eq!(state.lthash.as_bytes().to_vec(), hex_of(fin, "lthash"));
        let live: BTreeSet<Vec<u8>> = fin["live_index_macs_b64"]
            .as_array()
            .expect("live")
            .iter()
            .map(|s| {
                base64::engine::general_purpose::STANDARD
                    .decode(s.as_str().expect("b64"))
                    .expect("b64")
            })
            .collect();
        let ours: BTreeSet<Vec<u8>> = state.index_value_macs.keys().map(|k| k.to_vec()).collect();
        assert_eq!(ours, live);

        // Bad patches: rejected, state unchanged; the good patch still applies afterwards.
        let bads = c["bad_patches"].as_array().expect("bad_patches");
        assert!(!bads.is_empty());
        for bad in bads {
            let index = usize::try_from(u64_of(bad, "patch_index")).expect("index");
            let before = states[index].clone();
            let mut s = before.clone();
            let patch = SyncdPatch::decode(hex_of(bad, "patch_server").as_slice())
                .expect("bad patch decodes as protobuf");
            let err = s
                .apply_patch(collection, &patch, None, &ring)
                .expect_err("bad patch must be rejected");
            assert!(
                matches!(err, AppStateError::PatchMacMismatch { .. }),
                "{err}"
            );
            assert_eq!(s, before, "state unchanged after a rejected patch");
            let good = SyncdPatch::decode(hex_of(&patches[index], "patch_server").as_slice())
                .expect("good");
            s.apply_patch(collection, &good, None, &ring)
                .expect("good patch applies after the bad one");
            assert_eq!(s, states[index + 1]);
        }

        // More rejections, each leaving the state unchanged: tampered ciphertext (value MAC),
        // tampered snapshotMac (LTHash), a missing key (reported by id).
        let good_v7 =
            SyncdPatch::decode(hex_of(&patches[1], "patch_server").as_slice()).expect("v7");
        let before = states[1].clone();

        let mut p = good_v7.clone();
        let blob = p.mutations[0]
            .record
            .as_mut()
            .and_then(|r| r.value.as_mut())
            .and_then(|v| v.blob.as_mut())
            .expect("blob");
        blob[20] ^= 1;
        let mut s = before.clone();
        assert!(matches!(
            s.apply_patch(collection, &p, None, &ring),
            Err(AppStateError::ValueMacMismatch)
        ));
        assert_eq!(s, before);

        let mut p = good_v7.clone();
        if let Some(mac) = p.snapshot_mac.as_mut() {
            mac[0] ^= 1;
        }
        let mut s = before.clone();
        // The patch MAC covers the snapshot MAC, so this fails on the patch MAC first.
        assert!(matches!(
            s.apply_patch(collection, &p, None, &ring),
            Err(AppStateError::PatchMacMismatch { .. })
        ));
        assert_eq!(s, before);

        let key2 = hex_of(&patches[1], "key_id");
        let mut partial = KeyRing::new();
        for key in file["keys"].as_array().expect("keys") {
            if hex_of(key, "key_id") != key2 {
                partial.insert(hex_of(key, "key_id"), &hex_of(key, "key_data"));
            }
        }
        let mut s = before.clone();
        match s.apply_patch(collection, &good_v7, None, &partial) {
            Err(AppStateError::MissingKey { key_id }) => assert_eq!(key_id, key2),
            other => panic!("expected MissingKey, got {other:?}"),
        }
        assert_eq!(s, before);
        assert_eq!(
            appstate::missing_keys(appstate::patch_key_ids(&good_v7), &partial),
            vec![key2]
        );
    }
}

/// A patch whose state does not match ours (LTHash mismatch) is rejected: apply v7 to the
/// snapshot state directly, skipping v6.
#[test]
fn patch_on_the_wrong_base_is_rejected() {
    let file = vectors();
    let ring = key_ring(&file);
    let c = &file["collections"][0];
    let collection = collection_of(c);
    let snapshot = SyncdSnapshot::decode(hex_of(&c["snapshot"], "snapshot_proto").as_slice())
        .expect("snapshot");
    let mut state = CollectionState::new();
    state
        .apply_snapshot(collection, &snapshot, &ring)
        .expect("snapshot");
    let before = state.clone();
    let v7 = SyncdPatch::decode(hex_of(&c["patches"][1], "patch_server").as_slice()).expect("v7");
    assert!(matches!(
        state.apply_patch(collection, &v7, None, &ring),
        Err(AppStateError::LtHashMismatch { version: 7 })
    ));
    assert_eq!(state, before);
}

#[test]
fn collection_level_errors_are_reported() {
    use wa_engine::binary::Node;
    let node = Node::new("iq")
        .attr("type", "result")
        .attr("id", "1")
        .with_children([Node::new("sync").with_children([Node::new("collection")
            .attr("name", "regular_high")
            .attr("type", "error")
            .with_children([Node::new("error")
                .attr("code", "409")
                .attr("text", "conflict")])])]);
    let parsed = appstate::iq::parse_response(&node).expect("parses");
    let error = parsed[0].error.as_ref().expect("error");
    assert!(error.is_conflict());
    assert!(!error.is_fatal());

    let notification = Node::new("notification")
        .attr("type", "server_sync")
        .with_children([
            Node::new("collection")
                .attr("name", "regular_high")
                .attr("version", "15"),
            Node::new("collection").attr("name", "critical_block"),
            Node::new("collection")
                .attr("name", "bogus")
                .attr("version", "1"),
        ]);
    assert_eq!(
        appstate::iq::parse_server_sync(&notification),
        vec![
            (Collection::RegularHigh, Some(15)),
            (Collection::CriticalBlock, None)
        ]
    );

    let unknown = Node::new("iq").attr("type", "result").with_children([
        Node::new("sync").with_children([Node::new("collection").attr("name", "nope")])
    ]);
    assert!(matches!(
        appstate::iq::parse_response(&unknown),
        Err(AppStateError::UnknownCollection(_))
    ));
}

/// The typed view of each vector mutation.
#[test]
fn mutations_have_the_expected_typed_view() {
    use wa_engine::appstate::SyncAction;
    let file = vectors();
    let ring = key_ring(&file);
    let pn = |u: &str| Jid::pn(u);
    let expected = |label: &str| -> SyncAction {
        match label {
            "mute_until" => SyncAction::Mute {
                chat: pn("15551234567"),
                muted: true,
                until_ms: Some(1_700_086_400_000),
            },
            "unmute" => SyncAction::Mute {
                chat: pn("15551234567"),
                muted: false,
                until_ms: None,
            },
            "archive" => SyncAction::Archive {
                chat: pn("15557654321"),
                archived: true,
            },
            "pin" => SyncAction::Pin {
                chat: pn("15559876543"),
                pinned: true,
            },
            "contact" => SyncAction::Contact {
                jid: pn("15551234567"),
                full_name: Some("Alice Example".into()),
                first_name: Some("Alice".into()),
                lid: Some(Jid::lid("123456789012345")),
                pn: None,
            },
            "push_name" => SyncAction::PushName("Lab Bot".into()),
            "mark_chat_as_read" => SyncAction::MarkChatAsRead {
                chat: Jid::group("120363012345678901"),
                read: true,
            },
            "mark_chat_as_unread" => SyncAction::MarkChatAsRead {
                chat: pn("15551234567"),
                read: false,
            },
            "star" => SyncAction::Star {
                chat: pn("15551234567"),
                message_id: "3EB0ABCDEF0123456789AB".into(),
                from_me: true,
                starred: true,
            },
            "delete_chat" => SyncAction::DeleteChat {
                chat: pn("15550002222"),
            },
            "label_edit" => SyncAction::LabelEdit {
                label_id: "5".into(),
                name: Some("Customers".into()),
                color: Some(3),
                deleted: false,
            },
            "label_chat" => SyncAction::LabelChat {
                label_id: "5".into(),
                chat: pn("15551234567"),
                labeled: true,
            },
            "contact_remove" => SyncAction::Contact {
                jid: pn("15551234567"),
                full_name: None,
                first_name: None,
                lid: None,
                pn: None,
            },
            other => panic!("no expectation for {other}"),
        }
    };
    let mut seen = 0;
    for m in file["mutations"].as_array().expect("mutations") {
        let label = str_of(m, "label");
        let record = SyncdRecord::decode(hex_of(m, "record").as_slice()).expect("record");
        let decoded = appstate::decode_record(collection_of(m), operation_of(m), &record, 1, &ring)
            .expect("decodes");
        assert_eq!(decoded.sync_action(), expected(label), "{label}");
        seen += 1;
    }
    assert_eq!(seen, 13);

    // The NCT salt action (not in Baileys' proto, so not in the vectors): our own encoding
    // round-trips, SET and REMOVE.
    let key_id = hex_of(&file["keys"][0], "key_id");
    let salt = vec![0x35; 32];
    for operation in [Operation::Set, Operation::Remove] {
        let new = NewMutation {
            collection: Collection::RegularHigh,
            operation,
            index: vec!["nct_salt_sync".into()],
            value: SyncActionValue {
                timestamp: Some(1),
                nct_salt_sync_action: Some(wa_proto::wa::NctSaltSyncAction {
                    salt: Some(salt.clone()),
                }),
                ..Default::default()
            },
            action_version: 1,
        };
        let out = CollectionState::new()
            .encode_patch(Collection::RegularHigh, &key_id, &ring, &[new], &mut || {
                [1; 16]
            })
            .expect("encodes");
        let mut patch = out.patch.clone();
        patch.version = Some(wa_proto::wa::SyncdVersion { version: Some(1) });
        let applied = CollectionState::new()
            .apply_patch(Collection::RegularHigh, &patch, None, &ring)
            .expect("applies");
        assert_eq!(applied[0].sync_action(), SyncAction::NctSalt(salt.clone()));
        assert_eq!(applied[0].operation, operation);
    }
    // Unknown or malformed indexes are `Other`.
    let mut m = appstate::decode_record(
        Collection::RegularHigh,
        Operation::Set,
        &SyncdRecord::decode(hex_of(&file["mutations"][0], "record").as_slice()).expect("record"),
        1,
        &ring,
    )
    .expect("decodes");
    m.index = vec!["quick_reply".into(), "x".into()];
    assert_eq!(m.sync_action(), SyncAction::Other("quick_reply".into()));
    m.index = vec!["mute".into()];
    assert_eq!(m.sync_action(), SyncAction::Other("mute".into()));
}
