//! The golden set: messages as members write them, over data/members.csv
//! and data/synonyms.csv, with the expected members computed by filtering
//! the directory on its own fields (never typed by hand).
//!
//! Asserts precision ≥ 0.97 and first-page recall ≥ 0.95 over every search
//! and refinement in the set (and prints both), that every other message
//! gets its intent, that the wider searches offered by no-results replies
//! find what they promise, that every follow-up works in process and
//! through the real webhook (across a restart too), and that no reply
//! shows a private member's phone or email or any inactive member.

use std::path::PathBuf;
use std::sync::Arc;

use crate::common::*;
use roster::assistant::{Answer, Assistant, PAGE_SIZE, Synonyms, Understanding};
use roster::conversation::Intent;
use roster::conversation::Session;
use roster::directory::{Directory, Member};
use roster::phone::Region;

const TTL_MS: u64 = 30 * 60 * 1000;
/// The sender of the golden messages: Priya Deshpande, 1995 batch.
const SENDER: &str = "M0002";

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
}

struct World {
    directory: Arc<Directory>,
    assistant: Assistant,
}

impl World {
    fn load() -> World {
        let directory =
            Arc::new(Directory::load(&data("members.csv"), Region::default()).expect("members"));
        let synonyms = Synonyms::load(&data("synonyms.csv")).expect("synonyms");
        let assistant =
            Assistant::with_synonyms(directory.clone(), "Sahyadri Alumni Network", &synonyms);
        World {
            directory,
            assistant,
        }
    }

    fn member(&self, id: &str) -> &Member {
        self.directory
            .by_id(id)
            .expect("member in data/members.csv")
    }

    /// Active members the filter selects, in directory order.
    fn expected(&self, filter: &Filter) -> Vec<String> {
        self.directory
            .active_members()
            .filter(|m| filter(m))
            .map(|m| m.id.clone())
            .collect()
    }

    /// Sends `messages` in one conversation from `sender`; the last
    /// understanding and answer, and every reply.
    fn converse(&self, sender: &Member, messages: &[&str]) -> (Understanding, Answer, Vec<String>) {
        let mut session = Session::new(sender, 0, TTL_MS);
        let mut replies = Vec::new();
        let mut last = None;
        for (i, text) in messages.iter().enumerate() {
            let understanding = self.assistant.understand(text, &session, sender);
            let answer = self.assistant.answer(&understanding, sender);
            session.record(
                answer.entry(text, i as u64, &understanding),
                understanding.runs_search(),
                10,
                TTL_MS,
            );
            replies.push(answer.text.clone());
            last = Some((understanding, answer));
        }
        let (understanding, answer) = last.expect("at least one message");
        (understanding, answer, replies)
    }
}

// ---- Expected sets: filters over the directory's fields ----

type Filter = Box<dyn Fn(&Member) -> bool>;

fn same(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b)
}

fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn profession(v: &'static str) -> Filter {
    Box::new(move |m| same(&m.profession, v))
}
fn specialty(v: &'static str) -> Filter {
    Box::new(move |m| same(&m.specialty, v))
}
fn city(v: &'static str) -> Filter {
    Box::new(move |m| same(&m.city, v))
}
fn area(v: &'static str) -> Filter {
    Box::new(move |m| same(&m.area, v))
}
fn organization(v: &'static str) -> Filter {
    Box::new(move |m| same(&m.organization, v))
}
fn degree(v: &'static str) -> Filter {
    Box::new(move |m| same(&m.degree, v))
}
fn branch(v: &'static str) -> Filter {
    Box::new(move |m| same(&m.branch, v))
}
fn skill(v: &'static str) -> Filter {
    Box::new(move |m| m.skills.iter().any(|s| same(s, v)))
}
fn service(v: &'static str) -> Filter {
    Box::new(move |m| m.services.iter().any(|s| same(s, v)))
}
fn year(y: u16) -> Filter {
    Box::new(move |m| m.graduation_year == Some(y))
}
/// Every word is a word of the member's name.
fn named(words: &'static [&'static str]) -> Filter {
    Box::new(move |m| {
        let name = words_of(&m.name);
        words.iter().all(|w| name.contains(&w.to_lowercase()))
    })
}
/// The designation has this word ("founder" in "Founder & CEO").
fn title(word: &'static str) -> Filter {
    Box::new(move |m| words_of(&m.designation).contains(&word.to_owned()))
}
/// The word (or its plural) is in what the member wrote about themselves.
fn mentions(word: &'static str) -> Filter {
    Box::new(move |m| {
        let mut text: Vec<String> = Vec::new();
        for part in [
            &m.profession,
            &m.specialty,
            &m.designation,
            &m.organization,
            &m.degree,
            &m.branch,
            &m.bio,
        ] {
            text.extend(words_of(part));
        }
        for part in m.skills.iter().chain(&m.services) {
            text.extend(words_of(part));
        }
        for (_, value) in &m.extra {
            text.extend(words_of(value));
        }
        text.iter()
            .any(|t| t == word || *t == format!("{word}s") || format!("{t}s") == word)
    })
}
fn all(filters: Vec<Filter>) -> Filter {
    Box::new(move |m| filters.iter().all(|f| f(m)))
}
fn nobody() -> Filter {
    Box::new(|_| false)
}

