//! The vocabulary: every phrase a member may use for a search, and what it
//! can mean.
//!
//! It is drawn from the directory itself (every profession, specialty,
//! designation, skill, service, organization, city, area, degree and branch
//! of an active member, with plural and singular forms and joined spellings
//! such as "annanagar") plus the synonyms table (built-in, then the
//! operator's file, which wins) and the conversation's own phrases ("thank
//! you", "next page", "all cities"). A phrase may mean several things
//! ("Audit" is a specialty and a service); [`Senses::read`] picks one from
//! the cues of the whole message. Single words are also kept in a
//! [`TypoIndex`] to correct misspellings before phrases are matched.

use std::collections::HashMap;

use super::field::Field;
use super::synonyms::{Meaning, Synonyms};
use super::text;
use super::typo::TypoIndex;
use super::words::{self, Role};
use crate::directory::{Directory, Member};

/// Single words of a designation that name the title on their own:
/// "founders" finds "Founder & CEO" and "Co-founder".
const TITLE_WORDS: &[&str] = &[
    "founder",
    "cofounder",
    "ceo",
    "cto",
    "cfo",
    "coo",
    "cmo",
    "director",
    "manager",
    "partner",
    "consultant",
    "professor",
    "principal",
    "head",
    "lead",
    "president",
    "vp",
    "executive",
    "associate",
    "surgeon",
    "chairman",
    "chairperson",
    "trustee",
    "owner",
    "proprietor",
    "officer",
];

/// Everything a phrase can mean.
#[derive(Debug, Clone, Default)]
pub(crate) struct Senses {
    /// From a synonyms table; wins over the rest.
    pub synonym: Option<Meaning>,
    /// A conversational phrase ("thank you", "next page").
    pub role: Option<Role>,
    /// "all cities", "anywhere".
    pub any_location: bool,
    /// Directory readings, one per field, in the directory's spelling.
    pub values: Vec<(Field, String)>,
    /// "mechanical engineers" also names the branch Mechanical. In a
    /// directory that records branches (an alumni network) that is the
    /// reading: everyone who studied it, the profession's members included.
    pub branch: Option<String>,
    /// A degree of one or two letters ("BE", "MA"), read as a degree only
    /// among alumni words, since "be" and "ma" are also plain words.
    pub short_degree: bool,
}

/// What the rest of a message says about how to read a phrase.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cues {
    /// "offers", "companies": a service rather than a skill.
    pub service: bool,
    /// "batch", "passout": a branch rather than a profession.
    pub alumni: bool,
    /// "speaks": a language rather than a specialty.
    pub language: bool,
}

/// The one reading of a phrase in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reading {
    Fields(Vec<(Field, String)>),
    Role(Role),
    AnyLocation,
    Ignore,
    Nothing,
}

impl Senses {
    /// Picks the reading of a phrase (`key`) given the message's cues.
    pub(crate) fn read(&self, key: &str, cues: Cues) -> Reading {
        match &self.synonym {
            Some(Meaning::Fields(fields)) => return Reading::Fields(fields.clone()),
            Some(Meaning::Intent(role)) => return Reading::Role(*role),
            Some(Meaning::Ignore) => return Reading::Ignore,
            None => {}
        }
        if let Some(role) = self.role {
            return Reading::Role(role);
        }
        if self.any_location {
            return Reading::AnyLocation;
        }
        if let Some(branch) = &self.branch {
            return Reading::Fields(vec![(Field::Branch, branch.clone())]);
        }
        let has = |field: Field| self.values.iter().find(|(f, _)| *f == field);
        let only_descriptive = self
            .values
            .iter()
            .all(|(f, _)| matches!(f, Field::Specialty | Field::Skill));
        if cues.language && only_descriptive && !key.contains(' ') {
            return Reading::Fields(vec![(Field::Keyword, key.to_owned())]);
        }
        let mut order = vec![Field::Profession];
        if cues.service {
            order.extend([Field::Service, Field::Specialty]);
        } else {
            order.extend([Field::Specialty]);
        }
        order.extend([
            Field::City,
            Field::Area,
            Field::Skill,
            Field::Service,
            Field::Degree,
            Field::Branch,
            Field::Designation,
            Field::Organization,
        ]);
        for field in order {
            if let Some((_, value)) = has(field) {
                if field == Field::Degree && self.short_degree && !cues.alumni {
                    continue;
                }
                return Reading::Fields(vec![(field, value.clone())]);
            }
        }
        Reading::Nothing
    }
}

