//! Friendly HTML error pages for people: a browser (`Accept: text/html`) opening a page
//! route (`GET /sessions/...`, the pairing page a customer gets a link to) that fails sees
//! a short page saying what happened and what to do, instead of the JSON error body. The
//! status code stays; the stable error code is shown (for support) and in `data-code`.
//! Every other client keeps the JSON body.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Largest JSON error body read back (ours are a few hundred bytes).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// True for a browser navigation to a page route.
fn wants_page(request: &Request) -> bool {
    matches!(*request.method(), Method::GET | Method::HEAD)
        && request.uri().path().starts_with("/sessions/")
        && request
            .headers()
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("text/html"))
}

/// Middleware: turns a JSON error answer to a browser's page request into an HTML page.
pub(crate) async fn html_errors(request: Request, next: Next) -> Response {
    let page = wants_page(&request);
    let response = next.run(request).await;
    let status = response.status();
    if !page || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return (parts.status, parts.headers, Body::empty()).into_response();
    };
    let error: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let code = error["error"]["code"].as_str().unwrap_or("error");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    let mut out = (status, render(status, code, message)).into_response();
    let headers = out.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Some(retry) = parts.headers.get(header::RETRY_AFTER) {
        headers.insert(header::RETRY_AFTER, retry.clone());
    }
    out
}

/// Title and advice for a person, per error code.
fn wording(code: &str) -> (&'static str, &'static str) {
    match code {
        "invalid_link" => (
            "This link has expired",
            "Pairing links work for a limited time, and this one is no longer valid. \
             Ask the person or company that sent it for a new link.",
        ),
        "auth_required" | "invalid_credentials" | "forbidden" => (
            "This page needs a pairing link",
            "Open the complete link you were sent: it ends with a token. \
             If you do not have one, ask for a new link.",
        ),
        "session_not_found" => (
            "This link is no longer valid",
            "The WhatsApp connection this link was made for does not exist any more. \
             Ask for a new link.",
        ),
        "invalid_parameter" | "invalid_session_id" | "uri_too_long" => (
            "This link is not complete",
            "Part of the link may be missing or changed. Copy the whole link again and \
             open it.",
        ),
        "not_found" | "method_not_allowed" => (
            "Page not found",
            "There is no page at this address. Check the link you were sent.",
        ),
        "shutting_down" | "degraded" => {
            ("The service is restarting", "Please try again in a minute.")
        }
        "rate_limited" => ("Too many attempts", "Please wait a moment and try again."),
        _ => (
            "Something went wrong",
            "The page could not be shown. Please try again later, or ask for a new link.",
        ),
    }
}

/// `text` with `& < > " '` escaped for HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page.
fn render(status: StatusCode, code: &str, message: &str) -> String {
    let (title, advice) = wording(code);
    let code = escape(code);
    let detail = if message.is_empty() {
        String::new()
    } else {
        format!("<p class=\"detail\">{}</p>", escape(message))
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<style>
  body {{ font-family: system-ui, sans-serif; background: #f0f2f5; color: #111b21; margin: 0; }}
  main {{ max-width: 440px; margin: 40px auto; background: #fff; border-radius: 12px;
         padding: 28px; box-shadow: 0 2px 8px rgba(0,0,0,.12); text-align: center; }}
  h1 {{ font-size: 1.3rem; margin: 0 0 12px; }}
  p {{ line-height: 1.5; color: #3b4a54; }}
  .detail, .code {{ color: #54656f; font-size: .85rem; }}
</style>
</head>
<body>
<main id="error-page" data-code="{code}" data-status="{status}">
  <h1>{title}</h1>
  <p>{advice}</p>
  {detail}
  <p class="code">Error {status}: {code}</p>
</main>
</body>
</html>
"#,
        status = status.as_u16(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_show() {
        let page = render(
            StatusCode::UNAUTHORIZED,
            "invalid_link",
            "<script>alert(1)</script>",
        );
        assert!(page.contains("This link has expired"));
        assert!(page.contains("data-code=\"invalid_link\""));
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("&lt;script&gt;"));
    }
}
