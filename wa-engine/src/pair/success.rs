//! pair-success: the companion's checks and reply (shared/protocol/03 §4.5-§4.9) and the
//! phone's construction and reply check (03 §4.10).
//!
//! Choices where implementations differ (03 §4.7):
//! - the HMAC is prefixed with `06 05` when the *outer* `accountType` is HOSTED (whatsmeow
//!   pair.go, Baileys, whatsapp-rust all agree);
//! - the account signature uses `06 05` when the *inner* `ADVDeviceIdentity.deviceType` is
//!   HOSTED, else `06 00` (whatsmeow `verifyAccountSignature`, Baileys 7). whatsapp-rust looks
//!   at the outer `accountType` instead, so when only the outer type says HOSTED both `06 05`
//!   and `06 00` are accepted (see [`AdvFamily`]);
//! - the device signature uses the **same prefix family** as the account signature that
//!   verified: `06 01` for E2EE accounts, `06 06` ([`HOSTED_DEVICE_SIGNATURE_PREFIX`]) for
//!   hosted ones. whatsmeow defines `AdvHostedDeviceSignaturePrefix` but never uses it (its
//!   hosted support is unfinished: `//cli.Store.IsHosted = true`) and always signs `06 01`, as
//!   Baileys 7 does; whatsapp-rust (mirroring WhatsApp Web's `WAWebAdvSignatureConstants`) and
//!   Baileys 6.7.24 sign `06 06` for hosted accounts. WhatsApp Web's
//!   `validateADVwithIdentityKey` (as whatsapp-rust documents it) only trusts a device identity
//!   whose account *and* device signatures verify under one family, so a hosted account
//!   signature (`06 05`) next to a `06 01` device signature would not validate for other
//!   clients: we follow the family rule, i.e. what the real client and hosted accounts use;
//! - the phone (`verify_pair_device_sign`, feature `server-side`) accepts `06 01` for E2EE
//!   accounts and, for hosted accounts (as the `deviceType` it wrote says), `06 06` as well as
//!   `06 01` (whatsmeow and Baileys 7 send `06 01` there; whether the real server refuses it is
//!   not known, 03 §13);
//! - the reply's `ADVSignedDeviceIdentity` carries fields 1, 3, 4 only (no account key), as in
//!   the real reply captured by whatsapp-rust-bridge.

use hmac::{Hmac, KeyInit, Mac};
use prost::Message as _;
use sha2::Sha256;
use wa_proto::wa::{
    AdvDeviceIdentity, AdvEncryptionType, AdvSignedDeviceIdentity, AdvSignedDeviceIdentityHmac,
};

use super::{AdvSecret, PairError};
use crate::Jid;
use crate::binary::{Node, Value};
use crate::jid::Server;
use crate::signal::xeddsa;

/// Prefix of the account signature message (03 §4.7 constants).
pub(crate) const ACCOUNT_SIGNATURE_PREFIX: [u8; 2] = [6, 0];
/// Prefix of the device signature message.
pub(crate) const DEVICE_SIGNATURE_PREFIX: [u8; 2] = [6, 1];
/// Prefix of the account signature (and HMAC) for hosted accounts.
pub(crate) const HOSTED_ACCOUNT_SIGNATURE_PREFIX: [u8; 2] = [6, 5];
/// Prefix of the device signature for hosted accounts (module docs: same family as the
/// hosted account signature `06 05`).
pub const HOSTED_DEVICE_SIGNATURE_PREFIX: [u8; 2] = [6, 6];

/// The ADV signature prefix family of an account (03 §4.7 constants): E2EE (`06 00` account,
/// `06 01` device) or hosted (`06 05` account and HMAC, `06 06` device).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdvFamily {
    /// An end-to-end encrypted (ordinary) account.
    E2ee,
    /// A hosted (business-hosted, Cloud API) account: `ADVEncryptionType::HOSTED`.
    Hosted,
}

impl AdvFamily {
    /// `Hosted` for `true`.
    #[must_use]
    pub fn from_hosted(hosted: bool) -> Self {
        if hosted { Self::Hosted } else { Self::E2ee }
    }

    /// Whether this is the hosted family.
    #[must_use]
    pub fn is_hosted(self) -> bool {
        self == Self::Hosted
    }

