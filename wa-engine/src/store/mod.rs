//! Persistent state.
