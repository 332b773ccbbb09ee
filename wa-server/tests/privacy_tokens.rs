//! End to end over HTTP with the embedded sandbox and its privacy-token gate on (issue 11,
//! shared/protocol/07 §5.4 policy P3 "always" on the recipient):
//!
//! - A session whose phone did the 2026 onboarding (`sandbox_phone_sync`: app-state keys,
//!   snapshot with the NCT salt, history sync) sends an OTP to a cold contact: its message
//!   carries a cstoken, the API answers 201 and the contact receives the exact text. The
//!   contact's reply reaches the session's webhook with both of its identities (`from_pn`,
//!   `from_lid`) and so does the message API's record of it; the session's webhooks saw
//!   `app_state` / `history_sync` events.
//! - A session on an account whose phone withholds the salt on both channels gets WhatsApp's
//!   463 for the same kind of send: the API answers 422 `recipient_requires_token` with a
//!   message that says what to do.
//! - The sandbox timelocks the first account (P2): `reachout_timelock` webhook with the end,
//!   429 `reachout_timelocked` with `locked_until`; then caps its new chats: a
//!   `new_chat_capping` webhook and 429 `message_capping` (WhatsApp's 475).

mod support;

use serde_json::json;
use support::{Api, Receiver, eventually, next_event as wait, pair_session, webhook};
use wa_engine::Event;
use wa_sandbox::{Capping, PrivacySettings, SyncSwitches, TokenPolicy};
use wa_server::AppState;

const KEY: &str = "privacy-admin-key-abcdefgh";
const PEER: &str = "15550400001";
const SALTLESS: &str = "15550400002";

async fn start() -> (AppState, Api, tempfile::TempDir) {
    support::start_sandbox(KEY, |config| config.sandbox_phone_sync = true).await
}

