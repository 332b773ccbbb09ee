//! Borrowed nodes: [`NodeRef`] and its views, decoded without copying.
//!
//! [`decode_node_ref`](super::decode_node_ref) validates the whole input
//! exactly like [`decode_node`](super::decode_node) (same errors, same
//! limits, UTF-8 included) but keeps strings where they are. The tree is one
//! flat arena, a `Vec` of small fixed-size slots allocated once per decode,
//! in document order: a node's slot, then one slot per attribute, then its
//! children's subtrees, each node recording where its subtree ends. Slots hold
//! no pointers, only token numbers and offsets into the input, so:
//!
//! - a decode costs one allocation however many nodes and attributes the
//!   stanza has (the `Vec` of a per-node design costs two per node);
//! - tokens are resolved, raw text turned into `&str`, packed digits/hex
//!   unpacked and JIDs assembled only when read ([`Str`], [`JidRef`]);
//!   raw text is checked for UTF-8 during the decode (an invalid string is the
//!   decode's [`DecodeError::InvalidUtf8`](super::DecodeError::InvalidUtf8),
//!   as for the owned decoder), so reading never fails.
//!
//! Navigate with [`NodeRef::root`] (or the same methods on [`NodeRef`],
//! which act on the root) and the [`NodeView`]s it hands out;
//! [`NodeRef::to_owned`] gives the equivalent [`Node`].

use std::borrow::Cow;
use std::fmt;

use crate::jid::{Jid, Server};

use super::encode::PACKED_MAX_CHARS;
use super::node::{Attrs, Content, Node, Value};
use super::token;

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
    /// Raw bytes the decoder has checked to be UTF-8 (arena strings: turned
    /// into `&str` only when read as text).
    Utf8(&'a [u8]),
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

    /// The string's bytes when it is stored unpacked.
    fn plain_bytes(&self) -> Option<&'a [u8]> {
        match self.0 {
            Repr::Token(s) => Some(s.as_bytes()),
            Repr::Text(s) => Some(s.as_bytes()),
            Repr::Utf8(b) => Some(b),
            _ => None,
        }
    }

    /// Length in bytes (packed strings are ASCII: one byte per character).
    pub fn len(&self) -> usize {
        match self.plain_bytes() {
            Some(b) => b.len(),
            None => self.packed_parts().map_or(0, |(_, _, len)| len),
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
            Repr::Utf8(b) => utf8(b),
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
            Repr::Utf8(b) => Cow::Owned(utf8(b).into_owned()),
            _ => Cow::Owned(self.unpacked()),
        }
    }

    /// The string's bytes, unpacking on the fly.
    pub fn bytes(&self) -> impl Iterator<Item = u8> + 'a {
        let packed = self.packed_parts();
        let text: &'a [u8] = self.plain_bytes().unwrap_or(&[]);
        let unpacked = packed.into_iter().flat_map(|(data, hex, len)| {
            let table = if hex { HEX_CHARS } else { NIBBLE_CHARS };
            data.iter()
                .flat_map(move |b| [table[usize::from(b >> 4)], table[usize::from(b & 0x0F)]])
                .take(len)
        });
        text.iter().copied().chain(unpacked)
    }
}

impl<'a> From<&'a str> for Str<'a> {
    fn from(s: &'a str) -> Self {
        Self::text(s)
    }
}

/// Text from bytes the decoder validated as UTF-8: never the lossy branch.
fn utf8(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
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
        match self.plain_bytes() {
            Some(b) => b == other.as_bytes(),
            None => self.len() == other.len() && self.bytes().eq(other.bytes()),
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
        match (self.plain_bytes(), other.plain_bytes()) {
            (Some(a), Some(b)) => a == b,
            _ => self.len() == other.len() && self.bytes().eq(other.bytes()),
        }
    }
}

impl Eq for Str<'_> {}

