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

use crate::i18n::{Lang, escape};

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

/// The page language: `?lang=` (a `lang` query pair), else `Accept-Language`.
fn language(request: &Request) -> Lang {
    let query_lang = request.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|pair| pair.strip_prefix("lang="))
            .next()
            .map(str::to_owned)
    });
    let accept = request
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    Lang::negotiate(query_lang.as_deref(), accept)
}

/// Middleware: turns a JSON error answer to a browser's page request into an HTML page
/// in the person's language ([`crate::i18n`]).
pub(crate) async fn html_errors(request: Request, next: Next) -> Response {
    let page = wants_page(&request);
    let lang = page.then(|| language(&request));
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
    let lang = lang.unwrap_or_else(|| Lang::negotiate(None, None));
    let mut out = (status, render(&lang, status, code, message)).into_response();
    if let Ok(v) = HeaderValue::from_str(&lang.tag()) {
        out.headers_mut().insert(header::CONTENT_LANGUAGE, v);
    }
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

/// The translation keys of the title and advice for a person, per error code.
fn wording(code: &str) -> (&'static str, &'static str) {
    match code {
        "invalid_link" => ("error-invalid-link-title", "error-invalid-link-advice"),
        "auth_required" | "invalid_credentials" | "forbidden" => {
            ("error-auth-title", "error-auth-advice")
        }
        "session_not_found" => ("error-session-title", "error-session-advice"),
        "invalid_parameter" | "invalid_session_id" | "uri_too_long" => {
            ("error-bad-link-title", "error-bad-link-advice")
        }
        "not_found" | "method_not_allowed" => ("error-not-found-title", "error-not-found-advice"),
        "shutting_down" | "degraded" => ("error-restarting-title", "error-restarting-advice"),
        "rate_limited" => ("error-rate-title", "error-rate-advice"),
        _ => ("error-other-title", "error-other-advice"),
    }
}

/// The page.
fn render(lang: &Lang, status: StatusCode, code: &str, message: &str) -> String {
    let (title, advice) = wording(code);
    let (title, advice) = (escape(&lang.text(title)), escape(&lang.text(advice)));
    let (label, tag) = (escape(&lang.text("error-code")), escape(&lang.tag()));
    let code = escape(code);
    let detail = if message.is_empty() {
        String::new()
    } else {
        format!("<p class=\"detail\">{}</p>", escape(message))
    };
    format!(
        r#"<!doctype html>
<html lang="{tag}">
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
  <p class="code">{label} {status}: {code}</p>
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
            &Lang::negotiate(None, None),
            StatusCode::UNAUTHORIZED,
            "invalid_link",
            "<script>alert(1)</script>",
        );
        assert!(page.contains("This link has expired"));
        assert!(page.contains("data-code=\"invalid_link\""));
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("&lt;script&gt;"));
    }

    #[test]
    fn pages_speak_the_persons_language() {
        let id = Lang::negotiate(None, Some("id-ID,id;q=0.9"));
        let page = render(&id, StatusCode::UNAUTHORIZED, "invalid_link", "");
        assert!(page.contains("Tautan ini sudah kedaluwarsa"), "{page}");
        assert!(page.contains("<html lang=\"id\">"));
        let es = Lang::negotiate(Some("es"), Some("id"));
        let page = render(&es, StatusCode::NOT_FOUND, "session_not_found", "");
        assert!(page.contains("Este enlace ya no es válido"));
    }
}
