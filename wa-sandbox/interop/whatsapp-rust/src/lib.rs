//! whatsapp-rust 0.7 (oxidezap/whatsapp-rust, crates.io `whatsapp-rust`) as an independent
//! peer of wa-sandbox (issue 11).
//!
//! This crate links whatsapp-rust with `danger-skip-cert-chain-verify`: the client's Noise
//! certificate root is WhatsApp's, hard-coded in 0.7, and the sandbox cannot sign with it,
//! so the whole chain check is compiled out. That build must never talk to a real server:
//! [`WaRust::start`] refuses any URL whose host is not a loopback address, the HTTP client
//! refuses every request, and the app version is fixed (no `web.whatsapp.com/sw.js` fetch).
//! No other crate of the workspace depends on this one, so wa-engine and wa-server never
//! link the dangerous feature.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::sync::mpsc;
use whatsapp_rust::prelude::*;
use whatsapp_rust::store::SqliteStore as Store;
use whatsapp_rust_tokio_transport::TokioWebSocketTransportFactory;

/// The app version announced in the `ClientPayload`, fixed so the client never fetches
/// `https://web.whatsapp.com/sw.js` (whatsapp-rust `version.rs`).
pub const APP_VERSION: (u32, u32, u32) = (2, 3000, 1_023_000_000);

/// What the peer reports, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// A pairing QR string (`ref,noise,identity,adv`) for the sandbox phone to scan.
    Qr(String),
    /// The phone confirmed the pairing: our JID (`user:device@s.whatsapp.net`).
    PairSuccess(String),
    /// Logged in and ready (whatsapp-rust's `Event::Connected`).
    Connected,
    /// The connection dropped.
    Disconnected,
    /// Our own push name from app state (`SelfPushNameUpdated.new_name`).
    PushName(String),
    /// A `contact` app-state record: the contact's JID and full name (`ContactUpdate`).
    Contact {
        /// The contact's JID.
        jid: String,
        /// `ContactAction.fullName`.
        full_name: Option<String>,
    },
    /// A `mute` app-state record (`MuteUpdate`).
    Mute {
        /// The chat.
        jid: String,
        /// `MuteAction.muted`.
        muted: bool,
    },
    /// An `archive` app-state record (`ArchiveUpdate`).
    Archive {
        /// The chat.
        jid: String,
        /// `ArchiveChatAction.archived`.
        archived: bool,
    },
    /// A history-sync chunk whatsapp-rust inflated and decoded (`HistorySync`).
    History {
        /// `HistorySync.syncType`.
        sync_type: i32,
        /// Conversation ids.
        conversations: Vec<String>,
        /// `phoneNumberToLidMappings` as (pn, lid).
        pn_lid: Vec<(String, String)>,
        /// `HistorySync.nctSalt` (field 19).
        nct_salt: Option<Vec<u8>>,
    },
    /// A batched app-state sync left collections unsynced (`AppStateSyncFailed`, debug text).
    AppStateSyncFailed(String),
    /// A text message: id, chat JID, sender JID, text.
    Text {
        /// Message id.
        id: String,
        /// Chat JID, as whatsapp-rust renders it.
        chat: String,
        /// Sender JID.
        sender: String,
        /// The text (`conversation` or `extendedTextMessage.text`).
        text: String,
    },
}

/// A running whatsapp-rust bot pointed at a loopback WebSocket URL.
pub struct WaRust {
    handle: Option<BotHandle>,
    client: Arc<Client>,
    /// The peer's events.
    pub events: mpsc::UnboundedReceiver<PeerEvent>,
}

/// Fails unless `url` is `ws://` or `wss://` to a loopback IP or `localhost`.
///
/// # Errors
/// Any other URL.
pub fn check_loopback(url: &str) -> anyhow::Result<()> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))
        .context("only ws:// or wss:// URLs")?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!("refusing non-loopback URL {url}: this build skips the certificate chain check");
    }
    Ok(())
}

/// An HTTP client that refuses every request (media and version fetches would go to the
/// real service).
#[derive(Debug)]
struct NoHttp;

