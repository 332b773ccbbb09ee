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
    /// Which connection of this link this is (0 first; [`Sim::replace`] increments it).
    /// Frames in flight from an earlier connection are discarded.
    epoch: u32,
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
            .field("epoch", &self.epoch)
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
    epoch: u32,
    direction: Direction,
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
            epoch: 0,
        });
        self.links.len() - 1
    }

    /// Puts a new connection on an existing link (a reconnect): frames of the old one still
    /// in flight are discarded, conditions and filters stay. Returns the old endpoints.
    pub fn replace(&mut self, link: LinkId, client: C, server: S) -> (C, S) {
        let l = &mut self.links[link];
        l.epoch += 1;
        l.down = false;
        l.closing = false;
        l.to_server.held = None;
        l.to_client.held = None;
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

    /// Closes `link`'s socket from outside (a network cut): frames in flight are lost, the
    /// server is told at once, the client endpoint simply hears nothing more (its driver
    /// would report the lost socket).
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
            guard.check(self.now);
            if let Some(due) = self.next_timeout()
                && due <= self.now
            {
                self.fire_due();
                continue;
            }
            if let Some(i) = self.earliest_in_flight() {
                let arrival = self.in_flight[i].arrival;
                if let Some(due) = self.next_timeout()
                    && due < arrival
                {
                    self.now = self.now.max(due);
                    self.fire_due();
                    continue;
                }
                self.now = self.now.max(arrival);
                let frame = self.in_flight.remove(i);
                self.deliver(frame);
                continue;
            }
            if self.release_held() {
                continue;
            }
            break;
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

    /// Lets `duration` of simulated time pass: frames move and timers fire as they come due.
    pub fn advance(&mut self, duration: Duration) {
        let target = self.now + duration;
        loop {
            self.drive();
            match self.next_timeout() {
                Some(due) if due <= target => {
                    self.now = self.now.max(due);
                    self.fire_due();
                }
                _ => break,
            }
        }
        self.now = self.now.max(target);
    }

    /// Lets simulated time pass, timer by timer, until `done` holds; gives up (returns
    /// `false`) once `limit` of simulated time has passed or nothing is left to happen.
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
                let epoch = l.epoch;
                let arrival = self.arrival_after_last(id, direction);
                self.seq += 1;
                self.in_flight.push(InFlight {
                    arrival,
                    seq: self.seq,
                    link: id,
                    epoch,
                    direction,
                    cargo: Cargo::Close,
                });
            }
        }
    }

    fn arrival_after_last(&mut self, link: LinkId, direction: Direction) -> Instant {
        let now = self.now;
        let wire = self.links[link].wire(direction);
        let arrival = (now + wire.conditions.latency).max(wire.last_arrival.unwrap_or(now));
        wire.last_arrival = Some(arrival);
        arrival
    }

    /// One frame leaves an endpoint: judged, recorded, scheduled.
    fn send(&mut self, link: LinkId, direction: Direction, bytes: Bytes) {
        let now = self.now;
        let at = self.elapsed();
        let l = &mut self.links[link];
        let epoch = l.epoch;
        let wire = l.wire(direction);
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
        match verdict {
            Verdict::Drop => {}
            Verdict::Reorder if wire.held.is_none() => wire.held = Some(bytes),
            _ => {
                // In order behind earlier frames (TCP), unless this one overtakes a held one.
                let arrival = (now + delay).max(wire.last_arrival.unwrap_or(now));
                wire.last_arrival = Some(arrival);
                let held = wire.held.take();
                for cargo in std::iter::once(bytes).chain(held) {
                    self.seq += 1;
                    self.in_flight.push(InFlight {
                        arrival,
                        seq: self.seq,
                        link,
                        epoch,
                        direction,
                        cargo: Cargo::Frame(cargo),
                    });
                }
            }
        }
    }

    /// A held frame with nothing behind it to overtake it goes out as it is.
    fn release_held(&mut self) -> bool {
        let now = self.now;
        for id in 0..self.links.len() {
            let epoch = self.links[id].epoch;
            for direction in [Direction::ToServer, Direction::ToClient] {
                let wire = self.links[id].wire(direction);
                if let Some(bytes) = wire.held.take() {
                    let arrival =
                        (now + wire.conditions.latency).max(wire.last_arrival.unwrap_or(now));
                    wire.last_arrival = Some(arrival);
                    self.seq += 1;
                    self.in_flight.push(InFlight {
                        arrival,
                        seq: self.seq,
                        link: id,
                        epoch,
                        direction,
                        cargo: Cargo::Frame(bytes),
                    });
                    return true;
                }
            }
        }
        false
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
        if l.down || l.epoch != frame.epoch {
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
