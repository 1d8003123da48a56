//! Carrying out an [`Understanding`]'s plan: run the search, pick the page,
//! the member or the contacts, and word the reply ([`reply`]). Every
//! [`Answer`] also says what the session should remember, so the next
//! follow-up can be computed from the stored entry alone.

use super::field::Field;
use super::understand::{Chat, ContactTarget, Listing, Plan, Position};
use super::{Answer, Assistant, Entities, PAGE_SIZE, Understanding, reply};
use crate::directory::Member;

/// How many wider searches a no-results reply offers.
const WIDER_SEARCHES: usize = 2;

impl Assistant {
    /// Composes the reply to `understanding` from `member`.
    pub fn answer(&self, understanding: &Understanding, member: &Member) -> Answer {
        let org = self.org_name.as_str();
        match &understanding.plan {
            Plan::Search {
                contact,
                details,
                extra_values,
            } => {
                let note = extra_values.first().map(|(field, other)| {
                    let kept = field.get(&understanding.entities).unwrap_or_default();
                    format!(
                        "One at a time: I searched {kept}. Reply “what about {other}?” for {other}."
                    )
                });
                self.answer_search(&understanding.entities, *contact, *details, note.as_deref())
            }
            Plan::Page { page, listing } => self.answer_page(listing, *page),
            Plan::Details { position, listing } => self.answer_details(*position, listing.as_ref()),
            Plan::Contact { target, listing } => self.answer_contact(target, listing.as_ref()),
            Plan::Chat(chat) => Answer::plain(match chat {
                Chat::Greeting => reply::greeting(&member.name, org),
                Chat::Help => reply::help(org),
                Chat::Thanks => reply::thanks(),
                Chat::Unknown { foreign } => reply::unknown(org, *foreign),
                Chat::NoOwnYear => reply::no_own_year(org),
                Chat::NoSearchYet => reply::no_search_yet(org),
            }),
        }
    }

    fn answer_search(
        &self,
        entities: &Entities,
        contact: bool,
        details: bool,
        note: Option<&str>,
    ) -> Answer {
        let hits = self.index.search(entities, PAGE_SIZE);
        let members = self.members(&hits.top);
        let answer = |text: String| Answer {
            text,
            result_count: hits.total,
            shown_ids: members.iter().map(|m| m.id.clone()).collect(),
            page: 0,
            entities: entities.clone(),
        };
        if hits.total == 0 {
            return answer(reply::no_results(entities, &self.wider_searches(entities)));
        }
        if let ([only], true) = (members.as_slice(), details) {
            return answer(reply::details(only, &self.org_name));
        }
        let contacts_of = contact.then_some(self.org_name.as_str());
        answer(reply::results(
            entities,
            hits.total,
            0,
            &members,
            contacts_of,
            note,
        ))
    }

    fn answer_page(&self, listing: &Listing, page: u32) -> Answer {
        let start = page as usize * PAGE_SIZE;
        let hits = self
            .index
            .search(&listing.entities, start.saturating_add(PAGE_SIZE));
        let on_page = hits.top.get(start..).unwrap_or_default();
        if on_page.is_empty() {
            // Nothing further: keep the page already shown as the context.
            let text = if hits.total == 0 {
                reply::empty_list()
            } else {
                reply::no_more(&listing.entities, hits.total)
            };
            return Answer {
                text,
                result_count: listing.total as usize,
                shown_ids: listing.ids.clone(),
                page: listing.page,
                entities: listing.entities.clone(),
            };
        }
        let members = self.members(on_page);
        Answer {
            text: reply::results(&listing.entities, hits.total, page, &members, None, None),
            result_count: hits.total,
            shown_ids: members.iter().map(|m| m.id.clone()).collect(),
            page,
            entities: listing.entities.clone(),
        }
    }

