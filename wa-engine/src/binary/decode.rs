//! Decoder: bytes -> [`Node`] (shared/protocol/02 §1–§6).
//!
//! Never panics and never allocates more than the input justifies: lengths are
//! checked against the remaining input before anything is reserved, list
//! capacities are capped by the bytes left, nesting is capped at [`MAX_DEPTH`]
//! and inflated frames at [`MAX_INFLATED_LEN`].

use std::borrow::Cow;

use flate2::{Decompress, FlushDecompress, Status};

use crate::jid::Server;

use super::encode::PACKED_MAX_CHARS;
use super::error::DecodeError;
use super::node::{Attrs, Content, Node, Value};
use super::node_ref::{
    DOUBLE_BYTE_CODE, JidRef, NodeRef, RawContent, RawJid, RawNode, RawStr, RawValue, Slot, Str,
    ValueRef,
};
use super::tags;
use super::token;

/// Largest body a compressed frame may inflate to: 16 MiB, the largest Noise
/// transport frame (3-byte length prefix, shared/protocol/01) and the limit
/// whatsapp-rust uses (wacore/binary/src/util.rs `MAX_DECOMPRESSED_SIZE`).
pub const MAX_INFLATED_LEN: usize = 16 << 20;

/// Deepest node nesting accepted. Real stanzas nest fewer than 10 levels (the
/// deepest vector nests 25); the cap keeps recursion and drop depth bounded.
pub const MAX_DEPTH: usize = 128;

/// Decodes a frame: the flags byte, then one node (zlib-compressed when
/// `flags & 2`, shared/protocol/02 §1). Other flag bits are ignored.
///
/// # Errors
/// [`DecodeError`] for an empty frame, a bad zlib stream, a body over
/// [`MAX_INFLATED_LEN`], malformed node bytes, or bytes after the node.
pub fn decode(frame: &[u8]) -> Result<Node, DecodeError> {
    let (&flags, body) = frame.split_first().ok_or(DecodeError::EmptyFrame)?;
    if flags & FLAG_COMPRESSED != 0 {
        let inflated = inflate(body)?;
        decode_at(&inflated, 0)
    } else {
        decode_at(body, 1)
    }
}

/// Decodes one node without flags byte.
///
/// # Errors
/// [`DecodeError`] for malformed node bytes or bytes after the node.
pub fn decode_node(bytes: &[u8]) -> Result<Node, DecodeError> {
    decode_at(bytes, 0)
}

/// Decodes one node without flags byte, borrowing from `bytes`: see
/// [`NodeRef`]. Validation, errors and limits are those of [`decode_node`].
///
/// For a frame, strip the flags byte (and inflate) with [`unpack`] first.
///
/// # Errors
/// As [`decode_node`], plus [`DecodeError::InputTooLong`] for input over
/// `u32::MAX` bytes (the arena stores `u32` offsets).
pub fn decode_node_ref(bytes: &[u8]) -> Result<NodeRef<'_>, DecodeError> {
    // Arena offsets are u32 (node_ref.rs); frames are at most 16 MiB.
    if u32::try_from(bytes.len()).is_err() {
        return Err(DecodeError::InputTooLong {
            len: bytes.len(),
            limit: u32::MAX as usize,
        });
    }
    let mut r = Reader {
        data: bytes,
        pos: 0,
        base: 0,
        depth: 0,
    };
    let mut slots = Vec::with_capacity(arena_capacity(bytes.len()));
    r.read_node_slots(&mut slots).map_err(|e| *e)?;
    if r.pos < bytes.len() {
        return Err(DecodeError::TrailingBytes {
            offset: r.offset(),
            count: bytes.len() - r.pos,
        });
    }
    Ok(NodeRef::from_arena(bytes, slots))
}

