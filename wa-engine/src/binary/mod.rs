//! Binary node codec ("WABinary"): WhatsApp's tokenised binary XML.
//!
//! A low-level layer, public on purpose. Every transport frame decrypts to a
//! flags byte plus one [`Node`]; this module turns bytes into nodes and back,
//! exactly as specified in shared/protocol/02-binary-nodes.md (sources:
//! whatsmeow binary/, Baileys src/WABinary/, whatsapp-rust wacore/binary).
//!
//! - [`encode`] / [`encode_into`] write a frame (flags `0x00` + node);
//!   [`encode_node`] / [`encode_node_into`] a bare node; the `try_` forms
//!   report sizes the wire cannot express instead of panicking.
//! - [`decode`] reads a frame (inflating it when `flags & 2`);
//!   [`decode_node`] a bare node. Malformed input is a [`DecodeError`], never
//!   a panic; trailing bytes are an error. [`decode_node_ref`] decodes the
//!   same bytes without copying into a borrowed [`NodeRef`].
//! - Token dictionaries (DictVersion 3) are compiled in by `build.rs` from
//!   shared/protocol/tokens; see `token` (public with the `server-side` feature).
//!
//! Round trip: `decode(&encode(&n)) == n` for every node except that
//! [`Content::String`] text that is neither a token nor packable comes back as
//! [`Content::Bytes`] (raw strings and raw bytes share one wire form), and a
//! [`Jid`](crate::Jid) the JID encodings cannot carry comes back as its string
//! form (see [`encode`]). For every decoded node `d`,
//! `decode(&encode(&d)) == d` exactly.

mod attrs;
mod decode;
mod encode;
mod error;
mod node;
mod node_ref;
internal_mod! {
    token;
}
mod token_hash;

pub use attrs::AttrReader;
pub use decode::{MAX_DEPTH, MAX_INFLATED_LEN, decode, decode_node, decode_node_ref, unpack};
pub use encode::{
    encode, encode_into, encode_node, encode_node_into, try_encode_into, try_encode_node_into,
};
pub use error::{AttrError, AttrErrors, DecodeError, EncodeError};
pub use node::{Attrs, Content, Node, Value};
pub use node_ref::{AttrsRef, Children, ContentRef, JidRef, NodeRef, NodeView, Str, ValueRef};

/// Tag bytes (shared/protocol/02 §2; whatsmeow binary/token/token.go,
/// Baileys constants.ts `TAGS`).
mod tags {
    /// Empty list; `""` in string position.
    pub(crate) const LIST_EMPTY: u8 = 0x00;
    /// Double-byte dictionary 0 (`0xEC`); 1–3 follow.
    pub(crate) const DICTIONARY_0: u8 = 0xEC;
    /// Double-byte dictionary 3.
    pub(crate) const DICTIONARY_3: u8 = 0xEF;
    /// Interop JID.
    pub(crate) const INTEROP_JID: u8 = 0xF5;
    /// Messenger JID.
    pub(crate) const FB_JID: u8 = 0xF6;
    /// Device (AD) JID.
    pub(crate) const AD_JID: u8 = 0xF7;
    /// List with 1-byte size.
    pub(crate) const LIST_8: u8 = 0xF8;
    /// List with 2-byte size.
    pub(crate) const LIST_16: u8 = 0xF9;
    /// `user@server` JID.
    pub(crate) const JID_PAIR: u8 = 0xFA;
    /// Packed hex string.
    pub(crate) const HEX_8: u8 = 0xFB;
    /// Raw bytes, 1-byte length.
    pub(crate) const BINARY_8: u8 = 0xFC;
    /// Raw bytes, 20-bit length.
    pub(crate) const BINARY_20: u8 = 0xFD;
    /// Raw bytes, 4-byte length.
    pub(crate) const BINARY_32: u8 = 0xFE;
    /// Packed decimal string.
    pub(crate) const NIBBLE_8: u8 = 0xFF;
}
