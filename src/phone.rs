//! `PhoneNumber`: the one type for a member's WhatsApp number.
//!
//! Every number that enters Roster (the webhook's `From`, a CSV row, an
//! admin path) goes through [`PhoneNumber::parse`], which accepts the common
//! writings (`whatsapp:+91…`, spaces, dashes, the `00` international prefix,
//! a country code without `+`, a national number in the configured default
//! region) and keeps only numbers that libphonenumber's rules (through the
//! `phonenumber` crate) call valid. Once parsed, a number is E.164 digits in a
//! `u64`: cheap to copy, hash and compare on the hot path.
//!
//! Numbers are personal data: log them through [`PhoneNumber::masked`] only.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A valid phone number in E.164 form (`+919840930854`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber {
    /// The E.164 digits without the `+`; at most 15 digits, so they fit.
    digits: u64,
    /// How many leading digits are the country calling code (1 to 3).
    country_code_len: u8,
}

/// The region used for national numbers, e.g. `IN` for `98409 30854`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region(phonenumber::country::Id);

impl Region {
    /// The region's ISO 3166-1 alpha-2 code.
    pub fn code(&self) -> String {
        let code: &str = self.0.as_ref();
        code.to_owned()
    }
}

impl Region {
    /// The region's country calling code, e.g. 91 for IN.
    fn country_code(&self) -> Option<u16> {
        phonenumber::metadata::DATABASE
            .by_id(self.0.as_ref())
            .map(|metadata| metadata.country_code())
    }
}

impl Default for Region {
    fn default() -> Self {
        Region(phonenumber::country::Id::IN)
    }
}

impl FromStr for Region {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        phonenumber::country::Id::from_str(&s.trim().to_ascii_uppercase())
            .map(Region)
            .map_err(|_| {
                format!("`{s}` is not an ISO 3166-1 alpha-2 region code such as IN, US or GB")
            })
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code())
    }
}

impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Region {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.code())
    }
}

/// Why a text is not a phone number.
///
/// Errors are logged and sent back to clients, so they never hold the input:
/// only what [`describe_input`] shows of it (digit count, last two digits).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("the phone number is empty")]
    Empty,
    #[error(
        "not a phone number ({0}): only digits, spaces, `+`, `-`, `.` and brackets are allowed"
    )]
    NotANumber(String),
    #[error("not a valid phone number ({0})")]
    Invalid(String),
}

