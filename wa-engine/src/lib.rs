//! wa-engine: a native WhatsApp Web multi-device protocol engine.

pub mod binary;
pub mod noise;
pub mod pair;
pub mod store;

mod error;
mod jid;

pub use error::Error;
pub use jid::Jid;