    /// Prefix of the account signature message: `06 00` or `06 05`.
    #[must_use]
    pub fn account_prefix(self) -> [u8; 2] {
        match self {
            Self::E2ee => ACCOUNT_SIGNATURE_PREFIX,
            Self::Hosted => HOSTED_ACCOUNT_SIGNATURE_PREFIX,
        }
    }

    /// Prefix of the device signature message: `06 01` or `06 06`.
    #[must_use]
    pub fn device_prefix(self) -> [u8; 2] {
        match self {
            Self::E2ee => DEVICE_SIGNATURE_PREFIX,
            Self::Hosted => HOSTED_DEVICE_SIGNATURE_PREFIX,
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

fn server_jid() -> Jid {
    Jid::server_jid(Server::Pn)
}

fn jid_attr(node: &Node, key: &'static str) -> Result<Option<Jid>, PairError> {
    match node.get_attr(key) {
        None => Ok(None),
        Some(Value::Jid(j)) => Ok(Some(j.clone())),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| PairError::InvalidJid(key)),
    }
}

fn key32(bytes: Option<&[u8]>) -> Result<[u8; 32], PairError> {
    bytes
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or(PairError::InvalidAccountKey)
}

fn sig64(bytes: Option<&[u8]>, err: PairError) -> Result<[u8; 64], PairError> {
    bytes.and_then(|b| <[u8; 64]>::try_from(b).ok()).ok_or(err)
}

/// A pair-success IQ as received (03 §4.5), before any check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairSuccess {
    /// The IQ `id`; the reply echoes it.
    pub id: String,
    /// Server time `t` (unix seconds), if sent.
    pub server_time: Option<u64>,
    /// `<device-identity>` content: a serialized `ADVSignedDeviceIdentityHMAC`.
    pub device_identity: Vec<u8>,
    /// Own phone-number device JID (`<device jid>`), e.g. `15551234567:7@s.whatsapp.net`.
    pub jid: Jid,
    /// Own LID device JID (`<device lid>`), if sent.
    pub lid: Option<Jid>,
    /// The primary's platform (`<platform name>`), e.g. `android`; empty if absent.
    pub platform: String,
    /// Business name (`<biz name>`), business accounts only.
    pub business_name: Option<String>,
}

impl PairSuccess {
    /// Parse `<iq type="set" id=..><pair-success>...</pair-success></iq>`. Child order is free.
    ///
    /// # Errors
    /// [`PairError::Missing`] for a missing `id`, `<pair-success>`, `<device-identity>` or
    /// `<device jid>`; [`PairError::InvalidJid`].
    pub fn parse(iq: &Node) -> Result<Self, PairError> {
        let id = iq
            .get_attr_str("id")
            .ok_or(PairError::Missing("iq id"))?
            .to_owned();
        let server_time = iq.get_attr_str("t").and_then(|t| t.parse().ok());
        let ps = iq
            .child_by_tag("pair-success")
            .ok_or(PairError::Missing("pair-success"))?;
        let device_identity = ps
            .child_by_tag("device-identity")
            .and_then(Node::content_bytes)
            .ok_or(PairError::Missing("device-identity"))?
            .to_vec();
        let device = ps
            .child_by_tag("device")
            .ok_or(PairError::Missing("device"))?;
        let jid = jid_attr(device, "jid")?.ok_or(PairError::Missing("device jid"))?;
        let lid = jid_attr(device, "lid")?;
        let platform = ps
            .child_by_tag("platform")
            .and_then(|p| p.get_attr_str("name"))
            .unwrap_or_default()
            .to_owned();
        let business_name = ps
            .child_by_tag("biz")
            .and_then(|b| b.get_attr_str("name"))
            .map(str::to_owned);
        Ok(Self {
            id,
            server_time,
            device_identity,
            jid,
            lid,
            platform,
            business_name,
        })
    }
}

/// A pair-success that passed every check, with everything to persist and the reply to send.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedPairing {
    /// The prefix family the account signature verified in, and that our device signature
    /// uses (hosted accounts: `06 05` / `06 06`).
    pub family: AdvFamily,
    /// The pair-success IQ id (the reply's id).
    pub iq_id: String,
    /// Own phone-number device JID.
    pub jid: Jid,
    /// Own LID device JID, if sent.
    pub lid: Option<Jid>,
    /// The primary's platform name.
    pub platform: String,
    /// Business name, if any.
    pub business_name: Option<String>,
    /// Server time `t` of the pair-success (unix seconds), if sent.
    pub server_time: Option<u64>,
    /// `ADVDeviceIdentity.keyIndex`, the reply's `key-index` attribute.
    pub key_index: u32,
    /// The primary's identity public key (`accountSignatureKey`, 32 bytes); stored as the Signal
    /// identity of the account's device 0 (03 §4.7 step 8).
    pub primary_identity_pub: [u8; 32],
    /// Serialized `ADVSignedDeviceIdentity` with details, account key, account signature and our
    /// device signature: the record to store (03 §4.7 step 8).
    pub account: Vec<u8>,
    /// Serialized `ADVSignedDeviceIdentity` without the account key (fields 1, 3, 4): the
    /// `<device-identity>` of the reply (03 §4.7 step 7).
    pub reply_identity: Vec<u8>,
}

