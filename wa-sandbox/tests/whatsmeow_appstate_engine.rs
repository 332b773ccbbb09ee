//! Our engine's app-state code judged by whatsmeow (Go, `go.mau.fi/whatsmeow`, pinned in
//! `interop/whatsmeow/go.mod`; nobody here wrote it), issue 11 acceptance "whatsmeow's
//! patches decode; ours decode in whatsmeow":
//!
//! Our engine and whatsmeow are two companions of the same account, on a sandbox with phone
//! sync (the phone shares the app-state key with both). The engine mutes, archives, pins and
//! marks a chat read (`Client::mute_chat` and siblings); each patch reaches whatsmeow through
//! the server's `server_sync` notification, and whatsmeow fetches it, verifies its MACs and
//! LTHash (`appstate/decode.go`) and reports the action it decoded. Then whatsmeow mutes and
//! archives another chat with its own patches (`appstate.BuildMute`, `BuildArchive`), and our
//! engine, notified the same way, decodes them into `Event::AppState` with the right action
//! and chat.
//!
//! Needs Go >= 1.24 on PATH; the harness is built on first use (tests/support/whatsmeow.rs).

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::appsync::synced_engine;
use support::whatsmeow::Whatsmeow;
use wa_engine::Jid;
use wa_engine::appstate::{Collection, Operation, SyncAction};
use wa_sandbox::{Sandbox, SandboxConfig};

const ME: &str = "15551271001";
const FRIEND: &str = "15551271002";
const OTHER: &str = "15551279998";
const STEP: Duration = Duration::from_secs(30);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

fn index_is(e: &Value, index: &[&str]) -> bool {
    e["event"] == "app_state"
        && e["index"].as_array().is_some_and(|a| {
            a.iter()
                .map(Value::as_str)
                .eq(index.iter().map(|s| Some(*s)))
        })
}

#[tokio::test]
async fn engine_patches_decode_in_whatsmeow_and_whatsmeow_patches_decode_in_the_engine()
-> anyhow::Result<()> {
    init_tracing();
    support::whatsmeow::ensure_built();
    let sandbox =
        Sandbox::start(SandboxConfig::default().with_seed(71).with_phone_sync(true)).await?;
    let phone = sandbox.create_account(ME)?;
    sandbox.create_account(FRIEND)?;
    phone.set_push_name("Ann Phone");
    phone.add_contact(FRIEND, "Friend Person")?;
    phone.add_contact(OTHER, "Other Person")?;

    // Companion 1: our engine; companion 2: whatsmeow, same account.
    let (client, log, engine_jid, _store) = synced_engine(&sandbox, ME, STEP).await?;
    let data = tempfile::tempdir()?;
    let mut wm = Whatsmeow::spawn(&sandbox, data.path(), "whatsmeow")?;
    let wm_jid = wm.pair(&phone).await?;
    assert_ne!(wm_jid, engine_jid.to_string());
    for name in [
        "critical_block",
        "critical_unblock_low",
        "regular_high",
        "regular_low",
        "regular",
    ] {
        wm.until(|e| e["event"] == "app_state_sync_complete" && e["name"] == name)
            .await?;
    }

    // Ours → whatsmeow.
    let friend: Jid = format!("{FRIEND}@s.whatsapp.net").parse()?;
    let friend_s = friend.to_string();
    client.mute_chat(&friend, Some(Duration::MAX)).await?;
    let mute = wm.until(|e| index_is(e, &["mute", &friend_s])).await?;
    eprintln!("whatsmeow decoded our mute: {mute}");
    assert_eq!(mute["muted"], true, "{mute}");
    assert_eq!(mute["muteEnd"], -1, "{mute}");

    client.pin_chat(&friend, true).await?;
    let pin = wm.until(|e| index_is(e, &["pin_v1", &friend_s])).await?;
    eprintln!("whatsmeow decoded our pin: {pin}");
    assert_eq!(pin["pinned"], true, "{pin}");

    client.archive_chat(&friend, true).await?;
    let archive = wm.until(|e| index_is(e, &["archive", &friend_s])).await?;
    eprintln!("whatsmeow decoded our archive: {archive}");
    assert_eq!(archive["archived"], true, "{archive}");

    client.mark_chat_read(&friend, false).await?;
    let unread = wm
        .until(|e| index_is(e, &["markChatAsRead", &friend_s]))
        .await?;
    eprintln!("whatsmeow decoded our mark-unread: {unread}");
    assert_eq!(unread["read"], false, "{unread}");
    client.mark_chat_read(&friend, true).await?;
    let read = wm
        .until(|e| index_is(e, &["markChatAsRead", &friend_s]))
        .await?;
    assert_eq!(read["read"], true, "{read}");

    // whatsmeow → ours.
    let other: Jid = format!("{OTHER}@s.whatsapp.net").parse()?;
    let mark = log.len();
    wm.command(
        json!({"cmd": "app_state_send", "patch": "mute", "to": other.to_string(), "ref": 1}),
    )
    .await?;
    let sent = wm
        .until(|e| e["event"] == "app_state_sent" || e["event"] == "error")
        .await?;
    assert_eq!(sent["event"], "app_state_sent", "{sent}");
    let got = log
        .app_state_change(
            mark,
            STEP,
            |a| matches!(a, SyncAction::Mute { chat, .. } if *chat == other),
        )
        .await?;
    eprintln!("the engine decoded whatsmeow's mute: {got:?}");
    assert_eq!(got.collection, Collection::RegularHigh);
    assert_eq!(got.operation, Operation::Set);
    assert!(
        matches!(
            got.action,
            SyncAction::Mute {
                muted: true,
                until_ms: Some(-1),
                ..
            }
        ),
        "{got:?}"
    );

    let mark = log.len();
    wm.command(
        json!({"cmd": "app_state_send", "patch": "archive", "to": other.to_string(), "ref": 2}),
    )
    .await?;
    let sent = wm
        .until(|e| e["event"] == "app_state_sent" || e["event"] == "error")
        .await?;
    assert_eq!(sent["event"], "app_state_sent", "{sent}");
    let got = log
        .app_state_change(
            mark,
            STEP,
            |a| matches!(a, SyncAction::Archive { chat, .. } if *chat == other),
        )
        .await?;
    eprintln!("the engine decoded whatsmeow's archive: {got:?}");
    assert_eq!(got.collection, Collection::RegularLow);
    assert!(
        matches!(got.action, SyncAction::Archive { archived: true, .. }),
        "{got:?}"
    );

    // The phone agrees with both companions: every patch decoded, none refused.
    let view = phone.app_state();
    assert!(view.errors.is_empty(), "{:?}", view.errors);

    wm.command(json!({"cmd": "quit"})).await?;
    tokio::time::timeout(STEP, wm.child.wait()).await??;
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}
