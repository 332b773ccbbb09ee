//! [`AppState`]: the session registry (one `Client` per session), the server database,
//! the event hub (SSE + durable webhooks), metrics, and the embedded sandbox in `--sandbox`
//! mode.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::Instrument as _;
use wa_engine::noise::TrustRoot;
use wa_engine::{Client, ClientBuilder, SledDatabase, SledStore, Store, StoreError};
#[cfg(feature = "sandbox")]
use wa_sandbox::{Sandbox, SandboxConfig, SandboxError, SandboxHandle};
use zeroize::Zeroizing;

use crate::config::{ServerConfig, Upstream};
use crate::db::{DbError, MessageRecord, ServerDb, SessionRecord};
use crate::error::ApiError;
use crate::metrics::{Gauges, Metrics};
#[cfg(feature = "sandbox")]
use crate::sandbox_state::{SandboxFile, SandboxStateError};
use crate::session::{self, Session, SessionStatus};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The server database could not be opened.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A session's engine store could not be opened.
    #[error("session {id}: {source}")]
    Store {
        /// The session.
        id: String,
        /// Why.
        source: StoreError,
    },
    /// The shared engine store database (`<data>/engine`) could not be opened.
    #[error("engine store database: {0}")]
    Stores(#[source] StoreError),
    /// The data directory could not be created.
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
    /// The embedded sandbox did not start.
    #[cfg(feature = "sandbox")]
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The saved state of the embedded sandbox is unreadable.
    #[cfg(feature = "sandbox")]
    #[error(transparent)]
    SandboxState(#[from] SandboxStateError),
    /// The configuration is inconsistent.
    #[error("configuration: {0}")]
    Config(&'static str),
    /// Another process (another `wa-server` on the same `--data-dir`) holds the data
    /// directory.
    #[error(
        "the data directory {} is already in use by another wa-server{}: stop that \
         instance first, or give this one its own --data-dir",
        path.display(),
        pid.map_or_else(String::new, |p| format!(" (pid {p})"))
    )]
    DataDirInUse {
        /// The data directory.
        path: PathBuf,
        /// The other process, when its lock file names it.
        pid: Option<u32>,
    },
}

/// Name of the lock file in the data directory.
const LOCK_FILE: &str = "wa-server.lock";

/// Takes the data directory's lock (`<data-dir>/wa-server.lock`, an exclusive OS file lock
/// held while the returned file is open) and writes this process's id into it.
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, StartError> {
    use std::io::{Read as _, Seek as _, Write as _};
    let path = dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(StartError::DataDirInUse {
                path: dir.to_owned(),
                pid: text.trim().parse().ok(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
    }
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    file.sync_all()?;
    Ok(file)
}

/// Shared state of the HTTP app: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("data_dir", &self.inner.config.data_dir)
            .field("upstream_url", &self.inner.upstream.url)
            .finish_non_exhaustive()
    }
}

/// Everything behind an [`AppState`], grouped by concern.
struct Inner {
    config: ServerConfig,
    /// The WhatsApp server sessions connect to.
    upstream: UpstreamLink,
    /// The server database and the engine stores.
    storage: Storage,
    /// The live sessions and their supervisor tasks.
    registry: Registry,
    /// Event delivery: SSE and durable webhooks.
    delivery: Delivery,
    /// The inline media download workers.
    inline_downloads: crate::media::inline::Downloads,
    /// One-time codes: the hashing pepper and the per-session rate limit.
    otp: OtpState,
    /// HMAC key of signed pairing links (kept in the server database).
    link_key: Zeroizing<[u8; 32]>,
    metrics: Metrics,
    /// Send limits' in-memory state (`crate::limits`).
    limits: crate::limits::Limits,
    /// Readiness and shutdown.
    run: RunState,
    /// The data directory's lock, held while the state lives.
    _lock: std::fs::File,
}

