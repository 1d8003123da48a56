//! Generated directories for benchmarks and load tests: any size, the same
//! shape as real data (professions with specialties, cities with areas,
//! skills, services, graduation years), deterministic for a seed.

use std::fmt::Write as _;

const FIRST: &[&str] = &[
    "Aarav",
    "Priya",
    "Rahul",
    "Ananya",
    "Vikram",
    "Meera",
    "Arjun",
    "Kavya",
    "Rohan",
    "Divya",
    "Karthik",
    "Sneha",
    "Aditya",
    "Lakshmi",
    "Nikhil",
    "Pooja",
    "Siddharth",
    "Asha",
    "Varun",
    "Neha",
];
const LAST: &[&str] = &[
    "Sharma", "Iyer", "Nair", "Rao", "Reddy", "Menon", "Gupta", "Patel", "Kulkarni", "Das",
    "Shetty", "Pillai", "Joshi", "Banerjee", "Verma", "Hegde", "Krishnan", "Mehta", "Bose",
    "Naidu",
];
const WORK: &[(&str, &[&str], &[&str])] = &[
    (
        "Doctor",
        &["Cardiology", "Pediatrics", "Orthopedics", "Dermatology"],
        &["Echocardiography", "Surgery"],
    ),
    (
        "Lawyer",
        &["Corporate Law", "Criminal Law", "Family Law"],
        &["Litigation", "Contracts"],
    ),
    (
        "Chartered Accountant",
        &["Taxation", "Audit"],
        &["GST", "Ind AS"],
    ),
    (
        "Software Engineer",
        &["Backend", "Frontend", "Data Engineering"],
        &["Rust", "React", "Kubernetes"],
    ),
    (
        "Architect",
        &["Residential", "Landscape"],
        &["AutoCAD", "Revit"],
    ),
    (
        "Mechanical Engineer",
        &["Automotive", "HVAC"],
        &["CAD", "Thermodynamics"],
    ),
    (
        "Teacher",
        &["Mathematics", "Physics"],
        &["Curriculum Design"],
    ),
    ("Entrepreneur", &[""], &["Fundraising", "Sales"]),
];
const PLACES: &[(&str, &[&str])] = &[
    (
        "Bengaluru",
        &["Koramangala", "Indiranagar", "Whitefield", "Jayanagar"],
    ),
    ("Chennai", &["Adyar", "T. Nagar", "Velachery"]),
    ("Mumbai", &["Andheri", "Bandra", "Powai"]),
    ("Delhi", &["Saket", "Dwarka"]),
    ("Hyderabad", &["Gachibowli", "Banjara Hills"]),
    ("Pune", &["Kothrud", "Baner"]),
    ("Kolkata", &["Salt Lake", "Ballygunge"]),
    ("Kochi", &["Kakkanad", "Edappally"]),
];

/// A small deterministic generator (SplitMix64), so no RNG crate is needed.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

/// The phone of generated member `index`: `+91 9` followed by nine digits.
pub fn synthetic_phone(index: usize) -> String {
    format!("+919{:09}", 100_000_000 + index)
}

/// A directory CSV of `members` rows, the same for the same `seed`.
pub fn synthetic_csv(members: usize, seed: u64) -> String {
    let mut mix = Mix(seed);
    let mut csv = String::with_capacity(members * 220);
    csv.push_str("member_id,name,phone,email,profession,specialty,organization,city,area,skills,services,graduation_year,degree,branch,share_contact\n");
    for i in 0..members {
        let (first, last) = (mix.pick(FIRST), mix.pick(LAST));
        let (profession, specialties, skills) = mix.pick(WORK);
        let specialty = mix.pick(specialties);
        let (city, areas) = mix.pick(PLACES);
        let area = mix.pick(areas);
        let skill = mix.pick(skills);
        let year = 1980 + mix.next() % 41;
        let share = !mix.next().is_multiple_of(10);
        let _ = writeln!(
            csv,
            "G{i:07},{first} {last},{phone},{f}.{l}{i}@example.org,{profession},{specialty},{last} & Co,{city},{area},{skill},,{year},B.E,Mechanical,{share}",
            phone = synthetic_phone(i),
            f = first.to_lowercase(),
            l = last.to_lowercase(),
        );
    }
    csv
}
