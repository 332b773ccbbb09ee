//! The device credentials record: everything a companion needs to log in again.
//!
//! Which items a companion keeps comes from shared/protocol/03-pairing-login.md §1
//! (created before the first connect) and §4.7 step 8 (added by pair-success), checked
//! against whatsmeow `store/store.go` (`Device`) and `store/sqlstore/upgrades/00-latest-schema.sql`
//! (`whatsmeow_device`).
//!
//! On disk the record is a protobuf message (prost) with a record version in field 1.
//! Evolution rule: fields are only ever *added* with new tag numbers; a reader ignores
//! tags it does not know, so an older build reads a newer record. (An older build
//! that rewrites the record drops the fields it does not know.) A change that cannot
//! follow this rule bumps the store's [`SCHEMA_VERSION`](super::SCHEMA_VERSION).

use std::fmt;

use prost::Message as _;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::StoreError;

/// Version written in field 1 of the credentials record. Readers accept any version
/// from 1 up (see the module docs for the evolution rule); 0 (absent) means the bytes
/// were not written by us.
pub const CREDENTIALS_RECORD_VERSION: u32 = 1;

/// Writes `bytes` as lowercase hex (for Debug of public values only).
fn hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

/// Debug helper printing public bytes as hex.
struct Hex<'a>(&'a [u8]);

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex(f, self.0)
    }
}

/// An X25519 key pair as raw bytes: 32-byte public key (u-coordinate, little-endian)
/// and 32-byte clamped private scalar (shared/protocol/04-signal.md §1).
///
/// `Debug` prints the public key only; the pair is zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct KeyPair {
    /// Public key, 32 bytes.
    pub public: [u8; 32],
    /// Private key, 32 bytes. Secret.
    pub private: [u8; 32],
}

impl KeyPair {
    /// Builds a key pair from its raw halves. No check that `public` matches `private`
    /// is made here (the store knows no curve arithmetic).
    pub fn new(public: [u8; 32], private: [u8; 32]) -> Self {
        Self { public, private }
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &Hex(&self.public))
            .field("private", &"<redacted>")
            .finish()
    }
}

/// The device's signed prekey: id, X25519 pair and the 64-byte XEdDSA signature by the
/// identity key over `0x05 || public` (shared/protocol/04-signal.md §2; id 1 at
/// creation in whatsmeow, Baileys and whatsapp-rust).
#[derive(Clone, PartialEq, Eq)]
pub struct SignedPreKey {
    /// Signed prekey id (24-bit on the wire: sent as 3 bytes).
    pub id: u32,
    /// The key pair (private half zeroized on drop).
    pub key_pair: KeyPair,
    /// Signature, 64 bytes.
    pub signature: [u8; 64],
}

impl fmt::Debug for SignedPreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedPreKey")
            .field("id", &self.id)
            .field("key_pair", &self.key_pair)
            .field("signature", &Hex(&self.signature))
            .finish()
    }
}

/// Device credentials: the long-term keys created before the first connect, plus what
/// pair-success adds (shared/protocol/03-pairing-login.md §1, §4.7 step 8).
///
/// Build an unpaired record with [`Credentials::new`], then set the pairing fields.
/// `Debug` redacts every private key and the ADV secret; secrets are zeroized on drop.
/// Persist with [`StoreBatch::put_credentials`](super::StoreBatch::put_credentials),
/// read with [`Store::credentials`](super::Store::credentials).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Credentials {
    /// Noise static key pair `s` (shared/protocol/01 §4.4); persistent.
    pub noise_key: KeyPair,
    /// Signal identity key pair; also signs the ADV device identity.
    pub identity_key: KeyPair,
    /// Signal registration id (sent as 4 bytes big-endian; see 04-signal.md §2 on its range).
    pub registration_id: u32,
    /// The signed prekey currently uploaded.
    pub signed_prekey: SignedPreKey,
    /// ADV secret, 32 bytes: HMAC key checking pair-success (03 §4.7 step 3). Secret.
    pub adv_secret_key: [u8; 32],
    /// Own phone-number AD JID after pairing, in `Jid` display form, e.g.
    /// `559984726662:77@s.whatsapp.net` (pair-success `<device jid>`). `None` = unpaired.
    pub id: Option<String>,
    /// Own LID AD JID after pairing, e.g. `236395184570386:77@lid` (pair-success
    /// `<device lid>`, also `<success lid>`).
    pub lid: Option<String>,
    /// The account's serialized `ADVSignedDeviceIdentity` *with* `accountSignatureKey`
    /// (03 §4.7 step 8; the reply omits the key, the stored copy keeps it).
    pub account: Option<Vec<u8>>,
    /// Primary device's platform from pair-success `<platform name>` (e.g. `android`).
    pub platform: String,
    /// Business name from pair-success `<biz name>`; empty for personal accounts.
    pub business_name: String,
    /// Own push name (display name) once known (from app state / presence); may be empty.
    pub push_name: String,
}

