//! The `wa-sandbox` binary: prints one JSON line with its URLs and trust root, serves the
//! control API, and exits when stdin closes.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;

#[test]
fn prints_urls_as_json_and_exits_when_stdin_closes() -> anyhow::Result<()> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wa-sandbox"))
        .args(["--seed", "7", "--qr-timeout", "5", "--qr-next-timeout", "1"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let info: serde_json::Value = serde_json::from_str(&line)?;
    let ws_url = info["ws_url"].as_str().expect("ws_url");
    let control_url = info["control_url"].as_str().expect("control_url");
    assert!(
        ws_url.starts_with("ws://127.0.0.1:") && ws_url.ends_with("/ws/chat"),
        "{ws_url}"
    );
    let root = base64::engine::general_purpose::STANDARD
        .decode(info["trust_root_pub_b64"].as_str().expect("trust root"))?;
    assert_eq!(root.len(), 32);

    // The control API answers, and /info agrees with the printed line.
    let addr = control_url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET /info HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let body: serde_json::Value =
        serde_json::from_str(resp.split("\r\n\r\n").nth(1).unwrap_or_default())?;
    assert_eq!(body["ws_url"], ws_url);
    assert_eq!(body["trust_root_pub_b64"], info["trust_root_pub_b64"]);

    drop(child.stdin.take());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait()? {
            assert!(status.success(), "{status}");
            break;
        }
        if std::time::Instant::now() > deadline {
            child.kill()?;
            anyhow::bail!("the binary did not exit after stdin closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
