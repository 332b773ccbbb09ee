//! The OpenAPI document (utoipa), served at `/openapi.json`.

use std::sync::OnceLock;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{events, health, media, messages, otp, pair, sessions, webhooks};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "wa-server",
        description = "Self-hosted WhatsApp Web multi-device gateway: sessions, QR pairing, \
                       messages, OTP, webhooks. Errors are `{\"error\": {\"code\", \"message\"}}` \
                       with stable codes. Authenticate with `x-api-key` or \
                       `Authorization: Bearer` (admin key or a session token)."
    ),
    paths(
        health::health, health::ready, health::metrics, health::openapi, health::docs,
        sessions::list, sessions::create, sessions::get, sessions::delete,
        sessions::restart, sessions::logout, sessions::rotate_token,
        pair::qr_json, pair::qr_png, pair::qr_svg, pair::pairing_code, pair::pair_link,
        pair::page, pair::page_events, pair::page_simulate_scan, pair::page_restart,
        pair::api_simulate_scan, pair::sandbox_info,
        messages::send_text, messages::send_location, messages::send_contact,
        messages::status, messages::check_numbers, messages::format_phone,
        otp::send, otp::verify,
        webhooks::list, webhooks::add, webhooks::remove, webhooks::stats, webhooks::dead,
        webhooks::retry_dead,
        events::stream,
        media::send_image, media::send_video, media::send_audio, media::send_document,
        media::send_sticker, media::download,
    ),
    components(schemas(crate::events::Envelope)),
    modifiers(&Security),
    tags(
        (name = "sessions", description = "Create and manage sessions (one linked device each)"),
        (name = "pairing", description = "QR, pairing codes, the pairing page"),
        (name = "messages", description = "Send messages and follow their status"),
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

/// The document as JSON (built once).
pub(crate) fn spec_json() -> String {
    static SPEC: OnceLock<String> = OnceLock::new();
    SPEC.get_or_init(|| ApiDoc::openapi().to_pretty_json().unwrap_or_default())
        .clone()
}
