//! A deterministic test kit: sans-IO endpoints wired back to back in memory, on simulated
//! time, with seeded link conditions. No tokio, no sockets, no clock.
//!
//! The model is quinn's `Pair` (quinn-proto/src/tests/util.rs): a [`Sim`] owns both ends of
//! one or more links and one simulated clock. [`Sim::drive`] moves frames until no frame is
//! in flight; [`Sim::fire_timer`] jumps to the earliest timeout of any endpoint;
//! [`Sim::advance`] and [`Sim::run_until`] let simulated time pass. Frames can be delayed,
//! lost and reordered per direction ([`Conditions`], drawn from the simulation's seed) or by
//! a test's own rule ([`Filter`]). Every frame both ways goes into a [`Transcript`], so a
//! test can check that the same seed gives the same bytes.
//!
//! What plugs in is anything that implements [`Endpoint`]: wa-engine's client
//! `Connection`, the sandbox's server session (as [`Session`]), or a test's scripted peer.
//! [`Devices`] runs engine devices against one [`Router`](crate::Router): pairing,
//! reconnects after a close (515), messaging between devices.
//!
//! Time: a simulation starts at one `Instant` taken when it is built; after that only
//! durations are added to it, so nothing depends on the wall clock.
//!
//! ```
//! use std::time::Duration;
//! use wa_sandbox::sim::{Conditions, Devices};
//!
//! let mut world = Devices::new(7);
//! world.router().create_account("15551234567").unwrap();
//! let alice = world.add_device("15551234567");
//! world.sim.set_conditions(alice, Conditions::latency(Duration::from_millis(40)));
//! world.pair(alice);
//! assert!(world.conn(alice).is_logged_in());
//! ```

mod devices;
mod endpoint;
mod link;
mod transcript;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng as _;
use rand::rngs::StdRng;

pub use devices::{Device, Devices, UNIX_START};
pub use endpoint::{Endpoint, Session};
pub use link::{Conditions, Direction, Filter, FrameInfo, Verdict};
pub use transcript::{Record, Transcript};

use link::Wire;

/// The index of a link in its [`Sim`], from 0 in the order they were added.
pub type LinkId = usize;

/// How many steps may run at one simulated instant before the simulator gives up: an
/// endpoint whose timeout stays due after `handle_timeout` would otherwise spin forever.
const MAX_STEPS_AT_ONE_INSTANT: u32 = 100_000;

/// How long a frame held back for reordering waits for a later frame to overtake it before
/// it goes out on its own (on top of its delay).
pub const REORDER_WINDOW: Duration = Duration::from_millis(100);

/// Both ends of one simulated connection, and what they reported.
pub struct Link<C: Endpoint, S: Endpoint> {
    /// The client end.
    pub client: C,
    /// The server end.
    pub server: S,
    /// Events the client reported, oldest first.
    pub client_events: VecDeque<C::Event>,
    /// Events the server reported, oldest first.
    pub server_events: VecDeque<S::Event>,
    to_server: Wire,
    to_client: Wire,
    /// The socket is closed (both ends were told).
    down: bool,
    /// A close is on its way to the peer (after the frames in flight).
    closing: bool,
}

impl<C: Endpoint, S: Endpoint> Link<C, S> {
    /// Whether the socket is closed.
    pub fn is_down(&self) -> bool {
        self.down
    }

    /// How many frames were put on this link's wire in `direction` so far (the next one's
    /// [`FrameInfo::index`]).
    pub fn frames_sent(&self, direction: Direction) -> u64 {
        match direction {
            Direction::ToServer => self.to_server.sent,
            Direction::ToClient => self.to_client.sent,
        }
    }

    /// Takes the client's events.
    pub fn take_client_events(&mut self) -> Vec<C::Event> {
        self.client_events.drain(..).collect()
    }

    /// Takes the server's events.
    pub fn take_server_events(&mut self) -> Vec<S::Event> {
        self.server_events.drain(..).collect()
    }

    fn wire(&mut self, direction: Direction) -> &mut Wire {
        match direction {
            Direction::ToServer => &mut self.to_server,
            Direction::ToClient => &mut self.to_client,
        }
    }
}

impl<C: Endpoint, S: Endpoint> std::fmt::Debug for Link<C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("to_server", &self.to_server)
            .field("to_client", &self.to_client)
            .field("down", &self.down)
            .finish_non_exhaustive()
    }
}

/// What travels on a wire.
#[derive(Debug)]
enum Cargo {
    Frame(Bytes),
    /// The sender closed the socket after its last frame.
    Close,
}

