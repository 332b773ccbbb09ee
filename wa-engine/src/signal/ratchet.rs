//! The double ratchet on one session state: chains, message keys, encrypt and decrypt
//! (shared/protocol/04-signal.md §6).
//!
//! Chain indexes count messages: a chain's `index` is the counter of its next message
//! key (first message = 0). Old receiving chains are kept (at most
//! [`MAX_RECEIVER_CHAINS`]) with their chain key, so a late message of an earlier chain
//! derives its key on demand, as libsignal (Rust and Go) does; the `previousCounter` of
//! a message is therefore informational on receipt.

use std::collections::VecDeque;

use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::crypto::{aes_cbc_decrypt, aes_cbc_encrypt};
use super::error::SignalError;
use super::kdf::{self, MessageKeys};
use super::keys::{KeyPair, PublicKey};
use super::wire::{PreKeySignalMessage, SignalMessage};

/// How far ahead of its chain a message may be: at most this many message keys are
/// derived and skipped for one message. 2000 in libsignal-node (`session_cipher.js`),
/// libsignal-protocol-go (`maxFutureMessages`) and WA Web per whatsapp-rust's
/// successor (04 §6.5, open point 2). Counted as libsignal Rust and Go count it
/// (`counter − next index > 2000` fails); libsignal-node is one stricter.
pub const MAX_FORWARD_JUMPS: u32 = 2000;

/// Skipped message keys kept per receiving chain; the oldest is dropped beyond it
/// (libsignal-protocol-go `state/record/SessionState.go`, libsignal `consts.rs`: 2000).
pub const MAX_MESSAGE_KEYS: usize = 2000;

/// Receiving chains kept per session state; the oldest is dropped beyond it
/// (libsignal-protocol-go and libsignal: 5).
pub const MAX_RECEIVER_CHAINS: usize = 5;

/// A chain key and the counter of the next message key it gives.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct ChainKey {
    pub(crate) key: [u8; 32],
    pub(crate) index: u32,
}

impl ChainKey {
    /// Message-key seed at `index`.
    pub(crate) fn seed(&self) -> [u8; 32] {
        *kdf::message_key_seed(&self.key)
    }

    /// Moves to the next index.
    pub(crate) fn advance(&mut self) -> Result<(), SignalError> {
        let next = self
            .index
            .checked_add(1)
            .ok_or(SignalError::CounterExhausted)?;
        self.key = *kdf::next_chain_key(&self.key);
        self.index = next;
        Ok(())
    }
}

/// A message-key seed kept for a message that has not arrived yet.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SkippedKey {
    pub(crate) counter: u32,
    pub(crate) seed: [u8; 32],
}

/// Our sending chain: our current ratchet key pair and its chain.
#[derive(Clone)]
pub(crate) struct SenderChain {
    pub(crate) ratchet: KeyPair,
    pub(crate) chain: ChainKey,
}

/// One receiving chain: the peer's ratchet key, its chain and the keys skipped on it.
#[derive(Clone)]
pub(crate) struct ReceiverChain {
    pub(crate) ratchet: PublicKey,
    pub(crate) chain: ChainKey,
    /// Oldest first; at most [`MAX_MESSAGE_KEYS`].
    pub(crate) skipped: VecDeque<SkippedKey>,
}

/// What the initiator keeps sending in every message until the peer answers
/// (04 §5 step 4): the prekey ids and base key of its X3DH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PendingPreKey {
    pub(crate) prekey_id: Option<u32>,
    pub(crate) signed_prekey_id: u32,
    pub(crate) base_key: PublicKey,
}

/// One session state: a complete double ratchet with one peer device.
#[derive(Clone)]
pub(crate) struct SessionState {
    pub(crate) local_identity: PublicKey,
    pub(crate) remote_identity: PublicKey,
    pub(crate) local_registration_id: u32,
    pub(crate) remote_registration_id: u32,
    pub(crate) root_key: [u8; 32],
    /// The initiator's base key `EK_A` (both sides keep it, to recognise a resent pkmsg).
    pub(crate) base_key: PublicKey,
    pub(crate) sender: SenderChain,
    /// Oldest first; at most [`MAX_RECEIVER_CHAINS`].
    pub(crate) receivers: VecDeque<ReceiverChain>,
    /// Index of the last message sent on our previous sending chain (04 §6.3).
    pub(crate) previous_counter: u32,
    pub(crate) pending_prekey: Option<PendingPreKey>,
}

impl Drop for SessionState {
    fn drop(&mut self) {
        self.root_key.zeroize();
    }
}

/// An encrypted pairwise message, ready for `<enc type="msg|pkmsg">`.
#[derive(Debug, Clone)]
pub(crate) enum Ciphertext {
    Msg(SignalMessage),
    PkMsg(PreKeySignalMessage),
}

