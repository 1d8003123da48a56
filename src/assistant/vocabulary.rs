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

use super::concepts;
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
    /// From the operator's synonyms file; wins over the rest.
    pub synonym: Option<Meaning>,
    /// From the built-in table (resolved to this directory's values, see
    /// [`super::concepts`]) or derived from a directory value ("auditor"
    /// from `Audit`): read only when the directory itself has no reading.
    pub builtin: Option<Meaning>,
    /// The built-in reading is only another spelling of a concept ("gst"
    /// for `GST Advisory`): a single word of it that members also wrote
    /// about themselves is searched as free text instead, which finds
    /// the specialty's members and the others who mention it.
    pub spelling_only: bool,
    /// The directory readings are only short forms of values (`Family
    /// Law` as "family"): read like `spelling_only`.
    pub short_form_only: bool,
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
    /// A thing asked for that this directory has no one for ("plumbers"),
    /// as a reply names it.
    Missing(String),
    Role(Role),
    AnyLocation,
    Ignore,
    Nothing,
}

impl Meaning {
    fn reading(&self) -> Reading {
        match self {
            Meaning::Fields(fields) => Reading::Fields(fields.clone()),
            Meaning::Missing(what) => Reading::Missing(what.clone()),
            Meaning::Intent(role) => Reading::Role(*role),
            Meaning::Ignore => Reading::Ignore,
        }
    }
}

impl Senses {
    /// Picks the reading of a phrase (`key`) given the message's cues.
    pub(crate) fn read(&self, key: &str, cues: Cues) -> Reading {
        if let Some(meaning) = &self.synonym {
            return meaning.reading();
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
        let only_descriptive = !self.values.is_empty()
            && self
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
        self.builtin
            .as_ref()
            .map_or(Reading::Nothing, Meaning::reading)
    }
}

/// The synonym tables of one load (see [`super::concepts`]).
pub(crate) struct Tables<'a> {
    /// The built-in terms, resolved to this directory.
    pub builtin: &'a Synonyms,
    /// Other spellings of the concepts this directory has.
    pub spellings: &'a Synonyms,
    /// The operator's file.
    pub operator: &'a Synonyms,
}

/// Where a synonym comes from, which decides what it wins over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Operator,
    Builtin,
    Spelling,
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
    /// Initials → the organisation written as them (`SBI`, `L&T`).
    acronyms: HashMap<String, String>,
}