#[async_trait::async_trait]
impl whatsapp_rust::http::HttpClient for NoHttp {
    async fn execute(
        &self,
        request: whatsapp_rust::http::HttpRequest,
    ) -> anyhow::Result<whatsapp_rust::http::HttpResponse> {
        bail!("HTTP disabled in the interop harness: {}", request.url)
    }
}

impl WaRust {
    /// Starts a bot with its SQLite store under `dir`, connecting to `url` (loopback only).
    ///
    /// # Errors
    /// A non-loopback URL, or whatsapp-rust failing to build the bot.
    pub async fn start(url: &str, dir: &Path) -> anyhow::Result<Self> {
        let db = dir.join("whatsapp-rust.db");
        Self::start_with_database(url, db.to_str().context("utf-8 path")?).await
    }

    /// Starts a bot whose SQLite store is an in-memory database private to `name`
    /// (`file:memdb_<name>?mode=memory&cache=shared`, the URL form whatsapp-rust's own store
    /// tests use), connecting to `url` (loopback only). Nothing touches the disk; the store
    /// lives as long as the bot. `name` must be unique in the process.
    ///
    /// # Errors
    /// As [`WaRust::start`].
    pub async fn start_in_memory(url: &str, name: &str) -> anyhow::Result<Self> {
        Self::start_with_database(url, &format!("file:memdb_{name}?mode=memory&cache=shared")).await
    }

    /// Starts a bot on the SQLite database `database` (a path or a `file:` URI), with
    /// whatsapp-rust's default store configuration (one pooled connection, 512 KiB page
    /// cache), connecting to `url` (loopback only).
    ///
    /// # Errors
    /// As [`WaRust::start`].
    pub async fn start_with_database(url: &str, database: &str) -> anyhow::Result<Self> {
        check_loopback(url)?;
        let store = Store::new(database)
            .await
            .map_err(|e| anyhow::anyhow!("sqlite store: {e}"))?;
        let (tx, events) = mpsc::unbounded_channel();
        let transport = TokioWebSocketTransportFactory::new().with_url(url);
        let bot = Bot::builder()
            .with_backend(store)
            .with_transport_factory(transport)
            .with_http_client(NoHttp)
            .with_runtime(TokioRuntime)
            .with_version(APP_VERSION)
            .with_push_name("whatsapp-rust")
            .on_event(move |event, _client| {
                let tx = tx.clone();
                async move {
                    let out = match &*event {
                        Event::PairingQrCode(qr) => Some(PeerEvent::Qr(qr.code.clone())),
                        Event::PairSuccess(p) => Some(PeerEvent::PairSuccess(p.id.to_string())),
                        Event::Connected(_) => Some(PeerEvent::Connected),
                        Event::Disconnected(_) => Some(PeerEvent::Disconnected),
                        Event::SelfPushNameUpdated(p) => {
                            Some(PeerEvent::PushName(p.new_name.clone()))
                        }
                        Event::ContactUpdate(c) => Some(PeerEvent::Contact {
                            jid: c.jid.to_string(),
                            full_name: c.action.full_name.clone(),
                        }),
                        Event::MuteUpdate(m) => Some(PeerEvent::Mute {
                            jid: m.jid.to_string(),
                            muted: m.action.muted.unwrap_or(false),
                        }),
                        Event::ArchiveUpdate(a) => Some(PeerEvent::Archive {
                            jid: a.jid.to_string(),
                            archived: a.action.archived.unwrap_or(false),
                        }),
                        Event::HistorySync(h) => h.get().map(|d| PeerEvent::History {
                            sync_type: h.sync_type(),
                            conversations: d.conversations.iter().map(|c| c.id.clone()).collect(),
                            pn_lid: d
                                .phone_number_to_lid_mappings
                                .iter()
                                .map(|m| {
                                    (
                                        m.pn_jid.clone().unwrap_or_default(),
                                        m.lid_jid.clone().unwrap_or_default(),
                                    )
                                })
                                .collect(),
                            nct_salt: d.nct_salt.clone(),
                        }),
                        Event::AppStateSyncFailed(f) => {
                            Some(PeerEvent::AppStateSyncFailed(format!("{f:?}")))
                        }
                        _ => None,
                    };
                    let mut all: Vec<PeerEvent> = out.into_iter().collect();
                    for m in event.messages() {
                        if let Some(text) = m.message.text_content() {
                            all.push(PeerEvent::Text {
                                id: m.info.id.to_string(),
                                chat: m.info.source.chat.to_string(),
                                sender: m.info.source.sender.to_string(),
                                text: text.to_owned(),
                            });
                        }
                    }
                    for e in all {
                        let _ = tx.send(e);
                    }
                }
            })
            .build()
            .await
            .map_err(|e| anyhow::anyhow!("build bot: {e}"))?;
        let client = bot.client();
        let handle = bot.spawn();
        Ok(Self {
            handle: Some(handle),
            client,
            events,
        })
    }

