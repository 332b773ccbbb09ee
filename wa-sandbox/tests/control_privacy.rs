//! The control API of the privacy gate (shared/protocol/07 §5), driven with `oneshot`.

use axum::http::StatusCode;
use serde_json::json;
use wa_sandbox::{Clock, Router, RouterConfig, TokenPolicy};

#[path = "support/control.rs"]
mod control_api;
use control_api::call;

fn router() -> Router {
    let mut config = RouterConfig::default();
    config.seed = Some(1);
    config.clock = Clock::Fixed(1_767_225_600);
    Router::new(config)
}

const A: &str = "15551250001";
const B: &str = "15551250002";

#[tokio::test]
async fn privacy_settings_gate_tokens_contacts_clock_and_errors() {
    let r = router();
    r.create_account(A).expect("A");
    r.create_account(B).expect("B");

    // Settings: defaults, then a partial body (missing fields = defaults).
    let (status, body) = call(&r, "GET", &format!("/accounts/{A}/privacy"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["policy"], "off");
    let (status, body) = call(
        &r,
        "PUT",
        &format!("/accounts/{B}/privacy"),
        Some(json!({"policy": "p1", "restricted": true, "lid_migrated": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["policy"], "p1");
    let settings = r.privacy(B).expect("settings");
    assert_eq!(settings.policy, TokenPolicy::RestrictedRecipient);
    assert!(settings.restricted && settings.lid_migrated && settings.ends.is_none());
    let (status, body) = call(
        &r,
        "PUT",
        &format!("/accounts/{B}/privacy"),
        Some(json!({"policy": "p9"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "bad_request");
    let (status, body) = call(&r, "GET", "/accounts/15559999999/privacy", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "no_such_account");

    // Gate config.
    let (status, body) = call(&r, "PUT", "/gate", Some(json!({"n_server": 4}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"n_server": 4, "reject_mixed_namespaces": true, "reject_unmigrated_lid": false, "min_app_version": null, "timelock_after_refusals": null, "timelock_seconds": 86400, "tctoken_sending_prop": true, "cstoken_sending_prop": true})
    );
    assert_eq!(r.gate_config().n_server, 4);
    let (status, _) = call(&r, "PUT", "/gate", Some(json!({"n_server": 0}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Issue B's token to A (by LID), list it.
    let a_lid = r.account(A).expect("A").lid;
    let (status, body) = call(
        &r,
        "POST",
        "/tokens",
        Some(json!({"issuer": B, "holder": format!("{a_lid}@lid")})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["holder"], A);
    assert_eq!(body["t"], 1_767_225_600u64);
    let (_, list) = call(&r, "GET", "/tokens", None).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["token_b64"], body["token_b64"]);
    let (status, _) = call(
        &r,
        "POST",
        "/tokens",
        Some(json!({"issuer": B, "holder": "120363000000000000@g.us"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // has_contact.
    let (status, _) = call(
        &r,
        "PUT",
        "/contacts",
        Some(json!({"from": A, "to": B, "value": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(r.has_contact(A, B) && !r.has_contact(B, A));

    // Salt: remove, set explicitly, restore.
    let own = r.nct_salt(A).expect("salt");
    let (status, _) = call(&r, "DELETE", &format!("/accounts/{A}/nct_salt"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(r.nct_salt(A).expect("salt"), None);
    let (status, body) = call(
        &r,
        "POST",
        &format!("/accounts/{A}/nct_salt"),
        Some(json!({"salt_b64": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["salt_b64"],
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    );
    let (status, _) = call(
        &r,
        "POST",
        &format!("/accounts/{A}/nct_salt"),
        Some(json!({"salt_b64": "AAEC"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    call(
        &r,
        "POST",
        &format!("/accounts/{A}/nct_salt"),
        Some(json!({})),
    )
    .await;
    assert_eq!(r.nct_salt(A).expect("salt"), own);

    // Clock.
    let (status, body) = call(&r, "POST", "/clock/advance", Some(json!({"seconds": 60}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["now"], 1_767_225_660u64);
    let (_, refusals) = call(&r, "GET", "/refusals", None).await;
    assert_eq!(refusals, json!([]));
}
