//! Message content built in Rust: encodes to the bytes real clients produce and decodes
//! back unchanged (replies, mentions, media, reactions, own-device fan-out, history items).

mod support;

use anyhow::{Context, Result};
use prost::Message as _;
use support::{hex_at, load};
use wa_proto::wa::{
    ContextInfo, Message, MessageContextInfo, MessageKey, WebMessageInfo, message, web_message_info,
};

fn round_trip<M: prost::Message + Default + PartialEq + std::fmt::Debug>(
    msg: &M,
) -> Result<Vec<u8>> {
    let bytes = msg.encode_to_vec();
    let decoded = M::decode(bytes.as_slice())?;
    assert_eq!(&decoded, msg);
    Ok(bytes)
}

#[test]
fn text_message_encodes_like_baileys() -> Result<()> {
    let v = load("sender_keys/sender_keys.json");
    let expected = hex_at(&v, "/scenarios/0/messages/0/message_protobuf")?;
    let msg = Message {
        conversation: Some("hello group".into()),
        ..Default::default()
    };
    assert_eq!(round_trip(&msg)?, expected);
    Ok(())
}

#[test]
fn reply_with_mentions_keeps_quoted_message_and_context() -> Result<()> {
    let quoted = Message {
        conversation: Some("original".into()),
        ..Default::default()
    };
    let reply = Message {
        extended_text_message: Some(Box::new(message::ExtendedTextMessage {
            text: Some("@15551234567 see above".into()),
            context_info: Some(Box::new(ContextInfo {
                stanza_id: Some("3EB0C767D26A1D9E5C1B".into()),
                participant: Some("15551234567@s.whatsapp.net".into()),
                quoted_message: Some(Box::new(quoted.clone())),
                remote_jid: Some("120363012345678901@g.us".into()),
                mentioned_jid: vec!["15551234567@s.whatsapp.net".into()],
                ..Default::default()
            })),
            ..Default::default()
        })),
        message_context_info: Some(MessageContextInfo {
            message_secret: Some(vec![0x42; 32]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let bytes = round_trip(&reply)?;
    let decoded = Message::decode(bytes.as_slice())?;
    let ctx = decoded
        .extended_text_message
        .as_ref()
        .and_then(|e| e.context_info.as_ref())
        .context("contextInfo missing")?;
    assert_eq!(ctx.stanza_id(), "3EB0C767D26A1D9E5C1B");
    assert_eq!(ctx.mentioned_jid, ["15551234567@s.whatsapp.net"]);
    assert_eq!(ctx.quoted_message.as_deref(), Some(&quoted));
    Ok(())
}

#[test]
fn media_messages_carry_the_fields_of_an_upload() -> Result<()> {
    let v = load("media/image.json");
    let case = v
        .pointer("/cases/0")
        .context("media/image.json has no cases")?;
    // Field names of the media vectors (shared/vectors/media/README.md).
    let media_key = hex_at(case, "/media_key")?;
    let file_sha256 = hex_at(case, "/file_sha256")?;
    let file_enc_sha256 = hex_at(case, "/file_enc_sha256")?;

    let image = message::ImageMessage {
        url: Some("https://mmg.example.invalid/v/t62.7118-24/1.enc?ccb=11-4".into()),
        mimetype: Some("image/jpeg".into()),
        caption: Some("a caption".into()),
        file_sha256: Some(file_sha256.clone()),
        file_length: Some(1024),
        height: Some(480),
        width: Some(640),
        media_key: Some(media_key.clone()),
        file_enc_sha256: Some(file_enc_sha256.clone()),
        direct_path: Some("/v/t62.7118-24/1.enc?ccb=11-4".into()),
        media_key_timestamp: Some(1_750_000_000),
        jpeg_thumbnail: Some(vec![0xff, 0xd8, 0xff]),
        ..Default::default()
    };
    let msg = Message {
        image_message: Some(Box::new(image)),
        ..Default::default()
    };
    let decoded = Message::decode(round_trip(&msg)?.as_slice())?;
    let img = decoded.image_message.as_ref().context("imageMessage")?;
    assert_eq!(img.media_key(), media_key);
    assert_eq!(img.file_sha256(), file_sha256);
    assert_eq!(img.file_enc_sha256(), file_enc_sha256);

    let voice_note = Message {
        audio_message: Some(Box::new(message::AudioMessage {
            mimetype: Some("audio/ogg; codecs=opus".into()),
            seconds: Some(7),
            ptt: Some(true),
            media_key: Some(media_key.clone()),
            ..Default::default()
        })),
        ..Default::default()
    };
    round_trip(&voice_note)?;

    let document = Message {
        document_message: Some(Box::new(message::DocumentMessage {
            mimetype: Some("application/pdf".into()),
            file_name: Some("report.pdf".into()),
            page_count: Some(3),
            caption: Some("the report".into()),
            file_length: Some(100 * 1024),
            ..Default::default()
        })),
        ..Default::default()
    };
    round_trip(&document)?;

    let video = Message {
        video_message: Some(Box::new(message::VideoMessage {
            seconds: Some(12),
            width: Some(1280),
            height: Some(720),
            gif_playback: Some(false),
            ..Default::default()
        })),
        ..Default::default()
    };
    round_trip(&video)?;

    let sticker = Message {
        sticker_message: Some(Box::new(message::StickerMessage {
            mimetype: Some("image/webp".into()),
            is_animated: Some(false),
            ..Default::default()
        })),
        ..Default::default()
    };
    round_trip(&sticker)?;
    Ok(())
}

#[test]
fn reaction_contacts_and_location_round_trip() -> Result<()> {
    let key = MessageKey {
        remote_jid: Some("15551234567@s.whatsapp.net".into()),
        from_me: Some(false),
        id: Some("3EB0C767D26A1D9E5C1B".into()),
        participant: None,
    };
    let reaction = Message {
        reaction_message: Some(message::ReactionMessage {
            key: Some(key),
            text: Some("👍".into()),
            sender_timestamp_ms: Some(1_750_000_000_000),
            ..Default::default()
        }),
        ..Default::default()
    };
    round_trip(&reaction)?;

    let card = message::ContactMessage {
        display_name: Some("Alice".into()),
        vcard: Some("BEGIN:VCARD\nVERSION:3.0\nFN:Alice\nEND:VCARD".into()),
        context_info: None,
    };
    let contacts = Message {
        contact_message: Some(Box::new(card.clone())),
        contacts_array_message: Some(Box::new(message::ContactsArrayMessage {
            display_name: Some("2 contacts".into()),
            contacts: vec![card.clone(), card],
            context_info: None,
        })),
        ..Default::default()
    };
    round_trip(&contacts)?;

    let location = Message {
        location_message: Some(Box::new(message::LocationMessage {
            degrees_latitude: Some(52.52),
            degrees_longitude: Some(13.405),
            name: Some("Berlin".into()),
            ..Default::default()
        })),
        ..Default::default()
    };
    round_trip(&location)?;
    Ok(())
}

#[test]
fn own_device_fan_out_wraps_the_message_in_device_sent_message() -> Result<()> {
    let inner = Message {
        conversation: Some("hi".into()),
        ..Default::default()
    };
    let wrapped = Message {
        device_sent_message: Some(Box::new(message::DeviceSentMessage {
            destination_jid: Some("15551234567@s.whatsapp.net".into()),
            message: Some(Box::new(inner.clone())),
            phash: Some("2:abcd".into()),
        })),
        ..Default::default()
    };
    let decoded = Message::decode(round_trip(&wrapped)?.as_slice())?;
    let unwrapped = decoded
        .device_sent_message
        .and_then(|d| d.message)
        .context("deviceSentMessage.message missing")?;
    assert_eq!(*unwrapped, inner);
    Ok(())
}

#[test]
fn protocol_messages_for_revoke_and_key_share_round_trip() -> Result<()> {
    let mut revoke = message::ProtocolMessage {
        key: Some(MessageKey {
            remote_jid: Some("15551234567@s.whatsapp.net".into()),
            from_me: Some(true),
            id: Some("ABC".into()),
            participant: None,
        }),
        ..Default::default()
    };
    revoke.set_type(message::protocol_message::Type::Revoke);
    let msg = Message {
        protocol_message: Some(Box::new(revoke)),
        ..Default::default()
    };
    let decoded = Message::decode(round_trip(&msg)?.as_slice())?;
    assert_eq!(
        decoded.protocol_message.as_ref().map(|p| p.r#type()),
        Some(message::protocol_message::Type::Revoke)
    );

    let mut share = message::ProtocolMessage {
        app_state_sync_key_share: Some(message::AppStateSyncKeyShare {
            keys: vec![message::AppStateSyncKey {
                key_id: Some(message::AppStateSyncKeyId {
                    key_id: Some(vec![0, 0, 0, 1]),
                }),
                key_data: Some(message::AppStateSyncKeyData {
                    key_data: Some(vec![9; 32]),
                    fingerprint: Some(message::AppStateSyncKeyFingerprint {
                        raw_id: Some(1),
                        current_index: Some(0),
                        device_indexes: vec![0, 1],
                    }),
                    timestamp: Some(1_750_000_000_000),
                }),
            }],
        }),
        ..Default::default()
    };
    share.set_type(message::protocol_message::Type::AppStateSyncKeyShare);
    round_trip(&Message {
        protocol_message: Some(Box::new(share)),
        ..Default::default()
    })?;
    Ok(())
}

#[test]
fn web_message_info_round_trips_with_status() -> Result<()> {
    let mut info = WebMessageInfo {
        key: Some(MessageKey {
            remote_jid: Some("120363012345678901@g.us".into()),
            from_me: Some(false),
            id: Some("3EB0C767D26A1D9E5C1B".into()),
            participant: Some("15551234567@s.whatsapp.net".into()),
        }),
        message: Some(Message {
            conversation: Some("hello group".into()),
            ..Default::default()
        }),
        message_timestamp: Some(1_750_000_000),
        push_name: Some("Alice".into()),
        ..Default::default()
    };
    info.set_status(web_message_info::Status::DeliveryAck);
    let decoded = WebMessageInfo::decode(round_trip(&info)?.as_slice())?;
    assert_eq!(decoded.status(), web_message_info::Status::DeliveryAck);
    assert_eq!(decoded.status, Some(3));
    Ok(())
}
