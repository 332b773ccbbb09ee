//! A private PostgreSQL cluster for one test: Debian's `postgresql` package (installed
//! with apt-get if missing), `initdb` into a temporary directory as the non-root
//! `postgres` user, `pg_ctl start` on a free loopback port, `pg_ctl stop` and removal on
//! drop. No mock database.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail, ensure};

/// A running private cluster; stopped and deleted on drop.
pub(crate) struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub(crate) url: String,
}

fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Installs Debian's PostgreSQL server if no `initdb` is there.
fn ensure_installed() -> Result<PathBuf> {
    if let Some(bin) = bin_dir() {
        return Ok(bin);
    }
    ensure!(
        is_root(),
        "PostgreSQL is not installed and this user cannot apt-get it"
    );
    let status = Command::new("sh")
        .arg("-c")
        .arg("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null")
        .status()
        .context("apt-get")?;
    ensure!(status.success(), "apt-get install postgresql failed");
    bin_dir().context("postgresql installed but no initdb found")
}

/// Runs `program` of the cluster's bin dir as the `postgres` user when we are root.
fn run_as_postgres(bin: &Path, program: &str, args: &[&str]) -> Result<()> {
    let path = bin.join(program);
    let output = if is_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&path)
            .args(args)
            .output()
    } else {
        Command::new(&path).args(args).output()
    }
    .with_context(|| format!("run {program}"))?;
    if !output.status.success() {
        bail!(
            "{program} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl PgCluster {
    /// Starts a fresh cluster (trust authentication on loopback only).
    pub(crate) fn start() -> Result<Self> {
        let bin = ensure_installed()?;
        let dir = tempfile::Builder::new().prefix("wa-pg-").tempdir()?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data)?;
        if is_root() {
            // The postgres user must reach and own its directories.
            let status = Command::new("chmod").arg("755").arg(dir.path()).status()?;
            ensure!(status.success(), "chmod");
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()?;
            ensure!(status.success(), "chown");
        }
        let data_s = data.to_string_lossy().into_owned();
        run_as_postgres(
            &bin,
            "initdb",
            &[
                "-D",
                &data_s,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        let port = free_port()?;
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            dir.path().display()
        );
        let log = dir.path().join("log").to_string_lossy().into_owned();
        run_as_postgres(
            &bin,
            "pg_ctl",
            &[
                "-D", &data_s, "-o", &opts, "-l", &log, "-w", "-t", "60", "start",
            ],
        )?;
        Ok(Self {
            dir,
            bin,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        })
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data").to_string_lossy().into_owned();
        let _ = run_as_postgres(
            &self.bin,
            "pg_ctl",
            &["-D", &data, "-m", "immediate", "-w", "stop"],
        );
    }
}
