//! Sender keys: group messages (`skmsg`) and their distribution (SKDM)
//! (shared/protocol/04-signal.md §9).
//!
//! One [`SenderKeyRecord`] per (group, sender device), stored under its
//! [`SenderKeyName`]. The sender's own record holds the signing private key; a
//! receiver's holds only the public one. Encryption uses the chain's current
//! iteration and advances by one, as libsignal and whatsmeow do (Baileys skips an
//! iteration per message, `shared/vectors/sender_keys/README.md`; receivers cope with
//! both).

use std::collections::VecDeque;
use std::fmt;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::crypto::{aes_cbc_decrypt, aes_cbc_encrypt};
use super::error::SignalError;
use super::kdf::SenderMessageKeys;
use super::keys::{KeyPair, PrivateKey, PublicKey};
use super::ratchet::{ChainKey, SkippedKey, message_seed};
use super::record;
use super::wire::{SenderKeyDistributionMessage, SenderKeyMessage};
use crate::store::{SenderKeyName, Store, StoreBatch};

/// Sender key states kept per record, newest first; the oldest is dropped beyond it
/// (libsignal-protocol-go `SenderKeyRecord.go`, Baileys `sender-key-record.ts`,
/// libsignal `consts.rs`: 5).
pub const MAX_SENDER_KEY_STATES: usize = 5;

/// One sender key: id, chain, signing key and the message keys skipped on it.
#[derive(Clone)]
pub(crate) struct SenderKeyState {
    pub(crate) key_id: u32,
    /// `index` = next iteration.
    pub(crate) chain: ChainKey,
    pub(crate) signing_public: PublicKey,
    /// Present only in the sender's own record.
    pub(crate) signing_private: Option<PrivateKey>,
    /// Oldest first, at most [`MAX_MESSAGE_KEYS`](super::MAX_MESSAGE_KEYS).
    pub(crate) skipped: VecDeque<SkippedKey>,
}

/// All sender key states of one (group, sender device), newest first, at most
/// [`MAX_SENDER_KEY_STATES`]. `Debug` shows key ids and iterations only.
#[derive(Clone, Default)]
pub struct SenderKeyRecord {
    pub(crate) states: VecDeque<SenderKeyState>,
}

impl SenderKeyRecord {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// True if the record has no state.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Key ids of the states, newest first.
    pub fn key_ids(&self) -> Vec<u32> {
        self.states.iter().map(|s| s.key_id).collect()
    }

    /// Adds a state at the front, dropping the oldest beyond the limit.
    fn push(&mut self, state: SenderKeyState) {
        self.states.push_front(state);
        self.states.truncate(MAX_SENDER_KEY_STATES);
    }

    /// Starts a new own sender key (04 §9.1): key id = 31 random bits (fits Baileys'
    /// `randomInt(2^31 − 1)` and libsignal-protocol-go's uint32), 32 random chain-key
    /// bytes at iteration 0, a fresh signing key pair; drawn from `rng` in that order.
    /// The new state becomes the newest.
    pub fn create_own_state<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> u32 {
        let key_id = rng.next_u32() & 0x7FFF_FFFF;
        let mut chain_key = Zeroizing::new([0_u8; 32]);
        rng.fill_bytes(chain_key.as_mut());
        let signing = KeyPair::generate(rng);
        self.add_own_state(key_id, 0, *chain_key, signing);
        key_id
    }

    /// Adds an own sender key with given values (for restoring or testing a known
    /// key); it becomes the newest state.
    pub fn add_own_state(
        &mut self,
        key_id: u32,
        iteration: u32,
        chain_key: [u8; 32],
        signing: KeyPair,
    ) {
        self.push(SenderKeyState {
            key_id,
            chain: ChainKey {
                key: chain_key,
                index: iteration,
            },
            signing_public: signing.public,
            signing_private: Some(signing.private.clone()),
            skipped: VecDeque::new(),
        });
    }