/// Single messages that search, and whom they must find.
fn search_cases() -> Vec<(&'static str, Filter)> {
    vec![
        // Professions, synonyms, abbreviations; any case, punctuation, filler.
        (
            "Find doctors in Bangalore",
            all(vec![profession("Doctor"), city("Bengaluru")]),
        ),
        (
            "doctors in Bengaluru",
            all(vec![profession("Doctor"), city("Bengaluru")]),
        ),
        (
            "DOCTORS IN BANGALORE!!!",
            all(vec![profession("Doctor"), city("Bengaluru")]),
        ),
        (
            "hi, can you please find me a cardiologist in Bangalore 🙏",
            all(vec![
                profession("Doctor"),
                specialty("Cardiology"),
                city("Bengaluru"),
            ]),
        ),
        (
            "cardiologists in Bengaluru",
            all(vec![
                profession("Doctor"),
                specialty("Cardiology"),
                city("Bengaluru"),
            ]),
        ),
        (
            "physicians in Chennai",
            all(vec![profession("Doctor"), city("Chennai")]),
        ),
        (
            "any physician in madras?",
            all(vec![profession("Doctor"), city("Chennai")]),
        ),
        (
            "advocates in Mumbai",
            all(vec![profession("Lawyer"), city("Mumbai")]),
        ),
        (
            "attorney in bombay",
            all(vec![profession("Lawyer"), city("Mumbai")]),
        ),
        (
            "CA in Chennai",
            all(vec![profession("Chartered Accountant"), city("Chennai")]),
        ),
        (
            "chartered accountants in madras",
            all(vec![profession("Chartered Accountant"), city("Chennai")]),
        ),
        (
            "CAs in Kochi",
            all(vec![profession("Chartered Accountant"), city("Kochi")]),
        ),
        (
            "developers in Hyderabad",
            all(vec![profession("Software Engineer"), city("Hyderabad")]),
        ),
        (
            "programmers in Bengaluru",
            all(vec![profession("Software Engineer"), city("Bengaluru")]),
        ),
        (
            "dev in pune",
            all(vec![profession("Software Engineer"), city("Pune")]),
        ),
        (
            "coders in Mumbai",
            all(vec![profession("Software Engineer"), city("Mumbai")]),
        ),
        (
            "software engineers in Chennai",
            all(vec![profession("Software Engineer"), city("Chennai")]),
        ),
        (
            "dermatologist in Mumbai",
            all(vec![
                profession("Doctor"),
                specialty("Dermatology"),
                city("Mumbai"),
            ]),
        ),
        (
            "skin specialist in Bengaluru",
            all(vec![
                profession("Doctor"),
                specialty("Dermatology"),
                city("Bengaluru"),
            ]),
        ),
        (
            "pediatrician in Chennai",
            all(vec![
                profession("Doctor"),
                specialty("Pediatrics"),
                city("Chennai"),
            ]),
        ),
        (
            "neurologists",
            all(vec![profession("Doctor"), specialty("Neurology")]),
        ),
        (
            "orthopedic doctors in Bangalore",
            all(vec![
                profession("Doctor"),
                specialty("Orthopedics"),
                city("Bengaluru"),
            ]),
        ),
        (
            "dentists in Chennai",
            all(vec![profession("Dentist"), city("Chennai")]),
        ),
        (
            "an orthodontist",
            all(vec![profession("Dentist"), specialty("Orthodontics")]),
        ),
        (
            "architects in Kochi",
            all(vec![profession("Architect"), city("Kochi")]),
        ),
        (
            "landscape architects",
            all(vec![profession("Architect"), specialty("Landscape")]),
        ),
        (
            "interior designers in Mumbai",
            all(vec![profession("Interior Designer"), city("Mumbai")]),
        ),
        (
            "wedding photographers",
            all(vec![profession("Photographer"), specialty("Wedding")]),
        ),
        (
            "photographer in Kolkata",
            all(vec![profession("Photographer"), city("Kolkata")]),
        ),
        (
            "bankers in Chennai",
            all(vec![profession("Banker"), city("Chennai")]),
        ),
        (
            "investment bankers",
            all(vec![profession("Banker"), specialty("Investment Banking")]),
        ),
        (
            "teachers in Mumbai",
            all(vec![profession("Teacher"), city("Mumbai")]),
        ),
        (
            "maths teachers",
            all(vec![profession("Teacher"), specialty("Mathematics")]),
        ),
        (
            "entrepreneurs in Bengaluru",
            all(vec![profession("Entrepreneur"), city("Bengaluru")]),
        ),
        (
            "civil engineers in Thiruvananthapuram",
            all(vec![branch("Civil"), city("Thiruvananthapuram")]),
        ),
        (
            "structural engineers",
            all(vec![profession("Civil Engineer"), specialty("Structural")]),
        ),
        (
            "marketing managers in Gurugram",
            all(vec![profession("Marketing Manager"), city("Gurugram")]),
        ),
        ("digital marketing", specialty("Digital Marketing")),
        (
            "lawyers in Chennai",
            all(vec![profession("Lawyer"), city("Chennai")]),
        ),
        (
            "family lawyers in Mumbai",
            all(vec![
                profession("Lawyer"),
                specialty("Family Law"),
                city("Mumbai"),
            ]),
        ),
        (
            "IP lawyers",
            all(vec![
                profession("Lawyer"),
                specialty("Intellectual Property"),
            ]),
        ),
        (
            "backend developers",
            all(vec![profession("Software Engineer"), specialty("Backend")]),
        ),
        (
            "mobile developers in Bengaluru",
            all(vec![
                profession("Software Engineer"),
                specialty("Mobile"),
                city("Bengaluru"),
            ]),
        ),
        (
            "devops engineers",
            all(vec![profession("Software Engineer"), specialty("DevOps")]),
        ),
        (
            "frontend devs",
            all(vec![profession("Software Engineer"), specialty("Frontend")]),
        ),
        ("Backend", specialty("Backend")),
        (
            "मुझे बैंगलोर में डॉक्टर चाहिए",
            all(vec![profession("Doctor"), city("Bengaluru")]),
        ),
        // Cities by former names.
        (
            "doctors in Calcutta",
            all(vec![profession("Doctor"), city("Kolkata")]),
        ),
        (
            "software engineers in Gurgaon",
            all(vec![profession("Software Engineer"), city("Gurugram")]),
        ),
        ("members in Mysore", city("Mysuru")),
        (
            "Trivandrum software engineers",
            all(vec![
                profession("Software Engineer"),
                city("Thiruvananthapuram"),
            ]),
        ),
        (
            "lawyers in Cochin",
            all(vec![profession("Lawyer"), city("Kochi")]),
        ),
        (
            "teachers in Poona",
            all(vec![profession("Teacher"), city("Pune")]),
        ),
        (
            "Pondicherry doctors",
            all(vec![profession("Doctor"), city("Puducherry")]),
        ),
        (
            "New Delhi CAs",
            all(vec![profession("Chartered Accountant"), city("Delhi")]),
        ),
        // Areas (an area implies its city).
        (
            "doctors in Koramangala",
            all(vec![profession("Doctor"), area("Koramangala")]),
        ),
        ("in Koramangala", area("Koramangala")),
        (
            "HSR Layout software engineers",
            all(vec![profession("Software Engineer"), area("HSR Layout")]),
        ),
        ("anyone in Anna Nagar", area("Anna Nagar")),
        (
            "lawyers in Bandra",
            all(vec![profession("Lawyer"), area("Bandra")]),
        ),
        ("Whitefield", area("Whitefield")),
        (
            "photographers near Adyar",
            all(vec![profession("Photographer"), area("Adyar")]),
        ),
        (
            "Indiranagar CAs",
            all(vec![
                profession("Chartered Accountant"),
                area("Indiranagar"),
            ]),
        ),
        (
            "hsr doctors",
            all(vec![profession("Doctor"), area("HSR Layout")]),
        ),
        // Light typos: one for 5+ letters, two for 9+.
        (
            "docter in Banglore",
            all(vec![profession("Doctor"), city("Bengaluru")]),
        ),
        (
            "cardiologist in Bengluru",
            all(vec![
                profession("Doctor"),
                specialty("Cardiology"),
                city("Bengaluru"),
            ]),
        ),
        (
            "lawyrs in Mumbai",
            all(vec![profession("Lawyer"), city("Mumbai")]),
        ),
        (
            "chartered acountants in Chennai",
            all(vec![profession("Chartered Accountant"), city("Chennai")]),
        ),
        (
            "softwre engineers in Pune",
            all(vec![profession("Software Engineer"), city("Pune")]),
        ),
        (
            "dentsts in Chennai",
            all(vec![profession("Dentist"), city("Chennai")]),
        ),
        (
            "photgraphers in Kochi",
            all(vec![profession("Photographer"), city("Kochi")]),
        ),
        (
            "archtects in Kochi",
            all(vec![profession("Architect"), city("Kochi")]),
        ),
        (
            "Chenai doctors",
            all(vec![profession("Doctor"), city("Chennai")]),
        ),
        (
            "Hyderbad developers",
            all(vec![profession("Software Engineer"), city("Hyderabad")]),
        ),
        (
            "Koramangla doctors",
            all(vec![profession("Doctor"), area("Koramangala")]),
        ),
        (
            "pediatrecian",
            all(vec![profession("Doctor"), specialty("Pediatrics")]),
        ),
        // Names: first, full, near spellings.
        ("Find Priya", named(&["priya"])),
        ("is there a Rahul Sharma", named(&["rahul", "sharma"])),
        ("Find Priyaa", named(&["priya"])),
        ("Rahul Sarma", named(&["rahul", "sharma"])),
        ("Find Laxmi", named(&["lakshmi"])),
        ("Shweta", named(&["shweta"])),
        ("Find Deepa", named(&["deepa"])),
        ("Kavya Gowda", named(&["kavya", "gowda"])),
        ("anyone called Sharma?", named(&["sharma"])),
        ("Find Shruthi", named(&["shruthi"])),
        ("Find Gurleen Singh", named(&["gurleen", "singh"])),
        ("is there a Saravanan", named(&["saravanan"])),
        // Skills, services, free words.
        ("who knows kubernetes", skill("Kubernetes")),
        (
            "python developers",
            all(vec![profession("Software Engineer"), skill("Python")]),
        ),
        (
            "Kotlin dev in Bengaluru",
            all(vec![
                profession("Software Engineer"),
                skill("Kotlin"),
                city("Bengaluru"),
            ]),
        ),
        ("AutoCAD experts", skill("AutoCAD")),
        ("SEO experts", skill("SEO")),
        ("who offers SEO", service("SEO")),
        ("who offers CA services", service("CA Services")),
        (
            "Find web development companies in Chennai",
            all(vec![service("Web Development"), city("Chennai")]),
        ),
        (
            "GST filing in Chennai",
            all(vec![service("GST Filing"), city("Chennai")]),
        ),
        ("who does videography", skill("Videography")),
        ("videography services", service("Videography")),
        (
            "companies offering logistics in Bangalore",
            all(vec![service("Logistics"), city("Bengaluru")]),
        ),
        ("who sells handloom sarees", service("Handloom Sarees")),
        (
            "solar installation companies",
            service("Solar Installations"),
        ),
        (
            "modular kitchens in Mumbai",
            all(vec![skill("Modular Kitchens"), city("Mumbai")]),
        ),
        (
            "interior design services in Mumbai",
            all(vec![service("Interior Design"), city("Mumbai")]),
        ),
        ("ITR filing", service("Income Tax Returns")),
        ("who speaks Tamil", mentions("tamil")),
        (
            "Tamil speaking doctors in Chennai",
            all(vec![
                profession("Doctor"),
                city("Chennai"),
                mentions("tamil"),
            ]),
        ),
        (
            "Bengali speakers in Kolkata",
            all(vec![city("Kolkata"), mentions("bengali")]),
        ),
        (
            "who works on metro projects",
            all(vec![mentions("metro"), mentions("project")]),
        ),
        // Organizations and designations.
        (
            "people at Stackwise Solutions",
            organization("Stackwise Solutions"),
        ),
        (
            "sahyadri hospital doctors",
            all(vec![
                profession("Doctor"),
                organization("Sahyadri Medical Trust Hospital"),
            ]),
        ),
        ("who works at Kettle Cloud", organization("Kettle Cloud")),
        (
            "Kaveri Valley Hospital cardiologists",
            all(vec![
                profession("Doctor"),
                specialty("Cardiology"),
                organization("Kaveri Valley Hospital"),
            ]),
        ),
        (
            "founders in Mumbai",
            all(vec![title("founder"), city("Mumbai")]),
        ),
        ("CTOs", title("cto")),
        (
            "managing directors",
            all(vec![title("managing"), title("director")]),
        ),
        (
            "professors in Chennai",
            all(vec![title("professor"), city("Chennai")]),
        ),
        (
            "consultants in Bengaluru",
            all(vec![title("consultant"), city("Bengaluru")]),
        ),
        // Alumni: batch, degree, branch.
        (
            "Find 1995 passout mechanical engineers",
            all(vec![year(1995), branch("Mechanical")]),
        ),
        ("batch of '95", year(1995)),
        ("1995 batch", year(1995)),
        ("my batchmates", year(1995)),
        (
            "my batchmates in Mumbai",
            all(vec![year(1995), city("Mumbai")]),
        ),
        ("class of 2001", year(2001)),
        (
            "2015 passouts in Bengaluru",
            all(vec![year(2015), city("Bengaluru")]),
        ),
        ("mechanical engineers", branch("Mechanical")),
        ("electrical engineers", branch("Electrical")),
        (
            "computer science 2016 passouts",
            all(vec![branch("Computer Science"), year(2016)]),
        ),
        ("MBA grads in Pune", all(vec![degree("MBA"), city("Pune")])),
        ("B.E 2015 batch", all(vec![degree("B.E"), year(2015)])),
        (
            "mech 2010 batch",
            all(vec![branch("Mechanical"), year(2010)]),
        ),
        ("B.Tech civil", all(vec![degree("B.Tech"), branch("Civil")])),
        (
            "LLB graduates in Mumbai",
            all(vec![degree("LLB"), city("Mumbai")]),
        ),
        (
            "MBBS doctors",
            all(vec![degree("MBBS"), profession("Doctor")]),
        ),
        // Longer, chattier questions.
        (
            "any good heart doctor around Jayanagar?",
            all(vec![
                profession("Doctor"),
                specialty("Cardiology"),
                area("Jayanagar"),
            ]),
        ),
        (
            "need a lawyer for property verification in Kochi",
            all(vec![
                profession("Lawyer"),
                service("Property Verification"),
                city("Kochi"),
            ]),
        ),
        (
            "looking for someone who does drone photography in Chennai",
            all(vec![skill("Drone Photography"), city("Chennai")]),
        ),
        (
            "anyone from the 1994 batch working in Mumbai?",
            all(vec![year(1994), city("Mumbai")]),
        ),
        (
            "doctors who do home visits",
            all(vec![profession("Doctor"), service("Home Visits")]),
        ),
        (
            "who can help with company registration",
            service("Company Registration"),
        ),
        (
            "I need a CA for GST in Mumbai",
            all(vec![
                profession("Chartered Accountant"),
                city("Mumbai"),
                mentions("gst"),
            ]),
        ),
        ("Gurlen Singh", named(&["gurleen", "singh"])),
        ("Shreyaa Sharma", named(&["shreya", "sharma"])),
        (
            "Can u suggest a good pediatrician in Chennai pls",
            all(vec![
                profession("Doctor"),
                specialty("Pediatrics"),
                city("Chennai"),
            ]),
        ),
        (
            "Any civil engineer in Kochi who does structural consultancy?",
            all(vec![
                profession("Civil Engineer"),
                service("Structural Consultancy"),
                city("Kochi"),
            ]),
        ),
        (
            "Teachers for IELTS coaching",
            all(vec![profession("Teacher"), skill("IELTS Coaching")]),
        ),
        (
            "who does joint replacement in Bangalore",
            all(vec![skill("Joint Replacement"), city("Bengaluru")]),
        ),
        (
            "Looking for a banker in Chennai for home loans",
            all(vec![
                profession("Banker"),
                skill("Home Loans"),
                city("Chennai"),
            ]),
        ),
        (
            "Mumbai interior designers for modular kitchens",
            all(vec![
                profession("Interior Designer"),
                skill("Modular Kitchens"),
                city("Mumbai"),
            ]),
        ),
        (
            "Find me a photographer for a wedding in Kochi",
            all(vec![
                profession("Photographer"),
                specialty("Wedding"),
                city("Kochi"),
            ]),
        ),
        (
            "Any architect for green building consulting",
            all(vec![
                profession("Architect"),
                service("Green Building Consulting"),
            ]),
        ),
        (
            "alumni in Hyderabad from 2005",
            all(vec![city("Hyderabad"), year(2005)]),
        ),
        ("seniors from 1988 batch", year(1988)),
        // Searches that find no one.
        (
            "lawyers in Kolkata",
            all(vec![profession("Lawyer"), city("Kolkata")]),
        ),
        ("plumbers in Chennai", nobody()),
        ("is there a Rahul Dravid", nobody()),
        ("Find Priya Sharma", nobody()),
        ("find astrologers", nobody()),
        (
            "cardiologists in Koramangala",
            all(vec![
                profession("Doctor"),
                specialty("Cardiology"),
                area("Koramangala"),
            ]),
        ),
    ]
}

