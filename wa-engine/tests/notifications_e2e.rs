//! Every notification type of issue 13, pushed by wa-sandbox (`Router::push_notification`,
//! the shapes whatsmeow parses), arrives at a real `Client` as its typed event with its
//! fields; and edge routing info is stored, survives a restart and a 515, and goes back to
//! the server in the `ED` pre-intro of the next connection.

mod msg_support;

use std::sync::Arc;

use base64::Engine as _;
use msg_support::{Peer, connect, pair, pair_with, sandbox, wait};
use serde_json::json;
use wa_engine::appstate::Collection;
use wa_engine::notification::{AccountSync, NotificationKind};
use wa_engine::{Event, GroupChange, Jid, SledStore, Store};
use wa_sandbox::{Fault, Notice, SandboxHandle, StreamErrorKind, Target};

const ALICE: &str = "15550001301";
const BOB: &str = "15550001302";
const GROUP: &str = "120363000000001301@g.us";

fn push(sb: &SandboxHandle, phone: &str, body: serde_json::Value) -> anyhow::Result<()> {
    let notice: Notice = serde_json::from_value(body)?;
    sb.router().push_notification(phone, &notice)?;
    Ok(())
}

/// Pushes `body` and waits for the typed notification it produces.
async fn notification(
    sb: &SandboxHandle,
    peer: &mut Peer,
    body: serde_json::Value,
) -> anyhow::Result<(Option<Jid>, NotificationKind)> {
    push(sb, ALICE, body)?;
    peer.wait(|e| match e {
        Event::Notification(n) => Some((n.from.clone(), n.kind.clone())),
        _ => None,
    })
    .await
}

/// The group change and extras of a `w:gp2` notification.
async fn group(
    sb: &SandboxHandle,
    peer: &mut Peer,
    body: serde_json::Value,
) -> anyhow::Result<(
    wa_engine::GroupNotification,
    wa_engine::notification::GroupExtras,
)> {
    match notification(sb, peer, body).await? {
        (_, NotificationKind::Group(g, x)) => Ok((g, x)),
        (_, other) => anyhow::bail!("expected a group notification, got {other:?}"),
    }
}