impl std::fmt::Debug for VerifiedPairing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedPairing")
            .field("family", &self.family)
            .field("iq_id", &self.iq_id)
            .field("jid", &self.jid)
            .field("lid", &self.lid)
            .field("platform", &self.platform)
            .field("key_index", &self.key_index)
            .finish_non_exhaustive()
    }
}

impl VerifiedPairing {
    /// The `<iq type="result"><pair-device-sign>` reply (03 §4.8).
    pub fn reply(&self) -> Node {
        pair_device_sign_reply(&self.iq_id, self.key_index, &self.reply_identity)
    }
}

/// The message the account signature covers: `prefix || details || companion identity pub`.
pub fn account_signature_message(
    details: &[u8],
    companion_identity_pub: &[u8; 32],
    hosted: bool,
) -> Vec<u8> {
    let prefix = if hosted {
        HOSTED_ACCOUNT_SIGNATURE_PREFIX
    } else {
        ACCOUNT_SIGNATURE_PREFIX
    };
    [&prefix[..], details, companion_identity_pub].concat()
}

/// The message the device signature of an E2EE account covers:
/// `06 01 || details || companion identity pub || primary identity pub`.
pub fn device_signature_message(
    details: &[u8],
    companion_identity_pub: &[u8; 32],
    primary_identity_pub: &[u8; 32],
) -> Vec<u8> {
    device_signature_message_for(
        AdvFamily::E2ee,
        details,
        companion_identity_pub,
        primary_identity_pub,
    )
}

/// The message the device signature covers in `family`:
/// `06 01` (E2EE) or `06 06` (hosted) `|| details || companion identity pub || primary identity
/// pub`.
pub fn device_signature_message_for(
    family: AdvFamily,
    details: &[u8],
    companion_identity_pub: &[u8; 32],
    primary_identity_pub: &[u8; 32],
) -> Vec<u8> {
    [
        &family.device_prefix()[..],
        details,
        companion_identity_pub,
        primary_identity_pub,
    ]
    .concat()
}

fn adv_mac(adv_secret: &AdvSecret, signed_identity: &[u8], hosted: bool) -> HmacSha256 {
    // HMAC-SHA256 accepts keys of any length; a 32-byte key cannot fail.
    let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(adv_secret.as_bytes()) else {
        unreachable_hmac()
    };
    if hosted {
        mac.update(&HOSTED_ACCOUNT_SIGNATURE_PREFIX);
    }
    mac.update(signed_identity);
    mac
}

/// The ADV HMAC: HMAC-SHA256(adv secret, `HOSTED_ACCOUNT_SIGNATURE_PREFIX` if hosted ||
/// serialized `ADVSignedDeviceIdentity`), 32 bytes (03 §4.7 step 3, §4.10 step 4).
pub fn adv_hmac(adv_secret: &AdvSecret, signed_identity: &[u8], hosted: bool) -> [u8; 32] {
    adv_mac(adv_secret, signed_identity, hosted)
        .finalize()
        .into_bytes()
        .into()
}

#[cold]
fn unreachable_hmac() -> ! {
    unreachable!("HMAC-SHA256 takes keys of any length")
}

