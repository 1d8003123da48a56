//! Reading the operator's directory file per the contract
//! (`members-csv.md`): a CSV, or the first (or a named) sheet of an `.xlsx`
//! or `.ods` workbook, told apart by content and extension.
//!
//! Headers match case-insensitively, ignoring spaces, `_`, `-`, `/`, `.` and
//! a trailing `:`, and through the contract's aliases and the spellings
//! operators use (`Mob. No.`, `E-mail ID`, `Year of Passing`, …). Every row
//! is numbered where the operator sees it: a CSV row by the physical line it
//! starts on (CRLF, lone CR and line breaks inside quoted fields counted as
//! an editor counts them), a sheet row by the spreadsheet's row number (row 1
//! = the header). A bad row is rejected with that number and its reason and
//! the rest still loads; a file that cannot be read, or lacks a required
//! column, fails as a whole.

use std::collections::HashSet;
use std::io::Cursor;
use std::path::Path;

use calamine::{Data, Reader};
use serde::Serialize;

use super::{ColumnReport, Member, MemberRole, Rejection, RowUnit};
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
    /// `directory.sheet` names a sheet the workbook does not have.
    #[error(
        "member directory {path} has no sheet named {sheet:?} (directory.sheet); its sheets: {}",
        quoted(available)
    )]
    NoSuchSheet {
        path: String,
        sheet: String,
        available: Vec<String>,
    },
    /// `directory.sheet` is set but the file is a CSV, which has no sheets.
    #[error(
        "member directory {path} is a CSV, which has no sheets, but directory.sheet is {sheet:?}; \
         clear directory.sheet or point directory.file at the workbook"
    )]
    SheetOfCsv { path: String, sheet: String },
}

fn quoted(names: &[String]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The kinds of directory file Roster reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    #[default]
    Csv,
    Xlsx,
    Ods,
}

impl FileFormat {
    pub fn as_str(&self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Xlsx => "xlsx",
            FileFormat::Ods => "ods",
        }
    }
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
            "name" | "fullname" | "membername" => Name,
            "phone" | "phonenumber" | "phoneno" | "mobile" | "mobileno" | "mobno"
            | "mobilenumber" | "contactnumber" | "contactno" | "whatsapp" | "whatsappnumber"
            | "whatsappno" | "cell" => Phone,
            "email" | "emailid" | "emailaddress" | "mail" => Email,
            "profession" | "workingas" | "occupation" => Profession,
            "specialty" | "speciality" | "specialization" | "specialisation" | "areaofpractice" => {
                Specialty
            }
            "designation" | "title" | "jobtitle" => Designation,
            "organization" | "organizationname" | "organisation" | "organisationname"
            | "company" | "companyname" | "firm" | "employer" => Organization,
            "city" | "cityortown" | "citytown" | "citytownofliving" | "town" | "location" => City,
            "area" | "locality" | "neighbourhood" | "neighborhood" | "suburb" => Area,
            "skills" | "workingknowledge" | "expertise" => Skills,
            "services" | "productsservices" => Services,
            "graduationyear" | "yearofgraduation" | "batch" | "passoutyear" | "yearofpassing"
            | "passingyear" | "batchyear" => GraduationYear,
            "degree" | "qualification" => Degree,
            "branch" | "department" | "discipline" => Branch,
            "bio" | "about" | "aboutme" | "profile" => Bio,
            "role" => Role,
            "status" | "active" | "membershipstatus" => Status,
            "sharecontact" | "showcontact" | "consent" => ShareContact,
            _ => return None,
        })
    }

    /// The contract's name for the column, as `check-directory` shows it.
    fn field_name(self) -> &'static str {
        use Column::*;
        match self {
            MemberId => "member_id",
            Name => "name",
            Phone => "phone",
            Email => "email",
            Profession => "profession",
            Specialty => "specialty",
            Designation => "designation",
            Organization => "organization",
            City => "city",
            Area => "area",
            Skills => "skills",
            Services => "services",
            GraduationYear => "graduation_year",
            Degree => "degree",
            Branch => "branch",
            Bio => "bio",
            Role => "role",
            Status => "status",
            ShareContact => "share_contact",
        }
    }
}

