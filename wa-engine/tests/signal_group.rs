//! Sender keys through stores: distribution, encryption, late joiners, rotation, limits
//! and typed errors (shared/protocol/04-signal.md §9).

mod signal_support;

use signal_support::*;
use wa_engine::signal::{
    self, MAX_FORWARD_JUMPS, MAX_SENDER_KEY_STATES, SenderKeyDistributionMessage, SenderKeyMessage,
    SenderKeyRecord, SignalError,
};
use wa_engine::store::{MemoryStore, ProtocolAddress, SenderKeyName, Store, StoreBatch};

const GROUP: &str = "120363012345678901@g.us";

fn name() -> SenderKeyName {
    SenderKeyName::new(GROUP, ProtocolAddress::new("15550001111", 2))
}

#[test]
fn members_decrypt_group_messages_including_a_late_joiner() {
    let mut rng = SeededRng::new("group");
    let sender = MemoryStore::new();
    let (bob, carol) = (MemoryStore::new(), MemoryStore::new());

    let skdm = signal::sender_key_distribution(&sender, &name(), &mut rng).expect("create");
    assert_eq!(skdm.iteration, 0);
    let again = signal::sender_key_distribution(&sender, &name(), &mut rng).expect("existing");
    assert_eq!(
        (again.key_id, again.chain_key),
        (skdm.key_id, skdm.chain_key),
        "created once"
    );
    signal::process_sender_key_distribution(&bob, &name(), skdm.serialized()).expect("bob");

    let cts: Vec<Vec<u8>> = (0..6)
        .map(|i| {
            signal::encrypt_group(&sender, &name(), format!("m{i}").as_bytes(), &mut rng)
                .expect("enc")
        })
        .collect();
    let late = signal::sender_key_distribution(&sender, &name(), &mut rng).expect("skdm");
    assert_eq!(late.iteration, 6);
    signal::process_sender_key_distribution(&carol, &name(), late.serialized()).expect("carol");
    let more = signal::encrypt_group(&sender, &name(), b"m6", &mut rng).expect("enc");

    for i in [0, 1, 4, 2, 5, 3] {
        assert_eq!(
            signal::decrypt_group(&bob, &name(), &cts[i]).expect("bob"),
            format!("m{i}").as_bytes()
        );
    }
    assert_eq!(
        signal::decrypt_group(&bob, &name(), &more).expect("bob"),
        b"m6"
    );
    assert_eq!(
        signal::decrypt_group(&carol, &name(), &more).expect("carol"),
        b"m6"
    );
    // Carol joined after message 5: earlier iterations are too old for her.
    assert!(matches!(
        signal::decrypt_group(&carol, &name(), &cts[5]),
        Err(SignalError::DuplicateMessage { counter: 5 })
    ));
    assert!(matches!(
        signal::decrypt_group(&bob, &name(), &cts[2]),
        Err(SignalError::DuplicateMessage { counter: 2 })
    ));
}

#[test]
fn encrypting_without_own_key_and_decrypting_unknown_keys_are_typed_errors() {
    let mut rng = SeededRng::new("no key");
    let store = MemoryStore::new();
    assert!(matches!(
        signal::encrypt_group(&store, &name(), b"x", &mut rng),
        Err(SignalError::NoSenderKey { key_id: 0 })
    ));
    let sender = MemoryStore::new();
    let skdm = signal::sender_key_distribution(&sender, &name(), &mut rng).expect("create");
    let ct = signal::encrypt_group(&sender, &name(), b"x", &mut rng).expect("enc");
    assert!(matches!(
        signal::decrypt_group(&store, &name(), &ct),
        Err(SignalError::NoSenderKey { key_id }) if key_id == skdm.key_id
    ));
    // A receiver's record (no signing private key) cannot encrypt.
    signal::process_sender_key_distribution(&store, &name(), skdm.serialized()).expect("skdm");
    assert!(matches!(
        signal::encrypt_group(&store, &name(), b"x", &mut rng),
        Err(SignalError::NoSenderKey { .. })
    ));
}

