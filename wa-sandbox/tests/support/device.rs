//! A scripted companion device for messaging tests: pairs with a sandbox account by QR,
//! logs in over a real WebSocket, and does real Signal work with wa-engine's `signal`
//! functions over a `MemoryStore` (X3DH from fetched bundles, ratchet, sender keys), so the
//! tests check that what the sandbox routes is exactly what a peer can decrypt.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use prost::Message as _;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use wa_engine::binary::Node;
use wa_engine::pair::{PairSuccess, QrCode, verify_pair_success};
use wa_engine::signal::{self, EncType, PreKeyBundle, PublicKey, TrustPolicy};
use wa_engine::store::{
    Credentials, KeyPair as StoreKeyPair, MemoryStore, ProtocolAddress, SenderKeyName,
    SignedPreKey, Store as _, StoreBatch,
};
use wa_engine::{Jid, Server};
use wa_sandbox::SandboxHandle;

use super::{Creds, WsClient, client_iq, iq_ack, login_payload, registration_payload};

/// A paired companion with its Signal state.
pub struct Device {
    pub phone: String,
    pub id: u16,
    pub creds: Creds,
    pub store: Arc<MemoryStore>,
    pub ws: WsClient,
    /// The `ADVSignedDeviceIdentity` (with account key) from pairing: `<device-identity>`.
    pub account: Vec<u8>,
    rng: StdRng,
    next_iq: u32,
    /// Stanzas read while waiting for another one.
    pub backlog: Vec<Node>,
}

