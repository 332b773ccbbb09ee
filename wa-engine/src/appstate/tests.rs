//! Property tests: our own patches always apply; any single-byte edit of one either fails
//! without touching the state or yields exactly the same mutations and state (every byte
//! that matters is under a MAC).

use proptest::prelude::*;
use prost::Message as _;
use wa_proto::wa::{SyncdPatch, SyncdVersion};

use super::{Collection, CollectionState, KeyRing, LtHash, NewMutation, Operation, actions};
use crate::Jid;

const KEY_ID: &[u8] = b"\x00\x00\x00\x00\x1c\x3c";

fn ring() -> KeyRing {
    let mut ring = KeyRing::new();
    ring.insert(KEY_ID.to_vec(), &[0x99; 32]);
    ring.insert(b"other".to_vec(), &[0x42; 32]);
    ring
}

fn mutation(kind: u8, chat: u8) -> NewMutation {
    let jid = Jid::pn(format!("1555000{chat:04}"));
    match kind % 4 {
        0 => actions::mute(&jid, Some(1_700_086_400_000), 1_700_000_000_000),
        1 => actions::pin(&jid, true, 1_700_000_000_000),
        2 => actions::archive(&jid, true, actions::message_range(1_700_000_000, []), 1),
        _ => NewMutation {
            operation: Operation::Remove,
            ..actions::pin(&jid, false, 2)
        },
    }
}

fn live_lthash(state: &CollectionState) -> LtHash {
    let mut h = LtHash::default();
    for v in state.index_value_macs.values() {
        h.add(v);
    }
    h
}

proptest! {
    #[test]
    fn edited_patches_never_apply_differently(
        muts in proptest::collection::vec((any::<u8>(), 0_u8..4), 0..5),
        pos in any::<usize>(),
        flip in 1_u8..=255,
    ) {
        let ring = ring();
        let base = CollectionState::new()
            .encode_patch(Collection::RegularLow, KEY_ID, &ring, &[mutation(1, 0)], &mut || [3; 16])
            .expect("key")
            .state_after;
        let mutations: Vec<NewMutation> = muts.iter().map(|(k, c)| mutation(*k, *c)).collect();
        let out = base
            .encode_patch(Collection::RegularLow, KEY_ID, &ring, &mutations, &mut || [5; 16])
            .expect("key");
        let mut patch = out.patch.clone();
        patch.version = Some(SyncdVersion { version: Some(base.version + 1) });

        let mut s = base.clone();
        let applied = s.apply_patch(Collection::RegularLow, &patch, None, &ring).expect("own patch applies");
        prop_assert_eq!(&s, &out.state_after);
        prop_assert_eq!(applied.len(), mutations.len());
        prop_assert_eq!(s.lthash.clone(), live_lthash(&s));

        let mut bytes = patch.encode_to_vec();
        let at = pos % bytes.len();
        bytes[at] ^= flip;
        if let Ok(edited) = SyncdPatch::decode(bytes.as_slice()) {
            let mut s = base.clone();
            match s.apply_patch(Collection::RegularLow, &edited, None, &ring) {
                Ok(applied) => {
                    prop_assert_eq!(&s, &out.state_after);
                    for (a, m) in applied.iter().zip(&mutations) {
                        prop_assert_eq!(&a.index, &m.index);
                        prop_assert_eq!(&a.action, &m.value);
                    }
                }
                Err(_) => prop_assert_eq!(&s, &base),
            }
        }
    }
}
