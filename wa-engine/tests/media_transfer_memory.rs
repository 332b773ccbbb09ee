//! Streaming keeps memory bounded: a 96 MiB file is uploaded from disk to wa-sandbox's media
//! host and downloaded back into a hashing sink, and the process's peak resident set
//! (`VmHWM` in /proc/self/status) stays far below the file size.
//!
//! The measurement runs in a child process (this test binary re-run with an environment
//! variable) so that no other test's allocations count. Linux only.
#![cfg(all(feature = "runtime", target_os = "linux"))]

use std::pin::Pin;
use std::process::Command;
use std::task::{Context, Poll};

use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWrite;
use wa_engine::media::{MediaSource, MediaType};
use wa_sandbox::MediaConfig;

mod media_support;

const CHILD_ENV: &str = "WA_MEDIA_MEMORY_CHILD";
const TEST_NAME: &str = "streaming_a_large_file_keeps_peak_memory_bounded";
/// The file: 96 MiB.
const FILE_LEN: u64 = 96 * 1024 * 1024;
/// The bound on the peak resident set, KiB (40 MiB): well under the file size, which a
/// buffering implementation would exceed at least once (twice for an in-memory enc file).
const PEAK_BOUND_KIB: u64 = 40 * 1024;

/// A sink that hashes what it is given and keeps nothing.
#[derive(Default)]
struct HashingSink {
    hasher: Sha256,
    len: u64,
}

impl AsyncWrite for HashingSink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.hasher.update(buf);
        self.len += buf.len() as u64;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Writes `len` pseudo-random bytes to `path` in 1 MiB pieces; returns their SHA-256.
fn generate(path: &std::path::Path, len: u64) -> anyhow::Result<[u8; 32]> {
    use std::io::Write as _;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut hasher = Sha256::new();
    let mut written = 0;
    let mut seed = 1;
    while written < len {
        let n = (len - written).min(1 << 20);
        let piece = media_support::pattern(seed, usize::try_from(n)?);
        hasher.update(&piece);
        file.write_all(&piece)?;
        written += n;
        seed += 2;
    }
    file.flush()?;
    Ok(hasher.finalize().into())
}

fn child() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("large.bin");
    let plain_sha = generate(&path, FILE_LEN)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut media = MediaConfig::default();
        media.dir = Some(dir.path().join("blobs"));
        let setup = media_support::connected(media).await?;
        let before = status_kib("VmRSS:");
        let up = setup
            .client
            .upload(MediaType::Video, MediaSource::Path(path.clone()))
            .await?;
        anyhow::ensure!(up.file_sha256 == plain_sha, "uploaded hash differs");
        let mut sink = HashingSink::default();
        setup.client.download_to(&up.to_ref(), &mut sink).await?;
        anyhow::ensure!(sink.len == FILE_LEN, "downloaded {} bytes", sink.len);
        let got: [u8; 32] = sink.hasher.finalize().into();
        anyhow::ensure!(got == plain_sha, "downloaded bytes differ");
        println!(
            "MEDIA_MEMORY file_bytes={FILE_LEN} rss_before_kib={before} vmhwm_kib={}",
            status_kib("VmHWM:")
        );
        setup.shutdown().await;
        Ok(())
    })
}

#[test]
fn streaming_a_large_file_keeps_peak_memory_bounded() -> anyhow::Result<()> {
    if std::env::var_os(CHILD_ENV).is_some() {
        return child();
    }
    let out = Command::new(std::env::current_exe()?)
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The harness prints the test name on the same line, before the figures.
    let line = stdout
        .lines()
        .find_map(|l| l.find("MEDIA_MEMORY").map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("child printed no figures:\n{stdout}"));
    println!("{line}");
    let peak: u64 = line
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("vmhwm_kib="))
        .and_then(|v| v.parse().ok())
        .expect("vmhwm_kib figure");
    assert!(
        peak < PEAK_BOUND_KIB,
        "peak RSS {peak} KiB for a {FILE_LEN}-byte file exceeds {PEAK_BOUND_KIB} KiB"
    );
    Ok(())
}
