//! The encrypted wire of one connection: the Noise transport once the handshake finished,
//! the frame encoder, the queue of buffers for the socket, and the IQ ids. Every room
//! (pairing, login, messaging) sends through it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::request::SendError;
use crate::binary::{self, Node};
use crate::noise::{FrameEncoder, NoiseError, Transport};
use crate::stanza::ack;

/// What leaves the socket, in order (drained by `Connection::poll_transmit`).
#[derive(Debug)]
pub(crate) struct Wire {
    /// The Noise transport: `None` until the handshake finished.
    pub(crate) transport: Option<Transport>,
    frames_out: FrameEncoder,
    /// Buffers for the socket, each tagged with the sequence number of the last store write
    /// staged before it was queued: it leaves only once that write is durable
    /// (`store::Staged`; always 0 in inline persistence).
    transmits: VecDeque<(u64, Bytes)>,
    /// The connection's staged-write counter (`store::Staged::seq_handle`).
    staged_seq: Arc<AtomicU64>,
    /// Prefix of our IQ ids (two random bytes, as whatsmeow `generateRequestID`).
    id_prefix: String,
    id_counter: u64,
}

impl Wire {
    pub(crate) fn new(
        frames_out: FrameEncoder,
        id_prefix: String,
        staged_seq: Arc<AtomicU64>,
    ) -> Self {
        Self {
            transport: None,
            frames_out,
            transmits: VecDeque::new(),
            staged_seq,
            id_prefix,
            id_counter: 0,
        }
    }

    /// A fresh IQ id.
    pub(crate) fn next_iq_id(&mut self) -> String {
        self.id_counter += 1;
        format!("{}{}", self.id_prefix, self.id_counter)
    }

    /// Frame `payload` (handshake message or ciphertext) and queue it.
    pub(crate) fn queue_frame(&mut self, payload: &[u8]) -> Result<(), NoiseError> {
        let mut wire = Vec::with_capacity(payload.len() + 8);
        self.frames_out
            .encode(payload, &mut wire)
            .inspect_err(|e| tracing::error!(error = %e, "connection: cannot frame payload"))?;
        let barrier = self.staged_seq.load(Ordering::Acquire);
        self.transmits.push_back((barrier, Bytes::from(wire)));
        Ok(())
    }

    /// The oldest queued buffer if every store write staged before it is durable
    /// (`durable` = highest durable sequence number).
    pub(crate) fn pop_transmit(&mut self, durable: u64) -> Option<Bytes> {
        match self.transmits.front() {
            Some((barrier, _)) if *barrier <= durable => self.transmits.pop_front().map(|(_, b)| b),
            _ => None,
        }
    }

    /// Encrypt and queue a node.
    ///
    /// # Errors
    /// [`SendError::NotConnected`] before the handshake finished, [`SendError::Encode`] for a
    /// node the codec cannot express, [`SendError::Noise`] when encrypting or framing fails.
    pub(crate) fn send_node(&mut self, node: &Node) -> Result<(), SendError> {
        let Some(transport) = self.transport.as_mut() else {
            return Err(SendError::NotConnected);
        };
        tracing::trace!(%node, "connection: send");
        let mut plain = Vec::new();
        binary::try_encode_into(node, &mut plain).inspect_err(|e| {
            tracing::warn!(error = %e, "connection: cannot encode node");
        })?;
        let mut ciphertext = Vec::with_capacity(plain.len() + 16);
        transport
            .encrypt(&plain, &mut ciphertext)
            .inspect_err(|e| {
                tracing::warn!(error = %e, "connection: cannot encrypt");
            })?;
        self.queue_frame(&ciphertext)?;
        Ok(())
    }

    /// [`send_node`](Self::send_node) for the connection's own stanzas; failures are logged
    /// there. Returns whether it was queued.
    pub(crate) fn send_internal(&mut self, node: &Node) -> bool {
        self.send_node(node).is_ok()
    }

    /// Queue the `<ack>` a received stanza needs (03 §11), if any.
    pub(crate) fn send_ack(&mut self, node: &Node) {
        if let Some(a) = ack::ack_for(node) {
            self.send_internal(&a);
        }
    }
}
