//! Fuzz target: history-sync blobs (`history::BlobInflater`, `history::inflate`,
//! `history::decode`, `history::HistoryItems`).
//!
//! Input: `mode (1) || rest`:
//!
//! | mode | layout after the mode byte | what runs |
//! | --- | --- | --- |
//! | 0 | `flags (1) || HistorySync bytes` | `history::decode` (bit 0: keep messages) |
//! | 1 | `cap (2, LE) || zlib bytes` | `history::inflate` with a small cap |
//! | 2 | `len (2, LE) || plaintext (len) || n (1) || n chunk sizes || edits` | a real blob of the plaintext (fixed key), edited, streamed through a `BlobInflater` |
//!
//! Invariants:
//! - no panic;
//! - where prost decodes the bytes as `HistorySync`, our field-by-field decoder succeeds too
//!   and agrees on conversations (when messages are kept), salt and sync type;
//! - inflation never returns more than the cap, and a success is reproducible with the cap
//!   set to exactly its length (and fails with one byte less);
//! - a real blob inflates to its plaintext whatever the chunking, and the streaming pass
//!   (`HistoryStream`) yields exactly the items of the buffered decoder (or both fail); an
//!   edited blob fails with a media error (MAC, hashes, length), never with an inflate error.
//!
//! Run: see fuzz/README.md.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use common::{Input, mutate};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use wa_engine::history::{
    self, BlobInflater, HistoryConfig, HistoryError, HistoryItems, HistoryStream,
};
use wa_engine::media::MediaKey;
use wa_proto::wa::HistorySync;
use wa_proto::wa::message::HistorySyncNotification;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    match input.byte() % 3 {
        0 => {
            let keep_messages = input.byte() & 1 != 0;
            let bytes = input.rest();
            let config = HistoryConfig { keep_messages, ..HistoryConfig::default() };
            let ours = history::decode(bytes, &config);
            // Errors are sticky: after one, the iterator ends.
            let mut items = HistoryItems::new(bytes);
            while let Some(item) = items.next() {
                if item.is_err() {
                    assert!(items.next().is_none(), "iterator continued after an error");
                    break;
                }
            }
            if let Ok(whole) = HistorySync::decode(bytes) {
                let ours = ours.expect("prost decodes it, so must we");
                if keep_messages {
                    assert_eq!(ours.conversations, whole.conversations);
                } else {
                    assert_eq!(ours.conversations.len(), whole.conversations.len());
                    assert_eq!(ours.message_count(), 0);
                }
                assert_eq!(ours.nct_salt, whole.nct_salt.filter(|s| !s.is_empty()));
                assert_eq!(ours.sync_type.map(|t| t as i32), whole.sync_type.filter(|t| (0..=6).contains(t)));
            }
        }
        1 => {
            let cap = usize::from(input.u16());
            let config = HistoryConfig { max_inflated: cap, ..HistoryConfig::default() };
            let zlib = input.rest();
            if let Ok(out) = history::inflate(zlib, &config) {
                assert!(out.len() <= cap);
                let exact = HistoryConfig { max_inflated: out.len(), ..HistoryConfig::default() };
                assert_eq!(history::inflate(zlib, &exact).ok().as_ref(), Some(&out));
                if !out.is_empty() {
                    let less = HistoryConfig { max_inflated: out.len() - 1, ..HistoryConfig::default() };
                    assert!(matches!(history::inflate(zlib, &less), Err(HistoryError::TooLarge { .. })));
                }
            }
        }
        _ => {
            let len = usize::from(input.u16() % 4096);
            let plaintext = input.take(len).to_vec();
            let n = usize::from(input.byte() % 8);
            let sizes: Vec<usize> = input.take(n).iter().map(|&s| usize::from(s) + 1).collect();
            let key = MediaKey::from_bytes([0x3d; 32]);
            let (real, media) = history::compress_and_encrypt(&plaintext, key.clone());
            let notification = HistorySyncNotification {
                media_key: Some(key.as_bytes().to_vec()),
                file_sha256: Some(media.file_sha256.to_vec()),
                file_enc_sha256: Some(media.file_enc_sha256.to_vec()),
                file_length: Some(media.file_length),
                ..HistorySyncNotification::default()
            };
            let enc = mutate(&real, &mut input);
            let config = HistoryConfig::default();
            let result = (|| {
                let mut inflater = BlobInflater::new(&notification, &config)?;
                let mut at = 0;
                let mut i = 0;
                while at < enc.len() {
                    let size = sizes.get(i % sizes.len().max(1)).copied().unwrap_or(enc.len());
                    let end = (at + size).min(enc.len());
                    inflater.update(&enc[at..end])?;
                    at = end;
                    i += 1;
                }
                inflater.finish()
            })();
            if enc == real {
                assert_eq!(result.as_ref().ok(), Some(&plaintext), "a real blob failed");
                // The streaming pass yields the same items as the buffered decoder, or the
                // same kind of failure.
                let mut stream = HistoryStream::new(&notification, &config).expect("stream");
                let mut items = Vec::new();
                let mut streamed = Ok(());
                for piece in enc.chunks(sizes.first().copied().unwrap_or(enc.len()).max(1)) {
                    streamed = stream.update(piece, &mut items);
                    if streamed.is_err() {
                        break;
                    }
                }
                let streamed = streamed.and_then(|()| stream.finish(&mut items).map(|_| ()));
                let buffered: Result<Vec<_>, _> = HistoryItems::new(&plaintext).collect();
                match (streamed, buffered) {
                    (Ok(()), Ok(expected)) => assert_eq!(items, expected),
                    (Err(_), Err(_)) => {}
                    (s, b) => panic!("streamed {s:?}, buffered {:?}", b.map(|v| v.len())),
                }
            } else {
                match result {
                    Err(HistoryError::Media(_)) => {}
                    other => panic!("edited blob gave {other:?}"),
                }
            }
        }
    }
});
