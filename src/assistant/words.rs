//! The conversational words of the assistant's grammar: filler that carries
//! no meaning for a search, the words that steer the conversation (greeting,
//! help, thanks, more, contact, details), ordinals, and the cues that pick
//! between readings (a service or a skill, a profession or a branch, a
//! refinement or a new search).
//!
//! Directory words (professions, cities, ...) are not here: they come from
//! the directory and the synonyms table (see [`super::vocabulary`]).

use std::collections::HashSet;
use std::sync::LazyLock;

/// What a conversational word does in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// No meaning for a search ("please", "find", "in").
    Filler,
    Greeting,
    Help,
    Thanks,
    More,
    Contact,
    Details,
    /// "first" … "tenth", "1st" … "10th": a position in the list shown.
    Ordinal(u32),
    /// "two" … "ten": a position when the message is short.
    Cardinal(u32),
    /// "last": the last result shown.
    Last,
}

/// Multi-word phrases that steer the conversation, matched like vocabulary.
pub(crate) const COMMAND_PHRASES: &[(&str, Role)] = &[
    ("thank you", Role::Thanks),
    ("thanks a lot", Role::Thanks),
    ("good morning", Role::Greeting),
    ("good afternoon", Role::Greeting),
    ("good evening", Role::Greeting),
    ("what can you do", Role::Help),
    ("what do you do", Role::Help),
    ("how does this work", Role::Help),
    ("how does it work", Role::Help),
    ("how to use", Role::Help),
    ("how do i use this", Role::Help),
    ("next page", Role::More),
    ("show more", Role::More),
    ("more results", Role::More),
    ("see more", Role::More),
    ("aur batao", Role::More),
    ("aur dikhao", Role::More),
    ("contact details", Role::Contact),
    ("contact info", Role::Contact),
    ("phone number", Role::Contact),
    ("phone numbers", Role::Contact),
    ("mobile number", Role::Contact),
    ("mobile numbers", Role::Contact),
    ("email id", Role::Contact),
    ("email address", Role::Contact),
    ("mobile no", Role::Contact),
    ("mob no", Role::Contact),
    ("phone no", Role::Contact),
    ("ph no", Role::Contact),
    ("contact no", Role::Contact),
    ("contact number", Role::Contact),
    ("cell number", Role::Contact),
    ("cell no", Role::Contact),
    ("whatsapp number", Role::Contact),
    ("whatsapp no", Role::Contact),
    ("number of", Role::Contact),
    ("how do i reach", Role::Contact),
    ("how to reach", Role::Contact),
    ("get in touch", Role::Contact),
    ("ka number", Role::Contact),
    ("ki number", Role::Contact),
    ("ke number", Role::Contact),
    ("ka contact", Role::Contact),
    ("number do", Role::Contact),
    ("kem cho", Role::Greeting),
    ("kaise ho", Role::Greeting),
];

/// Phrases that lift a location constraint: "lawyers in all cities".
#[rustfmt::skip]
pub(crate) const ANY_LOCATION_PHRASES: &[&str] = &[
    "all cities", "any city", "every city", "all locations", "any location", "anywhere",
    "everywhere", "all over", "all over india", "across india", "across cities",
];

