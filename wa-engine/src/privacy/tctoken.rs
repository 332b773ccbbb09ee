//! Trusted-contact token (tctoken) timing: bucket expiry and when to issue our own token
//! again (shared/protocol/07 §2.6; whatsmeow `tctoken.go` currentTCTokenCutoffTimestamp,
//! isTCTokenExpired, shouldSendNewTCToken; Baileys `src/Utils/tc-token-utils.ts`;
//! whatsapp-rust `wacore/src/iq/tctoken.rs` expiration_cutoff_at, should_send_new_tc_token_at).
//!
//! All times are unix seconds, passed in by the caller (no clock here).

/// Bucket duration and count of one token mode (receiver or sender).
///
/// Buckets count from the Unix epoch, so every boundary of the default 7-day bucket falls
/// on a Thursday 00:00:00 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketConfig {
    /// Bucket length, seconds (AB prop `tctoken_duration` 865 / `tctoken_duration_sender` 996).
    pub duration: u64,
    /// Buckets a token stays valid (AB prop `tctoken_num_buckets` 909 /
    /// `tctoken_num_buckets_sender` 997).
    pub num_buckets: u64,
}

impl BucketConfig {
    /// WA Web's defaults, hard-coded by whatsmeow and Baileys: 7-day buckets, 4 of them.
    pub const DEFAULT: Self = Self {
        duration: 604_800,
        num_buckets: 4,
    };

    /// The most a bucket may last, seconds: 180 days (whatsapp-rust's clamp).
    pub const MAX_DURATION: u64 = 15_552_000;

    /// From AB prop values, clamped as whatsapp-rust does: `duration` to
    /// `1..=`[`Self::MAX_DURATION`], `num_buckets` to at least 1. (whatsapp-rust PR #473
    /// reports that the real server sends `num_buckets = 26`.)
    #[must_use]
    pub fn new(duration: u64, num_buckets: u64) -> Self {
        Self {
            duration: duration.clamp(1, Self::MAX_DURATION),
            num_buckets: num_buckets.max(1),
        }
    }

    fn duration(self) -> u64 {
        self.duration.max(1)
    }

    /// `floor(ts / duration)`.
    #[must_use]
    pub fn bucket(self, ts: u64) -> u64 {
        ts / self.duration()
    }
}

impl Default for BucketConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The oldest token timestamp still valid at `now`:
/// `(floor(now / D) − (N − 1)) · D`, saturating at 0.
#[must_use]
pub fn expiration_cutoff(now: u64, config: BucketConfig) -> u64 {
    config
        .bucket(now)
        .saturating_sub(config.num_buckets.max(1) - 1)
        .saturating_mul(config.duration())
}

/// Whether a token issued at `token_timestamp` is expired at `now`: missing or 0, or before
/// the cutoff. A timestamp equal to the cutoff is still valid.
#[must_use]
pub fn is_expired(token_timestamp: Option<u64>, now: u64, config: BucketConfig) -> bool {
    match token_timestamp {
        None | Some(0) => true,
        Some(ts) => ts < expiration_cutoff(now, config),
    }
}

/// Whether to issue our token to a peer again after a 1:1 send: never issued
/// (`sender_timestamp` = `None`), or `now` is in a later sender bucket than the last issue.
/// A clock that went backwards never re-issues.
#[must_use]
pub fn should_issue(sender_timestamp: Option<u64>, now: u64, sender_config: BucketConfig) -> bool {
    match sender_timestamp {
        None => true,
        Some(ts) => sender_config.bucket(now) > sender_config.bucket(ts),
    }
}
