//! Reading a message: first what its words say (`Reader::parse`), then what
//! they mean in the conversation so far (`Reader::plan`).
//!
//! Parsing corrects misspellings against the vocabulary, matches the
//! longest known phrases (reading each by the cues of the whole message),
//! and sorts the rest: numbers (a graduation year or a position in the
//! list), conversational words, member names (exact, then sound-alike,
//! then within typos), free words the text index knows, role-like unknown
//! words ("plumbers", searched so the reply can say none was found), and
//! words it ignores. Planning uses only the session's stored entries (the
//! last search's entities, its page and the ids shown), so follow-ups work
//! the same after a restart.

use super::concepts;
use super::field::Field;
use super::index::SearchIndex;
use super::text::{self, Word};
use super::vocabulary::{Cues, Reading, Vocabulary};
use super::words::{self, Role};
use super::{Entities, Intent, MAX_KEYWORDS, Understanding};
use crate::conversation::{Entry, Session};
use crate::directory::Member;

/// A place in the list of results shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Position {
    /// 1-based.
    Nth(u32),
    Last,
}

/// The conversational requests a message makes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Requests {
    pub greeting: bool,
    pub help: bool,
    pub thanks: bool,
    pub more: bool,
    pub contact: bool,
    pub details: bool,
}

/// What one message says, before the conversation is taken into account.
#[derive(Debug, Clone, Default)]
pub(crate) struct Parsed {
    pub entities: Entities,
    /// "in all cities": lift the location of the last search.
    pub any_location: bool,
    /// "my batchmates": the sender's own graduation year.
    pub own_batch: bool,
    pub requests: Requests,
    pub position: Option<Position>,
    /// "only", "those", "what about": adjust the last search.
    pub refine_cue: bool,
    /// "find", "members": start afresh even with only a place named.
    pub fresh_cue: bool,
    /// Second values for a field already set ("Chennai or Mumbai").
    pub extra_values: Vec<(Field, String)>,
    /// Words in a script other than Latin that meant nothing.
    pub foreign_words: bool,
    pub word_count: usize,
    /// "the one in Nashik", "the doctor": narrow the list just shown, even
    /// a list of members found by name.
    pub narrow_cue: bool,
    /// Things asked for that the directory has no one for ("plumbers"),
    /// as a reply names them.
    pub missing: Vec<(usize, String)>,
    /// Where phrases naming whom to look for start ("yoga *teachers*"):
    /// an unknown word right before one qualifies it.
    pub subject_starts: Vec<usize>,
}

/// The last search of the conversation, as stored in its session entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listing {
    pub entities: Entities,
    pub page: u32,
    pub total: u32,
    pub ids: Vec<String>,
}

impl Listing {
    fn from_entry(entry: &Entry) -> Listing {
        Listing {
            entities: entry.entities.clone(),
            page: entry.page,
            total: entry.result_count,
            ids: entry.result_ids.clone(),
        }
    }
}

/// Whom a contact request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ContactTarget {
    /// Everyone on the page shown.
    Shown,
    /// One of the page shown.
    At(Position),
    /// The member whose details were just shown.
    Member(String),
}

/// A reply that needs no search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chat {
    Greeting,
    Help,
    Thanks,
    Unknown {
        foreign: bool,
    },
    /// "My batchmates" from a member whose year the directory lacks.
    NoOwnYear,
    /// "More" before any search.
    NoSearchYet,
}

/// What answering a message involves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Run the search in the understanding's entities; show page one, with
    /// contact details or full details when asked for alongside a name.
    Search {
        contact: bool,
        details: bool,
        /// Values beyond the one a field can take, to mention.
        extra_values: Vec<(Field, String)>,
    },
    /// Show another page of the last search.
    Page {
        page: u32,
        listing: Listing,
    },
    /// Details of one member of the page shown.
    Details {
        position: Option<Position>,
        listing: Option<Listing>,
    },
    /// Phone and email of members shown.
    Contact {
        target: ContactTarget,
        listing: Option<Listing>,
    },
    Chat(Chat),
}

/// Reads messages against one directory's vocabulary and index.
pub(crate) struct Reader<'a> {
    pub vocabulary: &'a Vocabulary,
    pub index: &'a SearchIndex,
    /// Words of the organisation's name, which search for nothing.
    pub org_words: &'a [String],
}

