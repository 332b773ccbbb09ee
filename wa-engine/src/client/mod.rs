//! The tokio driver: a [`Client`] handle, its [`Events`] stream, and one task that owns the
//! [`Connection`](crate::conn::Connection), the WebSocket and the timers (feature `runtime`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use wa_engine::{Client, Event, MemoryStore};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let (client, mut events) = Client::builder(Arc::new(MemoryStore::new()))
//!     .device_name("wa-rs demo")
//!     .connect()
//!     .await?;
//! while let Some(event) = events.recv().await {
//!     match event {
//!         Event::Qr { code, .. } => println!("scan: {code}"),
//!         Event::Connected { jid } => println!("online as {jid}"),
//!         Event::LoggedOut { .. } | Event::Stopped => break,
//!         _ => {}
//!     }
//! }
//! client.shutdown().await;
//! # Ok(()) }
//! ```

mod driver;
mod events;
mod media;
mod profile;
mod reconnect;
mod rich;
mod transport;

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

pub use events::Events;
pub use media::{SendMediaError, SentMedia};
pub use profile::PushNameSync;
pub use reconnect::ReconnectPolicy;
pub use transport::{DEFAULT_URL, ORIGIN, TransportError};

use wa_proto::wa;

use crate::Jid;
use crate::binary::Node;
use crate::conn::{DeviceConfig, Reply, Request, SendError, Timing};
use crate::group::{GroupInfo, GroupParticipant, ParticipantAction};
use crate::message::{MessageId, content};
use crate::noise::TrustRoot;
use crate::stanza::CloseReason;
use crate::store::Store;
use crate::usync::ContactStatus;

/// Why [`ClientBuilder::connect`] failed: the first connection attempt did not complete its
/// Noise handshake.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The WebSocket could not be opened.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The connection closed before the handshake completed, e.g.
    /// [`CloseReason::BadServerCertificate`] for a server whose certificate chain does not
    /// verify against the configured trust root, or [`CloseReason::StoreFailed`].
    #[error("connection closed during the handshake: {0}")]
    Closed(CloseReason),
    /// The driver task ended unexpectedly.
    #[error("client driver stopped")]
    DriverStopped,
}

pub(crate) enum Command {
    Request { request: Request, reply: Responder },
    Shutdown { done: oneshot::Sender<()> },
}

/// The caller waiting for one request, with the type its request resolves to: each
/// [`Client`] method picks the variant for the [`Reply`] its [`Request`] is answered with
/// (documented on each `Request` variant), so the caller receives that type directly.
pub(crate) enum Responder {
    /// Any reply means done ([`Request::Stanza`], [`Request::MarkRead`], [`Request::Logout`]).
    Done(oneshot::Sender<Result<(), SendError>>),
    /// [`Reply::Iq`].
    Iq(oneshot::Sender<Result<Node, SendError>>),
    /// [`Reply::PairingCode`].
    PairingCode(oneshot::Sender<Result<String, SendError>>),
    /// [`Reply::MessageSent`].
    MessageSent(oneshot::Sender<Result<SendResponse, SendError>>),
    /// [`Reply::OnWhatsApp`].
    OnWhatsApp(oneshot::Sender<Result<Vec<ContactStatus>, SendError>>),
    /// [`Reply::Group`].
    Group(oneshot::Sender<Result<GroupInfo, SendError>>),
    /// [`Reply::Participants`].
    Participants(oneshot::Sender<Result<Vec<GroupParticipant>, SendError>>),
}

impl Responder {
    /// Hands the request's outcome to its caller. `Err(())` when the caller stopped waiting.
    pub(crate) fn send(self, result: Result<Reply, SendError>) -> Result<(), ()> {
        let reply = match result {
            Ok(reply) => reply,
            Err(e) => return self.fail(e),
        };
        match (self, reply) {
            (Self::Done(tx), _) => tx.send(Ok(())).map_err(drop),
            (Self::Iq(tx), Reply::Iq(node)) => tx.send(Ok(node)).map_err(drop),
            (Self::PairingCode(tx), Reply::PairingCode(code)) => tx.send(Ok(code)).map_err(drop),
            (Self::MessageSent(tx), Reply::MessageSent { id, timestamp }) => {
                tx.send(Ok(SendResponse { id, timestamp })).map_err(drop)
            }
            (Self::OnWhatsApp(tx), Reply::OnWhatsApp(found)) => tx.send(Ok(found)).map_err(drop),
            (Self::Group(tx), Reply::Group(info)) => tx.send(Ok(info)).map_err(drop),
            (Self::Participants(tx), Reply::Participants(p)) => tx.send(Ok(p)).map_err(drop),
            (responder, reply) => {
                tracing::error!(?reply, "client: a request got the reply of another kind");
                responder.fail(SendError::ReplyMismatch)
            }
        }
    }

