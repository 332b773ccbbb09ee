//! End to end, engine `Client`s against the sandbox over loopback WebSockets (issue 13
//! items 2-4): the client version gate (`<failure reason="405">` → `ClientOutdated`, no
//! wipe, a newer version connects), presence and chat states between two accounts, and a
//! call placed by a phone that an engine rejects automatically, seen by the caller.

mod support;

use std::sync::Arc;
use std::time::Duration;

use wa_engine::{
    CallKind, ChatState, Client, CloseReason, Event, Jid, LastSeen, MemoryStore, Store as _,
};
use wa_sandbox::{Sandbox, SandboxConfig};

use support::engine::{next_within, paired_engine};

const ALICE: &str = "15550100001";
const BOB: &str = "15550100002";
const STEP: Duration = Duration::from_secs(20);

#[tokio::test]
async fn an_outdated_client_stops_with_client_outdated_keeps_its_keys_and_a_newer_one_connects()
-> anyhow::Result<()> {
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(131)).await?;
    sandbox.create_account(ALICE)?;
    let (client, _events, _jid, store) = paired_engine(&sandbox, ALICE, STEP).await?;
    client.shutdown().await;

    let old = [2, 2300, 1];
    // The sandbox now requires a newer WhatsApp Web version (07 §5.7, its gate config).
    let mut gate = sandbox.router().gate_config();
    gate.min_app_version = Some((2, 3000, 1_000_000_000));
    sandbox.router().set_gate_config(gate);
    let (client, mut events) = Client::builder(store.clone())
        .url(sandbox.ws_url())
        .trust_root(sandbox.trust_root())
        .app_version(old)
        .connect()
        .await?;
    let reason = next_within(&mut events, STEP, |e| match e {
        Event::Disconnected {
            reason,
            reconnecting,
        } => Some((reason.clone(), *reconnecting)),
        Event::Connected { .. } => Some((CloseReason::LocalClose, true)),
        _ => None,
    })
    .await?;
    assert_eq!(
        reason,
        (
            CloseReason::ClientOutdated {
                sent_version: Some(old)
            },
            false
        )
    );
    assert!(reason.0.to_string().contains("2.2300.1"), "{}", reason.0);
    next_within(&mut events, STEP, |e| {
        matches!(e, Event::Stopped).then_some(())
    })
    .await?;
    assert!(
        store.credentials()?.is_some_and(|c| c.account.is_some()),
        "credentials must survive a 405"
    );
    drop(client);

    let (client, mut events) = Client::builder(store.clone())
        .url(sandbox.ws_url())
        .trust_root(sandbox.trust_root())
        .app_version([2, 3000, 1_045_649_367])
        .connect()
        .await?;
    next_within(&mut events, STEP, |e| match e {
        Event::Connected { .. } => Some(()),
        _ => None,
    })
    .await?;
    client.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn presence_and_chat_states_reach_the_other_account() -> anyhow::Result<()> {
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(132)).await?;
    sandbox.create_account(ALICE)?;
    sandbox.create_account(BOB)?;
    let (alice, mut alice_events, alice_jid, _) = paired_engine(&sandbox, ALICE, STEP).await?;
    let (bob, mut bob_events, _bob_jid, _) = paired_engine(&sandbox, BOB, STEP).await?;
    let alice_user = alice_jid.to_non_ad();
    let bob_user = Jid::pn(BOB);

    // Bob subscribes to Alice; Alice goes online, then offline.
    bob.subscribe_presence(&alice_user).await?;
    alice.set_presence(true).await?;
    let online = next_within(&mut bob_events, STEP, |e| match e {
        Event::Presence(p) if p.available => Some(p.clone()),
        _ => None,
    })
    .await?;
    assert_eq!(online.from, alice_user);
    alice.set_presence(false).await?;
    let offline = next_within(&mut bob_events, STEP, |e| match e {
        Event::Presence(p) if !p.available => Some(p.clone()),
        _ => None,
    })
    .await?;
    assert_eq!(offline.from, alice_user);
    assert!(matches!(offline.last_seen, Some(LastSeen::At(t)) if t > 0));

    // Alice types, records, pauses in Bob's chat; Bob sees each, in order.
    for state in [
        ChatState::Composing,
        ChatState::Recording,
        ChatState::Paused,
    ] {
        alice.send_chat_state(&bob_user, state).await?;
        let got = next_within(&mut bob_events, STEP, |e| match e {
            Event::ChatState(c) => Some(c.clone()),
            _ => None,
        })
        .await?;
        assert_eq!(
            (got.chat.clone(), got.sender.clone()),
            (alice_user.clone(), alice_user.clone())
        );
        assert_eq!(got.state, state);
    }
    // And the other way round.
    bob.send_chat_state(&alice_user, ChatState::Composing)
        .await?;
    let got = next_within(&mut alice_events, STEP, |e| match e {
        Event::ChatState(c) => Some(c.clone()),
        _ => None,
    })
    .await?;
    assert_eq!(got.sender, bob_user);
    assert_eq!(got.state, ChatState::Composing);

    alice.shutdown().await;
    bob.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_call_is_rejected_automatically_and_the_caller_sees_it() -> anyhow::Result<()> {
    let sandbox = Sandbox::start(SandboxConfig::default().with_seed(133)).await?;
    sandbox.create_account(ALICE)?;
    sandbox.create_account(BOB)?;
    // Alice's own engine device watches her calls; Bob's rejects calls by itself.
    let (alice, mut alice_events, _, _) = paired_engine(&sandbox, ALICE, STEP).await?;
    let bob_store = Arc::new(MemoryStore::new());
    let bob_phone = sandbox.phone(BOB)?;
    let (bob, mut bob_events) = Client::builder(bob_store)
        .url(sandbox.ws_url())
        .trust_root(sandbox.trust_root())
        .auto_reject_calls(true)
        .connect()
        .await?;
    next_within(&mut bob_events, STEP, |e| match e {
        Event::Qr { code, .. } => {
            let _ = bob_phone.scan(code);
            None
        }
        Event::Connected { .. } => Some(()),
        _ => None,
    })
    .await?;

    let call_id = sandbox.router().place_call(ALICE, BOB, true)?;
    let offer = next_within(&mut bob_events, STEP, |e| match e {
        Event::Call(c) => Some(c.clone()),
        _ => None,
    })
    .await?;
    assert_eq!(offer.call_id, call_id);
    assert_eq!(offer.call_creator, Jid::pn(ALICE));
    assert_eq!(
        offer.kind,
        CallKind::Offer {
            video: true,
            group: false
        }
    );
    assert!(offer.auto_rejected);

    // The caller's side: Alice's linked engine gets the reject, and the server saw it.
    let seen = next_within(&mut alice_events, STEP, |e| match e {
        Event::Call(c) if c.kind == CallKind::Reject => Some(c.clone()),
        _ => None,
    })
    .await?;
    assert_eq!(seen.call_id, call_id);
    assert_eq!(seen.from, Jid::pn(BOB));
    let log = sandbox.router().call_log();
    assert!(
        log.iter()
            .any(|r| r.kind == "reject" && r.from == BOB && r.to == ALICE && r.call_id == call_id),
        "{log:?}"
    );

    // A manual reject has the same shape.
    let second = sandbox.router().place_call(ALICE, BOB, false)?;
    let _ = second;
    alice.reject_call(&Jid::pn(BOB), "NOSUCHCALL").await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        sandbox
            .router()
            .call_log()
            .iter()
            .any(|r| r.kind == "reject" && r.from == ALICE && r.call_id == "NOSUCHCALL")
    );

    alice.shutdown().await;
    bob.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}
