//! The message log: every message sent through a session (`crate::messaging::send`) and
//! every user-visible message it receives, kept in the server database with its status
//! timeline, listable with filters and a cursor, counted per UTC day, and removed after the
//! retention period ([`crate::config::MessageLogSettings`]).
//!
//! Storage (sled trees of [`ServerDb`], see `crate::db`):
//! - `messages`: the records ([`MessageRecord`]), key `session \0 message id` (the status
//!   route reads them directly);
//! - `msg_index`: key `session \0 created_at (u64 BE) id`, empty value: the time order the
//!   list walks (newest first) and the retention sweep cuts;
//! - `msg_stats`: [`DayStats`] per session and UTC day of the messages' creation; its
//!   `accepted` counter is the daily send quota (`crate::limits`), so the quota survives a
//!   restart.
//!
//! A received message's `wa::Message` is kept (base64 protobuf in `content`) so that a reply
//! can carry the quoted content, as official clients show it; so is a sent one's, for a
//! retry. OTP messages keep neither text nor content (only the OTP hash is stored).

pub(crate) mod routes;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use wa_engine::IncomingMessage;
use wa_engine::message::Content;
use wa_proto::prost::Message as _;
use wa_proto::wa;

use crate::db::{DbError, MessageRecord, ServerDb, StatusChange, decode, encode, key2, now_ms};

/// Counters of one session on one UTC day (the day a message was created).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct DayStats {
    /// Sends that passed the send limits (the daily quota counts these).
    #[serde(default)]
    pub(crate) accepted: u64,
    /// Sent messages that reached `sent` (the server's ack) or later.
    #[serde(default)]
    pub(crate) sent: u64,
    /// Sent messages that reached `delivered` or later.
    #[serde(default)]
    pub(crate) delivered: u64,
    /// Sent messages that reached `read` (or `played`).
    #[serde(default)]
    pub(crate) read: u64,
    /// Sent messages that are `failed` now.
    #[serde(default)]
    pub(crate) failed: u64,
    /// Messages received.
    #[serde(default)]
    pub(crate) received: u64,
}

impl DayStats {
    fn add(&mut self, other: &Self) {
        self.accepted += other.accepted;
        self.sent += other.sent;
        self.delivered += other.delivered;
        self.read += other.read;
        self.failed += other.failed;
        self.received += other.received;
    }
}

const DAY_MS: u64 = 86_400_000;