/// Phrases, their senses, and what completes them.
#[derive(Debug, Default)]
pub(crate) struct Vocabulary {
    phrases: HashMap<String, Senses>,
    /// The most words in a phrase.
    longest: usize,
    typos: TypoIndex,
    /// Area → its city, when all its members are in one city.
    area_city: HashMap<String, String>,
    /// (field, key) → the directory's spelling.
    spelling: HashMap<(Field, String), String>,
}

impl Vocabulary {
    pub(crate) fn build(directory: &Directory, synonyms: &[&Synonyms]) -> Vocabulary {
        let mut vocabulary = Vocabulary::default();
        let mut counts: HashMap<String, u32> = HashMap::new();
        let mut area_cities: HashMap<String, Vec<String>> = HashMap::new();
        for member in directory.active_members() {
            vocabulary.add_member(member, &mut counts);
            if !member.area.is_empty() && !member.city.is_empty() {
                let cities = area_cities.entry(text::key(&member.area)).or_default();
                if !cities.contains(&member.city) {
                    cities.push(member.city.clone());
                }
            }
        }
        vocabulary.link_branches();
        vocabulary.area_city = area_cities
            .into_iter()
            .filter_map(|(area, cities)| match cities.as_slice() {
                [city] => Some((area, city.clone())),
                _ => None,
            })
            .collect();
        for table in synonyms {
            for synonym in &table.entries {
                let meaning = vocabulary.respell(&synonym.meaning);
                vocabulary.add_synonym(&synonym.term, meaning);
            }
        }
        for (phrase, role) in words::COMMAND_PHRASES {
            vocabulary.senses(phrase).role = Some(*role);
        }
        for phrase in words::ANY_LOCATION_PHRASES {
            vocabulary.senses(phrase).any_location = true;
        }
        vocabulary.longest = vocabulary
            .phrases
            .keys()
            .map(|k| k.split(' ').count())
            .max()
            .unwrap_or(1);
        let mut typo_words: Vec<(&str, u32)> = Vec::new();
        for phrase in vocabulary.phrases.keys() {
            let weight = counts.get(phrase).copied().unwrap_or(1);
            typo_words.extend(phrase.split(' ').map(|w| (w, weight)));
        }
        typo_words.extend(words::CORRECTABLE.iter().map(|w| (*w, 1)));
        vocabulary.typos = TypoIndex::new(typo_words);
        vocabulary
    }

    fn senses(&mut self, phrase: &str) -> &mut Senses {
        self.phrases.entry(phrase.to_owned()).or_default()
    }

    /// Adds `key` and its other grammatical numbers with `add`.
    fn with_inflections(key: &str, mut add: impl FnMut(&str)) {
        add(key);
        let (head, last) = match key.rsplit_once(' ') {
            Some((head, last)) => (Some(head), last),
            None => (None, key),
        };
        for form in text::inflections(last) {
            match head {
                Some(head) => add(&format!("{head} {form}")),
                None => add(&form),
            }
        }
    }

    /// Records that phrase `key` can mean `value` of `field`.
    fn add_value(&mut self, key: &str, field: Field, value: &str) {
        if key.is_empty() {
            return;
        }
        Self::with_inflections(key, |phrase| {
            let senses = self.phrases.entry(phrase.to_owned()).or_default();
            if !senses.values.iter().any(|(f, _)| *f == field) {
                senses.values.push((field, value.to_owned()));
            }
        });
    }

