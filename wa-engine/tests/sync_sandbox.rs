//! App-state and history sync of the engine's `Client` against the live sandbox, whose
//! simulated phone owns the sync keys (shared/protocol/08 §11): pair → the phone's key share →
//! full sync of the five collections → push name, contact (with its LID) and NCT salt known →
//! the INITIAL_BOOTSTRAP history chunk downloaded from the sandbox media host, stored and
//! receipted → our own mute and archive patches, decoded by the phone with its keys → our
//! `<presence type="available" name>` carries the synced push name to the server.

mod msg_support;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use msg_support::{STEP, pair, until, wait};
use wa_engine::appstate::{Collection, SyncAction};
use wa_engine::media::Scheme;
use wa_engine::{Client, Event, Events, Jid, MemoryStore, Store};
use wa_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

const ME: &str = "15551290001";
const FRIEND: &str = "15551290002";

async fn connect(
    sandbox: &SandboxHandle,
    store: Arc<dyn Store>,
) -> anyhow::Result<(Client, Events)> {
    Ok(Client::builder(store)
        .url(sandbox.ws_url())
        .trust_root(sandbox.trust_root())
        .media_scheme(Scheme::Http)
        .device_name("sync-e2e")
        .prekey_batch(30)
        .connect()
        .await?)
}

