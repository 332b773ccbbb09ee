//! Runs each example in sandbox mode, as a user would (the cargo-built binary): the pairing
//! examples twice with the same `--data-dir` (the first run pairs and reaches `Connected`,
//! the second connects without any QR or code), the messaging examples against their
//! simulated recipients, and the echo bot against an engine client of the test's own that
//! pairs through the bot's sandbox control API.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;
use wa_engine::noise::TrustRoot;
use wa_engine::{Client, Event, Events, Jid, MemoryStore, MessageStatus, Store};

/// Runs an example binary to completion and returns its stdout; panics with its output
/// when it fails or takes longer than 60 s.
async fn run(bin: &str, data_dir: &Path) -> String {
    run_with(bin, data_dir, &[]).await
}

/// [`run`] with more arguments after `--data-dir`.
async fn run_with(bin: &str, data_dir: &Path, args: &[&str]) -> String {
    let (ok, stdout, stderr) = run_status(bin, data_dir, args).await;
    assert!(ok, "{bin} failed:\n{stdout}\n{stderr}");
    stdout
}

/// Runs an example binary to completion: (succeeded, stdout, stderr).
async fn run_status(bin: &str, data_dir: &Path, args: &[&str]) -> (bool, String, String) {
    let child = Command::new(bin)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
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
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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

/// The value after `prefix` on the first line that starts with it.
fn line_after<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line:\n{stdout}"))
}

#[tokio::test]
async fn send_text_is_received_by_the_simulated_recipient_and_delivered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = env!("CARGO_BIN_EXE_send_text");

    for text in ["hello from wa-rs", "second run, same sessions"] {
        let out = run_with(bin, dir.path(), &["+1 555 000-9876", text]).await;
        let id = line_after(&out, "sent message ")
            .split(' ')
            .next()
            .expect("id")
            .to_owned();
        assert!(id.starts_with("3EB0") && id.len() == 22, "{id}");
        assert!(
            out.contains(&format!(
                "sandbox recipient received {id} from {}: {text}",
                connected_jid(&out)
            )),
            "{out}"
        );
        assert!(out.contains("status: sent\n"), "{out}");
        assert!(
            out.contains("status: delivered (by 15550009876:1@s.whatsapp.net)"),
            "{out}"
        );
    }
}

#[tokio::test]
async fn send_text_reuses_the_device_pair_qr_linked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paired = run(env!("CARGO_BIN_EXE_pair_qr"), dir.path()).await;
    let out = run_with(
        env!("CARGO_BIN_EXE_send_text"),
        dir.path(),
        &["15550009876@s.whatsapp.net", "after pair_qr"],
    )
    .await;
    assert_eq!(connected_jid(&out), connected_jid(&paired));
    assert!(out.contains("status: delivered"), "{out}");
}

#[tokio::test]
async fn otp_code_round_trips_to_the_simulated_recipient() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = env!("CARGO_BIN_EXE_otp");

    let out = run_with(bin, dir.path(), &["+15550007777", "--digits", "8"]).await;
    assert!(
        out.contains("+15550007777 is on WhatsApp as 15550007777@s.whatsapp.net"),
        "{out}"
    );
    assert!(out.contains("generated a 8-digit code"), "{out}");
    assert!(
        out.contains("sandbox recipient received the message: code round-tripped"),
        "{out}"
    );
    assert!(out.contains("status: delivered"), "{out}");
}

#[tokio::test]
async fn otp_refuses_a_number_not_on_whatsapp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, out, err) = run_status(
        env!("CARGO_BIN_EXE_otp"),
        dir.path(),
        &["+15550007778", "--sandbox-unregistered"],
    )
    .await;
    assert!(!ok, "{out}");
    assert!(
        err.contains("+15550007778 is not on WhatsApp: no code sent"),
        "{err}"
    );
    assert!(!out.contains("sent the code"), "{out}");
}

/// A small client of the sandbox's HTTP control API (JSON).
struct Control {
    http: reqwest::Client,
    base: String,
}

impl Control {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("control API request");
        let status = response.status();
        let bytes = response.bytes().await.expect("control API body");
        assert!(
            status.is_success(),
            "{path}: {status} {}",
            String::from_utf8_lossy(&bytes)
        );
        serde_json::from_slice(&bytes).expect("control API JSON")
    }
}

/// The next event matching `pred` within 30 s.
async fn next<T>(events: &mut Events, mut pred: impl FnMut(Event) -> Option<T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let event = events.recv().await.expect("events ended");
            if let Some(t) = pred(event) {
                return t;
            }
        }
    })
    .await
    .expect("expected event within 30 s")
}