/// Companion side of 03 §4.7: check the ADV HMAC and the account signature, then sign the
/// device identity with our identity key.
///
/// `identity_private` / `identity_pub` are the companion's Signal identity key pair;
/// `adv_secret` is the one from the QR (or derived by code pairing).
///
/// # Errors
/// [`PairError::Protobuf`] (reply 500), [`PairError::HmacMismatch`] (401 `hmac-mismatch`),
/// [`PairError::InvalidAccountKey`] (401 `invalid-key`), [`PairError::AccountSignatureMismatch`]
/// (401 `signature-mismatch`), [`PairError::Missing`]; see [`PairError::reply`].
pub fn verify_pair_success<R: rand_core::CryptoRng + ?Sized>(
    rng: &mut R,
    pair_success: &PairSuccess,
    identity_private: &[u8; 32],
    identity_pub: &[u8; 32],
    adv_secret: &AdvSecret,
) -> Result<VerifiedPairing, PairError> {
    let container = AdvSignedDeviceIdentityHmac::decode(pair_success.device_identity.as_slice())
        .map_err(|_| PairError::Protobuf {
            what: "ADVSignedDeviceIdentityHMAC",
        })?;
    let signed_bytes = container
        .details
        .as_deref()
        .ok_or(PairError::Missing("ADVSignedDeviceIdentityHMAC.details"))?;
    let received_hmac = container
        .hmac
        .as_deref()
        .ok_or(PairError::Missing("ADVSignedDeviceIdentityHMAC.hmac"))?;
    let outer_hosted = container.account_type == Some(AdvEncryptionType::Hosted as i32);
    adv_mac(adv_secret, signed_bytes, outer_hosted)
        .verify_slice(received_hmac)
        .map_err(|_| PairError::HmacMismatch)?;

    let mut signed =
        AdvSignedDeviceIdentity::decode(signed_bytes).map_err(|_| PairError::Protobuf {
            what: "ADVSignedDeviceIdentity",
        })?;
    let details = signed
        .details
        .clone()
        .ok_or(PairError::Missing("ADVSignedDeviceIdentity.details"))?;
    let identity =
        AdvDeviceIdentity::decode(details.as_slice()).map_err(|_| PairError::Protobuf {
            what: "ADVDeviceIdentity",
        })?;
    let primary_identity_pub = key32(signed.account_signature_key.as_deref())?;
    let account_signature = sig64(
        signed.account_signature.as_deref(),
        PairError::InvalidAccountKey,
    )?;
    let inner_hosted = identity.device_type == Some(AdvEncryptionType::Hosted as i32);
    // whatsmeow: the inner deviceType decides; whatsapp-rust: the outer accountType. Both are
    // tried when they disagree (module docs).
    let candidates: &[AdvFamily] = match (inner_hosted, outer_hosted) {
        (true, _) => &[AdvFamily::Hosted],
        (false, true) => &[AdvFamily::Hosted, AdvFamily::E2ee],
        (false, false) => &[AdvFamily::E2ee],
    };
    let family = candidates
        .iter()
        .copied()
        .find(|f| {
            let message = account_signature_message(&details, identity_pub, f.is_hosted());
            xeddsa::verify(&primary_identity_pub, &message, &account_signature)
        })
        .ok_or(PairError::AccountSignatureMismatch)?;

    // The device signature in the family the account signature verified in.
    let device_message =
        device_signature_message_for(family, &details, identity_pub, &primary_identity_pub);
    let device_signature = xeddsa::sign_with_rng(identity_private, &device_message, rng);
    signed.device_signature = Some(device_signature.to_vec());
    let account = signed.encode_to_vec();
    signed.account_signature_key = None;
    let reply_identity = signed.encode_to_vec();

    Ok(VerifiedPairing {
        family,
        iq_id: pair_success.id.clone(),
        jid: pair_success.jid.clone(),
        lid: pair_success.lid.clone(),
        platform: pair_success.platform.clone(),
        business_name: pair_success.business_name.clone(),
        server_time: pair_success.server_time,
        key_index: identity.key_index.unwrap_or(0),
        primary_identity_pub,
        account,
        reply_identity,
    })
}

/// `<iq to="s.whatsapp.net" type="result" id><pair-device-sign><device-identity key-index>`
/// (03 §4.8).
pub fn pair_device_sign_reply(iq_id: &str, key_index: u32, reply_identity: &[u8]) -> Node {
    Node::new("iq")
        .attr("to", server_jid())
        .attr("type", "result")
        .attr("id", iq_id.to_owned())
        .with_children([Node::new("pair-device-sign").with_children([Node::new(
            "device-identity",
        )
        .attr("key-index", key_index.to_string())
        .with_bytes(reply_identity.to_vec())])])
}

/// `<iq to="s.whatsapp.net" type="error" id><error code text/></iq>` for a pair-success that
/// failed (03 §4.9), with the code and text of [`PairError::reply`].
pub fn pair_error_reply(iq_id: &str, error: &PairError) -> Node {
    let (code, text) = error.reply();
    Node::new("iq")
        .attr("to", server_jid())
        .attr("type", "error")
        .attr("id", iq_id.to_owned())
        .with_children([Node::new("error")
            .attr("code", code.to_string())
            .attr("text", text)])
}