/// Follow-ups that run a new search from the conversation: (earlier
/// messages, the follow-up, whom it must find).
fn refine_cases() -> Vec<(&'static [&'static str], &'static str, Filter)> {
    vec![
        (
            &["Find doctors in Bangalore"],
            "what about Chennai?",
            all(vec![profession("Doctor"), city("Chennai")]),
        ),
        (
            &["Find doctors in Bangalore"],
            "only cardiologists",
            all(vec![
                profession("Doctor"),
                specialty("Cardiology"),
                city("Bengaluru"),
            ]),
        ),
        (
            &["Find doctors in Bangalore"],
            "in Koramangala",
            all(vec![profession("Doctor"), area("Koramangala")]),
        ),
        (
            &["lawyers in Mumbai"],
            "and in Chennai?",
            all(vec![profession("Lawyer"), city("Chennai")]),
        ),
        (
            &["software engineers in Bengaluru"],
            "only those who know Python",
            all(vec![
                profession("Software Engineer"),
                city("Bengaluru"),
                skill("Python"),
            ]),
        ),
        (
            &["doctors in Chennai"],
            "in all cities",
            profession("Doctor"),
        ),
        (
            &["1995 batch"],
            "only in Mumbai",
            all(vec![year(1995), city("Mumbai")]),
        ),
        (
            &["doctors in Bangalore", "more"],
            "how about lawyers?",
            all(vec![profession("Lawyer"), city("Bengaluru")]),
        ),
        (
            &["Find doctors in Bangalore"],
            "lawyers",
            profession("Lawyer"),
        ),
        (
            &["looking for someone who does drone photography in Chennai"],
            "anyone from the 1994 batch working in Mumbai?",
            all(vec![year(1994), city("Mumbai")]),
        ),
        (&["is there a Rahul Sharma"], "in Chennai", city("Chennai")),
        (
            &["Find doctors in Bangalore", "2"],
            "what about Mumbai",
            all(vec![profession("Doctor"), city("Mumbai")]),
        ),
    ]
}

