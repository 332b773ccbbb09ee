//! Registration (shared/protocol/03 §4, §5): QR refs shown and rotated, phone-number code
//! pairing (companion_hello, primary_hello, companion_finish), pair-success verified and
//! **persisted before the reply is queued**.
//!
//! [`Registering`] owns the phase's state (inside `State::Registering`); the connection
//! dispatches to it with a [`Context`] lent for one call, and closes when a step returns
//! `Err(CloseReason)`.

use std::collections::VecDeque;
use std::time::Instant;

use rand::rngs::StdRng;

use x25519_dalek::{PublicKey, StaticSecret};

use super::config::{DeviceConfig, Timing};
use super::event::{Event, EventQueue};
use super::pending::Pending;
use super::pending::Waiter;
use super::request::{Reply, RequestId, SendError};
use super::signal_address_name;
use super::timers::{Clock, Timers};
use super::wire::Wire;
use crate::binary::Node;
use crate::pair::code::{self, PairingCode};
use crate::pair::{self, AdvSecret, PairError, PairSuccess, QrCode};
use crate::stanza::{CloseReason, iq};
use crate::store::{Credentials, ProtocolAddress, Store, StoreBatch};

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

/// What the connection lends [`Registering`] for one call.
pub(crate) struct Context<'a> {
    /// The time of the call.
    pub(crate) now: Instant,
    pub(crate) device: &'a DeviceConfig,
    pub(crate) timing: &'a Timing,
    pub(crate) store: &'a dyn Store,
    pub(crate) rng: &'a mut StdRng,
    /// The device credentials; pairing fills in the account.
    pub(crate) creds: &'a mut Option<Credentials>,
    /// Pair-success carries the server time.
    pub(crate) clock: &'a mut Clock,
    /// The QR and connect deadlines.
    pub(crate) timers: &'a mut Timers,
    pub(crate) wire: &'a mut Wire,
    pub(crate) pending: &'a mut Pending,
    pub(crate) events: &'a mut EventQueue,
}

/// The outcome of a registration step: `Err` when the connection must close with that
/// reason.
pub(crate) type Step = Result<(), CloseReason>;

impl Registering {
    /// Starts phone-number pairing (03 §5.4): companion_hello; the caller's request `id`
    /// is answered when its result arrives.
    pub(super) fn start_code_pairing(
        &mut self,
        cx: &mut Context<'_>,
        id: RequestId,
        phone: &str,
    ) -> Result<(), SendError> {
        let phone = code::normalize_phone(phone)?;
        // `new` loads the credentials or closes the connection; closed ones were refused above.
        let Some(creds) = cx.creds.as_ref() else {
            return Err(SendError::NotConnected);
        };
        let noise_pub = creds.noise_key.public;
        let pairing_code = PairingCode::generate(&mut *cx.rng);
        let ephemeral = StaticSecret::random_from_rng(&mut *cx.rng);
        let wrapped = code::wrap_ephemeral_pub(
            &mut *cx.rng,
            &pairing_code,
            &PublicKey::from(&ephemeral).to_bytes(),
        );
        let iq_id = cx.wire.next_iq_id();
        let node = code::companion_hello_iq(
            &iq_id,
            &phone,
            &wrapped,
            &noise_pub,
            cx.device.client_type,
            &cx.device.platform_display,
        );
        cx.wire.send_node(&node)?;
        cx.pending.insert(
            iq_id,
            Waiter::CompanionHello(id),
            cx.now + cx.timing.iq_timeout,
        );
        self.code = Some(CodePairing {
            code: pairing_code,
            phone,
            ephemeral,
            pairing_ref: None,
            request: Some(id),
        });
        Ok(())
    }

