//! The Twilio wire protocol: the inbound webhook form, its signature, and
//! TwiML replies.
//!
//! Fields are kept in the order and multiplicity Twilio sent them, because
//! the signature covers every field, including ones Twilio adds without
//! notice; only then is the form read into an [`Inbound`] message.

pub(crate) mod outbox;
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
    /// The first attachment's MIME type (`MediaContentType0`), if any.
    pub media_type: Option<String>,
    /// The text of a quick-reply or list answer: `ButtonText`, else
    /// `ButtonPayload`.
    pub button: Option<String>,
    /// A shared location (`Latitude` and `Longitude` both present).
    pub location: Option<Location>,
}

/// A location shared on WhatsApp: its coordinates and, when the member
/// picked a place, its address and name.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    /// `Address`: "80 Feet Road, Koramangala, Bengaluru, Karnataka 560034".
    pub address: Option<String>,
    /// `Label`: the place's name.
    pub label: Option<String>,
}

/// What an inbound message carries, as Roster reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Content<'a> {
    /// Text to read: the body, else a button's text (may be empty).
    Text(&'a str),
    /// A shared location with no text.
    Location(&'a Location),
    /// Attachments with no text: a photo, a voice note, a document; the
    /// first one's MIME type.
    Media(Option<&'a str>),
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
        // A field that is absent, or blank, says nothing.
        let text = |name: &str| {
            field(name)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let coordinate = |name: &str, bound: f64| {
            field(name)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite() && v.abs() <= bound)
        };
        let from = field("From").ok_or(FormError::MissingFrom)?;
        let from = PhoneNumber::parse(from, region).map_err(FormError::BadFrom)?;
        let location = match (coordinate("Latitude", 90.0), coordinate("Longitude", 180.0)) {
            (Some(latitude), Some(longitude)) => Some(Location {
                latitude,
                longitude,
                address: text("Address"),
                label: text("Label"),
            }),
            _ => None,
        };
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
            media_type: text("MediaContentType0"),
            button: text("ButtonText").or_else(|| text("ButtonPayload")),
            location,
        })
    }

    /// What the message carries: text first (a caption is read, not its
    /// photo), then a button's text, then a location, then attachments.
    pub fn content(&self) -> Content<'_> {
        if !self.body.trim().is_empty() {
            return Content::Text(&self.body);
        }
        if let Some(button) = &self.button {
            return Content::Text(button);
        }
        if let Some(location) = &self.location {
            return Content::Location(location);
        }
        if self.num_media > 0 {
            return Content::Media(self.media_type.as_deref());
        }
        Content::Text(&self.body)
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

    fn inbound(extra: &[(&str, &str)]) -> Inbound {
        let mut fields = vec![("From", "whatsapp:+919845000007")];
        fields.extend_from_slice(extra);
        Inbound::from_form(&fields, Region::default()).unwrap()
    }

    #[test]
    fn content_prefers_text_then_buttons_then_places_then_media() {
        let caption = inbound(&[("Body", "doctors"), ("NumMedia", "1")]);
        assert_eq!(caption.content(), Content::Text("doctors"));
        let button = inbound(&[("Body", ""), ("ButtonText", "More"), ("ButtonPayload", "p")]);
        assert_eq!(button.content(), Content::Text("More"));
        let payload = inbound(&[("Body", " "), ("ButtonPayload", "more")]);
        assert_eq!(payload.content(), Content::Text("more"));
        let place = inbound(&[
            ("Latitude", "12.93"),
            ("Longitude", "77.62"),
            ("Address", "Koramangala, Bengaluru"),
        ]);
        assert!(matches!(place.content(), Content::Location(l) if l.label.is_none()));
        let photo = inbound(&[("NumMedia", "1"), ("MediaContentType0", "image/jpeg")]);
        assert_eq!(photo.content(), Content::Media(Some("image/jpeg")));
        let nothing = inbound(&[("Latitude", "91"), ("Longitude", "77")]);
        assert_eq!(nothing.content(), Content::Text(""));
    }

    #[test]
    fn rejects_invalid_utf8() {
        assert_eq!(parse_form(b"Body=%FF%FE"), Err(FormError::NotUtf8));
    }
}