/// The role of a single conversational word, if it has one.
pub(crate) fn role(word: &str) -> Option<Role> {
    Some(match word {
        "hi"
        | "hii"
        | "hiii"
        | "hiiii"
        | "hello"
        | "helo"
        | "hey"
        | "heya"
        | "hola"
        | "namaste"
        | "namaskar"
        | "namaskaram"
        | "vanakkam"
        | "salaam"
        | "salam"
        | "yo"
        | "morning"
        | "evening"
        | "afternoon"
        | "gm"
        | "नमस्ते"
        | "नमस्कार"
        | "प्रणाम" => Role::Greeting,
        "help" | "menu" | "options" | "commands" | "start" | "examples" | "example"
        | "instructions" | "usage" => Role::Help,
        "thanks"
        | "thank"
        | "thanku"
        | "thankyou"
        | "thnx"
        | "thanx"
        | "thx"
        | "ty"
        | "tq"
        | "tysm"
        | "dhanyavad"
        | "dhanyavaad"
        | "shukriya"
        | "nandri"
        | "cheers"
        | "great"
        | "awesome"
        | "perfect"
        | "cool"
        | "ok"
        | "okay"
        | "okk"
        | "k"
        | "noted"
        | "nice"
        | "super"
        | "wonderful"
        | "excellent"
        | "bye"
        | "goodbye"
        | "धन्यवाद"
        | "शुक्रिया" => Role::Thanks,
        "more" | "next" | "nxt" | "further" | "continue" | "aur" => Role::More,
        "contact" | "contacts" | "phone" | "phones" | "numbers" | "mobile" | "mobiles"
        | "email" | "emails" | "mail" | "mails" | "reach" | "call" | "whatsapp" | "mob" => {
            Role::Contact
        }
        "details" | "detail" | "profile" | "profiles" | "info" | "information" | "about"
        | "bio" => Role::Details,
        "first" | "1st" => Role::Ordinal(1),
        "second" | "2nd" => Role::Ordinal(2),
        "third" | "3rd" => Role::Ordinal(3),
        "fourth" | "4th" => Role::Ordinal(4),
        "fifth" | "5th" => Role::Ordinal(5),
        "sixth" | "6th" => Role::Ordinal(6),
        "seventh" | "7th" => Role::Ordinal(7),
        "eighth" | "8th" => Role::Ordinal(8),
        "ninth" | "9th" => Role::Ordinal(9),
        "tenth" | "10th" => Role::Ordinal(10),
        "two" => Role::Cardinal(2),
        "three" => Role::Cardinal(3),
        "four" => Role::Cardinal(4),
        "five" => Role::Cardinal(5),
        "last" => Role::Last,
        _ if is_filler(word) => Role::Filler,
        _ => return None,
    })
}

/// Words that carry no meaning for a search.
#[rustfmt::skip]
const FILLER: &[&str] = &[
    "a", "an", "the", "me", "my", "mine", "i", "im", "m", "s", "we", "us", "our", "you", "your",
    "u", "ur", "pls", "plz", "please", "kindly", "can", "could", "would", "will", "shall",
    "should", "may", "might", "must", "do", "does", "did", "done", "be", "been", "being", "am",
    "is", "are", "was", "were", "has", "have", "had", "having", "get", "got", "give", "gimme",
    "find", "finding", "search", "searching", "look", "looking", "lookup", "show", "list",
    "need", "needed", "want", "wanted", "wanna", "require", "required", "requirement", "tell",
    "let", "know", "knows", "knowing", "knowledge", "any", "anyone", "anybody", "some",
    "someone", "somebody", "all", "every", "everyone", "everybody", "who", "whom", "whose",
    "which", "what", "whats", "where", "when", "how", "why", "there", "here", "this", "that",
    "these", "those", "them", "they", "their", "theirs", "he", "she", "him", "her", "his",
    "hers", "it", "its", "of", "to", "for", "from", "in", "into", "at", "on", "by", "with",
    "within", "without", "near", "nearby", "around", "based", "located", "living", "lives",
    "live", "stays", "staying", "residing", "and", "or", "but", "also", "too", "only", "just",
    "even", "very", "really", "good", "best", "top", "reliable", "trusted", "experienced",
    "experience", "expert", "experts", "expertise", "professional", "professionals",
    "specialist", "specialists", "people", "person", "persons", "folks", "guys", "guy",
    "member", "members", "network", "directory", "group", "community", "alumni", "alumnus",
    "alumna", "hmm", "um", "uh", "yes", "yeah", "yep", "not", "sure", "actually", "basically",
    "sir", "madam", "mam", "maam", "ji", "bhai", "bro", "dear", "etc", "something", "anything",
    "thing", "things", "one", "ones", "other", "others", "another", "else", "same", "such",
    "like", "works", "work", "working", "worked", "practising", "practicing", "practice",
    "practise", "doing", "available", "currently", "current", "now", "today", "new", "years",
    "yrs", "area", "areas", "city", "cities", "town", "place", "locality", "side", "region",
    "india", "indian", "speak", "speaks", "speaking", "fluent", "skilled", "skill", "skills",
    "named", "name", "called", "offer", "offers", "offering", "offered", "provide", "provides",
    "providing", "provider", "providers", "service", "services", "company", "companies", "firm",
    "firms", "business", "businesses", "agency", "agencies", "vendor", "vendors", "shop",
    "shops", "sell", "sells", "selling", "seller", "sellers", "supplier", "suppliers", "batch",
    "batches", "passout", "passouts", "passedout", "passed", "pass", "out", "graduated",
    "graduate", "graduates", "grads", "grad", "class", "year", "yr", "degree", "degrees",
    "holders", "holder", "studied", "stream", "engineering", "matching", "match", "again", "if",
    "then", "than", "so", "as", "up", "no", "number", "specialising", "specializing",
    "specialised", "specialized", "specialization", "specialisation", "field", "domain",
    "similar", "employed", "employees", "employee", "staff", "team", "whole", "entire", "full",
    "complete", "total", "kind", "type", "sort", "tho", "though", "maybe", "perhaps", "urgent",
    "urgently", "asap", "immediately", "quick", "quickly", "recommend", "recommendation",
    "recommendations", "suggest", "suggestion", "connect", "introduce", "intro", "meet", "talk",
    "branch", "branches", "batchmate", "batchmates", "classmate", "classmates", "startup",
    "startups", "language", "languages", "speaker", "speakers", "senior", "seniors", "junior",
    "juniors", "share", "send", "forward", "text", "message", "msg", "dm",
];

