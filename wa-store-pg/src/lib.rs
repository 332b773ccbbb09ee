//! PostgreSQL backend of wa-engine's store, for many sessions on one database (and, with
//! session leases, many nodes: issue "Past one machine").
//!
//! # Design
//!
//! wa-engine's [`Store`] is synchronous and its reads sit on the hot path of every stanza,
//! while a network database answers in a round trip. So a session's state is read from
//! memory and written through:
//!
//! - **Reads**: [`PgDatabase::open_store`] loads every row of the session once
//!   (asynchronously, before its connection starts) into an in-memory cache, a
//!   [`MemoryStore`] (compact: about 80 bytes per one-time prekey). Every [`Store`] read is
//!   served from it and never blocks.
//! - **Writes**: the connection stages its writes and hands them to the driver
//!   (`wa_engine::store::Persistence::Deferred`); [`PgStore::persist`] gives the driver a
//!   [`Persist`] handle that sends each batch to the database's committer and, once the
//!   transaction that holds it committed, applies it to the cache. The connection keeps
//!   serving its own reads from its overlay meanwhile, and holds back every frame that
//!   depends on the batch until the commit returned (the durability rule of
//!   shared/protocol/04-signal.md §8.4).
//! - **Group commit**: one committer per [`PgDatabase`], on its own thread with its own
//!   connection, takes every queued batch of every session (up to
//!   [`PgConfig::max_batches`]) and commits them in **one transaction**; a waiter is
//!   answered only after `COMMIT` returned.
//! - **Fencing**: every store has an epoch (`wa_stores.epoch`) that only grows
//!   ([`PgDatabase::take_over`]). A [`PgStore`] remembers the epoch it was opened with and
//!   every batch carries it; the transaction reads the current epochs `FOR SHARE` (so a
//!   take-over waits for the commit, and the commit sees the take-over's epoch if it came
//!   first) and refuses the batches of a store whose epoch moved on with
//!   [`PgError::Fenced`]. A node that lost a session can never store a stale ratchet.
//!
//! Direct [`Store::apply`] and [`Store::wipe`] calls (writes outside a connection, e.g.
//! the logout wipe) block the calling thread until their transaction committed; they are
//! rare, and the committer runs on its own thread, so they cannot deadlock a runtime.
//!
//! # Schema
//!
//! Versioned migrations (refinery, `migrations/V*.sql`) run at [`PgDatabase::connect`]:
//! `wa_stores(name, epoch)` and `wa_kv(store, key, value)`, keys in the engine's opaque
//! raw layout ([`StoreBatch::raw_ops`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;

