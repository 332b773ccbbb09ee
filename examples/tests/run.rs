//! Runs each example in sandbox mode, as a user would (the cargo-built binary), twice with
//! the same `--data-dir`: the first run pairs and reaches `Connected`, the second connects
//! without any QR or code.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// Runs an example binary to completion and returns its stdout; panics with its output
/// when it fails or takes longer than 60 s.
async fn run(bin: &str, data_dir: &Path) -> String {
    let child = Command::new(bin)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {bin}: {e}"));
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{bin} did not finish within 60 s"))
        .expect("waiting for the example");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{bin} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The JID on the `connected as <jid>` line.
fn connected_jid(stdout: &str) -> &str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("connected as "))
        .unwrap_or_else(|| panic!("no `connected as` line:\n{stdout}"))
}

#[tokio::test]
async fn pair_qr_pairs_in_the_sandbox_then_reconnects_without_qr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = env!("CARGO_BIN_EXE_pair_qr");

    let first = run(bin, dir.path()).await;
    assert!(
        first.contains("QR code (valid 60 s): https://wa.me/settings/linked_devices#"),
        "{first}"
    );
    assert!(first.contains('█'), "the QR is drawn:\n{first}");
    assert!(
        first.contains("sandbox phone: scanned the QR code"),
        "{first}"
    );
    assert!(first.contains("restart required (515)"), "{first}");
    let jid = connected_jid(&first).to_owned();
    assert!(jid.ends_with("@s.whatsapp.net"), "{jid}");

    let second = run(bin, dir.path()).await;
    assert!(
        !second.contains("QR code"),
        "a QR on the second run:\n{second}"
    );
    assert_eq!(connected_jid(&second), jid);
}

#[tokio::test]
async fn pair_code_pairs_in_the_sandbox_then_reconnects_without_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = env!("CARGO_BIN_EXE_pair_code");

    let first = run(bin, dir.path()).await;
    let code = first
        .lines()
        .find_map(|l| l.strip_prefix("pairing code: "))
        .unwrap_or_else(|| panic!("no pairing code:\n{first}"));
    assert_eq!(code.len(), 9, "XXXX-XXXX: {code}");
    assert!(
        first.contains("sandbox phone: entered the pairing code"),
        "{first}"
    );
    let jid = connected_jid(&first).to_owned();

    let second = run(bin, dir.path()).await;
    assert!(
        !second.contains("pairing code"),
        "a code on the second run:\n{second}"
    );
    assert_eq!(connected_jid(&second), jid);
}
