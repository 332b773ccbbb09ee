//! The server binary as a child process against a sandbox owned by the test: SIGKILL it with
//! webhooks pending and a session connected, start it again on the same data directory, and
//! the session logs in without a scan while the pending webhooks are delivered with the
//! same event ids and bodies. Then SIGTERM shuts it down cleanly. In `--sandbox` mode the
//! embedded sandbox's accounts survive a SIGKILL too: sessions come back connected without a
//! scan and go on messaging each other.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use support::{Api, Receiver, eventually};
use tokio::process::{Child, Command};
use wa_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

const KEY: &str = "restart-admin-key-0123456789";

/// Starts `wa-server` on 127.0.0.1:0 against `sb`; returns the child and its base URL.
async fn spawn_server(sb: &SandboxHandle, dir: &Path) -> (Child, String) {
    let root = base64::engine::general_purpose::STANDARD.encode(sb.trust_root_key());
    spawn_with(dir, &["--wa-url", sb.ws_url(), "--wa-trust-root", &root]).await
}

/// Starts `wa-server` on 127.0.0.1:0 with `args`; returns the child and its base URL.
async fn spawn_with(dir: &Path, args: &[&str]) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wa-server"));
    command
        .args(["--bind", "127.0.0.1:0", "--webhook-backoff-ms", "100"])
        // The test receivers listen on 127.0.0.1 (a non-public target).
        .arg("--allow-private-targets")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("WA_API_KEY", KEY)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit());
    support::spawn_listening(command).await
}

