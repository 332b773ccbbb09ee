//! Decoder: bytes -> [`Node`] (shared/protocol/02 §1–§6).
//!
//! Never panics and never allocates more than the input justifies: lengths are
//! checked against the remaining input before anything is reserved, list
//! capacities are capped by the bytes left, nesting is capped at [`MAX_DEPTH`]
//! and inflated frames at [`MAX_INFLATED_LEN`].

use std::borrow::Cow;

use flate2::{Decompress, FlushDecompress, Status};

use crate::jid::{Jid, Server};

use super::encode::PACKED_MAX_CHARS;
use super::error::DecodeError;
use super::node::{Attrs, Content, Node, Value};
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
    let node = r.read_node()?;
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

/// Text read from the input: a token (static), a borrowed raw string, or an
/// unpacked string.
enum Text<'a> {
    Static(&'static str),
    Borrowed(&'a str),
    Owned(String),
}

impl Text<'_> {
    fn as_str(&self) -> &str {
        match self {
            Self::Static(s) => s,
            Self::Borrowed(s) => s,
            Self::Owned(s) => s,
        }
    }

    /// An owned string that borrows only `'static` tokens.
    fn into_cow(self) -> Cow<'static, str> {
        match self {
            Self::Static(s) => Cow::Borrowed(s),
            Self::Borrowed(s) => Cow::Owned(s.to_owned()),
            Self::Owned(s) => Cow::Owned(s),
        }
    }

    fn into_string(self) -> String {
        match self {
            Self::Static(s) => s.to_owned(),
            Self::Borrowed(s) => s.to_owned(),
            Self::Owned(s) => s,
        }
    }
}

