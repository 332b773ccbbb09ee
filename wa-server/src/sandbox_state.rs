//! `--sandbox` mode across restarts: the embedded sandbox's accounts and linked devices
//! (`Router::export_state`, wa-sandbox `persist.rs`) live in `<data-dir>/sandbox/state.json`,
//! imported at start and written whenever they change, so a session paired with the
//! sandbox logs in again after a restart (even after a SIGKILL) without a new scan.
//!
//! Writes go through a temporary file, `fsync`, and a rename over the old file, so a crash
//! leaves the previous or the new state, never a torn one. The file holds the simulated
//! phones' identity keys (they sign only for this sandbox); on Unix it is created `0600`.
//!
//! The sandbox itself writes the file when a device is linked, before it answers the
//! pair-device-sign (the 515 that sends the companion to log in), and when a device is
//! unlinked or an account created: [`SandboxFile`] is its `wa_sandbox::Durability` hook. So
//! a session that reports `connected` is on disk whatever instant a SIGKILL lands on (issue
//! 12; before, a SIGKILL right after `connected` lost the pairing in 3 of 6 tries under load,
//! `tests/kill_after_pair.rs`). The rest (prekey uploads, app-state) changes without a
//! notification, so a background task also exports the state at an interval (at least
//! [`MIN_INTERVAL`], longer when exporting is slow) and writes it when the bytes differ from
//! the last write. Not kept (as in wa-sandbox): groups, live connections.
//!
//! The companions' offline queues (every stanza a linked device has not acknowledged yet,
//! `wa_sandbox::QueuesState`) live in `<data-dir>/sandbox/queues.json`. The sandbox calls
//! [`Durability::persist_queues`](wa_sandbox::Durability::persist_queues) after it routed a
//! message and before it acks it to the sender, so a message a session answered `201` for
//! (the server's ack) is on disk until its recipient acknowledged it, whatever instant a
//! SIGKILL lands on; after a restart the recipient gets it in its offline replay (issue 12,
//! kill loop `tests/kill_loop.rs`: before, a SIGKILL lost every message the sandbox had
//! acked but the recipient's session had not processed yet, e.g. all those sent while the
//! recipient was reconnecting). One write covers every message routed while the previous
//! write ran (a group commit); the background task writes acknowledged removals.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wa_sandbox::Router;

/// Shortest pause between two background exports.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(500);

/// Why the saved sandbox state could not be used or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxStateError {
    /// Reading or writing the file failed.
    #[error("sandbox state {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a sandbox state (or from another version).
    #[error("sandbox state {path} is unusable: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The state file of one embedded sandbox and the bytes last written to it.
#[derive(Debug)]
pub(crate) struct SandboxFile {
    path: PathBuf,
    last: Mutex<Vec<u8>>,
    /// `<data_dir>/sandbox/queues.json`.
    queues_path: PathBuf,
    /// Calls of `persist_queues` so far: a write whose export started after call `n`
    /// counted itself here covers call `n`.
    queue_calls: AtomicU64,
    /// The queue writer (one at a time).
    queues: Mutex<QueueWriter>,
}

/// What the queue writer knows about `queues.json`.
#[derive(Debug, Default)]
struct QueueWriter {
    /// Every `persist_queues` call up to this one is on disk.
    covered: u64,
    /// The bytes last written (or loaded).
    last: Vec<u8>,
}

impl SandboxFile {
    /// The file `<data_dir>/sandbox/state.json`.
    pub(crate) fn new(data_dir: &Path) -> Self {
        let dir = data_dir.join("sandbox");
        Self {
            path: dir.join("state.json"),
            last: Mutex::new(Vec::new()),
            queues_path: dir.join("queues.json"),
            queue_calls: AtomicU64::new(0),
            queues: Mutex::new(QueueWriter::default()),
        }
    }