/// Messages that search nothing, and their intent.
fn intent_cases() -> Vec<(&'static str, Intent)> {
    vec![
        ("hi", Intent::Greeting),
        ("Hello!", Intent::Greeting),
        ("namaste", Intent::Greeting),
        ("good morning", Intent::Greeting),
        ("👋", Intent::Greeting),
        ("Hi Sahyadri!", Intent::Greeting),
        ("नमस्ते", Intent::Greeting),
        ("வணக்கம்", Intent::Greeting),
        ("help", Intent::Help),
        ("menu", Intent::Help),
        ("what can you do?", Intent::Help),
        ("?", Intent::Help),
        ("", Intent::Help),
        ("more", Intent::Help),
        ("thanks", Intent::Thanks),
        ("thank you!", Intent::Thanks),
        ("🙏", Intent::Thanks),
        ("thnaks", Intent::Thanks),
        ("ok", Intent::Thanks),
        ("धन्यवाद", Intent::Thanks),
        ("2", Intent::Details),
        ("the second one", Intent::Details),
        ("contact", Intent::Contact),
        ("asdfghjkl", Intent::Unknown),
        ("what's the weather like", Intent::Unknown),
        ("astronauts", Intent::Unknown),
    ]
}

/// Precision and first-page recall of one search against its expectation.
#[derive(Default)]
struct Score {
    returned: usize,
    correct: usize,
    page_expected: usize,
    page_correct: usize,
}

