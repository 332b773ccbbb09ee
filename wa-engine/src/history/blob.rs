//! Decrypting and inflating a history-sync blob, streamed and bounded
//! (shared/protocol/08 §9.2, §9.5; whatsmeow `message.go` DownloadHistorySync,
//! whatsapp-rust `src/history_sync.rs` MAX_DECOMPRESSED).

use std::fmt;
use std::io::Write as _;

use flate2::write::ZlibEncoder;
use flate2::{Compression, Decompress, FlushDecompress, Status};
use wa_proto::wa::message::HistorySyncNotification;
use zeroize::Zeroizing;

use super::{HistoryConfig, HistoryError};
use crate::media::{self, Decryptor, EncryptedMedia, Expected, MediaKey, MediaType};

/// Inflate output step, bytes.
const STEP: usize = 32 * 1024;

/// zlib inflation that refuses to produce more than a cap in total. Output goes to a sink:
/// a growing buffer ([`Inflater::feed`]) or a field splitter (the stream).
pub(super) struct Inflater {
    inflate: Decompress,
    out: Zeroizing<Vec<u8>>,
    limit: usize,
    done: bool,
}

impl Inflater {
    pub(super) fn new(limit: usize) -> Self {
        Self {
            inflate: Decompress::new(true),
            out: Zeroizing::new(Vec::new()),
            limit,
            done: false,
        }
    }

    /// Inflates `input` into the internal buffer.
    fn feed(&mut self, input: &[u8]) -> Result<(), HistoryError> {
        let mut out = std::mem::take(&mut self.out);
        let result = self.feed_to(input, &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        });
        self.out = out;
        result
    }

    /// Inflates `input`, handing every piece of output to `sink`.
    pub(super) fn feed_to(
        &mut self,
        mut input: &[u8],
        sink: &mut dyn FnMut(&[u8]) -> Result<(), HistoryError>,
    ) -> Result<(), HistoryError> {
        let mut buf = [0_u8; STEP];
        while !self.done {
            let (in_before, out_before) = (self.inflate.total_in(), self.inflate.total_out());
            let status = self
                .inflate
                .decompress(input, &mut buf, FlushDecompress::None)
                .map_err(HistoryError::Inflate)?;
            let consumed =
                usize::try_from(self.inflate.total_in() - in_before).unwrap_or(usize::MAX);
            let produced =
                usize::try_from(self.inflate.total_out() - out_before).unwrap_or(usize::MAX);
            if self.inflate.total_out() > self.limit as u64 {
                return Err(HistoryError::TooLarge { limit: self.limit });
            }
            sink(&buf[..produced])?;
            input = input.get(consumed..).unwrap_or_default();
            match status {
                Status::StreamEnd => self.done = true,
                // Output buffer full: more may be pending even without input.
                Status::Ok | Status::BufError if produced == STEP => {}
                Status::Ok | Status::BufError => {
                    if input.is_empty() || (consumed == 0 && produced == 0) {
                        break;
                    }
                }
            }
        }
        // Bytes after the end of the zlib stream are ignored (whatsmeow reads to the end
        // of the stream only).
        Ok(())
    }

    /// Whether the zlib stream ended.
    pub(super) fn is_done(&self) -> bool {
        self.done
    }

    fn finish(mut self) -> Result<Vec<u8>, HistoryError> {
        if !self.done {
            return Err(HistoryError::TruncatedStream);
        }
        Ok(std::mem::take(&mut *self.out))
    }
}

/// Inflates a zlib stream (an `initialHistBootstrapInlinePayload`, or an already decrypted
/// blob) with the cap of `config`.
///
/// # Errors
/// [`HistoryError::Inflate`], [`HistoryError::TruncatedStream`], [`HistoryError::TooLarge`].
pub fn inflate(compressed: &[u8], config: &HistoryConfig) -> Result<Vec<u8>, HistoryError> {
    let mut inflater = Inflater::new(config.max_inflated);
    inflater.feed(compressed)?;
    inflater.finish()
}

/// A history-sync download in progress: enc file chunks in (as they arrive from the media
/// host), the inflated `HistorySync` bytes out at [`Self::finish`], after the MAC and both
/// hashes verified.
///
/// Memory: the compressed blob is never held whole; the decryptor keeps under 42 bytes and
/// the inflated output is capped by [`HistoryConfig::max_inflated`] (64 MiB by default), so
/// an inflate bomb fails with [`HistoryError::TooLarge`] as soon as it passes the cap.
/// Unverified plaintext is inflated while streaming, but nothing leaves this type before
/// [`Self::finish`] verified the whole file.
pub struct BlobInflater {
    decryptor: Decryptor,
    inflater: Inflater,
    scratch: Zeroizing<Vec<u8>>,
    /// A zlib error seen while streaming, reported by `finish` only if the file verified:
    /// a tampered blob is a media error, not an inflate error.
    inflate_error: Option<HistoryError>,
}

