//! Send limits that protect a session's account from being flagged for bulk sending
//! ([`SendLimitSettings`]): a per-session rate (GCRA from the `governor` crate, in memory),
//! pacing per recipient (in memory) and a daily quota per session (the `accepted` day
//! counter of the message log, in the server database, so a restart does not reset it).
//!
//! Every send (text, location, contact, media, OTP, retry) passes [`Limits::admit`] after
//! its request was validated and before anything goes to WhatsApp. The checks that only
//! look (recipient pacing, quota) run first and the ones that consume (rate, then quota)
//! last, all under one lock, so a refused send costs no budget of another limit and two
//! concurrent sends never both pass the last unit of one.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use governor::clock::{Clock as _, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::SendLimitSettings;
use crate::db::{ServerDb, now_ms};
use crate::error::ApiError;
use crate::msglog::{self, day_of, next_midnight};

/// Which send limit refused a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendLimit {
    /// The session's sends per minute (`send_rate_limited`).
    SessionRate,
    /// The least interval between two sends to one recipient (`recipient_rate_limited`).
    Recipient,
    /// The session's sends per UTC day (`daily_quota_exceeded`).
    DailyQuota,
}

impl SendLimit {
    /// The stable error code.
    pub fn code(self) -> &'static str {
        match self {
            Self::SessionRate => "send_rate_limited",
            Self::Recipient => "recipient_rate_limited",
            Self::DailyQuota => "daily_quota_exceeded",
        }
    }
}

impl std::fmt::Display for SendLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::SessionRate => "the session's send rate limit is reached",
            Self::Recipient => "sent to this recipient too recently",
            Self::DailyQuota => "the session's daily send quota is used up",
        })
    }
}

type Gcra = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// One session's rate limiter and what it last said about its capacity.
struct SessionRate {
    limiter: Gcra,
    /// Burst capacity left after the last admitted send, and when.
    last: Mutex<Option<(u32, Instant)>>,
}

/// The limits' in-memory state (the quota lives in the database).
#[derive(Default)]
pub(crate) struct Limits {
    /// Rate limiters by session.
    rates: Mutex<HashMap<String, Arc<SessionRate>>>,
    /// Last admitted send per (session, recipient user JID); the admission lock.
    recipients: Mutex<HashMap<(String, String), Instant>>,
    /// Wakes the send queue's worker (`crate::sendqueue`).
    pub(crate) queued: tokio::sync::Notify,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits").finish_non_exhaustive()
    }
}

/// Entries of the recipient map above which expired ones are dropped on the next admission.
const PRUNE_AT: usize = 10_000;

/// The send limits of a session and how much of them is used, as the session resource
/// shows them.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LimitsView {
    /// Sends per minute (bursts up to this many); `null`: no rate limit.
    per_minute: Option<u32>,
    /// Sends the rate limit would admit now in a burst (replenished one per
    /// 60 s / `per_minute`); `null` without a rate limit.
    minute_remaining: Option<u32>,
    /// Least milliseconds between two sends to one recipient; 0: no pacing.
    recipient_interval_ms: u64,
    /// Sends per UTC day; `null`: no quota.
    daily_quota: Option<u64>,
    /// Sends admitted today (UTC), kept across restarts.
    sent_today: u64,
    /// Sends left today under the quota; `null` without a quota.
    daily_remaining: Option<u64>,
    /// Unix ms of the next UTC midnight, when the day's count starts again.
    day_resets_at: u64,
}

impl Limits {
    fn rate(&self, session: &str, per_minute: NonZeroU32) -> Arc<SessionRate> {
        self.rates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(session.to_owned())
            .or_insert_with(|| {
                Arc::new(SessionRate {
                    limiter: RateLimiter::direct(Quota::per_minute(per_minute))
                        .with_middleware::<StateInformationMiddleware>(),
                    last: Mutex::new(None),
                })
            })
            .clone()
    }

    /// Admits one send of `session` to `recipient` (a user or group JID, device part
    /// dropped) or refuses it with [`ApiError::SendLimited`]. An admitted send counts
    /// against every limit even if it then fails.
    ///
    /// # Errors
    /// [`ApiError::SendLimited`]; [`ApiError::Internal`] when the quota cannot be read.
    pub(crate) fn admit(
        &self,
        settings: &SendLimitSettings,
        db: &ServerDb,
        session: &str,
        recipient: &str,
    ) -> Result<(), ApiError> {
        let refuse = |limit, retry_after| Err(ApiError::SendLimited { limit, retry_after });
        let now = Instant::now();
        let mut recipients = self
            .recipients
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = (session.to_owned(), recipient.to_owned());
        let interval = settings.recipient_interval;
        if !interval.is_zero()
            && let Some(last) = recipients.get(&key)
            && let Some(wait) = (*last + interval).checked_duration_since(now)
            && !wait.is_zero()
        {
            return refuse(SendLimit::Recipient, wait);
        }
        let until_midnight = || {
            let now = now_ms();
            Duration::from_millis(next_midnight(now).saturating_sub(now))
        };
        if let Some(quota) = settings.daily_quota
            && msglog::day_stats(db, session, &day_of(now_ms()))?.accepted >= quota
        {
            return refuse(SendLimit::DailyQuota, until_midnight());
        }
        if let Some(per_minute) = NonZeroU32::new(settings.per_minute) {
            let rate = self.rate(session, per_minute);
            match rate.limiter.check() {
                Ok(snapshot) => {
                    *rate.last.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some((snapshot.remaining_burst_capacity(), now));
                }
                Err(not_until) => {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    return refuse(SendLimit::SessionRate, wait);
                }
            }
        }
        if msglog::accept(db, session, settings.daily_quota)?.is_err() {
            return refuse(SendLimit::DailyQuota, until_midnight());
        }
        if !interval.is_zero() {
            if recipients.len() >= PRUNE_AT {
                recipients.retain(|_, last| now.duration_since(*last) < interval);
            }
            recipients.insert(key, now);
        }
        Ok(())
    }