impl Reader<'_> {
    /// Reads `text` from `member`, in the conversation of `session`.
    pub(crate) fn understand(
        &self,
        text: &str,
        session: &Session,
        member: &Member,
    ) -> Understanding {
        let parsed = self.parse(text);
        let (intent, entities, plan) = self.plan(parsed, session, member);
        Understanding {
            intent,
            entities,
            plan,
        }
    }

    /// What the words of a message say.
    pub(crate) fn parse(&self, message: &str) -> Parsed {
        let mut parsed = Parsed::default();
        if message.contains(['🙏', '👍', '👌']) {
            parsed.requests.thanks = true;
        }
        if message.contains('👋') {
            parsed.requests.greeting = true;
        }
        let raw = text::words(message);
        parsed.word_count = raw.len();
        let frames = self.name_frames(&raw);
        let words: Vec<Word> = raw
            .iter()
            .zip(&frames)
            .map(|(w, frame)| match frame {
                Frame::Open => self.corrected(w),
                Frame::Name | Frame::Cue => w.clone(),
            })
            .collect();
        let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
        let framed = frames.contains(&Frame::Name);
        parsed.narrow_cue = (texts.first() == Some(&"the") && !framed)
            || texts.windows(2).any(|p| {
                matches!(p, ["the" | "which" | "that", "one" | "ones"])
                    || matches!(p, [_, "wala" | "wali" | "wale" | "vala" | "vali"])
            });
        parsed.refine_cue = texts.iter().any(|w| words::is_refine_cue(w))
            || texts
                .first()
                .is_some_and(|w| words::is_leading_refine_cue(w))
            || texts
                .windows(2)
                .any(|p| matches!(p, ["what" | "how", "about"]));
        parsed.fresh_cue = texts.iter().any(|w| words::is_fresh_search_cue(w));

        let leftovers = self.match_phrases(&texts, &frames, cues(&words), &mut parsed);
        let mut rest = Rest::default();
        for i in leftovers {
            let (Some(word), Some(original), Some(frame)) =
                (words.get(i), raw.get(i), frames.get(i))
            else {
                continue;
            };
            match frame {
                Frame::Name => rest.name_words.push((i, &original.text)),
                Frame::Cue => {}
                Frame::Open => {
                    self.sort_word(i, word, &original.text, &texts, &mut parsed, &mut rest)
                }
            }
        }
        self.finish(rest, &texts, &mut parsed);
        parsed
    }

    /// Which words a name frame marks as a name ("surname Pillai", "the
    /// Shah family", "Dr Kulkarni", "R. Sharma", "is Kabir Anand a
    /// member", "is there a Kabir Anand", "anyone called Meera"), and the
    /// cue words of those frames, which then search for nothing.
    fn name_frames(&self, words: &[Word]) -> Vec<Frame> {
        let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
        let mut frames = vec![Frame::Open; texts.len()];
        let names = self.index.names();
        // A word that can be part of a name: a member's name word, or a
        // word that means nothing else here.
        let nameable = |w: &str| {
            names.is_name_word(w)
                || (!self.vocabulary.knows_word(w)
                    && words::role(w).is_none()
                    && !words::is_name_cue(w)
                    && w.chars().all(char::is_alphabetic)
                    && w.chars().count() >= 2)
        };
        let mark_from = |frames: &mut Vec<Frame>, start: usize, stop: Option<usize>| {
            let end = stop.unwrap_or(texts.len()).min(start + 3);
            for (frame, w) in frames.iter_mut().zip(&texts).take(end).skip(start) {
                if !nameable(w) {
                    break;
                }
                *frame = Frame::Name;
            }
        };
        for (i, &w) in texts.iter().enumerate() {
            let next = texts.get(i + 1).copied();
            if words::is_name_cue(w) {
                let honorific = words::is_honorific(w);
                // "dr in Pune" is a doctor; "Dr Kulkarni" a name.
                if next.is_some_and(|n| names.is_name_word(n) || (!honorific && nameable(n))) {
                    frames[i] = Frame::Cue;
                    mark_from(&mut frames, i + 1, None);
                }
            } else if w == "family"
                && i >= 1
                && texts.get(i - 1).is_some_and(|p| names.is_name_word(p))
            {
                frames[i] = Frame::Cue;
                frames[i - 1] = Frame::Name;
            } else if w.chars().count() == 1
                && w.chars().all(|c| c.is_ascii_lowercase())
                && !matches!(w, "a" | "i" | "u" | "s" | "t" | "d" | "m")
                && next.is_some_and(|n| names.is_name_word(n))
            {
                // "R. Sharma": an initial.
                frames[i] = Frame::Name;
            }
        }
        // "is Kabir Anand a member", "is there a Kabir Anand".
        if let Some(start) = texts.iter().position(|w| *w == "is") {
            let member_at = texts
                .iter()
                .position(|w| matches!(*w, "member" | "members"));
            let after_there = match texts.get(start + 1..) {
                Some(["there", "a" | "an" | "any" | "someone" | "somebody", ..]) => Some(start + 3),
                Some(["there", ..]) => Some(start + 2),
                _ => None,
            };
            if let Some(member_at) = member_at.filter(|&m| m > start + 1) {
                let stop = if texts.get(member_at - 1) == Some(&"a") {
                    member_at - 1
                } else {
                    member_at
                };
                mark_from(&mut frames, start + 1, Some(stop));
            } else if let Some(from) = after_there {
                let all_nameable = texts.get(from..).is_some_and(|rest| {
                    !rest.is_empty()
                        && rest.len() <= 3
                        && rest
                            .iter()
                            .all(|w| nameable(w) && !words::looks_like_a_role(w))
                });
                if all_nameable {
                    mark_from(&mut frames, from, None);
                }
            }
        }
        frames
    }

    /// Applies the longest known phrases, left to right; the positions of
    /// the words no phrase covers.
    fn match_phrases(
        &self,
        texts: &[&str],
        frames: &[Frame],
        cues: Cues,
        parsed: &mut Parsed,
    ) -> Vec<usize> {
        let mut leftovers = Vec::new();
        let mut i = 0;
        // Where the last phrase naming whom to look for ended.
        let mut last_subject_end = usize::MAX;
        while let Some(rest) = texts.get(i..).filter(|r| !r.is_empty()) {
            // Words a name frame claimed are names, not vocabulary.
            let open = frames
                .get(i..)
                .map_or(0, |f| f.iter().take_while(|f| **f == Frame::Open).count());
            if open == 0 {
                leftovers.push(i);
                i += 1;
                continue;
            }
            let rest = rest.get(..open).unwrap_or(rest);
            if self.prefers_name(i, texts) {
                leftovers.push(i);
                i += 1;
                continue;
            }
            let found = self.acronym_run(rest).or_else(|| {
                let beside = parsed
                    .subject_starts
                    .last()
                    .is_some_and(|_| last_subject_end == i)
                    || texts
                        .get(i + 1)
                        .and_then(|w| self.vocabulary.phrase(w))
                        .is_some_and(|s| !s.values.is_empty());
                self.longest_phrase(rest, cues, beside)
            });
            match found {
                Some((len, reading)) => {
                    let fields: Vec<Field> = match &reading {
                        Reading::Fields(f) => f.iter().map(|(f, _)| *f).collect(),
                        _ => Vec::new(),
                    };
                    if fields
                        .iter()
                        .any(|f| !matches!(f, Field::City | Field::Area | Field::Keyword))
                    {
                        parsed.subject_starts.push(i);
                    }
                    apply(parsed, i, reading);
                    i += len.max(1);
                    if parsed.subject_starts.last() == Some(&(i - len.max(1))) {
                        last_subject_end = i;
                    }
                    // "orthopaedic surgeons", "cardiology specialist": the
                    // role word adds nothing to the specialty.
                    if fields.contains(&Field::Specialty)
                        && texts.get(i).is_some_and(|w| words::is_generic_role(w))
                    {
                        i += 1;
                    }
                    // "Infosys Ltd employees", "LIC agents".
                    if fields.contains(&Field::Organization) {
                        while texts.get(i).is_some_and(|w| words::is_organization_tail(w)) {
                            i += 1;
                        }
                    }
                    // "diamond traders", "food processing units": a head
                    // noun no vocabulary knows after what the member is in.
                    let described = fields.iter().any(|f| {
                        matches!(
                            f,
                            Field::Specialty | Field::Skill | Field::Service | Field::Organization
                        )
                    }) && !fields.contains(&Field::Profession);
                    if described && texts.get(i).is_some_and(|w| self.is_head_noun(w)) {
                        i += 1;
                    }
                }
                None => {
                    leftovers.push(i);
                    i += 1;
                }
            }
        }
        leftovers
    }

    /// Whether the word at `i` is read as part of a name rather than as
    /// the short form of a value: "Meera *Joshi*" is a member, not Joshi
    /// Industries Pvt Ltd.
    fn prefers_name(&self, i: usize, texts: &[&str]) -> bool {
        let names = self.index.names();
        let Some(word) = texts.get(i) else {
            return false;
        };
        if !names.is_name_word(word) && !self.org_words.iter().any(|w| w == word) {
            return false;
        }
        let short = self
            .vocabulary
            .phrase(word)
            .is_some_and(|s| s.short_form_only && s.synonym.is_none());
        let beside_a_name = [i.checked_sub(1), Some(i + 1)]
            .into_iter()
            .flatten()
            .filter_map(|j| texts.get(j))
            .any(|w| {
                let initial = w.chars().count() == 1 && !matches!(*w, "a" | "i" | "u");
                initial
                    || (names.is_name_word(w)
                        && self.vocabulary.phrase(w).is_none_or(|s| s.short_form_only))
            });
        // "Hi Deccan": the organisation's own name, not a search.
        let own_name = self.org_words.iter().any(|w| w == word);
        short && (beside_a_name || own_name)
    }

    /// A word that means nothing here and reads as the head of what came
    /// before it ("traders", "units").
    fn is_head_noun(&self, word: &str) -> bool {
        word.len() >= 4
            && word.bytes().all(|b| b.is_ascii_lowercase())
            && self.vocabulary.phrase(word).is_none()
            && !self.vocabulary.knows_word(word)
            && words::role(word).is_none()
            && !self.index.names().is_name_word(word)
            && !self.index.text().is_some_and(|t| t.knows(word))
    }

    /// An organisation written out in full whose initials the directory
    /// uses ("state bank of india" for `SBI`), at the start of `words`.
    fn acronym_run(&self, words: &[&str]) -> Option<(usize, Reading)> {
        if words::is_filler(words.first()?) {
            return None;
        }
        for len in (2..=words.len().min(5)).rev() {
            let run = words.get(..len)?;
            let significant: Vec<&str> = run
                .iter()
                .copied()
                .filter(|w| !matches!(*w, "of" | "and" | "the" | "for"))
                .collect();
            let fillers = significant.iter().filter(|w| words::is_filler(w)).count();
            if significant.len() < 2
                || fillers > 1
                || run
                    .last()
                    .is_some_and(|w| matches!(*w, "of" | "and" | "the" | "for"))
                || !significant
                    .iter()
                    .all(|w| w.len() >= 2 && w.bytes().all(|b| b.is_ascii_lowercase()))
            {
                continue;
            }
            let initials: String = significant
                .iter()
                .filter_map(|w| w.chars().next())
                .collect();
            if let Some(organization) = self.vocabulary.acronym(&initials) {
                return Some((
                    len,
                    Reading::Fields(vec![(Field::Organization, organization.to_owned())]),
                ));
            }
        }
        None
    }

    /// Sorts a word no phrase covered: a number, a conversational word, a
    /// name, a free word, an unknown role, or nothing.
    fn sort_word<'w>(
        &self,
        i: usize,
        word: &Word,
        original: &'w str,
        texts: &[&str],
        parsed: &mut Parsed,
        rest: &mut Rest<'w>,
    ) {
        let before = i.checked_sub(1).and_then(|j| texts.get(j)).copied();
        let after = texts.get(i + 1).copied();
        let before_that = i.checked_sub(2).and_then(|j| texts.get(j)).copied();
        if let Some(number) = number(word, before, after, before_that) {
            match number {
                Number::Year(year) => {
                    parsed.entities.graduation_year.get_or_insert(year);
                }
                Number::Position(n) => {
                    parsed.position.get_or_insert(Position::Nth(n));
                }
            }
            return;
        }
        let text = word.text.as_str();
        if words::is_own_batch_word(text)
            || (matches!(before, Some("my" | "our" | "same"))
                && matches!(text, "batch" | "class" | "year"))
        {
            parsed.own_batch = true;
            return;
        }
        if let Some(role) = words::role(text) {
            match role {
                Role::Ordinal(n) => parsed.position = Some(Position::Nth(n)),
                Role::Last => parsed.position = Some(Position::Last),
                Role::Cardinal(n) => rest.cardinal = Some(n),
                other => request(&mut parsed.requests, other),
            }
            return;
        }
        let names = self.index.names();
        if names.is_name_word(text) {
            rest.name_words.push((i, original));
        } else if self.org_words.iter().any(|w| w == text) {
            // "Hi Sahyadri": the organisation, not a search.
        } else if names.matches(original).1 == Some(super::names::Closeness::SoundsAlike) {
            // "Kulkarny": a name as it sounds, before any free-text match.
            rest.name_words.push((i, original));
        } else if self.index.text().is_some_and(|t| t.knows(text)) {
            rest.free_words.push((i, text.to_owned()));
        } else if words::looks_like_a_role(text) && subject_position(i, texts) {
            // "any plumbers in Pune": what is asked for, not a near name.
            rest.unknown_roles.push((i, text.to_owned()));
        } else if names.matches(original).1.is_some() {
            rest.name_words.push((i, original));
        } else if words::looks_like_a_role(text) {
            rest.unknown_roles.push((i, text.to_owned()));
        } else if !text.is_ascii() {
            parsed.foreign_words = true;
            rest.foreign.get_or_insert_with(|| original.to_owned());
        } else if text.len() >= 2 && text.bytes().all(|b| b.is_ascii_lowercase()) {
            if before.is_some_and(words::is_place_preposition) {
                // "electricians in Surat" where no member is in Surat: the
                // place asked for, which finds no one, not every city.
                rest.unknown_place.get_or_insert_with(|| capitalised(text));
            } else {
                rest.unknown_words.push((i, original));
            }
        }
    }

    /// Settles what depends on the whole message: names, places no one is
    /// in, free words, what was asked for that no one is.
    fn finish(&self, mut rest: Rest<'_>, texts: &[&str], parsed: &mut Parsed) {
        self.settle_name(&mut rest, parsed);
        let searching =
            parsed.entities.has_constraints() || texts.iter().any(|w| words::is_search_verb(w));
        if parsed.entities.city.is_none()
            && parsed.entities.area.is_none()
            && let Some(place) = rest.unknown_place.take()
            && (parsed.entities.names_a_subject()
                || !rest.unknown_roles.is_empty()
                || !parsed.missing.is_empty()
                || searching)
        {
            parsed.entities.city = Some(place);
        }
        // What was asked for that no vocabulary, name or text knows: "any
        // plumbers in Pune" finds no one, and says so, rather than listing
        // Pune; "find yoga teachers" looks for teachers matching "yoga".
        let mut asked: Vec<(usize, String)> = Vec::new();
        if searching {
            asked.append(&mut rest.unknown_roles);
        }
        let named: Vec<usize> = rest.name_words.iter().map(|&(i, _)| i).collect();
        for &(i, word) in &rest.unknown_words {
            if !named.contains(&i) && subject_position(i, texts) {
                asked.push((i, word.to_owned()));
            }
        }
        asked.sort();
        settle_free_words(std::mem::take(&mut rest.free_words), texts, parsed);
        let missing = std::mem::take(&mut parsed.missing);
        if parsed.entities.names_a_subject() || parsed.entities.name.is_some() {
            qualify(missing, asked, texts, parsed);
        } else if !missing.is_empty() || !asked.is_empty() {
            ask_for_the_unknown(missing, asked, parsed);
        } else if let Some(foreign) = rest.foreign.take()
            && searching
        {
            // "सूरत में इंजीनियर" with no engineer here: what was asked, as
            // written, finds no one.
            parsed.entities.profession = Some(foreign);
        }
        self.prefer_specialty(&mut parsed.entities);
        parsed.entities.keywords.dedup();
        parsed.entities.keywords.truncate(MAX_KEYWORDS);
        if parsed.position.is_none() && parsed.word_count <= 4 {
            parsed.position = rest.cardinal.map(Position::Nth);
        }
    }

    /// "cloud engineers": where a broad profession and a specialty find no
    /// one together but the specialty does, the specialty is what was
    /// meant.
    fn prefer_specialty(&self, entities: &mut Entities) {
        let broad = entities
            .profession
            .as_deref()
            .is_some_and(|p| words::is_broad_profession(&text::key(p)));
        if !broad || entities.specialty.is_none() || self.index.count(entities) > 0 {
            return;
        }
        let mut without = entities.clone();
        without.profession = None;
        if self.index.count(&without) > 0 {
            *entities = without;
        }
    }

    /// `word`, or the vocabulary word it misspells.
    fn corrected(&self, word: &Word) -> Word {
        let text = word.text.as_str();
        let known = self.vocabulary.knows_word(text)
            || words::role(text).is_some()
            || words::is_own_batch_word(text)
            || text.bytes().all(|b| b.is_ascii_digit())
            || self.index.names().is_name_word(text)
            || self.index.text().is_some_and(|t| t.knows(text));
        if known {
            return word.clone();
        }
        // "pleaseee", "doctorsss", and British or American spellings.
        for other in text::squeezed(text)
            .into_iter()
            .chain(std::iter::once(concepts::fold(text)))
        {
            if other != text
                && (self.vocabulary.knows_word(&other) || words::role(&other).is_some())
            {
                return Word {
                    text: other,
                    ..word.clone()
                };
            }
        }
        // A near name ("Laxmi") is a name, not a misspelt vocabulary word.
        let (_, closeness) = self.index.names().matches(text);
        if closeness == Some(super::names::Closeness::SoundsAlike) {
            return word.clone();
        }
        match self.vocabulary.correct(text) {
            Some(fixed) => Word {
                text: fixed.to_owned(),
                ..word.clone()
            },
            None => word.clone(),
        }
    }

    /// The longest vocabulary phrase at the start of `words` that means
    /// something in this message, and how many words it spans.
    /// `beside_subject`: the phrase stands right beside another that names
    /// whom to look for ("retail *banking*"), so a short form is read as
    /// the value it stands for rather than as free text.
    fn longest_phrase(
        &self,
        words: &[&str],
        cues: Cues,
        beside_subject: bool,
    ) -> Option<(usize, Reading)> {
        let first = *words.first()?;
        // A conversational word ("more", "contact") steers the conversation
        // even if some directory value is spelled the same.
        let conversational = words::role(first).is_some_and(|r| r != Role::Filler);
        let longest = self.vocabulary.longest().min(words.len());
        for len in (1..=longest).rev() {
            if len == 1 && conversational {
                return None;
            }
            let Some(phrase) = words.get(..len) else {
                continue;
            };
            let key = phrase.join(" ");
            let Some(senses) = self.vocabulary.phrase(&key) else {
                continue;
            };
            let short = (senses.values.is_empty() || senses.short_form_only)
                && (senses.builtin.is_none() || senses.spelling_only)
                && senses.role.is_none();
            let free_text = short
                && !beside_subject
                && !senses.values.iter().any(|(f, _)| *f == Field::Organization)
                && senses.synonym.is_none()
                && len == 1
                && self.index.text().is_some_and(|t| t.knows(&key));
            if free_text {
                continue;
            }
            match senses.read(&key, cues) {
                Reading::Nothing => continue,
                reading => return Some((len, reading)),
            }
        }
        None
    }

    /// The intent, the full search and the plan, in the conversation.
    fn plan(
        &self,
        mut parsed: Parsed,
        session: &Session,
        member: &Member,
    ) -> (Intent, Entities, Plan) {
        let listing = session.last_search().map(Listing::from_entry);
        let mut entities = std::mem::take(&mut parsed.entities);
        if parsed.own_batch {
            match member.graduation_year {
                Some(year) => entities.graduation_year = Some(year),
                None => return chat(Chat::NoOwnYear),
            }
        }
        if entities.city.is_none()
            && let Some(area) = &entities.area
        {
            entities.city = self.vocabulary.city_of_area(area).map(str::to_owned);
        }
        if entities.has_constraints() || (parsed.any_location && listing.is_some()) {
            return plan_search(parsed, entities, listing);
        }
        if let Some(follow_up) = plan_follow_up(&parsed, session, listing) {
            return follow_up;
        }
        let requests = parsed.requests;
        chat(
            if requests.help || parsed.word_count == 0 && !requests.thanks && !requests.greeting {
                Chat::Help
            } else if requests.thanks {
                Chat::Thanks
            } else if requests.greeting {
                Chat::Greeting
            } else {
                Chat::Unknown {
                    foreign: parsed.foreign_words,
                }
            },
        )
    }
}

