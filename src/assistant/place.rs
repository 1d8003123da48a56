//! Shared locations: reading a WhatsApp place's address as a city or area
//! of the directory, so that sharing one searches near it.
//!
//! There is no geocoding: the address's own words must name a place the
//! directory has. Each comma-separated part is tried, most specific first
//! ("80 Feet Road, Koramangala, Bengaluru, Karnataka" tries Koramangala
//! before Bengaluru), as the search "members in <part>".

use super::{Assistant, Intent, Understanding};
use crate::conversation::Session;
use crate::directory::Member;

impl Assistant {
    /// The search for members in the city or area `address` names, if any
    /// part of it names one and nothing else (a street, a postcode or a
    /// shop's name reads as free words, and is skipped).
    ///
    /// A place starts a new search: it is read without the conversation's
    /// history, so it never narrows the last one.
    pub fn understand_place(
        &self,
        address: &str,
        session: &Session,
        member: &Member,
    ) -> Option<Understanding> {
        let fresh = Session {
            history: Vec::new(),
            last_reply: None,
            ..session.clone()
        };
        address
            .split(',')
            .map(str::trim)
            .filter(|part| part.chars().any(char::is_alphabetic))
            .map(|part| self.understand(&format!("members in {part}"), &fresh, member))
            .find(names_only_a_place)
    }
}

/// Whether `understanding` is a search by city or area and nothing else.
fn names_only_a_place(understanding: &Understanding) -> bool {
    let entities = &understanding.entities;
    understanding.intent == Intent::Search
        && (entities.city.is_some() || entities.area.is_some())
        && entities.graduation_year.is_none()
        && !entities.names_a_subject()
}
