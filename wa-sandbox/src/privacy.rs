//! The privacy-token room (shared/protocol/07 §5): per-account addressing and gate
//! settings, the tokens accounts issued to each other, who has successfully written to whom,
//! and the admission rule for 1:1 messages (07 §5.4) as a pure function of that state.
//!
//! Nothing here sends anything: the `gate` module pushes the notifications (`privacy_token`,
//! the reach-out timelock and capping `mex` updates) over a routing step, and `routing`
//! asks [`Privacy::admit`] before it fans a 1:1 message out.
//!
//! The real server's rule is not known (07 §7); the three policies of 07 §5.4 are offered per
//! account, and the default ([`TokenPolicy::Off`]) is the sandbox's behaviour before the gate
//! existed: every 1:1 message is accepted.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message as _;
use serde::{Deserialize, Serialize};
use wa_engine::Jid;
use wa_engine::binary::Node;
use wa_engine::privacy::{BucketConfig, cstoken_for, is_expired};

use crate::stanzas;

/// The tctoken bucket length the gate assumes, seconds (AB prop `tctoken_duration` 865,
/// default 604800: 07 §2.6).
pub(crate) const TOKEN_BUCKET_SECONDS: u64 = 604_800;

/// The number of buckets a token stays valid at the server, by default: 26, as whatsapp-rust
/// PR #473 reports the real server sends (07 §2.6). Tests mimic the client default with 4.
pub(crate) const DEFAULT_N_SERVER: u64 = 26;

/// Ack error: the 1:1 message lacks a valid privacy token (07 §3.4, Baileys
/// `SERVER_ERROR_CODES.MessageAccountRestriction`).
pub(crate) const ERR_TOKEN: &str = "463";
/// Ack error: new-chat messages capped (07 §3.4; WA Web nack reason `NewChatMessagesCapped`,
/// an assumption for the server's code, 07 §5.5).
pub(crate) const ERR_CAPPED: &str = "475";
/// Ack error: malformed stanza, e.g. mixed PN/LID addressing (07 §3.4, whatsapp-rust #730).
pub(crate) const ERR_ADDRESSING: &str = "400";
/// Ack error: stanza failed validation, e.g. a `<tctoken>` on a peer message (07 §2.4,
/// Baileys comment in `relayMessage`).
pub(crate) const ERR_SMAX_INVALID: &str = "479";

/// Which rule decides that a 1:1 message needs a privacy token (07 §5.4). Set per account
/// with [`Router::set_privacy`](crate::Router::set_privacy); JSON `"off"`, `"p1"`, `"p2"`,
/// `"p3"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TokenPolicy {
    /// No token is ever needed (the sandbox before the gate; the default).
    #[default]
    #[serde(rename = "off")]
    Off,
    /// P1 "restricted recipient", set on the recipient B: a message to B needs a token when
    /// B is `restricted` and B never wrote to the sender. Follows whatsapp-rust's e2e mock
    /// server (`tests/e2e/tests/privacy_tokens.rs`): first contact 463, the reply with the
    /// received token accepted, a cstoken first contact accepted.
    #[serde(rename = "p1")]
    RestrictedRecipient,
    /// P2 "timelocked sender", set on the sender A: while A is `restricted` and before its
    /// `ends`, a message to someone A has no chat with (neither wrote to the other) needs a
    /// token, and only a tctoken unlocks it (Baileys #2441 write-up: "after the lock neither
    /// fresh tctokens nor cstoken help" for cold chats; existing chats pass; Baileys
    /// `SERVER_ERROR_CODES` comment on 463).
    #[serde(rename = "p2")]
    TimelockedSender,
    /// P3 "always", set on the recipient: every message to it from an account it has no chat
    /// with needs a tctoken or a cstoken. A stress test for client token handling (07 §5.4).
    #[serde(rename = "p3")]
    Always,
}

/// New-chat message capping of an account (07 §3.6, §5.5): `used_quota` counts the new
/// chats started in the current cycle; at `used_quota >= total_quota`, first-contact sends
/// are answered `error="475"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capping {
    /// New chats allowed per cycle.
    pub total_quota: u32,
    /// New chats started in this cycle.
    #[serde(default)]
    pub used_quota: u32,
    /// Unix seconds the cycle started.
    #[serde(default)]
    pub cycle_start: u64,
    /// Unix seconds the cycle ends (0: never).
    #[serde(default)]
    pub cycle_end: u64,
}

