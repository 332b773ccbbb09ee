//! Sending (05 §6, §7, §8) and answering retry receipts (05 §9.4).
//!
//! A send is an operation that may wait on up to three IQs — group metadata, usync device
//! lists, prekey bundles — each skipped when the cache already answers it, then encrypts
//! for every device in one synchronous step (every ratchet / sender-key advance is stored
//! by the signal layer before the stanza is queued) and waits for the server ack.

use std::collections::HashSet;

use prost::Message as _;
use wa_proto::wa;

use super::{Context, Messaging};
use super::{RetryOp, message_id};
use crate::Jid;
use crate::binary::{Node, Value};
use crate::conn::event::{Event, MessageStatus};
use crate::conn::pending::Waiter;
use crate::conn::request::{Reply, RequestId, SendError};
use crate::conn::{lid, signal_address};
use crate::message::{MessageId, content, pad, phash, stanza};
use crate::prekeys;
use crate::signal::{self, EncType, SignalError, TrustPolicy};
use crate::store::SenderKeyName;
use crate::usync::{self, device_jid};

/// What a send operation waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Nothing yet (or a response was just processed).
    Ready,
    /// Group metadata (06 §1.2).
    Group,
    /// usync device lists (05 §5).
    Devices,
    /// Prekey bundles (04 §4.4).
    Bundles,
    /// The server ack (05 §8).
    Ack,
}

/// One message being sent.
#[derive(Debug)]
pub(crate) struct SendOp {
    pub(crate) request: Option<RequestId>,
    pub(crate) id: String,
    pub(crate) to: Jid,
    pub(crate) message: wa::Message,
    pub(crate) phase: Phase,
    /// Bundles were fetched once already (devices still without a session are skipped).
    pub(crate) fetched: bool,
    /// The phash we computed, compared with one in the ack.
    pub(crate) phash: Option<String>,
    /// The devices the stanza carried an `<enc>` for (set when it is sent).
    pub(crate) sent_to: Vec<Jid>,
    /// A follow-up to devices an earlier send of the same message missed (a phash
    /// mismatch in its ack): only devices outside `sent_to` are targets, the stanza says
    /// `device_fanout="false"`, and its ack emits nothing.
    pub(crate) follow_up: bool,
    /// The 1:1 recipient as it goes on the wire (07 §1.4), set once the namespace is
    /// chosen; `None` for groups and before.
    pub(crate) wire_to: Option<Jid>,
    /// The privacy token the stanza carried (07 §3.1).
    pub(crate) token: Option<crate::privacy::TokenKind>,
}

fn encode(message: &wa::Message) -> Vec<u8> {
    message.encode_to_vec()
}

impl Messaging {
    /// Starts sending `message` to `to` (a user or group JID).
    pub(crate) fn start_send(
        &mut self,
        cx: &mut Context<'_>,
        request: Option<RequestId>,
        to: Jid,
        message: wa::Message,
        id: Option<MessageId>,
    ) -> Result<String, SendError> {
        let own = cx.own.clone().ok_or(SendError::NotLoggedIn)?;
        if !(to.is_group() || to.is_pn() || to.is_lid()) || to.user().is_empty() {
            return Err(SendError::InvalidRecipient);
        }
        let to = to.to_non_ad();
        let id = match id {
            Some(id) => id.0,
            None => MessageId::generate(cx.server_ms / 1000, own.user(), &mut *cx.rng).0,
        };
        // View-once wrapper and the chat's disappearing timer (message::ephemeral); a
        // timer setting we send is remembered for the chat.
        let now_s = i64::try_from(cx.server_ms / 1000).unwrap_or(i64::MAX);
        let (message, timer) =
            crate::message::ephemeral::prepare_outgoing(cx.store, &to, message, now_s);
        if let Some(batch) = timer
            && let Err(e) = cx.store.apply(batch)
        {
            tracing::warn!(error = %e, "cannot store chat timer");
        }
        let op = self.ops.next_id();
        self.ops.sends.insert(
            op,
            SendOp {
                request,
                id: id.clone(),
                to,
                message,
                phase: Phase::Ready,
                fetched: false,
                phash: None,
                sent_to: Vec::new(),
                follow_up: false,
                wire_to: None,
                token: None,
            },
        );
        self.advance_send(cx, op);
        Ok(id)
    }

    fn send_op_iq(&mut self, cx: &mut Context<'_>, op: u64, phase: Phase, iq: Node) {
        let iq_id = iq.get_attr_str("id").unwrap_or_default().to_owned();
        if let Err(e) = cx.wire.send_node(&iq) {
            self.fail_send(cx, op, e);
            return;
        }
        if let Some(s) = self.ops.sends.get_mut(&op) {
            s.phase = phase;
        }
        cx.pending
            .insert(iq_id, Waiter::Send(op), cx.now + cx.iq_timeout);
    }