    fn add_member(&mut self, member: &Member, counts: &mut HashMap<String, u32>) {
        for field in Field::STRUCTURED {
            for value in field.values(member) {
                let key = text::key(value);
                if key.is_empty() {
                    continue;
                }
                *counts.entry(key.clone()).or_default() += 1;
                let spelling = self
                    .spelling
                    .entry((field, key.clone()))
                    .or_insert_with(|| value.to_owned())
                    .clone();
                self.add_value(&key, field, &spelling);
                self.add_variants(field, &key, &spelling);
            }
        }
    }

    /// Other ways of writing a value: joined words, short degrees, title
    /// words of designations, "<branch> engineers".
    fn add_variants(&mut self, field: Field, key: &str, spelling: &str) {
        let joined = key.replace(' ', "");
        match field {
            Field::City | Field::Area if joined != key => self.add_value(&joined, field, spelling),
            Field::Degree => {
                if joined != key {
                    self.add_value(&joined, field, spelling);
                }
                if joined.chars().count() <= 2 {
                    for phrase in [key, joined.as_str()] {
                        self.senses(phrase).short_degree = true;
                    }
                }
            }
            Field::Designation => {
                for word in key.split(' ').filter(|w| TITLE_WORDS.contains(w)) {
                    // A title word stands for itself: "Founder" finds every
                    // designation with the word founder.
                    let title = original_word(spelling, word);
                    self.add_value(word, field, &title);
                }
            }
            Field::Branch => {
                for suffix in ["engineering", "engineer"] {
                    self.add_value(&format!("{key} {suffix}"), field, spelling);
                }
            }
            _ => {}
        }
    }

    /// Marks professions named after a branch the directory records
    /// ("Mechanical Engineer", branch Mechanical) to be read as the branch.
    fn link_branches(&mut self) {
        let links: Vec<(String, String)> = self
            .spelling
            .iter()
            .filter(|((field, _), _)| *field == Field::Profession)
            .filter_map(|((_, key), _)| {
                let branch = key.strip_suffix(" engineer")?;
                let spelling = self.spelling.get(&(Field::Branch, branch.to_owned()))?;
                Some((key.clone(), spelling.clone()))
            })
            .collect();
        for (profession, branch) in links {
            Self::with_inflections(&profession, |phrase| {
                self.senses(phrase).branch = Some(branch.clone());
            });
        }
    }

