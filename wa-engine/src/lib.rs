//! wa-engine: a native WhatsApp Web multi-device protocol engine.

pub mod binary;
pub mod noise;
pub mod signal;
pub mod store;

mod error;
mod jid;

pub use error::Error;
pub use jid::Jid;
pub use signal::SignalError;
#[cfg(feature = "sled")]
pub use store::SledStore;
pub use store::{MemoryStore, Store, StoreBatch, StoreError};
