//! On-disk formats of Signal records: sessions, one-time and signed prekeys, sender
//! keys. Each is a protobuf (prost) with a record version in field 1.
//!
//! Evolution rule (as for the store's credentials record): fields are only ever added
//! with new tag numbers; readers ignore unknown tags. A version of 0 (absent) means the
//! bytes were not written by us and is rejected. Keys are raw 32-byte values (public
//! keys without the 0x05 prefix). Every intermediate buffer holding secrets is zeroized.

use std::collections::VecDeque;

use prost::Message as _;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::error::SignalError;
use super::group::{SenderKeyRecord, SenderKeyState};
use super::keys::{KeyPair, PreKeyRecord, PrivateKey, PublicKey, SignedPreKeyRecord};
use super::ratchet::{
    ChainKey, PendingPreKey, ReceiverChain, SenderChain, SessionState, SkippedKey,
};
use super::session::SessionRecord;

/// Version written in field 1 of every record.
const RECORD_VERSION: u32 = 1;

#[derive(Clone, PartialEq, prost::Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
struct SessionRecordProto {
    #[prost(uint32, tag = "1")]
    version: u32,
    #[prost(message, optional, tag = "2")]
    current: Option<SessionStateProto>,
    #[prost(message, repeated, tag = "3")]
    previous: Vec<SessionStateProto>,
}

#[derive(Clone, PartialEq, prost::Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
struct SessionStateProto {
    #[prost(bytes = "vec", tag = "1")]
    local_identity: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    remote_identity: Vec<u8>,
    #[prost(uint32, tag = "3")]
    local_registration_id: u32,
    #[prost(uint32, tag = "4")]
    remote_registration_id: u32,
    #[prost(bytes = "vec", tag = "5")]
    root_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "6")]
    base_key: Vec<u8>,
    #[prost(message, optional, tag = "7")]
    sender: Option<SenderChainProto>,
    #[prost(message, repeated, tag = "8")]
    receivers: Vec<ReceiverChainProto>,
    #[prost(uint32, tag = "9")]
    previous_counter: u32,
    #[prost(message, optional, tag = "10")]
    pending_prekey: Option<PendingPreKeyProto>,
}

#[derive(Clone, PartialEq, prost::Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
struct SenderChainProto {
    #[prost(bytes = "vec", tag = "1")]
    ratchet_public: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    ratchet_private: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    chain_key: Vec<u8>,
    #[prost(uint32, tag = "4")]
    index: u32,
}

#[derive(Clone, PartialEq, prost::Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
struct ReceiverChainProto {
    #[prost(bytes = "vec", tag = "1")]
    ratchet: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    chain_key: Vec<u8>,
    #[prost(uint32, tag = "3")]
    index: u32,
    #[prost(message, repeated, tag = "4")]
    skipped: Vec<SkippedKeyProto>,
}

#[derive(Clone, PartialEq, prost::Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
struct SkippedKeyProto {
    #[prost(uint32, tag = "1")]
    counter: u32,
    #[prost(bytes = "vec", tag = "2")]
    seed: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
struct PendingPreKeyProto {
    #[prost(uint32, optional, tag = "1")]
    prekey_id: Option<u32>,
    #[prost(uint32, tag = "2")]
    signed_prekey_id: u32,
    #[prost(bytes = "vec", tag = "3")]
    base_key: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
struct PreKeyProto {
    #[prost(uint32, tag = "1")]
    version: u32,
    #[prost(uint32, tag = "2")]
    id: u32,
    #[prost(bytes = "vec", tag = "3")]
    public: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    private: Vec<u8>,
    #[prost(bytes = "vec", tag = "5")]
    signature: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
struct SenderKeyRecordProto {
    #[prost(uint32, tag = "1")]
    version: u32,
    #[prost(message, repeated, tag = "2")]
    states: Vec<SenderKeyStateProto>,
}

#[derive(Clone, PartialEq, prost::Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
struct SenderKeyStateProto {
    #[prost(uint32, tag = "1")]
    key_id: u32,
    #[prost(uint32, tag = "2")]
    iteration: u32,
    #[prost(bytes = "vec", tag = "3")]
    chain_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    signing_public: Vec<u8>,
    #[prost(bytes = "vec", optional, tag = "5")]
    signing_private: Option<Vec<u8>>,
    #[prost(message, repeated, tag = "6")]
    skipped: Vec<SkippedKeyProto>,
}

macro_rules! opaque_debug {
    ($($t:ty),*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($t), "(<redacted>)"))
            }
        }
    )*};
}
opaque_debug!(
    SessionRecordProto,
    SessionStateProto,
    SenderChainProto,
    ReceiverChainProto,
    SkippedKeyProto,
    PendingPreKeyProto,
    PreKeyProto,
    SenderKeyRecordProto,
    SenderKeyStateProto
);

