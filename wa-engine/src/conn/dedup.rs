//! Duplicate suppression for incoming messages (issue 13 item 6).
//!
//! The same message can reach us more than once: a sender answering our retry receipt with
//! both a direct `<enc>` and a `<participants>` copy (Baileys 7), the server re-delivering
//! its offline queue after a reconnect, or a re-send after a restart. Each (chat, sender,
//! id) is reported once as [`Event::Message`](crate::Event::Message).
//!
//! Seen keys live in the store's app-value namespace [`NAMESPACE`], so the window survives a
//! restart. The window is bounded by time: keys are filed under a generation (server time /
//! [`GENERATION_SECS`]); a lookup checks the current and the previous generation, and the
//! first write in a new generation deletes everything older. A message is therefore
//! remembered for at least one and at most two generations (1-2 days). whatsmeow keeps a
//! similar in-memory-only window (`message.go` `checkDuplicate`/`recentMessagesMap`, 256
//! entries); ours is persisted.

use crate::message::MessageInfo;
use crate::store::{Store, StoreBatch, StoreError};

/// Store namespace of the seen keys and the generation marker.
pub(crate) const NAMESPACE: &str = "wa.dedup";
/// Length of one generation, seconds.
pub(crate) const GENERATION_SECS: u64 = 24 * 3600;
/// Key of the marker naming the newest generation written.
const MARKER: &[u8] = b"generation";

fn key(generation: u64, info: &MessageInfo) -> Vec<u8> {
    format!(
        "{generation:016x}\0{}\0{}\0{}",
        info.chat.to_non_ad(),
        info.sender.to_non_ad(),
        info.id
    )
    .into_bytes()
}

/// Whether `info`'s message was already reported; if not, records it in `batch` (which the
/// caller applies with the rest of the receive). `now_secs` is the server time.
///
/// # Errors
/// [`StoreError`] reading the store.
pub(crate) fn check_and_record(
    store: &dyn Store,
    batch: &mut StoreBatch,
    info: &MessageInfo,
    now_secs: u64,
) -> Result<bool, StoreError> {
    let generation = now_secs / GENERATION_SECS;
    for g in [generation, generation.saturating_sub(1)] {
        if store.app_value(NAMESPACE, &key(g, info))?.is_some() {
            return Ok(true);
        }
    }
    let marker = store
        .app_value(NAMESPACE, MARKER)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_bytes()).ok())
        .map(u64::from_be_bytes);
    if marker != Some(generation) {
        // First write of a new generation: drop the ones that fell out of the window.
        let keep = format!("{:016x}", generation.saturating_sub(1));
        for k in store.app_keys(NAMESPACE)? {
            if k.as_slice() != MARKER && k.get(..16).is_some_and(|g| g < keep.as_bytes()) {
                batch.delete_app_value(NAMESPACE, &k);
            }
        }
        batch.put_app_value(NAMESPACE, MARKER, generation.to_be_bytes().to_vec());
    }
    batch.put_app_value(NAMESPACE, &key(generation, info), Vec::new());
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    fn info(id: &str) -> MessageInfo {
        crate::message::stanza::parse_message(
            &crate::binary::Node::new("message")
                .attr("from", "15550001111@s.whatsapp.net")
                .attr("id", id.to_owned())
                .attr("t", "1")
                .attr("type", "text"),
            &"15550009999:2@s.whatsapp.net".parse().unwrap(),
        )
        .unwrap()
        .0
    }

    #[test]
    fn second_sighting_is_a_duplicate_and_old_generations_expire() {
        let store = MemoryStore::new();
        let day = GENERATION_SECS;
        let mut b = StoreBatch::new();
        assert!(!check_and_record(&store, &mut b, &info("A"), 10 * day).unwrap());
        store.apply(b).unwrap();
        let mut b = StoreBatch::new();
        assert!(check_and_record(&store, &mut b, &info("A"), 10 * day + 5).unwrap());
        assert!(b.is_empty());
        // Next day: still remembered (previous generation).
        let mut b = StoreBatch::new();
        assert!(check_and_record(&store, &mut b, &info("A"), 11 * day).unwrap());
        // A new message on day 12 drops day 10's keys.
        let mut b = StoreBatch::new();
        assert!(!check_and_record(&store, &mut b, &info("B"), 12 * day).unwrap());
        store.apply(b).unwrap();
        let mut b = StoreBatch::new();
        assert!(!check_and_record(&store, &mut b, &info("A"), 12 * day).unwrap());
        assert_eq!(store.app_keys(NAMESPACE).unwrap().len(), 2);
    }
}
