//! Encoder: [`Node`] -> bytes (shared/protocol/02 §3–§7).
//!
//! Byte-compatible with Baileys' encoder for every node in
//! shared/vectors/binary/binary_nodes.jsonl (see tests/binary_vectors.rs),
//! except that JIDs are written by type ([`Value::Jid`]) rather than detected
//! in strings (whatsmeow/WhatsApp Web behaviour, shared/protocol/02 §4.1 step 5).

use crate::jid::{Jid, Server};

use super::error::EncodeError;
use super::node::{Content, Node, Value};
use super::tags;
use super::token::{self, Token};

/// Longest string the encoders pack as NIBBLE_8/HEX_8 (Baileys and whatsmeow
/// pack up to 127 characters; vectors `nibble_128_is_raw`, `hex_128_is_raw`).
pub(crate) const PACKED_MAX_CHARS: usize = 127;

/// Upper estimate of a node's encoded size, for reserving output space once:
/// every string is counted at its raw length plus the largest prefix.
fn estimate(node: &Node) -> usize {
    let jid = |j: &Jid| j.user().len() + 24;
    let mut size = 4 + node.tag.len() + 5;
    for (k, v) in node.attrs.as_slice() {
        size += k.len() + 5;
        size += match v {
            Value::String(s) => s.len() + 5,
            Value::Jid(j) => jid(j),
        };
    }
    size + match &node.content {
        Content::None => 0,
        Content::Nodes(children) => 3 + children.iter().map(estimate).sum::<usize>(),
        Content::Bytes(b) => b.len() + 5,
        Content::String(s) => s.len() + 5,
        Content::Jid(j) => jid(j),
    }
}

/// Encodes `node` as a frame: flags byte `0x00` followed by the node.
///
/// Clients always send uncompressed frames with flags 0 (whatsmeow
/// `newEncoder`, Baileys `encodeBinaryNode`; shared/protocol/02 §1).
///
/// Strings ([`Value::String`], [`Content::String`], tags, keys) are written
/// as a token, else NIBBLE_8/HEX_8 when 1..=127 characters of `0-9 - .` /
/// `0-9 A-F`, else raw (`""` is `FC 00`); bytes always raw (02 §4–§5).
/// JIDs ([`Value::Jid`], [`Content::Jid`]) are written by type (02 §6):
/// - `msgr` with a device: FB_JID; `interop` with a device: INTEROP_JID,
///   including its trailing server string (whatsmeow);
/// - `s.whatsapp.net`, `lid`, `hosted`, `hosted.lid` with a device part:
///   AD_JID, even for `:0` (Baileys, whose output the vectors are); a
///   hosted JID without device stays JID_PAIR (vector `jid_hosted_nodev`);
/// - otherwise JID_PAIR (`00` for an empty user).
///
/// A JID none of these carries exactly (a device on `g.us`, a device above
/// 255 on an AD server, an agent or integrator without device) is written as
/// its string form, raw, and so decodes as a [`Value::String`].
///
/// # Panics
/// If the node exceeds a wire limit (see [`EncodeError`]): more than 32767
/// attributes or 65535 children on one node, or a payload of 4 GiB. Use
/// [`try_encode_into`] for nodes built from untrusted sizes.
pub fn encode(node: &Node) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + estimate(node));
    encode_into(node, &mut out);
    out
}

/// Appends the frame for `node` (flags byte `0x00`, then the node) to `out`.
///
/// # Panics
/// As [`encode`].
pub fn encode_into(node: &Node, out: &mut Vec<u8>) {
    if let Err(e) = try_encode_into(node, out) {
        panic!("binary::encode: {e}");
    }
}

/// Encodes `node` without the flags byte.
///
/// # Panics
/// As [`encode`].
pub fn encode_node(node: &Node) -> Vec<u8> {
    let mut out = Vec::with_capacity(estimate(node));
    encode_node_into(node, &mut out);
    out
}

/// Appends `node` without the flags byte to `out`.
///
/// # Panics
/// As [`encode`].
pub fn encode_node_into(node: &Node, out: &mut Vec<u8>) {
    if let Err(e) = try_encode_node_into(node, out) {
        panic!("binary::encode: {e}");
    }
}

