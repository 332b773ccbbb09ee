//! Privacy tokens inside the connection (shared/protocol/07 §2, §3): storing the tctokens
//! the server pushes, choosing `<tctoken>` / `<cstoken>` for a 1:1 send, issuing our own
//! token after a send, re-issuing after an identity change, pruning, and the 463 / 475 /
//! reach-out-timelock outcomes. The decisions themselves are the sans-IO functions of
//! [`crate::privacy`]; this module feeds them from the store and the wire.
//!
//! Records are stored under the peer's account LID (07 §2.2, identical in whatsmeow,
//! Baileys and whatsapp-rust), the PN only when no LID is known, as
//! [`TcToken::to_bytes`](crate::privacy::TcToken::to_bytes) under `Store::tc_token`.

use std::collections::{HashMap, HashSet};

use crate::Jid;
use crate::binary::Node;
use crate::conn::lid;
use crate::conn::messaging::{Context, Messaging};
use crate::conn::pending::Waiter;
use crate::privacy::{
    self, BucketConfig, PrivacyToken, TcToken, TokenGates, TokenKind, is_expired, should_issue,
    should_store,
};
use crate::store::StoreBatch;

/// How often expired records are pruned: once a day (whatsmeow `tcTokenDBPruneInterval`,
/// Baileys / WA Web `CLEAN_TC_TOKENS` on coming online, at most every 24 h).
const PRUNE_INTERVAL_SECS: u64 = 24 * 3600;

/// What a connection knows about privacy tokens, besides the store. Carried from one
/// connection to the next inside [`Caches`](crate::conn::Caches).
#[derive(Debug, Default)]
pub(crate) struct TokenState {
    /// Issuance IQs in flight, by operation: the peer (storage key) and the `t` sent.
    issues: HashMap<u64, (Jid, u64)>,
    /// Peers with an issuance (or a 463 recovery) in flight: at most one each (Baileys'
    /// in-flight set, whatsapp-rust's lock; 07 §3.5).
    in_flight: HashSet<Jid>,
    next_op: u64,
    /// Unix seconds of the last prune.
    last_prune: Option<u64>,
    /// The reach-out timelock last announced by the server (07 §3.6).
    timelock: Option<Timelock>,
}

/// A reach-out timelock as the `mex` notification states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timelock {
    active: bool,
    ends: Option<u64>,
}

/// Token policy of a connection: which tokens may be attached and the bucket sizes
/// (07 §2.4, §2.6, §3.1). The engine has no AB props yet, so the gates are on by default
/// (whatsmeow attaches both unconditionally; Baileys defaults prop 10518 to true "safe:
/// avoids 463") and the buckets are WA Web's defaults (7 days × 4), as whatsmeow and Baileys
/// hard-code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenPolicy {
    /// Which tokens may go on a 1:1 send.
    pub gates: TokenGates,
    /// Expiry of received tokens (AB props 865 / 909).
    pub receiver: BucketConfig,
    /// When to issue ours again, and re-issue / pruning of sender state (AB props 996 / 997).
    pub sender: BucketConfig,
}

/// Whether a 1:1 peer may get or be sent a token (whatsmeow shouldSendTCTokenInChatAction,
/// shouldSendCsToken): a phone-number or LID user, not the PSA account `0`, not a bot
/// (`@bot`, or the bot number ranges `1313555…` / `131655500…` Baileys isRegularUser
/// drops).
pub(crate) fn eligible(peer: &Jid) -> bool {
    let user = peer.user();
    (peer.is_pn() || peer.is_lid())
        && !user.is_empty()
        && user != "0"
        && !(peer.is_pn() && (user.starts_with("1313555") || user.starts_with("131655500")))
}

/// The store key of `peer`'s token record: its LID (no device) when known, else the PN.
pub(crate) fn storage_key(cx: &Context<'_>, peer: &Jid) -> Jid {
    let user = peer.to_non_ad();
    if user.is_lid() {
        return user;
    }
    lid::lid_of(cx.store, &user).unwrap_or(user)
}

/// Reads the record stored under `key` (a damaged record counts as absent).
pub(crate) fn read_record(cx: &Context<'_>, key: &Jid) -> Option<TcToken> {
    match cx.store.tc_token(&key.to_string()) {
        Ok(Some(blob)) => TcToken::from_bytes(&blob).ok(),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "tokens: cannot read a tctoken record");
            None
        }
    }
}

