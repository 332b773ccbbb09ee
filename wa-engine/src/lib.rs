//! wa-engine: a native WhatsApp Web multi-device protocol engine.

pub mod binary;
pub mod conn;
pub mod media;
pub mod noise;
pub mod pair;
pub mod signal;
pub mod stanza;
pub mod store;

#[cfg(feature = "runtime")]
mod client;
mod error;
mod jid;

pub use binary::DecodeError;
#[cfg(feature = "runtime")]
pub use client::{
    Client, ClientBuilder, ConnectError, DEFAULT_URL, Event, Events, ORIGIN, ReconnectPolicy,
    TransportError,
};
pub use conn::SendError;
pub use error::Error;
pub use jid::{Jid, JidError, Server};
pub use media::MediaError;
#[cfg(feature = "runtime")]
pub use media::TransferError;
pub use noise::NoiseError;
pub use pair::PairError;
pub use signal::SignalError;
pub use stanza::{CloseReason, Reconnect};
#[cfg(feature = "sled")]
pub use store::SledStore;
pub use store::{MemoryStore, Store, StoreBatch, StoreError};
