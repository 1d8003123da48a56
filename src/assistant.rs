//! The assistant: understanding a member's message and composing the reply.
//!
//! Understanding is rule-based and offline: the message is normalised
//! (case, punctuation, emoji, filler words), then matched against a
//! vocabulary built from the directory itself (every profession, specialty
//! and city in the file) plus the built-in city aliases (Bangalore →
//! Bengaluru, …). The result is an [`Understanding`]: an [`Intent`] and the
//! [`Entities`] it names. Answering runs the search it asks for and formats
//! a WhatsApp reply: `*bold*` names, a numbered list of at most five, and
//! what to reply next.
//!
//! The webhook asks [`Understanding::runs_search`] before answering so that
//! only real searches spend the member's search quota.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::directory::{Directory, Member};

/// How many results one reply lists.
pub const PAGE_SIZE: usize = 5;

/// What the member asked for.
///
/// Stored in session entries by variant index: add new variants at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    Greeting,
    Help,
    Thanks,
    Search,
    Unknown,
}

impl Intent {
    pub fn as_str(&self) -> &'static str {
        match self {
            Intent::Greeting => "greeting",
            Intent::Help => "help",
            Intent::Thanks => "thanks",
            Intent::Search => "search",
            Intent::Unknown => "unknown",
        }
    }
}

/// What a search is constrained by; values are the directory's own spelling.
///
/// Stored in every session entry (bincode, `session::codec`): adding or
/// reordering fields needs a new session format version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entities {
    pub profession: Option<String>,
    pub specialty: Option<String>,
    pub designation: Option<String>,
    pub skill: Option<String>,
    pub service: Option<String>,
    pub organization: Option<String>,
    pub city: Option<String>,
    pub area: Option<String>,
    /// A person's name, for "is there a Rahul Sharma".
    pub name: Option<String>,
    pub graduation_year: Option<u16>,
    pub degree: Option<String>,
    pub branch: Option<String>,
    /// Free words ranked against skills, bio and extra columns.
    pub keywords: Vec<String>,
}

impl Entities {
    pub fn is_empty(&self) -> bool {
        self.profession.is_none() && self.specialty.is_none() && self.city.is_none()
    }
}

/// The assistant's reading of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Understanding {
    pub intent: Intent,
    pub entities: Entities,
}

impl Understanding {
    /// Whether answering runs a directory search (and so spends one).
    pub fn runs_search(&self) -> bool {
        self.intent == Intent::Search
    }
}

/// The reply and what the session should remember of it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub text: String,
    /// Total matches of the search, if one ran.
    pub result_count: usize,
    /// `member_id`s listed in this reply, in order.
    pub shown_ids: Vec<String>,
}

/// What a vocabulary term stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Profession(String),
    Specialty(String),
    City(String),
}

/// Cities' former and common names, mapped to the current one.
const CITY_ALIASES: &[(&str, &str)] = &[
    ("bangalore", "bengaluru"),
    ("bombay", "mumbai"),
    ("madras", "chennai"),
    ("calcutta", "kolkata"),
    ("gurgaon", "gurugram"),
    ("mysore", "mysuru"),
    ("trivandrum", "thiruvananthapuram"),
    ("cochin", "kochi"),
    ("pondicherry", "puducherry"),
    ("poona", "pune"),
    ("new delhi", "delhi"),
    ("baroda", "vadodara"),
    ("benares", "varanasi"),
    ("mangalore", "mangaluru"),
    ("hubli", "hubballi"),
    ("belgaum", "belagavi"),
];

/// Words that carry no meaning for a search.
const FILLER: &[&str] = &[
    "a", "an", "the", "me", "my", "i", "we", "us", "please", "pls", "plz", "can", "could", "would",
    "you", "find", "search", "look", "looking", "for", "show", "list", "get", "give", "need",
    "want", "any", "some", "is", "are", "there", "who", "all", "of", "to", "hi", "hello", "hey",
    "kindly", "members", "member", "people", "person", "someone", "anyone", "in", "at", "from",
    "near", "based", "located",
];

