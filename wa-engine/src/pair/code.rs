//! Pairing with an 8-character code ("link with phone number"), both roles
//! (shared/protocol/03 §5).
//!
//! Flow: the companion registers as for QR, then sends `companion_hello` with its pairing
//! ephemeral public key wrapped by the code ([`wrap_ephemeral_pub`]); the user types the code on
//! the phone, which unwraps it and answers with its own wrapped ephemeral
//! ([`primary_hello`]); the companion unwraps that and sends the encrypted key bundle
//! ([`companion_finish`]); the phone decrypts the bundle ([`primary_finish`]). Both ends derive
//! the same [`AdvSecret`], which then HMACs the pair-success exactly as for QR.
//!
//! Sources: whatsmeow pair-code.go; Baileys src/Utils/crypto.ts (`derivePairingCodeKey`),
//! src/Socket/messages-recv.ts; whatsapp-rust wacore/src/pair_code.rs.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use ctr::cipher::{KeyIvInit, StreamCipher};
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::{AdvSecret, ClientType, PairError};
use crate::Jid;
use crate::binary::Node;
#[cfg(feature = "server-side")]
use crate::binary::Value;
use crate::jid::Server;

/// PBKDF2-HMAC-SHA256 iteration count for the code key: 131072 = `2 << 16`
/// (whatsapp-rust `PAIR_CODE_PBKDF2_ITERATIONS`; whatsmeow pair-code.go).
pub const PBKDF2_ITERATIONS: u32 = 131_072;

/// The 32 symbols of the code alphabet: digits and upper-case letters without `0`, `I`, `O`,
/// `U` (Baileys `bytesToCrockford`, whatsmeow's base32 encoding).
pub(crate) const CODE_ALPHABET: &[u8; 32] = b"123456789ABCDEFGHJKLMNPQRSTVWXYZ";

/// Length of a wrapped ephemeral key: salt (32) || iv (16) || AES-CTR ciphertext (32) (03 §5.3).
pub(crate) const WRAPPED_KEY_LEN: usize = 80;

/// Length of a wrapped key bundle: salt (32) || nonce (12) || AES-GCM ciphertext (96 + 16 tag)
/// (03 §5.6 step 7).
pub(crate) const WRAPPED_BUNDLE_LEN: usize = 156;

/// HKDF info for the key-bundle key (03 §5.6 step 5).
const BUNDLE_KEY_INFO: &[u8] = b"link_code_pairing_key_bundle_encryption_key";
/// HKDF info for the ADV secret (03 §5.6 step 9).
const ADV_SECRET_INFO: &[u8] = b"adv_secret";

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

/// An 8-character pairing code as the user types it (without the dash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingCode(String);

impl PairingCode {
    /// Draw 5 random bytes and encode them as 8 code characters (03 §5.2).
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 5];
        rng.fill_bytes(&mut bytes);
        Self(encode_code(bytes))
    }

    /// Accept a code typed by a user or chosen by the caller: 8 ASCII letters or digits,
    /// optionally as `XXXX-XXXX`; lower case is upper-cased. (Baileys accepts any caller-chosen
    /// 8-character code, so the alphabet is not enforced.)
    ///
    /// # Errors
    /// [`PairError::InvalidCode`].
    pub fn parse(s: &str) -> Result<Self, PairError> {
        let code: String = s
            .trim()
            .chars()
            .filter(|c| *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if code.len() != 8 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(PairError::InvalidCode);
        }
        Ok(Self(code))
    }

    /// The 8 characters without dash: the PBKDF2 password.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The code as shown to the user, `XXXX-XXXX` (whatsmeow `PairPhone`).
    pub fn display(&self) -> String {
        let (a, b) = self.0.split_at(4);
        format!("{a}-{b}")
    }
}

impl std::fmt::Display for PairingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

/// Encode 5 bytes (40 bits) as 8 characters of `CODE_ALPHABET`, 5 bits each, most
/// significant first (03 §5.2; Baileys `bytesToCrockford`).
pub fn encode_code(bytes: [u8; 5]) -> String {
    let mut value = 0u64;
    for b in bytes {
        value = (value << 8) | u64::from(b);
    }
    (0..8)
        .rev()
        .map(|i| {
            let idx = ((value >> (i * 5)) & 0x1f) as usize;
            char::from(CODE_ALPHABET[idx])
        })
        .collect()
}