/// An account's addressing and privacy-gate settings (07 §5 "state it keeps").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PrivacySettings {
    /// Which admission rule applies to this account (see [`TokenPolicy`]).
    #[serde(default)]
    pub policy: TokenPolicy,
    /// Reach-out restricted / timelocked (P1: messages *to* it need a token; P2: its own cold
    /// sends need one).
    #[serde(default)]
    pub restricted: bool,
    /// Unix seconds the timelock ends (P2); `None` = until lifted.
    #[serde(default)]
    pub ends: Option<u64>,
    /// The account is 1:1-LID-migrated: pair-success carries `ClientPairingProps
    /// {isChatDbLidMigrated: true}` and, in strict mode, only such accounts may send
    /// LID-addressed DMs (07 §1.4, §5.1).
    #[serde(default)]
    pub lid_migrated: bool,
    /// New-chat capping, if any.
    #[serde(default)]
    pub capping: Option<Capping>,
}

/// A token one account issued to another (07 §5.2): `holder` may reach `issuer` with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuedToken {
    /// The issuing account's phone number (X).
    pub issuer: String,
    /// The holding account's phone number (Y).
    pub holder: String,
    /// The token bytes (32 random bytes from the sandbox's seeded RNG).
    pub token: Vec<u8>,
    /// The `t` of the issuing IQ (unix seconds).
    pub t: u64,
}

/// Server-wide switches of the gate and the addressing checks (JSON: missing fields take
/// their defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GateConfig {
    /// Buckets a tctoken stays valid at the server (`N_server`, 07 §5.4; default 26).
    pub n_server: u64,
    /// Refuse a 1:1 stanza whose `to` and `<participants><to jid>` mix PN and LID with
    /// `error="400"` (07 §5.1 item 4, whatsapp-rust #730; default true).
    pub reject_mixed_namespaces: bool,
    /// Refuse a LID-addressed 1:1 stanza from an account that is not `lid_migrated` with
    /// `error="400"` (reported only by whatsapp-rust `src/client/lid_pn.rs`; default false,
    /// because whatsmeow since 2026-07 sends every DM to the LID whatever the account's
    /// state, 07 §1.4).
    pub reject_unmigrated_lid: bool,
    /// The lowest `ClientPayload.userAgent.appVersion` (primary, secondary, tertiary) allowed
    /// to log in or register; an older one gets `<failure reason="405" location="sim"/>` and
    /// the socket is closed (07 §4, §5.7; the real minimum is not known). `None` (the
    /// default): no minimum.
    #[serde(default)]
    pub min_app_version: Option<(u32, u32, u32)>,
    /// Automatic reach-out timelock of P2 accounts (07 §5.5 "after K 463s"): after this many
    /// `463` refusals of its messages, a [`TokenPolicy::TimelockedSender`] account becomes
    /// restricted for [`Self::timelock_seconds`] and is pushed the timelock `mex` update.
    /// `None` (the default): only the control API restricts accounts.
    #[serde(default)]
    pub timelock_after_refusals: Option<u32>,
    /// How long an automatic timelock lasts, seconds (default 86400).
    #[serde(default = "default_timelock_seconds")]
    pub timelock_seconds: u64,
    /// The value the `abt` answer gives A/B prop 10518
    /// (`privacy_token_sending_on_all_1_on_1_messages`, 07 §2.4): whether clients that follow
    /// the props attach tctokens (default true).
    #[serde(default = "default_true")]
    pub tctoken_sending_prop: bool,
    /// The value the `abt` answer gives A/B prop 24941 (`wa_nct_token_send_enabled`, 07
    /// §3.1): whether clients that follow the props attach cstokens (default true).
    #[serde(default = "default_true")]
    pub cstoken_sending_prop: bool,
}

fn default_true() -> bool {
    true
}

fn default_timelock_seconds() -> u64 {
    86_400
}

