//! The member directory: who may use Roster and whom they can find.
//!
//! Loaded once from the CSV (see `load.rs`) into an immutable [`Directory`]:
//! members in file order, an index by phone for the per-message membership
//! check, and the filtered search the assistant runs.

mod load;
pub mod synthetic;

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

pub use load::LoadError;

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
    /// The CSV line the row started on.
    pub line: u64,
}

/// A row that was not loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub line: u64,
    pub reason: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// The loaded directory; immutable once built.
#[derive(Debug, Default)]
pub struct Directory {
    members: Vec<Member>,
    by_phone: HashMap<PhoneNumber, usize>,
    by_id: HashMap<String, usize>,
    rejected: Vec<Rejection>,
}

impl Directory {
    /// Loads the CSV at `path`; rows without a country code take `region`.
    pub fn load(path: &Path, region: Region) -> Result<Directory, LoadError> {
        let loaded = load::load_csv(path, region)?;
        Ok(Self::build(loaded.members, loaded.rejected))
    }

    /// Parses CSV text already in memory (tests, benches, generated data).
    pub fn from_csv(text: &str, region: Region) -> Result<Directory, LoadError> {
        let loaded = load::parse_csv(text.as_bytes(), "<memory>", region)?;
        Ok(Self::build(loaded.members, loaded.rejected))
    }

    fn build(members: Vec<Member>, rejected: Vec<Rejection>) -> Directory {
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
        }
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
