//! The simulator scenarios of shared/protocol/07 §6 over real loopback sockets with scripted
//! devices: LID addressing and delivery attributes (§5.1), token issuance and the
//! `privacy_token` push (§5.2), the admission rule under P1/P2/P3 with tctoken, cstoken,
//! the NEGATIVE cstoken vectors and bucket expiry (§5.4), the timelock and capping `mex`
//! pushes and pulls (§5.5), and the namespace checks. The sandbox never decrypts, so the
//! `<enc>` payloads here are opaque bytes: what is checked is what the server routes,
//! refuses and pushes.

mod support;

use anyhow::Context as _;
use support::device::{Device, device_jid};
use wa_engine::Jid;
use wa_engine::binary::Node;
use wa_engine::privacy::cstoken_for;
use wa_sandbox::{
    Capping, GateConfig, PrivacySettings, Sandbox, SandboxConfig, SandboxHandle, TokenPolicy,
};

const ALICE: &str = "15551240001";
const BOB: &str = "15551240002";
const CAROL: &str = "15551240003";

const WEEK: u64 = 604_800;

async fn start(seed: u64) -> anyhow::Result<SandboxHandle> {
    let sandbox = Sandbox::start(
        SandboxConfig::default()
            .with_seed(seed)
            .with_first_stanza_delay(std::time::Duration::ZERO),
    )
    .await?;
    for p in [ALICE, BOB, CAROL] {
        sandbox.create_account(p)?;
    }
    Ok(sandbox)
}

/// Pairs and activates a device of `phone`.
async fn device(sandbox: &SandboxHandle, phone: &str, seed: u64) -> anyhow::Result<Device> {
    let mut d = Device::pair(sandbox, phone, seed).await?;
    d.activate().await?;
    Ok(d)
}

fn lid_of(sandbox: &SandboxHandle, phone: &str) -> anyhow::Result<String> {
    Ok(sandbox.router().account(phone)?.lid)
}

/// A 1:1 text to `to` with one opaque `<enc>` per listed device, plus `extra` children.
fn message(id: &str, to: Jid, devices: &[Jid], extra: Vec<Node>) -> Node {
    let tos = devices.iter().map(|d| {
        Node::new("to")
            .attr("jid", d.clone())
            .with_children([Node::new("enc")
                .attr("v", "2")
                .attr("type", "msg")
                .with_bytes(vec![0x33; 16])])
    });
    let mut children = vec![Node::new("participants").with_children(tos)];
    children.extend(extra);
    Node::new("message")
        .attr("id", id.to_owned())
        .attr("type", "text")
        .attr("to", to)
        .with_children(children)
}

fn token_node(tag: &'static str, bytes: &[u8]) -> Node {
    Node::new(tag).with_bytes(bytes.to_vec())
}

/// Sends a stanza and returns the server's ack for it.
async fn send(dev: &mut Device, node: &Node) -> anyhow::Result<Node> {
    let id = node.get_attr_str("id").context("id")?.to_owned();
    dev.ws.send(node).await?;
    dev.recv_until(|n| {
        n.tag == "ack"
            && n.get_attr_str("class") == Some("message")
            && n.get_attr_str("id") == Some(id.as_str())
    })
    .await
}

/// Alice's text to Bob's device (PN-addressed), with `extra` children; returns the ack.
async fn to_bob(
    alice: &mut Device,
    bob: &Device,
    id: &str,
    extra: Vec<Node>,
) -> anyhow::Result<Node> {
    send(
        alice,
        &message(id, Jid::pn(BOB), &[device_jid(BOB, bob.id)], extra),
    )
    .await
}

fn error_of(ack: &Node) -> Option<&str> {
    ack.get_attr_str("error")
}

/// No stanza with this id reached the device (it was read past, so it is not in the way).
fn never_got(dev: &Device, id: &str) -> bool {
    !dev.backlog
        .iter()
        .any(|n| n.tag == "message" && n.get_attr_str("id") == Some(id))
}