    /// Waits up to `timeout` for an event `pick` maps to `Some`, skipping others.
    ///
    /// # Errors
    /// Timeout, or the bot stopped.
    pub async fn until<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(&PeerEvent) -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let e = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .context("whatsapp-rust event not seen in time")?
                .context("whatsapp-rust stopped")?;
            if let Some(t) = pick(&e) {
                return Ok(t);
            }
        }
    }

    /// Sends a plain text (`conversation`) to `to` (a JID such as `15551230001@s.whatsapp.net`);
    /// returns the message id.
    ///
    /// # Errors
    /// A bad JID or whatsapp-rust's send error.
    pub async fn send_text(&self, to: &str, text: &str) -> anyhow::Result<String> {
        self.sender().send_text(to, text).await
    }

    /// A cloneable handle that sends texts from this bot (for concurrent sends).
    pub fn sender(&self) -> TextSender {
        TextSender(self.client.clone())
    }

    /// The NCT salt whatsapp-rust holds (learned from app-state `nct_salt_sync` or history
    /// sync field 19: shared/protocol/07 §3.3), if any: without it, it sends no `<cstoken>`.
    pub fn nct_salt(&self) -> Option<Vec<u8>> {
        self.client
            .persistence_manager()
            .get_device_snapshot()
            .nct_salt
            .clone()
    }

    /// Disconnects and waits for the bot to stop.
    pub async fn shutdown(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await;
        }
    }
}

/// Sends texts from a running [`WaRust`] bot; clones share the bot.
#[derive(Clone)]
pub struct TextSender(Arc<Client>);

impl TextSender {
    /// Sends a plain text (`conversation`) to `to` (a JID such as
    /// `15551230001@s.whatsapp.net`); returns the message id once whatsapp-rust's
    /// `Client::send_message` future resolved.
    ///
    /// # Errors
    /// A bad JID or whatsapp-rust's send error.
    pub async fn send_text(&self, to: &str, text: &str) -> anyhow::Result<String> {
        let jid: Jid = to.parse().map_err(|e| anyhow::anyhow!("jid {to}: {e}"))?;
        let msg = wa::Message {
            conversation: Some(text.to_owned()),
            ..Default::default()
        };
        let sent = self
            .0
            .send_message(&jid, msg)
            .await
            .map_err(|e| anyhow::anyhow!("send: {e}"))?;
        Ok(sent.message_id)
    }
}

#[cfg(test)]
mod tests {
    use super::check_loopback;

    #[test]
    fn only_loopback_urls_are_accepted() {
        assert!(check_loopback("ws://127.0.0.1:4000/ws/chat").is_ok());
        assert!(check_loopback("ws://[::1]:4000/ws/chat").is_ok());
        assert!(check_loopback("ws://localhost:4000/ws/chat").is_ok());
        assert!(check_loopback("wss://web.whatsapp.com/ws/chat").is_err());
        assert!(check_loopback("ws://10.0.0.1:4000/").is_err());
        assert!(check_loopback("ws://127.0.0.1.evil.example/").is_err());
        assert!(check_loopback("http://127.0.0.1/").is_err());
    }
}