    /// Hands `error` to the caller. `Err(())` when the caller stopped waiting.
    fn fail(self, error: SendError) -> Result<(), ()> {
        match self {
            Self::Done(tx) => tx.send(Err(error)).map_err(drop),
            Self::Iq(tx) => tx.send(Err(error)).map_err(drop),
            Self::PairingCode(tx) => tx.send(Err(error)).map_err(drop),
            Self::MessageSent(tx) => tx.send(Err(error)).map_err(drop),
            Self::OnWhatsApp(tx) => tx.send(Err(error)).map_err(drop),
            Self::Group(tx) => tx.send(Err(error)).map_err(drop),
            Self::Participants(tx) => tx.send(Err(error)).map_err(drop),
        }
    }
}

/// The server's acknowledgement of a sent message (05 §8).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendResponse {
    /// The message id.
    pub id: MessageId,
    /// The server's timestamp of the ack (`t`), unix seconds; 0 if absent.
    pub timestamp: u64,
}

/// How to send a message ([`Client::send_message_with`]). Build with
/// `SendOptions::default()` and the setters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendOptions {
    /// The message id to use; `None` draws a fresh one (05 §4). Reusing an id re-sends
    /// the same message (the server deduplicates by id).
    pub id: Option<MessageId>,
}

impl SendOptions {
    /// Use this message id instead of drawing one.
    #[must_use]
    pub fn id(mut self, id: MessageId) -> Self {
        self.id = Some(id);
        self
    }
}

/// Connection status shared with the handles.
#[derive(Debug, Clone, Default)]
pub(crate) struct Status {
    pub(crate) connected: bool,
    pub(crate) jid: Option<Jid>,
}

