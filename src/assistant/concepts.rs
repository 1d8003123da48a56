//! Concepts: what the built-in synonyms name, and how each one is found in
//! whatever directory is loaded.
//!
//! A built-in synonym never names a value of one particular directory.
//! "cardiologist" means *a doctor in cardiology*, and one directory calls
//! that `Doctor`/`Cardiology` while another says `Medical Practitioner`/
//! `Cardiac`. So the built-in table (`synonyms::BUILTIN`) writes concept
//! ids (`profession:doctor+specialty:cardiology`), and [`CONCEPTS`] lists,
//! for each id, the ways a directory may spell it. At every directory load
//! [`Concepts::resolve`] finds the loaded directory's own value for each
//! concept; a built-in term whose concept the directory lacks becomes a
//! [`Meaning::Missing`], so "cardiologists in Pune" answers that there are
//! none rather than listing every doctor.
//!
//! Matching a directory value to a concept is by the value's normalised
//! key, its spelling folded (British and American: `Paediatrics` ≈
//! `Pediatrics`), singular or plural, and with or without a generic word
//! (`Family Law` ≈ `family`).

use std::collections::HashMap;
use std::sync::LazyLock;

use super::field::Field;
use super::synonyms::{Meaning, Synonym, Synonyms};
use super::text;
use crate::directory::Directory;

/// `field:id = spelling, spelling, ...`. The id is itself a spelling.
#[rustfmt::skip]
const CONCEPTS: &str = "\
profession:doctor = physician, medical practitioner, medical doctor, general practitioner, medical officer, medical professional, medico
profession:dentist = dental surgeon, dental practitioner, dental doctor
profession:lawyer = advocate, attorney, solicitor, legal counsel, legal advisor, legal adviser, legal consultant, legal practitioner, legal professional, barrister, counsel, advocate and solicitor
profession:chartered accountant = ca, chartered accountants, accountant, practising ca
profession:software engineer = software developer, developer, programmer, software professional, it professional
profession:teacher = tutor, educator, lecturer, school teacher, faculty, trainer
profession:pharmacist = chemist, druggist, pharmacy, chemist and druggist
profession:photographer = photography, photographers, professional photographer
profession:designer = designers
profession:interior designer = interior decorator, interiors, interior design
profession:banker = banking professional, bank officer, banking
profession:entrepreneur = business owner, businessman, businesswoman, self employed, proprietor, businessperson
profession:marketing manager = marketer, marketing professional, marketing head, marketing
profession:civil engineer = civil engineering
profession:mechanical engineer = mechanical engineering
profession:architect = architecture
profession:nurse = nursing
profession:psychologist = counsellor, counselor
profession:contractor = builder, construction
profession:real estate agent = real estate broker, property dealer, realtor, estate agent, property consultant, real estate consultant, real estate
profession:insurance agent = insurance advisor, insurance adviser, insurance consultant, insurance
profession:plumber = plumbing
profession:engineer = engineers
profession:electrician = electrical works
profession:carpenter = carpentry
profession:company secretary = cs professional
profession:baker = bakery, home baker
profession:tailor = tailoring, boutique
profession:painter = painting contractor
profession:driver = chauffeur
profession:chef = cook, caterer, catering
profession:mechanic = auto mechanic
profession:beautician = beauty parlour, salon
profession:gardener = gardening, landscaper
profession:jeweller = jeweler, jewellery
profession:astrologer = astrology
profession:dietician = dietitian, nutritionist
profession:physiotherapist = physio, physiotherapy
profession:veterinarian = vet, veterinary doctor
profession:journalist = reporter
specialty:cardiology = cardiac, cardio, heart, cardiovascular, cardiac sciences, cardiothoracic
specialty:dermatology = skin, derma, skin care, cosmetology, dermatology and cosmetology
specialty:orthopedics = orthopaedics, ortho, bones, bone, joints, bone and joint, orthopedic surgery, orthopaedic surgery
specialty:pediatrics = paediatrics, child health, children, child care, kids, paediatric care
specialty:neurology = neuro, brain, nerves, neurosciences
specialty:general medicine = general practice, family medicine, internal medicine, medicine
specialty:gynecology = gynaecology, obstetrics and gynecology, obstetrics and gynaecology, obgyn, ob gyn, obstetrics, women s health
specialty:ophthalmology = eye, eyes, eye care
specialty:ent = ear nose throat, otorhinolaryngology, otolaryngology
specialty:oncology = cancer, cancer care
specialty:psychiatry = mental health
specialty:radiology = imaging
specialty:orthodontics = braces
specialty:family law = family, divorce, matrimonial, family matters, family and divorce
specialty:criminal law = criminal, criminal defence, criminal defense, crime
specialty:corporate law = corporate, company law, business law, corporate and commercial
specialty:intellectual property = ip, ipr, patents, patent, trademarks, ip law, intellectual property rights
specialty:litigation = civil litigation, disputes, dispute resolution
specialty:property law = real estate law, property, conveyancing
specialty:taxation = tax, taxes, income tax, direct tax, direct taxation, tax advisory
specialty:gst advisory = gst, indirect tax, indirect taxation, gst compliance
specialty:audit = auditing, statutory audit, assurance, audit and assurance
specialty:frontend = front end, ui, web frontend, frontend development
specialty:backend = back end, server side, backend development
specialty:mobile = android, ios, mobile apps, app development, mobile development
specialty:devops = dev ops, sre, infrastructure, cloud, cloud infrastructure
specialty:data engineering = data, big data, data pipelines
specialty:data science = machine learning, ml, ai, artificial intelligence, analytics
specialty:ux = user experience, ux design, ui ux, ux ui, product design, user experience design
specialty:structural = structures, structural engineering, structural design
specialty:automotive = automobile, automobiles, cars
specialty:hvac = heating ventilation and air conditioning
specialty:mathematics = maths, math
specialty:wedding = weddings, wedding photography
specialty:investment banking = ib
specialty:digital marketing = digital, online marketing, social media marketing, performance marketing
specialty:landscape = landscape architecture, landscaping
skill:videography = video, videos, video production, filmmaking
branch:computer science = cse, cs, computer engineering, computers, computer science and engineering, comp sci, computer
branch:information technology = infotech
branch:electronics = ece, electronics and communication, electronics and telecommunication, e and tc, entc, extc, electronics engineering
branch:electrical = eee, electrical and electronics, ee, electrical engineering
branch:mechanical = mech, mechanical engineering
branch:civil = civil engineering
degree:phd = ph d, doctorate, d phil, doctor of philosophy
degree:mba = pgdm, master of business administration
";

