//! The server certificate chain carried in the `ServerHello` payload: verification (client)
//! and construction (for a simulated server with its own root).
//!
//! A `CertChain` holds a leaf and an intermediate `NoiseCertificate`, each
//! `{details: serialized Details, signature: 64-byte XEdDSA over the raw details}`.
//! The intermediate is signed by the root key, the leaf by the intermediate's key, and the
//! leaf certifies the server static key of the handshake (shared/protocol/01 §5).

use prost::Message;
use rand_core::CryptoRng;
use wa_proto::wa::CertChain;
#[cfg(feature = "server-side")]
use wa_proto::wa::cert_chain::NoiseCertificate;
use wa_proto::wa::cert_chain::noise_certificate::Details;

use super::error::{CertError, CertRole};
use super::handshake::{KeyPair, keys_equal};
use crate::signal::xeddsa;

/// WhatsApp's production root public key (X25519, used with XEdDSA), issuer name
/// `WhatsAppLongTerm1`, serial 0.
///
/// Sources: whatsmeow `handshake.go` (`WACertPubKey`, `WACertIssuerSerial`); Baileys
/// `src/Defaults/index.ts` (`WA_CERT_DETAILS`); shared/protocol/01 §5.2.
pub const WHATSAPP_ROOT_KEY: [u8; 32] = [
    0x14, 0x23, 0x75, 0x57, 0x4d, 0x0a, 0x58, 0x71, 0x66, 0xaa, 0xe7, 0x1e, 0xbe, 0x51, 0x64, 0x37,
    0xc4, 0xa2, 0x8b, 0x73, 0xe3, 0x69, 0x5c, 0x6c, 0xe1, 0xf7, 0xf9, 0x54, 0x5d, 0xa8, 0xee, 0x6b,
];

/// The root a client trusts: the key that must sign the intermediate certificate and the
/// serial the intermediate must name as its issuer.
///
/// [`Default`] is WhatsApp's production root ([`TrustRoot::WHATSAPP`]); a simulated server
/// uses its own (shared/protocol/01 §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustRoot {
    public_key: [u8; 32],
    serial: u32,
}

impl TrustRoot {
    /// WhatsApp's production root: [`WHATSAPP_ROOT_KEY`], serial 0.
    pub const WHATSAPP: Self = Self::new(WHATSAPP_ROOT_KEY, 0);

    /// A root with X25519 public key `public_key` (32 bytes) and issuer serial `serial`.
    #[must_use]
    pub const fn new(public_key: [u8; 32], serial: u32) -> Self {
        Self { public_key, serial }
    }

    /// The root's public key, 32 bytes.
    #[must_use]
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }

    /// The serial the intermediate must carry as `issuerSerial`.
    #[must_use]
    pub fn serial(&self) -> u32 {
        self.serial
    }
}

impl Default for TrustRoot {
    fn default() -> Self {
        Self::WHATSAPP
    }
}

/// The decoded `Details` of one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertDetails {
    /// This certificate's serial.
    pub serial: u32,
    /// The serial of the certificate (or root) that signed it.
    pub issuer_serial: u32,
    /// The certified X25519 public key, 32 bytes.
    pub key: [u8; 32],
    /// Start of validity, unix seconds (inclusive).
    pub not_before: u64,
    /// End of validity, unix seconds (inclusive).
    pub not_after: u64,
}

impl CertDetails {
    /// Serializes these details as a `CertChain.NoiseCertificate.Details` protobuf: the exact
    /// bytes a signature covers.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        Details {
            serial: Some(self.serial),
            issuer_serial: Some(self.issuer_serial),
            key: Some(self.key.to_vec()),
            not_before: Some(self.not_before),
            not_after: Some(self.not_after),
        }
        .encode_to_vec()
    }

    /// Signs these details with `issuer`'s key (XEdDSA over the serialized details, no
    /// prefix), with 64 random bytes from `rng`.
    #[must_use]
    pub fn sign<R: CryptoRng + ?Sized>(&self, issuer: &KeyPair, rng: &mut R) -> SignedCert {
        let details = self.encode();
        let signature = xeddsa::sign_with_rng(issuer.private(), &details, rng);
        SignedCert { details, signature }
    }

    /// Decodes `Details` bytes; a missing field reads as 0 / empty like proto2 getters
    /// (whatsmeow `GetSerial()` etc.), and the key must be 32 bytes.
    fn decode(role: CertRole, bytes: &[u8]) -> Result<Self, CertError> {
        let d = Details::decode(bytes).map_err(|e| CertError::MalformedDetails(role, e))?;
        let key = d.key.unwrap_or_default();
        let key = <[u8; 32]>::try_from(key.as_slice()).map_err(|_| CertError::BadKeyLength {
            role,
            len: key.len(),
        })?;
        Ok(Self {
            serial: d.serial.unwrap_or_default(),
            issuer_serial: d.issuer_serial.unwrap_or_default(),
            key,
            not_before: d.not_before.unwrap_or_default(),
            not_after: d.not_after.unwrap_or_default(),
        })
    }

    /// Checks `not_before <= now <= not_after` (whatsmeow `checkCertValidity`: "before
    /// notBefore" and "after notAfter" fail, both bounds inclusive).
    fn check_validity(&self, role: CertRole, now: u64) -> Result<(), CertError> {
        if now < self.not_before {
            Err(CertError::NotYetValid {
                role,
                not_before: self.not_before,
                now,
            })
        } else if now > self.not_after {
            Err(CertError::Expired {
                role,
                not_after: self.not_after,
                now,
            })
        } else {
            Ok(())
        }
    }
}

/// One signed certificate: serialized details and their 64-byte XEdDSA signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCert {
    /// Serialized `Details` (see [`CertDetails::encode`]).
    pub details: Vec<u8>,
    /// XEdDSA signature over `details`, 64 bytes.
    pub signature: [u8; 64],
}