/// A new search, or the last one refined.
fn plan_search(
    parsed: Parsed,
    entities: Entities,
    listing: Option<Listing>,
) -> (Intent, Entities, Plan) {
    // Without a cue, only a place or a batch adjusts the last search ("in
    // Koramangala"), never a question of its own ("anyone in Pune?") and
    // never a search for a person by name.
    let refine = listing.as_ref().is_some_and(|last| {
        (parsed.narrow_cue && last.total > 0)
            || parsed.refine_cue
            || (!entities.names_a_subject()
                && !parsed.fresh_cue
                && !parsed.own_batch
                && last.entities.name.is_none())
            || (parsed.any_location && !entities.has_constraints())
    });
    if refine && let Some(listing) = &listing {
        let merged = refine_search(&listing.entities, &entities, parsed.any_location);
        let plan = Plan::Search {
            contact: false,
            details: false,
            extra_values: parsed.extra_values,
        };
        return (Intent::Refine, merged, plan);
    }
    let plan = Plan::Search {
        contact: parsed.requests.contact,
        details: parsed.requests.details && entities.name.is_some(),
        extra_values: parsed.extra_values,
    };
    (Intent::Search, entities, plan)
}

/// A position, details, contacts or the next page of the list shown.
fn plan_follow_up(
    parsed: &Parsed,
    session: &Session,
    listing: Option<Listing>,
) -> Option<(Intent, Entities, Plan)> {
    let requests = parsed.requests;
    let context = listing
        .as_ref()
        .map(|l| l.entities.clone())
        .unwrap_or_default();
    if let Some(position) = parsed.position {
        if requests.contact {
            let target = ContactTarget::At(position);
            return Some((Intent::Contact, context, Plan::Contact { target, listing }));
        }
        let position = Some(position);
        return Some((
            Intent::Details,
            context,
            Plan::Details { position, listing },
        ));
    }
    if requests.contact {
        // Right after one member's details, CONTACT is about that member.
        let focus = session
            .history
            .last()
            .filter(|e| e.intent == Intent::Details)
            .and_then(|e| e.result_ids.first().cloned());
        let target = focus.map_or(ContactTarget::Shown, ContactTarget::Member);
        return Some((Intent::Contact, context, Plan::Contact { target, listing }));
    }
    if requests.details {
        let position = None;
        return Some((
            Intent::Details,
            context,
            Plan::Details { position, listing },
        ));
    }
    if requests.more {
        return Some(match listing {
            Some(listing) => {
                let page = listing.page.saturating_add(1);
                (Intent::More, context, Plan::Page { page, listing })
            }
            None => chat(Chat::NoSearchYet),
        });
    }
    None
}

