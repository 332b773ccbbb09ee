//! The dialect's own OpenAPI 3.1 document (`GET <base>/openapi.json`, no key; tag `waha`):
//! every WAHA route served, with its success status and answer shape, every error status
//! it can answer (in WAHA's error body `{statusCode, message, error, code}`), the `api_key`
//! security scheme (`X-Api-Key`, WAHA's name for it), and which routes answer 501.
//!
//! Request bodies list the fields WAHA's schemas require (`shared/compat/waha.md`), with
//! their types; other keys are accepted, as WAHA accepts them. Answers are described by
//! their JSON type (object, array, boolean, string, or `null` where the server answers
//! `null`); their fields are WAHA's. A test (`tests/dialect_waha.rs`) checks that every
//! path listed here is routed; `schemathesis.sh` (`DIALECT=waha`) checks the server
//! against it.

use axum::Json;
use serde_json::{Map, Value, json};

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

fn string() -> Value {
    json!({ "type": "string" })
}

fn text() -> Value {
    json!({ "type": "string", "minLength": 1 })
}

fn boolean() -> Value {
    json!({ "type": "boolean" })
}

fn number() -> Value {
    json!({ "type": "number" })
}

/// An object with `required` fields among `props` (other keys allowed).
fn object(required: &[&str], props: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": props })
}

/// WAHA's `[Participant{id}]`.
fn participants() -> Value {
    json!({ "type": "array", "items": object(&["id"], json!({ "id": text() })) })
}

/// `RemoteFile{mimetype, url}` or `BinaryFile{mimetype, data}` (`filename` optional).
fn file() -> Value {
    object(
        &[],
        json!({ "mimetype": string(), "url": string(), "data": string(), "filename": string() }),
    )
}

/// The JSON body of `method path` as WAHA's schema requires it (`None`: no body read).
fn request_body(method: &str, path: &str) -> Option<Value> {
    let send = |extra: &[&str], props: Value| {
        let mut required = vec!["session", "chatId"];
        required.extend_from_slice(extra);
        let mut all = json!({ "session": text(), "chatId": text() });
        if let (Value::Object(a), Value::Object(b)) = (&mut all, props) {
            a.extend(b);
        }
        object(&required, all)
    };
    Some(match (method, path) {
        ("post", "/api/sessions") | ("put", "/api/sessions/{session}") => object(
            &[],
            json!({ "name": string(), "start": boolean(), "config": { "type": "object" } }),
        ),
        ("post", "/api/{session}/auth/request-code") => object(
            &["phoneNumber"],
            json!({ "phoneNumber": text(), "method": string() }),
        ),
        ("post", "/api/sendText") => send(
            &["text"],
            json!({ "text": text(), "reply_to": string(), "mentions": { "type": "array", "items": string() } }),
        ),
        ("post", "/api/sendImage" | "/api/sendFile" | "/api/sendVoice" | "/api/sendVideo") => {
            send(&["file"], json!({ "file": file(), "caption": string() }))
        }
        ("post", "/api/sendLocation") => send(
            &["latitude", "longitude"],
            json!({ "latitude": number(), "longitude": number(), "title": string() }),
        ),
        ("post", "/api/sendContactVcard") => send(
            &["contacts"],
            json!({ "contacts": { "type": "array", "items": { "type": "object" } } }),
        ),
        ("post", "/api/sendPoll") => send(
            &["poll"],
            json!({ "poll": object(&["name", "options"], json!({
                "name": text(), "options": { "type": "array", "items": string() },
                "multipleAnswers": boolean() })) }),
        ),
        ("post", "/api/sendSeen") => send(
            &[],
            json!({ "messageId": string(), "messageIds": { "type": "array", "items": string() },
                    "participant": string() }),
        ),
        ("post", "/api/startTyping" | "/api/stopTyping") => send(&[], json!({})),
        ("put", "/api/reaction") => object(
            &["session", "messageId", "reaction"],
            json!({ "session": text(), "messageId": text(), "reaction": string() }),
        ),
        ("post", "/api/{session}/groups") => object(
            &["name", "participants"],
            json!({ "name": text(), "participants": participants() }),
        ),
        ("post", "/api/{session}/groups/join") => object(&["code"], json!({ "code": text() })),
        (
            "post",
            "/api/{session}/groups/{id}/participants/add"
            | "/api/{session}/groups/{id}/participants/remove"
            | "/api/{session}/groups/{id}/admin/promote"
            | "/api/{session}/groups/{id}/admin/demote",
        ) => object(&["participants"], json!({ "participants": participants() })),
        ("put", "/api/{session}/groups/{id}/subject") => {
            object(&["subject"], json!({ "subject": text() }))
        }
        ("put", "/api/{session}/groups/{id}/description") => {
            object(&["description"], json!({ "description": string() }))
        }
        ("put", p) if p.contains("/settings/security/") => {
            object(&["adminsOnly"], json!({ "adminsOnly": boolean() }))
        }
        ("put", "/api/{session}/groups/{id}/picture") => {
            object(&["file"], json!({ "file": file() }))
        }
        ("post", "/api/{session}/chats/overview") => object(
            &[],
            json!({ "pagination": object(&[], json!({ "limit": number(), "offset": number() })),
                    "filter": object(&[], json!({ "ids": { "type": "array", "items": string() } })) }),
        ),
        ("post", _) => json!({ "type": "object" }),
        _ => return None,
    })
}