/// `Member ID:` → `memberid`, `Mob. No.` → `mobno`.
fn normalise_header(header: &str) -> String {
    header
        .trim()
        .trim_start_matches('\u{feff}')
        .trim_end_matches(':')
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '/' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The loaded rows, the rejected ones, and what each column was taken as.
pub(super) struct Loaded {
    pub members: Vec<Member>,
    pub rejected: Vec<Rejection>,
    pub columns: Vec<ColumnReport>,
    pub format: FileFormat,
    pub sheet: Option<String>,
}

/// A zip archive's first bytes: every `.xlsx` and `.ods` starts so.
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
/// An OLE compound file's first bytes: the old binary `.xls`.
const OLE_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

/// Reads the file at `path` as whatever kind of directory file it is.
pub(super) fn load_file(
    path: &Path,
    sheet: Option<&str>,
    region: Region,
) -> Result<Loaded, LoadError> {
    let shown = path.display().to_string();
    let unreadable = |reason: String| LoadError::Unreadable {
        path: shown.clone(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let format = if bytes.starts_with(ZIP_MAGIC) {
        match extension.as_str() {
            "xlsx" | "xlsm" => FileFormat::Xlsx,
            "ods" => FileFormat::Ods,
            // A workbook under another name: its parts tell which kind.
            _ if contains(&bytes, b"opendocument.spreadsheet") => FileFormat::Ods,
            _ if contains(&bytes, b"xl/workbook") => FileFormat::Xlsx,
            _ => {
                return Err(unreadable(
                    "it is a zip archive but neither an .xlsx nor an .ods workbook".to_owned(),
                ));
            }
        }
    } else if bytes.starts_with(OLE_MAGIC) || extension == "xls" {
        return Err(unreadable(
            "it is an old binary Excel file (.xls), which Roster does not read; \
             save it as .xlsx (Excel Workbook) or as CSV"
                .to_owned(),
        ));
    } else if matches!(extension.as_str(), "xlsx" | "xlsm" | "ods") {
        return Err(unreadable(format!(
            "it is named .{extension} but is not a workbook (a workbook is a zip archive); \
             if it is a CSV, name it .csv"
        )));
    } else {
        FileFormat::Csv
    };
    match (format, sheet) {
        (FileFormat::Csv, None) => parse_csv(&bytes, &shown, region),
        (FileFormat::Csv, Some(sheet)) => Err(LoadError::SheetOfCsv {
            path: shown,
            sheet: sheet.to_owned(),
        }),
        (FileFormat::Xlsx, _) => {
            let workbook: Result<calamine::Xlsx<_>, _> =
                calamine::open_workbook_from_rs(Cursor::new(bytes.as_slice()));
            parse_workbook(workbook, format, &shown, sheet, region)
        }
        (FileFormat::Ods, _) => {
            let workbook: Result<calamine::Ods<_>, _> =
                calamine::open_workbook_from_rs(Cursor::new(bytes.as_slice()));
            parse_workbook(workbook, format, &shown, sheet, region)
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Turns rows of cells into members, numbering them as the file does.
struct RowReader {
    columns: Vec<(Option<Column>, String)>,
    region: Region,
    unit: RowUnit,
    members: Vec<Member>,
    rejected: Vec<Rejection>,
    ids: HashSet<String>,
    phones: HashSet<PhoneNumber>,
}

impl RowReader {
    /// Checks the header row; `first_column` is the 1-based position of its
    /// first cell.
    fn new(
        header: &[&str],
        first_column: usize,
        shown: &str,
        region: Region,
        unit: RowUnit,
    ) -> Result<(RowReader, Vec<ColumnReport>), LoadError> {
        let columns: Vec<(Option<Column>, String)> = header
            .iter()
            .map(|h| {
                (
                    Column::from_header(&normalise_header(h)),
                    h.trim().trim_start_matches('\u{feff}').to_owned(),
                )
            })
            .collect();
        for (required, name) in [(Column::Name, "name"), (Column::Phone, "phone")] {
            if !columns.iter().any(|(c, _)| *c == Some(required)) {
                return Err(LoadError::MissingColumn {
                    path: shown.to_owned(),
                    column: name,
                    header: header.join(","),
                });
            }
        }
        let reports = columns
            .iter()
            .enumerate()
            .map(|(i, (column, header))| ColumnReport {
                position: first_column + i,
                header: header.clone(),
                field: column.map(Column::field_name),
                extra: column.is_none() && !header.is_empty(),
            })
            .collect();
        Ok((
            RowReader {
                columns,
                region,
                unit,
                members: Vec::new(),
                rejected: Vec::new(),
                ids: HashSet::new(),
                phones: HashSet::new(),
            },
            reports,
        ))
    }

    fn reject(&mut self, line: u64, reason: String) {
        self.rejected.push(Rejection {
            line,
            reason,
            unit: self.unit,
        });
    }

    /// One data row, found at `line` (physical line or sheet row).
    fn row(&mut self, line: u64, cells: &[&str]) {
        if cells.iter().all(|c| c.is_empty()) {
            return;
        }
        match member_from_row(cells, &self.columns, self.region, line) {
            Ok(member) => {
                if !self.phones.insert(member.phone) {
                    let reason = format!(
                        "duplicate phone {} (an earlier row has it)",
                        member.phone.masked()
                    );
                    self.reject(line, reason);
                } else if !self.ids.insert(member.id.clone()) {
                    self.phones.remove(&member.phone);
                    let reason = format!(
                        "duplicate member_id `{}` (an earlier row has it)",
                        member.id
                    );
                    self.reject(line, reason);
                } else {
                    self.members.push(member);
                }
            }
            Err(reason) => self.reject(line, reason),
        }
    }

    fn finish(
        self,
        columns: Vec<ColumnReport>,
        format: FileFormat,
        sheet: Option<String>,
    ) -> Loaded {
        Loaded {
            members: self.members,
            rejected: self.rejected,
            columns,
            format,
            sheet,
        }
    }
}

/// Where each physical line of `bytes` starts: after every `\n`, and after
/// every `\r` not followed by `\n` (old Mac files), as editors count them.
struct LineStarts(Vec<usize>);

impl LineStarts {
    fn of(bytes: &[u8]) -> LineStarts {
        let mut starts = vec![0];
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
                starts.push(i + 1);
            }
        }
        LineStarts(starts)
    }

    /// The 1-based physical line of the record the CSV reader says starts
    /// at `offset`. The reader may place a record on the line break that
    /// ends the previous one (the `\n` of a CRLF, a blank line it skipped);
    /// the record really starts at the first byte after those.
    fn line_of(&self, bytes: &[u8], offset: u64) -> u64 {
        let mut at = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        while matches!(bytes.get(at), Some(b'\r' | b'\n')) {
            at += 1;
        }
        self.0.partition_point(|&start| start <= at) as u64
    }
}

pub(super) fn parse_csv(bytes: &[u8], shown: &str, region: Region) -> Result<Loaded, LoadError> {
    let unreadable = |reason: String| LoadError::Unreadable {
        path: shown.to_owned(),
        reason,
    };
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let lines = LineStarts::of(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| unreadable(format!("the header row cannot be read: {e}")))?
        .clone();
    let header: Vec<&str> = headers.iter().collect();
    let (mut rows, columns) = RowReader::new(&header, 1, shown, region, RowUnit::Line)?;

    let mut record = csv::StringRecord::new();
    loop {
        let before = reader.position().byte();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let at = e.position().map_or(before, |p| p.byte());
                rows.reject(
                    lines.line_of(bytes, at),
                    format!("unreadable row: {}", without_position(&e)),
                );
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    break;
                }
                continue;
            }
        }
        let at = record.position().map_or(before, |p| p.byte());
        let cells: Vec<&str> = record.iter().collect();
        rows.row(lines.line_of(bytes, at), &cells);
    }
    Ok(rows.finish(columns, FileFormat::Csv, None))
}

/// A CSV error without the reader's own line count, which the rejection
/// replaces with the physical line.
fn without_position(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { err, .. } => {
            format!("not UTF-8 text ({err}); save the file as UTF-8 CSV")
        }
        _ => e.to_string(),
    }
}

