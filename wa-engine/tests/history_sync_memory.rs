//! A 50 MiB history-sync chunk is processed with bounded memory: a blob whose `HistorySync`
//! inflates to about 50 MiB (close to the 64 MiB cap) is read from disk in 64 KiB pieces,
//! verified ([`BlobVerifier`]) and then decrypted, inflated and decoded field by field
//! ([`HistoryStream`]), and the process's peak resident set (`VmHWM`) stays far below the
//! chunk size. The buffered path ([`BlobInflater`], which returns the whole inflated chunk)
//! is measured too, to show the measurement would notice buffering.
//!
//! Each measurement runs in a child process (this test binary re-run with an environment
//! variable) so that no other allocation counts. Linux only.
#![cfg(target_os = "linux")]

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::Command;

use prost::Message as _;
use wa_engine::history::{
    self, BlobInflater, BlobVerifier, HistoryConfig, HistoryStream, HistorySyncData,
};
use wa_engine::media::MediaKey;
use wa_proto::wa::message::HistorySyncNotification;
use wa_proto::wa::{Conversation, HistorySyncMsg, MessageKey, WebMessageInfo};

const CHILD_ENV: &str = "WA_HISTORY_MEMORY_CHILD";
const FILE_ENV: &str = "WA_HISTORY_MEMORY_FILE";
const TEST_NAME: &str = "a_50_mib_history_chunk_streams_in_bounded_memory";
/// Inflated size to reach, bytes.
const INFLATED_LEN: usize = 50 * 1024 * 1024;
/// Messages per conversation.
const MESSAGES: usize = 200;
/// Bound on the streaming pass's peak resident set, KiB: well under the 50 MiB chunk.
const PEAK_BOUND_KIB: u64 = 24 * 1024;
const MEDIA_KEY: [u8; 32] = [0x5a; 32];

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Pseudo-random hex text (compresses about 2:1, like real chat text does).
fn text(seed: &mut u64, len: usize) -> String {
    let mut s = String::with_capacity(len);
    while s.len() < len {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        s.push_str(&format!("{:016x}", *seed >> 1));
    }
    s.truncate(len);
    s
}

fn conversation(i: usize, seed: &mut u64) -> Conversation {
    let id = format!("1555{i:07}@s.whatsapp.net");
    Conversation {
        id: Some(id.clone()),
        lid_jid: Some(format!("9{i:014}@lid")),
        tc_token: Some(vec![7; 24]),
        tc_token_timestamp: Some(1_700_000_000),
        messages: (0..MESSAGES)
            .map(|m| HistorySyncMsg {
                message: Some(WebMessageInfo {
                    key: Some(MessageKey {
                        remote_jid: Some(id.clone()),
                        from_me: Some(m % 2 == 0),
                        id: Some(format!("3EB0{i:08}{m:08}")),
                        participant: None,
                    }),
                    message: Some(wa_proto::wa::Message {
                        conversation: Some(text(seed, 200)),
                        ..Default::default()
                    }),
                    message_timestamp: Some(1_700_000_000 + m as u64),
                    ..Default::default()
                }),
                msg_order_id: Some(m as u64),
            })
            .collect(),
        ..Default::default()
    }
}

/// Writes the blob to `path`; returns its notification and the conversation count.
fn generate(path: &Path) -> anyhow::Result<(HistorySyncNotification, usize)> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&[0x08, 0x00])?; // syncType = INITIAL_BOOTSTRAP
    let mut seed = 1_u64;
    let (mut written, mut count) = (2, 0);
    while written < INFLATED_LEN {
        let bytes = conversation(count, &mut seed).encode_to_vec();
        let mut field = vec![0x12];
        prost::encoding::encode_varint(bytes.len() as u64, &mut field);
        field.extend_from_slice(&bytes);
        encoder.write_all(&field)?;
        written += field.len();
        count += 1;
    }
    let mut salt = vec![0x9a, 0x01, 32];
    salt.extend_from_slice(&[1; 32]);
    encoder.write_all(&salt)?;
    let compressed = encoder.finish()?;
    let (enc, media) = wa_engine::media::encrypt(
        MediaKey::from_bytes(MEDIA_KEY),
        wa_engine::media::MediaType::History,
        &compressed,
    );
    std::fs::write(path, &enc)?;
    println!(
        "HISTORY_BLOB inflated_bytes={} compressed_bytes={} enc_bytes={} conversations={count}",
        written + salt.len(),
        compressed.len(),
        enc.len()
    );
    Ok((
        HistorySyncNotification {
            media_key: Some(MEDIA_KEY.to_vec()),
            file_sha256: Some(media.file_sha256.to_vec()),
            file_enc_sha256: Some(media.file_enc_sha256.to_vec()),
            file_length: Some(media.file_length),
            ..Default::default()
        },
        count,
    ))
}

/// Calls `f` with each 64 KiB piece of the file.
fn read_pieces(path: &Path, mut f: impl FnMut(&[u8]) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0_u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        f(&buf[..n])?;
    }
}

