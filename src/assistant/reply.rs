//! The wording of replies, WhatsApp-style: `*bold*` names, numbered lists
//! of at most [`PAGE_SIZE`], short lines, and always what to reply next.
//!
//! Phone numbers and emails appear only through [`contact_line`], which
//! checks `share_contact` itself, so no reply can leak them by mistake.
//! No-results replies list no members (and use no `*`), only what was
//! understood and wider searches to reply with.

use std::fmt::Write as _;

use super::text_index::is_contact_column;
use super::{Entities, PAGE_SIZE};
use crate::directory::Member;

/// The examples every help reply ends with.
const EXAMPLES: &str = "You can ask things like:\n\
• Find doctors in Bangalore\n\
• Cardiologists in Koramangala\n\
• Who offers CA services?\n\
• 1995 passout mechanical engineers\n\
• Is there a Priya Sharma?\n\n\
After a search, reply MORE for the next results, a number for details, or CONTACT for phone and email.";

pub(crate) fn greeting(name: &str, org: &str) -> String {
    format!(
        "Hello {}! 👋 I can help you find members of {org}.\n\n{EXAMPLES}",
        first_name(name)
    )
}

pub(crate) fn help(org: &str) -> String {
    format!("I can help you find members of {org}.\n\n{EXAMPLES}")
}

pub(crate) fn thanks() -> String {
    "You're welcome! Send another search whenever you need one.".to_owned()
}

pub(crate) fn unknown(org: &str, foreign: bool) -> String {
    let script = if foreign {
        "I can only read English searches for now. "
    } else {
        ""
    };
    format!(
        "Sorry, I didn't understand that. {script}I can search the member directory of {org}.\n\n{EXAMPLES}"
    )
}

pub(crate) fn no_own_year(org: &str) -> String {
    format!(
        "I don't know your graduation year: the directory of {org} doesn't list it. Ask for a batch by year instead, for example “Find 1995 passouts”."
    )
}

pub(crate) fn no_search_yet(org: &str) -> String {
    format!("There is no search to continue yet.\n\n{}", help(org))
}

pub(crate) fn no_list(what: &str) -> String {
    format!(
        "There is no list of results to pick {what} from yet. Send a search first, for example “Find doctors in Bangalore”."
    )
}

pub(crate) fn empty_list() -> String {
    "The last search found no one. Send a new search, or HELP for examples.".to_owned()
}

pub(crate) fn pick_a_number(shown: usize) -> String {
    match shown {
        1 => "Reply 1 for the details of the member shown.".to_owned(),
        n => format!("Reply with a number from 1 to {n} for the details of a member shown."),
    }
}

pub(crate) fn gone() -> String {
    "That member is no longer in the directory. Send a new search to see who is.".to_owned()
}

pub(crate) fn no_more(entities: &Entities, total: usize) -> String {
    format!(
        "That's all: {} {} shown. Send a new search, or a number for details.",
        if total == 1 {
            "the 1".to_owned()
        } else {
            format!("all {total}")
        },
        describe(entities, total)
    )
}

/// A page of results: header, numbered list, what to reply next.
pub(crate) fn results(
    entities: &Entities,
    total: usize,
    page: u32,
    members: &[&Member],
    contacts_of: Option<&str>,
    note: Option<&str>,
) -> String {
    let start = page as usize * PAGE_SIZE;
    let mut text = if page == 0 {
        format!("Found {total} {}:", describe(entities, total))
    } else {
        format!(
            "{}, {}–{} of {total}:",
            capitalised(&describe(entities, total)),
            start + 1,
            start + members.len()
        )
    };
    if let Some(note) = note {
        let _ = write!(text, "\n({note})");
    }
    text.push('\n');
    for (n, member) in members.iter().enumerate() {
        let _ = write!(text, "\n{}. {}", n + 1, member_line(member));
        if let Some(org) = contacts_of {
            let _ = write!(text, "\n    {}", contact_line(member, org));
        }
    }
    let remaining = total.saturating_sub(start + members.len());
    text.push_str("\n\n");
    if remaining > 0 {
        let _ = write!(
            text,
            "Reply MORE for the next {} · ",
            remaining.min(PAGE_SIZE)
        );
    } else {
        text.push_str("Reply ");
    }
    text.push_str("a number for details · CONTACT for phone and email");
    text
}

/// `*Name*, profession · specialty, organization, area, city`.
pub(crate) fn member_line(member: &Member) -> String {
    let mut line = format!("*{}*", member.name);
    let work = joined(&[&member.profession, &member.specialty], " · ");
    for part in [&work, &member.organization, &member.area, &member.city] {
        if !part.is_empty() {
            let _ = write!(line, ", {part}");
        }
    }
    line
}

/// Phone and email of a member who shares them; otherwise the way to reach
/// them. The only place contact details are written.
pub(crate) fn contact_line(member: &Member, org: &str) -> String {
    if !member.share_contact {
        return format!("Prefers to be contacted through {org}.");
    }
    let mut parts = vec![format!("📞 {}", member.phone.e164())];
    if !member.email.is_empty() {
        parts.push(format!("✉️ {}", member.email));
    }
    parts.join(" · ")
}