/// A reply that needs no search, and the intent it records.
fn chat(chat: Chat) -> (Intent, Entities, Plan) {
    let intent = match chat {
        Chat::Greeting => Intent::Greeting,
        Chat::Help | Chat::NoSearchYet => Intent::Help,
        Chat::Thanks => Intent::Thanks,
        Chat::Unknown { .. } | Chat::NoOwnYear => Intent::Unknown,
    };
    (intent, Entities::default(), Plan::Chat(chat))
}

/// A number read from a message.
enum Number {
    Year(u16),
    Position(u32),
}

/// Words of a message no phrase covered, gathered while sorting them.
#[derive(Default)]
struct Rest<'w> {
    /// (position, word as written) of name words.
    name_words: Vec<(usize, &'w str)>,
    /// Unknown words of no kind, which may complete a name.
    unknown_words: Vec<(usize, &'w str)>,
    /// (position, word) of unknown words shaped like a role.
    unknown_roles: Vec<(usize, String)>,
    /// "two": a position if the message is short.
    cardinal: Option<u32>,
    /// A place no member is in, written after "in" or "from".
    unknown_place: Option<String>,
    /// (position, word) of words members wrote about themselves.
    free_words: Vec<(usize, String)>,
    /// The first word in another script that meant nothing, as written.
    foreign: Option<String>,
}

/// What a name frame makes of a word (see `Reader::name_frames`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// Read as usual.
    Open,
    /// Part of a name.
    Name,
    /// The frame's own word ("surname", "Dr", "family"): means nothing.
    Cue,
}

