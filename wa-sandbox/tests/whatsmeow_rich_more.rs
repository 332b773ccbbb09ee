//! whatsmeow (pinned in `interop/whatsmeow/go.mod`) as an independent peer for the rest of
//! issue 13 item 5:
//! - disappearing timers both ways (our `Client::set_disappearing_timer`, whatsmeow's
//!   `SetDisappearingTimer`: the 1:1 `EPHEMERAL_SETTING` protocol message), each side
//!   reading the other's value exactly, and messages sent while a timer is on carrying it
//!   (`contextInfo.expiration`; from whatsmeow also in the older `ephemeralMessage` wrapper);
//! - view-once images both ways, uploaded for real to the sandbox's media host, downloaded
//!   and verified by the other side (SHA-256 of the bytes), wrapper and flag exact;
//! - link previews both ways (the card as given: `matchedText`, `title`, `description`);
//! - delete for me between two companions of one account (sandbox with phone sync): our
//!   `deleteMessageForMe` patch decoded by whatsmeow (`events.DeleteForMe`), and whatsmeow's
//!   (built by the harness; whatsmeow has a parser but no builder) decoded by our engine.
//!
//! Needs Go >= 1.24 on PATH; the harness is built on first use. Fails, never skips.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::appsync::synced_engine;
use support::engine::{next_within, prekeys_uploaded};
use support::rich::next_kind;
use support::whatsmeow::Whatsmeow;
use wa_engine::appstate::{Collection, SyncAction};
use wa_engine::media::Scheme;
use wa_engine::media::message::ImageOptions;
use wa_engine::message::ephemeral::{TIMER_7_DAYS, TIMER_OFF};
use wa_engine::message::link_preview::LinkPreview;
use wa_engine::message::rich::TargetKey;
use wa_engine::message::view_once::ViewOnceKind;
use wa_engine::message::{ContentKind, MediaKind};
use wa_engine::{Client, Event, Jid, MemoryStore};
use wa_sandbox::{Sandbox, SandboxConfig};

const ENGINE: &str = "15551290001";
const WHATSMEOW: &str = "15551290002";
const ME: &str = "15551291001";
const FRIEND: &str = "15551291002";
const STEP: Duration = Duration::from_secs(30);

/// A 2×2 RGB PNG.
const PNG_HEX: &str = "89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a730000001149444154789c63f8cfc0004460e23f03001df003fda03309890000000049454e44ae426082";

async fn sent(wm: &mut Whatsmeow) -> anyhow::Result<String> {
    let r = wm
        .until(|e| e["event"] == "sent" || e["event"] == "error")
        .await?;
    anyhow::ensure!(r["event"] == "sent", "whatsmeow send failed: {r}");
    Ok(r["id"].as_str().unwrap_or_default().to_owned())
}

async fn wm_message(wm: &mut Whatsmeow, id: &str) -> anyhow::Result<Value> {
    wm.until(|e| e["event"] == "message" && e["id"] == id).await
}