/// Normalise a phone number for a pairing-code request: drop everything but digits, then
/// require more than 6 digits and no leading `0` (03 §5.1; whatsmeow `PairPhone`).
///
/// # Errors
/// [`PairError::InvalidPhoneNumber`].
pub fn normalize_phone(phone: &str) -> Result<String, PairError> {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    if digits.len() <= 6 || digits.starts_with('0') {
        return Err(PairError::InvalidPhoneNumber);
    }
    Ok(digits)
}

/// Derive the 32-byte AES key from the code: PBKDF2-HMAC-SHA256(code, salt, 131072) (03 §5.3).
pub fn derive_code_key(code: &PairingCode, salt: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<Sha256>(code.as_str().as_bytes(), salt, PBKDF2_ITERATIONS, &mut *key);
    key
}

/// Wrap an ephemeral public key with the code using the given salt and IV:
/// `salt || iv || AES-256-CTR(key, iv, pub)` (03 §5.3). Deterministic; for vector tests and
/// callers that manage their own randomness.
pub fn wrap_ephemeral_pub_with(
    code: &PairingCode,
    ephemeral_pub: &[u8; 32],
    salt: &[u8; 32],
    iv: &[u8; 16],
) -> [u8; WRAPPED_KEY_LEN] {
    let key = derive_code_key(code, salt);
    let mut ct = *ephemeral_pub;
    let mut cipher = Aes256Ctr::new((&*key).into(), iv.into());
    cipher.apply_keystream(&mut ct);
    let mut out = [0u8; WRAPPED_KEY_LEN];
    out[..32].copy_from_slice(salt);
    out[32..48].copy_from_slice(iv);
    out[48..].copy_from_slice(&ct);
    out
}

/// Wrap an ephemeral public key with the code, drawing a fresh 32-byte salt and 16-byte IV.
/// The companion sends this as `link_code_pairing_wrapped_companion_ephemeral_pub` (03 §5.4),
/// the phone as `link_code_pairing_wrapped_primary_ephemeral_pub` (03 §5.5).
pub fn wrap_ephemeral_pub<R: rand_core::CryptoRng + ?Sized>(
    rng: &mut R,
    code: &PairingCode,
    ephemeral_pub: &[u8; 32],
) -> [u8; WRAPPED_KEY_LEN] {
    let mut salt = [0u8; 32];
    let mut iv = [0u8; 16];
    rng.fill_bytes(&mut salt);
    rng.fill_bytes(&mut iv);
    wrap_ephemeral_pub_with(code, ephemeral_pub, &salt, &iv)
}

/// Unwrap an 80-byte wrapped ephemeral public key with the code (03 §5.6 step 2). AES-CTR has
/// no authentication: a wrong code yields a wrong key, detected later by the bundle's GCM tag.
///
/// # Errors
/// [`PairError::WrappedKeyLength`] if `wrapped` is not 80 bytes.
pub fn unwrap_ephemeral_pub(code: &PairingCode, wrapped: &[u8]) -> Result<[u8; 32], PairError> {
    let wrapped: &[u8; WRAPPED_KEY_LEN] =
        wrapped
            .try_into()
            .map_err(|_| PairError::WrappedKeyLength {
                found: wrapped.len(),
            })?;
    let mut salt = [0u8; 32];
    let mut iv = [0u8; 16];
    salt.copy_from_slice(&wrapped[..32]);
    iv.copy_from_slice(&wrapped[32..48]);
    let ct = &wrapped[48..];
    let salt = &salt;
    let key = derive_code_key(code, salt);
    let mut out = [0u8; 32];
    out.copy_from_slice(ct);
    let mut cipher = Aes256Ctr::new((&*key).into(), (&iv).into());
    cipher.apply_keystream(&mut out);
    Ok(out)
}

/// HKDF-SHA256(ikm = es, salt = bundle salt, info = `link_code_pairing_key_bundle_encryption_key`)
/// (03 §5.6 step 5).
pub fn bundle_key(ephemeral_shared: &[u8; 32], bundle_salt: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    // A 32-byte output is always within HKDF-SHA256's 255 * 32 limit.
    let _ =
        Hkdf::<Sha256>::new(Some(bundle_salt), ephemeral_shared).expand(BUNDLE_KEY_INFO, &mut *key);
    key
}

