//! The synonyms table: words members use that the directory does not spell
//! out ("physician", "Bangalore", "CA"), mapped to what they mean.
//!
//! The same CSV format serves the built-in table compiled in below and the
//! operator's file (`directory.synonyms_csv`, default `data/synonyms.csv`),
//! which is read on every directory load and adds to (or overrides) the
//! built-ins without recompiling:
//!
//! ```text
//! # comment lines start with #; blank lines are skipped
//! term,means
//! physician,profession:Doctor
//! cardiologist,profession:Doctor+specialty:Cardiology
//! bangalore,city:Bengaluru
//! agla,intent:more
//! bhai,ignore
//! ```
//!
//! `term` is what a member writes: any case, punctuation ignored, several
//! words allowed; plurals and singulars follow automatically. `means` is
//! one or more `field:value` pairs joined by `+`, where field is one of
//! profession, specialty, designation, skill, service, organization, city,
//! area, degree, branch or keyword, and value is spelled as in the
//! directory; or `intent:` greeting, help, thanks, more, contact or details;
//! or `ignore` for a filler word. A missing file means the built-ins only;
//! a malformed one fails the load with its path and line.

use std::path::Path;

use super::field::Field;
use super::text;
use super::words::Role;

/// What a synonym stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Meaning {
    /// Constraints, applied together: "cardiologist" is a doctor in cardiology.
    Fields(Vec<(Field, String)>),
    /// A conversational word: "agla" asks for more.
    Intent(Role),
    /// A filler word.
    Ignore,
}

/// One row of a synonyms table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Synonym {
    /// The normalised term ([`text::key`]).
    pub term: String,
    pub meaning: Meaning,
}

/// A parsed synonyms table.
#[derive(Debug, Clone, Default)]
pub struct Synonyms {
    pub(crate) entries: Vec<Synonym>,
}

/// Why a synonyms file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SynonymsError {
    #[error("cannot read the synonyms file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("synonyms file {path}, line {line}: {reason}")]
    Malformed {
        path: String,
        line: u64,
        reason: String,
    },
}

impl SynonymsError {
    /// The file the error is about.
    pub fn path(&self) -> &str {
        match self {
            SynonymsError::Unreadable { path, .. } | SynonymsError::Malformed { path, .. } => path,
        }
    }
}

impl Synonyms {
    /// The table compiled into Roster.
    pub fn builtin() -> Synonyms {
        // The built-in text is checked by a unit test; a failure here would
        // be a build defect, so fall back to an empty table rather than panic.
        Synonyms::parse(BUILTIN, "<built-in synonyms>").unwrap_or_default()
    }

    /// Reads the operator's table at `path`; a missing file is an empty table.
    pub fn load(path: &Path) -> Result<Synonyms, SynonymsError> {
        let shown = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Synonyms::parse(&text, &shown),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Synonyms::default()),
            Err(e) => Err(SynonymsError::Unreadable {
                path: shown,
                reason: e.to_string(),
            }),
        }
    }

    /// Parses a table; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Synonyms, SynonymsError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut entries = Vec::new();
        // Line by line, so that comments count in the line numbers reported
        // (a term never spans lines).
        for (n, row) in text.lines().enumerate() {
            let line = n as u64 + 1;
            let malformed = |reason: String| SynonymsError::Malformed {
                path: source.to_owned(),
                line,
                reason,
            };
            let trimmed = row.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .trim(csv::Trim::All)
                .from_reader(trimmed.as_bytes());
            let mut record = csv::StringRecord::new();
            match reader.read_record(&mut record) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => return Err(malformed(format!("unreadable row: {e}"))),
            }
            let is_header = record.len() == 2
                && record
                    .get(0)
                    .is_some_and(|t| t.eq_ignore_ascii_case("term"))
                && record
                    .get(1)
                    .is_some_and(|m| m.eq_ignore_ascii_case("means"));
            if is_header {
                continue;
            }
            let (Some(term), Some(means), 2) = (record.get(0), record.get(1), record.len()) else {
                return Err(malformed(format!(
                    "expected two columns `term,means`, found {} (quote a term that contains a comma)",
                    record.len()
                )));
            };
            let key = text::key(term);
            if key.is_empty() {
                return Err(malformed(format!(
                    "the term `{term}` has no letters or digits"
                )));
            }
            let meaning = parse_meaning(means).map_err(malformed)?;
            entries.push(Synonym { term: key, meaning });
        }
        Ok(Synonyms { entries })
    }

    /// How many terms the table defines.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn parse_meaning(means: &str) -> Result<Meaning, String> {
    if means.eq_ignore_ascii_case("ignore") {
        return Ok(Meaning::Ignore);
    }
    let mut fields: Vec<(Field, String)> = Vec::new();
    for part in means.split('+') {
        let Some((name, value)) = part.split_once(':') else {
            return Err(format!(
                "`{part}` is not `field:value`, `intent:…` or `ignore`"
            ));
        };
        let (name, value) = (name.trim(), value.trim());
        if value.is_empty() {
            return Err(format!("`{name}:` has no value"));
        }
        if name.eq_ignore_ascii_case("intent") {
            if means.contains('+') {
                return Err("an intent cannot be combined with other meanings".to_owned());
            }
            return parse_intent(value).map(Meaning::Intent);
        }
        let field = Field::parse(name).ok_or_else(|| {
            format!(
                "unknown field `{name}`; use profession, specialty, designation, skill, service, organization, city, area, degree, branch, keyword or intent"
            )
        })?;
        if field != Field::Keyword && fields.iter().any(|(f, _)| *f == field) {
            return Err(format!("`{name}` is given twice"));
        }
        if field == Field::Keyword && text::key(value).contains(' ') {
            return Err(format!("keyword `{value}` must be a single word"));
        }
        fields.push((field, value.to_owned()));
    }
    Ok(Meaning::Fields(fields))
}

