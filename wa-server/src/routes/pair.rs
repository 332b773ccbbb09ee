//! Pairing: the current QR (JSON with PNG, `image/png`, SVG), phone-number pairing codes,
//! signed pairing links, the pairing page with its live event stream, and the sandbox's
//! "simulate scan".

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use futures_util::Stream;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::events::session_stream;
use super::{ApiJson, ApiPath, ApiQuery, AuthorizedSession};
use crate::auth::{self, Caller};
use crate::db::now_ms;
use crate::error::{ApiError, ErrorBody};
use crate::i18n::{self, Lang};
use crate::phone::PhoneNumber;
use crate::render;
use crate::session::{Session, SessionStatus};
use crate::session_meta::Branding;
use crate::state::AppState;

/// The current QR.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QrResponse {
    /// The raw QR string (render it yourself, or use `png_base64`).
    qr: String,
    /// The QR as a PNG, base64.
    png_base64: String,
    /// When this QR stops working, unix ms; a new one follows (see the `qr` event).
    expires_at: u64,
}

/// `POST /api/sessions/{id}/pairing-code` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PairingCodeRequest {
    /// The account's phone number (local numbers use the default country code).
    #[schema(value_type = crate::api_types::E164)]
    phone: String,
}

/// A pairing code to type on the phone (Linked devices > Link with phone number).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PairingCodeResponse {
    /// `XXXX-XXXX`.
    code: String,
    /// The number it was issued for, E.164 digits.
    phone: String,
}

/// Options of a pairing link.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LinkQuery {
    /// Lifetime in seconds (60-86400); default the server's (15 min).
    #[param(minimum = 60, maximum = 86400)]
    ttl_seconds: Option<u64>,
}

/// A signed link to the pairing page for an end customer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PairLink {
    /// Absolute URL when the server knows its public URL, else the path.
    url: String,
    /// The path with its token.
    path: String,
    /// Unix seconds.
    expires_at: u64,
}

/// Token of a signed link (`?token=`), and the page's language.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// Token from `POST /api/sessions/{id}/pair-link`; not needed with API credentials.
    token: Option<String>,
    /// Language of the page: `en`, `id`, `pt-BR` or `es` (overrides `Accept-Language`;
    /// anything else falls back to it, then to English).
    #[param(max_length = 35)]
    lang: Option<String>,
}

/// `POST /sessions/{id}/pair/code` body (the pairing page's phone-number form).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PagePairingCodeRequest {
    /// The account's phone number, with country code (`+62 812-3456-789`) or in the
    /// server's default country.
    #[schema(value_type = crate::api_types::E164)]
    phone: String,
}

/// What the sandbox phone did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SimulatedScan {
    /// The sandbox account that scanned.
    phone: String,
    /// The device JID the session will get.
    jid: String,
}

/// The embedded sandbox.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SandboxInfo {
    /// WebSocket URL of the simulated WhatsApp server.
    ws_url: String,
    /// Its control API (accounts, phones, faults).
    control_url: String,
    /// Its trust root public key, base64.
    trust_root_pub_b64: String,
}

fn current_qr(session: &Session) -> Result<(String, u64), ApiError> {
    let live = session.live();
    match (live.qr, live.status) {
        (Some(qr), SessionStatus::Qr) => Ok((qr.code, qr.expires_at)),
        (_, SessionStatus::Connected | SessionStatus::Connecting) if live.jid.is_some() => {
            Err(ApiError::NotPairing)
        }
        _ => Err(ApiError::QrNotAvailable),
    }
}

/// The JSON answer for QR `code`, expiring at `expires_at` (unix ms).
///
/// # Errors
/// [`ApiError::Internal`] if the PNG cannot be rendered.
pub(crate) fn qr_response(code: String, expires_at: u64) -> Result<QrResponse, ApiError> {
    Ok(QrResponse {
        png_base64: png_b64(&code)?,
        qr: code,
        expires_at,
    })
}

fn png_b64(code: &str) -> Result<String, ApiError> {
    let png = render::qr_png(code).map_err(ApiError::internal)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(png))
}

/// The current QR as JSON: raw string, PNG (base64) and expiry.
#[utoipa::path(get, path = "/api/sessions/{id}/qr", tag = "pairing",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = QrResponse),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn qr_json(
    AuthorizedSession(session): AuthorizedSession,
) -> Result<Json<QrResponse>, ApiError> {
    let (qr, expires_at) = current_qr(&session)?;
    Ok(Json(QrResponse {
        png_base64: png_b64(&qr)?,
        qr,
        expires_at,
    }))
}

