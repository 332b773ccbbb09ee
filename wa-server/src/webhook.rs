//! Webhooks: a durable outbox in the server database, one delivery per (event, webhook).
//!
//! - [`enqueue_many`] (called by the event fan-out, `crate::fanout`) writes the deliveries
//!   and flushes before returning. The fan-out shows an event to SSE
//!   subscribers only after that, so an event that was emitted survives a crash (SIGKILL)
//!   and is delivered after the restart.
//! - The worker ([`run`]) takes due deliveries in order of due time, POSTs them (bounded
//!   concurrency), removes them on a 2xx, otherwise re-queues them with exponential backoff
//!   (`initial_backoff * 2^(tries-1)`, capped), and after `max_attempts` tries moves them to
//!   the dead-letter tree. Delivery is at least once: a crash between the POST and the removal
//!   repeats it, with the same event id.
//! - Each POST carries the envelope JSON as the body and these headers:
//!   `x-wa-event-id`, `x-wa-event-type`, `x-wa-timestamp` (unix seconds of this attempt) and
//!   `x-wa-signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with the
//!   webhook's own secret. Receivers recompute it and reject stale timestamps.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::db::{
    DbError, Delivery, HookStats, ServerDb, WebhookRecord, decode, encode, key2, now_ms,
};
use crate::events::Envelope;
use crate::metrics::WebhookOutcome;
use crate::state::AppState;

/// Most deliveries taken from the outbox per round.
const BATCH: usize = 64;

fn outbox_key(due_ms: u64, id: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&due_ms.to_be_bytes());
    k[8..].copy_from_slice(&id.to_be_bytes());
    k
}

fn due_of(key: &[u8]) -> u64 {
    key.get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes)
}