/// The UTC date `YYYY-MM-DD` of unix ms `ms`.
pub(crate) fn day_of(ms: u64) -> String {
    let days = i64::try_from(ms / DAY_MS).unwrap_or(i64::MAX / 2);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Unix ms of the UTC midnight starting `YYYY-MM-DD`, if it is a valid date from 1970 on.
pub(crate) fn parse_day(day: &str) -> Option<u64> {
    let mut parts = day.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let days = days_from_civil(y, m, d);
    // Round-trip rejects 2026-02-30 and friends.
    (days >= 0 && civil_from_days(days) == (y, m, d))
        .then(|| u64::try_from(days).ok())
        .flatten()
        .map(|d| d * DAY_MS)
}

/// Unix ms of the next UTC midnight after `ms`.
pub(crate) fn next_midnight(ms: u64) -> u64 {
    (ms / DAY_MS + 1) * DAY_MS
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return -1;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `session \0 created_at (BE) id`.
fn index_key(session: &str, created_at: u64, id: &str) -> Vec<u8> {
    let mut k = crate::db::prefix(session);
    k.extend_from_slice(&created_at.to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

/// Time and id of an index key of `session` (`prefix_len` = its prefix's length).
fn parse_index_key(key: &[u8], prefix_len: usize) -> Option<(u64, String)> {
    let rest = key.get(prefix_len..)?;
    let ts = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let id = std::str::from_utf8(rest.get(8..)?).ok()?.to_owned();
    Some((ts, id))
}

/// Adds `record` to the time index (not flushed).
///
/// # Errors
/// [`DbError::Sled`].
pub(crate) fn index(db: &ServerDb, session: &str, record: &MessageRecord) -> Result<(), DbError> {
    db.msg_index
        .insert(index_key(session, record.created_at, &record.id), &[])?;
    Ok(())
}

/// Applies `f` to the counters of `session` on `day` (atomically); returns the new value.
///
/// # Errors
/// [`DbError::Sled`].
fn bump(
    db: &ServerDb,
    session: &str,
    day: &str,
    f: impl Fn(&mut DayStats),
) -> Result<DayStats, DbError> {
    let mut out = DayStats::default();
    db.msg_stats.update_and_fetch(key2(session, day), |old| {
        let mut stats: DayStats = old
            .and_then(|v| serde_json::from_slice(v).ok())
            .unwrap_or_default();
        f(&mut stats);
        out = stats.clone();
        Some(encode(&stats))
    })?;
    Ok(out)
}

/// The counters of `session` on `day`.
///
/// # Errors
/// [`DbError`].
pub(crate) fn day_stats(db: &ServerDb, session: &str, day: &str) -> Result<DayStats, DbError> {
    Ok(ServerDb::get(&db.msg_stats, key2(session, day), "message stats")?.unwrap_or_default())
}

/// Counts one accepted send of `session` today unless `quota` sends were already accepted
/// today: `Ok(Err(used))` then. The check and the increment are one atomic update, so
/// concurrent sends never pass the quota together.
///
/// # Errors
/// [`DbError::Sled`].
pub(crate) fn accept(
    db: &ServerDb,
    session: &str,
    quota: Option<u64>,
) -> Result<Result<DayStats, u64>, DbError> {
    let day = day_of(now_ms());
    let mut refused = None;
    let mut out = DayStats::default();
    db.msg_stats.update_and_fetch(key2(session, &day), |old| {
        let mut stats: DayStats = old
            .and_then(|v| serde_json::from_slice(v).ok())
            .unwrap_or_default();
        if quota.is_some_and(|q| stats.accepted >= q) {
            refused = Some(stats.accepted);
        } else {
            stats.accepted += 1;
        }
        out = stats.clone();
        Some(encode(&stats))
    })?;
    Ok(match refused {
        Some(used) => Err(used),
        None => Ok(out),
    })
}

/// Rank of a status on the way out: `sent` 1, `delivered` 2, `read`/`played` 3, else 0.
fn milestone(status: &str) -> u8 {
    match status {
        "sent" => 1,
        "delivered" => 2,
        "read" | "played" => 3,
        _ => 0,
    }
}

/// Updates the day counters after `record` (an outgoing message) moved to its current
/// status, the last entry of its timeline: each milestone (`sent`, `delivered`, `read`) is
/// counted once, when first reached (a jump from `pending` to `read` counts all three);
/// `failed` counts while the message stays failed. Failures are logged.
pub(crate) fn count_transition(db: &ServerDb, session: &str, record: &MessageRecord) {
    let Some((now, before)) = record.timeline.split_last() else {
        return;
    };
    let reached = before
        .iter()
        .map(|c| milestone(&c.status))
        .max()
        .unwrap_or(0);
    let to = milestone(&now.status);
    let was_failed = before.last().is_some_and(|c| c.status == "failed");
    let failed_delta: i64 = match (was_failed, now.status == "failed") {
        (false, true) => 1,
        (true, false) => -1,
        _ => 0,
    };
    if to <= reached && failed_delta == 0 {
        return;
    }
    let result = bump(db, session, &day_of(record.created_at), |s| {
        for m in (reached + 1)..=to {
            match m {
                1 => s.sent += 1,
                2 => s.delivered += 1,
                _ => s.read += 1,
            }
        }
        match failed_delta {
            1 => s.failed += 1,
            -1 => s.failed = s.failed.saturating_sub(1),
            _ => {}
        }
    });
    if let Err(e) = result {
        tracing::error!(session, id = %record.id, error = %e, "cannot count a message status");
    }
}

/// The `wa::Message` of `content` as stored (base64 protobuf).
pub(crate) fn encode_content(message: &wa::Message) -> String {
    base64::engine::general_purpose::STANDARD.encode(message.encode_to_vec())
}

/// The stored `wa::Message` of `record`, if it kept one.
pub(crate) fn decode_content(record: &MessageRecord) -> Option<wa::Message> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(record.content.as_deref()?)
        .ok()?;
    wa::Message::decode(bytes.as_slice()).ok()
}

/// Records a received user-visible message of `session` (status `received`; a message the
/// account's phone sent, `from_me`, is `out` with status `sent`). A message already in the
/// log (the same id) is left as it is. Not flushed: the event fan-out's next flush, or
/// sled's periodic one, makes it durable. Failures are logged.
pub(crate) fn record_incoming(db: &ServerDb, session: &str, message: &IncomingMessage) {
    let info = &message.info;
    let content = Content::of(&message.message);
    // When the server got it (the sender's timestamp has whole seconds only, and an offline
    // message arrives later): the log's order is the order the session saw messages in.
    let created_at = now_ms();
    let (direction, status) = if info.from_me {
        ("out", "sent")
    } else {
        ("in", "received")
    };
    let record = MessageRecord {
        id: info.id.clone(),
        to: info.chat.to_string(),
        kind: crate::incoming::kind(&content).to_owned(),
        status: status.to_owned(),
        error: None,
        created_at,
        updated_at: now_ms(),
        direction: direction.to_owned(),
        sender: Some(info.sender.to_non_ad().to_string()),
        timeline: vec![StatusChange {
            status: status.to_owned(),
            at: now_ms(),
        }],
        text: content.text().map(str::to_owned),
        content: Some(encode_content(&message.message)),
        retry_of: None,
        retried_as: None,
        sender_pn: info.sender_pn.as_ref().map(ToString::to_string),
        sender_lid: info.sender_lid.as_ref().map(ToString::to_string),
        chat_pn: info.chat_pn().map(ToString::to_string),
        chat_lid: info.chat_lid().map(ToString::to_string),
    };
    let result = (|| -> Result<bool, DbError> {
        let key = key2(session, &record.id);
        let fresh = db
            .messages
            .compare_and_swap(&key, None as Option<&[u8]>, Some(encode(&record)))?
            .is_ok();
        if fresh {
            index(db, session, &record)?;
            bump(db, session, &day_of(created_at), |s| {
                if info.from_me {
                    s.sent += 1;
                } else {
                    s.received += 1;
                }
            })?;
        }
        Ok(fresh)
    })();
    if let Err(e) = result {
        tracing::error!(session, id = %record.id, error = %e, "cannot log a received message");
    }
}

/// Filters of [`list`]; `None` matches everything.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    /// The chat JID (`to` of the record).
    pub(crate) chat: Option<String>,
    /// `in` or `out`.
    pub(crate) direction: Option<String>,
    /// One status.
    pub(crate) status: Option<String>,
    /// Created at or after, unix ms.
    pub(crate) since: Option<u64>,
    /// Created before, unix ms.
    pub(crate) until: Option<u64>,
}

impl Filter {
    fn matches(&self, r: &MessageRecord) -> bool {
        self.chat.as_ref().is_none_or(|c| *c == r.to)
            && self.direction.as_ref().is_none_or(|d| *d == r.direction)
            && self.status.as_ref().is_none_or(|s| *s == r.status)
    }
}

/// Most index entries one [`list`] call reads before it answers with what it has and a
/// cursor (a filter that matches rarely must not scan a whole log in one request).
const MAX_SCAN: usize = 10_000;

/// A position in the log: `<created_at>-<id>` of the last message returned.
pub(crate) fn format_cursor(created_at: u64, id: &str) -> String {
    format!("{created_at}-{id}")
}

/// The position of [`format_cursor`]'s output, or `None` if it is not one.
pub(crate) fn parse_cursor(cursor: &str) -> Option<(u64, String)> {
    let (ts, id) = cursor.split_once('-')?;
    (!id.is_empty()).then_some(())?;
    Some((ts.parse().ok()?, id.to_owned()))
}

/// A page of the log of `session`, newest first: up to `limit` records matching `filter`,
/// created before `cursor` (exclusive) when given, and the cursor of the next page (`None`
/// at the end).
///
/// # Errors
/// [`DbError`].
pub(crate) fn list(
    db: &ServerDb,
    session: &str,
    filter: &Filter,
    cursor: Option<(u64, String)>,
    limit: usize,
) -> Result<(Vec<MessageRecord>, Option<String>), DbError> {
    let prefix = crate::db::prefix(session);
    let lo = index_key(session, filter.since.unwrap_or(0), "");
    let hi = match (&cursor, filter.until) {
        (Some((ts, id)), until) if until.is_none_or(|u| *ts < u) => index_key(session, *ts, id),
        (_, Some(until)) => index_key(session, until, ""),
        (_, None) => {
            // Past every key of this session: the prefix with its NUL raised to 1.
            let mut k = prefix.clone();
            if let Some(last) = k.last_mut() {
                *last = 1;
            }
            k
        }
    };
    let mut out = Vec::new();
    let mut scanned = 0;
    for item in db.msg_index.range(lo..hi).rev() {
        let (key, _) = item?;
        let Some((ts, id)) = parse_index_key(&key, prefix.len()) else {
            continue;
        };
        scanned += 1;
        if let Some(record) =
            ServerDb::get::<MessageRecord>(&db.messages, key2(session, &id), "message")?
            && filter.matches(&record)
        {
            out.push(record);
            if out.len() >= limit {
                return Ok((out, Some(format_cursor(ts, &id))));
            }
        }
        if scanned >= MAX_SCAN {
            return Ok((out, Some(format_cursor(ts, &id))));
        }
    }
    Ok((out, None))
}

/// Counters of `session` per day from `from` to `to` (unix ms of UTC midnights,
/// inclusive), every day listed (zeros included), and their sum.
///
/// # Errors
/// [`DbError`].
pub(crate) fn stats(
    db: &ServerDb,
    session: &str,
    from: u64,
    to: u64,
) -> Result<(Vec<(String, DayStats)>, DayStats), DbError> {
    let mut days = Vec::new();
    let mut total = DayStats::default();
    let mut day = from;
    while day <= to {
        let name = day_of(day);
        let stats = day_stats(db, session, &name)?;
        total.add(&stats);
        days.push((name, stats));
        day += DAY_MS;
    }
    Ok((days, total))
}

/// Removes what is older than `cutoff` (unix ms) from every session's log: records, index
/// entries, download references of their media, and day counters of days before the
/// cutoff's day. Returns how many messages went. Blocking.
///
/// # Errors
/// [`DbError`].
pub(crate) fn sweep(db: &ServerDb, cutoff: u64) -> Result<usize, DbError> {
    let sessions: Vec<String> = db
        .sessions
        .iter()
        .keys()
        .map(|k| k.map(|k| String::from_utf8_lossy(&k).into_owned()))
        .collect::<Result<_, _>>()?;
    let cutoff_day = day_of(cutoff);
    let mut removed = 0;
    for session in &sessions {
        let prefix = crate::db::prefix(session);
        let mut batch = sled::Batch::default();
        let mut records = sled::Batch::default();
        let mut media = sled::Batch::default();
        for item in db
            .msg_index
            .range(index_key(session, 0, "")..index_key(session, cutoff, ""))
        {
            let (key, _) = item?;
            if let Some((_, id)) = parse_index_key(&key, prefix.len()) {
                records.remove(key2(session, &id));
                media.remove(key2(session, &id));
                removed += 1;
            }
            batch.remove(key);
        }
        db.msg_index.apply_batch(batch)?;
        db.messages.apply_batch(records)?;
        db.media.apply_batch(media)?;
        let mut old_days = sled::Batch::default();
        for key in db.msg_stats.scan_prefix(&prefix).keys() {
            let key = key?;
            let day = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            if day < cutoff_day {
                old_days.remove(key);
            }
        }
        db.msg_stats.apply_batch(old_days)?;
    }
    Ok(removed)
}

/// Indexes the records of a database written before the message log (an empty index over a
/// non-empty `messages` tree). Blocking; called at start.
///
/// # Errors
/// [`DbError`].
pub(crate) fn migrate(db: &ServerDb) -> Result<usize, DbError> {
    if !db.msg_index.is_empty() || db.messages.is_empty() {
        return Ok(0);
    }
    let mut count = 0;
    for item in db.messages.iter() {
        let (key, value) = item?;
        let Some(session) = key.split(|b| *b == 0).next() else {
            continue;
        };
        // A damaged record is left out of the index (and of the list), not fatal to start.
        let Ok(record) = decode::<MessageRecord>(&value, "message") else {
            continue;
        };
        index(db, &String::from_utf8_lossy(session), &record)?;
        count += 1;
    }
    Ok(count)
}

/// Runs [`sweep`] at start and then every `settings.cleanup_interval` until shutdown
/// (`retention` zero: never).
pub(crate) async fn run_cleanup(state: crate::state::AppState) {
    let settings = state.config().message_log.clone();
    if settings.retention.is_zero() {
        return;
    }
    let mut shutdown = state.shutdown_watch();
    loop {
        let cutoff = now_ms()
            .saturating_sub(u64::try_from(settings.retention.as_millis()).unwrap_or(u64::MAX));
        let db = state.db().clone();
        match tokio::task::spawn_blocking(move || sweep(&db, cutoff)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => {
                tracing::info!(removed = n, "message log: removed messages past retention");
                if let Err(e) = state.db().flush().await {
                    tracing::error!(error = %e, "message log: flush after cleanup failed");
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "message log cleanup failed"),
            Err(e) => tracing::error!(error = %e, "message log cleanup task failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(settings.cleanup_interval) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_through_the_calendar() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(1_772_841_600_000), "2026-03-07");
        assert_eq!(parse_day("2026-03-07"), Some(1_772_841_600_000));
        assert_eq!(
            parse_day("2024-02-29").map(day_of).as_deref(),
            Some("2024-02-29")
        );
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "26-01-01",
            "2026-1-01",
            "x",
            "1969-12-31",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
        assert_eq!(next_midnight(1_772_841_600_001), 1_772_841_600_000 + DAY_MS);
    }

    #[test]
    fn cursors_round_trip() {
        assert_eq!(
            parse_cursor(&format_cursor(17, "3EB0-X")),
            Some((17, "3EB0-X".to_owned()))
        );
        assert_eq!(parse_cursor("17-"), None);
        assert_eq!(parse_cursor("x-1"), None);
    }

    fn moved(record: &mut MessageRecord, status: &str) {
        record.status = status.to_owned();
        record.timeline.push(StatusChange {
            status: status.to_owned(),
            at: record.created_at,
        });
    }

    #[test]
    fn each_milestone_is_counted_once_and_failed_only_while_failed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = ServerDb::open(dir.path()).expect("db");
        let mut a = MessageRecord::outgoing("a".into(), "1@s.whatsapp.net".into(), "text".into());
        moved(&mut a, "read");
        count_transition(&db, "s", &a);
        moved(&mut a, "played");
        count_transition(&db, "s", &a);
        let mut b = MessageRecord::outgoing("b".into(), "1@s.whatsapp.net".into(), "text".into());
        moved(&mut b, "sent");
        count_transition(&db, "s", &b);
        moved(&mut b, "failed");
        count_transition(&db, "s", &b);
        let day = day_of(a.created_at);
        let s = day_stats(&db, "s", &day).expect("stats");
        assert_eq!((s.sent, s.delivered, s.read, s.failed), (2, 1, 1, 1));
        moved(&mut b, "delivered");
        count_transition(&db, "s", &b);
        let s = day_stats(&db, "s", &day).expect("stats");
        assert_eq!((s.sent, s.delivered, s.read, s.failed), (2, 2, 1, 0));
    }

    #[test]
    fn the_quota_refuses_at_its_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = ServerDb::open(dir.path()).expect("db");
        assert!(accept(&db, "s", Some(2)).expect("db").is_ok());
        assert!(accept(&db, "s", Some(2)).expect("db").is_ok());
        assert_eq!(accept(&db, "s", Some(2)).expect("db"), Err(2));
        assert!(accept(&db, "other", Some(2)).expect("db").is_ok());
        assert!(accept(&db, "s", None).expect("db").is_ok());
    }

    #[test]
    fn list_pages_newest_first_and_sweep_cuts_by_age() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = ServerDb::open(dir.path()).expect("db");
        db.sessions.insert("s", b"{}".as_slice()).expect("session");
        for (i, chat) in [(1u64, "a"), (2, "b"), (3, "a"), (4, "a")] {
            let mut r = MessageRecord::outgoing(format!("m{i}"), chat.into(), "text".into());
            r.created_at = i * 1000;
            ServerDb::put(&db.messages, key2("s", &r.id), &r).expect("put");
            index(&db, "s", &r).expect("index");
        }
        let filter = Filter {
            chat: Some("a".into()),
            ..Filter::default()
        };
        let (page, next) = list(&db, "s", &filter, None, 2).expect("list");
        let ids: Vec<_> = page.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["m4", "m3"]);
        let (page, next) =
            list(&db, "s", &filter, parse_cursor(&next.expect("more")), 2).expect("list");
        assert_eq!(
            page.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["m1"]
        );
        assert_eq!(next, None);
        let range = Filter {
            since: Some(2000),
            until: Some(4000),
            ..Filter::default()
        };
        let (page, _) = list(&db, "s", &range, None, 10).expect("list");
        assert_eq!(
            page.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["m3", "m2"]
        );
        assert_eq!(sweep(&db, 3000).expect("sweep"), 2);
        let (page, _) = list(&db, "s", &Filter::default(), None, 10).expect("list");
        assert_eq!(
            page.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["m4", "m3"]
        );
        assert!(db.messages.get(key2("s", "m1")).expect("get").is_none());
    }
}
