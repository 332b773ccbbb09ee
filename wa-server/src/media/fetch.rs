//! Fetching a media URL into a temporary file, with the server-side request checks: only
//! absolute http(s) URLs, every hop (the first URL and each redirect) checked against
//! [`MediaSettings::fetch_allowed_hosts`](crate::MediaSettings) and the SSRF guard
//! (`crate::egress`: IP literals here, resolved names in the client's resolver), at most
//! [`MAX_REDIRECTS`] redirects, the configured timeout from start to last byte, and the
//! size limit.

use std::time::Duration;

use axum::http::header;

use super::intake::clean_file_name;
use super::temp::{Received, Sink};
use crate::error::{ApiError, MediaApiError};
use crate::state::AppState;

/// Redirects followed when fetching a media URL.
pub(crate) const MAX_REDIRECTS: usize = 5;
/// Longest media URL, characters.
const MAX_URL: usize = 4096;
/// Connect timeout of URL fetches.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks the host of a media URL (the first one and every redirect) against
/// [`MediaSettings::fetch_allowed_hosts`](crate::MediaSettings), then against the SSRF
/// guard (IP literals and `localhost`; names are checked when they resolve).
fn check_host(state: &AppState, url: &reqwest::Url) -> Result<(), ApiError> {
    check_allow_list(state, url)?;
    state.target_guard().check_url(url)?;
    Ok(())
}

fn check_allow_list(state: &AppState, url: &reqwest::Url) -> Result<(), MediaApiError> {
    let Some(allowed) = &state.config().media.fetch_allowed_hosts else {
        return Ok(());
    };
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(host)) {
        Ok(())
    } else {
        Err(MediaApiError::InvalidUrl(
            "host not allowed by the server configuration",
        ))
    }
}

/// Checks a media URL: absolute, `http` or `https`, with a host.
pub(crate) fn parse_url(raw: &str) -> Result<reqwest::Url, MediaApiError> {
    if raw.len() > MAX_URL {
        return Err(MediaApiError::InvalidUrl("longer than 4096 characters"));
    }
    let url = reqwest::Url::parse(raw.trim())
        .map_err(|_| MediaApiError::InvalidUrl("not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(MediaApiError::InvalidUrl("only http and https URLs"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(MediaApiError::InvalidUrl("no host"));
    }
    Ok(url)
}

/// Why a fetch failed, in words that carry no secrets (the URL is not repeated: its query
/// may hold a token); `target_not_allowed` when the guarded resolver dropped every address.
fn fetch_error(e: &reqwest::Error) -> ApiError {
    if let Some(blocked) = crate::egress::BlockedTarget::find_in(e) {
        return blocked.clone().into();
    }
    let why = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else if let Some(status) = e.status() {
        format!("the server answered HTTP {}", status.as_u16())
    } else {
        "the transfer failed".to_owned()
    };
    MediaApiError::Fetch(why).into()
}

/// Fetches `url` into a temporary file; also returns the last path segment of the final URL
/// (after redirects), a default file name for documents.
pub(crate) async fn fetch(
    state: &AppState,
    url: reqwest::Url,
) -> Result<(Received, Option<String>), ApiError> {
    let limit = state.config().media.max_bytes;
    let deadline = state.config().media.fetch_timeout;
    let mut sink = Sink::create(state).await?;
    let run = async {
        let mut url = url;
        let mut hops = 0;
        let mut response = loop {
            check_host(state, &url)?;
            let response = state
                .fetch_client()
                .get(url.clone())
                .send()
                .await
                .map_err(|e| fetch_error(&e))?;
            if !response.status().is_redirection() {
                break response;
            }
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| MediaApiError::Fetch("a redirect without a location".to_owned()))?;
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Err(MediaApiError::Fetch("too many redirects".to_owned()).into());
            }
            url = url
                .join(location)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .ok_or_else(|| {
                    MediaApiError::Fetch(
                        "a redirect to something other than an http(s) URL".to_owned(),
                    )
                })?;
        };
        let status = response.status();
        if !status.is_success() {
            return Err(MediaApiError::Fetch(format!(
                "the server answered HTTP {}",
                status.as_u16()
            ))
            .into());
        }
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(MediaApiError::TooLarge { limit }.into());
        }
        let name = response
            .url()
            .path_segments()
            .and_then(|mut s| s.next_back())
            .and_then(clean_file_name);
        while let Some(chunk) = response.chunk().await.map_err(|e| fetch_error(&e))? {
            sink.write(&chunk).await?;
        }
        Ok::<_, ApiError>(name)
    };
    let name = tokio::time::timeout(deadline, run)
        .await
        .map_err(|_| MediaApiError::Fetch("timed out".to_owned()))??;
    Ok((sink.finish().await?, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_urls_must_be_absolute_http() {
        assert!(parse_url("https://example.com/a.jpg").is_ok());
        assert!(parse_url("file:///etc/passwd").is_err());
        assert!(parse_url("ftp://example.com/a").is_err());
        assert!(parse_url("/relative").is_err());
    }
}
