//! End to end through wa-sandbox's privacy-token gate (shared/protocol/07 §5.4, policy P1
//! "restricted recipient"): real `Client`s on loopback sockets.
//!
//! - An OTP to a cold, restricted contact with a cstoken computed from the sender's stored
//!   NCT salt is admitted, delivered and decrypted; the sender then issues its own token.
//! - Without the salt, the same kind of send fails at once with the typed 463 error.
//! - Once the recipient has issued its trusted-contact token (the `privacy_token` push), the
//!   next send carries the tctoken and is delivered.

mod msg_support;

use std::time::{SystemTime, UNIX_EPOCH};

use msg_support::{pair, sandbox, until};
use wa_engine::privacy::TcToken;
use wa_engine::store::StoreBatch;
use wa_engine::{Jid, SendError};
use wa_sandbox::{PrivacySettings, TokenPolicy};

const ALICE: &str = "15550000811";
const BOB: &str = "15550000812";
const CAROL: &str = "15550000813";

fn restricted() -> PrivacySettings {
    PrivacySettings {
        policy: TokenPolicy::RestrictedRecipient,
        restricted: true,
        ..PrivacySettings::default()
    }
}

#[tokio::test]
async fn cold_contacts_under_the_gate_cstoken_then_typed_463_then_tctoken() -> anyhow::Result<()> {
    let sb = sandbox(81).await?;
    let alice = pair(&sb, ALICE).await?;
    let mut bob = pair(&sb, BOB).await?;
    let mut carol = pair(&sb, CAROL).await?;
    sb.router().set_privacy(BOB, restricted())?;
    sb.router().set_privacy(CAROL, restricted())?;

    // 1. Alice holds her account's NCT salt (as app-state / history sync would store it):
    //    her OTP to Bob, a cold restricted contact, carries the cstoken and is delivered.
    let salt = sb
        .router()
        .nct_salt(ALICE)?
        .expect("sandbox accounts have a salt");
    let mut batch = StoreBatch::new();
    batch.put_nct_salt(salt.to_vec());
    alice.store.apply(batch)?;
    let otp = "Your code is 482913";
    let id = alice.client.send_text(&bob.user(), otp).await?;
    let got = bob.next_message().await?;
    assert_eq!(got.info.id, id.0);
    assert_eq!(got.text(), Some(otp));
    // Bob sees both of Alice's identities (07 §1.7).
    assert_eq!(got.info.sender_pn, Some(alice.user()));
    let alice_lid = sb.router().account(ALICE)?.lid;
    assert_eq!(got.info.sender_lid, Some(Jid::lid(alice_lid)));
    // After the accepted send, Alice issued her own token to Bob (07 §2.5).
    until(|| {
        sb.router()
            .issued_tokens()
            .iter()
            .any(|t| t.issuer == ALICE && t.holder == BOB)
    })
    .await?;

    // 2. Without the salt: the send to Carol fails with the typed 463 error, no hang.
    let mut batch = StoreBatch::new();
    batch.delete_nct_salt();
    alice.store.apply(batch)?;
    let refused = tokio::time::timeout(
        msg_support::STEP,
        alice.client.send_text(&carol.user(), "Your code is 000111"),
    )
    .await?;
    assert_eq!(
        refused,
        Err(SendError::RecipientRequiresToken {
            to: carol.user(),
            attached: None,
        })
    );

    // 3. Carol issues her trusted-contact token to Alice (as her client does after writing
    //    to someone; here without creating a chat, so P1 still needs the token): Alice stores
    //    it under Carol's LID and her next send carries it.
    let carol_lid = sb.router().account(CAROL)?.lid;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let issued = sb.router().issue_token(CAROL, &alice.user(), now)?;
    let key = format!("{carol_lid}@lid");
    until(|| {
        alice
            .store
            .tc_token(&key)
            .ok()
            .flatten()
            .and_then(|b| TcToken::from_bytes(&b).ok())
            .is_some_and(|r| r.token == issued)
    })
    .await?;
    let id = alice
        .client
        .send_text(&carol.user(), "Your code is 777222")
        .await?;
    let got = carol.next_message().await?;
    assert_eq!(got.info.id, id.0);
    assert_eq!(got.text(), Some("Your code is 777222"));
    alice.shutdown().await;
    bob.shutdown().await;
    carol.shutdown().await;
    sb.shutdown().await;
    Ok(())
}
