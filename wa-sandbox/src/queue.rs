//! A device's offline queue (shared/protocol/05 §14 "Offline queue"): every stanza for a
//! companion waits here until the device acknowledges it (a `<receipt>` or `<ack>` with the
//! same id), and is replayed, marked `offline="1"`, on the device's next login (05 §12).

use std::collections::VecDeque;

use tracing::warn;
use wa_engine::binary::Node;

use crate::connections::ConnId;

/// At most this many unacknowledged stanzas are kept per device; beyond it the oldest is
/// dropped (a bound the real server surely has too; its value is not known).
const QUEUE_LIMIT: usize = 10_000;

/// One stanza waiting for a device's acknowledgement.
#[derive(Debug, Clone)]
struct Queued {
    /// `message`, `receipt` or `notification`: the `class` its ack carries.
    tag: String,
    id: String,
    /// The stanza's `type`, `from` and `participant` as text (to tell apart receipts with
    /// one id from several devices when matching an ack).
    kind: Option<String>,
    from: Option<String>,
    participant: Option<String>,
    node: Node,
    /// The connection that got this item in its offline replay.
    replayed_on: Option<ConnId>,
}

impl Queued {
    fn of(node: Node) -> Self {
        let text = |k: &str| node.get_attr(k).map(|v| v.to_text().into_owned());
        Self {
            tag: node.tag.to_string(),
            id: node.get_attr_str("id").unwrap_or_default().to_owned(),
            kind: text("type"),
            from: text("from"),
            participant: text("participant"),
            node,
            replayed_on: None,
        }
    }
}

/// A device's FIFO of unacknowledged stanzas (05 §14 "Offline queue").
#[derive(Debug, Clone, Default)]
pub(crate) struct Queue {
    items: VecDeque<Queued>,
}

impl Queue {
    /// Number of queued stanzas.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// The queued stanzas, oldest first (as queued: without the replay's `offline` mark).
    pub(crate) fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.items.iter().map(|q| &q.node)
    }

    /// Appends a stanza; a full queue drops its oldest one first.
    pub(crate) fn push(&mut self, node: Node) {
        if self.items.len() >= QUEUE_LIMIT {
            warn!("offline queue full; dropping its oldest stanza");
            self.items.pop_front();
        }
        self.items.push_back(Queued::of(node));
    }

    /// Removes the item an ack refers to: same tag (`class`) and id; among several, the one
    /// whose `from` / `participant` / `type` agree best with what the ack echoes (clients
    /// differ in what they echo: 05 §11). Returns whether one was removed.
    pub(crate) fn remove_acked(
        &mut self,
        class: &str,
        id: &str,
        to: Option<&str>,
        participant: Option<&str>,
        kind: Option<&str>,
    ) -> bool {
        let score = |q: &Queued| {
            usize::from(to.is_some() && q.from.as_deref() == to)
                + usize::from(participant.is_some() && q.participant.as_deref() == participant)
                + usize::from(kind.is_some() && q.kind.as_deref() == kind)
        };
        let best = self
            .items
            .iter()
            .enumerate()
            .filter(|(_, q)| q.tag == class && q.id == id)
            .max_by(|(ia, a), (ib, b)| score(a).cmp(&score(b)).then(ib.cmp(ia)))
            .map(|(i, _)| i);
        best.and_then(|i| self.items.remove(i)).is_some()
    }

    /// Removes every queued `<message>` with one of these ids (the device sent a receipt).
    pub(crate) fn remove_messages(&mut self, ids: &[String]) -> usize {
        let before = self.items.len();
        self.items
            .retain(|q| !(q.tag == "message" && ids.contains(&q.id)));
        before - self.items.len()
    }

    /// Copies of every queued stanza marked `offline="1"`, remembered as replayed on `conn`.
    pub(crate) fn replay(&mut self, conn: ConnId) -> Vec<Node> {
        self.items
            .iter_mut()
            .map(|q| {
                q.replayed_on = Some(conn);
                let mut node = q.node.clone();
                node.attrs.insert("offline", "1");
                node
            })
            .collect()
    }

    /// Whether a notification of this `type` is queued.
    pub(crate) fn has_notification(&self, kind: &str) -> bool {
        self.items
            .iter()
            .any(|q| q.tag == "notification" && q.kind.as_deref() == Some(kind))
    }

    /// How many stanzas of `conn`'s replay are still unacknowledged.
    pub(crate) fn outstanding(&self, conn: ConnId) -> usize {
        self.items
            .iter()
            .filter(|q| q.replayed_on == Some(conn))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_ack_prefers_the_matching_sender() {
        let mut q = Queue::default();
        let receipt = |from: &str| {
            Node::new("receipt")
                .attr("from", from.to_owned())
                .attr("id", "X")
        };
        q.push(receipt("1:1@s.whatsapp.net"));
        q.push(receipt("1:2@s.whatsapp.net"));
        assert!(q.remove_acked("receipt", "X", Some("1:2@s.whatsapp.net"), None, None));
        assert_eq!(q.items[0].from.as_deref(), Some("1:1@s.whatsapp.net"));
        assert!(!q.remove_acked("message", "X", None, None, None));
        assert!(q.remove_acked("receipt", "X", None, None, None));
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn replay_marks_offline_and_counts_outstanding() {
        let mut q = Queue::default();
        q.push(Node::new("message").attr("id", "A"));
        q.push(Node::new("message").attr("id", "B"));
        let nodes = q.replay(7);
        assert_eq!(nodes.len(), 2);
        assert!(nodes.iter().all(|n| n.get_attr_str("offline") == Some("1")));
        assert_eq!(q.outstanding(7), 2);
        q.remove_messages(&["A".to_owned()]);
        assert_eq!(q.outstanding(7), 1);
    }
}