/// Builds a [`Client`]; see [`Client::builder`].
#[derive(Clone)]
pub struct ClientBuilder {
    store: Arc<dyn Store>,
    url: String,
    tls_roots: Vec<Vec<u8>>,
    trust_root: TrustRoot,
    device: DeviceConfig,
    timing: Timing,
    reconnect: ReconnectPolicy,
    event_capacity: usize,
    media: crate::media::TransferConfig,
    prekey_batch: u32,
    history: crate::history::HistoryConfig,
    auto_reject_calls: bool,
    persist: Option<Arc<dyn crate::store::Persist>>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &self.url)
            .field("trust_root", &self.trust_root)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Server URL. Default [`DEFAULT_URL`]. `wss://` URLs use TLS (rustls) and trust the
    /// Mozilla root program (webpki-roots) plus any [`tls_root_certificate`]; `ws://` is plain
    /// TCP (the sandbox).
    ///
    /// [`tls_root_certificate`]: Self::tls_root_certificate
    #[must_use]
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// Also trust this DER-encoded X.509 certificate as a TLS root for `wss://` URLs (e.g. a
    /// self-signed certificate of a TLS proxy in front of the sandbox), in addition to the
    /// webpki roots. May be called several times. This is the TLS layer only: the Noise
    /// certificate chain is checked against [`trust_root`](Self::trust_root).
    /// A certificate that does not parse makes [`connect`](Self::connect) fail with
    /// [`ConnectError::Transport`].
    #[must_use]
    pub fn tls_root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.tls_roots.push(der.into());
        self
    }

    /// Root that must sign the server's certificate chain. Default WhatsApp's production root.
    #[must_use]
    pub fn trust_root(mut self, trust_root: TrustRoot) -> Self {
        self.trust_root = trust_root;
        self
    }

    /// The name the phone shows for this device in its list of linked devices.
    #[must_use]
    pub fn device_name(mut self, name: impl Into<String>) -> Self {
        self.device.name = name.into();
        self
    }

    /// Everything about how the device presents itself.
    #[must_use]
    pub fn device(mut self, device: DeviceConfig) -> Self {
        self.device = device;
        self
    }

    /// The WhatsApp Web version sent in the login and registration payloads
    /// (`UserAgent.appVersion`, 03 §2.2): `[primary, secondary, tertiary]`, e.g.
    /// `[2, 3000, 1_045_649_367]` (the default). When the server answers
    /// `<failure reason="405"/>` the client stops with
    /// [`CloseReason::ClientOutdated`], credentials kept; set a newer version here and
    /// connect again. [`crate::conn::parse_app_version`] reads the `2.3000.x` form.
    #[must_use]
    pub fn app_version(mut self, version: [u32; 3]) -> Self {
        self.device.app_version = version;
        self
    }

    /// Reject every incoming call offer at once (`<call><reject>`, whatsmeow `RejectCall`);
    /// the offer is still reported as [`Event::Call`](crate::Event::Call) with
    /// `auto_rejected`. Default off.
    #[must_use]
    pub fn auto_reject_calls(mut self, reject: bool) -> Self {
        self.auto_reject_calls = reject;
        self
    }

    /// Timer values (QR rotation, keepalive, IQ timeout); tests shorten them.
    #[must_use]
    pub fn timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// Backoff between reconnect attempts.
    #[must_use]
    pub fn reconnect_policy(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// Media transfer settings: the URL scheme (`http` for wa-sandbox's media host) and
    /// HTTP timeouts. Default: `https`, as WhatsApp's media hosts.
    #[must_use]
    pub fn media(mut self, media: crate::media::TransferConfig) -> Self {
        self.media = media;
        self
    }

    /// Shorthand for the media URL scheme of [`Self::media`].
    #[must_use]
    pub fn media_scheme(mut self, scheme: crate::media::Scheme) -> Self {
        self.media.scheme = scheme;
        self
    }

    /// One-time prekeys per upload (default `prekeys::UPLOAD_BATCH`,
    /// 812, WA Web's value; 04 §4.3). Lower it for many short-lived or test clients: each
    /// key costs about 80 bytes in a `MemoryStore`.
    #[must_use]
    pub fn prekey_batch(mut self, count: u32) -> Self {
        self.prekey_batch = count.max(1);
        self
    }

    /// How history-sync chunks are processed: the inflate cap and whether message bodies are
    /// kept in [`Event::HistorySync`](crate::Event::HistorySync) (`keep_messages = false`
    /// opts out of message history; tokens, PN↔LID mappings and the NCT salt are stored
    /// either way). Default: 64 MiB cap, messages kept.
    #[must_use]
    pub fn history(mut self, history: crate::history::HistoryConfig) -> Self {
        self.history = history;
        self
    }

    /// How the connection's store writes are made durable. The connection never writes
    /// itself: it stages each write in memory, hands it to the driver, and holds back every
    /// frame and event that depends on it (the ciphertext of an advanced ratchet, a receipt
    /// and ack after a decrypt, a pair-success reply after the credentials) until `persist`
    /// reports it durable. Default: [`BlockingPersist`](crate::store::BlockingPersist) over
    /// the builder's store (`Store::apply` on tokio's blocking pool, one flush per write).
    /// A server with many sessions on one database passes a handle of one group committer
    /// so their writes share flushes.
    #[must_use]
    pub fn persist(mut self, persist: Arc<dyn crate::store::Persist>) -> Self {
        self.persist = Some(persist);
        self
    }

    /// Capacity of the event channel (default 64). The driver waits when it is full.
    #[must_use]
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(1);
        self
    }

    /// Spawn the driver task and open the first connection. Resolves once its Noise
    /// handshake succeeded; everything after that arrives as an [`Event`](crate::Event). Must be called
    /// inside a tokio runtime.
    ///
    /// # Errors
    /// [`ConnectError`] when the first attempt fails (for `wss://` URLs this includes TLS
    /// errors, as [`ConnectError::Transport`]); the driver is gone then.
    pub async fn connect(self) -> Result<(Client, Events), ConnectError> {
        let tls = transport::tls_config(&self.tls_roots)?;
        let (cmd_tx, cmd_rx) = mpsc::channel(32);
        let (ev_tx, ev_rx) = mpsc::channel(self.event_capacity);
        let jid = self
            .store
            .credentials()
            .ok()
            .flatten()
            .and_then(|c| c.id.clone())
            .and_then(|id| id.parse().ok());
        let (status_tx, status_rx) = watch::channel(Status {
            connected: false,
            jid,
        });
        let (first_tx, first_rx) = oneshot::channel();
        let media = Arc::new(crate::media::Transfer::new(&self.media));
        let store = Arc::downgrade(&self.store);
        let driver = driver::Driver::new(
            driver::Settings {
                persist: self.persist.unwrap_or_else(|| {
                    Arc::new(crate::store::BlockingPersist::new(self.store.clone()))
                }),
                store: self.store,
                url: self.url,
                tls,
                trust_root: self.trust_root,
                device: self.device,
                timing: self.timing,
                policy: self.reconnect,
                prekey_batch: self.prekey_batch,
                history: self.history,
                auto_reject_calls: self.auto_reject_calls,
                media: media.clone(),
            },
            cmd_rx,
            ev_tx,
            status_tx,
            first_tx,
        );
        tokio::spawn(driver.run());
        match first_rx.await {
            Ok(Ok(())) => Ok((
                Client {
                    commands: cmd_tx,
                    status: status_rx,
                    media,
                    store: rich::StoreHandle(store),
                },
                Events { rx: ev_rx },
            )),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ConnectError::DriverStopped),
        }
    }
}