/// Whether the word at `i` reads as the thing being searched for: after
/// "find", "any", "need", "looking for", "koi"; or right before "in",
/// "from", "near" and the like; or before "chahiye".
fn subject_position(i: usize, texts: &[&str]) -> bool {
    let before = texts
        .get(..i)
        .unwrap_or_default()
        .iter()
        .rev()
        .copied()
        .find(|w| {
            !matches!(
                *w,
                "a" | "an"
                    | "some"
                    | "good"
                    | "me"
                    | "the"
                    | "for"
                    | "of"
                    | "any"
                    | "koi"
                    | "ek"
                    | "us"
                    | "few"
                    | "reliable"
                    | "best"
            )
        });
    let wanted_before = texts
        .get(..i)
        .unwrap_or_default()
        .iter()
        .rev()
        .take(3)
        .any(|w| words::is_search_verb(w) || matches!(*w, "koi" | "any"));
    let after = texts.get(i + 1).copied();
    let place_after = after.is_some_and(|w| {
        matches!(
            w,
            "in" | "at"
                | "from"
                | "near"
                | "around"
                | "mein"
                | "me"
                | "mai"
                | "se"
                | "chahiye"
                | "chahie"
                | "chaiye"
                | "needed"
                | "required"
                | "available"
                | "hai"
                | "batao"
        )
    });
    (wanted_before && before.is_none_or(|w| !words::is_name_cue(w))) || place_after
}