#[derive(Debug)]
struct InFlight {
    arrival: Instant,
    seq: u64,
    link: LinkId,
    direction: Direction,
    /// Held back for reordering: the next frame of the same direction overtakes it.
    held: bool,
    cargo: Cargo,
}

/// Links of sans-IO endpoints on one simulated clock. See the module docs.
pub struct Sim<C: Endpoint, S: Endpoint> {
    now: Instant,
    start: Instant,
    rng: StdRng,
    seq: u64,
    links: Vec<Link<C, S>>,
    in_flight: Vec<InFlight>,
    transcript: Transcript,
}

impl<C: Endpoint, S: Endpoint> std::fmt::Debug for Sim<C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("elapsed", &self.elapsed())
            .field("links", &self.links)
            .field("in_flight", &self.in_flight.len())
            .field("frames", &self.transcript.len())
            .finish_non_exhaustive()
    }
}

impl<C: Endpoint, S: Endpoint> Sim<C, S> {
    /// An empty simulation starting at `start`, whose link conditions draw from `seed`.
    pub fn new(start: Instant, seed: u64) -> Self {
        Self {
            now: start,
            start,
            rng: StdRng::seed_from_u64(seed),
            seq: 0,
            links: Vec::new(),
            in_flight: Vec::new(),
            transcript: Transcript::default(),
        }
    }

    /// A simulation of one link (id 0) between `client` and `server`, both created at
    /// `start`, on perfect wires. Moves the frames queued at creation (e.g. ClientHello).
    pub fn pair(start: Instant, seed: u64, client: C, server: S) -> Self {
        let mut sim = Self::new(start, seed);
        sim.connect(client, server);
        sim.drive();
        sim
    }

    /// Adds a link between two endpoints created at [`now`](Self::now), on perfect wires.
    /// Nothing moves until the next [`drive`](Self::drive).
    pub fn connect(&mut self, client: C, server: S) -> LinkId {
        self.links.push(Link {
            client,
            server,
            client_events: VecDeque::new(),
            server_events: VecDeque::new(),
            to_server: Wire::default(),
            to_client: Wire::default(),
            down: false,
            closing: false,
        });
        self.links.len() - 1
    }

    /// Puts a new connection on an existing link (a reconnect): frames of the old one still
    /// in flight are discarded, conditions and filters stay, frame numbers go on. Returns the
    /// old endpoints.
    pub fn replace(&mut self, link: LinkId, client: C, server: S) -> (C, S) {
        self.in_flight.retain(|f| f.link != link);
        let l = &mut self.links[link];
        l.down = false;
        l.closing = false;
        l.to_server.last_arrival = None;
        l.to_client.last_arrival = None;
        l.client_events.clear();
        l.server_events.clear();
        let old_client = std::mem::replace(&mut l.client, client);
        let old_server = std::mem::replace(&mut l.server, server);
        (old_client, old_server)
    }

    /// The current simulated instant.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Simulated time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Every frame sent so far.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// The links.
    pub fn links(&self) -> &[Link<C, S>] {
        &self.links
    }

    /// One link. Panics on an unknown id (a test bug).
    pub fn link(&self, link: LinkId) -> &Link<C, S> {
        &self.links[link]
    }

    /// One link, mutably. Panics on an unknown id (a test bug).
    pub fn link_mut(&mut self, link: LinkId) -> &mut Link<C, S> {
        &mut self.links[link]
    }

    /// The client of link 0 (for one-link simulations).
    pub fn client(&self) -> &C {
        &self.links[0].client
    }

    /// The client of link 0, mutably.
    pub fn client_mut(&mut self) -> &mut C {
        &mut self.links[0].client
    }

    /// The server of link 0.
    pub fn server(&self) -> &S {
        &self.links[0].server
    }

    /// The server of link 0, mutably.
    pub fn server_mut(&mut self) -> &mut S {
        &mut self.links[0].server
    }

    /// Sets both directions of `link` to `conditions`.
    pub fn set_conditions(&mut self, link: LinkId, conditions: Conditions) {
        self.links[link].to_server.conditions = conditions.clone();
        self.links[link].to_client.conditions = conditions;
    }

    /// Sets one direction of `link` to `conditions`.
    pub fn set_direction_conditions(
        &mut self,
        link: LinkId,
        direction: Direction,
        conditions: Conditions,
    ) {
        self.links[link].wire(direction).conditions = conditions;
    }

    /// Installs a targeted fault on one direction of `link` (replacing any earlier one);
    /// `None` removes it.
    pub fn set_filter(&mut self, link: LinkId, direction: Direction, filter: Option<Filter>) {
        self.links[link].wire(direction).filter = filter;
    }

