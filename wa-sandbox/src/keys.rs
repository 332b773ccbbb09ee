//! The server's prekey store: what each device published for Signal (registration id,
//! identity, signed prekey, one-time prekeys), the prekey IQs that read and write it, and
//! the Signal keys of the simulated primary phones (shared/protocol/04 §4, 05 §14).
//!
//! [`KeyStore`] owns these keys: one [`PublishedKeys`] per linked companion and one
//! [`PhoneKeys`] per account. The server only holds public keys. The simulated phones draw real key pairs with
//! wa-engine's `signal` types (so a client can build a session with device 0, as Baileys
//! 6.7.24 does for its own primary: interop BAILEYS_NOTES §11.1) and keep the private
//! halves too, for the phone's own Signal store (`primary`: peer messages, 05 §13).

use std::collections::BTreeMap;

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use sha1::Digest as _;
use wa_engine::binary::Node;

use crate::accounts::{DevKey, Registration, SignedPreKey};
use crate::stanzas;

/// Below this many one-time prekeys the server tells the device to upload more; it is the
/// clients' own threshold (`MIN_PREKEY_COUNT` = 5 in Baileys, whatsmeow and whatsapp-rust;
/// the real server's is unknown: shared/protocol/05 §14).
pub(crate) const LOW_PREKEY_THRESHOLD: usize = 5;

/// How many one-time prekeys a simulated phone publishes at once (and again whenever fewer
/// than [`LOW_PREKEY_THRESHOLD`] are left). whatsmeow's refill size (04 §4.3).
const PHONE_PREKEY_BATCH: u32 = 50;

/// Largest number of one-time prekeys kept per device; uploads beyond it drop the lowest
/// ids. Clients upload at most 812 at once (04 §4.3).
const MAX_PREKEYS_PER_DEVICE: usize = 10_000;

/// `<notification from="s.whatsapp.net" type="encrypt" id t><count value=N/></notification>`:
/// the device has `count` one-time prekeys left and should upload more (04 §4.3, 05 §14).
pub(crate) fn count_notification(id: &str, t: u64, count: usize) -> Node {
    Node::new("notification")
        .attr("from", stanzas::server_jid())
        .attr("type", "encrypt")
        .attr("id", id.to_owned())
        .attr("t", t.to_string())
        .with_children([Node::new("count").attr("value", count.to_string())])
}

/// Why a prekey upload was refused (answered `<error code="400" text="bad-request"/>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UploadError {
    /// A child is missing or has the wrong byte length (WM enforces 4 / 32 / 3 / 32 / 64:
    /// shared/protocol/04 §4).
    #[error("prekey upload field {0} missing or malformed")]
    Field(&'static str),
}

/// One device's published Signal keys (public halves only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublishedKeys {
    /// Registration id (4 bytes on the wire).
    pub(crate) registration_id: u32,
    /// Identity public key (raw 32).
    pub(crate) identity: [u8; 32],
    /// Signed prekey.
    pub(crate) signed_prekey: SignedPreKey,
    /// One-time prekeys: id (24-bit) -> raw public key.
    pub(crate) prekeys: BTreeMap<u32, [u8; 32]>,
}

/// A parsed prekey upload IQ (shared/protocol/04 §4.2). Every part is optional except the
/// list: a client may upload only more one-time keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Upload {
    pub(crate) registration_id: Option<u32>,
    pub(crate) identity: Option<[u8; 32]>,
    pub(crate) signed_prekey: Option<SignedPreKey>,
    pub(crate) prekeys: Vec<(u32, [u8; 32])>,
}

/// Reads a 3-byte big-endian prekey id.
fn id24(bytes: &[u8]) -> Option<u32> {
    match bytes {
        [a, b, c] => Some(u32::from_be_bytes([0, *a, *b, *c])),
        _ => None,
    }
}

/// Writes a 3-byte big-endian prekey id.
pub(crate) fn id24_bytes(id: u32) -> Vec<u8> {
    id.to_be_bytes()[1..].to_vec()
}