/// `sha256=<hex>` of HMAC-SHA256(`secret`, `"<timestamp>.<body>"`).
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Queues each envelope for each of its hooks in one batch, then flushes once (the
/// fan-out's group commit: many events, one write, one flush).
///
/// # Errors
/// [`DbError`]; then none of them was queued.
pub(crate) async fn enqueue_many(
    db: &ServerDb,
    events: &[(&str, &[WebhookRecord], &Envelope)],
) -> Result<(), DbError> {
    let now = now_ms();
    let mut batch = sled::Batch::default();
    for (session, hooks, envelope) in events {
        if hooks.is_empty() {
            continue;
        }
        let body =
            serde_json::to_string(envelope).map_err(|_| DbError::Corrupt("event envelope"))?;
        for hook in *hooks {
            let id = db.next_id()?;
            let delivery = Delivery {
                id,
                session: (*session).to_owned(),
                hook_id: hook.id.clone(),
                event_id: envelope.id.clone(),
                body: body.clone(),
                attempts: 0,
                last_error: None,
                created_at: now,
                target: None,
            };
            batch.insert(&outbox_key(now, id)[..], encode(&delivery));
        }
    }
    db.outbox.apply_batch(batch)?;
    db.flush().await
}

/// Queues deliveries a dialect rendered itself (`crate::dialect`: its own body, URL and
/// headers), `(session, hook id for the stats, event id, body, target)`, then flushes once.
///
/// # Errors
/// [`DbError`]; then none of them was queued.
pub(crate) async fn enqueue_prepared(
    db: &ServerDb,
    items: &[crate::dialect::Prepared],
) -> Result<(), DbError> {
    if items.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let mut batch = sled::Batch::default();
    for item in items {
        let id = db.next_id()?;
        let delivery = Delivery {
            id,
            session: item.session.clone(),
            hook_id: item.hook_id.clone(),
            event_id: item.event_id.clone(),
            body: item.body.clone(),
            attempts: 0,
            last_error: None,
            created_at: now,
            target: Some(item.target.clone()),
        };
        batch.insert(&outbox_key(now, id)[..], encode(&delivery));
    }
    db.outbox.apply_batch(batch)?;
    db.flush().await
}

/// Removes every queued and dead delivery of `session`.
///
/// # Errors
/// [`DbError`].
pub(crate) fn remove_session(db: &ServerDb, session: &str) -> Result<(), DbError> {
    for tree in [&db.outbox, &db.dead] {
        let mut batch = sled::Batch::default();
        for item in tree.iter() {
            let (k, v) = item?;
            if decode::<Delivery>(&v, "delivery").map_or(true, |d| d.session == session) {
                batch.remove(k);
            }
        }
        tree.apply_batch(batch)?;
    }
    Ok(())
}

/// Deliveries of `session` still queued, per webhook id.
///
/// # Errors
/// [`DbError`].
pub(crate) fn pending(db: &ServerDb, session: &str) -> Result<Vec<Delivery>, DbError> {
    let mut out = Vec::new();
    for item in db.outbox.iter() {
        let (_, v) = item?;
        let d: Delivery = decode(&v, "delivery")?;
        if d.session == session {
            out.push(d);
        }
    }
    Ok(out)
}

/// Dead deliveries of `session`, oldest first.
///
/// # Errors
/// [`DbError`].
pub(crate) fn dead(db: &ServerDb, session: &str) -> Result<Vec<Delivery>, DbError> {
    let mut out = Vec::new();
    for item in db.dead.iter() {
        let (_, v) = item?;
        let d: Delivery = decode(&v, "delivery")?;
        if d.session == session {
            out.push(d);
        }
    }
    Ok(out)
}

/// Moves the dead deliveries of `session` back into the outbox with a fresh try count.
/// Returns how many.
///
/// # Errors
/// [`DbError`].
pub(crate) async fn requeue_dead(db: &ServerDb, session: &str) -> Result<usize, DbError> {
    let now = now_ms();
    let mut moved = 0;
    for mut d in dead(db, session)? {
        let key = d.id.to_be_bytes();
        d.attempts = 0;
        db.outbox.insert(&outbox_key(now, d.id)[..], encode(&d))?;
        db.dead.remove(key)?;
        moved += 1;
    }
    db.flush().await?;
    Ok(moved)
}

/// The stats record of one webhook.
///
/// # Errors
/// [`DbError`].
pub(crate) fn stats(db: &ServerDb, session: &str, hook: &str) -> Result<HookStats, DbError> {
    Ok(ServerDb::get(&db.hook_stats, key2(session, hook), "hook stats")?.unwrap_or_default())
}

enum Outcome {
    Delivered,
    Failed(String),
    /// The webhook or session no longer exists.
    Orphaned,
}

/// The delivery worker; ends when shutdown begins.
pub(crate) async fn run(state: AppState) {
    let mut shutdown = state.shutdown_watch();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let now = now_ms();
        let mut due = Vec::new();
        let mut next_due = None;
        for item in state.db().outbox.iter() {
            let Ok((key, value)) = item else { break };
            let at = due_of(&key);
            if at > now {
                next_due = Some(at);
                break;
            }
            match decode::<Delivery>(&value, "delivery") {
                Ok(d) => due.push((key, d)),
                Err(e) => {
                    tracing::error!(error = %e, "dropping an undecodable outbox entry");
                    let _ = state.db().outbox.remove(key);
                }
            }
            if due.len() >= BATCH {
                next_due = Some(now);
                break;
            }
        }
        if due.is_empty() {
            let wait = next_due.map_or(Duration::from_secs(3600), |at| {
                Duration::from_millis(at.saturating_sub(now))
            });
            tokio::select! {
                () = state.outbox_notify().notified() => {}
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let concurrency = state.config().webhooks.concurrency.max(1);
        let results: Vec<_> = futures_util::stream::iter(due)
            .map(|(key, d)| {
                let state = state.clone();
                async move {
                    let outcome = attempt(&state, &d).await;
                    (key, d, outcome)
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        for (key, d, outcome) in results {
            if let Err(e) = settle(&state, &key, d, outcome) {
                tracing::error!(error = %e, "cannot record a webhook outcome");
            }
        }
        if let Err(e) = state.db().flush().await {
            tracing::error!(error = %e, "cannot flush the outbox");
        }
    }
}

async fn attempt(state: &AppState, d: &Delivery) -> Outcome {
    if let Some(target) = &d.target {
        return attempt_target(state, d, target).await;
    }
    let hook = state
        .session(&d.session)
        .ok()
        .and_then(|s| s.record().webhooks.into_iter().find(|h| h.id == d.hook_id));
    let Some(hook) = hook else {
        return Outcome::Orphaned;
    };
    // Checked again at each delivery: the server may have been restarted without the flag
    // that allowed the URL, and an IP literal never reaches the guarded resolver.
    if let Ok(url) = reqwest::Url::parse(&hook.url)
        && let Err(blocked) = state.target_guard().check_url(&url)
    {
        return Outcome::Failed(format!("target not allowed: {blocked}"));
    }
    let timestamp = now_ms() / 1000;
    let kind = serde_json::from_str::<serde_json::Value>(&d.body)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_default();
    let started = Instant::now();
    let sent = state
        .http()
        .post(&hook.url)
        .header("content-type", "application/json")
        .header("x-wa-event-id", &d.event_id)
        .header("x-wa-event-type", kind)
        .header("x-wa-timestamp", timestamp.to_string())
        .header(
            "x-wa-signature",
            signature(hook.secret.as_bytes(), timestamp, d.body.as_bytes()),
        )
        .body(d.body.clone())
        .send()
        .await;
    state
        .metrics()
        .observe_webhook_latency(started.elapsed().as_secs_f64());
    match sent {
        Ok(resp) if resp.status().is_success() => Outcome::Delivered,
        Ok(resp) => Outcome::Failed(format!("HTTP {}", resp.status().as_u16())),
        Err(e) => match crate::egress::BlockedTarget::find_in(&e) {
            Some(blocked) => Outcome::Failed(format!("target not allowed: {blocked}")),
            // Never log the URL: it may carry the receiver's own secret.
            None => Outcome::Failed(e.without_url().to_string()),
        },
    }
}

/// A dialect's delivery (`crate::dialect`): its own URL and headers, no signature (the
/// dialect's receivers do not expect one); orphaned once the session is gone.
async fn attempt_target(
    state: &AppState,
    d: &Delivery,
    target: &crate::db::DeliveryTarget,
) -> Outcome {
    if state.session(&d.session).is_err() {
        return Outcome::Orphaned;
    }
    if let Ok(url) = reqwest::Url::parse(&target.url)
        && let Err(blocked) = state.target_guard().check_url(&url)
    {
        return Outcome::Failed(format!("target not allowed: {blocked}"));
    }
    let mut request = state
        .http()
        .post(&target.url)
        .header("content-type", "application/json")
        .header("x-wa-event-id", &d.event_id)
        .header("x-wa-event-type", &target.event)
        .header("x-wa-timestamp", (now_ms() / 1000).to_string());
    for (name, value) in &target.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let started = Instant::now();
    let sent = request.body(d.body.clone()).send().await;
    state
        .metrics()
        .observe_webhook_latency(started.elapsed().as_secs_f64());
    match sent {
        Ok(resp) if resp.status().is_success() => Outcome::Delivered,
        Ok(resp) => Outcome::Failed(format!("HTTP {}", resp.status().as_u16())),
        Err(e) => match crate::egress::BlockedTarget::find_in(&e) {
            Some(blocked) => Outcome::Failed(format!("target not allowed: {blocked}")),
            None => Outcome::Failed(e.without_url().to_string()),
        },
    }
}

fn backoff(state: &AppState, attempts: u32) -> Duration {
    let cfg = &state.config().webhooks;
    cfg.initial_backoff
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(20))
        .min(cfg.max_backoff)
}

fn settle(state: &AppState, key: &[u8], mut d: Delivery, outcome: Outcome) -> Result<(), DbError> {
    let db = state.db();
    let stats_key = key2(&d.session, &d.hook_id);
    let mut stats: HookStats =
        ServerDb::get(&db.hook_stats, &stats_key, "hook stats")?.unwrap_or_default();
    match outcome {
        Outcome::Orphaned => {
            db.outbox.remove(key)?;
            return Ok(());
        }
        Outcome::Delivered => {
            db.outbox.remove(key)?;
            stats.delivered += 1;
            stats.last_delivered_at = Some(now_ms());
            state.metrics().webhook(WebhookOutcome::Delivered);
            tracing::debug!(event = %d.event_id, hook = %d.hook_id, "webhook delivered");
        }
        Outcome::Failed(error) => {
            d.attempts += 1;
            stats.failed_attempts += 1;
            stats.last_error = Some(error.clone());
            d.last_error = Some(error.clone());
            state.metrics().webhook(WebhookOutcome::Failed);
            let mut batch = sled::Batch::default();
            batch.remove(key);
            if d.attempts >= state.config().webhooks.max_attempts {
                stats.dead += 1;
                state.metrics().webhook(WebhookOutcome::Dead);
                tracing::warn!(event = %d.event_id, hook = %d.hook_id, %error, "webhook dead-lettered");
                db.outbox.apply_batch(batch)?;
                db.dead.insert(d.id.to_be_bytes(), encode(&d))?;
            } else {
                let delay = backoff(state, d.attempts);
                let due =
                    now_ms().saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
                tracing::debug!(event = %d.event_id, hook = %d.hook_id, %error, ?delay, "webhook retry scheduled");
                batch.insert(&outbox_key(due, d.id)[..], encode(&d));
                db.outbox.apply_batch(batch)?;
            }
        }
    }
    ServerDb::put(&db.hook_stats, &stats_key, &stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_covers_timestamp_and_body() {
        let a = signature(b"secret", 1_700_000_000, b"{}");
        assert!(a.starts_with("sha256="));
        assert_eq!(a.len(), "sha256=".len() + 64);
        assert_ne!(a, signature(b"secret", 1_700_000_001, b"{}"));
        assert_ne!(a, signature(b"secret", 1_700_000_000, b"{ }"));
        assert_ne!(a, signature(b"other", 1_700_000_000, b"{}"));
    }

    #[test]
    fn outbox_keys_sort_by_due_time_then_id() {
        assert!(outbox_key(1, 9) < outbox_key(2, 0));
        assert!(outbox_key(2, 0) < outbox_key(2, 1));
        assert_eq!(due_of(&outbox_key(42, 7)), 42);
    }
}
