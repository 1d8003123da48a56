//! Text normalisation shared by the vocabulary, the indexes and the reading
//! of messages, so that both sides of every comparison are cut the same way.
//!
//! A text becomes lower-case words of letters and digits (Latin accents
//! folded, Indic scripts kept whole with their vowel signs); everything else
//! (punctuation, emoji, control characters) separates words. Messages are
//! capped at [`MAX_WORDS`] words of at most [`MAX_WORD_CHARS`] characters, so
//! a 4,000-character message costs no more than a short one.

/// Words of a message looked at; the rest is ignored.
pub(crate) const MAX_WORDS: usize = 64;
/// Longer "words" are cut here (they are never vocabulary).
pub(crate) const MAX_WORD_CHARS: usize = 40;

/// One word of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    pub text: String,
    /// Written right after an apostrophe, as in "batch of '95".
    pub after_apostrophe: bool,
    /// Written right after a minus sign, as in "-1".
    pub after_minus: bool,
}

/// The words of a member's message, capped at [`MAX_WORDS`].
pub(crate) fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    let (mut after_apostrophe, mut after_minus) = (false, false);
    let mut previous = ' ';
    let (mut pending_apostrophe, mut pending_minus) = (false, false);
    for c in text.chars() {
        if out.len() >= MAX_WORDS {
            break;
        }
        if is_joiner(c) {
            continue;
        }
        if is_word_char(c) {
            if current.is_empty() {
                after_apostrophe = pending_apostrophe;
                after_minus = pending_minus;
            }
            if current_len < MAX_WORD_CHARS {
                push_folded(&mut current, c);
                current_len += 1;
            }
        } else {
            if !current.is_empty() {
                out.push(Word {
                    text: std::mem::take(&mut current),
                    after_apostrophe,
                    after_minus,
                });
                current_len = 0;
            }
            pending_apostrophe = is_apostrophe(c) && !is_word_char(previous);
            pending_minus = c == '-' && !is_word_char(previous);
        }
        previous = c;
    }
    if !current.is_empty() && out.len() < MAX_WORDS {
        out.push(Word {
            text: current,
            after_apostrophe,
            after_minus,
        });
    }
    out
}

/// The normalised key of a directory value or vocabulary term: its words
/// joined by single spaces ("T. Nagar" → "t nagar", "B.E" → "b e").
pub(crate) fn key(text: &str) -> String {
    words(text)
        .into_iter()
        .map(|w| w.text)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `c` belongs inside a word.
fn is_word_char(c: char) -> bool {
    // Indic vowel signs and viramas are marks, not letters, yet belong to
    // the word ("डॉक्टर" is one word); dandas (U+0964, U+0965) end it.
    c.is_alphanumeric()
        || (('\u{0900}'..='\u{0DFF}').contains(&c) && !matches!(c, '\u{0964}' | '\u{0965}'))
}

/// Zero-width (non-)joiners and soft hyphens sit inside words: drop them.
fn is_joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}' | '\u{00AD}')
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '`')
}

/// Lower-cases `c` and folds Latin accents ("Bengalūru" → "bengaluru").
fn push_folded(out: &mut String, c: char) {
    for lower in c.to_lowercase() {
        out.push(fold_accent(lower));
    }
}

fn fold_accent(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'č' => 'c',
        'ḍ' | 'ď' => 'd',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => 'e',
        'ḥ' => 'h',
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' => 'i',
        'ḷ' | 'ł' => 'l',
        'ṁ' | 'ṃ' => 'm',
        'ñ' | 'ṅ' | 'ṇ' | 'ń' | 'ň' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => 'o',
        'ṛ' | 'ṝ' | 'ř' => 'r',
        'ś' | 'ṣ' | 'š' => 's',
        'ṭ' | 'ť' => 't',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' => 'u',
        'ý' | 'ÿ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        other => other,
    }
}

/// Other grammatical numbers of an English word: "doctor" → "doctors",
/// "company" → "companies", "kitchens" → "kitchen", "classes" → "class".
/// Words that are not plain ASCII letters get none.
pub(crate) fn inflections(word: &str) -> Vec<String> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_lowercase()) {
        return Vec::new();
    }
    let mut out = Vec::new();
    // Plural of a singular.
    if let Some(stem) = word.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
        && stem.len() >= 2
    {
        out.push(format!("{stem}ies"));
    } else if word.ends_with(['s', 'x', 'z']) || word.ends_with("ch") || word.ends_with("sh") {
        out.push(format!("{word}es"));
    }
    if !word.ends_with('s') || word.len() <= 3 {
        out.push(format!("{word}s"));
    }
    // Singular of a plural.
    if word.len() > 3 {
        if let Some(stem) = word.strip_suffix("ies") {
            out.push(format!("{stem}y"));
        } else if let Some(stem) = word.strip_suffix("es") {
            out.push(stem.to_owned());
            out.push(format!("{stem}e"));
        } else if let Some(stem) = word.strip_suffix('s')
            && !stem.ends_with('s')
        {
            out.push(stem.to_owned());
        }
    }
    out.retain(|w| w != word);
    out.dedup();
    out
}