    /// The limits of `session` and their use now.
    ///
    /// # Errors
    /// [`ApiError::Internal`] when the day's count cannot be read.
    pub(crate) fn view(
        &self,
        settings: &SendLimitSettings,
        db: &ServerDb,
        session: &str,
    ) -> Result<LimitsView, ApiError> {
        let now = now_ms();
        let sent_today = msglog::day_stats(db, session, &day_of(now))?.accepted;
        let minute_remaining = NonZeroU32::new(settings.per_minute).map(|per_minute| {
            let last = self
                .rates
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(session)
                .and_then(|r| *r.last.lock().unwrap_or_else(PoisonError::into_inner));
            match last {
                None => per_minute.get(),
                Some((left, at)) => {
                    // One unit comes back every 60 s / per_minute (GCRA's emission interval).
                    let every = 60_000 / u128::from(per_minute.get()).max(1);
                    let back = at.elapsed().as_millis() / every.max(1);
                    let back = u32::try_from(back).unwrap_or(u32::MAX);
                    left.saturating_add(back).min(per_minute.get())
                }
            }
        });
        Ok(LimitsView {
            per_minute: NonZeroU32::new(settings.per_minute).map(NonZeroU32::get),
            minute_remaining,
            recipient_interval_ms: u64::try_from(settings.recipient_interval.as_millis())
                .unwrap_or(u64::MAX),
            daily_quota: settings.daily_quota,
            sent_today,
            daily_remaining: settings.daily_quota.map(|q| q.saturating_sub(sent_today)),
            day_resets_at: next_midnight(now),
        })
    }

    /// Drops the in-memory state of a deleted session.
    pub(crate) fn forget(&self, session: &str) {
        self.rates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(session);
        self.recipients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(s, _), _| s != session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_minute: u32, interval_ms: u64, quota: Option<u64>) -> SendLimitSettings {
        let mut s = SendLimitSettings::unlimited();
        s.per_minute = per_minute;
        s.recipient_interval = Duration::from_millis(interval_ms);
        s.daily_quota = quota;
        s
    }

    fn code(r: Result<(), ApiError>) -> Option<(&'static str, Duration)> {
        match r {
            Ok(()) => None,
            Err(ApiError::SendLimited { limit, retry_after }) => Some((limit.code(), retry_after)),
            Err(e) => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn the_rate_limit_admits_a_burst_then_refuses_with_a_wait() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = ServerDb::open(dir.path()).expect("db");
        let (limits, s) = (Limits::default(), settings(3, 0, None));
        for i in 0..3 {
            assert_eq!(code(limits.admit(&s, &db, "a", &format!("r{i}"))), None);
        }
        let (c, wait) = code(limits.admit(&s, &db, "a", "r9")).expect("refused");
        assert_eq!(c, "send_rate_limited");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert_eq!(code(limits.admit(&s, &db, "b", "r0")), None, "per session");
        let view = limits.view(&s, &db, "a").expect("view");
        assert_eq!(view.minute_remaining, Some(0));
        assert_eq!(view.sent_today, 3, "the refused send was not counted");
    }

    #[test]
    fn recipient_pacing_and_the_daily_quota_refuse_with_their_codes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = ServerDb::open(dir.path()).expect("db");
        let (limits, s) = (Limits::default(), settings(0, 60_000, Some(2)));
        assert_eq!(code(limits.admit(&s, &db, "a", "r1")), None);
        let (c, wait) = code(limits.admit(&s, &db, "a", "r1")).expect("paced");
        assert_eq!(c, "recipient_rate_limited");
        assert!(wait > Duration::from_secs(50));
        assert_eq!(code(limits.admit(&s, &db, "a", "r2")), None);
        let (c, wait) = code(limits.admit(&s, &db, "a", "r3")).expect("quota");
        assert_eq!(c, "daily_quota_exceeded");
        assert!(wait <= Duration::from_secs(86_400));
        let view = limits.view(&s, &db, "a").expect("view");
        assert_eq!((view.sent_today, view.daily_remaining), (2, Some(0)));
        // The quota is in the database: a new Limits (a restart) still refuses.
        let (c, _) = code(Limits::default().admit(&s, &db, "a", "r4")).expect("quota");
        assert_eq!(c, "daily_quota_exceeded");
    }
}
