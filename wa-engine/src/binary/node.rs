//! The node tree: [`Node`], [`Attrs`], [`Value`], [`Content`].

use std::borrow::Cow;
use std::fmt;

use crate::jid::Jid;

use super::attrs::AttrReader;

/// One stanza element: a tag, ordered attributes and optional content.
///
/// Strings are `Cow<'static, str>` so that tokens (the common case for tags,
/// keys and many values) decode and build without allocating. Build nodes
/// with the chaining methods:
///
/// ```
/// use wa_engine::binary::Node;
/// use wa_engine::{Jid, Server};
///
/// let iq = Node::new("iq")
///     .attr("id", "1234")
///     .attr("to", Jid::server_jid(Server::Pn))
///     .attr("type", "get")
///     .attr("xmlns", "w:p")
///     .with_children([Node::new("ping")]);
/// assert_eq!(iq.child_by_tag("ping").map(|n| n.tag.as_ref()), Some("ping"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// The element name, e.g. `iq`. Never empty in a decoded node.
    pub tag: Cow<'static, str>,
    /// Attributes in wire order.
    pub attrs: Attrs,
    /// What follows the attributes.
    pub content: Content,
}

/// An attribute value: text or a typed JID.
///
/// JID-valued attributes (`from`, `to`, `participant`, `jid`, `lid`, …) must be
/// [`Value::Jid`] so they are encoded as JIDs (shared/protocol/02 §8 rule 1:
/// whatsmeow ignores e.g. a pair-device IQ whose `from` is a plain string).
/// The encoder never turns a [`Value::String`] into a JID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// Text: written as token, packed digits/hex, or raw UTF-8.
    String(Cow<'static, str>),
    /// A JID: written as JID_PAIR, AD_JID, FB_JID or INTEROP_JID.
    Jid(Jid),
}

/// What follows a node's attributes.
///
/// On decode (shared/protocol/02 §3 step 4, shared/vectors/README binary):
/// `00` gives `Nodes(vec![])`; a list gives `Nodes`; BINARY_8/20/32 give
/// `Bytes`; tokens and packed strings give `String`; JIDs give `Jid`.
/// Encoding `String(s)` where `s` is neither a token nor packable writes raw
/// bytes, which decode as `Bytes`: that is the codec's one normalisation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Content {
    /// No content item (odd list size).
    #[default]
    None,
    /// Child nodes; an empty list is written as `00` (LIST_EMPTY).
    Nodes(Vec<Node>),
    /// Raw bytes (BINARY_8/20/32), never tokenised.
    Bytes(Vec<u8>),
    /// Text (token, packed or raw on the wire).
    String(Cow<'static, str>),
    /// A JID.
    Jid(Jid),
}

/// A node's attributes: an ordered list of `(key, value)` pairs.
///
/// Order is kept because it is visible on the wire (the vectors' bytes depend
/// on it). Lookups are linear, which beats hashing for the handful of
/// attributes a stanza has. Keys are expected to be unique;
/// [`Attrs::insert`] keeps them so, [`Attrs::push`] does not check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attrs(Vec<(Cow<'static, str>, Value)>);

