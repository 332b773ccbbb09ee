//! WhatsApp's Noise layer, sans-IO: framing, the `Noise_XX_25519_AESGCM_SHA256` handshake
//! in both roles, the server certificate chain, and transport encryption.
//!
//! A low-level layer: it opens no sockets, reads no clock (`now` comes in as unix seconds)
//! and draws no randomness (keys come in). Layers, bottom up:
//!
//! - [`FrameEncoder`] / [`FrameDecoder`]: 3-byte length prefix, the client's `WA 06 03`
//!   connection header, splitting a byte stream into frames;
//! - [`ClientHandshake`] -> [`ServerHelloVerified`] -> [`Handshake`] (client, initiator) and
//!   `ServerHandshake` -> `AwaitingClientFinish` -> [`Handshake`] (server, responder; feature
//!   `server-side`), each step consuming the previous state; the responder also answers a
//!   resuming client's Noise IK hello (as IK, or with a real XXfallback: `ServerHelloOutcome`);
//!   handshake messages are `HandshakeMessage` protobuf bytes, framed by the caller;
//! - [`verify_cert_chain`] with a configurable [`TrustRoot`] (and `build_cert_chain` for a
//!   simulated server, feature `server-side`);
//! - [`Handshake::finish`] -> [`Transport`]: per-direction AES-256-GCM with counters.
//!
//! Source of the protocol facts: shared/protocol/01 (whatsmeow `socket/*.go`,
//! `handshake.go`; Baileys `src/Utils/noise-handler.ts`).

mod cert;
mod error;
mod frame;
mod handshake;
mod transport;

pub use cert::{
    CertDetails, SignedCert, TrustRoot, VerifiedChain, WHATSAPP_ROOT_KEY, verify_cert_chain,
};
#[cfg(feature = "server-side")]
pub use cert::{build_cert_chain, encode_cert_chain};
pub use error::{CertError, CertRole, NoiseError};
pub use frame::{
    CONN_HEADER, FrameDecoder, FrameEncoder, LEN_PREFIX, MAX_FRAME_LEN, PRE_INTRO_MAGIC,
};
#[cfg(feature = "server-side")]
pub use handshake::{AwaitingClientFinish, ClientFinished, ServerHandshake, ServerHelloOutcome};
pub use handshake::{
    ClientHandshake, Handshake, IK_PROTOCOL_NAME, KeyPair, PROTOCOL_NAME, Role,
    ServerHelloVerified, SymmetricState, XX_FALLBACK_PROTOCOL_NAME,
};
pub use transport::{TAG_LEN, Transport};