impl Default for GateConfig {
    fn default() -> Self {
        Self {
            n_server: DEFAULT_N_SERVER,
            reject_mixed_namespaces: true,
            reject_unmigrated_lid: false,
            min_app_version: None,
            timelock_after_refusals: None,
            timelock_seconds: default_timelock_seconds(),
            tctoken_sending_prop: true,
            cstoken_sending_prop: true,
        }
    }
}

/// Whether a client announcing `version` (absent parts count as 0; no user agent at all
/// counts as (0, 0, 0)) is older than `min` (07 §5.7).
pub(crate) fn outdated(version: Option<(u32, u32, u32)>, min: Option<(u32, u32, u32)>) -> bool {
    min.is_some_and(|min| version.unwrap_or_default() < min)
}

/// The gate's record of one refused 1:1 message (for tests: a client may not report the
/// refusal in a way a test can read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The message id.
    pub id: String,
    /// The sending account.
    pub sender: String,
    /// The stanza's `to` as sent.
    pub to: String,
    /// The ack error code (`"463"`, `"475"`, `"400"`, `"479"`).
    pub code: String,
}

/// At most this many refusals are kept.
const REFUSAL_LOG_LIMIT: usize = 1000;

/// What the sender attached to a 1:1 message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Presented<'a> {
    /// `<tctoken>` content.
    pub(crate) tctoken: Option<&'a [u8]>,
    /// `<cstoken>` content.
    pub(crate) cstoken: Option<&'a [u8]>,
}

/// The sender and recipient of a 1:1 message as the gate sees them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parties<'a> {
    /// A: the sending account.
    pub(crate) sender: &'a str,
    /// A's NCT salt (what the server provisioned to it).
    pub(crate) sender_salt: Option<&'a [u8; 32]>,
    /// B: the recipient account.
    pub(crate) recipient: &'a str,
    /// B's LID user.
    pub(crate) recipient_lid: &'a str,
}

/// The privacy room.
#[derive(Debug, Default)]
pub(crate) struct Privacy {
    /// Settings by phone number (absent = defaults).
    settings: BTreeMap<String, PrivacySettings>,
    /// issued[(X, Y)]: the token X issued to Y, and its `t`.
    issued: BTreeMap<(String, String), (Vec<u8>, u64)>,
    /// (X, Y): X has successfully messaged Y (or a fixture says so).
    contacts: BTreeSet<(String, String)>,
    /// Server-wide switches.
    pub(crate) config: GateConfig,
    /// 463 refusals per sending account since its last automatic timelock.
    strikes: BTreeMap<String, u32>,
    /// Recent refusals, oldest first.
    refusals: Vec<Refusal>,
}

impl Privacy {
    /// An account's settings (defaults when never set).
    pub(crate) fn settings(&self, phone: &str) -> PrivacySettings {
        self.settings.get(phone).copied().unwrap_or_default()
    }

    /// Replaces an account's settings.
    pub(crate) fn set_settings(&mut self, phone: &str, settings: PrivacySettings) {
        self.settings.insert(phone.to_owned(), settings);
    }

    /// Whether the account is 1:1-LID-migrated.
    pub(crate) fn lid_migrated(&self, phone: &str) -> bool {
        self.settings(phone).lid_migrated
    }

    /// Records `issued[(issuer, holder)] = (token, t)`.
    pub(crate) fn record_issued(&mut self, issuer: &str, holder: &str, token: Vec<u8>, t: u64) {
        self.issued
            .insert((issuer.to_owned(), holder.to_owned()), (token, t));
    }

    /// Every issued token, by (issuer, holder).
    pub(crate) fn issued(&self) -> Vec<IssuedToken> {
        self.issued
            .iter()
            .map(|((issuer, holder), (token, t))| IssuedToken {
                issuer: issuer.clone(),
                holder: holder.clone(),
                token: token.clone(),
                t: *t,
            })
            .collect()
    }

    /// `has_contact(x, y)`: x has successfully messaged y.
    pub(crate) fn has_contact(&self, x: &str, y: &str) -> bool {
        self.contacts.contains(&(x.to_owned(), y.to_owned()))
    }

    /// Sets or clears `has_contact(x, y)`.
    pub(crate) fn set_contact(&mut self, x: &str, y: &str, value: bool) {
        let key = (x.to_owned(), y.to_owned());
        if value {
            self.contacts.insert(key);
        } else {
            self.contacts.remove(&key);
        }
    }

