//! The member directory contract (members-csv.md), row by row: CSV lines,
//! workbook rows and sheets, header spellings, and `check-directory`.

use roster::directory::{Directory, FileFormat, LoadError, MemberRole, RowUnit};
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

// --- Line numbers: the file's physical lines -------------------------------

/// (line, reason) of every rejection.
fn rejections(directory: &Directory) -> Vec<(u64, String)> {
    directory
        .rejected()
        .iter()
        .map(|r| (r.line, r.reason.clone()))
        .collect()
}

fn assert_rejected_at(directory: &Directory, want: &[(u64, &str)]) {
    let got = rejections(directory);
    assert_eq!(
        got.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
        want.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
        "{got:?}"
    );
    for ((_, reason), (line, needle)) in got.iter().zip(want) {
        assert!(
            reason.contains(needle),
            "line {line}: {reason:?} should mention {needle:?}"
        );
    }
}

#[test]
fn a_crlf_csv_reports_the_physical_lines() {
    // As Excel writes it: CRLF everywhere, a blank line, a bad row last.
    let csv = "member_id,name,phone\r\n\
               M1,Asha,+919845000001\r\n\
               M2,,+919845000002\r\n\
               \r\n\
               M3,Vikram,12\r\n\
               M4,Meera,+919845000004\r\n\
               M5,Karan,\r\n";
    let directory = load(csv);
    assert_rejected_at(
        &directory,
        &[
            (3, "missing required field `name`"),
            (5, "bad phone"),
            (7, "missing required field `phone`"),
        ],
    );
    let lines: Vec<u64> = directory.members().iter().map(|m| m.line).collect();
    assert_eq!(lines, [2, 6]);
    assert!(directory.rejected().iter().all(|r| r.unit == RowUnit::Line));
    assert_eq!(
        directory.rejected()[0].to_string(),
        "line 3: missing required field `name`"
    );
}

#[test]
fn a_quoted_multi_line_bio_counts_its_lines() {
    for eol in ["\n", "\r\n", "\r"] {
        let csv = [
            "name,phone,bio",
            "Asha,+919845000001,\"Cardiologist.",
            "Twenty years at Manipal;",
            "\"\"kind\"\", careful.\"",
            ",+919845000002,\"Has a",
            "two-line bio but no name\"",
            "Ravi,+919845000003,short",
            "Lata,not a phone,\"one",
            "",
            "three\"",
            "Meera,+919845000004,",
        ]
        .join(eol);
        let directory = load(&csv);
        assert_rejected_at(
            &directory,
            &[(5, "missing required field `name`"), (8, "bad phone")],
        );
        let lines: Vec<(&str, u64)> = directory
            .members()
            .iter()
            .map(|m| (m.name.as_str(), m.line))
            .collect();
        assert_eq!(lines, [("Asha", 2), ("Ravi", 7), ("Meera", 11)], "{eol:?}");
        assert!(directory.members()[0].bio.contains("\"kind\", careful."));
    }
}

#[test]
fn a_crlf_file_on_disk_reports_the_same_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("excel.csv");
    std::fs::write(
        &path,
        "\u{feff}Name,Mobile No\r\nAsha,9845000001\r\nRavi,98450\r\n\"Lata\r\nMenon\",9845000003\r\n,9845000004\r\n",
    )
    .unwrap();
    let directory = Directory::load(&path, Region::default()).unwrap();
    assert_rejected_at(
        &directory,
        &[(3, "bad phone"), (6, "missing required field `name`")],
    );
    assert_eq!(directory.members()[1].name, "Lata\r\nMenon");
    assert_eq!(directory.members()[1].line, 4);
}

// --- Spreadsheets ----------------------------------------------------------

