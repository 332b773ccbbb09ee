//! Upload (feature `runtime`): encrypt while sending, to the hosts of the current
//! `media_conn` (shared/protocol/06 §2.4).
//!
//! A streamed source is read twice with the same media key: the first pass computes
//! `fileEncSha256` for the upload token, the second encrypts into the request body on a
//! blocking thread, at most [`BODY_CHANNEL_CHUNKS`] × 64 KiB ahead of the socket. If the two
//! passes disagree (the file changed) the body fails before its end and the upload is
//! aborted with [`TransferError::SourceChanged`].
//!
//! Hosts are tried in order (Baileys); a 401 or 403 refreshes `media_conn` once and starts
//! over (whatsapp-rust); other failures move to the next host.

use std::future::Future;
use std::io::{self, Read};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use reqwest::header::{
    CONTENT_LENGTH, CONTENT_TYPE, ORIGIN as ORIGIN_HEADER, REFERER as REFERER_HEADER,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::message::UploadedMedia;
use super::transfer::{
    BODY_CHANNEL_CHUNKS, ChannelBody, MediaSource, ORIGIN, REFERER, Transfer, TransferError,
    is_stale_status,
};
use super::url::{UploadResponse, upload_url};
use super::{CHUNK_LEN, EncryptedMedia, EncryptingReader, MediaKey, MediaType, encrypt};
use crate::binary::Node;
use crate::error::SendError;

/// The plaintext prepared for sending: the enc file in memory, or a source to stream again.
enum Prepared {
    InMemory(Bytes),
    Streamed(MediaSource),
}

/// Why the body producer stopped early.
enum ProducerError {
    Read(io::Error),
    Changed,
}

impl Transfer {
    /// Encrypts and uploads `source` as `media_type`; `fetch` sends a `media_conn` IQ.
    pub(crate) async fn upload<F, Fut>(
        &self,
        fetch: F,
        media_type: MediaType,
        source: MediaSource,
    ) -> Result<UploadedMedia, TransferError>
    where
        F: Fn(Node) -> Fut,
        Fut: Future<Output = Result<Node, SendError>>,
    {
        if media_type.upload_path().is_none() {
            return Err(super::url::UrlError::NoUploadPath(media_type).into());
        }
        let key = MediaKey::generate(&mut rand::rng());
        let (prepared, media) = prepare(source, key, media_type).await?;
        let enc_len = media.enc_file_length();

        let mut conn = self.media_conn(&fetch, None).await?;
        let mut refreshed = false;
        loop {
            let mut last: Option<TransferError> = None;
            let mut stale = false;
            for host in &conn.hosts {
                if let Some(limit) = host.max_content_length
                    && enc_len > limit
                {
                    last = Some(TransferError::TooLarge {
                        len: enc_len,
                        limit,
                    });
                    continue;
                }
                let url = upload_url(
                    self.scheme,
                    &host.hostname,
                    media_type,
                    &media.file_enc_sha256,
                    conn.auth(),
                )?;
                let (body, producer) = match &prepared {
                    Prepared::InMemory(enc) => (reqwest::Body::from(enc.clone()), None),
                    Prepared::Streamed(source) => {
                        let (body, task) = stream_body(source, &media, media_type, enc_len);
                        (body, Some(task))
                    }
                };
                let sent = self
                    .http()
                    .post(url)
                    .header(ORIGIN_HEADER, ORIGIN)
                    .header(REFERER_HEADER, REFERER)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, enc_len)
                    .body(body)
                    .send()
                    .await;
                let reply = match sent {
                    Ok(resp) if resp.status().is_success() => resp.bytes().await,
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        // The host may answer before reading the whole body: do not wait
                        // for the producer, it stops once hyper drops the body.
                        drop((resp, producer));
                        tracing::debug!(host = %host.hostname, status, "media: upload refused");
                        last = Some(TransferError::Status { status });
                        if is_stale_status(status) && !refreshed {
                            stale = true;
                            break;
                        }
                        continue;
                    }
                    Err(e) => Err(e),
                };
                producer_outcome(producer).await?;
                match reply {
                    Ok(body) => {
                        let reply = UploadResponse::parse(&body)?;
                        tracing::debug!(host = %host.hostname, %media_type, len = enc_len, "media: uploaded");
                        return Ok(UploadedMedia::new(media_type, media, reply, unix_now()));
                    }
                    Err(e) => {
                        tracing::debug!(host = %host.hostname, error = %e, "media: upload failed");
                        last = Some(TransferError::Http(e));
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
}

/// First pass: the enc file in memory for bytes, only the hashes for streamed sources.
async fn prepare(
    source: MediaSource,
    key: MediaKey,
    media_type: MediaType,
) -> Result<(Prepared, EncryptedMedia), TransferError> {
    tokio::task::spawn_blocking(move || match source {
        MediaSource::Bytes(bytes) => {
            let (enc, media) = encrypt(key, media_type, &bytes);
            Ok((Prepared::InMemory(Bytes::from(enc)), media))
        }
        streamed => {
            let reader = streamed.open().map_err(TransferError::Source)?;
            let mut enc = EncryptingReader::new(reader, key, media_type);
            io::copy(&mut enc, &mut io::sink()).map_err(TransferError::Source)?;
            let (_, media) = enc.into_inner();
            let media = media.ok_or(TransferError::Task)?;
            Ok((Prepared::Streamed(streamed), media))
        }
    })
    .await
    .map_err(|_| TransferError::Task)?
}

/// Second pass: a blocking task encrypts the source again into a bounded channel.
fn stream_body(
    source: &MediaSource,
    first_pass: &EncryptedMedia,
    media_type: MediaType,
    enc_len: u64,
) -> (reqwest::Body, JoinHandle<Result<(), ProducerError>>) {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(BODY_CHANNEL_CHUNKS);
    let opened = source.open();
    let key = first_pass.media_key.clone();
    let expected = first_pass.file_enc_sha256;
    let task = tokio::task::spawn_blocking(move || {
        let reader = opened.map_err(ProducerError::Read)?;
        let mut enc = EncryptingReader::new(reader, key, media_type);
        let mut buf = vec![0_u8; CHUNK_LEN];
        loop {
            let n = match enc.read(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    let _ = tx.blocking_send(Err(io::Error::new(e.kind(), "media source")));
                    return Err(ProducerError::Read(e));
                }
            };
            if n == 0 {
                break;
            }
            let chunk = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
            let finished = enc.encrypted_media().is_some();
            if finished && enc.encrypted_media().map(|m| m.file_enc_sha256) != Some(expected) {
                // The last bytes (padding block and MAC) must not reach the host.
                let _ = tx.blocking_send(Err(io::Error::other("media source changed")));
                return Err(ProducerError::Changed);
            }
            if tx.blocking_send(Ok(chunk)).is_err() {
                // The request was dropped; its error is reported by the caller.
                return Ok(());
            }
        }
        if enc.encrypted_media().map(|m| m.file_enc_sha256) != Some(expected) {
            let _ = tx.blocking_send(Err(io::Error::other("media source changed")));
            return Err(ProducerError::Changed);
        }
        Ok(())
    });
    (reqwest::Body::wrap(ChannelBody::new(rx, enc_len)), task)
}

/// The producer's failure, if any, takes precedence over the HTTP outcome it caused.
async fn producer_outcome(
    producer: Option<JoinHandle<Result<(), ProducerError>>>,
) -> Result<(), TransferError> {
    let Some(task) = producer else {
        return Ok(());
    };
    match task.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(ProducerError::Read(e))) => Err(TransferError::Source(e)),
        Ok(Err(ProducerError::Changed)) => Err(TransferError::SourceChanged),
        Err(_) => Err(TransferError::Task),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
