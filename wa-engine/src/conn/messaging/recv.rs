//! Receiving (05 §9): decrypt every `<enc>`, emit the message, then the delivery receipt
//! and the ack; undecryptable messages become an event plus a retry receipt (05 §9.3).
//! Also incoming receipts (05 §10.4) and the notifications messaging cares about.

use prost::Message as _;
use wa_proto::wa;

use super::{Context, Messaging};
use super::{MAX_RETRIES, message_id};
use crate::Jid;
use crate::binary::Node;
use crate::conn::{lid, signal_address};
use crate::event::{Event, MessageStatus, UndecryptableReason};
use crate::group::{self, GroupChange};
use crate::message::stanza::{self, Enc};
use crate::message::{IncomingMessage, MessageInfo, pad};
use crate::prekeys;
use crate::receipt::{self, ReceiptKind};
use crate::signal::{self, EncType, SignalError, TrustPolicy};
use crate::stanza::ack;
use crate::store::SenderKeyName;

/// The outcome of one `<enc>`.
enum Decrypted {
    /// A message to report (not SKDM-only).
    Content(Box<wa::Message>, Option<Jid>),
    /// Nothing to report (SKDM only, or a duplicate).
    Nothing,
}

fn reason_of(e: &SignalError) -> UndecryptableReason {
    match e {
        SignalError::NoSession | SignalError::InvalidMac => UndecryptableReason::NoSession,
        SignalError::InvalidPreKeyId { .. } | SignalError::InvalidSignedPreKeyId { .. } => {
            UndecryptableReason::UnknownPreKey
        }
        SignalError::NoSenderKey { .. } => UndecryptableReason::NoSenderKey,
        SignalError::UntrustedIdentity => UndecryptableReason::UntrustedIdentity,
        SignalError::Store(_) | SignalError::CorruptRecord { .. } | SignalError::NoCredentials => {
            UndecryptableReason::Store
        }
        _ => UndecryptableReason::InvalidMessage,
    }
}

/// True when a message carries nothing but a sender key (and context info): whatsapp-rust
/// suppresses these (05 §9.2 step 6).
fn is_skdm_only(m: &wa::Message) -> bool {
    let stripped = wa::Message {
        sender_key_distribution_message: None,
        fast_ratchet_key_sender_key_distribution_message: None,
        message_context_info: None,
        ..m.clone()
    };
    stripped == wa::Message::default()
}

impl Messaging {
    /// An incoming `<message>` stanza. Returns the protocol messages for the sync room
    /// (`conn::sync::take_sync_protocol`: app-state key shares, history-sync notifications),
    /// which are not emitted as messages.
    pub(crate) fn handle_message(
        &mut self,
        cx: &mut Context<'_>,
        node: &Node,
    ) -> Vec<crate::conn::sync::SyncProtocol> {
        let mut sync = Vec::new();
        self.handle_message_inner(cx, node, &mut sync);
        sync
    }

