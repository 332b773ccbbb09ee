//! The sandbox server's Noise identity: its static key pair and the certificate chain
//! root -> intermediate -> leaf that certifies it (shared/protocol/01 §5.4).

use rand::rngs::StdRng;
use wa_engine::noise::{KeyPair, build_cert_chain};
use zeroize::Zeroizing;

/// Serial of the sandbox root. Clients require intermediate.issuerSerial == 0
/// (whatsmeow handshake.go `verifyServerCert`; shared/protocol/01 §5.2).
pub(crate) const ROOT_SERIAL: u32 = 0;

/// How far before "now" the certificates become valid, seconds (30 days): tolerates
/// clients whose clock is behind a fixed sandbox clock.
const VALID_BEFORE: u64 = 30 * 24 * 3600;

/// How long after "now" the certificates stay valid, seconds (10 years).
const VALID_AFTER: u64 = 10 * 365 * 24 * 3600;

/// Explicit server keys, instead of drawing them from the seed: for byte-exact tests
/// against transcripts made with fixed keys (shared/vectors/noise/baileys_handshake.json).
#[derive(Clone)]
pub struct ServerKeys {
    static_private: Zeroizing<[u8; 32]>,
    root_pub: [u8; 32],
    cert_chain: Vec<u8>,
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKeys")
            .field("static_private", &"<redacted>")
            .field("cert_chain_len", &self.cert_chain.len())
            .finish_non_exhaustive()
    }
}

impl ServerKeys {
    /// The server's Noise static private key (32 bytes), the root public key clients trust
    /// (32 bytes) and the serialized `CertChain` to send in ServerHello.
    pub fn new(static_private: [u8; 32], root_pub: [u8; 32], cert_chain: Vec<u8>) -> Self {
        Self {
            static_private: Zeroizing::new(static_private),
            root_pub,
            cert_chain,
        }
    }
}

/// The server's static key and certificate chain.
pub(crate) struct ServerIdentity {
    /// Noise static key pair.
    pub(crate) static_key: KeyPair,
    /// Root public key clients must trust.
    pub(crate) root_pub: [u8; 32],
    /// Serialized `CertChain` sent (encrypted) in ServerHello.payload.
    pub(crate) cert_chain: Vec<u8>,
}

impl ServerIdentity {
    /// Draws root, intermediate and static keys from `rng` and builds a chain valid from 30
    /// days before `now` (unix seconds) to 10 years after it.
    pub(crate) fn generate(rng: &mut StdRng, now: u64) -> Self {
        let root = KeyPair::generate(rng);
        let intermediate = KeyPair::generate(rng);
        let static_key = KeyPair::generate(rng);
        let cert_chain = build_cert_chain(
            &root,
            ROOT_SERIAL,
            &intermediate,
            static_key.public(),
            now.saturating_sub(VALID_BEFORE),
            now.saturating_add(VALID_AFTER),
            rng,
        );
        Self {
            root_pub: *root.public(),
            static_key,
            cert_chain,
        }
    }

    /// Uses explicit keys.
    pub(crate) fn from_keys(keys: &ServerKeys) -> Self {
        Self {
            static_key: KeyPair::from_private_bytes(*keys.static_private),
            root_pub: keys.root_pub,
            cert_chain: keys.cert_chain.clone(),
        }
    }

    /// The Noise static public key.
    pub(crate) fn static_pub(&self) -> [u8; 32] {
        *self.static_key.public()
    }
}
