//! End to end through wa-sandbox (issue 13 item 6): the same message (chat, sender, id)
//! arriving twice with two valid ciphertexts — what a sender answering a retry receipt with
//! both a direct `<enc>` and a `<participants>` copy produces — is reported once, also when
//! the copy arrives after a restart of the receiver.

mod msg_support;

use msg_support::{connect, pair, sandbox, wait};
use wa_engine::message::{MessageId, content};
use wa_engine::{Event, SendOptions};

#[tokio::test]
async fn a_message_id_is_reported_once_across_copies_and_a_restart() -> anyhow::Result<()> {
    let sb = sandbox(1306).await?;
    let alice = pair(&sb, "15550000061").await?;
    let mut bob = pair(&sb, "15550000062").await?;

    let id = MessageId("3EB0DEDUP0000000000001".to_owned());
    let (sender, bob_user) = (alice.client.clone(), bob.user());
    let send_copy = |text: &'static str| {
        let client = sender.clone();
        let to = bob_user.clone();
        let id = id.clone();
        async move {
            client
                .send_message_with(&to, content::text(text), SendOptions::default().id(id))
                .await
        }
    };
    send_copy("original").await?;
    let first = bob.next_message().await?;
    assert_eq!(
        (first.info.id.as_str(), first.text()),
        (id.0.as_str(), Some("original"))
    );

    // A second copy (new ciphertext, same id), then a marker: only the marker is reported.
    send_copy("copy").await?;
    alice.client.send_text(&bob.user(), "marker one").await?;
    let next = bob.next_message().await?;
    assert_eq!(
        next.text(),
        Some("marker one"),
        "duplicate reported: {next:?}"
    );

    // Restart Bob on the same store; a third copy is still a duplicate.
    let store = bob.store.clone();
    bob.shutdown().await;
    let (client, mut events) = connect(&sb, store).await?;
    wait(&mut events, &mut |e| {
        matches!(e, Event::Connected { .. }).then_some(())
    })
    .await?;
    send_copy("copy after restart").await?;
    alice
        .client
        .send_text(&client.jid().expect("jid").to_non_ad(), "marker two")
        .await?;
    let next = wait(&mut events, &mut |e| match e {
        Event::Message(m) => Some((**m).clone()),
        _ => None,
    })
    .await?;
    assert_eq!(
        next.text(),
        Some("marker two"),
        "duplicate reported: {next:?}"
    );

    client.shutdown().await;
    alice.shutdown().await;
    sb.shutdown().await;
    Ok(())
}