#[tokio::test]
async fn disappearing_timers_ephemeral_messages_and_view_once_cross_with_whatsmeow()
-> anyhow::Result<()> {
    support::whatsmeow::ensure_built();
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(29)).await?;
    let engine_phone = sandbox.create_account(ENGINE)?;
    let wm_phone = sandbox.create_account(WHATSMEOW)?;
    let (client, mut events) = Client::builder(Arc::new(MemoryStore::new()))
        .url(sandbox.ws_url())
        .trust_root(sandbox.trust_root())
        .media_scheme(Scheme::Http)
        .connect()
        .await?;
    next_within(&mut events, STEP, |e| match e {
        Event::Qr { code, .. } => {
            let _ = engine_phone.scan(code);
            None
        }
        Event::Connected { .. } => Some(()),
        _ => None,
    })
    .await?;
    prekeys_uploaded(&sandbox, ENGINE, STEP).await?;
    let data = tempfile::tempdir()?;
    let mut wm = Whatsmeow::spawn(&sandbox, data.path(), "whatsmeow")?;
    wm.pair(&wm_phone).await?;
    let engine_user = format!("{ENGINE}@s.whatsapp.net");
    let wm_user = Jid::pn(WHATSMEOW);

    // Sessions first (a plain text each way).
    let hello = client.send_text(&wm_user, "hello").await?;
    wm_message(&mut wm, &hello.0).await?;
    wm.command(json!({"cmd": "send_text", "to": engine_user, "text": "hi"}))
        .await?;
    sent(&mut wm).await?;
    next_kind(STEP, &mut events, ContentKind::Text).await?;

    // Our timer (7 days) → whatsmeow reads the setting; our next text carries it.
    let set = client
        .set_disappearing_timer(&wm_user, TIMER_7_DAYS)
        .await?;
    let m = wm_message(&mut wm, &set.0).await?;
    assert_eq!(m["protocol"]["type"], "EPHEMERAL_SETTING", "{m}");
    assert_eq!(m["ephemeralSetting"]["expiration"], 604_800, "{m}");
    assert_eq!(
        client.disappearing_timer(&wm_user)?.map(|t| t.expiration),
        Some(604_800)
    );
    let t = client.send_text(&wm_user, "vanishing from engine").await?;
    let m = wm_message(&mut wm, &t.0).await?;
    assert_eq!(m["text"], "vanishing from engine", "{m}");
    assert_eq!(m["expiration"], 604_800, "{m}");
    assert_eq!(m["isEphemeral"], false, "{m}");

    // whatsmeow's timer (24 h) → our engine classifies it and follows it.
    wm.command(json!({"cmd": "set_disappearing", "to": engine_user, "seconds": 86_400}))
        .await?;
    let r = wm
        .until(|e| e["event"] == "disappearing_set" || e["event"] == "error")
        .await?;
    assert_eq!(r["event"], "disappearing_set", "{r}");
    let s = next_kind(STEP, &mut events, ContentKind::EphemeralSetting).await?;
    let setting = s.content().ephemeral_setting().expect("setting");
    assert_eq!(setting.expiration, 86_400);
    assert!(setting.setting_timestamp.is_some());
    assert_eq!(
        client.disappearing_timer(&wm_user)?.map(|t| t.expiration),
        Some(86_400)
    );

    // whatsmeow's ephemeral texts: contextInfo form and the older wrapper.
    for (wrap, text) in [(false, "eph plain"), (true, "eph wrapped")] {
        wm.command(
            json!({"cmd": "send_ephemeral_text", "to": engine_user, "text": text,
            "seconds": 86_400, "wrap": wrap}),
        )
        .await?;
        let id = sent(&mut wm).await?;
        let m = next_kind(STEP, &mut events, ContentKind::Text).await?;
        assert_eq!(m.info.id, id);
        assert_eq!(m.text(), Some(text));
        assert_eq!(m.content().expiration(), Some(86_400));
        assert_eq!(m.message.ephemeral_message.is_some(), wrap);
    }
    // Our next text follows whatsmeow's timer.
    let t = client.send_text(&wm_user, "after their timer").await?;
    let m = wm_message(&mut wm, &t.0).await?;
    assert_eq!(m["text"], "after their timer", "{m}");
    assert_eq!(m["expiration"], 86_400, "{m}");

    // View-once: our image → whatsmeow downloads it and sees the V2 wrapper and flag.
    let png = hex::decode(PNG_HEX)?;
    let png_sha = hex::encode(Sha256::digest(&png));
    let ours = client
        .send_image(
            &wm_user,
            png.clone(),
            ImageOptions {
                caption: Some("once from engine".into()),
                view_once: true,
                ..Default::default()
            },
        )
        .await?;
    let m = wm_message(&mut wm, &ours.id.0).await?;
    assert_eq!(m["isViewOnce"], true, "{m}");
    assert_eq!(m["isViewOnceV2"], true, "{m}");
    assert_eq!(m["image"]["caption"], "once from engine", "{m}");
    assert_eq!(m["image"]["viewOnce"], true, "{m}");
    assert_eq!(m["image"]["mimetype"], "image/png", "{m}");
    assert_eq!(m["image"]["downloadedSha256"], png_sha.as_str(), "{m}");
    assert_eq!(m["expiration"], 86_400, "{m}");

    // whatsmeow's view-once image → our engine classifies and downloads it.
    wm.command(json!({"cmd": "send_view_once", "to": engine_user,
        "dataB64": base64_std(&png), "mimetype": "image/png", "text": "once from whatsmeow"}))
        .await?;
    let id = sent(&mut wm).await?;
    let m = next_kind(STEP, &mut events, ContentKind::Media(MediaKind::Image)).await?;
    assert_eq!(m.info.id, id);
    assert_eq!(m.content().view_once(), Some(ViewOnceKind::V2));
    assert_eq!(m.text(), Some("once from whatsmeow"));
    let media = m.media()?.expect("media ref");
    assert_eq!(client.download(&media).await?, png);

    // Link previews both ways (the card as given; nothing fetched).
    let card = client
        .send_link_preview(
            &wm_user,
            "read https://example.org/a",
            LinkPreview {
                url: "https://example.org/a".into(),
                title: Some("Example A".into()),
                description: Some("First page".into()),
                jpeg_thumbnail: None,
            },
        )
        .await?;
    let m = wm_message(&mut wm, &card.0).await?;
    assert_eq!(m["text"], "read https://example.org/a", "{m}");
    assert_eq!(
        m["linkPreview"],
        json!({"matchedText": "https://example.org/a", "title": "Example A",
            "description": "First page"}),
        "{m}"
    );
    wm.command(json!({"cmd": "send_link_preview", "to": engine_user,
        "text": "look https://example.org/b", "target": "https://example.org/b",
        "name": "Example B", "options": ["Second page"]}))
        .await?;
    let id = sent(&mut wm).await?;
    let m = next_kind(STEP, &mut events, ContentKind::Text).await?;
    assert_eq!(m.info.id, id);
    assert_eq!(m.text(), Some("look https://example.org/b"));
    let p = m.content().link_preview().expect("preview");
    assert_eq!(
        (p.url, p.title, p.description),
        (
            Some("https://example.org/b"),
            Some("Example B"),
            Some("Second page")
        )
    );

    // Timer off: the setting says 0 and texts carry no expiration.
    let off = client.set_disappearing_timer(&wm_user, TIMER_OFF).await?;
    let m = wm_message(&mut wm, &off.0).await?;
    assert_eq!(m["ephemeralSetting"]["expiration"], 0, "{m}");
    let t = client.send_text(&wm_user, "stays").await?;
    let m = wm_message(&mut wm, &t.0).await?;
    assert_eq!(m["text"], "stays", "{m}");
    assert!(m.get("expiration").is_none(), "{m}");
    Ok(())
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn delete_for_me_crosses_between_engine_and_whatsmeow_companions() -> anyhow::Result<()> {
    support::whatsmeow::ensure_built();
    let sandbox =
        Sandbox::start(SandboxConfig::default().with_seed(72).with_phone_sync(true)).await?;
    let phone = sandbox.create_account(ME)?;
    sandbox.create_account(FRIEND)?;
    phone.set_push_name("Ann Phone");
    let (client, log, _engine_jid, _store) = synced_engine(&sandbox, ME, STEP).await?;
    let data = tempfile::tempdir()?;
    let mut wm = Whatsmeow::spawn(&sandbox, data.path(), "whatsmeow")?;
    wm.pair(&phone).await?;
    wm.until(|e| e["event"] == "app_state_sync_complete" && e["name"] == "regular_high")
        .await?;

    // Ours → whatsmeow: our own message in a 1:1 chat, and someone's in a group.
    let friend = Jid::pn(FRIEND);
    client
        .delete_message_for_me(
            &TargetKey {
                chat: friend.clone(),
                id: "3EB0D1E7E0000000000001".into(),
                from_me: true,
                sender: None,
            },
            Some(1_700_000_000),
        )
        .await?;
    let d = wm.until(|e| e["event"] == "delete_for_me").await?;
    eprintln!("whatsmeow decoded our delete for me: {d}");
    assert_eq!(
        d,
        json!({"event": "delete_for_me", "chat": friend.to_string(), "sender": null,
            "fromMe": true, "id": "3EB0D1E7E0000000000001", "deleteMedia": false,
            "messageTimestamp": 1_700_000_000})
    );
    let group: Jid = "120363000000000077@g.us".parse()?;
    client
        .delete_message_for_me(
            &TargetKey {
                chat: group.clone(),
                id: "3EB0D1E7E0000000000002".into(),
                from_me: false,
                sender: Some(friend.clone()),
            },
            Some(1_700_000_100),
        )
        .await?;
    let d = wm.until(|e| e["event"] == "delete_for_me").await?;
    assert_eq!(d["chat"], group.to_string(), "{d}");
    assert_eq!(d["sender"], friend.to_string(), "{d}");
    assert_eq!(d["fromMe"], false, "{d}");
    assert_eq!(d["id"], "3EB0D1E7E0000000000002", "{d}");

    // whatsmeow → ours.
    let mark = log.len();
    wm.command(json!({"cmd": "delete_for_me", "to": group.to_string(),
        "target": "3EB0D1E7E0000000000003", "fromMe": false, "sender": friend.to_string()}))
        .await?;
    let r = wm
        .until(|e| e["event"] == "app_state_sent" || e["event"] == "error")
        .await?;
    assert_eq!(r["event"], "app_state_sent", "{r}");
    let got = log
        .app_state_change(mark, STEP, |a| {
            matches!(a, SyncAction::DeleteMessageForMe { message_id, .. }
                if message_id == "3EB0D1E7E0000000000003")
        })
        .await?;
    eprintln!("the engine decoded whatsmeow's delete for me: {got:?}");
    assert_eq!(got.collection, Collection::RegularHigh);
    match got.action {
        SyncAction::DeleteMessageForMe {
            chat,
            from_me,
            sender,
            delete_media,
            message_timestamp,
            ..
        } => {
            assert_eq!(chat, group);
            assert!(!from_me);
            assert_eq!(sender, Some(friend.clone()));
            assert!(!delete_media);
            assert!(message_timestamp.is_some_and(|t| t > 1_700_000_000));
        }
        other => panic!("not a delete for me: {other:?}"),
    }
    let view = phone.app_state();
    assert!(view.errors.is_empty(), "{:?}", view.errors);
    Ok(())
}