/// What a member is, for comparing files of different kinds.
fn summary(directory: &Directory) -> Vec<String> {
    directory
        .members()
        .iter()
        .map(|m| {
            format!(
                "{} {} {} email={} org={} city={} year={:?} active={} share={} skills={:?} extra={:?} at {}",
                m.id,
                m.name,
                m.phone.e164(),
                m.email,
                m.organization,
                m.city,
                m.graduation_year,
                m.active,
                m.share_contact,
                m.skills,
                m.extra,
                m.line
            )
        })
        .collect()
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn xlsx_and_ods_load_the_same_members_as_the_csv() {
    let csv = Directory::load(&fixture("sheet-members.csv"), Region::default()).unwrap();
    assert_eq!(csv.format(), FileFormat::Csv);
    assert_eq!(csv.len(), 4, "{:?}", summary(&csv));
    for (name, format) in [
        ("sheet-members.xlsx", FileFormat::Xlsx),
        ("sheet-members.ods", FileFormat::Ods),
    ] {
        let sheet = Directory::load(&fixture(name), Region::default()).unwrap();
        assert_eq!(sheet.format(), format);
        assert_eq!(sheet.sheet(), Some("Members"), "the first sheet");
        assert_eq!(summary(&sheet), summary(&csv), "{name}");
        assert_eq!(sheet.columns(), csv.columns(), "{name}");
        let reasons: Vec<(u64, RowUnit, String)> = sheet
            .rejected()
            .iter()
            .map(|r| (r.line, r.unit, r.reason.clone()))
            .collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert_eq!((reasons[0].0, reasons[0].1), (4, RowUnit::Row), "{name}");
        assert!(reasons[0].2.contains("missing required field `name`"));
        assert_eq!((reasons[1].0, reasons[1].1), (7, RowUnit::Row), "{name}");
        assert!(reasons[1].2.contains("bad phone"), "{reasons:?}");
        assert!(sheet.rejected()[0].to_string().starts_with("row 4: "));
    }
    assert_rejected_at(
        &csv,
        &[(4, "missing required field `name`"), (7, "bad phone")],
    );
}

#[test]
fn numbers_booleans_and_dates_in_cells_become_the_right_text() {
    for name in ["sheet-members.xlsx", "sheet-members.ods"] {
        let directory = Directory::load(&fixture(name), Region::default()).unwrap();
        let by_id = |id: &str| {
            directory
                .by_id(id)
                .unwrap_or_else(|| panic!("{name}: {id}"))
        };
        let asha = by_id("M1");
        // 919840930854.0 in the cell; 1995.0 the year.
        assert_eq!(asha.phone.e164(), "+919840930854", "{name}");
        assert_eq!(asha.graduation_year, Some(1995), "{name}");
        assert!(asha.active, "a TRUE cell in `Active`");
        assert_eq!(
            asha.extra,
            [
                ("Hobbies".to_owned(), "Chess".to_owned()),
                ("Joined".to_owned(), "2020-01-15".to_owned())
            ],
            "{name}: a date cell is kept as its date"
        );
        assert!(!by_id("M2").share_contact, "{name}: a FALSE cell");
        // 9845000004 as a number: a national number.
        assert_eq!(by_id("M4").phone.e164(), "+919845000004", "{name}");
        assert_eq!(by_id("M4").graduation_year, Some(2010));
        // 9.19845000006E+11 in the xlsx cell.
        assert_eq!(by_id("M6").phone.e164(), "+919845000006", "{name}");
        assert!(!by_id("M6").active, "{name}: `no` in `Active`");
    }
}

#[test]
fn a_named_sheet_is_read_and_a_missing_one_is_named_with_those_there() {
    for name in ["sheet-members.xlsx", "sheet-members.ods"] {
        let path = fixture(name);
        let committee = Directory::load_sheet(&path, Some("Committee"), Region::default()).unwrap();
        assert_eq!(committee.sheet(), Some("Committee"));
        assert_eq!(committee.len(), 1);
        assert_eq!(committee.members()[0].role, MemberRole::Admin);
        assert_eq!(committee.members()[0].line, 2);
        // Sheet names match regardless of case.
        let again = Directory::load_sheet(&path, Some("committee"), Region::default()).unwrap();
        assert_eq!(again.sheet(), Some("Committee"));

        let error =
            Directory::load_sheet(&path, Some("Members 2024"), Region::default()).unwrap_err();
        assert!(matches!(error, LoadError::NoSuchSheet { .. }), "{error:?}");
        let message = error.to_string();
        for needle in [
            "\"Members 2024\"",
            "\"Members\"",
            "\"Committee\"",
            "directory.sheet",
            name,
        ] {
            assert!(
                message.contains(needle),
                "{message:?} should mention {needle:?}"
            );
        }
    }
}

#[test]
fn a_sheet_named_for_a_csv_is_refused() {
    let error = Directory::load_sheet(
        &fixture("sheet-members.csv"),
        Some("Members"),
        Region::default(),
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("is a CSV") && message.contains("directory.sheet"),
        "{message}"
    );
}

#[test]
fn a_workbook_is_recognised_by_its_content_whatever_its_name() {
    let dir = tempfile::tempdir().unwrap();
    for (from, to, format) in [
        ("sheet-members.xlsx", "export", FileFormat::Xlsx),
        ("sheet-members.ods", "members.csv", FileFormat::Ods),
        ("sheet-members.xlsx", "MEMBERS.XLSX", FileFormat::Xlsx),
    ] {
        let path = dir.path().join(to);
        std::fs::copy(fixture(from), &path).unwrap();
        let directory = Directory::load(&path, Region::default()).unwrap();
        assert_eq!(directory.format(), format, "{to}");
        assert_eq!(directory.len(), 4, "{to}");
    }
}

#[test]
fn a_corrupt_workbook_fails_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let whole = std::fs::read(fixture("sheet-members.xlsx")).unwrap();
    let cases: [(&str, Vec<u8>, &str); 5] = [
        (
            "truncated.xlsx",
            whole[..whole.len() / 2].to_vec(),
            "not a readable .xlsx workbook",
        ),
        (
            "garbage.xlsx",
            b"PK\x03\x04 this is no zip archive".to_vec(),
            "not a readable .xlsx workbook",
        ),
        (
            "renamed.xlsx",
            b"name,phone\nAsha,9845000001\n".to_vec(),
            "is not a workbook",
        ),
        (
            "broken.ods",
            b"PK\x03\x04\x14\x00\x00\x00".to_vec(),
            "not a readable .ods workbook",
        ),
        (
            "old.xls",
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest".to_vec(),
            "old binary Excel file",
        ),
    ];
    for (name, bytes, needle) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let error = Directory::load(&path, Region::default()).unwrap_err();
        assert!(
            matches!(error, LoadError::Unreadable { .. }),
            "{name}: {error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains(name) && message.contains(needle),
            "{name}: {message}"
        );
    }
}