fn settings(policy: TokenPolicy, restricted: bool) -> PrivacySettings {
    PrivacySettings {
        policy,
        restricted,
        ..PrivacySettings::default()
    }
}

#[tokio::test]
async fn p1_cold_contact_is_refused_and_the_issued_token_lets_the_reply_through()
-> anyhow::Result<()> {
    let sandbox = start(71).await?;
    let router = sandbox.router();
    router.set_privacy(BOB, settings(TokenPolicy::RestrictedRecipient, true))?;
    let mut alice = device(&sandbox, ALICE, 1).await?;
    let mut bob = device(&sandbox, BOB, 2).await?;

    // Cold contact: 463, from = the stanza's to, nothing delivered, not a contact.
    let ack = to_bob(&mut alice, &bob, "P1-COLD", vec![]).await?;
    assert_eq!(error_of(&ack), Some("463"), "{ack}");
    assert_eq!(ack.get_attr_jid("from"), Some(&Jid::pn(BOB)));
    assert!(!router.has_contact(ALICE, BOB));
    assert_eq!(
        router.refusals().last().map(|r| r.code.as_str()),
        Some("463")
    );

    // Bob issues his token to Alice from his device: the result carries no tokens, and
    // Alice's device is pushed the token, from Bob (PN: Alice is not LID-migrated), with
    // sender_lid, token@jid = Alice herself.
    let t = support::unix_now();
    let reply = bob
        .iq(
            "set",
            "privacy",
            vec![
                Node::new("tokens").with_children([Node::new("token")
                    .attr("jid", Jid::pn(ALICE))
                    .attr("t", t.to_string())
                    .attr("type", "trusted_contact")]),
            ],
        )
        .await?;
    assert_eq!(reply.get_attr_str("type"), Some("result"));
    assert!(reply.children().is_empty(), "no echoed tokens: {reply}");
    let note = alice
        .recv_until(|n| n.tag == "notification" && n.get_attr_str("type") == Some("privacy_token"))
        .await?;
    alice.acknowledge(&note).await?;
    assert_eq!(note.get_attr_jid("from"), Some(&Jid::pn(BOB)));
    assert_eq!(
        note.get_attr_jid("sender_lid"),
        Some(&Jid::lid(lid_of(&sandbox, BOB)?))
    );
    let token = note
        .child_path(&["tokens", "token"])
        .context("token")?
        .clone();
    assert_eq!(token.get_attr_jid("jid"), Some(&Jid::pn(ALICE)));
    assert_eq!(token.get_attr_str("t"), Some(t.to_string().as_str()));
    assert_eq!(token.get_attr_str("type"), Some("trusted_contact"));
    let bytes = token.content_bytes().context("token bytes")?.to_vec();
    let issued = router.issued_tokens();
    assert_eq!(issued.len(), 1);
    assert_eq!(
        (issued[0].issuer.as_str(), issued[0].holder.as_str()),
        (BOB, ALICE)
    );
    assert_eq!(issued[0].token, bytes);

    // Altered bytes: 463. The issued token: delivered, with sender_lid.
    let mut altered = bytes.clone();
    altered[0] ^= 1;
    let ack = to_bob(
        &mut alice,
        &bob,
        "P1-BAD",
        vec![token_node("tctoken", &altered)],
    )
    .await?;
    assert_eq!(error_of(&ack), Some("463"), "{ack}");
    let ack = to_bob(
        &mut alice,
        &bob,
        "P1-WARM",
        vec![token_node("tctoken", &bytes)],
    )
    .await?;
    assert_eq!(error_of(&ack), None, "{ack}");
    let got = bob.message("P1-WARM").await?;
    assert!(never_got(&bob, "P1-COLD") && never_got(&bob, "P1-BAD"));
    assert_eq!(got.get_attr_jid("from"), Some(&device_jid(ALICE, alice.id)));
    assert_eq!(
        got.get_attr_jid("sender_lid"),
        Some(&Jid::lid(lid_of(&sandbox, ALICE)?))
    );
    assert!(
        got.child_by_tag("tctoken").is_none(),
        "the token is not forwarded"
    );
    assert!(router.has_contact(ALICE, BOB));

    // Once Bob wrote to Alice, she needs no token any more.
    let ack = send(
        &mut bob,
        &message(
            "P1-BOB",
            Jid::pn(ALICE),
            &[device_jid(ALICE, alice.id)],
            vec![],
        ),
    )
    .await?;
    assert_eq!(error_of(&ack), None, "{ack}");
    let ack = to_bob(&mut alice, &bob, "P1-FREE", vec![]).await?;
    assert_eq!(error_of(&ack), None, "{ack}");
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn cstoken_under_the_senders_salt_is_accepted_and_the_negative_vectors_are_not()
-> anyhow::Result<()> {
    let sandbox = start(72).await?;
    let router = sandbox.router();
    router.set_privacy(BOB, settings(TokenPolicy::Always, false))?;
    let mut alice = device(&sandbox, ALICE, 3).await?;
    let bob = device(&sandbox, BOB, 4).await?;
    let salt = router.nct_salt(ALICE)?.context("alice has a salt")?;
    let bob_lid = lid_of(&sandbox, BOB)?;

    // Wrong inputs (07 §3.2, vectors/privacy_tokens NEGATIVE_*): the device suffix, the PN,
    // the bare user, another account's salt; and the vector file's literal values.
    let mut wrong: Vec<(String, Vec<u8>)> = vec![
        (
            "device suffix".into(),
            cstoken_for(&salt, &format!("{bob_lid}:{}@lid", bob.id))
                .map(|c| c.0.to_vec())
                .unwrap_or_else(|_| hmac(&salt, &format!("{bob_lid}:{}@lid", bob.id))),
        ),
        ("pn".into(), hmac(&salt, &format!("{BOB}@s.whatsapp.net"))),
        ("bare user".into(), hmac(&salt, &bob_lid)),
        (
            "other salt".into(),
            cstoken_for(&[9; 32], &format!("{bob_lid}@lid"))?.0.to_vec(),
        ),
    ];
    let vectors: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/vectors/privacy_tokens/privacy_tokens.json"
    ))?)?;
    for v in vectors["cstoken"].as_array().context("cstoken vectors")? {
        if v["valid_wire_input"] == false {
            wrong.push((
                v["name"].as_str().unwrap_or_default().to_owned(),
                hex::decode(v["cstoken_hex"].as_str().context("hex")?)?,
            ));
        }
    }
    assert!(wrong.len() >= 7, "the three NEGATIVE vectors were read");
    for (i, (name, bytes)) in wrong.iter().enumerate() {
        let ack = to_bob(
            &mut alice,
            &bob,
            &format!("CS-BAD-{i}"),
            vec![token_node("cstoken", bytes)],
        )
        .await?;
        assert_eq!(error_of(&ack), Some("463"), "{name}: {ack}");
    }
    assert!(!router.has_contact(ALICE, BOB));

    // The salt removed: even the right HMAC is refused; restored: accepted.
    let good = cstoken_for(&salt, &format!("{bob_lid}@lid"))?.0.to_vec();
    router.set_nct_salt(ALICE, None)?;
    let ack = to_bob(
        &mut alice,
        &bob,
        "CS-NOSALT",
        vec![token_node("cstoken", &good)],
    )
    .await?;
    assert_eq!(error_of(&ack), Some("463"), "{ack}");
    router.restore_nct_salt(ALICE)?;
    let ack = to_bob(
        &mut alice,
        &bob,
        "CS-GOOD",
        vec![token_node("cstoken", &good)],
    )
    .await?;
    assert_eq!(error_of(&ack), None, "{ack}");
    assert!(router.has_contact(ALICE, BOB));
    sandbox.shutdown().await;
    Ok(())
}