/// The record for `peer`: under its LID, else under its PN twin (whatsmeow's lookup tries
/// both).
fn lookup(cx: &Context<'_>, peer: &Jid) -> Option<TcToken> {
    let key = storage_key(cx, peer);
    read_record(cx, &key).or_else(|| {
        let twin = lid::twin(cx.store, &key)?;
        read_record(cx, &twin)
    })
}

fn unix(cx: &Context<'_>) -> u64 {
    cx.server_ms / 1000
}

impl Messaging {
    /// The token for a 1:1 send to `to` (07 §3.1): a valid stored tctoken, else a cstoken
    /// from the NCT salt (`Store::nct_salt`, filled by app-state / history sync) over the
    /// recipient's LID, else none. `None` for peers that never get tokens ([`eligible`]).
    pub(crate) fn token_for_send(&self, cx: &Context<'_>, to: &Jid) -> Option<PrivacyToken> {
        let to = to.to_non_ad();
        if !eligible(&to) || cx.own.as_ref().is_some_and(|o| is_own(cx, o, &to)) {
            return None;
        }
        let stored = lookup(cx, &to);
        let salt = match cx.store.nct_salt() {
            Ok(salt) => salt.filter(|s| !s.is_empty()),
            Err(e) => {
                tracing::warn!(error = %e, "tokens: cannot read the NCT salt");
                None
            }
        };
        let recipient_lid = if to.is_lid() {
            Some(to.clone())
        } else {
            lid::lid_of(cx.store, &to)
        };
        privacy::choose(
            stored.as_ref(),
            salt.as_deref(),
            recipient_lid.as_ref(),
            unix(cx),
            cx.tokens.receiver,
            cx.tokens.gates,
        )
    }

    /// After the server accepted a 1:1 message to `to` (07 §2.5): issue our token to the
    /// peer when [`should_issue`] says so for its stored sender timestamp, fire and forget.
    ///
    /// Only for a peer whose LID is known: records are keyed by LID (07 §2.2) and whatsmeow,
    /// whose sendDM issues to that key, never sends a DM without a LID since 2026-07
    /// (`send.go` "no LID found"); the target is therefore the LID, whatsmeow's choice
    /// (whatsapp-rust sends the PN unless AB prop 14303 is on).
    pub(crate) fn issue_after_send(&mut self, cx: &mut Context<'_>, to: &Jid) {
        let to = to.to_non_ad();
        if !eligible(&to) || cx.own.as_ref().is_some_and(|o| is_own(cx, o, &to)) {
            return;
        }
        let key = storage_key(cx, &to);
        if !key.is_lid() {
            return;
        }
        let now = unix(cx);
        let sender_ts = read_record(cx, &key).and_then(|r| r.sender_timestamp);
        if should_issue(sender_ts, now, cx.tokens.sender) {
            self.issue_token(cx, key, now);
        }
    }

    /// Sends the `privacy` issuance IQ for `peer` with `t` unless one is in flight for it.
    /// Returns whether it was sent.
    pub(crate) fn issue_token(&mut self, cx: &mut Context<'_>, peer: Jid, t: u64) -> bool {
        let state = &mut self.caches.tokens;
        if state.in_flight.contains(&peer) {
            return false;
        }
        let id = cx.wire.next_iq_id();
        let iq = privacy::issue_request(&id, &[(peer.clone(), t)]);
        if !cx.wire.send_internal(&iq) {
            return false;
        }
        state.next_op += 1;
        let op = state.next_op;
        state.in_flight.insert(peer.clone());
        state.issues.insert(op, (peer, t));
        cx.pending
            .insert(id, Waiter::PrivacyIssue(op), cx.now + cx.iq_timeout);
        tracing::debug!(t, "tokens: issuing our trusted-contact token");
        true
    }

