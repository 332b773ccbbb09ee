//! Errors of the Noise layer: framing, handshake, certificate chain and transport.
//!
//! Like snow (`src/error.rs`) we name the exact step that failed. These errors describe
//! what a peer sent wrong, so they are safe to log: none carries key material or plaintext.
//! A detailed error can still tell an attacker which check failed; do not echo it to a peer.

use std::fmt;

/// Any failure of the Noise layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NoiseError {
    /// A frame's 3-byte length prefix (or an outgoing payload) exceeds the frame limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The announced (or attempted) payload length, bytes.
        len: usize,
        /// The limit in force, bytes.
        max: usize,
    },
    /// The client's connection header is not `WA 06 03` (shared/protocol/01 §2).
    #[error("bad connection header {found:02x?}, expected [57, 41, 06, 03]")]
    BadConnectionHeader {
        /// The four bytes received where the header was expected.
        found: [u8; 4],
    },
    /// The edge-routing pre-intro does not start with `ED 00 01` (shared/protocol/01 §2.1).
    #[error("bad edge-routing pre-intro {found:02x?}, expected [45, 44, 00, 01]")]
    BadPreIntro {
        /// The four bytes received where the pre-intro magic was expected.
        found: [u8; 4],
    },
    /// The stream ended (or the caller declared it ended) in the middle of a frame.
    #[error("stream ended inside a frame: {buffered} bytes buffered")]
    TruncatedFrame {
        /// Bytes left over that do not make a whole frame.
        buffered: usize,
    },
    /// A handshake frame is not a valid `HandshakeMessage` protobuf.
    #[error("malformed handshake message")]
    MalformedHandshake(#[source] prost::DecodeError),
    /// A handshake frame carries a different step than the one expected here.
    #[error("unexpected handshake message: expected {expected}")]
    UnexpectedMessage {
        /// The step expected: `"clientHello"`, `"serverHello"` or `"clientFinish"`.
        expected: &'static str,
    },
    /// A required handshake field is absent.
    #[error("handshake message lacks {0}")]
    MissingField(&'static str),
    /// A handshake field (or decrypted key) has the wrong length.
    #[error("{field} is {len} bytes, expected {expected}")]
    BadLength {
        /// The field, e.g. `"serverHello.ephemeral"`.
        field: &'static str,
        /// Its actual length, bytes.
        len: usize,
        /// Its required length, bytes.
        expected: usize,
    },
    /// AES-GCM authentication failed: wrong key, wrong counter, or tampered bytes.
    #[error("decryption of {0} failed")]
    DecryptFailed(&'static str),
    /// The 32-bit nonce counter of a cipher is exhausted; the connection must be re-keyed
    /// (reconnect). No connection gets near 2^32 frames.
    #[error("nonce counter exhausted")]
    CounterExhausted,
    /// The server's certificate chain was rejected.
    #[error("server certificate rejected")]
    Certificate(#[from] CertError),
}

/// Which certificate of the chain a [`CertError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertRole {
    /// The intermediate certificate, signed by the trust root.
    Intermediate,
    /// The leaf certificate, signed by the intermediate; certifies the server static key.
    Leaf,
}

impl fmt::Display for CertRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Intermediate => "intermediate",
            Self::Leaf => "leaf",
        })
    }
}

/// Why a server certificate chain was rejected.
///
/// The checks and their order follow whatsmeow `handshake.go` (`verifyServerCert`,
/// `checkCertValidity`); see shared/protocol/01 §5.2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The chain is not a valid `CertChain` protobuf.
    #[error("certificate chain is not a valid CertChain protobuf")]
    Malformed(#[source] prost::DecodeError),
    /// A certificate or one of its fields is absent.
    #[error("certificate chain lacks {0}")]
    MissingPart(&'static str),
    /// A certificate's details are not a valid `Details` protobuf.
    #[error("{0} certificate details are malformed")]
    MalformedDetails(CertRole, #[source] prost::DecodeError),
    /// A signature is not 64 bytes.
    #[error("{role} certificate signature is {len} bytes, expected 64")]
    BadSignatureLength {
        /// The certificate.
        role: CertRole,
        /// Its signature length, bytes.
        len: usize,
    },
    /// The intermediate certificate's signature does not verify under the trust root's key.
    #[error("intermediate certificate is not signed by the trusted root")]
    UntrustedRoot,
    /// The leaf certificate's signature does not verify under the intermediate's key.
    #[error("leaf certificate is not signed by the intermediate")]
    BadLeafSignature,
    /// A certificate names a different issuer serial than its signer's serial.
    #[error("{role} certificate issuer serial is {found}, expected {expected}")]
    IssuerSerialMismatch {
        /// The certificate.
        role: CertRole,
        /// Its `issuerSerial`.
        found: u32,
        /// The signer's serial (the root's for the intermediate).
        expected: u32,
    },
    /// A certified key is not 32 bytes.
    #[error("{role} certificate key is {len} bytes, expected 32")]
    BadKeyLength {
        /// The certificate.
        role: CertRole,
        /// The key length, bytes.
        len: usize,
    },
    /// The leaf certifies a different key than the server static key of the handshake.
    #[error("leaf certificate key does not match the server static key")]
    LeafKeyMismatch,
    /// `now` is before the certificate's `notBefore`.
    #[error("{role} certificate not valid before {} (now {})", UnixTime(*not_before), UnixTime(*now))]
    NotYetValid {
        /// The certificate.
        role: CertRole,
        /// Its `notBefore`, unix seconds.
        not_before: u64,
        /// The time checked against, unix seconds.
        now: u64,
    },
    /// `now` is after the certificate's `notAfter`.
    #[error("{role} certificate expired at {} (now {})", UnixTime(*not_after), UnixTime(*now))]
    Expired {
        /// The certificate.
        role: CertRole,
        /// Its `notAfter`, unix seconds.
        not_after: u64,
        /// The time checked against, unix seconds.
        now: u64,
    },
}

/// Displays unix seconds as an RFC 3339 UTC timestamp (`2025-07-28T21:00:00Z`).
struct UnixTime(u64);

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0 / 86_400;
        let secs = self.0 % 86_400;
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
///
/// Howard Hinnant's `civil_from_days` algorithm, restricted to non-negative day counts.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::UnixTime;

    #[test]
    fn unix_time_displays_as_utc_timestamp() {
        assert_eq!(UnixTime(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(UnixTime(1_753_736_400).to_string(), "2025-07-28T21:00:00Z");
        assert_eq!(UnixTime(1_804_463_999).to_string(), "2027-03-07T23:59:59Z");
        assert_eq!(UnixTime(951_782_400).to_string(), "2000-02-29T00:00:00Z");
    }
}