/// A cheap, cloneable handle to a running client. Commands go to the driver task over a
/// channel; every method is safe to call from any task.
#[derive(Debug, Clone)]
pub struct Client {
    /// Boxed, as [`Events`]' channel: a block of 32 unboxed commands is about 4.5 KiB.
    commands: mpsc::Sender<Box<Command>>,
    status: watch::Receiver<Status>,
    /// HTTP client and cached `media_conn`, shared by the clones of this handle.
    media: Arc<crate::media::Transfer>,
    /// The store, read by the poll builders (a poll's message secret, `client::rich`).
    store: rich::StoreHandle,
}

impl Client {
    /// Start building a client over `store` (a [`MemoryStore`](crate::MemoryStore), a
    /// `SledStore`, or your own [`Store`]).
    pub fn builder(store: Arc<dyn Store>) -> ClientBuilder {
        ClientBuilder {
            store,
            url: DEFAULT_URL.to_owned(),
            tls_roots: Vec::new(),
            trust_root: TrustRoot::default(),
            device: DeviceConfig::default(),
            timing: Timing::default(),
            reconnect: ReconnectPolicy::default(),
            event_capacity: 64,
            media: crate::media::TransferConfig::default(),
            prekey_batch: crate::prekeys::UPLOAD_BATCH,
            history: crate::history::HistoryConfig::default(),
            auto_reject_calls: false,
            persist: None,
        }
    }

