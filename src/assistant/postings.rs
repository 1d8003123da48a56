//! Posting lists: the members that satisfy one constraint, and their
//! intersection.
//!
//! Structured constraints ("doctors" ∧ "in Bengaluru") are exact filters, so
//! each is a sorted list of member indices and a search is the intersection
//! of its lists. A list holding more than 1/32 of the directory also keeps a
//! bitset (no bigger than the list itself): dense lists are ANDed a word at
//! a time, sparse ones probe the bitsets or gallop through each other. At
//! 100,000 members, "doctors in Bengaluru" (two lists of 12,500) costs
//! about a microsecond instead of a hundred.

/// The members satisfying one constraint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Posting {
    /// Ascending member indices.
    ids: Vec<u32>,
    /// The same set as a bitset, for dense lists.
    bits: Option<Vec<u64>>,
}

impl Posting {
    /// Appends a member; indices must come in ascending order.
    pub(crate) fn push(&mut self, id: u32) {
        if self.ids.last().is_none_or(|&last| last < id) {
            self.ids.push(id);
        }
    }

    /// Adds the bitset if this list is dense among `universe` members.
    pub(crate) fn finish(&mut self, universe: usize) {
        if self.ids.len() * 32 >= universe && universe > 0 {
            self.bits = Some(to_bits(&self.ids));
        }
    }

    pub(crate) fn from_ids(ids: Vec<u32>) -> Posting {
        Posting { ids, bits: None }
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    fn contains(&self, id: u32) -> bool {
        match &self.bits {
            Some(bits) => bit(bits, id),
            None => self.ids.binary_search(&id).is_ok(),
        }
    }
}

/// The result of an intersection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Matches {
    Ids(Vec<u32>),
    Bits { words: Vec<u64>, count: usize },
}

impl Matches {
    pub(crate) fn len(&self) -> usize {
        match self {
            Matches::Ids(ids) => ids.len(),
            Matches::Bits { count, .. } => *count,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn contains(&self, id: u32) -> bool {
        match self {
            Matches::Ids(ids) => ids.binary_search(&id).is_ok(),
            Matches::Bits { words, .. } => bit(words, id),
        }
    }

    /// The first `n` members, ascending.
    pub(crate) fn first(&self, n: usize) -> Vec<u32> {
        match self {
            Matches::Ids(ids) => ids.iter().take(n).copied().collect(),
            Matches::Bits { words, .. } => {
                let mut out = Vec::new();
                for (w, &word) in words.iter().enumerate() {
                    let mut rest = word;
                    while rest != 0 && out.len() < n {
                        let b = rest.trailing_zeros();
                        out.push((w as u32) * 64 + b);
                        rest &= rest - 1;
                    }
                    if out.len() >= n {
                        break;
                    }
                }
                out
            }
        }
    }
}

/// Intersects posting lists (none: nothing matches).
pub(crate) fn intersect_all(lists: &[&Posting]) -> Matches {
    let (dense, mut sparse): (Vec<&Posting>, Vec<&Posting>) =
        lists.iter().copied().partition(|p| p.bits.is_some());
    if sparse.is_empty() {
        let mut words: Option<Vec<u64>> = None;
        for posting in &dense {
            let Some(bits) = &posting.bits else { continue };
            words = Some(match words {
                None => bits.clone(),
                Some(mut acc) => {
                    acc.truncate(bits.len());
                    for (a, b) in acc.iter_mut().zip(bits) {
                        *a &= b;
                    }
                    acc
                }
            });
        }
        let words = words.unwrap_or_default();
        let count = words.iter().map(|w| w.count_ones() as usize).sum();
        return Matches::Bits { words, count };
    }
    sparse.sort_by_key(|p| p.len());
    let (smallest, others) = sparse.split_at(1);
    let mut ids: Vec<u32> = smallest
        .first()
        .map(|p| {
            p.ids
                .iter()
                .copied()
                .filter(|&id| dense.iter().all(|d| d.contains(id)))
                .collect()
        })
        .unwrap_or_default();
    for other in others {
        if ids.is_empty() {
            break;
        }
        ids = intersect(&ids, &other.ids);
    }
    Matches::Ids(ids)
}

/// Intersects two ascending lists, `small` usually the shorter.
pub(crate) fn intersect(small: &[u32], large: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(small.len().min(large.len()));
    let mut rest = large;
    for &x in small {
        // Gallop: double the step until past `x`, then binary-search.
        let mut step = 1;
        while step < rest.len() && rest[step] < x {
            step *= 2;
        }
        let end = (step + 1).min(rest.len());
        let at = rest[..end].partition_point(|&y| y < x);
        rest = &rest[at..];
        match rest.first() {
            Some(&y) if y == x => out.push(x),
            Some(_) => {}
            None => break,
        }
    }
    out
}

fn to_bits(ids: &[u32]) -> Vec<u64> {
    let size = ids.last().map_or(0, |&m| m as usize / 64 + 1);
    let mut bits = vec![0u64; size];
    for &id in ids {
        if let Some(word) = bits.get_mut(id as usize / 64) {
            *word |= 1 << (id % 64);
        }
    }
    bits
}

fn bit(words: &[u64], id: u32) -> bool {
    words
        .get(id as usize / 64)
        .is_some_and(|w| w & (1 << (id % 64)) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posting(ids: impl IntoIterator<Item = u32>, universe: usize) -> Posting {
        let mut p = Posting::default();
        for id in ids {
            p.push(id);
        }
        p.finish(universe);
        p
    }

    #[test]
    fn gallops() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[0, 1, 2, 3, 4, 7, 9]), [1, 3, 7]);
        assert_eq!(intersect(&[], &[1]), Vec::<u32>::new());
        assert_eq!(intersect(&[5], &[]), Vec::<u32>::new());
        assert_eq!(intersect(&[100], &(0..200).collect::<Vec<_>>()), [100]);
    }

    #[test]
    fn every_mix_of_dense_and_sparse_matches_a_naive_filter() {
        let universe = 10_000;
        let threes = posting((0..10_000).filter(|x| x % 3 == 0), universe);
        let sevens = posting((0..10_000).filter(|x| x % 7 == 0), universe);
        let rare = posting((0..10_000).filter(|x| x % 700 == 0), universe);
        let rarer = posting((0..10_000).filter(|x| x % 1400 == 0), universe);
        assert!(threes.bits.is_some() && rare.bits.is_none());
        let expect = |m: u32| (0..10_000u32).filter(|x| x % m == 0).collect::<Vec<_>>();
        let all = |m: &Matches| m.first(usize::MAX);
        let dense = intersect_all(&[&threes, &sevens]);
        assert_eq!(all(&dense), expect(21));
        assert_eq!(dense.len(), expect(21).len());
        assert_eq!(dense.first(2), [0, 21]);
        assert!(dense.contains(42) && !dense.contains(43));
        let mixed = intersect_all(&[&threes, &rare, &sevens]);
        assert_eq!(all(&mixed), expect(2100));
        let sparse = intersect_all(&[&rarer, &rare]);
        assert_eq!(all(&sparse), expect(1400));
        assert!(intersect_all(&[]).is_empty());
        let none = posting([], universe);
        assert!(intersect_all(&[&threes, &none]).is_empty());
    }
}