#[tokio::test]
async fn every_notification_type_arrives_as_its_typed_event() -> anyhow::Result<()> {
    let sb = sandbox(1301).await?;
    let mut alice = pair(&sb, ALICE).await?;
    sb.create_account(BOB)?;
    let group_jid: Jid = GROUP.parse()?;
    let bob = Jid::pn(BOB);
    let carol = Jid::pn("15550001303");

    // w:gp2: subject, description (set, removed), participants, settings, invite, ephemeral.
    let (g, _) = group(
        &sb,
        &mut alice,
        json!({"kind": "group_subject", "group": GROUP, "actor": bob.to_string(), "subject": "Trip"}),
    )
    .await?;
    assert_eq!(g.group, group_jid);
    assert_eq!(g.actor, Some(bob.clone()));
    assert_eq!(g.changes, vec![GroupChange::Subject("Trip".into())]);
    let (_, x) = group(
        &sb,
        &mut alice,
        json!({"kind": "group_description", "group": GROUP, "description": "rules"}),
    )
    .await?;
    assert_eq!(x.description, Some(Some("rules".into())));
    let (_, x) = group(
        &sb,
        &mut alice,
        json!({"kind": "group_description", "group": GROUP, "description": null}),
    )
    .await?;
    assert_eq!(x.description, Some(None));
    for (action, expect) in [
        ("add", GroupChange::Added(vec![carol.clone()])),
        ("remove", GroupChange::Removed(vec![carol.clone()])),
        ("promote", GroupChange::Promoted(vec![carol.clone()])),
        ("demote", GroupChange::Demoted(vec![carol.clone()])),
    ] {
        let (g, _) = group(
            &sb,
            &mut alice,
            json!({"kind": "group_participants", "group": GROUP, "action": action,
                   "participants": [carol.to_string()]}),
        )
        .await?;
        assert_eq!(g.changes, vec![expect], "{action}");
    }
    let (_, x) = group(
        &sb,
        &mut alice,
        json!({"kind": "group_announce", "group": GROUP, "announce": true}),
    )
    .await?;
    assert_eq!(x.announce, Some(true));
    let (_, x) = group(
        &sb,
        &mut alice,
        json!({"kind": "group_locked", "group": GROUP, "locked": false}),
    )
    .await?;
    assert_eq!(x.locked, Some(false));
    let (_, x) = group(
        &sb,
        &mut alice,
        json!({"kind": "group_invite", "group": GROUP, "code": "AbCdEf123"}),
    )
    .await?;
    assert_eq!(x.invite_code.as_deref(), Some("AbCdEf123"));
    let (_, x) = group(
        &sb,
        &mut alice,
        json!({"kind": "group_ephemeral", "group": GROUP, "expiration": 604_800}),
    )
    .await?;
    assert_eq!(x.ephemeral_secs, Some(604_800));
    let (_, x) = group(
        &sb,
        &mut alice,
        json!({"kind": "group_ephemeral", "group": GROUP, "expiration": 0}),
    )
    .await?;
    assert_eq!(x.ephemeral_secs, Some(0));

    // account_sync.
    for (what, expect) in [
        ("devices", AccountSync::Devices),
        ("privacy", AccountSync::Privacy),
        ("picture", AccountSync::Picture),
        ("blocklist", AccountSync::Blocklist),
    ] {
        let (_, kind) = notification(
            &sb,
            &mut alice,
            json!({"kind": "account_sync", "what": what}),
        )
        .await?;
        assert_eq!(kind, NotificationKind::AccountSync(expect), "{what}");
    }

    // picture (set, removed), status, devices.
    let (from, kind) = notification(
        &sb,
        &mut alice,
        json!({"kind": "picture", "jid": bob.to_string(), "picture_id": "1700000001"}),
    )
    .await?;
    assert_eq!(from, Some(bob.clone()));
    assert_eq!(
        kind,
        NotificationKind::Picture {
            jid: Some(bob.clone()),
            picture_id: Some("1700000001".into()),
            removed: false
        }
    );
    let (_, kind) = notification(
        &sb,
        &mut alice,
        json!({"kind": "picture", "jid": bob.to_string(), "picture_id": null}),
    )
    .await?;
    assert_eq!(
        kind,
        NotificationKind::Picture {
            jid: Some(bob.clone()),
            picture_id: None,
            removed: true
        }
    );
    let (from, kind) = notification(
        &sb,
        &mut alice,
        json!({"kind": "status", "jid": bob.to_string(), "text": "at the gym"}),
    )
    .await?;
    assert_eq!(from, Some(bob.clone()));
    assert_eq!(
        kind,
        NotificationKind::Status {
            text: Some("at the gym".into())
        }
    );
    let (from, kind) = notification(
        &sb,
        &mut alice,
        json!({"kind": "devices", "jid": bob.to_string(), "action": "add", "device": 7}),
    )
    .await?;
    assert_eq!((from, kind), (Some(bob.clone()), NotificationKind::Devices));

    // encrypt: prekey count, identity change; mediaretry.
    let (_, kind) = notification(
        &sb,
        &mut alice,
        json!({"kind": "prekey_count", "count": 42}),
    )
    .await?;
    assert_eq!(kind, NotificationKind::PreKeyCount(42));
    let (from, kind) = notification(
        &sb,
        &mut alice,
        json!({"kind": "identity_change", "jid": bob.to_string()}),
    )
    .await?;
    assert_eq!(
        (from, kind),
        (Some(bob.clone()), NotificationKind::IdentityChange)
    );
    let (_, kind) = notification(
        &sb,
        &mut alice,
        json!({"kind": "media_retry", "message_id": "3EB0MEDIA01"}),
    )
    .await?;
    assert_eq!(
        kind,
        NotificationKind::MediaRetry {
            message_id: Some("3EB0MEDIA01".into())
        }
    );

    // server_sync, privacy_token, timelock, capping.
    push(
        &sb,
        ALICE,
        json!({"kind": "server_sync", "collections": ["regular_high", "critical_block"]}),
    )?;
    // server_sync starts an app-state fetch; its stanza is passed up raw.
    let collections = alice
        .wait(|e| match e {
            Event::Stanza(n) if n.get_attr_str("type") == Some("server_sync") => Some(
                wa_engine::appstate::iq::parse_server_sync(n)
                    .into_iter()
                    .map(|(c, _)| c)
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .await?;
    assert_eq!(
        collections,
        vec![Collection::RegularHigh, Collection::CriticalBlock]
    );
    push(
        &sb,
        ALICE,
        json!({"kind": "privacy_token", "issuer": BOB, "t": 1_700_000_000u64}),
    )?;
    let token = alice
        .wait(|e| match e {
            Event::PrivacyToken(t) => Some(t.clone()),
            _ => None,
        })
        .await?;
    let bob_lid = sb.router().account(BOB)?.lid;
    assert_eq!(token.from, bob);
    assert_eq!(token.sender_lid, Some(Jid::lid(bob_lid)));
    assert_eq!(
        (token.tokens, token.newest_timestamp),
        (1, Some(1_700_000_000))
    );
    push(
        &sb,
        ALICE,
        json!({"kind": "timelock", "active": true, "ends": 4_000_000_000u64}),
    )?;
    let lock = alice
        .wait(|e| match e {
            Event::ReachoutTimelock(l) => Some(l.clone()),
            _ => None,
        })
        .await?;
    assert!(lock.is_active);
    assert_eq!(lock.ends, Some(4_000_000_000));
    push(
        &sb,
        ALICE,
        json!({"kind": "capping", "total_quota": 10, "used_quota": 10,
               "cycle_start": 1_700_000_000u64, "cycle_end": 4_000_000_000u64}),
    )?;
    let cap = alice
        .wait(|e| match e {
            Event::NewChatCapping(c) => Some(c.clone()),
            _ => None,
        })
        .await?;
    assert_eq!((cap.total_quota, cap.used_quota), (Some(10), Some(10)));
    assert!(cap.is_capped());

    // <ib>: dirty, edge_routing, offline_preview, offline.
    push(
        &sb,
        ALICE,
        json!({"kind": "dirty", "dirty_type": "groups", "timestamp": 1_700_000_123u64}),
    )?;
    let dirty = alice
        .wait(|e| match e {
            Event::Dirty { kind, timestamp } => Some((kind.clone(), *timestamp)),
            _ => None,
        })
        .await?;
    assert_eq!(dirty, ("groups".to_owned(), 1_700_000_123));
    let route = b"edge-route-1301".to_vec();
    push(
        &sb,
        ALICE,
        json!({"kind": "edge_routing",
               "routing_info_b64": base64::engine::general_purpose::STANDARD.encode(&route)}),
    )?;
    let edge = alice
        .wait(|e| match e {
            Event::EdgeRoutingUpdated { len, stored } => Some((*len, *stored)),
            _ => None,
        })
        .await?;
    assert_eq!(edge, (route.len(), true));
    push(
        &sb,
        ALICE,
        json!({"kind": "offline_preview", "count": 9, "message": 4, "notification": 3,
               "receipt": 1, "appdata": 1}),
    )?;
    let preview = alice
        .wait(|e| match e {
            Event::OfflineSyncPreview(p) => Some(*p),
            _ => None,
        })
        .await?;
    assert_eq!(
        (
            preview.total,
            preview.messages,
            preview.notifications,
            preview.receipts,
            preview.app_data
        ),
        (9, 4, 3, 1, 1)
    );
    push(&sb, ALICE, json!({"kind": "offline", "count": 9}))?;
    alice
        .wait(|e| match e {
            Event::OfflineSyncCompleted { count: 9 } => Some(()),
            _ => None,
        })
        .await?;

    alice.shutdown().await;
    sb.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn edge_routing_is_stored_survives_restart_and_515_and_is_sent_in_ed() -> anyhow::Result<()> {
    let sb = sandbox(1302).await?;
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path())?);
    let mut alice = pair_with(&sb, ALICE, store.clone()).await?;
    let device = alice.jid.device();
    // Before any routing info, the client sent no pre-intro.
    assert!(sb.router().edge_routing(ALICE)?.received.is_empty());

    let route = b"\x01edge-route\xff1302".to_vec();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&route);
    // Through the account's phone handle this time (same path as the router's).
    let notice: Notice =
        serde_json::from_value(json!({"kind": "edge_routing", "routing_info_b64": b64}))?;
    assert_eq!(sb.phone(ALICE)?.push_notification(&notice)?, 2);
    alice
        .wait(|e| match e {
            Event::EdgeRoutingUpdated { stored: true, .. } => Some(()),
            _ => None,
        })
        .await?;
    assert_eq!(
        store
            .app_value("wa.edge", b"routing_info")?
            .map(|b| b.as_bytes().to_vec()),
        Some(route.clone())
    );

    // A 515 restart: the client reconnects at once, with the pre-intro, and the info stays.
    sb.router().inject(Fault::StreamError {
        target: Target::device(ALICE, device),
        error: StreamErrorKind::Code(515),
    });
    alice
        .wait(|e| match e {
            Event::Connected { .. } => Some(()),
            _ => None,
        })
        .await?;
    msg_support::until(|| {
        sb.router()
            .edge_routing(ALICE)
            .is_ok_and(|v| v.received.iter().any(|r| r.device == device))
    })
    .await?;
    let seen = sb.router().edge_routing(ALICE)?;
    assert_eq!(seen.issued_b64.as_deref(), Some(b64.as_str()));
    assert_eq!(seen.received.len(), 1);
    assert_eq!(seen.received[0].routing_info_b64, b64);
    let after_515 = seen.received[0].connections;
    assert!(after_515 >= 1);
    assert!(store.app_value("wa.edge", b"routing_info")?.is_some());

    // A process restart: a new client over the reopened store sends the stored info.
    alice.shutdown().await;
    drop(store);
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path())?);
    let (client, mut events) = connect(&sb, store.clone()).await?;
    wait(&mut events, &mut |e| match e {
        Event::Connected { .. } => Some(()),
        _ => None,
    })
    .await?;
    msg_support::until(|| {
        sb.router().edge_routing(ALICE).is_ok_and(|v| {
            v.received
                .iter()
                .any(|r| r.device == device && r.connections > after_515)
        })
    })
    .await?;
    let seen = sb.router().edge_routing(ALICE)?;
    assert_eq!(seen.received[0].routing_info_b64, b64);
    assert_eq!(
        store
            .app_value("wa.edge", b"routing_info")?
            .map(|b| b.as_bytes().to_vec()),
        Some(route)
    );
    client.shutdown().await;
    sb.shutdown().await;
    Ok(())
}
