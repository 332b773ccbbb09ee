//! The engine's top-level error.

use crate::signal::SignalError;
use crate::store::StoreError;

/// Any error the engine returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing persistent state failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The Noise layer failed: framing, handshake, server certificate or transport.
    #[error(transparent)]
    Noise(#[from] crate::noise::NoiseError),
    /// Media encryption, decryption or verification failed.
    #[error(transparent)]
    Media(#[from] crate::media::MediaError),

    /// A Signal operation (session, sender key) failed.
    #[error(transparent)]
    Signal(#[from] SignalError),
}
