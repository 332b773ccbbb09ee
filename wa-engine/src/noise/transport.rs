//! AES-256-GCM with WhatsApp's 12-byte IV layout, and the post-handshake [`Transport`].
//!
//! The IV is 8 zero bytes followed by a 32-bit big-endian counter (whatsmeow
//! `socket/noisesocket.go` `generateIV`; Baileys `generateIV`), which equals the Noise
//! spec's AESGCM nonce (4 zero bytes + 64-bit big-endian `n`) for `n < 2^32`.
//! Transport frames use empty associated data and one counter per direction, starting at 0
//! (shared/protocol/01 §7).

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use zeroize::Zeroize;

use super::NoiseError;

/// Length of the AES-GCM authentication tag appended to every ciphertext, bytes.
pub const TAG_LEN: usize = 16;

/// The 12-byte IV for `counter`: `00 × 8 || counter (u32 BE)`.
fn iv(counter: u32) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut iv = [0_u8; 12];
    iv[8..].copy_from_slice(&counter.to_be_bytes());
    iv.into()
}

/// A keyed AES-256-GCM instance with its nonce counter.
///
/// The counter is kept as `u64` so that exhaustion of the 32-bit IV space is detected
/// instead of wrapping into nonce reuse (whatsmeow and whatsapp-rust wrap; no connection
/// ever gets there).
pub(super) struct CipherState {
    cipher: Aes256Gcm,
    counter: u64,
}

impl CipherState {
    /// A cipher keyed with `key` (32 bytes), counter 0.
    pub(super) fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.into()),
            counter: 0,
        }
    }

    /// The counter the next operation will use.
    pub(super) fn counter(&self) -> u64 {
        self.counter
    }

    /// Takes the current counter and advances it.
    fn next_counter(&mut self) -> Result<u32, NoiseError> {
        let counter = u32::try_from(self.counter).map_err(|_| NoiseError::CounterExhausted)?;
        self.counter += 1;
        Ok(counter)
    }

    /// Appends `AESGCM(k, IV(n), ad, plaintext)` (ciphertext || 16-byte tag) to `out`; `n += 1`.
    pub(super) fn seal(
        &mut self,
        ad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), NoiseError> {
        let counter = self.next_counter()?;
        let start = out.len();
        out.reserve(plaintext.len() + TAG_LEN);
        out.extend_from_slice(plaintext);
        // `start <= out.len()`: the slice cannot panic.
        let body = &mut out[start..];
        // Encryption fails only for inputs beyond 2^36 bytes, far above the frame limit.
        match self
            .cipher
            .encrypt_inout_detached(&iv(counter), ad, body.into())
        {
            Ok(tag) => {
                out.extend_from_slice(&tag);
                Ok(())
            }
            Err(_) => {
                out.truncate(start);
                Err(NoiseError::FrameTooLarge {
                    len: plaintext.len(),
                    max: super::MAX_FRAME_LEN,
                })
            }
        }
    }

    /// Decrypts `ciphertext` (body || 16-byte tag) in place; returns the plaintext length.
    /// The counter advances whether or not authentication succeeds (whatsmeow
    /// `receiveEncryptedFrame` increments before opening).
    pub(super) fn open_in_place(
        &mut self,
        ad: &[u8],
        buf: &mut [u8],
        what: &'static str,
    ) -> Result<usize, NoiseError> {
        let counter = self.next_counter()?;
        let Some(body_len) = buf.len().checked_sub(TAG_LEN) else {
            return Err(NoiseError::DecryptFailed(what));
        };
        let (body, tag) = buf.split_at_mut(body_len);
        let Ok(tag) = Tag::try_from(&*tag) else {
            return Err(NoiseError::DecryptFailed(what));
        };
        self.cipher
            .decrypt_inout_detached(&iv(counter), ad, (&mut *body).into(), &tag)
            .map_err(|_| NoiseError::DecryptFailed(what))?;
        Ok(body_len)
    }

    /// Appends the decryption of `ciphertext` to `out`; on failure `out` is left unchanged.
    pub(super) fn open(
        &mut self,
        ad: &[u8],
        ciphertext: &[u8],
        out: &mut Vec<u8>,
        what: &'static str,
    ) -> Result<(), NoiseError> {
        let start = out.len();
        out.extend_from_slice(ciphertext);
        // `start <= out.len()`: the slices below cannot panic.
        match self.open_in_place(ad, &mut out[start..], what) {
            Ok(len) => {
                out.truncate(start + len);
                Ok(())
            }
            Err(e) => {
                // Do not leave unauthenticated plaintext behind.
                out[start..].zeroize();
                out.truncate(start);
                Err(e)
            }
        }
    }
}