impl Score {
    fn add(&mut self, returned: &[String], shown: &[String], expected: &[String]) {
        self.returned += returned.len();
        self.correct += returned.iter().filter(|id| expected.contains(id)).count();
        self.page_expected += expected.len().min(PAGE_SIZE);
        self.page_correct += shown.iter().filter(|id| expected.contains(id)).count();
    }

    fn precision(&self) -> f64 {
        if self.returned == 0 {
            1.0
        } else {
            self.correct as f64 / self.returned as f64
        }
    }

    fn recall(&self) -> f64 {
        if self.page_expected == 0 {
            1.0
        } else {
            self.page_correct as f64 / self.page_expected as f64
        }
    }
}

/// Fails if a reply shows a private member's phone or email, or names an
/// inactive member.
fn assert_private(world: &World, context: &str, reply: &str) {
    for member in world.directory.members() {
        if !member.share_contact || !member.active {
            let e164 = member.phone.e164();
            let national = &e164[e164.len() - 10..];
            assert!(
                !reply.contains(&e164) && !reply.contains(national),
                "{context}: the phone of {} leaked:\n{reply}",
                member.name
            );
            assert!(
                member.email.is_empty() || !reply.contains(&member.email),
                "{context}: the email of {} leaked:\n{reply}",
                member.name
            );
        }
        if !member.active {
            assert!(
                !reply.contains(&member.name),
                "{context}: inactive {} was shown:\n{reply}",
                member.name
            );
        }
    }
}

