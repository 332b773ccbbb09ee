//! THE table from `<stream:error>` / `<failure>` (and local causes) to [`CloseReason`].
//!
//! Every way a connection ends is a [`CloseReason`]; `client/reconnect.rs` acts on
//! [`CloseReason::reconnect`] and [`CloseReason::wipes_credentials`] only, so the policy lives
//! here, in one place, pinned by the unit tests at the end of this file.
//!
//! Sources: shared/protocol/03-pairing-login.md §8; whatsmeow connectionevents.go
//! (`handleStreamError`, `handleConnectFailure`) and types/events/events.go
//! (`ConnectFailureReason.IsLoggedOut`: 401, 403, 406). Where whatsmeow and whatsapp-rust
//! disagree we follow whatsmeow: `516` and `409` stream errors stop without wiping (whatsapp-rust
//! logs out on 516 and treats 409 as replaced; wiping on an unexplained code would force a
//! second QR scan, which is the one thing a paired device must avoid).

use std::time::Duration;

use crate::error::ProtocolViolation;

/// Why a connection ended. Returned by `Connection::close_reason` and carried by the
/// `Disconnected` / `LoggedOut` events.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// `<stream:error code="515"/>`: restart required, sent after pairing and sometimes on a
    /// login connection. Reconnect at once with the same keys and the login payload (03 §6).
    RestartRequired,
    /// The companion was unlinked or the account is gone: stream error 401 /
    /// `<conflict type="device_removed"/>`, or `<failure reason="401|403|406"/>`.
    /// The credentials are useless; wipe them and stop.
    LoggedOut {
        /// The code that said so (401, 403 or 406).
        code: u16,
    },
    /// `<conflict type="replaced"/>`: another connection of this device took over. Stop;
    /// reconnecting would kick the other connection off in turn.
    Replaced,
    /// `503` (stream error or failure): service unavailable. Reconnect with backoff.
    ServiceUnavailable,
    /// `500` (stream error or failure): internal server error. Reconnect with backoff.
    InternalServerError,
    /// Stream error `429`: rate limited. Reconnect with a long backoff (whatsapp-rust).
    RateLimited,
    /// `<failure reason="405"/>`: the WhatsApp Web version in our login payload
    /// (`UserAgent.appVersion`, 03 §2.2) is older than the server accepts. Stop without
    /// wiping: the credentials stay valid, and a restart with a newer version
    /// (`DeviceConfig::app_version`, `ClientBuilder::app_version`, wa-server
    /// `--wa-version`) logs in again. whatsmeow: `ConnectFailureClientOutdated`.
    ClientOutdated {
        /// The version we sent (`primary.secondary.tertiary`); `None` only when the reason
        /// was built from the stanza alone ([`CloseReason::from_failure`]), the connection
        /// always fills it in.
        sent_version: Option<[u32; 3]>,
    },
    /// `<failure reason="402"/>`: the account is temporarily banned. Stop.
    TemporarilyBanned {
        /// Ban reason code (101 too many messages to non-contacts, 102 blocked by users, 103 too
        /// many groups, 104 same message to many, 106 broadcast list), if sent.
        code: Option<u16>,
        /// How long the ban lasts, if sent.
        expire: Option<Duration>,
    },
    /// Any other `<failure reason="N"/>` (400, 409 bad user agent, 413/414 CAT, 415, 418,
    /// 501, ...). Stop.
    Failure {
        /// The `reason` code.
        reason: u16,
    },
    /// Any other `<stream:error>` (409, 516, unknown codes; `code` is `None` when absent or not
    /// numeric). Stop without wiping.
    StreamError {
        /// The `code` attribute.
        code: Option<u16>,
    },
    /// `<xmlstreamend/>`: the server closed the stream gracefully (03 §8.4). Reconnect with
    /// backoff.
    StreamEnd,
    /// The socket closed or failed without a stanza saying why. Reconnect with backoff.
    ConnectionLost,
    /// No answer to keepalive pings within the deadline (03 §10.2). Reconnect with backoff.
    PingTimeout,
    /// Every QR ref expired without a scan (03 §4.4: 60 s + 5 x 20 s). Stop; the embedder
    /// decides whether to start a new registration.
    QrRefsExhausted,
    /// The server's certificate chain did not verify against the configured trust root.
    /// Stop: retrying will not change the certificate.
    BadServerCertificate,
    /// The Noise handshake failed for another reason (malformed or undecryptable server hello).
    /// Reconnect with backoff.
    HandshakeFailed,
    /// The peer broke the protocol (undecryptable frame, undecodable node, missing field in a
    /// stanza that must have it); the variant names which. Reconnect with backoff.
    ProtocolViolation(ProtocolViolation),
    /// Pairing failed locally (pair-success did not verify, or the credentials could not be
    /// stored); an error IQ was sent (03 §4.9). Stop.
    PairingFailed,
    /// The store failed; nothing can be trusted to persist. Stop.
    StoreFailed,
    /// The embedder logged out (`remove-companion-device`, 03 §10.4). Wipe and stop.
    LocalLogout,
    /// The embedder closed the connection (shutdown). Stop.
    LocalClose,
}

