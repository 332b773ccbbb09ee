//! Fuzz target: the app-state decoder (`appstate::CollectionState::apply_patch` /
//! `apply_snapshot`, `appstate::iq::parse_response`).
//!
//! Input: `mode (1) || rest`:
//!
//! | mode | layout after the mode byte | what runs |
//! | --- | --- | --- |
//! | 0 | `SyncdPatch` bytes | decode, apply to a state holding one real record |
//! | 1 | `n (1) || n × (action (1), jid byte (1)) || edits` | a real patch of `n` mutations (fixed key), edited (see `common::mutate`), then applied |
//! | 2 | `SyncdSnapshot` bytes | decode, apply to a fresh state |
//! | 3 | a bare binary node | `iq::parse_response` |
//!
//! Invariants:
//! - no panic;
//! - a rejected patch or snapshot leaves the state exactly as it was;
//! - after any success the LTHash equals the sum of the live value MACs, and the version is
//!   the patch's;
//! - a real patch applies; an edited one either fails or yields exactly the real patch's
//!   mutations and state (every byte that matters is under a MAC).
//!
//! Run: see fuzz/README.md.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use common::{Input, mutate};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use wa_engine::Jid;
use wa_engine::appstate::{
    Collection, CollectionState, KeyRing, LtHash, NewMutation, actions, iq,
};
use wa_engine::binary;
use wa_proto::wa::{MessageKey, SyncdPatch, SyncdSnapshot, SyncdVersion};

const KEY_ID: &[u8] = &[0, 0, 0, 0, 0x1c, 0x3c];

fn ring() -> KeyRing {
    let mut ring = KeyRing::new();
    ring.insert(KEY_ID.to_vec(), &[0x99; 32]);
    ring.insert(vec![1], &[0x42; 32]);
    ring
}

/// The LTHash of the live value MACs, from scratch.
fn recomputed(state: &CollectionState) -> LtHash {
    let mut h = LtHash::default();
    for value_mac in state.index_value_macs.values() {
        h.add(value_mac);
    }
    h
}

fn check_consistent(state: &CollectionState) {
    assert_eq!(state.lthash, recomputed(state), "LTHash drifted from the live MACs");
}

fn mutation(action: u8, jid_byte: u8) -> NewMutation {
    let chat = Jid::pn(format!("1555000{jid_byte:04}"));
    let range = || {
        actions::message_range(
            1_700_000_000,
            [MessageKey {
                remote_jid: Some(chat.to_string()),
                from_me: Some(false),
                id: Some("3EB0".into()),
                participant: None,
            }],
        )
    };
    match action % 5 {
        0 => actions::mute(&chat, Some(1_700_086_400_000), 1_700_000_000_000),
        1 => actions::mute(&chat, None, 1_700_000_000_000),
        2 => actions::pin(&chat, action & 0x80 != 0, 1_700_000_000_000),
        3 => actions::archive(&chat, true, range(), 1_700_000_000_000),
        _ => {
            let mut m = actions::mark_chat_read(&chat, true, range(), 1_700_000_000_000);
            if action & 0x40 != 0 {
                m.operation = wa_engine::appstate::Operation::Remove;
            }
            m
        }
    }
}

/// A state at version 1 with one mute record.
fn base(ring: &KeyRing) -> CollectionState {
    let state = CollectionState::new();
    let out = state
        .encode_patch(Collection::RegularLow, KEY_ID, ring, &[mutation(0, 1)], &mut || [7; 16])
        .expect("key known");
    out.state_after
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let ring = ring();
    match input.byte() % 4 {
        0 => {
            let Ok(patch) = SyncdPatch::decode(input.rest()) else {
                return;
            };
            let mut state = base(&ring);
            let before = state.clone();
            match state.apply_patch(Collection::RegularLow, &patch, None, &ring) {
                Ok(_) => {
                    assert_eq!(Some(state.version), patch.version.and_then(|v| v.version));
                    check_consistent(&state);
                }
                Err(_) => assert_eq!(state, before, "rejected patch changed the state"),
            }
        }
        1 => {
            let n = usize::from(input.byte() % 6);
            let mutations: Vec<NewMutation> =
                (0..n).map(|_| mutation(input.byte(), input.byte())).collect();
            let state = base(&ring);
            let out = state
                .encode_patch(Collection::RegularLow, KEY_ID, &ring, &mutations, &mut || [9; 16])
                .expect("key known");
            let mut patch = out.patch.clone();
            patch.version = Some(SyncdVersion { version: Some(state.version + 1) });
            let real = patch.encode_to_vec();
            let edited = mutate(&real, &mut input);
            let Ok(decoded) = SyncdPatch::decode(edited.as_slice()) else {
                assert_ne!(edited, real, "the real patch must decode");
                return;
            };
            let mut s = state.clone();
            let result = s.apply_patch(Collection::RegularLow, &decoded, None, &ring);
            match result {
                Ok(applied) => {
                    assert_eq!(s, out.state_after, "a verified patch gave another state");
                    assert_eq!(applied.len(), mutations.len());
                    for (a, m) in applied.iter().zip(&mutations) {
                        assert_eq!(a.index, m.index);
                        assert_eq!(a.operation, m.operation);
                        assert_eq!(a.action, m.value);
                    }
                    check_consistent(&s);
                }
                Err(e) => {
                    assert_ne!(edited, real, "the real patch failed: {e}");
                    assert_eq!(s, state, "rejected patch changed the state");
                }
            }
        }
        2 => {
            let Ok(snapshot) = SyncdSnapshot::decode(input.rest()) else {
                return;
            };
            let mut state = CollectionState::new();
            match state.apply_snapshot(Collection::Regular, &snapshot, &ring) {
                Ok(records) => {
                    assert_eq!(records.len(), snapshot.records.len());
                    assert_eq!(Some(state.version), snapshot.version.and_then(|v| v.version));
                    // Duplicate index MACs in a snapshot add both values (whatsmeow), so
                    // the LTHash only matches the live map when indexes are distinct.
                    if state.index_value_macs.len() == records.len() {
                        check_consistent(&state);
                    }
                }
                Err(_) => assert_eq!(state, CollectionState::new()),
            }
        }
        _ => {
            if let Ok(node) = binary::decode_node(input.rest()) {
                let _ = iq::parse_response(&node);
            }
        }
    }
});
