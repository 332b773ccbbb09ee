//! Call signalling between accounts: `<call>` stanzas of a client routed to the other
//! account's devices, a call placed by a simulated phone (control API `POST /calls`), and a
//! log of every call stanza routed (`GET /calls`), which is how a test sees that a callee
//! rejected a call placed by a phone.
//!
//! A client's `<call to="B">` (an offer, accept, reject, terminate, ...) goes to every device
//! of B (the phone's inbox included) through the courier, queued until acked like messages;
//! `from` becomes the sender's user JID (its LID when `to` was a LID), `id` and `t` are kept
//! or added. Shapes: whatsmeow `call.go`, Baileys `rejectCall` (see `wa_engine::call`).

use serde::Serialize;
use wa_engine::Jid;
use wa_engine::binary::Node;

use crate::accounts::DevKey;
use crate::routing::Courier;
use crate::stanzas::attr_jid;

/// Upper bound of [`Calls::log`] (oldest dropped first).
const LOG_LIMIT: usize = 1000;

/// One call stanza the sandbox routed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    /// The sender's phone number.
    pub from: String,
    /// The recipient's phone number.
    pub to: String,
    /// The first child's tag: `offer`, `reject`, `accept`, `terminate`, ...
    pub kind: String,
    /// Its `call-id`.
    pub call_id: String,
    /// Its `call-creator` (a JID string), if any.
    pub call_creator: Option<String>,
    /// Unix seconds when routed.
    pub t: u64,
}

/// The call log.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    log: Vec<CallRecord>,
}

impl Calls {
    /// Every call stanza routed so far, oldest first.
    pub(crate) fn log(&self) -> Vec<CallRecord> {
        self.log.clone()
    }

    fn record(&mut self, record: CallRecord) {
        if self.log.len() >= LOG_LIMIT {
            self.log.remove(0);
        }
        self.log.push(record);
    }
}

/// An account's user JID: PN, or LID when `lid`.
fn user_jid(courier: &Courier<'_>, phone: &str, lid: bool) -> Option<Jid> {
    let account = courier.dir.get(phone)?;
    Some(if lid {
        Jid::lid(account.lid_user.clone())
    } else {
        Jid::pn(account.phone.clone())
    })
}

/// Routes a client's `<call>` from `from` to every device of the account it names. Returns
/// `false` when `to` names no account (the caller acks it all the same).
pub(crate) fn route(
    courier: &mut Courier<'_>,
    calls: &mut Calls,
    from: &DevKey,
    node: &Node,
) -> bool {
    let Some(to) = attr_jid(node, "to") else {
        return false;
    };
    let Some(peer) = courier.dir.resolve_user(&to) else {
        return false;
    };
    let Some(sender) = user_jid(courier, &from.0, to.is_lid()) else {
        return false;
    };
    let t = courier.clock.unix_now();
    let id = match node.get_attr_str("id") {
        Some(id) => id.to_owned(),
        None => courier.ids.fresh(),
    };
    let out = Node::new("call")
        .attr("from", sender)
        .attr("id", id)
        .attr("t", t.to_string())
        .with_children(node.children().to_vec());
    record(calls, &from.0, &peer, &out, t);
    deliver_to_account(courier, &peer, Some(from), &out);
    true
}

/// A call placed by `from`'s phone to account `to`: an offer to `to`'s devices. Returns the
/// `call-id`, or `None` when either account is unknown.
pub(crate) fn place(
    courier: &mut Courier<'_>,
    calls: &mut Calls,
    from: &str,
    to: &str,
    video: bool,
    call_id: &str,
) -> Option<()> {
    let caller = user_jid(courier, from, false)?;
    let callee = user_jid(courier, to, false)?;
    let t = courier.clock.unix_now();
    let id = courier.ids.fresh();
    let offer = wa_engine::call::offer(&id, &caller, &callee, call_id, t, video);
    record(calls, from, to, &offer, t);
    deliver_to_account(courier, to, None, &offer);
    Some(())
}

fn record(calls: &mut Calls, from: &str, to: &str, node: &Node, t: u64) {
    let Some(child) = node.children().first() else {
        return;
    };
    calls.record(CallRecord {
        from: from.to_owned(),
        to: to.to_owned(),
        kind: child.tag.to_string(),
        call_id: child.get_attr_str("call-id").unwrap_or_default().to_owned(),
        call_creator: attr_jid(child, "call-creator").map(|j| j.to_string()),
        t,
    });
}

fn deliver_to_account(
    courier: &mut Courier<'_>,
    phone: &str,
    except: Option<&DevKey>,
    node: &Node,
) {
    for device in courier.dir.devices_of(phone) {
        let dev: DevKey = (phone.to_owned(), device);
        if Some(&dev) != except {
            courier.deliver(&dev, node.clone());
        }
    }
}