#[tokio::test]
async fn echo_bot_replies_quoting_the_message_and_marks_it_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut bot = Command::new(env!("CARGO_BIN_EXE_echo_bot"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--max-messages", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawning echo_bot");
    let mut lines = BufReader::new(bot.stdout.take().expect("stdout")).lines();
    let mut seen = String::new();
    let (control_url, bot_jid) = tokio::time::timeout(Duration::from_secs(60), async {
        let mut control = None;
        while let Some(line) = lines.next_line().await.expect("reading echo_bot") {
            seen.push_str(&line);
            seen.push('\n');
            if let Some(url) = line.strip_prefix("sandbox control API: ") {
                control = Some(url.to_owned());
            }
            if let Some(rest) = line.strip_prefix("echo bot ready: message ") {
                let jid: Jid = rest.split(' ').next().expect("jid").parse().expect("jid");
                return (control.expect("control API line before ready"), jid);
            }
        }
        panic!("echo_bot ended before it was ready:\n{seen}");
    })
    .await
    .expect("echo_bot ready within 60 s");

    // Our own account in the bot's sandbox, paired through the control API.
    let control = Control {
        http: reqwest::Client::new(),
        base: control_url,
    };
    let info = control.call(reqwest::Method::GET, "/info", None).await;
    let root: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(info["trust_root_pub_b64"].as_str().expect("root"))
        .expect("base64")
        .try_into()
        .expect("32 bytes");
    let number = "15550004444";
    control
        .call(
            reqwest::Method::POST,
            "/accounts",
            Some(serde_json::json!({ "phone": number })),
        )
        .await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (client, mut events) = Client::builder(store.clone())
        .url(info["ws_url"].as_str().expect("ws_url"))
        .trust_root(TrustRoot::new(root, 0))
        .prekey_batch(20)
        .connect()
        .await
        .expect("connect");
    loop {
        let qr = next(&mut events, |e| match e {
            Event::Qr { code, .. } => Some(Some(code)),
            Event::Connected { .. } => Some(None),
            _ => None,
        })
        .await;
        let Some(qr) = qr else { break };
        control
            .call(
                reqwest::Method::POST,
                &format!("/accounts/{number}/scan"),
                Some(serde_json::json!({ "qr": qr })),
            )
            .await;
    }
    // The bot fetches our prekey bundle to answer: wait until it is on the server.
    tokio::time::timeout(Duration::from_secs(30), async {
        while store
            .prekey_counters()
            .expect("counters")
            .unwrap_or_default()
            .first_unuploaded_id
            <= 1
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("prekeys uploaded");

    let ping = client.send_text(&bot_jid, "ping 1").await.expect("send");
    let reply = next(&mut events, |e| match e {
        Event::Message(m) if m.info.sender.same_user(&bot_jid) => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(reply.text(), Some("ping 1"));
    let quoted = reply
        .message
        .extended_text_message
        .as_ref()
        .and_then(|e| e.context_info.as_ref())
        .expect("the reply has a context");
    assert_eq!(quoted.stanza_id.as_deref(), Some(ping.as_str()));
    let own_user = client.jid().expect("paired").to_non_ad().to_string();
    assert_eq!(quoted.participant.as_deref(), Some(own_user.as_str()));
    assert_eq!(
        quoted
            .quoted_message
            .as_ref()
            .and_then(|m| m.conversation.as_deref()),
        Some("ping 1")
    );
    next(&mut events, |e| match e {
        Event::MessageStatus { id, status, .. } if id == ping && status == MessageStatus::Read => {
            Some(())
        }
        _ => None,
    })
    .await;
    client.shutdown().await;

    // --max-messages 1: the bot stops by itself.
    let status = tokio::time::timeout(Duration::from_secs(30), bot.wait())
        .await
        .expect("echo_bot exits")
        .expect("wait");
    let mut rest = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert!(status.success(), "{seen}{rest}");
    assert!(
        rest.contains(&format!("echoed {ping} from ")) && rest.contains("answered 1 message(s)"),
        "{rest}"
    );
}

#[tokio::test]
async fn many_sessions_share_flushes_and_come_back_without_qr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = env!("CARGO_BIN_EXE_many_sessions");
    let args = ["--sessions", "4", "--messages", "5"];
    for (run, qrs) in [(1, 4), (2, 0)] {
        let out = run_with(bin, dir.path(), &args).await;
        assert!(
            out.contains(&format!("4 sessions connected ({qrs} QR codes scanned)")),
            "run {run}: {out}"
        );
        assert!(out.contains("20 messages delivered and decrypted"), "{out}");
        let line = line_after(&out, "group commit: ");
        let nums: Vec<u64> = line.split(' ').filter_map(|w| w.parse().ok()).collect();
        assert_eq!(nums.len(), 2, "{line}");
        assert!(nums[0] > 0 && nums[1] > 0 && nums[1] <= nums[0], "{line}");
    }
}