fn child(mode: &str) -> anyhow::Result<()> {
    let path = std::path::PathBuf::from(std::env::var_os(FILE_ENV).expect("file path"));
    let notification = HistorySyncNotification::decode(
        std::fs::read(path.with_extension("notification"))?.as_slice(),
    )?;
    let config = HistoryConfig {
        keep_messages: false,
        ..HistoryConfig::default()
    };
    let before = status_kib("VmRSS:");
    let data = if mode == "stream" {
        let mut verifier = BlobVerifier::new(&notification)?;
        read_pieces(&path, |p| Ok(verifier.update(p)?))?;
        verifier.finish()?;
        let mut stream = HistoryStream::new(&notification, &config)?;
        let mut data = HistorySyncData::default();
        let mut items = Vec::new();
        read_pieces(&path, |p| {
            stream.update(p, &mut items)?;
            for item in items.drain(..) {
                data.add(item, &config);
            }
            Ok(())
        })?;
        stream.finish(&mut items)?;
        for item in items.drain(..) {
            data.add(item, &config);
        }
        data
    } else if mode == "engine" {
        // The engine's path (client driver + conn::sync): the verified download streams its
        // plaintext in pieces (`Connection::handle_download_data`), a `PlainHistoryStream`
        // decodes each as it comes, and the result is kept once the file verified.
        let hash = |b: Option<&Vec<u8>>| b.and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok());
        let mut decryptor = wa_engine::media::Decryptor::new(
            &MediaKey::from_bytes(MEDIA_KEY),
            wa_engine::media::MediaType::History,
            wa_engine::media::Expected {
                file_sha256: hash(notification.file_sha256.as_ref()),
                file_enc_sha256: hash(notification.file_enc_sha256.as_ref()),
                file_length: notification.file_length,
            },
        );
        let mut stream = history::PlainHistoryStream::new(&config);
        let mut data = HistorySyncData::default();
        let (mut plain, mut items) = (Vec::new(), Vec::new());
        read_pieces(&path, |p| {
            plain.clear();
            decryptor.update(p, &mut plain)?;
            stream.update(&plain, &mut items)?;
            for item in items.drain(..) {
                data.add(item, &config);
            }
            Ok(())
        })?;
        plain.clear();
        decryptor.finish(&mut plain)?;
        stream.update(&plain, &mut items)?;
        stream.finish()?;
        for item in items.drain(..) {
            data.add(item, &config);
        }
        data
    } else {
        let mut inflater = BlobInflater::new(&notification, &config)?;
        read_pieces(&path, |p| Ok(inflater.update(p)?))?;
        let inflated = inflater.finish()?;
        history::decode(&inflated, &config)?
    };
    println!(
        "HISTORY_MEMORY mode={mode} conversations={} tc_tokens={} salt={} rss_before_kib={before} vmhwm_kib={}",
        data.conversations.len(),
        data.tc_tokens.len(),
        data.nct_salt.is_some(),
        status_kib("VmHWM:")
    );
    Ok(())
}

fn run_child(dir: &Path, mode: &str) -> anyhow::Result<(u64, usize)> {
    let out = Command::new(std::env::current_exe()?)
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, mode)
        .env(FILE_ENV, dir.join("blob.enc"))
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.find("HISTORY_MEMORY").map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("child printed no figures:\n{stdout}"));
    println!("{line}");
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    };
    anyhow::ensure!(line.contains("salt=true"), "salt not decoded: {line}");
    Ok((
        field("vmhwm_kib="),
        usize::try_from(field("conversations="))?,
    ))
}

#[test]
fn a_50_mib_history_chunk_streams_in_bounded_memory() -> anyhow::Result<()> {
    if let Some(mode) = std::env::var_os(CHILD_ENV) {
        return child(&mode.to_string_lossy());
    }
    let dir = tempfile::tempdir()?;
    let (notification, count) = generate(&dir.path().join("blob.enc"))?;
    std::fs::write(
        dir.path().join("blob.notification"),
        notification.encode_to_vec(),
    )?;

    let (streamed_peak, streamed_count) = run_child(dir.path(), "stream")?;
    let (buffered_peak, buffered_count) = run_child(dir.path(), "buffered")?;
    let (engine_peak, engine_count) = run_child(dir.path(), "engine")?;
    assert_eq!(engine_count, count);
    // The engine's download path is bounded like the two-pass stream.
    assert!(
        engine_peak < PEAK_BOUND_KIB,
        "engine path peak {engine_peak} KiB for a {INFLATED_LEN}-byte chunk exceeds {PEAK_BOUND_KIB} KiB"
    );
    assert_eq!(streamed_count, count);
    assert_eq!(buffered_count, count);
    // The buffered path holds the whole inflated chunk: the measurement sees it.
    assert!(
        buffered_peak > (INFLATED_LEN / 1024) as u64,
        "buffered peak {buffered_peak} KiB does not even hold the chunk: the measurement is broken"
    );
    assert!(
        streamed_peak < PEAK_BOUND_KIB,
        "streaming peak RSS {streamed_peak} KiB for a {INFLATED_LEN}-byte chunk exceeds {PEAK_BOUND_KIB} KiB"
    );
    Ok(())
}
