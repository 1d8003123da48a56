//! The searchable fields of a member, one name for each across the
//! synonyms file, the vocabulary, the index and [`Entities`].

use super::Entities;
use crate::directory::Member;

/// A member field a search can constrain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Field {
    Profession,
    Specialty,
    Designation,
    Skill,
    Service,
    Organization,
    City,
    Area,
    Degree,
    Branch,
    /// A free word, ranked against skills, services, bio and extra columns.
    Keyword,
}

impl Field {
    /// The fields that hold one exact value in [`Entities`].
    pub(crate) const STRUCTURED: [Field; 10] = [
        Field::Profession,
        Field::Specialty,
        Field::Designation,
        Field::Skill,
        Field::Service,
        Field::Organization,
        Field::City,
        Field::Area,
        Field::Degree,
        Field::Branch,
    ];

    /// Reads a field name of the synonyms file (a few spellings accepted).
    pub(crate) fn parse(name: &str) -> Option<Field> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "profession" | "occupation" => Field::Profession,
            "specialty" | "speciality" | "specialization" | "specialisation" => Field::Specialty,
            "designation" | "title" => Field::Designation,
            "skill" | "skills" => Field::Skill,
            "service" | "services" => Field::Service,
            "organization" | "organisation" | "company" => Field::Organization,
            "city" => Field::City,
            "area" | "locality" => Field::Area,
            "degree" => Field::Degree,
            "branch" => Field::Branch,
            "keyword" | "text" => Field::Keyword,
            _ => return None,
        })
    }

    /// The value `entities` holds for this field.
    pub(crate) fn get(self, entities: &Entities) -> Option<&str> {
        let value = match self {
            Field::Profession => &entities.profession,
            Field::Specialty => &entities.specialty,
            Field::Designation => &entities.designation,
            Field::Skill => &entities.skill,
            Field::Service => &entities.service,
            Field::Organization => &entities.organization,
            Field::City => &entities.city,
            Field::Area => &entities.area,
            Field::Degree => &entities.degree,
            Field::Branch => &entities.branch,
            Field::Keyword => return None,
        };
        value.as_deref()
    }

    /// The slot of `entities` for this field (`None` for keywords).
    pub(crate) fn slot(self, entities: &mut Entities) -> Option<&mut Option<String>> {
        Some(match self {
            Field::Profession => &mut entities.profession,
            Field::Specialty => &mut entities.specialty,
            Field::Designation => &mut entities.designation,
            Field::Skill => &mut entities.skill,
            Field::Service => &mut entities.service,
            Field::Organization => &mut entities.organization,
            Field::City => &mut entities.city,
            Field::Area => &mut entities.area,
            Field::Degree => &mut entities.degree,
            Field::Branch => &mut entities.branch,
            Field::Keyword => return None,
        })
    }

    /// The member's values for this field (several for skills and services).
    pub(crate) fn values(self, member: &Member) -> Vec<&str> {
        fn one(value: &str) -> Vec<&str> {
            if value.is_empty() {
                Vec::new()
            } else {
                vec![value]
            }
        }
        match self {
            Field::Profession => one(&member.profession),
            Field::Specialty => one(&member.specialty),
            Field::Designation => one(&member.designation),
            Field::Skill => member.skills.iter().map(String::as_str).collect(),
            Field::Service => member.services.iter().map(String::as_str).collect(),
            Field::Organization => one(&member.organization),
            Field::City => one(&member.city),
            Field::Area => one(&member.area),
            Field::Degree => one(&member.degree),
            Field::Branch => one(&member.branch),
            Field::Keyword => Vec::new(),
        }
    }
}