impl Reader<'_> {
    /// The name the message asks for: its name words, with the unknown
    /// words beside them ("is there a Rahul Dravid" asks for Rahul Dravid,
    /// not for every Rahul).
    fn settle_name(&self, rest: &mut Rest<'_>, parsed: &mut Parsed) {
        let beside: Vec<(usize, &str)> = rest
            .unknown_words
            .iter()
            .copied()
            .filter(|&(i, _)| {
                rest.name_words
                    .iter()
                    .any(|&(j, _)| j + 1 == i || i + 1 == j)
            })
            .collect();
        rest.name_words.extend(beside);
        rest.name_words.sort_by_key(|&(i, _)| i);
        rest.name_words.dedup_by_key(|&mut (i, _)| i);
        if let Some(name) = self.name(&rest.name_words) {
            parsed.entities.name = Some(name);
        }
    }
}

/// Free words count where they can be what is asked: with nothing else
/// asked, right beside what is, or after "who knows", "with", "in", "for".
/// "an architect in Pune for my new office" is about the architect.
fn settle_free_words(free_words: Vec<(usize, String)>, texts: &[&str], parsed: &mut Parsed) {
    let has_subject = parsed.entities.names_a_subject();
    for (i, word) in free_words {
        let beside = parsed
            .subject_starts
            .iter()
            .any(|&s| s == i + 1 || s + 1 == i);
        let cued = i
            .checked_sub(1)
            .and_then(|j| texts.get(j))
            .is_some_and(|w| words::is_topic_cue(w))
            || texts.get(i + 1).is_some_and(|w| words::is_language_cue(w));
        if !has_subject || beside || cued {
            parsed.entities.keywords.push(word);
        }
    }
}