    /// The SKDM of the newest state: its key id, *current* iteration and chain key,
    /// and signing public key. `None` if the record is empty.
    pub fn distribution_message(&self) -> Option<SenderKeyDistributionMessage> {
        let state = self.states.front()?;
        Some(SenderKeyDistributionMessage::new(
            state.key_id,
            state.chain.index,
            state.chain.key,
            state.signing_public,
        ))
    }

    /// Adds the state an SKDM describes (04 §9.2, receiver side). If a state with the
    /// same key id and signing key exists it is kept as is (its position and skipped
    /// keys stay valid; whatsmeow resends the SKDM with every group message); one with
    /// the same id but another signing key is replaced.
    pub fn process_distribution(&mut self, skdm: &SenderKeyDistributionMessage) {
        if let Some(pos) = self.states.iter().position(|s| s.key_id == skdm.key_id) {
            if self
                .states
                .get(pos)
                .is_some_and(|s| s.signing_public == skdm.signing_key)
            {
                return;
            }
            self.states.remove(pos);
        }
        self.push(SenderKeyState {
            key_id: skdm.key_id,
            chain: ChainKey {
                key: skdm.chain_key,
                index: skdm.iteration,
            },
            signing_public: skdm.signing_key,
            signing_private: None,
            skipped: VecDeque::new(),
        });
    }

    /// Encrypts `plaintext` with the newest state at its current iteration, signs the
    /// message (64 random bytes from `rng`) and advances the chain (04 §9.3–9.4).
    ///
    /// # Errors
    /// [`SignalError::NoSenderKey`] if the record is empty or its newest state is not
    /// our own (no signing private key).
    pub fn encrypt<R: CryptoRng + ?Sized>(
        &mut self,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<SenderKeyMessage, SignalError> {
        let state = self
            .states
            .front_mut()
            .ok_or(SignalError::NoSenderKey { key_id: 0 })?;
        let signing = state
            .signing_private
            .as_ref()
            .ok_or(SignalError::NoSenderKey {
                key_id: state.key_id,
            })?;
        let keys = SenderMessageKeys::derive(&state.chain.seed());
        let ciphertext = aes_cbc_encrypt(&keys.cipher_key, &keys.iv, plaintext);
        let message =
            SenderKeyMessage::new(state.key_id, state.chain.index, ciphertext, signing, rng);
        state.chain.advance()?;
        Ok(message)
    }

    /// Decrypts an `skmsg` (04 §9.5): finds the state by key id, verifies the signature,
    /// takes the message key for its iteration (stored skipped key, or derived forward
    /// storing the skipped ones) and decrypts. The record is unchanged on error.
    ///
    /// # Errors
    /// [`SignalError::NoSenderKey`], [`SignalError::BadSignature`],
    /// [`SignalError::DuplicateMessage`] (used or too old iteration),
    /// [`SignalError::TooManySkipped`], [`SignalError::InvalidMessage`].
    pub fn decrypt(&mut self, message: &SenderKeyMessage) -> Result<Vec<u8>, SignalError> {
        let pos = self
            .states
            .iter()
            .position(|s| s.key_id == message.key_id)
            .ok_or(SignalError::NoSenderKey {
                key_id: message.key_id,
            })?;
        let mut state = self
            .states
            .get(pos)
            .cloned()
            .ok_or(SignalError::NoSenderKey {
                key_id: message.key_id,
            })?;
        if !message.verify_signature(&state.signing_public) {
            return Err(SignalError::BadSignature);
        }
        let seed = message_seed(&mut state.chain, &mut state.skipped, message.iteration)?;
        let keys = SenderMessageKeys::derive(&seed);
        let plaintext = aes_cbc_decrypt(&keys.cipher_key, &keys.iv, &message.ciphertext)?;
        if let Some(slot) = self.states.get_mut(pos) {
            *slot = state;
        }
        Ok(plaintext)
    }

    /// Serializes the record (versioned protobuf). Holds key material; zeroized on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        record::encode_sender_key(self)
    }

    /// Parses a record written by [`to_bytes`](Self::to_bytes).
    ///
    /// # Errors
    /// [`SignalError::CorruptRecord`] if it does not decode.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignalError> {
        record::decode_sender_key(bytes)
    }
}

