//! Server A/B props that steer privacy tokens (shared/protocol/07 §2.4, §2.6, §3.1): after
//! `<success>` the connection asks `<iq xmlns="abt" type="get"><props protocol="1"/></iq>`
//! (whatsapp-rust `wacore/src/iq/props.rs`, sent right after login as WA Web does) and folds
//! the answer into the connection's [`TokenPolicy`]:
//!
//! | code | name | effect |
//! |---|---|---|
//! | 10518 | `privacy_token_sending_on_all_1_on_1_messages` | tctoken gate |
//! | 24941 | `wa_nct_token_send_enabled` | cstoken gate |
//! | 865 / 909 | `tctoken_duration` / `tctoken_num_buckets` | receiver buckets (seconds / count) |
//! | 996 / 997 | `tctoken_duration_sender` / `tctoken_num_buckets_sender` | sender buckets |
//!
//! A prop the server does not send keeps the connection's configured value: the gates stay
//! on (whatsmeow attaches both tokens unconditionally; Baileys defaults 10518 to true "safe:
//! avoids 463") rather than whatsapp-rust's WA Web registry default of false, which would
//! make a client that missed the props answer fail every first contact. Durations are
//! clamped to [1 s, 180 days] and bucket counts to ≥ 1 ([`BucketConfig::new`], as
//! whatsapp-rust clamps them). A server that answers with an error leaves the policy alone.

use crate::binary::Node;
use crate::privacy::BucketConfig;
use crate::stanza::iq;

use super::TokenPolicy;

/// `tctoken` gate (07 §2.4).
const TCTOKEN_SENDING: &str = "10518";
/// `cstoken` gate (07 §3.1).
const NCT_TOKEN_SEND: &str = "24941";
const RECEIVER_DURATION: &str = "865";
const RECEIVER_BUCKETS: &str = "909";
const SENDER_DURATION: &str = "996";
const SENDER_BUCKETS: &str = "997";

/// `<iq id to="s.whatsapp.net" xmlns="abt" type="get"><props protocol="1"/></iq>`.
pub(crate) fn request(id: &str) -> Node {
    iq::request(
        id,
        "abt",
        iq::IqType::Get,
        vec![Node::new("props").attr("protocol", "1")],
    )
}

/// A prop value as a boolean: `1`/`true` on, `0`/`false` off, anything else unknown.
fn flag(value: &str) -> Option<bool> {
    match value {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

/// `policy` with the props of an `abt` result applied (see the module docs). Unknown codes
/// and unparsable values are ignored.
pub(crate) fn apply(mut policy: TokenPolicy, result: &Node) -> TokenPolicy {
    let Some(props) = result.child_by_tag("props") else {
        return policy;
    };
    let (mut receiver, mut sender) = (
        (policy.receiver.duration, policy.receiver.num_buckets),
        (policy.sender.duration, policy.sender.num_buckets),
    );
    for prop in props.children_by_tag("prop") {
        let (Some(code), Some(value)) = (
            prop.get_attr_str("config_code"),
            prop.get_attr_str("config_value"),
        ) else {
            continue;
        };
        let number = value.parse::<u64>().ok();
        match code {
            TCTOKEN_SENDING => policy.gates.tctoken = flag(value).unwrap_or(policy.gates.tctoken),
            NCT_TOKEN_SEND => policy.gates.cstoken = flag(value).unwrap_or(policy.gates.cstoken),
            RECEIVER_DURATION => receiver.0 = number.unwrap_or(receiver.0),
            RECEIVER_BUCKETS => receiver.1 = number.unwrap_or(receiver.1),
            SENDER_DURATION => sender.0 = number.unwrap_or(sender.0),
            SENDER_BUCKETS => sender.1 = number.unwrap_or(sender.1),
            _ => {}
        }
    }
    policy.receiver = BucketConfig::new(receiver.0, receiver.1);
    policy.sender = BucketConfig::new(sender.0, sender.1);
    policy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(props: &[(&str, &str)]) -> Node {
        Node::new("iq")
            .attr("type", "result")
            .with_children([Node::new("props").attr("protocol", "1").with_children(
                props.iter().map(|(c, v)| {
                    Node::new("prop")
                        .attr("config_code", (*c).to_owned())
                        .attr("config_value", (*v).to_owned())
                }),
            )])
    }

    #[test]
    fn props_switch_gates_and_buckets_and_absent_props_keep_the_config() {
        let base = TokenPolicy::default();
        assert_eq!(apply(base, &result(&[])), base);
        let p = apply(
            base,
            &result(&[
                ("10518", "0"),
                ("24941", "false"),
                ("865", "3600"),
                ("909", "26"),
                ("997", "0"),
                ("12345", "1"),
            ]),
        );
        assert!(!p.gates.tctoken && !p.gates.cstoken);
        assert_eq!(p.receiver, BucketConfig::new(3600, 26));
        assert_eq!(p.sender, BucketConfig::new(base.sender.duration, 1));
        let on = apply(
            p,
            &result(&[("10518", "1"), ("24941", "true"), ("865", "x")]),
        );
        assert!(on.gates.tctoken && on.gates.cstoken);
        assert_eq!(on.receiver, p.receiver);
        // No <props> at all (an error answer): unchanged.
        assert_eq!(apply(p, &Node::new("iq")), p);
    }
}