impl PhoneNumber {
    /// Parses any common writing of a number; national numbers take `region`.
    pub fn parse(input: &str, region: Region) -> Result<Self, PhoneError> {
        let text = strip_channel_prefix(input.trim()).trim();
        if text.is_empty() {
            return Err(PhoneError::Empty);
        }
        if let Some(number) = Self::parse_canonical(text) {
            return Ok(number);
        }
        if !text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '.' | '(' | ')' | '/'))
        {
            return Err(PhoneError::NotANumber(describe_input(input)));
        }
        // `00` is the international prefix nearly everywhere; libphonenumber
        // only knows it as such for some regions, so say what it means.
        let text = match text.strip_prefix("00") {
            Some(rest) => format!("+{rest}"),
            None => text.to_owned(),
        };
        let parsed = phonenumber::parse(Some(region.0), &text)
            .ok()
            .filter(phonenumber::is_valid)
            .or_else(|| {
                // Digits only: a national number libphonenumber misread as
                // starting with the country code (`9150343508` in IN), or
                // a country code written without its `+` (`919840930854`).
                let digits: String = text.chars().filter(char::is_ascii_digit).collect();
                if text.starts_with('+') || digits.starts_with('0') {
                    return None;
                }
                let national = region
                    .country_code()
                    .and_then(|cc| phonenumber::parse(None, format!("+{cc}{digits}")).ok());
                national
                    .into_iter()
                    .chain(phonenumber::parse(None, format!("+{digits}")).ok())
                    .find(phonenumber::is_valid)
            })
            .ok_or_else(|| PhoneError::Invalid(describe_input(input)))?;
        let country_code = parsed.code().value();
        let e164 = format!("{}{}", country_code, parsed.national());
        Self::from_digits(&e164, digit_count(u64::from(country_code)))
            .ok_or_else(|| PhoneError::Invalid(describe_input(input)))
    }

    /// The fast path for text already in E.164 form and valid.
    ///
    /// Twilio always sends `whatsapp:+<E.164>`; checking validity still needs
    /// libphonenumber, but the work is skipped for numbers seen before by the
    /// caller (see `Directory::member_by_e164`).
    fn parse_canonical(text: &str) -> Option<Self> {
        let digits = text.strip_prefix('+')?;
        if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let value: u64 = digits.parse().ok()?;
        if let Some(number) = KNOWN_VALID.get(value) {
            return Some(number);
        }
        let parsed = phonenumber::parse(None, text).ok()?;
        if !phonenumber::is_valid(&parsed) {
            return None;
        }
        let country_code = parsed.code().value();
        let national = parsed.national().to_string();
        // Only accept when libphonenumber reads the same digits back.
        if format!("{country_code}{national}") != digits {
            return None;
        }
        let number = Self::from_digits(digits, digit_count(u64::from(country_code)))?;
        KNOWN_VALID.remember(number);
        Some(number)
    }

    fn from_digits(digits: &str, country_code_len: u8) -> Option<Self> {
        if digits.len() > 15 {
            return None;
        }
        Some(PhoneNumber {
            digits: digits.parse().ok()?,
            country_code_len,
        })
    }

    /// The number for logs: country code and last four digits (`+91******0854`);
    /// never more than half of the national number, so a short one (Niue's
    /// `+683 4002`) is not shown whole.
    pub fn masked(&self) -> String {
        let digits = self.digits.to_string();
        let keep_head = usize::from(self.country_code_len).min(digits.len());
        let keep_tail = 4.min(digits.len().saturating_sub(keep_head) / 2);
        let hidden = digits.len() - keep_head - keep_tail;
        format!(
            "+{}{}{}",
            &digits[..keep_head],
            "*".repeat(hidden),
            &digits[digits.len() - keep_tail..]
        )
    }

    /// The E.164 text, e.g. `+919840930854`.
    pub fn e164(&self) -> String {
        self.to_string()
    }

    /// The WhatsApp address Twilio uses, e.g. `whatsapp:+919840930854`.
    pub fn whatsapp_address(&self) -> String {
        format!("whatsapp:{self}")
    }

    /// Parses text that is exactly `+<digits>` as produced by `Display`,
    /// without validation: for keys Roster wrote itself.
    pub fn from_stored(text: &str) -> Option<Self> {
        let digits = text.strip_prefix('+')?;
        if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Every session read decodes its phone: skip the metadata lookup
        // (which allocates) for numbers seen before.
        if let Some(known) = digits.parse().ok().and_then(|value| KNOWN_VALID.get(value)) {
            return Some(known);
        }
        let country_code_len = country_code_len_of(digits)?;
        Self::from_digits(digits, country_code_len)
    }
}

/// Numbers already found valid in E.164 form. Validation runs
/// libphonenumber's regular expressions, the costliest step of a webhook,
/// and Twilio sends the same few thousand senders again and again; the
/// answer for a number never changes, so it is remembered (bounded).
static KNOWN_VALID: ValidCache = ValidCache::new();

struct ValidCache {
    numbers: std::sync::RwLock<Option<std::collections::HashMap<u64, u8>>>,
}

impl ValidCache {
    const LIMIT: usize = 200_000;

    const fn new() -> ValidCache {
        ValidCache {
            numbers: std::sync::RwLock::new(None),
        }
    }

    fn get(&self, digits: u64) -> Option<PhoneNumber> {
        let numbers = self.numbers.read().unwrap_or_else(|p| p.into_inner());
        let country_code_len = *numbers.as_ref()?.get(&digits)?;
        Some(PhoneNumber {
            digits,
            country_code_len,
        })
    }

