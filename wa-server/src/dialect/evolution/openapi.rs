//! The dialect's own OpenAPI 3.1 document (`GET <base>/openapi.json`, tag `evolution`):
//! every route with its method, its success status, every error status it can answer, the
//! `apikey` security scheme, Evolution's error body `{status, error, response: {message}}`,
//! and which routes answer 501.
//!
//! Request bodies list the fields Evolution's validator requires (`validate/*.schema.ts`,
//! see `../shared/compat/evolution-v2.md`) with their types; other keys are accepted, as
//! Evolution accepts them. Answers are described as free-form JSON objects or arrays (their
//! fields are Evolution's, documented there), `null` where the server answers `null`.
//! `schemathesis.sh` (`DIALECT=evolution`) checks the server against this document.

use axum::Json;
use serde_json::{Map, Value, json};

/// What an operation reaches, which decides the error statuses it can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// No key, no instance (`GET /`).
    Open,
    /// The key and the dialect's own store only (settings, webhooks, instance rows).
    Store,
    /// A session or the engine (sends, groups, chats, pairing): besides the store's,
    /// 403 (not a group admin), 409 (not connected, group conflicts), 422 (the native
    /// checks: no WhatsApp account, unreachable recipient), 429 (send limits), 502/504 (the
    /// WhatsApp server refused or did not answer), 503 (shutting down).
    Engine,
    /// A media send: the engine's statuses, plus 413 (file past `--max-media-bytes`) and
    /// 415 (a file type the kind does not take).
    Media,
    /// Answered with 501 (not supported by this dialect), after the instance guard.
    Unsupported,
}

/// The shape of a success answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A JSON object.
    Object,
    /// A JSON array.
    Array,
    /// A JSON object, or `null` (never set).
    ObjectOrNull,
}

/// One route of the dialect.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route {
    /// `get`, `post` or `delete`.
    pub(crate) method: &'static str,
    /// Path relative to the base path.
    pub(crate) path: &'static str,
    /// One line on what it does.
    pub(crate) summary: &'static str,
    /// The success status (none for [`Reach::Unsupported`]).
    pub(crate) success: u16,
    /// The success answer's shape.
    pub(crate) shape: Shape,
    /// What it reaches.
    pub(crate) reach: Reach,
}

const fn r(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    success: u16,
    shape: Shape,
    reach: Reach,
) -> Route {
    Route {
        method,
        path,
        summary,
        success,
        shape,
        reach,
    }
}

use Reach::{Engine, Media, Open, Store, Unsupported};
use Shape::{Array, Object, ObjectOrNull};

