//! One exchange as stored: the message, what the assistant made of it
//! ([`Intent`], [`Entities`]) and what it listed.
//!
//! Stored (bincode, by field order and variant index) inside every session:
//! see [`super::STORED_VERSION`] before changing anything here.

use serde::{Deserialize, Serialize};

/// One exchange: what the member asked and what the assistant made of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The message text as received.
    pub query: String,
    /// When it arrived, in ms since the Unix epoch.
    pub timestamp_ms: u64,
    pub intent: Intent,
    pub entities: Entities,
    /// Total matches of the search the message ran (0 if none ran).
    pub result_count: u32,
    /// `member_id`s listed in the reply, in order, for "2" or "contact".
    pub result_ids: Vec<String>,
    /// The page of results shown (0 for the first), for "more".
    pub page: u32,
}

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
    /// The next page of the last search.
    More,
    /// Everything about one member of the page shown.
    Details,
    /// Phone and email of members shown.
    Contact,
    /// The last search, adjusted ("what about Chennai?").
    Refine,
}

impl Intent {
    pub fn as_str(&self) -> &'static str {
        match self {
            Intent::Greeting => "greeting",
            Intent::Help => "help",
            Intent::Thanks => "thanks",
            Intent::Search => "search",
            Intent::Unknown => "unknown",
            Intent::More => "more",
            Intent::Details => "details",
            Intent::Contact => "contact",
            Intent::Refine => "refine",
        }
    }

    /// Whether an exchange of this intent listed a page of results, which
    /// "more", a number and "contact" then refer to.
    pub fn lists_results(&self) -> bool {
        matches!(self, Intent::Search | Intent::Refine | Intent::More)
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
    /// Free words ranked against skills, bio and extra columns; at most
    /// [`MAX_KEYWORDS`], however many follow-ups add to them.
    pub keywords: Vec<String>,
}

/// Free words kept for one search: more rank nothing better, and each one
/// is carried into every later entry of a refined search.
pub const MAX_KEYWORDS: usize = 16;

impl Entities {
    /// Whether nothing constrains a search.
    pub fn is_empty(&self) -> bool {
        !self.has_constraints()
    }

    /// Whether anything constrains a search.
    pub fn has_constraints(&self) -> bool {
        self.city.is_some()
            || self.area.is_some()
            || self.graduation_year.is_some()
            || self.names_a_subject()
    }

    /// Whether it says whom to look for, beyond where or which batch:
    /// "in Koramangala" adjusts the last search, "lawyers" starts one.
    pub fn names_a_subject(&self) -> bool {
        [
            &self.profession,
            &self.specialty,
            &self.designation,
            &self.skill,
            &self.service,
            &self.organization,
            &self.degree,
            &self.branch,
        ]
        .iter()
        .any(|v| v.is_some())
            || self.name.is_some()
            || self.keywords.iter().any(|k| !k.trim().is_empty())
    }
}

/// An exchange as recorded in a session: the [`Entry`], and its stored form
/// once worked out. An exchange never changes once recorded, so a record
/// holding ten of them encodes only the newest on each message (the store
/// says how, through [`RecordedEntry::stored`]). Stored, compared and shown
/// as the bare [`Entry`].
pub struct RecordedEntry {
    entry: Entry,
    stored: std::sync::OnceLock<Box<[u8]>>,
}

impl RecordedEntry {
    /// Its stored form: `encode`'s, the first time it is asked for.
    pub fn stored(&self, encode: impl FnOnce(&Entry) -> Vec<u8>) -> &[u8] {
        self.stored
            .get_or_init(|| encode(&self.entry).into_boxed_slice())
    }
}

impl From<Entry> for RecordedEntry {
    fn from(entry: Entry) -> RecordedEntry {
        RecordedEntry {
            entry,
            stored: std::sync::OnceLock::new(),
        }
    }
}

impl std::ops::Deref for RecordedEntry {
    type Target = Entry;

    fn deref(&self) -> &Entry {
        &self.entry
    }
}

impl Clone for RecordedEntry {
    fn clone(&self) -> RecordedEntry {
        RecordedEntry {
            entry: self.entry.clone(),
            stored: self.stored.clone(),
        }
    }
}

impl std::fmt::Debug for RecordedEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.entry.fmt(f)
    }
}

impl PartialEq for RecordedEntry {
    fn eq(&self, other: &RecordedEntry) -> bool {
        self.entry == other.entry
    }
}

impl Eq for RecordedEntry {}

impl Serialize for RecordedEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.entry.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RecordedEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Entry::deserialize(deserializer).map(RecordedEntry::from)
    }
}
