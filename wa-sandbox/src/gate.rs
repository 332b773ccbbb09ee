//! The 2026 service's LID and privacy-token behaviour over the shared state
//! (shared/protocol/07 §5): token issuance (`<iq xmlns="privacy" type="set"><tokens>`) with
//! its `privacy_token` pushes, the reach-out timelock and capping `mex` pushes and pulls, the
//! A/B props that switch whatsapp-rust's token sending on, `<client-props>` in pair-success,
//! and the [`Router`] API tests use to set an account's policy, its timelock, its LID
//! migration, its NCT salt, the clock, and to read the issued tokens and refusals.
//!
//! The admission rule itself is [`privacy`](crate::privacy) (pure) and is applied by
//! `routing` before a 1:1 message is fanned out.

use rand::Rng as _;
use wa_engine::Jid;
use wa_engine::binary::{Content, Node};

use crate::accounts::{DevKey, derive_nct_salt};
use crate::error::PhoneError;
use crate::privacy::{
    self, GateConfig, IssuedToken, PrivacySettings, Refusal, TokenPolicy, timelock_active,
};
use crate::stanzas;
use crate::state::{Router, State};

/// Length of the token bytes the sandbox issues. Real lengths are not known (07 §7).
const TOKEN_LEN: usize = 32;

/// A/B props the sandbox advertises in its `abt` answer, as `(config_code, config_value)`:
/// `privacy_token_sending_on_all_1_on_1_messages` (10518) and `wa_nct_token_send_enabled`
/// (24941), both default false in whatsapp-rust's WA Web registry (`wacore/src/iq/abprops.rs`),
/// so without them whatsapp-rust 0.7 attaches neither `<tctoken>` nor `<cstoken>`
/// (`src/send/tctoken_lifecycle.rs` maybe_include_tc_token). whatsmeow ignores the props and
/// Baileys defaults 10518 to true (07 §2.4, §3.1).
/// Their values come from [`GateConfig::tctoken_sending_prop`] and
/// [`GateConfig::cstoken_sending_prop`] (both on by default).
pub(crate) const AB_PROPS: [u32; 2] = [10518, 24941];

/// `<iq type="result"><props protocol="1" ab_key="" hash="" refresh="86400"><prop
/// config_code config_value/>…</props></iq>` (whatsapp-rust `wacore/src/iq/props.rs`).
pub(crate) fn abt_props_reply(id: &str, config: &GateConfig) -> Node {
    let value = |code: u32| {
        let on = match code {
            10518 => config.tctoken_sending_prop,
            _ => config.cstoken_sending_prop,
        };
        if on { "1" } else { "0" }
    };
    stanzas::iq_result(
        id,
        vec![
            Node::new("props")
                .attr("protocol", "1")
                .attr("ab_key", "")
                .attr("hash", "")
                .attr("refresh", "86400")
                .with_children(AB_PROPS.iter().map(|code| {
                    Node::new("prop")
                        .attr("config_code", code.to_string())
                        .attr("config_value", value(*code).to_owned())
                })),
        ],
    )
}

/// Adds `<client-props>ClientPairingProps{isChatDbLidMigrated: true}</client-props>` (07
/// §5.1 item 1) to the `<pair-success>` of a pair-success IQ for a `lid_migrated` account.
/// An unmigrated account's pair-success keeps the shape of the reference capture
/// (shared/vectors/pairing/pair_success.json, which has no `<client-props>`); clients read
/// an absent child as "not migrated" (whatsapp-rust `src/pair.rs`, `PairUtils::lid_migrated_update`).
pub(crate) fn add_client_props(iq: &mut Node, lid_migrated: bool) {
    if !lid_migrated {
        return;
    }
    if let Content::Nodes(children) = &mut iq.content {
        for child in children.iter_mut().filter(|c| c.tag == "pair-success") {
            if let Content::Nodes(inner) = &mut child.content {
                inner.push(privacy::client_props(true));
            }
        }
    }
}