/// Reads the chosen sheet of an opened (or failed) workbook: the one named
/// `sheet`, or the first worksheet.
fn parse_workbook<RS, R>(
    workbook: Result<R, R::Error>,
    format: FileFormat,
    shown: &str,
    sheet: Option<&str>,
    region: Region,
) -> Result<Loaded, LoadError>
where
    RS: std::io::Read + std::io::Seek,
    R: Reader<RS>,
    R::Error: std::fmt::Display,
{
    let unreadable = |reason: String| LoadError::Unreadable {
        path: shown.to_owned(),
        reason,
    };
    let kind = format.as_str();
    let mut workbook =
        workbook.map_err(|e| unreadable(format!("it is not a readable .{kind} workbook: {e}")))?;
    let worksheets: Vec<String> = workbook
        .sheets_metadata()
        .iter()
        .filter(|s| s.typ == calamine::SheetType::WorkSheet)
        .map(|s| s.name.clone())
        .collect();
    let name = match sheet {
        Some(wanted) => worksheets
            .iter()
            .find(|n| n.as_str() == wanted)
            .or_else(|| {
                worksheets
                    .iter()
                    .find(|n| n.trim().eq_ignore_ascii_case(wanted.trim()))
            })
            .cloned()
            .ok_or_else(|| LoadError::NoSuchSheet {
                path: shown.to_owned(),
                sheet: wanted.to_owned(),
                available: worksheets.clone(),
            })?,
        None => worksheets
            .first()
            .cloned()
            .ok_or_else(|| unreadable(format!("the .{kind} workbook has no worksheet")))?,
    };
    let range = workbook
        .worksheet_range(&name)
        .map_err(|e| unreadable(format!("sheet {name:?} cannot be read: {e}")))?;
    // The range starts at the first non-empty row and column; numbers are
    // the spreadsheet's own (row 1, column A = 1).
    let (first_row, first_column) = range.start().unwrap_or((0, 0));
    let mut table = range.rows();
    let header: Vec<String> = table
        .next()
        .ok_or_else(|| unreadable(format!("sheet {name:?} is empty (no header row)")))?
        .iter()
        .map(cell_text)
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let (mut rows, columns) = RowReader::new(
        &header,
        first_column as usize + 1,
        shown,
        region,
        RowUnit::Row,
    )?;
    for (i, cells) in table.enumerate() {
        let cells: Vec<String> = cells.iter().map(cell_text).collect();
        let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
        // The header is row `first_row + 1`; this is the (i + 1)th below it.
        rows.row(u64::from(first_row) + i as u64 + 2, &cells);
    }
    Ok(rows.finish(columns, format, Some(name)))
}