#[tokio::test]
async fn sigkill_with_pending_webhooks_then_restart_reconnects_and_delivers() {
    let sb = Sandbox::start(
        SandboxConfig::default()
            .with_seed(11)
            .with_first_stanza_delay(Duration::from_millis(5)),
    )
    .await
    .expect("sandbox");
    let phone = sb.create_account("15557654321").expect("account");
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start(true).await;

    let (mut child, base) = spawn_server(&sb, dir.path()).await;
    let api = Api::new(base, Some(KEY));
    let (status, created) = api
        .post(
            "/api/sessions",
            &json!({ "id": "persist", "webhooks": [{ "url": receiver.url(), "events": ["connection", "qr"] }] }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["webhooks"][0]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    api.wait_status("persist", "qr").await;
    let (_, qr) = api.get("/api/sessions/persist/qr").await;
    phone.scan(qr["qr"].as_str().expect("qr")).expect("scan");
    let info = api.wait_status("persist", "connected").await;
    let jid = info["jid"].clone();

    // The receiver refuses everything: the connected event is tried and stays pending.
    eventually("a failed attempt of the connected event", || {
        receiver
            .received()
            .into_iter()
            .find(|r| r.envelope["data"]["status"] == "connected")
    })
    .await;
    let (_, stats) = api.get("/api/sessions/persist/webhooks/stats").await;
    assert!(
        stats[0]["pending"].as_u64().is_some_and(|n| n >= 2),
        "{stats}"
    );
    assert_eq!(stats[0]["delivered"], 0);
    assert!(
        stats[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("503")),
        "{stats}"
    );
    let before = receiver.received();
    assert!(before.iter().all(|r| !r.accepted));

    child.start_kill().expect("SIGKILL");
    let _ = child.wait().await;
    let killed_at = wa_now_ms();
    receiver.set_failing(false);

    let (mut child, base) = spawn_server(&sb, dir.path()).await;
    let api = Api::new(base, Some(KEY));
    let info = api.wait_status("persist", "connected").await;
    assert_eq!(info["jid"], jid, "same device, no new pairing");
    assert_eq!(phone.devices().len(), 1);

    // Every event that was pending is delivered, with its original id and body.
    let pending_ids: HashSet<String> = before.iter().map(|r| r.event_id.clone()).collect();
    eventually("every pending event delivered", || {
        let delivered: HashSet<String> = receiver
            .received()
            .into_iter()
            .filter(|r| r.accepted)
            .map(|r| r.event_id)
            .collect();
        pending_ids.is_subset(&delivered).then_some(())
    })
    .await;
    let after = receiver.received();
    for r in after.iter().filter(|r| r.accepted) {
        assert!(r.signature_valid(&secret), "signature of {}", r.event_id);
        if let Some(first) = before.iter().find(|b| b.event_id == r.event_id) {
            assert_eq!(
                first.body, r.body,
                "event {} changed between tries",
                r.event_id
            );
        }
    }
    // No QR after the restart: the session logged in with its stored credentials.
    let new_qr = after.iter().any(|r| {
        r.envelope["type"] == "qr" && r.envelope["timestamp"].as_u64().unwrap_or(0) >= killed_at
    });
    assert!(!new_qr, "the restarted session asked for a QR");
    eventually("the post-restart connected event", || {
        after
            .iter()
            .chain(receiver.received().iter())
            .find(|r| {
                r.accepted
                    && r.envelope["data"]["status"] == "connected"
                    && r.envelope["timestamp"].as_u64().unwrap_or(0) >= killed_at
            })
            .cloned()
    })
    .await;

    // SIGTERM: graceful shutdown exits 0.
    let pid = child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits after SIGTERM")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
    sb.shutdown().await;
}

#[tokio::test]
async fn sandbox_mode_survives_a_sigkill_and_sessions_keep_messaging() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start(false).await;
    let (mut child, base) = spawn_with(dir.path(), &["--sandbox"]).await;
    let api = Api::new(base, Some(KEY));
    for (id, hooks) in [
        ("alice", json!([])),
        (
            "bob",
            json!([{ "url": receiver.url(), "events": ["message", "qr"] }]),
        ),
    ] {
        let (status, created) = api
            .post("/api/sessions", &json!({ "id": id, "webhooks": hooks }))
            .await;
        assert_eq!(status, 201, "{created}");
        api.wait_status(id, "qr").await;
        let (status, scan) = api
            .post(&format!("/api/sessions/{id}/sandbox/scan"), &json!({}))
            .await;
        assert_eq!(status, 200, "{scan}");
    }
    let alice = api.wait_status("alice", "connected").await;
    let bob = api.wait_status("bob", "connected").await;
    let bob_user = bob["jid"]
        .as_str()
        .and_then(|j| j.split(':').next())
        .expect("bob's number")
        .to_owned();
    let send = |api: Api, text: &'static str| {
        let to = bob_user.clone();
        async move {
            let (status, sent) = api
                .post(
                    "/api/sessions/alice/messages/text",
                    &json!({ "to": to, "text": text }),
                )
                .await;
            assert_eq!(status, 201, "{sent}");
        }
    };
    send(api.clone(), "before the crash").await;
    eventually("bob receives the first message", || {
        receiver
            .received()
            .into_iter()
            .find(|r| r.envelope["data"]["text"] == "before the crash")
    })
    .await;

    child.start_kill().expect("SIGKILL");
    let _ = child.wait().await;
    let killed_at = wa_now_ms();

    let (mut child, base) = spawn_with(dir.path(), &["--sandbox"]).await;
    let api = Api::new(base, Some(KEY));
    let alice_again = api.wait_status("alice", "connected").await;
    let bob_again = api.wait_status("bob", "connected").await;
    assert_eq!(
        alice_again["jid"], alice["jid"],
        "same device, no new pairing"
    );
    assert_eq!(bob_again["jid"], bob["jid"]);
    send(api.clone(), "after the crash").await;
    eventually("bob receives the second message", || {
        receiver
            .received()
            .into_iter()
            .find(|r| r.envelope["data"]["text"] == "after the crash")
    })
    .await;
    let new_qr = receiver.received().iter().any(|r| {
        r.envelope["type"] == "qr" && r.envelope["timestamp"].as_u64().unwrap_or(0) >= killed_at
    });
    assert!(!new_qr, "a restarted sandbox session asked for a QR");
    assert!(dir.path().join("sandbox").join("state.json").exists());

    let pid = child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits after SIGTERM")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
}

fn wa_now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms")
}