    /// Remembers a refusal (bounded).
    pub(crate) fn log_refusal(&mut self, refusal: Refusal) {
        if self.refusals.len() >= REFUSAL_LOG_LIMIT {
            self.refusals.remove(0);
        }
        self.refusals.push(refusal);
    }

    /// The refusals so far, oldest first.
    pub(crate) fn refusals(&self) -> Vec<Refusal> {
        self.refusals.clone()
    }

    /// Counts a 463 refusal of `sender`'s message; when a P2 account reaches
    /// [`GateConfig::timelock_after_refusals`], it becomes restricted until `now +
    /// timelock_seconds` and its new settings are returned (to be pushed).
    pub(crate) fn strike(&mut self, sender: &str, now: u64) -> Option<PrivacySettings> {
        let k = self.config.timelock_after_refusals?;
        let mut s = self.settings(sender);
        if s.policy != TokenPolicy::TimelockedSender || timelock_active(&s, now) {
            return None;
        }
        let count = self.strikes.entry(sender.to_owned()).or_insert(0);
        *count += 1;
        if *count < k.max(1) {
            return None;
        }
        self.strikes.remove(sender);
        s.restricted = true;
        s.ends = Some(now.saturating_add(self.config.timelock_seconds));
        self.set_settings(sender, s);
        Some(s)
    }

    /// Whether A and B have a chat: either wrote to the other.
    fn chat_exists(&self, a: &str, b: &str) -> bool {
        self.has_contact(a, b) || self.has_contact(b, a)
    }

    /// Which policy makes the message need a token, if any (07 §5.4 `require_tokens`).
    fn needs_token(&self, a: &str, b: &str, now: u64) -> Option<TokenPolicy> {
        let sa = self.settings(a);
        let sb = self.settings(b);
        if sb.policy == TokenPolicy::RestrictedRecipient && sb.restricted && !self.has_contact(b, a)
        {
            return Some(TokenPolicy::RestrictedRecipient);
        }
        if sa.policy == TokenPolicy::TimelockedSender
            && timelock_active(&sa, now)
            && !self.chat_exists(a, b)
        {
            return Some(TokenPolicy::TimelockedSender);
        }
        if sb.policy == TokenPolicy::Always && !self.chat_exists(a, b) {
            return Some(TokenPolicy::Always);
        }
        None
    }

    /// The admission rule for a 1:1 message from A to B (07 §5.4), then capping (07 §5.5).
    /// Returns the ack error code of a refusal. Accepting records nothing: the caller routes
    /// the message and then calls [`Self::accepted`].
    ///
    /// - tctoken: accepted iff it equals `issued[(B, A)]` and that token is not expired at
    ///   `now` under buckets of [`TOKEN_BUCKET_SECONDS`] × [`GateConfig::n_server`]
    ///   (wa-engine `privacy::is_expired`);
    /// - cstoken: accepted iff A has a salt and it equals `HMAC-SHA256(salt(A), "<B lid>@lid")`
    ///   (wa-engine `privacy::cstoken_for`), except under P2 (see [`TokenPolicy`]);
    /// - capping: a message starting a new chat from an account whose quota is used up gets
    ///   475 (checked after the token rule: a refused message does not count).
    pub(crate) fn admit(
        &self,
        parties: Parties<'_>,
        presented: Presented<'_>,
        now: u64,
    ) -> Result<(), &'static str> {
        let (a, b) = (parties.sender, parties.recipient);
        if let Some(policy) = self.needs_token(a, b, now) {
            let by_tctoken = presented.tctoken.is_some_and(|bytes| {
                self.issued
                    .get(&(b.to_owned(), a.to_owned()))
                    .is_some_and(|(token, t)| {
                        token.as_slice() == bytes
                            && !is_expired(Some(*t), now, self.bucket_config())
                    })
            });
            let by_cstoken = policy != TokenPolicy::TimelockedSender
                && presented.cstoken.is_some_and(|bytes| {
                    parties.sender_salt.is_some_and(|salt| {
                        cstoken_for(salt, &format!("{}@lid", parties.recipient_lid))
                            .is_ok_and(|expected| expected.0.as_slice() == bytes)
                    })
                });
            if !by_tctoken && !by_cstoken {
                return Err(ERR_TOKEN);
            }
        }
        if !self.chat_exists(a, b)
            && let Some(c) = self.settings(a).capping
            && c.used_quota >= c.total_quota
        {
            return Err(ERR_CAPPED);
        }
        Ok(())
    }

    /// A 1:1 message from A to B was accepted: `has_contact(A, B) := true`; a new chat uses
    /// one unit of A's capping quota. Returns A's capping after the change when it changed.
    pub(crate) fn accepted(&mut self, a: &str, b: &str) -> Option<Capping> {
        let new_chat = !self.chat_exists(a, b);
        self.set_contact(a, b, true);
        if !new_chat {
            return None;
        }
        let s = self.settings.get_mut(a)?;
        let c = s.capping.as_mut()?;
        c.used_quota = c.used_quota.saturating_add(1);
        Some(*c)
    }

    /// The bucket configuration tokens are checked with.
    pub(crate) fn bucket_config(&self) -> BucketConfig {
        BucketConfig::new(TOKEN_BUCKET_SECONDS, self.config.n_server)
    }
}

