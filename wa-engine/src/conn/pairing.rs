//! Registration (shared/protocol/03 §4, §5): QR refs shown and rotated, phone-number code
//! pairing (companion_hello, primary_hello, companion_finish), pair-success verified and
//! **persisted before the reply is queued**. The phase's state lives in
//! [`Registering`], inside `State::Registering`.

use std::collections::VecDeque;
use std::time::Instant;

use x25519_dalek::{PublicKey, StaticSecret};

use super::event::Event;
use super::pending::Waiter;
use super::request::{Reply, RequestId, SendError};
use super::state::State;
use super::{Connection, signal_address_name};
use crate::binary::Node;
use crate::pair::code::{self, PairingCode};
use crate::pair::{self, AdvSecret, PairError, PairSuccess, QrCode};
use crate::stanza::{CloseReason, iq};
use crate::store::{ProtocolAddress, StoreBatch};

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

impl Connection {
    pub(super) fn start_code_pairing(
        &mut self,
        now: Instant,
        id: RequestId,
        phone: &str,
    ) -> Result<(), SendError> {
        match &self.state {
            State::Registering(r) if !r.paired => {}
            State::Handshake(_) | State::Closed => return Err(SendError::NotConnected),
            _ => return Err(SendError::NotPairing),
        }
        let phone = code::normalize_phone(phone)?;
        // `new` loads the credentials or closes the connection; closed ones were refused above.
        let Some(creds) = self.creds.as_ref() else {
            return Err(SendError::NotConnected);
        };
        let noise_pub = creds.noise_key.public;
        let pairing_code = PairingCode::generate(&mut self.rng);
        let ephemeral = StaticSecret::random_from_rng(&mut self.rng);
        let wrapped = code::wrap_ephemeral_pub(
            &mut self.rng,
            &pairing_code,
            &PublicKey::from(&ephemeral).to_bytes(),
        );
        let iq_id = self.next_iq_id();
        let node = code::companion_hello_iq(
            &iq_id,
            &phone,
            &wrapped,
            &noise_pub,
            self.config.device.client_type,
            &self.config.device.platform_display,
        );
        self.send_node(&node)?;
        self.pending.insert(
            iq_id,
            Waiter::CompanionHello(id),
            now + self.config.timing.iq_timeout,
        );
        if let State::Registering(r) = &mut self.state {
            r.code = Some(CodePairing {
                code: pairing_code,
                phone,
                ephemeral,
                pairing_ref: None,
                request: Some(id),
            });
        }
        Ok(())
    }