/// Characters of NIBBLE_8 values 0..=11 (shared/protocol/02 §4.3); 12..=15 are not characters.
const NIBBLE_CHARS: &[u8; 12] = b"0123456789-.";
/// Characters of HEX_8 values (uppercase).
const HEX_CHARS: &[u8; 16] = b"0123456789ABCDEF";

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
    fn eof(&self, needed: usize) -> DecodeError {
        DecodeError::UnexpectedEof {
            offset: self.offset(),
            needed,
            available: self.remaining(),
        }
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, DecodeError> {
        match self.data.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.eof(1)),
        }
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.eof(n));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    #[inline]
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Length of a BINARY_8/20/32 item whose tag byte was just read.
    #[inline]
    fn binary_len(&mut self, tag: u8) -> Result<usize, DecodeError> {
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

    fn read_node(&mut self) -> Result<Node, DecodeError> {
        let start = self.offset();
        if self.depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep {
                offset: start,
                limit: MAX_DEPTH,
            });
        }
        let size = match self.byte()? {
            tags::LIST_8 => usize::from(self.byte()?),
            tags::LIST_16 => usize::from(self.u16()?),
            tags::LIST_EMPTY => return Err(DecodeError::EmptyNode { offset: start }),
            byte => {
                return Err(DecodeError::ExpectedNode {
                    offset: start,
                    byte,
                });
            }
        };
        if size == 0 {
            return Err(DecodeError::EmptyNode { offset: start });
        }
        let tag_offset = self.offset();
        let tag = self.read_plain_text()?;
        if tag.as_str().is_empty() {
            return Err(DecodeError::EmptyTag { offset: tag_offset });
        }
        let tag = tag.into_cow();

        let attr_count = (size - 1) >> 1;
        // Each pair needs at least two bytes.
        let mut attrs = Attrs::with_capacity(attr_count.min(self.remaining() / 2));
        for _ in 0..attr_count {
            let key = self.read_plain_text()?.into_cow();
            let value = self.read_value()?;
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

    fn read_value(&mut self) -> Result<Value, DecodeError> {
        let offset = self.offset();
        let tag = self.byte()?;
        match tag {
            tags::JID_PAIR | tags::AD_JID | tags::FB_JID | tags::INTEROP_JID => {
                Ok(Value::Jid(self.read_jid(tag, offset)?))
            }
            _ => Ok(Value::String(
                self.read_text(tag, offset, "attribute value")?.into_cow(),
            )),
        }
    }

    fn read_content(&mut self) -> Result<Content, DecodeError> {
        let offset = self.offset();
        let tag = self.byte()?;
        match tag {
            tags::LIST_EMPTY => Ok(Content::Nodes(Vec::new())),
            tags::LIST_8 | tags::LIST_16 => {
                let size = if tag == tags::LIST_8 {
                    usize::from(self.byte()?)
                } else {
                    usize::from(self.u16()?)
                };
                // A child node takes at least three bytes (F8 01 <token>).
                let mut children = Vec::with_capacity(size.min(self.remaining() / 3));
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
                Ok(Content::Jid(self.read_jid(tag, offset)?))
            }
            tags::NIBBLE_8 | tags::HEX_8 => {
                let s = self.read_packed(tag)?;
                // Packed strings our encoder would write raw (empty, or longer
                // than 127 characters: only other encoders produce them) come
                // back as bytes, so that decode(encode(decode(x))) == decode(x).
                if s.is_empty() || s.len() > PACKED_MAX_CHARS {
                    Ok(Content::Bytes(s.into_bytes()))
                } else {
                    Ok(Content::String(Cow::Owned(s)))
                }
            }
            _ => Ok(Content::String(
                self.read_text(tag, offset, "content")?.into_cow(),
            )),
        }
    }

    /// A string that may not be a JID (node tag, attribute key, JID part).
    #[inline]
    fn read_plain_text(&mut self) -> Result<Text<'a>, DecodeError> {
        let offset = self.offset();
        let tag = self.byte()?;
        self.read_text(tag, offset, "string")
    }

    /// The text item starting with `tag` (already read at `offset`).
    /// `00` reads as the empty string (shared/protocol/02 §4.2).
    #[inline]
    fn read_text(
        &mut self,
        tag: u8,
        offset: usize,
        expected: &'static str,
    ) -> Result<Text<'a>, DecodeError> {
        match tag {
            tags::LIST_EMPTY => Ok(Text::Static("")),
            1..=235 => match token::single_byte(tag) {
                Some(s) => Ok(Text::Static(s)),
                None => Err(DecodeError::InvalidTag {
                    offset,
                    byte: tag,
                    expected,
                }),
            },
            tags::DICTIONARY_0..=tags::DICTIONARY_3 => {
                let index = self.byte()?;
                match token::double_byte(tag - tags::DICTIONARY_0, index) {
                    Some(s) => Ok(Text::Static(s)),
                    None => Err(DecodeError::InvalidTag {
                        offset,
                        byte: tag,
                        expected,
                    }),
                }
            }
            tags::BINARY_8 | tags::BINARY_20 | tags::BINARY_32 => {
                let n = self.binary_len(tag)?;
                let data_offset = self.offset();
                let bytes = self.take(n)?;
                match std::str::from_utf8(bytes) {
                    Ok(s) => Ok(Text::Borrowed(s)),
                    Err(_) => Err(DecodeError::InvalidUtf8 {
                        offset: data_offset,
                    }),
                }
            }
            tags::NIBBLE_8 | tags::HEX_8 => Ok(Text::Owned(self.read_packed(tag)?)),
            tags::JID_PAIR | tags::AD_JID | tags::FB_JID | tags::INTEROP_JID => {
                Err(DecodeError::UnexpectedJid { offset })
            }
            _ => Err(DecodeError::InvalidTag {
                offset,
                byte: tag,
                expected,
            }),
        }
    }

    /// A NIBBLE_8 / HEX_8 body (tag already read): length byte, packed bytes.
    fn read_packed(&mut self, tag: u8) -> Result<String, DecodeError> {
        let len_offset = self.offset();
        let header = self.byte()?;
        let n = usize::from(header & 0x7F);
        let odd = header & 0x80 != 0;
        if odd && n == 0 {
            return Err(DecodeError::InvalidPackedLength { offset: len_offset });
        }
        let data_offset = self.offset();
        let data = self.take(n)?;
        let mut s = String::with_capacity(2 * n);
        let hex = tag == tags::HEX_8;
        for (i, &b) in data.iter().enumerate() {
            let last = i + 1 == n;
            for (k, value) in [b >> 4, b & 0x0F].into_iter().enumerate() {
                if odd && last && k == 1 {
                    break; // the pad nibble, dropped (shared/protocol/02 §4.3)
                }
                let c = if hex {
                    HEX_CHARS[usize::from(value)]
                } else {
                    match NIBBLE_CHARS.get(usize::from(value)) {
                        Some(&c) => c,
                        None => {
                            return Err(DecodeError::InvalidNibble {
                                offset: data_offset + i,
                                value,
                            });
                        }
                    }
                };
                s.push(char::from(c));
            }
        }
        Ok(s)
    }

    /// A JID item whose tag byte (`tag`, at `offset`) was just read (shared/protocol/02 §6).
    fn read_jid(&mut self, tag: u8, offset: usize) -> Result<Jid, DecodeError> {
        match tag {
            tags::JID_PAIR => {
                let user = self.read_plain_text()?;
                let server = self.read_plain_text()?;
                if server.as_str().is_empty() {
                    return Err(DecodeError::MissingJidServer { offset });
                }
                Ok(Jid::new(
                    user.into_string(),
                    Server::from_name(server.as_str()),
                ))
            }
            tags::AD_JID => {
                let domain = self.byte()?;
                let device = self.byte()?;
                let user = self.read_plain_text()?.into_string();
                // Domain byte -> server (whatsmeow types/jid.go `NewADJID`):
                // unknown bytes are a raw agent on s.whatsapp.net.
                let (server, agent) = match domain {
                    0 => (Server::Pn, 0),
                    1 => (Server::Lid, 0),
                    128 => (Server::Hosted, 0),
                    129 => (Server::HostedLid, 0),
                    agent => (Server::Pn, agent),
                };
                Ok(Jid::new(user, server)
                    .with_agent(agent)
                    .with_device(u16::from(device)))
            }
            tags::FB_JID => {
                let user = self.read_plain_text()?.into_string();
                let device = self.u16()?;
                let server = self.read_plain_text()?;
                if server.as_str() != Server::Messenger.as_str() {
                    return Err(DecodeError::UnexpectedJidServer { offset });
                }
                Ok(Jid::new(user, Server::Messenger).with_device(device))
            }
            _ => {
                let user = self.read_plain_text()?.into_string();
                let device = self.u16()?;
                let integrator = self.u16()?;
                // whatsmeow writes and requires the trailing server string;
                // WhatsApp Web's encoder omits it (shared/protocol/02 §6.4).
                // Accept both: consume the next item only if it is "interop".
                let mark = self.pos;
                match self.read_plain_text() {
                    Ok(server) if server.as_str() == Server::Interop.as_str() => {}
                    _ => self.pos = mark,
                }
                Ok(Jid::new(user, Server::Interop)
                    .with_device(device)
                    .with_integrator(integrator))
            }
        }
    }
}
