//! Presence and chat state (shared/protocol/06 §5): the stanzas a client sends and the
//! events it reads from what the server pushes. Pure builders and parsers; the
//! [`Connection`](crate::conn::Connection) sends and dispatches them.
//!
//! Shapes (whatsmeow `presence.go`, Baileys `sendPresenceUpdate` / `presenceSubscribe` /
//! `handlePresenceUpdate`):
//! - own presence: `<presence type="available|unavailable" name="<push name>"/>` (the name
//!   without `@`; whatsmeow refuses to send without a push name, the server needs it to
//!   show a name in notifications);
//! - subscribe: `<presence type="subscribe" to="<user jid>">[<tctoken>bytes</tctoken>]</presence>`
//!   with the trusted-contact token we hold for that contact, if any (07 §2.8);
//! - chat state: `<chatstate from="<own jid>" to="<chat>"><composing [media="audio"]/></chatstate>`
//!   (`media="audio"` = recording) or `<paused/>`;
//! - incoming presence: `<presence from="<jid>" [type="unavailable"] [last="<unix s>|deny"]/>`;
//! - incoming chat state: `<chatstate from="<chat>" [participant="<sender>"]><composing|paused/></chatstate>`.

use std::str::FromStr as _;

use crate::Jid;
use crate::binary::Node;

/// What the user is doing in a chat (`<chatstate>` child, 06 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChatState {
    /// Typing text: `<composing/>`.
    Composing,
    /// Recording a voice note: `<composing media="audio"/>`.
    Recording,
    /// Stopped typing or recording: `<paused/>`.
    Paused,
}

impl ChatState {
    /// The name used in wa-server's API and webhooks: `composing`, `recording`, `paused`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Composing => "composing",
            Self::Recording => "recording",
            Self::Paused => "paused",
        }
    }

    /// Parses [`ChatState::as_str`]'s names. `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "composing" | "typing" => Some(Self::Composing),
            "recording" => Some(Self::Recording),
            "paused" => Some(Self::Paused),
            _ => None,
        }
    }
}

/// When a contact was last online, from the `last` attribute of an `unavailable` presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LastSeen {
    /// Unix seconds.
    At(u64),
    /// The contact hides it (`last="deny"`).
    Hidden,
}

/// A contact's presence changed ([`crate::Event::Presence`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PresenceUpdate {
    /// Whose presence (the `from` attribute, PN or LID).
    pub from: Jid,
    /// `true` for available (online), `false` for `type="unavailable"`.
    pub available: bool,
    /// Last seen, when the server sent `last` (usually with unavailable).
    pub last_seen: Option<LastSeen>,
}

/// A chat state was received ([`crate::Event::ChatState`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChatStateUpdate {
    /// The chat (the user for 1:1, the group for groups).
    pub chat: Jid,
    /// Who is typing: the `participant` in a group, else the chat itself.
    pub sender: Jid,
    /// Typing, recording or paused.
    pub state: ChatState,
}

/// A JID attribute, whether decoded as a JID or sent as a string.
pub(crate) fn jid_attr(node: &Node, key: &str) -> Option<Jid> {
    node.get_attr_jid(key)
        .cloned()
        .or_else(|| node.get_attr_str(key).and_then(|s| Jid::from_str(s).ok()))
}

/// `<presence type="available|unavailable" name=…/>` (whatsmeow `SendPresence`). `@` is
/// stripped from the name (whatsmeow does the same: the server rejects it); an empty or
/// missing name is left out (Baileys `sendPresenceUpdate` sends `name: me.name`, unset
/// before the first push name).
pub fn own_presence(available: bool, push_name: Option<&str>) -> Node {
    let name = push_name
        .map(|n| n.replace('@', ""))
        .filter(|n| !n.is_empty());
    Node::new("presence")
        .attr(
            "type",
            if available {
                "available"
            } else {
                "unavailable"
            },
        )
        .attr_opt("name", name)
}

/// `<presence type="subscribe" to=…>` with the contact's trusted-contact token when we have
/// one (whatsmeow `SubscribePresence`; 07 §2.8). `to` is sent without a device part.
pub fn subscribe(to: &Jid, tc_token: Option<&[u8]>) -> Node {
    let node = Node::new("presence")
        .attr("type", "subscribe")
        .attr("to", to.to_non_ad());
    match tc_token {
        Some(token) if !token.is_empty() => {
            node.with_children([Node::new("tctoken").with_bytes(token.to_vec())])
        }
        _ => node,
    }
}

