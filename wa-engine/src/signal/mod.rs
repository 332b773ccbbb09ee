//! Signal-protocol primitives as WhatsApp uses them.
//!
//! For now this holds XEdDSA ([`xeddsa`]): signatures made and checked with Curve25519
//! (Montgomery) keys, used by the Noise certificate chain, signed prekeys and sender keys
//! (shared/protocol/04 §3).

pub mod xeddsa;
