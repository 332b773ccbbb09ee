//! Streaming history sync with memory bounded by one top-level field: verify the downloaded
//! blob in a first pass ([`BlobVerifier`]), then decrypt, inflate and decode it in a second
//! pass over the same bytes ([`HistoryStream`]), handing out one [`HistoryItem`] at a time.
//! Neither pass holds the compressed or the inflated blob (shared/protocol/08 §9.5: "bound
//! the inflate, process chunks one at a time"; whatsapp-rust streams the inflate and extracts
//! field by field; Baileys PR #2333 pipes the decrypting stream into zlib).

use std::fmt;

use wa_proto::wa::message::HistorySyncNotification;
use zeroize::Zeroizing;

use super::blob::Inflater;
use super::decode::parse_field;
use super::{HistoryConfig, HistoryError, HistoryItem};
use crate::media::{DecryptedMedia, Decryptor, Expected, MediaKey, MediaType};

fn decryptor(notification: &HistorySyncNotification) -> Result<Decryptor, HistoryError> {
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
    Ok(Decryptor::new(&key, MediaType::History, expected))
}

/// First pass: checks a downloaded enc file (MAC, `fileEncSha256`, `fileSha256`, length)
/// without keeping any plaintext.
pub struct BlobVerifier {
    decryptor: Decryptor,
    scratch: Zeroizing<Vec<u8>>,
}

impl BlobVerifier {
    /// Starts verifying the blob `notification` announces.
    ///
    /// # Errors
    /// [`HistoryError::MissingField`] without `mediaKey`; [`HistoryError::Media`] if it is not
    /// 32 bytes.
    pub fn new(notification: &HistorySyncNotification) -> Result<Self, HistoryError> {
        Ok(Self {
            decryptor: decryptor(notification)?,
            scratch: Zeroizing::new(Vec::new()),
        })
    }

    /// Takes the next enc bytes.
    ///
    /// # Errors
    /// [`HistoryError::Media`] (e.g. more bytes than announced).
    pub fn update(&mut self, enc: &[u8]) -> Result<(), HistoryError> {
        self.scratch.clear();
        self.decryptor
            .update(enc, &mut self.scratch)
            .map_err(HistoryError::Media)
    }

    /// Ends the pass.
    ///
    /// # Errors
    /// [`HistoryError::Media`] if any check fails: do not run the second pass.
    pub fn finish(mut self) -> Result<DecryptedMedia, HistoryError> {
        self.scratch.clear();
        self.decryptor
            .finish(&mut self.scratch)
            .map_err(HistoryError::Media)
    }
}

impl fmt::Debug for BlobVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobVerifier").finish_non_exhaustive()
    }
}

/// Second pass: enc bytes in, decoded top-level `HistorySync` fields out as soon as each is
/// complete. Holds at most one field being assembled (a conversation, typically well under a
/// megabyte) plus fixed buffers; the total inflated size is still capped by
/// [`HistoryConfig::max_inflated`].
///
/// **Items are unverified until [`Self::finish`] returns `Ok`.** Run it over bytes that a
/// [`BlobVerifier`] accepted (e.g. the same local file) and treat a `finish` error as "the
/// bytes changed": discard what was handed out. When the blob is small, [`BlobInflater`]
/// with [`decode`](super::decode) is simpler.
///
/// [`BlobInflater`]: super::BlobInflater
pub struct HistoryStream {
    decryptor: Decryptor,
    inflater: Inflater,
    scratch: Zeroizing<Vec<u8>>,
    /// Inflated bytes of the field being assembled.
    pending: Zeroizing<Vec<u8>>,
    /// Inflated bytes handed out before `pending`, for error offsets.
    consumed: usize,
}

impl HistoryStream {
    /// Starts the pass for the blob `notification` announces.
    ///
    /// # Errors
    /// As [`BlobVerifier::new`].
    pub fn new(
        notification: &HistorySyncNotification,
        config: &HistoryConfig,
    ) -> Result<Self, HistoryError> {
        Ok(Self {
            decryptor: decryptor(notification)?,
            inflater: Inflater::new(config.max_inflated),
            scratch: Zeroizing::new(Vec::new()),
            pending: Zeroizing::new(Vec::new()),
            consumed: 0,
        })
    }

    /// Takes the next enc bytes and appends every field completed by them to `items`.
    ///
    /// # Errors
    /// [`HistoryError::Media`], [`HistoryError::Inflate`], [`HistoryError::TooLarge`],
    /// [`HistoryError::Malformed`], [`HistoryError::Protobuf`]. After an error, drop the stream.
    pub fn update(&mut self, enc: &[u8], items: &mut Vec<HistoryItem>) -> Result<(), HistoryError> {
        self.scratch.clear();
        self.decryptor
            .update(enc, &mut self.scratch)
            .map_err(HistoryError::Media)?;
        pump(
            &mut self.inflater,
            &self.scratch,
            &mut self.pending,
            &mut self.consumed,
            items,
        )
    }