/// A cell as the text the contract expects: numbers without a trailing
/// `.0` or exponent (a phone `919840930854`, a year `1995`), booleans as
/// `true`/`false`, dates as `YYYY-MM-DD`.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_owned(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => number_text(*f),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) if d.is_duration() => number_text(d.as_f64()),
        Data::DateTime(d) => {
            let (y, mo, day, h, mi, sec, _) = d.to_ymd_hms_milli();
            match (d.as_f64() < 1.0, (h, mi, sec) == (0, 0, 0)) {
                (true, _) => format!("{h:02}:{mi:02}:{sec:02}"),
                (false, true) => format!("{y:04}-{mo:02}-{day:02}"),
                (false, false) => format!("{y:04}-{mo:02}-{day:02} {h:02}:{mi:02}:{sec:02}"),
            }
        }
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.trim().to_owned(),
        Data::Error(e) => e.to_string(),
    }
}

/// `919840930854.0` → `919840930854`, `1995.0` → `1995`, `2.5` → `2.5`;
/// never an exponent.
fn number_text(f: f64) -> String {
    // Below 2^53 every whole f64 is an exact integer.
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        format!("{}", f as i64)
    } else {
        // Rust prints an f64 in plain decimal, never with an exponent.
        format!("{f}")
    }
}

