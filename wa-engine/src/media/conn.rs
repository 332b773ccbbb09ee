//! The `media_conn` IQ, sans-IO: the request, the parsed reply ([`MediaConn`]: hosts, auth
//! token, lifetimes) and its expiry (shared/protocol/06 §2.3).
//!
//! ```text
//! -> <iq id xmlns="w:m" type="set" to="s.whatsapp.net"><media_conn/></iq>
//! <- <iq id type="result" from="s.whatsapp.net">
//!      <media_conn auth="…" ttl="300" auth_ttl="21600" max_buckets="12">
//!        <host hostname="mmg.whatsapp.net" [type="primary|fallback"] …/> …
//!      </media_conn>
//!    </iq>
//! ```
//!
//! Sources: whatsmeow `mediaconn.go` (which attributes are required), Baileys
//! `src/Socket/messages-send.ts` refreshMediaConn, whatsapp-rust `wacore/src/iq/mediaconn.rs`
//! (primary hosts before fallback ones).

use std::fmt;
use std::time::{Duration, Instant};

use crate::binary::Node;
use crate::stanza::iq;

/// Why a `media_conn` reply could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaConnError {
    /// The server answered with `type="error"`.
    #[error("media_conn rejected with code {code}")]
    Rejected {
        /// The `<error code>` (0 if absent).
        code: u16,
    },
    /// The reply has no `<media_conn>` child.
    #[error("media_conn reply without a <media_conn> child")]
    MissingMediaConn,
    /// A required attribute is absent (whatsmeow requires `auth`, `ttl`, `auth_ttl`,
    /// `max_buckets` and each host's `hostname`).
    #[error("media_conn reply lacks the {0} attribute")]
    MissingAttribute(&'static str),
    /// An attribute is not a number where one is required.
    #[error("media_conn attribute {0} is not a valid number")]
    BadAttribute(&'static str),
    /// The reply lists no `<host>`.
    #[error("media_conn reply lists no host")]
    NoHosts,
}

/// The role a media host announces (`<host type>`; absent means primary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HostKind {
    /// `type="primary"` or no type.
    Primary,
    /// `type="fallback"`.
    Fallback,
}

/// One media host of a [`MediaConn`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaHost {
    /// `hostname`, possibly with a port (`mmg.whatsapp.net`, or `127.0.0.1:4321` from the
    /// sandbox).
    pub hostname: String,
    /// `type`.
    pub kind: HostKind,
    /// `maxContentLengthBytes`, the largest upload the host takes, bytes, when announced.
    pub max_content_length: Option<u64>,
}

/// The parsed `media_conn` reply: where to upload and download, with what auth token, for how
/// long.
///
/// The auth token is a credential: `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct MediaConn {
    auth: String,
    /// How long the reply may be cached (`ttl`), seconds precision.
    pub ttl: Duration,
    /// How long the auth token stays valid (`auth_ttl`), seconds precision.
    pub auth_ttl: Duration,
    /// `max_buckets` (unused by the engine; whatsmeow keeps it).
    pub max_buckets: u32,
    /// The hosts, primary ones first, each group in the server's order.
    pub hosts: Vec<MediaHost>,
    /// When the reply arrived (the `now` given to [`Self::parse`]).
    pub fetched_at: Instant,
}

impl MediaConn {
    /// The request: `<iq xmlns="w:m" type="set" to="s.whatsapp.net"><media_conn/></iq>`
    /// without an `id` (the connection adds one).
    #[must_use]
    pub fn request() -> Node {
        Node::new("iq")
            .attr("xmlns", "w:m")
            .attr("type", "set")
            .attr("to", iq::server_jid())
            .with_children([Node::new("media_conn")])
    }

    /// Parses a reply that arrived at `now`. Primary hosts come first (whatsapp-rust), then
    /// fallback ones, each group in document order.
    ///
    /// # Errors
    /// [`MediaConnError::Rejected`] for an error reply; the other variants for a result
    /// missing what whatsmeow requires.
    pub fn parse(response: &Node, now: Instant) -> Result<Self, MediaConnError> {
        let response =
            iq::parse_response(response).map_err(|e| MediaConnError::Rejected { code: e.code })?;
        let conn = response
            .child_by_tag("media_conn")
            .ok_or(MediaConnError::MissingMediaConn)?;
        let auth = conn
            .get_attr_str("auth")
            .ok_or(MediaConnError::MissingAttribute("auth"))?
            .to_owned();
        let ttl = number(conn, "ttl")?;
        let auth_ttl = number(conn, "auth_ttl")?;
        let max_buckets = u32::try_from(number(conn, "max_buckets")?)
            .map_err(|_| MediaConnError::BadAttribute("max_buckets"))?;
        let mut hosts = Vec::new();
        for host in conn.children_by_tag("host") {
            let hostname = host
                .get_attr_str("hostname")
                .ok_or(MediaConnError::MissingAttribute("hostname"))?
                .to_owned();
            let kind = match host.get_attr_str("type") {
                Some("fallback") => HostKind::Fallback,
                _ => HostKind::Primary,
            };
            let max_content_length = host
                .get_attr_str("maxContentLengthBytes")
                .and_then(|v| v.parse().ok());
            hosts.push(MediaHost {
                hostname,
                kind,
                max_content_length,
            });
        }
        if hosts.is_empty() {
            return Err(MediaConnError::NoHosts);
        }
        // A stable sort keeps the server's order within each kind.
        hosts.sort_by_key(|h| h.kind == HostKind::Fallback);
        Ok(Self {
            auth,
            ttl: Duration::from_secs(ttl),
            auth_ttl: Duration::from_secs(auth_ttl),
            max_buckets,
            hosts,
            fetched_at: now,
        })
    }