/// Phone and email of several members.
pub(crate) fn contacts(members: &[&Member], org: &str) -> String {
    let mut text = String::from(if members.len() == 1 {
        "Contact details:\n"
    } else {
        "Contact details of the members shown:\n"
    });
    for (n, member) in members.iter().enumerate() {
        let _ = write!(
            text,
            "\n{}. *{}*: {}",
            n + 1,
            member.name,
            contact_line(member, org)
        );
    }
    text.push_str("\n\nReply MORE for more results, or send a new search.");
    text
}

/// Everything about one member.
pub(crate) fn details(member: &Member, org: &str) -> String {
    let mut text = format!("*{}*", member.name);
    let mut line = |value: String| {
        if !value.is_empty() {
            text.push('\n');
            text.push_str(&value);
        }
    };
    line(joined(&[&member.profession, &member.specialty], " · "));
    line(joined(&[&member.designation, &member.organization], ", "));
    line(joined(&[&member.area, &member.city], ", "));
    if !member.skills.is_empty() {
        line(format!("Skills: {}", member.skills.join(", ")));
    }
    if !member.services.is_empty() {
        line(format!("Services: {}", member.services.join(", ")));
    }
    let year = member
        .graduation_year
        .map(|y| format!("Batch of {y}"))
        .unwrap_or_default();
    line(joined(&[&year, &member.degree, &member.branch], " · "));
    if !member.bio.is_empty() {
        line(format!("About: {}", member.bio));
    }
    for (header, value) in &member.extra {
        // An extra column could hold a second phone or an address: those
        // follow the member's choice like the phone and email do.
        if !is_contact_column(header) {
            line(format!("{}: {value}", capitalised(header)));
        }
    }
    line(contact_line(member, org));
    text.push_str("\n\nReply another number for details, MORE for more results, or a new search.");
    text
}

/// No one found: what was understood, and wider searches to reply with.
pub(crate) fn no_results(entities: &Entities, wider: &[(String, usize)]) -> String {
    let only_a_name = entities.name.is_some() && {
        let mut rest = entities.clone();
        rest.name = None;
        rest.is_empty()
    };
    let mut text = match &entities.name {
        Some(name) if only_a_name => format!("I couldn't find any member named {name}."),
        _ => format!("I couldn't find any {}.", describe(entities, 0)),
    };
    if wider.is_empty() && only_a_name {
        text.push_str("\n\nCheck the spelling, or send just a first name or a surname.");
        return text;
    }
    if wider.is_empty() {
        text.push_str("\n\nTry another city or profession, or send HELP for examples.");
        return text;
    }
    text.push_str("\n\nYou could reply:");
    for (query, count) in wider {
        let found = if *count == 1 {
            "1 member".to_owned()
        } else {
            format!("{count} members")
        };
        let _ = write!(text, "\n• “{query}” ({found})");
    }
    text.push_str("\n\nOr send HELP for examples.");
    text
}

/// What a search looks for, for headers: "doctors (Cardiology) in
/// Bengaluru", "members named Priya", "Mechanical graduates from the 1995
/// batch".
pub(crate) fn describe(e: &Entities, count: usize) -> String {
    let many = count != 1;
    let mut tags: Vec<&str> = Vec::new();
    let subject = if let Some(profession) = &e.profession {
        tags.extend(
            [&e.specialty, &e.designation, &e.degree, &e.branch]
                .into_iter()
                .flatten()
                .map(String::as_str),
        );
        noun(profession, many)
    } else if let Some(designation) = &e.designation {
        tags.extend(
            [&e.specialty, &e.degree, &e.branch]
                .into_iter()
                .flatten()
                .map(String::as_str),
        );
        noun(designation, many)
    } else if e.degree.is_some() || e.branch.is_some() {
        tags.extend(e.specialty.as_deref());
        let studied = joined(&[opt(&e.degree), opt(&e.branch)], " ");
        format!("{studied} {}", if many { "graduates" } else { "graduate" })
    } else {
        tags.extend(e.specialty.as_deref());
        (if many { "members" } else { "member" }).to_owned()
    };
    let mut out = subject;
    if !tags.is_empty() {
        let _ = write!(out, " ({})", tags.join(", "));
    }
    qualifiers(&mut out, e, "matching “", "”");
    out
}