impl fmt::Display for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
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

    /// The JID, if this is a JID value.
    pub fn as_jid(&self) -> Option<&JidRef<'a>> {
        match self {
            Self::String(_) => None,
            Self::Jid(j) => Some(j),
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

// ---------------------------------------------------------------------------
// The arena. Everything below `Slot` is crate-internal: the decoder writes
// slots, the views read them.

/// First token code of the double-byte dictionaries: code `256 + 256 * dict + index`.
pub(super) const DOUBLE_BYTE_CODE: u16 = 256;
/// First code of [`SERVER_NAMES`] (after the 4 * 256 double-byte codes).
const SERVER_CODE: u16 = DOUBLE_BYTE_CODE + 4 * 256;
/// Server names the JID encodings imply without spelling them (some are not tokens).
const SERVER_NAMES: [&str; 5] = ["s.whatsapp.net", "lid", "hosted", "hosted.lid", "msgr"];
/// Code of `interop` (kept apart: `SERVER_NAMES` order is the AD_JID domain map).
const INTEROP_CODE: u16 = SERVER_CODE + SERVER_NAMES.len() as u16;

/// The string for a token code (0 is the empty string of `LIST_EMPTY`).
fn code_str(code: u16) -> &'static str {
    if code >= SERVER_CODE {
        match SERVER_NAMES.get(usize::from(code - SERVER_CODE)) {
            Some(s) => s,
            None => "interop",
        }
    } else {
        token::by_code(code)
    }
}

/// A string in the arena: a token code, or where the bytes are in the input.
/// Offsets and lengths fit `u32` because the borrowed decoder refuses longer input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RawStr {
    /// Single-byte token `1..=235`, `0` for the empty string, double-byte
    /// token [`DOUBLE_BYTE_CODE`]` + 256 * dict + index`, or a server name.
    Token(u16),
    /// Raw bytes, checked to be UTF-8.
    Text {
        /// Offset in the input.
        off: u32,
        /// Length in bytes.
        len: u32,
    },
    /// Validated NIBBLE_8 bytes holding `chars` characters.
    Nibble {
        /// Offset of the packed bytes in the input.
        off: u32,
        /// Number of characters (`0..=254`).
        chars: u8,
    },
    /// HEX_8 bytes holding `chars` characters.
    Hex {
        /// Offset of the packed bytes in the input.
        off: u32,
        /// Number of characters (`0..=254`).
        chars: u8,
    },
}

impl RawStr {
    /// The empty string.
    pub(super) const EMPTY: Self = Self::Token(0);
    /// `s.whatsapp.net`, `lid`, `hosted`, `hosted.lid` by AD_JID domain index.
    pub(super) const fn server(index: u16) -> Self {
        Self::Token(SERVER_CODE + index)
    }
    /// `msgr` (FB_JID).
    pub(super) const MSGR: Self = Self::Token(SERVER_CODE + 4);
    /// `interop` (INTEROP_JID).
    pub(super) const INTEROP: Self = Self::Token(INTEROP_CODE);

    /// The string, borrowing from `input` (the bytes the arena was decoded from).
    #[inline]
    fn get<'a>(self, input: &'a [u8]) -> Str<'a> {
        match self {
            Self::Token(code) => Str::token(code_str(code)),
            Self::Text { off, len } => Str(Repr::Utf8(span(input, off, len as usize))),
            Self::Nibble { off, chars } => {
                Str::packed(span(input, off, packed_len(chars)), false, chars.into())
            }
            Self::Hex { off, chars } => {
                Str::packed(span(input, off, packed_len(chars)), true, chars.into())
            }
        }
    }

    /// Whether the string is empty (node tags must not be).
    pub(super) fn is_empty(self) -> bool {
        match self {
            Self::Token(code) => code_str(code).is_empty(),
            Self::Text { len, .. } => len == 0,
            Self::Nibble { chars, .. } | Self::Hex { chars, .. } => chars == 0,
        }
    }

    /// Whether the string equals `s`.
    #[inline]
    pub(super) fn is(self, input: &[u8], s: &str) -> bool {
        match self {
            Self::Token(code) => code_str(code) == s,
            Self::Text { off, len } => span(input, off, len as usize) == s.as_bytes(),
            Self::Nibble { .. } | Self::Hex { .. } => self.get(input) == *s,
        }
    }
}

/// Packed bytes for `chars` characters.
fn packed_len(chars: u8) -> usize {
    usize::from(chars).div_ceil(2)
}

/// `input[off..off + len]`; the decoder checked the range (empty if not).
#[inline]
fn span(input: &[u8], off: u32, len: usize) -> &[u8] {
    let off = off as usize;
    input.get(off..off + len).unwrap_or_default()
}

