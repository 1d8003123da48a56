//! `roster check-data`: what a stopped data dir holds, and what of it
//! cannot be read.
//!
//! sled 0.34 has no read-only mode: opening a database may write (it
//! replays its log, zeroes a torn tail, writes a new snapshot). So the
//! check never opens the data dir itself. It refuses one a running roster
//! holds (sled's lock), copies the data dir into a temporary directory
//! (under `$TMPDIR`, removed afterwards), moves aside in the copy any
//! snapshot sled left unfinished (as `roster serve` would, see
//! [`super::dir`]), opens the copy, and reads every value of every tree
//! with the decoder Roster itself uses: sessions (live or expired), the
//! expiry index, the session count, rate-limit entries, opt-outs and
//! remembered replies. The original is only read.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::codec::{self, CodecError};
use super::dir as storage;
use super::migrate::{PhoneReply, SeenReply};
use super::record::PhoneRecord;
use crate::conversation::Session;
use crate::phone::PhoneNumber;

/// How many unreadable values are described one by one.
const LISTED: usize = 20;

/// Why the check could not run at all (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("there is no data dir at {}", .0.display())]
    Missing(PathBuf),
    #[error(
        "the data dir {} is in use by a running roster: stop it first, or ask the running one (roster stats)",
        .0.display()
    )]
    InUse(PathBuf),
    #[error("cannot copy the data dir {} to {}: {reason}", from.display(), to.display())]
    Copy {
        from: PathBuf,
        to: PathBuf,
        reason: String,
    },
}

/// Readable and unreadable values of one kind.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Count {
    pub readable: u64,
    pub unreadable: u64,
}

/// Sessions, split by whether they are still live.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SessionCount {
    pub live: u64,
    pub expired: u64,
    pub unreadable: u64,
}

/// What the check found.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataReport {
    pub data_dir: PathBuf,
    /// Where the copy that was opened lived (removed by now).
    pub copy: PathBuf,
    /// Why a copy: said in every report.
    pub how: &'static str,
    pub bytes_copied: u64,
    /// Snapshots sled began and never finished, moved aside in the copy.
    pub unfinished_snapshots: Vec<String>,
    /// Set when sled cannot open the data dir at all.
    pub open_error: Option<String>,
    pub sessions: SessionCount,
    pub expiry_index_keys: u64,
    /// The stored session count, if readable.
    pub stored_session_count: Option<u64>,
    /// False when the last roster did not close it (a crash): the next
    /// start counts the sessions again.
    pub closed_cleanly: bool,
    pub limit_entries: Count,
    pub opt_outs: Count,
    pub remembered_replies: Count,
    pub expired_replies: u64,
    pub reply_windows: u64,
    /// Remembered replies in the layout before per-window trees (moved
    /// over at the next start).
    pub legacy_replies: u64,
    /// Phone records (the layout since records).
    pub phone_records: u64,
    /// Whether the data dir still holds the layout from before records:
    /// the next start moves it into records.
    pub older_layout: bool,
    /// Trees this version does not know, with their key counts.
    pub other_trees: Vec<(String, u64)>,
    /// The first [`LISTED`] unreadable values, described.
    pub problems: Vec<String>,
    pub problem_count: u64,
}

impl DataReport {
    /// Whether anything could not be read.
    pub fn has_unreadable(&self) -> bool {
        self.open_error.is_some() || self.problem_count > 0
    }

    fn problem(&mut self, what: String) {
        self.problem_count += 1;
        if self.problems.len() < LISTED {
            self.problems.push(what);
        }
    }
}