    /// Imports the saved state into `sandbox`, if there is one. Blocking.
    ///
    /// # Errors
    /// [`SandboxStateError::Io`] when the file exists but cannot be read,
    /// [`SandboxStateError::Invalid`] when it does not parse or import (the server refuses
    /// to start rather than overwrite it).
    pub(crate) fn load(&self, router: &Router) -> Result<usize, SandboxStateError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(source) => {
                return Err(SandboxStateError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let invalid = |reason: String| SandboxStateError::Invalid {
            path: self.path.clone(),
            reason,
        };
        let state: wa_sandbox::SandboxState =
            serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        router
            .import_state(&state)
            .map_err(|e| invalid(e.to_string()))?;
        let accounts = router.accounts().len();
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = bytes;
        self.load_queues(router)?;
        Ok(accounts)
    }

    /// Restores the offline queues saved in `queues.json`, if any (after the accounts).
    fn load_queues(&self, router: &Router) -> Result<(), SandboxStateError> {
        let bytes = match std::fs::read(&self.queues_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(SandboxStateError::Io {
                    path: self.queues_path.clone(),
                    source,
                });
            }
        };
        let invalid = |reason: String| SandboxStateError::Invalid {
            path: self.queues_path.clone(),
            reason,
        };
        let queues: wa_sandbox::QueuesState =
            serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        let restored = router
            .import_queues(&queues)
            .map_err(|e| invalid(e.to_string()))?;
        tracing::info!(stanzas = restored, "sandbox offline queues restored");
        self.queues.lock().unwrap_or_else(|e| e.into_inner()).last = bytes;
        Ok(())
    }

    /// Exports the offline queues and writes them if they changed since the last write.
    /// Blocking; returns whether it wrote. The caller holds the writer.
    fn write_queues(&self, writer: &mut QueueWriter, router: &Router) -> std::io::Result<bool> {
        // Serializing plain serde data to JSON cannot fail.
        let bytes = serde_json::to_vec(&router.export_queues()).unwrap_or_default();
        if bytes.is_empty() || bytes == writer.last {
            return Ok(false);
        }
        write_atomically(&self.queues_path, &bytes)?;
        writer.last = bytes;
        Ok(true)
    }

    /// Writes the offline queues if they changed (acknowledged stanzas left them). Blocking.
    ///
    /// # Errors
    /// [`SandboxStateError::Io`].
    fn save_queues_if_changed(&self, router: &Router) -> Result<bool, SandboxStateError> {
        let mut writer = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        self.write_queues(&mut writer, router)
            .map_err(|source| SandboxStateError::Io {
                path: self.queues_path.clone(),
                source,
            })
    }

    /// Exports the sandbox state and writes it if it changed since the last write.
    /// Blocking; returns whether it wrote.
    ///
    /// # Errors
    /// [`SandboxStateError::Io`].
    pub(crate) fn save_if_changed(&self, router: &Router) -> Result<bool, SandboxStateError> {
        // One writer at a time: the lock is held across the write.
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        // Serializing plain serde data to JSON cannot fail.
        let bytes = serde_json::to_vec(&router.export_state()).unwrap_or_default();
        if bytes.is_empty() || bytes == *last {
            return Ok(false);
        }
        write_atomically(&self.path, &bytes).map_err(|source| SandboxStateError::Io {
            path: self.path.clone(),
            source,
        })?;
        *last = bytes;
        Ok(true)
    }

    /// [`save_if_changed`](Self::save_if_changed) off the async runtime; failures are logged.
    pub(crate) async fn save_now(self: &std::sync::Arc<Self>, router: &Router) {
        let this = self.clone();
        let router = router.clone();
        let saved = tokio::task::spawn_blocking(move || {
            this.save_if_changed(&router)
                .and_then(|state| Ok(this.save_queues_if_changed(&router)? || state))
        })
        .await;
        match saved {
            Ok(Ok(true)) => tracing::debug!("sandbox state saved"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot save the sandbox state"),
            Err(e) => tracing::error!(error = %e, "sandbox state save task failed"),
        }
    }

    /// Saves whenever the state changed, until `stop` turns true; then one last save.
    pub(crate) async fn run(
        self: std::sync::Arc<Self>,
        router: Router,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let started = Instant::now();
            self.save_now(&router).await;
            // Exporting a big sandbox (many devices with their prekeys) takes a while:
            // spend at most about 5% of the time on it.
            let pause = MIN_INTERVAL.max(started.elapsed().saturating_mul(20));
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        self.save_now(&router).await;
    }
}

/// The embedded sandbox's durability hook: a linked or unlinked device is written (and
/// synced) before the sandbox answers. Runs on the sandbox connection's tokio worker and
/// blocks it for the write, as a pairing should.
impl wa_sandbox::Durability for SandboxFile {
    fn persist(&self, router: &Router) -> std::io::Result<()> {
        match self.save_if_changed(router) {
            Ok(_) => Ok(()),
            Err(SandboxStateError::Io { source, .. }) => Err(source),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        }
    }

