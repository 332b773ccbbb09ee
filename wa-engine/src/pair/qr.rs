//! The QR string a companion shows and the phone scans (shared/protocol/03 §4.3).
//!
//! Form (whatsmeow pair.go `makeQRData` since PR #1110, Baileys
//! companion-reg-client-utils.ts `buildPairingQRData`):
//!
//! ```text
//! https://wa.me/settings/linked_devices#<ref>,<b64(noise_pub)>,<b64(identity_pub)>,<b64(adv_secret)>,<client_type>
//! ```
//!
//! The parser also accepts the older 4-field form without prefix and client type (Baileys
//! 6.7.x), and the 5-field form without prefix (whatsapp-rust `make_qr_data`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{AdvSecret, ClientType, PairError};

/// The URL prefix of the current QR form (03 §4.3).
pub(crate) const QR_PREFIX: &str = "https://wa.me/settings/linked_devices#";

/// The decoded content of a pairing QR code.
///
/// `Debug` redacts the adv secret. The QR string itself carries the adv secret in the clear
/// (that is how the phone learns it), so treat a rendered QR as a secret while it is valid.
#[derive(Clone, PartialEq, Eq)]
pub struct QrCode {
    /// The server's ref for this QR (opaque ASCII token, `"2@"` + 100 base64-like characters in
    /// the wild), from one `<ref>` of the pair-device IQ (03 §4.1).
    pub pairing_ref: String,
    /// The companion's Noise static public key (32 bytes).
    pub noise_pub: [u8; 32],
    /// The companion's Signal identity public key (32 bytes, no 0x05 prefix).
    pub identity_pub: [u8; 32],
    /// The 32-byte ADV secret the phone HMACs the device identity with (03 §4.7).
    pub adv_secret: AdvSecret,
    /// The companion's client type; `None` in the legacy 4-field form.
    pub client_type: Option<ClientType>,
}

impl std::fmt::Debug for QrCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QrCode")
            .field("pairing_ref", &self.pairing_ref)
            .field("noise_pub", &HexBytes(&self.noise_pub))
            .field("identity_pub", &HexBytes(&self.identity_pub))
            .field("adv_secret", &self.adv_secret)
            .field("client_type", &self.client_type)
            .finish()
    }
}

struct HexBytes<'a>(&'a [u8]);

impl std::fmt::Debug for HexBytes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl QrCode {
    /// Encode in the current 5-field form with the `https://wa.me/settings/linked_devices#`
    /// prefix; a missing client type is written as `9` ("other web client", the default of
    /// whatsmeow and Baileys).
    pub fn encode(&self) -> String {
        let client_type = self.client_type.unwrap_or(ClientType::OtherWeb);
        format!(
            "{QR_PREFIX}{},{},{},{},{}",
            self.pairing_ref,
            STANDARD.encode(self.noise_pub),
            STANDARD.encode(self.identity_pub),
            STANDARD.encode(self.adv_secret.as_bytes()),
            client_type.as_char()
        )
    }

    /// Encode in the legacy 4-field form (no prefix, no client type), as Baileys 6.7.x did.
    pub fn encode_legacy(&self) -> String {
        format!(
            "{},{},{},{}",
            self.pairing_ref,
            STANDARD.encode(self.noise_pub),
            STANDARD.encode(self.identity_pub),
            STANDARD.encode(self.adv_secret.as_bytes()),
        )
    }

    /// Parse a QR string in any of the known forms: with or without the URL prefix, with 4 or
    /// 5 fields. Surrounding whitespace is ignored.
    ///
    /// # Errors
    /// [`PairError::QrFieldCount`], [`PairError::QrEmptyRef`], [`PairError::QrKey`] for a field
    /// that is not padded standard base64 of 32 bytes, [`PairError::QrClientType`].
    pub fn parse(s: &str) -> Result<Self, PairError> {
        let s = s.trim();
        let body = s.strip_prefix(QR_PREFIX).unwrap_or(s);
        let fields: Vec<&str> = body.split(',').collect();
        let (pairing_ref, noise, identity, adv, client_type) = match fields.as_slice() {
            [r, n, i, a] => (*r, *n, *i, *a, None),
            [r, n, i, a, c] => (*r, *n, *i, *a, Some(*c)),
            other => return Err(PairError::QrFieldCount { found: other.len() }),
        };
        if pairing_ref.is_empty() {
            return Err(PairError::QrEmptyRef);
        }
        let client_type = match client_type {
            None => None,
            Some(c) => {
                let mut chars = c.chars();
                match (chars.next(), chars.next()) {
                    (Some(ch), None) => {
                        Some(ClientType::from_char(ch).ok_or(PairError::QrClientType)?)
                    }
                    _ => return Err(PairError::QrClientType),
                }
            }
        };
        Ok(Self {
            pairing_ref: pairing_ref.to_owned(),
            noise_pub: decode_key(noise, "noise_pub")?,
            identity_pub: decode_key(identity, "identity_pub")?,
            adv_secret: AdvSecret::from_bytes(decode_key(adv, "adv_secret")?),
            client_type,
        })
    }
}

impl std::str::FromStr for QrCode {
    type Err = PairError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn decode_key(field: &str, name: &'static str) -> Result<[u8; 32], PairError> {
    let bytes = STANDARD
        .decode(field)
        .map_err(|_| PairError::QrKey { field: name })?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| PairError::QrKey { field: name })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> QrCode {
        QrCode {
            pairing_ref: "2@abc+/=".to_owned(),
            noise_pub: [1; 32],
            identity_pub: [2; 32],
            adv_secret: AdvSecret::from_bytes([3; 32]),
            client_type: Some(ClientType::Chrome),
        }
    }

    #[test]
    fn encode_then_parse_round_trips_both_forms() {
        let qr = sample();
        assert_eq!(QrCode::parse(&qr.encode()).unwrap(), qr);
        let legacy = QrCode::parse(&qr.encode_legacy()).unwrap();
        assert_eq!(legacy.client_type, None);
        assert_eq!(legacy.noise_pub, qr.noise_pub);
    }

    #[test]
    fn accepts_five_fields_without_prefix() {
        let s = sample().encode();
        let bare = s.strip_prefix(QR_PREFIX).unwrap();
        assert_eq!(QrCode::parse(bare).unwrap(), sample());
    }

    #[test]
    fn rejects_wrong_field_count_bad_base64_and_unknown_client_type() {
        assert_eq!(
            QrCode::parse("a,b,c"),
            Err(PairError::QrFieldCount { found: 3 })
        );
        let s = sample().encode();
        let bad_key = s.replacen(",AQEB", ",!QEB", 1);
        assert!(matches!(
            QrCode::parse(&bad_key),
            Err(PairError::QrKey { field: "noise_pub" })
        ));
        let short = format!("{QR_PREFIX}r,AAAA,AAAA,AAAA,1");
        assert!(matches!(
            QrCode::parse(&short),
            Err(PairError::QrKey { .. })
        ));
        let mut unknown = s.clone();
        unknown.pop();
        unknown.push('z');
        assert_eq!(QrCode::parse(&unknown), Err(PairError::QrClientType));
        let empty_ref = s.replacen("2@abc+/=", "", 1);
        assert_eq!(QrCode::parse(&empty_ref), Err(PairError::QrEmptyRef));
    }

    #[test]
    fn debug_redacts_the_adv_secret() {
        let dbg = format!("{:?}", sample());
        assert!(!dbg.contains("0303"), "{dbg}");
        assert!(dbg.contains("redacted"));
    }
}
