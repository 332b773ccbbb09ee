//! Crash safety of pairing, end to end: a child process (this test binary in child mode) runs
//! the real `Client` on a `SledStore` against wa-sandbox and is killed with SIGKILL at a
//! chosen point of the QR pairing; a new process opening the same store must log in without
//! any QR.
//!
//! The sandbox's `DelayFrames` fault holds every server frame back (2 s), which pins down the
//! kill point: (a) after pair-success was persisted and the server recorded the device, but
//! before the 515 reached the client; (b) after the 515 but before `Connected` on the login
//! connection, then once more after `Connected`. `client_pair.rs` covers the undetermined
//! kill right after `PairSuccess`; these fix each side of the 515.
#![cfg(all(feature = "runtime", feature = "sled"))]

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{ChildStdout, Command};
use wa_engine::noise::TrustRoot;
use wa_engine::{Client, CloseReason, Event, SledStore, Store};
use wa_sandbox::{Phone, Sandbox, SandboxConfig, SandboxHandle};

const PN: &str = "15550001111";

/// Env var that turns [`crash_child_entry`] into the child process's body.
const CHILD_ENV: &str = "WA_ENGINE_CRASH_CHILD";

/// Marks the child's own lines in its stdout (libtest prints around them).
const MARK: &str = "@@ ";

/// How long the sandbox holds each server frame back while a kill point must be hit. The
/// parent reacts to the child's line in milliseconds; 2 s leaves room on a loaded machine.
const FRAME_DELAY: Duration = Duration::from_secs(2);

/// Not a test of its own: the body of the child processes (returns at once otherwise).
/// Connects with a `SledStore` and prints one line per event of interest.
#[tokio::test]
async fn crash_child_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split(' ').collect();
    let [url, root, serial, dir] = parts.as_slice() else {
        panic!("bad child spec {spec}");
    };
    let root: [u8; 32] = hex::decode(root)
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir).expect("sled"));
    let (_client, mut events) = Client::builder(store)
        .url(*url)
        .trust_root(TrustRoot::new(root, serial.parse().expect("serial")))
        .connect()
        .await
        .expect("child connects");
    while let Some(e) = events.recv().await {
        match e {
            Event::Qr { code, .. } => println!("{MARK}QR {code}"),
            Event::PairSuccess { jid, .. } => println!("{MARK}PAIRED {jid}"),
            Event::Disconnected {
                reason: CloseReason::RestartRequired,
                ..
            } => println!("{MARK}RESTART"),
            Event::Connected { jid } => println!("{MARK}CONNECTED {jid}"),
            other => println!("{MARK}EVENT {other:?}"),
        }
    }
}

/// A child process and its marked stdout lines.
struct Child {
    child: tokio::process::Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Child {
    fn spawn(sb: &SandboxHandle, dir: &Path) -> Self {
        let root = sb.trust_root();
        let spec = format!(
            "{} {} {} {}",
            sb.ws_url(),
            hex::encode(root.public_key()),
            root.serial(),
            dir.display()
        );
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "crash_child_entry",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, spec)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn child");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Self { child, lines }
    }

    /// The child's next marked line, `None` once its stdout closed.
    async fn line(&mut self) -> Option<String> {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
                .await
                .expect("child output within 30 s")
                .expect("read child stdout")?;
            if let Some((_, rest)) = line.split_once(MARK) {
                return Some(rest.to_owned());
            }
        }
    }

    /// The next marked line; panics if the child ended.
    async fn expect_line(&mut self) -> String {
        self.line().await.expect("child still running")
    }

    /// SIGKILL, then every line the child had printed before dying.
    async fn kill(mut self) -> Vec<String> {
        self.child.start_kill().expect("SIGKILL");
        self.child.wait().await.expect("reaped");
        let mut rest = Vec::new();
        while let Some(line) = self.line().await {
            rest.push(line);
        }
        rest
    }
}