/// The ADV secret of code pairing: HKDF-SHA256(ikm = es || is || adv randomness, no salt,
/// info = `adv_secret`) (03 §5.6 step 9).
pub(crate) fn derive_adv_secret(
    ephemeral_shared: &[u8; 32],
    identity_shared: &[u8; 32],
    adv_randomness: &[u8; 32],
) -> AdvSecret {
    let mut ikm = Zeroizing::new([0u8; 96]);
    ikm[..32].copy_from_slice(ephemeral_shared);
    ikm[32..64].copy_from_slice(identity_shared);
    ikm[64..].copy_from_slice(adv_randomness);
    let mut out = [0u8; 32];
    let _ = Hkdf::<Sha256>::new(None, &*ikm).expand(ADV_SECRET_INFO, &mut out);
    let secret = AdvSecret::from_bytes(out);
    zeroize::Zeroize::zeroize(&mut out);
    secret
}

fn dh(secret: &StaticSecret, public: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(secret.diffie_hellman(&PublicKey::from(*public)).to_bytes())
}

/// The companion's result of processing `primary_hello`: what to send in `companion_finish`
/// and the ADV secret that replaces the stored one (03 §5.6-§5.7).
#[derive(Debug)]
pub struct CompanionFinish {
    /// `link_code_pairing_wrapped_key_bundle`, 156 bytes.
    pub wrapped_key_bundle: [u8; WRAPPED_BUNDLE_LEN],
    /// The new ADV secret; persist it before sending companion_finish.
    pub adv_secret: AdvSecret,
}

/// Companion side of 03 §5.6 with explicit randomness (adv randomness `r`, bundle salt, bundle
/// nonce); see [`companion_finish`].
///
/// # Errors
/// [`PairError::WrappedKeyLength`] for a malformed wrapped primary ephemeral key.
#[allow(clippy::too_many_arguments)]
pub fn companion_finish_with(
    code: &PairingCode,
    pairing_ephemeral: &StaticSecret,
    identity: &StaticSecret,
    wrapped_primary_ephemeral_pub: &[u8],
    primary_identity_pub: &[u8; 32],
    adv_randomness: &[u8; 32],
    bundle_salt: &[u8; 32],
    bundle_nonce: &[u8; 12],
) -> Result<CompanionFinish, PairError> {
    let primary_ephemeral_pub = unwrap_ephemeral_pub(code, wrapped_primary_ephemeral_pub)?;
    let es = dh(pairing_ephemeral, &primary_ephemeral_pub);
    let key = bundle_key(&es, bundle_salt);
    let identity_pub = PublicKey::from(identity).to_bytes();
    let mut plaintext = Zeroizing::new([0u8; 96]);
    plaintext[..32].copy_from_slice(&identity_pub);
    plaintext[32..64].copy_from_slice(primary_identity_pub);
    plaintext[64..].copy_from_slice(adv_randomness);
    let cipher = Aes256Gcm::new((&*key).into());
    let ct = cipher
        .encrypt(&Nonce::from(*bundle_nonce), plaintext.as_slice())
        .map_err(|_| PairError::KeyBundleDecrypt)?;
    let mut wrapped_key_bundle = [0u8; WRAPPED_BUNDLE_LEN];
    if ct.len() != WRAPPED_BUNDLE_LEN - 44 {
        return Err(PairError::KeyBundleLength {
            found: ct.len() + 44,
        });
    }
    wrapped_key_bundle[..32].copy_from_slice(bundle_salt);
    wrapped_key_bundle[32..44].copy_from_slice(bundle_nonce);
    wrapped_key_bundle[44..].copy_from_slice(&ct);
    let is = dh(identity, primary_identity_pub);
    let adv_secret = derive_adv_secret(&es, &is, adv_randomness);
    Ok(CompanionFinish {
        wrapped_key_bundle,
        adv_secret,
    })
}

