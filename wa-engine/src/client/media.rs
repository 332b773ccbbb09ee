//! Media on the [`Client`]: `media_conn`, upload and download (shared/protocol/06 §2).
//!
//! ```no_run
//! use wa_engine::Client;
//! use wa_engine::media::{MediaRef, MediaSource, MediaType, message};
//!
//! # async fn demo(client: Client) -> Result<(), Box<dyn std::error::Error>> {
//! // Upload a file (streamed: never whole in memory) and build its message.
//! let uploaded = client
//!     .upload(MediaType::Document, MediaSource::Path("invoice.pdf".into()))
//!     .await?;
//! let msg = message::document(&uploaded, message::DocumentOptions {
//!     mimetype: "application/pdf".into(),
//!     file_name: Some("invoice.pdf".into()),
//!     ..Default::default()
//! });
//! // ... send `msg`; on the receiving side:
//! if let Some(media) = MediaRef::from_message(&msg)? {
//!     let plaintext = client.download(&media).await?; // verified
//!     # let _ = plaintext;
//! }
//! # Ok(()) }
//! ```

use tokio::io::AsyncWrite;

use super::Client;
use crate::binary::Node;
use crate::conn::SendError;
use crate::media::{
    DecryptedMedia, MediaConn, MediaRef, MediaSource, MediaType, TransferError, UploadedMedia,
};

impl Client {
    /// The current `media_conn` (hosts, auth token, lifetimes): the cached reply while it is
    /// valid, else a fresh one from a `w:m` IQ (shared/protocol/06 §2.3).
    ///
    /// # Errors
    /// [`TransferError::MediaConnRequest`] when the IQ cannot be sent (not logged in,
    /// timeout), [`TransferError::MediaConn`] for an error reply or an unusable one.
    pub async fn media_conn(&self) -> Result<MediaConn, TransferError> {
        self.media
            .media_conn(|iq| self.iq_for_media(iq), None)
            .await
    }

    /// Fetches a fresh `media_conn` even if the cached one is still valid.
    ///
    /// # Errors
    /// As [`Self::media_conn`].
    pub async fn refresh_media_conn(&self) -> Result<MediaConn, TransferError> {
        let stale = Some(std::time::Instant::now());
        self.media
            .media_conn(|iq| self.iq_for_media(iq), stale)
            .await
    }

    /// Encrypts `source` with a fresh media key and uploads it as `media_type`, streaming:
    /// a [`MediaSource::Path`] is read twice (hash, then send) in 64 KiB chunks and never
    /// sits whole in memory. Returns what a media message needs; build one with
    /// [`media::message`](crate::media::message).
    ///
    /// # Errors
    /// [`TransferError`]: `media_conn` failures, [`TransferError::Status`] /
    /// [`TransferError::Http`] when every host failed (after one `media_conn` refresh on
    /// 401/403), [`TransferError::TooLarge`], [`TransferError::Source`],
    /// [`TransferError::SourceChanged`], [`TransferError::Url`] for a type without upload
    /// path or a bad reply.
    pub async fn upload(
        &self,
        media_type: MediaType,
        source: impl Into<MediaSource>,
    ) -> Result<UploadedMedia, TransferError> {
        self.media
            .upload(|iq| self.iq_for_media(iq), media_type, source.into())
            .await
    }

    /// Downloads a media file, verifies `fileEncSha256`, the MAC, the padding, `fileLength`
    /// and `fileSha256`, and returns the plaintext only if all passed. An expired URL or
    /// token (401/403/404/410) refreshes `media_conn` once and retries on every host.
    ///
    /// # Errors
    /// [`TransferError::Verify`] for a tampered or corrupted file (e.g.
    /// [`MediaError::MacMismatch`](crate::MediaError::MacMismatch)); otherwise as
    /// [`Self::upload`] for the transfer.
    pub async fn download(&self, media: &MediaRef) -> Result<Vec<u8>, TransferError> {
        self.media.download(|iq| self.iq_for_media(iq), media).await
    }

    /// Downloads a media file and streams its plaintext into `sink` (bounded memory).
    ///
    /// **The plaintext is written before it is verified**: unless this returns `Ok`, the
    /// caller must discard everything written (e.g. write to a temporary file and delete it
    /// on error). No retry happens once bytes were written.
    ///
    /// # Errors
    /// As [`Self::download`], plus [`TransferError::Sink`] when writing fails.
    pub async fn download_to<W>(
        &self,
        media: &MediaRef,
        sink: &mut W,
    ) -> Result<DecryptedMedia, TransferError>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        self.media
            .download_to(|iq| self.iq_for_media(iq), media, sink)
            .await
    }

    async fn iq_for_media(&self, iq: Node) -> Result<Node, SendError> {
        self.send_iq(iq).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::UrlError;

    #[test]
    fn media_errors_are_send_and_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<TransferError>();
        check::<UrlError>();
        let _ = MediaType::Image;
    }
}