/// Checks the stopped data dir `dir` through a copy; `cache_bytes` is
/// sled's cache for the copy, `now_ms` tells live from expired.
pub fn check(dir: &Path, cache_bytes: u64, now_ms: u64) -> Result<DataReport, CheckError> {
    if !dir.is_dir() {
        return Err(CheckError::Missing(dir.to_owned()));
    }
    match storage::in_use(dir) {
        Ok(true) => return Err(CheckError::InUse(dir.to_owned())),
        Ok(false) => {}
        Err(e) => {
            return Err(CheckError::Copy {
                from: dir.to_owned(),
                to: PathBuf::new(),
                reason: e.to_string(),
            });
        }
    }
    let scratch = tempfile::Builder::new()
        .prefix("roster-check-data-")
        .tempdir()
        .map_err(|e| CheckError::Copy {
            from: dir.to_owned(),
            to: std::env::temp_dir(),
            reason: e.to_string(),
        })?;
    let copy = scratch.path().join("state");
    let bytes_copied = copy_dir(dir, &copy).map_err(|e| CheckError::Copy {
        from: dir.to_owned(),
        to: copy.clone(),
        reason: e.to_string(),
    })?;
    let mut report = DataReport {
        data_dir: dir.to_owned(),
        copy: copy.clone(),
        how: "read from a copy: sled 0.34 cannot open a database read-only",
        bytes_copied,
        ..DataReport::default()
    };
    match storage::set_aside_unfinished_snapshots(&copy) {
        Ok(moved) => {
            report.unfinished_snapshots = moved
                .iter()
                .map(|m| {
                    let name = m.from.file_name().map_or_else(
                        || m.from.display().to_string(),
                        |n| n.to_string_lossy().into_owned(),
                    );
                    format!("{name} ({} bytes)", m.bytes)
                })
                .collect();
        }
        Err(e) => report.open_error = Some(format!("cannot move an unfinished snapshot: {e}")),
    }
    if report.open_error.is_some() {
        return Ok(report);
    }
    let db = match sled::Config::new()
        .path(&copy)
        .cache_capacity(cache_bytes)
        .open()
    {
        Ok(db) => db,
        Err(e) => {
            report.open_error = Some(format!("sled cannot open it: {e}"));
            return Ok(report);
        }
    };
    read_all(&db, now_ms, &mut report);
    drop(db);
    Ok(report)
}

/// Copies `from` into `to` (created), recursively; the bytes copied.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<u64> {
    std::fs::create_dir_all(to)?;
    let mut bytes = 0;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            bytes += copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            bytes += std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(bytes)
}

fn read_all(db: &sled::Db, now_ms: u64, report: &mut DataReport) {
    for name in db.tree_names() {
        let name = String::from_utf8_lossy(&name).into_owned();
        let tree = match db.open_tree(&name) {
            Ok(tree) => tree,
            Err(e) => {
                report.problem(format!("tree {name}: sled cannot open it: {e}"));
                continue;
            }
        };
        match name.as_str() {
            super::TREE => read_phones(&tree, now_ms, report),
            "sessions" => read_sessions(&tree, now_ms, report),
            "limits" => read_limits(&tree, report),
            "optouts" => read_opt_outs(&tree, report),
            // sled's own default tree: Roster only ever reads it (/readyz).
            "__sled__default" => {}
            _ if name.starts_with("replies:") => read_replies(&name, &tree, now_ms, report),
            _ => report.other_trees.push((name, tree.len() as u64)),
        }
    }
}

/// Each entry of `tree`, or a problem for the entry sled could not read.
fn entries(
    name: &str,
    tree: &sled::Tree,
    report: &mut DataReport,
) -> Vec<(sled::IVec, sled::IVec)> {
    let mut out = Vec::new();
    for item in tree.iter() {
        match item {
            Ok(entry) => out.push(entry),
            Err(e) => {
                report.problem(format!("tree {name}: sled cannot read past an entry: {e}"));
                break;
            }
        }
    }
    out
}

fn key_text(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(text) => PhoneNumber::from_stored(text).map_or_else(|| text.to_owned(), |p| p.masked()),
        Err(_) => format!("{} bytes", key.len()),
    }
}

/// A 9-byte value: a version byte and a u64, as counts, limits and
/// opt-outs are stored.
fn decode_u64(what: &'static str, version: u8, bytes: &[u8]) -> Result<u64, CodecError> {
    match bytes.split_first() {
        Some((&found, rest)) if found == version => rest
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| CodecError::Corrupt {
                what,
                reason: format!("{} bytes", bytes.len()),
            }),
        Some((&found, _)) => Err(CodecError::UnknownVersion {
            what,
            found,
            expected: version,
        }),
        None => Err(CodecError::Empty),
    }
}