impl Credentials {
    /// A fresh, unpaired record: key material only, every pairing field empty.
    pub fn new(
        noise_key: KeyPair,
        identity_key: KeyPair,
        registration_id: u32,
        signed_prekey: SignedPreKey,
        adv_secret_key: [u8; 32],
    ) -> Self {
        Self {
            noise_key,
            identity_key,
            registration_id,
            signed_prekey,
            adv_secret_key,
            id: None,
            lid: None,
            account: None,
            platform: String::new(),
            business_name: String::new(),
            push_name: String::new(),
        }
    }

    /// True once pair-success has been processed (own JID known).
    pub fn is_paired(&self) -> bool {
        self.id.is_some()
    }

    /// Serializes the record (protobuf, see the module docs). The buffer holds private
    /// keys and is zeroized on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let record = Record {
            version: CREDENTIALS_RECORD_VERSION,
            noise_public: self.noise_key.public.to_vec(),
            noise_private: self.noise_key.private.to_vec(),
            identity_public: self.identity_key.public.to_vec(),
            identity_private: self.identity_key.private.to_vec(),
            registration_id: self.registration_id,
            signed_prekey_id: self.signed_prekey.id,
            signed_prekey_public: self.signed_prekey.key_pair.public.to_vec(),
            signed_prekey_private: self.signed_prekey.key_pair.private.to_vec(),
            signed_prekey_signature: self.signed_prekey.signature.to_vec(),
            adv_secret_key: self.adv_secret_key.to_vec(),
            id: self.id.clone(),
            lid: self.lid.clone(),
            account: self.account.clone(),
            platform: self.platform.clone(),
            business_name: self.business_name.clone(),
            push_name: self.push_name.clone(),
        };
        Zeroizing::new(record.encode_to_vec())
    }

    /// Parses a record written by [`to_bytes`](Self::to_bytes) (this or a newer build).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] with `what = "credentials record"` if the protobuf does
    /// not decode, the version is missing, or a key/signature has the wrong length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        const CORRUPT: StoreError = StoreError::Corrupt {
            what: "credentials record",
        };
        let record = Record::decode(bytes).map_err(|_| CORRUPT)?;
        if record.version == 0 {
            return Err(CORRUPT);
        }
        let pair = |public: &[u8], private: &[u8]| -> Result<KeyPair, StoreError> {
            Ok(KeyPair {
                public: public.try_into().map_err(|_| CORRUPT)?,
                private: private.try_into().map_err(|_| CORRUPT)?,
            })
        };
        Ok(Self {
            noise_key: pair(&record.noise_public, &record.noise_private)?,
            identity_key: pair(&record.identity_public, &record.identity_private)?,
            registration_id: record.registration_id,
            signed_prekey: SignedPreKey {
                id: record.signed_prekey_id,
                key_pair: pair(&record.signed_prekey_public, &record.signed_prekey_private)?,
                signature: record
                    .signed_prekey_signature
                    .as_slice()
                    .try_into()
                    .map_err(|_| CORRUPT)?,
            },
            adv_secret_key: record
                .adv_secret_key
                .as_slice()
                .try_into()
                .map_err(|_| CORRUPT)?,
            id: record.id.clone(),
            lid: record.lid.clone(),
            account: record.account.clone(),
            platform: record.platform.clone(),
            business_name: record.business_name.clone(),
            push_name: record.push_name.clone(),
        })
    }
}

impl Drop for Credentials {
    fn drop(&mut self) {
        // Key pairs zeroize themselves.
        self.adv_secret_key.zeroize();
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("noise_key", &self.noise_key)
            .field("identity_key", &self.identity_key)
            .field("registration_id", &self.registration_id)
            .field("signed_prekey", &self.signed_prekey)
            .field("adv_secret_key", &"<redacted>")
            .field("id", &self.id)
            .field("lid", &self.lid)
            .field("account", &self.account.as_ref().map(|a| Hex(a)))
            .field("platform", &self.platform)
            .field("business_name", &self.business_name)
            .field("push_name", &self.push_name)
            .finish()
    }
}

