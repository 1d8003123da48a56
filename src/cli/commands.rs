//! The operator commands: `sessions`, `limits`, `stats`, `export`, `import`,
//! `check-directory` and `check-data`.
//!
//! While `roster serve` runs it holds the sled lock, so these go through its
//! admin API. When no server answers, the read-only ones open the data dir
//! directly; when the data dir is locked and no server answers, they say
//! exactly that. Output is for people by default, JSON with `--json`.

use std::io::{BufReader, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::json;

use crate::cli::client::{AdminClient, ClientError};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{Backend, Config};
use crate::directory::{Directory, RowUnit};
use crate::http::views::{LimitsOf, PhoneLimits, SessionDetail, SessionList, SessionRow, Stats};
use crate::limits::Limits;
use crate::phone::PhoneNumber;
use crate::store::Store;
use crate::store::export;
use crate::store::shared::SharedRecords;
use crate::store::{self as storage, StorageError};

/// Where a command reads from and how it prints.
pub struct Target {
    pub config: Config,
    pub server: String,
    pub json: bool,
}

/// The state a command works on: a server's admin API, or the data dir.
enum Source {
    Server(AdminClient),
    Local(Box<LocalState>),
}

struct LocalState {
    sessions: Store,
    limits: Limits,
}

impl LocalState {
    fn open(config: &Config) -> Result<LocalState, StorageError> {
        let clock: SharedClock = Arc::new(SystemClock);
        let db = storage::open(&config.storage)?;
        let other = |e: String| StorageError::Other {
            path: config.storage.data_dir.clone(),
            reason: e,
        };
        let sessions = Store::open(&db, config, clock.clone()).map_err(|e| other(e.to_string()))?;
        let sessions = match config.storage.backend {
            Backend::Sled => sessions,
            Backend::Redis => sessions.with_shared(
                SharedRecords::connect(&config.storage, config.longest_turn())
                    .map_err(|e| other(e.to_string()))?,
            ),
        };
        let limits = Limits::new(&config.limits, clock.clone());
        Ok(LocalState { sessions, limits })
    }
}

impl Target {
    fn admin(&self) -> AdminClient {
        AdminClient::new(&self.server, self.config.admin.token())
    }

    /// The server if one answers, else the data dir if it is free.
    async fn connect(&self) -> anyhow::Result<Source> {
        let admin = self.admin();
        if admin.is_running().await {
            return Ok(Source::Server(admin));
        }
        match LocalState::open(&self.config) {
            Ok(local) => Ok(Source::Local(Box::new(local))),
            Err(StorageError::Locked(path)) => bail!(
                "the data dir {} is locked by a running roster, but no server answers at {}: \
                 point --server at that roster (its server.bind)",
                path.display(),
                self.server
            ),
            Err(e) => Err(e.into()),
        }
    }

    fn print<T: Serialize>(&self, value: &T, human: impl FnOnce(&T) -> String) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_default()
            );
        } else {
            print!("{}", human(value));
        }
    }

    fn parse_phone(&self, text: &str) -> anyhow::Result<PhoneNumber> {
        Ok(PhoneNumber::parse(
            text,
            self.config.directory.default_region,
        )?)
    }
}

/// `roster sessions list`.
pub async fn sessions_list(target: &Target, limit: usize) -> anyhow::Result<ExitCode> {
    let list: SessionList = match target.connect().await? {
        Source::Server(admin) => admin.get(&format!("/admin/sessions?limit={limit}")).await?,
        Source::Local(local) => SessionList {
            sessions: local
                .sessions
                .list(None, limit)
                .await?
                .iter()
                .map(SessionRow::from)
                .collect(),
            next_cursor: None,
        },
    };
    target.print(&list, |list| {
        if list.sessions.is_empty() {
            return "no live sessions\n".to_owned();
        }
        let mut out = format!(
            "{:<16} {:<28} {:<22} {:>8}\n",
            "PHONE", "MEMBER", "LAST ACTIVITY", "MESSAGES"
        );
        for row in &list.sessions {
            out.push_str(&format!(
                "{:<16} {:<28} {:<22} {:>8}\n",
                row.phone_number,
                row.member_name,
                time(Some(row.last_activity)),
                row.message_count
            ));
        }
        if let Some(cursor) = &list.next_cursor {
            out.push_str(&format!("(more after {cursor})\n"));
        }
        out
    });
    Ok(ExitCode::SUCCESS)
}

