//! Installing the Baileys interop harness (`npm ci` in `wa-sandbox/interop`) once for all the
//! Baileys tests, and failing loudly when Node or npm are missing: these tests never skip.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

/// `wa-sandbox/interop`.
pub(crate) fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop")
}

/// Runs `cmd --version` and returns its output; panics with a clear message when the tool is
/// missing (these tests never skip).
pub(crate) fn tool_version(cmd: &str) -> String {
    let out = std::process::Command::new(cmd)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "`{cmd}` is not runnable ({e}): the Baileys interop tests need Node >= 20 and npm \
                 on PATH (install nodejs and npm; CI runs these tests)"
            )
        });
    assert!(
        out.status.success(),
        "`{cmd} --version` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Whether `node_modules` is missing or older than the manifest or the lockfile. npm writes
/// `node_modules/.package-lock.json` at the end of every install.
fn needs_npm_ci(dir: &Path) -> bool {
    let Some(installed) = modified(&dir.join("node_modules/.package-lock.json")) else {
        return true;
    };
    ["package-lock.json", "package.json"]
        .iter()
        .any(|f| modified(&dir.join(f)).is_none_or(|m| m > installed))
}

/// Makes sure Node >= 20 and npm are there and `npm ci` has run in `wa-sandbox/interop`.
/// Once per process (`OnceLock`), and under an exclusive file lock so parallel test processes
/// never install at the same time. Panics with a clear message on any failure.
pub(crate) fn ensure_interop_installed() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = DONE.get_or_init(|| {
        let node = tool_version("node");
        let major: u32 = node
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        if major < 20 {
            return Err(format!("Node >= 20 is required, found {node}"));
        }
        tool_version("npm");
        let dir = interop_dir();
        let lock_path = dir.join(".npm-ci.lock");
        let lock = std::fs::File::create(&lock_path)
            .map_err(|e| format!("creating {}: {e}", lock_path.display()))?;
        lock.lock()
            .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
        // Checked under the lock: another process may have just installed.
        if needs_npm_ci(&dir) {
            eprintln!("running `npm ci` in {}", dir.display());
            let out = std::process::Command::new("npm")
                .arg("ci")
                .arg("--no-audit")
                .arg("--no-fund")
                .current_dir(&dir)
                .output()
                .map_err(|e| format!("spawning npm ci: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "`npm ci` in {} failed ({}):\n{}\n{}",
                    dir.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        if !dir.join("node_modules/@whiskeysockets/baileys").is_dir() {
            return Err(format!(
                "Baileys is missing from {}/node_modules after `npm ci`",
                dir.display()
            ));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("Baileys interop harness unavailable: {e}");
    }
}

/// `wa-sandbox/interop/baileys7`: the Baileys 7.0.0-rc14 harness, a sibling package with its
/// own pins and lockfile (the 6.7.24 harness in [`interop_dir`] keeps its own).
pub(crate) fn baileys7_dir() -> PathBuf {
    interop_dir().join("baileys7")
}

/// As [`ensure_interop_installed`] for [`baileys7_dir`]: Node >= 20 and npm present, `npm ci`
/// run there (once per process, under an exclusive file lock, only when `node_modules` is
/// older than the manifest or lockfile). Panics with a clear message on any failure.
pub(crate) fn ensure_baileys7_installed() -> PathBuf {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let dir = baileys7_dir();
    let result = DONE.get_or_init(|| {
        let node = tool_version("node");
        let major: u32 = node
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        if major < 20 {
            return Err(format!("Node >= 20 is required, found {node}"));
        }
        tool_version("npm");
        let lock_path = dir.join(".npm-ci.lock");
        let lock = std::fs::File::create(&lock_path)
            .map_err(|e| format!("creating {}: {e}", lock_path.display()))?;
        lock.lock()
            .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
        if needs_npm_ci(&dir) {
            eprintln!("running `npm ci` in {}", dir.display());
            let out = std::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .output()
                .map_err(|e| format!("spawning npm ci: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "`npm ci` in {} failed ({}):\n{}\n{}",
                    dir.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        if !dir.join("node_modules/baileys/package.json").is_file() {
            return Err(format!(
                "Baileys 7 is missing from {}/node_modules after `npm ci`",
                dir.display()
            ));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("Baileys 7 interop harness unavailable: {e}");
    }
    dir
}