    fn handle_message_inner(
        &mut self,
        cx: &mut Context<'_>,
        node: &Node,
        sync: &mut Vec<crate::conn::sync::SyncProtocol>,
    ) {
        let Some(own) = cx.own.clone() else {
            cx.wire.send_ack(node);
            return;
        };
        let own_lid = own_lid(cx);
        let (mut info, encs) = match stanza::parse_message_for(node, &own, own_lid.as_ref()) {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::debug!(error = %e, "unreadable message stanza");
                if let Some(nack) = ack::nack_for(node, 487) {
                    cx.wire.send_internal(&nack);
                }
                return;
            }
        };
        // 07 §1.2: whatsmeow stores (SenderAlt, Sender) / (RecipientAlt, Chat) before it
        // decrypts; the move of the sender's PN sessions to its LID rides in the same batch.
        self.learn_identities(cx, &mut info);
        if encs.iter().all(|e| e.kind.is_none()) {
            cx.events.push_back(Event::UndecryptableMessage {
                info: Box::new(info),
                reason: UndecryptableReason::Unavailable,
                retry_count: 0,
            });
            cx.wire.send_ack(node);
            return;
        }
        let mut contents = Vec::new();
        let mut failure: Option<SignalError> = None;
        let mut bad_plaintext = false;
        let mut duplicate = false;
        let mut retry_count_in = 0;
        for enc in &encs {
            retry_count_in = retry_count_in.max(enc.count.unwrap_or(0));
            match self.decrypt_enc(cx, &info, enc) {
                Ok(Decrypted::Content(m, chat)) => contents.push((m, chat)),
                Ok(Decrypted::Nothing) => {}
                Err(DecryptError::Signal(SignalError::DuplicateMessage { .. })) => duplicate = true,
                Err(DecryptError::Signal(e)) => {
                    tracing::debug!(id = %info.id, sender = %info.sender, error = %e, "cannot decrypt");
                    failure.get_or_insert(e);
                }
                Err(DecryptError::Plaintext) => bad_plaintext = true,
            }
        }
        if let Some(e) = failure {
            let reason = reason_of(&e);
            let count = self.send_retry_receipt(cx, node, &info, retry_count_in, &e);
            cx.events.push_back(Event::UndecryptableMessage {
                info: Box::new(info),
                reason,
                retry_count: count,
            });
            // whatsmeow acks (without error) after a retry receipt.
            cx.wire.send_ack(node);
            return;
        }
        if bad_plaintext && contents.is_empty() {
            cx.events.push_back(Event::UndecryptableMessage {
                info: Box::new(info),
                reason: UndecryptableReason::InvalidPlaintext,
                retry_count: 0,
            });
            if let Some(nack) = ack::nack_for(node, 491) {
                cx.wire.send_internal(&nack);
            }
            return;
        }
        self.caches.retry_done(&info.id);
        if !duplicate || !contents.is_empty() {
            for (mut message, chat) in contents {
                let mut info = info.clone();
                if let Some(chat) = chat {
                    info.chat = chat;
                }
                // Sync hook (conn::sync): key shares and history notifications.
                if let Some(p) = crate::conn::sync::take_sync_protocol(&info, &mut message) {
                    sync.push(p);
                    continue;
                }
                let msg = IncomingMessage {
                    info,
                    message: *message,
                };
                // Dedup and rich-message hooks (conn::dedup, message::rich).
                let Some(vote) = Self::before_report(cx, &msg) else {
                    continue;
                };
                cx.events.push_back(Event::Message(Box::new(msg)));
                if let Some(vote) = vote {
                    cx.events.push_back(Event::PollVote(Box::new(vote)));
                }
            }
        }
        let kind = if info.category.as_deref() == Some("peer") {
            ReceiptKind::PeerMsg
        } else if info.from_me {
            ReceiptKind::Sender
        } else {
            ReceiptKind::Delivered
        };
        // The receipt doubles as the acknowledgement (whatsmeow, Baileys); whatsapp-rust
        // (and, per its notes, WA Web) also sends the ack, which the server needs to stop
        // re-delivering from its offline queue.
        cx.wire
            .send_internal(&receipt::delivery_receipt(node, &kind));
        cx.wire.send_ack(node);
    }

    /// Before a message is reported: `None` when (chat, sender, id) was already reported
    /// (conn::dedup); else the decrypted poll vote it carries, if any (message::rich). The
    /// dedup key and poll state are written in one batch.
    fn before_report(
        cx: &mut Context<'_>,
        msg: &IncomingMessage,
    ) -> Option<Option<crate::message::rich::PollVoteEvent>> {
        let mut batch = crate::store::StoreBatch::new();
        let now = cx.server_ms / 1000;
        match crate::conn::dedup::check_and_record(cx.store, &mut batch, &msg.info, now) {
            Ok(true) => {
                tracing::debug!(id = %msg.info.id, sender = %msg.info.sender, "duplicate message dropped");
                return None;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "dedup lookup failed"),
        }
        let vote =
            crate::message::rich::on_incoming(cx.store, &mut batch, msg).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "poll state lookup failed");
                None
            });
        // Disappearing-timer settings (message::ephemeral): the chat's timer follows.
        if let Err(e) = crate::message::ephemeral::on_incoming(cx.store, &mut batch, msg) {
            tracing::warn!(error = %e, "chat timer lookup failed");
        }
        if let Err(e) = cx.store.apply(batch) {
            tracing::warn!(error = %e, "cannot store dedup/poll state");
        }
        Some(vote)
    }

    fn decrypt_enc(
        &mut self,
        cx: &mut Context<'_>,
        info: &MessageInfo,
        enc: &Enc,
    ) -> Result<Decrypted, DecryptError> {
        let Some(kind) = enc.kind else {
            return Ok(Decrypted::Nothing);
        };
        // Pairwise sessions by LID (07 §1.3); group sender keys keep the name the sender
        // distributed them under (the group's addressing).
        let address = self.session_address(cx, &info.sender)?;
        let sender_key_address = signal_address(&info.sender);
        let padded = match kind {
            EncType::PkMsg => {
                let out = signal::decrypt_pkmsg(
                    cx.store,
                    &address,
                    &enc.ciphertext,
                    TrustPolicy::AutoTrust,
                    &mut *cx.rng,
                )?;
                self.caches.sessions.insert(address.clone());
                out.plaintext
            }
            EncType::Msg => signal::decrypt_msg(cx.store, &address, &enc.ciphertext, &mut *cx.rng)?,
            EncType::SkMsg => {
                let name = SenderKeyName::new(info.chat.to_string(), sender_key_address.clone());
                signal::decrypt_group(cx.store, &name, &enc.ciphertext)?
            }
        };
        let plain = if enc.version == 3 {
            padded.as_slice()
        } else {
            pad::unpad(&padded).map_err(|_| DecryptError::Plaintext)?
        };
        let mut message = wa::Message::decode(plain).map_err(|_| DecryptError::Plaintext)?;
        if let Some(skdm) = message.sender_key_distribution_message.as_ref()
            && let Some(bytes) = skdm.axolotl_sender_key_distribution_message.as_deref()
        {
            let group = skdm
                .group_id
                .clone()
                .filter(|g| !g.is_empty())
                .unwrap_or_else(|| info.chat.to_string());
            let name = SenderKeyName::new(group, sender_key_address.clone());
            if let Err(e) = signal::process_sender_key_distribution(cx.store, &name, bytes) {
                tracing::debug!(error = %e, "bad sender key distribution");
            }
        }
        let mut chat = None;
        if let Some(dsm) = message.device_sent_message.take() {
            if let Some(dest) = dsm
                .destination_jid
                .as_deref()
                .and_then(|d| d.parse::<Jid>().ok())
            {
                chat = Some(dest.to_non_ad());
            }
            let context = message.message_context_info.take();
            message = dsm.message.map(|m| *m).unwrap_or_default();
            if message.message_context_info.is_none() {
                message.message_context_info = context;
            }
        }
        if is_skdm_only(&message) {
            return Ok(Decrypted::Nothing);
        }
        Ok(Decrypted::Content(Box::new(message), chat))
    }

    /// Sends a retry receipt for a failed message (05 §9.3); returns its count (0 = none).
    fn send_retry_receipt(
        &mut self,
        cx: &mut Context<'_>,
        node: &Node,
        info: &MessageInfo,
        count_in: u32,
        error: &SignalError,
    ) -> u32 {
        let previous = self
            .caches
            .retries_sent
            .get(&info.id)
            .copied()
            .unwrap_or(0)
            .max(count_in);
        let count = previous + 1;
        if count > MAX_RETRIES {
            return 0;
        }
        self.caches.retries_sent.insert(info.id.clone(), count);
        let Some(creds) = cx.creds.clone() else {
            return 0;
        };
        // Keys when the session cannot be repaired by a plain re-send (whatsapp-rust: no
        // session; everyone: from the second retry on).
        let needs_keys = count >= 2
            || matches!(
                error,
                SignalError::NoSession
                    | SignalError::InvalidPreKeyId { .. }
                    | SignalError::InvalidSignedPreKeyId { .. }
            );
        let keys = if needs_keys {
            match signal::generate_prekeys(cx.store, 1, &mut *cx.rng) {
                Ok(mut fresh) => fresh.pop().map(|prekey| {
                    let identity = crate::signal::KeyPair::from(&creds.identity_key);
                    let signed = crate::signal::SignedPreKeyRecord::from(&creds.signed_prekey);
                    prekeys::retry_keys_node(
                        &identity.public,
                        &prekey,
                        &signed,
                        creds.account.as_deref(),
                    )
                }),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot generate a prekey for a retry receipt");
                    None
                }
            }
        } else {
            None
        };
        cx.wire.send_internal(&receipt::retry_receipt(
            node,
            count,
            creds.registration_id,
            keys,
        ));
        count
    }

    /// An incoming `<receipt>` (already acked by the caller).
    pub(crate) fn handle_receipt(&mut self, cx: &mut Context<'_>, node: &Node) {
        let Some(own) = cx.own.clone() else {
            return;
        };
        if let Some(retry) = receipt::parse_retry(node, &own) {
            self.handle_retry_request(cx, retry);
            return;
        }
        let own_lid = own_lid(cx);
        let Some(mut r) = receipt::parse_receipt_for(node, &own, own_lid.as_ref()) else {
            return;
        };
        if let (Some(pn), Some(lid)) = (&r.sender_pn, &r.sender_lid) {
            let (pn, lid) = (pn.clone(), lid.clone());
            self.learn_pair(cx, &pn, &lid);
        }
        let sender = r.sender.to_non_ad();
        let twin =
            lid::own_twin(cx.creds.as_ref(), &sender).or_else(|| lid::twin(cx.store, &sender));
        if let Some(twin) = twin {
            if twin.is_pn() {
                r.sender_pn.get_or_insert(twin);
            } else {
                r.sender_lid.get_or_insert(twin);
            }
        }
        let status = match r.kind {
            ReceiptKind::Delivered | ReceiptKind::Inactive => Some(MessageStatus::Delivered),
            ReceiptKind::Read => Some(MessageStatus::Read),
            ReceiptKind::Played => Some(MessageStatus::Played),
            _ => None,
        };
        if let Some(status) = status
            && !r.from_me
        {
            for id in &r.ids {
                let Some(sent) = self.caches.sent.get_mut(id) else {
                    continue;
                };
                if sent.status.is_some_and(|s| s >= status) {
                    continue;
                }
                sent.status = Some(status);
                let chat = sent.chat.clone();
                cx.events.push_back(Event::MessageStatus {
                    id: message_id(id),
                    chat,
                    status,
                    by: Some(r.sender.clone()),
                    timestamp: r.timestamp,
                });
            }
        }
        cx.events.push_back(Event::Receipt(r));
    }

    /// A notification messaging acts on (already acked). Returns true when consumed.
    pub(crate) fn handle_messaging_notification(&mut self, cx: &mut Context<'_>, node: &Node) {
        match node.get_attr_str("type") {
            Some("encrypt") => {
                if node.child_by_tag("count").is_some() {
                    let count = prekeys::parse_count(node);
                    if count < prekeys::MIN_PREKEY_COUNT {
                        self.upload_prekeys(cx);
                    }
                } else if node.child_by_tag("identity").is_some()
                    && let Some(from) = node.get_attr_jid("from").cloned()
                    && !from.user().is_empty()
                {
                    self.forget_user_sessions(cx, &from);
                    // 07 §2.7: the peer re-registered; re-issue our token (stored `t`).
                    self.reissue_after_identity_change(cx, &from);
                }
            }
            Some("devices") => {
                if let Some(from) = node.get_attr_jid("from").cloned() {
                    // May come from a LID (whatsmeow commit 590a915a): drop both forms.
                    if let Some(twin) = lid::twin(cx.store, &from) {
                        self.caches.forget_devices(&twin);
                    }
                    self.caches.forget_devices(&from);
                }
            }
            Some("privacy_token") => self.handle_privacy_token(cx, node),
            Some("mex") => {
                self.handle_mex(cx, node);
            }
            Some("w:gp2") => {
                if let Some(n) = group::parse_notification(node) {
                    self.on_group_notification(cx, &n);
                }
                self.remember_group_timer(cx, node);
            }
            _ => {}
        }
    }

    fn on_group_notification(&mut self, cx: &mut Context<'_>, n: &group::GroupNotification) {
        let own = cx.own.clone();
        for change in &n.changes {
            match change {
                GroupChange::Created(info) => {
                    self.caches.groups.insert(info.jid.clone(), info.clone());
                }
                GroupChange::Added(_) | GroupChange::Promoted(_) | GroupChange::Demoted(_) => {
                    self.caches.groups.remove(&n.group);
                }
                GroupChange::Removed(removed) => {
                    self.caches.groups.remove(&n.group);
                    self.rotate_sender_key(cx, &n.group, own.as_ref());
                    if own
                        .as_ref()
                        .is_some_and(|o| removed.iter().any(|r| r.same_user(o)))
                    {
                        tracing::info!(group = %n.group, "removed from group");
                    }
                }
                _ => {}
            }
        }
    }

    /// A `w:gp2` `<ephemeral expiration>` / `<not_ephemeral>` sets the group's disappearing
    /// timer: stored like a 1:1 chat's ([`crate::message::ephemeral`]), so our next group
    /// sends carry `contextInfo.expiration` (whatsmeow `group.go` parseGroupChange reads the
    /// same element; the setting time is the stanza's `t`, unix seconds).
    fn remember_group_timer(&mut self, cx: &mut Context<'_>, node: &Node) {
        let Some(expiration) = crate::notification::group_extras(node).ephemeral_secs else {
            return;
        };
        let Some(group) = node.get_attr_jid("from").filter(|j| j.is_group()).cloned() else {
            return;
        };
        let setting_timestamp = node
            .get_attr_str("t")
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| i64::try_from(cx.server_ms / 1000).unwrap_or(i64::MAX));
        let timer = crate::message::ephemeral::ChatTimer {
            expiration,
            setting_timestamp,
        };
        let mut batch = crate::store::StoreBatch::new();
        match crate::message::ephemeral::remember(cx.store, &mut batch, &group, timer) {
            Ok(true) => {
                if let Err(e) = cx.store.apply(batch) {
                    tracing::warn!(error = %e, "cannot store the group's timer");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the group's timer"),
        }
    }

    /// 04 §9.6: after a member leaves, our next group send uses a fresh sender key, so the
    /// removed member cannot read it.
    pub(crate) fn rotate_sender_key(
        &mut self,
        cx: &mut Context<'_>,
        group: &Jid,
        own: Option<&Jid>,
    ) {
        self.caches.forget_distribution(group);
        let Some(own) = own else {
            return;
        };
        let name = SenderKeyName::new(group.to_string(), signal_address(own));
        let mut batch = crate::store::StoreBatch::new();
        batch.delete_sender_key(&name);
        if let Err(e) = cx.store.apply(batch) {
            tracing::warn!(error = %e, "cannot rotate the sender key");
        }
    }
}