    /// Sends `request` to the driver and waits for its outcome, typed by `responder` (the
    /// [`Responder`] variant for the request's reply).
    async fn request<T>(
        &self,
        request: Request,
        responder: fn(oneshot::Sender<Result<T, SendError>>) -> Responder,
    ) -> Result<T, SendError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Box::new(Command::Request {
                request,
                reply: responder(tx),
            }))
            .await
            .map_err(|_| SendError::NotConnected)?;
        rx.await.unwrap_or(Err(SendError::NotConnected))
    }

    /// Ask for an 8-character code to link this (unpaired) device by phone number instead of a
    /// QR (03 §5). `phone` is the account's number in international form; non-digits are
    /// ignored. Returns the code as `XXXX-XXXX` once the server accepted the request.
    ///
    /// # Errors
    /// [`SendError::NotPairing`] when the device is already paired,
    /// [`SendError::Pair`] for an invalid number, [`SendError::Rejected`], [`SendError::Timeout`].
    pub async fn request_pairing_code(&self, phone: &str) -> Result<String, SendError> {
        self.request(
            Request::PairingCode {
                phone: phone.to_owned(),
            },
            Responder::PairingCode,
        )
        .await
    }

    /// Unlink this device: tell the server, wipe the store, stop ([`Event::LoggedOut`](crate::Event::LoggedOut)).
    ///
    /// # Errors
    /// [`SendError::NotLoggedIn`] when not connected.
    pub async fn logout(&self) -> Result<(), SendError> {
        self.request(Request::Logout, Responder::Done).await
    }

    /// Close the connection and stop the driver ([`Event::Stopped`](crate::Event::Stopped)). Idempotent.
    pub async fn shutdown(&self) {
        let (done, rx) = oneshot::channel();
        if self
            .commands
            .send(Box::new(Command::Shutdown { done }))
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }

    /// Whether the client is logged in right now.
    pub fn is_connected(&self) -> bool {
        self.status.borrow().connected
    }

    /// Own phone-number device JID, once paired.
    pub fn jid(&self) -> Option<Jid> {
        self.status.borrow().jid.clone()
    }

    /// Send an IQ and wait for its `result` (low-level). An `id` is added if missing.
    ///
    /// # Errors
    /// [`SendError::Rejected`] for an error response, [`SendError::Timeout`],
    /// [`SendError::NotLoggedIn`], [`SendError::Closed`].
    pub async fn send_iq(&self, iq: Node) -> Result<Node, SendError> {
        self.request(Request::Iq(iq), Responder::Iq).await
    }

    /// Send a text message (`conversation`) to a user or group and wait for the server's
    /// ack (05 §6-§8). Returns the message id; delivery and read progress arrive as
    /// [`Event::MessageStatus`](crate::Event::MessageStatus).
    ///
    /// # Errors
    /// [`SendError::NoDevices`] when the recipient has no device we can encrypt for,
    /// [`SendError::InvalidRecipient`], [`SendError::Rejected`] for an ack with an error
    /// code, [`SendError::Timeout`], [`SendError::NotLoggedIn`], [`SendError::Closed`].
    pub async fn send_text(
        &self,
        to: &Jid,
        text: impl Into<String>,
    ) -> Result<MessageId, SendError> {
        self.send_message(to, content::text(text)).await
    }

    /// Send any `wa::Message` (see [`message::content`](crate::message::content) for
    /// replies, mentions, locations and contacts) and wait for the server's ack.
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub async fn send_message(
        &self,
        to: &Jid,
        message: wa::Message,
    ) -> Result<MessageId, SendError> {
        self.send_message_with(to, message, SendOptions::default())
            .await
            .map(|sent| sent.id)
    }

    /// [`send_message`](Self::send_message) with [`SendOptions`] (e.g. a chosen id); returns
    /// the id and the server timestamp of the ack.
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub async fn send_message_with(
        &self,
        to: &Jid,
        message: wa::Message,
        options: SendOptions,
    ) -> Result<SendResponse, SendError> {
        self.request(
            Request::SendMessage {
                to: to.clone(),
                message: Box::new(message),
                id: options.id,
            },
            Responder::MessageSent,
        )
        .await
    }

    /// Send a read receipt for messages `ids` from `sender` in `chat` (05 §10.3). In 1:1
    /// chats `sender` may be `None`; in groups pass the participant who sent them.
    ///
    /// # Errors
    /// [`SendError::InvalidInput`] for an empty `ids`, [`SendError::NotLoggedIn`].
    pub async fn mark_read(
        &self,
        chat: &Jid,
        sender: Option<&Jid>,
        ids: &[MessageId],
    ) -> Result<(), SendError> {
        self.request(
            Request::MarkRead {
                chat: chat.clone(),
                sender: sender.cloned(),
                ids: ids.iter().map(|i| i.0.clone()).collect(),
            },
            Responder::Done,
        )
        .await
    }

    /// Which of these phone numbers (any formatting) are on WhatsApp (usync contact query,
    /// 06 §4): `(number as given, Some(user JID))` for registered numbers, `None` otherwise,
    /// in the order given.
    ///
    /// # Errors
    /// [`SendError::Rejected`], [`SendError::Timeout`], [`SendError::NotLoggedIn`].
    pub async fn is_on_whatsapp(
        &self,
        phones: &[&str],
    ) -> Result<Vec<(String, Option<Jid>)>, SendError> {
        let asked: Vec<String> = phones.iter().map(|p| (*p).to_owned()).collect();
        let found = self
            .request(Request::IsOnWhatsApp(asked.clone()), Responder::OnWhatsApp)
            .await?;
        Ok(asked
            .into_iter()
            .map(|phone| {
                let digits = crate::usync::digits(&phone);
                let jid = found
                    .iter()
                    .filter(|c: &&ContactStatus| c.registered)
                    .find(|c| crate::usync::digits(&c.query) == digits)
                    .and_then(|c| c.jid.clone());
                (phone, jid)
            })
            .collect())
    }

    /// Create a group with `subject` and the given members (06 §1.3); we are its creator.
    ///
    /// # Errors
    /// [`SendError::Rejected`] (e.g. 406 for a subject over 25 characters),
    /// [`SendError::Timeout`], [`SendError::BadResponse`].
    pub async fn create_group(
        &self,
        subject: &str,
        participants: &[Jid],
    ) -> Result<GroupInfo, SendError> {
        self.request(
            Request::CreateGroup {
                subject: subject.to_owned(),
                participants: participants.to_vec(),
            },
            Responder::Group,
        )
        .await
    }

    /// Fetch a group's metadata (06 §1.2).
    ///
    /// # Errors
    /// [`SendError::Rejected`] (404 no such group, 403 not a member), [`SendError::Timeout`].
    pub async fn group_metadata(&self, group: &Jid) -> Result<GroupInfo, SendError> {
        self.request(Request::GroupMetadata(group.clone()), Responder::Group)
            .await
    }

    /// Add members to a group (06 §1.4). Per-member failures are in the result.
    ///
    /// # Errors
    /// [`SendError::Rejected`] (403 when we are not an admin), [`SendError::Timeout`].
    pub async fn add_participants(
        &self,
        group: &Jid,
        users: &[Jid],
    ) -> Result<Vec<GroupParticipant>, SendError> {
        self.update_participants(group, ParticipantAction::Add, users)
            .await
    }

    /// Remove members from a group (06 §1.4). Our next message to the group uses a new
    /// sender key, so removed members cannot read it (04 §9.6).
    ///
    /// # Errors
    /// As [`add_participants`](Self::add_participants).
    pub async fn remove_participants(
        &self,
        group: &Jid,
        users: &[Jid],
    ) -> Result<Vec<GroupParticipant>, SendError> {
        self.update_participants(group, ParticipantAction::Remove, users)
            .await
    }

    async fn update_participants(
        &self,
        group: &Jid,
        action: ParticipantAction,
        users: &[Jid],
    ) -> Result<Vec<GroupParticipant>, SendError> {
        self.request(
            Request::UpdateParticipants {
                group: group.clone(),
                action,
                participants: users.to_vec(),
            },
            Responder::Participants,
        )
        .await
    }

    /// Marks a chat read (`true`) or unread on every device of the account, through
    /// app-state sync (`["markChatAsRead", chat]`, shared/protocol/08 §7). Unlike
    /// [`mark_read`](Self::mark_read) this sends no receipt to the sender.
    ///
    /// # Errors
    /// As [`chat_action`](Self::chat_action).
    pub async fn mark_chat_read(&self, chat: &Jid, read: bool) -> Result<(), SendError> {
        self.chat_action(crate::appstate::ChatAction::MarkRead {
            chat: chat.clone(),
            read,
        })
        .await
    }

    /// Archives (also unpins) or unarchives a chat through app-state sync.
    ///
    /// # Errors
    /// As [`chat_action`](Self::chat_action).
    pub async fn archive_chat(&self, chat: &Jid, archived: bool) -> Result<(), SendError> {
        self.chat_action(crate::appstate::ChatAction::Archive {
            chat: chat.clone(),
            archived,
        })
        .await
    }

    /// Mutes a chat for `duration` (`Some(Duration::MAX)` = forever) or unmutes it (`None`),
    /// through app-state sync; the end time is computed from this machine's clock.
    ///
    /// # Errors
    /// As [`chat_action`](Self::chat_action).
    pub async fn mute_chat(
        &self,
        chat: &Jid,
        duration: Option<std::time::Duration>,
    ) -> Result<(), SendError> {
        let until_ms = duration.map(|d| {
            if d == std::time::Duration::MAX {
                -1
            } else {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                i64::try_from((now + d).as_millis()).unwrap_or(i64::MAX)
            }
        });
        self.chat_action(crate::appstate::ChatAction::Mute {
            chat: chat.clone(),
            until_ms,
        })
        .await
    }

    /// Pins or unpins a chat through app-state sync.
    ///
    /// # Errors
    /// As [`chat_action`](Self::chat_action).
    pub async fn pin_chat(&self, chat: &Jid, pinned: bool) -> Result<(), SendError> {
        self.chat_action(crate::appstate::ChatAction::Pin {
            chat: chat.clone(),
            pinned,
        })
        .await
    }

    /// Sends one app-state chat change and waits until the server accepted it
    /// ([`Request::ChatAction`]: built on the local state, rebuilt on a 409 conflict).
    ///
    /// # Errors
    /// [`SendError::InvalidInput`] before our primary shared a sync key,
    /// [`SendError::Rejected`], [`SendError::Timeout`], [`SendError::NotLoggedIn`].
    pub async fn chat_action(&self, action: crate::appstate::ChatAction) -> Result<(), SendError> {
        self.request(Request::ChatAction(action), Responder::Done)
            .await
    }

    /// Announce this device available (online) or unavailable, with the stored push name
    /// (`<presence>`, whatsmeow `SendPresence`). The client already announces itself
    /// available once per connection when the push name is known; call this to go
    /// offline (peers then see "last seen") or back online.
    ///
    /// # Errors
    /// [`SendError::NotLoggedIn`], [`SendError::NotConnected`].
    pub async fn set_presence(&self, available: bool) -> Result<(), SendError> {
        self.request(Request::SetPresence { available }, Responder::Done)
            .await
    }

    /// Subscribe to a contact's presence (`<presence type="subscribe">`, with the
    /// trusted-contact token held for it, 07 §2.8). Updates arrive as
    /// [`Event::Presence`](crate::Event::Presence) for the rest of the connection.
    ///
    /// # Errors
    /// [`SendError::NotLoggedIn`], [`SendError::NotConnected`].
    pub async fn subscribe_presence(&self, contact: &Jid) -> Result<(), SendError> {
        self.request(Request::SubscribePresence(contact.clone()), Responder::Done)
            .await
    }

    /// Show typing, recording or paused in a chat (`<chatstate>`, whatsmeow
    /// `SendChatPresence`).
    ///
    /// # Errors
    /// [`SendError::NotLoggedIn`], [`SendError::NotConnected`].
    pub async fn send_chat_state(
        &self,
        chat: &Jid,
        state: crate::presence::ChatState,
    ) -> Result<(), SendError> {
        self.request(
            Request::ChatState {
                to: chat.clone(),
                state,
            },
            Responder::Done,
        )
        .await
    }

    /// Reject an incoming call (`<call><reject call-id call-creator count="0">`, whatsmeow
    /// `RejectCall`, Baileys `rejectCall`): `caller` and `call_id` as in the
    /// [`Event::Call`](crate::Event::Call) of the offer.
    ///
    /// # Errors
    /// [`SendError::NotLoggedIn`], [`SendError::NotConnected`].
    pub async fn reject_call(&self, caller: &Jid, call_id: &str) -> Result<(), SendError> {
        self.request(
            Request::RejectCall {
                caller: caller.clone(),
                call_id: call_id.to_owned(),
            },
            Responder::Done,
        )
        .await
    }

    /// Send a stanza without waiting for a response (low-level).
    ///
    /// # Errors
    /// [`SendError::NotLoggedIn`], [`SendError::NotConnected`].
    pub async fn send_node(&self, node: Node) -> Result<(), SendError> {
        self.request(Request::Stanza(node), Responder::Done).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responder_hands_over_the_typed_reply() {
        let (tx, mut rx) = oneshot::channel();
        Responder::MessageSent(tx)
            .send(Ok(Reply::MessageSent {
                id: MessageId("3EB0AA".to_owned()),
                timestamp: 1_700_000_000,
            }))
            .expect("receiver alive");
        assert_eq!(
            rx.try_recv().expect("sent"),
            Ok(SendResponse {
                id: MessageId("3EB0AA".to_owned()),
                timestamp: 1_700_000_000,
            })
        );
    }

    #[test]
    fn responder_passes_errors_and_flags_a_reply_of_another_kind() {
        let (tx, mut rx) = oneshot::channel();
        Responder::Iq(tx)
            .send(Err(SendError::Timeout))
            .expect("receiver alive");
        assert_eq!(rx.try_recv().expect("sent"), Err(SendError::Timeout));

        let (tx, mut rx) = oneshot::channel();
        Responder::Group(tx)
            .send(Ok(Reply::Done))
            .expect("receiver alive");
        assert_eq!(rx.try_recv().expect("sent"), Err(SendError::ReplyMismatch));

        let (tx, mut rx) = oneshot::channel();
        Responder::Done(tx)
            .send(Ok(Reply::Done))
            .expect("receiver alive");
        assert_eq!(rx.try_recv().expect("sent"), Ok(()));
    }

    #[test]
    fn responder_reports_a_caller_that_stopped_waiting() {
        let (tx, rx) = oneshot::channel::<Result<String, SendError>>();
        drop(rx);
        assert!(
            Responder::PairingCode(tx)
                .send(Ok(Reply::PairingCode("ABCD-EFGH".to_owned())))
                .is_err()
        );
    }
}
