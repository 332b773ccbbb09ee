//! Authentication: the admin API key, per-session tokens and signed pairing links.
//!
//! - Credentials come as `Authorization: Bearer <secret>` or `x-api-key: <secret>`.
//! - Comparisons are constant-time over SHA-256 digests, so neither content nor length leaks
//!   through timing; only digests of session tokens are stored.
//! - A session token is `wst.<session id>.<32 random bytes, base64url>`: the id says which
//!   record to check, the random part is the secret.
//! - A signed pairing link carries `token=<expiry unix s>.<base64url HMAC-SHA256>` over
//!   `"pair-link" 0 <session id> 0 <expiry>` with a key kept in the server database; it opens
//!   only that session's pairing page (and its event stream) until it expires.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The admin key (or an open server without a key): everything.
    Admin,
    /// A session token: only that session's resources.
    Session(String),
}

impl Caller {
    /// Allows admins only.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] for a session token.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Self::Admin => Ok(()),
            Self::Session(_) => Err(ApiError::Forbidden),
        }
    }

    /// Allows admins and the token of session `id`.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] for another session's token.
    pub fn require_session(&self, id: &str) -> Result<(), ApiError> {
        match self {
            Self::Admin => Ok(()),
            Self::Session(own) if own == id => Ok(()),
            Self::Session(_) => Err(ApiError::Forbidden),
        }
    }
}

/// SHA-256, hex.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Constant-time equality of two secrets of any length (compares their digests).
pub(crate) fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    Sha256::digest(a).ct_eq(&Sha256::digest(b)).into()
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `n` random bytes as base64url.
pub(crate) fn random_b64(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::fill(&mut bytes[..]);
    b64url(&bytes)
}

/// A fresh session token for `session` and the digest to store.
pub(crate) fn new_session_token(session: &str) -> (String, String) {
    let token = format!("wst.{session}.{}", random_b64(32));
    let hash = sha256_hex(token.as_bytes());
    (token, hash)
}

/// The secret presented in `Authorization: Bearer` or `x-api-key`, if any.
fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim());
    }
    let auth = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, rest) = auth.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// Authenticates a request's headers.
///
/// # Errors
/// [`ApiError::AuthRequired`] (nothing presented while a key is configured),
/// [`ApiError::InvalidCredentials`].
pub(crate) fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let key = state.config().api_key.as_ref();
    let Some(secret) = presented(headers).filter(|s| !s.is_empty()) else {
        return match key {
            Some(_) => Err(ApiError::AuthRequired),
            None => Ok(Caller::Admin),
        };
    };
    match key {
        Some(key) if secrets_equal(secret.as_bytes(), key.expose().as_bytes()) => {
            return Ok(Caller::Admin);
        }
        None if !secret.starts_with("wst.") => return Ok(Caller::Admin),
        _ => {}
    }
    if let Some(rest) = secret.strip_prefix("wst.")
        && let Some((id, _)) = rest.split_once('.')
        && let Some(stored) = state.session_token_hash(id)
    {
        let given = Sha256::digest(secret.as_bytes());
        let stored = hex::decode(stored).unwrap_or_default();
        if given.as_slice().ct_eq(stored.as_slice()).into() {
            return Ok(Caller::Session(id.to_owned()));
        }
    }
    Err(ApiError::InvalidCredentials)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(state, &parts.headers)
    }
}

fn link_mac(key: &[u8; 32], session: &str, expires: u64) -> Vec<u8> {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    mac.update(b"pair-link\0");
    mac.update(session.as_bytes());
    mac.update(b"\0");
    mac.update(expires.to_string().as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// A link token for `session` valid until `expires` (unix s).
pub(crate) fn sign_link(key: &[u8; 32], session: &str, expires: u64) -> String {
    format!("{expires}.{}", b64url(&link_mac(key, session, expires)))
}

/// Checks a link token at `now` (unix s).
///
/// # Errors
/// [`ApiError::InvalidLink`] when malformed, forged, for another session, or expired.
pub(crate) fn verify_link(
    key: &[u8; 32],
    session: &str,
    token: &str,
    now: u64,
) -> Result<(), ApiError> {
    let (expires, mac) = token.split_once('.').ok_or(ApiError::InvalidLink)?;
    let expires: u64 = expires.parse().map_err(|_| ApiError::InvalidLink)?;
    let mac = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(mac)
        .map_err(|_| ApiError::InvalidLink)?;
    let expected = link_mac(key, session, expires);
    let valid: bool = mac.as_slice().ct_eq(expected.as_slice()).into();
    if !valid || now > expires {
        return Err(ApiError::InvalidLink);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_links_open_one_session_until_they_expire() {
        let key = [7u8; 32];
        let token = sign_link(&key, "shop-1", 1_000);
        assert!(verify_link(&key, "shop-1", &token, 999).is_ok());
        assert!(verify_link(&key, "shop-1", &token, 1_000).is_ok());
        assert!(verify_link(&key, "shop-1", &token, 1_001).is_err());
        assert!(verify_link(&key, "shop-2", &token, 999).is_err());
        assert!(verify_link(&[8u8; 32], "shop-1", &token, 999).is_err());
        let forged = token.replace("1000.", "2000.");
        assert!(verify_link(&key, "shop-1", &forged, 999).is_err());
        assert!(verify_link(&key, "shop-1", "garbage", 0).is_err());
    }

    #[test]
    fn session_tokens_name_their_session_and_store_only_a_digest() {
        let (token, hash) = new_session_token("abc");
        assert!(token.starts_with("wst.abc."));
        assert_eq!(hash, sha256_hex(token.as_bytes()));
        assert!(!hash.contains(&token));
    }
}
