//! The one task that owns the [`Connection`], the WebSocket and the timers (STYLE §2 Driver;
//! quinn `ConnectionDriver::poll`): feed inputs, write transmits, re-arm the timer, forward
//! events, then wait on socket / commands / timer; between connections, act on the
//! [`CloseReason`] (reconnect now, back off, or stop and wipe).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::RngExt as _;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument as _;

use super::reconnect::{Backoff, Next, ReconnectPolicy};
use super::transport::WsTransport;
use super::{Command, ConnectError, Status};
use crate::Event;
use crate::conn::{self, Config, Connection, DeviceConfig, Request, RequestId, SendError, Timing};
use crate::noise::TrustRoot;
use crate::stanza::CloseReason;
use crate::store::Store;

pub(crate) struct Settings {
    pub(crate) store: Arc<dyn Store>,
    /// Makes the connection's staged writes durable (`Persistence::Deferred`).
    pub(crate) persist: Arc<dyn crate::store::Persist>,
    pub(crate) url: String,
    /// TLS settings for `wss://` URLs.
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) trust_root: TrustRoot,
    pub(crate) device: DeviceConfig,
    pub(crate) timing: Timing,
    pub(crate) policy: ReconnectPolicy,
    pub(crate) prekey_batch: u32,
    /// History-sync processing ([`Config::history`]).
    pub(crate) history: crate::history::HistoryConfig,
    /// Reject incoming call offers by themselves ([`Config::auto_reject_calls`]).
    pub(crate) auto_reject_calls: bool,
    /// The media transfer of the `Client`, for the connection's blob downloads.
    pub(crate) media: Arc<crate::media::Transfer>,
}

/// What the driver's own background tasks (blob downloads) send back to it.
enum Internal {
    /// An IQ a download needs (`media_conn`), sent on the current connection.
    Iq {
        node: crate::binary::Node,
        reply: oneshot::Sender<Result<crate::binary::Node, SendError>>,
    },
    /// Plaintext of a download of connection attempt `attempt`, not yet verified.
    Data {
        attempt: u64,
        id: conn::DownloadId,
        chunk: Vec<u8>,
    },
    /// The end of a download of connection attempt `attempt`: verified, or why not.
    Downloaded {
        attempt: u64,
        id: conn::DownloadId,
        result: Result<(), String>,
    },
}

/// How one connection attempt ended.
enum AttemptEnd {
    /// The socket could not be opened.
    ConnectFailed(super::TransportError),
    /// The connection closed (or the socket dropped) with this reason.
    Closed(CloseReason),
    /// The embedder asked to stop.
    Shutdown(Option<oneshot::Sender<()>>),
}

type Waiting = HashMap<RequestId, super::Responder>;

pub(crate) struct Driver {
    settings: Settings,
    commands: mpsc::Receiver<Box<Command>>,
    events: mpsc::Sender<Box<Event>>,
    status: watch::Sender<Status>,
    first: Option<oneshot::Sender<Result<(), ConnectError>>>,
    backoff: Backoff,
    routing_info: Option<Vec<u8>>,
    /// Whether some `Client` handle may still send commands.
    commands_open: bool,
    /// Messaging caches handed from one connection to the next.
    caches: Option<conn::Caches>,
    /// Background tasks (downloads) report here.
    /// Bounded, so a download streams no faster than the connection decodes it.
    internal_tx: mpsc::Sender<Internal>,
    internal_rx: mpsc::Receiver<Internal>,
    /// Connection attempts so far: download results of an earlier one are dropped.
    attempt: u64,
}

impl Driver {
    pub(crate) fn new(
        settings: Settings,
        commands: mpsc::Receiver<Box<Command>>,
        events: mpsc::Sender<Box<Event>>,
        status: watch::Sender<Status>,
        first: oneshot::Sender<Result<(), ConnectError>>,
    ) -> Self {
        let (internal_tx, internal_rx) = mpsc::channel(16);
        Self {
            internal_tx,
            internal_rx,
            attempt: 0,
            settings,
            commands,
            events,
            status,
            first: Some(first),
            backoff: Backoff::default(),
            routing_info: None,
            commands_open: true,
            caches: None,
        }
    }

