//! Fuzz target: splitting a byte stream into frames (`noise::FrameDecoder`).
//!
//! Input: `flags (1) || n (1) || n chunk sizes (1 each) || stream`. `flags` picks the side
//! (client: bare frames; server: `WA 06 03` header, optionally after the `ED 00 01`
//! pre-intro) and the frame limit (the real `MAX_FRAME_LEN` or a small one, so
//! `FrameTooLarge` is reachable). The stream is fed once whole and once in chunks whose sizes
//! come from the input (cycled).
//!
//! Invariants:
//! - no panic;
//! - the chunked decoder yields exactly the frames of the whole one, then the same outcome
//!   (an error of the same kind, or the same number of bytes left buffered and the same
//!   routing info);
//! - no frame exceeds the limit;
//! - errors are sticky (asking again gives an error again);
//! - re-framing the frames (`len || payload`) gives back the stream bytes they were read
//!   from, after the intro (server side);
//! - `finish()` succeeds exactly when nothing is left buffered.
//!
//! Run: see fuzz/README.md.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use common::Input;
use libfuzzer_sys::fuzz_target;
use wa_engine::noise::{
    CONN_HEADER, FrameDecoder, FrameEncoder, LEN_PREFIX, MAX_FRAME_LEN, NoiseError, PRE_INTRO_MAGIC,
};

/// What feeding a stream produced.
struct Outcome {
    frames: Vec<Vec<u8>>,
    error: Option<NoiseError>,
    buffered: usize,
    routing: Option<Vec<u8>>,
}

fn decoder(server: bool, max: usize) -> FrameDecoder {
    let dec = if server {
        FrameDecoder::server()
    } else {
        FrameDecoder::client()
    };
    dec.with_max_frame_len(max)
}

/// Pushes each chunk and drains frames after every push, stopping at the first error.
fn run<'a>(mut dec: FrameDecoder, chunks: impl Iterator<Item = &'a [u8]>, max: usize) -> Outcome {
    let mut frames = Vec::new();
    let mut error = None;
    'outer: for chunk in chunks {
        dec.push(chunk);
        loop {
            match dec.next_frame() {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= max, "frame of {} > limit {max}", frame.len());
                    frames.push(frame.to_vec());
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(dec.next_frame().is_err(), "error not sticky after {e}");
                    error = Some(e);
                    break 'outer;
                }
            }
        }
    }
    if error.is_none() {
        assert_eq!(
            dec.finish().is_ok(),
            dec.buffered_len() == 0,
            "finish() disagrees with buffered_len()"
        );
    }
    Outcome {
        frames,
        error,
        buffered: dec.buffered_len(),
        routing: dec.routing_info().map(<[u8]>::to_vec),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.byte();
    let server = flags & 1 == 1;
    let max = if flags & 2 == 2 {
        1 + usize::from(flags >> 2)
    } else {
        MAX_FRAME_LEN
    };
    let n = usize::from(input.byte() % 16);
    let sizes: Vec<usize> = input.take(n).iter().map(|&s| usize::from(s) + 1).collect();
    let stream = input.rest();

    let whole = run(decoder(server, max), std::iter::once(stream), max);

    let mut chunks = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < stream.len() {
        let size = sizes.get(i % sizes.len().max(1)).copied().unwrap_or(1);
        let end = (at + size).min(stream.len());
        chunks.push(&stream[at..end]);
        at = end;
        i += 1;
    }
    let chunked = run(decoder(server, max), chunks.into_iter(), max);

    assert_eq!(
        chunked.frames, whole.frames,
        "frames depend on the chunking"
    );
    match (&whole.error, &chunked.error) {
        (None, None) => {
            assert_eq!(
                chunked.buffered, whole.buffered,
                "leftover depends on chunking"
            );
            assert_eq!(
                chunked.routing, whole.routing,
                "routing info depends on chunking"
            );
        }
        (Some(a), Some(b)) => assert_eq!(
            std::mem::discriminant(a),
            std::mem::discriminant(b),
            "whole: {a}, chunked: {b}"
        ),
        (a, b) => panic!("whole: {a:?}, chunked: {b:?}"),
    }

    // Re-framing gives back the bytes the frames came from (server side: once a frame came
    // out, the intro before it was consumed).
    if whole.error.is_none() && (!server || !whole.frames.is_empty()) {
        let intro = match (server, &whole.routing) {
            (false, _) => 0,
            (true, Some(r)) => PRE_INTRO_MAGIC.len() + LEN_PREFIX + r.len() + CONN_HEADER.len(),
            (true, None) => CONN_HEADER.len(),
        };
        let mut enc = FrameEncoder::server();
        let mut reframed = Vec::new();
        for f in &whole.frames {
            enc.encode(f, &mut reframed)
                .expect("frame within MAX_FRAME_LEN");
        }
        let consumed = stream.len() - whole.buffered;
        assert_eq!(
            stream.get(intro..consumed),
            Some(&reframed[..]),
            "re-framed bytes differ"
        );
    }
});