/// Every route, in the routers' order (`api/routes/*.router.ts`).
pub(crate) const ROUTES: &[Route] = &[
    r("get", "/", "Health and version (no key)", 200, Object, Open),
    r(
        "post",
        "/verify-creds",
        "200 for the global key, 401 otherwise",
        200,
        Object,
        Store,
    ),
    r(
        "post",
        "/instance/create",
        "Create an instance (global key)",
        201,
        Object,
        Engine,
    ),
    r(
        "get",
        "/instance/fetchInstances",
        "List instances",
        200,
        Array,
        Store,
    ),
    r(
        "get",
        "/instance/connect/{instance}",
        "QR or pairing code (?number=)",
        200,
        Object,
        Engine,
    ),
    r(
        "get",
        "/instance/connectionState/{instance}",
        "open, connecting or close",
        200,
        Object,
        Store,
    ),
    r(
        "post",
        "/instance/restart/{instance}",
        "Reconnect",
        200,
        Object,
        Store,
    ),
    r(
        "delete",
        "/instance/logout/{instance}",
        "Unlink the device",
        200,
        Object,
        Engine,
    ),
    r(
        "delete",
        "/instance/delete/{instance}",
        "Delete the instance",
        200,
        Object,
        Engine,
    ),
    r(
        "post",
        "/instance/setPresence/{instance}",
        "available or unavailable",
        201,
        Object,
        Engine,
    ),
    r(
        "post",
        "/settings/set/{instance}",
        "Set the settings",
        201,
        Object,
        Store,
    ),
    r(
        "get",
        "/settings/find/{instance}",
        "The settings",
        200,
        Object,
        Store,
    ),
    r(
        "post",
        "/webhook/set/{instance}",
        "Set the webhook",
        201,
        Object,
        Store,
    ),
    r(
        "get",
        "/webhook/find/{instance}",
        "The webhook, or null",
        200,
        ObjectOrNull,
        Store,
    ),
    r(
        "post",
        "/chat/whatsappNumbers/{instance}",
        "Which numbers are on WhatsApp",
        200,
        Array,
        Engine,
    ),
    r(
        "post",
        "/chat/findMessages/{instance}",
        "The message log, paged",
        200,
        Object,
        Store,
    ),
    r(
        "post",
        "/chat/findChats/{instance}",
        "Chats of the message log",
        200,
        Array,
        Store,
    ),
    r(
        "post",
        "/chat/findContacts/{instance}",
        "Contacts of the message log",
        200,
        Array,
        Store,
    ),
    r(
        "post",
        "/chat/markMessageAsRead/{instance}",
        "Read receipts",
        201,
        Object,
        Engine,
    ),
    r(
        "post",
        "/chat/sendPresence/{instance}",
        "Typing, recording, paused",
        201,
        Object,
        Engine,
    ),
    r(
        "post",
        "/chat/fetchProfile/{instance}",
        "Whether a number exists",
        200,
        Object,
        Engine,
    ),
    r(
        "post",
        "/message/sendText/{instance}",
        "Send a text",
        201,
        Object,
        Engine,
    ),
    r(
        "post",
        "/message/sendMedia/{instance}",
        "Send an image, video, audio or document (JSON with a URL or base64, or multipart with a file part)",
        201,
        Object,
        Media,
    ),
    r(
        "post",
        "/message/sendWhatsAppAudio/{instance}",
        "Send a voice note",
        201,
        Object,
        Media,
    ),
    r(
        "post",
        "/message/sendSticker/{instance}",
        "Send a sticker",
        201,
        Object,
        Media,
    ),
    r(
        "post",
        "/message/sendLocation/{instance}",
        "Send a location",
        201,
        Object,
        Engine,
    ),
    r(
        "post",
        "/message/sendContact/{instance}",
        "Send contact cards",
        201,
        Object,
        Engine,
    ),
    r(
        "post",
        "/message/sendReaction/{instance}",
        "React to a message",
        201,
        Object,
        Engine,
    ),
    r(
        "post",
        "/message/sendPoll/{instance}",
        "Send a poll",
        201,
        Object,
        Engine,
    ),
    r(
        "post",
        "/message/sendList/{instance}",
        "Not supported (501)",
        0,
        Object,
        Unsupported,
    ),
    r(
        "post",
        "/message/sendButtons/{instance}",
        "Not supported (501)",
        0,
        Object,
        Unsupported,
    ),
    r(
        "post",
        "/message/sendStatus/{instance}",
        "Not supported (501)",
        0,
        Object,
        Unsupported,
    ),
    r(
        "post",
        "/group/create/{instance}",
        "Create a group",
        201,
        Object,
        Engine,
    ),
    r(
        "get",
        "/group/fetchAllGroups/{instance}",
        "Known groups (?getParticipants=)",
        200,
        Array,
        Engine,
    ),
    r(
        "get",
        "/group/findGroupInfos/{instance}",
        "A group (?groupJid=)",
        200,
        Object,
        Engine,
    ),
    r(
        "get",
        "/group/participants/{instance}",
        "A group's members (?groupJid=)",
        200,
        Object,
        Engine,
    ),
    r(
        "post",
        "/group/updateParticipant/{instance}",
        "Add, remove, promote or demote members (?groupJid=)",
        201,
        Object,
        Engine,
    ),
    r(
        "post",
        "/group/updateSetting/{instance}",
        "announcement, not_announcement, locked or unlocked (?groupJid=)",
        201,
        Object,
        Engine,
    ),
    r(
        "get",
        "/group/inviteCode/{instance}",
        "The invite link (?groupJid=)",
        200,
        Object,
        Engine,
    ),
    r(
        "post",
        "/group/revokeInviteCode/{instance}",
        "Revoke the invite link (?groupJid=)",
        201,
        Object,
        Engine,
    ),
    r(
        "delete",
        "/group/leaveGroup/{instance}",
        "Leave a group (?groupJid=)",
        200,
        Object,
        Engine,
    ),
    r(
        "post",
        "/group/updateGroupSubject/{instance}",
        "Set the subject (?groupJid=)",
        201,
        Object,
        Engine,
    ),
    r(
        "post",
        "/group/updateGroupDescription/{instance}",
        "Set the description (?groupJid=)",
        201,
        Object,
        Engine,
    ),
    r(
        "post",
        "/group/updateGroupPicture/{instance}",
        "Set the picture: a JPEG as base64 or an http(s) URL (?groupJid=)",
        201,
        Object,
        Media,
    ),
    r(
        "post",
        "/proxy/set/{instance}",
        "Not supported (501)",
        0,
        Object,
        Unsupported,
    ),
    r(
        "get",
        "/proxy/find/{instance}",
        "null: no proxy (the server connects without one)",
        200,
        ObjectOrNull,
        Store,
    ),
];

