//! End to end through wa-sandbox: 1:1 text between engine clients on different accounts,
//! delivery and read status, own-device fan-out, offline delivery, restarts.

mod msg_support;

use std::sync::Arc;

use msg_support::{pair, pair_with, sandbox};
use wa_engine::message::content;
use wa_engine::{Event, MessageStatus, SledStore, Store};

#[tokio::test]
async fn two_accounts_exchange_text_both_ways_with_delivered_and_read_status() -> anyhow::Result<()>
{
    let sb = sandbox(11).await?;
    let mut alice = pair(&sb, "15550000001").await?;
    let mut bob = pair(&sb, "15550000002").await?;

    let id = alice.client.send_text(&bob.user(), "hello bob").await?;
    let got = bob.next_message().await?;
    assert_eq!(got.text(), Some("hello bob"));
    assert_eq!(got.info.id, id.0);
    assert_eq!(got.info.chat, alice.user());
    assert_eq!(got.info.sender, alice.jid);
    assert!(!got.info.from_me);

    let delivered = alice
        .wait(|e| match e {
            Event::MessageStatus {
                id: i,
                status: MessageStatus::Delivered,
                by,
                ..
            } if *i == id => by.clone(),
            _ => None,
        })
        .await?;
    assert_eq!(delivered, bob.jid);

    bob.client
        .mark_read(&alice.user(), None, std::slice::from_ref(&id))
        .await?;
    alice
        .wait(|e| match e {
            Event::MessageStatus {
                id: i,
                status: MessageStatus::Read,
                ..
            } if *i == id => Some(()),
            _ => None,
        })
        .await?;

    let reply = bob.client.send_text(&alice.user(), "hi alice").await?;
    let got = alice.next_message().await?;
    assert_eq!(got.text(), Some("hi alice"));
    assert_eq!(got.info.id, reply.0);
    // A reply with a quote and a mention, then a location and a contact card.
    let quoted = content::extended_text(
        "@15550000002 thanks",
        Some(content::Quote {
            id: reply.0.clone(),
            sender: Some(bob.user()),
            message: Some(content::text("hi alice")),
        }),
        &[bob.user()],
    );
    alice
        .client
        .send_message(&bob.user(), quoted.clone())
        .await?;
    let got = bob.next_message().await?;
    assert_eq!(got.message, quoted);
    let loc = content::location(52.52, 13.405, Some("Berlin".into()), None);
    alice.client.send_message(&bob.user(), loc.clone()).await?;
    assert_eq!(bob.next_message().await?.message, loc);
    let card = content::contact("Carol", "BEGIN:VCARD\nVERSION:3.0\nFN:Carol\nEND:VCARD");
    bob.client.send_message(&alice.user(), card.clone()).await?;
    assert_eq!(alice.next_message().await?.message, card);

    alice.shutdown().await;
    bob.shutdown().await;
    sb.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn account_with_two_devices_receives_on_both_and_sees_own_sends() -> anyhow::Result<()> {
    let sb = sandbox(12).await?;
    let mut alice = pair(&sb, "15550000011").await?;
    let mut bob1 = pair(&sb, "15550000012").await?;
    let mut bob2 = pair(&sb, "15550000012").await?;
    assert_ne!(bob1.jid.device(), bob2.jid.device());

    alice.client.send_text(&bob1.user(), "to both").await?;
    assert_eq!(bob1.next_message().await?.text(), Some("to both"));
    assert_eq!(bob2.next_message().await?.text(), Some("to both"));

    // bob1 writes to alice: alice gets it, bob2 sees it as its own message in alice's chat.
    let id = bob1.client.send_text(&alice.user(), "from bob1").await?;
    assert_eq!(alice.next_message().await?.text(), Some("from bob1"));
    let mine = bob2.next_message().await?;
    assert_eq!(mine.text(), Some("from bob1"));
    assert!(mine.info.from_me);
    assert_eq!(mine.info.chat, alice.user());
    assert_eq!(mine.info.id, id.0);

    alice.shutdown().await;
    bob1.shutdown().await;
    bob2.shutdown().await;
    sb.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn offline_recipient_receives_on_reconnect_and_restart_keeps_decrypting() -> anyhow::Result<()>
{
    let sb = sandbox(13).await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bob");
    let mut alice = pair(&sb, "15550000021").await?;
    let mut bob = pair_with(&sb, "15550000022", Arc::new(SledStore::open(&path)?)).await?;
    let bob_user = bob.user();
    alice.client.send_text(&bob_user, "first").await?;
    assert_eq!(bob.next_message().await?.text(), Some("first"));
    // Bob goes away (process exit).
    let bob_device = bob.jid.device();
    bob.shutdown().await;
    let phone = sb.phone("15550000022")?;
    msg_support::until(|| {
        phone
            .devices()
            .iter()
            .any(|d| d.id == bob_device && !d.connected)
    })
    .await?;

    alice
        .client
        .send_text(&bob_user, "while you were away")
        .await?;

    // A new process reopens the store.
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&path)?);
    let (client, events) = msg_support::connect(&sb, store.clone()).await?;
    let mut bob = msg_support::Peer {
        client,
        events,
        jid: alice.jid.clone(),
        store,
    };
    let second = bob.next_message().await?;
    assert_eq!(second.text(), Some("while you were away"));
    assert!(second.info.offline);

    alice.client.send_text(&bob_user, "after restart").await?;
    assert_eq!(bob.next_message().await?.text(), Some("after restart"));
    // And the other way round.
    bob.client.send_text(&alice.user(), "back").await?;
    assert_eq!(alice.next_message().await?.text(), Some("back"));

    alice.shutdown().await;
    bob.shutdown().await;
    sb.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_device_linked_later_gets_the_next_message() -> anyhow::Result<()> {
    let sb = sandbox(14).await?;
    let alice = pair(&sb, "15550000031").await?;
    let mut bob1 = pair(&sb, "15550000032").await?;
    alice.client.send_text(&bob1.user(), "before").await?;
    assert_eq!(bob1.next_message().await?.text(), Some("before"));

    // Bob links a second device; Alice's cached device list is now stale. The server's
    // `devices` notification (05 §5.2) drops it, so the next send reaches both.
    let mut bob2 = pair(&sb, "15550000032").await?;
    alice.client.send_text(&bob1.user(), "after").await?;
    assert_eq!(bob1.next_message().await?.text(), Some("after"));
    assert_eq!(bob2.next_message().await?.text(), Some("after"));

    alice.shutdown().await;
    bob1.shutdown().await;
    bob2.shutdown().await;
    sb.shutdown().await;
    Ok(())
}