/// Companion side of 03 §5.6: unwrap the primary's ephemeral key with the code, encrypt the key
/// bundle `identity_pub || primary_identity_pub || r` and derive the new ADV secret.
///
/// `pairing_ephemeral` is the key pair whose public half went into companion_hello;
/// `identity` is the companion's Signal identity key pair.
///
/// # Errors
/// [`PairError::WrappedKeyLength`] for a malformed wrapped primary ephemeral key.
pub fn companion_finish<R: rand_core::CryptoRng + ?Sized>(
    rng: &mut R,
    code: &PairingCode,
    pairing_ephemeral: &StaticSecret,
    identity: &StaticSecret,
    wrapped_primary_ephemeral_pub: &[u8],
    primary_identity_pub: &[u8; 32],
) -> Result<CompanionFinish, PairError> {
    let mut r = Zeroizing::new([0u8; 32]);
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut *r);
    rng.fill_bytes(&mut salt);
    rng.fill_bytes(&mut nonce);
    companion_finish_with(
        code,
        pairing_ephemeral,
        identity,
        wrapped_primary_ephemeral_pub,
        primary_identity_pub,
        &r,
        &salt,
        &nonce,
    )
}

/// The phone's state after the user typed the code (03 §5.8): the primary ephemeral key pair to
/// keep until companion_finish, and what to send in primary_hello.
#[cfg(feature = "server-side")]
pub struct PrimaryHello {
    /// The primary pairing ephemeral key pair (keep until companion_finish).
    pub ephemeral: StaticSecret,
    /// The companion's pairing ephemeral public key, unwrapped from companion_hello.
    pub companion_ephemeral_pub: [u8; 32],
    /// `link_code_pairing_wrapped_primary_ephemeral_pub`, 80 bytes.
    pub wrapped_primary_ephemeral_pub: [u8; WRAPPED_KEY_LEN],
}

