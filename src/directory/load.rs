//! Reading the member CSV per the directory contract (`members-csv.md`).
//!
//! Headers match case-insensitively, ignoring spaces, `_`, `-`, `/` and a
//! trailing `:`, and through the contract's aliases. A bad row is rejected
//! with its line number and reason and the rest still loads; a file that
//! cannot be read, or lacks a required column, fails as a whole.

use std::collections::HashSet;
use std::path::Path;

use super::{Member, MemberRole, Rejection};
use crate::phone::{PhoneNumber, Region};

/// Why a directory file could not be loaded at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read member directory {path}: {reason}")]
    Unreadable { path: String, reason: String },
    /// The assistant's vocabulary file (`directory.synonyms_csv`) is bad.
    #[error("{0}")]
    Synonyms(String),
    #[error("member directory {path} has no `{column}` column (header row: {header})")]
    MissingColumn {
        path: String,
        column: &'static str,
        header: String,
    },
}

/// The contract's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    MemberId,
    Name,
    Phone,
    Email,
    Profession,
    Specialty,
    Designation,
    Organization,
    City,
    Area,
    Skills,
    Services,
    GraduationYear,
    Degree,
    Branch,
    Bio,
    Role,
    Status,
    ShareContact,
}

impl Column {
    /// Recognises a header by its normalised name or one of its aliases.
    fn from_header(normalised: &str) -> Option<Column> {
        use Column::*;
        Some(match normalised {
            "memberid" | "id" => MemberId,
            "name" => Name,
            "phone" | "phonenumber" | "mobile" | "whatsapp" => Phone,
            "email" => Email,
            "profession" | "workingas" | "occupation" => Profession,
            "specialty" | "speciality" | "specialization" => Specialty,
            "designation" | "title" | "jobtitle" => Designation,
            "organization" | "organizationname" | "organisation" | "company" => Organization,
            "city" | "cityortown" | "citytownofliving" | "town" => City,
            "area" | "locality" | "neighbourhood" => Area,
            "skills" | "workingknowledge" | "expertise" => Skills,
            "services" | "productsservices" => Services,
            "graduationyear" | "yearofgraduation" | "batch" | "passoutyear" => GraduationYear,
            "degree" => Degree,
            "branch" | "department" | "discipline" => Branch,
            "bio" | "about" => Bio,
            "role" => Role,
            "status" => Status,
            "sharecontact" => ShareContact,
            _ => return None,
        })
    }
}

/// `Member ID:` → `memberid`.
fn normalise_header(header: &str) -> String {
    header
        .trim()
        .trim_start_matches('\u{feff}')
        .trim_end_matches(':')
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '/'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The loaded rows and the rejected ones.
pub(super) struct Loaded {
    pub members: Vec<Member>,
    pub rejected: Vec<Rejection>,
}

pub(super) fn load_csv(path: &Path, region: Region) -> Result<Loaded, LoadError> {
    let shown = path.display().to_string();
    let unreadable = |reason: String| LoadError::Unreadable {
        path: shown.clone(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
    parse_csv(&bytes, &shown, region)
}

pub(super) fn parse_csv(bytes: &[u8], shown: &str, region: Region) -> Result<Loaded, LoadError> {
    let unreadable = |reason: String| LoadError::Unreadable {
        path: shown.to_owned(),
        reason,
    };
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| unreadable(format!("the header row cannot be read: {e}")))?
        .clone();
    let columns: Vec<(Option<Column>, String)> = headers
        .iter()
        .map(|h| {
            (
                Column::from_header(&normalise_header(h)),
                h.trim().to_owned(),
            )
        })
        .collect();
    for (required, name) in [(Column::Name, "name"), (Column::Phone, "phone")] {
        if !columns.iter().any(|(c, _)| *c == Some(required)) {
            return Err(LoadError::MissingColumn {
                path: shown.to_owned(),
                column: name,
                header: headers.iter().collect::<Vec<_>>().join(","),
            });
        }
    }

    let mut members = Vec::new();
    let mut rejected = Vec::new();
    let mut ids = HashSet::new();
    let mut phones = HashSet::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line() + 1;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                rejected.push(Rejection {
                    line,
                    reason: format!("unreadable row: {e}"),
                });
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    break;
                }
                continue;
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue;
        }
        match member_from_row(&record, &columns, region, line) {
            Ok(member) => {
                if !phones.insert(member.phone) {
                    rejected.push(Rejection {
                        line,
                        reason: format!(
                            "duplicate phone {} (an earlier row has it)",
                            member.phone.masked()
                        ),
                    });
                } else if !ids.insert(member.id.clone()) {
                    phones.remove(&member.phone);
                    rejected.push(Rejection {
                        line,
                        reason: format!(
                            "duplicate member_id `{}` (an earlier row has it)",
                            member.id
                        ),
                    });
                } else {
                    members.push(member);
                }
            }
            Err(reason) => rejected.push(Rejection { line, reason }),
        }
    }
    Ok(Loaded { members, rejected })
}

