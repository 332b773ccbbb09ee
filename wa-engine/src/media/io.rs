//! `std::io` adapters over [`Encryptor`] and [`Decryptor`], for upload and download code
//! that streams a file or an HTTP body through them. Each holds a bounded scratch buffer:
//! input is processed at most [`CHUNK_LEN`] bytes at a time.

use std::fmt;
use std::io::{self, Read, Write};

use zeroize::Zeroizing;

use super::{
    DecryptedMedia, Decryptor, EncryptedMedia, Encryptor, Expected, MediaError, MediaKey, MediaType,
};

/// Most input bytes an adapter processes per step, bytes (64 KiB): bounds its scratch buffer.
pub const CHUNK_LEN: usize = 64 * 1024;

/// A writer that encrypts: plaintext written in, enc file bytes written to the inner writer.
///
/// Call [`Self::finish`] at the end; dropping the writer without it leaves the enc file
/// without its last block and MAC. After an I/O error the writer is in an unknown state and
/// must be abandoned.
pub struct EncryptingWriter<W: Write> {
    inner: W,
    encryptor: Encryptor,
    scratch: Vec<u8>,
}

impl<W: Write> EncryptingWriter<W> {
    /// Wraps `inner`; encrypts with `media_key` for `media_type`.
    #[must_use]
    pub fn new(inner: W, media_key: MediaKey, media_type: MediaType) -> Self {
        Self {
            inner,
            encryptor: Encryptor::new(media_key, media_type),
            scratch: Vec::new(),
        }
    }

    /// Writes the last block and the MAC, flushes, and returns the inner writer and the
    /// file's metadata.
    ///
    /// # Errors
    /// The inner writer's error.
    pub fn finish(mut self) -> io::Result<(W, EncryptedMedia)> {
        self.scratch.clear();
        let media = self.encryptor.finish(&mut self.scratch);
        self.inner.write_all(&self.scratch)?;
        self.inner.flush()?;
        Ok((self.inner, media))
    }

    /// Plaintext bytes taken in so far.
    #[must_use]
    pub fn file_length(&self) -> u64 {
        self.encryptor.file_length()
    }
}

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let chunk = &buf[..buf.len().min(CHUNK_LEN)];
        self.scratch.clear();
        self.encryptor.update(chunk, &mut self.scratch);
        self.inner.write_all(&self.scratch)?;
        Ok(chunk.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> fmt::Debug for EncryptingWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptingWriter")
            .field("encryptor", &self.encryptor)
            .finish_non_exhaustive()
    }
}

/// A reader that encrypts: reads plaintext from the inner reader and yields the enc file
/// (ciphertext ‖ MAC), e.g. as an upload body. The metadata is available once the reader
/// returned end of file.
pub struct EncryptingReader<R: Read> {
    inner: R,
    encryptor: Option<Encryptor>,
    media: Option<EncryptedMedia>,
    input: Zeroizing<Vec<u8>>,
    output: Vec<u8>,
    output_pos: usize,
}

impl<R: Read> EncryptingReader<R> {
    /// Wraps `inner`; encrypts with `media_key` for `media_type`.
    #[must_use]
    pub fn new(inner: R, media_key: MediaKey, media_type: MediaType) -> Self {
        Self {
            inner,
            encryptor: Some(Encryptor::new(media_key, media_type)),
            media: None,
            input: Zeroizing::new(vec![0; CHUNK_LEN]),
            output: Vec::new(),
            output_pos: 0,
        }
    }

    /// The file's metadata, once the reader returned end of file (`Ok(0)`); else `None`.
    #[must_use]
    pub fn encrypted_media(&self) -> Option<&EncryptedMedia> {
        self.media.as_ref()
    }

    /// The inner reader and, if the reader reached end of file, the metadata.
    #[must_use]
    pub fn into_inner(self) -> (R, Option<EncryptedMedia>) {
        (self.inner, self.media)
    }
}

impl<R: Read> Read for EncryptingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let ready = self.output.get(self.output_pos..).unwrap_or_default();
            if !ready.is_empty() || buf.is_empty() {
                let n = ready.len().min(buf.len());
                buf[..n].copy_from_slice(&ready[..n]);
                self.output_pos += n;
                return Ok(n);
            }
            let Some(encryptor) = self.encryptor.as_mut() else {
                return Ok(0);
            };
            self.output.clear();
            self.output_pos = 0;
            let n = match self.inner.read(&mut self.input) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                if let Some(encryptor) = self.encryptor.take() {
                    self.media = Some(encryptor.finish(&mut self.output));
                }
                continue;
            }
            let plaintext = self.input.get(..n).ok_or_else(|| {
                io::Error::other("inner reader reported more bytes than its buffer holds")
            })?;
            encryptor.update(plaintext, &mut self.output);
        }
    }
}

impl<R: Read> fmt::Debug for EncryptingReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptingReader")
            .field("encryptor", &self.encryptor)
            .field("finished", &self.media.is_some())
            .finish_non_exhaustive()
    }
}

/// A writer that decrypts: enc file bytes written in, plaintext written to the inner writer.
///
/// **The plaintext reaching the inner writer is unverified until [`Self::finish`] returns
/// `Ok`** (see [`Decryptor`]): write into something you can discard, such as a temporary
/// file, and delete it on any error. A [`MediaError`] from `write` comes as an
/// [`io::ErrorKind::InvalidData`] error whose inner error is the `MediaError`.
pub struct DecryptingWriter<W: Write> {
    inner: W,
    decryptor: Decryptor,
    scratch: Zeroizing<Vec<u8>>,
}

impl<W: Write> DecryptingWriter<W> {
    /// Wraps `inner`; decrypts with `media_key` for `media_type` and checks `expected`.
    #[must_use]
    pub fn new(inner: W, media_key: &MediaKey, media_type: MediaType, expected: Expected) -> Self {
        Self {
            inner,
            decryptor: Decryptor::new(media_key, media_type, expected),
            scratch: Zeroizing::new(Vec::new()),
        }
    }

    /// Verifies the file, writes the last plaintext bytes, flushes, and returns the inner
    /// writer and what was measured.
    ///
    /// # Errors
    /// Those of [`Decryptor::finish`], or [`MediaError::Io`] if the inner writer fails.
    pub fn finish(mut self) -> Result<(W, DecryptedMedia), MediaError> {
        self.scratch.clear();
        let media = self.decryptor.finish(&mut self.scratch)?;
        self.inner
            .write_all(&self.scratch)
            .map_err(MediaError::Io)?;
        self.inner.flush().map_err(MediaError::Io)?;
        Ok((self.inner, media))
    }
}

impl<W: Write> Write for DecryptingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let chunk = &buf[..buf.len().min(CHUNK_LEN)];
        self.scratch.clear();
        self.decryptor
            .update(chunk, &mut self.scratch)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.inner.write_all(&self.scratch)?;
        Ok(chunk.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> fmt::Debug for DecryptingWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptingWriter")
            .field("decryptor", &self.decryptor)
            .finish_non_exhaustive()
    }
}