impl fmt::Debug for SenderKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.states.iter().map(|s| (s.key_id, s.chain.index)))
            .finish()
    }
}

fn load(store: &dyn Store, name: &SenderKeyName) -> Result<SenderKeyRecord, SignalError> {
    store
        .sender_key(name)?
        .map(|blob| SenderKeyRecord::from_bytes(&blob))
        .transpose()
        .map(Option::unwrap_or_default)
}

fn save(
    store: &dyn Store,
    name: &SenderKeyName,
    record: &SenderKeyRecord,
) -> Result<(), SignalError> {
    let mut batch = StoreBatch::new();
    batch.put_sender_key(name, record.to_bytes());
    store.apply(batch)?;
    Ok(())
}

/// The SKDM to hand to group members for our own sender key `name` (= group + our
/// device address), creating the key first if there is none (whatsmeow
/// `GroupSessionBuilder.Create`). A created key is stored before this returns.
///
/// # Errors
/// [`SignalError::Store`], [`SignalError::CorruptRecord`].
pub fn sender_key_distribution<R: CryptoRng + ?Sized>(
    store: &dyn Store,
    name: &SenderKeyName,
    rng: &mut R,
) -> Result<SenderKeyDistributionMessage, SignalError> {
    let mut record = load(store, name)?;
    if let Some(skdm) = own_distribution(&record) {
        return Ok(skdm);
    }
    record.create_own_state(rng);
    save(store, name, &record)?;
    own_distribution(&record).ok_or(SignalError::NoSenderKey { key_id: 0 })
}

/// The SKDM of the newest state if it is our own.
fn own_distribution(record: &SenderKeyRecord) -> Option<SenderKeyDistributionMessage> {
    record
        .states
        .front()
        .filter(|s| s.signing_private.is_some())
        .and_then(|_| record.distribution_message())
}

/// Encrypts a group message with our own sender key `name`, committing the advanced
/// chain in one batch before returning the `skmsg` bytes (04 §8.4 applies to sender
/// keys too: an iteration is never reused after a crash).
///
/// # Errors
/// [`SignalError::NoSenderKey`] if no own key exists (call
/// [`sender_key_distribution`] first); [`SignalError::Store`];
/// [`SignalError::CorruptRecord`].
pub fn encrypt_group<R: CryptoRng + ?Sized>(
    store: &dyn Store,
    name: &SenderKeyName,
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, SignalError> {
    let mut record = load(store, name)?;
    let message = record.encrypt(plaintext, rng)?;
    save(store, name, &record)?;
    Ok(message.serialized().to_vec())
}

/// Processes a received SKDM (the bytes of
/// `axolotlSenderKeyDistributionMessage`) from the sender `name.sender` for group
/// `name.group`, storing the resulting record.
///
/// # Errors
/// [`SignalError::InvalidMessage`] if it does not parse; [`SignalError::Store`];
/// [`SignalError::CorruptRecord`].
pub fn process_sender_key_distribution(
    store: &dyn Store,
    name: &SenderKeyName,
    skdm: &[u8],
) -> Result<(), SignalError> {
    let skdm = SenderKeyDistributionMessage::decode(skdm)?;
    let mut record = load(store, name)?;
    record.process_distribution(&skdm);
    save(store, name, &record)
}

/// Decrypts an `skmsg` from `name.sender` in `name.group`, storing the advanced
/// record in one batch before returning the plaintext. Nothing is stored on error.
///
/// # Errors
/// As [`SenderKeyRecord::decrypt`], plus [`SignalError::Store`] and
/// [`SignalError::CorruptRecord`]. `NoSenderKey { key_id }` asks for a retry receipt
/// (04 §9.5).
pub fn decrypt_group(
    store: &dyn Store,
    name: &SenderKeyName,
    skmsg: &[u8],
) -> Result<Vec<u8>, SignalError> {
    let message = SenderKeyMessage::decode(skmsg)?;
    let mut record = load(store, name)?;
    let plaintext = record.decrypt(&message)?;
    save(store, name, &record)?;
    Ok(plaintext)
}