#[cfg(feature = "server-side")]
impl std::fmt::Debug for PrimaryHello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrimaryHello")
            .field("ephemeral", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Phone side of 03 §5.8 with explicit randomness: unwrap the companion's ephemeral key with
/// the code and wrap `ephemeral`'s public key with the code, `salt` and `iv`.
///
/// # Errors
/// [`PairError::WrappedKeyLength`] if the companion's wrapped key is not 80 bytes.
#[cfg(feature = "server-side")]
pub fn primary_hello_with(
    code: &PairingCode,
    wrapped_companion_ephemeral_pub: &[u8],
    ephemeral: StaticSecret,
    salt: &[u8; 32],
    iv: &[u8; 16],
) -> Result<PrimaryHello, PairError> {
    let companion_ephemeral_pub = unwrap_ephemeral_pub(code, wrapped_companion_ephemeral_pub)?;
    let public = PublicKey::from(&ephemeral).to_bytes();
    let wrapped_primary_ephemeral_pub = wrap_ephemeral_pub_with(code, &public, salt, iv);
    Ok(PrimaryHello {
        ephemeral,
        companion_ephemeral_pub,
        wrapped_primary_ephemeral_pub,
    })
}

/// Phone side of 03 §5.8: the user typed `code`; unwrap the companion's ephemeral key, make a
/// primary ephemeral key pair and wrap its public key.
///
/// # Errors
/// [`PairError::WrappedKeyLength`] if the companion's wrapped key is not 80 bytes.
#[cfg(feature = "server-side")]
pub fn primary_hello<R: rand_core::CryptoRng + ?Sized>(
    rng: &mut R,
    code: &PairingCode,
    wrapped_companion_ephemeral_pub: &[u8],
) -> Result<PrimaryHello, PairError> {
    let ephemeral = StaticSecret::random_from_rng(rng);
    let mut salt = [0u8; 32];
    let mut iv = [0u8; 16];
    rng.fill_bytes(&mut salt);
    rng.fill_bytes(&mut iv);
    primary_hello_with(code, wrapped_companion_ephemeral_pub, ephemeral, &salt, &iv)
}

/// What the phone learns from companion_finish.
#[cfg(feature = "server-side")]
#[derive(Debug)]
pub struct PrimaryFinish {
    /// The companion's identity public key (first 32 bytes of the bundle); the phone signs the
    /// device identity over it (03 §4.10).
    pub companion_identity_pub: [u8; 32],
    /// The ADV secret to HMAC the pair-success with.
    pub adv_secret: AdvSecret,
}

/// Phone side of 03 §5.8 on companion_finish: decrypt the key bundle, check it names
/// `primary_identity`, and derive the ADV secret.
///
/// # Errors
/// [`PairError::KeyBundleLength`], [`PairError::KeyBundleDecrypt`] (wrong code or tampering),
/// [`PairError::KeyBundleIdentityMismatch`].
#[cfg(feature = "server-side")]
pub fn primary_finish(
    primary_ephemeral: &StaticSecret,
    companion_ephemeral_pub: &[u8; 32],
    primary_identity: &StaticSecret,
    wrapped_key_bundle: &[u8],
) -> Result<PrimaryFinish, PairError> {
    if wrapped_key_bundle.len() != WRAPPED_BUNDLE_LEN {
        return Err(PairError::KeyBundleLength {
            found: wrapped_key_bundle.len(),
        });
    }
    let (salt, rest) = wrapped_key_bundle.split_at(32);
    let (nonce, ct) = rest.split_at(12);
    let salt: &[u8; 32] = salt.try_into().map_err(|_| PairError::KeyBundleLength {
        found: wrapped_key_bundle.len(),
    })?;
    let nonce: [u8; 12] = nonce.try_into().map_err(|_| PairError::KeyBundleLength {
        found: wrapped_key_bundle.len(),
    })?;
    let es = dh(primary_ephemeral, companion_ephemeral_pub);
    let key = bundle_key(&es, salt);
    let cipher = Aes256Gcm::new((&*key).into());
    let plaintext = Zeroizing::new(
        cipher
            .decrypt(&Nonce::from(nonce), ct)
            .map_err(|_| PairError::KeyBundleDecrypt)?,
    );
    if plaintext.len() != 96 {
        return Err(PairError::KeyBundleDecrypt);
    }
    let primary_identity_pub = PublicKey::from(primary_identity).to_bytes();
    let (companion_identity, rest) = plaintext.split_at(32);
    let (named_primary, randomness) = rest.split_at(32);
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        named_primary,
        &primary_identity_pub[..],
    )) {
        return Err(PairError::KeyBundleIdentityMismatch);
    }
    let mut companion_identity_pub = [0u8; 32];
    companion_identity_pub.copy_from_slice(companion_identity);
    let mut r = Zeroizing::new([0u8; 32]);
    r.copy_from_slice(randomness);
    let is = dh(primary_identity, &companion_identity_pub);
    Ok(PrimaryFinish {
        companion_identity_pub,
        adv_secret: derive_adv_secret(&es, &is, &r),
    })
}

// ---------------------------------------------------------------------------------------------
// Stanzas of the code-pairing exchange (03 §5.4, §5.5, §5.7), built and parsed for both roles.

/// The `link_code_companion_reg` stanza tag (also the notification `type`).
pub(crate) const LINK_CODE_TAG: &str = "link_code_companion_reg";

fn server_jid() -> Jid {
    Jid::server_jid(Server::Pn)
}

fn bytes_child(parent: &Node, tag: &'static str) -> Result<Vec<u8>, PairError> {
    parent
        .child_by_tag(tag)
        .and_then(Node::content_bytes)
        .map(<[u8]>::to_vec)
        .ok_or(PairError::Missing(tag))
}

fn key_child(parent: &Node, tag: &'static str) -> Result<[u8; 32], PairError> {
    let bytes = bytes_child(parent, tag)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| PairError::Missing(tag))
}

fn link_code_reg<'a>(node: &'a Node, stage: &'static str) -> Result<&'a Node, PairError> {
    let reg = node
        .child_by_tag(LINK_CODE_TAG)
        .ok_or(PairError::Missing(LINK_CODE_TAG))?;
    if reg.get_attr_str("stage") != Some(stage) {
        return Err(PairError::Missing("link_code_companion_reg stage"));
    }
    Ok(reg)
}

#[cfg(feature = "server-side")]
fn phone_of(reg: &Node) -> Result<String, PairError> {
    match reg.get_attr("jid") {
        Some(Value::Jid(j)) => Ok(j.user().to_owned()),
        Some(Value::String(s)) => Ok(s.split('@').next().unwrap_or_default().to_owned()),
        None => Err(PairError::Missing("link_code_companion_reg jid")),
    }
}

