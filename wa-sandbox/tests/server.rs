//! The sandbox over real loopback sockets: WebSocket acceptance, fault injection at the
//! connection level, shutdown, and scripted protocol clients.

mod support;

use std::time::Duration;

use base64::Engine as _;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use support::{Creds, WsClient, client_iq, iq_ack, login_payload, registration_payload};
use tokio_tungstenite::tungstenite::{self, Message};
use wa_engine::binary::{Content, Node, Value};
use wa_engine::pair::{PairSuccess, QrCode, verify_pair_success};
use wa_sandbox::{PhoneError, Sandbox, SandboxConfig, SandboxHandle, StreamErrorKind};

const PHONE: &str = "15551234567";

async fn start() -> SandboxHandle {
    Sandbox::start(SandboxConfig::default().with_seed(42))
        .await
        .expect("sandbox starts")
}

fn http_status(err: &tungstenite::Error) -> Option<u16> {
    match err {
        tungstenite::Error::Http(resp) => Some(resp.status().as_u16()),
        _ => None,
    }
}

#[tokio::test]
async fn accepts_websocket_at_ws_chat_with_origin() {
    let sandbox = start().await;
    let mut req = tungstenite::client::IntoClientRequest::into_client_request(sandbox.ws_url())
        .expect("request");
    req.headers_mut().insert(
        "origin",
        "https://web.whatsapp.com".parse().expect("header"),
    );
    let (ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    assert_eq!(resp.status().as_u16(), 101);
    drop(ws);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn rejects_other_paths_with_404() {
    let sandbox = start().await;
    let url = sandbox.ws_url().replace("/ws/chat", "/ws/other");
    let err = tokio_tungstenite::connect_async(url)
        .await
        .expect_err("refused");
    assert_eq!(http_status(&err), Some(404));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn refuses_the_next_n_connections_then_accepts() {
    let sandbox = start().await;
    sandbox.faults().refuse_connections(2);
    for _ in 0..2 {
        let err = tokio_tungstenite::connect_async(sandbox.ws_url())
            .await
            .expect_err("refused");
        assert_eq!(http_status(&err), Some(503));
    }
    let (ws, _) = tokio_tungstenite::connect_async(sandbox.ws_url())
        .await
        .expect("third is accepted");
    drop(ws);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_live_connections() {
    use futures_util::StreamExt as _;
    let sandbox = start().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(sandbox.ws_url())
        .await
        .expect("upgrade");
    tokio::time::timeout(Duration::from_secs(10), sandbox.shutdown())
        .await
        .expect("shutdown completes");
    // The server sent a close frame (or the socket ended).
    let next = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("socket ends");
    assert!(
        matches!(next, None | Some(Ok(Message::Close(_))) | Some(Err(_))),
        "{next:?}"
    );
}

/// The refs of a pair-device IQ as text.
fn refs_of(iq: &Node) -> Vec<String> {
    iq.child_by_tag("pair-device")
        .map(|pd| {
            pd.children_by_tag("ref")
                .filter_map(|r| r.content_bytes())
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn qr_for(r: &str, creds: &Creds) -> String {
    QrCode {
        pairing_ref: r.to_owned(),
        noise_pub: *creds.noise.public(),
        identity_pub: *creds.identity.public(),
        adv_secret: wa_engine::pair::AdvSecret::from_bytes(*creds.adv_secret.as_bytes()),
        client_type: None,
    }
    .encode()
}

/// Opens a registration connection and returns it with the pair-device IQ (acked).
async fn register(sandbox: &SandboxHandle, creds: &Creds) -> anyhow::Result<(WsClient, Node)> {
    let mut client = WsClient::connect(
        sandbox.ws_url(),
        sandbox.trust_root_key(),
        &creds.noise,
        registration_payload(creds),
    )
    .await?;
    let pair_device = client.recv().await?;
    let id = pair_device
        .get_attr_str("id")
        .unwrap_or_default()
        .to_owned();
    client.send(&iq_ack(&id)).await?;
    Ok((client, pair_device))
}

/// Completes the companion's side of pair-success and returns (device id, pair-success).
async fn answer_pair_success(
    client: &mut WsClient,
    creds: &Creds,
    adv: &wa_engine::pair::AdvSecret,
) -> anyhow::Result<u16> {
    let iq = client
        .recv_until(|n| n.child_by_tag("pair-success").is_some())
        .await?;
    let ps = PairSuccess::parse(&iq)?;
    let mut rng = StdRng::seed_from_u64(9);
    let verified = verify_pair_success(
        &mut rng,
        &ps,
        &creds.identity.private_bytes(),
        creds.identity.public(),
        adv,
    )?;
    client.send(&verified.reply()).await?;
    Ok(ps.jid.device())
}

/// Pairs `creds` with the account by QR; returns the device id. The registration
/// connection ends with 515.
async fn pair_by_qr(sandbox: &SandboxHandle, creds: &Creds) -> anyhow::Result<u16> {
    let (mut client, pair_device) = register(sandbox, creds).await?;
    let refs = refs_of(&pair_device);
    let link = sandbox.phone(PHONE)?.scan(&qr_for(&refs[0], creds))?;
    let device = answer_pair_success(&mut client, creds, &creds.adv_secret).await?;
    assert_eq!(device, link.device);
    let (rest, _) = client.closed().await?;
    assert!(
        rest.iter()
            .any(|n| n.tag == "stream:error" && n.get_attr_str("code") == Some("515")),
        "expected 515, got {rest:?}"
    );
    Ok(device)
}

async fn login(
    sandbox: &SandboxHandle,
    creds: &Creds,
    device: u16,
) -> anyhow::Result<(WsClient, Node)> {
    let mut client = WsClient::connect(
        sandbox.ws_url(),
        sandbox.trust_root_key(),
        &creds.noise,
        login_payload(PHONE.parse()?, device, true),
    )
    .await?;
    let first = client.recv().await?;
    Ok((client, first))
}

#[tokio::test]
async fn registration_gets_six_binary_refs_of_the_real_shape() -> anyhow::Result<()> {
    let sandbox = start().await;
    let creds = Creds::seeded(1);
    let (_client, iq) = register(&sandbox, &creds).await?;
    assert_eq!(iq.tag, "iq");
    assert_eq!(iq.get_attr_str("type"), Some("set"));
    assert_eq!(iq.get_attr_str("xmlns"), Some("md"));
    assert!(matches!(iq.get_attr("from"), Some(Value::Jid(j)) if j.is_server_jid()));
    assert!(
        iq.get_attr_str("id")
            .is_some_and(|id| id.bytes().all(|b| b.is_ascii_digit()))
    );
    let pd = iq.child_by_tag("pair-device").expect("pair-device");
    let refs: Vec<_> = pd.children_by_tag("ref").collect();
    assert_eq!(refs.len(), 6);
    for r in refs {
        let Content::Bytes(b) = &r.content else {
            panic!("ref content must be BINARY, got {:?}", r.content);
        };
        assert_eq!(b.len(), 102);
        assert!(b.starts_with(b"2@"));
    }
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn pairs_by_qr_then_logs_in_after_515() -> anyhow::Result<()> {
    let sandbox = start().await;
    let phone = sandbox.create_account(PHONE)?;
    let creds = Creds::seeded(2);
    let device = pair_by_qr(&sandbox, &creds).await?;
    let devices = phone.devices();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].id, device);
    assert_eq!(devices[0].os, "sandbox-test");

    let (mut client, success) = login(&sandbox, &creds, device).await?;
    assert_eq!(success.tag, "success", "{success}");
    let account = sandbox.router().account(PHONE)?;
    let lid = success.get_attr_jid("lid").expect("lid is a JID");
    assert_eq!(lid.user(), account.lid);
    assert_eq!(lid.device(), device);
    for attr in ["t", "props", "abprops", "location", "creation"] {
        assert!(success.get_attr_str(attr).is_some(), "missing {attr}");
    }
    assert!(phone.devices()[0].connected);

    // Upkeep IQs (03 §7.2, §10.2).
    let count = client
        .iq(client_iq("c1", "get", "encrypt", vec![Node::new("count")]))
        .await?;
    assert_eq!(count.get_attr_str("type"), Some("result"));
    assert_eq!(
        count
            .child_by_tag("count")
            .and_then(|c| c.get_attr_str("value")),
        Some("0")
    );

    let keys: Vec<Node> = (1u32..=5)
        .map(|i| {
            Node::new("key").with_children([
                Node::new("id").with_bytes(i.to_be_bytes()[1..].to_vec()),
                Node::new("value").with_bytes(vec![i as u8; 32]),
            ])
        })
        .collect();
    let upload = client_iq(
        "c2",
        "set",
        "encrypt",
        vec![
            Node::new("registration").with_bytes(creds.registration_id.to_be_bytes().to_vec()),
            Node::new("type").with_bytes(vec![5]),
            Node::new("identity").with_bytes(creds.identity.public().to_vec()),
            Node::new("list").with_children(keys),
        ],
    );
    let r = client.iq(upload).await?;
    assert_eq!(r.get_attr_str("type"), Some("result"));
    let count = client
        .iq(client_iq("c3", "get", "encrypt", vec![Node::new("count")]))
        .await?;
    assert_eq!(
        count
            .child_by_tag("count")
            .and_then(|c| c.get_attr_str("value")),
        Some("5")
    );

    let active = client
        .iq(client_iq("c4", "set", "passive", vec![Node::new("active")]))
        .await?;
    assert_eq!(active.get_attr_str("type"), Some("result"));
    let offline = client.recv_until(|n| n.tag == "ib").await?;
    assert_eq!(
        offline
            .child_by_tag("offline")
            .and_then(|o| o.get_attr_str("count")),
        Some("0")
    );

    let ping = client.iq(client_iq("c5", "get", "w:p", vec![])).await?;
    assert_eq!(ping.get_attr_str("type"), Some("result"));
    let ping = client
        .iq(client_iq("c6", "get", "w:p", vec![Node::new("ping")]))
        .await?;
    assert_eq!(ping.get_attr_str("type"), Some("result"));

    let unknown = client
        .iq(client_iq("c7", "get", "nope", vec![Node::new("x")]))
        .await?;
    assert_eq!(unknown.get_attr_str("type"), Some("error"));
    assert_eq!(
        unknown
            .child_by_tag("error")
            .and_then(|e| e.get_attr_str("code")),
        Some("501")
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn login_of_unknown_device_gets_failure_401() -> anyhow::Result<()> {
    let sandbox = start().await;
    sandbox.create_account(PHONE)?;
    let creds = Creds::seeded(3);
    let (mut client, first) = login(&sandbox, &creds, 7).await?;
    assert_eq!(first.tag, "failure");
    assert_eq!(first.get_attr_str("reason"), Some("401"));
    client.closed().await?;
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn login_with_another_noise_key_gets_failure_401() -> anyhow::Result<()> {
    let sandbox = start().await;
    sandbox.create_account(PHONE)?;
    let creds = Creds::seeded(4);
    let device = pair_by_qr(&sandbox, &creds).await?;
    let impostor = Creds::seeded(5);
    let (_client, first) = login(&sandbox, &impostor, device).await?;
    assert_eq!(first.tag, "failure");
    assert_eq!(first.get_attr_str("reason"), Some("401"));
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn removed_device_gets_device_removed_then_401_on_login() -> anyhow::Result<()> {
    let sandbox = start().await;
    let phone = sandbox.create_account(PHONE)?;
    let creds = Creds::seeded(6);
    let device = pair_by_qr(&sandbox, &creds).await?;
    let (mut client, success) = login(&sandbox, &creds, device).await?;
    assert_eq!(success.tag, "success");
    phone.remove_device(device)?;
    let (rest, _) = client.closed().await?;
    let err = rest
        .iter()
        .find(|n| n.tag == "stream:error")
        .expect("stream error");
    assert_eq!(err.get_attr_str("code"), Some("401"));
    assert_eq!(
        err.child_by_tag("conflict")
            .and_then(|c| c.get_attr_str("type")),
        Some("device_removed")
    );
    assert!(phone.devices().is_empty());
    let (_c, first) = login(&sandbox, &creds, device).await?;
    assert_eq!(first.tag, "failure");
    assert_eq!(first.get_attr_str("reason"), Some("401"));
    assert_eq!(
        phone.remove_device(device),
        Err(PhoneError::NoSuchDevice {
            phone: PHONE.into(),
            device
        })
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn second_login_of_a_device_replaces_the_first() -> anyhow::Result<()> {
    let sandbox = start().await;
    sandbox.create_account(PHONE)?;
    let creds = Creds::seeded(7);
    let device = pair_by_qr(&sandbox, &creds).await?;
    let (mut first, _) = login(&sandbox, &creds, device).await?;
    let (_second, success) = login(&sandbox, &creds, device).await?;
    assert_eq!(success.tag, "success");
    let (rest, _) = first.closed().await?;
    let err = rest
        .iter()
        .find(|n| n.tag == "stream:error")
        .expect("stream error");
    assert_eq!(err.get_attr_str("code"), None);
    assert_eq!(
        err.child_by_tag("conflict")
            .and_then(|c| c.get_attr_str("type")),
        Some("replaced")
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn scan_rejects_unknown_refs_and_foreign_keys() -> anyhow::Result<()> {
    let sandbox = start().await;
    let phone = sandbox.create_account(PHONE)?;
    let creds = Creds::seeded(8);
    let (_client, iq) = register(&sandbox, &creds).await?;
    let refs = refs_of(&iq);
    let other = Creds::seeded(9);
    assert_eq!(
        phone.scan(&qr_for(&refs[1], &other)),
        Err(PhoneError::QrKeyMismatch)
    );
    assert_eq!(
        phone.scan(&qr_for("2@nope", &creds)),
        Err(PhoneError::UnknownRef)
    );
    assert!(matches!(
        phone.scan("garbage"),
        Err(PhoneError::MalformedQr(_))
    ));
    assert!(phone.devices().is_empty());
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn registration_closes_when_refs_run_out() -> anyhow::Result<()> {
    let sandbox = Sandbox::start(
        SandboxConfig::default()
            .with_seed(11)
            .with_qr_windows(Duration::from_millis(200), Duration::from_millis(50)),
    )
    .await?;
    let phone = sandbox.create_account(PHONE)?;
    let creds = Creds::seeded(10);
    let (mut client, iq) = register(&sandbox, &creds).await?;
    let refs = refs_of(&iq);
    let (rest, _) = client.closed().await?;
    assert!(
        rest.is_empty(),
        "nothing is sent when refs run out: {rest:?}"
    );
    // The connection is gone: its refs are unknown now.
    assert_eq!(
        phone.scan(&qr_for(&refs[0], &creds)),
        Err(PhoneError::UnknownRef)
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn injected_stream_errors_reach_the_device() -> anyhow::Result<()> {
    let sandbox = start().await;
    sandbox.create_account(PHONE)?;
    let creds = Creds::seeded(12);
    let device = pair_by_qr(&sandbox, &creds).await?;
    for (kind, code) in [
        (StreamErrorKind::Code(503), Some("503")),
        (StreamErrorKind::Code(515), Some("515")),
    ] {
        let (mut client, _) = login(&sandbox, &creds, device).await?;
        assert_eq!(sandbox.faults().stream_error(PHONE, device, kind), 1);
        let (rest, _) = client.closed().await?;
        let err = rest
            .iter()
            .find(|n| n.tag == "stream:error")
            .expect("stream error");
        assert_eq!(err.get_attr_str("code"), code);
    }
    // A dropped socket: no stanza, no close frame.
    let (mut client, _) = login(&sandbox, &creds, device).await?;
    assert_eq!(sandbox.faults().drop_connection(PHONE, device), 1);
    let (rest, close_frame) = client.closed().await?;
    assert!(rest.is_empty());
    assert!(!close_frame, "a drop sends no close frame");
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn logout_iq_unlinks_the_device() -> anyhow::Result<()> {
    let sandbox = start().await;
    let phone = sandbox.create_account(PHONE)?;
    let creds = Creds::seeded(13);
    let device = pair_by_qr(&sandbox, &creds).await?;
    let (mut client, _) = login(&sandbox, &creds, device).await?;
    let jid = wa_engine::Jid::pn(PHONE).with_device(device);
    let r = client
        .iq(client_iq(
            "l1",
            "set",
            "md",
            vec![
                Node::new("remove-companion-device")
                    .attr("jid", jid)
                    .attr("reason", "user_initiated"),
            ],
        ))
        .await?;
    assert_eq!(r.get_attr_str("type"), Some("result"));
    assert!(phone.devices().is_empty());
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn control_api_scan_over_http_pairs_a_device() -> anyhow::Result<()> {
    let sandbox = start().await;
    let creds = Creds::seeded(14);
    let created = http(
        sandbox.control_url(),
        "POST",
        "/accounts",
        &format!(r#"{{"phone":"{PHONE}"}}"#),
    )
    .await?;
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    let (mut client, iq) = register(&sandbox, &creds).await?;
    let refs = refs_of(&iq);
    let body = serde_json::json!({ "qr": qr_for(&refs[0], &creds) }).to_string();
    let scanned = http(
        sandbox.control_url(),
        "POST",
        &format!("/accounts/{PHONE}/scan"),
        &body,
    )
    .await?;
    assert!(scanned.starts_with("HTTP/1.1 200"), "{scanned}");
    answer_pair_success(&mut client, &creds, &creds.adv_secret).await?;
    client.closed().await?;
    let account = http(
        sandbox.control_url(),
        "GET",
        &format!("/accounts/{PHONE}"),
        "",
    )
    .await?;
    let json: serde_json::Value =
        serde_json::from_str(account.split("\r\n\r\n").nth(1).unwrap_or("{}"))?;
    assert_eq!(json["devices"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(json["identity_pub_b64"].as_str().unwrap_or(""))?
            .len(),
        32
    );
    sandbox.shutdown().await;
    Ok(())
}

/// A one-shot HTTP/1.1 request over a raw socket (the workspace has no HTTP client).
async fn http(base: &str, method: &str, path: &str, body: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}

/// Companion side of phone-number pairing up to companion_finish (03 §5.3-§5.7); returns the
/// adv secret derived on the way and the reply to companion_finish.
async fn code_pairing_until_finish(
    sandbox: &SandboxHandle,
    client: &mut WsClient,
    creds: &Creds,
    companion_code: &str,
    phone_code: &str,
) -> anyhow::Result<(wa_engine::pair::AdvSecret, Node)> {
    use wa_engine::pair::code;
    let mut rng = StdRng::seed_from_u64(77);
    let pairing_ephemeral = x25519_dalek::StaticSecret::random_from_rng(&mut rng);
    let eph_pub = x25519_dalek::PublicKey::from(&pairing_ephemeral).to_bytes();
    let companion_code = code::PairingCode::parse(companion_code)?;
    let wrapped = code::wrap_ephemeral_pub(&mut rng, &companion_code, &eph_pub);
    let hello = code::companion_hello_iq(
        "h1",
        PHONE,
        &wrapped,
        creds.noise.public(),
        wa_engine::pair::ClientType::Chrome,
        "Chrome (Linux)",
    );
    let result = client.iq(hello).await?;
    assert_eq!(result.get_attr_str("type"), Some("result"), "{result}");
    let pairing_ref = code::parse_companion_hello_result(&result)?;

    sandbox.phone(PHONE)?.enter_code(phone_code)?;
    let notification = client.recv_until(|n| n.tag == "notification").await?;
    assert_eq!(
        notification.get_attr_str("type"),
        Some("link_code_companion_reg")
    );
    let primary = code::parse_primary_hello(&notification)?;
    assert_eq!(primary.pairing_ref, pairing_ref);
    let account = sandbox.router().account(PHONE)?;
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(primary.primary_identity_pub),
        account.identity_pub_b64
    );
    client
        .send(
            &Node::new("ack")
                .attr("class", "notification")
                .attr(
                    "id",
                    notification
                        .get_attr_str("id")
                        .unwrap_or_default()
                        .to_owned(),
                )
                .attr("to", wa_engine::Jid::server_jid(wa_engine::Server::Pn))
                .attr("type", "link_code_companion_reg"),
        )
        .await?;
    let identity = x25519_dalek::StaticSecret::from(*creds.identity.private_bytes());
    let finish = code::companion_finish(
        &mut rng,
        &companion_code,
        &pairing_ephemeral,
        &identity,
        &primary.wrapped_primary_ephemeral_pub,
        &primary.primary_identity_pub,
    )?;
    let iq = code::companion_finish_iq(
        "f1",
        PHONE,
        &finish.wrapped_key_bundle,
        creds.identity.public(),
        &pairing_ref,
    );
    let reply = client.iq(iq).await?;
    Ok((finish.adv_secret, reply))
}

#[tokio::test]
async fn pairs_by_phone_code_then_515() -> anyhow::Result<()> {
    let sandbox = start().await;
    let phone = sandbox.create_account(PHONE)?;
    let creds = Creds::seeded(20);
    let (mut client, _) = register(&sandbox, &creds).await?;
    let (adv, reply) =
        code_pairing_until_finish(&sandbox, &mut client, &creds, "ABCD1234", "ABCD-1234").await?;
    assert_eq!(reply.get_attr_str("type"), Some("result"), "{reply}");
    let device = answer_pair_success(&mut client, &creds, &adv).await?;
    let (rest, _) = client.closed().await?;
    assert!(
        rest.iter()
            .any(|n| n.tag == "stream:error" && n.get_attr_str("code") == Some("515"))
    );
    assert_eq!(
        phone.devices().iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![device]
    );
    let (_c, success) = login(&sandbox, &creds, device).await?;
    assert_eq!(success.tag, "success");
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn wrong_phone_code_fails_companion_finish() -> anyhow::Result<()> {
    let sandbox = start().await;
    let phone = sandbox.create_account(PHONE)?;
    let creds = Creds::seeded(21);
    let (mut client, _) = register(&sandbox, &creds).await?;
    let (_, reply) =
        code_pairing_until_finish(&sandbox, &mut client, &creds, "ABCD1234", "ZZZZ9999").await?;
    assert_eq!(reply.get_attr_str("type"), Some("error"), "{reply}");
    assert!(phone.devices().is_empty());
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn companion_hello_for_unknown_number_is_an_error() -> anyhow::Result<()> {
    let sandbox = start().await;
    let creds = Creds::seeded(22);
    let (mut client, _) = register(&sandbox, &creds).await?;
    let mut rng = StdRng::seed_from_u64(1);
    let code = wa_engine::pair::code::PairingCode::parse("ABCD1234")?;
    let wrapped = wa_engine::pair::code::wrap_ephemeral_pub(&mut rng, &code, &[9; 32]);
    let hello = wa_engine::pair::code::companion_hello_iq(
        "h1",
        PHONE,
        &wrapped,
        creds.noise.public(),
        wa_engine::pair::ClientType::Chrome,
        "Chrome (Linux)",
    );
    let reply = client.iq(hello).await?;
    assert_eq!(reply.get_attr_str("type"), Some("error"));
    assert_eq!(
        sandbox.create_account(PHONE)?.enter_code("ABCD1234"),
        Err(PhoneError::NoPendingCode)
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn accepts_the_handshake_split_one_byte_per_message() -> anyhow::Result<()> {
    use futures_util::{SinkExt as _, StreamExt as _};
    let sandbox = start().await;
    let creds = Creds::seeded(23);
    let mut rng = StdRng::seed_from_u64(5);
    let mut core = support::ClientCore::new(
        &creds.noise,
        wa_engine::noise::KeyPair::generate(&mut rng),
        sandbox.trust_root_key(),
        registration_payload(&creds),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(sandbox.ws_url()).await?;
    let hello = core.outbox.pop_front().expect("client hello");
    for b in hello {
        ws.send(Message::Binary(vec![b].into())).await?;
    }
    while !core.is_open() {
        match tokio::time::timeout(support::STEP, ws.next()).await? {
            Some(Ok(Message::Binary(d))) => core.feed(&d)?,
            other => anyhow::bail!("unexpected {other:?}"),
        }
    }
    // ClientFinish and the first stanza's ack glued into one message.
    let mut glued: Vec<u8> = core.outbox.drain(..).flatten().collect();
    while core.inbox.is_empty() {
        if !glued.is_empty() {
            ws.send(Message::Binary(std::mem::take(&mut glued).into()))
                .await?;
        }
        match tokio::time::timeout(support::STEP, ws.next()).await? {
            Some(Ok(Message::Binary(d))) => core.feed(&d)?,
            other => anyhow::bail!("unexpected {other:?}"),
        }
    }
    let iq = core.inbox.pop_front().expect("pair-device");
    assert!(iq.child_by_tag("pair-device").is_some(), "{iq}");
    sandbox.shutdown().await;
    Ok(())
}