fn member_from_row(
    cells: &[&str],
    columns: &[(Option<Column>, String)],
    region: Region,
    line: u64,
) -> Result<Member, String> {
    // The first non-empty cell of a column (a header may repeat).
    let cell = |column: Column| {
        columns
            .iter()
            .zip(cells.iter().copied())
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
            .zip(cells.iter().copied())
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

/// `active`/`inactive`, or yes/no as an `Active` column holds.
fn parse_status(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "active" | "true" | "yes" | "y" | "1" => Ok(true),
        "inactive" | "false" | "no" | "n" | "0" => Ok(false),
        _ => Err(format!(
            "status `{value}` is not `active` or `inactive` (or yes/no)"
        )),
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
        assert_eq!(normalise_header("Mob. No.:"), "mobno");
        assert_eq!(
            Column::from_header(&normalise_header("E-mail ID")),
            Some(Column::Email)
        );
        assert_eq!(
            Column::from_header(&normalise_header("City/Town")),
            Some(Column::City)
        );
    }

    #[test]
    fn numbers_in_cells_read_as_written_by_hand() {
        assert_eq!(number_text(919840930854.0), "919840930854");
        assert_eq!(number_text(9.19840930854e11), "919840930854");
        assert_eq!(number_text(1995.0), "1995");
        assert_eq!(number_text(-3.0), "-3");
        assert_eq!(number_text(2.5), "2.5");
        assert_eq!(number_text(1e20), "100000000000000000000");
        assert_eq!(number_text(f64::NAN), "NaN");
        assert_eq!(cell_text(&Data::Int(9845000001)), "9845000001");
        assert_eq!(cell_text(&Data::Bool(false)), "false");
        assert_eq!(cell_text(&Data::String(" Asha ".into())), "Asha");
    }

    #[test]
    fn dates_and_times_in_cells_never_panic() {
        use calamine::{ExcelDateTime, ExcelDateTimeType};
        let date = |value: f64, kind: ExcelDateTimeType| {
            cell_text(&Data::DateTime(ExcelDateTime::new(value, kind, false)))
        };
        assert_eq!(date(43845.0, ExcelDateTimeType::DateTime), "2020-01-15");
        assert_eq!(
            date(43845.5, ExcelDateTimeType::DateTime),
            "2020-01-15 12:00:00"
        );
        assert_eq!(date(0.25, ExcelDateTimeType::DateTime), "06:00:00");
        assert_eq!(date(1.5, ExcelDateTimeType::TimeDelta), "1.5");
        for odd in [-1.0, f64::NAN, f64::INFINITY, 1e300] {
            let _ = date(odd, ExcelDateTimeType::DateTime);
        }
    }

    #[test]
    fn physical_lines_count_lf_crlf_and_lone_cr() {
        let text = b"a\r\nb\rc\n\r\nd";
        let lines = LineStarts::of(text);
        let at = |needle: u8| {
            let offset = text.iter().position(|&b| b == needle).unwrap_or(0);
            lines.line_of(text, offset as u64)
        };
        assert_eq!([at(b'a'), at(b'b'), at(b'c'), at(b'd')], [1, 2, 3, 5]);
        // A record placed on the line break before it starts after it.
        assert_eq!(lines.line_of(text, 2), 2);
    }
}
