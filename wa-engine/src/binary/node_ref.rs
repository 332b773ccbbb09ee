//! Borrowed nodes: [`NodeRef`] and friends, decoded without copying.
//!
//! [`decode_node_ref`](super::decode_node_ref) validates the whole input
//! exactly like [`decode_node`](super::decode_node) (same errors, same
//! limits) but keeps strings where they are: tokens point into the static
//! dictionaries, raw strings and bytes borrow the input, and packed digits stay
//! packed until read ([`Str`]). Nothing is allocated per string; only the
//! attribute and child lists are. Use it on hot paths that inspect a stanza
//! and drop it; [`NodeRef::to_owned`] gives the equivalent [`Node`].

use std::borrow::Cow;
use std::fmt;

use crate::jid::{Jid, Server};

use super::encode::PACKED_MAX_CHARS;
use super::node::{Attrs, Content, Node, Value};

/// NIBBLE_8 characters by value (shared/protocol/02 §4.3); decode validated the values.
const NIBBLE_CHARS: &[u8; 16] = b"0123456789-.????";
/// HEX_8 characters by value.
const HEX_CHARS: &[u8; 16] = b"0123456789ABCDEF";

/// A string inside a decoded frame: a token, borrowed UTF-8, or packed digits
/// that are unpacked when read.
#[derive(Clone, Copy)]
pub struct Str<'a>(Repr<'a>);

#[derive(Clone, Copy)]
enum Repr<'a> {
    Token(&'static str),
    Text(&'a str),
    // Packed bytes, already validated, by alphabet and parity: four variants
    // instead of `bool` fields keep the enum at 24 bytes with plain
    // two-word copies on the decoder's hot path.
    /// NIBBLE_8, even number of characters.
    NibbleEven(&'a [u8]),
    /// NIBBLE_8, odd number of characters (the last low nibble is the pad).
    NibbleOdd(&'a [u8]),
    /// HEX_8, even.
    HexEven(&'a [u8]),
    /// HEX_8, odd.
    HexOdd(&'a [u8]),
}

impl<'a> Str<'a> {
    pub(crate) const fn token(s: &'static str) -> Self {
        Self(Repr::Token(s))
    }

    pub(crate) const fn text(s: &'a str) -> Self {
        Self(Repr::Text(s))
    }

    pub(crate) const fn packed(data: &'a [u8], hex: bool, len: usize) -> Self {
        let odd = len % 2 == 1;
        Self(match (hex, odd) {
            (false, false) => Repr::NibbleEven(data),
            (false, true) => Repr::NibbleOdd(data),
            (true, false) => Repr::HexEven(data),
            (true, true) => Repr::HexOdd(data),
        })
    }

    /// The packed bytes, alphabet and character count, if packed.
    fn packed_parts(&self) -> Option<(&'a [u8], bool, usize)> {
        match self.0 {
            Repr::NibbleEven(d) => Some((d, false, 2 * d.len())),
            Repr::NibbleOdd(d) => Some((d, false, 2 * d.len() - 1)),
            Repr::HexEven(d) => Some((d, true, 2 * d.len())),
            Repr::HexOdd(d) => Some((d, true, 2 * d.len() - 1)),
            _ => None,
        }
    }

    /// Length in bytes (packed strings are ASCII: one byte per character).
    pub fn len(&self) -> usize {
        match self.0 {
            Repr::Token(s) => s.len(),
            Repr::Text(s) => s.len(),
            _ => self.packed_parts().map_or(0, |(_, _, len)| len),
        }
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the string was packed (NIBBLE_8 / HEX_8) on the wire.
    pub fn is_packed(&self) -> bool {
        self.packed_parts().is_some()
    }

    /// The string; allocates only for packed strings.
    pub fn as_str(&self) -> Cow<'a, str> {
        match self.0 {
            Repr::Token(s) => Cow::Borrowed(s),
            Repr::Text(s) => Cow::Borrowed(s),
            _ => Cow::Owned(self.unpacked()),
        }
    }

    /// The unpacked string of a packed `Str` (empty for others).
    fn unpacked(&self) -> String {
        self.packed_parts()
            .map(|(data, hex, len)| unpack(data, hex, len))
            .unwrap_or_default()
    }

    /// An owned copy that keeps tokens borrowed from the static dictionaries.
    pub fn to_cow(&self) -> Cow<'static, str> {
        match self.0 {
            Repr::Token(s) => Cow::Borrowed(s),
            Repr::Text(s) => Cow::Owned(s.to_owned()),
            _ => Cow::Owned(self.unpacked()),
        }
    }

    /// The string's bytes, unpacking on the fly.
    pub fn bytes(&self) -> impl Iterator<Item = u8> + 'a {
        let packed = self.packed_parts();
        let text: &'a [u8] = match self.0 {
            Repr::Token(s) => s.as_bytes(),
            Repr::Text(s) => s.as_bytes(),
            _ => &[],
        };
        let unpacked = packed.into_iter().flat_map(|(data, hex, len)| {
            let table = if hex { HEX_CHARS } else { NIBBLE_CHARS };
            data.iter()
                .flat_map(move |b| [table[usize::from(b >> 4)], table[usize::from(b & 0x0F)]])
                .take(len)
        });
        text.iter().copied().chain(unpacked)
    }
}

/// Unpacks validated NIBBLE_8/HEX_8 bytes into `len` characters.
fn unpack(data: &[u8], hex: bool, len: usize) -> String {
    let table = if hex { HEX_CHARS } else { NIBBLE_CHARS };
    let mut v = Vec::with_capacity(2 * data.len());
    for &b in data {
        v.extend_from_slice(&[table[usize::from(b >> 4)], table[usize::from(b & 0x0F)]]);
    }
    v.truncate(len);
    // Both alphabets are ASCII, so this never fails.
    String::from_utf8(v).unwrap_or_default()
}

impl PartialEq<str> for Str<'_> {
    fn eq(&self, other: &str) -> bool {
        match self.0 {
            Repr::Token(s) => s == other,
            Repr::Text(s) => s == other,
            _ => self.len() == other.len() && self.bytes().eq(other.bytes()),
        }
    }
}

impl PartialEq<&str> for Str<'_> {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl PartialEq for Str<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.bytes().eq(other.bytes())
    }
}