#[test]
fn golden_set_precision_and_recall() {
    let world = World::load();
    let sender = world.member(SENDER);
    let mut score = Score::default();
    let mut misses = Vec::new();
    let mut messages = 0;
    let mut nonempty = 0;

    let mut cases: Vec<(Vec<&str>, &str, Filter)> = search_cases()
        .into_iter()
        .map(|(text, filter)| (Vec::new(), text, filter))
        .collect();
    cases.extend(
        refine_cases()
            .into_iter()
            .map(|(before, text, filter)| (before.to_vec(), text, filter)),
    );
    for (before, text, filter) in &cases {
        let mut conversation = before.clone();
        conversation.push(text);
        messages += conversation.len();
        let (understanding, answer, replies) = world.converse(sender, &conversation);
        for reply in &replies {
            assert!(!reply.trim().is_empty(), "{text}: empty reply");
            assert_private(&world, text, reply);
        }
        let expected = world.expected(filter);
        nonempty += usize::from(!expected.is_empty());
        let returned: Vec<String> = if understanding.runs_search() {
            world
                .assistant
                .search(&understanding.entities)
                .iter()
                .map(|m| m.id.clone())
                .collect()
        } else {
            Vec::new()
        };
        if understanding.runs_search() {
            assert_eq!(answer.result_count, returned.len(), "{text}: count");
            assert_eq!(
                answer.shown_ids,
                returned.iter().take(PAGE_SIZE).cloned().collect::<Vec<_>>(),
                "{text}: the page shown is the head of the results"
            );
        }
        if expected.is_empty() {
            assert!(
                answer.text.starts_with("I couldn't find any") && !answer.text.contains('*'),
                "{text}: a no-results reply lists no one:\n{}",
                answer.text
            );
        }
        let before_correct = (
            score.correct,
            score.returned,
            score.page_correct,
            score.page_expected,
        );
        score.add(&returned, &answer.shown_ids, &expected);
        let wrong = score.returned - before_correct.1 - (score.correct - before_correct.0);
        let missed =
            (score.page_expected - before_correct.3) - (score.page_correct - before_correct.2);
        if wrong > 0 || missed > 0 {
            misses.push(format!(
                "  {text:?}: {wrong} wrong, {missed} missed on page one; understood {:?} {:?}",
                understanding.intent, understanding.entities
            ));
        }
    }

    let mut intent_failures = Vec::new();
    for (text, intent) in intent_cases() {
        messages += 1;
        let (understanding, answer, _) = world.converse(sender, &[text]);
        assert!(!answer.text.trim().is_empty(), "{text:?}: empty reply");
        assert!(
            !understanding.runs_search(),
            "{text:?} must not spend a search"
        );
        if understanding.intent != intent {
            intent_failures.push(format!(
                "  {text:?}: {:?}, expected {intent:?}",
                understanding.intent
            ));
        }
    }

    println!(
        "golden set: {messages} messages ({} searches, {nonempty} with members to find, {} intents)",
        cases.len(),
        intent_cases().len()
    );
    println!(
        "precision {:.4} ({}/{}), first-page recall {:.4} ({}/{})",
        score.precision(),
        score.correct,
        score.returned,
        score.recall(),
        score.page_correct,
        score.page_expected
    );
    if !misses.is_empty() {
        println!("imperfect cases:\n{}", misses.join("\n"));
    }
    assert!(messages >= 120, "the golden set has {messages} messages");
    assert!(nonempty >= 100, "only {nonempty} cases expect someone");
    assert!(
        intent_failures.is_empty(),
        "wrong intents:\n{}",
        intent_failures.join("\n")
    );
    assert!(
        score.precision() >= 0.97,
        "precision {:.4}",
        score.precision()
    );
    assert!(
        score.recall() >= 0.95,
        "first-page recall {:.4}",
        score.recall()
    );
}

