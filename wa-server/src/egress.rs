//! Requests the server makes to URLs its callers give it (webhook deliveries, media URLs):
//! which addresses they may reach (the SSRF guard).
//!
//! By default a target in a non-public range is refused: loopback, private (RFC 1918),
//! unique-local, link-local (cloud metadata at `169.254.169.254`), CGNAT, unspecified,
//! multicast, broadcast, documentation, benchmarking and reserved ranges, IPv4 and IPv6,
//! including IPv4 addresses carried in IPv6 (IPv4-mapped `::ffff:a.b.c.d`, NAT64
//! `64:ff9b::/96`, 6to4 `2002::/16`). Three places check, so neither a redirect nor DNS
//! rebinding gets past:
//!
//! - [`TargetGuard::check_url`]: IP-literal hosts (and `localhost` names, RFC 6761), when a
//!   URL is registered and again before each request and each redirect hop (an IP literal
//!   never reaches a DNS resolver);
//! - [`GuardedResolver`]: the DNS resolver of every outbound client; it drops blocked
//!   addresses from each answer, so the connection is made only to an address that was
//!   checked (no second lookup a rebinding DNS server could answer differently), and fails
//!   with [`BlockedTarget`] when none is left;
//! - the media fetch follows redirects itself, one checked hop at a time
//!   (`crate::media::fetch`); webhook deliveries follow none.
//!
//! [`EgressSettings`](crate::EgressSettings) lifts the block: `--allow-private-targets` for
//! everything, `--allowed-target-cidrs` for chosen ranges (a self-hosted receiver).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::config::EgressSettings;

/// The flag that allows every blocked target; named in errors.
pub const ALLOW_FLAG: &str = "--allow-private-targets";
/// The environment variable of [`ALLOW_FLAG`].
pub const ALLOW_ENV: &str = "WA_ALLOW_PRIVATE_TARGETS";
/// The flag that allows chosen ranges; named in errors.
pub const CIDR_FLAG: &str = "--allowed-target-cidrs";

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(segments: [u16; 8], len: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), len)
}

/// Blocked IPv4 ranges and what they are (IANA IPv4 special-purpose address registry,
/// RFC 6890 and updates).
const BLOCKED_V4: &[(Ipv4Net, &str)] = &[
    (v4(0, 0, 0, 0, 8), "unspecified (\"this network\")"),
    (v4(10, 0, 0, 0, 8), "private"),
    (v4(100, 64, 0, 0, 10), "shared (CGNAT)"),
    (v4(127, 0, 0, 0, 8), "loopback"),
    (v4(169, 254, 0, 0, 16), "link-local (cloud metadata)"),
    (v4(172, 16, 0, 0, 12), "private"),
    (v4(192, 0, 0, 0, 24), "IETF protocol assignment"),
    (v4(192, 0, 2, 0, 24), "documentation"),
    (v4(192, 88, 99, 0, 24), "6to4 relay anycast"),
    (v4(192, 168, 0, 0, 16), "private"),
    (v4(198, 18, 0, 0, 15), "benchmarking"),
    (v4(198, 51, 100, 0, 24), "documentation"),
    (v4(203, 0, 113, 0, 24), "documentation"),
    (v4(224, 0, 0, 0, 4), "multicast"),
    (v4(240, 0, 0, 0, 4), "reserved (and broadcast)"),
];

/// Blocked IPv6 ranges (IANA IPv6 special-purpose address registry). The ranges that carry
/// an IPv4 address are handled first (see [`classify`]).
const BLOCKED_V6: &[(Ipv6Net, &str)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified"),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback"),
    (
        v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
        "IPv4-compatible (deprecated)",
    ),
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), "local-use NAT64"),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "discard-only"),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        "IETF protocol assignment",
    ),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "documentation"),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), "documentation"),
    (
        v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16),
        "segment routing (SRv6)",
    ),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), "unique-local"),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "site-local (deprecated)",
    ),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
];

