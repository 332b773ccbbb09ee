//! The issue-11 acceptance through wa-sandbox's privacy-token gate with the simulated phone's
//! sync on (shared/protocol/07 §5.3, §5.4; 08 §11): the NCT salt is never put into the store
//! by the test, it arrives the way it does on the real service (app-state `nct_salt_sync` and
//! history sync field 19).
//!
//! - Policy P3 "always": an OTP to a cold contact carries a cstoken from the *synced* salt and
//!   is delivered; an account whose phone withholds the salt on both channels gets the typed
//!   463 error at once. After the recipient replies, the recipient's trusted-contact token is
//!   stored and the next send is admitted on it alone (the server no longer honours the
//!   sender's cstoken). Once that token expired (simulated time on both sides) the send falls
//!   back to the cstoken.
//! - Policy P2 "timelocked sender": the server's `mex` push becomes a `ReachoutTimelock`
//!   event carrying when the lock ends; a send to a new contact fails with the typed
//!   `ReachoutTimelocked` error and is not retried.

mod msg_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use msg_support::{Peer, STEP, pair, until};
use wa_engine::privacy::TcToken;
use wa_engine::store::StoreBatch;
use wa_engine::{Event, SendError};
use wa_sandbox::{
    PrivacySettings, Sandbox, SandboxConfig, SandboxHandle, SyncSwitches, TokenPolicy,
};

const ALICE: &str = "15550000911";
const BOB: &str = "15550000912";
const DAVE: &str = "15550000914";
const ERIN: &str = "15550000915";

/// One tctoken bucket of the sandbox (seconds, 7 days: 07 §2.6).
const WEEK: u64 = 7 * 24 * 3600;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn always() -> PrivacySettings {
    PrivacySettings {
        policy: TokenPolicy::Always,
        ..PrivacySettings::default()
    }
}

async fn synced_sandbox(seed: u64) -> anyhow::Result<SandboxHandle> {
    Ok(Sandbox::start(
        SandboxConfig::default()
            .with_seed(seed)
            .with_phone_sync(true),
    )
    .await?)
}

/// Waits until the engine's store holds the account's NCT salt, learnt by sync.
async fn salt_synced(peer: &Peer, expected: [u8; 32]) -> anyhow::Result<()> {
    until(|| {
        peer.store
            .nct_salt()
            .ok()
            .flatten()
            .is_some_and(|s| s.as_bytes() == expected)
    })
    .await
}

fn stored_token(peer: &Peer, lid_user: &str) -> Option<TcToken> {
    peer.store
        .tc_token(&format!("{lid_user}@lid"))
        .ok()
        .flatten()
        .and_then(|b| TcToken::from_bytes(&b).ok())
        .filter(|t| !t.token.is_empty())
}