/// Appends the frame for `node` (flags byte `0x00`, then the node) to `out`.
///
/// # Errors
/// [`EncodeError`] when a size exceeds the wire format; `out` is then left as
/// it was.
pub fn try_encode_into(node: &Node, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    out.push(0);
    let result = write_node(out, node);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Appends `node` without the flags byte to `out`.
///
/// # Errors
/// As [`try_encode_into`].
pub fn try_encode_node_into(node: &Node, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    let result = write_node(out, node);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn write_node(out: &mut Vec<u8>, node: &Node) -> Result<(), EncodeError> {
    let attrs = node.attrs.as_slice();
    let size = 1 + 2 * attrs.len() + usize::from(!node.content.is_none());
    if size > usize::from(u16::MAX) {
        return Err(EncodeError::TooManyAttributes {
            tag: node.tag.to_string(),
            count: attrs.len(),
        });
    }
    write_list_header(out, size);
    write_str(out, &node.tag)?;
    for (key, value) in attrs {
        write_str(out, key)?;
        match value {
            Value::String(s) => write_str(out, s)?,
            Value::Jid(j) => write_jid(out, j)?,
        }
    }
    match &node.content {
        Content::None => {}
        Content::Nodes(children) => {
            if children.len() > usize::from(u16::MAX) {
                return Err(EncodeError::TooManyChildren {
                    tag: node.tag.to_string(),
                    count: children.len(),
                });
            }
            write_list_header(out, children.len());
            for child in children {
                write_node(out, child)?;
            }
        }
        Content::Bytes(b) => write_raw(out, b)?,
        Content::String(s) => write_str(out, s)?,
        Content::Jid(j) => write_jid(out, j)?,
    }
    Ok(())
}

/// LIST_EMPTY / LIST_8 / LIST_16 header; `size` must be < 65536.
#[inline]
fn write_list_header(out: &mut Vec<u8>, size: usize) {
    if size == 0 {
        out.push(tags::LIST_EMPTY);
    } else if size < 256 {
        out.extend_from_slice(&[tags::LIST_8, size as u8]);
    } else {
        let [hi, lo] = (size as u16).to_be_bytes();
        out.extend_from_slice(&[tags::LIST_16, hi, lo]);
    }
}

/// Which packed alphabet a string fits, if any (shared/protocol/02 §4.1 steps 3–4).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Packing {
    Nibble,
    Hex,
}

/// The packing the encoder picks for `s`: NIBBLE_8 if every char is in
/// `0-9 - .`, else HEX_8 if every char is in `0-9 A-F` (uppercase only), for
/// 1..=127 characters.
#[inline]
pub(crate) fn packing(s: &str) -> Option<Packing> {
    let bytes = s.as_bytes();
    if bytes.is_empty() || bytes.len() > PACKED_MAX_CHARS {
        return None;
    }
    let mut nibble = true;
    for &b in bytes {
        match b {
            b'0'..=b'9' => {}
            b'-' | b'.' => {
                if !nibble {
                    return None;
                }
            }
            b'A'..=b'F' => nibble = false,
            _ => return None,
        }
    }
    // A string with both '-'/'.' and A-F fails both alphabets.
    if !nibble && bytes.iter().any(|&b| b == b'-' || b == b'.') {
        return None;
    }
    Some(if nibble {
        Packing::Nibble
    } else {
        Packing::Hex
    })
}

#[inline]
fn nibble_value(b: u8) -> u8 {
    match b {
        b'-' => 10,
        b'.' => 11,
        b'A'..=b'F' => b - b'A' + 10,
        _ => b.wrapping_sub(b'0'),
    }
}

fn write_packed(out: &mut Vec<u8>, s: &[u8], packing: Packing) {
    out.push(match packing {
        Packing::Nibble => tags::NIBBLE_8,
        Packing::Hex => tags::HEX_8,
    });
    let odd = s.len() % 2 == 1;
    let len_byte = s.len().div_ceil(2) as u8 | if odd { 0x80 } else { 0 };
    out.push(len_byte);
    let mut pairs = s.chunks_exact(2);
    for pair in &mut pairs {
        out.push((nibble_value(pair[0]) << 4) | nibble_value(pair[1]));
    }
    if let [last] = pairs.remainder() {
        // Pad value 15 in the low nibble (shared/protocol/02 §4.3).
        out.push((nibble_value(*last) << 4) | 0x0F);
    }
}

/// Writes a string: token, packed, or raw (shared/protocol/02 §4.1). The empty
/// string is `FC 00` (§4.2; Baileys, WhatsApp Web, vector `empty_string_attr`).
#[inline]
fn write_str(out: &mut Vec<u8>, s: &str) -> Result<(), EncodeError> {
    if s.is_empty() {
        out.extend_from_slice(&[tags::BINARY_8, 0]);
        return Ok(());
    }
    match token::lookup(s) {
        Some(Token::Single(b)) => {
            out.push(b);
            return Ok(());
        }
        Some(Token::Double { dict, index }) => {
            out.extend_from_slice(&[token::DICTIONARY_0 + dict, index]);
            return Ok(());
        }
        None => {}
    }
    match packing(s) {
        Some(p) => {
            write_packed(out, s.as_bytes(), p);
            Ok(())
        }
        None => write_raw(out, s.as_bytes()),
    }
}

/// BINARY_8 / BINARY_20 / BINARY_32 length prefix and bytes (shared/protocol/02 §5).
#[inline]
fn write_raw(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), EncodeError> {
    let n = bytes.len();
    if n < 256 {
        out.reserve(2 + n);
        out.extend_from_slice(&[tags::BINARY_8, n as u8]);
    } else if n < 1 << 20 {
        out.reserve(4 + n);
        out.extend_from_slice(&[
            tags::BINARY_20,
            ((n >> 16) & 0x0F) as u8,
            (n >> 8) as u8,
            n as u8,
        ]);
    } else {
        let n32 = u32::try_from(n).map_err(|_| EncodeError::TooLong { len: n })?;
        out.reserve(5 + n);
        out.push(tags::BINARY_32);
        out.extend_from_slice(&n32.to_be_bytes());
    }
    out.extend_from_slice(bytes);
    Ok(())
}

/// The AD_JID domain/agent byte and device byte for `j`, if `j` can be written
/// as AD_JID so that it decodes back to itself.
fn ad_parts(j: &Jid) -> Option<(u8, u8)> {
    let device = u8::try_from(j.device_part()?).ok()?;
    if j.integrator() != 0 {
        return None;
    }
    let domain = match (j.server(), j.agent()) {
        // A raw agent travels in the domain byte (whatsmeow `NewADJID`), but only
        // values that do not mean another server.
        (Server::Pn, agent) if !matches!(agent, 1 | 128 | 129) => agent,
        (server, 0) => server.ad_domain()?,
        _ => return None,
    };
    Some((domain, device))
}

/// Writes a JID by the rules listed on [`encode`].
fn write_jid(out: &mut Vec<u8>, j: &Jid) -> Result<(), EncodeError> {
    match (j.server(), j.device_part()) {
        (Server::Messenger, Some(device)) if j.agent() == 0 && j.integrator() == 0 => {
            out.push(tags::FB_JID);
            write_str(out, j.user())?;
            out.extend_from_slice(&device.to_be_bytes());
            write_str(out, Server::Messenger.as_str())
        }
        (Server::Interop, Some(device)) if j.agent() == 0 => {
            out.push(tags::INTEROP_JID);
            write_str(out, j.user())?;
            out.extend_from_slice(&device.to_be_bytes());
            out.extend_from_slice(&j.integrator().to_be_bytes());
            write_str(out, Server::Interop.as_str())
        }
        _ => {
            if let Some((domain, device)) = ad_parts(j) {
                out.extend_from_slice(&[tags::AD_JID, domain, device]);
                write_str(out, j.user())
            } else if j.device_part().is_none() && j.agent() == 0 && j.integrator() == 0 {
                out.push(tags::JID_PAIR);
                if j.user().is_empty() {
                    out.push(tags::LIST_EMPTY);
                } else {
                    write_str(out, j.user())?;
                }
                write_str(out, j.server().as_str())
            } else {
                write_str(out, &j.to_string())
            }
        }
    }
}
