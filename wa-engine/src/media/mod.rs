//! WhatsApp media encryption, sans-IO: media keys, streaming encryption and verified
//! decryption of enc files (shared/protocol/06 §2.1–2.2).
//!
//! A low-level layer: no HTTP, no files, no randomness (keys come in; [`MediaKey::generate`]
//! takes the caller's RNG). For an upload, a 32-byte [`MediaKey`] is expanded with HKDF-SHA256
//! under the [`MediaType`]'s info string into IV, cipher key, MAC key and ref key; then
//!
//! ```text
//! ciphertext    = AES-256-CBC(cipherKey, IV, PKCS7(plaintext))
//! mac10         = HMAC-SHA256(macKey, IV ‖ ciphertext)[..10]
//! enc file      = ciphertext ‖ mac10            (the bytes uploaded and downloaded)
//! fileSha256    = SHA-256(plaintext)
//! fileEncSha256 = SHA-256(enc file)
//! ```
//!
//! Pieces:
//! - [`Encryptor`] / [`encrypt`]: plaintext chunks in, enc file out, [`EncryptedMedia`] at
//!   the end;
//! - [`Decryptor`] / [`decrypt`]: enc file chunks in, plaintext out, verification against
//!   [`Expected`] at the end (whatsmeow's checks: `fileEncSha256`, MAC, padding,
//!   `fileLength`, `fileSha256`). **Streamed plaintext is unverified until
//!   [`Decryptor::finish`] returns `Ok`**; [`decrypt`] returns plaintext only after that;
//! - [`EncryptingWriter`], [`EncryptingReader`], [`DecryptingWriter`]: `std::io` adapters.
//!
//! Both streaming types hold a few dozen bytes at most ([`Encryptor::MAX_BUFFERED`],
//! [`Decryptor::MAX_BUFFERED`]), so a 100 MB video never sits whole in memory.
//!
//! Transfer (shared/protocol/06 §2.3–2.6):
//! - [`MediaConn`]: the `media_conn` IQ and its reply (hosts, auth token, expiry), sans-IO;
//! - `url`: upload and download URLs and the upload reply, sans-IO;
//! - [`message`]: building image / video / audio / document / sticker messages from an
//!   [`UploadedMedia`], and reading a [`MediaRef`] back from a received one;
//! - [`probe`]: image dimensions, audio duration, PDF page count, thumbnails;
//! - with feature `runtime`: HTTP upload and download ([`MediaSource`], [`TransferError`]),
//!   driven by [`Client::upload`](crate::Client::upload) and
//!   [`Client::download`](crate::Client::download).
//!
//! Sources: whatsmeow `download.go`, `upload.go`; Baileys `src/Utils/messages-media.ts`
//! (getMediaKeys, encryptedStream); vectors in shared/vectors/media (Baileys 7.0.0-rc14).

mod conn;
mod decrypt;
#[cfg(feature = "runtime")]
mod download;
mod encrypt;
mod error;
mod io;
mod keys;
pub mod message;
pub mod probe;
#[cfg(feature = "runtime")]
mod transfer;
#[cfg(feature = "runtime")]
mod upload;
mod url;

pub use decrypt::{DecryptedMedia, Decryptor, Expected, decrypt};
pub use encrypt::{EncryptedMedia, Encryptor, enc_file_length, encrypt, upload_token};
pub use error::{HashKind, MediaError};
pub use io::{CHUNK_LEN, DecryptingWriter, EncryptingReader, EncryptingWriter};
pub use keys::{EXPANDED_MEDIA_KEY_LEN, ExpandedMediaKey, MEDIA_KEY_LEN, MediaKey, MediaType};

pub use conn::{HostKind, MediaConn, MediaConnError, MediaHost};
pub use message::{MediaRef, MediaRefError, UploadedMedia};
#[cfg(feature = "runtime")]
pub(crate) use transfer::Transfer;
#[cfg(feature = "runtime")]
pub use transfer::{MediaSource, TransferConfig, TransferError};
pub use url::{Scheme, UploadResponse, UrlError};

/// AES block length, bytes.
pub const BLOCK_LEN: usize = 16;
/// Length of the truncated HMAC-SHA256 that ends every enc file, bytes
/// (whatsmeow `download.go` mediaHMACLength).
pub const MAC_LEN: usize = 10;