    /// Nobody can observe or steer the client any more: every `Client` handle and the
    /// `Events` stream were dropped.
    fn abandoned(&self) -> bool {
        !self.commands_open && self.events.is_closed()
    }

    async fn emit(&self, event: Event) {
        // The embedder may have dropped its `Events`; then nobody listens and that is fine.
        let _ = self.events.send(Box::new(event)).await;
    }

    fn set_connected(&self, connected: bool) {
        self.status.send_modify(|s| s.connected = connected);
    }

    pub(crate) async fn run(mut self) {
        let mut attempt: u64 = 0;
        let done = loop {
            attempt += 1;
            let span = tracing::info_span!("connection", attempt);
            let end = self.run_attempt().instrument(span).await;
            self.set_connected(false);
            let reason = match end {
                AttemptEnd::Shutdown(done) => break done,
                AttemptEnd::ConnectFailed(e) => {
                    if let Some(first) = self.first.take() {
                        let _ = first.send(Err(ConnectError::Transport(e)));
                        return;
                    }
                    tracing::warn!(error = %e, "client: cannot open the WebSocket");
                    CloseReason::ConnectionLost
                }
                AttemptEnd::Closed(reason) => reason,
            };
            if let Some(first) = self.first.take() {
                let _ = first.send(Err(ConnectError::Closed(reason)));
                return;
            }
            let jitter = rand::rng().random::<f64>();
            match self.backoff.next(&self.settings.policy, &reason, jitter) {
                Next::Reconnect(delay) => {
                    tracing::info!(%reason, ?delay, "client: reconnecting");
                    self.emit(Event::Disconnected {
                        reason,
                        reconnecting: true,
                    })
                    .await;
                    if let Some(done) = self.wait(delay).await {
                        break done;
                    }
                }
                Next::Stop { wipe } => {
                    tracing::info!(%reason, wipe, "client: stopping");
                    if wipe {
                        if let Err(e) = self.settings.store.wipe() {
                            tracing::error!(error = %e, "client: cannot wipe the store");
                        }
                        self.status.send_modify(|s| s.jid = None);
                        self.emit(Event::LoggedOut { reason }).await;
                    } else {
                        self.emit(Event::Disconnected {
                            reason,
                            reconnecting: false,
                        })
                        .await;
                    }
                    break None;
                }
            }
        };
        self.emit(Event::Stopped).await;
        // Later commands fail with NotConnected: the receiver is dropped with `self`.
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    /// Sleep `delay` between connections while answering commands. `Some` = shut down.
    async fn wait(&mut self, delay: Duration) -> Option<Option<oneshot::Sender<()>>> {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return None,
                cmd = self.commands.recv(), if self.commands_open => match cmd.map(|c| *c) {
                    None => {
                        // Every `Client` was dropped; keep going while `Events` is read.
                        self.commands_open = false;
                        if self.abandoned() {
                            return Some(None);
                        }
                    }
                    Some(Command::Shutdown { done }) => return Some(Some(done)),
                    Some(Command::Request { reply, .. }) => {
                        let _ = reply.send(Err(SendError::NotConnected));
                    }
                },
            }
        }
    }

    fn config(&self) -> Config {
        let mut seed = [0u8; 32];
        rand::rng().fill(&mut seed);
        let unix_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Config {
            trust_root: self.settings.trust_root,
            unix_time,
            rng_seed: seed,
            device: self.settings.device.clone(),
            timing: self.settings.timing.clone(),
            routing_info: self.routing_info.clone(),
            prekey_batch: self.settings.prekey_batch,
            history: self.settings.history.clone(),
            auto_reject_calls: self.settings.auto_reject_calls,
            persistence: crate::store::Persistence::Deferred,
            ..Config::default()
        }
    }

    async fn run_attempt(&mut self) -> AttemptEnd {
        let ws = match WsTransport::connect(&self.settings.url, &self.settings.tls).await {
            Ok(ws) => ws,
            Err(e) => return AttemptEnd::ConnectFailed(e),
        };
        self.attempt += 1;
        let mut conn = Connection::new(self.config(), self.settings.store.clone(), Instant::now());
        if let Some(caches) = self.caches.take() {
            conn.set_caches(caches);
        }
        let end = self.drive(ws, &mut conn).await;
        self.caches = Some(conn.take_caches());
        end
    }

    async fn drive(&mut self, mut ws: WsTransport, conn: &mut Connection) -> AttemptEnd {
        let mut waiting = Waiting::new();
        // The store write being made durable (`Persistence::Deferred`): at most one at a
        // time, so writes reach the store in order; what the connection stages meanwhile
        // goes into the next one (one commit for many stanzas).
        let mut in_flight: Option<InFlight> = None;
        loop {
            // 0. writes, 1. transmits, 2. timer, 3. events (Connection call order).
            if in_flight.is_none()
                && let Some(write) = conn.poll_write()
            {
                in_flight = Some((write.seq, self.settings.persist.persist(write.batch)));
            }
            // Feed every released transmit, then flush once: a burst of stanzas (a message's
            // receipt and ack, many sends) costs one write.
            let socket_ok = write_transmits(&mut ws, conn).await;
            let deadline = conn.poll_timeout();
            while let Some(event) = conn.poll_event() {
                self.forward(event, &mut waiting).await;
            }
            if let Some(info) = conn.routing_info() {
                self.routing_info = Some(info.to_vec());
            }
            if conn.close_reason().is_some() {
                // What the connection staged before it closed (a pair-success's credentials
                // before the 515, a last message's state) is made durable, and what waited
                // for it leaves, before the socket closes.
                self.settle(conn, &mut in_flight, &mut waiting).await;
                if socket_ok {
                    write_transmits(&mut ws, conn).await;
                }
                let reason = conn
                    .close_reason()
                    .cloned()
                    .unwrap_or(CloseReason::ConnectionLost);
                ws.close().await;
                return AttemptEnd::Closed(reason);
            }
            if !socket_ok {
                // The server may have sent a stream error (503, 401, ...) just before closing,
                // and our write raced its close: read what is still buffered so the real
                // reason wins over a generic `ConnectionLost`.
                drain_after_write_failure(&mut ws, conn).await;
                self.settle(conn, &mut in_flight, &mut waiting).await;
                let reason = conn
                    .close_reason()
                    .cloned()
                    .unwrap_or(CloseReason::ConnectionLost);
                return AttemptEnd::Closed(reason);
            }
            if self.abandoned() {
                let _ = conn.send(Instant::now(), Request::Close);
                self.settle(conn, &mut in_flight, &mut waiting).await;
                ws.close().await;
                return AttemptEnd::Shutdown(None);
            }
            let timer = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                result = wait_persisted(&mut in_flight), if in_flight.is_some() => {
                    if let Some((seq, _)) = in_flight.take() {
                        match result {
                            Ok(()) => conn.handle_durable(seq),
                            Err(e) => conn.handle_write_failed(&e),
                        }
                    }
                }
                input = ws.recv() => match input {
                    Some(Ok(bytes)) => conn.handle_input(Instant::now(), &bytes),
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "client: read failed");
                        self.settle(conn, &mut in_flight, &mut waiting).await;
                        return AttemptEnd::Closed(CloseReason::ConnectionLost);
                    }
                    None => {
                        tracing::debug!("client: server closed the socket");
                        self.settle(conn, &mut in_flight, &mut waiting).await;
                        return AttemptEnd::Closed(CloseReason::ConnectionLost);
                    }
                },
                cmd = self.commands.recv(), if self.commands_open => match cmd.map(|c| *c) {
                    None => {
                        // Every `Client` was dropped; keep the connection while `Events` is
                        // read, stop once it is dropped too.
                        self.commands_open = false;
                        if self.abandoned() {
                            let _ = conn.send(Instant::now(), Request::Close);
                            self.settle(conn, &mut in_flight, &mut waiting).await;
                            ws.close().await;
                            return AttemptEnd::Shutdown(None);
                        }
                    }
                    Some(Command::Shutdown { done }) => {
                        let _ = conn.send(Instant::now(), Request::Close);
                        self.settle(conn, &mut in_flight, &mut waiting).await;
                        write_transmits(&mut ws, conn).await;
                        ws.close().await;
                        return AttemptEnd::Shutdown(Some(done));
                    }
                    Some(Command::Request { request, reply }) => {
                        match conn.send(Instant::now(), request) {
                            Ok(id) => {
                                waiting.insert(id, reply);
                            }
                            Err(e) => {
                                let _ = reply.send(Err(e));
                            }
                        }
                    }
                },
                () = timer => conn.handle_timeout(Instant::now()),
                Some(internal) = self.internal_rx.recv() => match internal {
                    Internal::Iq { node, reply } => match conn.send(Instant::now(), Request::Iq(node)) {
                        Ok(id) => {
                            waiting.insert(id, super::Responder::Iq(reply));
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    },
                    Internal::Data { attempt, id, chunk } => {
                        if attempt == self.attempt {
                            conn.handle_download_data(id, &chunk);
                        }
                    }
                    Internal::Downloaded { attempt, id, result } => {
                        if attempt == self.attempt {
                            conn.handle_download(Instant::now(), id, result.map(|()| Vec::new()));
                        }
                    }
                },
            }
        }
    }

    /// Makes every write `conn` staged durable (the one in flight, then the rest, in order)
    /// and forwards the events that waited for them. Stops at the first failure (the
    /// connection then closes with `StoreFailed` and what depended on the write stays held).
    async fn settle(
        &mut self,
        conn: &mut Connection,
        in_flight: &mut Option<InFlight>,
        waiting: &mut Waiting,
    ) {
        loop {
            if in_flight.is_none() {
                *in_flight = conn
                    .poll_write()
                    .map(|w| (w.seq, self.settings.persist.persist(w.batch)));
            }
            let Some((seq, future)) = in_flight.take() else {
                break;
            };
            match future.await {
                Ok(()) => conn.handle_durable(seq),
                Err(e) => {
                    conn.handle_write_failed(&e);
                    break;
                }
            }
        }
        while let Some(event) = conn.poll_event() {
            self.forward(event, waiting).await;
        }
    }

    async fn forward(&mut self, event: conn::Event, waiting: &mut Waiting) {
        let event = match event {
            conn::Event::HandshakeComplete { registering } => {
                tracing::debug!(registering, "client: handshake complete");
                if let Some(first) = self.first.take() {
                    let _ = first.send(Ok(()));
                }
                return;
            }
            conn::Event::PreKeyCount { count } => {
                tracing::debug!(count, "client: pre-keys on the server");
                return;
            }
            conn::Event::RequestDone { id, result } => {
                if let Some(reply) = waiting.remove(&id) {
                    let _ = reply.send(result);
                }
                return;
            }
            conn::Event::Download { id, media } => {
                self.spawn_download(id, *media);
                return;
            }
            conn::Event::Public(event) => event,
        };
        match &event {
            Event::PairSuccess { jid, .. } => {
                self.status.send_modify(|s| s.jid = Some(jid.clone()));
            }
            Event::Connected { jid } => {
                self.backoff.reset();
                self.status.send_modify(|s| {
                    s.connected = true;
                    s.jid = Some(jid.clone());
                });
            }
            _ => {}
        }
        self.emit(event).await;
    }
}

