//! Wire formats of Signal ciphertexts: `msg`, `pkmsg`, `skmsg` and the sender key
//! distribution message (shared/protocol/04-signal.md §7, §9.2, §9.4).
//!
//! ```text
//! SignalMessage              0x33 ‖ protobuf ‖ MAC(8)
//! PreKeySignalMessage        0x33 ‖ protobuf              (its `message` is a SignalMessage)
//! SenderKeyMessage           0x33 ‖ protobuf ‖ XEdDSA signature(64)
//! SenderKeyDistributionMsg   0x33 ‖ protobuf
//! ```
//!
//! Protobufs are `wa_proto::wa::{SignalMessage, PreKeySignalMessage, SenderKeyMessage,
//! SenderKeyDistributionMessage}`; prost writes fields in number order, as
//! libsignal-node 6.0.0 does (`shared/vectors/signal/README.md`), and the parsers
//! accept any order. Each decoded message keeps its exact received bytes, because the
//! MAC and the signature cover them as received.

use std::fmt;
use std::str::FromStr;

use prost::Message as _;
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use wa_proto::wa;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::crypto::hmac_sha256;
use super::error::{MessageDefect, SignalError};
use super::keys::{PrivateKey, PublicKey};

/// The version byte in front of every Signal ciphertext: `(3 << 4) | 3`
/// (LSN `session_cipher.js`; LSG writes the ASCII digit `'3'`, the same byte) (04 §7.1).
pub const VERSION_BYTE: u8 = 0x33;

/// The message version this implementation speaks (high nibble of [`VERSION_BYTE`]).
const MESSAGE_VERSION: u8 = 3;

/// Length of the truncated HMAC-SHA256 after a SignalMessage (LSG
/// `protocol/SignalMessage.go` MacLength = 8).
pub const MAC_LEN: usize = 8;

/// Length of the XEdDSA signature after a SenderKeyMessage.
pub const SIGNATURE_LEN: usize = 64;

/// The `type` attribute of an `<enc>` node: which kind of ciphertext it carries
/// (04 §7.3; whatsmeow `send.go`, Baileys `src/Signal/libsignal.ts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncType {
    /// `msg`: a [`SignalMessage`] on an established session.
    Msg,
    /// `pkmsg`: a [`PreKeySignalMessage`], sent until the peer has answered.
    PkMsg,
    /// `skmsg`: a [`SenderKeyMessage`] (group).
    SkMsg,
}

impl EncType {
    /// The attribute value: `"msg"`, `"pkmsg"` or `"skmsg"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Msg => "msg",
            Self::PkMsg => "pkmsg",
            Self::SkMsg => "skmsg",
        }
    }
}