/// `<chatstate from=own to=chat><composing|paused [media="audio"]/></chatstate>` (whatsmeow
/// `SendChatPresence`, Baileys `sendPresenceUpdate`).
pub fn chat_state(own: &Jid, to: &Jid, state: ChatState) -> Node {
    let child = match state {
        ChatState::Composing => Node::new("composing"),
        ChatState::Recording => Node::new("composing").attr("media", "audio"),
        ChatState::Paused => Node::new("paused"),
    };
    Node::new("chatstate")
        .attr("from", own.to_non_ad())
        .attr("to", to.to_non_ad())
        .with_children([child])
}

/// Reads an incoming `<presence>`. `None` for a stanza without a usable `from` or of another
/// type (`subscribe` echoes, errors).
pub fn parse_presence(node: &Node) -> Option<PresenceUpdate> {
    if node.tag != "presence" {
        return None;
    }
    let from = jid_attr(node, "from")?;
    let available = match node.get_attr_str("type") {
        None | Some("available") => true,
        Some("unavailable") => false,
        Some(_) => return None,
    };
    let last_seen = match node.get_attr_str("last") {
        Some("deny") => Some(LastSeen::Hidden),
        Some(t) => t.parse::<u64>().ok().filter(|t| *t > 0).map(LastSeen::At),
        None => None,
    };
    Some(PresenceUpdate {
        from,
        available,
        last_seen,
    })
}

/// Reads an incoming `<chatstate>`. `None` without `from` or a known child.
pub fn parse_chat_state(node: &Node) -> Option<ChatStateUpdate> {
    if node.tag != "chatstate" {
        return None;
    }
    let chat = jid_attr(node, "from")?;
    let sender = jid_attr(node, "participant").unwrap_or_else(|| chat.clone());
    let state = node.children().iter().find_map(|c| match c.tag.as_ref() {
        "composing" if c.get_attr_str("media") == Some("audio") => Some(ChatState::Recording),
        "composing" => Some(ChatState::Composing),
        "paused" => Some(ChatState::Paused),
        _ => None,
    })?;
    Some(ChatStateUpdate {
        chat,
        sender,
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Jid {
        Jid::pn("15550001111").with_device(3)
    }

    #[test]
    fn chat_states_round_trip_through_their_stanzas() {
        let peer = Jid::pn("15550002222");
        for state in [
            ChatState::Composing,
            ChatState::Recording,
            ChatState::Paused,
        ] {
            let mut node = chat_state(&me(), &peer, state);
            assert_eq!(node.get_attr_str("from"), None, "a JID value, not a string");
            assert_eq!(node.get_attr_jid("from"), Some(&me().to_non_ad()));
            // What the recipient gets: from = the sender.
            node.attrs.insert("from", me().to_non_ad());
            let got = parse_chat_state(&node).expect("parses");
            assert_eq!(got.state, state);
            assert_eq!(got.sender, me().to_non_ad());
            assert_eq!(ChatState::parse(state.as_str()), Some(state));
        }
    }

    #[test]
    fn subscribe_carries_the_token_only_when_there_is_one() {
        let peer = Jid::pn("15550002222").with_device(4);
        let with = subscribe(&peer, Some(b"tok"));
        assert_eq!(with.get_attr_jid("to"), Some(&Jid::pn("15550002222")));
        assert_eq!(
            with.child_by_tag("tctoken").and_then(Node::content_bytes),
            Some(&b"tok"[..])
        );
        assert!(subscribe(&peer, None).child_by_tag("tctoken").is_none());
        assert!(
            subscribe(&peer, Some(b""))
                .child_by_tag("tctoken")
                .is_none()
        );
    }

    #[test]
    fn presence_reads_availability_and_last_seen() {
        let from = Jid::pn("15550002222");
        let online = Node::new("presence").attr("from", from.clone());
        assert_eq!(
            parse_presence(&online),
            Some(PresenceUpdate {
                from: from.clone(),
                available: true,
                last_seen: None
            })
        );
        let away = Node::new("presence")
            .attr("from", from.clone())
            .attr("type", "unavailable")
            .attr("last", "1700000000");
        let got = parse_presence(&away).expect("parses");
        assert!(!got.available);
        assert_eq!(got.last_seen, Some(LastSeen::At(1_700_000_000)));
        let hidden = Node::new("presence")
            .attr("from", from.clone())
            .attr("type", "unavailable")
            .attr("last", "deny");
        assert_eq!(
            parse_presence(&hidden).and_then(|p| p.last_seen),
            Some(LastSeen::Hidden)
        );
        assert_eq!(
            own_presence(false, Some("A@b")).get_attr_str("name"),
            Some("Ab")
        );
    }
}