// --- Headers as operators write them ---------------------------------------

#[test]
fn operators_header_spellings_are_recognised_and_reported() {
    let csv = "Member Name,Mob. No.,Email ID,Company Name,City/Town,Suburb,Area of Practice,\
               Qualification,Batch Year,About Me,Membership Status,Consent,Hobbies,\n\
               Asha Rao,9845000001,a@example.org,Rao Clinic,Chennai,Adyar,Cardiology,\
               MBBS,1995,Kind.,inactive,no,Chess,ignored\n";
    let directory = load(csv);
    assert_eq!(directory.rejected(), &[]);
    let columns: Vec<String> = directory
        .columns()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        columns,
        [
            "column \"Member Name\" → name",
            "column \"Mob. No.\" → phone",
            "column \"Email ID\" → email",
            "column \"Company Name\" → organization",
            "column \"City/Town\" → city",
            "column \"Suburb\" → area",
            "column \"Area of Practice\" → specialty",
            "column \"Qualification\" → degree",
            "column \"Batch Year\" → graduation_year",
            "column \"About Me\" → bio",
            "column \"Membership Status\" → status",
            "column \"Consent\" → share_contact",
            "column \"Hobbies\" → extra attribute",
            "column 14 (no header) → ignored",
        ]
    );
    let m = &directory.members()[0];
    assert_eq!(
        (m.name.as_str(), m.phone.e164().as_str(), m.email.as_str()),
        ("Asha Rao", "+919845000001", "a@example.org")
    );
    assert_eq!(
        (m.organization.as_str(), m.city.as_str(), m.area.as_str()),
        ("Rao Clinic", "Chennai", "Adyar")
    );
    assert_eq!(
        (m.specialty.as_str(), m.degree.as_str(), m.bio.as_str()),
        ("Cardiology", "MBBS", "Kind.")
    );
    assert_eq!(m.graduation_year, Some(1995));
    assert!(!m.active && !m.share_contact);
    assert_eq!(m.extra, [("Hobbies".to_owned(), "Chess".to_owned())]);
}

#[test]
fn every_new_alias_maps_to_its_field() {
    let cases: [(&str, &[&str]); 12] = [
        ("name", &["Full Name", "member name"]),
        (
            "phone",
            &[
                "Mobile No",
                "Mob No",
                "Mobile Number",
                "Contact Number",
                "WhatsApp Number",
                "Cell",
                "Phone No.",
            ],
        ),
        ("email", &["E-mail", "Email ID", "mail"]),
        (
            "organization",
            &["Firm", "Company Name", "Employer", "Organisation Name"],
        ),
        ("city", &["Location", "City/Town"]),
        ("area", &["Locality", "Neighborhood", "Suburb"]),
        ("specialty", &["Area of Practice", "Specialisation"]),
        ("degree", &["Qualification"]),
        (
            "graduation_year",
            &["Year of Passing", "Passing Year", "Batch Year"],
        ),
        ("bio", &["About Me", "Profile"]),
        ("status", &["Active", "Membership Status"]),
        (
            "share_contact",
            &["Share Contact", "Show Contact", "Consent"],
        ),
    ];
    for (field, headers) in cases {
        for header in headers {
            // The required columns, plus the one under test.
            let csv = format!("name,phone,{header}\nAsha,9845000001,\n");
            let directory = load(&csv);
            let column = &directory.columns()[2];
            assert_eq!(column.field, Some(field), "{header:?}");
            assert!(!column.extra);
        }
    }
}

