//! The simulated media host (shared/protocol/06 §2.7): answers `media_conn` IQs with its
//! own address and a fresh auth token, takes uploads that carry a valid token, stores the
//! enc files on disk and serves them back by direct path, over plain HTTP on loopback.
//!
//! Routes ([`MediaHost::app`]):
//!
//! | Method and path | Success | Errors |
//! |---|---|---|
//! | `POST /mms/{mms type}/{token}?auth=…&token=…` | 200 `{"url", "direct_path"}` | 401 `unauthorized` (missing, unknown or expired auth), 400 `bad_token` / `token_mismatch` (token is not base64url of SHA-256 of the body), 404 `unknown_type`, 413 `too_large`, 507 `storage_full` |
//! | `GET {direct path}` (query ignored) | 200 the stored bytes, `application/octet-stream` | 404 `not_found` |
//!
//! Fault injection for tests: [`MediaHost::fail_next_downloads`] answers downloads with an
//! error status; [`MediaHost::stall_downloads`] makes downloads hang (no status, no bytes)
//! until it is switched off, like a media host that accepts connections and never answers.
//!
//! Error bodies are `{"error": {"code", "message"}}` like the control API's. The host never
//! sees keys or plaintext; it checks only the token (decoded and compared as bytes, so
//! padded whatsmeow tokens and unpadded Baileys ones both pass).
//!
//! Direct paths look like the real ones: `/v/t62.7118-24/<digits>_<digits>_n.enc?ccb=11-4&oh=…&oe=…`
//! (the `t62.*` bucket depends on the type). Blobs live in a temporary directory by default,
//! deleted when the last handle is dropped, and their total size is bounded.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Seek as _, SeekFrom, Write as _};
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt as _;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use wa_engine::binary::Node;

use crate::stanzas;

/// Settings of the media host.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MediaConfig {
    /// Directory for the blobs; `None` (default) makes a temporary one on first upload,
    /// removed with the host.
    pub dir: Option<PathBuf>,
    /// Largest single upload, bytes (default 512 MiB; the real hosts announce
    /// `maxContentLengthBytes` of about 100 MB for images and 2 GB for documents).
    pub max_file_bytes: u64,
    /// Largest total of stored blobs, bytes (default 2 GiB).
    pub max_total_bytes: u64,
    /// The `ttl` of `media_conn` replies (real: 300 s; whatsmeow caches for that long).
    pub conn_ttl: Duration,
    /// The `auth_ttl` of `media_conn` replies: how long an issued token is accepted
    /// (real: 21600 s).
    pub auth_ttl: Duration,
    /// `max_buckets` (real: 12).
    pub max_buckets: u32,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            dir: None,
            max_file_bytes: 512 * 1024 * 1024,
            max_total_bytes: 2 * 1024 * 1024 * 1024,
            conn_ttl: Duration::from_secs(300),
            auth_ttl: Duration::from_secs(21_600),
            max_buckets: 12,
        }
    }
}

/// A stored enc file.
#[derive(Debug)]
struct Blob {
    file: PathBuf,
    len: u64,
}

/// Where blobs are written.
#[derive(Debug)]
enum Storage {
    /// Not created yet.
    Unset,
    /// A temporary directory, removed on drop.
    Temp(tempfile::TempDir),
    /// A caller-given directory.
    Dir(PathBuf),
}

#[derive(Debug)]
struct HostState {
    config: MediaConfig,
    /// `host[:port]` put in `media_conn` replies and upload URLs.
    public_host: Option<String>,
    /// Whether the port also speaks TLS: upload replies then carry `https://` URLs.
    tls: bool,
    storage: Storage,
    rng: StdRng,
    /// Issued auth tokens and when they stop being accepted.
    tokens: HashMap<String, Instant>,
    /// Blobs by direct path (path part only).
    blobs: HashMap<String, Blob>,
    /// Bytes of stored blobs plus uploads in progress.
    used: u64,
    media_conns: u64,
    uploads: u64,
    downloads: u64,
    /// Statuses to answer the next downloads with (fault injection).
    fail_downloads: VecDeque<u16>,
    /// While `true`, downloads wait before answering (fault injection).
    stall_downloads: tokio::sync::watch::Sender<bool>,
}