/// Why one `<enc>` failed.
enum DecryptError {
    Signal(SignalError),
    Plaintext,
}

impl From<crate::store::StoreError> for DecryptError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Signal(SignalError::Store(e))
    }
}

/// Our own LID device JID from the credentials, if known.
pub(crate) fn own_lid(cx: &Context<'_>) -> Option<Jid> {
    cx.creds
        .as_ref()
        .and_then(|c| c.lid.as_deref())
        .and_then(|l| l.parse().ok())
}

impl Messaging {
    /// Stores the PN ⇄ LID pairs an incoming message names (sender and chat), moving the
    /// sender's PN sessions to its LID in the same batch, then fills the message's missing
    /// alternate identities from the map (07 §1.2, §1.7).
    fn learn_identities(&mut self, cx: &mut Context<'_>, info: &mut MessageInfo) {
        if let (Some(pn), Some(lid)) = (info.sender_pn.clone(), info.sender_lid.clone()) {
            self.learn_pair(cx, &pn, &lid);
        }
        if let Some(alt) = info.chat_alt.clone() {
            let chat = info.chat.clone();
            self.learn_pair(cx, &chat, &alt);
        }
        let sender = info.sender.to_non_ad();
        let twin =
            lid::own_twin(cx.creds.as_ref(), &sender).or_else(|| lid::twin(cx.store, &sender));
        if let Some(twin) = twin {
            if twin.is_pn() {
                info.sender_pn.get_or_insert(twin);
            } else {
                info.sender_lid.get_or_insert(twin);
            }
        }
        if !info.is_group && info.chat_alt.is_none() {
            info.chat_alt = lid::twin(cx.store, &info.chat);
        }
    }

