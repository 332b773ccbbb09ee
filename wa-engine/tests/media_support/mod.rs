//! Shared setup for the media transfer tests: a wa-sandbox (with its media host on
//! loopback) and a real `Client` paired with one of its accounts, speaking `http` to the
//! media host.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use wa_engine::media::Scheme;
use wa_engine::{Client, Event, Events, MemoryStore, Store};
use wa_sandbox::{MediaConfig, Sandbox, SandboxConfig, SandboxHandle};

/// The account the client is linked to.
pub const PHONE: &str = "15550001111";

/// How long one expected event may take.
const STEP: Duration = Duration::from_secs(30);

/// A running sandbox and a logged-in client.
pub struct Setup {
    pub sandbox: SandboxHandle,
    pub client: Client,
    pub events: Events,
}

impl Setup {
    pub async fn shutdown(self) {
        self.client.shutdown().await;
        self.sandbox.shutdown().await;
    }
}

/// Starts a sandbox with `media`, links a fresh client by QR and waits until it is connected.
pub async fn connected(media: MediaConfig) -> anyhow::Result<Setup> {
    let sandbox = Sandbox::start(
        SandboxConfig::default()
            .with_seed(61)
            .with_first_stanza_delay(Duration::ZERO)
            .with_media(media),
    )
    .await?;
    let phone = sandbox.create_account(PHONE)?;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (client, mut events) = Client::builder(store)
        .url(sandbox.ws_url())
        .trust_root(sandbox.trust_root())
        .device_name("media-e2e")
        .media_scheme(Scheme::Http)
        .connect()
        .await?;
    loop {
        let event = tokio::time::timeout(STEP, events.recv())
            .await
            .map_err(|_| anyhow::anyhow!("no event within {STEP:?}"))?
            .ok_or_else(|| anyhow::anyhow!("event stream ended"))?;
        match event {
            Event::Qr { code, .. } => {
                phone.scan(&code)?;
            }
            Event::Connected { .. } => break,
            Event::Stopped | Event::LoggedOut { .. } => {
                anyhow::bail!("client stopped")
            }
            _ => {}
        }
    }
    Ok(Setup {
        sandbox,
        client,
        events,
    })
}

/// Deterministic pseudo-random bytes (an xorshift stream), `len` long.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x = seed | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A paired, connected client with its prekeys on the server, for messaging.
pub struct Peer {
    pub client: Client,
    pub events: Events,
    pub jid: wa_engine::Jid,
    pub store: Arc<dyn Store>,
}

impl Peer {
    /// The user JID (no device).
    pub fn user(&self) -> wa_engine::Jid {
        self.jid.to_non_ad()
    }

    /// The next decrypted message, skipping other events.
    pub async fn next_message(&mut self) -> anyhow::Result<wa_engine::IncomingMessage> {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .map_err(|_| anyhow::anyhow!("no message within {STEP:?}"))?
                .ok_or_else(|| anyhow::anyhow!("event stream ended"))?;
            if let Event::Message(m) = event {
                return Ok(*m);
            }
        }
    }
}

/// Starts a sandbox for messaging tests (media host with default settings).
pub async fn sandbox(seed: u64) -> anyhow::Result<SandboxHandle> {
    Ok(Sandbox::start(
        SandboxConfig::default()
            .with_seed(seed)
            .with_first_stanza_delay(Duration::ZERO),
    )
    .await?)
}

/// Links a new device to `number` (creating the account), waits until it is connected and
/// its prekeys are uploaded.
pub async fn pair(sandbox: &SandboxHandle, number: &str) -> anyhow::Result<Peer> {
    let phone = sandbox.create_account(number)?;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (client, mut events) = Client::builder(store.clone())
        .url(sandbox.ws_url())
        .trust_root(sandbox.trust_root())
        .device_name("media-msg-e2e")
        .prekey_batch(30)
        .media_scheme(Scheme::Http)
        .connect()
        .await?;
    let jid = loop {
        let event = tokio::time::timeout(STEP, events.recv())
            .await
            .map_err(|_| anyhow::anyhow!("no event within {STEP:?}"))?
            .ok_or_else(|| anyhow::anyhow!("event stream ended"))?;
        match event {
            Event::Qr { code, .. } => {
                phone.scan(&code)?;
            }
            Event::Connected { jid } => break jid,
            _ => {}
        }
    };
    let deadline = tokio::time::Instant::now() + STEP;
    while store
        .prekey_counters()?
        .unwrap_or_default()
        .first_unuploaded_id
        <= 1
    {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "prekeys never uploaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Peer {
        client,
        events,
        jid,
        store,
    })
}