/// A certificate chain that passed [`verify_cert_chain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedChain {
    /// The leaf certificate; its key is the server static key.
    pub leaf: CertDetails,
    /// The intermediate certificate, signed by the trust root.
    pub intermediate: CertDetails,
}

/// Verifies a serialized `CertChain` (the decrypted `ServerHello` payload) against `root`,
/// the decrypted server static key `server_static` (32 bytes) and the time `now` (unix
/// seconds).
///
/// Checks, in whatsmeow's order (`handshake.go` `verifyServerCert`): all four parts present;
/// both signatures 64 bytes; intermediate signed by the root key; intermediate issuer serial
/// equals the root serial; intermediate key 32 bytes; leaf signed by the intermediate key;
/// intermediate valid at `now`; leaf issuer serial equals the intermediate serial; leaf key
/// equals `server_static` (constant time); leaf valid at `now`.
///
/// # Errors
/// The [`CertError`] of the first failed check.
pub fn verify_cert_chain(
    chain: &[u8],
    root: &TrustRoot,
    server_static: &[u8; 32],
    now: u64,
) -> Result<VerifiedChain, CertError> {
    let chain = CertChain::decode(chain).map_err(CertError::Malformed)?;
    let intermediate = chain
        .intermediate
        .ok_or(CertError::MissingPart("intermediate"))?;
    let leaf = chain.leaf.ok_or(CertError::MissingPart("leaf"))?;
    let intermediate_details = intermediate
        .details
        .ok_or(CertError::MissingPart("intermediate.details"))?;
    let intermediate_signature = intermediate
        .signature
        .ok_or(CertError::MissingPart("intermediate.signature"))?;
    let leaf_details = leaf.details.ok_or(CertError::MissingPart("leaf.details"))?;
    let leaf_signature = leaf
        .signature
        .ok_or(CertError::MissingPart("leaf.signature"))?;
    let intermediate_signature = signature64(CertRole::Intermediate, &intermediate_signature)?;
    let leaf_signature = signature64(CertRole::Leaf, &leaf_signature)?;

    if !xeddsa::verify(
        &root.public_key,
        &intermediate_details,
        &intermediate_signature,
    ) {
        return Err(CertError::UntrustedRoot);
    }
    let intermediate = CertDetails::decode(CertRole::Intermediate, &intermediate_details)?;
    if intermediate.issuer_serial != root.serial {
        return Err(CertError::IssuerSerialMismatch {
            role: CertRole::Intermediate,
            found: intermediate.issuer_serial,
            expected: root.serial,
        });
    }
    if !xeddsa::verify(&intermediate.key, &leaf_details, &leaf_signature) {
        return Err(CertError::BadLeafSignature);
    }
    intermediate.check_validity(CertRole::Intermediate, now)?;
    let leaf = CertDetails::decode(CertRole::Leaf, &leaf_details)?;
    if leaf.issuer_serial != intermediate.serial {
        return Err(CertError::IssuerSerialMismatch {
            role: CertRole::Leaf,
            found: leaf.issuer_serial,
            expected: intermediate.serial,
        });
    }
    if !keys_equal(&leaf.key, server_static) {
        return Err(CertError::LeafKeyMismatch);
    }
    leaf.check_validity(CertRole::Leaf, now)?;
    Ok(VerifiedChain { leaf, intermediate })
}

/// Serializes a `CertChain{leaf, intermediate}` from two signed certificates.
#[cfg(feature = "server-side")]
#[must_use]
pub fn encode_cert_chain(leaf: &SignedCert, intermediate: &SignedCert) -> Vec<u8> {
    let cert = |c: &SignedCert| NoiseCertificate {
        details: Some(c.details.clone()),
        signature: Some(c.signature.to_vec()),
    };
    CertChain {
        leaf: Some(cert(leaf)),
        intermediate: Some(cert(intermediate)),
    }
    .encode_to_vec()
}

/// Builds and signs a serialized chain root -> intermediate -> leaf for a simulated server.
///
/// The intermediate (serial `root_serial + 1`, issuer `root_serial`) certifies
/// `intermediate`'s public key and is signed by `root`; the leaf (serial `root_serial + 2`)
/// certifies `server_static` (the server's static public key, 32 bytes) and is signed by
/// `intermediate`. Both are valid from `not_before` to `not_after` (unix seconds, inclusive).
/// A client verifies it with `TrustRoot::new(*root.public(), root_serial)`.
#[cfg(feature = "server-side")]
#[must_use]
pub fn build_cert_chain<R: CryptoRng + ?Sized>(
    root: &KeyPair,
    root_serial: u32,
    intermediate: &KeyPair,
    server_static: &[u8; 32],
    not_before: u64,
    not_after: u64,
    rng: &mut R,
) -> Vec<u8> {
    let intermediate_serial = root_serial.wrapping_add(1);
    let intermediate_cert = CertDetails {
        serial: intermediate_serial,
        issuer_serial: root_serial,
        key: *intermediate.public(),
        not_before,
        not_after,
    }
    .sign(root, rng);
    let leaf_cert = CertDetails {
        serial: root_serial.wrapping_add(2),
        issuer_serial: intermediate_serial,
        key: *server_static,
        not_before,
        not_after,
    }
    .sign(intermediate, rng);
    encode_cert_chain(&leaf_cert, &intermediate_cert)
}

/// `bytes` as a 64-byte signature, or [`CertError::BadSignatureLength`].
fn signature64(role: CertRole, bytes: &[u8]) -> Result<[u8; 64], CertError> {
    <[u8; 64]>::try_from(bytes).map_err(|_| CertError::BadSignatureLength {
        role,
        len: bytes.len(),
    })
}
