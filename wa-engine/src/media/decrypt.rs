//! Streaming media decryption and verification (shared/protocol/06 §2.2; whatsmeow
//! `download.go` downloadAndDecrypt/validateMedia).

use std::fmt;

use aes::cipher::{BlockModeDecrypt, KeyIvInit};
use hmac::Mac;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::encrypt::{EncryptedMedia, HmacSha256, enc_file_length, new_hmac};
use super::keys::{MediaKey, MediaType};
use super::{BLOCK_LEN, HashKind, MAC_LEN, MediaError};

type CbcDecryptor = cbc::Decryptor<aes::Aes256>;

/// Enc bytes always held back: the 10-byte MAC and the last ciphertext block, whose
/// padding can only be removed once the stream has ended.
const HOLD: usize = MAC_LEN + BLOCK_LEN;

/// What the media message announced about the file; each `Some` is checked by
/// [`Decryptor::finish`], each `None` skipped. `Expected::default()` checks only the MAC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expected {
    /// `fileSha256`: SHA-256 of the plaintext.
    pub file_sha256: Option<[u8; 32]>,
    /// `fileEncSha256`: SHA-256 of the enc file.
    pub file_enc_sha256: Option<[u8; 32]>,
    /// `fileLength`: plaintext length, bytes. Also bounds the enc bytes accepted while
    /// streaming (see [`MediaError::TooLong`]).
    pub file_length: Option<u64>,
}

impl From<&EncryptedMedia> for Expected {
    /// Expects exactly the file an [`Encryptor`](super::Encryptor) produced.
    fn from(media: &EncryptedMedia) -> Self {
        Self {
            file_sha256: Some(media.file_sha256),
            file_enc_sha256: Some(media.file_enc_sha256),
            file_length: Some(media.file_length),
        }
    }
}

/// What [`Decryptor::finish`] measured of a file that verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecryptedMedia {
    /// SHA-256 of the plaintext.
    pub file_sha256: [u8; 32],
    /// SHA-256 of the enc file.
    pub file_enc_sha256: [u8; 32],
    /// Plaintext length, bytes.
    pub file_length: u64,
}

/// A streaming media decryptor: enc file chunks of any size in, plaintext chunks out,
/// verification at the end.
///
/// Sans-IO: the caller owns the output `Vec`. The decryptor holds back the last 10 bytes
/// (the MAC candidate) and the last whole ciphertext block (for padding removal), at most
/// [`Self::MAX_BUFFERED`] = 41 bytes, and releases everything before them as plaintext.
/// [`Self::finish`] checks, in whatsmeow's order: length, `fileEncSha256`, the MAC
/// (constant time), block alignment, PKCS#7 padding, `fileLength`, `fileSha256`.
///
/// # Unverified output
///
/// **Plaintext returned by [`Self::update`] is not authenticated yet.** A caller that passes
/// it on before [`Self::finish`] returns `Ok` must be able to take it back: write it to a
/// temporary file and delete that file if `finish` (or `update`) returns an error, and never
/// parse, display or forward it before then. Use [`decrypt`] to get plaintext only after
/// verification.
///
/// ```
/// use wa_engine::media::{Decryptor, Expected, MediaKey, MediaType, encrypt};
///
/// let key = MediaKey::from_bytes([7; 32]);
/// let (enc_file, media) = encrypt(key.clone(), MediaType::Document, b"a small document");
/// let mut decryptor = Decryptor::new(&key, MediaType::Document, Expected::from(&media));
/// let mut plaintext = Vec::new();
/// for chunk in enc_file.chunks(5) {
///     decryptor.update(chunk, &mut plaintext)?;
/// }
/// decryptor.finish(&mut plaintext)?; // on Err: discard `plaintext`
/// assert_eq!(plaintext, b"a small document");
/// # Ok::<(), wa_engine::media::MediaError>(())
/// ```
pub struct Decryptor {
    cbc: CbcDecryptor,
    hmac: HmacSha256,
    file_hash: Sha256,
    enc_hash: Sha256,
    /// Enc bytes not released yet: at least the last `HOLD` once that many arrived.
    pending: [u8; Self::MAX_BUFFERED],
    pending_len: usize,
    enc_len: u64,
    file_length: u64,
    expected: Expected,
    /// Most enc bytes accepted, from `expected.file_length`.
    limit: Option<u64>,
    poisoned: bool,
}