/// NAT64 well-known prefix (RFC 6052): the last 32 bits are an IPv4 address.
const NAT64: Ipv6Net = v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);
/// 6to4 (RFC 3056): bits 16..48 are an IPv4 address.
const SIX_TO_FOUR: Ipv6Net = v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16);

/// What kind of non-public address `ip` is, or `None` for a public one. IPv4 addresses
/// carried in IPv6 (mapped, NAT64, 6to4) are judged as the IPv4 address they carry.
pub fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => BLOCKED_V4
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|(_, what)| *what),
        IpAddr::V6(ip) => {
            if let Some(inner) = ip.to_ipv4_mapped() {
                return classify(IpAddr::V4(inner));
            }
            let o = ip.octets();
            if NAT64.contains(&ip) {
                return classify(IpAddr::V4(Ipv4Addr::new(o[12], o[13], o[14], o[15])));
            }
            if SIX_TO_FOUR.contains(&ip) {
                return classify(IpAddr::V4(Ipv4Addr::new(o[2], o[3], o[4], o[5])));
            }
            BLOCKED_V6
                .iter()
                .find(|(net, _)| net.contains(&ip))
                .map(|(_, what)| *what)
        }
    }
}

/// A target refused by the guard. Its message names the address, its range and the flag
/// that allows it; it never holds the URL (whose path or query may carry a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{host} {how} {range} address{addr}; the server refuses non-public targets unless started \
     with {ALLOW_FLAG} ({ALLOW_ENV}=true) or with the range in {CIDR_FLAG}"
)]
pub struct BlockedTarget {
    /// The host as given (a name or an IP literal).
    pub host: String,
    /// `is a` for an IP literal, `resolves only to a` for a name.
    how: &'static str,
    /// The address's range, e.g. `link-local (cloud metadata)`.
    pub range: &'static str,
    /// ` (10.0.0.1)` for a name, empty for a literal.
    addr: String,
}

impl BlockedTarget {
    fn literal(ip: IpAddr, range: &'static str) -> Self {
        Self {
            host: ip.to_string(),
            how: "is a",
            range,
            addr: String::new(),
        }
    }

    fn name(host: &str, ip: IpAddr, range: &'static str) -> Self {
        Self {
            host: host.to_owned(),
            how: "resolves only to a",
            range,
            addr: format!(" ({ip})"),
        }
    }

    /// The flag that allows this target (for the error body).
    pub fn flag(&self) -> &'static str {
        ALLOW_FLAG
    }

    /// The [`BlockedTarget`] somewhere in the source chain of `error` (a reqwest error whose
    /// connect failed because the guarded DNS resolver dropped every address).
    pub fn find_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Self> {
        let mut current = Some(error);
        while let Some(e) = current {
            if let Some(blocked) = e.downcast_ref::<Self>() {
                return Some(blocked);
            }
            current = e.source();
        }
        None
    }
}

/// True for `localhost` and names under it (RFC 6761 §6.3: they are loopback, whatever a
/// DNS server says).
fn is_localhost_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// The loopback addresses `localhost` names stand for.
const LOCALHOST: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
];

/// The policy of [`EgressSettings`](crate::EgressSettings), shared by the checks and the
/// resolver.
#[derive(Debug, Clone, Default)]
pub(crate) struct TargetGuard {
    /// `--allow-private-targets`: nothing is blocked.
    allow_all: bool,
    /// `--allowed-target-cidrs`: blocked ranges allowed anyway.
    allowed: Vec<IpNet>,
}

impl TargetGuard {
    pub(crate) fn new(settings: &EgressSettings) -> Self {
        Self {
            allow_all: settings.allow_private_targets,
            allowed: settings.allowed_cidrs.clone(),
        }
    }

