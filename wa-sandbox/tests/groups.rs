//! Groups through the sandbox with scripted devices doing real sender-key work
//! (shared/protocol/06 §1, 05 §7, §14): `w:g2` create / query / participating / remove /
//! leave, `w:gp2` notifications, one `skmsg` fanned out to every member device with the
//! pairwise sender-key distribution for the devices listed, removal stopping delivery.

mod support;

use anyhow::Context as _;
use prost::Message as _;
use support::device::{Device, device_jid, text_of};
use wa_engine::Jid;
use wa_engine::binary::Node;
use wa_sandbox::{Sandbox, SandboxConfig, SandboxHandle, phash};

const ALICE: &str = "15551240001";
const BOB: &str = "15551240002";
const CAROL: &str = "15551240003";

async fn start() -> anyhow::Result<SandboxHandle> {
    let sandbox = Sandbox::start(
        SandboxConfig::default()
            .with_seed(21)
            .with_first_stanza_delay(std::time::Duration::ZERO),
    )
    .await?;
    for p in [ALICE, BOB, CAROL] {
        sandbox.create_account(p)?;
    }
    Ok(sandbox)
}

fn group_server() -> Jid {
    Jid::server_jid(wa_engine::Server::Group)
}

/// `Message{senderKeyDistributionMessage{groupId, axolotl…}}` + padding (05 §7.1 step 3).
fn padded_skdm(group: &Jid, skdm: Vec<u8>) -> Vec<u8> {
    let mut bytes = wa_proto::wa::Message {
        sender_key_distribution_message: Some(
            wa_proto::wa::message::SenderKeyDistributionMessage {
                group_id: Some(group.to_string()),
                axolotl_sender_key_distribution_message: Some(skdm),
            },
        ),
        ..Default::default()
    }
    .encode_to_vec();
    bytes.push(1);
    bytes
}

/// Sends a group text from `sender`: SKDM pairwise to `skdm_to`, one skmsg for all.
async fn send_group(
    sender: &mut Device,
    group: &Jid,
    id: &str,
    text: &str,
    skdm_to: &[Jid],
    phash_attr: Option<String>,
) -> anyhow::Result<Node> {
    let skdm = sender.skdm(group)?;
    let mut tos = Vec::new();
    if !skdm_to.is_empty() {
        sender.start_sessions(skdm_to).await?;
        for jid in skdm_to {
            tos.push(sender.enc_to(jid, &padded_skdm(group, skdm.clone()))?);
        }
    }
    let skmsg = sender.group_encrypt(group, &support::device::padded_text(text))?;
    let mut children = Vec::new();
    if !tos.is_empty() {
        children.push(Node::new("participants").with_children(tos));
        children.push(Node::new("device-identity").with_bytes(sender.account.clone()));
    }
    children.push(
        Node::new("enc")
            .attr("v", "2")
            .attr("type", "skmsg")
            .with_bytes(skmsg),
    );
    let msg = Node::new("message")
        .attr("id", id.to_owned())
        .attr("type", "text")
        .attr("to", group.clone())
        .attr("addressing_mode", "pn")
        .attr_opt("phash", phash_attr)
        .with_children(children);
    sender.ws.send(&msg).await?;
    sender
        .recv_until(|n| n.tag == "ack" && n.get_attr_str("id") == Some(id))
        .await
}

fn is_gp2(n: &Node) -> bool {
    n.tag == "notification" && n.get_attr_str("type") == Some("w:gp2")
}