impl Vocabulary {
    /// The vocabulary of `directory`, with the built-in table already
    /// resolved to its values (`builtin`) and the operator's table.
    pub(crate) fn build(directory: &Directory, tables: &Tables<'_>) -> Vocabulary {
        let mut vocabulary = Vocabulary::default();
        let mut counts: HashMap<String, u32> = HashMap::new();
        let mut area_cities: HashMap<String, Vec<String>> = HashMap::new();
        // Specialty key → profession → members: what a role noun derived
        // from a specialty ("cardiologist") is a kind of.
        let mut professions: HashMap<String, HashMap<String, u32>> = HashMap::new();
        for member in directory.active_members() {
            vocabulary.add_member(member, &mut counts);
            if !member.area.is_empty() && !member.city.is_empty() {
                let cities = area_cities.entry(text::key(&member.area)).or_default();
                if !cities.contains(&member.city) {
                    cities.push(member.city.clone());
                }
            }
            if !member.specialty.is_empty() && !member.profession.is_empty() {
                *professions
                    .entry(text::key(&member.specialty))
                    .or_default()
                    .entry(member.profession.clone())
                    .or_default() += 1;
            }
        }
        vocabulary.link_branches();
        vocabulary.add_role_nouns(&professions);
        vocabulary.add_organization_aliases();
        vocabulary.area_city = area_cities
            .into_iter()
            .filter_map(|(area, cities)| match cities.as_slice() {
                [city] => Some((area, city.clone())),
                _ => None,
            })
            .collect();
        for synonym in &tables.spellings.entries {
            vocabulary.add_meaning(&synonym.term, synonym.meaning.clone(), Source::Spelling);
        }
        for synonym in &tables.builtin.entries {
            let meaning = vocabulary.respell(&synonym.meaning);
            vocabulary.add_meaning(&synonym.term, meaning, Source::Builtin);
        }
        for synonym in &tables.operator.entries {
            let meaning = vocabulary.respell(&synonym.meaning);
            vocabulary.add_meaning(&synonym.term, meaning, Source::Operator);
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

    /// Role nouns derived from the directory's specialties: `Cardiology`
    /// gives "cardiologist", `Audit` "auditor", `Pediatrics`
    /// "pediatrician", each meaning the specialty within the profession
    /// most of its members have.
    fn add_role_nouns(&mut self, professions: &HashMap<String, HashMap<String, u32>>) {
        let specialties: Vec<(String, String)> = self
            .spelling
            .iter()
            .filter(|((field, _), _)| *field == Field::Specialty)
            .map(|((_, key), spelling)| (key.clone(), spelling.clone()))
            .collect();
        for (key, spelling) in specialties {
            let mut fields = vec![(Field::Specialty, spelling)];
            if let Some(profession) = professions.get(&key).and_then(|counts| {
                counts
                    .iter()
                    .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                    .map(|(p, _)| p.clone())
            }) {
                fields.push((Field::Profession, profession));
            }
            for noun in role_nouns(&concepts::fold(&key)) {
                let meaning = Meaning::Fields(fields.clone());
                Self::with_inflections(&noun, |phrase| {
                    let senses = self.phrases.entry(phrase.to_owned()).or_default();
                    senses.builtin.get_or_insert_with(|| meaning.clone());
                });
            }
        }
    }

    /// Other names of the directory's organisations: initials ("SBI" for
    /// State Bank of India, "M&M" for Mahindra & Mahindra), the name
    /// without "Ltd", "Pvt", "Services" and the like, and the built-in
    /// aliases of well-known companies whose short name is not their
    /// initials. Single-word names that look like initials are kept in
    /// [`Vocabulary::acronym`] so the full name written out finds them.
    fn add_organization_aliases(&mut self) {
        let organizations: Vec<(String, String)> = self
            .spelling
            .iter()
            .filter(|((field, _), _)| *field == Field::Organization)
            .map(|((_, key), spelling)| (key.clone(), spelling.clone()))
            .collect();
        for (key, spelling) in &organizations {
            let names = organization_names(key);
            for name in &names {
                let letters: usize = name.split(' ').map(str::len).sum();
                // Two-letter initials are only safe where the name has an
                // "&" ("M&M", "L&T"); elsewhere they are everyday words.
                let safe = letters >= 3 || (spelling.contains('&') && name.contains(' '));
                if name != key && safe && !words::is_filler(name) && words::role(name).is_none() {
                    let fresh = !self.phrases.contains_key(name);
                    self.add_value(name, Field::Organization, spelling);
                    if fresh && let Some(senses) = self.phrases.get_mut(name) {
                        senses.short_form_only = true;
                    }
                }
            }
            // "Mahindra and Mahindra" for "Mahindra & Mahindra".
            if spelling.contains('&') {
                let written = text::key(&spelling.replace('&', " and "));
                if written != *key {
                    self.add_value(&written, Field::Organization, spelling);
                }
            }
            let letters: String = key.split(' ').collect();
            let all_single = key.split(' ').all(|w| w.chars().count() == 1);
            if (2..=6).contains(&letters.chars().count())
                && (all_single || !key.contains(' '))
                && letters.bytes().all(|b| b.is_ascii_lowercase())
            {
                self.acronyms.insert(letters, spelling.clone());
            }
            for (short, long) in words::ORGANIZATION_ALIASES {
                let (short, long) = (text::key(short), text::key(long));
                if names.contains(&long) || *key == long {
                    self.add_value(&short, Field::Organization, spelling);
                } else if names.contains(&short) || *key == short {
                    self.add_value(&long, Field::Organization, spelling);
                }
            }
        }
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
        let folded = concepts::fold(key);
        for written in [key, folded.as_str()] {
            Self::with_inflections(written, |phrase| {
                let senses = self.phrases.entry(phrase.to_owned()).or_default();
                match senses.values.iter_mut().find(|(f, _)| *f == field) {
                    None => senses.values.push((field, value.to_owned())),
                    // `Textile` and `Textiles` both in the directory: each
                    // phrase reads as the value spelled exactly so.
                    Some(existing) if phrase == written && written == key => {
                        existing.1 = value.to_owned();
                    }
                    Some(_) => {}
                }
            });
        }
    }

    fn add_member(&mut self, member: &Member, counts: &mut HashMap<String, u32>) {
        for field in Field::STRUCTURED {
            for value in field.values(member) {
                let key = text::key(value);
                if key.is_empty() {
                    continue;
                }
                if let Some(senses) = self.phrases.get_mut(&key) {
                    senses.short_form_only = false;
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
            Field::City | Field::Area => {
                if joined != key {
                    self.add_value(&joined, field, spelling);
                }
                let shorter: Vec<&str> = key
                    .split(' ')
                    .filter(|w| !PLACE_GENERIC.contains(w))
                    .collect();
                if shorter.len() >= 2 && shorter.len() < key.split(' ').count() {
                    self.add_value(&shorter.join(" "), field, spelling);
                }
            }
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
            Field::Profession | Field::Specialty => {
                // `Family Law` is also "family", `Data Engineering` "data".
                let stripped = concepts::strip_generic(key);
                if stripped != key
                    && stripped.len() >= 3
                    && !stripped.split(' ').all(words::is_filler)
                {
                    let fresh = !self.phrases.contains_key(&stripped);
                    self.add_value(&stripped, field, spelling);
                    if fresh && let Some(senses) = self.phrases.get_mut(&stripped) {
                        senses.short_form_only = true;
                    }
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

    /// Records a synonym: the operator's (`operator`), which wins over
    /// everything, or a built-in, which only counts where the directory
    /// has no reading of its own.
    fn add_meaning(&mut self, term: &str, meaning: Meaning, source: Source) {
        let inflect = !matches!(meaning, Meaning::Intent(_) | Meaning::Ignore);
        let set = |senses: &mut Senses| match source {
            Source::Operator => senses.synonym = Some(meaning.clone()),
            Source::Builtin => {
                senses.builtin = Some(meaning.clone());
                senses.spelling_only = false;
            }
            Source::Spelling => {
                senses.builtin = Some(meaning.clone());
                senses.spelling_only = true;
            }
        };
        if inflect {
            Self::with_inflections(term, |phrase| set(self.senses(phrase)));
            let folded = concepts::fold(term);
            if folded != term {
                Self::with_inflections(&folded, |phrase| set(self.senses(phrase)));
            }
        } else {
            set(self.senses(term));
        }
    }

    /// What phrase `key` can mean (as written, or with its spelling
    /// folded: "paediatric" finds `Pediatrics`).
    pub(crate) fn phrase(&self, key: &str) -> Option<&Senses> {
        self.phrases
            .get(key)
            .or_else(|| self.phrases.get(&concepts::fold(key)))
    }

    /// The organisation whose name is these initials ("sbi" → `SBI`).
    pub(crate) fn acronym(&self, initials: &str) -> Option<&str> {
        self.acronyms.get(initials).map(String::as_str)
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

/// Role nouns for a specialty, by the English suffixes that make them:
/// cardiology → cardiologist, psychiatry → psychiatrist, pediatrics →
/// pediatrician, orthopedics → orthopedist, photography → photographer,
/// audit → auditor, litigation → litigator.
fn role_nouns(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (head, last) = match key.rsplit_once(' ') {
        Some((head, last)) => (Some(head), last),
        None => (None, key),
    };
    let mut nouns = Vec::new();
    if let Some(stem) = last.strip_suffix("logy") {
        nouns.push(format!("{stem}logist"));
    } else if let Some(stem) = last.strip_suffix("iatry") {
        nouns.push(format!("{stem}iatrist"));
    } else if let Some(stem) = last.strip_suffix("ics") {
        nouns.push(format!("{stem}ician"));
        nouns.push(format!("{stem}ist"));
        nouns.push(format!("{stem}ic surgeon"));
    } else if let Some(stem) = last.strip_suffix("graphy") {
        nouns.push(format!("{stem}grapher"));
    } else if let Some(stem) = last.strip_suffix("ation") {
        nouns.push(format!("{stem}ator"));
    } else if last == "audit" {
        nouns.push("auditor".to_owned());
    } else if let Some(stem) = last.strip_suffix("ing")
        && !stem.ends_with("eer")
        && stem.len() >= 3
    {
        // testing → tester, trading → trader.
        nouns.push(format!("{stem}er"));
        if let Some(base) = stem.strip_suffix(|c: char| "bdgmnpt".contains(c))
            && stem.ends_with(|c: char| base.ends_with(c))
        {
            nouns.push(format!("{base}er"));
        }
    }
    for noun in nouns {
        if noun.len() >= 5 {
            out.push(match head {
                Some(head) => format!("{head} {noun}"),
                None => noun,
            });
        }
    }
    out
}

/// Words an organisation's name can drop and still name it.
#[rustfmt::skip]
const ORGANIZATION_GENERIC: &[&str] = &[
    "ltd", "limited", "pvt", "private", "inc", "llp", "llc", "co", "corp", "company",
    "services", "service", "technologies", "technology", "tech", "solutions", "systems", "group",
    "industries", "enterprises", "international", "india", "the", "hospital", "hospitals",
    "clinic", "clinics", "associates", "partners", "studio", "studios", "labs", "consultants",
    "consultancy",
];

/// Words a place's name can drop and still name it: `DLF Phase 2` is also
/// "DLF 2", `Sector 45` stays as it is.
const PLACE_GENERIC: &[&str] = &["phase", "block", "stage", "extension", "ext", "layout"];

/// Words skipped in initials: "State Bank of India" is SBI.
const INITIALS_SKIP: &[&str] = &["of", "and", "the", "for", "in"];

/// Other names of an organisation (by its key): without its generic words,
/// and its initials with and without them, joined ("sbi") and spaced
/// ("s b i", as "S.B.I." is written).
pub(crate) fn organization_names(key: &str) -> Vec<String> {
    let words: Vec<&str> = key.split(' ').filter(|w| !w.is_empty()).collect();
    let mut names = Vec::new();
    let core: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| !ORGANIZATION_GENERIC.contains(w) && !INITIALS_SKIP.contains(w))
        .collect();
    if !core.is_empty() && core.len() < words.len() {
        names.push(core.join(" "));
    }
    // "HDFC Bank" is "HDFC"; "Kotak Mahindra Bank" is "Kotak Mahindra".
    if let Some((&"bank", rest)) = words.split_last()
        && !rest.is_empty()
    {
        names.push(rest.join(" "));
    }
    // "Maharaja Sayajirao University of Baroda" is also "Maharaja
    // Sayajirao University".
    if let Some((head, _)) = key.split_once(" of ")
        && head.contains(' ')
    {
        names.push(head.to_owned());
    }
    let significant: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| !INITIALS_SKIP.contains(w))
        .collect();
    for list in [&significant, &core] {
        if list.len() >= 2 {
            let letters: Vec<String> = list
                .iter()
                .filter_map(|w| w.chars().next())
                .map(String::from)
                .collect();
            names.push(letters.concat());
            names.push(letters.join(" "));
        }
    }
    names.dedup();
    names
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
        let concepts = super::super::concepts::Concepts::build(&directory);
        let tables = Tables {
            builtin: &concepts.resolve(&Synonyms::builtin()),
            spellings: &concepts.spellings(),
            operator: &Synonyms::default(),
        };
        Vocabulary::build(&directory, &tables)
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
        let without_branches = Vocabulary::build(
            &directory,
            &Tables {
                builtin: &Synonyms::default(),
                spellings: &Synonyms::default(),
                operator: &Synonyms::default(),
            },
        );
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