    /// The pair-device IQ (03 §4.1): ack it and show the first QR.
    pub(super) fn handle_pair_device(&mut self, cx: &mut Context<'_>, node: &Node) -> Step {
        // Ack at once, before showing any QR (03 §4.2).
        let first = !self.got_pair_device;
        if first {
            self.got_pair_device = true;
            self.refs = node
                .child_path(&["pair-device"])
                .map(|pd| {
                    pd.children_by_tag("ref")
                        .filter_map(Node::content_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
        }
        cx.timers.connect = None;
        cx.wire.send_internal(&iq::empty_result(node));
        if first {
            self.show_next_qr(cx)?;
        }
        Ok(())
    }

    /// Shows the next QR ref (03 §4.4); closes when none is left.
    pub(super) fn show_next_qr(&mut self, cx: &mut Context<'_>) -> Step {
        if self.paired {
            return Ok(());
        }
        let first = self.qr_shown == 0;
        let Some(pairing_ref) = self.refs.pop_front() else {
            tracing::info!("connection: QR refs ran out");
            return Err(CloseReason::QrRefsExhausted);
        };
        let Some(creds) = cx.creds.as_ref() else {
            return Ok(());
        };
        let qr = QrCode {
            pairing_ref,
            noise_pub: creds.noise_key.public,
            identity_pub: creds.identity_key.public,
            adv_secret: AdvSecret::from_bytes(creds.adv_secret_key),
            client_type: Some(cx.device.client_type),
        };
        let expires_in = if first {
            cx.timing.qr_first
        } else {
            cx.timing.qr_next
        };
        self.qr_shown += 1;
        cx.timers.qr = Some(cx.now + expires_in);
        cx.events.push_back(crate::Event::Qr {
            code: qr.encode(),
            expires_in,
        });
        Ok(())
    }

    /// Pair-success (03 §4.7): verify, store, then reply.
    pub(super) fn handle_pair_success(&mut self, cx: &mut Context<'_>, node: &Node) -> Step {
        if self.paired {
            return Ok(());
        }
        let iq_id = node.get_attr_str("id").unwrap_or_default().to_owned();
        let verified = match verify_pair_success(cx, node) {
            Ok(v) => v,
            Err(error) => {
                tracing::warn!(%error, "connection: pair-success rejected");
                cx.wire
                    .send_internal(&pair::pair_error_reply(&iq_id, &error));
                cx.events.push_back(crate::Event::PairError { error });
                return Err(CloseReason::PairingFailed);
            }
        };
        if let Some(t) = verified.server_time {
            cx.clock.set_server_time(cx.now, t);
        }
        // Persist before replying (03 §4.7 step 8-9): once the reply leaves, the phone lists
        // the device, and a crash must not lose the keys it knows us by.
        let Some(mut creds) = cx.creds.clone() else {
            return Ok(());
        };
        creds.id = Some(verified.jid.to_string());
        creds.lid = verified.lid.as_ref().map(ToString::to_string);
        creds.account = Some(verified.account.clone());
        creds.platform = verified.platform.clone();
        creds.business_name = verified.business_name.clone().unwrap_or_default();
        let mut batch = StoreBatch::new();
        batch.put_credentials(&creds);
        let primary = verified.lid.as_ref().unwrap_or(&verified.jid);
        batch.put_identity(
            &ProtocolAddress::new(signal_address_name(primary), 0),
            verified.primary_identity_pub.to_vec(),
        );
        // 07 §1.2: our own PN ⇄ LID pair is kept in the credentials (`id`, `lid`, above; the
        // engine resolves its own account from there, see conn::lid::own_twin), and the
        // account's 1:1 LID-migration flag from `<client-props>` (whatsapp-rust `src/pair.rs`)
        // goes into the same batch.
        let migrated = node
            .child_path(&["pair-success", "client-props"])
            .and_then(Node::content_bytes)
            .is_some_and(super::lid::client_props_migrated);
        batch.put_app_value(
            super::lid::NS,
            super::lid::MIGRATED_KEY,
            vec![u8::from(migrated)],
        );
        if let Err(e) = cx.store.apply(batch) {
            tracing::error!(error = %e, "connection: cannot store pairing");
            let error = PairError::Missing("stored credentials");
            cx.wire
                .send_internal(&pair::pair_error_reply(&iq_id, &error));
            cx.events.push_back(crate::Event::PairError { error });
            return Err(CloseReason::StoreFailed);
        }
        *cx.creds = Some(creds);
        cx.wire.send_internal(&verified.reply());
        let server_ms = cx.clock.server_unix_ms(cx.now);
        cx.wire.send_internal(&iq::unified_session(server_ms));
        self.paired = true;
        self.code = None;
        cx.timers.qr = None;
        tracing::info!(jid = %verified.jid, "connection: paired");
        cx.events.push_back(crate::Event::PairSuccess {
            jid: verified.jid,
            lid: verified.lid,
            platform: verified.platform,
            business_name: verified.business_name,
        });
        Ok(())
    }

    /// The result of companion_hello: the pairing code is shown, or the request fails.
    pub(super) fn on_companion_hello_result(
        &mut self,
        cx: &mut Context<'_>,
        id: RequestId,
        parsed: Result<&Node, SendError>,
    ) {
        let Some(pairing) = self.code.as_mut() else {
            return;
        };
        let result =
            parsed.and_then(|n| code::parse_companion_hello_result(n).map_err(SendError::from));
        match result {
            Ok(pairing_ref) => {
                pairing.pairing_ref = Some(pairing_ref);
                pairing.request = None;
                let shown = pairing.code.display();
                cx.events.push_back(crate::Event::PairingCode {
                    code: shown.clone(),
                });
                cx.events.push_back(Event::RequestDone {
                    id,
                    result: Ok(Reply::PairingCode(shown)),
                });
            }
            Err(e) => {
                self.code = None;
                cx.events
                    .push_back(Event::RequestDone { id, result: Err(e) });
            }
        }
    }

    /// The primary_hello notification (03 §5.6): answer with companion_finish.
    pub(super) fn handle_primary_hello(&mut self, cx: &mut Context<'_>, node: &Node) -> Step {
        let outcome = self.companion_finish(cx, node);
        match outcome {
            Ok(Some((iq, adv_secret))) => {
                // Persist the new ADV secret before answering: pair-success will be HMAC'd with it.
                if let Some(mut creds) = cx.creds.clone() {
                    creds.adv_secret_key = *adv_secret.as_bytes();
                    let mut batch = StoreBatch::new();
                    batch.put_credentials(&creds);
                    if let Err(e) = cx.store.apply(batch) {
                        tracing::error!(error = %e, "connection: cannot store the new ADV secret");
                        return Err(CloseReason::StoreFailed);
                    }
                    *cx.creds = Some(creds);
                }
                let iq_id = iq.get_attr_str("id").unwrap_or_default().to_owned();
                if cx.wire.send_internal(&iq) {
                    cx.pending.insert(
                        iq_id,
                        Waiter::CompanionFinish,
                        cx.now + cx.timing.iq_timeout,
                    );
                }
            }
            Ok(None) => tracing::debug!("connection: link-code notification ignored"),
            Err(error) => {
                tracing::warn!(%error, "connection: primary_hello rejected");
                cx.events.push_back(crate::Event::PairError { error });
            }
        }
        Ok(())
    }

    /// Build companion_finish for a primary_hello; `Ok(None)` if no code pairing is pending.
    fn companion_finish(
        &self,
        cx: &mut Context<'_>,
        node: &Node,
    ) -> Result<Option<(Node, AdvSecret)>, PairError> {
        let hello = code::parse_primary_hello(node)?;
        let Some(pairing) = self.code.as_ref() else {
            return Ok(None);
        };
        if pairing.pairing_ref.as_deref() != Some(hello.pairing_ref.as_slice()) {
            return Err(PairError::PairingRefMismatch);
        }
        let creds = cx.creds.as_ref().ok_or(PairError::Missing("credentials"))?;
        let identity = StaticSecret::from(creds.identity_key.private);
        let finish = code::companion_finish(
            &mut *cx.rng,
            &pairing.code,
            &pairing.ephemeral,
            &identity,
            &hello.wrapped_primary_ephemeral_pub,
            &hello.primary_identity_pub,
        )?;
        let iq_id = cx.wire.next_iq_id();
        let iq = code::companion_finish_iq(
            &iq_id,
            &pairing.phone,
            &finish.wrapped_key_bundle,
            &creds.identity_key.public,
            &hello.pairing_ref,
        );
        Ok(Some((iq, finish.adv_secret)))
    }
}

/// Checks pair-success against our identity and ADV secret (03 §4.7).
fn verify_pair_success(
    cx: &mut Context<'_>,
    node: &Node,
) -> Result<pair::VerifiedPairing, PairError> {
    let ps = PairSuccess::parse(node)?;
    let creds = cx.creds.as_ref().ok_or(PairError::Missing("credentials"))?;
    pair::verify_pair_success(
        &mut *cx.rng,
        &ps,
        &creds.identity_key.private,
        &creds.identity_key.public,
        &AdvSecret::from_bytes(creds.adv_secret_key),
    )
}
