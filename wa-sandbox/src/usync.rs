//! usync (`<iq xmlns="usync" type="get">`): device lists (shared/protocol/05 §5), "is this
//! number on WhatsApp" contact queries (06 §4) and the PN -> LID mapping (`<lid/>`).

use base64::Engine as _;
use prost::Message as _;
use rand::rngs::StdRng;
use sha2::Digest as _;
use tracing::debug;
use wa_engine::Jid;
use wa_engine::binary::Node;
use wa_proto::wa::{AdvKeyIndexList, AdvSignedKeyIndexList};

use crate::accounts::Directory;
use crate::stanzas::{self, attr_jid};

/// Prefix of the message an account signs for its key-index list: `06 02` (shared/protocol/03
/// §14: WhatsApp Web signs `06 02 ‖ details` with the primary's identity key).
const KEY_INDEX_LIST_PREFIX: [u8; 2] = [6, 2];

/// The participant-list hash (`phash`, `device_hash`) of a device set
/// (shared/protocol/05 §7.4; whatsmeow `participantListHashV2`):
/// `"2:" + base64_std_nopad(SHA-256(concat(sorted(user ".0:" device "@s.whatsapp.net")))[..6])`.
pub fn phash<'a>(devices: impl IntoIterator<Item = (&'a str, u16)>) -> String {
    let mut forms: Vec<String> = devices
        .into_iter()
        .map(|(user, device)| format!("{user}.0:{device}@s.whatsapp.net"))
        .collect();
    forms.sort_unstable();
    let mut sha = sha2::Sha256::new();
    for form in &forms {
        sha.update(form.as_bytes());
    }
    let digest = sha.finalize();
    format!(
        "2:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(&digest[..6])
    )
}

/// Keeps the digits of a contact query (`+1 555…`, `15551234567@c.us`): 06 §4 "Simulator duties".
fn normalise_number(input: &str) -> String {
    let input = input.strip_suffix("@c.us").unwrap_or(input);
    input.chars().filter(char::is_ascii_digit).collect()
}

/// A usync query's view of the sandbox: the account directory, and the RNG that signs
/// key-index lists (XEdDSA).
pub(crate) struct Usync<'a> {
    /// Who exists.
    pub(crate) dir: &'a Directory,
    /// Signing randomness.
    pub(crate) rng: &'a mut StdRng,
    /// Status texts (the `status` protocol).
    pub(crate) profiles: Option<&'a crate::profile::Profiles>,
}

