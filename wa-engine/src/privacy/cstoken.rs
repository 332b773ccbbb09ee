//! The cstoken (NCT token): `HMAC-SHA256(key = nct_salt, message = "<lid user>@lid")`
//! (shared/protocol/07 §3.2; whatsmeow `cstoken.go` generateCsToken; whatsapp-rust
//! `wacore/src/iq/tctoken.rs` compute_cs_token).

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::{Jid, JidError, Server};

/// Length of a cstoken, bytes.
pub const CSTOKEN_LEN: usize = 32;

/// Why no cstoken can be computed for an input. Each variant is an input a server would
/// refuse (the `NEGATIVE_*` cases of shared/vectors/privacy_tokens).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CsTokenError {
    /// The NCT salt is empty (no salt was provisioned).
    #[error("NCT salt is empty")]
    EmptySalt,
    /// The recipient string is not a JID at all (e.g. a bare user without `@lid`).
    #[error("cstoken recipient is not a JID")]
    NotAJid(#[source] JidError),
    /// The recipient is not a LID (e.g. a phone number): resolve the PN to its LID first, and
    /// send no cstoken when none is known (whatsmeow returns nil, whatsapp-rust cannot build one).
    #[error("cstoken recipient is not a LID (server {server})")]
    NotLid {
        /// The JID's server.
        server: String,
    },
    /// The LID carries a device (or agent) part; the HMAC is over the bare account LID
    /// (whatsmeow `ToNonAD`). Pass `jid.to_non_ad()`.
    #[error("cstoken recipient has a device part; use the bare account LID")]
    HasDevice,
    /// The LID has an empty user part.
    #[error("cstoken recipient has an empty user")]
    EmptyUser,
}

/// A computed cstoken: the content of `<cstoken>` on a 1:1 message.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CsToken(pub [u8; CSTOKEN_LEN]);

impl fmt::Debug for CsToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A bearer credential for reaching this recipient: do not print it.
        f.write_str("CsToken(..)")
    }
}

/// The cstoken for `recipient_lid` under the account's `nct_salt`.
///
/// `recipient_lid` must be a bare account LID (`<user>@lid`, no device, no agent); the HMAC
/// message is exactly its string form, e.g. `123456789012345@lid`.
///
/// # Errors
/// [`CsTokenError::EmptySalt`], [`CsTokenError::NotLid`], [`CsTokenError::HasDevice`],
/// [`CsTokenError::EmptyUser`].
pub fn cstoken(nct_salt: &[u8], recipient_lid: &Jid) -> Result<CsToken, CsTokenError> {
    if nct_salt.is_empty() {
        return Err(CsTokenError::EmptySalt);
    }
    if *recipient_lid.server() != Server::Lid {
        return Err(CsTokenError::NotLid {
            server: recipient_lid.server().as_str().to_owned(),
        });
    }
    if recipient_lid.device_part().is_some() || recipient_lid.agent() != 0 {
        return Err(CsTokenError::HasDevice);
    }
    if recipient_lid.user().is_empty() {
        return Err(CsTokenError::EmptyUser);
    }
    let message = format!("{}@lid", recipient_lid.user());
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(nct_salt)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(message.as_bytes());
    Ok(CsToken(mac.finalize().into_bytes().into()))
}

/// [`cstoken`] for a recipient given as a string, validating it first.
///
/// # Errors
/// [`CsTokenError::NotAJid`] if `recipient_lid` does not parse (e.g. `123456789012345`,
/// no `@lid`), then those of [`cstoken`].
pub fn cstoken_for(nct_salt: &[u8], recipient_lid: &str) -> Result<CsToken, CsTokenError> {
    let jid: Jid = recipient_lid.parse().map_err(CsTokenError::NotAJid)?;
    cstoken(nct_salt, &jid)
}
