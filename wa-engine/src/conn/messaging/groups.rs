//! Group IQs on behalf of the caller (06 §1), keeping the group cache and our sender key
//! in step with membership changes.

use std::collections::VecDeque;

use super::GroupOp;
use super::{Context, Messaging};
use crate::binary::Node;
use crate::conn::event::Event;
use crate::conn::pending::Waiter;
use crate::conn::request::{Reply, RequestId, SendError};
use crate::group::{self, ParticipantAction};
use crate::stanza::CloseReason;

impl Messaging {
    pub(crate) fn send_group_iq(
        &mut self,
        cx: &mut Context<'_>,
        request: RequestId,
        iq: Node,
        op: GroupOp,
    ) -> Result<(), SendError> {
        let iq_id = iq.get_attr_str("id").unwrap_or_default().to_owned();
        cx.wire.send_node(&iq)?;
        let handle = self.ops.next_id();
        self.ops.groups.insert(handle, (request, op));
        cx.pending
            .insert(iq_id, Waiter::Group(handle), cx.now + cx.iq_timeout);
        Ok(())
    }

    pub(crate) fn on_group_result(
        &mut self,
        cx: &mut Context<'_>,
        handle: u64,
        parsed: Result<&Node, SendError>,
    ) {
        let Some((request, op)) = self.ops.groups.remove(&handle) else {
            return;
        };
        let result = parsed.and_then(|node| match op {
            GroupOp::Create | GroupOp::Metadata => {
                let info = group::parse_group_result(node)
                    .map_err(|e| SendError::BadResponse(e.into()))?;
                self.caches.groups.insert(info.jid.clone(), info.clone());
                Ok(Reply::Group(info))
            }
            GroupOp::Participants { group, action } => {
                let outcome = group::parse_participants_result(node, action);
                self.caches.groups.remove(&group);
                if action == ParticipantAction::Remove {
                    let own = cx.own.clone();
                    self.rotate_sender_key(cx, &group, own.as_ref());
                }
                Ok(Reply::Participants(outcome))
            }
        });
        cx.events.push_back(Event::RequestDone {
            id: request,
            result,
        });
    }

    /// A caller's group IQ in flight when the connection closed.
    pub(crate) fn fail_group_closed(
        &mut self,
        events: &mut VecDeque<Event>,
        handle: u64,
        reason: &CloseReason,
    ) {
        if let Some((request, _)) = self.ops.groups.remove(&handle) {
            events.push_back(Event::RequestDone {
                id: request,
                result: Err(SendError::Closed(reason.clone())),
            });
        }
    }

    /// Every send in flight when the connection closed.
    pub(crate) fn fail_sends_closed(&mut self, events: &mut VecDeque<Event>, reason: &CloseReason) {
        for (_, s) in self.ops.sends.drain() {
            if let Some(request) = s.request {
                events.push_back(Event::RequestDone {
                    id: request,
                    result: Err(SendError::Closed(reason.clone())),
                });
            }
        }
    }
}
