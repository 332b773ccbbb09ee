//! The dialect's own OpenAPI document (`GET <base>/openapi.json`, no key; tag `waha`):
//! every WAHA route served with its method and path parameters, the `api_key` security
//! scheme (`X-Api-Key`, WAHA's name for it), WAHA's error body, and which routes answer
//! 501. Bodies and answers are WAHA's (shared/compat/waha.md) and described as free-form
//! JSON. A test (`tests/dialect_waha.rs`) checks that every path listed here is routed.

use axum::Json;
use serde_json::Value;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, ObjectBuilder, OpenApiBuilder, Paths, Required,
};

/// Whether a route does what WAHA's does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Support {
    /// Implemented.
    Yes,
    /// Implemented for some bodies; others answer 501 (the summary says which).
    Partly,
    /// Always 501 `not_supported`.
    No,
}

use Support::{No, Partly, Yes};

/// `(method, path relative to the base, summary, support)`.
pub(crate) const ROUTES: &[(&str, &str, &str, Support)] = &[
    ("get", "/api/sessions", "List sessions (?all=true)", Yes),
    ("post", "/api/sessions", "Create a session", Yes),
    ("get", "/api/sessions/{session}", "SessionInfo", Yes),
    ("put", "/api/sessions/{session}", "Update config", Yes),
    ("delete", "/api/sessions/{session}", "Delete a session", Yes),
    ("post", "/api/sessions/{session}/start", "Start", Yes),
    (
        "post",
        "/api/sessions/{session}/stop",
        "Stop, keeping the pairing",
        Yes,
    ),
    (
        "post",
        "/api/sessions/{session}/logout",
        "Unlink the device",
        Yes,
    ),
    ("post", "/api/sessions/{session}/restart", "Reconnect", Yes),
    ("get", "/api/sessions/{session}/me", "MeInfo or null", Yes),
    (
        "get",
        "/api/{session}/auth/qr",
        "QR: PNG, Base64File or raw",
        Yes,
    ),
    (
        "post",
        "/api/{session}/auth/request-code",
        "Pairing code; method sms|voice answers 501",
        Partly,
    ),
    (
        "get",
        "/api/contacts/check-exists",
        "Is a number on WhatsApp",
        Yes,
    ),
    ("post", "/api/sendText", "Send a text", Yes),
    ("post", "/api/sendImage", "Send an image", Yes),
    ("post", "/api/sendFile", "Send a document", Yes),
    ("post", "/api/sendVoice", "Send a voice note", Yes),
    ("post", "/api/sendVideo", "Send a video", Yes),
    ("post", "/api/sendLocation", "Send a location", Yes),
    (
        "post",
        "/api/sendContactVcard",
        "One {fullName, phoneNumber} contact; raw vcards or several answer 501",
        Partly,
    ),
    ("post", "/api/sendPoll", "Send a poll", Yes),
    ("post", "/api/sendSeen", "Read receipts", Yes),
    ("post", "/api/startTyping", "Typing", Yes),
    ("post", "/api/stopTyping", "Paused", Yes),
    ("put", "/api/reaction", "React (\"\" removes)", Yes),
    ("post", "/api/{session}/groups", "Create a group", Yes),
    (
        "get",
        "/api/{session}/groups",
        "The groups this account is in",
        Yes,
    ),
    ("get", "/api/{session}/groups/count", "{count}", Yes),
    (
        "post",
        "/api/{session}/groups/refresh",
        "Fetch the groups",
        Yes,
    ),
    (
        "get",
        "/api/{session}/groups/join-info",
        "A group by invite (?code=)",
        Yes,
    ),
    ("post", "/api/{session}/groups/join", "Join by invite", Yes),
    ("get", "/api/{session}/groups/{id}", "A group", Yes),
    (
        "delete",
        "/api/{session}/groups/{id}",
        "Not supported: leave the group instead",
        No,
    ),
    (
        "post",
        "/api/{session}/groups/{id}/leave",
        "Leave a group",
        Yes,
    ),
    (
        "get",
        "/api/{session}/groups/{id}/participants",
        "[GroupParticipant]",
        Yes,
    ),
    (
        "get",
        "/api/{session}/groups/{id}/participants/v2",
        "[GroupParticipant]",
        Yes,
    ),
    (
        "post",
        "/api/{session}/groups/{id}/participants/add",
        "Add members",
        Yes,
    ),
    (
        "post",
        "/api/{session}/groups/{id}/participants/remove",
        "Remove members",
        Yes,
    ),
    (
        "post",
        "/api/{session}/groups/{id}/admin/promote",
        "Make admins",
        Yes,
    ),
    (
        "post",
        "/api/{session}/groups/{id}/admin/demote",
        "Make plain members",
        Yes,
    ),
    (
        "put",
        "/api/{session}/groups/{id}/subject",
        "Set the subject",
        Yes,
    ),
    (
        "put",
        "/api/{session}/groups/{id}/description",
        "Set the description",
        Yes,
    ),
    (
        "get",
        "/api/{session}/groups/{id}/settings/security/info-admin-only",
        "{adminsOnly}: only admins edit the info",
        Yes,
    ),
    (
        "put",
        "/api/{session}/groups/{id}/settings/security/info-admin-only",
        "Only admins edit the info",
        Yes,
    ),
    (
        "get",
        "/api/{session}/groups/{id}/settings/security/messages-admin-only",
        "{adminsOnly}: only admins send",
        Yes,
    ),
    (
        "put",
        "/api/{session}/groups/{id}/settings/security/messages-admin-only",
        "Only admins send",
        Yes,
    ),
    (
        "get",
        "/api/{session}/groups/{id}/invite-code",
        "The invite code",
        Yes,
    ),
    (
        "post",
        "/api/{session}/groups/{id}/invite-code/revoke",
        "A new invite code",
        Yes,
    ),
    ("get", "/api/{session}/groups/{id}/picture", "{url}", Yes),
    (
        "put",
        "/api/{session}/groups/{id}/picture",
        "Set the picture from file.data (base64 JPEG); file.url answers 501",
        Partly,
    ),
    (
        "delete",
        "/api/{session}/groups/{id}/picture",
        "Not supported",
        No,
    ),
    (
        "get",
        "/api/{session}/chats",
        "Chats of the message log",
        Yes,
    ),
    ("get", "/api/{session}/chats/overview", "[ChatSummary]", Yes),
    (
        "post",
        "/api/{session}/chats/overview",
        "[ChatSummary]",
        Yes,
    ),
    (
        "get",
        "/api/{session}/chats/{chatId}/messages",
        "[WAMessage] of a chat",
        Yes,
    ),
    (
        "get",
        "/api/{session}/chats/{chatId}/messages/{messageId}",
        "One WAMessage",
        Yes,
    ),
    (
        "get",
        "/api/messages",
        "[WAMessage] (?session=&chatId=; deprecated)",
        Yes,
    ),
    (
        "get",
        "/api/contacts/all",
        "Contacts of the message log",
        Yes,
    ),
    (
        "get",
        "/api/contacts",
        "A contact (?contactId=&session=)",
        Yes,
    ),
    ("get", "/api/{session}/contacts/{id}", "A contact", Yes),
];

