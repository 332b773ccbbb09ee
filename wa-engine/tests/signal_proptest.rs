//! Property tests: any delivery order within the skip limit decrypts every message
//! exactly once, and replays are duplicates (pairwise sessions and sender keys).

mod signal_support;

use proptest::prelude::*;
use signal_support::*;
use wa_engine::signal::{
    self, EncType, SenderKeyMessage, SenderKeyRecord, SignalError, TrustPolicy,
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
}