    fn fail_send(&mut self, cx: &mut Context<'_>, op: u64, error: SendError) {
        if let Some(s) = self.ops.sends.remove(&op) {
            tracing::debug!(id = %s.id, %error, "send failed");
            if let Some(request) = s.request {
                cx.events.push_back(Event::RequestDone {
                    id: request,
                    result: Err(error),
                });
            }
        }
    }

    /// Users whose devices a send needs: recipient (or every participant) plus ourselves.
    fn send_users(&self, to: &Jid, own: &Jid) -> Option<Vec<Jid>> {
        let mut users = if to.is_group() {
            self.caches
                .groups
                .get(to)?
                .participants
                .iter()
                .map(|p| p.jid.to_non_ad())
                .collect()
        } else {
            vec![to.clone()]
        };
        let own_user = own.to_non_ad();
        if !users.contains(&own_user) {
            users.push(own_user);
        }
        Some(users)
    }

    fn cached_devices(&self, users: &[Jid]) -> Vec<Jid> {
        users
            .iter()
            .flat_map(|u| {
                self.caches
                    .devices
                    .get(u)
                    .into_iter()
                    .flatten()
                    .map(move |&d| device_jid(u, d))
            })
            .collect()
    }

    pub(crate) fn has_session_cached(
        &mut self,
        cx: &mut Context<'_>,
        device: &Jid,
    ) -> Result<bool, SendError> {
        let address = self.session_address(cx, device)?;
        if self.caches.sessions.contains(&address) {
            return Ok(true);
        }
        let has = signal::has_session(cx.store, &address)
            .inspect_err(|e| tracing::warn!(error = %e, "cannot read session"))?;
        if has {
            self.caches.sessions.insert(address);
        }
        Ok(has)
    }

    fn advance_send(&mut self, cx: &mut Context<'_>, op: u64) {
        let Some(own) = cx.own.clone() else {
            self.fail_send(cx, op, SendError::NotLoggedIn);
            return;
        };
        let Some((to, fetched)) = self.ops.sends.get(&op).map(|s| (s.to.clone(), s.fetched)) else {
            return;
        };
        // 1. Group participants (06 §1.2).
        let Some(users) = self.send_users(&to, &own) else {
            let id = cx.wire.next_iq_id();
            self.send_op_iq(cx, op, Phase::Group, crate::group::metadata_iq(&id, &to));
            return;
        };
        // 2. Device lists (05 §5), and the 1:1 recipient's LID when unknown (07 §1.4: the
        // same usync asks `<lid/>`; whatsmeow's sendDM queries GetUserInfo for it).
        let missing: Vec<Jid> = users
            .iter()
            .filter(|u| {
                !self.caches.devices.contains_key(*u)
                    || (!to.is_group() && **u == to && self.lid_unknown(cx, u))
            })
            .cloned()
            .collect();
        if !missing.is_empty() {
            let id = cx.wire.next_iq_id();
            self.send_op_iq(cx, op, Phase::Devices, usync::devices_query(&id, &missing));
            return;
        }
        // 3. Sessions (04 §4.4): pairwise targets without one, in the wire namespace
        // (07 §1.4: `to` and every `<to jid>`, own devices included, share one).
        let mut targets = match self.pairwise_targets(&to, &own, &users) {
            Ok(t) => t,
            Err(e) => return self.fail_send(cx, op, e),
        };
        if !to.is_group() {
            let wire_to = self.wire_recipient(cx, &to);
            if wire_to.is_lid() {
                let own_lid = super::recv::own_lid(cx);
                targets = targets
                    .into_iter()
                    .map(|d| match &own_lid {
                        Some(own_lid) if d.same_user(&own) => {
                            lid::with_device_of(&own_lid.to_non_ad(), &d)
                        }
                        _ => lid::to_lid_device(cx.store, &d),
                    })
                    .collect();
            } else {
                targets = targets
                    .into_iter()
                    .map(|d| lid::to_pn_device(cx.store, &d))
                    .collect();
            }
            if let Some(s) = self.ops.sends.get_mut(&op) {
                s.wire_to = Some(wire_to);
            }
        }
        if let Some(s) = self.ops.sends.get(&op)
            && s.follow_up
        {
            targets.retain(|d| !s.sent_to.contains(d));
            if targets.is_empty() {
                tracing::debug!(id = %s.id, "phash mismatch, but no device was missed");
                self.ops.sends.remove(&op);
                return;
            }
        }
        if !fetched {
            let mut need = Vec::new();
            for d in &targets {
                match self.has_session_cached(cx, d) {
                    Ok(false) => need.push(d.clone()),
                    Ok(true) => {}
                    Err(e) => return self.fail_send(cx, op, e),
                }
            }
            if !need.is_empty() {
                if let Some(s) = self.ops.sends.get_mut(&op) {
                    s.fetched = true;
                }
                let id = cx.wire.next_iq_id();
                self.send_op_iq(cx, op, Phase::Bundles, prekeys::fetch_iq(&id, &need));
                return;
            }
        }
        // 4. Encrypt and send.
        if let Err(e) = self.encrypt_and_send(cx, op, &own, &users, targets) {
            self.fail_send(cx, op, e);
        }
    }