/// A message that asks for exactly this search, to offer as a reply:
/// "Find lawyers in all cities". `lift_location` says "in all cities".
pub(crate) fn as_query(e: &Entities, lift_location: bool) -> String {
    let mut q = String::from("Find ");
    let before_subject = joined(&[opt(&e.specialty), opt(&e.designation)], " ");
    if let Some(profession) = &e.profession {
        if !before_subject.is_empty() {
            let _ = write!(q, "{before_subject} ");
        }
        q.push_str(&noun(profession, true));
    } else if let Some(designation) = &e.designation {
        if let Some(specialty) = &e.specialty {
            let _ = write!(q, "{specialty} ");
        }
        q.push_str(&noun(designation, true));
    } else if let Some(specialty) = &e.specialty {
        let _ = write!(q, "{specialty} members");
    } else {
        q.push_str("members");
    }
    let studied = joined(&[opt(&e.degree), opt(&e.branch)], " ");
    if !studied.is_empty() {
        let _ = write!(q, " who studied {studied}");
    }
    qualifiers(&mut q, e, "matching ", "");
    if lift_location && e.city.is_none() && e.area.is_none() {
        q.push_str(" in all cities");
    }
    q
}

/// The parts after the subject: name, skill, service, words, organization,
/// batch and place.
fn qualifiers(out: &mut String, e: &Entities, open: &str, close: &str) {
    if let Some(name) = &e.name {
        let _ = write!(out, " named {name}");
    }
    if let Some(skill) = &e.skill {
        let _ = write!(out, " skilled in {skill}");
    }
    if let Some(service) = &e.service {
        let _ = write!(out, " offering {service}");
    }
    let keywords: Vec<&str> = e
        .keywords
        .iter()
        .map(String::as_str)
        .filter(|k| !k.trim().is_empty())
        .collect();
    if !keywords.is_empty() {
        let _ = write!(out, " {open}{}{close}", keywords.join(" "));
    }
    if let Some(organization) = &e.organization {
        let _ = write!(out, " at {organization}");
    }
    if let Some(year) = e.graduation_year {
        let _ = write!(out, " of the {year} batch");
    }
    let place = joined(&[opt(&e.area), opt(&e.city)], ", ");
    if !place.is_empty() {
        let _ = write!(out, " in {place}");
    }
}

fn opt(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or_default()
}

/// A profession or title as a noun: "doctors", "chartered accountants",
/// "CTOs" (acronyms keep their case).
fn noun(value: &str, many: bool) -> String {
    let acronym = value.chars().filter(|c| c.is_uppercase()).count() >= 2
        && !value.chars().any(char::is_lowercase);
    let base = if acronym {
        value.to_owned()
    } else {
        value.to_lowercase()
    };
    if !many {
        return base;
    }
    let lower = base.to_lowercase();
    if acronym {
        format!("{base}s")
    } else if lower.ends_with(['s', 'x', 'z']) || lower.ends_with("ch") || lower.ends_with("sh") {
        format!("{base}es")
    } else if let Some(stem) = base.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        format!("{stem}ies")
    } else {
        format!("{base}s")
    }
}

/// The non-empty parts, joined.
fn joined(parts: &[&str], separator: &str) -> String {
    parts
        .iter()
        .filter(|p| !p.trim().is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(separator)
}

fn first_name(name: &str) -> &str {
    name.split_whitespace().next().unwrap_or(name)
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entities() -> Entities {
        Entities {
            profession: Some("Doctor".into()),
            city: Some("Bengaluru".into()),
            ..Entities::default()
        }
    }

    #[test]
    fn describes_searches() {
        assert_eq!(describe(&entities(), 3), "doctors in Bengaluru");
        assert_eq!(describe(&entities(), 1), "doctor in Bengaluru");
        let e = Entities {
            specialty: Some("Cardiology".into()),
            area: Some("Koramangala".into()),
            ..entities()
        };
        assert_eq!(
            describe(&e, 2),
            "doctors (Cardiology) in Koramangala, Bengaluru"
        );
        let alumni = Entities {
            branch: Some("Mechanical".into()),
            graduation_year: Some(1995),
            ..Entities::default()
        };
        assert_eq!(
            describe(&alumni, 2),
            "Mechanical graduates of the 1995 batch"
        );
        let cto = Entities {
            designation: Some("CTO".into()),
            ..Entities::default()
        };
        assert_eq!(describe(&cto, 2), "CTOs");
        let accountants = Entities {
            profession: Some("Chartered Accountant".into()),
            service: Some("CA Services".into()),
            ..Entities::default()
        };
        assert_eq!(
            describe(&accountants, 2),
            "chartered accountants offering CA Services"
        );
    }

    #[test]
    fn queries_to_reply_with() {
        let lawyers = Entities {
            profession: Some("Lawyer".into()),
            ..Entities::default()
        };
        assert_eq!(as_query(&lawyers, true), "Find lawyers in all cities");
        assert_eq!(as_query(&entities(), false), "Find doctors in Bengaluru");
        let place = Entities {
            city: Some("Chennai".into()),
            ..Entities::default()
        };
        assert_eq!(as_query(&place, false), "Find members in Chennai");
    }

    #[test]
    fn no_results_list_no_one() {
        let text = no_results(&entities(), &[("Find doctors in all cities".into(), 30)]);
        assert!(text.starts_with("I couldn't find any doctors in Bengaluru."));
        assert!(text.contains("“Find doctors in all cities” (30 members)"));
        assert!(!text.contains('*'));
    }
}