/// Companion: the companion_hello IQ (03 §5.4). `phone` is the normalised number
/// ([`normalize_phone`]); `platform_display` must read `Browser (OS)`, e.g. `Chrome (Linux)`,
/// or the real server answers 400. The nonce is one `0x00` byte (whatsmeow).
pub fn companion_hello_iq(
    iq_id: &str,
    phone: &str,
    wrapped_companion_ephemeral_pub: &[u8; WRAPPED_KEY_LEN],
    noise_pub: &[u8; 32],
    client_type: ClientType,
    platform_display: &str,
) -> Node {
    Node::new("iq")
        .attr("to", server_jid())
        .attr("type", "set")
        .attr("id", iq_id.to_owned())
        .attr("xmlns", "md")
        .with_children([Node::new(LINK_CODE_TAG)
            .attr("jid", Jid::pn(phone.to_owned()))
            .attr("stage", "companion_hello")
            .attr("should_show_push_notification", "true")
            .with_children([
                Node::new("link_code_pairing_wrapped_companion_ephemeral_pub")
                    .with_bytes(wrapped_companion_ephemeral_pub.to_vec()),
                Node::new("companion_server_auth_key_pub").with_bytes(noise_pub.to_vec()),
                Node::new("companion_platform_id")
                    .with_bytes(client_type.as_char().to_string().into_bytes()),
                Node::new("companion_platform_display")
                    .with_bytes(platform_display.as_bytes().to_vec()),
                Node::new("link_code_pairing_nonce").with_bytes(vec![0]),
            ])])
}

/// What the server (or phone) reads from companion_hello.
#[cfg(feature = "server-side")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanionHelloFields {
    /// The phone number the code is for (digits).
    pub phone: String,
    /// The 80-byte wrapped companion pairing ephemeral key.
    pub wrapped_companion_ephemeral_pub: Vec<u8>,
    /// The companion's Noise static public key (`companion_server_auth_key_pub`).
    pub noise_pub: [u8; 32],
    /// `companion_platform_id` (one client-type character), as sent.
    pub platform_id: String,
    /// `companion_platform_display`, as sent.
    pub platform_display: String,
}

/// Server / phone: parse a companion_hello IQ.
///
/// # Errors
/// [`PairError::Missing`] naming the absent or malformed part.
#[cfg(feature = "server-side")]
pub fn parse_companion_hello(iq: &Node) -> Result<CompanionHelloFields, PairError> {
    let reg = link_code_reg(iq, "companion_hello")?;
    Ok(CompanionHelloFields {
        phone: phone_of(reg)?,
        wrapped_companion_ephemeral_pub: bytes_child(
            reg,
            "link_code_pairing_wrapped_companion_ephemeral_pub",
        )?,
        noise_pub: key_child(reg, "companion_server_auth_key_pub")?,
        platform_id: String::from_utf8_lossy(&bytes_child(reg, "companion_platform_id")?)
            .into_owned(),
        platform_display: String::from_utf8_lossy(&bytes_child(reg, "companion_platform_display")?)
            .into_owned(),
    })
}

/// Server: the result of companion_hello carrying the pairing ref (03 §5.4).
#[cfg(feature = "server-side")]
pub fn companion_hello_result(iq_id: &str, pairing_ref: &[u8]) -> Node {
    Node::new("iq")
        .attr("from", server_jid())
        .attr("type", "result")
        .attr("id", iq_id.to_owned())
        .with_children([Node::new(LINK_CODE_TAG)
            .with_children([Node::new("link_code_pairing_ref").with_bytes(pairing_ref.to_vec())])])
}

/// Companion: the pairing ref from the result of companion_hello.
///
/// # Errors
/// [`PairError::Missing`].
pub fn parse_companion_hello_result(iq: &Node) -> Result<Vec<u8>, PairError> {
    let reg = iq
        .child_by_tag(LINK_CODE_TAG)
        .ok_or(PairError::Missing(LINK_CODE_TAG))?;
    bytes_child(reg, "link_code_pairing_ref")
}