/// The query parameters of `method path`: `(name, required, schema)`.
fn query(method: &str, path: &str) -> Vec<(&'static str, bool, Value)> {
    let order = json!({ "type": "string", "enum": ["desc", "asc"] });
    let page = |sort: &[&str]| {
        vec![
            ("sortBy", false, json!({ "type": "string", "enum": sort })),
            ("sortOrder", false, order.clone()),
            ("limit", false, json!({ "type": "integer", "minimum": 0 })),
            ("offset", false, json!({ "type": "integer", "minimum": 0 })),
        ]
    };
    let messages = || {
        let mut out = page(&["timestamp", "messageTimestamp"]);
        out.extend([
            ("downloadMedia", false, boolean()),
            ("filter.timestamp.lte", false, json!({ "type": "integer", "minimum": 0 })),
            ("filter.timestamp.gte", false, json!({ "type": "integer", "minimum": 0 })),
            ("filter.fromMe", false, boolean()),
            (
                "filter.ack",
                false,
                json!({ "type": "string", "enum": ["ERROR", "PENDING", "SERVER", "DEVICE", "READ", "PLAYED"] }),
            ),
        ]);
        out
    };
    match (method, path) {
        ("get", "/api/sessions") => vec![("all", false, boolean())],
        ("get", "/api/{session}/auth/qr") => vec![(
            "format",
            false,
            json!({ "type": "string", "enum": ["image", "raw"] }),
        )],
        ("get", "/api/contacts/check-exists") => {
            vec![("phone", true, text()), ("session", true, text())]
        }
        ("get", "/api/{session}/groups") => {
            let mut out = page(&["id", "subject"]);
            out.push((
                "exclude",
                false,
                json!({ "type": "array", "items": { "type": "string", "enum": ["", "participants"] } }),
            ));
            out
        }
        ("get", "/api/{session}/groups/join-info") => vec![("code", true, text())],
        ("get", "/api/{session}/chats") => page(&["conversationTimestamp", "id", "name"]),
        ("get", "/api/{session}/chats/overview") => vec![
            ("limit", false, json!({ "type": "integer", "minimum": 0 })),
            ("offset", false, json!({ "type": "integer", "minimum": 0 })),
        ],
        ("get", "/api/{session}/chats/{chatId}/messages") => messages(),
        ("get", "/api/messages") => {
            let mut out = messages();
            out.push(("session", true, text()));
            out.push(("chatId", true, text()));
            out
        }
        ("get", "/api/contacts/all") => {
            let mut out = page(&["id", "name"]);
            out.push(("session", true, text()));
            out
        }
        ("get", "/api/contacts") => vec![("contactId", true, text()), ("session", true, text())],
        _ => Vec::new(),
    }
}

/// The success status of `method path` and its answer's JSON schema (`None`: no body).
fn success(method: &str, path: &str) -> (u16, Option<Value>) {
    let obj = || Some(json!({ "type": "object" }));
    let arr = || Some(json!({ "type": "array" }));
    match (method, path) {
        ("delete", "/api/sessions/{session}") => (200, None),
        ("get", "/api/sessions/{session}/me") => (200, Some(json!({ "type": ["object", "null"] }))),
        (
            "get",
            "/api/sessions"
            | "/api/{session}/groups"
            | "/api/{session}/chats"
            | "/api/{session}/chats/overview"
            | "/api/{session}/chats/{chatId}/messages"
            | "/api/messages"
            | "/api/contacts/all",
        ) => (200, arr()),
        ("get", p) if p.ends_with("/participants") || p.ends_with("/participants/v2") => {
            (200, arr())
        }
        ("get", p) if p.ends_with("/invite-code") => (200, Some(string())),
        ("post", p) if p.ends_with("/invite-code/revoke") => (200, Some(string())),
        ("put", p)
            if p.contains("/subject")
                || p.contains("/description")
                || p.contains("/settings/security/") =>
        {
            (200, Some(boolean()))
        }
        ("post", p) if p.contains("/participants/") || p.contains("/admin/") => (200, arr()),
        ("post", "/api/{session}/chats/overview") => (201, arr()),
        (
            "post",
            "/api/{session}/groups/refresh"
            | "/api/{session}/groups/join"
            | "/api/{session}/groups/{id}/leave",
        ) => (200, obj()),
        ("post", _) => (201, obj()),
        _ => (200, obj()),
    }
}