impl fmt::Display for EncType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error of [`EncType::from_str`]: the attribute is none of `msg`, `pkmsg`, `skmsg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown enc type")]
pub struct UnknownEncType;

impl FromStr for EncType {
    type Err = UnknownEncType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "msg" => Ok(Self::Msg),
            "pkmsg" => Ok(Self::PkMsg),
            "skmsg" => Ok(Self::SkMsg),
            _ => Err(UnknownEncType),
        }
    }
}

/// Checks the version byte and returns the bytes after it.
fn strip_version(bytes: &[u8]) -> Result<&[u8], MessageDefect> {
    let (&version, rest) = bytes.split_first().ok_or(MessageDefect::TooShort)?;
    if version >> 4 != MESSAGE_VERSION {
        return Err(MessageDefect::Version(version));
    }
    Ok(rest)
}

fn key_field(field: Option<Vec<u8>>, name: &'static str) -> Result<PublicKey, MessageDefect> {
    let bytes = field.ok_or(MessageDefect::MissingField(name))?;
    PublicKey::from_serialized(&bytes).ok_or(MessageDefect::BadKey(name))
}

/// A double-ratchet message (`msg`), 04 §7.2.
#[derive(Clone, PartialEq, Eq)]
pub struct SignalMessage {
    /// The sender's current ratchet public key.
    pub ratchet_key: PublicKey,
    /// Index of the message key in the sender's chain (first = 0).
    pub counter: u32,
    /// Index of the last message on the sender's previous chain (04 §6.3).
    pub previous_counter: u32,
    /// AES-256-CBC ciphertext.
    pub ciphertext: Vec<u8>,
    serialized: Vec<u8>,
}

impl SignalMessage {
    /// Builds and MACs a message: `0x33 ‖ protobuf ‖ HMAC(mac_key, sender_identity33 ‖
    /// receiver_identity33 ‖ 0x33 ‖ protobuf)[..8]`.
    pub(crate) fn new(
        mac_key: &[u8; 32],
        sender_identity: &PublicKey,
        receiver_identity: &PublicKey,
        ratchet_key: PublicKey,
        counter: u32,
        previous_counter: u32,
        ciphertext: Vec<u8>,
    ) -> Self {
        let proto = wa::SignalMessage {
            ratchet_key: Some(ratchet_key.serialize().to_vec()),
            counter: Some(counter),
            previous_counter: Some(previous_counter),
            ciphertext: Some(ciphertext.clone()),
        };
        let mut serialized = Vec::with_capacity(1 + proto.encoded_len() + MAC_LEN);
        serialized.push(VERSION_BYTE);
        serialized.extend_from_slice(&proto.encode_to_vec());
        let mac = compute_mac(mac_key, sender_identity, receiver_identity, &serialized);
        serialized.extend_from_slice(&mac);
        Self {
            ratchet_key,
            counter,
            previous_counter,
            ciphertext,
            serialized,
        }
    }

    /// Parses `0x33 ‖ protobuf ‖ MAC(8)` (the MAC is checked later, with the session's
    /// keys). `previousCounter` defaults to 0 when absent, as in libsignal.
    ///
    /// # Errors
    /// [`SignalError::InvalidMessage`]: too short, wrong version, protobuf error,
    /// missing `ratchetKey` / `counter` / `ciphertext`, or a malformed ratchet key.
    pub fn decode(bytes: &[u8]) -> Result<Self, SignalError> {
        let body = strip_version(bytes)?;
        let proto_len = body
            .len()
            .checked_sub(MAC_LEN)
            .ok_or(MessageDefect::TooShort)?;
        let proto =
            wa::SignalMessage::decode(&body[..proto_len]).map_err(|_| MessageDefect::Protobuf)?;
        Ok(Self {
            ratchet_key: key_field(proto.ratchet_key, "ratchetKey")?,
            counter: proto
                .counter
                .ok_or(MessageDefect::MissingField("counter"))?,
            previous_counter: proto.previous_counter.unwrap_or(0),
            ciphertext: proto
                .ciphertext
                .ok_or(MessageDefect::MissingField("ciphertext"))?,
            serialized: bytes.to_vec(),
        })
    }

    /// The complete message bytes (what goes in `<enc type="msg">`).
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }

    /// Checks the 8-byte MAC in constant time.
    pub(crate) fn verify_mac(
        &self,
        mac_key: &[u8; 32],
        sender_identity: &PublicKey,
        receiver_identity: &PublicKey,
    ) -> bool {
        // `decode` and `new` guarantee at least 1 + MAC_LEN bytes.
        let split = self.serialized.len().saturating_sub(MAC_LEN);
        let (body, mac) = self.serialized.split_at(split);
        let expected = compute_mac(mac_key, sender_identity, receiver_identity, body);
        expected.ct_eq(mac).into()
    }
}

impl fmt::Debug for SignalMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalMessage")
            .field("ratchet_key", &self.ratchet_key)
            .field("counter", &self.counter)
            .field("previous_counter", &self.previous_counter)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

fn compute_mac(
    mac_key: &[u8; 32],
    sender_identity: &PublicKey,
    receiver_identity: &PublicKey,
    body: &[u8],
) -> [u8; MAC_LEN] {
    let full = hmac_sha256(
        mac_key,
        &[
            &sender_identity.serialize(),
            &receiver_identity.serialize(),
            body,
        ],
    );
    let mut mac = [0_u8; MAC_LEN];
    mac.copy_from_slice(&full[..MAC_LEN]);
    mac
}

/// The first message(s) of a session (`pkmsg`), 04 §7.3: X3DH parameters plus a
/// [`SignalMessage`]. No outer MAC.
#[derive(Clone, PartialEq, Eq)]
pub struct PreKeySignalMessage {
    /// The sender's registration id.
    pub registration_id: u32,
    /// The one-time prekey used; `None` for a 3-DH setup.
    pub prekey_id: Option<u32>,
    /// The signed prekey used.
    pub signed_prekey_id: u32,
    /// The sender's base (ephemeral) key `EK_A`.
    pub base_key: PublicKey,
    /// The sender's identity key `IK_A`.
    pub identity_key: PublicKey,
    /// The embedded message.
    pub message: SignalMessage,
    serialized: Vec<u8>,
}

