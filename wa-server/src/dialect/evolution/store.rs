//! What the Evolution dialect keeps per instance beyond the native session (tree
//! `dialects`, key `session id \0 "evolution"`): the instance id, the digest of the
//! instance token, Evolution's settings and its webhook configuration.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::db::{DbError, ServerDb, key2, now_ms};
use crate::state::AppState;

/// Evolution's instance settings (`validate/settings.schema.ts`); `rejectCall`,
/// `groupsIgnore` and `readMessages` are applied through the native settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct EvoSettings {
    pub(crate) reject_call: bool,
    pub(crate) msg_call: String,
    pub(crate) groups_ignore: bool,
    pub(crate) always_online: bool,
    pub(crate) read_messages: bool,
    pub(crate) read_status: bool,
    pub(crate) sync_full_history: bool,
    pub(crate) wavoip_token: String,
}

/// Evolution's webhook row (`webhook.controller.ts`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EvoWebhook {
    pub(crate) id: String,
    pub(crate) url: String,
    pub(crate) headers: Map<String, Value>,
    pub(crate) enabled: bool,
    /// Config names (`MESSAGES_UPSERT`); empty = every event.
    pub(crate) events: Vec<String>,
    pub(crate) by_events: bool,
    pub(crate) base64: bool,
    /// Unix ms.
    pub(crate) created_at: u64,
    /// Unix ms.
    pub(crate) updated_at: u64,
}

/// The dialect's state of one instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EvoData {
    /// The `instanceId` / `id` clients see (a UUID).
    pub(crate) instance_id: String,
    /// SHA-256 of the instance token, hex; `None` for a session created by the native API
    /// (only the global key and its native token reach it).
    pub(crate) token_hash: Option<String>,
    pub(crate) integration: String,
    pub(crate) number: Option<String>,
    pub(crate) settings: EvoSettings,
    pub(crate) webhook: Option<EvoWebhook>,
    /// Groups created through the dialect (`fetchAllGroups` lists them).
    #[serde(default)]
    pub(crate) groups: Vec<String>,
    /// Unix ms.
    pub(crate) created_at: u64,
    /// Unix ms.
    pub(crate) updated_at: u64,
}

impl EvoData {
    /// A fresh row (new instance id, no token).
    pub(crate) fn new() -> Self {
        let now = now_ms();
        Self {
            instance_id: uuid(),
            token_hash: None,
            integration: "WHATSAPP-BAILEYS".to_owned(),
            number: None,
            settings: EvoSettings::default(),
            webhook: None,
            groups: Vec::new(),
            created_at: now,
            updated_at: now,
        }
    }
}

/// A random UUID v4, lower case.
pub(crate) fn uuid() -> String {
    let mut b = [0u8; 16];
    rand::fill(&mut b[..]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn key(session: &str) -> Vec<u8> {
    key2(session, "evolution")
}

/// The stored row of `session`, if any.
///
/// # Errors
/// [`DbError`].
pub(crate) fn load(db: &ServerDb, session: &str) -> Result<Option<EvoData>, DbError> {
    ServerDb::get(&db.dialects, key(session), "evolution instance")
}

/// The row of `session`, created (and stored) when the session has none yet.
///
/// # Errors
/// [`DbError`].
pub(crate) async fn load_or_init(db: &ServerDb, session: &str) -> Result<EvoData, DbError> {
    if let Some(data) = load(db, session)? {
        return Ok(data);
    }
    let data = EvoData::new();
    save(db, session, &data).await?;
    Ok(data)
}

/// Stores the row of `session` durably.
///
/// # Errors
/// [`DbError`].
pub(crate) async fn save(db: &ServerDb, session: &str, data: &EvoData) -> Result<(), DbError> {
    ServerDb::put(&db.dialects, key(session), data)?;
    db.flush().await
}

/// Removes the row of `session`.
///
/// # Errors
/// [`DbError`].
pub(crate) fn remove(db: &ServerDb, session: &str) -> Result<(), DbError> {
    db.dialects.remove(key(session))?;
    Ok(())
}

/// SHA-256 of a token, hex.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `given` is the Evolution token of instance `session` (constant time over the
/// digests).
pub(crate) fn token_matches(state: &AppState, session: &str, given: &str) -> bool {
    let Ok(Some(data)) = load(state.db(), session) else {
        return false;
    };
    let Some(stored) = data.token_hash.and_then(|h| hex::decode(h).ok()) else {
        return false;
    };
    Sha256::digest(given.as_bytes())
        .as_slice()
        .ct_eq(stored.as_slice())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let u = uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(u, uuid());
    }
}
