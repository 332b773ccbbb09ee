//! Stanza builders and parsers over [`crate::binary::Node`]: IQs, acks, stream errors.
//!
//! Pure functions; no state, no I/O. Public as a low-level layer (like `binary` and `conn`):
//! embedders sending their own IQs and the sandbox use the same builders.

pub mod ack;
pub mod iq;
mod stream_error;

pub use stream_error::{CloseReason, Reconnect};
