//! Finding members by name: first names, surnames, full names, and near
//! spellings ("Priyaa", "Laxmi" for Lakshmi, "Sharmaa").
//!
//! Each word of each active member's name is indexed. A word the member
//! writes matches the name words it equals; when none does, those that sound
//! alike ([`text::sound_key`]); when none does, those within the typos
//! allowed ([`typo`]). So an exact spelling never brings near ones along,
//! and a near one still finds someone.

use std::collections::HashMap;

use super::postings;
use super::text;
use super::typo::TypoIndex;
use crate::directory::Member;

/// Name words of active members.
#[derive(Debug, Default)]
pub(crate) struct Names {
    /// Name word → members with it, ascending.
    words: HashMap<String, Vec<u32>>,
    /// Sound-alike key → the name words with it.
    sounds: HashMap<String, Vec<String>>,
    /// First letter → members whose first name starts with it, for
    /// initials ("R. Sharma").
    initials: HashMap<char, Vec<u32>>,
    typos: TypoIndex,
}

/// How closely a written word matched a name word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Closeness {
    Exact,
    SoundsAlike,
    Typo,
}

impl Names {
    /// Indexes the names of `members` (`(index, member)` pairs).
    pub(crate) fn build<'a>(members: impl Iterator<Item = (u32, &'a Member)>) -> Names {
        let mut words: HashMap<String, Vec<u32>> = HashMap::new();
        // An initial stands for the first name: "R. Sharma".
        let mut first_names: Vec<(u32, String)> = Vec::new();
        for (i, member) in members {
            if let Some(first) = text::words(&member.name).into_iter().next() {
                first_names.push((i, first.text));
            }
            for word in text::words(&member.name) {
                let list = words.entry(word.text).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        let mut sounds: HashMap<String, Vec<String>> = HashMap::new();
        for word in words.keys() {
            if word.chars().count() >= 3 {
                sounds
                    .entry(text::sound_key(word))
                    .or_default()
                    .push(word.clone());
            }
        }
        for list in sounds.values_mut() {
            list.sort();
        }
        let mut initials: HashMap<char, Vec<u32>> = HashMap::new();
        for (i, member) in &first_names {
            if let Some(first) = member.chars().next() {
                initials.entry(first).or_default().push(*i);
            }
        }
        for list in initials.values_mut() {
            list.sort_unstable();
            list.dedup();
        }
        let typos = TypoIndex::new(
            words
                .iter()
                .map(|(w, ids)| (w.as_str(), u32::try_from(ids.len()).unwrap_or(u32::MAX))),
        );
        Names {
            words,
            sounds,
            initials,
            typos,
        }
    }

    /// Whether `word` is exactly a word of some member's name.
    pub(crate) fn is_name_word(&self, word: &str) -> bool {
        self.words.contains_key(word)
    }

    /// The name words `word` stands for, and how closely; empty if none.
    pub(crate) fn matches(&self, word: &str) -> (Vec<&str>, Option<Closeness>) {
        if let Some((found, _)) = self.words.get_key_value(word) {
            return (vec![found.as_str()], Some(Closeness::Exact));
        }
        if word.chars().count() >= 3
            && let Some(alike) = self.sounds.get(&text::sound_key(word))
        {
            return (
                alike.iter().map(String::as_str).collect(),
                Some(Closeness::SoundsAlike),
            );
        }
        let candidates = self.typos.candidates(word);
        let best = candidates.first().map(|(_, d)| *d);
        let closest: Vec<&str> = candidates
            .into_iter()
            .filter(|(_, d)| Some(*d) == best)
            .map(|(w, _)| w)
            .collect();
        if closest.is_empty() {
            (closest, None)
        } else {
            (closest, Some(Closeness::Typo))
        }
    }

    /// Members whose name has a match for every word of `name`, ascending.
    pub(crate) fn members(&self, name: &str) -> Vec<u32> {
        let mut lists = Vec::new();
        for word in text::words(name) {
            let mut letters = word.text.chars();
            if let (Some(initial), None) = (letters.next(), letters.next()) {
                lists.push(self.initials.get(&initial).cloned().unwrap_or_default());
                continue;
            }
            let (matched, _) = self.matches(&word.text);
            let mut union: Vec<u32> = matched
                .iter()
                .filter_map(|w| self.words.get(*w))
                .flatten()
                .copied()
                .collect();
            union.sort_unstable();
            union.dedup();
            lists.push(union);
        }
        lists.sort_by_key(Vec::len);
        let mut lists = lists.into_iter();
        let Some(mut found) = lists.next() else {
            return Vec::new();
        };
        for list in lists {
            found = postings::intersect(&found, &list);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Directory;
    use crate::phone::Region;

    fn names() -> (Directory, Names) {
        let csv = "name,phone\nPriya Deshpande,+919800000001\nRahul Sharma,+919800000002\nLakshmi Iyer,+919800000003\nPriyanka Rao,+919800000004\nShreya Sharma,+919800000005\n";
        let directory = Directory::from_csv(csv, Region::default()).unwrap();
        let names = Names::build(
            directory
                .members()
                .iter()
                .enumerate()
                .map(|(i, m)| (i as u32, m)),
        );
        (directory, names)
    }

    #[test]
    fn exact_then_sound_then_typo() {
        let (_, names) = names();
        assert_eq!(names.members("priya"), [0]);
        assert_eq!(names.members("Rahul Sharma"), [1]);
        assert_eq!(names.members("sharma"), [1, 4]);
        assert_eq!(names.members("laxmi"), [2], "sounds alike");
        assert_eq!(names.members("priyaa"), [0], "one typo");
        assert_eq!(names.members("Rahul Sarma"), [1]);
        assert_eq!(names.members("R Sharma"), [1], "an initial");
        assert_eq!(names.members("S Sharma"), [4]);
        assert!(names.members("zed").is_empty());
        assert!(names.members("").is_empty());
    }
}
