//! The media host's HTTP behaviour (shared/protocol/06 §2.7), through `oneshot` on its axum
//! app: uploads need an auth token issued by `media_conn` and a token that is the SHA-256 of
//! the body; blobs are served back by direct path whatever the query; every refusal has its
//! status and error code.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use tower::ServiceExt as _;
use wa_sandbox::{MediaConfig, MediaHost};

fn token(body: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(body))
}

/// A fresh auth token, as a `media_conn` reply hands it out.
fn auth(host: &MediaHost) -> String {
    let reply = host.media_conn_reply("1");
    let conn = reply.child_by_tag("media_conn").expect("media_conn child");
    for attr in ["ttl", "auth_ttl", "max_buckets"] {
        assert!(conn.get_attr_str(attr).is_some(), "{attr}");
    }
    conn.get_attr_str("auth").expect("auth").to_owned()
}

async fn call(host: &MediaHost, req: Request<Body>) -> (StatusCode, Vec<u8>) {
    let resp = host.app().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, body.to_vec())
}

fn post(path_token: &str, query: &str, body: Vec<u8>) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(format!("/mms/image/{path_token}?{query}"))
        .header("content-length", body.len())
        .body(Body::from(body))
        .expect("request")
}

fn get(path: &str) -> Request<Body> {
    Request::builder()
        .uri(path)
        .body(Body::empty())
        .expect("request")
}

fn error_code(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).expect("json error body");
    v["error"]["code"].as_str().unwrap_or_default().to_owned()
}

fn host() -> MediaHost {
    let host = MediaHost::new(MediaConfig::default());
    host.set_public_host("127.0.0.1:7");
    host
}

#[tokio::test]
async fn upload_with_issued_auth_is_stored_and_served_by_direct_path() {
    let host = host();
    let auth = auth(&host);
    let body = b"enc file bytes".repeat(100);
    let t = token(&body);
    let (status, reply) = call(
        &host,
        post(&t, &format!("auth={auth}&token={t}"), body.clone()),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply)
    );
    let reply: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    let direct_path = reply["direct_path"].as_str().unwrap().to_owned();
    assert!(direct_path.starts_with("/v/t62.7118-24/"), "{direct_path}");
    assert!(direct_path.contains("_n.enc?ccb=11-4"), "{direct_path}");
    assert_eq!(
        reply["url"].as_str(),
        Some(format!("http://127.0.0.1:7{direct_path}").as_str())
    );
    assert_eq!(host.stored_bytes(), body.len() as u64);

    // Served on the path alone; whatsmeow's extra query parameters are ignored.
    let (status, got) = call(
        &host,
        get(&format!("{direct_path}&hash=x&mms-type=image&__wa-mms=")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, body);
    assert_eq!(host.download_count(), 1);
}

#[tokio::test]
async fn padded_tokens_are_accepted_like_unpadded_ones() {
    let host = host();
    let auth = auth(&host);
    let body = vec![9_u8; 48];
    let padded = base64::engine::general_purpose::URL_SAFE.encode(Sha256::digest(&body));
    let query = format!("auth={auth}&token={}", padded.replace('=', "%3D"));
    let (status, _) = call(&host, post(&padded, &query, body)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn uploads_without_valid_auth_are_401() {
    let host = host();
    let body = vec![1_u8; 32];
    let t = token(&body);
    for query in ["".to_owned(), format!("auth=forged&token={t}")] {
        let (status, reply) = call(&host, post(&t, &query, body.clone())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(error_code(&reply), "unauthorized");
    }
    let auth = auth(&host);
    host.expire_auth_tokens();
    let (status, _) = call(&host, post(&t, &format!("auth={auth}"), body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(host.upload_count(), 0);
}

#[tokio::test]
async fn body_that_does_not_hash_to_the_token_is_400_and_not_stored() {
    let host = host();
    let auth = auth(&host);
    let t = token(b"what was announced");
    let (status, reply) = call(
        &host,
        post(&t, &format!("auth={auth}"), b"something else".to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&reply), "token_mismatch");
    let (status, reply) = call(&host, post("not-a-token", &format!("auth={auth}"), vec![1])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&reply), "bad_token");
    assert_eq!(host.stored_bytes(), 0);
    assert_eq!(host.upload_count(), 0);
}

#[tokio::test]
async fn oversized_uploads_are_413_and_a_full_store_is_507() {
    let mut config = MediaConfig::default();
    config.max_file_bytes = 1000;
    config.max_total_bytes = 1500;
    let host = MediaHost::new(config);
    let auth = auth(&host);
    let big = vec![2_u8; 1001];
    let (status, reply) = call(&host, post(&token(&big), &format!("auth={auth}"), big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&reply), "too_large");

    let first = vec![3_u8; 1000];
    let (status, _) = call(&host, post(&token(&first), &format!("auth={auth}"), first)).await;
    assert_eq!(status, StatusCode::OK);
    let second = vec![4_u8; 600];
    let (status, reply) = call(
        &host,
        post(&token(&second), &format!("auth={auth}"), second),
    )
    .await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE);
    assert_eq!(error_code(&reply), "storage_full");
    assert_eq!(host.stored_bytes(), 1000);
}

#[tokio::test]
async fn unknown_paths_and_types_are_404_and_faults_are_injected() {
    let host = host();
    let (status, reply) = call(&host, get("/v/t62.7118-24/1_2_3_n.enc?ccb=11-4")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&reply), "not_found");
    let auth = auth(&host);
    let req = Request::builder()
        .method("POST")
        .uri(format!("/mms/hologram/{}?auth={auth}", token(b"x")))
        .body(Body::from(b"x".to_vec()))
        .unwrap();
    let (status, reply) = call(&host, req).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&reply), "unknown_type");

    host.fail_next_downloads(410, 1);
    let (status, _) = call(&host, get("/v/anything.enc")).await;
    assert_eq!(status, StatusCode::GONE);
    let (status, _) = call(&host, get("/v/anything.enc")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
