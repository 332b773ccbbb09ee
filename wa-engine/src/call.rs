//! Voice and video call signalling, as far as a linked device takes part: incoming offers and
//! their end as events, and rejecting a call. Pure builders and parsers; the
//! [`Connection`](crate::conn::Connection) acks every `<call>` (03 §11) and dispatches it.
//!
//! Shapes (whatsmeow `call.go` `handleCallEvent` / `RejectCall`, Baileys `rejectCall` and
//! its `CB:call` handler):
//! - incoming: `<call from="<caller>" id="<stanza id>" t="<unix s>" [notify]>` with one child:
//!   `<offer call-id call-creator>` (children `<audio/>`, `<video/>` for a video call, ...),
//!   `<offer_notice call-id call-creator media="audio|video" [type="group"]>`,
//!   `<accept>`, `<preaccept>`, `<reject>`, `<terminate call-id call-creator [reason]>`, or
//!   transport / relay children a linked device ignores;
//! - reject: `<call id="<new id>" from="<own jid>" to="<caller>"><reject call-id call-creator
//!   count="0"/></call>`.

use crate::Jid;
use crate::binary::Node;
use crate::presence::jid_attr;

/// What a `<call>` stanza says ([`CallEvent::kind`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallKind {
    /// The caller rings us (`<offer>` or `<offer_notice>`).
    Offer {
        /// A video call (`<video>` child, or `media="video"`).
        video: bool,
        /// A group call (`type="group"`, or a `<group_info>` child).
        group: bool,
    },
    /// The callee (or another of our devices) accepted (`<accept>`).
    Accept,
    /// The call was rejected (`<reject>`): by the callee, as seen by the caller.
    Reject,
    /// The call ended (`<terminate>`): hung up, or missed, with its `reason` if sent.
    Terminate {
        /// The `reason` attribute (`timeout`, `busy`, ...), if any.
        reason: Option<String>,
    },
    /// Another child (`preaccept`, `transport`, `relaylatency`, ...): its tag.
    Other(String),
}

impl CallKind {
    /// The name used in wa-server's webhooks: `offer`, `accept`, `reject`, `terminate`, or the
    /// child's tag.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Offer { .. } => "offer",
            Self::Accept => "accept",
            Self::Reject => "reject",
            Self::Terminate { .. } => "terminate",
            Self::Other(tag) => tag,
        }
    }
}

/// An incoming `<call>` ([`crate::Event::Call`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallEvent {
    /// The `from` of the stanza: who sent it (the caller for an offer).
    pub from: Jid,
    /// `call-id`: names the call across its stanzas.
    pub call_id: String,
    /// `call-creator`: who started the call (`from` when absent).
    pub call_creator: Jid,
    /// `t`, unix seconds (0 when absent).
    pub timestamp: u64,
    /// What happened.
    pub kind: CallKind,
    /// Whether this client already rejected the offer by itself (the connection's
    /// `Config::auto_reject_calls`).
    pub auto_rejected: bool,
}

/// Reads an incoming `<call>`. `None` without `from`, a child or its `call-id`.
pub fn parse_call(node: &Node) -> Option<CallEvent> {
    if node.tag != "call" {
        return None;
    }
    let from = jid_attr(node, "from")?;
    let child = node.children().first()?;
    let call_id = child.get_attr_str("call-id")?.to_owned();
    let call_creator = jid_attr(child, "call-creator").unwrap_or_else(|| from.clone());
    let kind = match child.tag.as_ref() {
        "offer" | "offer_notice" => CallKind::Offer {
            video: child.child_by_tag("video").is_some()
                || child.get_attr_str("media") == Some("video"),
            group: child.get_attr_str("type") == Some("group")
                || child.child_by_tag("group_info").is_some(),
        },
        "accept" => CallKind::Accept,
        "reject" => CallKind::Reject,
        "terminate" => CallKind::Terminate {
            reason: child.get_attr_str("reason").map(str::to_owned),
        },
        other => CallKind::Other(other.to_owned()),
    };
    Some(CallEvent {
        from,
        call_id,
        call_creator,
        timestamp: node
            .get_attr_str("t")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0),
        kind,
        auto_rejected: false,
    })
}