fn json_content() -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(ObjectBuilder::new().build()))
        .build()
}

fn response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", json_content())
        .build()
}

fn string_schema() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(utoipa::openapi::Type::String)
}

/// The document, its paths under `base` (`/waha` by default).
pub(crate) fn document(base: &str) -> utoipa::openapi::OpenApi {
    let mut paths = Paths::new();
    for (method, path, summary, support) in ROUTES {
        let method = match *method {
            "get" => HttpMethod::Get,
            "put" => HttpMethod::Put,
            "delete" => HttpMethod::Delete,
            _ => HttpMethod::Post,
        };
        let mut op = OperationBuilder::new()
            .tag("waha")
            .summary(Some(*summary))
            .response("200", response("WAHA's answer"))
            .response(
                "201",
                response("Created (WAHA answers most POSTs with 201)"),
            )
            .response("400", response("{statusCode, message, error, code}"))
            .response("401", response("No or a wrong X-Api-Key"))
            .response("403", response("Another session's token"))
            .response("404", response("Unknown session, group or message"))
            .response("409", response("Not connected, or a conflict"))
            .security(SecurityRequirement::new("api_key", Vec::<String>::new()));
        if *support != Yes {
            op = op.response(
                "501",
                response("Not supported by this dialect (code not_supported)"),
            );
        }
        for segment in path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                op = op.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .schema(Some(string_schema().build())),
                );
            }
        }
        if matches!(method, HttpMethod::Post | HttpMethod::Put) {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content("application/json", json_content())
                    .build(),
            ));
        }
        let full = format!("{base}{path}");
        paths.add_path_operation(full, vec![method], op.build());
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("wa-server: WAHA dialect")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "WAHA (WhatsApp HTTP API, 2026.7.1) served over wa-server's sessions. See \
                     the README, \"From WAHA\".",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme(
                    "api_key",
                    SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))),
                )
                .build(),
        ))
        .build()
}

/// `GET <base>/openapi.json` (no key).
pub(crate) async fn serve(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
) -> Json<Value> {
    let base = state
        .config()
        .dialects
        .waha
        .as_deref()
        .and_then(crate::dialect::base_path)
        .unwrap_or_default();
    Json(serde_json::to_value(document(&base)).unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_document_once() {
        let doc = serde_json::to_value(document("/waha")).expect("json");
        let mut count = 0;
        for (method, path, _, support) in ROUTES {
            let op = &doc["paths"][format!("/waha{path}")][*method];
            assert!(op.is_object(), "{method} {path}");
            assert_eq!(
                op["responses"]["501"].is_object(),
                *support != Yes,
                "{path}"
            );
            count += 1;
        }
        let listed: usize = doc["paths"]
            .as_object()
            .expect("paths")
            .values()
            .map(|p| p.as_object().map_or(0, |m| m.len()))
            .sum();
        assert_eq!(listed, count);
        assert_eq!(
            doc["components"]["securitySchemes"]["api_key"]["name"],
            "X-Api-Key"
        );
    }
}