/// `word` with letters repeated for emphasis cut down ("pleaseee" →
/// "please", "hiiii" → "hi"): runs of three or more become one, and also
/// two ("gooood" → "good"). Empty if there is no such run.
pub(crate) fn squeezed(word: &str) -> Vec<String> {
    let mut runs: Vec<(char, usize)> = Vec::new();
    for c in word.chars() {
        match runs.last_mut() {
            Some((last, n)) if *last == c => *n += 1,
            _ => runs.push((c, 1)),
        }
    }
    if !runs.iter().any(|&(_, n)| n >= 3) {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    for keep in [1, 2] {
        let s: String = runs
            .iter()
            .flat_map(|&(c, n)| std::iter::repeat_n(c, if n >= 3 { keep } else { n }))
            .collect();
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// A sound-alike key for names written in Latin script, so that common
/// transliteration variants meet: "Lakshmi"/"Laxmi", "Shruthi"/"Sruti",
/// "Swathi"/"Swati", "Deepa"/"Dipa".
pub(crate) fn sound_key(word: &str) -> String {
    let mut s = word.to_owned();
    for (from, to) in [
        ("ksh", "x"),
        ("ks", "x"),
        ("sh", "s"),
        ("th", "t"),
        ("dh", "d"),
        ("bh", "b"),
        ("kh", "k"),
        ("gh", "g"),
        ("ph", "f"),
        ("ch", "c"),
        ("jh", "j"),
        ("ck", "k"),
        ("ee", "i"),
        ("oo", "u"),
        ("ou", "u"),
        ("w", "v"),
        ("z", "j"),
        ("q", "k"),
        ("y", "i"),
    ] {
        if s.contains(from) {
            s = s.replace(from, to);
        }
    }
    let mut out = String::with_capacity(s.len());
    let mut last = None;
    for c in s.chars() {
        if Some(c) != last {
            out.push(c);
        }
        last = Some(c);
    }
    if out.len() > 3 && out.ends_with('h') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<String> {
        words(text).into_iter().map(|w| w.text).collect()
    }

    #[test]
    fn words_are_lower_case_letters_and_digits() {
        assert_eq!(
            texts("Hi!! Can you find me DOCTORS in Bengalūru? 🙏"),
            [
                "hi",
                "can",
                "you",
                "find",
                "me",
                "doctors",
                "in",
                "bengaluru"
            ]
        );
        assert_eq!(texts("T. Nagar"), ["t", "nagar"]);
        assert_eq!(key("  B.E "), "b e");
        assert!(texts("🙂🙂 \u{0007}\u{0000}").is_empty());
    }

    #[test]
    fn indic_words_stay_whole() {
        assert_eq!(texts("डॉक्टर चाहिए।"), ["डॉक्टर", "चाहिए"]);
        assert_eq!(texts("வணக்கம்"), ["வணக்கம்"]);
    }

    #[test]
    fn apostrophe_years_are_marked() {
        let w = words("batch of '95 and Priya's");
        assert_eq!(w[2].text, "95");
        assert!(w[2].after_apostrophe);
        assert_eq!(w[5].text, "s");
        assert!(!w[5].after_apostrophe, "a possessive is not a year");
        assert!(words("-1")[0].after_minus);
        assert!(
            !words("co-founder")[1].after_minus,
            "a hyphen is not a minus"
        );
    }

    #[test]
    fn long_messages_are_capped() {
        let long = "word ".repeat(1000);
        assert_eq!(words(&long).len(), MAX_WORDS);
        let one = "x".repeat(4000);
        assert_eq!(words(&one)[0].text.chars().count(), MAX_WORD_CHARS);
    }

    #[test]
    fn inflections_go_both_ways() {
        assert!(inflections("doctor").contains(&"doctors".to_owned()));
        assert!(inflections("company").contains(&"companies".to_owned()));
        assert!(inflections("kitchens").contains(&"kitchen".to_owned()));
        assert!(inflections("classes").contains(&"class".to_owned()));
        assert!(inflections("sarees").contains(&"saree".to_owned()));
        assert!(inflections("ca").contains(&"cas".to_owned()));
        assert!(inflections("डॉक्टर").is_empty());
    }

    #[test]
    fn repeated_letters_are_squeezed() {
        assert_eq!(squeezed("pleaseee"), ["please", "pleasee"]);
        assert_eq!(squeezed("gooood"), ["god", "good"]);
        assert!(squeezed("doctor").is_empty());
    }

    #[test]
    fn sound_keys_meet_for_transliterations() {
        assert_eq!(sound_key("lakshmi"), sound_key("laxmi"));
        assert_eq!(sound_key("shruthi"), sound_key("sruti"));
        assert_eq!(sound_key("swathi"), sound_key("swati"));
        assert_eq!(sound_key("deepa"), sound_key("dipa"));
        assert_ne!(sound_key("priya"), sound_key("pooja"));
    }
}
