//! The profile IQs (`status`, `w:profile:picture`) over the whole [`State`], and the
//! `status` / `picture` notifications they send; shapes and sources in `profile.rs`, whose
//! `Profiles` room holds the data.

use rand::RngExt as _;
use wa_engine::Jid;
use wa_engine::binary::Node;

use crate::accounts::DevKey;
use crate::profile::{MAX_PICTURE_BYTES, MAX_STATUS_CHARS, Picture};
use crate::stanzas::{self, attr_jid};
use crate::state::State;

fn content_text(node: &Node) -> String {
    node.content_str().unwrap_or_default().to_owned()
}

impl State {
    /// The `status` IQ of device `dev` (own status text).
    pub(crate) fn status_iq(&mut self, dev: &DevKey, id: &str, iq: &Node) -> Node {
        let Some(status) = iq.child_by_tag("status") else {
            return stanzas::iq_error(id, 400, "bad-request");
        };
        let text = content_text(status);
        if text.chars().count() > MAX_STATUS_CHARS {
            return stanzas::iq_error(id, 406, "not-acceptable");
        }
        let t = self.config.clock.unix_now();
        self.profiles
            .status
            .insert(dev.0.clone(), (text.clone(), t));
        let mut out = Vec::new();
        {
            let mut courier = self.courier();
            for watcher in courier.device_watchers(&dev.0) {
                if watcher == *dev {
                    continue;
                }
                let nid = courier.ids.fresh();
                let n = Node::new("notification")
                    .attr("from", Jid::pn(dev.0.clone()))
                    .attr("type", "status")
                    .attr("id", nid)
                    .attr("t", t.to_string())
                    .with_children([Node::new("set").with_bytes(text.clone().into_bytes())]);
                out.push((watcher, n));
            }
            courier.deliver_all(out);
        }
        stanzas::iq_result(id, vec![])
    }

    /// A `w:profile:picture` IQ of device `dev`.
    pub(crate) fn picture_iq(&mut self, dev: &DevKey, id: &str, iq: &Node) -> Node {
        let target = attr_jid(iq, "target")
            .or_else(|| attr_jid(iq, "to").filter(|j| !j.user().is_empty()))
            .map(|j| j.to_non_ad());
        // The owner key: a group id, or a phone (LID targets resolve to their phone).
        let owner = match &target {
            Some(j) if j.is_group() => {
                let Some(g) = self.groups.get(j.user()) else {
                    return stanzas::iq_error(id, 404, "item-not-found");
                };
                if !g.is_member(&dev.0) {
                    return stanzas::iq_error(id, 401, "not-authorized");
                }
                format!("{}@g.us", j.user())
            }
            Some(j) => match self.directory.resolve_user(j) {
                Some(p) => p,
                None => return stanzas::iq_error(id, 404, "item-not-found"),
            },
            None => dev.0.clone(),
        };
        if iq.get_attr_str("type") == Some("get") {
            let kind = iq
                .child_by_tag("picture")
                .and_then(|p| p.get_attr_str("type"))
                .unwrap_or("image")
                .to_owned();
            return match self.profiles.pictures.get(&owner) {
                Some(p) => stanzas::iq_result(
                    id,
                    vec![
                        Node::new("picture")
                            .attr("id", p.id.clone())
                            .attr("type", kind)
                            .attr("url", p.url.clone())
                            .attr("direct_path", p.direct_path.clone()),
                    ],
                ),
                None => stanzas::iq_error(id, 404, "item-not-found"),
            };
        }
        // Set: own picture, or a group's (members; admins when the group is locked).
        if owner != dev.0 {
            let Some(g) = target.as_ref().and_then(|j| self.groups.get(j.user())) else {
                return stanzas::iq_error(id, 403, "forbidden");
            };
            if !target.as_ref().is_some_and(Jid::is_group) || !g.may_edit_info(&dev.0) {
                return stanzas::iq_error(id, 403, "forbidden");
            }
        }
        let picture = match iq.child_by_tag("picture") {
            None => None,
            Some(p) => {
                let bytes = p.content_bytes().unwrap_or_default();
                if bytes.len() < 3 || bytes[..3] != [0xFF, 0xD8, 0xFF] {
                    return stanzas::iq_error(id, 406, "not-acceptable");
                }
                if bytes.len() > MAX_PICTURE_BYTES {
                    return stanzas::iq_error(id, 406, "not-acceptable");
                }
                let direct_path = match self.media.put_blob("image", bytes) {
                    Ok(path) => path,
                    Err(e) => {
                        tracing::warn!(error = %e, "picture not stored");
                        return stanzas::iq_error(id, 500, "internal-server-error");
                    }
                };
                let pid: u64 = self.rng.random_range(1_000_000_000..10_000_000_000);
                Some(Picture {
                    id: pid.to_string(),
                    url: self.media.blob_url(&direct_path),
                    direct_path,
                })
            }
        };
        let new_id = picture.as_ref().map(|p| p.id.clone());
        match picture {
            Some(p) => self.profiles.pictures.insert(owner.clone(), p),
            None => self.profiles.pictures.remove(&owner),
        };
        self.notify_picture(dev, &owner, new_id.as_deref());
        match new_id {
            Some(pid) => stanzas::iq_result(id, vec![Node::new("picture").attr("id", pid)]),
            None => stanzas::iq_result(id, vec![]),
        }
    }

    /// `<notification type="picture" from=<owner>><set jid id author/> | <delete jid/>` to
    /// the owner's watchers (a group's members), except the acting device.
    fn notify_picture(&mut self, dev: &DevKey, owner: &str, new_id: Option<&str>) {
        let t = self.config.clock.unix_now();
        let (owner_jid, audience): (Jid, Vec<DevKey>) = match owner.strip_suffix("@g.us") {
            Some(gid) => {
                let phones = self
                    .groups
                    .get(gid)
                    .map(crate::groups::Group::member_phones)
                    .unwrap_or_default();
                let devs = phones
                    .iter()
                    .flat_map(|p| {
                        self.directory
                            .devices_of(p)
                            .into_iter()
                            .map(move |d| (p.clone(), d))
                    })
                    .collect();
                (Jid::group(gid.to_owned()), devs)
            }
            None => (
                Jid::pn(owner.to_owned()),
                self.courier().device_watchers(owner),
            ),
        };
        let author = Jid::pn(dev.0.clone());
        let mut courier = self.courier();
        let mut out = Vec::new();
        for watcher in audience {
            if watcher == *dev {
                continue;
            }
            let child = match new_id {
                Some(pid) => Node::new("set")
                    .attr("jid", owner_jid.clone())
                    .attr("id", pid.to_owned())
                    .attr("author", author.clone()),
                None => Node::new("delete").attr("jid", owner_jid.clone()),
            };
            let n = Node::new("notification")
                .attr("from", owner_jid.clone())
                .attr("type", "picture")
                .attr("id", courier.ids.fresh())
                .attr("t", t.to_string())
                .with_children([child]);
            out.push((watcher, n));
        }
        courier.deliver_all(out);
    }
}
