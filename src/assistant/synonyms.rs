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
    /// Something asked for that the loaded directory has no one for, as a
    /// reply names it ("Plumber"). Only the built-in table resolves to
    /// this (see `concepts`); files cannot write it.
    Missing(String),
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

/// The built-in table: Indian cities' former names (and Devanagari ones),
/// common synonyms and abbreviations of professions and specialties,
/// engineering branches, and Hinglish function words. Profession, specialty,
/// skill, degree and branch values are concept ids (`concepts::CONCEPTS`),
/// never one directory's spelling: each resolves at load to what the loaded
/// directory calls it, or to a no-results reply that names the term.
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
nasik,city:Nashik
vadodara,city:Vadodara
# Cities in Devanagari
नाशिक,city:Nashik
नासिक,city:Nashik
पुणे,city:Pune
पूना,city:Pune
मुंबई,city:Mumbai
मुम्बई,city:Mumbai
बंबई,city:Mumbai
दिल्ली,city:Delhi
नई दिल्ली,city:Delhi
बेंगलुरु,city:Bengaluru
बैंगलोर,city:Bengaluru
बंगलौर,city:Bengaluru
चेन्नई,city:Chennai
कोलकाता,city:Kolkata
हैदराबाद,city:Hyderabad
अहमदाबाद,city:Ahmedabad
सूरत,city:Surat
नागपुर,city:Nagpur
जयपुर,city:Jaipur
लखनऊ,city:Lucknow
इंदौर,city:Indore
भोपाल,city:Bhopal
वडोदरा,city:Vadodara
ठाणे,city:Thane
औरंगाबाद,city:Aurangabad
नोएडा,city:Noida
गुड़गांव,city:Gurugram
गुरुग्राम,city:Gurugram
चंडीगढ़,city:Chandigarh
पटना,city:Patna
कोच्चि,city:Kochi
मैसूर,city:Mysuru
गोवा,city:Goa
बेलगाम,city:Belagavi
हुबली,city:Hubballi
कोल्हापुर,city:Kolhapur
# Professions and specialties: the values name concepts (see concepts.rs),
# resolved at every load to whatever the loaded directory calls them.
doc,profession:doctor
docs,profession:doctor
dr,profession:doctor
medic,profession:doctor
medico,profession:doctor
daktar,profession:doctor
doctor sahab,profession:doctor
surgeon,profession:doctor
डॉक्टर,profession:doctor
डाक्टर,profession:doctor
डॉक्टरों,profession:doctor
चिकित्सक,profession:doctor
cardiologist,profession:doctor+specialty:cardiology
heart specialist,profession:doctor+specialty:cardiology
heart doctor,profession:doctor+specialty:cardiology
skin doctor,profession:doctor+specialty:dermatology
bone doctor,profession:doctor+specialty:orthopedics
child doctor,profession:doctor+specialty:pediatrics
kids doctor,profession:doctor+specialty:pediatrics
children s doctor,profession:doctor+specialty:pediatrics
eye doctor,profession:doctor+specialty:ophthalmology
cancer doctor,profession:doctor+specialty:oncology
brain doctor,profession:doctor+specialty:neurology
cardiac surgeon,profession:doctor+specialty:cardiology
dermatologist,profession:doctor+specialty:dermatology
skin specialist,profession:doctor+specialty:dermatology
pediatrician,profession:doctor+specialty:pediatrics
paediatrician,profession:doctor+specialty:pediatrics
child specialist,profession:doctor+specialty:pediatrics
orthopedist,profession:doctor+specialty:orthopedics
orthopedician,profession:doctor+specialty:orthopedics
orthopaedician,profession:doctor+specialty:orthopedics
orthopedic surgeon,profession:doctor+specialty:orthopedics
orthopaedic surgeon,profession:doctor+specialty:orthopedics
bone specialist,profession:doctor+specialty:orthopedics
neurologist,profession:doctor+specialty:neurology
general physician,profession:doctor+specialty:general medicine
gp,profession:doctor+specialty:general medicine
family doctor,profession:doctor+specialty:general medicine
family physician,profession:doctor+specialty:general medicine
internist,profession:doctor+specialty:general medicine
gynecologist,profession:doctor+specialty:gynecology
gynaecologist,profession:doctor+specialty:gynecology
gynac,profession:doctor+specialty:gynecology
ophthalmologist,profession:doctor+specialty:ophthalmology
eye specialist,profession:doctor+specialty:ophthalmology
ent specialist,profession:doctor+specialty:ent
oncologist,profession:doctor+specialty:oncology
cancer specialist,profession:doctor+specialty:oncology
psychiatrist,profession:doctor+specialty:psychiatry
radiologist,profession:doctor+specialty:radiology
dental doctor,profession:dentist
tooth doctor,profession:dentist
orthodontist,profession:dentist+specialty:orthodontics
advocate,profession:lawyer
attorney,profession:lawyer
solicitor,profession:lawyer
counsel,profession:lawyer
legal counsel,profession:lawyer
legal advisor,profession:lawyer
legal adviser,profession:lawyer
vakil,profession:lawyer
vakeel,profession:lawyer
वकील,profession:lawyer
अधिवक्ता,profession:lawyer
ip lawyer,profession:lawyer+specialty:intellectual property
patent lawyer,profession:lawyer+specialty:intellectual property
patent attorney,profession:lawyer+specialty:intellectual property
criminal lawyer,profession:lawyer+specialty:criminal law
divorce lawyer,profession:lawyer+specialty:family law
family lawyer,profession:lawyer+specialty:family law
corporate lawyer,profession:lawyer+specialty:corporate law
litigator,profession:lawyer+specialty:litigation
property lawyer,profession:lawyer+specialty:property law
ca,profession:chartered accountant
accountant,profession:chartered accountant
सीए,profession:chartered accountant
auditor,profession:chartered accountant+specialty:audit
tax consultant,profession:chartered accountant+specialty:taxation
tax advisor,profession:chartered accountant+specialty:taxation
tax expert,profession:chartered accountant+specialty:taxation
gst consultant,profession:chartered accountant+specialty:gst advisory
gst expert,profession:chartered accountant+specialty:gst advisory
developer,profession:software engineer
programmer,profession:software engineer
dev,profession:software engineer
devs,profession:software engineer
coder,profession:software engineer
software developer,profession:software engineer
software dev,profession:software engineer
swe,profession:software engineer
sde,profession:software engineer
techie,profession:software engineer
techies,profession:software engineer
it guy,profession:software engineer
web developer,profession:software engineer
full stack developer,profession:software engineer
frontend developer,profession:software engineer+specialty:frontend
front end developer,profession:software engineer+specialty:frontend
ui developer,profession:software engineer+specialty:frontend
backend developer,profession:software engineer+specialty:backend
back end developer,profession:software engineer+specialty:backend
mobile developer,profession:software engineer+specialty:mobile
app developer,profession:software engineer+specialty:mobile
android developer,profession:software engineer+specialty:mobile
ios developer,profession:software engineer+specialty:mobile
devops engineer,profession:software engineer+specialty:devops
sre,profession:software engineer+specialty:devops
data engineer,profession:software engineer+specialty:data engineering
data scientist,specialty:data science
ux designer,profession:designer+specialty:ux
surat,city:Surat
tutor,profession:teacher
educator,profession:teacher
school teacher,profession:teacher
शिक्षक,profession:teacher
अध्यापक,profession:teacher
टीचर,profession:teacher
chemist,profession:pharmacist
druggist,profession:pharmacist
medical store,profession:pharmacist
medical shop,profession:pharmacist
केमिस्ट,profession:pharmacist
cameraman,profession:photographer
फोटोग्राफर,profession:photographer
videographer,skill:videography
interior decorator,profession:interior designer
marketer,profession:marketing manager
digital marketer,profession:marketing manager+specialty:digital marketing
investment banker,profession:banker+specialty:investment banking
business owner,profession:entrepreneur
businessman,profession:entrepreneur
businessmen,profession:entrepreneur
businesswoman,profession:entrepreneur
businesswomen,profession:entrepreneur
vyapari,profession:entrepreneur
व्यापारी,profession:entrepreneur
structural engineer,profession:civil engineer+specialty:structural
automotive engineer,profession:mechanical engineer+specialty:automotive
hvac engineer,profession:mechanical engineer+specialty:hvac
builder,profession:contractor
property dealer,profession:real estate agent
realtor,profession:real estate agent
broker,profession:real estate agent
insurance agent,profession:insurance agent
plumber,profession:plumber
electrician,profession:electrician
carpenter,profession:carpenter
nurse,profession:nurse
counsellor,profession:psychologist
counselor,profession:psychologist
maths,specialty:mathematics
math,specialty:mathematics
इंजीनियर,profession:engineer
इंजिनियर,profession:engineer
# Degrees and branches as alumni write them
doctorate,degree:phd
doctorates,degree:phd
phds,degree:phd
cse,branch:computer science
cs,branch:computer science
ece,branch:electronics
eee,branch:electrical
mech,branch:mechanical
# Hinglish and Hindi function words: any, is there, in, need, please, and
# forms of address. They carry no search.
koi,ignore
koii,ignore
hai,ignore
hain,ignore
he,ignore
kya,ignore
kia,ignore
mein,ignore
mai,ignore
mei,ignore
main,ignore
ka,ignore
ki,ignore
ke,ignore
ko,ignore
se,ignore
chahiye,ignore
chahie,ignore
chaiye,ignore
chahiya,ignore
chaahiye,ignore
batao,ignore
bataiye,ignore
bataye,ignore
bata,ignore
dedo,ignore
do,ignore
dijiye,ignore
milega,ignore
milegi,ignore
milenge,ignore
bhaiya,ignore
bhaiyya,ignore
didi,ignore
yaar,ignore
yar,ignore
sahab,ignore
saab,ignore
na,ignore
kuch,ignore
wala,ignore
wale,ignore
wali,ignore
ek,ignore
aap,ignore
mujhe,ignore
muje,ignore
hume,ignore
humein,ignore
hamein,ignore
kaun,ignore
kon,ignore
kahan,ignore
kaha,ignore
kidhar,ignore
bhi,ignore
log,ignore
logo,ignore
logon,ignore
sab,ignore
zara,ignore
jara,ignore
hoga,ignore
hota,ignore
kripya,ignore
please,ignore
plss,ignore
plzz,ignore
plzzz,ignore
pleez,ignore
any1,ignore
anyone1,ignore
some1,ignore
sum1,ignore
ne1,ignore
every1,ignore
ppl,ignore
asap,ignore
frm,ignore
wid,ignore
abt,ignore
कोई,ignore
है,ignore
हैं,ignore
क्या,ignore
में,ignore
मे,ignore
से,ignore
का,ignore
की,ignore
के,ignore
को,ignore
चाहिए,ignore
चाहिये,ignore
बताओ,ignore
बताइए,ignore
कृपया,ignore
मुझे,ignore
जी,ignore
भाई,ignore
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
                (Field::Profession, "doctor".to_owned()),
                (Field::Specialty, "cardiology".to_owned()),
            ]),
            "built-ins name concepts, not one directory's values"
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
