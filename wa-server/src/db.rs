//! The server's own database: one sled database in `<data-dir>/server/`, next to the engine
//! stores of the sessions. Values are JSON; every write that must survive a crash is
//! followed by [`ServerDb::flush`] before the server acts on it.
//!
//! Trees:
//!
//! | Tree | Key | Value |
//! |---|---|---|
//! | `sessions` | session id | [`SessionRecord`] |
//! | `outbox` | due time (unix ms, u64 BE) ++ delivery id (u64 BE) | [`Delivery`] |
//! | `dead` | delivery id (u64 BE) | [`Delivery`] |
//! | `hook_stats` | session id `\0` webhook id | [`HookStats`] |
//! | `messages` | session id `\0` message id | [`MessageRecord`] (sent and received: the message log) |
//! | `msg_index` | session id `\0` created at (unix ms, u64 BE) ++ message id | empty (`crate::msglog`) |
//! | `send_queue` | queued at (unix ms, u64 BE) ++ session id `\0` message id | empty (`crate::sendqueue`) |
//! | `msg_stats` | session id `\0` UTC day `YYYY-MM-DD` | `crate::msglog::DayStats` (counters, daily quota) |
//! | `otp` | session id `\0` recipient digits | [`OtpRecord`] |
//! | `media` | session id `\0` message id | `media::record::StoredMedia` (download reference) |
//! | `meta` | name | secrets of this installation (link signing key, OTP pepper) |
//! | `dialects` | session id `\0` dialect name | that dialect's own per-session state (`crate::dialect`) |

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A failure of the server database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// sled failed (I/O, or its files are damaged).
    #[error("server database: {0}")]
    Sled(#[from] sled::Error),
    /// A record did not decode.
    #[error("server database record is corrupt: {0}")]
    Corrupt(&'static str),
    /// The blocking task that flushes the database panicked or was cancelled.
    #[error("server database flush task failed")]
    Join,
}

/// A session as the server persists it (the engine's state lives in its own store).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SessionRecord {
    pub(crate) id: String,
    /// Unix ms.
    pub(crate) created_at: u64,
    /// SHA-256 of the session token, hex.
    pub(crate) token_hash: String,
    pub(crate) webhooks: Vec<WebhookRecord>,
    /// Display name (`crate::session_meta`); absent in records of older versions.
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// Free-form operator data, a JSON object (`crate::session_meta::MAX_METADATA_BYTES`).
    #[serde(default)]
    pub(crate) metadata: serde_json::Map<String, serde_json::Value>,
    /// Behaviour switches and pairing-page branding.
    #[serde(default)]
    pub(crate) settings: crate::session_meta::SessionSettings,
}

/// One webhook of a session.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct WebhookRecord {
    pub(crate) id: String,
    pub(crate) url: String,
    /// Event types to deliver; empty = all.
    pub(crate) events: Vec<String>,
    /// HMAC-SHA256 key for the signature header.
    pub(crate) secret: String,
    pub(crate) created_at: u64,
}

impl std::fmt::Debug for WebhookRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRecord")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// One event to deliver to one webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Delivery {
    pub(crate) id: u64,
    pub(crate) session: String,
    pub(crate) hook_id: String,
    pub(crate) event_id: String,
    /// The envelope exactly as signed and sent (stable across retries and restarts).
    pub(crate) body: String,
    pub(crate) attempts: u32,
    pub(crate) last_error: Option<String>,
    /// Unix ms.
    pub(crate) created_at: u64,
    /// Set for a delivery rendered by a dialect (`crate::dialect`): where and how to POST
    /// it instead of the session webhook `hook_id` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<DeliveryTarget>,
}

/// Where a dialect's delivery goes: its own URL (with a per-event suffix, for example),
/// extra headers, and the event type for the `x-wa-event-type` header.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct DeliveryTarget {
    pub(crate) url: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) event: String,
}

impl std::fmt::Debug for DeliveryTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL or the headers: they may carry the receiver's secret.
        f.debug_struct("DeliveryTarget")
            .field("event", &self.event)
            .finish_non_exhaustive()
    }
}