/// Whom to look for when nothing known was asked for: the missing thing
/// ("plumbers"), with the unknown words right before it ("yoga teacher");
/// else the unknown role-like words; else, for words that are no role at
/// all, a name no member has ("find Kabir").
fn ask_for_the_unknown(
    missing: Vec<(usize, String)>,
    mut asked: Vec<(usize, String)>,
    parsed: &mut Parsed,
) {
    if let Some((at, what)) = missing.first() {
        let mut start = *at;
        let mut qualifiers: Vec<&str> = Vec::new();
        while let Some((_, word)) = asked.iter().find(|(i, _)| i + 1 == start) {
            qualifiers.insert(0, word.as_str());
            start -= 1;
        }
        parsed.entities.profession = Some(if qualifiers.is_empty() {
            what.clone()
        } else {
            concepts::display(&format!("{} {}", qualifiers.join(" "), what.to_lowercase()))
        });
        return;
    }
    let roles = asked.iter().any(|(_, w)| words::looks_like_a_role(w));
    let contiguous = asked.windows(2).all(|p| p[0].0 + 1 == p[1].0);
    if roles && contiguous && asked.len() <= 3 {
        // "find a yoga teacher": one thing asked for.
        let phrase: Vec<&str> = asked.iter().map(|(_, w)| w.as_str()).collect();
        parsed.entities.profession = Some(concepts::display(&phrase.join(" ")));
    } else if roles {
        // Many words: the last role-like one is what is asked for, the
        // others qualify it.
        let at = asked
            .iter()
            .rposition(|(_, w)| words::looks_like_a_role(w))
            .unwrap_or_default();
        let (_, role) = asked.remove(at);
        parsed.entities.profession = Some(concepts::display(&role));
        parsed
            .entities
            .keywords
            .extend(asked.into_iter().map(|(_, w)| w));
    } else {
        parsed.entities.name = Some(
            asked
                .iter()
                .map(|(_, w)| capitalised(w))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
}

/// With something known asked for, the unknown words qualify it: a missing
/// thing and a word right before what is asked ("yoga teachers") become
/// free words that must match; a role-like word in the place of what is
/// asked too. Other unknown words are filler, which must not empty the
/// result.
fn qualify(
    missing: Vec<(usize, String)>,
    asked: Vec<(usize, String)>,
    texts: &[&str],
    parsed: &mut Parsed,
) {
    let words = missing
        .into_iter()
        .map(|(_, what)| text::key(&what))
        .chain(asked.into_iter().filter_map(|(i, word)| {
            let qualifies = parsed.subject_starts.contains(&(i + 1))
                || (words::looks_like_a_role(&word) && subject_position(i, texts));
            qualifies.then_some(word)
        }))
        .collect::<Vec<_>>();
    for word in words {
        if !parsed.entities.keywords.contains(&word) {
            parsed.entities.keywords.push(word);
        }
    }
}

/// A number in the message: a graduation year ("1995", "'95", "95 batch")
/// or a position in the list ("2"; "-1" is position 0, which none has).
fn number(
    word: &Word,
    before: Option<&str>,
    after: Option<&str>,
    before_that: Option<&str>,
) -> Option<Number> {
    let digits = word.text.as_str();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u32 = digits.parse().ok()?;
    if digits.len() == 4 && (1900..=2100).contains(&value) {
        return u16::try_from(value).ok().map(Number::Year);
    }
    if digits.len() == 2 {
        let near_alumni_word = before.is_some_and(words::is_alumni_cue)
            || after.is_some_and(words::is_alumni_cue)
            || (before == Some("of") && before_that.is_some_and(words::is_alumni_cue));
        if word.after_apostrophe || near_alumni_word {
            let century = if value <= 30 { 2000 } else { 1900 };
            return u16::try_from(century + value).ok().map(Number::Year);
        }
    }
    let value = if word.after_minus { 0 } else { value };
    (digits.len() <= 2).then_some(Number::Position(value))
}

/// Cues of the whole message for reading ambiguous phrases.
fn cues(words: &[Word]) -> Cues {
    Cues {
        service: words.iter().any(|w| words::is_service_cue(&w.text)),
        alumni: words.iter().any(|w| {
            words::is_alumni_cue(&w.text)
                || (w.after_apostrophe
                    && w.text.len() == 2
                    && w.text.bytes().all(|b| b.is_ascii_digit()))
                || (w.text.len() == 4
                    && w.text
                        .parse::<u16>()
                        .is_ok_and(|y| (1900..=2100).contains(&y)))
        }),
        language: words.iter().any(|w| words::is_language_cue(&w.text)),
    }
}

/// Applies a phrase's reading, found at word `at`, to what the message says.
fn apply(parsed: &mut Parsed, at: usize, reading: Reading) {
    match reading {
        Reading::Fields(fields) => {
            for (field, value) in fields {
                let Some(slot) = field.slot(&mut parsed.entities) else {
                    if !parsed.entities.keywords.contains(&value) {
                        parsed.entities.keywords.push(value);
                    }
                    continue;
                };
                match slot {
                    None => *slot = Some(value),
                    Some(current) if text::key(current) == text::key(&value) => {}
                    Some(_) => parsed.extra_values.push((field, value)),
                }
            }
        }
        Reading::Role(role) => match role {
            Role::Ordinal(n) | Role::Cardinal(n) => parsed.position = Some(Position::Nth(n)),
            Role::Last => parsed.position = Some(Position::Last),
            other => request(&mut parsed.requests, other),
        },
        Reading::Missing(what) => parsed.missing.push((at, what)),
        Reading::AnyLocation => parsed.any_location = true,
        Reading::Ignore | Reading::Nothing => {}
    }
}

fn request(requests: &mut Requests, role: Role) {
    match role {
        Role::Greeting => requests.greeting = true,
        Role::Help => requests.help = true,
        Role::Thanks => requests.thanks = true,
        Role::More => requests.more = true,
        Role::Contact => requests.contact = true,
        Role::Details => requests.details = true,
        Role::Filler | Role::Ordinal(_) | Role::Cardinal(_) | Role::Last => {}
    }
}

impl Reader<'_> {
    /// The first run of consecutive name words, as a name: "Rahul Sharma".
    /// A near spelling that stands for one name word takes its spelling
    /// ("Priyaa" → "Priya"); one that stands for several stays as written.
    fn name(&self, words: &[(usize, &str)]) -> Option<String> {
        let (&(start, first), rest) = words.split_first()?;
        let mut run = vec![first];
        let mut last = start;
        for &(i, word) in rest {
            if i != last + 1 {
                break;
            }
            run.push(word);
            last = i;
        }
        let spelled: Vec<String> = run
            .iter()
            .map(|word| match self.index.names().matches(word).0.as_slice() {
                [one] => capitalised(one),
                _ => capitalised(word),
            })
            .collect();
        Some(spelled.join(" "))
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The last search adjusted by a follow-up: a new place replaces the old
/// one, a new profession drops the old specialty, other constraints are
/// added or replaced, keywords accumulate.
pub(crate) fn refine_search(base: &Entities, change: &Entities, any_location: bool) -> Entities {
    let mut out = base.clone();
    if any_location {
        out.city = None;
        out.area = None;
    }
    if change.city.is_some() {
        out.city = change.city.clone();
        out.area = change.area.clone();
    } else if change.area.is_some() {
        out.area = change.area.clone();
    }
    if let Some(profession) = &change.profession {
        let same = out
            .profession
            .as_deref()
            .is_some_and(|p| text::key(p) == text::key(profession));
        if !same {
            out.specialty = None;
        }
        out.profession = Some(profession.clone());
    }
    for field in [
        Field::Specialty,
        Field::Designation,
        Field::Skill,
        Field::Service,
        Field::Organization,
        Field::Degree,
        Field::Branch,
    ] {
        if let Some(value) = field.get(change).map(str::to_owned)
            && let Some(slot) = field.slot(&mut out)
        {
            *slot = Some(value);
        }
    }
    if change.name.is_some() {
        out.name = change.name.clone();
    }
    if change.graduation_year.is_some() {
        out.graduation_year = change.graduation_year;
    }
    for keyword in &change.keywords {
        if !out.keywords.contains(keyword) {
            out.keywords.push(keyword.clone());
        }
    }
    // The newest words count most in a refinement; the oldest make room.
    let excess = out.keywords.len().saturating_sub(MAX_KEYWORDS);
    out.keywords.drain(..excess);
    out
}
