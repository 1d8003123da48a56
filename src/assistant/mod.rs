//! The assistant: understanding a member's message in its conversation,
//! searching the directory, and composing the WhatsApp reply. Rule-based
//! and offline: no LLM, microseconds per message.
//!
//! One message goes [`Assistant::understand`] → [`Understanding`] (an
//! [`Intent`], the [`Entities`] of the search it asks for, with the
//! session's context applied) → [`Assistant::answer`] → [`Answer`] (the
//! reply, and what the session should remember: [`Answer::entry`]). The
//! webhook asks [`Understanding::runs_search`] in between, so that only
//! real searches spend the member's search quota.
//!
//! | module | owns |
//! | --- | --- |
//! | `text` | normalising words: case, accents, punctuation, plurals, sound-alike keys |
//! | `words` | the conversational grammar: filler, greetings, more, contact, ordinals, cues |
//! | `synonyms` | the synonyms CSV format; the built-in table of concepts |
//! | `concepts` | what the built-in concepts are called in the loaded directory |
//! | `field` | the searchable member fields, one name across modules |
//! | `typo` | typo tolerance (Meilisearch's rules) by symmetric deletion |
//! | `vocabulary` | phrases from the directory and synonyms, and how to read them |
//! | `names` | finding members by (near) name |
//! | `postings` | sorted member lists and their intersection |
//! | `text_index` | the tantivy free-text index and its ranked, filtered collector |
//! | `index` | the search itself: exact filters, names, free text |
//! | `understand` | reading a message; planning the answer in its conversation |
//! | `answer` | carrying out the plan |
//! | `reply` | WhatsApp wording: lists, details, contacts, no-results, help |

mod answer;
mod concepts;
mod field;
mod index;
pub(crate) mod model_reading;
mod names;
mod place;
mod postings;
mod reply;
mod synonyms;
mod text;
mod text_index;
mod typo;
mod understand;
mod vocabulary;
mod words;

use std::sync::Arc;

pub use synonyms::{Synonyms, SynonymsError};

use crate::conversation::{Entities, Entry, Intent, MAX_KEYWORDS, Session};
use crate::directory::{Directory, Member};
use concepts::Concepts;
use index::SearchIndex;
use understand::{Plan, Reader};
use vocabulary::Vocabulary;

/// How many results one reply lists.
pub const PAGE_SIZE: usize = 5;

/// The assistant's reading of one message in its conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Understanding {
    pub intent: Intent,
    /// The search asked for (with the context of a follow-up applied), or
    /// the search a follow-up continues.
    pub entities: Entities,
    plan: Plan,
}

impl Understanding {
    /// Whether answering runs a new directory search (and so spends one):
    /// a search or a refined search; pages, details and contacts of results
    /// already found do not.
    pub fn runs_search(&self) -> bool {
        matches!(self.intent, Intent::Search | Intent::Refine)
    }
}

/// The reply and what the session should remember of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub text: String,
    /// Total matches of the search shown or continued (0 if none).
    pub result_count: usize,
    /// `member_id`s listed (or detailed, or contacted) in this reply, in order.
    pub shown_ids: Vec<String>,
    /// The page of results shown (0 for the first).
    pub page: u32,
    /// The search this reply belongs to, for the next follow-up.
    pub entities: Entities,
}

impl Answer {
    fn plain(text: String) -> Answer {
        Answer {
            text,
            result_count: 0,
            shown_ids: Vec::new(),
            page: 0,
            entities: Entities::default(),
        }
    }

    /// The session entry for this exchange: the next follow-up is computed
    /// from it alone.
    pub fn entry(&self, query: &str, timestamp_ms: u64, understanding: &Understanding) -> Entry {
        Entry {
            query: query.chars().take(MAX_QUERY_CHARS).collect(),
            timestamp_ms,
            intent: understanding.intent,
            entities: self.entities.clone(),
            result_count: u32::try_from(self.result_count).unwrap_or(u32::MAX),
            result_ids: self.shown_ids.clone(),
            page: self.page,
        }
    }
}

/// How much of a message its history entry keeps: the entry is context for
/// people reading a session, and a session must stay small however long the
/// messages are.
pub const MAX_QUERY_CHARS: usize = 500;

/// One directory load with everything drawn from it: vocabulary, indexes.
pub struct Assistant {
    directory: Arc<Directory>,
    org_name: String,
    /// The words of the organisation's name: members address the assistant
    /// by them ("Hi Sahyadri"), so they search for nothing.
    org_words: Vec<String>,
    vocabulary: Vocabulary,
    index: SearchIndex,
}

impl std::fmt::Debug for Assistant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assistant")
            .field("members", &self.directory.len())
            .field("phrases", &self.vocabulary.len())
            .finish()
    }
}

impl Assistant {
    /// The assistant over `directory` with the built-in synonyms only.
    pub fn new(directory: Arc<Directory>, org_name: &str) -> Assistant {
        Assistant::with_synonyms(directory, org_name, &Synonyms::default())
    }

    /// The assistant over `directory` with the built-in synonyms and the
    /// operator's `synonyms` (which win).
    pub fn with_synonyms(
        directory: Arc<Directory>,
        org_name: &str,
        synonyms: &Synonyms,
    ) -> Assistant {
        // The built-in table names concepts; this directory's values for
        // them are found once per load.
        let concepts = Concepts::build(&directory);
        let builtin = concepts.resolve(&Synonyms::builtin());
        let spellings = concepts.spellings();
        let tables = vocabulary::Tables {
            builtin: &builtin,
            spellings: &spellings,
            operator: synonyms,
        };
        Assistant {
            vocabulary: Vocabulary::build(&directory, &tables),
            index: SearchIndex::build(&directory, &[&builtin, synonyms]),
            org_name: org_name.to_owned(),
            org_words: text::words(org_name).into_iter().map(|w| w.text).collect(),
            directory,
        }
    }

    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// Reads `text` from `member` in the conversation of `session`.
    pub fn understand(&self, text: &str, session: &Session, member: &Member) -> Understanding {
        self.reader().understand(text, session, member)
    }

    fn reader(&self) -> Reader<'_> {
        Reader {
            vocabulary: &self.vocabulary,
            index: &self.index,
            org_words: &self.org_words,
        }
    }

    /// Every active member a search finds, best first.
    pub fn search(&self, entities: &Entities) -> Vec<&Member> {
        let hits = self.index.search(entities, usize::MAX);
        self.members(&hits.top)
    }

    /// The members at these directory positions.
    fn members(&self, indices: &[u32]) -> Vec<&Member> {
        let all = self.directory.members();
        indices
            .iter()
            .filter_map(|&i| all.get(i as usize))
            .filter(|m| m.active)
            .collect()
    }

    /// The active member with this id.
    fn member_by_id(&self, id: &str) -> Option<&Member> {
        self.directory.by_id(id).filter(|m| m.active)
    }
}