    /// Devices that get a pairwise `<enc>`: for 1:1 every device of the recipient and of
    /// ourselves (minus this device); for groups the devices that lack our sender key.
    fn pairwise_targets(
        &mut self,
        to: &Jid,
        own: &Jid,
        users: &[Jid],
    ) -> Result<Vec<Jid>, SendError> {
        let all = self.cached_devices(users);
        let mut out: Vec<Jid> = all
            .into_iter()
            .filter(|d| !(d.same_user(own) && d.device() == own.device()))
            .filter(|d| !self.caches.no_bundle.contains(d))
            .collect();
        if to.is_group() {
            let sent = self.caches.skdm_sent.get(to);
            out.retain(|d| !sent.is_some_and(|s| s.contains(d)));
        }
        Ok(out)
    }

    /// A usync / group / bundle response for a send.
    pub(crate) fn on_send_iq(
        &mut self,
        cx: &mut Context<'_>,
        op: u64,
        parsed: Result<&Node, SendError>,
    ) {
        let Some(phase) = self.ops.sends.get(&op).map(|s| s.phase) else {
            return;
        };
        let result = match parsed {
            Ok(n) => n,
            Err(e) => return self.fail_send(cx, op, e),
        };
        match phase {
            Phase::Group => match crate::group::parse_group_result(result) {
                Ok(info) => {
                    self.caches.groups.insert(info.jid.clone(), info);
                }
                Err(e) => return self.fail_send(cx, op, SendError::BadResponse(e.into())),
            },
            Phase::Devices => {
                let list = match usync::parse_devices(result) {
                    Ok(list) => list,
                    Err(e) => return self.fail_send(cx, op, SendError::BadResponse(e.into())),
                };
                let asked: Vec<Jid> = self
                    .ops
                    .sends
                    .get(&op)
                    .and_then(|s| cx.own.clone().and_then(|own| self.send_users(&s.to, &own)))
                    .unwrap_or_default();
                for u in list {
                    if let Some(lid) = &u.lid {
                        // 07 §1.2: the usync `<lid>` answer feeds the map; the devices are the
                        // same under either namespace (07 §1.5), so cache them under both.
                        self.learn_pair(cx, &u.user, lid);
                        if u.user.is_pn() {
                            self.caches.devices.insert(lid.clone(), u.devices.clone());
                        }
                    }
                    if let Some(twin) = lid::twin(cx.store, &u.user) {
                        self.caches.devices.insert(twin, u.devices.clone());
                    }
                    self.caches.devices.insert(u.user.clone(), u.devices);
                }
                // Users the server did not list have no devices; PN users it named no LID
                // for are not asked again.
                for u in asked {
                    if u.is_pn() && lid::lid_of(cx.store, &u).is_none() {
                        self.caches.lid_asked.insert(u.clone());
                    }
                    self.caches.devices.entry(u).or_default();
                }
            }
            Phase::Bundles => {
                let bundles = match prekeys::parse_bundles(result) {
                    Ok(bundles) => bundles,
                    Err(e) => return self.fail_send(cx, op, SendError::BadResponse(e.into())),
                };
                self.process_bundles(cx, bundles);
            }
            Phase::Ready | Phase::Ack => return,
        }
        if let Some(s) = self.ops.sends.get_mut(&op) {
            s.phase = Phase::Ready;
        }
        self.advance_send(cx, op);
    }

