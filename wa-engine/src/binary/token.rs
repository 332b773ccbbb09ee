//! Token dictionaries (DictVersion 3) and the string -> token lookup.
//!
//! The tables are generated at build time by `wa-engine/build.rs` from
//! `shared/protocol/tokens/*.txt` (identical in whatsmeow binary/token/token.go,
//! Baileys src/WABinary/constants.ts and whatsapp-rust tokens.json; see
//! shared/protocol/tokens/README.md). The lookup is a minimal perfect hash
//! computed by the build script, so encoding a token costs one hash, one table
//! read and one string comparison.

use super::token_hash;

include!(concat!(env!("OUT_DIR"), "/tokens.rs"));

/// The dictionary version these tables belong to, announced in the connection
/// header `WA 06 03` (shared/protocol/01 §2, 02 §9).
pub const DICT_VERSION: u8 = 3;

/// First tag byte of the double-byte dictionaries (`DICTIONARY_0` = 236);
/// `0xEC + d` selects dictionary `d` (shared/protocol/02 §2).
pub const DICTIONARY_0: u8 = 0xEC;

/// Number of single-byte token slots, including the unused index 0.
pub const SINGLE_BYTE_COUNT: usize = 236;

/// Entries per double-byte dictionary.
pub const DOUBLE_BYTE_COUNT: usize = 256;

/// Length in bytes of the longest token; longer strings skip the lookup.
const MAX_TOKEN_LEN: usize = 48;

/// How a string is written as a token (shared/protocol/02 §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Token {
    /// One byte, `1..=235`: `single_byte[b]`.
    Single(u8),
    /// Two bytes `0xEC + dict`, `index`: `double_byte_{dict}[index]`, dict in `0..=3`.
    Double {
        /// Dictionary number, `0..=3`.
        dict: u8,
        /// Index inside the dictionary.
        index: u8,
    },
}

/// The single-byte token for byte `b`, if `b` is in `1..=235`.
#[inline]
pub fn single_byte(b: u8) -> Option<&'static str> {
    if b == 0 {
        return None;
    }
    SINGLE_BYTE.get(usize::from(b)).copied()
}

/// The token at `index` of double-byte dictionary `dict` (`0..=3`).
#[inline]
pub fn double_byte(dict: u8, index: u8) -> Option<&'static str> {
    DOUBLE_BYTE
        .get(usize::from(dict))
        .map(|d| d[usize::from(index)])
}

/// The token for a code of the borrowed decoder's arena: `0..=235` the
/// single-byte list (0 is the empty string), `256 + 256 * dict + index` the
/// double-byte dictionaries; `""` for any other code.
#[inline]
pub(crate) fn by_code(code: u16) -> &'static str {
    let code = usize::from(code);
    if code < 256 {
        SINGLE_BYTE.get(code).copied().unwrap_or("")
    } else {
        DOUBLE_BYTE
            .get((code - 256) >> 8)
            .map_or("", |d| d[code & 0xFF])
    }
}

/// Finds the token for `s`, if `s` is exactly (case-sensitively) one.
///
/// The empty string is never a token (index 0 of the single-byte list is a
/// placeholder; shared/protocol/02 §4.2).
#[inline]
pub fn lookup(s: &str) -> Option<Token> {
    if s.is_empty() || s.len() > MAX_TOKEN_LEN {
        return None;
    }
    let h = token_hash::hash(HASH_SEED, s.as_bytes());
    let (g, f1, f2) = token_hash::split(h);
    let (d1, d2) = DISPLACEMENTS[g as usize];
    let slot = token_hash::slot(f1, f2, u32::from(d1), u32::from(d2)) as usize;
    // The fingerprint (8 KiB table) rejects almost every non-token without touching the
    // 32 KiB string table; a match is still confirmed by comparing the strings.
    let meta = SLOT_META[slot];
    if (meta >> 16) as u16 != token_hash::fingerprint(h) || SLOT_STRS[slot] != s {
        return None;
    }
    let [prefix, index] = (meta as u16).to_be_bytes();
    Some(if prefix == 0 {
        Token::Single(index)
    } else {
        Token::Double {
            dict: prefix - DICTIONARY_0,
            index,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_looks_up_to_its_own_index() {
        for b in 1..=235u8 {
            let s = single_byte(b).unwrap_or_default();
            assert_eq!(lookup(s), Some(Token::Single(b)), "{s}");
        }
        for dict in 0..4u8 {
            for index in 0..=255u8 {
                let s = double_byte(dict, index).unwrap_or_default();
                assert_eq!(lookup(s), Some(Token::Double { dict, index }), "{s}");
            }
        }
    }

    #[test]
    fn frequent_tokens_match_the_protocol_notes() {
        // shared/protocol/02 §9.
        assert_eq!(lookup("s.whatsapp.net"), Some(Token::Single(3)));
        assert_eq!(lookup("iq"), Some(Token::Single(25)));
        assert_eq!(lookup("xmlstreamend"), Some(Token::Single(2)));
        assert_eq!(
            lookup("pair-device"),
            Some(Token::Double {
                dict: 1,
                index: 238
            })
        );
        assert_eq!(
            lookup("failure"),
            Some(Token::Double { dict: 2, index: 60 })
        );
    }

    #[test]
    fn non_tokens_are_not_found() {
        for s in [
            "",
            "md",
            "ib",
            "pair-success",
            "newsletter",
            "interop",
            "hosted",
            "IQ",
            "iq ",
        ] {
            assert_eq!(lookup(s), None, "{s}");
        }
        assert_eq!(single_byte(0), None);
        assert_eq!(single_byte(236), None);
        assert_eq!(double_byte(4, 0), None);
    }
}