    /// The auth token for upload URLs (`auth` query parameter). A credential: do not log it.
    #[must_use]
    pub fn auth(&self) -> &str {
        &self.auth
    }

    /// When the cached reply must be refreshed: `fetched_at + min(ttl, auth_ttl)`
    /// (whatsmeow caches until `fetched_at + ttl`; the auth token cannot outlive `auth_ttl`).
    #[must_use]
    pub fn expires_at(&self) -> Instant {
        self.fetched_at + self.ttl.min(self.auth_ttl)
    }

    /// Whether the reply must be refreshed before use at `now`.
    #[must_use]
    pub fn is_expired(&self, now: Instant) -> bool {
        now >= self.expires_at()
    }
}

impl fmt::Debug for MediaConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaConn")
            .field("auth", &"..")
            .field("ttl", &self.ttl)
            .field("auth_ttl", &self.auth_ttl)
            .field("max_buckets", &self.max_buckets)
            .field("hosts", &self.hosts)
            .field("fetched_at", &self.fetched_at)
            .finish()
    }
}

fn number(node: &Node, name: &'static str) -> Result<u64, MediaConnError> {
    node.get_attr_str(name)
        .ok_or(MediaConnError::MissingAttribute(name))?
        .parse()
        .map_err(|_| MediaConnError::BadAttribute(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(hosts: Vec<Node>) -> Node {
        Node::new("iq")
            .attr("type", "result")
            .attr("id", "1")
            .with_children([Node::new("media_conn")
                .attr("auth", "secret-auth")
                .attr("ttl", "300")
                .attr("auth_ttl", "21600")
                .attr("max_buckets", "12")
                .with_children(hosts)])
    }

    #[test]
    fn request_is_a_w_m_set_with_a_media_conn_child() {
        let n = MediaConn::request();
        assert_eq!(n.get_attr_str("xmlns"), Some("w:m"));
        assert_eq!(n.get_attr_str("type"), Some("set"));
        assert!(n.child_by_tag("media_conn").is_some());
        assert!(n.get_attr("id").is_none());
    }

    #[test]
    fn parses_hosts_primary_first_and_expires_after_ttl() {
        let now = Instant::now();
        let r = reply(vec![
            Node::new("host")
                .attr("hostname", "fb.example")
                .attr("type", "fallback"),
            Node::new("host")
                .attr("hostname", "mmg.whatsapp.net")
                .attr("maxContentLengthBytes", "104857600"),
        ]);
        let conn = MediaConn::parse(&r, now).unwrap();
        assert_eq!(conn.auth(), "secret-auth");
        assert_eq!(conn.hosts[0].hostname, "mmg.whatsapp.net");
        assert_eq!(conn.hosts[0].max_content_length, Some(104_857_600));
        assert_eq!(conn.hosts[1].kind, HostKind::Fallback);
        assert!(!conn.is_expired(now + Duration::from_secs(299)));
        assert!(conn.is_expired(now + Duration::from_secs(300)));
        assert!(!format!("{conn:?}").contains("secret-auth"));
    }

    #[test]
    fn rejects_replies_missing_required_parts() {
        let now = Instant::now();
        assert_eq!(
            MediaConn::parse(&reply(vec![]), now),
            Err(MediaConnError::NoHosts)
        );
        let no_hostname = reply(vec![Node::new("host")]);
        assert_eq!(
            MediaConn::parse(&no_hostname, now),
            Err(MediaConnError::MissingAttribute("hostname"))
        );
        let bad_ttl = Node::new("iq")
            .attr("type", "result")
            .with_children([Node::new("media_conn")
                .attr("auth", "a")
                .attr("ttl", "soon")]);
        assert_eq!(
            MediaConn::parse(&bad_ttl, now),
            Err(MediaConnError::BadAttribute("ttl"))
        );
        let error = Node::new("iq")
            .attr("type", "error")
            .with_children([Node::new("error").attr("code", "401")]);
        assert_eq!(
            MediaConn::parse(&error, now),
            Err(MediaConnError::Rejected { code: 401 })
        );
    }
}
