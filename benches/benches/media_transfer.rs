//! Peak memory and throughput of sending and receiving a 200 MB file through wa-sandbox's
//! media host (issue 6): the file is generated on the fly (a re-openable
//! `MediaSource::reopen`, read twice like a file), uploaded with `Client::upload` (encrypt
//! while uploading; the host streams it to disk), then
//! downloaded with `Client::download_to` into a hashing sink (verify while downloading).
//! Peak memory must stay bounded, not proportional to the file.
//!
//! Run: `cargo bench -p wa-benches --bench media_transfer` (Linux: reads /proc/self/status);
//! `cargo test -p wa-benches --bench media_transfer` runs it in the dev profile (crypto
//! crates are optimised there too; the HTTP stack is not, so throughput is lower).
//! Needs about 200 MB of free disk for the host's stored blob.
//! Prints one line of figures; the sandbox's host runs in the same process and is counted.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWrite;
use wa_engine::media::{MediaSource, MediaType, Scheme};
use wa_engine::{Client, Event, MemoryStore, Store};
use wa_sandbox::{MediaConfig, Sandbox, SandboxConfig};

/// 200 MB, decimal, as in the issue.
const FILE_LEN: u64 = 200_000_000;

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
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `len` pseudo-random bytes (an xorshift stream), generated as they are read: the source
/// can be opened again for the upload's second pass and never exists whole anywhere.
struct Generated {
    x: u64,
    left: u64,
    word: [u8; 8],
    used: usize,
}

impl Generated {
    fn new(len: u64) -> Self {
        Self {
            x: 0x9E37_79B9_7F4A_7C15,
            left: len,
            word: [0; 8],
            used: 8,
        }
    }
}

impl std::io::Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        for byte in &mut buf[..n] {
            if self.used == 8 {
                self.x ^= self.x << 13;
                self.x ^= self.x >> 7;
                self.x ^= self.x << 17;
                self.word = self.x.to_le_bytes();
                self.used = 0;
            }
            *byte = self.word[self.used];
            self.used += 1;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut media = MediaConfig::default();
        media.dir = Some(dir.path().join("blobs"));
        let sandbox = Sandbox::start(
            SandboxConfig::default()
                .with_first_stanza_delay(Duration::ZERO)
                .with_media(media),
        )
        .await?;
        let phone = sandbox.create_account("15550002222")?;
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (client, mut events): (Client, _) = Client::builder(store)
            .url(sandbox.ws_url())
            .trust_root(sandbox.trust_root())
            .media_scheme(Scheme::Http)
            .connect()
            .await?;
        while let Some(event) = events.recv().await {
            match event {
                Event::Qr { code, .. } => {
                    phone.scan(&code)?;
                }
                Event::Connected { .. } => break,
                _ => {}
            }
        }
        let rss_before = status_kib("VmRSS:");
        let hwm_before = status_kib("VmHWM:");

        let start = Instant::now();
        let source = MediaSource::reopen(|| Ok(Generated::new(FILE_LEN)));
        let up = client.upload(MediaType::Video, source).await?;
        let upload_time = start.elapsed();
        let plain_sha = up.file_sha256;
        let hwm_after_upload = status_kib("VmHWM:");

        let start = Instant::now();
        let mut sink = HashingSink::default();
        client.download_to(&up.to_ref(), &mut sink).await?;
        let download_time = start.elapsed();
        let got: [u8; 32] = sink.hasher.finalize().into();
        anyhow::ensure!(got == plain_sha && sink.len == FILE_LEN, "download differs");
        let hwm_end = status_kib("VmHWM:");

        println!(
            "media_transfer file={FILE_LEN}B rss_before_upload={rss_before}KiB \
             peak_before_upload={hwm_before}KiB peak_after_upload={hwm_after_upload}KiB \
             peak_after_download={hwm_end}KiB upload(hash pass + encrypt+send)={:.0}MB/s \
             download(receive+decrypt+verify)={:.0}MB/s",
            mb_per_s(FILE_LEN, upload_time),
            mb_per_s(FILE_LEN, download_time),
        );
        client.shutdown().await;
        sandbox.shutdown().await;
        Ok(())
    })
}
