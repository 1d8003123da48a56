//! Ranking members by meaning: one contiguous `f32` array of unit vectors,
//! row = directory position, scanned with a dot product (cosine) and a
//! floor, keeping the best few. 100k members of 384 dimensions are 146 MiB
//! read once per search (`cargo bench --bench assistant`, `semantic`).

/// Unit vectors of the members that have one, by directory position.
#[derive(Debug, Clone, Default)]
pub struct SemanticIndex {
    dim: usize,
    data: Vec<f32>,
    present: Vec<bool>,
}

impl SemanticIndex {
    /// An index of `rows` (one per directory position, `None` for members
    /// without a vector); rows of another length than the first count as
    /// absent.
    pub fn new(rows: Vec<Option<Vec<f32>>>) -> SemanticIndex {
        let dim = rows.iter().flatten().map(Vec::len).next().unwrap_or(0);
        let mut data = Vec::with_capacity(rows.len() * dim);
        let mut present = Vec::with_capacity(rows.len());
        for row in rows {
            match row {
                Some(v) if v.len() == dim => {
                    data.extend_from_slice(&v);
                    present.push(true);
                }
                _ => {
                    data.extend(std::iter::repeat_n(0.0, dim));
                    present.push(false);
                }
            }
        }
        SemanticIndex { dim, data, present }
    }

    /// Members with a vector.
    pub fn len(&self) -> usize {
        self.present.iter().filter(|p| **p).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The `limit` positions most similar to `query` (a unit vector) with a
    /// similarity of at least `floor`, best first; only `allowed` ones when
    /// given.
    pub fn rank(
        &self,
        query: &[f32],
        allowed: Option<&[u32]>,
        floor: f32,
        limit: usize,
    ) -> Vec<(u32, f32)> {
        if query.len() != self.dim || self.dim == 0 || limit == 0 {
            return Vec::new();
        }
        let mut best: Vec<(u32, f32)> = Vec::with_capacity(limit + 1);
        let mut consider = |i: u32| {
            let at = i as usize;
            if !self.present.get(at).copied().unwrap_or(false) {
                return;
            }
            let Some(row) = self.data.get(at * self.dim..(at + 1) * self.dim) else {
                return;
            };
            let score = dot(row, query);
            if score < floor || best.len() == limit && best.last().is_some_and(|b| b.1 >= score) {
                return;
            }
            let place = best.partition_point(|b| b.1 >= score);
            best.insert(place, (i, score));
            best.truncate(limit);
        };
        match allowed {
            Some(positions) => positions.iter().for_each(|&i| consider(i)),
            None => (0..self.present.len() as u32).for_each(&mut consider),
        }
        best
    }
}

/// The dot product, in chunks the compiler vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = a.chunks_exact(8).zip(b.chunks_exact(8));
    for (x, y) in chunks {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail = a.len() - a.len() % 8;
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in a[tail..].iter().zip(&b[tail..]) {
        sum += x * y;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_by_cosine_above_the_floor_within_the_allowed() {
        let index = SemanticIndex::new(vec![
            Some(vec![1.0, 0.0]),
            None,
            Some(vec![0.6, 0.8]),
            Some(vec![0.0, 1.0]),
        ]);
        assert_eq!(index.len(), 3);
        let ranked: Vec<u32> = index
            .rank(&[0.0, 1.0], None, 0.5, 5)
            .iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(ranked, vec![3, 2]);
        let allowed: Vec<u32> = index
            .rank(&[0.0, 1.0], Some(&[0, 2]), 0.5, 5)
            .iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(allowed, vec![2]);
        assert_eq!(index.rank(&[0.0, 1.0], None, -1.0, 1).len(), 1);
    }
}