/// `roster sessions show PHONE`.
pub async fn sessions_show(target: &Target, phone: &str) -> anyhow::Result<ExitCode> {
    let phone = target.parse_phone(phone)?;
    let detail: Option<SessionDetail> = match target.connect().await? {
        Source::Server(admin) => match admin
            .get(&format!("/admin/sessions/{}", phone.e164()))
            .await
        {
            Err(ClientError::Status { status: 404, .. }) => None,
            other => Some(other?),
        },
        Source::Local(local) => {
            let state = local.sessions.phone_state(&phone).await?;
            SessionDetail::new(
                &phone,
                state.session.as_ref(),
                local.limits.view_at(&state.limits, state.now_ms),
                state.opted_out_at_ms,
                state.now_ms,
            )
        }
    };
    let Some(detail) = detail else {
        eprintln!("no live session for {}", phone.e164());
        return Ok(ExitCode::from(1));
    };
    target.print(&detail, describe_session);
    Ok(ExitCode::SUCCESS)
}

fn describe_session(v: &SessionDetail) -> String {
    let opt_out = match v.opted_out_at {
        Some(at) => format!(
            "opted out: yes, since {} (nothing is sent to it until it sends START)\n",
            time(Some(at))
        ),
        None => "opted out: no\n".to_owned(),
    };
    let Some(session) = &v.session else {
        return format!("{}: no live session\n{opt_out}", v.phone_number);
    };
    let stats = &session.stats;
    let mut out = format!(
        "{} ({}, {}) {}\n",
        session.member_name,
        session.user_id,
        session.role.as_str(),
        v.phone_number,
    );
    out.push_str(&format!(
        "created {}, last activity {}, expires in {}\n",
        time(Some(session.created_at)),
        time(Some(session.last_activity)),
        humantime::format_duration(Duration::from_secs(stats.session.ttl_remaining_secs))
    ));
    out.push_str(&format!(
        "messages {}, searches {}\n",
        session.message_count, session.search_count
    ));
    out.push_str(&opt_out);
    out.push_str(&describe_limits(&stats.limits));
    let history = &session.conversation_history;
    out.push_str(&format!("history ({}):\n", history.len()));
    for (n, entry) in history.iter().enumerate() {
        out.push_str(&format!(
            "  {:>2}. {}  {:<8} {:?} → {} results\n",
            n + 1,
            time(Some(entry.timestamp)),
            entry.intent.as_str(),
            entry.query,
            entry.result_count
        ));
    }
    out
}

fn describe_limits(limits: &PhoneLimits) -> String {
    limits
        .named()
        .iter()
        .map(|(kind, l)| {
            let mut line = format!("{kind}: {} of {} left", l.remaining, l.limit);
            if l.next_in_secs > 0 {
                line.push_str(&format!(", next in {} s", l.next_in_secs));
            } else if l.full_in_secs > 0 {
                line.push_str(&format!(", full in {} s", l.full_in_secs));
            }
            line + "\n"
        })
        .collect()
}

/// `roster sessions delete PHONE` (through the server, or on a stopped data dir).
pub async fn sessions_delete(target: &Target, phone: &str) -> anyhow::Result<ExitCode> {
    let phone = target.parse_phone(phone)?;
    let deleted = match target.connect().await? {
        Source::Server(admin) => match admin
            .delete(&format!("/admin/sessions/{}", phone.e164()))
            .await
        {
            Ok(()) => true,
            Err(ClientError::Status { status: 404, .. }) => false,
            Err(e) => return Err(e.into()),
        },
        Source::Local(local) => {
            let deleted = local.sessions.delete(&phone).await?;
            local.sessions.flush().await?;
            deleted
        }
    };
    if deleted {
        println!("deleted the session of {}", phone.e164());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("no live session for {}", phone.e164());
        Ok(ExitCode::from(1))
    }
}

