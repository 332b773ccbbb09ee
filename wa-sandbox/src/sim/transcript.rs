//! [`Transcript`]: every frame put on a simulated wire, both ways, with its fate.

use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use super::link::{Direction, Verdict};

/// One frame as it left an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Simulated time since the simulation started.
    pub at: Duration,
    /// The link.
    pub link: usize,
    /// The direction.
    pub direction: Direction,
    /// What the link did with it.
    pub verdict: Verdict,
    /// The bytes (a Noise frame, ciphertext after the handshake).
    pub bytes: Bytes,
}

/// Every frame of a simulation, in the order they were sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transcript {
    records: Vec<Record>,
}

impl Transcript {
    pub(crate) fn push(&mut self, record: Record) {
        self.records.push(record);
    }

    /// The frames, in sending order.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// How many frames were sent.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no frame was sent.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Total bytes sent, both ways.
    pub fn bytes(&self) -> usize {
        self.records.iter().map(|r| r.bytes.len()).sum()
    }

    /// SHA-256 over every record (time in nanoseconds, link, direction, verdict, length,
    /// bytes): two runs with the same seed must give the same digest.
    pub fn digest(&self) -> [u8; 32] {
        let mut sha = Sha256::new();
        for r in &self.records {
            sha.update(r.at.as_nanos().to_be_bytes());
            sha.update((r.link as u64).to_be_bytes());
            sha.update([match r.direction {
                Direction::ToServer => 0,
                Direction::ToClient => 1,
            }]);
            let (tag, extra) = match r.verdict {
                Verdict::Deliver => (0u8, Duration::ZERO),
                Verdict::Drop => (1, Duration::ZERO),
                Verdict::Delay(d) => (2, d),
                Verdict::Reorder => (3, Duration::ZERO),
            };
            sha.update([tag]);
            sha.update(extra.as_nanos().to_be_bytes());
            sha.update((r.bytes.len() as u64).to_be_bytes());
            sha.update(&r.bytes);
        }
        sha.finalize().into()
    }

    /// [`digest`](Self::digest) as lowercase hex.
    pub fn digest_hex(&self) -> String {
        use std::fmt::Write as _;
        self.digest()
            .iter()
            .fold(String::with_capacity(64), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
    }
}
