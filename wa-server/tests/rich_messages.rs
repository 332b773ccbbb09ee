//! End to end over HTTP with the embedded sandbox (issue 13 item 5): a session and a second
//! account's wa-engine client exchange a reaction, an edit, a revoke and a poll with votes;
//! the session's side goes through the `/messages/{react,edit,revoke,poll,poll/vote}`
//! routes and the `message_reaction`, `message_edited`, `message_revoked`, `message` (type
//! `poll`) and `poll_vote` webhooks.

mod support;

use serde_json::json;
use support::{Receiver, connect_peer, pair_session, webhook};
use wa_engine::Event;
use wa_engine::message::ContentKind;
use wa_engine::message::rich::TargetKey;

const KEY: &str = "rich-admin-key-abcdefghijk";
const PEER: &str = "15550300013";

async fn next_of(events: &mut wa_engine::Events, kind: ContentKind) -> wa_engine::IncomingMessage {
    loop {
        if let Event::Message(m) = support::next_event(events).await
            && m.content().kind() == kind
        {
            return *m;
        }
    }
}

#[tokio::test]
async fn reactions_edits_revokes_and_polls_cross_the_http_api() {
    let (state, api, _dir) = support::start_sandbox(KEY, |_| {}).await;
    let hook = Receiver::start(false).await;
    let me = pair_session(&api, "s1", &hook.url()).await;

    let (peer, mut events) = connect_peer(&state, PEER).await;

    // Peer -> session: a text, then the session reacts through the API.
    let hello = peer.send_text(&me, "hello").await.expect("send");
    webhook(&hook, "message", |d| d["id"] == hello.0.as_str()).await;
    let (status, body) = api
        .post(
            "/api/sessions/s1/messages/react",
            &json!({ "to": PEER, "message_id": hello.0, "emoji": "🎉" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let r = next_of(&mut events, ContentKind::Reaction).await;
    let reaction = r.content().reaction().expect("reaction");
    assert_eq!(
        (reaction.emoji, reaction.message_id),
        (Some("🎉"), Some(hello.0.as_str()))
    );

    // Peer reacts, edits and revokes its message: three webhooks with exact content.
    let target = TargetKey {
        chat: me.clone(),
        id: hello.0.clone(),
        from_me: true,
        sender: None,
    };
    peer.send_reaction(
        &TargetKey {
            from_me: false,
            ..target.clone()
        },
        "👍",
    )
    .await
    .expect("react");
    webhook(&hook, "message_reaction", |d| {
        d["message_id"] == hello.0.as_str() && d["emoji"] == "👍"
    })
    .await;
    peer.edit_message(&me, &hello.0, "hello, edited")
        .await
        .expect("edit");
    webhook(&hook, "message_edited", |d| {
        d["message_id"] == hello.0.as_str() && d["text"] == "hello, edited"
    })
    .await;
    peer.revoke_message(&target).await.expect("revoke");
    webhook(&hook, "message_revoked", |d| {
        d["message_id"] == hello.0.as_str()
    })
    .await;

    // Session edits and revokes its own message through the API.
    let (status, sent) = api
        .post(
            "/api/sessions/s1/messages/text",
            &json!({ "to": PEER, "text": "typo" }),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    let own_id = sent["id"].as_str().expect("id").to_owned();
    next_of(&mut events, ContentKind::Text).await;
    let (status, body) = api
        .post(
            "/api/sessions/s1/messages/edit",
            &json!({ "to": PEER, "message_id": own_id, "text": "fixed" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let e = next_of(&mut events, ContentKind::Edit).await;
    let edit = e.content().edit().expect("edit");
    assert_eq!(edit.message_id, own_id);
    assert_eq!(
        edit.new_content
            .and_then(wa_engine::message::content::text_of),
        Some("fixed")
    );
    let (status, body) = api
        .post(
            "/api/sessions/s1/messages/revoke",
            &json!({ "to": PEER, "message_id": own_id }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let v = next_of(&mut events, ContentKind::Revoke).await;
    assert_eq!(v.content().revoke().expect("revoke").message_id, own_id);

    // Session's poll; the peer votes; both votes are tallied in the webhook.
    let (status, body) = api
        .post(
            "/api/sessions/s1/messages/poll",
            &json!({ "to": PEER, "name": "lunch?", "options": ["soup", "salad"], "selectable": 1 }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let poll_id = body["id"].as_str().expect("id").to_owned();
    let p = next_of(&mut events, ContentKind::Poll).await;
    assert_eq!(
        p.content().poll().expect("poll").options,
        vec!["soup", "salad"]
    );
    peer.vote_poll(&me, &poll_id, &["salad"])
        .await
        .expect("vote");
    webhook(&hook, "poll_vote", |d| {
        d["poll_id"] == poll_id.as_str() && d["selected"] == json!(["salad"])
    })
    .await;
    let (status, body) = api
        .post(
            "/api/sessions/s1/messages/poll/vote",
            &json!({ "to": PEER, "poll_id": poll_id, "options": ["salad"] }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    webhook(&hook, "poll_vote", |d| {
        d["poll_id"] == poll_id.as_str()
            && d["tally"]
                == json!([{ "option": "soup", "votes": 0 }, { "option": "salad", "votes": 2 }])
    })
    .await;
    // A peer-created poll arrives as a `message` of type `poll`.
    let peer_poll = peer
        .send_poll(&me, "tea?", &["yes".to_owned(), "no".to_owned()], 0)
        .await
        .expect("poll");
    let m = webhook(&hook, "message", |d| d["id"] == peer_poll.0.as_str()).await;
    assert_eq!(m["data"]["type"], "poll");
    assert_eq!(m["data"]["poll"]["options"], json!(["yes", "no"]));
    // An unknown poll is refused.
    let (status, body) = api
        .post(
            "/api/sessions/s1/messages/poll/vote",
            &json!({ "to": PEER, "poll_id": "NOPE", "options": [] }),
        )
        .await;
    assert!(status == 400 || status == 422, "{status} {body}");

    peer.shutdown().await;
}
