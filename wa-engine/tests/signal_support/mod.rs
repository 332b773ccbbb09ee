//! Shared helpers of the `signal_*` tests: vector loading, deterministic RNGs and
//! parties backed by a `Store`.

#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::path::{Path, PathBuf};

use rand_core::{TryCryptoRng, TryRng};
use serde_json::Value;
use sha2::{Digest, Sha256};
use wa_engine::signal::{
    KeyPair, PreKeyBundle, PreKeyRecord, PrivateKey, PublicKey, SignedPreKeyRecord,
};
use wa_engine::store::{Credentials, MemoryStore, Store, StoreBatch};

/// `shared/vectors/<rel>`, failing loudly if it is missing.
pub fn vector_path(rel: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors")
        .join(rel);
    assert!(
        path.exists(),
        "test vector {} is missing: the signal tests need shared/vectors beside the repository",
        path.display()
    );
    path
}

/// Parses a JSON vector file.
pub fn load_json(rel: &str) -> Value {
    let path = vector_path(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Hex string (whitespace ignored) to bytes.
pub fn unhex(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(&clean).unwrap_or_else(|e| panic!("bad hex {clean:?}: {e}"))
}

/// Hex to a fixed-size array.
pub fn unhex_n<const N: usize>(s: &str) -> [u8; N] {
    let v = unhex(s);
    v.as_slice()
        .try_into()
        .unwrap_or_else(|_| panic!("expected {N} bytes, got {}", v.len()))
}

/// A JSON string field as hex bytes.
pub fn hex_field(v: &Value, key: &str) -> Vec<u8> {
    unhex(
        v[key]
            .as_str()
            .unwrap_or_else(|| panic!("field {key} missing in {v}")),
    )
}

/// A JSON string field as a fixed-size array.
pub fn hex_field_n<const N: usize>(v: &Value, key: &str) -> [u8; N] {
    unhex_n(
        v[key]
            .as_str()
            .unwrap_or_else(|| panic!("field {key} missing in {v}")),
    )
}

/// A JSON integer field.
pub fn u32_field(v: &Value, key: &str) -> u32 {
    v[key]
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or_else(|| panic!("field {key} missing or not u32 in {v}"))
}

/// An RNG that replays scripted bytes and panics when they run out or when the test
/// ends with bytes left (checked by [`ScriptedRng::assert_drained`]).
#[derive(Default)]
pub struct ScriptedRng {
    bytes: VecDeque<u8>,
}

impl ScriptedRng {
    /// An RNG that will hand out these chunks in order.
    pub fn new<I: IntoIterator<Item = B>, B: AsRef<[u8]>>(chunks: I) -> Self {
        let mut bytes = VecDeque::new();
        for c in chunks {
            bytes.extend(c.as_ref().iter().copied());
        }
        Self { bytes }
    }

    /// Asserts every scripted byte was used.
    pub fn assert_drained(&self, what: &str) {
        assert!(
            self.bytes.is_empty(),
            "{what}: {} scripted random bytes were not drawn",
            self.bytes.len()
        );
    }
}

impl TryRng for ScriptedRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for d in dst.iter_mut() {
            *d = self
                .bytes
                .pop_front()
                .expect("scripted RNG exhausted: the code drew more randomness than recorded");
        }
        Ok(())
    }
}

impl TryCryptoRng for ScriptedRng {}

/// A deterministic CSPRNG for tests: SHA-256(seed ‖ counter) blocks.
pub struct SeededRng {
    seed: [u8; 32],
    counter: u64,
    buf: Vec<u8>,
}

impl SeededRng {
    /// A generator from a label.
    pub fn new(label: &str) -> Self {
        Self {
            seed: Sha256::digest(label.as_bytes()).into(),
            counter: 0,
            buf: Vec::new(),
        }
    }
}

impl TryRng for SeededRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for d in dst.iter_mut() {
            if self.buf.is_empty() {
                let mut h = Sha256::new();
                h.update(self.seed);
                h.update(self.counter.to_be_bytes());
                self.counter += 1;
                self.buf = h.finalize().to_vec();
            }
            *d = self.buf.remove(0);
        }
        Ok(())
    }
}

impl TryCryptoRng for SeededRng {}

/// Device credentials holding the given identity and signed prekey (noise key and ADV
/// secret are filler: the Signal layer does not use them).
pub fn credentials(
    identity: &KeyPair,
    registration_id: u32,
    spk: &SignedPreKeyRecord,
) -> Credentials {
    Credentials::new(
        wa_engine::store::KeyPair::new([0x11; 32], [0x22; 32]),
        identity.into(),
        registration_id,
        spk.into(),
        [0x33; 32],
    )
}

/// Writes credentials and one-time prekeys into `store` in one batch.
pub fn install(
    store: &dyn Store,
    identity: &KeyPair,
    registration_id: u32,
    spk: &SignedPreKeyRecord,
    prekeys: &[PreKeyRecord],
) {
    let mut batch = StoreBatch::new();
    batch.put_credentials(&credentials(identity, registration_id, spk));
    for pk in prekeys {
        batch.put_prekey(pk.id, pk.to_bytes());
    }
    store.apply(batch).expect("install keys");
}

/// A freshly generated party: its store (credentials + `prekeys` one-time prekeys with
/// ids 1..=prekeys) and what it would publish.
pub struct Party {
    pub store: MemoryStore,
    pub identity: KeyPair,
    pub registration_id: u32,
    pub spk: SignedPreKeyRecord,
    pub prekeys: Vec<PreKeyRecord>,
}

impl Party {
    pub fn generate(rng: &mut SeededRng, registration_id: u32, prekeys: u32) -> Self {
        let identity = KeyPair::generate(rng);
        let spk = SignedPreKeyRecord::generate(1, &identity.private, rng);
        let prekeys: Vec<PreKeyRecord> = (1..=prekeys)
            .map(|id| PreKeyRecord::generate(id, rng))
            .collect();
        let store = MemoryStore::new();
        install(&store, &identity, registration_id, &spk, &prekeys);
        Self {
            store,
            identity,
            registration_id,
            spk,
            prekeys,
        }
    }

    /// The bundle a server would hand out, with one-time prekey `opk` (by index) or none.
    pub fn bundle(&self, opk: Option<usize>) -> PreKeyBundle {
        PreKeyBundle {
            registration_id: self.registration_id,
            identity_key: self.identity.public,
            signed_prekey_id: self.spk.id,
            signed_prekey: self.spk.key_pair.public,
            signed_prekey_signature: self.spk.signature,
            prekey: opk.map(|i| (self.prekeys[i].id, self.prekeys[i].key_pair.public)),
        }
    }
}

/// A key pair from hex private/public, checking they match.
pub fn pair(private_hex: &str, public_hex: &str) -> KeyPair {
    let pair = KeyPair::from_private(PrivateKey::from_bytes(unhex_n(private_hex)));
    assert_eq!(
        pair.public,
        PublicKey::from_bytes(unhex_n(public_hex)),
        "recorded public key does not match its private key"
    );
    pair
}

/// Removes WhatsApp's random padding: the last byte `n` says how many bytes to drop
/// (05 §3; Baileys does not check the pad bytes).
pub fn unpad(padded: &[u8]) -> &[u8] {
    let n = usize::from(*padded.last().expect("empty plaintext"));
    assert!(n >= 1 && n <= padded.len(), "bad padding length {n}");
    &padded[..padded.len() - n]
}
