//! The search index of one directory load, built once and rebuilt on reload.
//!
//! Structured constraints filter exactly, through posting lists keyed by
//! (field, normalised value): "doctors in Bengaluru" is the intersection of
//! the doctors and the members in Bengaluru, never a lawyer or a Chennai
//! doctor. A directory value that the synonyms table maps to another value
//! of the same field ("Bangalore" → Bengaluru) is filed under both, so a
//! directory written with old names is found by new ones. Names go through
//! [`Names`]; free words through the tantivy [`TextIndex`], ranked, among
//! the members the constraints allow. Inactive members are never indexed.

use std::collections::HashMap;
use std::sync::Arc;

use super::Entities;
use super::field::Field;
use super::names::Names;
use super::postings::{self, Posting};
use super::synonyms::{Meaning, Synonyms};
use super::text;
use super::text_index::TextIndex;
use crate::directory::{Directory, Member};

/// A page's worth of results and how many there are in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Hits {
    pub total: usize,
    /// The first `limit` members, best first (directory order when unranked).
    pub top: Vec<u32>,
}

/// Posting lists, names and text of the active members.
#[derive(Debug, Default)]
pub(crate) struct SearchIndex {
    postings: HashMap<(Field, String), Posting>,
    /// Designations by word: "Founder & CEO" is under founder and ceo.
    designation_words: HashMap<String, Posting>,
    years: HashMap<u16, Posting>,
    names: Names,
    /// `None` only if tantivy failed to build in RAM (logged): free words
    /// then find no one, while everything else still works.
    text: Option<TextIndex>,
}

impl SearchIndex {
    pub(crate) fn build(directory: &Directory, synonyms: &[&Synonyms]) -> SearchIndex {
        let mut aliases = same_field_aliases(synonyms);
        add_spelling_aliases(directory, &mut aliases);
        let active = || {
            directory
                .members()
                .iter()
                .enumerate()
                .filter(|(_, m)| m.active)
                .filter_map(|(i, m)| Some((u32::try_from(i).ok()?, m)))
        };
        let mut index = SearchIndex::default();
        for (i, member) in active() {
            index.add(i, member, &aliases);
        }
        let universe = directory.len();
        let all = index
            .postings
            .values_mut()
            .chain(index.designation_words.values_mut())
            .chain(index.years.values_mut());
        for posting in all {
            posting.finish(universe);
        }
        index.names = Names::build(active());
        index.text = match TextIndex::build(active()) {
            Ok(text) => Some(text),
            Err(e) => {
                tracing::error!("the free-text index could not be built: {e}");
                None
            }
        };
        index
    }

    fn add(&mut self, i: u32, member: &Member, aliases: &HashMap<(Field, String), Vec<String>>) {
        let file = |posting: &mut Posting| posting.push(i);
        for field in Field::STRUCTURED {
            for value in field.values(member) {
                let key = text::key(value);
                if key.is_empty() {
                    continue;
                }
                if field == Field::Designation {
                    for word in key.split(' ') {
                        file(self.designation_words.entry(word.to_owned()).or_default());
                    }
                }
                if let Some(others) = aliases.get(&(field, key.clone())) {
                    for other in others {
                        file(self.postings.entry((field, other.clone())).or_default());
                    }
                }
                file(self.postings.entry((field, key)).or_default());
            }
        }
        if let Some(year) = member.graduation_year {
            file(self.years.entry(year).or_default());
        }
    }

    pub(crate) fn names(&self) -> &Names {
        &self.names
    }

    pub(crate) fn text(&self) -> Option<&TextIndex> {
        self.text.as_ref()
    }

    /// Active members matching every constraint of `entities`: how many, and
    /// the first `limit` in rank order. No constraint at all finds no one.
    pub(crate) fn search(&self, entities: &Entities, limit: usize) -> Hits {
        let none = Posting::default();
        let mut owned: Vec<Posting> = Vec::new();
        let mut lists: Vec<&Posting> = Vec::new();
        for field in Field::STRUCTURED {
            let Some(value) = field.get(entities) else {
                continue;
            };
            let key = text::key(value);
            if field == Field::Designation {
                let words: Vec<&Posting> = key
                    .split(' ')
                    .map(|w| self.designation_words.get(w).unwrap_or(&none))
                    .collect();
                let found = postings::intersect_all(&words).first(usize::MAX);
                owned.push(Posting::from_ids(found));
            } else {
                lists.push(self.postings.get(&(field, key)).unwrap_or(&none));
            }
        }
        if let Some(year) = entities.graduation_year {
            lists.push(self.years.get(&year).unwrap_or(&none));
        }
        if let Some(name) = &entities.name {
            owned.push(Posting::from_ids(self.names.members(name)));
        }
        lists.extend(owned.iter());
        let keywords: Vec<String> = entities
            .keywords
            .iter()
            .filter(|k| !k.trim().is_empty())
            .cloned()
            .collect();
        if keywords.is_empty() {
            if lists.is_empty() {
                return Hits::default();
            }
            let matches = postings::intersect_all(&lists);
            return Hits {
                total: matches.len(),
                top: matches.first(limit),
            };
        }
        let allowed = if lists.is_empty() {
            None
        } else {
            let matches = postings::intersect_all(&lists);
            if matches.is_empty() {
                return Hits::default();
            }
            Some(Arc::new(matches))
        };
        let Some(text) = &self.text else {
            return Hits::default();
        };
        match text.search(&keywords, allowed, limit) {
            Ok(ranked) => Hits {
                total: ranked.total,
                top: ranked.top,
            },
            Err(e) => {
                tracing::error!("free-text search failed: {e}");
                Hits::default()
            }
        }
    }

    /// How many members a search finds.
    pub(crate) fn count(&self, entities: &Entities) -> usize {
        self.search(entities, 0).total
    }
}