    /// Closes `link`'s socket from outside (a network cut): frames in flight are lost and
    /// both ends are told at once (`handle_peer_closed`; the engine's `Connection` ignores
    /// it, as its driver would report the lost socket).
    pub fn cut(&mut self, link: LinkId) {
        let now = self.now;
        self.in_flight.retain(|f| f.link != link);
        let l = &mut self.links[link];
        if !l.down {
            l.down = true;
            l.server.handle_peer_closed(now);
            l.client.handle_peer_closed(now);
        }
    }

    /// Moves frames both ways until none is in flight, firing the timers that come due
    /// meanwhile (with latency, time advances to each frame's arrival). Timers due later are
    /// left alone.
    pub fn drive(&mut self) {
        let mut guard = Guard::new(self.now);
        loop {
            self.flush();
            let overdue = self.next_timeout().is_some_and(|t| t <= self.now);
            if self.in_flight.is_empty() && !overdue {
                return;
            }
            self.step(None);
            guard.check(self.now);
        }
    }

    /// Jumps to the earliest timeout of any endpoint, fires it, then drives. Returns how
    /// long simulated time moved. Panics when no endpoint has a timer (a test bug).
    pub fn fire_timer(&mut self) -> Duration {
        self.drive();
        let before = self.now;
        let due = self
            .next_timeout()
            .expect("fire_timer: no endpoint has a timer armed");
        self.now = self.now.max(due);
        self.fire_due();
        self.drive();
        self.now - before
    }

    /// Lets `duration` of simulated time pass: frames arrive and timers fire as they come
    /// due; frames that arrive later stay in flight.
    pub fn advance(&mut self, duration: Duration) {
        let target = self.now + duration;
        let mut guard = Guard::new(self.now);
        while self.step(Some(target)) {
            guard.check(self.now);
        }
        self.now = self.now.max(target);
    }