/// The filler words as a set: looked up for every word of every message.
static FILLER_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| FILLER.iter().copied().collect());

/// Words that carry no meaning for a search.
pub(crate) fn is_filler(word: &str) -> bool {
    FILLER_SET.contains(word)
}

/// See [`is_language_cue`].
#[rustfmt::skip]
const LANGUAGE_CUES: &[&str] = &[
    "speak", "speaks", "speaking", "speaker", "speakers", "fluent", "language", "languages",
    "tongue",
];

/// Words that make the next language name a language, not a subject:
/// "who speaks English" is not "English teachers".
pub(crate) fn is_language_cue(word: &str) -> bool {
    LANGUAGE_CUES.contains(&word)
}

/// See [`is_service_cue`].
#[rustfmt::skip]
const SERVICE_CUES: &[&str] = &[
    "offer", "offers", "offering", "offered", "provide", "provides", "providing", "provider",
    "providers", "service", "services", "company", "companies", "firm", "firms", "business",
    "businesses", "agency", "agencies", "vendor", "vendors", "shop", "shops", "sell", "sells",
    "selling", "seller", "sellers", "supplier", "suppliers", "startup", "startups",
];

/// Words that mark a business offering: "who offers", "companies".
pub(crate) fn is_service_cue(word: &str) -> bool {
    SERVICE_CUES.contains(&word)
}

/// See [`is_alumni_cue`].
#[rustfmt::skip]
const ALUMNI_CUES: &[&str] = &[
    "batch", "batches", "batchmate", "batchmates", "passout", "passouts", "passedout", "passed",
    "graduated", "graduate", "graduates", "grads", "grad", "alumni", "alumnus", "class",
    "classmates", "classmate", "degree", "degrees", "holders", "studied", "branch", "stream",
    "engineering", "year", "yr",
];

/// Words that place a question among alumni: batch, passout, graduates.
pub(crate) fn is_alumni_cue(word: &str) -> bool {
    ALUMNI_CUES.contains(&word)
}

/// See [`is_own_batch_word`].
const OWN_BATCH_WORDS: &[&str] = &["batchmate", "batchmates", "classmate", "classmates"];

/// Words for "people of my own batch".
pub(crate) fn is_own_batch_word(word: &str) -> bool {
    OWN_BATCH_WORDS.contains(&word)
}

/// See [`is_fresh_search_cue`].
#[rustfmt::skip]
const FRESH_SEARCH_CUES: &[&str] = &[
    "find", "search", "list", "show", "members", "everyone", "everybody", "anyone", "anybody",
    "someone", "somebody", "people", "alumni", "who", "need", "looking", "any1", "koi",
];