/// Parses `<skey><id>3</id><value>32</value><signature>64</signature></skey>`.
fn parse_skey(skey: &Node) -> Result<SignedPreKey, UploadError> {
    let id = stanzas::child_bytes(skey, "id")
        .as_deref()
        .and_then(id24)
        .ok_or(UploadError::Field("skey/id"))?;
    let public =
        stanzas::child_array::<32>(skey, "value").ok_or(UploadError::Field("skey/value"))?;
    let signature = stanzas::child_array::<64>(skey, "signature")
        .ok_or(UploadError::Field("skey/signature"))?;
    Ok(SignedPreKey {
        id,
        public,
        signature,
    })
}

/// Parses a prekey upload (`<iq xmlns="encrypt" type="set">` with `<registration>`,
/// `<type>`, `<identity>`, `<list>`, `<skey>`: shared/protocol/04 §4.2) or a signed
/// prekey rotation (`<rotate><skey>…</skey></rotate>`, Baileys `rotateSignedPreKey`: 04 §2).
pub(crate) fn parse_upload(iq: &Node) -> Result<Upload, UploadError> {
    let registration_id = match stanzas::child_bytes(iq, "registration") {
        Some(b) => Some(u32::from_be_bytes(
            <[u8; 4]>::try_from(b.as_slice()).map_err(|_| UploadError::Field("registration"))?,
        )),
        None => None,
    };
    let identity = match stanzas::child_bytes(iq, "identity") {
        Some(b) => {
            Some(<[u8; 32]>::try_from(b.as_slice()).map_err(|_| UploadError::Field("identity"))?)
        }
        None => None,
    };
    if let Some(t) = stanzas::child_bytes(iq, "type")
        && t != [wa_engine::signal::DJB_TYPE]
    {
        return Err(UploadError::Field("type"));
    }
    let skey = iq.child_by_tag("skey").or_else(|| {
        iq.child_by_tag("rotate")
            .and_then(|r| r.child_by_tag("skey"))
    });
    let signed_prekey = skey.map(parse_skey).transpose()?;
    let mut prekeys = Vec::new();
    if let Some(list) = iq.child_by_tag("list") {
        for key in list.children_by_tag("key") {
            let id = stanzas::child_bytes(key, "id")
                .as_deref()
                .and_then(id24)
                .ok_or(UploadError::Field("key/id"))?;
            let value =
                stanzas::child_array::<32>(key, "value").ok_or(UploadError::Field("key/value"))?;
            prekeys.push((id, value));
        }
    }
    Ok(Upload {
        registration_id,
        identity,
        signed_prekey,
        prekeys,
    })
}

impl PublishedKeys {
    /// Applies an upload: registration id, identity and signed prekey are replaced when
    /// present, one-time prekeys are added (same id replaces) (05 §14 "Prekeys").
    pub(crate) fn apply(&mut self, upload: Upload) {
        if let Some(r) = upload.registration_id {
            self.registration_id = r;
        }
        if let Some(i) = upload.identity {
            self.identity = i;
        }
        if let Some(s) = upload.signed_prekey {
            self.signed_prekey = s;
        }
        self.prekeys.extend(upload.prekeys);
        while self.prekeys.len() > MAX_PREKEYS_PER_DEVICE {
            self.prekeys.pop_first();
        }
    }

    /// The `<user jid>` of a bundle fetch reply, popping one one-time prekey (the lowest
    /// id) when any is left (04 §4.4; `<key>` omitted when none is left).
    pub(crate) fn take_bundle(&mut self, jid: wa_engine::binary::Value) -> Node {
        let mut children = vec![
            Node::new("registration").with_bytes(self.registration_id.to_be_bytes().to_vec()),
            Node::new("type").with_bytes(vec![wa_engine::signal::DJB_TYPE]),
            Node::new("identity").with_bytes(self.identity.to_vec()),
            skey_node(&self.signed_prekey),
        ];
        if let Some((id, public)) = self.prekeys.pop_first() {
            children.push(Node::new("key").with_children([
                Node::new("id").with_bytes(id24_bytes(id)),
                Node::new("value").with_bytes(public.to_vec()),
            ]));
        }
        Node::new("user").attr("jid", jid).with_children(children)
    }

