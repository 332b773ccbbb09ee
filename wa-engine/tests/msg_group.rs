//! End to end through wa-sandbox: groups with sender keys, membership changes, and the
//! number check.

mod msg_support;

use std::time::Duration;

use msg_support::{pair, sandbox};
use wa_engine::signal::SenderKeyRecord;
use wa_engine::store::{ProtocolAddress, SenderKeyName};
use wa_engine::{Event, Jid, Store};

fn own_sender_key_ids(store: &dyn Store, group: &Jid, me: &Jid) -> Vec<u32> {
    let name = SenderKeyName::new(
        group.to_string(),
        ProtocolAddress::new(me.user(), u32::from(me.device())),
    );
    store
        .sender_key(&name)
        .expect("store")
        .map(|b| SenderKeyRecord::from_bytes(&b).expect("record").key_ids())
        .unwrap_or_default()
}

#[tokio::test]
async fn group_of_three_accounts_everyone_receives_and_a_removed_member_stops() -> anyhow::Result<()>
{
    let sb = sandbox(21).await?;
    let mut alice = pair(&sb, "15550000031").await?;
    let mut bob1 = pair(&sb, "15550000032").await?;
    let mut bob2 = pair(&sb, "15550000032").await?;
    let mut carol = pair(&sb, "15550000033").await?;

    let group = alice
        .client
        .create_group("Team", &[bob1.user(), carol.user()])
        .await?;
    assert_eq!(group.subject, "Team");
    assert_eq!(group.participants.len(), 3);
    let meta = bob1.client.group_metadata(&group.jid).await?;
    assert_eq!(meta.jid, group.jid);

    let id = alice.client.send_text(&group.jid, "hello team").await?;
    for peer in [&mut bob1, &mut bob2, &mut carol] {
        let m = peer.next_message().await?;
        assert_eq!(m.text(), Some("hello team"));
        assert_eq!(m.info.chat, group.jid);
        assert_eq!(m.info.sender, alice.jid);
        assert_eq!(m.info.id, id.0);
        assert!(m.info.is_group);
    }
    // A second message needs no new sender key distribution.
    alice.client.send_text(&group.jid, "again").await?;
    for peer in [&mut bob1, &mut bob2, &mut carol] {
        assert_eq!(peer.next_message().await?.text(), Some("again"));
    }

    // Bob writes from his first device: everyone else, including his second device.
    bob1.client.send_text(&group.jid, "bob here").await?;
    assert_eq!(alice.next_message().await?.text(), Some("bob here"));
    assert_eq!(carol.next_message().await?.text(), Some("bob here"));
    let mine = bob2.next_message().await?;
    assert_eq!(mine.text(), Some("bob here"));
    assert!(mine.info.from_me);

    // Carol is removed: Alice's sender key rotates and Carol gets nothing more.
    let before = own_sender_key_ids(alice.store.as_ref(), &group.jid, &alice.jid);
    let outcome = alice
        .client
        .remove_participants(&group.jid, &[carol.user()])
        .await?;
    assert!(outcome.iter().all(|p| p.error.is_none()), "{outcome:?}");
    alice.client.send_text(&group.jid, "without carol").await?;
    let after = own_sender_key_ids(alice.store.as_ref(), &group.jid, &alice.jid);
    assert_ne!(before.first(), after.first(), "sender key not rotated");
    for peer in [&mut bob1, &mut bob2] {
        assert_eq!(peer.next_message().await?.text(), Some("without carol"));
    }
    let leaked = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            match carol.events.recv().await {
                Some(Event::Message(m)) => return Some(m),
                Some(_) => {}
                None => return None,
            }
        }
    })
    .await;
    assert!(
        !matches!(leaked, Ok(Some(_))),
        "removed member received {leaked:?}"
    );

    // Dave is added: he gets the sender key with the next message.
    let mut dave = pair(&sb, "15550000034").await?;
    let outcome = alice
        .client
        .add_participants(&group.jid, &[dave.user()])
        .await?;
    assert!(outcome.iter().all(|p| p.error.is_none()), "{outcome:?}");
    alice.client.send_text(&group.jid, "welcome dave").await?;
    for peer in [&mut bob1, &mut bob2, &mut dave] {
        assert_eq!(peer.next_message().await?.text(), Some("welcome dave"));
    }
    // Dave answers; the others decrypt with his fresh sender key.
    dave.client.send_text(&group.jid, "thanks").await?;
    for peer in [&mut alice, &mut bob1, &mut bob2] {
        assert_eq!(peer.next_message().await?.text(), Some("thanks"));
    }

    for p in [alice, bob1, bob2, carol, dave] {
        p.shutdown().await;
    }
    sb.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn number_check_tells_registered_numbers_apart() -> anyhow::Result<()> {
    let sb = sandbox(22).await?;
    let alice = pair(&sb, "15550000041").await?;
    sb.create_account("15550000042")?;
    let found = alice
        .client
        .is_on_whatsapp(&["+1 555 000 0042", "15559999999"])
        .await?;
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].0, "+1 555 000 0042");
    assert_eq!(
        found[0].1.as_ref().map(ToString::to_string).as_deref(),
        Some("15550000042@s.whatsapp.net")
    );
    assert_eq!(found[1].1, None);
    // Sending to a number that is not on WhatsApp is a typed error.
    let nobody: wa_engine::Jid = "15559999999@s.whatsapp.net".parse()?;
    assert_eq!(
        alice.client.send_text(&nobody, "anyone?").await,
        Err(wa_engine::SendError::NoDevices)
    );
    alice.shutdown().await;
    sb.shutdown().await;
    Ok(())
}
