//! Small schema-only types and serde helpers that make the OpenAPI document say exactly what
//! the server accepts (schemathesis' "schema-valid request rejected" check): phone numbers
//! and recipients in the forms that always parse, event-type names, and integers written
//! as `564.0` (a JSON Schema integer).

use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

/// An international phone number: `+`, a country code not starting with 0, 8-15 digits in
/// all (E.164). The server also reads local forms (`0812...`, digits in the default country,
/// `00CC...`, separators) when they are unambiguous; those can be refused (400
/// `invalid_phone_number`, `ambiguous_phone_number`), this form never is.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, pattern = "^\\+[1-9][0-9]{7,14}$", example = "+628123456789")]
#[allow(dead_code)] // only its schema is used
pub(crate) struct E164(String);

/// A recipient: an international phone number ([`E164`]) or a user JID
/// (`628123456789@s.whatsapp.net`). The server also takes local numbers, `...@lid` users and
/// `...@g.us` groups (which can be refused: invalid, ambiguous, not a member).
#[derive(Debug, ToSchema)]
#[schema(
    value_type = String,
    pattern = "^(\\+[1-9][0-9]{7,14}|[1-9][0-9]{7,14}@s\\.whatsapp\\.net)$",
    example = "+628123456789"
)]
#[allow(dead_code)] // only its schema is used
pub(crate) struct Recipient(String);

/// A webhook's event filter entry: an event type or `*` (all).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // only its schema is used
pub(crate) enum HookEventName {
    /// All events.
    #[schema(rename = "*")]
    All,
    /// `qr`.
    #[schema(rename = "qr")]
    Qr,
    /// `pairing_code`.
    #[schema(rename = "pairing_code")]
    PairingCode,
    /// `connection`.
    #[schema(rename = "connection")]
    Connection,
    /// `message`.
    #[schema(rename = "message")]
    Message,
    /// `message_status`.
    #[schema(rename = "message_status")]
    MessageStatus,
    /// `message_undecryptable`.
    #[schema(rename = "message_undecryptable")]
    MessageUndecryptable,
    /// `logged_out`.
    #[schema(rename = "logged_out")]
    LoggedOut,
    /// `presence`.
    #[schema(rename = "presence")]
    Presence,
    /// `chat_state`.
    #[schema(rename = "chat_state")]
    ChatState,
    /// `call`.
    #[schema(rename = "call")]
    Call,
    /// `app_state`.
    #[schema(rename = "app_state")]
    AppState,
    /// `history_sync`.
    #[schema(rename = "history_sync")]
    HistorySync,
    /// `reachout_timelock`.
    #[schema(rename = "reachout_timelock")]
    ReachoutTimelock,
    /// `new_chat_capping`.
    #[schema(rename = "new_chat_capping")]
    NewChatCapping,
    /// `message_reaction`.
    #[schema(rename = "message_reaction")]
    MessageReaction,
    /// `message_edited`.
    #[schema(rename = "message_edited")]
    MessageEdited,
    /// `message_revoked`.
    #[schema(rename = "message_revoked")]
    MessageRevoked,
    /// `poll_vote`.
    #[schema(rename = "poll_vote")]
    PollVote,
    /// `notification`.
    #[schema(rename = "notification")]
    Notification,
    /// `group_update`.
    #[schema(rename = "group_update")]
    GroupUpdate,
    /// `group_participants`.
    #[schema(rename = "group_participants")]
    GroupParticipants,
    /// `account_sync`.
    #[schema(rename = "account_sync")]
    AccountSync,
    /// `contact_picture`.
    #[schema(rename = "contact_picture")]
    ContactPicture,
    /// `contact_status`.
    #[schema(rename = "contact_status")]
    ContactStatus,
    /// `contact_devices`.
    #[schema(rename = "contact_devices")]
    ContactDevices,
    /// `identity_changed`.
    #[schema(rename = "identity_changed")]
    IdentityChanged,
    /// `prekey_count`.
    #[schema(rename = "prekey_count")]
    PrekeyCount,
    /// `media_retry`.
    #[schema(rename = "media_retry")]
    MediaRetry,
    /// `server_sync`.
    #[schema(rename = "server_sync")]
    ServerSync,
    /// `privacy_token`.
    #[schema(rename = "privacy_token")]
    PrivacyToken,
    /// `dirty`.
    #[schema(rename = "dirty")]
    Dirty,
    /// `offline_preview`.
    #[schema(rename = "offline_preview")]
    OfflinePreview,
    /// `offline_sync`.
    #[schema(rename = "offline_sync")]
    OfflineSync,
    /// `edge_routing`.
    #[schema(rename = "edge_routing")]
    EdgeRouting,
    /// `chat_ephemeral`.
    #[schema(rename = "chat_ephemeral")]
    ChatEphemeral,
}

