//! The privacy-token stanzas: the `privacy_token` notification we receive and the issuance
//! IQ we send (shared/protocol/07 §2.2, §2.5; whatsmeow `notification.go`
//! handlePrivacyTokenNotification, `tctoken.go`; whatsapp-rust `wacore/src/iq/tctoken.rs`).

use crate::Jid;
use crate::binary::{Content, Node};
use crate::stanza::iq::{self, IqType};

use super::TcToken;

/// A `privacy_token` notification that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrivacyTokenError {
    /// Not `<notification type="privacy_token">`.
    #[error("not a privacy_token notification")]
    NotPrivacyToken,
    /// No (JID) `from` attribute.
    #[error("privacy_token notification without from")]
    MissingFrom,
}

/// One token the issuer gave us.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceivedToken {
    /// The token bytes.
    pub token: Vec<u8>,
    /// Unix seconds (`t`).
    pub timestamp: u64,
}

impl std::fmt::Debug for ReceivedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceivedToken")
            .field("token_len", &self.token.len())
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

/// A parsed `privacy_token` notification: the issuer (the peer who may now be messaged with
/// this token) and its trusted-contact tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivacyTokenNotification {
    /// `from`: the issuer, PN or LID.
    pub from: Jid,
    /// `sender_lid`: the issuer's LID, when the server names it.
    pub sender_lid: Option<Jid>,
    /// The usable tokens: `type="trusted_contact"`, with bytes and a `t` (others are dropped,
    /// as in all three references; the `jid` attribute is our own JID and is ignored).
    pub tokens: Vec<ReceivedToken>,
}

impl PrivacyTokenNotification {
    /// Where to store the tokens (07 §2.2, identical in whatsmeow, Baileys and
    /// whatsapp-rust): `sender_lid` if present; else `from` if it is a LID; else the LID
    /// `lid_of` maps `from` to; else `from` (PN fallback). Always device-less.
    pub fn storage_key(&self, lid_of: impl FnOnce(&Jid) -> Option<Jid>) -> Jid {
        if let Some(lid) = &self.sender_lid {
            return lid.to_non_ad();
        }
        let from = self.from.to_non_ad();
        if from.is_lid() {
            return from;
        }
        lid_of(&from).map_or(from, |lid| lid.to_non_ad())
    }

    /// The newest usable token, if any.
    #[must_use]
    pub fn newest(&self) -> Option<&ReceivedToken> {
        self.tokens.iter().max_by_key(|t| t.timestamp)
    }
}