/// A JID in the arena; the server is always a string (token or raw).
#[derive(Clone, Copy, Debug)]
pub(super) struct RawJid {
    pub(super) user: RawStr,
    pub(super) server: RawStr,
    pub(super) device: u16,
    pub(super) integrator: u16,
    pub(super) agent: u8,
    pub(super) has_device: bool,
}

impl RawJid {
    fn get<'a>(&self, input: &'a [u8]) -> JidRef<'a> {
        JidRef {
            user: self.user.get(input),
            server: self.server.get(input),
            agent: self.agent,
            device: self.has_device.then_some(self.device),
            integrator: self.integrator,
        }
    }
}

/// An attribute value in the arena.
#[derive(Clone, Copy, Debug)]
pub(super) enum RawValue {
    Str(RawStr),
    Jid(RawJid),
}

impl RawValue {
    fn get<'a>(&self, input: &'a [u8]) -> ValueRef<'a> {
        match self {
            Self::Str(s) => ValueRef::String(s.get(input)),
            Self::Jid(j) => ValueRef::Jid(j.get(input)),
        }
    }
}

/// A node's content in the arena.
#[derive(Clone, Copy, Debug)]
pub(super) enum RawContent {
    None,
    /// This many children follow the node's attribute slots (0 for `LIST_EMPTY`).
    Nodes(u16),
    /// `input[off..off + len]`.
    Bytes {
        off: u32,
        len: u32,
    },
    Str(RawStr),
    Jid(RawJid),
}

/// A node in the arena.
#[derive(Clone, Copy, Debug)]
pub(super) struct RawNode {
    pub(super) tag: RawStr,
    /// Attribute slots right after this one.
    pub(super) attrs: u16,
    /// Index of the first slot after this node's subtree.
    pub(super) end: u32,
    pub(super) content: RawContent,
}

/// One arena slot.
#[derive(Clone, Copy, Debug)]
pub(super) enum Slot {
    /// A node whose slot is written once its subtree has been read.
    Pending,
    /// An attribute of the node before it.
    Attr(RawStr, RawValue),
    Node(RawNode),
}

/// Slot read for a node index that is not a node: unreachable for indexes the
/// views hand out; keeps reads panic-free.
const NO_NODE: RawNode = RawNode {
    tag: RawStr::EMPTY,
    attrs: 0,
    end: 0,
    content: RawContent::None,
};

/// A decoded node tree borrowing from the bytes it was decoded from; the
/// result of [`decode_node_ref`](super::decode_node_ref).
///
/// The methods act on the root node; [`root`](Self::root) gives it as a
/// [`NodeView`], the handle for every node of the tree.
///
/// ```
/// use wa_engine::binary::{self, Node, ValueRef};
/// use wa_engine::Jid;
///
/// let bytes = binary::encode_node(
///     &Node::new("message")
///         .attr("id", "3EB0A1")
///         .attr("from", Jid::pn("15551234567"))
///         .with_children([Node::new("enc").attr("v", "2").with_bytes(vec![1, 2, 3])]),
/// );
/// let tree = binary::decode_node_ref(&bytes)?;
/// assert_eq!(tree.tag, "message");
/// assert_eq!(tree.get_attr("id").and_then(|v| v.as_str()).as_deref(), Some("3EB0A1"));
/// let from = tree.get_attr("from").and_then(|v| v.as_jid().map(|j| j.to_jid()));
/// assert_eq!(from, Some(Jid::pn("15551234567")));
/// let enc = tree.child_by_tag("enc").expect("enc child");
/// assert_eq!(enc.content_bytes(), Some(&[1u8, 2, 3][..]));
/// # Ok::<(), binary::DecodeError>(())
/// ```
#[derive(Clone)]
pub struct NodeRef<'a> {
    /// The root's element name (never empty); also [`NodeView::tag`] of [`Self::root`].
    pub tag: Str<'a>,
    input: &'a [u8],
    /// The root node is slot 0.
    slots: Vec<Slot>,
}

impl<'a> NodeRef<'a> {
    /// A tree from the decoder's arena: `slots[0]` is the root node.
    pub(super) fn from_arena(input: &'a [u8], slots: Vec<Slot>) -> Self {
        let mut tree = Self {
            tag: Str::token(""),
            input,
            slots,
        };
        tree.tag = tree.root().tag();
        tree
    }