/// Server (relaying the phone): the primary_hello notification (03 §5.5).
#[cfg(feature = "server-side")]
pub fn primary_hello_notification(
    id: &str,
    server_time: u64,
    wrapped_primary_ephemeral_pub: &[u8; WRAPPED_KEY_LEN],
    primary_identity_pub: &[u8; 32],
    pairing_ref: &[u8],
) -> Node {
    Node::new("notification")
        .attr("from", server_jid())
        .attr("type", LINK_CODE_TAG)
        .attr("id", id.to_owned())
        .attr("t", server_time.to_string())
        .with_children([Node::new(LINK_CODE_TAG)
            .attr("stage", "primary_hello")
            .with_children([
                Node::new("link_code_pairing_wrapped_primary_ephemeral_pub")
                    .with_bytes(wrapped_primary_ephemeral_pub.to_vec()),
                Node::new("primary_identity_pub").with_bytes(primary_identity_pub.to_vec()),
                Node::new("link_code_pairing_ref").with_bytes(pairing_ref.to_vec()),
            ])])
}

/// What the companion reads from primary_hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryHelloFields {
    /// The 80-byte wrapped primary ephemeral key.
    pub wrapped_primary_ephemeral_pub: Vec<u8>,
    /// The primary's identity public key.
    pub primary_identity_pub: [u8; 32],
    /// The pairing ref (must equal the one from companion_hello's result).
    pub pairing_ref: Vec<u8>,
}

/// Companion: parse a primary_hello notification.
///
/// # Errors
/// [`PairError::Missing`].
pub fn parse_primary_hello(notification: &Node) -> Result<PrimaryHelloFields, PairError> {
    let reg = link_code_reg(notification, "primary_hello")?;
    Ok(PrimaryHelloFields {
        wrapped_primary_ephemeral_pub: bytes_child(
            reg,
            "link_code_pairing_wrapped_primary_ephemeral_pub",
        )?,
        primary_identity_pub: key_child(reg, "primary_identity_pub")?,
        pairing_ref: bytes_child(reg, "link_code_pairing_ref")?,
    })
}

/// Companion: the companion_finish IQ (03 §5.7).
pub fn companion_finish_iq(
    iq_id: &str,
    phone: &str,
    wrapped_key_bundle: &[u8; WRAPPED_BUNDLE_LEN],
    identity_pub: &[u8; 32],
    pairing_ref: &[u8],
) -> Node {
    Node::new("iq")
        .attr("to", server_jid())
        .attr("type", "set")
        .attr("id", iq_id.to_owned())
        .attr("xmlns", "md")
        .with_children([Node::new(LINK_CODE_TAG)
            .attr("jid", Jid::pn(phone.to_owned()))
            .attr("stage", "companion_finish")
            .with_children([
                Node::new("link_code_pairing_wrapped_key_bundle")
                    .with_bytes(wrapped_key_bundle.to_vec()),
                Node::new("companion_identity_public").with_bytes(identity_pub.to_vec()),
                Node::new("link_code_pairing_ref").with_bytes(pairing_ref.to_vec()),
            ])])
}

/// What the server / phone reads from companion_finish.
#[cfg(feature = "server-side")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanionFinishFields {
    /// The phone number (digits).
    pub phone: String,
    /// The 156-byte wrapped key bundle.
    pub wrapped_key_bundle: Vec<u8>,
    /// The companion's identity public key (also inside the bundle).
    pub identity_pub: [u8; 32],
    /// The pairing ref.
    pub pairing_ref: Vec<u8>,
}