#[tokio::test]
async fn cold_send_with_synced_salt_is_delivered_and_without_it_answers_recipient_requires_token() {
    let (state, api, _dir) = start().await;
    let sb = state.sandbox().expect("sandbox");
    let hook = Receiver::start(false).await;

    // Session s1: paired by the sandbox phone, which onboards it (keys, salt, history).
    let me = pair_session(&api, "s1", &hook.url()).await;
    let my_lid = sb.router().account(me.user()).expect("account").lid;
    // The salt arrived through app-state sync (reported as an app_state webhook, without
    // the salt itself) and history sync.
    let salt_event = webhook(&hook, "app_state", |d| d["action"]["type"] == "nct_salt").await;
    assert_eq!(salt_event["data"]["action"], json!({"type": "nct_salt"}));
    assert_eq!(salt_event["data"]["operation"], "set", "{salt_event}");
    let history = webhook(&hook, "history_sync", |_| true).await;
    assert!(
        history["data"]["lid_mappings"]
            .as_array()
            .is_some_and(|m| !m.is_empty()),
        "{history}"
    );

    // The recipient: a cold contact under P3 ("always": every first message needs a token).
    let phone = sb.create_account(PEER).expect("account");
    sb.router()
        .set_privacy(
            PEER,
            PrivacySettings {
                policy: TokenPolicy::Always,
                ..PrivacySettings::default()
            },
        )
        .expect("privacy");
    let (peer, mut events) = support::link_peer(&state, &phone).await;

    // 1. With the synced salt: 201 and delivered, exact text.
    let otp = "Your code is 482913";
    let (status, sent) = api
        .post(
            "/api/sessions/s1/messages/text",
            &json!({ "to": PEER, "text": otp }),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    let id = sent["id"].as_str().expect("id").to_owned();
    loop {
        if let Event::Message(m) = wait(&mut events).await {
            assert_eq!(m.info.id, id);
            assert_eq!(m.text(), Some(otp));
            assert_eq!(m.info.sender_pn.as_ref(), Some(&me));
            break;
        }
    }

    // The contact replies: the webhook carries its phone number and its LID.
    let peer_lid = sb.router().account(PEER).expect("account").lid;
    peer.send_text(&me, "thanks").await.expect("reply");
    let msg = webhook(&hook, "message", |d| d["text"] == "thanks").await;
    let data = &msg["data"];
    assert_eq!(data["from_pn"], format!("{PEER}@s.whatsapp.net"), "{msg}");
    assert_eq!(data["from_lid"], format!("{peer_lid}@lid"), "{msg}");
    assert_eq!(data["chat_pn"], format!("{PEER}@s.whatsapp.net"), "{msg}");
    assert_eq!(data["chat_lid"], format!("{peer_lid}@lid"), "{msg}");
    assert_ne!(my_lid, peer_lid);
    // So does the message API (the message log's record of the received message).
    let thanks_id = data["id"].as_str().expect("id");
    let (status, logged) = api
        .get(&format!("/api/sessions/s1/messages/{thanks_id}"))
        .await;
    assert_eq!(status, 200, "{logged}");
    assert_eq!(logged["direction"], "in", "{logged}");
    assert_eq!(
        logged["sender_pn"],
        format!("{PEER}@s.whatsapp.net"),
        "{logged}"
    );
    assert_eq!(logged["sender_lid"], format!("{peer_lid}@lid"), "{logged}");
    assert_eq!(logged["chat_lid"], format!("{peer_lid}@lid"), "{logged}");

    // 2. Session s2 on an account whose phone withholds the salt on both channels.
    let (status, created) = api.post("/api/sessions", &json!({ "id": "s2" })).await;
    assert_eq!(status, 201, "{created}");
    api.wait_status("s2", "qr").await;
    let saltless = sb.create_account(SALTLESS).expect("account");
    saltless
        .set_sync_switches(SyncSwitches {
            nct_syncd_delivery: false,
            nct_history_delivery: false,
            ..SyncSwitches::default()
        })
        .expect("switches");
    let (status, qr) = api.get("/api/sessions/s2/qr").await;
    assert_eq!(status, 200, "{qr}");
    saltless.scan(qr["qr"].as_str().expect("qr")).expect("scan");
    api.wait_status("s2", "connected").await;
    // Give the phone's onboarding time to finish (the history blob is the last of it).
    let _ = eventually("s2's history sync", || {
        (!saltless.history_receipts().is_empty()).then_some(())
    })
    .await;
    let (status, refused) = api
        .post(
            "/api/sessions/s2/messages/text",
            &json!({ "to": PEER, "text": "Your code is 000111" }),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(
        refused["error"]["code"], "recipient_requires_token",
        "{refused}"
    );
    let text = refused["error"]["message"].as_str().expect("message");
    assert!(text.contains("463"), "{text}");
    assert!(text.contains("message this account first"), "{text}");
    assert!(text.contains("sync"), "{text}");

    // 3. The sandbox timelocks s1's account (P2, pushed as a mex notification): the
    //    `reachout_timelock` webhook carries the end, and a send to a new contact answers 429
    //    `reachout_timelocked` with `locked_until`.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let ends = now + 3600;
    sb.router()
        .set_privacy(
            me.user(),
            PrivacySettings {
                policy: TokenPolicy::TimelockedSender,
                restricted: true,
                ends: Some(ends),
                ..PrivacySettings::default()
            },
        )
        .expect("timelock");
    let lock = webhook(&hook, "reachout_timelock", |d| d["active"] == true).await;
    assert_eq!(lock["data"]["ends"], ends, "{lock}");
    let (status, refused) = api
        .post(
            "/api/sessions/s1/messages/text",
            &json!({ "to": SALTLESS, "text": "Your code is 222333" }),
        )
        .await;
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["error"]["code"], "reachout_timelocked", "{refused}");
    assert_eq!(refused["error"]["locked_until"], ends, "{refused}");

    // 4. Lifted, but the new-chat quota is used up: `new_chat_capping` webhook, then 475 →
    //    429 `message_capping`.
    sb.router()
        .set_privacy(
            me.user(),
            PrivacySettings {
                capping: Some(Capping {
                    total_quota: 1,
                    used_quota: 1,
                    cycle_start: now,
                    cycle_end: now + 86_400,
                }),
                ..PrivacySettings::default()
            },
        )
        .expect("capping");
    webhook(&hook, "reachout_timelock", |d| d["active"] == false).await;
    let capping = webhook(&hook, "new_chat_capping", |d| d["capped"] == true).await;
    assert_eq!(capping["data"]["cycle_end"], now + 86_400, "{capping}");
    let (status, refused) = api
        .post(
            "/api/sessions/s1/messages/text",
            &json!({ "to": SALTLESS, "text": "Your code is 444555" }),
        )
        .await;
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["error"]["code"], "message_capping", "{refused}");

    peer.shutdown().await;
}
