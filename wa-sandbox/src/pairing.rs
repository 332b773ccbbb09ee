//! Pairings in progress: the QR refs each registration connection offered (live and
//! expired) and the phone-number (code) pairings waiting for the user or the companion
//! (shared/protocol/03 §4, §5). The phone's side of the cryptography is in
//! [`phone`](crate::phone).

use std::collections::HashMap;

use base64::Engine as _;
use rand::Rng as _;
use rand::rngs::StdRng;

use crate::connections::ConnId;
use crate::error::PhoneError;

/// A pending phone-number (code) pairing, keyed by its pairing ref.
pub(crate) struct CodePairing {
    pub(crate) conn: ConnId,
    pub(crate) phone: String,
    pub(crate) wrapped_companion_ephemeral: Vec<u8>,
    /// The primary's pairing ephemeral secret once the code was entered.
    pub(crate) primary_ephemeral: Option<x25519_dalek::StaticSecret>,
    /// The companion ephemeral public key as unwrapped with the entered code.
    pub(crate) companion_ephemeral: Option<[u8; 32]>,
    pub(crate) seq: u64,
}

/// QR refs and code pairings in progress.
#[derive(Default)]
pub(crate) struct Pairing {
    /// Live QR refs -> the registration connection that offered them.
    refs: HashMap<String, ConnId>,
    /// Refs whose window passed (kept to tell "expired" from "unknown").
    expired_refs: HashMap<String, ConnId>,
    /// Code pairings by pairing ref.
    pub(crate) code_pairings: HashMap<Vec<u8>, CodePairing>,
    code_seq: u64,
}

impl std::fmt::Debug for Pairing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pairing")
            .field("refs", &self.refs.len())
            .field("code_pairings", &self.code_pairings.len())
            .finish_non_exhaustive()
    }
}

impl Pairing {
    /// Issues `count` fresh refs for a registration connection (`"2@"` + 100 base64
    /// characters, shared/protocol/03 §4.1).
    pub(crate) fn issue_refs(
        &mut self,
        conn: ConnId,
        count: usize,
        rng: &mut StdRng,
    ) -> Vec<String> {
        let mut refs = Vec::with_capacity(count);
        for _ in 0..count {
            // 75 random bytes -> exactly 100 base64 characters, no padding.
            let mut raw = [0u8; 75];
            rng.fill_bytes(&mut raw);
            let r = format!(
                "2@{}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            );
            self.refs.insert(r.clone(), conn);
            refs.push(r);
        }
        refs
    }

    /// Marks a ref as expired (its display window passed).
    pub(crate) fn expire_ref(&mut self, r: &str) {
        if let Some(conn) = self.refs.remove(r) {
            self.expired_refs.insert(r.to_owned(), conn);
        }
    }

    /// The live registration connection of a QR ref.
    ///
    /// # Errors
    /// [`PhoneError::RefExpired`], [`PhoneError::UnknownRef`].
    pub(crate) fn conn_of_ref(&self, r: &str) -> Result<ConnId, PhoneError> {
        if let Some(conn) = self.refs.get(r) {
            return Ok(*conn);
        }
        if self.expired_refs.contains_key(r) {
            return Err(PhoneError::RefExpired);
        }
        Err(PhoneError::UnknownRef)
    }

    /// Retires every ref of a connection (the phone accepted it).
    pub(crate) fn retire_refs(&mut self, conn: ConnId) {
        self.refs.retain(|_, c| *c != conn);
        self.expired_refs.retain(|_, c| *c != conn);
    }

    /// Forgets everything of a closed connection: its refs and code pairings.
    pub(crate) fn forget(&mut self, conn: ConnId) {
        self.retire_refs(conn);
        self.code_pairings.retain(|_, p| p.conn != conn);
    }

    /// Records a companion_hello (shared/protocol/03 §5.4) and returns the fresh pairing ref
    /// (`"2@"` + base64 of 24 random bytes). A companion that asks again replaces its earlier
    /// request.
    pub(crate) fn code_hello(
        &mut self,
        conn: ConnId,
        phone: &str,
        wrapped_companion_ephemeral: Vec<u8>,
        rng: &mut StdRng,
    ) -> Vec<u8> {
        let mut raw = [0u8; 24];
        rng.fill_bytes(&mut raw);
        let pairing_ref = format!(
            "2@{}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
        .into_bytes();
        self.code_pairings.retain(|_, p| p.conn != conn);
        self.code_seq += 1;
        let seq = self.code_seq;
        self.code_pairings.insert(
            pairing_ref.clone(),
            CodePairing {
                conn,
                phone: phone.to_owned(),
                wrapped_companion_ephemeral,
                primary_ephemeral: None,
                companion_ephemeral: None,
                seq,
            },
        );
        pairing_ref
    }
}
