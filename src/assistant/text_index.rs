//! The free-text index: tantivy, in RAM, over what members wrote about
//! themselves (skills, services, bio, extra CSV columns, and the words of
//! their profession, designation and organization), for the words of a
//! message that name no field ("who works on metro projects", "speaks
//! Tamil").
//!
//! Words are stemmed (English) on both sides, so "weddings" finds
//! "wedding". Every keyword must match (in any field); members rank by
//! BM25, skills and services weighing most. Structured constraints filter
//! inside the collector, so ranking a narrow search stays cheap.

use std::sync::Arc;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{FAST, Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    DocId, Index, IndexWriter, ReloadPolicy, Score, Searcher, SegmentReader, TantivyDocument, Term,
};

use super::postings::Matches;
use crate::directory::Member;

/// The tokenizer: lower-case words, English stems.
const ANALYZER: &str = "en_stem";
/// Memory for building; the index of 100,000 members needs far less.
const WRITER_BUDGET: usize = 64 * 1024 * 1024;

/// Extra columns that may hold contact details: never indexed or shown.
pub(crate) fn is_contact_column(header: &str) -> bool {
    let h = header.to_ascii_lowercase();
    [
        "phone", "mobile", "email", "e-mail", "mail", "whatsapp", "contact", "tel", "address",
    ]
    .iter()
    .any(|w| h.contains(w))
}

/// The searchable text fields and their weights.
#[derive(Debug, Clone, Copy)]
struct Fields {
    skills: Field,
    services: Field,
    work: Field,
    bio: Field,
    extra: Field,
    member: Field,
}

impl Fields {
    fn weighted(&self) -> [(Field, Score); 5] {
        [
            (self.skills, 3.0),
            (self.services, 3.0),
            (self.work, 2.0),
            (self.bio, 1.0),
            (self.extra, 1.0),
        ]
    }
}

/// Members ranked for some keywords.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Ranked {
    /// How many members match in all.
    pub total: usize,
    /// The best `limit`, best first.
    pub top: Vec<u32>,
}

/// The tantivy index of active members.
pub(crate) struct TextIndex {
    searcher: Searcher,
    fields: Fields,
    analyzer: TextAnalyzer,
}

impl std::fmt::Debug for TextIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextIndex")
            .field("docs", &self.searcher.num_docs())
            .finish()
    }
}

impl TextIndex {
    /// Indexes `members` (`(index, member)` pairs).
    pub(crate) fn build<'a>(
        members: impl Iterator<Item = (u32, &'a Member)>,
    ) -> tantivy::Result<TextIndex> {
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqs),
        );
        let mut schema = Schema::builder();
        let fields = Fields {
            skills: schema.add_text_field("skills", text.clone()),
            services: schema.add_text_field("services", text.clone()),
            work: schema.add_text_field("work", text.clone()),
            bio: schema.add_text_field("bio", text.clone()),
            extra: schema.add_text_field("extra", text),
            member: schema.add_u64_field("member", FAST),
        };
        let index = Index::create_in_ram(schema.build());
        let mut writer: IndexWriter<TantivyDocument> =
            index.writer_with_num_threads(1, WRITER_BUDGET)?;
        for (i, member) in members {
            writer.add_document(document(&fields, i, member))?;
        }
        writer.commit()?;
        writer.wait_merging_threads()?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let analyzer = index
            .tokenizers()
            .get(ANALYZER)
            .ok_or_else(|| tantivy::TantivyError::InvalidArgument(ANALYZER.to_owned()))?;
        Ok(TextIndex {
            searcher: reader.searcher(),
            fields,
            analyzer,
        })
    }

    /// The index terms of a word (its stems).
    fn terms(&self, word: &str) -> Vec<String> {
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(word);
        let mut out = Vec::new();
        while let Some(token) = stream.next() {
            out.push(token.text.clone());
        }
        out
    }

    /// Whether some member's text contains `word` (stemmed).
    pub(crate) fn knows(&self, word: &str) -> bool {
        let terms = self.terms(word);
        !terms.is_empty()
            && terms.iter().all(|t| {
                self.fields.weighted().iter().any(|(field, _)| {
                    self.searcher
                        .doc_freq(&Term::from_field_text(*field, t))
                        .is_ok_and(|n| n > 0)
                })
            })
    }

    /// Members matching every keyword, among `allowed` if given, ranked.
    pub(crate) fn search(
        &self,
        keywords: &[String],
        allowed: Option<Arc<Matches>>,
        limit: usize,
    ) -> tantivy::Result<Ranked> {
        let mut musts: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for keyword in keywords {
            let mut shoulds: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for term in self.terms(keyword) {
                for (field, weight) in self.fields.weighted() {
                    let query = TermQuery::new(
                        Term::from_field_text(field, &term),
                        IndexRecordOption::WithFreqs,
                    );
                    shoulds.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(Box::new(query), weight)),
                    ));
                }
            }
            if shoulds.is_empty() {
                // A keyword with no indexable word matches no one.
                return Ok(Ranked::default());
            }
            musts.push((Occur::Must, Box::new(BooleanQuery::new(shoulds))));
        }
        if musts.is_empty() {
            return Ok(Ranked::default());
        }
        let collector = RankedMembers {
            member: self.fields.member,
            allowed,
            limit,
        };
        let (total, mut top) = self
            .searcher
            .search(&BooleanQuery::new(musts), &collector)?;
        top.truncate(limit);
        Ok(Ranked {
            total,
            top: top.into_iter().map(|(_, i)| i).collect(),
        })
    }
}

