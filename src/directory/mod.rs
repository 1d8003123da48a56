//! The member directory: who may use Roster and whom they can find.
//!
//! Loaded once from the operator's file (a CSV, an `.xlsx` or an `.ods`; see
//! `load.rs`) into an immutable [`Directory`]: members in file order, an
//! index by phone for the per-message membership check, what became of each
//! column, and the rows that were rejected.

mod load;
pub mod synthetic;

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

pub use load::{FileFormat, LoadError};

use crate::phone::{PhoneNumber, Region};

/// `member` or `admin`, as the CSV's `role` column says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    #[default]
    Member,
    Admin,
}

impl MemberRole {
    pub fn as_str(&self) -> &'static str {
        match self {
            MemberRole::Member => "member",
            MemberRole::Admin => "admin",
        }
    }
}

/// One row of the directory.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub name: String,
    pub phone: PhoneNumber,
    pub email: String,
    pub profession: String,
    pub specialty: String,
    pub designation: String,
    pub organization: String,
    pub city: String,
    pub area: String,
    pub skills: Vec<String>,
    pub services: Vec<String>,
    pub graduation_year: Option<u16>,
    pub degree: String,
    pub branch: String,
    pub bio: String,
    pub role: MemberRole,
    pub active: bool,
    /// When false, other members never see this member's phone or email.
    pub share_contact: bool,
    /// Columns outside the contract, as (header, value).
    pub extra: Vec<(String, String)>,
    /// Where the row starts: the CSV's physical line (1 = the header; a row
    /// whose quoted field holds line breaks counts them), or the
    /// spreadsheet's row number (row 1 = the header row).
    pub line: u64,
}

/// What a [`Rejection`]'s number counts: a CSV's lines or a sheet's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowUnit {
    Line,
    Row,
}

impl RowUnit {
    pub fn as_str(&self) -> &'static str {
        match self {
            RowUnit::Line => "line",
            RowUnit::Row => "row",
        }
    }
}

/// A row that was not loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The CSV's physical line or the sheet's row number, as `unit` says.
    pub line: u64,
    pub reason: String,
    pub unit: RowUnit,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.unit.as_str(), self.line, self.reason)
    }
}

/// What the loader made of one column of the header row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnReport {
    /// 1-based position in the header row.
    pub position: usize,
    /// The header as written (trimmed).
    pub header: String,
    /// The contract field it was taken as, e.g. `phone`; `None` when the
    /// column is kept as an extra attribute or ignored.
    pub field: Option<&'static str>,
    /// Whether its values are kept as extra attributes (no field, and a
    /// header to name them by; a column without a header is ignored).
    pub extra: bool,
}

impl std::fmt::Display for ColumnReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.field {
            Some(field) => write!(f, "column {:?} → {field}", self.header),
            None if self.extra => write!(f, "column {:?} → extra attribute", self.header),
            None => write!(f, "column {} (no header) → ignored", self.position),
        }
    }
}

/// The loaded directory; immutable once built.
#[derive(Debug, Default)]
pub struct Directory {
    members: Vec<Member>,
    by_phone: HashMap<PhoneNumber, usize>,
    by_id: HashMap<String, usize>,
    rejected: Vec<Rejection>,
    columns: Vec<ColumnReport>,
    format: FileFormat,
    sheet: Option<String>,
}

impl Directory {
    /// Loads the directory file at `path` (CSV, `.xlsx` or `.ods`; a
    /// spreadsheet's first sheet); numbers without a country code take
    /// `region`.
    pub fn load(path: &Path, region: Region) -> Result<Directory, LoadError> {
        Self::load_sheet(path, None, region)
    }

    /// [`Directory::load`], reading the sheet named `sheet` of a
    /// spreadsheet (`None`: the first). A CSV has no sheets: naming one is
    /// an error rather than silently ignored.
    pub fn load_sheet(
        path: &Path,
        sheet: Option<&str>,
        region: Region,
    ) -> Result<Directory, LoadError> {
        Ok(Self::build(load::load_file(path, sheet, region)?))
    }

    /// Parses CSV text already in memory (tests, benches, generated data).
    pub fn from_csv(text: &str, region: Region) -> Result<Directory, LoadError> {
        Ok(Self::build(load::parse_csv(
            text.as_bytes(),
            "<memory>",
            region,
        )?))
    }

    fn build(loaded: load::Loaded) -> Directory {
        let load::Loaded {
            members,
            rejected,
            columns,
            format,
            sheet,
        } = loaded;
        let by_phone = members
            .iter()
            .enumerate()
            .map(|(i, m)| (m.phone, i))
            .collect();
        let by_id = members
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id.clone(), i))
            .collect();
        Directory {
            members,
            by_phone,
            by_id,
            rejected,
            columns,
            format,
            sheet,
        }
    }

    /// What each column of the header row was taken as, in file order.
    pub fn columns(&self) -> &[ColumnReport] {
        &self.columns
    }

    /// The kind of file the directory was read from.
    pub fn format(&self) -> FileFormat {
        self.format
    }

    /// The sheet read, for a spreadsheet.
    pub fn sheet(&self) -> Option<&str> {
        self.sheet.as_deref()
    }

    /// Every loaded member, active or not, in file order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Rows of the file that were not loaded.
    pub fn rejected(&self) -> &[Rejection] {
        &self.rejected
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The member with this number, active or not.
    pub fn member(&self, phone: &PhoneNumber) -> Option<&Member> {
        self.by_phone.get(phone).map(|&i| &self.members[i])
    }

    /// The member with this number if they may use the assistant.
    pub fn active_member(&self, phone: &PhoneNumber) -> Option<&Member> {
        self.member(phone).filter(|m| m.active)
    }

    /// The member with this `member_id`, if still in the directory.
    pub fn by_id(&self, id: &str) -> Option<&Member> {
        self.by_id.get(id).map(|&i| &self.members[i])
    }

    /// Active members, the only ones that ever appear in results.
    pub fn active_members(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.active)
    }
}
