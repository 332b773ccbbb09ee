//! Errors of the binary node codec.
//!
//! Offsets are byte positions in the input handed to the decode function: for
//! [`decode`](super::decode) of an uncompressed frame they count the flags
//! byte; for a compressed frame they are positions in the inflated body.

/// Why bytes could not be decoded into a [`Node`](super::Node).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame has no flags byte.
    #[error("empty frame: no flags byte")]
    EmptyFrame,
    /// The zlib stream of a compressed frame (flags & 2) is corrupt or truncated.
    #[error("cannot inflate compressed frame")]
    Inflate(#[source] std::io::Error),
    /// A compressed frame inflates to more than [`MAX_INFLATED_LEN`](super::MAX_INFLATED_LEN) bytes.
    #[error("compressed frame inflates to more than {limit} bytes")]
    InflatedTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Bytes follow the end of the zlib stream in a compressed frame.
    #[error("{count} bytes follow the zlib stream")]
    TrailingCompressedBytes {
        /// Number of extra bytes.
        count: usize,
    },
    /// The input ends inside an item.
    #[error(
        "unexpected end of input at offset {offset}: need {needed} more bytes, {available} left"
    )]
    UnexpectedEof {
        /// Where the missing item starts.
        offset: usize,
        /// Bytes the item needs.
        needed: usize,
        /// Bytes left in the input.
        available: usize,
    },
    /// A node does not start with a list header (`F8` / `F9`).
    #[error("expected a node (list header F8/F9) at offset {offset}, found {byte:#04x}")]
    ExpectedNode {
        /// Offset of the offending byte.
        offset: usize,
        /// The byte found.
        byte: u8,
    },
    /// A node's list size is 0 (`F8 00` etc.): a node needs at least a tag.
    #[error("node at offset {offset} has list size 0")]
    EmptyNode {
        /// Offset of the list header.
        offset: usize,
    },
    /// A node's tag is the empty string.
    #[error("node at offset {offset} has an empty tag")]
    EmptyTag {
        /// Offset of the tag item.
        offset: usize,
    },
    /// A byte that cannot start the expected item (e.g. `F0`..`F4`, or a list
    /// header where a string is expected).
    #[error("invalid {expected} tag byte {byte:#04x} at offset {offset}")]
    InvalidTag {
        /// Offset of the offending byte.
        offset: usize,
        /// The byte found.
        byte: u8,
        /// What was being read ("string", "content", …).
        expected: &'static str,
    },
    /// A JID where only a plain string may appear (node tag, attribute key,
    /// or a part of another JID).
    #[error("JID at offset {offset} where a plain string is required")]
    UnexpectedJid {
        /// Offset of the JID tag byte.
        offset: usize,
    },
    /// A packed decimal (NIBBLE_8) digit outside `0-9 - .`, or the pad value 15
    /// anywhere but the final, dropped position.
    #[error("invalid packed nibble {value} at offset {offset}")]
    InvalidNibble {
        /// Offset of the byte holding the nibble.
        offset: usize,
        /// The 4-bit value.
        value: u8,
    },
    /// A packed string header announces an odd length but no bytes (`FF 80`).
    #[error("packed string at offset {offset} has the odd flag but no bytes")]
    InvalidPackedLength {
        /// Offset of the length byte.
        offset: usize,
    },
    /// Raw bytes used as text (tag, key, attribute value, JID part) are not UTF-8.
    #[error("invalid UTF-8 in string at offset {offset}")]
    InvalidUtf8 {
        /// Offset of the first byte of the string's data.
        offset: usize,
    },
    /// A JID_PAIR without server (`00` or empty string).
    #[error("JID at offset {offset} has no server")]
    MissingJidServer {
        /// Offset of the JID tag byte.
        offset: usize,
    },
    /// An FB_JID whose server is not `msgr` (whatsmeow binary/decoder.go `readFBJID`).
    #[error("FB JID at offset {offset} has server other than msgr")]
    UnexpectedJidServer {
        /// Offset of the JID tag byte.
        offset: usize,
    },
    /// Input to [`decode_node_ref`](super::decode_node_ref) longer than its
    /// limit (`u32::MAX` bytes; frames are at most 16 MiB).
    #[error("input of {len} bytes is longer than the {limit} bytes the borrowed decoder takes")]
    InputTooLong {
        /// Length of the input.
        len: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// Nodes nested deeper than [`MAX_DEPTH`](super::MAX_DEPTH).
    #[error("nodes nested deeper than {limit} at offset {offset}")]
    TooDeep {
        /// Offset of the node that went too deep.
        offset: usize,
        /// The limit.
        limit: usize,
    },
    /// Bytes remain after the node (whatsmeow binary/node.go `Unmarshal`,
    /// whatsapp-rust `LeftoverData`).
    #[error("{count} trailing bytes after the node at offset {offset}")]
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
        /// Number of extra bytes.
        count: usize,
    },
}

/// Why a node cannot be encoded: a size the wire format cannot express.
///
/// Only nodes built by hand can hit these; every decoded node re-encodes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// More than 32767 attributes: the node's list size (1 + 2·attrs + content)
    /// must fit LIST_16 (< 65536).
    #[error("node <{tag}> has {count} attributes; at most 32767 fit a LIST_16 header")]
    TooManyAttributes {
        /// The node's tag.
        tag: String,
        /// Number of attributes.
        count: usize,
    },
    /// More than 65535 children.
    #[error("node <{tag}> has {count} children; at most 65535 fit a LIST_16 header")]
    TooManyChildren {
        /// The node's tag.
        tag: String,
        /// Number of children.
        count: usize,
    },
    /// A string or byte payload of 2^32 bytes or more (BINARY_32 limit).
    #[error("payload of {len} bytes exceeds the BINARY_32 limit")]
    TooLong {
        /// Length in bytes.
        len: usize,
    },
}

/// One problem found by an [`AttrReader`](super::AttrReader).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttrError {
    /// A required attribute is absent.
    #[error("missing attribute {key:?}")]
    Missing {
        /// The attribute key.
        key: String,
    },
    /// The attribute is a JID where a string was required, or vice versa
    /// (whatsmeow binary/attrs.go `GetJID` rejects plain strings).
    #[error("attribute {key:?} should be a {expected}")]
    WrongType {
        /// The attribute key.
        key: String,
        /// "string" or "JID".
        expected: &'static str,
    },
    /// The attribute's text is not a number of the requested type.
    #[error("attribute {key:?} = {value:?} is not a valid {expected}")]
    InvalidNumber {
        /// The attribute key.
        key: String,
        /// The text found.
        value: String,
        /// The requested type, e.g. "u64".
        expected: &'static str,
    },
    /// The attribute's text is not `true`/`false` (or `1`/`0`).
    #[error("attribute {key:?} = {value:?} is not a boolean")]
    InvalidBool {
        /// The attribute key.
        key: String,
        /// The text found.
        value: String,
    },
}

/// All problems an [`AttrReader`](super::AttrReader) collected, in order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid attributes on <{tag}>: {}", join(.errors))]
pub struct AttrErrors {
    /// The node's tag.
    pub tag: String,
    /// The individual problems (never empty).
    pub errors: Vec<AttrError>,
}

fn join(errors: &[AttrError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