/// Parses `<notification type="privacy_token" from [sender_lid]><tokens><token …>`. The
/// caller acks it like any notification.
///
/// # Errors
/// [`PrivacyTokenError::NotPrivacyToken`], [`PrivacyTokenError::MissingFrom`].
pub fn parse_notification(node: &Node) -> Result<PrivacyTokenNotification, PrivacyTokenError> {
    if node.tag != "notification" || node.get_attr_str("type") != Some("privacy_token") {
        return Err(PrivacyTokenError::NotPrivacyToken);
    }
    let from = node
        .get_attr("from")
        .and_then(|v| v.as_jid().cloned().or_else(|| v.as_str()?.parse().ok()))
        .ok_or(PrivacyTokenError::MissingFrom)?;
    let sender_lid = node
        .get_attr("sender_lid")
        .and_then(|v| v.as_jid().cloned().or_else(|| v.as_str()?.parse().ok()))
        .filter(Jid::is_lid);
    let tokens = node
        .child_by_tag("tokens")
        .map(|t| {
            t.children_by_tag("token")
                .filter(|t| t.get_attr_str("type") == Some("trusted_contact"))
                .filter_map(|t| {
                    let timestamp = t.get_attr_str("t")?.parse::<u64>().ok()?;
                    let Content::Bytes(token) = &t.content else {
                        return None;
                    };
                    (!token.is_empty()).then(|| ReceivedToken {
                        token: token.clone(),
                        timestamp,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(PrivacyTokenNotification {
        from,
        sender_lid,
        tokens,
    })
}

/// Newer wins (07 §2.2, whatsmeow's rule): store `incoming` unless the stored token is real
/// (non-empty) and has a later timestamp. A byte-less placeholder is always replaced.
#[must_use]
pub fn should_store(stored: Option<&TcToken>, incoming: &ReceivedToken) -> bool {
    match stored {
        None => true,
        Some(s) if s.token.is_empty() => true,
        Some(s) => s.timestamp.is_none_or(|t| incoming.timestamp >= t),
    }
}

/// Issues our trusted-contact token to each `(peer, t)` (07 §2.5):
/// `<iq xmlns="privacy" type="set" to="s.whatsapp.net"><tokens><token jid t
/// type="trusted_contact"/>…</tokens></iq>`. `peer` is made device-less; `t` is unix seconds
/// (now after a send; the stored sender timestamp on an identity change). The result carries
/// no token; on success record `sender_timestamp = t`.
#[must_use]
pub fn issue_request(id: &str, peers: &[(Jid, u64)]) -> Node {
    let tokens = peers
        .iter()
        .map(|(jid, t)| {
            Node::new("token")
                .attr("jid", jid.to_non_ad())
                .attr("t", *t)
                .attr("type", "trusted_contact")
        })
        .collect::<Vec<_>>();
    iq::request(
        id,
        "privacy",
        IqType::Set,
        vec![Node::new("tokens").with_children(tokens)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(from: Jid, sender_lid: Option<Jid>, tokens: Vec<Node>) -> Node {
        Node::new("notification")
            .attr("from", from)
            .attr("type", "privacy_token")
            .attr("id", "1")
            .attr("t", "1707000000")
            .attr_opt("sender_lid", sender_lid)
            .with_children([Node::new("tokens").with_children(tokens)])
    }

    fn token(kind: &'static str, t: Option<&'static str>, bytes: &[u8]) -> Node {
        Node::new("token")
            .attr("jid", Jid::pn("15550001111"))
            .attr_opt("t", t)
            .attr("type", kind)
            .with_bytes(bytes.to_vec())
    }

    #[test]
    fn notification_is_keyed_by_sender_lid_then_lid_then_mapping() {
        let lid = Jid::lid("123456789012345");
        let pn = Jid::pn("15557654321");
        let with_sender_lid = parse_notification(&notification(
            pn.clone().with_device(2),
            Some(lid.clone()),
            vec![token("trusted_contact", Some("1707000000"), b"tok")],
        ))
        .expect("parses");
        assert_eq!(with_sender_lid.storage_key(|_| None), lid);
        assert_eq!(with_sender_lid.tokens.len(), 1);
        assert_eq!(
            with_sender_lid.newest().map(|t| t.timestamp),
            Some(1_707_000_000)
        );

        let from_lid =
            parse_notification(&notification(lid.clone(), None, vec![])).expect("parses");
        assert_eq!(from_lid.storage_key(|_| None), lid);

        let from_pn = parse_notification(&notification(pn.clone(), None, vec![])).expect("parses");
        assert_eq!(from_pn.storage_key(|_| Some(lid.clone())), lid);
        assert_eq!(from_pn.storage_key(|_| None), pn);
    }

    #[test]
    fn unusable_tokens_are_dropped_and_older_ones_not_stored() {
        let n = parse_notification(&notification(
            Jid::lid("1"),
            None,
            vec![
                token("other", Some("5"), b"x"),
                token("trusted_contact", None, b"x"),
                token("trusted_contact", Some("5"), b""),
                token("trusted_contact", Some("9"), b"good"),
            ],
        ))
        .expect("parses");
        assert_eq!(n.tokens.len(), 1);
        let incoming = &n.tokens[0];
        let newer = TcToken {
            token: b"old".to_vec(),
            timestamp: Some(10),
            sender_timestamp: None,
        };
        assert!(!should_store(Some(&newer), incoming));
        let older = TcToken {
            token: b"old".to_vec(),
            timestamp: Some(9),
            sender_timestamp: None,
        };
        assert!(should_store(Some(&older), incoming));
        let placeholder = TcToken {
            token: Vec::new(),
            timestamp: Some(99),
            sender_timestamp: Some(99),
        };
        assert!(should_store(Some(&placeholder), incoming));
        assert!(should_store(None, incoming));
        assert_eq!(
            parse_notification(&Node::new("notification").attr("type", "devices")),
            Err(PrivacyTokenError::NotPrivacyToken)
        );
    }

    #[test]
    fn issue_request_has_the_wire_shape() {
        let iq = issue_request("abc", &[(Jid::lid("123").with_device(4), 1_707_000_000)]);
        assert_eq!(iq.get_attr_str("xmlns"), Some("privacy"));
        assert_eq!(iq.get_attr_str("type"), Some("set"));
        let token = iq.child_path(&["tokens", "token"]).expect("token");
        assert_eq!(token.get_attr_jid("jid"), Some(&Jid::lid("123")));
        assert_eq!(token.get_attr_str("t"), Some("1707000000"));
        assert_eq!(token.get_attr_str("type"), Some("trusted_contact"));
        assert!(token.content.is_none());
    }
}
