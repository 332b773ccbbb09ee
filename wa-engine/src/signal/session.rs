//! Session setup (X3DH, both roles) and the session record: the current state plus
//! archived previous states of one peer device (shared/protocol/04-signal.md §5, §8).

use std::collections::VecDeque;
use std::fmt;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::error::SignalError;
use super::kdf;
use super::keys::{KeyPair, LocalIdentity, PreKeyBundle, PublicKey};
use super::ratchet::{ChainKey, Ciphertext, PendingPreKey, SenderChain, SessionState};
use super::record;
use super::wire::{PreKeySignalMessage, SignalMessage};

/// Archived (previous) session states kept per address; the oldest is dropped beyond
/// it (libsignal-protocol-go `SessionRecord.go`, libsignal-node `CLOSED_SESSIONS_MAX`,
/// libsignal: 40; 04 §6.5).
pub const MAX_ARCHIVED_STATES: usize = 40;

/// Initiator (Alice) side of X3DH from a peer's bundle (04 §5): draws the base key and
/// then the first sending ratchet key from `rng` (the order libsignal-node draws them),
/// derives the root key and the first sending chain, and remembers the pending prekey
/// so that messages go out as `pkmsg` until the peer answers.
///
/// The caller has verified the signed-prekey signature.
pub(crate) fn initiate<R: CryptoRng + ?Sized>(
    local: &LocalIdentity,
    bundle: &PreKeyBundle,
    rng: &mut R,
) -> SessionState {
    let base = KeyPair::generate(rng);
    let ratchet = KeyPair::generate(rng);
    let x3dh = kdf::x3dh_initiator(
        &local.key_pair.private,
        &base.private,
        &bundle.identity_key,
        &bundle.signed_prekey,
        bundle.prekey.as_ref().map(|(_, key)| key),
    );
    let (root, sending) = kdf::root_step(&x3dh.root_key, &ratchet.private, &bundle.signed_prekey);
    SessionState {
        local_identity: local.key_pair.public,
        remote_identity: bundle.identity_key,
        local_registration_id: local.registration_id,
        remote_registration_id: bundle.registration_id,
        root_key: *root,
        base_key: base.public,
        sender: SenderChain {
            ratchet,
            chain: ChainKey {
                key: *sending,
                index: 0,
            },
        },
        receivers: VecDeque::new(),
        previous_counter: 0,
        pending_prekey: Some(PendingPreKey {
            prekey_id: bundle.prekey.as_ref().map(|(id, _)| *id),
            signed_prekey_id: bundle.signed_prekey_id,
            base_key: base.public,
        }),
    }
}

/// Responder (Bob) side of X3DH for a received `pkmsg` (04 §5): the root key from the
/// master secret, our signed prekey as current ratchet key with the X3DH chain key as
/// (never used) sending chain. Decrypting the embedded message then steps the ratchet.
pub(crate) fn respond(
    local: &LocalIdentity,
    signed_prekey: &KeyPair,
    one_time_prekey: Option<&KeyPair>,
    message: &PreKeySignalMessage,
) -> SessionState {
    let x3dh = kdf::x3dh_responder(
        &local.key_pair.private,
        &signed_prekey.private,
        one_time_prekey.map(|k| &k.private),
        &message.identity_key,
        &message.base_key,
    );
    SessionState {
        local_identity: local.key_pair.public,
        remote_identity: message.identity_key,
        local_registration_id: local.registration_id,
        remote_registration_id: message.registration_id,
        root_key: x3dh.root_key,
        base_key: message.base_key,
        sender: SenderChain {
            ratchet: signed_prekey.clone(),
            chain: ChainKey {
                key: x3dh.chain_key,
                index: 0,
            },
        },
        receivers: VecDeque::new(),
        previous_counter: 0,
        pending_prekey: None,
    }
}

/// All session state with one peer device: the current state and up to
/// [`MAX_ARCHIVED_STATES`] previous ones (newest first), which are tried when the
/// current one cannot decrypt a `msg` (04 §8.3).
///
/// Persist with [`to_bytes`](Self::to_bytes) under the address's session key.
/// `Debug` shows only counts.
#[derive(Clone, Default)]
pub struct SessionRecord {
    pub(crate) current: Option<SessionState>,
    pub(crate) previous: VecDeque<SessionState>,
}