impl State {
    /// X = `issuer` issues its token to each `(holder jid, t)` (07 §5.2): fresh bytes from the
    /// seeded RNG, `issued[(X, Y)] = {bytes, t}`, and a `privacy_token` notification to every
    /// device of Y (queued for offline ones), `from` X in Y's addressing (LID when Y is
    /// `lid_migrated`), with `sender_lid`. Holders without an account are skipped. Returns how
    /// many tokens were issued.
    pub(crate) fn issue_tokens(&mut self, issuer: &str, holders: &[(Jid, u64)]) -> usize {
        let Some(issuer_lid) = self.directory.get(issuer).map(|a| a.lid_user.clone()) else {
            return 0;
        };
        let mut issued = 0;
        for (jid, t) in holders {
            let Some(holder) = self.directory.resolve_user(jid) else {
                continue;
            };
            let mut token = vec![0u8; TOKEN_LEN];
            self.rng.fill_bytes(&mut token);
            self.privacy
                .record_issued(issuer, &holder, token.clone(), *t);
            let from = if self.privacy.lid_migrated(&holder) {
                Jid::lid(issuer_lid.clone())
            } else {
                Jid::pn(issuer.to_owned())
            };
            let now = self.config.clock.unix_now();
            let mut courier = self.courier();
            for d in courier.dir.devices_of(&holder) {
                let id = courier.ids.fresh();
                let node = privacy::privacy_token_notification(
                    &id,
                    now,
                    &from,
                    &issuer_lid,
                    &jid.to_non_ad(),
                    &token,
                    *t,
                );
                courier.deliver(&(holder.clone(), d), node);
            }
            issued += 1;
        }
        issued
    }

    /// Answers `<iq xmlns="privacy" type="set"><tokens><token jid t
    /// type="trusted_contact"/>…</tokens></iq>` from device `actor` (07 §2.5, §5.2):
    /// `<iq type="result"/>` with no tokens (whatsapp-rust #966), or 400 `bad-request` when a
    /// `<token>` has another `type`, a `jid` that is not a device-less PN or LID user, or no
    /// numeric `t`.
    pub(crate) fn privacy_iq(&mut self, actor: &DevKey, id: &str, iq: &Node) -> Node {
        let Some(tokens) = iq.child_by_tag("tokens") else {
            return stanzas::iq_error(id, 400, "bad-request");
        };
        let mut holders = Vec::new();
        for token in tokens.children_by_tag("token") {
            let jid = stanzas::attr_jid(token, "jid");
            let t = token.get_attr_str("t").and_then(|t| t.parse::<u64>().ok());
            match (jid, t, token.get_attr_str("type")) {
                (Some(jid), Some(t), Some("trusted_contact"))
                    if (jid.is_pn() || jid.is_lid()) && jid.device_part().is_none() =>
                {
                    holders.push((jid, t));
                }
                _ => return stanzas::iq_error(id, 400, "bad-request"),
            }
        }
        let issued = self.issue_tokens(&actor.0, &holders);
        tracing::debug!(issuer = %actor.0, issued, "privacy tokens issued");
        stanzas::iq_result(id, vec![])
    }

    /// Answers a `w:mex` `<query query_id>` of device `actor` for the queries 07 §3.6 names
    /// (timelock and capping pulls); `None` for any other query.
    pub(crate) fn mex_query(&self, actor: &DevKey, id: &str, iq: &Node) -> Option<Node> {
        let query_id = iq.child_by_tag("query")?.get_attr_str("query_id")?;
        let now = self.config.clock.unix_now();
        privacy::mex_answer(id, query_id, &self.privacy.settings(&actor.0), now)
    }
}

