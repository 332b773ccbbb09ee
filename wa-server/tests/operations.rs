//! Operations (issue 14, feature 5): `GET /api/health` answers like `/health`; a second
//! instance on the same data directory stops with a clear message (not sled's "could not
//! acquire lock"); the start-up checks (doctor) are logged at start and printed by
//! `--doctor`.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use support::Api;
use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, Command};
use wa_server::{AppState, ServerConfig, StartError, app};

const KEY: &str = "operations-admin-key-0123456789abcdef";

#[tokio::test]
async fn api_health_is_an_alias_of_health() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = AppState::start(ServerConfig::new(dir.path()))
        .await
        .expect("start");
    let base = support::serve_router(app(state.clone())).await;
    let api = Api::new(base.clone(), None);
    let (status, health) = api.get("/health").await;
    let (api_status, api_health) = api.get("/api/health").await;
    assert_eq!(
        (status, &health),
        (200, &serde_json::json!({ "status": "ok" }))
    );
    assert_eq!((api_status, api_health), (status, health));
    let (_, spec) = api.get("/openapi.json").await;
    assert!(
        spec["paths"]["/api/health"]["get"].is_object(),
        "in the spec"
    );

    // A second state on the same directory, in the same process: refused, typed.
    let second = AppState::start(ServerConfig::new(dir.path())).await;
    assert!(
        matches!(second, Err(StartError::DataDirInUse { pid: Some(p), .. }) if p == std::process::id()),
        "{second:?}"
    );
    state.shutdown().await;
}

/// Starts `wa-server --sandbox` on `dir` with `RUST_LOG=info`; the child (stderr piped),
/// and its base URL.
async fn spawn(dir: &Path) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wa-server"));
    command
        .args(["--bind", "127.0.0.1:0", "--sandbox", "--data-dir"])
        .arg(dir)
        .env("WA_API_KEY", KEY)
        .env("RUST_LOG", "info,sled=warn")
        .env_remove("RUST_BACKTRACE")
        .stderr(Stdio::piped());
    support::spawn_listening(command).await
}

/// Reads `child`'s stderr until a line contains each of `wanted` (30 s at most).
async fn stderr_shows(child: &mut Child, wanted: &[&str]) -> String {
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !wanted.iter().all(|w| seen.contains(w)) {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("never logged {wanted:?}:\n{seen}"))
            .expect("read")
            .unwrap_or_else(|| panic!("stderr closed before {wanted:?}:\n{seen}"));
        seen.push_str(&line);
        seen.push('\n');
    }
    seen
}

#[tokio::test]
async fn a_second_instance_on_the_same_data_dir_says_so_and_the_first_keeps_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut first, base) = spawn(dir.path()).await;
    // The start-up checks are logged.
    let logs = stderr_shows(
        &mut first,
        &[
            "announcing WhatsApp Web",
            "mode 0700",
            "writable",
            "reachable in",
        ],
    )
    .await;
    assert!(logs.contains("doctor: "), "{logs}");

    let second = Command::new(env!("CARGO_BIN_EXE_wa-server"))
        .args(["--bind", "127.0.0.1:0", "--sandbox", "--data-dir"])
        .arg(dir.path())
        .env("WA_API_KEY", KEY)
        .env("RUST_LOG", "off")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let second = tokio::time::timeout(Duration::from_secs(60), second)
        .await
        .expect("the second instance exits")
        .expect("run");
    assert!(
        !second.status.success(),
        "the second instance must not start"
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    let pid = first.id().expect("pid");
    assert!(
        stderr.contains(&format!(
            "is already in use by another wa-server (pid {pid})"
        )) && stderr.contains("--data-dir"),
        "{stderr}"
    );
    assert!(!stderr.contains("could not acquire lock"), "{stderr}");
    assert!(second.stdout.is_empty(), "it never listened");

    let api = Api::new(base, Some(KEY));
    let (status, _) = api.get("/health").await;
    assert_eq!(status, 200, "the first instance keeps serving");

    // Once the first is gone, the directory is free again.
    first.start_kill().expect("kill");
    let _ = first.wait().await;
    let (mut third, base) = spawn(dir.path()).await;
    let (status, _) = Api::new(base, Some(KEY)).get("/ready").await;
    assert_eq!(status, 200);
    third.start_kill().expect("kill");
    let _ = third.wait().await;
}

/// `wa-server --doctor` with `args`: exit status and the JSON report.
async fn doctor(dir: &Path, args: &[&str]) -> (bool, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_wa-server"))
        .arg("--doctor")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "off")
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("doctor exits")
        .expect("run");
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    (out.status.success(), report)
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no {name} check in {report}"))
}

#[tokio::test]
async fn doctor_reports_versions_permissions_and_reachability() {
    let root = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
    let listening = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let open = format!(
        "ws://127.0.0.1:{}/ws/chat",
        listening.local_addr().expect("addr").port()
    );
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!(
            "ws://127.0.0.1:{}/ws/chat",
            l.local_addr().expect("addr").port()
        )
    };
    let dir = tempfile::tempdir().expect("tempdir");

    let (ok, report) = doctor(dir.path(), &["--wa-url", &open, "--wa-trust-root", &root]).await;
    assert!(ok, "{report}");
    assert!(
        check(&report, "version")["detail"]
            .as_str()
            .is_some_and(|d| d.contains(env!("CARGO_PKG_VERSION")) && d.contains("WhatsApp Web 2.")),
        "{report}"
    );
    assert_eq!(check(&report, "upstream")["ok"], true, "{report}");

    let (ok, report) = doctor(dir.path(), &["--wa-url", &closed, "--wa-trust-root", &root]).await;
    assert!(!ok, "{report}");
    let upstream = check(&report, "upstream");
    assert_eq!(upstream["ok"], false, "{report}");
    assert!(
        upstream["detail"]
            .as_str()
            .is_some_and(|d| d.contains("cannot reach the WhatsApp endpoint 127.0.0.1")),
        "{report}"
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let (ok, report) = doctor(dir.path(), &["--wa-url", &open, "--wa-trust-root", &root]).await;
        assert!(!ok, "{report}");
        let data = check(&report, "data_dir");
        assert!(
            data["detail"]
                .as_str()
                .is_some_and(|d| d.contains("0755") && d.contains("other users")),
            "{report}"
        );
    }
    drop(listening);
}
