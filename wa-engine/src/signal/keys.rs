//! Key types: Curve25519 public and private keys, key pairs, one-time and signed
//! prekeys, and the prekey bundle a peer publishes.
//!
//! Forms (shared/protocol/04-signal.md §1): a public key is the 32-byte X25519
//! u-coordinate ("raw", as in prekey IQs); where the Signal wire and the MAC want it,
//! it is "serialized" as 33 bytes `0x05 ‖ raw` (libsignal-protocol-go `ecc/Curve.go`
//! DjbType). Private keys are 32 bytes, clamped (whatsmeow `util/keys/keypair.go`).

use std::fmt;

use rand_core::CryptoRng;
use x25519_dalek::StaticSecret;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::error::SignalError;
use super::record;
use super::xeddsa;

/// Type byte of a serialized Curve25519 (DJB) public key (04 §1; Baileys
/// `KEY_BUNDLE_TYPE = [5]`).
pub const DJB_TYPE: u8 = 0x05;

/// Length of a serialized public key: type byte + 32 raw bytes.
pub const SERIALIZED_PUBLIC_KEY_LEN: usize = 33;

/// Writes bytes as lowercase hex into a formatter (public values only).
pub(crate) fn fmt_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

/// A Curve25519 public key: the 32-byte X25519 u-coordinate (little-endian).
///
/// `Debug` prints it as hex (public data).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Wraps a raw 32-byte public key (the form of `<identity>` / `<value>` in prekey IQs).
    pub const fn from_bytes(raw: [u8; 32]) -> Self {
        Self(raw)
    }

    /// Parses a raw 32-byte public key from a slice; `None` if the length is not 32.
    pub fn from_slice(raw: &[u8]) -> Option<Self> {
        raw.try_into().ok().map(Self)
    }

    /// Parses the 33-byte serialized form `0x05 ‖ raw`; `None` for any other length or
    /// type byte (libsignal rejects other key types too).
    pub fn from_serialized(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [DJB_TYPE, rest @ ..] => Self::from_slice(rest),
            _ => None,
        }
    }

    /// The raw 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 33-byte serialized form `0x05 ‖ raw` (SignalMessage `ratchetKey`,
    /// PreKeySignalMessage `baseKey` / `identityKey`, MAC input, signed-prekey message).
    pub fn serialize(&self) -> [u8; SERIALIZED_PUBLIC_KEY_LEN] {
        let mut out = [0_u8; SERIALIZED_PUBLIC_KEY_LEN];
        out[0] = DJB_TYPE;
        out[1..].copy_from_slice(&self.0);
        out
    }

    /// Checks an XEdDSA signature (64 bytes) over `message` made by this key's private
    /// half (shared/protocol/04-signal.md §3).
    pub fn verify_signature(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        xeddsa::verify(&self.0, message, signature)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublicKey(")?;
        fmt_hex(f, &self.0)?;
        f.write_str(")")
    }
}

/// A Curve25519 private key: 32 bytes, clamped on construction.
///
/// `Debug` is redacted; the bytes are zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct PrivateKey([u8; 32]);

impl PrivateKey {
    /// Wraps 32 private-key bytes, clamping them (`k[0] &= 248; k[31] &= 127;
    /// k[31] |= 64`, 04 §1). Clamping is idempotent, so an already clamped key is kept
    /// as is.
    pub fn from_bytes(mut raw: [u8; 32]) -> Self {
        raw[0] &= 248;
        raw[31] &= 127;
        raw[31] |= 64;
        Self(raw)
    }

    /// Parses 32 private-key bytes from a slice; `None` if the length is not 32.
    pub fn from_slice(raw: &[u8]) -> Option<Self> {
        let bytes: [u8; 32] = raw.try_into().ok()?;
        Some(Self::from_bytes(bytes))
    }

