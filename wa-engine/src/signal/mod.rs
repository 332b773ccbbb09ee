//! The Signal protocol as WhatsApp uses it (shared/protocol/04-signal.md): XEdDSA, keys
//! and prekeys, X3DH, the double ratchet, the `msg` / `pkmsg` / `skmsg` wire formats and
//! sender keys. A low-level layer, public on purpose; our own code over
//! RustCrypto/dalek primitives, following libsignal, libsignal-node (as Baileys uses
//! it) and libsignal-protocol-go (as whatsmeow uses it).
//!
//! Sans-IO: no clock, no tasks, no sockets. Randomness comes in as an
//! `rand_core::CryptoRng` argument, so a scripted RNG reproduces recorded sessions
//! byte for byte (key pairs are drawn as 32 bytes, then clamped, exactly as
//! libsignal-node draws them).
//!
//! # Layers
//!
//! - Store-level operations, one atomic [`StoreBatch`](crate::store::StoreBatch) each,
//!   committed before any ciphertext or plaintext is returned:
//!   [`process_prekey_bundle`], [`encrypt`], [`decrypt_pkmsg`], [`decrypt_msg`];
//!   groups: [`sender_key_distribution`], [`encrypt_group`],
//!   [`process_sender_key_distribution`], [`decrypt_group`].
//! - Our prekeys: [`generate_prekeys`] (stored before upload), [`mark_prekeys_uploaded`],
//!   [`generate_registration_id`].
//! - Records you can hold in memory: [`SessionRecord`] (via the store functions),
//!   [`SenderKeyRecord`] (encrypt/decrypt directly), [`PreKeyRecord`],
//!   [`SignedPreKeyRecord`]; each has `to_bytes` / `from_bytes` (versioned protobuf).
//! - Wire messages: [`SignalMessage`], [`PreKeySignalMessage`], [`SenderKeyMessage`],
//!   [`SenderKeyDistributionMessage`], [`EncType`].
//! - Derivations (`kdf`) and signatures (`xeddsa`); public with the `server-side` feature
//!   for the vector tests and the simulated phone.
//!
//! # Limits (04 §6.5, §9.1)
//!
//! [`MAX_FORWARD_JUMPS`] (2000) keys skipped per message, [`MAX_MESSAGE_KEYS`] (2000)
//! stored skipped keys per chain, [`MAX_RECEIVER_CHAINS`] (5) receiving chains per
//! state, [`MAX_ARCHIVED_STATES`] (40) archived states per address,
//! [`MAX_SENDER_KEY_STATES`] (5) sender key states per (group, sender).

internal_mod! {
    kdf;
    xeddsa;
}

mod cipher;
mod crypto;
mod error;
mod group;
mod keys;
mod prekeys;
mod ratchet;
mod record;
mod session;
mod wire;

pub use cipher::{
    IdentityChange, PreKeyDecryption, TrustPolicy, decrypt_msg, decrypt_pkmsg, encrypt,
    has_session, local_identity, process_prekey_bundle,
};
pub use error::{MessageDefect, SignalError};
pub use group::{
    MAX_SENDER_KEY_STATES, SenderKeyRecord, decrypt_group, encrypt_group,
    process_sender_key_distribution, sender_key_distribution,
};
pub use keys::{
    DJB_TYPE, KeyPair, LocalIdentity, PreKeyBundle, PreKeyRecord, PrivateKey, PublicKey,
    SERIALIZED_PUBLIC_KEY_LEN, SignedPreKeyRecord,
};
pub use prekeys::{
    MAX_PREKEY_ID, generate_prekeys, generate_registration_id, mark_prekeys_uploaded,
};
pub use ratchet::{MAX_FORWARD_JUMPS, MAX_MESSAGE_KEYS, MAX_RECEIVER_CHAINS};
pub use session::{MAX_ARCHIVED_STATES, SessionRecord};
pub use wire::{
    EncType, MAC_LEN, PreKeySignalMessage, SIGNATURE_LEN, SenderKeyDistributionMessage,
    SenderKeyMessage, SignalMessage, UnknownEncType, VERSION_BYTE,
};