    /// Lets simulated time pass, timer by timer, until `done` holds; gives up (returns
    /// `false`) once `limit` of simulated time has passed or nothing is left to happen.
    /// `done` is checked whenever no frame is in flight.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        let deadline = self.now + limit;
        loop {
            self.drive();
            if done(self) {
                return true;
            }
            match self.next_timeout() {
                Some(due) if due <= deadline => {
                    self.now = self.now.max(due);
                    self.fire_due();
                }
                _ => return false,
            }
        }
    }

    // -------------------------------------------------------------------------------------

    /// Does the earliest pending thing, a due timer or a frame's arrival, if it happens no
    /// later than `limit`. Overdue timers go first; then whichever is earlier, the frame on
    /// a tie. Returns whether something was done.
    fn step(&mut self, limit: Option<Instant>) -> bool {
        self.flush();
        let timer = self.next_timeout();
        let frame = self.earliest_in_flight();
        let arrival = frame.map(|i| self.in_flight[i].arrival);
        let at = match (timer, arrival) {
            (Some(t), Some(a)) if t <= self.now || t < a => Some((t, None)),
            (_, Some(a)) => Some((a, frame)),
            (Some(t), None) => Some((t, None)),
            (None, None) => None,
        };
        let Some((at, frame)) = at else {
            return false;
        };
        if limit.is_some_and(|l| at > l) {
            return false;
        }
        self.now = self.now.max(at);
        match frame {
            Some(i) => {
                let f = self.in_flight.remove(i);
                self.deliver(f);
            }
            None => self.fire_due(),
        }
        true
    }

    /// The earliest timeout of any endpoint on a live link.
    fn next_timeout(&self) -> Option<Instant> {
        self.links
            .iter()
            .filter(|l| !l.down)
            .flat_map(|l| [l.client.poll_timeout(), l.server.poll_timeout()])
            .flatten()
            .min()
    }

    /// Fires every timeout due at `now`, link by link, client first.
    fn fire_due(&mut self) {
        let now = self.now;
        for l in self.links.iter_mut().filter(|l| !l.down) {
            if l.client.poll_timeout().is_some_and(|t| t <= now) {
                l.client.handle_timeout(now);
            }
            if l.server.poll_timeout().is_some_and(|t| t <= now) {
                l.server.handle_timeout(now);
            }
        }
        self.flush();
    }

    /// Drains every endpoint's transmits onto the wires and its events into the link, and
    /// closes the sockets of closed endpoints.
    fn flush(&mut self) {
        for id in 0..self.links.len() {
            if !self.links[id].down {
                while let Some(bytes) = self.links[id].client.poll_transmit() {
                    self.send(id, Direction::ToServer, bytes);
                }
                while let Some(bytes) = self.links[id].server.poll_transmit() {
                    self.send(id, Direction::ToClient, bytes);
                }
            }
            let l = &mut self.links[id];
            while let Some(e) = l.client.poll_event() {
                l.client_events.push_back(e);
            }
            while let Some(e) = l.server.poll_event() {
                l.server_events.push_back(e);
            }
            if l.down || l.closing {
                continue;
            }
            let closer = if l.client.is_closed() {
                Some(Direction::ToServer)
            } else if l.server.is_closed() {
                Some(Direction::ToClient)
            } else {
                None
            };
            if let Some(direction) = closer {
                // The driver closes the socket after the last frame it wrote.
                l.closing = true;
                let now = self.now;
                let wire = l.wire(direction);
                let arrival = (now + wire.conditions.latency).max(wire.last_arrival.unwrap_or(now));
                wire.last_arrival = Some(arrival);
                self.schedule(id, direction, arrival, false, Cargo::Close);
            }
        }
    }

    fn schedule(
        &mut self,
        link: LinkId,
        direction: Direction,
        arrival: Instant,
        held: bool,
        cargo: Cargo,
    ) {
        self.seq += 1;
        self.in_flight.push(InFlight {
            arrival,
            seq: self.seq,
            link,
            direction,
            held,
            cargo,
        });
    }

    /// One frame leaves an endpoint: judged, recorded, scheduled.
    fn send(&mut self, link: LinkId, direction: Direction, bytes: Bytes) {
        let now = self.now;
        let at = self.elapsed();
        let wire = self.links[link].wire(direction);
        let info = FrameInfo {
            link,
            direction,
            index: wire.sent,
            at,
            bytes: &bytes,
        };
        let (verdict, delay) = wire.judge(&mut self.rng, &info);
        wire.sent += 1;
        self.transcript.push(Record {
            at,
            link,
            direction,
            verdict,
            bytes: bytes.clone(),
        });
        let floor = wire.last_arrival.unwrap_or(now);
        match verdict {
            Verdict::Drop => {}
            Verdict::Reorder => {
                // Out of the in-order queue: later frames do not wait for it.
                let arrival = (now + delay).max(floor) + REORDER_WINDOW;
                self.schedule(link, direction, arrival, true, Cargo::Frame(bytes));
            }
            Verdict::Deliver | Verdict::Delay(_) => {
                // In order behind earlier frames (one TCP stream).
                let arrival = (now + delay).max(floor);
                wire.last_arrival = Some(arrival);
                self.schedule(link, direction, arrival, false, Cargo::Frame(bytes));
                // A frame held back for reordering goes right behind this one.
                let mut seq = self.seq;
                for f in &mut self.in_flight {
                    if f.held && f.link == link && f.direction == direction {
                        seq += 1;
                        f.held = false;
                        f.arrival = arrival;
                        f.seq = seq;
                    }
                }
                self.seq = seq;
            }
        }
    }

    fn earliest_in_flight(&self) -> Option<usize> {
        self.in_flight
            .iter()
            .enumerate()
            .min_by_key(|(_, f)| (f.arrival, f.seq))
            .map(|(i, _)| i)
    }

    fn deliver(&mut self, frame: InFlight) {
        let now = self.now;
        let l = &mut self.links[frame.link];
        if l.down {
            return;
        }
        match (frame.cargo, frame.direction) {
            (Cargo::Frame(bytes), Direction::ToServer) => l.server.handle_input(now, &bytes),
            (Cargo::Frame(bytes), Direction::ToClient) => l.client.handle_input(now, &bytes),
            (Cargo::Close, direction) => {
                l.down = true;
                match direction {
                    Direction::ToServer => l.server.handle_peer_closed(now),
                    Direction::ToClient => l.client.handle_peer_closed(now),
                }
                // The closer's socket is gone too: what was still coming to it is lost.
                self.in_flight.retain(|f| f.link != frame.link);
            }
        }
        self.flush();
    }
}

/// Catches endpoints that keep asking for work at one instant.
struct Guard {
    at: Instant,
    steps: u32,
}

impl Guard {
    fn new(at: Instant) -> Self {
        Self { at, steps: 0 }
    }

    fn check(&mut self, now: Instant) {
        if now == self.at {
            self.steps += 1;
            assert!(
                self.steps < MAX_STEPS_AT_ONE_INSTANT,
                "simulation livelock: {MAX_STEPS_AT_ONE_INSTANT} steps without time passing"
            );
        } else {
            self.at = now;
            self.steps = 0;
        }
    }
}