impl Driver {
    /// Downloads a blob the connection asked for in the background (the `Client`'s media
    /// path: `media_conn` over this driver, every host, verified while streaming) and streams
    /// its plaintext to the connection of the same attempt in pieces of at most 64 KiB, then
    /// the verdict: a 50 MB history chunk is never whole in memory.
    fn spawn_download(&self, id: conn::DownloadId, media: conn::BlobDownload) {
        use tokio::io::AsyncReadExt as _;
        const PIECE: usize = 64 * 1024;
        let transfer = self.settings.media.clone();
        let tx = self.internal_tx.clone();
        let attempt = self.attempt;
        tokio::spawn(async move {
            let iq_tx = tx.clone();
            let fetch = move |node: crate::binary::Node| {
                let iq_tx = iq_tx.clone();
                async move {
                    let (reply, rx) = oneshot::channel();
                    iq_tx
                        .send(Internal::Iq { node, reply })
                        .await
                        .map_err(|_| SendError::NotConnected)?;
                    rx.await.unwrap_or(Err(SendError::NotConnected))
                }
            };
            let (writer, mut reader) = tokio::io::duplex(PIECE);
            let download = async move {
                let mut writer = writer;
                let result = transfer.download_to(fetch, &media.0, &mut writer).await;
                drop(writer);
                result
            };
            let data_tx = tx.clone();
            let forward = async move {
                let mut buf = vec![0_u8; PIECE];
                loop {
                    match reader.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let chunk = buf[..n].to_vec();
                            if data_tx
                                .send(Internal::Data { attempt, id, chunk })
                                .await
                                .is_err()
                            {
                                break;
                            }
                        }
                    }
                }
            };
            let (result, ()) = tokio::join!(download, forward);
            let result = result.map(drop).map_err(|e| e.to_string());
            if let Err(reason) = &result {
                tracing::warn!(%reason, "client: blob download failed");
            }
            let _ = tx
                .send(Internal::Downloaded {
                    attempt,
                    id,
                    result,
                })
                .await;
        });
    }
}

