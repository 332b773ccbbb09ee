//! Property tests: any delivery order within the skip limit decrypts every message
//! exactly once, replays are duplicates, jumps beyond the limit are refused (pairwise
//! sessions and sender keys), and no input makes a decoder panic.

mod signal_support;

use proptest::prelude::*;
use signal_support::*;
use wa_engine::signal::{
    self, EncType, KeyPair, MAX_FORWARD_JUMPS, PreKeySignalMessage, SenderKeyDistributionMessage,
    SenderKeyMessage, SenderKeyRecord, SignalError, SignalMessage, TrustPolicy, kdf,
};
use wa_engine::store::ProtocolAddress;

fn alice_addr() -> ProtocolAddress {
    ProtocolAddress::new("alice", 1)
}

fn bob_addr() -> ProtocolAddress {
    ProtocolAddress::new("bob", 1)
}

/// `(first, second, order)`: sizes of Alice's two chains and a delivery order of the
/// remaining messages (index 0 of the first chain is delivered up front so that Bob can
/// answer and Alice can turn the ratchet).
fn two_chain_orders() -> impl Strategy<Value = (usize, usize, Vec<usize>)> {
    (1usize..16, 0usize..16).prop_flat_map(|(first, second)| {
        let rest: Vec<usize> = (1..first + second).collect();
        (Just(first), Just(second), Just(rest).prop_shuffle())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn pairwise_any_order_decrypts_each_message_once(
        (first, second, order) in two_chain_orders(),
        seed in any::<u64>(),
        replays in proptest::collection::vec(any::<prop::sample::Index>(), 1..4),
    ) {
        let mut rng = SeededRng::new(&format!("pairwise {seed}"));
        let alice = Party::generate(&mut rng, 1, 1);
        let bob = Party::generate(&mut rng, 2, 1);
        signal::process_prekey_bundle(&alice.store, &bob_addr(), &bob.bundle(Some(0)), TrustPolicy::AutoTrust, &mut rng)
            .expect("bundle");
        let (ty, hello) = signal::encrypt(&alice.store, &bob_addr(), b"hello").expect("encrypt");
        prop_assert_eq!(ty, EncType::PkMsg);
        signal::decrypt_pkmsg(&bob.store, &alice_addr(), &hello, TrustPolicy::AutoTrust, &mut rng).expect("pkmsg");
        let (_, hi) = signal::encrypt(&bob.store, &alice_addr(), b"hi").expect("encrypt");
        signal::decrypt_msg(&alice.store, &bob_addr(), &hi, &mut rng).expect("hi");

        let text = |i: usize| format!("message {i}").into_bytes();
        let mut cts: Vec<Vec<u8>> = (0..first)
            .map(|i| signal::encrypt(&alice.store, &bob_addr(), &text(i)).expect("encrypt").1)
            .collect();
        // Bob gets message 0, answers; Alice turns the ratchet and sends the second chain.
        prop_assert_eq!(signal::decrypt_msg(&bob.store, &alice_addr(), &cts[0], &mut rng).expect("m0"), text(0));
        let (_, reply) = signal::encrypt(&bob.store, &alice_addr(), b"reply").expect("encrypt");
        signal::decrypt_msg(&alice.store, &bob_addr(), &reply, &mut rng).expect("reply");
        cts.extend((first..first + second)
            .map(|i| signal::encrypt(&alice.store, &bob_addr(), &text(i)).expect("encrypt").1));

        for &i in &order {
            let pt = signal::decrypt_msg(&bob.store, &alice_addr(), &cts[i], &mut rng);
            prop_assert_eq!(pt.ok(), Some(text(i)), "message {} in order {:?}", i, order);
        }
        for r in replays {
            let i = r.index(cts.len());
            let result = signal::decrypt_msg(&bob.store, &alice_addr(), &cts[i], &mut rng);
            prop_assert!(matches!(result, Err(SignalError::DuplicateMessage { .. })), "replay of {}: {:?}", i, result);
        }
    }

    #[test]
    fn sender_key_any_order_decrypts_each_message_once(
        order in Just((0..40usize).collect::<Vec<_>>()).prop_shuffle(),
        count in 1usize..40,
        seed in any::<u64>(),
    ) {
        let mut rng = SeededRng::new(&format!("group {seed}"));
        let mut sender = SenderKeyRecord::new();
        sender.create_own_state(&mut rng);
        let mut receiver = SenderKeyRecord::new();
        receiver.process_distribution(&sender.distribution_message().expect("skdm"));
        let text = |i: usize| format!("group message {i}").into_bytes();
        let msgs: Vec<SenderKeyMessage> = (0..count)
            .map(|i| sender.encrypt(&text(i), &mut rng).expect("encrypt"))
            .collect();
        for &i in order.iter().filter(|&&i| i < count) {
            let decoded = SenderKeyMessage::decode(msgs[i].serialized()).expect("decode");
            prop_assert_eq!(receiver.decrypt(&decoded).ok(), Some(text(i)));
        }
        for m in &msgs {
            let replay = receiver.decrypt(m);
            prop_assert!(matches!(replay, Err(SignalError::DuplicateMessage { .. })), "replay: {:?}", replay);
        }
    }

    #[test]
    fn sender_key_jump_beyond_the_limit_is_too_many_skipped(jump in 0u32..4000, seed in any::<u64>()) {
        let mut rng = SeededRng::new(&format!("jump {seed}"));
        let signing = KeyPair::generate(&mut rng);
        let chain_key = [7_u8; 32];
        let mut receiver = SenderKeyRecord::new();
        let mut at_zero = SenderKeyRecord::new();
        at_zero.add_own_state(1, 0, chain_key, signing.clone());
        receiver.process_distribution(&at_zero.distribution_message().expect("skdm"));
        // The sender `jump` iterations ahead (chain key advanced by HMAC).
        let mut ahead_key = chain_key;
        for _ in 0..jump {
            ahead_key = *kdf::next_chain_key(&ahead_key);
        }
        let mut sender = SenderKeyRecord::new();
        sender.add_own_state(1, jump, ahead_key, signing);
        let message = sender.encrypt(b"ahead", &mut rng).expect("encrypt");
        let result = receiver.decrypt(&message);
        if jump > MAX_FORWARD_JUMPS {
            prop_assert!(matches!(result, Err(SignalError::TooManySkipped { jump: j, .. }) if j == jump), "{:?}", result);
        } else {
            prop_assert_eq!(result.ok(), Some(b"ahead".to_vec()));
        }
    }

    #[test]
    fn decoders_and_decrypt_never_panic_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut bytes = vec![0x33];
        bytes.extend_from_slice(&body);
        for input in [&body[..], &bytes[..]] {
            let _ = SignalMessage::decode(input);
            let _ = PreKeySignalMessage::decode(input);
            let _ = SenderKeyMessage::decode(input);
            let _ = SenderKeyDistributionMessage::decode(input);
        }
        let mut rng = SeededRng::new("fuzz");
        let store = wa_engine::MemoryStore::new();
        let _ = signal::decrypt_msg(&store, &alice_addr(), &bytes, &mut rng);
        let _ = signal::decrypt_pkmsg(&store, &alice_addr(), &bytes, TrustPolicy::AutoTrust, &mut rng);
        let name = wa_engine::store::SenderKeyName::new("g", alice_addr());
        let _ = signal::decrypt_group(&store, &name, &bytes);
        let _ = signal::process_sender_key_distribution(&store, &name, &bytes);
    }
}
