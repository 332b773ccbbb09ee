//! The engine's top-level error.

/// Any error the engine returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Noise layer failed: framing, handshake, server certificate or transport.
    #[error(transparent)]
    Noise(#[from] crate::noise::NoiseError),
}
