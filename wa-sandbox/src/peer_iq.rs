//! Answers to IQs that other clients send after login and that the sandbox has no model
//! for yet: `abt` A/B props and `w:sync:app:state`. Stateless; `session` asks here before
//! answering an unknown IQ with 501.
//!
//! Needed by whatsapp-rust 0.7 (oxidezap/whatsapp-rust, issue 11): it fetches `abt` props
//! (wacore `src/iq/props.rs`, `PROPS_NAMESPACE`) and syncs the app-state collections right
//! after `<success>` (wacore-appstate `patch_decode.rs` `parse_patch_lists`); without an
//! app-state answer it never reports itself connected and reconnects every 180 s.

use wa_engine::binary::Node;

use crate::stanzas;

/// The reply to IQ `id` in namespace `xmlns` with body `iq`, or `None` when this module does
/// not know the query (the caller answers 501).
///
/// - `abt` `<props>` (get): `<props protocol="1" hash="" ab_key="" refresh="86400">` with
///   no `<prop>`: no experiments, every prop at its client default (the shape of
///   WhatsApp Web's `WASmaxInAbPropsConfigs` as wacore `props.rs` documents it).
/// - `w:sync:app:state` `<sync>` (set): each requested `<collection name version>` echoed
///   at the version the client holds, with no patches and no snapshot, i.e. "up to date"
///   (shared/protocol/08; whatsmeow `appstate.go` `fetchAppStatePatches` reads the same
///   shape). Only until the sandbox has an app-state server: then it answers here.
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
        "w:sync:app:state" if !is_get => {
            let sync = iq.child_by_tag("sync")?;
            let collections = sync.children_by_tag("collection").filter_map(|c| {
                let name = c.get_attr_str("name")?.to_owned();
                let version = c.get_attr_str("version").unwrap_or("0").to_owned();
                Some(
                    Node::new("collection")
                        .attr("name", name)
                        .attr("version", version),
                )
            });
            Some(stanzas::iq_result(
                id,
                vec![Node::new("sync").with_children(collections.collect::<Vec<_>>())],
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_state_sync_echoes_each_collection_at_its_version() {
        let iq = Node::new("iq")
            .attr("type", "set")
            .with_children([Node::new("sync").with_children([
                Node::new("collection")
                    .attr("name", "regular")
                    .attr("version", "3"),
                Node::new("collection").attr("name", "critical_block"),
            ])]);
        let reply = answer("w:sync:app:state", "7", &iq).expect("answered");
        assert_eq!(reply.get_attr_str("type"), Some("result"));
        let sync = reply.child_by_tag("sync").expect("sync");
        let got: Vec<_> = sync
            .children_by_tag("collection")
            .map(|c| (c.get_attr_str("name"), c.get_attr_str("version")))
            .collect();
        assert_eq!(
            got,
            [
                (Some("regular"), Some("3")),
                (Some("critical_block"), Some("0"))
            ]
        );
    }

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
