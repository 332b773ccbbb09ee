//! End to end over HTTP with the embedded sandbox (issue 13 item 5): a session and a second
//! account's wa-engine client exchange a reaction, an edit, a revoke and a poll with votes;
//! the session's side goes through the `/messages/{react,edit,revoke,poll,poll/vote}`
//! routes and the `message_reaction`, `message_edited`, `message_revoked`, `message` (type
//! `poll`) and `poll_vote` webhooks.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::{Receiver, connect_peer, pair_session, webhook};
use wa_engine::message::ContentKind;
use wa_engine::message::rich::TargetKey;
use wa_engine::{Client, Event, MemoryStore, Store};

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

/// Disappearing timers, ephemeral and view-once messages, and delete for me over HTTP: the
/// session sets a timer through `/messages/disappearing` (the peer engine reads the setting),
/// the peer's timer arrives as `chat_ephemeral`, the peer's messages carry
/// `ephemeral_expiration` and `view_once` on the `message` webhook, and
/// `/messages/delete-for-me` is an app-state change reported back as `app_state`
/// (`delete_message_for_me`). The embedded sandbox runs with phone sync, so the session
/// holds an app-state key.
#[tokio::test]
async fn disappearing_view_once_and_delete_for_me_cross_the_http_api() {
    let (state, api, _dir) =
        support::start_sandbox(KEY, |config| config.sandbox_phone_sync = true).await;
    let hook = Receiver::start(false).await;
    let me = pair_session(&api, "s2", &hook.url()).await;

    let sb = state.sandbox().expect("sandbox");
    let peer_number = "15550300014";
    let phone = sb.create_account(peer_number).expect("account");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (peer, mut events) = Client::builder(store)
        .url(sb.ws_url())
        .trust_root(sb.trust_root())
        .media_scheme(wa_engine::media::Scheme::Http)
        .prekey_batch(30)
        .connect()
        .await
        .expect("peer connects");
    loop {
        match support::next_event(&mut events).await {
            Event::Qr { code, .. } => {
                phone.scan(&code).expect("scan");
            }
            Event::Connected { .. } => break,
            _ => {}
        }
    }
    let hello = peer.send_text(&me, "hello").await.expect("send");
    webhook(&hook, "message", |d| d["id"] == hello.0.as_str()).await;

    // Our timer through the API.
    let (status, body) = api
        .post(
            "/api/sessions/s2/messages/disappearing",
            &json!({ "to": peer_number, "seconds": 604_800 }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let s = next_of(&mut events, ContentKind::EphemeralSetting).await;
    assert_eq!(s.info.id, body["id"].as_str().expect("id"));
    assert_eq!(
        s.content().ephemeral_setting().map(|s| s.expiration),
        Some(604_800)
    );
    // Groups are refused.
    let (status, body) = api
        .post(
            "/api/sessions/s2/messages/disappearing",
            &json!({ "to": "120363000000000001@g.us", "seconds": 86_400 }),
        )
        .await;
    assert_eq!(status, 422, "{body}");

    // The peer's timer and an ephemeral, view-once image.
    peer.set_disappearing_timer(&me, wa_engine::message::ephemeral::TIMER_24_HOURS)
        .await
        .expect("timer");
    let e = webhook(&hook, "chat_ephemeral", |d| d["expiration_secs"] == 86_400).await;
    assert_eq!(e["data"]["chat"], format!("{peer_number}@s.whatsapp.net"));
    assert!(e["data"]["setting_timestamp"].is_u64(), "{e}");
    let png = [
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R', 0,
        0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0,
    ]
    .to_vec();
    let sent = peer
        .send_image(
            &me,
            png,
            wa_engine::media::message::ImageOptions {
                caption: Some("look once".into()),
                view_once: true,
                ..Default::default()
            },
        )
        .await
        .expect("image");
    let m = webhook(&hook, "message", |d| d["id"] == sent.id.0.as_str()).await;
    assert_eq!(m["data"]["type"], "image", "{m}");
    assert_eq!(m["data"]["view_once"], true, "{m}");
    assert_eq!(m["data"]["ephemeral_expiration"], 86_400, "{m}");
    assert_eq!(m["data"]["text"], "look once", "{m}");

    // A view-once image from the session (`view_once` on the media route).
    let png_b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(
            hex::decode("89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a730000001149444154789c63f8cfc0004460e23f03001df003fda03309890000000049454e44ae426082")
                .expect("hex"),
        )
    };
    let (status, body) = api
        .post(
            "/api/sessions/s2/messages/image",
            &json!({ "to": peer_number, "base64": png_b64, "caption": "once from the API",
                "view_once": true }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let v = next_of(
        &mut events,
        ContentKind::Media(wa_engine::message::MediaKind::Image),
    )
    .await;
    assert_eq!(v.info.id, body["id"].as_str().expect("id"));
    assert_eq!(
        v.content().view_once(),
        Some(wa_engine::message::view_once::ViewOnceKind::V2)
    );
    assert_eq!(v.text(), Some("once from the API"));
    // The session follows the peer's 24 h timer.
    assert_eq!(v.content().expiration(), Some(86_400));
    // Only images and videos can be view-once.
    let (status, body) = api
        .post(
            "/api/sessions/s2/messages/document",
            &json!({ "to": peer_number, "base64": png_b64, "view_once": true }),
        )
        .await;
    assert_eq!(status, 422, "{body}");

    // Delete for me: an app-state change, reported back once the server accepted it.
    let body = json!({ "to": peer_number, "message_id": hello.0, "from_me": false,
        "message_timestamp": 1_700_000_000 });
    let mut tries = 0;
    loop {
        let (status, reply) = api
            .post("/api/sessions/s2/messages/delete-for-me", &body)
            .await;
        if status == 204 {
            break;
        }
        // Before the phone's key share arrived: 422 "no app-state sync key yet".
        assert_eq!(status, 422, "{reply}");
        tries += 1;
        assert!(tries < 50, "no app-state key: {reply}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let a = webhook(&hook, "app_state", |d| {
        d["action"]["type"] == "delete_message_for_me"
    })
    .await;
    assert_eq!(a["data"]["collection"], "regular_high", "{a}");
    assert_eq!(a["data"]["action"]["message_id"], hello.0.as_str(), "{a}");
    assert_eq!(a["data"]["action"]["from_me"], false, "{a}");
    assert_eq!(
        a["data"]["action"]["message_timestamp"], 1_700_000_000,
        "{a}"
    );

    peer.shutdown().await;
}
