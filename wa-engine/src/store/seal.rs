//! The seal: a sidecar record of the last durable commit of a [`SledStore`](super::SledStore).
//!
//! Why: sled 0.34 recovers a damaged log by dropping the damaged batch *and every
//! write after it*, without an error (`tests/store_sled.rs` flips one bit inside a
//! flushed batch: the store reopens "fine" and empty). A sequence number stored inside
//! every batch cannot reveal that on its own, because it is lost with the batch. So
//! after each successful flush the new sequence number is also written here, outside
//! sled's log. On open, sled's sequence number must be at least the sealed one; if it
//! is lower, flushed writes were lost and the store is reported corrupt.
//!
//! Format: file `wa-seal` in the store directory, two 16-byte slots at offsets 0 and
//! 4096 (different disk sectors, so a torn write damages at most one). A slot is
//! `seq (u64 BE) || SHA-256("wa-rs seal v1" || seq)[..8]`. Commit `n` writes slot
//! `n % 2` and fsyncs; the seal is the highest valid slot.
//!
//! A crash between sled's flush and the seal write leaves sled one commit ahead,
//! which is accepted.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::StoreError;

/// File name of the seal inside the store directory.
pub(crate) const FILE_NAME: &str = "wa-seal";
/// Byte offset of slot 1 (slot 0 is at 0): one page apart.
const SLOT_STRIDE: u64 = 4096;
const SLOT_LEN: usize = 16;
const DOMAIN: &[u8] = b"wa-rs seal v1";

fn check(seq: u64) -> [u8; 8] {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(seq.to_be_bytes());
    let digest = h.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

fn encode(seq: u64) -> [u8; SLOT_LEN] {
    let mut slot = [0u8; SLOT_LEN];
    slot[..8].copy_from_slice(&seq.to_be_bytes());
    slot[8..].copy_from_slice(&check(seq));
    slot
}

fn decode(slot: &[u8]) -> Option<u64> {
    let seq = u64::from_be_bytes(slot.get(..8)?.try_into().ok()?);
    (slot.get(8..SLOT_LEN)? == check(seq)).then_some(seq)
}

/// An open seal file.
pub(crate) struct Seal {
    file: File,
}

impl Seal {
    /// Creates the seal file in `dir` holding `seq` in both slots, fsynced.
    pub(crate) fn create(dir: &Path, seq: u64) -> Result<Self, StoreError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.join(FILE_NAME))
            .map_err(|e| StoreError::Open(e.into()))?;
        let mut seal = Self { file };
        seal.write_slot(0, seq)
            .and_then(|()| seal.write_slot(SLOT_STRIDE, seq))
            .map_err(|e| StoreError::Open(e.into()))?;
        Ok(seal)
    }

    /// Opens the seal file in `dir` and returns it with the sealed sequence number.
    ///
    /// # Errors
    /// `Corrupt` if the file is missing or neither slot is valid; `Open` on I/O errors.
    pub(crate) fn open(dir: &Path) -> Result<(Self, u64), StoreError> {
        let mut file = match OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join(FILE_NAME))
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::Corrupt {
                    what: "seal file missing",
                });
            }
            Err(e) => return Err(StoreError::Open(e.into())),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| StoreError::Open(e.into()))?;
        let slot = |offset: u64| {
            let start = usize::try_from(offset).ok()?;
            decode(bytes.get(start..start.checked_add(SLOT_LEN)?)?)
        };
        let sealed =
            slot(0)
                .into_iter()
                .chain(slot(SLOT_STRIDE))
                .max()
                .ok_or(StoreError::Corrupt {
                    what: "seal file unreadable",
                })?;
        Ok((Self { file }, sealed))
    }

    /// Records `seq` as durably committed (slot `seq % 2`, then fsync).
    pub(crate) fn commit(&mut self, seq: u64) -> io::Result<()> {
        let offset = if seq.is_multiple_of(2) {
            0
        } else {
            SLOT_STRIDE
        };
        self.write_slot(offset, seq)
    }

    /// Records `seq` like [`commit`](Self::commit) but without the fsync: the slot
    /// reaches the OS (it survives the process being killed) and the disk with the
    /// kernel's next write-back. For group commit, where one fsync per store per group
    /// would cost more than the shared sled flush saves. Safe because the caller
    /// writes it only after sled's flush of `seq` returned: a power loss can leave the
    /// seal behind sled (a weaker damage check for the last commits), never ahead.
    pub(crate) fn record(&mut self, seq: u64) -> io::Result<()> {
        let offset = if seq.is_multiple_of(2) {
            0
        } else {
            SLOT_STRIDE
        };
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.write_all(&encode(seq))
    }

    fn write_slot(&mut self, offset: u64, seq: u64) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.write_all(&encode(seq))?;
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_round_trips_and_rejects_damage() {
        let slot = encode(41);
        assert_eq!(decode(&slot), Some(41));
        let mut bad = slot;
        bad[3] ^= 1;
        assert_eq!(decode(&bad), None);
        assert_eq!(decode(&slot[..10]), None);
    }
}
