//! What a language model or an embedding model says, in the assistant's own
//! terms, checked against the loaded directory.
//!
//! - [`ModelReading`] is the object a chat model is asked for; every value in
//!   it is read again by the rules ([`Assistant::read_model`]), so the model
//!   can only pick what the directory has. A value the directory lacks is
//!   treated as the rules treat an unknown word: the search names it and
//!   finds no one; nothing the model invented is searched for.
//! - [`Assistant::is_unsure`] says when the rules ask the model at all, and
//!   [`Assistant::wants_closest`] when a search falls back to closest matches
//!   by meaning ([`Assistant::closest_answer`] words them).
//! - [`profile_text`] is what a member's profile vector is computed from:
//!   never a phone, an email or a contact-like column.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::{Deserialize, Deserializer, Serialize};

use super::field::Field;
use super::text_index::is_contact_column;
use super::understand::{Chat, Plan};
use super::{Answer, Assistant, Entities, Intent, MAX_KEYWORDS, PAGE_SIZE, Understanding, reply};
use crate::conversation::Session;
use crate::directory::Member;

/// The object a chat model answers with (the JSON schema sent asks for
/// exactly these fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct ModelReading {
    /// `search`, `name`, `more`, `contact`, `details`, `greeting`, `help`,
    /// `thanks` or `other`.
    pub intent: String,
    #[serde(deserialize_with = "text_or_number")]
    pub profession: Option<String>,
    #[serde(deserialize_with = "text_or_number")]
    pub specialty: Option<String>,
    #[serde(deserialize_with = "text_or_number")]
    pub designation: Option<String>,
    #[serde(deserialize_with = "text_or_number")]
    pub organization: Option<String>,
    #[serde(deserialize_with = "text_or_number")]
    pub city: Option<String>,
    #[serde(deserialize_with = "text_or_number")]
    pub area: Option<String>,
    #[serde(deserialize_with = "text_or_number")]
    pub name: Option<String>,
    #[serde(deserialize_with = "text_or_number")]
    pub graduation_year: Option<String>,
    #[serde(deserialize_with = "text_or_number")]
    pub branch: Option<String>,
    #[serde(deserialize_with = "text_or_number")]
    pub degree: Option<String>,
    #[serde(deserialize_with = "texts")]
    pub skills: Vec<String>,
    #[serde(deserialize_with = "texts")]
    pub keywords: Vec<String>,
    #[serde(deserialize_with = "text_or_number")]
    pub index: Option<String>,
}

/// A string, a number or null, as text; blank is none.
fn text_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(match value {
        serde_json::Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// An array of strings (or one string); anything else is empty.
fn texts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        one @ serde_json::Value::String(_) => vec![one],
        _ => Vec::new(),
    };
    Ok(items
        .into_iter()
        .filter_map(|v| v.as_str().map(|s| s.trim().to_owned()))
        .filter(|s| !s.is_empty())
        .take(MAX_KEYWORDS)
        .collect())
}

/// What the model is told of the directory: field names and the values it
/// may pick from. No member's name, phone or email.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Outline {
    pub fields: Vec<String>,
    pub professions: Vec<String>,
    pub specialties: Vec<String>,
    pub cities: Vec<String>,
}

/// Most values of one kind listed in the prompt.
const OUTLINE_VALUES: usize = 60;

/// The longest phrase of a message named in a closest-matches reply.
const TOPIC_CHARS: usize = 60;

impl Assistant {
    /// Whether the rules' reading is worth a second opinion: nothing
    /// understood, or a search on free words alone.
    pub(crate) fn is_unsure(&self, understanding: &Understanding) -> bool {
        match understanding.intent {
            Intent::Unknown => true,
            Intent::Search => {
                let e = &understanding.entities;
                !e.keywords.is_empty()
                    && Field::STRUCTURED.iter().all(|f| f.get(e).is_none())
                    && e.name.is_none()
                    && e.graduation_year.is_none()
            }
            _ => false,
        }
    }