/// `roster limits show PHONE`.
pub async fn limits_show(target: &Target, phone: &str) -> anyhow::Result<ExitCode> {
    let phone = target.parse_phone(phone)?;
    let limits: LimitsOf = match target.connect().await? {
        Source::Server(admin) => {
            admin
                .get(&format!("/admin/limits/{}", phone.e164()))
                .await?
        }
        Source::Local(local) => {
            let state = local.sessions.phone_state(&phone).await?;
            LimitsOf {
                phone_number: phone.e164(),
                limits: local.limits.view_at(&state.limits, state.now_ms).into(),
            }
        }
    };
    target.print(&limits, |v| {
        format!("{}\n{}", v.phone_number, describe_limits(&v.limits))
    });
    Ok(ExitCode::SUCCESS)
}

/// `roster stats`.
pub async fn stats(target: &Target) -> anyhow::Result<ExitCode> {
    let stats: Stats = match target.connect().await? {
        Source::Server(admin) => admin.get("/admin/stats").await?,
        Source::Local(local) => Stats {
            sessions: local.sessions.stats(),
            members: None,
            strangers_remembered: None,
            connections: None,
            shed_requests: None,
        },
    };
    target.print(&stats, |v| {
        let s = &v.sessions;
        let mut out = String::new();
        if let Some(members) = v.members {
            out.push_str(&format!("members:              {members}\n"));
        }
        out.push_str(&format!(
            "sessions stored:      {}\ncache entries:        {}\ncache hit rate:       {:.1}%\nsweeps:               {}\nswept sessions:       {}\nswept replies:        {}\ndurable flushes:      {}\n",
            s.stored_sessions,
            s.cache_entries,
            s.cache_hit_rate * 100.0,
            s.sweeps,
            s.swept_sessions,
            s.swept_messages,
            s.flushes,
        ));
        out
    });
    Ok(ExitCode::SUCCESS)
}

/// `roster export [--out FILE]`: JSON lines to the file or stdout.
///
/// A file is written beside its destination and renamed over it only once
/// the export is complete, so a failed export leaves no partial file and
/// never replaces an earlier one. On stdout a failure is reported on
/// stderr with a non-zero exit: what was printed is incomplete.
pub async fn export(target: &Target, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let Some(path) = out else {
        let mut sink = std::io::BufWriter::new(std::io::stdout());
        write_export(target, &mut sink, "stdout").await.context(
            "the export is incomplete: what was written to stdout is not a usable backup",
        )?;
        return Ok(ExitCode::SUCCESS);
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".roster-export-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    let mut sink = std::io::BufWriter::new(temp);
    let destination = path.display().to_string();
    write_export(target, &mut sink, &destination)
        .await
        .with_context(|| format!("the export failed, so {destination} was not written"))?;
    let temp = sink
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("cannot write {destination}"))?;
    temp.as_file()
        .sync_all()
        .with_context(|| format!("cannot write {destination}"))?;
    temp.persist(path)
        .with_context(|| format!("cannot write {destination}"))?;
    Ok(ExitCode::SUCCESS)
}

/// The export from the server or the data dir into `sink`, flushed; an
/// error if any part of it is missing.
async fn write_export(
    target: &Target,
    sink: &mut (dyn Write + Send),
    destination: &str,
) -> anyhow::Result<()> {
    match target.connect().await? {
        Source::Server(admin) => {
            let mut response = admin.get_stream("/admin/export").await?;
            // The server ends the body with an error, not cleanly, when its
            // export fails part way; that arrives here as a chunk error.
            while let Some(chunk) = response
                .chunk()
                .await
                .context("the server's export broke off part way (its log says why)")?
            {
                sink.write_all(&chunk)
                    .with_context(|| format!("cannot write {destination}"))?;
            }
            sink.flush()
                .with_context(|| format!("cannot write {destination}"))?;
        }
        Source::Local(local) => {
            let counts = export::export(&local.sessions, local.sessions.now_ms(), sink)?;
            eprintln!(
                "exported {} sessions and {} rate-limit entries and {} opt-outs",
                counts.sessions, counts.limits, counts.opt_outs
            );
        }
    }
    Ok(())
}

