//! The app-state server and the phone's app-state side without a client: control routes
//! (typed 4xx errors), the phone's on-demand mutations decoded back with its keys, the
//! broken-MAC switch, and persistence of the collections and the phone's keys across
//! `export_state` / `import_state` (shared/protocol/08 §11). Clients' view of the same
//! patches is checked by whatsmeow in `whatsmeow_appstate.rs`.

use axum::http::StatusCode;
use serde_json::json;
use wa_sandbox::{AppStateAction, Router, RouterConfig, SyncSwitches};

#[path = "support/control.rs"]
mod control_api;
use control_api::call;

const PN: &str = "15551280001";

fn router() -> Router {
    let mut config = RouterConfig::default();
    config.seed = Some(5);
    Router::new(config)
}

#[tokio::test]
async fn control_routes_mutate_and_read_app_state_with_typed_errors() {
    let r = router();
    r.create_account(PN).expect("account");
    let chat = "15551280002@s.whatsapp.net";

    let (status, body) = call(
        &r,
        "POST",
        &format!("/accounts/{PN}/app-state"),
        Some(json!({"action": "mute", "chat": chat})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 1);
    let (status, body) = call(
        &r,
        "POST",
        &format!("/accounts/{PN}/app-state"),
        Some(json!({"action": "push_name", "name": "Zed"})),
    )
    .await;
    assert_eq!(
        (status, body["version"].clone()),
        (StatusCode::OK, json!(1))
    );
    let (status, body) = call(
        &r,
        "POST",
        &format!("/accounts/{PN}/contacts"),
        Some(json!({"phone": "15551280003", "full_name": "Cy Contact"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (status, view) = call(&r, "GET", &format!("/accounts/{PN}/app-state"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["versions"]["regular_high"], 1, "{view}");
    assert_eq!(view["versions"]["critical_block"], 1, "{view}");
    assert_eq!(view["errors"], json!([]), "{view}");
    let records = view["records"].as_array().expect("records");
    let mute = records
        .iter()
        .find(|rec| rec["index"] == json!(["mute", chat]))
        .expect("mute record");
    assert_eq!(mute["action"]["muted"], true);
    assert_eq!(mute["action"]["until_ms"], -1);
    assert_eq!(mute["action_version"], 2);
    assert_eq!(mute["device"], 0);
    let name = records
        .iter()
        .find(|rec| rec["index"] == json!(["setting_pushName"]))
        .expect("push name record");
    assert_eq!(name["action"]["name"], "Zed");

    // Switches round-trip; missing fields take their defaults.
    let (status, sw) = call(
        &r,
        "PUT",
        &format!("/accounts/{PN}/sync-switches"),
        Some(json!({"withhold_key_share": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sw["withhold_key_share"], true);
    assert_eq!(sw["nct_syncd_delivery"], true);
    let (_, sw) = call(&r, "GET", &format!("/accounts/{PN}/sync-switches"), None).await;
    assert_eq!(sw["withhold_key_share"], true);

    // Typed errors.
    let (status, body) = call(
        &r,
        "POST",
        &format!("/accounts/{PN}/app-state"),
        Some(json!({"action": "mute", "chat": "not a jid@@"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "bad_jid");
    let (status, body) = call(
        &r,
        "POST",
        &format!("/accounts/{PN}/app-state"),
        Some(json!({"action": "explode"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "bad_request");
    let (status, body) = call(&r, "GET", "/accounts/15559999999/app-state", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "no_such_account");
    let (status, body) = call(
        &r,
        "POST",
        &format!("/accounts/{PN}/contacts"),
        Some(json!({"phone": "0123", "full_name": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_phone_number");
    let (status, body) = call(&r, "GET", &format!("/accounts/{PN}/history-receipts"), None).await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
}

#[test]
fn a_broken_patch_mac_is_reported_by_the_phones_own_decode() {
    let r = router();
    let phone = r.create_account(PN).expect("account");
    phone
        .app_state_mutation(&AppStateAction::Pin {
            chat: "15551280002@s.whatsapp.net".into(),
            pinned: true,
        })
        .expect("pin");
    phone
        .set_sync_switches(SyncSwitches {
            break_next_patch_mac: true,
            ..SyncSwitches::default()
        })
        .expect("switches");
    phone
        .app_state_mutation(&AppStateAction::Archive {
            chat: "15551280002@s.whatsapp.net".into(),
            archived: true,
        })
        .expect("archive");
    let view = phone.app_state();
    assert_eq!(view.versions["regular_low"], 2);
    assert_eq!(view.errors.len(), 1, "{:?}", view.errors);
    assert_eq!(view.errors[0].version, 2);
    assert!(
        view.errors[0].error.to_lowercase().contains("mac"),
        "{:?}",
        view.errors
    );
    // The pin (version 1) still decodes; the archive does not.
    assert!(view.records.iter().any(|rec| rec.index[0] == "pin_v1"));
    assert!(!view.records.iter().any(|rec| rec.index[0] == "archive"));
}

#[test]
fn app_state_and_phone_keys_survive_export_and_import() {
    let r = router();
    let phone = r.create_account(PN).expect("account");
    phone
        .add_contact("15551280003", "Cy Contact")
        .expect("contact");
    let chat = "15551280002@s.whatsapp.net".to_owned();
    phone
        .app_state_mutation(&AppStateAction::Mute {
            chat: chat.clone(),
            muted: true,
            until_ms: Some(1_900_000_000_000),
        })
        .expect("mute");
    let before = phone.app_state();
    let saved = serde_json::to_string(&r.export_state()).expect("json");

    let restored = router();
    restored
        .import_state(&serde_json::from_str(&saved).expect("parse"))
        .expect("import");
    let phone2 = restored.phone(PN).expect("phone");
    assert_eq!(phone2.app_state(), before);
    // The restored phone still has its key: its next patch builds on the restored version
    // and the whole collection still verifies.
    let v = phone2
        .app_state_mutation(&AppStateAction::Mute {
            chat,
            muted: false,
            until_ms: None,
        })
        .expect("unmute");
    assert_eq!(v, 2);
    let after = phone2.app_state();
    assert!(after.errors.is_empty(), "{:?}", after.errors);
    assert_eq!(after.records.len(), 1);
    assert_eq!(after.records[0].action["muted"], false);
}