/// What the driver does after a connection closed with some [`CloseReason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconnect {
    /// Open a new connection at once (515 restart).
    Immediately,
    /// Open a new connection after a capped exponential backoff with jitter.
    Backoff,
    /// Open a new connection after a longer backoff (rate limited).
    LongBackoff,
    /// Do not reconnect.
    Never,
}

impl CloseReason {
    /// Map a `<stream:error>` (03 §8.1) from its `code` attribute and the `type` of its
    /// `<conflict>` child, if any.
    pub fn from_stream_error(code: Option<&str>, conflict_type: Option<&str>) -> Self {
        let numeric = code.and_then(|c| c.parse::<u16>().ok());
        match (numeric, conflict_type) {
            (_, Some("replaced")) => Self::Replaced,
            (_, Some("device_removed")) => Self::LoggedOut { code: 401 },
            (Some(515), _) => Self::RestartRequired,
            (Some(401), _) => Self::LoggedOut { code: 401 },
            (Some(503), _) => Self::ServiceUnavailable,
            (Some(500), _) => Self::InternalServerError,
            (Some(429), _) => Self::RateLimited,
            (code, _) => Self::StreamError { code },
        }
    }

    /// Map a `<failure reason="N" [code] [expire]/>` (03 §8.2). `reason` that is missing or
    /// not numeric becomes `Failure { reason: 0 }`.
    pub fn from_failure(reason: Option<&str>, code: Option<&str>, expire: Option<&str>) -> Self {
        let reason = reason.and_then(|r| r.parse::<u16>().ok()).unwrap_or(0);
        match reason {
            401 | 403 | 406 => Self::LoggedOut { code: reason },
            402 => Self::TemporarilyBanned {
                code: code.and_then(|c| c.parse().ok()),
                expire: expire
                    .and_then(|e| e.parse::<u64>().ok())
                    .map(Duration::from_secs),
            },
            405 => Self::ClientOutdated { sent_version: None },
            500 => Self::InternalServerError,
            503 => Self::ServiceUnavailable,
            reason => Self::Failure { reason },
        }
    }

    /// What the driver should do next.
    pub fn reconnect(&self) -> Reconnect {
        match self {
            Self::RestartRequired => Reconnect::Immediately,
            Self::ServiceUnavailable
            | Self::InternalServerError
            | Self::StreamEnd
            | Self::ConnectionLost
            | Self::PingTimeout
            | Self::HandshakeFailed
            | Self::ProtocolViolation(_) => Reconnect::Backoff,
            Self::RateLimited => Reconnect::LongBackoff,
            Self::LoggedOut { .. }
            | Self::Replaced
            | Self::ClientOutdated { .. }
            | Self::TemporarilyBanned { .. }
            | Self::Failure { .. }
            | Self::StreamError { .. }
            | Self::QrRefsExhausted
            | Self::BadServerCertificate
            | Self::PairingFailed
            | Self::StoreFailed
            | Self::LocalLogout
            | Self::LocalClose => Reconnect::Never,
        }
    }