    /// The issuance IQ was answered (`ok`) or failed / timed out. On success the sender
    /// timestamp is recorded, creating a byte-less placeholder record when none exists
    /// (whatsapp-rust: the result carries no token, RS2 #966, yet the rate limit must hold).
    /// Tokens echoed in the result are stored like a notification's (Baileys, RS2's
    /// explicit API), though the real server sends none.
    pub(crate) fn on_issue_result(&mut self, cx: &mut Context<'_>, op: u64, result: Option<&Node>) {
        let Some((peer, t)) = self.caches.tokens.issues.remove(&op) else {
            return;
        };
        self.caches.tokens.in_flight.remove(&peer);
        let Some(result) = result else {
            tracing::debug!("tokens: issuance IQ failed");
            return;
        };
        let mut record = read_record(cx, &peer).unwrap_or_default();
        if record.sender_timestamp.is_none_or(|old| t >= old) {
            record.sender_timestamp = Some(t);
        }
        if let Some(echoed) = result.child_by_tag("tokens").and_then(|tokens| {
            tokens
                .children_by_tag("token")
                .filter(|n| n.get_attr_str("type") == Some("trusted_contact"))
                .filter_map(|n| {
                    let timestamp = n.get_attr_str("t")?.parse().ok()?;
                    let token = n.content_bytes().filter(|b| !b.is_empty())?.to_vec();
                    Some(privacy::ReceivedToken { token, timestamp })
                })
                .max_by_key(|r| r.timestamp)
        }) && should_store(Some(&record), &echoed)
        {
            record.token = echoed.token;
            record.timestamp = Some(echoed.timestamp);
        }
        let mut batch = StoreBatch::new();
        batch.put_tc_token(&peer.to_string(), record.to_bytes());
        if let Err(e) = cx.store.apply(batch) {
            tracing::warn!(error = %e, "tokens: cannot record the sender timestamp");
        }
    }

