//! Backups: sessions, rate-limit state and opt-outs as JSON lines, and back.
//!
//! JSON is self-describing, so an export is also the migration path should
//! the stored (bincode) format ever change: export with the old version,
//! import with the new. The first line is a header naming the format.
//!
//! ```text
//! {"type":"header","format":"roster-export","version":1,"exportedAt":1764000000000}
//! {"type":"session","session":{"phone":"+919840930854","member_id":"M0001",...}}
//! {"type":"limit","key":"messages:+919840930854","at":1764000072000000000}
//! {"type":"optout","phone":"+919840930855","optedOutAt":1764000000000}
//! ```
//!
//! `optout` lines (a phone that sent STOP, and when, in ms) came later in
//! version 1: files without them import as before, with nobody opted out.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::conversation::{SentReply, Session};
use crate::phone::PhoneNumber;
use crate::store::record::PhoneRecord;
use crate::store::{Store, StoreError};

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
    /// A phone that opted out (STOP), and when, in ms since the epoch.
    #[serde(rename = "optout")]
    OptOut {
        phone: PhoneNumber,
        #[serde(rename = "optedOutAt")]
        opted_out_at: u64,
    },
}

/// Why a backup could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("cannot write the export: {0}")]
    Write(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("line {line}: {reason}")]
    Invalid { line: usize, reason: String },
}

/// How much an export or import carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub sessions: u64,
    pub limits: u64,
    pub opt_outs: u64,
}

/// Writes every live session, rate-limit entry and opt-out to `out`, one
/// JSON per line, from one pass over the phone records.
pub fn export(
    store: &Store,
    now_ms: u64,
    out: &mut (impl Write + ?Sized),
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
    let now_ns = now_ms.saturating_mul(1_000_000);
    for item in store.records() {
        let (phone, record) = item?;
        let latest = record.replies.last().filter(|r| r.expires_at_ms > now_ms);
        if let Some(mut session) = record.session.clone().filter(|s| !s.is_expired(now_ms)) {
            // The latest reply rides along, so that a redelivery of the last
            // message is still recognised after a restore.
            session.last_reply = latest.map(|r| SentReply {
                message_sid: r.message_sid.clone(),
                twiml: r.twiml.to_string(),
            });
            write_line(out, &Record::Session { session })?;
            counts.sessions += 1;
        }
        for (name, at) in record.limits.times() {
            if at > now_ns {
                let key = format!("{name}:{phone}");
                write_line(out, &Record::Limit { key, at })?;
                counts.limits += 1;
            }
        }
        if let Some(opted_out_at) = record.opted_out_at_ms {
            write_line(
                out,
                &Record::OptOut {
                    phone,
                    opted_out_at,
                },
            )?;
            counts.opt_outs += 1;
        }
    }
    out.flush()?;
    Ok(counts)
}

