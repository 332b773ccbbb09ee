//! App-state sync ("syncd"), sans-IO: the account's settings, contacts and chat flags as five
//! encrypted, MAC-chained collections (shared/protocol/08-app-state-history-sync.md §1–§8).
//!
//! No I/O, no clock, no randomness of its own: keys, downloaded blobs, IVs and nodes come in;
//! verified mutations, nodes and new states go out. Pieces:
//! - [`MutationKeys`] / [`KeyRing`] / [`KeySource`]: app-state sync keys by id, expanded with
//!   HKDF "WhatsApp Mutation Keys" (§6.1);
//! - [`crypto`]: value cipher, value MAC, index MAC, snapshot MAC, patch MAC (§6.2, §6.4);
//! - [`LtHash`]: the "WhatsApp Patch Integrity" summary (§6.3);
//! - [`CollectionState`]: version + LTHash + live MACs, with [`CollectionState::apply_snapshot`]
//!   and [`CollectionState::apply_patch`], which verify everything and leave the state
//!   untouched on any failure, and [`CollectionState::encode_patch`] for our own patches;
//! - [`Mutation`]: a decoded record (index JSON, [`SyncActionValue`](wa_proto::wa::SyncActionValue)),
//!   with a typed view [`Mutation::sync_action`] ([`SyncAction`]: mute, pin, contact, push name,
//!   NCT salt, …);
//! - [`iq`]: the `w:sync:app:state` requests and response parser (§3);
//! - [`decode_snapshot_blob`] / [`decode_external_mutations`]: `md-app-state` blobs (§4);
//! - [`actions`]: builders of the mutations we send (mute, pin, archive, mark read).
//!
//! ```
//! use wa_engine::Jid;
//! use wa_engine::appstate::{Collection, CollectionState, KeyRing, SyncAction, actions};
//!
//! // Both companions hold the key the phone shared.
//! let mut keys = KeyRing::new();
//! keys.insert(b"key-1".to_vec(), &[0x11; 32]);
//!
//! // Companion A mutes a chat: encode a patch on top of its state (IVs from a CSPRNG).
//! let a = CollectionState::new();
//! let chat = Jid::pn("15551234567");
//! let mute = actions::mute(&chat, Some(1_700_086_400_000), 1_700_000_000_000);
//! let out = a.encode_patch(Collection::RegularHigh, b"key-1", &keys, &[mute], &mut || [7; 16])?;
//!
//! // The server stores it as version 1 and companion B applies it, verifying every MAC.
//! let mut patch = out.patch.clone();
//! patch.version = Some(wa_proto::wa::SyncdVersion { version: Some(out.base_version + 1) });
//! let mut b = CollectionState::new();
//! let mutations = b.apply_patch(Collection::RegularHigh, &patch, None, &keys)?;
//! assert_eq!(b, out.state_after);
//! assert!(matches!(mutations[0].sync_action(), SyncAction::Mute { muted: true, .. }));
//! # Ok::<(), wa_engine::appstate::AppStateError>(())
//! ```
//!
//! Strictness follows whatsmeow, not Baileys 7 (§13.1): a snapshot or patch whose MAC or
//! LTHash does not verify is rejected, and the version does not advance.
//!
//! Sources: whatsmeow `appstate/*.go`, `appstate.go`; Baileys 7.0.0-rc14 `Utils/chat-utils.js`;
//! vectors `shared/vectors/app_state/` (tests/app_state_vectors.rs).

pub mod actions;
mod blob;
pub mod crypto;
mod error;
pub mod iq;
mod keys;
mod lthash;
mod mutation;
mod record;
mod state;
mod sync_action;

use std::fmt;
use std::str::FromStr;

pub use actions::ChatAction;
pub use blob::{decode_external_mutations, decode_snapshot_blob, decrypt_blob};
pub use error::AppStateError;
pub use iq::{CollectionError, CollectionResponse};
pub use keys::{EXPANDED_LEN, KeyRing, KeySource, MutationKeys, key_request};
pub use lthash::{LTHASH_LEN, LtHash};
pub use mutation::{EncodedRecord, Mutation, NewMutation, Operation, decode_record, encode_record};
pub use record::{RecordError, StoredSyncKey};
pub use state::{CollectionState, OutgoingPatch, missing_keys, patch_key_ids};
pub use sync_action::SyncAction;

/// One of the five app-state collections (shared/protocol/08 §1; whatsmeow
/// `appstate/keys.go` WAPatchName).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Collection {
    /// `critical_block`: push name, locale, security notifications.
    CriticalBlock,
    /// `critical_unblock_low`: contacts, LID contacts.
    CriticalUnblockLow,
    /// `regular_high`: mute, star, delete, clear, NCT salt.
    RegularHigh,
    /// `regular_low`: pin, archive, mark read.
    RegularLow,
    /// `regular`: labels, quick replies, PN-for-LID chats.
    Regular,
}

impl Collection {
    /// All five, in whatsmeow's fetch order.
    pub const ALL: [Self; 5] = [
        Self::CriticalBlock,
        Self::CriticalUnblockLow,
        Self::RegularHigh,
        Self::RegularLow,
        Self::Regular,
    ];

    /// The wire name, also part of the snapshot and patch MAC input.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CriticalBlock => "critical_block",
            Self::CriticalUnblockLow => "critical_unblock_low",
            Self::RegularHigh => "regular_high",
            Self::RegularLow => "regular_low",
            Self::Regular => "regular",
        }
    }
}

impl fmt::Display for Collection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Collection {
    type Err = AppStateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| AppStateError::UnknownCollection(s.to_owned()))
    }
}

#[cfg(test)]
mod tests;