/// Whether a timelock is in force at `now`: `restricted` and `now < ends` (no `ends`: until
/// lifted).
pub(crate) fn timelock_active(s: &PrivacySettings, now: u64) -> bool {
    s.restricted && s.ends.is_none_or(|ends| now < ends)
}

/// MEX query id of the reach-out timelock pull (07 §3.6; Baileys `src/Socket/mex.ts`).
pub(crate) const MEX_TIMELOCK_QUERY: &str = "23983697327930364";
/// MEX query ids of the new-chat capping pull: Baileys' and whatsapp-rust's (a newer WA
/// build) (07 §3.6).
pub(crate) const MEX_CAPPING_QUERIES: [&str; 2] = ["24503548349331633", "27910975521856601"];

/// The `<client-props>` child of pair-success: `ClientPairingProps{isChatDbLidMigrated}`
/// (07 §1.2; whatsapp-rust `src/pair.rs` reads it to set `lid_migrated`).
pub(crate) fn client_props(lid_migrated: bool) -> Node {
    let props = wa_proto::wa::ClientPairingProps {
        is_chat_db_lid_migrated: Some(lid_migrated),
        ..Default::default()
    };
    Node::new("client-props").with_bytes(props.encode_to_vec())
}

/// `<notification from=X type="privacy_token" id t sender_lid=<X lid>><tokens><token jid=Y
/// t type="trusted_contact">BYTES</token></tokens></notification>` (07 §2.2, §5.2): `from` is
/// the issuer in the holder's addressing, `token@jid` the holder itself.
pub(crate) fn privacy_token_notification(
    id: &str,
    now: u64,
    issuer: &Jid,
    issuer_lid: &str,
    holder: &Jid,
    token: &[u8],
    t: u64,
) -> Node {
    Node::new("notification")
        .attr("from", issuer.clone())
        .attr("type", "privacy_token")
        .attr("id", id.to_owned())
        .attr("t", now.to_string())
        .attr("sender_lid", Jid::lid(issuer_lid.to_owned()))
        .with_children([Node::new("tokens").with_children([Node::new("token")
            .attr("jid", holder.clone())
            .attr("t", t.to_string())
            .attr("type", "trusted_contact")
            .with_bytes(token.to_vec())])])
}

/// `<notification from="s.whatsapp.net" type="mex" id t><update op_name>JSON</update>` (07
/// §3.6; the `from` is an assumption there).
fn mex_notification(id: &str, now: u64, op_name: &str, json: &serde_json::Value) -> Node {
    Node::new("notification")
        .attr("from", stanzas::server_jid())
        .attr("type", "mex")
        .attr("id", id.to_owned())
        .attr("t", now.to_string())
        .with_children([Node::new("update")
            .attr("op_name", op_name.to_owned())
            .with_bytes(json.to_string().into_bytes())])
}