    /// The root node.
    pub fn root(&self) -> NodeView<'_, 'a> {
        NodeView { tree: self, idx: 0 }
    }

    /// Number of nodes in the tree, the root included.
    pub fn node_count(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s, Slot::Node(_)))
            .count()
    }

    /// The root's attributes in wire order.
    pub fn attrs(&self) -> AttrsRef<'_, 'a> {
        self.root().attrs()
    }

    /// The value of the root's first attribute named `key`.
    pub fn get_attr(&self, key: &str) -> Option<ValueRef<'a>> {
        self.root().get_attr(key)
    }

    /// The root's content.
    pub fn content(&self) -> ContentRef<'_, 'a> {
        self.root().content()
    }

    /// The root's children; empty unless its content is a node list.
    pub fn children(&self) -> Children<'_, 'a> {
        self.root().children()
    }

    /// The root's first child with tag `tag`.
    pub fn child_by_tag(&self, tag: &str) -> Option<NodeView<'_, 'a>> {
        self.root().child_by_tag(tag)
    }

    /// The root's content bytes, if the content is raw bytes.
    pub fn content_bytes(&self) -> Option<&'a [u8]> {
        self.root().content_bytes()
    }

    /// The equivalent owned [`Node`]: equal to what
    /// [`decode_node`](super::decode_node) returns for the same bytes.
    pub fn to_owned(&self) -> Node {
        self.root().to_owned()
    }
}

impl fmt::Debug for NodeRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.root().fmt(f)
    }
}

impl PartialEq for NodeRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.root() == other.root()
    }
}

impl Eq for NodeRef<'_> {}

/// One node of a [`NodeRef`] tree: a copyable handle (a reference and an
/// index). Strings it returns live as long as the input (`'a`), views and
/// iterators as long as the tree (`'t`).
#[derive(Clone, Copy)]
pub struct NodeView<'t, 'a> {
    tree: &'t NodeRef<'a>,
    idx: u32,
}

impl<'t, 'a> NodeView<'t, 'a> {
    #[inline]
    fn raw(&self) -> &'t RawNode {
        match self.tree.slots.get(self.idx as usize) {
            Some(Slot::Node(n)) => n,
            _ => &NO_NODE,
        }
    }

    /// The element name (never empty).
    pub fn tag(&self) -> Str<'a> {
        self.raw().tag.get(self.tree.input)
    }

    /// The attributes in wire order.
    pub fn attrs(&self) -> AttrsRef<'t, 'a> {
        let start = self.idx as usize + 1;
        let count = usize::from(self.raw().attrs);
        AttrsRef {
            input: self.tree.input,
            slots: self
                .tree
                .slots
                .get(start..start + count)
                .unwrap_or_default()
                .iter(),
        }
    }

    /// The value of the first attribute named `key`.
    pub fn get_attr(&self, key: &str) -> Option<ValueRef<'a>> {
        let input = self.tree.input;
        self.attrs()
            .slots
            .find_map(|slot| match slot {
                Slot::Attr(k, v) if k.is(input, key) => Some(v),
                _ => None,
            })
            .map(|v| v.get(input))
    }

    /// The text of attribute `key`, if it is present and a string.
    pub fn get_attr_str(&self, key: &str) -> Option<Cow<'a, str>> {
        self.get_attr(key).and_then(|v| v.as_str())
    }

    /// What follows the attributes.
    pub fn content(&self) -> ContentRef<'t, 'a> {
        let input = self.tree.input;
        match self.raw().content {
            RawContent::None => ContentRef::None,
            RawContent::Nodes(_) => ContentRef::Nodes(self.children()),
            RawContent::Bytes { off, len } => ContentRef::Bytes(span(input, off, len as usize)),
            RawContent::Str(s) => ContentRef::String(s.get(input)),
            RawContent::Jid(j) => ContentRef::Jid(j.get(input)),
        }
    }

    /// The child nodes; empty unless the content is a node list.
    pub fn children(&self) -> Children<'t, 'a> {
        let raw = self.raw();
        let left = match raw.content {
            RawContent::Nodes(n) => n,
            _ => 0,
        };
        Children {
            tree: self.tree,
            next: self.idx + 1 + u32::from(raw.attrs),
            left,
        }
    }

    /// The first child with tag `tag`.
    pub fn child_by_tag(&self, tag: &str) -> Option<Self> {
        let input = self.tree.input;
        self.children().find(|c| c.raw().tag.is(input, tag))
    }

    /// All children with tag `tag`.
    pub fn children_by_tag<'s>(&self, tag: &'s str) -> impl Iterator<Item = Self> + 's
    where
        't: 's,
        'a: 's,
    {
        let input = self.tree.input;
        self.children().filter(move |c| c.raw().tag.is(input, tag))
    }

    /// Follows a path of child tags, e.g. `["pair-device", "ref"]`.
    pub fn child_path(&self, path: &[&str]) -> Option<Self> {
        path.iter()
            .try_fold(*self, |node, tag| node.child_by_tag(tag))
    }

    /// The content bytes, if the content is raw bytes.
    pub fn content_bytes(&self) -> Option<&'a [u8]> {
        match self.raw().content {
            RawContent::Bytes { off, len } => Some(span(self.tree.input, off, len as usize)),
            _ => None,
        }
    }

    /// The equivalent owned [`Node`]: equal to what
    /// [`decode_node`](super::decode_node) returns for this node's bytes.
    pub fn to_owned(&self) -> Node {
        let attrs_view = self.attrs();
        let mut attrs = Attrs::with_capacity(attrs_view.len());
        for (k, v) in attrs_view {
            attrs.push(k.to_cow(), v.to_value());
        }
        let content = match self.content() {
            ContentRef::None => Content::None,
            ContentRef::Nodes(nodes) => Content::Nodes(nodes.map(|n| n.to_owned()).collect()),
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
            tag: self.tag().to_cow(),
            attrs,
            content,
        }
    }
}