#[tokio::test]
async fn engine_syncs_from_the_sandbox_phone_and_its_own_patches_reach_it() -> anyhow::Result<()> {
    let sandbox =
        Sandbox::start(SandboxConfig::default().with_seed(61).with_phone_sync(true)).await?;
    let phone = sandbox.create_account(ME)?;
    let friend_phone = sandbox.create_account(FRIEND)?;
    friend_phone.set_push_name("Friend Push");
    phone.set_push_name("Ann Phone");
    phone.add_contact(FRIEND, "Friend Person")?;
    let salt = phone.nct_salt().context("salt")?;
    let friend_lid = sandbox.router().account(FRIEND)?.lid;
    let friend_jid: Jid = format!("{FRIEND}@s.whatsapp.net").parse()?;

    // Pair; then wait for the push name, the friend's contact and the history chunk.
    let store: Arc<MemoryStore> = Arc::new(MemoryStore::new());
    let (client, mut events) = connect(&sandbox, store.clone()).await?;
    wait(&mut events, &mut |e| match e {
        Event::Qr { code, .. } => {
            phone.scan(code).expect("scan");
            None
        }
        Event::Connected { .. } => Some(()),
        _ => None,
    })
    .await?;
    let (mut push, mut contact, mut history) = (None, None, None);
    let deadline = tokio::time::Instant::now() + STEP * 2;
    while push.is_none() || contact.is_none() || history.is_none() {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .context("sync events not seen in time")?
            .context("event stream ended")?;
        match event {
            Event::AppState(a) => match &a.action {
                SyncAction::PushName(n) => push = Some(n.clone()),
                SyncAction::Contact {
                    jid,
                    full_name,
                    lid,
                    ..
                } if *jid == friend_jid => {
                    assert_eq!(a.collection, Collection::CriticalUnblockLow);
                    contact = Some((full_name.clone(), lid.clone()));
                }
                _ => {}
            },
            Event::HistorySync(h) => history = Some(h),
            _ => {}
        }
    }
    assert_eq!(push.as_deref(), Some("Ann Phone"));
    let (name, lid) = contact.expect("contact");
    assert_eq!(name.as_deref(), Some("Friend Person"));
    assert_eq!(lid.map(|l| l.user().to_owned()), Some(friend_lid.clone()));
    let history = history.expect("history");
    assert!(
        history
            .data
            .conversations
            .iter()
            .any(|c| c.id.as_deref() == Some(friend_jid.to_string().as_str())),
        "{:?}",
        history.data.conversations
    );
    assert!(
        history
            .data
            .push_names
            .iter()
            .any(|p| p.name == "Friend Push")
    );

    // What the engine stored.
    let creds = store.credentials()?.context("creds")?;
    assert_eq!(creds.push_name, "Ann Phone");
    until(|| {
        store
            .nct_salt()
            .ok()
            .flatten()
            .is_some_and(|s| s[..] == salt[..])
    })
    .await?;
    assert_eq!(
        store.lid_for_pn(FRIEND)?.as_deref(),
        Some(friend_lid.as_str())
    );
    // The phone's initial patches: push name, contacts, salt (the other two are empty).
    for c in [
        Collection::CriticalBlock,
        Collection::CriticalUnblockLow,
        Collection::RegularHigh,
    ] {
        until(|| {
            store
                .app_state_collection(c.as_str())
                .ok()
                .flatten()
                .is_some()
        })
        .await?;
    }
    until(|| !phone.history_receipts().is_empty()).await?;

    // Our own patches, decoded by the phone with its keys.
    client.mute_chat(&friend_jid, Some(Duration::MAX)).await?;
    client.archive_chat(&friend_jid, true).await?;
    let view = phone.app_state();
    assert!(view.errors.is_empty(), "{:?}", view.errors);
    let mute = view
        .records
        .iter()
        .find(|r| r.index == ["mute", friend_jid.to_string().as_str()])
        .context("the phone did not decode our mute")?;
    assert_eq!(mute.action["muted"], true, "{mute:?}");
    assert_eq!(mute.action["until_ms"], -1, "{mute:?}");
    assert_ne!(mute.device, 0);
    assert!(
        view.records
            .iter()
            .any(|r| r.index == ["archive", friend_jid.to_string().as_str()]
                && r.action["archived"] == true),
        "{:?}",
        view.records
    );

    // Presence: another name is put on the account behind our back; after a restart our
    // `<presence type="available" name>` restores the synced one, which the server then
    // hands to the friend as `notify`.
    phone.set_push_name("Overwritten");
    client.shutdown().await;
    let (client, mut events) = connect(&sandbox, store.clone()).await?;
    wait(&mut events, &mut |e| {
        matches!(e, Event::Connected { .. }).then_some(())
    })
    .await?;
    let mut friend = pair(&sandbox, FRIEND).await?;
    // Our presence went out right after <success>; the message below follows it.
    client.send_text(&friend.user(), "hello").await?;
    let got = friend.next_message().await?;
    assert_eq!(got.info.push_name.as_deref(), Some("Ann Phone"));

    friend.shutdown().await;
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_withheld_key_share_is_asked_for_after_the_history_sync() -> anyhow::Result<()> {
    const ME2: &str = "15551290011";
    let sandbox =
        Sandbox::start(SandboxConfig::default().with_seed(62).with_phone_sync(true)).await?;
    let phone = sandbox.create_account(ME2)?;
    phone.set_push_name("Ann Phone");
    phone.set_sync_switches(wa_sandbox::SyncSwitches {
        withhold_key_share: true,
        ..wa_sandbox::SyncSwitches::default()
    })?;
    let store: Arc<MemoryStore> = Arc::new(MemoryStore::new());
    let (client, mut events) = connect(&sandbox, store.clone()).await?;
    wait(&mut events, &mut |e| match e {
        Event::Qr { code, .. } => {
            phone.scan(code).expect("scan");
            None
        }
        Event::HistorySync(_) => Some(()),
        _ => None,
    })
    .await?;
    // No key arrived, so the history sync started a full sync, which parked on the
    // phone's key: we asked our primary for it with a peer message it decrypted.
    until(|| !phone.key_requests().is_empty()).await?;
    let requests = phone.key_requests();
    assert_eq!(requests[0].1, [vec![0, 0, 0, 0, 0, 1]], "{requests:?}");
    assert_ne!(requests[0].0, 0);
    assert!(store.app_state_sync_key_ids()?.is_empty());
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}