    /// Whether the driver should open another connection (any [`Reconnect`] but `Never`).
    pub fn should_reconnect(&self) -> bool {
        self.reconnect() != Reconnect::Never
    }

    /// Whether the stored credentials must be wiped: the device is no longer linked.
    pub fn wipes_credentials(&self) -> bool {
        matches!(self, Self::LoggedOut { .. } | Self::LocalLogout)
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RestartRequired => f.write_str("restart required (515)"),
            Self::LoggedOut { code } => write!(f, "logged out ({code})"),
            Self::Replaced => f.write_str("replaced by another connection"),
            Self::ServiceUnavailable => f.write_str("service unavailable (503)"),
            Self::InternalServerError => f.write_str("internal server error (500)"),
            Self::RateLimited => f.write_str("rate limited (429)"),
            Self::ClientOutdated { sent_version } => {
                f.write_str("client outdated (405): the server refused WhatsApp Web version ")?;
                match sent_version {
                    Some([a, b, c]) => write!(f, "{a}.{b}.{c}")?,
                    None => f.write_str("(unknown)")?,
                }
                f.write_str(
                    "; set a newer one (e.g. 2.3000.x from web.whatsapp.com's sw.js) with \
                     DeviceConfig::app_version / ClientBuilder::app_version, or wa-server \
                     --wa-version",
                )
            }
            Self::TemporarilyBanned { code, expire } => {
                write!(f, "temporarily banned (402")?;
                if let Some(code) = code {
                    write!(f, ", code {code}")?;
                }
                if let Some(expire) = expire {
                    write!(f, ", {} s", expire.as_secs())?;
                }
                f.write_str(")")
            }
            Self::Failure { reason } => write!(f, "connect failure ({reason})"),
            Self::StreamError { code: Some(code) } => write!(f, "stream error ({code})"),
            Self::StreamError { code: None } => f.write_str("stream error"),
            Self::StreamEnd => f.write_str("server ended the stream"),
            Self::ConnectionLost => f.write_str("connection lost"),
            Self::PingTimeout => f.write_str("keepalive timed out"),
            Self::QrRefsExhausted => f.write_str("QR codes expired without a scan"),
            Self::BadServerCertificate => f.write_str("server certificate did not verify"),
            Self::HandshakeFailed => f.write_str("Noise handshake failed"),
            Self::ProtocolViolation(_) => f.write_str("server broke the protocol"),
            Self::PairingFailed => f.write_str("pairing failed"),
            Self::StoreFailed => f.write_str("store failed"),
            Self::LocalLogout => f.write_str("logged out locally"),
            Self::LocalClose => f.write_str("closed locally"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::type_complexity)]
    fn stream_error_table_is_pinned() {
        use CloseReason as C;
        let cases: &[(Option<&str>, Option<&str>, CloseReason, Reconnect, bool)] = &[
            (
                Some("515"),
                None,
                C::RestartRequired,
                Reconnect::Immediately,
                false,
            ),
            (
                Some("401"),
                Some("device_removed"),
                C::LoggedOut { code: 401 },
                Reconnect::Never,
                true,
            ),
            (
                None,
                Some("device_removed"),
                C::LoggedOut { code: 401 },
                Reconnect::Never,
                true,
            ),
            (
                Some("401"),
                None,
                C::LoggedOut { code: 401 },
                Reconnect::Never,
                true,
            ),
            (None, Some("replaced"), C::Replaced, Reconnect::Never, false),
            (
                Some("409"),
                Some("replaced"),
                C::Replaced,
                Reconnect::Never,
                false,
            ),
            (
                Some("503"),
                None,
                C::ServiceUnavailable,
                Reconnect::Backoff,
                false,
            ),
            (
                Some("500"),
                None,
                C::InternalServerError,
                Reconnect::Backoff,
                false,
            ),
            (
                Some("429"),
                None,
                C::RateLimited,
                Reconnect::LongBackoff,
                false,
            ),
            (
                Some("516"),
                None,
                C::StreamError { code: Some(516) },
                Reconnect::Never,
                false,
            ),
            (
                Some("409"),
                None,
                C::StreamError { code: Some(409) },
                Reconnect::Never,
                false,
            ),
            (
                Some("xyz"),
                None,
                C::StreamError { code: None },
                Reconnect::Never,
                false,
            ),
            (
                None,
                None,
                C::StreamError { code: None },
                Reconnect::Never,
                false,
            ),
        ];
        for (code, conflict, reason, reconnect, wipe) in cases {
            let got = CloseReason::from_stream_error(*code, *conflict);
            assert_eq!(&got, reason, "{code:?} {conflict:?}");
            assert_eq!(got.reconnect(), *reconnect, "{code:?} {conflict:?}");
            assert_eq!(got.wipes_credentials(), *wipe, "{code:?} {conflict:?}");
        }
    }