/// The phone records, their index and count (the layout since records).
fn read_phones(tree: &sled::Tree, now_ms: u64, report: &mut DataReport) {
    report.closed_cleanly = true;
    let now_ns = now_ms.saturating_mul(1_000_000);
    for (key, value) in entries(super::TREE, tree, report) {
        match key.first() {
            Some(&super::RECORD) => match PhoneRecord::decode(&value) {
                Ok(record) => {
                    match &record.session {
                        Some(s) if s.is_expired(now_ms) => report.sessions.expired += 1,
                        Some(_) => report.sessions.live += 1,
                        None => {}
                    }
                    let limits = [record.limits.messages, record.limits.searches];
                    report.limit_entries.readable +=
                        limits.iter().filter(|b| b.is_live(now_ns)).count() as u64;
                    if record.opted_out_at_ms.is_some() {
                        report.opt_outs.readable += 1;
                    }
                    report.phone_records += 1;
                    for reply in &record.replies {
                        if reply.expires_at_ms > now_ms {
                            report.remembered_replies.readable += 1;
                        } else {
                            report.expired_replies += 1;
                        }
                    }
                }
                Err(e) => {
                    report.sessions.unreadable += 1;
                    report.problem(format!("record of {}: {e}", key_text(&key[1..])));
                }
            },
            Some(&super::DUE) => report.expiry_index_keys += 1,
            Some(&super::OPTED_OUT) => {}
            _ if key.as_ref() == super::COUNT => {
                match decode_u64("session count", codec::COUNT_V1, &value) {
                    Ok(count) => report.stored_session_count = Some(count),
                    // Rebuilt by counting at the next start: nothing is lost.
                    Err(e) => report.problem(format!("the session count: {e}")),
                }
            }
            _ if key.as_ref() == super::OPEN => report.closed_cleanly = false,
            _ => report.problem(format!(
                "the phones tree has a key this version does not know ({})",
                key_text(&key)
            )),
        }
    }
}

/// The sessions tree of a data dir from before records (moved into records
/// at the next start).
fn read_sessions(tree: &sled::Tree, now_ms: u64, report: &mut DataReport) {
    report.older_layout = true;
    report.closed_cleanly = true;
    for (key, value) in entries("sessions", tree, report) {
        match key.first() {
            Some(b's') => match codec::decode::<Session>("session", codec::SESSION_V1, &value) {
                Ok(session) if session.is_expired(now_ms) => report.sessions.expired += 1,
                Ok(_) => report.sessions.live += 1,
                Err(e) => {
                    report.sessions.unreadable += 1;
                    report.problem(format!("session of {}: {e}", key_text(&key[1..])));
                }
            },
            Some(b'e') => report.expiry_index_keys += 1,
            Some(b'm') => report.legacy_replies += 1,
            Some(b'x') => {}
            _ if key.as_ref() == b"#count" => {
                match decode_u64("session count", codec::COUNT_V1, &value) {
                    Ok(count) => report.stored_session_count = Some(count),
                    // Rebuilt by counting at the next start: nothing is lost.
                    Err(e) => report.problem(format!("the session count: {e}")),
                }
            }
            _ if key.as_ref() == b"#open" => report.closed_cleanly = false,
            _ => report.problem(format!(
                "the sessions tree has a key this version does not know ({})",
                key_text(&key)
            )),
        }
    }
}

fn read_limits(tree: &sled::Tree, report: &mut DataReport) {
    report.older_layout = true;
    for (key, value) in entries("limits", tree, report) {
        match decode_u64("rate-limit entry", codec::LIMIT_V1, &value) {
            Ok(_) => report.limit_entries.readable += 1,
            Err(e) => {
                report.limit_entries.unreadable += 1;
                report.problem(format!("rate-limit entry {}: {e}", limit_key(&key)));
            }
        }
    }
}

/// `messages:+9198…` with the phone masked.
fn limit_key(key: &[u8]) -> String {
    let text = String::from_utf8_lossy(key);
    match text.split_once(':') {
        Some((name, phone)) => format!("{name}:{}", key_text(phone.as_bytes())),
        None => key_text(key),
    }
}

fn read_opt_outs(tree: &sled::Tree, report: &mut DataReport) {
    report.older_layout = true;
    for (key, value) in entries("optouts", tree, report) {
        let phone = std::str::from_utf8(&key)
            .ok()
            .and_then(PhoneNumber::from_stored);
        match (phone, decode_u64("opt-out", codec::OPT_OUT_V1, &value)) {
            (Some(_), Ok(_)) => report.opt_outs.readable += 1,
            (None, _) => {
                report.opt_outs.unreadable += 1;
                report.problem(format!(
                    "an opt-out whose key is not a phone ({})",
                    key_text(&key)
                ));
            }
            (Some(phone), Err(e)) => {
                report.opt_outs.unreadable += 1;
                report.problem(format!("opt-out of {}: {e}", phone.masked()));
            }
        }
    }
}