fn parse_intent(value: &str) -> Result<Role, String> {
    Ok(match value.to_ascii_lowercase().as_str() {
        "greeting" => Role::Greeting,
        "help" => Role::Help,
        "thanks" => Role::Thanks,
        "more" => Role::More,
        "contact" => Role::Contact,
        "details" => Role::Details,
        _ => {
            return Err(format!(
                "unknown intent `{value}`; use greeting, help, thanks, more, contact or details"
            ));
        }
    })
}

/// The built-in table: Indian cities' former names, common synonyms and
/// abbreviations of professions and specialties, and engineering branches.
/// Values name what a directory usually says; a value the directory lacks
/// simply finds no one.
const BUILTIN: &str = "\
term,means
# Cities: former and colloquial names
bangalore,city:Bengaluru
bengalooru,city:Bengaluru
blr,city:Bengaluru
bombay,city:Mumbai
madras,city:Chennai
calcutta,city:Kolkata
gurgaon,city:Gurugram
mysore,city:Mysuru
trivandrum,city:Thiruvananthapuram
tvm,city:Thiruvananthapuram
cochin,city:Kochi
ernakulam,city:Kochi
pondicherry,city:Puducherry
pondy,city:Puducherry
poona,city:Pune
new delhi,city:Delhi
baroda,city:Vadodara
benares,city:Varanasi
banaras,city:Varanasi
mangalore,city:Mangaluru
hubli,city:Hubballi
belgaum,city:Belagavi
vizag,city:Visakhapatnam
calicut,city:Kozhikode
trichy,city:Tiruchirappalli
allahabad,city:Prayagraj
gauhati,city:Guwahati
simla,city:Shimla
kovai,city:Coimbatore
quilon,city:Kollam
alleppey,city:Alappuzha
trichur,city:Thrissur
cannanore,city:Kannur
tuticorin,city:Thoothukudi
hyd,city:Hyderabad
# Doctors
physician,profession:Doctor
doc,profession:Doctor
dr,profession:Doctor
medic,profession:Doctor
medical doctor,profession:Doctor
cardiologist,profession:Doctor+specialty:Cardiology
heart specialist,profession:Doctor+specialty:Cardiology
heart doctor,profession:Doctor+specialty:Cardiology
dermatologist,profession:Doctor+specialty:Dermatology
skin specialist,profession:Doctor+specialty:Dermatology
skin doctor,profession:Doctor+specialty:Dermatology
pediatrician,profession:Doctor+specialty:Pediatrics
paediatrician,profession:Doctor+specialty:Pediatrics
child specialist,profession:Doctor+specialty:Pediatrics
child doctor,profession:Doctor+specialty:Pediatrics
kids doctor,profession:Doctor+specialty:Pediatrics
paediatrics,specialty:Pediatrics
orthopedist,profession:Doctor+specialty:Orthopedics
orthopedician,profession:Doctor+specialty:Orthopedics
orthopaedician,profession:Doctor+specialty:Orthopedics
orthopedic surgeon,profession:Doctor+specialty:Orthopedics
orthopaedic surgeon,profession:Doctor+specialty:Orthopedics
bone doctor,profession:Doctor+specialty:Orthopedics
bone specialist,profession:Doctor+specialty:Orthopedics
ortho,profession:Doctor+specialty:Orthopedics
orthopedic,specialty:Orthopedics
orthopaedic,specialty:Orthopedics
orthopaedics,specialty:Orthopedics
neurologist,profession:Doctor+specialty:Neurology
neuro,profession:Doctor+specialty:Neurology
general physician,profession:Doctor+specialty:General Medicine
gp,profession:Doctor+specialty:General Medicine
family doctor,profession:Doctor+specialty:General Medicine
family physician,profession:Doctor+specialty:General Medicine
internist,profession:Doctor+specialty:General Medicine
dental surgeon,profession:Dentist
dental doctor,profession:Dentist
tooth doctor,profession:Dentist
orthodontist,profession:Dentist+specialty:Orthodontics
# Lawyers
advocate,profession:Lawyer
attorney,profession:Lawyer
solicitor,profession:Lawyer
counsel,profession:Lawyer
legal counsel,profession:Lawyer
legal advisor,profession:Lawyer
legal adviser,profession:Lawyer
ip lawyer,profession:Lawyer+specialty:Intellectual Property
patent lawyer,profession:Lawyer+specialty:Intellectual Property
patent attorney,profession:Lawyer+specialty:Intellectual Property
criminal lawyer,profession:Lawyer+specialty:Criminal Law
divorce lawyer,profession:Lawyer+specialty:Family Law
family lawyer,profession:Lawyer+specialty:Family Law
corporate lawyer,profession:Lawyer+specialty:Corporate Law
# Accountants
ca,profession:Chartered Accountant
accountant,profession:Chartered Accountant
auditor,profession:Chartered Accountant
tax consultant,profession:Chartered Accountant+specialty:Taxation
tax advisor,profession:Chartered Accountant+specialty:Taxation
gst consultant,profession:Chartered Accountant+specialty:GST Advisory
gst expert,profession:Chartered Accountant+specialty:GST Advisory
# Software
developer,profession:Software Engineer
programmer,profession:Software Engineer
dev,profession:Software Engineer
coder,profession:Software Engineer
software developer,profession:Software Engineer
software dev,profession:Software Engineer
swe,profession:Software Engineer
sde,profession:Software Engineer
techie,profession:Software Engineer
web developer,profession:Software Engineer
full stack developer,profession:Software Engineer
frontend developer,profession:Software Engineer+specialty:Frontend
front end developer,profession:Software Engineer+specialty:Frontend
ui developer,profession:Software Engineer+specialty:Frontend
backend developer,profession:Software Engineer+specialty:Backend
back end developer,profession:Software Engineer+specialty:Backend
mobile developer,profession:Software Engineer+specialty:Mobile
app developer,profession:Software Engineer+specialty:Mobile
android developer,profession:Software Engineer+specialty:Mobile
ios developer,profession:Software Engineer+specialty:Mobile
devops engineer,profession:Software Engineer+specialty:DevOps
sre,profession:Software Engineer+specialty:DevOps
data engineer,profession:Software Engineer+specialty:Data Engineering
# Other professions
tutor,profession:Teacher
educator,profession:Teacher
school teacher,profession:Teacher
maths,specialty:Mathematics
math,specialty:Mathematics
cameraman,profession:Photographer
videographer,skill:Videography
interior decorator,profession:Interior Designer
marketer,profession:Marketing Manager
digital marketer,profession:Marketing Manager+specialty:Digital Marketing
investment banker,profession:Banker+specialty:Investment Banking
business owner,profession:Entrepreneur
businessman,profession:Entrepreneur
businessmen,profession:Entrepreneur
businesswoman,profession:Entrepreneur
businesswomen,profession:Entrepreneur
structural engineer,profession:Civil Engineer+specialty:Structural
automotive engineer,profession:Mechanical Engineer+specialty:Automotive
hvac engineer,profession:Mechanical Engineer+specialty:HVAC
# Engineering branches
cse,branch:Computer Science
cs,branch:Computer Science
ece,branch:Electronics
eee,branch:Electrical
mech,branch:Mechanical
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_table_parses() {
        let table = Synonyms::parse(BUILTIN, "<built-in>").expect("built-in table is valid");
        assert!(table.len() > 100);
        assert_eq!(Synonyms::builtin().len(), table.len());
        let cardiologist = table
            .entries
            .iter()
            .find(|s| s.term == "cardiologist")
            .unwrap();
        assert_eq!(
            cardiologist.meaning,
            Meaning::Fields(vec![
                (Field::Profession, "Doctor".to_owned()),
                (Field::Specialty, "Cardiology".to_owned()),
            ])
        );
    }

    #[test]
    fn every_kind_of_row() {
        let table = Synonyms::parse(
            "# a comment\n\nterm,means\nBhai,ignore\nagla,intent:more\n\"ortho, bone\",keyword:bones\n",
            "x.csv",
        )
        .unwrap();
        assert_eq!(table.entries[0].meaning, Meaning::Ignore);
        assert_eq!(table.entries[0].term, "bhai");
        assert_eq!(table.entries[1].meaning, Meaning::Intent(Role::More));
        assert_eq!(table.entries[2].term, "ortho bone");
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let cases = [
            (
                "term,means\nphysician,profesion:Doctor\n",
                2,
                "unknown field `profesion`",
            ),
            ("# c\nphysician\n", 2, "expected two columns"),
            ("a,b,c\n", 1, "expected two columns"),
            ("ok,city:Pune\n🙂,city:Pune\n", 2, "no letters or digits"),
            ("x,city:\n", 1, "has no value"),
            ("x,intent:dance\n", 1, "unknown intent"),
            ("x,intent:more+city:Pune\n", 1, "cannot be combined"),
            ("x,city:Pune+city:Goa\n", 1, "given twice"),
            ("x,Doctor\n", 1, "not `field:value`"),
        ];
        for (text, line, reason) in cases {
            let err = Synonyms::parse(text, "data/synonyms.csv").unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("synonyms file data/synonyms.csv, line {line}: ")),
                "{message}"
            );
            assert!(message.contains(reason), "{message} should say {reason}");
        }
    }

    #[test]
    fn a_missing_file_is_an_empty_table() {
        let table = Synonyms::load(Path::new("/nonexistent/synonyms.csv")).unwrap();
        assert!(table.is_empty());
    }
}