impl Decryptor {
    /// The most enc bytes a decryptor holds between calls: MAC (10) + one block (16) + a
    /// partial block (15).
    pub const MAX_BUFFERED: usize = HOLD + BLOCK_LEN - 1;

    /// Starts decrypting an enc file of `media_type` under `media_key`, to be checked
    /// against `expected` at [`Self::finish`].
    #[must_use]
    pub fn new(media_key: &MediaKey, media_type: MediaType, expected: Expected) -> Self {
        let keys = media_key.expand(media_type);
        let cbc = CbcDecryptor::new(keys.cipher_key().into(), keys.iv().into());
        let mut hmac = new_hmac(keys.mac_key());
        hmac.update(keys.iv());
        Self {
            cbc,
            hmac,
            file_hash: Sha256::new(),
            enc_hash: Sha256::new(),
            pending: [0; Self::MAX_BUFFERED],
            pending_len: 0,
            enc_len: 0,
            file_length: 0,
            expected,
            limit: expected.file_length.map(enc_file_length),
            poisoned: false,
        }
    }

    /// Takes the next `enc` bytes of the enc file and appends the plaintext of every block
    /// that can no longer be the last one to `out` (**unverified**, see the type docs).
    ///
    /// Appends at most `enc.len() + 15` bytes, always a multiple of 16.
    ///
    /// # Errors
    /// - [`MediaError::TooLong`] once more bytes arrived than `expected.file_length` allows;
    /// - [`MediaError::Poisoned`] if an earlier call failed.
    ///
    /// After an error, drop the decryptor and everything it produced.
    pub fn update(&mut self, enc: &[u8], out: &mut Vec<u8>) -> Result<(), MediaError> {
        if self.poisoned {
            return Err(MediaError::Poisoned);
        }
        self.enc_len = self.enc_len.saturating_add(enc.len() as u64);
        if let Some(limit) = self.limit
            && self.enc_len > limit
        {
            self.poisoned = true;
            return Err(MediaError::TooLong { limit });
        }
        self.enc_hash.update(enc);

        let total = self.pending_len + enc.len();
        if total < HOLD + BLOCK_LEN {
            // Nothing to release: it all fits in `pending` (at most 41 bytes).
            self.pending[self.pending_len..total].copy_from_slice(enc);
            self.pending_len = total;
            return Ok(());
        }
        // Release whole blocks, keeping between HOLD and HOLD + 15 bytes back.
        let release = (total - HOLD) / BLOCK_LEN * BLOCK_LEN;
        let from_pending = release.min(self.pending_len);
        let from_enc = release - from_pending;
        let start = out.len();
        out.reserve(release);
        out.extend_from_slice(&self.pending[..from_pending]);
        out.extend_from_slice(&enc[..from_enc]);

        let kept_pending = self.pending_len - from_pending;
        let kept = total - release;
        self.pending.copy_within(from_pending..self.pending_len, 0);
        self.pending[kept_pending..kept].copy_from_slice(&enc[from_enc..]);
        self.pending_len = kept;

        self.decrypt_blocks(&mut out[start..]);
        Ok(())
    }

    /// Ends the stream: verifies the file, then appends the plaintext of the last block
    /// (0 to 15 bytes) to `out`.
    ///
    /// # Errors
    /// In the order checked: [`MediaError::Poisoned`], [`MediaError::Truncated`],
    /// [`MediaError::HashMismatch`] (`FileEncSha256`), [`MediaError::MacMismatch`],
    /// [`MediaError::NotBlockAligned`], [`MediaError::BadPadding`],
    /// [`MediaError::LengthMismatch`], [`MediaError::HashMismatch`] (`FileSha256`).
    /// On any error the caller must discard all plaintext `update` produced.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<DecryptedMedia, MediaError> {
        if self.poisoned {
            return Err(MediaError::Poisoned);
        }
        // Once HOLD bytes arrived, `pending` always keeps at least HOLD of them.
        if self.enc_len < HOLD as u64 || self.pending_len < HOLD {
            return Err(MediaError::Truncated { len: self.enc_len });
        }
        let file_enc_sha256: [u8; 32] = self.enc_hash.finalize().into();
        if let Some(expected) = self.expected.file_enc_sha256
            && !bool::from(expected.ct_eq(&file_enc_sha256))
        {
            return Err(MediaError::HashMismatch {
                which: HashKind::FileEncSha256,
            });
        }