/// Words that ask a question of their own even when only a place or a
/// batch is named: "anyone from the 1994 batch in Mumbai?" is a new search,
/// where a bare "in Koramangala" adjusts the last one.
pub(crate) fn is_fresh_search_cue(word: &str) -> bool {
    FRESH_SEARCH_CUES.contains(&word)
}

/// See [`is_search_verb`].
#[rustfmt::skip]
const SEARCH_VERBS: &[&str] = &[
    "find", "search", "need", "needed", "looking", "want", "any", "anyone", "anybody",
    "someone", "somebody", "who", "list", "show", "get", "recommend", "suggest", "any1",
    "some1", "koi", "chahiye", "chahie", "chaiye", "batao",
];

/// Words that ask for someone: an unknown role after them is searched for.
pub(crate) fn is_search_verb(word: &str) -> bool {
    SEARCH_VERBS.contains(&word)
}

/// See [`is_refine_cue`].
#[rustfmt::skip]
const REFINE_CUES: &[&str] = &[
    "only", "just", "those", "them", "these", "ones", "among", "filter", "narrow", "instead",
    "also", "same",
];

/// Words that narrow or adjust the last search wherever they stand:
/// "only cardiologists", "those in Koramangala".
pub(crate) fn is_refine_cue(word: &str) -> bool {
    REFINE_CUES.contains(&word)
}

/// Words that make a refinement when they open the message: "and in Pune?".
pub(crate) fn is_leading_refine_cue(word: &str) -> bool {
    matches!(word, "and" | "but" | "now" | "wbu")
}

/// Unknown words shaped like a role ("plumbers", "dietician"): searched
/// for, so that the reply says none was found rather than listing others.
pub(crate) fn looks_like_a_role(word: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        "er", "ers", "or", "ors", "ist", "ists", "ian", "ians", "ant", "ants", "ent", "ents",
    ];
    // The longest English role words are about 25 letters; a longer "word"
    // is noise, and would be carried in the session as a keyword.
    (5..=30).contains(&word.len())
        && word.bytes().all(|b| b.is_ascii_lowercase())
        && SUFFIXES.iter().any(|s| word.ends_with(s))
        && !NOT_ROLES.contains(&word)
}

/// Words shaped like a role that are not one.
#[rustfmt::skip]
const NOT_ROLES: &[&str] = &[
    "other", "others", "either", "neither", "never", "under", "after", "better", "rather",
    "whether", "together", "however", "whatever", "wherever", "whoever", "number", "numbers",
    "similar", "senior", "seniors", "junior", "juniors", "major", "popular", "regular", "prior",
    "urgent", "recent", "present", "current", "different", "important", "want", "instant",
    "brother", "sister", "mother", "father", "friend", "friends", "parent", "parents", "client",
    "clients", "student", "students", "patient", "patients", "daughter", "daughters",
    "grandmother", "grandfather", "office", "offices", "centre", "center", "corner", "water",
    "paper", "letter", "winter", "summer", "dinner", "computer", "printer", "matter", "order",
    "border", "power", "tower", "river", "poster", "sticker", "flat", "apartment", "event",
    "events", "moment", "comment", "payment", "treatment", "department", "tournament",
    "quarter", "monsoon", "weather", "birthday", "anniversary", "wedding",
];

/// Conversational words worth recognising through a typo ("contcat",
/// "thnaks", "batchmtes"); shorter words allow no typo anyway.
#[rustfmt::skip]
pub(crate) const CORRECTABLE: &[&str] = &[
    "thanks", "thank", "hello", "namaste", "namaskar", "vanakkam", "dhanyavad", "shukriya",
    "contact", "contacts", "details", "profile", "information", "email", "emails", "phone",
    "phones", "mobile", "numbers", "whatsapp", "please", "kindly", "batchmates", "batchmate",
    "classmates", "passout", "passouts", "graduates", "graduated", "offering", "offers",
    "provides", "providing", "services", "service", "companies", "company", "business",
    "members", "anywhere", "everywhere", "speaks", "speaking", "second", "third", "fourth",
    "fifth", "someone", "anyone", "looking", "search", "people", "continue", "options",
    "engineering", "language", "languages", "experience", "experienced", "working",
];