/// The timelock state object: `{"is_active", "enforcement_type", "time_enforcement_ends"}`
/// (07 §3.6; `time_enforcement_ends` is a string of unix seconds, left out when unknown or
/// inactive).
fn timelock_json(s: &PrivacySettings, now: u64) -> serde_json::Value {
    let active = timelock_active(s, now);
    let mut v = serde_json::json!({
        "is_active": active,
        "enforcement_type": "DEFAULT",
    });
    if active && let Some(ends) = s.ends {
        v["time_enforcement_ends"] = serde_json::Value::String(ends.to_string());
    }
    v
}

/// `NotificationUserReachoutTimelockUpdate` (07 §3.6).
pub(crate) fn timelock_notification(id: &str, now: u64, s: &PrivacySettings) -> Node {
    let json = serde_json::json!({
        "data": {"xwa2_notify_account_reachout_timelock": timelock_json(s, now)}
    });
    mex_notification(id, now, "NotificationUserReachoutTimelockUpdate", &json)
}

/// The capping state object (07 §3.6): quotas, the cycle as strings of unix seconds, and
/// `capping_status` NONE / FIRST_WARNING (at 50 %, RS2 registry default of prop 18967) /
/// CAPPED.
fn capping_json(c: &Capping, now: u64) -> serde_json::Value {
    let status = if c.used_quota >= c.total_quota {
        "CAPPED"
    } else if u64::from(c.used_quota) * 100 >= u64::from(c.total_quota) * 50 {
        "FIRST_WARNING"
    } else {
        "NONE"
    };
    serde_json::json!({
        "total_quota": c.total_quota,
        "used_quota": c.used_quota,
        "cycle_start_timestamp": c.cycle_start.to_string(),
        "cycle_end_timestamp": c.cycle_end.to_string(),
        "server_sent_timestamp": now.to_string(),
        "ote_status": "NOT_ELIGIBLE",
        "mv_status": "NOT_ELIGIBLE",
        "capping_status": status,
    })
}

/// `MessageCappingInfoNotification` (07 §3.6).
pub(crate) fn capping_notification(id: &str, now: u64, c: &Capping) -> Node {
    let json = serde_json::json!({
        "data": {"xwa2_notify_new_chat_messages_capping_info_update": capping_json(c, now)}
    });
    mex_notification(id, now, "MessageCappingInfoNotification", &json)
}