    /// The `<digest>` of a digest IQ reply (04 §4.5; whatsapp-rust `wacore/src/iq/prekeys.rs`):
    /// registration, type, identity, skey, the list of one-time prekey ids (ascending) and
    /// `hash` = SHA-1(identity ‖ skey value ‖ skey signature ‖ each prekey public, in the
    /// listed order).
    pub(crate) fn digest(&self) -> Node {
        let mut sha = sha1::Sha1::new();
        sha.update(self.identity);
        sha.update(self.signed_prekey.public);
        sha.update(self.signed_prekey.signature);
        for public in self.prekeys.values() {
            sha.update(public);
        }
        let hash = sha.finalize().to_vec();
        Node::new("digest").with_children([
            Node::new("registration").with_bytes(self.registration_id.to_be_bytes().to_vec()),
            Node::new("type").with_bytes(vec![wa_engine::signal::DJB_TYPE]),
            Node::new("identity").with_bytes(self.identity.to_vec()),
            skey_node(&self.signed_prekey),
            Node::new("list").with_children(
                self.prekeys
                    .keys()
                    .map(|id| Node::new("id").with_bytes(id24_bytes(*id))),
            ),
            Node::new("hash").with_bytes(hash),
        ])
    }
}

/// `<skey><id>3</id><value>32</value><signature>64</signature></skey>`.
fn skey_node(skey: &SignedPreKey) -> Node {
    Node::new("skey").with_children([
        Node::new("id").with_bytes(id24_bytes(skey.id)),
        Node::new("value").with_bytes(skey.public.to_vec()),
        Node::new("signature").with_bytes(skey.signature.to_vec()),
    ])
}

/// The Signal keys of a simulated primary phone (device 0): its identity is the account's
/// identity key (the same key signs ADV identities: 04 §2), a registration id, a signed
/// prekey (id 1) signed with it, and a pool of one-time prekeys that the phone refills by
/// itself. Drawn from an RNG seeded by the identity key, so the sandbox's main RNG sequence
/// (and every seeded transcript) is unchanged by them.
pub(crate) struct PhoneKeys {
    pub(crate) published: PublishedKeys,
    /// The signed prekey with its private half: the phone decrypts `pkmsg`s its companions
    /// send it (key requests, shared/protocol/08 §2.2) with it (`primary`).
    pub(crate) signed: wa_engine::signal::SignedPreKeyRecord,
    /// Every one-time prekey the phone ever published, private halves included, by id: a
    /// fetched (popped) key stays here until a `pkmsg` consumes it in the phone's own Signal
    /// store. 50 records (75 bytes each) per refill.
    pub(crate) private_prekeys: BTreeMap<u32, wa_engine::signal::PreKeyRecord>,
    next_prekey_id: u32,
    rng: StdRng,
}

impl std::fmt::Debug for PhoneKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneKeys")
            .field("registration_id", &self.published.registration_id)
            .field("prekeys", &self.published.prekeys.len())
            .finish_non_exhaustive()
    }
}

impl PhoneKeys {
    /// Generates the phone's keys from its identity private key (32 bytes).
    pub(crate) fn generate(identity_secret: &[u8; 32]) -> Self {
        let mut seed = [0u8; 32];
        let digest = sha2::Sha256::new()
            .chain_update(b"wa-sandbox phone signal keys")
            .chain_update(identity_secret)
            .finalize();
        seed.copy_from_slice(&digest);
        let mut rng = StdRng::from_seed(seed);
        let identity = wa_engine::signal::PrivateKey::from_bytes(*identity_secret);
        let signed = wa_engine::signal::SignedPreKeyRecord::generate(1, &identity, &mut rng);
        let registration_id = wa_engine::signal::generate_registration_id(&mut rng);
        let mut keys = Self {
            published: PublishedKeys {
                registration_id,
                identity: *identity.public_key().as_bytes(),
                signed_prekey: SignedPreKey {
                    id: signed.id,
                    public: *signed.key_pair.public.as_bytes(),
                    signature: signed.signature,
                },
                prekeys: BTreeMap::new(),
            },
            signed,
            private_prekeys: BTreeMap::new(),
            next_prekey_id: 1,
            rng,
        };
        keys.refill();
        keys
    }

    /// Publishes another batch when fewer than [`LOW_PREKEY_THRESHOLD`] are left (a phone
    /// is always online and answers its own count notification at once).
    pub(crate) fn refill(&mut self) {
        if self.published.prekeys.len() >= LOW_PREKEY_THRESHOLD {
            return;
        }
        for _ in 0..PHONE_PREKEY_BATCH {
            let id = self.next_prekey_id;
            self.next_prekey_id = if id >= wa_engine::signal::MAX_PREKEY_ID {
                1
            } else {
                id + 1
            };
            let record = wa_engine::signal::PreKeyRecord::generate(id, &mut self.rng);
            self.published
                .prekeys
                .insert(id, *record.key_pair.public.as_bytes());
            self.private_prekeys.insert(id, record);
        }
    }
}

