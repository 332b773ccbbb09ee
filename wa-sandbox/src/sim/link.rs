//! Link conditions: latency, jitter, loss and reordering per direction, drawn from the
//! simulator's seeded RNG, plus targeted faults chosen by a test.

use std::time::Duration;

use rand::RngExt as _;
use rand::rngs::StdRng;

/// Which way a frame travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// From the client to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

/// How one direction of a link treats frames. The default is a perfect wire: no latency,
/// nothing lost, in order.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Conditions {
    /// Fixed one-way delay of every frame.
    pub latency: Duration,
    /// Extra delay drawn uniformly from `0..=jitter` per frame. Frames stay in order (the
    /// socket is TCP) unless [`reorder`](Self::reorder) says otherwise.
    pub jitter: Duration,
    /// Probability (0.0..=1.0) that a frame is lost.
    pub loss: f64,
    /// Probability (0.0..=1.0) that a frame is held back and delivered right after the next
    /// frame of the same direction (or on its own after
    /// [`REORDER_WINDOW`](super::REORDER_WINDOW)).
    pub reorder: f64,
}

impl Conditions {
    /// A wire with a fixed one-way `latency`.
    pub fn latency(latency: Duration) -> Self {
        Self {
            latency,
            ..Self::default()
        }
    }

    /// Adds jitter (see [`Self::jitter`]).
    #[must_use]
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the loss probability (0.0..=1.0).
    #[must_use]
    pub fn with_loss(mut self, loss: f64) -> Self {
        self.loss = loss;
        self
    }

    /// Sets the reordering probability (0.0..=1.0).
    #[must_use]
    pub fn with_reorder(mut self, reorder: f64) -> Self {
        self.reorder = reorder;
        self
    }
}

/// A frame as a targeted fault sees it.
#[derive(Debug, Clone, Copy)]
pub struct FrameInfo<'a> {
    /// The link it travels on.
    pub link: usize,
    /// Its direction.
    pub direction: Direction,
    /// Its number within this link and direction, from 0 (the ClientHello is frame 0 to
    /// the server).
    pub index: u64,
    /// Simulated time since the simulation started.
    pub at: Duration,
    /// The bytes (one Noise frame, 3-byte length prefix included; the first client frame
    /// also carries the connection header).
    pub bytes: &'a [u8],
}

/// What happens to one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verdict {
    /// Delivered after the link's latency (and jitter).
    Deliver,
    /// Lost.
    Drop,
    /// Delivered after this much extra delay, on top of latency and jitter; it may overtake
    /// nothing (later frames wait for it) unless it was also reordered.
    Delay(Duration),
    /// Held back and delivered right after the next frame of the same direction (or on its
    /// own after [`REORDER_WINDOW`](super::REORDER_WINDOW)).
    Reorder,
}

/// A targeted fault: decides a frame's [`Verdict`] before the random conditions apply
/// (only [`Verdict::Deliver`] lets them apply).
pub type Filter = Box<dyn FnMut(&FrameInfo<'_>) -> Verdict>;

/// One direction of a link.
#[derive(Default)]
pub(crate) struct Wire {
    pub(crate) conditions: Conditions,
    pub(crate) filter: Option<Filter>,
    /// Frames put on this wire so far.
    pub(crate) sent: u64,
    /// Arrival of the last frame scheduled in order (frames do not overtake each other).
    pub(crate) last_arrival: Option<std::time::Instant>,
}

impl Wire {
    /// The verdict for the next frame, and its total delay if delivered.
    pub(crate) fn judge(&mut self, rng: &mut StdRng, info: &FrameInfo<'_>) -> (Verdict, Duration) {
        let targeted = self.filter.as_mut().map_or(Verdict::Deliver, |f| f(info));
        let c = &self.conditions;
        // Draw every random number for every frame, whatever the outcome, so that one
        // frame's fate does not shift the draws of the others.
        let lost = c.loss > 0.0 && rng.random_bool(c.loss.clamp(0.0, 1.0));
        let reordered = c.reorder > 0.0 && rng.random_bool(c.reorder.clamp(0.0, 1.0));
        let jitter = if c.jitter.is_zero() {
            Duration::ZERO
        } else {
            let nanos = u64::try_from(c.jitter.as_nanos()).unwrap_or(u64::MAX);
            Duration::from_nanos(rng.random_range(0..=nanos))
        };
        let delay = c.latency + jitter;
        match targeted {
            Verdict::Deliver if lost => (Verdict::Drop, delay),
            Verdict::Deliver if reordered => (Verdict::Reorder, delay),
            Verdict::Delay(extra) => (Verdict::Delay(extra), delay + extra),
            v => (v, delay),
        }
    }
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wire")
            .field("conditions", &self.conditions)
            .field("filter", &self.filter.is_some())
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}