impl Usync<'_> {
    /// The account's `<key-index-list ts>ADVSignedKeyIndexList</key-index-list>`, or `None`
    /// when it has no companion (05 §5.2: `details` = `ADVKeyIndexList{rawId, timestamp,
    /// currentIndex, validIndexes}`, signed by the primary over `06 02 ‖ details`).
    pub(crate) fn key_index_list(&mut self, phone: &str) -> Option<Node> {
        let account = self.dir.get(phone)?;
        if account.devices.is_empty() {
            return None;
        }
        let valid: Vec<u32> = account.devices.values().map(|c| c.key_index).collect();
        let current = valid.iter().copied().max().unwrap_or(0);
        let ts = account.devices_changed_at;
        let details = AdvKeyIndexList {
            raw_id: Some(account.adv_raw_id),
            timestamp: Some(ts),
            current_index: Some(current),
            valid_indexes: valid,
            account_type: None,
        }
        .encode_to_vec();
        let mut message = KEY_INDEX_LIST_PREFIX.to_vec();
        message.extend_from_slice(&details);
        let secret = *account.identity_secret;
        let account_pub = account.identity_pub;
        let signature = wa_engine::signal::xeddsa::sign_with_rng(&secret, &message, self.rng);
        let signed = AdvSignedKeyIndexList {
            details: Some(details),
            account_signature: Some(signature.to_vec()),
            account_signature_key: Some(account_pub.to_vec()),
        }
        .encode_to_vec();
        Some(
            Node::new("key-index-list")
                .attr("ts", ts.to_string())
                .with_bytes(signed),
        )
    }

    /// `<devices><device-list hash><device id [key-index]/>…</device-list>[<key-index-list/>]</devices>`
    /// for an account; an empty list for an unknown user (05 §5.2; Baileys drops companions
    /// without a truthy `key-index`, whatsapp-rust drops users whose companions come
    /// without `key-index-list`).
    fn devices_node(&mut self, phone: Option<&str>) -> Node {
        let Some(phone) = phone.filter(|p| self.dir.contains(p)) else {
            return Node::new("devices").with_children([Node::new("device-list")]);
        };
        let devices = self.dir.devices_of(phone);
        let hash = phash(devices.iter().map(|d| (phone, *d)).collect::<Vec<_>>());
        let list: Vec<Node> = devices
            .iter()
            .map(|d| {
                let node = Node::new("device").attr("id", d.to_string());
                match self
                    .dir
                    .companion(&(phone.to_owned(), *d))
                    .map(|c| c.key_index)
                {
                    Some(k) => node.attr("key-index", k.to_string()),
                    None => node,
                }
            })
            .collect();
        let mut children = vec![
            Node::new("device-list")
                .attr("hash", hash)
                .with_children(list),
        ];
        if let Some(kil) = self.key_index_list(phone) {
            children.push(kil);
        }
        Node::new("devices").with_children(children)
    }

    /// Answers a usync IQ (05 §5, 06 §4). Each `<user>` of the list is answered with the
    /// protocols of `<query>` in their order: `devices`, `contact` (`type="in"` when the
    /// number has an account, else `"out"`, echoing the input), `lid` (`<lid val>`); other
    /// protocols (status, business, disappearing_mode, …) are left out, which clients read
    /// as "no data".
    ///
    /// LID addressing (07 §1.2, §1.5, §5.1 item 2): a `<user jid="…@lid">` is answered under
    /// that LID with the same devices as its PN; a query with `<contact
    /// addressing_mode="lid"/>` answers each known number as `<user jid="<lid>@lid"
    /// pn_jid="<pn>@s.whatsapp.net">` (whatsmeow `user.go` IsOnWhatsApp).
    pub(crate) fn reply(&mut self, id: &str, iq: &Node) -> Node {
        let Some(usync) = iq.child_by_tag("usync") else {
            return stanzas::iq_error(id, 400, "bad-request");
        };
        let protocols: Vec<String> = usync
            .child_by_tag("query")
            .map(|q| q.children().iter().map(|c| c.tag.to_string()).collect())
            .unwrap_or_default();
        let contact_by_lid = usync
            .child_by_tag("query")
            .and_then(|q| q.child_by_tag("contact"))
            .and_then(|c| c.get_attr_str("addressing_mode"))
            == Some("lid");
        let mut users = Vec::new();
        for user in usync
            .child_by_tag("list")
            .map(|l| l.children_by_tag("user").cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            let by_jid = attr_jid(&user, "jid");
            let contact_input = user.child_by_tag("contact").and_then(|c| {
                c.content_str().map(str::to_owned).or_else(|| {
                    c.content_bytes()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                })
            });
            let phone = match (&by_jid, &contact_input) {
                (Some(j), _) => self.dir.resolve_user(j),
                (None, Some(input)) => {
                    let digits = normalise_number(input);
                    self.dir.contains(&digits).then_some(digits)
                }
                (None, None) => None,
            };
            let lid_of = |p: &String| self.dir.get(p).map(|a| Jid::lid(a.lid_user.clone()));
            let mut pn_jid = None;
            let jid = match (&phone, &by_jid, &contact_input) {
                (Some(_), Some(j), _) if j.is_lid() => j.to_non_ad(),
                (Some(p), None, Some(_)) if contact_by_lid && lid_of(p).is_some() => {
                    pn_jid = Some(Jid::pn(p.clone()));
                    lid_of(p).unwrap_or_else(|| Jid::pn(p.clone()))
                }
                (Some(p), _, _) => Jid::pn(p.clone()),
                (None, Some(j), _) => j.to_non_ad(),
                (None, None, Some(input)) => Jid::pn(normalise_number(input)),
                (None, None, None) => continue,
            };
            let mut children = Vec::new();
            for protocol in &protocols {
                match protocol.as_str() {
                    "devices" => children.push(self.devices_node(phone.as_deref())),
                    "contact" => {
                        let kind = if phone.is_some() { "in" } else { "out" };
                        let echo = contact_input
                            .clone()
                            .unwrap_or_else(|| format!("+{}", jid.user()));
                        children.push(Node::new("contact").attr("type", kind).with_text(echo));
                    }
                    "lid" => {
                        if let Some(a) = phone.as_ref().and_then(|p| self.dir.get(p)) {
                            children
                                .push(Node::new("lid").attr("val", Jid::lid(a.lid_user.clone())));
                        }
                    }
                    "status" => children.push(crate::profile::usync_status(
                        self.profiles,
                        phone.as_deref(),
                    )),
                    other => debug!(protocol = other, "usync protocol not simulated; left out"),
                }
            }
            users.push(
                Node::new("user")
                    .attr("jid", jid)
                    .attr_opt("pn_jid", pn_jid)
                    .with_children(children),
            );
        }
        let mut reply = Node::new("usync");
        for key in ["sid", "mode", "last", "index", "context"] {
            if let Some(v) = usync.get_attr(key) {
                reply = reply.attr(key, v.clone());
            }
        }
        stanzas::iq_result(
            id,
            vec![reply.with_children([Node::new("list").with_children(users)])],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phash_matches_the_worked_example() {
        // shared/protocol/05 §7.4.
        assert_eq!(phash([("222", 0), ("111", 2), ("111", 0)]), "2:3mfgTp+X");
    }

    #[test]
    fn contact_numbers_are_normalised() {
        assert_eq!(normalise_number("+1 (555) 123-4567"), "15551234567");
        assert_eq!(normalise_number("+15551234567@c.us"), "15551234567");
    }
}