    /// The directory's fields and values, for the model's prompt.
    pub(crate) fn outline(&self) -> Outline {
        let mut fields: Vec<String> = [
            "name",
            "profession",
            "specialty",
            "designation",
            "organization",
            "city",
            "area",
            "skills",
            "services",
            "graduation_year",
            "degree",
            "branch",
            "bio",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let mut professions = BTreeSet::new();
        let mut specialties = BTreeSet::new();
        let mut cities = BTreeSet::new();
        let mut extra = BTreeSet::new();
        for m in self.directory.active_members() {
            for (set, value) in [
                (&mut professions, &m.profession),
                (&mut specialties, &m.specialty),
                (&mut cities, &m.city),
            ] {
                if !value.trim().is_empty() && set.len() < OUTLINE_VALUES {
                    set.insert(value.trim().to_owned());
                }
            }
            for (header, _) in &m.extra {
                if !is_contact_column(header) && extra.len() < OUTLINE_VALUES {
                    extra.insert(header.clone());
                }
            }
        }
        fields.extend(extra);
        Outline {
            fields,
            professions: professions.into_iter().collect(),
            specialties: specialties.into_iter().collect(),
            cities: cities.into_iter().collect(),
        }
    }

    /// The model's `reading` of `text` as an [`Understanding`], every value
    /// checked against this directory; `None` when it adds nothing (the
    /// rules' reading then stands).
    pub(crate) fn read_model(
        &self,
        reading: &ModelReading,
        session: &Session,
        member: &Member,
    ) -> Option<Understanding> {
        let canned = |text: String| Some(self.understand(&text, session, member));
        let index = reading
            .index
            .as_deref()
            .and_then(|i| i.trim_start_matches('#').parse::<u32>().ok())
            .filter(|&i| (1..=1000).contains(&i));
        match reading.intent.trim().to_ascii_lowercase().as_str() {
            "greeting" => canned("hi".to_owned()),
            "help" => canned("help".to_owned()),
            "thanks" => canned("thanks".to_owned()),
            "more" => canned("more".to_owned()),
            "contact" => {
                canned(index.map_or_else(|| "contact".to_owned(), |i| format!("contact {i}")))
            }
            "details" => canned(index.map_or_else(|| "details".to_owned(), |i| i.to_string())),
            "search" | "name" => self.model_search(reading, session),
            _ => None,
        }
    }

    /// A search from the model's values, each read by the rules.
    fn model_search(&self, reading: &ModelReading, session: &Session) -> Option<Understanding> {
        let mut entities = Entities::default();
        let reader = self.reader();
        let fields = [
            (Field::Profession, &reading.profession),
            (Field::Specialty, &reading.specialty),
            (Field::Designation, &reading.designation),
            (Field::Organization, &reading.organization),
            (Field::City, &reading.city),
            (Field::Area, &reading.area),
            (Field::Degree, &reading.degree),
            (Field::Branch, &reading.branch),
        ];
        let listed = reading
            .skills
            .iter()
            .map(|s| (Field::Skill, s))
            .chain(reading.keywords.iter().map(|k| (Field::Keyword, k)));
        let values = fields
            .iter()
            .filter_map(|(f, v)| v.as_ref().map(|v| (*f, v)))
            .chain(listed);
        for (field, value) in values {
            let parsed = reader.parse(value).entities;
            let known = Field::STRUCTURED.iter().any(|f| f.get(&parsed).is_some())
                || !parsed.keywords.is_empty();
            if known {
                merge(&mut entities, parsed);
            } else {
                // Not in this directory: searched as written, it finds no
                // one, and the reply names it.
                invented(&mut entities, field, value);
            }
        }
        if let Some(name) = &reading.name {
            entities.name = Some(name.chars().take(80).collect());
        }
        if let Some(year) = reading
            .graduation_year
            .as_deref()
            .and_then(|y| y.trim().parse::<u16>().ok())
            .filter(|y| (1900..=2100).contains(y))
        {
            entities.graduation_year = Some(year);
        }
        if entities.city.is_none()
            && let Some(area) = &entities.area
        {
            entities.city = self.vocabulary.city_of_area(area).map(str::to_owned);
        }
        if !entities.has_constraints() {
            return None;
        }
        let plan = Plan::Search {
            contact: false,
            details: false,
            extra_values: Vec::new(),
        };
        let last = session.last_search();
        if let Some(last) = last.filter(|_| !entities.names_a_subject()) {
            let any_location = entities.city.is_some() || entities.area.is_some();
            let merged = super::understand::refine_search(&last.entities, &entities, any_location);
            return Some(Understanding {
                intent: Intent::Refine,
                entities: merged,
                plan,
            });
        }
        Some(Understanding {
            intent: Intent::Search,
            entities,
            plan,
        })
    }

    /// Whether a search should fall back to closest matches by meaning: the
    /// rules understood nothing, or searched and found no one. A search by
    /// a name written with a capital ("is there a Kabir") is not one: only
    /// an unknown word the rules took for a name ("someone for my breakup").
    pub(crate) fn wants_closest(&self, understanding: &Understanding, message: &str) -> bool {
        match &understanding.plan {
            Plan::Chat(Chat::Unknown { .. }) => true,
            Plan::Search { .. } => {
                let written_as_a_name = understanding
                    .entities
                    .name
                    .as_deref()
                    .is_some_and(|name| name.split_whitespace().any(|w| message.contains(w)));
                !written_as_a_name && self.index.count(&understanding.entities) == 0
            }
            _ => false,
        }
    }

    /// The directory positions a closest-match search may list: those in
    /// the place and batch asked for; `None` for every active member.
    pub(crate) fn closest_allowed(&self, entities: &Entities) -> Option<Vec<u32>> {
        let filters = Entities {
            city: entities.city.clone(),
            area: entities.area.clone(),
            graduation_year: entities.graduation_year,
            ..Entities::default()
        };
        if filters.is_empty() {
            return None;
        }
        Some(self.index.search(&filters, usize::MAX).top)
    }

    /// The reply listing `ranked` (directory positions, best first) as the
    /// closest matches to `message`, and the understanding it records (a
    /// search, so that "2" and CONTACT refer to it).
    pub(crate) fn closest_answer(
        &self,
        understanding: &Understanding,
        message: &str,
        ranked: &[u32],
    ) -> (Understanding, Answer) {
        let entities = &understanding.entities;
        let members = self.members(ranked);
        let members = members
            .get(..PAGE_SIZE.min(members.len()))
            .unwrap_or_default();
        let topic = if entities.keywords.is_empty() {
            let t: String = message.trim().chars().take(TOPIC_CHARS).collect();
            t
        } else {
            entities.keywords.join(" ")
        };
        let mut text = format!("People who may help with '{topic}'");
        if let Some(place) = entities.area.as_ref().or(entities.city.as_ref()) {
            let _ = write!(text, " in {place}");
        }
        text.push_str(":\n");
        for (n, member) in members.iter().enumerate() {
            let _ = write!(text, "\n{}. {}", n + 1, reply::member_line(member));
        }
        text.push_str(
            "\n\nThese are the closest matches, not exact ones. Reply a number for details · CONTACT for phone and email",
        );
        let answer = Answer {
            text,
            result_count: members.len(),
            shown_ids: members.iter().map(|m| m.id.clone()).collect(),
            page: 0,
            entities: entities.clone(),
        };
        let understanding = Understanding {
            intent: Intent::Search,
            entities: entities.clone(),
            plan: Plan::Search {
                contact: false,
                details: false,
                extra_values: Vec::new(),
            },
        };
        (understanding, answer)
    }
}

/// Adds what the rules read in one value, keeping what is already there.
fn merge(into: &mut Entities, from: Entities) {
    for field in Field::STRUCTURED {
        if let (Some(value), Some(slot)) = (field.get(&from), field.slot(into))
            && slot.is_none()
        {
            *slot = Some(value.to_owned());
        }
    }
    if into.graduation_year.is_none() {
        into.graduation_year = from.graduation_year;
    }
    for keyword in from.keywords {
        if !into.keywords.contains(&keyword) && into.keywords.len() < MAX_KEYWORDS {
            into.keywords.push(keyword);
        }
    }
}

/// A value the directory does not have, kept where it finds no one.
fn invented(into: &mut Entities, field: Field, value: &str) {
    let value: String = value.chars().take(TOPIC_CHARS).collect();
    let field = match field {
        Field::Keyword | Field::Skill | Field::Service => Field::Keyword,
        other => other,
    };
    match field.slot(into) {
        Some(slot) if slot.is_none() => *slot = Some(value),
        _ => {
            let word = super::text::key(&value);
            if !into.keywords.contains(&word) && into.keywords.len() < MAX_KEYWORDS {
                into.keywords.push(word);
            }
        }
    }
}

/// The text a member's profile vector is computed from: work, skills,
/// services, bio and extra columns. Never the name, phone, email or any
/// contact-like column.
pub(crate) fn profile_text(member: &Member) -> String {
    let mut text = String::new();
    let mut add = |label: &str, value: &str| {
        let value = value.trim();
        if value.is_empty() {
            return;
        }
        if !text.is_empty() {
            text.push_str(". ");
        }
        if !label.is_empty() {
            text.push_str(label);
            text.push_str(": ");
        }
        text.push_str(value);
    };
    add("", &member.profession);
    add("", &member.specialty);
    add("", &member.designation);
    add("", &member.organization);
    add("Skills", &member.skills.join(", "));
    add("Services", &member.services.join(", "));
    add("", &member.bio);
    for (header, value) in &member.extra {
        if !is_contact_column(header) {
            add(header, value);
        }
    }
    text
}
