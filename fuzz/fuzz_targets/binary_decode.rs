//! Fuzz target: binary node decoding.
//!
//! Invariants, for any input `x`:
//! - decoding never panics (owned `decode`, bare `decode_node`, borrowed
//!   `decode_node_ref`);
//! - the borrowed decoder agrees with the owned one;
//! - wherever `decode(x)` succeeds, `decode(encode(decode(x))) == decode(x)`.
//!
//! Run: see fuzz/README.md.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wa_engine::binary;

fuzz_target!(|data: &[u8]| {
    let decoded = binary::decode(data);
    if let Ok(node) = &decoded {
        let frame = binary::encode(node);
        match binary::decode(&frame) {
            Ok(again) => assert_eq!(&again, node, "decode(encode(decode(x))) != decode(x)"),
            Err(e) => panic!("re-encoded node does not decode: {e}"),
        }
    }
    if let Ok(body) = binary::unpack(data) {
        match (binary::decode_node(&body), binary::decode_node_ref(&body)) {
            (Ok(owned), Ok(borrowed)) => assert_eq!(borrowed.to_owned(), owned, "borrowed != owned"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "different errors"),
            (a, b) => panic!("owned {a:?} vs borrowed {b:?}"),
        }
    }
});