/// Every device's published Signal keys: the companions' (from registration and uploads)
/// and the simulated phones' (device 0). Entries follow the [`Directory`](crate::accounts::Directory):
/// added when an account is created or a companion linked, removed when it goes.
#[derive(Debug, Default)]
pub(crate) struct KeyStore {
    companions: BTreeMap<DevKey, PublishedKeys>,
    phones: BTreeMap<String, PhoneKeys>,
}

impl KeyStore {
    /// Generates the keys of a new account's phone from its identity private key.
    pub(crate) fn add_phone(&mut self, phone: &str, identity_secret: &[u8; 32]) {
        self.phones
            .insert(phone.to_owned(), PhoneKeys::generate(identity_secret));
    }

    /// Stores a companion's keys: at pairing, those it registered (no one-time prekeys yet).
    pub(crate) fn link(&mut self, dev: DevKey, registration: &Registration) {
        self.insert(
            dev,
            PublishedKeys {
                registration_id: registration.registration_id,
                identity: registration.identity_pub,
                signed_prekey: registration.signed_prekey.clone(),
                prekeys: BTreeMap::new(),
            },
        );
    }

    /// Stores a companion's keys as they are (state import).
    pub(crate) fn insert(&mut self, dev: DevKey, keys: PublishedKeys) {
        self.companions.insert(dev, keys);
    }

    /// Forgets an unlinked companion's keys.
    pub(crate) fn unlink(&mut self, dev: &DevKey) {
        self.companions.remove(dev);
    }

    /// Forgets every key of an account (its phone's and its companions'), before it is
    /// replaced by an imported one.
    pub(crate) fn forget_account(&mut self, phone: &str) {
        self.phones.remove(phone);
        self.companions.retain(|(p, _), _| p != phone);
    }

    /// The published keys of a device (device 0: the phone's).
    pub(crate) fn published(&self, phone: &str, device: u16) -> Option<&PublishedKeys> {
        if device == 0 {
            self.phones.get(phone).map(|k| &k.published)
        } else {
            self.companions.get(&(phone.to_owned(), device))
        }
    }

    /// A phone's keys, private halves included.
    pub(crate) fn phone(&self, phone: &str) -> Option<&PhoneKeys> {
        self.phones.get(phone)
    }

    /// A companion's prekey bundle for the phone's own Signal session with it (the phone
    /// fetches it as any sender would: one one-time prekey is popped, 04 §4.4). `None` for a
    /// device without keys.
    pub(crate) fn take_companion_bundle(
        &mut self,
        dev: &DevKey,
    ) -> Option<wa_engine::signal::PreKeyBundle> {
        use wa_engine::signal::PublicKey;
        let keys = self.companions.get_mut(dev)?;
        let prekey = keys.prekeys.pop_first();
        Some(wa_engine::signal::PreKeyBundle {
            registration_id: keys.registration_id,
            identity_key: PublicKey::from_bytes(keys.identity),
            signed_prekey_id: keys.signed_prekey.id,
            signed_prekey: PublicKey::from_bytes(keys.signed_prekey.public),
            signed_prekey_signature: keys.signed_prekey.signature,
            prekey: prekey.map(|(id, k)| (id, PublicKey::from_bytes(k))),
        })
    }

    /// A companion's keys.
    pub(crate) fn companion(&self, dev: &DevKey) -> Option<&PublishedKeys> {
        self.companions.get(dev)
    }

    /// Applies a prekey upload of device `dev` (04 §4.2) and returns its new one-time
    /// prekey count. Device 0 (the phone) is never logged in, so it never uploads.
    pub(crate) fn upload(&mut self, dev: &DevKey, upload: Upload) -> usize {
        match self.companions.get_mut(dev) {
            Some(keys) => {
                keys.apply(upload);
                keys.prekeys.len()
            }
            None => 0,
        }
    }