// --- Settings: `directory.file`, its old name, `directory.sheet` -----------

mod settings {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    use roster::config::Config;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roster.toml");
        std::fs::write(&path, toml).unwrap();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load_with_env(&path, true, &env).map_err(|e| e.to_string())
    }

    #[test]
    fn file_is_the_new_name_of_members_csv() {
        let config = load(
            "[directory]\nfile = \"members.xlsx\"\nsheet = \"Members\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(config.directory.members_csv, Path::new("members.xlsx"));
        assert_eq!(
            config.directory.file,
            PathBuf::new(),
            "folded into members_csv"
        );
        assert_eq!(config.directory.sheet(), Some("Members"));

        let old = load("[directory]\nmembers_csv = \"old.csv\"\n", &[]).unwrap();
        assert_eq!(old.directory.members_csv, Path::new("old.csv"));
        assert_eq!(old.directory.sheet(), None);

        let same = load(
            "[directory]\nmembers_csv = \"same.csv\"\nfile = \"same.csv\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(same.directory.members_csv, Path::new("same.csv"));
    }

    #[test]
    fn a_later_layer_wins_under_either_name() {
        let config = load(
            "[directory]\nmembers_csv = \"data/members.csv\"\n",
            &[("ROSTER_DIRECTORY__FILE", "/srv/members.ods")],
        )
        .unwrap();
        assert_eq!(config.directory.members_csv, Path::new("/srv/members.ods"));
        let config = load(
            "[directory]\nfile = \"members.xlsx\"\n",
            &[("ROSTER_DIRECTORY__MEMBERS_CSV", "other.csv")],
        )
        .unwrap();
        assert_eq!(config.directory.members_csv, Path::new("other.csv"));
    }

    #[test]
    fn both_names_set_differently_in_one_place_are_refused_naming_both() {
        let in_file = load(
            "[directory]\nmembers_csv = \"data/members.csv\"\nfile = \"members.xlsx\"\n",
            &[],
        )
        .unwrap_err();
        let in_env = load(
            "",
            &[
                ("ROSTER_DIRECTORY__MEMBERS_CSV", "a.csv"),
                ("ROSTER_DIRECTORY__FILE", "b.xlsx"),
            ],
        )
        .unwrap_err();
        for (message, values) in [
            (in_file, ["data/members.csv", "members.xlsx"]),
            (in_env, ["a.csv", "b.xlsx"]),
        ] {
            for needle in [
                "directory.file",
                "directory.members_csv",
                "only one",
                values[0],
                values[1],
            ] {
                assert!(
                    message.contains(needle),
                    "{message:?} should mention {needle:?}"
                );
            }
        }
    }
}

// --- `roster check-directory`, the real binary -----------------------------

mod check_directory {
    use std::process::Command;

    use super::fixture;
    use crate::common::process::{RosterProcess, roster_command};

    fn run(mut command: Command) -> (i32, String, String) {
        let out = command.output().expect("roster runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn check(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
        let mut command = roster_command(dir);
        command.arg("check-directory").args(args);
        run(command)
    }

    #[test]
    fn it_says_what_each_column_was_taken_as_and_names_rows() {
        let dir = tempfile::tempdir().unwrap();
        let xlsx = fixture("sheet-members.xlsx");
        let (code, stdout, _) = check(dir.path(), &[xlsx.to_str().unwrap()]);
        assert_eq!(code, 1, "rows were rejected: {stdout}");
        let shown = xlsx.display().to_string();
        for needle in [
            format!("{shown}: sheet \"Members\""),
            "column \"Mob. No.\" → phone".to_owned(),
            "column \"Full Name\" → name".to_owned(),
            "column \"E-mail ID\" → email".to_owned(),
            "column \"Year of Passing\" → graduation_year".to_owned(),
            "column \"Hobbies\" → extra attribute".to_owned(),
            format!("{shown}: row 4: missing required field `name`"),
            format!("{shown}: row 7: bad phone"),
            format!(
                "{shown}: 4 members loaded (1 inactive, 1 not sharing contact details), 2 rows rejected"
            ),
        ] {
            assert!(
                stdout.contains(&needle),
                "{stdout}\nshould contain {needle:?}"
            );
        }

        // A CSV keeps `file:line:` and says which header was not understood.
        let csv = dir.path().join("export.csv");
        std::fs::write(
            &csv,
            "Name,Mob. No.,Mobile 2\r\nAsha,9845000001,\r\n,9845000002,\r\n",
        )
        .unwrap();
        let (code, stdout, _) = check(dir.path(), &[csv.to_str().unwrap()]);
        assert_eq!(code, 1);
        assert!(stdout.contains("column \"Mob. No.\" → phone"), "{stdout}");
        assert!(
            stdout.contains("column \"Mobile 2\" → extra attribute"),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!(
                "{}:3: missing required field `name`",
                csv.display()
            )),
            "{stdout}"
        );
        assert!(!stdout.contains("sheet"), "a CSV has no sheet: {stdout}");
    }

    #[test]
    fn json_output_has_the_columns_and_rows() {
        let dir = tempfile::tempdir().unwrap();
        let ods = fixture("sheet-members.ods");
        let (code, stdout, _) = check(dir.path(), &[ods.to_str().unwrap(), "--json"]);
        assert_eq!(code, 1);
        let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
        assert_eq!(report["format"], "ods");
        assert_eq!(report["sheet"], "Members");
        assert_eq!(report["members"], 4);
        assert_eq!(report["inactive"], 1);
        assert_eq!(report["notSharingContact"], 1);
        assert_eq!(
            report["columns"][2],
            serde_json::json!({"position": 3, "header": "Mob. No.", "field": "phone", "extra": false})
        );
        assert_eq!(
            report["columns"][9],
            serde_json::json!({"position": 10, "header": "Hobbies", "field": null, "extra": true})
        );
        assert_eq!(report["rejectedRows"][0]["line"], 4);
        assert_eq!(report["rejectedRows"][0]["unit"], "row");
        assert_eq!(report["rejectedRows"][1]["line"], 7);
    }

    #[test]
    fn without_a_file_it_checks_the_configured_file_and_sheet() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = roster_command(dir.path());
        command
            .env_remove("ROSTER_DIRECTORY__MEMBERS_CSV")
            .env("ROSTER_DIRECTORY__FILE", fixture("sheet-members.xlsx"))
            .env("ROSTER_DIRECTORY__SHEET", "Committee")
            .arg("check-directory");
        let (code, stdout, stderr) = run(command);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(stdout.contains("sheet \"Committee\""), "{stdout}");
        assert!(stdout.contains("1 members loaded"), "{stdout}");

        // `--sheet` chooses another; one that is not there is named.
        let xlsx = fixture("sheet-members.xlsx");
        let (code, _, stderr) = check(dir.path(), &[xlsx.to_str().unwrap(), "--sheet", "Nope"]);
        assert_eq!(code, 2);
        assert!(
            stderr.contains("no sheet named \"Nope\"")
                && stderr.contains("\"Members\", \"Committee\""),
            "{stderr}"
        );
    }

    #[test]
    fn both_names_of_the_file_set_differently_stop_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = roster_command(dir.path());
        command
            .env("ROSTER_DIRECTORY__FILE", fixture("sheet-members.xlsx"))
            .arg("check-directory");
        let (code, _, stderr) = run(command);
        assert_eq!(code, 2);
        assert!(
            stderr.contains("directory.file") && stderr.contains("directory.members_csv"),
            "{stderr}"
        );
    }

    #[tokio::test]
    async fn serve_reads_the_configured_sheet() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = roster_command(dir.path());
        command
            .env_remove("ROSTER_DIRECTORY__MEMBERS_CSV")
            .env("ROSTER_DIRECTORY__FILE", fixture("sheet-members.ods"))
            .env("ROSTER_DIRECTORY__SHEET", "Committee")
            .env("ROSTER_ADMIN__TOKEN", crate::common::ADMIN_TOKEN)
            .args(["serve", "--dev"]);
        let server = RosterProcess::start(command);
        let stats = server.admin_json("/admin/stats").await;
        assert_eq!(stats["members"], 1, "{stats}");
        let (status, _) = server.terminate();
        assert_eq!(status.code(), Some(0));
    }
}
