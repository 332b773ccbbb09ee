//! Pairwise sessions over a [`Store`]: set up from a bundle, encrypt, decrypt `pkmsg`
//! and `msg`. Each operation reads what it needs, computes the new state in memory and
//! writes it in ONE [`StoreBatch`] before returning, so a crash never leaves a ratchet
//! behind what the peer saw (shared/protocol/04-signal.md §8.4), and a failed
//! operation writes nothing.
//!
//! Callers serialise operations on one address (04 §8.1); the store itself is
//! thread-safe but a concurrent read-modify-write of one session would lose an update.
//!
//! Identities are stored as the raw 32-byte public key under the address
//! ([`Store::identity`]).

use rand_core::CryptoRng;

use super::error::SignalError;
use super::keys::{
    KeyPair, LocalIdentity, PreKeyBundle, PreKeyRecord, PublicKey, SignedPreKeyRecord,
};
use super::ratchet::Ciphertext;
use super::session::{self, SessionRecord};
use super::wire::{EncType, PreKeySignalMessage, SignalMessage};
use crate::store::{ProtocolAddress, Store, StoreBatch};

/// What to do when a peer's identity key differs from the one stored for its address
/// (04 §8.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrustPolicy {
    /// Trust on first use and silently replace a changed identity, reporting
    /// [`IdentityChange::Replaced`] so the embedder can surface an event. This is what
    /// WA Web, whatsmeow (`AutoTrustIdentity`, default) and whatsapp-rust do.
    #[default]
    AutoTrust,
    /// Trust on first use; refuse a changed identity with
    /// [`SignalError::UntrustedIdentity`] (libsignal's default store behaviour).
    RejectChanged,
}

/// What happened to the stored identity of the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityChange {
    /// No identity was stored; this one is now (trust on first use).
    New,
    /// The stored identity matched.
    Unchanged,
    /// A different identity was stored and has been replaced (only under
    /// [`TrustPolicy::AutoTrust`]). whatsmeow emits an identity-change event here.
    Replaced,
}

/// Result of [`decrypt_pkmsg`].
#[derive(Debug)]
#[non_exhaustive]
pub struct PreKeyDecryption {
    /// The decrypted (still WhatsApp-padded) plaintext.
    pub plaintext: Vec<u8>,
    /// What happened to the sender's stored identity.
    pub identity: IdentityChange,
    /// The one-time prekey id consumed (deleted in the same batch), if this `pkmsg`
    /// set up a new session with one. The engine may want to top up its prekeys.
    pub consumed_prekey: Option<u32>,
}

/// Our identity key pair and registration id, from the stored credentials.
///
/// # Errors
/// [`SignalError::NoCredentials`] before the device was set up; [`SignalError::Store`].
pub fn local_identity(store: &dyn Store) -> Result<LocalIdentity, SignalError> {
    let creds = store.credentials()?.ok_or(SignalError::NoCredentials)?;
    Ok(LocalIdentity {
        key_pair: KeyPair::from(&creds.identity_key),
        registration_id: creds.registration_id,
    })
}

fn load_session(
    store: &dyn Store,
    address: &ProtocolAddress,
) -> Result<Option<SessionRecord>, SignalError> {
    store
        .session(address)?
        .map(|blob| SessionRecord::from_bytes(&blob))
        .transpose()
}

fn stored_identity(
    store: &dyn Store,
    address: &ProtocolAddress,
) -> Result<Option<PublicKey>, SignalError> {
    store
        .identity(address)?
        .map(|blob| {
            PublicKey::from_slice(&blob).ok_or(SignalError::CorruptRecord {
                what: "identity key",
            })
        })
        .transpose()
}

/// Applies the trust policy to `identity` for `address`.
fn check_identity(
    store: &dyn Store,
    address: &ProtocolAddress,
    identity: &PublicKey,
    trust: TrustPolicy,
) -> Result<IdentityChange, SignalError> {
    match stored_identity(store, address)? {
        None => Ok(IdentityChange::New),
        Some(known) if known == *identity => Ok(IdentityChange::Unchanged),
        Some(_) => match trust {
            TrustPolicy::AutoTrust => {
                tracing::info!(%address, "peer identity key changed; replacing it");
                Ok(IdentityChange::Replaced)
            }
            TrustPolicy::RejectChanged => Err(SignalError::UntrustedIdentity),
        },
    }
}

