//! Group IQs on behalf of the caller (06 §1), keeping the group cache and our sender key
//! in step with membership changes.

use std::time::Instant;

use super::GroupOp;
use crate::binary::Node;
use crate::conn::Connection;
use crate::conn::event::Event;
use crate::conn::pending::Waiter;
use crate::conn::request::{Reply, RequestId, SendError};
use crate::group::{self, ParticipantAction};

impl Connection {
    pub(crate) fn send_group_iq(
        &mut self,
        now: Instant,
        request: RequestId,
        iq: Node,
        op: GroupOp,
    ) -> Result<(), SendError> {
        let iq_id = iq.get_attr_str("id").unwrap_or_default().to_owned();
        self.send_node(&iq)?;
        let handle = self.ops.next_id();
        self.ops.groups.insert(handle, (request, op));
        self.pending.insert(
            iq_id,
            Waiter::Group(handle),
            now + self.config.timing.iq_timeout,
        );
        Ok(())
    }

    pub(crate) fn on_group_result(&mut self, handle: u64, parsed: Result<&Node, SendError>) {
        let Some((request, op)) = self.ops.groups.remove(&handle) else {
            return;
        };
        let result = parsed.and_then(|node| match op {
            GroupOp::Create | GroupOp::Metadata => {
                let info = group::parse_group_result(node).map_err(|_| SendError::BadResponse)?;
                self.caches.groups.insert(info.jid.clone(), info.clone());
                Ok(Reply::Group(info))
            }
            GroupOp::Participants { group, action } => {
                let outcome = group::parse_participants_result(node, action);
                self.caches.groups.remove(&group);
                if action == ParticipantAction::Remove {
                    let own = self.own_jid();
                    self.rotate_sender_key(&group, own.as_ref());
                }
                Ok(Reply::Participants(outcome))
            }
        });
        self.events.push_back(Event::RequestDone {
            id: request,
            result,
        });
    }

    /// A send in flight when the connection closed.
    pub(crate) fn fail_send_closed(&mut self, op: u64, reason: crate::stanza::CloseReason) {
        if let Some(s) = self.ops.sends.remove(&op)
            && let Some(request) = s.request
        {
            self.events.push_back(Event::RequestDone {
                id: request,
                result: Err(SendError::Closed(reason)),
            });
        }
    }
}