#[test]
fn wider_searches_find_what_they_promise() {
    let world = World::load();
    let sender = world.member(SENDER);
    let mut offered = 0;
    for (text, filter) in search_cases() {
        if !world.expected(&filter).is_empty() {
            continue;
        }
        let (_, answer, _) = world.converse(sender, &[text]);
        for line in answer.text.lines().filter(|l| l.starts_with("• “")) {
            let (query, rest) = line
                .trim_start_matches("• “")
                .split_once("” (")
                .expect("“query” (N members)");
            let promised: usize = rest
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("a count");
            // Replied in the same conversation, as a member would.
            let (understanding, reply, _) = world.converse(sender, &[text, query]);
            assert_eq!(understanding.intent, Intent::Search, "{query}");
            assert_eq!(
                reply.result_count, promised,
                "{text} → {query}: {}",
                reply.text
            );
            offered += 1;
        }
    }
    assert!(offered >= 4, "only {offered} wider searches offered");
}

#[test]
fn pages_details_and_contacts_follow_the_list_shown() {
    let world = World::load();
    let sender = world.member(SENDER);
    let doctors = world.expected(&all(vec![profession("Doctor"), city("Bengaluru")]));
    assert!(
        doctors.len() > PAGE_SIZE,
        "two pages of doctors in Bengaluru"
    );
    let ask = |messages: &[&str]| world.converse(sender, messages);

    let (u, more, _) = ask(&["Find doctors in Bangalore", "more"]);
    assert_eq!(u.intent, Intent::More);
    assert!(!u.runs_search(), "another page spends no search");
    assert_eq!(more.page, 1);
    assert_eq!(
        more.shown_ids,
        doctors[PAGE_SIZE..doctors.len().min(2 * PAGE_SIZE)]
    );

    for (follow_up, index) in [
        ("2", 1),
        ("the second one", 1),
        ("tell me more about the first one", 0),
        ("#3", 2),
        ("details of 4", 3),
        ("last", PAGE_SIZE - 1),
    ] {
        let (u, details, _) = ask(&["Find doctors in Bangalore", follow_up]);
        assert_eq!(u.intent, Intent::Details, "{follow_up}");
        let member = world.member(&doctors[index]);
        assert!(
            details.text.starts_with(&format!("*{}*", member.name)),
            "{follow_up}: {}",
            details.text
        );
    }
    // "2" after "more" is the second of the page shown.
    let (_, details, _) = ask(&["Find doctors in Bangalore", "more", "2"]);
    let member = world.member(&doctors[PAGE_SIZE + 1]);
    assert!(details.text.starts_with(&format!("*{}*", member.name)));
    // Out of range: a helpful nudge, nothing shown.
    for number in ["0", "9", "99", "-1", "number 6"] {
        let (_, reply, _) = ask(&["Find doctors in Bangalore", number]);
        assert!(
            reply.text.contains("number from 1 to 5") && reply.shown_ids.is_empty(),
            "{number}: {}",
            reply.text
        );
    }
    // Past the last page.
    let pages = doctors.len().div_ceil(PAGE_SIZE);
    let mut conversation = vec!["Find doctors in Bangalore"];
    conversation.extend(std::iter::repeat_n("more", pages));
    let (_, end, _) = ask(&conversation);
    assert!(end.text.starts_with("That's all"), "{}", end.text);
    let (_, after_end, _) = ask(&[conversation.as_slice(), &["1"]].concat());
    assert!(
        after_end.text.starts_with('*'),
        "numbers still work: {}",
        after_end.text
    );

    // CONTACT: phone and email of those shown who share them.
    let (u, contact, _) = ask(&["Find doctors in Bangalore", "contact"]);
    assert_eq!(u.intent, Intent::Contact);
    for id in &doctors[..PAGE_SIZE] {
        let member = world.member(id);
        if member.share_contact {
            assert!(
                contact.text.contains(&member.phone.e164()),
                "{}",
                contact.text
            );
            assert!(contact.text.contains(&member.email));
        }
    }
    assert_private(&world, "contact", &contact.text);
    // After details, CONTACT is about that member.
    let (_, one, _) = ask(&["Find doctors in Bangalore", "3", "contact"]);
    assert_eq!(one.shown_ids, [doctors[2].clone()]);
}

#[test]
fn private_members_are_never_shown_with_phone_or_email() {
    let world = World::load();
    let sender = world.member(SENDER);
    let private: Vec<&Member> = world
        .directory
        .active_members()
        .filter(|m| !m.share_contact)
        .collect();
    assert!(private.len() >= 10);
    for member in private {
        let name = member.name.as_str();
        for conversation in [
            vec![format!("what's {name}'s phone number")],
            vec![format!("contact {name}")],
            vec![format!("Find {name}"), "contact".to_owned()],
            vec![format!("Find {name}"), "1".to_owned()],
            vec![format!("tell me about {name}")],
            vec![format!("email of {name}")],
        ] {
            let messages: Vec<&str> = conversation.iter().map(String::as_str).collect();
            let (_, answer, replies) = world.converse(sender, &messages);
            assert!(
                answer.text.contains(name),
                "{messages:?} finds {name}: {}",
                answer.text
            );
            assert!(
                answer
                    .text
                    .contains("Prefers to be contacted through Sahyadri Alumni Network"),
                "{messages:?}: {}",
                answer.text
            );
            for reply in replies {
                assert_private(&world, name, &reply);
            }
        }
    }
}

// ---- Through the real webhook ----

