//! Runs the script-based checks that need software from Debian and PyPI (installed by the
//! scripts themselves): the pairing page in headless chromium, and a schemathesis fuzz run
//! against `/openapi.json`. `#[ignore]`d because they install packages; run them with
//! `cargo test -p wa-server --test scripts -- --ignored` (CI: see the README of wa-server
//! or `.ci/run`).

use std::path::Path;
use std::process::Command;

fn run(script: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let artifacts = root.join("../target/wa-server-artifacts");
    let status = Command::new("bash")
        .arg(root.join("tests").join(script))
        .env("WA_SERVER_BIN", env!("CARGO_BIN_EXE_wa-server"))
        .env("ARTIFACTS", &artifacts)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    assert!(status.success(), "{script} failed: {status}");
}

#[test]
#[ignore = "installs chromium (apt) and playwright (pip)"]
fn pairing_page_shows_the_qr_then_connected_in_headless_chromium() {
    run("pairing_page.sh");
}

#[test]
#[ignore = "installs schemathesis (pip)"]
fn schemathesis_finds_no_server_errors() {
    run("schemathesis.sh");
}
