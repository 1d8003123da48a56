//! Scale: many sessions on disk. Writes N sessions (default 1,000,000),
//! reopens the store and reports open time, RSS after open, RSS after
//! touching 100,000 sessions, the data dir's size on disk once written and
//! flushed (file sizes, and blocks allocated as `du` counts them), and the
//! cost of sweeping 100,000 due sessions.
//!
//! `cargo bench --bench scale -- [--sessions N] [--touch N] [--sweep N]
//! [--after-crash]`; with `--after-crash` the store is not closed after
//! writing, so the reopen is the one after a crash (it counts the sessions).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use roster::clock::{Clock, ManualClock};
use roster::config::{Config, Durability};
use roster::conversation::{Entities, Entry, Intent, Session};
use roster::directory::{Directory, synthetic};
use roster::phone::Region;
use roster::store::Store;

use support::arg;

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The files' sizes under `path`, in MB: (apparent, allocated as `du`
/// counts it).
fn disk_sizes_mb(path: &std::path::Path) -> (f64, f64) {
    use std::os::unix::fs::MetadataExt;
    fn walk(path: &std::path::Path) -> (u64, u64) {
        std::fs::read_dir(path)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| match e.metadata() {
                        Ok(m) if m.is_dir() => walk(&e.path()),
                        Ok(m) => (m.len(), m.blocks() * 512),
                        Err(_) => (0, 0),
                    })
                    .fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
            })
            .unwrap_or((0, 0))
    }
    let (apparent, allocated) = walk(path);
    let mb = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    (mb(apparent), mb(allocated))
}

fn disk_mb(path: &std::path::Path) -> f64 {
    disk_sizes_mb(path).0
}

