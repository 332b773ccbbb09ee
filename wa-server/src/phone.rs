//! Recipients: phone numbers in local or international form, normalised to E.164 digits with
//! a configurable default country code, or JIDs.
//!
//! Rules (E.164: at most 15 digits including the country code; we require at least 8):
//! - separators ` `, `-`, `.`, `(`, `)` are ignored;
//! - `+CC...` or `00CC...` is international;
//! - a single leading `0` (trunk prefix) is local: it is replaced by the default country
//!   code, so with `62` the Indonesian `08123456789` becomes `628123456789`;
//! - other digit strings are taken as international already (`628123456789`).

use wa_engine::{Jid, Server};

use crate::error::ApiError;

/// Most digits of an E.164 number (ITU-T E.164 §6).
const MAX_DIGITS: usize = 15;
/// Fewest digits we accept (country code + subscriber number); shorter strings are typos.
const MIN_DIGITS: usize = 8;

/// A normalised phone number: E.164 digits without `+`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Normalises `input` (see the module docs) with `default_cc` (digits) for local numbers.
    ///
    /// # Errors
    /// [`ApiError::InvalidPhone`] with the reason.
    pub fn parse(input: &str, default_cc: Option<&str>) -> Result<Self, ApiError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(ApiError::InvalidPhone("empty"));
        }
        let mut cleaned = String::with_capacity(trimmed.len());
        for (i, c) in trimmed.chars().enumerate() {
            match c {
                '0'..='9' => cleaned.push(c),
                '+' if i == 0 => cleaned.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(ApiError::InvalidPhone("only digits, '+' and separators")),
            }
        }
        let digits = if let Some(rest) = cleaned.strip_prefix('+') {
            rest.to_owned()
        } else if let Some(rest) = cleaned.strip_prefix("00") {
            rest.to_owned()
        } else if let Some(rest) = cleaned.strip_prefix('0') {
            let cc = default_cc.ok_or(ApiError::InvalidPhone(
                "local number given but no default country code is configured",
            ))?;
            format!("{cc}{rest}")
        } else {
            cleaned
        };
        if digits.starts_with('0') {
            return Err(ApiError::InvalidPhone("country code cannot start with 0"));
        }
        if digits.len() < MIN_DIGITS {
            return Err(ApiError::InvalidPhone("too short"));
        }
        if digits.len() > MAX_DIGITS {
            return Err(ApiError::InvalidPhone("too long (E.164 allows 15 digits)"));
        }
        Ok(Self(digits))
    }

    /// The digits, e.g. `628123456789`.
    pub fn digits(&self) -> &str {
        &self.0
    }

    /// `+628123456789`.
    pub fn e164(&self) -> String {
        format!("+{}", self.0)
    }

    /// The user JID, `628123456789@s.whatsapp.net`.
    pub fn jid(&self) -> Jid {
        Jid::pn(self.0.clone())
    }
}

/// Checks a default country code: 1-3 digits, not starting with 0 (E.164 §6.2.1).
pub fn valid_country_code(cc: &str) -> bool {
    (1..=3).contains(&cc.len()) && cc.bytes().all(|b| b.is_ascii_digit()) && !cc.starts_with('0')
}

/// A message recipient: a phone number or a JID (`...@s.whatsapp.net`, `...@g.us`,
/// `...@lid`).
///
/// # Errors
/// [`ApiError::InvalidPhone`] for a bad number, [`ApiError::InvalidRecipient`] for a JID that
/// does not parse or is not a user or group.
pub fn parse_recipient(input: &str, default_cc: Option<&str>) -> Result<Jid, ApiError> {
    let input = input.trim();
    if input.contains('@') {
        let jid: Jid = input
            .parse()
            .map_err(|e: wa_engine::JidError| ApiError::InvalidRecipient(e.to_string()))?;
        if jid.user().is_empty() {
            return Err(ApiError::InvalidRecipient("JID without a user".to_owned()));
        }
        return match jid.server() {
            Server::Pn => {
                // Validate the user part as a number too (no device or agent suffixes).
                let number = PhoneNumber::parse(jid.user(), None)?;
                if jid.device() != 0 {
                    return Err(ApiError::InvalidRecipient(
                        "address the user, not one of its devices".to_owned(),
                    ));
                }
                Ok(number.jid())
            }
            Server::Group | Server::Lid => Ok(jid.to_non_ad()),
            _ => Err(ApiError::InvalidRecipient(
                "only user (@s.whatsapp.net, @lid) and group (@g.us) JIDs".to_owned(),
            )),
        };
    }
    Ok(PhoneNumber::parse(input, default_cc)?.jid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indonesian_local_numbers_get_the_default_country_code() {
        let n = PhoneNumber::parse("0812-3456-789", Some("62")).expect("valid");
        assert_eq!(n.digits(), "628123456789");
        assert_eq!(n.e164(), "+628123456789");
        assert_eq!(n.jid().to_string(), "628123456789@s.whatsapp.net");
    }

    #[test]
    fn international_forms_keep_their_country_code() {
        for input in ["+62 812 3456 789", "0062812345 6789", "628123456789"] {
            assert_eq!(
                PhoneNumber::parse(input, Some("1")).expect(input).digits(),
                "628123456789"
            );
        }
    }

    #[test]
    fn rejects_garbage_short_long_and_unconfigured_local_numbers() {
        for (input, cc) in [
            ("", Some("62")),
            ("08abc", Some("62")),
            ("+62+812", Some("62")),
            ("0812", Some("62")),
            ("+1234567890123456", None),
            ("08123456789", None),
            ("+0812345678", None),
        ] {
            assert!(
                matches!(
                    PhoneNumber::parse(input, cc),
                    Err(ApiError::InvalidPhone(_))
                ),
                "{input:?}"
            );
        }
    }

    #[test]
    fn recipients_accept_user_and_group_jids_only() {
        assert_eq!(
            parse_recipient("628123456789@s.whatsapp.net", None)
                .expect("pn")
                .to_string(),
            "628123456789@s.whatsapp.net"
        );
        assert!(parse_recipient("120363025246125888@g.us", None).is_ok());
        assert!(parse_recipient("status@broadcast", None).is_err());
        assert!(parse_recipient("628123456789:3@s.whatsapp.net", None).is_err());
        assert!(parse_recipient("@s.whatsapp.net", None).is_err());
        assert!(parse_recipient("abc@s.whatsapp.net", None).is_err());
    }
}