/// Where sessions connect, resolved from [`Upstream`] at start.
struct UpstreamLink {
    /// WebSocket URL.
    url: String,
    /// Root key the server's certificate chain must verify against.
    trust_root: TrustRoot,
    /// The embedded sandbox (`--sandbox` only).
    #[cfg(feature = "sandbox")]
    sandbox: Option<EmbeddedSandbox>,
}

impl UpstreamLink {
    /// Resolves `config.upstream`, starting the embedded sandbox for [`Upstream::Sandbox`].
    async fn start(config: &ServerConfig) -> Result<Self, StartError> {
        Ok(match &config.upstream {
            Upstream::WhatsApp => {
                Self::remote(wa_engine::DEFAULT_URL.to_owned(), TrustRoot::WHATSAPP)
            }
            Upstream::Custom { url, trust_root } => Self::remote(url.clone(), *trust_root),
            #[cfg(feature = "sandbox")]
            Upstream::Sandbox => {
                let sandbox =
                    EmbeddedSandbox::start(&config.data_dir, config.sandbox_phone_sync).await?;
                Self {
                    url: sandbox.handle.ws_url().to_owned(),
                    trust_root: sandbox.handle.trust_root(),
                    sandbox: Some(sandbox),
                }
            }
        })
    }

    /// A server this process does not run.
    fn remote(url: String, trust_root: TrustRoot) -> Self {
        Self {
            url,
            trust_root,
            #[cfg(feature = "sandbox")]
            sandbox: None,
        }
    }
}

/// Persistence.
struct Storage {
    /// The server database (`<data>/server`): sessions, messages, OTPs, webhooks, media.
    db: ServerDb,
    /// Every session's engine store, one tree each (`<data>/engine`).
    stores: SledDatabase,
    /// The group committer of `stores`: every session's engine writes (ratchets, prekeys,
    /// app state) made durable together, one sled flush per group
    /// (`wa_engine::store::GroupCommitter`, issue "A durable pipeline").
    committer: wa_engine::store::GroupCommitter,
}

/// The session registry.
struct Registry {
    /// Sessions by id.
    sessions: RwLock<BTreeMap<String, Arc<Session>>>,
    /// Supervisor tasks by session id.
    tasks: Mutex<HashMap<String, JoinHandle<()>>>,
    /// Serialises session creation and deletion.
    lifecycle: tokio::sync::Mutex<()>,
}

/// Event delivery: the fan-out off the sessions' event loops, and the webhook worker (the
/// outbox itself lives in the database).
struct Delivery {
    /// Wakes the worker when the outbox gains entries (or at shutdown).
    outbox: Notify,
    /// The HTTP client deliveries are posted with (guarded resolver, no redirects).
    http: reqwest::Client,
    /// The HTTP client media URLs are fetched with (guarded resolver; redirects are
    /// followed by `crate::media::fetch`, one checked hop at a time).
    fetch: reqwest::Client,
    /// Which addresses both may reach (`crate::egress`).
    guard: Arc<crate::egress::TargetGuard>,
    /// The worker task.
    worker: Mutex<Option<JoinHandle<()>>>,
    /// The event fan-out (outbox writes, SSE) off the sessions' event loops.
    fanout: crate::fanout::Fanout,
}

