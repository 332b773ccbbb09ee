//! Media end to end: the real `Client` uploads to wa-sandbox's media host (after a
//! `media_conn` IQ), builds each kind of media message, reads the download reference back
//! from it and downloads: bytes identical, hashes verified. Also: tampered blobs are
//! rejected with typed errors, an expired auth token and an expired URL each refresh
//! `media_conn` and succeed, a source that changes between passes aborts the upload.
#![cfg(feature = "runtime")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest as _, Sha256};
use wa_engine::media::message::{
    self, AudioOptions, DocumentOptions, ImageOptions, StickerOptions, VideoOptions,
};
use wa_engine::media::{HashKind, MediaRef, MediaSource, MediaType, probe};
use wa_engine::{MediaError, TransferError};
use wa_sandbox::MediaConfig;

mod media_support;
use media_support::{connected, pattern};

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A PNG header for a 640 x 480 image followed by filler (the host never decodes it).
fn png_like(len: usize) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend_from_slice(&640_u32.to_be_bytes());
    png.extend_from_slice(&480_u32.to_be_bytes());
    png.extend(pattern(1, len - png.len()));
    png
}

#[tokio::test]
async fn each_media_type_round_trips_through_the_sandbox_host() -> anyhow::Result<()> {
    let setup = connected(MediaConfig::default()).await?;
    let client = &setup.client;

    let image = png_like(50_000);
    let (w, h) = probe::image_dimensions(&image).expect("png header");
    let cases: Vec<(MediaType, Vec<u8>, wa_proto::wa::Message)> = {
        let mut cases = Vec::new();
        let up = client.upload(MediaType::Image, image.clone()).await?;
        cases.push((
            MediaType::Image,
            image,
            message::image(
                &up,
                ImageOptions {
                    mimetype: "image/png".into(),
                    caption: Some("a photo".into()),
                    width: Some(w),
                    height: Some(h),
                    ..ImageOptions::default()
                },
            ),
        ));
        let video = pattern(2, 300_001);
        let up = client.upload(MediaType::Video, video.clone()).await?;
        cases.push((
            MediaType::Video,
            video,
            message::video(
                &up,
                VideoOptions {
                    mimetype: "video/mp4".into(),
                    seconds: Some(3),
                    ..VideoOptions::default()
                },
            ),
        ));
        let voice = pattern(3, 12_345);
        let up = client.upload(MediaType::Audio, voice.clone()).await?;
        cases.push((
            MediaType::Audio,
            voice,
            message::audio(
                &up,
                AudioOptions {
                    mimetype: "audio/ogg; codecs=opus".into(),
                    seconds: Some(4),
                    ptt: true,
                    waveform: None,
                },
            ),
        ));
        let pdf = b"%PDF-1.4\n2 0 obj << /Type /Pages /Count 2 >> endobj\n".to_vec();
        let up = client.upload(MediaType::Document, pdf.clone()).await?;
        cases.push((
            MediaType::Document,
            pdf.clone(),
            message::document(
                &up,
                DocumentOptions {
                    mimetype: "application/pdf".into(),
                    file_name: Some("invoice.pdf".into()),
                    page_count: probe::pdf_page_count(&pdf),
                    ..DocumentOptions::default()
                },
            ),
        ));
        let webp = pattern(5, 16); // exactly one AES block: padding adds a whole block
        let up = client.upload(MediaType::Sticker, webp.clone()).await?;
        cases.push((
            MediaType::Sticker,
            webp,
            message::sticker(
                &up,
                StickerOptions {
                    mimetype: "image/webp".into(),
                    ..StickerOptions::default()
                },
            ),
        ));
        cases
    };
    assert_eq!(setup.sandbox.media().upload_count(), 5);
    // One media_conn for all five uploads: the reply is cached for its ttl.
    assert_eq!(setup.sandbox.media().media_conn_count(), 1);

    for (media_type, plaintext, msg) in cases {
        let media = MediaRef::from_message(&msg)?.expect("a media message");
        assert_eq!(media.media_type, media_type);
        assert_eq!(media.file_sha256, Some(sha256(&plaintext)));
        assert_eq!(media.file_length, Some(plaintext.len() as u64));
        let path = media.direct_path.as_deref().expect("direct path");
        assert!(path.starts_with("/v/t62."), "{path}");
        assert!(path.contains(".enc?ccb=11-4"), "{path}");
        // The host stores exactly the enc file whose hash the message announces.
        let blob = std::fs::read(setup.sandbox.media().blob_file(path).expect("stored"))?;
        assert_eq!(Some(sha256(&blob)), media.file_enc_sha256);

        let downloaded = client.download(&media).await?;
        assert_eq!(downloaded, plaintext, "{media_type}");

        let mut streamed = Vec::new();
        let verified = client.download_to(&media, &mut streamed).await?;
        assert_eq!(streamed, plaintext);
        assert_eq!(verified.file_sha256, sha256(&plaintext));
    }
    assert!(setup.sandbox.media().blob_file("/v/unknown.enc").is_none());
    setup.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn file_source_is_streamed_and_downloads_to_a_file_identically() -> anyhow::Result<()> {
    let setup = connected(MediaConfig::default()).await?;
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("clip.mp4");
    let plaintext = pattern(9, 3 * 1024 * 1024 + 7);
    std::fs::write(&src, &plaintext)?;

    let up = setup
        .client
        .upload(MediaType::Video, MediaSource::Path(src))
        .await?;
    assert_eq!(up.file_length, plaintext.len() as u64);
    assert_eq!(up.file_sha256, sha256(&plaintext));

    let out = dir.path().join("clip.out");
    let mut file = tokio::fs::File::create(&out).await?;
    setup.client.download_to(&up.to_ref(), &mut file).await?;
    drop(file);
    assert_eq!(std::fs::read(out)?, plaintext);
    setup.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn tampered_blob_is_rejected_with_a_typed_error() -> anyhow::Result<()> {
    let setup = connected(MediaConfig::default()).await?;
    let up = setup
        .client
        .upload(MediaType::Image, png_like(40_000))
        .await?;
    setup.sandbox.media().corrupt(&up.direct_path)?;

    // With the announced fileEncSha256, the hash check fails first (whatsmeow's order).
    let err = setup.client.download(&up.to_ref()).await.unwrap_err();
    assert!(
        matches!(
            err.verification(),
            Some(MediaError::HashMismatch {
                which: HashKind::FileEncSha256
            })
        ),
        "{err:?}"
    );
    // Without it, the MAC catches the flipped bit.
    let mut no_hash = up.to_ref();
    no_hash.file_enc_sha256 = None;
    let mut partial = Vec::new();
    let err = setup
        .client
        .download_to(&no_hash, &mut partial)
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransferError::Verify(MediaError::MacMismatch)),
        "{err:?}"
    );
    setup.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn expired_auth_token_refreshes_media_conn_and_the_upload_succeeds() -> anyhow::Result<()> {
    let setup = connected(MediaConfig::default()).await?;
    let host = setup.sandbox.media();
    setup
        .client
        .upload(MediaType::Audio, pattern(4, 999))
        .await?;
    assert_eq!(host.media_conn_count(), 1);

    // The cached media_conn is within its ttl, but the host no longer accepts its token:
    // 401, refresh, retry.
    host.expire_auth_tokens();
    let up = setup
        .client
        .upload(MediaType::Audio, pattern(5, 2000))
        .await?;
    assert_eq!(host.media_conn_count(), 2);
    assert_eq!(host.upload_count(), 2);
    assert_eq!(setup.client.download(&up.to_ref()).await?, pattern(5, 2000));
    setup.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn expired_ttl_fetches_a_new_media_conn_before_uploading() -> anyhow::Result<()> {
    let mut media = MediaConfig::default();
    media.conn_ttl = std::time::Duration::ZERO;
    let setup = connected(media).await?;
    setup.client.upload(MediaType::Image, png_like(100)).await?;
    setup.client.upload(MediaType::Image, png_like(200)).await?;
    assert_eq!(setup.sandbox.media().media_conn_count(), 2);
    setup.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn expired_url_refreshes_media_conn_and_the_download_is_retried() -> anyhow::Result<()> {
    let setup = connected(MediaConfig::default()).await?;
    let host = setup.sandbox.media();
    let plaintext = pattern(6, 70_000);
    let up = setup
        .client
        .upload(MediaType::Document, plaintext.clone())
        .await?;
    host.fail_next_downloads(410, 1);
    assert_eq!(setup.client.download(&up.to_ref()).await?, plaintext);
    assert_eq!(host.media_conn_count(), 2);

    // An unknown path stays 404 after the one refresh.
    let mut missing = up.to_ref();
    missing.direct_path = Some("/v/t62.7119-24/0_0_0_n.enc?ccb=11-4".into());
    let err = setup.client.download(&missing).await.unwrap_err();
    assert!(
        matches!(err, TransferError::Status { status: 404 }),
        "{err:?}"
    );
    assert_eq!(host.media_conn_count(), 3);
    setup.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn source_that_changes_between_passes_aborts_the_upload() -> anyhow::Result<()> {
    let setup = connected(MediaConfig::default()).await?;
    let opened = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&opened);
    let source = MediaSource::reopen(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        Ok(std::io::Cursor::new(pattern(10 + 2 * n as u64, 200_000)))
    });
    let err = setup
        .client
        .upload(MediaType::Document, source)
        .await
        .unwrap_err();
    assert!(matches!(err, TransferError::SourceChanged), "{err:?}");
    assert_eq!(opened.load(Ordering::SeqCst), 2);
    assert_eq!(setup.sandbox.media().upload_count(), 0);
    setup.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn upload_larger_than_the_host_limit_is_refused_before_sending() -> anyhow::Result<()> {
    let mut media = MediaConfig::default();
    media.max_file_bytes = 1000;
    let setup = connected(media).await?;
    let err = setup
        .client
        .upload(MediaType::Image, pattern(1, 5000))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransferError::TooLarge { limit: 1000, .. }),
        "{err:?}"
    );
    setup.shutdown().await;
    Ok(())
}
