//! The dialect's own OpenAPI document (`GET <base>/openapi.json`, tag `evolution`): every
//! route with its method, the `apikey` security scheme, Evolution's error body, and which
//! routes answer 501. Bodies are Evolution's (see `../shared/compat/evolution-v2.md`);
//! they are described as free-form objects. A test checks that every path listed here is
//! routed (an unknown instance answers the instance guard's 404, not the router's).

use axum::Json;
use serde_json::Value;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, ObjectBuilder, OpenApiBuilder, PathItem,
    PathsBuilder, Required,
};

/// `(method, path relative to the base, summary, implemented)`.
pub(crate) const ROUTES: &[(&str, &str, &str, bool)] = &[
    ("get", "/", "Health and version (no key)", true),
    (
        "post",
        "/verify-creds",
        "200 for the global key, 401 otherwise",
        true,
    ),
    (
        "post",
        "/instance/create",
        "Create an instance (global key)",
        true,
    ),
    ("get", "/instance/fetchInstances", "List instances", true),
    (
        "get",
        "/instance/connect/{instance}",
        "QR or pairing code (?number=)",
        true,
    ),
    (
        "get",
        "/instance/connectionState/{instance}",
        "open, connecting or close",
        true,
    ),
    ("post", "/instance/restart/{instance}", "Reconnect", true),
    (
        "delete",
        "/instance/logout/{instance}",
        "Unlink the device",
        true,
    ),
    (
        "delete",
        "/instance/delete/{instance}",
        "Delete the instance",
        true,
    ),
    (
        "post",
        "/instance/setPresence/{instance}",
        "available or unavailable",
        true,
    ),
    ("post", "/settings/set/{instance}", "Set the settings", true),
    ("get", "/settings/find/{instance}", "The settings", true),
    ("post", "/webhook/set/{instance}", "Set the webhook", true),
    (
        "get",
        "/webhook/find/{instance}",
        "The webhook, or null",
        true,
    ),
    (
        "post",
        "/chat/whatsappNumbers/{instance}",
        "Which numbers are on WhatsApp",
        true,
    ),
    (
        "post",
        "/chat/findMessages/{instance}",
        "The message log, paged",
        true,
    ),
    (
        "post",
        "/chat/findChats/{instance}",
        "Chats of the message log",
        true,
    ),
    (
        "post",
        "/chat/findContacts/{instance}",
        "Contacts of the message log",
        true,
    ),
    (
        "post",
        "/chat/markMessageAsRead/{instance}",
        "Read receipts",
        true,
    ),
    (
        "post",
        "/chat/sendPresence/{instance}",
        "Typing, recording, paused",
        true,
    ),
    (
        "post",
        "/chat/fetchProfile/{instance}",
        "Whether a number exists",
        true,
    ),
    ("post", "/message/sendText/{instance}", "Send a text", true),
    (
        "post",
        "/message/sendMedia/{instance}",
        "Send an image, video, audio or document (JSON)",
        true,
    ),
    (
        "post",
        "/message/sendWhatsAppAudio/{instance}",
        "Send a voice note",
        true,
    ),
    (
        "post",
        "/message/sendSticker/{instance}",
        "Send a sticker",
        true,
    ),
    (
        "post",
        "/message/sendLocation/{instance}",
        "Send a location",
        true,
    ),
    (
        "post",
        "/message/sendContact/{instance}",
        "Send contact cards",
        true,
    ),
    (
        "post",
        "/message/sendReaction/{instance}",
        "React to a message",
        true,
    ),
    ("post", "/message/sendPoll/{instance}", "Send a poll", true),
    (
        "post",
        "/message/sendList/{instance}",
        "Not supported",
        false,
    ),
    (
        "post",
        "/message/sendButtons/{instance}",
        "Not supported",
        false,
    ),
    (
        "post",
        "/message/sendStatus/{instance}",
        "Not supported",
        false,
    ),
    ("post", "/group/create/{instance}", "Create a group", true),
    (
        "get",
        "/group/fetchAllGroups/{instance}",
        "Known groups (?getParticipants=)",
        true,
    ),
    (
        "get",
        "/group/findGroupInfos/{instance}",
        "A group (?groupJid=)",
        true,
    ),
    (
        "get",
        "/group/participants/{instance}",
        "A group's members (?groupJid=)",
        true,
    ),
    (
        "post",
        "/group/updateParticipant/{instance}",
        "Add, remove, promote or demote members (?groupJid=)",
        true,
    ),
    (
        "post",
        "/group/updateSetting/{instance}",
        "announcement, not_announcement, locked or unlocked (?groupJid=)",
        true,
    ),
    (
        "get",
        "/group/inviteCode/{instance}",
        "The invite link (?groupJid=)",
        true,
    ),
    (
        "post",
        "/group/revokeInviteCode/{instance}",
        "Revoke the invite link (?groupJid=)",
        true,
    ),
    (
        "delete",
        "/group/leaveGroup/{instance}",
        "Leave a group (?groupJid=)",
        true,
    ),
    (
        "post",
        "/group/updateGroupSubject/{instance}",
        "Set the subject (?groupJid=)",
        true,
    ),
    (
        "post",
        "/group/updateGroupDescription/{instance}",
        "Set the description (?groupJid=)",
        true,
    ),
    (
        "post",
        "/group/updateGroupPicture/{instance}",
        "Set the picture, base64 JPEG (?groupJid=)",
        true,
    ),
    ("post", "/proxy/set/{instance}", "Not supported", false),
    ("get", "/proxy/find/{instance}", "Not supported", false),
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

/// The document, its paths under `base` (`""` at the root).
pub(crate) fn document(base: &str) -> utoipa::openapi::OpenApi {
    let mut paths = PathsBuilder::new();
    for (method, path, summary, implemented) in ROUTES {
        let method = match *method {
            "get" => HttpMethod::Get,
            "delete" => HttpMethod::Delete,
            _ => HttpMethod::Post,
        };
        let mut op = OperationBuilder::new()
            .tag("evolution")
            .summary(Some(*summary))
            .response("200", response("Evolution's answer (201 for most writes)"))
            .response("201", response("Created"))
            .response("400", response("{status, error, response:{message}}"))
            .response("401", response("Unauthorized"))
            .response("404", response("Unknown instance"));
        if !implemented {
            op = op.response("501", response("Not supported by this dialect"));
        }
        if path.contains("{instance}") {
            op = op.parameter(
                ParameterBuilder::new()
                    .name("instance")
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(utoipa::openapi::Type::String)
                            .build(),
                    )),
            );
        }
        if *path != "/" {
            op = op.security(SecurityRequirement::new("apikey", Vec::<String>::new()));
        }
        if method == HttpMethod::Post {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content("application/json", json_content())
                    .build(),
            ));
        }
        paths = paths.path(format!("{base}{path}"), PathItem::new(method, op.build()));
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("wa-server: Evolution API v2 dialect")
                .version(super::VERSION)
                .description(Some(
                    "Evolution API v2 (2.4.0-rc2) served over wa-server's sessions. See the \
                     README, \"From Evolution API\".",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme(
                    "apikey",
                    SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("apikey"))),
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
        .evolution
        .as_deref()
        .and_then(crate::dialect::base_path)
        .unwrap_or_default();
    Json(serde_json::to_value(document(&base)).unwrap_or(Value::Null))
}