    /// Stores the pair (`a`, `b`) (a PN and a LID of one account) if new, together with the
    /// move of that account's PN sessions to the LID address, in one batch.
    pub(crate) fn learn_pair(&mut self, cx: &mut Context<'_>, a: &Jid, b: &Jid) {
        let Some((pn, lid_user)) = lid::pair_of(a, b) else {
            return;
        };
        // Our own pair lives in the credentials only (see lid::own_twin).
        if lid::own_twin(cx.creds.as_ref(), a).is_some()
            || lid::own_twin(cx.creds.as_ref(), b).is_some()
        {
            return;
        }
        let mut batch = crate::store::StoreBatch::new();
        let result = lid::learn(cx.store, &mut batch, a, b).and_then(|learned| {
            if learned {
                let moved = lid::migrate(cx.store, &mut batch, &pn, &lid_user)?;
                Ok(Some(moved))
            } else {
                Ok(None)
            }
        });
        match result {
            Ok(Some((from, _))) => {
                if let Err(e) = cx.store.apply(batch) {
                    tracing::warn!(error = %e, "cannot store a PN/LID mapping");
                    return;
                }
                for address in from {
                    self.caches.sessions.remove(&address);
                }
                self.caches.migrated.insert(pn);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the LID map"),
        }
    }
}

impl From<SignalError> for DecryptError {
    fn from(e: SignalError) -> Self {
        Self::Signal(e)
    }
}
