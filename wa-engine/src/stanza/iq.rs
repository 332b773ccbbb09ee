//! IQ builders and response parsing (shared/protocol/03 §10.1), and the IQs the connection
//! layer sends itself.
//!
//! Requests go `to="s.whatsapp.net"`; responses carry the same `id` and `type="result"` or
//! `type="error"` with `<error code text/>`.

use crate::Jid;
use crate::binary::Node;
use crate::jid::Server;

/// The server JID `s.whatsapp.net` (encoded as `JID_PAIR(empty, s.whatsapp.net)`).
pub fn server_jid() -> Jid {
    Jid::server_jid(Server::Pn)
}

/// An IQ's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqType {
    /// `get`.
    Get,
    /// `set`.
    Set,
    /// `result`.
    Result,
    /// `error`.
    Error,
}

impl IqType {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Set => "set",
            Self::Result => "result",
            Self::Error => "error",
        }
    }
}

/// `<iq id xmlns type to="s.whatsapp.net">children</iq>`.
pub fn request(id: &str, xmlns: &'static str, kind: IqType, children: Vec<Node>) -> Node {
    let iq = Node::new("iq")
        .attr("id", id.to_owned())
        .attr("xmlns", xmlns)
        .attr("type", kind.as_str())
        .attr("to", server_jid());
    if children.is_empty() {
        iq
    } else {
        iq.with_children(children)
    }
}

/// `<iq to=<from of the request> type="result" id/>`: the empty result that acknowledges a
/// server IQ such as pair-device (03 §4.2) or an `urn:xmpp:ping` (03 §10.2). The id is
/// omitted when the request had none.
pub(crate) fn empty_result(server_iq: &Node) -> Node {
    let to = server_iq
        .get_attr("from")
        .cloned()
        .unwrap_or_else(|| server_jid().into());
    let mut iq = Node::new("iq").attr("to", to).attr("type", "result");
    if let Some(id) = server_iq.get_attr("id") {
        iq = iq.attr("id", id.clone());
    }
    iq
}

/// An `<error code text>` in an IQ response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IqError {
    /// Numeric code (0 if absent or not numeric).
    pub code: u16,
    /// The `text` attribute, if any.
    pub text: Option<String>,
}

/// Classify a response: `Ok(node)` for `type="result"`, `Err` with the `<error>` for
/// `type="error"` (or an unknown type: code 0).
///
/// # Errors
/// The server's error, as [`IqError`].
pub fn parse_response(response: &Node) -> Result<&Node, IqError> {
    match response.get_attr_str("type") {
        Some("result") => Ok(response),
        _ => {
            let error = response.child_by_tag("error");
            Err(IqError {
                code: error
                    .and_then(|e| e.get_attr_str("code"))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0),
                text: error
                    .and_then(|e| e.get_attr_str("text"))
                    .map(str::to_owned),
            })
        }
    }
}

/// Keepalive ping `<iq xmlns="w:p" type="get" to=S/>` without child (whatsmeow keepalive.go;
/// Baileys adds a `<ping/>` child, the server accepts both).
pub fn ping(id: &str) -> Node {
    request(id, "w:p", IqType::Get, Vec::new())
}

/// Pre-key count query `<iq xmlns="encrypt" type="get"><count/></iq>` (03 §7.2 step 1).
pub fn prekey_count(id: &str) -> Node {
    request(id, "encrypt", IqType::Get, vec![Node::new("count")])
}

/// The `value` of `<count>` in a pre-key count result.
pub fn parse_prekey_count(result: &Node) -> Option<u32> {
    result
        .child_by_tag("count")
        .and_then(|c| c.get_attr_str("value"))
        .and_then(|v| v.parse().ok())
}

/// `<iq xmlns="passive" type="set"><active/></iq>`: ask for offline delivery (03 §7.2 step 3).
pub(crate) fn set_active(id: &str) -> Node {
    request(id, "passive", IqType::Set, vec![Node::new("active")])
}

/// `<iq xmlns="urn:xmpp:whatsapp:dirty" type="set"><clean type timestamp/></iq>`, the answer to
/// `<ib><dirty type timestamp/></ib>` (03 §9; whatsapp-rust).
pub(crate) fn clean_dirty(id: &str, kind: &str, timestamp: &str) -> Node {
    request(
        id,
        "urn:xmpp:whatsapp:dirty",
        IqType::Set,
        vec![
            Node::new("clean")
                .attr("type", kind.to_owned())
                .attr("timestamp", timestamp.to_owned()),
        ],
    )
}

/// Logout: `<iq xmlns="md" type="set"><remove-companion-device jid reason="user_initiated"/>`
/// (03 §10.4).
pub(crate) fn remove_companion_device(id: &str, own_device: &Jid) -> Node {
    request(
        id,
        "md",
        IqType::Set,
        vec![
            Node::new("remove-companion-device")
                .attr("jid", own_device.clone())
                .attr("reason", "user_initiated"),
        ],
    )
}

/// `<ib><unified_session id="N"/></ib>` with `N = (unix_ms + 3 days) mod 7 days` where
/// `unix_ms` is the server-corrected time (03 §10.3; whatsmeow `getUnifiedSessionID`).
pub fn unified_session(server_unix_ms: u64) -> Node {
    const DAY_MS: u64 = 86_400_000;
    let id = (server_unix_ms + 3 * DAY_MS) % (7 * DAY_MS);
    Node::new("ib").with_children([Node::new("unified_session").attr("id", id.to_string())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unified_session_matches_the_baileys_transcript() {
        // pair_success.json: now_ms = 1700000030000, t = 1700000010 -> server ms 1700000010000.
        let n = unified_session(1_700_000_010_000);
        let id = n
            .child_by_tag("unified_session")
            .unwrap()
            .get_attr_str("id")
            .unwrap()
            .to_owned();
        assert_eq!(
            id,
            ((1_700_000_010_000u64 + 259_200_000) % 604_800_000).to_string()
        );
    }

    #[test]
    fn error_responses_carry_code_and_text() {
        let r = Node::new("iq")
            .attr("type", "error")
            .with_children([Node::new("error")
                .attr("code", "404")
                .attr("text", "item-not-found")]);
        assert_eq!(
            parse_response(&r).unwrap_err(),
            IqError {
                code: 404,
                text: Some("item-not-found".into())
            }
        );
        let ok = Node::new("iq").attr("type", "result");
        assert!(parse_response(&ok).is_ok());
    }

    #[test]
    fn empty_result_echoes_from_and_id() {
        let req = Node::new("iq")
            .attr("from", server_jid())
            .attr("id", "257131597");
        let res = empty_result(&req);
        assert_eq!(res.get_attr_jid("to"), Some(&server_jid()));
        assert_eq!(res.get_attr_str("type"), Some("result"));
        assert_eq!(res.get_attr_str("id"), Some("257131597"));
        let no_id = empty_result(&Node::new("iq").attr("from", server_jid()));
        assert!(no_id.get_attr("id").is_none());
    }
}
