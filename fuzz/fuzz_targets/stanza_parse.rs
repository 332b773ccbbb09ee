//! Fuzz target: every parser the engine runs on received stanzas and message content.
//!
//! The input is read four ways, so one corpus serves them all:
//! 1. as a frame (`binary::decode`, flags byte first) or a bare node (`binary::decode_node`);
//!    every stanza parser then runs on the node and on each node inside it (a budget of 64),
//!    and the text parsers on its attribute values;
//! 2. as a `wa::Message` (and the same after `pad::unpad`), followed by the content extraction
//!    the engine does on a decrypted message (`deviceSentMessage` unwrapping as in
//!    `conn/messaging/recv.rs`, `content::unwrap` / `text_of` / `media_type` /
//!    `stanza_type`, `MediaRef::from_message`) and the sender key distribution it carries;
//! 3. as text: JID, QR string, pairing code, phone number, media type name, receipt type,
//!    stream-error / failure codes;
//! 4. as pairing-code ciphertexts (`unwrap_ephemeral_pub`, `primary_finish`).
//!
//! Invariants: no panic; JIDs round-trip through `Display` / `FromStr`; a QR string and a
//! pairing code that parse re-encode to something that parses to the same value;
//! `unpad(pad(x)) == x`; a parsed pair-success with the vector's keys verifies only with the
//! real signatures (checked by `verify_pair_success` itself).
//!
//! Run: see fuzz/README.md.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use common::FuzzRng;
use common::parsers::{fixed, message_bytes, text, visit};
use libfuzzer_sys::fuzz_target;
use wa_engine::binary;
use wa_engine::message::pad;
use wa_engine::pair::code;

fuzz_target!(|data: &[u8]| {
    if let Ok(node) = binary::decode(data) {
        visit(&node);
    } else if let Ok(node) = binary::decode_node(data) {
        visit(&node);
    }
    message_bytes(data);
    if let Ok(s) = std::str::from_utf8(data) {
        text(s);
    }
    let _ = code::unwrap_ephemeral_pub(&fixed().code, data);
    let secret = x25519_dalek::StaticSecret::from([5; 32]);
    let _ = code::primary_finish(&secret, &[6; 32], &secret, data);
    // Padding round trip.
    let padded = pad::pad(data.to_vec(), &mut FuzzRng::new(data.len() as u64));
    assert_eq!(pad::unpad(&padded).ok(), Some(data), "unpad(pad(x)) != x");
});
