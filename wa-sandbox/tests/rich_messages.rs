//! End to end, two engine `Client`s against the sandbox (issue 13 item 5): a reaction, an
//! edit, a revoke and a poll with votes from both sides, content exact and the tally the
//! same on both sides.

mod support;

use std::time::Duration;

use wa_engine::message::rich::TargetKey;
use wa_engine::message::{ContentKind, IncomingMessage};
use wa_engine::{Event, Events, Jid};
use wa_sandbox::{Sandbox, SandboxConfig};

use support::engine::{next_within, paired_engine};
use support::rich::next_vote;

const ALICE: &str = "15550130001";
const BOB: &str = "15550130002";
const STEP: Duration = Duration::from_secs(20);

async fn next_message(events: &mut Events, kind: ContentKind) -> anyhow::Result<IncomingMessage> {
    next_within(events, STEP, |e| match e {
        Event::Message(m) if m.content().kind() == kind => Some((**m).clone()),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn reactions_edits_revokes_and_polls_between_two_engines() -> anyhow::Result<()> {
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(1305)).await?;
    sandbox.create_account(ALICE)?;
    sandbox.create_account(BOB)?;
    let (alice, mut alice_events, alice_jid, _) = paired_engine(&sandbox, ALICE, STEP).await?;
    let (bob, mut bob_events, bob_jid, _) = paired_engine(&sandbox, BOB, STEP).await?;
    let alice_user = alice_jid.to_non_ad();
    let bob_user: Jid = bob_jid.to_non_ad();

    // A text, then Bob reacts to it.
    let hello = alice.send_text(&bob_user, "hello").await?;
    let got = next_message(&mut bob_events, ContentKind::Text).await?;
    assert_eq!(got.info.id, hello.0);
    let target = TargetKey {
        chat: alice_user.clone(),
        id: hello.0.clone(),
        from_me: false,
        sender: None,
    };
    bob.send_reaction(&target, "👍").await?;
    let r = next_message(&mut alice_events, ContentKind::Reaction).await?;
    let reaction = r.content().reaction().expect("reaction");
    assert_eq!(
        (reaction.emoji, reaction.message_id),
        (Some("👍"), Some(hello.0.as_str()))
    );

    // Alice edits it; Bob sees the new text for that id.
    alice
        .edit_message(&bob_user, &hello.0, "hello, edited")
        .await?;
    let e = next_message(&mut bob_events, ContentKind::Edit).await?;
    let edit = e.content().edit().expect("edit");
    assert_eq!(edit.message_id, hello.0);
    assert_eq!(
        edit.new_content
            .and_then(wa_engine::message::content::text_of),
        Some("hello, edited")
    );

    // Alice deletes it for everyone.
    alice
        .revoke_message(&TargetKey {
            chat: bob_user.clone(),
            id: hello.0.clone(),
            from_me: true,
            sender: None,
        })
        .await?;
    let v = next_message(&mut bob_events, ContentKind::Revoke).await?;
    let revoke = v.content().revoke().expect("revoke");
    assert_eq!(revoke.message_id, hello.0);
    assert!(revoke.from_me);

    // Alice's poll; Bob votes blue, Alice votes red then changes to blue.
    let options = vec!["red".to_owned(), "blue".to_owned(), "green".to_owned()];
    let poll_id = alice.send_poll(&bob_user, "colour?", &options, 1).await?;
    let p = next_message(&mut bob_events, ContentKind::Poll).await?;
    assert_eq!(p.info.id, poll_id.0);
    let poll = p.content().poll().expect("poll");
    assert_eq!(
        (poll.name, poll.options.clone(), poll.selectable),
        (Some("colour?"), vec!["red", "blue", "green"], 1)
    );

    bob.vote_poll(&alice_user, &poll_id.0, &["blue"]).await?;
    let own = next_vote(STEP, &mut bob_events).await?;
    assert_eq!(own.selected, vec!["blue".to_owned()]);
    let at_alice = next_vote(STEP, &mut alice_events).await?;
    assert_eq!(at_alice.poll_id, poll_id.0);
    assert_eq!(at_alice.voter, bob_user);
    assert_eq!(at_alice.selected, vec!["blue".to_owned()]);

    alice.vote_poll(&bob_user, &poll_id.0, &["red"]).await?;
    next_vote(STEP, &mut alice_events).await?;
    next_vote(STEP, &mut bob_events).await?;
    alice.vote_poll(&bob_user, &poll_id.0, &["blue"]).await?;
    let alice_tally = next_vote(STEP, &mut alice_events).await?.tally;
    let bob_tally = next_vote(STEP, &mut bob_events).await?.tally;
    let expected = vec![
        ("red".to_owned(), 0),
        ("blue".to_owned(), 2),
        ("green".to_owned(), 0),
    ];
    assert_eq!(alice_tally, expected);
    assert_eq!(bob_tally, expected);

    alice.shutdown().await;
    bob.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}
