//! Noise transport.