/// The options of a new poll: 2-12 distinct strings of 1-100 characters.
pub(crate) fn poll_options() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    media_send::to_schema(serde_json::json!({
        "type": "array", "minItems": 2, "maxItems": 12, "uniqueItems": true,
        "items": { "type": "string", "minLength": 1, "maxLength": 100 },
    }))
}

/// The options of a vote: up to 12 distinct option names (1-100 characters each).
pub(crate) fn vote_options() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    media_send::to_schema(serde_json::json!({
        "type": "array", "maxItems": 12, "uniqueItems": true,
        "items": { "type": "string", "minLength": 1, "maxLength": 100 },
    }))
}

/// The request bodies of the media sends (`POST .../messages/{kind}`), one pair per kind
/// (see [`media_send`]).
pub(crate) mod media_send {
    use serde_json::{Map, Value, json};
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::{Object, RefOr};

    use crate::media::Kind;

    /// Longest caption, characters (as `media::intake`).
    const MAX_CAPTION: u64 = 65_536;

    /// One byte of a file signature: a fixed value or any byte.
    type SigByte = Option<u8>;

    /// Signatures (first bytes) of the files each kind accepts, as the sniffer
    /// ([`crate::media::sniff`], the `infer` crate) recognises them, and each of which the
    /// kind's allow-list takes: a body whose decoded bytes start with one of them is of the
    /// kind, whatever follows. Box sizes are fixed (a `ftyp` box of 32 bytes) so that no
    /// other format's signature at offset 0 can match first.
    fn signatures(kind: Kind, voice_note: bool) -> Vec<Vec<SigByte>> {
        let fixed = |b: &[u8]| b.iter().copied().map(Some).collect::<Vec<_>>();
        let ftyp = |brand: &[u8; 4]| {
            let mut v = fixed(b"\0\0\0\x20ftyp");
            v.extend(fixed(brand));
            v
        };
        let webp = || {
            let mut v = fixed(b"RIFF");
            v.extend([None; 4]);
            v.extend(fixed(b"WEBP"));
            v
        };
        let opus = || {
            let mut v = fixed(b"OggS");
            v.extend([None; 24]);
            v.extend(fixed(b"OpusHead"));
            v
        };
        match kind {
            Kind::Image => vec![fixed(b"\xff\xd8\xff"), fixed(b"\x89PNG\r\n\x1a\n"), webp()],
            Kind::Video => vec![ftyp(b"isom"), ftyp(b"mp42")],
            Kind::Audio if voice_note => vec![opus()],
            Kind::Audio => vec![opus(), fixed(b"ID3"), ftyp(b"M4A ")],
            Kind::Sticker => vec![webp()],
            Kind::Document => vec![],
        }
    }

    /// [`signatures`], for the tests.
    #[cfg(test)]
    pub(super) fn signatures_for_test(kind: Kind, voice_note: bool) -> Vec<Vec<SigByte>> {
        signatures(kind, voice_note)
    }

    /// The base64 alphabet (standard), in value order.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    /// Any base64 character, as a regular-expression class.
    const ANY: &str = "[A-Za-z0-9+/]";
    /// What may follow a prefix of whole 4-character groups: more groups, then a canonical
    /// last group (unused bits zero, padding optional), as the server's decoder requires.
    const TAIL: &str =
        "([A-Za-z0-9+/]{4})*([A-Za-z0-9+/][AQgw](==)?|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=?)?$";

    /// The base64 characters each position of the encoding of `sig` (padded with any bytes
    /// to whole 3-byte groups) can take: exactly those of some byte string with the
    /// signature.
    pub(super) fn char_sets(sig: &[SigByte]) -> Vec<Vec<u8>> {
        let mut sig = sig.to_vec();
        while !sig.len().is_multiple_of(3) {
            sig.push(None);
        }
        let mut out = Vec::new();
        for group in sig.chunks(3) {
            let options = |b: SigByte| match b {
                Some(v) => vec![v],
                None => (0..=255).collect(),
            };
            let mut sets = [[false; 64]; 4];
            // At most 2^24 combinations when all three are free: shortcut that case.
            if group.iter().all(Option::is_none) {
                sets = [[true; 64]; 4];
            } else {
                for a in options(group[0]) {
                    for b in options(group[1]) {
                        for c in options(group[2]) {
                            let n = (u32::from(a) << 16) | (u32::from(b) << 8) | u32::from(c);
                            for (i, set) in sets.iter_mut().enumerate() {
                                set[((n >> (18 - 6 * i)) & 63) as usize] = true;
                            }
                        }
                    }
                }
            }
            for set in sets {
                out.push((0..64).filter(|&v| set[v]).map(|v| ALPHABET[v]).collect());
            }
        }
        out
    }