/// First guess of the arena slots a body of `len` bytes needs (one per node
/// and per attribute): typical stanzas spend 5 to 8 bytes per slot, so this
/// rarely grows; capped so large media-bearing frames start small.
fn arena_capacity(len: usize) -> usize {
    (len / 4 + 4).min(4096)
}

/// Strips the flags byte of a frame and inflates the body if `flags & 2`.
///
/// Returns the bare node bytes, borrowed when the frame is uncompressed.
///
/// # Errors
/// [`DecodeError::EmptyFrame`], or the inflate errors of [`decode`].
pub fn unpack(frame: &[u8]) -> Result<Cow<'_, [u8]>, DecodeError> {
    let (&flags, body) = frame.split_first().ok_or(DecodeError::EmptyFrame)?;
    if flags & FLAG_COMPRESSED != 0 {
        Ok(Cow::Owned(inflate(body)?))
    } else {
        Ok(Cow::Borrowed(body))
    }
}

/// Flags bit meaning "body is a zlib stream" (whatsmeow binary/unpack.go, Baileys
/// `decompressingIfRequired`).
const FLAG_COMPRESSED: u8 = 0x02;

fn decode_at(bytes: &[u8], base: usize) -> Result<Node, DecodeError> {
    let mut r = Reader {
        data: bytes,
        pos: 0,
        base,
        depth: 0,
    };
    let node = r.read_node().map_err(|e| *e)?;
    if r.pos < bytes.len() {
        return Err(DecodeError::TrailingBytes {
            offset: r.offset(),
            count: bytes.len() - r.pos,
        });
    }
    Ok(node)
}

/// Inflates a zlib (RFC 1950) stream, refusing more than [`MAX_INFLATED_LEN`]
/// bytes, truncated streams and bytes after the stream.
fn inflate(body: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut z = Decompress::new(true);
    let mut out: Vec<u8> =
        Vec::with_capacity(body.len().saturating_mul(4).clamp(1024, MAX_INFLATED_LEN));
    loop {
        if out.len() > MAX_INFLATED_LEN {
            return Err(DecodeError::InflatedTooLarge {
                limit: MAX_INFLATED_LEN,
            });
        }
        if out.len() == out.capacity() {
            let grow = out.len().max(1024).min(MAX_INFLATED_LEN + 1 - out.len());
            out.reserve(grow);
        }
        let (in_before, out_before) = (z.total_in(), z.total_out());
        let consumed = usize::try_from(in_before).unwrap_or(usize::MAX);
        let input = body.get(consumed..).unwrap_or(&[]);
        let status = z
            .decompress_vec(input, &mut out, FlushDecompress::None)
            .map_err(|e| {
                DecodeError::Inflate(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
            })?;
        if status == Status::StreamEnd {
            break;
        }
        if z.total_in() == in_before && z.total_out() == out_before && out.len() < out.capacity() {
            return Err(DecodeError::Inflate(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "zlib stream ends early",
            )));
        }
    }
    if out.len() > MAX_INFLATED_LEN {
        return Err(DecodeError::InflatedTooLarge {
            limit: MAX_INFLATED_LEN,
        });
    }
    let consumed = usize::try_from(z.total_in()).unwrap_or(usize::MAX);
    if consumed < body.len() {
        return Err(DecodeError::TrailingCompressedBytes {
            count: body.len() - consumed,
        });
    }
    Ok(out)
}