impl Router {
    /// An account's addressing and privacy-gate settings (defaults: no policy, not
    /// restricted, not LID-migrated, no capping).
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`].
    pub fn privacy(&self, phone: &str) -> Result<PrivacySettings, PhoneError> {
        let st = self.lock();
        if !st.directory.contains(phone) {
            return Err(PhoneError::NoSuchAccount(phone.to_owned()));
        }
        Ok(st.privacy.settings(phone))
    }

    /// Replaces an account's settings (07 §5). Side effects, as the service's:
    /// - a P2 ([`TokenPolicy::TimelockedSender`]) account whose timelock state (active,
    ///   `ends`) changes gets the `NotificationUserReachoutTimelockUpdate` `mex` push on every
    ///   device (`is_active:true` with `time_enforcement_ends`, or `is_active:false` when
    ///   lifted) (07 §3.6, §5.5);
    /// - a changed capping gets the `MessageCappingInfoNotification` push.
    ///
    /// `lid_migrated` is sent in pair-success `<client-props>`, so set it before the
    /// companion pairs.
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`].
    pub fn set_privacy(&self, phone: &str, settings: PrivacySettings) -> Result<(), PhoneError> {
        let mut st = self.lock();
        if !st.directory.contains(phone) {
            return Err(PhoneError::NoSuchAccount(phone.to_owned()));
        }
        let now = st.config.clock.unix_now();
        let old = st.privacy.settings(phone);
        st.privacy.set_settings(phone, settings);
        let p2 = |s: &PrivacySettings| s.policy == TokenPolicy::TimelockedSender;
        let lock_state = |s: &PrivacySettings| (timelock_active(s, now), s.ends);
        if (p2(&settings) || p2(&old))
            && lock_state(&settings) != lock_state(&old)
            && (p2(&settings) || timelock_active(&old, now))
        {
            st.courier().push_timelock(phone, &settings);
        }
        if settings.capping != old.capping
            && let Some(c) = settings.capping
        {
            st.courier().push_capping(phone, c);
        }
        Ok(())
    }

    /// The gate's server-wide switches.
    pub fn gate_config(&self) -> GateConfig {
        self.lock().privacy.config
    }

    /// Sets the gate's server-wide switches (`N_server`, the namespace checks).
    pub fn set_gate_config(&self, config: GateConfig) {
        self.lock().privacy.config = config;
    }

    /// Every token issued so far (`issued[(X, Y)]`, the newest per pair).
    pub fn issued_tokens(&self) -> Vec<IssuedToken> {
        self.lock().privacy.issued()
    }

    /// Issues `issuer`'s token to `holder` (a PN or LID user JID) with timestamp `t`, exactly
    /// as a privacy IQ from one of `issuer`'s devices would (07 §5.2), for scenarios without
    /// a client on that account. Returns the token bytes.
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`] for an unknown issuer or holder.
    pub fn issue_token(&self, issuer: &str, holder: &Jid, t: u64) -> Result<Vec<u8>, PhoneError> {
        let mut st = self.lock();
        let holder_phone = st
            .directory
            .resolve_user(holder)
            .ok_or_else(|| PhoneError::NoSuchAccount(holder.to_string()))?;
        if !st.directory.contains(issuer) {
            return Err(PhoneError::NoSuchAccount(issuer.to_owned()));
        }
        st.issue_tokens(issuer, &[(holder.to_non_ad(), t)]);
        st.privacy
            .issued()
            .into_iter()
            .find(|i| i.issuer == issuer && i.holder == holder_phone)
            .map(|i| i.token)
            .ok_or_else(|| PhoneError::NoSuchAccount(holder.to_string()))
    }

    /// `has_contact(x, y)`: account `x` has successfully messaged `y` (07 §5).
    pub fn has_contact(&self, x: &str, y: &str) -> bool {
        self.lock().privacy.has_contact(x, y)
    }

    /// Sets or clears `has_contact(x, y)` (a fixture: "x already wrote to y").
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`].
    pub fn set_has_contact(&self, x: &str, y: &str, value: bool) -> Result<(), PhoneError> {
        let mut st = self.lock();
        for p in [x, y] {
            if !st.directory.contains(p) {
                return Err(PhoneError::NoSuchAccount(p.to_owned()));
            }
        }
        st.privacy.set_contact(x, y, value);
        Ok(())
    }

    /// Sets an account's NCT salt (`None` removes it: its cstokens are then refused), the key
    /// the gate checks `<cstoken>` from this account with (07 §3.3, §5.4). Persisted with the
    /// account.
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`].
    pub fn set_nct_salt(&self, phone: &str, salt: Option<[u8; 32]>) -> Result<(), PhoneError> {
        let mut st = self.lock();
        let account = st
            .directory
            .get_mut(phone)
            .ok_or_else(|| PhoneError::NoSuchAccount(phone.to_owned()))?;
        account.nct_salt = salt;
        Ok(())
    }

    /// Gives an account back the salt it was created with (derived from its identity key).
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`].
    pub fn restore_nct_salt(&self, phone: &str) -> Result<(), PhoneError> {
        let mut st = self.lock();
        let account = st
            .directory
            .get_mut(phone)
            .ok_or_else(|| PhoneError::NoSuchAccount(phone.to_owned()))?;
        account.nct_salt = Some(derive_nct_salt(&account.identity_secret));
        Ok(())
    }

    /// An account's NCT salt, if it has one.
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`].
    pub fn nct_salt(&self, phone: &str) -> Result<Option<[u8; 32]>, PhoneError> {
        self.lock()
            .directory
            .get(phone)
            .map(|a| a.nct_salt)
            .ok_or_else(|| PhoneError::NoSuchAccount(phone.to_owned()))
    }

    /// Moves the sandbox's unix clock `secs` seconds forward (token expiry, timelock ends);
    /// returns the new unix time. A fixed clock stays fixed at the later time.
    pub fn advance_clock(&self, secs: u64) -> u64 {
        let mut st = self.lock();
        st.config.clock = st.config.clock.advanced(secs);
        st.config.clock.unix_now()
    }

    /// Whether an account is 1:1-LID-migrated (false for an unknown one).
    pub(crate) fn lid_migrated(&self, phone: &str) -> bool {
        self.lock().privacy.lid_migrated(phone)
    }

    /// The 1:1 messages the sandbox refused so far (at most the newest 1000), oldest first.
    pub fn refusals(&self) -> Vec<Refusal> {
        self.lock().privacy.refusals()
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    fn pair_success() -> Node {
        Node::new("iq").with_children([Node::new("pair-success")
            .with_children([Node::new("platform").attr("name", "android")])])
    }

    #[test]
    fn client_props_carry_the_migration_flag_only_for_migrated_accounts() {
        let mut plain = pair_success();
        add_client_props(&mut plain, false);
        assert_eq!(plain, pair_success(), "reference shape kept");
        let mut migrated = pair_success();
        add_client_props(&mut migrated, true);
        let bytes = migrated
            .child_path(&["pair-success", "client-props"])
            .and_then(Node::content_bytes)
            .expect("client-props");
        let props = wa_proto::wa::ClientPairingProps::decode(bytes).expect("decodes");
        assert_eq!(props.is_chat_db_lid_migrated, Some(true));
    }

    #[test]
    fn abt_props_switch_token_sending_on() {
        let reply = abt_props_reply("7", &GateConfig::default());
        let props: Vec<_> = reply
            .child_by_tag("props")
            .expect("props")
            .children_by_tag("prop")
            .map(|p| {
                (
                    p.get_attr_str("config_code").map(str::to_owned),
                    p.get_attr_str("config_value").map(str::to_owned),
                )
            })
            .collect();
        assert!(props.contains(&(Some("10518".into()), Some("1".into()))));
        assert!(props.contains(&(Some("24941".into()), Some("1".into()))));
    }
}
