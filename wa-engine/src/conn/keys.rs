//! Key material of a new companion device (shared/protocol/03 §1).

use crate::noise::KeyPair as NoiseKeyPair;
use crate::signal::xeddsa;
use crate::store::{Credentials, KeyPair, SignedPreKey};

/// The signed pre-key id of a new device: 1 (whatsmeow, Baileys, whatsapp-rust).
const SIGNED_PREKEY_ID: u32 = 1;

fn key_pair<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> KeyPair {
    let pair = NoiseKeyPair::generate(rng);
    KeyPair::new(*pair.public(), *pair.private_bytes())
}

/// Fresh, unpaired credentials: noise key, identity key, registration id (14 bits, non-zero,
/// as Baileys `generateRegistrationId`), signed pre-key 1 signed with XEdDSA over
/// `0x05 || public` (04 §2), and a random ADV secret.
pub fn generate_credentials<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Credentials {
    let noise_key = key_pair(rng);
    let identity_key = key_pair(rng);
    let spk = key_pair(rng);
    let mut message = [0u8; 33];
    message[0] = 5;
    message[1..].copy_from_slice(&spk.public);
    let signature = xeddsa::sign_with_rng(&identity_key.private, &message, rng);
    let registration_id = (rng.next_u32() & 0x3fff).max(1);
    let mut adv_secret = [0u8; 32];
    rng.fill_bytes(&mut adv_secret);
    Credentials::new(
        noise_key,
        identity_key,
        registration_id,
        SignedPreKey {
            id: SIGNED_PREKEY_ID,
            key_pair: spk,
            signature,
        },
        adv_secret,
    )
}
