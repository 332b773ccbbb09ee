//! wa-engine: a native WhatsApp Web multi-device protocol engine.
//!
//! # Architecture
//!
//! A sans-IO core (no sockets, no tasks, no clock: bytes and `now` come in, bytes and events
//! come out) and a tokio driver around it (feature `runtime`):
//!
//! ```text
//!  WebSocket  <->  noise    frames, Noise XX handshake, AES-GCM transport   (shared/protocol/01)
//!                    |
//!                  binary   WhatsApp's binary XML: Node encode / decode      (02)
//!                    |
//!                  stanza   IQs, acks, stream errors -> CloseReason           (03)
//!                    |
//!                  conn     Connection: pairing, login, keepalive, messaging  (03-06)
//!                    |       |
//!                    |      signal (sessions, sender keys), message, media, group, usync
//!                    |       |
//!                    |      store: the Store trait; every write is one StoreBatch, applied
//!                    |             before the frame that depends on it leaves
//!                    |
//!                  Event    conn::Event::Public(Event) -> client driver -> Events stream
//! ```
//!
//! The driver (`Client`, feature `runtime`) owns the socket, the timers and one
//! [`conn::Connection`]; it drains transmits, then the timer, then events, and acts on the
//! [`CloseReason`] between connections (reconnect, back off, or stop and wipe the store).
//!
//! # Surface
//!
//! - Embedders: [`Client`], [`Event`], [`Store`] ([`MemoryStore`], [`SledStore`]), the
//!   message builders in [`message::content`] and the classified view of received messages
//!   ([`IncomingMessage::content`]), media in [`media`].
//! - Low-level layers, public on purpose: [`binary`], [`noise`], [`signal`], [`conn`] (run the
//!   engine on another runtime).
//! - Feature `server-side`: the other side of the protocol and the internals the simulator
//!   (wa-sandbox), the fuzz targets and the vector tests check (the Noise responder, the
//!   phone's pairing steps, the stanza, pairing, group, pre-key and receipt builders). A
//!   client does not need it.

/// Declares an internal module: crate-visible, or public with the `server-side` feature for the
/// simulator, fuzz targets and vector tests. Without the feature its `pub` items are only
/// reachable through the re-exports below, hence the `allow`.
macro_rules! internal_mod {
    ($($(#[$meta:meta])* $name:ident;)*) => {$(
        $(#[$meta])*
        #[cfg(feature = "server-side")]
        pub mod $name;
        #[cfg(not(feature = "server-side"))]
        #[allow(unreachable_pub, dead_code)]
        pub(crate) mod $name;
    )*};
}

// Building blocks landed by the app-state / history / privacy work; their place in the
// curated surface is that work's call.
pub mod appstate;
pub mod binary;
pub mod call;
pub mod conn;
pub mod history;
pub mod media;
pub mod message;
pub mod noise;
pub mod notification;
pub mod presence;
pub mod privacy;
pub mod signal;
pub mod store;

internal_mod! {
    group;
    pair;
    prekeys;
    receipt;
    stanza;
    usync;
}

#[cfg(feature = "runtime")]
mod client;
mod error;
mod event;
mod jid;

pub use binary::DecodeError;
pub use call::{CallEvent, CallKind};
#[cfg(feature = "runtime")]
pub use client::PushNameSync;
#[cfg(feature = "runtime")]
pub use client::{
    Client, ClientBuilder, ConnectError, DEFAULT_URL, Events, ORIGIN, ReconnectPolicy,
    TransportError,
};
#[cfg(feature = "runtime")]
pub use client::{SendMediaError, SentMedia};
#[cfg(feature = "runtime")]
pub use client::{SendOptions, SendResponse};
pub use conn::SendError;
pub use error::{Error, InvalidInput, ProtocolViolation, ResponseError};
pub use event::{AppStateEvent, Event, HistorySyncEvent, MessageStatus, UndecryptableReason};
pub use group::{
    GroupChange, GroupDescription, GroupInfo, GroupNotification, GroupParticipant, GroupSetting,
    INVITE_LINK_PREFIX, IqError, ParticipantAction, ParticipantRole, ProfilePicture, StatusText,
    invite_code as group_invite_code,
};
pub use jid::{Jid, JidError, Server};
pub use media::MediaError;
#[cfg(feature = "runtime")]
pub use media::TransferError;
pub use message::{IncomingMessage, MessageId, MessageInfo};
pub use noise::NoiseError;
pub use pair::PairError;
pub use presence::{ChatState, ChatStateUpdate, LastSeen, PresenceUpdate};
pub use receipt::{Receipt, ReceiptKind};
pub use signal::SignalError;
pub use stanza::{CloseReason, Reconnect};
pub use store::{MemoryStore, Store, StoreBatch, StoreError};
#[cfg(feature = "sled")]
pub use store::{SledDatabase, SledStore};
pub use usync::ContactStatus;
