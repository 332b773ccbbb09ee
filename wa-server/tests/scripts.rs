//! Runs the script-based checks that need software from Debian and PyPI: the pairing page
//! in headless chromium (`pairing_page.sh`), and schemathesis fuzz runs (`schemathesis.sh`)
//! against `/openapi.json` and against each dialect's document (`DIALECT=evolution`:
//! `/evolution/openapi.json` of a server started with `--evolution`; `DIALECT=waha`:
//! `/waha/openapi.json` with `--waha`). The scripts install what they need themselves
//! (`ci_tools.sh`: `apt-get install chromium` as root or via `sudo -n`, pinned Python
//! packages from `requirements.txt` in a venv under `target/ci-tools`), so these tests run
//! in `cargo test --workspace` on a fresh Debian machine; they never skip: a failed install
//! fails the test with the reason.
//!
//! Each script's output goes to `target/artifacts/<script>.log`; the screenshots to
//! `target/artifacts/pairing-page-*.png` (QR, connected, each language, error pages,
//! upstream down, the pairing-code flow, branding, the QR refresh cap), the axe-core reports
//! `target/artifacts/axe-*.json`,
//! the schemathesis JUnit reports to `target/artifacts/schemathesis/` (native) and
//! `target/artifacts/schemathesis-<dialect>/`; a dialect run's log is
//! `target/artifacts/schemathesis.sh-<dialect>.log`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Upper bound for one script, seconds, installs included (cold: about 1 to 2 minutes).
const SCRIPT_TIMEOUT_SECS: u32 = 1200;

fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/artifacts")
}

fn run(script: &str) {
    run_with(script, script, &[]);
}

/// Runs `script` with `env` added, its output in `target/artifacts/<log>.log`.
fn run_with(script: &str, log: &str, env: &[(&str, &str)]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let artifacts = artifacts();
    std::fs::create_dir_all(&artifacts)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", artifacts.display()));
    let log_path = artifacts.join(format!("{log}.log"));
    let log = std::fs::File::create(&log_path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
    let log_err = log
        .try_clone()
        .unwrap_or_else(|e| panic!("cannot clone the log handle: {e}"));
    // coreutils `timeout` puts the script in its own process group and signals the whole
    // group, so a hung browser or server never outlives the test.
    let status = Command::new("timeout")
        .arg("--kill-after=20")
        .arg(SCRIPT_TIMEOUT_SECS.to_string())
        .arg("bash")
        .arg(root.join("tests").join(script))
        .env("WA_SERVER_BIN", env!("CARGO_BIN_EXE_wa-server"))
        .env("ARTIFACTS", &artifacts)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {script} under `timeout`: {e}"));
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    let tail: Vec<&str> = output.lines().rev().take(60).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    let reason = if status.code() == Some(124) {
        format!("timed out after {SCRIPT_TIMEOUT_SECS} s")
    } else {
        status.to_string()
    };
    assert!(
        status.success(),
        "{script} failed ({reason}); full log {}; last lines:\n{}",
        log_path.display(),
        tail.join("\n")
    );
    println!("{output}");
}

#[test]
fn pairing_page_shows_the_qr_then_connected_in_headless_chromium() {
    run("pairing_page.sh");
    for shot in [
        "pairing-page-qr.png",
        "pairing-page-connected.png",
        "pairing-page-invalid-link.png",
        "pairing-page-upstream-down.png",
        "pairing-page-lang-en.png",
        "pairing-page-lang-id.png",
        "pairing-page-lang-pt-BR.png",
        "pairing-page-lang-es.png",
        "pairing-page-error-no-token.png",
        "pairing-page-error-invalid-link-id.png",
        "pairing-page-error-not-found-es.png",
        "pairing-page-code-form.png",
        "pairing-page-code-shown.png",
        "pairing-page-code-connected.png",
        "pairing-page-branded.png",
        "pairing-page-qr-limit.png",
    ] {
        let path = artifacts().join(shot);
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("screenshot {} missing: {e}", path.display()));
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is not a PNG",
            path.display()
        );
    }
}

#[test]
fn schemathesis_finds_no_server_errors() {
    run("schemathesis.sh");
}

/// The Evolution dialect's document (`DIALECT=evolution`): no 5xx besides the documented
/// 501 of the routes it does not implement, every status and content type documented.
#[test]
fn schemathesis_finds_no_server_errors_in_the_evolution_dialect() {
    run_with(
        "schemathesis.sh",
        "schemathesis.sh-evolution",
        &[("DIALECT", "evolution")],
    );
}

/// The WAHA dialect's document (`DIALECT=waha`): no 5xx besides the documented 501s, every
/// status and content type documented, the documented 401 without the key.
#[test]
fn schemathesis_finds_no_server_errors_in_the_waha_dialect() {
    run_with(
        "schemathesis.sh",
        "schemathesis.sh-waha",
        &[("DIALECT", "waha")],
    );
}