async fn sandbox(seed: u64) -> (SandboxHandle, Phone) {
    let sb = Sandbox::start(
        SandboxConfig::default()
            .with_seed(seed)
            .with_first_stanza_delay(Duration::from_millis(5)),
    )
    .await
    .expect("sandbox starts");
    let phone = sb.create_account(PN).expect("account");
    (sb, phone)
}

/// Spawns a child and has the phone scan its first QR, with every server frame delayed from
/// the scan on. Returns the child and the JID the sandbox gave the device.
async fn scan_with_slow_server(sb: &SandboxHandle, phone: &Phone, dir: &Path) -> (Child, String) {
    let mut child = Child::spawn(sb, dir);
    let line = child.expect_line().await;
    let qr = line
        .strip_prefix("QR ")
        .unwrap_or_else(|| panic!("an unpaired device shows a QR first, got {line}"));
    sb.faults().delay_frames(FRAME_DELAY);
    let link = phone.scan(qr).expect("the phone scans");
    (child, link.jid)
}

/// Polls until the server recorded the companion (it does so on the valid
/// `pair-device-sign`, right before it sends the 515).
async fn until_server_recorded_device(phone: &Phone) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while phone.devices().is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the server records the device");
}

/// The credentials a SIGKILLed process left in sled.
fn stored_jid(dir: &Path) -> Option<String> {
    let store = SledStore::open(dir).expect("the store of a killed process opens");
    store
        .credentials()
        .expect("readable")
        .and_then(|c| c.id.clone())
}

/// A new process on the same store: straight to `Connected`, never a QR.
async fn relogin_without_qr(sb: &SandboxHandle, dir: &Path, jid: &str) -> Child {
    let mut child = Child::spawn(sb, dir);
    loop {
        let line = child.expect_line().await;
        assert!(!line.starts_with("QR "), "a QR after the crash: {line}");
        assert!(!line.starts_with("PAIRED"), "paired again: {line}");
        if let Some(connected) = line.strip_prefix("CONNECTED ") {
            assert_eq!(connected, jid);
            return child;
        }
    }
}

#[tokio::test]
async fn killed_after_pair_success_before_515_logs_in_without_qr() {
    let (sb, phone) = sandbox(21).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut first, jid) = scan_with_slow_server(&sb, &phone, dir.path()).await;

    let line = first.expect_line().await;
    assert_eq!(
        line,
        format!("PAIRED {jid}"),
        "pair-success is persisted first"
    );
    until_server_recorded_device(&phone).await;
    // The 515 is now waiting out the frame delay in the sandbox.
    let rest = first.kill().await;
    assert!(
        rest.iter()
            .all(|l| l != "RESTART" && !l.starts_with("CONNECTED")),
        "killed too late, the 515 had arrived: {rest:?}"
    );

    assert_eq!(stored_jid(dir.path()).as_deref(), Some(jid.as_str()));
    sb.faults().delay_frames(Duration::ZERO);
    let second = relogin_without_qr(&sb, dir.path(), &jid).await;
    second.kill().await;
    assert_eq!(phone.devices().len(), 1, "one linked device");
}

#[tokio::test]
async fn killed_after_515_before_and_after_connected_logs_in_without_qr() {
    let (sb, phone) = sandbox(22).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut first, jid) = scan_with_slow_server(&sb, &phone, dir.path()).await;

    assert_eq!(first.expect_line().await, format!("PAIRED {jid}"));
    assert_eq!(first.expect_line().await, "RESTART");
    // The login connection's handshake is now waiting out the frame delay.
    let rest = first.kill().await;
    assert!(
        rest.iter().all(|l| !l.starts_with("CONNECTED")),
        "killed too late, already logged in: {rest:?}"
    );
    assert_eq!(phone.devices().len(), 1);

    sb.faults().delay_frames(Duration::ZERO);
    let second = relogin_without_qr(&sb, dir.path(), &jid).await;
    // Killed while logged in: the next process logs in again just the same.
    second.kill().await;
    let third = relogin_without_qr(&sb, dir.path(), &jid).await;
    third.kill().await;
    assert_eq!(phone.devices().len(), 1, "one linked device");
}