impl SessionState {
    /// Encrypts `plaintext` with the next key of the sending chain and advances it
    /// (04 §6.2–6.3). Wraps the message as a pkmsg while a pending prekey is set.
    pub(crate) fn encrypt(&mut self, plaintext: &[u8]) -> Result<Ciphertext, SignalError> {
        let keys = MessageKeys::derive(&self.sender.chain.seed());
        let ciphertext = aes_cbc_encrypt(&keys.cipher_key, &keys.iv, plaintext);
        let message = SignalMessage::new(
            &keys.mac_key,
            &self.local_identity,
            &self.remote_identity,
            self.sender.ratchet.public,
            self.sender.chain.index,
            self.previous_counter,
            ciphertext,
        );
        self.sender.chain.advance()?;
        Ok(match &self.pending_prekey {
            Some(pending) => Ciphertext::PkMsg(PreKeySignalMessage::new(
                self.local_registration_id,
                pending.prekey_id,
                pending.signed_prekey_id,
                pending.base_key,
                self.local_identity,
                message,
            )),
            None => Ciphertext::Msg(message),
        })
    }

    /// Decrypts `message`, stepping the DH ratchet if its ratchet key is new (drawing our
    /// next ratchet key pair from `rng`, as libsignal does while receiving) (04 §6.4).
    ///
    /// On error the state may be half-updated: callers work on a copy and keep it only
    /// on success.
    pub(crate) fn decrypt<R: CryptoRng + ?Sized>(
        &mut self,
        message: &SignalMessage,
        rng: &mut R,
    ) -> Result<Vec<u8>, SignalError> {
        let chain_pos = match self
            .receivers
            .iter()
            .position(|c| c.ratchet == message.ratchet_key)
        {
            Some(pos) => pos,
            None => self.step_ratchet(message.ratchet_key, rng),
        };
        let chain = self
            .receivers
            .get_mut(chain_pos)
            .ok_or(SignalError::NoSession)?;
        let seed = message_seed(&mut chain.chain, &mut chain.skipped, message.counter)?;
        let keys = MessageKeys::derive(&seed);
        if !message.verify_mac(&keys.mac_key, &self.remote_identity, &self.local_identity) {
            return Err(SignalError::InvalidMac);
        }
        let plaintext = aes_cbc_decrypt(&keys.cipher_key, &keys.iv, &message.ciphertext)?;
        self.pending_prekey = None;
        Ok(plaintext)
    }

    /// DH ratchet step for a new remote ratchet key; returns the new chain's position.
    fn step_ratchet<R: CryptoRng + ?Sized>(&mut self, their: PublicKey, rng: &mut R) -> usize {
        let (root, receiving) =
            kdf::root_step(&self.root_key, &self.sender.ratchet.private, &their);
        let ours = KeyPair::generate(rng);
        let (root, sending) = kdf::root_step(&root, &ours.private, &their);
        self.root_key = *root;
        self.previous_counter = self.sender.chain.index.saturating_sub(1);
        self.sender = SenderChain {
            ratchet: ours,
            chain: ChainKey {
                key: *sending,
                index: 0,
            },
        };
        if self.receivers.len() >= MAX_RECEIVER_CHAINS {
            self.receivers.pop_front();
        }
        self.receivers.push_back(ReceiverChain {
            ratchet: their,
            chain: ChainKey {
                key: *receiving,
                index: 0,
            },
            skipped: VecDeque::new(),
        });
        self.receivers.len() - 1
    }
}

/// The message-key seed for `counter` on a receiving chain (pairwise or sender key): a
/// stored skipped key (removed from `skipped`), or derived forward from `chain`,
/// storing the keys skipped on the way (at most [`MAX_MESSAGE_KEYS`], oldest dropped).
///
/// # Errors
/// [`SignalError::DuplicateMessage`] for a counter below the chain with no stored key;
/// [`SignalError::TooManySkipped`] beyond [`MAX_FORWARD_JUMPS`].
pub(crate) fn message_seed(
    chain: &mut ChainKey,
    skipped: &mut VecDeque<SkippedKey>,
    counter: u32,
) -> Result<[u8; 32], SignalError> {
    if counter < chain.index {
        let pos = skipped
            .iter()
            .position(|k| k.counter == counter)
            .ok_or(SignalError::DuplicateMessage { counter })?;
        let key = skipped
            .remove(pos)
            .ok_or(SignalError::DuplicateMessage { counter })?;
        return Ok(key.seed);
    }
    let jump = counter - chain.index;
    if jump > MAX_FORWARD_JUMPS {
        return Err(SignalError::TooManySkipped {
            jump,
            limit: MAX_FORWARD_JUMPS,
        });
    }
    while chain.index < counter {
        if skipped.len() >= MAX_MESSAGE_KEYS {
            skipped.pop_front();
        }
        skipped.push_back(SkippedKey {
            counter: chain.index,
            seed: chain.seed(),
        });
        chain.advance()?;
    }
    let seed = chain.seed();
    chain.advance()?;
    Ok(seed)
}