#[tokio::test]
async fn always_policy_synced_cstoken_then_tctoken_then_expiry_falls_back() -> anyhow::Result<()> {
    let sb = synced_sandbox(91).await?;
    for n in [ALICE, BOB, DAVE] {
        sb.create_account(n)?;
    }
    // Dave's phone withholds the salt on both channels (app state and history).
    sb.phone(DAVE)?.set_sync_switches(SyncSwitches {
        nct_syncd_delivery: false,
        nct_history_delivery: false,
        ..SyncSwitches::default()
    })?;
    let mut alice = pair(&sb, ALICE).await?;
    let mut bob = pair(&sb, BOB).await?;
    let dave = pair(&sb, DAVE).await?;
    sb.router().set_privacy(BOB, always())?;
    let bob_lid = sb.router().account(BOB)?.lid;

    // 1. Alice's salt arrives by sync; her OTP to Bob (cold, P3) carries the cstoken.
    let salt = sb
        .router()
        .nct_salt(ALICE)?
        .expect("sandbox accounts have a salt");
    salt_synced(&alice, salt).await?;
    let otp = "Your code is 318204";
    let id = alice.client.send_text(&bob.user(), otp).await?;
    let got = bob.next_message().await?;
    assert_eq!(
        (got.info.id.as_str(), got.text()),
        (id.0.as_str(), Some(otp))
    );

    // 2. Dave never received a salt: the same kind of send fails at once with the typed 463.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        dave.store.nct_salt()?,
        None,
        "the salt was withheld on both channels"
    );
    let refused = tokio::time::timeout(
        STEP,
        dave.client.send_text(&bob.user(), "Your code is 000999"),
    )
    .await?;
    assert_eq!(
        refused,
        Err(SendError::RecipientRequiresToken {
            to: bob.user(),
            attached: None,
        })
    );

    // 3. Bob replies; his client issues its trusted-contact token to Alice (07 §2.5), which
    //    Alice stores under Bob's LID.
    bob.client.send_text(&alice.user(), "thanks!").await?;
    assert_eq!(alice.next_message().await?.text(), Some("thanks!"));
    until(|| stored_token(&alice, &bob_lid).is_some()).await?;

    // The chat is forgotten at the server and Alice's salt withdrawn there: only Bob's token
    // can admit her next message now.
    sb.router().set_has_contact(ALICE, BOB, false)?;
    sb.router().set_has_contact(BOB, ALICE, false)?;
    sb.router().set_nct_salt(ALICE, None)?;
    let id = alice
        .client
        .send_text(&bob.user(), "second message")
        .await?;
    let got = bob.next_message().await?;
    assert_eq!(
        (got.info.id.as_str(), got.text()),
        (id.0.as_str(), Some("second message"))
    );

    // 4. Time passes (27 weeks, past both the server's 26 buckets and the client's 4): the
    //    token is expired on both sides. With the salt honoured again, the send is admitted
    //    only if it carries the cstoken instead of the expired tctoken.
    let mut token = stored_token(&alice, &bob_lid).expect("token stored");
    token.timestamp = token.timestamp.map(|t| t.saturating_sub(27 * WEEK));
    let mut batch = StoreBatch::new();
    batch.put_tc_token(&format!("{bob_lid}@lid"), token.to_bytes());
    alice.store.apply(batch)?;
    sb.router().advance_clock(27 * WEEK);
    sb.router().restore_nct_salt(ALICE)?;
    sb.router().set_has_contact(ALICE, BOB, false)?;
    sb.router().set_has_contact(BOB, ALICE, false)?;
    let id = alice.client.send_text(&bob.user(), "third message").await?;
    let got = bob.next_message().await?;
    assert_eq!(
        (got.info.id.as_str(), got.text()),
        (id.0.as_str(), Some("third message"))
    );
    assert!(
        sb.router().refusals().iter().all(|r| r.sender != ALICE),
        "{:?}",
        sb.router().refusals()
    );

    alice.shutdown().await;
    bob.shutdown().await;
    dave.shutdown().await;
    sb.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn timelocked_sender_gets_the_event_and_a_typed_error_without_retries() -> anyhow::Result<()>
{
    let sb = synced_sandbox(92).await?;
    let mut alice = pair(&sb, ALICE).await?;
    let erin = pair(&sb, ERIN).await?;
    let ends = now() + 3600;
    sb.router().set_privacy(
        ALICE,
        PrivacySettings {
            policy: TokenPolicy::TimelockedSender,
            restricted: true,
            ends: Some(ends),
            ..PrivacySettings::default()
        },
    )?;
    let lock = alice
        .wait(|e| match e {
            Event::ReachoutTimelock(t) if t.is_active => Some(t.clone()),
            _ => None,
        })
        .await?;
    assert_eq!(lock.ends, Some(ends));

    let refused = tokio::time::timeout(
        STEP,
        alice.client.send_text(&erin.user(), "hello, new contact"),
    )
    .await?;
    assert_eq!(
        refused,
        Err(SendError::ReachoutTimelocked {
            to: erin.user(),
            until: ends,
        })
    );
    // Not re-sent in a loop: one refusal, also after a while.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let from_alice = sb
        .router()
        .refusals()
        .into_iter()
        .filter(|r| r.sender == ALICE)
        .count();
    assert_eq!(from_alice, 1);

    alice.shutdown().await;
    erin.shutdown().await;
    sb.shutdown().await;
    Ok(())
}