    /// A regular expression for one character set.
    fn class(set: &[u8]) -> String {
        match set {
            s if s.len() == 64 => ANY.to_owned(),
            [b'+'] => "\\+".to_owned(),
            [c] => char::from(*c).to_string(),
            s => format!("[{}]", s.iter().map(|&c| char::from(c)).collect::<String>()),
        }
    }

    /// The pattern of a `base64` field of `kind`: canonical base64 whose bytes start with
    /// one of the kind's signatures (any non-empty file for documents).
    pub(crate) fn base64_pattern(kind: Kind, voice_note: bool) -> String {
        let sigs = signatures(kind, voice_note);
        if sigs.is_empty() {
            return format!("^{ANY}{{4}}{TAIL}");
        }
        let alternatives: Vec<String> = sigs
            .iter()
            .map(|sig| char_sets(sig).iter().map(|s| class(s)).collect())
            .collect();
        format!("^({}){TAIL}", alternatives.join("|"))
    }

    /// The MIME types the kind's `file` part may be (its bytes are sniffed, not the part's
    /// `Content-Type`); `None` for documents (any file).
    pub(crate) fn part_types(kind: Kind) -> Option<&'static str> {
        match kind {
            Kind::Image => Some("image/jpeg, image/png, image/webp"),
            Kind::Video => Some("video/mp4, video/3gpp"),
            Kind::Audio => Some("audio/ogg, audio/mpeg, audio/mp4, audio/aac, audio/amr"),
            Kind::Sticker => Some("image/webp"),
            Kind::Document => None,
        }
    }

    /// The fields of `kind` other than the file.
    fn fields(kind: Kind) -> Map<String, Value> {
        let mut f = Map::new();
        f.insert(
            "to".into(),
            json!({ "$ref": "#/components/schemas/Recipient" }),
        );
        f.insert(
            "check_number".into(),
            json!({ "type": "boolean", "description":
                "Check the number is on WhatsApp first (422 `not_on_whatsapp` if not)." }),
        );
        if matches!(kind, Kind::Image | Kind::Video | Kind::Document) {
            f.insert(
                "caption".into(),
                json!({ "type": "string", "maxLength": MAX_CAPTION, "description": "Caption." }),
            );
        }
        if matches!(kind, Kind::Image | Kind::Video) {
            f.insert(
                "view_once".into(),
                json!({ "type": "boolean", "description":
                    "View once: the recipient can open it once (sent as `viewOnceMessageV2`)." }),
            );
        }
        if kind == Kind::Document {
            f.insert(
                "file_name".into(),
                json!({ "type": "string", "maxLength": super::super::media::intake::MAX_FILE_NAME,
                    "description": "File name shown (default: from the URL's path or the part's file name)." }),
            );
            f.insert(
                "mimetype".into(),
                json!({ "type": "string", "maxLength": 255,
                    "pattern": "^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(;[ -~]*)?$",
                    "description": "The MIME type to announce when the file's type cannot be sniffed from its bytes (e.g. `text/csv`)." }),
            );
        }
        f
    }

    fn object(properties: Map<String, Value>, required: &[&str]) -> Value {
        json!({ "type": "object", "properties": properties, "required": required,
            "additionalProperties": false })
    }

    /// The JSON body of `kind`: exactly one of `url` and `base64` (two variants, each
    /// requiring its own and not allowing the other); for audio, a voice note's `base64`
    /// must be Ogg Opus.
    pub(crate) fn json_body(kind: Kind) -> Value {
        let url = json!({ "type": "string", "maxLength": 4096,
            "pattern": "^https?://[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:[1-9][0-9]{0,3})?(/[!-~]*)?$",
            "description": "An `http`/`https` URL the server fetches the file from (its bytes must be of the kind: 415). \
                Non-public targets are refused with 400 `target_not_allowed` unless the server runs with \
                `--allow-private-targets` or `--allowed-target-cidrs`; a failed fetch is 400 `media_fetch_failed`." });
        let b64 = |voice: bool| {
            json!({ "type": "string", "pattern": base64_pattern(kind, voice),
            "description": "The file as base64 (standard alphabet, padding optional; the server also takes a `data:` URL and line breaks). \
                The pattern spells out the file signatures the kind accepts." })
        };
        let variant = |file: &str, schema: Value, voice: Option<bool>| {
            let mut p = fields(kind);
            p.insert(file.into(), schema);
            let mut required = vec!["to", file];
            if let Some(v) = voice {
                p.insert("voice_note".into(), json!({ "type": "boolean", "enum": [v],
                    "description": "Send as a voice note (push-to-talk; the file must be Ogg Opus)." }));
                if v {
                    required.push("voice_note");
                }
            }
            object(p, &required)
        };
        let variants = if kind == Kind::Audio {
            vec![
                variant("url", url.clone(), Some(false)),
                variant("url", url, Some(true)),
                variant("base64", b64(false), Some(false)),
                variant("base64", b64(true), Some(true)),
            ]
        } else {
            vec![
                variant("url", url, None),
                variant("base64", b64(false), None),
            ]
        };
        json!({ "oneOf": variants })
    }

    /// The multipart body of `kind`: the `file` part and the kind's fields, nothing else.
    pub(crate) fn form_body(kind: Kind) -> Value {
        let mut p = fields(kind);
        // A file of the kind as the example (the smallest the sniffer takes; all in ASCII).
        let example = match kind {
            Kind::Image | Kind::Sticker => "RIFF    WEBPVP8 ",
            Kind::Video => "\0\0\0 ftypisom",
            Kind::Audio => "OggS                        OpusHead",
            Kind::Document => "%PDF-1.4\n",
        };
        p.insert(
            "file".into(),
            json!({ "type": "string", "format": "binary", "example": example,
                "description": "The file (its type is sniffed from the bytes: 415 if not of the kind)." }),
        );
        if kind == Kind::Audio {
            p.insert(
                "voice_note".into(),
                json!({ "type": "boolean",
                    "description": "Send as a voice note (push-to-talk; the file must be Ogg Opus, else 415)." }),
            );
        }
        object(p, &["to", "file"])
    }

    /// `value` as a utoipa schema (a JSON Schema this module wrote).
    pub(crate) fn to_schema(value: Value) -> RefOr<Schema> {
        serde_json::from_value(value).unwrap_or_else(|_| RefOr::T(Schema::Object(Object::new())))
    }
}