/// HMAC-SHA256 of an arbitrary (wrong) message, for inputs `cstoken_for` refuses to build.
fn hmac(key: &[u8], message: &str) -> Vec<u8> {
    use hmac::{KeyInit as _, Mac as _};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

#[tokio::test]
async fn a_token_expires_after_n_server_buckets_on_the_sandbox_clock() -> anyhow::Result<()> {
    let sandbox = start(73).await?;
    let router = sandbox.router();
    router.set_gate_config(GateConfig {
        n_server: 4,
        ..GateConfig::default()
    });
    router.set_privacy(BOB, settings(TokenPolicy::RestrictedRecipient, true))?;
    let mut alice = device(&sandbox, ALICE, 5).await?;
    let bob = device(&sandbox, BOB, 6).await?;
    // Issued at the start of the current bucket (a Thursday 00:00 UTC).
    let now = support::unix_now();
    let t = now - now % WEEK;
    let token = router.issue_token(BOB, &Jid::pn(ALICE), t)?;
    let note = alice
        .recv_until(|n| n.get_attr_str("type") == Some("privacy_token"))
        .await?;
    assert_eq!(
        note.child_path(&["tokens", "token"])
            .and_then(Node::content_bytes),
        Some(token.as_slice())
    );
    // Three buckets on: still inside the 4-bucket window.
    router.advance_clock(3 * WEEK + (WEEK - now % WEEK) - 1);
    let ack = to_bob(
        &mut alice,
        &bob,
        "EXP-1",
        vec![token_node("tctoken", &token)],
    )
    .await?;
    assert_eq!(error_of(&ack), None, "{ack}");
    router.set_has_contact(ALICE, BOB, false)?;
    // One second later the token's bucket fell out of the window: 463.
    router.advance_clock(1);
    let ack = to_bob(
        &mut alice,
        &bob,
        "EXP-2",
        vec![token_node("tctoken", &token)],
    )
    .await?;
    assert_eq!(error_of(&ack), Some("463"), "{ack}");
    // With the server's 26 buckets it is still good.
    router.set_gate_config(GateConfig::default());
    let ack = to_bob(
        &mut alice,
        &bob,
        "EXP-3",
        vec![token_node("tctoken", &token)],
    )
    .await?;
    assert_eq!(error_of(&ack), None, "{ack}");
    sandbox.shutdown().await;
    Ok(())
}

fn mex_json(note: &Node) -> anyhow::Result<serde_json::Value> {
    let update = note.child_by_tag("update").context("update")?;
    Ok(serde_json::from_slice(
        update.content_bytes().context("json bytes")?,
    )?)
}

#[tokio::test]
async fn p2_timelock_pushes_mex_blocks_new_chats_only_and_lifts() -> anyhow::Result<()> {
    let sandbox = start(74).await?;
    let router = sandbox.router();
    let mut alice = device(&sandbox, ALICE, 7).await?;
    let mut bob = device(&sandbox, BOB, 8).await?;
    let carol = device(&sandbox, CAROL, 9).await?;
    // Bob already wrote to Alice: an existing chat.
    let ack = send(
        &mut bob,
        &message(
            "P2-OLD",
            Jid::pn(ALICE),
            &[device_jid(ALICE, alice.id)],
            vec![],
        ),
    )
    .await?;
    assert_eq!(error_of(&ack), None);

    let ends = support::unix_now() + 3600;
    router.set_privacy(
        ALICE,
        PrivacySettings {
            ends: Some(ends),
            ..settings(TokenPolicy::TimelockedSender, true)
        },
    )?;
    let note = alice
        .recv_until(|n| n.tag == "notification" && n.get_attr_str("type") == Some("mex"))
        .await?;
    alice.acknowledge(&note).await?;
    assert_eq!(
        note.child_by_tag("update")
            .and_then(|u| u.get_attr_str("op_name")),
        Some("NotificationUserReachoutTimelockUpdate")
    );
    let lock = &mex_json(&note)?["data"]["xwa2_notify_account_reachout_timelock"];
    assert_eq!(lock["is_active"], true);
    assert_eq!(lock["time_enforcement_ends"], ends.to_string());

    // The pull answers the same state.
    let pulled = alice
        .iq(
            "get",
            "w:mex",
            vec![
                Node::new("query")
                    .attr("query_id", "23983697327930364")
                    .with_bytes(br#"{"variables":{}}"#.to_vec()),
            ],
        )
        .await?;
    let body: serde_json::Value = serde_json::from_slice(
        pulled
            .child_by_tag("result")
            .and_then(Node::content_bytes)
            .context("result")?,
    )?;
    assert_eq!(
        body["data"]["xwa2_fetch_account_reachout_timelock"]["is_active"],
        true
    );

    // The existing chat passes; a new one is refused, even with a valid cstoken.
    let ack = to_bob(&mut alice, &bob, "P2-EXISTING", vec![]).await?;
    assert_eq!(error_of(&ack), None, "{ack}");
    let salt = router.nct_salt(ALICE)?.context("salt")?;
    let cs = cstoken_for(&salt, &format!("{}@lid", lid_of(&sandbox, CAROL)?))?;
    let to_carol =
        |id: &str, extra| message(id, Jid::pn(CAROL), &[device_jid(CAROL, carol.id)], extra);
    let ack = send(
        &mut alice,
        &to_carol("P2-NEW", vec![token_node("cstoken", &cs.0)]),
    )
    .await?;
    assert_eq!(error_of(&ack), Some("463"), "{ack}");

    // Lifted: is_active false is pushed, and the new chat goes through.
    router.set_privacy(ALICE, settings(TokenPolicy::TimelockedSender, false))?;
    let note = alice
        .recv_until(|n| n.tag == "notification" && n.get_attr_str("type") == Some("mex"))
        .await?;
    let lock = &mex_json(&note)?["data"]["xwa2_notify_account_reachout_timelock"];
    assert_eq!(lock["is_active"], false);
    let ack = send(&mut alice, &to_carol("P2-AFTER", vec![])).await?;
    assert_eq!(error_of(&ack), None, "{ack}");
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn capping_refuses_new_chats_at_the_quota_with_475() -> anyhow::Result<()> {
    let sandbox = start(75).await?;
    let router = sandbox.router();
    let mut alice = device(&sandbox, ALICE, 10).await?;
    let bob = device(&sandbox, BOB, 11).await?;
    let carol = device(&sandbox, CAROL, 12).await?;
    router.set_privacy(
        ALICE,
        PrivacySettings {
            capping: Some(Capping {
                total_quota: 1,
                used_quota: 0,
                cycle_start: 0,
                cycle_end: 0,
            }),
            ..PrivacySettings::default()
        },
    )?;
    let first = alice
        .recv_until(|n| n.get_attr_str("type") == Some("mex"))
        .await?;
    assert_eq!(
        mex_json(&first)?["data"]["xwa2_notify_new_chat_messages_capping_info_update"]["capping_status"],
        "NONE"
    );
    let ack = to_bob(&mut alice, &bob, "CAP-1", vec![]).await?;
    assert_eq!(error_of(&ack), None);
    let used = alice
        .recv_until(|n| n.get_attr_str("type") == Some("mex"))
        .await?;
    let info = &mex_json(&used)?["data"]["xwa2_notify_new_chat_messages_capping_info_update"];
    assert_eq!(
        (info["used_quota"].as_u64(), info["capping_status"].as_str()),
        (Some(1), Some("CAPPED"))
    );
    let ack = to_bob(&mut alice, &bob, "CAP-2", vec![]).await?;
    assert_eq!(error_of(&ack), None, "an existing chat is not capped");
    let ack = send(
        &mut alice,
        &message(
            "CAP-3",
            Jid::pn(CAROL),
            &[device_jid(CAROL, carol.id)],
            vec![],
        ),
    )
    .await?;
    assert_eq!(error_of(&ack), Some("475"), "{ack}");
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn lid_addressing_routes_to_the_same_devices_with_the_alternate_ids() -> anyhow::Result<()> {
    let sandbox = start(76).await?;
    let router = sandbox.router();
    let mut alice = device(&sandbox, ALICE, 13).await?;
    let mut alice2 = device(&sandbox, ALICE, 14).await?;
    let mut bob = device(&sandbox, BOB, 15).await?;
    let (alice_lid, bob_lid) = (lid_of(&sandbox, ALICE)?, lid_of(&sandbox, BOB)?);
    let bob_dev_lid = Jid::lid(bob_lid.clone()).with_device(bob.id);
    let alice2_lid = Jid::lid(alice_lid.clone()).with_device(alice2.id);

    // Mixed namespaces (LID `to`, a PN `<to jid>`): 400.
    let mixed = message(
        "NS-MIXED",
        Jid::lid(bob_lid.clone()),
        &[device_jid(BOB, bob.id)],
        vec![],
    );
    assert_eq!(error_of(&send(&mut alice, &mixed).await?), Some("400"));

    // LID-addressed: Bob's device gets it from Alice's LID device with sender_pn; Alice's
    // other device gets her copy with recipient = Bob's LID and peer_recipient_pn. The ack
    // comes from the LID it was sent to.
    let lid_msg = message(
        "NS-LID",
        Jid::lid(bob_lid.clone()),
        &[bob_dev_lid.clone(), alice2_lid.clone()],
        vec![],
    );
    let ack = send(&mut alice, &lid_msg).await?;
    assert_eq!(error_of(&ack), None, "{ack}");
    assert_eq!(ack.get_attr_jid("from"), Some(&Jid::lid(bob_lid.clone())));
    let got = bob.message("NS-LID").await?;
    assert_eq!(
        got.get_attr_jid("from"),
        Some(&Jid::lid(alice_lid.clone()).with_device(alice.id))
    );
    assert_eq!(got.get_attr_jid("sender_pn"), Some(&Jid::pn(ALICE)));
    let own = alice2.message("NS-LID").await?;
    assert_eq!(
        own.get_attr_jid("recipient"),
        Some(&Jid::lid(bob_lid.clone()))
    );
    assert_eq!(own.get_attr_jid("peer_recipient_pn"), Some(&Jid::pn(BOB)));
    // Bob's receipt to the LID device reaches Alice's device, from his LID device.
    bob.acknowledge(&got).await?;
    let receipt = alice
        .recv_until(|n| n.tag == "receipt" && n.get_attr_str("id") == Some("NS-LID"))
        .await?;
    assert_eq!(receipt.get_attr_jid("from"), Some(&bob_dev_lid));

    // PN-addressed: sender_lid (device-less) and peer_recipient_lid.
    let pn_msg = message(
        "NS-PN",
        Jid::pn(BOB),
        &[device_jid(BOB, bob.id), device_jid(ALICE, alice2.id)],
        vec![],
    );
    assert_eq!(error_of(&send(&mut alice, &pn_msg).await?), None);
    let got = bob.message("NS-PN").await?;
    assert_eq!(got.get_attr_jid("from"), Some(&device_jid(ALICE, alice.id)));
    assert_eq!(
        got.get_attr_jid("sender_lid"),
        Some(&Jid::lid(alice_lid.clone()))
    );
    let own = alice2.message("NS-PN").await?;
    assert_eq!(
        own.get_attr_jid("peer_recipient_lid"),
        Some(&Jid::lid(bob_lid.clone()))
    );

    // Strict mode: a LID stanza from an unmigrated account is 400 until it is migrated.
    router.set_gate_config(GateConfig {
        reject_unmigrated_lid: true,
        ..GateConfig::default()
    });
    let strict = message(
        "NS-STRICT",
        Jid::lid(bob_lid.clone()),
        std::slice::from_ref(&bob_dev_lid),
        vec![],
    );
    assert_eq!(error_of(&send(&mut alice, &strict).await?), Some("400"));
    router.set_privacy(
        ALICE,
        PrivacySettings {
            lid_migrated: true,
            ..PrivacySettings::default()
        },
    )?;
    let strict = message(
        "NS-STRICT2",
        Jid::lid(bob_lid.clone()),
        &[bob_dev_lid],
        vec![],
    );
    assert_eq!(error_of(&send(&mut alice, &strict).await?), None);

    // A <tctoken> on a peer message: 479.
    let peer = message(
        "NS-PEER",
        Jid::pn(ALICE),
        &[device_jid(ALICE, alice2.id)],
        vec![token_node("tctoken", &[1, 2, 3])],
    );
    let peer = peer.attr("category", "peer");
    assert_eq!(error_of(&send(&mut alice, &peer).await?), Some("479"));
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn usync_answers_lid_users_and_lid_addressed_contacts() -> anyhow::Result<()> {
    let sandbox = start(77).await?;
    let mut alice = device(&sandbox, ALICE, 16).await?;
    let bob = device(&sandbox, BOB, 17).await?;
    let bob_lid = lid_of(&sandbox, BOB)?;
    let query = |protocols: Vec<Node>, users: Vec<Node>| {
        vec![
            Node::new("usync")
                .attr("sid", "1")
                .attr("mode", "query")
                .attr("context", "interactive")
                .with_children([
                    Node::new("query").with_children(protocols),
                    Node::new("list").with_children(users),
                ]),
        ]
    };
    let reply = alice
        .iq(
            "get",
            "usync",
            query(
                vec![Node::new("devices").attr("version", "2"), Node::new("lid")],
                vec![Node::new("user").attr("jid", Jid::lid(bob_lid.clone()))],
            ),
        )
        .await?;
    let user = reply
        .child_path(&["usync", "list", "user"])
        .context("user")?;
    assert_eq!(user.get_attr_jid("jid"), Some(&Jid::lid(bob_lid.clone())));
    let ids: Vec<_> = user
        .child_path(&["devices", "device-list"])
        .context("device-list")?
        .children_by_tag("device")
        .filter_map(|d| d.get_attr_str("id"))
        .map(str::to_owned)
        .collect();
    assert_eq!(ids, ["0".to_owned(), bob.id.to_string()]);
    assert_eq!(
        user.child_by_tag("lid").and_then(|l| l.get_attr_jid("val")),
        Some(&Jid::lid(bob_lid.clone()))
    );

    let reply = alice
        .iq(
            "get",
            "usync",
            query(
                vec![Node::new("contact").attr("addressing_mode", "lid")],
                vec![
                    Node::new("user")
                        .with_children([Node::new("contact").with_text(format!("+{BOB}"))]),
                ],
            ),
        )
        .await?;
    let user = reply
        .child_path(&["usync", "list", "user"])
        .context("user")?;
    assert_eq!(user.get_attr_jid("jid"), Some(&Jid::lid(bob_lid)));
    assert_eq!(user.get_attr_jid("pn_jid"), Some(&Jid::pn(BOB)));
    assert_eq!(
        user.child_by_tag("contact")
            .and_then(|c| c.get_attr_str("type")),
        Some("in")
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_client_below_the_minimum_app_version_gets_failure_405() -> anyhow::Result<()> {
    let sandbox = start(78).await?;
    let router = sandbox.router();
    let creds = support::Creds::seeded(18);
    // The scripted client announces 2.3000.x (tests/support/mod.rs user_agent).
    router.set_gate_config(GateConfig {
        min_app_version: Some((2, 3001, 0)),
        ..GateConfig::default()
    });
    let mut ws = support::WsClient::connect(
        sandbox.ws_url(),
        sandbox.trust_root_key(),
        &creds.noise,
        support::registration_payload(&creds),
    )
    .await?;
    let (got, _) = ws.closed().await?;
    let failure = got.first().context("a stanza before the close")?;
    assert_eq!(failure.tag, "failure", "{got:?}");
    assert_eq!(failure.get_attr_str("reason"), Some("405"));
    assert_eq!(failure.get_attr_str("location"), Some("sim"));
    assert!(got.iter().all(|n| n.tag != "iq"), "no pair-device: {got:?}");

    // At the minimum: registration proceeds (pair-device).
    router.set_gate_config(GateConfig {
        min_app_version: Some((2, 3000, 0)),
        ..GateConfig::default()
    });
    let mut ws = support::WsClient::connect(
        sandbox.ws_url(),
        sandbox.trust_root_key(),
        &creds.noise,
        support::registration_payload(&creds),
    )
    .await?;
    let first = ws.recv().await?;
    assert!(first.child_by_tag("pair-device").is_some(), "{first}");
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_p2_account_is_timelocked_after_k_refusals() -> anyhow::Result<()> {
    let sandbox = start(79).await?;
    let router = sandbox.router();
    router.set_gate_config(GateConfig {
        timelock_after_refusals: Some(2),
        timelock_seconds: 600,
        ..GateConfig::default()
    });
    router.set_privacy(ALICE, settings(TokenPolicy::TimelockedSender, false))?;
    router.set_privacy(BOB, settings(TokenPolicy::Always, false))?;
    let mut alice = device(&sandbox, ALICE, 19).await?;
    let bob = device(&sandbox, BOB, 20).await?;
    let carol = device(&sandbox, CAROL, 21).await?;
    let to_carol = message(
        "K-CAROL-1",
        Jid::pn(CAROL),
        &[device_jid(CAROL, carol.id)],
        vec![],
    );
    assert_eq!(
        error_of(&send(&mut alice, &to_carol).await?),
        None,
        "not locked yet"
    );

    assert_eq!(
        error_of(&to_bob(&mut alice, &bob, "K-1", vec![]).await?),
        Some("463")
    );
    assert!(!router.privacy(ALICE)?.restricted, "one strike");
    assert_eq!(
        error_of(&to_bob(&mut alice, &bob, "K-2", vec![]).await?),
        Some("463")
    );
    let locked = router.privacy(ALICE)?;
    assert!(locked.restricted);
    let note = alice
        .recv_until(|n| n.tag == "notification" && n.get_attr_str("type") == Some("mex"))
        .await?;
    let lock = &mex_json(&note)?["data"]["xwa2_notify_account_reachout_timelock"];
    assert_eq!(lock["is_active"], true);
    assert_eq!(
        lock["time_enforcement_ends"],
        locked.ends.context("ends")?.to_string()
    );
    // Make Carol a cold contact again (her chat with Alice was opened above).
    router.set_has_contact(ALICE, CAROL, false)?;
    let again = message(
        "K-CAROL-2",
        Jid::pn(CAROL),
        &[device_jid(CAROL, carol.id)],
        vec![],
    );
    assert_eq!(
        error_of(&send(&mut alice, &again).await?),
        Some("463"),
        "timelocked"
    );
    // The lock ends on the sandbox clock.
    router.advance_clock(600);
    let later = message(
        "K-CAROL-3",
        Jid::pn(CAROL),
        &[device_jid(CAROL, carol.id)],
        vec![],
    );
    assert_eq!(
        error_of(&send(&mut alice, &later).await?),
        None,
        "lock over"
    );
    sandbox.shutdown().await;
    Ok(())
}
