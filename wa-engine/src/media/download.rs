//! Download (feature `runtime`): fetch an enc file, decrypt and verify it while streaming
//! (shared/protocol/06 §2.2, §2.6).
//!
//! With a direct path, the URL is built for each host of the current `media_conn`
//! (whatsmeow `DownloadMediaWithPath`); a 401, 403, 404 or 410 (an expired URL or token)
//! refreshes `media_conn` once and starts over; network errors move to the next host.
//! Without a direct path the message's `url` is fetched as is, with no retry.
//!
//! The hashes, MAC, padding and length are checked by a [`Decryptor`] as the bytes arrive;
//! the verdict comes at the end of the body. [`Transfer::download_to`] writes plaintext
//! before that verdict: on error the caller must discard everything written.

use std::future::Future;

use reqwest::header::ORIGIN as ORIGIN_HEADER;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};
use zeroize::Zeroizing;

use super::message::MediaRef;
use super::transfer::{ORIGIN, Transfer, TransferError, is_stale_status};
use super::url::download_url;
use super::{DecryptedMedia, Decryptor};
use crate::binary::Node;
use crate::error::SendError;

/// Largest capacity reserved up front for an in-memory download, bytes (16 MiB): the
/// announced length is not trusted further than this before bytes arrive.
const MAX_PREALLOC: u64 = 16 * 1024 * 1024;

impl Transfer {
    /// Downloads, verifies and returns the plaintext; nothing is returned unless every check
    /// passed (the partial plaintext is zeroized on error).
    pub(crate) async fn download<F, Fut>(
        &self,
        fetch: F,
        media: &MediaRef,
    ) -> Result<Vec<u8>, TransferError>
    where
        F: Fn(Node) -> Fut,
        Fut: Future<Output = Result<Node, SendError>>,
    {
        let capacity = media.file_length.unwrap_or(0).min(MAX_PREALLOC);
        let mut plaintext =
            Zeroizing::new(Vec::with_capacity(usize::try_from(capacity).unwrap_or(0)));
        self.download_to(fetch, media, &mut *plaintext).await?;
        Ok(std::mem::take(&mut *plaintext))
    }

    /// Downloads and streams the plaintext into `sink`; `Ok` only if the file verified.
    pub(crate) async fn download_to<F, Fut, W>(
        &self,
        fetch: F,
        media: &MediaRef,
        sink: &mut W,
    ) -> Result<DecryptedMedia, TransferError>
    where
        F: Fn(Node) -> Fut,
        Fut: Future<Output = Result<Node, SendError>>,
        W: AsyncWrite + Unpin + ?Sized,
    {
        let Some(direct_path) = media.direct_path.as_deref() else {
            let url = media
                .url
                .as_deref()
                .ok_or(super::message::MediaRefError::NoLocation)?;
            return match self.get(url).await? {
                Ok(resp) => stream(resp, media, sink).await,
                Err(status) => Err(TransferError::Status { status }),
            };
        };
        let mut conn = self.media_conn(&fetch, None).await?;
        let mut refreshed = false;
        loop {
            let mut last: Option<TransferError> = None;
            let mut stale = false;
            for host in &conn.hosts {
                let url = download_url(
                    self.scheme,
                    &host.hostname,
                    direct_path,
                    media.file_enc_sha256.as_ref(),
                    media.media_type,
                );
                match self.get(&url).await {
                    Ok(Ok(resp)) => return stream(resp, media, sink).await,
                    Ok(Err(status)) => {
                        tracing::debug!(host = %host.hostname, status, "media: download refused");
                        last = Some(TransferError::Status { status });
                        if is_stale_status(status) && !refreshed {
                            stale = true;
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(host = %host.hostname, error = %e, "media: download failed");
                        last = Some(e);
                    }
                }
            }
            if stale {
                refreshed = true;
                conn = self.media_conn(&fetch, Some(conn.fetched_at)).await?;
                continue;
            }
            return Err(last.unwrap_or(TransferError::Status { status: 0 }));
        }
    }

    /// One GET: the response when its status is a success, else the status.
    async fn get(&self, url: &str) -> Result<Result<reqwest::Response, u16>, TransferError> {
        let resp = self
            .http()
            .get(url)
            .header(ORIGIN_HEADER, ORIGIN)
            .send()
            .await
            .map_err(TransferError::Http)?;
        if resp.status().is_success() {
            Ok(Ok(resp))
        } else {
            Ok(Err(resp.status().as_u16()))
        }
    }
}

/// Feeds the body through a [`Decryptor`] into `sink`, then checks everything.
async fn stream<W: AsyncWrite + Unpin + ?Sized>(
    mut resp: reqwest::Response,
    media: &MediaRef,
    sink: &mut W,
) -> Result<DecryptedMedia, TransferError> {
    let mut decryptor = Decryptor::new(&media.media_key, media.media_type, media.expected());
    let mut out = Zeroizing::new(Vec::new());
    while let Some(chunk) = resp.chunk().await.map_err(TransferError::Http)? {
        out.clear();
        decryptor
            .update(&chunk, &mut out)
            .map_err(TransferError::Verify)?;
        sink.write_all(&out).await.map_err(TransferError::Sink)?;
    }
    out.clear();
    let verified = decryptor.finish(&mut out).map_err(TransferError::Verify)?;
    sink.write_all(&out).await.map_err(TransferError::Sink)?;
    sink.flush().await.map_err(TransferError::Sink)?;
    Ok(verified)
}
