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
/// The two-pass reference for [`try_write_packed`], kept for its test.
#[cfg(test)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Packing {
    Nibble,
    Hex,
}

/// The packing the encoder picks for `s`: NIBBLE_8 if every char is in
/// `0-9 - .`, else HEX_8 if every char is in `0-9 A-F` (uppercase only), for
/// 1..=127 characters.
#[cfg(test)]
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

#[cfg(test)]
fn nibble_value(b: u8) -> u8 {
    match b {
        b'-' => 10,
        b'.' => 11,
        b'A'..=b'F' => b - b'A' + 10,
        _ => b.wrapping_sub(b'0'),
    }
}

#[cfg(test)]
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
    if try_write_packed(out, s.as_bytes()) {
        return Ok(());
    }
    write_raw(out, s.as_bytes())
}

/// Character classes for [`try_write_packed`]: the nibble value in the low four bits, plus
/// [`HEX_ONLY`] (`A-F`), [`NIBBLE_ONLY`] (`-`, `.`) or [`UNPACKABLE`].
const PACK_CLASS: [u8; 256] = {
    let mut t = [UNPACKABLE; 256];
    let mut d = 0;
    while d < 10 {
        t[b'0' as usize + d] = d as u8;
        d += 1;
    }
    t[b'-' as usize] = 10 | NIBBLE_ONLY;
    t[b'.' as usize] = 11 | NIBBLE_ONLY;
    let mut x = 0;
    while x < 6 {
        t[b'A' as usize + x] = (10 + x as u8) | HEX_ONLY;
        x += 1;
    }
    t
};
/// [`PACK_CLASS`] flag: only in the HEX_8 alphabet.
const HEX_ONLY: u8 = 0x10;
/// [`PACK_CLASS`] flag: only in the NIBBLE_8 alphabet.
const NIBBLE_ONLY: u8 = 0x20;
/// [`PACK_CLASS`] flag: in neither alphabet.
const UNPACKABLE: u8 = 0x40;

/// Writes `s` as NIBBLE_8 or HEX_8 in one pass, as [`packing`] decides (the same rules:
/// 1..=127 characters, NIBBLE_8 when every character is in `0-9 - .`, else HEX_8 when every
/// one is in `0-9 A-F`). Returns false, leaving `out` as it was, when `s` fits neither.
#[inline]
fn try_write_packed(out: &mut Vec<u8>, s: &[u8]) -> bool {
    let n = s.len();
    if n == 0 || n > PACKED_MAX_CHARS {
        return false;
    }
    let start = out.len();
    let odd = n % 2 == 1;
    out.reserve(2 + n.div_ceil(2));
    // Placeholder tag, fixed once the alphabet is known.
    out.push(tags::NIBBLE_8);
    out.push(n.div_ceil(2) as u8 | if odd { 0x80 } else { 0 });
    let mut flags = 0u8;
    let mut pairs = s.chunks_exact(2);
    for pair in &mut pairs {
        let (hi, lo) = (
            PACK_CLASS[usize::from(pair[0])],
            PACK_CLASS[usize::from(pair[1])],
        );
        flags |= hi | lo;
        out.push((hi << 4) | (lo & 0x0F));
    }
    if let [last] = pairs.remainder() {
        let hi = PACK_CLASS[usize::from(*last)];
        flags |= hi;
        // Pad value 15 in the low nibble (shared/protocol/02 §4.3).
        out.push((hi << 4) | 0x0F);
    }
    if flags & UNPACKABLE != 0 || flags & (HEX_ONLY | NIBBLE_ONLY) == HEX_ONLY | NIBBLE_ONLY {
        out.truncate(start);
        return false;
    }
    if flags & HEX_ONLY != 0 {
        out[start] = tags::HEX_8;
    }
    true
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass packer writes exactly what the two-pass reference writes, and refuses
    /// exactly what it refuses, over every string of up to 3 characters from an alphabet
    /// around the packed ones, plus long and mixed strings.
    #[test]
    fn one_pass_packing_matches_the_reference() {
        let alphabet: Vec<u8> = b"0159-.AFafGZ/:@ ".to_vec();
        let mut strings: Vec<Vec<u8>> = vec![Vec::new()];
        let mut level = vec![Vec::new()];
        for _ in 0..3 {
            let mut next = Vec::new();
            for s in &level {
                for &c in &alphabet {
                    let mut t: Vec<u8> = s.clone();
                    t.push(c);
                    next.push(t);
                }
            }
            strings.extend(next.iter().cloned());
            level = next;
        }
        for n in [126, 127, 128, 200] {
            strings.push(vec![b'7'; n]);
            strings.push(vec![b'C'; n]);
        }
        strings.push(b"3EB0C5A1F2D3E4B5A6C7".to_vec());
        strings.push(b"15551234567.0:12".to_vec());
        strings.push(b"1A-2".to_vec());
        for s in strings {
            let text = std::str::from_utf8(&s).expect("ascii");
            let mut want = vec![0xAA];
            if let Some(p) = packing(text) {
                write_packed(&mut want, &s, p);
            }
            let mut got = vec![0xAA];
            let packed = try_write_packed(&mut got, &s);
            assert_eq!(packed, packing(text).is_some(), "{text:?}");
            assert_eq!(got, want, "{text:?}");
        }
    }
}
