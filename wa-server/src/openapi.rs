//! The OpenAPI document (utoipa), served at `/openapi.json`: [`ApiDoc`] holds what is not
//! an operation (info, tags, security schemes, extra schemas); the operations come from the
//! route list ([`crate::routes::router`]).

use std::sync::OnceLock;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::config::ServerConfig;

/// The API description without its paths (the route list adds them).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "wa-server",
        description = "Self-hosted WhatsApp Web multi-device gateway: sessions, QR pairing, \
                       messages, OTP, webhooks. Errors are `{\"error\": {\"code\", \"message\"}}` \
                       with stable codes (a browser opening a page under `/sessions/` gets an \
                       HTML page instead). Authenticate with `x-api-key` or \
                       `Authorization: Bearer` (admin key or a session token). Webhook and media \
                       URLs may not reach non-public addresses unless the server runs with \
                       `--allow-private-targets` or `--allowed-target-cidrs`."
    ),
    components(schemas(crate::events::Envelope, crate::routes::groups::GroupId)),
    modifiers(&Security),
    tags(
        (name = "sessions", description = "Create and manage sessions (one linked device each)"),
        (name = "pairing", description = "QR, pairing codes, the pairing page"),
        (name = "messages", description = "Send messages and follow their status"),
        (name = "presence", description = "Own presence, presence subscriptions, typing indicators, call rejection"),
        (name = "groups", description = "Group lifecycle: create, list, info, participants, subject, description, settings, invite links, join, leave"),
        (name = "profile", description = "Own push name, status text and picture; contacts' pictures"),
        (name = "media", description = "Send images, video, audio, documents, stickers; download received media"),
        (name = "otp", description = "One-time codes over WhatsApp"),
        (name = "webhooks", description = "Durable, signed event delivery"),
        (name = "events", description = "Live events (SSE)"),
        (name = "sandbox", description = "Offline mode with a simulated WhatsApp server"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
pub(crate) struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON (built once, from the route list; body limits do not show in it, so
/// any configuration gives the same document).
pub(crate) fn spec_json() -> String {
    static SPEC: OnceLock<String> = OnceLock::new();
    SPEC.get_or_init(|| {
        crate::routes::router(&ServerConfig::new(""))
            .into_openapi()
            .to_pretty_json()
            .unwrap_or_default()
    })
    .clone()
}

/// The document as this server serves it: [`spec_json`] with what depends on the
/// configuration made exact. With `--webhook-allowed-hosts` a webhook URL must name one of
/// those hosts (any other is refused with `webhook_host_not_allowed`), so the `url` pattern
/// of `NewWebhook` lists them.
pub(crate) fn served_spec_json(config: &ServerConfig) -> String {
    let Some(hosts) = &config.webhooks.allowed_hosts else {
        return spec_json();
    };
    let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(&spec_json()) else {
        return spec_json();
    };
    let alternatives: Vec<String> = hosts.iter().map(|h| regex_escape(h)).collect();
    let pattern = format!(
        "^https?://({})(:[1-9][0-9]{{0,3}})?([/?#][!-~]*)?$",
        alternatives.join("|")
    );
    if let Some(url) = doc.pointer_mut("/components/schemas/NewWebhook/properties/url") {
        url["pattern"] = serde_json::Value::String(pattern);
    }
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| spec_json())
}

/// `text` with the regular-expression metacharacters escaped.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\^$.|?*+()[]{}/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