fn encode(message: &impl prost::Message) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(message.encode_to_vec())
}

/// Reads a 32-byte field or fails with `CorruptRecord { what }`.
fn bytes32(field: &[u8], what: &'static str) -> Result<[u8; 32], SignalError> {
    field
        .try_into()
        .map_err(|_| SignalError::CorruptRecord { what })
}

fn public(field: &[u8], what: &'static str) -> Result<PublicKey, SignalError> {
    bytes32(field, what).map(PublicKey::from_bytes)
}

fn chain(key: &[u8], index: u32, what: &'static str) -> Result<ChainKey, SignalError> {
    Ok(ChainKey {
        key: bytes32(key, what)?,
        index,
    })
}

fn skipped_to_proto(keys: &VecDeque<SkippedKey>) -> Vec<SkippedKeyProto> {
    keys.iter()
        .map(|k| SkippedKeyProto {
            counter: k.counter,
            seed: k.seed.to_vec(),
        })
        .collect()
}

fn skipped_from_proto(
    keys: &[SkippedKeyProto],
    what: &'static str,
) -> Result<VecDeque<SkippedKey>, SignalError> {
    keys.iter()
        .map(|k| {
            Ok(SkippedKey {
                counter: k.counter,
                seed: bytes32(&k.seed, what)?,
            })
        })
        .collect()
}

fn state_to_proto(s: &SessionState) -> SessionStateProto {
    SessionStateProto {
        local_identity: s.local_identity.as_bytes().to_vec(),
        remote_identity: s.remote_identity.as_bytes().to_vec(),
        local_registration_id: s.local_registration_id,
        remote_registration_id: s.remote_registration_id,
        root_key: s.root_key.to_vec(),
        base_key: s.base_key.as_bytes().to_vec(),
        sender: Some(SenderChainProto {
            ratchet_public: s.sender.ratchet.public.as_bytes().to_vec(),
            ratchet_private: s.sender.ratchet.private.as_bytes().to_vec(),
            chain_key: s.sender.chain.key.to_vec(),
            index: s.sender.chain.index,
        }),
        receivers: s
            .receivers
            .iter()
            .map(|c| ReceiverChainProto {
                ratchet: c.ratchet.as_bytes().to_vec(),
                chain_key: c.chain.key.to_vec(),
                index: c.chain.index,
                skipped: skipped_to_proto(&c.skipped),
            })
            .collect(),
        previous_counter: s.previous_counter,
        pending_prekey: s.pending_prekey.as_ref().map(|p| PendingPreKeyProto {
            prekey_id: p.prekey_id,
            signed_prekey_id: p.signed_prekey_id,
            base_key: p.base_key.as_bytes().to_vec(),
        }),
    }
}

fn state_from_proto(p: &SessionStateProto) -> Result<SessionState, SignalError> {
    const WHAT: &str = "session record";
    let sender = p
        .sender
        .as_ref()
        .ok_or(SignalError::CorruptRecord { what: WHAT })?;
    let private = PrivateKey::from_bytes(bytes32(&sender.ratchet_private, WHAT)?);
    Ok(SessionState {
        local_identity: public(&p.local_identity, WHAT)?,
        remote_identity: public(&p.remote_identity, WHAT)?,
        local_registration_id: p.local_registration_id,
        remote_registration_id: p.remote_registration_id,
        root_key: bytes32(&p.root_key, WHAT)?,
        base_key: public(&p.base_key, WHAT)?,
        sender: SenderChain {
            ratchet: KeyPair {
                public: public(&sender.ratchet_public, WHAT)?,
                private,
            },
            chain: chain(&sender.chain_key, sender.index, WHAT)?,
        },
        receivers: p
            .receivers
            .iter()
            .map(|c| {
                Ok(ReceiverChain {
                    ratchet: public(&c.ratchet, WHAT)?,
                    chain: chain(&c.chain_key, c.index, WHAT)?,
                    skipped: skipped_from_proto(&c.skipped, WHAT)?,
                })
            })
            .collect::<Result<_, SignalError>>()?,
        previous_counter: p.previous_counter,
        pending_prekey: p
            .pending_prekey
            .as_ref()
            .map(|pp| {
                Ok::<_, SignalError>(PendingPreKey {
                    prekey_id: pp.prekey_id,
                    signed_prekey_id: pp.signed_prekey_id,
                    base_key: public(&pp.base_key, WHAT)?,
                })
            })
            .transpose()?,
    })
}

/// Serializes a session record.
pub(crate) fn encode_session(record: &SessionRecord) -> Zeroizing<Vec<u8>> {
    encode(&SessionRecordProto {
        version: RECORD_VERSION,
        current: record.current.as_ref().map(state_to_proto),
        previous: record.previous.iter().map(state_to_proto).collect(),
    })
}

