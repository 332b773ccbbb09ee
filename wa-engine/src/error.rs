//! The engine's errors that cross layers: [`SendError`] (what a request to the connection
//! returns), [`ProtocolViolation`] (how the server broke the protocol, carried by
//! [`CloseReason::ProtocolViolation`]), and [`Error`], the top-level error any engine error
//! converts into. Each layer keeps its own error next to its code (`DecodeError`,
//! `NoiseError`, `SignalError`, `StoreError`, `PairError`, `MediaError`, ...).
//!
//! As in rustls (`rustls/src/error/mod.rs`, `PeerMisbehaved`), peer misbehaviour is named by
//! a specific variant, never a free-form string; as snow warns (`src/error.rs`), detailed
//! errors must not be echoed to the peer.

use std::sync::Arc;

use crate::Jid;
use crate::binary::{DecodeError, EncodeError};
use crate::group::GroupError;
use crate::jid::JidError;
use crate::media::MediaError;
use crate::noise::NoiseError;
use crate::pair::PairError;
use crate::prekeys::BundleError;
use crate::privacy::TokenKind;
use crate::signal::SignalError;
use crate::stanza::CloseReason;
use crate::store::StoreError;
use crate::usync::UsyncError;

/// Why a request to the connection failed (`Connection::send`, every `Client` request).
///
/// Failures of a lower layer keep their cause in [`source()`](std::error::Error::source).
/// Causes that are not `Clone` are held in an [`Arc`], because the error travels in a
/// `Clone` event. Two errors carrying a cause compare equal only when they share it
/// ([`Arc::ptr_eq`]).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The connection is not (or no longer) able to send: closed, or the Noise handshake has
    /// not finished.
    #[error("not connected")]
    NotConnected,
    /// The request needs a logged-in connection (after `<success>`).
    #[error("not logged in")]
    NotLoggedIn,
    /// The request needs a registration connection (an unpaired device waiting for pairing).
    #[error("not waiting for pairing")]
    NotPairing,
    /// No response within the IQ timeout.
    #[error("request timed out")]
    Timeout,
    /// The server answered with `type="error"`.
    #[error("server rejected the request with code {code}")]
    Rejected {
        /// The `<error code>` (0 if absent).
        code: u16,
        /// The `<error text>`, if any.
        text: Option<String>,
    },
    /// The connection closed before the request completed.
    #[error("connection closed: {0}")]
    Closed(CloseReason),
    /// The phone number of a pairing-code request is invalid.
    #[error(transparent)]
    Pair(#[from] PairError),
    /// The request's arguments are invalid (the cause names which).
    #[error("invalid request")]
    InvalidInput(#[source] InvalidInput),
    /// The request's stanza cannot be encoded (a size the wire format cannot express).
    #[error("cannot encode the request")]
    Encode(#[source] EncodeError),
    /// The request's stanza could not be encrypted or framed for the socket (nonce counter
    /// exhausted, frame too large).
    #[error("cannot encrypt the request for the socket")]
    Noise(#[source] Arc<NoiseError>),
    /// Reading or writing the store failed while preparing the request.
    #[error("store failed while preparing the request")]
    Store(#[source] Arc<StoreError>),
    /// A Signal operation (session check, encryption, sender key) failed while preparing the
    /// message.
    #[error("cannot encrypt the message")]
    Signal(#[source] Arc<SignalError>),
    /// The recipient has no device we could encrypt for (not on WhatsApp, or no device
    /// published usable keys).
    #[error("recipient has no reachable device")]
    NoDevices,
    /// The JID cannot be sent to (not a user or group JID).
    #[error("invalid recipient")]
    InvalidRecipient,
    /// A server response could not be read (the cause says what was wrong with it).
    #[error("unexpected server response")]
    BadResponse(#[source] ResponseError),
    /// The connection answered a request with the reply of another kind of request: a bug
    /// in wa-engine, never expected.
    #[error("the connection answered with the reply of another request")]
    ReplyMismatch,
    /// The server refused a 1:1 message with ack error **463** (shared/protocol/07 §3.4):
    /// the recipient does not accept a first message from an account it has not been in
    /// contact with unless it carries a valid privacy token, and this one carried none (or
    /// one the server did not accept). Nothing was delivered, and the engine does not re-send
    /// (a retry counts as another reach-out; Baileys #2517): it only asked the server once to
    /// issue our own token to the recipient.
    ///
    /// What to do: have the recipient message this account first (its `privacy_token`
    /// notification then gives us a tctoken that the next send carries), or let app-state /
    /// history sync deliver the account's NCT salt so sends carry a cstoken; then send again.
    /// If the account is reach-out timelocked, see [`SendError::ReachoutTimelocked`].
    #[error(
        "the server refused the message with 463: {to} only accepts a first message with a \
         privacy token (attached: {attached:?}); have the recipient message this account first, \
         or sync app state so the NCT salt gives a cstoken, then send again"
    )]
    RecipientRequiresToken {
        /// The recipient as addressed on the wire (user JID).
        to: Jid,
        /// The token the refused message carried, if any.
        attached: Option<TokenKind>,
    },
    /// The server refused a 1:1 message with 463 while the account is under a **reach-out
    /// timelock** (07 §3.6, announced by [`crate::Event::ReachoutTimelock`]): it may not
    /// start new chats until the lock ends; existing chats still work. Not re-sent.
    ///
    /// What to do: wait until `until` (unix seconds; 0 when the server named no end), then
    /// send again; do not retry in a loop, each attempt counts as another reach-out.
    #[error(
        "the account is reach-out timelocked until {until} (unix seconds; 0 = unknown): new \
         chats are refused with 463; wait for the lock to end"
    )]
    ReachoutTimelocked {
        /// The recipient as addressed on the wire (user JID).
        to: Jid,
        /// When the lock ends, unix seconds (0 when unknown).
        until: u64,
    },
    /// The server refused a 1:1 message with ack error **475** (WA Web nack
    /// `NewChatMessagesCapped`, whatsapp-rust `wacore/src/protocol/nack.rs`; 07 §3.4): the
    /// account used up its quota of new chats for this cycle (new-chat message capping,
    /// [`crate::Event::NewChatCapping`]). Not re-sent.
    ///
    /// What to do: wait for the next cycle (the capping event's `cycle_end`) or write to
    /// contacts with an existing chat.
    #[error(
        "the server refused the message with 475: the account's new-chat quota is used up; wait for the next cycle"
    )]
    NewChatsCapped {
        /// The recipient as addressed on the wire (user JID).
        to: Jid,
    },
}

