//! End to end through wa-sandbox: a device list that changed behind the sender's back (the
//! `devices` notification was lost) is detected by the `phash` in the server's ack, and
//! the message still reaches the device the first stanza missed (05 §7.4, §8).

mod msg_support;

use std::sync::Arc;

use msg_support::{pair, pair_with, sandbox};
use wa_engine::MemoryStore;

#[tokio::test]
async fn a_device_linked_without_notification_gets_the_message_after_the_phash_mismatch()
-> anyhow::Result<()> {
    let sb = sandbox(41).await?;
    let alice = pair(&sb, "15550004101").await?;
    let mut bob = pair(&sb, "15550004102").await?;

    // Alice caches Bob's device list with her first message.
    alice.client.send_text(&bob.user(), "one").await?;
    assert_eq!(bob.next_message().await?.text(), Some("one"));

    // Bob links a second device; nobody is told.
    sb.router().set_silent_device_changes(true);
    let mut bob2 = pair_with(&sb, "15550004102", Arc::new(MemoryStore::new())).await?;
    assert_eq!(bob2.jid.device(), bob.jid.device() + 1);

    // Her stale list misses it: the ack's phash differs, and she sends it on.
    let id = alice.client.send_text(&bob.user(), "two").await?;
    let got = bob2.next_message().await?;
    assert_eq!(got.text(), Some("two"));
    assert_eq!(got.info.id, id.0);
    assert_eq!(got.info.sender, alice.jid);
    let got = bob.next_message().await?;
    assert_eq!(
        (got.text(), got.info.id.as_str()),
        (Some("two"), id.0.as_str())
    );
    // Her refreshed list covers both devices from now on, in one stanza.
    let id = alice.client.send_text(&bob.user(), "three").await?;
    let got = bob2.next_message().await?;
    assert_eq!(
        (got.text(), got.info.id.as_str()),
        (Some("three"), id.0.as_str())
    );
    let got = bob.next_message().await?;
    assert_eq!(got.text(), Some("three"));

    alice.shutdown().await;
    bob.shutdown().await;
    bob2.shutdown().await;
    sb.shutdown().await;
    Ok(())
}
