//! The phases of one connection attempt, each holding only the data valid in it (rustls
//! `Expect*` states).

use std::collections::VecDeque;
use std::time::Instant;

use x25519_dalek::StaticSecret;

use super::request::RequestId;
use crate::Jid;
use crate::noise::ClientHandshake;
use crate::pair::code::PairingCode;

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

/// Registration phase.
#[derive(Default)]
pub(crate) struct Registering {
    /// QR refs not shown yet (03 §4.1), in order.
    pub(crate) refs: VecDeque<String>,
    /// Whether the pair-device IQ arrived.
    pub(crate) got_pair_device: bool,
    /// How many QRs were shown (the first lasts longer).
    pub(crate) qr_shown: u32,
    /// A pairing-code exchange in progress.
    pub(crate) code: Option<CodePairing>,
    /// Set once pair-success was verified and stored: waiting for 515.
    pub(crate) paired: bool,
}

/// Companion state of a pairing-code exchange (03 §5.4-§5.7).
pub(crate) struct CodePairing {
    pub(crate) code: PairingCode,
    /// Normalised phone number (digits).
    pub(crate) phone: String,
    /// The pairing ephemeral key pair whose public half went into companion_hello.
    pub(crate) ephemeral: StaticSecret,
    /// The ref from companion_hello's result.
    pub(crate) pairing_ref: Option<Vec<u8>>,
    /// The caller's request, answered when companion_hello's result arrives.
    pub(crate) request: Option<RequestId>,
}

/// Logged-in phase.
pub(crate) struct Connected {
    /// Own phone-number device JID.
    pub(crate) jid: Jid,
    /// When the outstanding keepalive ping was sent.
    pub(crate) ping_sent_at: Option<Instant>,
}