/// Delivery counters of one webhook.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct HookStats {
    pub(crate) delivered: u64,
    pub(crate) failed_attempts: u64,
    pub(crate) dead: u64,
    pub(crate) last_error: Option<String>,
    /// Unix ms of the last successful delivery.
    pub(crate) last_delivered_at: Option<u64>,
}

/// A message of the log (`crate::msglog`): one sent through the API (and its status) or
/// one received. Fields after `updated_at` were added with the message log; records written
/// before it read with their defaults (an outgoing message without a timeline).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MessageRecord {
    pub(crate) id: String,
    /// The chat: the recipient of an outgoing message, the chat of a received one.
    pub(crate) to: String,
    pub(crate) kind: String,
    pub(crate) status: String,
    pub(crate) error: Option<String>,
    pub(crate) created_at: u64,
    pub(crate) updated_at: u64,
    /// `out` (sent by this session, or by the account's phone) or `in` (received).
    #[serde(default = "out")]
    pub(crate) direction: String,
    /// Who sent it (a received message's sender JID; `None` for the session's own sends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sender: Option<String>,
    /// Every status reached, in order, with its time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) timeline: Vec<StatusChange>,
    /// The text (or caption) when there is one; never for OTPs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) text: Option<String>,
    /// The `wa::Message` protobuf, base64 (for retries and for quoting it in a reply);
    /// never for OTPs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) content: Option<String>,
    /// The failed message this one retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) retry_of: Option<String>,
    /// The message that retried this failed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) retried_as: Option<String>,
    /// A received message's sender as a phone-number user JID, when known (07 §1.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sender_pn: Option<String>,
    /// A received message's sender as a LID user JID, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sender_lid: Option<String>,
    /// A received 1:1 message's chat as a phone-number JID, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) chat_pn: Option<String>,
    /// A received 1:1 message's chat as a LID, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) chat_lid: Option<String>,
}

fn out() -> String {
    "out".to_owned()
}

/// One step of a message's status timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct StatusChange {
    /// The status reached (`queued`, `pending`, `sent`, `delivered`, `read`, `played`, `failed`,
    /// `received`).
    pub(crate) status: String,
    /// Unix ms.
    pub(crate) at: u64,
}

impl MessageRecord {
    /// A new outgoing record in status `pending`, created now.
    pub(crate) fn outgoing(id: String, to: String, kind: String) -> Self {
        let now = now_ms();
        Self {
            id,
            to,
            kind,
            status: "pending".to_owned(),
            error: None,
            created_at: now,
            updated_at: now,
            direction: out(),
            sender: None,
            timeline: vec![StatusChange {
                status: "pending".to_owned(),
                at: now,
            }],
            text: None,
            content: None,
            retry_of: None,
            retried_as: None,
            sender_pn: None,
            sender_lid: None,
            chat_pn: None,
            chat_lid: None,
        }
    }
}

/// A pending one-time code: only its keyed hash is stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OtpRecord {
    pub(crate) id: String,
    /// HMAC-SHA256(pepper, session, recipient, id, code), hex.
    pub(crate) hash: String,
    pub(crate) created_at: u64,
    pub(crate) expires_at: u64,
    pub(crate) attempts: u32,
    pub(crate) max_attempts: u32,
}

/// The server database (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct ServerDb {
    db: sled::Db,
    /// Shares one sled flush among concurrent [`ServerDb::flush`] callers.
    flusher: GroupFlush,
    pub(crate) sessions: sled::Tree,
    pub(crate) outbox: sled::Tree,
    pub(crate) dead: sled::Tree,
    pub(crate) hook_stats: sled::Tree,
    pub(crate) messages: sled::Tree,
    pub(crate) otp: sled::Tree,
    pub(crate) media: sled::Tree,
    pub(crate) msg_index: sled::Tree,
    pub(crate) msg_stats: sled::Tree,
    pub(crate) send_queue: sled::Tree,
    pub(crate) dialects: sled::Tree,
    meta: sled::Tree,
}

/// `a \0 b`: a composite key whose first part has no NUL (session ids are checked).
pub(crate) fn key2(a: &str, b: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + b.len() + 1);
    k.extend_from_slice(a.as_bytes());
    k.push(0);
    k.extend_from_slice(b.as_bytes());
    k
}