impl BlobInflater {
    /// Starts the download announced by `notification` (media key, `fileSha256` and
    /// `fileEncSha256` and `fileLength` of the compressed blob; HKDF info "WhatsApp History
    /// Keys").
    ///
    /// # Errors
    /// [`HistoryError::MissingField`] without `mediaKey`, [`HistoryError::Media`] if it is not
    /// 32 bytes.
    pub fn new(
        notification: &HistorySyncNotification,
        config: &HistoryConfig,
    ) -> Result<Self, HistoryError> {
        let key = notification
            .media_key
            .as_deref()
            .ok_or(HistoryError::MissingField("mediaKey"))?;
        let key = MediaKey::from_slice(key).map_err(HistoryError::Media)?;
        let hash = |b: Option<&[u8]>| b.and_then(|b| <[u8; 32]>::try_from(b).ok());
        let expected = Expected {
            file_sha256: hash(notification.file_sha256.as_deref()),
            file_enc_sha256: hash(notification.file_enc_sha256.as_deref()),
            file_length: notification.file_length,
        };
        Ok(Self {
            decryptor: Decryptor::new(&key, MediaType::History, expected),
            inflater: Inflater::new(config.max_inflated),
            scratch: Zeroizing::new(Vec::with_capacity(STEP)),
            inflate_error: None,
        })
    }

    /// Takes the next bytes of the enc file.
    ///
    /// # Errors
    /// [`HistoryError::Media`] (e.g. more bytes than announced) and
    /// [`HistoryError::TooLarge`]; a malformed zlib stream is reported by [`Self::finish`]
    /// once the file verified. After an error, drop the inflater.
    pub fn update(&mut self, enc: &[u8]) -> Result<(), HistoryError> {
        self.scratch.clear();
        self.decryptor
            .update(enc, &mut self.scratch)
            .map_err(HistoryError::Media)?;
        feed(&mut self.inflater, &self.scratch, &mut self.inflate_error)
    }

    /// Ends the download: verifies the file (MAC, hashes, length) and the end of the zlib
    /// stream, and returns the inflated `HistorySync` bytes.
    ///
    /// # Errors
    /// [`HistoryError::Media`] if any check fails; the inflate errors.
    pub fn finish(self) -> Result<Vec<u8>, HistoryError> {
        let Self {
            decryptor,
            mut inflater,
            mut scratch,
            mut inflate_error,
        } = self;
        scratch.clear();
        decryptor
            .finish(&mut scratch)
            .map_err(HistoryError::Media)?;
        feed(&mut inflater, &scratch, &mut inflate_error)?;
        if let Some(e) = inflate_error {
            return Err(e);
        }
        inflater.finish()
    }
}

/// Inflates decrypted bytes. Exceeding the cap fails at once (the memory bound); a malformed
/// stream is remembered in `error` and reported after verification.
fn feed(
    inflater: &mut Inflater,
    plain: &[u8],
    error: &mut Option<HistoryError>,
) -> Result<(), HistoryError> {
    if error.is_some() {
        return Ok(());
    }
    match inflater.feed(plain) {
        Err(e @ HistoryError::TooLarge { .. }) => Err(e),
        Err(e) => {
            *error = Some(e);
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

impl fmt::Debug for BlobInflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobInflater")
            .field("inflated", &self.inflater.out.len())
            .field("limit", &self.inflater.limit)
            .finish_non_exhaustive()
    }
}

/// Decrypts, verifies and inflates a whole downloaded blob (one [`BlobInflater::update`]).
///
/// # Errors
/// Those of [`BlobInflater`].
pub fn decrypt_and_inflate(
    notification: &HistorySyncNotification,
    enc_file: &[u8],
    config: &HistoryConfig,
) -> Result<Vec<u8>, HistoryError> {
    let mut inflater = BlobInflater::new(notification, config)?;
    for chunk in enc_file.chunks(media::CHUNK_LEN) {
        inflater.update(chunk)?;
    }
    inflater.finish()
}

/// The phone's side, for simulators and tests: zlib-compresses serialized `HistorySync`
/// bytes and media-encrypts them under `media_key` ("WhatsApp History Keys"). Returns the enc
/// file and what the `HistorySyncNotification` announces (`fileSha256` and `fileLength` are
/// those of the compressed blob).
#[must_use]
pub fn compress_and_encrypt(history_sync: &[u8], media_key: MediaKey) -> (Vec<u8>, EncryptedMedia) {
    let mut encoder = ZlibEncoder::new(
        Vec::with_capacity(history_sync.len() / 2 + 64),
        Compression::default(),
    );
    let Ok(compressed) = encoder
        .write_all(history_sync)
        .and_then(|()| encoder.finish())
    else {
        unreachable!("compressing into a Vec cannot fail")
    };
    media::encrypt(media_key, MediaType::History, &compressed)
}