impl Attrs {
    /// No attributes.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// No attributes, with room for `capacity`.
    pub fn with_capacity(capacity: usize) -> Self {
        Self(Vec::with_capacity(capacity))
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no attributes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of the first attribute named `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Whether an attribute named `key` exists.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Appends an attribute without checking for an existing `key`.
    #[inline]
    pub fn push(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<Value>) {
        self.0.push((key.into(), value.into()));
    }

    /// Sets `key` to `value`, replacing the first attribute with that key in
    /// place, or appending. Returns the old value.
    pub fn insert(
        &mut self,
        key: impl Into<Cow<'static, str>>,
        value: impl Into<Value>,
    ) -> Option<Value> {
        let key = key.into();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, slot)) => Some(std::mem::replace(slot, value)),
            None => {
                self.0.push((key, value));
                None
            }
        }
    }

    /// Removes the first attribute named `key` and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(i).1)
    }

    /// Iterates `(key, value)` in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> + '_ {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// The pairs as a slice.
    pub fn as_slice(&self) -> &[(Cow<'static, str>, Value)] {
        &self.0
    }

    /// Consumes the attributes into their pairs.
    pub fn into_vec(self) -> Vec<(Cow<'static, str>, Value)> {
        self.0
    }
}

impl From<Vec<(Cow<'static, str>, Value)>> for Attrs {
    fn from(pairs: Vec<(Cow<'static, str>, Value)>) -> Self {
        Self(pairs)
    }
}

impl<K: Into<Cow<'static, str>>, V: Into<Value>> FromIterator<(K, V)> for Attrs {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl IntoIterator for Attrs {
    type Item = (Cow<'static, str>, Value);
    type IntoIter = std::vec::IntoIter<Self::Item>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl Value {
    /// The text, if this is a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            Self::Jid(_) => None,
        }
    }

    /// The JID, if this is a JID value.
    pub fn as_jid(&self) -> Option<&Jid> {
        match self {
            Self::Jid(j) => Some(j),
            Self::String(_) => None,
        }
    }

    /// The value as text: the string itself, or the JID's string form
    /// (shared/protocol/02 §8 rule 4: offer the string form for comparisons).
    pub fn to_text(&self) -> Cow<'_, str> {
        match self {
            Self::String(s) => Cow::Borrowed(s),
            Self::Jid(j) => Cow::Owned(j.to_string()),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(s) => f.write_str(s),
            Self::Jid(j) => j.fmt(f),
        }
    }
}

impl From<&'static str> for Value {
    fn from(s: &'static str) -> Self {
        Self::String(Cow::Borrowed(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::String(Cow::Owned(s))
    }
}

impl From<Cow<'static, str>> for Value {
    fn from(s: Cow<'static, str>) -> Self {
        Self::String(s)
    }
}

impl From<Jid> for Value {
    fn from(j: Jid) -> Self {
        Self::Jid(j)
    }
}

impl From<&Jid> for Value {
    fn from(j: &Jid) -> Self {
        Self::Jid(j.clone())
    }
}

impl From<bool> for Value {
    /// `"true"` / `"false"`, as whatsmeow writes booleans (encoder.go `write`).
    fn from(b: bool) -> Self {
        Self::String(Cow::Borrowed(if b { "true" } else { "false" }))
    }
}

macro_rules! value_from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            /// The decimal form, as whatsmeow writes integers (encoder.go `write`).
            fn from(n: $t) -> Self {
                Self::String(Cow::Owned(n.to_string()))
            }
        }
    )*};
}
value_from_int!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

impl From<Vec<Node>> for Content {
    fn from(nodes: Vec<Node>) -> Self {
        Self::Nodes(nodes)
    }
}

impl From<Vec<u8>> for Content {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Bytes(bytes)
    }
}

impl From<&[u8]> for Content {
    fn from(bytes: &[u8]) -> Self {
        Self::Bytes(bytes.to_vec())
    }
}

impl From<&'static str> for Content {
    fn from(s: &'static str) -> Self {
        Self::String(Cow::Borrowed(s))
    }
}

impl From<String> for Content {
    fn from(s: String) -> Self {
        Self::String(Cow::Owned(s))
    }
}

impl From<Jid> for Content {
    fn from(j: Jid) -> Self {
        Self::Jid(j)
    }
}

impl Content {
    /// Whether there is no content item.
    pub fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }
}

impl Node {
    /// A node with tag `tag`, no attributes and no content.
    pub fn new(tag: impl Into<Cow<'static, str>>) -> Self {
        Self {
            tag: tag.into(),
            attrs: Attrs::new(),
            content: Content::None,
        }
    }

    /// Appends attribute `key = value` (builder style; see [`Attrs::push`]).
    #[must_use]
    pub fn attr(mut self, key: impl Into<Cow<'static, str>>, value: impl Into<Value>) -> Self {
        self.attrs.push(key, value);
        self
    }

    /// Appends attribute `key = value` when `value` is `Some`.
    #[must_use]
    pub fn attr_opt(
        self,
        key: impl Into<Cow<'static, str>>,
        value: Option<impl Into<Value>>,
    ) -> Self {
        match value {
            Some(v) => self.attr(key, v),
            None => self,
        }
    }

    /// Replaces the attributes.
    #[must_use]
    pub fn with_attrs(mut self, attrs: Attrs) -> Self {
        self.attrs = attrs;
        self
    }

    /// Sets the content.
    #[must_use]
    pub fn with_content(mut self, content: impl Into<Content>) -> Self {
        self.content = content.into();
        self
    }

    /// Sets the content to these child nodes.
    #[must_use]
    pub fn with_children(mut self, children: impl IntoIterator<Item = Self>) -> Self {
        self.content = Content::Nodes(children.into_iter().collect());
        self
    }

    /// Sets the content to raw bytes (always BINARY on the wire; use this for
    /// `<ref>`, `<device-identity>`, `<enc>` etc., shared/protocol/02 §8 rule 2).
    #[must_use]
    pub fn with_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.content = Content::Bytes(bytes.into());
        self
    }

    /// Sets the content to text.
    #[must_use]
    pub fn with_text(mut self, text: impl Into<Cow<'static, str>>) -> Self {
        self.content = Content::String(text.into());
        self
    }

    /// The value of attribute `key`.
    pub fn get_attr(&self, key: &str) -> Option<&Value> {
        self.attrs.get(key)
    }

    /// The text of attribute `key`, if present and a string (not a JID).
    pub fn get_attr_str(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).and_then(Value::as_str)
    }

    /// The JID of attribute `key`, if present and a JID.
    pub fn get_attr_jid(&self, key: &str) -> Option<&Jid> {
        self.attrs.get(key).and_then(Value::as_jid)
    }

    /// An [`AttrReader`] over this node's attributes (whatsmeow `AttrGetter`).
    pub fn attr_reader(&self) -> AttrReader<'_> {
        AttrReader::new(self)
    }

    /// The child nodes; empty unless the content is [`Content::Nodes`].
    pub fn children(&self) -> &[Self] {
        match &self.content {
            Content::Nodes(nodes) => nodes,
            _ => &[],
        }
    }

    /// The first child with tag `tag`.
    pub fn child_by_tag(&self, tag: &str) -> Option<&Self> {
        self.children().iter().find(|c| c.tag == tag)
    }

    /// All children with tag `tag`.
    pub fn children_by_tag<'a>(&'a self, tag: &'a str) -> impl Iterator<Item = &'a Self> + 'a {
        self.children().iter().filter(move |c| c.tag == tag)
    }

    /// Follows a path of child tags, e.g. `["pair-device", "ref"]`.
    pub fn child_path(&self, path: &[&str]) -> Option<&Self> {
        path.iter()
            .try_fold(self, |node, tag| node.child_by_tag(tag))
    }

    /// The content as bytes: [`Content::Bytes`], or the UTF-8 of a
    /// [`Content::String`] (string and byte content are interchangeable,
    /// shared/protocol/02 §8 rule 3).
    pub fn content_bytes(&self) -> Option<&[u8]> {
        match &self.content {
            Content::Bytes(b) => Some(b),
            Content::String(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// The content as text: [`Content::String`], or [`Content::Bytes`] that are valid UTF-8.
    pub fn content_str(&self) -> Option<&str> {
        match &self.content {
            Content::String(s) => Some(s),
            Content::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The content as a JID, if it is one.
    pub fn content_jid(&self) -> Option<&Jid> {
        match &self.content {
            Content::Jid(j) => Some(j),
            _ => None,
        }
    }
}

/// XML-like rendering for logs (`trace` only: it shows content bytes as hex).
impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}", self.tag)?;
        for (k, v) in self.attrs.iter() {
            write!(f, " {k}=\"{v}\"")?;
        }
        match &self.content {
            Content::None => f.write_str("/>"),
            Content::Nodes(nodes) => {
                f.write_str(">")?;
                for n in nodes {
                    n.fmt(f)?;
                }
                write!(f, "</{}>", self.tag)
            }
            Content::Bytes(b) => {
                f.write_str(">")?;
                for byte in b {
                    write!(f, "{byte:02x}")?;
                }
                write!(f, "</{}>", self.tag)
            }
            Content::String(s) => write!(f, ">{s}</{}>", self.tag),
            Content::Jid(j) => write!(f, ">{j}</{}>", self.tag),
        }
    }
}