/// The prefix of every [`key2`] key of `a`.
pub(crate) fn prefix(a: &str) -> Vec<u8> {
    key2(a, "")
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing our own plain structs to JSON cannot fail (string keys, no floats).
    serde_json::to_vec(value).unwrap_or_default()
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T, DbError> {
    serde_json::from_slice(bytes).map_err(|_| DbError::Corrupt(what))
}

impl ServerDb {
    /// Opens (or creates) the database in `dir`. Blocking.
    ///
    /// # Errors
    /// [`DbError::Sled`] when sled cannot open it (locked by another process, damaged).
    pub(crate) fn open(dir: &Path) -> Result<Self, DbError> {
        let db = sled::Config::new().path(dir).open()?;
        Ok(Self {
            sessions: db.open_tree("sessions")?,
            outbox: db.open_tree("outbox")?,
            dead: db.open_tree("dead")?,
            hook_stats: db.open_tree("hook_stats")?,
            messages: db.open_tree("messages")?,
            otp: db.open_tree("otp")?,
            media: db.open_tree("media")?,
            msg_index: db.open_tree("msg_index")?,
            msg_stats: db.open_tree("msg_stats")?,
            send_queue: db.open_tree("send_queue")?,
            dialects: db.open_tree("dialects")?,
            meta: db.open_tree("meta")?,
            flusher: GroupFlush::spawn(),
            db,
        })
    }

    /// Writes everything written before the call to stable storage: returns after a
    /// sled flush that started after the call returned (group commit, as
    /// `wa_engine::store::GroupCommitter`: concurrent callers share one flush on the
    /// `wa-server-flush` thread instead of paying one each; see [`GroupFlush`]).
    ///
    /// Not `sled::Db::flush_async`: in sled 0.34 concurrent `flush_async` futures can
    /// never be woken (spacejam/sled #1241, #1308), which hung every send of a session
    /// under 40 concurrent requests (`cargo bench -p wa-server --bench http_load`).
    ///
    /// # Errors
    /// [`DbError::Sled`] on I/O failure (every caller sharing that flush gets it);
    /// [`DbError::Join`] if the flush thread is gone.
    pub(crate) async fn flush(&self) -> Result<(), DbError> {
        self.flusher.flush(&self.db).await
    }

    /// Writes everything to stable storage (blocking form, for shutdown).
    ///
    /// # Errors
    /// [`DbError::Sled`] on I/O failure.
    pub(crate) fn flush_blocking(&self) -> Result<(), DbError> {
        self.db.flush()?;
        Ok(())
    }

    /// A new id, unique and increasing across restarts.
    ///
    /// # Errors
    /// [`DbError::Sled`].
    pub(crate) fn next_id(&self) -> Result<u64, DbError> {
        Ok(self.db.generate_id()?)
    }

    /// A 32-byte secret of this installation, created on first use and kept.
    ///
    /// # Errors
    /// [`DbError::Sled`], [`DbError::Corrupt`] for a stored value of the wrong length.
    pub(crate) fn secret(&self, name: &str) -> Result<Zeroizing<[u8; 32]>, DbError> {
        let mut fresh = Zeroizing::new([0u8; 32]);
        rand::fill(&mut fresh[..]);
        // Keep an existing value: only the first writer wins.
        let _ = self
            .meta
            .compare_and_swap(name, None as Option<&[u8]>, Some(&fresh[..]))?;
        let stored = self
            .meta
            .get(name)?
            .ok_or(DbError::Corrupt("meta secret vanished"))?;
        let mut out = Zeroizing::new([0u8; 32]);
        if stored.len() != 32 {
            return Err(DbError::Corrupt("meta secret length"));
        }
        out.copy_from_slice(&stored);
        Ok(out)
    }

    /// Reads a JSON record.
    ///
    /// # Errors
    /// [`DbError`].
    pub(crate) fn get<T: DeserializeOwned>(
        tree: &sled::Tree,
        key: impl AsRef<[u8]>,
        what: &'static str,
    ) -> Result<Option<T>, DbError> {
        tree.get(key)?.map(|v| decode(&v, what)).transpose()
    }

    /// Writes a JSON record (not flushed).
    ///
    /// # Errors
    /// [`DbError::Sled`].
    pub(crate) fn put<T: Serialize>(
        tree: &sled::Tree,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<(), DbError> {
        tree.insert(key.as_ref(), encode(value))?;
        Ok(())
    }

    /// Removes every key of `tree` starting with `prefix`.
    ///
    /// # Errors
    /// [`DbError::Sled`].
    pub(crate) fn remove_prefix(tree: &sled::Tree, prefix: &[u8]) -> Result<(), DbError> {
        let mut batch = sled::Batch::default();
        for item in tree.scan_prefix(prefix).keys() {
            batch.remove(item?);
        }
        tree.apply_batch(batch)?;
        Ok(())
    }
}

/// Unix time in milliseconds.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Order of message statuses: a status only moves forward. `failed` is reachable only
/// before `delivered`; after it only a receipt (`delivered` or later) moves the message on,
/// since a receipt proves the message arrived after all (e.g. the ack was lost with the
/// connection).
pub(crate) fn status_rank(status: &str) -> u8 {
    match status {
        "queued" | "pending" => 0,
        "sent" => 1,
        "delivered" => 2,
        "read" => 3,
        "played" => 4,
        "failed" => 5,
        _ => 0,
    }
}

/// Error recorded on a send that was still `pending` when the server stopped.
pub(crate) const INTERRUPTED: &str =
    "interrupted: the server stopped before the send completed (a later receipt still moves it on)";

/// Marks every `pending` message `failed` with [`INTERRUPTED`]; returns how many.
///
/// Called at start, before any session runs, so no send is in flight: a `pending` record
/// was left by a crash between writing it and the server's ack. The message may still have
/// gone out; [`advance_message`] lets a later delivery receipt move it on from `failed`.
///
/// # Errors
/// [`DbError::Sled`].
pub(crate) fn fail_interrupted_sends(db: &ServerDb) -> Result<usize, DbError> {
    let tree = &db.messages;
    let mut stale = Vec::new();
    for item in tree.iter() {
        let (key, value) = item?;
        if let Ok(record) = serde_json::from_slice::<MessageRecord>(&value)
            && record.status == "pending"
        {
            stale.push((key, record));
        }
    }
    let count = stale.len();
    for (key, mut record) in stale {
        record.status = "failed".to_owned();
        record.error = Some(INTERRUPTED.to_owned());
        record.updated_at = now_ms();
        record.timeline.push(StatusChange {
            status: record.status.clone(),
            at: record.updated_at,
        });
        tree.insert(&key, encode(&record))?;
        if let Some(session) = key.split(|b| *b == 0).next() {
            crate::msglog::count_transition(db, &String::from_utf8_lossy(session), &record);
        }
    }
    Ok(count)
}

/// Moves message `id` of `session` to `status` unless it is already at or past it; creates
/// no record. Returns the record when it changed.
///
/// # Errors
/// [`DbError`].
pub(crate) fn advance_message(
    tree: &sled::Tree,
    session: &str,
    id: &str,
    status: &str,
    error: Option<&str>,
) -> Result<Option<MessageRecord>, DbError> {
    let key = key2(session, id);
    let mut changed = None;
    tree.update_and_fetch(&key, |old| {
        let old = old?;
        let Ok(mut record) = serde_json::from_slice::<MessageRecord>(old) else {
            return Some(old.to_vec());
        };
        let (from, to) = (status_rank(&record.status), status_rank(status));
        let forward = if status == "failed" {
            from < 2
        } else if record.status == "failed" {
            to >= 2
        } else {
            to > from
        };
        if !forward {
            return Some(old.to_vec());
        }
        record.status = status.to_owned();
        record.error = error.map(str::to_owned);
        record.updated_at = now_ms();
        record.timeline.push(StatusChange {
            status: record.status.clone(),
            at: record.updated_at,
        });
        let bytes = encode(&record);
        changed = Some(record);
        Some(bytes)
    })?;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: &str) -> MessageRecord {
        let mut r = MessageRecord::outgoing("m1".into(), "1@s.whatsapp.net".into(), "text".into());
        r.status = status.into();
        r
    }

    #[test]
    fn pending_sends_left_by_a_crash_are_failed_at_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = ServerDb::open(dir.path()).expect("db");
        ServerDb::put(&db.messages, key2("s", "m1"), &record("pending")).expect("put");
        ServerDb::put(&db.messages, key2("s", "m2"), &record("sent")).expect("put");
        assert_eq!(fail_interrupted_sends(&db).expect("sweep"), 1);
        let get = |id: &str| {
            ServerDb::get::<MessageRecord>(&db.messages, key2("s", id), "message")
                .expect("get")
                .expect("present")
        };
        assert_eq!(get("m1").status, "failed");
        assert_eq!(get("m1").error.as_deref(), Some(INTERRUPTED));
        assert_eq!(get("m2").status, "sent", "only pending records are touched");
        assert_eq!(fail_interrupted_sends(&db).expect("sweep"), 0);
    }

    #[test]
    fn message_status_only_moves_forward() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = ServerDb::open(dir.path()).expect("db");
        ServerDb::put(&db.messages, key2("s", "m1"), &record("pending")).expect("put");
        let step = |st: &str| {
            advance_message(&db.messages, "s", "m1", st, None)
                .expect("advance")
                .map(|r| r.status)
        };
        assert_eq!(step("sent").as_deref(), Some("sent"));
        assert_eq!(step("read").as_deref(), Some("read"));
        assert_eq!(
            step("delivered"),
            None,
            "a late delivery receipt does not go back"
        );
        assert_eq!(step("failed"), None, "a read message cannot fail");
        ServerDb::put(&db.messages, key2("s", "m2"), &record("failed")).expect("put");
        let advance = |st: &str| {
            advance_message(&db.messages, "s", "m2", st, None)
                .expect("advance")
                .map(|r| (r.status, r.error))
        };
        assert_eq!(advance("sent"), None, "a failed message is not sent later");
        assert_eq!(
            advance("delivered"),
            Some(("delivered".to_owned(), None)),
            "a receipt proves delivery after a lost ack"
        );
        assert_eq!(
            advance_message(&db.messages, "s", "nope", "sent", None)
                .expect("ok")
                .map(|r| r.status),
            None
        );
    }
}

