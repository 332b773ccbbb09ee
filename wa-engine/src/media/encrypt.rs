//! Streaming media encryption: AES-256-CBC/PKCS#7, a 10-byte truncated HMAC-SHA256 and the
//! two SHA-256 digests (shared/protocol/06 §2.2).

use std::fmt;

use aes::cipher::{BlockModeEncrypt, KeyIvInit};
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::keys::{MediaKey, MediaType};
use super::{BLOCK_LEN, MAC_LEN};

type CbcEncryptor = cbc::Encryptor<aes::Aes256>;
pub(super) type HmacSha256 = hmac::Hmac<Sha256>;

/// What an upload needs besides the enc bytes: the fields of the media message
/// (shared/protocol/06 §2.5) and the 10-byte MAC that ends the enc file.
#[derive(Clone, Debug)]
pub struct EncryptedMedia {
    /// The media key the file was encrypted with (`mediaKey`); redacted in `Debug`.
    pub media_key: MediaKey,
    /// SHA-256 of the plaintext (`fileSha256`).
    pub file_sha256: [u8; 32],
    /// SHA-256 of the enc file, ciphertext ‖ MAC (`fileEncSha256`).
    pub file_enc_sha256: [u8; 32],
    /// Plaintext length, bytes (`fileLength`).
    pub file_length: u64,
    /// `HMAC-SHA256(macKey, iv ‖ ciphertext)[..10]`, the last 10 bytes of the enc file.
    pub mac: [u8; MAC_LEN],
}

impl EncryptedMedia {
    /// The upload token for this file: [`upload_token`] of `file_enc_sha256`.
    #[must_use]
    pub fn upload_token(&self) -> String {
        upload_token(&self.file_enc_sha256)
    }

    /// Length of the enc file, bytes: the PKCS#7-padded plaintext plus the 10-byte MAC.
    #[must_use]
    pub fn enc_file_length(&self) -> u64 {
        enc_file_length(self.file_length)
    }
}

/// The upload token: URL-safe base64 of the 32-byte `fileEncSha256`, without padding
/// (43 characters), used in the upload path and its `token` query parameter.
///
/// The references disagree (shared/protocol/06 §2.4, §5.2): whatsmeow (`upload.go`) sends
/// padded base64url, Baileys and whatsapp-rust strip the padding. We strip it, as the
/// vectors (Baileys) do; a server compares decoded bytes, so either form is accepted.
#[must_use]
pub fn upload_token(file_enc_sha256: &[u8; 32]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(file_enc_sha256)
}

/// Length of the enc file for a plaintext of `file_length` bytes: PKCS#7 always adds 1 to
/// 16 bytes, then the 10-byte MAC follows. Saturates at `u64::MAX`.
#[must_use]
pub fn enc_file_length(file_length: u64) -> u64 {
    (file_length / BLOCK_LEN as u64)
        .saturating_add(1)
        .saturating_mul(BLOCK_LEN as u64)
        .saturating_add(MAC_LEN as u64)
}

/// A streaming media encryptor: plaintext chunks of any size in, enc file bytes out.
///
/// Sans-IO: the caller owns the output `Vec` and moves the bytes wherever they go. Only the
/// last partial AES block of plaintext is held back (at most [`Self::MAX_BUFFERED`] = 15
/// bytes), so a 100 MB video never sits whole in memory. [`Self::finish`] pads, encrypts the
/// last block and appends the 10-byte MAC; the concatenated output is the enc file to upload.
///
/// Encryption is deterministic once the media key is fixed: an uploader that must know
/// `fileEncSha256` (the upload token) before it sends the body can run the file through a
/// first encryptor for the hashes only and a second one, with the same key, for the body.
///
/// ```
/// use wa_engine::media::{Encryptor, MediaKey, MediaType};
///
/// let mut enc = Encryptor::new(MediaKey::from_bytes([7; 32]), MediaType::Image);
/// let mut enc_file = Vec::new();
/// for chunk in [&b"hello "[..], b"whatsapp ", b"media"] {
///     enc.update(chunk, &mut enc_file);
/// }
/// let media = enc.finish(&mut enc_file);
/// assert_eq!(media.file_length, 20);
/// assert_eq!(enc_file.len() as u64, media.enc_file_length());
/// ```
pub struct Encryptor {
    media_key: MediaKey,
    cbc: CbcEncryptor,
    hmac: HmacSha256,
    file_hash: Sha256,
    enc_hash: Sha256,
    /// Plaintext not yet making a whole block.
    pending: Zeroizing<[u8; BLOCK_LEN]>,
    pending_len: usize,
    file_length: u64,
}

impl Encryptor {
    /// The most plaintext bytes an encryptor holds between calls: one block minus one.
    pub const MAX_BUFFERED: usize = BLOCK_LEN - 1;