/// The transport phase after a completed handshake: one AES-256-GCM key and counter per
/// direction, empty associated data (shared/protocol/01 §7).
///
/// Frame payloads (the bytes inside a 3-byte length prefix) are `ciphertext || 16-byte tag`
/// of one plaintext frame (a flags byte plus an encoded binary node). Counters start at 0,
/// advance by one per frame, and the 2^32-th frame fails with
/// [`NoiseError::CounterExhausted`].
///
/// ```
/// use wa_engine::noise::Transport;
/// let (k1, k2) = ([1_u8; 32], [2_u8; 32]);
/// let mut client = Transport::new(&k1, &k2);
/// let mut server = Transport::new(&k2, &k1);
/// let mut frame = Vec::new();
/// client.encrypt(b"node", &mut frame).unwrap();
/// let mut plain = Vec::new();
/// server.decrypt(&frame, &mut plain).unwrap();
/// assert_eq!(plain, b"node");
/// ```
pub struct Transport {
    send: CipherState,
    recv: CipherState,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("send_counter", &self.send.counter)
            .field("recv_counter", &self.recv.counter)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A transport from raw keys (32 bytes each): `send_key` encrypts outgoing frames,
    /// `recv_key` decrypts incoming ones; both counters start at 0.
    ///
    /// Connections get their transport from [`Handshake::finish`](super::Handshake::finish);
    /// this constructor is for tests, benches and vectors that give the split keys.
    #[must_use]
    pub fn new(send_key: &[u8; 32], recv_key: &[u8; 32]) -> Self {
        Self {
            send: CipherState::new(send_key),
            recv: CipherState::new(recv_key),
        }
    }

    /// Encrypts one outgoing frame payload: appends `ciphertext || tag` (`plaintext.len() + 16`
    /// bytes) to `out` and advances the send counter.
    ///
    /// # Errors
    /// [`NoiseError::CounterExhausted`] after 2^32 frames.
    pub fn encrypt(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), NoiseError> {
        self.send.seal(&[], plaintext, out)
    }

    /// Decrypts one incoming frame payload, appending the plaintext
    /// (`ciphertext.len() - 16` bytes) to `out`. The receive counter advances even when
    /// authentication fails, as in whatsmeow; the caller should treat a failure as fatal
    /// for the connection.
    ///
    /// # Errors
    /// [`NoiseError::DecryptFailed`] if the frame is shorter than a tag or fails
    /// authentication (`out` is then unchanged); [`NoiseError::CounterExhausted`].
    pub fn decrypt(&mut self, ciphertext: &[u8], out: &mut Vec<u8>) -> Result<(), NoiseError> {
        self.recv.open(&[], ciphertext, out, "transport frame")
    }

    /// Decrypts one incoming frame payload in place and returns the plaintext length; the
    /// plaintext is `buf[..len]`. Same counter rule as [`decrypt`](Self::decrypt).
    ///
    /// # Errors
    /// As [`decrypt`](Self::decrypt); on failure `buf` holds unauthenticated bytes.
    pub fn decrypt_in_place(&mut self, buf: &mut [u8]) -> Result<usize, NoiseError> {
        self.recv.open_in_place(&[], buf, "transport frame")
    }

    /// The counter the next outgoing frame will use.
    #[must_use]
    pub fn send_counter(&self) -> u64 {
        self.send.counter()
    }

    /// The counter the next incoming frame is expected to use.
    #[must_use]
    pub fn recv_counter(&self) -> u64 {
        self.recv.counter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iv_puts_counter_big_endian_in_last_four_bytes() {
        assert_eq!(
            iv(0x0102_0304).as_slice(),
            &[0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn counter_exhaustion_is_an_error_not_a_wrap() {
        let mut c = CipherState::new(&[7; 32]);
        c.counter = u64::from(u32::MAX);
        let mut out = Vec::new();
        c.seal(&[], b"x", &mut out).unwrap();
        assert!(matches!(
            c.seal(&[], b"x", &mut out),
            Err(NoiseError::CounterExhausted)
        ));
    }

    #[test]
    fn failed_decrypt_leaves_output_untouched_and_advances_counter() {
        let mut a = Transport::new(&[1; 32], &[2; 32]);
        let mut b = Transport::new(&[2; 32], &[1; 32]);
        let mut frame = Vec::new();
        a.encrypt(b"hello", &mut frame).unwrap();
        frame[0] ^= 1;
        let mut out = b"keep".to_vec();
        assert!(matches!(
            b.decrypt(&frame, &mut out),
            Err(NoiseError::DecryptFailed("transport frame"))
        ));
        assert_eq!(out, b"keep");
        assert_eq!(b.recv_counter(), 1);
        assert!(matches!(
            b.decrypt(&[0; 15], &mut out),
            Err(NoiseError::DecryptFailed(_))
        ));
    }
}