    fn remember(&self, number: PhoneNumber) {
        let mut numbers = self.numbers.write().unwrap_or_else(|p| p.into_inner());
        let map = numbers.get_or_insert_with(std::collections::HashMap::new);
        if map.len() >= Self::LIMIT {
            // Rare and cheap to rebuild: start over rather than track age.
            map.clear();
        }
        map.insert(number.digits, number.country_code_len);
    }
}

/// The length of the country calling code at the start of E.164 digits.
fn country_code_len_of(digits: &str) -> Option<u8> {
    (1..=3u8).find(|&len| {
        digits
            .get(..usize::from(len))
            .and_then(|code| code.parse::<u16>().ok())
            .is_some_and(|code| phonenumber::metadata::DATABASE.by_code(&code).is_some())
    })
}

fn digit_count(mut value: u64) -> u8 {
    let mut count = 1;
    while value >= 10 {
        value /= 10;
        count += 1;
    }
    count
}

fn strip_channel_prefix(text: &str) -> &str {
    match text.get(..9) {
        Some(prefix) if prefix.eq_ignore_ascii_case("whatsapp:") => &text[9..],
        _ => text,
    }
}

/// What an error may say about bad input that could be a phone number:
/// how many digits it has and the last two (`12 digits, ending …54`), never
/// more, since the input is personal data.
fn describe_input(input: &str) -> String {
    let digits: Vec<char> = input.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(2)..].iter().collect();
    match digits.len() {
        0 => "no digits".to_owned(),
        1 => format!("1 digit, ending …{tail}"),
        count => format!("{count} digits, ending …{tail}"),
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", self.digits)
    }
}

/// Debug output is masked too, so a `{:?}` in a log never leaks a number.
impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl Serialize for PhoneNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PhoneNumber::from_stored(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "stored phone number ({}) is not an E.164 number",
                describe_input(&text)
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_all_but_country_code_and_last_four() {
        let phone = PhoneNumber::parse("+919840930854", Region::default()).unwrap();
        assert_eq!(phone.masked(), "+91******0854");
        let us = PhoneNumber::parse("+1 415 523 8886", Region::default()).unwrap();
        assert_eq!(us.masked(), "+1******8886");
    }

    #[test]
    fn a_short_number_is_never_shown_whole() {
        // Found by the fault suite (tests/it/faults.rs): a valid number with a
        // national part of four digits was masked as itself.
        let niue = PhoneNumber::parse("+683 4002", Region::default()).unwrap();
        assert_eq!(niue.masked(), "+683**02");
        let short = PhoneNumber::parse("+6834002", Region::default()).unwrap();
        assert!(!short.masked().contains("4002"), "{}", short.masked());
    }

    #[test]
    fn errors_show_at_most_the_last_two_digits() {
        let india = Region::default();
        let message = |input: &str| PhoneNumber::parse(input, india).unwrap_err().to_string();
        let invalid = message("+91 98409 308");
        assert_eq!(invalid, "not a valid phone number (10 digits, ending …08)");
        assert!(!invalid.contains("9840"), "{invalid}");
        let not_a_number = message("+91 98409 30854 ext");
        assert!(
            not_a_number.starts_with("not a phone number (12 digits, ending …54)"),
            "{not_a_number}"
        );
        assert!(!not_a_number.contains("9840"), "{not_a_number}");
        assert!(message("call me").starts_with("not a phone number (no digits)"));
        assert_eq!(describe_input("+7"), "1 digit, ending …7");
    }

    #[test]
    fn stored_form_errors_are_masked() {
        let error = serde_json::from_str::<PhoneNumber>("\"+999840930854\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("(12 digits, ending …54)"), "{error}");
        assert!(!error.contains("9840"), "{error}");
    }

    #[test]
    fn stored_form_round_trips() {
        let phone = PhoneNumber::parse("+44 20 7946 0958", Region::default()).unwrap();
        assert_eq!(PhoneNumber::from_stored(&phone.e164()), Some(phone));
    }
}