#[tokio::test]
async fn group_create_fan_out_with_sender_keys_removal_and_leave() -> anyhow::Result<()> {
    let sandbox = start().await?;
    sandbox.phone(ALICE)?.set_push_name("Alice");
    let mut a1 = Device::pair(&sandbox, ALICE, 31).await?;
    let mut a2 = Device::pair(&sandbox, ALICE, 32).await?;
    let mut b1 = Device::pair(&sandbox, BOB, 33).await?;
    let mut c1 = Device::pair(&sandbox, CAROL, 34).await?;
    for d in [&mut a1, &mut a2, &mut b1, &mut c1] {
        d.activate().await?;
        d.upload_prekeys(10).await?;
    }

    // Create (06 §1.3): Alice is super admin, the others members.
    let reply = a1
        .iq_to(
            group_server(),
            "set",
            "w:g2",
            vec![
                Node::new("create")
                    .attr("subject", "Team")
                    .attr("key", "3EB0KEY")
                    .with_children([
                        Node::new("participant").attr("jid", Jid::pn(BOB)),
                        Node::new("participant").attr("jid", Jid::pn(CAROL)),
                        Node::new("participant").attr("jid", Jid::pn("15550009999")),
                    ]),
            ],
        )
        .await?;
    assert_eq!(reply.get_attr_str("type"), Some("result"), "{reply}");
    let meta = reply.child_by_tag("group").context("group")?;
    let gid = meta.get_attr_str("id").context("id")?.to_owned();
    assert!(gid.starts_with("120363") && gid.len() == 18, "{gid}");
    let group = Jid::group(gid.clone());
    assert_eq!(meta.get_attr_str("subject"), Some("Team"));
    assert_eq!(meta.get_attr_jid("creator"), Some(&Jid::pn(ALICE)));
    assert_eq!(meta.get_attr_str("size"), Some("3"));
    let parts: Vec<(String, Option<String>, Option<String>)> = meta
        .children_by_tag("participant")
        .map(|p| {
            (
                p.get_attr("jid")
                    .map(|j| j.to_text().into_owned())
                    .unwrap_or_default(),
                p.get_attr_str("type").map(str::to_owned),
                p.get_attr_str("error").map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        parts,
        vec![
            (
                format!("{ALICE}@s.whatsapp.net"),
                Some("superadmin".into()),
                None
            ),
            (format!("{BOB}@s.whatsapp.net"), None, None),
            (format!("{CAROL}@s.whatsapp.net"), None, None),
            (
                "15550009999@s.whatsapp.net".into(),
                None,
                Some("404".into())
            ),
        ]
    );
    // Every member device but the creator's hears <create type="new" key>.
    for d in [&mut a2, &mut b1, &mut c1] {
        let n = d.recv_until(is_gp2).await?;
        assert_eq!(n.get_attr_jid("from"), Some(&group));
        assert_eq!(n.get_attr_jid("participant"), Some(&Jid::pn(ALICE)));
        assert_eq!(n.get_attr_str("notify"), Some("Alice"));
        let create = n.child_by_tag("create").context("create")?;
        assert_eq!(create.get_attr_str("key"), Some("3EB0KEY"));
        assert_eq!(
            create
                .child_by_tag("group")
                .and_then(|g| g.get_attr_str("id")),
            Some(gid.as_str())
        );
        d.acknowledge(&n).await?;
    }
    // Metadata query and the participating list.
    let q = b1
        .iq_to(
            group.clone(),
            "get",
            "w:g2",
            vec![Node::new("query").attr("request", "interactive")],
        )
        .await?;
    assert_eq!(q.get_attr_jid("from"), Some(&group));
    assert_eq!(
        q.child_by_tag("group")
            .map(|g| g.children_by_tag("participant").count()),
        Some(3)
    );
    let mine = c1
        .iq_to(
            group_server(),
            "get",
            "w:g2",
            vec![Node::new("participating")],
        )
        .await?;
    assert_eq!(
        mine.child_by_tag("groups")
            .map(|g| g.children_by_tag("group").count()),
        Some(1)
    );

    // A group text: SKDM pairwise to every other member device, one skmsg.
    let targets = vec![
        device_jid(ALICE, 0),
        a2.jid(),
        device_jid(BOB, 0),
        b1.jid(),
        device_jid(CAROL, 0),
        c1.jid(),
    ];
    let all = phash([
        (ALICE, 0),
        (ALICE, a1.id),
        (ALICE, a2.id),
        (BOB, 0),
        (BOB, b1.id),
        (CAROL, 0),
        (CAROL, c1.id),
    ]);
    let ack = send_group(
        &mut a1,
        &group,
        "3EB0G001",
        "hello team",
        &targets,
        Some(all.clone()),
    )
    .await?;
    assert!(ack.get_attr("error").is_none(), "{ack}");
    assert!(ack.get_attr("phash").is_none(), "phash agreed: {ack}");
    for d in [&mut a2, &mut b1, &mut c1] {
        let m = d.message("3EB0G001").await?;
        assert_eq!(m.get_attr_jid("from"), Some(&group));
        assert_eq!(m.get_attr_jid("participant"), Some(&a1.jid()));
        assert_eq!(m.get_attr_str("addressing_mode"), Some("pn"));
        let kinds: Vec<&str> = m
            .children_by_tag("enc")
            .filter_map(|e| e.get_attr_str("type"))
            .collect();
        assert_eq!(kinds, ["pkmsg", "skmsg"], "SKDM first: {m}");
        let plain = d.group_decrypt(&group, &a1.jid(), &m)?;
        assert_eq!(text_of(&plain)?, "hello team");
        d.acknowledge(&m).await?;
    }
    // Bob's receipt comes to Alice as a group receipt.
    let r = a1
        .recv_until(|n| n.tag == "receipt" && n.get_attr_jid("participant") == Some(&b1.jid()))
        .await?;
    assert_eq!(r.get_attr_jid("from"), Some(&group));

    // Second message: keys already distributed, skmsg only; a stale phash is corrected.
    let ack = send_group(
        &mut a1,
        &group,
        "3EB0G002",
        "again",
        &[],
        Some("2:AAAAAAAA".into()),
    )
    .await?;
    assert_eq!(ack.get_attr_str("phash"), Some(all.as_str()));
    for d in [&mut b1, &mut c1] {
        let m = d.message("3EB0G002").await?;
        assert_eq!(m.children_by_tag("enc").count(), 1);
        assert_eq!(text_of(&d.group_decrypt(&group, &a1.jid(), &m)?)?, "again");
        d.acknowledge(&m).await?;
    }

    // Carol is removed: she and everyone else hear it, and she gets nothing more.
    let reply = a1
        .iq_to(
            group.clone(),
            "set",
            "w:g2",
            vec![
                Node::new("remove")
                    .with_children([Node::new("participant").attr("jid", Jid::pn(CAROL))]),
            ],
        )
        .await?;
    assert_eq!(
        reply
            .child_path(&["remove", "participant"])
            .and_then(|p| p.get_attr("error")),
        None,
        "{reply}"
    );
    for d in [&mut b1, &mut c1] {
        let n = d
            .recv_until(|n| is_gp2(n) && n.child_by_tag("remove").is_some())
            .await?;
        assert_eq!(
            n.child_path(&["remove", "participant"])
                .and_then(|p| p.get_attr_jid("jid")),
            Some(&Jid::pn(CAROL))
        );
        d.acknowledge(&n).await?;
    }
    send_group(&mut a1, &group, "3EB0G003", "without carol", &[], None).await?;
    b1.message("3EB0G003").await?;
    // Carol may not send either (06 §1.7 item 5).
    let ack = send_group(&mut c1, &group, "3EB0G004", "let me in", &[], None).await?;
    assert_eq!(ack.get_attr_str("error"), Some("403"));
    assert_eq!(sandbox.router().account(CAROL)?.devices[0].queued, 0);
    assert!(
        !c1.backlog
            .iter()
            .any(|n| n.get_attr_str("id") == Some("3EB0G003")),
        "{:?}",
        c1.backlog
    );
    // A non-admin cannot remove anyone.
    let reply = b1
        .iq_to(
            group.clone(),
            "set",
            "w:g2",
            vec![
                Node::new("remove")
                    .with_children([Node::new("participant").attr("jid", Jid::pn(ALICE))]),
            ],
        )
        .await?;
    assert_eq!(
        reply
            .child_by_tag("error")
            .and_then(|e| e.get_attr_str("code")),
        Some("403")
    );

    // Bob leaves.
    let reply = b1
        .iq_to(
            group_server(),
            "set",
            "w:g2",
            vec![Node::new("leave").with_children([Node::new("group").attr("id", group.clone())])],
        )
        .await?;
    assert_eq!(reply.get_attr_str("type"), Some("result"));
    assert_eq!(
        sandbox.router().group_participants(&group),
        vec![ALICE.to_owned()]
    );
    let n = a1
        .recv_until(|n| is_gp2(n) && n.child_by_tag("remove").is_some())
        .await?;
    assert_eq!(n.get_attr_jid("participant"), Some(&Jid::pn(BOB)));
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn group_messages_wait_for_offline_members() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let mut a1 = Device::pair(&sandbox, ALICE, 41).await?;
    let mut b1 = Device::pair(&sandbox, BOB, 42).await?;
    a1.activate().await?;
    b1.activate().await?;
    b1.upload_prekeys(10).await?;
    let group = sandbox.router().create_group(ALICE, "Later", &[BOB])?;
    sandbox.faults().drop_connection(BOB, b1.id);
    b1.ws.closed().await?;
    send_group(&mut a1, &group, "3EB0G101", "while away", &[b1.jid()], None).await?;
    b1.reconnect(&sandbox).await?;
    let (replayed, marker) = b1.activate().await?;
    // The create notification, then the message, in the order they were routed.
    let tags: Vec<&str> = replayed.iter().map(|n| n.tag.as_ref()).collect();
    assert_eq!(tags, ["notification", "message"]);
    assert_eq!(marker, 2);
    assert_eq!(
        text_of(&b1.group_decrypt(&group, &a1.jid(), &replayed[1])?)?,
        "while away"
    );
    sandbox.shutdown().await;
    Ok(())
}