/// The answer to a `w:mex` query for an account's settings, or `None` for a query id the
/// sandbox does not simulate: the timelock pull (`data.xwa2_fetch_account_reachout_timelock`)
/// and the capping pull (`data.xwa2_message_capping_info`; an account without capping gets
/// an unlimited-looking `NONE` state with quota 0/0) (07 §3.6, §5.5).
pub(crate) fn mex_answer(id: &str, query_id: &str, s: &PrivacySettings, now: u64) -> Option<Node> {
    let json = if query_id == MEX_TIMELOCK_QUERY {
        serde_json::json!({"data": {"xwa2_fetch_account_reachout_timelock": timelock_json(s, now)}})
    } else if MEX_CAPPING_QUERIES.contains(&query_id) {
        let c = s.capping.unwrap_or(Capping {
            total_quota: 0,
            used_quota: 0,
            cycle_start: 0,
            cycle_end: 0,
        });
        let mut v = capping_json(&c, now);
        if s.capping.is_none() {
            v["capping_status"] = serde_json::Value::String("NONE".to_owned());
        }
        serde_json::json!({"data": {"xwa2_message_capping_info": v}})
    } else {
        return None;
    };
    Some(stanzas::iq_result(
        id,
        vec![Node::new("result").with_bytes(json.to_string().into_bytes())],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "15550000001";
    const B: &str = "15550000002";
    const B_LID: &str = "100000000000002";
    const SALT: [u8; 32] = [7; 32];

    fn parties() -> Parties<'static> {
        Parties {
            sender: A,
            sender_salt: Some(&SALT),
            recipient: B,
            recipient_lid: B_LID,
        }
    }

    const NONE: Presented<'static> = Presented {
        tctoken: None,
        cstoken: None,
    };

    fn with(policy: TokenPolicy, restricted: bool) -> PrivacySettings {
        PrivacySettings {
            policy,
            restricted,
            ..PrivacySettings::default()
        }
    }

    #[test]
    fn off_accepts_everything() {
        let p = Privacy::default();
        assert_eq!(p.admit(parties(), NONE, 1000), Ok(()));
    }

    #[test]
    fn p1_cold_refused_warm_by_reply_or_token() {
        let mut p = Privacy::default();
        p.set_settings(B, with(TokenPolicy::RestrictedRecipient, true));
        assert_eq!(p.admit(parties(), NONE, 1000), Err(ERR_TOKEN));
        p.record_issued(B, A, vec![1, 2, 3], 1000);
        let good = Presented {
            tctoken: Some(&[1, 2, 3]),
            cstoken: None,
        };
        let bad = Presented {
            tctoken: Some(&[1, 2, 4]),
            cstoken: None,
        };
        assert_eq!(p.admit(parties(), good, 1000), Ok(()));
        assert_eq!(p.admit(parties(), bad, 1000), Err(ERR_TOKEN));
        // Accepting A's message does not make B a contact of A; B writing to A does.
        assert_eq!(p.accepted(A, B), None);
        assert_eq!(p.admit(parties(), NONE, 1000), Err(ERR_TOKEN));
        p.accepted(B, A);
        assert_eq!(p.admit(parties(), NONE, 1000), Ok(()));
    }

    #[test]
    fn tctoken_expires_by_server_buckets() {
        let mut p = Privacy::default();
        p.config.n_server = 4;
        p.set_settings(B, with(TokenPolicy::Always, false));
        let t = 1_767_225_600; // a Thursday 00:00 UTC: a bucket boundary
        p.record_issued(B, A, vec![9], t);
        let tok = Presented {
            tctoken: Some(&[9]),
            cstoken: None,
        };
        assert_eq!(p.admit(parties(), tok, t + 4 * 604_800 - 1), Ok(()));
        assert_eq!(p.admit(parties(), tok, t + 4 * 604_800), Err(ERR_TOKEN));
        p.config.n_server = 26;
        assert_eq!(p.admit(parties(), tok, t + 4 * 604_800), Ok(()));
    }

    #[test]
    fn cstoken_is_checked_with_the_senders_salt_and_not_under_p2() {
        let mut p = Privacy::default();
        p.set_settings(B, with(TokenPolicy::Always, false));
        let good = cstoken_for(&SALT, &format!("{B_LID}@lid"))
            .expect("cstoken")
            .0;
        let other = cstoken_for(&[8; 32], &format!("{B_LID}@lid"))
            .expect("cstoken")
            .0;
        fn cs(b: &[u8]) -> Presented<'_> {
            Presented {
                tctoken: None,
                cstoken: Some(b),
            }
        }
        let (good, other) = (&good[..], &other[..]);
        assert_eq!(p.admit(parties(), cs(good), 1), Ok(()));
        assert_eq!(p.admit(parties(), cs(other), 1), Err(ERR_TOKEN));
        let unsalted = Parties {
            sender_salt: None,
            ..parties()
        };
        assert_eq!(p.admit(unsalted, cs(good), 1), Err(ERR_TOKEN));
        p.set_settings(B, PrivacySettings::default());
        p.set_settings(
            A,
            PrivacySettings {
                ends: Some(100),
                ..with(TokenPolicy::TimelockedSender, true)
            },
        );
        assert_eq!(p.admit(parties(), cs(good), 1), Err(ERR_TOKEN));
        assert_eq!(p.admit(parties(), NONE, 100), Ok(()), "lock over");
    }

    #[test]
    fn capping_refuses_new_chats_at_the_quota() {
        let mut p = Privacy::default();
        p.set_settings(
            A,
            PrivacySettings {
                capping: Some(Capping {
                    total_quota: 1,
                    used_quota: 0,
                    cycle_start: 0,
                    cycle_end: 0,
                }),
                ..PrivacySettings::default()
            },
        );
        assert_eq!(p.admit(parties(), NONE, 1), Ok(()));
        assert_eq!(p.accepted(A, B).map(|c| c.used_quota), Some(1));
        assert_eq!(p.admit(parties(), NONE, 1), Ok(()), "existing chat");
        let c = Parties {
            recipient: "15550000003",
            ..parties()
        };
        assert_eq!(p.admit(c, NONE, 1), Err(ERR_CAPPED));
    }
}
