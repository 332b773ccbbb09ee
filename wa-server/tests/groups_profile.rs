//! End to end over HTTP with the embedded sandbox: the group lifecycle (create, list, info,
//! add, promote, subject, description, settings, invite, revoke, join, leave) and the
//! profile routes (push name, status text, pictures), with a second account's wa-engine
//! client checking from the other side what each route did.

mod support;

use base64::Engine as _;
use serde_json::{Value, json};
use support::Api;
use wa_engine::{Jid, ParticipantRole};
use wa_server::AppState;

const KEY: &str = "groups-admin-key-abcdefghijk";
const PEER: &str = "15550300021";
const THIRD: &str = "15550300022";

async fn start() -> (AppState, Api, tempfile::TempDir) {
    support::start_sandbox(KEY, |_| {}).await
}

/// Any method with an optional JSON body.
async fn call(api: &Api, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", api.base))
        .header("x-api-key", api.key.clone().unwrap_or_default());
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn group_lifecycle_and_profile_over_http() {
    let (state, api, _dir) = start().await;
    let (status, created) = api.post("/api/sessions", &json!({ "id": "g1" })).await;
    assert_eq!(status, 201, "{created}");
    api.wait_status("g1", "qr").await;
    let (status, scan) = api.post("/api/sessions/g1/sandbox/scan", &json!({})).await;
    assert_eq!(status, 200, "{scan}");
    let info = api.wait_status("g1", "connected").await;
    let me: Jid = info["jid"].as_str().expect("jid").parse().expect("JID");
    let me = me.to_non_ad();
    let (bob, _bob_events) = support::connect_peer(&state, PEER).await;
    let (carol, _carol_events) = support::connect_peer(&state, THIRD).await;

    // Create with Bob and a number without an account.
    let (status, group) = api
        .post(
            "/api/sessions/g1/groups",
            &json!({ "subject": "Shop team", "participants": [format!("+{PEER}"), "+15550300099"] }),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_str().expect("id").to_owned();
    assert_eq!(group["subject"], "Shop team");
    assert_eq!(group["size"], 2);
    assert_eq!(group["failed"][0]["status"], 404, "{group}");
    let base = format!("/api/sessions/g1/groups/{gid}");

    // List and info.
    let (status, list) = api.get("/api/sessions/g1/groups").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let (status, one) = api.get(&base).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["participants"][0]["role"], "superadmin");
    let (status, err) = api.get("/api/sessions/g1/groups/120363999999999999").await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("group_not_found"))
    );

    // Add Carol, promote Bob: Bob's client sees both.
    let (status, out) = api
        .post(
            &format!("{base}/participants"),
            &json!({ "participants": [format!("{THIRD}@s.whatsapp.net")] }),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["participants"][0]["status"], 200, "{out}");
    let (status, out) = api
        .post(
            &format!("{base}/participants/promote"),
            &json!({ "participants": [format!("+{PEER}")] }),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    let gjid: Jid = gid.parse().expect("group JID");
    let seen = bob.group_info(&gjid).await.expect("bob reads the group");
    assert_eq!(seen.participants.len(), 3);
    let bob_role = seen
        .participants
        .iter()
        .find(|p| p.jid.user() == PEER)
        .map(|p| p.role);
    assert_eq!(bob_role, Some(ParticipantRole::Admin));

    // Subject, description, settings.
    let (status, _) = call(
        &api,
        reqwest::Method::PUT,
        &format!("{base}/subject"),
        Some(json!({ "subject": "Shop team 2" })),
    )
    .await;
    assert_eq!(status, 204);
    let (status, d) = call(
        &api,
        reqwest::Method::PUT,
        &format!("{base}/description"),
        Some(json!({ "description": "Orders and returns" })),
    )
    .await;
    assert_eq!(status, 200, "{d}");
    assert!(d["description_id"].is_string());
    let (status, after) = call(
        &api,
        reqwest::Method::PUT,
        &format!("{base}/settings"),
        Some(json!({ "announce": true, "locked": true, "ephemeral_seconds": 604800 })),
    )
    .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(
        (
            &after["announce"],
            &after["locked"],
            &after["ephemeral_seconds"]
        ),
        (&json!(true), &json!(true), &json!(604800))
    );
    let seen = carol
        .group_info(&gjid)
        .await
        .expect("carol reads the group");
    assert_eq!(seen.subject, "Shop team 2");
    assert_eq!(
        seen.description.map(|d| d.body).as_deref(),
        Some("Orders and returns")
    );
    assert!(seen.announce && seen.locked);
    let (status, err) = call(
        &api,
        reqwest::Method::PUT,
        &format!("{base}/settings"),
        Some(json!({ "ephemeral_seconds": 5 })),
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some("invalid_body"))
    );

    // Invite: get (stable), revoke (new), Carol leaves then rejoins with the new link.
    let (status, inv) = api.get(&format!("{base}/invite")).await;
    assert_eq!(status, 200, "{inv}");
    let url = inv["url"].as_str().expect("url").to_owned();
    assert!(url.starts_with("https://chat.whatsapp.com/"));
    let (status, again) = api.get(&format!("{base}/invite")).await;
    assert_eq!((status, &again["url"]), (200, &json!(url)));
    let (status, revoked) = call(
        &api,
        reqwest::Method::DELETE,
        &format!("{base}/invite"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{revoked}");
    assert_ne!(revoked["url"], json!(url));
    carol.leave_group(&gjid).await.expect("carol leaves");
    assert!(
        carol.join_group_with_invite(&url).await.is_err(),
        "old link still works"
    );
    let joined = carol
        .join_group_with_invite(revoked["url"].as_str().expect("url"))
        .await
        .expect("carol joins with the new link");
    assert_eq!(joined, gjid);

    // The session joins another group by code (Bob's), then leaves it.
    let other = bob.create_group("Bob's", &[]).await.expect("bob's group");
    let code = bob.group_invite_link(&other.jid).await.expect("link");
    let (status, j) = api
        .post("/api/sessions/g1/groups/join", &json!({ "code": code }))
        .await;
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["id"], json!(other.jid.to_string()));
    let (status, err) = api
        .post(
            "/api/sessions/g1/groups/join",
            &json!({ "code": "NoSuchCode123" }),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("invite_not_found"))
    );
    let (status, _) = api
        .post(
            &format!("/api/sessions/g1/groups/{}/leave", other.jid),
            &json!({}),
        )
        .await;
    assert_eq!(status, 204);
    let left = bob.group_info(&other.jid).await.expect("bob's group");
    assert!(left.participants.iter().all(|p| p.jid.user() != me.user()));

    // Remove Carol (DELETE with a body); a non-admin (Carol, via her client) is refused.
    let (status, out) = call(
        &api,
        reqwest::Method::DELETE,
        &format!("{base}/participants"),
        Some(json!({ "participants": [format!("+{THIRD}")] })),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let (_, one) = api.get(&base).await;
    assert_eq!(one["size"], 2, "{one}");

    // Profile: push name and status, read back and seen by Bob.
    let (status, p) = call(
        &api,
        reqwest::Method::PUT,
        "/api/sessions/g1/profile",
        Some(json!({ "push_name": "Shop", "status": "Open 9-5" })),
    )
    .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        (&p["push_name"], &p["status"]),
        (&json!("Shop"), &json!("Open 9-5"))
    );
    let (status, p) = api.get("/api/sessions/g1/profile").await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["jid"], json!(me.to_string()));
    assert_eq!(p["status"], "Open 9-5");
    let statuses = bob
        .status_texts(std::slice::from_ref(&me))
        .await
        .expect("status");
    assert_eq!(statuses[0].text.as_deref(), Some("Open 9-5"));

    // Picture: none, set, read by the session and by Bob (same bytes), removed.
    let (status, pic) = api.get("/api/sessions/g1/profile/picture").await;
    assert_eq!((status, &pic["picture"]), (200, &Value::Null));
    let jpeg: &[u8] = &[
        0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F', 0, 0xFF, 0xD9,
    ];
    let b64 = base64::engine::general_purpose::STANDARD.encode(jpeg);
    let (status, set) = call(
        &api,
        reqwest::Method::PUT,
        "/api/sessions/g1/profile/picture",
        Some(json!({ "image": b64 })),
    )
    .await;
    assert_eq!(status, 200, "{set}");
    let (status, pic) = api.get("/api/sessions/g1/profile/picture").await;
    assert_eq!(status, 200, "{pic}");
    assert_eq!(pic["picture"]["id"], set["id"]);
    let seen = bob
        .profile_picture(&me, false)
        .await
        .expect("lookup")
        .expect("bob sees it");
    let body = reqwest::get(&seen.url)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(&body[..], jpeg);
    // Bob's picture through the contacts route: none yet, then his.
    let (status, none) = api
        .get(&format!("/api/sessions/g1/contacts/+{PEER}/picture"))
        .await;
    assert_eq!((status, &none["picture"]), (200, &Value::Null));
    let bob_pic = bob.set_profile_picture(jpeg).await.expect("bob's picture");
    let (status, his) = api
        .get(&format!(
            "/api/sessions/g1/contacts/{PEER}@s.whatsapp.net/picture"
        ))
        .await;
    assert_eq!(status, 200, "{his}");
    assert_eq!(his["picture"]["id"], json!(bob_pic));
    let (status, _) = call(
        &api,
        reqwest::Method::DELETE,
        "/api/sessions/g1/profile/picture",
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, pic) = api.get("/api/sessions/g1/profile/picture").await;
    assert_eq!(pic["picture"], Value::Null);

    // Leave our own group last.
    let (status, _) = api.post(&format!("{base}/leave"), &json!({})).await;
    assert_eq!(status, 204);
    let (status, list) = api.get("/api/sessions/g1/groups").await;
    assert_eq!((status, list), (200, json!([])));
}