/// Defines a media body schema type: `$name`, whose schema is `$builder(Kind::$kind)`.
macro_rules! media_body {
    ($($name:ident = $builder:ident($kind:ident), $what:literal;)*) => {$(
        #[doc = concat!($what, " of a ", stringify!($kind), " send ([`media_send::", stringify!($builder), "`]).")]
        pub(crate) struct $name;
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                media_send::to_schema(media_send::$builder(crate::media::Kind::$kind))
            }
        }
        impl ToSchema for $name {
            fn schemas(
                schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>,
            ) {
                schemas.push(("Recipient".to_owned(), <Recipient as utoipa::PartialSchema>::schema()));
            }
        }
    )*};
}

media_body! {
    SendImageJson = json_body(Image), "JSON body";
    SendImageForm = form_body(Image), "Multipart body";
    SendVideoJson = json_body(Video), "JSON body";
    SendVideoForm = form_body(Video), "Multipart body";
    SendAudioJson = json_body(Audio), "JSON body";
    SendAudioForm = form_body(Audio), "Multipart body";
    SendDocumentJson = json_body(Document), "JSON body";
    SendDocumentForm = form_body(Document), "Multipart body";
    SendStickerJson = json_body(Sticker), "JSON body";
    SendStickerForm = form_body(Sticker), "Multipart body";
}