impl PartialEq for SendError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::NotConnected, Self::NotConnected)
            | (Self::NotLoggedIn, Self::NotLoggedIn)
            | (Self::NotPairing, Self::NotPairing)
            | (Self::Timeout, Self::Timeout)
            | (Self::NoDevices, Self::NoDevices)
            | (Self::InvalidRecipient, Self::InvalidRecipient)
            | (Self::ReplyMismatch, Self::ReplyMismatch) => true,
            (
                Self::Rejected { code, text },
                Self::Rejected {
                    code: code2,
                    text: text2,
                },
            ) => code == code2 && text == text2,
            (Self::Closed(a), Self::Closed(b)) => a == b,
            (Self::Pair(a), Self::Pair(b)) => a == b,
            (Self::InvalidInput(a), Self::InvalidInput(b)) => a == b,
            (Self::BadResponse(a), Self::BadResponse(b)) => a == b,
            (Self::Encode(a), Self::Encode(b)) => a == b,
            (Self::Noise(a), Self::Noise(b)) => Arc::ptr_eq(a, b),
            (Self::Store(a), Self::Store(b)) => Arc::ptr_eq(a, b),
            (Self::Signal(a), Self::Signal(b)) => Arc::ptr_eq(a, b),
            (
                Self::RecipientRequiresToken { to, attached },
                Self::RecipientRequiresToken {
                    to: to2,
                    attached: attached2,
                },
            ) => to == to2 && attached == attached2,
            (
                Self::ReachoutTimelocked { to, until },
                Self::ReachoutTimelocked {
                    to: to2,
                    until: until2,
                },
            ) => to == to2 && until == until2,
            (Self::NewChatsCapped { to }, Self::NewChatsCapped { to: to2 }) => to == to2,
            _ => false,
        }
    }
}

impl Eq for SendError {}

impl From<InvalidInput> for SendError {
    fn from(e: InvalidInput) -> Self {
        Self::InvalidInput(e)
    }
}

impl From<EncodeError> for SendError {
    fn from(e: EncodeError) -> Self {
        Self::Encode(e)
    }
}

impl From<NoiseError> for SendError {
    fn from(e: NoiseError) -> Self {
        Self::Noise(Arc::new(e))
    }
}

impl From<StoreError> for SendError {
    fn from(e: StoreError) -> Self {
        Self::Store(Arc::new(e))
    }
}

impl From<SignalError> for SendError {
    /// A store failure inside a Signal operation is a store failure
    /// ([`SendError::Store`]); anything else is [`SendError::Signal`].
    fn from(e: SignalError) -> Self {
        match e {
            SignalError::Store(e) => Self::Store(Arc::new(e)),
            other => Self::Signal(Arc::new(other)),
        }
    }
}