/// Server / phone: parse a companion_finish IQ.
///
/// # Errors
/// [`PairError::Missing`].
#[cfg(feature = "server-side")]
pub fn parse_companion_finish(iq: &Node) -> Result<CompanionFinishFields, PairError> {
    let reg = link_code_reg(iq, "companion_finish")?;
    Ok(CompanionFinishFields {
        phone: phone_of(reg)?,
        wrapped_key_bundle: bytes_child(reg, "link_code_pairing_wrapped_key_bundle")?,
        identity_pub: key_child(reg, "companion_identity_public")?,
        pairing_ref: bytes_child(reg, "link_code_pairing_ref")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct CountingRng(u8);
    impl rand_core::TryRng for CountingRng {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            let mut b = [0u8; 4];
            self.try_fill_bytes(&mut b)?;
            Ok(u32::from_le_bytes(b))
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            let mut b = [0u8; 8];
            self.try_fill_bytes(&mut b)?;
            Ok(u64::from_le_bytes(b))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for d in dst {
                self.0 = self.0.wrapping_mul(31).wrapping_add(7);
                *d = self.0;
            }
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for CountingRng {}

    #[test]
    fn code_parse_accepts_dash_and_lower_case_and_rejects_other_lengths() {
        assert_eq!(
            PairingCode::parse("abcd-1234").unwrap().as_str(),
            "ABCD1234"
        );
        assert_eq!(
            PairingCode::parse("ABCD1234").unwrap().display(),
            "ABCD-1234"
        );
        assert_eq!(PairingCode::parse("ABC1234"), Err(PairError::InvalidCode));
        assert_eq!(PairingCode::parse("ABCD12345"), Err(PairError::InvalidCode));
        assert_eq!(PairingCode::parse("ABCD 123"), Err(PairError::InvalidCode));
    }

    #[test]
    fn generated_codes_use_only_the_code_alphabet() {
        let mut rng = CountingRng(1);
        for _ in 0..50 {
            let code = PairingCode::generate(&mut rng);
            assert_eq!(code.as_str().len(), 8);
            assert!(code.as_str().bytes().all(|b| CODE_ALPHABET.contains(&b)));
        }
    }

    #[test]
    fn phone_numbers_are_normalised_and_checked() {
        assert_eq!(normalize_phone("+1 555-123-4567").unwrap(), "15551234567");
        assert_eq!(
            normalize_phone("123456"),
            Err(PairError::InvalidPhoneNumber)
        );
        assert_eq!(
            normalize_phone("05551234567"),
            Err(PairError::InvalidPhoneNumber)
        );
    }

    #[test]
    fn unwrap_rejects_wrong_length() {
        let code = PairingCode::parse("ABCD1234").unwrap();
        assert_eq!(
            unwrap_ephemeral_pub(&code, &[0; 79]),
            Err(PairError::WrappedKeyLength { found: 79 })
        );
    }

    #[test]
    fn both_roles_derive_the_same_adv_secret_and_a_wrong_code_fails() {
        let mut rng = CountingRng(3);
        let code = PairingCode::generate(&mut rng);
        let companion_eph = StaticSecret::random_from_rng(&mut rng);
        let companion_identity = StaticSecret::random_from_rng(&mut rng);
        let primary_identity = StaticSecret::random_from_rng(&mut rng);
        let primary_identity_pub = PublicKey::from(&primary_identity).to_bytes();

        let hello =
            wrap_ephemeral_pub(&mut rng, &code, &PublicKey::from(&companion_eph).to_bytes());
        let primary = primary_hello(&mut rng, &code, &hello).unwrap();
        assert_eq!(
            primary.companion_ephemeral_pub,
            PublicKey::from(&companion_eph).to_bytes()
        );
        let finish = companion_finish(
            &mut rng,
            &code,
            &companion_eph,
            &companion_identity,
            &primary.wrapped_primary_ephemeral_pub,
            &primary_identity_pub,
        )
        .unwrap();
        let done = primary_finish(
            &primary.ephemeral,
            &primary.companion_ephemeral_pub,
            &primary_identity,
            &finish.wrapped_key_bundle,
        )
        .unwrap();
        assert_eq!(done.adv_secret, finish.adv_secret);
        assert_eq!(
            done.companion_identity_pub,
            PublicKey::from(&companion_identity).to_bytes()
        );

        // The phone typed another code: its unwrapped key is garbage and GCM fails.
        let wrong = PairingCode::parse("ZZZZZZZZ").unwrap();
        let primary = primary_hello(&mut rng, &wrong, &hello).unwrap();
        let finish = companion_finish(
            &mut rng,
            &code,
            &companion_eph,
            &companion_identity,
            &primary.wrapped_primary_ephemeral_pub,
            &primary_identity_pub,
        )
        .unwrap();
        assert_eq!(
            primary_finish(
                &primary.ephemeral,
                &primary.companion_ephemeral_pub,
                &primary_identity,
                &finish.wrapped_key_bundle,
            )
            .unwrap_err(),
            PairError::KeyBundleDecrypt
        );
    }
}
