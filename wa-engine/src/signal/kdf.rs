//! Key derivation of X3DH, the double ratchet and sender keys, as free functions.
//!
//! This is the low-level layer under [`session`](super) and [`group`](super): useful to
//! check derived values against published vectors (shared/protocol/04-signal.md §10,
//! `shared/vectors/signal/`). Every function is pure; outputs holding secrets zeroize
//! on drop and redact `Debug`.
//!
//! | Step | Definition | Source |
//! |---|---|---|
//! | X3DH | `HKDF(0xFF×32 ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4], salt 0, "WhisperText", 64)` → root key ‖ chain key | 04 §5; LSN `session_builder.js` |
//! | root step | `HKDF(DH(our ratchet, their ratchet), salt = root key, "WhisperRatchet", 64)` | 04 §6.1; LSN `session_cipher.js` |
//! | message seed / next chain key | `HMAC(chain key, 0x01)` / `HMAC(chain key, 0x02)` | LSG `keys/chain/ChainKey.go` |
//! | message keys | `HKDF(seed, salt 0, "WhisperMessageKeys", 80)` → cipher ‖ mac ‖ iv | 04 §6.1 |
//! | sender message keys | `HKDF(seed, salt 0, "WhisperGroup", 48)` → **iv ‖ cipher** | 04 §9.3; LSG `groups/ratchet/SenderMessageKey.go` |

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::crypto::{hkdf, hmac_sha256};
use super::keys::{PrivateKey, PublicKey};

/// HKDF info of the X3DH master secret.
const INFO_TEXT: &[u8] = b"WhisperText";
/// HKDF info of a root (DH ratchet) step.
const INFO_RATCHET: &[u8] = b"WhisperRatchet";
/// HKDF info of pairwise message keys.
const INFO_MESSAGE_KEYS: &[u8] = b"WhisperMessageKeys";
/// HKDF info of sender-key message keys.
const INFO_GROUP: &[u8] = b"WhisperGroup";

/// HMAC input giving the message-key seed of a chain key.
const MESSAGE_KEY_SEED: u8 = 0x01;
/// HMAC input giving the next chain key.
const CHAIN_KEY_SEED: u8 = 0x02;

/// A 32-byte secret (root key, chain key, message-key seed) that zeroizes on drop and
/// redacts `Debug`.
pub type Secret32 = Zeroizing<[u8; 32]>;

/// The X3DH result: initial root key and chain key (04 §5).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct X3dhKeys {
    /// Initial root key `RK` (bytes 0..32).
    pub root_key: [u8; 32],
    /// Initial chain key `CK` (bytes 32..64); unused by both sides after setup.
    pub chain_key: [u8; 32],
}

impl fmt::Debug for X3dhKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("X3dhKeys(<redacted>)")
    }
}

fn x3dh_derive(dhs: &[&[u8; 32]]) -> X3dhKeys {
    let mut ikm = Zeroizing::new(Vec::with_capacity(32 * (dhs.len() + 1)));
    ikm.extend_from_slice(&[0xFF; 32]);
    for dh in dhs {
        ikm.extend_from_slice(&dh[..]);
    }
    let okm = hkdf::<64>(&ikm, None, INFO_TEXT);
    let mut keys = X3dhKeys {
        root_key: [0; 32],
        chain_key: [0; 32],
    };
    keys.root_key.copy_from_slice(&okm[..32]);
    keys.chain_key.copy_from_slice(&okm[32..]);
    keys
}

/// X3DH as the initiator (Alice) computes it: `DH1 = DH(IK_A, SPK_B)`,
/// `DH2 = DH(EK_A, IK_B)`, `DH3 = DH(EK_A, SPK_B)`, `DH4 = DH(EK_A, OPK_B)` if a
/// one-time prekey is used (04 §5).
pub fn x3dh_initiator(
    our_identity: &PrivateKey,
    our_base_key: &PrivateKey,
    their_identity: &PublicKey,
    their_signed_prekey: &PublicKey,
    their_one_time_prekey: Option<&PublicKey>,
) -> X3dhKeys {
    let dh1 = our_identity.agree(their_signed_prekey);
    let dh2 = our_base_key.agree(their_identity);
    let dh3 = our_base_key.agree(their_signed_prekey);
    match their_one_time_prekey {
        Some(opk) => {
            let dh4 = our_base_key.agree(opk);
            x3dh_derive(&[&dh1, &dh2, &dh3, &dh4])
        }
        None => x3dh_derive(&[&dh1, &dh2, &dh3]),
    }
}