/// On-disk form of [`Credentials`]. Tag numbers are frozen; add new fields with new tags.
#[derive(Clone, PartialEq, prost::Message)]
#[prost(skip_debug)]
struct Record {
    #[prost(uint32, tag = "1")]
    version: u32,
    #[prost(bytes = "vec", tag = "2")]
    noise_public: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    noise_private: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    identity_public: Vec<u8>,
    #[prost(bytes = "vec", tag = "5")]
    identity_private: Vec<u8>,
    #[prost(uint32, tag = "6")]
    registration_id: u32,
    #[prost(uint32, tag = "7")]
    signed_prekey_id: u32,
    #[prost(bytes = "vec", tag = "8")]
    signed_prekey_public: Vec<u8>,
    #[prost(bytes = "vec", tag = "9")]
    signed_prekey_private: Vec<u8>,
    #[prost(bytes = "vec", tag = "10")]
    signed_prekey_signature: Vec<u8>,
    #[prost(bytes = "vec", tag = "11")]
    adv_secret_key: Vec<u8>,
    #[prost(string, optional, tag = "12")]
    id: Option<String>,
    #[prost(string, optional, tag = "13")]
    lid: Option<String>,
    #[prost(bytes = "vec", optional, tag = "14")]
    account: Option<Vec<u8>>,
    #[prost(string, tag = "15")]
    platform: String,
    #[prost(string, tag = "16")]
    business_name: String,
    #[prost(string, tag = "17")]
    push_name: String,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        self.noise_private.zeroize();
        self.identity_private.zeroize();
        self.signed_prekey_private.zeroize();
        self.adv_secret_key.zeroize();
    }
}

/// Bookkeeping for one-time prekeys, kept next to them (whatsmeow
/// `store/sqlstore/store.go` getNextPreKeyID / MarkPreKeysAsUploaded; Baileys
/// `nextPreKeyId` / `firstUnuploadedPreKeyId` in `src/Utils/signal.ts`).
///
/// Ids come from a persistent, monotonically increasing counter
/// (shared/protocol/04-signal.md §2): write the new prekeys *and* the advanced
/// counters in one [`StoreBatch`](super::StoreBatch) before uploading them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PreKeyCounters {
    /// Id the next generated one-time prekey gets (1 in a new store).
    pub next_id: u32,
    /// Lowest id not yet uploaded: ids below it were accepted by the server.
    pub first_unuploaded_id: u32,
}

impl Default for PreKeyCounters {
    /// Both counters at 1: prekey ids start at 1 (whatsmeow and Baileys).
    fn default() -> Self {
        Self {
            next_id: 1,
            first_unuploaded_id: 1,
        }
    }
}

impl PreKeyCounters {
    /// Serializes the counters (protobuf: next_id = 1, first_unuploaded_id = 2).
    pub(crate) fn to_bytes(self) -> Vec<u8> {
        CountersRecord {
            next_id: Some(self.next_id),
            first_unuploaded_id: Some(self.first_unuploaded_id),
        }
        .encode_to_vec()
    }

    /// Parses counters written by [`to_bytes`](Self::to_bytes).
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        const CORRUPT: StoreError = StoreError::Corrupt {
            what: "prekey counters record",
        };
        let r = CountersRecord::decode(bytes).map_err(|_| CORRUPT)?;
        Ok(Self {
            next_id: r.next_id.ok_or(CORRUPT)?,
            first_unuploaded_id: r.first_unuploaded_id.ok_or(CORRUPT)?,
        })
    }
}

/// On-disk form of [`PreKeyCounters`]; fields are explicit-presence so a record that
/// lacks one is detected rather than read as 0.
#[derive(Clone, PartialEq, prost::Message)]
struct CountersRecord {
    #[prost(uint32, optional, tag = "1")]
    next_id: Option<u32>,
    #[prost(uint32, optional, tag = "2")]
    first_unuploaded_id: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Credentials {
        let mut c = Credentials::new(
            KeyPair::new([1; 32], [2; 32]),
            KeyPair::new([3; 32], [4; 32]),
            12_345,
            SignedPreKey {
                id: 1,
                key_pair: KeyPair::new([5; 32], [6; 32]),
                signature: [7; 64],
            },
            [8; 32],
        );
        c.id = Some("559984726662:77@s.whatsapp.net".into());
        c.account = Some(vec![9; 10]);
        c
    }

    #[test]
    fn debug_redacts_private_keys_and_adv_secret() {
        let s = format!("{:?}", sample());
        for secret in ["0202", "0404", "0606", "0808"] {
            assert!(!s.contains(secret), "{secret} leaked in {s}");
        }
        assert!(s.contains("<redacted>"));
        assert!(s.contains("0101"), "public key should be visible");
    }

    #[test]
    fn credentials_round_trip_through_bytes() {
        let c = sample();
        assert_eq!(Credentials::from_bytes(&c.to_bytes()).ok(), Some(c));
    }

    #[test]
    fn counters_without_fields_are_corrupt() {
        assert!(PreKeyCounters::from_bytes(&[]).is_err());
        let c = PreKeyCounters {
            next_id: 0,
            first_unuploaded_id: 7,
        };
        assert_eq!(PreKeyCounters::from_bytes(&c.to_bytes()).ok(), Some(c));
    }
}