fn string() -> Value {
    json!({ "type": "string" })
}

/// A non-empty string (the handlers refuse `""`).
fn text() -> Value {
    json!({ "type": "string", "minLength": 1 })
}

/// A chat as `number` or `remoteJid` give it: a phone number, or a user, LID or group JID.
const CHAT_PATTERN: &str =
    r"^(\+?[0-9][0-9 ()-]{6,24}|[0-9]{5,20}(-[0-9]{1,20})?@(s\.whatsapp\.net|lid|g\.us))$";

/// A group id as `?groupJid=` gives it (`@g.us` optional).
const GROUP_PATTERN: &str = r"^[0-9]{5,20}(-[0-9]{1,20})?(@g\.us)?$";

fn chat() -> Value {
    json!({ "type": "string", "pattern": CHAT_PATTERN })
}

fn strings() -> Value {
    json!({ "type": "array", "items": { "type": "string" } })
}

fn boolean() -> Value {
    json!({ "type": "boolean" })
}

/// An object with `required` fields among `props` (other keys allowed).
fn object(required: &[&str], props: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": props })
}

/// A message key (`{id, remoteJid, fromMe}`).
fn message_key() -> Value {
    object(
        &["id", "remoteJid", "fromMe"],
        json!({ "id": text(), "remoteJid": chat(), "fromMe": boolean(), "participant": chat() }),
    )
}