/// Checks that a session's identity is the stored one (no policy: a stored identity
/// only changes together with a new session, so a mismatch means an archived or stale
/// state of a replaced identity).
fn require_stored_identity(
    store: &dyn Store,
    address: &ProtocolAddress,
    identity: &PublicKey,
) -> Result<IdentityChange, SignalError> {
    match stored_identity(store, address)? {
        None => Ok(IdentityChange::New),
        Some(known) if known == *identity => Ok(IdentityChange::Unchanged),
        Some(_) => Err(SignalError::UntrustedIdentity),
    }
}

fn put_identity(
    batch: &mut StoreBatch,
    address: &ProtocolAddress,
    change: IdentityChange,
    key: &PublicKey,
) {
    if change != IdentityChange::Unchanged {
        batch.put_identity(address, *key.as_bytes());
    }
}

/// Initiator setup (04 §5, §8.4): verifies the bundle's signed-prekey signature, applies
/// the trust policy to its identity, runs X3DH (drawing the base key and the first
/// ratchet key from `rng`), archives any existing session of the address and stores the
/// new one with the identity, in one batch. The next [`encrypt`] gives a `pkmsg`.
///
/// # Errors
/// [`SignalError::BadSignature`] (libsignal-node skips this check; a correct
/// implementation makes it, 04 §3), [`SignalError::UntrustedIdentity`],
/// [`SignalError::NoCredentials`], [`SignalError::Store`],
/// [`SignalError::CorruptRecord`].
pub fn process_prekey_bundle<R: CryptoRng + ?Sized>(
    store: &dyn Store,
    address: &ProtocolAddress,
    bundle: &PreKeyBundle,
    trust: TrustPolicy,
    rng: &mut R,
) -> Result<IdentityChange, SignalError> {
    if !bundle.verify_signature() {
        return Err(SignalError::BadSignature);
    }
    let local = local_identity(store)?;
    let change = check_identity(store, address, &bundle.identity_key, trust)?;
    let mut record = load_session(store, address)?.unwrap_or_default();
    record.promote(session::initiate(&local, bundle, rng));

    let mut batch = StoreBatch::new();
    batch.put_session(address, record.to_bytes());
    put_identity(&mut batch, address, change, &bundle.identity_key);
    store.apply(batch)?;
    Ok(change)
}

/// Encrypts `plaintext` (already WhatsApp-padded) for `address` with its current
/// session, stores the advanced sending chain, and only then returns the `<enc>` type
/// and bytes: `pkmsg` until the peer has answered, `msg` after (04 §6.3, §8.4).
///
/// # Errors
/// [`SignalError::NoSession`] without a current session;
/// [`SignalError::UntrustedIdentity`] if the stored identity is not the session's;
/// [`SignalError::Store`], [`SignalError::CorruptRecord`].
pub fn encrypt(
    store: &dyn Store,
    address: &ProtocolAddress,
    plaintext: &[u8],
) -> Result<(EncType, Vec<u8>), SignalError> {
    let mut record = load_session(store, address)?.ok_or(SignalError::NoSession)?;
    let identity = record.remote_identity().ok_or(SignalError::NoSession)?;
    let change = require_stored_identity(store, address, &identity)?;
    let ciphertext = record.encrypt(plaintext)?;

    let mut batch = StoreBatch::new();
    batch.put_session(address, record.to_bytes());
    put_identity(&mut batch, address, change, &identity);
    store.apply(batch)?;
    Ok(match ciphertext {
        Ciphertext::Msg(m) => (EncType::Msg, m.serialized().to_vec()),
        Ciphertext::PkMsg(m) => (EncType::PkMsg, m.serialized().to_vec()),
    })
}

/// Looks up a signed prekey by id: the current one in the credentials, else a stored
/// (older) one.
fn signed_prekey(store: &dyn Store, id: u32) -> Result<SignedPreKeyRecord, SignalError> {
    let creds = store.credentials()?.ok_or(SignalError::NoCredentials)?;
    if creds.signed_prekey.id == id {
        return Ok(SignedPreKeyRecord::from(&creds.signed_prekey));
    }
    let blob = store
        .signed_prekey(id)?
        .ok_or(SignalError::InvalidSignedPreKeyId { id })?;
    SignedPreKeyRecord::from_bytes(&blob)
}