    pub(super) fn handle_pair_device(&mut self, now: Instant, node: &Node) {
        let State::Registering(reg) = &mut self.state else {
            tracing::debug!("connection: pair-device outside registration, ignored");
            return;
        };
        // Ack at once, before showing any QR (03 §4.2).
        let first = !reg.got_pair_device;
        if first {
            reg.got_pair_device = true;
            reg.refs = node
                .child_path(&["pair-device"])
                .map(|pd| {
                    pd.children_by_tag("ref")
                        .filter_map(Node::content_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
        }
        self.timers.connect = None;
        self.send_internal(&iq::empty_result(node));
        if first {
            self.show_next_qr(now);
        }
    }

    pub(super) fn show_next_qr(&mut self, now: Instant) {
        let State::Registering(reg) = &mut self.state else {
            return;
        };
        if reg.paired {
            return;
        }
        let first = reg.qr_shown == 0;
        let Some(pairing_ref) = reg.refs.pop_front() else {
            tracing::info!("connection: QR refs ran out");
            self.close(CloseReason::QrRefsExhausted);
            return;
        };
        let Some(creds) = self.creds.as_ref() else {
            return;
        };
        let qr = QrCode {
            pairing_ref,
            noise_pub: creds.noise_key.public,
            identity_pub: creds.identity_key.public,
            adv_secret: AdvSecret::from_bytes(creds.adv_secret_key),
            client_type: Some(self.config.device.client_type),
        };
        let expires_in = if first {
            self.config.timing.qr_first
        } else {
            self.config.timing.qr_next
        };
        reg.qr_shown += 1;
        self.timers.qr = Some(now + expires_in);
        self.events.push_back(Event::Qr {
            code: qr.encode(),
            expires_in,
        });
    }

    pub(super) fn handle_pair_success(&mut self, now: Instant, node: &Node) {
        let State::Registering(reg) = &self.state else {
            tracing::debug!("connection: pair-success outside registration, ignored");
            return;
        };
        if reg.paired {
            return;
        }
        let iq_id = node.get_attr_str("id").unwrap_or_default().to_owned();
        let verified = match self.verify_pair_success(node) {
            Ok(v) => v,
            Err(error) => {
                tracing::warn!(%error, "connection: pair-success rejected");
                self.send_internal(&pair::pair_error_reply(&iq_id, &error));
                self.events.push_back(Event::PairError { error });
                self.close(CloseReason::PairingFailed);
                return;
            }
        };
        if let Some(t) = verified.server_time {
            self.set_server_time(now, t);
        }
        // Persist before replying (03 §4.7 step 8-9): once the reply leaves, the phone lists
        // the device, and a crash must not lose the keys it knows us by.
        let Some(mut creds) = self.creds.clone() else {
            return;
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
        if let Err(e) = self.store.apply(batch) {
            tracing::error!(error = %e, "connection: cannot store pairing");
            let error = PairError::Missing("stored credentials");
            self.send_internal(&pair::pair_error_reply(&iq_id, &error));
            self.events.push_back(Event::PairError { error });
            self.close(CloseReason::StoreFailed);
            return;
        }
        self.creds = Some(creds);
        self.send_internal(&verified.reply());
        let server_ms = self.server_unix_ms(now);
        self.send_internal(&iq::unified_session(server_ms));
        if let State::Registering(reg) = &mut self.state {
            reg.paired = true;
            reg.code = None;
        }
        self.timers.qr = None;
        tracing::info!(jid = %verified.jid, "connection: paired");
        self.events.push_back(Event::PairSuccess {
            jid: verified.jid,
            lid: verified.lid,
            platform: verified.platform,
            business_name: verified.business_name,
        });
    }

    fn verify_pair_success(&mut self, node: &Node) -> Result<pair::VerifiedPairing, PairError> {
        let ps = PairSuccess::parse(node)?;
        let creds = self
            .creds
            .as_ref()
            .ok_or(PairError::Missing("credentials"))?;
        pair::verify_pair_success(
            &mut self.rng,
            &ps,
            &creds.identity_key.private,
            &creds.identity_key.public,
            &AdvSecret::from_bytes(creds.adv_secret_key),
        )
    }

    pub(super) fn on_companion_hello_result(
        &mut self,
        id: RequestId,
        parsed: Result<&Node, SendError>,
    ) {
        let State::Registering(reg) = &mut self.state else {
            return;
        };
        let Some(pairing) = reg.code.as_mut() else {
            return;
        };
        let result =
            parsed.and_then(|n| code::parse_companion_hello_result(n).map_err(SendError::from));
        match result {
            Ok(pairing_ref) => {
                pairing.pairing_ref = Some(pairing_ref);
                pairing.request = None;
                let shown = pairing.code.display();
                self.events.push_back(Event::PairingCode {
                    code: shown.clone(),
                });
                self.events.push_back(Event::RequestDone {
                    id,
                    result: Ok(Reply::PairingCode(shown)),
                });
            }
            Err(e) => {
                reg.code = None;
                self.events
                    .push_back(Event::RequestDone { id, result: Err(e) });
            }
        }
    }

    pub(super) fn handle_primary_hello(&mut self, now: Instant, node: &Node) {
        let outcome = self.companion_finish(node);
        match outcome {
            Ok(Some((iq, adv_secret))) => {
                // Persist the new ADV secret before answering: pair-success will be HMAC'd with it.
                if let Some(mut creds) = self.creds.clone() {
                    creds.adv_secret_key = *adv_secret.as_bytes();
                    let mut batch = StoreBatch::new();
                    batch.put_credentials(&creds);
                    if let Err(e) = self.store.apply(batch) {
                        tracing::error!(error = %e, "connection: cannot store the new ADV secret");
                        self.close(CloseReason::StoreFailed);
                        return;
                    }
                    self.creds = Some(creds);
                }
                let iq_id = iq.get_attr_str("id").unwrap_or_default().to_owned();
                if self.send_internal(&iq) {
                    self.pending.insert(
                        iq_id,
                        Waiter::CompanionFinish,
                        now + self.config.timing.iq_timeout,
                    );
                }
            }
            Ok(None) => tracing::debug!("connection: link-code notification ignored"),
            Err(error) => {
                tracing::warn!(%error, "connection: primary_hello rejected");
                self.events.push_back(Event::PairError { error });
            }
        }
    }

    /// Build companion_finish for a primary_hello; `Ok(None)` if no code pairing is pending.
    fn companion_finish(&mut self, node: &Node) -> Result<Option<(Node, AdvSecret)>, PairError> {
        let hello = code::parse_primary_hello(node)?;
        let State::Registering(reg) = &self.state else {
            return Ok(None);
        };
        let Some(pairing) = reg.code.as_ref() else {
            return Ok(None);
        };
        if pairing.pairing_ref.as_deref() != Some(hello.pairing_ref.as_slice()) {
            return Err(PairError::PairingRefMismatch);
        }
        let creds = self
            .creds
            .as_ref()
            .ok_or(PairError::Missing("credentials"))?;
        let identity = StaticSecret::from(creds.identity_key.private);
        let finish = code::companion_finish(
            &mut self.rng,
            &pairing.code,
            &pairing.ephemeral,
            &identity,
            &hello.wrapped_primary_ephemeral_pub,
            &hello.primary_identity_pub,
        )?;
        let iq_id = self.wire.next_iq_id();
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
