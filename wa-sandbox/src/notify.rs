//! Router's notification API: push any [`Notice`] to an account's devices, and the edge
//! routing round trip (`<ib><edge_routing>` after login, the client's `ED` pre-intro
//! recorded). The stanza shapes live in `notices`; privacy tokens, timelock and capping go
//! through the gate's paths (`State::issue_tokens`, `Courier::push_timelock`,
//! `Courier::push_capping`) so they look exactly as when the gate sends them.

use base64::Engine as _;
use serde::Serialize;
use wa_engine::Jid;
use wa_engine::binary::Node;

use crate::connections::Push;
use crate::error::PhoneError;
use crate::notices::{Built, Notice, edge_routing_ib};
use crate::privacy::{PrivacySettings, TokenPolicy};
use crate::state::Router;

/// Edge routing of one account ([`Router::edge_routing`]; `GET
/// /accounts/{pn}/edge-routing`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EdgeRoutingView {
    /// What the sandbox sends the account's devices after each login (standard base64),
    /// if anything.
    pub issued_b64: Option<String>,
    /// What each device sent in its latest connection's `ED` pre-intro.
    pub received: Vec<EdgeRoutingSeen>,
}

/// One device's `ED` pre-intro ([`EdgeRoutingView::received`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EdgeRoutingSeen {
    /// The device id.
    pub device: u16,
    /// The routing info of its latest pre-intro, standard base64.
    pub routing_info_b64: String,
    /// How many of its logins came with a pre-intro.
    pub connections: u32,
}

impl Router {
    /// Pushes `notice` to every device of account `phone` and returns how many devices it
    /// was addressed to. `<notification>`s are queued for offline devices (and acked);
    /// `<ib>`s reach connected devices only. A privacy token is issued by the gate
    /// (`issuer` → `phone`); timelock and capping are the gate's `mex` pushes (the
    /// account's privacy settings are not changed); edge routing is pushed now and sent
    /// after every later login of the account.
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`] (the account or a privacy-token issuer),
    /// [`PhoneError::BadNotice`] (a field that does not parse).
    pub fn push_notification(&self, phone: &str, notice: &Notice) -> Result<usize, PhoneError> {
        let mut st = self.lock();
        if !st.directory.contains(phone) {
            return Err(PhoneError::NoSuchAccount(phone.to_owned()));
        }
        let t = st.config.clock.unix_now();
        let devices = st.directory.devices_of(phone);
        match notice {
            Notice::PrivacyToken { issuer, t: when } => {
                if !st.directory.contains(issuer) {
                    return Err(PhoneError::NoSuchAccount(issuer.clone()));
                }
                st.issue_tokens(issuer, &[(Jid::pn(phone.to_owned()), when.unwrap_or(t))]);
            }
            Notice::Timelock { active, ends } => {
                let settings = PrivacySettings {
                    policy: TokenPolicy::TimelockedSender,
                    restricted: *active,
                    ends: *ends,
                    ..st.privacy.settings(phone)
                };
                st.courier().push_timelock(phone, &settings);
            }
            Notice::Capping { capping } => st.courier().push_capping(phone, *capping),
            Notice::EdgeRouting { routing_info_b64 } => {
                let info = base64::engine::general_purpose::STANDARD
                    .decode(routing_info_b64)
                    .map_err(|e| PhoneError::BadNotice(format!("routing_info_b64: {e}")))?;
                if info.is_empty() {
                    return Err(PhoneError::BadNotice("routing_info_b64 is empty".into()));
                }
                st.edge.issue(phone, info.clone());
                push_ib(&mut st.courier(), phone, &edge_routing_ib(&info));
            }
            other => {
                let mut courier = st.courier();
                for d in &devices {
                    let id = courier.ids.fresh();
                    match other.build(&id, t, phone).map_err(PhoneError::BadNotice)? {
                        Some(Built::Notification(node)) => {
                            courier.deliver(&(phone.to_owned(), *d), node);
                        }
                        Some(Built::Ib(node)) => {
                            push_ib(&mut courier, phone, &node);
                            break;
                        }
                        None => break,
                    }
                }
            }
        }
        tracing::debug!(phone, ?notice, "notification pushed");
        Ok(devices.len())
    }

    /// The account's edge routing: what the sandbox issues, what its devices sent back.
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`].
    pub fn edge_routing(&self, phone: &str) -> Result<EdgeRoutingView, PhoneError> {
        let st = self.lock();
        if !st.directory.contains(phone) {
            return Err(PhoneError::NoSuchAccount(phone.to_owned()));
        }
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        Ok(EdgeRoutingView {
            issued_b64: st.edge.issued(phone).map(b64),
            received: st
                .edge
                .received(phone)
                .into_iter()
                .map(|(device, info, connections)| EdgeRoutingSeen {
                    device,
                    routing_info_b64: b64(&info),
                    connections,
                })
                .collect(),
        })
    }

    /// A device logged in (`<success>` sent): records the routing info of its `ED`
    /// pre-intro, if it sent one, and returns the `<ib><edge_routing>` to send it, if the
    /// account has routing info issued.
    pub(crate) fn edge_routing_at_login(
        &self,
        phone: &str,
        device: u16,
        pre_intro: Option<&[u8]>,
    ) -> Option<Node> {
        let mut st = self.lock();
        if let Some(info) = pre_intro {
            tracing::debug!(phone, device, len = info.len(), "ED pre-intro received");
            st.edge.record((phone.to_owned(), device), info);
        }
        st.edge.issued(phone).map(edge_routing_ib)
    }
}

/// Pushes an `<ib>` to every ready connection of `phone`'s companions (never queued: `<ib>`
/// is not acknowledged).
fn push_ib(courier: &mut crate::routing::Courier<'_>, phone: &str, node: &Node) {
    for d in courier.dir.devices_of(phone) {
        if d == 0 {
            continue;
        }
        if let Some(conn) = courier.conns.ready_conn(&(phone.to_owned(), d)) {
            courier.conns.push(conn, Push::Stanza(node.clone()));
        }
    }
}