    /// Group commit: the call counts itself, then waits for the writer; if a write that
    /// began exporting after this call counted itself already finished, it covers this
    /// call's message and nothing is written.
    fn persist_queues(&self, router: &Router) -> std::io::Result<()> {
        let mine = self.queue_calls.fetch_add(1, Ordering::SeqCst) + 1;
        blocking(|| {
            let mut writer = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            if writer.covered >= mine {
                return Ok(());
            }
            // Every call counted so far changed the queues before it counted itself, so
            // the export below holds their messages.
            let upto = self.queue_calls.load(Ordering::SeqCst);
            self.write_queues(&mut writer, router)?;
            writer.covered = upto;
            Ok(())
        })
    }
}

/// Runs blocking `f` (a synced write) on the calling thread; on a multi-threaded tokio
/// runtime through `block_in_place`, so the worker's other tasks move to another thread
/// meanwhile (the sandbox calls its hook from a connection's task).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Writes `bytes` to `path` through `path.tmp`, `fsync` and a rename, then syncs the
/// directory, creating it if needed.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sandbox").join("state.json");
        write_atomically(&path, b"one").expect("write");
        write_atomically(&path, b"two").expect("rewrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        assert!(!path.with_extension("json.tmp").exists());
    }

    #[tokio::test]
    async fn a_saved_sandbox_restores_its_accounts_and_devices() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sb = wa_sandbox::Sandbox::start(wa_sandbox::SandboxConfig::default())
            .await
            .expect("sandbox");
        sb.create_account("15550001111").expect("account");
        let saver = SandboxFile::new(dir.path());
        assert!(saver.save_if_changed(sb.router()).expect("save"));
        assert!(
            !saver.save_if_changed(sb.router()).expect("save"),
            "unchanged"
        );
        sb.shutdown().await;

        let again = wa_sandbox::Sandbox::start(wa_sandbox::SandboxConfig::default())
            .await
            .expect("sandbox");
        let loader = SandboxFile::new(dir.path());
        assert_eq!(loader.load(again.router()).expect("load"), 1);
        assert!(again.phone("15550001111").is_ok());
        assert!(
            !loader.save_if_changed(again.router()).expect("save"),
            "same state"
        );
        again.shutdown().await;
    }

    #[tokio::test]
    async fn a_damaged_state_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let saver = SandboxFile::new(dir.path());
        write_atomically(&saver.path, b"{not json").expect("write");
        let sb = wa_sandbox::Sandbox::start(wa_sandbox::SandboxConfig::default())
            .await
            .expect("sandbox");
        assert!(matches!(
            saver.load(sb.router()),
            Err(SandboxStateError::Invalid { .. })
        ));
        sb.shutdown().await;
    }

    #[tokio::test]
    async fn written_queues_load_again_and_a_damaged_queues_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sb = wa_sandbox::Sandbox::start(wa_sandbox::SandboxConfig::default())
            .await
            .expect("sandbox");
        sb.create_account("15550002222").expect("account");
        let saver = SandboxFile::new(dir.path());
        assert!(saver.save_if_changed(sb.router()).expect("save"));
        wa_sandbox::Durability::persist_queues(&saver, sb.router()).expect("persist queues");
        assert!(saver.queues_path.exists(), "queues written");
        assert_eq!(saver.queues.lock().expect("writer").covered, 1);
        sb.shutdown().await;

        let again = wa_sandbox::Sandbox::start(wa_sandbox::SandboxConfig::default())
            .await
            .expect("sandbox");
        assert_eq!(
            SandboxFile::new(dir.path())
                .load(again.router())
                .expect("load"),
            1
        );
        write_atomically(&saver.queues_path, b"{not json").expect("write");
        assert!(matches!(
            SandboxFile::new(dir.path()).load(again.router()),
            Err(SandboxStateError::Invalid { .. })
        ));
        again.shutdown().await;
    }
}