    /// Draws a fresh private key: 32 bytes from `rng`, clamped. This is exactly how
    /// libsignal-node draws keys, so a scripted RNG replays recorded key pairs.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut raw = Zeroizing::new([0_u8; 32]);
        rng.fill_bytes(raw.as_mut());
        Self::from_bytes(*raw)
    }

    /// The secret bytes (for persistence). Handle with care.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(xeddsa::public_key(&self.0))
    }

    /// X25519 agreement with `their` public key; 32 bytes, zeroized on drop.
    pub(crate) fn agree(&self, their: &PublicKey) -> Zeroizing<[u8; 32]> {
        let secret = StaticSecret::from(self.0);
        let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(their.0));
        Zeroizing::new(shared.to_bytes())
    }

    /// XEdDSA signature (64 bytes) over `message`, with 64 fresh random bytes drawn
    /// from `rng` (04 §3).
    pub fn sign<R: CryptoRng + ?Sized>(&self, message: &[u8], rng: &mut R) -> [u8; 64] {
        xeddsa::sign_with_rng(&self.0, message, rng)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// A Curve25519 key pair (identity key, prekey, ratchet key, base key, signing key).
///
/// `Debug` prints the public half only; the private half zeroizes itself.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// Public half.
    pub public: PublicKey,
    /// Private half. Secret.
    pub private: PrivateKey,
}

impl KeyPair {
    /// Draws a fresh key pair from `rng` (see [`PrivateKey::generate`]).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_private(PrivateKey::generate(rng))
    }

    /// Builds the pair of a private key (computes the public half).
    pub fn from_private(private: PrivateKey) -> Self {
        Self {
            public: private.public_key(),
            private,
        }
    }
}

impl From<&crate::store::KeyPair> for KeyPair {
    /// Takes a stored pair as is (the store holds pairs we generated).
    fn from(pair: &crate::store::KeyPair) -> Self {
        Self {
            public: PublicKey(pair.public),
            private: PrivateKey::from_bytes(pair.private),
        }
    }
}

impl From<&KeyPair> for crate::store::KeyPair {
    fn from(pair: &KeyPair) -> Self {
        Self::new(pair.public.0, pair.private.0)
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public)
            .field("private", &"<redacted>")
            .finish()
    }
}

/// Our identity key pair plus registration id: what every session operation needs
/// about the local device. Built from the stored [`Credentials`](crate::store::Credentials).
#[derive(Clone, Debug)]
pub struct LocalIdentity {
    /// Identity key pair (also the ADV identity, 04 §2).
    pub key_pair: KeyPair,
    /// Registration id (sent in every `pkmsg`).
    pub registration_id: u32,
}

/// A one-time prekey we generated: id (24-bit on the wire) and key pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeyRecord {
    /// Prekey id, 1..=16 777 215 (04 §2).
    pub id: u32,
    /// The key pair.
    pub key_pair: KeyPair,
}

impl PreKeyRecord {
    /// Draws a new one-time prekey with this id.
    pub fn generate<R: CryptoRng + ?Sized>(id: u32, rng: &mut R) -> Self {
        Self {
            id,
            key_pair: KeyPair::generate(rng),
        }
    }

    /// Serializes for [`StoreBatch::put_prekey`](crate::store::StoreBatch::put_prekey)
    /// (versioned protobuf, see the `record` module). Holds the private key; zeroized on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        record::encode_prekey(self)
    }

    /// Parses a record written by [`to_bytes`](Self::to_bytes).
    ///
    /// # Errors
    /// [`SignalError::CorruptRecord`] if it does not decode.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignalError> {
        record::decode_prekey(bytes)
    }
}

/// A signed prekey we generated: id, key pair and the XEdDSA signature by our identity
/// key over `0x05 ‖ public` (04 §2).
#[derive(Clone, PartialEq, Eq)]
pub struct SignedPreKeyRecord {
    /// Signed prekey id (1 at creation in whatsmeow, Baileys and whatsapp-rust).
    pub id: u32,
    /// The key pair.
    pub key_pair: KeyPair,
    /// Signature, 64 bytes.
    pub signature: [u8; 64],
}

impl SignedPreKeyRecord {
    /// Draws a new signed prekey and signs `0x05 ‖ public` with `identity`
    /// (the key pair first, then the 64 signature random bytes, from `rng`).
    pub fn generate<R: CryptoRng + ?Sized>(id: u32, identity: &PrivateKey, rng: &mut R) -> Self {
        let key_pair = KeyPair::generate(rng);
        let signature = identity.sign(&key_pair.public.serialize(), rng);
        Self {
            id,
            key_pair,
            signature,
        }
    }