#[test]
fn forged_or_tampered_group_messages_fail_signature_and_store_nothing() {
    let mut rng = SeededRng::new("forged");
    let sender = MemoryStore::new();
    let bob = MemoryStore::new();
    let skdm = signal::sender_key_distribution(&sender, &name(), &mut rng).expect("create");
    signal::process_sender_key_distribution(&bob, &name(), skdm.serialized()).expect("skdm");
    let ct = signal::encrypt_group(&sender, &name(), b"genuine", &mut rng).expect("enc");
    let before = bob.sender_key(&name()).expect("read").map(|b| b.to_vec());
    for position in [ct.len() - 70, ct.len() - 40, ct.len() - 1] {
        let mut bad = ct.clone();
        bad[position] ^= 0x02;
        assert!(
            matches!(
                signal::decrypt_group(&bob, &name(), &bad),
                Err(SignalError::BadSignature)
            ),
            "flip at {position}"
        );
    }
    // Someone who knows the chain key but not the signing key cannot forge.
    let mut forger = SenderKeyRecord::new();
    let mut forged_skdm_holder = SenderKeyRecord::new();
    forged_skdm_holder.process_distribution(&skdm);
    forger.add_own_state(
        skdm.key_id,
        skdm.iteration,
        skdm.chain_key,
        wa_engine::signal::KeyPair::generate(&mut rng),
    );
    let forged = forger.encrypt(b"forged", &mut rng).expect("enc");
    assert!(matches!(
        signal::decrypt_group(&bob, &name(), forged.serialized()),
        Err(SignalError::BadSignature)
    ));
    assert_eq!(
        bob.sender_key(&name()).expect("read").map(|b| b.to_vec()),
        before
    );
    assert_eq!(
        signal::decrypt_group(&bob, &name(), &ct).expect("genuine"),
        b"genuine"
    );
    assert!(matches!(
        signal::decrypt_group(&bob, &name(), &ct[..40]),
        Err(SignalError::InvalidMessage { .. })
    ));
}

#[test]
fn group_forward_jump_limit_is_enforced() {
    let mut rng = SeededRng::new("jump");
    let mut sender = SenderKeyRecord::new();
    sender.create_own_state(&mut rng);
    let mut receiver = SenderKeyRecord::new();
    receiver.process_distribution(&sender.distribution_message().expect("skdm"));
    let msgs: Vec<SenderKeyMessage> = (0..=MAX_FORWARD_JUMPS + 1)
        .map(|i| sender.encrypt(&i.to_be_bytes(), &mut rng).expect("enc"))
        .collect();
    let last = msgs.last().expect("messages");
    assert!(matches!(
        receiver.decrypt(last),
        Err(SignalError::TooManySkipped { jump, .. }) if jump == MAX_FORWARD_JUMPS + 1
    ));
    let at_limit = &msgs[MAX_FORWARD_JUMPS as usize];
    assert_eq!(
        receiver.decrypt(at_limit).expect("at limit"),
        MAX_FORWARD_JUMPS.to_be_bytes()
    );
    assert_eq!(
        receiver.decrypt(&msgs[0]).expect("skipped key kept"),
        0_u32.to_be_bytes()
    );
    assert_eq!(
        receiver.decrypt(last).expect("next"),
        (MAX_FORWARD_JUMPS + 1).to_be_bytes()
    );
}

#[test]
fn rotation_keeps_at_most_five_states_and_old_keys_keep_working() {
    let mut rng = SeededRng::new("rotation");
    let sender = MemoryStore::new();
    let bob = MemoryStore::new();
    let mut per_key = Vec::new();
    for round in 0..=MAX_SENDER_KEY_STATES {
        if round > 0 {
            // The sender rotates by deleting its key (04 §9.6); the next SKDM is new.
            let mut batch = StoreBatch::new();
            batch.delete_sender_key(&name());
            sender.apply(batch).expect("rotate");
        }
        let skdm = signal::sender_key_distribution(&sender, &name(), &mut rng).expect("skdm");
        signal::process_sender_key_distribution(&bob, &name(), skdm.serialized()).expect("process");
        let ct = signal::encrypt_group(
            &sender,
            &name(),
            format!("key {round}").as_bytes(),
            &mut rng,
        )
        .expect("enc");
        per_key.push((skdm.key_id, ct));
    }
    let record =
        SenderKeyRecord::from_bytes(&bob.sender_key(&name()).expect("read").expect("record"))
            .expect("decode");
    assert_eq!(record.key_ids().len(), MAX_SENDER_KEY_STATES);
    assert_eq!(
        record.key_ids()[0],
        per_key.last().expect("keys").0,
        "newest first"
    );
    // The oldest key was dropped; the others still decrypt.
    let (oldest_id, oldest_ct) = &per_key[0];
    assert!(matches!(
        signal::decrypt_group(&bob, &name(), oldest_ct),
        Err(SignalError::NoSenderKey { key_id }) if key_id == *oldest_id
    ));
    for (round, (_, ct)) in per_key.iter().enumerate().skip(1) {
        assert_eq!(
            signal::decrypt_group(&bob, &name(), ct).expect("dec"),
            format!("key {round}").as_bytes()
        );
    }
}