    /// A synonym's values in the directory's spelling where it has them.
    fn respell(&self, meaning: &Meaning) -> Meaning {
        match meaning {
            Meaning::Fields(fields) => Meaning::Fields(
                fields
                    .iter()
                    .map(|(field, value)| {
                        let spelled = self
                            .spelling
                            .get(&(*field, text::key(value)))
                            .cloned()
                            .unwrap_or_else(|| value.clone());
                        (*field, spelled)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn add_synonym(&mut self, term: &str, meaning: Meaning) {
        let inflect = !matches!(meaning, Meaning::Intent(_) | Meaning::Ignore);
        if inflect {
            Self::with_inflections(term, |phrase| {
                self.senses(phrase).synonym = Some(meaning.clone());
            });
        } else {
            self.senses(term).synonym = Some(meaning);
        }
    }

    /// What phrase `key` can mean.
    pub(crate) fn phrase(&self, key: &str) -> Option<&Senses> {
        self.phrases.get(key)
    }

    /// The most words in any phrase.
    pub(crate) fn longest(&self) -> usize {
        self.longest
    }

    /// Whether `word` is a word of some phrase (or a conversational word).
    pub(crate) fn knows_word(&self, word: &str) -> bool {
        self.typos.contains(word)
    }

    /// The known word `word` is a misspelling of, if any.
    pub(crate) fn correct(&self, word: &str) -> Option<&str> {
        self.typos.correct(word)
    }

    /// The city an area lies in, if only one.
    pub(crate) fn city_of_area(&self, area: &str) -> Option<&str> {
        self.area_city.get(&text::key(area)).map(String::as_str)
    }

    /// How many phrases the vocabulary has.
    pub(crate) fn len(&self) -> usize {
        self.phrases.len()
    }
}

/// The word of `spelling` whose key is `word`, as written there:
/// ("Founder & CEO", "ceo") → "CEO".
fn original_word(spelling: &str, word: &str) -> String {
    spelling
        .split(|c: char| !c.is_alphanumeric())
        .find(|part| text::key(part) == word)
        .map_or_else(
            || {
                let mut chars = word.chars();
                chars
                    .next()
                    .map(|c| c.to_uppercase().chain(chars).collect())
                    .unwrap_or_default()
            },
            str::to_owned,
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::Region;

    fn vocabulary() -> Vocabulary {
        let csv = "name,phone,profession,specialty,designation,city,area,skills,services,degree,branch\n\
            A,+919800000001,Doctor,Cardiology,Founder & CEO,Bengaluru,Anna Nagar,Videography,Videography; Audit,B.E,Mechanical\n\
            B,+919800000002,Mechanical Engineer,Audit,Co-founder,Chennai,Adyar,SEO,,MBA,\n";
        let directory = Directory::from_csv(csv, Region::default()).unwrap();
        Vocabulary::build(&directory, &[&Synonyms::builtin()])
    }

    fn read(v: &Vocabulary, phrase: &str, cues: Cues) -> Reading {
        v.phrase(phrase)
            .map_or(Reading::Nothing, |s| s.read(phrase, cues))
    }

    fn one(field: Field, value: &str) -> Reading {
        Reading::Fields(vec![(field, value.to_owned())])
    }

    #[test]
    fn directory_values_with_plurals_and_joined_forms() {
        let v = vocabulary();
        let none = Cues::default();
        assert_eq!(read(&v, "doctors", none), one(Field::Profession, "Doctor"));
        assert_eq!(read(&v, "annanagar", none), one(Field::Area, "Anna Nagar"));
        assert_eq!(v.city_of_area("anna nagar"), Some("Bengaluru"));
        assert_eq!(
            read(&v, "founders", none),
            one(Field::Designation, "Founder")
        );
        assert_eq!(read(&v, "bangalore", none), one(Field::City, "Bengaluru"));
    }

    #[test]
    fn cues_pick_the_reading() {
        let v = vocabulary();
        let service = Cues {
            service: true,
            ..Cues::default()
        };
        let alumni = Cues {
            alumni: true,
            ..Cues::default()
        };
        assert_eq!(
            read(&v, "videography", Cues::default()),
            one(Field::Skill, "Videography")
        );
        assert_eq!(
            read(&v, "videography", service),
            one(Field::Service, "Videography")
        );
        assert_eq!(
            read(&v, "audit", Cues::default()),
            one(Field::Specialty, "Audit")
        );
        assert_eq!(read(&v, "audit", service), one(Field::Service, "Audit"));
        assert_eq!(
            read(&v, "mechanical engineers", Cues::default()),
            one(Field::Branch, "Mechanical"),
            "a directory with branches reads the branch"
        );
        let csv = "name,phone,profession\nB,+919800000002,Mechanical Engineer\n";
        let directory = Directory::from_csv(csv, Region::default()).unwrap();
        let without_branches = Vocabulary::build(&directory, &[]);
        assert_eq!(
            read(&without_branches, "mechanical engineers", alumni),
            one(Field::Profession, "Mechanical Engineer")
        );
        assert_eq!(read(&v, "be", Cues::default()), Reading::Nothing);
        assert_eq!(read(&v, "be", alumni), one(Field::Degree, "B.E"));
        assert_eq!(read(&v, "b e", alumni), one(Field::Degree, "B.E"));
        assert_eq!(read(&v, "mba", Cues::default()), one(Field::Degree, "MBA"));
    }

    #[test]
    fn typos_are_corrected_to_vocabulary_words() {
        let v = vocabulary();
        assert_eq!(v.correct("doctr"), Some("doctor"));
        assert_eq!(v.correct("chenai"), Some("chennai"));
        assert_eq!(v.correct("contcat"), Some("contact"));
        assert!(v.knows_word("cardiology"));
    }
}