    /// True if the signature verifies with `identity` (04 §3, §10.4).
    pub fn verify(&self, identity: &PublicKey) -> bool {
        identity.verify_signature(&self.key_pair.public.serialize(), &self.signature)
    }

    /// Serializes for
    /// [`StoreBatch::put_signed_prekey`](crate::store::StoreBatch::put_signed_prekey).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        record::encode_signed_prekey(self)
    }

    /// Parses a record written by [`to_bytes`](Self::to_bytes).
    ///
    /// # Errors
    /// [`SignalError::CorruptRecord`] if it does not decode.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignalError> {
        record::decode_signed_prekey(bytes)
    }
}

impl From<&crate::store::SignedPreKey> for SignedPreKeyRecord {
    fn from(spk: &crate::store::SignedPreKey) -> Self {
        Self {
            id: spk.id,
            key_pair: KeyPair::from(&spk.key_pair),
            signature: spk.signature,
        }
    }
}

impl From<&SignedPreKeyRecord> for crate::store::SignedPreKey {
    fn from(spk: &SignedPreKeyRecord) -> Self {
        Self {
            id: spk.id,
            key_pair: (&spk.key_pair).into(),
            signature: spk.signature,
        }
    }
}

impl fmt::Debug for SignedPreKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedPreKeyRecord")
            .field("id", &self.id)
            .field("key_pair", &self.key_pair)
            .finish_non_exhaustive()
    }
}

/// A peer device's published keys, as a prekey-fetch IQ returns them
/// (shared/protocol/04-signal.md §4.4): public data only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeyBundle {
    /// The peer's registration id (`<registration>`, 4 bytes BE).
    pub registration_id: u32,
    /// The peer's identity key (`<identity>`, raw 32).
    pub identity_key: PublicKey,
    /// Signed prekey id (`<skey><id>`, 3 bytes BE).
    pub signed_prekey_id: u32,
    /// Signed prekey public key (`<skey><value>`).
    pub signed_prekey: PublicKey,
    /// Signed prekey signature (`<skey><signature>`, 64 bytes).
    pub signed_prekey_signature: [u8; 64],
    /// One-time prekey (`<key>`): id and public key; `None` when the server had none
    /// left, which gives a 3-DH X3DH and a `pkmsg` without `preKeyId` (04 §4.4, §5).
    pub prekey: Option<(u32, PublicKey)>,
}

impl PreKeyBundle {
    /// True if the signed prekey signature verifies with the bundle's identity key.
    pub fn verify_signature(&self) -> bool {
        self.identity_key.verify_signature(
            &self.signed_prekey.serialize(),
            &self.signed_prekey_signature,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialized_public_key_round_trips_and_rejects_other_types() {
        let key = PublicKey::from_bytes([7; 32]);
        let ser = key.serialize();
        assert_eq!(ser[0], 0x05);
        assert_eq!(PublicKey::from_serialized(&ser), Some(key));
        let mut wrong = ser;
        wrong[0] = 0x06;
        assert_eq!(PublicKey::from_serialized(&wrong), None);
        assert_eq!(PublicKey::from_serialized(&ser[..32]), None);
    }

    #[test]
    fn private_key_is_clamped_and_debug_redacted() {
        let key = PrivateKey::from_bytes([0xFF; 32]);
        assert_eq!(key.as_bytes()[0], 0xF8);
        assert_eq!(key.as_bytes()[31], 0x7F);
        let text = format!("{key:?}");
        assert!(!text.contains("ff") && text.contains("redacted"));
    }

    #[test]
    fn agreement_is_symmetric() {
        let a = KeyPair::from_private(PrivateKey::from_bytes([1; 32]));
        let b = KeyPair::from_private(PrivateKey::from_bytes([2; 32]));
        assert_eq!(*a.private.agree(&b.public), *b.private.agree(&a.public));
    }
}