#[test]
fn repeated_skdm_keeps_position_and_a_new_signing_key_replaces_the_state() {
    let mut rng = SeededRng::new("repeat");
    let mut sender = SenderKeyRecord::new();
    sender.create_own_state(&mut rng);
    let skdm0 = sender.distribution_message().expect("skdm");
    let m0 = sender.encrypt(b"0", &mut rng).expect("enc");
    let m1 = sender.encrypt(b"1", &mut rng).expect("enc");
    let m2 = sender.encrypt(b"2", &mut rng).expect("enc");
    let mut receiver = SenderKeyRecord::new();
    receiver.process_distribution(&skdm0);
    assert_eq!(receiver.decrypt(&m2).expect("m2"), b"2");
    // whatsmeow resends the SKDM with every message: the skipped keys survive it.
    let skdm3 = sender.distribution_message().expect("skdm");
    receiver.process_distribution(&skdm3);
    receiver.process_distribution(&skdm0);
    assert_eq!(receiver.decrypt(&m0).expect("m0"), b"0");
    assert_eq!(receiver.decrypt(&m1).expect("m1"), b"1");
    assert_eq!(receiver.key_ids().len(), 1);

    // Same key id, other signing key: the state is replaced.
    let mut impostor = SenderKeyRecord::new();
    impostor.add_own_state(
        skdm0.key_id,
        0,
        [9; 32],
        wa_engine::signal::KeyPair::generate(&mut rng),
    );
    receiver.process_distribution(&impostor.distribution_message().expect("skdm"));
    assert_eq!(receiver.key_ids(), vec![skdm0.key_id]);
    let m3 = sender.encrypt(b"3", &mut rng).expect("enc");
    assert!(matches!(
        receiver.decrypt(&m3),
        Err(SignalError::BadSignature)
    ));
}

#[test]
fn skdm_round_trips_and_hides_the_chain_key_in_debug() {
    let mut rng = SeededRng::new("skdm");
    let mut sender = SenderKeyRecord::new();
    sender.create_own_state(&mut rng);
    let skdm = sender.distribution_message().expect("skdm");
    let parsed = SenderKeyDistributionMessage::decode(skdm.serialized()).expect("decode");
    assert_eq!(parsed, skdm);
    assert!(!format!("{skdm:?}").contains(&hex::encode(skdm.chain_key)));
    assert!(!format!("{sender:?}").contains(&hex::encode(skdm.chain_key)));
    let record = SenderKeyRecord::from_bytes(&sender.to_bytes()).expect("record round trip");
    assert_eq!(record.key_ids(), sender.key_ids());
    assert!(
        skdm.key_id < 1 << 31,
        "key ids are 31-bit (Baileys randomInt(2^31-1))"
    );
    assert!(matches!(
        SenderKeyDistributionMessage::decode(&skdm.serialized()[..10]),
        Err(SignalError::InvalidMessage { .. })
    ));
}

#[test]
fn exhausted_chain_refuses_to_encrypt_instead_of_reusing_a_key() {
    let mut rng = SeededRng::new("exhausted");
    let mut sender = SenderKeyRecord::new();
    sender.add_own_state(
        1,
        u32::MAX,
        [1; 32],
        wa_engine::signal::KeyPair::generate(&mut rng),
    );
    assert!(matches!(
        sender.encrypt(b"x", &mut rng),
        Err(SignalError::CounterExhausted)
    ));
}
