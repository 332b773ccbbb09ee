//! Our engine (`wa_engine::Client`) as one side of an interop test: pair it to a sandbox
//! account by QR and wait for its events. Shared by the peer tests (Baileys, whatsmeow, and
//! the whatsapp-rust crate, which includes this file by path).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use wa_engine::{Client, Event, Events, Jid, MemoryStore};
use wa_sandbox::SandboxHandle;

/// The first engine event for which `pred` returns `Some`, within `within`.
pub async fn next_within<T>(
    events: &mut Events,
    within: Duration,
    mut pred: impl FnMut(&Event) -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .context("expected engine event not seen in time")?
            .context("engine event stream ended")?;
        if let Some(t) = pred(&event) {
            return Ok(t);
        }
    }
}

/// Waits (at most `within`) until the first device of `number` has prekeys on the server,
/// so that a peer fetching its bundle finds one.
pub async fn prekeys_uploaded(
    sandbox: &SandboxHandle,
    number: &str,
    within: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    while sandbox
        .router()
        .account(number)?
        .devices
        .first()
        .map_or(0, |d| d.prekeys)
        == 0
    {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{number} never uploaded prekeys"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// An engine client paired to `number` by QR (the sandbox phone scans it), connected and
/// with its prekeys on the server; each step within `within`. Returns its store too.
pub async fn paired_engine(
    sandbox: &SandboxHandle,
    number: &str,
    within: Duration,
) -> anyhow::Result<(Client, Events, Jid, Arc<MemoryStore>)> {
    let phone = sandbox.phone(number)?;
    let store = Arc::new(MemoryStore::new());
    let (client, mut events) = Client::builder(store.clone())
        .url(sandbox.ws_url())
        .trust_root(sandbox.trust_root())
        .device_name("wa-rs")
        .connect()
        .await?;
    let jid = next_within(&mut events, within, |e| match e {
        Event::Qr { code, .. } => {
            let _ = phone.scan(code);
            None
        }
        Event::Connected { jid } => Some(jid.clone()),
        _ => None,
    })
    .await?;
    prekeys_uploaded(sandbox, number, within).await?;
    Ok((client, events, jid, store))
}