/// The directory together with the vocabulary drawn from it.
pub struct Assistant {
    directory: Arc<Directory>,
    org_name: String,
    /// Normalised phrase → what it means; phrases of up to `longest` words.
    vocabulary: HashMap<String, Term>,
    longest: usize,
}

impl std::fmt::Debug for Assistant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assistant")
            .field("members", &self.directory.len())
            .field("vocabulary", &self.vocabulary.len())
            .finish()
    }
}

impl Assistant {
    pub fn new(directory: Arc<Directory>, org_name: &str) -> Assistant {
        let mut vocabulary = HashMap::new();
        let mut add = |phrase: &str, term: Term| {
            let key = normalise(phrase).join(" ");
            if key.is_empty() {
                return;
            }
            // Plural forms find the singular ("doctors", "dentists").
            vocabulary
                .entry(format!("{key}s"))
                .or_insert_with(|| term.clone());
            vocabulary
                .entry(format!("{key}es"))
                .or_insert_with(|| term.clone());
            vocabulary.insert(key, term);
        };
        for member in directory.active_members() {
            if !member.city.is_empty() {
                add(&member.city, Term::City(member.city.clone()));
            }
            if !member.specialty.is_empty() {
                add(&member.specialty, Term::Specialty(member.specialty.clone()));
            }
        }
        // Professions win over a specialty of the same name.
        for member in directory.active_members() {
            if !member.profession.is_empty() {
                add(
                    &member.profession,
                    Term::Profession(member.profession.clone()),
                );
            }
        }
        let cities: HashMap<String, String> = vocabulary
            .iter()
            .filter_map(|(key, term)| match term {
                Term::City(city) => Some((key.clone(), city.clone())),
                _ => None,
            })
            .collect();
        for (alias, current) in CITY_ALIASES {
            let city = cities
                .get(*current)
                .cloned()
                .unwrap_or_else(|| title_case(current));
            vocabulary
                .entry((*alias).to_owned())
                .or_insert(Term::City(city.clone()));
            vocabulary
                .entry((*current).to_owned())
                .or_insert(Term::City(city));
        }
        let longest = vocabulary
            .keys()
            .map(|k| k.split(' ').count())
            .max()
            .unwrap_or(1);
        Assistant {
            directory,
            org_name: org_name.to_owned(),
            vocabulary,
            longest,
        }
    }

    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// Reads a message: its intent and the entities it names.
    pub fn understand(&self, text: &str) -> Understanding {
        let words = normalise(text);
        let mut entities = Entities::default();
        let mut leftover = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let matched = (1..=self.longest.min(words.len() - i))
                .rev()
                .find_map(|len| {
                    let phrase = words[i..i + len].join(" ");
                    self.vocabulary.get(&phrase).map(|term| (len, term))
                });
            match matched {
                Some((len, term)) => {
                    match term {
                        Term::Profession(p) => entities.profession.get_or_insert_with(|| p.clone()),
                        Term::Specialty(s) => entities.specialty.get_or_insert_with(|| s.clone()),
                        Term::City(c) => entities.city.get_or_insert_with(|| c.clone()),
                    };
                    i += len;
                }
                None => {
                    leftover.push(words[i].as_str());
                    i += 1;
                }
            }
        }
        let intent = if entities.profession.is_some() || entities.specialty.is_some() {
            Intent::Search
        } else if words.is_empty() || leftover.iter().any(|w| HELP_WORDS.contains(w)) {
            Intent::Help
        } else if leftover.iter().any(|w| THANKS_WORDS.contains(w)) {
            Intent::Thanks
        } else if leftover.iter().any(|w| GREETING_WORDS.contains(w))
            || words.iter().any(|w| GREETING_WORDS.contains(&w.as_str()))
        {
            Intent::Greeting
        } else if entities.city.is_some() && leftover.iter().all(|w| FILLER.contains(w)) {
            Intent::Search
        } else {
            Intent::Unknown
        };
        Understanding { intent, entities }
    }

    /// Composes the reply for `understanding`, running its search if any.
    pub fn answer(&self, understanding: &Understanding, member: &Member) -> Answer {
        match understanding.intent {
            Intent::Search => self.search_reply(&understanding.entities),
            Intent::Greeting => Answer::plain(format!(
                "Hello {}! 👋 I can help you find members of {}.\n\n{}",
                first_name(&member.name),
                self.org_name,
                EXAMPLES
            )),
            Intent::Help => Answer::plain(format!(
                "I can help you find members of {}.\n\n{}",
                self.org_name, EXAMPLES
            )),
            Intent::Thanks => Answer::plain(
                "You're welcome! Send another search whenever you need one.".to_owned(),
            ),
            Intent::Unknown => Answer::plain(format!(
                "Sorry, I didn't understand that. I can search the member directory of {}.\n\n{}",
                self.org_name, EXAMPLES
            )),
        }
    }

    /// Active members matching every constraint, in directory order.
    pub fn search(&self, entities: &Entities) -> Vec<&Member> {
        let same = |field: &str, wanted: &Option<String>| {
            wanted
                .as_deref()
                .is_none_or(|w| field.eq_ignore_ascii_case(w))
        };
        self.directory
            .active_members()
            .filter(|m| same(&m.city, &entities.city))
            .filter(|m| same(&m.profession, &entities.profession))
            .filter(|m| same(&m.specialty, &entities.specialty))
            .collect()
    }

    fn search_reply(&self, entities: &Entities) -> Answer {
        let found = self.search(entities);
        let what = describe(entities);
        if found.is_empty() {
            return Answer::plain(format!(
                "I couldn't find any {what}.\n\nTry another city or profession, or send HELP for examples."
            ));
        }
        let mut text = format!("Found {} {what}:\n", found.len());
        for (n, member) in found.iter().take(PAGE_SIZE).enumerate() {
            let _ = write!(text, "\n{}. {}", n + 1, member_line(member));
        }
        if found.len() > PAGE_SIZE {
            let _ = write!(text, "\n\n…and {} more.", found.len() - PAGE_SIZE);
        }
        Answer {
            text,
            result_count: found.len(),
            shown_ids: found.iter().take(PAGE_SIZE).map(|m| m.id.clone()).collect(),
        }
    }
}