/// `<call id from=own to=caller><reject call-id call-creator count="0"/></call>` (whatsmeow
/// `RejectCall`, Baileys `rejectCall`): `caller` is the call's creator; `own` is sent
/// without a device part.
pub fn reject(id: &str, own: &Jid, caller: &Jid, call_id: &str) -> Node {
    Node::new("call")
        .attr("id", id.to_owned())
        .attr("from", own.to_non_ad())
        .attr("to", caller.clone())
        .with_children([Node::new("reject")
            .attr("call-id", call_id.to_owned())
            .attr("call-creator", caller.clone())
            .attr("count", "0")])
}

/// An audio or video `<call from to id t><offer call-id call-creator><audio/>[<video/>]</offer></call>`
/// as the server delivers a caller's offer (whatsmeow `call.go` reads these children). Used
/// by the sandbox to place a call; a linked device never sends one.
pub fn offer(id: &str, from: &Jid, to: &Jid, call_id: &str, t: u64, video: bool) -> Node {
    let mut media = vec![Node::new("audio").attr("enc", "opus").attr("rate", "16000")];
    if video {
        media.push(Node::new("video").attr("enc", "vp8"));
    }
    Node::new("call")
        .attr("from", from.clone())
        .attr("to", to.clone())
        .attr("id", id.to_owned())
        .attr("t", t.to_string())
        .with_children([Node::new("offer")
            .attr("call-id", call_id.to_owned())
            .attr("call-creator", from.clone())
            .with_children(media)])
}

/// `<call from to id t><terminate call-id call-creator [reason]/></call>`: the server's
/// notice that a call ended. Used by the sandbox.
pub fn terminate(
    id: &str,
    from: &Jid,
    to: &Jid,
    call_id: &str,
    t: u64,
    reason: Option<&str>,
) -> Node {
    Node::new("call")
        .attr("from", from.clone())
        .attr("to", to.clone())
        .attr("id", id.to_owned())
        .attr("t", t.to_string())
        .with_children([Node::new("terminate")
            .attr("call-id", call_id.to_owned())
            .attr("call-creator", from.clone())
            .attr_opt("reason", reason.map(str::to_owned))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_and_terminations_parse() {
        let caller = Jid::pn("15550002222");
        let me = Jid::pn("15550001111").with_device(2);
        let got =
            parse_call(&offer("1", &caller, &me, "CALL1", 1_700_000_000, true)).expect("parses");
        assert_eq!(got.call_id, "CALL1");
        assert_eq!(got.call_creator, caller);
        assert_eq!(got.timestamp, 1_700_000_000);
        assert_eq!(
            got.kind,
            CallKind::Offer {
                video: true,
                group: false
            }
        );
        let end =
            parse_call(&terminate("2", &caller, &me, "CALL1", 5, Some("timeout"))).expect("parses");
        assert_eq!(
            end.kind,
            CallKind::Terminate {
                reason: Some("timeout".into())
            }
        );
    }

    #[test]
    fn reject_has_the_whatsmeow_shape() {
        let me = Jid::pn("15550001111").with_device(2);
        let caller = Jid::pn("15550002222");
        let node = reject("ID", &me, &caller, "CALL1");
        assert_eq!(node.get_attr_jid("from"), Some(&Jid::pn("15550001111")));
        assert_eq!(node.get_attr_jid("to"), Some(&caller));
        let r = node.child_by_tag("reject").expect("child");
        assert_eq!(r.get_attr_str("call-id"), Some("CALL1"));
        assert_eq!(r.get_attr_jid("call-creator"), Some(&caller));
        assert_eq!(r.get_attr_str("count"), Some("0"));
        // What the caller's devices get back parses as a reject.
        let seen = parse_call(&node).expect("parses");
        assert_eq!(seen.kind, CallKind::Reject);
    }
}
