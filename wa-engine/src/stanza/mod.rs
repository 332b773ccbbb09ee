//! Stanza builders and parsers over [`crate::binary::Node`]: IQs, acks, stream errors.
//!
//! Pure functions; no state, no I/O.

mod stream_error;

pub use stream_error::{CloseReason, Reconnect};
