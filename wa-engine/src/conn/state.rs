//! The phases of one connection attempt, each holding only the data valid in it (rustls
//! `Expect*` states).

use std::time::Instant;

use super::pairing::Registering;
use crate::Jid;
use crate::noise::ClientHandshake;

/// Where the connection is.
pub(crate) enum State {
    /// ClientHello sent; waiting for the ServerHello.
    Handshake(Box<ClientHandshake>),
    /// Registration payload sent; pairing this device (03 §4, §5).
    Registering(Box<Registering>),
    /// Login payload sent; waiting for `<success>` or `<failure>` (03 §7.1).
    LoggingIn {
        /// Own phone-number device JID from the stored credentials.
        jid: Jid,
    },
    /// Logged in.
    Connected(Connected),
    /// Closed; see `close_reason`.
    Closed,
}

impl State {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Handshake(_) => "handshake",
            Self::Registering(_) => "registering",
            Self::LoggingIn { .. } => "logging-in",
            Self::Connected(_) => "connected",
            Self::Closed => "closed",
        }
    }
}

/// Logged-in phase.
pub(crate) struct Connected {
    /// Own phone-number device JID.
    pub(crate) jid: Jid,
    /// When the outstanding keepalive ping was sent.
    pub(crate) ping_sent_at: Option<Instant>,
}
