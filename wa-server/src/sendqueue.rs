//! The send queue (`SendLimitSettings::queue`): sends over the rate limit or the recipient
//! pacing are recorded `queued` (`crate::messaging::send`) with an entry in the `send_queue`
//! tree, and one worker sends them when the limits allow, oldest first. Sends to one
//! recipient keep their order; a paced recipient or a limited session does not hold up
//! the others. The queue is in the server database, so a restart resumes it; a message
//! whose session is gone is dropped from it.
//!
//! A queued message becomes `pending` (flushed) just before the engine sees it, as a direct
//! send does, so a crash in between marks it `failed` at the next start instead of sending
//! it twice.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use wa_engine::Jid;

use crate::db::{DbError, MessageRecord, ServerDb, StatusChange, encode, key2, now_ms};
use crate::error::ApiError;
use crate::limits::SendLimit;
use crate::state::AppState;

/// How often the worker looks again while a session is not connected (or nothing wakes it).
const IDLE: Duration = Duration::from_secs(1);
/// How long the worker sleeps on an empty queue unless woken.
const EMPTY: Duration = Duration::from_secs(60);

/// `queued at (BE) ++ session \0 id`.
fn queue_key(at: u64, session: &str, id: &str) -> Vec<u8> {
    let mut k = at.to_be_bytes().to_vec();
    k.extend_from_slice(&key2(session, id));
    k
}

/// Session and message id of a queue key.
fn parse_key(key: &[u8]) -> Option<(String, String)> {
    let rest = std::str::from_utf8(key.get(8..)?).ok()?;
    let (session, id) = rest.split_once('\0')?;
    Some((session.to_owned(), id.to_owned()))
}

/// Adds the `queued` record of `session` to the queue (not flushed).
///
/// # Errors
/// [`DbError::Sled`].
pub(crate) fn push(db: &ServerDb, session: &str, record: &MessageRecord) -> Result<(), DbError> {
    db.send_queue
        .insert(queue_key(record.created_at, session, &record.id), &[])?;
    Ok(())
}

/// Moves a `queued` record to `pending` (atomically; `None` if it is not queued any more).
fn take(db: &ServerDb, session: &str, id: &str) -> Result<Option<MessageRecord>, DbError> {
    let mut taken = None;
    db.messages.update_and_fetch(key2(session, id), |old| {
        let old = old?;
        let Ok(mut record) = serde_json::from_slice::<MessageRecord>(old) else {
            return Some(old.to_vec());
        };
        if record.status != "queued" {
            return Some(old.to_vec());
        }
        record.status = "pending".to_owned();
        record.updated_at = now_ms();
        record.timeline.push(StatusChange {
            status: "pending".to_owned(),
            at: record.updated_at,
        });
        let bytes = encode(&record);
        taken = Some(record);
        Some(bytes)
    })?;
    Ok(taken)
}

/// Sends what the limits allow now; returns how long until the next try.
async fn drain(state: &AppState) -> Duration {
    let db = state.db();
    let entries: Vec<Vec<u8>> = db
        .send_queue
        .iter()
        .keys()
        .filter_map(|k| k.ok().map(|k| k.to_vec()))
        .collect();
    if entries.is_empty() {
        // Nothing queued: a new entry wakes the worker (`Limits::queued`).
        return EMPTY;
    }
    let mut wait = IDLE;
    let mut held_sessions = HashSet::new();
    let mut held_recipients: HashMap<String, HashSet<String>> = HashMap::new();
    for key in entries {
        let Some((session_id, id)) = parse_key(&key) else {
            let _ = db.send_queue.remove(&key);
            continue;
        };
        if held_sessions.contains(&session_id) {
            continue;
        }
        let Ok(session) = state.session(&session_id) else {
            let _ = db.send_queue.remove(&key);
            continue;
        };
        let record =
            match ServerDb::get::<MessageRecord>(&db.messages, key2(&session_id, &id), "message") {
                Ok(Some(r)) if r.status == "queued" => r,
                _ => {
                    let _ = db.send_queue.remove(&key);
                    continue;
                }
            };
        if held_recipients
            .get(&session_id)
            .is_some_and(|r| r.contains(&record.to))
        {
            continue;
        }
        let Ok(client) = session.connected_client() else {
            held_sessions.insert(session_id);
            continue;
        };
        let (Ok(to), Some(message)) = (
            record.to.parse::<Jid>(),
            crate::msglog::decode_content(&record),
        ) else {
            tracing::error!(session = %session_id, id, "queued message unreadable; failing it");
            let _ = db.send_queue.remove(&key);
            state
                .advance_message(
                    &session,
                    &id,
                    "failed",
                    Some("internal: unreadable queued message"),
                    None,
                )
                .await;
            continue;
        };
        match state.admit_send(&session_id, &to) {
            Ok(()) => {}
            Err(ApiError::SendLimited { limit, retry_after }) => {
                wait = wait.min(retry_after.max(Duration::from_millis(10)));
                if limit == SendLimit::Recipient {
                    held_recipients
                        .entry(session_id)
                        .or_default()
                        .insert(record.to);
                } else {
                    held_sessions.insert(session_id);
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(session = %session_id, id, error = %e, "send queue: cannot admit");
                held_sessions.insert(session_id);
                continue;
            }
        }
        let pending = match take(db, &session_id, &id) {
            Ok(Some(r)) => r,
            Ok(None) => {
                let _ = db.send_queue.remove(&key);
                continue;
            }
            Err(e) => {
                tracing::error!(session = %session_id, id, error = %e, "send queue: cannot take");
                held_sessions.insert(session_id);
                continue;
            }
        };
        let _ = db.send_queue.remove(&key);
        if let Err(e) = db.flush().await {
            tracing::error!(error = %e, "send queue: flush failed");
        }
        // Failures are recorded on the message (status `failed` with the error).
        let _ = crate::messaging::dispatch(state, &session, &client, &to, message, pending).await;
    }
    wait
}

/// The worker: drains the queue whenever a send is queued or the next one may pass, until
/// shutdown. It runs whether or not queueing is on, so what an earlier run queued still goes.
pub(crate) async fn run(state: AppState) {
    let mut shutdown = state.shutdown_watch();
    loop {
        let wait = drain(&state).await;
        tokio::select! {
            () = state.limits().queued.notified() => {}
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_sort_by_time_and_name_their_message() {
        let a = queue_key(5, "shop", "3EB0A");
        let b = queue_key(6, "a", "3EB0B");
        assert!(a < b);
        assert_eq!(parse_key(&a), Some(("shop".to_owned(), "3EB0A".to_owned())));
    }
}