impl PreKeySignalMessage {
    /// Builds `0x33 ‖ protobuf` (fields written in number order 1–6).
    pub(crate) fn new(
        registration_id: u32,
        prekey_id: Option<u32>,
        signed_prekey_id: u32,
        base_key: PublicKey,
        identity_key: PublicKey,
        message: SignalMessage,
    ) -> Self {
        let proto = wa::PreKeySignalMessage {
            pre_key_id: prekey_id,
            base_key: Some(base_key.serialize().to_vec()),
            identity_key: Some(identity_key.serialize().to_vec()),
            message: Some(message.serialized.clone()),
            registration_id: Some(registration_id),
            signed_pre_key_id: Some(signed_prekey_id),
        };
        let mut serialized = Vec::with_capacity(1 + proto.encoded_len());
        serialized.push(VERSION_BYTE);
        serialized.extend_from_slice(&proto.encode_to_vec());
        Self {
            registration_id,
            prekey_id,
            signed_prekey_id,
            base_key,
            identity_key,
            message,
            serialized,
        }
    }

    /// Parses `0x33 ‖ protobuf` and the embedded SignalMessage. A `preKeyId` of 0 is
    /// read as absent (LSG does the same; real ids start at 1); an absent
    /// `registrationId` reads as 0 (libsignal).
    ///
    /// # Errors
    /// [`SignalError::InvalidMessage`]: wrong version, protobuf error, a missing
    /// `baseKey` / `identityKey` / `message` / `signedPreKeyId`, a malformed key, or a
    /// malformed embedded message.
    pub fn decode(bytes: &[u8]) -> Result<Self, SignalError> {
        let body = strip_version(bytes)?;
        let proto = wa::PreKeySignalMessage::decode(body).map_err(|_| MessageDefect::Protobuf)?;
        let inner = proto
            .message
            .ok_or(MessageDefect::MissingField("message"))?;
        Ok(Self {
            registration_id: proto.registration_id.unwrap_or(0),
            prekey_id: proto.pre_key_id.filter(|&id| id != 0),
            signed_prekey_id: proto
                .signed_pre_key_id
                .ok_or(MessageDefect::MissingField("signedPreKeyId"))?,
            base_key: key_field(proto.base_key, "baseKey")?,
            identity_key: key_field(proto.identity_key, "identityKey")?,
            message: SignalMessage::decode(&inner)?,
            serialized: bytes.to_vec(),
        })
    }

    /// The complete message bytes (what goes in `<enc type="pkmsg">`).
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

impl fmt::Debug for PreKeySignalMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreKeySignalMessage")
            .field("registration_id", &self.registration_id)
            .field("prekey_id", &self.prekey_id)
            .field("signed_prekey_id", &self.signed_prekey_id)
            .field("base_key", &self.base_key)
            .field("identity_key", &self.identity_key)
            .field("message", &self.message)
            .finish()
    }
}

/// A group message encrypted with a sender key (`skmsg`), 04 §9.4.
#[derive(Clone, PartialEq, Eq)]
pub struct SenderKeyMessage {
    /// Sender key id.
    pub key_id: u32,
    /// Chain iteration of the message key.
    pub iteration: u32,
    /// AES-256-CBC ciphertext.
    pub ciphertext: Vec<u8>,
    serialized: Vec<u8>,
}

impl SenderKeyMessage {
    /// Builds `0x33 ‖ protobuf ‖ Sign(signing_key, 0x33 ‖ protobuf)`, drawing the 64
    /// signature random bytes from `rng`.
    pub(crate) fn new<R: CryptoRng + ?Sized>(
        key_id: u32,
        iteration: u32,
        ciphertext: Vec<u8>,
        signing_key: &PrivateKey,
        rng: &mut R,
    ) -> Self {
        let proto = wa::SenderKeyMessage {
            id: Some(key_id),
            iteration: Some(iteration),
            ciphertext: Some(ciphertext.clone()),
        };
        let mut serialized = Vec::with_capacity(1 + proto.encoded_len() + SIGNATURE_LEN);
        serialized.push(VERSION_BYTE);
        serialized.extend_from_slice(&proto.encode_to_vec());
        let signature = signing_key.sign(&serialized, rng);
        serialized.extend_from_slice(&signature);
        Self {
            key_id,
            iteration,
            ciphertext,
            serialized,
        }
    }

    /// Parses `0x33 ‖ protobuf ‖ signature(64)`; the signature is checked later with
    /// the sender key state's signing key.
    ///
    /// # Errors
    /// [`SignalError::InvalidMessage`]: too short, wrong version, protobuf error, or a
    /// missing `id` / `iteration` / `ciphertext`.
    pub fn decode(bytes: &[u8]) -> Result<Self, SignalError> {
        let body = strip_version(bytes)?;
        let proto_len = body
            .len()
            .checked_sub(SIGNATURE_LEN)
            .ok_or(MessageDefect::TooShort)?;
        let proto = wa::SenderKeyMessage::decode(&body[..proto_len])
            .map_err(|_| MessageDefect::Protobuf)?;
        Ok(Self {
            key_id: proto.id.ok_or(MessageDefect::MissingField("id"))?,
            iteration: proto
                .iteration
                .ok_or(MessageDefect::MissingField("iteration"))?,
            ciphertext: proto
                .ciphertext
                .ok_or(MessageDefect::MissingField("ciphertext"))?,
            serialized: bytes.to_vec(),
        })
    }