/// Group flush for [`ServerDb`]: one thread takes the first queued flush request, takes
/// every request queued behind it (no added delay), runs one `sled::Db::flush` and
/// answers them all. A request is queued after its caller's writes, and the flush
/// starts after the request is taken, so it covers them; a caller is answered only
/// after that flush returned. A failed flush fails every caller of its group.
///
/// The trade is the engine's (`wa_engine::store` module `commit`): one fsync serves
/// every request that arrived while the previous one ran, so under load the flushes
/// per request fall towards zero, at the cost of waiting for at most one flush already
/// under way. The thread holds no database handle between groups (each request carries
/// one), so dropping the last `ServerDb` releases sled's lock as before; it exits when
/// the last `ServerDb` clone is dropped.
#[derive(Debug, Clone)]
struct GroupFlush {
    tx: std::sync::mpsc::Sender<FlushRequest>,
}

struct FlushRequest {
    db: sled::Db,
    reply: tokio::sync::oneshot::Sender<Result<(), sled::Error>>,
}

impl std::fmt::Debug for FlushRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlushRequest").finish_non_exhaustive()
    }
}

impl GroupFlush {
    fn spawn() -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<FlushRequest>();
        let spawned = std::thread::Builder::new()
            .name("wa-server-flush".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut group = vec![first];
                    group.extend(rx.try_iter());
                    let result = group[0].db.flush().map(drop);
                    if let Err(e) = &result {
                        tracing::warn!(error = %e, callers = group.len(), "server database flush failed");
                    }
                    for request in group {
                        let _ = request.reply.send(result.clone());
                    }
                }
            });
        if let Err(e) = spawned {
            // Without the thread every flush fails with `Join` (its sender finds no
            // receiver) instead of hanging.
            tracing::error!(error = %e, "cannot start the server database flush thread");
        }
        Self { tx }
    }

    async fn flush(&self, db: &sled::Db) -> Result<(), DbError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx
            .send(FlushRequest {
                db: db.clone(),
                reply,
            })
            .map_err(|_| DbError::Join)?;
        answer.await.map_err(|_| DbError::Join)??;
        Ok(())
    }
}