/// The media host's shared state. Cheap to clone; the [`Router`](crate::Router) holds one,
/// [`SandboxHandle::media`](crate::SandboxHandle::media) hands it out.
#[derive(Debug, Clone)]
pub struct MediaHost {
    inner: Arc<Mutex<HostState>>,
}

impl Default for MediaHost {
    fn default() -> Self {
        Self::new(MediaConfig::default())
    }
}

impl MediaHost {
    /// A host with `config`; it has no address until [`Self::set_public_host`].
    pub fn new(config: MediaConfig) -> Self {
        let storage = match &config.dir {
            Some(dir) => Storage::Dir(dir.clone()),
            None => Storage::Unset,
        };
        Self {
            inner: Arc::new(Mutex::new(HostState {
                config,
                public_host: None,
                tls: false,
                storage,
                rng: StdRng::seed_from_u64(rand::random()),
                tokens: HashMap::new(),
                blobs: HashMap::new(),
                used: 0,
                media_conns: 0,
                uploads: 0,
                downloads: 0,
                fail_downloads: VecDeque::new(),
                stall_downloads: tokio::sync::watch::channel(false).0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HostState> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces the settings (blobs already stored stay).
    pub fn configure(&self, config: MediaConfig) {
        let mut st = self.lock();
        if let Some(dir) = &config.dir {
            st.storage = Storage::Dir(dir.clone());
        }
        st.config = config;
    }

    /// Sets the `host[:port]` announced in `media_conn` replies, e.g. `127.0.0.1:4321`.
    pub fn set_public_host(&self, host: impl Into<String>) {
        self.lock().public_host = Some(host.into());
    }

    /// Whether the media port also serves HTTPS (upload replies then carry `https://` URLs);
    /// set by [`Sandbox::start`](crate::Sandbox::start) from
    /// [`SandboxConfig::with_media_tls`](crate::SandboxConfig::with_media_tls).
    pub fn set_tls(&self, on: bool) {
        self.lock().tls = on;
    }

    /// The announced `host[:port]`, once set.
    pub fn public_host(&self) -> Option<String> {
        self.lock().public_host.clone()
    }

    /// The `media_conn` result for IQ `id`: a fresh auth token (remembered until
    /// `auth_ttl`), the lifetimes and this host (shared/protocol/06 §2.3, §2.7).
    pub fn media_conn_reply(&self, id: &str) -> Node {
        let mut st = self.lock();
        st.media_conns += 1;
        let auth = random_token(&mut st.rng);
        let expires = Instant::now() + st.config.auth_ttl;
        st.tokens.insert(auth.clone(), expires);
        let host = st
            .public_host
            .clone()
            .unwrap_or_else(|| "127.0.0.1:0".to_owned());
        let conn = Node::new("media_conn")
            .attr("auth", auth)
            .attr("ttl", st.config.conn_ttl.as_secs().to_string())
            .attr("auth_ttl", st.config.auth_ttl.as_secs().to_string())
            .attr("max_buckets", st.config.max_buckets.to_string())
            .with_children([Node::new("host").attr("hostname", host).attr(
                "maxContentLengthBytes",
                st.config.max_file_bytes.to_string(),
            )]);
        stanzas::iq_result(id, vec![conn])
    }

    /// Invalidates every issued auth token (as if `auth_ttl` had passed): the next upload
    /// with one gets 401.
    pub fn expire_auth_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// Answers the next `count` downloads with `status` (e.g. 410 for an expired URL).
    pub fn fail_next_downloads(&self, status: u16, count: usize) {
        let mut st = self.lock();
        st.fail_downloads.extend(std::iter::repeat_n(status, count));
    }

    /// While `on`, every download (those in progress and new ones) waits without answering;
    /// switching it off lets them all proceed. A test switch for a stalled media host.
    pub fn stall_downloads(&self, on: bool) {
        self.lock().stall_downloads.send_replace(on);
    }

    /// `media_conn` IQs answered so far.
    pub fn media_conn_count(&self) -> u64 {
        self.lock().media_conns
    }

    /// Uploads stored so far.
    pub fn upload_count(&self) -> u64 {
        self.lock().uploads
    }

    /// Downloads served (200) so far.
    pub fn download_count(&self) -> u64 {
        self.lock().downloads
    }

    /// Bytes stored (plus uploads in progress).
    pub fn stored_bytes(&self) -> u64 {
        self.lock().used
    }

    /// The file holding the blob at `direct_path` (its query is ignored), if stored.
    pub fn blob_file(&self, direct_path: &str) -> Option<PathBuf> {
        let key = path_part(direct_path);
        self.lock().blobs.get(key).map(|b| b.file.clone())
    }

    /// The download URL of a stored blob's direct path (this host, its scheme).
    pub(crate) fn blob_url(&self, direct_path: &str) -> String {
        let st = self.lock();
        let host = st.public_host.clone().unwrap_or_default();
        let scheme = if st.tls { "https" } else { "http" };
        format!("{scheme}://{host}{direct_path}")
    }

    /// Stores an enc file the simulated phone made itself (a history-sync blob, mms type
    /// `md-msg-hist`: shared/protocol/08 §9.2) as if it had been uploaded: same bound, same
    /// direct-path shape, downloadable like any upload (06 §2.7). Returns the direct path.
    /// Synchronous file I/O (the blobs are small).
    ///
    /// # Errors
    /// [`io::ErrorKind::StorageFull`] when the host's storage bound is reached; I/O errors of
    /// the blob directory.
    pub(crate) fn put_blob(&self, mms: &str, enc: &[u8]) -> io::Result<String> {
        let len = enc.len() as u64;
        if !self.reserve(len) {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "the media host's storage bound is reached",
            ));
        }
        let written = self.dir().and_then(|dir| {
            let n: u64 = self.lock().rng.random();
            let file = dir.join(format!("{n:016x}.enc"));
            std::fs::write(&file, enc).map(|()| file)
        });
        match written {
            Ok(file) => Ok(self.store(mms, file, len).1),
            Err(e) => {
                self.release(len);
                Err(e)
            }
        }
    }

    /// Flips one bit in the middle of the stored blob (fault injection for tamper tests).
    ///
    /// # Errors
    /// [`io::ErrorKind::NotFound`] for an unknown direct path; I/O errors of the file.
    pub fn corrupt(&self, direct_path: &str) -> io::Result<()> {
        let key = path_part(direct_path);
        let (file, len) = {
            let st = self.lock();
            let blob = st
                .blobs
                .get(key)
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "unknown direct path"))?;
            (blob.file.clone(), blob.len)
        };
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(file)?;
        let at = len / 2;
        let mut byte = [0_u8; 1];
        f.seek(SeekFrom::Start(at))?;
        io::Read::read_exact(&mut f, &mut byte)?;
        byte[0] ^= 0x01;
        f.seek(SeekFrom::Start(at))?;
        f.write_all(&byte)?;
        Ok(())
    }

    fn check_auth(&self, auth: &str) -> bool {
        let now = Instant::now();
        let mut st = self.lock();
        st.tokens.retain(|_, expires| *expires > now);
        st.tokens.contains_key(auth)
    }

    /// The blob directory, created on first use.
    fn dir(&self) -> io::Result<PathBuf> {
        let mut st = self.lock();
        match &st.storage {
            Storage::Temp(t) => Ok(t.path().to_owned()),
            Storage::Dir(d) => {
                std::fs::create_dir_all(d)?;
                Ok(d.clone())
            }
            Storage::Unset => {
                let t = tempfile::Builder::new()
                    .prefix("wa-sandbox-media")
                    .tempdir()?;
                let path = t.path().to_owned();
                st.storage = Storage::Temp(t);
                Ok(path)
            }
        }
    }

    /// Reserves `n` more bytes of storage; `false` when the total would exceed the bound.
    fn reserve(&self, n: u64) -> bool {
        let mut st = self.lock();
        match st.used.checked_add(n) {
            Some(total) if total <= st.config.max_total_bytes => {
                st.used = total;
                true
            }
            _ => false,
        }
    }

    fn release(&self, n: u64) {
        let mut st = self.lock();
        st.used = st.used.saturating_sub(n);
    }

    /// Registers an uploaded file under a fresh direct path.
    fn store(&self, mms: &str, file: PathBuf, len: u64) -> (String, String) {
        let mut st = self.lock();
        let bucket = bucket_of(mms);
        let a: u64 = st.rng.random_range(10_000_000..100_000_000);
        let b: u64 = st
            .rng
            .random_range(1_000_000_000_000_000..10_000_000_000_000_000);
        let c: u64 = st
            .rng
            .random_range(100_000_000_000_000_000..1_000_000_000_000_000_000);
        let oh = random_token(&mut st.rng);
        let oe: u32 = st.rng.random();
        let path = format!("/v/{bucket}/{a}_{b}_{c}_n.enc");
        let direct_path = format!("{path}?ccb=11-4&oh={oh}&oe={oe:08X}&_nc_sid=5e03e0");
        st.blobs.insert(path, Blob { file, len });
        st.uploads += 1;
        let host = st.public_host.clone().unwrap_or_default();
        let scheme = if st.tls { "https" } else { "http" };
        (format!("{scheme}://{host}{direct_path}"), direct_path)
    }

    /// The axum app serving uploads and downloads (serve it with `axum::serve`).
    pub fn app(&self) -> axum::Router {
        axum::Router::new()
            .route("/mms/{mms}/{token}", post(upload))
            .route("/v/{*rest}", get(download))
            .layer(DefaultBodyLimit::disable())
            .with_state(self.clone())
    }
}

/// The URL bucket of a type, as in real direct paths (`t62.7118-24` for images).
fn bucket_of(mms: &str) -> &'static str {
    match mms {
        "video" => "t62.7161-24",
        "audio" => "t62.7114-24",
        "document" => "t62.7119-24",
        "sticker-pack" | "thumbnail-sticker-pack" => "t62.15575-24",
        "md-msg-hist" | "md-app-state" => "t62.36145-24",
        _ => "t62.7118-24",
    }
}

