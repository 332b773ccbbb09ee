//! Privacy tokens on 1:1 messages, sans-IO: the trusted-contact token (tctoken), the cstoken
//! fallback keyed by the account's NCT salt, and the choice between them
//! (shared/protocol/07-lid-privacy-tokens.md §2, §3).
//!
//! Since 2026 the service refuses a 1:1 message to a contact who never talked to the account
//! with ack error 463 unless it carries a privacy token (07 §3.4). The choice on every 1:1 send
//! (07 §3.1, [`choose`]):
//! 1. a stored tctoken from that peer that is not expired in receiver mode ([`is_expired`]);
//! 2. else a [`cstoken`] = `HMAC-SHA256(nct_salt, "<recipient lid>@lid")` when the salt
//!    (app-state `nct_salt_sync` or history sync field 19) and the recipient's LID are known;
//! 3. else nothing (and the server may answer 463).
//!
//! After a 1:1 send we issue our own token to the peer when [`should_issue`] says so (07 §2.5).
//! Everything here is a pure function of its inputs; time is unix seconds passed in.
//!
//! Sources: whatsmeow `tctoken.go`, `cstoken.go`, `send.go` sendDM; whatsapp-rust
//! `wacore/src/iq/tctoken.rs`, `src/send/tctoken_lifecycle.rs`; Baileys
//! `src/Utils/tc-token-utils.ts`. Vectors: `shared/vectors/privacy_tokens/`
//! (tests/privacy_token_vectors.rs).

mod cstoken;
mod mex;
mod stanza;
mod tctoken;

use std::fmt;

pub use cstoken::{CSTOKEN_LEN, CsToken, CsTokenError, cstoken, cstoken_for};
pub use mex::{
    DEFAULT_LOCK_SECS, MESSAGE_CAPPING_OP, MessageCapping, MexUpdate, REACHOUT_TIMELOCK_OP,
    ReachoutTimelock, parse_mex_update,
};
pub use stanza::{
    PrivacyTokenError, PrivacyTokenNotification, ReceivedToken, issue_request, parse_notification,
    should_store,
};
pub use tctoken::{BucketConfig, expiration_cutoff, is_expired, should_issue};

use crate::Jid;
use crate::binary::Node;

/// What we store per peer (07 §2.2): the peer's token to us and when we last issued ours.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TcToken {
    /// The token bytes the peer issued to us (empty for a placeholder row that only records
    /// `sender_timestamp`, as whatsapp-rust writes after issuing).
    pub token: Vec<u8>,
    /// Unix seconds: the `t` of the `privacy_token` notification (or history sync field 22).
    pub timestamp: Option<u64>,
    /// Unix seconds: when we last issued our token to the peer.
    pub sender_timestamp: Option<u64>,
}

/// Format version of [`TcToken::to_bytes`].
const TC_TOKEN_RECORD_VERSION: u8 = 1;

/// A stored tctoken record that does not decode ([`TcToken::from_bytes`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed tctoken record")]
pub struct TcTokenRecordError;

impl TcToken {
    /// The record as the engine keeps it in the store (`Store::tc_token`): version byte `1`,
    /// a flags byte (bit 0: `timestamp` present, bit 1: `sender_timestamp` present), the two
    /// timestamps as u64 big-endian (unix seconds, 0 when absent), then the token bytes.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(18 + self.token.len());
        out.push(TC_TOKEN_RECORD_VERSION);
        out.push(
            u8::from(self.timestamp.is_some()) | (u8::from(self.sender_timestamp.is_some()) << 1),
        );
        out.extend_from_slice(&self.timestamp.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&self.sender_timestamp.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&self.token);
        out
    }

    /// Reads a record written by [`to_bytes`](Self::to_bytes).
    ///
    /// # Errors
    /// [`TcTokenRecordError`] for another version, unknown flags or a short record.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TcTokenRecordError> {
        let (&[version, flags], rest) = bytes.split_first_chunk::<2>().ok_or(TcTokenRecordError)?;
        if version != TC_TOKEN_RECORD_VERSION || flags & !0b11 != 0 {
            return Err(TcTokenRecordError);
        }
        let (ts, rest) = rest.split_first_chunk::<8>().ok_or(TcTokenRecordError)?;
        let (sender_ts, token) = rest.split_first_chunk::<8>().ok_or(TcTokenRecordError)?;
        Ok(Self {
            token: token.to_vec(),
            timestamp: (flags & 1 != 0).then(|| u64::from_be_bytes(*ts)),
            sender_timestamp: (flags & 2 != 0).then(|| u64::from_be_bytes(*sender_ts)),
        })
    }
}

