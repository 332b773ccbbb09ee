//! The test kit itself (`wa_sandbox::sim`): simulated time, link conditions, targeted
//! faults, socket close and the transcript, with toy endpoints whose behaviour is obvious.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use wa_sandbox::sim::{Conditions, Direction, Endpoint, Sim, Verdict};

/// Sends what it is told to, records what arrives (and when), has at most one timer, and
/// closes when told to.
#[derive(Default)]
struct Toy {
    out: VecDeque<Bytes>,
    got: Vec<(Instant, Vec<u8>)>,
    timer: Option<Instant>,
    fired: Vec<Instant>,
    closed: bool,
    peer_closed: Option<Instant>,
    /// Answer every frame with the same bytes (an echo server).
    echo: bool,
}

impl Toy {
    fn echo() -> Self {
        Self {
            echo: true,
            ..Self::default()
        }
    }

    fn say(&mut self, bytes: &'static [u8]) {
        self.out.push_back(Bytes::from_static(bytes));
    }

    fn got(&self) -> Vec<Vec<u8>> {
        self.got.iter().map(|(_, b)| b.clone()).collect()
    }
}

impl Endpoint for Toy {
    type Event = Vec<u8>;

    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.got.push((now, data.to_vec()));
        if self.echo {
            self.out.push_back(Bytes::copy_from_slice(data));
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.timer.is_some_and(|t| t <= now) {
            self.timer = None;
            self.fired.push(now);
            self.say(b"tick");
        }
    }

    fn handle_peer_closed(&mut self, now: Instant) {
        self.peer_closed = Some(now);
    }

    fn poll_transmit(&mut self) -> Option<Bytes> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.timer
    }

    fn is_closed(&self) -> bool {
        self.closed
    }
}

fn sim() -> (Sim<Toy, Toy>, Instant) {
    let start = Instant::now();
    let mut sim = Sim::new(start, 5);
    sim.connect(Toy::default(), Toy::echo());
    (sim, start)
}

#[test]
fn latency_delays_each_way_and_drive_waits_for_the_frames_in_flight() {
    let (mut sim, start) = sim();
    sim.set_direction_conditions(0, Direction::ToServer, Conditions::latency(ms(30)));
    sim.set_direction_conditions(0, Direction::ToClient, Conditions::latency(ms(50)));
    sim.client_mut().say(b"ping");
    sim.drive();
    assert_eq!(sim.server().got[0].0 - start, ms(30));
    assert_eq!(sim.client().got[0].0 - start, ms(80));
    assert_eq!(sim.client().got(), [b"ping".to_vec()]);
    assert_eq!(sim.elapsed(), ms(80));
}

#[test]
fn fire_timer_jumps_to_the_earliest_timeout_of_either_side() {
    let (mut sim, start) = sim();
    sim.client_mut().timer = Some(start + Duration::from_secs(20));
    sim.server_mut().timer = Some(start + Duration::from_secs(7));
    assert_eq!(sim.fire_timer(), Duration::from_secs(7));
    assert_eq!(sim.server().fired, [start + Duration::from_secs(7)]);
    assert_eq!(sim.client().got(), [b"tick".to_vec()]);
    assert_eq!(sim.fire_timer(), Duration::from_secs(13));
    assert_eq!(sim.client().fired, [start + Duration::from_secs(20)]);
    // `drive` leaves future timers alone; `advance` fires those that come due.
    sim.client_mut().timer = Some(start + Duration::from_secs(25));
    sim.drive();
    assert_eq!(sim.client().fired.len(), 1);
    sim.advance(Duration::from_secs(10));
    assert_eq!(sim.client().fired.len(), 2);
    assert_eq!(sim.elapsed(), Duration::from_secs(30));
}