/// The write being made durable: its sequence number and the future of its commit.
type InFlight = (u64, crate::store::PersistFuture);

/// The outcome of the write in flight (pending forever when there is none; the `select!`
/// guard keeps that branch off then).
async fn wait_persisted(in_flight: &mut Option<InFlight>) -> Result<(), crate::store::StoreError> {
    match in_flight {
        Some((_, future)) => future.await,
        None => std::future::pending().await,
    }
}

/// Feeds every transmit `conn` releases to `ws`, then flushes once. Returns whether the
/// socket took them.
async fn write_transmits(ws: &mut WsTransport, conn: &mut Connection) -> bool {
    let mut wrote = false;
    while let Some(bytes) = conn.poll_transmit() {
        wrote = true;
        if let Err(e) = ws.feed(bytes).await {
            tracing::debug!(error = %e, "client: write failed");
            return false;
        }
    }
    if wrote && let Err(e) = ws.flush().await {
        tracing::debug!(error = %e, "client: flush failed");
        return false;
    }
    true
}

/// How long [`drain_after_write_failure`] keeps reading a socket whose write failed.
const DRAIN_AFTER_WRITE_FAILURE: std::time::Duration = std::time::Duration::from_millis(200);

/// Feeds `conn` whatever the peer sent before the socket broke, until the socket reports its
/// end, the connection has a close reason, or [`DRAIN_AFTER_WRITE_FAILURE`] passes.
async fn drain_after_write_failure(ws: &mut WsTransport, conn: &mut Connection) {
    let deadline = tokio::time::Instant::now() + DRAIN_AFTER_WRITE_FAILURE;
    while conn.close_reason().is_none() {
        match tokio::time::timeout_at(deadline, ws.recv()).await {
            Ok(Some(Ok(bytes))) => conn.handle_input(Instant::now(), &bytes),
            Ok(Some(Err(_)) | None) | Err(_) => break,
        }
    }
}