    fn answer_details(&self, position: Option<Position>, listing: Option<&Listing>) -> Answer {
        let Some(listing) = listing else {
            return Answer::plain(reply::no_list("details"));
        };
        let continued = |text: String, ids: Vec<String>| Answer::continuing(listing, text, ids);
        if listing.ids.is_empty() {
            return continued(reply::empty_list(), Vec::new());
        }
        let picked = match position {
            None if listing.ids.len() == 1 => listing.ids.first(),
            None => None,
            Some(position) => pick(&listing.ids, position),
        };
        let Some(id) = picked else {
            return continued(reply::pick_a_number(listing.ids.len()), Vec::new());
        };
        match self.member_by_id(id) {
            Some(member) => continued(reply::details(member, &self.org_name), vec![id.clone()]),
            None => continued(reply::gone(), Vec::new()),
        }
    }

    fn answer_contact(&self, target: &ContactTarget, listing: Option<&Listing>) -> Answer {
        let Some(listing) = listing else {
            return Answer::plain(reply::no_list("contacts"));
        };
        let continued = |text: String, ids: Vec<String>| Answer::continuing(listing, text, ids);
        let ids: Vec<String> = match target {
            ContactTarget::Shown => listing.ids.clone(),
            ContactTarget::Member(id) => vec![id.clone()],
            ContactTarget::At(position) => match pick(&listing.ids, *position) {
                Some(id) => vec![id.clone()],
                None if listing.ids.is_empty() => Vec::new(),
                None => {
                    return continued(reply::pick_a_number(listing.ids.len()), Vec::new());
                }
            },
        };
        if ids.is_empty() {
            return continued(reply::empty_list(), Vec::new());
        }
        let members: Vec<&Member> = ids.iter().filter_map(|id| self.member_by_id(id)).collect();
        if members.is_empty() {
            return continued(reply::gone(), Vec::new());
        }
        let shown = members.iter().map(|m| m.id.clone()).collect();
        continued(reply::contacts(&members, &self.org_name), shown)
    }

    /// Up to [`WIDER_SEARCHES`] searches with one constraint dropped that
    /// do find someone, as messages to reply with and their counts.
    fn wider_searches(&self, entities: &Entities) -> Vec<(String, usize)> {
        let had_location = entities.city.is_some() || entities.area.is_some();
        let mut candidates: Vec<Entities> = Vec::new();
        let mut without = |change: &dyn Fn(&mut Entities)| {
            let mut wider = entities.clone();
            change(&mut wider);
            if wider != *entities && wider.has_constraints() && !candidates.contains(&wider) {
                candidates.push(wider);
            }
        };
        if entities.area.is_some() && entities.city.is_some() {
            without(&|e| e.area = None);
        }
        without(&|e| {
            e.city = None;
            e.area = None;
        });
        if entities.profession.is_some() {
            without(&|e| e.specialty = None);
        }
        without(&|e| e.keywords.clear());
        without(&|e| e.name = None);
        // "Priya Sharma" finds no one: offer "Priya" and "Sharma".
        let name_words: Vec<String> = entities
            .name
            .as_deref()
            .map(|n| n.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        if name_words.len() > 1 {
            for word in &name_words {
                without(&|e| e.name = Some(word.clone()));
            }
        }
        without(&|e| e.graduation_year = None);
        for field in [
            Field::Designation,
            Field::Skill,
            Field::Service,
            Field::Organization,
            Field::Degree,
            Field::Branch,
            Field::Specialty,
            Field::Profession,
        ] {
            without(&|e| {
                if let Some(slot) = field.slot(e) {
                    *slot = None;
                }
            });
        }
        candidates
            .into_iter()
            .filter_map(|wider| {
                let count = self.index.count(&wider);
                let lifted = had_location && wider.city.is_none() && wider.area.is_none();
                (count > 0).then(|| (reply::as_query(&wider, lifted), count))
            })
            .take(WIDER_SEARCHES)
            .collect()
    }
}

/// The id at `position` of the page shown.
fn pick(ids: &[String], position: Position) -> Option<&String> {
    match position {
        Position::Last => ids.last(),
        Position::Nth(n) => (n as usize).checked_sub(1).and_then(|i| ids.get(i)),
    }
}

impl Answer {
    /// A reply about the list already shown: it stays the context, so the
    /// next "more" or number still refers to it.
    fn continuing(listing: &Listing, text: String, shown_ids: Vec<String>) -> Answer {
        Answer {
            text,
            result_count: listing.total as usize,
            shown_ids,
            page: listing.page,
            entities: listing.entities.clone(),
        }
    }
}