/// The current QR as a PNG image.
#[utoipa::path(get, path = "/api/sessions/{id}/qr.png", tag = "pairing",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, content_type = "image/png", body = Vec<u8>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn qr_png(
    AuthorizedSession(session): AuthorizedSession,
) -> Result<Response, ApiError> {
    let (qr, _) = current_qr(&session)?;
    let png = render::qr_png(&qr).map_err(ApiError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        png,
    )
        .into_response())
}

/// The current QR as SVG.
#[utoipa::path(get, path = "/api/sessions/{id}/qr.svg", tag = "pairing",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, content_type = "image/svg+xml", body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn qr_svg(
    AuthorizedSession(session): AuthorizedSession,
) -> Result<Response, ApiError> {
    let (qr, _) = current_qr(&session)?;
    let svg = render::qr_svg(&qr).map_err(ApiError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        svg,
    )
        .into_response())
}

/// Ask for a pairing code to link by phone number instead of a QR. The session must be
/// unpaired and showing a QR.
#[utoipa::path(post, path = "/api/sessions/{id}/pairing-code", tag = "pairing",
    params(("id" = String, Path, description = "Session id")),
    request_body = PairingCodeRequest,
    responses((status = 200, body = PairingCodeResponse),
        (status = 400, description = "Bad request: `invalid_phone_number`, `ambiguous_phone_number` (digits valid both in the default country and as an international number: send `+CC...`), ...", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, description = "`not_on_whatsapp` (no account has this number), `invalid_body`", body = ErrorBody),
        (status = 502, description = "`upstream_rejected`, `upstream_bad_response`", body = ErrorBody),
        (status = 504, description = "`upstream_timeout`", body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn pairing_code(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiJson(body): ApiJson<PairingCodeRequest>,
) -> Result<Json<PairingCodeResponse>, ApiError> {
    request_code(&state, &session, &body.phone).await.map(Json)
}

/// Asks the engine for a pairing code for `phone` (the API route and the page's form).
async fn request_code(
    state: &AppState,
    session: &Session,
    phone: &str,
) -> Result<PairingCodeResponse, ApiError> {
    let phone = PhoneNumber::parse(phone, state.config().default_country_code.as_deref())?;
    let live = session.live();
    let (Some(client), SessionStatus::Qr | SessionStatus::PairingCode) = (live.client, live.status)
    else {
        return Err(ApiError::NotPairing);
    };
    // WhatsApp answers 404 for a number without an account: the caller's mistake, not a
    // failure of the upstream.
    let code = match client.request_pairing_code(phone.digits()).await {
        Err(wa_engine::SendError::Rejected { code: 404, .. }) => {
            return Err(ApiError::NotOnWhatsApp);
        }
        other => other?,
    };
    Ok(PairingCodeResponse {
        code,
        phone: phone.digits().to_owned(),
    })
}

/// Create a short-lived signed link to this session's pairing page, to hand to an end
/// customer without exposing an API key.
#[utoipa::path(post, path = "/api/sessions/{id}/pair-link", tag = "pairing",
    params(("id" = String, Path, description = "Session id"), LinkQuery),
    responses((status = 200, body = PairLink),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn pair_link(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
    ApiQuery(query): ApiQuery<LinkQuery>,
) -> Result<Json<PairLink>, ApiError> {
    let ttl = match query.ttl_seconds {
        None => state.config().link_ttl.as_secs(),
        Some(t) if (60..=86_400).contains(&t) => t,
        Some(_) => {
            return Err(ApiError::InvalidParameter(
                "ttl_seconds must be 60-86400".to_owned(),
            ));
        }
    };
    let expires_at = now_ms() / 1000 + ttl;
    let token = auth::sign_link(state.link_key(), &session.id, expires_at);
    let path = format!("/sessions/{}/pair?token={token}", session.id);
    let url = match &state.config().public_url {
        Some(base) => format!("{}{path}", base.trim_end_matches('/')),
        None => path.clone(),
    };
    Ok(Json(PairLink {
        url,
        path,
        expires_at,
    }))
}

/// The session of a pairing page route, for a holder of a valid signed link (`?token=`) or
/// of API credentials for the session.
///
/// Rejections, in this order: [`ApiError::InvalidParameter`] (path or query),
/// [`ApiError::InvalidLink`], or as [`Caller`] and [`Caller::require_session`] without a
/// token, then [`ApiError::SessionNotFound`].
pub(crate) struct PageSession(Arc<Session>);

impl FromRequestParts<AppState> for PageSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ApiPath(id) = ApiPath::<String>::from_request_parts(parts, state).await?;
        let ApiQuery(query) = ApiQuery::<PageQuery>::from_request_parts(parts, state).await?;
        match query.token {
            Some(token) => auth::verify_link(state.link_key(), &id, &token, now_ms() / 1000)?,
            None => Caller::from_request_parts(parts, state)
                .await?
                .require_session(&id)?,
        }
        state.session(&id).map(Self)
    }
}

/// The texts of the pairing page (keys of `assets/i18n/*/pairing.ftl`).
pub(crate) const PAGE_KEYS: [&str; 33] = [
    "page-title",
    "heading",
    "heading-brand",
    "step-open",
    "step-menu",
    "step-scan",
    "qr-alt",
    "loading",
    "status-connecting",
    "status-qr",
    "status-pairing-code",
    "status-connected",
    "status-logged-out",
    "status-stopped",
    "status-qr-limit",
    "refreshes-in",
    "refreshing",
    "waiting-upstream",
    "retry-in",
    "retry-now",
    "retry-reason",
    "connected",
    "simulate",
    "new-code",
    "lost",
    "phone-heading",
    "phone-label",
    "phone-submit",
    "phone-code-intro",
    "language",
    "logo-alt",
    "error-code",
    "error-other-title",
];

/// Names of the page languages in themselves (the language links).
const LANGUAGE_NAMES: [(&str, &str); 4] = [
    ("en", "English"),
    ("id", "Bahasa Indonesia"),
    ("pt-BR", "Português (Brasil)"),
    ("es", "Español"),
];

/// Default accent colour of the page (WhatsApp's green, 5:1 against white text).
const DEFAULT_ACCENT: &str = "#008069";

/// The pairing page in `lang` with `branding`.
pub(crate) fn render_page(lang: &Lang, branding: &Branding) -> String {
    let brand = branding.name.as_deref();
    let text = |key: &str| -> String {
        match key {
            "refreshes-in" | "retry-in" => lang.text_with(key, &[("seconds", "{s}")]),
            "retry-reason" => {
                lang.text_with(key, &[("reason", "{reason}"), ("attempt", "{attempt}")])
            }
            "heading-brand" | "logo-alt" => {
                lang.text_with(key, &[("brand", brand.unwrap_or("WhatsApp"))])
            }
            _ => lang.text(key),
        }
    };
    let strings: serde_json::Map<String, serde_json::Value> = PAGE_KEYS
        .iter()
        .map(|k| ((*k).to_owned(), serde_json::Value::String(text(k))))
        .collect();
    // Inside <script>: no `<` (no `</script>`), JSON stays valid with `\u003c`.
    let strings = serde_json::Value::Object(strings)
        .to_string()
        .replace('<', "\\u003c");
    let heading = if brand.is_some() {
        text("heading-brand")
    } else {
        text("heading")
    };
    let title = match brand {
        Some(b) => format!("{} · {b}", text("page-title")),
        None => text("page-title"),
    };
    let logo = match &branding.logo_url {
        Some(url) => format!(
            "<img id=\"brand-logo\" src=\"{}\" alt=\"{}\">",
            i18n::escape(url),
            i18n::escape(&text("logo-alt"))
        ),
        None => String::new(),
    };
    let current = lang.tag();
    let links: String = LANGUAGE_NAMES
        .iter()
        .map(|(tag, name)| {
            let current = if *tag == current {
                " aria-current=\"true\""
            } else {
                ""
            };
            format!(
                "<a data-lang=\"{tag}\" href=\"?lang={tag}\" hreflang=\"{tag}\" lang=\"{tag}\"{current}>{name}</a>"
            )
        })
        .collect();
    let accent = branding.color.as_deref().unwrap_or(DEFAULT_ACCENT);
    let mut html = include_str!("../../assets/qr.html")
        .replace("{{lang}}", &i18n::escape(&current))
        .replace("{{title}}", &i18n::escape(&title))
        .replace("{{heading}}", &i18n::escape(&heading))
        .replace("{{accent}}", accent)
        .replace("{{brand_logo}}", &logo)
        .replace("{{lang_links}}", &links)
        .replace("{{strings}}", &strings);
    for key in PAGE_KEYS {
        html = html.replace(&format!("{{{{{key}}}}}"), &i18n::escape(&text(key)));
    }
    html
}

/// The branding of `session`'s page: its settings over the server's flags.
fn branding_of(state: &AppState, session: &Session) -> Branding {
    session
        .record()
        .settings
        .branding
        .over(&state.config().branding)
}

/// The pairing page: shows the QR with its countdown, live (SSE), then "connected"; a
/// phone-number form for a pairing code instead; "new code" after the QR refresh cap. In
/// the language of `?lang=` or `Accept-Language` (en, id, pt-BR, es), with the operator's
/// branding. In sandbox mode it has a "simulate scan" button.
#[utoipa::path(get, path = "/sessions/{id}/pair", tag = "pairing",
    params(("id" = String, Path, description = "Session id"), PageQuery,
        ("accept-language" = Option<String>, Header, description = "Preferred languages")),
    responses((status = 200, content_type = "text/html", body = String),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn page(
    State(state): State<AppState>,
    PageSession(session): PageSession,
    ApiQuery(query): ApiQuery<PageQuery>,
    headers: axum::http::HeaderMap,
) -> Response {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let lang = Lang::negotiate(query.lang.as_deref(), accept);
    let html = render_page(&lang, &branding_of(&state, &session));
    let mut response = (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(html),
    )
        .into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&lang.tag()) {
        response.headers_mut().insert(header::CONTENT_LANGUAGE, v);
    }
    response
}

/// What the pairing page shows.
#[derive(Debug, Serialize)]
struct PageState {
    status: SessionStatus,
    jid: Option<String>,
    qr_png: Option<String>,
    expires_in_ms: Option<u64>,
    sandbox: bool,
    last_error: Option<String>,
    /// While the WhatsApp server cannot be reached: "cannot reach WhatsApp, retrying in N s".
    retry: Option<PageRetry>,
    /// The session stopped its QR loop at the refresh cap: the page asks for "new code".
    qr_limit: bool,
    /// The pairing code while `status` is `pairing_code`.
    pairing_code: Option<String>,
}

/// The retry state as the page shows it.
#[derive(Debug, Serialize)]
struct PageRetry {
    attempts: u32,
    reason: String,
    retry_in_ms: u64,
}

fn page_state(state: &AppState, session: &Session) -> PageState {
    let live = session.live();
    let (qr_png, expires_in_ms) = match (&live.qr, live.status) {
        (Some(qr), SessionStatus::Qr) => (
            png_b64(&qr.code)
                .ok()
                .map(|b| format!("data:image/png;base64,{b}")),
            Some(qr.expires_at.saturating_sub(now_ms())),
        ),
        _ => (None, None),
    };
    PageState {
        status: live.status,
        jid: live.jid,
        qr_png,
        expires_in_ms,
        sandbox: state.runs_sandbox(),
        qr_limit: live.qr_limit_reached,
        pairing_code: live.pairing_code,
        last_error: live.last_error,
        retry: live.retry.map(|r| PageRetry {
            attempts: r.attempts,
            reason: r.reason,
            retry_in_ms: r.retry_at.saturating_sub(now_ms()),
        }),
    }
}

fn state_event(state: &AppState, session: &Session) -> SseEvent {
    SseEvent::default()
        .event("state")
        .json_data(page_state(state, session))
        .unwrap_or_else(|_| SseEvent::default().comment("state unavailable"))
}

/// The pairing page's live state (SSE `state` events).
#[utoipa::path(get, path = "/sessions/{id}/pair/events", tag = "pairing",
    params(("id" = String, Path, description = "Session id"), PageQuery),
    responses((status = 200, content_type = "text/event-stream", body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn page_events(
    State(state): State<AppState>,
    PageSession(session): PageSession,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let first = state_event(&state, &session);
    // Events of the session, and changes that come without one (connection retries).
    let retries = futures_util::stream::unfold(
        (session.watch_changes(), state.shutdown_watch()),
        |(mut changes, mut shutdown)| async move {
            if *shutdown.borrow() {
                return None;
            }
            tokio::select! {
                r = changes.changed() => r.ok().map(|()| ((), (changes, shutdown))),
                _ = shutdown.changed() => None,
            }
        },
    );
    let updates = {
        let state = state.clone();
        let session = session.clone();
        futures_util::stream::select(session_stream(&state, &session).map(|_| ()), retries)
            .map(move |()| Ok(state_event(&state, &session)))
    };
    let stream = futures_util::stream::once(async move { Ok(first) }).chain(updates);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A sandbox phone number for a session: `1555` and 7 digits from the id's hash.
#[cfg(feature = "sandbox")]
fn sandbox_phone(id: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let digest = Sha256::digest(id.as_bytes());
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % 10_000_000;
    format!("1555{n:07}")
}

#[cfg(feature = "sandbox")]
fn simulate(state: &AppState, session: &Session) -> Result<SimulatedScan, ApiError> {
    let sandbox = state.sandbox().ok_or(ApiError::SandboxDisabled)?;
    let (qr, _) = current_qr(session)?;
    let number = sandbox_phone(&session.id);
    let phone = match sandbox.phone(&number) {
        Ok(p) => p,
        Err(_) => sandbox.create_account(&number)?,
    };
    let link = phone.scan(&qr)?;
    Ok(SimulatedScan {
        phone: number,
        jid: link.jid,
    })
}

/// Without the `sandbox` feature there is no simulated phone.
#[cfg(not(feature = "sandbox"))]
fn simulate(_: &AppState, _: &Session) -> Result<SimulatedScan, ApiError> {
    Err(ApiError::SandboxDisabled)
}

/// Sandbox mode: the simulated phone scans the current QR (pairing page button).
#[utoipa::path(post, path = "/sessions/{id}/pair/simulate-scan", tag = "sandbox",
    params(("id" = String, Path, description = "Session id"), PageQuery),
    responses((status = 200, body = SimulatedScan),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn page_simulate_scan(
    State(state): State<AppState>,
    PageSession(session): PageSession,
) -> Result<Json<SimulatedScan>, ApiError> {
    Ok(Json(simulate(&state, &session)?))
}

/// Pairing page: ask for a fresh QR after the codes ran out (only when the session is
/// stopped or logged out, so a link cannot disturb a connected session).
#[utoipa::path(post, path = "/sessions/{id}/pair/restart", tag = "pairing",
    params(("id" = String, Path, description = "Session id"), PageQuery),
    responses((status = 202, description = "Restarting"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn page_restart(
    PageSession(session): PageSession,
) -> Result<axum::http::StatusCode, ApiError> {
    match session.live().status {
        SessionStatus::Stopped | SessionStatus::LoggedOut => {
            session.restart();
            Ok(axum::http::StatusCode::ACCEPTED)
        }
        _ => Err(ApiError::NotPairing),
    }
}

/// Pairing page: link by phone number instead of the QR. Returns the code to type on the
/// phone (WhatsApp > Linked devices > Link with phone number instead).
#[utoipa::path(post, path = "/sessions/{id}/pair/code", tag = "pairing",
    params(("id" = String, Path, description = "Session id"), PageQuery),
    request_body = PagePairingCodeRequest,
    responses((status = 200, body = PairingCodeResponse),
        (status = 400, description = "`invalid_phone_number`, `ambiguous_phone_number`, `invalid_parameter`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "`session_not_pairing`", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "`not_on_whatsapp` (no account has this number), `invalid_body`", body = ErrorBody),
        (status = 502, description = "`upstream_rejected`, `upstream_bad_response`", body = ErrorBody),
        (status = 504, description = "`upstream_timeout`", body = ErrorBody)))]
pub(crate) async fn page_pairing_code(
    State(state): State<AppState>,
    PageSession(session): PageSession,
    ApiJson(body): ApiJson<PagePairingCodeRequest>,
) -> Result<Json<PairingCodeResponse>, ApiError> {
    request_code(&state, &session, &body.phone).await.map(Json)
}

/// Sandbox mode: the simulated phone scans the session's current QR.
#[utoipa::path(post, path = "/api/sessions/{id}/sandbox/scan", tag = "sandbox",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = SimulatedScan),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn api_simulate_scan(
    State(state): State<AppState>,
    AuthorizedSession(session): AuthorizedSession,
) -> Result<Json<SimulatedScan>, ApiError> {
    Ok(Json(simulate(&state, &session)?))
}

/// Sandbox mode: where the embedded simulated server listens (admin).
#[utoipa::path(get, path = "/api/sandbox", tag = "sandbox",
    responses((status = 200, body = SandboxInfo),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub(crate) async fn sandbox_info(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SandboxInfo>, ApiError> {
    caller.require_admin()?;
    sandbox_info_of(&state).map(Json)
}

#[cfg(feature = "sandbox")]
fn sandbox_info_of(state: &AppState) -> Result<SandboxInfo, ApiError> {
    let sb = state.sandbox().ok_or(ApiError::SandboxDisabled)?;
    Ok(SandboxInfo {
        ws_url: sb.ws_url().to_owned(),
        control_url: sb.control_url().to_owned(),
        trust_root_pub_b64: base64::engine::general_purpose::STANDARD.encode(sb.trust_root_key()),
    })
}

#[cfg(not(feature = "sandbox"))]
fn sandbox_info_of(_: &AppState) -> Result<SandboxInfo, ApiError> {
    Err(ApiError::SandboxDisabled)
}