/// OTP secrets and limits.
struct OtpState {
    /// Pepper of the stored code hashes (kept in the server database).
    pepper: Zeroizing<[u8; 32]>,
    /// Send times of OTPs per session, for the per-session limit.
    window: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// The server's own lifecycle.
struct RunState {
    /// Set once started.
    ready: AtomicBool,
    /// `true` once shutdown has begun.
    shutdown: watch::Sender<bool>,
}

/// The embedded simulated server of `--sandbox` mode and the saving of its accounts.
#[cfg(feature = "sandbox")]
struct EmbeddedSandbox {
    handle: SandboxHandle,
    /// Where its accounts are saved (`<data>/sandbox/state.json`).
    file: Arc<SandboxFile>,
    /// The task saving them on change.
    saver: Mutex<Option<JoinHandle<()>>>,
}

#[cfg(feature = "sandbox")]
impl EmbeddedSandbox {
    /// Starts the sandbox (its phones' app-state/history onboarding on with `phone_sync`)
    /// and restores its saved accounts from `data_dir`.
    async fn start(data_dir: &std::path::Path, phone_sync: bool) -> Result<Self, StartError> {
        let handle = Sandbox::start(SandboxConfig::default().with_phone_sync(phone_sync)).await?;
        tracing::info!(ws_url = %handle.ws_url(), control_url = %handle.control_url(), "embedded sandbox started");
        let file = Arc::new(SandboxFile::new(data_dir));
        let (loader, router) = (file.clone(), handle.router().clone());
        let accounts = tokio::task::spawn_blocking(move || loader.load(&router))
            .await
            .map_err(|_| StartError::Config("sandbox state load task failed"))??;
        tracing::info!(accounts, "sandbox state restored");
        // From now on a linked device is on disk before the sandbox answers its pairing.
        handle
            .router()
            .set_durability(Some(file.clone() as Arc<dyn wa_sandbox::Durability>));
        Ok(Self {
            handle,
            file,
            saver: Mutex::new(None),
        })
    }

    /// Starts the task that saves the accounts whenever they change, until `shutdown`.
    fn spawn_saver(&self, shutdown: watch::Receiver<bool>) {
        let saver = tokio::spawn(
            self.file
                .clone()
                .run(self.handle.router().clone(), shutdown),
        );
        *self.saver.lock().unwrap_or_else(PoisonError::into_inner) = Some(saver);
    }