use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{Client, NoTls, Statement};
use wa_engine::store::{
    Blob, Credentials, MemoryStore, Persist, PersistFuture, PreKeyCounters, ProtocolAddress, RawOp,
    SenderKeyName, Store, StoreBatch, StoreError,
};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Settings of a [`PgDatabase`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PgConfig {
    /// Most batches committed in one transaction (at least 1). Default 256.
    ///
    /// The committer takes what queued while the previous transaction ran, so under load
    /// one transaction (one WAL flush) serves many sessions; an idle database commits each
    /// batch alone at once. A bigger group holds its first waiter a little longer.
    pub max_batches: usize,
}

impl Default for PgConfig {
    fn default() -> Self {
        Self { max_batches: 256 }
    }
}

/// A failure of the PostgreSQL backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The database could not be reached or refused the login.
    #[error("cannot connect to PostgreSQL")]
    Connect(#[source] tokio_postgres::Error),
    /// A schema migration failed (nothing of it was applied).
    #[error("PostgreSQL schema migration failed")]
    Migrate(#[source] refinery::Error),
    /// A query failed during `op` (`"load"`, `"commit"`, `"take over"`, ...).
    #[error("PostgreSQL failed during {op}")]
    Query {
        /// What was being done.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The write was refused: the store was taken over since it was opened (its epoch in
    /// the database is `current`, the writer held `held`).
    #[error(
        "store {store} was taken over (epoch {current}, this writer holds {held}); write refused"
    )]
    Fenced {
        /// The store's name.
        store: String,
        /// The epoch the writer opened the store with.
        held: i64,
        /// The epoch in the database (0: the store is gone).
        current: i64,
    },
    /// The group transaction that held the write failed (nothing of the group was
    /// stored); the cause is shared by every write of the group.
    #[error("PostgreSQL group transaction failed")]
    Transaction(#[source] Arc<tokio_postgres::Error>),
    /// The committer thread stopped (its connection broke); open the database again.
    #[error("the PostgreSQL committer stopped")]
    Stopped,
    /// The committer thread could not be started.
    #[error("cannot start the PostgreSQL committer thread")]
    Thread(#[source] std::io::Error),
    /// The in-memory cache refused a write (never expected of a `MemoryStore`).
    #[error("store cache")]
    Cache(#[source] StoreError),
}

impl PgError {
    /// This error as a [`StoreError`] (what the engine's store calls return).
    fn into_store(self, op: &'static str) -> StoreError {
        StoreError::Backend {
            op,
            source: Box::new(self),
        }
    }
}

/// How a request is answered: a future's channel, or a blocked thread's.
enum Reply<T> {
    Async(oneshot::Sender<Result<T, PgError>>),
    Blocking(std_mpsc::Sender<Result<T, PgError>>),
}

impl<T> Reply<T> {
    fn send(self, result: Result<T, PgError>) {
        // The asker may have given up (a dropped future): nothing to do then.
        match self {
            Self::Async(tx) => {
                let _ = tx.send(result);
            }
            Self::Blocking(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

/// Rows of one store: its epoch and every `(key, value)`.
type Loaded = (i64, Vec<(Vec<u8>, Vec<u8>)>);

enum Request {
    /// Apply `batch` to `store` if its epoch is still `epoch`; the batch comes back for
    /// the cache.
    Commit {
        store: String,
        epoch: i64,
        batch: StoreBatch,
        reply: Reply<StoreBatch>,
    },
    /// Delete every row of `store` if its epoch is still `epoch`.
    Wipe {
        store: String,
        epoch: i64,
        reply: Reply<()>,
    },
    /// Create the store if missing; read its epoch and rows.
    Load { store: String, reply: Reply<Loaded> },
    /// Raise the store's epoch by one (creating it if missing); the new epoch.
    TakeOver { store: String, reply: Reply<i64> },
}

/// One PostgreSQL database holding the engine stores of many sessions, with its
/// group committer. Cheap to clone (a handle).
#[derive(Clone)]
pub struct PgDatabase {
    tx: mpsc::UnboundedSender<Request>,
}

impl std::fmt::Debug for PgDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDatabase").finish_non_exhaustive()
    }
}

impl PgDatabase {
    /// Connects to `url` (a libpq-style `postgres://user@host:port/db` URL or key=value
    /// string; no TLS: use a local socket or a trusted network), applies the pending
    /// schema migrations, and starts the committer thread with its own connection.
    ///
    /// # Errors
    /// [`PgError::Connect`], [`PgError::Migrate`], [`PgError::Thread`].
    pub async fn connect(url: &str, config: PgConfig) -> Result<Self, PgError> {
        let (mut client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(PgError::Connect)?;
        let driver = tokio::spawn(connection);
        let migrated = embedded::migrations::runner()
            .run_async(&mut client)
            .await
            .map_err(PgError::Migrate);
        drop(client);
        let _ = driver.await;
        migrated?;

        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let url = url.to_owned();
        let max = config.max_batches.max(1);
        std::thread::Builder::new()
            .name("wa-pg-commit".into())
            .spawn(move || committer_thread(&url, max, rx, ready_tx))
            .map_err(PgError::Thread)?;
        ready_rx.await.map_err(|_| PgError::Stopped)??;
        Ok(Self { tx })
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, PgError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(Reply::Async(tx)))
            .map_err(|_| PgError::Stopped)?;
        rx.await.map_err(|_| PgError::Stopped)?
    }

    fn ask_blocking<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, PgError> {
        let (tx, rx) = std_mpsc::channel();
        self.tx
            .send(make(Reply::Blocking(tx)))
            .map_err(|_| PgError::Stopped)?;
        rx.recv().map_err(|_| PgError::Stopped)?
    }

    /// Opens the store `name` (created if missing) at its current epoch: loads every row
    /// into the store's in-memory cache.
    ///
    /// # Errors
    /// [`PgError::Query`], [`PgError::Stopped`], [`PgError::Cache`].
    pub async fn open_store(&self, name: &str) -> Result<Arc<PgStore>, PgError> {
        let store = name.to_owned();
        let (epoch, rows) = self.ask(|reply| Request::Load { store, reply }).await?;
        let cache = MemoryStore::new();
        let mut batch = StoreBatch::new();
        for (key, value) in rows {
            batch.put_raw(key, value);
        }
        cache.apply(batch).map_err(PgError::Cache)?;
        Ok(Arc::new(PgStore {
            name: name.to_owned(),
            epoch,
            cache,
            db: self.clone(),
        }))
    }

    /// Takes the store `name` over: raises its epoch by one and returns the new one.
    /// Every [`PgStore`] opened before is fenced from then on (its writes fail with
    /// [`PgError::Fenced`]); open the store again to write.
    ///
    /// # Errors
    /// [`PgError::Query`], [`PgError::Stopped`].
    pub async fn take_over(&self, name: &str) -> Result<i64, PgError> {
        let store = name.to_owned();
        self.ask(|reply| Request::TakeOver { store, reply }).await
    }
}

/// One session's engine store in PostgreSQL: reads from memory, writes through the
/// database's committer, fenced by the epoch it was opened with (see the
/// [crate docs](crate)).
pub struct PgStore {
    name: String,
    epoch: i64,
    cache: MemoryStore,
    db: PgDatabase,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("name", &self.name)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// The store's name (`wa_stores.name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The epoch this store was opened with; its writes are refused once the database
    /// holds a higher one.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// The [`Persist`] handle of this store for `ClientBuilder::persist`: each batch is
    /// committed in a group transaction, then applied to the cache.
    pub fn persist(self: &Arc<Self>) -> Arc<dyn Persist> {
        Arc::new(PgPersist(self.clone()))
    }

    fn request_commit(&self, batch: StoreBatch, reply: Reply<StoreBatch>) -> Request {
        Request::Commit {
            store: self.name.clone(),
            epoch: self.epoch,
            batch,
            reply,
        }
    }
}

/// [`PgStore::persist`]'s handle.
struct PgPersist(Arc<PgStore>);

impl Persist for PgPersist {
    fn persist(&self, batch: StoreBatch) -> PersistFuture {
        let store = self.0.clone();
        if batch.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        let (tx, rx) = oneshot::channel();
        let sent = store
            .db
            .tx
            .send(store.request_commit(batch, Reply::Async(tx)));
        Box::pin(async move {
            sent.map_err(|_| PgError::Stopped.into_store("commit"))?;
            let batch = rx
                .await
                .map_err(|_| PgError::Stopped)
                .and_then(|r| r)
                .map_err(|e| e.into_store("commit"))?;
            store.cache.apply(batch)
        })
    }
}

impl Store for PgStore {
    fn credentials(&self) -> Result<Option<Credentials>, StoreError> {
        self.cache.credentials()
    }
    fn identity(&self, address: &ProtocolAddress) -> Result<Option<Blob>, StoreError> {
        self.cache.identity(address)
    }
    fn identity_devices(&self, name: &str) -> Result<Vec<u32>, StoreError> {
        self.cache.identity_devices(name)
    }
    fn session(&self, address: &ProtocolAddress) -> Result<Option<Blob>, StoreError> {
        self.cache.session(address)
    }
    fn session_devices(&self, name: &str) -> Result<Vec<u32>, StoreError> {
        self.cache.session_devices(name)
    }
    fn prekey(&self, id: u32) -> Result<Option<Blob>, StoreError> {
        self.cache.prekey(id)
    }
    fn prekey_ids(&self) -> Result<Vec<u32>, StoreError> {
        self.cache.prekey_ids()
    }
    fn prekey_counters(&self) -> Result<Option<PreKeyCounters>, StoreError> {
        self.cache.prekey_counters()
    }
    fn signed_prekey(&self, id: u32) -> Result<Option<Blob>, StoreError> {
        self.cache.signed_prekey(id)
    }
    fn signed_prekey_ids(&self) -> Result<Vec<u32>, StoreError> {
        self.cache.signed_prekey_ids()
    }
    fn sender_key(&self, name: &SenderKeyName) -> Result<Option<Blob>, StoreError> {
        self.cache.sender_key(name)
    }
    fn app_value(&self, namespace: &str, key: &[u8]) -> Result<Option<Blob>, StoreError> {
        self.cache.app_value(namespace, key)
    }
    fn app_keys(&self, namespace: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        self.cache.app_keys(namespace)
    }
    fn lid_for_pn(&self, pn_user: &str) -> Result<Option<String>, StoreError> {
        self.cache.lid_for_pn(pn_user)
    }
    fn pn_for_lid(&self, lid_user: &str) -> Result<Option<String>, StoreError> {
        self.cache.pn_for_lid(lid_user)
    }
    fn app_state_sync_key(&self, key_id: &[u8]) -> Result<Option<Blob>, StoreError> {
        self.cache.app_state_sync_key(key_id)
    }
    fn app_state_sync_key_ids(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.cache.app_state_sync_key_ids()
    }
    fn app_state_collection(&self, name: &str) -> Result<Option<Blob>, StoreError> {
        self.cache.app_state_collection(name)
    }
    fn tc_token(&self, jid: &str) -> Result<Option<Blob>, StoreError> {
        self.cache.tc_token(jid)
    }
    fn tc_token_jids(&self) -> Result<Vec<String>, StoreError> {
        self.cache.tc_token_jids()
    }
    fn nct_salt(&self) -> Result<Option<Blob>, StoreError> {
        self.cache.nct_salt()
    }

    /// Commits `batch` in the committer's next transaction, blocking this thread until
    /// `COMMIT` returned, then applies it to the cache.
    ///
    /// # Errors
    /// [`StoreError::Backend`] with a [`PgError`] cause ([`PgError::Fenced`] after a
    /// take-over).
    fn apply(&self, batch: StoreBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let batch = self
            .db
            .ask_blocking(|reply| self.request_commit(batch, reply))
            .map_err(|e| e.into_store("commit"))?;
        self.cache.apply(batch)
    }

    /// Deletes every row of the store (blocking until committed), then empties the cache.
    ///
    /// # Errors
    /// As [`apply`](Self::apply).
    fn wipe(&self) -> Result<(), StoreError> {
        let store = self.name.clone();
        let epoch = self.epoch;
        self.db
            .ask_blocking(|reply| Request::Wipe {
                store,
                epoch,
                reply,
            })
            .map_err(|e| e.into_store("wipe"))?;
        self.cache.wipe()
    }
}

// -------------------------------------------------------------------------------------------
// The committer

/// Prepared statements of the committer's connection.
struct Statements {
    put: Statement,
    delete: Statement,
    wipe: Statement,
    epochs: Statement,
}

fn committer_thread(
    url: &str,
    max: usize,
    mut rx: mpsc::UnboundedReceiver<Request>,
    ready: oneshot::Sender<Result<(), PgError>>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(PgError::Thread(e)));
            return;
        }
    };
    rt.block_on(async move {
        let (mut client, statements) = match open_committer(url).await {
            Ok(ok) => {
                let _ = ready.send(Ok(()));
                ok
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let mut group = Vec::with_capacity(max);
        while let Some(first) = rx.recv().await {
            group.push(first);
            while group.len() < max {
                match rx.try_recv() {
                    Ok(r) => group.push(r),
                    Err(_) => break,
                }
            }
            let mut writes = Vec::new();
            for request in group.drain(..) {
                match request {
                    Request::Load { store, reply } => reply.send(load(&client, &store).await),
                    Request::TakeOver { store, reply } => {
                        reply.send(take_over(&client, &store).await);
                    }
                    write => writes.push(write),
                }
            }
            if !writes.is_empty() {
                commit_group(&mut client, &statements, writes).await;
            }
            if client.is_closed() {
                tracing::error!("PostgreSQL committer: connection closed");
                break;
            }
        }
    });
}

async fn open_committer(url: &str) -> Result<(Client, Statements), PgError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(PgError::Connect)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::error!(error = %e, "PostgreSQL committer connection failed");
        }
    });
    let q = |source| PgError::Query {
        op: "prepare",
        source,
    };
    let statements = Statements {
        put: client
            .prepare(
                "INSERT INTO wa_kv (store, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (store, key) DO UPDATE SET value = EXCLUDED.value",
            )
            .await
            .map_err(q)?,
        delete: client
            .prepare("DELETE FROM wa_kv WHERE store = $1 AND key = $2")
            .await
            .map_err(q)?,
        wipe: client
            .prepare("DELETE FROM wa_kv WHERE store = $1")
            .await
            .map_err(q)?,
        epochs: client
            .prepare("SELECT name, epoch FROM wa_stores WHERE name = ANY($1) FOR SHARE")
            .await
            .map_err(q)?,
    };
    Ok((client, statements))
}

async fn load(client: &Client, store: &str) -> Result<Loaded, PgError> {
    let q = |source| PgError::Query { op: "load", source };
    client
        .execute(
            "INSERT INTO wa_stores (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
            &[&store],
        )
        .await
        .map_err(q)?;
    let epoch: i64 = client
        .query_one("SELECT epoch FROM wa_stores WHERE name = $1", &[&store])
        .await
        .map_err(q)?
        .get(0);
    let rows = client
        .query("SELECT key, value FROM wa_kv WHERE store = $1", &[&store])
        .await
        .map_err(q)?
        .into_iter()
        .map(|row| (row.get::<_, Vec<u8>>(0), row.get::<_, Vec<u8>>(1)))
        .collect();
    Ok((epoch, rows))
}

async fn take_over(client: &Client, store: &str) -> Result<i64, PgError> {
    client
        .query_one(
            "INSERT INTO wa_stores (name, epoch) VALUES ($1, 1) \
             ON CONFLICT (name) DO UPDATE SET epoch = wa_stores.epoch + 1 RETURNING epoch",
            &[&store],
        )
        .await
        .map(|row| row.get(0))
        .map_err(|source| PgError::Query {
            op: "take over",
            source,
        })
}

/// Commits every write of `writes` in one transaction; answers each (a fenced one with
/// [`PgError::Fenced`], all with the error if the transaction fails).
async fn commit_group(client: &mut Client, st: &Statements, writes: Vec<Request>) {
    let mut names: Vec<&str> = writes
        .iter()
        .filter_map(|w| match w {
            Request::Commit { store, .. } | Request::Wipe { store, .. } => Some(store.as_str()),
            _ => None,
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    let outcome = async {
        let tx = client.transaction().await?;
        let epochs: HashMap<String, i64> = tx
            .query(&st.epochs, &[&names])
            .await?
            .into_iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let mut allowed = Vec::with_capacity(writes.len());
        for write in &writes {
            let (store, epoch) = match write {
                Request::Commit { store, epoch, .. } | Request::Wipe { store, epoch, .. } => {
                    (store, *epoch)
                }
                _ => continue,
            };
            let current = epochs.get(store).copied().unwrap_or(0);
            if current != epoch {
                allowed.push(Some(current));
                continue;
            }
            allowed.push(None);
            match write {
                Request::Commit { batch, .. } => {
                    for op in batch.raw_ops() {
                        match op {
                            RawOp::Put(k, v) => {
                                tx.execute(&st.put, &[store, &k, &v]).await?;
                            }
                            RawOp::Delete(k) => {
                                tx.execute(&st.delete, &[store, &k]).await?;
                            }
                        }
                    }
                }
                Request::Wipe { .. } => {
                    tx.execute(&st.wipe, &[store]).await?;
                }
                _ => {}
            }
        }
        tx.commit().await?;
        Ok::<_, tokio_postgres::Error>(allowed)
    }
    .await;
    match outcome {
        Ok(allowed) => {
            for (write, fenced) in writes.into_iter().zip(allowed) {
                let fence = |store: String, held: i64, current: i64| PgError::Fenced {
                    store,
                    held,
                    current,
                };
                match (write, fenced) {
                    (
                        Request::Commit {
                            batch,
                            reply,
                            store,
                            epoch,
                        },
                        f,
                    ) => reply.send(match f {
                        None => Ok(batch),
                        Some(current) => Err(fence(store, epoch, current)),
                    }),
                    (
                        Request::Wipe {
                            reply,
                            store,
                            epoch,
                        },
                        f,
                    ) => reply.send(match f {
                        None => Ok(()),
                        Some(current) => Err(fence(store, epoch, current)),
                    }),
                    _ => {}
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "PostgreSQL committer: transaction failed");
            let shared = Arc::new(e);
            for write in writes {
                let err = || PgError::Transaction(shared.clone());
                match write {
                    Request::Commit { reply, .. } => reply.send(Err(err())),
                    Request::Wipe { reply, .. } => reply.send(Err(err())),
                    _ => {}
                }
            }
        }
    }
}
