//! Our engine's app-state code judged by Baileys 7.0.0-rc14 (npm `baileys@7.0.0-rc14`, pinned
//! in the sibling package `interop/baileys7/` beside the 6.7.24 of the other Baileys tests;
//! harness `interop/baileys7/client7.mjs`), issue 11 acceptance "Baileys' patches decode; ours decode in
//! Baileys":
//!
//! Our engine and Baileys 7 are two companions of one account on a sandbox with phone sync.
//! Baileys performs `chatModify` (archive, mute, mark read) on a chat; its patches are built
//! and encrypted by Baileys (`Utils/chat-utils.js` `encodeSyncdPatch`) and our engine,
//! notified by the server's `server_sync`, decodes them into `Event::AppState` with the right
//! action and chat. The other way, the engine's mute, archive and mark-unread reach Baileys,
//! which verifies them (`decodeSyncdPatch`, LTHash) and reports the chat updates it derived.
//!
//! Needs Node >= 20 and npm (`npm ci` in `interop/baileys7/` on first use).

mod support;

use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::{Value, json};
use support::appsync::synced_engine;
use support::interop::ensure_baileys7_installed;
use support::peer::JsonLinesPeer;
use tokio::process::Command;
use wa_engine::Jid;
use wa_engine::appstate::{Collection, SyncAction};
use wa_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

const ME: &str = "15551272001";
const FRIEND: &str = "15551272002";
const OTHER: &str = "15551279997";
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

fn spawn_baileys7(
    sandbox: &SandboxHandle,
    auth_dir: &std::path::Path,
) -> anyhow::Result<JsonLinesPeer> {
    let dir = ensure_baileys7_installed();
    let root = base64::engine::general_purpose::STANDARD.encode(sandbox.trust_root_key());
    let mut command = Command::new("node");
    command
        .current_dir(&dir)
        .arg("client7.mjs")
        .arg("--ws-url")
        .arg(sandbox.ws_url())
        .arg("--auth-dir")
        .arg(auth_dir)
        .arg("--cert-root")
        .arg(root)
        .arg("--log-level")
        .arg(std::env::var("BAILEYS_LOG_LEVEL").unwrap_or_else(|_| "warn".into()));
    JsonLinesPeer::spawn("baileys7", command, "node (is Node >= 20 installed?)")
}

/// Whether `e` is a `chats_update` with an update for `id` whose `field` is `value`.
fn chat_update(e: &Value, id: &str, field: &str, value: &Value) -> bool {
    e["event"] == "chats_update"
        && e["updates"]
            .as_array()
            .is_some_and(|u| u.iter().any(|u| u["id"] == id && &u[field] == value))
}

#[tokio::test]
async fn baileys7_chat_modify_decodes_in_the_engine_and_engine_patches_decode_in_baileys7()
-> anyhow::Result<()> {
    init_tracing();
    ensure_baileys7_installed();
    let sandbox =
        Sandbox::start(SandboxConfig::default().with_seed(72).with_phone_sync(true)).await?;
    let phone = sandbox.create_account(ME)?;
    sandbox.create_account(FRIEND)?;
    phone.set_push_name("Ann Phone");
    phone.add_contact(FRIEND, "Friend Person")?;
    phone.add_contact(OTHER, "Other Person")?;

    let (client, log, _engine_jid, _store) = synced_engine(&sandbox, ME, STEP).await?;

    let auth = tempfile::tempdir()?;
    let mut b7 = spawn_baileys7(&sandbox, auth.path())?;
    let qr = b7.until(|e| e["event"] == "qr").await?;
    phone.scan(qr["qr"].as_str().context("qr")?)?;
    let open = b7
        .until(|e| e["event"] == "connection" && e["connection"] == "open")
        .await?;
    let b7_jid = open["me"]["id"].as_str().context("me.id")?.to_owned();
    assert!(b7_jid.starts_with(&format!("{ME}:")), "{open}");

    // The phone's key share (a Signal peer message), then a full app-state sync.
    let key = b7.until(|e| e["event"] == "app_state_key").await?;
    eprintln!("Baileys 7 got the app-state key: {key}");
    let deadline = tokio::time::Instant::now() + STEP;
    let mut attempt = 0;
    loop {
        attempt += 1;
        b7.command(json!({"cmd": "resync_app_state", "ref": attempt}))
            .await?;
        let r = b7
            .until(|e| {
                (e["event"] == "app_state_synced" || e["event"] == "error") && e["ref"] == attempt
            })
            .await?;
        if r["event"] == "app_state_synced" {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "Baileys 7 never synced app state: {r}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Baileys 7 → ours.
    let other: Jid = format!("{OTHER}@s.whatsapp.net").parse()?;
    let other_s = other.to_string();
    for (i, (m, collection)) in [
        ("archive", Collection::RegularLow),
        ("mute", Collection::RegularHigh),
        ("unread", Collection::RegularLow),
        ("read", Collection::RegularLow),
    ]
    .into_iter()
    .enumerate()
    {
        let mark = log.len();
        let r = 100 + i;
        b7.command(json!({"cmd": "chat_modify", "mod": m, "jid": other_s, "ref": r}))
            .await?;
        let done = b7
            .until(|e| (e["event"] == "chat_modified" || e["event"] == "error") && e["ref"] == r)
            .await?;
        assert_eq!(done["event"], "chat_modified", "{done}");
        let got = log
            .app_state_change(mark, STEP, |a| match a {
                SyncAction::Archive { chat, archived } => {
                    m == "archive" && *chat == other && *archived
                }
                SyncAction::Mute { chat, muted, .. } => m == "mute" && *chat == other && *muted,
                SyncAction::MarkChatAsRead { chat, read } => {
                    *chat == other && ((m == "read" && *read) || (m == "unread" && !*read))
                }
                _ => false,
            })
            .await
            .with_context(|| {
                format!(
                    "the engine did not decode Baileys 7's {m}; its app-state events since: {:?}",
                    log.app_state_from(mark)
                )
            })?;
        eprintln!("the engine decoded Baileys 7's {m}: {got:?}");
        assert_eq!(got.collection, collection);
        if m == "mute" {
            let SyncAction::Mute { until_ms, .. } = got.action else {
                unreachable!("matched above")
            };
            assert_eq!(until_ms, done["muteEnd"].as_i64(), "{done}");
        }
    }

    // Ours → Baileys 7.
    let friend: Jid = format!("{FRIEND}@s.whatsapp.net").parse()?;
    let friend_s = friend.to_string();
    client.mute_chat(&friend, Some(Duration::MAX)).await?;
    let e = b7
        .until(|e| chat_update(e, &friend_s, "muteEndTime", &json!(-1)))
        .await?;
    eprintln!("Baileys 7 decoded our mute: {e}");
    client.archive_chat(&friend, true).await?;
    let e = b7
        .until(|e| chat_update(e, &friend_s, "archived", &json!(true)))
        .await?;
    eprintln!("Baileys 7 decoded our archive: {e}");
    client.mark_chat_read(&friend, false).await?;
    let e = b7
        .until(|e| chat_update(e, &friend_s, "unreadCount", &json!(-1)))
        .await?;
    eprintln!("Baileys 7 decoded our mark-unread: {e}");

    let view = phone.app_state();
    assert!(view.errors.is_empty(), "{:?}", view.errors);

    b7.command(json!({"cmd": "quit"})).await?;
    tokio::time::timeout(STEP, b7.child.wait()).await??;
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}