    /// Waits for the saver task to end.
    async fn join_saver(&self) {
        let saver = self
            .saver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(saver) = saver {
            let _ = saver.await;
        }
    }
}

impl AppState {
    /// Opens the data directory, starts the embedded sandbox if configured, restores every
    /// stored session (paired ones log in again without a QR) and starts the webhook worker.
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`StartError`].
    pub async fn start(config: ServerConfig) -> Result<Self, StartError> {
        if let Some(cc) = &config.default_country_code
            && !crate::phone::valid_country_code(cc)
        {
            return Err(StartError::Config(
                "default country code must be 1-3 digits not starting with 0",
            ));
        }
        // Everything written from here on is private (0600/0700) whatever the umask; what an
        // older version left readable by others is made private too (crate::fsmode).
        crate::fsmode::restrict_umask();
        let data_dir = config.data_dir.clone();
        tokio::task::spawn_blocking(move || crate::fsmode::secure_tree(&data_dir))
            .await
            .map_err(|_| StartError::Config("data directory permission task failed"))??;
        // One server per data directory: a second one stops here, with a clear message,
        // before it touches anything (sled's own lock would say "could not acquire lock").
        let lock_dir = config.data_dir.clone();
        let lock = tokio::task::spawn_blocking(move || lock_data_dir(&lock_dir))
            .await
            .map_err(|_| StartError::Config("data directory lock task failed"))??;
        // Temporary media files left by a crash.
        let _ = std::fs::remove_dir_all(config.data_dir.join("tmp"));
        let db_dir = config.data_dir.join("server");
        let db = match tokio::task::spawn_blocking(move || ServerDb::open(&db_dir))
            .await
            .map_err(|_| StartError::Config("database open task failed"))?
        {
            Ok(db) => db,
            // A process that does not take our lock (an older version) holds sled's
            // (sled 0.34 `Config::try_lock` reports it only in words).
            Err(DbError::Sled(sled::Error::Io(e)))
                if e.to_string().starts_with("could not acquire lock") =>
            {
                return Err(StartError::DataDirInUse {
                    path: config.data_dir.clone(),
                    pid: None,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let interrupted = crate::db::fail_interrupted_sends(&db)?;
        if interrupted > 0 {
            tracing::warn!(
                count = interrupted,
                "sends interrupted by the last stop marked failed"
            );
            db.flush().await?;
        }
        let indexed = crate::msglog::migrate(&db)?;
        if indexed > 0 {
            tracing::info!(
                count = indexed,
                "message log: indexed messages of an older version"
            );
        }
        let stores_dir = config.data_dir.join("engine");
        let stores = tokio::task::spawn_blocking(move || SledDatabase::open(&stores_dir))
            .await
            .map_err(|_| StartError::Config("store database open task failed"))?
            .map_err(StartError::Stores)?;
        let committer =
            wa_engine::store::GroupCommitter::spawn(Arc::new(stores.clone()), config.group_commit);
        let upstream = UpstreamLink::start(&config).await?;
        let guard = Arc::new(crate::egress::TargetGuard::new(&config.egress));
        if config.egress.allow_private_targets {
            tracing::warn!(
                "--allow-private-targets: webhooks and media URLs may reach loopback, private \
                 and link-local addresses (cloud metadata included)"
            );
        }
        let user_agent = concat!("wa-server/", env!("CARGO_PKG_VERSION"));
        let http = crate::egress::guarded(reqwest::Client::builder(), &guard, &config.egress)
            .timeout(config.webhooks.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(user_agent)
            .build()
            .map_err(|_| StartError::Config("HTTP client"))?;
        let fetch = crate::egress::guarded(reqwest::Client::builder(), &guard, &config.egress)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(crate::media::fetch::CONNECT_TIMEOUT)
            .user_agent(user_agent)
            .build()
            .map_err(|_| StartError::Config("media fetch HTTP client"))?;
        let metrics = Metrics::new(&config.metrics);
        let (event_queue, inline_concurrency, inline_queue) = (
            config.event_queue,
            config.media.inline_concurrency,
            config.media.inline_queue,
        );
        let state = Self {
            inner: Arc::new(Inner {
                link_key: db.secret("link_key")?,
                otp: OtpState {
                    pepper: db.secret("otp_pepper")?,
                    window: Mutex::new(HashMap::new()),
                },
                config,
                upstream,
                storage: Storage {
                    db,
                    committer,
                    stores,
                },
                registry: Registry {
                    sessions: RwLock::new(BTreeMap::new()),
                    tasks: Mutex::new(HashMap::new()),
                    lifecycle: tokio::sync::Mutex::new(()),
                },
                delivery: Delivery {
                    outbox: Notify::new(),
                    http,
                    fetch,
                    guard,
                    worker: Mutex::new(None),
                    fanout: crate::fanout::Fanout::new(event_queue),
                },
                inline_downloads: crate::media::inline::Downloads::new(
                    inline_concurrency,
                    inline_queue,
                ),
                metrics,
                limits: crate::limits::Limits::default(),
                run: RunState {
                    ready: AtomicBool::new(false),
                    shutdown: watch::channel(false).0,
                },
                _lock: lock,
            }),
        };
        let mut records = Vec::new();
        for item in state.inner.storage.db.sessions.iter() {
            let (_, value) = item.map_err(DbError::from)?;
            records.push(crate::db::decode::<SessionRecord>(
                &value,
                "session record",
            )?);
        }
        for record in records {
            let id = record.id.clone();
            let store = state
                .open_store(&id)
                .await
                .map_err(|source| StartError::Store {
                    id: id.clone(),
                    source,
                })?;
            state.spawn_session(record, store);
        }
        #[cfg(feature = "sandbox")]
        if let Some(sb) = &state.inner.upstream.sandbox {
            sb.spawn_saver(state.shutdown_watch());
        }
        // Events of the sessions restored above wait in the queues until now.
        state.inner.delivery.fanout.start(&state);
        state.inner.inline_downloads.start(&state);
        tokio::spawn(crate::msglog::run_cleanup(state.clone()));
        // Always: messages queued by an earlier run go out even if queueing is now off.
        tokio::spawn(crate::sendqueue::run(state.clone()));
        let worker = tokio::spawn(crate::webhook::run(state.clone()));
        *state
            .inner
            .delivery
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(worker);
        state.inner.run.ready.store(true, Ordering::SeqCst);
        Ok(state)
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The embedded sandbox (`--sandbox` mode only).
    #[cfg(feature = "sandbox")]
    pub fn sandbox(&self) -> Option<&SandboxHandle> {
        self.inner.upstream.sandbox.as_ref().map(|sb| &sb.handle)
    }

    /// True when an embedded sandbox runs (`--sandbox`).
    #[cfg(feature = "sandbox")]
    pub fn runs_sandbox(&self) -> bool {
        self.inner.upstream.sandbox.is_some()
    }

    /// Always false: built without the `sandbox` feature.
    #[cfg(not(feature = "sandbox"))]
    pub fn runs_sandbox(&self) -> bool {
        false
    }

    /// The WebSocket URL sessions connect to.
    pub fn upstream_url(&self) -> &str {
        &self.inner.upstream.url
    }

    /// True once started and until shutdown begins.
    pub fn is_ready(&self) -> bool {
        self.inner.run.ready.load(Ordering::SeqCst) && !*self.inner.run.shutdown.borrow()
    }

    /// Resolves once [`shutdown`](Self::shutdown) has begun (ends SSE streams so the HTTP
    /// server can drain).
    pub fn shutting_down(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.inner.run.shutdown.subscribe();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }

    /// Marks the server as shutting down: `/ready` fails and event streams end.
    pub fn begin_shutdown(&self) {
        self.inner.run.shutdown.send_replace(true);
    }

    /// Graceful stop: ends event streams, shuts every client down (credentials stay), stops
    /// the webhook worker (undelivered events stay in the outbox) and flushes the database.
    pub async fn shutdown(&self) {
        self.begin_shutdown();
        self.inner.delivery.outbox.notify_one();
        let sessions: Vec<Arc<Session>> = self.read_sessions().values().cloned().collect();
        futures_util::future::join_all(sessions.iter().map(|s| s.stop())).await;
        let tasks: Vec<JoinHandle<()>> = self
            .inner
            .registry
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, t)| t)
            .collect();
        for task in tasks {
            let _ = task.await;
        }
        // Sessions are stopped: emit what the workers still hold, then close the fan-out.
        self.inner.inline_downloads.close().await;
        self.inner.delivery.fanout.close().await;
        let worker = self
            .inner
            .delivery
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(worker) = worker {
            let _ = worker.await;
        }
        #[cfg(feature = "sandbox")]
        if let Some(sb) = &self.inner.upstream.sandbox {
            sb.join_saver().await;
        }
        self.save_sandbox().await;
        let db = self.inner.storage.db.clone();
        match tokio::task::spawn_blocking(move || db.flush_blocking()).await {
            Ok(Ok(())) => tracing::info!("server database flushed"),
            Ok(Err(e)) => tracing::error!(error = %e, "server database flush failed"),
            Err(e) => tracing::error!(error = %e, "server database flush task failed"),
        }
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        *self.inner.run.shutdown.borrow()
    }

    pub(crate) fn shutdown_watch(&self) -> watch::Receiver<bool> {
        self.inner.run.shutdown.subscribe()
    }

    pub(crate) fn db(&self) -> &ServerDb {
        &self.inner.storage.db
    }

    /// The send limits (`crate::limits`).
    pub(crate) fn limits(&self) -> &crate::limits::Limits {
        &self.inner.limits
    }

    /// Admits one send of `session` to `to` under the configured send limits
    /// (`crate::limits::Limits::admit`).
    ///
    /// # Errors
    /// [`ApiError::SendLimited`], [`ApiError::Internal`].
    pub(crate) fn admit_send(&self, session: &str, to: &wa_engine::Jid) -> Result<(), ApiError> {
        self.inner.limits.admit(
            &self.inner.config.send_limits,
            &self.inner.storage.db,
            session,
            &to.to_non_ad().to_string(),
        )
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.delivery.http
    }

    /// The client media URLs are fetched with (no redirects followed by itself).
    pub(crate) fn fetch_client(&self) -> &reqwest::Client {
        &self.inner.delivery.fetch
    }

    /// Which addresses webhook deliveries and media fetches may reach.
    pub(crate) fn target_guard(&self) -> &crate::egress::TargetGuard {
        &self.inner.delivery.guard
    }

    pub(crate) fn link_key(&self) -> &[u8; 32] {
        &self.inner.link_key
    }

    pub(crate) fn otp_pepper(&self) -> &[u8; 32] {
        &self.inner.otp.pepper
    }

    pub(crate) fn outbox_notify(&self) -> &Notify {
        &self.inner.delivery.outbox
    }

    pub(crate) fn fanout(&self) -> &crate::fanout::Fanout {
        &self.inner.delivery.fanout
    }

    pub(crate) fn inline_downloads(&self) -> &crate::media::inline::Downloads {
        &self.inner.inline_downloads
    }

    pub(crate) fn otp_window(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        self.inner
            .otp
            .window
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A client builder over `store` for the configured upstream.
    pub(crate) fn client_builder(&self, store: Arc<dyn Store>) -> ClientBuilder {
        let persist = self.inner.storage.committer.persist_for(store.clone());
        let builder = Client::builder(store)
            .persist(persist)
            .url(self.inner.upstream.url.clone())
            .trust_root(self.inner.upstream.trust_root)
            .device_name(self.inner.config.device_name.clone())
            .reconnect_policy(self.inner.config.reconnect.clone())
            .auto_reject_calls(self.inner.config.auto_reject_calls);
        let builder = match self.inner.config.wa_version {
            Some(version) => builder.app_version(version),
            None => builder,
        };
        // A plain `ws://` server is a sandbox, whose media host speaks plain HTTP too.
        if self.inner.upstream.url.starts_with("ws://") {
            builder.media_scheme(wa_engine::media::Scheme::Http)
        } else {
            builder
        }
    }

    fn read_sessions(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Session>>> {
        self.inner
            .registry
            .sessions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write_sessions(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Session>>> {
        self.inner
            .registry
            .sessions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The session `id`.
    ///
    /// # Errors
    /// [`ApiError::SessionNotFound`].
    pub(crate) fn session(&self, id: &str) -> Result<Arc<Session>, ApiError> {
        self.read_sessions()
            .get(id)
            .cloned()
            .ok_or(ApiError::SessionNotFound)
    }

    /// Every session, by id.
    pub(crate) fn sessions(&self) -> Vec<Arc<Session>> {
        self.read_sessions().values().cloned().collect()
    }

    /// The stored token digest of session `id`.
    pub(crate) fn session_token_hash(&self, id: &str) -> Option<String> {
        self.read_sessions().get(id).map(|s| s.record().token_hash)
    }

    /// Where versions before the shared store database kept a session's store (one sled
    /// database per session); still opened if present, so an upgrade keeps its pairings.
    fn legacy_store_dir(&self, id: &str) -> PathBuf {
        self.inner.config.data_dir.join("sessions").join(id)
    }

    /// Opens session `id`'s engine store: its tree in the shared database, or its legacy
    /// directory if one exists.
    async fn open_store(&self, id: &str) -> Result<Arc<dyn Store>, StoreError> {
        let legacy = self.legacy_store_dir(id);
        let stores = self.inner.storage.stores.clone();
        let id = id.to_owned();
        let store = tokio::task::spawn_blocking(move || {
            if legacy.join("conf").exists() || legacy.join("db").exists() {
                SledStore::open(legacy)
            } else {
                stores.store(&id)
            }
        })
        .await
        .map_err(|e| StoreError::Open(Box::new(e)))??;
        Ok(Arc::new(store))
    }

    /// Removes session `id`'s engine store (shared tree and legacy directory).
    async fn remove_store(&self, id: &str) -> Result<(), ApiError> {
        let legacy = self.legacy_store_dir(id);
        let stores = self.inner.storage.stores.clone();
        let id = id.to_owned();
        tokio::task::spawn_blocking(move || {
            match std::fs::remove_dir_all(&legacy) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(ApiError::internal(e));
                }
                _ => {}
            }
            // The session's client may still be dropping its store handle.
            let mut waited = std::time::Duration::ZERO;
            loop {
                match stores.remove(&id) {
                    Err(StoreError::Locked) if waited < std::time::Duration::from_secs(5) => {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        waited += std::time::Duration::from_millis(20);
                    }
                    other => return other.map_err(ApiError::internal),
                }
            }
        })
        .await
        .map_err(ApiError::internal)?
    }

    fn spawn_session(&self, record: SessionRecord, store: Arc<dyn Store>) -> Arc<Session> {
        let (session, control) = Session::new(record);
        let span = tracing::info_span!("session", id = %session.id);
        let task = tokio::spawn(
            session::supervise(self.clone(), session.clone(), store, control).instrument(span),
        );
        self.write_sessions()
            .insert(session.id.clone(), session.clone());
        self.inner
            .registry
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(session.id.clone(), task);
        session
    }

    /// Creates, persists and starts a session.
    ///
    /// # Errors
    /// [`ApiError::SessionExists`], [`ApiError::SessionLimit`], [`ApiError::ShuttingDown`],
    /// [`ApiError::Internal`] when the store cannot be created.
    pub(crate) async fn create_session(
        &self,
        record: SessionRecord,
    ) -> Result<Arc<Session>, ApiError> {
        let _guard = self.inner.registry.lifecycle.lock().await;
        if self.is_shutting_down() {
            return Err(ApiError::ShuttingDown);
        }
        {
            let sessions = self.read_sessions();
            if sessions.contains_key(&record.id) {
                return Err(ApiError::SessionExists);
            }
            if sessions.len() >= self.inner.config.max_sessions {
                return Err(ApiError::SessionLimit);
            }
        }
        // A store without a record is left over from an interrupted delete: never reuse
        // its credentials for a new session.
        self.remove_store(&record.id).await?;
        let store = self
            .open_store(&record.id)
            .await
            .map_err(ApiError::internal)?;
        crate::db::ServerDb::put(&self.inner.storage.db.sessions, &record.id, &record)?;
        self.inner.storage.db.flush().await?;
        Ok(self.spawn_session(record, store))
    }

    /// Persists a changed session record (webhooks, token).
    ///
    /// # Errors
    /// [`ApiError::Internal`] on a database failure.
    pub(crate) async fn save_record(
        &self,
        session: &Session,
        record: SessionRecord,
    ) -> Result<(), ApiError> {
        crate::db::ServerDb::put(&self.inner.storage.db.sessions, &record.id, &record)?;
        self.inner.storage.db.flush().await?;
        *session
            .record
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = record;
        Ok(())
    }

    /// Stops a session, unlinks it first when `logout` and it is connected, and removes its
    /// records, outbox entries and store.
    ///
    /// # Errors
    /// [`ApiError::SessionNotFound`], [`ApiError::Internal`].
    pub(crate) async fn delete_session(&self, id: &str, logout: bool) -> Result<(), ApiError> {
        let _guard = self.inner.registry.lifecycle.lock().await;
        let session = self.session(id)?;
        if logout && let Ok(client) = session.connected_client() {
            let unlinked =
                tokio::time::timeout(std::time::Duration::from_secs(10), client.logout()).await;
            if !matches!(unlinked, Ok(Ok(()))) {
                tracing::warn!(session = %id, "delete: could not unlink the device; removing anyway");
            }
        }
        // The record goes first: a crash after this leaves only an orphan directory, which a
        // later create with the same id wipes.
        let db = &self.inner.storage.db;
        db.sessions.remove(id).map_err(DbError::from)?;
        db.flush().await?;
        self.write_sessions().remove(id);
        session.stop().await;
        let task = self
            .inner
            .registry
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        if let Some(task) = task {
            let _ = task.await;
        }
        let prefix = crate::db::prefix(id);
        for tree in [
            &db.messages,
            &db.otp,
            &db.hook_stats,
            &db.media,
            &db.msg_index,
            &db.msg_stats,
            &db.dialects,
        ] {
            ServerDb::remove_prefix(tree, &prefix)?;
        }
        crate::webhook::remove_session(db, id)?;
        db.flush().await?;
        self.otp_window().remove(id);
        self.inner.limits.forget(id);
        self.inner.metrics.forget_session(id);
        self.remove_store(id).await
    }

    /// Emits event `kind` of `session` (SSE and webhooks) and waits until it is durable
    /// (`crate::fanout::emit`); a session's event loop uses `crate::fanout::enqueue`.
    pub(crate) async fn emit(
        &self,
        session: &Session,
        kind: &'static str,
        data: serde_json::Value,
    ) {
        crate::fanout::emit(self, session, kind, data).await;
    }

    /// Writes the embedded sandbox's accounts and devices now if they changed
    /// (`--sandbox` only; failures are logged).
    pub(crate) async fn save_sandbox(&self) {
        #[cfg(feature = "sandbox")]
        if let Some(sb) = &self.inner.upstream.sandbox {
            sb.file.save_now(sb.handle.router()).await;
        }
    }

    /// Moves message `id` of `session` forward to `status` (`sent`, `delivered`, `read`,
    /// `played`, `failed`; never back, see [`crate::db::advance_message`]) and, when it
    /// moved, emits a `message_status` event. `by` is the device whose receipt moved it.
    /// Returns the updated record; database failures are logged.
    pub(crate) async fn advance_message(
        &self,
        session: &Session,
        id: &str,
        status: &str,
        error: Option<&str>,
        by: Option<String>,
    ) -> Option<MessageRecord> {
        let (record, data) = self.record_status(session, id, status, error, by)?;
        self.emit(session, "message_status", data).await;
        Some(record)
    }

    /// [`Self::advance_message`] for a session's event loop: the event is only enqueued
    /// (`crate::fanout::enqueue`), never waited for.
    pub(crate) async fn advance_message_queued(
        &self,
        session: &Session,
        id: &str,
        status: &str,
        by: Option<String>,
    ) -> Option<MessageRecord> {
        let (record, data) = self.record_status(session, id, status, None, by)?;
        crate::fanout::enqueue(self, session, "message_status", data).await;
        Some(record)
    }

    /// Records the status change; the updated record and its `message_status` event data
    /// when it moved.
    fn record_status(
        &self,
        session: &Session,
        id: &str,
        status: &str,
        error: Option<&str>,
        by: Option<String>,
    ) -> Option<(MessageRecord, serde_json::Value)> {
        let record = match crate::db::advance_message(
            &self.inner.storage.db.messages,
            &session.id,
            id,
            status,
            error,
        ) {
            Ok(Some(record)) => {
                crate::msglog::count_transition(&self.inner.storage.db, &session.id, &record);
                record
            }
            Ok(None) => return None,
            Err(e) => {
                tracing::error!(session = %session.id, id, error = %e, "cannot record a message status");
                return None;
            }
        };
        let data = serde_json::json!({
            "id": record.id,
            "to": record.to,
            "type": record.kind,
            "status": record.status,
            "error": record.error,
            "by": by,
            "updated_at": record.updated_at,
        });
        Some((record, data))
    }

    /// Values for `/metrics`.
    pub(crate) fn gauges(&self) -> Gauges {
        let mut counts: HashMap<&'static str, u64> = HashMap::new();
        let mut session_states = Vec::new();
        for s in self.read_sessions().values() {
            let status = s.live().status.as_str();
            *counts.entry(status).or_default() += 1;
            session_states.push((s.id.clone(), status));
        }
        Gauges {
            sessions: SessionStatus::ALL
                .iter()
                .map(|st| (st.as_str(), counts.get(st.as_str()).copied().unwrap_or(0)))
                .collect(),
            session_states,
            webhook_backlog: self.inner.storage.db.outbox.len() as u64,
            webhook_dead_letters: self.inner.storage.db.dead.len() as u64,
        }
    }
}