/// Values of one field that are the same word in another number or
/// spelling (`Textile` and `Textiles`, `Paediatrics` and `Pediatrics`) are
/// filed under each other, so either finds both.
fn add_spelling_aliases(
    directory: &Directory,
    aliases: &mut HashMap<(Field, String), Vec<String>>,
) {
    let mut distinct: std::collections::HashSet<(Field, &str)> = std::collections::HashSet::new();
    for member in directory.active_members() {
        for field in Field::STRUCTURED {
            distinct.extend(field.values(member).into_iter().map(|v| (field, v)));
        }
    }
    let mut keys: HashMap<Field, std::collections::HashSet<String>> = HashMap::new();
    for (field, value) in distinct {
        let key = text::key(value);
        if !key.is_empty() {
            keys.entry(field).or_default().insert(key);
        }
    }
    for (field, set) in &keys {
        let mut by_form: HashMap<String, Vec<&String>> = HashMap::new();
        for key in set {
            let folded = super::concepts::fold(key);
            let (head, last) = match folded.rsplit_once(' ') {
                Some((head, last)) => (format!("{head} "), last.to_owned()),
                None => (String::new(), folded.clone()),
            };
            by_form
                .entry(format!("{head}{}", singular(&last)))
                .or_default()
                .push(key);
        }
        for group in by_form.values().filter(|g| g.len() > 1) {
            for key in group {
                for other in group.iter().filter(|o| *o != key) {
                    let list = aliases.entry((*field, (*key).clone())).or_default();
                    if !list.contains(other) {
                        list.push((*other).clone());
                    }
                }
            }
        }
    }
}

/// A word's singular, for grouping: "textiles" → "textile", "companies"
/// → "company".
fn singular(word: &str) -> String {
    if let Some(stem) = word.strip_suffix("ies").filter(|s| s.len() >= 2) {
        return format!("{stem}y");
    }
    match word.strip_suffix('s') {
        Some(stem) if !stem.ends_with('s') && stem.len() >= 3 => stem.to_owned(),
        _ => word.to_owned(),
    }
}

/// (field, key) → other keys of the same field the synonyms give it:
/// ("city", "bangalore") → ["bengaluru"].
fn same_field_aliases(synonyms: &[&Synonyms]) -> HashMap<(Field, String), Vec<String>> {
    let mut aliases: HashMap<(Field, String), Vec<String>> = HashMap::new();
    for table in synonyms {
        for synonym in &table.entries {
            let Meaning::Fields(fields) = &synonym.meaning else {
                continue;
            };
            for (field, value) in fields {
                let target = text::key(value);
                if *field == Field::Keyword || target == synonym.term {
                    continue;
                }
                let list = aliases.entry((*field, synonym.term.clone())).or_default();
                if !list.contains(&target) {
                    list.push(target);
                }
            }
        }
    }
    aliases
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::Region;

    fn index() -> SearchIndex {
        let csv = "name,phone,profession,specialty,designation,city,area,skills,graduation_year,status,bio\n\
            Asha,+919800000001,Doctor,Cardiology,Founder & CEO,Bengaluru,Koramangala,Echo,1995,active,metro\n\
            Ravi,+919800000002,Doctor,Cardiology,Consultant,Bangalore,Jayanagar,Echo,1995,inactive,metro\n\
            Meera,+919800000003,Doctor,Pediatrics,Co-founder,Chennai,Adyar,Echo,1996,active,\n\
            Karan,+919800000004,Lawyer,,Partner,Bengaluru,Koramangala,,1995,active,metro\n\
            Lata,+919800000005,Physician,,,Bangalore,,,,active,\n";
        let directory = Directory::from_csv(csv, Region::default()).unwrap();
        let builtin =
            super::super::concepts::Concepts::build(&directory).resolve(&Synonyms::builtin());
        SearchIndex::build(&directory, &[&builtin])
    }

    fn search(index: &SearchIndex, entities: Entities) -> Vec<u32> {
        index.search(&entities, 100).top
    }

    #[test]
    fn structured_constraints_filter_exactly() {
        let index = index();
        let doctors_in_bengaluru = Entities {
            profession: Some("Doctor".into()),
            city: Some("bengaluru".into()),
            ..Entities::default()
        };
        // Lata is a "Physician" in "Bangalore": found through the synonyms.
        assert_eq!(search(&index, doctors_in_bengaluru), [0, 4]);
        let founders = Entities {
            designation: Some("Founder".into()),
            ..Entities::default()
        };
        assert_eq!(search(&index, founders), [0, 2]);
        let batch = Entities {
            graduation_year: Some(1995),
            area: Some("Koramangala".into()),
            ..Entities::default()
        };
        assert_eq!(search(&index, batch), [0, 3]);
        assert!(search(&index, Entities::default()).is_empty());
        let unknown = Entities {
            profession: Some("Astronaut".into()),
            ..Entities::default()
        };
        assert!(search(&index, unknown).is_empty());
    }

    #[test]
    fn keywords_rank_among_the_constrained() {
        let index = index();
        let metro_lawyers = Entities {
            profession: Some("Lawyer".into()),
            keywords: vec!["metro".into()],
            ..Entities::default()
        };
        assert_eq!(search(&index, metro_lawyers), [3]);
        let metro = Entities {
            keywords: vec!["metro".into()],
            ..Entities::default()
        };
        let hits = index.search(&metro, 1);
        assert_eq!(hits.total, 2, "inactive Ravi is not indexed");
        assert_eq!(hits.top.len(), 1);
    }

    #[test]
    fn names_find_members() {
        let index = index();
        let asha = Entities {
            name: Some("Aasha".into()),
            ..Entities::default()
        };
        assert_eq!(search(&index, asha), [0]);
    }
}