#[test]
fn a_filter_drops_delays_and_reorders_chosen_frames() {
    let (mut sim, start) = sim();
    sim.set_filter(
        0,
        Direction::ToServer,
        Some(Box::new(|f| match f.index {
            1 => Verdict::Drop,
            2 => Verdict::Reorder,
            4 => Verdict::Delay(ms(100)),
            _ => Verdict::Deliver,
        })),
    );
    for b in [&b"0"[..], b"1", b"2", b"3", b"4", b"5"] {
        sim.client_mut().say(b);
    }
    sim.drive();
    let got = sim.server().got();
    assert_eq!(
        got,
        [
            b"0".to_vec(),
            b"3".into(),
            b"2".into(),
            b"4".into(),
            b"5".into()
        ]
    );
    // The delayed frame holds back the ones behind it (one socket, in order).
    let at: Vec<Duration> = sim.server().got.iter().map(|(t, _)| *t - start).collect();
    assert_eq!(at, [ms(0), ms(0), ms(0), ms(100), ms(100)]);
    let verdicts: Vec<Verdict> = sim
        .transcript()
        .records()
        .iter()
        .filter(|r| r.direction == Direction::ToServer)
        .map(|r| r.verdict)
        .collect();
    assert_eq!(
        verdicts,
        [
            Verdict::Deliver,
            Verdict::Drop,
            Verdict::Reorder,
            Verdict::Deliver,
            Verdict::Delay(ms(100)),
            Verdict::Deliver
        ]
    );
}

#[test]
fn a_held_frame_with_nothing_behind_it_still_arrives() {
    let (mut sim, _) = sim();
    sim.set_filter(0, Direction::ToServer, Some(Box::new(|_| Verdict::Reorder)));
    sim.client_mut().say(b"only");
    sim.drive();
    assert_eq!(sim.server().got(), [b"only".to_vec()]);
}

/// 200 frames through a lossy, reordering, jittery link; returns what arrived and the digest.
fn lossy(seed: u64) -> (Vec<Vec<u8>>, [u8; 32]) {
    let start = Instant::now();
    let mut sim = Sim::new(start, seed);
    sim.connect(Toy::default(), Toy::default());
    sim.set_conditions(
        0,
        Conditions::latency(ms(20))
            .with_jitter(ms(15))
            .with_loss(0.1)
            .with_reorder(0.1),
    );
    for i in 0..200u8 {
        sim.client_mut().out.push_back(Bytes::from(vec![i]));
        sim.advance(ms(1));
    }
    sim.drive();
    (sim.server().got(), sim.transcript().digest())
}

#[test]
fn random_conditions_follow_the_seed() {
    let (a, da) = lossy(1);
    let (b, db) = lossy(1);
    let (c, dc) = lossy(2);
    assert_eq!(a, b);
    assert_eq!(da, db);
    assert_ne!(da, dc);
    assert_ne!(a, c);
    assert!(
        a.len() < 200 && a.len() > 150,
        "about 10 % lost: {}",
        a.len()
    );
    let mut sorted = a.clone();
    sorted.sort();
    assert_ne!(a, sorted, "some frames overtook others");
}

#[test]
fn a_closed_endpoint_closes_the_socket_after_its_last_frame() {
    let (mut sim, start) = sim();
    sim.set_conditions(0, Conditions::latency(ms(10)));
    sim.server_mut().say(b"bye");
    sim.server_mut().closed = true;
    sim.drive();
    assert_eq!(sim.client().got(), [b"bye".to_vec()]);
    assert_eq!(sim.client().peer_closed, Some(start + ms(10)));
    assert!(sim.link(0).is_down());
    // Nothing moves on a closed link.
    sim.client_mut().say(b"late");
    sim.client_mut().timer = Some(start + ms(20));
    sim.advance(Duration::from_secs(1));
    assert!(sim.server().got.is_empty());
    assert!(sim.client().fired.is_empty());
}

#[test]
fn replace_starts_a_new_connection_on_the_same_link() {
    let (mut sim, _) = sim();
    sim.set_conditions(0, Conditions::latency(ms(10)));
    sim.client_mut().say(b"old");
    sim.advance(ms(5));
    let (_, old_server) = sim.replace(0, Toy::default(), Toy::echo());
    sim.drive();
    assert!(old_server.got.is_empty());
    assert!(
        sim.server().got.is_empty(),
        "the old connection's frame is gone"
    );
    sim.client_mut().say(b"new");
    sim.drive();
    assert_eq!(sim.client().got(), [b"new".to_vec()]);
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