    /// Builds sessions from fetched bundles; devices without a usable bundle are
    /// remembered and skipped.
    pub(crate) fn process_bundles(
        &mut self,
        cx: &mut Context<'_>,
        bundles: Vec<(
            Jid,
            Result<crate::signal::PreKeyBundle, prekeys::BundleError>,
        )>,
    ) {
        for (device, bundle) in bundles {
            let device = device_jid(&device, device.device());
            match bundle {
                Ok(bundle) => {
                    // Another send may have set the session up meanwhile.
                    if self.has_session_cached(cx, &device).unwrap_or(false) {
                        continue;
                    }
                    let address = match self.session_address(cx, &device) {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot resolve a session address");
                            continue;
                        }
                    };
                    match signal::process_prekey_bundle(
                        cx.store,
                        &address,
                        &bundle,
                        TrustPolicy::AutoTrust,
                        &mut *cx.rng,
                    ) {
                        Ok(_) => {
                            self.caches.sessions.insert(address);
                        }
                        Err(e) => {
                            tracing::warn!(%device, error = %e, "bundle rejected");
                            self.caches.no_bundle.insert(device);
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(%device, error = %e, "no bundle for device");
                    self.caches.no_bundle.insert(device);
                }
            }
        }
    }

    /// Pairwise-encrypts `plaintext` (unpadded protobuf) for `device`; `None` when there is
    /// no session (the device is skipped).
    pub(crate) fn encrypt_for(
        &mut self,
        cx: &mut Context<'_>,
        device: &Jid,
        plaintext: &[u8],
    ) -> Result<Option<(EncType, Vec<u8>)>, SendError> {
        let padded = pad::pad(plaintext.to_vec(), &mut *cx.rng);
        let address = self.session_address(cx, device)?;
        match signal::encrypt(cx.store, &address, &padded) {
            Ok(out) => Ok(Some(out)),
            Err(SignalError::NoSession) => {
                self.caches.sessions.remove(&address);
                Ok(None)
            }
            Err(SignalError::UntrustedIdentity) => {
                tracing::warn!(%device, "identity mismatch; skipping device");
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(%device, error = %e, "cannot encrypt");
                Err(e.into())
            }
        }
    }

    fn device_identity(&self, cx: &Context<'_>) -> Option<Vec<u8>> {
        cx.creds.as_ref().and_then(|c| c.account.clone())
    }

    fn encrypt_and_send(
        &mut self,
        cx: &mut Context<'_>,
        op: u64,
        own: &Jid,
        users: &[Jid],
        targets: Vec<Jid>,
    ) -> Result<(), SendError> {
        let Some(s) = self.ops.sends.get(&op) else {
            return Ok(());
        };
        let (to, id, message) = (
            s.wire_to.clone().unwrap_or_else(|| s.to.clone()),
            s.id.clone(),
            s.message.clone(),
        );
        let follow_up = s.follow_up;
        let stanza_type = content::stanza_type(&message);
        let media_type = content::media_type(&message);
        let node = if to.is_group() {
            let (node, hash) = self.build_group_send(
                cx,
                &to,
                &id,
                &message,
                own,
                users,
                targets,
                stanza_type,
                media_type,
            )?;
            (node, hash, None)
        } else {
            self.build_direct_send(
                cx,
                &to,
                &id,
                &message,
                own,
                users,
                targets,
                stanza_type,
                media_type,
                follow_up,
            )?
        };
        let (node, phash, token) = node;
        // Rich-message hook (message::rich): `edit` attribute, poll `<meta>`, and our own
        // polls remembered (with their secret, under the chat as the caller named it) so
        // votes on them can be decrypted; our own votes counted.
        let node = crate::message::rich::decorate_stanza(&message, node);
        let chat = self.ops.sends.get(&op).map_or(to.clone(), |s| s.to.clone());
        let mut polls = crate::store::StoreBatch::new();
        crate::message::rich::remember_poll(&mut polls, &chat, &id, own, &message);
        let own_vote = if follow_up {
            None
        } else {
            crate::message::rich::apply_vote(cx.store, &mut polls, &chat, own, &id, &message)
                .unwrap_or_default()
        };
        if let Some(vote) = own_vote {
            cx.events.push_back(crate::Event::PollVote(Box::new(vote)));
        }
        if !polls.is_empty()
            && let Err(e) = cx.store.apply(polls)
        {
            tracing::warn!(error = %e, "cannot store sent poll");
        }
        cx.wire.send_node(&node)?;
        if !follow_up {
            let chat = self.ops.sends.get(&op).map_or(to, |s| s.to.clone());
            self.caches.remember_sent(&id, chat, message);
        }
        let sent_to = stanza_targets(&node);
        if let Some(s) = self.ops.sends.get_mut(&op) {
            s.phase = Phase::Ack;
            s.phash = phash;
            s.sent_to.extend(sent_to);
            s.token = token;
        }
        cx.pending
            .insert(id, Waiter::MessageAck(op), cx.now + cx.iq_timeout);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn build_direct_send(
        &mut self,
        cx: &mut Context<'_>,
        to: &Jid,
        id: &str,
        message: &wa::Message,
        own: &Jid,
        users: &[Jid],
        targets: Vec<Jid>,
        stanza_type: &'static str,
        media_type: Option<&'static str>,
        follow_up: bool,
    ) -> Result<(Node, Option<String>, Option<crate::privacy::TokenKind>), SendError> {
        let plain = encode(message);
        let own_lid = super::recv::own_lid(cx);
        let is_own = |d: &Jid| d.same_user(own) || own_lid.as_ref().is_some_and(|l| l.same_user(d));
        let dsm = encode(&wa::Message {
            device_sent_message: Some(Box::new(wa::message::DeviceSentMessage {
                destination_jid: Some(to.to_string()),
                message: Some(Box::new(message.clone())),
                phash: None,
            })),
            message_context_info: message.message_context_info.clone(),
            ..Default::default()
        });
        let mut encs = Vec::with_capacity(targets.len());
        let mut any_pkmsg = false;
        let mut recipient_reached = false;
        let to_self = is_own(to);
        for device in targets {
            let own_device = is_own(&device) && !to_self;
            let payload = if own_device { &dsm } else { &plain };
            if let Some((kind, ct)) = self.encrypt_for(cx, &device, payload)? {
                any_pkmsg |= kind == EncType::PkMsg;
                recipient_reached |= device.same_user(to);
                encs.push((device, stanza::enc_node(kind, ct, media_type, None)));
            }
        }
        if follow_up && encs.is_empty() {
            return Err(SendError::NoDevices);
        }
        if !recipient_reached && !follow_up {
            return Err(SendError::NoDevices);
        }
        // A follow-up goes to the listed devices only; the server skips its drift check
        // (as for retry re-sends, 05 §9.4, §14 step 6).
        let mut attrs = if follow_up {
            vec![("device_fanout", Value::from("false"))]
        } else {
            Vec::new()
        };
        // whatsmeow ≥ 2026-07-13 (`send.go` prepareMessageNode): a DM addressed to a LID
        // names the recipient's PN when known. The server accepts it; whether it needs it is
        // not known (07 §7).
        if to.is_lid()
            && !to_self
            && let Some(pn) = lid::pn_of(cx.store, to)
        {
            attrs.push(("peer_recipient_pn", Value::from(pn)));
        }
        // 07 §2.4, §3.1: `<tctoken>` or `<cstoken>` last (whatsmeow sendDM appends it after
        // everything else); never on follow-ups to missed devices (like retry re-sends,
        // Baileys is1on1Send), peer messages or messages to ourselves.
        let token = if follow_up || to_self {
            None
        } else {
            self.token_for_send(cx, to)
        };
        let kind = crate::conn::tokens::kind_of(token.as_ref());
        // 05 §7.4: 1:1 stanzas carry no phash; we keep one (recipient + own devices, as
        // whatsmeow) to compare with a phash in the ack.
        let all = self.cached_devices(users);
        let hash = phash::participant_hash(&all);
        let identity = if any_pkmsg {
            self.device_identity(cx)
        } else {
            None
        };
        Ok((
            stanza::message_node(
                id,
                to,
                stanza_type,
                attrs,
                encs,
                identity.as_deref(),
                token
                    .iter()
                    .map(crate::privacy::PrivacyToken::to_node)
                    .collect(),
            ),
            Some(hash),
            kind,
        ))
    }

    /// Whether the LID of the 1:1 recipient `user` (a PN) is unknown and not yet asked for
    /// on this connection chain.
    fn lid_unknown(&self, cx: &Context<'_>, user: &Jid) -> bool {
        user.is_pn()
            && !self.caches.lid_asked.contains(user)
            && cx
                .own
                .as_ref()
                .is_none_or(|own| !crate::conn::tokens::is_own(cx, own, user))
            && lid::lid_of(cx.store, user).is_none()
    }

    /// The namespace a 1:1 stanza to `to` goes out in (07 §1.4, [`crate::conn::LidWire`]):
    /// the LID when the recipient's LID is known and the account is LID-migrated (or the
    /// policy says always) and our own LID is known (own devices must share the namespace,
    /// whatsapp-rust #730); a recipient given as a LID stays a LID unless the account is
    /// unmigrated and its PN is known (whatsapp-rust resolve_dm_wire_jid: "an unmigrated
    /// account's LID stanza is 400-nacked"); otherwise the PN.
    fn wire_recipient(&self, cx: &Context<'_>, to: &Jid) -> Jid {
        use crate::conn::LidWire;
        let own_lid_known = super::recv::own_lid(cx).is_some();
        let migrated = match cx.lid_wire {
            LidWire::Always => true,
            LidWire::Never => false,
            LidWire::Auto => lid::account_migrated(cx.store),
        };
        if to.is_pn() {
            if migrated
                && own_lid_known
                && let Some(lid) = lid::lid_of(cx.store, to)
            {
                return lid;
            }
            return to.clone();
        }
        if to.is_lid()
            && matches!(cx.lid_wire, LidWire::Auto)
            && !(migrated && own_lid_known)
            && let Some(pn) = lid::pn_of(cx.store, to)
        {
            return pn;
        }
        to.clone()
    }

    #[allow(clippy::too_many_arguments)]
    fn build_group_send(
        &mut self,
        cx: &mut Context<'_>,
        group: &Jid,
        id: &str,
        message: &wa::Message,
        own: &Jid,
        users: &[Jid],
        targets: Vec<Jid>,
        stanza_type: &'static str,
        media_type: Option<&'static str>,
    ) -> Result<(Node, Option<String>), SendError> {
        let name = SenderKeyName::new(group.to_string(), signal_address(own));
        let skdm = signal::sender_key_distribution(cx.store, &name, &mut *cx.rng)
            .inspect_err(|e| tracing::warn!(error = %e, "cannot create sender key"))?;
        let skdm_message = encode(&wa::Message {
            sender_key_distribution_message: Some(wa::message::SenderKeyDistributionMessage {
                group_id: Some(group.to_string()),
                axolotl_sender_key_distribution_message: Some(skdm.serialized().to_vec()),
            }),
            ..Default::default()
        });
        let mut encs = Vec::with_capacity(targets.len());
        let mut any_pkmsg = false;
        let mut reached = Vec::with_capacity(targets.len());
        for device in targets {
            if let Some((kind, ct)) = self.encrypt_for(cx, &device, &skdm_message)? {
                any_pkmsg |= kind == EncType::PkMsg;
                encs.push((device.clone(), stanza::enc_node(kind, ct, None, None)));
                reached.push(device);
            }
        }
        let padded = pad::pad(encode(message), &mut *cx.rng);
        let skmsg = signal::encrypt_group(cx.store, &name, &padded, &mut *cx.rng)
            .inspect_err(|e| tracing::warn!(error = %e, "cannot encrypt group message"))?;
        // 05 §7.4: all participant devices plus the sending device.
        let mut all = self.cached_devices(users);
        if !all
            .iter()
            .any(|d| d.same_user(own) && d.device() == own.device())
        {
            all.push(device_jid(own, own.device()));
        }
        let hash = phash::participant_hash(&all);
        let identity = if any_pkmsg {
            self.device_identity(cx)
        } else {
            None
        };
        let node = stanza::message_node(
            id,
            group,
            stanza_type,
            vec![("phash", Value::from(hash.clone()))],
            encs,
            identity.as_deref(),
            vec![stanza::enc_node(EncType::SkMsg, skmsg, media_type, None)],
        );
        self.caches
            .skdm_sent
            .entry(group.clone())
            .or_default()
            .extend(reached);
        Ok((node, Some(hash)))
    }

    /// The server ack of a sent message (05 §8).
    pub(crate) fn on_message_ack(&mut self, cx: &mut Context<'_>, op: u64, ack: &Node) {
        let Some(s) = self.ops.sends.remove(&op) else {
            return;
        };
        if s.follow_up {
            if let Some(code) = ack.get_attr_str("error").filter(|e| *e != "0") {
                tracing::debug!(id = %s.id, code, "follow-up to missed devices rejected");
            }
            return;
        }
        let timestamp = ack
            .get_attr_str("t")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        // 07 §1.2: `refresh_lid="true"` says our LID for the peer is stale (whatsapp-rust
        // maybe_refresh_lid_from_ack, #1313). Dropping the cached device lists makes the next
        // send ask usync again by PN, devices and `<lid/>` together, and the answer replaces
        // the mapping.
        if ack.get_attr_str("refresh_lid") == Some("true") && !s.to.is_group() {
            let pn = lid::to_pn_device(cx.store, &s.to).to_non_ad();
            self.caches.lid_asked.remove(&pn);
            self.caches.forget_devices(&pn);
            if let Some(twin) = lid::twin(cx.store, &pn) {
                self.caches.forget_devices(&twin);
            }
        }
        if let Some(server) = ack.get_attr_str("phash")
            && s.phash.as_deref() != Some(server)
        {
            // Device-list drift: refresh caches; the message reached the listed devices.
            tracing::debug!(id = %s.id, "phash mismatch; dropping device caches");
            self.forget_send_caches(cx, &s.to);
            if ack.get_attr_str("error").is_none_or(|e| e == "0") {
                self.send_to_missed_devices(cx, &s);
            }
        }
        if let Some(code) = ack.get_attr_str("error").filter(|e| *e != "0") {
            let code = code.parse().unwrap_or(0);
            self.caches.sent.remove(&s.id);
            let error = self.rejection(cx, &s, code);
            tracing::debug!(id = %s.id, code, %error, "message refused by the server");
            if let Some(request) = s.request {
                cx.events.push_back(Event::RequestDone {
                    id: request,
                    result: Err(error),
                });
            }
            return;
        }
        // 07 §2.5: after an accepted 1:1 send, issue our token to the peer (fire and forget,
        // at most once per sender bucket).
        if let Some(wire_to) = &s.wire_to
            && !is_protocol_message(&s.message)
        {
            self.issue_after_send(cx, wire_to);
        }
        if let Some(sent) = self.caches.sent.get_mut(&s.id) {
            sent.status = Some(MessageStatus::Sent);
        }
        cx.events.push_back(crate::Event::MessageStatus {
            id: message_id(&s.id),
            chat: s.to.clone(),
            status: MessageStatus::Sent,
            by: None,
            timestamp,
        });
        if let Some(request) = s.request {
            cx.events.push_back(Event::RequestDone {
                id: request,
                result: Ok(Reply::MessageSent {
                    id: message_id(&s.id),
                    timestamp,
                }),
            });
        }
    }

    /// The typed error of a refused send (07 §3.4). 463 on a 1:1 send starts the one
    /// recovery issuance per peer (Baileys #2517) and is reported as
    /// [`SendError::ReachoutTimelocked`] while a reach-out timelock is known to be active, else
    /// as [`SendError::RecipientRequiresToken`]; 475 is [`SendError::NewChatsCapped`]. The
    /// message is never re-sent here.
    fn rejection(&mut self, cx: &mut Context<'_>, s: &SendOp, code: u16) -> SendError {
        let Some(to) = s.wire_to.clone() else {
            return SendError::Rejected { code, text: None };
        };
        match code {
            463 => match self.on_token_rejection(cx, &to) {
                Some(until) => SendError::ReachoutTimelocked { to, until },
                None => SendError::RecipientRequiresToken {
                    to,
                    attached: s.token,
                },
            },
            475 => SendError::NewChatsCapped { to },
            _ => SendError::Rejected { code, text: None },
        }
    }

    /// After a phash mismatch on a 1:1 send (05 §7.4, §8): fetch the device lists again
    /// and send the same message (same id) to the devices the first stanza did not list,
    /// e.g. one the recipient linked after we cached its list. WA Web does this (05 §7.4,
    /// per oxidezap/whatsapp-rust PR #494); whatsmeow `send.go` only drops its caches.
    /// Group sends need nothing more: the server fans the `skmsg` out to every member
    /// device, and a device without our sender key asks for it with a retry receipt
    /// (05 §9.4), which [`handle_retry_request`](Self::handle_retry_request) answers.
    fn send_to_missed_devices(&mut self, cx: &mut Context<'_>, sent: &SendOp) {
        if sent.to.is_group() {
            return;
        }
        let op = self.ops.next_id();
        self.ops.sends.insert(
            op,
            SendOp {
                request: None,
                id: sent.id.clone(),
                to: sent.to.clone(),
                message: sent.message.clone(),
                phase: Phase::Ready,
                fetched: false,
                phash: None,
                sent_to: sent.sent_to.clone(),
                follow_up: true,
                wire_to: sent.wire_to.clone(),
                token: None,
            },
        );
        self.advance_send(cx, op);
    }

    /// The ack never came.
    pub(crate) fn on_message_ack_timeout(&mut self, cx: &mut Context<'_>, op: u64) {
        self.fail_send(cx, op, SendError::Timeout);
    }

    fn forget_send_caches(&mut self, cx: &mut Context<'_>, to: &Jid) {
        let mut users: Vec<Jid> = vec![to.clone()];
        if let Some(own) = cx.own.clone() {
            users.push(own.to_non_ad());
        }
        if to.is_group() {
            if let Some(g) = self.caches.groups.remove(to) {
                users.extend(g.participants.into_iter().map(|p| p.jid));
            }
            self.caches.forget_distribution(to);
        }
        for u in users {
            self.caches.forget_devices(&u);
        }
    }

    // -----------------------------------------------------------------------------------
    // Retry receipts, sender side (05 §9.4)

    /// A `<receipt type="retry">` for a message we sent.
    pub(crate) fn handle_retry_request(
        &mut self,
        cx: &mut Context<'_>,
        request: crate::receipt::RetryRequest,
    ) {
        let id = request.receipt.ids.first().cloned().unwrap_or_default();
        if !self.caches.sent.contains_key(&id) {
            tracing::debug!(%id, "retry receipt for a message we no longer have");
            return;
        }
        if request.count >= super::MAX_RETRIES {
            return;
        }
        let requester = request.receipt.sender.clone();
        let address = match self.session_address(cx, &requester) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "cannot resolve the requester's session address");
                return;
            }
        };
        match request.bundle {
            Some(Ok(bundle)) => {
                match signal::process_prekey_bundle(
                    cx.store,
                    &address,
                    &bundle,
                    TrustPolicy::AutoTrust,
                    &mut *cx.rng,
                ) {
                    Ok(_) => {
                        self.caches.sessions.insert(address);
                        self.caches.no_bundle.remove(&requester);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "retry receipt keys rejected");
                        return;
                    }
                }
            }
            Some(Err(e)) => tracing::debug!(error = %e, "unusable keys in retry receipt"),
            None => {}
        }
        if !self.has_session_cached(cx, &requester).unwrap_or(false) {
            let op = self.ops.next_id();
            self.ops.retries.insert(
                op,
                RetryOp {
                    id,
                    requester: requester.clone(),
                    count: request.count,
                },
            );
            let iq_id = cx.wire.next_iq_id();
            if cx
                .wire
                .send_internal(&prekeys::fetch_iq(&iq_id, &[requester]))
            {
                cx.pending
                    .insert(iq_id, Waiter::RetryBundle(op), cx.now + cx.iq_timeout);
            }
            return;
        }
        self.resend(cx, &id, &requester, request.count);
    }

    /// The bundle for a retry re-send arrived.
    pub(crate) fn on_retry_bundle(
        &mut self,
        cx: &mut Context<'_>,
        op: u64,
        parsed: Result<&Node, SendError>,
    ) {
        let Some(retry) = self.ops.retries.remove(&op) else {
            return;
        };
        if let Ok(Ok(bundles)) = parsed.map(prekeys::parse_bundles) {
            self.process_bundles(cx, bundles);
        }
        self.resend(cx, &retry.id, &retry.requester, retry.count);
    }

    /// Re-encrypts a recent message for one device and sends it directly (05 §9.4).
    fn resend(&mut self, cx: &mut Context<'_>, id: &str, requester: &Jid, count: u32) {
        let Some(sent) = self.caches.sent.get(id).cloned() else {
            return;
        };
        let Some(own) = cx.own.clone() else {
            return;
        };
        let mut message = sent.message.clone();
        let group = sent.chat.is_group();
        if group {
            // 05 §7.3: re-attach a fresh SKDM (whatsmeow).
            let name = SenderKeyName::new(sent.chat.to_string(), signal_address(&own));
            match signal::sender_key_distribution(cx.store, &name, &mut *cx.rng) {
                Ok(skdm) => {
                    message.sender_key_distribution_message =
                        Some(wa::message::SenderKeyDistributionMessage {
                            group_id: Some(sent.chat.to_string()),
                            axolotl_sender_key_distribution_message: Some(
                                skdm.serialized().to_vec(),
                            ),
                        });
                }
                Err(e) => tracing::warn!(error = %e, "no sender key for group retry"),
            }
        } else if requester.same_user(&own) && !sent.chat.same_user(&own) {
            message = wa::Message {
                device_sent_message: Some(Box::new(wa::message::DeviceSentMessage {
                    destination_jid: Some(sent.chat.to_string()),
                    message: Some(Box::new(message)),
                    phash: None,
                })),
                ..Default::default()
            };
        }
        let Ok(Some((kind, ct))) = self.encrypt_for(cx, requester, &encode(&message)) else {
            tracing::debug!(%requester, "cannot re-encrypt for retry");
            return;
        };
        let media_type = content::media_type(&sent.message);
        let mut attrs: Vec<(&'static str, Value)> = Vec::new();
        let to = if group {
            attrs.push(("participant", Value::from(requester.clone())));
            sent.chat.clone()
        } else {
            attrs.push(("device_fanout", Value::from("false")));
            requester.clone()
        };
        let identity = if kind == EncType::PkMsg {
            self.device_identity(cx)
        } else {
            None
        };
        let node = stanza::message_node(
            id,
            &to,
            content::stanza_type(&sent.message),
            attrs,
            Vec::new(),
            identity.as_deref(),
            vec![stanza::enc_node(kind, ct, media_type, Some(count))],
        );
        if group && let Some(set) = self.caches.skdm_sent.get_mut(&sent.chat) {
            set.insert(requester.clone());
        }
        tracing::debug!(%id, %requester, count, "re-sending after retry receipt");
        cx.wire.send_internal(&node);
    }

    /// Forgets what we know about a user's sessions (identity change, 04 §4.6).
    /// Sessions live under the LID when it is known (07 §1.3), so both namespaces' records
    /// go.
    pub(crate) fn forget_user_sessions(&mut self, cx: &mut Context<'_>, user: &Jid) {
        let mut batch = crate::store::StoreBatch::new();
        let twin = lid::twin(cx.store, user);
        for who in std::iter::once(user.to_non_ad()).chain(twin.clone()) {
            let name = crate::conn::signal_address_name(&who);
            let devices: HashSet<u32> = cx
                .store
                .session_devices(&name)
                .unwrap_or_default()
                .into_iter()
                .chain(cx.store.identity_devices(&name).unwrap_or_default())
                .collect();
            for d in devices {
                let address = crate::store::ProtocolAddress::new(name.clone(), d);
                batch.delete_session(&address).delete_identity(&address);
                self.caches.sessions.remove(&address);
            }
        }
        if let Err(e) = cx.store.apply(batch) {
            tracing::warn!(error = %e, "cannot delete sessions after identity change");
        }
        self.caches.forget_devices(user);
        if let Some(twin) = twin {
            self.caches.forget_devices(&twin);
        }
    }
}

/// Protocol messages (revoke, app-state key share, …) issue no token (Baileys skips them,
/// 07 §2.5).
fn is_protocol_message(message: &wa::Message) -> bool {
    message.protocol_message.is_some()
}

/// The devices a message stanza carries an `<enc>` for (`<participants><to jid>`).
fn stanza_targets(node: &Node) -> Vec<Jid> {
    node.child_by_tag("participants")
        .map(|p| {
            p.children_by_tag("to")
                .filter_map(|c| c.get_attr_jid("jid").cloned())
                .collect()
        })
        .unwrap_or_default()
}