// ---------------------------------------------------------------------------------------------
// Phone (primary) side: 03 §4.10.

/// What the phone puts into `ADVDeviceIdentity` for a new companion (03 §4.10 step 1).
#[cfg(feature = "server-side")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceIdentityParams {
    /// Random u32 identifying this pairing.
    pub raw_id: u32,
    /// Unix seconds.
    pub timestamp: u64,
    /// The companion's key index in the account's key index list.
    pub key_index: u32,
    /// Build a hosted-account identity (`deviceType` = HOSTED, outer `accountType` = HOSTED,
    /// `06 05` prefixes).
    pub hosted: bool,
}

/// The phone's `<device-identity>` content and its parts (03 §4.10 steps 1-4).
#[cfg(feature = "server-side")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltDeviceIdentity {
    /// Serialized `ADVDeviceIdentity` (`Dd`); the phone checks the reply keeps it unchanged.
    pub details: Vec<u8>,
    /// The account signature (64 bytes).
    pub account_signature: [u8; 64],
    /// Serialized `ADVSignedDeviceIdentity` (details, account key, account signature).
    pub signed_identity: Vec<u8>,
    /// Serialized `ADVSignedDeviceIdentityHMAC`: the `<device-identity>` content.
    pub device_identity_hmac: Vec<u8>,
}

/// Phone side: build the `<device-identity>` with explicit XEdDSA randomness (64 bytes), so
/// that the output is a pure function of the inputs. `accountType` is written explicitly (0 for
/// E2EE), as the reference phone does.
#[cfg(feature = "server-side")]
pub fn build_device_identity_with(
    primary_identity_private: &[u8; 32],
    companion_identity_pub: &[u8; 32],
    adv_secret: &AdvSecret,
    params: &DeviceIdentityParams,
    signature_random: &[u8; 64],
) -> BuiltDeviceIdentity {
    let kind = if params.hosted {
        AdvEncryptionType::Hosted
    } else {
        AdvEncryptionType::E2ee
    } as i32;
    let details = AdvDeviceIdentity {
        raw_id: Some(params.raw_id),
        timestamp: Some(params.timestamp),
        key_index: Some(params.key_index),
        account_type: Some(kind),
        device_type: Some(kind),
    }
    .encode_to_vec();
    let message = account_signature_message(&details, companion_identity_pub, params.hosted);
    let account_signature = xeddsa::sign(primary_identity_private, &message, signature_random);
    let signed_identity = AdvSignedDeviceIdentity {
        details: Some(details.clone()),
        account_signature_key: Some(xeddsa::public_key(primary_identity_private).to_vec()),
        account_signature: Some(account_signature.to_vec()),
        device_signature: None,
    }
    .encode_to_vec();
    let hmac = adv_hmac(adv_secret, &signed_identity, params.hosted).to_vec();
    let device_identity_hmac = AdvSignedDeviceIdentityHmac {
        details: Some(signed_identity.clone()),
        hmac: Some(hmac),
        account_type: Some(kind),
    }
    .encode_to_vec();
    BuiltDeviceIdentity {
        details,
        account_signature,
        signed_identity,
        device_identity_hmac,
    }
}

/// Phone side: build the `<device-identity>` content, drawing XEdDSA randomness from `rng`.
#[cfg(feature = "server-side")]
pub fn build_device_identity<R: rand_core::CryptoRng + ?Sized>(
    rng: &mut R,
    primary_identity_private: &[u8; 32],
    companion_identity_pub: &[u8; 32],
    adv_secret: &AdvSecret,
    params: &DeviceIdentityParams,
) -> BuiltDeviceIdentity {
    let mut random = zeroize::Zeroizing::new([0u8; 64]);
    rng.fill_bytes(&mut *random);
    build_device_identity_with(
        primary_identity_private,
        companion_identity_pub,
        adv_secret,
        params,
        &random,
    )
}

