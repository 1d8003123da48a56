//! Backups: sessions and rate-limit state as JSON lines, and back.
//!
//! JSON is self-describing, so an export is also the migration path should
//! the stored (bincode) format ever change: export with the old version,
//! import with the new. The first line is a header naming the format.
//!
//! ```text
//! {"type":"header","format":"roster-export","version":1,"exportedAt":1764000000000}
//! {"type":"session","session":{"phone":"+919840930854","member_id":"M0001",...}}
//! {"type":"limit","key":"messages:+919840930854","at":1764000072000000000}
//! ```

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::limits::Limits;
use crate::session::{Session, SessionStore, StoreError};

pub const FORMAT: &str = "roster-export";
pub const VERSION: u32 = 1;

/// One line of an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Record {
    Header {
        format: String,
        version: u32,
        #[serde(rename = "exportedAt")]
        exported_at: u64,
    },
    Session {
        session: Session,
    },
    /// A rate-limit entry: its key and absolute time in ns since the epoch.
    Limit {
        key: String,
        at: u64,
    },
}

/// Why a backup could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("cannot write the export: {0}")]
    Write(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("rate-limit state: {0}")]
    Limits(#[from] sled::Error),
    #[error("line {line}: {reason}")]
    Invalid { line: usize, reason: String },
}

/// How much an export or import carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub sessions: u64,
    pub limits: u64,
}

/// Writes every live session and rate-limit entry to `out`, one JSON per line.
pub fn export(
    sessions: &SessionStore,
    limits: &Limits,
    now_ms: u64,
    out: &mut impl Write,
) -> Result<Counts, BackupError> {
    let mut counts = Counts::default();
    write_line(
        out,
        &Record::Header {
            format: FORMAT.to_owned(),
            version: VERSION,
            exported_at: now_ms,
        },
    )?;
    for session in sessions.live_sessions() {
        write_line(out, &Record::Session { session: session? })?;
        counts.sessions += 1;
    }
    for entry in limits.entries() {
        let (key, at) = entry?;
        write_line(out, &Record::Limit { key, at })?;
        counts.limits += 1;
    }
    out.flush()?;
    Ok(counts)
}

fn write_line(out: &mut impl Write, record: &Record) -> Result<(), BackupError> {
    serde_json::to_writer(&mut *out, record).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Reads and checks every line; nothing is written when any line is bad.
pub fn read(input: impl BufRead) -> Result<Vec<Record>, BackupError> {
    let mut records = Vec::new();
    for (index, line) in input.lines().enumerate() {
        let line_number = index + 1;
        let line = line.map_err(|e| BackupError::Invalid {
            line: line_number,
            reason: e.to_string(),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(&line).map_err(|e| BackupError::Invalid {
            line: line_number,
            reason: e.to_string(),
        })?;
        if let Record::Header {
            format, version, ..
        } = &record
            && (format != FORMAT || *version != VERSION)
        {
            return Err(BackupError::Invalid {
                line: line_number,
                reason: format!(
                    "this roster reads {FORMAT} version {VERSION}, not {format} version {version}"
                ),
            });
        }
        if line_number == 1 && !matches!(record, Record::Header { .. }) {
            return Err(BackupError::Invalid {
                line: 1,
                reason: format!("not a {FORMAT} file: the first line must be its header"),
            });
        }
        records.push(record);
    }
    if records.is_empty() {
        return Err(BackupError::Invalid {
            line: 1,
            reason: "the file is empty".to_owned(),
        });
    }
    Ok(records)
}

/// Writes checked records into a store that is not serving.
pub async fn restore(
    records: Vec<Record>,
    sessions: &SessionStore,
    limits: &Limits,
) -> Result<Counts, BackupError> {
    let mut counts = Counts::default();
    let mut to_import = Vec::new();
    for record in records {
        match record {
            Record::Header { .. } => {}
            Record::Session { session } => to_import.push(session),
            Record::Limit { key, at } => {
                limits.restore(&key, at)?;
                counts.limits += 1;
            }
        }
    }
    counts.sessions = sessions.import(to_import).await?;
    Ok(counts)
}
