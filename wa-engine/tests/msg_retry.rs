//! End to end through wa-sandbox: a session broken on the receiving side heals through a
//! retry receipt (05 §9.3, §9.4), and an undecryptable message is reported, not dropped.

mod msg_support;

use msg_support::{pair, sandbox};
use wa_engine::store::{ProtocolAddress, StoreBatch};
use wa_engine::{Event, Jid, UndecryptableReason};

/// Where `peer` keeps its session with `device`: under the device's LID address once `peer`
/// knows that LID (07 §1.3), else under its phone number.
fn session_address(peer: &msg_support::Peer, device: &Jid) -> anyhow::Result<ProtocolAddress> {
    let name = match peer.store.lid_for_pn(device.user())? {
        Some(lid) => format!("{lid}_1"),
        None => device.user().to_owned(),
    };
    Ok(ProtocolAddress::new(name, u32::from(device.device())))
}

#[tokio::test]
async fn session_deleted_on_the_receiver_heals_through_a_retry_receipt() -> anyhow::Result<()> {
    let sb = sandbox(31).await?;
    let mut alice = pair(&sb, "15550000051").await?;
    let mut bob = pair(&sb, "15550000052").await?;

    alice.client.send_text(&bob.user(), "one").await?;
    assert_eq!(bob.next_message().await?.text(), Some("one"));
    bob.client.send_text(&alice.user(), "two").await?;
    assert_eq!(alice.next_message().await?.text(), Some("two"));

    // Bob loses his session with Alice's device; Alice still has hers and sends a `msg`.
    let address = session_address(&bob, &alice.jid)?;
    let mut batch = StoreBatch::new();
    batch.delete_session(&address);
    bob.store.apply(batch)?;

    let id = alice
        .client
        .send_text(&bob.user(), "after the break")
        .await?;
    let (reason, count) = bob
        .wait(|e| match e {
            Event::UndecryptableMessage {
                info,
                reason,
                retry_count,
            } if info.id == id.0 => Some((*reason, *retry_count)),
            _ => None,
        })
        .await?;
    assert_eq!(reason, UndecryptableReason::NoSession);
    assert_eq!(count, 1);
    // Alice re-sends on a new session built from the keys in the retry receipt.
    let healed = bob.next_message().await?;
    assert_eq!(healed.info.id, id.0);
    assert_eq!(healed.text(), Some("after the break"));

    alice
        .client
        .send_text(&bob.user(), "and the next one")
        .await?;
    assert_eq!(bob.next_message().await?.text(), Some("and the next one"));
    bob.client.send_text(&alice.user(), "both ways").await?;
    assert_eq!(alice.next_message().await?.text(), Some("both ways"));

    alice.shutdown().await;
    bob.shutdown().await;
    sb.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn session_rolled_back_on_the_receiver_heals_on_the_second_retry() -> anyhow::Result<()> {
    let sb = sandbox(32).await?;
    let mut alice = pair(&sb, "15550000061").await?;
    let mut bob = pair(&sb, "15550000062").await?;

    alice.client.send_text(&bob.user(), "one").await?;
    assert_eq!(bob.next_message().await?.text(), Some("one"));
    bob.client.send_text(&alice.user(), "two").await?;
    assert_eq!(alice.next_message().await?.text(), Some("two"));
    let address = session_address(&bob, &alice.jid)?;
    // Bob's state as it was (e.g. a restored backup); then both ratchets step past it.
    let snapshot = bob.store.session(&address)?.expect("session");
    alice.client.send_text(&bob.user(), "three").await?;
    assert_eq!(bob.next_message().await?.text(), Some("three"));
    bob.client.send_text(&alice.user(), "four").await?;
    assert_eq!(alice.next_message().await?.text(), Some("four"));
    let mut batch = StoreBatch::new();
    batch.put_session(&address, snapshot);
    bob.store.apply(batch)?;

    let id = alice.client.send_text(&bob.user(), "five").await?;
    // The first retry (no keys) cannot help; the second carries keys and heals.
    let mut counts = Vec::new();
    let healed = bob
        .wait(|e| match e {
            Event::UndecryptableMessage {
                info, retry_count, ..
            } if info.id == id.0 => {
                counts.push(*retry_count);
                None
            }
            Event::Message(m) => Some((**m).clone()),
            _ => None,
        })
        .await?;
    assert_eq!(healed.text(), Some("five"));
    assert_eq!(counts, [1, 2]);
    alice.client.send_text(&bob.user(), "six").await?;
    assert_eq!(bob.next_message().await?.text(), Some("six"));

    alice.shutdown().await;
    bob.shutdown().await;
    sb.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn lost_group_sender_key_is_redistributed_through_a_retry_receipt() -> anyhow::Result<()> {
    let sb = sandbox(33).await?;
    let alice = pair(&sb, "15550000071").await?;
    let mut bob = pair(&sb, "15550000072").await?;
    let group = alice.client.create_group("Retry", &[bob.user()]).await?;
    alice.client.send_text(&group.jid, "first").await?;
    assert_eq!(bob.next_message().await?.text(), Some("first"));

    // Bob loses Alice's sender key for the group.
    let name = wa_engine::store::SenderKeyName::new(
        group.jid.to_string(),
        ProtocolAddress::new(alice.jid.user(), u32::from(alice.jid.device())),
    );
    let mut batch = StoreBatch::new();
    batch.delete_sender_key(&name);
    bob.store.apply(batch)?;

    let id = alice.client.send_text(&group.jid, "second").await?;
    let reason = bob
        .wait(|e| match e {
            Event::UndecryptableMessage { info, reason, .. } if info.id == id.0 => Some(*reason),
            _ => None,
        })
        .await?;
    assert_eq!(reason, UndecryptableReason::NoSenderKey);
    let healed = bob.next_message().await?;
    assert_eq!(healed.info.id, id.0);
    assert_eq!(healed.text(), Some("second"));
    alice.client.send_text(&group.jid, "third").await?;
    assert_eq!(bob.next_message().await?.text(), Some("third"));

    alice.shutdown().await;
    bob.shutdown().await;
    sb.shutdown().await;
    Ok(())
}