/// The JSON body of `path` as Evolution's validator requires it (`None`: no body read).
fn request_body(path: &str) -> Option<Value> {
    let number = chat;
    Some(match path {
        "/instance/create" => object(
            &["instanceName"],
            json!({ "instanceName": string(), "token": string(), "number": string(),
                    "qrcode": boolean(), "integration": string() }),
        ),
        "/instance/setPresence/{instance}" => object(
            &["presence"],
            json!({ "presence": { "type": "string", "enum": ["available", "unavailable"] } }),
        ),
        "/settings/set/{instance}" => object(
            &[
                "rejectCall",
                "groupsIgnore",
                "alwaysOnline",
                "readMessages",
                "readStatus",
                "syncFullHistory",
            ],
            json!({ "rejectCall": boolean(), "groupsIgnore": boolean(), "alwaysOnline": boolean(),
                    "readMessages": boolean(), "readStatus": boolean(), "syncFullHistory": boolean(),
                    "msgCall": string(), "wavoipToken": string() }),
        ),
        "/webhook/set/{instance}" => object(
            &["webhook"],
            json!({ "webhook": object(&["enabled", "url"], json!({
                "enabled": boolean(), "url": string(), "byEvents": boolean(), "base64": boolean(),
                "headers": { "type": "object" }, "events": strings() })) }),
        ),
        "/chat/whatsappNumbers/{instance}" => object(
            &["numbers"],
            json!({ "numbers": { "type": "array", "minItems": 1, "items": text() } }),
        ),
        "/chat/markMessageAsRead/{instance}" => object(
            &["readMessages"],
            json!({ "readMessages": { "type": "array", "items": message_key() } }),
        ),
        "/chat/sendPresence/{instance}" => object(
            &["number", "presence"],
            json!({ "number": number(),
                    "presence": { "type": "string",
                        "enum": ["unavailable", "available", "composing", "recording", "paused"] },
                    "delay": { "type": "integer", "minimum": 0,
                        "description": "ms; the server waits at most 20000" } }),
        ),
        "/chat/fetchProfile/{instance}" => object(&["number"], json!({ "number": number() })),
        "/message/sendText/{instance}" => object(
            &["number", "text"],
            json!({ "number": number(), "text": text(), "mentioned": strings(),
                    "quoted": object(&["key"], json!({ "key": object(&["id"], json!({ "id": string() })) })) }),
        ),
        "/message/sendMedia/{instance}" => object(
            &["number", "mediatype"],
            json!({ "number": number(),
                    "mediatype": { "type": "string", "enum": ["image", "video", "audio", "document"] },
                    "media": { "type": "string", "description": "http(s) URL or base64" },
                    "mimetype": string(), "caption": string(), "fileName": string() }),
        ),
        "/message/sendWhatsAppAudio/{instance}" => object(
            &["number", "audio"],
            json!({ "number": number(), "audio": { "type": "string", "description": "http(s) URL or base64" } }),
        ),
        "/message/sendSticker/{instance}" => object(
            &["number", "sticker"],
            json!({ "number": number(), "sticker": { "type": "string", "description": "http(s) URL or base64 (WebP)" } }),
        ),
        "/message/sendLocation/{instance}" => object(
            &["number", "latitude", "longitude", "name", "address"],
            json!({ "number": number(), "latitude": { "type": "number" }, "longitude": { "type": "number" },
                    "name": string(), "address": string() }),
        ),
        "/message/sendContact/{instance}" => object(
            &["number", "contact"],
            json!({ "number": number(), "contact": { "type": "array",
                "items": object(&["fullName", "phoneNumber"], json!({ "fullName": string(), "phoneNumber": { "type": "string", "minLength": 10 } })) } }),
        ),
        "/message/sendReaction/{instance}" => object(
            &["key", "reaction"],
            json!({ "key": message_key(), "reaction": string() }),
        ),
        "/message/sendPoll/{instance}" => object(
            &["number", "name", "selectableCount", "values"],
            json!({ "number": number(), "name": text(),
                    "selectableCount": { "type": "integer", "minimum": 0, "maximum": 10 },
                    "values": { "type": "array", "minItems": 2, "maxItems": 12, "uniqueItems": true, "items": string() } }),
        ),
        "/group/create/{instance}" => object(
            &["subject", "participants"],
            json!({ "subject": text(), "participants": { "type": "array", "items": chat() }, "description": string() }),
        ),
        "/group/updateParticipant/{instance}" => object(
            &["action", "participants"],
            json!({ "action": { "type": "string", "enum": ["add", "remove", "promote", "demote"] },
                    "participants": { "type": "array", "minItems": 1, "items": chat() } }),
        ),
        "/group/updateSetting/{instance}" => object(
            &["action"],
            json!({ "action": { "type": "string",
                "enum": ["announcement", "not_announcement", "locked", "unlocked"] } }),
        ),
        "/group/updateGroupSubject/{instance}" => {
            object(&["subject"], json!({ "subject": text() }))
        }
        "/group/updateGroupDescription/{instance}" => {
            object(&["description"], json!({ "description": string() }))
        }
        "/group/updateGroupPicture/{instance}" => object(
            &["image"],
            json!({ "image": { "type": "string", "description": "JPEG as base64, or an http(s) URL" } }),
        ),
        "/chat/findMessages/{instance}"
        | "/chat/findChats/{instance}"
        | "/chat/findContacts/{instance}" => json!({ "type": "object" }),
        _ => return None,
    })
}

/// The multipart form of `sendMedia`: the JSON body's fields as text parts, the file in
/// `file`.
fn media_form() -> Value {
    json!({
        "schema": object(&["number", "mediatype", "file"], json!({
            "number": string(),
            "mediatype": { "type": "string", "enum": ["image", "video", "audio", "document"] },
            "mimetype": string(), "caption": string(), "fileName": string(),
            "file": { "type": "string", "format": "binary" } })),
    })
}

/// The query parameters of `path`: `(name, required, schema)`.
fn query(path: &str) -> Vec<(&'static str, bool, Value)> {
    match path {
        "/instance/fetchInstances" => vec![
            ("instanceName", false, string()),
            ("instanceId", false, string()),
        ],
        "/instance/connect/{instance}" => vec![("number", false, string())],
        "/group/fetchAllGroups/{instance}" => vec![(
            "getParticipants",
            true,
            json!({ "type": "string", "enum": ["true", "false"] }),
        )],
        p if p.starts_with("/group/") && p != "/group/create/{instance}" => {
            vec![(
                "groupJid",
                true,
                json!({ "type": "string", "pattern": GROUP_PATTERN }),
            )]
        }
        _ => Vec::new(),
    }
}