impl fmt::Debug for NodeView<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeRef")
            .field("tag", &self.tag())
            .field("attrs", &self.attrs())
            .field("content", &self.content())
            .finish()
    }
}

/// Structural equality: tags, attributes in order, content.
impl PartialEq for NodeView<'_, '_> {
    fn eq(&self, other: &Self) -> bool {
        self.tag() == other.tag()
            && self.attrs().eq(other.attrs())
            && self.content() == other.content()
    }
}

impl Eq for NodeView<'_, '_> {}

/// The attributes of a node in wire order, as `(key, value)` pairs.
#[derive(Clone)]
pub struct AttrsRef<'t, 'a> {
    input: &'a [u8],
    slots: std::slice::Iter<'t, Slot>,
}

impl<'a> Iterator for AttrsRef<'_, 'a> {
    type Item = (Str<'a>, ValueRef<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.slots.next()? {
                Slot::Attr(k, v) => return Some((k.get(self.input), v.get(self.input))),
                // Never: a node's attribute slots are all attributes.
                _ => continue,
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.slots.size_hint()
    }
}

impl ExactSizeIterator for AttrsRef<'_, '_> {}

impl fmt::Debug for AttrsRef<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

/// The children of a node, in order.
#[derive(Clone)]
pub struct Children<'t, 'a> {
    tree: &'t NodeRef<'a>,
    /// Slot of the next child.
    next: u32,
    left: u16,
}

impl<'t, 'a> Iterator for Children<'t, 'a> {
    type Item = NodeView<'t, 'a>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let child = NodeView {
            tree: self.tree,
            idx: self.next,
        };
        self.next = child.raw().end;
        Some(child)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::from(self.left), Some(usize::from(self.left)))
    }
}

impl ExactSizeIterator for Children<'_, '_> {}

impl fmt::Debug for Children<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

impl PartialEq for Children<'_, '_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.clone().eq(other.clone())
    }
}

impl Eq for Children<'_, '_> {}

/// Content inside a decoded frame (see [`Content`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ContentRef<'t, 'a> {
    /// No content item.
    #[default]
    None,
    /// Child nodes (possibly none, for `LIST_EMPTY`).
    Nodes(Children<'t, 'a>),
    /// Raw bytes, borrowed from the input.
    Bytes(&'a [u8]),
    /// A token or packed string.
    String(Str<'a>),
    /// A JID.
    Jid(JidRef<'a>),
}
