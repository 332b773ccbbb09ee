//! Errors of the persistent store.

use std::error::Error as StdError;

/// The boxed cause of a backend failure (a `sled::Error`, an `std::io::Error`, …).
type BoxedCause = Box<dyn StdError + Send + Sync + 'static>;

/// A failure reading, writing or opening a [`Store`](super::Store).
///
/// Nothing here carries key material: `Corrupt` names *what* was undecodable, never
/// the bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be opened (I/O error, not a store directory, or sled refused
    /// its own files).
    /// The cause is in `source()`.
    #[error("cannot open the store")]
    Open(#[source] BoxedCause),

    /// The store directory is locked by another process or by another open handle in
    /// this one (only one may use a store at a time).
    #[error("store is in use by another process or handle")]
    Locked,

    /// The backend failed during an operation on an open store (`op` names it:
    /// `"read"`, `"apply"`, `"flush"`, …). The cause is in `source()`.
    /// After a failed [`apply`](super::Store::apply) none of the batch is visible.
    #[error("store backend failed during {op}")]
    Backend {
        /// The operation that failed.
        op: &'static str,
        /// The backend's error.
        #[source]
        source: BoxedCause,
    },

    /// The store was written with a schema version this build does not read.
    /// Nothing was changed on disk.
    #[error("store schema version {found} is not supported (this build reads {expected})")]
    UnsupportedVersion {
        /// The version recorded in the store.
        found: u32,
        /// The version this build reads and writes ([`SCHEMA_VERSION`](super::SCHEMA_VERSION)).
        expected: u32,
    },

    /// Stored data is damaged or undecodable: `what` names the record or key
    /// (e.g. `"credentials record"`, `"schema version key missing"`). The store is
    /// never wiped or repaired silently; the embedder decides (usually: delete the
    /// store and pair again).
    #[error("store is corrupt: {what}")]
    Corrupt {
        /// What was found damaged.
        what: &'static str,
    },
}

impl StoreError {
    /// Wraps a backend error that happened during `op`.
    #[cfg_attr(not(any(feature = "sled", feature = "runtime")), allow(dead_code))]
    pub(crate) fn backend(op: &'static str, source: impl Into<BoxedCause>) -> Self {
        Self::Backend {
            op,
            source: source.into(),
        }
    }
}