    /// Ends the pass: verifies the file again and that the zlib stream and the last field
    /// are complete, appending the last fields to `items`.
    ///
    /// # Errors
    /// [`HistoryError::Media`] if the bytes do not verify (discard every item);
    /// [`HistoryError::TruncatedStream`]; [`HistoryError::Malformed`] for a cut-off field.
    pub fn finish(self, items: &mut Vec<HistoryItem>) -> Result<DecryptedMedia, HistoryError> {
        let Self {
            decryptor,
            mut inflater,
            mut scratch,
            mut pending,
            mut consumed,
        } = self;
        scratch.clear();
        let media = decryptor
            .finish(&mut scratch)
            .map_err(HistoryError::Media)?;
        pump(&mut inflater, &scratch, &mut pending, &mut consumed, items)?;
        if !inflater.is_done() {
            return Err(HistoryError::TruncatedStream);
        }
        if !pending.is_empty() {
            return Err(HistoryError::Malformed { offset: consumed });
        }
        Ok(media)
    }
}

/// Inflates `plain` and splits the output into complete top-level fields.
fn pump(
    inflater: &mut Inflater,
    plain: &[u8],
    pending: &mut Vec<u8>,
    consumed: &mut usize,
    items: &mut Vec<HistoryItem>,
) -> Result<(), HistoryError> {
    inflater.feed_to(plain, &mut |bytes| {
        pending.extend_from_slice(bytes);
        let mut at = 0;
        while at < pending.len() {
            match parse_field(&pending[at..], *consumed + at)? {
                Some((len, item)) => {
                    at += len;
                    items.extend(item);
                }
                None => break,
            }
        }
        pending.drain(..at);
        *consumed += at;
        Ok(())
    })
}

impl fmt::Debug for HistoryStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HistoryStream")
            .field("consumed", &self.consumed)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// Inflates and decodes a compressed `HistorySync` handed over in pieces (the plaintext of an
/// `md-msg-hist` download as it streams in, or an `initialHistBootstrapInlinePayload`), one
/// top-level field at a time: holds only the field being assembled (one conversation) and
/// fixed buffers, and fails once the inflated total passes [`HistoryConfig::max_inflated`]
/// (inflate bomb).
///
/// **Items are unverified while a download streams**: fold them somewhere provisional and
/// keep them only if the download then verified (the engine's connection does so).
pub struct PlainHistoryStream {
    inflater: Inflater,
    pending: Zeroizing<Vec<u8>>,
    consumed: usize,
}

impl PlainHistoryStream {
    /// A stream capped by `config`.
    #[must_use]
    pub fn new(config: &HistoryConfig) -> Self {
        Self {
            inflater: Inflater::new(config.max_inflated),
            pending: Zeroizing::new(Vec::new()),
            consumed: 0,
        }
    }

    /// Takes the next compressed bytes and appends every field they complete to `items`.
    /// Bytes after the end of the zlib stream are ignored.
    ///
    /// # Errors
    /// [`HistoryError::Inflate`], [`HistoryError::TooLarge`], [`HistoryError::Malformed`],
    /// [`HistoryError::Protobuf`]. After an error, drop the stream.
    pub fn update(
        &mut self,
        compressed: &[u8],
        items: &mut Vec<HistoryItem>,
    ) -> Result<(), HistoryError> {
        if self.inflater.is_done() {
            return Ok(());
        }
        for piece in compressed.chunks(16 * 1024) {
            pump(
                &mut self.inflater,
                piece,
                &mut self.pending,
                &mut self.consumed,
                items,
            )?;
            if self.inflater.is_done() {
                break;
            }
        }
        Ok(())
    }

    /// Ends the stream: the zlib stream and its last field must be complete.
    ///
    /// # Errors
    /// [`HistoryError::TruncatedStream`]; [`HistoryError::Malformed`] for a cut-off field.
    pub fn finish(self) -> Result<(), HistoryError> {
        if !self.inflater.is_done() {
            return Err(HistoryError::TruncatedStream);
        }
        if !self.pending.is_empty() {
            return Err(HistoryError::Malformed {
                offset: self.consumed,
            });
        }
        Ok(())
    }
}

impl fmt::Debug for PlainHistoryStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainHistoryStream")
            .field("consumed", &self.consumed)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// Inflates an already verified compressed `HistorySync` (a downloaded and verified
/// `md-msg-hist` plaintext, or an `initialHistBootstrapInlinePayload`) and hands each
/// decoded top-level field to `each` as soon as it is complete ([`PlainHistoryStream`] over
/// the whole input).
///
/// # Errors
/// Those of [`PlainHistoryStream::update`] and [`PlainHistoryStream::finish`]; items handed
/// out before an error stay handed out.
pub fn inflate_items(
    compressed: &[u8],
    config: &HistoryConfig,
    each: &mut dyn FnMut(HistoryItem),
) -> Result<(), HistoryError> {
    let mut stream = PlainHistoryStream::new(config);
    let mut items = Vec::new();
    for piece in compressed.chunks(16 * 1024) {
        stream.update(piece, &mut items)?;
        items.drain(..).for_each(&mut *each);
    }
    stream.finish()
}