impl fmt::Debug for TcToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcToken")
            .field("token_len", &self.token.len())
            .field("timestamp", &self.timestamp)
            .field("sender_timestamp", &self.sender_timestamp)
            .finish()
    }
}

/// Which tokens may be attached, from the AB props (07 §2.4, §3.1). whatsmeow attaches both
/// unconditionally ([`TokenGates::default`]); whatsapp-rust gates the tctoken on
/// `privacy_token_sending_on_all_1_on_1_messages` (10518) and the cstoken on
/// `wa_nct_token_send_enabled` (24941), independently of each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenGates {
    /// Attach a valid tctoken.
    pub tctoken: bool,
    /// Attach a cstoken when no tctoken is used.
    pub cstoken: bool,
}

impl Default for TokenGates {
    fn default() -> Self {
        Self {
            tctoken: true,
            cstoken: true,
        }
    }
}

/// The token a 1:1 message carries.
#[derive(Clone, PartialEq, Eq)]
pub enum PrivacyToken {
    /// `<tctoken>` with the peer's token bytes.
    TcToken(Vec<u8>),
    /// `<cstoken>` with the HMAC.
    CsToken(CsToken),
}

/// Which kind of token a message carried (no bytes; for errors and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// A `<tctoken>` (the peer's trusted-contact token).
    TcToken,
    /// A `<cstoken>` (HMAC of the recipient's LID under our NCT salt).
    CsToken,
}

impl PrivacyToken {
    /// Which kind of token this is.
    #[must_use]
    pub fn kind(&self) -> TokenKind {
        match self {
            Self::TcToken(_) => TokenKind::TcToken,
            Self::CsToken(_) => TokenKind::CsToken,
        }
    }

    /// The child node for the `<message>` stanza: `<tctoken>BYTES</tctoken>` or
    /// `<cstoken>BYTES</cstoken>`, no attributes; append it last (whatsmeow sendDM).
    #[must_use]
    pub fn to_node(&self) -> Node {
        match self {
            Self::TcToken(bytes) => Node::new("tctoken").with_bytes(bytes.clone()),
            Self::CsToken(token) => Node::new("cstoken").with_bytes(token.0.to_vec()),
        }
    }
}

impl fmt::Debug for PrivacyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TcToken(bytes) => write!(f, "TcToken({} bytes)", bytes.len()),
            Self::CsToken(_) => f.write_str("CsToken(..)"),
        }
    }
}

/// The token for a 1:1 send (07 §3.1): the stored tctoken if present, non-empty and not
/// expired at `now` in receiver mode; else a cstoken when `nct_salt` is non-empty and the
/// recipient's LID is known (its device part is dropped); else `None`.
///
/// `recipient_lid` is the recipient's LID (resolved from its PN by the caller); anything that
/// is not a LID gives no cstoken.
#[must_use]
pub fn choose(
    stored: Option<&TcToken>,
    nct_salt: Option<&[u8]>,
    recipient_lid: Option<&Jid>,
    now: u64,
    receiver: BucketConfig,
    gates: TokenGates,
) -> Option<PrivacyToken> {
    if gates.tctoken
        && let Some(stored) = stored
        && !stored.token.is_empty()
        && !is_expired(stored.timestamp, now, receiver)
    {
        return Some(PrivacyToken::TcToken(stored.token.clone()));
    }
    if gates.cstoken
        && let (Some(salt), Some(lid)) = (nct_salt, recipient_lid)
    {
        return cstoken(salt, &lid.to_non_ad())
            .ok()
            .map(PrivacyToken::CsToken);
    }
    None
}

#[cfg(test)]
mod record_tests {
    use super::*;

    #[test]
    fn tc_token_record_round_trips_and_rejects_damage() {
        for t in [
            TcToken::default(),
            TcToken {
                token: vec![1, 2, 3],
                timestamp: Some(1_700_000_000),
                sender_timestamp: None,
            },
            TcToken {
                token: Vec::new(),
                timestamp: None,
                sender_timestamp: Some(0),
            },
        ] {
            let bytes = t.to_bytes();
            assert_eq!(TcToken::from_bytes(&bytes), Ok(t.clone()));
            assert_eq!(TcToken::from_bytes(&bytes[..17]), Err(TcTokenRecordError));
        }
        let mut bad = TcToken::default().to_bytes();
        bad[1] = 4;
        assert_eq!(TcToken::from_bytes(&bad), Err(TcTokenRecordError));
        bad[0] = 2;
        assert_eq!(TcToken::from_bytes(&bad), Err(TcTokenRecordError));
    }
}
