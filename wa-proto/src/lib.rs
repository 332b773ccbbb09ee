//! Protobuf types of the WhatsApp Web multi-device protocol.
//!
//! Written by us from the field tables in the protocol reference (`shared/protocol/`),
//! compiled with prost. The generated code is checked in (`src/generated.rs`) so a fresh
//! machine builds without `protoc`; `cargo build -p wa-proto --features generate`
//! regenerates it from `proto/*.proto` with protox (see `build.rs`).
//!
//! All messages live in one proto2 package `wa`, exposed as [`wa`]. Bytes fields are
//! `Vec<u8>`; proto2 `optional` fields are `Option<_>` with prost's accessor methods
//! (e.g. `details.key()` returns `&[u8]`, empty when unset).
//!
//! Drift check (for CI): after
//! `cargo build -p wa-proto --features generate`,
//! `git diff --exit-code wa-proto/src/generated.rs` must be clean. The output is
//! deterministic (files sorted, no timestamps), so any diff means `proto/` and
//! `src/generated.rs` disagree.
//!
//! ```
//! use wa_proto::prost::Message as _;
//! use wa_proto::wa::{HandshakeMessage, handshake_message::ClientHello};
//!
//! let hello = HandshakeMessage {
//!     client_hello: Some(ClientHello { ephemeral: Some(vec![7; 32]), ..Default::default() }),
//!     ..Default::default()
//! };
//! let bytes = hello.encode_to_vec();
//! assert_eq!(HandshakeMessage::decode(bytes.as_slice()).unwrap(), hello);
//! ```

/// All protocol messages, in one protobuf package `wa`.
#[allow(missing_docs, clippy::all, unreachable_pub)]
#[rustfmt::skip]
pub mod wa {
    include!("generated.rs");
}

/// The prost version the types were generated for, re-exported so users can name
/// [`prost::Message`] (encode/decode) without a dependency of their own.
pub use prost;
