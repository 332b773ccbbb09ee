//! wa-engine: a native WhatsApp Web multi-device protocol engine.

pub mod appstate;
pub mod binary;
pub mod conn;
pub mod group;
pub mod history;
pub mod media;
pub mod message;
pub mod noise;
pub mod pair;
pub mod prekeys;
pub mod privacy;
pub mod receipt;
pub mod signal;
pub mod stanza;
pub mod store;
pub mod usync;

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
#[cfg(feature = "runtime")]
pub use client::{SendMediaError, SentMedia};
#[cfg(feature = "runtime")]
pub use client::{SendOptions, SendResponse};
pub use conn::{MessageStatus, SendError, UndecryptableReason};
pub use error::{Error, InvalidInput, ProtocolViolation, ResponseError};
pub use group::{GroupInfo, GroupParticipant, ParticipantAction};
pub use jid::{Jid, JidError, Server};
pub use media::MediaError;
#[cfg(feature = "runtime")]
pub use media::TransferError;
pub use message::{IncomingMessage, MessageId, MessageInfo};
pub use noise::NoiseError;
pub use pair::PairError;
pub use receipt::{Receipt, ReceiptKind};
pub use signal::SignalError;
pub use stanza::{CloseReason, Reconnect};
pub use store::{MemoryStore, Store, StoreBatch, StoreError};
#[cfg(feature = "sled")]
pub use store::{SledDatabase, SledStore};
pub use usync::ContactStatus;
