//! `PgStore` against a real PostgreSQL (a private cluster started by the test): every
//! concern round-trips through a reopen, group commit under concurrent sessions, fencing
//! after a take-over, and a failed transaction reaching its waiters.

use std::sync::Arc;

use anyhow::Result;
use wa_engine::store::{ProtocolAddress, SenderKeyName, Store, StoreBatch};
use wa_store_pg::{PgConfig, PgDatabase, PgError};

mod support;
use support::PgCluster;

fn bytes(b: Option<wa_engine::store::Blob>) -> Option<Vec<u8>> {
    b.map(|b| b.to_vec())
}

fn fenced(e: &wa_engine::StoreError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if matches!(s.downcast_ref::<PgError>(), Some(PgError::Fenced { .. })) {
            return true;
        }
        source = s.source();
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_survive_a_reopen_and_group_commit_serves_many_sessions() -> Result<()> {
    let pg = PgCluster::start()?;
    let db = PgDatabase::connect(&pg.url, PgConfig::default()).await?;

    // Every concern, written through the async contract.
    let store = db.open_store("alice").await?;
    let persist = store.persist();
    let a = ProtocolAddress::new("15550001111", 2);
    let mut b = StoreBatch::new();
    b.put_identity(&a, b"identity".to_vec())
        .put_session(&a, b"session v1".to_vec())
        .put_prekey(7, b"pk7".to_vec())
        .put_prekey(8, b"pk8".to_vec())
        .put_signed_prekey(1, b"spk".to_vec())
        .put_sender_key(&SenderKeyName::new("1203@g.us", a.clone()), b"sk".to_vec())
        .put_app_value("wa.test", b"k", b"v".to_vec())
        .put_lid_mapping("15550001111", "123456789")
        .put_app_state_sync_key(b"\x00\x01", b"key".to_vec())
        .put_app_state_collection("regular_high", b"state".to_vec())
        .put_tc_token("123456789@lid", b"token".to_vec())
        .put_nct_salt([9u8; 32]);
    persist.persist(b).await?;
    // Read-your-writes from the cache.
    assert_eq!(bytes(store.session(&a)?), Some(b"session v1".to_vec()));
    // A later batch overwrites and deletes.
    let mut b = StoreBatch::new();
    b.put_session(&a, b"session v2".to_vec()).delete_prekey(7);
    persist.persist(b).await?;

    // Reopened from the database: exactly the last state.
    let again = db.open_store("alice").await?;
    assert_eq!(bytes(again.session(&a)?), Some(b"session v2".to_vec()));
    assert_eq!(bytes(again.identity(&a)?), Some(b"identity".to_vec()));
    assert_eq!(again.prekey_ids()?, vec![8]);
    assert_eq!(again.signed_prekey_ids()?, vec![1]);
    assert_eq!(
        bytes(again.sender_key(&SenderKeyName::new("1203@g.us", a.clone()))?),
        Some(b"sk".to_vec())
    );
    assert_eq!(
        bytes(again.app_value("wa.test", b"k")?),
        Some(b"v".to_vec())
    );
    assert_eq!(
        again.lid_for_pn("15550001111")?.as_deref(),
        Some("123456789")
    );
    assert_eq!(
        again.pn_for_lid("123456789")?.as_deref(),
        Some("15550001111")
    );
    assert_eq!(again.app_state_sync_key_ids()?, vec![vec![0, 1]]);
    assert_eq!(
        bytes(again.app_state_collection("regular_high")?),
        Some(b"state".to_vec())
    );
    assert_eq!(again.tc_token_jids()?, vec!["123456789@lid".to_owned()]);
    assert_eq!(bytes(again.nct_salt()?), Some(vec![9u8; 32]));
    // Stores are separate.
    assert!(db.open_store("bob").await?.session(&a)?.is_none());

    // 40 sessions committing 25 batches each at once through one committer.
    let mut tasks = tokio::task::JoinSet::new();
    for s in 0..40u32 {
        let store = db.open_store(&format!("s{s}")).await?;
        tasks.spawn(async move {
            let persist = store.persist();
            for i in 0..25u32 {
                let mut b = StoreBatch::new();
                b.put_prekey(i, i.to_be_bytes().to_vec()).put_app_value(
                    "wa.n",
                    b"last",
                    i.to_be_bytes().to_vec(),
                );
                persist.persist(b).await?;
            }
            Ok::<_, wa_engine::StoreError>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    for s in 0..40u32 {
        let store = db.open_store(&format!("s{s}")).await?;
        assert_eq!(store.prekey_ids()?.len(), 25, "session s{s}");
        assert_eq!(
            bytes(store.app_value("wa.n", b"last")?),
            Some(24u32.to_be_bytes().to_vec())
        );
    }

    // Blocking writes (outside a connection) and the wipe.
    let bob = db.open_store("bob").await?;
    let bob2 = bob.clone();
    tokio::task::spawn_blocking(move || {
        let mut b = StoreBatch::new();
        b.put_prekey(1, b"x".to_vec());
        bob2.apply(b)?;
        bob2.wipe()
    })
    .await??;
    assert!(db.open_store("bob").await?.prekey_ids()?.is_empty());
    let _ = Arc::strong_count(&bob);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_taken_over_can_never_write_again() -> Result<()> {
    let pg = PgCluster::start()?;
    let db = PgDatabase::connect(&pg.url, PgConfig::default()).await?;
    let old = db.open_store("carol").await?;
    let a = ProtocolAddress::new("1", 0);
    let mut b = StoreBatch::new();
    b.put_session(&a, b"ratchet 1".to_vec());
    old.persist().persist(b).await?;

    let epoch = db.take_over("carol").await?;
    assert_eq!(epoch, old.epoch() + 1);
    let new = db.open_store("carol").await?;
    assert_eq!(new.epoch(), epoch);

    // The old owner's stale ratchet is refused, by the async and the blocking path.
    let mut b = StoreBatch::new();
    b.put_session(&a, b"stale ratchet".to_vec());
    let err = old.persist().persist(b).await.expect_err("fenced");
    assert!(fenced(&err), "{err}");
    let old2 = old.clone();
    let err = tokio::task::spawn_blocking(move || {
        let mut b = StoreBatch::new();
        b.put_session(&a, b"stale again".to_vec());
        old2.apply(b)
    })
    .await?
    .expect_err("fenced");
    assert!(fenced(&err), "{err}");

    // The new owner writes; nothing stale reached the database.
    let a = ProtocolAddress::new("1", 0);
    assert_eq!(bytes(new.session(&a)?), Some(b"ratchet 1".to_vec()));
    let mut b = StoreBatch::new();
    b.put_session(&a, b"ratchet 2".to_vec());
    new.persist().persist(b).await?;
    let reread = db.open_store("carol").await?;
    assert_eq!(bytes(reread.session(&a)?), Some(b"ratchet 2".to_vec()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_database_fails_every_waiter_instead_of_hanging() -> Result<()> {
    let pg = PgCluster::start()?;
    let db = PgDatabase::connect(&pg.url, PgConfig::default()).await?;
    let store = db.open_store("dave").await?;
    drop(pg); // immediate shutdown of the cluster
    let mut b = StoreBatch::new();
    b.put_prekey(1, b"x".to_vec());
    let result = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        store.persist().persist(b),
    )
    .await?;
    assert!(
        result.is_err(),
        "a write to a stopped database cannot succeed"
    );
    assert!(store.prekey(1)?.is_none(), "the cache took nothing");
    Ok(())
}