fn refs_of(iq: &Node) -> Vec<String> {
    iq.child_by_tag("pair-device")
        .map(|pd| {
            pd.children_by_tag("ref")
                .filter_map(|r| r.content_bytes())
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The address a Signal session with `jid`'s device is stored under.
pub fn address(jid: &Jid) -> ProtocolAddress {
    ProtocolAddress::new(jid.user().to_owned(), u32::from(jid.device()))
}

/// The device JID of `phone`'s device `id` (device 0 without `:0`).
pub fn device_jid(phone: &str, id: u16) -> Jid {
    if id == 0 {
        Jid::pn(phone.to_owned())
    } else {
        Jid::pn(phone.to_owned()).with_device(id)
    }
}

/// `Message{conversation}` plus one byte of WhatsApp padding (05 §3).
pub fn padded_text(text: &str) -> Vec<u8> {
    let mut bytes = wa_proto::wa::Message {
        conversation: Some(text.to_owned()),
        ..Default::default()
    }
    .encode_to_vec();
    bytes.push(1);
    bytes
}

/// The text of a padded `Message` plaintext (unwrapping a `deviceSentMessage`).
pub fn text_of(padded: &[u8]) -> anyhow::Result<String> {
    let n = usize::from(*padded.last().context("empty plaintext")?);
    let body = padded
        .get(..padded.len().saturating_sub(n))
        .context("bad padding")?;
    let msg = wa_proto::wa::Message::decode(body)?;
    if let Some(dsm) = msg.device_sent_message
        && let Some(inner) = dsm.message
    {
        return inner.conversation.context("no conversation in dsm");
    }
    msg.conversation.context("no conversation")
}

/// `Message{deviceSentMessage{destinationJid, message: conversation}}` + padding (05 §6.1).
pub fn padded_dsm(destination: &str, text: &str) -> Vec<u8> {
    let inner = wa_proto::wa::Message {
        conversation: Some(text.to_owned()),
        ..Default::default()
    };
    let mut bytes = wa_proto::wa::Message {
        device_sent_message: Some(Box::new(wa_proto::wa::message::DeviceSentMessage {
            destination_jid: Some(destination.to_owned()),
            message: Some(Box::new(inner)),
            ..Default::default()
        })),
        ..Default::default()
    }
    .encode_to_vec();
    bytes.push(1);
    bytes
}

impl Device {
    /// Pairs a new companion with `phone`'s account by QR (the sandbox phone scans), then
    /// logs in (passive: nothing flows until [`activate`](Self::activate)).
    pub async fn pair(sandbox: &SandboxHandle, phone: &str, seed: u64) -> anyhow::Result<Self> {
        let creds = Creds::seeded(seed);
        let mut reg = WsClient::connect(
            sandbox.ws_url(),
            sandbox.trust_root_key(),
            &creds.noise,
            registration_payload(&creds),
        )
        .await?;
        let pair_device = reg.recv().await?;
        let id = pair_device
            .get_attr_str("id")
            .unwrap_or_default()
            .to_owned();
        reg.send(&iq_ack(&id)).await?;
        let refs = refs_of(&pair_device);
        let qr = QrCode {
            pairing_ref: refs.first().context("a ref")?.clone(),
            noise_pub: *creds.noise.public(),
            identity_pub: *creds.identity.public(),
            adv_secret: wa_engine::pair::AdvSecret::from_bytes(*creds.adv_secret.as_bytes()),
            client_type: None,
        }
        .encode();
        sandbox.phone(phone)?.scan(&qr)?;
        let iq = reg
            .recv_until(|n| n.child_by_tag("pair-success").is_some())
            .await?;
        let ps = PairSuccess::parse(&iq)?;
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
        let verified = verify_pair_success(
            &mut rng,
            &ps,
            &creds.identity.private_bytes(),
            creds.identity.public(),
            &creds.adv_secret,
        )?;
        reg.send(&verified.reply()).await?;
        let (rest, _) = reg.closed().await?;
        if !rest
            .iter()
            .any(|n| n.tag == "stream:error" && n.get_attr_str("code") == Some("515"))
        {
            bail!("no 515 after pairing: {rest:?}");
        }
        let device = ps.jid.device();

        let store = Arc::new(MemoryStore::new());
        let credentials = Credentials::new(
            StoreKeyPair::new(*creds.noise.public(), *creds.noise.private_bytes()),
            StoreKeyPair::new(*creds.identity.public(), *creds.identity.private_bytes()),
            creds.registration_id,
            SignedPreKey {
                id: 1,
                key_pair: StoreKeyPair::new(
                    *creds.signed_prekey.public(),
                    *creds.signed_prekey.private_bytes(),
                ),
                signature: creds.signed_prekey_signature,
            },
            *creds.adv_secret.as_bytes(),
        );
        let mut batch = StoreBatch::new();
        batch.put_credentials(&credentials);
        store.apply(batch)?;
        let ws = Self::connect(sandbox, &creds, phone, device).await?;
        Ok(Self {
            phone: phone.to_owned(),
            id: device,
            creds,
            store,
            ws,
            account: verified.account.clone(),
            rng,
            next_iq: 0,
            backlog: Vec::new(),
        })
    }

    async fn connect(
        sandbox: &SandboxHandle,
        creds: &Creds,
        phone: &str,
        device: u16,
    ) -> anyhow::Result<WsClient> {
        let mut ws = WsClient::connect(
            sandbox.ws_url(),
            sandbox.trust_root_key(),
            &creds.noise,
            login_payload(phone.parse()?, device, true),
        )
        .await?;
        let first = ws.recv().await?;
        if first.tag != "success" {
            bail!("login refused: {first}");
        }
        Ok(ws)
    }

    /// Logs in again on a new connection (the old one is dropped first).
    pub async fn reconnect(&mut self, sandbox: &SandboxHandle) -> anyhow::Result<()> {
        let ws = Self::connect(sandbox, &self.creds, &self.phone, self.id).await?;
        self.ws = ws;
        self.backlog.clear();
        Ok(())
    }

    /// This device's JID.
    pub fn jid(&self) -> Jid {
        device_jid(&self.phone, self.id)
    }

    fn iq_id(&mut self) -> String {
        self.next_iq += 1;
        format!("t.{}-{}", self.id, self.next_iq)
    }

    /// Sends an IQ and waits for its reply (other stanzas go to the backlog).
    pub async fn iq(
        &mut self,
        kind: &'static str,
        xmlns: &'static str,
        children: Vec<Node>,
    ) -> anyhow::Result<Node> {
        let id = self.iq_id();
        let node = client_iq(&id, kind, xmlns, children);
        self.ws.send(&node).await?;
        self.recv_until(|n| n.tag == "iq" && n.get_attr_str("id") == Some(id.as_str()))
            .await
    }

    /// An IQ to a given `to` (groups).
    pub async fn iq_to(
        &mut self,
        to: Jid,
        kind: &'static str,
        xmlns: &'static str,
        children: Vec<Node>,
    ) -> anyhow::Result<Node> {
        let id = self.iq_id();
        let mut node = client_iq(&id, kind, xmlns, children);
        node.attrs.insert("to", to);
        self.ws.send(&node).await?;
        self.recv_until(|n| n.tag == "iq" && n.get_attr_str("id") == Some(id.as_str()))
            .await
    }

    /// The first stanza (backlog first) that matches.
    pub async fn recv_until(
        &mut self,
        mut pred: impl FnMut(&Node) -> bool,
    ) -> anyhow::Result<Node> {
        if let Some(i) = self.backlog.iter().position(&mut pred) {
            return Ok(self.backlog.remove(i));
        }
        loop {
            let node = self.ws.recv().await?;
            if pred(&node) {
                return Ok(node);
            }
            self.backlog.push(node);
        }
    }

    /// The next `<message>` with this id.
    pub async fn message(&mut self, id: &str) -> anyhow::Result<Node> {
        self.recv_until(|n| n.tag == "message" && n.get_attr_str("id") == Some(id))
            .await
    }

    /// Sends `<active/>`; returns the replayed stanzas and the offline marker count. The
    /// replayed messages are acknowledged with receipts, the others with acks, so the
    /// marker comes.
    pub async fn activate(&mut self) -> anyhow::Result<(Vec<Node>, usize)> {
        self.iq("set", "passive", vec![Node::new("active")]).await?;
        let mut replayed = Vec::new();
        loop {
            let node = self.ws.recv().await?;
            if node.tag == "ib"
                && let Some(off) = node.child_by_tag("offline")
            {
                let count = off.get_attr_str("count").unwrap_or("0").parse()?;
                return Ok((replayed, count));
            }
            if node.get_attr_str("offline").is_some() {
                self.acknowledge(&node).await?;
                replayed.push(node);
            } else {
                self.backlog.push(node);
            }
        }
    }

    /// Acknowledges a stanza as clients do: a delivery receipt for a message, an ack for
    /// the rest (05 §10.2, §11).
    pub async fn acknowledge(&mut self, node: &Node) -> anyhow::Result<()> {
        let id = node.get_attr_str("id").unwrap_or_default().to_owned();
        let from = node.get_attr("from").cloned().context("from")?;
        let reply = if node.tag == "message" {
            Node::new("receipt")
                .attr("id", id)
                .attr("to", from)
                .attr_opt("participant", node.get_attr("participant").cloned())
        } else {
            Node::new("ack")
                .attr("class", node.tag.to_string())
                .attr("id", id)
                .attr("to", from)
                .attr_opt("participant", node.get_attr("participant").cloned())
                .attr_opt("type", node.get_attr("type").cloned())
        };
        self.ws.send(&reply).await
    }

    /// Uploads `count` fresh one-time prekeys (generated and stored first, 04 §4.2);
    /// returns their ids.
    pub async fn upload_prekeys(&mut self, count: u32) -> anyhow::Result<Vec<u32>> {
        let records = signal::generate_prekeys(&*self.store, count, &mut self.rng)?;
        let list = Node::new("list").with_children(records.iter().map(|r| {
            Node::new("key").with_children([
                Node::new("id").with_bytes(r.id.to_be_bytes()[1..].to_vec()),
                Node::new("value").with_bytes(r.key_pair.public.as_bytes().to_vec()),
            ])
        }));
        let reply = self
            .iq(
                "set",
                "encrypt",
                vec![
                    Node::new("registration")
                        .with_bytes(self.creds.registration_id.to_be_bytes().to_vec()),
                    Node::new("type").with_bytes(vec![5]),
                    Node::new("identity").with_bytes(self.creds.identity.public().to_vec()),
                    list,
                    Node::new("skey").with_children([
                        Node::new("id").with_bytes(vec![0, 0, 1]),
                        Node::new("value").with_bytes(self.creds.signed_prekey.public().to_vec()),
                        Node::new("signature")
                            .with_bytes(self.creds.signed_prekey_signature.to_vec()),
                    ]),
                ],
            )
            .await?;
        if reply.get_attr_str("type") != Some("result") {
            bail!("upload refused: {reply}");
        }
        signal::mark_prekeys_uploaded(&*self.store)?;
        Ok(records.iter().map(|r| r.id).collect())
    }

    /// Fetches bundles for these device JIDs (04 §4.4); returns the reply.
    pub async fn fetch_bundles(&mut self, jids: &[Jid]) -> anyhow::Result<Node> {
        let key = Node::new("key").with_children(jids.iter().map(|j| {
            Node::new("user")
                .attr("jid", j.clone())
                .attr("reason", "identity")
        }));
        self.iq("get", "encrypt", vec![key]).await
    }

    /// Builds sessions with every device of the list (fetching bundles), as a sender does.
    pub async fn start_sessions(&mut self, jids: &[Jid]) -> anyhow::Result<()> {
        let reply = self.fetch_bundles(jids).await?;
        let list = reply.child_by_tag("list").context("bundle list")?;
        for user in list.children_by_tag("user") {
            let jid = user.get_attr_jid("jid").cloned().context("user jid")?;
            let bundle = parse_bundle(user)?;
            signal::process_prekey_bundle(
                &*self.store,
                &address(&jid),
                &bundle,
                TrustPolicy::AutoTrust,
                &mut self.rng,
            )?;
        }
        Ok(())
    }

    /// `<to jid><enc v="2" type>ciphertext</enc></to>` for one device.
    pub fn enc_to(&mut self, jid: &Jid, plaintext: &[u8]) -> anyhow::Result<Node> {
        let (kind, ct) = signal::encrypt(&*self.store, &address(jid), plaintext)?;
        Ok(Node::new("to")
            .attr("jid", jid.clone())
            .with_children([enc(kind, ct)]))
    }

    /// Decrypts the `pkmsg`/`msg` `<enc>` of a delivered message from `sender`.
    pub fn decrypt(&mut self, sender: &Jid, message: &Node) -> anyhow::Result<Vec<u8>> {
        let enc = message
            .children_by_tag("enc")
            .find(|e| matches!(e.get_attr_str("type"), Some("pkmsg" | "msg")))
            .context("no pairwise enc")?;
        let ct = enc.content_bytes().context("enc bytes")?;
        let addr = address(sender);
        Ok(match enc.get_attr_str("type") {
            Some("pkmsg") => {
                signal::decrypt_pkmsg(
                    &*self.store,
                    &addr,
                    ct,
                    TrustPolicy::AutoTrust,
                    &mut self.rng,
                )?
                .plaintext
            }
            _ => signal::decrypt_msg(&*self.store, &addr, ct, &mut self.rng)?,
        })
    }

    /// The sender-key distribution message bytes of our key for `group` (created lazily).
    pub fn skdm(&mut self, group: &Jid) -> anyhow::Result<Vec<u8>> {
        let name = SenderKeyName::new(group.to_string(), address(&self.jid()));
        Ok(
            signal::sender_key_distribution(&*self.store, &name, &mut self.rng)?
                .serialized()
                .to_vec(),
        )
    }

    /// An `skmsg` for `group`.
    pub fn group_encrypt(&mut self, group: &Jid, plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
        let name = SenderKeyName::new(group.to_string(), address(&self.jid()));
        Ok(signal::encrypt_group(
            &*self.store,
            &name,
            plaintext,
            &mut self.rng,
        )?)
    }

    /// Processes the SKDM pairwise enc and decrypts the `skmsg` of a group message.
    pub fn group_decrypt(
        &mut self,
        group: &Jid,
        sender: &Jid,
        message: &Node,
    ) -> anyhow::Result<Vec<u8>> {
        let name = SenderKeyName::new(group.to_string(), address(sender));
        if message
            .children_by_tag("enc")
            .any(|e| matches!(e.get_attr_str("type"), Some("pkmsg" | "msg")))
        {
            let padded = self.decrypt(sender, message)?;
            let n = usize::from(*padded.last().context("empty")?);
            let msg = wa_proto::wa::Message::decode(&padded[..padded.len() - n])?;
            let skdm = msg
                .sender_key_distribution_message
                .and_then(|s| s.axolotl_sender_key_distribution_message)
                .context("no SKDM")?;
            signal::process_sender_key_distribution(&*self.store, &name, &skdm)?;
        }
        let sk = message
            .children_by_tag("enc")
            .find(|e| e.get_attr_str("type") == Some("skmsg"))
            .and_then(Node::content_bytes)
            .context("no skmsg")?;
        Ok(signal::decrypt_group(&*self.store, &name, sk)?)
    }
}

/// `<enc v="2" type>bytes</enc>`.
pub fn enc(kind: EncType, ct: Vec<u8>) -> Node {
    Node::new("enc")
        .attr("v", "2")
        .attr("type", kind.to_string())
        .with_bytes(ct)
}

fn bytes_of(node: &Node, tag: &str) -> anyhow::Result<Vec<u8>> {
    node.child_by_tag(tag)
        .and_then(Node::content_bytes)
        .map(<[u8]>::to_vec)
        .with_context(|| format!("no <{tag}>"))
}

fn id24(b: &[u8]) -> anyhow::Result<u32> {
    match b {
        [a, b, c] => Ok(u32::from_be_bytes([0, *a, *b, *c])),
        _ => bail!("id not 3 bytes"),
    }
}

/// Parses a `<user>` of a bundle fetch reply (04 §4.4).
pub fn parse_bundle(user: &Node) -> anyhow::Result<PreKeyBundle> {
    if let Some(err) = user.child_by_tag("error") {
        bail!("bundle error: {err}");
    }
    let skey = user.child_by_tag("skey").context("skey")?;
    let prekey = match user.child_by_tag("key") {
        Some(k) => Some((
            id24(&bytes_of(k, "id")?)?,
            PublicKey::from_slice(&bytes_of(k, "value")?).context("key value")?,
        )),
        None => None,
    };
    Ok(PreKeyBundle {
        registration_id: u32::from_be_bytes(
            bytes_of(user, "registration")?
                .try_into()
                .map_err(|_| anyhow::anyhow!("registration not 4 bytes"))?,
        ),
        identity_key: PublicKey::from_slice(&bytes_of(user, "identity")?).context("identity")?,
        signed_prekey_id: id24(&bytes_of(skey, "id")?)?,
        signed_prekey: PublicKey::from_slice(&bytes_of(skey, "value")?).context("skey value")?,
        signed_prekey_signature: bytes_of(skey, "signature")?
            .try_into()
            .map_err(|_| anyhow::anyhow!("signature not 64 bytes"))?,
        prekey,
    })
}

/// The server JID `s.whatsapp.net`.
pub fn server() -> Jid {
    Jid::server_jid(Server::Pn)
}