/// mms types the host accepts (whatsmeow `upload.go` / shared/protocol/06 §2.1).
const MMS_TYPES: [&str; 9] = [
    "image",
    "video",
    "audio",
    "document",
    "md-msg-hist",
    "md-app-state",
    "thumbnail-link",
    "sticker-pack",
    "thumbnail-sticker-pack",
];

fn random_token(rng: &mut StdRng) -> String {
    let mut raw = [0_u8; 24];
    rng.fill(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn path_part(direct_path: &str) -> &str {
    direct_path.split('?').next().unwrap_or(direct_path)
}

/// Decodes a base64url token with or without `=` padding to 32 bytes.
fn decode_token(token: &str) -> Option<[u8; 32]> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .ok()?;
    <[u8; 32]>::try_from(bytes.as_slice()).ok()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct UploadQuery {
    auth: Option<String>,
    token: Option<String>,
}

async fn upload(
    State(host): State<MediaHost>,
    Path((mms, token)): Path<(String, String)>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !MMS_TYPES.contains(&mms.as_str()) {
        return error(StatusCode::NOT_FOUND, "unknown_type", "unknown media type");
    }
    if !query.auth.as_deref().is_some_and(|a| host.check_auth(a)) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing, unknown or expired auth token",
        );
    }
    let Some(expected) = decode_token(&token) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_token",
            "token is not base64url of 32 bytes",
        );
    };
    if query
        .token
        .as_deref()
        .is_some_and(|t| decode_token(t) != Some(expected))
    {
        return error(
            StatusCode::BAD_REQUEST,
            "token_mismatch",
            "query token differs from the path token",
        );
    }
    let max_file = host.lock().config.max_file_bytes;
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max_file) {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "file exceeds the host's limit",
        );
    }
    let dir = match host.dir() {
        Ok(dir) => dir,
        Err(e) => {
            tracing::warn!(error = %e, "media host: no blob directory");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage_error",
                "cannot store",
            );
        }
    };
    let name = {
        let mut st = host.lock();
        let n: u64 = st.rng.random();
        format!("{n:016x}.enc")
    };
    let file = dir.join(name);
    match receive(&host, body, &file, max_file, &expected).await {
        Ok(len) => {
            let (url, direct_path) = host.store(&mms, file, len);
            tracing::debug!(%mms, len, %direct_path, "media host: stored");
            Json(serde_json::json!({"url": url, "direct_path": direct_path})).into_response()
        }
        Err(rejection) => {
            let _ = tokio::fs::remove_file(&file).await;
            rejection
        }
    }
}