/// WAHA's (NestJS's) error body plus the native stable `code`.
fn error_body() -> Value {
    object(
        &["statusCode", "message", "error", "code"],
        json!({ "statusCode": { "type": "integer" }, "message": string(), "error": string(),
                "code": string() }),
    )
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

/// The error statuses of a route, with what each means.
fn errors(path: &str, support: Support) -> Vec<(u16, &'static str)> {
    let mut out = vec![
        (400, "Invalid body or query"),
        (401, "Missing or wrong X-Api-Key"),
        (403, "Another session's token; not a group admin or member"),
        (404, "Unknown session, group, message or invite"),
        (
            409,
            "Not connected, not pairing, a name taken, or a conflicting group change",
        ),
        (
            422,
            "Refused by the native checks (no WhatsApp account, unreachable recipient)",
        ),
        (429, "Send limits"),
        (502, "The WhatsApp server refused the request"),
        (503, "Shutting down"),
        (504, "The WhatsApp server did not answer"),
    ];
    if matches!(
        path,
        "/api/sendImage" | "/api/sendFile" | "/api/sendVoice" | "/api/sendVideo"
    ) {
        out.push((413, "File past --max-media-bytes"));
        out.push((415, "A file type this kind does not take"));
    }
    if support != Yes {
        out.push((501, "Not supported by this dialect (code not_supported)"));
    }
    out.sort_unstable();
    out
}

fn operation(method: &str, path: &str, summary: &str, support: Support) -> Value {
    let mut responses = Map::new();
    if support != No {
        let (status, schema) = success(method, path);
        let mut answer = json!({ "description": "WAHA's answer" });
        if let Some(schema) = schema {
            let mut content = json!({ "application/json": { "schema": schema } });
            if path == "/api/{session}/auth/qr" {
                content["image/png"] =
                    json!({ "schema": { "type": "string", "format": "binary" } });
            }
            answer["content"] = content;
        }
        responses.insert(status.to_string(), answer);
    }
    for (status, what) in errors(path, support) {
        responses.insert(status.to_string(), json_response(what, error_body()));
    }
    let mut params = Vec::new();
    for segment in path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            params.push(json!({ "name": name, "in": "path", "required": true,
                                "schema": { "type": "string", "minLength": 1 } }));
        }
    }
    for (name, required, schema) in query(method, path) {
        params.push(json!({ "name": name, "in": "query", "required": required, "schema": schema }));
    }
    let mut op = json!({
        "tags": ["waha"],
        "summary": summary,
        "operationId": format!("waha_{method}_{}",
            path.trim_start_matches('/').replace(['/', '{', '}', '-', '.'], "_")),
        "parameters": params,
        "responses": responses,
        "security": [{ "api_key": [] }],
    });
    if let Some(body) = request_body(method, path) {
        op["requestBody"] = json!({ "required": true,
                                    "content": { "application/json": { "schema": body } } });
    }
    op
}

/// The document, its paths under `base` (`/waha` by default).
pub(crate) fn document(base: &str) -> Value {
    let mut paths = Map::new();
    for (method, path, summary, support) in ROUTES {
        let item = paths
            .entry(format!("{base}{path}"))
            .or_insert_with(|| json!({}));
        item[*method] = operation(method, path, summary, *support);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "wa-server: WAHA dialect",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "WAHA (WhatsApp HTTP API, 2026.7.1) served over wa-server's sessions. \
                            See the README, \"From WAHA\".",
        },
        "tags": [{ "name": "waha", "description": "WAHA's API" }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "api_key": { "type": "apiKey", "in": "header", "name": "X-Api-Key" },
            },
        },
    })
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
    Json(document(&base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_document_once() {
        let doc = document("/waha");
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