    /// The range `ip` is refused for, or `None` when it may be reached.
    pub(crate) fn blocked(&self, ip: IpAddr) -> Option<&'static str> {
        if self.allow_all {
            return None;
        }
        let range = classify(ip)?;
        let canonical = canonical(ip);
        if self
            .allowed
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
        {
            return None;
        }
        Some(range)
    }

    /// Checks the host of `url` where no resolver is asked: an IP literal, or a `localhost`
    /// name (refused when every loopback address is).
    ///
    /// # Errors
    /// [`BlockedTarget`].
    pub(crate) fn check_url(&self, url: &reqwest::Url) -> Result<(), BlockedTarget> {
        let Some(host) = url.host_str() else {
            return Ok(());
        };
        // The URL parser has already turned every IPv4 spelling (`2130706433`, `0x7f.1`)
        // into dotted decimal.
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return match self.blocked(ip) {
                Some(range) => Err(BlockedTarget::literal(ip, range)),
                None => Ok(()),
            };
        }
        if is_localhost_name(host) {
            let ranges: Vec<_> = LOCALHOST.iter().map(|ip| self.blocked(*ip)).collect();
            if let [Some(range), Some(_)] = ranges[..] {
                return Err(BlockedTarget::name(host, LOCALHOST[0], range));
            }
        }
        Ok(())
    }

    /// Keeps the addresses that may be reached.
    ///
    /// # Errors
    /// [`BlockedTarget`] (naming the first address dropped) when none is left.
    fn filter(&self, host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, BlockedTarget> {
        let mut first_blocked = None;
        let kept: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| match self.blocked(a.ip()) {
                Some(range) => {
                    first_blocked.get_or_insert((a.ip(), range));
                    tracing::debug!(host, addr = %a.ip(), range, "dropped a blocked address");
                    false
                }
                None => true,
            })
            .collect();
        match (kept.is_empty(), first_blocked) {
            (true, Some((ip, range))) => Err(BlockedTarget::name(host, ip, range)),
            _ => Ok(kept),
        }
    }
}

/// `ip` with an IPv4 address carried in IPv6 (mapped) written as IPv4, so an allow-list
/// entry `10.0.0.0/8` also covers `::ffff:10.0.0.1`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The DNS resolver of the server's outbound HTTP clients: asks the system resolver
/// (`getaddrinfo` on tokio's blocking pool, like reqwest's default), answers `localhost`
/// names with loopback itself, consults the static host map
/// ([`EgressSettings::resolve`](crate::EgressSettings)) first, and drops every address the
/// [`TargetGuard`] refuses. Only what it returns is connected to.
#[derive(Debug, Clone)]
pub(crate) struct GuardedResolver {
    guard: Arc<TargetGuard>,
    hosts: Arc<BTreeMap<String, Vec<IpAddr>>>,
}

impl GuardedResolver {
    pub(crate) fn new(guard: Arc<TargetGuard>, settings: &EgressSettings) -> Self {
        let hosts = settings
            .resolve
            .iter()
            .map(|(name, addrs)| {
                (
                    name.trim_end_matches('.').to_ascii_lowercase(),
                    addrs.clone(),
                )
            })
            .collect();
        Self {
            guard,
            hosts: Arc::new(hosts),
        }
    }