/// Phone side: the pair-success IQ (03 §4.5 / §4.10 step 5):
/// `<iq from="s.whatsapp.net" type="set" id xmlns="md" t><pair-success><device-identity/>
/// <platform name/><device jid lid/>[<biz name/>]</pair-success></iq>`.
#[cfg(feature = "server-side")]
pub fn build_pair_success(
    iq_id: &str,
    server_time: u64,
    device_identity_hmac: &[u8],
    platform: &str,
    jid: &Jid,
    lid: Option<&Jid>,
    business_name: Option<&str>,
) -> Node {
    let mut device = Node::new("device").attr("jid", jid.clone());
    if let Some(lid) = lid {
        device = device.attr("lid", lid.clone());
    }
    let mut children = vec![
        Node::new("device-identity").with_bytes(device_identity_hmac.to_vec()),
        Node::new("platform").attr("name", platform.to_owned()),
        device,
    ];
    if let Some(name) = business_name {
        children.push(Node::new("biz").attr("name", name.to_owned()));
    }
    Node::new("iq")
        .attr("from", server_jid())
        .attr("type", "set")
        .attr("id", iq_id.to_owned())
        .attr("xmlns", "md")
        .attr("t", server_time.to_string())
        .with_children([Node::new("pair-success").with_children(children)])
}

/// What the phone learns from a valid pair-device-sign reply.
#[cfg(feature = "server-side")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedByCompanion {
    /// The `key-index` attribute of the reply.
    pub key_index: Option<u32>,
    /// The companion's device signature (64 bytes), verified.
    pub device_signature: [u8; 64],
    /// The prefix the device signature verified with: `06 01`, or `06 06` for a hosted
    /// account.
    pub device_signature_prefix: [u8; 2],
}

/// Phone side of 03 §4.10 step 6: parse the companion's reply to pair-success, check it is a
/// result carrying the unchanged details and a device signature that verifies with the
/// companion's identity key over `prefix || Dd || I || P.pub`. The accepted prefixes depend on
/// the account type the phone itself wrote into `Dd` (`ADVDeviceIdentity.deviceType`, module
/// docs): `06 01` for an E2EE account; `06 06` (WhatsApp Web, whatsapp-rust, Baileys 6.7.24,
/// our engine) or `06 01` (whatsmeow, Baileys 7) for a hosted one.
///
/// # Errors
/// [`PairError::NotAResult`] for an error reply, [`PairError::Missing`],
/// [`PairError::Protobuf`], [`PairError::DetailsChanged`],
/// [`PairError::DeviceSignatureMismatch`].
#[cfg(feature = "server-side")]
pub fn verify_pair_device_sign(
    reply: &Node,
    expected_details: &[u8],
    companion_identity_pub: &[u8; 32],
    primary_identity_pub: &[u8; 32],
) -> Result<SignedByCompanion, PairError> {
    if reply.get_attr_str("type") != Some("result") {
        return Err(PairError::NotAResult);
    }
    let di = reply
        .child_path(&["pair-device-sign", "device-identity"])
        .ok_or(PairError::Missing("pair-device-sign/device-identity"))?;
    let key_index = di.get_attr_str("key-index").and_then(|k| k.parse().ok());
    let bytes = di
        .content_bytes()
        .ok_or(PairError::Missing("device-identity content"))?;
    let signed = AdvSignedDeviceIdentity::decode(bytes).map_err(|_| PairError::Protobuf {
        what: "ADVSignedDeviceIdentity",
    })?;
    let details = signed
        .details
        .as_deref()
        .ok_or(PairError::Missing("ADVSignedDeviceIdentity.details"))?;
    if details != expected_details {
        return Err(PairError::DetailsChanged);
    }
    let device_signature = sig64(
        signed.device_signature.as_deref(),
        PairError::DeviceSignatureMismatch,
    )?;
    let hosted = AdvDeviceIdentity::decode(expected_details)
        .is_ok_and(|d| d.device_type == Some(AdvEncryptionType::Hosted as i32));
    let families: &[AdvFamily] = match AdvFamily::from_hosted(hosted) {
        AdvFamily::E2ee => &[AdvFamily::E2ee],
        AdvFamily::Hosted => &[AdvFamily::Hosted, AdvFamily::E2ee],
    };
    let family = families
        .iter()
        .copied()
        .find(|f| {
            let message = device_signature_message_for(
                *f,
                details,
                companion_identity_pub,
                primary_identity_pub,
            );
            xeddsa::verify(companion_identity_pub, &message, &device_signature)
        })
        .ok_or(PairError::DeviceSignatureMismatch)?;
    Ok(SignedByCompanion {
        key_index,
        device_signature,
        device_signature_prefix: family.device_prefix(),
    })
}