impl Eq for Str<'_> {}

impl fmt::Display for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Repr::Token(s) => f.write_str(s),
            Repr::Text(s) => f.write_str(s),
            _ => f.write_str(&self.unpacked()),
        }
    }
}

impl fmt::Debug for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.as_str(), f)
    }
}

/// A JID inside a decoded frame (see [`Jid`] for the fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JidRef<'a> {
    /// The user part (may be empty).
    pub user: Str<'a>,
    /// The server name as decoded (for AD_JID, the name its domain byte maps to).
    pub server: Str<'a>,
    /// Raw agent byte (whatsmeow `RawAgent`).
    pub agent: u8,
    /// Device part; always `Some` for AD_JID, FB_JID and INTEROP_JID.
    pub device: Option<u16>,
    /// Interop integrator id.
    pub integrator: u16,
}

impl JidRef<'_> {
    /// The equivalent owned [`Jid`].
    pub fn to_jid(&self) -> Jid {
        let mut j = Jid::new(
            self.user.as_str().into_owned(),
            Server::from_name(&self.server.as_str()),
        )
        .with_agent(self.agent)
        .with_integrator(self.integrator);
        if let Some(d) = self.device {
            j = j.with_device(d);
        }
        j
    }
}

impl fmt::Display for JidRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_jid().fmt(f)
    }
}

/// An attribute value inside a decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueRef<'a> {
    /// Text.
    String(Str<'a>),
    /// A JID.
    Jid(JidRef<'a>),
}

impl<'a> ValueRef<'a> {
    /// The text, if this is a string value.
    pub fn as_str(&self) -> Option<Cow<'a, str>> {
        match self {
            Self::String(s) => Some(s.as_str()),
            Self::Jid(_) => None,
        }
    }

    /// The equivalent owned [`Value`].
    pub fn to_value(&self) -> Value {
        match self {
            Self::String(s) => Value::String(s.to_cow()),
            Self::Jid(j) => Value::Jid(j.to_jid()),
        }
    }
}

/// Content inside a decoded frame (see [`Content`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ContentRef<'a> {
    /// No content item.
    #[default]
    None,
    /// Child nodes.
    Nodes(Vec<NodeRef<'a>>),
    /// Raw bytes, borrowed from the input.
    Bytes(&'a [u8]),
    /// A token or packed string.
    String(Str<'a>),
    /// A JID.
    Jid(JidRef<'a>),
}

/// A node borrowing from the bytes it was decoded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRef<'a> {
    /// The element name (never empty).
    pub tag: Str<'a>,
    /// Attributes in wire order.
    pub attrs: Vec<(Str<'a>, ValueRef<'a>)>,
    /// What follows the attributes.
    pub content: ContentRef<'a>,
}

impl<'a> NodeRef<'a> {
    /// The value of the first attribute named `key`.
    pub fn get_attr(&self, key: &str) -> Option<&ValueRef<'a>> {
        self.attrs.iter().find(|(k, _)| *k == *key).map(|(_, v)| v)
    }

    /// The child nodes; empty unless the content is [`ContentRef::Nodes`].
    pub fn children(&self) -> &[Self] {
        match &self.content {
            ContentRef::Nodes(nodes) => nodes,
            _ => &[],
        }
    }

    /// The first child with tag `tag`.
    pub fn child_by_tag(&self, tag: &str) -> Option<&Self> {
        self.children().iter().find(|c| c.tag == *tag)
    }

    /// The content bytes, if the content is raw bytes.
    pub fn content_bytes(&self) -> Option<&'a [u8]> {
        match self.content {
            ContentRef::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The equivalent owned [`Node`]: equal to what
    /// [`decode_node`](super::decode_node) returns for the same bytes.
    pub fn to_owned(&self) -> Node {
        let mut attrs = Attrs::with_capacity(self.attrs.len());
        for (k, v) in &self.attrs {
            attrs.push(k.to_cow(), v.to_value());
        }
        let content = match &self.content {
            ContentRef::None => Content::None,
            ContentRef::Nodes(nodes) => Content::Nodes(nodes.iter().map(Self::to_owned).collect()),
            ContentRef::Bytes(b) => Content::Bytes(b.to_vec()),
            // Same normalisation as the owned decoder (see decode.rs `read_content`).
            ContentRef::String(s)
                if s.is_packed() && (s.is_empty() || s.len() > PACKED_MAX_CHARS) =>
            {
                Content::Bytes(s.bytes().collect())
            }
            ContentRef::String(s) => Content::String(s.to_cow()),
            ContentRef::Jid(j) => Content::Jid(j.to_jid()),
        };
        Node {
            tag: self.tag.to_cow(),
            attrs,
            content,
        }
    }
}