        let (last_ciphertext, mac) =
            self.pending[..self.pending_len].split_at(self.pending_len - MAC_LEN);
        self.hmac.update(last_ciphertext);
        let tag = self.hmac.finalize().into_bytes();
        if !bool::from(tag[..MAC_LEN].ct_eq(mac)) {
            return Err(MediaError::MacMismatch);
        }

        let mut last = Zeroizing::new(
            <[u8; BLOCK_LEN]>::try_from(last_ciphertext)
                .map_err(|_| MediaError::NotBlockAligned)?,
        );
        let (blocks, _) = aes::Block::slice_as_chunks_mut(last.as_mut());
        self.cbc.decrypt_blocks(blocks);
        // PKCS#7: the last byte `n` (1..=16) says how many bytes of value `n` end the block.
        // No padding oracle: the MAC has verified the ciphertext already.
        let pad = usize::from(last[BLOCK_LEN - 1]);
        let plain_len = BLOCK_LEN
            .checked_sub(pad)
            .filter(|_| pad > 0)
            .ok_or(MediaError::BadPadding)?;
        if last[plain_len..].iter().any(|&b| usize::from(b) != pad) {
            return Err(MediaError::BadPadding);
        }
        let plain = &last[..plain_len];
        self.file_hash.update(plain);
        let file_length = self.file_length + plain_len as u64;

        if let Some(expected) = self.expected.file_length
            && expected != file_length
        {
            return Err(MediaError::LengthMismatch {
                expected,
                actual: file_length,
            });
        }
        let file_sha256: [u8; 32] = self.file_hash.finalize().into();
        if let Some(expected) = self.expected.file_sha256
            && !bool::from(expected.ct_eq(&file_sha256))
        {
            return Err(MediaError::HashMismatch {
                which: HashKind::FileSha256,
            });
        }
        out.extend_from_slice(plain);
        Ok(DecryptedMedia {
            file_sha256,
            file_enc_sha256,
            file_length,
        })
    }

    /// Enc bytes held back; never above [`Self::MAX_BUFFERED`].
    #[must_use]
    pub fn buffered_len(&self) -> usize {
        self.pending_len
    }

    /// Enc bytes taken in so far.
    #[must_use]
    pub fn enc_len(&self) -> u64 {
        self.enc_len
    }

    /// Feeds whole ciphertext blocks to the MAC, decrypts them in place and hashes the
    /// plaintext.
    fn decrypt_blocks(&mut self, buf: &mut [u8]) {
        self.hmac.update(buf);
        let (blocks, tail) = aes::Block::slice_as_chunks_mut(buf);
        debug_assert!(tail.is_empty(), "callers pass whole blocks");
        self.cbc.decrypt_blocks(blocks);
        self.file_hash.update(&*buf);
        self.file_length += buf.len() as u64;
    }
}

impl fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decryptor")
            .field("enc_len", &self.enc_len)
            .field("buffered", &self.pending_len)
            .field("expected", &self.expected)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

/// Decrypts and verifies a whole enc file; returns the plaintext only if every check of
/// [`Decryptor::finish`] passed. On error, the partial plaintext is zeroized.
///
/// # Errors
/// Those of [`Decryptor::update`] and [`Decryptor::finish`].
pub fn decrypt(
    media_key: &MediaKey,
    media_type: MediaType,
    enc_file: &[u8],
    expected: Expected,
) -> Result<Vec<u8>, MediaError> {
    let mut plaintext = Zeroizing::new(Vec::with_capacity(enc_file.len()));
    let mut decryptor = Decryptor::new(media_key, media_type, expected);
    decryptor.update(enc_file, &mut plaintext)?;
    decryptor.finish(&mut plaintext)?;
    Ok(std::mem::take(&mut *plaintext))
}