/// What was wrong with a server response (for [`SendError::BadResponse`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// A group IQ result (06 §1).
    #[error(transparent)]
    Group(#[from] GroupError),
    /// A usync result (05 §5, 06 §4).
    #[error(transparent)]
    Usync(#[from] UsyncError),
    /// A prekey bundle result (04 §4.4).
    #[error(transparent)]
    Bundles(#[from] BundleError),
}

/// Which argument of a request is invalid (for [`SendError::InvalidInput`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidInput {
    /// A read receipt names no message id.
    #[error("no message ids given")]
    NoMessageIds,
    /// An app-state patch needs a sync key, and our primary phone has not shared one yet
    /// (shared/protocol/08 §2.2: companions never create keys).
    #[error("no app-state sync key yet")]
    NoAppStateKey,
    /// A poll with fewer than two options, duplicate options, or more selectable options
    /// than it has (`Client::send_poll`).
    #[error("invalid poll")]
    InvalidPoll,
    /// A vote on a poll this store does not know (no message secret; `Client::vote_poll`).
    #[error("unknown poll")]
    UnknownPoll,
    /// A disappearing-messages timer over `u32::MAX` seconds
    /// (`Client::set_disappearing_timer`).
    #[error("invalid disappearing timer")]
    InvalidTimer,
    /// View-once content that is not an image, video or audio message
    /// (`Client::send_view_once`).
    #[error("only images, videos and audio can be view-once")]
    NotViewOnceMedia,
}

/// How the server broke the protocol: the cause of
/// [`CloseReason::ProtocolViolation`]. The connection logged the lower-layer error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolViolation {
    /// A frame's length prefix is over the limit (01 §3).
    #[error("malformed frame")]
    MalformedFrame,
    /// A frame arrived after the handshake without a transport to decrypt it.
    #[error("frame outside the Noise transport")]
    FrameWithoutTransport,
    /// A transport frame failed AES-GCM authentication (01 §4).
    #[error("undecryptable frame")]
    UndecryptableFrame,
    /// A decrypted frame is not a valid binary node (02).
    #[error("undecodable node")]
    UndecodableNode,
}

/// Any error the engine returns, for embedders that want one error type: every
/// operation's own error converts into it with `?`, and
/// [`source()`](std::error::Error::source) leads to the cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request to the connection failed.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The first connection attempt failed.
    #[cfg(feature = "runtime")]
    #[error(transparent)]
    Connect(#[from] crate::client::ConnectError),
    /// Uploading or sending a media message failed.
    #[cfg(feature = "runtime")]
    #[error(transparent)]
    SendMedia(#[from] crate::client::SendMediaError),
    /// A media upload or download failed.
    #[cfg(feature = "runtime")]
    #[error(transparent)]
    Transfer(#[from] crate::media::TransferError),
    /// Reading or writing persistent state failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The Noise layer failed: framing, handshake, server certificate or transport.
    #[error(transparent)]
    Noise(#[from] NoiseError),
    /// Media encryption, decryption or verification failed.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// A Signal operation (session, sender key) failed.
    #[error(transparent)]
    Signal(#[from] SignalError),
    /// Pairing failed.
    #[error(transparent)]
    Pair(#[from] PairError),
    /// Bytes did not decode as a binary node.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A JID did not parse.
    #[error(transparent)]
    Jid(#[from] JidError),
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn signal_store_failure_becomes_store_error() {
        let e = SendError::from(SignalError::Store(StoreError::Locked));
        assert!(matches!(e, SendError::Store(_)));
        assert_eq!(
            e.source().map(ToString::to_string),
            Some(StoreError::Locked.to_string())
        );
        let e = SendError::from(SignalError::NoSession);
        assert!(matches!(e, SendError::Signal(_)));
        assert_eq!(e.to_string(), "cannot encrypt the message");
        assert_eq!(
            e.source().map(ToString::to_string),
            Some(SignalError::NoSession.to_string())
        );
    }

    #[test]
    fn errors_with_a_cause_are_equal_only_when_shared() {
        let a = SendError::from(SignalError::NoSession);
        assert_eq!(a, a.clone());
        assert_ne!(a, SendError::from(SignalError::NoSession));
        assert_eq!(
            SendError::from(InvalidInput::NoMessageIds),
            SendError::InvalidInput(InvalidInput::NoMessageIds)
        );
        assert_ne!(SendError::Timeout, SendError::NotConnected);
    }

    #[test]
    fn top_level_error_keeps_the_chain() {
        let e = Error::from(SendError::from(SignalError::NoSession));
        assert_eq!(e.to_string(), "cannot encrypt the message");
        assert!(e.source().is_some());
    }

    #[test]
    fn errors_are_send_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<SendError>();
        check::<Error>();
        check::<ProtocolViolation>();
    }
}
