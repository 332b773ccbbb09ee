//! Protobuf types of the WhatsApp Web multi-device protocol.
//!
//! Written by us from the field tables in the protocol reference (`shared/protocol/`),
//! compiled with prost. The generated code is checked in (`src/generated.rs`) so a fresh
//! machine builds without `protoc`; `cargo build -p wa-proto --features generate`
//! regenerates it from `proto/*.proto` with protox.

/// All protocol messages, in one protobuf package `wa`.
#[allow(missing_docs, clippy::all, unreachable_pub)]
#[rustfmt::skip]
pub mod wa {
    include!("generated.rs");
}