/// Streams the body to `file`, hashing it and keeping within the limits; the stored length.
async fn receive(
    host: &MediaHost,
    body: Body,
    file: &FsPath,
    max_file: u64,
    expected: &[u8; 32],
) -> Result<u64, Response> {
    let storage_error = |e: io::Error| {
        tracing::warn!(error = %e, "media host: write failed");
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage_error",
            "cannot store",
        )
    };
    let mut out = tokio::fs::File::create(file).await.map_err(storage_error)?;
    let mut hasher = Sha256::new();
    let mut len = 0_u64;
    let mut stream = body.into_data_stream();
    let outcome = loop {
        let chunk = match stream.next().await {
            None => break Ok(()),
            Some(Ok(chunk)) => chunk,
            Some(Err(_)) => {
                break Err(error(
                    StatusCode::BAD_REQUEST,
                    "bad_body",
                    "upload body broke off",
                ));
            }
        };
        let n = chunk.len() as u64;
        if len + n > max_file {
            break Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "file exceeds the host's limit",
            ));
        }
        if !host.reserve(n) {
            break Err(error(
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_full",
                "the host's storage bound is reached",
            ));
        }
        len += n;
        hasher.update(&chunk);
        if let Err(e) = out.write_all(&chunk).await {
            break Err(storage_error(e));
        }
    };
    let outcome = match outcome {
        Ok(()) => out.flush().await.map_err(storage_error),
        Err(e) => Err(e),
    };
    if let Err(rejection) = outcome {
        host.release(len);
        return Err(rejection);
    }
    if hasher.finalize().as_slice() != expected {
        host.release(len);
        return Err(error(
            StatusCode::BAD_REQUEST,
            "token_mismatch",
            "token is not the SHA-256 of the body",
        ));
    }
    Ok(len)
}