fn document(fields: &Fields, i: u32, member: &Member) -> TantivyDocument {
    let mut doc = TantivyDocument::new();
    doc.add_u64(fields.member, u64::from(i));
    doc.add_text(fields.skills, member.skills.join("; "));
    doc.add_text(fields.services, member.services.join("; "));
    let work = [
        &member.profession,
        &member.specialty,
        &member.designation,
        &member.organization,
        &member.degree,
        &member.branch,
    ];
    for part in work.into_iter().filter(|p| !p.is_empty()) {
        doc.add_text(fields.work, part);
    }
    if !member.bio.is_empty() {
        doc.add_text(fields.bio, &member.bio);
    }
    for (header, value) in &member.extra {
        if !is_contact_column(header) {
            doc.add_text(fields.extra, value);
        }
    }
    doc
}

/// Counts matching members and keeps the best `limit` (score, member).
struct RankedMembers {
    member: Field,
    allowed: Option<Arc<Matches>>,
    limit: usize,
}

struct RankedSegment {
    members: Column<u64>,
    allowed: Option<Arc<Matches>>,
    limit: usize,
    total: usize,
    top: Vec<(Score, u32)>,
}

impl Collector for RankedMembers {
    type Fruit = (usize, Vec<(Score, u32)>);
    type Child = RankedSegment;

    fn for_segment(&self, _: u32, segment: &SegmentReader) -> tantivy::Result<RankedSegment> {
        let name = segment.schema().get_field_name(self.member).to_owned();
        Ok(RankedSegment {
            members: segment.fast_fields().u64(&name)?,
            allowed: self.allowed.clone(),
            limit: self.limit,
            total: 0,
            top: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(
        &self,
        fruits: Vec<(usize, Vec<(Score, u32)>)>,
    ) -> tantivy::Result<(usize, Vec<(Score, u32)>)> {
        let total = fruits.iter().map(|(n, _)| n).sum();
        let mut top: Vec<(Score, u32)> = fruits.into_iter().flat_map(|(_, t)| t).collect();
        top.sort_by(better_first);
        top.truncate(self.limit);
        Ok((total, top))
    }
}

/// Higher score first; the earlier member first on a tie.
fn better_first(a: &(Score, u32), b: &(Score, u32)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

impl SegmentCollector for RankedSegment {
    type Fruit = (usize, Vec<(Score, u32)>);

    fn collect(&mut self, doc: DocId, score: Score) {
        let Some(member) = self.members.first(doc).and_then(|m| u32::try_from(m).ok()) else {
            return;
        };
        if self
            .allowed
            .as_ref()
            .is_some_and(|set| !set.contains(member))
        {
            return;
        }
        self.total += 1;
        if self.limit == 0 {
            return;
        }
        let entry = (score, member);
        if self.top.len() == self.limit {
            match self.top.last() {
                Some(worst) if better_first(&entry, worst).is_lt() => {
                    self.top.pop();
                }
                _ => return,
            }
        }
        let at = self
            .top
            .partition_point(|e| better_first(e, &entry).is_lt());
        self.top.insert(at, entry);
    }

    fn harvest(self) -> Self::Fruit {
        (self.total, self.top)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Directory;
    use crate::phone::Region;

    fn index() -> TextIndex {
        let csv = "name,phone,skills,bio,languages\n\
            A,+919800000001,Rust; Go,Builds metro rail software,Tamil\n\
            B,+919800000002,Python,Photographs weddings,Hindi; Tamil\n\
            C,+919800000003,Rust,Mentors juniors,Hindi\n";
        let directory = Directory::from_csv(csv, Region::default()).unwrap();
        TextIndex::build(
            directory
                .members()
                .iter()
                .enumerate()
                .map(|(i, m)| (i as u32, m)),
        )
        .unwrap()
    }

    #[test]
    fn keywords_must_all_match_and_rank() {
        let idx = index();
        let search = |words: &[&str]| {
            let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
            idx.search(&words, None, 10).unwrap()
        };
        assert_eq!(search(&["tamil"]).total, 2);
        assert_eq!(search(&["tamil", "rust"]).top, [0]);
        assert_eq!(search(&["wedding"]).top, [1], "stemmed");
        assert_eq!(search(&["plumbers"]).total, 0);
        assert!(idx.knows("metro"));
        assert!(idx.knows("Weddings"));
        assert!(!idx.knows("plumber"));
        assert!(!idx.knows("🙂"));
    }

    #[test]
    fn the_allowed_set_filters_and_the_limit_cuts() {
        let idx = index();
        let allowed = Arc::new(Matches::Ids(vec![2]));
        let ranked = idx.search(&["rust".to_owned()], Some(allowed), 10).unwrap();
        assert_eq!(
            ranked,
            Ranked {
                total: 1,
                top: vec![2]
            }
        );
        let ranked = idx.search(&["hindi".to_owned()], None, 1).unwrap();
        assert_eq!(ranked.total, 2);
        assert_eq!(ranked.top.len(), 1);
    }
}