    #[test]
    fn failure_table_is_pinned() {
        use CloseReason as C;
        let cases: &[(&str, CloseReason, Reconnect, bool)] = &[
            ("400", C::Failure { reason: 400 }, Reconnect::Never, false),
            ("401", C::LoggedOut { code: 401 }, Reconnect::Never, true),
            ("403", C::LoggedOut { code: 403 }, Reconnect::Never, true),
            (
                "405",
                C::ClientOutdated { sent_version: None },
                Reconnect::Never,
                false,
            ),
            ("406", C::LoggedOut { code: 406 }, Reconnect::Never, true),
            ("409", C::Failure { reason: 409 }, Reconnect::Never, false),
            ("415", C::Failure { reason: 415 }, Reconnect::Never, false),
            ("418", C::Failure { reason: 418 }, Reconnect::Never, false),
            ("500", C::InternalServerError, Reconnect::Backoff, false),
            ("501", C::Failure { reason: 501 }, Reconnect::Never, false),
            ("503", C::ServiceUnavailable, Reconnect::Backoff, false),
        ];
        for (reason, expected, reconnect, wipe) in cases {
            let got = CloseReason::from_failure(Some(reason), None, None);
            assert_eq!(&got, expected, "{reason}");
            assert_eq!(got.reconnect(), *reconnect, "{reason}");
            assert_eq!(got.wipes_credentials(), *wipe, "{reason}");
        }
    }

    #[test]
    fn client_outdated_names_the_version_sent_and_the_remedy() {
        let r = CloseReason::ClientOutdated {
            sent_version: Some([2, 2300, 7]),
        };
        let text = r.to_string();
        assert!(text.contains("2.2300.7"), "{text}");
        assert!(text.contains("--wa-version"), "{text}");
        assert!(!r.wipes_credentials());
        assert!(!r.should_reconnect());
    }

    #[test]
    fn temporary_ban_keeps_code_and_expiry() {
        assert_eq!(
            CloseReason::from_failure(Some("402"), Some("101"), Some("3600")),
            CloseReason::TemporarilyBanned {
                code: Some(101),
                expire: Some(Duration::from_secs(3600))
            }
        );
    }

    #[test]
    fn local_causes_reconnect_only_when_transient() {
        use CloseReason as C;
        for r in [
            C::ConnectionLost,
            C::PingTimeout,
            C::StreamEnd,
            C::HandshakeFailed,
            C::ProtocolViolation(ProtocolViolation::UndecryptableFrame),
        ] {
            assert_eq!(r.reconnect(), Reconnect::Backoff, "{r}");
            assert!(!r.wipes_credentials());
        }
        for r in [
            C::QrRefsExhausted,
            C::BadServerCertificate,
            C::PairingFailed,
            C::StoreFailed,
            C::LocalClose,
        ] {
            assert!(!r.should_reconnect(), "{r}");
            assert!(!r.wipes_credentials(), "{r}");
        }
        assert!(C::LocalLogout.wipes_credentials());
        assert!(!C::LocalLogout.should_reconnect());
    }
}