async fn download(State(host): State<MediaHost>, Path(rest): Path<String>) -> Response {
    let key = format!("/v/{rest}");
    let mut stalled = host.lock().stall_downloads.subscribe();
    // The sender lives as long as the host; an error means the host is gone.
    let _ = stalled.wait_for(|on| !*on).await;
    let found = {
        let mut st = host.lock();
        if let Some(status) = st.fail_downloads.pop_front() {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::GONE);
            return error(status, "injected", "fault injected by the test");
        }
        st.blobs.get(&key).map(|b| (b.file.clone(), b.len))
    };
    let Some((file, len)) = found else {
        return error(StatusCode::NOT_FOUND, "not_found", "unknown direct path");
    };
    let file = match tokio::fs::File::open(&file).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "media host: blob unreadable");
            return error(StatusCode::NOT_FOUND, "not_found", "blob unreadable");
        }
    };
    host.lock().downloads += 1;
    let stream = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0_u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, io::Error>(Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_decode_with_or_without_padding() {
        let raw = [7_u8; 32];
        let unpadded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let padded = base64::engine::general_purpose::URL_SAFE.encode(raw);
        assert!(padded.ends_with('='));
        assert_eq!(decode_token(&unpadded), Some(raw));
        assert_eq!(decode_token(&padded), Some(raw));
        assert_eq!(decode_token("short"), None);
    }

    #[test]
    fn media_conn_reply_issues_a_token_that_expires_with_the_tokens() {
        let host = MediaHost::default();
        host.set_public_host("127.0.0.1:9");
        let reply = host.media_conn_reply("7");
        let conn = reply.child_by_tag("media_conn").unwrap();
        let auth = conn.get_attr_str("auth").unwrap().to_owned();
        assert_eq!(
            conn.child_by_tag("host").unwrap().get_attr_str("hostname"),
            Some("127.0.0.1:9")
        );
        assert!(host.check_auth(&auth));
        host.expire_auth_tokens();
        assert!(!host.check_auth(&auth));
        assert_eq!(host.media_conn_count(), 1);
    }

    #[test]
    fn storage_reservations_are_bounded() {
        let host = MediaHost::new(MediaConfig {
            max_total_bytes: 100,
            ..MediaConfig::default()
        });
        assert!(host.reserve(60));
        assert!(!host.reserve(41));
        host.release(60);
        assert!(host.reserve(100));
    }
}
