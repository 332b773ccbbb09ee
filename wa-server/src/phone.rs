//! Recipients: phone numbers in local or international form, normalised to E.164 digits with
//! a configurable default country code, or JIDs.
//!
//! National numbers are read with the numbering-plan metadata of libphonenumber (the
//! `phonenumber` crate), not with rules of our own. Rules (E.164: at most 15 digits including
//! the country code; we require at least 8):
//! - separators ` `, `-`, `.`, `(`, `)` are ignored;
//! - `+CC...` or `00CC...` is international and kept as written (the sandbox and WhatsApp
//!   accept numbers the metadata does not know, e.g. Mexican `521...` accounts);
//! - a leading `0` (trunk prefix) is local: it is read in the default country, so with `62`
//!   the Indonesian `08123456789` becomes `628123456789`; a local number that is not valid
//!   there is refused;
//! - other digit strings are read both ways when a default country is configured: as a
//!   national number of the default country without its trunk prefix (`8123456789` with `62`
//!   is `628123456789`) and as an international number (`628123456789`). The reading that
//!   the metadata calls valid wins; when both are valid and differ the input is refused as
//!   [`ApiError::AmbiguousPhone`] (never guessed into another country); when neither is,
//!   the digits are taken as international (the documented form of such strings).

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
        } else if cleaned.starts_with('0') {
            let cc = default_cc.ok_or(ApiError::InvalidPhone(
                "local number given but no default country code is configured",
            ))?;
            // The metadata strips the trunk prefix (and, where a country has one, a carrier
            // code); a local number it does not know is refused rather than guessed.
            national_reading(&cleaned, cc).ok_or(ApiError::InvalidPhone(
                "not a valid number in the default country (send it with '+' and the country code)",
            ))?
        } else if let Some(cc) = default_cc {
            let national = national_reading(&cleaned, cc);
            let international = valid_international(&cleaned);
            match (national, international) {
                (Some(n), Some(i)) if n != i => {
                    return Err(ApiError::AmbiguousPhone {
                        national: format!("+{n}"),
                        international: format!("+{i}"),
                    });
                }
                (Some(n), _) => n,
                (None, _) => cleaned,
            }
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

/// `national` (digits, with or without the trunk prefix) read as a number of one of the
/// regions of country code `cc`: its E.164 digits when the metadata says the number is valid
/// there.
fn national_reading(national: &str, cc: &str) -> Option<String> {
    let code: u16 = cc.parse().ok()?;
    let regions = phonenumber::metadata::DATABASE.region(&code)?;
    regions.into_iter().find_map(|region| {
        let id: phonenumber::country::Id = region.parse().ok()?;
        let number = phonenumber::parse(Some(id), national).ok()?;
        (number.code().value() == code && number.is_valid()).then(|| e164_digits(&number))
    })
}

/// `digits` read as an international number (country code first): its E.164 digits when the
/// metadata says it is valid.
fn valid_international(digits: &str) -> Option<String> {
    let number = phonenumber::parse(None, format!("+{digits}")).ok()?;
    number.is_valid().then(|| e164_digits(&number))
}

/// E.164 digits without `+`.
fn e164_digits(number: &phonenumber::PhoneNumber) -> String {
    number
        .format()
        .mode(phonenumber::Mode::E164)
        .to_string()
        .trim_start_matches('+')
        .to_owned()
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

/// A chat as the server's events name it: any JID that parses is taken as it is (group
/// JIDs, LIDs and the other forms that arrive in `message` events, so a client can echo
/// them back), anything else is read by [`parse_recipient`].
///
/// # Errors
/// As [`parse_recipient`].
pub(crate) fn parse_chat(input: &str, default_cc: Option<&str>) -> Result<Jid, ApiError> {
    if input.contains('@')
        && let Ok(jid) = input.parse::<Jid>()
    {
        return Ok(jid);
    }
    parse_recipient(input, default_cc)
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

    /// One row: input, default country code, expected digits (`Ok`) or error code (`Err`).
    type Row = (
        &'static str,
        Option<&'static str>,
        Result<&'static str, &'static str>,
    );

    fn check(rows: &[Row]) {
        for (input, cc, want) in rows {
            let got = PhoneNumber::parse(input, *cc);
            match (want, &got) {
                (Ok(digits), Ok(n)) => assert_eq!(n.digits(), *digits, "{input:?} with {cc:?}"),
                (Err(code), Err(e)) => assert_eq!(e.code(), *code, "{input:?} with {cc:?}: {e}"),
                _ => panic!("{input:?} with {cc:?}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn indonesia_national_numbers_without_the_trunk_zero_stay_in_indonesia() {
        check(&[
            // The reported defect: this became +8123456789 (Japan).
            ("8123456789", Some("62"), Ok("628123456789")),
            ("812-3456-789", Some("62"), Ok("628123456789")),
            ("08123456789", Some("62"), Ok("628123456789")),
            ("081234567890", Some("62"), Ok("6281234567890")),
            ("628123456789", Some("62"), Ok("628123456789")),
            ("+62 812 3456 789", Some("62"), Ok("628123456789")),
            ("21 3456 7890", Some("62"), Ok("622134567890")),
            ("8123456789", None, Ok("8123456789")),
        ]);
    }

    #[test]
    fn brazil_mobile_numbers_with_the_ninth_digit() {
        check(&[
            ("11 91234-5678", Some("55"), Ok("5511912345678")),
            ("(11) 91234-5678", Some("55"), Ok("5511912345678")),
            ("011912345678", Some("55"), Ok("5511912345678")),
            ("5511912345678", Some("55"), Ok("5511912345678")),
            ("+55 11 91234-5678", Some("1"), Ok("5511912345678")),
            ("21 2345-6789", Some("55"), Ok("552123456789")),
        ]);
    }

    #[test]
    fn india_mobile_numbers() {
        check(&[
            ("98765 43210", Some("91"), Ok("919876543210")),
            ("098765 43210", Some("91"), Ok("919876543210")),
            ("+91 98765 43210", Some("62"), Ok("919876543210")),
            ("919876543210", Some("91"), Ok("919876543210")),
        ]);
    }

    #[test]
    fn mexico_numbers_with_and_without_the_one_after_52() {
        check(&[
            ("55 1234 5678", Some("52"), Ok("525512345678")),
            // International forms are kept as written: WhatsApp has `521...` accounts.
            ("+52 1 55 1234 5678", None, Ok("5215512345678")),
            ("+52 55 1234 5678", None, Ok("525512345678")),
            ("525512345678", Some("52"), Ok("525512345678")),
            ("5215512345678", Some("52"), Ok("5215512345678")),
            // The mobile prefix 044 was retired in 2019: refused, not guessed.
            ("044 55 1234 5678", Some("52"), Err("invalid_phone_number")),
        ]);
    }

    #[test]
    fn united_states_numbers() {
        check(&[
            ("(202) 456-1111", Some("1"), Ok("12024561111")),
            ("202-456-1111", Some("1"), Ok("12024561111")),
            ("1 202 456 1111", Some("1"), Ok("12024561111")),
            ("+1 202 456 1111", Some("62"), Ok("12024561111")),
            ("0012024561111", Some("44"), Ok("12024561111")),
        ]);
    }

    #[test]
    fn united_kingdom_numbers() {
        check(&[
            ("07400 123456", Some("44"), Ok("447400123456")),
            ("7400 123456", Some("44"), Ok("447400123456")),
            ("020 7946 0958", Some("44"), Ok("442079460958")),
            ("+44 20 7946 0958", Some("1"), Ok("442079460958")),
            ("447400123456", Some("44"), Ok("447400123456")),
        ]);
    }

    #[test]
    fn ambiguous_digits_are_refused_not_guessed() {
        // Valid as a US national number and as a number in Italy (+39 ...).
        check(&[
            // Semarang (024) without its trunk 0, or Gabon (+241).
            ("2412345678", Some("62"), Err("ambiguous_phone_number")),
            // Florida (321), or Belgium (+32).
            ("321 234 5678", Some("1"), Err("ambiguous_phone_number")),
            // The same digits with the country said explicitly are not ambiguous.
            ("+62 24 1234 5678", Some("62"), Ok("622412345678")),
            ("0241 234 5678", Some("62"), Ok("622412345678")),
            ("+241 234 5678", Some("62"), Ok("2412345678")),
            ("+1 321 234 5678", Some("1"), Ok("13212345678")),
        ]);
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
