//! TEMPORARY (replaced by the `store` branch's group committer at merge): the async
//! persistence contract the client driver codes against.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::{Store, StoreBatch, StoreError};

/// A future resolving when a batch is durable.
pub type PersistFuture = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'static>>;

/// The async store contract: makes one session's write batch durable without blocking a
/// tokio worker.
pub trait Persist: Send + Sync + 'static {
    /// Resolves once `batch` is visible to the session's `Store` reads and on stable storage.
    fn persist(&self, batch: StoreBatch) -> PersistFuture;
}

/// Runs `store.apply(batch)` on tokio's blocking pool.
#[cfg(feature = "runtime")]
pub struct BlockingPersist {
    store: Arc<dyn Store>,
}

#[cfg(feature = "runtime")]
impl BlockingPersist {
    /// Wraps `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

#[cfg(feature = "runtime")]
impl Persist for BlockingPersist {
    fn persist(&self, batch: StoreBatch) -> PersistFuture {
        let store = self.store.clone();
        Box::pin(async move {
            match tokio::task::spawn_blocking(move || store.apply(batch)).await {
                Ok(r) => r,
                Err(e) => Err(StoreError::backend("apply", e)),
            }
        })
    }
}