    /// A `privacy_token` notification (already acked, 07 §2.2): store the newest usable
    /// token under the issuer's LID (newer wins), keeping our sender timestamp. The issuer's
    /// PN ⇄ LID pair (`from` PN + `sender_lid`) goes into the same batch.
    pub(crate) fn handle_privacy_token(&mut self, cx: &mut Context<'_>, node: &Node) {
        let parsed = match privacy::parse_notification(node) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "tokens: unusable privacy_token notification");
                return;
            }
        };
        let mut batch = StoreBatch::new();
        if let Some(sender_lid) = &parsed.sender_lid
            && let Err(e) = lid::learn(cx.store, &mut batch, &parsed.from, sender_lid)
        {
            tracing::warn!(error = %e, "tokens: cannot read the LID map");
        }
        let key = parsed.storage_key(|from| lid::lid_of(cx.store, from));
        if !eligible(&key) {
            tracing::debug!("tokens: token from a non-regular sender dropped");
            return;
        }
        if let Some(incoming) = parsed.newest() {
            let stored = read_record(cx, &key);
            if should_store(stored.as_ref(), incoming) {
                let record = TcToken {
                    token: incoming.token.clone(),
                    timestamp: Some(incoming.timestamp),
                    sender_timestamp: stored.and_then(|s| s.sender_timestamp),
                };
                batch.put_tc_token(&key.to_string(), record.to_bytes());
            } else {
                tracing::debug!("tokens: older token ignored");
            }
        }
        if batch.is_empty() {
            return;
        }
        if let Err(e) = cx.store.apply(batch) {
            tracing::warn!(error = %e, "tokens: cannot store a received token");
        }
    }

    /// The peer re-registered (`encrypt` notification with `<identity/>`, 07 §2.7): issue our
    /// token again with `t` = the stored sender timestamp (so the bucket does not advance),
    /// only if that timestamp exists and is not expired in sender mode (whatsmeow
    /// handleEncryptNotification, Baileys reissueTcTokenAfterIdentityChange).
    pub(crate) fn reissue_after_identity_change(&mut self, cx: &mut Context<'_>, peer: &Jid) {
        let peer = peer.to_non_ad();
        if !eligible(&peer) {
            return;
        }
        let key = storage_key(cx, &peer);
        let Some(sender_ts) = read_record(cx, &key).and_then(|r| r.sender_timestamp) else {
            return;
        };
        if is_expired(Some(sender_ts), unix(cx), cx.tokens.sender) {
            return;
        }
        self.issue_token(cx, key, sender_ts);
    }

    /// Deletes expired records, at most once a day (07 §2.9, Baileys / whatsapp-rust rule):
    /// a record goes when its token is expired (receiver mode) and its sender timestamp is
    /// expired or absent (sender mode); an expired token with a live sender timestamp is
    /// kept as a byte-less placeholder so the issuance rate limit survives.
    pub(crate) fn prune_tokens(&mut self, cx: &mut Context<'_>) {
        let now = unix(cx);
        if self
            .caches
            .tokens
            .last_prune
            .is_some_and(|last| now.saturating_sub(last) < PRUNE_INTERVAL_SECS)
        {
            return;
        }
        self.caches.tokens.last_prune = Some(now);
        let jids = match cx.store.tc_token_jids() {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "tokens: cannot list tctoken records");
                return;
            }
        };
        let mut batch = StoreBatch::new();
        for jid in jids {
            let Ok(Some(blob)) = cx.store.tc_token(&jid) else {
                continue;
            };
            let Ok(record) = TcToken::from_bytes(&blob) else {
                batch.delete_tc_token(&jid);
                continue;
            };
            let token_dead =
                record.token.is_empty() || is_expired(record.timestamp, now, cx.tokens.receiver);
            let sender_dead = is_expired(record.sender_timestamp, now, cx.tokens.sender);
            match (token_dead, sender_dead) {
                (true, true) => {
                    batch.delete_tc_token(&jid);
                }
                (true, false) if !record.token.is_empty() => {
                    let kept = TcToken {
                        token: Vec::new(),
                        timestamp: record.timestamp,
                        sender_timestamp: record.sender_timestamp,
                    };
                    batch.put_tc_token(&jid, kept.to_bytes());
                }
                _ => {}
            }
        }
        if batch.is_empty() {
            return;
        }
        tracing::debug!(changes = batch.len(), "tokens: pruning expired records");
        if let Err(e) = cx.store.apply(batch) {
            tracing::warn!(error = %e, "tokens: cannot prune");
        }
    }

    /// A 1:1 send to `to` was refused with 463 (07 §3.4, §3.5): Baileys' recovery, one
    /// issuance IQ with `t` = now per peer while none is in flight (Baileys #2517). The
    /// message is never re-sent ("retrying counts as another reach out"). Returns the
    /// timelock end when a reach-out timelock is known to be active.
    pub(crate) fn on_token_rejection(&mut self, cx: &mut Context<'_>, to: &Jid) -> Option<u64> {
        let to = to.to_non_ad();
        if eligible(&to) {
            let key = storage_key(cx, &to);
            let now = unix(cx);
            self.issue_token(cx, key, now);
        }
        self.active_timelock(unix(cx)).map(|t| t.unwrap_or(0))
    }

    /// `Some(ends)` while the last announced timelock is active at `now` (`ends` = `None`
    /// when the server named no end).
    fn active_timelock(&self, now: u64) -> Option<Option<u64>> {
        let lock = self.caches.tokens.timelock?;
        (lock.active && lock.ends.is_none_or(|e| e > now)).then_some(lock.ends)
    }

    /// A `mex` notification (already acked, 07 §3.6): the reach-out timelock and new-chat
    /// message capping updates become public events. Returns whether it was one of them.
    pub(crate) fn handle_mex(&mut self, cx: &mut Context<'_>, node: &Node) -> bool {
        let Some(update) = crate::privacy::parse_mex_update(node) else {
            return false;
        };
        match update {
            privacy::MexUpdate::ReachoutTimelock(lock) => {
                self.caches.tokens.timelock = Some(Timelock {
                    active: lock.is_active,
                    ends: lock.ends,
                });
                tracing::info!(active = lock.is_active, ends = ?lock.ends, "tokens: reach-out timelock update");
                cx.events.push_back(crate::Event::ReachoutTimelock(lock));
            }
            privacy::MexUpdate::MessageCapping(info) => {
                cx.events.push_back(crate::Event::NewChatCapping(info));
            }
        }
        true
    }
}

/// Whether `peer` is our own account, in either namespace (compare (user, server) pairs,
/// never bare users: 07 §1.1, whatsapp-rust is_own_identity).
pub(crate) fn is_own(cx: &Context<'_>, own: &Jid, peer: &Jid) -> bool {
    if peer.same_user(own) {
        return true;
    }
    cx.creds
        .as_ref()
        .and_then(|c| c.lid.as_deref())
        .and_then(|l| l.parse::<Jid>().ok())
        .is_some_and(|own_lid| own_lid.same_user(peer))
}

/// Which token a send carried, for [`crate::SendError::RecipientRequiresToken`].
pub(crate) fn kind_of(token: Option<&PrivacyToken>) -> Option<TokenKind> {
    token.map(PrivacyToken::kind)
}
