//! What leaves the machine: a member's message with anything that looks
//! like a phone number or an email address replaced, before it is sent to a
//! chat model or an embeddings server.

/// Fewest digits in a run that counts as a phone number ("+91 98450 00001",
/// "022-2345 6789"); years and ordinals stay.
const PHONE_DIGITS: usize = 7;

/// `text` with phone numbers replaced by `[phone]` and email addresses by
/// `[email]`.
pub fn strip_contacts(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut i = 0;
    while let Some(word) = words.get(i) {
        if word.contains('@') && word.split('@').nth(1).is_some_and(|d| d.contains('.')) {
            out.push("[email]".to_owned());
            i += 1;
            continue;
        }
        // A run of words made of digits and phone punctuation.
        let phoneish = |w: &str| {
            w.chars().any(|c| c.is_ascii_digit())
                && w.chars()
                    .all(|c| c.is_ascii_digit() || "+-().,/:".contains(c))
        };
        let mut j = i;
        let mut digits = 0;
        while let Some(w) = words.get(j).filter(|w| phoneish(w)) {
            digits += w.chars().filter(char::is_ascii_digit).count();
            j += 1;
        }
        if digits >= PHONE_DIGITS {
            out.push("[phone]".to_owned());
            i = j;
            continue;
        }
        // A phone glued to a word: "call9845000001".
        if word.chars().filter(char::is_ascii_digit).count() >= PHONE_DIGITS {
            out.push("[phone]".to_owned());
        } else {
            out.push((*word).to_owned());
        }
        i += 1;
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::strip_contacts;

    #[test]
    fn phones_and_emails_are_replaced() {
        assert_eq!(
            strip_contacts("is +91 98450 00001 a lawyer? mail asha.rao@example.org"),
            "is [phone] a lawyer? mail [email]"
        );
        assert_eq!(strip_contacts("call 022-2345-6789 now"), "call [phone] now");
        assert_eq!(strip_contacts("tel:9845000001"), "[phone]");
        assert_eq!(
            strip_contacts("batch of 2004, the 2nd one"),
            "batch of 2004, the 2nd one"
        );
    }
}