/// Decrypts a `pkmsg` from `address` (04 §8.2): applies the trust policy to the
/// sender's identity; if a state from this base key exists (a resend), decrypts with
/// the record; otherwise looks up our signed prekey and one-time prekey, runs responder
/// X3DH, decrypts the embedded message with the new state (drawing our next ratchet
/// key from `rng`) and archives the previous current state. Only after decryption
/// succeeds, ONE batch stores the session, deletes the consumed one-time prekey and
/// stores the identity.
///
/// # Errors
/// [`SignalError::InvalidMessage`], [`SignalError::UntrustedIdentity`],
/// [`SignalError::InvalidSignedPreKeyId`], [`SignalError::InvalidPreKeyId`] (e.g.
/// already consumed: answer with a retry receipt, 05 §9.3), [`SignalError::InvalidMac`],
/// [`SignalError::DuplicateMessage`], [`SignalError::TooManySkipped`],
/// [`SignalError::NoCredentials`], [`SignalError::Store`],
/// [`SignalError::CorruptRecord`].
pub fn decrypt_pkmsg<R: CryptoRng + ?Sized>(
    store: &dyn Store,
    address: &ProtocolAddress,
    ciphertext: &[u8],
    trust: TrustPolicy,
    rng: &mut R,
) -> Result<PreKeyDecryption, SignalError> {
    let message = PreKeySignalMessage::decode(ciphertext)?;
    let identity = check_identity(store, address, &message.identity_key, trust)?;
    let mut record = load_session(store, address)?.unwrap_or_default();

    let (plaintext, consumed_prekey) = if record.has_base_key(&message.base_key) {
        (record.decrypt(&message.message, rng)?, None)
    } else {
        let local = local_identity(store)?;
        let spk = signed_prekey(store, message.signed_prekey_id)?;
        let opk = message
            .prekey_id
            .map(|id| {
                let blob = store
                    .prekey(id)?
                    .ok_or(SignalError::InvalidPreKeyId { id })?;
                PreKeyRecord::from_bytes(&blob)
            })
            .transpose()?;
        let mut state = session::respond(
            &local,
            &spk.key_pair,
            opk.as_ref().map(|k| &k.key_pair),
            &message,
        );
        let plaintext = state.decrypt(&message.message, rng)?;
        record.promote(state);
        (plaintext, message.prekey_id)
    };

    let mut batch = StoreBatch::new();
    batch.put_session(address, record.to_bytes());
    if let Some(id) = consumed_prekey {
        batch.delete_prekey(id);
    }
    put_identity(&mut batch, address, identity, &message.identity_key);
    store.apply(batch)?;
    Ok(PreKeyDecryption {
        plaintext,
        identity,
        consumed_prekey,
    })
}

/// Decrypts a `msg` from `address` (04 §6.4, §8.3): tries the current state, then the
/// archived ones (one that works becomes current), and stores the record in one batch
/// before returning the plaintext. Nothing is stored on error.
///
/// # Errors
/// [`SignalError::NoSession`] without any session; [`SignalError::InvalidMac`] if no
/// state authenticates it; [`SignalError::DuplicateMessage`];
/// [`SignalError::TooManySkipped`]; [`SignalError::UntrustedIdentity`] if the state
/// that decrypted it belongs to an identity other than the stored one;
/// [`SignalError::InvalidMessage`]; [`SignalError::Store`];
/// [`SignalError::CorruptRecord`].
pub fn decrypt_msg<R: CryptoRng + ?Sized>(
    store: &dyn Store,
    address: &ProtocolAddress,
    ciphertext: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, SignalError> {
    let message = SignalMessage::decode(ciphertext)?;
    let mut record = load_session(store, address)?.ok_or(SignalError::NoSession)?;
    let plaintext = record.decrypt(&message, rng)?;
    let identity = record.remote_identity().ok_or(SignalError::NoSession)?;
    let change = require_stored_identity(store, address, &identity)?;

    let mut batch = StoreBatch::new();
    batch.put_session(address, record.to_bytes());
    put_identity(&mut batch, address, change, &identity);
    store.apply(batch)?;
    Ok(plaintext)
}

/// True if `address` has a current session (a `pkmsg` or `msg` can be sent without
/// fetching a bundle first).
///
/// # Errors
/// [`SignalError::Store`], [`SignalError::CorruptRecord`].
pub fn has_session(store: &dyn Store, address: &ProtocolAddress) -> Result<bool, SignalError> {
    Ok(load_session(store, address)?.is_some_and(|r| r.has_current_session()))
}