/// Well-known companies whose short name is not their initials, as
/// (short, full): each direction finds the directory's spelling of the
/// other. Initials ("SBI", "TCS", "L&T") need no entry.
#[rustfmt::skip]
pub(crate) const ORGANIZATION_ALIASES: &[(&str, &str)] = &[
    ("pwc", "pricewaterhousecoopers"), ("infy", "infosys"), ("hul", "hindustan unilever"),
    ("ril", "reliance industries"), ("jio", "reliance jio"), ("airtel", "bharti airtel"),
    ("maruti", "maruti suzuki"), ("kotak", "kotak mahindra bank"), ("ey", "ernst young"),
    ("jpm", "jp morgan"), ("jpmc", "jp morgan chase"), ("gs", "goldman sachs"),
    ("bofa", "bank of america"), ("cts", "cognizant"), ("hp", "hewlett packard"),
    ("ibm", "international business machines"), ("ge", "general electric"),
    ("bob", "bank of baroda"), ("boi", "bank of india"), ("pnb", "punjab national bank"),
    ("iocl", "indian oil"), ("ioc", "indian oil"), ("bhel", "bharat heavy electricals"),
    ("hpcl", "hindustan petroleum"), ("bpcl", "bharat petroleum"), ("lic", "life insurance corporation"),
];

/// Words that introduce a name: "surname Pillai", "anyone called Meera",
/// "Mr Patil", "Dr Kulkarni".
pub(crate) fn is_name_cue(word: &str) -> bool {
    matches!(
        word,
        "surname" | "surnamed" | "lastname" | "called" | "named" | "naam"
    ) || is_honorific(word)
}

/// Forms of address before a name. "Dr" alone still means a doctor.
pub(crate) fn is_honorific(word: &str) -> bool {
    matches!(
        word,
        "mr" | "mrs" | "ms" | "miss" | "dr" | "shri" | "sri" | "smt" | "mister" | "prof" | "adv"
    )
}

/// Role words that add nothing after a specialty: "orthopaedic surgeons",
/// "cardiology specialist".
pub(crate) fn is_generic_role(word: &str) -> bool {
    matches!(
        word,
        "specialist"
            | "specialists"
            | "surgeon"
            | "surgeons"
            | "expert"
            | "experts"
            | "consultant"
            | "consultants"
            | "professional"
            | "professionals"
    )
}

/// Words after which a place is named: "in Surat", "from Nashik".
pub(crate) fn is_place_preposition(word: &str) -> bool {
    matches!(word, "in" | "from" | "near" | "around")
}

/// Professions so broad that a specialty before them says more: "cloud
/// engineers" are the members in Cloud, whatever their profession says.
pub(crate) fn is_broad_profession(key: &str) -> bool {
    matches!(
        key,
        "engineer"
            | "designer"
            | "consultant"
            | "professional"
            | "specialist"
            | "expert"
            | "manager"
            | "executive"
            | "agent"
            | "trader"
            | "dealer"
            | "worker"
    )
}

/// Words that add nothing after an organisation's name: "Infosys Ltd
/// employees", "LIC agents".
pub(crate) fn is_organization_tail(word: &str) -> bool {
    matches!(
        word,
        "ltd"
            | "limited"
            | "pvt"
            | "private"
            | "inc"
            | "llp"
            | "co"
            | "corp"
            | "corporation"
            | "company"
            | "industries"
            | "group"
            | "agent"
            | "agents"
            | "employee"
            | "employees"
            | "staff"
            | "people"
            | "guys"
            | "folks"
            | "wale"
            | "wala"
            | "log"
    )
}

/// Words that make the free word after them a topic of the search even
/// beside a profession: "doctors who know lasers", "experts in python".
pub(crate) fn is_topic_cue(word: &str) -> bool {
    matches!(
        word,
        "who"
            | "with"
            | "know"
            | "knows"
            | "knowing"
            | "expert"
            | "experts"
            | "skilled"
            | "in"
            | "specialising"
            | "specializing"
            | "experience"
            | "experienced"
            | "doing"
            | "handles"
            | "handle"
            | "handling"
            | "into"
            | "for"
    )
}
