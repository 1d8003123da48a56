//! Typo tolerance, by Meilisearch's rules: no typo in words of up to four
//! letters, one from five letters, two from nine; a transposition counts as
//! one typo and a wrong first letter as two.
//!
//! Candidates are found with symmetric deletions (SymSpell): every known
//! word is stored under itself and its one- and two-letter deletions (as
//! 64-bit hashes in one sorted array, compact even for large directories);
//! a query looks up its own deletions and checks the few candidates with
//! the real distance. A lookup costs microseconds whatever the vocabulary
//! size.

use std::hash::{DefaultHasher, Hash, Hasher};

/// Known words and their deletions, for finding what a misspelling meant.
#[derive(Debug, Default)]
pub(crate) struct TypoIndex {
    words: Vec<String>,
    /// How common each word is; the commoner wins a tie.
    weights: Vec<u32>,
    /// (hash of a deletion variant, word id), sorted.
    variants: Vec<(u64, u32)>,
    /// The most characters of any known word: a query longer than this by
    /// more than its allowed typos cannot be near any of them.
    longest: usize,
}

/// Typos allowed in a query word of `chars` characters.
pub(crate) fn allowed_typos(chars: usize) -> usize {
    match chars {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    }
}

/// Typos between `query` and `word`: optimal string alignment distance
/// (a transposition is one), plus one when the first letters differ.
pub(crate) fn typos(query: &str, word: &str) -> usize {
    let first_differs = query.chars().next() != word.chars().next();
    strsim::osa_distance(query, word) + usize::from(first_differs)
}

impl TypoIndex {
    /// Builds the index over `(word, weight)` pairs; repeated words add up.
    pub(crate) fn new<'a>(words: impl IntoIterator<Item = (&'a str, u32)>) -> TypoIndex {
        let mut weights: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
        for (word, weight) in words {
            if !word.is_empty() {
                *weights.entry(word).or_default() += weight;
            }
        }
        let mut sorted: Vec<(&str, u32)> = weights.into_iter().collect();
        sorted.sort_unstable();
        let mut index = TypoIndex::default();
        for (id, (word, weight)) in sorted.into_iter().enumerate() {
            let Ok(id) = u32::try_from(id) else { break };
            let chars: Vec<char> = word.chars().collect();
            // A word can be the target of a query of up to two more letters,
            // so it needs deletions up to what such a query is allowed.
            let depth = allowed_typos(chars.len() + 2).min(2);
            for variant in deletions(&chars, depth) {
                index.variants.push((hash(&variant), id));
            }
            index.longest = index.longest.max(chars.len());
            index.words.push(word.to_owned());
            index.weights.push(weight);
        }
        index.variants.sort_unstable();
        index.variants.dedup();
        index
    }

    /// Whether `word` is known exactly.
    pub(crate) fn contains(&self, word: &str) -> bool {
        self.words
            .binary_search_by(|w| w.as_str().cmp(word))
            .is_ok()
    }

    /// Known words within the typos allowed for `query`, closest first, then
    /// commonest; empty when `query` is known exactly or too short.
    pub(crate) fn candidates(&self, query: &str) -> Vec<(&str, usize)> {
        let chars: Vec<char> = query.chars().collect();
        let allowed = allowed_typos(chars.len());
        // Each deletion is one typo, so a query longer than every known word
        // by more than it may have typos has no candidate; skipping it spares
        // its len² deletions (a message of long unknown words cost 290 ms of
        // debug-build CPU in the fault suite, tests/it/faults.rs).
        if allowed == 0 || chars.len() > self.longest + allowed || self.contains(query) {
            return Vec::new();
        }
        let mut ids: Vec<u32> = Vec::new();
        for variant in deletions(&chars, allowed) {
            let h = hash(&variant);
            let start = self.variants.partition_point(|(v, _)| *v < h);
            ids.extend(
                self.variants
                    .get(start..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|(v, _)| *v == h)
                    .map(|(_, id)| *id),
            );
        }
        ids.sort_unstable();
        ids.dedup();
        let mut found: Vec<(&str, usize, u32)> = ids
            .into_iter()
            .filter_map(|id| {
                let i = id as usize;
                let (word, weight) = (self.words.get(i)?, self.weights.get(i)?);
                let distance = typos(query, word);
                (distance <= allowed).then_some((word.as_str(), distance, *weight))
            })
            .collect();
        found.sort_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)).then(a.0.cmp(b.0)));
        found.into_iter().map(|(w, d, _)| (w, d)).collect()
    }

    /// The single best correction of `query`, if any.
    pub(crate) fn correct(&self, query: &str) -> Option<&str> {
        self.candidates(query).first().map(|(w, _)| *w)
    }
}

/// `chars` with up to `depth` characters deleted, itself included.
fn deletions(chars: &[char], depth: usize) -> Vec<String> {
    let mut out = vec![chars.iter().collect::<String>()];
    let mut frontier = vec![chars.to_vec()];
    for _ in 0..depth {
        let mut next = Vec::new();
        for word in &frontier {
            if word.len() <= 1 {
                continue;
            }
            for skip in 0..word.len() {
                let shorter: Vec<char> = word
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != skip)
                    .map(|(_, c)| *c)
                    .collect();
                out.push(shorter.iter().collect());
                next.push(shorter);
            }
        }
        frontier = next;
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn hash(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(words: &[&str]) -> TypoIndex {
        TypoIndex::new(words.iter().map(|w| (*w, 1)))
    }

    #[test]
    fn meilisearch_word_sizes() {
        let idx = index(&["doctor", "bangalore", "cardiologist", "rust"]);
        assert_eq!(
            idx.correct("docter"),
            Some("doctor"),
            "one typo at 6 letters"
        );
        assert_eq!(
            idx.correct("dcotor"),
            Some("doctor"),
            "a transposition is one"
        );
        assert_eq!(idx.correct("rast"), None, "no typo under 5 letters");
        assert_eq!(idx.correct("bnglaore"), None, "two typos need 9 letters");
        assert_eq!(idx.correct("banglaore"), Some("bangalore"));
        assert_eq!(idx.correct("cardologst"), Some("cardiologist"));
        assert_eq!(
            idx.correct("kardiologst"),
            None,
            "first letter (2) + one more"
        );
        assert_eq!(
            idx.correct("xoctor"),
            None,
            "a first-letter typo counts twice"
        );
        assert_eq!(
            idx.correct("doctor"),
            None,
            "known words need no correction"
        );
    }

    #[test]
    fn the_closest_then_commonest_wins() {
        let idx = TypoIndex::new([("lawyer", 1), ("layer", 5), ("lawyers", 1)]);
        assert_eq!(idx.correct("lawyrs"), Some("lawyers"));
        let tie = TypoIndex::new([("swati", 1), ("swathi", 3)]);
        assert_eq!(tie.candidates("swathy")[0].0, "swathi");
    }

    #[test]
    fn a_query_may_be_longer_than_every_word_by_its_typos_and_no_more() {
        let idx = index(&["cardiologist", "doctor"]);
        assert_eq!(idx.correct("cardiologistss"), Some("cardiologist"));
        assert_eq!(idx.correct("cardiologistsss"), None);
        let long = "doctorsinbangaloretellaboutrao".repeat(2);
        assert!(idx.candidates(&long).is_empty());
    }

    #[test]
    fn any_text_is_safe() {
        let idx = index(&["डॉक्टर", "a", ""]);
        assert_eq!(idx.correct("डॉक्टरर"), Some("डॉक्टर"));
        assert!(idx.candidates("").is_empty());
        assert!(idx.candidates("🙂🙂🙂🙂🙂").is_empty());
    }
}
