//! Answers to IQs that other clients send after login and that the sandbox has no model
//! for: `abt` A/B props. Stateless; `session` asks here before answering an unknown IQ with
//! 501. (`w:sync:app:state` used to be answered here with "up to date"; the app-state server
//! in `appsync` answers it now.)
//!
//! Needed by whatsapp-rust 0.7 (oxidezap/whatsapp-rust, issue 11): it fetches `abt` props
//! (wacore `src/iq/props.rs`, `PROPS_NAMESPACE`) right after `<success>`.

use wa_engine::binary::Node;

use crate::stanzas;

/// The reply to IQ `id` in namespace `xmlns` with body `iq`, or `None` when this module does
/// not know the query (the caller answers 501).
///
/// - `abt` `<props>` (get): `<props protocol="1" hash="" ab_key="" refresh="86400">` with
///   no `<prop>`: no experiments, every prop at its client default (the shape of
///   WhatsApp Web's `WASmaxInAbPropsConfigs` as wacore `props.rs` documents it).
pub(crate) fn answer(xmlns: &str, id: &str, iq: &Node) -> Option<Node> {
    let is_get = iq.get_attr_str("type") == Some("get");
    match xmlns {
        "abt" if is_get && iq.child_by_tag("props").is_some() => Some(stanzas::iq_result(
            id,
            vec![
                Node::new("props")
                    .attr("protocol", "1")
                    .attr("ab_key", "")
                    .attr("hash", "")
                    .attr("refresh", "86400"),
            ],
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abt_props_get_answers_and_unknown_iqs_do_not() {
        let iq = Node::new("iq")
            .attr("type", "get")
            .with_children([Node::new("props").attr("protocol", "1")]);
        let reply = answer("abt", "1", &iq).expect("answered");
        assert!(reply.child_by_tag("props").is_some());
        assert!(answer("abt", "1", &Node::new("iq").attr("type", "get")).is_none());
        assert!(answer("w:other", "1", &iq).is_none());
    }
}