/// Parses a session record.
pub(crate) fn decode_session(bytes: &[u8]) -> Result<SessionRecord, SignalError> {
    const CORRUPT: SignalError = SignalError::CorruptRecord {
        what: "session record",
    };
    let proto = SessionRecordProto::decode(bytes).map_err(|_| CORRUPT)?;
    if proto.version == 0 {
        return Err(CORRUPT);
    }
    Ok(SessionRecord {
        current: proto.current.as_ref().map(state_from_proto).transpose()?,
        previous: proto
            .previous
            .iter()
            .map(state_from_proto)
            .collect::<Result<_, _>>()?,
    })
}

fn decode_key_record(bytes: &[u8], what: &'static str) -> Result<PreKeyProto, SignalError> {
    let proto = PreKeyProto::decode(bytes).map_err(|_| SignalError::CorruptRecord { what })?;
    if proto.version == 0 {
        return Err(SignalError::CorruptRecord { what });
    }
    Ok(proto)
}

fn key_pair(proto: &PreKeyProto, what: &'static str) -> Result<KeyPair, SignalError> {
    Ok(KeyPair {
        public: public(&proto.public, what)?,
        private: PrivateKey::from_bytes(bytes32(&proto.private, what)?),
    })
}

/// Serializes a one-time prekey record.
pub(crate) fn encode_prekey(record: &PreKeyRecord) -> Zeroizing<Vec<u8>> {
    encode(&PreKeyProto {
        version: RECORD_VERSION,
        id: record.id,
        public: record.key_pair.public.as_bytes().to_vec(),
        private: record.key_pair.private.as_bytes().to_vec(),
        signature: Vec::new(),
    })
}

/// Parses a one-time prekey record.
pub(crate) fn decode_prekey(bytes: &[u8]) -> Result<PreKeyRecord, SignalError> {
    const WHAT: &str = "prekey record";
    let proto = decode_key_record(bytes, WHAT)?;
    Ok(PreKeyRecord {
        id: proto.id,
        key_pair: key_pair(&proto, WHAT)?,
    })
}

/// Serializes a signed prekey record.
pub(crate) fn encode_signed_prekey(record: &SignedPreKeyRecord) -> Zeroizing<Vec<u8>> {
    encode(&PreKeyProto {
        version: RECORD_VERSION,
        id: record.id,
        public: record.key_pair.public.as_bytes().to_vec(),
        private: record.key_pair.private.as_bytes().to_vec(),
        signature: record.signature.to_vec(),
    })
}

/// Parses a signed prekey record.
pub(crate) fn decode_signed_prekey(bytes: &[u8]) -> Result<SignedPreKeyRecord, SignalError> {
    const WHAT: &str = "signed prekey record";
    let proto = decode_key_record(bytes, WHAT)?;
    Ok(SignedPreKeyRecord {
        id: proto.id,
        key_pair: key_pair(&proto, WHAT)?,
        signature: proto
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| SignalError::CorruptRecord { what: WHAT })?,
    })
}

/// Serializes a sender key record.
pub(crate) fn encode_sender_key(record: &SenderKeyRecord) -> Zeroizing<Vec<u8>> {
    encode(&SenderKeyRecordProto {
        version: RECORD_VERSION,
        states: record
            .states
            .iter()
            .map(|s| SenderKeyStateProto {
                key_id: s.key_id,
                iteration: s.chain.index,
                chain_key: s.chain.key.to_vec(),
                signing_public: s.signing_public.as_bytes().to_vec(),
                signing_private: s.signing_private.as_ref().map(|k| k.as_bytes().to_vec()),
                skipped: skipped_to_proto(&s.skipped),
            })
            .collect(),
    })
}

/// Parses a sender key record.
pub(crate) fn decode_sender_key(bytes: &[u8]) -> Result<SenderKeyRecord, SignalError> {
    const WHAT: &str = "sender key record";
    let proto = SenderKeyRecordProto::decode(bytes)
        .map_err(|_| SignalError::CorruptRecord { what: WHAT })?;
    if proto.version == 0 {
        return Err(SignalError::CorruptRecord { what: WHAT });
    }
    let states = proto
        .states
        .iter()
        .map(|s| {
            Ok(SenderKeyState {
                key_id: s.key_id,
                chain: chain(&s.chain_key, s.iteration, WHAT)?,
                signing_public: public(&s.signing_public, WHAT)?,
                signing_private: s
                    .signing_private
                    .as_deref()
                    .map(|k| bytes32(k, WHAT).map(PrivateKey::from_bytes))
                    .transpose()?,
                skipped: skipped_from_proto(&s.skipped, WHAT)?,
            })
        })
        .collect::<Result<_, SignalError>>()?;
    Ok(SenderKeyRecord { states })
}
