//! Settings of the simulated server: the unix [`Clock`], QR ref timing ([`QrTiming`]) and
//! [`RouterConfig`]. Plain data; every other module may read it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::identity::ServerKeys;

/// Where unix timestamps come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Clock {
    /// The system clock (`SystemTime::now()`), in whole seconds.
    #[default]
    System,
    /// A fixed unix time in seconds, for byte-exact tests.
    Fixed(u64),
    /// The system clock plus this many seconds: what [`Clock::advanced`] makes of
    /// [`Clock::System`] (token expiry and timelock tests on a live sandbox).
    SystemPlus(u64),
}

impl Clock {
    /// The current unix time in seconds.
    pub fn unix_now(&self) -> u64 {
        match self {
            Self::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            Self::Fixed(t) => *t,
            Self::SystemPlus(offset) => Self::System.unix_now().saturating_add(*offset),
        }
    }

    /// This clock moved `secs` seconds forward: a fixed clock stays fixed at the later
    /// time, the system clock gets an offset.
    #[must_use]
    pub fn advanced(self, secs: u64) -> Self {
        match self {
            Self::System => Self::SystemPlus(secs),
            Self::Fixed(t) => Self::Fixed(t.saturating_add(secs)),
            Self::SystemPlus(o) => Self::SystemPlus(o.saturating_add(secs)),
        }
    }
}

/// QR ref timing: how long each `<ref>` of a `pair-device` IQ stays valid.
///
/// Real clients show the first ref for 60 s and each later one for 20 s, with 6 refs:
/// 160 s in all (shared/protocol/03 §4.4; whatsmeow qrchan.go, Baileys socket.ts). The
/// sandbox expires ref `i` at `first + i * each` after the IQ was sent and closes the
/// registration connection when the last one expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QrTiming {
    /// Number of refs in the `pair-device` IQ (whatsmeow assumes 6).
    pub refs: usize,
    /// Lifetime of the first ref (real: 60 s).
    pub first: Duration,
    /// Lifetime of each later ref (real: 20 s).
    pub each: Duration,
}

impl Default for QrTiming {
    fn default() -> Self {
        Self {
            refs: 6,
            first: Duration::from_secs(60),
            each: Duration::from_secs(20),
        }
    }
}

impl QrTiming {
    /// How long ref number `index` (0-based) stays valid after the IQ is sent.
    pub fn expiry_of(&self, index: usize) -> Duration {
        let later = u32::try_from(index).unwrap_or(u32::MAX);
        self.first.saturating_add(self.each.saturating_mul(later))
    }
}

/// Settings of a [`Router`](crate::Router).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RouterConfig {
    /// Seed for every random choice (keys, refs, ids). `None` draws one from the OS.
    pub seed: Option<u64>,
    /// QR ref timing.
    pub qr: QrTiming,
    /// Source of unix timestamps.
    pub clock: Clock,
    /// The `location` attribute of `<success>` (real servers send edge codes such as `frc`).
    pub location: String,
    /// Pause between the end of the handshake and the server's first stanza
    /// (`pair-device`, `<success>` or `<failure>`). Baileys 6.7.24 does not await its
    /// transport split and drops a stanza that arrives too soon; 50 ms was enough in 40
    /// runs (interop BAILEYS_NOTES §2). Default 100 ms; zero sends at once.
    pub first_stanza_delay: Duration,
    /// Pause between a verified `pair-device-sign` reply and `<stream:error code="515"/>`,
    /// drawn uniformly from `[min, max]` per pairing from the seeded RNG. The real server
    /// waits about 0.3-0.6 s (`../shared/protocol/03-pairing-login.md` §6, after Baileys
    /// issues #1218 and #1484); sending it at once exposed a race in whatsapp-rust (issue
    /// 11). Default 300..=600 ms; `(0, 0)` sends it at once. Nothing else is sent meanwhile.
    pub restart_delay: (Duration, Duration),
    /// After the post-pairing 515, how long the server leaves the socket open for the
    /// client to close it first, before closing it itself (default 500 ms; zero closes at
    /// once). whatsmeow (`connectionevents.go` handleStreamError, `client.go`
    /// handlerQueueLoop) drops a queued 515 when the socket's close arrives with it, and
    /// then, having marked the disconnect as expected after pair-success (`pair.go`), never
    /// reconnects; it pairs reliably against the real service, so the real server does not
    /// close together with the 515. `03-pairing-login.md` §6 only says the server
    /// "closes the socket" and the client reconnects.
    pub restart_close_grace: Duration,
    /// Explicit server keys and chain; `None` draws them from the seed.
    pub server_keys: Option<ServerKeys>,
    /// Whether the simulated phones onboard their companions after pairing: app-state sync
    /// key share, initial app-state patches (push name, contacts, NCT salt) and the initial
    /// history sync (shared/protocol/08 §11). Default `false`: the phone then sends its
    /// companions nothing unasked, which keeps every transcript and offline queue of the
    /// tests written before it the same. Per account:
    /// [`SyncSwitches::enabled`](crate::SyncSwitches::enabled).
    pub phone_sync: bool,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            seed: None,
            qr: QrTiming::default(),
            clock: Clock::System,
            location: "sim".to_owned(),
            first_stanza_delay: Duration::from_millis(100),
            restart_delay: (Duration::from_millis(300), Duration::from_millis(600)),
            restart_close_grace: Duration::from_millis(500),
            server_keys: None,
            phone_sync: false,
        }
    }
}