/// Errors inside the reader are boxed so that `Result`s of the hot paths stay
/// pointer-sized on the error side.
type R<T> = Result<T, Box<DecodeError>>;

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Added to `pos` in error offsets (1 when a flags byte was stripped).
    base: usize,
    depth: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    fn offset(&self) -> usize {
        self.base + self.pos
    }

    #[inline]
    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    #[inline]
    fn eof(&self, needed: usize) -> Box<DecodeError> {
        Box::new(DecodeError::UnexpectedEof {
            offset: self.offset(),
            needed,
            available: self.remaining(),
        })
    }

    #[inline(always)]
    fn byte(&mut self) -> R<u8> {
        match self.data.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.eof(1)),
        }
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.eof(n));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> R<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    #[inline]
    fn u16(&mut self) -> R<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Length of a BINARY_8/20/32 item whose tag byte was just read.
    #[inline(always)]
    fn binary_len(&mut self, tag: u8) -> R<usize> {
        Ok(match tag {
            tags::BINARY_8 => usize::from(self.byte()?),
            tags::BINARY_20 => {
                let [a, b, c] = self.array()?;
                // Top nibble masked (shared/protocol/02 §5).
                (usize::from(a & 0x0F) << 16) | (usize::from(b) << 8) | usize::from(c)
            }
            _ => usize::try_from(u32::from_be_bytes(self.array()?)).unwrap_or(usize::MAX),
        })
    }

    /// Reads a node's list header; returns its size (>= 1).
    #[inline(always)]
    fn node_header(&mut self) -> R<usize> {
        let start = self.offset();
        if self.depth >= MAX_DEPTH {
            return Err(Box::new(DecodeError::TooDeep {
                offset: start,
                limit: MAX_DEPTH,
            }));
        }
        let size = match self.byte()? {
            tags::LIST_8 => usize::from(self.byte()?),
            tags::LIST_16 => usize::from(self.u16()?),
            tags::LIST_EMPTY => return Err(Box::new(DecodeError::EmptyNode { offset: start })),
            byte => {
                return Err(Box::new(DecodeError::ExpectedNode {
                    offset: start,
                    byte,
                }));
            }
        };
        if size == 0 {
            return Err(Box::new(DecodeError::EmptyNode { offset: start }));
        }
        Ok(size)
    }

    /// A node's tag: a non-empty plain string.
    #[inline(always)]
    fn node_tag(&mut self) -> R<Str<'a>> {
        let offset = self.offset();
        let tag = self.read_plain_str()?;
        if tag.is_empty() {
            return Err(Box::new(DecodeError::EmptyTag { offset }));
        }
        Ok(tag)
    }

    /// Size of a child list whose header byte `tag` was just read.
    #[inline]
    fn child_count(&mut self, tag: u8) -> R<(usize, usize)> {
        let size = if tag == tags::LIST_8 {
            usize::from(self.byte()?)
        } else {
            usize::from(self.u16()?)
        };
        // A child node takes at least three bytes (F8 01 <token>): cap the reservation.
        Ok((size, size.min(self.remaining() / 3)))
    }

    fn read_node(&mut self) -> R<Node> {
        let size = self.node_header()?;
        let tag = self.node_tag()?.to_cow();
        let attr_count = (size - 1) >> 1;
        // Each pair needs at least two bytes.
        let mut attrs = Attrs::with_capacity(attr_count.min(self.remaining() / 2));
        for _ in 0..attr_count {
            let key = self.read_plain_str()?.to_cow();
            let value = match self.read_value()? {
                ValueRef::String(s) => Value::String(s.to_cow()),
                ValueRef::Jid(j) => Value::Jid(j.to_jid()),
            };
            attrs.push(key, value);
        }
        let content = if size % 2 == 0 {
            self.depth += 1;
            let content = self.read_content();
            self.depth -= 1;
            content?
        } else {
            Content::None
        };
        Ok(Node {
            tag,
            attrs,
            content,
        })
    }

    fn read_content(&mut self) -> R<Content> {
        let offset = self.offset();
        let tag = self.byte()?;
        match tag {
            tags::LIST_EMPTY => Ok(Content::Nodes(Vec::new())),
            tags::LIST_8 | tags::LIST_16 => {
                let (size, reserve) = self.child_count(tag)?;
                let mut children = Vec::with_capacity(reserve);
                for _ in 0..size {
                    children.push(self.read_node()?);
                }
                Ok(Content::Nodes(children))
            }
            tags::BINARY_8 | tags::BINARY_20 | tags::BINARY_32 => {
                let n = self.binary_len(tag)?;
                Ok(Content::Bytes(self.take(n)?.to_vec()))
            }
            tags::JID_PAIR | tags::AD_JID | tags::FB_JID | tags::INTEROP_JID => {
                Ok(Content::Jid(self.read_jid(tag, offset)?.to_jid()))
            }
            _ => {
                let s = self.read_str(tag, offset, "content")?;
                // Packed strings our encoder would write raw (empty, or longer
                // than 127 characters: only other encoders produce them) come
                // back as bytes, so that decode(encode(decode(x))) == decode(x).
                if s.is_packed() && (s.is_empty() || s.len() > PACKED_MAX_CHARS) {
                    Ok(Content::Bytes(s.bytes().collect()))
                } else {
                    Ok(Content::String(s.to_cow()))
                }
            }
        }
    }

    /// Reads a node into the arena (node_ref.rs): its slot, one slot per
    /// attribute, then the children's subtrees. Same checks, in the same order,
    /// as [`Self::read_node`].
    fn read_node_slots(&mut self, slots: &mut Vec<Slot>) -> R<()> {
        let size = self.node_header()?;
        let offset = self.offset();
        let tag_byte = self.byte()?;
        let tag = self.read_raw_str(tag_byte, offset, "string")?;
        if tag.is_empty() {
            return Err(Box::new(DecodeError::EmptyTag { offset }));
        }
        let idx = slots.len();
        slots.push(Slot::Pending);
        let attr_count = (size - 1) >> 1;
        for _ in 0..attr_count {
            let offset = self.offset();
            let key_byte = self.byte()?;
            let key = self.read_raw_str(key_byte, offset, "string")?;
            let value = self.read_raw_value()?;
            slots.push(Slot::Attr(key, value));
        }
        let content = if size % 2 == 0 {
            self.depth += 1;
            let content = self.read_content_slots(slots);
            self.depth -= 1;
            content?
        } else {
            RawContent::None
        };
        let node = Slot::Node(RawNode {
            tag,
            // size <= 0xFFFF, so attr_count < 0x8000.
            attrs: attr_count as u16,
            // At most one slot per input byte, and the input fits u32.
            end: slots.len() as u32,
            content,
        });
        if let Some(slot) = slots.get_mut(idx) {
            *slot = node;
        }
        Ok(())
    }

    fn read_content_slots(&mut self, slots: &mut Vec<Slot>) -> R<RawContent> {
        let offset = self.offset();
        let tag = self.byte()?;
        match tag {
            tags::LIST_EMPTY => Ok(RawContent::Nodes(0)),
            tags::LIST_8 | tags::LIST_16 => {
                let (size, _) = self.child_count(tag)?;
                for _ in 0..size {
                    self.read_node_slots(slots)?;
                }
                // LIST_16 sizes fit u16.
                Ok(RawContent::Nodes(size as u16))
            }
            tags::BINARY_8 | tags::BINARY_20 | tags::BINARY_32 => {
                let n = self.binary_len(tag)?;
                let off = self.pos;
                self.take(n)?;
                // The input fits u32 (checked in decode_node_ref).
                Ok(RawContent::Bytes {
                    off: off as u32,
                    len: n as u32,
                })
            }
            tags::JID_PAIR | tags::AD_JID | tags::FB_JID | tags::INTEROP_JID => {
                Ok(RawContent::Jid(self.read_raw_jid(tag, offset)?))
            }
            _ => Ok(RawContent::Str(self.read_raw_str(tag, offset, "content")?)),
        }
    }

    #[inline(always)]
    fn read_raw_value(&mut self) -> R<RawValue> {
        let offset = self.offset();
        let tag = self.byte()?;
        match tag {
            tags::JID_PAIR | tags::AD_JID | tags::FB_JID | tags::INTEROP_JID => {
                Ok(RawValue::Jid(self.read_raw_jid(tag, offset)?))
            }
            _ => Ok(RawValue::Str(self.read_raw_str(
                tag,
                offset,
                "attribute value",
            )?)),
        }
    }

    /// A string that may not be a JID, for the arena.
    #[inline]
    fn read_raw_plain_str(&mut self) -> R<RawStr> {
        let offset = self.offset();
        let tag = self.byte()?;
        self.read_raw_str(tag, offset, "string")
    }

    /// [`Self::read_str`] for the arena: the same checks (UTF-8 included), but
    /// the result is a token code or a position in the input.
    #[inline(always)]
    fn read_raw_str(&mut self, tag: u8, offset: usize, expected: &'static str) -> R<RawStr> {
        match tag {
            // 0 is the empty string; every byte 1..=235 is a single-byte token.
            0..=235 => Ok(RawStr::Token(u16::from(tag))),
            tags::DICTIONARY_0..=tags::DICTIONARY_3 => {
                let index = self.byte()?;
                Ok(RawStr::Token(
                    DOUBLE_BYTE_CODE
                        + (u16::from(tag - tags::DICTIONARY_0) << 8)
                        + u16::from(index),
                ))
            }
            tags::BINARY_8 | tags::BINARY_20 | tags::BINARY_32 => {
                let n = self.binary_len(tag)?;
                let off = self.pos;
                let bytes = self.take(n)?;
                if !bytes.is_ascii() && std::str::from_utf8(bytes).is_err() {
                    return Err(Box::new(DecodeError::InvalidUtf8 {
                        offset: self.base + off,
                    }));
                }
                // The input fits u32 (checked in decode_node_ref).
                Ok(RawStr::Text {
                    off: off as u32,
                    len: n as u32,
                })
            }
            tags::NIBBLE_8 | tags::HEX_8 => {
                let (data, hex, chars) = self.read_packed_bytes(tag)?;
                let off = (self.pos - data.len()) as u32;
                // chars <= 2 * 127.
                let chars = chars as u8;
                Ok(if hex {
                    RawStr::Hex { off, chars }
                } else {
                    RawStr::Nibble { off, chars }
                })
            }
            tags::JID_PAIR | tags::AD_JID | tags::FB_JID | tags::INTEROP_JID => {
                Err(Box::new(DecodeError::UnexpectedJid { offset }))
            }
            _ => Err(Box::new(DecodeError::InvalidTag {
                offset,
                byte: tag,
                expected,
            })),
        }
    }

    /// [`Self::read_jid`] for the arena.
    fn read_raw_jid(&mut self, tag: u8, offset: usize) -> R<RawJid> {
        match tag {
            tags::JID_PAIR => {
                let user = self.read_raw_plain_str()?;
                let server = self.read_raw_plain_str()?;
                if server.is_empty() {
                    return Err(Box::new(DecodeError::MissingJidServer { offset }));
                }
                Ok(RawJid {
                    user,
                    server,
                    device: 0,
                    integrator: 0,
                    agent: 0,
                    has_device: false,
                })
            }
            tags::AD_JID => {
                let domain = self.byte()?;
                let device = self.byte()?;
                let user = self.read_raw_plain_str()?;
                let (server, agent) = ad_jid_domain(domain);
                Ok(RawJid {
                    user,
                    server: RawStr::server(server),
                    device: u16::from(device),
                    integrator: 0,
                    agent,
                    has_device: true,
                })
            }
            tags::FB_JID => {
                let user = self.read_raw_plain_str()?;
                let device = self.u16()?;
                let server = self.read_raw_plain_str()?;
                if !server.is(self.data, Server::Messenger.as_str()) {
                    return Err(Box::new(DecodeError::UnexpectedJidServer { offset }));
                }
                Ok(RawJid {
                    user,
                    server: RawStr::MSGR,
                    device,
                    integrator: 0,
                    agent: 0,
                    has_device: true,
                })
            }
            _ => {
                let user = self.read_raw_plain_str()?;
                let device = self.u16()?;
                let integrator = self.u16()?;
                // Optional trailing server string: see `read_jid`.
                let mark = self.pos;
                match self.read_raw_plain_str() {
                    Ok(server) if server.is(self.data, Server::Interop.as_str()) => {}
                    _ => self.pos = mark,
                }
                Ok(RawJid {
                    user,
                    server: RawStr::INTEROP,
                    device,
                    integrator,
                    agent: 0,
                    has_device: true,
                })
            }
        }
    }

    #[inline(always)]
    fn read_value(&mut self) -> R<ValueRef<'a>> {
        let offset = self.offset();
        let tag = self.byte()?;
        match tag {
            tags::JID_PAIR | tags::AD_JID | tags::FB_JID | tags::INTEROP_JID => {
                Ok(ValueRef::Jid(self.read_jid(tag, offset)?))
            }
            _ => Ok(ValueRef::String(self.read_str(
                tag,
                offset,
                "attribute value",
            )?)),
        }
    }

    /// A string that may not be a JID (node tag, attribute key, JID part).
    #[inline(always)]
    fn read_plain_str(&mut self) -> R<Str<'a>> {
        let offset = self.offset();
        let tag = self.byte()?;
        self.read_str(tag, offset, "string")
    }

    /// The string item starting with `tag` (already read at `offset`).
    /// `00` reads as the empty string (shared/protocol/02 §4.2).
    #[inline(always)]
    fn read_str(&mut self, tag: u8, offset: usize, expected: &'static str) -> R<Str<'a>> {
        match tag {
            tags::LIST_EMPTY => Ok(Str::token("")),
            1..=235 => match token::single_byte(tag) {
                Some(s) => Ok(Str::token(s)),
                None => Err(Box::new(DecodeError::InvalidTag {
                    offset,
                    byte: tag,
                    expected,
                })),
            },
            tags::DICTIONARY_0..=tags::DICTIONARY_3 => {
                let index = self.byte()?;
                match token::double_byte(tag - tags::DICTIONARY_0, index) {
                    Some(s) => Ok(Str::token(s)),
                    None => Err(Box::new(DecodeError::InvalidTag {
                        offset,
                        byte: tag,
                        expected,
                    })),
                }
            }
            tags::BINARY_8 | tags::BINARY_20 | tags::BINARY_32 => {
                let n = self.binary_len(tag)?;
                let data_offset = self.offset();
                let bytes = self.take(n)?;
                match std::str::from_utf8(bytes) {
                    Ok(s) => Ok(Str::text(s)),
                    Err(_) => Err(Box::new(DecodeError::InvalidUtf8 {
                        offset: data_offset,
                    })),
                }
            }
            tags::NIBBLE_8 | tags::HEX_8 => self.read_packed(tag),
            tags::JID_PAIR | tags::AD_JID | tags::FB_JID | tags::INTEROP_JID => {
                Err(Box::new(DecodeError::UnexpectedJid { offset }))
            }
            _ => Err(Box::new(DecodeError::InvalidTag {
                offset,
                byte: tag,
                expected,
            })),
        }
    }

    /// A NIBBLE_8 / HEX_8 body (tag already read): length byte, packed bytes.
    /// Validated here; unpacked only when read.
    fn read_packed(&mut self, tag: u8) -> R<Str<'a>> {
        let (data, hex, chars) = self.read_packed_bytes(tag)?;
        Ok(Str::packed(data, hex, chars))
    }

    /// The validated bytes of a NIBBLE_8 / HEX_8 body, whether it is hex, and
    /// its number of characters.
    #[inline]
    fn read_packed_bytes(&mut self, tag: u8) -> R<(&'a [u8], bool, usize)> {
        let len_offset = self.offset();
        let header = self.byte()?;
        let n = usize::from(header & 0x7F);
        let odd = header & 0x80 != 0;
        if odd && n == 0 {
            return Err(Box::new(DecodeError::InvalidPackedLength {
                offset: len_offset,
            }));
        }
        let data_offset = self.offset();
        let data = self.take(n)?;
        let hex = tag == tags::HEX_8;
        if !hex {
            // Values 12..=14 are not characters; 15 is only the dropped pad of
            // an odd-length string (shared/protocol/02 §4.3).
            for (i, &b) in data.iter().enumerate() {
                let (hi, lo) = (b >> 4, b & 0x0F);
                let pad = odd && i + 1 == n;
                if hi > 11 {
                    return Err(Box::new(DecodeError::InvalidNibble {
                        offset: data_offset + i,
                        value: hi,
                    }));
                }
                if lo > 11 && !pad {
                    return Err(Box::new(DecodeError::InvalidNibble {
                        offset: data_offset + i,
                        value: lo,
                    }));
                }
            }
        }
        Ok((data, hex, 2 * n - usize::from(odd)))
    }

    /// A JID item whose tag byte (`tag`, at `offset`) was just read (shared/protocol/02 §6).
    fn read_jid(&mut self, tag: u8, offset: usize) -> R<JidRef<'a>> {
        match tag {
            tags::JID_PAIR => {
                let user = self.read_plain_str()?;
                let server = self.read_plain_str()?;
                if server.is_empty() {
                    return Err(Box::new(DecodeError::MissingJidServer { offset }));
                }
                Ok(JidRef {
                    user,
                    server,
                    agent: 0,
                    device: None,
                    integrator: 0,
                })
            }
            tags::AD_JID => {
                let domain = self.byte()?;
                let device = self.byte()?;
                let user = self.read_plain_str()?;
                let (server, agent) = ad_jid_domain(domain);
                let server = AD_JID_SERVERS[usize::from(server)];
                Ok(JidRef {
                    user,
                    server: Str::token(server),
                    agent,
                    device: Some(u16::from(device)),
                    integrator: 0,
                })
            }
            tags::FB_JID => {
                let user = self.read_plain_str()?;
                let device = self.u16()?;
                let server = self.read_plain_str()?;
                if server != *Server::Messenger.as_str() {
                    return Err(Box::new(DecodeError::UnexpectedJidServer { offset }));
                }
                Ok(JidRef {
                    user,
                    server: Str::token("msgr"),
                    agent: 0,
                    device: Some(device),
                    integrator: 0,
                })
            }
            _ => {
                let user = self.read_plain_str()?;
                let device = self.u16()?;
                let integrator = self.u16()?;
                // whatsmeow writes and requires the trailing server string;
                // WhatsApp Web's encoder omits it (shared/protocol/02 §6.4).
                // Accept both: consume the next item only if it is "interop".
                let mark = self.pos;
                match self.read_plain_str() {
                    Ok(server) if server == *Server::Interop.as_str() => {}
                    _ => self.pos = mark,
                }
                Ok(JidRef {
                    user,
                    server: Str::token("interop"),
                    agent: 0,
                    device: Some(device),
                    integrator,
                })
            }
        }
    }
}

/// AD_JID server names by the index [`ad_jid_domain`] returns.
const AD_JID_SERVERS: [&str; 4] = ["s.whatsapp.net", "lid", "hosted", "hosted.lid"];

/// Domain byte of an AD_JID -> (index in [`AD_JID_SERVERS`], raw agent)
/// (whatsmeow types/jid.go `NewADJID`): unknown bytes are a raw agent on
/// s.whatsapp.net.
#[inline]
fn ad_jid_domain(domain: u8) -> (u16, u8) {
    match domain {
        0 => (0, 0),
        1 => (1, 0),
        128 => (2, 0),
        129 => (3, 0),
        agent => (0, agent),
    }
}
