//! Our keys on the server (04 §4.3): upload when the server runs low, signed-prekey
//! rotation by age. Every generated key is stored before the upload leaves.

use super::{Context, Messaging};
use crate::conn::pending::Waiter;
use crate::prekeys::{self, KEPT_SIGNED_PREKEYS, MIN_PREKEY_COUNT, SIGNED_PREKEY_ROTATION};
use crate::signal::{self, KeyPair, MAX_PREKEY_ID, SignedPreKeyRecord};
use crate::store::StoreBatch;

/// App-value namespace and key of the current signed prekey's creation time (unix seconds,
/// 8 bytes BE).
const NS: &str = "wa.prekeys";
const SPK_CREATED: &[u8] = b"signed_prekey_created";

impl Messaging {
    /// The server's prekey count arrived (after login): refill when low (04 §4.3), then
    /// rotate the signed prekey when it is old.
    pub(crate) fn on_prekey_count(&mut self, cx: &mut Context<'_>, count: u32) {
        let rotated = self.maybe_rotate_signed_prekey(cx);
        if count < MIN_PREKEY_COUNT || rotated {
            self.upload_prekeys(cx);
        }
    }

    /// Generates (and stores) a batch of [`Config::prekey_batch`](crate::conn::Config)
    /// one-time prekeys ([`UPLOAD_BATCH`](crate::prekeys::UPLOAD_BATCH) by default), then uploads them with the current
    /// signed prekey. At most one upload is in flight.
    pub(crate) fn upload_prekeys(&mut self, cx: &mut Context<'_>) {
        if self.ops.prekey_upload_in_flight {
            return;
        }
        let Some(creds) = cx.creds.clone() else {
            return;
        };
        let batch = cx.prekey_batch;
        // Stored in one batch before this returns (04 §4.2).
        let records = match signal::generate_prekeys(cx.store, batch, &mut *cx.rng) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot store new prekeys");
                return;
            }
        };
        let identity = KeyPair::from(&creds.identity_key);
        let signed = SignedPreKeyRecord::from(&creds.signed_prekey);
        let id = cx.wire.next_iq_id();
        let iq = prekeys::upload_iq(
            &id,
            creds.registration_id,
            &identity.public,
            &records,
            &signed,
        );
        if cx.wire.send_internal(&iq) {
            self.ops.prekey_upload_in_flight = true;
            cx.pending
                .insert(id, Waiter::PreKeyUpload, cx.now + cx.iq_timeout);
            tracing::debug!(count = records.len(), "uploading prekeys");
        }
    }

    /// The upload was answered.
    pub(crate) fn on_prekey_upload(&mut self, cx: &mut Context<'_>, ok: bool) {
        self.ops.prekey_upload_in_flight = false;
        if ok {
            if let Err(e) = signal::mark_prekeys_uploaded(cx.store) {
                tracing::warn!(error = %e, "cannot record the prekey upload");
            }
        } else {
            tracing::warn!("prekey upload rejected");
        }
    }

    /// Rotates the signed prekey when it is older than [`SIGNED_PREKEY_ROTATION`]: the new
    /// one (id + 1) becomes current in the credentials, the old one is kept under its id
    /// for late `pkmsg`s, the oldest beyond [`KEPT_SIGNED_PREKEYS`] are deleted, all in one
    /// batch. A device that never recorded a creation time records "now" (no rotation).
    /// Returns whether it rotated (the caller uploads).
    fn maybe_rotate_signed_prekey(&mut self, cx: &mut Context<'_>) -> bool {
        let unix = cx.server_ms / 1000;
        let created = match cx.store.app_value(NS, SPK_CREATED) {
            Ok(Some(v)) => v.as_bytes().try_into().map(u64::from_be_bytes).unwrap_or(0),
            Ok(None) => {
                let mut batch = StoreBatch::new();
                batch.put_app_value(NS, SPK_CREATED, unix.to_be_bytes());
                if let Err(e) = cx.store.apply(batch) {
                    tracing::warn!(error = %e, "cannot record the signed prekey age");
                }
                return false;
            }
            Err(_) => return false,
        };
        if unix.saturating_sub(created) < SIGNED_PREKEY_ROTATION.as_secs() {
            return false;
        }
        let Some(mut creds) = cx.creds.clone() else {
            return false;
        };
        let old = SignedPreKeyRecord::from(&creds.signed_prekey);
        let next_id = if old.id >= MAX_PREKEY_ID {
            1
        } else {
            old.id + 1
        };
        let identity = KeyPair::from(&creds.identity_key);
        let fresh = SignedPreKeyRecord::generate(next_id, &identity.private, &mut *cx.rng);
        creds.signed_prekey = (&fresh).into();
        let mut batch = StoreBatch::new();
        batch.put_signed_prekey(old.id, old.to_bytes());
        let mut kept = cx.store.signed_prekey_ids().unwrap_or_default();
        kept.retain(|&id| id != old.id && id != next_id);
        // Oldest first by id distance behind the new id.
        kept.sort_by_key(|&id| std::cmp::Reverse(next_id.wrapping_sub(id) & MAX_PREKEY_ID));
        let excess = (kept.len() + 1).saturating_sub(KEPT_SIGNED_PREKEYS);
        for id in kept.into_iter().take(excess) {
            batch.delete_signed_prekey(id);
        }
        batch.put_credentials(&creds);
        batch.put_app_value(NS, SPK_CREATED, unix.to_be_bytes());
        if let Err(e) = cx.store.apply(batch) {
            tracing::error!(error = %e, "cannot store the rotated signed prekey");
            return false;
        }
        tracing::info!(id = next_id, "signed prekey rotated");
        *cx.creds = Some(creds);
        true
    }
}
