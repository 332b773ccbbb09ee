//! End to end: wa-engine's real tokio `Client` against the sandbox over loopback
//! WebSockets. A fresh client shows a QR, the simulated phone scans it, the server sends
//! 515, the client reconnects with the login payload and is Connected; it stays paired
//! across a process restart (reopened store) and is logged out when the phone removes it.

use std::sync::Arc;
use std::time::Duration;

use wa_engine::{Client, CloseReason, Event, Events, MemoryStore, SledStore, Store};
use wa_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

const PHONE: &str = "15557654321";

/// How long one expected event may take.
const STEP: Duration = Duration::from_secs(20);

async fn next(events: &mut Events) -> anyhow::Result<Event> {
    tokio::time::timeout(STEP, events.recv())
        .await
        .map_err(|_| anyhow::anyhow!("no event within {STEP:?}"))?
        .ok_or_else(|| anyhow::anyhow!("event stream ended"))
}

async fn start() -> anyhow::Result<SandboxHandle> {
    Ok(Sandbox::start(SandboxConfig::default().with_seed(99)).await?)
}

async fn connect(
    sandbox: &SandboxHandle,
    store: Arc<dyn Store>,
) -> anyhow::Result<(Client, Events)> {
    Ok(Client::builder(store)
        .url(sandbox.ws_url())
        .trust_root(sandbox.trust_root())
        .device_name("sandbox-e2e")
        .connect()
        .await?)
}

/// Reads events until `Connected`, scanning every QR with the phone. Returns the events seen.
async fn until_connected(
    sandbox: &SandboxHandle,
    events: &mut Events,
) -> anyhow::Result<Vec<Event>> {
    let phone = sandbox.phone(PHONE)?;
    let mut seen = Vec::new();
    loop {
        let event = next(events).await?;
        if let Event::Qr { code, .. } = &event {
            phone.scan(code)?;
        }
        let done = matches!(event, Event::Connected { .. });
        seen.push(event);
        if done {
            return Ok(seen);
        }
    }
}

#[tokio::test]
async fn fresh_client_pairs_by_qr_restarts_on_515_and_connects() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let phone = sandbox.create_account(PHONE)?;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (client, mut events) = connect(&sandbox, store.clone()).await?;
    let seen = until_connected(&sandbox, &mut events).await?;

    assert!(
        matches!(seen.first(), Some(Event::Qr { expires_in, .. }) if *expires_in == Duration::from_secs(60)),
        "{seen:?}"
    );
    let paired = seen.iter().find_map(|e| match e {
        Event::PairSuccess {
            jid, lid, platform, ..
        } => Some((jid.clone(), lid.clone(), platform.clone())),
        _ => None,
    });
    let (jid, lid, platform) = paired.expect("PairSuccess before Connected");
    assert_eq!(jid.user(), PHONE);
    assert_eq!(platform, "android");
    assert!(
        seen.iter().any(|e| matches!(
            e,
            Event::Disconnected {
                reason: CloseReason::RestartRequired,
                reconnecting: true
            }
        )),
        "{seen:?}"
    );
    let devices = phone.devices();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].id, jid.device());
    assert_eq!(lid.map(|l| l.device()), Some(jid.device()));
    assert!(devices[0].connected);
    assert!(client.is_connected());
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn paired_client_reconnects_after_restart_without_a_qr_and_is_logged_out_on_removal()
-> anyhow::Result<()> {
    let sandbox = start().await?;
    let phone = sandbox.create_account(PHONE)?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state");
    {
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&path)?);
        let (client, mut events) = connect(&sandbox, store).await?;
        until_connected(&sandbox, &mut events).await?;
        client.shutdown().await;
        while let Ok(Some(_)) = tokio::time::timeout(STEP, events.recv()).await {}
    }
    // A new process: the store is reopened, the client logs in directly.
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&path)?);
    let (client, mut events) = connect(&sandbox, store).await?;
    let first = next(&mut events).await?;
    let Event::Connected { jid } = first else {
        anyhow::bail!("expected Connected without a QR, got {first:?}");
    };
    assert_eq!(phone.devices().len(), 1);

    // Server-side fault: 503 -> the client reconnects by itself.
    assert_eq!(
        sandbox
            .faults()
            .stream_error(PHONE, jid.device(), wa_sandbox::StreamErrorKind::Code(503)),
        1
    );
    loop {
        match next(&mut events).await? {
            Event::Connected { .. } => break,
            Event::Qr { .. } => anyhow::bail!("a paired client must never show a QR"),
            _ => {}
        }
    }

    // The phone unlinks the device: LoggedOut, no reconnect.
    phone.remove_device(jid.device())?;
    loop {
        match next(&mut events).await? {
            Event::LoggedOut { .. } => break,
            Event::Connected { .. } | Event::Qr { .. } => {
                anyhow::bail!("must not reconnect after removal")
            }
            _ => {}
        }
    }
    assert!(phone.devices().is_empty());
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn client_pairs_with_a_phone_number_code() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let phone = sandbox.create_account(PHONE)?;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (client, mut events) = connect(&sandbox, store).await?;
    // Wait until the registration connection got its pair-device (first QR).
    loop {
        if let Event::Qr { .. } = next(&mut events).await? {
            break;
        }
    }
    let code = client.request_pairing_code(PHONE).await?;
    phone.enter_code(&code)?;
    loop {
        match next(&mut events).await? {
            Event::Connected { jid } => {
                assert_eq!(jid.user(), PHONE);
                break;
            }
            Event::Stopped => anyhow::bail!("client stopped"),
            _ => {}
        }
    }
    assert_eq!(phone.devices().len(), 1);
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}
