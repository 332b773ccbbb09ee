//! Allocating and persisting our one-time prekeys, and the registration id
//! (shared/protocol/04-signal.md §2, §4.2–4.3).

use rand_core::CryptoRng;

use super::error::SignalError;
use super::keys::PreKeyRecord;
use crate::store::{Store, StoreBatch};

/// Largest one-time prekey id: ids travel as 3 bytes (04 §2, §4.2).
pub const MAX_PREKEY_ID: u32 = 0x00FF_FFFF;

/// Largest registration id we generate: 04 §2 recommends 1..=16380 so the value fits
/// every peer's expectations (Baileys/libsignal-node draw 14 bits).
const MAX_REGISTRATION_ID: u32 = 16_380;

/// Draws a registration id in 1..=16380 (04 §2; Baileys `generateRegistrationId` gives
/// 0..16383, whatsmeow a full uint32; the narrow range is valid for all of them).
pub fn generate_registration_id<R: CryptoRng + ?Sized>(rng: &mut R) -> u32 {
    // Rejection sampling keeps the distribution uniform.
    loop {
        let candidate = rng.next_u32() & 0x3FFF;
        if (1..=MAX_REGISTRATION_ID).contains(&candidate) {
            return candidate;
        }
    }
}

/// Generates `count` one-time prekeys with ids from the store's
/// [`PreKeyCounters::next_id`](crate::store::PreKeyCounters) (wrapping after
/// [`MAX_PREKEY_ID`] back to 1, as whatsapp-rust does), and stores their private halves
/// and the advanced counter in ONE batch before returning them: the server may hand a
/// key out as soon as it is uploaded (04 §4.2, whatsapp-rust `src/prekeys.rs`).
/// Upload the returned keys, then call [`mark_prekeys_uploaded`]. After a wrap, a
/// still-unused old key with the same id is replaced.
///
/// # Errors
/// [`SignalError::Store`].
pub fn generate_prekeys<R: CryptoRng + ?Sized>(
    store: &dyn Store,
    count: u32,
    rng: &mut R,
) -> Result<Vec<PreKeyRecord>, SignalError> {
    let mut counters = store.prekey_counters()?.unwrap_or_default();
    let mut id = counters.next_id.clamp(1, MAX_PREKEY_ID);
    let mut batch = StoreBatch::new();
    let mut records = Vec::new();
    for _ in 0..count {
        let record = PreKeyRecord::generate(id, rng);
        batch.put_prekey(id, record.to_bytes());
        records.push(record);
        id = if id >= MAX_PREKEY_ID { 1 } else { id + 1 };
    }
    counters.next_id = id;
    batch.put_prekey_counters(counters);
    store.apply(batch)?;
    Ok(records)
}

/// Records that every prekey generated so far was accepted by the server
/// (`first_unuploaded_id := next_id`).
///
/// # Errors
/// [`SignalError::Store`].
pub fn mark_prekeys_uploaded(store: &dyn Store) -> Result<(), SignalError> {
    let mut counters = store.prekey_counters()?.unwrap_or_default();
    counters.first_unuploaded_id = counters.next_id;
    let mut batch = StoreBatch::new();
    batch.put_prekey_counters(counters);
    store.apply(batch)?;
    Ok(())
}