/// Evolution's error body.
fn error_body() -> Value {
    json!({
        "type": "object",
        "required": ["status", "error", "response"],
        "properties": {
            "status": { "type": "integer" },
            "error": { "type": "string" },
            "response": { "type": "object", "required": ["message"],
                          "properties": { "message": { "description": "a string or an array" } } },
        },
    })
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

/// The error statuses of a route, with what each means.
fn errors(route: &Route) -> Vec<(u16, &'static str)> {
    let mut out = Vec::new();
    if route.reach == Open {
        return out;
    }
    out.push((400, "Invalid request (Evolution's validator messages)"));
    out.push((401, "Missing or wrong apikey"));
    if route.path.contains("{instance}") || route.path == "/instance/fetchInstances" {
        out.push((404, "Unknown instance"));
    }
    if route.reach == Unsupported {
        out.push((501, "Not supported by this dialect"));
        return out;
    }
    if route.method == "post" {
        out.push((413, "Body past the limit"));
    }
    if matches!(route.reach, Engine | Media) {
        out.push((403, "Forbidden (name taken, not a group admin)"));
        out.push((409, "Not connected, or a conflicting group change"));
        out.push((422, "Refused by the native checks"));
        out.push((429, "Send limits"));
        out.push((502, "The WhatsApp server refused the request"));
        out.push((503, "Shutting down"));
        out.push((504, "The WhatsApp server did not answer"));
    }
    if route.reach == Media {
        out.push((415, "A file type this kind does not take"));
    }
    out.sort_unstable();
    out
}

fn operation(route: &Route) -> Value {
    let mut responses = Map::new();
    if route.reach != Unsupported {
        let schema = match route.shape {
            Object => json!({ "type": "object" }),
            Array => json!({ "type": "array" }),
            ObjectOrNull => json!({ "type": ["object", "null"] }),
        };
        responses.insert(
            route.success.to_string(),
            json_response("Evolution's answer", schema),
        );
    }
    for (status, what) in errors(route) {
        responses.insert(status.to_string(), json_response(what, error_body()));
    }
    let mut params = Vec::new();
    if route.path.contains("{instance}") {
        params.push(json!({ "name": "instance", "in": "path", "required": true,
                            "schema": { "type": "string", "minLength": 1 } }));
    }
    for (name, required, schema) in query(route.path) {
        params.push(json!({ "name": name, "in": "query", "required": required, "schema": schema }));
    }
    let mut op = json!({
        "tags": ["evolution"],
        "summary": route.summary,
        "operationId": format!("evolution_{}_{}", route.method,
            route.path.trim_start_matches('/').replace(['/', '{', '}', '-'], "_")),
        "parameters": params,
        "responses": responses,
    });
    if route.reach != Open {
        op["security"] = json!([{ "apikey": [] }]);
    }
    if let Some(body) = request_body(route.path) {
        let mut content = Map::new();
        content.insert("application/json".to_owned(), json!({ "schema": body }));
        if route.path == "/message/sendMedia/{instance}" {
            content.insert("multipart/form-data".to_owned(), media_form());
        }
        op["requestBody"] = json!({ "required": true, "content": content });
    }
    op
}

/// The document, its paths under `base` (`""` at the root).
pub(crate) fn document(base: &str) -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let item = paths
            .entry(format!("{base}{}", route.path))
            .or_insert_with(|| json!({}));
        item[route.method] = operation(route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "wa-server: Evolution API v2 dialect",
            "version": super::VERSION,
            "description": "Evolution API v2 (2.4.0-rc2) served over wa-server's sessions. \
                See the README, \"From Evolution API\".",
        },
        "paths": paths,
        "components": {
            "securitySchemes": { "apikey": { "type": "apiKey", "in": "header", "name": "apikey" } },
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
        .evolution
        .as_deref()
        .and_then(crate::dialect::base_path)
        .unwrap_or_default();
    Json(document(&base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_once_with_its_statuses() {
        let doc = document("/evolution");
        let mut seen = std::collections::HashSet::new();
        for route in ROUTES {
            assert!(seen.insert((route.method, route.path)), "{route:?} twice");
            let op = &doc["paths"][format!("/evolution{}", route.path)][route.method];
            assert!(op.is_object(), "{route:?} missing");
            let responses = op["responses"].as_object().expect("responses");
            if route.reach == Reach::Unsupported {
                assert!(responses.contains_key("501"), "{route:?}");
            } else {
                assert!(
                    responses.contains_key(&route.success.to_string()),
                    "{route:?}"
                );
                assert!(!responses.contains_key("501"), "{route:?}");
            }
        }
    }
}
