//! usync queries: a user's device list and whether phone numbers are on WhatsApp
//! (shared/protocol/05-messages-receipts.md §5; 06-groups-media-presence.md §4).
//!
//! Internal (public only with the `server-side` feature, for fuzz targets): builders take
//! the IQ id, parsers take the `type="result"` IQ.

use crate::Jid;
use crate::binary::Node;
use crate::stanza::iq::{self, IqType};

/// A usync response that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsyncError {
    /// The result has no `<usync><list>`.
    #[error("usync result without <usync><list>")]
    MissingList,
}

fn usync_iq(id: &str, context: &'static str, query: Vec<Node>, users: Vec<Node>) -> Node {
    iq::request(
        id,
        "usync",
        IqType::Get,
        vec![
            Node::new("usync")
                .attr("sid", id.to_owned())
                .attr("mode", "query")
                .attr("last", "true")
                .attr("index", "0")
                .attr("context", context)
                .with_children([
                    Node::new("query").with_children(query),
                    Node::new("list").with_children(users),
                ]),
        ],
    )
}

/// Device-list query for `users` (non-AD user JIDs), context `message` (05 §5.1), with the
/// `lid` protocol so the same answer names each user's LID (07 §1.2; whatsmeow `user.go`
/// GetUserInfo asks `<devices version="2"/>` and `<lid/>` together, and its send path uses
/// that answer to resolve a DM's LID).
pub(crate) fn devices_query(id: &str, users: &[Jid]) -> Node {
    usync_iq(
        id,
        "message",
        vec![Node::new("devices").attr("version", "2"), Node::new("lid")],
        users
            .iter()
            .map(|u| Node::new("user").attr("jid", u.to_non_ad()))
            .collect(),
    )
}

/// One user's devices from a device-list result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDevices {
    /// The user (non-AD JID).
    pub user: Jid,
    /// Device ids, ascending; 0 = primary phone. Hosted devices are left out (05 §5.2).
    pub devices: Vec<u16>,
    /// The user's account LID (`<lid val>`, 07 §1.2), when the query asked for it and the
    /// server knows one.
    pub lid: Option<Jid>,
}

impl UserDevices {
    /// The AD JIDs of the devices (device 0 written without a device part, 05 §1).
    pub fn jids(&self) -> impl Iterator<Item = Jid> + '_ {
        self.devices.iter().map(|&d| device_jid(&self.user, d))
    }
}

/// `user:device@server`, or `user@server` for device 0 (05 §1).
pub fn device_jid(user: &Jid, device: u16) -> Jid {
    let base = user.to_non_ad();
    if device == 0 {
        base
    } else {
        base.with_device(device)
    }
}

fn result_list(result: &Node) -> Result<&Node, UsyncError> {
    result
        .child_path(&["usync", "list"])
        .ok_or(UsyncError::MissingList)
}

