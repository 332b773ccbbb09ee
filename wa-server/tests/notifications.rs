//! End to end over HTTP with the embedded sandbox (issue 13, first acceptance bullet): each
//! notification type the sandbox pushes (`Router::push_notification`) reaches the session's
//! webhook as its own event with its fields; the generic `notification` event still comes
//! too; no token or routing bytes are forwarded.

mod support;

use base64::Engine as _;
use serde_json::{Value, json};
use support::{Receiver, pair_session, webhook};
use wa_sandbox::Notice;

const KEY: &str = "notify-admin-key-abcdefgh";
const BOB: &str = "15550401302";
const GROUP: &str = "120363000000001401@g.us";

#[tokio::test]
async fn each_notification_type_becomes_its_webhook_event() {
    let (state, api, _dir) = support::start_sandbox(KEY, |_| {}).await;
    let sb = state.sandbox().expect("sandbox");
    let hook = Receiver::start(false).await;
    let me = pair_session(&api, "n1", &hook.url()).await;
    let phone = me.user().to_owned();
    sb.create_account(BOB).expect("bob");
    let bob = format!("{BOB}@s.whatsapp.net");
    let carol = "15550401303@s.whatsapp.net";
    let push = |body: Value| {
        let notice: Notice = serde_json::from_value(body).expect("notice JSON");
        sb.router()
            .push_notification(&phone, &notice)
            .expect("pushed");
    };

    // Groups.
    push(json!({"kind": "group_subject", "group": GROUP, "actor": bob, "subject": "Trip"}));
    let e = webhook(&hook, "group_update", |d| d["subject"] == "Trip").await;
    assert_eq!(e["data"]["group"], GROUP, "{e}");
    assert_eq!(e["data"]["actor"], bob, "{e}");
    assert_eq!(e["data"]["changes"], json!(["subject"]), "{e}");
    push(json!({"kind": "group_description", "group": GROUP, "description": "rules"}));
    webhook(&hook, "group_update", |d| d["description"] == "rules").await;
    push(json!({"kind": "group_description", "group": GROUP, "description": null}));
    webhook(&hook, "group_update", |d| d["description_removed"] == true).await;
    for action in ["add", "remove", "promote", "demote"] {
        push(
            json!({"kind": "group_participants", "group": GROUP, "action": action,
                    "participants": [carol]}),
        );
        let e = webhook(&hook, "group_participants", |d| d["action"] == action).await;
        assert_eq!(e["data"]["participants"], json!([carol]), "{e}");
        assert_eq!(e["data"]["group"], GROUP, "{e}");
    }
    push(json!({"kind": "group_announce", "group": GROUP, "announce": true}));
    webhook(&hook, "group_update", |d| d["announce"] == true).await;
    push(json!({"kind": "group_locked", "group": GROUP, "locked": true}));
    webhook(&hook, "group_update", |d| d["locked"] == true).await;
    push(json!({"kind": "group_invite", "group": GROUP, "code": "AbCdEf123"}));
    webhook(&hook, "group_update", |d| d["invite_code"] == "AbCdEf123").await;
    push(json!({"kind": "group_ephemeral", "group": GROUP, "expiration": 86_400}));
    webhook(&hook, "group_update", |d| d["ephemeral_secs"] == 86_400).await;

    // Account sync, contacts, encryption, media retry.
    for what in ["devices", "privacy", "picture", "blocklist"] {
        push(json!({"kind": "account_sync", "what": what}));
        webhook(&hook, "account_sync", |d| d["what"] == what).await;
    }
    push(json!({"kind": "picture", "jid": bob, "picture_id": "1700000001"}));
    let e = webhook(&hook, "contact_picture", |d| {
        d["picture_id"] == "1700000001"
    })
    .await;
    assert_eq!(e["data"]["jid"], bob, "{e}");
    assert_eq!(e["data"]["removed"], false, "{e}");
    push(json!({"kind": "picture", "jid": bob, "picture_id": null}));
    webhook(&hook, "contact_picture", |d| d["removed"] == true).await;
    push(json!({"kind": "status", "jid": bob, "text": "at the gym"}));
    let e = webhook(&hook, "contact_status", |d| d["text"] == "at the gym").await;
    assert_eq!(e["data"]["jid"], bob, "{e}");
    push(json!({"kind": "devices", "jid": bob, "action": "add", "device": 3}));
    webhook(&hook, "contact_devices", |d| d["jid"] == bob).await;
    push(json!({"kind": "identity_change", "jid": bob}));
    webhook(&hook, "identity_changed", |d| d["jid"] == bob).await;
    push(json!({"kind": "prekey_count", "count": 55}));
    webhook(&hook, "prekey_count", |d| d["count"] == 55).await;
    push(json!({"kind": "media_retry", "message_id": "3EB0MEDIA02"}));
    webhook(&hook, "media_retry", |d| d["message_id"] == "3EB0MEDIA02").await;
    // The generic event still comes for typed notifications.
    webhook(&hook, "notification", |d| d["kind"] == "media_retry").await;

    // Sync and privacy.
    push(json!({"kind": "server_sync", "collections": ["regular_low"]}));
    webhook(&hook, "server_sync", |d| {
        d["collections"] == json!(["regular_low"])
    })
    .await;
    push(json!({"kind": "privacy_token", "issuer": BOB, "t": 1_700_000_000u64}));
    let e = webhook(&hook, "privacy_token", |d| d["from"] == bob).await;
    let bob_lid = sb.router().account(BOB).expect("bob").lid;
    assert_eq!(
        e["data"],
        json!({"from": bob, "sender_lid": format!("{bob_lid}@lid"), "tokens": 1,
               "newest_timestamp": 1_700_000_000u64}),
        "no token bytes: {e}"
    );
    push(json!({"kind": "timelock", "active": true, "ends": 4_000_000_000u64}));
    webhook(&hook, "reachout_timelock", |d| {
        d["active"] == true && d["ends"] == 4_000_000_000u64
    })
    .await;
    push(json!({"kind": "capping", "total_quota": 5, "used_quota": 5,
                "cycle_start": 1_700_000_000u64, "cycle_end": 4_000_000_000u64}));
    webhook(&hook, "new_chat_capping", |d| {
        d["capped"] == true && d["total_quota"] == 5
    })
    .await;

    // <ib>.
    push(json!({"kind": "dirty", "dirty_type": "account_sync", "timestamp": 1_700_000_321u64}));
    webhook(&hook, "dirty", |d| {
        d["type"] == "account_sync" && d["timestamp"] == 1_700_000_321u64
    })
    .await;
    push(
        json!({"kind": "offline_preview", "count": 6, "message": 3, "notification": 2,
                "receipt": 1, "appdata": 0}),
    );
    let e = webhook(&hook, "offline_preview", |d| d["total"] == 6).await;
    assert_eq!(
        e["data"],
        json!({"total": 6, "messages": 3, "notifications": 2, "receipts": 1, "app_data": 0})
    );
    push(json!({"kind": "offline", "count": 6}));
    webhook(&hook, "offline_sync", |d| d["count"] == 6).await;
    let route = b"routing-bytes-1401".to_vec();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&route);
    push(json!({"kind": "edge_routing", "routing_info_b64": b64}));
    let e = webhook(&hook, "edge_routing", |_| true).await;
    assert_eq!(
        e["data"],
        json!({"length": route.len(), "stored": true}),
        "{e}"
    );
    // No webhook carries the routing bytes.
    assert!(
        hook.received()
            .iter()
            .all(|r| !r.envelope.to_string().contains(&b64)),
        "routing info forwarded"
    );
}
