//! Shared support for the messaging end-to-end tests: a sandbox, paired engine clients,
//! and event waiting with a timeout.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use wa_engine::{Client, Event, Events, IncomingMessage, Jid, MemoryStore, Store};
use wa_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

/// How long one expected event may take.
pub const STEP: Duration = Duration::from_secs(20);

pub async fn sandbox(seed: u64) -> anyhow::Result<SandboxHandle> {
    Ok(Sandbox::start(SandboxConfig::default().with_seed(seed)).await?)
}

/// A paired, connected engine client.
pub struct Peer {
    pub client: Client,
    pub events: Events,
    pub jid: Jid,
    pub store: Arc<dyn Store>,
}

impl Peer {
    /// The user JID (no device).
    pub fn user(&self) -> Jid {
        self.jid.to_non_ad()
    }

    /// Next event matching `pred`, skipping others.
    pub async fn wait<T>(
        &mut self,
        mut pred: impl FnMut(&Event) -> Option<T>,
    ) -> anyhow::Result<T> {
        wait(&mut self.events, &mut pred).await
    }

    /// Next decrypted message.
    pub async fn next_message(&mut self) -> anyhow::Result<IncomingMessage> {
        self.wait(|e| match e {
            Event::Message(m) => Some((**m).clone()),
            _ => None,
        })
        .await
    }

    pub async fn shutdown(self) {
        self.client.shutdown().await;
    }
}

pub async fn wait<T>(
    events: &mut Events,
    pred: &mut impl FnMut(&Event) -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .map_err(|_| anyhow::anyhow!("expected event not seen within {STEP:?}"))?
            .ok_or_else(|| anyhow::anyhow!("event stream ended"))?;
        if let Some(t) = pred(&event) {
            return Ok(t);
        }
    }
}

/// Connects a client over `store` (paired or not).
pub async fn connect(
    sandbox: &SandboxHandle,
    store: Arc<dyn Store>,
) -> anyhow::Result<(Client, Events)> {
    Ok(Client::builder(store)
        .url(sandbox.ws_url())
        .trust_root(sandbox.trust_root())
        .device_name("msg-e2e")
        .prekey_batch(30)
        .connect()
        .await?)
}

/// Pairs a new device to `number` (creating the account if needed) and waits until it is
/// connected and its prekeys are on the server.
pub async fn pair_with(
    sandbox: &SandboxHandle,
    number: &str,
    store: Arc<dyn Store>,
) -> anyhow::Result<Peer> {
    let phone = match sandbox.phone(number) {
        Ok(p) => p,
        Err(_) => sandbox.create_account(number)?,
    };
    let (client, mut events) = connect(sandbox, store.clone()).await?;
    let jid = wait(&mut events, &mut |e| match e {
        Event::Qr { code, .. } => {
            phone.scan(code).expect("scan");
            None
        }
        Event::Connected { jid } => Some(jid.clone()),
        _ => None,
    })
    .await?;
    let peer = Peer {
        client,
        events,
        jid,
        store,
    };
    wait_prekeys_uploaded(&peer).await?;
    Ok(peer)
}

pub async fn pair(sandbox: &SandboxHandle, number: &str) -> anyhow::Result<Peer> {
    pair_with(sandbox, number, Arc::new(MemoryStore::new())).await
}

/// Waits until the store records an accepted prekey upload.
pub async fn wait_prekeys_uploaded(peer: &Peer) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let counters = peer.store.prekey_counters()?.unwrap_or_default();
        if counters.first_unuploaded_id > 1 {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("prekeys never uploaded");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `cond` until it holds (or fails after [`STEP`]).
pub async fn until(mut cond: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + STEP;
    while !cond() {
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("condition not reached within {STEP:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}
