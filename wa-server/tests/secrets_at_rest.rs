//! Secrets at rest: the server binary started with umask 000 on a data directory an older
//! version left world-readable, then sessions (with their tokens) and webhooks (with their
//! secrets) exercised end to end; afterwards every directory in the data directory is 0700
//! and every file 0600, and neither the API key nor a session token appears in any file.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use support::{Api, Receiver, eventually};
use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, Command};

const KEY: &str = "secrets-at-rest-admin-key-0123456789";

/// Starts `wa-server --sandbox` under `umask 000` on `dir`; the child and its base URL.
async fn spawn_with_open_umask(dir: &Path) -> (Child, String) {
    let mut command = Command::new("sh");
    command
        .args(["-c", "umask 000 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_wa-server"))
        .args([
            "--bind",
            "127.0.0.1:0",
            "--sandbox",
            "--webhook-backoff-ms",
            "100",
            // The test receiver listens on 127.0.0.1 (a non-public target).
            "--allow-private-targets",
        ])
        .arg("--data-dir")
        .arg(dir)
        .env("WA_API_KEY", KEY)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit());
    support::spawn_listening(command).await
}

/// Every path under `dir` (and `dir`), without following links.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_owned());
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        let meta = std::fs::symlink_metadata(&path).expect("stat");
        if meta.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[tokio::test]
async fn every_file_is_private_under_umask_000_and_tokens_are_not_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // What an older version under a loose umask left behind: must be migrated at start.
    let legacy_dir = data.join("server-old");
    std::fs::create_dir_all(&legacy_dir).expect("mkdir");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    std::fs::set_permissions(&legacy_dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let legacy_file = legacy_dir.join("db");
    std::fs::write(&legacy_file, b"old").expect("write");
    std::fs::set_permissions(&legacy_file, std::fs::Permissions::from_mode(0o666)).expect("chmod");

    let receiver = Receiver::start(false).await;
    let (mut child, base) = spawn_with_open_umask(&data).await;
    let api = Api::new(base, Some(KEY));
    let (status, created) = api
        .post(
            "/api/sessions",
            &json!({ "id": "private", "webhooks": [{ "url": receiver.url(), "events": ["connection"] }] }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().expect("session token").to_owned();
    let secret = created["webhooks"][0]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    api.wait_status("private", "qr").await;
    let (status, scan) = api
        .post("/api/sessions/private/sandbox/scan", &json!({}))
        .await;
    assert_eq!(status, 200, "{scan}");
    api.wait_status("private", "connected").await;
    let delivered = eventually("the connected event is delivered", || {
        receiver
            .received()
            .into_iter()
            .find(|r| r.envelope["data"]["status"] == "connected")
    })
    .await;
    assert!(delivered.signature_valid(&secret));
    // A second webhook added later (its secret written to the server database).
    let (status, hook) = api
        .post(
            "/api/sessions/private/webhooks",
            &json!({ "url": receiver.url(), "events": ["message"] }),
        )
        .await;
    assert_eq!(status, 201, "{hook}");

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

    let mut paths = Vec::new();
    walk(&data, &mut paths);
    assert!(paths.len() > 5, "{paths:?}");
    let mut loose = Vec::new();
    for path in &paths {
        let meta = std::fs::symlink_metadata(path).expect("stat");
        let mode = meta.permissions().mode() & 0o777;
        let want = if meta.is_dir() { 0o700 } else { 0o600 };
        if (meta.is_dir() || meta.is_file()) && mode != want {
            loose.push(format!("{} {mode:03o}", path.display()));
        }
        if meta.is_file() {
            let bytes = std::fs::read(path).expect("read");
            for (what, needle) in [("API key", KEY), ("session token", token.as_str())] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{what} stored in clear in {}",
                    path.display()
                );
            }
        }
    }
    assert!(loose.is_empty(), "not private: {loose:#?}");
}

/// Runs `wa-server --bind <bind>` with `key` until it prints its address or exits; whether
/// it started and what it wrote to stderr.
async fn start_with_key(bind: &str, key: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wa-server"))
        .args(["--bind", bind, "--sandbox", "--data-dir"])
        .arg(dir.path())
        .env("WA_API_KEY", key)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn wa-server");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let started = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("wa-server starts or exits")
        .expect("read")
        .is_some();
    child.start_kill().expect("kill");
    let out = child.wait_with_output().await.expect("wait");
    (started, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn weak_api_keys_are_refused_on_a_public_bind_and_warned_on_loopback() {
    // Refused before binding: no socket is opened on the public address.
    let (started, stderr) = start_with_key("0.0.0.0:0", "k").await;
    assert!(!started, "{stderr}");
    assert!(stderr.contains("weak API key"), "{stderr}");
    assert!(stderr.contains("at least 24"), "{stderr}");
    let (started, stderr) = start_with_key("127.0.0.1:0", "k").await;
    assert!(started, "{stderr}");
    assert!(stderr.contains("weak API key"), "{stderr}");
    let (started, stderr) = start_with_key("127.0.0.1:0", KEY).await;
    assert!(started, "{stderr}");
    assert!(!stderr.contains("weak API key"), "{stderr}");
}
