//! wa-engine: a native WhatsApp Web multi-device protocol engine.

pub mod binary;
pub mod noise;
pub mod signal;
pub mod store;

mod error;
mod jid;

pub use binary::DecodeError;
pub use error::Error;
pub use jid::{Jid, JidError, Server};
pub use noise::NoiseError;
pub use signal::SignalError;
#[cfg(feature = "sled")]
pub use store::SledStore;
pub use store::{MemoryStore, Store, StoreBatch, StoreError};
