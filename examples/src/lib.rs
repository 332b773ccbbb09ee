//! Runnable examples that embed wa-engine; see `examples/README.md`.
