//! [`AttrReader`]: read many attributes, collect every problem, check once.
//!
//! Modelled on whatsmeow binary/attrs.go (`AttrUtility`): each getter returns a
//! usable default on failure and records the error, so stanza parsers read all
//! fields in one go and call [`AttrReader::finish`] at the end.

use std::str::FromStr;

use crate::jid::Jid;

use super::error::{AttrError, AttrErrors};
use super::node::{Node, Value};

/// Reads attributes of one node, collecting errors (see the module docs).
///
/// ```
/// use wa_engine::binary::Node;
/// use wa_engine::Jid;
///
/// let node = Node::new("receipt").attr("id", "ABC").attr("from", Jid::pn("123")).attr("t", "1700000000");
/// let mut r = node.attr_reader();
/// let id = r.string("id");
/// let from = r.jid("from");
/// let t = r.u64("t");
/// let kind = r.optional_string("type");
/// r.finish().expect("valid receipt");
/// assert_eq!((id, from.user(), t, kind), ("ABC", "123", 1_700_000_000, None));
/// ```
#[derive(Debug)]
pub struct AttrReader<'n> {
    node: &'n Node,
    errors: Vec<AttrError>,
}

impl<'n> AttrReader<'n> {
    /// A reader over `node`'s attributes.
    pub fn new(node: &'n Node) -> Self {
        Self {
            node,
            errors: Vec::new(),
        }
    }

    fn raw(&mut self, key: &str, required: bool) -> Option<&'n Value> {
        let value = self.node.attrs.get(key);
        if value.is_none() && required {
            self.errors.push(AttrError::Missing {
                key: key.to_owned(),
            });
        }
        value
    }

    fn text(&mut self, key: &str, required: bool) -> Option<&'n str> {
        match self.raw(key, required)? {
            Value::String(s) => Some(s),
            Value::Jid(_) => {
                self.errors.push(AttrError::WrongType {
                    key: key.to_owned(),
                    expected: "string",
                });
                None
            }
        }
    }

    fn jid_value(&mut self, key: &str, required: bool) -> Option<Jid> {
        match self.raw(key, required)? {
            Value::Jid(j) => Some(j.clone()),
            // whatsmeow `GetJID` rejects plain strings (shared/protocol/02 §8 rule 1).
            Value::String(_) => {
                self.errors.push(AttrError::WrongType {
                    key: key.to_owned(),
                    expected: "JID",
                });
                None
            }
        }
    }

    fn number<T: FromStr>(
        &mut self,
        key: &str,
        required: bool,
        expected: &'static str,
    ) -> Option<T> {
        let text = self.text(key, required)?;
        match text.parse() {
            Ok(n) => Some(n),
            Err(_) => {
                self.errors.push(AttrError::InvalidNumber {
                    key: key.to_owned(),
                    value: text.to_owned(),
                    expected,
                });
                None
            }
        }
    }

    fn boolean(&mut self, key: &str, required: bool) -> Option<bool> {
        let text = self.text(key, required)?;
        match text {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            other => {
                self.errors.push(AttrError::InvalidBool {
                    key: key.to_owned(),
                    value: other.to_owned(),
                });
                None
            }
        }
    }

    /// Required string attribute; `""` (and an error) if missing or a JID.
    pub fn string(&mut self, key: &str) -> &'n str {
        self.text(key, true).unwrap_or_default()
    }

    /// Optional string attribute; a JID value is an error.
    pub fn optional_string(&mut self, key: &str) -> Option<&'n str> {
        self.text(key, false)
    }

    /// Required JID attribute; [`Jid::default`] (and an error) if missing or a plain string.
    pub fn jid(&mut self, key: &str) -> Jid {
        self.jid_value(key, true).unwrap_or_default()
    }

    /// Optional JID attribute; a plain string is an error.
    pub fn optional_jid(&mut self, key: &str) -> Option<Jid> {
        self.jid_value(key, false)
    }

    /// Required decimal `u64` (e.g. `t`, a Unix time in seconds); 0 on error.
    pub fn u64(&mut self, key: &str) -> u64 {
        self.number(key, true, "u64").unwrap_or_default()
    }

    /// Optional decimal `u64`.
    pub fn optional_u64(&mut self, key: &str) -> Option<u64> {
        self.number(key, false, "u64")
    }

    /// Required decimal `i64`; 0 on error.
    pub fn i64(&mut self, key: &str) -> i64 {
        self.number(key, true, "i64").unwrap_or_default()
    }

    /// Optional decimal `i64`.
    pub fn optional_i64(&mut self, key: &str) -> Option<i64> {
        self.number(key, false, "i64")
    }

    /// Required decimal `u32` (e.g. `code`, `count`); 0 on error.
    pub fn u32(&mut self, key: &str) -> u32 {
        self.number(key, true, "u32").unwrap_or_default()
    }

    /// Optional decimal `u32`.
    pub fn optional_u32(&mut self, key: &str) -> Option<u32> {
        self.number(key, false, "u32")
    }

    /// Required boolean (`true`/`false`, also `1`/`0`); `false` on error.
    pub fn bool(&mut self, key: &str) -> bool {
        self.boolean(key, true).unwrap_or_default()
    }

    /// Optional boolean.
    pub fn optional_bool(&mut self, key: &str) -> Option<bool> {
        self.boolean(key, false)
    }

    /// Whether no error has been recorded so far.
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors recorded so far.
    pub fn errors(&self) -> &[AttrError] {
        &self.errors
    }

    /// Ends reading.
    ///
    /// # Errors
    /// [`AttrErrors`] with every problem recorded, in the order found.
    pub fn finish(self) -> Result<(), AttrErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(AttrErrors {
                tag: self.node.tag.to_string(),
                errors: self.errors,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_error_before_failing() {
        let node = Node::new("iq")
            .attr("id", "1")
            .attr("from", "not-a-jid")
            .attr("t", "soon")
            .attr("ok", "yes");
        let mut r = node.attr_reader();
        assert_eq!(r.string("id"), "1");
        assert_eq!(r.jid("from"), Jid::default());
        assert_eq!(r.u64("t"), 0);
        assert!(!r.bool("ok"));
        assert_eq!(r.string("type"), "");
        assert_eq!(r.optional_string("missing"), None);
        let err = r.finish().err().map(|e| e.errors.len());
        assert_eq!(err, Some(4));
    }

    #[test]
    fn reads_typed_values() {
        let node = Node::new("x")
            .attr("to", Jid::lid("5"))
            .attr("n", 42u32)
            .attr("b", true);
        let mut r = node.attr_reader();
        assert_eq!(r.jid("to"), Jid::lid("5"));
        assert_eq!(r.u32("n"), 42);
        assert!(r.bool("b"));
        assert!(r.ok());
        assert!(r.finish().is_ok());
    }
}