    /// The `<user jid>` bundle of one device for a fetch (04 §4.4), popping one one-time
    /// prekey; `None` for a device without keys. The phone refills its own pool; for a
    /// companion the second value is its remaining count when it fell below
    /// [`LOW_PREKEY_THRESHOLD`] (the server then asks it for more).
    pub(crate) fn take_bundle(
        &mut self,
        dev: &DevKey,
        jid: wa_engine::binary::Value,
    ) -> Option<(Node, Option<usize>)> {
        if dev.1 == 0 {
            let phone = self.phones.get_mut(&dev.0)?;
            let node = phone.published.take_bundle(jid);
            phone.refill();
            Some((node, None))
        } else {
            let keys = self.companions.get_mut(dev)?;
            let node = keys.take_bundle(jid);
            let left = keys.prekeys.len();
            Some((node, (left < LOW_PREKEY_THRESHOLD).then_some(left)))
        }
    }

    /// Answers a digest IQ for device `dev` (04 §4.5): its `<digest>`, or 404 when the
    /// server has no record of the device.
    pub(crate) fn digest_reply(&self, id: &str, dev: &DevKey) -> Node {
        match self.published(&dev.0, dev.1) {
            Some(keys) => stanzas::iq_result(id, vec![keys.digest()]),
            None => stanzas::iq_error(id, 404, "item-not-found"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skey() -> SignedPreKey {
        SignedPreKey {
            id: 1,
            public: [2; 32],
            signature: [3; 64],
        }
    }

    #[test]
    fn upload_parses_all_parts_and_rejects_short_values() {
        let iq = Node::new("iq").with_children([
            Node::new("registration").with_bytes(vec![0, 0, 0x30, 0x39]),
            Node::new("type").with_bytes(vec![5]),
            Node::new("identity").with_bytes(vec![7; 32]),
            Node::new("list").with_children([Node::new("key").with_children([
                Node::new("id").with_bytes(vec![0, 1, 0]),
                Node::new("value").with_bytes(vec![9; 32]),
            ])]),
            Node::new("skey").with_children([
                Node::new("id").with_bytes(vec![0, 0, 1]),
                Node::new("value").with_bytes(vec![2; 32]),
                Node::new("signature").with_bytes(vec![3; 64]),
            ]),
        ]);
        let up = parse_upload(&iq).unwrap();
        assert_eq!(up.registration_id, Some(12345));
        assert_eq!(up.identity, Some([7; 32]));
        assert_eq!(up.signed_prekey, Some(skey()));
        assert_eq!(up.prekeys, vec![(256, [9; 32])]);

        let bad =
            Node::new("iq").with_children([Node::new("list").with_children([Node::new("key")
                .with_children([
                    Node::new("id").with_bytes(vec![0, 1]),
                    Node::new("value").with_bytes(vec![9; 32]),
                ])])]);
        assert_eq!(parse_upload(&bad), Err(UploadError::Field("key/id")));
    }

    #[test]
    fn bundle_pops_lowest_prekey_then_omits_key() {
        let mut keys = PublishedKeys {
            registration_id: 1,
            identity: [1; 32],
            signed_prekey: skey(),
            prekeys: BTreeMap::from([(5, [5; 32]), (3, [3; 32])]),
        };
        let jid = wa_engine::binary::Value::Jid(wa_engine::Jid::pn("1555"));
        let first = keys.take_bundle(jid.clone());
        let key = first.child_by_tag("key").unwrap();
        assert_eq!(stanzas::child_bytes(key, "id"), Some(vec![0, 0, 3]));
        keys.take_bundle(jid.clone());
        let third = keys.take_bundle(jid);
        assert!(third.child_by_tag("key").is_none());
        assert!(third.child_by_tag("skey").is_some());
    }

    #[test]
    fn phone_keys_are_real_and_signed_by_the_identity() {
        let secret = [42u8; 32];
        let keys = PhoneKeys::generate(&secret);
        let identity = wa_engine::signal::PublicKey::from_bytes(keys.published.identity);
        let spk = wa_engine::signal::PublicKey::from_bytes(keys.published.signed_prekey.public);
        assert!(
            identity.verify_signature(&spk.serialize(), &keys.published.signed_prekey.signature)
        );
        assert_eq!(
            keys.published.identity,
            x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(secret)).to_bytes()
        );
        assert_eq!(keys.published.prekeys.len(), PHONE_PREKEY_BATCH as usize);
        // Same identity, same keys (seeded from it).
        assert_eq!(PhoneKeys::generate(&secret).published, keys.published);
    }
}