/// Words a value may carry or drop without changing what it names:
/// `Family Law` is `family`, `Data Engineering` is `data`.
#[rustfmt::skip]
pub(crate) const GENERIC_WORDS: &[&str] = &[
    "law", "laws", "legal", "engineering", "medicine", "medical", "science", "sciences",
    "services", "service", "consulting", "consultancy", "advisory", "design", "designing",
    "management", "development", "studies", "department", "dept", "practice", "care",
    "health", "solutions", "works", "specialist", "specialists", "professional",
    "professionals",
];

/// One concept of [`CONCEPTS`].
#[derive(Debug)]
struct Concept {
    field: Field,
    id: String,
    /// Folded keys of the spellings, the id's first.
    spellings: Vec<String>,
}

static TABLE: LazyLock<Vec<Concept>> = LazyLock::new(|| parse(CONCEPTS));

fn parse(table: &str) -> Vec<Concept> {
    let mut out = Vec::new();
    for line in table.lines() {
        let Some((head, rest)) = line.split_once('=') else {
            continue;
        };
        let Some((field, id)) = head.trim().split_once(':') else {
            continue;
        };
        let Some(field) = Field::parse(field) else {
            continue;
        };
        let spellings = rest;
        let id = text::key(id);
        let mut keys = vec![fold(&id)];
        keys.extend(
            spellings
                .split(',')
                .map(|s| fold(&text::key(s)))
                .filter(|s| !s.is_empty()),
        );
        out.push(Concept {
            field,
            id,
            spellings: keys,
        });
    }
    out
}

/// A key with its spelling folded, for comparing spellings: British and
/// American forms meet ("paediatrics", "pediatrics"; "anaesthesia").
pub(crate) fn fold(key: &str) -> String {
    let mut s = key.to_owned();
    for (from, to) in [
        ("ae", "e"),
        ("oe", "e"),
        ("isation", "ization"),
        ("our", "or"),
    ] {
        if s.contains(from) {
            s = s.replace(from, to);
        }
    }
    s
}

