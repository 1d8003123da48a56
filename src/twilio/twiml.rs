//! TwiML replies: `<Response><Message>…</Message></Response>`.
//!
//! A reply is what the assistant wants to say; rendering makes it safe for
//! Twilio: XML-escaped through quick-xml, characters XML 1.0 forbids dropped,
//! and text over 1,600 UTF-16 units split on line boundaries into several
//! `<Message>`s. Nothing to say renders as `<Response/>`, never an empty body.

/// WhatsApp's limit for one message body, in UTF-16 units.
pub const MAX_MESSAGE_UNITS: usize = 1600;

/// What to send back: zero or more messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    messages: Vec<String>,
}

impl Reply {
    /// No message at all: Twilio sends nothing and bills nothing.
    pub fn silence() -> Self {
        Reply::default()
    }

    /// One text, split into as many messages as its length needs.
    pub fn text(text: impl Into<String>) -> Self {
        let text = clean(&text.into());
        Reply {
            messages: split_message(&text, MAX_MESSAGE_UNITS),
        }
    }

    pub fn is_silence(&self) -> bool {
        self.messages.is_empty()
    }

    pub fn messages(&self) -> &[String] {
        &self.messages
    }

    /// The TwiML document.
    pub fn to_twiml(&self) -> String {
        if self.messages.is_empty() {
            return r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#.to_owned();
        }
        let mut xml =
            String::with_capacity(self.messages.iter().map(|m| m.len() + 32).sum::<usize>() + 64);
        xml.push_str(r#"<?xml version="1.0" encoding="UTF-8"?><Response>"#);
        for message in &self.messages {
            xml.push_str("<Message>");
            xml.push_str(&quick_xml::escape::escape(message.as_str()));
            xml.push_str("</Message>");
        }
        xml.push_str("</Response>");
        xml
    }
}

/// The texts of the `<Message>`s in a TwiML document, unescaped; what a
/// phone would show as separate bubbles. Malformed XML yields what was read.
pub fn parse_messages(twiml: &str) -> Vec<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(twiml);
    let mut messages: Vec<String> = Vec::new();
    let mut inside = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if e.name().as_ref() == b"Message" => {
                inside = true;
                messages.push(String::new());
            }
            Ok(Event::End(e)) if e.name().as_ref() == b"Message" => inside = false,
            Ok(Event::Text(text)) if inside => {
                if let (Ok(raw), Some(current)) = (text.decode(), messages.last_mut())
                    && let Ok(unescaped) = quick_xml::escape::unescape(&raw)
                {
                    current.push_str(&unescaped);
                }
            }
            Ok(Event::GeneralRef(reference)) if inside => {
                if let (Ok(name), Some(current)) = (reference.decode(), messages.last_mut())
                    && let Ok(unescaped) = quick_xml::escape::unescape(&format!("&{name};"))
                {
                    current.push_str(&unescaped);
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    messages
}

/// Drops characters XML 1.0 cannot carry and trims surrounding blank space.
fn clean(text: &str) -> String {
    text.chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r')
                || matches!(c, '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
        })
        .collect::<String>()
        .trim()
        .to_owned()
}

fn units(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// Splits `text` into pieces of at most `limit` UTF-16 units, preferring line
/// boundaries, then spaces, then any character boundary.
fn split_message(text: &str, limit: usize) -> Vec<String> {
    let mut messages = Vec::new();
    let mut current = String::new();
    let mut current_units = 0;
    let mut flush = |current: &mut String, current_units: &mut usize| {
        let trimmed = current.trim();
        if !trimmed.is_empty() {
            messages.push(trimmed.to_owned());
        }
        current.clear();
        *current_units = 0;
    };
    for line in text.split_inclusive('\n') {
        let line_units = units(line);
        if current_units + line_units <= limit {
            current.push_str(line);
            current_units += line_units;
            continue;
        }
        flush(&mut current, &mut current_units);
        if line_units <= limit {
            current.push_str(line);
            current_units = line_units;
            continue;
        }
        for piece in split_long_line(line, limit) {
            current = piece;
            flush(&mut current, &mut current_units);
        }
    }
    flush(&mut current, &mut current_units);
    messages
}

/// Cuts one over-long line at spaces where it can, else anywhere.
fn split_long_line(line: &str, limit: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = line;
    while units(rest) > limit {
        let mut cut = 0;
        let mut used = 0;
        let mut last_space = None;
        for (i, c) in rest.char_indices() {
            if used + c.len_utf16() > limit {
                break;
            }
            used += c.len_utf16();
            cut = i + c.len_utf8();
            if c == ' ' {
                last_space = Some(cut);
            }
        }
        let cut = last_space.filter(|&s| s > cut / 2).unwrap_or(cut);
        pieces.push(rest[..cut].to_owned());
        rest = &rest[cut..];
    }
    pieces.push(rest.to_owned());
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_lines_within_the_limit() {
        let text = (0..100)
            .map(|i| format!("line {i:03} {}\n", "x".repeat(40)))
            .collect::<String>();
        let reply = Reply::text(text.clone());
        assert!(reply.messages().len() > 1);
        for message in reply.messages() {
            assert!(units(message) <= MAX_MESSAGE_UNITS);
            assert!(
                message.starts_with("line "),
                "split inside a line: {message:.20}"
            );
        }
        let rejoined: String = reply.messages().join("\n");
        assert_eq!(rejoined.replace('\n', ""), text.trim().replace('\n', ""));
    }

    #[test]
    fn counts_emoji_as_two_units() {
        let reply = Reply::text("😀".repeat(1000));
        assert_eq!(reply.messages().len(), 2);
        assert!(
            reply
                .messages()
                .iter()
                .all(|m| units(m) <= MAX_MESSAGE_UNITS)
        );
    }

    #[test]
    fn parses_back_what_it_renders() {
        let text = "*Asha* <&> \"quoted\" 'single' 😀\nline two";
        assert_eq!(parse_messages(&Reply::text(text).to_twiml()), [text]);
        assert!(parse_messages(&Reply::silence().to_twiml()).is_empty());
    }

    #[test]
    fn drops_forbidden_characters_and_never_sends_empty_messages() {
        assert_eq!(Reply::text("a\u{0}b\u{1b}c").messages(), ["abc"]);
        assert!(Reply::text(" \u{7} ").is_silence());
        assert!(Reply::silence().to_twiml().ends_with("<Response/>"));
    }
}