fn open(config: &Config, clock: &Arc<ManualClock>) -> Arc<Store> {
    let db = roster::store::open(&config.storage).unwrap();
    Arc::new(Store::open(&db, config, clock.clone()).unwrap())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sessions = arg("--sessions", 1_000_000);
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--limits-child") {
        limits_child(
            std::path::Path::new(&args[i + 1]),
            arg("--limit-keys", 100_000),
        );
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--reopen") {
        reopen(
            std::path::Path::new(&args[i + 1]),
            sessions,
            arg("--touch", 100_000),
        );
        return;
    }
    let touch = arg("--touch", 100_000).min(sessions);
    let sweep = arg("--sweep", 100_000).min(sessions);
    let limit_keys = arg("--limit-keys", 100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.storage.data_dir = dir.path().join("state");
    config.storage.durability = Durability::Relaxed;
    let clock = ManualClock::new(1_700_000_000_000);
    let ttl = config.session.ttl.as_millis() as u64;
    let directory =
        Directory::from_csv(&synthetic::synthetic_csv(1000, 3), Region::default()).unwrap();
    let members = directory.members();
    println!("scale: {sessions} sessions, touch {touch}, sweep {sweep}");

    runtime.block_on(async {
        let store = open(&config, &clock);
        let started = Instant::now();
        let now = clock.now_ms();
        let all = (0..sessions).map(|i| {
            // Sessions as varied as the directory: each a different member
            // asking about others' professions and cities, with their ids.
            let mut member = members[i % members.len()].clone();
            member.phone = roster::phone::PhoneNumber::parse(
                &synthetic::synthetic_phone(i),
                Region::default(),
            )
            .unwrap();
            // The first `sweep` sessions were active 20 minutes earlier.
            let at = if i < sweep { now - 20 * 60 * 1000 } else { now };
            let mut session = Session::new(&member, at, ttl);
            for n in 0..3 {
                let asked = &members[(i * 7 + n * 131) % members.len()];
                let entry = Entry {
                    query: format!(
                        "find {} in {}",
                        asked.profession.to_lowercase(),
                        asked.city.to_lowercase()
                    ),
                    timestamp_ms: at,
                    intent: Intent::Search,
                    entities: Entities {
                        profession: Some(asked.profession.clone()),
                        city: Some(asked.city.clone()),
                        ..Entities::default()
                    },
                    result_count: u32::try_from(1 + (i + n) % 40).unwrap_or(1),
                    result_ids: (0..5)
                        .map(|k| {
                            members[(i * 13 + n * 17 + k * 101) % members.len()]
                                .id
                                .clone()
                        })
                        .collect(),
                    page: 0,
                };
                session.record(entry, true, 10, ttl);
            }
            session
        });
        store.import_sessions(all).await.unwrap();
        // Closed as `roster serve` closes it; a crash would make the next
        // open count the sessions once (reported by `--after-crash`).
        if !std::env::args().any(|a| a == "--after-crash") {
            store.close().await.unwrap();
        }
        println!(
            "write:  {sessions} sessions in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        // What the data dir takes once written and flushed (closed).
        let (apparent, allocated) = disk_sizes_mb(&config.storage.data_dir);
        println!("disk:   {apparent:.0} MB in files, {allocated:.0} MB allocated (du)");
        drop(store);
        {
            let db = roster::store::open(&config.storage).unwrap();
            let mut live = 0u64;
            let mut count = 0u64;
            for name in db.tree_names() {
                let tree = db.open_tree(&name).unwrap();
                for item in tree.iter() {
                    let (k, v) = item.unwrap();
                    live += (k.len() + v.len()) as u64;
                    count += 1;
                }
            }
            println!(
                "live:   {count} keys, {:.0} MB of keys and values ({:.0} B each)",
                live as f64 / 1e6,
                live as f64 / count as f64
            );
        }
        // Open and touch in a fresh process, so its RSS is the store's alone.
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--reopen", &config.storage.data_dir.display().to_string()])
            .args([
                "--sessions",
                &sessions.to_string(),
                "--touch",
                &touch.to_string(),
            ])
            .status()
            .unwrap();
        assert!(status.success());
        let store = open(&config, &clock);
        clock.advance(Duration::from_secs(15 * 60));
        let started = Instant::now();
        let report = store.sweep().await.unwrap();
        println!(
            "sweep:  {} due sessions removed in {:.0} ms ({:.1} µs each)",
            report.sessions,
            started.elapsed().as_secs_f64() * 1000.0,
            started.elapsed().as_secs_f64() * 1e6 / report.sessions.max(1) as f64
        );
    });
    let limits_dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--limits-child", &limits_dir.path().display().to_string()])
        .args(["--limit-keys", &limit_keys.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The child process: rate-limit state for `keys` distinct phones, each
/// checked in its turn and committed into its record.
fn limits_child(dir: &std::path::Path, keys: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let clock = ManualClock::new(1_700_000_000_000);
        let mut config = Config::default();
        config.storage.data_dir = dir.to_owned();
        config.storage.cache_bytes = 64 * 1024 * 1024;
        // No flusher runs here: written as relaxed, flushed at the end.
        config.storage.durability = Durability::Relaxed;
        let store = open(&config, &clock);
        let limits = roster::limits::Limits::new(&Default::default(), clock.clone());
        let phones: Vec<_> = (0..keys)
            .map(|i| {
                roster::phone::PhoneNumber::parse(&synthetic::synthetic_phone(i), Region::default())
                    .unwrap()
            })
            .collect();
        let rss_before = rss_mb();
        let started = Instant::now();
        for phone in &phones {
            let mut turn = store.turn(*phone).await.unwrap();
            let now = limits.now_ns();
            turn.check(|l| &mut l.messages, |b| limits.messages.check(b, now));
            turn.check(|l| &mut l.searches, |b| limits.searches.check(b, now));
            turn.commit().await.unwrap();
        }
        let elapsed = started.elapsed();
        store.flush().await.unwrap();
        println!(
            "limits: {keys} phones x 2 limits in {:.0} ms ({:.1} µs a phone, one record each); RSS +{:.0} MB; disk {:.0} MB",
            elapsed.as_secs_f64() * 1000.0,
            elapsed.as_secs_f64() * 1e6 / keys as f64,
            rss_mb() - rss_before,
            disk_mb(dir),
        );
        clock.advance(Duration::from_secs(3600));
        let started = Instant::now();
        store.sweep().await.unwrap();
        println!(
            "limits: after a full refill, the sweep removed the records in {:.0} ms; {} left",
            started.elapsed().as_secs_f64() * 1000.0,
            store.records().count()
        );
        store.close().await.unwrap();
    });
}

/// The child process: open the store, touch `touch` sessions, report.
fn reopen(data_dir: &std::path::Path, sessions: usize, touch: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut config = Config::default();
    config.storage.data_dir = data_dir.to_owned();
    let clock = ManualClock::new(1_700_000_000_000);
    runtime.block_on(async {
        let rss_before = rss_mb();
        let started = Instant::now();
        let store = open(&config, &clock);
        let open_time = started.elapsed();
        println!(
            "open:   {:.0} ms; RSS {:.0} MB after open ({:.0} MB before); disk {:.0} MB",
            open_time.as_secs_f64() * 1000.0,
            rss_mb(),
            rss_before,
            disk_mb(data_dir)
        );
        let started = Instant::now();
        for i in 0..touch {
            let phone = roster::phone::PhoneNumber::parse(
                &synthetic::synthetic_phone(sessions - 1 - i),
                Region::default(),
            )
            .unwrap();
            assert!(store.get(&phone).await.unwrap().is_some());
        }
        println!(
            "touch:  {touch} sessions in {:.0} ms ({:.1} µs each); RSS {:.0} MB",
            started.elapsed().as_secs_f64() * 1000.0,
            started.elapsed().as_secs_f64() * 1e6 / touch.max(1) as f64,
            rss_mb()
        );
    });
}