/// The forms a value's key can be compared under: itself, singular or
/// plural, and without its generic words.
pub(crate) fn forms(key: &str) -> Vec<String> {
    let folded = fold(key);
    let mut out = vec![folded.clone()];
    let (head, last) = match folded.rsplit_once(' ') {
        Some((head, last)) => (Some(head), last),
        None => (None, folded.as_str()),
    };
    for form in text::inflections(last) {
        out.push(match head {
            Some(head) => format!("{head} {form}"),
            None => form,
        });
    }
    let stripped = strip_generic(&folded);
    if !stripped.is_empty() && stripped != folded {
        out.push(stripped);
    }
    out.dedup();
    out
}

/// `key` without generic words ("family law" → "family"); empty if nothing
/// else is left.
pub(crate) fn strip_generic(key: &str) -> String {
    key.split(' ')
        .filter(|w| !GENERIC_WORDS.contains(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The concepts of the built-in table as one loaded directory spells them.
#[derive(Debug, Default)]
pub(crate) struct Concepts {
    /// (field, concept id) → the directory's most common value for it.
    resolved: HashMap<(Field, String), String>,
    /// Other directory values of a concept, filed under its main value:
    /// (field, key of the other value) → the main value.
    aliases: Vec<(Field, String, String)>,
}

impl Concepts {
    /// Finds every concept's value in `directory`.
    pub(crate) fn build(directory: &Directory) -> Concepts {
        // (field, form) → (value, members), for every value of every field.
        let mut values: HashMap<(Field, String), Vec<(String, u32)>> = HashMap::new();
        for member in directory.active_members() {
            for field in Field::STRUCTURED {
                for value in field.values(member) {
                    let key = text::key(value);
                    if key.is_empty() {
                        continue;
                    }
                    for form in forms(&key) {
                        let list = values.entry((field, form)).or_default();
                        match list.iter_mut().find(|(v, _)| text::key(v) == key) {
                            Some((_, n)) => *n += 1,
                            None => list.push((value.to_owned(), 1)),
                        }
                    }
                }
            }
        }
        let mut concepts = Concepts::default();
        for concept in TABLE.iter() {
            let mut found: Vec<(String, u32)> = Vec::new();
            for spelling in &concept.spellings {
                for (value, n) in values
                    .get(&(concept.field, spelling.clone()))
                    .into_iter()
                    .flatten()
                {
                    if !found.iter().any(|(v, _)| v == value) {
                        found.push((value.clone(), *n));
                    }
                }
            }
            found.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let Some((main, _)) = found.first().cloned() else {
                continue;
            };
            for (other, _) in found.iter().skip(1) {
                concepts
                    .aliases
                    .push((concept.field, text::key(other), main.clone()));
            }
            concepts
                .resolved
                .insert((concept.field, concept.id.clone()), main);
        }
        concepts
    }

    /// The directory's value for concept `id` of `field`, if it has one.
    pub(crate) fn value(&self, field: Field, id: &str) -> Option<&str> {
        self.resolved
            .get(&(field, text::key(id)))
            .map(String::as_str)
    }

    /// The built-in table as this directory spells it: every term whose
    /// concepts the directory has, in its spelling; every term whose
    /// concept it lacks, as [`Meaning::Missing`]; and each concept's other
    /// values filed under the main one.
    pub(crate) fn resolve(&self, builtin: &Synonyms) -> Synonyms {
        let mut entries = Vec::new();
        for synonym in &builtin.entries {
            let meaning = match &synonym.meaning {
                Meaning::Fields(fields) => self.resolve_fields(&synonym.term, fields),
                other => other.clone(),
            };
            entries.push(Synonym {
                term: synonym.term.clone(),
                meaning,
            });
        }
        // A profession no one here has is still a word members use for
        // what they ask: "architects" answers that there are none.
        // Single words only: "civil engineers" may still be read from the
        // directory's own `Civil` and `Engineer`.
        for concept in TABLE.iter().filter(|c| c.field == Field::Profession) {
            if self.value(concept.field, &concept.id).is_none() && !concept.id.contains(' ') {
                entries.push(Synonym {
                    term: concept.id.clone(),
                    meaning: Meaning::Missing(display(&concept.id)),
                });
            }
        }
        for (field, other, main) in &self.aliases {
            entries.push(Synonym {
                term: other.clone(),
                meaning: Meaning::Fields(vec![(*field, main.clone())]),
            });
        }
        Synonyms { entries }
    }

    /// Each resolved concept's other spellings, as terms for this
    /// directory's value: "cardiology" and "heart" for `Cardiac`.
    pub(crate) fn spellings(&self) -> Synonyms {
        let mut entries = Vec::new();
        for concept in TABLE.iter() {
            let Some(value) = self.value(concept.field, &concept.id) else {
                continue;
            };
            for spelling in &concept.spellings {
                if text::key(value) != *spelling {
                    entries.push(Synonym {
                        term: spelling.clone(),
                        meaning: Meaning::Fields(vec![(concept.field, value.to_owned())]),
                    });
                }
            }
        }
        Synonyms { entries }
    }

    fn resolve_fields(&self, term: &str, fields: &[(Field, String)]) -> Meaning {
        let mut out = Vec::new();
        let mut missing = false;
        for (field, id) in fields {
            match field {
                // Places are names, not concepts: the alias mechanism files
                // old and new names together (see `index`).
                Field::City | Field::Area | Field::Keyword => out.push((*field, id.clone())),
                _ => match self.value(*field, id) {
                    Some(value) => out.push((*field, value.to_owned())),
                    // A directory without the profession but with the
                    // specialty ("Cardiac" under "Medical Practitioner")
                    // still finds the specialty.
                    None if *field == Field::Profession && fields.len() > 1 => {}
                    None => missing = true,
                },
            }
        }
        if missing || out.is_empty() {
            Meaning::Missing(display(term))
        } else {
            Meaning::Fields(out)
        }
    }
}

/// What a term the directory has no one for is called in a reply:
/// "plumbers" → "Plumber".
pub(crate) fn display(term: &str) -> String {
    let singular = match term.rsplit_once(' ') {
        Some((head, last)) => format!("{head} {}", singular(last)),
        None => singular(term),
    };
    let mut chars = singular.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn singular(word: &str) -> String {
    if word.len() > 4
        && let Some(stem) = word.strip_suffix("ies")
    {
        return format!("{stem}y");
    }
    if word.len() > 3 && word.ends_with('s') && !word.ends_with("ss") {
        return word[..word.len() - 1].to_owned();
    }
    word.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::Region;

    fn concepts(csv: &str) -> Concepts {
        let directory = Directory::from_csv(csv, Region::default()).unwrap();
        Concepts::build(&directory)
    }

    #[test]
    fn the_table_parses() {
        assert!(TABLE.len() > 60);
        let cardiology = TABLE.iter().find(|c| c.id == "cardiology").unwrap();
        assert_eq!(cardiology.field, Field::Specialty);
        assert!(cardiology.spellings.contains(&"cardiac".to_owned()));
    }

    #[test]
    fn concepts_resolve_to_the_directory_spelling() {
        let c = concepts(
            "name,phone,profession,specialty\n\
             A,+919800000001,Medical Practitioner,Cardiac\n\
             B,+919800000002,Medical Practitioner,Bones\n\
             C,+919800000003,Physician,Paediatrics\n\
             D,+919800000004,Advocate,Family\n",
        );
        assert_eq!(
            c.value(Field::Profession, "doctor"),
            Some("Medical Practitioner")
        );
        assert_eq!(c.value(Field::Specialty, "cardiology"), Some("Cardiac"));
        assert_eq!(c.value(Field::Specialty, "orthopedics"), Some("Bones"));
        assert_eq!(c.value(Field::Specialty, "pediatrics"), Some("Paediatrics"));
        assert_eq!(c.value(Field::Specialty, "family law"), Some("Family"));
        assert_eq!(c.value(Field::Profession, "lawyer"), Some("Advocate"));
        assert_eq!(c.value(Field::Profession, "plumber"), None);
        assert!(c.aliases.contains(&(
            Field::Profession,
            "physician".into(),
            "Medical Practitioner".into()
        )));
    }

    #[test]
    fn a_concept_the_directory_lacks_is_missing() {
        let c = concepts("name,phone,profession\nA,+919800000001,Doctor\n");
        let builtin = Synonyms::parse(
            "cardiologist,profession:doctor+specialty:cardiology\nplumbers,profession:plumber\n",
            "t",
        )
        .unwrap();
        let resolved = c.resolve(&builtin);
        assert_eq!(
            resolved.entries[0].meaning,
            Meaning::Missing("Cardiologist".into())
        );
        assert_eq!(
            resolved.entries[1].meaning,
            Meaning::Missing("Plumber".into())
        );
    }

    #[test]
    fn forms_fold_inflect_and_drop_generic_words() {
        assert!(forms("family law").contains(&"family".to_owned()));
        assert!(forms("paediatrics").contains(&"pediatrics".to_owned()));
        assert!(forms("bones").contains(&"bone".to_owned()));
        assert_eq!(display("plumbers"), "Plumber");
        assert_eq!(display("yoga teachers"), "Yoga teacher");
    }
}