/// `roster import FILE`: into a stopped data dir only.
pub async fn import(config: &Config, file: &Path) -> anyhow::Result<ExitCode> {
    let input =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let records = export::read(BufReader::new(input))
        .with_context(|| format!("{} is not a valid export", file.display()))?;
    let local = match LocalState::open(config) {
        Ok(local) => local,
        Err(StorageError::Locked(path)) => bail!(
            "the data dir {} is in use by a running roster: stop it first (import restores into a stopped data dir)",
            path.display()
        ),
        Err(e) => return Err(e.into()),
    };
    let counts = export::restore(records, &local.sessions).await?;
    local.sessions.flush().await?;
    println!(
        "imported {} sessions and {} rate-limit entries and {} opt-outs into {}",
        counts.sessions,
        counts.limits,
        counts.opt_outs,
        config.storage.data_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `roster check-directory [FILE]`: what each column was taken as, every
/// rejected row, counts; exits 1 if any row was rejected, 2 if the file
/// cannot be loaded.
pub fn check_directory(
    config: &Config,
    file: Option<&Path>,
    sheet: Option<&str>,
    json: bool,
) -> ExitCode {
    // The configured file is checked with the configured sheet; another
    // file with `--sheet` or its first sheet.
    let (file, sheet) = match file {
        Some(file) => (file, sheet),
        None => (
            config.directory.members_csv.as_path(),
            sheet.or(config.directory.sheet()),
        ),
    };
    let directory = match Directory::load_sheet(file, sheet, config.directory.default_region) {
        Ok(directory) => directory,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let inactive = directory.members().iter().filter(|m| !m.active).count();
    let private = directory
        .members()
        .iter()
        .filter(|m| !m.share_contact)
        .count();
    let shown = file.display();
    if json {
        let report = json!({
            "file": shown.to_string(),
            "format": directory.format(),
            "sheet": directory.sheet(),
            "columns": directory.columns(),
            "members": directory.len(),
            "inactive": inactive,
            "notSharingContact": private,
            "rejectedRows": directory.rejected(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        if let Some(sheet) = directory.sheet() {
            println!("{shown}: sheet {sheet:?}");
        }
        for column in directory.columns() {
            println!("{column}");
        }
        for rejection in directory.rejected() {
            match rejection.unit {
                // `file:line: reason`, as compilers and editors expect.
                RowUnit::Line => println!("{shown}:{}: {}", rejection.line, rejection.reason),
                RowUnit::Row => println!("{shown}: {rejection}"),
            }
        }
        println!(
            "{shown}: {} members loaded ({inactive} inactive, {private} not sharing contact details), {} rows rejected",
            directory.len(),
            directory.rejected().len()
        );
    }
    if directory.rejected().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `2026-11-25 07:40:12 UTC` for epoch milliseconds; `@{ms} ms` for a time
/// no date can show (after the year 9999, as a corrupt import might hold).
fn time(ms: Option<u64>) -> String {
    use std::fmt::Write as _;
    let Some(ms) = ms else {
        return "-".to_owned();
    };
    let mut text = String::new();
    let shown = UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .is_some_and(|at| write!(text, "{}", humantime::format_rfc3339_seconds(at)).is_ok());
    if shown {
        text.replace('T', " ").replace('Z', " UTC")
    } else {
        format!("@{ms} ms")
    }
}

/// `roster check-data [--data-dir DIR]`: what a stopped data dir holds
/// ([`crate::store::check`]); exits 1 if anything is unreadable, 2 if the
/// check cannot run (no data dir, or one in use).
pub fn check_data(config: &Config, data_dir: Option<&Path>, json: bool) -> ExitCode {
    let dir = data_dir.unwrap_or(&config.storage.data_dir);
    let now_ms = crate::clock::Clock::now_ms(&SystemClock);
    let report = match crate::store::check::check(dir, config.storage.cache_bytes, now_ms) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("roster: {e}");
            return ExitCode::from(2);
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", crate::store::check::describe(&report));
    }
    if report.has_unreadable() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_show_as_dates() {
        assert_eq!(time(None), "-");
        assert_eq!(time(Some(0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(time(Some(1_764_056_412_000)), "2025-11-25 07:40:12 UTC");
        assert_eq!(
            time(Some(export::MAX_TIMESTAMP_MS)),
            "9999-12-31 23:59:59 UTC"
        );
    }

    #[test]
    fn times_no_date_can_show_fall_back_to_milliseconds() {
        let after_9999 = export::MAX_TIMESTAMP_MS + 1;
        assert_eq!(time(Some(after_9999)), format!("@{after_9999} ms"));
        assert_eq!(time(Some(u64::MAX)), format!("@{} ms", u64::MAX));
    }
}