/// X3DH as the responder (Bob) computes it, mirroring [`x3dh_initiator`]:
/// `DH(SPK_B, IK_A)`, `DH(IK_B, EK_A)`, `DH(SPK_B, EK_A)`, `DH(OPK_B, EK_A)`.
pub fn x3dh_responder(
    our_identity: &PrivateKey,
    our_signed_prekey: &PrivateKey,
    our_one_time_prekey: Option<&PrivateKey>,
    their_identity: &PublicKey,
    their_base_key: &PublicKey,
) -> X3dhKeys {
    let dh1 = our_signed_prekey.agree(their_identity);
    let dh2 = our_identity.agree(their_base_key);
    let dh3 = our_signed_prekey.agree(their_base_key);
    match our_one_time_prekey {
        Some(opk) => {
            let dh4 = opk.agree(their_base_key);
            x3dh_derive(&[&dh1, &dh2, &dh3, &dh4])
        }
        None => x3dh_derive(&[&dh1, &dh2, &dh3]),
    }
}

/// One DH-ratchet root step: returns `(new root key, new chain key)` from
/// `HKDF(DH(our_ratchet, their_ratchet), salt = root_key, "WhisperRatchet", 64)`
/// (04 §6.1).
pub fn root_step(
    root_key: &[u8; 32],
    our_ratchet: &PrivateKey,
    their_ratchet: &PublicKey,
) -> (Secret32, Secret32) {
    let dh = our_ratchet.agree(their_ratchet);
    let okm = hkdf::<64>(dh.as_ref(), Some(root_key), INFO_RATCHET);
    let mut root = Zeroizing::new([0_u8; 32]);
    let mut chain = Zeroizing::new([0_u8; 32]);
    root.copy_from_slice(&okm[..32]);
    chain.copy_from_slice(&okm[32..]);
    (root, chain)
}

/// The message-key seed of a chain key: `HMAC-SHA256(chain_key, 0x01)`. Used by both
/// pairwise chains and sender-key chains (04 §6.1, §9.3).
pub fn message_key_seed(chain_key: &[u8; 32]) -> Secret32 {
    Zeroizing::new(hmac_sha256(chain_key, &[&[MESSAGE_KEY_SEED]]))
}

/// The next chain key: `HMAC-SHA256(chain_key, 0x02)`.
pub fn next_chain_key(chain_key: &[u8; 32]) -> Secret32 {
    Zeroizing::new(hmac_sha256(chain_key, &[&[CHAIN_KEY_SEED]]))
}

/// Keys of one pairwise message (04 §6.1).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MessageKeys {
    /// AES-256-CBC key (bytes 0..32).
    pub cipher_key: [u8; 32],
    /// HMAC-SHA256 key of the 8-byte MAC (bytes 32..64).
    pub mac_key: [u8; 32],
    /// AES-CBC IV (bytes 64..80).
    pub iv: [u8; 16],
}

impl MessageKeys {
    /// Derives the keys from a message-key seed:
    /// `HKDF(seed, salt 0, "WhisperMessageKeys", 80)`.
    pub fn derive(seed: &[u8; 32]) -> Self {
        let okm = hkdf::<80>(seed, None, INFO_MESSAGE_KEYS);
        let mut keys = Self {
            cipher_key: [0; 32],
            mac_key: [0; 32],
            iv: [0; 16],
        };
        keys.cipher_key.copy_from_slice(&okm[..32]);
        keys.mac_key.copy_from_slice(&okm[32..64]);
        keys.iv.copy_from_slice(&okm[64..80]);
        keys
    }
}

impl fmt::Debug for MessageKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageKeys(<redacted>)")
    }
}

/// Keys of one sender-key (group) message (04 §9.3): note the IV comes first.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SenderMessageKeys {
    /// AES-CBC IV (bytes 0..16).
    pub iv: [u8; 16],
    /// AES-256-CBC key (bytes 16..48).
    pub cipher_key: [u8; 32],
}

impl SenderMessageKeys {
    /// Derives the keys from a message-key seed: `HKDF(seed, salt 0, "WhisperGroup", 48)`.
    pub fn derive(seed: &[u8; 32]) -> Self {
        let okm = hkdf::<48>(seed, None, INFO_GROUP);
        let mut keys = Self {
            iv: [0; 16],
            cipher_key: [0; 32],
        };
        keys.iv.copy_from_slice(&okm[..16]);
        keys.cipher_key.copy_from_slice(&okm[16..48]);
        keys
    }
}

impl fmt::Debug for SenderMessageKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SenderMessageKeys(<redacted>)")
    }
}
