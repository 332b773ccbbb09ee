//! wa-engine: a native WhatsApp Web multi-device protocol engine.

pub mod binary;
pub mod noise;
pub mod store;

mod error;
mod jid;

pub use binary::DecodeError;
pub use error::Error;
pub use jid::{Jid, JidError, Server};
