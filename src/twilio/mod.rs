//! The Twilio wire protocol: the inbound webhook form, its signature, and
//! TwiML replies.
//!
//! Fields are kept in the order and multiplicity Twilio sent them, because
//! the signature covers every field, including ones Twilio adds without
//! notice; only then is the form read into an [`Inbound`] message.

mod signature;
pub mod twiml;

pub use signature::SignatureVerifier;
pub use twiml::Reply;

use std::borrow::Cow;

use percent_encoding::percent_decode;

use crate::phone::{PhoneError, PhoneNumber, Region};

/// Why a webhook body is not a usable Twilio message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("the form is not valid URL-encoded UTF-8 text")]
    NotUtf8,
    #[error("the form has no `From` field")]
    MissingFrom,
    #[error("`From` is not a WhatsApp phone number: {0}")]
    BadFrom(PhoneError),
}

/// The decoded form fields, repeated names included, in the order sent;
/// borrowed from the body where no decoding was needed.
pub type FormFields<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space, `%XX`
/// are UTF-8 bytes); fails on bytes that are not UTF-8 rather than guessing.
pub fn parse_form(body: &[u8]) -> Result<FormFields<'_>, FormError> {
    fn decode(raw: &[u8]) -> Result<Cow<'_, str>, FormError> {
        if !raw.iter().any(|&b| b == b'+' || b == b'%') {
            return std::str::from_utf8(raw)
                .map(Cow::Borrowed)
                .map_err(|_| FormError::NotUtf8);
        }
        let spaced: Vec<u8> = raw
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        let bytes: Vec<u8> = percent_decode(&spaced).collect();
        String::from_utf8(bytes)
            .map(Cow::Owned)
            .map_err(|_| FormError::NotUtf8)
    }
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

/// The fields of an inbound WhatsApp message that Roster acts on.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub from: PhoneNumber,
    /// The message text; empty for media or a location share.
    pub body: String,
    /// Twilio's id for this message; the same on a redelivery.
    pub message_sid: Option<String>,
    pub num_media: u32,
}

impl Inbound {
    pub fn from_form<K: AsRef<str>, V: AsRef<str>>(
        fields: &[(K, V)],
        region: Region,
    ) -> Result<Inbound, FormError> {
        let field = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n.as_ref() == name)
                .map(|(_, v)| v.as_ref())
        };
        let from = field("From").ok_or(FormError::MissingFrom)?;
        let from = PhoneNumber::parse(from, region).map_err(FormError::BadFrom)?;
        Ok(Inbound {
            from,
            body: field("Body").unwrap_or_default().to_owned(),
            message_sid: field("MessageSid")
                .or_else(|| field("SmsMessageSid"))
                .map(str::trim)
                .filter(|sid| !sid.is_empty() && sid.len() <= 64)
                .map(str::to_owned),
            num_media: field("NumMedia")
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent_and_keeps_repeats() {
        let fields = parse_form(b"a=1&b=x+y%26z&a=2&Body=").unwrap();
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(n, v)| (n.as_ref(), v.as_ref()))
            .collect();
        assert_eq!(
            fields,
            [("a", "1"), ("b", "x y&z"), ("a", "2"), ("Body", "")]
        );
    }

    #[test]
    fn rejects_invalid_utf8() {
        assert_eq!(parse_form(b"Body=%FF%FE"), Err(FormError::NotUtf8));
    }
}