impl Answer {
    fn plain(text: String) -> Answer {
        Answer {
            text,
            result_count: 0,
            shown_ids: Vec::new(),
        }
    }
}

const HELP_WORDS: &[&str] = &[
    "help", "menu", "start", "options", "commands", "how", "what",
];
const THANKS_WORDS: &[&str] = &["thanks", "thank", "thx", "ty", "dhanyavad", "shukriya"];
const GREETING_WORDS: &[&str] = &[
    "hi", "hello", "hey", "hii", "namaste", "namaskar", "vanakkam", "good",
];

const EXAMPLES: &str = "You can ask things like:\n• Find doctors in Bangalore\n• Lawyers in Mumbai\n• Software engineers in Chennai";

/// `*Name*`, profession · specialty, organization, city.
fn member_line(member: &Member) -> String {
    let mut line = format!("*{}*", member.name);
    let work: Vec<&str> = [member.profession.as_str(), member.specialty.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    if !work.is_empty() {
        let _ = write!(line, ", {}", work.join(" · "));
    }
    for part in [&member.organization, &member.city] {
        if !part.is_empty() {
            let _ = write!(line, ", {part}");
        }
    }
    line
}

/// "cardiology doctors in Bengaluru", "members in Chennai".
fn describe(entities: &Entities) -> String {
    let mut what = String::new();
    if let Some(specialty) = &entities.specialty {
        what.push_str(specialty);
        what.push(' ');
    }
    match &entities.profession {
        Some(profession) => what.push_str(&plural(&profession.to_lowercase())),
        None if entities.specialty.is_some() => what.push_str("specialists"),
        None => what.push_str("members"),
    }
    if let Some(city) = &entities.city {
        let _ = write!(what, " in {city}");
    }
    what
}

fn plural(word: &str) -> String {
    if word.ends_with('s') || word.ends_with("sh") || word.ends_with("ch") {
        format!("{word}es")
    } else {
        format!("{word}s")
    }
}

fn first_name(name: &str) -> &str {
    name.split_whitespace().next().unwrap_or(name)
}

fn title_case(text: &str) -> String {
    text.split(' ')
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Lower-case words of letters and digits; everything else separates words.
fn normalise(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}