    /// The addresses of `host` (port 0: reqwest puts the URL's port in), before filtering.
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<SocketAddr>> {
        let key = host.trim_end_matches('.').to_ascii_lowercase();
        if let Some(addrs) = self.hosts.get(&key) {
            return Ok(addrs.iter().map(|ip| SocketAddr::new(*ip, 0)).collect());
        }
        if is_localhost_name(&key) {
            return Ok(LOCALHOST.iter().map(|ip| SocketAddr::new(*ip, 0)).collect());
        }
        Ok(tokio::net::lookup_host((key.as_str(), 0)).await?.collect())
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = this.lookup(&host).await?;
            let kept = this.guard.filter(&host, addrs)?;
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// `builder` with the guarded resolver of `settings`, and without the environment's
/// proxies (`HTTP_PROXY`, `HTTPS_PROXY`): through a proxy the target's name would be
/// resolved, and connected to, by the proxy, out of the guard's sight.
pub(crate) fn guarded(
    builder: reqwest::ClientBuilder,
    guard: &Arc<TargetGuard>,
    settings: &EgressSettings,
) -> reqwest::ClientBuilder {
    builder
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver::new(guard.clone(), settings)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn non_public_addresses_are_classified() {
        for (addr, blocked) in [
            ("169.254.169.254", true),
            ("127.0.0.1", true),
            ("127.0.0.2", true),
            ("10.0.0.1", true),
            ("172.16.0.1", true),
            ("172.31.255.255", true),
            ("172.32.0.1", false),
            ("192.168.1.1", true),
            ("100.64.0.1", true),
            ("100.128.0.1", false),
            ("0.0.0.0", true),
            ("224.0.0.1", true),
            ("255.255.255.255", true),
            ("192.0.2.10", true),
            ("198.51.100.1", true),
            ("203.0.113.9", true),
            ("198.18.0.1", true),
            ("8.8.8.8", false),
            ("1.1.1.1", false),
            ("93.184.215.14", false),
            ("::", true),
            ("::1", true),
            ("fe80::1", true),
            ("fc00::1", true),
            ("fd12:3456::1", true),
            ("ff02::1", true),
            ("2001:db8::1", true),
            ("::ffff:169.254.169.254", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:10.0.0.1", true),
            ("::ffff:8.8.8.8", false),
            ("::127.0.0.1", true),
            ("64:ff9b::a9fe:a9fe", true),
            ("64:ff9b::808:808", false),
            ("2002:7f00:1::1", true),
            ("2002:808:808::1", false),
            ("2606:4700:4700::1111", false),
            ("2a00:1450:4001::200e", false),
        ] {
            assert_eq!(classify(ip(addr)).is_some(), blocked, "{addr}");
        }
        assert_eq!(
            classify(ip("169.254.169.254")),
            Some("link-local (cloud metadata)")
        );
        assert_eq!(classify(ip("::ffff:127.0.0.1")), Some("loopback"));
    }

    #[test]
    fn the_flag_and_the_cidr_list_allow() {
        let default = TargetGuard::new(&EgressSettings::default());
        assert!(default.blocked(ip("10.1.2.3")).is_some());
        let cidrs = TargetGuard::new(&EgressSettings {
            allowed_cidrs: vec!["10.0.0.0/8".parse().expect("cidr")],
            ..EgressSettings::default()
        });
        assert!(cidrs.blocked(ip("10.1.2.3")).is_none());
        assert!(cidrs.blocked(ip("::ffff:10.1.2.3")).is_none());
        assert!(cidrs.blocked(ip("192.168.0.1")).is_some());
        let all = TargetGuard::new(&EgressSettings {
            allow_private_targets: true,
            ..EgressSettings::default()
        });
        assert!(all.blocked(ip("169.254.169.254")).is_none());
    }

    #[test]
    fn literal_and_localhost_urls_are_checked_without_dns() {
        let guard = TargetGuard::new(&EgressSettings::default());
        let url = |s: &str| reqwest::Url::parse(s).expect("url");
        for blocked in [
            "http://169.254.169.254/latest/meta-data/",
            "http://127.0.0.2:8080/",
            "http://[::1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://localhost:9/",
            "http://LOCALHOST./",
            "http://api.localhost/",
        ] {
            let err = guard.check_url(&url(blocked)).expect_err(blocked);
            assert!(err.to_string().contains(ALLOW_FLAG), "{err}");
        }
        for allowed in ["https://example.com/hook", "http://8.8.8.8/"] {
            assert!(guard.check_url(&url(allowed)).is_ok(), "{allowed}");
        }
    }

    #[test]
    fn the_resolver_filter_keeps_public_addresses_only() {
        let guard = TargetGuard::new(&EgressSettings::default());
        let sa = |s: &str| SocketAddr::new(ip(s), 0);
        let kept = guard
            .filter("mixed.test", vec![sa("10.0.0.1"), sa("8.8.8.8")])
            .expect("one public address");
        assert_eq!(kept, vec![sa("8.8.8.8")]);
        let err = guard
            .filter("internal.test", vec![sa("10.0.0.1"), sa("fd00::1")])
            .expect_err("only private addresses");
        assert_eq!(err.host, "internal.test");
        assert!(
            err.to_string()
                .contains("resolves only to a private address (10.0.0.1)")
        );
    }
}