fn read_replies(name: &str, tree: &sled::Tree, now_ms: u64, report: &mut DataReport) {
    report.older_layout = true;
    report.reply_windows += 1;
    for (_, value) in entries(name, tree, report) {
        // Format 2 names the phone the reply went to; format 1 (older
        // data dirs) does not.
        let expires_at_ms = match value.first() {
            Some(&codec::SEEN_V2) => {
                codec::decode::<PhoneReply>("remembered reply", codec::SEEN_V2, &value)
                    .map(|reply| reply.expires_at_ms)
            }
            _ => codec::decode::<SeenReply>("remembered reply", codec::SEEN_V1, &value)
                .map(|reply| reply.expires_at_ms),
        };
        match expires_at_ms {
            Ok(expires_at_ms) if expires_at_ms <= now_ms => report.expired_replies += 1,
            Ok(_) => report.remembered_replies.readable += 1,
            Err(e) => {
                report.remembered_replies.unreadable += 1;
                report.problem(format!("a remembered reply in {name}: {e}"));
            }
        }
    }
}

/// The report for people.
pub fn describe(report: &DataReport) -> String {
    let mut out = format!(
        "data dir {}\n  {} ({} bytes copied to {}, removed afterwards)\n",
        report.data_dir.display(),
        report.how,
        report.bytes_copied,
        report.copy.display()
    );
    for snapshot in &report.unfinished_snapshots {
        out.push_str(&format!(
            "  unfinished sled snapshot {snapshot}: left by an interrupted start (a full disk); \
             roster serve moves it aside and sled rebuilds its snapshot from the log\n"
        ));
    }
    if let Some(error) = &report.open_error {
        out.push_str(&format!("  UNREADABLE: {error}\n"));
        return out;
    }
    if report.older_layout {
        out.push_str(
            "  layout:              from before phone records; the next start moves it into one record per phone\n",
        );
    } else {
        out.push_str(&format!(
            "  phone records:       {}\n",
            report.phone_records
        ));
    }
    let s = &report.sessions;
    out.push_str(&format!(
        "  sessions:            {} live, {} expired (swept at the next start), {} unreadable\n",
        s.live, s.expired, s.unreadable
    ));
    out.push_str(&format!(
        "  expiry index:        {} keys\n",
        report.expiry_index_keys
    ));
    match report.stored_session_count {
        Some(count) => out.push_str(&format!("  stored count:        {count}\n")),
        None => out.push_str("  stored count:        none (counted at the next start)\n"),
    }
    if !report.closed_cleanly {
        out.push_str(
            "  last close:          not clean (a crash or kill): the next start counts the sessions again\n",
        );
    }
    out.push_str(&format!(
        "  rate-limit entries:  {} readable, {} unreadable\n",
        report.limit_entries.readable, report.limit_entries.unreadable
    ));
    out.push_str(&format!(
        "  opt-outs:            {} readable, {} unreadable\n",
        report.opt_outs.readable, report.opt_outs.unreadable
    ));
    out.push_str(&format!(
        "  remembered replies:  {} live, {} expired, {} unreadable, in {} windows\n",
        report.remembered_replies.readable,
        report.expired_replies,
        report.remembered_replies.unreadable,
        report.reply_windows
    ));
    if report.legacy_replies > 0 {
        out.push_str(&format!(
            "  older-layout replies: {} (moved into records at the next start)\n",
            report.legacy_replies
        ));
    }
    for (name, keys) in &report.other_trees {
        out.push_str(&format!("  unknown tree {name}: {keys} keys\n"));
    }
    if report.problem_count == 0 {
        out.push_str("  everything is readable\n");
    } else {
        out.push_str(&format!("  {} unreadable values:\n", report.problem_count));
        for problem in &report.problems {
            out.push_str(&format!("    {problem}\n"));
        }
        if report.problem_count > report.problems.len() as u64 {
            out.push_str(&format!(
                "    … and {} more\n",
                report.problem_count - report.problems.len() as u64
            ));
        }
    }
    out
}