/// An optional integer field that also takes a JSON number with a zero fraction (`564.0`),
/// which JSON Schema calls an integer.
pub(crate) fn opt_int<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = match (n.as_u64(), n.as_f64()) {
        (Some(u), _) => Some(u),
        (None, Some(f)) if f.fract() == 0.0 && (0.0..=9.007_199_254_740_992e15).contains(&f) => {
            // Exact: an integral f64 within 2^53.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Some(f as u64)
        }
        _ => None,
    };
    whole
        .and_then(|u| T::try_from(u).ok())
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!("expected a whole number in range, got {n}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "opt_int")]
        n: Option<u8>,
    }

    #[test]
    fn integral_floats_are_integers() {
        let t: T = serde_json::from_str(r#"{"n": 6.0}"#).expect("6.0");
        assert_eq!(t.n, Some(6));
        let t: T = serde_json::from_str(r#"{"n": 6}"#).expect("6");
        assert_eq!(t.n, Some(6));
        let t: T = serde_json::from_str(r#"{"n": null}"#).expect("null");
        assert_eq!(t.n, None);
        let t: T = serde_json::from_str("{}").expect("absent");
        assert_eq!(t.n, None);
        assert!(serde_json::from_str::<T>(r#"{"n": 6.5}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"n": 300}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"n": -1}"#).is_err());
    }

    /// Every media kind.
    const KINDS: [crate::media::Kind; 5] = [
        crate::media::Kind::Image,
        crate::media::Kind::Video,
        crate::media::Kind::Audio,
        crate::media::Kind::Document,
        crate::media::Kind::Sticker,
    ];

    /// Every string the `base64` pattern of a kind allows decodes to a file the kind
    /// accepts: random characters from each position's set, then random whole groups.
    #[test]
    fn media_base64_patterns_only_allow_files_of_the_kind() {
        use base64::Engine as _;

        use crate::media::Kind;
        use crate::media::intake::{Fields, checked_mimetype};
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % n as u64).expect("small")
        };
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for (kind, voice) in [
            (Kind::Image, false),
            (Kind::Video, false),
            (Kind::Audio, false),
            (Kind::Audio, true),
            (Kind::Sticker, false),
        ] {
            let sigs = media_send::signatures_for_test(kind, voice);
            assert!(!sigs.is_empty());
            for sig in sigs {
                let sets = media_send::char_sets(&sig);
                for _ in 0..200 {
                    let mut text: Vec<u8> = sets.iter().map(|s| s[next(s.len())]).collect();
                    for _ in 0..(4 * next(16)) {
                        text.push(alphabet[next(64)]);
                    }
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(&text)
                        .expect("decodes");
                    let fields = Fields {
                        voice_note: voice,
                        ..Fields::default()
                    };
                    let head = &bytes[..bytes.len().min(64)];
                    assert!(
                        checked_mimetype(kind, &fields, head).is_ok(),
                        "{kind:?} (voice {voice}) refuses {}",
                        String::from_utf8_lossy(&text)
                    );
                }
            }
            let pattern = media_send::base64_pattern(kind, voice);
            assert!(
                pattern.starts_with("^(") && pattern.ends_with('$'),
                "{pattern}"
            );
        }
    }

    #[test]
    fn media_form_examples_are_files_of_the_kind() {
        use crate::media::Kind;
        use crate::media::intake::{Fields, checked_mimetype};
        for kind in KINDS {
            let form = media_send::form_body(kind);
            let example = form["properties"]["file"]["example"]
                .as_str()
                .expect("example");
            for voice in [false, kind == Kind::Audio] {
                let fields = Fields {
                    voice_note: voice,
                    ..Fields::default()
                };
                assert!(
                    checked_mimetype(kind, &fields, example.as_bytes()).is_ok(),
                    "{kind:?} (voice {voice}): {example:?}"
                );
            }
        }
    }

    #[test]
    fn media_bodies_are_json_schemas() {
        use crate::media::Kind;
        for kind in KINDS {
            let json = serde_json::to_value(media_send::to_schema(media_send::json_body(kind)))
                .expect("json");
            let variants = json["oneOf"].as_array().expect("oneOf");
            assert!(variants.len() >= 2);
            for v in variants {
                assert_eq!(v["additionalProperties"], false, "{v}");
                assert!(
                    v["required"].as_array().is_some_and(|r| r.len() >= 2),
                    "{v}"
                );
            }
            let form = serde_json::to_value(media_send::to_schema(media_send::form_body(kind)))
                .expect("form");
            assert_eq!(form["additionalProperties"], false, "{form}");
            assert_eq!(form["required"], serde_json::json!(["to", "file"]));
            assert_eq!(
                form["properties"]["caption"].is_object(),
                matches!(kind, Kind::Image | Kind::Video | Kind::Document)
            );
            assert_eq!(
                form["properties"]["file_name"].is_object(),
                kind == Kind::Document
            );
            assert_eq!(
                form["properties"]["voice_note"].is_object(),
                kind == Kind::Audio
            );
        }
    }

    #[test]
    fn hook_event_names_are_the_event_types_and_star() {
        let schema = serde_json::to_value(<HookEventName as utoipa::PartialSchema>::schema())
            .expect("schema");
        let names: Vec<&str> = schema["enum"]
            .as_array()
            .expect("enum")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(names[0], "*");
        assert_eq!(&names[1..], crate::events::EVENT_TYPES);
    }
}