fn write_line(out: &mut (impl Write + ?Sized), record: &Record) -> Result<(), BackupError> {
    serde_json::to_writer(&mut *out, record).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// The latest time an export may carry, in ms since the epoch: the end of
/// year 9999. Anything later is corrupt, and no date format can show it.
pub const MAX_TIMESTAMP_MS: u64 = 253_402_300_799_999;

/// Reads and checks every line; nothing is written when any line is bad.
///
/// The format has no trailer, so an export cut off exactly between two
/// lines reads as a shorter one; an export cut off inside a line (every
/// line it writes ends with a newline) is reported as cut off.
pub fn read(mut input: impl BufRead) -> Result<Vec<Record>, BackupError> {
    let mut records = Vec::new();
    let mut buffer = String::new();
    let mut line_number = 0;
    loop {
        line_number += 1;
        buffer.clear();
        let read = input
            .read_line(&mut buffer)
            .map_err(|e| BackupError::Invalid {
                line: line_number,
                reason: e.to_string(),
            })?;
        if read == 0 {
            break;
        }
        let complete = buffer.ends_with('\n');
        let line = buffer.trim_end_matches('\n').trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(line).map_err(|e| BackupError::Invalid {
            line: line_number,
            reason: if complete {
                e.to_string()
            } else {
                format!("the file ends inside this line, so the export was cut off ({e})")
            },
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
        let checked = match &record {
            Record::Session { session } => check_times(session),
            Record::OptOut { opted_out_at, .. } => check_time("optedOutAt", *opted_out_at),
            _ => Ok(()),
        };
        checked.map_err(|reason| BackupError::Invalid {
            line: line_number,
            reason,
        })?;
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

/// Rejects a session whose shown times are past [`MAX_TIMESTAMP_MS`].
///
/// `expires_at_ms` is not checked: it is `last_activity_ms` plus the
/// configured TTL, saturating, and is only ever compared, never shown.
fn check_times(session: &Session) -> Result<(), String> {
    [
        ("created_at_ms", session.created_at_ms),
        ("last_activity_ms", session.last_activity_ms),
    ]
    .into_iter()
    .chain(
        session
            .history
            .iter()
            .map(|entry| ("history timestamp_ms", entry.timestamp_ms)),
    )
    .try_for_each(|(field, ms)| check_time(field, ms))
}

/// Rejects a time past [`MAX_TIMESTAMP_MS`], naming its field.
fn check_time(field: &str, ms: u64) -> Result<(), String> {
    if ms > MAX_TIMESTAMP_MS {
        return Err(format!(
            "{field} {ms} is after the year 9999 (at most {MAX_TIMESTAMP_MS} ms since the epoch)"
        ));
    }
    Ok(())
}

/// Writes checked records into a store that is not serving: what a record
/// carries replaces what is stored for its phone.
pub async fn restore(records: Vec<Record>, store: &Store) -> Result<Counts, BackupError> {
    let mut counts = Counts::default();
    let mut phones: BTreeMap<PhoneNumber, PhoneRecord> = BTreeMap::new();
    for record in records {
        match record {
            Record::Header { .. } => {}
            Record::Session { session } => {
                counts.sessions += 1;
                let phone = session.phone;
                phones.entry(phone).or_default().session = Some(session);
            }
            Record::Limit { key, at } => {
                let Some((name, phone)) = key
                    .split_once(':')
                    .and_then(|(name, phone)| Some((name, PhoneNumber::from_stored(phone)?)))
                else {
                    tracing::warn!("skipping a rate-limit entry with an unknown key");
                    continue;
                };
                let limits = &mut phones.entry(phone).or_default().limits;
                match limits.time_mut(name) {
                    Some(time) => {
                        *time = at;
                        counts.limits += 1;
                    }
                    None => tracing::warn!("skipping an unknown rate-limit entry {name:?}"),
                }
            }
            Record::OptOut {
                phone,
                opted_out_at,
            } => {
                counts.opt_outs += 1;
                phones.entry(phone).or_default().opted_out_at_ms = Some(opted_out_at);
            }
        }
    }
    store.import(phones).await?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::config::Config;
    use crate::directory::MemberRole;
    use crate::phone::{PhoneNumber, Region};

    const NOW_MS: u64 = 1_764_000_000_000;

    /// A session and rate-limit store on a real sled database in `dir`.
    fn stores(dir: &std::path::Path) -> (Store, ()) {
        let mut config = Config::default();
        config.storage.data_dir = dir.join("state");
        let clock = ManualClock::new(NOW_MS);
        let db = crate::store::open(&config.storage).unwrap();
        let sessions = Store::open(&db, &config, clock).unwrap();
        (sessions, ())
    }

    fn session(phone: &str, last_activity_ms: u64) -> Session {
        Session {
            phone: PhoneNumber::parse(phone, Region::default()).unwrap(),
            member_id: "M0001".to_owned(),
            member_name: "Asha".to_owned(),
            role: MemberRole::Member,
            history: Vec::new(),
            created_at_ms: NOW_MS,
            last_activity_ms,
            expires_at_ms: NOW_MS + 30 * 60 * 1000,
            message_count: 1,
            search_count: 0,
            last_reply: None,
        }
    }

    /// Accepts `room` bytes, then fails every write.
    struct FailingWriter {
        written: Vec<u8>,
        room: usize,
    }

    impl Write for FailingWriter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if self.written.len() + bytes.len() > self.room {
                return Err(std::io::Error::other("disk full"));
            }
            self.written.extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A store holding two sessions and a rate-limit entry, and its export.
    async fn filled() -> (tempfile::TempDir, Store, (), Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let (sessions, _limits) = stores(dir.path());
        sessions
            .import_sessions([
                session("+919840930854", NOW_MS),
                session("+919840930855", NOW_MS),
            ])
            .await
            .unwrap();
        let phone = PhoneNumber::parse("+919840930854", Region::default()).unwrap();
        let mut limit = PhoneRecord::default();
        limit.limits.messages.tat_ns = (NOW_MS + 60_000) * 1_000_000;
        sessions.import([(phone, limit)]).await.unwrap();
        let mut out = Vec::new();
        let counts = export(&sessions, NOW_MS, &mut out).unwrap();
        assert_eq!(
            counts,
            Counts {
                sessions: 2,
                limits: 1,
                opt_outs: 0
            }
        );
        (dir, sessions, (), out)
    }

    #[tokio::test]
    async fn an_export_reads_back_whole() {
        let (_dir, _, _, out) = filled().await;
        let records = read(&out[..]).unwrap();
        assert_eq!(records.len(), 4, "header, two sessions, one limit");
    }

    #[tokio::test]
    async fn an_export_whose_writer_fails_part_way_is_an_error() {
        let (_dir, sessions, _limits, whole) = filled().await;
        for room in [0, 10, whole.len() / 2, whole.len() - 1] {
            let mut out = FailingWriter {
                written: Vec::new(),
                room,
            };
            let result = export(&sessions, NOW_MS, &mut out);
            assert!(
                matches!(result, Err(BackupError::Write(_))),
                "room {room}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_export_cut_inside_a_line_is_reported_as_cut_off() {
        let (_dir, _, _, whole) = filled().await;
        let cut = &whole[..whole.len() - 5];
        let error = read(cut).unwrap_err().to_string();
        assert!(error.starts_with("line 4: "), "{error}");
        assert!(error.contains("cut off"), "{error}");
    }

    #[test]
    fn a_session_after_the_year_9999_is_rejected_with_its_line() {
        let header = Record::Header {
            format: FORMAT.to_owned(),
            version: VERSION,
            exported_at: NOW_MS,
        };
        let mut file = Vec::new();
        write_line(&mut file, &header).unwrap();
        for last_activity in [NOW_MS, MAX_TIMESTAMP_MS, MAX_TIMESTAMP_MS + 1] {
            let record = Record::Session {
                session: session("+919840930854", last_activity),
            };
            write_line(&mut file, &record).unwrap();
        }
        let error = read(&file[..]).unwrap_err().to_string();
        assert!(
            error.starts_with("line 4: last_activity_ms 253402300800000 is after the year 9999"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn files_without_opt_outs_still_import_and_opt_out_lines_restore() {
        let dir = tempfile::tempdir().unwrap();
        let (sessions, _limits) = stores(dir.path());
        let old = "{\"type\":\"header\",\"format\":\"roster-export\",\"version\":1,\"exportedAt\":1764000000000}\n\
                   {\"type\":\"limit\",\"key\":\"messages:+919840930854\",\"at\":1764000072000000000}\n";
        let counts = restore(read(old.as_bytes()).unwrap(), &sessions)
            .await
            .unwrap();
        assert_eq!(
            counts,
            Counts {
                sessions: 0,
                limits: 1,
                opt_outs: 0
            }
        );
        let phone = PhoneNumber::parse("+919840930855", Region::default()).unwrap();
        assert_eq!(sessions.opted_out_since(&phone).await.unwrap(), None);

        let line = |at: u64| {
            format!("{{\"type\":\"optout\",\"phone\":\"+919840930855\",\"optedOutAt\":{at}}}\n")
        };
        let new = format!("{old}{}", line(NOW_MS));
        let counts = restore(read(new.as_bytes()).unwrap(), &sessions)
            .await
            .unwrap();
        assert_eq!(counts.opt_outs, 1);
        assert_eq!(
            sessions.opted_out_since(&phone).await.unwrap(),
            Some(NOW_MS)
        );
        assert_eq!(sessions.opted_out_count(), 1);

        let far = format!("{old}{}", line(MAX_TIMESTAMP_MS + 1));
        let error = read(far.as_bytes()).unwrap_err().to_string();
        assert!(
            error.starts_with("line 3: optedOutAt 253402300800000 is after the year 9999"),
            "{error}"
        );
    }
}