/// The app over data/members.csv, with limits out of the way.
async fn spawn_data_app() -> TestApp {
    spawn_app_with(|c| {
        c.directory.members_csv = data("members.csv");
        c.directory.synonyms_csv = data("synonyms.csv");
        c.directory.org_name = "Sahyadri Alumni Network".to_owned();
        c.limits.messages_per_hour = 10_000;
        c.limits.searches_per_hour = 10_000;
    })
    .await
}

async fn say(app: &TestApp, from: &str, body: &str) -> String {
    let (status, twiml) = app.send_text(from, body).await;
    assert_eq!(status, 200, "{body}: {twiml}");
    messages(&twiml).join("\n")
}

/// Like [`say`] with MessageSids of its own: a restarted [`TestApp`]
/// numbers its messages from 1 again, which the server would take for
/// redeliveries of the messages before the restart.
async fn say_again(app: &TestApp, from: &str, body: &str) -> String {
    let sid = format!("SMafterrestart{}", app.new_sid());
    let response = app.post_fields(&whatsapp_form(from, body, &sid)).await;
    assert_eq!(response.status(), 200, "{body}");
    messages(&response.text().await.expect("body")).join("\n")
}

/// The names on a page of results, in order.
fn listed(world: &World, ids: &[String]) -> Vec<String> {
    ids.iter()
        .enumerate()
        .map(|(n, id)| format!("{}. *{}*", n + 1, world.member(id).name))
        .collect()
}

#[tokio::test]
async fn follow_ups_work_through_the_webhook() {
    let world = World::load();
    let phone = world.member(SENDER).phone.e164();
    let app = spawn_data_app().await;
    let doctors = world.expected(&all(vec![profession("Doctor"), city("Bengaluru")]));

    let first = say(&app, &phone, "Find doctors in Bangalore").await;
    assert!(
        first.starts_with(&format!("Found {} doctors in Bengaluru", doctors.len())),
        "{first}"
    );
    for line in listed(&world, &doctors[..PAGE_SIZE]) {
        assert!(first.contains(&line), "{line} in {first}");
    }
    assert!(
        first.contains("MORE for the next 5 · a number for details · CONTACT for phone and email")
    );

    let page_two = &doctors[PAGE_SIZE..doctors.len().min(2 * PAGE_SIZE)];
    let more = say(&app, &phone, "more").await;
    for line in listed(&world, page_two) {
        assert!(more.contains(&line), "{line} in {more}");
    }

    let details = say(&app, &phone, "2").await;
    let second = world.member(&page_two[1]);
    assert!(
        details.starts_with(&format!("*{}*", second.name)),
        "{details}"
    );

    let contact = say(&app, &phone, "contact").await;
    if second.share_contact {
        assert!(contact.contains(&second.phone.e164()), "{contact}");
    } else {
        assert!(contact.contains("Prefers to be contacted"), "{contact}");
    }

    let chennai = world.expected(&all(vec![profession("Doctor"), city("Chennai")]));
    let refined = say(&app, &phone, "what about Chennai?").await;
    assert!(
        refined.starts_with(&format!("Found {} doctors in Chennai", chennai.len())),
        "{refined}"
    );

    let cardiologists = world.expected(&all(vec![
        profession("Doctor"),
        specialty("Cardiology"),
        city("Chennai"),
    ]));
    let narrowed = say(&app, &phone, "only cardiologists").await;
    for line in listed(&world, &cardiologists[..cardiologists.len().min(PAGE_SIZE)]) {
        assert!(narrowed.contains(&line), "{line} in {narrowed}");
    }
    let contacts = say(&app, &phone, "contact").await;
    for id in cardiologists.iter().take(PAGE_SIZE) {
        let member = world.member(id);
        assert!(contacts.contains(&member.name));
        assert_eq!(
            contacts.contains(&member.phone.e164()),
            member.share_contact,
            "{contacts}"
        );
    }
    assert_private(&world, "webhook", &contacts);
    app.stop().await;
}

#[tokio::test]
async fn follow_ups_survive_a_restart() {
    let world = World::load();
    let phone = world.member(SENDER).phone.e164();
    let app = spawn_data_app().await;
    let doctors = world.expected(&all(vec![profession("Doctor"), city("Bengaluru")]));
    say(&app, &phone, "Find doctors in Bangalore").await;
    let dir = app.stop().await;

    let mut config = test_config(dir.path());
    config.directory.members_csv = data("members.csv");
    config.directory.synonyms_csv = data("synonyms.csv");
    config.limits.messages_per_hour = 10_000;
    config.limits.searches_per_hour = 10_000;
    let app = spawn_app_in(dir, config, false).await;
    let more = say_again(&app, &phone, "more").await;
    let page_two = &doctors[PAGE_SIZE..doctors.len().min(2 * PAGE_SIZE)];
    for line in listed(&world, page_two) {
        assert!(more.contains(&line), "after a restart, {line} in {more}");
    }
    let third = say_again(&app, &phone, "3").await;
    assert!(
        third.starts_with(&format!("*{}*", world.member(&page_two[2]).name)),
        "{third}"
    );
    let refined = say_again(&app, &phone, "in Koramangala").await;
    let expected = world.expected(&all(vec![profession("Doctor"), area("Koramangala")]));
    assert!(
        refined.starts_with(&format!("Found {} doctor", expected.len())),
        "{refined}"
    );
    app.stop().await;
}