impl SessionRecord {
    /// An empty record (no session).
    pub fn new() -> Self {
        Self::default()
    }

    /// True if there is a current session state to encrypt with.
    pub fn has_current_session(&self) -> bool {
        self.current.is_some()
    }

    /// Number of archived previous states.
    pub fn archived_count(&self) -> usize {
        self.previous.len()
    }

    /// The peer's identity key in the current state.
    pub fn remote_identity(&self) -> Option<PublicKey> {
        self.current.as_ref().map(|s| s.remote_identity)
    }

    /// The peer's registration id in the current state.
    pub fn remote_registration_id(&self) -> Option<u32> {
        self.current.as_ref().map(|s| s.remote_registration_id)
    }

    /// True while the current state still sends `pkmsg` (no message from the peer has
    /// been decrypted in it yet).
    pub fn has_pending_prekey(&self) -> bool {
        self.current
            .as_ref()
            .is_some_and(|s| s.pending_prekey.is_some())
    }

    /// Archives the current state (if any) and makes `state` current.
    pub(crate) fn promote(&mut self, state: SessionState) {
        if let Some(old) = self.current.replace(state) {
            self.previous.push_front(old);
            self.previous.truncate(MAX_ARCHIVED_STATES);
        }
    }

    /// Archives the current state; the record then has no current session (e.g. on an
    /// identity change).
    pub fn archive_current(&mut self) {
        if let Some(old) = self.current.take() {
            self.previous.push_front(old);
            self.previous.truncate(MAX_ARCHIVED_STATES);
        }
    }

    /// True if any state (current or archived) was set up from this base key: a resent
    /// or duplicate `pkmsg` (04 §8.2 step 1).
    pub(crate) fn has_base_key(&self, base_key: &PublicKey) -> bool {
        self.current
            .iter()
            .chain(self.previous.iter())
            .any(|s| s.base_key == *base_key)
    }

    /// Encrypts with the current state.
    pub(crate) fn encrypt(&mut self, plaintext: &[u8]) -> Result<Ciphertext, SignalError> {
        self.current
            .as_mut()
            .ok_or(SignalError::NoSession)?
            .encrypt(plaintext)
    }

    /// Decrypts a `msg`: tries the current state, then each archived state; an archived
    /// state that works becomes current again (libsignal and libsignal-protocol-go
    /// promote it; libsignal-node leaves it closed). A duplicate stops the search, as in
    /// libsignal. No state is changed on failure.
    pub(crate) fn decrypt<R: CryptoRng + ?Sized>(
        &mut self,
        message: &SignalMessage,
        rng: &mut R,
    ) -> Result<Vec<u8>, SignalError> {
        let mut first_error = None;
        if let Some(current) = &self.current {
            let mut state = current.clone();
            match state.decrypt(message, rng) {
                Ok(plaintext) => {
                    self.current = Some(state);
                    return Ok(plaintext);
                }
                Err(e @ SignalError::DuplicateMessage { .. }) => return Err(e),
                Err(e) => first_error = Some(e),
            }
        }
        for index in 0..self.previous.len() {
            let Some(archived) = self.previous.get(index) else {
                break;
            };
            let mut state = archived.clone();
            match state.decrypt(message, rng) {
                Ok(plaintext) => {
                    self.previous.remove(index);
                    self.promote(state);
                    return Ok(plaintext);
                }
                Err(e @ SignalError::DuplicateMessage { .. }) => return Err(e),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or(SignalError::NoSession))
    }

    /// Serializes the record (versioned protobuf, see the `record` module). Holds key
    /// material; zeroized on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        record::encode_session(self)
    }

    /// Parses a record written by [`to_bytes`](Self::to_bytes).
    ///
    /// # Errors
    /// [`SignalError::CorruptRecord`] if it does not decode.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignalError> {
        record::decode_session(bytes)
    }
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("current", &self.current.is_some())
            .field("archived", &self.previous.len())
            .finish()
    }
}
