//! Stanza builders and parsers over [`crate::binary::Node`]: IQs, acks, stream errors.
//!
//! Pure functions; no state, no I/O. Internal: public only with the `server-side` feature
//! (the sandbox and the fuzz targets use the same builders); [`CloseReason`] and
//! [`Reconnect`] are re-exported at the crate root.

pub mod ack;
pub mod iq;
mod stream_error;

pub use stream_error::{CloseReason, Reconnect};
