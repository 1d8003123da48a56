//! The member CSV contract (members-csv.md), row by row.

use roster::directory::{Directory, LoadError, MemberRole};
use roster::phone::Region;

fn load(csv: &str) -> Directory {
    Directory::from_csv(csv, Region::default()).expect("loads")
}

#[test]
fn the_sample_directory_loads_cleanly() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/members.csv");
    let directory = Directory::load(&path, Region::default()).expect("sample loads");
    assert!(
        directory.rejected().is_empty(),
        "{:?}",
        directory.rejected()
    );
    assert!(
        directory.len() >= 180,
        "about 200 members: {}",
        directory.len()
    );
    assert!(directory.members().iter().any(|m| !m.active));
    assert!(directory.members().iter().any(|m| !m.share_contact));
}

#[test]
fn bom_mixed_case_headers_aliases_and_quoted_commas() {
    let csv = "\u{feff}Member ID,NAME,Phone Number,E-mail,Working As,Speciality,City / Town of Living,Locality,Expertise,Products/Services,Year of Graduation,Department,About,Share_Contact:\n\
               M1,\"Rao, Asha\",+91 98450 00001,a@example.org,Doctor,Cardiology,Bengaluru,Koramangala,\"Echo; Angio, Cath\",,1995,Medicine,\"Kind, careful.\",FALSE\n";
    let directory = load(csv);
    assert_eq!(directory.rejected(), &[]);
    let member = &directory.members()[0];
    assert_eq!(member.id, "M1");
    assert_eq!(member.name, "Rao, Asha");
    assert_eq!(member.phone.e164(), "+919845000001");
    assert_eq!(member.profession, "Doctor");
    assert_eq!(member.specialty, "Cardiology");
    assert_eq!(member.city, "Bengaluru");
    assert_eq!(member.area, "Koramangala");
    assert_eq!(member.skills, ["Echo", "Angio", "Cath"]);
    assert_eq!(member.graduation_year, Some(1995));
    assert_eq!(member.branch, "Medicine");
    assert_eq!(member.bio, "Kind, careful.");
    assert!(!member.share_contact);
    assert!(member.active);
    assert_eq!(member.role, MemberRole::Member);
    // `E-mail` normalises to `email`.
    assert_eq!(member.email, "a@example.org");
}

#[test]
fn extra_columns_are_kept() {
    let directory =
        load("name,phone,Address,Annual Turnover\nAsha,+919845000001,\"12 MG Road, Bengaluru\",\n");
    assert_eq!(
        directory.members()[0].extra,
        [("Address".to_owned(), "12 MG Road, Bengaluru".to_owned())]
    );
}

#[test]
fn defaults_apply_when_optional_columns_are_absent() {
    let directory = load("name,phone\nAsha,9845000001\n");
    let member = &directory.members()[0];
    assert_eq!(
        member.id, "+919845000001",
        "member_id defaults to the phone"
    );
    assert!(member.active);
    assert!(member.share_contact);
    assert_eq!(member.role, MemberRole::Member);
}

#[test]
fn bad_rows_are_rejected_with_line_and_reason_and_the_rest_loads() {
    let csv = "member_id,name,phone,status,share_contact,role,graduation_year\n\
               M1,Asha,+919845000001,active,true,member,1995\n\
               M2,,+919845000002,,,,\n\
               M3,Vikram,,,,,\n\
               M4,Meera,not a phone,,,,\n\
               M5,Karan,+91 12,,,,\n\
               M1,Ravi,+919845000006,,,,\n\
               M7,Lata,+91 98450 00001,,,,\n\
               M8,Sanjay,+919845000008,retired,,,\n\
               M9,Priya,+919845000009,,maybe,,\n\
               M10,Rahul,+919845000010,,,owner,\n\
               M11,Anil,+919845000011,,,,nineteen\n\
               \"M12\",\"Multi\nline\",+919845000012,inactive,no,admin,2001\n";
    let directory = load(csv);
    let rejected: Vec<(u64, &str)> = directory
        .rejected()
        .iter()
        .map(|r| (r.line, r.reason.as_str()))
        .collect();
    let expect = [
        (3, "missing required field `name`"),
        (4, "missing required field `phone`"),
        (5, "bad phone"),
        (6, "bad phone"),
        (7, "duplicate member_id `M1`"),
        (8, "duplicate phone"),
        (9, "status `retired`"),
        (10, "share_contact `maybe`"),
        (11, "role `owner`"),
        (12, "graduation_year `nineteen`"),
    ];
    assert_eq!(rejected.len(), expect.len(), "{rejected:?}");
    for ((line, reason), (want_line, want)) in rejected.iter().zip(expect) {
        assert_eq!(*line, want_line, "{reason}");
        assert!(
            reason.contains(want),
            "line {line}: {reason:?} should mention {want:?}"
        );
    }
    let ids: Vec<&str> = directory.members().iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["M1", "M12"]);
    let last = &directory.members()[1];
    assert_eq!(last.name, "Multi\nline");
    assert!(!last.active && !last.share_contact);
    assert_eq!(last.role, MemberRole::Admin);
    assert_eq!(last.line, 13);
}

#[test]
fn a_missing_required_column_fails_the_file_and_names_it() {
    let error =
        Directory::from_csv("name,email\nAsha,a@example.org\n", Region::default()).unwrap_err();
    assert!(matches!(
        error,
        LoadError::MissingColumn {
            column: "phone",
            ..
        }
    ));
    let message = error.to_string();
    assert!(
        message.contains("`phone`") && message.contains("<memory>"),
        "{message}"
    );
}

#[test]
fn an_unreadable_file_names_the_file() {
    let error = Directory::load(
        std::path::Path::new("/nonexistent/members.csv"),
        Region::default(),
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("/nonexistent/members.csv"), "{message}");
}

#[test]
fn lookup_by_phone_in_any_writing() {
    let directory = load("name,phone,status\nAsha,0091-98450-00001,\nRavi,9845000002,inactive\n");
    let asha =
        roster::phone::PhoneNumber::parse("whatsapp:+919845000001", Region::default()).unwrap();
    assert_eq!(
        directory.active_member(&asha).map(|m| m.name.as_str()),
        Some("Asha")
    );
    let ravi = roster::phone::PhoneNumber::parse("+91 98450 00002", Region::default()).unwrap();
    assert!(directory.member(&ravi).is_some());
    assert!(
        directory.active_member(&ravi).is_none(),
        "inactive members cannot use the assistant"
    );
}