    /// Starts encrypting a file of `media_type` under `media_key` (see [`MediaKey::expand`]).
    #[must_use]
    pub fn new(media_key: MediaKey, media_type: MediaType) -> Self {
        let keys = media_key.expand(media_type);
        let cbc = CbcEncryptor::new(keys.cipher_key().into(), keys.iv().into());
        let mut hmac = new_hmac(keys.mac_key());
        hmac.update(keys.iv());
        Self {
            media_key,
            cbc,
            hmac,
            file_hash: Sha256::new(),
            enc_hash: Sha256::new(),
            pending: Zeroizing::new([0; BLOCK_LEN]),
            pending_len: 0,
            file_length: 0,
        }
    }

    /// Encrypts `plaintext`, appending every whole block of ciphertext it completes to `out`.
    ///
    /// Appends at most `plaintext.len() + 15` bytes, always a multiple of 16.
    pub fn update(&mut self, plaintext: &[u8], out: &mut Vec<u8>) {
        self.file_hash.update(plaintext);
        self.file_length = self.file_length.saturating_add(plaintext.len() as u64);
        let total = self.pending_len + plaintext.len();
        if total < BLOCK_LEN {
            // Not a whole block yet: it all fits in `pending`.
            self.pending[self.pending_len..total].copy_from_slice(plaintext);
            self.pending_len = total;
            return;
        }
        let whole = total - total % BLOCK_LEN;
        // `pending_len` <= 15 < 16 <= `whole`, so this cannot underflow.
        let take = whole - self.pending_len;
        let (now, rest) = plaintext.split_at(take);
        let start = out.len();
        out.reserve(whole);
        out.extend_from_slice(&self.pending[..self.pending_len]);
        out.extend_from_slice(now);
        self.encrypt_blocks(&mut out[start..]);
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    /// Pads and encrypts the held-back bytes, appends the last block and the 10-byte MAC to
    /// `out` (17 to 32 bytes in all), and returns the hashes and length of the file.
    #[must_use = "the hashes and media key are needed for the media message"]
    pub fn finish(mut self, out: &mut Vec<u8>) -> EncryptedMedia {
        // PKCS#7: pad with `n` bytes of value `n`, 1 <= n <= 16.
        let pad = BLOCK_LEN - self.pending_len;
        let mut last = Zeroizing::new([pad as u8; BLOCK_LEN]);
        last[..self.pending_len].copy_from_slice(&self.pending[..self.pending_len]);
        self.encrypt_blocks(last.as_mut());
        let tag = self.hmac.finalize().into_bytes();
        let mut mac = [0_u8; MAC_LEN];
        mac.copy_from_slice(&tag[..MAC_LEN]);
        self.enc_hash.update(mac);
        out.extend_from_slice(last.as_ref());
        out.extend_from_slice(&mac);
        EncryptedMedia {
            media_key: self.media_key,
            file_sha256: self.file_hash.finalize().into(),
            file_enc_sha256: self.enc_hash.finalize().into(),
            file_length: self.file_length,
            mac,
        }
    }

    /// Plaintext bytes held back waiting for a whole block; never above [`Self::MAX_BUFFERED`].
    #[must_use]
    pub fn buffered_len(&self) -> usize {
        self.pending_len
    }

    /// Plaintext bytes taken in so far.
    #[must_use]
    pub fn file_length(&self) -> u64 {
        self.file_length
    }

    /// Encrypts whole blocks in place and feeds the ciphertext to the MAC and `fileEncSha256`.
    fn encrypt_blocks(&mut self, buf: &mut [u8]) {
        let (blocks, tail) = aes::Block::slice_as_chunks_mut(buf);
        debug_assert!(tail.is_empty(), "callers pass whole blocks");
        self.cbc.encrypt_blocks(blocks);
        self.hmac.update(buf);
        self.enc_hash.update(buf);
    }
}

impl fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encryptor")
            .field("file_length", &self.file_length)
            .field("buffered", &self.pending_len)
            .finish_non_exhaustive()
    }
}

/// HMAC-SHA256 keyed with a 32-byte MAC key.
pub(super) fn new_hmac(mac_key: &[u8; 32]) -> HmacSha256 {
    match <HmacSha256 as KeyInit>::new_from_slice(mac_key) {
        Ok(hmac) => hmac,
        // HMAC takes keys of any length.
        Err(_) => unreachable!("HMAC accepts a 32-byte key"),
    }
}

/// Encrypts a whole plaintext under `media_key`: returns the enc file (ciphertext ‖ MAC, the
/// bytes to upload) and its metadata. Same output as one [`Encryptor::update`] and
/// [`Encryptor::finish`]; prefer the [`Encryptor`] for large files.
#[must_use]
pub fn encrypt(
    media_key: MediaKey,
    media_type: MediaType,
    plaintext: &[u8],
) -> (Vec<u8>, EncryptedMedia) {
    let mut enc_file = Vec::with_capacity(plaintext.len() + BLOCK_LEN + MAC_LEN);
    let mut encryptor = Encryptor::new(media_key, media_type);
    encryptor.update(plaintext, &mut enc_file);
    let media = encryptor.finish(&mut enc_file);
    (enc_file, media)
}