fn member_from_row(
    record: &csv::StringRecord,
    columns: &[(Option<Column>, String)],
    region: Region,
    line: u64,
) -> Result<Member, String> {
    // The first non-empty cell of a column (a header may repeat).
    let cell = |column: Column| {
        columns
            .iter()
            .zip(record.iter())
            .find(|((c, _), value)| *c == Some(column) && !value.is_empty())
            .map(|(_, value)| value)
    };
    let text = |column: Column| cell(column).unwrap_or_default().to_owned();
    let name = cell(Column::Name).ok_or("missing required field `name`")?;
    let phone = cell(Column::Phone).ok_or("missing required field `phone`")?;
    let phone = PhoneNumber::parse(phone, region).map_err(|e| format!("bad phone: {e}"))?;
    Ok(Member {
        id: cell(Column::MemberId).map_or_else(|| phone.e164(), str::to_owned),
        name: name.to_owned(),
        phone,
        email: text(Column::Email),
        profession: text(Column::Profession),
        specialty: text(Column::Specialty),
        designation: text(Column::Designation),
        organization: text(Column::Organization),
        city: text(Column::City),
        area: text(Column::Area),
        skills: cell(Column::Skills).map(split_list).unwrap_or_default(),
        services: cell(Column::Services).map(split_list).unwrap_or_default(),
        graduation_year: cell(Column::GraduationYear).map(parse_year).transpose()?,
        degree: text(Column::Degree),
        branch: text(Column::Branch),
        bio: text(Column::Bio),
        role: cell(Column::Role).map_or(Ok(MemberRole::Member), parse_role)?,
        active: cell(Column::Status).map_or(Ok(true), parse_status)?,
        share_contact: cell(Column::ShareContact)
            .map_or(Ok(true), |v| parse_bool("share_contact", v))?,
        extra: columns
            .iter()
            .zip(record.iter())
            .filter(|((column, header), value)| {
                column.is_none() && !header.is_empty() && !value.is_empty()
            })
            .map(|((_, header), value)| (header.clone(), value.to_owned()))
            .collect(),
        line,
    })
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split([';', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_year(value: &str) -> Result<u16, String> {
    value
        .trim_start_matches('\'')
        .parse::<u16>()
        .ok()
        .filter(|y| (1900..=2100).contains(y))
        .ok_or_else(|| format!("graduation_year `{value}` is not a year such as 1995"))
}

fn parse_role(value: &str) -> Result<MemberRole, String> {
    match value.to_ascii_lowercase().as_str() {
        "member" => Ok(MemberRole::Member),
        "admin" => Ok(MemberRole::Admin),
        _ => Err(format!("role `{value}` is not `member` or `admin`")),
    }
}

fn parse_status(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "active" => Ok(true),
        "inactive" => Ok(false),
        _ => Err(format!("status `{value}` is not `active` or `inactive`")),
    }
}

fn parse_bool(column: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" => Ok(true),
        "false" | "no" | "n" | "0" => Ok(false),
        _ => Err(format!("{column} `{value}` is not `true` or `false`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_normalise() {
        assert_eq!(normalise_header("Member ID:"), "memberid");
        assert_eq!(
            normalise_header("City / Town of Living"),
            "citytownofliving"
        );
        assert_eq!(normalise_header("Products/Services"), "productsservices");
        assert_eq!(Column::from_header("phonenumber"), Some(Column::Phone));
    }
}