/// Reads a device-list result (05 §5.2): every `<device id>` of each user (whatsmeow
/// parseDeviceList takes all; Baileys drops companions without `key-index`, we keep them),
/// minus devices marked `is_hosted`. Users without a readable `jid` are skipped.
///
/// # Errors
/// [`UsyncError::MissingList`].
pub fn parse_devices(result: &Node) -> Result<Vec<UserDevices>, UsyncError> {
    let list = result_list(result)?;
    Ok(list
        .children_by_tag("user")
        .filter_map(|u| {
            let user = u
                .get_attr_jid("jid")
                .cloned()
                .or_else(|| u.get_attr_str("jid")?.parse().ok())?;
            let mut devices: Vec<u16> = u
                .child_path(&["devices", "device-list"])
                .map(|dl| {
                    dl.children_by_tag("device")
                        .filter(|d| d.get_attr_str("is_hosted") != Some("true"))
                        .filter_map(|d| d.get_attr_str("id")?.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            devices.sort_unstable();
            devices.dedup();
            Some(UserDevices {
                user: user.to_non_ad(),
                devices,
                lid: lid_val(u),
            })
        })
        .collect())
}

/// The `<lid val>` child of a usync `<user>` (07 §1.2), as a device-less LID.
fn lid_val(user: &Node) -> Option<Jid> {
    let lid = user.child_by_tag("lid")?;
    let jid = lid
        .get_attr_jid("val")
        .cloned()
        .or_else(|| lid.get_attr_str("val")?.parse().ok())?;
    (jid.is_lid() && !jid.user().is_empty()).then(|| jid.to_non_ad())
}

/// Contact query for phone numbers (06 §4): each number is sent as `+<digits>` (Baileys,
/// whatsapp-rust), context `interactive`.
pub(crate) fn contacts_query(id: &str, phones: &[String]) -> Node {
    usync_iq(
        id,
        "interactive",
        vec![Node::new("contact"), Node::new("lid")],
        phones
            .iter()
            .map(|p| {
                Node::new("user")
                    .with_children([Node::new("contact").with_text(format!("+{}", digits(p)))])
            })
            .collect(),
    )
}

/// The digits of a phone number in any formatting.
pub(crate) fn digits(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

/// One answer of a contact query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactStatus {
    /// The `<contact>` text as echoed (the number we asked for).
    pub query: String,
    /// The user JID the server returned.
    pub jid: Option<Jid>,
    /// `contact@type == "in"`: registered (06 §4).
    pub registered: bool,
    /// The account's LID (`<lid val>`, or the `jid` itself when the server answered in the
    /// LID namespace), when known (07 §1.2).
    pub lid: Option<Jid>,
}

/// Reads a contact-query result (06 §4).
///
/// # Errors
/// [`UsyncError::MissingList`].
pub fn parse_contacts(result: &Node) -> Result<Vec<ContactStatus>, UsyncError> {
    let list = result_list(result)?;
    Ok(list
        .children_by_tag("user")
        .map(|u| {
            let contact = u.child_by_tag("contact");
            ContactStatus {
                query: contact
                    .and_then(Node::content_str)
                    .unwrap_or_default()
                    .trim_end_matches("@c.us")
                    .to_owned(),
                jid: u
                    .get_attr_jid("jid")
                    .cloned()
                    .or_else(|| u.get_attr_str("jid")?.parse().ok()),
                registered: contact.and_then(|c| c.get_attr_str("type")) == Some("in"),
                lid: lid_val(u).or_else(|| {
                    u.get_attr_jid("jid")
                        .filter(|j| j.is_lid())
                        .map(Jid::to_non_ad)
                }),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices_and_skips_hosted() {
        let result =
            Node::new("iq")
                .attr("type", "result")
                .with_children([Node::new("usync").with_children([Node::new("list")
                    .with_children([Node::new("user")
                        .attr("jid", "15551234567@s.whatsapp.net".parse::<Jid>().unwrap())
                        .with_children([Node::new("devices").with_children([Node::new(
                            "device-list",
                        )
                        .with_children([
                            Node::new("device").attr("id", "3").attr("key-index", "1"),
                            Node::new("device").attr("id", "0"),
                            Node::new("device")
                                .attr("id", "9")
                                .attr("is_hosted", "true"),
                        ])])])])])]);
        let users = parse_devices(&result).unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].lid, None);
        assert_eq!(users[0].devices, vec![0, 3]);
        let jids: Vec<String> = users[0].jids().map(|j| j.to_string()).collect();
        assert_eq!(
            jids,
            ["15551234567@s.whatsapp.net", "15551234567:3@s.whatsapp.net"]
        );
    }

    #[test]
    fn device_query_asks_for_the_lid_and_reads_it() {
        let q = devices_query("1", &[Jid::pn("15551234567")]);
        assert!(q.child_path(&["usync", "query", "lid"]).is_some());
        let result = Node::new("iq").with_children([Node::new("usync").with_children([
            Node::new("list").with_children([Node::new("user")
                .attr("jid", Jid::pn("15551234567"))
                .with_children([
                    Node::new("devices").with_children([Node::new("device-list")
                        .with_children([Node::new("device").attr("id", "0")])]),
                    Node::new("lid").attr("val", Jid::lid("900000000000001")),
                ])]),
        ])]);
        let users = parse_devices(&result).unwrap();
        assert_eq!(users[0].lid, Some(Jid::lid("900000000000001")));
    }

    #[test]
    fn contact_query_normalises_numbers_and_parses_in_and_out() {
        let q = contacts_query("1", &["+1 (555) 123-4567".to_owned()]);
        let text = q
            .child_path(&["usync", "list", "user", "contact"])
            .and_then(Node::content_str);
        assert_eq!(text, Some("+15551234567"));
        let result =
            Node::new("iq").with_children([Node::new("usync").with_children([Node::new("list")
                .with_children([
                    Node::new("user")
                        .attr("jid", "15551234567@s.whatsapp.net".parse::<Jid>().unwrap())
                        .with_children([Node::new("contact")
                            .attr("type", "in")
                            .with_text("+15551234567")]),
                    Node::new("user")
                        .attr("jid", "15550009999@s.whatsapp.net".parse::<Jid>().unwrap())
                        .with_children([Node::new("contact")
                            .attr("type", "out")
                            .with_text("+15550009999")]),
                ])])]);
        let parsed = parse_contacts(&result).unwrap();
        assert!(parsed[0].registered && !parsed[1].registered);
        assert_eq!(parsed[1].query, "+15550009999");
    }
}
