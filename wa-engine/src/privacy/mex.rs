//! The `mex` notifications about reaching out (shared/protocol/07 §3.6): the reach-out
//! timelock and new-chat message capping. Their `<update op_name>` content is UTF-8 JSON
//! (whatsmeow commit c8330197 `NotificationUserReachoutTimelockUpdate`; Baileys #2445,
//! `src/Socket/mex.ts`, `src/Types/State.ts`).

use serde_json::Value;

use crate::binary::Node;

/// The `op_name` of a reach-out timelock update.
pub const REACHOUT_TIMELOCK_OP: &str = "NotificationUserReachoutTimelockUpdate";
/// The `op_name` of a new-chat message capping update.
pub const MESSAGE_CAPPING_OP: &str = "MessageCappingInfoNotification";

/// Seconds Baileys assumes a lock lasts when an active one names no end ("WA Web
/// defaults"); we report the missing end as `None` and let the embedder decide.
pub const DEFAULT_LOCK_SECS: u64 = 60;

/// A reach-out timelock update: while active, the account may not start new chats
/// (existing chats still work); sends to new contacts fail with 463.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReachoutTimelock {
    /// `is_active`: the lock is on (`false` lifts it).
    pub is_active: bool,
    /// `time_enforcement_ends`: when the lock ends, unix seconds, if the server said.
    pub ends: Option<u64>,
    /// `enforcement_type`, e.g. `DEFAULT`, `WEB_COMPANION_ONLY`, `BIZ_QUALITY`,
    /// `BULK_MESSAGING` (Baileys `src/Types/State.ts`, #2445).
    pub enforcement_type: Option<String>,
}

/// A new-chat message capping update (numbers as the server sends them; strings are kept
/// as strings).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageCapping {
    /// `total_quota`: new chats allowed per cycle.
    pub total_quota: Option<u64>,
    /// `used_quota`: new chats started this cycle.
    pub used_quota: Option<u64>,
    /// `cycle_end_timestamp`: when the cycle ends, unix seconds.
    pub cycle_end: Option<u64>,
    /// `capping_status`: `NONE`, `FIRST_WARNING`, `SECOND_WARNING` or `CAPPED`.
    pub capping_status: Option<String>,
}

impl MessageCapping {
    /// Whether the account is capped (`capping_status = CAPPED`, or the quota is used up).
    #[must_use]
    pub fn is_capped(&self) -> bool {
        self.capping_status.as_deref() == Some("CAPPED")
            || matches!((self.used_quota, self.total_quota), (Some(u), Some(t)) if t > 0 && u >= t)
    }
}

/// A parsed `mex` notification we act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MexUpdate {
    /// [`REACHOUT_TIMELOCK_OP`].
    ReachoutTimelock(ReachoutTimelock),
    /// [`MESSAGE_CAPPING_OP`].
    MessageCapping(MessageCapping),
}

/// A JSON number or numeric string as u64.
fn number(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn string(v: Option<&Value>) -> Option<String> {
    v?.as_str().map(str::to_owned)
}

/// Reads `<notification type="mex"><update op_name>JSON</update></notification>`; `None`
/// for other notifications, other operations or JSON without the expected object.
#[must_use]
pub fn parse_mex_update(node: &Node) -> Option<MexUpdate> {
    if node.tag != "notification" || node.get_attr_str("type") != Some("mex") {
        return None;
    }
    let update = node.child_by_tag("update")?;
    let op = update.get_attr_str("op_name")?;
    let bytes = update
        .content_bytes()
        .map(<[u8]>::to_vec)
        .or_else(|| update.content_str().map(|s| s.as_bytes().to_vec()))?;
    let json: Value = serde_json::from_slice(&bytes).ok()?;
    let data = json.get("data")?;
    match op {
        REACHOUT_TIMELOCK_OP => {
            let lock = data.get("xwa2_notify_account_reachout_timelock")?;
            Some(MexUpdate::ReachoutTimelock(ReachoutTimelock {
                is_active: lock.get("is_active")?.as_bool()?,
                ends: number(lock.get("time_enforcement_ends")),
                enforcement_type: string(lock.get("enforcement_type")),
            }))
        }
        MESSAGE_CAPPING_OP => {
            let info = data.get("xwa2_notify_new_chat_messages_capping_info_update")?;
            Some(MexUpdate::MessageCapping(MessageCapping {
                total_quota: number(info.get("total_quota")),
                used_quota: number(info.get("used_quota")),
                cycle_end: number(info.get("cycle_end_timestamp")),
                capping_status: string(info.get("capping_status")),
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mex(op: &str, json: &str) -> Node {
        Node::new("notification")
            .attr("from", "s.whatsapp.net")
            .attr("type", "mex")
            .with_children([Node::new("update")
                .attr("op_name", op.to_owned())
                .with_bytes(json.as_bytes().to_vec())])
    }

    #[test]
    fn reads_timelock_and_capping_updates() {
        let n = mex(
            REACHOUT_TIMELOCK_OP,
            r#"{"data":{"xwa2_notify_account_reachout_timelock":{"is_active":true,"enforcement_type":"DEFAULT","time_enforcement_ends":"1767225600"}}}"#,
        );
        assert_eq!(
            parse_mex_update(&n),
            Some(MexUpdate::ReachoutTimelock(ReachoutTimelock {
                is_active: true,
                ends: Some(1_767_225_600),
                enforcement_type: Some("DEFAULT".into()),
            }))
        );
        let lifted = mex(
            REACHOUT_TIMELOCK_OP,
            r#"{"data":{"xwa2_notify_account_reachout_timelock":{"is_active":false}}}"#,
        );
        assert!(matches!(
            parse_mex_update(&lifted),
            Some(MexUpdate::ReachoutTimelock(ReachoutTimelock {
                is_active: false,
                ends: None,
                ..
            }))
        ));
        let capped = mex(
            MESSAGE_CAPPING_OP,
            r#"{"data":{"xwa2_notify_new_chat_messages_capping_info_update":{"total_quota":10,"used_quota":10,"cycle_end_timestamp":"1767225600","capping_status":"CAPPED"}}}"#,
        );
        let Some(MexUpdate::MessageCapping(info)) = parse_mex_update(&capped) else {
            panic!("capping update");
        };
        assert!(info.is_capped());
        assert_eq!(info.cycle_end, Some(1_767_225_600));
        assert_eq!(parse_mex_update(&mex("Other", "{}")), None);
        assert_eq!(
            parse_mex_update(&mex(REACHOUT_TIMELOCK_OP, "not json")),
            None
        );
    }
}