    /// The complete message bytes (what goes in `<enc type="skmsg">`).
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }

    /// The signed part: everything before the signature (`0x33 ‖ protobuf`).
    pub fn signed_part(&self) -> &[u8] {
        let split = self.serialized.len().saturating_sub(SIGNATURE_LEN);
        &self.serialized[..split]
    }

    /// True if the signature verifies with the sender's signing key.
    pub fn verify_signature(&self, signing_key: &PublicKey) -> bool {
        let split = self.serialized.len().saturating_sub(SIGNATURE_LEN);
        let (body, signature) = self.serialized.split_at(split);
        let Ok(signature) = <&[u8; SIGNATURE_LEN]>::try_from(signature) else {
            return false;
        };
        signing_key.verify_signature(body, signature)
    }
}

impl fmt::Debug for SenderKeyMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderKeyMessage")
            .field("key_id", &self.key_id)
            .field("iteration", &self.iteration)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// A sender key handed to group members (SKDM), 04 §9.2: `0x33 ‖ protobuf{id,
/// iteration, chainKey, signingKey}`, no signature. It carries the chain key, so it is
/// secret: `Debug` redacts it and it zeroizes on drop. It travels pairwise-encrypted
/// inside `Message.senderKeyDistributionMessage.axolotlSenderKeyDistributionMessage`.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SenderKeyDistributionMessage {
    /// Sender key id.
    pub key_id: u32,
    /// The sender's next-to-use iteration.
    pub iteration: u32,
    /// The chain key at `iteration`, 32 bytes. Secret.
    pub chain_key: [u8; 32],
    /// The sender's signing public key.
    #[zeroize(skip)]
    pub signing_key: PublicKey,
    serialized: Vec<u8>,
}

impl SenderKeyDistributionMessage {
    /// Builds the message bytes.
    pub(crate) fn new(
        key_id: u32,
        iteration: u32,
        chain_key: [u8; 32],
        signing_key: PublicKey,
    ) -> Self {
        let mut proto = wa::SenderKeyDistributionMessage {
            id: Some(key_id),
            iteration: Some(iteration),
            chain_key: Some(chain_key.to_vec()),
            signing_key: Some(signing_key.serialize().to_vec()),
        };
        let mut serialized = Vec::with_capacity(1 + proto.encoded_len());
        serialized.push(VERSION_BYTE);
        serialized.extend_from_slice(&Zeroizing::new(proto.encode_to_vec()));
        if let Some(ck) = proto.chain_key.as_mut() {
            ck.zeroize();
        }
        Self {
            key_id,
            iteration,
            chain_key,
            signing_key,
            serialized,
        }
    }

    /// Parses the message bytes.
    ///
    /// # Errors
    /// [`SignalError::InvalidMessage`]: wrong version, protobuf error, a missing field,
    /// a chain key that is not 32 bytes, or a malformed signing key.
    pub fn decode(bytes: &[u8]) -> Result<Self, SignalError> {
        let body = strip_version(bytes)?;
        let mut proto =
            wa::SenderKeyDistributionMessage::decode(body).map_err(|_| MessageDefect::Protobuf)?;
        let chain_key = proto
            .chain_key
            .as_deref()
            .ok_or(MessageDefect::MissingField("chainKey"))?
            .try_into()
            .map_err(|_| MessageDefect::BadChainKey);
        if let Some(ck) = proto.chain_key.as_mut() {
            ck.zeroize();
        }
        Ok(Self {
            key_id: proto.id.ok_or(MessageDefect::MissingField("id"))?,
            iteration: proto
                .iteration
                .ok_or(MessageDefect::MissingField("iteration"))?,
            chain_key: chain_key?,
            signing_key: key_field(proto.signing_key.take(), "signingKey")?,
            serialized: bytes.to_vec(),
        })
    }

    /// The complete message bytes.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

impl fmt::Debug for SenderKeyDistributionMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderKeyDistributionMessage")
            .field("key_id", &self.key_id)
            .field("iteration", &self.iteration)
            .field("signing_key", &self.signing_key)
            .finish_non_exhaustive()
    }
}
