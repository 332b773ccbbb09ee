//! IQs waiting for a response, by id, each with a deadline (shared/protocol/03 §10.1).

use std::collections::HashMap;
use std::time::Instant;

use super::request::RequestId;

/// Who is waiting for an IQ response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waiter {
    /// An IQ (group metadata, usync, bundles) of send operation `op`.
    Send(u64),
    /// The server ack of the message sent by operation `op` (keyed by message id).
    MessageAck(u64),
    /// The bundle fetch of retry re-send `op`.
    RetryBundle(u64),
    /// Our prekey upload.
    PreKeyUpload,
    /// A caller's number check.
    Contacts(RequestId),
    /// A caller's group IQ (op in `Ops::groups`).
    Group(u64),
    /// A caller's [`Request::Iq`](super::Request::Iq).
    User(RequestId),
    /// companion_hello of a pairing-code request (03 §5.4).
    CompanionHello(RequestId),
    /// companion_finish (03 §5.7).
    CompanionFinish,
    /// remove-companion-device (03 §10.4).
    Logout(RequestId),
    /// Keepalive `w:p` ping.
    Ping,
    /// Pre-key count (`encrypt` `<count/>`).
    PreKeyCount,
    /// `passive` `<active/>`.
    Active,
    /// `urn:xmpp:whatsapp:dirty` `<clean/>`.
    CleanDirty,
    /// Our privacy-token issuance (`privacy` set, 07 §2.5), operation `op` of the token state.
    PrivacyIssue(u64),
    /// A `w:sync:app:state` fetch of sync operation `op` (conn::sync).
    AppStateFetch(u64),
    /// A `w:sync:app:state` patch upload of sync operation `op` (conn::sync).
    AppStatePatch(u64),
}

#[derive(Debug, Default)]
pub(crate) struct Pending {
    by_id: HashMap<String, (Waiter, Instant)>,
}

impl Pending {
    pub(crate) fn insert(&mut self, id: String, waiter: Waiter, deadline: Instant) {
        self.by_id.insert(id, (waiter, deadline));
    }

    pub(crate) fn take(&mut self, id: &str) -> Option<Waiter> {
        self.by_id.remove(id).map(|(w, _)| w)
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.by_id.values().map(|(_, d)| *d).min()
    }

    /// Remove and return every waiter whose deadline passed, oldest first.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<Waiter> {
        let mut expired: Vec<(Instant, String)> = self
            .by_id
            .iter()
            .filter(|(_, (_, d))| *d <= now)
            .map(|(id, (_, d))| (*d, id.clone()))
            .collect();
        expired.sort();
        expired
            .into_iter()
            .filter_map(|(_, id)| self.take(&id))
            .collect()
    }

    /// Remove every waiter (connection closed).
    pub(crate) fn drain(&mut self) -> Vec<Waiter> {
        self.by_id.drain().map(|(_, (w, _))| w).collect()
    }
}
