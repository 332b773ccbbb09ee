//! The sandbox's messaging side over real loopback sockets, with scripted devices that do
//! real Signal work (wa-engine's `signal` over a `MemoryStore`): prekey store, usync,
//! message and receipt routing to every device, the offline queue, retries and device
//! notifications (shared/protocol/04 §4, 05 §5, §8-§14, 06 §4). Groups are in
//! `tests/groups.rs`.

mod support;

use std::path::Path;

use anyhow::Context as _;
use prost::Message as _;
use sha1::Digest as _;
use support::device::{Device, device_jid, padded_dsm, padded_text, parse_bundle, text_of};
use wa_engine::Jid;
use wa_engine::binary::{self, Node};
use wa_sandbox::{Sandbox, SandboxConfig, SandboxHandle, phash};

const ALICE: &str = "15551230001";
const BOB: &str = "15551230002";

async fn start(seed: u64) -> anyhow::Result<SandboxHandle> {
    let sandbox = Sandbox::start(
        SandboxConfig::default()
            .with_seed(seed)
            .with_first_stanza_delay(std::time::Duration::ZERO),
    )
    .await?;
    sandbox.create_account(ALICE)?;
    sandbox.create_account(BOB)?;
    Ok(sandbox)
}

fn bytes(node: &Node, tag: &str) -> Vec<u8> {
    node.child_by_tag(tag)
        .and_then(Node::content_bytes)
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

fn id24(b: &[u8]) -> u32 {
    u32::from_be_bytes([0, b[0], b[1], b[2]])
}

/// A text message stanza with one `<to>` per device.
fn message(id: &str, to: Jid, tos: Vec<Node>, identity: Option<&[u8]>) -> Node {
    let mut children = vec![Node::new("participants").with_children(tos)];
    if let Some(di) = identity {
        children.push(Node::new("device-identity").with_bytes(di.to_vec()));
    }
    Node::new("message")
        .attr("id", id.to_owned())
        .attr("type", "text")
        .attr("to", to)
        .with_children(children)
}

async fn count(device: &mut Device) -> anyhow::Result<usize> {
    let reply = device
        .iq("get", "encrypt", vec![Node::new("count")])
        .await?;
    Ok(reply
        .child_by_tag("count")
        .and_then(|c| c.get_attr_str("value"))
        .context("count value")?
        .parse()?)
}

#[tokio::test]
async fn prekeys_are_counted_served_once_each_and_then_omitted() -> anyhow::Result<()> {
    let sandbox = start(1).await?;
    let mut alice = Device::pair(&sandbox, ALICE, 1).await?;
    let mut bob = Device::pair(&sandbox, BOB, 2).await?;
    alice.activate().await?;
    bob.activate().await?;
    assert_eq!(count(&mut alice).await?, 0);
    let ids = alice.upload_prekeys(6).await?;
    assert_eq!(count(&mut alice).await?, 6);

    // Each fetch pops the lowest one-time prekey; the signed prekey is always there.
    let mut served = Vec::new();
    for _ in 0..6 {
        let reply = bob.fetch_bundles(&[alice.jid()]).await?;
        let user = reply.child_path(&["list", "user"]).context("user")?;
        let bundle = parse_bundle(user)?;
        assert!(bundle.verify_signature());
        assert_eq!(
            bundle.identity_key.as_bytes(),
            alice.creds.identity.public()
        );
        assert_eq!(bundle.registration_id, alice.creds.registration_id);
        served.push(bundle.prekey.context("one-time prekey")?.0);
    }
    assert_eq!(served, ids);
    let reply = bob.fetch_bundles(&[alice.jid()]).await?;
    let user = reply.child_path(&["list", "user"]).context("user")?;
    assert!(user.child_by_tag("key").is_none(), "none left: {user}");
    assert!(user.child_by_tag("skey").is_some());
    assert_eq!(count(&mut alice).await?, 0);

    // Below 5 left, Alice was told to upload more (once, until she acks it).
    let low = alice
        .recv_until(|n| n.tag == "notification" && n.get_attr_str("type") == Some("encrypt"))
        .await?;
    assert_eq!(
        low.get_attr_jid("from").map(Jid::is_server_jid),
        Some(true),
        "from is the server JID encoded as a JID: {low}"
    );
    let value: usize = low
        .child_by_tag("count")
        .and_then(|c| c.get_attr_str("value"))
        .context("count")?
        .parse()?;
    assert!(value < 5);

    // A device that does not exist is an <error> in its <user>; the primary phone
    // (device 0) has real keys signed by the account's identity.
    let reply = bob
        .fetch_bundles(&[device_jid(ALICE, 0), device_jid(ALICE, 42)])
        .await?;
    let users: Vec<&Node> = reply
        .child_by_tag("list")
        .context("list")?
        .children_by_tag("user")
        .collect();
    assert_eq!(users.len(), 2);
    let phone = parse_bundle(users[0])?;
    assert!(phone.verify_signature());
    assert_eq!(
        Some(*phone.identity_key.as_bytes()),
        sandbox.phone(ALICE)?.identity_pub()
    );
    assert!(phone.prekey.is_some());
    let err = users[1].child_by_tag("error").context("error")?;
    assert_eq!(err.get_attr_str("code"), Some("404"));
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn digest_hashes_identity_signed_prekey_and_remaining_prekeys() -> anyhow::Result<()> {
    let sandbox = start(2).await?;
    let mut alice = Device::pair(&sandbox, ALICE, 3).await?;
    alice.activate().await?;
    alice.upload_prekeys(3).await?;
    let reply = alice
        .iq("get", "encrypt", vec![Node::new("digest")])
        .await?;
    let digest = reply.child_by_tag("digest").context("digest")?;
    assert_eq!(bytes(digest, "identity"), alice.creds.identity.public());
    assert_eq!(
        bytes(digest, "registration"),
        alice.creds.registration_id.to_be_bytes()
    );
    assert_eq!(bytes(digest, "type"), [5]);
    let list: Vec<u32> = digest
        .child_by_tag("list")
        .context("list")?
        .children_by_tag("id")
        .filter_map(Node::content_bytes)
        .map(id24)
        .collect();
    assert_eq!(list, vec![1, 2, 3]);
    // SHA-1(identity ‖ skey value ‖ skey signature ‖ each prekey public), 04 §4.5.
    let mut sha = sha1::Sha1::new();
    sha.update(alice.creds.identity.public());
    sha.update(alice.creds.signed_prekey.public());
    sha.update(alice.creds.signed_prekey_signature);
    for id in list {
        let record = wa_engine::signal::PreKeyRecord::from_bytes(
            &wa_engine::Store::prekey(&*alice.store, id)?.context("stored prekey")?,
        )?;
        sha.update(record.key_pair.public.as_bytes());
    }
    assert_eq!(bytes(digest, "hash"), sha.finalize().to_vec());
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn usync_lists_devices_with_key_indexes_signed_by_the_primary() -> anyhow::Result<()> {
    let sandbox = start(3).await?;
    let mut a1 = Device::pair(&sandbox, ALICE, 4).await?;
    let mut a2 = Device::pair(&sandbox, ALICE, 5).await?;
    a1.activate().await?;
    a2.activate().await?;
    let usync = |users: Vec<Node>, query: Vec<Node>| {
        vec![
            Node::new("usync")
                .attr("sid", "s1")
                .attr("mode", "query")
                .attr("last", "true")
                .attr("index", "0")
                .attr("context", "message")
                .with_children([
                    Node::new("query").with_children(query),
                    Node::new("list").with_children(users),
                ]),
        ]
    };
    let reply = a1
        .iq(
            "get",
            "usync",
            usync(
                vec![
                    Node::new("user").attr("jid", Jid::pn(ALICE)),
                    Node::new("user").attr("jid", Jid::pn(BOB)),
                ],
                vec![Node::new("devices").attr("version", "2"), Node::new("lid")],
            ),
        )
        .await?;
    let sync = reply.child_by_tag("usync").context("usync")?;
    assert_eq!(sync.get_attr_str("sid"), Some("s1"));
    let users: Vec<&Node> = sync
        .child_by_tag("list")
        .context("list")?
        .children_by_tag("user")
        .collect();
    let alice = users[0];
    assert_eq!(alice.get_attr_jid("jid"), Some(&Jid::pn(ALICE)));
    let list = alice
        .child_path(&["devices", "device-list"])
        .context("device-list")?;
    let devices: Vec<(String, Option<String>)> = list
        .children_by_tag("device")
        .map(|d| {
            (
                d.get_attr_str("id").unwrap_or_default().to_owned(),
                d.get_attr_str("key-index").map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        devices,
        vec![
            ("0".to_owned(), None),
            (a1.id.to_string(), Some("1".to_owned())),
            (a2.id.to_string(), Some("2".to_owned())),
        ]
    );
    assert_eq!(
        list.get_attr_str("hash"),
        Some(phash([(ALICE, 0), (ALICE, a1.id), (ALICE, a2.id)]).as_str())
    );
    // ADVSignedKeyIndexList, signed by the primary over 06 02 ‖ details (03 §14).
    let kil = alice
        .child_path(&["devices", "key-index-list"])
        .context("key-index-list")?;
    let signed =
        wa_proto::wa::AdvSignedKeyIndexList::decode(kil.content_bytes().context("bytes")?)?;
    let details = signed.details.context("details")?;
    let key: [u8; 32] = signed
        .account_signature_key
        .context("key")?
        .try_into()
        .map_err(|_| anyhow::anyhow!("key length"))?;
    assert_eq!(Some(key), sandbox.phone(ALICE)?.identity_pub());
    let sig: [u8; 64] = signed
        .account_signature
        .context("sig")?
        .try_into()
        .map_err(|_| anyhow::anyhow!("sig length"))?;
    let mut msg = vec![6, 2];
    msg.extend_from_slice(&details);
    assert!(wa_engine::signal::xeddsa::verify(&key, &msg, &sig));
    let list = wa_proto::wa::AdvKeyIndexList::decode(details.as_slice())?;
    assert_eq!(list.valid_indexes, vec![1, 2]);
    assert_eq!(list.current_index, Some(2));
    assert_eq!(
        Some(list.timestamp()),
        kil.get_attr_str("ts").and_then(|t| t.parse().ok())
    );
    let lid = alice.child_by_tag("lid").context("lid")?;
    assert_eq!(
        lid.get_attr_jid("val").map(|j| j.user().to_owned()),
        Some(sandbox.router().account(ALICE)?.lid)
    );
    // Bob has only his phone: no key-index-list.
    let bob_devices = users[1].child_by_tag("devices").context("devices")?;
    assert_eq!(
        bob_devices
            .child_by_tag("device-list")
            .map(|l| l.children().len()),
        Some(1)
    );
    assert!(bob_devices.child_by_tag("key-index-list").is_none());

    // "Is this number on WhatsApp?" (06 §4).
    let reply = a1
        .iq(
            "get",
            "usync",
            usync(
                vec![
                    Node::new("user")
                        .with_children([Node::new("contact").with_text(format!("+{BOB}"))]),
                    Node::new("user")
                        .with_children([Node::new("contact").with_text("+15550009999")]),
                ],
                vec![Node::new("contact")],
            ),
        )
        .await?;
    let users: Vec<&Node> = reply
        .child_path(&["usync", "list"])
        .context("list")?
        .children_by_tag("user")
        .collect();
    assert_eq!(users[0].get_attr_jid("jid"), Some(&Jid::pn(BOB)));
    let contact = users[0].child_by_tag("contact").context("contact")?;
    assert_eq!(contact.get_attr_str("type"), Some("in"));
    assert_eq!(
        users[1]
            .child_by_tag("contact")
            .and_then(|c| c.get_attr_str("type")),
        Some("out")
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn text_reaches_every_recipient_device_and_own_other_devices_and_receipts_flow_back()
-> anyhow::Result<()> {
    let sandbox = start(4).await?;
    sandbox.phone(ALICE)?.set_push_name("Alice");
    let mut a1 = Device::pair(&sandbox, ALICE, 6).await?;
    let mut a2 = Device::pair(&sandbox, ALICE, 7).await?;
    let mut b1 = Device::pair(&sandbox, BOB, 8).await?;
    for d in [&mut a1, &mut a2, &mut b1] {
        d.activate().await?;
        d.upload_prekeys(10).await?;
    }
    // Fan-out as 05 §6.1: recipient devices get the text, own devices the dsm.
    let bob0 = device_jid(BOB, 0);
    let alice0 = device_jid(ALICE, 0);
    a1.start_sessions(&[bob0.clone(), b1.jid(), alice0.clone(), a2.jid()])
        .await?;
    let plain = padded_text("hello bob");
    let dsm = padded_dsm(&format!("{BOB}@s.whatsapp.net"), "hello bob");
    let tos = vec![
        a1.enc_to(&bob0, &plain)?,
        a1.enc_to(&b1.jid(), &plain)?,
        a1.enc_to(&alice0, &dsm)?,
        a1.enc_to(&a2.jid(), &dsm)?,
    ];
    let account = a1.account.clone();
    a1.ws
        .send(&message("3EB0AA01", Jid::pn(BOB), tos, Some(&account)))
        .await?;
    let ack = a1
        .recv_until(|n| n.tag == "ack" && n.get_attr_str("id") == Some("3EB0AA01"))
        .await?;
    assert_eq!(ack.get_attr_str("class"), Some("message"));
    assert_eq!(ack.get_attr_jid("from"), Some(&Jid::pn(BOB)));
    assert!(
        ack.get_attr_str("t")
            .is_some_and(|t| t.parse::<u64>().is_ok())
    );
    assert!(
        ack.get_attr("phash").is_none(),
        "every device listed: {ack}"
    );
    assert!(ack.get_attr("error").is_none());

    let got = b1.message("3EB0AA01").await?;
    assert_eq!(got.get_attr_jid("from"), Some(&a1.jid()));
    assert_eq!(got.get_attr_str("type"), Some("text"));
    assert_eq!(got.get_attr_str("notify"), Some("Alice"));
    assert!(got.get_attr("t").is_some());
    assert!(got.get_attr("recipient").is_none());
    assert!(got.child_by_tag("participants").is_none());
    assert_eq!(
        got.child_by_tag("device-identity")
            .and_then(Node::content_bytes),
        Some(account.as_slice()),
        "a pkmsg carries the sender's device identity"
    );
    assert_eq!(text_of(&b1.decrypt(&a1.jid(), &got)?)?, "hello bob");

    let own = a2.message("3EB0AA01").await?;
    assert_eq!(own.get_attr_jid("from"), Some(&a1.jid()));
    assert_eq!(own.get_attr_jid("recipient"), Some(&Jid::pn(BOB)));
    assert!(own.get_attr("notify").is_none());
    assert_eq!(text_of(&a2.decrypt(&a1.jid(), &own)?)?, "hello bob");
    // The primary phones got theirs too.
    for phone in [BOB, ALICE] {
        assert!(
            sandbox
                .phone(phone)?
                .received()
                .iter()
                .any(|n| n.get_attr_str("id") == Some("3EB0AA01")),
            "{phone}'s phone"
        );
    }

    // Bob's delivery receipt goes to Alice's devices (not back to Bob).
    b1.ws
        .send(
            &Node::new("receipt")
                .attr("id", "3EB0AA01")
                .attr("to", a1.jid()),
        )
        .await?;
    for device in [&mut a1, &mut a2] {
        let receipt = device
            .recv_until(|n| n.tag == "receipt" && n.get_attr_str("id") == Some("3EB0AA01"))
            .await?;
        assert_eq!(receipt.get_attr_jid("from"), Some(&b1.jid()));
        assert!(receipt.get_attr("type").is_none());
        assert!(
            receipt.get_attr("t").is_some(),
            "t is required by whatsmeow"
        );
    }
    // Alice's other device reports its copy with a `sender` receipt (Baileys shape: to =
    // the sending device, recipient = the chat).
    a2.ws
        .send(
            &Node::new("receipt")
                .attr("id", "3EB0AA01")
                .attr("to", a1.jid())
                .attr("recipient", Jid::pn(BOB))
                .attr("type", "sender"),
        )
        .await?;
    let receipt = a1
        .recv_until(|n| {
            n.tag == "receipt"
                && n.get_attr_str("id") == Some("3EB0AA01")
                && n.get_attr_str("type") == Some("sender")
        })
        .await?;
    assert_eq!(receipt.get_attr_jid("from"), Some(&a2.jid()));
    assert_eq!(receipt.get_attr_jid("recipient"), Some(&Jid::pn(BOB)));

    // Bob answers on the established session (a `msg` this time) and Alice reads it.
    b1.start_sessions(&[a2.jid(), alice0.clone(), bob0.clone()])
        .await?;
    let reply = padded_text("hi alice");
    let tos = vec![
        b1.enc_to(&a1.jid(), &reply)?,
        b1.enc_to(&a2.jid(), &reply)?,
        b1.enc_to(&alice0, &reply)?,
        b1.enc_to(
            &bob0,
            &padded_dsm(&format!("{ALICE}@s.whatsapp.net"), "hi alice"),
        )?,
    ];
    assert_eq!(
        tos[0]
            .child_by_tag("enc")
            .and_then(|e| e.get_attr_str("type")),
        Some("msg")
    );
    b1.ws
        .send(&message("3EB0BB01", Jid::pn(ALICE), tos, None))
        .await?;
    let got = a1.message("3EB0BB01").await?;
    assert_eq!(text_of(&a1.decrypt(&b1.jid(), &got)?)?, "hi alice");
    assert!(got.get_attr("notify").is_none(), "Bob has no push name");
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn ack_reports_device_drift_and_errors() -> anyhow::Result<()> {
    let sandbox = start(5).await?;
    let mut a1 = Device::pair(&sandbox, ALICE, 9).await?;
    let mut b1 = Device::pair(&sandbox, BOB, 10).await?;
    a1.activate().await?;
    b1.activate().await?;
    // Only Bob's phone listed: Bob's companion and Alice's phone are missing.
    let bob0 = device_jid(BOB, 0);
    a1.start_sessions(std::slice::from_ref(&bob0)).await?;
    let tos = vec![a1.enc_to(&bob0, &padded_text("partial"))?];
    a1.ws
        .send(&message("3EB0CC01", Jid::pn(BOB), tos, None))
        .await?;
    let ack = a1
        .recv_until(|n| n.tag == "ack" && n.get_attr_str("id") == Some("3EB0CC01"))
        .await?;
    assert_eq!(
        ack.get_attr_str("phash"),
        Some(phash([(ALICE, 0), (ALICE, a1.id), (BOB, 0), (BOB, b1.id)]).as_str())
    );

    // No type: refused with 479 (stanza validation failed, 05 §8).
    let bad = Node::new("message")
        .attr("id", "3EB0CC02")
        .attr("to", Jid::pn(BOB))
        .with_children([Node::new("enc")
            .attr("v", "2")
            .attr("type", "msg")
            .with_bytes(vec![1])]);
    a1.ws.send(&bad).await?;
    let ack = a1
        .recv_until(|n| n.tag == "ack" && n.get_attr_str("id") == Some("3EB0CC02"))
        .await?;
    assert_eq!(ack.get_attr_str("error"), Some("479"));
    // No enc at all.
    let empty = Node::new("message")
        .attr("id", "3EB0CC03")
        .attr("type", "text")
        .attr("to", Jid::pn(BOB));
    a1.ws.send(&empty).await?;
    let ack = a1
        .recv_until(|n| n.tag == "ack" && n.get_attr_str("id") == Some("3EB0CC03"))
        .await?;
    assert_eq!(ack.get_attr_str("error"), Some("479"));
    // Unknown user and unknown group.
    let tos = vec![
        Node::new("to")
            .attr("jid", Jid::pn("15550009999"))
            .with_children([Node::new("enc")
                .attr("v", "2")
                .attr("type", "msg")
                .with_bytes(vec![1])]),
    ];
    a1.ws
        .send(&message(
            "3EB0CC04",
            Jid::pn("15550009999"),
            tos.clone(),
            None,
        ))
        .await?;
    let ack = a1
        .recv_until(|n| n.tag == "ack" && n.get_attr_str("id") == Some("3EB0CC04"))
        .await?;
    assert_eq!(ack.get_attr_str("error"), Some("404"));
    a1.ws
        .send(&message(
            "3EB0CC05",
            Jid::group("120363000000000000"),
            tos,
            None,
        ))
        .await?;
    let ack = a1
        .recv_until(|n| n.tag == "ack" && n.get_attr_str("id") == Some("3EB0CC05"))
        .await?;
    assert_eq!(ack.get_attr_str("error"), Some("404"));
    // Nothing of these reached Bob's companion.
    assert_eq!(sandbox.router().account(BOB)?.devices[0].queued, 0);
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn offline_device_gets_its_queue_in_order_after_active_then_the_marker() -> anyhow::Result<()>
{
    let sandbox = start(6).await?;
    let mut a1 = Device::pair(&sandbox, ALICE, 11).await?;
    let mut b1 = Device::pair(&sandbox, BOB, 12).await?;
    a1.activate().await?;
    b1.activate().await?;
    b1.upload_prekeys(10).await?;
    // Bob goes away.
    sandbox.faults().drop_connection(BOB, b1.id);
    b1.ws.closed().await?;
    a1.start_sessions(&[b1.jid()]).await?;
    let ids = ["3EB0DD01", "3EB0DD02", "3EB0DD03"];
    for (i, id) in ids.iter().enumerate() {
        let tos = vec![a1.enc_to(&b1.jid(), &padded_text(&format!("offline {i}")))?];
        a1.ws.send(&message(id, Jid::pn(BOB), tos, None)).await?;
        let ack = a1
            .recv_until(|n| n.tag == "ack" && n.get_attr_str("id") == Some(*id))
            .await?;
        assert!(ack.get_attr("error").is_none());
    }
    assert_eq!(sandbox.router().account(BOB)?.devices[0].queued, 3);

    // Passive login: nothing flows before <active/>.
    b1.reconnect(&sandbox).await?;
    let ping = b1.iq("get", "w:p", vec![]).await?;
    assert_eq!(ping.get_attr_str("type"), Some("result"));
    assert!(
        b1.backlog.is_empty(),
        "held back until active: {:?}",
        b1.backlog
    );
    // Take the replay but acknowledge only the first message, then drop again.
    b1.iq("set", "passive", vec![Node::new("active")]).await?;
    let mut replay = Vec::new();
    for _ in 0..3 {
        replay.push(b1.recv_until(|n| n.tag == "message").await?);
    }
    let got: Vec<&str> = replay.iter().filter_map(|n| n.get_attr_str("id")).collect();
    assert_eq!(got, ids);
    assert!(
        replay
            .iter()
            .all(|n| n.get_attr_str("offline") == Some("1"))
    );
    for (i, node) in replay.iter().enumerate() {
        assert_eq!(
            text_of(&b1.decrypt(&a1.jid(), node)?)?,
            format!("offline {i}")
        );
    }
    b1.acknowledge(&replay[0]).await?;
    // The receipt reaches Alice (so it was processed) before Bob drops.
    a1.recv_until(|n| n.tag == "receipt" && n.get_attr_str("id") == Some(ids[0]))
        .await?;
    sandbox.faults().drop_connection(BOB, b1.id);
    b1.ws.closed().await?;

    // Un-acknowledged stanzas come again, still in order; then the marker with the count.
    b1.reconnect(&sandbox).await?;
    let (again, marker) = b1.activate().await?;
    let got: Vec<&str> = again.iter().filter_map(|n| n.get_attr_str("id")).collect();
    assert_eq!(got, &ids[1..]);
    assert_eq!(marker, 2);
    assert_eq!(sandbox.router().account(BOB)?.devices[0].queued, 0);

    // Live delivery after that carries no offline attribute.
    let tos = vec![a1.enc_to(&b1.jid(), &padded_text("live"))?];
    a1.ws
        .send(&message("3EB0DD04", Jid::pn(BOB), tos, None))
        .await?;
    let live = b1.message("3EB0DD04").await?;
    assert!(live.get_attr("offline").is_none());
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn retry_receipt_reaches_only_the_sending_device_and_the_resend_only_the_requester()
-> anyhow::Result<()> {
    let sandbox = start(7).await?;
    let mut a1 = Device::pair(&sandbox, ALICE, 13).await?;
    let mut a2 = Device::pair(&sandbox, ALICE, 14).await?;
    let mut b1 = Device::pair(&sandbox, BOB, 15).await?;
    let mut b2 = Device::pair(&sandbox, BOB, 16).await?;
    for d in [&mut a1, &mut a2, &mut b1, &mut b2] {
        d.activate().await?;
        d.upload_prekeys(10).await?;
    }
    a1.start_sessions(&[b1.jid(), b2.jid()]).await?;
    let tos = vec![
        a1.enc_to(&b1.jid(), &padded_text("x"))?,
        a1.enc_to(&b2.jid(), &padded_text("x"))?,
    ];
    a1.ws
        .send(&message("3EB0EE01", Jid::pn(BOB), tos, None))
        .await?;
    b1.message("3EB0EE01").await?;
    let keep = b2.message("3EB0EE01").await?;
    // b1 claims it could not decrypt.
    let retry = Node::new("receipt")
        .attr("id", "3EB0EE01")
        .attr("to", a1.jid())
        .attr("type", "retry")
        .with_children([
            Node::new("retry")
                .attr("v", "1")
                .attr("count", "1")
                .attr("id", "3EB0EE01")
                .attr("t", "1"),
            Node::new("registration").with_bytes(b1.creds.registration_id.to_be_bytes().to_vec()),
        ]);
    b1.ws.send(&retry).await?;
    let got = a1
        .recv_until(|n| n.tag == "receipt" && n.get_attr_str("type") == Some("retry"))
        .await?;
    assert_eq!(got.get_attr_jid("from"), Some(&b1.jid()));
    assert!(got.child_by_tag("retry").is_some() && got.child_by_tag("registration").is_some());
    // The re-send goes pairwise to b1 only (05 §9.4: `to` = the requesting device).
    let resend = Node::new("message")
        .attr("id", "3EB0EE01")
        .attr("type", "text")
        .attr("to", b1.jid())
        .with_children([a1
            .enc_to(&b1.jid(), &padded_text("x again"))?
            .child_by_tag("enc")
            .context("enc")?
            .clone()
            .attr("count", "1")]);
    a1.ws.send(&resend).await?;
    let again = b1
        .recv_until(|n| {
            n.tag == "message"
                && n.child_by_tag("enc")
                    .is_some_and(|e| e.get_attr_str("count") == Some("1"))
        })
        .await?;
    assert_eq!(text_of(&b1.decrypt(&a1.jid(), &again)?)?, "x again");
    // a2 never saw the retry receipt; b2 did not get the re-send.
    b2.acknowledge(&keep).await?;
    a2.recv_until(|n| n.tag == "receipt" && n.get_attr_jid("from") == Some(&b2.jid()))
        .await?;
    assert!(
        !a2.backlog
            .iter()
            .any(|n| n.get_attr_str("type") == Some("retry")),
        "{:?}",
        a2.backlog
    );
    assert_eq!(sandbox.router().account(BOB)?.devices[1].queued, 0);
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn linking_and_unlinking_a_device_notifies_own_devices_and_chat_partners()
-> anyhow::Result<()> {
    let sandbox = start(8).await?;
    let mut a1 = Device::pair(&sandbox, ALICE, 17).await?;
    let mut b1 = Device::pair(&sandbox, BOB, 18).await?;
    a1.activate().await?;
    b1.activate().await?;
    b1.upload_prekeys(2).await?;
    // Alice and Bob have a chat.
    a1.start_sessions(&[b1.jid()]).await?;
    let tos = vec![a1.enc_to(&b1.jid(), &padded_text("hi"))?];
    a1.ws
        .send(&message("3EB0FF01", Jid::pn(BOB), tos, None))
        .await?;
    b1.message("3EB0FF01").await?;

    let a2 = Device::pair(&sandbox, ALICE, 19).await?;
    let expected_hash = phash([(ALICE, 0), (ALICE, a1.id), (ALICE, a2.id)]);
    for d in [&mut a1, &mut b1] {
        let n = d
            .recv_until(|n| n.tag == "notification" && n.get_attr_str("type") == Some("devices"))
            .await?;
        assert_eq!(n.get_attr_jid("from"), Some(&Jid::pn(ALICE)));
        let add = n.child_by_tag("add").context("add")?;
        assert_eq!(
            add.get_attr_str("device_hash"),
            Some(expected_hash.as_str())
        );
        let dev = add.child_by_tag("device").context("device")?;
        assert_eq!(dev.get_attr_jid("jid"), Some(&a2.jid()));
        assert_eq!(dev.get_attr_str("key-index"), Some("2"));
        assert!(add.child_by_tag("key-index-list").is_some());
        d.acknowledge(&n).await?;
    }
    sandbox.phone(ALICE)?.remove_device(a2.id)?;
    let n = b1
        .recv_until(|n| n.tag == "notification" && n.child_by_tag("remove").is_some())
        .await?;
    let remove = n.child_by_tag("remove").context("remove")?;
    assert_eq!(
        remove.get_attr_str("device_hash"),
        Some(phash([(ALICE, 0), (ALICE, a1.id)]).as_str())
    );
    assert_eq!(
        remove
            .child_by_tag("device")
            .and_then(|d| d.get_attr_jid("jid")),
        Some(&a2.jid())
    );
    sandbox.shutdown().await;
    Ok(())
}

fn vectors() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/stanzas/stanzas.json")
}

fn vector_hex(id: &str) -> Vec<u8> {
    let path = vectors();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "vector file {} is missing ({e}); shared/vectors must sit beside the repository",
            path.display()
        )
    });
    let all: serde_json::Value = serde_json::from_str(&text).expect("stanzas.json is JSON");
    let list = all
        .as_array()
        .or_else(|| all["stanzas"].as_array())
        .expect("a list of stanzas");
    let entry = list
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("no stanza {id} in stanzas.json"));
    hex::decode(entry["hex"].as_str().expect("hex")).expect("hex decodes")
}

#[tokio::test]
async fn empty_backlog_marker_is_the_captured_frame_and_the_captured_upload_is_stored()
-> anyhow::Result<()> {
    let sandbox = start(9).await?;
    let mut a1 = Device::pair(&sandbox, ALICE, 20).await?;
    a1.iq("set", "passive", vec![Node::new("active")]).await?;
    // The raw plaintext of the marker equals the captured `ib-offline` frame byte for byte.
    let marker = a1.recv_until(|n| n.tag == "ib").await?;
    assert_eq!(
        marker
            .child_by_tag("offline")
            .and_then(|o| o.get_attr_str("count")),
        Some("0")
    );
    let captured = vector_hex("ib-offline");
    assert!(
        a1.ws.core.raw.iter().any(|raw| *raw == captured),
        "no frame equal to the captured <ib><offline count=\"0\"/></ib>"
    );
    // The real (trimmed) prekey upload a client sent WhatsApp is accepted as is.
    let upload = binary::decode(&vector_hex("prekey-upload-trimmed"))?;
    a1.ws.send(&upload).await?;
    let reply = a1
        .recv_until(|n| n.tag == "iq" && n.get_attr_str("id") == Some("test-prekey-1"))
        .await?;
    assert_eq!(reply.get_attr_str("type"), Some("result"), "{reply}");
    let device = &sandbox.router().account(ALICE)?.devices[0];
    assert_eq!(device.prekeys, 1);
    sandbox.shutdown().await;
    Ok(())
}
